//! `/rendezvous`: the code API clients written for the seed's server speak, kept exactly:
//! `POST /rendezvous/code` mints, `POST /rendezvous/redeem` redeems once, and
//! `GET /rendezvous/ws?appID=…&side=A|B&sid=…` joins a side of the room (relay frames, the
//! mailbox, telemetry). No account needed. Rooms and mailboxes live in
//! `app::server::rendezvous`; this module speaks HTTP and WebSocket, and applies the
//! per-address limits. With several instances codes are claimed and redeemed in Redis, and a
//! socket for a room another instance holds is proxied to it (`app::server::cluster`).

use std::{collections::HashMap, time::Duration};

use app::{
    rendezvous::{rfc3339, valid_code, AppId, Minted, RedeemRequest, Redeemed, Side},
    server::{
        auth::rate_limit::Limiter,
        cluster::{Claim, Cluster},
        hub::{InstanceId, SocketRef},
        hub::{Outbound, QUEUE_DEPTH},
        queue,
        rendezvous::{expire_later, mailbox_full, RoomOp, Seat, SendError},
        state::AppState,
    },
};
use axum::{
    body::Bytes,
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;

use super::{
    bucket::Bucket,
    client::ClientKey,
    ws::{small_frames, write},
};

/// The largest frame a room socket accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Frames per second one room socket may send (bursts of three seconds' worth).
const FRAMES_PER_SEC: u32 = 50;

/// A JSON error body: `{"error": code, "message": words}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// The 429 answer when a limit refused (`Err(wait)`).
fn too_many(verdict: Result<(), Duration>) -> Option<Response> {
    verdict.err().map(|wait| {
        let secs = wait.as_secs().max(1);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!("Too many attempts from this address. Try again in {secs} s."),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    })
}

/// Counts an attempt against `limiter` (over all instances); the 429 answer when over it.
async fn limited(limiter: &dyn Limiter, key: &str) -> Option<Response> {
    too_many(limiter.hit_everywhere(key).await)
}

/// `POST /rendezvous/code` → `{"code","appID","expiresAt"}`.
pub async fn mint(State(state): State<AppState>, ClientKey(key): ClientKey) -> Response {
    if let Some(response) = limited(state.rendezvous_limits.mints.as_ref(), &key).await {
        return response;
    }
    let minted = match &state.cluster {
        None => state.rooms.mint().map(Ok),
        Some(cluster) => mint_shared(&state, cluster).await,
    };
    let (code, app_id, expires_at, timer) = match minted {
        Some(Ok(minted)) => minted,
        Some(Err(())) => return unavailable(),
        None => {
            tracing::warn!("rendezvous: too many live codes to mint another");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many codes are waiting right now. Try again in a minute.",
            );
        }
    };
    expire_later(&state, timer);
    state.metrics.code_event("minted");
    Json(Minted {
        code,
        app_id,
        expires_at: rfc3339(expires_at),
    })
    .into_response()
}

/// `503` when the shared store (Redis) does not answer.
fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Codes cannot be made or used right now. Try again in a minute.",
    )
}

type MintedRoom = (
    String,
    app::rendezvous::AppId,
    u64,
    app::server::rendezvous::ArmTimer,
);

/// Mints a room here and claims its code over all instances (another code if an instance
/// holds that one). `None` when too many codes are live; `Err` when Redis failed.
async fn mint_shared(state: &AppState, cluster: &Cluster) -> Option<Result<MintedRoom, ()>> {
    let rooms = &state.rooms;
    let most_live = rooms.most_live();
    for _ in 0..8 {
        let (code, room, expires_at, timer) = rooms.mint()?;
        let tag = rooms.turn_tag(room).unwrap_or_default();
        match cluster
            .claim_code(&code, room, tag, expires_at, rooms.ttl(), most_live)
            .await
        {
            Ok(Claim::Claimed) => return Some(Ok((code, room, expires_at, timer))),
            Ok(Claim::Taken) => rooms.discard(room),
            Ok(Claim::Full) => {
                rooms.discard(room);
                return None;
            }
            Err(error) => {
                rooms.discard(room);
                tracing::warn!(%error, "rendezvous: claiming a code in Redis failed");
                return Some(Err(()));
            }
        }
    }
    Some(Err(()))
}

/// `POST /rendezvous/redeem` with `{"code"}` → `{"appID","expiresAt"}` once, then `410`.
pub async fn redeem(
    State(state): State<AppState>,
    ClientKey(key): ClientKey,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the code as JSON: {\"code\": \"123456\"} with Content-Type: application/json.",
        );
    }
    let limits = &state.rendezvous_limits;
    if let Some(response) = limited(limits.redeems.as_ref(), &key).await {
        return response;
    }
    // Failed guesses are limited much further than redeems: a live code must be hopeless
    // to find by trying.
    if let Some(response) = too_many(limits.failed_redeems.check_everywhere(&key).await) {
        return response;
    }
    // An object with a string `code` (serde alone would also take `["123456"]`).
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(object @ Value::Object(_)) => serde_json::from_value::<RedeemRequest>(object).ok(),
        _ => None,
    };
    let request = match request {
        Some(request) => request,
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "The body must be a JSON object with a \"code\" string.",
            )
        }
    };
    if !valid_code(&request.code) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_code",
            "A code is 4 to 8 digits.",
        );
    }
    let redeemed = match &state.cluster {
        None => state.rooms.redeem(&request.code),
        Some(cluster) => match cluster.redeem_code(&request.code).await {
            Ok(Some((room, expires_at, home))) => {
                if home.home == state.hub.instance() {
                    state.rooms.redeemed_elsewhere(room);
                }
                Some((room, expires_at))
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "rendezvous: redeeming a code in Redis failed");
                return unavailable();
            }
        },
    };
    match redeemed {
        Some((app_id, expires_at)) => {
            state.metrics.code_event("redeemed");
            Json(Redeemed {
                app_id,
                expires_at: rfc3339(expires_at),
            })
            .into_response()
        }
        None => {
            state.metrics.code_event("failed");
            let _ = limits.failed_redeems.hit_everywhere(&key).await;
            error(
                StatusCode::GONE,
                "gone",
                "This code was already used, has expired, or never existed.",
            )
        }
    }
}

/// A session id as clients send it: 1 to 64 letters, digits, `-` or `_`.
fn valid_session(sid: &str) -> bool {
    (1..=64).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /rendezvous/ws?appID=<uuid>&side=A|B&sid=<session id>`.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ClientKey(key): ClientKey,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(room) = query.get("appID").and_then(|v| v.parse::<AppId>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_app_id",
            "appID must be the room's UUID.",
        );
    };
    let Some(side) = query.get("side").and_then(|v| Side::parse(v)) else {
        return error(StatusCode::BAD_REQUEST, "bad_side", "side must be A or B.");
    };
    let session = match query.get("sid") {
        Some(sid) if !valid_session(sid) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_sid",
                "sid must be 1 to 64 letters, digits, - or _.",
            )
        }
        sid => sid.cloned(),
    };
    if let Some(response) = limited(state.rendezvous_limits.upgrades.as_ref(), &key).await {
        return response;
    }
    // Held here, or by another live instance (the socket is proxied there).
    let home = if state.rooms.exists(room) {
        None
    } else {
        let elsewhere = match &state.cluster {
            Some(cluster) => cluster.room_home(room).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "rendezvous: looking up a room in Redis failed");
                None
            }),
            None => None,
        };
        match elsewhere {
            Some(home) if home.home != state.hub.instance() => Some(home.home),
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    "no_room",
                    "No such room: it was never made, or it has expired.",
                )
            }
        }
    };
    small_frames(ws, MAX_FRAME_BYTES).on_upgrade(move |socket| {
        // Split first: the future would keep room for the whole socket all its life.
        let (sink, stream) = socket.split();
        let cluster = state.cluster.clone();
        async move {
            match (home, cluster) {
                (Some(home), Some(cluster)) => {
                    run_proxied(sink, stream, state, cluster, home, room, side, session).await
                }
                _ => run(sink, stream, state, room, side, session).await,
            }
        }
    })
}

#[tracing::instrument(name = "room_socket", skip_all, fields(%room, ?side))]
async fn run(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    stream: futures::stream::SplitStream<WebSocket>,
    state: AppState,
    room: AppId,
    side: Side,
    session: Option<String>,
) {
    let (queue, outbound) = queue::queue(QUEUE_DEPTH);
    let seat = match state
        .rooms
        .join(room, side, session.as_deref(), queue.clone())
    {
        Ok(seat) => seat,
        Err(refused) => {
            let reason = refused.reason();
            state.metrics.refused("rendezvous_side");
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: 1008,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
            return;
        }
    };
    let _open = state.metrics.socket_opened("rendezvous");
    let mut writer = spawn_writer(sink, outbound, &state);
    let target = Target::Here(seat);
    let reason = tokio::select! {
        reason = read(stream, &state, &target, &queue) => reason,
        _ = &mut writer => "write_failed",
    };
    finish(&state, &queue, writer, reason).await;
    if let Some(timer) = state.rooms.leave(seat) {
        expire_later(&state, timer);
    }
}

/// A side's socket held here for a room another instance (`home`) holds: what it says goes
/// there, and what the room sends it comes back through Redis.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "room_socket", skip_all, fields(%room, ?side, proxied = true))]
async fn run_proxied(
    sink: futures::stream::SplitSink<WebSocket, Message>,
    stream: futures::stream::SplitStream<WebSocket>,
    state: AppState,
    cluster: Arc<Cluster>,
    home: InstanceId,
    room: app::rendezvous::AppId,
    side: Side,
    session: Option<String>,
) {
    let (queue, outbound) = queue::queue(QUEUE_DEPTH);
    let (conn, ended) = cluster.room_sockets().register(home, queue.clone());
    let socket = SocketRef {
        instance: state.hub.instance(),
        conn,
    };
    cluster.forward_room(home, socket, room, side, RoomOp::Join { session });
    let _open = state.metrics.socket_opened("rendezvous");
    let mut writer = spawn_writer(sink, outbound, &state);
    let target = Target::Elsewhere {
        cluster: &cluster,
        home,
        socket,
        room,
        side,
    };
    let reason = tokio::select! {
        reason = read(stream, &state, &target, &queue) => reason,
        _ = &mut writer => "write_failed",
        why = ended => why.unwrap_or("ended"),
    };
    finish(&state, &queue, writer, reason).await;
    cluster.room_sockets().unregister(conn);
    cluster.forward_room(home, socket, room, side, RoomOp::Leave);
}

/// The task writing a room socket's queue to it.
fn spawn_writer(
    sink: futures::stream::SplitSink<WebSocket, Message>,
    outbound: queue::Receiver<Outbound>,
    state: &AppState,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(write(
        sink,
        outbound,
        state.heartbeat,
        state.metrics.clone(),
    ))
}

/// A room socket's reading ended (`reason`): a frame too big is answered with its close
/// code before the writer stops; counted.
async fn finish(
    state: &AppState,
    queue: &queue::Sender<Outbound>,
    mut writer: tokio::task::JoinHandle<()>,
    reason: &'static str,
) {
    if reason == "frame_too_big" {
        let _ = queue.try_send(Outbound::Close(1009, "frame_too_big"));
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
    }
    writer.abort();
    state.metrics.socket_closed(reason);
}

/// Where a socket's side is decided: here, or at the room's home instance.
enum Target<'a> {
    Here(Seat),
    Elsewhere {
        cluster: &'a Cluster,
        home: InstanceId,
        socket: SocketRef,
        room: app::rendezvous::AppId,
        side: Side,
    },
}

impl Target<'_> {
    fn forward(&self, op: RoomOp) {
        if let Target::Elsewhere {
            cluster,
            home,
            socket,
            room,
            side,
        } = self
        {
            cluster.forward_room(*home, *socket, *room, *side, op);
        }
    }
}

/// An error frame for this socket: `{"type":"error","code":…,"message":…}`.
fn reply_error(queue: &queue::Sender<Outbound>, code: &str, message: &str) {
    let frame = app::server::rendezvous::error_frame(code, message);
    let _ = queue.try_send(Outbound::Text(frame));
}

/// Reads frames until the socket ends; why it ended.
async fn read(
    mut stream: futures::stream::SplitStream<WebSocket>,
    state: &AppState,
    target: &Target<'_>,
    queue: &queue::Sender<Outbound>,
) -> &'static str {
    let mut bucket = Bucket::new(FRAMES_PER_SEC);
    loop {
        let frame = match tokio::time::timeout(state.heartbeat * 2, stream.next()).await {
            Err(_) => return "heartbeat_timeout",
            Ok(None) => return "client_gone",
            Ok(Some(Err(error))) => {
                let inner = error.into_inner();
                return match inner.downcast_ref::<tungstenite::Error>() {
                    Some(tungstenite::Error::Capacity(_)) => "frame_too_big",
                    _ => "read_failed",
                };
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => {
                reply_error(queue, "bad_frame", "Frames are JSON text.");
                continue;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return "client_closed",
        };
        if !bucket.take() {
            reply_error(
                queue,
                "rate_limited",
                "Too many frames; this one was dropped.",
            );
            continue;
        }
        handle(state, target, queue, text);
    }
}

fn handle(state: &AppState, target: &Target<'_>, queue: &queue::Sender<Outbound>, text: Utf8Bytes) {
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(&text) else {
        reply_error(
            queue,
            "bad_frame",
            "A frame is a JSON object with a \"type\".",
        );
        return;
    };
    let rooms = &state.rooms;
    let number = |key: &str| frame.get(key).and_then(Value::as_u64);
    match frame.get("type").and_then(Value::as_str) {
        Some(kind @ ("offer" | "answer" | "ice" | "sender_ready")) => {
            let kind = match kind {
                "offer" => "offer",
                "answer" => "answer",
                "ice" => "ice",
                _ => "sender_ready",
            };
            state.metrics.frame_in(kind);
            match target {
                Target::Here(seat) => rooms.relay(*seat, text, kind),
                _ => target.forward(RoomOp::Relay {
                    kind: kind.into(),
                    text: text.to_string(),
                }),
            }
        }
        Some("send") => {
            state.metrics.frame_in("send");
            let to = frame
                .get("to")
                .and_then(Value::as_str)
                .and_then(Side::parse);
            let (Some(to), Some(payload)) = (to, frame.get("payload")) else {
                reply_error(
                    queue,
                    "bad_frame",
                    "send needs \"to\" (A or B) and a \"payload\".",
                );
                return;
            };
            let payload = payload.to_string();
            match target {
                Target::Here(seat) => {
                    if let Err(SendError::MailboxFull) = rooms.send(*seat, to, &payload) {
                        let _ = queue.try_send(Outbound::Text(mailbox_full()));
                    }
                }
                // The home answers a full mailbox itself.
                _ => target.forward(RoomOp::Send {
                    to: if to == Side::A { 'A' } else { 'B' },
                    payload,
                }),
            }
        }
        Some("delivered") => {
            state.metrics.frame_in("delivered");
            match number("upTo") {
                Some(up_to) => match target {
                    Target::Here(seat) => rooms.delivered(*seat, up_to),
                    _ => target.forward(RoomOp::Delivered { up_to }),
                },
                None => reply_error(queue, "bad_frame", "delivered needs \"upTo\" (a number)."),
            }
        }
        Some("hello") => {
            state.metrics.frame_in("hello");
            let up_to = number("deliveredUpTo").unwrap_or(0);
            match target {
                Target::Here(seat) => rooms.hello(*seat, up_to),
                Target::Elsewhere {
                    cluster, socket, ..
                } => {
                    cluster.room_sockets().greeted(socket.conn);
                    target.forward(RoomOp::Hello { up_to });
                }
            }
        }
        Some("telemetry") => {
            state.metrics.frame_in("telemetry");
            let event = frame.get("event").and_then(Value::as_str).unwrap_or("");
            state.metrics.telemetry(event);
        }
        _ => {
            state.metrics.frame_in("malformed");
            reply_error(
                queue,
                "unknown_type",
                "Known types: offer, answer, ice, sender_ready, send, delivered, hello, telemetry.",
            );
        }
    }
}
