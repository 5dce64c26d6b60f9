//! `nexus`: the local host. `nexus serve` runs every route on the embedded SQLite backend
//! in one process; the same routers run on Lambda in `functions/`. `nexus worker` is the
//! consumer that delivers pending items into agents' workspaces.

pub mod api_key;
pub mod serve;
pub mod worker;
