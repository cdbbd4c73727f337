//! The browser's end of a room's socket (`/rendezvous/ws`): connects as one side with this
//! tab's session id, says `hello` with the last frame it has handled, reconnects by itself
//! with backoff after a drop, queues what is sent while it is down, and acknowledges handled
//! frames (`delivered`, a few at a time). One room per tab.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use serde_json::{json, Value};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::rendezvous::{AppId, Side};

/// What the room's socket reports.
pub enum Event {
    /// A mailbox frame: handle it, then [`ack`] its `seq`.
    Deliver { seq: u64, payload: Value },
    /// Both sides are connected (again).
    RoomFull,
    /// The socket is up and said hello.
    Online,
    /// The socket dropped; it reconnects by itself.
    Offline,
    /// The room cannot be reached any more: `busy` when another tab holds this side.
    Gone { busy: bool },
    /// The server refused one of our frames.
    Refused { code: String },
}

type Handler = Rc<dyn Fn(Event)>;

struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

struct State {
    room: AppId,
    side: Side,
    sid: String,
    handler: Handler,
    socket: Option<Socket>,
    open: bool,
    /// Frames sent while the socket was down, in order.
    queued: Vec<String>,
    /// The last `seq` handled, and whether the server has been told.
    handled: u64,
    acked: u64,
    ack_timer: bool,
    /// Connection attempts since the last one that opened.
    failures: u32,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    STATE.with_borrow_mut(|s| s.as_mut().map(f))
}

/// Opens the room's socket as `side`; `handled` is the last `seq` already handled.
pub fn open(room: AppId, side: Side, sid: String, handled: u64, handler: Handler) {
    close();
    STATE.set(Some(State {
        room,
        side,
        sid,
        handler,
        socket: None,
        open: false,
        queued: Vec::new(),
        handled,
        acked: handled,
        ack_timer: false,
        failures: 0,
    }));
    connect();
}

/// Leaves the room: the socket closes and nothing reconnects.
pub fn close() {
    if let Some(state) = STATE.take() {
        if let Some(socket) = state.socket {
            drop_socket(&socket.ws);
        }
    }
}

/// Sends `payload` into the other side's mailbox (queued while the socket is down).
pub fn send(payload: &impl serde::Serialize) {
    let Some(to) = with(|s| s.side.other()) else {
        return;
    };
    let to = if to == Side::A { "A" } else { "B" };
    let frame = json!({"type": "send", "to": to, "payload": payload}).to_string();
    with(|s| match &s.socket {
        Some(socket) if s.open => {
            if socket.ws.send_with_str(&frame).is_err() {
                s.queued.push(frame);
            }
        }
        _ => s.queued.push(frame),
    });
}

/// Sends a telemetry event (`ice-connected`, `ice-failed`), if the socket is up.
pub fn telemetry(event: &str) {
    let frame = json!({"type": "telemetry", "event": event}).to_string();
    with(|s| {
        if let (Some(socket), true) = (&s.socket, s.open) {
            let _ = socket.ws.send_with_str(&frame);
        }
    });
}

/// Frame `seq` has been handled: the server may forget it (told within a moment, together
/// with any that follow).
pub fn ack(seq: u64) {
    let schedule = with(|s| {
        s.handled = s.handled.max(seq);
        !std::mem::replace(&mut s.ack_timer, true)
    });
    if schedule == Some(true) {
        set_timeout(flush_ack, Duration::from_millis(150));
    }
}

fn flush_ack() {
    with(|s| {
        s.ack_timer = false;
        if s.handled > s.acked && s.open {
            if let Some(socket) = &s.socket {
                let frame = json!({"type": "delivered", "upTo": s.handled}).to_string();
                if socket.ws.send_with_str(&frame).is_ok() {
                    s.acked = s.handled;
                }
            }
        }
    });
}

fn url(room: AppId, side: Side, sid: &str) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let side = if side == Side::A { "A" } else { "B" };
    format!(
        "{scheme}://{}/rendezvous/ws?appID={room}&side={side}&sid={sid}",
        location.host().unwrap_or_default()
    )
}

fn report(event: Event) {
    if let Some(handler) = with(|s| s.handler.clone()) {
        handler(event);
    }
}

fn drop_socket(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
    let _ = ws.close();
}

fn connect() {
    let Some(address) = with(|s| url(s.room, s.side, &s.sid)) else {
        return;
    };
    let Ok(ws) = WebSocket::new(&address) else {
        return retry();
    };
    let on_open = Closure::<dyn FnMut()>::new(opened);
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        if let Some(text) = event.data().as_string() {
            received(&text);
        }
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let this = ws.clone();
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        closed(&this, event.code(), &event.reason());
    });
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    with(|s| {
        s.socket = Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    });
}

/// Says hello (the server sends the mailbox from there), then what was queued.
fn opened() {
    with(|s| {
        let Some(socket) = &s.socket else { return };
        s.open = true;
        s.failures = 0;
        let hello = json!({"type": "hello", "sessionId": s.sid, "deliveredUpTo": s.handled});
        let _ = socket.ws.send_with_str(&hello.to_string());
        s.acked = s.handled;
        for frame in std::mem::take(&mut s.queued) {
            let _ = socket.ws.send_with_str(&frame);
        }
    });
    report(Event::Online);
}

fn received(text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match frame["type"].as_str() {
        Some("deliver") => {
            let Some(seq) = frame["seq"].as_u64() else {
                return;
            };
            // Already handled (cannot happen after a correct hello; harmless if it does).
            if with(|s| seq <= s.handled) != Some(false) {
                return;
            }
            report(Event::Deliver {
                seq,
                payload: frame["payload"].clone(),
            });
        }
        Some("room_full") => report(Event::RoomFull),
        Some("error") => report(Event::Refused {
            code: frame["code"].as_str().unwrap_or_default().to_string(),
        }),
        _ => {}
    }
}

fn closed(ws: &WebSocket, code: u16, reason: &str) {
    let current = with(|s| s.socket.as_ref().is_some_and(|c| &c.ws == ws)) == Some(true);
    if !current {
        return;
    }
    with(|s| {
        s.open = false;
        s.socket = None;
    });
    match (code, reason) {
        // Another tab holds this side.
        (1008, "side_busy") => stop_with(Some(Event::Gone { busy: true })),
        (1008, _) => stop_with(Some(Event::Gone { busy: false })),
        // This tab's newer socket took over (nothing to tell).
        (1000, "taken_over") => stop_with(None),
        _ => {
            report(Event::Offline);
            retry();
        }
    }
}

/// Forgets the room, then tells the handler why (if it should know).
fn stop_with(event: Option<Event>) {
    let handler = STATE.take().map(|s| s.handler);
    if let (Some(handler), Some(event)) = (handler, event) {
        handler(event);
    }
}

fn retry() {
    let Some(failures) = with(|s| {
        s.failures += 1;
        s.failures
    }) else {
        return;
    };
    // A room that expired refuses the upgrade (404), which a browser only sees as a failed
    // connection: after a while, stop and let the room say the call has ended.
    if failures > 8 {
        return stop_with(Some(Event::Gone { busy: false }));
    }
    let base = (500.0 * 2f64.powi(failures.min(5) as i32 - 1)).min(8_000.0);
    let delay = base * (0.5 + js_sys::Math::random() / 2.0);
    set_timeout(connect, Duration::from_millis(delay as u64));
}
