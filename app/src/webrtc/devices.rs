//! The camera and microphone: asked for once per call, listed for the pickers, switched
//! mid-call with `replaceTrack` (no renegotiation), and followed as they are plugged in or out.

use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamConstraints, MediaStreamTrack};

use super::{
    engine::{self, show, tracks},
    Device, Engine,
};

thread_local! {
    /// This side's camera and microphone, for the current call.
    static LOCAL: RefCell<Option<MediaStream>> = const { RefCell::new(None) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    /// Counts released streams: an answer from `getUserMedia` that arrives after its call
    /// ended is not kept.
    static RELEASED: Cell<u32> = const { Cell::new(0) };
}

fn stop_all(stream: &MediaStream) {
    for track in tracks(stream) {
        track.stop();
    }
}

pub fn local() -> Option<MediaStream> {
    LOCAL.with_borrow(|l| l.clone())
}

async fn get_user_media(constraints: &MediaStreamConstraints) -> Result<MediaStream, JsValue> {
    let devices = window().navigator().media_devices()?;
    JsFuture::from(devices.get_user_media_with_constraints(constraints)?)
        .await?
        .dyn_into()
}

/// The camera (if `video`) and microphone, asked for once per call and shown as the preview.
pub async fn local_media(engine: Engine, video: bool) -> Result<MediaStream, JsValue> {
    if let Some(stream) = local() {
        return Ok(stream);
    }
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&JsValue::TRUE);
    constraints.set_video(&JsValue::from_bool(video));
    let released = RELEASED.get();
    let asked = get_user_media(&constraints).await?;
    if RELEASED.get() != released {
        stop_all(&asked);
        return Err("the call ended meanwhile".into());
    }
    // A second request may have finished first: keep one.
    let first = LOCAL.with_borrow_mut(|l| match l {
        Some(first) => Some(first.clone()),
        None => {
            *l = Some(asked.clone());
            None
        }
    });
    if let Some(first) = first {
        stop_all(&asked);
        return Ok(first);
    }
    let stream = asked;
    for track in tracks(&stream) {
        in_use(engine, &track).set(device_id(&track));
    }
    refresh(engine);
    watch(engine);
    // The window may have just appeared: show the preview on the next frame.
    let preview = stream.clone();
    request_animation_frame(move || show("local-video", Some(&preview)));
    Ok(stream)
}

/// Stops the camera and microphone at the end of a call.
pub fn release() {
    RELEASED.set(RELEASED.get().wrapping_add(1));
    if let Some(stream) = LOCAL.take() {
        stop_all(&stream);
    }
    show("local-video", None);
}

fn device_id(track: &MediaStreamTrack) -> Option<String> {
    js_sys::Reflect::get(&track.get_settings(), &"deviceId".into())
        .ok()?
        .as_string()
}

/// The signal holding the device in use for this kind of track.
fn in_use(engine: Engine, track: &MediaStreamTrack) -> RwSignal<Option<String>> {
    if track.kind() == "audio" {
        engine.microphone
    } else {
        engine.camera
    }
}

/// Lists cameras and microphones; if the one in use went away, takes another.
fn refresh(engine: Engine) {
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
        let found: Vec<Device> = js_sys::Array::from(&list)
            .iter()
            .filter_map(|d| d.dyn_into::<web_sys::MediaDeviceInfo>().ok())
            .filter_map(|d| {
                let kind = match d.kind() {
                    web_sys::MediaDeviceKind::Videoinput => "videoinput",
                    web_sys::MediaDeviceKind::Audioinput => "audioinput",
                    _ => return None,
                };
                Some(Device {
                    kind: kind.into(),
                    id: d.device_id(),
                    label: d.label(),
                })
            })
            .collect();
        for (kind, current) in [
            ("videoinput", engine.camera),
            ("audioinput", engine.microphone),
        ] {
            let Some(id) = current.get_untracked() else {
                continue;
            };
            let still_there = found.iter().any(|d| d.kind == kind && d.id == id);
            if !still_there {
                if let Some(other) = found.iter().find(|d| d.kind == kind) {
                    switch(engine, kind, other.id.clone());
                }
            }
        }
        engine.devices.set(found);
    });
}

/// Reacts to devices being plugged in or unplugged, for the page's lifetime.
fn watch(engine: Engine) {
    if WATCHING.replace(true) {
        return;
    }
    if let Ok(devices) = window().navigator().media_devices() {
        let on_change = Closure::<dyn FnMut()>::new(move || refresh(engine));
        devices.set_ondevicechange(Some(on_change.as_ref().unchecked_ref()));
        on_change.forget();
    }
}

/// Swaps one local track for another device's: the senders get the new track
/// (`replaceTrack`), so the call is not renegotiated.
pub fn switch(engine: Engine, kind: &'static str, id: String) {
    leptos::task::spawn_local(async move {
        if let Err(error) = replace(engine, kind, id).await {
            leptos::logging::warn!("switching device failed: {error:?}");
        }
    });
}

async fn replace(engine: Engine, kind: &'static str, id: String) -> Result<(), JsValue> {
    let Some(stream) = local() else {
        return Ok(());
    };
    let exact =
        js_sys::JSON::parse(&serde_json::json!({ "deviceId": { "exact": id } }).to_string())?;
    let constraints = MediaStreamConstraints::new();
    let track_kind = if kind == "audioinput" {
        constraints.set_audio(&exact);
        "audio"
    } else {
        constraints.set_video(&exact);
        "video"
    };
    let fresh = get_user_media(&constraints).await?;
    let Some(track) = tracks(&fresh).into_iter().find(|t| t.kind() == track_kind) else {
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
    if let Some(pc) = engine::camera_pc() {
        for sender in pc.get_senders().iter() {
            let sender: web_sys::RtcRtpSender = sender.unchecked_into();
            if sender.track().is_none_or(|t| t.kind() == track_kind) {
                JsFuture::from(sender.replace_track(Some(&track))).await?;
                break;
            }
        }
    }
    in_use(engine, &track).set(Some(id));
    engine::apply_local_state(engine);
    show("local-video", Some(&stream));
    Ok(())
}
