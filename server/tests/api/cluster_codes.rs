//! Code rooms over several instances: codes claimed and redeemed once over all of them, sides
//! connected to instances other than the room's home (proxied through Redis), the mailbox in
//! order across reconnects that land anywhere, and rooms and sides going with their instance.

use std::{collections::HashSet, time::Duration};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use testkit::client::Ws;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::TestApp,
    rendezvous::{closed_with, fill_mailbox, next, next_of, send},
};

/// The next text frame exactly as the server wrote it (pings skipped).
async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

async fn hello(ws: &mut Ws, delivered_up_to: u64) {
    send(
        ws,
        json!({"type": "hello", "sessionId": "s", "deliveredUpTo": delivered_up_to}),
    )
    .await;
}

async fn post(ws: &mut Ws, to: &str, n: u64) {
    send(ws, json!({"type": "send", "to": to, "payload": {"n": n}})).await;
}

/// Mailbox frames `from..=to`, in order, each once.
async fn delivered(ws: &mut Ws, from: u64, to: u64) {
    for n in from..=to {
        let frame = next_of(ws, "deliver").await;
        assert_eq!(
            (frame["seq"].as_u64(), frame["payload"]["n"].as_u64()),
            (Some(n), Some(n))
        );
    }
}

/// Whether a side's socket is seated: it hears `room_full` (the other side is connected)
/// rather than being closed.
async fn seated(ws: &mut Ws) -> bool {
    matches!(next(ws).await, Some(frame) if frame["type"] == "room_full")
}

/// Tries `side` of `room` through `app` with session `sid` until it is seated (the other
/// side is connected, so a seated socket hears `room_full`), for up to 10 s.
async fn seated_once_free(app: &TestApp, room: &str, side: &str, sid: &str) -> bool {
    for _ in 0..50 {
        let mut again = app.side(room, side, sid).await;
        if seated(&mut again).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn a_code_minted_on_one_instance_is_redeemed_on_another_and_its_mailbox_survives_reconnects_anywhere(
) {
    let (_redis, apps) = TestApp::cluster(3).await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);
    let code = a.mint().await["code"].as_str().unwrap().to_string();
    let (status, redeemed) = b.redeem(&code).await;
    assert_eq!(status, 200, "{redeemed}");
    let room = redeemed["appID"].as_str().unwrap().to_string();
    assert!(redeemed["expiresAt"].as_str().unwrap().ends_with('Z'));
    // Once over all instances.
    assert_eq!(c.redeem(&code).await.0, 410);
    assert_eq!(a.redeem(&code).await.0, 410);

    // Both sides on instances that do not hold the room.
    let mut side_a = c.side(&room, "A", "tab-a").await;
    let mut side_b = b.side(&room, "B", "tab-b").await;
    next_of(&mut side_a, "room_full").await;
    next_of(&mut side_b, "room_full").await;
    hello(&mut side_a, 0).await;
    hello(&mut side_b, 0).await;

    // Relay frames pass byte for byte.
    let offer = r#"{"type":"offer",  "sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n", "x":[1,2]}"#;
    side_a.send(Message::text(offer)).await.unwrap();
    assert_eq!(next_text(&mut side_b).await, offer);

    // The mailbox: in order; B reads three, its connection drops, A goes on sending.
    for n in 1..=5 {
        post(&mut side_a, "B", n).await;
    }
    delivered(&mut side_b, 1, 5).await;
    send(&mut side_b, json!({"type": "delivered", "upTo": 3})).await;
    drop(side_b);
    for n in 6..=8 {
        post(&mut side_a, "B", n).await;
    }
    // B comes back through the third instance: what it had not acknowledged, then the rest,
    // in order and once (the next frame after 8 is A's answer, not a repeat).
    let mut side_b = c.side(&room, "B", "tab-b").await;
    hello(&mut side_b, 3).await;
    delivered(&mut side_b, 4, 8).await;
    send(&mut side_a, json!({"type": "answer", "sdp": "after"})).await;
    let next_frame = next(&mut side_b).await.unwrap();
    assert!(
        next_frame["type"] == "answer" || next_frame["type"] == "room_full",
        "{next_frame}"
    );

    // Then onto the room's own instance: the same session takes the side over at once, the
    // old socket (proxied on C) is told so.
    let mut side_b_home = a.side(&room, "B", "tab-b").await;
    assert_eq!(closed_with(&mut side_b).await, Some(1000));
    hello(&mut side_b_home, 8).await;
    post(&mut side_a, "B", 9).await;
    delivered(&mut side_b_home, 9, 9).await;
    // And the other way: B's mailbox to A, A proxied.
    post(&mut side_b_home, "A", 1).await;
    delivered(&mut side_a, 1, 1).await;

    // Another session cannot take a held side, whatever instance it asks.
    for app in [a, b, c] {
        let mut intruder = app.side(&room, "A", "someone-else").await;
        assert_eq!(closed_with(&mut intruder).await, Some(1008));
    }
    // A made-up room is refused on every instance.
    for app in [a, b, c] {
        assert_eq!(
            app.side_refused("appID=0f6c1d2e-1111-4222-8333-444455556666&side=A")
                .await,
            404
        );
    }
}

#[tokio::test]
async fn codes_are_unique_and_capped_over_all_instances_and_redeemed_once_when_raced() {
    let (_redis, apps) = TestApp::cluster_with(3, |c| {
        c.code_digits = 4;
        c.codes_per_ip_per_min = 1000;
        c.redeems_per_ip_per_min = 1000;
    })
    .await;
    // 4 digits: at most 100 live at once, over all instances together.
    let mut codes = HashSet::new();
    for n in 0..100 {
        let minted = apps[n % 3].mint().await;
        let code = minted["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 4);
        assert!(codes.insert(code), "a code live twice");
    }
    for app in &apps {
        let response = app
            .client
            .post(app.url("/rendezvous/code"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            503,
            "the shared cap holds on every instance"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "busy");
    }
    // Two instances redeem one code at the same moment: exactly one room.
    for code in codes.iter().take(10) {
        let (first, second) = tokio::join!(apps[1].redeem(code), apps[2].redeem(code));
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(statuses, [200, 410], "{code}");
    }
    // A redeemed code makes room for a new one.
    assert_eq!(apps[0].mint().await["code"].as_str().unwrap().len(), 4);
}

#[tokio::test]
async fn sides_held_through_a_stopped_instance_come_free_and_rooms_go_with_their_home() {
    let (_redis, apps) = TestApp::cluster(3).await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);
    let room = a.room().await;
    let unredeemed = a.mint().await["code"].as_str().unwrap().to_string();
    let mut side_a = b.side(&room, "A", "tab-a").await;
    let mut side_b = c.side(&room, "B", "tab-b").await;
    next_of(&mut side_a, "room_full").await;
    next_of(&mut side_b, "room_full").await;

    // B freezes: once it is taken for gone (1 s here), the side its socket held is free for
    // a new session, through another instance.
    b.state.cluster.as_ref().unwrap().halt();
    assert!(
        seated_once_free(c, &room, "A", "new-tab").await,
        "side A stayed held by a stopped instance"
    );

    // The room's home freezes: the sockets proxied for it are ended, and nothing of it is
    // left: no socket, no code.
    a.state.cluster.as_ref().unwrap().halt();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) =
            side_b.next().await
        {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "a socket of a room gone with its home stayed open"
    );
    let mut refused = 0;
    for _ in 0..30 {
        if c.side_refused(&format!("appID={room}&side=B")).await == 404 {
            refused += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused, 1, "a room gone with its home is refused");
    assert_eq!(c.redeem(&unredeemed).await.0, 410);
    assert!(c.state.cluster.as_ref().unwrap().room_sockets().len() <= 1);
}

/// The status `codes/ice` answers for `room` (anyone may ask: no cookie).
async fn ice_status(app: &TestApp, room: &str) -> u16 {
    let browser = app.browser();
    let response = app
        .call(&browser, "/api/codes/ice", &[("app_id", room)])
        .await;
    response.status().as_u16()
}

#[tokio::test]
async fn a_code_call_gets_ice_servers_through_any_instance_while_its_room_lives() {
    let servers = vec![app::protocol::IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    }];
    let configured = servers.clone();
    let (_redis, apps) = TestApp::cluster_with(2, move |c| {
        c.ice_servers = configured.clone();
        c.code_ttl = Duration::from_millis(500);
    })
    .await;
    let room = apps[0].room().await;
    assert_eq!(ice_status(&apps[1], &room).await, 200);
    // Expired at its home (nobody came): gone for the other instance too.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(ice_status(&apps[1], &room).await, 404);
    assert_eq!(
        apps[1].side_refused(&format!("appID={room}&side=A")).await,
        404
    );
}

#[tokio::test]
async fn after_redis_restarts_empty_rooms_are_registered_again_and_their_mailboxes_go_on() {
    let (mut redis, apps) = TestApp::cluster(3).await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);
    let room = a.room().await;
    let unredeemed = a.mint().await["code"].as_str().unwrap().to_string();
    let mut side_a = b.side(&room, "A", "tab-a").await;
    let mut side_b = c.side(&room, "B", "tab-b").await;
    next_of(&mut side_a, "room_full").await;
    next_of(&mut side_b, "room_full").await;
    hello(&mut side_a, 0).await;
    hello(&mut side_b, 0).await;
    post(&mut side_a, "B", 1).await;
    delivered(&mut side_b, 1, 1).await;

    redis.restart();
    // Their frames may have been lost with Redis: the proxied sockets are closed, and the
    // browsers come back (once the room's home has registered it again) where they land.
    for side in [&mut side_a, &mut side_b] {
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = side.next().await {}
        })
        .await;
        assert!(
            ended.is_ok(),
            "a proxied socket outlived the Redis it relied on"
        );
    }
    let mut back = None;
    for _ in 0..50 {
        if b.side_refused(&format!("appID={room}&side=B")).await == 101 {
            back = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back.is_some(), "the room was not registered again");
    // (The probe above held side B for a moment: it is free again once that socket closed.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut side_a = c.side(&room, "A", "tab-a").await;
    let mut side_b = b.side(&room, "B", "tab-b").await;
    next_of(&mut side_b, "room_full").await;
    hello(&mut side_a, 0).await;
    hello(&mut side_b, 1).await;
    post(&mut side_a, "B", 2).await;
    delivered(&mut side_b, 2, 2).await;
    // Its unredeemed code too, through any instance, once.
    assert_eq!(c.redeem(&unredeemed).await.0, 200);
    assert_eq!(b.redeem(&unredeemed).await.0, 410);
}

#[tokio::test]
async fn a_room_of_an_instance_started_since_the_last_heartbeat_is_found_at_once() {
    // Heartbeats every 2 s: the first instance has not heard of the second one yet.
    let (_redis, apps) = TestApp::cluster_with(2, |c| {
        c.instance_timeout = Duration::from_secs(10);
    })
    .await;
    let (old, new) = (&apps[0], &apps[1]);
    let code = new.mint().await["code"].as_str().unwrap().to_string();
    let (status, redeemed) = old.redeem(&code).await;
    assert_eq!(status, 200, "{redeemed}");
    let room = redeemed["appID"].as_str().unwrap().to_string();
    let mut side_a = old.side(&room, "A", "tab-a").await;
    let mut side_b = new.side(&room, "B", "tab-b").await;
    next_of(&mut side_a, "room_full").await;
    next_of(&mut side_b, "room_full").await;
}

#[tokio::test]
async fn a_proxied_side_gets_the_same_clear_refusals_and_a_frame_ten_times_too_big_closes_it() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (home, other) = (&apps[0], &apps[1]);
    let room = home.room().await;
    let mut a = other.side(&room, "A", "tab-a").await;
    // The mailbox's limit is decided at the home; its refusal comes back to this socket.
    let full = fill_mailbox(&mut a, "B").await;
    assert_eq!(full["code"], "mailbox_full", "{full}");
    for (frame, code) in [
        (
            json!({"type": "send", "to": "C", "payload": 1}),
            "bad_frame",
        ),
        (json!({"type": "delivered", "upTo": "x"}), "bad_frame"),
        (json!({"type": "nope"}), "unknown_type"),
    ] {
        send(&mut a, frame.clone()).await;
        // (Sends that were on their way when the first refusal came back get theirs too.)
        let mut answer = next_of(&mut a, "error").await;
        while answer["code"] == "mailbox_full" {
            answer = next_of(&mut a, "error").await;
        }
        assert_eq!(answer["code"], code, "{frame}");
    }
    // Ten times the largest frame: closed with 1009, and the side is free again.
    a.send(Message::text("y".repeat(640 * 1024))).await.unwrap();
    assert_eq!(closed_with(&mut a).await, Some(1009));
    let mut b = home.side(&room, "B", "tab-b").await;
    assert!(
        seated_once_free(home, &room, "A", "another-tab").await,
        "the side stayed held after its socket was closed"
    );
    next_of(&mut b, "room_full").await;
}
