//! Recording the call to a WebM file: both videos side by side on a canvas and both voices
//! mixed with WebAudio, through `MediaRecorder`; the file gets its duration (`webm`) and
//! downloads. The canvas is redrawn by a timer, and while the tab is hidden (where browsers
//! slow timers to once a second or less) also by the audio clock, which keeps its pace.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AudioContext, CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaRecorder,
    MediaStream, ScriptProcessorNode,
};

use super::{devices, engine, Engine, Signal};

/// The height of the recorded picture; each video is scaled to it.
const HEIGHT: f64 = 480.0;
/// Frames drawn per second.
const FPS: f64 = 20.0;

/// The audio node that paints while the tab is hidden, and its handler.
type AudioClock = (ScriptProcessorNode, Closure<dyn FnMut()>);
/// Draws the next frame of the composed picture.
type Paint = Rc<dyn Fn()>;
/// The recorder's `dataavailable` and `stop` handlers.
type RecorderHandlers = (Closure<dyn FnMut(web_sys::BlobEvent)>, Closure<dyn FnMut()>);

struct Recording {
    recorder: MediaRecorder,
    mixer: AudioContext,
    /// The canvas's stream: its track stops with the recording.
    picture: MediaStream,
    timers: [IntervalHandle; 2],
    /// The audio clock that paints while the tab is hidden, if WebAudio gave one.
    clock: Option<AudioClock>,
    handlers: RecorderHandlers,
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

fn video(id: &str) -> Option<HtmlVideoElement> {
    document().get_element_by_id(id)?.dyn_into().ok()
}

/// The width a video takes when scaled to `HEIGHT` (4:3 if it has no picture yet).
fn scaled_width(video: Option<&HtmlVideoElement>) -> f64 {
    match video.map(|v| (v.video_width(), v.video_height())) {
        Some((w, h)) if w > 0 && h > 0 => (w as f64 * HEIGHT / h as f64).round(),
        _ => (HEIGHT * 4.0 / 3.0).round(),
    }
}

/// Draws a video into the box `(x, 0, width, HEIGHT)`, whole and centred.
fn draw(context: &CanvasRenderingContext2d, video: Option<&HtmlVideoElement>, x: f64, width: f64) {
    let Some(video) = video else { return };
    let (w, h) = (video.video_width() as f64, video.video_height() as f64);
    if w == 0.0 || h == 0.0 {
        return;
    }
    let scale = (width / w).min(HEIGHT / h);
    let (dw, dh) = (w * scale, h * scale);
    let _ = context.draw_image_with_html_video_element_and_dw_and_dh(
        video,
        x + (width - dw) / 2.0,
        (HEIGHT - dh) / 2.0,
        dw,
        dh,
    );
}

/// The other side's video on the left and this side's on the right, on a canvas; returns the
/// canvas's stream and what paints it.
fn compose() -> Result<(MediaStream, Paint), JsValue> {
    let (remote, local) = (video("remote-video"), video("local-video"));
    let (remote_width, local_width) = (scaled_width(remote.as_ref()), scaled_width(local.as_ref()));
    let canvas: HtmlCanvasElement = document().create_element("canvas")?.dyn_into()?;
    canvas.set_width((remote_width + local_width) as u32);
    canvas.set_height(HEIGHT as u32);
    let context: CanvasRenderingContext2d = canvas
        .get_context("2d")?
        .ok_or("no 2d canvas")?
        .dyn_into()?;
    let paint = move || {
        context.set_fill_style_str("#000");
        context.fill_rect(0.0, 0.0, remote_width + local_width, HEIGHT);
        draw(&context, remote.as_ref(), 0.0, remote_width);
        draw(&context, local.as_ref(), remote_width, local_width);
    };
    paint();
    let stream = canvas.capture_stream_with_frame_request_rate(FPS)?;
    Ok((stream, Rc::new(paint)))
}

/// Paints while the tab is hidden, at the pace of the audio clock (2048 samples: about 23
/// times a second at 48 kHz). The node must reach the output to run: through silence.
fn audio_clock(mixer: &AudioContext, paint: Paint) -> Result<AudioClock, JsValue> {
    let node = mixer.create_script_processor_with_buffer_size(2048)?;
    let silence = mixer.create_gain()?;
    silence.gain().set_value(0.0);
    node.connect_with_audio_node(&silence)?;
    silence.connect_with_audio_node(&mixer.destination())?;
    let tick = Closure::<dyn FnMut()>::new(move || {
        if document().hidden() {
            paint();
        }
    });
    node.set_onaudioprocess(Some(tick.as_ref().unchecked_ref()));
    Ok((node, tick))
}

pub fn start(engine: Engine) -> Result<(), JsValue> {
    let remote = engine::remote().ok_or("no remote stream yet")?;
    let local = devices::local();
    let mixer = AudioContext::new()?;
    let mix = mixer.create_media_stream_destination()?;
    for stream in [Some(&remote), local.as_ref()].into_iter().flatten() {
        if stream.get_audio_tracks().length() > 0 {
            mixer
                .create_media_stream_source(stream)?
                .connect_with_audio_node(&mix)?;
        }
    }
    let (picture, paint) = compose()?;
    let clock = audio_clock(&mixer, paint.clone())
        .inspect_err(|error| leptos::logging::warn!("no audio clock for the recording: {error:?}"))
        .ok();
    let painter = set_interval_with_handle(
        move || paint(),
        Duration::from_millis((1000.0 / FPS) as u64),
    )
    .map_err(|_| JsValue::from_str("no timer"))?;
    let tracks = js_sys::Array::new();
    for track in picture.get_video_tracks().iter() {
        tracks.push(&track);
    }
    for track in mix.stream().get_audio_tracks().iter() {
        tracks.push(&track);
    }
    let stream = MediaStream::new_with_tracks(&tracks)?;
    let options = web_sys::MediaRecorderOptions::new();
    let mime = ["video/webm;codecs=vp8,opus", "video/webm"]
        .into_iter()
        .find(|m| MediaRecorder::is_type_supported(m))
        .ok_or("WebM recording is not supported")?;
    options.set_mime_type(mime);
    let recorder =
        MediaRecorder::new_with_media_stream_and_media_recorder_options(&stream, &options)?;

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
            engine.recorded_secs.set(secs);
        },
        Duration::from_millis(500),
    )
    .map_err(|_| JsValue::from_str("no timer"))?;
    engine.recorded_secs.set(0);
    engine.recording_since.set(Some(started));
    RECORDING.set(Some(Recording {
        recorder,
        mixer,
        picture,
        timers: [ticker, painter],
        clock,
        handlers: (on_data, on_stop),
    }));
    engine::send(&Signal::Recording { on: true });
    Ok(())
}

/// Stops recording; the file downloads once the recorder hands over its last chunk.
pub fn stop(engine: Engine) {
    if let Some(recording) = RECORDING.take() {
        let _ = recording.recorder.stop();
        for timer in recording.timers {
            timer.clear();
        }
        if let Some((node, _)) = &recording.clock {
            node.set_onaudioprocess(None);
            let _ = node.disconnect();
        }
        // The stop event still has to fire: keep the handlers and the sources until then.
        let keep = (recording.handlers, recording.picture, recording.mixer);
        set_timeout(
            move || {
                let (handlers, picture, mixer) = keep;
                drop(handlers);
                for track in engine::tracks(&picture) {
                    track.stop();
                }
                let _ = mixer.close();
            },
            Duration::from_secs(10),
        );
    }
    engine.recording_since.set(None);
    engine::send(&Signal::Recording { on: false });
}

/// Joins the chunks, writes the duration into the WebM, and downloads it.
async fn save(parts: js_sys::Array, duration_ms: f64) -> Result<(), JsValue> {
    let blob = web_sys::Blob::new_with_blob_sequence(&parts)?;
    let buffer = JsFuture::from(blob.array_buffer()).await?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    let bytes = super::webm::with_duration(&bytes, duration_ms).unwrap_or(bytes);
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
