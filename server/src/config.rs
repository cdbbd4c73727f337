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
    /// `PARLOR_DATA_DIR`: holds the SQLite database; created if missing.
    pub data_dir: PathBuf,
    /// `PARLOR_LOG`: a tracing filter (`RUST_LOG` syntax).
    pub log_filter: String,
    /// `PARLOR_LOG_FORMAT`: human-readable text or one JSON object per line.
    pub log_format: LogFormat,
    /// `PARLOR_SHUTDOWN_TIMEOUT`: how long open requests may take to finish on SIGINT/SIGTERM.
    pub shutdown_timeout: Duration,
    /// `LEPTOS_SITE_ROOT`: the built site (wasm, JS, CSS, public assets).
    pub site_root: PathBuf,
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
    #[error("cannot read the .env file: {0}")]
    DotEnv(String),
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_LOG: &str = "info";
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_SITE_ROOT: &str = "target/site";

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

        Ok(Self {
            addr,
            data_dir,
            log_filter,
            log_format,
            shutdown_timeout,
            site_root,
        })
    }

    /// The SQLite database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("parlor.db")
    }

    /// A configuration for tests: port 0 on loopback and the given data directory.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            log_filter: DEFAULT_LOG.into(),
            log_format: LogFormat::Text,
            shutdown_timeout: Duration::from_secs(1),
            site_root: PathBuf::from(DEFAULT_SITE_ROOT),
        }
    }
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
    fn malformed_values_name_the_setting() {
        for (key, value) in [
            ("PARLOR_ADDR", "localhost"),
            ("PARLOR_ADDR", "127.0.0.1:99999"),
            ("PARLOR_ADDR", "'; DROP TABLE users; --"),
            ("PARLOR_LOG", "info,[unclosed"),
            ("PARLOR_LOG_FORMAT", "xml"),
            ("PARLOR_SHUTDOWN_TIMEOUT", "-1"),
            ("PARLOR_SHUTDOWN_TIMEOUT", "ten"),
        ] {
            let err = from(&[(key, value)]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid {key}=")),
                "{key}={value}: {err}"
            );
        }
    }
}
