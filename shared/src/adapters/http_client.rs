//! Outbound HTTP on reqwest: no redirects, a time limit per attempt, a bounded response
//! read, and the address policy enforced on every address actually connected to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

use crate::domain::outbound::is_forbidden_address;
use crate::ports::http_client::{HttpClient, HttpResponse, TransportError};

/// Resolves names and drops every address the policy forbids, so a DNS answer that
/// changes after a subscription was created (rebinding) cannot reach a private address.
struct PolicyResolver;

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| !is_forbidden_address(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to forbidden addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The production client.
pub struct ReqwestClient {
    client: reqwest::Client,
    allow_private: bool,
    /// One permit per request in flight: bounds the connections open to subscribers.
    slots: Semaphore,
}

impl ReqwestClient {
    /// `allow_private` lifts the address policy (local development and tests only).
    /// `max_in_flight` bounds the requests sent at once; a caller over it waits for a free
    /// slot before its request (and its timeout) starts.
    pub fn new(allow_private: bool, max_in_flight: usize) -> Self {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(max_in_flight)
            .connect_timeout(Duration::from_secs(10));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PolicyResolver));
        }
        Self {
            client: builder.build().expect("building the HTTP client"),
            allow_private,
            slots: Semaphore::new(max_in_flight.max(1)),
        }
    }

    /// An IP literal in the URL never reaches the resolver: check it here.
    fn check_literal(&self, url: &reqwest::Url) -> Result<(), TransportError> {
        if self.allow_private {
            return Ok(());
        }
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        match ip {
            Some(ip) if is_forbidden_address(ip) => Err(TransportError::Forbidden(format!(
                "{ip} is a private, loopback or link-local address"
            ))),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, TransportError> {
        let url = reqwest::Url::parse(url).map_err(|e| TransportError::Connect(e.to_string()))?;
        self.check_literal(&url)?;
        let mut request = self.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let attempt = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            while body.len() < max_body {
                match response.chunk().await? {
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => break,
                }
            }
            body.truncate(max_body);
            Ok::<_, reqwest::Error>(HttpResponse {
                status,
                retry_after,
                body,
            })
        };
        // The overall limit covers a body that trickles in, too.
        match tokio::time::timeout(timeout, attempt).await {
            Err(_) => Err(TransportError::Timeout(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if error.is_timeout() => Err(TransportError::Timeout(timeout)),
            Ok(Err(error)) => Err(classify(&error)),
        }
    }
}

fn classify(error: &reqwest::Error) -> TransportError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        if inner.to_string().contains("forbidden addresses") {
            return TransportError::Forbidden(inner.to_string());
        }
        source = inner.source();
    }
    TransportError::Connect(message)
}
