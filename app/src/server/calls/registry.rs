//! The calls ringing or running, and the rules of their phases: who is calling whom, in which
//! phase, and on which socket each side is. Each operation decides under one short std mutex
//! (never held across an await) and returns [`Effects`] that run after it is released.
//! [`CallRegistry`] is the interface the rest of the server uses; [`LocalCalls`] keeps the
//! calls of this instance in memory.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{
    shared::{unix_millis, SharedCall, SharedSide},
    CallContext, Effects, Party, To,
};
use crate::{
    protocol::{CallEndReason, ServerMsg},
    server::{
        auth::PrincipalId,
        hub::{InstanceId, SocketRef},
        state::IceServers,
        turn_binding::TurnBinding,
    },
    wire::{CallId, CallOutcome},
};

/// Why an operation on a call was refused (sent back as an error; the call is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("There is no such call, or it is not yours.")]
    NoSuchCall,
    #[error("This call cannot do that now.")]
    WrongState,
    #[error("Signaling goes only between the two answered sides of a call.")]
    NotAParty,
    #[error("One of you is in another call.")]
    Busy,
}

impl CallError {
    /// The error a socket is sent for it.
    pub fn refusal(self) -> ServerMsg {
        ServerMsg::Error {
            code: crate::protocol::ErrorCode::NotAllowed,
            message: self.to_string(),
            client_id: None,
        }
    }
}

/// What the server does with calls. Operations decide; [`super::carry_out`] acts.
pub trait CallRegistry: Send + Sync + std::fmt::Debug {
    /// How long a call rings before it counts as not answered.
    fn ring_time(&self) -> Duration;
    /// The call `who` is in, if any.
    fn call_of(&self, who: PrincipalId) -> Option<CallId>;
    /// Whether `who` is a party of the call `id` (TURN credentials bound to it still work).
    fn holds(&self, who: PrincipalId, id: CallId) -> bool;
    /// `caller` (on `socket`, asking with `request_id`) rings `callee` in a context that rings.
    fn start(
        &self,
        context: CallContext,
        caller: Party,
        socket: SocketRef,
        request_id: u32,
        callee: Party,
        video: bool,
    ) -> Effects;
    /// Starts a call that does not ring between two sockets (a match, a room); `a` offers.
    fn open(
        &self,
        context: CallContext,
        a: (Party, SocketRef),
        b: (Party, SocketRef),
        video: bool,
    ) -> Result<Effects, CallError>;
    fn accept(&self, who: PrincipalId, socket: SocketRef, id: CallId)
        -> Result<Effects, CallError>;
    fn reject(&self, who: PrincipalId, id: CallId) -> Result<Effects, CallError>;
    /// The caller cancels a ringing call, or either side hangs up an answered one.
    fn hang_up(&self, who: PrincipalId, id: CallId) -> Result<Effects, CallError>;
    /// Relays signaling from `who`'s call socket to the other side's.
    fn signal(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        id: CallId,
        data: String,
    ) -> Result<Effects, CallError>;
    /// A socket takes over its side of an answered call after reconnecting.
    fn resume(&self, who: PrincipalId, socket: SocketRef, id: CallId)
        -> Result<Effects, CallError>;
    /// A socket closed: a caller's ends a ringing call; an answered call waits for that side.
    fn socket_closed(&self, who: PrincipalId, socket: SocketRef) -> Effects;
    /// Ends the call `who` is in, if any (e.g. they were blocked, or left a match).
    fn end_for(&self, who: PrincipalId, reason: CallEndReason) -> Effects;
    /// The ring timer fired: a call still ringing was not answered.
    fn ring_expired(&self, id: CallId) -> Effects;
    /// The grace timer fired: a side that is still gone ends the call for both.
    fn grace_expired(&self, id: CallId) -> Effects;
    /// Whether this registry holds call `id` (ringing or answered).
    fn has(&self, id: CallId) -> bool;
    /// Takes over a friends call whose instance stopped (several instances only). A side
    /// whose socket was on an instance `alive` says is gone gets the grace to come back; a
    /// call still ringing ends, its caller gone with that instance.
    fn adopt(&self, call: SharedCall, alive: &dyn Fn(InstanceId) -> bool) -> Effects;
    /// Another instance took call `id` over (this one stalled and was taken for gone):
    /// forgets it without a word, the other instance runs it now.
    fn forget(&self, id: CallId);
    /// The friends calls held here, as other instances keep them.
    fn shared(&self) -> Vec<SharedCall>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Active { since: Instant },
}

#[derive(Debug, Clone)]
struct Side {
    party: Party,
    /// The socket this side talks on; `None` for a callee still ringing (every tab rings), or
    /// while a dropped side may still come back.
    socket: Option<SocketRef>,
}

impl Side {
    fn who(&self) -> PrincipalId {
        self.party.who
    }

    /// Where to tell this side something: its call socket, or all its tabs.
    fn to(&self) -> To {
        match self.socket {
            Some(socket) => To::Socket(self.who(), socket),
            None => To::All(self.who()),
        }
    }
}

#[derive(Debug, Clone)]
struct Call {
    id: CallId,
    context: CallContext,
    video: bool,
    /// The side that offers (the caller of a ringing call).
    caller: Side,
    callee: Side,
    phase: Phase,
}

impl Call {
    fn side(&self, who: PrincipalId) -> Option<&Side> {
        [&self.caller, &self.callee]
            .into_iter()
            .find(|s| s.who() == who)
    }

    fn side_mut(&mut self, who: PrincipalId) -> Option<&mut Side> {
        [&mut self.caller, &mut self.callee]
            .into_iter()
            .find(|s| s.who() == who)
    }

    fn other(&self, who: PrincipalId) -> &Side {
        if self.caller.who() == who {
            &self.callee
        } else {
            &self.caller
        }
    }

    fn ended(&self, reason: CallEndReason) -> ServerMsg {
        ServerMsg::CallEnded {
            call_id: self.id,
            reason,
        }
    }

    /// The call as other instances keep it: friends calls only (a stranger match or a code
    /// room lives on one instance, and its call goes with it).
    fn shared(&self) -> Option<SharedCall> {
        let CallContext::Friends { conversation } = self.context else {
            return None;
        };
        let side = |side: &Side| SharedSide {
            party: side.party.clone(),
            socket: side.socket,
        };
        Some(SharedCall {
            id: self.id,
            conversation,
            video: self.video,
            caller: side(&self.caller),
            callee: side(&self.callee),
            answered_at: match self.phase {
                Phase::Ringing => None,
                Phase::Active { since } => Some(unix_millis() - since.elapsed().as_millis() as i64),
            },
        })
    }

    /// A call another instance held, with the sockets on instances still `alive`.
    fn from_shared(call: SharedCall, alive: &dyn Fn(InstanceId) -> bool) -> Self {
        let side = |side: SharedSide| Side {
            party: side.party,
            socket: side.socket.filter(|s| alive(s.instance)),
        };
        let phase = match call.answered_at {
            None => Phase::Ringing,
            Some(at) => {
                let ago = Duration::from_millis((unix_millis() - at).max(0) as u64);
                Phase::Active {
                    since: Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
                }
            }
        };
        Self {
            id: call.id,
            context: CallContext::Friends {
                conversation: call.conversation,
            },
            video: call.video,
            caller: side(call.caller),
            callee: side(call.callee),
            phase,
        }
    }

    /// What to store, if the context keeps records.
    fn record(&self, outcome: CallOutcome, effects: &mut Effects) {
        let duration_secs = match self.phase {
            Phase::Active { since } => since.elapsed().as_secs() as i64,
            Phase::Ringing => 0,
        };
        effects.ended = Some((self.context.kind(), outcome));
        effects.record = self.context.record(
            self.caller.who(),
            self.id,
            outcome,
            duration_secs,
            self.video,
        );
    }

    /// Tells both sides the call ended (every ringing tab of a callee too) and what to store.
    fn finish(&self, reason: CallEndReason) -> Effects {
        let mut effects = Effects::default();
        let message = self.ended(reason);
        for side in [&self.caller, &self.callee] {
            match (side.socket, self.phase) {
                (Some(socket), Phase::Active { .. }) => effects
                    .send
                    .push((To::Socket(side.who(), socket), message.clone())),
                // A ringing callee rings on every tab; the party that ended it may have
                // other tabs showing the call too.
                _ => effects.send.push((To::All(side.who()), message.clone())),
            }
        }
        self.record(
            match self.phase {
                Phase::Ringing => CallOutcome::Missed,
                Phase::Active { .. } => CallOutcome::Completed,
            },
            &mut effects,
        );
        if let CallContext::Stranger { match_id } = self.context {
            effects.stranger_over = Some((match_id, reason));
        }
        effects
    }
}

/// What other instances need to know of the calls here, and know of theirs: who is in a
/// call (ringing or answered), and each friends call, for one of them to take it over if
/// this instance stops. Several instances only ([`crate::server::cluster`]). Must not block.
pub trait CallsElsewhere: Send + Sync {
    /// `who` is in call `call` here now (`None`: in none any more).
    fn changed(&self, who: PrincipalId, call: Option<CallId>);
    /// Whether `who` is in a call another instance holds.
    fn busy_elsewhere(&self, who: PrincipalId) -> bool;
    /// A friends call here started or changed (answered, a side's socket came or went).
    fn kept(&self, call: SharedCall);
    /// That call ended.
    fn dropped(&self, id: CallId);
}

#[derive(Default)]
struct Inner {
    calls: HashMap<CallId, Call>,
    /// The call each principal is in (see [`Inner::engage`] and [`Inner::remove`]).
    busy: HashMap<PrincipalId, CallId>,
    /// Told of every change to `busy`, and asked about calls elsewhere.
    elsewhere: Option<Arc<dyn CallsElsewhere>>,
    /// Calls that ended lately, with their parties (their TURN credentials still work for
    /// `after_call`), and when, oldest first.
    ended: HashMap<CallId, [PrincipalId; 2]>,
    ended_order: VecDeque<(Instant, CallId)>,
    /// How long those credentials keep working after the call ended.
    after_call: Duration,
}

impl Inner {
    /// Whether `who` is in a call, here or on another instance.
    fn is_busy(&self, who: PrincipalId) -> bool {
        self.busy.contains_key(&who)
            || self
                .elsewhere
                .as_ref()
                .is_some_and(|elsewhere| elsewhere.busy_elsewhere(who))
    }

    /// Puts `a` and `b` in call `id`.
    fn engage(&mut self, a: PrincipalId, b: PrincipalId, id: CallId) {
        for who in [a, b] {
            self.busy.insert(who, id);
            if let Some(elsewhere) = &self.elsewhere {
                elsewhere.changed(who, Some(id));
            }
        }
    }

    /// Tells other instances how call `id` stands now (if they keep it).
    fn share(&self, id: CallId) {
        if let (Some(elsewhere), Some(call)) = (&self.elsewhere, self.calls.get(&id)) {
            if let Some(shared) = call.shared() {
                elsewhere.kept(shared);
            }
        }
    }

    /// Ends a call: forgets it and frees both sides.
    fn remove(&mut self, id: CallId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        for who in [call.caller.who(), call.callee.who()] {
            self.busy.remove(&who);
            if let Some(elsewhere) = &self.elsewhere {
                elsewhere.changed(who, None);
            }
        }
        if let (Some(elsewhere), CallContext::Friends { .. }) = (&self.elsewhere, call.context) {
            elsewhere.dropped(id);
        }
        self.forget_ended();
        self.ended
            .insert(id, [call.caller.who(), call.callee.who()]);
        self.ended_order.push_back((Instant::now(), id));
        Some(call)
    }

    /// Forgets the calls that ended more than `after_call` ago.
    fn forget_ended(&mut self) {
        while let Some(&(at, id)) = self.ended_order.front() {
            if at.elapsed() < self.after_call {
                break;
            }
            self.ended_order.pop_front();
            self.ended.remove(&id);
        }
    }
}

/// The calls of this instance, in memory.
pub struct LocalCalls {
    inner: Mutex<Inner>,
    ring: Duration,
    grace: Duration,
    /// Where each side's STUN/TURN servers (credentials bound to its side) come from.
    ice: Arc<IceServers>,
    /// This instance: named in the ids of the calls started here.
    instance: InstanceId,
}

impl std::fmt::Debug for LocalCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCalls")
            .field("ring", &self.ring)
            .field("grace", &self.grace)
            .finish()
    }
}

/// A fresh call id: the instance that holds the call in its upper 64 bits (so any instance
/// knows where to send an operation on it), 64 random bits below.
fn new_call_id(owner: InstanceId) -> CallId {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    CallId((u128::from(owner.0) << 64) | u128::from(OsRng.next_u64()))
}

/// The instance that started call `id` (see [`LocalCalls::with_instance`]): it holds the
/// call unless another took it over when it stopped (see [`super::handover`]).
pub fn owner_of(id: CallId) -> InstanceId {
    InstanceId((id.0 >> 64) as u64)
}

impl LocalCalls {
    pub fn new(ring: Duration, grace: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                after_call: super::TURN_AFTER_CALL,
                ..Inner::default()
            }),
            ring,
            grace,
            ice: Arc::default(),
            instance: InstanceId(0),
        }
    }

    /// Tells `elsewhere` who is in a call here and how each friends call stands, and asks
    /// it who is in one on another instance (such a person is busy here too).
    pub fn with_elsewhere(self, elsewhere: Arc<dyn CallsElsewhere>) -> Self {
        self.lock().elsewhere = Some(elsewhere);
        self
    }

    /// Names `instance` as the holder of the calls it starts (in their ids, see
    /// [`owner_of`]): other instances send their operations on them here.
    pub fn with_instance(self, instance: InstanceId) -> Self {
        Self { instance, ..self }
    }

    /// Lets a call's TURN credentials work for `after_call` after it ended.
    pub fn with_turn_after_call(self, after_call: Duration) -> Self {
        self.lock().after_call = after_call;
        self
    }

    /// Hands each side of a connecting call these servers, with TURN credentials minted for
    /// that side of that call.
    pub fn with_ice_servers(self, ice: Arc<IceServers>) -> Self {
        Self { ice, ..self }
    }

    fn ice_for(&self, who: PrincipalId, call: CallId) -> Vec<crate::protocol::IceServer> {
        self.ice.bound_to(&TurnBinding::Call { who, call })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call `who` is a party of, or `NoSuchCall` (also for someone else's call).
    fn party_call(inner: &mut Inner, who: PrincipalId, id: CallId) -> Result<&mut Call, CallError> {
        inner
            .calls
            .get_mut(&id)
            .filter(|c| c.side(who).is_some())
            .ok_or(CallError::NoSuchCall)
    }
}

impl CallRegistry for LocalCalls {
    fn ring_time(&self) -> Duration {
        self.ring
    }

    fn call_of(&self, who: PrincipalId) -> Option<CallId> {
        self.lock().busy.get(&who).copied()
    }

    fn holds(&self, who: PrincipalId, id: CallId) -> bool {
        let mut inner = self.lock();
        if let Some(call) = inner.calls.get(&id) {
            return call.side(who).is_some();
        }
        inner.forget_ended();
        inner.ended.get(&id).is_some_and(|p| p.contains(&who))
    }

    fn start(
        &self,
        context: CallContext,
        caller: Party,
        socket: SocketRef,
        request_id: u32,
        callee: Party,
        video: bool,
    ) -> Effects {
        let id = new_call_id(self.instance);
        let mut inner = self.lock();
        let mut effects = Effects::default();
        let refuse = |reason| ServerMsg::CallRefused { request_id, reason };
        let to_caller = To::Socket(caller.who, socket);
        if inner.is_busy(caller.who) || caller.who == callee.who {
            effects
                .send
                .push((to_caller, refuse(CallEndReason::NotAllowed)));
            return effects;
        }
        let call = Call {
            id,
            context,
            video,
            caller: Side {
                party: caller.clone(),
                socket: Some(socket),
            },
            callee: Side {
                party: callee.clone(),
                socket: None,
            },
            phase: Phase::Ringing,
        };
        if inner.is_busy(callee.who) {
            effects.send.push((to_caller, refuse(CallEndReason::Busy)));
            call.record(CallOutcome::Missed, &mut effects);
            return effects;
        }
        inner.engage(caller.who, callee.who, id);
        inner.calls.insert(id, call);
        inner.share(id);
        effects.send.push((
            to_caller,
            ServerMsg::CallRinging {
                request_id,
                call_id: id,
                peer: callee.seen_as,
                video,
            },
        ));
        effects.send.push((
            To::All(callee.who),
            ServerMsg::CallIncoming {
                call_id: id,
                from: caller.seen_as,
                video,
            },
        ));
        effects.ring_timer = Some(id);
        effects
    }

    fn open(
        &self,
        context: CallContext,
        (a, a_socket): (Party, SocketRef),
        (b, b_socket): (Party, SocketRef),
        video: bool,
    ) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        if a.who == b.who || inner.is_busy(a.who) || inner.is_busy(b.who) {
            return Err(CallError::Busy);
        }
        let id = new_call_id(self.instance);
        let mut effects = Effects::default();
        for (me, socket, other, you_offer) in [(&a, a_socket, &b, true), (&b, b_socket, &a, false)]
        {
            effects.send.push((
                To::Socket(me.who, socket),
                ServerMsg::CallOpened {
                    call_id: id,
                    peer: other.seen_as.clone(),
                    video,
                    you_offer,
                    ice_servers: self.ice_for(me.who, id),
                },
            ));
        }
        inner.engage(a.who, b.who, id);
        inner.calls.insert(
            id,
            Call {
                id,
                context,
                video,
                caller: Side {
                    party: a,
                    socket: Some(a_socket),
                },
                callee: Side {
                    party: b,
                    socket: Some(b_socket),
                },
                phase: Phase::Active {
                    since: Instant::now(),
                },
            },
        );
        Ok(effects)
    }

    fn accept(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        id: CallId,
    ) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = Self::party_call(&mut inner, who, id)?;
        if call.callee.who() != who {
            return Err(CallError::NoSuchCall);
        }
        if call.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        call.phase = Phase::Active {
            since: Instant::now(),
        };
        call.callee.socket = Some(socket);
        let mut effects = Effects::default();
        if let Some(caller_socket) = call.caller.socket {
            effects.send.push((
                To::Socket(call.caller.who(), caller_socket),
                ServerMsg::CallAccepted {
                    call_id: id,
                    you_offer: true,
                    ice_servers: self.ice_for(call.caller.who(), id),
                },
            ));
        }
        effects.send.push((
            To::Socket(who, socket),
            ServerMsg::CallAccepted {
                call_id: id,
                you_offer: false,
                ice_servers: self.ice_for(who, id),
            },
        ));
        effects.send.push((
            To::AllBut(who, socket),
            call.ended(CallEndReason::AnsweredElsewhere),
        ));
        inner.share(id);
        Ok(effects)
    }

    fn reject(&self, who: PrincipalId, id: CallId) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = Self::party_call(&mut inner, who, id)?;
        if call.callee.who() != who {
            return Err(CallError::NoSuchCall);
        }
        if call.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        let call = inner.remove(id).ok_or(CallError::NoSuchCall)?;
        let mut effects = Effects::default();
        let message = call.ended(CallEndReason::Rejected);
        effects.send.push((call.caller.to(), message.clone()));
        effects.send.push((To::All(who), message));
        call.record(CallOutcome::Rejected, &mut effects);
        Ok(effects)
    }

    fn hang_up(&self, who: PrincipalId, id: CallId) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = Self::party_call(&mut inner, who, id)?;
        if call.phase == Phase::Ringing && call.callee.who() == who {
            // The callee declines by rejecting.
            drop(inner);
            return self.reject(who, id);
        }
        let call = inner.remove(id).ok_or(CallError::NoSuchCall)?;
        Ok(call.finish(match call.phase {
            Phase::Ringing => CallEndReason::Cancelled,
            Phase::Active { .. } => CallEndReason::HungUp,
        }))
    }

    fn signal(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        id: CallId,
        data: String,
    ) -> Result<Effects, CallError> {
        let (to, relay_only) = {
            let mut inner = self.lock();
            let call = Self::party_call(&mut inner, who, id)?;
            let side = call.side(who).ok_or(CallError::NoSuchCall)?;
            if !matches!(call.phase, Phase::Active { .. }) || side.socket != Some(socket) {
                return Err(CallError::NotAParty);
            }
            let other = call.other(who);
            (
                other.socket.map(|s| (other.who(), s)),
                call.context.relay_only(),
            )
        };
        let mut effects = Effects::default();
        // While the other side is reconnecting there is nowhere to send; its ICE restart
        // after resuming renegotiates anyway. In a relay-only call, only what carries no
        // address but the relay's passes (checked outside the lock: it parses SDP).
        let data = if relay_only {
            super::relay_only::filter(&data)
        } else {
            Some(data)
        };
        if let (Some((other, other_socket)), Some(data)) = (to, data) {
            effects.send.push((
                To::Socket(other, other_socket),
                ServerMsg::CallSignal { call_id: id, data },
            ));
        }
        Ok(effects)
    }

    fn resume(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        id: CallId,
    ) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = Self::party_call(&mut inner, who, id)?;
        if !matches!(call.phase, Phase::Active { .. }) {
            return Err(CallError::WrongState);
        }
        if let Some(side) = call.side_mut(who) {
            side.socket = Some(socket);
        }
        let other = call.other(who).clone();
        let mut effects = Effects::default();
        effects.send.push((
            To::Socket(who, socket),
            ServerMsg::CallResumed {
                call_id: id,
                ice_servers: self.ice_for(who, id),
            },
        ));
        if let Some(other_socket) = other.socket {
            effects.send.push((
                To::Socket(other.who(), other_socket),
                ServerMsg::CallPeerConnection {
                    call_id: id,
                    connected: true,
                },
            ));
        }
        inner.share(id);
        Ok(effects)
    }

    fn socket_closed(&self, who: PrincipalId, socket: SocketRef) -> Effects {
        let mut inner = self.lock();
        let Some(&id) = inner.busy.get(&who) else {
            return Effects::default();
        };
        let Some(call) = inner.calls.get_mut(&id) else {
            return Effects::default();
        };
        if call.side(who).and_then(|s| s.socket) != Some(socket) {
            // Not the socket the call runs on (another tab, or a ringing callee's tab).
            return Effects::default();
        }
        match call.phase {
            Phase::Ringing => inner
                .remove(id)
                .map(|call| call.finish(CallEndReason::Cancelled))
                .unwrap_or_default(),
            Phase::Active { .. } => {
                if let Some(side) = call.side_mut(who) {
                    side.socket = None;
                }
                let other = call.other(who);
                let mut effects = Effects::default();
                if let Some(other_socket) = other.socket {
                    effects.send.push((
                        To::Socket(other.who(), other_socket),
                        ServerMsg::CallPeerConnection {
                            call_id: id,
                            connected: false,
                        },
                    ));
                }
                effects.grace_timer = Some((id, call.context.grace(self.grace)));
                inner.share(id);
                effects
            }
        }
    }

    fn end_for(&self, who: PrincipalId, reason: CallEndReason) -> Effects {
        let mut inner = self.lock();
        let Some(id) = inner.busy.get(&who).copied() else {
            return Effects::default();
        };
        inner
            .remove(id)
            .map(|call| call.finish(reason))
            .unwrap_or_default()
    }

    fn ring_expired(&self, id: CallId) -> Effects {
        let mut inner = self.lock();
        if inner.calls.get(&id).map(|c| c.phase) != Some(Phase::Ringing) {
            return Effects::default();
        }
        inner
            .remove(id)
            .map(|call| call.finish(CallEndReason::NoAnswer))
            .unwrap_or_default()
    }

    fn grace_expired(&self, id: CallId) -> Effects {
        let mut inner = self.lock();
        let someone_gone = inner
            .calls
            .get(&id)
            .is_some_and(|c| c.caller.socket.is_none() || c.callee.socket.is_none());
        if !someone_gone {
            return Effects::default();
        }
        inner
            .remove(id)
            .map(|call| call.finish(CallEndReason::ConnectionLost))
            .unwrap_or_default()
    }

    fn has(&self, id: CallId) -> bool {
        self.lock().calls.contains_key(&id)
    }

    fn adopt(&self, shared: SharedCall, alive: &dyn Fn(InstanceId) -> bool) -> Effects {
        let mut inner = self.lock();
        let id = shared.id;
        if inner.calls.contains_key(&id) {
            return Effects::default();
        }
        let call = Call::from_shared(shared, alive);
        if call.phase == Phase::Ringing {
            // Its caller's socket went with that instance: the ringing stops on every tab
            // and the call counts as missed, as if the caller had closed the tab.
            if let Some(elsewhere) = &inner.elsewhere {
                elsewhere.dropped(id);
            }
            return call.finish(CallEndReason::ConnectionLost);
        }
        let (a, b) = (call.caller.who(), call.callee.who());
        let mut effects = Effects::default();
        for side in [&call.caller, &call.callee] {
            let other = call.other(side.who());
            if let (Some(socket), None) = (side.socket, other.socket) {
                effects.send.push((
                    To::Socket(side.who(), socket),
                    ServerMsg::CallPeerConnection {
                        call_id: id,
                        connected: false,
                    },
                ));
            }
        }
        if call.caller.socket.is_none() || call.callee.socket.is_none() {
            effects.grace_timer = Some((id, call.context.grace(self.grace)));
        }
        inner.engage(a, b, id);
        inner.calls.insert(id, call);
        inner.share(id);
        effects
    }

    fn forget(&self, id: CallId) {
        let mut inner = self.lock();
        if let Some(call) = inner.calls.remove(&id) {
            for who in [call.caller.who(), call.callee.who()] {
                if inner.busy.get(&who) == Some(&id) {
                    inner.busy.remove(&who);
                }
            }
        }
    }

    fn shared(&self) -> Vec<SharedCall> {
        self.lock()
            .calls
            .values()
            .filter_map(Call::shared)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{server::auth::GuestId, wire::CallPeer};

    fn guest(n: u128) -> Party {
        Party {
            who: PrincipalId::Guest(GuestId(n)),
            seen_as: CallPeer::Anonymous {
                label: "Stranger".into(),
            },
        }
    }

    fn socket(conn: u64) -> SocketRef {
        SocketRef {
            instance: InstanceId(9),
            conn,
        }
    }

    fn calls() -> LocalCalls {
        LocalCalls::new(Duration::from_secs(30), Duration::from_secs(20))
    }

    #[test]
    fn a_stranger_call_carries_only_relay_candidates_and_a_code_call_carries_all() {
        let signal = |line: &str| {
            serde_json::to_string(&crate::webrtc::Signal::Candidate {
                ice: crate::webrtc::Ice {
                    candidate: line.into(),
                    mid: Some("0".into()),
                    index: Some(0),
                },
            })
            .unwrap()
        };
        let host = signal("candidate:1 1 udp 2122260223 192.168.1.20 54400 typ host");
        let relay = signal(
            "candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 203.0.113.7 rport 61000",
        );
        let carried = |effects: Effects| -> Vec<String> {
            effects
                .send
                .into_iter()
                .filter_map(|(_, m)| match m {
                    ServerMsg::CallSignal { data, .. } => Some(data),
                    _ => None,
                })
                .collect()
        };
        let calls = calls();
        let strangers = calls
            .open(
                CallContext::Stranger { match_id: 1 },
                (guest(1), socket(1)),
                (guest(2), socket(2)),
                true,
            )
            .unwrap();
        let ServerMsg::CallOpened { call_id, .. } = strangers.send[0].1.clone() else {
            panic!("opened");
        };
        let who = PrincipalId::Guest(GuestId(1));
        // A client that ignores the relay-only policy: its host candidate goes nowhere.
        assert!(carried(calls.signal(who, socket(1), call_id, host.clone()).unwrap()).is_empty());
        let passed = carried(calls.signal(who, socket(1), call_id, relay).unwrap());
        assert_eq!(passed.len(), 1);
        assert!(
            passed[0].contains("typ relay raddr 0.0.0.0 rport 0"),
            "{passed:?}"
        );
        assert!(!passed[0].contains("203.0.113.7"));

        let code = calls
            .open(
                CallContext::Code { room: 7 },
                (guest(3), socket(3)),
                (guest(4), socket(4)),
                true,
            )
            .unwrap();
        let ServerMsg::CallOpened { call_id, .. } = code.send[0].1.clone() else {
            panic!("opened");
        };
        let who = PrincipalId::Guest(GuestId(3));
        assert_eq!(
            carried(calls.signal(who, socket(3), call_id, host.clone()).unwrap()),
            [host]
        );
    }

    #[test]
    fn a_call_that_does_not_ring_opens_on_both_sockets_and_stores_nothing() {
        let calls = calls();
        let context = CallContext::Code { room: 7 };
        let effects = calls
            .open(context, (guest(1), socket(1)), (guest(2), socket(2)), true)
            .unwrap();
        let offers: Vec<bool> = effects
            .send
            .iter()
            .filter_map(|(_, m)| match m {
                ServerMsg::CallOpened { you_offer, .. } => Some(*you_offer),
                _ => None,
            })
            .collect();
        assert_eq!(offers, [true, false], "exactly one side offers");
        let id = calls.call_of(guest(1).who).unwrap();
        assert_eq!(calls.call_of(guest(2).who), Some(id));
        // A third party is refused; both are busy for another call.
        assert_eq!(
            calls
                .signal(guest(3).who, socket(3), id, "x".into())
                .unwrap_err(),
            CallError::NoSuchCall
        );
        assert_eq!(
            calls
                .open(context, (guest(1), socket(1)), (guest(3), socket(3)), true)
                .unwrap_err(),
            CallError::Busy
        );
        let ended = calls.hang_up(guest(2).who, id).unwrap();
        assert!(ended.record.is_none(), "code calls leave no record");
        assert_eq!(calls.call_of(guest(1).who), None);
    }

    #[test]
    fn turn_credentials_hold_for_the_parties_until_a_moment_after_the_end() {
        let calls = calls().with_turn_after_call(Duration::from_millis(50));
        let (a, b, c) = (guest(1), guest(2), guest(3));
        calls
            .open(
                CallContext::Stranger { match_id: 1 },
                (a.clone(), socket(1)),
                (b.clone(), socket(2)),
                true,
            )
            .unwrap();
        let id = calls.call_of(a.who).unwrap();
        assert!(calls.holds(a.who, id) && calls.holds(b.who, id));
        assert!(!calls.holds(c.who, id), "not a party");
        assert!(!calls.holds(a.who, CallId(id.0 ^ 1)), "another call");
        calls.hang_up(a.who, id).unwrap();
        assert!(calls.holds(b.who, id) && !calls.holds(c.who, id));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!calls.holds(a.who, id) && !calls.holds(b.who, id));
        // What ended is forgotten after that, not kept forever.
        let inner = calls.lock();
        assert!(inner.ended.is_empty() && inner.ended_order.is_empty());
    }

    #[test]
    fn call_ids_are_random_unique_and_name_their_instance() {
        let ids: std::collections::HashSet<CallId> =
            (0..1000).map(|_| new_call_id(InstanceId(7))).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|&id| owner_of(id) == InstanceId(7)));
        let here = LocalCalls::new(Duration::from_secs(30), Duration::from_secs(20))
            .with_instance(InstanceId(u64::MAX - 3));
        let effects = here.start(
            CallContext::Friends { conversation: 1 },
            guest(1),
            socket(1),
            1,
            guest(2),
            false,
        );
        assert!(effects.ring_timer.is_some());
        let id = here.call_of(guest(1).who).unwrap();
        assert_eq!(owner_of(id), InstanceId(u64::MAX - 3));
    }

    fn friend(id: i64) -> Party {
        Party::friend(crate::wire::UserCard {
            id,
            display_name: format!("User {id}"),
        })
    }

    fn shared(answered: bool, caller_socket: SocketRef, callee_socket: SocketRef) -> SharedCall {
        SharedCall {
            id: CallId(0xabc),
            conversation: 5,
            video: true,
            caller: SharedSide {
                party: friend(1),
                socket: Some(caller_socket),
            },
            callee: SharedSide {
                party: friend(2),
                socket: Some(callee_socket),
            },
            answered_at: answered.then(|| unix_millis() - 61_000),
        }
    }

    #[test]
    fn an_answered_call_taken_over_waits_for_the_side_gone_with_its_instance() {
        let calls = calls();
        let gone = SocketRef {
            instance: InstanceId(1),
            conn: 4,
        };
        let alive = |i: InstanceId| i == InstanceId(9);
        let effects = calls.adopt(shared(true, gone, socket(2)), &alive);
        let (ann, bob) = (friend(1).who, friend(2).who);
        // Bob, still connected, hears Ann left; her side gets the grace.
        assert_eq!(
            effects.send,
            [(
                To::Socket(bob, socket(2)),
                ServerMsg::CallPeerConnection {
                    call_id: CallId(0xabc),
                    connected: false,
                }
            )]
        );
        assert_eq!(
            effects.grace_timer,
            Some((CallId(0xabc), Duration::from_secs(20)))
        );
        assert_eq!(calls.call_of(ann), Some(CallId(0xabc)));
        assert_eq!(calls.call_of(bob), Some(CallId(0xabc)));
        // Taken over once.
        let again = calls.adopt(shared(true, gone, socket(2)), &alive);
        assert!(again.send.is_empty() && again.grace_timer.is_none());
        // Ann comes back; the call keeps its length (answered a minute ago).
        let resumed = calls.resume(ann, socket(7), CallId(0xabc)).unwrap();
        assert_eq!(resumed.send.len(), 2);
        let ended = calls.hang_up(bob, CallId(0xabc)).unwrap();
        let record = ended.record.unwrap();
        assert!(record.record.duration_secs >= 60, "{record:?}");
        assert_eq!(record.record.outcome, CallOutcome::Completed);
    }

    #[test]
    fn a_ringing_call_taken_over_ends_as_missed_and_a_call_taken_elsewhere_is_forgotten() {
        let calls = calls();
        let alive = |i: InstanceId| i == InstanceId(9);
        let gone = SocketRef {
            instance: InstanceId(1),
            conn: 4,
        };
        let effects = calls.adopt(shared(false, gone, socket(2)), &alive);
        let ended = ServerMsg::CallEnded {
            call_id: CallId(0xabc),
            reason: CallEndReason::ConnectionLost,
        };
        assert_eq!(
            effects.send,
            [
                (To::All(friend(1).who), ended.clone()),
                (To::All(friend(2).who), ended)
            ]
        );
        assert_eq!(effects.record.unwrap().record.outcome, CallOutcome::Missed);
        assert_eq!(calls.call_of(friend(2).who), None);

        // Another instance took over a call held here: it goes without a word.
        calls.adopt(shared(true, socket(1), socket(2)), &alive);
        assert!(calls.has(CallId(0xabc)));
        calls.forget(CallId(0xabc));
        assert!(!calls.has(CallId(0xabc)));
        assert_eq!(calls.call_of(friend(1).who), None);
        assert!(calls.shared().is_empty());
    }
}
