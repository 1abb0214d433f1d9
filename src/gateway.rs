//! A running gateway process, assembled in one place: rules ([`Live`]), the store and its
//! writer, the shadow worker, the request path ([`Proxy`]), the data listeners, the admin
//! listener, the reload triggers, and — with the rules in PostgreSQL — the fleet loop that
//! keeps this replica on the newest revision. [`Gateway::shutdown`] takes them down in order:
//! stop accepting, drain, flush shadow results, persist the generation in force, leave the
//! fleet view, close the store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::AccessLog;
use crate::admin::{self, AdminState};
use crate::clock::Clock;
use crate::config::source::Source;
use crate::fleet::Fleet;
use crate::guard::{Guard, Lead};
use crate::live::{self, FirstLoad, Live, ReloadError, ReloadOutcome, Trigger};
use crate::proxy::Proxy;
use crate::server::{self, Listeners};
use crate::shadow::Shadower;
use crate::store::{RetentionPolicy, Store, StoreWriter, WriterConfig};
use crate::telemetry::Metrics;
use crate::trace::Tracer;
use crate::traffic::Traffic;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The rules did not load (every config error with its position).
    #[error("{0}")]
    Rules(#[from] ReloadError),
    /// A listener could not start.
    #[error("{0}")]
    Listen(#[from] server::ListenError),
}

/// Options that do not come from the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Watch the config file (and the files it names) and SIGHUP for changes. On for `run`.
    pub watch: bool,
    /// The clock (the system clock by default; tests pass a paused or manual one).
    pub clock: Option<Clock>,
    /// This replica's identity in status, audit and the fleet view (default: the host name).
    pub replica_id: Option<String>,
}

/// A running gateway: its bound addresses and the handle to stop it.
pub struct Gateway {
    /// The HTTP listener's address, when configured.
    pub http: Option<SocketAddr>,
    /// The TLS listener's address, when configured.
    pub https: Option<SocketAddr>,
    /// The admin listener's address.
    pub admin: SocketAddr,
    /// The live rules (tests and the admin API reload through it).
    pub live: Arc<Live>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The request path's shared state.
    pub proxy: Arc<Proxy>,
    /// The durable store, when it could be opened.
    pub store: Option<Store>,
    /// This replica in the fleet.
    pub fleet: Arc<Fleet>,
    /// Guards and schedules (tests tick it directly).
    pub guard: Arc<Guard>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

// === impl Gateway ===

impl Gateway {
    /// Load the config file at `config` and start every listener. Listen addresses with port
    /// 0 bind a free port; the bound addresses are in the returned value.
    pub async fn start(config: &Path, options: Options) -> Result<Gateway, StartError> {
        Self::start_from(Source::file(config), options).await
    }

    /// Load the rules of `source` and start every listener.
    pub async fn start_from(source: Source, options: Options) -> Result<Gateway, StartError> {
        let clock = options.clock.clone().unwrap_or_default();
        let metrics = Arc::new(Metrics::new());
        let first = Live::first_load(&source, &metrics, &clock).await?;
        Self::start_loaded(source, first, metrics, options).await
    }

    /// Start with rules already read and built: the rules are read and built once; the store
    /// they name is opened next, and the history it keeps seeds the generation numbers.
    pub async fn start_loaded(
        source: Source,
        first: FirstLoad,
        metrics: Arc<Metrics>,
        options: Options,
    ) -> Result<Gateway, StartError> {
        let clock = options.clock.clone().unwrap_or_default();
        let store = open_store(&first.candidate.rules.store.url, source.path()).await;
        // A shared document numbers its own revisions and keeps their history: generations
        // from a store that other replicas share would only interleave with them.
        let keeps_history = store.as_ref().filter(|_| !source.is_revisioned());
        let past = match keeps_history {
            Some(store) => live::history::stored(store).await,
            None => Vec::new(),
        };
        let replica = options
            .replica_id
            .clone()
            .unwrap_or_else(crate::config::source::default_replica_id);
        let fleet = Fleet::new(replica, &source, metrics.clone(), clock.clone());
        let live = Live::start(source, first, metrics.clone(), clock.clone(), past);
        let snapshot = live.load();
        let rules = &snapshot.rules;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let writer = store.clone().map(|store| {
            StoreWriter::spawn(
                store,
                WriterConfig {
                    retention: Some(RetentionPolicy {
                        max_age: rules.store.retention,
                        max_samples: rules.store.max_samples,
                        ..RetentionPolicy::default()
                    }),
                    ..WriterConfig::default()
                },
            )
        });
        let shadow = Shadower::start(rules, metrics.clone(), writer, clock.clone());
        if let Some(store) = keeps_history {
            tasks.push(tokio::spawn(live::history::persist(
                live.clone(),
                store.clone(),
                shutdown_rx.clone(),
            )));
        }
        let traffic = Arc::new(Traffic::new(clock.clone()));
        Traffic::spawn_folding(&traffic);
        let proxy = Arc::new(Proxy {
            live: live.clone(),
            metrics: metrics.clone(),
            shadow,
            traffic: traffic.clone(),
            clock: clock.clone(),
            access_log: AccessLog::start(),
            tracer: Tracer::start(metrics.clone()),
        });
        let listeners = Listeners::start(&proxy, &shutdown_rx, &mut tasks).await?;
        let admin_listener = server::bind(rules.admin.listen).await?;
        let admin_addr = admin_listener.local_addr().unwrap_or(rules.admin.listen);
        let guard = Guard::new(
            live.clone(),
            metrics.clone(),
            store.clone(),
            clock.clone(),
            Lead::for_source(live.source()),
            fleet.replica().to_owned(),
        );
        tasks.push(guard.spawn(shutdown_rx.clone()));
        let admin_state = AdminState::new(
            live.clone(),
            store.clone(),
            traffic,
            metrics.clone(),
            clock,
            fleet.clone(),
            guard.clone(),
        );
        tasks.push(tokio::spawn(admin::serve(
            admin_listener,
            admin_state,
            shutdown_rx.clone(),
        )));
        tasks.extend(fleet.spawn(live.clone(), admin_addr, shutdown_rx.clone()));
        if options.watch {
            live::watch::spawn_file_watch(live.clone());
            live::watch::spawn_sighup(live.clone());
        }
        tracing::info!(
            generation = snapshot.generation,
            replica = fleet.replica(),
            config = %live.source().describe(),
            http = ?listeners.http,
            https = ?listeners.https,
            admin = %admin_addr,
            "switchyard serving"
        );
        Ok(Gateway {
            http: listeners.http,
            https: listeners.https,
            admin: admin_addr,
            live,
            metrics,
            proxy,
            store,
            fleet,
            guard,
            shutdown,
            tasks,
        })
    }

    /// Stop accepting, drain in-flight requests (bounded by `drain_timeout`), flush the shadow
    /// results, and return.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.proxy.shadow.close().await;
        // Spans of the last requests and shadow copies, posted while the collector answers.
        self.proxy
            .tracer
            .flush(std::time::Duration::from_secs(5))
            .await;
        if let Some(store) = &self.store {
            store.close().await;
        }
    }

    /// Reload the rules now (tests; the file watch and SIGHUP do this in production).
    pub async fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        self.live.reload(Trigger::Admin).await
    }
}

/// Open the store of `[store] url`. A store that cannot be opened does not stop the gateway:
/// traffic matters more than shadow records; the failure is logged loudly, the comparisons
/// are then only counted in metrics, and the admin API refuses writes (503): an operator's
/// change that cannot be audited is not made.
async fn open_store(url: &str, config: &Path) -> Option<Store> {
    let base = config.parent().unwrap_or(Path::new("."));
    match Store::open(url, base).await {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::error!(url = %crate::config::source::redact_url(url), "store unavailable, shadow results and history are not persisted, admin writes are refused (they could not be audited): {error}");
            None
        }
    }
}
