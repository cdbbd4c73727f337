//! The engine's browser half (peer connections, devices, screen sharing, recording, chat,
//! stats, the ring tone) is a wasm chunk of its own: the split point below takes it out of
//! the bundle every page loads (`cargo leptos build --split`), and it loads the first time a
//! call needs it, or ahead of time with [`preload`] (the layout does that for whoever is
//! signed in and so may be called). [`Engine`]'s methods reach it through [`run`], which keeps
//! their order: whatever is asked before the chunk has arrived runs, in order, once it has.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

use leptos::{prelude::*, wasm_split::SplitLoaderError};

use super::{
    chat, devices, engine, files, recording, ring, screen, stats, Engine, Signal, Signaling,
};
use crate::protocol::IceServer;

/// The chunk's entry points: the `hydrate`-only modules of `webrtc`, as [`Engine`] uses them.
pub struct Browser {
    pub open: fn(Engine, Rc<dyn Signaling>, bool),
    pub connect: fn(Engine, bool, Vec<IceServer>),
    pub receive: fn(Engine, Signal),
    pub restart_ice: fn(Engine),
    pub renew_ice_servers: fn(Engine, Vec<IceServer>),
    pub media_connected: fn() -> bool,
    pub close: fn(Engine),
    pub apply_local_state: fn(Engine),
    pub switch_device: fn(Engine, &'static str, String),
    pub toggle_screen: fn(Engine),
    pub toggle_recording: fn(Engine),
    pub say: fn(&str) -> bool,
    pub send_file: fn(Engine, web_sys::File),
    pub read_quality: fn(Engine),
    pub ring: fn(),
    pub stop_ring: fn(),
}

/// The split point: only this function reaches the modules above, so they land in its chunk.
#[leptos::wasm_split::wasm_split(webrtc_engine, wasm_split_path = ::leptos::wasm_split, fallible)]
fn load() -> Result<&'static Browser, SplitLoaderError> {
    static BROWSER: Browser = Browser {
        open: engine::open,
        connect: engine::connect,
        receive: engine::receive,
        restart_ice: engine::restart_ice,
        renew_ice_servers: engine::renew_ice_servers,
        media_connected: engine::media_connected,
        close: |engine| {
            // A recording in progress is saved, not lost.
            if engine.recording_since.get_untracked().is_some() {
                recording::stop(engine);
            }
            engine::close();
        },
        apply_local_state: engine::apply_local_state,
        switch_device: devices::switch,
        toggle_screen: |engine| {
            if engine.sharing.get_untracked() {
                screen::stop(engine);
            } else {
                screen::share(engine);
            }
        },
        toggle_recording: |engine| {
            if engine.recording_since.get_untracked().is_some() {
                recording::stop(engine);
            } else if let Err(error) = recording::start(engine) {
                leptos::logging::warn!("recording failed: {error:?}");
                engine
                    .chat_error
                    .set(Some("This browser cannot record the call.".into()));
            }
        },
        say: chat::say,
        send_file: |engine, file| match engine::camera_pc() {
            Some(pc) if engine::media_connected() => files::send(engine, &pc, file),
            _ => engine
                .chat_error
                .set(Some("Files can be sent once the call is connected.".into())),
        },
        read_quality: |engine| {
            if let Some(pc) = engine::camera_pc() {
                stats::read(engine, pc);
            }
        },
        ring: ring::start,
        stop_ring: ring::stop,
    };
    Ok(&BROWSER)
}

type Waiting = Vec<Box<dyn FnOnce(&'static Browser)>>;

thread_local! {
    static LOADED: Cell<Option<&'static Browser>> = const { Cell::new(None) };
    /// What was asked while the chunk loads (`Some` from the first request until it is in).
    static WAITING: RefCell<Option<Waiting>> = const { RefCell::new(None) };
}

/// Runs `f` with the browser half: now if it is loaded, else once it is (loading it).
pub fn run(f: impl FnOnce(&'static Browser) + 'static) {
    if let Some(browser) = LOADED.get() {
        return f(browser);
    }
    let first = WAITING.with_borrow_mut(|waiting| {
        let first = waiting.is_none();
        waiting.get_or_insert_with(Vec::new).push(Box::new(f));
        first
    });
    if first {
        leptos::task::spawn_local(async {
            match load().await {
                Ok(browser) => {
                    // What the queued calls ask for in turn queues behind them.
                    while let Some(batch) = WAITING
                        .with_borrow_mut(|w| w.as_mut().map(std::mem::take))
                        .filter(|batch| !batch.is_empty())
                    {
                        for f in batch {
                            f(browser);
                        }
                    }
                    LOADED.set(Some(browser));
                    WAITING.set(None);
                }
                Err(error) => {
                    // The next request tries again.
                    leptos::logging::error!("the call engine could not load: {error}");
                    WAITING.set(None);
                }
            }
        });
    }
}

/// Runs `f` only if the browser half was ever asked for: an engine that never opened a call
/// has nothing to stop or close.
pub fn run_if_started(f: impl FnOnce(&'static Browser) + 'static) {
    if LOADED.get().is_some() || WAITING.with_borrow(Option::is_some) {
        run(f);
    }
}

/// Whether `f` says yes, asking the browser half only if it is loaded.
pub fn ask(f: impl FnOnce(&'static Browser) -> bool) -> bool {
    LOADED.get().is_some_and(f)
}

/// Starts loading the browser half, so a call starts without waiting for it.
pub fn preload() {
    run(|_| {});
}
