//! The call itself: the signaling channel, the camera peer connection and the order in which
//! the other side's signals are applied; connection state, ICE restarts and the end of a call.
//! Helpers for video elements and tracks that the other modules share.

use std::{cell::RefCell, collections::VecDeque, rc::Rc, time::Duration};

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{
    HtmlMediaElement, MediaStream, MediaStreamTrack, RtcDataChannelEvent, RtcPeerConnection,
    RtcPeerConnectionState, RtcTrackEvent,
};

use super::{
    chat, devices, files, negotiation::Negotiation, ring, screen, stats, Engine, Link, Signal,
    Signaling,
};
use crate::protocol::IceServer;

#[derive(Default)]
struct State {
    channel: Option<Rc<dyn Signaling>>,
    video: bool,
    ice_servers: Vec<IceServer>,
    relay_only: bool,
    camera: Option<Negotiation>,
    you_offer: bool,
    /// Signals waiting for the camera connection, applied one at a time.
    queue: VecDeque<Signal>,
    pumping: bool,
    remote: Option<MediaStream>,
    /// Whether media still arrives (see [`watch`]).
    watch: Watch,
    watchdog: Option<IntervalHandle>,
}

/// Inbound media seen by the watchdog: bytes so far, when they last grew, when it last
/// restarted ICE (all in ms since the epoch).
#[derive(Default)]
struct Watch {
    bytes: f64,
    grew_at: f64,
    recovered_at: f64,
}

/// No inbound media for this long while connected: the path is lost.
const SILENCE_MS: f64 = 1500.0;
/// The watchdog's restarts are at least this far apart: a restart takes well under a second
/// when its offer gets through, but one sent on a signaling socket that died with the old
/// network is lost, and waiting longer before the next try is what made recovery take 7 s.
const RECOVER_EVERY_MS: f64 = 2500.0;

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with_borrow_mut(f)
}

/// Sends a signal to the other side through the call's channel.
pub fn send(signal: &Signal) {
    if let Some(channel) = with(|s| s.channel.clone()) {
        channel.send(signal);
    }
}

/// The STUN/TURN servers of the call.
pub fn ice_servers() -> Vec<IceServer> {
    with(|s| s.ice_servers.clone())
}

/// Whether the call goes through TURN only.
pub fn relay_only() -> bool {
    with(|s| s.relay_only)
}

pub fn camera_pc() -> Option<RtcPeerConnection> {
    with(|s| s.camera.as_ref().map(|c| c.pc().clone()))
}

/// The other side's camera and microphone, once they arrive.
pub fn remote() -> Option<MediaStream> {
    with(|s| s.remote.clone())
}

pub fn element(id: &str) -> Option<HtmlMediaElement> {
    document().get_element_by_id(id)?.dyn_into().ok()
}

/// Shows a stream in the video element with this id (or empties it).
pub fn show(id: &str, stream: Option<&MediaStream>) {
    if let Some(video) = element(id) {
        video.set_src_object(stream);
        if stream.is_some() {
            let _ = video.play();
        }
    }
}

pub fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
    stream
        .get_tracks()
        .iter()
        .filter_map(|t| t.dyn_into().ok())
        .collect()
}

pub fn open(engine: Engine, channel: Rc<dyn Signaling>, video: bool) {
    with(|s| {
        s.channel = Some(channel.clone());
        s.video = video;
    });
    leptos::task::spawn_local(async move {
        if let Err(error) = devices::local_media(engine, video).await {
            leptos::logging::warn!("camera/microphone unavailable: {error:?}");
            // Only if this call is still on (another may have begun meanwhile).
            let current = with(|s| {
                s.channel
                    .as_ref()
                    .is_some_and(|c| std::ptr::addr_eq(Rc::as_ptr(c), Rc::as_ptr(&channel)))
            });
            if !current {
                return;
            }
            channel.give_up(
                "Your camera or microphone is not available. Check the browser's permissions.",
            );
        }
    });
}

pub fn connect(engine: Engine, you_offer: bool, ice_servers: Vec<IceServer>) {
    leptos::task::spawn_local(async move {
        let video = with(|s| s.video);
        // The same stream as the preview's (asked for once per call).
        let Ok(stream) = devices::local_media(engine, video).await else {
            return;
        };
        let relay_only = engine.relay_only.get_untracked();
        with(|s| {
            s.ice_servers = ice_servers.clone();
            s.relay_only = relay_only;
        });
        let on_candidate = |ice| send(&Signal::Candidate { ice });
        let camera = match Negotiation::new(&ice_servers, relay_only, on_candidate) {
            Ok(camera) => camera,
            Err(error) => {
                leptos::logging::warn!("no peer connection: {error:?}");
                if let Some(channel) = with(|s| s.channel.clone()) {
                    channel.give_up("This browser cannot make calls.");
                }
                return;
            }
        };
        let pc = camera.pc().clone();
        let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(|event: RtcTrackEvent| {
            if let Ok(stream) = event.streams().get(0).dyn_into::<MediaStream>() {
                show("remote-video", Some(&stream));
                with(|s| s.remote = Some(stream));
            }
        });
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
        let watched = pc.clone();
        let on_state = Closure::<dyn FnMut()>::new(move || match watched.connection_state() {
            RtcPeerConnectionState::Connected => engine.link.set(Link::Connected),
            RtcPeerConnectionState::Disconnected => {
                engine.link.set(Link::Reconnecting);
                media_lost();
                // Give the path a moment to come back by itself, then restart ICE.
                let pc = watched.clone();
                set_timeout(
                    move || {
                        if pc.connection_state() == RtcPeerConnectionState::Disconnected {
                            recover(engine);
                        }
                    },
                    RESTART_AFTER,
                );
            }
            RtcPeerConnectionState::Failed => {
                engine.link.set(Link::Failed);
                media_lost();
                recover(engine);
            }
            _ => {}
        });
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        // The chat channel: the offering side opens it, the other receives it. Either side
        // opens a channel of its own for each file it sends.
        if you_offer {
            chat::attach(engine, pc.create_data_channel("chat"));
        }
        let on_channel =
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |event: RtcDataChannelEvent| {
                let channel = event.channel();
                let label = channel.label();
                if label == "chat" && !you_offer {
                    chat::attach(engine, channel);
                } else if label.starts_with("file:") {
                    files::receive(engine, channel);
                } else {
                    channel.close();
                }
            });
        pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        camera.keep(on_channel);
        camera.keep(on_track);
        camera.keep(on_state);
        watch(engine, pc.clone());
        for track in tracks(&stream) {
            pc.add_track_0(&track, &stream);
        }
        with(|s| {
            s.camera = Some(camera.clone());
            s.you_offer = you_offer;
        });
        apply_local_state(engine);
        if you_offer {
            offer(&camera, false).await;
        }
        pump(engine).await;
    });
}

async fn offer(camera: &Negotiation, ice_restart: bool) {
    match camera.offer(ice_restart).await {
        Ok(sdp) => send(&Signal::Offer { sdp }),
        Err(error) => leptos::logging::warn!("creating an offer failed: {error:?}"),
    }
}

pub fn receive(engine: Engine, signal: Signal) {
    with(|s| s.queue.push_back(signal));
    leptos::task::spawn_local(pump(engine));
}

async fn pump(engine: Engine) {
    let Some(camera) = with(|s| (!s.pumping).then(|| s.camera.clone()).flatten()) else {
        return;
    };
    with(|s| s.pumping = true);
    while let Some(signal) = with(|s| s.queue.pop_front()) {
        if let Err(error) = apply(engine, &camera, signal).await {
            leptos::logging::warn!("call signaling failed: {error:?}");
        }
    }
    with(|s| s.pumping = false);
}

async fn apply(engine: Engine, camera: &Negotiation, signal: Signal) -> Result<(), JsValue> {
    match signal {
        Signal::Offer { sdp } => {
            let sdp = camera.answer(&sdp).await?;
            send(&Signal::Answer { sdp });
        }
        Signal::Answer { sdp } => camera.accept(&sdp).await?,
        Signal::Candidate { ice } => camera.add_candidate(ice).await?,
        Signal::RestartIce => restart_ice(engine),
        Signal::Media { .. } | Signal::Recording { .. } => {}
        other => screen::receive(engine, other).await?,
    }
    Ok(())
}

pub fn media_connected() -> bool {
    camera_pc().is_some_and(|pc| pc.connection_state() == RtcPeerConnectionState::Connected)
}

/// Checks twice a second that media still arrives. A path that dies while the browser notices
/// no change of its own (its router got a new public address, a NAT forgot its mapping)
/// takes Chrome several seconds to call "disconnected"; no inbound bytes for [`SILENCE_MS`]
/// is enough here. When media flows again the call is shown connected again.
fn watch(engine: Engine, pc: RtcPeerConnection) {
    let handle = set_interval_with_handle(
        move || {
            let pc = pc.clone();
            leptos::task::spawn_local(async move {
                let Some(report) = stats::report(&pc).await else {
                    return;
                };
                // A reading of a connection this call no longer uses (closed, or rebuilt
                // meanwhile) says nothing about the current one.
                if camera_pc().as_ref() != Some(&pc) {
                    return;
                }
                let bytes = stats::inbound_bytes(&report);
                let now = js_sys::Date::now();
                let (grew, lost) = with(|s| {
                    let w = &mut s.watch;
                    if bytes > w.bytes {
                        w.bytes = bytes;
                        w.grew_at = now;
                        return (true, false);
                    }
                    let lost = w.bytes > 0.0
                        && now - w.grew_at >= SILENCE_MS
                        && now - w.recovered_at >= RECOVER_EVERY_MS;
                    if lost {
                        w.recovered_at = now;
                    }
                    (false, lost)
                });
                let connected = pc.connection_state() == RtcPeerConnectionState::Connected;
                if grew && connected && engine.link.get_untracked() == Link::Reconnecting {
                    engine.link.set(Link::Connected);
                } else if lost && pc.connection_state() != RtcPeerConnectionState::Closed {
                    leptos::logging::warn!("no media for a while: restarting ICE");
                    engine.link.set(Link::Reconnecting);
                    media_lost();
                    recover(engine);
                }
            });
        },
        Duration::from_millis(500),
    );
    with(|s| {
        s.watch = Watch::default();
        if let Some(old) = std::mem::replace(&mut s.watchdog, handle.ok()) {
            old.clear();
        }
    });
}

/// How long a disconnected media path may take to come back by itself before ICE restarts.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Tells the channel the media path broke (it may check itself at once).
fn media_lost() {
    if let Some(channel) = with(|s| s.channel.clone()) {
        channel.media_lost();
    }
}

/// The media path is gone: the offering side restarts ICE, the other side asks it to (so
/// either side noticing is enough).
fn recover(engine: Engine) {
    if with(|s| s.you_offer) {
        restart_ice(engine);
    } else {
        send(&Signal::RestartIce);
    }
}

/// Fresh STUN/TURN servers for this call (new TURN credentials after its socket came back):
/// the next ICE gathering, and a screen shared from now on, use them.
pub fn renew_ice_servers(_engine: Engine, ice_servers: Vec<IceServer>) {
    if ice_servers.is_empty() {
        return;
    }
    let (camera, relay_only) = with(|s| {
        s.ice_servers = ice_servers.clone();
        (s.camera.clone(), s.relay_only)
    });
    if let Some(camera) = camera {
        camera.renew_servers(&ice_servers, relay_only);
    }
}

/// After a network change: the offering side renegotiates with fresh ICE candidates.
pub fn restart_ice(_engine: Engine) {
    let Some(camera) = with(|s| s.you_offer.then(|| s.camera.clone()).flatten()) else {
        return;
    };
    leptos::task::spawn_local(async move { offer(&camera, true).await });
}

/// Applies mute and camera-off to the local tracks and tells the other side.
pub fn apply_local_state(engine: Engine) {
    let (muted, camera_off) = (
        engine.muted.get_untracked(),
        engine.camera_off.get_untracked(),
    );
    if let Some(stream) = devices::local() {
        for track in tracks(&stream) {
            track.set_enabled(if track.kind() == "audio" {
                !muted
            } else {
                !camera_off
            });
        }
    }
    send(&Signal::Media { muted, camera_off });
}

pub fn close() {
    ring::stop();
    stats::forget();
    screen::close_all();
    chat::close();
    files::close();
    devices::release();
    let camera = with(|s| {
        s.channel = None;
        s.remote = None;
        s.queue.clear();
        s.you_offer = false;
        if let Some(watchdog) = s.watchdog.take() {
            watchdog.clear();
        }
        s.camera.take()
    });
    if let Some(camera) = camera {
        camera.close();
    }
    show("remote-video", None);
}
