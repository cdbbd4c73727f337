//! Caps on relay allocations per person and per address, so that one party (or one address)
//! cannot take the relay port range from everyone. The TURN server handles one request at a
//! time per listener: the listener's [`Gate`] notes who sent the Allocate request being
//! handled, and [`Quota::admit`], called when its relay socket is made, counts it; the
//! [`Ticket`] gives the place back when the allocation closes. Over a cap the client gets
//! 508 (Insufficient Capacity) and the refusal is counted (`turn_allocation_quota`).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use app::server::{auth::rate_limit::address_key, turn_binding::TurnBinding};
use async_trait::async_trait;
use webrtc_util::Conn;

/// Allocations one person may hold at once: a call needs a few (UDP and TCP, camera and
/// screen), ICE restarts after network changes a few more while the old ones run out.
pub const PER_PRINCIPAL: usize = 32;
/// Allocations one address (an IPv6 /64) may hold at once: a household or an office.
pub const PER_ADDRESS: usize = 128;

/// Who sent an Allocate request: the principal its credentials are bound to (none for a
/// connection test) and the address key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asking {
    principal: Option<String>,
    address: String,
}

/// The allocations held, by principal and by address.
#[derive(Debug)]
pub struct Quota {
    per_principal: usize,
    per_address: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// An allocation over a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota;

/// One allocation's place in the quota, given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    quota: Arc<Quota>,
    keys: Vec<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut held = self.quota.lock();
        for key in &self.keys {
            if let Some(n) = held.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    held.remove(key);
                }
            }
        }
    }
}

impl Quota {
    pub fn new(per_principal: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            per_principal,
            per_address,
            held: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more allocation of `asking`, unless that is over a cap. `None` (the
    /// server's own self-test) takes no place.
    pub fn admit(self: &Arc<Self>, asking: Option<Asking>) -> Result<Ticket, OverQuota> {
        let Some(asking) = asking else {
            return Ok(Ticket {
                quota: self.clone(),
                keys: Vec::new(),
            });
        };
        let mut keys = vec![(format!("a:{}", asking.address), self.per_address)];
        if let Some(principal) = asking.principal {
            keys.push((format!("p:{principal}"), self.per_principal));
        }
        let mut held = self.lock();
        if keys
            .iter()
            .any(|(key, cap)| held.get(key).copied().unwrap_or(0) >= *cap)
        {
            return Err(OverQuota);
        }
        for (key, _) in &keys {
            *held.entry(key.clone()).or_default() += 1;
        }
        Ok(Ticket {
            quota: self.clone(),
            keys: keys.into_iter().map(|(key, _)| key).collect(),
        })
    }

    /// How many keys hold allocations (for tests: nothing is kept once all are closed).
    pub fn keys_held(&self) -> usize {
        self.lock().len()
    }
}

/// What the listener's current Allocate request is, for the relay socket made for it.
pub type Current = Arc<Mutex<Option<Option<Asking>>>>;

/// A listener's socket that notes who sends each Allocate request (into [`Current`]).
pub struct Gate {
    inner: Arc<dyn Conn + Send + Sync>,
    current: Current,
}

impl Gate {
    pub fn new(inner: Arc<dyn Conn + Send + Sync>, current: Current) -> Self {
        Self { inner, current }
    }
}

/// STUN's Allocate request type, its magic cookie, and the USERNAME attribute.
const ALLOCATE_REQUEST: [u8; 2] = [0x00, 0x03];
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const USERNAME: u16 = 0x0006;

/// Who an Allocate request is from: `None` if it is not one or carries no username (the
/// first, unauthenticated try); `Some(None)` for the server's self-test.
pub fn asking(message: &[u8], from: SocketAddr) -> Option<Option<Asking>> {
    if message.len() < 20 || message[..2] != ALLOCATE_REQUEST || message[4..8] != MAGIC_COOKIE {
        return None;
    }
    let mut rest = &message[20..];
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let label = username
                .split_once(':')
                .map_or(username, |(_, label)| label);
            let principal = match TurnBinding::parse(label) {
                Some(TurnBinding::SelfTest) => return Some(None),
                Some(TurnBinding::Call { who, .. }) => Some(who.key()),
                Some(TurnBinding::Room { tag }) => Some(format!("room:{tag:016x}")),
                Some(TurnBinding::Test) | None => None,
            };
            return Some(Some(Asking {
                principal,
                address: address_key(from.ip()),
            }));
        }
        rest = rest.get(4 + len.div_ceil(4) * 4..)?;
    }
    None
}

#[async_trait]
impl Conn for Gate {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let (n, from) = self.inner.recv_from(buf).await?;
        if let Some(asking) = asking(&buf[..n], from) {
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(asking);
        }
        Ok((n, from))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(username: &str) -> Vec<u8> {
        let mut attributes = Vec::new();
        // A LIFETIME first, then USERNAME (padded to four bytes).
        attributes.extend_from_slice(&[0x00, 0x0d, 0x00, 0x04, 0, 0, 0x02, 0x58]);
        attributes.extend_from_slice(&USERNAME.to_be_bytes());
        attributes.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attributes.extend_from_slice(username.as_bytes());
        attributes.resize(attributes.len().div_ceil(4) * 4, 0);
        let mut message = vec![0x00, 0x03];
        message.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attributes);
        message
    }

    #[test]
    fn allocate_requests_are_read_for_who_asks() {
        let from: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        let call = "0123456789abcdef0011223344556677";
        assert_eq!(
            asking(&allocate(&format!("99:u42@{call}")), from),
            Some(Some(Asking {
                principal: Some("u:42".into()),
                address: address_key(from.ip()),
            }))
        );
        assert_eq!(
            asking(&allocate("99:test"), from),
            Some(Some(Asking {
                principal: None,
                address: address_key(from.ip()),
            }))
        );
        assert_eq!(asking(&allocate("99:self-test"), from), Some(None));
        // Not an Allocate request, no username, or cut short: nothing.
        let mut refresh = allocate("99:test");
        refresh[1] = 0x04;
        assert_eq!(asking(&refresh, from), None);
        let bare = allocate("");
        assert_eq!(asking(&bare[..bare.len() - 4], from), None);
        let whole = allocate("99:test");
        assert_eq!(asking(&whole[..whole.len() - 3], from), None);
        assert_eq!(asking(&whole[..10], from), None);
    }

    #[test]
    fn caps_hold_per_principal_and_per_address_and_closing_gives_places_back() {
        let quota = Quota::new(2, 3);
        let ann = |address: &str| {
            Some(Asking {
                principal: Some("u:1".into()),
                address: address.into(),
            })
        };
        let anyone = |address: &str| {
            Some(Asking {
                principal: None,
                address: address.into(),
            })
        };
        let first = quota.admit(ann("10.0.0.1")).unwrap();
        let _second = quota.admit(ann("10.0.0.2")).unwrap();
        assert!(quota.admit(ann("10.0.0.3")).is_err(), "Ann's third");
        let _a = quota.admit(anyone("10.0.0.1")).unwrap();
        let _b = quota.admit(anyone("10.0.0.1")).unwrap();
        assert!(
            quota.admit(anyone("10.0.0.1")).is_err(),
            "the address's fourth"
        );
        // The self-test is never refused and holds nothing.
        let _own = quota.admit(None).unwrap();
        drop(first);
        assert!(quota.admit(anyone("10.0.0.1")).is_ok());
        assert!(quota.admit(ann("10.0.0.4")).is_ok());
        drop((_second, _a, _b, _own));
        assert_eq!(quota.keys_held(), 0);
    }
}
