//! The built-in TURN server: credentials minted for each side of a call reach that side only
//! and end with the call, allocations
//! relay between two clients through it (its own relay addresses are allowed peers even on
//! loopback), other loopback or private peers are never relayed to, and expired, forged or
//! malformed credentials are refused. A real TURN client (webrtc-rs) over real UDP, and over
//! TCP (framed as RFC 8656 says) where UDP is blocked.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use app::{
    protocol::{ClientMsg, ErrorCode, IceServer, ServerMsg},
    server::metrics::PoolUse,
    wire::CallId,
};
use server::turn::tcp::{framed, read_frame};
use server::{
    config::{Secret, TurnSettings},
    turn::{credentials::now_secs, TurnSecret},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{tcp, TcpStream, UdpSocket},
    sync::Mutex,
};
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

use crate::{helpers::TestApp, people::Socket};

const SECRET: &str = "a-turn-secret-of-at-least-32-characters";

/// An app with the TURN server on, once its start-up self-test is over (so its allocations
/// are not counted in a test's).
async fn turn_app(allowed_peers: &str) -> TestApp {
    let app = turn_app_starting(allowed_peers).await;
    for _ in 0..50 {
        let text = metrics(&app);
        if sample(&text, "parlor_turn_self_test_ok") == Some(1)
            && sample(&text, "parlor_turn_allocations") == Some(0)
        {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the TURN self-test did not pass: {}", metrics(&app));
}

async fn turn_app_starting(allowed_peers: &str) -> TestApp {
    turn_app_announcing("127.0.0.1", allowed_peers).await
}

/// An app whose TURN server listens on 127.0.0.1 and tells browsers it is at `public_ip`.
async fn turn_app_announcing(public_ip: &str, allowed_peers: &str) -> TestApp {
    let settings = turn_settings(public_ip, allowed_peers);
    TestApp::spawn_with(move |c| c.turn = Some(settings)).await
}

fn turn_settings(public_ip: &str, allowed_peers: &str) -> TurnSettings {
    TurnSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        public_ip: public_ip.parse().unwrap(),
        relay_ports: (20_000, 60_000),
        secret: Some(Secret::new(SECRET)),
        credential_ttl: Duration::from_secs(3 * 3600),
        allowed_peers: allowed_peers
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap())
            .collect(),
        after_call: Duration::from_millis(300),
    }
}

async fn client(app: &TestApp, username: &str, password: &str) -> Client {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    client_on(app, conn, username, password).await
}

/// A TURN client that reaches the server over TCP.
async fn tcp_client(app: &TestApp, username: &str, password: &str) -> Client {
    let stream = TcpStream::connect(app.turn_addr.unwrap()).await.unwrap();
    client_on(app, Arc::new(TcpClient::new(stream)), username, password).await
}

async fn client_on(
    app: &TestApp,
    conn: Arc<dyn Conn + Send + Sync>,
    username: &str,
    password: &str,
) -> Client {
    let turn = app.turn_addr.unwrap().to_string();
    let client = Client::new(ClientConfig {
        stun_serv_addr: turn.clone(),
        turn_serv_addr: turn,
        username: username.into(),
        password: password.into(),
        realm: "parlor".into(),
        software: "parlor-test".into(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

fn credentials(principal: &str, expires: u64) -> (String, String) {
    TurnSecret::new(SECRET.as_bytes()).mint(principal, expires)
}

/// Waits a moment for one datagram.
async fn heard(conn: &(impl Conn + ?Sized), within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 1500];
    let (n, from) = tokio::time::timeout(within, conn.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some((buf[..n].to_vec(), from))
}

fn metrics(app: &TestApp) -> String {
    app.state.metrics.render(PoolUse { open: 0, idle: 0 })
}

/// The value of the sample line `name <value>` (not its `# HELP` line).
fn sample(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// The built-in TURN server's entry of a list: its username and password.
fn turn_entry(list: &[IceServer], turn_port: u16) -> (String, String) {
    let entry = list
        .iter()
        .find(|e| e.urls.iter().any(|u| u.starts_with("turn:")))
        .unwrap_or_else(|| panic!("no TURN entry in {list:?}"));
    assert_eq!(
        entry.urls,
        [
            format!("turn:127.0.0.1:{turn_port}?transport=udp"),
            format!("turn:127.0.0.1:{turn_port}?transport=tcp")
        ]
    );
    (
        entry.username.clone().unwrap(),
        entry.credential.clone().unwrap(),
    )
}

/// What a call's answer carries for its side: the STUN/TURN servers.
fn accepted_ice(message: ServerMsg) -> Option<Vec<IceServer>> {
    match message {
        ServerMsg::CallAccepted { ice_servers, .. } => Some(ice_servers),
        _ => None,
    }
}

/// Ann calls Bob (friends, each with a socket) and Bob answers: the sockets, the call, and the
/// STUN/TURN servers each side got with the answer.
async fn answered_call(app: &TestApp) -> (Socket, Socket, CallId, Vec<IceServer>, Vec<IceServer>) {
    let (ann, bob, _) = app.pair().await;
    let mut ann_tab = app.socket(&ann).await;
    let mut bob_tab = app.socket(&bob).await;
    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    bob_tab.send(&ClientMsg::CallAccept { call_id }).await;
    let ann_ice = ann_tab.next_where(accepted_ice).await;
    let bob_ice = bob_tab.next_where(accepted_ice).await;
    (ann_tab, bob_tab, call_id, ann_ice, bob_ice)
}

/// Whether `username`/`password` get an allocation (given back at once).
async fn allocates(app: &TestApp, username: &str, password: &str) -> bool {
    let client = client(app, username, password).await;
    let allocated = match client.allocate().await {
        Ok(relay) => {
            relay.close().await.unwrap();
            true
        }
        Err(_) => false,
    };
    client.close().await.unwrap();
    allocated
}

#[tokio::test]
async fn each_side_of_a_call_gets_credentials_bound_to_it_that_end_with_the_call() {
    let app = turn_app("").await;
    let port = app.turn_addr.unwrap().port();
    let (ann, bob, _) = app.pair().await;
    let cat = app.person("Cat").await;
    // Being connected is not enough: the welcome carries no TURN credentials.
    let mut ann_tab = app.try_socket(Some(&ann.cookie)).await.unwrap();
    let ServerMsg::Welcome { ice_servers, .. } = ann_tab.next().await else {
        panic!("expected a welcome");
    };
    assert_eq!(ice_servers, []);
    let mut bob_tab = app.socket(&bob).await;
    let mut cat_tab = app.socket(&cat).await;

    ann_tab.start_call(bob.id, true).await;
    let call_id = ann_tab.ringing().await;
    bob_tab.incoming().await;
    // Someone else cannot answer it, so gets nothing for it.
    cat_tab.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(cat_tab.error_code().await, ErrorCode::NotAllowed);
    bob_tab.send(&ClientMsg::CallAccept { call_id }).await;
    let (ann_user, ann_pass) = turn_entry(&ann_tab.next_where(accepted_ice).await, port);
    let (bob_user, bob_pass) = turn_entry(&bob_tab.next_where(accepted_ice).await, port);
    // Each side's credentials name that side and this call, and work for the few hours.
    for (username, id) in [(&ann_user, ann.id), (&bob_user, bob.id)] {
        let (expiry, label) = username.split_once(':').unwrap();
        assert_eq!(label, format!("u{id}@{call_id}"));
        let lifetime = expiry.parse::<u64>().unwrap() - now_secs();
        assert!((3 * 3600 - 60..=3 * 3600).contains(&lifetime), "{lifetime}");
    }
    assert!(allocates(&app, &ann_user, &ann_pass).await);
    assert!(allocates(&app, &bob_user, &bob_pass).await);

    // Properly signed credentials for someone who is not a party of this call, for a call
    // that does not exist, or bound to nothing are refused.
    for label in [
        format!("u{}@{call_id}", cat.id),
        format!("u{}@{:032x}", ann.id, 7),
        format!("u{}", ann.id),
        "guest".to_string(),
    ] {
        let (username, password) = credentials(&label, now_secs() + 600);
        assert!(!allocates(&app, &username, &password).await, "{label}");
    }

    // Once the call is over its credentials work a moment longer (closing browsers give
    // their allocations back with them), then stop.
    ann_tab.send(&ClientMsg::CallHangup { call_id }).await;
    bob_tab.call_ended().await;
    assert!(allocates(&app, &bob_user, &bob_pass).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!allocates(&app, &ann_user, &ann_pass).await);
    assert!(!allocates(&app, &bob_user, &bob_pass).await);
    let text = metrics(&app);
    assert!(
        text.contains("parlor_refused_total{reason=\"turn_credentials_ended\"}"),
        "{text}"
    );
    assert_eq!(sample(&text, "parlor_turn_allocations"), Some(0), "{text}");
}

#[tokio::test]
async fn matched_guests_get_credentials_for_their_side_and_fresh_ones_after_coming_back() {
    let app = turn_app("").await;
    let port = app.turn_addr.unwrap().port();
    let (first, mut a) = crate::strangers::guest(&app).await;
    let (_, mut b) = crate::strangers::guest(&app).await;
    a.send(&crate::strangers::start(&[])).await;
    assert!(crate::strangers::looking(&mut a).await);
    b.send(&crate::strangers::start(&[])).await;
    let opened = |m| match m {
        ServerMsg::CallOpened {
            call_id,
            ice_servers,
            ..
        } => Some((call_id, ice_servers)),
        _ => None,
    };
    let (call_id, a_ice) = a.next_where(opened).await;
    let (_, b_ice) = b.next_where(opened).await;
    let (a_user, a_pass) = turn_entry(&a_ice, port);
    let (b_user, _) = turn_entry(&b_ice, port);
    assert_ne!(a_user, b_user);
    let label = a_user.split_once(':').unwrap().1;
    assert!(
        label.starts_with('g') && label.ends_with(&format!("@{call_id}")),
        "{label}"
    );
    assert!(allocates(&app, &a_user, &a_pass).await);

    // The first guest's connection drops and comes back: new credentials for the restart.
    drop(a);
    let mut back = app.socket(&first).await;
    back.send(&ClientMsg::CallResume { call_id }).await;
    let resumed = back
        .next_where(|m| match m {
            ServerMsg::CallResumed { ice_servers, .. } => Some(ice_servers),
            _ => None,
        })
        .await;
    let (user, pass) = turn_entry(&resumed, port);
    assert_eq!(user.split_once(':').unwrap().1, label);
    assert!(allocates(&app, &user, &pass).await);
}

#[tokio::test]
async fn a_code_rooms_credentials_name_a_tag_not_the_room_and_end_with_it() {
    let app = TestApp::spawn_with(|c| {
        c.turn = Some(turn_settings("127.0.0.1", ""));
        c.code_ttl = Duration::from_millis(300);
    })
    .await;
    let port = app.turn_addr.unwrap().port();
    let room = app.room().await;
    let anyone = app.browser();
    let response = app
        .call(&anyone, "/api/codes/ice", &[("app_id", room.as_str())])
        .await;
    assert_eq!(response.status(), 200);
    let servers: Vec<IceServer> = response.json().await.unwrap();
    let (username, password) = turn_entry(&servers, port);
    let label = username.split_once(':').unwrap().1;
    assert!(label.starts_with("code@"), "{label}");
    // The room's id is the secret of its two sides: it never travels in TURN's clear text.
    let bare: String = room.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(
        !label.contains(&room) && !bare.contains(&label[5..]),
        "{label}"
    );
    assert!(allocates(&app, &username, &password).await);
    // Nobody joined: the room expires, and its credentials with it.
    let mut refused = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !allocates(&app, &username, &password).await {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the room's credentials still work after it expired"
    );
}

#[tokio::test]
async fn an_external_turn_server_gets_credentials_minted_with_the_shared_secret() {
    let app = TestApp::spawn_with(|c| {
        c.turn = None;
        c.external_turn = Some(server::config::ExternalTurn {
            urls: vec!["turns:turn.example.com:443?transport=tcp".into()],
            secret: Secret::new(SECRET),
            credential_ttl: Duration::from_secs(600),
        });
    })
    .await;
    // The answer comes with the external server's entry, for Ann's side of this call.
    let (_, _, call_id, ice_servers, _) = answered_call(&app).await;
    let [external] = &ice_servers[..] else {
        panic!("only the external entry: {ice_servers:?}");
    };
    assert_eq!(external.urls, ["turns:turn.example.com:443?transport=tcp"]);
    let username = external.username.as_deref().unwrap();
    let (expiry, label) = username.split_once(':').unwrap();
    assert!(
        label.starts_with('u') && label.ends_with(&format!("@{call_id}")),
        "{username}"
    );
    let lifetime = expiry.parse::<u64>().unwrap() - now_secs();
    assert!((540..=600).contains(&lifetime), "{lifetime}");
    // What coturn with use-auth-secret computes from the same secret.
    assert_eq!(
        external.credential.as_deref(),
        Some(
            TurnSecret::new(SECRET.as_bytes())
                .password(username)
                .as_str()
        )
    );
}

#[tokio::test]
async fn two_clients_meet_through_their_relays_and_loopback_peers_are_never_reached() {
    let app = turn_app("").await;
    let (user_a, pass_a) = credentials("test", now_secs() + 600);
    let (user_b, pass_b) = credentials("test", now_secs() + 600);
    let a = client(&app, &user_a, &pass_a).await;
    let b = client(&app, &user_b, &pass_b).await;
    let relay_a = a.allocate().await.unwrap();
    let relay_b = b.allocate().await.unwrap();
    let (addr_a, addr_b) = (relay_a.local_addr().unwrap(), relay_b.local_addr().unwrap());
    assert_eq!(addr_a.ip().to_string(), "127.0.0.1");
    let text = metrics(&app);
    assert_eq!(sample(&text, "parlor_turn_allocations"), Some(2), "{text}");

    // Each side sends once (which also permits the other), then both hear each other.
    relay_a.send_to(b"hello from a", addr_b).await.unwrap();
    relay_b.send_to(b"hello from b", addr_a).await.unwrap();
    let mut got_a = None;
    let mut got_b = None;
    for _ in 0..10 {
        relay_a.send_to(b"hello from a", addr_b).await.unwrap();
        relay_b.send_to(b"hello from b", addr_a).await.unwrap();
        got_b = got_b.or(heard(&relay_b, Duration::from_millis(200)).await);
        got_a = got_a.or(heard(&relay_a, Duration::from_millis(200)).await);
        if got_a.is_some() && got_b.is_some() {
            break;
        }
    }
    assert_eq!(
        got_b.expect("b heard a"),
        (b"hello from a".to_vec(), addr_a)
    );
    assert_eq!(
        got_a.expect("a heard b"),
        (b"hello from b".to_vec(), addr_b)
    );
    let relayed = metrics(&app);
    assert!(
        sample(&relayed, "parlor_turn_relayed_bytes_total") > Some(0),
        "{relayed}"
    );

    // A plain socket on loopback (as the server's own services would be) hears nothing.
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..5 {
        relay_a
            .send_to(b"knock knock", target.local_addr().unwrap())
            .await
            .unwrap();
    }
    assert_eq!(heard(&target, Duration::from_millis(500)).await, None);
    assert!(metrics(&app).contains("parlor_refused_total{reason=\"turn_peer_denied\"}"));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn an_allowed_block_is_relayed_to_which_shows_the_policy_is_what_blocks() {
    let app = turn_app("127.0.0.0/8").await;
    let (user, pass) = credentials("test", now_secs() + 600);
    let a = client(&app, &user, &pass).await;
    let relay = a.allocate().await.unwrap();
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut got = None;
    for _ in 0..10 {
        relay
            .send_to(b"knock knock", target.local_addr().unwrap())
            .await
            .unwrap();
        got = heard(&target, Duration::from_millis(200)).await;
        if got.is_some() {
            break;
        }
    }
    assert_eq!(got.expect("the allowed peer heard it").0, b"knock knock");
    a.close().await.unwrap();
}

#[tokio::test]
async fn expired_forged_and_malformed_credentials_are_refused() {
    let app = turn_app("").await;
    let (expired_user, expired_pass) = credentials("test", now_secs() - 1);
    let (user, _) = credentials("test", now_secs() + 600);
    let forged = TurnSecret::new(b"another-secret-of-at-least-32-characters").password(&user);
    let unsigned = credentials("test", now_secs() + 600).1;
    for (username, password, why) in [
        (expired_user.as_str(), expired_pass.as_str(), "expired"),
        (user.as_str(), forged.as_str(), "signed with another secret"),
        ("u1", unsigned.as_str(), "no expiry"),
        ("9999999999:", unsigned.as_str(), "no principal"),
    ] {
        let client = client(&app, username, password).await;
        assert!(client.allocate().await.is_err(), "{why}");
        client.close().await.unwrap();
    }
    let text = metrics(&app);
    assert!(text.contains("turn_credentials_expired"), "{text}");
    assert!(text.contains("turn_credentials_malformed"), "{text}");
    assert_eq!(sample(&text, "parlor_turn_allocations"), Some(0), "{text}");
}

#[tokio::test]
async fn the_server_checks_at_start_that_it_relays_and_gives_the_allocations_back() {
    // `turn_app` waits for the self-test to pass and its allocations to be gone (and fails if
    // they do not); the gauge says so too.
    let app = turn_app("").await;
    assert_eq!(sample(&metrics(&app), "parlor_turn_self_test_ok"), Some(1));
}

#[tokio::test]
async fn a_server_announcing_an_address_it_is_not_reachable_at_fails_its_self_test() {
    // Listening on 127.0.0.1, announcing 127.0.0.2: no browser could reach it there.
    let app = turn_app_announcing("127.0.0.2", "").await;
    assert_eq!(sample(&metrics(&app), "parlor_turn_self_test_ok"), Some(-1));
    let mut outcome = None;
    for _ in 0..80 {
        outcome = sample(&metrics(&app), "parlor_turn_self_test_ok").filter(|v| *v != -1);
        if outcome.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome, Some(0), "the self-test should fail within its 5 s");
}

/// A TURN client's TCP connection, seen by the webrtc-rs client as a datagram socket.
struct TcpClient {
    server: SocketAddr,
    local: SocketAddr,
    reader: Mutex<tcp::OwnedReadHalf>,
    writer: Mutex<tcp::OwnedWriteHalf>,
}

impl TcpClient {
    fn new(stream: TcpStream) -> Self {
        let (server, local) = (stream.peer_addr().unwrap(), stream.local_addr().unwrap());
        let (reader, writer) = stream.into_split();
        Self {
            server,
            local,
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
        }
    }
}

#[async_trait::async_trait]
impl Conn for TcpClient {
    async fn connect(&self, _: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let frame = read_frame(&mut *self.reader.lock().await)
            .await
            .ok_or(webrtc_util::Error::ErrUseClosedNetworkConn)?;
        buf[..frame.len()].copy_from_slice(&frame);
        Ok((frame.len(), self.server))
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.server).await
    }
    async fn send_to(&self, buf: &[u8], _: SocketAddr) -> webrtc_util::Result<usize> {
        self.writer
            .lock()
            .await
            .write_all(&framed(buf))
            .await
            .map_err(|e| webrtc_util::Error::Other(e.to_string()))?;
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.server)
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        let _ = self.writer.lock().await.shutdown().await;
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[tokio::test]
async fn a_client_with_udp_blocked_allocates_over_tcp_and_meets_a_udp_client_through_the_relays() {
    let app = turn_app("").await;
    let (user_a, pass_a) = credentials("test", now_secs() + 600);
    let (user_b, pass_b) = credentials("test", now_secs() + 600);
    let a = tcp_client(&app, &user_a, &pass_a).await;
    let b = client(&app, &user_b, &pass_b).await;
    let relay_a = a.allocate().await.expect("an allocation over TCP");
    let relay_b = b.allocate().await.unwrap();
    let (addr_a, addr_b) = (relay_a.local_addr().unwrap(), relay_b.local_addr().unwrap());
    let (mut got_a, mut got_b) = (None, None);
    for _ in 0..10 {
        relay_a.send_to(b"over tcp", addr_b).await.unwrap();
        relay_b.send_to(b"over udp", addr_a).await.unwrap();
        got_b = got_b.or(heard(&relay_b, Duration::from_millis(200)).await);
        got_a = got_a.or(heard(&relay_a, Duration::from_millis(200)).await);
        if got_a.is_some() && got_b.is_some() {
            break;
        }
    }
    assert_eq!(got_b.expect("b heard a"), (b"over tcp".to_vec(), addr_a));
    assert_eq!(got_a.expect("a heard b"), (b"over udp".to_vec(), addr_b));
    // A forged password is refused over TCP as over UDP.
    let forged = tcp_client(&app, &user_a, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=").await;
    assert!(forged.allocate().await.is_err());
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn the_tcp_listener_closes_what_is_not_turn_and_caps_connections_per_address() {
    let app = turn_app("").await;
    let addr = app.turn_addr.unwrap();
    // Not TURN: closed at once, without an answer.
    let mut http = TcpStream::connect(addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), http.read(&mut buf))
        .await
        .expect("closed, not left open");
    assert_eq!(n.unwrap_or(0), 0);

    // 32 connections from one address stay open; more are closed at once.
    let mut open = Vec::new();
    for _ in 0..32 {
        open.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut refused = 0;
    for _ in 0..8 {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        if let Ok(read) = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await {
            assert_eq!(read.unwrap_or(0), 0);
            refused += 1;
        }
    }
    assert_eq!(refused, 8, "every connection over the cap is closed");
    // The first 32 are still there (they have 10 s to send a first frame).
    let mut first = open.remove(0);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), first.read(&mut buf))
            .await
            .is_err(),
        "a connection under the cap stays open"
    );
}

#[tokio::test]
async fn tcp_clients_that_leave_do_not_take_the_listener_or_the_others_with_them() {
    let app = turn_app("").await;
    let (user, pass) = credentials("test", now_secs() + 600);
    let keep = tcp_client(&app, &user, &pass).await;
    let kept = keep.allocate().await.expect("an allocation over TCP");
    for _ in 0..3 {
        let a = tcp_client(&app, &user, &pass).await;
        let relay = a.allocate().await.expect("an allocation over TCP");
        relay.close().await.unwrap();
        a.close().await.unwrap();
        drop(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = client(&app, &user, &pass).await;
    let relay_b = b.allocate().await.unwrap();
    let mut got = None;
    for _ in 0..10 {
        relay_b
            .send_to(b"still there?", kept.local_addr().unwrap())
            .await
            .unwrap();
        kept.send_to(b"yes", relay_b.local_addr().unwrap())
            .await
            .unwrap();
        got = got.or(heard(&kept, Duration::from_millis(200)).await);
        if got.is_some() {
            break;
        }
    }
    assert!(got.is_some(), "the kept TCP client still hears its peer");
}

#[tokio::test]
async fn the_connection_test_gets_fresh_turn_credentials_for_guests_and_members_within_a_limit() {
    let app = turn_app_starting("").await;
    // Nobody at all: no credentials.
    let anonymous = app
        .client
        .post(app.url("/api/connectivity/ice"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let guest = app.guest().await;
    let servers = app.ok_as(&guest, "/api/connectivity/ice", &[]).await;
    let turn = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"].to_string().contains("turn:"))
        .expect("a TURN entry");
    // Bound to no call, so short-lived: a quarter of an hour.
    let username = turn["username"].as_str().unwrap();
    let (expiry, label) = username.split_once(':').unwrap();
    assert_eq!(label, "test");
    let lifetime = expiry.parse::<u64>().unwrap() - now_secs();
    assert!((15 * 60 - 60..=15 * 60).contains(&lifetime), "{lifetime}");
    let ann = app.person("Ann").await;
    let servers = app.ok_as(&ann, "/api/connectivity/ice", &[]).await;
    assert!(servers.to_string().contains(":test\""), "{servers}");
    // The credentials work: a TURN client allocates with them.
    let password = turn["credential"].as_str().unwrap();
    assert!(allocates(&app, username, password).await);
    // 20 tests a minute per address (two done): the rest are refused.
    for _ in 2..app::connectivity::TESTS_PER_MINUTE {
        app.ok_as(&guest, "/api/connectivity/ice", &[]).await;
    }
    let (status, _) = app.refused_as(&ann, "/api/connectivity/ice", &[]).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn moderators_run_the_relay_self_test_on_demand_and_nobody_else_may() {
    let settings = turn_settings("127.0.0.1", "");
    let app = TestApp::spawn_with(move |c| {
        c.turn = Some(settings);
        c.admin_emails = vec!["mod@example.com".into()];
    })
    .await;
    let moderator = app.person("Mod").await;
    let checked = app.ok_as(&moderator, "/api/connectivity/server", &[]).await;
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(checked["millis"].as_u64().is_some(), "{checked}");
    assert_eq!(sample(&metrics(&app), "parlor_turn_self_test_ok"), Some(1));
    // Members who are not moderators, guests and anonymous callers are refused.
    let ann = app.person("Ann").await;
    assert_eq!(
        app.refused_as(&ann, "/api/connectivity/server", &[])
            .await
            .0,
        403
    );
    let guest = app.guest().await;
    assert_eq!(
        app.refused_as(&guest, "/api/connectivity/server", &[])
            .await
            .0,
        401
    );
    let anonymous = app
        .client
        .post(app.url("/api/connectivity/server"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A server browsers cannot reach where it says it is: the check says so, and the metric.
    let settings = turn_settings("127.0.0.2", "");
    let unreachable = TestApp::spawn_with(move |c| {
        c.turn = Some(settings);
        c.admin_emails = vec!["mod@example.com".into()];
    })
    .await;
    let moderator = unreachable.person("Mod").await;
    let checked = unreachable
        .ok_as(&moderator, "/api/connectivity/server", &[])
        .await;
    assert_eq!(checked["ok"], false, "{checked}");
    assert!(
        checked["problem"].as_str().unwrap().contains("127.0.0.2"),
        "{checked}"
    );
    assert_eq!(
        sample(&metrics(&unreachable), "parlor_turn_self_test_ok"),
        Some(0)
    );

    // Without a built-in TURN server there is nothing to check.
    let without = TestApp::spawn_with(|c| {
        c.turn = None;
        c.admin_emails = vec!["mod@example.com".into()];
    })
    .await;
    let moderator = without.person("Mod").await;
    let (status, body) = without
        .refused_as(&moderator, "/api/connectivity/server", &[])
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn one_person_or_one_address_cannot_take_every_relay() {
    use server::turn::quota::{PER_ADDRESS, PER_PRINCIPAL};
    let app = turn_app("").await;
    let port = app.turn_addr.unwrap().port();
    let (_ann_tab, _bob_tab, _, ann_ice, bob_ice) = answered_call(&app).await;
    let (user, pass) = turn_entry(&ann_ice, port);

    // Ann's credentials, from many sockets: her share of the relay, then 508.
    let mut held = Vec::new();
    for _ in 0..PER_PRINCIPAL {
        let client = client(&app, &user, &pass).await;
        let relay = client.allocate().await.expect("within Ann's share");
        held.push((client, relay));
    }
    let over = client(&app, &user, &pass).await;
    assert!(over.allocate().await.is_err(), "one more than Ann's share");
    let text = metrics(&app);
    assert!(
        text.contains("parlor_refused_total{reason=\"turn_allocation_quota\"}"),
        "{text}"
    );
    // Bob, in the same call from the same address, still gets his.
    let (bob_user, bob_pass) = turn_entry(&bob_ice, port);
    assert!(allocates(&app, &bob_user, &bob_pass).await);
    // One of Ann's given back: she may allocate again.
    let (given_back, relay) = held.pop().unwrap();
    relay.close().await.unwrap();
    given_back.close().await.unwrap();
    let mut again = false;
    for _ in 0..20 {
        if allocates(&app, &user, &pass).await {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again, "a closed allocation gives its place back");

    // One address (connection-test credentials, so no person's share applies): its share.
    let (test_user, test_pass) = credentials("test", now_secs() + 600);
    for _ in held.len()..PER_ADDRESS {
        let client = client(&app, &test_user, &test_pass).await;
        let relay = client.allocate().await.expect("within the address's share");
        held.push((client, relay));
    }
    assert!(!allocates(&app, &test_user, &test_pass).await);
    assert!(
        !allocates(&app, &bob_user, &bob_pass).await,
        "the address is full"
    );
    for (holder, relay) in held {
        relay.close().await.unwrap();
        holder.close().await.unwrap();
    }
    over.close().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_requests_without_credentials_gets_one_nonce_and_real_clients_still_relay() {
    let app = turn_app("").await;
    let turn = app.turn_addr.unwrap();
    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut nonces = std::collections::HashSet::new();
    let mut answered = 0;
    for n in 0u32..500 {
        // An Allocate request with no attributes, a new transaction id each time.
        let mut request = vec![0x00, 0x03, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(&[0; 8]);
        request.extend_from_slice(&n.to_be_bytes());
        flood.send_to(&request, turn).await.unwrap();
        let mut buf = [0u8; 1500];
        let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_secs(1), flood.recv_from(&mut buf)).await
        else {
            continue;
        };
        let answer = &buf[..len];
        assert_eq!(&answer[..2], &[0x01, 0x13], "an Allocate error response");
        assert_eq!(&answer[8..20], &request[8..20], "to this request");
        assert_eq!(
            server::turn::message::attribute(answer, 0x0009).map(|code| (code[2], code[3])),
            Some((4, 1)),
            "401"
        );
        nonces.insert(
            server::turn::message::attribute(answer, server::turn::message::NONCE)
                .unwrap()
                .to_vec(),
        );
        answered += 1;
    }
    // Every request was answered, all with the one nonce the TURN server gave out last (it
    // would have made and kept 500).
    assert_eq!(answered, 500);
    assert_eq!(nonces.len(), 1, "distinct nonces handed out");
    // A real client still allocates and relays.
    let (user, pass) = credentials("test", now_secs() + 600);
    assert!(allocates(&app, &user, &pass).await);
}
