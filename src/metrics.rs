//! Metric names and recording helpers. With no exporter installed these are no-ops.
use std::time::Duration;

pub const RPC_REQUESTS: &str = "authd_rpc_requests_total";
pub const RPC_DURATION: &str = "authd_rpc_duration_seconds";

/// Count one finished RPC and its latency.
pub fn record_rpc(method: &str, code: i32, latency: Duration) {
    let code = format!("{:?}", tonic::Code::from_i32(code));
    metrics::counter!(RPC_REQUESTS, "method" => method.to_owned(), "code" => code).increment(1);
    metrics::histogram!(RPC_DURATION, "method" => method.to_owned()).record(latency.as_secs_f64());
}
