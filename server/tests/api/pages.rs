use app::server::db::Engine;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_home_page_is_server_rendered_with_landmarks() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    for needle in [
        "<html lang=\"en\"",
        "Video chat you host yourself",
        "<nav aria-label=\"Main\"",
        "<main id=\"main\"",
        "<footer",
        "<title>Parlor</title>",
        "/pkg/parlor.js",
    ] {
        assert!(html.contains(needle), "missing {needle:?} in {html}");
    }
}

#[tokio::test]
async fn an_unknown_path_renders_the_not_found_page_with_status_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/no/such/page?x=<script>").await;
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(
        !html.contains("<script>\""),
        "query echoed unescaped: {html}"
    );
}

/// Calls the `get_status` server function the way the browser does.
async fn call_status(app: &TestApp) -> reqwest::Response {
    app.client
        .post(app.url("/api/status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_status_server_function_tells_the_public_health_and_nothing_else() {
    let app = TestApp::spawn().await;
    let response = call_status(&app).await;
    assert_eq!(response.status(), 200);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["status"], "ok");
    assert!(
        status["checked_at"].as_str().unwrap().ends_with('Z'),
        "{status}"
    );
    // No version, engine or schema: those would tell an attacker what to try.
    let keys: Vec<_> = status.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["checked_at", "status"], "{status}");
    let text = status.to_string();
    for secret in [
        env!("CARGO_PKG_VERSION"),
        "SQLite",
        "sqlite",
        "PostgreSQL",
        "postgres",
        "migration",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn the_database_lives_in_the_data_directory_across_restarts() {
    let app = TestApp::spawn().await;
    let before = app.state.db.status().await.unwrap();
    let app = app.restart().await;
    let after = app.state.db.status().await.unwrap();
    // Created once (millisecond resolution), migrated once.
    assert_eq!(before.created_at, after.created_at);
    assert_eq!(before.migrations, after.migrations);
    let first = match after.engine {
        Engine::Sqlite => "instance",
        Engine::Postgres => "schema",
    };
    assert_eq!(after.migrations[0].1, first);
}

#[tokio::test]
async fn the_status_page_renders_health_on_the_server_without_internals() {
    let app = TestApp::spawn().await;
    let html = app.get("/status").await.text().await.unwrap();
    assert!(html.contains("Server status"), "{html}");
    assert!(html.contains("All systems working"), "{html}");
    assert!(!html.contains("SQLite"), "{html}");
}

#[tokio::test]
async fn a_database_failure_shows_a_friendly_error_without_internals() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;

    let response = call_status(&app).await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("Unavailable"), "{body}");
    assert!(
        !body.to_lowercase().contains("pool"),
        "internals leaked: {body}"
    );

    let html = app.get("/status").await.text().await.unwrap();
    assert!(html.contains("Something went wrong"), "{html}");
    assert!(html.contains("temporarily unavailable"), "{html}");
    assert!(
        !html.to_lowercase().contains("pool"),
        "internals leaked: {html}"
    );
}

#[tokio::test]
async fn responses_carry_protective_headers() {
    let app = TestApp::spawn().await;
    for path in ["/", "/healthz", "/pkg/missing.js"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        let permissions = headers["permissions-policy"].to_str().unwrap();
        assert!(permissions.contains("camera=(self)") && permissions.contains("geolocation=()"));
        // Plain HTTP: no HSTS.
        assert!(!headers.contains_key("strict-transport-security"), "{path}");
    }
}

#[tokio::test]
async fn personal_responses_are_never_cached_and_https_sites_send_hsts() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    // A page seen signed in, and a server function's answer.
    for path in ["/", "/friends"] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", &ann.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let response = app.call_as(&ann, "/api/friends/list", &[]).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    // The public home page without any cookie may be cached.
    assert!(!app.get("/").await.headers().contains_key("cache-control"));

    let https = TestApp::spawn_with(|c| c.public_url = "https://parlor.example.com".into()).await;
    let response = https.get("/healthz").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy_with_a_fresh_nonce() {
    let app = TestApp::spawn().await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = app.get("/").await;
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let html = response.text().await.unwrap();
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("'wasm-unsafe-eval'") && policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("object-src 'none'") && policy.contains("connect-src 'self'"));
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce in the policy")
            .to_string();
        // Every inline script of the page carries it.
        let scripts = html.matches("<script").count();
        assert!(scripts > 0);
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{html}"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a new nonce for every response");
}
