//! Every setting: a `--flag`, its `AUTHD_*` env twin and a default, validated once at start.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

/// Where the users live.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    // First: clap's derive takes each value out of the matches as it fills its field, so
    // the origins must be read before the settings beside them (and after this struct, in a
    // command that flattens it, the JWT secret).
    #[command(flatten)]
    origins: SecretOrigins,

    /// Database URL: `sqlite://PATH?mode=rwc` (embedded, WAL) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "AUTHD_DATABASE_URL",
        default_value = "sqlite://authd.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: SecretString,

    /// File holding the database URL (Docker secrets: its content, trailing newline
    /// trimmed), to keep a password out of the environment. Not with AUTHD_DATABASE_URL.
    #[arg(long, env = "AUTHD_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
}

impl DatabaseArgs {
    /// Moves the content of AUTHD_DATABASE_URL_FILE into the URL. Returns warnings about secrets this
    /// command was given where others can read them: as flags (in every local user's process
    /// list) or in files open to group or others.
    pub fn load_secrets(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if let Some(path) = self.database_url_file.take() {
            if self
                .origins
                .database_url
                .is_some_and(|s| s != ValueSource::DefaultValue)
            {
                return Err(bad(
                    "AUTHD_DATABASE_URL_FILE",
                    "cannot be used with AUTHD_DATABASE_URL: give the URL or the file holding it",
                ));
            }
            self.database_url = read_secret_file("AUTHD_DATABASE_URL_FILE", &path)?;
            warnings.extend(exposed_file_warning("AUTHD_DATABASE_URL_FILE", &path));
        } else if self.origins.database_url == Some(ValueSource::CommandLine)
            && url_has_password(self.database_url.expose_secret())
        {
            warnings.push(on_command_line("--database-url", "AUTHD_DATABASE_URL"));
        }
        // Every command given the JWT secret also has a database (`serve`, `keys rotate`).
        if self.origins.jwt_secret == Some(ValueSource::CommandLine) {
            warnings.push(on_command_line("--jwt-secret", "AUTHD_JWT_SECRET"));
        }
        Ok(warnings)
    }
}

/// Where the secret settings of a command came from (flag, environment, default): read by
/// clap from the same matches as the settings beside it. It adds no flags of its own.
#[derive(Debug, Clone, Copy, Default)]
struct SecretOrigins {
    database_url: Option<ValueSource>,
    jwt_secret: Option<ValueSource>,
}

impl FromArgMatches for SecretOrigins {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        // `try_get_raw` first: `value_source` panics (in debug builds) on an id the command
        // does not have, and not every command has both.
        let source = |id: &str| match m.try_get_raw(id) {
            Ok(Some(_)) => m.value_source(id),
            _ => None,
        };
        Ok(Self {
            database_url: source("database_url"),
            jwt_secret: source("jwt_secret"),
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for SecretOrigins {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }
}

/// A secret from a file, Docker secrets style: the content, trailing newline trimmed.
fn read_secret_file(setting: &'static str, path: &Path) -> Result<SecretString, ConfigError> {
    // The error names the file, never its content.
    let mut s = std::fs::read_to_string(path)
        .map_err(|e| bad(setting, format!("cannot read {}: {e}", path.display())))?;
    let len = s.trim_end_matches(['\r', '\n']).len();
    s.truncate(len);
    if s.is_empty() {
        return Err(bad(setting, format!("{} is empty", path.display())));
    }
    Ok(SecretString::from(s))
}

/// A warning when a file holding a secret or key can be read or changed by others than its
/// owner.
fn exposed_file_warning(setting: &str, path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{setting} {path} is open to group or others (mode {mode:03o}): anyone in them \
                 can read the secret; restrict it with `chmod 600 {path}`",
                path = path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (setting, path);
        None
    }
}

fn on_command_line(flag: &str, env: &str) -> String {
    format!(
        "{flag} was given on the command line, where the process list shows it to every \
         local user: set {env} or {env}_FILE instead"
    )
}

/// Whether a database URL carries a password: `scheme://user:password@host` or a
/// `password=` parameter.
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let in_query = rest
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("password=")));
    in_userinfo || in_query
}

/// How passwords are hashed (`authd serve` and `authd user add`).
#[derive(Debug, Clone, Args)]
pub struct HashingArgs {
    /// argon2id memory cost in KiB.
    #[arg(long, env = "AUTHD_ARGON2_M_KIB", default_value_t = 19456)]
    pub argon2_m_kib: u32,

    /// argon2id iterations.
    #[arg(long, env = "AUTHD_ARGON2_T", default_value_t = 2)]
    pub argon2_t: u32,

    /// argon2id lanes.
    #[arg(long, env = "AUTHD_ARGON2_P", default_value_t = 1)]
    pub argon2_p: u32,
}

impl HashingArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        argon2::Params::new(self.argon2_m_kib, self.argon2_t, self.argon2_p, None).map_err(
            |e| {
                bad(
                    "AUTHD_ARGON2_M_KIB/AUTHD_ARGON2_T/AUTHD_ARGON2_P",
                    e.to_string(),
                )
            },
        )?;
        Ok(())
    }

    /// The hasher these settings describe.
    pub fn hasher(&self) -> Result<crate::password::Hasher, crate::password::PasswordError> {
        crate::password::Hasher::new(self.argon2_m_kib, self.argon2_t, self.argon2_p)
    }
}

/// What a new password must be (`authd serve` and `authd user add`).
#[derive(Debug, Clone, Args)]
pub struct PasswordPolicyArgs {
    /// Fewest characters (Unicode code points) a new password may have; at least 8 (NIST
    /// SP 800-63B). Logins with older, shorter passwords keep working.
    #[arg(long, env = "AUTHD_PASSWORD_MIN_LENGTH", default_value_t = 8)]
    pub password_min_length: usize,

    /// Lowest zxcvbn strength score (0-4) a new password must reach; common passwords and
    /// ones built from the username or service name are refused below it.
    #[arg(long, env = "AUTHD_PASSWORD_MIN_SCORE", default_value_t = 3)]
    pub password_min_score: u8,
}

impl PasswordPolicyArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::auth::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_BYTES).contains(&self.password_min_length) {
            return Err(bad(
                "AUTHD_PASSWORD_MIN_LENGTH",
                format!(
                    "must be between {PASSWORD_MIN_CHARS} (NIST SP 800-63B) and \
                     {PASSWORD_MAX_BYTES}"
                ),
            ));
        }
        if self.password_min_score > 4 {
            return Err(bad("AUTHD_PASSWORD_MIN_SCORE", "must be 0 to 4"));
        }
        Ok(())
    }

    /// The policy, with the service's names (`authd` and the issuer) as words a password
    /// must not be built from.
    pub fn policy(&self, issuer: &str) -> crate::auth::PasswordPolicy {
        crate::auth::PasswordPolicy::new(
            self.password_min_length,
            self.password_min_score,
            &["authd", issuer],
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The key that seals the signing keys kept in the database (`authd serve`, `authd keys`).
#[derive(Debug, Clone, Args)]
pub struct KeyEncryptionArgs {
    /// File holding 32 random bytes (raw, base64 or hex; `head -c 32 /dev/urandom`) that
    /// seal the signing keys kept in the database (ChaCha20-Poly1305). Without it they are
    /// stored unencrypted.
    #[arg(long, env = "AUTHD_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,
}

impl KeyEncryptionArgs {
    /// Read the key file, if one is set (once, at start).
    pub fn load(&self) -> Result<Option<crate::keys::KeyEncryptionKey>, crate::keys::KeyError> {
        self.key_encryption_key_file
            .as_deref()
            .map(|p| crate::keys::KeyEncryptionKey::from_file(p, crate::keys::KEK_SETTING))
            .transpose()
    }
}

/// Settings of `authd serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC.
    #[arg(long, env = "AUTHD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    // Before `jwt_secret`, whose origin it records (see `DatabaseArgs`).
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// HS256 shared secret (at least 32 bytes). Without it (or a signing key file), authd
    /// signs with an Ed25519 key it generates at first start and keeps in the database.
    #[arg(long, env = "AUTHD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// File holding the HS256 secret (Docker secrets: its content, trailing newline
    /// trimmed), to keep it out of the environment. Not with AUTHD_JWT_SECRET.
    #[arg(long, env = "AUTHD_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// Ed25519 private key to sign with, as a PKCS#8 PEM file (`openssl genpkey -algorithm
    /// ed25519`), instead of the keys kept in the database. Not with AUTHD_JWT_SECRET.
    #[arg(long, env = "AUTHD_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,

    /// Browser origins whose pages may call authd over gRPC-Web, exact and comma-separated
    /// (`https://app.example.com,http://127.0.0.1:5173`). Empty (the default): no browser
    /// may; gRPC-Web from a client that sends no `Origin` (curl, a proxy) still works.
    #[arg(long, env = "AUTHD_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Serve the admin API over gRPC-Web too (it is always served over native gRPC).
    #[arg(long, env = "AUTHD_GRPC_WEB_ADMIN", default_value_t = false, action = clap::ArgAction::Set)]
    pub grpc_web_admin: bool,

    /// Serve reflection over gRPC-Web too (it is always served over native gRPC).
    #[arg(long, env = "AUTHD_GRPC_WEB_REFLECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub grpc_web_reflection: bool,

    /// The role an access token needs for the admin API (authd.v1.AdminService).
    #[arg(long, env = "AUTHD_ADMIN_ROLE", default_value = "authd:admin")]
    pub admin_role: String,

    /// Lifetime of a service account's access token (IssueServiceToken).
    #[arg(long, env = "AUTHD_SERVICE_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub service_token_ttl: Duration,

    /// How long a service account's previous secret keeps working after a rotation by the
    /// admin API (`authd client rotate-secret` takes --overlap).
    #[arg(long, env = "AUTHD_CLIENT_SECRET_OVERLAP", default_value = "24h", value_parser = humantime::parse_duration)]
    pub client_secret_overlap: Duration,

    /// How many verified access tokens Validate remembers (by their exact text), so a token
    /// checked again skips the signature check; 0 turns it off. Expiry, audience and
    /// revocation are checked on every call. About 1 KiB each.
    #[arg(long, env = "AUTHD_VERIFIED_TOKEN_CACHE", default_value_t = 10_000)]
    pub verified_token_cache: usize,

    /// How often the signing keys kept in the database are reloaded: the longest a
    /// `authd keys rotate` takes to reach this instance.
    #[arg(long, env = "AUTHD_KEY_REFRESH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub key_refresh: Duration,

    /// `iss` of issued tokens, and the only issuer accepted.
    #[arg(long, env = "AUTHD_ISSUER", default_value = "authd")]
    pub issuer: String,

    /// Default `aud` of issued tokens, and the audience Validate expects by default.
    #[arg(long, env = "AUTHD_AUDIENCE", default_value = "authd")]
    pub audience: String,

    /// Audiences a token may be issued for or validated against besides the default one
    /// (comma-separated). `Issue` and `Validate` refuse any other with AUDIENCE_NOT_ALLOWED.
    #[arg(long, env = "AUTHD_AUDIENCES", value_delimiter = ',')]
    pub audiences: Vec<String>,

    /// Access-token lifetime (humantime: 15m, 1h).
    #[arg(long, env = "AUTHD_ACCESS_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub access_ttl: Duration,

    /// Refresh-token idle lifetime: an unused refresh token dies after this.
    #[arg(long, env = "AUTHD_REFRESH_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub refresh_ttl: Duration,

    /// Absolute lifetime of a session (a login), however often it is refreshed.
    #[arg(long, env = "AUTHD_SESSION_MAX_AGE", default_value = "90d", value_parser = humantime::parse_duration)]
    pub session_max_age: Duration,

    /// How long after it was spent the newest refresh token of a session may be presented
    /// again for a fresh pair instead of revoking the session (0s: strict).
    #[arg(long, env = "AUTHD_REFRESH_REUSE_GRACE", default_value = "0s", value_parser = humantime::parse_duration)]
    pub refresh_reuse_grace: Duration,

    /// Whether anyone may call Register (self sign-up). Off by default: users are added with
    /// `authd user add` unless this is turned on.
    #[arg(long, env = "AUTHD_ALLOW_REGISTRATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_registration: bool,

    #[command(flatten)]
    pub hashing: HashingArgs,

    #[command(flatten)]
    pub password: PasswordPolicyArgs,

    /// Failed logins an account may have before each further try must wait. Counted in the
    /// database: every instance sees the same count.
    #[arg(long, env = "AUTHD_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,

    /// The wait after the first failure past the free ones; it doubles with each further
    /// failure, up to AUTHD_LOGIN_MAX_DELAY (account) or AUTHD_ADDRESS_MAX_DELAY (address).
    #[arg(long, env = "AUTHD_LOGIN_DELAY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub login_delay: Duration,

    /// The longest wait imposed on an account: also the longest a guesser can lock its real
    /// owner out after the last wrong guess.
    #[arg(long, env = "AUTHD_LOGIN_MAX_DELAY", default_value = "5m", value_parser = humantime::parse_duration)]
    pub login_max_delay: Duration,

    /// Failure counts (account and address) are forgotten this long after their last failure.
    #[arg(long, env = "AUTHD_LOGIN_FAILURE_RESET", default_value = "1h", value_parser = humantime::parse_duration)]
    pub login_failure_reset: Duration,

    /// Failed logins one source address may have (at any accounts) before each further try
    /// must wait. Counted in memory, per instance.
    #[arg(long, env = "AUTHD_ADDRESS_FREE_FAILURES", default_value_t = 20)]
    pub address_free_failures: u32,

    /// The longest wait imposed on a source address.
    #[arg(long, env = "AUTHD_ADDRESS_MAX_DELAY", default_value = "15m", value_parser = humantime::parse_duration)]
    pub address_max_delay: Duration,

    /// Proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For header names the
    /// real client address. From any other peer the header is ignored.
    #[arg(long, env = "AUTHD_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// How often the view of revoked sessions and disabled users is reloaded from the
    /// database: the longest another instance's revocation goes unseen by Validate here.
    #[arg(long, env = "AUTHD_REVOCATION_REFRESH", default_value = "1s", value_parser = humantime::parse_duration)]
    pub revocation_refresh: Duration,

    /// How often expired and spent refresh tokens and ended sessions are deleted.
    #[arg(long, env = "AUTHD_CLEANUP_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub cleanup_interval: Duration,

    /// How long ended sessions and dead refresh tokens are kept before deletion.
    #[arg(long, env = "AUTHD_CLEANUP_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub cleanup_retention: Duration,

    /// Log format; default: pretty on a terminal, JSON otherwise. Filter with RUST_LOG.
    #[arg(long, env = "AUTHD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Serve Prometheus metrics over HTTP on this address (e.g. 0.0.0.0:9090); off when unset.
    #[arg(long, env = "AUTHD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Serve gRPC over TLS with this certificate chain (PEM, server certificate first).
    /// Needs AUTHD_TLS_KEY. Re-read when the files change (checked every
    /// AUTHD_TLS_RELOAD_INTERVAL) or on SIGHUP; a bad new pair is logged and the old one kept.
    #[arg(long, env = "AUTHD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key of AUTHD_TLS_CERT (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "AUTHD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Require every client to present a certificate signed by this CA (PEM): mutual TLS.
    /// Needs AUTHD_TLS_CERT and AUTHD_TLS_KEY.
    #[arg(long, env = "AUTHD_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// How often AUTHD_TLS_CERT and AUTHD_TLS_KEY are checked for a new pair (SIGHUP checks
    /// at once): the longest a rotated certificate takes to be served.
    #[arg(long, env = "AUTHD_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,
}

/// An IP range, or one address as a range of one.
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
}

/// `ServeArgs` as a command of its own, to read them without the rest of the CLI.
#[derive(Debug, Parser)]
#[command(name = "authd")]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

/// A setting that cannot work; the message names it and says why, in one line.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

impl ServeArgs {
    /// Which browser pages may call authd over gRPC-Web (`AUTHD_CORS_ALLOWED_ORIGINS`).
    pub fn browser_access(&self) -> Result<authd_client::web::BrowserAccess, ConfigError> {
        authd_client::web::BrowserAccess::new(&self.cors_allowed_origins)
            .map_err(|e| bad("AUTHD_CORS_ALLOWED_ORIGINS", e.to_string()))
    }

    /// The default audience followed by the other allowed ones, without repeats.
    pub fn allowed_audiences(&self) -> Vec<String> {
        let mut all = vec![self.audience.clone()];
        for a in &self.audiences {
            let a = a.trim();
            if !all.iter().any(|x| x == a) {
                all.push(a.to_owned());
            }
        }
        all
    }

    /// Moves the content of the `_FILE` secrets into their settings. Returns
    /// warnings about secrets given where others can read them: as flags (in every local
    /// user's process list) or in files open to group or others.
    pub fn load_secrets(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = self.db.load_secrets()?;
        if let Some(path) = self.jwt_secret_file.take() {
            if self.jwt_secret.is_some() {
                return Err(bad(
                    "AUTHD_JWT_SECRET_FILE",
                    "cannot be used with AUTHD_JWT_SECRET: give the secret or the file holding it",
                ));
            }
            self.jwt_secret = Some(read_secret_file("AUTHD_JWT_SECRET_FILE", &path)?);
            warnings.extend(exposed_file_warning("AUTHD_JWT_SECRET_FILE", &path));
        }
        if let Some(path) = &self.signing_key_file {
            warnings.extend(exposed_file_warning("AUTHD_SIGNING_KEY_FILE", path));
        }
        if let Some(path) = &self.key_encryption.key_encryption_key_file {
            warnings.extend(exposed_file_warning("AUTHD_KEY_ENCRYPTION_KEY_FILE", path));
        }
        Ok(warnings)
    }

    /// The settings of `authd serve` with no flags: defaults and `AUTHD_*` variables.
    pub fn from_env() -> Result<Self, clap::Error> {
        let m = ServeOnly::command().try_get_matches_from(["authd"])?;
        Ok(ServeOnly::from_arg_matches(&m)?.args)
    }

    /// The defaults alone, whatever `AUTHD_*` variables are set: for embedding and tests,
    /// which must not change with a developer's environment.
    pub fn defaults() -> Result<Self, clap::Error> {
        let m = ServeOnly::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["authd"])?;
        Ok(ServeOnly::from_arg_matches(&m)?.args)
    }

    /// Checks what clap's types cannot: relations between settings, minimum strengths.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(s) = &self.jwt_secret
            && s.expose_secret().len() < 32
        {
            return Err(bad(
                "AUTHD_JWT_SECRET",
                "must be at least 32 bytes (generate one with `openssl rand -base64 48`)",
            ));
        }
        if self.jwt_secret.is_some() && self.signing_key_file.is_some() {
            return Err(bad(
                "AUTHD_SIGNING_KEY_FILE",
                "cannot be used with AUTHD_JWT_SECRET: give one (Ed25519 key file or HS256 secret)",
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(bad("AUTHD_ISSUER", "must not be empty"));
        }
        if self.audience.trim().is_empty() {
            return Err(bad("AUTHD_AUDIENCE", "must not be empty"));
        }
        for a in &self.audiences {
            if a.trim().is_empty() || a.chars().count() > 256 || a.chars().any(char::is_control) {
                return Err(bad(
                    "AUTHD_AUDIENCES",
                    "each audience must be 1 to 256 characters with no control characters",
                ));
            }
        }
        let secs = |d: Duration| d.as_secs();
        if secs(self.access_ttl) < 1 {
            return Err(bad("AUTHD_ACCESS_TTL", "must be at least 1s"));
        }
        if secs(self.refresh_ttl) < 1 {
            return Err(bad("AUTHD_REFRESH_TTL", "must be at least 1s"));
        }
        if self.session_max_age < self.refresh_ttl.min(self.access_ttl) {
            return Err(bad(
                "AUTHD_SESSION_MAX_AGE",
                "must not be shorter than the access-token lifetime",
            ));
        }
        if self.login_free_failures == 0 || self.address_free_failures == 0 {
            return Err(bad(
                "AUTHD_LOGIN_FREE_FAILURES/AUTHD_ADDRESS_FREE_FAILURES",
                "must be at least 1",
            ));
        }
        if self.login_delay.is_zero() {
            return Err(bad("AUTHD_LOGIN_DELAY", "must be more than 0s"));
        }
        for (name, max) in [
            ("AUTHD_LOGIN_MAX_DELAY", self.login_max_delay),
            ("AUTHD_ADDRESS_MAX_DELAY", self.address_max_delay),
        ] {
            if max < self.login_delay {
                return Err(bad(name, "must not be shorter than AUTHD_LOGIN_DELAY"));
            }
            if max > self.login_failure_reset {
                return Err(bad(
                    "AUTHD_LOGIN_FAILURE_RESET",
                    format!("must not be shorter than {name}, or counts end before their wait"),
                ));
            }
        }
        if self.revocation_refresh.is_zero() {
            return Err(bad("AUTHD_REVOCATION_REFRESH", "must be more than 0s"));
        }
        if self.key_refresh.is_zero() {
            return Err(bad("AUTHD_KEY_REFRESH", "must be more than 0s"));
        }
        if self.cleanup_interval.is_zero() {
            return Err(bad("AUTHD_CLEANUP_INTERVAL", "must be more than 0s"));
        }
        self.browser_access()?;
        if crate::auth::roles::check_role(&self.admin_role).is_err() {
            return Err(bad(
                "AUTHD_ADMIN_ROLE",
                "must be a role name: 1 to 64 ASCII letters, digits and . _ : -",
            ));
        }
        if self.service_token_ttl.is_zero() {
            return Err(bad("AUTHD_SERVICE_TOKEN_TTL", "must be more than 0s"));
        }
        if self.tls_reload_interval.is_zero() {
            return Err(bad("AUTHD_TLS_RELOAD_INTERVAL", "must be more than 0s"));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(bad("AUTHD_TLS_KEY", "is required with AUTHD_TLS_CERT")),
            (None, Some(_)) => return Err(bad("AUTHD_TLS_CERT", "is required with AUTHD_TLS_KEY")),
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(bad(
                    "AUTHD_TLS_CLIENT_CA",
                    "needs AUTHD_TLS_CERT and AUTHD_TLS_KEY (client certificates are checked only over TLS)",
                ));
            }
            _ => {}
        }
        self.hashing.validate()?;
        self.password.validate()?;
        // Durations must fit the i64 seconds of JWT claims and chrono arithmetic.
        for (name, d) in [
            ("AUTHD_ACCESS_TTL", self.access_ttl),
            ("AUTHD_REFRESH_TTL", self.refresh_ttl),
            ("AUTHD_SESSION_MAX_AGE", self.session_max_age),
            ("AUTHD_REFRESH_REUSE_GRACE", self.refresh_reuse_grace),
            ("AUTHD_CLEANUP_RETENTION", self.cleanup_retention),
            ("AUTHD_KEY_REFRESH", self.key_refresh),
            ("AUTHD_SERVICE_TOKEN_TTL", self.service_token_ttl),
            ("AUTHD_CLIENT_SECRET_OVERLAP", self.client_secret_overlap),
            ("AUTHD_LOGIN_FAILURE_RESET", self.login_failure_reset),
        ] {
            if d.as_secs() > 100 * 365 * 24 * 3600 {
                return Err(bad(name, "must be at most 100 years"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags alone, whatever the environment says.
    fn parse(args: &[&str]) -> Result<ServeArgs, String> {
        let mut v = vec!["authd"];
        v.extend_from_slice(args);
        let m = ServeOnly::command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(v)
            .map_err(|e| e.to_string())?;
        let a = ServeOnly::from_arg_matches(&m)
            .map_err(|e| e.to_string())?
            .args;
        a.validate().map(|_| a).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        let d = ServeArgs::defaults().unwrap();
        d.validate().unwrap();
        assert_eq!(d.access_ttl, Duration::from_secs(900));
        assert_eq!(d.refresh_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(d.hashing.argon2_m_kib, 19456);
        assert!(
            !d.allow_registration,
            "self sign-up is off unless turned on"
        );
        assert!(d.audiences.is_empty() && d.trusted_proxies.is_empty());
        assert_eq!(d.allowed_audiences(), ["authd"]);
    }

    #[test]
    fn audiences_and_trusted_proxies_parse_and_throttle_settings_are_checked() {
        let a = parse(&[
            "--audiences",
            "billing,reports,billing",
            "--trusted-proxies",
            "10.0.0.0/8,192.0.2.7",
        ])
        .unwrap();
        assert_eq!(a.allowed_audiences(), ["authd", "billing", "reports"]);
        assert_eq!(a.trusted_proxies.len(), 2);
        assert!(a.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        assert!(parse(&["--trusted-proxies", "example.com"]).is_err());
        assert!(
            parse(&["--audiences", "ok,"])
                .unwrap_err()
                .contains("AUTHD_AUDIENCES")
        );
        assert!(
            parse(&["--login-free-failures", "0"])
                .unwrap_err()
                .contains("AUTHD_LOGIN_FREE_FAILURES")
        );
        let err = parse(&["--login-max-delay", "2h"]).unwrap_err();
        assert!(err.contains("AUTHD_LOGIN_FAILURE_RESET"), "{err}");
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let err = parse(&["--jwt-secret", "tooshort-secret-value"]).unwrap_err();
        assert!(err.contains("AUTHD_JWT_SECRET"), "{err}");
        assert!(!err.contains("tooshort-secret-value"), "{err}");
    }

    #[test]
    fn humantime_durations_parse_and_garbage_is_refused() {
        assert_eq!(
            parse(&["--access-ttl", "5m"]).unwrap().access_ttl,
            Duration::from_secs(300)
        );
        assert!(parse(&["--access-ttl", "soon"]).is_err());
        assert!(parse(&["--argon2-m-kib", "1"]).is_err());
    }

    #[test]
    fn key_file_and_secret_are_mutually_exclusive_in_one_line() {
        let err = parse(&[
            "--jwt-secret",
            "0123456789abcdef0123456789abcdef-secret",
            "--signing-key-file",
            "/etc/authd/key.pem",
        ])
        .unwrap_err();
        assert!(err.contains("AUTHD_SIGNING_KEY_FILE"), "{err}");
        assert!(err.contains("AUTHD_JWT_SECRET"), "{err}");
        assert!(!err.contains("0123456789abcdef"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let ok = parse(&["--signing-key-file", "/etc/authd/key.pem"]).unwrap();
        assert_eq!(ok.key_refresh, Duration::from_secs(10));
        assert!(parse(&["--key-refresh", "0s"]).is_err());
    }

    #[test]
    fn a_password_in_a_database_url_is_recognised() {
        assert!(url_has_password("postgres://authd:s3cret@db/authd"));
        assert!(url_has_password(
            "postgres://authd@db/authd?password=s3cret"
        ));
        assert!(!url_has_password("postgres://authd@db/authd"));
        assert!(!url_has_password("sqlite://authd.db?mode=rwc"));
        assert!(!url_has_password("postgres://db:5432/authd"));
    }

    #[test]
    fn secret_files_are_read_trimmed_and_exclusive_with_their_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwt");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef-file\n").unwrap();
        let path = file.to_str().unwrap();
        let mut a = parse(&["--jwt-secret-file", path]).unwrap();
        a.load_secrets().unwrap();
        assert_eq!(
            a.jwt_secret.as_ref().unwrap().expose_secret(),
            "0123456789abcdef0123456789abcdef-file"
        );
        a.validate().unwrap();
        let mut both =
            parse(&["--jwt-secret-file", path, "--jwt-secret", &"x".repeat(32)]).unwrap();
        let err = both.load_secrets().unwrap_err().to_string();
        assert!(
            err.contains("AUTHD_JWT_SECRET_FILE") && err.contains("AUTHD_JWT_SECRET:"),
            "{err}"
        );

        std::fs::write(&file, "sqlite://from-file.db?mode=rwc\n").unwrap();
        let mut a = parse(&["--database-url-file", path]).unwrap();
        a.load_secrets().unwrap();
        assert_eq!(
            a.db.database_url.expose_secret(),
            "sqlite://from-file.db?mode=rwc"
        );
        let mut both = parse(&[
            "--database-url-file",
            path,
            "--database-url",
            "sqlite://x.db",
        ])
        .unwrap();
        let err = both.load_secrets().unwrap_err().to_string();
        assert!(
            err.contains("AUTHD_DATABASE_URL_FILE") && err.contains("AUTHD_DATABASE_URL:"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn secrets_given_as_flags_draw_a_warning() {
        let mut a = parse(&[
            "--jwt-secret",
            "0123456789abcdef0123456789abcdef-flag",
            "--database-url",
            "postgres://authd:pw@db/authd",
        ])
        .unwrap();
        let warnings = a.load_secrets().unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings.iter().all(|w| w.contains("process list")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .all(|w| !w.contains("pw@") && !w.contains("-flag"))
        );
        assert!(
            ServeArgs::defaults()
                .unwrap()
                .load_secrets()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn password_settings_have_nists_floor() {
        let d = ServeArgs::defaults().unwrap();
        assert_eq!(
            (
                d.password.password_min_length,
                d.password.password_min_score
            ),
            (8, 3)
        );
        let err = parse(&["--password-min-length", "7"]).unwrap_err();
        assert!(err.contains("AUTHD_PASSWORD_MIN_LENGTH"), "{err}");
        let err = parse(&["--password-min-score", "5"]).unwrap_err();
        assert!(err.contains("AUTHD_PASSWORD_MIN_SCORE"), "{err}");
        let ok = parse(&["--password-min-length", "12", "--password-min-score", "0"]).unwrap();
        assert_eq!(
            (
                ok.password.password_min_length,
                ok.password.password_min_score
            ),
            (12, 0)
        );
    }

    #[test]
    fn browser_access_is_off_by_default_and_takes_exact_origins_only() {
        let d = ServeArgs::defaults().unwrap();
        assert!(d.cors_allowed_origins.is_empty());
        assert!(!d.browser_access().unwrap().allows_any());
        assert!(!d.grpc_web_admin && !d.grpc_web_reflection);
        let ok = parse(&[
            "--cors-allowed-origins",
            "https://app.example.com, http://127.0.0.1:5173",
        ])
        .unwrap();
        assert!(ok.browser_access().unwrap().allows_any());
        for bad in ["*", "https://app.example.com/", "app.example.com"] {
            let err = parse(&["--cors-allowed-origins", bad]).unwrap_err();
            assert!(err.contains("AUTHD_CORS_ALLOWED_ORIGINS"), "{bad}: {err}");
        }
    }
}
