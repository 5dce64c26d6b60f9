//! The local consumer API key: from `NEXUS_API_KEY`, or generated once and kept in the data
//! directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretString;

const FILE_NAME: &str = "api_key";

/// Where the key came from, so start-up can say so (and print a new key exactly once).
pub enum ApiKey {
    FromEnvironment(SecretString),
    FromFile(SecretString),
    Generated(SecretString),
}

impl ApiKey {
    pub fn secret(&self) -> &SecretString {
        match self {
            Self::FromEnvironment(key) | Self::FromFile(key) | Self::Generated(key) => key,
        }
    }
}

/// Returns the configured key, the kept one, or a new one (written with mode 0600).
pub fn load_or_generate(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> anyhow::Result<ApiKey> {
    if let Some(key) = configured {
        return Ok(ApiKey::FromEnvironment(key.clone()));
    }
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok(ApiKey::FromFile(SecretString::from(text.trim().to_owned())))
        }
        Ok(_) => anyhow::bail!(
            "{} is empty: delete it to generate a new key",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("nxk_{}", URL_SAFE_NO_PAD.encode(bytes));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    Ok(ApiKey::Generated(SecretString::from(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ApiKey::Generated(first) = load_or_generate(None, dir.path()).unwrap() else {
            panic!("expected a new key");
        };
        let ApiKey::FromFile(again) = load_or_generate(None, dir.path()).unwrap() else {
            panic!("expected the kept key");
        };
        assert_eq!(first.expose_secret(), again.expose_secret());
        assert!(first.expose_secret().starts_with("nxk_"));
    }

    #[test]
    fn a_configured_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let configured = SecretString::from("from-env");
        let key = load_or_generate(Some(&configured), dir.path()).unwrap();
        assert!(matches!(key, ApiKey::FromEnvironment(_)));
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
