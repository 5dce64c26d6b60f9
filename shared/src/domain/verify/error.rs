//! Why a request failed verification, in words safe to send back to the sender.

/// Why a request was not accepted as coming from the provider: the sender's fault.
///
/// Every field is static text or a number, so no variant can carry a secret, an expected
/// signature or request content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but not in the form the provider documents.
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: &'static str,
    },
    /// The signed timestamp is too old or too far in the future: a replay, or a clock off
    /// by more than the tolerance.
    #[error("timestamp in {header} is more than {tolerance_secs} seconds from now")]
    StaleTimestamp {
        header: &'static str,
        tolerance_secs: u64,
    },
    /// No secret produces the presented signature: wrong secret or altered request.
    #[error("signature does not match")]
    BadSignature,
    /// The `token` scheme found no `token` query parameter.
    #[error("missing token query parameter")]
    MissingToken,
    /// The presented token or shared secret is none of the configured secrets.
    #[error("token does not match")]
    BadToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_header_and_the_problem() {
        assert_eq!(
            VerifyError::MissingHeader("X-Hub-Signature-256").to_string(),
            "missing X-Hub-Signature-256 header"
        );
        assert_eq!(
            VerifyError::StaleTimestamp {
                header: "Stripe-Signature",
                tolerance_secs: 300
            }
            .to_string(),
            "timestamp in Stripe-Signature is more than 300 seconds from now"
        );
        assert_eq!(
            VerifyError::BadSignature.to_string(),
            "signature does not match"
        );
    }
}
