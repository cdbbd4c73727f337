//! Calls in the browser: the incoming-call prompt with its ring, the call window with local
//! and remote video, and the WebRTC peer connection behind it, driven through web-sys. The
//! server only rings and relays signaling (`crate::protocol`, `call_*` messages); media goes
//! peer to peer. Browser objects are not `Send`, so they live in a thread-local beside the
//! signals that describe the call.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    protocol::{CallEndReason, ClientMsg, ServerMsg},
    realtime::use_realtime,
    wire::{CallId, CallPeer, UserCard},
};

/// Where this tab's call stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum Phase {
    Idle,
    /// This tab is calling; the other side rings.
    Calling,
    /// Someone calls this tab.
    Incoming,
    Connecting,
    Connected,
    /// The connection dropped; ICE is being restarted.
    Reconnecting,
    /// The media connection failed; the caller's side is renegotiating with fresh
    /// candidates (the call ends if the other side does not come back).
    Failed,
    /// The call ended (the reason, in words), shown for a moment.
    Ended(String),
}

/// What the two browsers tell each other through the server's `call_signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        mid: Option<String>,
        index: Option<u16>,
    },
    /// The sender's microphone and camera state, for the other side to show.
    Media {
        muted: bool,
        camera_off: bool,
    },
    /// The sender started or stopped recording the call.
    Recording {
        on: bool,
    },
    /// Screen sharing runs on its own peer connection, so camera and screen are
    /// independent: the sharer offers, the viewer answers.
    ScreenOffer {
        sdp: String,
    },
    ScreenAnswer {
        sdp: String,
    },
    ScreenCandidate {
        candidate: String,
        mid: Option<String>,
        index: Option<u16>,
        /// For the sharer's connection (from the viewer), or the viewer's.
        to_sharer: bool,
    },
    ScreenStopped,
}

/// The quality panel's figures, read from `getStats` every second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quality {
    pub rtt_ms: Option<f64>,
    pub kbps_in: Option<f64>,
    pub kbps_out: Option<f64>,
    pub loss_percent: Option<f64>,
    pub resolution: Option<(u32, u32)>,
}

/// A camera or microphone the browser offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `videoinput` or `audioinput`.
    pub kind: String,
    pub id: String,
    pub label: String,
}

#[derive(Clone, Copy)]
pub struct CallUi {
    pub phase: RwSignal<Phase>,
    pub call_id: RwSignal<Option<CallId>>,
    /// The `request_id` of this tab's `call_start` waiting for its answer.
    pub request: RwSignal<Option<u32>>,
    pub peer: RwSignal<Option<CallPeer>>,
    pub video: RwSignal<bool>,
    pub muted: RwSignal<bool>,
    pub camera_off: RwSignal<bool>,
    pub peer_muted: RwSignal<bool>,
    pub peer_camera_off: RwSignal<bool>,
    /// In-call chat over the data channel (never stored): `(mine, text)`.
    pub chat: RwSignal<Vec<(bool, String)>>,
    pub chat_error: RwSignal<Option<String>>,
    /// When this tab started recording (ms since the epoch), while it records.
    pub recording_since: RwSignal<Option<f64>>,
    /// Seconds recorded, ticking while recording.
    pub recorded_secs: RwSignal<u64>,
    pub peer_recording: RwSignal<bool>,
    pub sharing: RwSignal<bool>,
    pub peer_sharing: RwSignal<bool>,
    pub quality: RwSignal<Quality>,
    pub devices: RwSignal<Vec<Device>>,
    /// The devices in use: `(camera id, microphone id)`.
    pub camera: RwSignal<Option<String>>,
    pub microphone: RwSignal<Option<String>>,
}

/// The longest in-call chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 1000;

pub fn use_call() -> CallUi {
    use_context::<CallUi>().expect("CallUi is provided by the layout")
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

impl CallUi {
    fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Idle),
            call_id: RwSignal::new(None),
            request: RwSignal::new(None),
            peer: RwSignal::new(None),
            video: RwSignal::new(true),
            muted: RwSignal::new(false),
            camera_off: RwSignal::new(false),
            peer_muted: RwSignal::new(false),
            peer_camera_off: RwSignal::new(false),
            chat: RwSignal::new(Vec::new()),
            chat_error: RwSignal::new(None),
            recording_since: RwSignal::new(None),
            recorded_secs: RwSignal::new(0),
            peer_recording: RwSignal::new(false),
            sharing: RwSignal::new(false),
            peer_sharing: RwSignal::new(false),
            quality: RwSignal::new(Quality::default()),
            devices: RwSignal::new(Vec::new()),
            camera: RwSignal::new(None),
            microphone: RwSignal::new(None),
        }
    }

    pub fn busy(self) -> bool {
        !matches!(self.phase.get_untracked(), Phase::Idle | Phase::Ended(_))
    }

    /// Rings a friend.
    pub fn start(self, peer: UserCard, video: bool) {
        if self.busy() {
            return;
        }
        let to = peer.id;
        self.reset(Phase::Calling);
        self.peer.set(Some(CallPeer::Friend { user: peer }));
        self.video.set(video);
        thread_local! {
            static NEXT_REQUEST: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
        }
        let request_id = NEXT_REQUEST.with(|n| n.replace(n.get().wrapping_add(1)));
        self.request.set(Some(request_id));
        use_realtime_send(&ClientMsg::CallStart {
            request_id,
            to,
            video,
        });
        #[cfg(feature = "hydrate")]
        media::prepare(self);
    }

    fn reset(self, phase: Phase) {
        self.phase.set(phase);
        self.call_id.set(None);
        self.request.set(None);
        self.muted.set(false);
        self.camera_off.set(false);
        self.peer_muted.set(false);
        self.peer_camera_off.set(false);
        self.chat.set(Vec::new());
        self.chat_error.set(None);
        self.recording_since.set(None);
        self.peer_recording.set(false);
        self.sharing.set(false);
        self.peer_sharing.set(false);
        self.quality.set(Quality::default());
    }

    /// Uses another camera (`videoinput`) or microphone (`audioinput`) in place of the
    /// current one, without renegotiating the call.
    pub fn switch_device(self, kind: &'static str, id: String) {
        #[cfg(feature = "hydrate")]
        media::switch_device(self, kind, id);
        #[cfg(not(feature = "hydrate"))]
        let _ = (kind, id);
    }

    /// Starts or stops sharing the screen.
    pub fn toggle_screen(self) {
        #[cfg(feature = "hydrate")]
        {
            if self.sharing.get_untracked() {
                media::stop_screen(self);
            } else {
                media::share_screen(self);
            }
        }
    }

    /// Starts or stops recording the call to a WebM file (downloaded when stopped).
    pub fn toggle_recording(self) {
        #[cfg(feature = "hydrate")]
        {
            if self.recording_since.get_untracked().is_some() {
                media::stop_recording(self);
            } else if let Err(error) = media::start_recording(self) {
                leptos::logging::warn!("recording failed: {error:?}");
                self.chat_error
                    .set(Some("This browser cannot record the call.".into()));
            }
        }
    }

    /// Sends a chat line to the other side, peer to peer. Returns whether it went.
    pub fn say(self, text: &str) -> bool {
        let text = text.trim();
        if text.is_empty() {
            return false;
        }
        if text.chars().count() > MAX_CHAT_CHARS {
            self.chat_error.set(Some(format!(
                "A chat message can have at most {MAX_CHAT_CHARS} characters."
            )));
            return false;
        }
        #[cfg(feature = "hydrate")]
        let sent = media::say(text);
        #[cfg(not(feature = "hydrate"))]
        let sent = false;
        if sent {
            self.chat.update(|c| c.push((true, text.to_string())));
            self.chat_error.set(None);
        } else {
            self.chat_error
                .set(Some("The chat is not connected yet.".into()));
        }
        sent
    }

    pub fn accept(self) {
        let Some(call_id) = self.call_id.get_untracked() else {
            return;
        };
        #[cfg(feature = "hydrate")]
        media::stop_ring();
        self.phase.set(Phase::Connecting);
        use_realtime_send(&ClientMsg::CallAccept { call_id });
        #[cfg(feature = "hydrate")]
        media::prepare(self);
    }

    /// Declines a ringing call, cancels one this tab is making, or hangs up.
    pub fn hang_up(self) {
        if let Some(call_id) = self.call_id.get_untracked() {
            let message = if self.phase.get_untracked() == Phase::Incoming {
                ClientMsg::CallReject { call_id }
            } else {
                ClientMsg::CallHangup { call_id }
            };
            use_realtime_send(&message);
        }
        self.end("Call ended".into());
    }

    fn end(self, why: String) {
        // A recording in progress is saved, not lost.
        #[cfg(feature = "hydrate")]
        if self.recording_since.get_untracked().is_some() {
            media::stop_recording(self);
        }
        #[cfg(feature = "hydrate")]
        media::teardown();
        self.call_id.set(None);
        self.request.set(None);
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

    pub fn toggle_mute(self) {
        self.muted.update(|m| *m = !*m);
        #[cfg(feature = "hydrate")]
        media::apply_local_state(self);
    }

    pub fn toggle_camera(self) {
        self.camera_off.update(|c| *c = !*c);
        #[cfg(feature = "hydrate")]
        media::apply_local_state(self);
    }

    fn on_message(self, message: &ServerMsg) {
        match message {
            ServerMsg::CallRinging {
                call_id,
                request_id,
                ..
            } => {
                if self.phase.get_untracked() == Phase::Calling
                    && self.request.get_untracked() == Some(*request_id)
                {
                    self.request.set(None);
                    self.call_id.set(Some(*call_id));
                } else {
                    // Cancelled before the server said it rings: cancel it there too.
                    use_realtime_send(&ClientMsg::CallHangup { call_id: *call_id });
                }
            }
            ServerMsg::CallIncoming {
                call_id,
                from,
                video,
            } => {
                if self.busy() {
                    return;
                }
                self.reset(Phase::Incoming);
                self.call_id.set(Some(*call_id));
                self.peer.set(Some(from.clone()));
                self.video.set(*video);
                #[cfg(feature = "hydrate")]
                {
                    media::ring();
                    // A preview of yourself before answering.
                    media::prepare(self);
                }
            }
            ServerMsg::CallAccepted { call_id, you_offer }
                if self.call_id.get_untracked() == Some(*call_id) =>
            {
                self.phase.set(Phase::Connecting);
                #[cfg(feature = "hydrate")]
                media::connect(self, *you_offer);
                #[cfg(not(feature = "hydrate"))]
                let _ = you_offer;
            }
            ServerMsg::CallSignal { call_id, data }
                if self.call_id.get_untracked() == Some(*call_id) =>
            {
                match serde_json::from_str::<Signal>(data) {
                    Ok(Signal::Media { muted, camera_off }) => {
                        self.peer_muted.set(muted);
                        self.peer_camera_off.set(camera_off);
                    }
                    Ok(Signal::Recording { on }) => self.peer_recording.set(on),
                    #[cfg(feature = "hydrate")]
                    Ok(signal) => media::signal(self, signal),
                    #[cfg(not(feature = "hydrate"))]
                    Ok(_) => {}
                    Err(error) => leptos::logging::warn!("unreadable call signal: {error}"),
                }
            }
            ServerMsg::CallEnded { call_id, reason }
                if self.call_id.get_untracked() == Some(*call_id) =>
            {
                self.end(reason_text(*reason).into());
            }
            ServerMsg::CallRefused { request_id, reason }
                if self.request.get_untracked() == Some(*request_id) =>
            {
                self.request.set(None);
                self.end(reason_text(*reason).into());
            }
            ServerMsg::CallPeerConnection { call_id, connected }
                if self.call_id.get_untracked() == Some(*call_id) =>
            {
                if *connected {
                    // The other side is back on a new socket: the caller renegotiates.
                    #[cfg(feature = "hydrate")]
                    {
                        media::restart_ice(self);
                        if media::media_connected() {
                            self.phase.set(Phase::Connected);
                        }
                    }
                } else {
                    self.phase.set(Phase::Reconnecting);
                }
            }
            ServerMsg::CallResumed { .. } => {
                #[cfg(feature = "hydrate")]
                media::restart_ice(self);
            }
            ServerMsg::Welcome { .. } => {
                // The socket came back: carry on the call on it.
                if let (Some(call_id), true) = (
                    self.call_id.get_untracked(),
                    matches!(
                        self.phase.get_untracked(),
                        Phase::Connected | Phase::Connecting | Phase::Reconnecting | Phase::Failed
                    ),
                ) {
                    use_realtime_send(&ClientMsg::CallResume { call_id });
                }
            }
            _ => {}
        }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn send_signal(self, signal: &Signal) {
        if let (Some(call_id), Ok(data)) =
            (self.call_id.get_untracked(), serde_json::to_string(signal))
        {
            use_realtime_send(&ClientMsg::CallSignal { call_id, data });
        }
    }
}

fn use_realtime_send(message: &ClientMsg) {
    if let Some(rt) = use_context::<crate::realtime::Realtime>() {
        rt.send(message);
    } else {
        REALTIME.with(|r| {
            if let Some(rt) = r.get() {
                rt.send(message);
            }
        });
    }
}

thread_local! {
    /// The realtime handle for callbacks that run outside the component tree (WebRTC events).
    static REALTIME: std::cell::Cell<Option<crate::realtime::Realtime>> = const { std::cell::Cell::new(None) };
}

/// Creates the call state and listens for call messages; the layout calls it once.
pub fn provide_call() -> CallUi {
    let ui = CallUi::new();
    let realtime = use_realtime();
    REALTIME.with(|r| r.set(Some(realtime)));
    realtime.subscribe(move |message| ui.on_message(message));
    provide_context(ui);
    ui
}

/// The incoming-call prompt and the call window, over whatever page is open.
#[component]
pub fn CallOverlay() -> impl IntoView {
    let ui = use_call();
    let peer_name = move || {
        ui.peer
            .with(|p| p.as_ref().map(|p| p.name().to_string()).unwrap_or_default())
    };
    let status = move || match ui.phase.get() {
        Phase::Idle => String::new(),
        Phase::Calling => format!("Calling {}…", peer_name()),
        Phase::Incoming => format!("{} is calling you", peer_name()),
        Phase::Connecting => "Connecting…".into(),
        Phase::Connected => "Connected".into(),
        Phase::Reconnecting => "Reconnecting…".into(),
        Phase::Failed => "Connection failed. Trying again…".into(),
        Phase::Ended(why) => why,
    };
    let in_call = move || {
        matches!(
            ui.phase.get(),
            Phase::Calling
                | Phase::Incoming
                | Phase::Connecting
                | Phase::Connected
                | Phase::Reconnecting
                | Phase::Failed
        )
    };
    // Before an answer there is only yourself to see.
    let preview = move || matches!(ui.phase.get(), Phase::Calling | Phase::Incoming);
    view! {
        <Show when=move || ui.phase.get() != Phase::Idle>
            <section
                class="call-overlay"
                class:incoming=move || ui.phase.get() == Phase::Incoming
                role=move || if ui.phase.get() == Phase::Incoming { "alertdialog" } else { "dialog" }
                aria-label="Call"
                data-testid="call"
            >
                <p class="call-status" role="status" data-testid="call-status">{status}</p>
                <div class="call-videos" class:hidden=move || !in_call() class:preview=preview>
                    <video id="remote-video" class="remote-video" data-testid="remote-video" autoplay=true playsinline=true></video>
                    <video id="local-video" class="local-video" data-testid="local-video" autoplay=true playsinline=true muted=true></video>
                    <p class="peer-state muted" data-testid="peer-state">
                        {move || match (ui.peer_muted.get(), ui.peer_camera_off.get()) {
                            (true, true) => format!("{} muted and turned the camera off", peer_name()),
                            (true, false) => format!("{} is muted", peer_name()),
                            (false, true) => format!("{} turned the camera off", peer_name()),
                            _ => String::new(),
                        }}
                    </p>
                </div>
                <div class="screen" class:hidden=move || !ui.peer_sharing.get()>
                    <p class="muted" data-testid="peer-screen">
                        {move || ui.peer_sharing.get().then(|| format!("{} is sharing their screen", peer_name()))}
                    </p>
                    <video id="screen-video" class="screen-video" data-testid="screen-video" autoplay=true playsinline=true muted=true></video>
                </div>
                <p class="recording-state" data-testid="peer-recording" role="status">
                    {move || ui.peer_recording.get().then(|| format!("{} is recording this call", peer_name()))}
                </p>
                <p class="recording-state" data-testid="recording">
                    {move || ui.recording_since.get().map(|_| {
                        let secs = ui.recorded_secs.get();
                        format!("● Recording {}:{:02}", secs / 60, secs % 60)
                    })}
                </p>
                <Show when=move || matches!(ui.phase.get(), Phase::Connected | Phase::Reconnecting | Phase::Failed)>
                    <CallChat ui />
                </Show>
                <Show when=move || matches!(ui.phase.get(), Phase::Connected | Phase::Reconnecting | Phase::Failed)>
                    <QualityPanel ui />
                </Show>
                <Show when=move || in_call() || ui.phase.get() == Phase::Incoming>
                    <DevicePicker ui />
                </Show>
                <div class="call-actions">
                    {move || match ui.phase.get() {
                        Phase::Incoming => view! {
                            <button class="primary" on:click=move |_| ui.accept()>"Accept"</button>
                            <button class="danger" on:click=move |_| ui.hang_up()>"Decline"</button>
                        }
                            .into_any(),
                        Phase::Ended(_) | Phase::Idle => ().into_any(),
                        _ => view! {
                            <button aria-pressed=move || ui.muted.get().to_string() on:click=move |_| ui.toggle_mute()>
                                {move || if ui.muted.get() { "Unmute" } else { "Mute" }}
                            </button>
                            <button aria-pressed=move || ui.camera_off.get().to_string() on:click=move |_| ui.toggle_camera()>
                                {move || if ui.camera_off.get() { "Camera on" } else { "Camera off" }}
                            </button>
                            <Show when=move || ui.phase.get() == Phase::Connected || ui.sharing.get()>
                                <button aria-pressed=move || ui.sharing.get().to_string() on:click=move |_| ui.toggle_screen()>
                                    {move || if ui.sharing.get() { "Stop sharing" } else { "Share screen" }}
                                </button>
                            </Show>
                            <Show when=move || ui.phase.get() == Phase::Connected || ui.recording_since.get().is_some()>
                                <button aria-pressed=move || ui.recording_since.get().is_some().to_string() on:click=move |_| ui.toggle_recording()>
                                    {move || if ui.recording_since.get().is_some() { "Stop recording" } else { "Record" }}
                                </button>
                            </Show>
                            <button class="danger" on:click=move |_| ui.hang_up()>
                                {move || if ui.phase.get() == Phase::Calling { "Cancel" } else { "Hang up" }}
                            </button>
                        }
                            .into_any(),
                    }}
                </div>
            </section>
        </Show>
    }
}

/// Camera and microphone choice, live during the call.
#[component]
fn DevicePicker(ui: CallUi) -> impl IntoView {
    let picker = move |kind: &'static str,
                       label: &'static str,
                       current: RwSignal<Option<String>>| {
        let id = format!("device-{kind}");
        view! {
            <label for=id.clone()>{label}</label>
            <select
                id=id
                on:change=move |ev| ui.switch_device(kind, event_target_value(&ev))
                prop:value=move || current.get().unwrap_or_default()
            >
                {move || {
                    ui.devices
                        .get()
                        .into_iter()
                        .filter(|d| d.kind == kind)
                        .map(|d| {
                            let selected = current.get_untracked().as_deref() == Some(d.id.as_str());
                            view! { <option value=d.id selected=selected>{d.label}</option> }
                        })
                        .collect_view()
                }}
            </select>
        }
    };
    view! {
        <div class="devices">
            {picker("videoinput", "Camera", ui.camera)}
            {picker("audioinput", "Microphone", ui.microphone)}
        </div>
    }
}

/// Round-trip time, bitrates, packet loss and the received resolution.
#[component]
fn QualityPanel(ui: CallUi) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || media::read_quality(ui),
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    let show = |value: Option<f64>, unit: &'static str| {
        value
            .map(|v| format!("{v:.0} {unit}"))
            .unwrap_or_else(|| "…".into())
    };
    view! {
        <details class="quality" data-testid="quality">
            <summary>"Connection quality"</summary>
            <dl>
                <dt>"Round trip"</dt>
                <dd data-testid="quality-rtt">{move || show(ui.quality.get().rtt_ms, "ms")}</dd>
                <dt>"Receiving"</dt>
                <dd data-testid="quality-in">{move || show(ui.quality.get().kbps_in, "kbit/s")}</dd>
                <dt>"Sending"</dt>
                <dd data-testid="quality-out">{move || show(ui.quality.get().kbps_out, "kbit/s")}</dd>
                <dt>"Packet loss"</dt>
                <dd data-testid="quality-loss">
                    {move || ui.quality.get().loss_percent.map(|l| format!("{l:.1} %")).unwrap_or_else(|| "…".into())}
                </dd>
                <dt>"Video received"</dt>
                <dd data-testid="quality-resolution">
                    {move || ui.quality.get().resolution.map(|(w, h)| format!("{w}×{h}")).unwrap_or_else(|| "…".into())}
                </dd>
            </dl>
        </details>
    }
}

/// Chat beside the call: straight between the two browsers, gone when the call ends.
#[component]
fn CallChat(ui: CallUi) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let peer = move || {
        ui.peer
            .with(|p| p.as_ref().map(|p| p.name().to_string()).unwrap_or_default())
    };
    view! {
        <div class="call-chat">
            <ol class="call-chat-lines" data-testid="call-chat" aria-live="polite">
                {move || {
                    ui.chat
                        .get()
                        .into_iter()
                        .map(|(mine, text)| {
                            let who = if mine { "You".to_string() } else { peer() };
                            view! {
                                <li class:mine=mine>
                                    <strong>{who} ": "</strong>
                                    {text}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ol>
            <form
                class="inline"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    if ui.say(&draft.get_untracked()) {
                        draft.set(String::new());
                    }
                }
            >
                <label for="call-chat-input" class="visually-hidden">"Chat message"</label>
                <input
                    id="call-chat-input"
                    autocomplete="off"
                    placeholder="Chat during the call"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit">"Send"</button>
            </form>
            <p class="form-error" role="alert">{move || ui.chat_error.get()}</p>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod media {
    use std::{cell::RefCell, collections::VecDeque, rc::Rc, time::Duration};

    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        AudioContext, HtmlMediaElement, MediaStream, MediaStreamConstraints, MediaStreamTrack,
        RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
        RtcIceCandidateInit, RtcOfferOptions, RtcPeerConnection, RtcPeerConnectionIceEvent,
        RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
    };

    use super::{CallUi, Phase, Signal};

    #[derive(Default)]
    struct Media {
        local: Option<MediaStream>,
        pc: Option<RtcPeerConnection>,
        caller: bool,
        remote_set: bool,
        /// Candidates that arrived before the remote description.
        early_candidates: Vec<RtcIceCandidateInit>,
        /// Signals waiting for the peer connection.
        queue: VecDeque<Signal>,
        pumping: bool,
        /// Event handlers of the peer connection, kept alive with it.
        handlers: Vec<Box<dyn std::any::Any>>,
        ring: Option<(AudioContext, IntervalHandle)>,
        chat: Option<RtcDataChannel>,
        remote: Option<MediaStream>,
        recording: Option<Recording>,
        /// This side's screen going out, and the other side's coming in.
        screen_out: Option<Screen>,
        screen_in: Option<Screen>,
    }

    #[derive(Default)]
    struct Screen {
        pc: Option<RtcPeerConnection>,
        stream: Option<MediaStream>,
        remote_set: bool,
        early: Vec<RtcIceCandidateInit>,
        /// Event handlers, kept alive as long as the connection.
        _handlers: Vec<Box<dyn std::any::Any>>,
    }

    struct Recording {
        recorder: web_sys::MediaRecorder,
        mixer: AudioContext,
        ticker: IntervalHandle,
        _handlers: (Closure<dyn FnMut(web_sys::BlobEvent)>, Closure<dyn FnMut()>),
    }

    thread_local! {
        static MEDIA: RefCell<Media> = RefCell::new(Media::default());
    }

    fn with<T>(f: impl FnOnce(&mut Media) -> T) -> T {
        MEDIA.with_borrow_mut(f)
    }

    fn element(id: &str) -> Option<HtmlMediaElement> {
        document().get_element_by_id(id)?.dyn_into().ok()
    }

    fn show(id: &str, stream: Option<&MediaStream>) {
        if let Some(video) = element(id) {
            video.set_src_object(stream);
            if stream.is_some() {
                let _ = video.play();
            }
        }
    }

    fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
        stream
            .get_tracks()
            .iter()
            .filter_map(|t| t.dyn_into().ok())
            .collect()
    }

    /// The camera and microphone, asked for once per call.
    async fn local_media(ui: CallUi) -> Result<MediaStream, JsValue> {
        if let Some(stream) = with(|m| m.local.clone()) {
            return Ok(stream);
        }
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio(&JsValue::TRUE);
        constraints.set_video(&JsValue::from_bool(ui.video.get_untracked()));
        let devices = window().navigator().media_devices()?;
        let stream: MediaStream =
            JsFuture::from(devices.get_user_media_with_constraints(&constraints)?)
                .await?
                .dyn_into()?;
        // A second request may have finished first: keep one.
        let stream = with(|m| m.local.get_or_insert(stream).clone());
        note_devices_in_use(ui, &stream);
        refresh_devices(ui);
        watch_devices(ui);
        // The window may have just appeared: show the preview on the next frame.
        let preview = stream.clone();
        request_animation_frame(move || show("local-video", Some(&preview)));
        Ok(stream)
    }

    fn device_id(track: &MediaStreamTrack) -> Option<String> {
        js_sys::Reflect::get(&track.get_settings(), &"deviceId".into())
            .ok()?
            .as_string()
    }

    fn note_devices_in_use(ui: CallUi, stream: &MediaStream) {
        for track in tracks(stream) {
            let target = if track.kind() == "audio" {
                ui.microphone
            } else {
                ui.camera
            };
            target.set(device_id(&track));
        }
    }

    /// Lists cameras and microphones; if the one in use went away, takes another.
    pub fn refresh_devices(ui: CallUi) {
        leptos::task::spawn_local(async move {
            let Ok(devices) = window().navigator().media_devices() else {
                return;
            };
            let Ok(promise) = devices.enumerate_devices() else {
                return;
            };
            let Ok(list) = JsFuture::from(promise).await else {
                return;
            };
            let found: Vec<super::Device> = js_sys::Array::from(&list)
                .iter()
                .filter_map(|d| d.dyn_into::<web_sys::MediaDeviceInfo>().ok())
                .filter_map(|d| {
                    let kind = match d.kind() {
                        web_sys::MediaDeviceKind::Videoinput => "videoinput",
                        web_sys::MediaDeviceKind::Audioinput => "audioinput",
                        _ => return None,
                    };
                    Some(super::Device {
                        kind: kind.into(),
                        id: d.device_id(),
                        label: d.label(),
                    })
                })
                .collect();
            for (kind, current) in [("videoinput", ui.camera), ("audioinput", ui.microphone)] {
                let Some(id) = current.get_untracked() else {
                    continue;
                };
                let still_there = found.iter().any(|d| d.kind == kind && d.id == id);
                if !still_there {
                    if let Some(other) = found.iter().find(|d| d.kind == kind) {
                        switch_device(ui, kind, other.id.clone());
                    }
                }
            }
            ui.devices.set(found);
        });
    }

    /// Reacts to devices being plugged in or unplugged, for the page's lifetime.
    fn watch_devices(ui: CallUi) {
        thread_local! {
            static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if WATCHING.replace(true) {
            return;
        }
        if let Ok(devices) = window().navigator().media_devices() {
            let on_change = Closure::<dyn FnMut()>::new(move || refresh_devices(ui));
            devices.set_ondevicechange(Some(on_change.as_ref().unchecked_ref()));
            on_change.forget();
        }
    }

    /// Swaps one local track for another device's: the senders get the new track
    /// (`replaceTrack`), so the call is not renegotiated.
    pub fn switch_device(ui: CallUi, kind: &'static str, id: String) {
        leptos::task::spawn_local(async move {
            let result: Result<(), JsValue> = async {
                let Some(stream) = with(|m| m.local.clone()) else {
                    return Ok(());
                };
                let exact = js_sys::JSON::parse(
                    &serde_json::json!({ "deviceId": { "exact": id } }).to_string(),
                )?;
                let constraints = MediaStreamConstraints::new();
                let track_kind = if kind == "audioinput" {
                    "audio"
                } else {
                    "video"
                };
                if track_kind == "audio" {
                    constraints.set_audio(&exact);
                } else {
                    constraints.set_video(&exact);
                }
                let devices = window().navigator().media_devices()?;
                let fresh: MediaStream =
                    JsFuture::from(devices.get_user_media_with_constraints(&constraints)?)
                        .await?
                        .dyn_into()?;
                let Some(track) = tracks(&fresh).into_iter().find(|t| t.kind() == track_kind)
                else {
                    return Ok(());
                };
                for old in tracks(&stream)
                    .into_iter()
                    .filter(|t| t.kind() == track_kind)
                {
                    stream.remove_track(&old);
                    old.stop();
                }
                stream.add_track(&track);
                if let Some(pc) = with(|m| m.pc.clone()) {
                    for sender in pc.get_senders().iter() {
                        let sender: web_sys::RtcRtpSender = sender.unchecked_into();
                        if sender.track().is_some_and(|t| t.kind() == track_kind)
                            || sender.track().is_none()
                        {
                            JsFuture::from(sender.replace_track(Some(&track))).await?;
                            break;
                        }
                    }
                }
                let target = if track_kind == "audio" {
                    ui.microphone
                } else {
                    ui.camera
                };
                target.set(Some(id));
                apply_local_state(ui);
                show("local-video", Some(&stream));
                Ok(())
            }
            .await;
            if let Err(error) = result {
                leptos::logging::warn!("switching device failed: {error:?}");
            }
        });
    }

    /// Starts the camera preview while the call rings or is being answered.
    pub fn prepare(ui: CallUi) {
        leptos::task::spawn_local(async move {
            if let Err(error) = local_media(ui).await {
                leptos::logging::warn!("camera/microphone unavailable: {error:?}");
                ui.hang_up();
                ui.phase.set(Phase::Ended(
                    "Your camera or microphone is not available. Check the browser's permissions."
                        .into(),
                ));
            }
        });
    }

    /// The call was answered: build the peer connection; the caller makes the offer.
    pub fn connect(ui: CallUi, caller: bool) {
        leptos::task::spawn_local(async move {
            let Ok(stream) = local_media(ui).await else {
                return;
            };
            let Ok(pc) = new_peer_connection() else {
                ui.hang_up();
                return;
            };
            let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
                move |event: RtcPeerConnectionIceEvent| {
                    if let Some(c) = event.candidate() {
                        ui.send_signal(&Signal::Candidate {
                            candidate: c.candidate(),
                            mid: c.sdp_mid(),
                            index: c.sdp_m_line_index(),
                        });
                    }
                },
            );
            pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
            let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(|event: RtcTrackEvent| {
                if let Some(stream) = event.streams().get(0).dyn_into::<MediaStream>().ok() {
                    show("remote-video", Some(&stream));
                    with(|m| m.remote = Some(stream));
                }
            });
            pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
            let watched = pc.clone();
            let on_state = Closure::<dyn FnMut()>::new(move || match watched.connection_state() {
                RtcPeerConnectionState::Connected => ui.phase.set(Phase::Connected),
                RtcPeerConnectionState::Disconnected => {
                    ui.phase.set(Phase::Reconnecting);
                    // Give the network a moment, then restart ICE if it did not come back.
                    let pc = watched.clone();
                    set_timeout(
                        move || {
                            if pc.connection_state() == RtcPeerConnectionState::Disconnected {
                                restart_ice(ui);
                            }
                        },
                        Duration::from_secs(2),
                    );
                }
                RtcPeerConnectionState::Failed => {
                    ui.phase.set(Phase::Failed);
                    restart_ice(ui);
                }
                _ => {}
            });
            pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
            // The chat channel: the caller opens it, the callee receives it.
            let on_channel = Closure::<dyn FnMut(RtcDataChannelEvent)>::new(
                move |event: RtcDataChannelEvent| {
                    attach_chat(ui, event.channel());
                },
            );
            if caller {
                attach_chat(ui, pc.create_data_channel("chat"));
            } else {
                pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
            }
            for track in tracks(&stream) {
                pc.add_track_0(&track, &stream);
            }
            with(|m| {
                m.pc = Some(pc.clone());
                m.caller = caller;
                m.remote_set = false;
                m.handlers.extend([
                    Box::new(on_candidate) as Box<dyn std::any::Any>,
                    Box::new(on_track),
                    Box::new(on_state),
                    Box::new(on_channel),
                ]);
            });
            apply_local_state(ui);
            if caller {
                offer(ui, &pc, false).await;
            }
            pump(ui).await;
        });
    }

    fn attach_chat(ui: CallUi, channel: RtcDataChannel) {
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(text) = event.data().as_string() {
                    let text: String = text.chars().take(super::MAX_CHAT_CHARS).collect();
                    ui.chat.update(|c| c.push((false, text)));
                }
            },
        );
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        with(|m| {
            m.chat = Some(channel);
            m.handlers.push(Box::new(on_message));
        });
    }

    pub fn say(text: &str) -> bool {
        with(|m| match &m.chat {
            Some(channel) if channel.ready_state() == RtcDataChannelState::Open => {
                channel.send_with_str(text).is_ok()
            }
            _ => false,
        })
    }

    /// A peer connection with the server's ICE servers (`PARLOR_ICE_SERVERS`; an empty list
    /// works on one network).
    fn new_peer_connection() -> Result<RtcPeerConnection, JsValue> {
        let config = RtcConfiguration::new();
        let servers = super::REALTIME
            .with(|r| r.get())
            .map(|rt| rt.ice_servers.get_untracked())
            .unwrap_or_default();
        let servers = serde_json::to_string(&servers)
            .ok()
            .and_then(|json| js_sys::JSON::parse(&json).ok())
            .unwrap_or_else(|| js_sys::Array::new().into());
        config.set_ice_servers(&servers);
        RtcPeerConnection::new_with_configuration(&config)
    }

    /// Applies the other side's offer or answer.
    async fn set_remote(
        pc: &RtcPeerConnection,
        kind: RtcSdpType,
        sdp: &str,
    ) -> Result<(), JsValue> {
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(sdp);
        JsFuture::from(pc.set_remote_description(&init))
            .await
            .map(|_| ())
    }

    /// Creates this side's offer (or answer), applies it, and returns its SDP to send.
    async fn set_local(
        pc: &RtcPeerConnection,
        kind: RtcSdpType,
        ice_restart: bool,
    ) -> Result<String, JsValue> {
        let created = if kind == RtcSdpType::Offer {
            let options = RtcOfferOptions::new();
            options.set_ice_restart(ice_restart);
            JsFuture::from(pc.create_offer_with_rtc_offer_options(&options)).await?
        } else {
            JsFuture::from(pc.create_answer()).await?
        };
        let sdp = js_sys::Reflect::get(&created, &"sdp".into())?
            .as_string()
            .unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(&sdp);
        JsFuture::from(pc.set_local_description(&init)).await?;
        Ok(sdp)
    }

    async fn offer(ui: CallUi, pc: &RtcPeerConnection, ice_restart: bool) {
        match set_local(pc, RtcSdpType::Offer, ice_restart).await {
            Ok(sdp) => ui.send_signal(&Signal::Offer { sdp }),
            Err(error) => leptos::logging::warn!("creating an offer failed: {error:?}"),
        }
    }

    /// Signaling from the other side, applied in order once the peer connection exists.
    pub fn signal(ui: CallUi, signal: Signal) {
        with(|m| m.queue.push_back(signal));
        leptos::task::spawn_local(pump(ui));
    }

    async fn pump(ui: CallUi) {
        let Some(pc) = with(|m| (!m.pumping).then(|| m.pc.clone()).flatten()) else {
            return;
        };
        with(|m| m.pumping = true);
        while let Some(signal) = with(|m| m.queue.pop_front()) {
            if let Err(error) = apply(ui, &pc, signal).await {
                leptos::logging::warn!("call signaling failed: {error:?}");
            }
        }
        with(|m| m.pumping = false);
    }

    async fn apply(ui: CallUi, pc: &RtcPeerConnection, signal: Signal) -> Result<(), JsValue> {
        match signal {
            Signal::Offer { sdp } => {
                set_remote(pc, RtcSdpType::Offer, &sdp).await?;
                remote_ready(pc).await;
                let sdp = set_local(pc, RtcSdpType::Answer, false).await?;
                ui.send_signal(&Signal::Answer { sdp });
            }
            Signal::Answer { sdp } => {
                set_remote(pc, RtcSdpType::Answer, &sdp).await?;
                remote_ready(pc).await;
            }
            Signal::Candidate {
                candidate,
                mid,
                index,
            } => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(mid.as_deref());
                init.set_sdp_m_line_index(index);
                if with(|m| m.remote_set) {
                    JsFuture::from(
                        pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                    )
                    .await?;
                } else {
                    with(|m| m.early_candidates.push(init));
                }
            }
            Signal::Media { .. } | Signal::Recording { .. } => {}
            screen => screen_signal(ui, screen).await?,
        }
        Ok(())
    }

    async fn remote_ready(pc: &RtcPeerConnection) {
        let early = with(|m| {
            m.remote_set = true;
            std::mem::take(&mut m.early_candidates)
        });
        for init in early {
            let _ =
                JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)))
                    .await;
        }
    }

    thread_local! {
        /// The previous reading: `(time ms, bytes in, bytes out)`, for bitrates.
        static LAST_STATS: std::cell::Cell<Option<(f64, f64, f64)>> = const { std::cell::Cell::new(None) };
    }

    /// Reads `getStats` and updates the quality panel.
    pub fn read_quality(ui: CallUi) {
        let Some(pc) = with(|m| m.pc.clone()) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let Ok(report) = JsFuture::from(pc.get_stats()).await else {
                return;
            };
            let report: js_sys::Map = report.unchecked_into();
            let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok();
            let num = |o: &JsValue, k: &str| get(o, k).and_then(|v| v.as_f64());
            let text = |o: &JsValue, k: &str| get(o, k).and_then(|v| v.as_string());
            let mut quality = super::Quality::default();
            let (mut bytes_in, mut bytes_out, mut lost, mut received) = (0.0, 0.0, 0.0, 0.0);
            let mut now = 0.0;
            report.for_each(&mut |stat, _| {
                now = num(&stat, "timestamp").unwrap_or(now);
                match text(&stat, "type").as_deref() {
                    Some("candidate-pair")
                        if get(&stat, "nominated").and_then(|v| v.as_bool()) == Some(true) =>
                    {
                        if let Some(rtt) = num(&stat, "currentRoundTripTime") {
                            quality.rtt_ms = Some(rtt * 1000.0);
                        }
                    }
                    Some("inbound-rtp") => {
                        bytes_in += num(&stat, "bytesReceived").unwrap_or(0.0);
                        lost += num(&stat, "packetsLost").unwrap_or(0.0);
                        received += num(&stat, "packetsReceived").unwrap_or(0.0);
                        if text(&stat, "kind").as_deref() == Some("video") {
                            if let (Some(w), Some(h)) =
                                (num(&stat, "frameWidth"), num(&stat, "frameHeight"))
                            {
                                quality.resolution = Some((w as u32, h as u32));
                            }
                        }
                    }
                    Some("outbound-rtp") => bytes_out += num(&stat, "bytesSent").unwrap_or(0.0),
                    _ => {}
                }
            });
            if let Some((then, before_in, before_out)) = LAST_STATS.get() {
                let secs = (now - then) / 1000.0;
                if secs > 0.0 {
                    quality.kbps_in = Some((bytes_in - before_in) * 8.0 / 1000.0 / secs);
                    quality.kbps_out = Some((bytes_out - before_out) * 8.0 / 1000.0 / secs);
                }
            }
            LAST_STATS.set(Some((now, bytes_in, bytes_out)));
            if received + lost > 0.0 {
                quality.loss_percent = Some(lost * 100.0 / (received + lost));
            }
            ui.quality.set(quality);
        });
    }

    /// Whether media is flowing (the peer connection says connected).
    pub fn media_connected() -> bool {
        with(|m| {
            m.pc.as_ref()
                .is_some_and(|pc| pc.connection_state() == RtcPeerConnectionState::Connected)
        })
    }

    /// After a network change: the caller renegotiates with fresh ICE candidates.
    pub fn restart_ice(ui: CallUi) {
        let Some(pc) = with(|m| m.caller.then(|| m.pc.clone()).flatten()) else {
            return;
        };
        leptos::task::spawn_local(async move { offer(ui, &pc, true).await });
    }

    pub fn apply_local_state(ui: CallUi) {
        let (muted, camera_off) = (ui.muted.get_untracked(), ui.camera_off.get_untracked());
        if let Some(stream) = with(|m| m.local.clone()) {
            for track in tracks(&stream) {
                track.set_enabled(if track.kind() == "audio" {
                    !muted
                } else {
                    !camera_off
                });
            }
        }
        ui.send_signal(&Signal::Media { muted, camera_off });
    }

    /// Records the call: the other side's video with both sides' voices mixed, as WebM.
    pub fn start_recording(ui: CallUi) -> Result<(), JsValue> {
        let (local, remote) = with(|m| (m.local.clone(), m.remote.clone()));
        let remote = remote.ok_or("no remote stream yet")?;
        let mixer = AudioContext::new()?;
        let mix = mixer.create_media_stream_destination()?;
        for stream in [Some(&remote), local.as_ref()].into_iter().flatten() {
            if stream.get_audio_tracks().length() > 0 {
                mixer
                    .create_media_stream_source(stream)?
                    .connect_with_audio_node(&mix)?;
            }
        }
        let tracks = js_sys::Array::new();
        for track in remote.get_video_tracks().iter() {
            tracks.push(&track);
        }
        for track in mix.stream().get_audio_tracks().iter() {
            tracks.push(&track);
        }
        let stream = MediaStream::new_with_tracks(&tracks)?;
        let options = web_sys::MediaRecorderOptions::new();
        let mime = ["video/webm;codecs=vp8,opus", "video/webm"]
            .into_iter()
            .find(|m| web_sys::MediaRecorder::is_type_supported(m))
            .ok_or("WebM recording is not supported")?;
        options.set_mime_type(mime);
        let recorder = web_sys::MediaRecorder::new_with_media_stream_and_media_recorder_options(
            &stream, &options,
        )?;

        let chunks = Rc::new(RefCell::new(js_sys::Array::new()));
        let collected = chunks.clone();
        let on_data =
            Closure::<dyn FnMut(web_sys::BlobEvent)>::new(move |event: web_sys::BlobEvent| {
                if let Some(blob) = event.data().filter(|b| b.size() > 0.0) {
                    collected.borrow().push(&blob);
                }
            });
        recorder.set_ondataavailable(Some(on_data.as_ref().unchecked_ref()));
        let started = js_sys::Date::now();
        let on_stop = Closure::<dyn FnMut()>::new(move || {
            let parts = chunks.borrow().clone();
            let duration_ms = js_sys::Date::now() - started;
            leptos::task::spawn_local(async move {
                if let Err(error) = save(parts, duration_ms).await {
                    leptos::logging::warn!("saving the recording failed: {error:?}");
                }
            });
        });
        recorder.set_onstop(Some(on_stop.as_ref().unchecked_ref()));
        // A chunk every second: a crash loses at most that much.
        recorder.start_with_time_slice(1000)?;
        let ticker = set_interval_with_handle(
            move || {
                let secs = ((js_sys::Date::now() - started) / 1000.0) as u64;
                ui.recorded_secs.set(secs);
            },
            Duration::from_millis(500),
        )
        .map_err(|_| JsValue::from_str("no timer"))?;
        ui.recorded_secs.set(0);
        ui.recording_since.set(Some(started));
        with(|m| {
            m.recording = Some(Recording {
                recorder,
                mixer,
                ticker,
                _handlers: (on_data, on_stop),
            })
        });
        ui.send_signal(&Signal::Recording { on: true });
        Ok(())
    }

    /// Stops recording; the file downloads once the recorder hands over its last chunk.
    pub fn stop_recording(ui: CallUi) {
        if let Some(recording) = with(|m| m.recording.take()) {
            let _ = recording.recorder.stop();
            recording.ticker.clear();
            // The stop event still has to fire: keep the handlers until then.
            let keep = recording._handlers;
            let mixer = recording.mixer;
            set_timeout(
                move || {
                    drop(keep);
                    let _ = mixer.close();
                },
                Duration::from_secs(10),
            );
        }
        ui.recording_since.set(None);
        ui.send_signal(&Signal::Recording { on: false });
    }

    /// Joins the chunks, writes the duration into the WebM, and downloads it.
    async fn save(parts: js_sys::Array, duration_ms: f64) -> Result<(), JsValue> {
        let blob = web_sys::Blob::new_with_blob_sequence(&parts)?;
        let buffer = JsFuture::from(blob.array_buffer()).await?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        let bytes = crate::webm::with_duration(&bytes, duration_ms).unwrap_or(bytes);
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("video/webm");
        let file = web_sys::Blob::new_with_u8_array_sequence_and_options(
            &js_sys::Array::of1(&array),
            &options,
        )?;
        let url = web_sys::Url::create_object_url_with_blob(&file)?;
        let link: web_sys::HtmlAnchorElement = document().create_element("a")?.dyn_into()?;
        link.set_href(&url);
        let stamp = js_sys::Date::new_0()
            .to_iso_string()
            .as_string()
            .unwrap_or_default();
        let stamp: String = stamp
            .chars()
            .take(19)
            .map(|c| if c == ':' { '-' } else { c })
            .collect();
        link.set_download(&format!("parlor-call-{stamp}.webm"));
        link.click();
        // Give the download a moment to start before the URL goes.
        set_timeout(
            move || {
                let _ = web_sys::Url::revoke_object_url(&url);
            },
            Duration::from_secs(30),
        );
        Ok(())
    }

    /// A screen peer connection whose candidates go out as `ScreenCandidate`s.
    fn screen_pc(
        ui: CallUi,
        to_sharer: bool,
    ) -> Result<(RtcPeerConnection, Box<dyn std::any::Any>), JsValue> {
        let pc = new_peer_connection()?;
        let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |event: RtcPeerConnectionIceEvent| {
                if let Some(c) = event.candidate() {
                    ui.send_signal(&Signal::ScreenCandidate {
                        candidate: c.candidate(),
                        mid: c.sdp_mid(),
                        index: c.sdp_m_line_index(),
                        to_sharer,
                    });
                }
            },
        );
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        Ok((pc, Box::new(on_candidate)))
    }

    pub fn share_screen(ui: CallUi) {
        leptos::task::spawn_local(async move {
            let result: Result<(), JsValue> = async {
                let devices = window().navigator().media_devices()?;
                let constraints = web_sys::DisplayMediaStreamConstraints::new();
                constraints.set_video(&JsValue::TRUE);
                let stream: MediaStream =
                    JsFuture::from(devices.get_display_media_with_constraints(&constraints)?)
                        .await?
                        .dyn_into()?;
                let (pc, on_candidate) = screen_pc(ui, false)?;
                let mut handlers = vec![on_candidate];
                for track in tracks(&stream) {
                    pc.add_track_0(&track, &stream);
                    // The browser's own "Stop sharing" button ends the track.
                    let on_ended = Closure::<dyn FnMut()>::new(move || stop_screen(ui));
                    track.set_onended(Some(on_ended.as_ref().unchecked_ref()));
                    handlers.push(Box::new(on_ended));
                }
                let sdp = set_local(&pc, RtcSdpType::Offer, false).await?;
                with(|m| {
                    m.screen_out = Some(Screen {
                        pc: Some(pc),
                        stream: Some(stream),
                        _handlers: handlers,
                        ..Screen::default()
                    })
                });
                ui.sharing.set(true);
                ui.send_signal(&Signal::ScreenOffer { sdp });
                Ok(())
            }
            .await;
            if let Err(error) = result {
                // Most often: the user closed the browser's picker.
                leptos::logging::warn!("screen sharing did not start: {error:?}");
            }
        });
    }

    pub fn stop_screen(ui: CallUi) {
        if let Some(screen) = with(|m| m.screen_out.take()) {
            close_screen(screen);
            ui.send_signal(&Signal::ScreenStopped);
        }
        ui.sharing.set(false);
    }

    fn close_screen(screen: Screen) {
        if let Some(stream) = screen.stream {
            for track in tracks(&stream) {
                track.set_onended(None);
                track.stop();
            }
        }
        if let Some(pc) = screen.pc {
            pc.close();
        }
    }

    async fn screen_signal(ui: CallUi, signal: Signal) -> Result<(), JsValue> {
        match signal {
            Signal::ScreenOffer { sdp } => {
                if let Some(old) = with(|m| m.screen_in.take()) {
                    close_screen(old);
                }
                let (pc, on_candidate) = screen_pc(ui, true)?;
                let on_track =
                    Closure::<dyn FnMut(RtcTrackEvent)>::new(move |event: RtcTrackEvent| {
                        if let Some(stream) = event.streams().get(0).dyn_into::<MediaStream>().ok()
                        {
                            ui.peer_sharing.set(true);
                            request_animation_frame(move || show("screen-video", Some(&stream)));
                        }
                    });
                pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
                with(|m| {
                    m.screen_in = Some(Screen {
                        pc: Some(pc.clone()),
                        _handlers: vec![on_candidate, Box::new(on_track)],
                        ..Screen::default()
                    })
                });
                set_remote(&pc, RtcSdpType::Offer, &sdp).await?;
                screen_remote_ready(&pc, false).await;
                let sdp = set_local(&pc, RtcSdpType::Answer, false).await?;
                ui.send_signal(&Signal::ScreenAnswer { sdp });
            }
            Signal::ScreenAnswer { sdp } => {
                if let Some(pc) = with(|m| m.screen_out.as_ref().and_then(|s| s.pc.clone())) {
                    set_remote(&pc, RtcSdpType::Answer, &sdp).await?;
                    screen_remote_ready(&pc, true).await;
                }
            }
            Signal::ScreenCandidate {
                candidate,
                mid,
                index,
                to_sharer,
            } => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(mid.as_deref());
                init.set_sdp_m_line_index(index);
                let ready = with(|m| {
                    let screen = if to_sharer {
                        m.screen_out.as_mut()
                    } else {
                        m.screen_in.as_mut()
                    }?;
                    if screen.remote_set {
                        screen.pc.clone()
                    } else {
                        screen.early.push(init.clone());
                        None
                    }
                });
                if let Some(pc) = ready {
                    JsFuture::from(
                        pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                    )
                    .await?;
                }
            }
            Signal::ScreenStopped => {
                if let Some(screen) = with(|m| m.screen_in.take()) {
                    close_screen(screen);
                }
                show("screen-video", None);
                ui.peer_sharing.set(false);
            }
            _ => {}
        }
        Ok(())
    }

    async fn screen_remote_ready(pc: &RtcPeerConnection, sharer: bool) {
        let early = with(|m| {
            let screen = if sharer {
                m.screen_out.as_mut()
            } else {
                m.screen_in.as_mut()
            };
            screen.map(|s| {
                s.remote_set = true;
                std::mem::take(&mut s.early)
            })
        });
        for init in early.unwrap_or_default() {
            let _ =
                JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)))
                    .await;
        }
    }

    pub fn teardown() {
        stop_ring();
        LAST_STATS.set(None);
        let screens = with(|m| (m.screen_out.take(), m.screen_in.take()));
        for screen in [screens.0, screens.1].into_iter().flatten() {
            close_screen(screen);
        }
        show("screen-video", None);
        let (local, pc) = with(|m| {
            m.handlers.clear();
            m.remote = None;
            if let Some(chat) = m.chat.take() {
                chat.close();
            }
            m.queue.clear();
            m.early_candidates.clear();
            m.remote_set = false;
            (m.local.take(), m.pc.take())
        });
        if let Some(stream) = local {
            for track in tracks(&stream) {
                track.stop();
            }
        }
        if let Some(pc) = pc {
            pc.close();
        }
        show("local-video", None);
        show("remote-video", None);
    }

    /// A ring tone: a soft two-tone beep every second until answered or ended.
    pub fn ring() {
        stop_ring();
        let Ok(context) = AudioContext::new() else {
            return;
        };
        let beep = {
            let context = context.clone();
            move || {
                let (Ok(osc), Ok(gain)) = (context.create_oscillator(), context.create_gain())
                else {
                    return;
                };
                osc.frequency().set_value(480.0);
                gain.gain().set_value(0.08);
                let _ = osc.connect_with_audio_node(&gain);
                let _ = gain.connect_with_audio_node(&context.destination());
                let now = context.current_time();
                let _ = osc.start_with_when(now);
                let _ = osc.stop_with_when(now + 0.4);
            }
        };
        beep();
        let beep = Rc::new(beep);
        if let Ok(handle) = set_interval_with_handle(move || beep(), Duration::from_millis(1500)) {
            with(|m| m.ring = Some((context, handle)));
        }
    }

    pub fn stop_ring() {
        if let Some((context, handle)) = with(|m| m.ring.take()) {
            handle.clear();
            let _ = context.close();
        }
    }
}
