//! A [`Channel`] to authd, in plain text or over TLS (with a client certificate when authd
//! asks for one), for [`KeySource::jwks`](crate::KeySource::jwks) and
//! [`AuthLayer::validate_with_authd`](crate::AuthLayer::validate_with_authd).
use std::fmt;
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// What a service trusts and presents when it talks to authd over TLS: the CA certificate
/// that signed authd's certificate (authd's `AUTHD_TLS_CERT`) and, for an authd that asks
/// for client certificates (`AUTHD_TLS_CLIENT_CA`), a certificate signed by that CA and
/// its private key. All PEM.
///
/// Only the given CA is trusted, not the system's roots. `Debug` never prints the key.
#[derive(Clone)]
pub struct TlsOptions {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &format_args!("<{} bytes>", self.ca_pem.len()))
            .field(
                "identity",
                &self.identity.as_ref().map(|_| "<certificate and key>"),
            )
            .finish()
    }
}

/// One of the PEM parts of [`TlsOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPart {
    /// The CA certificate that signed authd's certificate.
    CaCert,
    /// The client certificate presented to authd.
    ClientCert,
    /// The client certificate's private key.
    ClientKey,
}

impl TlsPart {
    /// The label of the PEM block the part must hold.
    fn pem_label(self) -> &'static str {
        match self {
            Self::CaCert | Self::ClientCert => "CERTIFICATE",
            Self::ClientKey => "PRIVATE KEY",
        }
    }
}

impl fmt::Display for TlsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CaCert => "CA certificate",
            Self::ClientCert => "client certificate",
            Self::ClientKey => "client key",
        })
    }
}

/// A file of [`TlsOptions::from_files`] that cannot be used: unreadable, or not holding the
/// PEM block it should (`source` is then of kind [`std::io::ErrorKind::InvalidData`]).
#[derive(Debug, thiserror::Error)]
#[error("{part} {}: {source}", path.display())]
#[non_exhaustive]
pub struct TlsFileError {
    /// Which part the file was for.
    pub part: TlsPart,
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be used.
    #[source]
    pub source: std::io::Error,
}

/// Why [`authd_channel`] (or [`authd_endpoint`]) refused its arguments. Nothing was sent:
/// these are checked before any connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Not a URL, or not an `http://` or `https://` one.
    #[error("{url:?} is not an authd URL (http://host:port or https://host:port): {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https://` URL without [`TlsOptions`]: there is no CA to check authd's
    /// certificate against.
    #[error("{url:?} is https://: give the CA certificate that signed authd's certificate")]
    HttpsWithoutTls {
        /// The URL given.
        url: String,
    },
    /// [`TlsOptions`] with an `http://` URL, which would be plain text.
    #[error("{url:?} is plain text: TLS to authd needs an https:// URL")]
    TlsWithoutHttps {
        /// The URL given.
        url: String,
    },
    /// A PEM part holds no block of the kind it should.
    #[error("the {part} holds no PEM {} block", part.pem_label())]
    NotPem {
        /// The part at fault.
        part: TlsPart,
    },
    /// rustls refused the certificates or the key (unparsable, or a key that does not fit
    /// the client certificate).
    #[error("cannot use the TLS certificates: {0}")]
    Tls(String),
}

impl TlsOptions {
    /// Trust `ca_pem` (PEM, one or more certificates) for authd's certificate; present no
    /// client certificate.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            identity: None,
        }
    }

    /// Present `cert_pem` (the client certificate, optionally followed by its chain) with
    /// `key_pem` (its private key) to an authd that requires client certificates.
    pub fn with_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Read the CA certificate and, if given, the client certificate and key (in that
    /// order) from PEM files, such as those `authd tls self-signed` writes (`ca.pem`,
    /// `client.pem`, `client.key`). A file that cannot be read, or holds no PEM block of
    /// the expected kind, is an error naming it.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsFileError> {
        let tls = Self::new(read_pem(ca, TlsPart::CaCert)?);
        match identity {
            Some((cert, key)) => Ok(tls.with_identity(
                read_pem(cert, TlsPart::ClientCert)?,
                read_pem(key, TlsPart::ClientKey)?,
            )),
            None => Ok(tls),
        }
    }

    /// Whether a client certificate is presented.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    fn client_config(&self) -> Result<ClientTlsConfig, ConnectError> {
        check_pem(&self.ca_pem, TlsPart::CaCert)?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.identity {
            Some((cert, key)) => {
                check_pem(cert, TlsPart::ClientCert)?;
                check_pem(key, TlsPart::ClientKey)?;
                Ok(tls.identity(Identity::from_pem(cert, key)))
            }
            None => Ok(tls),
        }
    }
}

/// A lazily connecting [`Channel`] to authd at `url`: `http://host:port` in plain text, or
/// `https://host:port` with `tls`. The host name (or IP address) in the URL must be one
/// authd's certificate names.
///
/// Nothing is sent until the first call, so authd may start later; a refused handshake
/// (an unknown CA, a missing or refused client certificate) is the first call's error,
/// such as [`KeySourceError::Fetch`](crate::KeySourceError::Fetch). Call it inside a Tokio
/// runtime.
///
/// ```no_run
/// use std::path::Path;
///
/// use authd_client::{JwksOptions, KeySource, TlsOptions, authd_channel};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = TlsOptions::from_files(
///     Path::new("certs/ca.pem"),
///     Some((Path::new("certs/client.pem"), Path::new("certs/client.key"))),
/// )?;
/// let authd = authd_channel("https://localhost:50051", Some(&tls))?;
/// let keys = KeySource::connect_jwks(authd, JwksOptions::new("authd", "authd")).await?;
/// # let _ = keys;
/// # Ok(())
/// # }
/// ```
pub fn authd_channel(url: &str, tls: Option<&TlsOptions>) -> Result<Channel, ConnectError> {
    Ok(authd_endpoint(url, tls)?.connect_lazy())
}

/// The [`Endpoint`] behind [`authd_channel`], with the same checks, to set timeouts or to
/// connect eagerly. Needs no runtime.
pub fn authd_endpoint(url: &str, tls: Option<&TlsOptions>) -> Result<Endpoint, ConnectError> {
    let bad = |reason: String| ConnectError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| bad(e.to_string()))?;
    let uri = endpoint.uri();
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(other) => return Err(bad(format!("unknown scheme {other:?}"))),
        None => return Err(bad("no scheme".into())),
    };
    match (https, tls) {
        (false, None) => Ok(endpoint),
        (true, Some(tls)) => endpoint
            .tls_config(tls.client_config()?)
            .map_err(|e| ConnectError::Tls(error_chain(&e))),
        (true, None) => Err(ConnectError::HttpsWithoutTls {
            url: url.to_owned(),
        }),
        (false, Some(_)) => Err(ConnectError::TlsWithoutHttps {
            url: url.to_owned(),
        }),
    }
}

fn read_pem(path: &Path, part: TlsPart) -> Result<Vec<u8>, TlsFileError> {
    let fail = |source| TlsFileError {
        part,
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(fail)?;
    check_pem(&bytes, part).map_err(|_| {
        fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no PEM {} block in it", part.pem_label()),
        ))
    })?;
    Ok(bytes)
}

/// Refuses bytes without a `-----BEGIN ...{label}-----` line: rustls would skip them
/// silently, and trust no CA at all.
fn check_pem(bytes: &[u8], part: TlsPart) -> Result<(), ConnectError> {
    let end = format!("{}-----", part.pem_label());
    let found = String::from_utf8_lossy(bytes)
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&end));
    if found {
        Ok(())
    } else {
        Err(ConnectError::NotPem { part })
    }
}

/// tonic's transport error says little; the cause is below it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let next = s.to_string();
        if !msg.contains(&next) {
            msg = format!("{msg}: {next}");
        }
        cur = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, a client certificate it signed and the client's key, as `authd tls
    /// self-signed` would write them; and a key of another pair.
    struct Pki {
        ca: String,
        cert: String,
        key: String,
        other_key: String,
    }

    fn pki() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Pki {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
            other_key: KeyPair::generate().unwrap().serialize_pem(),
        }
    }

    #[test]
    fn url_scheme_and_tls_must_agree() {
        let tls = TlsOptions::new(pki().ca);
        assert!(authd_endpoint("http://127.0.0.1:50051", None).is_ok());
        assert!(authd_endpoint("https://localhost:50051", Some(&tls)).is_ok());

        let e = authd_endpoint("https://localhost:50051", None).unwrap_err();
        assert!(matches!(e, ConnectError::HttpsWithoutTls { .. }), "{e}");
        assert!(e.to_string().contains("CA certificate"), "{e}");
        let e = authd_endpoint("http://localhost:50051", Some(&tls)).unwrap_err();
        assert!(matches!(e, ConnectError::TlsWithoutHttps { .. }), "{e}");
        assert!(e.to_string().contains("https://"), "{e}");
    }

    #[test]
    fn urls_that_are_not_http_or_https_are_refused() {
        for url in [
            "",
            "not a url",
            "127.0.0.1:50051",
            "ftp://authd:21",
            "/authd",
        ] {
            let e = authd_endpoint(url, None).unwrap_err();
            assert!(matches!(e, ConnectError::BadUrl { .. }), "{url:?}: {e}");
            assert!(e.to_string().contains(&format!("{url:?}")), "{e}");
        }
    }

    #[test]
    fn pem_parts_are_checked_before_connecting() {
        let p = pki();
        let url = "https://localhost:50051";
        let with = |tls: TlsOptions| authd_endpoint(url, Some(&tls)).map(|_| ());
        with(TlsOptions::new(p.ca.clone()).with_identity(p.cert.clone(), p.key.clone())).unwrap();

        let cases = [
            (TlsOptions::new(p.key.clone()), TlsPart::CaCert),
            (
                TlsOptions::new(p.ca.clone()).with_identity(p.key.clone(), p.key.clone()),
                TlsPart::ClientCert,
            ),
            (
                TlsOptions::new(p.ca.clone()).with_identity(p.cert.clone(), p.cert.clone()),
                TlsPart::ClientKey,
            ),
        ];
        for (tls, part) in cases {
            match with(tls) {
                Err(ConnectError::NotPem { part: got }) => assert_eq!(got, part),
                other => panic!("{part}: {other:?}"),
            }
        }
        let mismatched = TlsOptions::new(p.ca.clone()).with_identity(p.cert.clone(), p.other_key);
        assert!(matches!(with(mismatched), Err(ConnectError::Tls(_))));
    }

    #[test]
    fn files_are_read_and_named_when_unusable() {
        let p = pki();
        let dir = std::env::temp_dir().join(format!("authd-client-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (ca, cert, key) = (
            write("ca.pem", &p.ca),
            write("client.pem", &p.cert),
            write("client.key", &p.key),
        );

        let tls = TlsOptions::from_files(&ca, Some((&cert, &key))).unwrap();
        assert!(tls.has_identity());
        assert!(!format!("{tls:?}").contains("PRIVATE KEY"), "{tls:?}");
        assert!(authd_endpoint("https://localhost:1", Some(&tls)).is_ok());
        assert!(!TlsOptions::from_files(&ca, None).unwrap().has_identity());

        let missing = dir.join("nope.pem");
        let e = TlsOptions::from_files(&missing, None).unwrap_err();
        assert_eq!(
            (e.part, e.source.kind()),
            (TlsPart::CaCert, std::io::ErrorKind::NotFound)
        );
        assert!(e.to_string().contains(missing.to_str().unwrap()), "{e}");
        let e = TlsOptions::from_files(&ca, Some((&key, &key))).unwrap_err();
        assert_eq!(
            (e.part, e.source.kind()),
            (TlsPart::ClientCert, std::io::ErrorKind::InvalidData)
        );
        assert!(e.to_string().contains("client certificate"), "{e}");
        let e = TlsOptions::from_files(&ca, Some((&cert, &missing))).unwrap_err();
        assert_eq!(e.part, TlsPart::ClientKey);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
