//! The `authd` binary: parse the command line, set up logging, run the command.
use std::process::ExitCode;

use anyhow::Context;
use authd::config::ServeArgs;
use authd::server::Application;
use clap::Parser;

mod cli;

use cli::commands::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("authd: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // Settings errors read as clap's own (naming the flag and the problem).
        None => serve(ServeArgs::from_env().unwrap_or_else(|e| e.exit())).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Migrate(db)) => cli::migrate(db).await,
        Some(Command::User(cmd)) => {
            authd::telemetry::init_cli();
            cli::user(cmd).await
        }
        Some(Command::Keys(cmd)) => cli::keys(cmd).await,
        Some(Command::Client(cmd)) => {
            authd::telemetry::init_cli();
            cli::client(cmd).await
        }
        Some(Command::Healthcheck(args)) => cli::healthcheck(args).await,
        Some(Command::Tls(cmd)) => cli::tls(cmd),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    authd::telemetry::init(args.log_format);
    if let Some(listen) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot serve metrics on {listen}"))?;
        // The bound address: the real port when the setting said port 0.
        let addr = listener.local_addr()?;
        authd::metrics::install(listener).context("cannot record metrics")?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    let app = Application::build(args).await.context("cannot start")?;
    app.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes on one line, without the repeats that arise when a wrapper's
/// message already quotes its source.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if line.contains(&msg) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(msg.lines().next().unwrap_or_default());
    }
    line
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
