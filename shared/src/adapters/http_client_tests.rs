//! The client against a real TLS receiver on 127.0.0.1, with a certificate from a test CA
//! (`testdata/`, valid until 2126): trust comes from the root store and nowhere else, and the
//! address policy holds for names and literals alike.

use std::convert::Infallible;

use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use super::*;

const TEST_CA: &[u8] = include_bytes!("testdata/test-ca.der");
const LOCALHOST_CERT: &[u8] = include_bytes!("testdata/localhost.der");
const LOCALHOST_KEY: &[u8] = include_bytes!("testdata/localhost.key.der");

/// An HTTPS receiver for `localhost` that answers whether the request was signed; returns
/// its port.
async fn tls_receiver() -> u16 {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(LOCALHOST_KEY.to_vec()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(LOCALHOST_CERT.to_vec())], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that distrusts the certificate hangs up during the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: Request<_>| async move {
                    let signed = request.headers().contains_key("x-nexus-signature-256");
                    let body = if signed { "signed" } else { "unsigned" };
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service);
                drop(connection.await);
            });
        }
    });
    port
}

fn trusting_the_test_ca(allow_private: bool) -> HyperClient {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(TEST_CA.to_vec())).unwrap();
    HyperClient::with_roots(allow_private, 4, roots)
}

async fn post(client: &HyperClient, url: &str) -> Result<HttpResponse, TransportError> {
    let headers = [("X-Nexus-Signature-256", "sha256=00".to_owned())];
    let timeout = Duration::from_secs(10);
    client
        .post(url, &headers, bytes::Bytes::from_static(b"{}"), timeout, 64)
        .await
}

#[tokio::test]
async fn an_https_target_is_reached_over_tls_with_its_headers() {
    let port = tls_receiver().await;
    let client = trusting_the_test_ca(true);
    let response = post(&client, &format!("https://localhost:{port}/hook"))
        .await
        .unwrap();
    assert_eq!((response.status, response.body), (200, b"signed".to_vec()));
}

#[tokio::test]
async fn a_certificate_outside_the_root_store_is_refused() {
    let port = tls_receiver().await;
    let client = HyperClient::new(true, 4);
    let refused = post(&client, &format!("https://localhost:{port}/hook")).await;
    let Err(TransportError::Connect(message)) = refused else {
        panic!("expected a connection failure, got {refused:?}");
    };
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn names_and_literals_of_private_addresses_are_refused_before_any_connection() {
    let port = tls_receiver().await;
    let client = trusting_the_test_ca(false);
    for url in [
        format!("https://localhost:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
    ] {
        let refused = post(&client, &url).await;
        assert!(
            matches!(refused, Err(TransportError::Forbidden(_))),
            "{url}: {refused:?}"
        );
    }
}
