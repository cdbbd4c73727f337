//! The server's side of calls: ringing every tab, answering on one, relaying signaling only
//! between the two answered sockets, ending calls every way they end, and the records left
//! in the conversation.

use std::time::Duration;

use app::{
    protocol::{CallEndReason, ClientMsg, ErrorCode, ServerMsg},
    wire::{CallId, CallOutcome},
};

use crate::{helpers::TestApp, people::ring_and_answer};

#[tokio::test]
async fn every_tab_rings_one_answers_and_only_the_two_sockets_talk() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let eve = app.person("Eve").await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_phone = app.socket(&bob).await;
    let mut bob_laptop = app.socket(&bob).await;
    let mut eve_tab = app.socket(&eve).await;

    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    assert_eq!(bob_phone.incoming().await, (call_id, "Ann".to_string()));
    assert_eq!(bob_laptop.incoming().await.0, call_id);

    // Nobody else can answer, hang up or signal.
    eve_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(eve_tab.error_code().await, ErrorCode::NotAllowed);
    eve_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(eve_tab.error_code().await, ErrorCode::NotAllowed);
    ann_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(
        ann_tab.error_code().await,
        ErrorCode::NotAllowed,
        "the caller cannot answer"
    );

    bob_laptop.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(ann_tab.accepted().await, (call_id, true));
    assert_eq!(bob_laptop.accepted().await, (call_id, false));
    assert_eq!(
        bob_phone.call_ended().await,
        (call_id, CallEndReason::AnsweredElsewhere)
    );

    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: r#"{"sdp":"offer"}"#.into(),
        })
        .await;
    assert_eq!(bob_laptop.call_signal().await, r#"{"sdp":"offer"}"#);
    bob_laptop
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "answer".into(),
        })
        .await;
    assert_eq!(ann_tab.call_signal().await, "answer");
    // The phone that did not answer, and a stranger, are not parties.
    bob_phone
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(bob_phone.error_code().await, ErrorCode::NotAllowed);
    eve_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(eve_tab.error_code().await, ErrorCode::NotAllowed);
    ann_tab
        .none_for(Duration::from_millis(200), |m| {
            matches!(m, ServerMsg::CallSignal { .. })
        })
        .await;

    // A second call while busy: the caller hears "busy", the callee's call goes on.
    let mut eve_calls = app.socket(&eve).await;
    app.befriend(&eve, &bob).await;
    let request = eve_calls.start_call(bob.id, false).await;
    assert_eq!(
        eve_calls.call_refused().await,
        (request, CallEndReason::Busy)
    );
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "still here".into(),
        })
        .await;
    assert_eq!(bob_laptop.call_signal().await, "still here");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    bob_laptop.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(ann_tab.call_ended().await, (call_id, CallEndReason::HungUp));
    assert_eq!(
        bob_laptop.call_ended().await,
        (call_id, CallEndReason::HungUp)
    );
    let stored = ann_tab.call_record().await;
    let call = stored.call.unwrap();
    assert_eq!(call.outcome, CallOutcome::Completed);
    assert!(call.duration_secs >= 1, "{call:?}");
    assert!(call.video);
    assert_eq!(
        (stored.sender_id, stored.conversation_id),
        (ann.id, conversation)
    );
    // The record is part of the history.
    let history = app.history(&bob, conversation).await;
    assert_eq!(history["messages"][0]["call"]["outcome"], "completed");

    // Both are free again.
    ann_tab.start_call(bob.id, false).await;
    ann_tab.ringing().await;
}

#[tokio::test]
async fn rejected_cancelled_and_unanswered_calls_end_for_both_and_are_recorded() {
    let app = TestApp::spawn_with(|c| c.call_ring = Duration::from_millis(500)).await;
    let (ann, bob, _) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;

    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    bob_tab.send(&ClientMsg::CallReject { call_id }).await;
    assert_eq!(
        ann_tab.call_ended().await,
        (call_id, CallEndReason::Rejected)
    );
    assert_eq!(
        bob_tab.call_ended().await,
        (call_id, CallEndReason::Rejected)
    );
    assert_eq!(
        bob_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Rejected
    );

    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    ann_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(
        bob_tab.call_ended().await,
        (call_id, CallEndReason::Cancelled)
    );
    assert_eq!(
        bob_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Missed
    );

    ann_tab.start_call(bob.id, false).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    // Nobody answers within the ring time.
    assert_eq!(
        ann_tab.call_ended().await,
        (call_id, CallEndReason::NoAnswer)
    );
    assert_eq!(
        bob_tab.call_ended().await,
        (call_id, CallEndReason::NoAnswer)
    );
    let missed = bob_tab.call_record().await;
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
    let (ann, bob, _) = app.pair().await;
    let eve = app.person("Eve").await;
    let mut eve_tab = app.socket(&eve).await;
    let mut bob_tab = app.socket(&bob).await;
    let request = eve_tab.start_call(bob.id, true).await;
    assert_eq!(
        eve_tab.call_refused().await,
        (request, CallEndReason::NotAllowed)
    );

    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    let mut ann_tab = app.socket(&ann).await;
    let request = ann_tab.start_call(bob.id, true).await;
    assert_eq!(
        ann_tab.call_refused().await,
        (request, CallEndReason::NotAllowed)
    );
    bob_tab
        .none_for(Duration::from_millis(200), |m| {
            matches!(m, ServerMsg::CallIncoming { .. })
        })
        .await;
}

#[tokio::test]
async fn the_callers_socket_dropping_while_ringing_cancels_the_call() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    drop(ann_tab);
    assert_eq!(
        bob_tab.call_ended().await,
        (call_id, CallEndReason::Cancelled)
    );
    // A callee tab closing while ringing does not end it: another tab may answer.
    let mut ann_tab = app.socket(&ann).await;
    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    let mut bob_tab2 = app.socket(&bob).await;
    drop(bob_tab);
    bob_tab2.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(ann_tab.accepted().await, (call_id, true));
}

#[tokio::test]
async fn an_answered_call_survives_a_short_drop_and_ends_after_the_grace_period() {
    let app = TestApp::spawn_with(|c| c.call_grace = Duration::from_millis(700)).await;
    let (ann, bob, _) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;

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
    assert_eq!(bob_back.call_signal().await, "restart ice");
    // Past the grace period nothing ended: Bob came back in time.
    tokio::time::sleep(Duration::from_millis(900)).await;
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "still on".into(),
        })
        .await;
    assert_eq!(bob_back.call_signal().await, "still on");

    // This time Bob does not come back.
    drop(bob_back);
    assert_eq!(
        ann_tab.call_ended().await,
        (call_id, CallEndReason::ConnectionLost)
    );
    assert_eq!(
        ann_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Completed
    );
    let mut bob_late = app.socket(&bob).await;
    bob_late.send(&ClientMsg::CallResume { call_id }).await;
    assert_eq!(bob_late.error_code().await, ErrorCode::NotAllowed);
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

#[tokio::test]
async fn answers_to_call_start_carry_the_request_they_answer() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = app.pair().await;
    let eve = app.person("Eve").await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    // Two requests in a row: the first rings, the second is refused (Ann is calling already,
    // and Eve is no friend). Each answer names its own request.
    let first = ann_tab.start_call(bob.id, true).await;
    let second = ann_tab.start_call(eve.id, true).await;
    let ringing = ann_tab
        .next_where(|m| match m {
            ServerMsg::CallRinging {
                request_id, peer, ..
            } => Some((request_id, peer.name().to_string())),
            _ => None,
        })
        .await;
    assert_eq!(ringing, (first, "Bob".to_string()));
    assert_eq!(
        ann_tab.call_refused().await,
        (second, CallEndReason::NotAllowed)
    );
    // The refusal did not touch the call that rings.
    let (call_id, _) = bob_tab.incoming().await;
    bob_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(ann_tab.accepted().await, (call_id, true));
}

#[tokio::test]
async fn call_ids_are_unguessable_and_records_survive_a_restart() {
    let app = TestApp::spawn().await;
    let (ann, bob, conversation) = app.pair().await;
    let mut ids = Vec::<CallId>::new();
    let mut app = app;
    for _ in 0..2 {
        let mut ann_tab = app.socket(&ann).await;
        let mut bob_tab = app.socket(&bob).await;
        let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
        ann_tab.send(&ClientMsg::CallHangup { call_id }).await;
        assert_eq!(
            ann_tab.call_record().await.call.unwrap().outcome,
            CallOutcome::Completed
        );
        ids.push(call_id);
        drop((ann_tab, bob_tab));
        app = app.restart().await;
    }
    assert_ne!(ids[0], ids[1]);
    // Not a counter: the ids share no obvious order or small values.
    assert!(ids.iter().all(|id| id.0 > u64::MAX as u128), "{ids:?}");
    let history = app.history(&ann, conversation).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn blocking_or_unfriending_ends_a_call_between_the_two() {
    let app = TestApp::spawn().await;
    let (ann, bob, _) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    // A running call, ended by a block.
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
    app.ok_as(
        &bob,
        "/api/friends/block",
        &[("user_id", &ann.id.to_string())],
    )
    .await;
    for tab in [&mut ann_tab, &mut bob_tab] {
        assert_eq!(tab.call_ended().await, (call_id, CallEndReason::NotAllowed));
    }
    app.ok_as(
        &bob,
        "/api/friends/unblock",
        &[("user_id", &ann.id.to_string())],
    )
    .await;

    // A ringing call, ended by an unfriend.
    let carl = app.person("Carl").await;
    app.befriend(&ann, &carl).await;
    let mut carl_tab = app.socket(&carl).await;
    ann_tab.start_call(carl.id, false).await;
    let call_id = ann_tab.ringing().await;
    carl_tab.incoming().await;
    app.ok_as(
        &ann,
        "/api/friends/unfriend",
        &[("user_id", &carl.id.to_string())],
    )
    .await;
    assert_eq!(
        carl_tab.call_ended().await,
        (call_id, CallEndReason::NotAllowed)
    );
    // Both are free for other calls.
    app.befriend(&ann, &bob).await;
    ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
}
