//! Friends calls whose instance stopped (several instances only): another instance takes
//! each over, and the call goes on within its grace. The calls an instance held are taken
//! over as soon as it is found gone ([`take_over_from`]). What a socket asks of such a call
//! before that (resuming it after reconnecting, hanging up, its socket closing) waits until
//! the call has a holder again and goes there ([`chase`]), instead of being refused.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{apply_forwarded, carry_out, CallError};
use crate::{
    server::{
        auth::PrincipalId,
        cluster::{CallOp, Cluster, Forwarded, Found, Taken},
        hub::{InstanceId, SocketRef},
        state::AppState,
    },
    wire::CallId,
};

/// How often an operation waiting for its call's holder asks Redis again.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// How much longer than twice an instance's timeout an operation waits (instances may be
/// configured with longer timeouts than this one).
const SPARE: Duration = Duration::from_secs(10);

/// The most operations waiting for a holder at once on one instance; past it they are
/// refused as for a call that is gone.
const MOST_CHASES: usize = 10_000;

/// Operations waiting for a holder: (socket, call, operation). One of each at a time.
#[derive(Debug, Default)]
pub struct Chases(Mutex<HashSet<(SocketRef, CallId, &'static str)>>);

enum Start {
    Started,
    /// The same operation of the same socket waits already.
    Waiting,
    TooMany,
}

impl Chases {
    fn start(&self, key: (SocketRef, CallId, &'static str)) -> Start {
        let mut chases = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if chases.contains(&key) {
            Start::Waiting
        } else if chases.len() >= MOST_CHASES {
            Start::TooMany
        } else {
            chases.insert(key);
            Start::Started
        }
    }

    fn end(&self, key: &(SocketRef, CallId, &'static str)) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether an operation waits for its call's holder when none answered: what must not be
/// lost. (Answering a call that rang from a stopped instance is refused: that call ends.)
pub fn waits(op: &CallOp) -> bool {
    matches!(op, CallOp::Resume | CallOp::HangUp | CallOp::SocketClosed)
}

fn op_name(op: &CallOp) -> &'static str {
    match op {
        CallOp::Accept => "accept",
        CallOp::Reject => "reject",
        CallOp::HangUp => "hang_up",
        CallOp::Signal { .. } => "signal",
        CallOp::Resume => "resume",
        CallOp::SocketClosed => "socket_closed",
    }
}

/// Takes over the calls instance `gone` held (when it is found gone; the first instance to
/// try gets them all).
pub async fn take_over_from(state: &AppState, gone: InstanceId) {
    let Some(cluster) = &state.cluster else {
        return;
    };
    match cluster.take_calls_of(gone).await {
        Ok(taken) => adopt(state, taken).await,
        Err(error) => {
            tracing::warn!(%error, "taking over the calls of a stopped instance failed")
        }
    }
}

/// Takes over calls whose instance stopped: their sides whose sockets are on instances
/// still alive keep them, the others get the grace to come back.
async fn adopt(state: &AppState, taken: Taken) {
    let me = state.hub.instance();
    let alive = |instance| instance == me || taken.live.contains(&instance);
    for call in taken.calls {
        tracing::info!(call = %call.id, "taking over a call whose instance stopped");
        let effects = state.calls.adopt(call, &alive);
        carry_out(state, effects).await;
    }
}

/// `who` on `socket` (of this instance) asked `op` of call `id`, and the instance that held
/// it did not answer: waits (in the background, a while longer than an instance's timeout) until
/// Redis knows where the call is, taking it over here once its holder is taken for gone,
/// then carries `op` out there. A call no instance keeps is refused at once.
pub fn chase(state: &AppState, who: PrincipalId, socket: SocketRef, id: CallId, op: CallOp) {
    let Some(cluster) = state.cluster.clone() else {
        return;
    };
    let key = (socket, id, op_name(&op));
    match cluster.chases.start(key) {
        Start::Started => {}
        // The one waiting already answers.
        Start::Waiting => return,
        Start::TooMany => {
            if op != CallOp::SocketClosed {
                refuse(state, who, socket);
            }
            return;
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + cluster.alive_for() * 2 + SPARE;
        let resume = op == CallOp::Resume;
        let done = find_and_apply(&state, &cluster, who, socket, id, op.clone(), deadline).await;
        cluster.chases.end(&key);
        if !done {
            if op != CallOp::SocketClosed {
                refuse(&state, who, socket);
            }
            return;
        }
        // The socket may have closed while it waited: its side is free again.
        if resume && !state.hub.has_socket(who, socket) {
            find_and_apply(
                &state,
                &cluster,
                who,
                socket,
                id,
                CallOp::SocketClosed,
                deadline,
            )
            .await;
        }
    });
}

/// Carries out `op` where the call is now; whether it found the call before `deadline`.
async fn find_and_apply(
    state: &AppState,
    cluster: &Arc<Cluster>,
    who: PrincipalId,
    socket: SocketRef,
    id: CallId,
    op: CallOp,
    deadline: Instant,
) -> bool {
    let here = |op| Forwarded::Call {
        who,
        socket,
        call: id,
        op,
    };
    loop {
        match cluster.find_call(id).await {
            Ok(Found::Nowhere) => return false,
            // (Taken over here an instant ago, and not in the registry yet: asked again.)
            Ok(Found::Here) if state.calls.has(id) => {
                apply_forwarded(state, here(op)).await;
                return true;
            }
            Ok(Found::Here) => {}
            Ok(Found::Taken(taken)) => {
                adopt(state, taken).await;
                apply_forwarded(state, here(op)).await;
                return true;
            }
            // Alive by its heartbeat: it may only be reconnecting to Redis, or it stopped
            // and its heartbeat has yet to run out.
            Ok(Found::At(holder)) => {
                if cluster
                    .forward_call_to(holder, who, socket, id, op.clone())
                    .await
                {
                    return true;
                }
            }
            Err(error) => tracing::warn!(%error, "asking Redis where a call is failed"),
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

fn refuse(state: &AppState, who: PrincipalId, socket: SocketRef) {
    state
        .delivery
        .send_to_socket(who, socket, &CallError::NoSuchCall.refusal());
}
