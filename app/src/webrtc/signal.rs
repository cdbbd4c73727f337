//! What the two browsers tell each other through whatever carries their signaling: session
//! descriptions, ICE candidates, and the little state each side shows of the other.

use serde::{Deserialize, Serialize};

/// One ICE candidate, as `RTCIceCandidate` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ice {
    pub candidate: String,
    pub mid: Option<String>,
    pub index: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        #[serde(flatten)]
        ice: Ice,
    },
    /// The sender's microphone and camera state, for the other side to show.
    Media {
        muted: bool,
        camera_off: bool,
    },
    /// The sender started or stopped recording the call.
    Recording {
        on: bool,
    },
    /// Screen sharing runs on its own peer connection, so camera and screen are
    /// independent: the sharer offers, the viewer answers.
    ScreenOffer {
        sdp: String,
    },
    ScreenAnswer {
        sdp: String,
    },
    ScreenCandidate {
        #[serde(flatten)]
        ice: Ice,
        /// For the sharer's connection (from the viewer), or the viewer's.
        to_sharer: bool,
    },
    ScreenStopped,
    /// The sender lost the media path and does not offer: the offering side restarts ICE.
    RestartIce,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_flat_on_the_wire() {
        let signal = Signal::ScreenCandidate {
            ice: Ice {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                mid: Some("0".into()),
                index: Some(0),
            },
            to_sharer: true,
        };
        let json = serde_json::to_string(&signal).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"screen_candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","mid":"0","index":0,"to_sharer":true}"#
        );
        assert_eq!(serde_json::from_str::<Signal>(&json).unwrap(), signal);
    }
}
