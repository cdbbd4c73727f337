//! The browser's end of the real-time channel: one socket per tab while someone is signed
//! in, reconnecting by itself with backoff, noticing a dead connection by its own heartbeat
//! and the browser's offline/online events, catching up on missed messages after each
//! reconnection, and resending messages that were not confirmed (the server drops
//! duplicates by their client id). Pages subscribe to the server's messages and read the
//! connection status and unread count as signals.
//!
//! On the server (SSR) the context exists with its signals but never connects.

use leptos::prelude::*;

use crate::protocol::{ClientMsg, ServerMsg};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum ConnStatus {
    /// Not signed in, or not started yet (and always on the server).
    Idle,
    Connecting,
    Online,
    /// The connection dropped; the next attempt is scheduled.
    Reconnecting,
    /// The browser says it has no network.
    Offline,
}

/// A message this tab sent that the server has not confirmed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub conversation_id: i64,
    pub client_id: String,
    pub body: String,
    /// The server refused it, with this reason; it will not be resent.
    pub failed: Option<String>,
}

#[derive(Clone, Copy)]
pub struct Realtime {
    pub status: RwSignal<ConnStatus>,
    /// Unread messages over all conversations (shown in the title and the navigation).
    pub unread: RwSignal<i64>,
    /// The signed-in user this socket belongs to.
    pub me: RwSignal<Option<i64>>,
    pub outbox: RwSignal<Vec<Outgoing>>,
    /// Counts (re)connections: pages read it to reload what may have changed meanwhile.
    pub connections: RwSignal<u64>,
    /// Counts closes for an ended session (signed out everywhere, password changed).
    pub sessions_ended: RwSignal<u64>,
    /// Pages that need the socket whoever is there (a guest talking to strangers).
    holds: RwSignal<u32>,
}

impl Realtime {
    fn new() -> Self {
        Self {
            status: RwSignal::new(ConnStatus::Idle),
            unread: RwSignal::new(0),
            me: RwSignal::new(None),
            outbox: RwSignal::new(Vec::new()),
            connections: RwSignal::new(0),
            sessions_ended: RwSignal::new(0),
            holds: RwSignal::new(0),
        }
    }

    /// Connects while `user` is `Some` or a page holds the socket ([`Realtime::hold`]),
    /// disconnects otherwise.
    pub fn follow(self, user: Signal<Option<i64>>) {
        Effect::new(move |_| {
            let user = user.get();
            let held = self.holds.get() > 0;
            self.me.set(user);
            #[cfg(feature = "hydrate")]
            if user.is_some() || held {
                client::start(self)
            } else {
                client::stop()
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = held;
        });
    }

    /// Keeps the socket open for a guest until [`Realtime::release`] (the page that
    /// needed it is gone).
    pub fn hold(self) {
        self.holds.update(|n| *n += 1);
    }

    pub fn release(self) {
        self.holds.update(|n| *n = n.saturating_sub(1));
    }

    /// Calls `handler` with every message from the server until the calling component is
    /// unmounted.
    pub fn subscribe(self, handler: impl Fn(&ServerMsg) + 'static) {
        #[cfg(feature = "hydrate")]
        {
            let id = client::subscribe(std::rc::Rc::new(handler));
            on_cleanup(move || client::unsubscribe(id));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = handler;
    }

    /// Checks the connection now instead of at the next heartbeat (a call's media path just
    /// broke, so the network may have changed under it): unanswered within 1.5 s, it is
    /// replaced by a new one.
    pub fn probe(self) {
        #[cfg(feature = "hydrate")]
        client::probe();
    }

    /// Sends a message now if connected; returns whether it went out.
    pub fn send(self, message: &ClientMsg) -> bool {
        #[cfg(feature = "hydrate")]
        {
            client::send(message)
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = message;
            false
        }
    }

    /// Sends a chat message with a fresh client id; it stays in the outbox (and is resent
    /// after reconnecting) until the server confirms or refuses it.
    pub fn send_chat(self, conversation_id: i64, body: String) {
        let client_id = new_client_id();
        let message = ClientMsg::Send {
            conversation_id,
            client_id: client_id.clone(),
            body: body.clone(),
        };
        self.outbox.update(|o| {
            o.push(Outgoing {
                conversation_id,
                client_id,
                body,
                failed: None,
            })
        });
        self.send(&message);
    }

    /// Forgets a refused message the user dismissed.
    pub fn dismiss(self, client_id: &str) {
        self.outbox
            .update(|o| o.retain(|m| m.client_id != client_id));
    }

    /// Tells the client the newest message id a page has loaded, so a reconnection asks only
    /// for what came after.
    pub fn saw_message(self, id: i64) {
        #[cfg(feature = "hydrate")]
        client::saw_message(id);
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    }

    /// Reads the unread count again.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn refresh_unread(self) {
        // Guests have no messages.
        #[cfg(feature = "hydrate")]
        if self.me.get_untracked().is_some() {
            leptos::task::spawn_local(async move {
                if let Ok(n) = crate::messages::api::unread_total().await {
                    self.unread.set(n);
                }
            });
        }
    }
}

fn new_client_id() -> String {
    #[cfg(feature = "hydrate")]
    {
        let now = js_sys::Date::now() as u64;
        let random = (js_sys::Math::random() * 1e15) as u64;
        format!("{now:x}-{random:x}")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// Creates the context; the app root calls it once.
pub fn provide_realtime() -> Realtime {
    let realtime = Realtime::new();
    provide_context(realtime);
    realtime
}

pub fn use_realtime() -> Realtime {
    use_context::<Realtime>().expect("Realtime is provided by the app root")
}

#[cfg(feature = "hydrate")]
mod client {
    use std::{cell::RefCell, rc::Rc, time::Duration};

    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::{ConnStatus, Realtime};
    use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};

    type Handler = Rc<dyn Fn(&ServerMsg)>;

    struct Socket {
        ws: WebSocket,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_close: Closure<dyn FnMut(CloseEvent)>,
    }

    #[derive(Default)]
    struct State {
        realtime: Option<Realtime>,
        socket: Option<Socket>,
        wanted: bool,
        attempt: u32,
        heartbeat_ms: u64,
        last_frame: f64,
        ticker: Option<IntervalHandle>,
        retry: Option<TimeoutHandle>,
        listeners: Vec<(u64, Handler)>,
        next_listener: u64,
        newest_message: i64,
        /// The `after` of a `resume` not answered yet.
        resuming: Option<i64>,
        connected_before: bool,
        window_hooks: bool,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
        STATE.with_borrow_mut(f)
    }

    fn realtime() -> Option<Realtime> {
        with(|s| s.realtime)
    }

    fn set_status(status: ConnStatus) {
        if let Some(rt) = realtime() {
            rt.status.set(status);
        }
    }

    pub fn start(rt: Realtime) {
        let already = with(|s| {
            s.realtime = Some(rt);
            let already = s.wanted;
            s.wanted = true;
            already
        });
        hook_window();
        if !already {
            connect();
        }
    }

    pub fn stop() {
        with(|s| {
            s.wanted = false;
            s.connected_before = false;
            s.newest_message = 0;
            s.resuming = None;
            if let Some(t) = s.retry.take() {
                t.clear();
            }
        });
        drop_socket(1000);
        if let Some(rt) = realtime() {
            rt.status.set(ConnStatus::Idle);
            rt.outbox.set(Vec::new());
            rt.unread.set(0);
        }
    }

    pub fn subscribe(handler: Handler) -> u64 {
        with(|s| {
            s.next_listener += 1;
            s.listeners.push((s.next_listener, handler));
            s.next_listener
        })
    }

    pub fn unsubscribe(id: u64) {
        with(|s| s.listeners.retain(|(i, _)| *i != id));
    }

    pub fn saw_message(id: i64) {
        with(|s| s.newest_message = s.newest_message.max(id));
    }

    pub fn send(message: &ClientMsg) -> bool {
        let Ok(text) = serde_json::to_string(message) else {
            return false;
        };
        with(|s| match &s.socket {
            Some(socket) if socket.ws.ready_state() == WebSocket::OPEN => {
                socket.ws.send_with_str(&text).is_ok()
            }
            _ => false,
        })
    }

    fn url() -> String {
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        format!("{scheme}://{}/ws", location.host().unwrap_or_default())
    }

    fn online() -> bool {
        window().navigator().on_line()
    }

    fn connect() {
        if !with(|s| s.wanted) {
            return;
        }
        let ws = match WebSocket::new(&url()) {
            Ok(ws) => ws,
            Err(_) => return schedule_retry(),
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
            with(|s| s.last_frame = js_sys::Date::now());
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<ServerMsg>(&text) {
                Ok(message) => received(message),
                Err(error) => leptos::logging::warn!("unreadable server message: {error}"),
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let this = ws.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            closed(&this, event.code());
        });
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let reconnecting = with(|s| {
            s.socket = Some(Socket {
                ws,
                _on_message: on_message,
                _on_close: on_close,
            });
            s.connected_before
        });
        set_status(if reconnecting {
            ConnStatus::Reconnecting
        } else {
            ConnStatus::Connecting
        });
    }

    /// Closes the current socket (if any) without waiting for its close event.
    fn drop_socket(code: u16) {
        let socket = with(|s| {
            if let Some(t) = s.ticker.take() {
                t.clear();
            }
            s.socket.take()
        });
        if let Some(socket) = socket {
            socket.ws.set_onclose(None);
            socket.ws.set_onmessage(None);
            let _ = socket.ws.close_with_code(code);
        }
    }

    fn closed(ws: &WebSocket, code: u16) {
        let current = with(|s| s.socket.as_ref().is_some_and(|c| &c.ws == ws));
        if !current {
            return;
        }
        drop_socket(1000);
        if code == crate::protocol::close::SESSION_ENDED {
            // Signed out elsewhere, or the password changed: the layout finds out whether
            // this tab still has a session (and stops the client if not).
            if let Some(rt) = realtime() {
                rt.sessions_ended.update(|n| *n += 1);
            }
        }
        schedule_retry();
    }

    fn schedule_retry() {
        let (wanted, attempt) = with(|s| {
            s.attempt += 1;
            (s.wanted, s.attempt)
        });
        if !wanted {
            return;
        }
        // `navigator.onLine` is only a hint (a machine on a network without internet may say
        // false): keep trying, and say "offline" only while the browser says so.
        set_status(if online() {
            ConnStatus::Reconnecting
        } else {
            ConnStatus::Offline
        });
        // 0.5 s, 1 s, 2 s... up to 10 s, with jitter so a restarted server is not stormed.
        let base = (500.0 * 2f64.powi(attempt.min(6) as i32 - 1)).min(10_000.0);
        let delay = base * (0.5 + js_sys::Math::random() / 2.0);
        let handle = set_timeout_with_handle(
            || {
                with(|s| s.retry = None);
                connect();
            },
            Duration::from_millis(delay as u64),
        );
        with(|s| {
            if let Some(old) = s.retry.take() {
                old.clear();
            }
            s.retry = handle.ok();
        });
    }

    fn hook_window() {
        if with(|s| std::mem::replace(&mut s.window_hooks, true)) {
            return;
        }
        // Kept for the page's lifetime: one pair of listeners per tab.
        std::mem::forget(window_event_listener(leptos::ev::offline, |_| {
            if with(|s| s.wanted) {
                drop_socket(1000);
                set_status(ConnStatus::Offline);
            }
        }));
        std::mem::forget(window_event_listener(leptos::ev::online, |_| {
            let idle = with(|s| {
                if let Some(t) = s.retry.take() {
                    t.clear();
                }
                s.attempt = 0;
                s.wanted && s.socket.is_none()
            });
            if idle {
                connect();
            }
        }));
    }

    /// Sends an unconfirmed message again in a moment (the server dropped it for flooding,
    /// or could not store it right then); the server keeps one copy whatever happens.
    fn retry_later(rt: Realtime, client_id: String) {
        set_timeout(
            move || {
                let pending = rt.outbox.with_untracked(|o| {
                    o.iter()
                        .find(|p| p.client_id == client_id && p.failed.is_none())
                        .cloned()
                });
                if let Some(p) = pending {
                    send(&ClientMsg::Send {
                        conversation_id: p.conversation_id,
                        client_id: p.client_id,
                        body: p.body,
                    });
                }
            },
            Duration::from_millis(1500),
        );
    }

    /// Asks for the messages after `after`; remembered until the answer comes.
    fn resume(after: i64) {
        with(|s| s.resuming = Some(after));
        send(&ClientMsg::Resume { after });
    }

    /// A ping that must be answered within [`PROBE_WITHIN`], or the socket is replaced.
    pub fn probe() {
        let asked = js_sys::Date::now();
        let probed = with(|s| s.socket.as_ref().map(|c| c.ws.clone()));
        if probed.is_none() || !send(&ClientMsg::Ping) {
            return; // Not open: reconnecting is already under way.
        }
        set_timeout(
            move || {
                let (same, answered) = with(|s| {
                    (
                        s.socket.as_ref().map(|c| c.ws.clone()) == probed,
                        s.last_frame >= asked,
                    )
                });
                if same && !answered {
                    leptos::logging::warn!("the connection did not answer a probe; reconnecting");
                    drop_socket(4000);
                    with(|s| s.attempt = 0);
                    schedule_retry();
                }
            },
            PROBE_WITHIN,
        );
    }

    /// A pong comes back in milliseconds even on a slow network; a dead socket (its network
    /// gone) is found a second after the media stopped.
    const PROBE_WITHIN: Duration = Duration::from_millis(1000);

    /// Every heartbeat: ping, and give up on a connection silent for two intervals.
    fn start_ticker(heartbeat_ms: u64) {
        let handle = set_interval_with_handle(
            move || {
                let silent = js_sys::Date::now() - with(|s| s.last_frame);
                if silent > 2.0 * heartbeat_ms as f64 {
                    leptos::logging::warn!("the connection went silent; reconnecting");
                    drop_socket(4000);
                    schedule_retry();
                } else {
                    send(&ClientMsg::Ping);
                }
            },
            Duration::from_millis(heartbeat_ms),
        );
        with(|s| {
            if let Some(old) = s.ticker.take() {
                old.clear();
            }
            s.ticker = handle.ok();
        });
    }

    fn received(message: ServerMsg) {
        let Some(rt) = realtime() else {
            return;
        };
        let me = rt.me.get_untracked();
        match &message {
            // Its `ice_servers` are not kept: each call brings its own (with credentials).
            ServerMsg::Welcome { heartbeat_ms, .. } => {
                let (resume_after, reconnected) = with(|s| {
                    s.attempt = 0;
                    s.heartbeat_ms = *heartbeat_ms;
                    let reconnected = std::mem::replace(&mut s.connected_before, true);
                    (s.newest_message, reconnected)
                });
                start_ticker(*heartbeat_ms);
                rt.status.set(ConnStatus::Online);
                if reconnected && resume_after > 0 {
                    resume(resume_after);
                }
                // Whatever was not confirmed goes again; the server keeps one copy.
                for pending in rt.outbox.get_untracked() {
                    if pending.failed.is_none() {
                        send(&ClientMsg::Send {
                            conversation_id: pending.conversation_id,
                            client_id: pending.client_id,
                            body: pending.body,
                        });
                    }
                }
                rt.refresh_unread();
                rt.connections.update(|n| *n += 1);
            }
            ServerMsg::Backlog { messages, more } => {
                with(|s| s.resuming = None);
                for m in messages {
                    received(ServerMsg::Message { message: m.clone() });
                }
                if *more {
                    if let Some(last) = messages.last() {
                        resume(last.id);
                    }
                }
                return;
            }
            // Catching up page after page can meet the rate limit: ask again in a moment.
            ServerMsg::Error {
                client_id: None,
                code: ErrorCode::RateLimited | ErrorCode::Unavailable,
                ..
            } => {
                if let Some(after) = with(|s| s.resuming) {
                    set_timeout(
                        move || {
                            if with(|s| s.resuming) == Some(after) {
                                resume(after);
                            }
                        },
                        Duration::from_millis(1500),
                    );
                }
            }
            ServerMsg::Message { message: m } => {
                saw_message(m.id);
                if Some(m.sender_id) == me {
                    rt.outbox
                        .update(|o| o.retain(|p| p.client_id != m.client_id));
                } else {
                    send(&ClientMsg::Receipt {
                        conversation_id: m.conversation_id,
                        delivered_up_to: m.id,
                        read_up_to: 0,
                    });
                    rt.refresh_unread();
                }
            }
            ServerMsg::Receipt { user_id, .. } if Some(*user_id) == me => rt.refresh_unread(),
            ServerMsg::Error {
                client_id: Some(id),
                code: ErrorCode::RateLimited | ErrorCode::Unavailable,
                ..
            } => retry_later(rt, id.clone()),
            ServerMsg::Error {
                message: reason,
                client_id: Some(id),
                ..
            } => {
                rt.outbox.update(|o| {
                    if let Some(p) = o.iter_mut().find(|p| &p.client_id == id) {
                        p.failed = Some(reason.clone());
                    }
                });
            }
            _ => {}
        }
        let listeners: Vec<Handler> =
            with(|s| s.listeners.iter().map(|(_, h)| h.clone()).collect());
        for listener in listeners {
            listener(&message);
        }
    }
}
