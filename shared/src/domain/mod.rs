//! Pure domain: identifiers, inbox items, header handling, payload rendering, cursors and
//! secret comparison. No async, no I/O.

pub mod cursor;
pub mod error;
pub mod headers;
pub mod ids;
pub mod item;
pub mod outbound;
pub mod payload;
pub mod secret;
pub mod time;
pub mod verify;

pub use error::DomainError;
