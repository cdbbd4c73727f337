//! Messages over the real-time channel: live delivery to every tab, resends, catching up,
//! receipts and typing, who may read and post, and the socket's own limits.

use std::time::Duration;

use app::protocol::{close, ClientMsg, ErrorCode, ServerMsg, MAX_FRAME_BYTES, MAX_MESSAGE_CHARS};
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite;

use app::server::db::Engine;

use crate::helpers::TestApp;

fn send(conversation_id: i64, client_id: &str, body: &str) -> ClientMsg {
    ClientMsg::Send {
        conversation_id,
        client_id: client_id.into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn a_message_is_stored_then_delivered_to_every_tab_of_both() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann1 = app.socket(&ann).await;
    let mut ann2 = app.socket(&ann).await;
    let mut bob1 = app.socket(&bob).await;

    ann1.send(&send(conversation, "c-1", "  <b>Hi</b> Bob \n"))
        .await;
    for tab in [&mut ann1, &mut ann2, &mut bob1] {
        let got = tab.message().await;
        assert_eq!(got.body, "<b>Hi</b> Bob", "trimmed, stored as text");
        assert_eq!(got.client_id, "c-1");
        assert_eq!(got.sender_id, ann.id);
        assert_eq!(got.conversation_id, conversation);
    }
    let page = app.history(&bob, conversation).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["body"], "<b>Hi</b> Bob");

    let list = app.ok_as(&bob, "/api/messages/conversations", &[]).await;
    assert_eq!(list[0]["last_message"]["body"], "<b>Hi</b> Bob");
    assert_eq!(list[0]["unread"], 1);
    assert_eq!(app.ok_as(&bob, "/api/messages/unread", &[]).await, 1);
    assert_eq!(
        app.ok_as(&ann, "/api/messages/unread", &[]).await,
        0,
        "your own messages are read"
    );
}

#[tokio::test]
async fn messages_are_stored_after_the_database_ends_every_connection() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab.send(&send(conversation, "before", "one")).await;
    assert_eq!(bob_tab.message().await.client_id, "before");

    // PostgreSQL restarted, or a proxy dropped idle connections: the message writer's kept
    // connection is among the dead. (SQLite's connections are a file: nothing to end.)
    if app.state.db.engine() == Engine::Postgres {
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&app.state.db.pool_for_tests())
        .await
        .unwrap();
        assert!(ended.contains(&true), "the writer's connection was ended");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ann_tab.send(&send(conversation, "after", "two")).await;
    assert_eq!(bob_tab.message().await.client_id, "after");
    assert_eq!(ann_tab.message().await.client_id, "before");
    assert_eq!(ann_tab.message().await.client_id, "after");
}

#[tokio::test]
async fn a_resend_with_the_same_client_id_is_not_a_second_message() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;

    ann_tab.send(&send(conversation, "same", "once")).await;
    let first = ann_tab.message().await;
    bob_tab.message().await;

    // The browser did not see the echo (its socket dropped) and sends again after reconnecting.
    drop(ann_tab);
    let mut ann_tab = app.socket(&ann).await;
    ann_tab.send(&send(conversation, "same", "once")).await;
    let again = ann_tab.message().await;
    assert_eq!(again.id, first.id);
    bob_tab
        .none_for(Duration::from_millis(300), |m| {
            matches!(m, ServerMsg::Message { .. })
        })
        .await;
    assert_eq!(
        app.history(&bob, conversation).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same id for another conversation is refused, not silently merged.
    let cat = app.person("Cat").await;
    let other = app.befriend(&ann, &cat).await;
    ann_tab.send(&send(other, "same", "elsewhere")).await;
    let (code, _, client_id) = ann_tab.error().await;
    assert_eq!(
        (code, client_id.as_deref()),
        (ErrorCode::Invalid, Some("same"))
    );
}

#[tokio::test]
async fn someone_offline_gets_everything_on_the_next_connection() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab.send(&send(conversation, "m0", "before")).await;
    let seen = bob_tab.message().await;
    ann_tab.message().await;
    drop(bob_tab);

    for i in 1..=3 {
        ann_tab
            .send(&send(
                conversation,
                &format!("m{i}"),
                &format!("while away {i}"),
            ))
            .await;
        ann_tab.message().await;
    }
    let mut bob_tab = app.socket(&bob).await;
    bob_tab.send(&ClientMsg::Resume { after: seen.id }).await;
    let (messages, more) = bob_tab
        .next_where(|m| match m {
            ServerMsg::Backlog { messages, more } => Some((messages, more)),
            _ => None,
        })
        .await;
    let bodies: Vec<_> = messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["while away 1", "while away 2", "while away 3"]);
    assert!(!more);
}

#[tokio::test]
async fn history_pages_backwards_by_cursor() {
    let app = TestApp::spawn().await;
    let (ann, _bob, conversation) = app.pair().await;
    let mut tab = app.socket(&ann).await;
    for i in 0..35 {
        tab.send(&send(conversation, &format!("h{i}"), &format!("n{i}")))
            .await;
        tab.message().await;
    }
    let newest = app.history(&ann, conversation).await;
    let messages = newest["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 30);
    assert_eq!(messages[0]["body"], "n5");
    assert_eq!(messages[29]["body"], "n34");
    assert_eq!(newest["has_more"], true);
    let before = messages[0]["id"].as_i64().unwrap().to_string();
    let older = app
        .ok_as(
            &ann,
            "/api/messages/history",
            &[
                ("conversation_id", &conversation.to_string()),
                ("before", &before),
            ],
        )
        .await;
    let bodies: Vec<_> = older["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["n0", "n1", "n2", "n3", "n4"]);
    assert_eq!(older["has_more"], false);
}

#[tokio::test]
async fn receipts_and_typing_reach_the_other_member() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    let mut bob_tab2 = app.socket(&bob).await;

    bob_tab
        .send(&ClientMsg::Typing {
            conversation_id: conversation,
        })
        .await;
    let typing = ann_tab
        .next_where(|m| matches!(m, ServerMsg::Typing { .. }).then_some(m))
        .await;
    assert_eq!(
        typing,
        ServerMsg::Typing {
            conversation_id: conversation,
            user_id: bob.id
        }
    );

    ann_tab
        .send(&send(conversation, "r1", "did you get this?"))
        .await;
    let sent = bob_tab.message().await;
    bob_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: sent.id,
            read_up_to: 0,
        })
        .await;
    let receipt = |m| match m {
        ServerMsg::Receipt {
            user_id,
            delivered_up_to,
            read_up_to,
            ..
        } => Some((user_id, delivered_up_to, read_up_to)),
        _ => None,
    };
    assert_eq!(ann_tab.next_where(receipt).await, (bob.id, sent.id, 0));
    // Claims beyond the newest message are cut back to it.
    bob_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: 0,
            read_up_to: sent.id + 1000,
        })
        .await;
    assert_eq!(
        ann_tab.next_where(receipt).await,
        (bob.id, sent.id, sent.id)
    );
    // Bob's other tab learns it too (its unread count drops).
    assert_eq!(bob_tab2.next_where(receipt).await, (bob.id, sent.id, 0));
    assert_eq!(
        bob_tab2.next_where(receipt).await,
        (bob.id, sent.id, sent.id)
    );
    assert_eq!(app.ok_as(&bob, "/api/messages/unread", &[]).await, 0);
    let detail = app
        .ok_as(
            &ann,
            "/api/messages/conversation",
            &[("id", &conversation.to_string())],
        )
        .await;
    assert_eq!(detail["peer_read_up_to"], sent.id);
    assert_eq!(detail["peer_online"], true);
    assert_eq!(detail["read_only_reason"], Value::Null);
}

#[tokio::test]
async fn only_members_read_or_post_and_strangers_cannot_message() {
    let app = TestApp::spawn().await;
    let (ann, _bob, conversation) = app.pair().await;
    let eve = app.person("Eve").await;
    let id = conversation.to_string();

    for path in ["/api/messages/history", "/api/messages/conversation"] {
        let key = if path.ends_with("history") {
            "conversation_id"
        } else {
            "id"
        };
        let (status, _) = app.refused_as(&eve, path, &[(key, &id)]).await;
        assert_eq!(status, 404, "{path}");
    }
    assert!(app
        .ok_as(&eve, "/api/messages/conversations", &[])
        .await
        .as_array()
        .unwrap()
        .is_empty());

    let mut eve_tab = app.socket(&eve).await;
    let mut ann_tab = app.socket(&ann).await;
    eve_tab.send(&send(conversation, "x", "let me in")).await;
    assert_eq!(eve_tab.error().await.0, ErrorCode::NotFound);
    eve_tab
        .send(&ClientMsg::Typing {
            conversation_id: conversation,
        })
        .await;
    assert_eq!(eve_tab.error().await.0, ErrorCode::NotFound);
    eve_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: 1,
            read_up_to: 1,
        })
        .await;
    assert_eq!(eve_tab.error().await.0, ErrorCode::NotFound);
    // A Resume returns only Eve's own conversations' messages: none.
    ann_tab.send(&send(conversation, "a", "private")).await;
    ann_tab.message().await;
    eve_tab.send(&ClientMsg::Resume { after: 0 }).await;
    let backlog = eve_tab
        .next_where(|m| matches!(m, ServerMsg::Backlog { .. }).then_some(m))
        .await;
    assert_eq!(
        backlog,
        ServerMsg::Backlog {
            messages: vec![],
            more: false
        }
    );
    // Eve saw none of it live either.
    eve_tab.silent_for(Duration::from_millis(200)).await;
    assert_eq!(
        app.history(&ann, conversation).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let no_session = app.try_socket(None).await;
    match no_session {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn after_unfriending_or_blocking_history_stays_but_sending_is_refused() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    ann_tab
        .send(&send(conversation, "1", "still friends"))
        .await;
    ann_tab.message().await;

    app.ok_as(
        &bob,
        "/api/friends/unfriend",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    ann_tab.send(&send(conversation, "2", "hello?")).await;
    let (code, text, client_id) = ann_tab.error().await;
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(text.contains("no longer friends"), "{text}");
    assert_eq!(client_id.as_deref(), Some("2"));
    assert_eq!(
        app.history(&ann, conversation).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.history(&bob, conversation).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let detail = app
        .ok_as(
            &ann,
            "/api/messages/conversation",
            &[("id", &conversation.to_string())],
        )
        .await;
    assert!(detail["read_only_reason"]
        .as_str()
        .unwrap()
        .contains("no longer friends"));

    app.befriend(&ann, &bob).await;
    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    ann_tab.send(&send(conversation, "3", "why?")).await;
    let (code, text, _) = ann_tab.error().await;
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(text.contains("can no longer send"), "{text}");
    let mut bob_tab = app.socket(&bob).await;
    bob_tab.send(&send(conversation, "4", "bye")).await;
    let (code, text, _) = bob_tab.error().await;
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(text.contains("You blocked"), "{text}");
    assert_eq!(
        app.history(&bob, conversation).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn after_a_block_nothing_of_the_blocker_reaches_the_blocked_person() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab.send(&send(conversation, "1", "hi Bob")).await;
    let sent = ann_tab.message().await;
    bob_tab.message().await;
    let detail = |who| {
        let app = &app;
        async move {
            app.ok_as(
                who,
                "/api/messages/conversation",
                &[("id", &conversation.to_string())],
            )
            .await
        }
    };
    // Before: Ann sees Bob online and how far he read.
    bob_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: sent.id,
            read_up_to: sent.id,
        })
        .await;
    ann_tab
        .next_where(|m| matches!(m, ServerMsg::Receipt { .. }).then_some(()))
        .await;
    let before = detail(&ann).await;
    assert_eq!(before["peer_online"], true);
    assert_eq!(before["peer_read_up_to"], sent.id);

    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    // After: no presence and no read position either way, though both are online and the
    // receipts are stored.
    for (who, other) in [(&ann, &bob), (&bob, &ann)] {
        let after = detail(who).await;
        assert_eq!(
            after["peer_online"], false,
            "{} sees {}",
            who.name, other.name
        );
        assert_eq!(after["peer_read_up_to"], 0);
        assert_eq!(after["peer_delivered_up_to"], 0);
    }
    // Bob reading the history tells his own tabs, never Ann.
    bob_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: sent.id,
            read_up_to: sent.id,
        })
        .await;
    ann_tab
        .none_for(Duration::from_millis(300), |m| {
            matches!(
                m,
                ServerMsg::Receipt { .. } | ServerMsg::Presence { .. } | ServerMsg::Typing { .. }
            )
        })
        .await;
    // Going offline and back is not announced to Ann either.
    drop(bob_tab);
    let _bob_again = app.socket(&bob).await;
    ann_tab
        .none_for(Duration::from_millis(300), |m| {
            matches!(m, ServerMsg::Presence { .. })
        })
        .await;
}

#[tokio::test]
async fn bad_messages_get_a_clear_error_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (ann, _bob, conversation) = app.pair().await;
    let mut tab = app.socket(&ann).await;

    tab.send(&send(conversation, "e", " \n ")).await;
    let (code, text, _) = tab.error().await;
    assert_eq!(
        (code, text.as_str()),
        (ErrorCode::Invalid, "A message cannot be empty.")
    );
    tab.send(&send(conversation, "l", &"x".repeat(MAX_MESSAGE_CHARS + 1)))
        .await;
    let (code, text, _) = tab.error().await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(text.contains("at most 4000"), "{text}");
    tab.send(&send(conversation, "", "no id")).await;
    assert_eq!(tab.error().await.0, ErrorCode::Invalid);
    assert!(app.history(&ann, conversation).await["messages"]
        .as_array()
        .unwrap()
        .is_empty());

    // Malformed frames are answered and the connection goes on.
    for junk in [
        "not json",
        r#"{"type":"shout"}"#,
        r#"{"type":"send","conversation_id":"x"}"#,
    ] {
        tab.send_text(junk).await;
        assert_eq!(tab.error().await.0, ErrorCode::BadFrame, "{junk}");
    }
    tab.send(&ClientMsg::Ping).await;
    assert_eq!(tab.next().await, ServerMsg::Pong);
    // Repeated abuse closes it.
    for _ in 0..20 {
        tab.send_text("{").await;
    }
    let frame = tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), close::POLICY);
}

#[tokio::test]
async fn a_frame_above_the_limit_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let mut tab = app.socket(&ann).await;
    tab.send_text(&"x".repeat(MAX_FRAME_BYTES + 1)).await;
    let frame = tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), close::TOO_BIG);
    // Everyone else is unaffected.
    let mut again = app.socket(&ann).await;
    again.send(&ClientMsg::Ping).await;
    assert_eq!(again.next().await, ServerMsg::Pong);
}

#[tokio::test]
async fn flooding_is_rate_limited_then_closed() {
    let app = TestApp::spawn_with(|c| c.ws_messages_per_sec = 2).await;
    let ann = app.person("Ann").await;
    let mut tab = app.socket(&ann).await;
    // A burst of three seconds' worth passes.
    for _ in 0..6 {
        tab.send(&ClientMsg::Ping).await;
    }
    for _ in 0..6 {
        assert_eq!(tab.next().await, ServerMsg::Pong);
    }
    tab.send(&ClientMsg::Ping).await;
    let (code, _, _) = tab.error().await;
    assert_eq!(code, ErrorCode::RateLimited);
    for _ in 0..30 {
        tab.send(&ClientMsg::Ping).await;
    }
    let frame = tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), close::POLICY);
}

#[tokio::test]
async fn a_silent_connection_is_dropped_within_two_heartbeats() {
    let app = TestApp::spawn_with(|c| c.ws_heartbeat = Duration::from_millis(200)).await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    app.befriend(&ann, &bob).await;
    let mut bob_tab = app.socket(&bob).await;

    // A client that reads (and so answers pings) stays connected well past two intervals.
    let mut lively = app.socket(&ann).await;
    bob_tab
        .next_where(|m| matches!(m, ServerMsg::Presence { online: true, .. }).then_some(()))
        .await;
    tokio::join!(
        lively.silent_for(Duration::from_millis(1000)),
        bob_tab.silent_for(Duration::from_millis(1000))
    );
    assert!(app.state.presence.is_online(ann.id).await);
    lively.ws.close(None).await.unwrap();
    bob_tab
        .next_where(|m| matches!(m, ServerMsg::Presence { online: false, .. }).then_some(()))
        .await;

    // One that stops reading (a dead network) is dropped, and its friends see it leave.
    let silent = app.socket(&ann).await;
    bob_tab
        .next_where(|m| matches!(m, ServerMsg::Presence { online: true, .. }).then_some(()))
        .await;
    let started = tokio::time::Instant::now();
    bob_tab
        .next_where(|m| matches!(m, ServerMsg::Presence { online: false, .. }).then_some(()))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!app.state.presence.is_online(ann.id).await);
    drop(silent);
}

#[tokio::test]
async fn ending_sessions_closes_their_sockets() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let mut tab = app.socket(&ann).await;
    app.ok_as(&ann, "/api/auth/sign_out_everywhere", &[]).await;
    let frame = tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), close::SESSION_ENDED);
    let again = app.try_socket(Some(&ann.cookie)).await;
    assert!(again.is_err(), "the old cookie no longer opens a socket");
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_going_away() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let mut tab = app.socket(&ann).await;
    let stopped = tokio::spawn(app.shutdown());
    let frame = tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), close::GOING_AWAY);
    stopped.await.unwrap().expect("clean shutdown");
}

#[tokio::test]
async fn a_send_dropped_for_flooding_is_named_so_the_browser_can_resend_it() {
    let app = TestApp::spawn_with(|c| c.ws_messages_per_sec = 1).await;
    let (ann, _bob, conversation) = app.pair().await;
    let mut tab = app.socket(&ann).await;
    // The burst allowance (three seconds' worth) is spent...
    for _ in 0..3 {
        tab.send(&ClientMsg::Ping).await;
    }
    tab.send(&send(conversation, "late", "hello")).await;
    let (code, _, client_id) = tab.error().await;
    assert_eq!(
        (code, client_id.as_deref()),
        (ErrorCode::RateLimited, Some("late"))
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    tab.send(&send(conversation, "late", "hello")).await;
    assert_eq!(tab.message().await.client_id, "late");
}

#[tokio::test]
async fn catching_up_on_many_large_messages_comes_in_frames_the_socket_can_carry() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    // 200 maximal messages whose every character is escaped on the wire (6 bytes each):
    // about 4.8 MB in all, far more than a socket's 256 KiB write buffer.
    let body = "\u{1}".repeat(MAX_MESSAGE_CHARS);
    for i in 0..200 {
        app.state
            .db
            .post_message(app::server::db::writer::Post {
                conversation,
                sender: ann.id,
                client_id: format!("big{i}"),
                body: body.clone(),
            })
            .await
            .unwrap();
    }
    let mut bob_tab = app.socket(&bob).await;
    let mut received = 0;
    let mut after = 0;
    loop {
        bob_tab.send(&ClientMsg::Resume { after }).await;
        let frame = loop {
            match tokio::time::timeout(Duration::from_secs(5), bob_tab.ws.next())
                .await
                .expect("a backlog within 5 s")
                .expect("the socket stays open")
                .expect("a readable frame")
            {
                tungstenite::Message::Text(text) => break text,
                _ => continue,
            }
        };
        assert!(
            frame.len() <= 128 * 1024,
            "a frame of {} bytes",
            frame.len()
        );
        let (messages, more) = match serde_json::from_str(&frame).unwrap() {
            ServerMsg::Backlog { messages, more } => (messages, more),
            // Asking page after page may hit the socket's rate limit: ask again later, as the
            // browser does.
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            other => panic!("expected a backlog: {other:?}"),
        };
        assert!(!messages.is_empty());
        assert!(messages.iter().all(|m| m.body == body));
        received += messages.len();
        after = messages.last().unwrap().id;
        if !more {
            break;
        }
    }
    assert_eq!(received, 200);
    // The connection is still good.
    bob_tab.send(&ClientMsg::Ping).await;
    assert_eq!(bob_tab.next().await, ServerMsg::Pong);
}

/// Two instances on one database (each with its own message writer) store messages at once,
/// while Ann's browser keeps catching up with "everything after the newest id I have", as a
/// reconnecting browser does. She misses none: ids grow in commit order, on PostgreSQL too
/// (where two transactions could otherwise commit their ids out of order).
#[tokio::test]
async fn catching_up_by_id_misses_nothing_while_two_instances_store_at_once() {
    use app::server::db::writer::{Post, Posted};

    let app = TestApp::spawn().await;
    let instances = [app.state.db.clone(), app.second_db().await];
    let db = &instances[0];
    let ann = db
        .create_user("ann@example.com", false, "Ann", None)
        .await
        .unwrap()
        .id;
    let mut senders = Vec::new();
    for name in ["bob", "cat", "dan", "eve"] {
        let user = db
            .create_user(&format!("{name}@example.com"), false, name, None)
            .await
            .unwrap()
            .id;
        db.send_friend_request(user, ann).await.unwrap();
        let conversation = db.accept_friend_request(ann, user).await.unwrap();
        senders.push((user, conversation));
    }

    const EACH: usize = 200;
    let writers = senders
        .iter()
        .enumerate()
        .map(|(i, &(user, conversation))| {
            let db = instances[i % 2].clone();
            async move {
                let posts = (0..EACH).map(|n| {
                    db.post_message(Post {
                        conversation,
                        sender: user,
                        client_id: format!("{user}-{n}"),
                        body: format!("message {n}"),
                    })
                });
                for posted in futures::future::join_all(posts).await {
                    assert!(matches!(posted, Ok(Posted::New { .. })), "{posted:?}");
                }
            }
        });
    let done = std::sync::atomic::AtomicBool::new(false);
    let reader = async {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            for message in instances[1]
                .messages_after(ann, cursor, 1000)
                .await
                .unwrap()
            {
                cursor = cursor.max(message.id);
                seen.insert(message.id);
            }
            if finished {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    };
    let (_, seen) = tokio::join!(
        async {
            futures::future::join_all(writers).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        },
        reader
    );
    assert_eq!(
        seen.len(),
        senders.len() * EACH,
        "messages missed by catching up"
    );
}

/// Many messages at once are stored in few statements (a batch is one insert); the answers
/// stay each message's own, on both engines: a resend of the same client id in the same
/// burst is stored once and answered as a resend, a message from a blocked pair or to a
/// conversation not the sender's is refused, an id already used elsewhere is named so, and
/// every other message is stored once with the right peer.
#[tokio::test]
async fn a_burst_keeps_every_answer_its_own_with_resends_and_refusals_among_it() {
    use app::server::db::writer::{Post, PostError, Posted};

    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cat", "dan"] {
        let user = db
            .create_user(&format!("{name}@example.com"), false, name, None)
            .await
            .unwrap();
        ids.push(user.id);
    }
    let (ann, bob, cat, dan) = (ids[0], ids[1], ids[2], ids[3]);
    db.send_friend_request(ann, bob).await.unwrap();
    let talking = db.accept_friend_request(bob, ann).await.unwrap();
    db.send_friend_request(dan, ann).await.unwrap();
    let elsewhere = db.accept_friend_request(ann, dan).await.unwrap();
    db.send_friend_request(cat, ann).await.unwrap();
    let blocked = db.accept_friend_request(ann, cat).await.unwrap();
    db.block(ann, cat).await.unwrap();

    let post = |conversation, sender, client_id: &str| Post {
        conversation,
        sender,
        client_id: client_id.into(),
        body: format!("text of {client_id}"),
    };
    // "used" goes first on its own, to be reused in a conversation it is not from.
    db.post_message(post(talking, ann, "used")).await.unwrap();
    let mut posts: Vec<Post> = (0..400)
        .map(|n| {
            post(
                talking,
                if n % 2 == 0 { ann } else { bob },
                &format!("m{n}"),
            )
        })
        .collect();
    for n in (0..400).step_by(40) {
        // A resend of one of them, in the middle of the burst.
        posts.insert(
            n + 5,
            post(
                talking,
                if n % 2 == 0 { ann } else { bob },
                &format!("m{n}"),
            ),
        );
    }
    posts.insert(100, post(blocked, cat, "from-blocked"));
    posts.insert(200, post(blocked, bob, "not-a-member"));
    posts.insert(300, post(elsewhere, ann, "used"));
    let answers =
        futures::future::join_all(posts.iter().cloned().map(|p| db.post_message(p))).await;

    let mut stored = std::collections::HashMap::new();
    let mut resent = 0;
    for (post, answer) in posts.iter().zip(&answers) {
        match (post.client_id.as_str(), answer) {
            ("from-blocked", Err(PostError::NotAllowed(_)))
            | ("not-a-member", Err(PostError::NotFound))
            | ("used", Err(PostError::ClientIdReused)) => {}
            (id, Ok(Posted::New { message, peer })) if id.starts_with('m') => {
                assert_eq!(
                    (&message.client_id, &message.body),
                    (&post.client_id, &post.body)
                );
                assert_eq!(message.sender_id, post.sender);
                assert_eq!(*peer, if post.sender == ann { bob } else { ann });
                assert!(
                    stored.insert(id.to_string(), message.id).is_none(),
                    "{id} stored twice"
                );
            }
            (id, Ok(Posted::Again(message))) => {
                resent += 1;
                assert_eq!(message.client_id, id);
            }
            (id, other) => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!((stored.len(), resent), (400, 10));
    // Each resend was answered with the message stored for the first.
    for (post, answer) in posts.iter().zip(&answers) {
        if let Ok(Posted::Again(message)) = answer {
            assert_eq!(Some(&message.id), stored.get(&post.client_id));
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&db.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(count, 401);
}
