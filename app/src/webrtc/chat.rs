//! Chat during the call, straight between the two browsers over a data channel (the
//! offering side opens it): never stored, gone when the call ends.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState};

use super::{Engine, MAX_CHAT_CHARS};

type Channel = (RtcDataChannel, Closure<dyn FnMut(MessageEvent)>);

thread_local! {
    static CHANNEL: RefCell<Option<Channel>> = const { RefCell::new(None) };
}

pub fn attach(engine: Engine, channel: RtcDataChannel) {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(text) = event.data().as_string() {
            let text: String = text.chars().take(MAX_CHAT_CHARS).collect();
            engine.chat.update(|c| c.push((false, text)));
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    CHANNEL.set(Some((channel, on_message)));
}

pub fn say(text: &str) -> bool {
    CHANNEL.with_borrow(|c| match c {
        Some((channel, _)) if channel.ready_state() == RtcDataChannelState::Open => {
            channel.send_with_str(text).is_ok()
        }
        _ => false,
    })
}

pub fn close() {
    if let Some((channel, _)) = CHANNEL.take() {
        channel.set_onmessage(None);
        channel.close();
    }
}
