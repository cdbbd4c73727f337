//! `GET /metrics`: only for the token's holder, and every number true (sockets, frames,
//! messages, calls, limits, HTTP routes, the database pool).

use std::time::Duration;

use app::protocol::ClientMsg;
use server::config::Secret;

use crate::{helpers::TestApp, people::ring_and_answer};

const TOKEN: &str = "metrics-token-for-tests-0123";

async fn with_metrics() -> TestApp {
    TestApp::spawn_with(|c| c.metrics_token = Some(Secret::new(TOKEN))).await
}

impl TestApp {
    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        response.text().await.unwrap()
    }

    /// Scrapes until `series` reads `want` (sockets close in the background); its last value.
    async fn metric_becomes(&self, series: &str, want: f64) -> Option<f64> {
        let mut last = None;
        for _ in 0..100 {
            last = value(&self.metrics().await, series);
            if last == Some(want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }
}

/// The value of one series (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_are_served_only_with_the_token() {
    let app = with_metrics().await;
    let get = |auth: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    for auth in [
        None,
        Some("Bearer wrong-token-of-some-length"),
        Some("Bearer metrics-token-for-tests-012"),
        Some("metrics-token-for-tests-0123"),
        Some("Basic bWV0cmljczp4"),
    ] {
        let response = get(auth).await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"metrics\""
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains("parlor_"), "{body}");
    }
    let text = app.metrics().await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        value(&text, r#"parlor_refused_total{reason="metrics_token"}"#),
        Some(5.0)
    );

    // Without a token configured there is no such route.
    let plain = TestApp::spawn().await;
    let response = plain
        .client
        .get(plain.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_socket_gauges_are_true() {
    let app = with_metrics().await;
    let ann = app.person("Ann").await;
    let guest = app.guest().await;
    let open = r#"parlor_sockets_open{kind="member"}"#;
    assert_eq!(value(&app.metrics().await, open), None, "no socket yet");

    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(app.socket(&ann).await);
    }
    let guest_tab = app.socket(&guest).await;
    // Counted once the writer has written the welcome each client has read.
    let welcomes = r#"parlor_frames_out_total{type="welcome"}"#;
    assert_eq!(app.metric_becomes(welcomes, 4.0).await, Some(4.0));
    let text = app.metrics().await;
    assert_eq!(value(&text, open), Some(3.0));
    assert_eq!(
        value(&text, r#"parlor_sockets_open{kind="guest"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"parlor_socket_connects_total{kind="member"}"#),
        Some(3.0)
    );

    // Closed by the client, or dropped without a word: the gauge comes back to 0 either way.
    for mut tab in tabs.drain(..2) {
        tab.ws.close(None).await.unwrap();
    }
    drop(tabs);
    drop(guest_tab);
    assert_eq!(app.metric_becomes(open, 0.0).await, Some(0.0));
    let guests = r#"parlor_sockets_open{kind="guest"}"#;
    assert_eq!(app.metric_becomes(guests, 0.0).await, Some(0.0));
    let text = app.metrics().await;
    let closes: f64 = ["client_closed", "client_gone", "read_failed"]
        .iter()
        .filter_map(|r| {
            value(
                &text,
                &format!(r#"parlor_socket_closes_total{{reason="{r}"}}"#),
            )
        })
        .sum();
    assert_eq!(closes, 4.0, "{text}");
    assert_eq!(
        value(
            &text,
            r#"parlor_socket_closes_total{reason="client_closed"}"#
        ),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn frames_messages_and_calls_are_counted() {
    let app = with_metrics().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut a = app.socket(&ann).await;
    let mut b = app.socket(&bob).await;
    for n in 0..2 {
        a.send(&ClientMsg::Send {
            conversation_id: conversation,
            client_id: format!("m{n}"),
            body: "hello".into(),
        })
        .await;
        a.message().await;
        b.message().await;
    }
    // A resend of a stored message is not stored twice.
    a.send(&ClientMsg::Send {
        conversation_id: conversation,
        client_id: "m0".into(),
        body: "hello".into(),
    })
    .await;
    a.message().await;
    a.send_text("{not json").await;
    a.error().await;

    let call_id = ring_and_answer(&mut a, &mut b, bob.id).await;
    a.send(&ClientMsg::CallHangup { call_id }).await;
    for side in [&mut a, &mut b] {
        side.call_ended().await;
        side.call_record().await;
    }
    b.start_call(ann.id, false).await;
    let declined = b.ringing().await;
    a.incoming().await;
    a.send(&ClientMsg::CallReject { call_id: declined }).await;
    b.call_ended().await;
    for side in [&mut a, &mut b] {
        side.call_record().await;
    }

    for (series, want) in [
        ("parlor_messages_stored_total", 2.0),
        (r#"parlor_frames_in_total{type="send"}"#, 3.0),
        (r#"parlor_frames_in_total{type="malformed"}"#, 1.0),
        (r#"parlor_frames_in_total{type="call_start"}"#, 2.0),
        (r#"parlor_frames_in_total{type="call_reject"}"#, 1.0),
        // Each stored message and call record went to both sides; the resend only back to
        // its sender.
        (
            r#"parlor_frames_out_total{type="message"}"#,
            4.0 + 1.0 + 4.0,
        ),
        (r#"parlor_frames_out_total{type="error"}"#, 1.0),
        (
            r#"parlor_calls_total{context="friends",outcome="completed"}"#,
            1.0,
        ),
        (
            r#"parlor_calls_total{context="friends",outcome="rejected"}"#,
            1.0,
        ),
    ] {
        // Frames count once written: the client may read one a moment before.
        assert_eq!(
            app.metric_becomes(series, want).await,
            Some(want),
            "{series}"
        );
    }
}

#[tokio::test]
async fn refusals_by_limits_are_counted_by_limit() {
    let app = TestApp::spawn_with(|c| {
        c.metrics_token = Some(Secret::new(TOKEN));
        c.guests_per_ip = 1;
    })
    .await;
    app.guest().await;
    for _ in 0..3 {
        let refused = app
            .client
            .post(app.url("/api/guest/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 429);
    }
    let text = app.metrics().await;
    assert_eq!(
        value(
            &text,
            r#"parlor_rate_limited_total{limit="guests_per_address"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

#[tokio::test]
async fn http_requests_are_counted_by_route_never_by_raw_path() {
    let app = with_metrics().await;
    for _ in 0..2 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    assert_eq!(app.get("/no/such/attacker-chosen-path").await.status(), 404);
    assert_eq!(app.get("/pkg/attacker-chosen-asset.js").await.status(), 404);
    let text = app.metrics().await;
    assert_eq!(
        value(
            &text,
            r#"parlor_http_request_duration_seconds_count{route="/healthz",method="GET",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        text.contains(r#"route="other",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/pkg",method="GET",status="404""#),
        "{text}"
    );
    assert!(!text.contains("attacker-chosen"), "{text}");
    // The pool is read when scraped: this scrape's own queries have returned.
    assert!(
        value(&text, r#"parlor_db_pool_connections{state="idle"}"#).is_some_and(|n| n >= 1.0),
        "{text}"
    );
}

#[tokio::test]
async fn strangers_waiting_matches_and_reports_are_counted() {
    use crate::strangers::{guest, looking, matched, start, stranger_news};
    let app = with_metrics().await;
    let text = app.metrics().await;
    assert_eq!(value(&text, "parlor_strangers_waiting"), Some(0.0));
    assert_eq!(value(&text, "parlor_stranger_matches_total"), Some(0.0));
    let (_, mut a) = guest(&app).await;
    let (_, mut b) = guest(&app).await;
    a.send(&start(&[])).await;
    looking(&mut a).await;
    let text = app.metrics().await;
    assert_eq!(value(&text, "parlor_strangers_waiting"), Some(1.0));
    assert_eq!(value(&text, "parlor_stranger_matches_open"), Some(0.0));
    b.send(&start(&[])).await;
    matched(&mut a).await;
    matched(&mut b).await;
    let text = app.metrics().await;
    assert_eq!(value(&text, "parlor_strangers_waiting"), Some(0.0));
    assert_eq!(value(&text, "parlor_stranger_matches_open"), Some(1.0));
    assert_eq!(value(&text, "parlor_stranger_matches_total"), Some(1.0));
    assert_eq!(
        value(&text, "parlor_stranger_time_to_match_seconds_count"),
        Some(2.0),
        "one wait per person"
    );
    b.send(&ClientMsg::StrangerReport {
        reason: app::strangers::ReportReason::Spam,
        note: String::new(),
        include_chat: false,
    })
    .await;
    assert_eq!(
        stranger_news(&mut b).await,
        app::protocol::ServerMsg::StrangerReported
    );
    assert_eq!(
        app.metric_becomes("parlor_stranger_reports_total", 1.0)
            .await,
        Some(1.0)
    );
    a.send(&ClientMsg::StrangerStop).await;
    assert_eq!(
        app.metric_becomes("parlor_stranger_matches_open", 0.0)
            .await,
        Some(0.0)
    );
}
