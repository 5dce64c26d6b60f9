//! Opaque page cursors for the pending list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::item::ItemId;
use super::DomainError;

const VERSION: &str = "v1";

/// The position after which the next page starts: the last item of the previous page.
/// Clients treat it as opaque; it is base64url so it survives any query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCursor {
    pub after: ItemId,
}

impl PendingCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}|{}", self.after))
    }

    pub fn decode(value: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::new("cursor", "not a cursor this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let id = text
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('|'))
            .ok_or_else(invalid)?;
        Ok(Self {
            after: id.parse().map_err(|_| invalid())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::AgentId;

    #[test]
    fn a_cursor_round_trips() {
        let cursor = PendingCursor {
            after: ItemId::new(AgentId::parse("main").unwrap(), chrono::Utc::now()),
        };
        assert_eq!(PendingCursor::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn garbage_is_not_a_cursor() {
        for bad in ["", "!!", "djE", &URL_SAFE_NO_PAD.encode("v2|main:x")] {
            assert_eq!(PendingCursor::decode(bad).unwrap_err().field, "cursor");
        }
    }
}
