//! The stand-in authd.
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use crate::proto::{GetJwksRequest, GetJwksResponse, ValidateRequest, ValidateResponse};
use crate::proto_server::auth_service_server::{AuthService, AuthServiceServer};
use crate::{Rejection, Verifier, reason};

#[derive(Default)]
struct State {
    jwks: Mutex<String>,
    get_jwks_calls: AtomicUsize,
    validate_calls: AtomicUsize,
    validator: Mutex<Option<Verifier>>,
    revoked_sessions: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone)]
struct Service(Arc<State>);

#[tonic::async_trait]
impl AuthService for Service {
    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        self.0.get_jwks_calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(GetJwksResponse {
            jwks_json: lock(&self.0.jwks).clone(),
        }))
    }

    async fn validate(
        &self,
        request: Request<ValidateRequest>,
    ) -> Result<Response<ValidateResponse>, Status> {
        self.0.validate_calls.fetch_add(1, Ordering::SeqCst);
        let r = request.into_inner();
        let verifier = lock(&self.0.validator).clone();
        let Some(verifier) = verifier else {
            return Err(Status::unimplemented(
                "this stand-in authd was not given keys",
            ));
        };
        let claims = verifier
            .verify(&r.token, Some(&r.audience))
            .map_err(|e| Status::from(Rejection::Invalid(e)))?;
        if lock(&self.0.revoked_sessions).contains(&claims.sid) {
            return Err(Status::with_error_details(
                tonic::Code::Unauthenticated,
                "the token's session has been revoked or its user disabled",
                tonic_types::ErrorDetails::with_error_info(
                    reason::TOKEN_REVOKED,
                    reason::DOMAIN,
                    [],
                ),
            ));
        }
        Ok(Response::new(ValidateResponse {
            claims: Some(claims.into()),
        }))
    }
}

/// A stand-in authd serving `authd.v1.AuthService` on 127.0.0.1 (an OS-chosen port):
/// `GetJwks` returns the set given to [`FakeAuthd::set_jwks`]; `Validate` verifies with
/// the verifier given to [`FakeAuthd::validate_with`] and refuses revoked sessions with
/// `TOKEN_REVOKED`; every other RPC is UNIMPLEMENTED. Stops when dropped.
pub struct FakeAuthd {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeAuthd {
    /// Start serving `jwks_json`.
    pub async fn start(jwks_json: impl Into<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        *lock(&state.jwks) = jwks_json.into();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = AuthServiceServer::new(Service(state.clone()));
        tokio::spawn(async move {
            let _ = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to it (connects on first use).
    pub fn channel(&self) -> Channel {
        match Endpoint::from_shared(self.url()) {
            Ok(endpoint) => endpoint.connect_lazy(),
            // The URL is built from a socket address just above.
            Err(e) => panic!("bad stand-in authd URL: {e}"),
        }
    }

    /// Serve another JWKS from now on (a key rotation).
    pub fn set_jwks(&self, jwks_json: impl Into<String>) {
        *lock(&self.state.jwks) = jwks_json.into();
    }

    /// How many `GetJwks` calls it has answered.
    pub fn get_jwks_calls(&self) -> usize {
        self.state.get_jwks_calls.load(Ordering::SeqCst)
    }

    /// How many `Validate` calls it has answered.
    pub fn validate_calls(&self) -> usize {
        self.state.validate_calls.load(Ordering::SeqCst)
    }

    /// Answer `Validate` by verifying with `verifier`.
    pub fn validate_with(&self, verifier: Verifier) {
        *lock(&self.state.validator) = Some(verifier);
    }

    /// Refuse the tokens of session `sid` in `Validate` from now on.
    pub fn revoke_session(&self, sid: &str) {
        lock(&self.state.revoked_sessions).insert(sid.to_owned());
    }
}

impl Drop for FakeAuthd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
