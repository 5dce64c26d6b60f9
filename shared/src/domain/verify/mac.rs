//! HMAC checks and signature decoding shared by the signing schemes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

use super::VerifyError;

pub(super) type HmacSha256 = Hmac<sha2::Sha256>;
pub(super) type HmacSha1 = Hmac<sha1::Sha1>;

/// Whether the HMAC of `message` under any of `keys` equals any of `tags`.
///
/// The message comes in parts so that `{timestamp}.{body}` is never copied together.
/// `verify_slice` compares in constant time; which key or tag matched is no secret.
pub(super) fn hmac_matches<M, K>(
    keys: impl IntoIterator<Item = K>,
    message: &[&[u8]],
    tags: &[Vec<u8>],
) -> bool
where
    M: Mac + KeyInit + Clone,
    K: AsRef<[u8]>,
{
    keys.into_iter().any(|key| {
        // HMAC takes keys of any length; the error exists only for fixed-key MACs.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key.as_ref()) else {
            return false;
        };
        for part in message {
            mac.update(part);
        }
        tags.iter().any(|tag| mac.clone().verify_slice(tag).is_ok())
    })
}

/// [`hmac_matches`] as the scheme's answer.
pub(super) fn check_hmac<M, K>(
    keys: impl IntoIterator<Item = K>,
    message: &[&[u8]],
    tags: &[Vec<u8>],
) -> Result<(), VerifyError>
where
    M: Mac + KeyInit + Clone,
    K: AsRef<[u8]>,
{
    if hmac_matches::<M, K>(keys, message, tags) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The secrets as HMAC keys, for the schemes that use a secret's bytes as they are.
pub(super) fn raw_keys(secrets: &[SecretString]) -> impl Iterator<Item = &[u8]> {
    secrets
        .iter()
        .map(|secret| secret.expose_secret().as_bytes())
}

/// Decodes a hex signature (either case) found in `header`.
pub(super) fn decode_hex(header: &'static str, value: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(value).map_err(|_| VerifyError::MalformedHeader {
        header,
        reason: "signature is not hex",
    })
}

/// Decodes a standard-alphabet, padded base64 signature found in `header`.
pub(super) fn decode_base64(header: &'static str, value: &str) -> Result<Vec<u8>, VerifyError> {
    STANDARD
        .decode(value)
        .map_err(|_| VerifyError::MalformedHeader {
            header,
            reason: "signature is not base64",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_key_and_any_tag_may_match() {
        let tag = crate::domain::verify::testing::hmac_sha256(b"new", b"body");
        let tags = [vec![0; 32], tag];
        assert!(hmac_matches::<HmacSha256, _>(
            [b"old", b"new"],
            &[b"bo", b"dy"],
            &tags
        ));
        assert!(!hmac_matches::<HmacSha256, _>([b"old"], &[b"body"], &tags));
        assert!(!hmac_matches::<HmacSha256, &[u8]>([], &[b"body"], &tags));
    }

    #[test]
    fn a_truncated_tag_does_not_match() {
        let tag = crate::domain::verify::testing::hmac_sha256(b"key", b"body");
        assert!(!hmac_matches::<HmacSha256, _>(
            [b"key"],
            &[b"body"],
            &[tag[..16].to_vec()]
        ));
        assert!(!hmac_matches::<HmacSha256, _>(
            [b"key"],
            &[b"body"],
            &[Vec::new()]
        ));
    }
}
