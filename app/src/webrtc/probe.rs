//! The connectivity test's browser half: gathers this browser's ICE candidates with the
//! server's STUN/TURN servers, then connects two relay-only peer connections of this page to
//! each other through the relay and times data-channel round trips over it.

use std::{cell::RefCell, rc::Rc};

use leptos::prelude::window;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState};

use super::negotiation::Negotiation;
use crate::{connectivity::Findings, protocol::IceServer};

/// How long gathering may take, and a relayed connection to open.
const GATHER_MS: f64 = 6000.0;
const CONNECT_MS: f64 = 10000.0;
/// Round trips timed over the relay.
const ROUND_TRIPS: usize = 5;

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// Runs the whole test.
pub async fn run(servers: &[IceServer]) -> Findings {
    let mut findings = Findings::default();
    match gather(servers).await {
        Ok(candidates) => {
            for candidate in &candidates {
                findings.count(candidate);
            }
        }
        Err(e) => {
            findings.problem = Some(format!("The browser refused to gather addresses: {e:?}"))
        }
    }
    if findings.relay > 0 {
        match relay_round_trip(servers).await {
            Ok(ms) => findings.relay_rtt_ms = Some(ms),
            Err(why) => findings.problem = Some(why),
        }
    }
    findings
}

/// Every candidate one connection finds (all kinds allowed).
async fn gather(servers: &[IceServer]) -> Result<Vec<String>, JsValue> {
    let found = Rc::new(RefCell::new(Vec::new()));
    let sink = found.clone();
    let pc = Negotiation::new(servers, false, move |ice| {
        sink.borrow_mut().push(ice.candidate)
    })?;
    let _channel = pc.pc().create_data_channel("probe");
    pc.offer(false).await?;
    let started = now();
    while pc.pc().ice_gathering_state() != web_sys::RtcIceGatheringState::Complete
        && now() - started < GATHER_MS
    {
        sleep(100).await;
    }
    pc.close();
    let found = found.borrow().clone();
    Ok(found)
}

/// Two relay-only connections of this page, through the relay: the median round trip.
async fn relay_round_trip(servers: &[IceServer]) -> Result<f64, String> {
    let failed = |e: JsValue| format!("The relayed test connection failed: {e:?}");
    // Each side hands its candidates to the other once both exist.
    let a_to_b: Rc<RefCell<Option<Negotiation>>> = Rc::default();
    let b_to_a: Rc<RefCell<Option<Negotiation>>> = Rc::default();
    let to_b = a_to_b.clone();
    let a = Negotiation::new(servers, true, move |ice| {
        if let Some(b) = to_b.borrow().clone() {
            leptos::task::spawn_local(async move {
                let _ = b.add_candidate(ice).await;
            });
        }
    })
    .map_err(failed)?;
    let to_a = b_to_a.clone();
    let b = Negotiation::new(servers, true, move |ice| {
        if let Some(a) = to_a.borrow().clone() {
            leptos::task::spawn_local(async move {
                let _ = a.add_candidate(ice).await;
            });
        }
    })
    .map_err(failed)?;
    *a_to_b.borrow_mut() = Some(b.clone());
    *b_to_a.borrow_mut() = Some(a.clone());

    // B echoes whatever comes; A times the echoes.
    let on_channel =
        Closure::<dyn FnMut(RtcDataChannelEvent)>::new(|event: RtcDataChannelEvent| {
            let channel = event.channel();
            let echo = channel.clone();
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |m: MessageEvent| {
                if let Some(text) = m.data().as_string() {
                    let _ = echo.send_with_str(&text);
                }
            });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
        });
    b.pc()
        .set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
    b.keep(on_channel);
    let channel: RtcDataChannel = a.pc().create_data_channel("probe");
    let echoes: Rc<RefCell<Vec<f64>>> = Rc::default();
    let heard = echoes.clone();
    let on_echo = Closure::<dyn FnMut(MessageEvent)>::new(move |m: MessageEvent| {
        let sent: f64 = m
            .data()
            .as_string()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        heard.borrow_mut().push(now() - sent);
    });
    channel.set_onmessage(Some(on_echo.as_ref().unchecked_ref()));
    a.keep(on_echo);

    let result = async {
        let offer = a.offer(false).await.map_err(failed)?;
        let answer = b.answer(&offer).await.map_err(failed)?;
        a.accept(&answer).await.map_err(failed)?;
        let started = now();
        while channel.ready_state() != RtcDataChannelState::Open {
            if now() - started > CONNECT_MS {
                return Err(
                    "A connection through the relay did not open: calls that need it will fail."
                        .to_string(),
                );
            }
            sleep(50).await;
        }
        for n in 0..ROUND_TRIPS {
            let _ = channel.send_with_str(&now().to_string());
            let asked = now();
            while echoes.borrow().len() <= n && now() - asked < 3000.0 {
                sleep(5).await;
            }
        }
        let mut times = echoes.borrow().clone();
        if times.is_empty() {
            return Err("The relay carried nothing back: calls that need it will fail.".into());
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }
    .await;
    channel.close();
    a.close();
    b.close();
    *a_to_b.borrow_mut() = None;
    *b_to_a.borrow_mut() = None;
    result
}
