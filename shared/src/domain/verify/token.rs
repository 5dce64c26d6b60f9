//! Schemes where the sender presents a secret instead of signing: today's
//! `X-Webhook-Secret` header, and a `token` query parameter on the webhook URL for providers
//! that sign nothing (put.io lets you choose the URL, not a header).

use secrecy::{ExposeSecret, SecretString};

use super::{form, VerifyError, VerifyRequest};
use crate::domain::secret::secrets_match;

/// The shared-secret header, as the brief spells it (lookup ignores case).
const SECRET_HEADER: &str = "X-Webhook-Secret";

/// The query parameter the token scheme reads.
const TOKEN_PARAM: &str = "token";

/// `X-Webhook-Secret` must equal one of the secrets.
pub(super) fn verify_header(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    // Raw bytes, not `to_str`: today's check compares whatever bytes were sent.
    let presented = request
        .headers
        .get(SECRET_HEADER)
        .ok_or(VerifyError::MissingHeader(SECRET_HEADER))?;
    check(secrets, presented.as_bytes())
}

/// The URL's `token` query parameter must equal one of the secrets.
pub(super) fn verify_query(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let presented = form::query_param(request.url, TOKEN_PARAM).ok_or(VerifyError::MissingToken)?;
    check(secrets, &presented)
}

fn check(secrets: &[SecretString], presented: &[u8]) -> Result<(), VerifyError> {
    if secrets
        .iter()
        .any(|secret| secrets_match(secret.expose_secret().as_bytes(), presented))
    {
        Ok(())
    } else {
        Err(VerifyError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, check, headers, URL};
    use crate::domain::verify::Scheme;

    fn with_header(secrets: &[&str], presented: Option<&str>) -> Result<(), VerifyError> {
        let headers = headers(
            &presented
                .map(|p| ("X-Webhook-Secret", p))
                .into_iter()
                .collect::<Vec<_>>(),
        );
        check(Scheme::SharedSecret, secrets, &headers, b"{}", URL, at(0))
    }

    fn with_url(secrets: &[&str], url: &str) -> Result<(), VerifyError> {
        check(Scheme::Token, secrets, &headers(&[]), b"{}", url, at(0))
    }

    #[test]
    fn a_shared_secret_passes_only_when_it_matches_one_of_the_secrets() {
        assert_eq!(with_header(&["abc123"], Some("abc123")), Ok(()));
        assert_eq!(with_header(&["old", "new"], Some("new")), Ok(()));
        assert_eq!(
            with_header(&["abc123"], Some("abc1234")),
            Err(VerifyError::BadToken)
        );
        assert_eq!(
            with_header(&["abc123"], None),
            Err(VerifyError::MissingHeader("X-Webhook-Secret"))
        );
    }

    #[test]
    fn a_url_token_passes_only_when_it_matches_one_of_the_secrets() {
        let url = |token: &str| format!("https://hooks.example.com/webhook/a/putio?token={token}");
        assert_eq!(with_url(&["t0k3n"], &url("t0k3n")), Ok(()));
        assert_eq!(with_url(&["old", "t0k3n"], &url("t0k3n")), Ok(()));
        assert_eq!(with_url(&["a/b c"], &url("a%2Fb+c")), Ok(()));
        assert_eq!(
            with_url(&["t0k3n"], &url("t0k3m")),
            Err(VerifyError::BadToken)
        );
        assert_eq!(with_url(&["t0k3n"], &url("")), Err(VerifyError::BadToken));
        assert_eq!(with_url(&["t0k3n"], URL), Err(VerifyError::MissingToken));
    }

    #[test]
    fn the_token_is_not_taken_from_the_fragment_or_another_parameter() {
        let url = "https://hooks.example.com/w?tokens=t0k3n#token=t0k3n";
        assert_eq!(with_url(&["t0k3n"], url), Err(VerifyError::MissingToken));
    }
}
