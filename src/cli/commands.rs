//! The command tree of the `authd` binary. Each command carries the settings it needs
//! (a database, a hashing policy, a key schedule) and nothing of `authd serve`'s.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use authd::config::{DatabaseArgs, HashingArgs, KeyEncryptionArgs, PasswordPolicyArgs, ServeArgs};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

/// Command line of the `authd` binary.
#[derive(Debug, Parser)]
#[command(
    name = "authd",
    version,
    about = "A standalone authentication service over gRPC"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default when no subcommand is given).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the signing keys kept in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ask a running authd whether it is SERVING (grpc.health.v1); exit 0 if so, 1 with one
    /// line saying why not. For Docker HEALTHCHECK, compose and Kubernetes exec probes.
    Healthcheck(HealthcheckArgs),
    /// TLS certificates.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Manage service accounts (client credentials for IssueServiceToken).
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Write a fresh CA (ca.pem) and, signed by it, a server certificate (server.pem,
    /// server.key) and a client certificate (client.pem, client.key) into --out. For tests
    /// and trials: in production use certificates from your own CA.
    SelfSigned {
        /// Directory to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// DNS name or IP address of the server certificate; repeat for several.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1"])]
        names: Vec<String>,
        /// If --out already holds all five files, keep them and exit successfully (for a
        /// container's first start); without it they are replaced.
        #[arg(long)]
        keep_existing: bool,
    },
}

/// Settings of `authd healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// gRPC address to check, e.g. `http://127.0.0.1:50051`. Default: AUTHD_LISTEN, with an
    /// unspecified IP (0.0.0.0, ::) replaced by loopback.
    #[arg(long, env = "AUTHD_HEALTHCHECK_ADDR")]
    pub addr: Option<String>,

    /// The address authd listens on; only used to derive the default `--addr`.
    #[arg(
        long,
        env = "AUTHD_LISTEN",
        default_value = "127.0.0.1:50051",
        hide = true
    )]
    pub listen: SocketAddr,

    /// Service to ask about; the empty string is the server as a whole.
    #[arg(long, default_value = "authd.v1.AuthService")]
    pub service: String,

    /// Give up after this long (humantime).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Connect over TLS (https), trusting this CA certificate (PEM) for the server's.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) to present, for a server with AUTHD_TLS_CLIENT_CA.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "AUTHD_HEALTHCHECK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl HealthcheckArgs {
    /// The URL to call.
    pub fn url(&self) -> String {
        if let Some(a) = &self.addr {
            return if a.contains("://") {
                a.clone()
            } else {
                format!("{}://{a}", self.scheme())
            };
        }
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("{}://{addr}", self.scheme())
    }

    fn scheme(&self) -> &'static str {
        if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new Ed25519 signing key. Running servers publish it in GetJwks within
    /// AUTHD_KEY_REFRESH and sign with it from now + --activate-after; older keys keep
    /// verifying until every token they signed has expired.
    Rotate {
        /// How long to wait before the new key signs (humantime). Give verifiers that cache
        /// the JWKS, and servers (AUTHD_KEY_REFRESH), time to learn the new key first.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        activate_after: Duration,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        schedule: KeyScheduleArgs,
        /// Seals the new key; required when the stored keys are sealed.
        #[command(flatten)]
        key_encryption: KeyEncryptionArgs,
        /// Set when the servers sign with a shared secret (only to warn that they ignore
        /// the database keys).
        #[arg(long, env = "AUTHD_JWT_SECRET", hide = true, hide_env_values = true)]
        jwt_secret: Option<SecretString>,
        /// As AUTHD_JWT_SECRET, from a file (only to warn as above; the file is not read).
        #[arg(long, env = "AUTHD_JWT_SECRET_FILE", hide = true)]
        jwt_secret_file: Option<PathBuf>,
        /// Set when the servers sign with a key file (only to warn as above).
        #[arg(long, env = "AUTHD_SIGNING_KEY_FILE", hide = true)]
        signing_key_file: Option<PathBuf>,
    },
    /// Seal every stored signing key with a new key-encryption key, in one transaction,
    /// unsealing it with AUTHD_KEY_ENCRYPTION_KEY_FILE (unset when the keys are in the
    /// clear). The signing keys stay the same: every token stays valid. Restart the
    /// servers with the new file afterwards.
    Rewrap {
        /// File holding the new key-encryption key (32 bytes: raw, base64 or hex).
        #[arg(long)]
        new_key_encryption_key_file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
        /// The key the stored keys are sealed with now.
        #[command(flatten)]
        key_encryption: KeyEncryptionArgs,
    },
    /// List the signing keys and their state: next, active, retiring or retired.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        schedule: KeyScheduleArgs,
    },
}

/// What a command that sets a password needs: the database, the hashing and password
/// policy settings, and the servers' issuer.
#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub hashing: HashingArgs,
    #[command(flatten)]
    pub password: PasswordPolicyArgs,
    /// The servers' issuer: a word new passwords must not be built from.
    #[arg(long, env = "AUTHD_ISSUER", default_value = "authd", hide = true)]
    pub issuer: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (or a prompt), never argv.
    Add {
        name: String,
        #[command(flatten)]
        new: NewPasswordArgs,
        /// A role to grant (repeat for several), e.g. `--role authd:admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a user's password, read from standard input (or a prompt), never argv; ends
    /// every session of the user.
    SetPassword {
        name: String,
        #[command(flatten)]
        new: NewPasswordArgs,
    },
    /// A user's roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Disable a user: no more logins or refreshes, and Validate refuses their tokens.
    Disable {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Enable a disabled user again.
    Enable {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// End every session of a user (log them out everywhere).
    RevokeSessions {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Grant roles; new tokens carry them from the next Issue or Refresh (`authd user
    /// revoke-sessions` makes it immediate).
    Add {
        name: String,
        #[arg(required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Take roles away (same timing as `add`).
    Remove {
        name: String,
        #[arg(required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List a user's roles, one per line.
    List {
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a service account and print its client id and secret (shown this once).
    Add {
        name: String,
        /// A role to grant (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List service accounts.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give a service account a new secret (printed once); the old one keeps working for
    /// --overlap, so its clients can move over.
    RotateSecret {
        /// Name or client id.
        client: String,
        #[arg(long, env = "AUTHD_CLIENT_SECRET_OVERLAP", default_value = "24h", value_parser = humantime::parse_duration)]
        overlap: Duration,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Disable a service account: no new tokens, and Validate refuses its tokens.
    Disable {
        /// Name or client id.
        client: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Enable a disabled service account.
    Enable {
        /// Name or client id.
        client: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The lifetimes that decide a signing key's state (the same settings as the server's).
#[derive(Debug, Clone, Args)]
pub struct KeyScheduleArgs {
    /// Access-token lifetime of the servers (a retired key must outlive its tokens).
    #[arg(long, env = "AUTHD_ACCESS_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub access_ttl: Duration,

    /// How often the servers reload their keys.
    #[arg(long, env = "AUTHD_KEY_REFRESH", default_value = "10s", value_parser = humantime::parse_duration)]
    pub key_refresh: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_commands_parse() {
        let cli =
            Cli::try_parse_from(["authd", "keys", "rotate", "--activate-after", "1h"]).unwrap();
        let Some(Command::Keys(KeysCommand::Rotate { activate_after, .. })) = cli.command else {
            panic!("not keys rotate");
        };
        assert_eq!(activate_after, Duration::from_secs(3600));
        let cli = Cli::try_parse_from(["authd", "keys", "rotate"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::Rotate { activate_after, .. })) if activate_after.is_zero()
        ));
        let cli = Cli::try_parse_from(["authd", "keys", "list"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::List { .. }))
        ));
    }

    #[test]
    fn user_add_takes_the_hashing_and_password_settings() {
        let cli = Cli::try_parse_from([
            "authd",
            "user",
            "add",
            "ada",
            "--argon2-m-kib",
            "256",
            "--password-min-length",
            "12",
        ])
        .unwrap();
        let Some(Command::User(UserCommand::Add { new, .. })) = cli.command else {
            panic!("not user add");
        };
        assert_eq!(new.hashing.argon2_m_kib, 256);
        assert_eq!(new.password.password_min_length, 12);
    }
}
