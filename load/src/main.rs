//! authd-load: drives authd's RPCs and reports each figure as a ratio to a floor measured
//! in the same run (a bare tonic server for the gRPC calls, cores ÷ one argon2id verify
//! for logins), so results from a noisy or different machine still compare.
//! docs/performance.md tells how to run it and what each scenario measures.
mod authd;
mod cpu;
mod driver;
mod floor;
mod h2load;
mod lookup;
mod pgbench;
mod report;
mod scenarios;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use prost::Message as _;

use crate::authd::{Authd, BENCH_SECRET, Config, TlsFiles};
use crate::driver::Window;
use crate::floor::FloorServer;
use crate::report::{Header, Report};
use crate::scenarios::{Fixture, Runner, Scenario, Settings};

/// Load test of authd against floors measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "authd-load", version)]
struct Args {
    /// The authd binary to start (a release build: `cargo build --release -p authd`).
    #[arg(long, default_value = "target/release/authd")]
    authd_bin: PathBuf,
    /// Scenario to run; repeat for several. Default: all of them.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Measured time of each scenario.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load applied before each measurement starts.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// HTTP/2 connections (h2load -c).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Calls in flight per connection in the closed loop (h2load -m).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    streams: u16,
    /// Open loop instead: this many calls per second, latency counted from each call's
    /// intended send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Distinct live tokens of validate-many.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    tokens: u32,
    /// Concurrent refresh chains of the refresh scenario.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    chains: u16,
    /// Logins in flight in issue-ok, issue-wrong and the storm: enough to keep every
    /// hashing thread busy, fewer than authd queues (64 per core) before refusing.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    login_concurrency: u16,
    /// Alternating slices in which each authd row and its floor are measured, over
    /// --duration in all.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Validate calls per second (open loop) alone and during the storm.
    #[arg(long, default_value_t = 1000.0)]
    storm_rate: f64,
    /// When a caller of issue-after-cancelled's storm gives up on its login.
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    cancel_after: Duration,
    /// authd signs with an HS256 secret instead of its default Ed25519 key.
    #[arg(long)]
    hs256: bool,
    /// authd and the floor serve TLS (certificates from `authd tls self-signed`).
    #[arg(long, conflicts_with = "compare_tls")]
    tls: bool,
    /// Also measure the floor and validate-one over TLS (a second authd and floor),
    /// interleaved with the same over plain text, as ratios to them.
    #[arg(long)]
    compare_tls: bool,
    /// An existing, empty PostgreSQL database for authd (default: SQLite in a temporary
    /// directory), e.g. postgres://postgres@127.0.0.1:5432/authd_load.
    #[arg(long)]
    database_url: Option<String>,
    /// authd's RUST_LOG.
    #[arg(long, default_value = "info")]
    rust_log: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run no scenario: against the authd serving at --authd-addr, register accounts, log
    /// one in and write into this directory `validate.grpc` (a framed ValidateRequest for
    /// h2load), `reply.hex` (authd's reply, for --serve-floor-standalone) and `token`.
    /// For benches/h2load.sh.
    #[arg(long, requires = "authd_addr", value_name = "DIR")]
    h2load_fixture: Option<PathBuf>,
    /// The plain-text authd --h2load-fixture talks to.
    #[arg(long, value_name = "ADDR")]
    authd_addr: Option<SocketAddr>,
    /// Run no scenario: serve the bare floor, answering Validate with the reply in this
    /// file (`reply.hex` of --h2load-fixture), on a free port of 127.0.0.1, until killed.
    /// Prints `listening ADDR` first. For benches/h2load.sh.
    #[arg(long, value_name = "FILE", conflicts_with = "h2load_fixture")]
    serve_floor_standalone: Option<PathBuf>,
    /// Internal: be the floor server, answering Validate with this hex-encoded reply.
    #[arg(long, hide = true)]
    serve_floor: Option<String>,
    #[arg(long, hide = true, requires = "floor_tls_key")]
    floor_tls_cert: Option<PathBuf>,
    #[arg(long, hide = true)]
    floor_tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let floor = if let Some(reply) = &args.serve_floor {
        let tls = args
            .floor_tls_cert
            .as_deref()
            .zip(args.floor_tls_key.as_deref());
        Some(floor::serve(reply, tls, floor::Until::StdinCloses))
    } else {
        args.serve_floor_standalone.as_deref().map(|file| {
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))
                .and_then(|reply| floor::serve(reply.trim(), None, floor::Until::Killed))
        })
    };
    if let Some(served) = floor {
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("authd-load floor: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("authd-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = match (&args.h2load_fixture, args.authd_addr) {
        (Some(dir), Some(addr)) => runtime.block_on(h2load::write_fixture(addr, dir)),
        _ => runtime.block_on(run(args)),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authd-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let mut plan = if args.scenarios.is_empty() {
        <Scenario as clap::ValueEnum>::value_variants().to_vec()
    } else {
        args.scenarios.clone()
    };
    plan.sort();
    plan.dedup();
    // The lookup side needs PostgreSQL: skipped from the default plan without it.
    let postgres = args
        .database_url
        .as_deref()
        .is_some_and(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));
    if !postgres && plan.contains(&Scenario::VerifyVsLookup) {
        if !args.scenarios.is_empty() {
            bail!("verify-vs-lookup needs --database-url postgres://...");
        }
        plan.retain(|s| *s != Scenario::VerifyVsLookup);
    }
    if !(args.storm_rate.is_finite() && args.storm_rate > 0.0) {
        bail!("--storm-rate must be a positive number of calls per second");
    }
    let settings = Settings {
        connections: usize::from(args.connections),
        streams: usize::from(args.streams),
        window: Window {
            warmup: args.warmup,
            duration: args.duration,
        },
        rate: args.rate,
        tokens: usize::try_from(args.tokens)?,
        chains: usize::from(args.chains),
        login_concurrency: usize::from(args.login_concurrency),
        storm_rate: args.storm_rate,
        cancel_after: args.cancel_after,
        rounds: usize::from(args.rounds),
        refresh_floor: pgbench::RefreshFloor::available(
            args.database_url.as_deref(),
            &args.authd_bin,
        ),
    };
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let say = |line: &str| {
        if !args.json {
            eprintln!("{line}");
        }
    };

    // First, while nothing else runs: the argon2 floor wants a quiet machine.
    let hashing = [
        Scenario::IssueOk,
        Scenario::IssueWrong,
        Scenario::Storm,
        Scenario::IssueAfterCancelled,
    ];
    let argon2 = if plan.iter().any(|s| hashing.contains(s)) {
        say("timing argon2id verify...");
        Some(floor::argon2_floor()?)
    } else {
        None
    };

    let tls_files = if args.tls || args.compare_tls {
        Some(TlsFiles::generate(
            &args.authd_bin,
            &work.path().join("tls"),
        )?)
    } else {
        None
    };
    let database_url = |name: &str| {
        args.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", work.path().join(name).display()))
    };
    let config = Config {
        bin: &args.authd_bin,
        database_url: database_url("authd.db"),
        hs256: args.hs256,
        tls: tls_files.as_ref().filter(|_| args.tls),
        rust_log: &args.rust_log,
    };
    say("starting authd...");
    let authd = Authd::start(&config)?;
    let fixture = Fixture::prepare(&authd.target).await?;
    let floor = FloorServer::start(&fixture.reply, config.tls)?;
    let runner = Runner {
        settings: &settings,
        authd: &authd,
        floor: &floor,
        fixture: &fixture,
    };

    let mut rows = Vec::new();
    let mut verify_vs_lookup = None;
    for &scenario in &plan {
        say(&format!("running {scenario:?}..."));
        if scenario == Scenario::VerifyVsLookup {
            verify_vs_lookup = Some(verify_vs_lookup_run(&config, &fixture, &settings).await?);
        } else {
            rows.extend(runner.run(scenario).await?);
        }
    }
    if let Some(tls) = &tls_files
        && args.compare_tls
    {
        say("running the TLS comparison...");
        let tls_authd = Authd::start(&Config {
            database_url: database_url("authd-tls.db"),
            tls: Some(tls),
            ..config
        })?;
        let tls_fixture = Fixture::prepare(&tls_authd.target).await?;
        let tls_floor = FloorServer::start(&tls_fixture.reply, Some(tls))?;
        let tls_runner = Runner {
            settings: &settings,
            authd: &tls_authd,
            floor: &tls_floor,
            fixture: &tls_fixture,
        };
        rows.extend(runner.compare_tls(&tls_runner).await?);
    }

    let header = Header {
        authd_bin: args.authd_bin.display().to_string(),
        signing: if args.hs256 { "HS256" } else { "Ed25519" },
        transport: if args.tls { "TLS" } else { "plain text" },
        database: if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        connections: settings.connections,
        streams: settings.streams,
        rate: settings.rate,
        warmup_ms: settings.window.warmup.as_millis(),
        duration_ms: settings.window.duration.as_millis(),
        validate_reply_bytes: fixture.reply.encoded_len(),
    };
    let mut report = Report::finish(header, argon2, rows);
    report.verify_vs_lookup = verify_vs_lookup;
    // Over the whole run: after a storm, what the argon2 cap let authd grow to.
    let peak_rss = cpu::peak_rss(authd.pid());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
        if let Some(bytes) = peak_rss {
            println!(
                "authd peak RSS (VmHWM) over the run: {:.1} MiB",
                bytes as f64 / (1024.0 * 1024.0)
            );
        }
    }
    Ok(())
}

/// verify-vs-lookup on authd's PostgreSQL database, with a real HS256 token: authd's own,
/// or, when it signs with Ed25519, one from a second authd on the same database signing
/// with the secret.
async fn verify_vs_lookup_run(
    config: &Config<'_>,
    fixture: &Fixture,
    settings: &Settings,
) -> Result<lookup::VerifyVsLookup> {
    let token = if config.hs256 {
        fixture.token().to_owned()
    } else {
        let hs256 = Authd::start(&Config {
            database_url: config.database_url.clone(),
            hs256: true,
            ..*config
        })?;
        fixture.access_token(&hs256.target).await?
    };
    lookup::measure(
        &token,
        BENCH_SECRET.as_bytes(),
        &config.database_url,
        settings.rounds,
        settings.window.duration,
    )
    .await
}
