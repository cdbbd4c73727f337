//! Strangers over the socket: matching (interests first, anyone after the wait, the one
//! waiting longest first), next and stop, the relayed chat, report and block, the rules the
//! server keeps (one seeker per person, nobody gone or blocked, relay-only calls) and what
//! bad input gets. Races are run as they happen: both sides at once.

use std::time::Duration;

use app::{
    protocol::{ClientMsg, ErrorCode, ServerMsg},
    strangers::{MatchEnd, ReportReason},
    wire::CallId,
};

use crate::{
    helpers::TestApp,
    people::{Person, Socket},
};

pub(crate) fn start(interests: &[&str]) -> ClientMsg {
    ClientMsg::StrangerStart {
        interests: interests.iter().map(|s| s.to_string()).collect(),
        text_only: false,
        accept_rules: true,
    }
}

/// The next strangers message (calls and pings aside).
pub(crate) async fn stranger_news(socket: &mut Socket) -> ServerMsg {
    socket
        .next_where(|m| {
            matches!(
                m,
                ServerMsg::StrangerLooking { .. }
                    | ServerMsg::StrangerMatched { .. }
                    | ServerMsg::StrangerEnded { .. }
                    | ServerMsg::StrangerChat { .. }
                    | ServerMsg::StrangerReported
                    | ServerMsg::StrangerBlocked
                    | ServerMsg::StrangerBanned { .. }
                    | ServerMsg::StrangerFriendAsked
                    | ServerMsg::StrangerFriends { .. }
                    | ServerMsg::Error { .. }
            )
            .then_some(m)
        })
        .await
}

pub(crate) async fn looking(socket: &mut Socket) -> bool {
    match stranger_news(socket).await {
        ServerMsg::StrangerLooking { anyone } => anyone,
        other => panic!("expected looking, got {other:?}"),
    }
}

/// Reads `stranger_matched` and the call that follows: shared interests, call id, whether
/// this side offers.
pub(crate) async fn matched(socket: &mut Socket) -> (Vec<String>, CallId, bool) {
    let shared = match stranger_news(socket).await {
        ServerMsg::StrangerMatched { shared, .. } => shared,
        other => panic!("expected a match, got {other:?}"),
    };
    let (call_id, you_offer) = socket
        .next_where(|m| match m {
            ServerMsg::CallOpened {
                call_id, you_offer, ..
            } => Some((call_id, you_offer)),
            _ => None,
        })
        .await;
    (shared, call_id, you_offer)
}

pub(crate) async fn ended(socket: &mut Socket) -> MatchEnd {
    match stranger_news(socket).await {
        ServerMsg::StrangerEnded { reason } => reason,
        other => panic!("expected the match to end, got {other:?}"),
    }
}

pub(crate) async fn error(socket: &mut Socket) -> (ErrorCode, String) {
    match stranger_news(socket).await {
        ServerMsg::Error { code, message, .. } => (code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A guest with an open socket.
pub(crate) async fn guest(app: &TestApp) -> (Person, Socket) {
    let person = app.guest().await;
    let socket = app.socket(&person).await;
    (person, socket)
}

/// Two guests matched with each other: (first, second, call id), the first offers.
async fn matched_pair(app: &TestApp) -> (Socket, Socket, CallId) {
    let (_, mut a) = guest(app).await;
    let (_, mut b) = guest(app).await;
    a.send(&start(&[])).await;
    assert!(looking(&mut a).await);
    b.send(&start(&[])).await;
    let (_, call_id, a_offers) = matched(&mut a).await;
    let (_, b_call, b_offers) = matched(&mut b).await;
    assert_eq!(call_id, b_call);
    assert!(a_offers && !b_offers, "the one who waited offers");
    (a, b, call_id)
}

#[tokio::test]
async fn two_guests_are_matched_in_a_relay_only_call_and_chat_both_ways_as_text() {
    let app = TestApp::spawn().await;
    let (mut a, mut b, call_id) = matched_pair(&app).await;

    let markup = "<img src=x onerror=alert(1)> hi";
    a.send(&ClientMsg::StrangerChat {
        text: markup.into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut b).await,
        ServerMsg::StrangerChat {
            text: markup.into()
        }
    );
    b.send(&ClientMsg::StrangerChat {
        text: "  hello  ".into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut a).await,
        ServerMsg::StrangerChat {
            text: "hello".into()
        }
    );

    // Signaling carries no address but the relay's: a host candidate goes nowhere, a relay
    // candidate loses its related address.
    let candidate = |line: &str| {
        serde_json::json!({"kind": "candidate", "candidate": line, "mid": "0", "index": 0})
            .to_string()
    };
    a.send(&ClientMsg::CallSignal {
        call_id,
        data: candidate("candidate:1 1 udp 2122260223 192.168.1.20 54400 typ host"),
    })
    .await;
    a.send(&ClientMsg::CallSignal {
        call_id,
        data: candidate(
            "candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 203.0.113.7 rport 61000",
        ),
    })
    .await;
    let relayed = b.call_signal().await;
    assert!(relayed.contains("198.51.100.9"), "{relayed}");
    assert!(
        !relayed.contains("203.0.113.7") && !relayed.contains("192.168.1.20"),
        "{relayed}"
    );
    b.none_for(Duration::from_millis(300), |m| {
        matches!(m, ServerMsg::CallSignal { .. })
    })
    .await;
    assert_eq!(app.state.strangers.counts(), (0, 1));
}

#[tokio::test]
async fn next_matches_the_one_waiting_longest_and_the_other_looks_again() {
    let app = TestApp::spawn().await;
    let (mut a, mut b, _) = matched_pair(&app).await;
    let (_, mut c) = guest(&app).await;
    c.send(&start(&[])).await;
    assert!(looking(&mut c).await);

    a.send(&ClientMsg::StrangerNext).await;
    // B is told and looks again by itself; A meets C (B was just met, C was waiting).
    assert_eq!(ended(&mut b).await, MatchEnd::Next);
    assert!(looking(&mut b).await);
    let (_, a_call, _) = matched(&mut a).await;
    let (_, c_call, c_offers) = matched(&mut c).await;
    assert_eq!(a_call, c_call);
    assert!(c_offers, "C waited, so C offers");
    assert_eq!(app.state.strangers.counts(), (1, 1));

    // D comes: B is the one waiting.
    let (_, mut d) = guest(&app).await;
    d.send(&start(&[])).await;
    let (_, b_call, _) = matched(&mut b).await;
    assert_eq!(matched(&mut d).await.1, b_call);
}

#[tokio::test]
async fn stop_and_a_closed_tab_are_announced_and_nobody_looks_again_by_themselves() {
    let app = TestApp::spawn().await;
    let (mut a, mut b, _) = matched_pair(&app).await;
    a.send(&ClientMsg::StrangerStop).await;
    assert_eq!(ended(&mut b).await, MatchEnd::Left);
    b.none_for(Duration::from_millis(300), |m| {
        matches!(m, ServerMsg::StrangerLooking { .. })
    })
    .await;
    assert_eq!(app.state.strangers.counts(), (0, 0));

    // A closed tab: the other side is told at once that the connection dropped, and that the
    // stranger is gone within the stranger grace (5 s), not the friends' grace.
    let (c, mut d, call_id) = matched_pair(&app).await;
    let began = std::time::Instant::now();
    drop(c);
    let dropped = d
        .next_where(|m| match m {
            ServerMsg::CallPeerConnection {
                call_id: id,
                connected,
            } => Some((id, connected)),
            _ => None,
        })
        .await;
    assert_eq!(dropped, (call_id, false));
    // A line for them meanwhile is refused, not lost on the closed socket.
    d.send(&ClientMsg::StrangerChat {
        text: "still there?".into(),
    })
    .await;
    let (code, message) = error(&mut d).await;
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(message.contains("not delivered"), "{message}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ended(&mut d).await, MatchEnd::ConnectionLost);
    assert!(began.elapsed() < Duration::from_secs(7));
    assert_eq!(app.state.strangers.counts(), (0, 0));
}

#[tokio::test]
async fn shared_interests_come_first_and_anyone_after_the_wait() {
    let app = TestApp::spawn().await;
    let (_, mut chess) = guest(&app).await;
    let (_, mut jazz) = guest(&app).await;
    let (_, mut both) = guest(&app).await;
    chess.send(&start(&["Chess"])).await;
    assert!(!looking(&mut chess).await);
    jazz.send(&start(&["jazz"])).await;
    assert!(!looking(&mut jazz).await, "chess and jazz share nothing");
    both.send(&start(&["JAZZ", "chess", " board games "])).await;
    // Equal overlap (one each): the one waiting longest, Chess.
    let (shared, _, _) = matched(&mut both).await;
    assert_eq!(shared, ["chess"]);
    assert_eq!(matched(&mut chess).await.0, ["chess"]);

    // Jazz waits for a shared interest, then is told anyone will do, and meets the next one.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(looking(&mut jazz).await, "anyone now");
    let (_, mut plain) = guest(&app).await;
    plain.send(&start(&[])).await;
    assert!(matched(&mut jazz).await.0.is_empty());
    assert!(matched(&mut plain).await.0.is_empty());
    assert_eq!(app.state.strangers.counts(), (0, 2));
}

#[tokio::test]
async fn one_person_is_one_seeker_across_tabs_and_never_meets_themselves() {
    let app = TestApp::spawn().await;
    let me = app.guest().await;
    let mut tab1 = app.socket(&me).await;
    let mut tab2 = app.socket(&me).await;
    tab1.send(&start(&[])).await;
    assert!(looking(&mut tab1).await);
    tab2.send(&start(&[])).await;
    assert_eq!(ended(&mut tab1).await, MatchEnd::OtherTab);
    assert!(looking(&mut tab2).await, "not matched with the other tab");
    assert_eq!(app.state.strangers.counts(), (1, 0));

    // Matched on tab 2, starting on tab 1 ends that match (as a Next) and stops tab 2.
    let (_, mut other) = guest(&app).await;
    other.send(&start(&[])).await;
    matched(&mut tab2).await;
    matched(&mut other).await;
    tab1.send(&start(&[])).await;
    assert_eq!(ended(&mut tab2).await, MatchEnd::OtherTab);
    assert_eq!(ended(&mut other).await, MatchEnd::Next);
    assert!(looking(&mut tab1).await, "the one just met is passed over");
    assert!(looking(&mut other).await);
    assert_eq!(app.state.strangers.counts(), (2, 0));
}

#[tokio::test]
async fn nobody_is_matched_with_someone_who_left_or_closed_the_socket() {
    let app = TestApp::spawn().await;
    let (_, mut gone) = guest(&app).await;
    gone.send(&start(&[])).await;
    assert!(looking(&mut gone).await);
    drop(gone);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, mut left) = guest(&app).await;
    left.send(&start(&[])).await;
    // `left` may meet `gone` only if its socket were still there: it is not.
    assert!(looking(&mut left).await);
    left.send(&ClientMsg::StrangerStop).await;
    let (_, mut late) = guest(&app).await;
    late.send(&start(&[])).await;
    assert!(looking(&mut late).await, "nobody is waiting any more");
    assert_eq!(app.state.strangers.counts(), (1, 0));
}

#[tokio::test]
async fn both_pressing_next_at_once_leaves_both_looking_and_not_matched_together() {
    let app = TestApp::spawn().await;
    let (mut a, mut b, _) = matched_pair(&app).await;
    tokio::join!(
        a.send(&ClientMsg::StrangerNext),
        b.send(&ClientMsg::StrangerNext)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Whatever order the server saw: nobody is left in a match, both wait (just met).
    assert_eq!(app.state.strangers.counts(), (2, 0));
    for socket in [&mut a, &mut b] {
        socket
            .none_for(Duration::from_millis(200), |m| {
                matches!(m, ServerMsg::StrangerMatched { .. })
            })
            .await;
    }
}

#[tokio::test]
async fn leaving_at_the_moment_of_a_match_leaves_no_half_match() {
    let app = TestApp::spawn().await;
    for _ in 0..10 {
        let (_, mut a) = guest(&app).await;
        let (_, mut b) = guest(&app).await;
        a.send(&start(&[])).await;
        assert!(looking(&mut a).await);
        let go = start(&[]);
        tokio::join!(b.send(&go), a.send(&ClientMsg::StrangerStop));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Either B met A and A's stop ended it (B told), or A left first (B waits).
        let (waiting, matches) = app.state.strangers.counts();
        assert_eq!(matches, 0);
        if waiting == 0 {
            let reason = b
                .next_where(|m| match m {
                    ServerMsg::StrangerEnded { reason } => Some(reason),
                    _ => None,
                })
                .await;
            assert_eq!(reason, MatchEnd::Left);
        }
        b.send(&ClientMsg::StrangerStop).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(app.state.strangers.counts(), (0, 0));
    }
}

#[tokio::test]
async fn a_blocked_stranger_is_never_met_again_even_after_reconnecting() {
    let app = TestApp::spawn().await;
    let (ann, mut a) = guest(&app).await;
    let (_, mut b) = guest(&app).await;
    a.send(&start(&[])).await;
    looking(&mut a).await;
    b.send(&start(&[])).await;
    matched(&mut a).await;
    matched(&mut b).await;
    a.send(&ClientMsg::StrangerBlock).await;
    // For B it looks like a Next; both look again, never together.
    assert_eq!(ended(&mut b).await, MatchEnd::Next);
    assert_eq!(
        stranger_news(&mut a).await,
        ServerMsg::StrangerLooking { anyone: true }
    );
    assert_eq!(stranger_news(&mut a).await, ServerMsg::StrangerBlocked);
    assert!(looking(&mut b).await);
    // Past the wait that lets recent partners meet again: still apart.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(app.state.strangers.counts(), (2, 0));

    // Ann comes back on a new socket: the block was stored.
    drop(a);
    let mut a = app.socket(&ann).await;
    a.send(&start(&[])).await;
    assert!(looking(&mut a).await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.state.strangers.counts(), (2, 0));
    // Someone else meets whoever waited longest (B).
    let (_, mut c) = guest(&app).await;
    c.send(&start(&[])).await;
    matched(&mut c).await;
    matched(&mut b).await;
}

#[tokio::test]
async fn a_report_keeps_the_lines_only_with_consent_and_never_the_address() {
    let app = TestApp::spawn().await;
    let (mut a, mut b, _) = matched_pair(&app).await;
    b.send(&ClientMsg::StrangerChat {
        text: "rude words".into(),
    })
    .await;
    assert!(matches!(
        stranger_news(&mut a).await,
        ServerMsg::StrangerChat { .. }
    ));
    a.send(&ClientMsg::StrangerReport {
        reason: ReportReason::Harassment,
        note: "said <b>rude</b> things".into(),
        include_chat: true,
    })
    .await;
    assert_eq!(stranger_news(&mut a).await, ServerMsg::StrangerReported);
    // After Next the last stranger can still be reported, without the lines this time.
    a.send(&ClientMsg::StrangerNext).await;
    assert_eq!(ended(&mut b).await, MatchEnd::Next);
    looking(&mut a).await;
    a.send(&ClientMsg::StrangerReport {
        reason: ReportReason::Spam,
        note: String::new(),
        include_chat: false,
    })
    .await;
    assert_eq!(stranger_news(&mut a).await, ServerMsg::StrangerReported);

    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT reporter, reported, reported_address, reason, lines FROM stranger_reports ORDER BY id",
    )
    .fetch_all(&app.state.db.pool_for_tests())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, rows[1].1, "both about B");
    assert_ne!(rows[0].0, rows[0].1);
    assert_eq!(rows[0].3, "harassment");
    assert_eq!(rows[0].4, r#"[[false,"rude words"]]"#);
    assert_eq!(rows[1].4, "[]");
    assert_eq!(rows[0].2.len(), 32, "a hash: {}", rows[0].2);
    assert!(!rows[0].2.contains("127.0.0.1"));

    // Someone who met nobody has nobody to report or block.
    let (_, mut c) = guest(&app).await;
    c.send(&ClientMsg::StrangerReport {
        reason: ReportReason::Other,
        note: String::new(),
        include_chat: true,
    })
    .await;
    assert_eq!(error(&mut c).await.0, ErrorCode::NotAllowed);
    c.send(&ClientMsg::StrangerBlock).await;
    assert_eq!(error(&mut c).await.0, ErrorCode::NotAllowed);
}

#[tokio::test]
async fn outsiders_and_other_tabs_cannot_chat_or_signal_into_a_match() {
    let app = TestApp::spawn().await;
    let a_person = app.guest().await;
    let mut a = app.socket(&a_person).await;
    let (_, mut b) = guest(&app).await;
    a.send(&start(&[])).await;
    looking(&mut a).await;
    b.send(&start(&[])).await;
    let (_, call_id, _) = matched(&mut a).await;
    matched(&mut b).await;

    // Another tab of A's: not the match's socket.
    let mut a_other = app.socket(&a_person).await;
    a_other
        .send(&ClientMsg::StrangerChat {
            text: "from the side".into(),
        })
        .await;
    assert_eq!(error(&mut a_other).await.0, ErrorCode::NotAllowed);
    // A stranger to the match: no chat, no signaling.
    let (_, mut eve) = guest(&app).await;
    eve.send(&ClientMsg::StrangerChat { text: "hi".into() })
        .await;
    assert_eq!(error(&mut eve).await.0, ErrorCode::NotAllowed);
    eve.send(&ClientMsg::CallSignal {
        call_id,
        data: "{}".into(),
    })
    .await;
    assert_eq!(eve.error_code().await, ErrorCode::NotAllowed);
    eve.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(eve.error_code().await, ErrorCode::NotAllowed);
    b.none_for(Duration::from_millis(300), |m| {
        matches!(
            m,
            ServerMsg::StrangerChat { .. } | ServerMsg::CallSignal { .. }
        )
    })
    .await;
    assert_eq!(app.state.strangers.counts(), (0, 1));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_everyone_else_is_served() {
    let app = TestApp::spawn().await;
    let (_, mut a) = guest(&app).await;
    a.send(&ClientMsg::StrangerStart {
        interests: vec![],
        text_only: false,
        accept_rules: false,
    })
    .await;
    let (code, message) = error(&mut a).await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(message.contains("18 or older"), "{message}");
    a.send(&start(&["x".repeat(31).as_str()])).await;
    let (code, message) = error(&mut a).await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(message.contains("30 characters"), "{message}");
    let many: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
    a.send(&ClientMsg::StrangerStart {
        interests: many,
        text_only: false,
        accept_rules: true,
    })
    .await;
    assert!(error(&mut a).await.1.contains("at most 10"));
    a.send_text(r#"{"type":"stranger_teleport"}"#).await;
    assert_eq!(a.error_code().await, ErrorCode::BadFrame);
    a.send(&ClientMsg::StrangerNext).await;
    assert_eq!(error(&mut a).await.0, ErrorCode::NotAllowed, "not matched");
    assert_eq!(app.state.strangers.counts(), (0, 0), "nothing was started");

    let (mut x, mut y, _) = matched_pair(&app).await;
    x.send(&ClientMsg::StrangerChat {
        text: "é".repeat(10_000),
    })
    .await;
    let (code, message) = error(&mut x).await;
    assert_eq!(code, ErrorCode::Invalid);
    assert!(message.contains("at most 1000"), "{message}");
    x.send(&ClientMsg::StrangerReport {
        reason: ReportReason::Other,
        note: "n".repeat(1001),
        include_chat: false,
    })
    .await;
    assert_eq!(error(&mut x).await.0, ErrorCode::Invalid);

    // A flood of nexts: refused once over the allowance, and the others still play.
    let (_, mut flooder) = guest(&app).await;
    flooder.send(&start(&[])).await;
    let mut refused = false;
    for _ in 0..40 {
        flooder.send(&start(&[])).await;
    }
    for _ in 0..41 {
        if let ServerMsg::Error { code, .. } = stranger_news(&mut flooder).await {
            assert_eq!(code, ErrorCode::RateLimited);
            refused = true;
            break;
        }
    }
    assert!(refused, "starts are limited");
    x.send(&ClientMsg::StrangerChat {
        text: "still here".into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut y).await,
        ServerMsg::StrangerChat {
            text: "still here".into()
        }
    );
    // A flood of chat lines: some are refused, the socket stays.
    let mut limited = false;
    for i in 0..40 {
        x.send(&ClientMsg::StrangerChat {
            text: format!("line {i}"),
        })
        .await;
    }
    for _ in 0..40 {
        if let ServerMsg::Error { code, .. } = stranger_news(&mut x).await {
            assert_eq!(code, ErrorCode::RateLimited);
            limited = true;
            break;
        }
    }
    assert!(limited, "chat lines are limited");
    x.send(&ClientMsg::Ping).await;
    x.next_where(|m| (m == ServerMsg::Pong).then_some(())).await;
}

#[tokio::test]
async fn signed_in_users_stay_anonymous_and_a_block_between_users_holds_here_too() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = app.pair().await;
    let mut a = app.socket(&ann).await;
    let mut b = app.socket(&bob).await;
    a.send(&start(&[])).await;
    looking(&mut a).await;
    b.send(&start(&[])).await;
    let peer = b
        .next_where(|m| match m {
            ServerMsg::CallOpened { peer, .. } => Some(peer),
            _ => None,
        })
        .await;
    assert_eq!(
        peer,
        app::wire::CallPeer::Anonymous {
            label: "Stranger".into()
        },
        "no name, no id"
    );
    matched(&mut a).await;
    b.send(&ClientMsg::StrangerStop).await;
    assert_eq!(ended(&mut a).await, MatchEnd::Left);

    // Bob blocks Ann as a user: they are never matched as strangers either.
    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    a.send(&start(&[])).await;
    b.send(&start(&[])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.state.strangers.counts(), (2, 0));

    // In a call of another kind, starting is refused.
    let carl = app.person("Carl").await;
    let dora = app.person("Dora").await;
    app.befriend(&carl, &dora).await;
    let mut c = app.socket(&carl).await;
    let mut d = app.socket(&dora).await;
    crate::people::ring_and_answer(&mut c, &mut d, dora.id).await;
    c.send(&start(&[])).await;
    let (code, message) = error(&mut c).await;
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(message.contains("call"), "{message}");
}

#[tokio::test]
async fn after_next_someone_with_interests_meets_someone_without_once_the_wait_is_over() {
    let app = TestApp::spawn().await;
    let (_, mut a) = guest(&app).await;
    let (_, mut b) = guest(&app).await;
    let (_, mut c) = guest(&app).await;
    a.send(&start(&["chess"])).await;
    looking(&mut a).await;
    b.send(&start(&["jazz", "chess"])).await;
    matched(&mut a).await;
    matched(&mut b).await;
    c.send(&start(&[])).await;
    assert!(looking(&mut c).await);
    a.send(&ClientMsg::StrangerNext).await;
    assert_eq!(ended(&mut b).await, MatchEnd::Next);
    assert!(!looking(&mut a).await, "A hopes for chess first");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (_, a_call, _) = matched(&mut a).await;
    assert_eq!(matched(&mut c).await.1, a_call);
}

/// Reads `stranger_matched`: whether "Add as friend" is offered.
async fn can_befriend(socket: &mut Socket) -> bool {
    match stranger_news(socket).await {
        ServerMsg::StrangerMatched { can_befriend, .. } => can_befriend,
        other => panic!("expected a match, got {other:?}"),
    }
}

#[tokio::test]
async fn two_signed_in_strangers_become_friends_only_when_both_press_add_as_friend() {
    let app = TestApp::spawn().await;
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let cat = app.person("Cat").await;
    let mut a = app.socket(&ann).await;
    let mut b = app.socket(&bob).await;
    let mut a2 = app.socket(&ann).await;
    let mut c = app.socket(&cat).await;
    a.send(&start(&[])).await;
    looking(&mut a).await;
    b.send(&start(&[])).await;
    assert!(can_befriend(&mut a).await);
    assert!(can_befriend(&mut b).await);

    // Outsiders and Ann's other tab cannot press it for her.
    for outsider in [&mut c, &mut a2] {
        outsider.send(&ClientMsg::StrangerFriend).await;
        assert_eq!(error(outsider).await.0, ErrorCode::NotAllowed);
    }
    b.none_for(Duration::from_millis(200), |m| {
        matches!(m, ServerMsg::StrangerFriendAsked)
    })
    .await;

    // Ann presses: Bob is asked (once, however often she presses); nothing more yet.
    a.send(&ClientMsg::StrangerFriend).await;
    a.send(&ClientMsg::StrangerFriend).await;
    assert_eq!(stranger_news(&mut b).await, ServerMsg::StrangerFriendAsked);
    b.none_for(Duration::from_millis(200), |m| {
        matches!(
            m,
            ServerMsg::StrangerFriendAsked | ServerMsg::StrangerFriends { .. }
        )
    })
    .await;
    let friends = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert!(friends["friends"].as_array().unwrap().is_empty());
    assert!(
        friends["outgoing"].as_array().unwrap().is_empty(),
        "no request before both press"
    );

    // Bob presses too: friends, and each learns the other's name.
    b.send(&ClientMsg::StrangerFriend).await;
    let (to_ann, to_bob) = (stranger_news(&mut a).await, stranger_news(&mut b).await);
    let (
        ServerMsg::StrangerFriends {
            user: bob_card,
            conversation_id,
        },
        ServerMsg::StrangerFriends {
            user: ann_card,
            conversation_id: same,
        },
    ) = (to_ann, to_bob)
    else {
        panic!("both should hear they are friends");
    };
    assert_eq!(
        (bob_card.id, bob_card.display_name.as_str()),
        (bob.id, "Bob")
    );
    assert_eq!(
        (ann_card.id, ann_card.display_name.as_str()),
        (ann.id, "Ann")
    );
    assert_eq!(conversation_id, same);
    let friends = app.ok_as(&ann, "/api/friends/list", &[]).await;
    assert_eq!(friends["friends"][0]["user"]["id"], bob.id);
    assert_eq!(friends["friends"][0]["conversation_id"], conversation_id);
    // Pressing again changes nothing.
    a.send(&ClientMsg::StrangerFriend).await;
    a.none_for(Duration::from_millis(200), |m| {
        matches!(
            m,
            ServerMsg::StrangerFriends { .. } | ServerMsg::Error { .. }
        )
    })
    .await;

    // With a guest it is not offered, and pressing anyway is refused on both sides.
    a.send(&ClientMsg::StrangerStop).await;
    assert_eq!(ended(&mut b).await, MatchEnd::Left);
    let (_, mut g) = guest(&app).await;
    c.send(&start(&[])).await;
    looking(&mut c).await;
    g.send(&start(&[])).await;
    assert!(!can_befriend(&mut c).await);
    assert!(!can_befriend(&mut g).await);
    for side in [&mut c, &mut g] {
        side.send(&ClientMsg::StrangerFriend).await;
        let (code, message) = error(side).await;
        assert_eq!(code, ErrorCode::NotAllowed);
        assert!(message.contains("signed-in"), "{message}");
    }
    let friends = app.ok_as(&cat, "/api/friends/list", &[]).await;
    assert!(friends["outgoing"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn starts_spread_over_many_sockets_of_one_person_share_one_allowance() {
    let app = TestApp::spawn().await;
    let flooder = app.guest().await;
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(app.socket(&flooder).await);
    }
    // 40 starts over four tabs (10 each): the person's 30 a minute hold across them.
    for socket in &mut sockets {
        for _ in 0..10 {
            socket.send(&start(&[])).await;
        }
    }
    let mut refused = 0;
    for socket in &mut sockets {
        socket.send(&ClientMsg::Ping).await;
        loop {
            match socket.next().await {
                ServerMsg::Pong => break,
                ServerMsg::Error { code, .. } => {
                    assert_eq!(code, ErrorCode::RateLimited);
                    refused += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        refused, 10,
        "30 starts a minute per person, whatever the socket"
    );
    // Someone else is served meanwhile.
    let (_, mut other) = guest(&app).await;
    other.send(&start(&[])).await;
    assert!(matches!(
        stranger_news(&mut other).await,
        ServerMsg::StrangerLooking { .. } | ServerMsg::StrangerMatched { .. }
    ));
}
