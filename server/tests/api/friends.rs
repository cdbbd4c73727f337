//! Friends over HTTP: search, requests, blocks, and who may do what to whom.

use std::time::Duration;

use app::{protocol::ServerMsg, server::db::Engine};
use serde_json::Value;

use crate::helpers::TestApp;

fn names(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"]["display_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_finds_names_in_any_case_and_exact_emails_but_never_yourself() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    app.person("Émilie").await;
    app.person("Joanna").await;

    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "AN"), ("page", "0")],
        )
        .await;
    assert_eq!(names(&page), ["Joanna"], "not Ann herself");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["results"][0]["relation"], "None");

    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "éMIL"), ("page", "0")],
        )
        .await;
    assert_eq!(names(&page), ["Émilie"], "Unicode-aware case folding");

    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "JOANNA@example.com"), ("page", "0")],
        )
        .await;
    assert_eq!(names(&page), ["Joanna"]);
    // Part of an email finds nobody: addresses are not browsable.
    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "example.com"), ("page", "0")],
        )
        .await;
    assert!(names(&page).is_empty());

    let (status, error) = app
        .refused_as(
            &ann,
            "/api/friends/search",
            &[("query", " a "), ("page", "0")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(error["Invalid"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at least 2"));

    let response = app
        .call(
            &app.client,
            "/api/friends/search",
            &[("query", "ann"), ("page", "0")],
        )
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn search_is_paginated() {
    let app = TestApp::spawn().await;
    let me = app.person("Searcher").await;
    for i in 0..23 {
        app.person(&format!("Pat{i:02}")).await;
    }
    let first = app
        .ok_as(
            &me,
            "/api/friends/search",
            &[("query", "pat"), ("page", "0")],
        )
        .await;
    assert_eq!(names(&first).len(), 20);
    assert_eq!(first["has_more"], true);
    let second = app
        .ok_as(
            &me,
            "/api/friends/search",
            &[("query", "pat"), ("page", "1")],
        )
        .await;
    assert_eq!(names(&second), ["Pat20", "Pat21", "Pat22"]);
    assert_eq!(second["has_more"], false);
}

#[tokio::test]
async fn a_request_is_accepted_only_by_its_recipient_and_creates_the_conversation() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let (ann_id, bob_id) = (ann.id.to_string(), bob.id.to_string());

    assert_eq!(
        app.ok_as(&ann, "/api/friends/request", &[("user_id", &bob_id)])
            .await,
        "Sent"
    );
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert_eq!(overview["incoming"][0]["user"]["display_name"], "Ann");
    let overview = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert_eq!(overview["outgoing"][0]["user"]["display_name"], "Bob");
    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "bob"), ("page", "0")],
        )
        .await;
    assert_eq!(page["results"][0]["relation"], "RequestSent");

    // The sender cannot accept her own request, whichever id she names.
    for id in [&bob_id, &ann_id] {
        let (status, _) = app
            .refused_as(
                &ann,
                "/api/friends/answer",
                &[("user_id", id), ("accept", "true")],
            )
            .await;
        assert!(status == 404 || status == 403, "{status}");
    }
    assert!(app.ok_as(&ann, "/api/friends/list", &[]).await["friends"]
        .as_array()
        .unwrap()
        .is_empty());

    let conversation = app
        .ok_as(
            &bob,
            "/api/friends/answer",
            &[("user_id", &ann_id), ("accept", "true")],
        )
        .await;
    let conversation = conversation.as_i64().unwrap();
    let overview = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert_eq!(overview["friends"][0]["user"]["display_name"], "Bob");
    assert_eq!(overview["friends"][0]["conversation_id"], conversation);
    assert!(overview["outgoing"].as_array().unwrap().is_empty());
    let listed = app.ok_as(&bob, "/api/messages/conversations", &[]).await;
    assert_eq!(listed[0]["id"], conversation);
    assert_eq!(listed[0]["peer"]["display_name"], "Ann");

    // Accepting again finds nothing to accept.
    let (status, _) = app
        .refused_as(
            &bob,
            "/api/friends/answer",
            &[("user_id", &ann_id), ("accept", "true")],
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .refused_as(&bob, "/api/friends/request", &[("user_id", &ann_id)])
        .await;
    assert_eq!(status, 403, "already friends");
}

#[tokio::test]
async fn asking_someone_who_already_asked_you_accepts_their_request() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    app.ok_as(
        &ann,
        "/api/friends/request",
        &[("user_id", &bob.id.to_string())],
    )
    .await;
    let outcome = app
        .ok_as(
            &bob,
            "/api/friends/request",
            &[("user_id", &ann.id.to_string())],
        )
        .await;
    assert!(outcome["Accepted"]["conversation_id"].is_i64(), "{outcome}");
    let overview = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert_eq!(overview["friends"].as_array().unwrap().len(), 1);
    assert!(overview["incoming"].as_array().unwrap().is_empty());
    assert!(overview["outgoing"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn only_the_sender_cancels_and_only_the_recipient_rejects() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let (ann_id, bob_id) = (ann.id.to_string(), bob.id.to_string());
    app.ok_as(&ann, "/api/friends/request", &[("user_id", &bob_id)])
        .await;

    let (status, _) = app
        .refused_as(&bob, "/api/friends/cancel", &[("user_id", &ann_id)])
        .await;
    assert_eq!(status, 404, "Bob cannot cancel Ann's request");
    let (status, _) = app
        .refused_as(
            &ann,
            "/api/friends/answer",
            &[("user_id", &bob_id), ("accept", "false")],
        )
        .await;
    assert_eq!(status, 404, "Ann cannot reject her own request");

    app.ok_as(
        &bob,
        "/api/friends/answer",
        &[("user_id", &ann_id), ("accept", "false")],
    )
    .await;
    let overview = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert!(overview["outgoing"].as_array().unwrap().is_empty());
    assert!(overview["friends"].as_array().unwrap().is_empty());

    app.ok_as(&ann, "/api/friends/request", &[("user_id", &bob_id)])
        .await;
    app.ok_as(&ann, "/api/friends/cancel", &[("user_id", &bob_id)])
        .await;
    assert!(app.ok_as(&bob, "/api/friends/list", &[]).await["incoming"]
        .as_array()
        .unwrap()
        .is_empty());

    let (status, _) = app
        .refused_as(&ann, "/api/friends/request", &[("user_id", &ann_id)])
        .await;
    assert_eq!(status, 403, "no request to yourself");
    let (status, _) = app
        .refused_as(&ann, "/api/friends/request", &[("user_id", "999999")])
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .refused_as(&ann, "/api/friends/request", &[("user_id", "bob")])
        .await;
    assert_eq!(status, 400, "a malformed id is a bad request");
}

#[tokio::test]
async fn a_blocked_user_can_no_longer_find_or_ask_and_the_friendship_ends() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let (ann_id, bob_id) = (ann.id.to_string(), bob.id.to_string());
    app.befriend(&ann, &bob).await;

    app.ok_as(&bob, "/api/friends/block", &[("user_id", &ann_id)])
        .await;
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert!(overview["friends"].as_array().unwrap().is_empty());
    assert_eq!(overview["blocked"][0]["display_name"], "Ann");
    assert!(app.ok_as(&ann, "/api/friends/list", &[]).await["friends"]
        .as_array()
        .unwrap()
        .is_empty());

    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "bob"), ("page", "0")],
        )
        .await;
    assert!(names(&page).is_empty(), "Ann cannot find Bob");
    let page = app
        .ok_as(
            &bob,
            "/api/friends/search",
            &[("query", "ann"), ("page", "0")],
        )
        .await;
    assert!(names(&page).is_empty(), "nor Bob Ann");
    let (status, error) = app
        .refused_as(&ann, "/api/friends/request", &[("user_id", &bob_id)])
        .await;
    assert_eq!(status, 403);
    assert!(
        error.to_string().contains("cannot send a friend request"),
        "{error}"
    );

    app.ok_as(&bob, "/api/friends/unblock", &[("user_id", &ann_id)])
        .await;
    let page = app
        .ok_as(
            &ann,
            "/api/friends/search",
            &[("query", "bob"), ("page", "0")],
        )
        .await;
    assert_eq!(names(&page), ["Bob"]);
    // Unblocking does not make them friends again.
    assert!(app.ok_as(&bob, "/api/friends/list", &[]).await["friends"]
        .as_array()
        .unwrap()
        .is_empty());
    // Becoming friends again brings back the same conversation with its history.
    let first = app.befriend(&ann, &bob).await;
    assert_eq!(
        app.ok_as(&ann, "/api/messages/conversations", &[])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.ok_as(&ann, "/api/friends/list", &[]).await["friends"][0]["conversation_id"],
        first
    );
}

#[tokio::test]
async fn accepting_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    app.ok_as(
        &ann,
        "/api/friends/request",
        &[("user_id", &bob.id.to_string())],
    )
    .await;

    // Make creating the conversation fail inside the accept transaction.
    let pool = app.state.db.pool_for_tests();
    let (make, unmake): (&[&str], &str) = match app.state.db.engine() {
        Engine::Sqlite => (
            &[
                "CREATE TRIGGER fail_conversations BEFORE INSERT ON conversations \
               BEGIN SELECT RAISE(ABORT, 'test failure'); END",
            ],
            "DROP TRIGGER fail_conversations",
        ),
        Engine::Postgres => (
            &[
                "CREATE FUNCTION fail() RETURNS TRIGGER LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'test failure'; END $$",
                "CREATE TRIGGER fail_conversations BEFORE INSERT ON conversations \
                 FOR EACH ROW EXECUTE FUNCTION fail()",
            ],
            "DROP TRIGGER fail_conversations ON conversations",
        ),
    };
    for sql in make {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let (status, _) = app
        .refused_as(
            &bob,
            "/api/friends/answer",
            &[("user_id", &ann.id.to_string()), ("accept", "true")],
        )
        .await;
    assert_eq!(status, 503);
    // Nothing half-done: still a request, no friendship.
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert_eq!(overview["incoming"].as_array().unwrap().len(), 1);
    let friendships: i64 = sqlx::query_scalar("SELECT count(*) FROM friendships")
        .fetch_one(&app.state.db.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(friendships, 0);

    sqlx::query(unmake).execute(&pool).await.unwrap();
    // Two accepts at once: one wins, one finds nothing; one conversation.
    let answer = [
        ("user_id", ann.id.to_string()),
        ("accept", "true".to_string()),
    ];
    let answer: Vec<(&str, &str)> = answer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, b) = tokio::join!(
        app.call_as(&bob, "/api/friends/answer", &answer),
        app.call_as(&bob, "/api/friends/answer", &answer)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 404]);
    assert_eq!(
        app.ok_as(&ann, "/api/messages/conversations", &[])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn friend_changes_and_presence_reach_the_other_person_live() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let mut bob_tab = app.socket(&bob).await;

    app.ok_as(
        &ann,
        "/api/friends/request",
        &[("user_id", &bob.id.to_string())],
    )
    .await;
    assert_eq!(bob_tab.next().await, ServerMsg::FriendsChanged);
    app.ok_as(
        &bob,
        "/api/friends/answer",
        &[("user_id", &ann.id.to_string()), ("accept", "true")],
    )
    .await;
    assert_eq!(bob_tab.next().await, ServerMsg::FriendsChanged);

    // Ann comes online in two tabs: Bob hears it once; closing one tab keeps her online.
    let mut ann_tab = app.socket(&ann).await;
    let ann_tab2 = app.socket(&ann).await;
    let presence = bob_tab.next().await;
    assert_eq!(
        presence,
        ServerMsg::Presence {
            user_id: ann.id,
            online: true,
            last_seen: None
        }
    );
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert_eq!(overview["friends"][0]["online"], true);

    drop(ann_tab2);
    bob_tab.silent_for(Duration::from_millis(300)).await;
    ann_tab.ws.close(None).await.unwrap();
    match bob_tab.next().await {
        ServerMsg::Presence {
            user_id,
            online: false,
            last_seen: Some(at),
        } => {
            assert_eq!(user_id, ann.id);
            assert!(at.ends_with('Z'), "{at}");
        }
        other => panic!("expected Ann offline, got {other:?}"),
    }
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert_eq!(overview["friends"][0]["online"], false);
    assert!(overview["friends"][0]["last_seen"].is_string());
}

#[tokio::test]
async fn deleting_an_account_removes_its_friendships_and_conversations() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let conversation = app.befriend(&ann, &bob).await;
    let mut ann_tab = app.socket(&ann).await;
    ann_tab
        .send(&app::protocol::ClientMsg::Send {
            conversation_id: conversation,
            client_id: "x".into(),
            body: "soon gone".into(),
        })
        .await;
    ann_tab
        .next_where(|m| matches!(m, ServerMsg::Message { .. }).then_some(()))
        .await;
    let mut bob_tab = app.socket(&bob).await;

    app.ok_as(
        &ann,
        "/api/account/delete",
        &[("confirmation", crate::people::PASSWORD)],
    )
    .await;
    bob_tab
        .next_where(|m| (m == ServerMsg::FriendsChanged).then_some(()))
        .await;
    let overview = app.ok_as(&bob, "/api/friends/list", &[]).await;
    assert!(overview["friends"].as_array().unwrap().is_empty());
    assert!(app
        .ok_as(&bob, "/api/messages/conversations", &[])
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.state.db.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(messages, 0);
    let frame = ann_tab.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), app::protocol::close::SESSION_ENDED);
}
