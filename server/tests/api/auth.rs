//! Accounts and sessions over HTTP, as browsers and attackers would use them.

use serde_json::Value;

use crate::helpers::TestApp;

const PASSWORD: &str = "correct horse battery";

fn ok(response: &reqwest::Response) -> bool {
    response.status().is_success() || response.status().is_redirection()
}

async fn error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn sign_up_signs_in_and_the_session_names_the_user() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert_eq!(app.me(&browser).await, Value::Null);

    let response = app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await;
    assert!(ok(&response), "{}", response.status());
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("parlor_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let me = app.me(&browser).await;
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["display_name"], "Ann");
    assert_eq!(me["has_password"], true);
    // No secret ever crosses the wire.
    let text = me.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("hash") && !text.contains("token"),
        "{text}"
    );

    // The server renders the signed-in state into the page itself.
    let html = app.page(&browser, "/").await;
    assert!(html.contains("signed-in-name"), "{html}");
}

#[tokio::test]
async fn sign_up_rejects_bad_input_field_by_field() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let long = "x".repeat(10_000);
    for (email, name, password, fields) in [
        ("", "", "", vec!["email", "display_name", "password"]),
        ("not-an-email", "Ann", PASSWORD, vec!["email"]),
        ("ann@example.com", "   ", PASSWORD, vec!["display_name"]),
        ("ann@example.com", "Ann", "short", vec!["password"]),
        (
            long.as_str(),
            long.as_str(),
            long.as_str(),
            vec!["email", "display_name", "password"],
        ),
        ("x'); DROP TABLE users;--", "Ann", PASSWORD, vec!["email"]),
    ] {
        let (status, body) = error(app.sign_up(&browser, email, name, password).await).await;
        assert_eq!(status, 422, "{body}");
        let got: Vec<&str> = body["Invalid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    // Nothing was created, nobody is signed in.
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn unicode_and_sql_looking_names_are_kept_as_typed() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let name = "Zoë 🌈 <b>'; DROP TABLE users;--";
    assert!(ok(&app
        .sign_up(&browser, "zoë@exämple.de", name, "pässwörd✓✓")
        .await));
    let me = app.me(&browser).await;
    assert_eq!(me["display_name"], name);
    assert_eq!(me["email"], "zoë@exämple.de");
    // Shown as text, never as markup.
    let html = app.page(&browser, "/profile").await;
    assert!(!html.contains("<b>'"), "{html}");
}

#[tokio::test]
async fn an_email_is_taken_whatever_its_case() {
    let app = TestApp::spawn().await;
    assert!(ok(&app
        .sign_up(&app.browser(), "Ann@Example.com", "Ann", PASSWORD)
        .await));
    let (status, body) = error(
        app.sign_up(&app.browser(), "ann@EXAMPLE.com", "Other", PASSWORD)
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["Invalid"][0]["field"], "email");
    assert!(body["Invalid"][0]["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));
}

#[tokio::test]
async fn sign_in_gives_the_same_answer_for_unknown_email_and_wrong_password() {
    let app = TestApp::spawn().await;
    assert!(ok(&app
        .sign_up(&app.browser(), "ann@example.com", "Ann", PASSWORD)
        .await));

    let browser = app.browser();
    let wrong = error(
        app.sign_in(&browser, "ann@example.com", "wrong password")
            .await,
    )
    .await;
    let unknown = error(
        app.sign_in(&browser, "nobody@example.com", "wrong password")
            .await,
    )
    .await;
    assert_eq!(wrong, (401, Value::String("WrongCredentials".into())));
    assert_eq!(wrong, unknown);
    assert_eq!(app.me(&browser).await, Value::Null);

    // Any case of the email works with the right password.
    let response = app.sign_in(&browser, " ANN@example.com ", PASSWORD).await;
    assert!(ok(&response), "{}", response.status());
    assert_eq!(app.me(&browser).await["display_name"], "Ann");
}

#[tokio::test]
async fn sign_in_rejects_empty_and_oversized_input_without_hashing_it() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let (status, body) = error(app.sign_in(&browser, "", "").await).await;
    assert_eq!(status, 422, "{body}");
    let long = "x".repeat(10_000);
    let (status, _) = error(app.sign_in(&browser, "a@example.com", &long).await).await;
    assert_eq!(status, 401);
    // A missing argument is a clear error, not a crash.
    let (status, body) = error(
        app.call(&browser, "/api/auth/sign_in", &[("email", "a@example.com")])
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let response = app.call(&browser, "/api/auth/sign_out", &[]).await;
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while_with_a_clear_wait() {
    let app = TestApp::spawn().await;
    assert!(ok(&app
        .sign_up(&app.browser(), "ann@example.com", "Ann", PASSWORD)
        .await));
    let browser = app.browser();
    // The default allows 5 failures per account in 15 minutes.
    for _ in 0..5 {
        let r = app.sign_in(&browser, "ann@example.com", "nope nope").await;
        assert_eq!(r.status(), 401);
    }
    let response = app.sign_in(&browser, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["RateLimited"], retry);
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn a_client_address_is_limited_across_accounts() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    // The default allows 30 attempts per address in 10 minutes.
    for i in 0..30 {
        let email = format!("user{i}@example.com");
        let r = app.sign_in(&browser, &email, "nope nope").await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let response = app
        .sign_up(&browser, "new@example.com", "New", PASSWORD)
        .await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn tampered_expired_and_foreign_tokens_are_ignored_and_removed() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let user_id = app.me(&browser).await["id"].as_i64().unwrap();
    let sessions = &app.state.auth.sessions;

    let valid = sessions.issue(user_id, 0);
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(String::from).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    let expired = sessions.issue_at(
        user_id,
        0,
        app::server::auth::session::now_secs() - 30 * 24 * 3600,
    );
    let foreign = app::server::auth::session::Sessions::new(
        &[1u8; 32],
        std::time::Duration::from_secs(3600),
        false,
    )
    .issue(user_id, 0);
    for token in [tampered, expired, foreign, "garbage".to_string()] {
        let response = app
            .client
            .post(app.url("/api/auth/session"))
            .header("cookie", format!("parlor_session={token}"))
            .send()
            .await
            .unwrap();
        let removal = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(removal.contains("Max-Age=0"), "{removal}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"], Value::Null, "{token}");
    }
}

#[tokio::test]
async fn an_old_token_is_renewed_on_use() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let user_id = app.me(&browser).await["id"].as_i64().unwrap();
    let sessions = &app.state.auth.sessions;
    let old = sessions.issue_at(
        user_id,
        0,
        app::server::auth::session::now_secs() - 8 * 24 * 3600,
    );
    let response = app
        .client
        .get(app.url("/"))
        .header("cookie", format!("parlor_session={old}"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let renewed = cookie
        .strip_prefix("parlor_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert_ne!(renewed, old);
    assert!(sessions.verify(renewed).unwrap().iat > sessions.verify(&old).unwrap().iat);
    // A fresh token is not renewed.
    let fresh = sessions.issue(user_id, 0);
    let response = app
        .client
        .get(app.url("/"))
        .header("cookie", format!("parlor_session={fresh}"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_old_tokens_stay_dead() {
    let app = TestApp::spawn().await;
    let laptop = app.browser();
    let phone = app.browser();
    assert!(ok(&app
        .sign_up(&laptop, "ann@example.com", "Ann", PASSWORD)
        .await));
    assert!(ok(&app.sign_in(&phone, "ann@example.com", PASSWORD).await));
    assert_eq!(app.me(&phone).await["display_name"], "Ann");

    assert!(ok(&app
        .call(&laptop, "/api/auth/sign_out_everywhere", &[])
        .await));
    assert_eq!(app.me(&laptop).await, Value::Null);
    assert_eq!(app.me(&phone).await, Value::Null);

    // Signing in again works, with a new token version.
    assert!(ok(&app.sign_in(&phone, "ann@example.com", PASSWORD).await));
    assert_eq!(app.me(&phone).await["display_name"], "Ann");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let laptop = app.browser();
    let phone = app.browser();
    assert!(ok(&app
        .sign_up(&laptop, "ann@example.com", "Ann", PASSWORD)
        .await));
    assert!(ok(&app.sign_in(&phone, "ann@example.com", PASSWORD).await));

    let (status, body) = error(
        app.call(
            &laptop,
            "/api/account/password",
            &[
                ("current_password", "wrong one"),
                ("new_password", "new password!"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["Invalid"][0]["field"], "current_password");

    let response = app
        .call(
            &laptop,
            "/api/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "new password!"),
            ],
        )
        .await;
    assert!(ok(&response), "{}", response.status());
    // This session continues; the other one ended.
    assert_eq!(app.me(&laptop).await["display_name"], "Ann");
    assert_eq!(app.me(&phone).await, Value::Null);
    // Only the new password works now.
    let fresh = app.browser();
    let old = app.sign_in(&fresh, "ann@example.com", PASSWORD).await;
    assert_eq!(old.status(), 401);
    let new = app
        .sign_in(&fresh, "ann@example.com", "new password!")
        .await;
    assert!(ok(&new));
}

#[tokio::test]
async fn the_display_name_changes_and_bad_names_are_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    assert!(ok(&app
        .call(
            &browser,
            "/api/account/display_name",
            &[("display_name", "Annie")]
        )
        .await));
    assert_eq!(app.me(&browser).await["display_name"], "Annie");
    let (status, _) = error(
        app.call(
            &browser,
            "/api/account/display_name",
            &[("display_name", &"x".repeat(10_000))],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(app.me(&browser).await["display_name"], "Annie");
}

#[tokio::test]
async fn account_changes_need_a_session() {
    let app = TestApp::spawn().await;
    let stranger = app.browser();
    for (path, form) in [
        (
            "/api/account/display_name",
            vec![("display_name", "Mallory")],
        ),
        (
            "/api/account/password",
            vec![("current_password", ""), ("new_password", "whatever123")],
        ),
        ("/api/account/delete", vec![("confirmation", "")]),
        ("/api/auth/sign_out_everywhere", vec![]),
    ] {
        let (status, body) = error(app.call(&stranger, path, &form).await).await;
        assert_eq!(
            (status, body),
            (401, Value::String("Unauthorized".into())),
            "{path}"
        );
    }
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_then_removes_it() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let (status, _) = error(
        app.call(
            &browser,
            "/api/account/delete",
            &[("confirmation", "wrong")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(app.me(&browser).await["display_name"], "Ann");

    assert!(ok(&app
        .call(
            &browser,
            "/api/account/delete",
            &[("confirmation", PASSWORD)]
        )
        .await));
    assert_eq!(app.me(&browser).await, Value::Null);
    assert!(app
        .state
        .db
        .user_by_email("ann@example.com")
        .await
        .unwrap()
        .is_none());
    // The email is free again.
    assert!(ok(&app
        .sign_up(&app.browser(), "ann@example.com", "Ann 2", PASSWORD)
        .await));
}

#[tokio::test]
async fn cross_origin_server_function_calls_are_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let response = browser
        .post(app.url("/api/account/display_name"))
        .header("origin", "http://evil.example")
        .form(&[("display_name", "pwned")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        Value::String("ForeignOrigin".into())
    );
    assert_eq!(app.me(&browser).await["display_name"], "Ann");

    // The site's own origin is fine.
    let response = browser
        .post(app.url("/api/account/display_name"))
        .header("origin", format!("http://{}", app.addr))
        .form(&[("display_name", "Annie")])
        .send()
        .await
        .unwrap();
    assert!(ok(&response), "{}", response.status());
}

#[tokio::test]
async fn a_socket_upgrade_from_another_site_is_refused_before_routing() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/ws"))
        .header("origin", "http://evil.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_plain_form_post_without_javascript_redirects_back_with_the_error() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let signin = app.url("/signin");
    let response = browser
        .post(app.url("/api/auth/sign_in"))
        .header("accept", "text/html")
        .header("referer", &signin)
        .form(&[("email", "nobody@example.com"), ("password", "whatever1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&signin), "{location}");
    // The sign-in page rendered at that address shows the error.
    let html = browser
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Email or password is incorrect."), "{html}");
}

#[tokio::test]
async fn the_session_secret_persists_in_the_data_directory_across_restarts() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(ok(&app
        .sign_up(&browser, "ann@example.com", "Ann", PASSWORD)
        .await));
    let key = std::fs::read_to_string(app.data_path().join("session.key")).unwrap();
    assert!(key.len() >= 64);
    let app = app.restart().await;
    assert_eq!(
        std::fs::read_to_string(app.data_path().join("session.key")).unwrap(),
        key
    );
    // Cookies are per host, not per port: the browser presents its session to the restarted
    // server, which still accepts it.
    assert_eq!(app.me(&browser).await["display_name"], "Ann");
}

/// `who`'s cookie is no session: not on a page's session check, a socket or a server function.
async fn works_nowhere(app: &TestApp, who: &crate::people::Person) {
    assert_eq!(
        app.ok_as(who, "/api/auth/session", &[]).await["user"],
        Value::Null
    );
    assert!(app.try_socket(Some(&who.cookie)).await.is_err());
    assert_eq!(
        app.call_as(who, "/api/friends/list", &[]).await.status(),
        401
    );
}

/// A second session of Ann's (signed in with her password), as on another device.
async fn second_session(app: &TestApp, ann: &crate::people::Person) -> crate::people::Person {
    let response = app
        .client
        .post(app.url("/api/auth/sign_in"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    crate::people::Person {
        cookie: crate::people::set_cookie(&response, "parlor_session").unwrap(),
        id: ann.id,
        name: ann.name.clone(),
    }
}

#[tokio::test]
async fn signing_out_ends_that_session_on_the_server_and_closes_its_sockets_only() {
    use app::protocol::{close, ClientMsg, ServerMsg};
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let laptop = second_session(&app, &ann).await;
    let mut phone_tab = app.socket(&ann).await;
    let mut laptop_tab = app.socket(&laptop).await;

    let response = app.call_as(&ann, "/api/auth/sign_out", &[]).await;
    assert!(ok(&response), "{}", response.status());
    // That session's socket closes; the other session's stays.
    assert_eq!(
        phone_tab.closed().await.map(|f| u16::from(f.code)),
        Some(close::SESSION_ENDED)
    );
    laptop_tab.send(&ClientMsg::Ping).await;
    assert_eq!(laptop_tab.next().await, ServerMsg::Pong);
    // A copy of the signed-out cookie works nowhere.
    works_nowhere(&app, &ann).await;
    // The other session goes on.
    assert_eq!(
        app.ok_as(&laptop, "/api/auth/session", &[]).await["user"]["id"],
        ann.id
    );
}

/// After a restart nothing is cached: the first check of each session reads the user and
/// whether that session was ended in one query. An ended session stays ended, a live one
/// works (on pages, server functions and sockets), and so do each person's own sessions only.
#[tokio::test]
async fn after_a_restart_ended_sessions_stay_ended_and_live_ones_work() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let laptop = second_session(&app, &ann).await;
    assert!(ok(&app.call_as(&ann, "/api/auth/sign_out", &[]).await));

    let app = app.restart().await;
    // The ended session first: its user is not cached either.
    works_nowhere(&app, &ann).await;
    // Ann's other session, and Bob's, work.
    assert_eq!(
        app.ok_as(&laptop, "/api/auth/session", &[]).await["user"]["id"],
        ann.id
    );
    assert!(app.try_socket(Some(&laptop.cookie)).await.is_ok());
    assert_eq!(
        app.ok_as(&bob, "/api/auth/session", &[]).await["user"]["id"],
        bob.id
    );
    // And the ended one still does not, now that Ann is cached.
    assert_eq!(
        app.ok_as(&ann, "/api/auth/session", &[]).await["user"],
        Value::Null
    );
}

#[tokio::test]
async fn a_socket_closes_when_its_session_expires() {
    use app::{protocol::close, server::auth::session::now_secs};
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let ttl = app.state.auth.sessions.ttl().as_secs();
    // A session with two seconds left.
    let token = app
        .state
        .auth
        .sessions
        .issue_at(ann.id, 0, now_secs() + 2 - ttl);
    let mut tab = app
        .try_socket(Some(&format!("parlor_session={token}")))
        .await
        .unwrap();
    tab.next().await; // the welcome
    let started = std::time::Instant::now();
    assert_eq!(
        tab.closed().await.map(|f| u16::from(f.code)),
        Some(close::SESSION_ENDED)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn parallel_wrong_passwords_get_only_the_allowed_number_of_tries() {
    let app = TestApp::spawn().await;
    app.person("Ann").await;
    let statuses = wrong_passwords(&[&app], "ann@example.com", 25).await;
    let tried = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((tried, limited), (5, 20), "{statuses:?}");
}

/// `attempts` sign-ins with wrong passwords for `email` at once, spread over `apps` in
/// turn: their statuses.
pub(crate) async fn wrong_passwords(apps: &[&TestApp], email: &str, attempts: usize) -> Vec<u16> {
    let attempts: Vec<_> = (0..attempts)
        .map(|i| {
            let app = apps[i % apps.len()];
            let (client, url) = (app.client.clone(), app.url("/api/auth/sign_in"));
            let email = email.to_string();
            tokio::spawn(async move {
                client
                    .post(url)
                    .form(&[
                        ("email", email.as_str()),
                        ("password", &format!("wrong {i}")),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn every_password_check_is_limited_per_account() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    for _ in 0..5 {
        let response = app
            .call_as(&ann, "/api/account/delete", &[("confirmation", "not it")])
            .await;
        assert_eq!(response.status(), 422);
    }
    // Even the right password waits now: guessing is over for a while.
    let response = app
        .call_as(&ann, "/api/account/delete", &[("confirmation", PASSWORD)])
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let response = app
        .call_as(
            &ann,
            "/api/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(response.status(), 429);
    // The account is still there.
    assert_eq!(
        app.ok_as(&ann, "/api/auth/session", &[]).await["user"]["id"],
        ann.id
    );
}

/// A sign-in attempt (for a new unknown email each time, so only the address limit counts).
async fn sign_in_from(app: &TestApp, forwarded_for: &str) -> u16 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    app.client
        .post(app.url("/api/auth/sign_in"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("email", format!("nobody{n}@example.com").as_str()),
            ("password", "whatever it is"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies_and_ipv6_by_64() {
    let behind_proxy = TestApp::spawn_with(|c| {
        c.auth_attempts_per_ip = 2;
        c.trusted_proxies =
            app::server::auth::proxy::TrustedProxies::parse("127.0.0.1, ::1").unwrap();
    })
    .await;
    for _ in 0..2 {
        assert_eq!(sign_in_from(&behind_proxy, "198.51.100.1").await, 401);
    }
    assert_eq!(sign_in_from(&behind_proxy, "198.51.100.1").await, 429);
    // Another client behind the same proxy has its own count.
    assert_eq!(sign_in_from(&behind_proxy, "198.51.100.2").await, 401);
    // IPv6 clients count per /64.
    for _ in 0..2 {
        assert_eq!(sign_in_from(&behind_proxy, "2001:db8:0:1::1").await, 401);
    }
    assert_eq!(
        sign_in_from(&behind_proxy, "2001:db8:0:1:ffff::9").await,
        429
    );
    assert_eq!(sign_in_from(&behind_proxy, "2001:db8:0:2::1").await, 401);

    // Without trusted proxies the header is anyone's to write, and ignored.
    let direct = TestApp::spawn_with(|c| c.auth_attempts_per_ip = 2).await;
    assert_eq!(sign_in_from(&direct, "198.51.100.1").await, 401);
    assert_eq!(sign_in_from(&direct, "198.51.100.2").await, 401);
    assert_eq!(sign_in_from(&direct, "198.51.100.3").await, 429);
}
