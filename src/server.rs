//! Wires the application: store, keys, hasher, use cases, gRPC services, health,
//! reflection, limits, background tasks and graceful shutdown.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{AuthApi, web};
use crate::auth::{Auth, Backoff, Policy, Revocations, ThrottlePolicy};
use crate::config::{ConfigError, ServeArgs};
use crate::password::PasswordError;
use crate::proto::auth_service_server::AuthServiceServer;
use crate::store::{Store, StoreError};
use crate::telemetry::RpcTraceLayer;
use crate::tls::{ServerTls, TlsFileError};
use crate::token::{KeyError, KeySource, TokenSettings, Tokens};

/// Largest request message accepted; a larger one is refused before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Why authd could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("invalid argon2 parameters: {0}")]
    Password(#[from] PasswordError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the revocation state: {0}")]
    Auth(#[from] crate::auth::AuthError),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(transparent)]
    Tls(#[from] TlsFileError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A built, bound, not yet serving authd.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    auth: Arc<Auth>,
    store: Store,
    settings: ServeArgs,
    /// TLS set up from the settings (files read and checked at build); plain text if none.
    tls: Option<Arc<ServerTls>>,
}

impl Application {
    /// Read the `_FILE` secrets, validate settings, open and migrate the database, load
    /// keys, bind the listener.
    pub async fn build(mut settings: ServeArgs) -> Result<Self, StartError> {
        for warning in settings.load_secrets()? {
            tracing::warn!("{warning}");
        }
        settings.validate()?;
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(ServerTls::load(
                cert,
                key,
                settings.tls_client_ca.as_deref(),
            )?)),
            _ => None,
        };
        // Read once; it only ever lives in memory (wiped on drop).
        let key_encryption = settings.key_encryption.load()?.map(Arc::new);
        let store = Store::connect_and_migrate(&settings.db.database_url).await?;
        let source = match (&settings.jwt_secret, &settings.signing_key_file) {
            (Some(secret), _) => KeySource::Secret(secret.clone()),
            (None, Some(path)) => KeySource::KeyFile(path.clone()),
            (None, None) => KeySource::Database,
        };
        let tokens = Tokens::load(
            &store,
            &source,
            TokenSettings {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                access_ttl: settings.access_ttl,
                key_refresh: settings.key_refresh,
                key_encryption,
                verified_cache: settings.verified_token_cache,
            },
        )
        .await?;
        let hasher = settings.hashing.hasher()?;
        let policy = Policy {
            allow_registration: settings.allow_registration,
            password: settings.password.policy(&settings.issuer),
            default_audience: settings.audience.clone(),
            allowed_audiences: settings.allowed_audiences(),
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.refresh_ttl,
            session_max_age: settings.session_max_age,
            refresh_reuse_grace: settings.refresh_reuse_grace,
            service_token_ttl: settings.service_token_ttl,
            throttle: ThrottlePolicy {
                account: Backoff {
                    free: settings.login_free_failures,
                    base: settings.login_delay,
                    max: settings.login_max_delay,
                    reset: settings.login_failure_reset,
                },
                address: Backoff {
                    free: settings.address_free_failures,
                    base: settings.login_delay,
                    max: settings.address_max_delay,
                    reset: settings.login_failure_reset,
                },
            },
        };
        let auth = Arc::new(Auth::new(
            store.clone(),
            hasher,
            tokens,
            Arc::new(Revocations::default()),
            policy,
        ));
        auth.reload_revocations().await?;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            auth,
            store,
            settings,
            tls,
        })
    }

    /// The bound address (the real port when the settings said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until `shutdown` completes, then stop accepting, finish in-flight calls and
    /// return.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let (reporter, health) = tonic_health::server::health_reporter();
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // Lets grpcurl decode the google.rpc.ErrorInfo detail of refusals.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        // grpcurl 1.8 speaks only v1alpha.
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let api = AuthServiceServer::new(AuthApi::new(
            self.auth.clone(),
            self.settings.trusted_proxies.clone(),
        ))
        .max_decoding_message_size(MAX_REQUEST_BYTES);
        let admin = crate::api::admin_service(
            self.auth.clone(),
            self.settings.admin_role.clone(),
            self.settings.client_secret_overlap,
            MAX_REQUEST_BYTES,
        );

        set_health(&reporter, ServingStatus::Serving).await;
        let mut tasks = vec![
            spawn_revocation_reload(
                self.auth.clone(),
                reporter.clone(),
                self.settings.revocation_refresh,
            ),
            spawn_key_reload(self.auth.clone(), self.settings.key_refresh),
            spawn_cleanup(
                self.auth.clone(),
                self.settings.cleanup_interval,
                self.settings.cleanup_retention,
            ),
        ];
        if let Some(tls) = &self.tls {
            tasks.push(spawn_tls_reload(
                tls.clone(),
                self.settings.tls_reload_interval,
            ));
        }
        tracing::info!(addr = %self.addr, tls = self.tls.is_some(), "authd serving gRPC");

        let signal = {
            let reporter = reporter.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: refusing new calls, finishing in-flight ones");
                set_health(&reporter, ServingStatus::NotServing).await;
            }
        };
        let browsers = self.settings.browser_access()?;
        let (web_admin, web_reflection) = (
            self.settings.grpc_web_admin,
            self.settings.grpc_web_reflection,
        );
        // gRPC-Web comes over HTTP/1.1 from browsers; native gRPC stays HTTP/2.
        let router = Server::builder()
            .accept_http1(true)
            .layer(browsers)
            .layer(RpcTraceLayer)
            .add_service(web::served(health, true))
            .add_service(web::served(reflection_v1, web_reflection))
            .add_service(web::served(reflection_v1alpha, web_reflection))
            .add_service(web::served(api, true))
            .add_service(web::served(admin, web_admin));
        let served = match &self.tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(tls.incoming(self.listener), signal)
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                        signal,
                    )
                    .await
            }
        };
        for t in tasks {
            t.abort();
        }
        if let Err(e) = self.store.close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
        tracing::info!("authd stopped");
        Ok(served?)
    }
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    let name = <AuthServiceServer<AuthApi> as tonic::server::NamedService>::NAME;
    reporter.set_service_status(name, status).await;
    reporter.set_service_status("", status).await;
}

fn spawn_revocation_reload(
    auth: Arc<Auth>,
    reporter: HealthReporter,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut healthy = true;
        loop {
            tick.tick().await;
            match auth.reload_revocations().await {
                Ok(()) if !healthy => {
                    tracing::info!("database reachable again");
                    set_health(&reporter, ServingStatus::Serving).await;
                    healthy = true;
                }
                Ok(()) => {}
                Err(e) if healthy => {
                    // Without the database, logins and refreshes fail and revocations go
                    // unseen: take this instance out of rotation until it is back.
                    tracing::error!(error = %e, "cannot reload revocations: reporting NOT_SERVING");
                    set_health(&reporter, ServingStatus::NotServing).await;
                    healthy = false;
                }
                Err(_) => {}
            }
        }
    })
}

/// Picks up a rotation (`authd keys rotate`, run anywhere) and drops retired keys.
fn spawn_key_reload(auth: Arc<Auth>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate and the keys were just loaded.
        tick.tick().await;
        let mut failing = false;
        loop {
            tick.tick().await;
            // Health is the revocation loop's to report; here a failure keeps the keys in
            // force, and is logged once, not every tick.
            match auth.reload_keys().await {
                Ok(()) if failing => {
                    tracing::info!("signing keys reloaded again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::error!(error = %e, "cannot reload signing keys: keeping the current ones");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    })
}

/// Serves a rotated certificate without a restart: the files are checked every `every`,
/// and at once on SIGHUP. A bad new pair is logged and the current one kept.
fn spawn_tls_reload(tls: Arc<ServerTls>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            {
                let hup = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = hup => tracing::info!("SIGHUP: checking the TLS certificate"),
                }
            }
            #[cfg(not(unix))]
            tick.tick().await;
            match tls.reload() {
                Ok(true) => {
                    tracing::info!(cert = %tls.cert_path().display(), "serving a new TLS certificate")
                }
                Ok(false) => {}
                Err(e) => tracing::error!("{e}: keeping the current TLS certificate"),
            }
        }
    })
}

fn spawn_cleanup(auth: Arc<Auth>, every: Duration, retention: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = auth.cleanup(retention).await {
                tracing::warn!(error = %e, "clean-up of dead sessions failed");
            }
        }
    })
}
