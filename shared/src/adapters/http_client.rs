//! Outbound HTTP on hyper's pooled client with rustls: no redirects, a time limit per
//! attempt, a bounded response read, and the address policy enforced on every address
//! actually connected to.
//!
//! hyper rather than reqwest: a delivery is one POST with a handful of headers, and
//! reqwest's layers (URL parsing, redirect and retry policies, its own timeouts) cost about
//! as much CPU again as the request itself, which on the delivery path is the budget.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use tokio::sync::Semaphore;

use crate::domain::outbound::is_forbidden_address;
use crate::ports::http_client::{HttpClient, HttpResponse, TransportError};

/// Longest wait for a TCP connection to a subscriber.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A name that resolves only to addresses the policy forbids.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to forbidden addresses")]
struct ForbiddenTarget(String);

/// Resolves names and, unless private targets are allowed, drops every address the policy
/// forbids, so a DNS answer that changes after a subscription was created (rebinding)
/// cannot reach a private address.
#[derive(Clone)]
struct PolicyResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || !is_forbidden_address(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(io::Error::other(ForbiddenTarget(host.to_owned())));
            }
            Ok(allowed.into_iter())
        })
    }
}

type Connector = HttpsConnector<HttpConnector<PolicyResolver>>;

/// The production client.
pub struct HyperClient {
    client: Client<Connector, Full<Bytes>>,
    allow_private: bool,
    /// One permit per request in flight: bounds the connections open to subscribers.
    slots: Semaphore,
}

impl HyperClient {
    /// `allow_private` lifts the address policy (local development and tests only).
    /// `max_in_flight` bounds the requests sent at once; a caller over it waits for a free
    /// slot before its request (and its timeout) starts. HTTPS targets are trusted through
    /// the Mozilla root store (webpki-roots), the same in every environment.
    pub fn new(allow_private: bool, max_in_flight: usize) -> Self {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(allow_private, max_in_flight, roots)
    }

    fn with_roots(allow_private: bool, max_in_flight: usize, roots: RootCertStore) -> Self {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(PolicyResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        // http:// only reaches a subscription created with private targets allowed: the
        // API refuses other http:// URLs.
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(max_in_flight)
            .build(connector);
        Self {
            client,
            allow_private,
            slots: Semaphore::new(max_in_flight.max(1)),
        }
    }

    /// An IP literal in the URL never reaches the resolver: check it here.
    fn check_literal(&self, uri: &Uri) -> Result<(), TransportError> {
        if self.allow_private {
            return Ok(());
        }
        let host = uri.host().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(ip) if is_forbidden_address(ip) => Err(TransportError::Forbidden(format!(
                "{ip} is a private, loopback or link-local address"
            ))),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl HttpClient for HyperClient {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, TransportError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| TransportError::Connect(e.to_string()))?;
        self.check_literal(&uri)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes());
            let (Ok(header), Ok(value)) = (header, HeaderValue::from_str(value)) else {
                return Err(TransportError::Connect(format!(
                    "header {name} cannot be sent"
                )));
            };
            request.headers_mut().append(header, value);
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let attempt = async {
            let response = self.client.request(request).await.map_err(Failure::Send)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut incoming = response.into_body();
            let mut body = Vec::new();
            while body.len() < max_body {
                match incoming.frame().await {
                    Some(frame) => {
                        if let Ok(data) = frame.map_err(Failure::Read)?.into_data() {
                            body.extend_from_slice(&data);
                        }
                    }
                    None => break,
                }
            }
            body.truncate(max_body);
            Ok::<_, Failure>(HttpResponse {
                status,
                retry_after,
                body,
            })
        };
        // The overall limit covers a body that trickles in, too.
        match tokio::time::timeout(timeout, attempt).await {
            Err(_) => Err(TransportError::Timeout(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(failure)) => Err(classify(&failure, timeout)),
        }
    }
}

/// Why an attempt got no (whole) response.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("sending the request failed")]
    Send(#[source] hyper_util::client::legacy::Error),
    #[error("reading the response failed")]
    Read(#[source] hyper::Error),
}

fn classify(failure: &Failure, timeout: Duration) -> TransportError {
    let mut message = failure.to_string();
    let mut source = std::error::Error::source(failure);
    while let Some(inner) = source {
        // io::Error's `source` skips the error it wraps: look inside it too.
        let wrapped = inner
            .downcast_ref::<io::Error>()
            .and_then(|e| e.get_ref().map(|e| e as &(dyn std::error::Error + 'static)));
        for level in [Some(inner), wrapped].into_iter().flatten() {
            if let Some(forbidden) = level.downcast_ref::<ForbiddenTarget>() {
                return TransportError::Forbidden(forbidden.to_string());
            }
            if let Some(error) = level.downcast_ref::<io::Error>() {
                if error.kind() == io::ErrorKind::TimedOut {
                    return TransportError::Timeout(timeout);
                }
            }
        }
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    TransportError::Connect(message)
}

#[cfg(test)]
#[path = "http_client_tests.rs"]
mod tests;
