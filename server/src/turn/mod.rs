//! The built-in TURN server (webrtc-rs `turn`, in this process): UDP and TCP listeners, relay
//! sockets from a port range, short-lived REST credentials ([`credentials`]), a peer policy
//! that keeps relayed data away from private networks ([`peers`]), and the ICE server entry
//! handed to browsers. Allocations and relayed bytes are counted in `/metrics`.

pub mod credentials;
pub mod gate;
pub mod message;
pub mod nonces;
pub mod peers;
pub mod quota;
pub mod tcp;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use app::{protocol::IceServer, server::metrics::Metrics};
use async_trait::async_trait;
use tokio::net::UdpSocket;
use turn::{
    relay::RelayAddressGenerator,
    server::{
        config::{ConnConfig, ServerConfig},
        Server,
    },
};
use webrtc_util::Conn;

pub use credentials::Bindings;
pub use credentials::TurnSecret;
use credentials::{now_secs, RestAuth};
use peers::PeerPolicy;

/// How the TURN server is set up (from `crate::config`).
#[derive(Clone, Debug)]
pub struct TurnConfig {
    /// Where it listens (UDP, and TCP on the same port).
    pub addr: SocketAddr,
    /// The address browsers reach it at, and relay addresses carry.
    pub public_ip: IpAddr,
    /// Relay ports (inclusive).
    pub relay_ports: (u16, u16),
    pub secret: TurnSecret,
    /// How long minted credentials work.
    pub credential_ttl: Duration,
    /// Peer blocks allowed besides public addresses.
    pub allowed_peers: Vec<app::server::auth::proxy::Cidr>,
}

/// The running TURN server, and what mints credentials for it.
pub struct Turn {
    server: Server,
    /// Where it listens.
    pub addr: SocketAddr,
    public: SocketAddr,
    secret: TurnSecret,
    ttl: Duration,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub const REALM: &str = "parlor";

/// How long the start-up self-test may take before it counts as failed.
const SELF_TEST_WITHIN: Duration = Duration::from_secs(5);

impl Turn {
    /// Starts listening; credentials bound to calls or rooms work once `bindings` is set.
    pub async fn start(
        config: &TurnConfig,
        metrics: Arc<Metrics>,
        bindings: Bindings,
    ) -> std::io::Result<Self> {
        let (socket, listener) = bind(config.addr).await?;
        let addr = socket.local_addr()?;
        let relays = Relays {
            bind_ip: config.addr.ip(),
            public_ip: config.public_ip,
            ports: config.relay_ports,
            policy: PeerPolicy::new(
                config.allowed_peers.clone(),
                vec![config.public_ip, config.addr.ip()],
            ),
            metrics: metrics.clone(),
            quota: quota::Quota::new(quota::PER_PRINCIPAL, quota::PER_ADDRESS),
            current: quota::Current::default(),
        };
        // Each listener answers requests without credentials itself and notes who its
        // current Allocate request is from, for its relays.
        let nonces = Arc::new(nonces::Nonces::new(REALM));
        let listeners: [Arc<dyn Conn + Send + Sync>; 2] =
            [Arc::new(socket), Arc::new(tcp::TcpTurn::new(listener)?)];
        let conn_configs = listeners
            .into_iter()
            .map(|conn| {
                let relays = Relays {
                    current: quota::Current::default(),
                    ..relays.clone()
                };
                ConnConfig {
                    conn: Arc::new(gate::Gate::new(
                        conn,
                        relays.current.clone(),
                        nonces.clone(),
                    )),
                    relay_addr_generator: Box::new(relays),
                }
            })
            .collect();
        let server = Server::new(ServerConfig {
            conn_configs,
            realm: REALM.into(),
            auth_handler: Arc::new(RestAuth {
                secret: config.secret.clone(),
                metrics,
                bindings,
            }),
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(Self {
            server,
            addr,
            public: SocketAddr::new(config.public_ip, addr.port()),
            secret: config.secret.clone(),
            ttl: config.credential_ttl,
        })
    }

    /// An ICE server entry for `label` (a [`TurnBinding`] label), with credentials that work
    /// for the configured few hours, or `at_most` if that is shorter.
    ///
    /// [`TurnBinding`]: app::server::turn_binding::TurnBinding
    pub fn ice_server(&self, label: &str, at_most: Duration) -> IceServer {
        self.secret.entry(
            vec![
                format!("turn:{}?transport=udp", self.public),
                format!("turn:{}?transport=tcp", self.public),
            ],
            label,
            self.ttl.min(at_most),
        )
    }

    /// Checks that the server relays: two clients allocate through its public address with
    /// fresh credentials and one sends to the other's relay, all within 5 s. The time that
    /// took, or why not.
    pub async fn self_test(&self) -> Result<Duration, String> {
        tokio::time::timeout(SELF_TEST_WITHIN, self.relay_to_itself())
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer from {} within {SELF_TEST_WITHIN:?}",
                    self.public
                ))
            })
    }

    async fn relay_to_itself(&self) -> Result<Duration, String> {
        use turn::client::{Client, ClientConfig};
        let started = std::time::Instant::now();
        let server = self.public.to_string();
        let mut clients = Vec::new();
        let mut relays = Vec::new();
        for _ in 0..2 {
            let local = SocketAddr::new(
                if self.public.is_ipv4() {
                    IpAddr::from([0, 0, 0, 0])
                } else {
                    IpAddr::from([0u16; 8])
                },
                0,
            );
            let conn = Arc::new(UdpSocket::bind(local).await.map_err(|e| e.to_string())?);
            let label = app::server::turn_binding::TurnBinding::SelfTest.label();
            let (username, password) = self.secret.mint(&label, now_secs() + 60);
            let client = Client::new(ClientConfig {
                stun_serv_addr: server.clone(),
                turn_serv_addr: server.clone(),
                username,
                password,
                realm: REALM.into(),
                software: "parlor self-test".into(),
                rto_in_ms: 0,
                conn,
                vnet: None,
            })
            .await
            .map_err(|e| e.to_string())?;
            client.listen().await.map_err(|e| e.to_string())?;
            let relay = client
                .allocate()
                .await
                .map_err(|e| format!("no allocation: {e}"))?;
            clients.push(client);
            relays.push(relay);
        }
        let (a, b) = (&relays[0], &relays[1]);
        let (addr_a, addr_b) = (
            a.local_addr().map_err(|e| e.to_string())?,
            b.local_addr().map_err(|e| e.to_string())?,
        );
        let mut buf = [0u8; 64];
        let mut result = Err("nothing was relayed within 3 s".to_string());
        for _ in 0..15 {
            // Each send also permits the sender's peer.
            let _ = b.send_to(b"permit", addr_a).await;
            let _ = a.send_to(b"parlor self-test", addr_b).await;
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(200), b.recv_from(&mut buf)).await
            {
                if &buf[..n] == b"parlor self-test" {
                    result = Ok(started.elapsed());
                    break;
                }
            }
        }
        // Give the allocations back (a refresh with lifetime 0), then the clients.
        for relay in &relays {
            let _ = relay.close().await;
        }
        for client in clients {
            let _ = client.close().await;
        }
        result
    }

    pub async fn close(&self) {
        if let Err(error) = self.server.close().await {
            tracing::warn!(%error, "closing the TURN server");
        }
    }
}

/// The UDP socket and TCP listener on one port (any free one, the same for both, when
/// `addr` asks for port 0).
async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, tokio::net::TcpListener)> {
    let mut tries = 0;
    loop {
        let socket = UdpSocket::bind(addr).await?;
        let port = socket.local_addr()?.port();
        match tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => return Ok((socket, listener)),
            Err(error) if addr.port() == 0 && tries < 10 => {
                tracing::debug!(%error, port, "TCP port taken, another try");
                tries += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Relay sockets: one per allocation, from the port range, behind the peer policy.
#[derive(Clone)]
struct Relays {
    bind_ip: IpAddr,
    public_ip: IpAddr,
    ports: (u16, u16),
    policy: PeerPolicy,
    metrics: Arc<Metrics>,
    /// The caps on allocations (shared by the listeners).
    quota: Arc<quota::Quota>,
    /// Who the listener's Allocate request being handled is from.
    current: quota::Current,
}

#[async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        // The request being handled is an Allocate the gate noted (always, in practice).
        let asking = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .flatten();
        let Ok(ticket) = self.quota.admit(asking) else {
            self.metrics.refused("turn_allocation_quota");
            return Err(turn::Error::Other("allocation quota reached".into()));
        };
        let (low, high) = self.ports;
        let mut candidates: Vec<u16> = if requested_port != 0 {
            vec![requested_port]
        } else {
            (0..16)
                .map(|_| low + (rand_u16() % (high - low).saturating_add(1).max(1)))
                .collect()
        };
        candidates.dedup();
        for port in candidates {
            if !(low..=high).contains(&port) {
                continue;
            }
            let Ok(socket) = UdpSocket::bind(SocketAddr::new(self.bind_ip, port)).await else {
                continue;
            };
            let relay = SocketAddr::new(self.public_ip, socket.local_addr()?.port());
            self.policy.add_own(relay);
            self.metrics.turn_allocation(1);
            let conn = Guarded {
                socket,
                relay,
                policy: self.policy.clone(),
                metrics: self.metrics.clone(),
                _ticket: ticket,
            };
            return Ok((Arc::new(conn), relay));
        }
        Err(turn::Error::ErrMaxRetriesExceeded)
    }
}

fn rand_u16() -> u16 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 2];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS has randomness");
    u16::from_le_bytes(bytes)
}

/// A relay socket that sends to and hears from allowed peers only, and counts the bytes.
struct Guarded {
    socket: UdpSocket,
    relay: SocketAddr,
    policy: PeerPolicy,
    metrics: Arc<Metrics>,
    /// Its place in the quota, given back with it.
    _ticket: quota::Ticket,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.policy.remove_own(self.relay);
        self.metrics.turn_allocation(-1);
    }
}

#[async_trait]
impl Conn for Guarded {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if self.policy.allows(from) {
                self.metrics.turn_relayed(n as u64);
                return Ok((n, from));
            }
            self.metrics.refused("turn_peer_denied");
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.policy.allows(target) {
            // Dropped, as a firewall would: the client learns nothing of the network.
            self.metrics.refused("turn_peer_denied");
            return Ok(buf.len());
        }
        let n = self.socket.send_to(buf, target).await?;
        self.metrics.turn_relayed(n as u64);
        Ok(n)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
