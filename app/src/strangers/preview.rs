//! The camera and microphone preview on the strangers page: how you will look, and a level
//! meter that moves when you speak, before anyone sees you. Asked for while the page is not
//! in a match and not text-only; stopped (the camera light goes off) as soon as a match
//! starts, text only is chosen, or the page is left. A refusal says what to do instead.

use leptos::prelude::*;

#[component]
pub fn Preview(
    /// Whether the preview should run now.
    #[prop(into)]
    active: Signal<bool>,
) -> impl IntoView {
    let video = NodeRef::<leptos::html::Video>::new();
    let level = RwSignal::new(0.0_f64);
    let problem = RwSignal::new(None::<String>);
    let running = RwSignal::new(false);

    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| {
            if active.get() {
                media::start(video, level, problem, running);
            } else {
                media::stop(running);
            }
        });
        on_cleanup(move || media::stop(running));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (video, level);

    view! {
        <figure class="stranger-preview" hidden=move || !active.get()>
            <video
                node_ref=video
                data-testid="stranger-preview"
                aria-label="Your camera"
                muted=true
                autoplay=true
                playsinline=true
            ></video>
            <figcaption>
                {move || if running.get() { "This is how the stranger will see you." } else { "Your camera appears here." }}
                " "
                <label for="mic-level">"Microphone"</label>
                " "
                <meter id="mic-level" data-testid="mic-level" min="0" max="1" value=move || level.get()></meter>
            </figcaption>
            <p class="form-error" role="alert" data-testid="preview-error">{move || problem.get()}</p>
        </figure>
    }
}

#[cfg(feature = "hydrate")]
mod media {
    use std::cell::RefCell;

    use leptos::prelude::*;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{AnalyserNode, AudioContext, MediaStream, MediaStreamConstraints};

    /// What runs while the preview shows.
    struct Running {
        stream: MediaStream,
        audio: Option<AudioContext>,
        meter: Option<IntervalHandle>,
    }

    thread_local! {
        static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
        /// Bumped by every stop: an answer that arrives after it is not kept.
        static GENERATION: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    pub fn start(
        video: NodeRef<leptos::html::Video>,
        level: RwSignal<f64>,
        problem: RwSignal<Option<String>>,
        running: RwSignal<bool>,
    ) {
        if RUNNING.with_borrow(Option::is_some) {
            return;
        }
        let generation = GENERATION.get();
        leptos::task::spawn_local(async move {
            match ask().await {
                Ok(stream) if GENERATION.get() == generation => {
                    if let Some(video) = video.get_untracked() {
                        video.set_src_object(Some(&stream));
                    }
                    let (audio, meter) = match meter(&stream, level) {
                        Some((audio, meter)) => (Some(audio), Some(meter)),
                        None => (None, None),
                    };
                    RUNNING.set(Some(Running {
                        stream,
                        audio,
                        meter,
                    }));
                    problem.set(None);
                    running.set(true);
                }
                Ok(late) => stop_tracks(&late),
                Err(error) => problem.set(Some(refusal(&error))),
            }
        });
    }

    pub fn stop(running: RwSignal<bool>) {
        GENERATION.set(GENERATION.get().wrapping_add(1));
        if let Some(r) = RUNNING.take() {
            stop_tracks(&r.stream);
            if let Some(meter) = r.meter {
                meter.clear();
            }
            if let Some(audio) = r.audio {
                let _ = audio.close();
            }
        }
        running.set(false);
    }

    async fn ask() -> Result<MediaStream, JsValue> {
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio(&JsValue::TRUE);
        constraints.set_video(&JsValue::TRUE);
        let devices = window().navigator().media_devices()?;
        JsFuture::from(devices.get_user_media_with_constraints(&constraints)?)
            .await?
            .dyn_into()
    }

    fn stop_tracks(stream: &MediaStream) {
        for track in stream.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
                track.stop();
            }
        }
    }

    /// The microphone's loudness, ten times a second, as 0..1.
    fn meter(stream: &MediaStream, level: RwSignal<f64>) -> Option<(AudioContext, IntervalHandle)> {
        if stream.get_audio_tracks().length() == 0 {
            return None;
        }
        let audio = AudioContext::new().ok()?;
        let source = audio.create_media_stream_source(stream).ok()?;
        let analyser: AnalyserNode = audio.create_analyser().ok()?;
        analyser.set_fft_size(512);
        source.connect_with_audio_node(&analyser).ok()?;
        let samples = RefCell::new(vec![0.0_f32; analyser.fft_size() as usize]);
        let handle = set_interval_with_handle(
            move || {
                let mut samples = samples.borrow_mut();
                analyser.get_float_time_domain_data(&mut samples);
                let rms =
                    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
                // Speech is around 0.05–0.3 RMS: spread that over the meter.
                level.set(f64::from((rms * 4.0).min(1.0)));
            },
            std::time::Duration::from_millis(100),
        )
        .ok()?;
        Some((audio, handle))
    }

    /// What to tell someone whose camera or microphone could not be used.
    fn refusal(error: &JsValue) -> String {
        let name = js_sys::Reflect::get(error, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .unwrap_or_default();
        match name.as_str() {
            "NotAllowedError" => "The browser was not allowed to use your camera or microphone: allow them in the address bar, or choose Text only.".into(),
            "NotFoundError" | "OverconstrainedError" => "No camera or microphone was found: plug one in, or choose Text only.".into(),
            "NotReadableError" => "Your camera or microphone is in use by another program: close it, or choose Text only.".into(),
            _ => "Your camera or microphone could not be started: choose Text only to chat without them.".into(),
        }
    }
}
