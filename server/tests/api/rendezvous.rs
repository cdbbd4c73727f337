//! `/rendezvous`: the seed's code API as its clients speak it: minting, redeeming once, the
//! room sockets (relay, `room_full`, the mailbox across reconnects, takeover), expiry, limits
//! and bad input of every field.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use testkit::client::Ws;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;

impl TestApp {
    pub(crate) async fn mint(&self) -> Value {
        let response = self
            .client
            .post(self.url("/rendezvous/code"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Redeems `body` (raw JSON); status and body.
    pub(crate) async fn redeem_raw(&self, body: &str, content_type: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/rendezvous/redeem"))
            .body(body.to_string());
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn redeem(&self, code: &str) -> (u16, Value) {
        self.redeem_raw(
            &json!({ "code": code }).to_string(),
            Some("application/json"),
        )
        .await
    }

    /// A room: minted and redeemed; its appID.
    pub(crate) async fn room(&self) -> String {
        let code = self.mint().await["code"].as_str().unwrap().to_string();
        let (status, redeemed) = self.redeem(&code).await;
        assert_eq!(status, 200);
        redeemed["appID"].as_str().unwrap().to_string()
    }

    pub(crate) async fn side(&self, room: &str, side: &str, sid: &str) -> Ws {
        let url = format!(
            "ws://{}/rendezvous/ws?appID={room}&side={side}&sid={sid}",
            self.addr
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    /// The status a room socket's upgrade gets instead of 101.
    pub(crate) async fn side_refused(&self, query: &str) -> u16 {
        let url = format!("ws://{}/rendezvous/ws?{query}", self.addr);
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// The next JSON frame (pings skipped); `None` when the socket closed.
pub(crate) async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

pub(crate) async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await.expect("the socket is open");
        if frame["type"] == kind {
            return frame;
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The close frame's code the server ends with.
pub(crate) async fn closed_with(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed within 5 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_code_is_minted_redeemed_once_and_then_gone() {
    let app = TestApp::spawn().await;
    let minted = app.mint().await;
    let code = minted["code"].as_str().unwrap();
    assert_eq!(code.len(), 6, "{minted}");
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let app_id = minted["appID"].as_str().unwrap();
    assert_eq!(app_id.len(), 36);
    assert_eq!(&app_id[14..15], "4", "a version 4 UUID: {app_id}");
    let expires = minted["expiresAt"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 20, "{expires}");

    let (status, redeemed) = app.redeem(code).await;
    assert_eq!(status, 200);
    assert_eq!(redeemed["appID"], app_id);
    assert_eq!(redeemed["expiresAt"], expires);
    assert_eq!(app.redeem(code).await.0, 410, "single use");
    // Unknown codes too (a number no code has).
    let other = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(app.redeem(other).await.0, 410);

    // Codes are never two live at once, and unpredictable.
    let mut codes = std::collections::HashSet::new();
    for _ in 0..15 {
        assert!(codes.insert(app.mint().await["code"].as_str().unwrap().to_string()));
    }
}

#[tokio::test]
async fn two_redeems_of_one_code_at_once_give_exactly_one_room() {
    let app = TestApp::spawn_with(|c| c.redeems_per_ip_per_min = 1000).await;
    for _ in 0..5 {
        let code = app.mint().await["code"].as_str().unwrap().to_string();
        let (a, b) = tokio::join!(app.redeem(&code), app.redeem(&code));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 410]);
    }
}

#[tokio::test]
async fn redeeming_bad_input_gets_a_clear_error() {
    let app = TestApp::spawn_with(|c| c.redeems_per_ip_per_min = 1000).await;
    for (body, content_type, status) in [
        (r#"{"code":"123456"}"#, None, 415),
        (r#"{"code":"123456"}"#, Some("text/plain"), 415),
        (
            "code=123456",
            Some("application/x-www-form-urlencoded"),
            415,
        ),
        ("{not json", Some("application/json"), 400),
        ("{}", Some("application/json"), 400),
        (r#"{"code":123456}"#, Some("application/json"), 400),
        (r#"{"code":"12a456"}"#, Some("application/json"), 400),
        (r#"{"code":"123"}"#, Some("application/json"), 400),
        (r#"{"code":"123456789"}"#, Some("application/json"), 400),
        (
            r#"["123456"]"#,
            Some("application/json; charset=utf-8"),
            400,
        ),
    ] {
        let (got, error) = app.redeem_raw(body, content_type).await;
        assert_eq!(got, status, "{body} as {content_type:?}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
}

#[tokio::test]
async fn room_sockets_refuse_bad_queries_and_unknown_rooms() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    for (query, status) in [
        ("side=A&sid=s1".to_string(), 400),
        ("appID=nope&side=A".to_string(), 400),
        (format!("appID={room}&side=C"), 400),
        (format!("appID={room}"), 400),
        (format!("appID={room}&side=A&sid=has%20space"), 400),
        (format!("appID={room}&side=A&sid={}", "x".repeat(65)), 400),
        (
            "appID=00000000-0000-4000-8000-000000000000&side=A".to_string(),
            404,
        ),
        (format!("appID={room}&side=A&sid=ok-1"), 101),
    ] {
        assert_eq!(app.side_refused(&query).await, status, "{query}");
    }
}

#[tokio::test]
async fn relay_frames_pass_unchanged_and_both_sides_hear_the_room_is_full() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut a = app.side(&room, "A", "a1").await;
    let mut b = app.side(&room, "B", "b1").await;
    assert_eq!(next(&mut a).await.unwrap(), json!({"type": "room_full"}));
    assert_eq!(next(&mut b).await.unwrap(), json!({"type": "room_full"}));

    let offer = r#"{"type":"offer","sdp":"v=0\r\n…","extra":{"n":[1,2]}}"#;
    a.send(Message::text(offer)).await.unwrap();
    match b.next().await.unwrap().unwrap() {
        Message::Text(text) => assert_eq!(text.as_str(), offer, "byte for byte"),
        other => panic!("{other:?}"),
    }
    for kind in ["answer", "ice", "sender_ready"] {
        send(&mut b, json!({"type": kind, "x": kind})).await;
        assert_eq!(next_of(&mut a, kind).await["x"], kind);
    }
    // B comes back: both hear again that the room is full.
    b.close(None).await.unwrap();
    drop(b);
    let mut b = app.side(&room, "B", "b1").await;
    assert_eq!(next(&mut b).await.unwrap()["type"], "room_full");
    assert_eq!(next_of(&mut a, "room_full").await["type"], "room_full");
}

#[tokio::test]
async fn the_mailbox_loses_nothing_and_repeats_nothing_across_a_forced_reconnect() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut a = app.side(&room, "A", "sender").await;
    let mut b = app.side(&room, "B", "reader").await;
    send(
        &mut b,
        json!({"type": "hello", "sessionId": "reader", "deliveredUpTo": 0}),
    )
    .await;

    let total = 300u64;
    let sender = tokio::spawn(async move {
        for n in 1..=total {
            send(
                &mut a,
                json!({"type": "send", "to": "B", "payload": {"n": n}}),
            )
            .await;
            // Within the per-socket rate.
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
        a
    });

    let mut seen = Vec::new();
    let mut acked = 0;
    // Read half, acknowledging every tenth, then vanish without a word.
    while seen.len() < 155 {
        let frame = next_of(&mut b, "deliver").await;
        let seq = frame["seq"].as_u64().unwrap();
        assert_eq!(frame["payload"]["n"].as_u64(), Some(seq), "{frame}");
        seen.push(seq);
        if seq % 10 == 0 {
            send(&mut b, json!({"type": "delivered", "upTo": seq})).await;
            acked = seq;
        }
    }
    drop(b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Back with the same session: what arrived is acknowledged in hello, the rest comes.
    let last = *seen.last().unwrap();
    assert!(last > acked);
    let mut b = app.side(&room, "B", "reader").await;
    send(
        &mut b,
        json!({"type": "hello", "sessionId": "reader", "deliveredUpTo": last}),
    )
    .await;
    while seen.len() < total as usize {
        let frame = next_of(&mut b, "deliver").await;
        let seq = frame["seq"].as_u64().unwrap();
        assert_eq!(frame["payload"]["n"].as_u64(), Some(seq));
        seen.push(seq);
        send(&mut b, json!({"type": "delivered", "upTo": seq})).await;
    }
    let _a = sender.await.unwrap();
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "in order, from 1, once each"
    );
}

#[tokio::test]
async fn a_hello_redelivers_what_was_not_acknowledged_from_seq_1() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut a = app.side(&room, "A", "a").await;
    // Sent before B ever connects: kept, the first one included.
    for n in 1..=3 {
        send(
            &mut a,
            json!({"type": "send", "to": "B", "payload": format!("m{n}")}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut b = app.side(&room, "B", "b").await;
    next_of(&mut b, "room_full").await;
    send(&mut b, json!({"type": "hello", "deliveredUpTo": 0})).await;
    for n in 1..=3u64 {
        let frame = next_of(&mut b, "deliver").await;
        assert_eq!(
            frame,
            json!({"type": "deliver", "seq": n, "payload": format!("m{n}")})
        );
    }
    // Acknowledged up to 2: a new connection gets 3 only.
    send(&mut b, json!({"type": "delivered", "upTo": 2})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut b = app.side(&room, "B", "b").await;
    send(&mut b, json!({"type": "hello", "deliveredUpTo": 0})).await;
    let frame = next_of(&mut b, "deliver").await;
    assert_eq!(frame["seq"], 3);
    send(&mut a, json!({"type": "send", "to": "B", "payload": "m4"})).await;
    assert_eq!(next_of(&mut b, "deliver").await["seq"], 4);
}

#[tokio::test]
async fn the_same_session_takes_a_side_over_at_once_and_another_is_refused() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut first = app.side(&room, "A", "me").await;
    // Another session while the side is held: refused by policy.
    let mut intruder = app.side(&room, "A", "someone-else").await;
    assert_eq!(closed_with(&mut intruder).await, Some(1008));
    // The same session: the old socket is closed and the new one holds the side, no "busy".
    let mut second = app.side(&room, "A", "me").await;
    assert_eq!(closed_with(&mut first).await, Some(1000));
    let mut b = app.side(&room, "B", "peer").await;
    next_of(&mut second, "room_full").await;
    send(&mut b, json!({"type": "offer", "sdp": "x"})).await;
    assert_eq!(next_of(&mut second, "offer").await["sdp"], "x");
}

/// Sends 20 kB payloads to side `to` (paced under the frame rate) until the server refuses
/// one; that error frame.
pub(crate) async fn fill_mailbox(ws: &mut Ws, to: &str) -> Value {
    let big = "x".repeat(20_000);
    for n in 0..200 {
        send(ws, json!({"type": "send", "to": to, "payload": big})).await;
        if n % 40 == 39 {
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(1), ws.next()).await
        {
            return serde_json::from_str::<Value>(&text).unwrap();
        }
    }
    panic!("the mailbox never filled");
}

#[tokio::test]
async fn mailboxes_and_frames_have_limits_with_clear_errors() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut a = app.side(&room, "A", "a").await;
    let full = fill_mailbox(&mut a, "B").await;
    assert_eq!(full["code"], "mailbox_full", "{full}");
    for (frame, code) in [
        (
            json!({"type": "send", "to": "C", "payload": 1}),
            "bad_frame",
        ),
        (json!({"type": "send", "to": "B"}), "bad_frame"),
        (json!({"type": "delivered", "upTo": "x"}), "bad_frame"),
        (json!({"type": "nope"}), "unknown_type"),
        (json!(["not", "an", "object"]), "bad_frame"),
    ] {
        send(&mut a, frame.clone()).await;
        assert_eq!(next_of(&mut a, "error").await["code"], code, "{frame}");
    }
    // A frame over the limit closes the socket with 1009.
    a.send(Message::text("y".repeat(70_000))).await.unwrap();
    assert_eq!(closed_with(&mut a).await, Some(1009));
}

#[tokio::test]
async fn minting_redeeming_and_guessing_are_limited_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.codes_per_ip_per_min = 3;
        c.redeems_per_ip_per_min = 20;
    })
    .await;
    for _ in 0..3 {
        app.mint().await;
    }
    let refused = app
        .client
        .post(app.url("/rendezvous/code"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Failed guesses: two (a tenth of the redeems) per ten minutes, then 429 even for a
    // right code.
    assert_eq!(app.redeem("111111").await.0, 410);
    assert_eq!(app.redeem("222222").await.0, 410);
    assert_eq!(app.redeem("333333").await.0, 429);
}

#[tokio::test]
async fn rooms_expire_after_their_time_to_live_once_empty() {
    let app = TestApp::spawn_with(|c| c.code_ttl = Duration::from_millis(400)).await;
    let minted = app.mint().await;
    let code = minted["code"].as_str().unwrap().to_string();
    let room = app.room().await;
    // Held by a socket, the room outlives its time to live.
    let a = app.side(&room, "A", "a").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.redeem(&code).await.0, 410, "an unredeemed code expired");
    assert_eq!(
        app.side_refused(&format!("appID={room}&side=B")).await,
        101,
        "a room in use stays"
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.side_refused(&format!("appID={room}&side=A")).await, 404);
    assert_eq!(app.state.rooms.counts(), (0, 0));
}

#[tokio::test]
async fn a_flood_on_one_room_socket_is_refused_with_a_clear_error_and_it_keeps_serving() {
    let app = TestApp::spawn().await;
    let room = app.room().await;
    let mut a = app.side(&room, "A", "flood").await;
    let mut b = app.side(&room, "B", "peer").await;
    next_of(&mut b, "room_full").await;
    // Far past the burst (150 frames) at once.
    for _ in 0..400 {
        send(
            &mut a,
            json!({"type": "telemetry", "event": "ice-connected"}),
        )
        .await;
    }
    assert_eq!(next_of(&mut a, "error").await["code"], "rate_limited");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Refilled: the socket still relays.
    send(&mut a, json!({"type": "offer", "sdp": "after"})).await;
    assert_eq!(next_of(&mut b, "offer").await["sdp"], "after");
}

#[tokio::test]
async fn a_code_call_gets_the_stun_turn_servers_only_for_a_live_room() {
    let servers = vec![app::protocol::IceServer {
        urls: vec!["turn:turn.example.org:3478".into()],
        username: Some("parlor".into()),
        credential: Some("s3cret".into()),
    }];
    let configured = servers.clone();
    let app = TestApp::spawn_with(move |c| {
        c.ice_servers = configured;
        c.code_ttl = Duration::from_millis(300);
    })
    .await;
    // No account and no cookie: anyone in a room.
    let stranger = app.browser();
    let room = app.room().await;
    let ask = |id: String| {
        let (app, stranger) = (&app, &stranger);
        async move {
            let response = app
                .call(stranger, "/api/codes/ice", &[("app_id", id.as_str())])
                .await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (status, body) = ask(room.clone()).await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<app::protocol::IceServer> = serde_json::from_str(&body).unwrap();
    assert_eq!(got, servers);
    // Not for a made-up room, nor a malformed id, nor a room that has gone.
    for bad in [
        "0f6c1d2e-1111-4222-8333-444455556666".to_string(),
        "not-a-room".to_string(),
        String::new(),
    ] {
        let (status, body) = ask(bad.clone()).await;
        assert_eq!(status, 404, "{bad}: {body}");
        assert!(!body.contains("turn.example.org"), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(ask(room).await.0, 404, "the room expired");
}
