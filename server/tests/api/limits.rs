//! Limits that hold across sockets: how many sockets one person or address may open, what
//! one person may send over all their tabs together, friends changes per minute, and
//! receipts that move nothing sending nothing.

use std::time::Duration;

use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
use tokio_tungstenite::tungstenite;

use crate::helpers::TestApp;

/// Whether a socket with `cookie` opens within 2.5 s (a freed place comes back once the
/// server has seen the old socket go).
pub(crate) async fn reopens(app: &TestApp, cookie: &str) -> bool {
    for _ in 0..50 {
        if app.try_socket(Some(cookie)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub(crate) fn refused_status(result: Result<crate::people::Socket, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the socket opened"),
    }
}

#[tokio::test]
async fn one_person_may_hold_only_so_many_sockets_and_a_closed_one_frees_its_place() {
    let app = TestApp::spawn_with(|c| c.ws_sockets_per_principal = 3).await;
    let ann = app.person("Ann").await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(app.socket(&ann).await);
    }
    assert_eq!(refused_status(app.try_socket(Some(&ann.cookie)).await), 429);
    // Someone else is not affected.
    let bob = app.person("Bob").await;
    app.socket(&bob).await;
    // Closing a tab gives its place back (once the server has seen it go).
    drop(tabs.pop());
    assert!(
        reopens(&app, &ann.cookie).await,
        "the freed place was not given back"
    );
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_sockets() {
    let app = TestApp::spawn_with(|c| c.ws_sockets_per_ip = 4).await;
    let mut tabs = Vec::new();
    for name in ["Ann", "Bob", "Cid", "Dee"] {
        let who = app.person(name).await;
        tabs.push(app.socket(&who).await);
    }
    let eve = app.person("Eve").await;
    assert_eq!(refused_status(app.try_socket(Some(&eve.cookie)).await), 429);
    let guest = app.guest().await;
    assert_eq!(
        refused_status(app.try_socket(Some(&guest.cookie)).await),
        429
    );
}

#[tokio::test]
async fn many_tabs_do_not_multiply_what_one_person_may_send() {
    // Each socket may send 2 a second in bursts of 6; the person, 40 per 10 s in all.
    let app = TestApp::spawn_with(|c| c.ws_messages_per_sec = 2).await;
    let (ann, _bob, conversation) = app.pair().await;
    let mut tabs = Vec::new();
    for _ in 0..10 {
        tabs.push(app.socket(&ann).await);
    }
    // 10 tabs × 5 = 50 messages, each tab within its own burst (the ping is the sixth).
    for tab in &mut tabs {
        for _ in 0..5 {
            tab.send(&ClientMsg::Typing {
                conversation_id: conversation,
            })
            .await;
        }
    }
    let mut limited = 0;
    for tab in &mut tabs {
        tab.send(&ClientMsg::Ping).await;
        loop {
            match tab.next().await {
                ServerMsg::Pong => break,
                ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    message,
                    ..
                } => {
                    assert!(message.contains("open tabs"), "{message}");
                    limited += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(limited, 10, "50 sent, 40 allowed");
}

#[tokio::test]
async fn friends_changes_are_limited_per_minute() {
    let app = TestApp::spawn_with(|c| c.friend_changes_per_min = 3).await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let bob_id = bob.id.to_string();
    for path in [
        "/api/friends/request",
        "/api/friends/cancel",
        "/api/friends/request",
    ] {
        app.ok_as(&ann, path, &[("user_id", &bob_id)]).await;
    }
    let (status, _) = app
        .refused_as(&ann, "/api/friends/cancel", &[("user_id", &bob_id)])
        .await;
    assert_eq!(status, 429);
    // Bob's own allowance is his.
    app.ok_as(
        &bob,
        "/api/friends/answer",
        &[("user_id", &ann.id.to_string()), ("accept", "true")],
    )
    .await;
}

#[tokio::test]
async fn a_receipt_that_moves_nothing_sends_nothing() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab
        .send(&ClientMsg::Send {
            conversation_id: conversation,
            client_id: "r1".into(),
            body: "read me".into(),
        })
        .await;
    let id = ann_tab.message().await.id;
    bob_tab.message().await;
    let receipt = ClientMsg::Receipt {
        conversation_id: conversation,
        delivered_up_to: id,
        read_up_to: id,
    };
    bob_tab.send(&receipt).await;
    let moved = ann_tab
        .next_where(|m| match m {
            ServerMsg::Receipt { read_up_to, .. } => Some(read_up_to),
            _ => None,
        })
        .await;
    assert_eq!(moved, id);
    bob_tab
        .next_where(|m| matches!(m, ServerMsg::Receipt { .. }).then_some(()))
        .await;
    // The same again, and one going backwards: nothing to tell anyone.
    bob_tab.send(&receipt).await;
    bob_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: 0,
            read_up_to: 0,
        })
        .await;
    for tab in [&mut ann_tab, &mut bob_tab] {
        tab.none_for(Duration::from_millis(300), |m| {
            matches!(m, ServerMsg::Receipt { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn searching_by_email_cannot_go_faster_than_the_limits() {
    let app = TestApp::spawn_with(|c| {
        c.searches_per_min = 5;
        c.searches_per_ip_per_min = 8;
    })
    .await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let search = |who, query: &str| {
        let query = query.to_string();
        let app = &app;
        async move {
            app.call_as(
                who,
                "/api/friends/search",
                &[("query", &query), ("page", "0")],
            )
            .await
            .status()
            .as_u16()
        }
    };
    for i in 0..5 {
        assert_eq!(search(&ann, &format!("someone{i}@example.com")).await, 200);
    }
    assert_eq!(
        search(&ann, "bob@example.com").await,
        429,
        "Ann's own limit"
    );
    // Another account from the same address counts against the address too.
    for i in 0..3 {
        assert_eq!(search(&bob, &format!("other{i}@example.com")).await, 200);
    }
    assert_eq!(
        search(&bob, "ann@example.com").await,
        429,
        "the address's limit"
    );
}
