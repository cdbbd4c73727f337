//! How many sockets one person and one address may hold open. Opening many sockets must not
//! multiply what one client can do or hold: each socket costs memory, and per-socket rate
//! limits are per socket. A socket takes a [`SocketSlot`] before the upgrade and gives it back
//! when it ends (when the slot is dropped). With several instances it also takes a place over
//! all of them (`cluster::SharedSlot`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::auth::PrincipalId;

/// Why a socket was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    #[error("too many connections for this account or guest")]
    Principal,
    #[error("too many connections from this address")]
    Address,
}

#[derive(Debug, Default)]
struct Counts {
    principals: HashMap<PrincipalId, u32>,
    addresses: HashMap<String, u32>,
}

/// The open sockets per principal and per client address (on this instance).
#[derive(Debug)]
pub struct SocketCaps {
    per_principal: u32,
    per_address: u32,
    counts: Mutex<Counts>,
}

/// One open socket's place; dropping it frees the place.
#[derive(Debug)]
pub struct SocketSlot {
    caps: Arc<SocketCaps>,
    who: PrincipalId,
    address: String,
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl SocketCaps {
    pub fn new(per_principal: u32, per_address: u32) -> Self {
        Self {
            per_principal,
            per_address,
            counts: Mutex::default(),
        }
    }

    /// The most sockets one principal may hold.
    pub fn per_principal(&self) -> u32 {
        self.per_principal
    }

    /// The most sockets one address may hold.
    pub fn per_address(&self) -> u32 {
        self.per_address
    }

    /// A place for one more socket of `who` from `address` (a limiter key), if both are
    /// under their caps.
    pub fn acquire(
        self: &Arc<Self>,
        who: PrincipalId,
        address: String,
    ) -> Result<SocketSlot, CapReached> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.principals.get(&who).copied().unwrap_or(0) >= self.per_principal {
            return Err(CapReached::Principal);
        }
        if counts.addresses.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Err(CapReached::Address);
        }
        *counts.principals.entry(who).or_default() += 1;
        *counts.addresses.entry(address.clone()).or_default() += 1;
        Ok(SocketSlot {
            caps: self.clone(),
            who,
            address,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock().unwrap_or_else(|e| e.into_inner());
        decrement(&mut counts.principals, &self.who);
        decrement(&mut counts.addresses, &self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_principal_and_per_address_and_places_come_back() {
        let caps = Arc::new(SocketCaps::new(2, 3));
        let ann = PrincipalId::User(1);
        let bob = PrincipalId::User(2);
        let a1 = caps.acquire(ann, "1.1.1.1".into()).unwrap();
        let _a2 = caps.acquire(ann, "1.1.1.1".into()).unwrap();
        assert_eq!(
            caps.acquire(ann, "2.2.2.2".into()).unwrap_err(),
            CapReached::Principal
        );
        let _b1 = caps.acquire(bob, "1.1.1.1".into()).unwrap();
        assert_eq!(
            caps.acquire(bob, "1.1.1.1".into()).unwrap_err(),
            CapReached::Address
        );
        drop(a1);
        caps.acquire(bob, "1.1.1.1".into()).unwrap();
        assert!(caps.counts.lock().unwrap().principals.len() <= 2);
    }
}
