//! Metric names, recording helpers and the Prometheus exporter. With no exporter installed
//! (AUTHD_METRICS_LISTEN unset) recording is a no-op.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

pub const RPC_REQUESTS: &str = "authd_rpc_requests_total";
pub const RPC_DURATION: &str = "authd_rpc_duration_seconds";
pub const LOGINS_FAILED: &str = "authd_logins_failed_total";
pub const LOGINS_THROTTLED: &str = "authd_logins_throttled_total";
pub const REFRESH_REUSE: &str = "authd_refresh_reuse_detected_total";
pub const SESSIONS_REVOKED: &str = "authd_sessions_revoked_total";
pub const PASSWORD_HASHES_QUEUED: &str = "authd_password_hashes_queued";
pub const PASSWORD_HASHES_RUNNING: &str = "authd_password_hashes_running";
pub const DB_ERRORS: &str = "authd_database_errors_total";

/// Latency buckets: from a cached Validate (well under a millisecond) to a queued login.
const RPC_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

// Whether an exporter runs: with metrics off (the default), the per-RPC labels are not
// even built, so every call skips their allocations.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// How often the recorder's upkeep runs (the exporter's own default).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Record metrics from now on and serve them as `/metrics` (Prometheus text format) on
/// `listener`, from background tasks. The caller binds the listener, so it knows the real
/// port when the settings said port 0. Process-wide: call once, inside the runtime.
pub fn install(listener: TcpListener) -> Result<(), BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(RPC_DURATION.into()), RPC_BUCKETS)?
        .install_recorder()?;
    describe();
    INSTALLED.store(true, Ordering::Relaxed);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(serve(listener, handle));
    Ok(())
}

async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        RPC_REQUESTS,
        "gRPC calls finished, by method and status code"
    );
    describe_histogram!(RPC_DURATION, Unit::Seconds, "gRPC call latency, by method");
    describe_counter!(LOGINS_FAILED, "Issue calls refused, by reason");
    describe_counter!(
        LOGINS_THROTTLED,
        "Issue calls refused before any password check because the account or the \
         source address must wait, by scope"
    );
    describe_counter!(
        REFRESH_REUSE,
        "spent refresh tokens presented again (sessions revoked)"
    );
    describe_counter!(SESSIONS_REVOKED, "sessions ended early, by cause");
    describe_gauge!(
        PASSWORD_HASHES_QUEUED,
        "password hash/verify jobs waiting for a hashing worker"
    );
    describe_gauge!(
        PASSWORD_HASHES_RUNNING,
        "password hash/verify jobs running (never more than the core count)"
    );
    describe_counter!(DB_ERRORS, "database operations that failed");
}

/// Count one finished RPC and its latency.
pub(crate) fn record_rpc(method: &'static str, code: i32, latency: Duration) {
    if !INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    // Static label values: no allocation per call.
    let code = usize::try_from(code)
        .ok()
        .and_then(|c| CODE_NAMES.get(c))
        .copied()
        .unwrap_or("Unknown");
    metrics::counter!(RPC_REQUESTS, "method" => method, "code" => code).increment(1);
    metrics::histogram!(RPC_DURATION, "method" => method).record(latency.as_secs_f64());
}

/// gRPC status names by code, as `tonic::Code`'s `Debug` spells them.
const CODE_NAMES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

pub(crate) fn login_failed(reason: &'static str) {
    metrics::counter!(LOGINS_FAILED, "reason" => reason).increment(1);
}

pub(crate) fn login_throttled(scope: &'static str) {
    metrics::counter!(LOGINS_THROTTLED, "scope" => scope).increment(1);
}

pub(crate) fn refresh_reuse() {
    metrics::counter!(REFRESH_REUSE).increment(1);
}

pub(crate) fn session_revoked(cause: &'static str) {
    sessions_revoked(cause, 1);
}

pub(crate) fn sessions_revoked(cause: &'static str, n: u64) {
    metrics::counter!(SESSIONS_REVOKED, "cause" => cause).increment(n);
}

pub(crate) fn password_hashes(queued: usize, running: usize) {
    metrics::gauge!(PASSWORD_HASHES_QUEUED).set(queued as f64);
    metrics::gauge!(PASSWORD_HASHES_RUNNING).set(running as f64);
}

pub(crate) fn db_error() {
    metrics::counter!(DB_ERRORS).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_names_are_tonics() {
        for (i, name) in super::CODE_NAMES.iter().enumerate() {
            assert_eq!(format!("{:?}", tonic::Code::from_i32(i as i32)), *name);
        }
    }
}
