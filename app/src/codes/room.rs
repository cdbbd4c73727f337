//! A code room in the browser: makes or redeems the code (`/rendezvous`), keeps the tab's
//! place in the room in session storage (a reload rejoins), runs the handshake over the
//! mailbox, then carries the call engine's signals sealed, and decides who offers.
//!
//! Who offers: the creator (A), always. A new peer connection announces itself with a sealed
//! `join` carrying its generation; A offers only to a `join`ed B, and rebuilds its connection
//! if it had one; B rebuilds when A announces a new connection. Signals name both
//! generations, so a signal from or for a connection that is gone (a reload) is dropped.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

use super::{
    code::FullCode,
    handshake::{self, Handshake, Inner, Outcome, Payload, Saved},
    mailbox::{self, Event},
    page::{CodeUi, Shown, Stage},
    secure::Keys,
};
use crate::{
    calls::CallUi,
    protocol::IceServer,
    rendezvous::{AppId, Side},
    webrtc::{Link, Signal, Signaling},
};

const STORAGE_KEY: &str = "parlor.code";

/// This tab's place in a room, kept in session storage.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    app_id: String,
    creator: bool,
    sid: String,
    room_code: String,
    secret: String,
    expires_at: String,
    /// The last mailbox frame handled.
    handled: u64,
    saved: Saved,
}

impl Stored {
    fn side(&self) -> Side {
        if self.creator {
            Side::A
        } else {
            Side::B
        }
    }

    fn code(&self) -> FullCode {
        FullCode {
            room: self.room_code.clone(),
            secret: self.secret.clone(),
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

fn load() -> Option<Stored> {
    let text = storage()?.get_item(STORAGE_KEY).ok()??;
    serde_json::from_str(&text).ok()
}

fn store(stored: &Stored) {
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(stored)) {
        let _ = storage.set_item(STORAGE_KEY, &text);
    }
}

fn forget() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(STORAGE_KEY);
    }
}

/// The room this tab is in.
struct Live {
    stored: Stored,
    handshake: Handshake,
    keys: Option<Keys>,
    ui: CodeUi,
    call: CallUi,
    /// The creator shows its code until someone comes.
    waiting: bool,
    /// This side's peer connection's generation (0: none built yet), and the other side's.
    me: u32,
    peer: u32,
    /// Whether the engine has a peer connection (A builds one only for a joined B).
    connected: bool,
    /// The room's STUN/TURN servers, once known; a connection asked for before waits.
    ice: Option<Vec<IceServer>>,
    build_when_ready: Option<bool>,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

fn with<T>(f: impl FnOnce(&mut Live) -> T) -> Option<T> {
    LIVE.with_borrow_mut(|l| l.as_mut().map(f))
}

fn random_u32() -> u32 {
    // Never 0: that means "none".
    OsRng.next_u32().max(1)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    super::secure::hex(&buf)
}

/// The page opened: rejoin the tab's room, or read a link's code, or make a code.
pub fn mount(ui: CodeUi, create_now: bool) {
    let call = ui.call;
    Effect::new(move |_| {
        if reattach(ui) {
            // The call went on while the page was away (the call window is the layout's).
        } else if let Some(stored) = load() {
            start(ui, stored);
        } else if create_now {
            create(ui);
        } else if let Some((code, now)) = fragment_code() {
            ui.draft.set(code);
            if now {
                join(ui);
            }
        }
        if create_now {
            // A reload rejoins through `/code` instead of making another code.
            replace_url("/code");
        }
    });
    // The countdown.
    let ticker = set_interval_with_handle(
        move || ui.now.set(js_sys::Date::now()),
        Duration::from_secs(1),
    )
    .ok();
    ui.now.set(js_sys::Date::now());
    // The media connection's fate, for the server's metrics.
    Effect::new(move |_| match call.engine.link.get() {
        Link::Connected if LIVE.with_borrow(Option::is_some) => mailbox::telemetry("ice-connected"),
        Link::Failed if LIVE.with_borrow(Option::is_some) => mailbox::telemetry("ice-failed"),
        _ => {}
    });
    on_cleanup(move || {
        if let Some(ticker) = ticker {
            ticker.clear();
        }
    });
    // An unused code expires: the creator is told, and may make another.
    Effect::new(move |_| {
        let now = ui.now.get();
        let expired = ui.stage.with_untracked(|s| *s == Stage::Waiting)
            && ui
                .shown
                .with_untracked(|s| s.as_ref().is_some_and(|s| now >= s.expires_ms));
        if expired {
            leave();
            ui.over(
                "Your code expired before anyone used it. Make a new one.",
                true,
            );
        }
    });
}

/// The page came back to a room this tab is still in: it shows it again.
fn reattach(ui: CodeUi) -> bool {
    let shown = with(|l| {
        l.ui = ui;
        (l.waiting, l.keys.is_some(), l.stored.clone())
    });
    let Some((waiting, keyed, stored)) = shown else {
        return false;
    };
    if waiting {
        show_code(ui, &stored);
    }
    ui.stage.set(match (waiting, keyed) {
        (true, _) => Stage::Waiting,
        (false, true) => Stage::Call,
        (false, false) => Stage::Checking,
    });
    true
}

fn show_code(ui: CodeUi, stored: &Stored) {
    let code = stored.code();
    let origin = window().location().origin().unwrap_or_default();
    let link = code.link(&origin);
    ui.shown.set(Some(Shown {
        grouped: code.grouped(),
        qr: super::qr::path(&link),
        link,
        expires_ms: js_sys::Date::parse(&stored.expires_at),
    }));
}

/// A code in the address's fragment, taken out of the address bar at once: a shared link's
/// (`/code#4829137150`: filled in, Join to go) or the home page's field's (`#join-…`: joins).
fn fragment_code() -> Option<(String, bool)> {
    let hash = window().location().hash().ok()?;
    let hash = hash.trim_start_matches('#');
    if hash.is_empty() {
        return None;
    }
    replace_url("/code");
    let (code, now) = match hash.strip_prefix("join-") {
        Some(code) => (code, true),
        None => (hash, false),
    };
    // Shown as typed if it is not a code (joining says what is wrong with it).
    let code = FullCode::parse(code)
        .map(|c| c.grouped())
        .unwrap_or_else(|_| code.to_string());
    Some((code, now))
}

fn replace_url(path: &str) {
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(path));
    }
}

/// `POST` to the rendezvous API: the status, the JSON body, and `Retry-After` if any.
async fn post(path: &str, body: Option<String>) -> Result<(u16, Value, Option<u64>), JsValue> {
    let init = RequestInit::new();
    init.set_method("POST");
    let headers = web_sys::Headers::new()?;
    if let Some(body) = &body {
        headers.set("Content-Type", "application/json")?;
        init.set_body(&JsValue::from_str(body));
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(path, &init)?;
    let response: Response = JsFuture::from(window().fetch_with_request(&request))
        .await?
        .dyn_into()?;
    let retry = response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok());
    let text = JsFuture::from(response.text()?).await?;
    let json = text
        .as_string()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Ok((response.status(), json, retry))
}

fn too_many(retry: Option<u64>) -> String {
    format!(
        "Too many tries from your network. Try again in {} s.",
        retry.unwrap_or(60)
    )
}

/// Makes a code, shows it, and waits in its room.
pub fn create(ui: CodeUi) {
    ui.stage.set(Stage::Asking);
    leptos::task::spawn_local(async move {
        let answer = post("/rendezvous/code", None).await;
        let (status, body, retry) = match answer {
            Ok(answer) => answer,
            Err(_) => {
                return ui.over(
                    "Could not reach the server. Check your connection and try again.",
                    true,
                )
            }
        };
        match status {
            200 => {}
            429 => return ui.over(too_many(retry), true),
            _ => {
                return ui.over(
                    "Could not make a code right now. Try again in a moment.",
                    true,
                )
            }
        }
        let (Some(room_code), Some(app_id), Some(expires_at)) = (
            body["code"].as_str(),
            body["appID"].as_str(),
            body["expiresAt"].as_str(),
        ) else {
            return ui.over("The server's answer was not understood.", true);
        };
        let code = FullCode::new(room_code, OsRng.next_u32());
        enter(ui, true, app_id, code, expires_at);
    });
}

/// Takes this tab's new place in a room (kept for reloads) and enters it.
fn enter(ui: CodeUi, creator: bool, app_id: &str, code: FullCode, expires_at: &str) {
    let stored = Stored {
        app_id: app_id.to_string(),
        creator,
        sid: random_hex(16),
        room_code: code.room,
        secret: code.secret,
        expires_at: expires_at.to_string(),
        handled: 0,
        saved: Saved::default(),
    };
    store(&stored);
    start(ui, stored);
}

/// Redeems the typed code and joins its room.
pub fn join(ui: CodeUi) {
    let call = ui.call;
    let code = match FullCode::parse(&ui.draft.get_untracked()) {
        Ok(code) => code,
        Err(why) => return ui.join_error.set(Some(why.into())),
    };
    if call.busy() {
        return ui
            .join_error
            .set(Some("Hang up the call you are in first.".into()));
    }
    ui.stage.set(Stage::Asking);
    leptos::task::spawn_local(async move {
        let body = serde_json::json!({ "code": code.room }).to_string();
        let (status, body, retry) = match post("/rendezvous/redeem", Some(body)).await {
            Ok(answer) => answer,
            Err(_) => {
                ui.stage.set(Stage::Start);
                return ui.join_error.set(Some(
                    "Could not reach the server. Check your connection and try again.".into(),
                ));
            }
        };
        let refused = match status {
            200 => None,
            410 => Some(
                "This code does not work: it was used already, has expired, or was never made. \
                 Ask for a new one."
                    .to_string(),
            ),
            429 => Some(too_many(retry)),
            _ => Some("That code is not valid.".to_string()),
        };
        if let Some(why) = refused {
            ui.stage.set(Stage::Start);
            return ui.join_error.set(Some(why));
        }
        let (Some(app_id), Some(expires_at)) = (body["appID"].as_str(), body["expiresAt"].as_str())
        else {
            return ui.over("The server's answer was not understood.", true);
        };
        ui.draft.set(String::new());
        enter(ui, false, app_id, code, expires_at);
    });
}

/// Enters the room (again, after a reload): the socket, the handshake, the call if keyed.
fn start(ui: CodeUi, stored: Stored) {
    let Ok(room) = stored.app_id.parse::<AppId>() else {
        forget();
        return;
    };
    if stored.saved.failed {
        forget();
        return;
    }
    let side = stored.side();
    let code = stored.code();
    let mut handshake = Handshake::new(side, &stored.app_id, &code.digits(), &stored.saved);
    let keys = handshake.keys().cloned();
    let first = handshake.begin();
    let waiting = side == Side::A && keys.is_none();
    if waiting {
        show_code(ui, &stored);
        ui.stage.set(Stage::Waiting);
    } else {
        ui.stage.set(Stage::Checking);
    }
    let (sid, handled) = (stored.sid.clone(), stored.handled);
    let stored_app_id = stored.app_id.clone();
    LIVE.set(Some(Live {
        stored,
        handshake,
        keys: None,
        ui,
        call: ui.call,
        waiting,
        me: 0,
        peer: 0,
        connected: false,
        ice: None,
        build_when_ready: None,
    }));
    fetch_ice(stored_app_id);
    mailbox::open(room, side, sid, handled, Rc::new(on_event));
    if let Some(first) = first {
        mailbox::send(&first);
    }
    if let Some(keys) = keys {
        established(keys);
    }
}

/// Leaves the room for good (the code is spent).
pub fn leave() {
    mailbox::close();
    forget();
    if let Some(live) = LIVE.take() {
        live.call.engine.close();
    }
}

fn on_event(event: Event) {
    match event {
        Event::Deliver { seq, payload } => {
            if let Ok(payload) = serde_json::from_value::<Payload>(payload) {
                handle(payload);
            }
            with(|l| l.stored.handled = seq);
            save();
            mailbox::ack(seq);
        }
        Event::RoomFull => {
            let Some((ui, call, was_waiting, connected)) =
                with(|l| (l.ui, l.call, std::mem::take(&mut l.waiting), l.connected))
            else {
                return;
            };
            if was_waiting {
                ui.shown.set(None);
                ui.stage.set(Stage::Checking);
            }
            // The other side's socket came back: if media dropped too, renegotiate.
            if connected && !call.engine.media_connected() {
                call.engine.restart_ice();
            }
        }
        Event::Gone { busy } => {
            let Some(live) = LIVE.take() else { return };
            forget();
            live.call.end_external("Call ended");
            let message = if busy {
                "This code's call is open in another tab."
            } else {
                "This code's room has closed. Make a new code to meet again."
            };
            live.ui.over(message, true);
        }
        Event::Refused { code } => leptos::logging::warn!("the room refused a frame: {code}"),
        Event::Online | Event::Offline => {}
    }
}

fn save() {
    with(|l| {
        l.stored.saved = l.handshake.saved();
        store(&l.stored);
    });
}

fn handle(payload: Payload) {
    if let Payload::Sealed { .. } = payload {
        let inner = with(|l| l.keys.as_ref().and_then(|k| handshake::open(k, &payload))).flatten();
        if let Some(inner) = inner {
            on_inner(inner);
        }
        return;
    }
    let Some(outcomes) = with(|l| l.handshake.receive(payload)) else {
        return;
    };
    for outcome in outcomes {
        match outcome {
            Outcome::Send(payload) => mailbox::send(&payload),
            Outcome::Established(keys) => {
                save();
                established(keys);
            }
            Outcome::Wrong => wrong(),
        }
    }
}

fn wrong() {
    save();
    let Some(live) = LIVE.take() else { return };
    // Give the `wrong` frame a moment to leave before the socket closes.
    set_timeout(mailbox::close, Duration::from_millis(500));
    forget();
    let message = if live.stored.creator {
        "Someone tried to join with a wrong code. This code is spent: make a new one."
    } else {
        "Wrong code. It is spent now: ask the person who gave it to you for a new one."
    };
    live.ui.over(message, true);
}

/// Both sides hold the key: the call begins (or comes back after a reload).
fn established(keys: Keys) {
    let words = keys.words().join(" · ");
    let Some((ui, call, creator)) = with(|l| {
        l.keys = Some(keys);
        l.waiting = false;
        (l.ui, l.call, l.stored.creator)
    }) else {
        return;
    };
    ui.shown.set(None);
    ui.stage.set(Stage::Call);
    call.open_external("Your contact", Some(words), Rc::new(Channel), hang_up);
    if creator {
        // Whoever connected to the old connection of this side builds a new one.
        send_inner(&Inner::Join { gen: random_u32() });
    } else {
        build(false);
    }
}

/// Asks for the room's STUN/TURN servers; a connection asked for meanwhile is built then.
fn fetch_ice(app_id: String) {
    leptos::task::spawn_local(async move {
        let ice = match super::api::code_ice_servers(app_id).await {
            Ok(ice) => ice,
            Err(error) => {
                leptos::logging::warn!("no STUN/TURN servers for this room: {error}");
                Vec::new()
            }
        };
        let pending = with(|l| {
            l.ice = Some(ice);
            l.build_when_ready.take()
        })
        .flatten();
        if let Some(rebuild) = pending {
            build(rebuild);
        }
    });
}

/// A new peer connection for this side: B announces it; A offers on it.
fn build(rebuild: bool) {
    let Some(ready) = with(|l| {
        let Some(ice) = l.ice.clone() else {
            let earlier = l.build_when_ready.unwrap_or(false);
            l.build_when_ready = Some(earlier || rebuild);
            return None;
        };
        l.me = random_u32();
        l.connected = true;
        Some((l.call, l.stored.creator, ice))
    }) else {
        return;
    };
    let Some((call, creator, ice)) = ready else {
        return;
    };
    if rebuild {
        call.engine.close();
        call.engine.open(Rc::new(Channel), true);
    }
    call.engine.connect(creator, ice);
    if !creator {
        let gen = with(|l| l.me).unwrap_or_default();
        send_inner(&Inner::Join { gen });
    }
}

fn send_inner(inner: &Inner) {
    if let Some(sealed) = with(|l| l.keys.as_ref().map(|k| handshake::seal(k, inner))).flatten() {
        mailbox::send(&sealed);
    }
}

fn on_inner(inner: Inner) {
    let Some((creator, me, peer, connected, call)) =
        with(|l| (l.stored.creator, l.me, l.peer, l.connected, l.call))
    else {
        return;
    };
    match inner {
        Inner::Join { gen } if creator => {
            // B has a new connection: offer on a fresh one of ours.
            with(|l| l.peer = gen);
            build(connected);
        }
        Inner::Join { .. } => {
            // A has a new connection: ours served its old one.
            if peer != 0 {
                with(|l| l.peer = 0);
                build(true);
            }
        }
        Inner::Signal { signal, .. }
            if matches!(signal, Signal::Media { .. } | Signal::Recording { .. }) =>
        {
            call.engine.receive(signal);
        }
        Inner::Signal { from, to, signal } => {
            if to != me {
                return;
            }
            if !creator && matches!(signal, Signal::Offer { .. }) {
                with(|l| l.peer = from);
            } else if from != peer {
                return;
            }
            call.engine.receive(signal);
        }
        Inner::Bye => {
            let Some(live) = LIVE.take() else { return };
            mailbox::close();
            forget();
            live.call.end_external("They hung up");
            live.ui.over("The call ended: they hung up.", false);
        }
    }
}

/// This side hung up (the call window's button).
fn hang_up() {
    send_inner(&Inner::Bye);
    let Some(live) = LIVE.take() else { return };
    set_timeout(mailbox::close, Duration::from_millis(500));
    forget();
    live.ui.over("The call ended.", false);
}

/// The engine's signaling: sealed into the other side's mailbox.
struct Channel;

impl Signaling for Channel {
    fn send(&self, signal: &Signal) {
        let Some((me, peer)) = with(|l| (l.me, l.peer)) else {
            return;
        };
        send_inner(&Inner::Signal {
            from: me,
            to: peer,
            signal: signal.clone(),
        });
    }

    fn give_up(&self, why: &str) {
        let call = with(|l| l.call);
        hang_up();
        if let Some(call) = call {
            call.end_external(why);
        }
    }
}

/// Copies the code or the link.
pub fn copy(ui: CodeUi, what: &'static str) {
    let Some(shown) = ui.shown.get_untracked() else {
        return;
    };
    let text = if what == "link" {
        shown.link
    } else {
        shown.grouped
    };
    let promise = window().navigator().clipboard().write_text(&text);
    leptos::task::spawn_local(async move {
        if JsFuture::from(promise).await.is_ok() {
            ui.copied.set(Some(what));
        }
    });
}
