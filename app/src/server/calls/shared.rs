//! A friends call as other instances keep it (several instances only): enough for another
//! instance to take the call over when the one holding it stops, and the text it is kept as.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Party;
use crate::{
    server::{
        auth::PrincipalId,
        hub::{InstanceId, SocketRef},
    },
    wire::{CallId, CallPeer},
};

/// A friends call, as the instance holding it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCall {
    pub id: CallId,
    pub conversation: i64,
    pub video: bool,
    /// The side that offers (the caller).
    pub caller: SharedSide,
    pub callee: SharedSide,
    /// When it was answered (Unix milliseconds); `None` while it rings.
    pub answered_at: Option<i64>,
}

/// One side of a [`SharedCall`]: who, and the socket the call runs on for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSide {
    pub party: Party,
    pub socket: Option<SocketRef>,
}

/// Why a kept call could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable shared call: {0}")]
pub struct Unreadable(String);

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Serialize, Deserialize)]
struct SideText {
    who: String,
    seen_as: CallPeer,
    /// Instance and connection.
    socket: Option<(u64, u64)>,
}

#[derive(Serialize, Deserialize)]
struct CallText {
    id: String,
    conversation: i64,
    video: bool,
    caller: SideText,
    callee: SideText,
    answered_at: Option<i64>,
}

impl SideText {
    fn from(side: &SharedSide) -> Self {
        Self {
            who: side.party.who.key(),
            seen_as: side.party.seen_as.clone(),
            socket: side.socket.map(|s| (s.instance.0, s.conn)),
        }
    }

    fn into_side(self) -> Result<SharedSide, Unreadable> {
        let who = PrincipalId::from_key(&self.who)
            .ok_or_else(|| Unreadable(format!("who: {}", self.who)))?;
        Ok(SharedSide {
            party: Party {
                who,
                seen_as: self.seen_as,
            },
            socket: self.socket.map(|(instance, conn)| SocketRef {
                instance: InstanceId(instance),
                conn,
            }),
        })
    }
}

impl SharedCall {
    /// The text kept in Redis.
    pub fn encode(&self) -> String {
        serde_json::to_string(&CallText {
            id: self.id.to_string(),
            conversation: self.conversation,
            video: self.video,
            caller: SideText::from(&self.caller),
            callee: SideText::from(&self.callee),
            answered_at: self.answered_at,
        })
        .expect("a call serializes")
    }

    pub fn decode(text: &str) -> Result<Self, Unreadable> {
        let text: CallText = serde_json::from_str(text).map_err(|e| Unreadable(e.to_string()))?;
        let id = u128::from_str_radix(&text.id, 16)
            .map_err(|_| Unreadable(format!("id: {}", text.id)))?;
        Ok(Self {
            id: CallId(id),
            conversation: text.conversation,
            video: text.video,
            caller: text.caller.into_side()?,
            callee: text.callee.into_side()?,
            answered_at: text.answered_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UserCard;

    fn side(id: i64, socket: Option<SocketRef>) -> SharedSide {
        SharedSide {
            party: Party::friend(UserCard {
                id,
                display_name: format!("User {id}"),
            }),
            socket,
        }
    }

    #[test]
    fn a_shared_call_reads_back_as_written_and_bad_text_is_refused() {
        let call = SharedCall {
            id: CallId(u128::MAX - 5),
            conversation: 42,
            video: true,
            caller: side(
                1,
                Some(SocketRef {
                    instance: InstanceId(u64::MAX),
                    conn: 7,
                }),
            ),
            callee: side(2, None),
            answered_at: Some(1_780_000_000_000),
        };
        assert_eq!(SharedCall::decode(&call.encode()).unwrap(), call);
        let ringing = SharedCall {
            answered_at: None,
            ..call.clone()
        };
        assert_eq!(SharedCall::decode(&ringing.encode()).unwrap(), ringing);
        for bad in [
            "",
            "{}",
            &call.encode().replace("\"u:1\"", "\"nobody\""),
            &call.encode().replace(&call.id.to_string(), "zz"),
        ] {
            assert!(SharedCall::decode(bad).is_err(), "{bad}");
        }
    }
}
