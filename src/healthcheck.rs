//! A grpc.health.v1 client for `authd healthcheck`: one call, a short timeout, and an
//! answer a person (or Docker) can act on.
use std::time::Duration;

use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Why a server is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("{0} is not a valid address: {1}")]
    BadAddress(String, String),
    #[error("cannot connect to {0}: {1}")]
    Unreachable(String, String),
    #[error("no answer from {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("{addr} reports {service:?} as {status}")]
    NotServing {
        addr: String,
        service: String,
        status: String,
    },
    #[error("health check of {0} failed: {1}")]
    Failed(String, String),
    #[error("cannot read {0}: {1}")]
    TlsFile(String, String),
}

/// TLS settings of the check: the CA that signed the server's certificate and, for a
/// server that wants client certificates, a certificate and key.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The client TLS configuration, or None for plain text (no CA given).
    pub fn client_config(&self) -> Result<Option<ClientTlsConfig>, Unhealthy> {
        let Some(ca) = &self.ca else {
            return Ok(None);
        };
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Unhealthy::TlsFile(p.display().to_string(), e.to_string()))
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(Some(tls))
    }
}

/// Ok when `service` at `url` is SERVING.
/// With a `tls` configuration the call goes over https.
pub async fn check(
    url: &str,
    service: &str,
    timeout: Duration,
    tls: Option<ClientTlsConfig>,
) -> Result<(), Unhealthy> {
    // One clock for the whole exchange (connect, handshake, call), so a silent peer and a
    // slow answer both read as "no answer".
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| Unhealthy::BadAddress(url.into(), e.to_string()))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Unhealthy::BadAddress(url.into(), source_chain(&e)))?;
    }
    let call = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Unhealthy::Unreachable(url.into(), source_chain(&e)))?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => Unhealthy::NotServing {
                    addr: url.into(),
                    service: service.into(),
                    status: "UNKNOWN (no such service)".into(),
                },
                _ => Unhealthy::Failed(url.into(), s.message().to_owned()),
            })
    };
    let answer = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| Unhealthy::Timeout(url.into(), timeout))??
        .into_inner();
    match ServingStatus::try_from(answer.status) {
        Ok(ServingStatus::Serving) => Ok(()),
        other => Err(Unhealthy::NotServing {
            addr: url.into(),
            service: service.into(),
            status: other.map_or_else(|_| "an unknown status".into(), |s| s.as_str_name().into()),
        }),
    }
}

/// tonic's transport error says "transport error"; the cause (refused, ...) is below it.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg = format!("{msg}: {s}");
        cur = s.source();
    }
    msg
}
