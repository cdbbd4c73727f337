//! The strangers mode (`--strangers GUESTS`): that many guests, each on a socket of its own
//! (and, for Parlor, an address of its own through a proxy header Parlor trusts here, so the
//! per-address limits stay on), measured in three phases, for Parlor and for the floor's
//! minimal matcher ([`super::floor`]: one FIFO, no interests, blocks or checks) in the same
//! run:
//! 1. everyone waits (a unique interest each): memory per waiting guest;
//! 2. everyone starts at once with no interests: time until all are matched, matches per
//!    second, start → matched p50/p99, server CPU per 1 000 matches;
//! 3. steady churn for `--seconds`: the lower-numbered side of each pair presses Next (one in
//!    twenty blocks instead) after a random while, 1 % of the guests leave at the start:
//!    matches per second, p50/p99 from Next (or being left) to the next match, CPU per 1 000
//!    matches.
//!
//! Every match is checked: each side says who it is ("I am 17") through the relayed chat,
//! and a pair is bad if someone meets themselves, a departed guest, someone they blocked,
//! gets a second match without the first ending, or the two sides disagree.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use testkit::client::Ws;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use super::{percentile, report, Options, Server};

fn start(interests: &[String]) -> Message {
    Message::text(
        json!({"type": "stranger_start", "interests": interests, "text_only": false, "accept_rules": true})
            .to_string(),
    )
}

fn kind(frame: &Message) -> Option<Value> {
    match frame {
        Message::Text(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

/// A small deterministic generator (the bench has no `rand`).
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The figures of one server.
#[derive(Default)]
struct Figures {
    kib_per_waiting: f64,
    burst_ms: f64,
    burst_matches_per_sec: f64,
    burst_p50_ms: f64,
    burst_p99_ms: f64,
    burst_cpu_ms_per_1000: f64,
    burst_bad: usize,
    churn_matches_per_sec: f64,
    churn_p50_ms: f64,
    churn_p99_ms: f64,
    churn_cpu_ms_per_1000: f64,
    churn_bad: usize,
    /// What the bad pairs were: `[self, double, blocked, departed, one-sided]`.
    churn_kinds: [usize; 5],
    churn_matches: usize,
}

/// What the churn saw, shared by the guests' tasks.
#[derive(Default)]
struct Seen {
    /// `(me, partner, when)` for every match whose partner said who they are.
    meetings: Vec<(usize, usize, Instant)>,
    /// Waits from Next (or being left) to the next match, in ms.
    waits: Vec<f64>,
    /// `(blocker, blocked, when)`.
    blocks: Vec<(usize, usize, Instant)>,
    /// A second match before the first ended.
    doubles: usize,
}

/// Opens every guest's socket: Parlor's as guests from addresses of their own.
async fn guests(server: &Server, parlor: bool, count: usize) -> Vec<Ws> {
    let http = reqwest::Client::new();
    let addr = server.addr.clone();
    let mut opened = Vec::with_capacity(count);
    let mut batch = futures::stream::FuturesUnordered::new();
    for n in 0..count {
        let (http, addr) = (http.clone(), addr.clone());
        batch.push(async move {
            let from = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
            let cookie = if parlor {
                let response = http
                    .post(format!("http://{addr}/api/guest/start"))
                    .header("x-forwarded-for", &from)
                    .send()
                    .await
                    .expect("a guest starts");
                testkit::client::set_cookie(&response, "parlor_guest")
            } else {
                None
            };
            let mut ws = if parlor {
                testkit::client::connect_from(&addr, cookie.as_deref(), Some(&from))
                    .await
                    .expect("a socket opens")
            } else {
                tokio_tungstenite::connect_async(format!("ws://{addr}/strangers"))
                    .await
                    .expect("a socket opens")
                    .0
            };
            ws.next().await; // the welcome
            (n, ws)
        });
        if batch.len() >= 100 {
            opened.push(batch.next().await.unwrap());
        }
    }
    while let Some(done) = batch.next().await {
        opened.push(done);
    }
    opened.sort_by_key(|(n, _)| *n);
    opened.into_iter().map(|(_, ws)| ws).collect()
}

/// Runs `f` on every socket at once; the sockets come back in order.
async fn each<F, Fut, T>(sockets: Vec<Ws>, f: F) -> (Vec<Ws>, Vec<T>)
where
    F: Fn(usize, Ws) -> Fut,
    Fut: std::future::Future<Output = (Ws, T)> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(f(i, ws)))
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (ws, result) = task.await.expect("a guest's task");
        back.push(ws);
        results.push(result);
    }
    (back, results)
}

async fn read_until(ws: &mut Ws, wanted: &str) -> Option<Value> {
    super::until(ws, Duration::from_secs(60), |v| v["type"] == wanted).await
}

async fn measure(server: &Server, parlor: bool, count: usize, o: &Options) -> Figures {
    let mut f = Figures::default();
    let sockets = guests(server, parlor, count).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Everyone waits (nobody shares an interest): memory per waiting guest.
    let rss_before = server.rss_kib();
    let started = Instant::now();
    let (sockets, _) = each(sockets, |i, mut ws| async move {
        ws.send(start(&[format!("solo{i}")])).await.unwrap();
        read_until(&mut ws, "stranger_looking").await;
        (ws, ())
    })
    .await;
    f.kib_per_waiting = (server.rss_kib() - rss_before) / count as f64;
    if started.elapsed() >= Duration::from_secs(8) {
        eprintln!("warning: the waiting phase took over 8 s; some may have widened");
    }
    let (sockets, _) = each(sockets, |_, mut ws| async move {
        ws.send(Message::text(r#"{"type":"stranger_stop"}"#))
            .await
            .unwrap();
        ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        read_until(&mut ws, "pong").await;
        (ws, ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2. Everyone starts at once.
    let cpu_before = server.cpu();
    let origin = Instant::now();
    let (sockets, results) = each(sockets, |i, mut ws| async move {
        let sent = Instant::now();
        ws.send(start(&[])).await.unwrap();
        let matched = read_until(&mut ws, "stranger_matched")
            .await
            .map(|_| Instant::now());
        ws.send(Message::text(
            json!({"type": "stranger_chat", "text": format!("I am {i}")}).to_string(),
        ))
        .await
        .unwrap();
        let partner = read_until(&mut ws, "stranger_chat").await.and_then(|v| {
            v["text"]
                .as_str()?
                .strip_prefix("I am ")?
                .parse::<usize>()
                .ok()
        });
        (ws, (sent, matched, partner))
    })
    .await;
    let cpu = server.cpu() - cpu_before;
    let mut waits: Vec<f64> = results
        .iter()
        .filter_map(|(sent, matched, _)| Some((*matched)? - *sent))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    let last = results
        .iter()
        .filter_map(|(_, matched, _)| *matched)
        .max()
        .unwrap_or(origin);
    f.burst_ms = (last - origin).as_secs_f64() * 1000.0;
    f.burst_matches_per_sec = (count / 2) as f64 / (last - origin).as_secs_f64();
    f.burst_p50_ms = percentile(&waits, 0.5);
    f.burst_p99_ms = percentile(&waits, 0.99);
    f.burst_cpu_ms_per_1000 = cpu * 1000.0 / ((count / 2) as f64 / 1000.0);
    let partners: Vec<Option<usize>> = results.iter().map(|r| r.2).collect();
    f.burst_bad = partners
        .iter()
        .enumerate()
        .filter(|&(i, p)| match p {
            None => true,
            Some(j) => *j == i || partners.get(*j).copied().flatten() != Some(i),
        })
        .count();

    // 3. Steady churn.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let run_for = Duration::from_secs(o.seconds);
    // Each pair moves on after 0–2 × this on average: about `count / 10` nexts a second.
    let mean_ms = 5_000u64;
    let departed: HashSet<usize> = (0..count).filter(|i| i % 100 == 99).collect();
    let cpu_before = server.cpu();
    let churn_start = Instant::now();
    let deadline = churn_start + run_for;
    let tasks: Vec<_> = sockets
        .into_iter()
        .zip(partners)
        .enumerate()
        .map(|(i, (ws, partner))| {
            let seen = seen.clone();
            let leaves = departed.contains(&i);
            tokio::spawn(churn(i, ws, partner, leaves, deadline, mean_ms, seen))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let cpu = server.cpu() - cpu_before;
    let seen = seen.lock().await;
    // Only meetings well before the end: both sides had time to say who they are.
    let settled = deadline - Duration::from_secs(1);
    let meetings: Vec<_> = seen
        .meetings
        .iter()
        .filter(|(_, _, at)| *at < settled)
        .collect();
    let mut sides: HashMap<(usize, usize), i64> = HashMap::new();
    for (me, other, _) in &meetings {
        let key = ((*me).min(*other), (*me).max(*other));
        *sides.entry(key).or_default() += if me < other { 1 } else { -1 };
    }
    let blocked: HashMap<(usize, usize), Instant> = seen
        .blocks
        .iter()
        .map(|(a, b, at)| (((*a).min(*b), (*a).max(*b)), *at))
        .collect();
    let selves = meetings.iter().filter(|(me, other, _)| me == other).count();
    let gone = meetings
        .iter()
        .filter(|(_, other, _)| departed.contains(other))
        .count();
    let reblocked = meetings
        .iter()
        .filter(|(me, other, at)| {
            blocked
                .get(&((*me).min(*other), (*me).max(*other)))
                .is_some_and(|b| at > b)
        })
        .count();
    let lopsided = sides.values().map(|d| d.unsigned_abs() as usize).sum();
    f.churn_kinds = [selves, seen.doubles, reblocked, gone, lopsided];
    f.churn_bad = f.churn_kinds.iter().sum();
    f.churn_matches = meetings.len() / 2;
    f.churn_matches_per_sec = f.churn_matches as f64 / (settled - churn_start).as_secs_f64();
    let mut waits = seen.waits.clone();
    waits.sort_by(f64::total_cmp);
    f.churn_p50_ms = percentile(&waits, 0.5);
    f.churn_p99_ms = percentile(&waits, 0.99);
    f.churn_cpu_ms_per_1000 = cpu * 1000.0 / (f.churn_matches.max(1) as f64 / 1000.0);
    f
}

/// One guest during the churn: says who it is at every match, moves on after a while when
/// it is the lower-numbered side, looks again when left, and counts what it waited.
async fn churn(
    me: usize,
    mut ws: Ws,
    mut partner: Option<usize>,
    leaves: bool,
    deadline: Instant,
    mean_ms: u64,
    seen: Arc<Mutex<Seen>>,
) {
    if leaves {
        let _ = ws.send(Message::text(r#"{"type":"stranger_stop"}"#)).await;
        let _ = ws.close(None).await;
        return;
    }
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15 ^ ((me as u64 + 1) * 0x2545_f491));
    let mut matched = partner.is_some();
    let mut waiting_since: Option<Instant> = None;
    let mut press_at = partner
        .filter(|p| me < *p)
        .map(|_| Instant::now() + Duration::from_millis(rng.below(2 * mean_ms)));
    loop {
        let wake = press_at.unwrap_or(deadline).min(deadline);
        let frame = tokio::time::timeout_at(wake.into(), ws.next()).await;
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match frame {
            Err(_) => {
                // Time to move on.
                press_at = None;
                let Some(other) = partner else { continue };
                let block = rng.below(20) == 0;
                let kind = if block {
                    "stranger_block"
                } else {
                    "stranger_next"
                };
                if block {
                    seen.lock().await.blocks.push((me, other, now));
                }
                if ws
                    .send(Message::text(json!({"type": kind}).to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
                matched = false;
                partner = None;
                waiting_since = Some(now);
            }
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(frame))) => {
                let Some(v) = kind(&frame) else { continue };
                match v["type"].as_str().unwrap_or("") {
                    "stranger_matched" => {
                        if matched {
                            seen.lock().await.doubles += 1;
                        }
                        matched = true;
                        partner = None;
                        if let Some(since) = waiting_since.take() {
                            seen.lock()
                                .await
                                .waits
                                .push((now - since).as_secs_f64() * 1000.0);
                        }
                        let hello = json!({"type": "stranger_chat", "text": format!("I am {me}")});
                        if ws.send(Message::text(hello.to_string())).await.is_err() {
                            break;
                        }
                    }
                    "stranger_chat" => {
                        let Some(other) = v["text"]
                            .as_str()
                            .and_then(|t| t.strip_prefix("I am "))
                            .and_then(|n| n.parse::<usize>().ok())
                        else {
                            continue;
                        };
                        if matched && partner.is_none() {
                            partner = Some(other);
                            seen.lock().await.meetings.push((me, other, now));
                            if me < other {
                                press_at =
                                    Some(now + Duration::from_millis(rng.below(2 * mean_ms)));
                            }
                        }
                    }
                    "stranger_ended" => {
                        matched = false;
                        partner = None;
                        press_at = None;
                        waiting_since = Some(now);
                        // Left for good: look again (after a Next the server does).
                        if v["reason"] != "next" && ws.send(start(&[])).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

pub async fn run(o: &Options, count: usize) {
    let floor = {
        let server = Server::floor();
        super::wait_ready(&reqwest::Client::new(), &server, false).await;
        measure(&server, false, count, o).await
    };
    let parlor = {
        let server = Server::start_with(&o.server, |command| {
            command
                .env("PARLOR_LOG", "warn")
                .env("PARLOR_TRUSTED_PROXIES", "127.0.0.1")
                .env("PARLOR_WS_SOCKETS_PER_IP", "1000000");
        });
        super::wait_ready(&reqwest::Client::new(), &server, true).await;
        measure(&server, true, count, o).await
    };
    println!(
        "Parlor strangers: {count} guests (sockets and addresses of their own), then {} s of \
         churn; the floor is a minimal matcher (one FIFO, no interests, blocks or checks) in \
         the same run",
        o.seconds
    );
    println!("{:<52} {:>12} {:>12}", "", "Parlor", "floor");
    let row = |name: &str, ours: f64, floor: f64, unit: &str| {
        println!(
            "{name:<52} {:>12} {:>12}",
            format!("{ours:.2} {unit}"),
            format!("{floor:.2} {unit}")
        );
    };
    row(
        "server memory per waiting guest",
        parlor.kib_per_waiting,
        floor.kib_per_waiting,
        "KiB",
    );
    row(
        "all start at once: time until everyone is matched",
        parlor.burst_ms,
        floor.burst_ms,
        "ms",
    );
    row(
        "  matches per second",
        parlor.burst_matches_per_sec,
        floor.burst_matches_per_sec,
        "",
    );
    row(
        "  start → matched p50",
        parlor.burst_p50_ms,
        floor.burst_p50_ms,
        "ms",
    );
    row(
        "  start → matched p99",
        parlor.burst_p99_ms,
        floor.burst_p99_ms,
        "ms",
    );
    row(
        "  server CPU per 1 000 matches (+ a chat line each)",
        parlor.burst_cpu_ms_per_1000,
        floor.burst_cpu_ms_per_1000,
        "ms",
    );
    row(
        "churn: matches per second",
        parlor.churn_matches_per_sec,
        floor.churn_matches_per_sec,
        "",
    );
    row(
        "  next (or left) → matched p50",
        parlor.churn_p50_ms,
        floor.churn_p50_ms,
        "ms",
    );
    row(
        "  next (or left) → matched p99",
        parlor.churn_p99_ms,
        floor.churn_p99_ms,
        "ms",
    );
    row(
        "  server CPU per 1 000 matches",
        parlor.churn_cpu_ms_per_1000,
        floor.churn_cpu_ms_per_1000,
        "ms",
    );
    report(
        "churn bad pairs: self, double, blocked, departed, one-sided",
        format!(
            "Parlor {:?}, floor {:?}",
            parlor.churn_kinds, floor.churn_kinds
        ),
    );
    report(
        "bad pairs (self, double, blocked, departed, one-sided)",
        format!(
            "Parlor {} of {} + {} matches, floor {} of {} + {} (the floor keeps no blocks)",
            parlor.burst_bad + parlor.churn_bad,
            count / 2,
            parlor.churn_matches,
            floor.burst_bad + floor.churn_bad,
            count / 2,
            floor.churn_matches
        ),
    );
}
