//! authd as a child process, configured by this tool alone, and the connections to it.
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// How long authd may take to migrate a fresh database and start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines kept to explain a failed start.
const TAIL_LINES: usize = 20;
/// HS256 secret for `--hs256` (a loopback bench: no need for a random one).
pub const BENCH_SECRET: &str = "authd-load-bench-secret-0123456789abcdef";
/// The name on the server certificate `authd tls self-signed` makes by default.
const TLS_NAME: &str = "localhost";

/// Where a gRPC server listens and, over TLS, the CA to trust.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub ca_pem: Option<Arc<[u8]>>,
}

impl Target {
    /// `n` separate HTTP/2 connections (one per `Channel`), connected now so no
    /// handshake falls inside a measurement.
    pub async fn connect(&self, n: usize) -> Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            channels.push(
                self.endpoint()?
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to {}", self.addr))?,
            );
        }
        Ok(channels)
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint =
            Endpoint::from_shared(format!("{scheme}://{}", self.addr))?.tcp_nodelay(true);
        Ok(match &self.ca_pem {
            // The address is an IP; the certificate is checked against the name it carries.
            Some(ca) => endpoint.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name(TLS_NAME),
            )?,
            None => endpoint,
        })
    }
}

/// The certificates of `authd tls self-signed`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: Arc<[u8]>,
}

impl TlsFiles {
    /// Made by the authd binary itself, as an operator would.
    pub fn generate(authd_bin: &Path, dir: &Path) -> Result<Self> {
        let out = Command::new(authd_bin)
            .args(["tls", "self-signed", "--out"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", authd_bin.display()))?;
        if !out.status.success() {
            bail!(
                "`authd tls self-signed` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ca = dir.join("ca.pem");
        Ok(Self {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca_pem: std::fs::read(&ca)
                .with_context(|| format!("cannot read {}", ca.display()))?
                .into(),
        })
    }
}

/// How to start authd.
#[derive(Debug)]
pub struct Config<'a> {
    pub bin: &'a Path,
    pub database_url: String,
    pub hs256: bool,
    pub tls: Option<&'a TlsFiles>,
    pub rust_log: &'a str,
}

/// A running authd; killed when dropped.
pub struct Authd {
    child: Child,
    pub target: Target,
    log_bytes: Arc<AtomicU64>,
}

impl Authd {
    /// Start `authd serve` on a free port and wait for its "serving" line. Every `AUTHD_*`
    /// variable of this environment is dropped first, so the run measures the settings
    /// below and authd's defaults, nothing left over in a shell.
    pub fn start(config: &Config<'_>) -> Result<Self> {
        let mut cmd = Command::new(config.bin);
        cmd.arg("serve");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AUTHD_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("AUTHD_LISTEN", "127.0.0.1:0")
            .env("AUTHD_DATABASE_URL", &config.database_url)
            .env("AUTHD_ALLOW_REGISTRATION", "true")
            .env("AUTHD_LOG_FORMAT", "json")
            .env("RUST_LOG", config.rust_log)
            // Throttling off: the Issue scenarios measure the hashing limit, and every call
            // comes from one address and a handful of accounts.
            .env("AUTHD_LOGIN_FREE_FAILURES", "1000000")
            .env("AUTHD_ADDRESS_FREE_FAILURES", "1000000");
        if config.hs256 {
            cmd.env("AUTHD_JWT_SECRET", BENCH_SECRET);
        }
        if let Some(tls) = config.tls {
            cmd.env("AUTHD_TLS_CERT", &tls.cert)
                .env("AUTHD_TLS_KEY", &tls.key);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build it: cargo build --release -p authd)",
                    config.bin.display()
                )
            })?;

        let log_bytes = Arc::new(AtomicU64::new(0));
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        // Plain threads drain the pipes: a reader on the loaded runtime could fall behind
        // and stall authd's logging, which would then be measured as authd's slowness.
        if let Some(out) = child.stdout.take() {
            drain(out, log_bytes.clone(), tail.clone(), Some(addr_tx))?;
        }
        if let Some(err) = child.stderr.take() {
            drain(err, log_bytes.clone(), tail.clone(), None)?;
        }
        let mut authd = Self {
            child,
            target: Target {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                ca_pem: config.tls.map(|t| t.ca_pem.clone()),
            },
            log_bytes,
        };
        match addr_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => authd.target.addr = addr,
            Err(_) => {
                // Give the reader a moment to collect the last lines of a crash.
                std::thread::sleep(Duration::from_millis(200));
                let status = authd.child.try_wait().ok().flatten();
                let tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
                bail!(
                    "authd did not start serving ({}); its last log lines:\n{}",
                    status.map_or("still running".into(), |s| s.to_string()),
                    tail.join("\n")
                );
            }
        }
        Ok(authd)
    }

    /// The process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes authd has written to stdout and stderr so far.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Authd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Count a pipe's bytes, keep its last lines, and send the address of the line that
/// says authd is serving.
fn drain(
    pipe: impl Read + Send + 'static,
    bytes: Arc<AtomicU64>,
    tail: Arc<Mutex<VecDeque<String>>>,
    mut addr_tx: Option<mpsc::Sender<SocketAddr>>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("authd-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            let mut keep_tail = true;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                // Until authd serves, every line may explain a failure; after that only the
                // count matters (stderr, rarely written, is always kept).
                if let Some(tx) = &addr_tx
                    && let Some(addr) = serving_addr(&line)
                {
                    let _ = tx.send(addr);
                    addr_tx = None;
                    keep_tail = false;
                }
                if !keep_tail {
                    continue;
                }
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.trim_end().to_owned());
            }
        })
        .context("cannot start a log reader thread")?;
    Ok(())
}

/// The `addr` of authd's JSON line `"message":"authd serving gRPC"`.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("authd serving gRPC") {
        return None;
    }
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event.get("message")?.as_str()? != "authd serving gRPC" {
        return None;
    }
    event.get("addr")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_line_gives_the_bound_address() {
        let line = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","message":"authd serving gRPC","addr":"127.0.0.1:40123","tls":false,"target":"authd::server"}"#;
        assert_eq!(serving_addr(line), Some("127.0.0.1:40123".parse().unwrap()));
        let other = r#"{"level":"INFO","message":"rpc finished","addr":"127.0.0.1:1"}"#;
        assert_eq!(serving_addr(other), None);
        assert_eq!(serving_addr("authd serving gRPC, not JSON"), None);
    }
}
