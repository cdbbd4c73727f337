//! Calls on the server, for every way to meet. The server never sees media: it rings (when the
//! context rings), relays signaling between exactly the two sockets of a call, ends calls
//! (hang-up, no answer, a side that does not come back), and stores afterwards what the
//! context keeps. A call's [`CallContext`] says who may call whom, whether it rings and what
//! is stored: friends keep their call records in their conversation; stranger and code calls
//! store nothing.
//!
//! [`registry`] decides; [`carry_out`] sends, stores and sets timers afterwards. Timers (ring
//! timeout, reconnection grace) are tasks that call back with the call id; a call that moved
//! on meanwhile ignores them.

pub mod handover;
pub mod registry;
pub mod relay_only;
pub mod shared;

use std::{future::Future, pin::Pin, time::Duration};

pub use registry::{owner_of, CallError, CallRegistry, CallsElsewhere, LocalCalls};

use super::{auth::PrincipalId, hub::SocketRef, state::AppState};
use crate::{
    protocol::{CallEndReason, ServerMsg},
    wire::{CallId, CallOutcome, CallPeer, CallRecord, UserCard},
};

/// How long a call's TURN credentials keep working after it ended: closing browsers give
/// their allocations back with an (authenticated) refresh of lifetime 0.
pub const TURN_AFTER_CALL: Duration = Duration::from_secs(30);

/// The longest a stranger match waits for a side that dropped.
pub const STRANGER_GRACE: Duration = Duration::from_secs(5);

/// The way of meeting a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallContext {
    /// Two friends: rings every tab of the callee; only between friends who may post in
    /// their conversation; leaves a record there.
    Friends { conversation: i64 },
    /// A stranger match: does not ring, stores nothing.
    Stranger { match_id: u64 },
    /// A code room: does not ring, stores nothing.
    Code { room: u64 },
}

impl CallContext {
    /// Whether the server lets only relay addresses through ([`relay_only`]): strangers
    /// never learn each other's address.
    pub fn relay_only(self) -> bool {
        matches!(self, CallContext::Stranger { .. })
    }

    /// How long an answered call waits for a side whose connection dropped: a stranger who
    /// closed the tab is announced within seconds; friends and code rooms wait `grace`.
    pub fn grace(self, grace: Duration) -> Duration {
        match self {
            CallContext::Stranger { .. } => grace.min(STRANGER_GRACE),
            _ => grace,
        }
    }

    /// The way of meeting, as metrics name it.
    pub fn kind(self) -> &'static str {
        match self {
            CallContext::Friends { .. } => "friends",
            CallContext::Stranger { .. } => "stranger",
            CallContext::Code { .. } => "code",
        }
    }

    /// The record to store for a call that ended with `outcome`, if this context keeps one.
    fn record(
        self,
        caller: PrincipalId,
        id: CallId,
        outcome: CallOutcome,
        duration_secs: i64,
        video: bool,
    ) -> Option<StoredRecord> {
        match (self, caller) {
            (CallContext::Friends { conversation }, PrincipalId::User(caller)) => {
                Some(StoredRecord {
                    conversation,
                    caller,
                    call_id: id,
                    record: CallRecord {
                        outcome,
                        duration_secs,
                        video,
                    },
                })
            }
            _ => None,
        }
    }
}

/// One side of a call: who they are, and how the other side sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub who: PrincipalId,
    pub seen_as: CallPeer,
}

impl Party {
    pub fn friend(user: UserCard) -> Self {
        Self {
            who: PrincipalId::User(user.id),
            seen_as: CallPeer::Friend { user },
        }
    }
}

/// Where to send a message: one socket, every socket of someone, or all but one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Socket(PrincipalId, SocketRef),
    All(PrincipalId),
    AllBut(PrincipalId, SocketRef),
}

/// A friends call's record, for its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub conversation: i64,
    pub caller: i64,
    pub call_id: CallId,
    pub record: CallRecord,
}

/// What an operation decided; carried out by [`carry_out`].
#[derive(Debug, Default)]
pub struct Effects {
    pub send: Vec<(To, ServerMsg)>,
    pub record: Option<StoredRecord>,
    pub ring_timer: Option<CallId>,
    /// The grace timer of a call, and how long.
    pub grace_timer: Option<(CallId, Duration)>,
    /// A call ended: its way of meeting and outcome (for metrics).
    pub ended: Option<(&'static str, CallOutcome)>,
    /// A stranger match's call ended (its match id, and why): the match ends too.
    pub stranger_over: Option<(u64, CallEndReason)>,
}

impl Effects {
    /// Adds what another operation decided (its messages after these).
    pub fn absorb(&mut self, other: Effects) {
        self.send.extend(other.send);
        self.record = self.record.take().or(other.record);
        self.ring_timer = self.ring_timer.or(other.ring_timer);
        self.grace_timer = self.grace_timer.or(other.grace_timer);
        self.ended = self.ended.or(other.ended);
        self.stranger_over = self.stranger_over.or(other.stranger_over);
    }
}

/// Why a friends call may not be placed.
pub enum FriendsRefusal {
    NotAllowed,
    Unavailable(super::db::DbError),
}

/// The context and the callee of a call from `caller` to user `to`: they must be friends with
/// no block either way (the same rules as posting in their conversation).
pub async fn friends_call(
    state: &AppState,
    caller: i64,
    to: i64,
) -> Result<(CallContext, Party), FriendsRefusal> {
    let db = &state.db;
    let conversation = match super::db::messages::conversation_between(db, caller, to).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(FriendsRefusal::NotAllowed),
        Err(e) => return Err(FriendsRefusal::Unavailable(e)),
    };
    match db.conversation_detail(conversation, caller).await {
        Ok(Some(detail)) if detail.read_only_reason.is_none() => Ok((
            CallContext::Friends { conversation },
            Party::friend(detail.peer),
        )),
        Ok(_) => Err(FriendsRefusal::NotAllowed),
        Err(e) => Err(FriendsRefusal::Unavailable(e)),
    }
}

/// Carries out what an operation decided: messages, the stored record (announced to both
/// members as a new message), and timers. (A boxed future: timers call it again.)
/// Sends one message where `to` says.
pub fn deliver(delivery: &dyn super::hub::Delivery, to: To, message: &ServerMsg) {
    match to {
        To::Socket(who, socket) => {
            delivery.send_to_socket(who, socket, message);
        }
        To::All(who) => {
            delivery.send_to(who, message);
        }
        To::AllBut(who, socket) => delivery.send_to_others(who, socket, message),
    }
}

pub fn carry_out(
    state: &AppState,
    effects: Effects,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        for (to, message) in &effects.send {
            deliver(state.delivery.as_ref(), *to, message);
        }
        if let Some(id) = effects.ring_timer {
            after(state, state.calls.ring_time(), move |calls| {
                calls.ring_expired(id)
            });
        }
        if let Some((id, grace)) = effects.grace_timer {
            after(state, grace, move |calls| calls.grace_expired(id));
        }
        if let Some((context, outcome)) = effects.ended {
            state.metrics.call_ended(context, outcome);
        }
        if let Some(stored) = effects.record {
            store(state, stored).await;
        }
        if let Some((id, reason)) = effects.stranger_over {
            carry_out(state, state.strangers.call_over(id, reason)).await;
        }
    })
}

/// Runs `decide` after `delay` and carries out its effects.
fn after(
    state: &AppState,
    delay: Duration,
    decide: impl FnOnce(&dyn CallRegistry) -> Effects + Send + 'static,
) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let effects = decide(state.calls.as_ref());
        carry_out(&state, effects).await;
    });
}

async fn store(state: &AppState, stored: StoredRecord) {
    let StoredRecord {
        conversation,
        caller,
        call_id,
        record,
    } = stored;
    match state
        .db
        .store_call(conversation, caller, call_id, &record)
        .await
    {
        Ok(message) => {
            let members = match state.db.conversation_peer(conversation, caller).await {
                Ok(Some(peer)) => vec![caller, peer],
                _ => vec![caller],
            };
            state
                .delivery
                .send_to_users(&members, &ServerMsg::Message { message });
        }
        Err(error) => tracing::error!(%error, %call_id, "storing a call record failed"),
    }
}

/// Ends any call between `a` and `b` (one blocked the other, or they stopped being friends),
/// on whichever instance holds it.
pub async fn end_between(state: &AppState, a: i64, b: i64, reason: CallEndReason) {
    if let Some(cluster) = &state.cluster {
        cluster.end_between_elsewhere(a, b, reason);
    }
    end_between_here(state, a, b, reason).await;
}

/// Carries out call work another instance sent here (see [`super::cluster`]): what a socket
/// there asked of a call held here, with the same rules as if it had asked here; a refusal
/// goes back to that socket.
pub async fn apply_forwarded(state: &AppState, work: super::cluster::Forwarded) {
    use super::cluster::{CallOp, Forwarded};
    let (who, socket, call, op) = match work {
        Forwarded::EndBetween { a, b, reason } => {
            return end_between_here(state, a, b, reason).await;
        }
        Forwarded::Remote { socket, work } => {
            return super::realtime::run_remote(state, socket, work).await;
        }
        Forwarded::Order(order) => return super::moderation::apply_order(state, order).await,
        Forwarded::Room {
            socket,
            room,
            side,
            op,
        } => {
            let rooms = &state.rooms;
            if let Some(timer) = super::rendezvous::apply_remote(rooms, socket, room, side, op) {
                super::rendezvous::expire_later(state, timer);
            }
            return;
        }
        Forwarded::RoomGone(turn_tag) => return state.rooms.forget_remote_tag(turn_tag),
        Forwarded::CodeRedeemed(room) => return state.rooms.redeemed_elsewhere(room),
        Forwarded::Resync => {
            if let Some(cluster) = &state.cluster {
                let rooms = &state.rooms;
                for timer in rooms.drop_all_remote() {
                    super::rendezvous::expire_later(state, timer);
                }
                cluster
                    .reclaim_rooms(rooms.records(), rooms.most_live())
                    .await;
                // And the friends calls held here, and the sockets open here.
                cluster.keep_again(state.calls.shared());
                cluster.recount_sockets();
            }
            return;
        }
        Forwarded::CallLost(id) => return state.calls.forget(id),
        Forwarded::StrangersLost => {
            let ended = ServerMsg::StrangerEnded {
                reason: crate::strangers::MatchEnd::ServerLost,
            };
            for (socket, who) in state
                .cluster
                .as_ref()
                .map(|c| c.take_strangers_sockets())
                .unwrap_or_default()
            {
                state.delivery.send_to_socket(who, socket, &ended);
            }
            return;
        }
        Forwarded::InstanceGone(instance) => {
            for timer in state.rooms.drop_instance(instance) {
                super::rendezvous::expire_later(state, timer);
            }
            // Its friends calls go on here, or on whichever instance was first.
            return handover::take_over_from(state, instance).await;
        }
        Forwarded::Call {
            who,
            socket,
            call,
            op,
        } => (who, socket, call, op),
    };
    let calls = state.calls.as_ref();
    let result = match op {
        CallOp::Accept => calls.accept(who, socket, call),
        CallOp::Reject => calls.reject(who, call),
        CallOp::HangUp => calls.hang_up(who, call),
        CallOp::Signal { data } => calls.signal(who, socket, call, data),
        CallOp::Resume => calls.resume(who, socket, call).inspect(|_| {
            // A stranger's match follows its call to the new socket.
            state.strangers.resumed(who, socket);
        }),
        CallOp::SocketClosed => Ok(calls.socket_closed(who, socket)),
    };
    match result {
        Ok(effects) => carry_out(state, effects).await,
        Err(refusal) => {
            state
                .delivery
                .send_to_socket(who, socket, &refusal.refusal());
        }
    }
}

/// [`end_between`] for the calls this instance holds.
async fn end_between_here(state: &AppState, a: i64, b: i64, reason: CallEndReason) {
    let (a, b) = (PrincipalId::User(a), PrincipalId::User(b));
    match (state.calls.call_of(a), state.calls.call_of(b)) {
        (Some(x), Some(y)) if x == y => {
            let effects = state.calls.end_for(a, reason);
            carry_out(state, effects).await;
        }
        _ => {}
    }
}
