//! Guests: made on first use, limited per address, identified only by their signed cookie,
//! allowed on the socket, and refused by everything that needs an account.

use std::time::Duration;

use app::{
    protocol::{ClientMsg, ErrorCode, ServerMsg},
    server::auth::GuestId,
};

use crate::{
    helpers::TestApp,
    people::{ring_and_answer, set_cookie, Person},
};

async fn start_guest(app: &TestApp, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/api/guest/start"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_guest_is_made_on_first_use_kept_after_and_opens_a_socket() {
    let app = TestApp::spawn().await;
    let response = start_guest(&app, None).await;
    assert_eq!(response.status(), 200);
    let header = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(header.starts_with("parlor_guest="), "{header}");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"));
    assert!(header.contains(&format!("Max-Age={}", 7 * 24 * 3600)));
    assert_eq!(response.text().await.unwrap(), r#""guest""#);
    let guest = set_cookie(&start_guest(&app, None).await, "parlor_guest").unwrap();

    // Coming back with the cookie: the same guest, no new cookie.
    let again = start_guest(&app, Some(&guest)).await;
    assert_eq!(again.status(), 200);
    assert!(set_cookie(&again, "parlor_guest").is_none());
    assert_eq!(again.text().await.unwrap(), r#""guest""#);

    // The socket knows a guest: no user id, nothing personal.
    let mut socket = app
        .try_socket(Some(&guest))
        .await
        .expect("a guest may connect");
    match socket.next().await {
        ServerMsg::Welcome { user_id, .. } => assert_eq!(user_id, None),
        other => panic!("expected a welcome, got {other:?}"),
    }
    socket.send(&ClientMsg::Ping).await;
    assert_eq!(socket.next().await, ServerMsg::Pong);
    // Without any cookie there is nobody to connect as.
    assert!(app.try_socket(None).await.is_err());
}

#[tokio::test]
async fn a_signed_in_user_is_never_a_guest() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let guest = app.guest().await;
    let response = app.call_as(&ann, "/api/guest/start", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(set_cookie(&response, "parlor_guest").is_none());
    assert_eq!(response.text().await.unwrap(), r#""member""#);
    // Both cookies at once: the session wins.
    let both = Person {
        cookie: format!("{}; {}", guest.cookie, ann.cookie),
        ..ann
    };
    app.socket(&both).await; // asserts the welcome names Ann
    assert_eq!(
        app.ok_as(&both, "/api/auth/session", &[]).await["user"]["id"],
        both.id
    );
}

#[tokio::test]
async fn new_guests_are_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.guests_per_ip = 3).await;
    let mut guests = Vec::new();
    for _ in 0..3 {
        guests.push(app.guest().await);
    }
    let refused = start_guest(&app, None).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(set_cookie(&refused, "parlor_guest").is_none());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body.to_string().contains("RateLimited"), "{body}");
    // Guests that exist go on.
    assert_eq!(
        start_guest(&app, Some(&guests[0].cookie)).await.status(),
        200
    );
    app.socket(&guests[2]).await;
}

#[tokio::test]
async fn a_tampered_expired_or_foreign_guest_cookie_is_simply_a_new_guest() {
    let app = TestApp::spawn().await;
    let guest = app.guest().await;
    let token = guest.cookie.trim_start_matches("parlor_guest=");
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered = format!("parlor_guest={}", parts.join("."));

    let expired = format!(
        "parlor_guest={}",
        app.state.auth.guests.issue_at(GuestId(7), 1_000_000)
    );
    let other_app = TestApp::spawn().await;
    let foreign = other_app.guest().await.cookie;

    for bad in [tampered, expired, foreign] {
        // Nobody: no socket, and the cookie is removed.
        assert!(app.try_socket(Some(&bad)).await.is_err(), "{bad}");
        let response = start_guest(&app, Some(&bad)).await;
        assert_eq!(response.status(), 200);
        let fresh = set_cookie(&response, "parlor_guest").expect("a new guest cookie");
        assert_ne!(fresh, bad);
        assert_ne!(fresh, guest.cookie);
        app.socket(&Person {
            id: 0,
            name: "Guest".into(),
            cookie: fresh,
        })
        .await;
    }
}

#[tokio::test]
async fn guests_are_refused_by_every_function_that_needs_an_account() {
    let app = TestApp::spawn().await;
    let guest = app.guest().await;
    // Functions anyone may call: reading the session, signing up or in (or out), the status
    // page, becoming a guest, and a code room's STUN/TURN servers (codes need no account).
    let public = [
        "/api/auth/session",
        "/api/auth/sign_up",
        "/api/auth/sign_in",
        "/api/auth/sign_out",
        "/api/status",
        "/api/guest/start",
        "/api/codes/ice",
        "/api/connectivity/ice",
    ];
    // Every argument any function takes, well-formed, so nothing fails before the check of
    // who is asking (unknown fields are ignored).
    let arguments = [
        ("query", "someone"),
        ("page", "0"),
        ("user_id", "1"),
        ("accept", "true"),
        ("id", "1"),
        ("conversation_id", "1"),
        ("display_name", "Guest"),
        ("current_password", "correct horse battery"),
        ("new_password", "another long password"),
        ("confirmation", "DELETE"),
        ("report_id", "1"),
        ("hours", "24"),
        ("all", "true"),
    ];
    let mut checked = Vec::new();
    for (path, _) in leptos::server_fn::axum::server_fn_paths() {
        if public.contains(&path) {
            continue;
        }
        let status = app.call_as(&guest, path, &arguments).await.status();
        assert_eq!(status, 401, "{path} as a guest");
        checked.push(path);
    }
    // The list really is the whole API.
    for expected in [
        "/api/moderation/reports",
        "/api/moderation/dismiss",
        "/api/moderation/ban",
        "/api/moderation/lift",
        "/api/moderation/log",
        "/api/friends/search",
        "/api/friends/request",
        "/api/friends/block",
        "/api/messages/conversations",
        "/api/messages/history",
        "/api/account/display_name",
        "/api/account/password",
        "/api/account/delete",
        "/api/auth/sign_out_everywhere",
    ] {
        assert!(checked.contains(&expected), "{expected} not in {checked:?}");
    }
    // A session read as a guest says nobody is signed in.
    assert_eq!(
        app.ok_as(&guest, "/api/auth/session", &[]).await["user"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn guests_on_the_socket_may_not_message_or_touch_friends_calls() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let guest = app.guest().await;
    let mut intruder = app.socket(&guest).await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;

    let account_only = [
        ClientMsg::Send {
            conversation_id: conversation,
            client_id: "g1".into(),
            body: "hello".into(),
        },
        ClientMsg::Typing {
            conversation_id: conversation,
        },
        ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: 1,
            read_up_to: 1,
        },
        ClientMsg::Resume { after: 0 },
        ClientMsg::CallStart {
            request_id: 1,
            to: ann.id,
            video: true,
        },
    ];
    for message in account_only {
        intruder.send(&message).await;
        assert_eq!(
            intruder.error_code().await,
            ErrorCode::SignInRequired,
            "{message:?}"
        );
    }

    // A friends call: the guest is no party to it.
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
    for message in [
        ClientMsg::CallAccept { call_id },
        ClientMsg::CallSignal {
            call_id,
            data: "x".into(),
        },
        ClientMsg::CallResume { call_id },
        ClientMsg::CallHangup { call_id },
    ] {
        intruder.send(&message).await;
        assert_eq!(
            intruder.error_code().await,
            ErrorCode::NotAllowed,
            "{message:?}"
        );
    }
    for tab in [&mut ann_tab, &mut bob_tab] {
        tab.none_for(Duration::from_millis(200), |m| {
            matches!(
                m,
                ServerMsg::CallEnded { .. }
                    | ServerMsg::CallSignal { .. }
                    | ServerMsg::Typing { .. }
            )
        })
        .await;
    }
    // Nothing was stored in the friends' conversation.
    let history = app.history(&ann, conversation).await;
    assert_eq!(history["messages"], serde_json::json!([]));
}
