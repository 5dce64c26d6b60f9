//! `nexus`: the local host. `nexus serve` runs every route on the embedded SQLite backend
//! in one process; the same routers run on Lambda in `functions/`.

pub mod api_key;
pub mod serve;
