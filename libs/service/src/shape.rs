//! The shape of a service and its assembly. [`serve_standalone`] turns a
//! service's component into a server with everything production adds
//! around it (auth following the broker's key set, refusals published as
//! events, the mTLS identity kept current). [`ConsumerService`] is the one
//! shape of the services made of a database, a consumer group and an API:
//! [`consumer_component`] builds its component, the same for the embedded
//! mode (`paved up`) and for [`run_consumer`] in production.

use crate::{
    config::{BasicConfig, Common},
    connect::{database, stream},
    denials::publish_denials,
    identity::maintain_identity,
};
use paved_grpc::{Component, Health, ServerOptions, tls::Tls};
use paved_stream::SharedStream;
use sea_orm_migration::{MigratorTrait, sea_orm::DatabaseConnection};
use serde::de::DeserializeOwned;
use std::future::Future;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Adds a service's routes to a server's.
pub type Mount = Box<dyn FnOnce(tonic::service::Routes) -> tonic::service::Routes + Send>;

/// A service made of its database, one consumer group on every producer's
/// stream, and a gRPC API: what the four services besides the provisioner
/// are today. The shell (config, run, component) is written once, here.
pub trait ConsumerService: 'static {
    /// Short name: the consumer group, the binary (`paved-<NAME>`), the default database.
    const NAME: &'static str;
    /// Full gRPC service name; health is reported under it.
    const GRPC_NAME: &'static str;
    /// Default port in production mode.
    const PORT: u16;
    type Migrator: MigratorTrait;
    /// Its own settings ([`NoOptions`](crate::NoOptions) for none).
    type Options: DeserializeOwned + Default + Clone + Send + 'static;
    /// Whether the service publishes events: then its migrator has the
    /// outbox table and the shell runs its relay.
    const PUBLISHES: bool = false;
    /// The producers whose streams its handler reads: every one by default.
    /// A group on a stream it ignores would still take, track and ack each
    /// of its events (the broker publishes one per token issued).
    const READS: &'static [&'static str] = paved_stream::PRODUCERS;
    /// Methods callable without a token (full paths).
    const OPEN_METHODS: &'static [&'static str] = &[];
    /// Methods callable with any valid token (a holder acting on its own).
    const TOKEN_ONLY_METHODS: &'static [&'static str] = &[];
    /// Whether it calls other services: it then gets a bearer to present
    /// ([`Background::calls`]).
    const CALLS: bool = false;
    /// The routes and the event handler, on the service's migrated
    /// database; `relay` is to be woken after committing events; loops the
    /// service needs go to `background`.
    fn parts(
        db: DatabaseConnection,
        relay: paved_stream::outbox::Relay,
        options: Self::Options,
        background: &mut Background,
    ) -> anyhow::Result<(Mount, std::sync::Arc<dyn paved_stream::consumer::Handler>)>;
}

/// Where a service starts its loops: they get the shutdown token and are
/// awaited when the server stops.
pub struct Background {
    tasks: tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
    tls: Option<Tls>,
    calls: Option<paved_grpc::client::Bearer>,
}

impl Background {
    /// The service's mTLS identity (production mode with mTLS).
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The bearer a service that makes calls ([`ConsumerService::CALLS`])
    /// presents: kept filled by its identity (mTLS), by `paved up`, or by
    /// the service from a token file.
    pub fn calls(&self) -> Option<&paved_grpc::client::Bearer> {
        self.calls.as_ref()
    }

    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, task: impl FnOnce(CancellationToken) -> F) {
        self.tasks.spawn(task(self.shutdown.clone()));
    }
}

/// The service's component: its routes, and its consumer group reporting
/// health as check `stream`.
pub fn consumer_component<S: ConsumerService>(
    db: DatabaseConnection,
    stream: SharedStream,
    options: S::Options,
    health: &Health,
    tls: Option<Tls>,
    calls: Option<paved_grpc::client::Bearer>,
    shutdown: CancellationToken,
) -> anyhow::Result<Component> {
    let relay = paved_stream::outbox::Relay::new(db.clone(), stream.clone());
    let mut background = Background { tasks: Default::default(), shutdown: shutdown.clone(), tls, calls };
    let (mount, handler) = S::parts(db, relay.clone(), options, &mut background)?;
    let mut component = Component {
        name: S::GRPC_NAME,
        mount,
        tasks: background.tasks,
        open_methods: S::OPEN_METHODS,
        token_only_methods: S::TOKEN_ONLY_METHODS,
    };
    if S::PUBLISHES {
        component.tasks.spawn(relay.run(health.reporter(S::GRPC_NAME, "outbox"), shutdown.clone()));
    }
    let config = paved_stream::consumer::ConsumerConfig::for_service(S::NAME, consumer_name(S::NAME), S::READS);
    let healthy = health.reporter(S::GRPC_NAME, "stream");
    component.tasks.spawn(paved_stream::consumer::run(stream, config, handler, healthy, shutdown));
    Ok(component)
}

/// A consumer name unique to this process: `PAVED_CONSUMER_NAME` if set, else
/// `<group>-<hostname>-<pid>`. A restarted process gets a new name; what the
/// old one left pending is claimed after the claim interval.
fn consumer_name(group: &str) -> String {
    if let Ok(name) = std::env::var("PAVED_CONSUMER_NAME") {
        return format!("{group}-{name}");
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{group}-{host}-{}", std::process::id())
}

/// Runs a consumer service on its own (production mode).
pub async fn run_consumer<S: ConsumerService>(
    config: BasicConfig<S::Options>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let db = database::<S::Migrator>(&config.common.database_url, &shutdown).await?;
    let token = shutdown.clone();
    let options = config.options;
    let calls = S::CALLS.then(paved_grpc::client::Bearer::default);
    serve_standalone(&config.common, S::NAME, listener, shutdown, calls.clone(), move |stream, health, tls| async move {
        consumer_component::<S>(db, stream, options, &health, tls, calls, token)
    })
    .await
}

/// The standalone `run` shared by every service: connect the stream, build
/// the component, serve until `shutdown`. With mTLS, `build` gets the
/// service's identity (`spiffe://paved/platform/<name>`) to make its own
/// calls with, and `calls` (the bearer they present, if the service makes
/// any) is kept filled with tokens exchanged for its certificate.
pub async fn serve_standalone<Build, Fut>(
    common: &Common,
    name: &str,
    listener: TcpListener,
    shutdown: CancellationToken,
    calls: Option<paved_grpc::client::Bearer>,
    build: Build,
) -> anyhow::Result<()>
where
    Build: FnOnce(SharedStream, Health, Option<Tls>) -> Fut,
    Fut: Future<Output = anyhow::Result<Component>>,
{
    let health = Health::new();
    let tls = common.mtls.enabled.then(|| Tls::new(paved_grpc::tls::platform_id(name), common.mtls.trust_bundle_file.clone()));
    let stream = stream(common, &shutdown).await?;
    let stream_for_denials = stream.clone();
    let component = build(stream, health.clone(), tls.clone()).await?;
    let auth = paved_grpc::Authenticator::new();
    if let Some(denials) = auth.denials() {
        tokio::spawn(publish_denials(stream_for_denials, denials, shutdown.clone()));
    }
    let loaded = health.reporter(component.name, "keys");
    let is_broker = component.open_methods.contains(&paved_grpc::auth::KEY_SET_METHOD);
    // The broker trusts its own key set, from itself: asking through a
    // forwarder that waits for it to be healthy would never end.
    let broker_url = if is_broker {
        let mut own = listener.local_addr()?;
        if own.ip().is_unspecified() {
            own.set_ip(if own.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        format!("http://{own}")
    } else {
        common.broker_url.clone()
    };
    // The broker issues its own certificate (its component does); the
    // others ask it over the wire.
    if let Some(tls) = tls.clone().filter(|_| !is_broker) {
        let healthy = health.reporter(component.name, "certificate");
        tokio::spawn(maintain_identity(tls, broker_url.clone(), common.mtls.clone(), calls, healthy, shutdown.clone()));
    }
    tokio::spawn(paved_grpc::auth::follow(auth.clone(), broker_url, tls.clone(), loaded, shutdown.clone()));
    let options = ServerOptions { tls, ..ServerOptions::default() };
    paved_grpc::serve(listener, vec![component], health, auth, options, shutdown).await
}
