//! The floor of the Refresh row on PostgreSQL: pgbench running the one statement authd
//! sends for a refresh (`benches/refresh-floor.sh`, on a scratch database of its own), at
//! as many clients as the row has chains.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// `benches/refresh-floor.sh` of this checkout.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/refresh-floor.sh");

/// How to run the floor: the authd binary that migrates its scratch database.
#[derive(Debug, Clone)]
pub struct RefreshFloor {
    pub authd_bin: PathBuf,
}

impl RefreshFloor {
    /// `Some` when `database_url` is PostgreSQL and pgbench is on PATH.
    pub fn available(database_url: Option<&str>, authd_bin: &Path) -> Option<Self> {
        let postgres = database_url.is_some_and(|u| u.starts_with("postgres"));
        let pgbench = std::process::Command::new("pgbench")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        // The script runs from the repository root: give it the binary's full path.
        (postgres && pgbench).then(|| Self {
            authd_bin: std::fs::canonicalize(authd_bin).unwrap_or_else(|_| authd_bin.into()),
        })
    }

    /// Refreshes per second pgbench reaches with `clients` chains for `duration`.
    pub async fn run(&self, clients: usize, duration: Duration) -> Result<f64> {
        let out = tokio::process::Command::new("bash")
            .arg(SCRIPT)
            .env("CLIENTS", clients.to_string())
            .env("SECONDS_", duration.as_secs().max(1).to_string())
            .env("AUTHD_BIN", &self.authd_bin)
            .output()
            .await
            .context("cannot run benches/refresh-floor.sh")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "benches/refresh-floor.sh failed ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse(&stdout)
    }
}

/// pgbench's `tps = …`, once the script has checked that every transaction spent a token.
fn parse(stdout: &str) -> Result<f64> {
    let number = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("no `{prefix}` in pgbench's output:\n{stdout}"))
    };
    let processed: u64 = number("number of transactions actually processed:")?.parse()?;
    let spent: u64 = number("tokens spent:")?.parse()?;
    if processed == 0 || spent != processed {
        bail!("pgbench ran {processed} refreshes but {spent} tokens were spent:\n{stdout}");
    }
    Ok(number("tps =")?.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "number of transactions actually processed: 115298\n\
        number of failed transactions: 0 (0.000%)\n\
        latency average = 1.384 ms\n\
        tps = 11560.833903 (without initial connection time)\n\
        tokens spent: 115298\n";

    #[test]
    fn reads_the_rate_only_when_every_refresh_spent_a_token() {
        assert!((parse(OUT).unwrap() - 11_560.833_903).abs() < 1e-6);
        assert!(parse(&OUT.replace("tokens spent: 115298", "tokens spent: 3")).is_err());
        assert!(parse("tps = 5\n").is_err());
    }
}
