//! Where the TURN server may relay to: public addresses, the operator's allowed blocks, and
//! its own relay allocations (two relay-only browsers on one machine meet through it); never
//! loopback, private, link-local (cloud metadata among them), shared, multicast or unspecified
//! addresses, so a TURN credential cannot reach into the server's own network. The server's
//! own addresses are peers only at its live relay ports (not its SSH, HTTP or TURN ports;
//! unless the operator's allowed blocks hold them),
//! and IPv6 forms that carry an IPv4 address (NAT64, 6to4, IPv4-compatible) are judged by it.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use app::server::auth::proxy::Cidr;

#[derive(Clone, Default)]
pub struct PeerPolicy {
    allowed: Arc<Vec<Cidr>>,
    /// The server's own addresses: peers only at its relay ports.
    own_ips: Arc<Vec<IpAddr>>,
    own: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl PeerPolicy {
    pub fn new(allowed: Vec<Cidr>, own_ips: Vec<IpAddr>) -> Self {
        Self {
            allowed: Arc::new(allowed),
            own_ips: Arc::new(own_ips.into_iter().map(canonical).collect()),
            own: Arc::default(),
        }
    }

    pub fn add_own(&self, relay: SocketAddr) {
        self.own.lock().expect("not poisoned").insert(relay);
    }

    pub fn remove_own(&self, relay: SocketAddr) {
        self.own.lock().expect("not poisoned").remove(&relay);
    }

    /// Whether data may go to (or come from) `peer`.
    pub fn allows(&self, peer: SocketAddr) -> bool {
        let ip = canonical(peer.ip());
        if self
            .own
            .lock()
            .expect("not poisoned")
            .contains(&SocketAddr::new(ip, peer.port()))
        {
            return true;
        }
        // The operator's blocks are an explicit choice, even where they hold the server's IPs.
        (public(ip) && !self.own_ips.contains(&ip)) || self.allowed.iter().any(|c| c.contains(ip))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (carrier-grade NAT), benchmarking, reserved.
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            };
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address inside.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return public(embedded(s[1], s[2]));
            }
            let first = s[0];
            // ::/96 (IPv4-compatible, deprecated) and site-local fec0::/10 are never public.
            !(s[..6] == [0; 6]
                || (first & 0xffc0) == 0xfec0
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7, cloud metadata fd00:ec2::254 among them),
                // link-local (fe80::/10), documentation (2001:db8::/32).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_allowed_and_own_relay_addresses_are_peers() {
        let own_ip: IpAddr = "8.8.4.4".parse().unwrap();
        let policy = PeerPolicy::new(vec!["10.7.0.0/16".parse().unwrap()], vec![own_ip]);
        for denied in [
            "127.0.0.1:5000",
            "10.0.0.5:5000",
            "172.16.3.4:5000",
            "192.168.1.1:5000",
            "169.254.169.254:80",
            "100.64.0.1:5000",
            "0.0.0.0:5000",
            "224.0.0.1:5000",
            "255.255.255.255:5000",
            "[::1]:5000",
            "[fd00:ec2::254]:80",
            "[fe80::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "[::]:5000",
            // IPv6 forms of private IPv4 addresses, and site-local.
            "[64:ff9b::7f00:1]:5000",
            "[64:ff9b::a9fe:a9fe]:80",
            "[2002:c0a8:101::1]:5000",
            "[::7f00:1]:5000",
            "[fec0::1]:5000",
            // The server's own public address, at ports that are not relays (SSH, TURN).
            "8.8.4.4:22",
            "[::ffff:8.8.4.4]:3478",
        ] {
            assert!(!policy.allows(addr(denied)), "{denied}");
        }
        for allowed in [
            "8.8.8.8:3478",
            "[2606:4700::1111]:443",
            "10.7.3.4:5000",
            "[64:ff9b::808:808]:53",
        ] {
            assert!(policy.allows(addr(allowed)), "{allowed}");
        }
        // Its own relay allocation on loopback, and only that port, while it lives.
        policy.add_own(addr("127.0.0.1:50000"));
        assert!(policy.allows(addr("127.0.0.1:50000")));
        assert!(!policy.allows(addr("127.0.0.1:50001")));
        policy.remove_own(addr("127.0.0.1:50000"));
        assert!(!policy.allows(addr("127.0.0.1:50000")));
        // On its public address too: a live relay port is a peer, other ports are not.
        policy.add_own(addr("8.8.4.4:50000"));
        assert!(policy.allows(addr("8.8.4.4:50000")));
        assert!(!policy.allows(addr("8.8.4.4:50002")));
    }
}
