//! The server's side of relay-only calls: whatever a client sends, the other side learns no
//! address of it but the TURN relay's. Candidates other than `typ relay` are dropped, a relay
//! candidate's related address (the client's own) is blanked, and session descriptions lose
//! their non-relay candidate lines and any address in `c=` / `a=rtcp`. A client that ignores
//! the relay-only policy gets nowhere with its host or reflexive candidates.

use crate::webrtc::{Ice, Signal};

/// `data` (a signal's JSON) as the other side may see it in a relay-only call, or `None` when
/// nothing of it may pass (a non-relay candidate, or a signal the server cannot read).
pub fn filter(data: &str) -> Option<String> {
    let signal = match serde_json::from_str::<Signal>(data).ok()? {
        Signal::Candidate { ice } => Signal::Candidate {
            ice: candidate(ice)?,
        },
        Signal::ScreenCandidate { ice, to_sharer } => Signal::ScreenCandidate {
            ice: candidate(ice)?,
            to_sharer,
        },
        Signal::Offer { sdp } => Signal::Offer {
            sdp: sdp_lines(&sdp),
        },
        Signal::Answer { sdp } => Signal::Answer {
            sdp: sdp_lines(&sdp),
        },
        Signal::ScreenOffer { sdp } => Signal::ScreenOffer {
            sdp: sdp_lines(&sdp),
        },
        Signal::ScreenAnswer { sdp } => Signal::ScreenAnswer {
            sdp: sdp_lines(&sdp),
        },
        other => other,
    };
    serde_json::to_string(&signal).ok()
}

/// A relay candidate with its related address blanked; `None` for any other kind. The empty
/// candidate (end of candidates) passes.
fn candidate(mut ice: Ice) -> Option<Ice> {
    if ice.candidate.trim().is_empty() {
        return Some(ice);
    }
    ice.candidate = relay_line(&ice.candidate)?;
    Some(ice)
}

/// `candidate:… typ relay raddr A rport P …` with `raddr 0.0.0.0 rport 0`; `None` unless the
/// candidate's type is `relay`.
fn relay_line(line: &str) -> Option<String> {
    let mut fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let typ = fields.iter().position(|f| f == "typ")?;
    if fields.get(typ + 1).map(String::as_str) != Some("relay") {
        return None;
    }
    for (key, blank) in [("raddr", "0.0.0.0"), ("rport", "0")] {
        if let Some(at) = fields.iter().position(|f| f == key) {
            if let Some(value) = fields.get_mut(at + 1) {
                *value = blank.to_string();
            }
        }
    }
    Some(fields.join(" "))
}

/// A session description with only relay candidates and no address of the client's own.
fn sdp_lines(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        let ending = &line[text.len()..];
        let kept = if let Some(candidate) = text.strip_prefix("a=") {
            if candidate.starts_with("candidate:") {
                relay_line(candidate).map(|c| format!("a={c}"))
            } else if let Some(rtcp) = text.strip_prefix("a=rtcp:") {
                // `a=rtcp:PORT IN IP4 ADDR`: the port alone says nothing of the client.
                let port = rtcp.split_whitespace().next().unwrap_or("9");
                Some(format!("a=rtcp:{port} IN IP4 0.0.0.0"))
            } else {
                Some(text.to_string())
            }
        } else if text.starts_with("c=IN IP6") || text.starts_with("c=IN IP4") {
            Some("c=IN IP4 0.0.0.0".to_string())
        } else {
            Some(text.to_string())
        };
        if let Some(kept) = kept {
            out.push_str(&kept);
            out.push_str(ending);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate_json(line: &str) -> String {
        serde_json::to_string(&Signal::Candidate {
            ice: Ice {
                candidate: line.into(),
                mid: Some("0".into()),
                index: Some(0),
            },
        })
        .unwrap()
    }

    #[test]
    fn only_relay_candidates_pass_and_without_the_clients_own_address() {
        let host = "candidate:1 1 udp 2122260223 192.168.1.20 54400 typ host generation 0";
        let srflx = "candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 192.168.1.20 rport 54400";
        let prflx =
            "candidate:5 1 udp 1 203.0.113.7 61001 typ prflx raddr 192.168.1.20 rport 54400";
        let tcp = "candidate:3 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active";
        for line in [host, srflx, prflx, tcp] {
            assert_eq!(filter(&candidate_json(line)), None, "{line}");
        }
        let relay = "candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 203.0.113.7 rport 61000 generation 0";
        let passed: Signal =
            serde_json::from_str(&filter(&candidate_json(relay)).unwrap()).unwrap();
        let Signal::Candidate { ice } = passed else {
            panic!("a candidate");
        };
        assert_eq!(
            ice.candidate,
            "candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 0.0.0.0 rport 0 generation 0"
        );
        assert!(!ice.candidate.contains("203.0.113.7"));
        // The end-of-candidates marker passes; an unreadable signal does not.
        assert!(filter(&candidate_json("")).is_some());
        assert_eq!(filter("{\"kind\":\"candidate\""), None);
        assert_eq!(filter("not json"), None);
    }

    #[test]
    fn screen_candidates_are_filtered_the_same_way() {
        let data = serde_json::to_string(&Signal::ScreenCandidate {
            ice: Ice {
                candidate: "candidate:1 1 udp 1 10.0.0.2 5000 typ host".into(),
                mid: None,
                index: None,
            },
            to_sharer: true,
        })
        .unwrap();
        assert_eq!(filter(&data), None);
    }

    #[test]
    fn descriptions_lose_every_address_but_the_relays() {
        let sdp = "v=0\r\n\
                   o=- 1 2 IN IP4 127.0.0.1\r\n\
                   m=video 54400 UDP/TLS/RTP/SAVPF 96\r\n\
                   c=IN IP4 192.168.1.20\r\n\
                   a=rtcp:54401 IN IP4 192.168.1.20\r\n\
                   a=candidate:1 1 udp 2122260223 192.168.1.20 54400 typ host\r\n\
                   a=candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 192.168.1.20 rport 54400\r\n\
                   a=candidate:4 1 udp 41885439 198.51.100.9 50123 typ relay raddr 203.0.113.7 rport 61000\r\n\
                   a=mid:0\r\n";
        let data = serde_json::to_string(&Signal::Offer { sdp: sdp.into() }).unwrap();
        let Signal::Offer { sdp: out } = serde_json::from_str(&filter(&data).unwrap()).unwrap()
        else {
            panic!("an offer");
        };
        assert!(!out.contains("192.168.1.20"), "{out}");
        assert!(!out.contains("203.0.113.7"), "{out}");
        assert!(out.contains("typ relay raddr 0.0.0.0 rport 0\r\n"), "{out}");
        assert!(out.contains("c=IN IP4 0.0.0.0\r\n"), "{out}");
        assert!(out.contains("a=rtcp:54401 IN IP4 0.0.0.0\r\n"), "{out}");
        assert!(out.ends_with("a=mid:0\r\n"), "{out}");
        // Signals that carry no address pass as they are.
        let media = serde_json::to_string(&Signal::Media {
            muted: true,
            camera_off: false,
        })
        .unwrap();
        assert_eq!(filter(&media).unwrap(), media);
    }
}
