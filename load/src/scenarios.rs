//! What is measured: the calls of each scenario, the users and tokens they need, and the
//! rows they produce.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use authd_client::proto::auth_service_client::AuthServiceClient;
use authd_client::proto::{
    IssueRequest, RefreshRequest, RegisterRequest, TokenPair, ValidateRequest, ValidateResponse,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::authd::{Authd, Target};
use crate::cpu;
use crate::driver::{self, CallFn, Mode, Outcome, Sample, Window};
use crate::floor::FloorServer;
use crate::report::{Compare, FLOOR, Row};

/// A password zxcvbn scores 4, so the default password policy accepts it.
pub const PASSWORD: &str = "correct horse battery staple 42";
const WRONG_PASSWORD: &str = "correct horse battery staple 43";
/// Accounts registered per authd; logins go round-robin over them.
const USERS: usize = 32;
/// Calls in flight while preparing (registrations, logins, the refresh chains that mint
/// validate-many's tokens).
const SETUP_CONCURRENCY: usize = 16;

/// A scenario, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// Validate against the bare tonic server: the floor of the gRPC rows.
    Floor,
    /// Validate, one token repeated.
    ValidateOne,
    /// Validate, --tokens distinct live tokens round-robin.
    ValidateMany,
    /// authd's grpc.health.v1.Health/Check.
    Health,
    /// Refresh: --chains sessions, each call spending the token the previous one returned.
    Refresh,
    /// Issue with the right password.
    IssueOk,
    /// Issue with a wrong password.
    IssueWrong,
    /// Validate at --storm-rate alone, then during a wrong-password Issue storm.
    Storm,
    /// Wrong-password Issue calls each given up after --cancel-after, for --duration; then
    /// at once right-password Issue calls.
    IssueAfterCancelled,
    /// HS256 verification in this process against a PostgreSQL session lookup by primary
    /// key (needs --database-url).
    VerifyVsLookup,
}

/// How each scenario applies load.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub streams: usize,
    pub window: Window,
    /// Open loop at this rate instead of the closed loop.
    pub rate: Option<f64>,
    pub tokens: usize,
    pub chains: usize,
    pub login_concurrency: usize,
    pub storm_rate: f64,
    /// When a caller of issue-after-cancelled's storm gives up on its login.
    pub cancel_after: Duration,
    /// Alternating slices of a paired measurement.
    pub rounds: usize,
    /// pgbench's one-statement refresh, the refresh row's floor (PostgreSQL only).
    pub refresh_floor: Option<crate::pgbench::RefreshFloor>,
}

/// The accounts and the token every authd scenario starts from.
pub struct Fixture {
    users: Arc<[String]>,
    token: Arc<[String]>,
    /// authd's answer to `Validate(token)`: what the floor answers.
    pub reply: ValidateResponse,
}

impl Fixture {
    /// The access token of the first account, logged in by [`Fixture::prepare`].
    pub fn token(&self) -> &str {
        &self.token[0]
    }

    /// A fresh access token of the first account from `target`, an authd on the same
    /// database.
    pub async fn access_token(&self, target: &Target) -> Result<String> {
        let mut client = client(target).await?;
        Ok(login(&mut client, &self.users[0]).await?.access_token)
    }

    /// Register the accounts (under a prefix of this run, so a reused PostgreSQL database
    /// has no clashes), log one in and validate its token once.
    pub async fn prepare(target: &Target) -> Result<Self> {
        let mut client = client(target).await?;
        let prefix = unique_prefix();
        let users: Arc<[String]> = (0..USERS).map(|i| format!("{prefix}-{i}")).collect();
        let mut set = JoinSet::new();
        for name in users.iter().cloned() {
            let mut client = client.clone();
            set.spawn(async move {
                client
                    .register(RegisterRequest {
                        username: name,
                        password: PASSWORD.into(),
                    })
                    .await
            });
        }
        while let Some(registered) = set.join_next().await {
            registered?.context("Register")?;
        }
        let pair = login(&mut client, &users[0]).await?;
        let reply = client
            .validate(validate_request(&pair.access_token))
            .await
            .context("Validate")?
            .into_inner();
        Ok(Self {
            users,
            token: Arc::new([pair.access_token]),
            reply,
        })
    }

    /// `n` distinct live access tokens: one login per chain, then each chain refreshes
    /// (one Refresh costs a few queries; a login costs an argon2 verify).
    async fn many_tokens(&self, target: &Target, n: usize) -> Result<Arc<[String]>> {
        let client = client(target).await?;
        let chains = SETUP_CONCURRENCY.min(n.max(1));
        let mut set = JoinSet::new();
        for chain in 0..chains {
            let share = n / chains + usize::from(chain < n % chains);
            let mut client = client.clone();
            let user = self.users[chain % self.users.len()].clone();
            set.spawn(async move {
                let pair = login(&mut client, &user).await?;
                let mut tokens = vec![pair.access_token];
                let mut refresh = pair.refresh_token;
                while tokens.len() < share {
                    let pair = client
                        .refresh(RefreshRequest {
                            refresh_token: refresh,
                        })
                        .await
                        .context("Refresh")?
                        .into_inner();
                    tokens.push(pair.access_token);
                    refresh = pair.refresh_token;
                }
                Ok::<_, anyhow::Error>(tokens)
            });
        }
        let mut all = Vec::with_capacity(n);
        while let Some(tokens) = set.join_next().await {
            all.extend(tokens??);
        }
        all.truncate(n);
        Ok(all.into())
    }

    /// One fresh session per chain: its current refresh token.
    async fn sessions(&self, target: &Target, n: usize) -> Result<Arc<[Mutex<String>]>> {
        let mut client = client(target).await?;
        let mut sessions = Vec::with_capacity(n);
        for i in 0..n {
            let pair = login(&mut client, &self.users[i % self.users.len()]).await?;
            sessions.push(Mutex::new(pair.refresh_token));
        }
        Ok(sessions.into())
    }
}

/// Rounds after the first of a paired measurement ramp up for this long (or --warmup, if
/// shorter).
const ROUND_WARMUP: Duration = Duration::from_millis(200);

/// One server of a paired measurement: what to call, and how to read its counters.
pub struct Side<'a> {
    pub target: &'a Target,
    pub call: CallFn,
    pub probe: &'a (dyn Fn() -> Sample + Sync),
}

/// Runs scenarios against one authd and its floor.
pub struct Runner<'a> {
    pub settings: &'a Settings,
    pub authd: &'a Authd,
    pub floor: &'a FloorServer,
    pub fixture: &'a Fixture,
}

impl Runner<'_> {
    /// The rows of one scenario.
    pub async fn run(&self, scenario: Scenario) -> Result<Vec<Row>> {
        let s = self.settings;
        let authd = &self.authd.target;
        let (mode, load) = self.mode();
        let rows = match scenario {
            Scenario::Floor => vec![self.floor_row().await?],
            Scenario::ValidateOne => {
                let call = validate_call(self.fixture.token.clone());
                vec![self.against_floor("validate-one", call).await?]
            }
            Scenario::ValidateMany => {
                let tokens = self.fixture.many_tokens(authd, s.tokens).await?;
                vec![
                    self.against_floor("validate-many", validate_call(tokens))
                        .await?,
                ]
            }
            Scenario::Health => vec![self.against_floor("health", health_call()).await?],
            Scenario::Refresh => {
                // A chain's next call needs its previous answer: always one worker per
                // chain, closed loop, whatever --rate says.
                let chains = self.fixture.sessions(authd, s.chains).await?;
                // On PostgreSQL, pgbench running the same statement right before and
                // right after the row: its floor is the mean, so drift falls on both.
                let before = match &s.refresh_floor {
                    Some(f) => Some(f.run(s.chains, s.window.duration).await?),
                    None => None,
                };
                let outcome = self
                    .measure(
                        authd,
                        s.connections.min(s.chains),
                        refresh_call(chains),
                        Mode::Closed { workers: s.chains },
                    )
                    .await?;
                let compare = match (&s.refresh_floor, before) {
                    (Some(f), Some(before)) => {
                        let after = f.run(s.chains, s.window.duration).await?;
                        Compare::Paired {
                            to: "pgbench".into(),
                            calls_per_sec: (before + after) / 2.0,
                        }
                    }
                    _ => Compare::None,
                };
                let load = format!("closed {} chains", s.chains);
                vec![Row::new("refresh", load, &outcome, compare)]
            }
            Scenario::IssueOk | Scenario::IssueWrong => {
                let right = scenario == Scenario::IssueOk;
                let call = issue_call(self.fixture.users.clone(), right);
                // More logins in flight than --login-concurrency only queue (or are
                // refused) in authd: the hashing limit is reached long before.
                let (mode, load) = match mode {
                    Mode::Closed { .. } => (
                        Mode::Closed {
                            workers: s.login_concurrency,
                        },
                        format!("closed {}", s.login_concurrency),
                    ),
                    open => (open, load),
                };
                let outcome = self
                    .measure(authd, s.connections.min(s.login_concurrency), call, mode)
                    .await?;
                let name = if right { "issue-ok" } else { "issue-wrong" };
                vec![Row::new(name, load, &outcome, self.ratio(Compare::Argon2))]
            }
            Scenario::Storm => self.storm().await?,
            Scenario::IssueAfterCancelled => self.issue_after_cancelled().await?,
            // In-process, not a load on authd: `lookup::measure`, run by main.
            Scenario::VerifyVsLookup => Vec::new(),
        };
        Ok(rows)
    }

    /// Validate against the bare server alone: its latency and CPU per call.
    pub async fn floor_row(&self) -> Result<Row> {
        let (mode, load) = self.mode();
        let channels = self.floor.target.connect(self.settings.connections).await?;
        let call = validate_call(self.fixture.token.clone());
        let probe = || self.floor_sample();
        let outcome = driver::run(&channels, call, mode, self.settings.window, &probe).await?;
        Ok(Row::new(FLOOR, load, &outcome, Compare::None))
    }

    /// `call` on authd, interleaved with Validate on the floor; the row's ratio is to that
    /// floor.
    async fn against_floor(&self, name: &str, call: CallFn) -> Result<Row> {
        let floor_probe = || self.floor_sample();
        let authd_probe = || self.authd_sample();
        let (authd, floor) = self
            .paired(
                Side {
                    target: &self.authd.target,
                    call,
                    probe: &authd_probe,
                },
                Side {
                    target: &self.floor.target,
                    call: validate_call(self.fixture.token.clone()),
                    probe: &floor_probe,
                },
            )
            .await?;
        let (_, load) = self.mode();
        let compare = Compare::Paired {
            to: FLOOR.into(),
            calls_per_sec: floor.per_second(),
        };
        Ok(Row::new(name, load, &authd, self.ratio(compare)))
    }

    /// Two servers measured in `--rounds` alternating slices of the window (the first
    /// slice of a round alternating too), on connections kept open throughout: drift of a
    /// shared machine (another process starting, the CPU clocking down) then falls on
    /// both sides alike instead of on whichever ran second.
    pub async fn paired(&self, a: Side<'_>, b: Side<'_>) -> Result<(Outcome, Outcome)> {
        let s = self.settings;
        let (mode, _) = self.mode();
        let a_channels = a.target.connect(s.connections).await?;
        let b_channels = b.target.connect(s.connections).await?;
        let rounds = u32::try_from(s.rounds)?;
        let mut totals: [Option<Outcome>; 2] = [None, None];
        for round in 0..rounds {
            let window = Window {
                // Connections stay open: after the first round a short ramp-up will do.
                warmup: if round == 0 {
                    s.window.warmup
                } else {
                    s.window.warmup.min(ROUND_WARMUP)
                },
                duration: s.window.duration / rounds,
            };
            let mut order = [(0, &a, &a_channels), (1, &b, &b_channels)];
            if round % 2 == 1 {
                order.reverse();
            }
            for (i, side, channels) in order {
                let outcome =
                    driver::run(channels, side.call.clone(), mode, window, side.probe).await?;
                match &mut totals[i] {
                    Some(total) => total.absorb(outcome)?,
                    slot => *slot = Some(outcome),
                }
            }
        }
        let [Some(a), Some(b)] = totals else {
            bail!("no rounds");
        };
        Ok((a, b))
    }

    /// The floor and validate-one of `tls` (a TLS authd and floor) paired with this
    /// runner's plain-text ones.
    pub async fn compare_tls(&self, tls: &Runner<'_>) -> Result<Vec<Row>> {
        let (_, load) = self.mode();
        let mut rows = Vec::new();
        for (name, plain_target, tls_target, plain_probe, tls_probe) in [
            (
                FLOOR,
                &self.floor.target,
                &tls.floor.target,
                &(|| self.floor_sample()) as &(dyn Fn() -> Sample + Sync),
                &(|| tls.floor_sample()) as &(dyn Fn() -> Sample + Sync),
            ),
            (
                "validate-one",
                &self.authd.target,
                &tls.authd.target,
                &(|| self.authd_sample()) as &(dyn Fn() -> Sample + Sync),
                &(|| tls.authd_sample()) as &(dyn Fn() -> Sample + Sync),
            ),
        ] {
            let (over_tls, plain) = self
                .paired(
                    Side {
                        target: tls_target,
                        call: validate_call(tls.fixture.token.clone()),
                        probe: tls_probe,
                    },
                    Side {
                        target: plain_target,
                        call: validate_call(self.fixture.token.clone()),
                        probe: plain_probe,
                    },
                )
                .await?;
            let compare = Compare::Paired {
                to: format!("{name} (plain)"),
                calls_per_sec: plain.per_second(),
            };
            rows.push(Row::new(
                format!("{name} (tls)"),
                load.clone(),
                &over_tls,
                self.ratio(compare),
            ));
        }
        Ok(rows)
    }

    fn authd_sample(&self) -> Sample {
        Sample {
            log_bytes: Some(self.authd.log_bytes()),
            cpu: cpu::process(self.authd.pid()),
            client_cpu: cpu::process(std::process::id()),
        }
    }

    fn floor_sample(&self) -> Sample {
        Sample {
            log_bytes: None,
            cpu: cpu::process(self.floor.pid()),
            client_cpu: cpu::process(std::process::id()),
        }
    }

    /// Throughput ratios only mean something in the closed loop: an open loop sends the
    /// same rate to both sides.
    pub fn ratio(&self, compare: Compare) -> Compare {
        if self.settings.rate.is_some() {
            Compare::None
        } else {
            compare
        }
    }

    /// Validate at a fixed rate alone, then the same while a closed loop of wrong-password
    /// logins keeps every hashing thread busy. The storm has connections of its own, as
    /// abusive clients would.
    async fn storm(&self) -> Result<Vec<Row>> {
        let s = self.settings;
        let authd = &self.authd.target;
        let open = Mode::Open { rate: s.storm_rate };
        let load = format!("open {}/s", s.storm_rate);
        let validate = validate_call(self.fixture.token.clone());
        let alone = self
            .measure(authd, s.connections, validate.clone(), open)
            .await?;

        let validate_channels = authd.connect(s.connections).await?;
        let storm_channels = authd
            .connect(s.connections.min(s.login_concurrency))
            .await?;
        let (during, storm) = tokio::join!(
            driver::run(
                &validate_channels,
                validate,
                open,
                s.window,
                &Sample::default
            ),
            driver::run(
                &storm_channels,
                issue_call(self.fixture.users.clone(), false),
                Mode::Closed {
                    workers: s.login_concurrency,
                },
                s.window,
                &Sample::default,
            ),
        );
        Ok(vec![
            Row::new("storm: validate alone", load.clone(), &alone, Compare::None),
            Row::new("storm: validate during", load, &during?, Compare::None),
            Row::new(
                "storm: issue-wrong",
                format!("closed {}", s.login_concurrency),
                &storm?,
                Compare::Argon2,
            ),
        ])
    }

    /// Wrong-password logins, `--login-concurrency` in flight, each dropped by its caller
    /// after `--cancel-after` (tonic then resets the stream), for `--duration`; then at
    /// once, with no warm-up, right-password logins for `--duration`, as a ratio to the
    /// argon2 floor. A server that went on hashing for callers that had left would still
    /// be busy with them when the real logins come.
    async fn issue_after_cancelled(&self) -> Result<Vec<Row>> {
        let s = self.settings;
        let authd = &self.authd.target;
        let workers = s.login_concurrency;
        let connections = s.connections.min(workers);
        // Both sets connected first: no handshake between the storm and the logins.
        let storm_channels = authd.connect(connections).await?;
        let login_channels = authd.connect(connections).await?;
        let window = Window {
            warmup: Duration::ZERO,
            duration: s.window.duration,
        };
        let mode = Mode::Closed { workers };
        let probe = || self.authd_sample();
        let call = cancelled_issue_call(self.fixture.users.clone(), s.cancel_after);
        let storm = driver::run(&storm_channels, call, mode, window, &probe).await?;
        let call = issue_call(self.fixture.users.clone(), true);
        let after = driver::run(&login_channels, call, mode, window, &probe).await?;
        Ok(vec![
            Row::new(
                "cancelled issue-wrong",
                format!("closed {workers}, {:?} each", s.cancel_after),
                &storm,
                Compare::None,
            ),
            Row::new(
                "issue-ok after them",
                format!("closed {workers}"),
                &after,
                self.ratio(Compare::Argon2),
            ),
        ])
    }

    fn mode(&self) -> (Mode, String) {
        let s = self.settings;
        match s.rate {
            Some(rate) => (Mode::Open { rate }, format!("open {rate}/s")),
            None => (
                Mode::Closed {
                    workers: s.connections * s.streams,
                },
                format!("closed {}x{}", s.connections, s.streams),
            ),
        }
    }

    /// A run against authd, counting the bytes it logs meanwhile.
    async fn measure(
        &self,
        target: &Target,
        connections: usize,
        call: CallFn,
        mode: Mode,
    ) -> Result<Outcome> {
        let channels = target.connect(connections).await?;
        let probe = || self.authd_sample();
        driver::run(&channels, call, mode, self.settings.window, &probe).await
    }
}

async fn client(target: &Target) -> Result<AuthServiceClient<Channel>> {
    let channel = target
        .connect(1)
        .await?
        .pop()
        .context("no connection to authd")?;
    Ok(AuthServiceClient::new(channel))
}

async fn login(client: &mut AuthServiceClient<Channel>, user: &str) -> Result<TokenPair> {
    Ok(client
        .issue(IssueRequest {
            username: user.into(),
            password: PASSWORD.into(),
            audience: String::new(),
        })
        .await
        .context("Issue")?
        .into_inner())
}

pub fn validate_request(token: &str) -> ValidateRequest {
    ValidateRequest {
        token: token.into(),
        audience: String::new(),
    }
}

/// Usernames of this run: distinct across runs on one database.
fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("load-{:08x}", std::process::id() ^ nanos)
}

/// Validate, the tokens round-robin.
fn validate_call(tokens: Arc<[String]>) -> CallFn {
    let next = Arc::new(AtomicUsize::new(0));
    Arc::new(move |channel, _| {
        let i = next.fetch_add(1, Ordering::Relaxed) % tokens.len();
        let request = validate_request(&tokens[i]);
        Box::pin(async move {
            AuthServiceClient::new(channel)
                .validate(request)
                .await
                .map(drop)
        })
    })
}

/// The whole server's health (the empty service name), as load balancers ask.
fn health_call() -> CallFn {
    Arc::new(|channel, _| {
        Box::pin(async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop)
        })
    })
}

/// Issue round-robin over the accounts; with the wrong password, `UNAUTHENTICATED` is the
/// expected answer (and `RESOURCE_EXHAUSTED`, a throttled or refused call, an error).
fn issue_call(users: Arc<[String]>, right: bool) -> CallFn {
    let next = Arc::new(AtomicUsize::new(0));
    Arc::new(move |channel, _| {
        let i = next.fetch_add(1, Ordering::Relaxed) % users.len();
        let request = IssueRequest {
            username: users[i].clone(),
            password: if right { PASSWORD } else { WRONG_PASSWORD }.into(),
            audience: String::new(),
        };
        Box::pin(async move {
            let answer = AuthServiceClient::new(channel).issue(request).await;
            match (right, answer) {
                (true, answer) => answer.map(drop),
                (false, Err(status)) if status.code() == Code::Unauthenticated => Ok(()),
                (false, Err(status)) => Err(status),
                (false, Ok(_)) => Err(Status::internal("a wrong password was accepted")),
            }
        })
    })
}

/// A wrong-password Issue its caller gives up on after `after`: the future is dropped, and
/// tonic resets the stream. An answer in time (`UNAUTHENTICATED`) is fine too; a refusal
/// (`RESOURCE_EXHAUSTED`: the hashing queue full) is an error.
fn cancelled_issue_call(users: Arc<[String]>, after: Duration) -> CallFn {
    let issue = issue_call(users, false);
    Arc::new(move |channel, worker| {
        let call = issue(channel, worker);
        Box::pin(async move { tokio::time::timeout(after, call).await.unwrap_or(Ok(())) })
    })
}

/// Refresh: worker `w` spends chain `w`'s token and keeps the one it gets back.
fn refresh_call(chains: Arc<[Mutex<String>]>) -> CallFn {
    Arc::new(move |channel, worker| {
        let chains = chains.clone();
        Box::pin(async move {
            let slot = &chains[worker % chains.len()];
            let token = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let pair = AuthServiceClient::new(channel)
                .refresh(RefreshRequest {
                    refresh_token: token,
                })
                .await?
                .into_inner();
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = pair.refresh_token;
            Ok(())
        })
    })
}
