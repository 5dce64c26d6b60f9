//! A short-lived cache in front of a secret store, so a warm Lambda does not call Secrets
//! Manager on every request, while a rotated secret still takes effect within one TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::ports::{SecretStore, SecretsError};

/// Caches answers of `inner` for `ttl`, absent secrets included (an open endpoint would
/// otherwise cost two lookups per request). Failures are never cached.
pub struct CachedSecrets {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<SecretString>)>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SecretStore for CachedSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError> {
        {
            let entries = self.entries.lock().expect("secret cache lock poisoned");
            if let Some((fetched_at, value)) = entries.get(name) {
                if fetched_at.elapsed() < self.ttl {
                    return Ok(value.clone());
                }
            }
        }
        let value = self.inner.get(name).await?;
        self.entries
            .lock()
            .expect("secret cache lock poisoned")
            .insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose value can be changed, counting how often it is asked.
    #[derive(Default)]
    struct Rotating {
        value: Mutex<Option<String>>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl SecretStore for Rotating {
        async fn get(&self, _name: &str) -> Result<Option<SecretString>, SecretsError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.value.lock().unwrap().clone().map(SecretString::from))
        }
    }

    fn exposed(value: Option<SecretString>) -> Option<String> {
        value.map(|v| v.expose_secret().to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_reused_within_the_ttl_and_refreshed_after() {
        let inner = Arc::new(Rotating::default());
        *inner.value.lock().unwrap() = Some("old".into());
        let cache = CachedSecrets::new(inner.clone(), Duration::from_secs(60));

        assert_eq!(
            exposed(cache.get("s").await.unwrap()).as_deref(),
            Some("old")
        );
        *inner.value.lock().unwrap() = Some("new".into());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            exposed(cache.get("s").await.unwrap()).as_deref(),
            Some("old")
        );
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            exposed(cache.get("s").await.unwrap()).as_deref(),
            Some("new")
        );
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn absent_secrets_are_cached_too() {
        let inner = Arc::new(Rotating::default());
        let cache = CachedSecrets::new(inner.clone(), Duration::from_secs(60));
        assert!(cache.get("s").await.unwrap().is_none());
        assert!(cache.get("s").await.unwrap().is_none());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }
}
