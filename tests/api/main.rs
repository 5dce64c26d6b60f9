//! Integration tests: one binary, real HTTP on 127.0.0.1 with OS-chosen ports.
//!
//! The behaviour suite (`ingest`, `consumer`) runs every test twice: against `nexus serve`
//! on its own SQLite directory, and against the Lambda routers on the AWS adapters talking
//! to a moto server (started by `scripts/test.sh`, found through `NEXUS_TEST_AWS_ENDPOINT`).

mod aws_outbound;
mod consumer;
mod crash;
mod helpers;
mod ingest;
mod lambda_events;
mod local_server;
mod oracle;
mod outbound_deliveries;
mod outbound_delivery;
mod outbound_event_source;
mod outbound_metrics;
mod outbound_oracle;
mod outbound_publish;
mod outbound_retries;
mod outbound_safety;
mod outbound_subscriptions;
mod outbound_support;
mod receiver;
mod verify;
mod worker;
