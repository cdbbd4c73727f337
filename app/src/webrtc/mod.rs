//! The WebRTC call engine: camera and screen peer connections, devices, in-call chat,
//! recording, stats, ICE restarts and the ring tone, driven through web-sys. It knows nothing
//! of how the two browsers found each other: it sends its [`Signal`]s through a
//! [`Signaling`] channel (the `/ws` socket for friends; a mailbox or another transport for
//! other ways to meet) and is fed the other side's with [`Engine::receive`].
//!
//! [`Engine`] is a handle of signals the call UI reads; it exists on the server too (where
//! every method does nothing), so views render alike on both sides. The browser pieces live in
//! the `hydrate`-only modules below, which are a wasm chunk of their own, loaded when a call
//! first needs them (see `browser`). Browser objects are not `Send`: they live in
//! thread-locals, one call per tab.

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(feature = "hydrate")]
mod chat;
#[cfg(feature = "hydrate")]
mod devices;
#[cfg(feature = "hydrate")]
mod engine;
#[cfg(feature = "hydrate")]
mod files;
#[cfg(feature = "hydrate")]
mod negotiation;
#[cfg(feature = "hydrate")]
pub mod probe;
#[cfg(feature = "hydrate")]
mod recording;
#[cfg(feature = "hydrate")]
mod ring;
#[cfg(feature = "hydrate")]
mod screen;
mod signal;
#[cfg(feature = "hydrate")]
mod stats;
pub mod webm;

use std::rc::Rc;

use leptos::prelude::*;

pub use signal::{Ice, Signal};

use crate::protocol::IceServer;

/// The longest in-call chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 1000;

/// How the engine reaches the other browser. Each way to meet implements it over its own
/// transport; the engine is fed the other side's signals with [`Engine::receive`].
pub trait Signaling {
    /// Sends one signal to the other side (dropped if the channel cannot carry it yet).
    fn send(&self, signal: &Signal);
    /// The engine cannot carry on (no camera or microphone): end the call, saying why.
    fn give_up(&self, why: &str);
    /// The media path broke, perhaps because the network changed: a transport that can
    /// check itself now (rather than at its next heartbeat) does, so a dead one is replaced
    /// within seconds; the ICE restart that follows it lost is sent again on resuming.
    fn media_lost(&self) {}
}

/// A file name safe to show and to save under: no paths, no control or bidirectional
/// formatting characters (which could disguise an extension), not too long.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'))
        .take(120)
        .collect();
    if cleaned.trim().is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// The largest file one side may send the other during a call (it is held in memory).
pub const MAX_FILE_BYTES: u64 = 500_000_000;

/// A file sent or received during the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: u32,
    /// Sent by this side.
    pub mine: bool,
    pub name: String,
    pub size: u64,
    /// Bytes sent or received so far.
    pub done: u64,
    /// A received file, ready to save (an object URL).
    pub url: Option<String>,
    /// Why it did not arrive.
    pub failed: Option<String>,
}

impl Transfer {
    /// Whether all of a file this side sent has gone out.
    pub fn sent(&self) -> bool {
        self.mine && self.done == self.size
    }
}

/// The media connection's state, once the call is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected,
    /// The connection dropped; ICE is being restarted.
    Reconnecting,
    /// The media connection failed; the offering side renegotiates with fresh candidates
    /// (the call ends if the other side does not come back).
    Failed,
}

/// The quality panel's figures, read from `getStats` every second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quality {
    pub rtt_ms: Option<f64>,
    pub kbps_in: Option<f64>,
    pub kbps_out: Option<f64>,
    pub loss_percent: Option<f64>,
    pub resolution: Option<(u32, u32)>,
    /// Which way the media goes, once a candidate pair carries it.
    pub route: Option<Route>,
}

/// The way a call's media goes, from the candidate pair in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Host to host: the two browsers reach each other's own addresses.
    Direct,
    /// Directly, but through at least one NAT (a reflexive address on either end).
    ThroughNat,
    /// Through a TURN relay; `tcp` when this browser reaches its relay over TCP or TLS.
    Relayed { tcp: bool },
}

impl Route {
    /// The route of a candidate pair from its local candidate (type, and the protocol a relay
    /// candidate reaches its server by) and its remote candidate's type.
    pub fn of(local: Option<(&str, Option<&str>)>, remote: Option<&str>) -> Route {
        match (local, remote) {
            (Some(("relay", protocol)), _) => Route::Relayed {
                tcp: matches!(protocol, Some("tcp" | "tls")),
            },
            (_, Some("relay")) => Route::Relayed { tcp: false },
            (Some(("host", _)), Some("host")) => Route::Direct,
            _ => Route::ThroughNat,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::Direct => "Direct",
            Route::ThroughNat => "Direct, through NAT",
            Route::Relayed { tcp: false } => "Relayed through the server",
            Route::Relayed { tcp: true } => "Relayed through the server over TCP",
        }
    }
}

/// A camera or microphone the browser offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `videoinput` or `audioinput`.
    pub kind: String,
    pub id: String,
    pub label: String,
}

/// The engine, as the UI sees it: what it shows, and what it may ask for.
#[derive(Clone, Copy)]
pub struct Engine {
    pub link: RwSignal<Link>,
    pub muted: RwSignal<bool>,
    pub camera_off: RwSignal<bool>,
    pub peer_muted: RwSignal<bool>,
    pub peer_camera_off: RwSignal<bool>,
    /// In-call chat over the data channel (never stored): `(mine, text)`.
    pub chat: RwSignal<Vec<(bool, String)>>,
    /// Files sent and received during the call, with their progress.
    pub transfers: RwSignal<Vec<Transfer>>,
    /// Why something the user asked for did not happen (chat, recording).
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
    /// The devices in use.
    pub camera: RwSignal<Option<String>>,
    pub microphone: RwSignal<Option<String>>,
    /// Calls go through the TURN server only (this side's addresses stay hidden); a
    /// preference kept in the browser, used from the next connection on.
    pub relay_only: RwSignal<bool>,
}

impl Engine {
    pub fn new() -> Self {
        Self {
            link: RwSignal::new(Link::Connecting),
            muted: RwSignal::new(false),
            camera_off: RwSignal::new(false),
            peer_muted: RwSignal::new(false),
            peer_camera_off: RwSignal::new(false),
            chat: RwSignal::new(Vec::new()),
            transfers: RwSignal::new(Vec::new()),
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
            relay_only: RwSignal::new(false),
        }
    }

    /// Forgets the previous call's state (the device list and choice stay).
    fn reset(self) {
        self.link.set(Link::Connecting);
        for flag in [
            self.muted,
            self.camera_off,
            self.peer_muted,
            self.peer_camera_off,
            self.peer_recording,
            self.sharing,
            self.peer_sharing,
        ] {
            flag.set(false);
        }
        self.chat.set(Vec::new());
        self.transfers.set(Vec::new());
        self.chat_error.set(None);
        self.recording_since.set(None);
        self.quality.set(Quality::default());
    }

    /// A new call begins over `channel`: shows this side's camera (a preview while it rings).
    pub fn open(self, channel: Rc<dyn Signaling>, video: bool) {
        self.reset();
        #[cfg(feature = "hydrate")]
        browser::run(move |b| (b.open)(self, channel, video));
        #[cfg(not(feature = "hydrate"))]
        let _ = (channel, video);
    }

    /// A call without media (a text-only stranger match): fresh state, the chat only.
    pub fn chat_only(self) {
        self.reset();
        self.link.set(Link::Connected);
    }

    /// Both sides are there: build the peer connection. `you_offer` makes this side the one
    /// that offers, opens the chat channel and restarts ICE after a network change.
    pub fn connect(self, you_offer: bool, ice_servers: Vec<IceServer>) {
        self.link.set(Link::Connecting);
        #[cfg(feature = "hydrate")]
        browser::run(move |b| (b.connect)(self, you_offer, ice_servers));
        #[cfg(not(feature = "hydrate"))]
        let _ = (you_offer, ice_servers);
    }

    /// A signal from the other side, applied in order.
    pub fn receive(self, signal: Signal) {
        match signal {
            Signal::Media { muted, camera_off } => {
                self.peer_muted.set(muted);
                self.peer_camera_off.set(camera_off);
            }
            Signal::Recording { on } => self.peer_recording.set(on),
            #[cfg(feature = "hydrate")]
            signal => browser::run(move |b| (b.receive)(self, signal)),
            #[cfg(not(feature = "hydrate"))]
            _ => {}
        }
    }

    /// Fresh STUN/TURN servers for the running call (see `call_resumed`).
    pub fn renew_ice_servers(self, ice_servers: Vec<IceServer>) {
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.renew_ice_servers)(self, ice_servers));
        #[cfg(not(feature = "hydrate"))]
        let _ = ice_servers;
    }

    /// The other side's connection came back or changed: the offering side renegotiates
    /// with fresh candidates.
    pub fn restart_ice(self) {
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.restart_ice)(self));
    }

    /// Whether media is flowing (the peer connection says connected).
    pub fn media_connected(self) -> bool {
        #[cfg(feature = "hydrate")]
        return browser::ask(|b| (b.media_connected)());
        #[cfg(not(feature = "hydrate"))]
        false
    }

    /// Ends the call's media: recording saved, tracks stopped, connections closed.
    pub fn close(self) {
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.close)(self));
    }

    pub fn toggle_mute(self) {
        self.muted.update(|m| *m = !*m);
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.apply_local_state)(self));
    }

    pub fn toggle_camera(self) {
        self.camera_off.update(|c| *c = !*c);
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.apply_local_state)(self));
    }

    /// Uses another camera (`videoinput`) or microphone (`audioinput`) in place of the
    /// current one, without renegotiating the call.
    pub fn switch_device(self, kind: &'static str, id: String) {
        #[cfg(feature = "hydrate")]
        browser::run(move |b| (b.switch_device)(self, kind, id));
        #[cfg(not(feature = "hydrate"))]
        let _ = (kind, id);
    }

    /// Starts or stops sharing the screen.
    pub fn toggle_screen(self) {
        #[cfg(feature = "hydrate")]
        browser::run(move |b| (b.toggle_screen)(self));
    }

    /// Starts or stops recording the call to a WebM file (downloaded when stopped).
    pub fn toggle_recording(self) {
        #[cfg(feature = "hydrate")]
        browser::run(move |b| (b.toggle_recording)(self));
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
        let sent = browser::ask(|b| (b.say)(text));
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

    /// Sends a file to the other side over a data channel of its own, with progress in
    /// [`Engine::transfers`].
    #[cfg(feature = "hydrate")]
    pub fn send_file(self, file: web_sys::File) {
        browser::run(move |b| (b.send_file)(self, file));
    }

    /// Reads `getStats` once into [`Engine::quality`].
    pub fn read_quality(self) {
        #[cfg(feature = "hydrate")]
        browser::run_if_started(move |b| (b.read_quality)(self));
    }

    /// Rings until [`Engine::stop_ring`] (or the call closes).
    pub fn ring(self) {
        #[cfg(feature = "hydrate")]
        browser::run(|b| (b.ring)());
    }

    pub fn stop_ring(self) {
        #[cfg(feature = "hydrate")]
        browser::run_if_started(|b| (b.stop_ring)());
    }
}

impl Engine {
    /// Loads the browser half now (a separate wasm chunk), so a call starts without waiting.
    pub fn preload() {
        #[cfg(feature = "hydrate")]
        browser::preload();
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn received_file_names_cannot_carry_paths_or_disguise_their_extension() {
        use super::clean_file_name;
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\x\\notes.txt"), "notes.txt");
        // "invoice" + RIGHT-TO-LEFT OVERRIDE + "fdp.exe" shows as "invoiceexe.pdf".
        assert_eq!(clean_file_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_file_name("a\u{2066}b\u{2069}\u{200f}.txt"), "ab.txt");
        assert_eq!(clean_file_name("line\nbreak"), "linebreak");
        assert_eq!(clean_file_name("  "), "file");
        assert_eq!(clean_file_name(&"x".repeat(500)).chars().count(), 120);
    }

    #[test]
    fn a_candidate_pair_tells_its_route() {
        assert_eq!(Route::of(Some(("host", None)), Some("host")), Route::Direct);
        assert_eq!(
            Route::of(Some(("srflx", None)), Some("host")),
            Route::ThroughNat
        );
        assert_eq!(
            Route::of(Some(("host", None)), Some("prflx")),
            Route::ThroughNat
        );
        assert_eq!(
            Route::of(Some(("relay", Some("udp"))), Some("srflx")),
            Route::Relayed { tcp: false }
        );
        assert_eq!(
            Route::of(Some(("relay", Some("tcp"))), Some("relay")),
            Route::Relayed { tcp: true }
        );
        assert_eq!(
            Route::of(Some(("prflx", None)), Some("relay")),
            Route::Relayed { tcp: false }
        );
    }
}
