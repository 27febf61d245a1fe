//! Where verification keys come from: fixed (a shared secret, pinned public keys) or
//! authd's `GetJwks`, cached behind an `ArcSwap` so verifying is a pointer load.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::proto::GetJwksRequest;
use crate::proto::auth_service_client::AuthServiceClient;
use crate::{Claims, JwksError, Verifier, VerifyError, token_kid};

/// Why the key set could not be fetched from authd. The set in force stays.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    /// `GetJwks` failed; authd's status.
    #[error("cannot fetch the JWKS from authd: {0}")]
    Fetch(tonic::Status),
    /// `GetJwks` did not answer in time.
    #[error("authd did not answer GetJwks within {0:?}")]
    Timeout(Duration),
    /// The JWKS came back but was refused.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// How a JWKS-backed [`KeySource`] checks the token's issuer and audience and how often it
/// asks authd for keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksOptions {
    /// The issuer every token must name (authd's `AUTHD_ISSUER`).
    pub issuer: String,
    /// The audience tokens must be meant for.
    pub audience: String,
    /// How often the background task ([`KeySource::spawn_refresh`]) refetches the set.
    pub refresh_interval: Duration,
    /// The floor between two fetches prompted by unknown `kid`s: garbage kids cannot make
    /// this service hammer authd. Also the retry delay after a failed background fetch.
    pub min_refetch_interval: Duration,
    /// How long one `GetJwks` call may take.
    pub fetch_timeout: Duration,
}

impl JwksOptions {
    /// Refresh every 5 minutes, refetch on an unknown kid at most every 10 s, 5 s timeout.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            refresh_interval: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// The keys a service verifies authd tokens with. Cheap to clone: clones share one cache.
///
/// [`KeySource::fixed`] never changes. [`KeySource::jwks`] starts empty and is filled from
/// authd's `GetJwks`: by [`KeySource::refresh`], by the task of
/// [`KeySource::spawn_refresh`], and when a token names a kid the set does not hold (authd
/// rotated its key), at most once per [`JwksOptions::min_refetch_interval`].
#[derive(Clone)]
pub struct KeySource {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Verifier>,
    jwks: Option<Fetcher>,
}

struct Fetcher {
    client: AuthServiceClient<Channel>,
    options: JwksOptions,
    /// When the last refetch for an unknown kid started (the floor counts those only: a
    /// scheduled refresh just before a rotation must not delay picking the new key up).
    /// Every fetch holds the lock, so concurrent refetches queue behind the one in flight
    /// and then find its result instead of fetching again.
    last_kid_refetch: Mutex<Option<Instant>>,
    /// A refetch task spawned by the synchronous interceptor is pending: a burst of
    /// unknown kids spawns one, not one per request.
    spawned: AtomicBool,
    fetched_once: AtomicBool,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("keys", &self.verifier().keys())
            .field("jwks", &self.inner.jwks.as_ref().map(|j| &j.options))
            .finish()
    }
}

impl KeySource {
    /// Keys known in advance: the HS256 shared secret, or pinned Ed25519 public keys.
    pub fn fixed(verifier: Verifier) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(verifier),
                jwks: None,
            }),
        }
    }

    /// Keys fetched from authd's `GetJwks` over `channel`. Starts empty: call
    /// [`KeySource::refresh`] (or use [`KeySource::connect_jwks`]) before serving.
    pub fn jwks(channel: Channel, options: JwksOptions) -> Self {
        let empty = Verifier::new(Vec::new(), &options.issuer, &options.audience);
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(empty),
                jwks: Some(Fetcher {
                    client: AuthServiceClient::new(channel),
                    options,
                    last_kid_refetch: Mutex::new(None),
                    spawned: AtomicBool::new(false),
                    fetched_once: AtomicBool::new(false),
                }),
            }),
        }
    }

    /// [`KeySource::jwks`] and a first fetch, which must succeed.
    pub async fn connect_jwks(
        channel: Channel,
        options: JwksOptions,
    ) -> Result<Self, KeySourceError> {
        let keys = Self::jwks(channel, options);
        keys.refresh().await?;
        Ok(keys)
    }

    /// The key set in force (a snapshot: a later refresh does not change it).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.inner.current.load_full()
    }

    /// Verify against the key set in force, with no network call.
    pub fn verify(&self, token: &str, audience: Option<&str>) -> Result<Claims, VerifyError> {
        self.inner.current.load().verify(token, audience)
    }

    /// Verify; when the token names a key the set lacks, refetch the JWKS (within the
    /// floor) and verify once more.
    pub async fn verify_or_refetch(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<Claims, VerifyError> {
        match self.verify(token, audience) {
            Err(VerifyError::UnknownKey) => match token_kid(token) {
                Some(kid) if self.refetch_for_kid(&kid).await => self.verify(token, audience),
                _ => Err(VerifyError::UnknownKey),
            },
            done => done,
        }
    }

    /// Fetch the JWKS now, whatever the floor, and put it in force. Returns the number of
    /// keys. A no-op for fixed keys.
    pub async fn refresh(&self) -> Result<usize, KeySourceError> {
        let Some(fetcher) = &self.inner.jwks else {
            return Ok(self.verifier().keys().len());
        };
        let _one_at_a_time = fetcher.last_kid_refetch.lock().await;
        self.fetch(fetcher).await
    }

    /// Refetch because a token named `kid`, unless the floor forbids it. Returns whether
    /// the set now knows `kid`.
    pub(crate) async fn refetch_for_kid(&self, kid: &str) -> bool {
        let Some(fetcher) = &self.inner.jwks else {
            return false;
        };
        let mut last = fetcher.last_kid_refetch.lock().await;
        // A fetch that finished while this one waited for the lock may have brought it.
        if self.inner.current.load().knows_kid(kid) {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < fetcher.options.min_refetch_interval) {
            tracing::debug!(kid = ?kid, "unknown key id within the refetch floor: not asking authd");
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch(fetcher).await {
            Ok(_) => self.inner.current.load().knows_kid(kid),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch for an unknown kid failed");
                false
            }
        }
    }

    /// For callers that cannot wait (the interceptor): refetch in the background when the
    /// token names an unknown kid, so the requests after it pass once authd's new key is in.
    pub(crate) fn refetch_in_background(&self, token: &str) {
        let Some(fetcher) = &self.inner.jwks else {
            return;
        };
        let Some(kid) = token_kid(token) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if fetcher
            .spawned
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let keys = self.clone();
        runtime.spawn(async move {
            keys.refetch_for_kid(&kid).await;
            if let Some(f) = &keys.inner.jwks {
                f.spawned.store(false, Ordering::Release);
            }
        });
    }

    async fn fetch(&self, fetcher: &Fetcher) -> Result<usize, KeySourceError> {
        let timeout = fetcher.options.fetch_timeout;
        let mut request = tonic::Request::new(GetJwksRequest {});
        request.set_timeout(timeout);
        let mut client = fetcher.client.clone();
        let response = tokio::time::timeout(timeout, client.get_jwks(request))
            .await
            .map_err(|_| KeySourceError::Timeout(timeout))?
            .map_err(KeySourceError::Fetch)?;
        let verifier = Verifier::from_jwks_json(
            &response.into_inner().jwks_json,
            &fetcher.options.issuer,
            &fetcher.options.audience,
        )?;
        let kids = |v: &Verifier| -> Vec<String> {
            v.keys()
                .iter()
                .filter_map(|k| k.kid().map(str::to_owned))
                .collect()
        };
        let new_kids = kids(&verifier);
        let changed = new_kids != kids(&self.inner.current.load());
        let first = !fetcher.fetched_once.swap(true, Ordering::AcqRel);
        if changed {
            tracing::info!(kids = ?new_kids, "authd verification keys changed");
        }
        if new_kids.is_empty() && (changed || first) {
            tracing::warn!(
                "authd publishes no public keys (it signs with an HS256 secret): \
                 verify with the shared secret instead"
            );
        }
        let count = new_kids.len();
        self.inner.current.store(Arc::new(verifier));
        Ok(count)
    }

    /// Refetch the JWKS every [`JwksOptions::refresh_interval`] from a background task
    /// (right away if nothing was fetched yet; after a failure, again once the floor has
    /// passed). The task stops when the returned handle or every clone of this source is
    /// dropped. For fixed keys the task does nothing.
    pub fn spawn_refresh(&self) -> RefreshTask {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let fetched = !self.verifier().keys().is_empty();
        let handle = tokio::spawn(async move {
            let mut delay = match (&weak.upgrade(), fetched) {
                (Some(inner), true) => inner
                    .jwks
                    .as_ref()
                    .map_or(Duration::ZERO, |f| f.options.refresh_interval),
                _ => Duration::ZERO,
            };
            loop {
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else { return };
                let keys = KeySource { inner };
                let Some(options) = keys.inner.jwks.as_ref().map(|f| f.options.clone()) else {
                    return;
                };
                delay = match keys.refresh().await {
                    Ok(_) => options.refresh_interval,
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys in force");
                        options
                            .min_refetch_interval
                            .min(options.refresh_interval)
                            .max(Duration::from_millis(100))
                    }
                };
            }
        });
        RefreshTask(handle)
    }
}

/// The background JWKS refresh of [`KeySource::spawn_refresh`]; dropping it stops the task.
#[derive(Debug)]
pub struct RefreshTask(JoinHandle<()>);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::service::Interceptor;

    use super::*;
    use crate::AuthInterceptor;
    use crate::test_util::{FakeAuthd, TestKey, claims, jwks_json};

    fn key(n: u8) -> TestKey {
        TestKey::ed25519(&format!("ed-{n}"), [n; 32])
    }

    fn options(floor: Duration) -> JwksOptions {
        let mut o = JwksOptions::new("authd", "authd");
        o.min_refetch_interval = floor;
        o.fetch_timeout = Duration::from_secs(5);
        o
    }

    /// An address that refuses connections for as long as the returned socket lives: the
    /// socket is bound without SO_REUSEADDR (no one else can take the port) and never
    /// listens, so a connection attempt is answered with a reset at once.
    fn refusing_addr() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn connect_fetches_the_set_and_verifies_with_it() {
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let keys = KeySource::connect_jwks(authd.channel(), options(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(authd.get_jwks_calls(), 1);
        assert_eq!(
            keys.verify(&key(1).mint(&claims("ada")), None)
                .unwrap()
                .username,
            "ada"
        );
        assert!(keys.verifier().knows_kid("ed-1"));
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_but_no_more_often_than_the_floor() {
        // A floor no run of this test can outlast: "inside the floor" holds however slow
        // the machine, and "past it" is reached by moving tokio's clock, not by waiting.
        let floor = Duration::from_secs(3600);
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let keys = KeySource::connect_jwks(authd.channel(), options(floor))
            .await
            .unwrap();
        let rotated = key(2).mint(&claims("ada"));
        assert_eq!(keys.verify(&rotated, None), Err(VerifyError::UnknownKey));

        // authd rotates: the first token of the new key brings the new set in.
        authd.set_jwks(jwks_json(&[&key(1), &key(2)]));
        assert!(keys.verify_or_refetch(&rotated, None).await.is_ok());
        assert_eq!(authd.get_jwks_calls(), 2);

        // A burst of garbage kids inside the floor: refused, and authd is not asked. Each
        // call has returned, so each refetch it could have made has been made.
        let garbage = key(9).mint(&claims("mallory"));
        let burst = |n| {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let (keys, token) = (keys.clone(), garbage.clone());
                    tokio::spawn(async move { keys.verify_or_refetch(&token, None).await })
                })
                .collect();
            async move {
                for t in tasks {
                    assert_eq!(t.await.unwrap(), Err(VerifyError::UnknownKey));
                }
            }
        };
        burst(50).await;
        assert_eq!(authd.get_jwks_calls(), 2);
        // Known kids are not held up by the floor.
        assert!(keys.verify_or_refetch(&rotated, None).await.is_ok());

        // Past the floor, a burst costs one fetch, not one per request. Only the jump is
        // made on a paused clock: with time paused while a fetch waits for the network,
        // tokio would move the clock on to the fetch's timeout and fire it.
        tokio::time::pause();
        tokio::time::advance(floor).await;
        tokio::time::resume();
        burst(50).await;
        assert_eq!(authd.get_jwks_calls(), 3);
    }

    #[tokio::test]
    async fn a_bad_set_or_an_unreachable_authd_keeps_the_keys_in_force() {
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let keys = KeySource::connect_jwks(authd.channel(), options(Duration::ZERO))
            .await
            .unwrap();
        let token = key(1).mint(&claims("ada"));

        authd.set_jwks("{not json");
        assert!(matches!(
            keys.refresh().await,
            Err(KeySourceError::Jwks(JwksError::Json(_)))
        ));
        let mut leaky = key(2).jwk().unwrap();
        leaky["d"] = "c2VjcmV0".into();
        authd.set_jwks(format!(r#"{{"keys":[{leaky}]}}"#));
        assert!(matches!(
            keys.refresh().await,
            Err(KeySourceError::Jwks(JwksError::PrivateKey { .. }))
        ));
        assert!(keys.verify(&token, None).is_ok());

        // Nothing listens where authd was supposed to be.
        let (_held, port) = refusing_addr();
        let nowhere = tonic::transport::Endpoint::from_shared(format!("http://{port}"))
            .unwrap()
            .connect_lazy();
        let gone = KeySource::jwks(nowhere.clone(), options(Duration::ZERO));
        assert!(matches!(
            gone.refresh().await,
            Err(KeySourceError::Fetch(_))
        ));
        assert!(
            KeySource::connect_jwks(nowhere, options(Duration::ZERO))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_background_task_follows_rotations_and_stops_when_dropped() {
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let mut o = options(Duration::from_millis(50));
        o.refresh_interval = Duration::from_millis(100);
        // Lazy: empty until the task's first fetch, which comes at once.
        let keys = KeySource::jwks(authd.channel(), o);
        assert!(keys.verifier().keys().is_empty());
        let task = keys.spawn_refresh();
        wait_for("the first fetch", || keys.verifier().knows_kid("ed-1")).await;

        authd.set_jwks(jwks_json(&[&key(2)]));
        wait_for("the rotation", || keys.verifier().knows_kid("ed-2")).await;
        assert!(!keys.verifier().knows_kid("ed-1"), "retired keys go");

        // The task holds the source weakly (it does not keep the source alive), and that
        // reference goes with the task: once it is gone, nothing is left to fetch.
        assert_eq!(Arc::weak_count(&keys.inner), 1);
        drop(task);
        wait_for("the task to end", || Arc::weak_count(&keys.inner) == 0).await;
        assert!(keys.verifier().knows_kid("ed-2"), "the keys stay in force");
    }

    #[tokio::test]
    async fn the_interceptor_refuses_an_unknown_kid_and_refetches_behind_it() {
        let authd = FakeAuthd::start(jwks_json(&[&key(1)])).await.unwrap();
        let keys = KeySource::connect_jwks(authd.channel(), options(Duration::from_secs(10)))
            .await
            .unwrap();
        let mut interceptor = AuthInterceptor::new(keys.clone());
        let call = |interceptor: &mut AuthInterceptor, token: &str| {
            let mut request = tonic::Request::new(());
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            interceptor.call(request)
        };
        authd.set_jwks(jwks_json(&[&key(1), &key(2)]));
        let rotated = key(2).mint(&claims("ada"));
        let refused = call(&mut interceptor, &rotated).unwrap_err();
        assert_eq!(
            crate::rejection_reason(&refused).as_deref(),
            Some("UNKNOWN_KEY")
        );
        wait_for("the background refetch", || {
            keys.verifier().knows_kid("ed-2")
        })
        .await;
        let passed = call(&mut interceptor, &rotated).unwrap();
        assert_eq!(passed.extensions().get::<Claims>().unwrap().username, "ada");
        assert_eq!(authd.get_jwks_calls(), 2);
    }

    #[tokio::test]
    async fn fixed_keys_never_fetch() {
        let fixed = KeySource::fixed(Verifier::new(
            vec![key(1).verification_key()],
            "authd",
            "authd",
        ));
        assert_eq!(fixed.refresh().await.unwrap(), 1);
        assert_eq!(
            fixed
                .verify_or_refetch(&key(2).mint(&claims("ada")), None)
                .await,
            Err(VerifyError::UnknownKey)
        );
    }
}
