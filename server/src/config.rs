//! Parlor's configuration: every setting, its default, and its validation. Read once at start
//! from the environment (after an optional `.env` file); anything invalid stops the program
//! with one message naming the setting, before anything else starts.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tracing_subscriber::EnvFilter;

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `PARLOR_ADDR`: where the HTTP server listens.
    pub addr: SocketAddr,
    /// `PARLOR_DATA_DIR`: holds the SQLite database (when no `PARLOR_DATABASE_URL`) and the
    /// development session key; created if missing.
    pub data_dir: PathBuf,
    /// `PARLOR_DATABASE_URL`: PostgreSQL (`postgres://…`) instead of the SQLite file in the
    /// data directory. Holds a password: never printed.
    pub database_url: Option<Secret>,
    /// `PARLOR_DATABASE_POOL`: connections kept to PostgreSQL.
    pub database_pool: u32,
    /// `PARLOR_REDIS_URL`: Redis, shared by several instances (`redis://…` or
    /// `redis+unix://…`). May hold a password: never printed.
    pub redis_url: Option<Secret>,
    /// `PARLOR_INSTANCE_TIMEOUT_SECS`: how long an instance may go without a heartbeat in
    /// Redis before the others take it for gone (its users offline).
    pub instance_timeout: Duration,
    /// `PARLOR_LOG`: a tracing filter (`RUST_LOG` syntax).
    pub log_filter: String,
    /// `PARLOR_LOG_FORMAT`: human-readable text or one JSON object per line.
    pub log_format: LogFormat,
    /// `PARLOR_SHUTDOWN_TIMEOUT`: how long open requests may take to finish on SIGINT/SIGTERM.
    pub shutdown_timeout: Duration,
    /// `LEPTOS_SITE_ROOT`: the built site (wasm, JS, CSS, public assets).
    pub site_root: PathBuf,
    /// `PARLOR_ENV`: production refuses to start without an explicit session secret.
    pub environment: Environment,
    /// `PARLOR_SESSION_SECRET`: signs session tokens (at least 32 bytes). In development it
    /// defaults to a random secret kept in the data directory.
    pub session_secret: Option<Secret>,
    /// `PARLOR_SESSION_DAYS`: how long a session lasts without use (renewed while used).
    pub session_ttl: Duration,
    /// `PARLOR_PUBLIC_URL`: the address users reach the site at; `https` makes cookies Secure.
    pub public_url: String,
    /// `PARLOR_ALLOWED_ORIGINS`: other origins allowed to call server functions and sockets.
    pub allowed_origins: Vec<String>,
    /// `PARLOR_ADMIN_EMAILS`: the accounts (by email, comma separated) that moderate.
    pub admin_emails: Vec<String>,
    /// `PARLOR_AUTH_ATTEMPTS_PER_IP`: sign-in and sign-up attempts per client address per 10 min.
    pub auth_attempts_per_ip: u32,
    /// `PARLOR_AUTH_FAILURES_PER_ACCOUNT`: failed sign-ins per account per 15 min.
    pub auth_failures_per_account: u32,
    /// `PARLOR_TLS_CERT` + `PARLOR_TLS_KEY`: serve HTTPS with this certificate chain and
    /// private key (PEM files); both or neither.
    pub tls: Option<TlsFiles>,
    /// `PARLOR_TRUSTED_PROXIES`: reverse proxies (addresses or CIDR blocks) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client.
    pub trusted_proxies: app::server::auth::proxy::TrustedProxies,
    /// `PARLOR_GUEST_DAYS`: how long a guest (someone using strangers or codes without an
    /// account) keeps their identity without using the site.
    pub guest_ttl: Duration,
    /// `PARLOR_GUESTS_PER_IP`: new guests one client address may start per hour.
    pub guests_per_ip: u32,
    /// `PARLOR_GOOGLE_*`: Google sign-in, when both client id and secret are set.
    pub google: Option<GoogleConfig>,
    /// `PARLOR_WS_HEARTBEAT_MS`: how often sockets are pinged; a socket silent for two
    /// intervals is closed.
    pub ws_heartbeat: Duration,
    /// `PARLOR_WS_MESSAGES_PER_SEC`: messages one socket may send per second (bursts of three
    /// seconds' worth).
    pub ws_messages_per_sec: u32,
    /// `PARLOR_WS_SOCKETS_PER_PRINCIPAL`: sockets one account or guest may hold open.
    pub ws_sockets_per_principal: u32,
    /// `PARLOR_WS_SOCKETS_PER_IP`: sockets one client address may hold open.
    pub ws_sockets_per_ip: u32,
    /// `PARLOR_FRIEND_CHANGES_PER_MIN`: friend requests, answers, unfriends and blocks one
    /// user may make per minute.
    pub friend_changes_per_min: u32,
    /// `PARLOR_SEARCHES_PER_MIN`: people searches one user may make per minute.
    pub searches_per_min: u32,
    /// `PARLOR_SEARCHES_PER_IP_PER_MIN`: people searches from one address per minute.
    pub searches_per_ip_per_min: u32,
    /// `PARLOR_CALL_RING_SECS`: how long a call rings before it counts as missed.
    pub call_ring: Duration,
    /// `PARLOR_CALL_GRACE_SECS`: how long an answered call waits for a side whose connection
    /// dropped.
    pub call_grace: Duration,
    /// `PARLOR_ICE_SERVERS`: STUN/TURN servers for calls, as a JSON array of
    /// `{"urls": [...], "username": ..., "credential": ...}`.
    pub ice_servers: Vec<app::protocol::IceServer>,
    /// `PARLOR_CODE_TTL_SECS`: how long a rendezvous code (and its room, once both sides
    /// left) lives.
    pub code_ttl: Duration,
    /// `PARLOR_CODE_DIGITS`: digits of a rendezvous code (4–8).
    pub code_digits: u32,
    /// `PARLOR_CODES_PER_IP_PER_MIN`: codes one address may mint per minute.
    pub codes_per_ip_per_min: u32,
    /// `PARLOR_REDEEMS_PER_IP_PER_MIN`: redeem attempts per address per minute; failed ones
    /// are limited further, to a tenth of that per ten minutes.
    pub redeems_per_ip_per_min: u32,
    /// `PARLOR_RENDEZVOUS_UPGRADES_PER_IP_PER_MIN`: room sockets one address may open per minute.
    pub rendezvous_upgrades_per_ip_per_min: u32,
    /// `PARLOR_METRICS_TOKEN`: `GET /metrics` answers only requests with
    /// `Authorization: Bearer <token>` (at least 16 characters); unset, it is not served.
    pub metrics_token: Option<Secret>,
    /// The built-in TURN server (`PARLOR_TURN`, on by default), or `None`.
    pub turn: Option<TurnSettings>,
    /// `PARLOR_TURN_EXTERNAL`: an external TURN server's URLs, minted credentials with
    /// `PARLOR_TURN_SECRET` (required then) like the built-in one's.
    pub external_turn: Option<ExternalTurn>,
}

/// A TURN server of the operator's (coturn with `use-auth-secret`).
#[derive(Clone, Debug)]
pub struct ExternalTurn {
    pub urls: Vec<String>,
    pub secret: Secret,
    pub credential_ttl: Duration,
}

/// `PARLOR_TURN_*`: the built-in TURN server.
#[derive(Clone, Debug)]
pub struct TurnSettings {
    /// `PARLOR_TURN_ADDR`: where it listens (UDP).
    pub addr: SocketAddr,
    /// `PARLOR_TURN_PUBLIC_IP`: the address browsers reach it at.
    pub public_ip: std::net::IpAddr,
    /// `PARLOR_TURN_RELAY_PORTS`: the relay port range, inclusive.
    pub relay_ports: (u16, u16),
    /// `PARLOR_TURN_SECRET`: shared with an external TURN server if any; generated if unset.
    pub secret: Option<Secret>,
    /// `PARLOR_TURN_CREDENTIAL_SECS`: how long minted TURN credentials work.
    pub credential_ttl: Duration,
    /// `PARLOR_TURN_ALLOWED_PEERS`: address blocks it may relay to besides public addresses.
    pub allowed_peers: Vec<app::server::auth::proxy::Cidr>,
    /// How long a call's credentials keep working after it ended, for the browsers to give
    /// their allocations back (not from the environment: tests shorten it).
    pub after_call: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// The certificate chain and private key for HTTPS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Google (or any provider speaking the same OAuth 2 + userinfo protocol).
#[derive(Clone, Debug)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
}

/// A secret value: never printed, not even by `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that cannot be used, or an `.env` file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key}={value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("{key} is not set: {reason}")]
    Missing {
        key: &'static str,
        reason: &'static str,
    },
    #[error("cannot read the .env file: {0}")]
    DotEnv(String),
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_DATABASE_POOL: u32 = 16;
/// `turn::server` is off: the TURN crate logs every refused or malformed datagram (which
/// anyone may send) as an error; Parlor counts them in `parlor_refused_total` instead and
/// logs its own refusals at debug.
pub const DEFAULT_LOG: &str = "info,turn::server=off";
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_SITE_ROOT: &str = "target/site";
pub const DEFAULT_SESSION_DAYS: u64 = 14;
pub const DEFAULT_AUTH_ATTEMPTS_PER_IP: u32 = 30;
pub const DEFAULT_AUTH_FAILURES_PER_ACCOUNT: u32 = 5;
pub const DEFAULT_GUEST_DAYS: u64 = 7;
pub const DEFAULT_GUESTS_PER_IP: u32 = 30;
pub const MIN_SECRET_BYTES: usize = 32;
/// The shortest metrics token accepted.
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;
pub const DEFAULT_WS_HEARTBEAT_MS: u64 = 25_000;
pub const DEFAULT_WS_MESSAGES_PER_SEC: u32 = 20;
pub const DEFAULT_CALL_RING_SECS: u64 = 30;
pub const DEFAULT_WS_SOCKETS_PER_PRINCIPAL: u32 = 16;
pub const DEFAULT_WS_SOCKETS_PER_IP: u32 = 256;
pub const DEFAULT_FRIEND_CHANGES_PER_MIN: u32 = 30;
pub const DEFAULT_SEARCHES_PER_MIN: u32 = 30;
pub const DEFAULT_SEARCHES_PER_IP_PER_MIN: u32 = 300;
pub const DEFAULT_CALL_GRACE_SECS: u64 = 20;
pub const GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const GOOGLE_USERINFO_URL: &str = "https://openidconnect.googleapis.com/v1/userinfo";

impl Config {
    /// Loads `.env` from the working directory if there is one (variables already set in the
    /// environment win), then reads the environment.
    pub fn load() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::DotEnv(e.to_string())),
        }
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds the configuration from any source of variables (the environment, or a map in
    /// tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());

        let addr = parse_addr(get("PARLOR_ADDR").as_deref().unwrap_or(DEFAULT_ADDR))?;
        let data_dir = PathBuf::from(get("PARLOR_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR.into()));
        let database_url = match get("PARLOR_DATABASE_URL") {
            None => None,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(Secret(url))
            }
            Some(url) => {
                return Err(ConfigError::Invalid {
                    key: "PARLOR_DATABASE_URL",
                    // Only the scheme: the rest may hold a password.
                    value: match url.split_once("://") {
                        Some((scheme, _)) => format!("{scheme}://[redacted]"),
                        None => "[redacted]".into(),
                    },
                    reason: "expected postgres://user:password@host:port/database (unset: the \
                             SQLite file in PARLOR_DATA_DIR)"
                        .into(),
                });
            }
        };
        let redis_url = match get("PARLOR_REDIS_URL") {
            None => None,
            Some(url)
                if ["redis://", "rediss://", "redis+unix://", "unix://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme)) =>
            {
                Some(Secret(url))
            }
            Some(url) => return Err(ConfigError::Invalid {
                key: "PARLOR_REDIS_URL",
                value: match url.split_once("://") {
                    Some((scheme, _)) => format!("{scheme}://[redacted]"),
                    None => "[redacted]".into(),
                },
                reason:
                    "expected redis://[:password@]host:port[/db] or redis+unix:///path/to/socket"
                        .into(),
            }),
        };
        if redis_url.is_some() && database_url.is_none() {
            return Err(ConfigError::Missing {
                key: "PARLOR_DATABASE_URL",
                reason: "several instances (PARLOR_REDIS_URL) share one PostgreSQL database, not each its own SQLite file",
            });
        }
        let instance_timeout = Duration::from_secs(parse_number(
            "PARLOR_INSTANCE_TIMEOUT_SECS",
            get("PARLOR_INSTANCE_TIMEOUT_SECS"),
            app::server::cluster::ALIVE_FOR.as_secs(),
            2..=300,
        )?);
        let database_pool = parse_number(
            "PARLOR_DATABASE_POOL",
            get("PARLOR_DATABASE_POOL"),
            DEFAULT_DATABASE_POOL,
            1..=1000,
        )?;

        let log_filter = get("PARLOR_LOG").unwrap_or(DEFAULT_LOG.into());
        if let Err(e) = EnvFilter::try_new(&log_filter) {
            return Err(invalid("PARLOR_LOG", &log_filter, e.to_string()));
        }
        let log_format = match get("PARLOR_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("PARLOR_LOG_FORMAT", other, "expected text or json"))
            }
        };
        let shutdown_timeout = match get("PARLOR_SHUTDOWN_TIMEOUT") {
            None => Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if secs <= 3600 => Duration::from_secs(secs),
                _ => {
                    return Err(invalid(
                        "PARLOR_SHUTDOWN_TIMEOUT",
                        &v,
                        "expected whole seconds, 0 to 3600",
                    ))
                }
            },
        };
        let site_root = PathBuf::from(get("LEPTOS_SITE_ROOT").unwrap_or(DEFAULT_SITE_ROOT.into()));

        let environment = match get("PARLOR_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "PARLOR_ENV",
                    other,
                    "expected development or production",
                ))
            }
        };
        let session_secret = get("PARLOR_SESSION_SECRET").map(Secret);
        match (&session_secret, environment) {
            (Some(secret), _) if secret.0.len() < MIN_SECRET_BYTES => {
                return Err(ConfigError::Invalid {
                    key: "PARLOR_SESSION_SECRET",
                    value: "[redacted]".into(),
                    reason: format!("use at least {MIN_SECRET_BYTES} random bytes, e.g. `openssl rand -hex 32`"),
                })
            }
            (None, Environment::Production) => {
                return Err(ConfigError::Missing {
                    key: "PARLOR_SESSION_SECRET",
                    reason: "PARLOR_ENV=production needs a fixed secret to sign sessions (e.g. `openssl rand -hex 32`)",
                })
            }
            _ => {}
        }
        let code_ttl = Duration::from_secs(parse_number(
            "PARLOR_CODE_TTL_SECS",
            get("PARLOR_CODE_TTL_SECS"),
            600,
            10..=86_400,
        )?);
        let code_digits = parse_number("PARLOR_CODE_DIGITS", get("PARLOR_CODE_DIGITS"), 6, 4..=8)?;
        let codes_per_ip_per_min = parse_number(
            "PARLOR_CODES_PER_IP_PER_MIN",
            get("PARLOR_CODES_PER_IP_PER_MIN"),
            20,
            1..=100_000,
        )?;
        let redeems_per_ip_per_min = parse_number(
            "PARLOR_REDEEMS_PER_IP_PER_MIN",
            get("PARLOR_REDEEMS_PER_IP_PER_MIN"),
            20,
            1..=100_000,
        )?;
        let rendezvous_upgrades_per_ip_per_min = parse_number(
            "PARLOR_RENDEZVOUS_UPGRADES_PER_IP_PER_MIN",
            get("PARLOR_RENDEZVOUS_UPGRADES_PER_IP_PER_MIN"),
            60,
            1..=100_000,
        )?;
        let metrics_token = get("PARLOR_METRICS_TOKEN").map(Secret);
        if metrics_token.as_ref().is_some_and(|t| {
            t.0.len() < MIN_METRICS_TOKEN_CHARS || t.0.contains(char::is_whitespace)
        }) {
            return Err(ConfigError::Invalid {
                key: "PARLOR_METRICS_TOKEN",
                value: "[redacted]".into(),
                reason: format!(
                    "use at least {MIN_METRICS_TOKEN_CHARS} characters without spaces, e.g. `openssl rand -hex 24`"
                ),
            });
        }
        let session_days = parse_number(
            "PARLOR_SESSION_DAYS",
            get("PARLOR_SESSION_DAYS"),
            DEFAULT_SESSION_DAYS,
            1..=365,
        )?;
        let public_url = match get("PARLOR_PUBLIC_URL") {
            None => format!("http://{addr}"),
            Some(url) => parse_origin("PARLOR_PUBLIC_URL", &url)?,
        };
        let allowed_origins = get("PARLOR_ALLOWED_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| parse_origin("PARLOR_ALLOWED_ORIGINS", o))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let admin_emails = get("PARLOR_ADMIN_EMAILS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(|e| {
                        app::accounts::validate::email(e)
                            .map(|e| e.to_lowercase())
                            .map_err(|_| {
                                invalid("PARLOR_ADMIN_EMAILS", e, "expected email addresses")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let auth_attempts_per_ip = parse_number(
            "PARLOR_AUTH_ATTEMPTS_PER_IP",
            get("PARLOR_AUTH_ATTEMPTS_PER_IP"),
            DEFAULT_AUTH_ATTEMPTS_PER_IP,
            1..=100_000,
        )?;
        let auth_failures_per_account = parse_number(
            "PARLOR_AUTH_FAILURES_PER_ACCOUNT",
            get("PARLOR_AUTH_FAILURES_PER_ACCOUNT"),
            DEFAULT_AUTH_FAILURES_PER_ACCOUNT,
            1..=100_000,
        )?;
        let tls = match (get("PARLOR_TLS_CERT"), get("PARLOR_TLS_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    key: "PARLOR_TLS_KEY",
                    reason: "HTTPS needs both PARLOR_TLS_CERT and PARLOR_TLS_KEY",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    key: "PARLOR_TLS_CERT",
                    reason: "HTTPS needs both PARLOR_TLS_CERT and PARLOR_TLS_KEY",
                })
            }
        };
        let trusted_proxies = match get("PARLOR_TRUSTED_PROXIES") {
            None => Default::default(),
            Some(list) => app::server::auth::proxy::TrustedProxies::parse(&list)
                .map_err(|reason| invalid("PARLOR_TRUSTED_PROXIES", &list, reason))?,
        };
        let guest_days = parse_number(
            "PARLOR_GUEST_DAYS",
            get("PARLOR_GUEST_DAYS"),
            DEFAULT_GUEST_DAYS,
            1..=365,
        )?;
        let guests_per_ip = parse_number(
            "PARLOR_GUESTS_PER_IP",
            get("PARLOR_GUESTS_PER_IP"),
            DEFAULT_GUESTS_PER_IP,
            1..=100_000,
        )?;
        let ws_heartbeat = Duration::from_millis(parse_number(
            "PARLOR_WS_HEARTBEAT_MS",
            get("PARLOR_WS_HEARTBEAT_MS"),
            DEFAULT_WS_HEARTBEAT_MS,
            100..=600_000,
        )?);
        let ws_messages_per_sec = parse_number(
            "PARLOR_WS_MESSAGES_PER_SEC",
            get("PARLOR_WS_MESSAGES_PER_SEC"),
            DEFAULT_WS_MESSAGES_PER_SEC,
            1..=10_000,
        )?;
        let ws_sockets_per_principal = parse_number(
            "PARLOR_WS_SOCKETS_PER_PRINCIPAL",
            get("PARLOR_WS_SOCKETS_PER_PRINCIPAL"),
            DEFAULT_WS_SOCKETS_PER_PRINCIPAL,
            1..=10_000,
        )?;
        let ws_sockets_per_ip = parse_number(
            "PARLOR_WS_SOCKETS_PER_IP",
            get("PARLOR_WS_SOCKETS_PER_IP"),
            DEFAULT_WS_SOCKETS_PER_IP,
            1..=1_000_000,
        )?;
        let friend_changes_per_min = parse_number(
            "PARLOR_FRIEND_CHANGES_PER_MIN",
            get("PARLOR_FRIEND_CHANGES_PER_MIN"),
            DEFAULT_FRIEND_CHANGES_PER_MIN,
            1..=100_000,
        )?;
        let searches_per_min = parse_number(
            "PARLOR_SEARCHES_PER_MIN",
            get("PARLOR_SEARCHES_PER_MIN"),
            DEFAULT_SEARCHES_PER_MIN,
            1..=100_000,
        )?;
        let searches_per_ip_per_min = parse_number(
            "PARLOR_SEARCHES_PER_IP_PER_MIN",
            get("PARLOR_SEARCHES_PER_IP_PER_MIN"),
            DEFAULT_SEARCHES_PER_IP_PER_MIN,
            1..=1_000_000,
        )?;
        let call_ring = Duration::from_secs(parse_number(
            "PARLOR_CALL_RING_SECS",
            get("PARLOR_CALL_RING_SECS"),
            DEFAULT_CALL_RING_SECS,
            5..=300,
        )?);
        let call_grace = Duration::from_secs(parse_number(
            "PARLOR_CALL_GRACE_SECS",
            get("PARLOR_CALL_GRACE_SECS"),
            DEFAULT_CALL_GRACE_SECS,
            1..=600,
        )?);
        let ice_servers = match get("PARLOR_ICE_SERVERS") {
            None => Vec::new(),
            Some(value) => parse_ice_servers(&value)?,
        };
        let turn = parse_turn(&get, addr)?;
        let external_turn = parse_external_turn(&get)?;
        let google = match (get("PARLOR_GOOGLE_CLIENT_ID"), get("PARLOR_GOOGLE_CLIENT_SECRET")) {
            (None, None) => None,
            (Some(client_id), Some(secret)) => {
                let url = |key: &'static str, default: &str| match get(key) {
                    None => Ok(default.to_string()),
                    Some(v) => parse_url(key, &v),
                };
                Some(GoogleConfig {
                    client_id,
                    client_secret: Secret(secret),
                    auth_url: url("PARLOR_GOOGLE_AUTH_URL", GOOGLE_AUTH_URL)?,
                    token_url: url("PARLOR_GOOGLE_TOKEN_URL", GOOGLE_TOKEN_URL)?,
                    userinfo_url: url("PARLOR_GOOGLE_USERINFO_URL", GOOGLE_USERINFO_URL)?,
                })
            }
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    key: "PARLOR_GOOGLE_CLIENT_SECRET",
                    reason: "Google sign-in needs both PARLOR_GOOGLE_CLIENT_ID and PARLOR_GOOGLE_CLIENT_SECRET",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    key: "PARLOR_GOOGLE_CLIENT_ID",
                    reason: "Google sign-in needs both PARLOR_GOOGLE_CLIENT_ID and PARLOR_GOOGLE_CLIENT_SECRET",
                })
            }
        };

        Ok(Self {
            addr,
            data_dir,
            database_url,
            database_pool,
            redis_url,
            instance_timeout,
            log_filter,
            log_format,
            shutdown_timeout,
            site_root,
            environment,
            session_secret,
            session_ttl: Duration::from_secs(session_days * 24 * 3600),
            // With TLS and no public URL given, the site is at https://PARLOR_ADDR.
            public_url: match (&tls, get("PARLOR_PUBLIC_URL")) {
                (Some(_), None) => format!("https://{addr}"),
                _ => public_url,
            },
            allowed_origins,
            admin_emails,
            auth_attempts_per_ip,
            auth_failures_per_account,
            tls,
            trusted_proxies,
            guest_ttl: Duration::from_secs(guest_days * 24 * 3600),
            guests_per_ip,
            google,
            ws_heartbeat,
            ws_messages_per_sec,
            ws_sockets_per_principal,
            ws_sockets_per_ip,
            friend_changes_per_min,
            searches_per_min,
            searches_per_ip_per_min,
            call_ring,
            call_grace,
            ice_servers,
            code_ttl,
            code_digits,
            codes_per_ip_per_min,
            redeems_per_ip_per_min,
            rendezvous_upgrades_per_ip_per_min,
            metrics_token,
            turn,
            external_turn,
        })
    }

    /// The SQLite database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("parlor.db")
    }

    /// The Redis URL in words safe to log (without password and parameters).
    pub fn redis_label(&self) -> String {
        self.redis_url
            .as_ref()
            .map_or_else(String::new, |url| redact_url(url.expose()))
    }

    /// Which database, in words safe to log: the SQLite file, or the PostgreSQL URL without
    /// its password and parameters.
    pub fn database_label(&self) -> String {
        match &self.database_url {
            Some(url) => redact_url(url.expose()),
            None => self.database_path().display().to_string(),
        }
    }

    /// A configuration for tests: port 0 on loopback and the given data directory.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            database_url: None,
            database_pool: DEFAULT_DATABASE_POOL,
            redis_url: None,
            instance_timeout: app::server::cluster::ALIVE_FOR,
            log_filter: DEFAULT_LOG.into(),
            log_format: LogFormat::Text,
            shutdown_timeout: Duration::from_secs(1),
            site_root: PathBuf::from(DEFAULT_SITE_ROOT),
            environment: Environment::Development,
            session_secret: None,
            session_ttl: Duration::from_secs(DEFAULT_SESSION_DAYS * 24 * 3600),
            public_url: "http://127.0.0.1".into(),
            allowed_origins: Vec::new(),
            admin_emails: Vec::new(),
            auth_attempts_per_ip: DEFAULT_AUTH_ATTEMPTS_PER_IP,
            auth_failures_per_account: DEFAULT_AUTH_FAILURES_PER_ACCOUNT,
            tls: None,
            trusted_proxies: Default::default(),
            guest_ttl: Duration::from_secs(DEFAULT_GUEST_DAYS * 24 * 3600),
            guests_per_ip: DEFAULT_GUESTS_PER_IP,
            google: None,
            ws_heartbeat: Duration::from_millis(DEFAULT_WS_HEARTBEAT_MS),
            ws_messages_per_sec: DEFAULT_WS_MESSAGES_PER_SEC,
            ws_sockets_per_principal: DEFAULT_WS_SOCKETS_PER_PRINCIPAL,
            ws_sockets_per_ip: DEFAULT_WS_SOCKETS_PER_IP,
            friend_changes_per_min: DEFAULT_FRIEND_CHANGES_PER_MIN,
            searches_per_min: DEFAULT_SEARCHES_PER_MIN,
            searches_per_ip_per_min: DEFAULT_SEARCHES_PER_IP_PER_MIN,
            call_ring: Duration::from_secs(DEFAULT_CALL_RING_SECS),
            call_grace: Duration::from_secs(DEFAULT_CALL_GRACE_SECS),
            ice_servers: Vec::new(),
            code_ttl: Duration::from_secs(600),
            code_digits: 6,
            codes_per_ip_per_min: 20,
            redeems_per_ip_per_min: 20,
            rendezvous_upgrades_per_ip_per_min: 60,
            metrics_token: None,
            turn: None,
            external_turn: None,
        }
    }

    /// Whether the site is served over HTTPS (cookies get the Secure attribute).
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `PARLOR_TURN_CREDENTIAL_SECS`: how long minted TURN credentials work (3 h by default).
fn credential_ttl(get: &impl Fn(&'static str) -> Option<String>) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(parse_number(
        "PARLOR_TURN_CREDENTIAL_SECS",
        get("PARLOR_TURN_CREDENTIAL_SECS"),
        3 * 3600,
        60..=86_400,
    )?))
}

fn parse_external_turn(
    get: &impl Fn(&'static str) -> Option<String>,
) -> Result<Option<ExternalTurn>, ConfigError> {
    let Some(list) = get("PARLOR_TURN_EXTERNAL") else {
        return Ok(None);
    };
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    if urls.is_empty()
        || urls
            .iter()
            .any(|u| !(u.starts_with("turn:") || u.starts_with("turns:")) || u.contains(' '))
    {
        return Err(invalid(
            "PARLOR_TURN_EXTERNAL",
            &list,
            "expected turn: or turns: URLs separated by commas, e.g. \
             turn:turn.example.com:3478,turns:turn.example.com:443?transport=tcp",
        ));
    }
    let secret = match get("PARLOR_TURN_SECRET") {
        Some(value) if value.len() >= 32 => Secret(value),
        Some(_) => {
            return Err(ConfigError::Invalid {
                key: "PARLOR_TURN_SECRET",
                value: "[redacted]".into(),
                reason: "at least 32 characters (openssl rand -hex 32)".into(),
            })
        }
        None => {
            return Err(ConfigError::Missing {
                key: "PARLOR_TURN_SECRET",
                reason: "PARLOR_TURN_EXTERNAL needs the secret it shares (at least 32 \
                         characters, coturn's static-auth-secret)",
            })
        }
    };
    let credential_ttl = credential_ttl(get)?;
    Ok(Some(ExternalTurn {
        urls,
        secret,
        credential_ttl,
    }))
}

fn parse_turn(
    get: &impl Fn(&'static str) -> Option<String>,
    addr: SocketAddr,
) -> Result<Option<TurnSettings>, ConfigError> {
    match get("PARLOR_TURN").as_deref() {
        None | Some("on") => {}
        Some("off") => return Ok(None),
        Some(other) => return Err(invalid("PARLOR_TURN", other, "expected on or off")),
    }
    // Beside the HTTP server; a free port when that one is picked freely too (tests).
    let turn_addr = match get("PARLOR_TURN_ADDR") {
        None => SocketAddr::new(addr.ip(), if addr.port() == 0 { 0 } else { 3478 }),
        Some(value) => value.parse().map_err(|_| {
            invalid(
                "PARLOR_TURN_ADDR",
                &value,
                "expected an IP address and port, e.g. 0.0.0.0:3478",
            )
        })?,
    };
    let public_ip = match get("PARLOR_TURN_PUBLIC_IP") {
        Some(value) => value
            .parse()
            .map_err(|_| invalid("PARLOR_TURN_PUBLIC_IP", &value, "expected an IP address"))?,
        None if turn_addr.ip().is_unspecified() => {
            return Err(ConfigError::Missing {
                key: "PARLOR_TURN_PUBLIC_IP",
                reason: "PARLOR_TURN_ADDR listens on every address, so say which one browsers \
                         reach (or PARLOR_TURN=off)",
            })
        }
        None => turn_addr.ip(),
    };
    let relay_ports = match get("PARLOR_TURN_RELAY_PORTS") {
        None => (49152, 65535),
        Some(value) => value
            .split_once('-')
            .and_then(|(low, high)| Some((low.trim().parse().ok()?, high.trim().parse().ok()?)))
            .filter(|&(low, high): &(u16, u16)| low >= 1024 && low <= high)
            .ok_or_else(|| {
                invalid(
                    "PARLOR_TURN_RELAY_PORTS",
                    &value,
                    "expected a range of ports from 1024 up, e.g. 49152-65535",
                )
            })?,
    };
    let secret = match get("PARLOR_TURN_SECRET") {
        None => None,
        Some(value) if value.len() >= 32 => Some(Secret(value)),
        Some(_) => {
            return Err(ConfigError::Invalid {
                key: "PARLOR_TURN_SECRET",
                value: "[redacted]".into(),
                reason: "at least 32 characters (openssl rand -hex 32)".into(),
            })
        }
    };
    let credential_ttl = credential_ttl(get)?;
    let allowed_peers = match get("PARLOR_TURN_ALLOWED_PEERS") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| item.trim().parse())
            .collect::<Result<_, String>>()
            .map_err(|reason| invalid("PARLOR_TURN_ALLOWED_PEERS", &list, &reason))?,
    };
    Ok(Some(TurnSettings {
        addr: turn_addr,
        public_ip,
        relay_ports,
        secret,
        credential_ttl,
        allowed_peers,
        after_call: app::server::calls::TURN_AFTER_CALL,
    }))
}

fn parse_addr(value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            "PARLOR_ADDR",
            value,
            "expected an IP address and port, e.g. 127.0.0.1:3000 or [::]:8080",
        )
    })
}

/// A database URL without its password and parameters (`postgres://ann@db:5432/parlor`).
fn redact_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".into();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    format!("{scheme}://{host}/{path}")
}

fn parse_number<T>(
    key: &'static str,
    value: Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            &value,
            format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// A JSON array of ICE servers, each with at least one stun:, stuns:, turn: or turns: URL.
fn parse_ice_servers(value: &str) -> Result<Vec<app::protocol::IceServer>, ConfigError> {
    const KEY: &str = "PARLOR_ICE_SERVERS";
    // The value may hold TURN credentials: error messages do not repeat it.
    const HIDDEN: &str = "(not shown)";
    let servers: Vec<app::protocol::IceServer> = serde_json::from_str(value).map_err(|e| {
        invalid(
            KEY,
            HIDDEN,
            format!(
                "expected a JSON array like [{{\"urls\": [\"stun:stun.example.org:3478\"]}}] ({e})"
            ),
        )
    })?;
    for server in &servers {
        let schemes = ["stun:", "stuns:", "turn:", "turns:"];
        if server.urls.is_empty()
            || !server
                .urls
                .iter()
                .all(|u| schemes.iter().any(|s| u.starts_with(s)))
        {
            return Err(invalid(
                KEY,
                HIDDEN,
                "every server needs urls starting with stun:, stuns:, turn: or turns:",
            ));
        }
        if server.urls.iter().any(|u| u.starts_with("turn"))
            && (server.username.is_none() || server.credential.is_none())
        {
            return Err(invalid(
                KEY,
                HIDDEN,
                "a TURN server needs a username and a credential",
            ));
        }
    }
    Ok(servers)
}

/// An absolute http(s) URL.
fn parse_url(key: &'static str, value: &str) -> Result<String, ConfigError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.to_string())
        }
        _ => Err(invalid(key, value, "expected an http:// or https:// URL")),
    }
}

/// `scheme://host[:port]`, without path or trailing slash.
fn parse_origin(key: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = parse_url(key, value).and_then(|v| {
        url::Url::parse(&v).map_err(|_| invalid(key, value, "expected an http:// or https:// URL"))
    })?;
    if url.path() != "/" || url.query().is_some() {
        return Err(invalid(
            key,
            value,
            "expected scheme://host[:port] with no path",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn invalid(key: &'static str, value: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = from(&[]).unwrap();
        assert_eq!(config.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.database_path(), PathBuf::from("data/parlor.db"));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    }

    #[test]
    fn an_external_turn_server_needs_turn_urls_and_the_shared_secret_which_is_never_echoed() {
        let secret = "s3cret-s3cret-s3cret-s3cret-s3cret";
        let config = from(&[
            ("PARLOR_TURN", "off"),
            (
                "PARLOR_TURN_EXTERNAL",
                "turn:turn.example.com:3478, turns:turn.example.com:443?transport=tcp",
            ),
            ("PARLOR_TURN_SECRET", secret),
        ])
        .unwrap();
        let external = config.external_turn.unwrap();
        assert_eq!(
            external.urls,
            [
                "turn:turn.example.com:3478",
                "turns:turn.example.com:443?transport=tcp"
            ]
        );
        assert_eq!(external.credential_ttl, Duration::from_secs(3 * 3600));
        assert!(config.turn.is_none());

        let no_secret = from(&[("PARLOR_TURN_EXTERNAL", "turn:t.example.com")]).unwrap_err();
        assert!(
            no_secret.to_string().contains("PARLOR_TURN_SECRET"),
            "{no_secret}"
        );
        let short = from(&[
            ("PARLOR_TURN_EXTERNAL", "turn:t.example.com"),
            ("PARLOR_TURN_SECRET", "short-secret-value"),
        ])
        .unwrap_err();
        assert!(!short.to_string().contains("short-secret-value"), "{short}");
        for bad in [
            "stun:t.example.com",
            "https://t.example.com",
            ",",
            "turn:a b",
        ] {
            let error = from(&[
                ("PARLOR_TURN_EXTERNAL", bad),
                ("PARLOR_TURN_SECRET", secret),
            ])
            .unwrap_err();
            assert!(
                error.to_string().contains("PARLOR_TURN_EXTERNAL"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_postgres_url_is_taken_and_its_password_never_echoed() {
        let config = from(&[(
            "PARLOR_DATABASE_URL",
            "postgres://parlor:pa55word@db.internal:5432/parlor?sslmode=require",
        )])
        .unwrap();
        assert_eq!(
            config.database_url.as_ref().unwrap().expose(),
            "postgres://parlor:pa55word@db.internal:5432/parlor?sslmode=require"
        );
        assert_eq!(
            config.database_label(),
            "postgres://parlor@db.internal:5432/parlor"
        );
        assert!(!format!("{config:?}").contains("pa55word"));
        assert_eq!(from(&[]).unwrap().database_label(), "data/parlor.db");

        for bad in [
            "mysql://root:pa55word@db/parlor",
            "pa55word",
            "sqlite://pa55word",
        ] {
            let error = from(&[("PARLOR_DATABASE_URL", bad)]).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("PARLOR_DATABASE_URL"), "{text}");
            assert!(!text.contains("pa55word"), "{text}");
        }
        let error = from(&[("PARLOR_DATABASE_POOL", "0")]).unwrap_err();
        assert!(
            error.to_string().contains("PARLOR_DATABASE_POOL"),
            "{error}"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = from(&[("PARLOR_ADDR", " "), ("PARLOR_DATA_DIR", "")]).unwrap();
        assert_eq!(config.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn settings_are_read() {
        let config = from(&[
            ("PARLOR_ADDR", "[::1]:8080"),
            ("PARLOR_DATA_DIR", "/var/lib/parlor"),
            ("PARLOR_LOG", "debug,hyper=warn"),
            ("PARLOR_LOG_FORMAT", "json"),
            ("PARLOR_SHUTDOWN_TIMEOUT", "3"),
        ])
        .unwrap();
        assert_eq!(config.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(
            config.database_path(),
            PathBuf::from("/var/lib/parlor/parlor.db")
        );
        assert_eq!(config.log_filter, "debug,hyper=warn");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(3));
    }

    #[test]
    fn ice_servers_are_read_and_their_credentials_never_printed() {
        let json = r#"[{"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "hunter22"}]"#;
        let config = from(&[("PARLOR_ICE_SERVERS", json)]).unwrap();
        assert_eq!(config.ice_servers.len(), 2);
        assert_eq!(
            config.ice_servers[1].credential.as_deref(),
            Some("hunter22")
        );
        assert!(!format!("{config:?}").contains("hunter22"));
        let bad = r#"[{"urls": ["turn:t.example.org"], "username": "u", "credential": "hunter22"}, {"urls": []}]"#;
        let err = from(&[("PARLOR_ICE_SERVERS", bad)])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter22"), "{err}");
    }

    #[test]
    fn malformed_values_name_the_setting() {
        for (key, value) in [
            ("PARLOR_ADDR", "localhost"),
            ("PARLOR_ADDR", "127.0.0.1:99999"),
            ("PARLOR_ADDR", "'; DROP TABLE users; --"),
            ("PARLOR_LOG", "info,[unclosed"),
            ("PARLOR_LOG_FORMAT", "xml"),
            ("PARLOR_SHUTDOWN_TIMEOUT", "-1"),
            ("PARLOR_SHUTDOWN_TIMEOUT", "ten"),
            ("PARLOR_ENV", "staging"),
            ("PARLOR_SESSION_SECRET", "too-short"),
            ("PARLOR_SESSION_DAYS", "0"),
            ("PARLOR_PUBLIC_URL", "parlor.example.com"),
            ("PARLOR_PUBLIC_URL", "https://parlor.example.com/app"),
            ("PARLOR_ALLOWED_ORIGINS", "https://ok.example, ftp://x"),
            ("PARLOR_ADMIN_EMAILS", "mod@example.com, not-an-email"),
            ("PARLOR_AUTH_ATTEMPTS_PER_IP", "many"),
            ("PARLOR_WS_HEARTBEAT_MS", "10"),
            ("PARLOR_WS_MESSAGES_PER_SEC", "0"),
            ("PARLOR_CALL_RING_SECS", "1"),
            ("PARLOR_CALL_GRACE_SECS", "forever"),
            ("PARLOR_GUEST_DAYS", "0"),
            ("PARLOR_WS_SOCKETS_PER_PRINCIPAL", "0"),
            ("PARLOR_WS_SOCKETS_PER_IP", "many"),
            ("PARLOR_FRIEND_CHANGES_PER_MIN", "-1"),
            ("PARLOR_SEARCHES_PER_MIN", "0"),
            ("PARLOR_SEARCHES_PER_IP_PER_MIN", "x"),
            ("PARLOR_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("PARLOR_TRUSTED_PROXIES", "proxy.example.com"),
            ("PARLOR_GUESTS_PER_IP", "lots"),
            ("PARLOR_ICE_SERVERS", "stun:stun.example.org"),
            ("PARLOR_ICE_SERVERS", r#"[{"urls": ["http://x"]}]"#),
            (
                "PARLOR_ICE_SERVERS",
                r#"[{"urls": ["turn:turn.example.org"]}]"#,
            ),
        ] {
            let err = from(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid {key}=")),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn secrets_are_never_printed() {
        let secret = "s".repeat(40);
        let config = from(&[("PARLOR_SESSION_SECRET", &secret)]).unwrap();
        assert!(!format!("{config:?}").contains(&secret));
        let err = from(&[("PARLOR_SESSION_SECRET", "short-secret")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("short-secret"), "{err}");
        let err = from(&[("PARLOR_METRICS_TOKEN", "tiny-token")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid PARLOR_METRICS_TOKEN="), "{err}");
        assert!(!err.contains("tiny-token"), "{err}");
        let token = "m".repeat(24);
        let config = from(&[("PARLOR_METRICS_TOKEN", &token)]).unwrap();
        assert_eq!(config.metrics_token.as_ref().unwrap().expose(), token);
        assert!(!format!("{config:?}").contains(&token));
    }

    #[test]
    fn production_needs_a_session_secret() {
        let err = from(&[("PARLOR_ENV", "production")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PARLOR_SESSION_SECRET is not set"), "{err}");
        let secret = "x".repeat(32);
        let config = from(&[
            ("PARLOR_ENV", "production"),
            ("PARLOR_SESSION_SECRET", &secret),
        ])
        .unwrap();
        assert_eq!(config.environment, Environment::Production);
    }

    #[test]
    fn public_url_and_origins_are_normalised() {
        let config = from(&[
            ("PARLOR_PUBLIC_URL", "https://Parlor.Example.com/"),
            (
                "PARLOR_ALLOWED_ORIGINS",
                "http://a.example:8080, https://b.example",
            ),
        ])
        .unwrap();
        assert_eq!(config.public_url, "https://parlor.example.com");
        assert!(config.https());
        assert_eq!(
            config.allowed_origins,
            ["http://a.example:8080", "https://b.example"]
        );
        assert_eq!(from(&[]).unwrap().public_url, "http://127.0.0.1:3000");
        let config = from(&[("PARLOR_ADMIN_EMAILS", " Mod@Example.com,, b@example.org ")]).unwrap();
        assert_eq!(config.admin_emails, ["mod@example.com", "b@example.org"]);
    }

    #[test]
    fn google_needs_both_id_and_secret() {
        assert!(from(&[]).unwrap().google.is_none());
        let err = from(&[("PARLOR_GOOGLE_CLIENT_ID", "id")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PARLOR_GOOGLE_CLIENT_SECRET"), "{err}");
        let config = from(&[
            ("PARLOR_GOOGLE_CLIENT_ID", "id"),
            ("PARLOR_GOOGLE_CLIENT_SECRET", "secret"),
            ("PARLOR_GOOGLE_AUTH_URL", "http://127.0.0.1:9000/authorize"),
        ])
        .unwrap();
        let google = config.google.unwrap();
        assert_eq!(google.auth_url, "http://127.0.0.1:9000/authorize");
        assert_eq!(google.token_url, GOOGLE_TOKEN_URL);
    }

    #[test]
    fn the_turn_server_is_on_beside_the_http_server_and_its_settings_are_checked() {
        let turn = from(&[]).unwrap().turn.expect("on by default");
        assert_eq!(turn.addr.to_string(), "127.0.0.1:3478");
        assert_eq!(turn.public_ip.to_string(), "127.0.0.1");
        assert_eq!(turn.relay_ports, (49152, 65535));
        assert_eq!(turn.credential_ttl, Duration::from_secs(3 * 3600));
        let free = from(&[("PARLOR_ADDR", "127.0.0.1:0")])
            .unwrap()
            .turn
            .unwrap();
        assert_eq!(free.addr.port(), 0);
        assert!(from(&[("PARLOR_TURN", "off")]).unwrap().turn.is_none());
        let set = from(&[
            ("PARLOR_TURN_ADDR", "0.0.0.0:3478"),
            ("PARLOR_TURN_PUBLIC_IP", "203.0.113.7"),
            ("PARLOR_TURN_RELAY_PORTS", "50000-50100"),
            ("PARLOR_TURN_ALLOWED_PEERS", "10.1.0.0/16, 192.168.5.5"),
        ])
        .unwrap()
        .turn
        .unwrap();
        assert_eq!(set.public_ip.to_string(), "203.0.113.7");
        assert_eq!(set.relay_ports, (50000, 50100));
        assert_eq!(set.allowed_peers.len(), 2);
        for (vars, key) in [
            (vec![("PARLOR_TURN", "maybe")], "PARLOR_TURN"),
            (vec![("PARLOR_TURN_ADDR", "3478")], "PARLOR_TURN_ADDR"),
            (
                vec![("PARLOR_TURN_ADDR", "0.0.0.0:3478")],
                "PARLOR_TURN_PUBLIC_IP",
            ),
            (
                vec![("PARLOR_TURN_RELAY_PORTS", "60000-50000")],
                "PARLOR_TURN_RELAY_PORTS",
            ),
            (
                vec![("PARLOR_TURN_RELAY_PORTS", "80-90")],
                "PARLOR_TURN_RELAY_PORTS",
            ),
            (vec![("PARLOR_TURN_SECRET", "short")], "PARLOR_TURN_SECRET"),
            (
                vec![("PARLOR_TURN_CREDENTIAL_SECS", "5")],
                "PARLOR_TURN_CREDENTIAL_SECS",
            ),
            (
                vec![("PARLOR_TURN_ALLOWED_PEERS", "10.0.0.0/33")],
                "PARLOR_TURN_ALLOWED_PEERS",
            ),
        ] {
            let error = from(&vars).unwrap_err().to_string();
            assert!(error.contains(key), "{vars:?}: {error}");
        }
        // A secret never appears in an error.
        let error = from(&[("PARLOR_TURN_SECRET", "hunter2")])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
