//! The ring tone of an incoming call: a soft beep every 1.5 s until answered or ended.

use std::{cell::RefCell, rc::Rc, time::Duration};

use leptos::prelude::*;
use web_sys::AudioContext;

thread_local! {
    static RING: RefCell<Option<(AudioContext, IntervalHandle)>> = const { RefCell::new(None) };
}

pub fn start() {
    stop();
    let Ok(context) = AudioContext::new() else {
        return;
    };
    let beep = {
        let context = context.clone();
        move || {
            let (Ok(osc), Ok(gain)) = (context.create_oscillator(), context.create_gain()) else {
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
        RING.set(Some((context, handle)));
    }
}

pub fn stop() {
    if let Some((context, handle)) = RING.take() {
        handle.clear();
        let _ = context.close();
    }
}
