//! Nexus Webhooks core: everything both hosts (AWS Lambda and `nexus serve`) share.
//!
//! Dependencies point one way: `http` → `services` → `ports` ← `adapters`, and every
//! layer may use `domain`, which does no I/O.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod http;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod ports;
pub mod services;
pub mod telemetry;
