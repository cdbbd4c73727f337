//! Screen sharing, on its own peer connection so camera and screen are independent: the
//! sharer offers, the viewer answers. Either side may share; each direction has its own link.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, RtcTrackEvent};

use super::{
    engine::{self, show, tracks},
    negotiation::Negotiation,
    Engine, Signal,
};

/// One direction of screen sharing.
struct Link {
    negotiation: Negotiation,
    /// The captured screen, on the sharer's side.
    stream: Option<MediaStream>,
}

#[derive(Default)]
struct Screens {
    /// This side's screen going out, and the other side's coming in.
    out: Option<Link>,
    incoming: Option<Link>,
}

thread_local! {
    static SCREENS: RefCell<Screens> = RefCell::new(Screens::default());
}

/// A screen connection whose candidates go out as `ScreenCandidate`s; `to_sharer` on the
/// viewer's side.
fn negotiation(to_sharer: bool) -> Result<Negotiation, JsValue> {
    Negotiation::new(&engine::ice_servers(), engine::relay_only(), move |ice| {
        engine::send(&Signal::ScreenCandidate { ice, to_sharer })
    })
}

pub fn share(engine: Engine) {
    leptos::task::spawn_local(async move {
        if let Err(error) = start(engine).await {
            // Most often: the user closed the browser's picker.
            leptos::logging::warn!("screen sharing did not start: {error:?}");
        }
    });
}

async fn start(engine: Engine) -> Result<(), JsValue> {
    let devices = window().navigator().media_devices()?;
    let constraints = web_sys::DisplayMediaStreamConstraints::new();
    constraints.set_video(&JsValue::TRUE);
    let stream: MediaStream =
        JsFuture::from(devices.get_display_media_with_constraints(&constraints)?)
            .await?
            .dyn_into()?;
    let negotiation = negotiation(false)?;
    for track in tracks(&stream) {
        negotiation.pc().add_track_0(&track, &stream);
        // The browser's own "Stop sharing" button ends the track.
        let on_ended = Closure::<dyn FnMut()>::new(move || stop(engine));
        track.set_onended(Some(on_ended.as_ref().unchecked_ref()));
        negotiation.keep(on_ended);
    }
    let sdp = negotiation.offer(false).await?;
    SCREENS.with_borrow_mut(|s| {
        s.out = Some(Link {
            negotiation,
            stream: Some(stream),
        })
    });
    engine.sharing.set(true);
    engine::send(&Signal::ScreenOffer { sdp });
    Ok(())
}

pub fn stop(engine: Engine) {
    if let Some(link) = SCREENS.with_borrow_mut(|s| s.out.take()) {
        close(link);
        engine::send(&Signal::ScreenStopped);
    }
    engine.sharing.set(false);
}

fn close(link: Link) {
    if let Some(stream) = link.stream {
        for track in tracks(&stream) {
            track.set_onended(None);
            track.stop();
        }
    }
    link.negotiation.close();
}

/// Closes both directions (the call ended).
pub fn close_all() {
    let (out, incoming) = SCREENS.with_borrow_mut(|s| (s.out.take(), s.incoming.take()));
    for link in [out, incoming].into_iter().flatten() {
        close(link);
    }
    show("screen-video", None);
}

/// The screen connection that a signal is for.
fn link(sharer: bool) -> Option<Negotiation> {
    SCREENS.with_borrow(|s| {
        if sharer { &s.out } else { &s.incoming }
            .as_ref()
            .map(|l| l.negotiation.clone())
    })
}

/// Applies the other side's screen signaling.
pub async fn receive(engine: Engine, signal: Signal) -> Result<(), JsValue> {
    match signal {
        Signal::ScreenOffer { sdp } => {
            if let Some(old) = SCREENS.with_borrow_mut(|s| s.incoming.take()) {
                close(old);
            }
            let negotiation = negotiation(true)?;
            let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |event: RtcTrackEvent| {
                if let Ok(stream) = event.streams().get(0).dyn_into::<MediaStream>() {
                    engine.peer_sharing.set(true);
                    request_animation_frame(move || show("screen-video", Some(&stream)));
                }
            });
            negotiation
                .pc()
                .set_ontrack(Some(on_track.as_ref().unchecked_ref()));
            negotiation.keep(on_track);
            SCREENS.with_borrow_mut(|s| {
                s.incoming = Some(Link {
                    negotiation: negotiation.clone(),
                    stream: None,
                })
            });
            let sdp = negotiation.answer(&sdp).await?;
            engine::send(&Signal::ScreenAnswer { sdp });
        }
        Signal::ScreenAnswer { sdp } => {
            if let Some(negotiation) = link(true) {
                negotiation.accept(&sdp).await?;
            }
        }
        Signal::ScreenCandidate { ice, to_sharer } => {
            if let Some(negotiation) = link(to_sharer) {
                negotiation.add_candidate(ice).await?;
            }
        }
        Signal::ScreenStopped => {
            if let Some(link) = SCREENS.with_borrow_mut(|s| s.incoming.take()) {
                close(link);
            }
            show("screen-video", None);
            engine.peer_sharing.set(false);
        }
        _ => {}
    }
    Ok(())
}
