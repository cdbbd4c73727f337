//! Caps on relay allocations per person and per address, so that one party (or one address)
//! cannot take the relay port range from everyone. The TURN server handles one request at a
//! time per listener: the listener's [`Gate`](super::gate::Gate) notes who sent the Allocate request being
//! handled, and [`Quota::admit`], called when its relay socket is made, counts it; the
//! [`Ticket`] gives the place back when the allocation closes. Over a cap the client gets
//! 508 (Insufficient Capacity) and the refusal is counted (`turn_allocation_quota`).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use app::server::{auth::rate_limit::address_key, turn_binding::TurnBinding};

use super::message::{attribute, authenticated_request, ALLOCATE, USERNAME};

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

/// Who an Allocate request is from: `None` if it is not one or carries no username (the
/// first, unauthenticated try); `Some(None)` for the server's self-test.
pub fn asking(message: &[u8], from: SocketAddr) -> Option<Option<Asking>> {
    if authenticated_request(message) != Some(ALLOCATE) {
        return None;
    }
    let username = std::str::from_utf8(attribute(message, USERNAME)?).ok()?;
    let label = username
        .split_once(':')
        .map_or(username, |(_, label)| label);
    let principal = match TurnBinding::parse(label) {
        Some(TurnBinding::SelfTest) => return Some(None),
        Some(TurnBinding::Call { who, .. }) => Some(who.key()),
        Some(TurnBinding::Room { tag }) => Some(format!("room:{tag:016x}")),
        Some(TurnBinding::Test) | None => None,
    };
    Some(Some(Asking {
        principal,
        address: address_key(from.ip()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(username: &str) -> Vec<u8> {
        super::super::message::tests::request(
            ALLOCATE,
            &[(0x000d, &[0, 0, 2, 88]), (USERNAME, username.as_bytes())],
        )
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
