//! The soak: Parlor under a steady mixed load for many minutes, its memory read every minute.
//! Idle tabs that come and go (a share of them closed and reopened every second), friends
//! talking (stored messages), and calls rung, answered, signalled and hung up over and over.
//! Memory must stay flat once warm: what leaks shows as growth from minute to minute.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{call, connect, report, sign_up, Server, User};
use testkit::client::Ws;

/// Reads frames until one `pick` accepts (5 s at most).
async fn until(ws: &mut Ws, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    super::until(ws, Duration::from_secs(5), pick).await
}

/// Counts what the load did, for the report.
#[derive(Default)]
struct Done {
    reconnects: AtomicU64,
    messages: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
}

pub async fn run(server: &Server, minutes: u64) {
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let (idle_users, pairs, tabs, call_pairs) = (100, 50, 2000, 10);
    let mut users: Vec<User> = Vec::new();
    for n in 0..idle_users + 2 * pairs {
        users.push(sign_up(&http, &base, n).await);
    }
    let mut conversations = Vec::new();
    for p in 0..pairs {
        let (a, b) = (&users[idle_users + 2 * p], &users[idle_users + 2 * p + 1]);
        let b_id = b.id.to_string();
        let a_id = a.id.to_string();
        call(
            &http,
            &base,
            &a.cookie,
            "friends/request",
            &[("user_id", &b_id)],
        )
        .await;
        let c = call(
            &http,
            &base,
            &b.cookie,
            "friends/answer",
            &[("user_id", &a_id), ("accept", "true")],
        )
        .await;
        conversations.push(c.as_i64().unwrap());
    }
    println!(
        "Parlor soak: {minutes} min; {tabs} idle tabs (2.5 % reopened every second), {pairs} \
         pairs talking (100 stored messages/s), {call_pairs} pairs calling (a call every 5 s)"
    );
    let done = Arc::new(Done::default());
    let stop = Instant::now() + Duration::from_secs(minutes * 60);

    // Idle tabs that come and go.
    let cookies: Vec<String> = users[..idle_users]
        .iter()
        .map(|u| u.cookie.clone())
        .collect();
    let addr = server.addr.clone();
    let churn = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut open: Vec<Ws> = Vec::with_capacity(tabs);
            for n in 0..tabs {
                open.push(connect(&addr, &cookies[n % cookies.len()]).await);
            }
            let mut next = 0usize;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < stop {
                tick.tick().await;
                for _ in 0..tabs / 40 {
                    let slot = next % tabs;
                    next += 1;
                    let _ = open[slot].close(None).await;
                    open[slot] = connect(&addr, &cookies[slot % cookies.len()]).await;
                    done.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                // Drain what arrived (presence, pings) without waiting.
                for ws in &mut open {
                    while let Ok(Some(Ok(_))) =
                        tokio::time::timeout(Duration::ZERO, ws.next()).await
                    {}
                }
            }
        })
    };

    // Friends talking: two messages a second per pair.
    let mut tasks = Vec::new();
    for p in 0..pairs {
        let (a, b) = (&users[idle_users + 2 * p], &users[idle_users + 2 * p + 1]);
        let mut sender = connect(&server.addr, &a.cookie).await;
        let mut receiver = connect(&server.addr, &b.cookie).await;
        let conversation = conversations[p];
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            tokio::spawn(async move { while let Some(Ok(_)) = receiver.next().await {} });
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut n = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                n += 1;
                let frame = json!({"type": "send", "conversation_id": conversation,
                    "client_id": format!("s{n}"), "body": format!("message {n}")});
                if sender.send(Message::text(frame.to_string())).await.is_err() {
                    done.failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                match until(&mut sender, |v| v["type"] == "message").await {
                    Some(_) => done.messages.fetch_add(1, Ordering::Relaxed),
                    None => done.failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    // Calls: ring, answer, signal, hang up, every five seconds per pair.
    for p in 0..call_pairs {
        let (a, b) = (&users[idle_users + 2 * p], &users[idle_users + 2 * p + 1]);
        let mut caller = connect(&server.addr, &a.cookie).await;
        let mut callee = connect(&server.addr, &b.cookie).await;
        let callee_id = b.id;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut request = 0u32;
            while Instant::now() < stop {
                tick.tick().await;
                request += 1;
                let ok = async {
                    let start = json!({"type": "call_start", "request_id": request,
                        "to": callee_id, "video": true});
                    caller.send(Message::text(start.to_string())).await.ok()?;
                    let ringing = until(&mut caller, |v| v["type"] == "call_ringing").await?;
                    let call_id = ringing["call_id"].clone();
                    until(&mut callee, |v| v["type"] == "call_incoming").await?;
                    let accept = json!({"type": "call_accept", "call_id": call_id});
                    callee.send(Message::text(accept.to_string())).await.ok()?;
                    until(&mut caller, |v| v["type"] == "call_accepted").await?;
                    for n in 0..3 {
                        let signal = json!({"type": "call_signal", "call_id": call_id,
                            "data": format!("{{\"candidate\":\"c{n}\"}}")});
                        caller.send(Message::text(signal.to_string())).await.ok()?;
                        until(&mut callee, |v| v["type"] == "call_signal").await?;
                    }
                    let hangup = json!({"type": "call_hangup", "call_id": call_id});
                    caller.send(Message::text(hangup.to_string())).await.ok()?;
                    until(&mut callee, |v| v["type"] == "call_ended").await?;
                    Some(())
                }
                .await;
                match ok {
                    Some(()) => done.calls.fetch_add(1, Ordering::Relaxed),
                    None => done.failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    // Memory every minute.
    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_secs(60).min(stop - Instant::now())).await;
        let rss = server.rss_kib() / 1024.0;
        let minute = started.elapsed().as_secs_f64() / 60.0;
        println!(
            "  {minute:>5.1} min  {rss:>7.1} MiB  ({} reconnects, {} messages, {} calls, {} failures)",
            done.reconnects.load(Ordering::Relaxed),
            done.messages.load(Ordering::Relaxed),
            done.calls.load(Ordering::Relaxed),
            done.failures.load(Ordering::Relaxed),
        );
        samples.push(rss);
    }
    for task in tasks {
        let _ = task.await;
    }
    let _ = churn.await;
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        report(
            "memory after the first minute → at the end",
            format!(
                "{first:.1} MiB → {last:.1} MiB ({:+.1} %)",
                (last - first) / first * 100.0
            ),
        );
    }
}
