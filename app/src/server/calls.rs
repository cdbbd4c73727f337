//! 1:1 calls on the server: who is calling whom, in which phase, and on which socket each side
//! is. The server never sees media; it rings, relays signaling between exactly the two sockets
//! of an answered call, ends calls (hang-up, no answer, a side that does not come back), and
//! stores how each call went in the conversation.
//!
//! State sits behind one short std mutex, never held across an await: each operation decides
//! under the lock and returns what to send and store, which runs after the lock is released.
//! Timers (ring timeout, reconnection grace) are tasks that call back with the call id; a
//! call that moved on meanwhile ignores them.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use super::state::AppState;
use crate::{
    api::{
        friends::UserCard,
        messages::{CallOutcome, CallRecord},
    },
    protocol::{CallEndReason, ServerMsg},
};

/// Where to send a message: one socket, or every socket of a user (but maybe one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Conn(i64, u64),
    User(i64),
    UserExcept(i64, u64),
}

/// What an operation decided; carried out by [`Calls::apply`].
#[derive(Debug, Default)]
pub struct Effects {
    pub send: Vec<(To, ServerMsg)>,
    /// `(conversation, caller, call id, record)` to store.
    pub record: Option<(i64, i64, u64, CallRecord)>,
    pub ring_timer: Option<u64>,
    pub grace_timer: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Active { since: Instant },
}

#[derive(Debug, Clone)]
struct Side {
    user: UserCard,
    /// The socket this side talks on; `None` for a callee still ringing (every tab rings), or
    /// while a dropped side may still come back.
    conn: Option<u64>,
}

#[derive(Debug, Clone)]
struct Call {
    id: u64,
    conversation: i64,
    video: bool,
    caller: Side,
    callee: Side,
    phase: Phase,
}

impl Call {
    fn side(&self, user: i64) -> Option<&Side> {
        if self.caller.user.id == user {
            Some(&self.caller)
        } else if self.callee.user.id == user {
            Some(&self.callee)
        } else {
            None
        }
    }

    fn other(&self, user: i64) -> &Side {
        if self.caller.user.id == user {
            &self.callee
        } else {
            &self.caller
        }
    }

    fn side_mut(&mut self, user: i64) -> Option<&mut Side> {
        if self.caller.user.id == user {
            Some(&mut self.caller)
        } else if self.callee.user.id == user {
            Some(&mut self.callee)
        } else {
            None
        }
    }

    fn record(&self, outcome: CallOutcome) -> (i64, i64, u64, CallRecord) {
        let duration_secs = match self.phase {
            Phase::Active { since } => since.elapsed().as_secs() as i64,
            Phase::Ringing => 0,
        };
        (
            self.conversation,
            self.caller.user.id,
            self.id,
            CallRecord {
                outcome,
                duration_secs,
                video: self.video,
            },
        )
    }
}

/// Why an operation on a call was refused (sent back as an error; the call is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("There is no such call, or it is not yours.")]
    NoSuchCall,
    #[error("This call cannot do that now.")]
    WrongState,
    #[error("Signaling goes only between the two answered sides of a call.")]
    NotAParty,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<u64, Call>,
    /// The call each user is in.
    busy: HashMap<i64, u64>,
}

pub struct Calls {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// How long a call rings before it counts as not answered.
    pub ring: Duration,
    /// How long an answered call waits for a side whose connection dropped.
    pub grace: Duration,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("ring", &self.ring)
            .field("grace", &self.grace)
            .finish()
    }
}

fn ended(call: &Call, reason: CallEndReason) -> ServerMsg {
    ServerMsg::CallEnded {
        call_id: call.id,
        reason,
    }
}

impl Calls {
    pub fn new(ring: Duration, grace: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(1),
            ring,
            grace,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call `user` is in, if any.
    pub fn call_of(&self, user: i64) -> Option<u64> {
        self.lock().busy.get(&user).copied()
    }

    /// `caller` (on socket `conn`) rings `callee`. The caller checked that they may call each
    /// other and found their conversation.
    pub fn start(
        &self,
        caller: UserCard,
        conn: u64,
        callee: UserCard,
        conversation: i64,
        video: bool,
    ) -> Effects {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        let mut effects = Effects::default();
        let refuse = |reason| ServerMsg::CallEnded {
            call_id: id,
            reason,
        };
        if inner.busy.contains_key(&caller.id) {
            effects
                .send
                .push((To::Conn(caller.id, conn), refuse(CallEndReason::NotAllowed)));
            return effects;
        }
        let call = Call {
            id,
            conversation,
            video,
            caller: Side {
                user: caller.clone(),
                conn: Some(conn),
            },
            callee: Side {
                user: callee.clone(),
                conn: None,
            },
            phase: Phase::Ringing,
        };
        if inner.busy.contains_key(&callee.id) {
            effects
                .send
                .push((To::Conn(caller.id, conn), refuse(CallEndReason::Busy)));
            effects.record = Some(call.record(CallOutcome::Missed));
            return effects;
        }
        inner.busy.insert(caller.id, id);
        inner.busy.insert(callee.id, id);
        inner.calls.insert(id, call);
        effects.send.push((
            To::Conn(caller.id, conn),
            ServerMsg::CallRinging {
                call_id: id,
                peer: callee.clone(),
                video,
            },
        ));
        effects.send.push((
            To::User(callee.id),
            ServerMsg::CallIncoming {
                call_id: id,
                from: caller,
                video,
            },
        ));
        effects.ring_timer = Some(id);
        effects
    }

    /// Ends a call: forgets it and frees both users.
    fn remove(inner: &mut Inner, id: u64) -> Option<Call> {
        let call = inner.calls.remove(&id)?;
        inner.busy.remove(&call.caller.user.id);
        inner.busy.remove(&call.callee.user.id);
        Some(call)
    }

    pub fn accept(&self, user: i64, conn: u64, id: u64) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = inner.calls.get_mut(&id).ok_or(CallError::NoSuchCall)?;
        if call.callee.user.id != user {
            return Err(CallError::NoSuchCall);
        }
        if call.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        call.phase = Phase::Active {
            since: Instant::now(),
        };
        call.callee.conn = Some(conn);
        let caller = &call.caller;
        let mut effects = Effects::default();
        let accepted = ServerMsg::CallAccepted { call_id: id };
        if let Some(caller_conn) = caller.conn {
            effects
                .send
                .push((To::Conn(caller.user.id, caller_conn), accepted.clone()));
        }
        effects.send.push((To::Conn(user, conn), accepted));
        effects.send.push((
            To::UserExcept(user, conn),
            ended(call, CallEndReason::AnsweredElsewhere),
        ));
        Ok(effects)
    }

    pub fn reject(&self, user: i64, id: u64) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = inner.calls.get(&id).ok_or(CallError::NoSuchCall)?;
        if call.callee.user.id != user {
            return Err(CallError::NoSuchCall);
        }
        if call.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        let call = Self::remove(&mut inner, id).ok_or(CallError::NoSuchCall)?;
        let mut effects = Effects::default();
        let message = ended(&call, CallEndReason::Rejected);
        if let Some(conn) = call.caller.conn {
            effects
                .send
                .push((To::Conn(call.caller.user.id, conn), message.clone()));
        }
        effects.send.push((To::User(user), message));
        effects.record = Some(call.record(CallOutcome::Rejected));
        Ok(effects)
    }

    /// The caller cancels a ringing call, or either side hangs up an answered one.
    pub fn hang_up(&self, user: i64, id: u64) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = inner.calls.get(&id).ok_or(CallError::NoSuchCall)?;
        if call.side(user).is_none() {
            return Err(CallError::NoSuchCall);
        }
        if call.phase == Phase::Ringing && call.callee.user.id == user {
            // The callee declines by rejecting.
            drop(inner);
            return self.reject(user, id);
        }
        let call = Self::remove(&mut inner, id).ok_or(CallError::NoSuchCall)?;
        Ok(Self::finish(
            &call,
            match call.phase {
                Phase::Ringing => CallEndReason::Cancelled,
                Phase::Active { .. } => CallEndReason::HungUp,
            },
        ))
    }

    /// Tells both sides a call ended (every ringing tab of a callee too) and what to store.
    fn finish(call: &Call, reason: CallEndReason) -> Effects {
        let mut effects = Effects::default();
        let message = ended(call, reason);
        for side in [&call.caller, &call.callee] {
            match (side.conn, call.phase) {
                (Some(conn), Phase::Active { .. }) => effects
                    .send
                    .push((To::Conn(side.user.id, conn), message.clone())),
                // A ringing callee rings on every tab; the party that ended it may have
                // other tabs showing the call too.
                _ => effects.send.push((To::User(side.user.id), message.clone())),
            }
        }
        effects.record = Some(call.record(match call.phase {
            Phase::Ringing => CallOutcome::Missed,
            Phase::Active { .. } => CallOutcome::Completed,
        }));
        effects
    }

    /// Relays signaling from `user`'s call socket to the other side's.
    pub fn signal(
        &self,
        user: i64,
        conn: u64,
        id: u64,
        data: String,
    ) -> Result<Effects, CallError> {
        let inner = self.lock();
        let call = inner.calls.get(&id).ok_or(CallError::NoSuchCall)?;
        let side = call.side(user).ok_or(CallError::NoSuchCall)?;
        if !matches!(call.phase, Phase::Active { .. }) || side.conn != Some(conn) {
            return Err(CallError::NotAParty);
        }
        let other = call.other(user);
        let mut effects = Effects::default();
        // While the other side is reconnecting there is nowhere to send; its ICE restart
        // after resuming renegotiates anyway.
        if let Some(other_conn) = other.conn {
            effects.send.push((
                To::Conn(other.user.id, other_conn),
                ServerMsg::CallSignal { call_id: id, data },
            ));
        }
        Ok(effects)
    }

    /// A socket takes over its user's side of an answered call after reconnecting.
    pub fn resume(&self, user: i64, conn: u64, id: u64) -> Result<Effects, CallError> {
        let mut inner = self.lock();
        let call = inner.calls.get_mut(&id).ok_or(CallError::NoSuchCall)?;
        if !matches!(call.phase, Phase::Active { .. }) {
            return Err(CallError::WrongState);
        }
        let side = call.side_mut(user).ok_or(CallError::NoSuchCall)?;
        side.conn = Some(conn);
        let other = call.other(user).clone();
        let mut effects = Effects::default();
        effects
            .send
            .push((To::Conn(user, conn), ServerMsg::CallResumed { call_id: id }));
        if let Some(other_conn) = other.conn {
            effects.send.push((
                To::Conn(other.user.id, other_conn),
                ServerMsg::CallPeerConnection {
                    call_id: id,
                    connected: true,
                },
            ));
        }
        Ok(effects)
    }

    /// A socket closed. A caller's socket ends a ringing call (cancelled); an answered call
    /// waits [`Self::grace`] for that side to come back.
    pub fn socket_closed(&self, user: i64, conn: u64) -> Effects {
        let mut inner = self.lock();
        let Some(&id) = inner.busy.get(&user) else {
            return Effects::default();
        };
        let Some(call) = inner.calls.get_mut(&id) else {
            return Effects::default();
        };
        if call.side(user).and_then(|s| s.conn) != Some(conn) {
            // Not the socket the call runs on (another tab, or a ringing callee's tab).
            return Effects::default();
        }
        match call.phase {
            Phase::Ringing => {
                let Some(call) = Self::remove(&mut inner, id) else {
                    return Effects::default();
                };
                Self::finish(&call, CallEndReason::Cancelled)
            }
            Phase::Active { .. } => {
                if let Some(side) = call.side_mut(user) {
                    side.conn = None;
                }
                let other = call.other(user);
                let mut effects = Effects::default();
                if let Some(other_conn) = other.conn {
                    effects.send.push((
                        To::Conn(other.user.id, other_conn),
                        ServerMsg::CallPeerConnection {
                            call_id: id,
                            connected: false,
                        },
                    ));
                }
                effects.grace_timer = Some(id);
                effects
            }
        }
    }

    /// The ring timer fired: a call still ringing was not answered.
    pub fn ring_expired(&self, id: u64) -> Effects {
        let mut inner = self.lock();
        if inner.calls.get(&id).map(|c| c.phase) != Some(Phase::Ringing) {
            return Effects::default();
        }
        match Self::remove(&mut inner, id) {
            Some(call) => Self::finish(&call, CallEndReason::NoAnswer),
            None => Effects::default(),
        }
    }

    /// The grace timer fired: a side that is still gone ends the call for both.
    pub fn grace_expired(&self, id: u64) -> Effects {
        let mut inner = self.lock();
        let someone_gone = inner
            .calls
            .get(&id)
            .is_some_and(|c| c.caller.conn.is_none() || c.callee.conn.is_none());
        if !someone_gone {
            return Effects::default();
        }
        match Self::remove(&mut inner, id) {
            Some(call) => Self::finish(&call, CallEndReason::ConnectionLost),
            None => Effects::default(),
        }
    }

    /// Carries out what an operation decided: messages, the stored record (announced to
    /// both members as a new message), and timers. (A boxed future: timers call it again.)
    pub fn apply<'a>(
        self: &'a Arc<Self>,
        state: &'a AppState,
        effects: Effects,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            for (to, message) in &effects.send {
                match *to {
                    To::Conn(user, conn) => {
                        state.hub.send_to_conn(user, conn, message);
                    }
                    To::User(user) => {
                        state.hub.send_to_user(user, message);
                    }
                    To::UserExcept(user, conn) => state.hub.send_to_others(user, conn, message),
                }
            }
            if let Some(id) = effects.ring_timer {
                self.after(state, self.ring, move |calls| calls.ring_expired(id));
            }
            if let Some(id) = effects.grace_timer {
                self.after(state, self.grace, move |calls| calls.grace_expired(id));
            }
            if let Some((conversation, caller, call_id, record)) = effects.record {
                self.store(state, conversation, caller, call_id, record)
                    .await;
            }
        })
    }

    /// Runs `decide` after `delay` and carries out its effects.
    fn after(
        self: &Arc<Self>,
        state: &AppState,
        delay: Duration,
        decide: impl FnOnce(&Calls) -> Effects + Send + 'static,
    ) {
        let (calls, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let effects = decide(&calls);
            calls.apply(&state, effects).await;
        });
    }

    async fn store(
        &self,
        state: &AppState,
        conversation: i64,
        caller: i64,
        call_id: u64,
        record: CallRecord,
    ) {
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
                    .hub
                    .send_to_users(&members, &ServerMsg::Message { message });
            }
            Err(error) => tracing::error!(%error, call_id, "storing a call record failed"),
        }
    }
}
