//! verify-vs-lookup: what a service saves by verifying an HS256 access token in-process
//! (`authd_client::Verifier`) instead of looking its session up in PostgreSQL, by primary
//! key over loopback, on every request. Both are timed in this process, in alternating
//! slices, so drift on a shared machine falls on both alike.
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use authd_client::Verifier;
use hdrhistogram::Histogram;
use serde::Serialize;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use sqlx::types::Uuid;

/// A session by its primary key: the row a revocation check reads.
const LOOKUP: &str = "SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE id = $1";
/// authd's default issuer and audience (`AUTHD_ISSUER`, `AUTHD_AUDIENCE`).
const ISSUER: &str = "authd";
const AUDIENCE: &str = "authd";
/// Verifies between two looks at the clock.
const VERIFY_BATCH: u64 = 256;
/// Lookup latencies above this (µs) are recorded as this.
const MAX_LOOKUP_US: u64 = 10_000_000;

/// The two sides and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyVsLookup {
    pub rounds: usize,
    pub duration_ms: u128,
    pub verifies: u64,
    /// Mean time of one `Verifier::verify`, µs.
    pub verify_us: f64,
    pub lookups: u64,
    /// Mean time of one lookup, round trip included, µs.
    pub lookup_us: f64,
    pub lookup_p50_ms: f64,
    pub lookup_p99_ms: f64,
    /// `lookup_us ÷ verify_us`: how many local verifications one lookup costs.
    pub ratio: f64,
}

impl VerifyVsLookup {
    /// A few lines for the text report.
    pub fn text(&self) -> String {
        format!(
            "verify-vs-lookup ({} alternating rounds, {} ms in all):\n  \
             HS256 verify, authd_client::Verifier, in-process, one thread: {:>9.3} us  ({} verifies)\n  \
             session by primary key, PostgreSQL, one connection, prepared: {:>9.3} us  ({} lookups, p50 {:.3} ms, p99 {:.3} ms)\n  \
             lookup / verify: {:.0}x\n",
            self.rounds,
            self.duration_ms,
            self.verify_us,
            self.verifies,
            self.lookup_us,
            self.lookups,
            self.lookup_p50_ms,
            self.lookup_p99_ms,
            self.ratio,
        )
    }
}

/// Verify `token` (HS256 with `secret`, authd's default issuer and audience) and look up
/// its session (`sid`) in `database_url`, each for half of `rounds` alternating slices of
/// `duration`.
pub async fn measure(
    token: &str,
    secret: &[u8],
    database_url: &str,
    rounds: usize,
    duration: Duration,
) -> Result<VerifyVsLookup> {
    let verifier = Verifier::hs256(secret, ISSUER, AUDIENCE)?;
    let claims = verifier
        .verify(token, None)
        .context("authd's HS256 token does not verify")?;
    let sid = Uuid::parse_str(&claims.sid).context("the token's sid is not a UUID")?;
    let mut conn = PgConnection::connect(database_url)
        .await
        .context("cannot connect to PostgreSQL")?;
    // Prepares the statement (sqlx keeps it per connection) and checks the row is there.
    lookup(&mut conn, sid).await?;
    verify_for(&verifier, token, Duration::from_millis(50))?;

    let slice = duration / u32::try_from(2 * rounds.max(1))?;
    let mut verifies = (0u64, Duration::ZERO);
    let mut lookups = (0u64, Duration::ZERO);
    let mut latency = Histogram::<u64>::new_with_bounds(1, MAX_LOOKUP_US, 3)?;
    for round in 0..rounds {
        if round % 2 == 1 {
            lookup_for(&mut conn, sid, slice, &mut lookups, &mut latency).await?;
        }
        let (n, spent) = tokio::task::block_in_place(|| verify_for(&verifier, token, slice))?;
        verifies.0 += n;
        verifies.1 += spent;
        if round % 2 == 0 {
            lookup_for(&mut conn, sid, slice, &mut lookups, &mut latency).await?;
        }
    }
    if verifies.0 == 0 || lookups.0 == 0 {
        bail!("nothing measured");
    }
    let verify_us = verifies.1.as_secs_f64() * 1e6 / verifies.0 as f64;
    let lookup_us = lookups.1.as_secs_f64() * 1e6 / lookups.0 as f64;
    Ok(VerifyVsLookup {
        rounds,
        duration_ms: duration.as_millis(),
        verifies: verifies.0,
        verify_us,
        lookups: lookups.0,
        lookup_us,
        lookup_p50_ms: latency.value_at_quantile(0.5) as f64 / 1000.0,
        lookup_p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
        ratio: lookup_us / verify_us,
    })
}

/// Verify in batches for `slice`: how many, in how long. Every one must succeed (a refused
/// token stops early and would look cheap).
fn verify_for(verifier: &Verifier, token: &str, slice: Duration) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..VERIFY_BATCH {
            if std::hint::black_box(verifier.verify(std::hint::black_box(token), None)).is_err() {
                bail!("the token stopped verifying (expired?)");
            }
        }
        n += VERIFY_BATCH;
        let spent = start.elapsed();
        if spent >= slice {
            return Ok((n, spent));
        }
    }
}

/// Look the session up, one query after the other, for `slice`.
async fn lookup_for(
    conn: &mut PgConnection,
    sid: Uuid,
    slice: Duration,
    total: &mut (u64, Duration),
    latency: &mut Histogram<u64>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let sent = Instant::now();
        lookup(conn, sid).await?;
        let took = sent.elapsed();
        total.0 += 1;
        total.1 += took;
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        if start.elapsed() >= slice {
            return Ok(());
        }
    }
}

async fn lookup(conn: &mut PgConnection, sid: Uuid) -> Result<()> {
    sqlx::query(LOOKUP)
        .bind(sid)
        .fetch_optional(&mut *conn)
        .await
        .context("the session lookup failed")?
        .context("the token's session is not in the sessions table")?;
    Ok(())
}
