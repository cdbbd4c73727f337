//! The quality panel's figures from `getStats`: round trip, bitrates (from the previous
//! reading), packet loss and the received resolution.

use std::cell::Cell;

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use super::{Engine, Quality, Route};

thread_local! {
    /// The previous reading: `(time ms, bytes in, bytes out)`, for bitrates.
    static LAST: Cell<Option<(f64, f64, f64)>> = const { Cell::new(None) };
}

/// Forgets the previous reading (a new call starts from scratch).
pub fn forget() {
    LAST.set(None);
}

/// `pc`'s stats report, if the browser gives one.
pub async fn report(pc: &RtcPeerConnection) -> Option<js_sys::Map> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    Some(report.unchecked_into())
}

/// Bytes received so far over all of a report's inbound RTP streams.
pub fn inbound_bytes(report: &js_sys::Map) -> f64 {
    let mut bytes = 0.0;
    report.for_each(&mut |stat, _| {
        let field = |k: &str| js_sys::Reflect::get(&stat, &k.into()).ok();
        if field("type").and_then(|t| t.as_string()).as_deref() == Some("inbound-rtp") {
            bytes += field("bytesReceived")
                .and_then(|b| b.as_f64())
                .unwrap_or(0.0);
        }
    });
    bytes
}

/// A candidate pair of a report.
struct Pair {
    id: String,
    local: String,
    remote: String,
    rtt: Option<f64>,
    /// Marked selected (Firefox's way of saying it).
    selected: bool,
    /// Nominated, and its checks succeeded.
    nominated: bool,
}

pub fn read(engine: Engine, pc: RtcPeerConnection) {
    leptos::task::spawn_local(async move {
        let Some(report) = report(&pc).await else {
            return;
        };
        let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok();
        let num = |o: &JsValue, k: &str| get(o, k).and_then(|v| v.as_f64());
        let text = |o: &JsValue, k: &str| get(o, k).and_then(|v| v.as_string());
        let mut quality = Quality::default();
        let (mut bytes_in, mut bytes_out, mut lost, mut received) = (0.0, 0.0, 0.0, 0.0);
        let mut now = 0.0;
        // The pair media uses: the one the transport names as selected (after an ICE restart
        // an older pair may still say it was nominated), else one marked selected (Firefox),
        // else the last nominated pair that succeeded.
        let mut selected_id: Option<String> = None;
        let mut pairs = Vec::new();
        // Candidate id → (type, the protocol a local relay candidate reaches its server by).
        let mut candidates = std::collections::HashMap::new();
        report.for_each(&mut |stat, _| {
            now = num(&stat, "timestamp").unwrap_or(now);
            match text(&stat, "type").as_deref() {
                Some("transport") => {
                    selected_id = selected_id
                        .take()
                        .or(text(&stat, "selectedCandidatePairId"));
                }
                Some("candidate-pair") => {
                    let flag = |k: &str| get(&stat, k).and_then(|v| v.as_bool()) == Some(true);
                    if let (Some(id), Some(local), Some(remote)) = (
                        text(&stat, "id"),
                        text(&stat, "localCandidateId"),
                        text(&stat, "remoteCandidateId"),
                    ) {
                        pairs.push(Pair {
                            id,
                            local,
                            remote,
                            rtt: num(&stat, "currentRoundTripTime"),
                            selected: flag("selected"),
                            nominated: flag("nominated")
                                && text(&stat, "state").as_deref() == Some("succeeded"),
                        });
                    }
                }
                Some("local-candidate" | "remote-candidate") => {
                    if let (Some(id), Some(kind)) =
                        (text(&stat, "id"), text(&stat, "candidateType"))
                    {
                        candidates.insert(id, (kind, text(&stat, "relayProtocol")));
                    }
                }
                Some("inbound-rtp") => {
                    bytes_in += num(&stat, "bytesReceived").unwrap_or(0.0);
                    lost += num(&stat, "packetsLost").unwrap_or(0.0);
                    received += num(&stat, "packetsReceived").unwrap_or(0.0);
                    if text(&stat, "kind").as_deref() == Some("video") {
                        if let (Some(w), Some(h)) =
                            (num(&stat, "frameWidth"), num(&stat, "frameHeight"))
                        {
                            quality.resolution = Some((w as u32, h as u32));
                        }
                    }
                }
                Some("outbound-rtp") => bytes_out += num(&stat, "bytesSent").unwrap_or(0.0),
                _ => {}
            }
        });
        if let Some((then, before_in, before_out)) = LAST.get() {
            let secs = (now - then) / 1000.0;
            if secs > 0.0 {
                quality.kbps_in = Some((bytes_in - before_in) * 8.0 / 1000.0 / secs);
                quality.kbps_out = Some((bytes_out - before_out) * 8.0 / 1000.0 / secs);
            }
        }
        LAST.set(Some((now, bytes_in, bytes_out)));
        let pair = match &selected_id {
            Some(id) => pairs.iter().find(|p| &p.id == id),
            None => pairs
                .iter()
                .find(|p| p.selected)
                .or_else(|| pairs.iter().rev().find(|p| p.nominated)),
        };
        quality.rtt_ms = pair.and_then(|p| p.rtt).map(|rtt| rtt * 1000.0);
        quality.route = pair.map(|pair| {
            let (local, remote) = (candidates.get(&pair.local), candidates.get(&pair.remote));
            Route::of(
                local.map(|(kind, relay_protocol)| (kind.as_str(), relay_protocol.as_deref())),
                remote.map(|(kind, _)| kind.as_str()),
            )
        });
        if received + lost > 0.0 {
            quality.loss_percent = Some(lost * 100.0 / (received + lost));
        }
        engine.quality.set(quality);
    });
}
