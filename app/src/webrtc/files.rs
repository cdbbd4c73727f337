//! Files sent during a call, straight between the two browsers: one data channel per file
//! (`file:<n>`), a JSON header then 16 KiB chunks, paced by the channel's buffered amount so a
//! large file never overfills it (the channel would close). The receiver checks every byte
//! against the header, assembles a `Blob` and offers it for download; nothing is stored.

use std::cell::RefCell;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, File, MessageEvent, RtcDataChannel, RtcDataChannelState,
    RtcDataChannelType, RtcPeerConnection, Url,
};

use super::{Engine, Transfer, MAX_FILE_BYTES};

const CHUNK: f64 = 16.0 * 1024.0;
/// Sending pauses above this much queued in the channel, and resumes below the low mark.
const HIGH_WATER: u32 = 1 << 20;
const LOW_WATER: u32 = 256 * 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    name: String,
    size: u64,
}

/// What a file channel keeps alive: its handlers.
struct Open {
    id: u32,
    channel: RtcDataChannel,
    _handlers: Vec<Box<dyn std::any::Any>>,
}

#[derive(Default)]
struct State {
    next_id: u32,
    open: Vec<Open>,
    urls: Vec<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn next_id() -> u32 {
    STATE.with_borrow_mut(|s| {
        s.next_id += 1;
        s.next_id
    })
}

fn update(engine: Engine, id: u32, f: impl FnOnce(&mut Transfer)) {
    engine.transfers.update(|list| {
        if let Some(t) = list.iter_mut().find(|t| t.id == id) {
            f(t);
        }
    });
}

fn fail(engine: Engine, id: u32, why: &str) {
    update(engine, id, |t| {
        if t.url.is_none() && !t.sent() {
            t.failed = Some(why.to_string());
        }
    });
}

fn forget(id: u32) {
    STATE.with_borrow_mut(|s| s.open.retain(|o| o.id != id));
}

/// Sends `file` to the other side over a channel of its own.
pub fn send(engine: Engine, pc: &RtcPeerConnection, file: File) {
    let size = file.size();
    if size > MAX_FILE_BYTES as f64 {
        engine.chat_error.set(Some(format!(
            "A file can have at most {} MB.",
            MAX_FILE_BYTES / 1_000_000
        )));
        return;
    }
    let id = next_id();
    let name = super::clean_file_name(&file.name());
    let channel = pc.create_data_channel(&format!("file:{id}"));
    channel.set_binary_type(RtcDataChannelType::Arraybuffer);
    channel.set_buffered_amount_low_threshold(LOW_WATER);
    engine.transfers.update(|list| {
        list.push(Transfer {
            id,
            mine: true,
            name: name.clone(),
            size: size as u64,
            done: 0,
            url: None,
            failed: None,
        })
    });
    let header = Header {
        name,
        size: size as u64,
    };
    let sender = channel.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        let (channel, file) = (sender.clone(), file.clone());
        let header = serde_json::to_string(&header).unwrap_or_default();
        leptos::task::spawn_local(async move {
            if let Err(error) = pump(engine, id, &channel, &file, &header).await {
                leptos::logging::warn!("sending a file failed: {error:?}");
                fail(engine, id, "The file could not be sent.");
            }
        });
    });
    channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let why = "The call's connection closed before the file was sent.";
    keep(engine, id, channel, Box::new(on_open), why);
}

/// Keeps a file channel and its handler alive until it closes; a close before the end fails
/// the transfer with `why`.
fn keep(
    engine: Engine,
    id: u32,
    channel: RtcDataChannel,
    handler: Box<dyn std::any::Any>,
    why: &'static str,
) {
    let on_close = Closure::<dyn FnMut()>::new(move || {
        fail(engine, id, why);
        forget(id);
    });
    channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    STATE.with_borrow_mut(|s| {
        s.open.push(Open {
            id,
            channel,
            _handlers: vec![handler, Box::new(on_close)],
        })
    });
}

/// Resolves once the channel's queue has drained below the low mark.
async fn drained(channel: &RtcDataChannel) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        channel.set_onbufferedamountlow(Some(&resolve));
    });
    let _ = JsFuture::from(promise).await;
    channel.set_onbufferedamountlow(None);
}

async fn pump(
    engine: Engine,
    id: u32,
    channel: &RtcDataChannel,
    file: &File,
    header: &str,
) -> Result<(), JsValue> {
    channel.send_with_str(header)?;
    let size = file.size();
    let mut offset = 0.0;
    while offset < size {
        if channel.ready_state() != RtcDataChannelState::Open {
            return Err("closed".into());
        }
        if channel.buffered_amount() > HIGH_WATER {
            drained(channel).await;
            continue;
        }
        let end = (offset + CHUNK).min(size);
        let piece = file.slice_with_f64_and_f64(offset, end)?;
        let buffer = JsFuture::from(piece.array_buffer()).await?;
        channel.send_with_array_buffer(&buffer.dyn_into()?)?;
        offset = end;
        update(engine, id, |t| t.done = offset as u64);
    }
    Ok(())
}

/// A file channel the other side opened: receive the file it announces, and nothing more.
pub fn receive(engine: Engine, channel: RtcDataChannel) {
    channel.set_binary_type(RtcDataChannelType::Arraybuffer);
    let id = next_id();
    let pieces = js_sys::Array::new();
    // The announced size once the header came, and the bytes so far.
    let mut expected: Option<u64> = None;
    let mut received = 0u64;
    let this = channel.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        match expected {
            None => {
                let parsed = data
                    .as_string()
                    .and_then(|text| serde_json::from_str::<Header>(&text).ok());
                let Some(h) = parsed.filter(|h| h.size <= MAX_FILE_BYTES) else {
                    // Not a file we accept: close it.
                    this.close();
                    return;
                };
                let name = super::clean_file_name(&h.name);
                engine.transfers.update(|list| {
                    list.push(Transfer {
                        id,
                        mine: false,
                        name: name.clone(),
                        size: h.size,
                        done: 0,
                        url: None,
                        failed: None,
                    })
                });
                expected = Some(h.size);
                if h.size == 0 {
                    finish(engine, id, &pieces);
                    this.close();
                }
            }
            Some(size) => {
                let Ok(buffer) = data.dyn_into::<js_sys::ArrayBuffer>() else {
                    return;
                };
                let total = received + u64::from(buffer.byte_length());
                if total > size {
                    fail(
                        engine,
                        id,
                        "The file was larger than announced and was refused.",
                    );
                    pieces.set_length(0);
                    this.close();
                    return;
                }
                received = total;
                pieces.push(&buffer);
                update(engine, id, |t| t.done = total);
                if total == size {
                    finish(engine, id, &pieces);
                    this.close();
                }
            }
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let why = "The file did not arrive completely.";
    keep(engine, id, channel, Box::new(on_message), why);
}

fn finish(engine: Engine, id: u32, pieces: &js_sys::Array) {
    // Never the sender's type: a received `text/html` or SVG opened from its object URL
    // would run the sender's script in this origin. Saved as bytes, whatever it claims.
    let options = BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let url = Blob::new_with_buffer_source_sequence_and_options(pieces, &options)
        .and_then(|blob| Url::create_object_url_with_blob(&blob));
    pieces.set_length(0);
    match url {
        Ok(url) => {
            STATE.with_borrow_mut(|s| s.urls.push(url.clone()));
            update(engine, id, |t| t.url = Some(url));
        }
        Err(_) => fail(engine, id, "The file could not be assembled."),
    }
}

/// The call ended: channels closed, received files' memory freed.
pub fn close() {
    let state = STATE.take();
    for open in state.open {
        open.channel.set_onclose(None);
        open.channel.set_onmessage(None);
        open.channel.close();
    }
    for url in state.urls {
        let _ = Url::revoke_object_url(&url);
    }
}
