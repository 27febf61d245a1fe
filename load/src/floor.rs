//! The floors every figure is divided by: a bare tonic server answering `Validate` with a
//! fixed reply the size of authd's, and the time of one argon2id verify.
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use authd_client::proto::{ValidateRequest, ValidateResponse};
use prost::Message as _;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::authd::{Target, TlsFiles};

/// `authd.v1.AuthService` with only `Validate`, which answers a clone of one real authd
/// reply; every other method is UNIMPLEMENTED. Written the way tonic's generated server
/// routes a unary call (same codec, same `Grpc::unary`), but by hand, so a new RPC in
/// the contract does not need a stub here.
#[derive(Clone)]
struct Floor {
    reply: Arc<ValidateResponse>,
}

impl NamedService for Floor {
    const NAME: &'static str = "authd.v1.AuthService";
}

impl Service<http::Request<Body>> for Floor {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != "/authd.v1.AuthService/Validate" {
            return Box::pin(async { Ok(Status::new(Code::Unimplemented, "").into_http()) });
        }
        let method = Validate(self.reply.clone());
        Box::pin(async move {
            Ok(Grpc::new(ProstCodec::default())
                .unary(method, request)
                .await)
        })
    }
}

struct Validate(Arc<ValidateResponse>);

impl UnaryService<ValidateRequest> for Validate {
    type Response = ValidateResponse;
    type Future = Ready<Result<Response<ValidateResponse>, Status>>;

    fn call(&mut self, _: Request<ValidateRequest>) -> Self::Future {
        ready(Ok(Response::new(ValidateResponse::clone(&self.0))))
    }
}

/// The bare server, in a process of its own: this program started again with
/// `--serve-floor`, so it stands on the same footing as authd (its own runtime, built as
/// authd builds it, its own allocator, its CPU time read the same way) instead of sharing
/// the load generator's process. Killed when dropped.
pub struct FloorServer {
    pub target: Target,
    child: Child,
}

impl FloorServer {
    pub fn start(reply: &ValidateResponse, tls: Option<&TlsFiles>) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let mut cmd = Command::new(exe);
        cmd.arg("--serve-floor").arg(hex(&reply.encode_to_vec()));
        if let Some(tls) = tls {
            cmd.arg("--floor-tls-cert")
                .arg(&tls.cert)
                .arg("--floor-tls-key")
                .arg(&tls.key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the floor server")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            // The first line, or end of file if it failed (its error went to stderr).
            BufReader::new(out).read_line(&mut line)?;
        }
        let Some(addr) = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the floor server did not start");
        };
        Ok(Self {
            target: Target {
                addr,
                ca_pem: tls.map(|t| t.ca_pem.clone()),
            },
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long the floor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Standard input closes: the parent that started it has gone (`--serve-floor`).
    StdinCloses,
    /// Killed (`--serve-floor-standalone`, for benches/h2load.sh).
    Killed,
}

/// `--serve-floor`: no layers, no telemetry, no logging, TCP_NODELAY like authd's
/// listener. Prints `listening ADDR`, then serves until `until`.
pub fn serve(reply_hex: &str, tls: Option<(&Path, &Path)>, until: Until) -> Result<()> {
    let reply = ValidateResponse::decode(unhex(reply_hex)?.as_slice())?;
    let tls_config = match tls {
        Some((cert, key)) => Some(ServerTlsConfig::new().identity(Identity::from_pem(
            std::fs::read(cert).context("cannot read the server certificate")?,
            std::fs::read(key).context("cannot read the server key")?,
        ))),
        None => None,
    };
    // authd's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        let shutdown = async move {
            match until {
                Until::StdinCloses => {
                    let _ = tokio::task::spawn_blocking(|| {
                        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                    })
                    .await;
                }
                Until::Killed => std::future::pending().await,
            }
        };
        let mut builder = Server::builder();
        if let Some(config) = tls_config {
            builder = builder.tls_config(config)?;
        }
        builder
            .add_service(Floor {
                reply: Arc::new(reply),
            })
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await?;
        Ok(())
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits");
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .context("not a hex digit")
        })
        .collect()
}

/// The Issue floor: how many logins per second the cores can verify, with nothing else
/// in the way.
#[derive(Debug, Clone, Copy)]
pub struct Argon2Floor {
    pub cores: usize,
    /// One verify, alone on the machine.
    pub verify: Duration,
    /// One verify while every core runs one: what each costs when the cores share the
    /// memory bus and the last-level cache (two 19 MiB verifies do not fit in 32 MiB of
    /// L3, one does). `None` when not timed.
    pub verify_all_cores: Option<Duration>,
}

impl Argon2Floor {
    /// The floor: cores ÷ one verify alone.
    pub fn per_second(&self) -> f64 {
        self.cores as f64 / self.verify.as_secs_f64()
    }

    /// What the cores verify per second when all of them hash at once.
    pub fn per_second_all_cores(&self) -> Option<f64> {
        self.verify_all_cores
            .map(|v| self.cores as f64 / v.as_secs_f64())
    }
}

/// authd's default parameters (m = 19456 KiB, t = 2, p = 1).
pub const M_KIB: u32 = 19_456;
pub const T: u32 = 2;
pub const P: u32 = 1;
/// Batches of verifies timed; the fastest batch is the floor (another process can only
/// slow a batch down, never speed it up).
const BATCHES: u32 = 5;
const VERIFIES_PER_BATCH: u32 = 4;

/// Time one verify the way authd does it (parse the stored PHC string, then
/// `verify_password`), on one thread, after a warm-up: the mean of the fastest batch.
pub fn argon2_floor() -> Result<Argon2Floor> {
    let params = Params::new(M_KIB, T, P, None).map_err(|e| anyhow!("argon2 params: {e}"))?;
    let password = b"correct horse battery staple 42";
    let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password)
        .map_err(|e| anyhow!("argon2 hash: {e}"))?
        .to_string();
    let verify = || -> Result<()> {
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow!("argon2 PHC: {e}"))?;
        Argon2::default()
            .verify_password(password, &parsed)
            .map_err(|e| anyhow!("argon2 verify: {e}"))
    };
    verify()?;
    let mut fastest = Duration::MAX;
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..VERIFIES_PER_BATCH {
            verify()?;
        }
        fastest = fastest.min(start.elapsed() / VERIFIES_PER_BATCH);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The same batches, one thread per core started together; the slowest thread of a
    // batch ends it, the fastest batch is kept.
    let mut fastest_all = Duration::MAX;
    for _ in 0..BATCHES {
        let start = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let threads: Vec<_> = (0..cores)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        for _ in 0..VERIFIES_PER_BATCH {
                            verify()?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for t in threads {
                t.join()
                    .map_err(|_| anyhow!("an argon2 thread panicked"))??;
            }
            Ok(())
        })?;
        fastest_all = fastest_all.min(start.elapsed() / VERIFIES_PER_BATCH);
    }
    Ok(Argon2Floor {
        cores,
        verify: fastest,
        verify_all_cores: Some(fastest_all),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(hex(&bytes), "00017f80ff");
        assert_eq!(unhex("00017f80ff").unwrap(), bytes);
        assert!(unhex("0").is_err());
        assert!(unhex("zz").is_err());
    }
}
