//! The state every route and server function shares, and the fallible way to reach it from
//! inside a server function.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use leptos::prelude::*;

use super::{
    auth::{rate_limit::Limiter, Auth},
    calls::CallRegistry,
    db::Db,
    hub::{Delivery, Hub, Presence},
    turn_binding::TurnBinding,
};
use crate::error::AppError;

/// The shared state: one allocation behind a reference count, since every request clones it
/// several times (each layer and extractor takes its own copy).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Leptos's handlers find their options in the state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub auth: Arc<Auth>,
    /// The sockets connected to this instance (registering and closing them).
    pub hub: Arc<Hub>,
    /// Reaching people's sockets: this instance's hub, or through Redis the sockets of every
    /// instance ([`super::cluster`]).
    pub delivery: Arc<dyn Delivery>,
    /// Who is online: on this instance, or on any (through Redis).
    pub presence: Arc<dyn Presence>,
    /// The other instances, through Redis (`PARLOR_REDIS_URL`); `None` alone.
    pub cluster: Option<Arc<super::cluster::Cluster>>,
    /// The calls ringing or running (today: in this instance's memory).
    pub calls: Arc<dyn CallRegistry>,
    /// STUN/TURN servers handed to browsers for calls.
    pub ice_servers: Arc<IceServers>,
    /// How often sockets are pinged; two silent intervals close one.
    pub heartbeat: std::time::Duration,
    /// Messages per second one socket may send (bursts up to three seconds' worth).
    pub socket_rate: u32,
    /// Sockets per principal and per address.
    pub socket_caps: Arc<super::socket_caps::SocketCaps>,
    /// Limits that hold across sockets and requests.
    pub limits: Arc<Limits>,
    /// What `/metrics` reports.
    pub metrics: Arc<super::metrics::Metrics>,
    /// Code rooms (`/rendezvous`).
    pub rooms: Arc<super::rendezvous::Rooms>,
    /// Per-address limits of the rendezvous API.
    pub rendezvous_limits: Arc<RendezvousLimits>,
    /// Who is looking for a stranger, and the matches.
    pub strangers: Arc<super::strangers::Strangers>,
    /// Who may moderate strangers (`PARLOR_ADMIN_EMAILS`).
    pub moderators: super::moderation::Moderators,
    /// Runs the built-in TURN server's self-test on demand; `None` without one.
    pub turn_check: Option<TurnCheck>,
}

impl Shared {
    /// Whether a socket can still be reached: an open socket of this instance, or one on
    /// another instance that is alive (sockets closing there are forwarded as they close).
    /// What the strangers' matcher asks before pairing anyone.
    pub fn reachable(
        &self,
    ) -> impl Fn(super::auth::PrincipalId, super::hub::SocketRef) -> bool + '_ {
        move |who, socket| {
            if socket.instance == self.hub.instance() {
                self.hub.has_socket(who, socket)
            } else {
                self.cluster
                    .as_ref()
                    .is_some_and(|cluster| cluster.reachable_elsewhere(socket))
            }
        }
    }
}

/// Runs the built-in TURN server's self-test now (its gauge and log follow): how long a
/// relayed datagram took, or why nothing was relayed.
pub type TurnCheck = Arc<
    dyn Fn()
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Duration, String>> + Send>>
        + Send
        + Sync,
>;

/// Mints a TURN server entry with credentials for a username's principal part (a
/// [`TurnBinding`] label), working for at most the given time.
pub type MintTurn = Box<dyn Fn(&str, Duration) -> crate::protocol::IceServer + Send + Sync>;

/// How long a connection test's TURN credentials work: long enough for the test, too short
/// to be worth harvesting as a free relay.
pub const TEST_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The STUN/TURN servers handed to browsers: the configured ones (`PARLOR_ICE_SERVERS`) and,
/// with the built-in or an external TURN server, an entry with short-lived credentials
/// minted for one party of one call (or room, or connection test).
#[derive(Default)]
pub struct IceServers {
    pub configured: Vec<crate::protocol::IceServer>,
    pub turn: Option<MintTurn>,
    /// An external TURN server (coturn with `use-auth-secret`), minted for the same way.
    pub external: Option<MintTurn>,
}

impl IceServers {
    /// The list for what `binding` names, with fresh credentials.
    pub fn bound_to(&self, binding: &TurnBinding) -> Vec<crate::protocol::IceServer> {
        let lifetime = match binding {
            TurnBinding::Test | TurnBinding::SelfTest => TEST_CREDENTIAL_LIFETIME,
            TurnBinding::Call { .. } | TurnBinding::Room { .. } => Duration::MAX,
        };
        let label = binding.label();
        let mut list = self.configured.clone();
        for mint in self.turn.iter().chain(&self.external) {
            list.push(mint(&label, lifetime));
        }
        list
    }
}

/// Per-address limits on minting, redeeming (failures counted apart) and joining rooms.
#[derive(Debug)]
pub struct RendezvousLimits {
    pub mints: Box<dyn Limiter>,
    pub redeems: Box<dyn Limiter>,
    pub failed_redeems: Box<dyn Limiter>,
    pub upgrades: Box<dyn Limiter>,
}

/// Limits on what one person or address may do, over all their sockets and requests.
#[derive(Debug)]
pub struct Limits {
    /// What one principal may send over all their sockets together (messages, receipts,
    /// typing, call starts).
    pub principal_messages: Box<dyn Limiter>,
    /// Friends changes one user may make (each is announced to two people's tabs).
    pub friend_changes: Box<dyn Limiter>,
    /// Searches per user, and per address (an exact email finds its account).
    pub searches_per_user: Box<dyn Limiter>,
    pub searches_per_address: Box<dyn Limiter>,
    /// Starts and nexts with strangers, per principal and per address.
    pub stranger_starts: Box<dyn Limiter>,
    pub stranger_starts_per_address: Box<dyn Limiter>,
    /// Chat lines to strangers per principal.
    pub stranger_chat: Box<dyn Limiter>,
    /// Reports and blocks per principal.
    pub stranger_reports: Box<dyn Limiter>,
    /// Connectivity tests (each mints TURN credentials) per address.
    pub connectivity_tests: Box<dyn Limiter>,
}

/// The state, as provided to server functions by `leptos_routes_with_context`. Missing state is
/// a wiring bug: log it and give the user a generic error instead of panicking.
pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server function context");
        AppError::Internal
    })
}
