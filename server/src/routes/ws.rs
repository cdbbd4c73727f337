//! `/ws`: the real-time channel. The session layer has already identified the request by its
//! cookie (a signed-in user or a guest) and the origin layer checked its Origin, so only
//! people from our pages get here. Each socket is a reader (this task) and a writer task fed by the hub's bounded
//! queue; the reader enforces the frame size, the message rate and the heartbeat, and hands
//! typed messages to `app::server::realtime`.

use std::time::Duration;

use tokio::time::Instant;

use super::{bucket::Bucket, client::ClientKey};
use app::error::AppError;
use app::{
    protocol::{close, ClientMsg, ErrorCode, ServerMsg, MAX_FRAME_BYTES},
    server::{
        auth::{Authenticated, Principal, SessionUser},
        hub::Outbound,
        metrics::Metrics,
        realtime::Session,
        state::AppState,
    },
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        State,
    },
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use tracing::Instrument;

/// How long one write may take before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// When a client over its socket cap may try again.
const CAP_RETRY_SECS: u64 = 10;
/// Malformed frames tolerated per connection before it is closed.
const MAX_BAD_FRAMES: u32 = 10;

pub async fn upgrade(
    ws: WebSocketUpgrade,
    Authenticated(principal): Authenticated,
    State(state): State<AppState>,
    ClientKey(address): ClientKey,
) -> Response {
    // One person (or one address) holding many sockets must not multiply what they can do.
    let slot = match state.socket_caps.acquire(principal.id(), address.clone()) {
        Ok(slot) => slot,
        Err(reached) => return cap_reached(&state, reached),
    };
    // And over all instances, with several.
    let shared = match &state.cluster {
        None => None,
        Some(cluster) => {
            let caps = &state.socket_caps;
            match cluster
                .take_socket(
                    principal.id(),
                    &address,
                    caps.per_principal(),
                    caps.per_address(),
                )
                .await
            {
                Ok(Ok(shared)) => Some(shared),
                Ok(Err(reached)) => return cap_reached(&state, reached),
                // This instance's own caps still hold meanwhile.
                Err(error) => {
                    tracing::warn!(%error, "counting a socket in Redis failed");
                    None
                }
            }
        }
    };
    // axum's upgrade task keeps room for this closure as long as the socket lives (and a
    // future for what it captured): one pointer, not the principal, address and state.
    let owned = Box::new((principal, address, state, slot, shared));
    small_frames(ws, MAX_FRAME_BYTES).on_upgrade(move |socket| {
        let (principal, address, state, slot, shared) = *owned;
        // Split before the session's future exists: the socket itself is a kilobyte (it
        // moves to the halves' shared allocation).
        let (sink, stream) = socket.split();
        // Mapped, not awaited in an async block, which would keep room for the session's
        // future twice.
        futures::FutureExt::map(run(sink, stream, principal, address, state), move |()| {
            drop((slot, shared))
        })
    })
}

/// The answer to a socket over its cap: 429 with when to try again.
fn cap_reached(state: &AppState, reached: app::server::socket_caps::CapReached) -> Response {
    tracing::info!(%reached, "socket refused");
    state.metrics.refused("socket_cap");
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(AppError::RateLimited(CAP_RETRY_SECS)),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(CAP_RETRY_SECS));
    response
}

/// Socket settings for small text frames of at most `max` bytes. tungstenite's defaults are
/// sized for bulk transfer (128 KiB read buffer per socket, 64 MiB messages); tens of
/// thousands of our sockets must fit.
pub(super) fn small_frames(ws: WebSocketUpgrade, max: usize) -> WebSocketUpgrade {
    ws.read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
}

/// Why the reader stopped.
enum End {
    /// The client closed, vanished or failed (why, for metrics); nothing more to send.
    Gone(&'static str),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// Opens the session (registered, counted, its welcome queued) and returns what serves it
/// until it ends. The setup is not part of the returned future: an async fn keeps
/// room for its arguments all its life, after they have moved on.
fn run(
    sink: futures::stream::SplitSink<WebSocket, Message>,
    stream: futures::stream::SplitStream<WebSocket>,
    principal: Principal,
    address: String,
    state: AppState,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let span = tracing::info_span!("socket", who = ?principal.id());
    let setup = span.enter();
    let who = principal.id();
    let (token_version, session_id) = principal
        .user()
        .map_or((0, ""), |u| (u.token_version, u.session_id.as_str()));
    let registration = state.hub.register(who, token_version, session_id);
    // Off the gauge when the session ends, however it ends.
    let open = state.metrics.socket_opened(match who {
        app::server::auth::PrincipalId::User(_) => "member",
        app::server::auth::PrincipalId::Guest(_) => "guest",
    });
    let conn_id = registration.socket.conn;
    let session = Session {
        principal,
        socket: registration.socket,
        address,
        state: state.clone(),
        reply: registration.reply.clone(),
        remote_calls: Default::default(),
        remote_strangers: Default::default(),
    };
    tracing::debug!(conn_id, "socket open");
    session.reply(&ServerMsg::Welcome {
        user_id: who.user(),
        heartbeat_ms: state.heartbeat.as_millis() as u64,
        // TURN credentials come with each call, for its two parties only.
        ice_servers: state.ice_servers.configured.clone(),
    });
    // A user's socket lives no longer than its session.
    let expires = session_deadline(session.principal.user());
    let (first, socket, closing, queue) = (
        registration.first,
        registration.socket,
        registration.close,
        registration.queue,
    );
    drop(setup);
    async move {
        let _open = open;
        // Friends hear of a first socket before it gets its welcome.
        if first && state.presence.local_change(who, true) {
            Box::pin(session.announce_online()).await;
        }
        let mut writer = tokio::spawn(write(sink, queue, state.heartbeat, state.metrics.clone()));
        // A session ended (sign out, sign out everywhere) between the upgrade and the moment
        // this socket could be reached was not closed by it: check once more now.
        let revoked = match session.principal.user() {
            Some(user) => !still_valid(&state, user).await,
            None => false,
        };
        let end = tokio::select! {
            end = async {
                if revoked {
                    return End::Close(close::SESSION_ENDED, "session_ended");
                }
                read(stream, &session, &state).await
            } => end,
            () = until(expires) => End::Close(close::SESSION_ENDED, "session_expired"),
            _ = &mut writer => End::Gone("write_failed"),
            () = closing.notified() => if state.hub.shutting_down() {
                End::Close(close::GOING_AWAY, "server_stopping")
            } else {
                End::Close(close::SESSION_ENDED, "session_ended")
            },
        };
        state.metrics.socket_closed(match end {
            End::Gone(reason) | End::Close(_, reason) => reason,
        });
        if let End::Close(code, reason) = end {
            tracing::debug!(conn_id, code, reason, "closing socket");
            // The writer sends the close frame after what is already queued, then stops.
            if session
                .reply
                .try_send(Outbound::Close(code, reason))
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
            }
        }
        writer.abort();
        let last = state.hub.unregister(who, socket);
        Box::pin(session.closed()).await;
        if last && state.presence.local_change(who, false) {
            Box::pin(session.announce_offline()).await;
        }
        tracing::debug!(conn_id, "socket closed");
    }
    .instrument(span)
}

/// When the user's session token expires (never for guests).
fn session_deadline(user: Option<&SessionUser>) -> Option<Instant> {
    user.map(|u| {
        let now = app::server::auth::session::now_secs();
        Instant::now() + Duration::from_secs(u.expires_at.saturating_sub(now))
    })
}

/// Sleeps until `deadline`, or forever without one. (Made where it is awaited, so the
/// session's future holds one timer, not a moved-from copy too.)
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether the user's session still stands: same token version, not signed out (the session
/// layer's check, read again).
async fn still_valid(state: &AppState, user: &SessionUser) -> bool {
    matches!(
        state.db.session_check(user.id, &user.session_id).await,
        Ok(Some((row, false))) if row.token_version == user.token_version
    )
}

/// Writes queued frames and a ping every heartbeat, each with a deadline (for room sockets
/// too).
pub(super) async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut queue: app::server::queue::Receiver<Outbound>,
    heartbeat: Duration,
    metrics: std::sync::Arc<Metrics>,
) {
    let first = first_ping(Instant::now(), heartbeat);
    let mut ping = tokio::time::interval_at(first, heartbeat);
    loop {
        let (message, kind) = tokio::select! {
            frame = queue.recv() => match frame {
                Some(Outbound::Text(frame)) => (Message::Text(frame.text), Some(frame.kind)),
                Some(Outbound::Close(code, reason)) => (Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })), None),
                None => return,
            },
            _ = ping.tick() => (Message::Ping(Default::default()), None),
        };
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !closing => {
                if let Some(kind) = kind {
                    metrics.frame_out(kind);
                }
            }
            _ => return,
        }
    }
}

/// Ping instants per heartbeat that sockets share (see [`first_ping`]).
const PING_SLOTS: u32 = 25;

/// When a socket's first ping goes: in the second half of its first heartbeat, at one of
/// [`PING_SLOTS`] instants per heartbeat shared by every socket. Sockets that connected
/// together (everyone reconnecting after a restart) then do not all ping at once every
/// heartbeat after (10 000 pings at once take the server ~70 ms of CPU, in which every other
/// frame waits), and the pings of one slot still go out together: one wake-up for hundreds
/// of them, where a ping at an instant of its own costs a wake-up each.
fn first_ping(now: Instant, heartbeat: Duration) -> Instant {
    use std::hash::{BuildHasher, Hasher};
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    // A fresh `RandomState` has new keys each time (no system call): 53 random bits.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    let at = now + heartbeat / 2 + heartbeat.mul_f64(fraction / 2.0);
    // Back to the slot it falls in: never after a full heartbeat.
    let slot = (heartbeat / PING_SLOTS).max(Duration::from_millis(1));
    let into_slot = (at - epoch).as_nanos() % slot.as_nanos();
    at - Duration::from_nanos(into_slot as u64)
}

async fn read(
    mut stream: futures::stream::SplitStream<WebSocket>,
    session: &Session,
    state: &AppState,
) -> End {
    let mut bucket = Bucket::new(state.socket_rate);
    let flooding = state.metrics.limit("socket_messages");
    // Frames dropped in a row for flooding; a client that keeps going after being told is
    // closed.
    let mut dropped = 0u32;
    let mut bad_frames = 0u32;
    loop {
        // Any frame (the browser's pongs included) proves the client is alive.
        let frame = match tokio::time::timeout(state.heartbeat * 2, stream.next()).await {
            Err(_) => {
                tracing::debug!("no frame for two heartbeats: dropping the socket");
                return End::Gone("heartbeat_timeout");
            }
            Ok(None) => return End::Gone("client_gone"),
            Ok(Some(Err(error))) => return read_error(error),
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => Utf8Bytes::from_static(""),
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return End::Gone("client_closed"),
        };
        if !bucket.take() {
            dropped += 1;
            flooding.inc();
            state.metrics.frame_in("dropped");
            // A dropped `send` stays in the browser's outbox: name it, so it goes again later.
            let client_id = match serde_json::from_str::<ClientMsg>(&text) {
                Ok(ClientMsg::Send { client_id, .. }) => Some(client_id),
                _ => None,
            };
            if dropped == 1 || client_id.is_some() {
                session.reply(&ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    message: "You are sending too fast; some messages were dropped.".into(),
                    client_id,
                });
            }
            if dropped > state.socket_rate.saturating_mul(3).max(10) {
                return End::Close(close::POLICY, "too_many_messages");
            }
            continue;
        }
        dropped = 0;
        match serde_json::from_str::<ClientMsg>(&text) {
            // Boxed: database work needs large futures, and an idle socket should not carry
            // that space all its life (it is allocated only while a message is handled).
            Ok(message) => {
                state.metrics.frame_in(message.kind());
                Box::pin(session.handle(message)).await
            }
            Err(error) => {
                state.metrics.frame_in("malformed");
                bad_frames += 1;
                tracing::debug!(%error, bad_frames, "malformed frame");
                if bad_frames > MAX_BAD_FRAMES {
                    return End::Close(close::POLICY, "too_many_malformed_frames");
                }
                session.reply(&error_frame(
                    ErrorCode::BadFrame,
                    "This frame is not a message the server understands.",
                ));
            }
        }
    }
}

fn error_frame(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id: None,
    }
}

/// A frame over the size limit is answered with 1009; other failures just end the socket.
fn read_error(error: axum::Error) -> End {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::Close(close::TOO_BIG, "frame_too_big"),
        _ => {
            tracing::debug!(error = %inner, "socket read failed");
            End::Gone("read_failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_pings_share_slots_spread_over_the_second_half_of_the_heartbeat() {
        let heartbeat = Duration::from_secs(25);
        let slot = heartbeat / PING_SLOTS;
        let start = Instant::now();
        let mut firsts = Vec::new();
        for n in 0..1000u32 {
            // Sockets connecting over 1.3 s, as after a restart.
            let now = start + Duration::from_millis(u64::from(n) * 13 / 10);
            let first = first_ping(now, heartbeat);
            assert!(first > now + heartbeat / 2 - slot && first <= now + heartbeat);
            firsts.push(first);
        }
        // On shared instants, whole slots apart ...
        let earliest = *firsts.iter().min().unwrap();
        let mut slots = std::collections::BTreeMap::<u128, u32>::new();
        for first in &firsts {
            let apart = (*first - earliest).as_nanos();
            assert_eq!(apart % slot.as_nanos(), 0);
            *slots.entry(apart / slot.as_nanos()).or_default() += 1;
        }
        // ... spread over the half heartbeat: no slot holds more than a fair share.
        assert!(slots.len() >= 12, "{slots:?}");
        assert!(slots.values().all(|&n| n < 200), "{slots:?}");
    }
}
