//! Shared-secret naming and constant-time comparison.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::{AgentId, Source};

/// Secret names to look up for a request, most specific first: the brief's
/// `WEBHOOK_SECRET_{agent}_{source}`, then `WEBHOOK_SECRET_{agent}`.
pub fn webhook_secret_names(agent: &AgentId, source: &Source) -> [String; 2] {
    [
        format!("WEBHOOK_SECRET_{agent}_{source}"),
        format!("WEBHOOK_SECRET_{agent}"),
    ]
}

/// Compares two secrets in time that depends on neither's content nor length: both are
/// hashed first, so even a length mismatch takes the same path.
pub fn secrets_match(expected: &[u8], presented: &[u8]) -> bool {
    let expected = Sha256::digest(expected);
    let presented = Sha256::digest(presented);
    expected.as_slice().ct_eq(presented.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_from_specific_to_general() {
        let names = webhook_secret_names(
            &AgentId::parse("flickclaw").unwrap(),
            &Source::parse("putio").unwrap(),
        );
        assert_eq!(
            names,
            [
                "WEBHOOK_SECRET_flickclaw_putio".to_owned(),
                "WEBHOOK_SECRET_flickclaw".to_owned()
            ]
        );
    }

    #[test]
    fn only_equal_secrets_match() {
        assert!(secrets_match(b"abc123", b"abc123"));
        assert!(!secrets_match(b"abc123", b"abc124"));
        assert!(!secrets_match(b"abc123", b"abc1234"));
        assert!(!secrets_match(b"abc123", b""));
    }
}
