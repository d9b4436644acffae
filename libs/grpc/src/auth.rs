//! Every Paved RPC is authenticated and authorised here, in one tower layer
//! of the shared server stack, before any handler runs.
//!
//! - A call to `/paved.<service>.v1.…/<Method>` needs `authorization: Bearer
//!   pvt1.…`, a token the broker signed (verified offline against the
//!   broker's key set, which [`follow`] keeps current), for audience `paved`
//!   or the service's own short name, not revoked. Otherwise
//!   UNAUTHENTICATED.
//! - The token must grant `read:<service>` for a method that only reads
//!   (`Get…`, `List…`, `Watch…`, `Explain…`, `Plan…`, `Replay…`) and
//!   `write:<service>` for any other. Otherwise PERMISSION_DENIED.
//!   Handlers check finer scopes (`deploy:<env>/<workload>`) with
//!   [`require`] on the [`Caller`] this layer attaches.
//! - On an mTLS server (production mode), a token whose subject is a
//!   platform service (`spiffe://paved/platform/<service>`) is accepted
//!   only from a client that proved that same identity with its
//!   certificate: the token alone, copied off its host, calls nothing (it
//!   can still enrol a certificate until it expires or is revoked, as
//!   its holder does).
//! - Health, reflection, `/healthz`, `/metrics` and the methods services
//!   declare open (the broker's key set) need nothing, as load balancers and
//!   tools expect.

use crate::status::DOMAIN;
use futures::future::BoxFuture;
use paved_proto::secrets_broker::v1::{GetKeySetRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use paved_token::{Claims, KeySet, TokenError};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock, Mutex, RwLock},
    task::{Context, Poll},
    time::Duration,
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

pub use paved_token::{AUDIENCES, PLATFORM_AUDIENCE, method_scope};
/// The broker's method that publishes the key set (open).
pub const KEY_SET_METHOD: &str = "/paved.secrets_broker.v1.SecretsBrokerService/GetKeySet";
/// The broker's method that publishes the CA bundle (open).
pub const TRUST_BUNDLE_METHOD: &str = "/paved.secrets_broker.v1.SecretsBrokerService/GetTrustBundle";
/// The broker's method a service calls for its certificate: over TLS
/// without one yet, with the token of its identity.
pub const ISSUE_CERTIFICATE_METHOD: &str = "/paved.secrets_broker.v1.SecretsBrokerService/IssueCertificate";
/// How often verifiers ask the broker for its key set and revocations: a
/// revocation reaches every service within about this long.
pub const KEY_SET_POLL: Duration = Duration::from_secs(1);
/// Verified tokens remembered, so a client's repeated calls cost a lookup
/// rather than a signature check; cleared when full or when keys change.
const CACHE_LIMIT: usize = 16 * 1024;

/// The verified caller of a call, in the request's extensions: its claims
/// (it derefs to them), and where a handler's refusal of it is recorded, as
/// the layer records its own (an `access.denied` event).
#[derive(Clone)]
pub struct Caller {
    claims: Arc<Claims>,
    auth: Authenticator,
    service: String,
    method: String,
}

impl std::ops::Deref for Caller {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}

impl Caller {
    /// PERMISSION_DENIED (reason `MISSING_SCOPE`, the scope in `ErrorInfo`)
    /// unless the caller's token grants `scope`; a refusal is recorded.
    pub fn grants(&self, scope: &str) -> Result<(), Status> {
        if self.claims.allows(scope) { Ok(()) } else { Err(self.refuse(missing_scope(&self.claims.sub, scope))) }
    }

    /// Records `status`, a handler's refusal of this call, as the layer
    /// records its own, and gives it back to be answered.
    pub fn refuse(&self, status: Status) -> Status {
        self.auth.refused(&self.service, &self.method, &self.claims.sub, &status);
        status
    }
}

/// The call's token and what verified it: a long call (a server stream)
/// asks again whether the token still holds ([`bounded`]).
#[derive(Clone)]
pub struct TokenGuard {
    claims: Arc<Claims>,
    auth: Authenticator,
}

impl TokenGuard {
    /// Why the token no longer holds (expired, revoked), if it does not.
    pub fn ended(&self) -> Option<Status> {
        let now = chrono::Utc::now().timestamp();
        if now > self.claims.exp + paved_token::LEEWAY_SECS {
            return Some(token_refused(&TokenError::Expired(now - self.claims.exp)));
        }
        let trust = self.auth.inner.state.read().unwrap_or_else(|e| e.into_inner());
        trust.revoked.contains(&self.claims.jti).then(|| token_refused(&TokenError::Revoked))
    }
}

/// The guard of the call's token.
pub fn guard<T>(request: &tonic::Request<T>) -> Result<TokenGuard, Status> {
    request
        .extensions()
        .get::<TokenGuard>()
        .cloned()
        .ok_or_else(|| denial(Code::Unauthenticated, "TOKEN_MISSING", "this call needs a token"))
}

/// `stream`, ended with UNAUTHENTICATED once the call's token expires or is
/// revoked (looked at every second and before each message): a stream
/// lives no longer than the token that opened it.
pub fn bounded<T: Send + 'static>(
    guard: TokenGuard,
    mut stream: std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>,
) -> tokio_stream::wrappers::ReceiverStream<Result<T, Status>> {
    use tokio_stream::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = tick.tick() => {
                    if let Some(status) = guard.ended() {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    continue;
                }
                _ = tx.closed() => return,
            };
            let Some(item) = item else { return };
            let item = match guard.ended() {
                Some(status) => Err(status),
                None => item,
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// What a server trusts: the broker's public keys and the revoked token ids.
/// Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: RwLock<Trust>,
    verified: Mutex<HashMap<String, Arc<Claims>>>,
    /// Where refusals go to become events (see [`Authenticator::denials`]).
    denials: std::sync::OnceLock<tokio::sync::mpsc::Sender<Denied>>,
}

/// A call the layer refused, to be recorded as an event: never the token.
#[derive(Debug, Clone)]
pub struct Denied {
    /// The service's short name.
    pub service: String,
    pub method: String,
    /// The token's subject, when the token itself was valid.
    pub subject: String,
    pub reason: String,
    pub message: String,
}

/// Refusals waiting to be recorded; beyond, they are counted and dropped
/// (a flood of bad calls must not hold up the good ones).
const DENIALS_QUEUED: usize = 4096;

#[derive(Default)]
struct Trust {
    /// `None` until the first key set arrives: calls are UNAVAILABLE, not
    /// refused, while a service starts.
    keys: Option<KeySet>,
    revoked: HashSet<String>,
    version: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    service: String,
    reason: String,
}

static DENIALS: LazyLock<Family<DenialLabels, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    paved_telemetry::register("auth_denials", "Calls refused by authentication or authorisation, by reason", family.clone());
    family
});

static DENIALS_UNRECORDED: LazyLock<Counter> = LazyLock::new(|| {
    let counter = Counter::default();
    paved_telemetry::register("auth_denials_unrecorded", "Refused calls not recorded as events: the queue was full", counter.clone());
    counter
});

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the trusted keys and revocations (`version` is the broker's).
    pub fn update(&self, keys: KeySet, revoked: HashSet<String>, version: u64) {
        let mut trust = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        *trust = Trust { keys: Some(keys), revoked, version };
        // A key may have been dropped or a token revoked: forget what was
        // verified with the old trust.
        self.inner.verified.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The refusals of the layer from now on, for the caller to record as
    /// events; None if someone already takes them.
    pub fn denials(&self) -> Option<tokio::sync::mpsc::Receiver<Denied>> {
        let (tx, rx) = tokio::sync::mpsc::channel(DENIALS_QUEUED);
        self.inner.denials.set(tx).ok().map(|()| rx)
    }

    /// A refused call, the layer's or a handler's: logged, counted, and
    /// queued to become an event (the subject, never the token). A service
    /// still starting refuses nobody: it asks to retry, and that is no event.
    fn refused(&self, service: &str, method: &str, subject: &str, status: &Status) {
        let reason = status.get_details_error_info().map(|i| i.reason).unwrap_or_default();
        tracing::warn!(path = method, reason, "call refused: {}", status.message());
        DENIALS.get_or_create(&DenialLabels { service: service.to_string(), reason: reason.clone() }).inc();
        if status.code() != Code::Unavailable {
            let message = status.message().to_string();
            self.denied(Denied { service: service.to_string(), method: method.to_string(), subject: subject.to_string(), reason, message });
        }
    }

    /// Queues a refusal without waiting.
    fn denied(&self, denied: Denied) {
        if let Some(tx) = self.inner.denials.get()
            && tx.try_send(denied).is_err()
        {
            DENIALS_UNRECORDED.inc();
        }
    }

    pub fn version(&self) -> u64 {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner()).version
    }

    /// The claims of `token` if it is valid for `service` (short name) now.
    pub fn authenticate(&self, token: &str, service: &str) -> Result<Arc<Claims>, Status> {
        self.authenticate_at(token, Some(service), chrono::Utc::now().timestamp())
    }

    /// [`Authenticator::authenticate`] at `now` (Unix seconds); `service`
    /// None accepts a token of any audience (a holder renewing or revoking
    /// its own token).
    pub fn authenticate_at(&self, token: &str, service: Option<&str>, now: i64) -> Result<Arc<Claims>, Status> {
        let trust = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(keys) = &trust.keys else {
            return Err(denial(Code::Unavailable, "KEYS_NOT_LOADED", "this service has not loaded the broker's key set yet; retry"));
        };
        let cached = self.inner.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        let claims = match cached {
            Some(claims) => {
                // Signature and key were checked; times, audience and
                // revocation are checked on every call.
                if now > claims.exp + paved_token::LEEWAY_SECS {
                    return Err(token_refused(&TokenError::Expired(now - claims.exp)));
                }
                claims
            }
            None => {
                // Audience is checked below, for cached tokens too.
                let claims = Arc::new(keys.verify(token, &AUDIENCES, now, |_| false).map_err(|e| token_refused(&e))?);
                let mut verified = self.inner.verified.lock().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= CACHE_LIMIT {
                    verified.clear();
                }
                verified.insert(token.to_string(), claims.clone());
                claims
            }
        };
        if let Some(service) = service
            && claims.aud != PLATFORM_AUDIENCE
            && claims.aud != service
        {
            let e = TokenError::WrongAudience { got: claims.aud.clone(), wanted: format!("{PLATFORM_AUDIENCE} or {service}") };
            return Err(token_refused(&e));
        }
        if trust.revoked.contains(&claims.jti) {
            return Err(token_refused(&TokenError::Revoked));
        }
        Ok(claims)
    }
}

/// UNAUTHENTICATED for a token that does not verify, with its reason.
pub fn token_refused(e: &TokenError) -> Status {
    let reason = match e {
        TokenError::Expired(_) => "TOKEN_EXPIRED",
        TokenError::Revoked => "TOKEN_REVOKED",
        TokenError::WrongAudience { .. } => "TOKEN_WRONG_AUDIENCE",
        TokenError::NotYetValid => "TOKEN_NOT_YET_VALID",
        TokenError::Malformed(_) | TokenError::UnknownKey(_) | TokenError::BadSignature => "TOKEN_INVALID",
    };
    denial(Code::Unauthenticated, reason, &e.to_string())
}

fn denial(code: Code, reason: &str, message: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, HashMap::<String, String>::new());
    Status::with_error_details(code, message, details)
}

/// PERMISSION_DENIED unless the call's token grants `scope`; a refusal is
/// recorded ([`Caller::grants`]).
pub fn require<T>(request: &tonic::Request<T>, scope: &str) -> Result<Caller, Status> {
    let caller = caller(request)?;
    caller.grants(scope)?;
    Ok(caller)
}

/// The verified caller of the call.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| {
        // Only open methods run without a caller, and they do not ask.
        denial(Code::Unauthenticated, "TOKEN_MISSING", "this call needs a token")
    })
}

/// PERMISSION_DENIED for a token that lacks `scope` (reason
/// `MISSING_SCOPE`, the scope in `ErrorInfo` metadata).
pub fn missing_scope(subject: &str, scope: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info("MISSING_SCOPE", DOMAIN, HashMap::from([("scope".to_string(), scope.to_string())]));
    Status::with_error_details(Code::PermissionDenied, format!("{subject} lacks scope {scope}"), details)
}

/// Methods exempt from the layer's rules, by full path.
#[derive(Debug, Clone, Default)]
pub struct Exemptions {
    /// Need no token at all.
    pub open: HashSet<String>,
    /// Need a valid token but no scope: a holder acting on its own token
    /// (renewing it, revoking it); the handler checks the rest.
    pub token_only: HashSet<String>,
}

/// What a call to a method takes at the layer. This is the one rule: the
/// layer decides by it, and `docs/scopes.md` is generated from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// No token (health, the key set, calls whose credential is a certificate).
    Nothing,
    /// A valid token; the handler checks a finer scope, or that the token
    /// acts on itself.
    Token,
    /// A valid token for the service that grants this scope
    /// (`read:<service>` or `write:<service>`, see [`method_scope`]).
    Scope(String),
}

impl Exemptions {
    /// What calling `path` takes, and the short name of its service; `None`
    /// for anything that is not a Paved method.
    pub fn need(&self, path: &str) -> Option<(Need, String)> {
        let (scope, service) = method_scope(path)?;
        let need = if self.open.contains(path) {
            Need::Nothing
        } else if self.token_only.contains(path) {
            Need::Token
        } else {
            Need::Scope(scope)
        };
        Some((need, service))
    }
}

/// The layer.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Authenticator,
    exempt: Arc<Exemptions>,
    /// The server speaks mTLS: platform service tokens need their certificate.
    mtls: bool,
}

impl AuthLayer {
    pub fn new(auth: Authenticator, exempt: Exemptions, mtls: bool) -> Self {
        Self { auth, exempt: Arc::new(exempt), mtls }
    }
}

/// A platform service's token over a connection that did not prove that
/// service's identity (mTLS servers; getting the certificate is exempt).
fn unproven_service<B>(req: &http::Request<B>, claims: &Claims) -> Option<Status> {
    if !claims.sub.starts_with(crate::tls::PLATFORM_PREFIX) || req.uri().path() == ISSUE_CERTIFICATE_METHOD {
        return None;
    }
    match crate::tls::peer_id(req) {
        Some(peer) if peer == claims.sub => None,
        peer => Some(denial(
            Code::Unauthenticated,
            "PEER_CERTIFICATE_REQUIRED",
            &format!(
                "a token of {} is accepted only over mTLS with its certificate (the client proved {})",
                claims.sub,
                peer.as_deref().unwrap_or("no identity")
            ),
        )),
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, RB> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let mut workload = None;
        if let Some((need, service)) = self.layer.exempt.need(path).filter(|(need, _)| *need != Need::Nothing) {
            let token_only = need == Need::Token;
            let token =
                req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            let mut subject = String::new();
            let checked = match token {
                None => Err(denial(Code::Unauthenticated, "TOKEN_MISSING", "this call needs a token (authorization: Bearer …)")),
                Some(token) => {
                    let audience = (!token_only).then_some(service.as_str());
                    self.layer.auth.authenticate_at(token.trim(), audience, chrono::Utc::now().timestamp())
                }
                .inspect(|claims| subject.clone_from(&claims.sub))
                .and_then(|claims| match &need {
                    Need::Scope(scope) if !claims.allows(scope) => Err(missing_scope(&claims.sub, scope)),
                    _ => Ok(claims),
                })
                .and_then(|claims| match self.layer.mtls.then(|| unproven_service(&req, &claims)).flatten() {
                    Some(status) => Err(status),
                    None => Ok(claims),
                }),
            };
            match checked {
                Ok(claims) => {
                    workload = crate::spiffe::workload_of(&claims.sub)
                        .map(|(environment, workload)| CallerWorkload { environment: environment.into(), workload: workload.into() });
                    let method = path.to_string();
                    req.extensions_mut().insert(TokenGuard { claims: claims.clone(), auth: self.layer.auth.clone() });
                    req.extensions_mut().insert(Caller { claims, auth: self.layer.auth.clone(), service, method });
                }
                Err(status) => {
                    self.layer.auth.refused(&service, path, &subject, &status);
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = inner.call(req);
        Box::pin(async move {
            let mut result = call.await;
            if let (Ok(response), Some(workload)) = (&mut result, workload) {
                response.extensions_mut().insert(workload);
            }
            result
        })
    }
}

/// The workload whose identity made a call, told to the layer outside
/// (`observe`) in the response's extensions: it counts calls per workload.
#[derive(Debug, Clone)]
pub(crate) struct CallerWorkload {
    pub(crate) environment: String,
    pub(crate) workload: String,
}

/// Keeps `auth` current with the broker at `broker_url` until `shutdown`:
/// asks every [`KEY_SET_POLL`] for the key set (the broker answers "not
/// modified" when nothing changed). While the broker is unreachable the last
/// key set stays trusted: tokens keep verifying offline. `loaded` is told
/// whether a key set is held (a service is not serving before).
pub async fn follow(
    auth: Authenticator,
    broker_url: String,
    tls: Option<crate::tls::Tls>,
    loaded: Arc<dyn Fn(bool) + Send + Sync>,
    shutdown: CancellationToken,
) {
    loaded(false);
    let channel = crate::tls::connect(&broker_url, tls.as_ref(), Some(&crate::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(5))
    });
    let channel = match channel {
        Ok(channel) => channel,
        Err(e) => {
            tracing::error!(broker = %broker_url, error = %e, "invalid broker URL: no token will verify");
            return;
        }
    };
    let mut client = SecretsBrokerServiceClient::new(channel);
    let mut warned = false;
    loop {
        match fetch(&auth, &mut client).await {
            Ok(()) => {
                warned = false;
                loaded(true);
            }
            Err(e) if !warned => {
                tracing::warn!(broker = %broker_url, error = %e, "cannot fetch the broker's key set; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(KEY_SET_POLL) => {}
        }
    }
}

async fn fetch(auth: &Authenticator, client: &mut SecretsBrokerServiceClient<tonic::transport::Channel>) -> anyhow::Result<()> {
    let request = GetKeySetRequest { known_version: auth.version() };
    let set = client.get_key_set(request).await?.into_inner();
    if set.not_modified {
        return Ok(());
    }
    let (keys, revoked) = trust(&set)?;
    auth.update(keys, revoked, set.version);
    Ok(())
}

/// The public keys and revoked token ids of a published key set.
pub fn trust(set: &paved_proto::secrets_broker::v1::GetKeySetResponse) -> anyhow::Result<(KeySet, HashSet<String>)> {
    let mut keys = KeySet::default();
    for key in &set.keys {
        let bytes: [u8; 32] = key.ed25519.as_slice().try_into().map_err(|_| anyhow::anyhow!("key {} is not 32 bytes", key.key_id))?;
        keys.insert(&key.key_id, ed25519_dalek::VerifyingKey::from_bytes(&bytes)?);
    }
    Ok((keys, set.revoked.iter().map(|r| r.token_id.clone()).collect()))
}

#[cfg(test)]
mod authenticator_tests {
    use super::*;
    use paved_token::Issuer;

    fn claims(exp: i64, aud: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "alice".into(),
            aud: aud.into(),
            scp: vec!["read:*".into()],
            iat: now,
            exp,
            ren: 0,
            jti: "t-1".into(),
            kid: String::new(),
            dig: String::new(),
        }
    }

    fn reason(status: &Status) -> String {
        status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    }

    #[test]
    fn checks_keys_times_audience_and_revocation_also_when_cached() {
        let issuer = Issuer::generate();
        let auth = Authenticator::new();
        let now = chrono::Utc::now().timestamp();
        let token = issuer.sign(claims(now + 60, PLATFORM_AUDIENCE));
        // Before any key set: retry later, not refused.
        assert_eq!(auth.authenticate(&token, "audit").expect_err("no keys").code(), Code::Unavailable);

        let mut keys = KeySet::default();
        keys.insert(&issuer.kid, issuer.public());
        auth.update(keys.clone(), HashSet::new(), 7);
        assert_eq!(auth.authenticate(&token, "audit").expect("valid").sub, "alice");
        // Cached now; a revocation still applies at once.
        auth.update(keys.clone(), HashSet::from(["t-1".to_string()]), 8);
        assert_eq!(reason(&auth.authenticate(&token, "audit").expect_err("revoked")), "TOKEN_REVOKED");
        auth.update(keys.clone(), HashSet::new(), 9);

        // A cached token expires like any other.
        let later = now + 60 + paved_token::LEEWAY_SECS + 1;
        assert_eq!(reason(&auth.authenticate_at(&token, Some("audit"), later).expect_err("cached, expired")), "TOKEN_EXPIRED");
        // Any audience where the method accepts any (a token renewing itself).
        let for_audit_only = issuer.sign(claims(now + 60, "audit"));
        assert!(auth.authenticate_at(&for_audit_only, None, now).is_ok());
        // Expired beyond the leeway, cached or not.
        let old = issuer.sign(claims(now - paved_token::LEEWAY_SECS - 5, PLATFORM_AUDIENCE));
        assert_eq!(reason(&auth.authenticate(&old, "audit").expect_err("expired")), "TOKEN_EXPIRED");
        // Another service's audience.
        let for_audit = issuer.sign(claims(now + 60, "audit"));
        assert!(auth.authenticate(&for_audit, "audit").is_ok());
        let e = auth.authenticate(&for_audit, "provisioner").expect_err("wrong audience");
        assert_eq!((e.code(), reason(&e)), (Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE".to_string()));
        // Signed by a key the set does not hold; a tampered signature.
        let stranger = Issuer::generate().sign(claims(now + 60, PLATFORM_AUDIENCE));
        assert_eq!(reason(&auth.authenticate(&stranger, "audit").expect_err("unknown key")), "TOKEN_INVALID");
        let mut tampered = issuer.sign(claims(now + 61, PLATFORM_AUDIENCE));
        let at = tampered.len() - 10;
        let other = if &tampered[at..=at] == "A" { "B" } else { "A" };
        tampered.replace_range(at..=at, other);
        assert_eq!(reason(&auth.authenticate(&tampered, "audit").expect_err("tampered")), "TOKEN_INVALID");
        // A dropped key stops verifying its tokens, even cached ones.
        auth.update(KeySet::default(), HashSet::new(), 10);
        assert_eq!(reason(&auth.authenticate(&token, "audit").expect_err("key dropped")), "TOKEN_INVALID");
        // No message repeats the token.
        assert!(!auth.authenticate(&token, "audit").expect_err("refused").message().contains(&token[5..30]));
    }
}
