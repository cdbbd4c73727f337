//! The rendezvous mode (`--rendezvous ROOMS`): thousands of code rooms, each minted,
//! redeemed and joined by both sides, then mailbox round trips between the sides (A sends to
//! B through the mailbox, B acknowledges and sends it back, A acknowledges), beside the floor's
//! bare relay of the same frames between two sockets of a room, in the same run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use testkit::client::Ws;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use super::{percentile, report, Options, Server};

async fn open(url: String) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("a room socket opens")
        .0
}

/// Reads frames until one `pick` accepts (10 s at most).
async fn until(ws: &mut Ws, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    super::until(ws, Duration::from_secs(10), pick).await
}

struct Figures {
    setup_ms_per_1000: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_per_100k: f64,
    round_trips: usize,
}

/// Round trips over every pair for `o.seconds`, at `o.rate` in all; `bounce` runs on B.
async fn round_trips(
    server: &Server,
    pairs: Vec<(Ws, Ws)>,
    o: &Options,
    mailbox: bool,
) -> (Vec<f64>, f64) {
    let per_pair = (o.rate as f64 / pairs.len() as f64).max(0.2);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let cpu_before = server.cpu();
    let run_for = Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for (mut a, mut b) in pairs {
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            // B sends back what it gets (acknowledging mailbox frames).
            let bouncer = tokio::spawn(async move {
                while let Some(Ok(frame)) = b.next().await {
                    let Message::Text(text) = frame else { continue };
                    if !mailbox {
                        if b.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["type"] != "deliver" {
                        continue;
                    }
                    let back = json!({"type": "send", "to": "A", "payload": v["payload"]});
                    let ack = json!({"type": "delivered", "upTo": v["seq"]});
                    if b.send(Message::text(back.to_string())).await.is_err()
                        || b.send(Message::text(ack.to_string())).await.is_err()
                    {
                        return;
                    }
                }
            });
            let mut mine = Vec::new();
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_pair));
            while started.elapsed() < run_for {
                ticker.tick().await;
                let sent = Instant::now();
                let frame = if mailbox {
                    json!({"type": "send", "to": "B", "payload": {"n": mine.len()}})
                } else {
                    json!({"type": "offer", "n": mine.len()})
                };
                if a.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                let back = until(&mut a, |v| !mailbox || v["type"] == "deliver").await;
                let Some(back) = back else { break };
                mine.push(sent.elapsed().as_secs_f64() * 1e6);
                if mailbox {
                    let ack = json!({"type": "delivered", "upTo": back["seq"]});
                    let _ = a.send(Message::text(ack.to_string())).await;
                }
            }
            bouncer.abort();
            latencies.lock().await.extend(mine);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let cpu = server.cpu() - cpu_before;
    let mut all = latencies.lock().await.clone();
    all.sort_by(f64::total_cmp);
    (all, cpu)
}

fn figures(rooms: usize, setup_cpu: f64, latencies: Vec<f64>, cpu: f64) -> Figures {
    Figures {
        setup_ms_per_1000: setup_cpu * 1000.0 / (rooms as f64 / 1000.0),
        p50_us: percentile(&latencies, 0.5),
        p99_us: percentile(&latencies, 0.99),
        cpu_per_100k: cpu / latencies.len().max(1) as f64 * 100_000.0,
        round_trips: latencies.len(),
    }
}

async fn floor(o: &Options, rooms: usize) -> Figures {
    let server = Server::floor();
    super::wait_ready(&reqwest::Client::new(), &server, false).await;
    let cpu_before = server.cpu();
    let mut pairs = Vec::new();
    for room in 0..rooms {
        let a = open(format!("ws://{}/pair/{room}/A", server.addr)).await;
        let b = open(format!("ws://{}/pair/{room}/B", server.addr)).await;
        pairs.push((a, b));
    }
    let setup = server.cpu() - cpu_before;
    // Both sides of the last room are registered once a frame goes through it.
    if let Some((a, b)) = pairs.last_mut() {
        a.send(Message::text(r#"{"type":"probe"}"#)).await.unwrap();
        until(b, |v| v["type"] == "probe").await;
    }
    let (latencies, cpu) = round_trips(&server, pairs, o, false).await;
    figures(rooms, setup, latencies, cpu)
}

async fn parlor(o: &Options, rooms: usize) -> Figures {
    let server = Server::start_with(&o.server, |command| {
        command
            .env("PARLOR_LOG", "warn")
            .env("PARLOR_CODES_PER_IP_PER_MIN", "100000")
            .env("PARLOR_REDEEMS_PER_IP_PER_MIN", "100000")
            .env("PARLOR_RENDEZVOUS_UPGRADES_PER_IP_PER_MIN", "100000");
    });
    let http = reqwest::Client::new();
    super::wait_ready(&http, &server, true).await;
    let base = format!("http://{}", server.addr);
    let cpu_before = server.cpu();
    let mut pairs = Vec::new();
    for room in 0..rooms {
        let minted: Value = http
            .post(format!("{base}/rendezvous/code"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let redeemed: Value = http
            .post(format!("{base}/rendezvous/redeem"))
            .json(&json!({"code": minted["code"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let app_id = redeemed["appID"].as_str().expect("redeemed").to_string();
        let url = |side: &str| {
            format!(
                "ws://{}/rendezvous/ws?appID={app_id}&side={side}&sid={side}{room}",
                server.addr
            )
        };
        let mut a = open(url("A")).await;
        let mut b = open(url("B")).await;
        let hello = json!({"type": "hello", "deliveredUpTo": 0}).to_string();
        a.send(Message::text(hello.clone())).await.unwrap();
        b.send(Message::text(hello)).await.unwrap();
        pairs.push((a, b));
    }
    let setup = server.cpu() - cpu_before;
    for (a, b) in &mut pairs {
        until(a, |v| v["type"] == "room_full").await;
        until(b, |v| v["type"] == "room_full").await;
    }
    let (latencies, cpu) = round_trips(&server, pairs, o, true).await;
    figures(rooms, setup, latencies, cpu)
}

pub async fn run(o: &Options, rooms: usize) {
    let floor = floor(o, rooms).await;
    let parlor = parlor(o, rooms).await;
    println!(
        "Parlor rendezvous: {rooms} rooms, {} round trips/s in all for {} s; the floor relays \
         the same frames between a room's two sockets (no codes, no mailbox)",
        o.rate, o.seconds
    );
    report(
        "server CPU per 1 000 rooms set up",
        format!(
            "{:.0} ms (mint + redeem + 2 sockets + hello; floor: 2 sockets {:.0} ms)",
            parlor.setup_ms_per_1000, floor.setup_ms_per_1000
        ),
    );
    report(
        "round trip p50 / p99",
        format!(
            "{:.0} µs / {:.0} µs (floor {:.0} µs / {:.0} µs)",
            parlor.p50_us, parlor.p99_us, floor.p50_us, floor.p99_us
        ),
    );
    report(
        "server CPU seconds per 100 000 round trips",
        format!(
            "{:.2} s over {} (floor {:.2} s over {})",
            parlor.cpu_per_100k, parlor.round_trips, floor.cpu_per_100k, floor.round_trips
        ),
    );
}
