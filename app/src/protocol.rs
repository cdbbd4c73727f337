//! The real-time channel's messages (`/ws`), shared by the browser and the server: what each
//! side may send, as typed enums serialised to JSON text frames. `docs/protocol.md` describes
//! the flow; the limits below are the server's and the browser checks them before sending.

use serde::{Deserialize, Serialize};

use crate::{
    strangers::{MatchEnd, ReportReason},
    wire::{CallId, CallPeer, MessageView, UserCard},
};

/// The longest message text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The longest frame the server accepts, in bytes (a maximal message in the worst case of
/// escaping fits). Larger frames close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// The longest id a client may give its message.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// From the browser to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Asks for a `Pong`: the browser's way to notice a dead connection.
    Ping,
    /// Asks for every message newer than `after` (the newest message id this browser has
    /// seen) in the user's conversations: answered with `Backlog`.
    Resume {
        after: i64,
    },
    /// Sends a message. `client_id` is chosen by the browser and makes resending safe: the
    /// server stores one message per (sender, client id).
    Send {
        conversation_id: i64,
        client_id: String,
        body: String,
    },
    /// The user is typing in a conversation (sent at most every few seconds).
    Typing {
        conversation_id: i64,
    },
    /// How far this user has received and read a conversation (message ids; only growth
    /// counts).
    Receipt {
        conversation_id: i64,
        delivered_up_to: i64,
        read_up_to: i64,
    },
    /// Rings a friend. `request_id` is the browser's own number for this attempt: the answer
    /// (`call_ringing`, or `call_refused` when busy or not allowed) carries it back.
    CallStart {
        request_id: u32,
        to: i64,
        video: bool,
    },
    /// Answers a ringing call on this socket (the user's other tabs stop ringing).
    CallAccept {
        call_id: CallId,
    },
    CallReject {
        call_id: CallId,
    },
    /// Cancels a call that is still ringing, or hangs up.
    CallHangup {
        call_id: CallId,
    },
    /// WebRTC signaling for the other party (offer, answer, ICE candidate...), opaque to the
    /// server. Only between the two sockets of an answered call.
    CallSignal {
        call_id: CallId,
        data: String,
    },
    /// After reconnecting: this socket takes over its side of the call.
    CallResume {
        call_id: CallId,
    },
    /// Looks for a stranger (again): `interests` as typed (see
    /// `crate::strangers::normalize_interests`), `text_only` for chat without a camera.
    /// Refused unless `accept_rules` (the user is 18 or older and accepts the rules). Started
    /// from another tab, that tab stops.
    StrangerStart {
        interests: Vec<String>,
        text_only: bool,
        accept_rules: bool,
    },
    /// Ends this match and looks for a new one at once, with the same interests.
    StrangerNext,
    /// Ends this match, or stops looking.
    StrangerStop,
    /// A chat line for the stranger (relayed by the server, never stored).
    StrangerChat {
        text: String,
    },
    /// Reports the current or last stranger. `include_chat`: the user consents to attach the
    /// match's last chat lines.
    StrangerReport {
        reason: ReportReason,
        note: String,
        include_chat: bool,
    },
    /// Never match with the current or last stranger again (and end the match if any).
    StrangerBlock,
    /// "Add as friend" with the current stranger: when both pressed it (both signed in), the
    /// two become friends and learn each other's name.
    StrangerFriend,
}

/// A STUN or TURN server, in the shape `RTCPeerConnection` takes. Its `Debug` hides the
/// credential (configuration gets logged).
impl ClientMsg {
    /// The message's `type` on the wire (for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Resume { .. } => "resume",
            Self::Send { .. } => "send",
            Self::Typing { .. } => "typing",
            Self::Receipt { .. } => "receipt",
            Self::CallStart { .. } => "call_start",
            Self::CallAccept { .. } => "call_accept",
            Self::CallReject { .. } => "call_reject",
            Self::CallHangup { .. } => "call_hangup",
            Self::CallSignal { .. } => "call_signal",
            Self::CallResume { .. } => "call_resume",
            Self::StrangerStart { .. } => "stranger_start",
            Self::StrangerNext => "stranger_next",
            Self::StrangerStop => "stranger_stop",
            Self::StrangerChat { .. } => "stranger_chat",
            Self::StrangerReport { .. } => "stranger_report",
            Self::StrangerBlock => "stranger_block",
            Self::StrangerFriend => "stranger_friend",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// From the server to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on every connection.
    Welcome {
        /// The signed-in user; `None` for a guest (who may use strangers and codes only).
        user_id: Option<i64>,
        /// The server pings this often; the browser should ping at the same pace and treat
        /// two silent intervals as a dead connection.
        heartbeat_ms: u64,
        /// The configured STUN/TURN servers (`PARLOR_ICE_SERVERS`); TURN credentials of the
        /// server's own come with each call (`call_accepted`, `call_opened`, `call_resumed`).
        ice_servers: Vec<IceServer>,
    },
    Pong,
    /// Answer to `Resume`, oldest first. `more` means the answer was cut short: ask again
    /// after the last one.
    Backlog {
        messages: Vec<MessageView>,
        more: bool,
    },
    /// A new message in one of the user's conversations (also to the sender's own tabs).
    Message {
        message: MessageView,
    },
    /// A member's receipts moved forward.
    Receipt {
        conversation_id: i64,
        user_id: i64,
        delivered_up_to: i64,
        read_up_to: i64,
    },
    /// The other member is typing.
    Typing {
        conversation_id: i64,
        user_id: i64,
    },
    /// A friend came online or went offline.
    Presence {
        user_id: i64,
        online: bool,
        /// RFC 3339, when going offline.
        last_seen: Option<String>,
    },
    /// Friends or requests changed (a request arrived, was accepted, a friend left...): read
    /// the friends list again.
    FriendsChanged,
    /// The call this socket started (`request_id` from its `call_start`) rings at the other
    /// end.
    CallRinging {
        request_id: u32,
        call_id: CallId,
        peer: CallPeer,
        video: bool,
    },
    /// The call this socket asked for (`request_id`) was not started: the other side is busy,
    /// or this call is not allowed.
    CallRefused {
        request_id: u32,
        reason: CallEndReason,
    },
    /// Someone is calling (to every socket of the callee).
    CallIncoming {
        call_id: CallId,
        from: CallPeer,
        video: bool,
    },
    /// The call was answered: to the caller's socket and the answering one. `you_offer` names
    /// the side that makes the WebRTC offer (the other one answers it).
    CallAccepted {
        call_id: CallId,
        you_offer: bool,
        /// The STUN/TURN servers for this call, with TURN credentials minted for this side of
        /// it only (they stop working when the call ends).
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// A call that does not ring (a stranger match, a code room) starts between this socket
    /// and `peer`'s: connect at once.
    CallOpened {
        call_id: CallId,
        peer: CallPeer,
        video: bool,
        you_offer: bool,
        /// As in `call_accepted`.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// This socket took over its side of the call again (`call_resume`), with fresh
    /// credentials (as in `call_accepted`) for its ICE restart.
    CallResumed {
        call_id: CallId,
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    CallEnded {
        call_id: CallId,
        reason: CallEndReason,
    },
    /// Signaling from the other party.
    CallSignal {
        call_id: CallId,
        data: String,
    },
    /// The other party's connection dropped (`false`; the call waits for them for a grace
    /// period) or came back (`true`).
    CallPeerConnection {
        call_id: CallId,
        connected: bool,
    },
    /// Looking for a stranger. `anyone`: nobody shares an interest right now, so anyone will
    /// do (after `crate::strangers::WIDEN_AFTER_SECS`).
    StrangerLooking {
        anyone: bool,
    },
    /// Matched: `shared` are the interests both gave (empty when matched with anyone). A
    /// video match's call follows at once (`call_opened`, relay-only); a `text_only` one has
    /// a call without media.
    StrangerMatched {
        shared: Vec<String>,
        text_only: bool,
        /// Both are signed in, so both may press "Add as friend".
        #[serde(default)]
        can_befriend: bool,
    },
    /// A chat line from the stranger.
    StrangerChat {
        text: String,
    },
    /// The match ended (or the looking stopped), saying why.
    StrangerEnded {
        reason: MatchEnd,
    },
    /// The report was saved.
    StrangerReported,
    /// The stranger is blocked: never matched with you again.
    StrangerBlocked,
    /// A moderator banned you from strangers until `until` (RFC 3339, UTC): any match ended,
    /// and starting again is refused with this same message until then.
    StrangerBanned {
        until: String,
    },
    /// The stranger pressed "Add as friend": pressing it too makes you friends.
    StrangerFriendAsked,
    /// Both pressed "Add as friend": you are friends now (`friends_changed` follows).
    StrangerFriends {
        user: UserCard,
        conversation_id: i64,
    },
    /// Something the browser sent was refused. The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        /// The `client_id` of the refused `Send`, if it was one.
        client_id: Option<String>,
    },
}

impl ServerMsg {
    /// The message's `type` on the wire (for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::Pong => "pong",
            Self::Backlog { .. } => "backlog",
            Self::Message { .. } => "message",
            Self::Receipt { .. } => "receipt",
            Self::Typing { .. } => "typing",
            Self::Presence { .. } => "presence",
            Self::FriendsChanged => "friends_changed",
            Self::CallRinging { .. } => "call_ringing",
            Self::CallRefused { .. } => "call_refused",
            Self::CallIncoming { .. } => "call_incoming",
            Self::CallAccepted { .. } => "call_accepted",
            Self::CallOpened { .. } => "call_opened",
            Self::CallResumed { .. } => "call_resumed",
            Self::CallEnded { .. } => "call_ended",
            Self::CallSignal { .. } => "call_signal",
            Self::CallPeerConnection { .. } => "call_peer_connection",
            Self::StrangerLooking { .. } => "stranger_looking",
            Self::StrangerMatched { .. } => "stranger_matched",
            Self::StrangerChat { .. } => "stranger_chat",
            Self::StrangerEnded { .. } => "stranger_ended",
            Self::StrangerReported => "stranger_reported",
            Self::StrangerBlocked => "stranger_blocked",
            Self::StrangerBanned { .. } => "stranger_banned",
            Self::StrangerFriendAsked => "stranger_friend_asked",
            Self::StrangerFriends { .. } => "stranger_friends",
            Self::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// The callee declined.
    Rejected,
    /// The caller gave up before an answer.
    Cancelled,
    /// Nobody answered in time.
    NoAnswer,
    /// The callee is in another call.
    Busy,
    /// One side hung up.
    HungUp,
    /// Another of the callee's tabs answered.
    AnsweredElsewhere,
    /// One side's connection did not come back within the grace period.
    ConnectionLost,
    /// You may not call this person (not friends, blocked), or are in a call already.
    NotAllowed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON or not a known message.
    BadFrame,
    /// Too many messages in a short time; this one was dropped.
    RateLimited,
    /// The text is empty or too long, or the client id is unusable.
    Invalid,
    /// No such conversation (or not yours: the same answer).
    NotFound,
    /// You may read this conversation but no longer post in it.
    NotAllowed,
    /// The server could not do it right now; try again.
    Unavailable,
    /// Guests cannot do this (friends, messages, calls to an account): sign in first.
    SignInRequired,
}

/// Close codes the server uses besides the standard ones.
pub mod close {
    /// The server is stopping: reconnect (with backoff).
    pub const GOING_AWAY: u16 = 1001;
    /// A frame above [`super::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// Repeated malformed frames or flooding.
    pub const POLICY: u16 = 1008;
    /// The session ended (signed out everywhere, password changed, account deleted): connect
    /// again to find out whether you are still signed in.
    pub const SESSION_ENDED: u16 = 4001;
}

/// Why a message text is refused, or the text to store (trimmed).
pub fn check_body(body: &str) -> Result<&str, String> {
    let body = body.trim();
    if body.is_empty() {
        return Err("A message cannot be empty.".into());
    }
    let chars = body.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(format!(
            "A message can have at most {MAX_MESSAGE_CHARS} characters (this one has {chars})."
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_json() {
        let frame = serde_json::to_string(&ClientMsg::Typing { conversation_id: 3 }).unwrap();
        assert_eq!(frame, r#"{"type":"typing","conversation_id":3}"#);
        let back: ServerMsg = serde_json::from_str(r#"{"type":"pong"}"#).unwrap();
        assert_eq!(back, ServerMsg::Pong);
    }

    #[test]
    fn kinds_name_the_wire_type() {
        fn wire_type<T: Serialize>(message: &T) -> String {
            serde_json::to_value(message).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        }
        let id = CallId(7);
        for message in [
            ClientMsg::Ping,
            ClientMsg::Resume { after: 0 },
            ClientMsg::Typing { conversation_id: 1 },
            ClientMsg::Receipt {
                conversation_id: 1,
                delivered_up_to: 0,
                read_up_to: 0,
            },
            ClientMsg::CallStart {
                request_id: 1,
                to: 2,
                video: true,
            },
            ClientMsg::CallAccept { call_id: id },
            ClientMsg::CallReject { call_id: id },
            ClientMsg::CallHangup { call_id: id },
            ClientMsg::CallSignal {
                call_id: id,
                data: String::new(),
            },
            ClientMsg::CallResume { call_id: id },
            ClientMsg::StrangerStart {
                interests: vec![],
                text_only: false,
                accept_rules: true,
            },
            ClientMsg::StrangerNext,
            ClientMsg::StrangerStop,
            ClientMsg::StrangerChat { text: "hi".into() },
            ClientMsg::StrangerReport {
                reason: ReportReason::Spam,
                note: String::new(),
                include_chat: false,
            },
            ClientMsg::StrangerBlock,
            ClientMsg::StrangerFriend,
        ] {
            assert_eq!(message.kind(), wire_type(&message));
        }
        for message in [
            ServerMsg::Pong,
            ServerMsg::FriendsChanged,
            ServerMsg::Typing {
                conversation_id: 1,
                user_id: 2,
            },
            ServerMsg::CallResumed {
                call_id: id,
                ice_servers: Vec::new(),
            },
            ServerMsg::CallPeerConnection {
                call_id: id,
                connected: true,
            },
            ServerMsg::CallRefused {
                request_id: 1,
                reason: CallEndReason::Busy,
            },
            ServerMsg::Error {
                code: ErrorCode::Invalid,
                message: String::new(),
                client_id: None,
            },
            ServerMsg::StrangerLooking { anyone: true },
            ServerMsg::StrangerMatched {
                shared: vec![],
                text_only: false,
                can_befriend: false,
            },
            ServerMsg::StrangerChat { text: "hi".into() },
            ServerMsg::StrangerEnded {
                reason: MatchEnd::Next,
            },
            ServerMsg::StrangerReported,
            ServerMsg::StrangerBlocked,
            ServerMsg::StrangerBanned {
                until: String::new(),
            },
            ServerMsg::StrangerFriendAsked,
            ServerMsg::StrangerFriends {
                user: UserCard {
                    id: 1,
                    display_name: "Ann".into(),
                },
                conversation_id: 2,
            },
        ] {
            assert_eq!(message.kind(), wire_type(&message));
        }
    }

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(check_body("  hi \n"), Ok("hi"));
        assert!(check_body(" \n ").is_err());
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        assert!(check_body(&long).unwrap_err().contains("at most"));
        assert!(check_body(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        // The worst case of JSON escaping still fits in a frame.
        let worst = ClientMsg::Send {
            conversation_id: i64::MAX,
            client_id: "x".repeat(MAX_CLIENT_ID_CHARS),
            body: "\u{1}".repeat(MAX_MESSAGE_CHARS),
        };
        assert!(serde_json::to_string(&worst).unwrap().len() <= MAX_FRAME_BYTES);
    }
}
