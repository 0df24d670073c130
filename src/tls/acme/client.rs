//! The HTTPS client the ACME protocol runs over: one HTTP/1.1 request per
//! connection with hyper, TLS with rustls on ring (the stack the server
//! already has), trusting the well-known public roots or, for a private
//! CA, the roots of ACMECAFile.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::certs::CertError;

/// One request, connection and handshake included, gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a certificate chain is a few kilobytes).
const MAX_BODY: usize = 1 << 20;

/// An HTTPS client for one ACME server.
#[derive(Clone)]
pub(super) struct Https {
    connector: TlsConnector,
}

impl Https {
    /// Trusting the roots in `ca_file`, or the well-known public ones.
    pub fn new(ca_file: Option<&Path>, provider: Arc<CryptoProvider>) -> Result<Https, CertError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let fail = |message: String| CertError {
                    path: path.to_path_buf(),
                    message,
                };
                let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert =
                        cert.map_err(|e| fail(format!("not a PEM certificate file: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| fail(format!("not a usable root certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(fail("no CERTIFICATE block found".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CertError {
                path: ca_file.unwrap_or(Path::new("")).to_path_buf(),
                message: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Https {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>>;

impl HttpClient for Https {
    fn request(&self, request: Request<BodyWrapper<Bytes>>) -> Answer {
        let connector = self.connector.clone();
        Box::pin(async move {
            let uri = request.uri().clone();
            match tokio::time::timeout(REQUEST_TIMEOUT, send(connector, request)).await {
                Ok(result) => result.map_err(|e| other(format!("{}: {e}", place(&uri)))),
                Err(_) => Err(other(format!(
                    "{}: no answer within {REQUEST_TIMEOUT:?}",
                    place(&uri)
                ))),
            }
        })
    }
}

fn other(message: String) -> instant_acme::Error {
    instant_acme::Error::Other(message.into())
}

/// `host:port` of a URL, to say where an error happened.
fn place(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    format!("{host}:{}", uri.port_u16().unwrap_or(443))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn send(
    connector: TlsConnector,
    mut request: Request<BodyWrapper<Bytes>>,
) -> Result<BytesResponse, BoxError> {
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("https") {
        return Err("the ACME server must be reached over https".into());
    }
    let host = uri.host().ok_or("no host in the URL")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let name = ServerName::try_from(host.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Origin form and a Host header, as HTTP/1.1 servers expect.
    let authority = uri.authority().ok_or("no host in the URL")?.as_str();
    request
        .headers_mut()
        .insert(HOST, HeaderValue::from_str(authority)?);
    *request.uri_mut() = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY).collect().await?.to_bytes();
    let body = if parts.status.is_client_error() || parts.status.is_server_error() {
        as_problem(&parts, body)
    } else {
        body
    };
    Ok(BytesResponse {
        parts,
        body: Box::new(body),
    })
}

/// An error answer that is not a JSON problem document (a proxy's error
/// page, say) turned into one, so that it reads as what happened rather
/// than as a JSON syntax error.
fn as_problem(parts: &hyper::http::response::Parts, body: Bytes) -> Bytes {
    let json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json && serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
        return body;
    }
    let problem = serde_json::json!({
        "detail": format!("the server answered HTTP {}", parts.status),
        "status": parts.status.as_u16(),
    });
    Bytes::from(problem.to_string())
}
