//! Logging set-up, and one span per RPC carrying method, gRPC status code and latency.
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber: pretty on a terminal, JSON otherwise; `RUST_LOG` filters
/// (default `info`, with the database drivers' per-statement logs at `warn`).
pub fn init(format: Option<LogFormat>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn")
    });
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Err only when a subscriber is already set (tests set up several apps): keep it.
    let _ = match format {
        LogFormat::Pretty => builder.pretty().try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The administrative commands' log: their events (a user disabled, sessions revoked) go
/// to standard error as one compact line each, so standard output stays the command's
/// answer (`authd user add` prints the new id there).
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .try_init();
}

/// Wraps the gRPC router: a span per call, and one log line when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTraceLayer;

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcTrace<S> {
    inner: S,
}

/// Every method this server answers. Metric labels and span fields take their name from
/// here, so a client calling made-up paths cannot grow the metrics without bound.
const SERVED_METHODS: &[&str] = &[
    "/authd.v1.AuthService/Register",
    "/authd.v1.AuthService/Issue",
    "/authd.v1.AuthService/Validate",
    "/authd.v1.AuthService/Refresh",
    "/authd.v1.AuthService/Revoke",
    "/authd.v1.AuthService/GetJwks",
    "/authd.v1.AuthService/IssueServiceToken",
    "/authd.v1.AuthService/ChangePassword",
    "/authd.v1.AdminService/CreateUser",
    "/authd.v1.AdminService/GetUser",
    "/authd.v1.AdminService/ListUsers",
    "/authd.v1.AdminService/DisableUser",
    "/authd.v1.AdminService/EnableUser",
    "/authd.v1.AdminService/DeleteUser",
    "/authd.v1.AdminService/SetRoles",
    "/authd.v1.AdminService/SetPassword",
    "/authd.v1.AdminService/ListSessions",
    "/authd.v1.AdminService/RevokeUserSessions",
    "/authd.v1.AdminService/CreateServiceAccount",
    "/authd.v1.AdminService/ListServiceAccounts",
    "/authd.v1.AdminService/RotateServiceAccountSecret",
    "/authd.v1.AdminService/DisableServiceAccount",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Calls that succeed by the thousand a second and change nothing: a success is counted in
/// the metrics and logged only at debug; at info a log line per call would fill an
/// operator's disk before the CPU is busy. Their refusals are still logged at info.
const QUIET_ON_SUCCESS: &[&str] = &[
    "/authd.v1.AuthService/Validate",
    "/authd.v1.AuthService/GetJwks",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// The request path if it names a served method, else `unknown`.
#[cfg(test)]
fn served_method(path: &str) -> &'static str {
    served_method_index(path).1
}

/// The served method a path names, with its place in `SERVED_METHODS` (one past the end
/// for `unknown`).
fn served_method_index(path: &str) -> (usize, &'static str) {
    SERVED_METHODS
        .iter()
        .position(|m| *m == path)
        .map_or((SERVED_METHODS.len(), "unknown"), |i| {
            (i, SERVED_METHODS[i])
        })
}

/// The gRPC status of a response whose status travels in its headers (every error a
/// unary handler returns); a success carries it in trailers, so no header means OK.
fn grpc_code<B>(res: &http::Response<B>) -> i32 {
    res.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcTrace<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let (index, method) = served_method_index(req.uri().path());
        let quiet = QUIET_ON_SUCCESS.contains(&method);
        // The span gives the handler's own events (a failed login, a reused token) their
        // method. The hot read-only methods log nothing of their own, so theirs is a debug
        // span: at info it is never built, which is most of what a call to them costs here.
        let span = if quiet {
            tracing::debug_span!("rpc", method = %method)
        } else {
            tracing::info_span!("rpc", method = %method)
        };
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(
            async move {
                let res = fut.await;
                let latency = start.elapsed();
                let code = match &res {
                    Ok(r) => grpc_code(r),
                    Err(_) => tonic::Code::Internal as i32,
                };
                crate::metrics::record_rpc(method, code, latency);
                let latency_ms = latency.as_secs_f64() * 1000.0;
                if code == 0 && quiet {
                    tracing::debug!(method, code, latency_ms, "rpc finished");
                } else if let Some(suppressed) = LOG_BUDGET[index].admit() {
                    let code_name = tonic::Code::from_i32(code);
                    if suppressed > 0 {
                        tracing::info!(
                            method,
                            code,
                            ?code_name,
                            latency_ms,
                            suppressed,
                            "rpc finished"
                        );
                    } else {
                        tracing::info!(method, code, ?code_name, latency_ms, "rpc finished");
                    }
                }
                res
            }
            .instrument(span),
        )
    }
}

/// Most `rpc finished` lines one method writes in a second: a flood of refused calls (a
/// scanner, a broken client) costs a few lines a second, not one per call. The first line
/// let through after a flood says how many were left out (`suppressed`).
const LOG_LINES_PER_SECOND: u32 = 50;

static LOG_BUDGET: [LogBudget; SERVED_METHODS.len() + 1] =
    [const { LogBudget::new() }; SERVED_METHODS.len() + 1];

/// A per-second allowance of log lines, shared by every call of one method.
struct LogBudget {
    /// The second (since the process started) the allowance is for.
    second: AtomicU64,
    used: AtomicU32,
    suppressed: AtomicU64,
}

impl LogBudget {
    const fn new() -> Self {
        Self {
            second: AtomicU64::new(0),
            used: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one written)` if this line may be written.
    fn admit(&self) -> Option<u64> {
        self.admit_at(process_second())
    }

    fn admit_at(&self, now: u64) -> Option<u64> {
        let second = self.second.load(Ordering::Relaxed);
        if second != now
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < LOG_LINES_PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn process_second() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_auth_service_method_is_a_served_method_and_nothing_else_is() {
        let set = crate::proto::FILE_DESCRIPTOR_SET;
        let fds = <prost_types::FileDescriptorSet as prost::Message>::decode(set).unwrap();
        let service = fds
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(_, s)| s.name() == "AuthService")
            .unwrap();
        for m in &service.1.method {
            let path = format!("/{}.{}/{}", service.0, service.1.name(), m.name());
            assert_eq!(served_method(&path), path, "{path} is served but unnamed");
        }
        assert_eq!(served_method("/authd.v1.AuthService/Nope"), "unknown");
        assert_eq!(served_method(&"/x".repeat(1000)), "unknown");
    }

    #[test]
    fn a_flood_of_lines_is_cut_to_the_budget_and_the_next_line_counts_what_was_left_out() {
        let budget = LogBudget::new();
        let written = (0..1000).filter(|_| budget.admit_at(7).is_some()).count();
        assert_eq!(written, LOG_LINES_PER_SECOND as usize);
        assert_eq!(
            budget.admit_at(8),
            Some(1000 - u64::from(LOG_LINES_PER_SECOND))
        );
        assert_eq!(budget.admit_at(8), Some(0));
    }
}
