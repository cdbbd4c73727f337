//! Moderation of strangers: only the accounts in `PARLOR_ADMIN_EMAILS` see reports and decide;
//! a ban ends the banned person's match at once, tells them until when, refuses their next
//! start and covers their address; reports from three addresses within the hour restrict
//! someone (they look but are never matched) until a moderator dismisses the reports. The
//! clients come from different addresses through a proxy the server trusts (loopback).

use std::time::Duration;

use app::{
    protocol::{ClientMsg, ServerMsg},
    strangers::{MatchEnd, ReportReason},
};
use serde_json::Value;

use crate::{
    helpers::TestApp,
    people::{Person, Socket},
    strangers::{ended, looking, matched, start, stranger_news},
};

const MODERATOR_EMAIL: &str = "mod@example.com";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.admin_emails = vec![MODERATOR_EMAIL.into()];
        c.trusted_proxies =
            app::server::auth::proxy::TrustedProxies::parse("127.0.0.1, ::1").unwrap();
    })
    .await
}

/// A guest with a socket from `client`.
async fn guest_from(app: &TestApp, client: &str) -> (Person, Socket) {
    let person = app.guest().await;
    let socket = app.socket_from(&person, client).await;
    (person, socket)
}

/// Matches `a` (already looking, or starting first) with `b`.
async fn meet(a: &mut Socket, b: &mut Socket) {
    a.send(&start(&[])).await;
    assert!(looking(a).await);
    b.send(&start(&[])).await;
    matched(a).await;
    matched(b).await;
}

async fn report(socket: &mut Socket, note: &str) {
    socket
        .send(&ClientMsg::StrangerReport {
            reason: ReportReason::Harassment,
            note: note.into(),
            include_chat: true,
        })
        .await;
    assert_eq!(stranger_news(socket).await, ServerMsg::StrangerReported);
}

async fn banned(socket: &mut Socket) -> String {
    match stranger_news(socket).await {
        ServerMsg::StrangerBanned { until } => until,
        other => panic!("expected a ban, got {other:?}"),
    }
}

async fn open_reports(app: &TestApp, moderator: &Person) -> Vec<Value> {
    let page = app
        .ok_as(moderator, "/api/moderation/reports", &[("all", "false")])
        .await;
    page["reports"].as_array().unwrap().clone()
}

#[tokio::test]
async fn only_moderators_see_reports_and_decide() {
    let app = app().await;
    let moderator = app.person("Mod").await;
    let ann = app.person("Ann").await;
    assert_eq!(app.me(&app.browser()).await["user"], Value::Null);
    let session = app.ok_as(&moderator, "/api/auth/session", &[]).await;
    assert_eq!(session["user"]["moderator"], true);
    assert_eq!(
        app.ok_as(&ann, "/api/auth/session", &[]).await["user"]["moderator"],
        false
    );

    // A report to act on.
    let (_, mut eve) = guest_from(&app, "198.51.100.1").await;
    let (reporter, mut rep) = guest_from(&app, "198.51.100.2").await;
    meet(&mut eve, &mut rep).await;
    report(&mut rep, "").await;
    let id = open_reports(&app, &moderator).await[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();

    let anonymous = Person {
        id: 0,
        name: "Nobody".into(),
        cookie: String::new(),
    };
    for (who, status) in [(&ann, 403), (&reporter, 401), (&anonymous, 401)] {
        for (path, form) in [
            ("/api/moderation/reports", vec![("all", "true")]),
            ("/api/moderation/log", vec![]),
            ("/api/moderation/dismiss", vec![("report_id", id.as_str())]),
            (
                "/api/moderation/ban",
                vec![("report_id", id.as_str()), ("hours", "24")],
            ),
            ("/api/moderation/lift", vec![("report_id", id.as_str())]),
        ] {
            let (got, _) = app.refused_as(who, path, &form).await;
            assert_eq!(got, status, "{path} as {}", who.name);
        }
    }
    // Nothing was decided: the report is open, the reported one still talking.
    assert_eq!(open_reports(&app, &moderator).await.len(), 1);
    eve.none_for(Duration::from_millis(300), |m| {
        matches!(
            m,
            ServerMsg::StrangerBanned { .. } | ServerMsg::StrangerEnded { .. }
        )
    })
    .await;
    assert!(app
        .ok_as(&moderator, "/api/moderation/log", &[])
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // Bad input gets a clear error and changes nothing.
    let (status, body) = app
        .refused_as(
            &moderator,
            "/api/moderation/ban",
            &[("report_id", &id), ("hours", "5")],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    for path in ["/api/moderation/dismiss", "/api/moderation/ban"] {
        let (status, body) = app
            .refused_as(
                &moderator,
                path,
                &[("report_id", "987654"), ("hours", "24")],
            )
            .await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["NotFound"], "There is no such report.", "{body}");
    }
    assert_eq!(open_reports(&app, &moderator).await.len(), 1);
}

#[tokio::test]
async fn a_ban_ends_the_match_tells_until_when_and_covers_the_address() {
    let app = app().await;
    let moderator = app.person("Mod").await;
    let (_, mut eve) = guest_from(&app, "198.51.100.1").await;
    let (_, mut ann) = guest_from(&app, "198.51.100.2").await;
    meet(&mut eve, &mut ann).await;
    eve.send(&ClientMsg::StrangerChat {
        text: "<i>buy</i> my stuff".into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut ann).await,
        ServerMsg::StrangerChat {
            text: "<i>buy</i> my stuff".into()
        }
    );
    report(&mut ann, "spam <b>again</b>").await;

    // The moderator reads it: reason, note, lines, who and how many reported them.
    let reports = open_reports(&app, &moderator).await;
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["reason"], "Harassment or bullying");
    assert_eq!(r["note"], "spam <b>again</b>");
    assert_eq!(
        r["lines"][0],
        serde_json::json!([false, "<i>buy</i> my stuff"])
    );
    assert_eq!(r["reporters"], 1);
    assert!(r["reported"].as_str().unwrap().starts_with("Guest "), "{r}");
    let id = r["id"].as_i64().unwrap().to_string();

    // Someone else on Eve's address, in a match of their own.
    let (_, mut eve2) = guest_from(&app, "198.51.100.1").await;
    let (_, mut bob) = guest_from(&app, "198.51.100.3").await;
    meet(&mut eve2, &mut bob).await;

    let until = app
        .ok_as(
            &moderator,
            "/api/moderation/ban",
            &[("report_id", &id), ("hours", "24")],
        )
        .await;
    let until = until.as_str().unwrap().to_string();
    // Eve's match ended at once; she is told until when; Ann hears the stranger left.
    assert_eq!(banned(&mut eve).await, until);
    assert_eq!(ended(&mut ann).await, MatchEnd::Left);
    // The same address is banned too, and their partner is let go.
    assert_eq!(banned(&mut eve2).await, until);
    assert_eq!(ended(&mut bob).await, MatchEnd::Left);

    // Starting again is refused with the same answer, with a new guest identity too.
    eve.send(&start(&[])).await;
    assert_eq!(banned(&mut eve).await, until);
    let (_, mut eve3) = guest_from(&app, "198.51.100.1").await;
    eve3.send(&start(&[])).await;
    assert_eq!(banned(&mut eve3).await, until);

    // Ann and Bob carry on, matched with each other.
    meet(&mut ann, &mut bob).await;

    assert!(open_reports(&app, &moderator).await.is_empty());
    let all = app
        .ok_as(&moderator, "/api/moderation/reports", &[("all", "true")])
        .await;
    assert_eq!(all["reports"][0]["resolution"], "banned");
    assert_eq!(all["reports"][0]["banned_until"], until.as_str());
    let log = app.ok_as(&moderator, "/api/moderation/log", &[]).await;
    assert_eq!(log[0]["action"], "banned");
    assert_eq!(log[0]["by"], "Mod");
    assert_eq!(log[0]["detail"], until.as_str());
    assert_eq!(log[0]["report_id"].to_string(), id);

    // Lifted early: Eve and her address may look again at once; lifting twice says so.
    app.ok_as(&moderator, "/api/moderation/lift", &[("report_id", &id)])
        .await;
    let (status, body) = app
        .refused_as(&moderator, "/api/moderation/lift", &[("report_id", &id)])
        .await;
    assert_eq!(status, 404, "{body}");
    eve.send(&start(&[])).await;
    assert!(looking(&mut eve).await);
    eve3.send(&start(&[])).await;
    matched(&mut eve).await;
    matched(&mut eve3).await;
    let log = app.ok_as(&moderator, "/api/moderation/log", &[]).await;
    assert_eq!(log[0]["action"], "lifted");
}

#[tokio::test]
async fn reports_from_three_addresses_restrict_until_a_moderator_dismisses_them() {
    let app = app().await;
    let moderator = app.person("Mod").await;
    let (_, mut eve) = guest_from(&app, "198.51.100.1").await;
    for (n, client) in ["198.51.100.2", "198.51.100.3", "198.51.100.4"]
        .into_iter()
        .enumerate()
    {
        let (_, mut reporter) = guest_from(&app, client).await;
        meet(&mut eve, &mut reporter).await;
        report(&mut reporter, &format!("report {n}")).await;
        reporter.send(&ClientMsg::StrangerStop).await;
        assert_eq!(ended(&mut eve).await, MatchEnd::Left);
    }
    let reports = open_reports(&app, &moderator).await;
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["reporters"], 3);
    assert!(reports[0]["restricted_until"].is_string(), "{}", reports[0]);
    let log = app.ok_as(&moderator, "/api/moderation/log", &[]).await;
    assert_eq!(log[0]["action"], "restricted");
    assert_eq!(log[0]["by"], "Automatic");

    // Restricted: Eve looks as always, but nobody is matched with her.
    eve.send(&start(&[])).await;
    assert!(looking(&mut eve).await);
    let (_, mut fay) = guest_from(&app, "198.51.100.5").await;
    fay.send(&start(&[])).await;
    assert!(looking(&mut fay).await);
    let not_matched = |m: &ServerMsg| matches!(m, ServerMsg::StrangerMatched { .. });
    eve.none_for(Duration::from_millis(1200), not_matched).await;
    fay.none_for(Duration::from_millis(100), not_matched).await;

    // The moderator dismisses them one by one: the last lifts the restriction, and Eve,
    // still looking, is matched at once.
    for r in &reports {
        let id = r["id"].as_i64().unwrap().to_string();
        app.ok_as(&moderator, "/api/moderation/dismiss", &[("report_id", &id)])
            .await;
    }
    matched(&mut fay).await;
    matched(&mut eve).await;
    // Dismissing one again changes nothing and is not counted twice.
    let again = reports[0]["id"].as_i64().unwrap().to_string();
    app.ok_as(
        &moderator,
        "/api/moderation/dismiss",
        &[("report_id", &again)],
    )
    .await;
    let log = app.ok_as(&moderator, "/api/moderation/log", &[]).await;
    assert_eq!(log[0]["action"], "dismissed");
    assert_eq!(log.as_array().unwrap().len(), 4);
    let text = app
        .state
        .metrics
        .render(app::server::metrics::PoolUse { open: 0, idle: 0 });
    assert!(
        text.contains(&format!(
            "parlor_moderation_total{{event=\"dismissed\"}} {}\n",
            reports.len()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn one_person_with_many_guest_identities_counts_once() {
    let app = app().await;
    let moderator = app.person("Mod").await;
    let (_, mut eve) = guest_from(&app, "198.51.100.1").await;
    for _ in 0..4 {
        let (_, mut troll) = guest_from(&app, "203.0.113.9").await;
        meet(&mut eve, &mut troll).await;
        report(&mut troll, "").await;
        troll.send(&ClientMsg::StrangerStop).await;
        assert_eq!(ended(&mut eve).await, MatchEnd::Left);
    }
    let reports = open_reports(&app, &moderator).await;
    assert_eq!(reports.len(), 4);
    assert_eq!(reports[0]["reporters"], 1);
    assert!(reports[0]["restricted_until"].is_null());
    // Eve is matched as usual.
    let (_, mut fay) = guest_from(&app, "198.51.100.5").await;
    meet(&mut eve, &mut fay).await;
}
