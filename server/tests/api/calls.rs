//! The server's side of calls: ringing every tab, answering on one, relaying signaling only
//! between the two answered sockets, ending calls every way they end, and the records left
//! in the conversation.

use std::time::Duration;

use app::{
    wire::{CallId, CallOutcome, MessageView},
    protocol::{CallEndReason, ClientMsg, ErrorCode, ServerMsg},
};

use crate::{
    helpers::TestApp,
    people::{Person, Socket},
};

async fn pair(app: &TestApp) -> (Person, Person, i64) {
    let ann = app.person("Ann").await;
    let bob = app.person("Bob").await;
    let conversation = app.befriend(&ann, &bob).await;
    (ann, bob, conversation)
}

async fn ringing(socket: &mut Socket) -> u64 {
    socket
        .next_where(|m| match m {
            ServerMsg::CallRinging { call_id, .. } => Some(call_id),
            _ => None,
        })
        .await
}

async fn incoming(socket: &mut Socket) -> (u64, String) {
    socket
        .next_where(|m| match m {
            ServerMsg::CallIncoming { call_id, from, .. } => Some((call_id, from.display_name)),
            _ => None,
        })
        .await
}

async fn ended(socket: &mut Socket) -> (u64, CallEndReason) {
    socket
        .next_where(|m| match m {
            ServerMsg::CallEnded { call_id, reason } => Some((call_id, reason)),
            _ => None,
        })
        .await
}

async fn accepted(socket: &mut Socket) -> u64 {
    socket
        .next_where(|m| match m {
            ServerMsg::CallAccepted { call_id } => Some(call_id),
            _ => None,
        })
        .await
}

async fn signal(socket: &mut Socket) -> String {
    socket
        .next_where(|m| match m {
            ServerMsg::CallSignal { data, .. } => Some(data),
            _ => None,
        })
        .await
}

async fn record(socket: &mut Socket) -> MessageView {
    socket
        .next_where(|m| match m {
            ServerMsg::Message { message } if message.call.is_some() => Some(message),
            _ => None,
        })
        .await
}

fn refused(message: ServerMsg) -> Option<ErrorCode> {
    match message {
        ServerMsg::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[tokio::test]
async fn every_tab_rings_one_answers_and_only_the_two_sockets_talk() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = pair(&app).await;
    let eve = app.person("Eve").await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_phone = app.socket(&bob).await;
    let mut bob_laptop = app.socket(&bob).await;
    let mut eve_tab = app.socket(&eve).await;

    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    assert_eq!(incoming(&mut bob_phone).await, (call_id, "Ann".to_string()));
    assert_eq!(incoming(&mut bob_laptop).await.0, call_id);

    // Nobody else can answer, hang up or signal.
    eve_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(eve_tab.next_where(refused).await, ErrorCode::NotAllowed);
    eve_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(eve_tab.next_where(refused).await, ErrorCode::NotAllowed);
    ann_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(
        ann_tab.next_where(refused).await,
        ErrorCode::NotAllowed,
        "the caller cannot answer"
    );

    bob_laptop.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(accepted(&mut ann_tab).await, call_id);
    assert_eq!(accepted(&mut bob_laptop).await, call_id);
    assert_eq!(
        ended(&mut bob_phone).await,
        (call_id, CallEndReason::AnsweredElsewhere)
    );

    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: r#"{"sdp":"offer"}"#.into(),
        })
        .await;
    assert_eq!(signal(&mut bob_laptop).await, r#"{"sdp":"offer"}"#);
    bob_laptop
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "answer".into(),
        })
        .await;
    assert_eq!(signal(&mut ann_tab).await, "answer");
    // The phone that did not answer, and a stranger, are not parties.
    bob_phone
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(bob_phone.next_where(refused).await, ErrorCode::NotAllowed);
    eve_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(eve_tab.next_where(refused).await, ErrorCode::NotAllowed);
    ann_tab
        .none_for(Duration::from_millis(200), |m| {
            matches!(m, ServerMsg::CallSignal { .. })
        })
        .await;

    // A second call while busy: the caller hears "busy", the callee's call goes on.
    let mut eve_calls = app.socket(&eve).await;
    app.befriend(&eve, &bob).await;
    eve_calls
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: false,
        })
        .await;
    assert_eq!(ended(&mut eve_calls).await.1, CallEndReason::Busy);
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "still here".into(),
        })
        .await;
    assert_eq!(signal(&mut bob_laptop).await, "still here");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    bob_laptop.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(ended(&mut ann_tab).await, (call_id, CallEndReason::HungUp));
    assert_eq!(
        ended(&mut bob_laptop).await,
        (call_id, CallEndReason::HungUp)
    );
    let stored = record(&mut ann_tab).await;
    let call = stored.call.unwrap();
    assert_eq!(call.outcome, CallOutcome::Completed);
    assert!(call.duration_secs >= 1, "{call:?}");
    assert!(call.video);
    assert_eq!(
        (stored.sender_id, stored.conversation_id),
        (ann.id, conversation)
    );
    // The record is part of the history.
    let history = app
        .ok_as(
            &bob,
            "/api/messages/history",
            &[("conversation_id", &conversation.to_string())],
        )
        .await;
    assert_eq!(history["messages"][0]["call"]["outcome"], "completed");

    // Both are free again.
    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: false,
        })
        .await;
    ringing(&mut ann_tab).await;
}

#[tokio::test]
async fn rejected_cancelled_and_unanswered_calls_end_for_both_and_are_recorded() {
    let app = TestApp::spawn_with(|c| c.call_ring = Duration::from_millis(500)).await;
    let (ann, bob, _) = pair(&app).await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;

    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    incoming(&mut bob_tab).await;
    bob_tab.send(&ClientMsg::CallReject { call_id }).await;
    assert_eq!(
        ended(&mut ann_tab).await,
        (call_id, CallEndReason::Rejected)
    );
    assert_eq!(
        ended(&mut bob_tab).await,
        (call_id, CallEndReason::Rejected)
    );
    assert_eq!(
        record(&mut bob_tab).await.call.unwrap().outcome,
        CallOutcome::Rejected
    );

    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    incoming(&mut bob_tab).await;
    ann_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(
        ended(&mut bob_tab).await,
        (call_id, CallEndReason::Cancelled)
    );
    assert_eq!(
        record(&mut bob_tab).await.call.unwrap().outcome,
        CallOutcome::Missed
    );

    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: false,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    incoming(&mut bob_tab).await;
    // Nobody answers within the ring time.
    assert_eq!(
        ended(&mut ann_tab).await,
        (call_id, CallEndReason::NoAnswer)
    );
    assert_eq!(
        ended(&mut bob_tab).await,
        (call_id, CallEndReason::NoAnswer)
    );
    let missed = record(&mut bob_tab).await;
    assert_eq!(missed.call.unwrap().outcome, CallOutcome::Missed);
    assert_eq!(
        app.ok_as(&bob, "/api/messages/unread", &[]).await,
        3,
        "each call left a record"
    );
}

#[tokio::test]
async fn strangers_and_blocked_people_cannot_call() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = pair(&app).await;
    let eve = app.person("Eve").await;
    let mut eve_tab = app.socket(&eve).await;
    let mut bob_tab = app.socket(&bob).await;
    eve_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    assert_eq!(ended(&mut eve_tab).await.1, CallEndReason::NotAllowed);

    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    let mut ann_tab = app.socket(&ann).await;
    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    assert_eq!(ended(&mut ann_tab).await.1, CallEndReason::NotAllowed);
    bob_tab
        .none_for(Duration::from_millis(200), |m| {
            matches!(m, ServerMsg::CallIncoming { .. })
        })
        .await;
}

#[tokio::test]
async fn the_callers_socket_dropping_while_ringing_cancels_the_call() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = pair(&app).await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    incoming(&mut bob_tab).await;
    drop(ann_tab);
    assert_eq!(
        ended(&mut bob_tab).await,
        (call_id, CallEndReason::Cancelled)
    );
    // A callee tab closing while ringing does not end it: another tab may answer.
    let mut ann_tab = app.socket(&ann).await;
    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    let mut bob_tab2 = app.socket(&bob).await;
    drop(bob_tab);
    bob_tab2.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(accepted(&mut ann_tab).await, call_id);
}

#[tokio::test]
async fn an_answered_call_survives_a_short_drop_and_ends_after_the_grace_period() {
    let app = TestApp::spawn_with(|c| c.call_grace = Duration::from_millis(700)).await;
    let (ann, bob, _) = pair(&app).await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab
        .send(&ClientMsg::CallStart {
            to: bob.id,
            video: true,
        })
        .await;
    let call_id = ringing(&mut ann_tab).await;
    incoming(&mut bob_tab).await;
    bob_tab.send(&ClientMsg::CallAccept { call_id }).await;
    accepted(&mut ann_tab).await;

    // Bob's network drops; Ann is told, and the call waits.
    drop(bob_tab);
    let peer = ann_tab
        .next_where(|m| match m {
            ServerMsg::CallPeerConnection { connected, .. } => Some(connected),
            _ => None,
        })
        .await;
    assert!(!peer);
    let mut bob_back = app.socket(&bob).await;
    bob_back.send(&ClientMsg::CallResume { call_id }).await;
    bob_back
        .next_where(|m| matches!(m, ServerMsg::CallResumed { .. }).then_some(()))
        .await;
    let peer = ann_tab
        .next_where(|m| match m {
            ServerMsg::CallPeerConnection { connected, .. } => Some(connected),
            _ => None,
        })
        .await;
    assert!(peer);
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "restart ice".into(),
        })
        .await;
    assert_eq!(signal(&mut bob_back).await, "restart ice");
    // Past the grace period nothing ended: Bob came back in time.
    tokio::time::sleep(Duration::from_millis(900)).await;
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "still on".into(),
        })
        .await;
    assert_eq!(signal(&mut bob_back).await, "still on");

    // This time Bob does not come back.
    drop(bob_back);
    assert_eq!(
        ended(&mut ann_tab).await,
        (call_id, CallEndReason::ConnectionLost)
    );
    assert_eq!(
        record(&mut ann_tab).await.call.unwrap().outcome,
        CallOutcome::Completed
    );
    let mut bob_late = app.socket(&bob).await;
    bob_late.send(&ClientMsg::CallResume { call_id }).await;
    assert_eq!(bob_late.next_where(refused).await, ErrorCode::NotAllowed);
}

#[tokio::test]
async fn the_configured_ice_servers_reach_the_browser() {
    let servers = vec![app::protocol::IceServer {
        urls: vec!["turn:turn.example.org:3478".into()],
        username: Some("parlor".into()),
        credential: Some("s3cret".into()),
    }];
    let configured = servers.clone();
    let app = TestApp::spawn_with(move |c| c.ice_servers = configured).await;
    let ann = app.person("Ann").await;
    let mut tab = app.try_socket(Some(&ann.cookie)).await.unwrap();
    match tab.next().await {
        ServerMsg::Welcome { ice_servers, .. } => assert_eq!(ice_servers, servers),
        other => panic!("expected a welcome, got {other:?}"),
    }
}
