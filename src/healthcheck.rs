//! A grpc.health.v1 client for `authd healthcheck`: one call, a short timeout, and an
//! answer a person (or Docker) can act on.
use std::time::Duration;

use tonic::transport::Endpoint;
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
}

/// Ok when `service` at `url` is SERVING.
pub async fn check(url: &str, service: &str, timeout: Duration) -> Result<(), Unhealthy> {
    // One clock for the whole exchange (connect, handshake, call), so a silent peer and a
    // slow answer both read as "no answer".
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| Unhealthy::BadAddress(url.into(), e.to_string()))?;
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
