//! The two ways of applying load. Closed loop (h2load `-c -m` style): a fixed number of
//! calls in flight, each worker sending its next call when the last one answers; that
//! measures throughput. Open loop (wrk2 style): calls sent on a fixed schedule whatever the
//! server does, latency counted from each call's *intended* send time, so a stalled server
//! shows up as latency instead of silently slowing the sender (no coordinated omission).
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;

/// One call's outcome: `Err` is a call the scenario did not expect to fail.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

/// Makes one call on a connection; the `usize` is the worker (closed loop: the same for
/// every call of one worker, so a chain can keep its state there) or the call's sequence
/// number (open loop).
pub type CallFn = Arc<dyn Fn(Channel, usize) -> CallFuture + Send + Sync>;

/// Latencies above this are recorded as this (a minute, in µs).
const MAX_LATENCY_US: u64 = 60_000_000;
/// Open loop: calls allowed in flight before the sender waits (its waiting then shows as
/// latency, since latency is counted from the intended send time).
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 10_000;
/// How long to wait for the calls still in flight when a run ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How load is applied.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// `workers` calls in flight over the connections, round-robin.
    Closed { workers: usize },
    /// `rate` calls per second, spread over the connections.
    Open { rate: f64 },
}

/// Warm-up, then the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Calls that answered as expected inside the window.
    pub calls: u64,
    /// Calls that failed unexpectedly inside the window.
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// Latency of the expected answers, µs.
    pub latency: Histogram<u64>,
    /// What the server and this process spent over the window.
    pub spent: Sample,
}

/// Counters read at both ends of the measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Bytes authd has logged.
    pub log_bytes: Option<u64>,
    /// CPU time the server has used.
    pub cpu: Option<Duration>,
    /// CPU time this process (the load generator) has used.
    pub client_cpu: Option<Duration>,
}

impl Sample {
    fn since(self, start: Sample) -> Sample {
        Sample {
            log_bytes: self
                .log_bytes
                .zip(start.log_bytes)
                .map(|(end, start)| end.saturating_sub(start)),
            cpu: self
                .cpu
                .zip(start.cpu)
                .map(|(end, start)| end.saturating_sub(start)),
            client_cpu: self
                .client_cpu
                .zip(start.client_cpu)
                .map(|(end, start)| end.saturating_sub(start)),
        }
    }
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }

    /// Add another run's calls, window and server counters to this one.
    pub fn absorb(&mut self, other: Outcome) -> Result<()> {
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.window += other.window;
        self.latency.add(&other.latency)?;
        let spent = &mut self.spent;
        spent.log_bytes = spent
            .log_bytes
            .zip(other.spent.log_bytes)
            .map(|(a, b)| a + b);
        spent.cpu = spent.cpu.zip(other.spent.cpu).map(|(a, b)| a + b);
        spent.client_cpu = spent
            .client_cpu
            .zip(other.spent.client_cpu)
            .map(|(a, b)| a + b);
        Ok(())
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

#[derive(Debug)]
struct Tally {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Result<Self> {
        Ok(Self {
            calls: 0,
            errors: 0,
            first_error: None,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
        })
    }

    fn record(&mut self, result: Result<(), tonic::Status>, latency: Duration) {
        match result {
            Ok(()) => {
                self.calls += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(us.max(1));
            }
            Err(status) => {
                self.errors += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }

    fn merge(&mut self, other: Tally) -> Result<()> {
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.add(&other.latency)?;
        Ok(())
    }
}

/// Apply `call` over `channels` for `window.warmup + window.duration`, measuring the last
/// `duration`. `probe` is read at both ends of the measured window.
pub async fn run(
    channels: &[Channel],
    call: CallFn,
    mode: Mode,
    window: Window,
    probe: &(dyn Fn() -> Sample + Sync),
) -> Result<Outcome> {
    if channels.is_empty() {
        bail!("no connections");
    }
    let from = Instant::now() + window.warmup;
    let until = from + window.duration;
    let load = match mode {
        Mode::Closed { workers } => closed(channels, call, workers, from, until),
        Mode::Open { rate } => open(channels, call, rate, from, until)?,
    };
    tokio::time::sleep_until(from).await;
    let start_mark = probe();
    tokio::time::sleep_until(until).await;
    let spent = probe().since(start_mark);
    let tally = tokio::time::timeout(DRAIN_TIMEOUT, load)
        .await
        .context("calls still unanswered a minute after the run ended")??;
    Ok(Outcome {
        calls: tally.calls,
        errors: tally.errors,
        first_error: tally.first_error,
        window: window.duration,
        latency: tally.latency,
        spent,
    })
}

type Load = Pin<Box<dyn Future<Output = Result<Tally>> + Send>>;

/// Each worker counts the calls that *answer* inside the window: counting by start time
/// would drop most of a slow call's answers (a queued Issue takes seconds).
fn closed(
    channels: &[Channel],
    call: CallFn,
    workers: usize,
    from: Instant,
    until: Instant,
) -> Load {
    let mut set = JoinSet::new();
    for worker in 0..workers {
        let channel = channels[worker % channels.len()].clone();
        let call = call.clone();
        set.spawn(async move {
            let mut tally = Tally::new()?;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let result = call(channel.clone(), worker).await;
                let answered = Instant::now();
                if answered >= from && answered <= until {
                    tally.record(result, answered - sent);
                }
            }
            Ok::<_, anyhow::Error>(tally)
        });
    }
    Box::pin(join_all(set))
}

/// The schedule is kept by a plain thread: tokio's timer has millisecond granularity, which
/// would add up to a millisecond of the sender's own lateness to every latency. Calls
/// scheduled inside the window are all measured, however late they answer.
fn open(
    channels: &[Channel],
    call: CallFn,
    rate: f64,
    from: Instant,
    until: Instant,
) -> Result<Load> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number of calls per second");
    }
    let period = Duration::from_secs_f64(1.0 / rate);
    let tally = Arc::new(Mutex::new(Tally::new()?));
    let slots = Arc::new(Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let runtime = tokio::runtime::Handle::current();
    let channels = channels.to_vec();
    let start = Instant::now();
    let pacer = {
        let tally = tally.clone();
        let slots = slots.clone();
        std::thread::Builder::new()
            .name("authd-load-pacer".into())
            .spawn(move || {
                let mut seq = 0usize;
                loop {
                    let intended = start + period.mul_f64(seq as f64);
                    if intended >= until {
                        break;
                    }
                    let now = Instant::now();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    // Waiting here (10,000 calls behind) is counted: latency runs from `intended`.
                    let slot = match slots.clone().try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => match runtime.block_on(slots.clone().acquire_owned()) {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                    };
                    let channel = channels[seq % channels.len()].clone();
                    let future = call(channel, seq);
                    let tally = tally.clone();
                    runtime.spawn(async move {
                        let result = future.await;
                        let answered = Instant::now();
                        if intended >= from {
                            tally
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .record(result, answered - intended);
                        }
                        drop(slot);
                    });
                    seq += 1;
                }
            })
            .context("cannot start the pacing thread")?
    };
    Ok(Box::pin(async move {
        tokio::task::spawn_blocking(move || pacer.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
        // Every slot back: every call sent has answered.
        let all = u32::try_from(OPEN_LOOP_MAX_IN_FLIGHT)?;
        let _all = slots.acquire_many(all).await?;
        let done = std::mem::replace(
            &mut *tally.lock().unwrap_or_else(PoisonError::into_inner),
            Tally::new()?,
        );
        Ok(done)
    }))
}

async fn join_all(mut set: JoinSet<Result<Tally>>) -> Result<Tally> {
    let mut total = Tally::new()?;
    while let Some(joined) = set.join_next().await {
        total.merge(joined??)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that answers after `ms` without touching the network.
    fn sleeper(ms: u64) -> CallFn {
        Arc::new(move |_, _| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            })
        })
    }

    fn channels() -> Vec<Channel> {
        vec![tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy()]
    }

    const WINDOW: Window = Window {
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
    };

    #[tokio::test]
    async fn open_loop_measures_every_call_scheduled_in_the_window() {
        let outcome = run(
            &channels(),
            sleeper(2),
            Mode::Open { rate: 1000.0 },
            WINDOW,
            &Sample::default,
        )
        .await
        .unwrap();
        // However late the calls answered: 300 ms at 1,000/s, give or take the edges.
        assert!((299..=301).contains(&outcome.calls), "{}", outcome.calls);
        assert_eq!(outcome.errors, 0);
        assert!(outcome.quantile_ms(0.5) >= 2.0);
    }

    #[tokio::test]
    async fn closed_loop_keeps_the_workers_busy_and_counts_errors() {
        let failing: CallFn = Arc::new(|_, worker| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if worker == 0 {
                    Err(tonic::Status::unavailable("down"))
                } else {
                    Ok(())
                }
            })
        });
        let outcome = run(
            &channels(),
            failing,
            Mode::Closed { workers: 4 },
            WINDOW,
            &Sample::default,
        )
        .await
        .unwrap();
        // Four workers, one call each per 5 ms at best, for 300 ms.
        assert!(
            outcome.calls > 0 && outcome.calls <= 3 * 60 + 3,
            "{}",
            outcome.calls
        );
        assert!(
            outcome.errors > 0 && outcome.errors <= 61,
            "{}",
            outcome.errors
        );
        assert_eq!(outcome.first_error.as_deref(), Some("Unavailable: down"));
    }
}
