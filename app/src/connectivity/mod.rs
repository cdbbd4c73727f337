//! "Test your connection" (`/connectivity`): before a call, anyone can see what their browser
//! finds with the server's STUN/TURN servers (addresses on this network, the public address
//! the server sees, relay addresses) and the round trip of a relayed connection, with a plain
//! verdict. The test itself runs in the browser (`crate::webrtc::probe`); the server only hands
//! out short-lived credentials, a limited number per address.

pub mod page;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{error::AppError, protocol::IceServer};

/// Tests one address may start per minute.
pub const TESTS_PER_MINUTE: u32 = 20;

/// What the test found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// Candidates on this device's own networks.
    pub host: usize,
    /// Public addresses the STUN server saw.
    pub public: usize,
    /// Addresses on the relay (TURN).
    pub relay: usize,
    /// Median round trip between two relay-only connections, in ms.
    pub relay_rtt_ms: Option<f64>,
    /// What went wrong, if something did.
    pub problem: Option<String>,
}

impl Findings {
    /// Counts a candidate line by its type (`… typ host …`).
    pub fn count(&mut self, candidate: &str) {
        let kind = candidate
            .split_whitespace()
            .skip_while(|w| *w != "typ")
            .nth(1)
            .unwrap_or("");
        match kind {
            "host" => self.host += 1,
            "srflx" | "prflx" => self.public += 1,
            "relay" => self.relay += 1,
            _ => {}
        }
    }

    /// Whether calls will connect from here, in a sentence.
    pub fn verdict(&self) -> &'static str {
        match (self.relay_rtt_ms, self.relay, self.public, self.host) {
            (Some(_), ..) => "Calls will connect from here: the relay works, so even strict networks are fine.",
            (None, 0, p, _) if p > 0 => {
                "Calls will connect with most people, but the relay could not be reached: behind strict firewalls they may fail."
            }
            (None, r, ..) if r > 0 => {
                "The relay answered but a connection through it did not work: calls may fail. Try another network."
            }
            (None, _, _, h) if h > 0 => {
                "Only this local network was found: calls will work with people on it, not across the internet."
            }
            _ => "No connection could be set up from this browser: calls will not work from here.",
        }
    }
}

/// What the server found when it checked its own relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayCheck {
    pub ok: bool,
    /// How long the relayed datagram took (when it passed), in milliseconds.
    pub millis: Option<u64>,
    /// Why it failed (when it did).
    pub problem: Option<String>,
}

/// Runs the built-in TURN server's self-test now (moderators only): whether a datagram is
/// relayed between two allocations made at the address browsers are given.
#[server(endpoint = "connectivity/server")]
pub async fn check_server_relay() -> Result<RelayCheck, AppError> {
    crate::server::respond(imp::check_server_relay().await)
}

/// The STUN/TURN servers to test with (short-lived credentials), for a guest or a member.
#[server(endpoint = "connectivity/ice")]
pub async fn test_ice_servers() -> Result<Vec<IceServer>, AppError> {
    crate::server::respond(imp::ice_servers().await)
}

#[cfg(feature = "ssr")]
mod imp {
    use crate::{
        error::AppError,
        protocol::IceServer,
        server::{
            auth::{client_key, rate_limit::retry_secs, request_principal},
            state::app_state,
            turn_binding::TurnBinding,
        },
    };

    pub async fn check_server_relay() -> Result<super::RelayCheck, AppError> {
        crate::server::moderation::require_moderator()?;
        let state = app_state()?;
        let Some(check) = state.turn_check.clone() else {
            return Err(AppError::NotFound(
                "This server has no built-in TURN server (PARLOR_TURN is off).".into(),
            ));
        };
        state
            .limits
            .connectivity_tests
            .hit_everywhere(&client_key())
            .await
            .map_err(|wait| AppError::RateLimited(retry_secs(wait)))?;
        Ok(match check().await {
            Ok(took) => super::RelayCheck {
                ok: true,
                millis: Some(took.as_millis() as u64),
                problem: None,
            },
            Err(why) => super::RelayCheck {
                ok: false,
                millis: None,
                problem: Some(why),
            },
        })
    }

    pub async fn ice_servers() -> Result<Vec<IceServer>, AppError> {
        // Guests and members (anyone about to call), each test limited per address.
        request_principal().ok_or(AppError::Unauthorized)?;
        let state = app_state()?;
        state
            .limits
            .connectivity_tests
            .hit_everywhere(&client_key())
            .await
            .map_err(|wait| AppError::RateLimited(retry_secs(wait)))?;
        // Not bound to a call: short-lived instead (a quarter of an hour).
        Ok(state.ice_servers.bound_to(&TurnBinding::Test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_counted_by_type_and_the_verdict_follows() {
        let mut f = Findings::default();
        assert!(f.verdict().starts_with("No connection"));
        f.count("candidate:1 1 udp 2122260223 192.168.1.5 54321 typ host generation 0");
        assert!(f.verdict().starts_with("Only this local network"));
        f.count("candidate:2 1 udp 1686052607 203.0.113.9 40000 typ srflx raddr 192.168.1.5 rport 54321");
        assert!(f
            .verdict()
            .starts_with("Calls will connect with most people"));
        f.count("candidate:3 1 udp 41885439 198.51.100.1 50000 typ relay raddr 0.0.0.0 rport 0");
        assert!(f.verdict().starts_with("The relay answered"));
        f.relay_rtt_ms = Some(12.0);
        assert!(f.verdict().starts_with("Calls will connect from here"));
        f.count("not a candidate");
        assert_eq!((f.host, f.public, f.relay), (1, 1, 1));
    }
}
