//! Several instances as one (`PARLOR_REDIS_URL`): two and three real instances on one
//! database and one real Redis, people connected to different instances.

use std::time::Duration;

use app::{
    protocol::{close, CallEndReason, ClientMsg, ErrorCode, ServerMsg},
    strangers::MatchEnd,
    wire::CallOutcome,
};
use serde_json::Value;

use crate::{
    helpers::TestApp,
    people::{ring_and_answer, Person, Socket},
    strangers::{ended, looking, matched, start, stranger_news},
};

fn send(conversation_id: i64, client_id: &str, body: &str) -> ClientMsg {
    ClientMsg::Send {
        conversation_id,
        client_id: client_id.into(),
        body: body.into(),
    }
}

fn presence(user_id: i64, online: bool) -> impl FnMut(ServerMsg) -> Option<Option<String>> {
    move |m| match m {
        ServerMsg::Presence {
            user_id: u,
            online: o,
            last_seen,
        } if u == user_id && o == online => Some(last_seen),
        _ => None,
    }
}

async fn online_in_list(app: &TestApp, who: &Person, friend: i64) -> bool {
    let overview = app.ok_as(who, "/api/friends/list", &[]).await;
    let friends = overview["friends"].as_array().unwrap();
    let entry = friends
        .iter()
        .find(|f| f["user"]["id"] == friend)
        .expect("the friend is listed");
    entry["online"] == Value::Bool(true)
}

#[tokio::test]
async fn friends_on_two_instances_ask_talk_type_read_and_see_each_other_come_and_go() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let ann = a.person("Ann").await;
    let bob = b.person("Bob").await;
    let mut bob_tab = b.socket(&bob).await;

    // A request made through one instance reaches the other's socket, and back.
    assert_eq!(
        a.ok_as(
            &ann,
            "/api/friends/request",
            &[("user_id", &bob.id.to_string())]
        )
        .await,
        "Sent"
    );
    assert_eq!(bob_tab.next().await, ServerMsg::FriendsChanged);
    let mut ann_tab = a.socket(&ann).await;
    let conversation = b
        .ok_as(
            &bob,
            "/api/friends/answer",
            &[("user_id", &ann.id.to_string()), ("accept", "true")],
        )
        .await
        .as_i64()
        .unwrap();
    ann_tab
        .next_where(|m| (m == ServerMsg::FriendsChanged).then_some(()))
        .await;

    // Both online, as seen from either instance.
    assert!(online_in_list(a, &ann, bob.id).await);
    assert!(online_in_list(b, &bob, ann.id).await);

    // Messages live both ways, each stored once.
    ann_tab.send(&send(conversation, "a-1", "hi from A")).await;
    let got = bob_tab.message().await;
    assert_eq!((got.body.as_str(), got.sender_id), ("hi from A", ann.id));
    assert_eq!(ann_tab.message().await.id, got.id, "the sender's own tab");
    bob_tab
        .send(&send(conversation, "b-1", "hello from B"))
        .await;
    let reply = ann_tab.message().await;
    assert_eq!(reply.body, "hello from B");
    bob_tab.message().await;

    // Typing and receipts cross too.
    bob_tab
        .send(&ClientMsg::Typing {
            conversation_id: conversation,
        })
        .await;
    ann_tab
        .next_where(|m| match m {
            ServerMsg::Typing { user_id, .. } if user_id == bob.id => Some(()),
            _ => None,
        })
        .await;
    ann_tab
        .send(&ClientMsg::Receipt {
            conversation_id: conversation,
            delivered_up_to: reply.id,
            read_up_to: reply.id,
        })
        .await;
    let read = bob_tab
        .next_where(|m| match m {
            ServerMsg::Receipt {
                user_id,
                read_up_to,
                ..
            } if user_id == ann.id => Some(read_up_to),
            _ => None,
        })
        .await;
    assert_eq!(read, reply.id);
    let history = b.history(&bob, conversation).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);

    // Ann leaves her instance: Bob, on the other, hears it; she comes back through B.
    ann_tab.ws.close(None).await.unwrap();
    let last_seen = bob_tab.next_where(presence(ann.id, false)).await;
    assert!(last_seen.is_some_and(|at| at.ends_with('Z')));
    assert!(!online_in_list(b, &bob, ann.id).await);
    let _ann_on_b = b.socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;
    assert!(online_in_list(a, &bob, ann.id).await);
}

#[tokio::test]
async fn one_person_on_three_instances_is_online_until_their_last_tab_closes() {
    let (_redis, apps) = TestApp::cluster(3).await;
    let (ann, bob, _) = apps[0].pair().await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let mut tabs = Vec::new();
    for app in &apps {
        tabs.push(app.socket(&ann).await);
    }
    bob_tab.next_where(presence(ann.id, true)).await;
    // Closing two of three: still online, and nobody is told otherwise.
    for mut tab in tabs.drain(..2) {
        tab.ws.close(None).await.unwrap();
    }
    bob_tab
        .none_for(Duration::from_millis(500), |m| {
            matches!(m, ServerMsg::Presence { online: false, .. })
        })
        .await;
    for app in &apps {
        assert!(online_in_list(app, &bob, ann.id).await);
    }
    tabs.pop().unwrap().ws.close(None).await.unwrap();
    bob_tab.next_where(presence(ann.id, false)).await;
    for app in &apps {
        assert!(!online_in_list(app, &bob, ann.id).await);
    }
}

#[tokio::test]
async fn signing_out_everywhere_on_one_instance_closes_the_tabs_on_the_others() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let ann = apps[0].person("Ann").await;
    let mut on_b = apps[1].socket(&ann).await;
    let mut on_a = apps[0].socket(&ann).await;
    apps[0]
        .ok_as(&ann, "/api/auth/sign_out_everywhere", &[])
        .await;
    for tab in [&mut on_a, &mut on_b] {
        let frame = tab.closed().await.expect("a close frame");
        assert_eq!(u16::from(frame.code), close::SESSION_ENDED);
    }
}

#[tokio::test]
async fn an_instance_that_stops_without_a_word_takes_its_people_offline_for_the_others() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (ann, bob, _) = apps[0].pair().await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let _ann_tab = apps[1].socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;
    // Instance B freezes (no heartbeat, nothing published): after its timeout (1 s here),
    // A sweeps it and tells Bob that Ann, who was only there, is gone.
    apps[1].state.cluster.as_ref().unwrap().halt();
    let last_seen = bob_tab.next_where(presence(ann.id, false)).await;
    assert!(last_seen.is_some());
    assert!(!online_in_list(&apps[0], &bob, ann.id).await);
}

#[tokio::test]
async fn after_redis_restarts_empty_the_instances_register_their_people_again() {
    let (mut redis, apps) = TestApp::cluster(2).await;
    let (ann, bob, conversation) = apps[0].pair().await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let mut ann_tab = apps[1].socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;

    redis.stop();
    for app in &apps {
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 503);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["redis"], "unavailable", "{body}");
        assert_eq!(body["database"], "ok", "{body}");
    }
    redis.restart();
    // Back without restarting Parlor: ready, and presence and delivery work again once the
    // heartbeat (200 ms here) finds Redis empty and registers everyone again.
    for app in &apps {
        assert!(app.ready_again().await, "an instance did not come back");
    }
    let mut delivered = false;
    for n in 0..50 {
        ann_tab
            .send(&send(conversation, &format!("again-{n}"), "still there?"))
            .await;
        ann_tab.message().await;
        if tokio::time::timeout(Duration::from_millis(200), bob_tab.message())
            .await
            .is_ok()
        {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "messages cross instances again");
    let mut online = false;
    for _ in 0..50 {
        if online_in_list(&apps[0], &bob, ann.id).await {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(online, "Ann is online again as seen from A");
}

#[tokio::test]
async fn a_stopping_instance_sends_its_tabs_elsewhere_and_leaves_at_once() {
    let (_redis, mut apps) = TestApp::cluster(2).await;
    let (ann, bob, conversation) = apps[0].pair().await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let mut ann_tab = apps[1].socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;

    let b = apps.pop().unwrap();
    let stopping = tokio::spawn(b.shutdown());
    let frame = ann_tab.closed().await.expect("a close frame");
    assert_eq!(
        u16::from(frame.code),
        close::GOING_AWAY,
        "reconnect elsewhere"
    );
    stopping.await.unwrap().expect("clean shutdown");
    // Told at once, not after the instance timeout.
    let started = std::time::Instant::now();
    bob_tab.next_where(presence(ann.id, false)).await;
    assert!(started.elapsed() < Duration::from_millis(900));

    // Her browser reconnects, lands on A, and carries on.
    let mut ann_tab = apps[0].socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;
    ann_tab.send(&send(conversation, "after", "back")).await;
    assert_eq!(bob_tab.message().await.body, "back");
}

#[tokio::test]
async fn a_call_rings_on_both_instances_is_answered_on_the_other_and_carries_signals() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let (ann, bob, _) = a.pair().await;
    let cat = b.person("Cat").await;
    let mut ann_tab = a.socket(&ann).await;
    let mut bob_on_a = a.socket(&bob).await;
    let mut bob_on_b = b.socket(&bob).await;
    let mut cat_on_b = b.socket(&cat).await;

    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    // Every tab of Bob rings, on either instance.
    assert_eq!(bob_on_a.incoming().await.0, call_id);
    assert_eq!(bob_on_b.incoming().await.0, call_id);

    // Cat, on B, cannot answer or signal into it: the instance holding it says no.
    cat_on_b.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(cat_on_b.error_code().await, ErrorCode::NotAllowed);
    cat_on_b
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(cat_on_b.error_code().await, ErrorCode::NotAllowed);

    // Bob answers on B: both sides hear it, his tab on A is told it was answered elsewhere.
    bob_on_b.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(ann_tab.accepted().await, (call_id, true));
    assert_eq!(bob_on_b.accepted().await, (call_id, false));
    assert_eq!(
        bob_on_a.call_ended().await,
        (call_id, CallEndReason::AnsweredElsewhere)
    );
    let signal = |data: &str| ClientMsg::CallSignal {
        call_id,
        data: data.into(),
    };
    ann_tab.send(&signal("offer from A")).await;
    assert_eq!(bob_on_b.call_signal().await, "offer from A");
    bob_on_b.send(&signal("answer from B")).await;
    assert_eq!(ann_tab.call_signal().await, "answer from B");
    // Bob hangs up from B: both ends hear it, and the record reaches both conversations.
    bob_on_b.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(ann_tab.call_ended().await, (call_id, CallEndReason::HungUp));
    assert_eq!(
        ann_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Completed
    );
    assert_eq!(
        bob_on_b.call_record().await.call.unwrap().outcome,
        CallOutcome::Completed
    );
}

#[tokio::test]
async fn a_call_resumes_on_a_third_instance() {
    let (_redis, apps) = TestApp::cluster(3).await;
    let (ann, bob, _) = apps[0].pair().await;
    let mut ann_tab = apps[0].socket(&ann).await;
    let mut bob_tab = apps[1].socket(&bob).await;
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;

    // Bob's connection drops on B; the instance holding the call (A) hears it and waits.
    drop(bob_tab);
    let connected = ann_tab
        .next_where(|m| match m {
            ServerMsg::CallPeerConnection { connected, .. } => Some(connected),
            _ => None,
        })
        .await;
    assert!(!connected);
    // He comes back on C and takes his side again.
    let mut bob_back = apps[2].socket(&bob).await;
    bob_back.send(&ClientMsg::CallResume { call_id }).await;
    bob_back
        .next_where(|m| matches!(m, ServerMsg::CallResumed { .. }).then_some(()))
        .await;
    ann_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "restart ice".into(),
        })
        .await;
    assert_eq!(bob_back.call_signal().await, "restart ice");
    // (When A, holding the call, stops, another instance takes it over: `cluster_calls`.)
}

#[tokio::test]
async fn blocking_through_another_instance_ends_the_call_where_it_is_held() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (ann, bob, _) = apps[0].pair().await;
    let mut ann_tab = apps[0].socket(&ann).await;
    let mut bob_tab = apps[1].socket(&bob).await;
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;

    // Bob blocks Ann through B; the call lives on A.
    apps[1]
        .ok_as(
            &bob,
            "/api/friends/block",
            &[("user_id", &ann.id.to_string())],
        )
        .await;
    assert_eq!(ann_tab.call_ended().await.0, call_id);
    assert_eq!(bob_tab.call_ended().await.0, call_id);
}

#[tokio::test]
async fn strangers_on_different_instances_are_matched_chat_move_on_and_leave() {
    let (_redis, apps) = TestApp::cluster(3).await;
    // The first instance runs strangers; these two are on the others.
    let (a_guest, b_guest) = (apps[1].guest().await, apps[2].guest().await);
    let mut a = apps[1].socket(&a_guest).await;
    let mut b = apps[2].socket(&b_guest).await;
    a.send(&start(&[])).await;
    assert!(looking(&mut a).await);
    b.send(&start(&[])).await;
    let (_, call_id, a_offers) = matched(&mut a).await;
    let (_, b_call, b_offers) = matched(&mut b).await;
    assert_eq!(call_id, b_call);
    assert!(a_offers && !b_offers);

    a.send(&ClientMsg::StrangerChat {
        text: "hi B".into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut b).await,
        ServerMsg::StrangerChat {
            text: "hi B".into()
        }
    );
    b.send(&ClientMsg::StrangerChat {
        text: "hi A".into(),
    })
    .await;
    assert_eq!(
        stranger_news(&mut a).await,
        ServerMsg::StrangerChat {
            text: "hi A".into()
        }
    );
    // The match's call, held where strangers run, carries their signals.
    let relay = serde_json::json!({"kind": "candidate",
        "candidate": "candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 203.0.113.7 rport 61000",
        "mid": "0", "index": 0})
    .to_string();
    a.send(&ClientMsg::CallSignal {
        call_id,
        data: relay,
    })
    .await;
    let relayed = b.call_signal().await;
    assert!(relayed.contains("198.51.100.9") && !relayed.contains("203.0.113.7"));

    // Next from B: A hears it ended and looks again. A stops; C, on the first instance,
    // meets B.
    b.send(&ClientMsg::StrangerNext).await;
    assert_eq!(ended(&mut a).await, app::strangers::MatchEnd::Next);
    a.send(&ClientMsg::StrangerStop).await;
    let runner = &apps[0].state;
    for _ in 0..100 {
        if runner.strangers.counts() == (1, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runner.strangers.counts(), (1, 0), "only B looks");
    let c_guest = apps[0].guest().await;
    let mut c = apps[0].socket(&c_guest).await;
    c.send(&start(&[])).await;
    let (_, c_call, _) = matched(&mut c).await;
    let b_call = b
        .next_where(|m| match m {
            ServerMsg::CallOpened { call_id, .. } => Some(call_id),
            _ => None,
        })
        .await;
    assert_eq!(b_call, c_call);

    // B's tab closes on its instance: C hears at once that the connection dropped.
    drop(b);
    let dropped = c
        .next_where(|m| match m {
            ServerMsg::CallPeerConnection { call_id, connected } => Some((call_id, connected)),
            _ => None,
        })
        .await;
    assert_eq!(dropped, (c_call, false));
}

#[tokio::test]
async fn a_thousand_starts_over_three_instances_are_each_matched_once_and_never_with_a_leaver() {
    const PEOPLE: usize = 1000;
    const LEAVERS: usize = 50;
    let (_redis, apps) = TestApp::cluster_with(3, |config| {
        config.guests_per_ip = 100_000;
        config.trusted_proxies =
            app::server::auth::proxy::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    // Each person from an address of their own (behind the trusted proxy), spread over the
    // instances.
    let mut n = 0u32;
    let mut connect = |count: usize| {
        let apps = &apps;
        let start_at = n;
        n += count as u32;
        async move {
            let mut sockets = Vec::new();
            for i in 0..count {
                let k = start_at + i as u32;
                let app = &apps[k as usize % apps.len()];
                let person = app.guest().await;
                let address = format!("10.{}.{}.{}", k >> 16 & 255, k >> 8 & 255, k & 255);
                sockets.push(app.socket_from(&person, &address).await);
            }
            sockets
        }
    };
    // Leavers look (each for an interest of their own, so they do not meet each other while
    // they go), then close their tabs; they must be gone from the queue before anyone starts.
    for (i, mut leaver) in connect(LEAVERS).await.into_iter().enumerate() {
        leaver.send(&start(&[&format!("leaver{i}")])).await;
        assert!(!looking(&mut leaver).await);
        drop(leaver);
    }
    let runner = &apps[0].state;
    for _ in 0..100 {
        if runner.strangers.counts() == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runner.strangers.counts(), (0, 0), "leavers left the queue");

    let sockets = connect(PEOPLE).await;
    let results =
        futures::future::join_all(sockets.into_iter().map(|mut socket: Socket| async move {
            socket.send(&start(&[])).await;
            let (_, call_id, _) = loop {
                match stranger_news(&mut socket).await {
                    ServerMsg::StrangerLooking { .. } => continue,
                    ServerMsg::StrangerMatched { .. } => {
                        break socket
                            .next_where(|m| match m {
                                ServerMsg::CallOpened {
                                    call_id, you_offer, ..
                                } => Some(((), call_id, you_offer)),
                                _ => None,
                            })
                            .await
                    }
                    other => panic!("expected a match, got {other:?}"),
                }
            };
            (call_id, socket)
        }))
        .await;
    let mut sides = std::collections::HashMap::<_, usize>::new();
    for (call_id, _) in &results {
        *sides.entry(*call_id).or_default() += 1;
    }
    assert_eq!(sides.len(), PEOPLE / 2, "every one matched, in pairs");
    assert!(
        sides.values().all(|&n| n == 2),
        "no self, duplicate or leaver pairs"
    );
    assert_eq!(runner.strangers.counts(), (0, PEOPLE / 2));
}

#[tokio::test]
async fn someone_in_a_call_held_elsewhere_is_busy_for_every_instance() {
    let (_redis, apps) = TestApp::cluster(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let (ann, bob, _) = a.pair().await;
    let cat = b.person("Cat").await;
    b.befriend(&cat, &bob).await;
    let mut ann_tab = a.socket(&ann).await;
    let mut bob_tab = b.socket(&bob).await;
    let mut cat_tab = b.socket(&cat).await;
    // Ann (on A) and Bob (on B) are in a call A holds.
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;

    // Cat, on B, rings Bob: busy, as if the call were on B; a missed call is recorded.
    let request = cat_tab.start_call(bob.id, true).await;
    assert_eq!(cat_tab.call_refused().await, (request, CallEndReason::Busy));
    assert_eq!(
        cat_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Missed
    );
    // Bob cannot start another call from B either.
    let request = bob_tab.start_call(cat.id, true).await;
    assert_eq!(
        bob_tab.call_refused().await,
        (request, CallEndReason::NotAllowed)
    );

    // Once the call is over, Cat gets through.
    ann_tab.send(&ClientMsg::CallHangup { call_id }).await;
    bob_tab.call_ended().await;
    let mut rang = false;
    for _ in 0..50 {
        cat_tab.start_call(bob.id, true).await;
        match cat_tab
            .next_where(|m| match m {
                ServerMsg::CallRinging { call_id, .. } => Some(Ok(call_id)),
                ServerMsg::CallRefused { .. } => Some(Err(())),
                _ => None,
            })
            .await
        {
            Ok(_) => {
                rang = true;
                break;
            }
            Err(()) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(rang, "Bob is free once the call ended");
}

#[tokio::test]
async fn a_ban_decided_through_another_instance_ends_the_match_where_strangers_run() {
    let (_redis, apps) = TestApp::cluster_with(2, |config| {
        config.admin_emails = vec!["mod@example.com".into()];
        config.trusted_proxies =
            app::server::auth::proxy::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    // Strangers run on the first instance; the guests (each from an address of their own)
    // and the moderator are on the second.
    let b = &apps[1];
    let moderator = b.person("Mod").await;
    let (eve_guest, ann_guest) = (b.guest().await, b.guest().await);
    let mut eve = b.socket_from(&eve_guest, "198.51.100.1").await;
    let mut ann = b.socket_from(&ann_guest, "198.51.100.2").await;
    eve.send(&start(&[])).await;
    assert!(looking(&mut eve).await);
    ann.send(&start(&[])).await;
    matched(&mut eve).await;
    matched(&mut ann).await;
    ann.send(&ClientMsg::StrangerReport {
        reason: app::strangers::ReportReason::Spam,
        note: String::new(),
        include_chat: false,
    })
    .await;
    assert_eq!(stranger_news(&mut ann).await, ServerMsg::StrangerReported);

    let reports = b
        .ok_as(&moderator, "/api/moderation/reports", &[("all", "false")])
        .await;
    let id = reports["reports"][0]["id"].as_i64().unwrap().to_string();
    let until = b
        .ok_as(
            &moderator,
            "/api/moderation/ban",
            &[("report_id", &id), ("hours", "24")],
        )
        .await;
    assert_eq!(
        stranger_news(&mut eve).await,
        ServerMsg::StrangerBanned {
            until: until.as_str().unwrap().into()
        }
    );
    assert_eq!(ended(&mut ann).await, app::strangers::MatchEnd::Left);
    assert_eq!(apps[0].state.strangers.counts(), (0, 0));
}

#[tokio::test]
async fn an_instance_gone_mid_conversation_loses_and_repeats_no_stored_message() {
    let (_redis, mut apps) = TestApp::cluster(3).await;
    let (ann, bob, conversation) = apps[0].pair().await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let mut ann_tab = apps[1].socket(&ann).await;
    bob_tab.next_where(presence(ann.id, true)).await;

    // Ann sends twenty; her instance goes before her browser saw most of the echoes.
    for n in 0..20 {
        ann_tab
            .send(&send(
                conversation,
                &format!("m-{n}"),
                &format!("message {n}"),
            ))
            .await;
    }
    let mut echoed = std::collections::HashSet::new();
    for _ in 0..5 {
        echoed.insert(ann_tab.message().await.client_id);
    }
    let gone = apps.remove(1);
    gone.state.cluster.as_ref().unwrap().halt();
    drop(ann_tab);
    gone.shutdown().await.expect("the instance stops");

    // Her browser reconnects to another instance and sends again what it has no echo for
    // (the same client ids), as its outbox does.
    let mut ann_tab = apps[1].socket(&ann).await;
    let resent: Vec<String> = (0..20)
        .map(|n| format!("m-{n}"))
        .filter(|id| !echoed.contains(id))
        .collect();
    for id in &resent {
        let n = id.trim_start_matches("m-");
        ann_tab
            .send(&send(conversation, id, &format!("message {n}")))
            .await;
    }
    for _ in &resent {
        ann_tab.message().await;
    }

    // Stored once each, in the order sent.
    let history = apps[0].history(&bob, conversation).await;
    let stored: Vec<String> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("m-{n}")).collect();
    assert_eq!(stored, expected);

    // Bob, on the instance that stayed, has all of them: live, and by catching up.
    bob_tab.send(&ClientMsg::Resume { after: 0 }).await;
    let backlog = bob_tab
        .next_where(|m| match m {
            ServerMsg::Backlog { messages, .. } => Some(messages),
            _ => None,
        })
        .await;
    let caught_up: Vec<String> = backlog.into_iter().map(|m| m.client_id).collect();
    assert_eq!(caught_up, expected);
}

#[tokio::test]
async fn when_the_instance_running_strangers_stops_everyone_there_is_told_and_can_look_again() {
    let (_redis, apps) = TestApp::cluster(3).await;
    // The first instance runs strangers: a pair on the others is matched there, and a third
    // person waits there for a rare interest.
    let (one, two, three) = (
        apps[1].guest().await,
        apps[2].guest().await,
        apps[2].guest().await,
    );
    let mut a = apps[1].socket(&one).await;
    let mut b = apps[2].socket(&two).await;
    let mut c = apps[2].socket(&three).await;
    a.send(&start(&[])).await;
    assert!(looking(&mut a).await);
    b.send(&start(&[])).await;
    matched(&mut a).await;
    matched(&mut b).await;
    c.send(&start(&["a rare interest"])).await;
    looking(&mut c).await;

    // It stops without a word: once the others take it for gone (1 s here), everyone whose
    // looking or match was there is told, instead of waiting for nothing.
    apps[0].state.cluster.as_ref().unwrap().halt();
    for socket in [&mut a, &mut b, &mut c] {
        assert_eq!(ended(socket).await, MatchEnd::ServerLost);
    }
    // Looking again works on the instance that runs strangers now.
    a.send(&start(&[])).await;
    assert!(looking(&mut a).await);
    c.send(&start(&[])).await;
    matched(&mut a).await;
    matched(&mut c).await;
}
