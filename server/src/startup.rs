//! Builds the application from a validated [`Config`]: data directory, database, migrations,
//! listener and router. Tests build it on port 0 with a fresh data directory each.

use std::{
    future::Future,
    io::{self, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use app::server::{
    auth::{
        rate_limit::{Counted, Limiter, RateLimiter},
        session::{random_secret_hex, Sessions},
        Auth, GoogleSettings, Guests,
    },
    cluster::Cluster,
    db::{Db, DbError, MigrateError},
    hub::{Delivery, Presence},
    metrics::Metrics,
    state::{AppState, Limits, RendezvousLimits, Shared},
};
use leptos::prelude::LeptosOptions;
use tokio::net::TcpListener;

use crate::{
    assets::Bundle,
    config::{Config, MIN_SECRET_BYTES},
    routes,
};

/// Why the server could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path} (PARLOR_DATA_DIR): {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot open the database {what}: {source}")]
    Database { what: String, source: DbError },
    #[error("cannot apply database migrations to {what}: {source}")]
    Migrate { what: String, source: MigrateError },
    #[error("cannot reach Redis at {what} (PARLOR_REDIS_URL): {source}")]
    Redis {
        what: String,
        source: redis::RedisError,
    },
    #[error("cannot use the session key file {path}: {reason}")]
    SessionKey { path: PathBuf, reason: String },
    #[error("cannot use the TLS certificate (PARLOR_TLS_CERT, PARLOR_TLS_KEY): {0}")]
    Tls(String),
    #[error("cannot listen on {addr} (PARLOR_ADDR): {}", describe_bind_error(.source))]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the TURN server on {addr} (PARLOR_TURN_ADDR, or PARLOR_TURN=off): {}", describe_bind_error(.source))]
    Turn { addr: SocketAddr, source: io::Error },
}

fn describe_bind_error(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "the address is already in use by another program".into(),
        io::ErrorKind::AddrNotAvailable => "this machine has no such address".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges)".into()
        }
        _ => error.to_string(),
    }
}

/// A built application, listening but not yet serving.
pub struct Application {
    listener: TcpListener,
    /// HTTPS, when configured.
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    addr: SocketAddr,
    state: AppState,
    config: Config,
    turn: Option<Arc<crate::turn::Turn>>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        create_private_dir(&config.data_dir).map_err(|source| StartupError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let tls = match &config.tls {
            Some(files) => {
                Some(crate::tls::load(&files.cert, &files.key).map_err(StartupError::Tls)?)
            }
            None => None,
        };
        let what = config.database_label();
        let db = match &config.database_url {
            Some(url) => Db::open_postgres(url.expose(), config.database_pool).await,
            None => {
                let path = config.database_path();
                create_private_file(&path).map_err(|source| StartupError::Database {
                    what: what.clone(),
                    source: DbError::Io(source),
                })?;
                Db::open_sqlite(&path).await
            }
        }
        .map_err(|source| StartupError::Database {
            what: what.clone(),
            source,
        })?;
        db.migrate().await.map_err(|source| StartupError::Migrate {
            what: what.clone(),
            source,
        })?;
        // The operator's facts (the public status page only says whether all is well).
        match db.status().await {
            Ok(status) => tracing::info!(
                database = %what,
                engine = status.engine.name(),
                engine_version = %status.engine_version,
                version = env!("CARGO_PKG_VERSION"),
                schema = status.migrations.last().map_or(0, |m| m.0),
                "database ready"
            ),
            Err(error) => tracing::warn!(%error, "database ready, but its status is unreadable"),
        }

        let listener = crate::serve::listen(config.addr).map_err(|source| StartupError::Bind {
            addr: config.addr,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.addr,
            source,
        })?;

        let bundle = Bundle::find(&config.site_root, OUTPUT_NAME);
        if !bundle.js.exists() {
            // Pages still render, but nothing hydrates: say why before someone debugs it.
            tracing::warn!(
                missing = %bundle.js.display(),
                "the built site is missing (LEPTOS_SITE_ROOT): run `cargo leptos build --split` first"
            );
        } else if bundle.built_without_split() {
            tracing::warn!(
                bundle = %bundle.js.display(),
                "the site was built without `--split`: no page will hydrate; build it with \
                 `cargo leptos build --split` (`parlor_build` in scripts/env.sh)"
            );
        }
        let leptos_options = leptos_options(&config, addr, &bundle);
        let metrics = Arc::new(Metrics::default());
        let bindings = crate::turn::Bindings::default();
        let turn = start_turn(&config, &metrics, bindings.clone()).await?;
        let mut ice_servers = app::server::state::IceServers {
            configured: config.ice_servers.clone(),
            turn: None,
            external: config.external_turn.clone().map(external_turn),
        };
        if let Some(turn) = &turn {
            let turn = turn.clone();
            ice_servers.turn = Some(Box::new(move |label, at_most| {
                turn.ice_server(label, at_most)
            }));
        }
        let ice_servers = Arc::new(ice_servers);
        let hub = Arc::new(app::server::hub::Hub::default());
        let (cluster, cluster_work) = match &config.redis_url {
            Some(url) => {
                let joined = Cluster::connect(url.expose(), hub.clone(), config.instance_timeout)
                    .await
                    .map_err(|source| StartupError::Redis {
                        what: config.redis_label(),
                        source,
                    })?;
                tracing::info!(
                    redis = %config.redis_label(),
                    instance = %format!("{:x}", hub.instance().0),
                    "joined the cluster"
                );
                (
                    Some(joined.cluster),
                    Some((joined.presence, joined.forwarded)),
                )
            }
            None => (None, None),
        };
        let mut local_calls =
            app::server::calls::LocalCalls::new(config.call_ring, config.call_grace)
                .with_instance(hub.instance())
                .with_ice_servers(ice_servers.clone())
                .with_turn_after_call(
                    config
                        .turn
                        .as_ref()
                        .map_or(app::server::calls::TURN_AFTER_CALL, |t| t.after_call),
                );
        if let Some(cluster) = &cluster {
            // Someone in a call another instance holds is busy here too, and friends calls
            // here are kept in Redis for another instance to take over if this one stops.
            local_calls = local_calls.with_elsewhere(cluster.clone());
        }
        let calls: Arc<dyn app::server::calls::CallRegistry> = Arc::new(local_calls);
        let rooms = Arc::new(app::server::rendezvous::Rooms::new(
            config.code_ttl,
            config.code_digits,
            app::server::rendezvous::MailboxLimits {
                frames: 128,
                bytes: 1024 * 1024,
            },
        ));
        if let Some(cluster) = &cluster {
            // Sides of rooms here may be held by other instances' sockets.
            rooms.set_post(cluster.clone());
        }
        // The TURN server takes credentials bound to a call or room while it is on.
        let _ = bindings.set({
            let (calls, rooms) = (calls.clone(), rooms.clone());
            Box::new(move |binding| binding.live(calls.as_ref(), &rooms))
        });
        let session_secret = session_secret(&config)?;
        let limits_cluster = cluster.clone();
        let make = LimitMaker {
            metrics: &metrics,
            cluster: limits_cluster.as_deref(),
        };
        let auth = Arc::new(build_auth(&config, &session_secret, &make)?);
        let (delivery, presence): (Arc<dyn Delivery>, Arc<dyn Presence>) = match &cluster {
            Some(cluster) => (cluster.clone(), cluster.clone()),
            None => (hub.clone(), hub.clone()),
        };
        let strangers = Arc::new(
            app::server::strangers::Strangers::new(&session_secret)
                .with_metrics(metrics.strangers())
                .with_delivery(delivery.clone()),
        );
        let state = AppState::new(Shared {
            leptos_options,
            db,
            auth,
            delivery,
            presence,
            cluster,
            hub,
            ice_servers,
            calls,
            heartbeat: config.ws_heartbeat,
            socket_rate: config.ws_messages_per_sec,
            socket_caps: Arc::new(app::server::socket_caps::SocketCaps::new(
                config.ws_sockets_per_principal,
                config.ws_sockets_per_ip,
            )),
            limits: Arc::new(Limits {
                // Two sockets' full rate, over ten seconds.
                principal_messages: make.limiter(
                    "principal_messages",
                    config.ws_messages_per_sec.saturating_mul(20),
                    Duration::from_secs(10),
                ),
                friend_changes: make.per_minute("friend_changes", config.friend_changes_per_min),
                searches_per_user: make.per_minute("searches_per_user", config.searches_per_min),
                searches_per_address: make
                    .per_minute("searches_per_address", config.searches_per_ip_per_min),
                // Pressing Next every two seconds for a minute is plenty; an address may hold
                // a household.
                stranger_starts: make.per_minute("stranger_starts", 30),
                stranger_starts_per_address: make.per_minute("stranger_starts_per_address", 120),
                // Ten lines a second, as people type at most.
                stranger_chat: make.limiter("stranger_chat", 20, Duration::from_secs(2)),
                stranger_reports: make.per_minute("stranger_reports", 10),
                connectivity_tests: make.per_minute(
                    "connectivity_tests_per_address",
                    app::connectivity::TESTS_PER_MINUTE,
                ),
            }),
            rooms,
            strangers,
            moderators: app::server::moderation::Moderators::new(&config.admin_emails),
            turn_check: turn.as_ref().map(|turn| turn_check(turn, &metrics)),
            rendezvous_limits: Arc::new(RendezvousLimits {
                mints: make.per_minute("codes_per_address", config.codes_per_ip_per_min),
                redeems: make.per_minute("redeems_per_address", config.redeems_per_ip_per_min),
                failed_redeems: make.limiter(
                    "failed_redeems_per_address",
                    (config.redeems_per_ip_per_min / 10).max(1),
                    Duration::from_secs(600),
                ),
                upgrades: make.per_minute(
                    "rendezvous_upgrades_per_address",
                    config.rendezvous_upgrades_per_ip_per_min,
                ),
            }),
            metrics,
        });
        if let Some((mut changes, mut forwarded)) = cluster_work {
            // Who came online or went offline over all instances: their friends hear it.
            let presence_state = state.clone();
            tokio::spawn(async move {
                while let Some((user, online)) = changes.recv().await {
                    app::server::realtime::announce_presence(&presence_state, user, online).await;
                }
            });
            // What other instances' sockets ask of the calls held here, in order.
            let call_state = state.clone();
            tokio::spawn(async move {
                while let Some(work) = forwarded.recv().await {
                    app::server::calls::apply_forwarded(&call_state, work).await;
                }
            });
        }
        Ok(Self {
            listener,
            tls,
            addr,
            state,
            config,
            turn,
        })
    }

    /// The built-in TURN server's address, if it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn.as_ref().map(|t| t.addr)
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state, for tests that need to reach behind the HTTP interface.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets open requests finish for up to the
    /// configured timeout and closes the database.
    ///
    /// The router is built here, on the calling thread (Leptos reads the app's routes once
    /// per process with thread-local state); the returned future does the serving and may run
    /// on any worker (`main` spawns it, so each connection's task starts on the worker that
    /// accepted it).
    pub fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let router = routes::router(self.state.clone(), &self.config);
        self.serve(router, shutdown)
    }

    async fn serve(
        self,
        router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!("listening on {scheme}://{}", self.addr);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let hub = self.state.hub.clone();
        let matcher = tokio::spawn(app::server::strangers::run_ticker(self.state.clone()));
        let stopping = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing open requests");
            // Sockets are not requests the server waits for: tell their browsers to go.
            hub.close_all();
            let _ = stopping_tx.send(());
        };
        let server: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match self.tls {
            None => Box::pin(crate::serve::serve(
                self.listener,
                router,
                crate::serve::HEADER_READ_TIMEOUT,
                stopping,
            )),
            Some(config) => Box::pin(crate::serve::serve(
                crate::tls::TlsListener::new(self.listener, config)?,
                router,
                crate::serve::HEADER_READ_TIMEOUT,
                stopping,
            )),
        };
        let timeout = self.config.shutdown_timeout;
        tokio::select! {
            () = server => {},
            _ = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(timeout).await;
            } => {
                tracing::warn!(?timeout, "open requests did not finish in time; stopping anyway");
            }
        }
        matcher.abort();
        if let Some(cluster) = &self.state.cluster {
            // Out of the cluster at once (not when the heartbeat runs out): friends of people
            // who were only here hear they left.
            for user in cluster.depart().await {
                app::server::realtime::announce_presence(&self.state, user, false).await;
            }
        }
        if let Some(turn) = &self.turn {
            turn.close().await;
        }
        self.state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Starts the built-in TURN server, unless it is off.
/// Mints credentials for an external TURN server that shares `PARLOR_TURN_SECRET`.
fn external_turn(external: crate::config::ExternalTurn) -> app::server::state::MintTurn {
    let secret = crate::turn::TurnSecret::new(external.secret.expose().as_bytes());
    Box::new(move |label, at_most| {
        secret.entry(
            external.urls.clone(),
            label,
            external.credential_ttl.min(at_most),
        )
    })
}

async fn start_turn(
    config: &Config,
    metrics: &Arc<Metrics>,
    bindings: crate::turn::Bindings,
) -> Result<Option<Arc<crate::turn::Turn>>, StartupError> {
    let Some(settings) = &config.turn else {
        return Ok(None);
    };
    let secret = match &settings.secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        // Credentials are re-minted on every connection: a fresh secret per start is enough.
        None => {
            use ring::rand::SecureRandom;
            let mut bytes = vec![0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut bytes)
                .expect("the OS has randomness");
            bytes
        }
    };
    let turn_config = crate::turn::TurnConfig {
        addr: settings.addr,
        public_ip: settings.public_ip,
        relay_ports: settings.relay_ports,
        secret: crate::turn::TurnSecret::new(&secret),
        credential_ttl: settings.credential_ttl,
        allowed_peers: settings.allowed_peers.clone(),
    };
    let turn = crate::turn::Turn::start(&turn_config, metrics.clone(), bindings)
        .await
        .map_err(|source| StartupError::Turn {
            addr: settings.addr,
            source,
        })?;
    tracing::info!(addr = %turn.addr, public_ip = %settings.public_ip, "TURN server ready");
    let turn = Arc::new(turn);
    // Whether browsers will get relayed calls: checked once at start (and on demand), told
    // in the log.
    metrics.turn_self_test(None);
    tokio::spawn(self_test(turn.clone(), metrics.clone()));
    Ok(Some(turn))
}

/// Runs the TURN server's self-test, sets its gauge and logs the outcome.
async fn self_test(
    turn: Arc<crate::turn::Turn>,
    metrics: Arc<Metrics>,
) -> Result<Duration, String> {
    let outcome = turn.self_test().await;
    metrics.turn_self_test(Some(outcome.is_ok()));
    match &outcome {
        Ok(took) => tracing::info!(?took, "TURN self-test passed: calls can be relayed"),
        Err(why) => tracing::warn!(
            %why,
            "TURN self-test failed: calls that need a relay will not connect; check \
             PARLOR_TURN_PUBLIC_IP and that UDP {} and the relay ports are open",
            turn.addr.port()
        ),
    }
    outcome
}

/// The self-test, for moderators to run from the connection test page.
fn turn_check(
    turn: &Arc<crate::turn::Turn>,
    metrics: &Arc<Metrics>,
) -> app::server::state::TurnCheck {
    let (turn, metrics) = (turn.clone(), metrics.clone());
    Arc::new(move || Box::pin(self_test(turn.clone(), metrics.clone())))
}

/// Makes the rate limits: counted over all instances with Redis, in this instance's memory
/// alone; each one's refusals counted in the metrics under its name.
struct LimitMaker<'a> {
    metrics: &'a Metrics,
    cluster: Option<&'a Cluster>,
}

impl LimitMaker<'_> {
    /// A limit of `max` per `window`, named `name`.
    fn limiter(&self, name: &'static str, max: u32, window: Duration) -> Box<dyn Limiter> {
        let refused = self.metrics.limit(name);
        match self.cluster {
            Some(cluster) => Box::new(Counted::new(cluster.limiter(name, max, window), refused)),
            None => Box::new(Counted::new(RateLimiter::new(max, window), refused)),
        }
    }

    fn per_minute(&self, name: &'static str, max: u32) -> Box<dyn Limiter> {
        self.limiter(name, max, Duration::from_secs(60))
    }
}

/// The key sessions and guest cookies are signed with: configured, or made once and kept in
/// the data directory.
fn session_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    Ok(match &config.session_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => development_secret(&config.data_dir.join("session.key"))?,
    })
}

fn build_auth(config: &Config, secret: &[u8], make: &LimitMaker<'_>) -> Result<Auth, StartupError> {
    let google = config.google.as_ref().map(|g| GoogleSettings {
        client_id: g.client_id.clone(),
        client_secret: g.client_secret.expose().to_string(),
        auth_url: g.auth_url.clone(),
        token_url: g.token_url.clone(),
        userinfo_url: g.userinfo_url.clone(),
        redirect_url: format!("{}/auth/google/callback", config.public_url),
    });
    let sessions = Sessions::new(secret, config.session_ttl, config.https());
    Ok(Auth {
        guests: Guests::new(sessions.clone(), config.guest_ttl),
        proxies: config.trusted_proxies.clone(),
        guest_limiter: make.limiter(
            "guests_per_address",
            config.guests_per_ip,
            Duration::from_secs(3600),
        ),
        sessions,
        ip_limiter: make.limiter(
            "auth_per_address",
            config.auth_attempts_per_ip,
            Duration::from_secs(600),
        ),
        account_limiter: make.limiter(
            "auth_per_account",
            config.auth_failures_per_account,
            Duration::from_secs(900),
        ),
        google,
    })
}

/// Creates the data directory (and its parents) readable by the service user only. An existing
/// directory is left as the operator made it.
fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Creates the database file readable by the service user only, if it does not exist (SQLite
/// gives its journal files the same permissions).
fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The development session secret: read from the data directory, or created there (readable
/// by the owner only) on first start, so sessions survive restarts. A key others can read is
/// refused: anyone who has it can sign in as anyone.
fn development_secret(path: &Path) -> Result<Vec<u8>, StartupError> {
    let fail = |reason: String| StartupError::SessionKey {
        path: path.to_path_buf(),
        reason,
    };
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "other users may read it (mode {mode:o}); make it private with `chmod 600 {}`, \
                 or delete it to get a new one (everyone is signed out)",
                path.display()
            )));
        }
    }
    match std::fs::read_to_string(path) {
        Ok(secret) if secret.trim().len() >= MIN_SECRET_BYTES => {
            Ok(secret.trim().as_bytes().to_vec())
        }
        Ok(_) => Err(fail(format!(
            "shorter than {MIN_SECRET_BYTES} bytes; delete it to get a new one"
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let secret = random_secret_hex();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| fail(e.to_string()))?;
            file.write_all(secret.as_bytes())
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a development session secret");
            Ok(secret.into_bytes())
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The name of the site's JS, wasm and CSS files (`name` in the workspace's leptos metadata).
const OUTPUT_NAME: &str = "parlor";

fn leptos_options(config: &Config, addr: SocketAddr, bundle: &Bundle) -> LeptosOptions {
    // cargo-leptos passes its settings (reload port, environment) in LEPTOS_* variables; start
    // from those and put our own validated values on top.
    let mut options = leptos::config::get_configuration(None)
        .map(|conf| conf.leptos_options)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring malformed LEPTOS_* settings");
            LeptosOptions::builder().output_name(OUTPUT_NAME).build()
        });
    options.output_name = OUTPUT_NAME.into();
    options.site_root = config.site_root.to_string_lossy().as_ref().into();
    options.site_addr = addr;
    // The site says whether its names are hashed (see `assets`), not the environment.
    options.hash_files = bundle.hash_file.is_some();
    if let Some(hash_file) = &bundle.hash_file {
        options.hash_file = hash_file.to_string_lossy().as_ref().into();
    }
    options
}
