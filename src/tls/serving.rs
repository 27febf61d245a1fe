//! The server side of TLS: rustls (ring, TLS 1.2 and 1.3 only) with a certificate that is
//! swapped in place when the files change, so cert-manager style rotation needs no restart
//! and a connection never sees a half-written pair.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// A handshake that has not finished by then is dropped, so idle sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the gRPC server to take them.
const ACCEPTED_BACKLOG: usize = 128;

/// A TLS file that cannot be used, named by its setting and path.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {setting} {path}: {reason}")]
pub struct TlsFileError {
    pub setting: &'static str,
    pub path: String,
    pub reason: String,
}

/// TLS for the gRPC listener, built from `AUTHD_TLS_CERT`, `AUTHD_TLS_KEY` and optionally
/// `AUTHD_TLS_CLIENT_CA`.
pub struct ServerTls {
    config: Arc<ServerConfig>,
    certs: Arc<CurrentCert>,
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The file contents last looked at, good or bad: a bad pair is reported once, not on
    /// every check, and an unchanged pair is not parsed again.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

/// What the handshake presents; swapped whole, so every handshake gets one consistent pair.
#[derive(Debug)]
struct CurrentCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl ServerTls {
    /// Read and check every file; any problem is one error naming the setting and file.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsFileError> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let cert_pem = read(cert, "AUTHD_TLS_CERT")?;
        let key_pem = read(key, "AUTHD_TLS_KEY")?;
        let pair = certified_key(cert, &cert_pem, key, &key_pem, &provider)?;
        let certs = Arc::new(CurrentCert(ArcSwap::from_pointee(pair)));

        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError {
                setting: "AUTHD_TLS_CERT",
                path: cert.display().to_string(),
                reason: e.to_string(),
            })?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let fail = |reason: String| TlsFileError {
                    setting: "AUTHD_TLS_CLIENT_CA",
                    path: ca.display().to_string(),
                    reason,
                };
                let pem = read(ca, "AUTHD_TLS_CLIENT_CA")?;
                let mut roots = RootCertStore::empty();
                for c in parse_certs(&pem).map_err(fail)? {
                    roots
                        .add(c)
                        .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| fail(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            certs,
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            provider,
            seen: Mutex::new((cert_pem, key_pem)),
        })
    }

    /// Read the files again and serve the new pair if they changed and are good. `Ok(true)`
    /// when a new pair is now served, `Ok(false)` when nothing changed; on error the current
    /// pair stays in force.
    pub fn reload(&self) -> Result<bool, TlsFileError> {
        let cert_pem = read(&self.cert_path, "AUTHD_TLS_CERT")?;
        let key_pem = read(&self.key_path, "AUTHD_TLS_KEY")?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Ok(false);
            }
            // Remembered even if bad: the next check is quiet until the files change again
            // (a rotation that writes the certificate, then the key, passes through a
            // mismatched pair for a moment).
            *seen = (cert_pem.clone(), key_pem.clone());
        }
        let pair = certified_key(
            &self.cert_path,
            &cert_pem,
            &self.key_path,
            &key_pem,
            &self.provider,
        )?;
        self.certs.0.store(Arc::new(pair));
        Ok(true)
    }

    /// The certificate files, for log lines.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Accept TCP connections on `listener` and hand over the ones whose TLS handshake
    /// succeeds. Handshakes run concurrently, so a slow or failing client holds up no one.
    /// Ends (and closes the listener) when the returned stream is dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = TlsAcceptor::from(self.config.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        // A client's failure (plain text, unknown CA, no certificate):
                        // refused, the server goes on; debug so a scanner cannot flood logs.
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

fn read(path: &Path, setting: &'static str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError {
        setting,
        path: path.display().to_string(),
        reason: format!("cannot read it: {e}"),
    })
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM CERTIFICATE block in it".into());
    }
    Ok(certs)
}

/// The chain and key, checked: parseable, the leaf certificate valid now, and the key the
/// one the leaf certifies.
fn certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsFileError> {
    let cert_fail = |reason: String| TlsFileError {
        setting: "AUTHD_TLS_CERT",
        path: cert_path.display().to_string(),
        reason,
    };
    let key_fail = |reason: String| TlsFileError {
        setting: "AUTHD_TLS_KEY",
        path: key_path.display().to_string(),
        reason,
    };
    let chain = parse_certs(cert_pem).map_err(cert_fail)?;
    check_validity(&chain[0]).map_err(cert_fail)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| key_fail(format!("no usable PEM private key in it: {e}")))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        key_fail(format!(
            "does not fit the certificate {}: {e}",
            cert_path.display()
        ))
    })
}

fn check_validity(leaf: &CertificateDer<'_>) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now < validity.not_before {
        return Err(format!("not valid before {}", validity.not_before));
    }
    if now > validity.not_after {
        return Err(format!("expired on {}", validity.not_after));
    }
    Ok(())
}
