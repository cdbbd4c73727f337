//! Calls in the page: the call's state as signals ([`CallUi`], provided once by the layout),
//! the friends' way to call over the `/ws` socket (`call_*` messages of `crate::protocol`),
//! and the call window's components. Media, devices, chat and recording are the engine's
//! (`crate::webrtc`); this module only says who calls whom and shows it.
//!
//! Like the engine's browser half, the call window's panels and buttons are a wasm chunk of
//! their own ([`load_controls`]), loaded when a call begins or ahead of it for whoever is
//! signed in ([`CallUi::preload`]); the first page a visitor opens does not carry them.

mod chat;
mod quality;
mod settings;
mod window;

use std::rc::Rc;

use leptos::{prelude::*, wasm_split::SplitLoaderError};

pub use window::CallOverlay;

use crate::{
    protocol::{CallEndReason, ClientMsg, IceServer, ServerMsg},
    realtime::{use_realtime, Realtime},
    webrtc::{Engine, Link, Signal, Signaling},
    wire::{CallId, CallPeer, UserCard},
};

/// Where this tab's call stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Idle,
    /// This tab is calling; the other side rings.
    Calling,
    /// Someone calls this tab.
    Incoming,
    /// Answered (or opened without ringing): the engine connects; see [`Engine::link`].
    InCall,
    /// The call ended (the reason, in words), shown for a moment.
    Ended(String),
}

/// The panels that open over the video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Chat,
    Quality,
    Settings,
    /// Reporting a stranger.
    Report,
}

/// A stranger match this tab is in (the call window shows Next, Report and Block, and the
/// chat goes through the server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrangerMatch {
    /// The interests both gave.
    pub shared: Vec<String>,
    pub text_only: bool,
    /// Both are signed in: "Add as friend" is offered.
    pub can_befriend: bool,
    /// This side pressed "Add as friend".
    pub friend_asked: bool,
    /// What became of "Add as friend" (asked, the stranger asked, friends now).
    pub friend_note: Option<String>,
}

#[derive(Clone, Copy)]
pub struct CallUi {
    pub phase: RwSignal<Phase>,
    pub call_id: RwSignal<Option<CallId>>,
    pub peer: RwSignal<Option<CallPeer>>,
    pub video: RwSignal<bool>,
    pub engine: Engine,
    /// The open panel, if any.
    pub panel: RwSignal<Option<Panel>>,
    /// How many chat lines the user has seen (the rest are unread).
    pub chat_seen: RwSignal<usize>,
    /// The call window's panels and buttons, once their chunk has loaded.
    controls: RwSignal<Option<Controls>>,
    /// Whether the chunk was asked for (or has loaded).
    controls_asked: StoredValue<bool>,
    /// Words both sides see when the call is end-to-end verified (code calls).
    pub verification: RwSignal<Option<String>>,
    /// What hanging up does for a call another way to meet set up (not over the socket).
    /// (A plain `fn`: the state is also made on the server, where it must be `Send`.)
    external: StoredValue<Option<fn()>>,
    /// Set while the call is a stranger match.
    pub stranger: RwSignal<Option<StrangerMatch>>,
    /// What became of this tab's last report or block (shown in the report panel).
    pub report_note: RwSignal<Option<String>>,
    /// The `request_id` of this tab's `call_start` still waiting for its answer.
    request: RwSignal<Option<u32>>,
    last_request: StoredValue<u32>,
    /// The call this tab asked to carry on after its socket came back, until the server
    /// answers.
    resuming: StoredValue<Option<CallId>>,
    realtime: Realtime,
}

/// How often a tab asks again to carry on its call when the server has not answered: a call
/// whose server instance stopped waits for another instance to take it over.
const RESUME_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
/// How many times it asks again.
const RESUME_TRIES: u32 = 10;

pub fn use_call() -> CallUi {
    use_context::<CallUi>().expect("CallUi is provided by the layout")
}

/// Creates the call state and listens for call messages; the layout calls it once.
pub fn provide_call() -> CallUi {
    let realtime = use_realtime();
    let ui = CallUi {
        phase: RwSignal::new(Phase::Idle),
        call_id: RwSignal::new(None),
        peer: RwSignal::new(None),
        video: RwSignal::new(true),
        engine: Engine::new(),
        panel: RwSignal::new(None),
        chat_seen: RwSignal::new(0),
        controls: RwSignal::new(None),
        controls_asked: StoredValue::new(false),
        verification: RwSignal::new(None),
        external: StoredValue::new(None),
        stranger: RwSignal::new(None),
        report_note: RwSignal::new(None),
        request: RwSignal::new(None),
        last_request: StoredValue::new(0),
        resuming: StoredValue::new(None),
        realtime,
    };
    realtime.subscribe(move |message| ui.on_message(message));
    provide_context(ui);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| ui.engine.relay_only.set(remembered_relay_only()));
    ui
}

#[cfg(feature = "hydrate")]
const RELAY_KEY: &str = "parlor.relay_only";

/// The "Always relay calls" choice, kept in this browser.
#[cfg(feature = "hydrate")]
fn remembered_relay_only() -> bool {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(RELAY_KEY).ok().flatten())
        .is_some_and(|v| v == "1")
}

#[cfg(feature = "hydrate")]
fn remember_relay_only(on: bool) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.set_item(RELAY_KEY, if on { "1" } else { "0" });
    }
}

/// Renders the call window's panels and buttons.
type Controls = fn(CallUi) -> AnyView;

/// The split point of the call window's chunk: only this function reaches its panels and
/// buttons (`window::controls`), so they leave the main bundle (`cargo leptos build --split`).
#[leptos::wasm_split::wasm_split(call_controls, wasm_split_path = ::leptos::wasm_split, fallible)]
fn load_controls() -> Result<Controls, SplitLoaderError> {
    Ok(window::controls)
}

fn reason_text(reason: CallEndReason) -> &'static str {
    match reason {
        CallEndReason::Rejected => "Call declined",
        CallEndReason::Cancelled => "Call cancelled",
        CallEndReason::NoAnswer => "No answer",
        CallEndReason::Busy => "Busy: they are in another call",
        CallEndReason::HungUp => "Call ended",
        CallEndReason::AnsweredElsewhere => "Answered on another device",
        CallEndReason::ConnectionLost => "Connection lost",
        CallEndReason::NotAllowed => "You cannot call this person",
    }
}

/// The engine's signaling over the `/ws` socket, for calls the server set up (friends, and
/// calls opened without ringing).
struct SocketChannel {
    ui: CallUi,
}

impl Signaling for SocketChannel {
    fn send(&self, signal: &Signal) {
        if let (Some(call_id), Ok(data)) = (
            self.ui.call_id.get_untracked(),
            serde_json::to_string(signal),
        ) {
            self.ui.send(&ClientMsg::CallSignal { call_id, data });
        }
    }

    fn give_up(&self, why: &str) {
        self.ui.hang_up();
        self.ui.phase.set(Phase::Ended(why.into()));
    }

    fn media_lost(&self) {
        self.ui.realtime.probe();
    }
}

impl CallUi {
    /// Loads the call's code (engine and window) now, so the next call does not wait for it.
    pub fn preload(self) {
        Engine::preload();
        if self.controls_asked.get_value() {
            return;
        }
        self.controls_asked.set_value(true);
        leptos::task::spawn_local(async move {
            match load_controls().await {
                Ok(controls) => self.controls.set(Some(controls)),
                Err(error) => {
                    // The next call tries again.
                    leptos::logging::error!("the call window could not load: {error}");
                    self.controls_asked.set_value(false);
                }
            }
        });
    }

    pub fn busy(self) -> bool {
        !matches!(self.phase.get_untracked(), Phase::Idle | Phase::Ended(_))
    }

    /// Sends on the socket now; returns whether it went out.
    fn send(self, message: &ClientMsg) -> bool {
        self.realtime.send(message)
    }

    /// The other side's name.
    pub fn peer_name(self) -> String {
        self.peer
            .with(|p| p.as_ref().map(|p| p.name().to_string()).unwrap_or_default())
    }

    /// A new call: fresh state, and the engine shows this side's camera.
    fn begin(
        self,
        phase: Phase,
        call_id: Option<CallId>,
        peer: CallPeer,
        video: bool,
        channel: Rc<dyn Signaling>,
    ) {
        self.preload();
        self.phase.set(phase);
        self.call_id.set(call_id);
        self.peer.set(Some(peer));
        self.video.set(video);
        self.panel.set(None);
        self.chat_seen.set(0);
        self.engine.open(channel, video);
    }

    /// A call another way to meet set up and carries (a code room): in call at once, with
    /// `channel` for the engine's signals; `on_hang_up` runs when this side hangs up. The
    /// caller connects the engine. `verification`: words both sides see.
    pub fn open_external(
        self,
        label: &str,
        verification: Option<String>,
        channel: Rc<dyn Signaling>,
        on_hang_up: fn(),
    ) {
        let peer = CallPeer::Anonymous {
            label: label.to_string(),
        };
        self.begin(Phase::InCall, None, peer, true, channel);
        self.external.set_value(Some(on_hang_up));
        self.verification.set(verification);
    }

    /// The call [`CallUi::open_external`] opened ended from elsewhere (the other side hung
    /// up, the room closed), saying why.
    pub fn end_external(self, why: &str) {
        if self.external.with_value(Option::is_some) {
            self.end(why.to_string());
        }
    }

    fn socket_channel(self) -> Rc<dyn Signaling> {
        Rc::new(SocketChannel { ui: self })
    }

    /// Rings a friend.
    pub fn start(self, peer: UserCard, video: bool) {
        if self.busy() {
            return;
        }
        let request_id = self.last_request.get_value().wrapping_add(1);
        self.last_request.set_value(request_id);
        self.request.set(Some(request_id));
        let to = peer.id;
        let peer = CallPeer::Friend { user: peer };
        self.begin(Phase::Calling, None, peer, video, self.socket_channel());
        let sent = self.send(&ClientMsg::CallStart {
            request_id,
            to,
            video,
        });
        if !sent {
            // Nothing would ever answer it.
            self.end("Not connected right now: try again in a moment".into());
        }
    }

    pub fn accept(self) {
        let Some(call_id) = self.call_id.get_untracked() else {
            return;
        };
        self.engine.stop_ring();
        self.phase.set(Phase::InCall);
        self.engine.link.set(Link::Connecting);
        self.send(&ClientMsg::CallAccept { call_id });
    }

    /// Sends a chat line: through the server to a stranger (so a report can carry it),
    /// else straight to the other browser. Returns whether it went.
    pub fn say(self, text: &str) -> bool {
        if self.stranger.with_untracked(Option::is_none) {
            return self.engine.say(text);
        }
        match crate::strangers::check_chat(text) {
            Ok(text) => {
                let text = text.to_string();
                let sent = self.send(&ClientMsg::StrangerChat { text: text.clone() });
                if sent {
                    self.engine.chat.update(|c| c.push((true, text)));
                    self.engine.chat_error.set(None);
                }
                sent
            }
            Err(why) => {
                self.engine.chat_error.set(Some(why));
                false
            }
        }
    }

    /// Next stranger: ends this match and looks again at once.
    pub fn next_stranger(self) {
        if self.send(&ClientMsg::StrangerNext) {
            self.end_quietly();
        }
    }

    /// "Add as friend": once the stranger presses it too, the two are friends.
    pub fn befriend_stranger(self) {
        if self.send(&ClientMsg::StrangerFriend) {
            self.stranger.update(|s| {
                if let Some(s) = s {
                    s.friend_asked = true;
                    if s.friend_note.is_none() {
                        s.friend_note = Some(
                            "Friend request sent: if the stranger adds you too, you become friends."
                                .into(),
                        );
                    }
                }
            });
        }
    }

    /// Never meet this stranger again (the match ends; a new one is looked for).
    pub fn block_stranger(self) {
        if self.send(&ClientMsg::StrangerBlock) {
            self.end_quietly();
        }
    }

    /// A stranger match ends without the "call ended" notice: the strangers page says
    /// what happened and what comes next.
    fn end_quietly(self) {
        self.engine.close();
        self.request.set(None);
        self.call_id.set(None);
        self.panel.set(None);
        self.stranger.set(None);
        self.phase.set(Phase::Idle);
        #[cfg(feature = "hydrate")]
        self.engine.relay_only.set(remembered_relay_only());
    }

    /// Declines a ringing call, cancels one this tab is making, or hangs up.
    pub fn hang_up(self) {
        if self.stranger.with_untracked(Option::is_some) {
            self.send(&ClientMsg::StrangerStop);
            return self.end_quietly();
        }
        if let Some(call_id) = self.call_id.get_untracked() {
            let message = if self.phase.get_untracked() == Phase::Incoming {
                ClientMsg::CallReject { call_id }
            } else {
                ClientMsg::CallHangup { call_id }
            };
            self.send(&message);
        } else if let Some(hang_up) = self.external.get_value() {
            self.external.set_value(None);
            hang_up();
        }
        self.end("Call ended".into());
    }

    fn end(self, why: String) {
        // A recording in progress is saved by the engine, not lost.
        self.engine.close();
        self.resuming.set_value(None);
        self.request.set(None);
        self.call_id.set(None);
        self.external.set_value(None);
        self.verification.set(None);
        self.panel.set(None);
        self.phase.set(Phase::Ended(why));
        let phase = self.phase;
        set_timeout(
            move || {
                if matches!(phase.get_untracked(), Phase::Ended(_)) {
                    phase.set(Phase::Idle);
                }
            },
            std::time::Duration::from_secs(4),
        );
    }

    /// Asks to carry on call `call_id` on this socket, and again every [`RESUME_EVERY`] (up to
    /// `tries` more times) until the server answers.
    fn resume(self, call_id: CallId, tries: u32) {
        self.resuming.set_value(Some(call_id));
        self.send(&ClientMsg::CallResume { call_id });
        if tries == 0 {
            return;
        }
        set_timeout(
            move || {
                let waiting = self.resuming.get_value() == Some(call_id)
                    && self.ours(&call_id)
                    && self.phase.get_untracked() == Phase::InCall;
                if waiting {
                    self.resume(call_id, tries - 1);
                }
            },
            RESUME_EVERY,
        );
    }

    fn ours(self, call_id: &CallId) -> bool {
        self.call_id.get_untracked() == Some(*call_id)
    }

    /// Connects the engine, with the STUN/TURN servers the server gave this side of this
    /// call.
    fn connect(self, you_offer: bool, ice_servers: &[IceServer]) {
        self.engine.connect(you_offer, ice_servers.to_vec());
    }

    fn on_message(self, message: &ServerMsg) {
        match message {
            ServerMsg::CallRinging {
                request_id,
                call_id,
                peer,
                video,
            } => {
                if self.phase.get_untracked() == Phase::Calling
                    && self.request.get_untracked() == Some(*request_id)
                {
                    self.request.set(None);
                    self.call_id.set(Some(*call_id));
                    self.peer.set(Some(peer.clone()));
                    self.video.set(*video);
                } else {
                    // Cancelled before the server said it rings: cancel it there too.
                    self.send(&ClientMsg::CallHangup { call_id: *call_id });
                }
            }
            ServerMsg::CallRefused { request_id, reason }
                if self.request.get_untracked() == Some(*request_id) =>
            {
                self.end(reason_text(*reason).into());
            }
            ServerMsg::CallIncoming {
                call_id,
                from,
                video,
            } => {
                if self.busy() {
                    return;
                }
                // A preview of yourself before answering.
                let channel = self.socket_channel();
                self.begin(
                    Phase::Incoming,
                    Some(*call_id),
                    from.clone(),
                    *video,
                    channel,
                );
                self.engine.ring();
            }
            ServerMsg::CallAccepted {
                call_id,
                you_offer,
                ice_servers,
            } if self.ours(call_id) => {
                self.phase.set(Phase::InCall);
                self.connect(*you_offer, ice_servers);
            }
            ServerMsg::CallOpened {
                call_id,
                peer,
                video,
                you_offer,
                ice_servers,
            } => {
                if self.busy() {
                    self.send(&ClientMsg::CallHangup { call_id: *call_id });
                    return;
                }
                let stranger = self.stranger.get_untracked();
                if stranger.as_ref().is_some_and(|s| s.text_only) {
                    // Chat only: no camera, no peer connection.
                    self.preload();
                    self.phase.set(Phase::InCall);
                    self.call_id.set(Some(*call_id));
                    self.peer.set(Some(peer.clone()));
                    self.video.set(false);
                    self.chat_seen.set(0);
                    self.engine.chat_only();
                    self.panel.set(Some(Panel::Chat));
                    return;
                }
                if stranger.is_some() {
                    // Strangers never learn each other's address: this side uses the relay
                    // only too (the server drops any other candidate anyway).
                    self.engine.relay_only.set(true);
                }
                let channel = self.socket_channel();
                self.begin(Phase::InCall, Some(*call_id), peer.clone(), *video, channel);
                self.connect(*you_offer, ice_servers);
            }
            ServerMsg::StrangerMatched {
                shared,
                text_only,
                can_befriend,
            } => {
                self.report_note.set(None);
                self.stranger.set(Some(StrangerMatch {
                    shared: shared.clone(),
                    text_only: *text_only,
                    can_befriend: *can_befriend,
                    friend_asked: false,
                    friend_note: None,
                }));
            }
            ServerMsg::StrangerFriendAsked => self.stranger.update(|s| {
                if let Some(s) = s {
                    s.friend_note = Some(
                        "The stranger would like to be friends: press Add as friend to accept."
                            .into(),
                    );
                }
            }),
            ServerMsg::StrangerFriends { user, .. } => self.stranger.update(|s| {
                if let Some(s) = s {
                    s.friend_note = Some(format!(
                        "You are friends with {} now: find them under Friends.",
                        user.display_name
                    ));
                }
            }),
            ServerMsg::StrangerChat { text } if self.stranger.with_untracked(Option::is_some) => {
                self.engine.chat.update(|c| c.push((false, text.clone())));
            }
            ServerMsg::StrangerBanned { .. } if self.stranger.with_untracked(Option::is_some) => {
                // The strangers page says until when.
                self.end_quietly();
            }
            ServerMsg::StrangerReported => {
                self.report_note.set(Some(
                    "Report sent. Thank you: a moderator will look at it.".into(),
                ));
            }
            ServerMsg::CallEnded { call_id, .. }
                if self.ours(call_id) && self.stranger.with_untracked(Option::is_some) =>
            {
                self.end_quietly();
            }
            ServerMsg::CallSignal { call_id, data } if self.ours(call_id) => {
                match serde_json::from_str::<Signal>(data) {
                    Ok(signal) => self.engine.receive(signal),
                    Err(error) => leptos::logging::warn!("unreadable call signal: {error}"),
                }
            }
            ServerMsg::CallEnded { call_id, reason } if self.ours(call_id) => {
                self.end(reason_text(*reason).into());
            }
            ServerMsg::CallPeerConnection { call_id, connected } if self.ours(call_id) => {
                if *connected {
                    // The other side is back on a new socket: the offering side renegotiates.
                    self.engine.restart_ice();
                    if self.engine.media_connected() {
                        self.engine.link.set(Link::Connected);
                    }
                } else {
                    self.engine.link.set(Link::Reconnecting);
                }
            }
            ServerMsg::CallResumed {
                call_id,
                ice_servers,
            } if self.ours(call_id) => {
                self.resuming.set_value(None);
                self.engine.renew_ice_servers(ice_servers.clone());
                self.engine.restart_ice();
            }
            ServerMsg::Welcome { .. } => {
                // The socket came back: carry on the call on it.
                if let (Some(call_id), Phase::InCall) =
                    (self.call_id.get_untracked(), self.phase.get_untracked())
                {
                    self.resume(call_id, RESUME_TRIES);
                }
            }
            _ => {}
        }
    }
}
