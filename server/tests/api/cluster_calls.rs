//! Friends calls whose instance stops (several instances): another instance takes each over,
//! the call goes on within its grace, and its record is stored once. Against a real `parlor`
//! process killed with SIGKILL, and in-process instances stopped or frozen.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use app::{
    protocol::{CallEndReason, ClientMsg, ErrorCode, ServerMsg},
    wire::{CallId, CallOutcome},
};
use server::config::Secret;

use crate::{
    helpers::TestApp,
    people::{ring_and_answer, Person, Socket},
};

/// The next `call_peer_connection` of this call: whether the other side is connected.
async fn peer_connected(tab: &mut Socket, call_id: CallId) -> bool {
    tab.next_where(|m| match m {
        ServerMsg::CallPeerConnection {
            call_id: id,
            connected,
        } if id == call_id => Some(connected),
        _ => None,
    })
    .await
}

/// Waits until this call's other side is said to be connected again (after being told it is
/// gone, by the instance that held the call, the one that took it over, or both).
async fn peer_back(tab: &mut Socket, call_id: CallId) {
    assert!(
        !peer_connected(tab, call_id).await,
        "told the other side left"
    );
    while !peer_connected(tab, call_id).await {}
}

/// Asks to carry on `call_id` on `tab` as a browser does after reconnecting: again every
/// second until the server answers (up to 10 s). Whether it did.
async fn resume(tab: &mut Socket, call_id: CallId) -> bool {
    for _ in 0..10 {
        tab.send(&ClientMsg::CallResume { call_id }).await;
        let answered = tokio::time::timeout(
            Duration::from_secs(1),
            tab.next_where(|m| match m {
                ServerMsg::CallResumed { call_id: id, .. } if id == call_id => Some(()),
                _ => None,
            }),
        )
        .await;
        if answered.is_ok() {
            return true;
        }
    }
    false
}

/// Signals go both ways between the two tabs of `call_id`.
async fn signals_cross(a: &mut Socket, b: &mut Socket, call_id: CallId) {
    let signal = |data: &str| ClientMsg::CallSignal {
        call_id,
        data: data.into(),
    };
    a.send(&signal("offer after the move")).await;
    assert_eq!(b.call_signal().await, "offer after the move");
    b.send(&signal("answer after the move")).await;
    assert_eq!(a.call_signal().await, "answer after the move");
}

/// `hanging` hangs up call `id`: `other` hears it and gets the record, and the conversation
/// (read by `who` through `app`) holds exactly one record of it, completed.
async fn hang_up_recorded_once(
    hanging: &mut Socket,
    other: &mut Socket,
    call_id: CallId,
    (app, who, conversation): (&TestApp, &Person, i64),
) {
    hanging.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(other.call_ended().await, (call_id, CallEndReason::HungUp));
    assert_eq!(
        other.call_record().await.call.unwrap().outcome,
        CallOutcome::Completed
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        records(app, who, conversation).await,
        [CallOutcome::Completed]
    );
}

/// The outcomes of the calls recorded in a conversation, as `who` reads its history.
async fn records(app: &TestApp, who: &Person, conversation: i64) -> Vec<CallOutcome> {
    let history = app.history(who, conversation).await;
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["call"].is_null())
        .map(|m| serde_json::from_value(m["call"]["outcome"].clone()).unwrap())
        .collect()
}

/// An answered call between friends: Ann called from the second instance (which holds the
/// call), Bob answered on instance `bob_on`.
struct Call {
    ann: Person,
    bob: Person,
    conversation: i64,
    ann_tab: Socket,
    bob_tab: Socket,
    id: CallId,
}

async fn call_held_by_second(apps: &[TestApp], bob_on: usize) -> Call {
    let (ann, bob, conversation) = apps[0].pair().await;
    let mut ann_tab = apps[1].socket(&ann).await;
    let mut bob_tab = apps[bob_on].socket(&bob).await;
    let id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
    Call {
        ann,
        bob,
        conversation,
        ann_tab,
        bob_tab,
        id,
    }
}

/// The second instance stops as on SIGTERM (the first keeps the shared data directory), and
/// `tab` (on it) with it.
async fn stop_second(apps: &mut Vec<TestApp>, tab: Socket) {
    let second = apps.remove(1);
    drop(tab);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_goes_on_when_the_instance_holding_it_stops() {
    let (_redis, mut apps) = TestApp::cluster(3).await;
    let Call {
        ann,
        conversation,
        ann_tab,
        mut bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 2).await;

    // The instance holding the call (B, where Ann called from) stops, her tab with it.
    stop_second(&mut apps, ann_tab).await;

    // Her browser reconnects to another instance and carries on; Bob hears she left and is
    // back.
    let mut ann_back = apps[0].socket(&ann).await;
    assert!(resume(&mut ann_back, call_id).await, "the call was lost");
    peer_back(&mut bob_tab, call_id).await;
    signals_cross(&mut ann_back, &mut bob_tab, call_id).await;

    // Ann hangs up: both hear it, and the call is recorded once.
    hang_up_recorded_once(
        &mut ann_back,
        &mut bob_tab,
        call_id,
        (&apps[0], &ann, conversation),
    )
    .await;
}

#[tokio::test]
async fn a_side_that_never_comes_back_ends_a_call_taken_over_after_its_grace() {
    let (_redis, mut apps) =
        TestApp::cluster_with(2, |c| c.call_grace = Duration::from_secs(2)).await;
    let Call {
        ann,
        bob,
        conversation,
        ann_tab,
        mut bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 0).await;

    stop_second(&mut apps, ann_tab).await;
    assert!(!peer_connected(&mut bob_tab, call_id).await);
    // Ann does not come back: the instance that took the call over ends it after the grace.
    assert_eq!(
        bob_tab.call_ended().await,
        (call_id, CallEndReason::ConnectionLost)
    );
    assert_eq!(
        bob_tab.call_record().await.call.unwrap().outcome,
        CallOutcome::Completed
    );
    // Both are free again: Ann, back later, can call him.
    let mut ann_later = apps[0].socket(&ann).await;
    ann_later.start_call(bob.id, false).await;
    assert_ne!(ann_later.ringing().await, call_id);
    assert_eq!(
        records(&apps[0], &bob, conversation).await,
        [CallOutcome::Completed]
    );
}

#[tokio::test]
async fn only_its_parties_resume_or_end_a_call_whose_instance_stopped() {
    let (_redis, mut apps) = TestApp::cluster(3).await;
    let Call {
        ann,
        ann_tab,
        mut bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 0).await;
    let cat = apps[0].person("Cat").await;

    stop_second(&mut apps, ann_tab).await;
    // Cat, on the third instance, tries to take Ann's place, or to end the call.
    let mut cat_tab = apps[1].socket(&cat).await;
    cat_tab.send(&ClientMsg::CallResume { call_id }).await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    cat_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    // A made-up call is refused.
    cat_tab
        .send(&ClientMsg::CallResume {
            call_id: CallId(call_id.0 ^ 0xffff),
        })
        .await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    cat_tab
        .none_for(Duration::from_millis(300), |m| {
            matches!(
                m,
                ServerMsg::CallResumed { .. } | ServerMsg::CallSignal { .. }
            )
        })
        .await;

    // Ann comes back: the call is hers, and goes on.
    let mut ann_back = apps[1].socket(&ann).await;
    assert!(resume(&mut ann_back, call_id).await, "the call was lost");
    signals_cross(&mut ann_back, &mut bob_tab, call_id).await;
    // Cat still cannot signal into it, nor hang it up.
    cat_tab
        .send(&ClientMsg::CallSignal {
            call_id,
            data: "sneaky".into(),
        })
        .await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    cat_tab.send(&ClientMsg::CallHangup { call_id }).await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    bob_tab
        .none_for(Duration::from_millis(300), |m| {
            matches!(
                m,
                ServerMsg::CallSignal { .. } | ServerMsg::CallEnded { .. }
            )
        })
        .await;
}

#[tokio::test]
async fn a_call_whose_instance_froze_goes_on_when_asked_again() {
    let (_redis, apps) = TestApp::cluster(3).await;
    let Call {
        ann,
        ann_tab,
        mut bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 0).await;

    // B freezes: it says nothing more (its heartbeat stops), and what is sent to it is lost.
    apps[1].state.cluster.as_ref().unwrap().halt();
    drop(ann_tab);
    // Ann's browser reconnects through C; its first asks go to B and are never answered.
    // Once B is taken for gone (1 s here) and the call taken over, asking again works.
    let mut ann_back = apps[2].socket(&ann).await;
    assert!(resume(&mut ann_back, call_id).await, "the call was lost");
    peer_back(&mut bob_tab, call_id).await;
    signals_cross(&mut ann_back, &mut bob_tab, call_id).await;
}

#[tokio::test]
async fn calls_kept_before_redis_restarted_are_kept_again_and_still_taken_over() {
    let (mut redis, apps) = TestApp::cluster(2).await;
    let Call {
        ann,
        ann_tab,
        mut bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 0).await;

    redis.restart();
    // Both instances find Redis empty and register again (their calls too).
    for app in &apps {
        assert!(app.ready_again().await);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;

    // B freezes (says nothing more): only what it kept again after the restart is left.
    apps[1].state.cluster.as_ref().unwrap().halt();
    drop(ann_tab);
    let mut ann_back = apps[0].socket(&ann).await;
    assert!(
        resume(&mut ann_back, call_id).await,
        "the call was forgotten with Redis"
    );
    signals_cross(&mut ann_back, &mut bob_tab, call_id).await;
}

#[tokio::test]
async fn a_side_that_reconnects_elsewhere_while_redis_restarts_carries_on_its_call() {
    let (mut redis, apps) = TestApp::cluster(3).await;
    let Call {
        ann,
        bob,
        conversation,
        mut ann_tab,
        bob_tab,
        id: call_id,
        ..
    } = call_held_by_second(&apps, 0).await;

    // Redis restarts empty while Bob's connection drops; his browser reconnects to C and
    // asks to carry on (again until answered) while the instances register again.
    redis.restart();
    drop(bob_tab);
    let mut bob_back = apps[2].socket(&bob).await;
    assert!(resume(&mut bob_back, call_id).await, "the call was lost");
    signals_cross(&mut bob_back, &mut ann_tab, call_id).await;
    hang_up_recorded_once(
        &mut bob_back,
        &mut ann_tab,
        call_id,
        (&apps[0], &ann, conversation),
    )
    .await;
}

/// A PostgreSQL database for instances of another process: `PARLOR_TEST_POSTGRES`'s server,
/// or a throwaway one of this test's (stopped when the guard drops).
struct Postgres {
    url: String,
    own: Option<tempfile::TempDir>,
}

impl Postgres {
    async fn start() -> Self {
        use sqlx::Connection;
        let (template, own) = match std::env::var("PARLOR_TEST_POSTGRES") {
            Ok(template) => (template, None),
            Err(_) => {
                let dir = tempfile::tempdir().unwrap();
                let out = Command::new(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../scripts/pg-temp.sh"
                ))
                .arg("start")
                .arg(dir.path())
                .output()
                .expect("scripts/pg-temp.sh runs");
                assert!(
                    out.status.success(),
                    "a throwaway PostgreSQL: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (
                    String::from_utf8(out.stdout).unwrap().trim().to_string(),
                    Some(dir),
                )
            }
        };
        let name = format!(
            "parlor_killed_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut admin = sqlx::PgConnection::connect(&template.replace("{db}", "postgres"))
            .await
            .expect("PostgreSQL answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        Self {
            url: template.replace("{db}", &name),
            own,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/pg-temp.sh"
            ))
            .arg("stop")
            .arg(dir.path())
            .output();
        }
    }
}

/// A `parlor` process joining the cluster of `first` (its data directory, database and
/// Redis), taken for gone 3 s after its last heartbeat; its address once it listens.
fn spawn_instance(first: &TestApp, database: &str, redis: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("PARLOR_ADDR", "127.0.0.1:0")
        .env("PARLOR_DATA_DIR", first.data_path())
        .env("PARLOR_DATABASE_URL", database)
        .env("PARLOR_REDIS_URL", redis)
        .env("PARLOR_INSTANCE_TIMEOUT_SECS", "3")
        .env("PARLOR_TURN", "off")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _log) = crate::binary::listening(&mut child);
    (child, addr)
}

/// Two instances in this process and a third `parlor` process, on one PostgreSQL and one
/// Redis; `messages_per_sec` for the in-process ones' sockets.
struct WithProcess {
    apps: Vec<TestApp>,
    process: Child,
    addr: String,
    // Dropped last: the instances first.
    _redis: testkit::redis::Redis,
    _postgres: Postgres,
}

impl WithProcess {
    async fn start(messages_per_sec: u32) -> Self {
        let postgres = Postgres::start().await;
        let url = postgres.url.clone();
        let (redis, apps) = TestApp::cluster_with(2, move |c| {
            c.database_url = Some(Secret::new(url.clone()));
            c.ws_messages_per_sec = messages_per_sec;
        })
        .await;
        let (process, addr) = spawn_instance(&apps[0], &postgres.url, &redis.url());
        Self {
            apps,
            process,
            addr,
            _redis: redis,
            _postgres: postgres,
        }
    }

    /// A socket of `who` on the process.
    async fn socket(&self, who: &Person) -> Socket {
        let ws = testkit::client::connect(&self.addr, Some(&who.cookie))
            .await
            .expect("a socket on the other process");
        let mut socket = Socket { ws };
        assert!(matches!(socket.next().await, ServerMsg::Welcome { .. }));
        socket
    }

    /// Waits until call `id` is kept in Redis as it stands (a moment after it rang or was
    /// answered): what a process killed after that leaves behind.
    async fn kept(&self, id: CallId, answered: bool) {
        let client = redis::Client::open(self._redis.url()).unwrap();
        let mut redis = client.get_multiplexed_async_connection().await.unwrap();
        for _ in 0..100 {
            let call: Option<String> = redis::cmd("HGET")
                .arg(format!("parlor:call:{id}"))
                .arg("call")
                .query_async(&mut redis)
                .await
                .unwrap();
            if call.is_some_and(|c| c.contains("\"answered_at\":null") != answered) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("call {id} was not kept in Redis");
    }

    /// SIGKILL: no goodbye, no last word in Redis.
    fn kill(&mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }
}

impl Drop for WithProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn a_call_goes_on_when_the_process_holding_it_is_killed() {
    // Room for the flood below.
    let mut cluster = WithProcess::start(1000).await;
    let apps = &cluster.apps;
    let (ann, bob, conversation) = apps[0].pair().await;

    // Ann calls from the other process: it holds the call. Bob answers on A.
    let mut ann_tab = cluster.socket(&ann).await;
    let mut bob_tab = apps[0].socket(&bob).await;
    let call_id = ring_and_answer(&mut ann_tab, &mut bob_tab, bob.id).await;
    signals_cross(&mut ann_tab, &mut bob_tab, call_id).await;

    cluster.kept(call_id, true).await;
    cluster.kill();
    drop(ann_tab);
    let apps = &cluster.apps;

    // Ann's browser reconnects (through the balancer, to B) and asks to carry on, again and
    // again. Until the killed process is taken for gone (3 s after its last heartbeat), the
    // ask waits, once.
    let mut ann_back = apps[1].socket(&ann).await;
    for _ in 0..200 {
        ann_back.send(&ClientMsg::CallResume { call_id }).await;
    }
    let chases = &apps[1].state.cluster.as_ref().unwrap().chases;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(chases.len(), 1, "one wait for the same call and socket");
    // Made-up calls (named after the killed process too) are refused at once.
    for n in 0..50u128 {
        ann_back
            .send(&ClientMsg::CallResume {
                call_id: CallId(call_id.0 ^ (n + 1)),
            })
            .await;
    }
    for _ in 0..50 {
        assert_eq!(ann_back.error_code().await, ErrorCode::NotAllowed);
    }
    assert_eq!(chases.len(), 1);

    // Then B takes the call over, and it goes on.
    ann_back
        .next_where(|m| {
            matches!(m, ServerMsg::CallResumed { call_id: id, .. } if id == call_id).then_some(())
        })
        .await;
    peer_back(&mut bob_tab, call_id).await;
    signals_cross(&mut ann_back, &mut bob_tab, call_id).await;
    for _ in 0..20 {
        if chases.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(chases.is_empty());

    // Bob hangs up on A: the call ends where it is held now, recorded once.
    hang_up_recorded_once(
        &mut bob_tab,
        &mut ann_back,
        call_id,
        (&apps[0], &bob, conversation),
    )
    .await;
}

#[tokio::test]
async fn a_call_still_ringing_from_a_killed_process_stops_ringing_and_is_missed() {
    let mut cluster = WithProcess::start(20).await;
    let apps = &cluster.apps;
    let (ann, bob, conversation) = apps[0].pair().await;
    let mut ann_tab = cluster.socket(&ann).await;
    let mut bob_on_a = apps[0].socket(&bob).await;
    let mut bob_on_b = apps[1].socket(&bob).await;
    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    assert_eq!(bob_on_a.incoming().await.0, call_id);
    assert_eq!(bob_on_b.incoming().await.0, call_id);

    cluster.kept(call_id, false).await;
    cluster.kill();
    drop(ann_tab);
    let apps = &cluster.apps;
    // Every tab stops ringing once the process is taken for gone, and one missed call is
    // recorded.
    for tab in [&mut bob_on_a, &mut bob_on_b] {
        assert_eq!(
            tab.call_ended().await,
            (call_id, CallEndReason::ConnectionLost)
        );
        assert_eq!(
            tab.call_record().await.call.unwrap().outcome,
            CallOutcome::Missed
        );
    }
    // Answering it now is refused, and Bob is free for another call.
    bob_on_b.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(bob_on_b.error_code().await, ErrorCode::NotAllowed);
    let mut ann_back = apps[1].socket(&ann).await;
    ann_back.start_call(bob.id, false).await;
    assert_ne!(ann_back.ringing().await, call_id);
    assert_eq!(
        records(&apps[0], &bob, conversation).await,
        [CallOutcome::Missed]
    );
}
