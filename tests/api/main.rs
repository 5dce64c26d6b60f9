//! Integration tests: one binary, real HTTP on 127.0.0.1 with OS-chosen ports.
//!
//! The behaviour suite (`ingest`, `consumer`) runs every test twice: against `nexus serve`
//! on its own SQLite directory, and against the Lambda routers on the AWS adapters talking
//! to a moto server (started by `scripts/test.sh`, found through `NEXUS_TEST_AWS_ENDPOINT`).

mod consumer;
mod crash;
mod helpers;
mod ingest;
mod lambda_events;
mod local_server;
mod oracle;
mod verify;
mod worker;
