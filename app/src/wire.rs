//! Data that travels between the server and the browser, used alike by the real-time
//! protocol (`crate::protocol`), the server functions (each way to meet's `api`) and the server
//! (`crate::server`): people as others see them, stored messages, call records and call ids.
//! Plain data only: never database rows, never secrets.

use serde::{Deserialize, Serialize};

/// Another user, as anyone who can see them does: id and name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCard {
    pub id: i64,
    pub display_name: String,
}

/// One stored message. The text is plain text: the page shows it as text, never as HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: i64,
    pub conversation_id: i64,
    pub sender_id: i64,
    /// The id the sending browser gave it (lets that browser match its pending copy).
    pub client_id: String,
    pub body: String,
    /// RFC 3339.
    pub sent_at: String,
    /// Set for a call's record in the conversation (the body is then empty).
    pub call: Option<CallRecord>,
}

/// How a call went, as stored in the conversation. The message's sender is the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub outcome: CallOutcome,
    /// Seconds from the answer to the end, for completed calls.
    pub duration_secs: i64,
    pub video: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Not answered: cancelled, no answer, or busy.
    Missed,
    Rejected,
    Completed,
}

/// A call's id: 128 random bits, written as 32 lowercase hex digits on the wire (JavaScript
/// numbers cannot hold 64-bit integers exactly). Unique across restarts and instances
/// without any coordination.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u128);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::fmt::Debug for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallId({self})")
    }
}

impl std::str::FromStr for CallId {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a call id is 32 hex digits");
        }
        u128::from_str_radix(s, 16)
            .map(CallId)
            .map_err(|_| "a call id is 32 hex digits")
    }
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who is on the other end of a call, as this side may see them. Friends see each other's
/// account; strangers and code rooms see only a label, never an id that could follow them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallPeer {
    Friend { user: UserCard },
    Anonymous { label: String },
}

impl CallPeer {
    /// The name to show for the other side.
    pub fn name(&self) -> &str {
        match self {
            CallPeer::Friend { user } => &user.display_name,
            CallPeer::Anonymous { label } => label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_hex_strings_on_the_wire() {
        let id = CallId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""0123456789abcdef0011223344556677""#);
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
        for bad in [
            r#""""#,
            r#""12""#,
            r#""zz23456789abcdef0011223344556677""#,
            "12",
        ] {
            assert!(serde_json::from_str::<CallId>(bad).is_err(), "{bad}");
        }
    }
}
