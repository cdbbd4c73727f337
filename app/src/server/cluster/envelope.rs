//! What one instance publishes for the others' sockets: a frame for every socket of a
//! principal (or all but one), for one socket, or an order to close sessions; and the work
//! instances hand each other (calls, strangers, code rooms and their proxied sockets). Written
//! as a few header lines and the frame's text as is (no second JSON encoding):
//!
//! ```text
//! <op>\n<origin instance>\n<principal key>\n<argument>\n<frame type>\n<frame text>
//! ```
//!
//! Only Parlor instances write to Redis; a payload that does not parse is dropped and logged.

use std::{borrow::Cow, sync::Mutex};

use serde::{Deserialize, Serialize};

use crate::{
    protocol::CallEndReason,
    rendezvous::{AppId, Side},
    server::{
        auth::PrincipalId,
        hub::{InstanceId, SocketRef},
        rendezvous::RoomOp,
    },
    wire::CallId,
};

/// What a socket on another instance sent, for the instance that runs strangers (see
/// [`super::Cluster::forward_remote`]): who sent it, from which address (as limits count
/// it), and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWork {
    pub principal: crate::server::auth::Principal,
    pub address: String,
    pub work: StrangerWork,
}

/// A socket's strangers business, forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "work", rename_all = "snake_case")]
pub enum StrangerWork {
    Message {
        message: crate::protocol::ClientMsg,
    },
    /// The socket closed (it had used strangers).
    SocketClosed,
}

/// A moderation decision for the strangers' queue and matches, carried out where strangers
/// run. Principals as [`PrincipalId::key`] writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum StrangersOrder {
    /// Restricted (looks, never matched) or no longer.
    Shadow { who: String, on: bool },
    /// Banned until `until`, with everyone on `address`: out of the queue and their match.
    Ban {
        who: String,
        address: String,
        until: String,
    },
}

/// An operation a socket asked for on a call another instance holds (see
/// [`Cluster::holder_of`](super::Cluster::holder_of)), carried out there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CallOp {
    Accept,
    Reject,
    HangUp,
    Signal {
        data: String,
    },
    Resume,
    /// The socket that accepted or resumed the call closed.
    SocketClosed,
}

/// One delivery or order between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// For every socket of `to`.
    All {
        origin: InstanceId,
        to: PrincipalId,
        kind: &'static str,
        text: String,
    },
    /// For every socket of `to` but `except`.
    Others {
        origin: InstanceId,
        to: PrincipalId,
        except: SocketRef,
        kind: &'static str,
        text: String,
    },
    /// For one socket (published on its instance's channel).
    Socket {
        origin: InstanceId,
        to: PrincipalId,
        conn: u64,
        kind: &'static str,
        text: String,
    },
    /// Close the user's sockets opened with an older token version (all: `None`).
    EndSessions {
        origin: InstanceId,
        user: i64,
        token_version: Option<i64>,
    },
    /// Close the user's sockets opened with this session.
    EndSession {
        origin: InstanceId,
        user: i64,
        session_id: String,
    },
    /// `who`, on `socket`, asks for `op` on `call` (published on the holder's channel).
    Call {
        origin: InstanceId,
        who: PrincipalId,
        socket: SocketRef,
        call: CallId,
        op: CallOp,
    },
    /// A moderation decision, for the instance that runs strangers.
    Order {
        origin: InstanceId,
        order: StrangersOrder,
    },
    /// `who` is in `call` on the origin instance now (`None`: in none there any more).
    Busy {
        origin: InstanceId,
        who: PrincipalId,
        call: Option<CallId>,
    },
    /// A socket's strangers business, for the instance that runs strangers.
    Remote {
        origin: InstanceId,
        socket: SocketRef,
        work: RemoteWork,
    },
    /// End any call between users `a` and `b` (a block or an unfriend; to every instance).
    EndBetween {
        origin: InstanceId,
        a: i64,
        b: i64,
        reason: CallEndReason,
    },
    /// What a room socket proxied on the origin said, for the room's home.
    Room {
        origin: InstanceId,
        socket: SocketRef,
        room: AppId,
        side: Side,
        op: RoomOp,
    },
    /// A frame for a room socket proxied where this is published (`seq`: its mailbox number,
    /// 0 for other frames).
    RoomFrame {
        origin: InstanceId,
        conn: u64,
        seq: u64,
        kind: &'static str,
        text: String,
    },
    /// Close a room socket proxied where this is published.
    RoomClose {
        origin: InstanceId,
        conn: u64,
        code: u16,
        reason: &'static str,
    },
    /// A room with this TURN tag expired (to every instance).
    RoomGone { origin: InstanceId, turn_tag: u64 },
    /// The code of `room` (held where this is published) was redeemed on the origin.
    CodeRedeemed { origin: InstanceId, room: AppId },
}

/// Why a payload was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed envelope: {0}")]
pub struct Malformed(&'static str);

impl Envelope {
    pub fn origin(&self) -> InstanceId {
        match self {
            Envelope::All { origin, .. }
            | Envelope::Others { origin, .. }
            | Envelope::Socket { origin, .. }
            | Envelope::EndSessions { origin, .. }
            | Envelope::EndSession { origin, .. }
            | Envelope::Call { origin, .. }
            | Envelope::Remote { origin, .. }
            | Envelope::Busy { origin, .. }
            | Envelope::Order { origin, .. }
            | Envelope::EndBetween { origin, .. }
            | Envelope::Room { origin, .. }
            | Envelope::RoomFrame { origin, .. }
            | Envelope::RoomClose { origin, .. }
            | Envelope::RoomGone { origin, .. }
            | Envelope::CodeRedeemed { origin, .. } => *origin,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (op, origin, to, arg, kind, text) = match self {
            Envelope::All {
                origin,
                to,
                kind,
                text,
            } => ("A", origin, to.key(), String::new(), *kind, Cow::from(text)),
            Envelope::Others {
                origin,
                to,
                except,
                kind,
                text,
            } => (
                "O",
                origin,
                to.key(),
                socket_text(except),
                *kind,
                Cow::from(text),
            ),
            Envelope::Socket {
                origin,
                to,
                conn,
                kind,
                text,
            } => (
                "S",
                origin,
                to.key(),
                conn.to_string(),
                *kind,
                Cow::from(text),
            ),
            Envelope::EndSessions {
                origin,
                user,
                token_version,
            } => (
                "E",
                origin,
                PrincipalId::User(*user).key(),
                token_version.map_or_else(String::new, |v| v.to_string()),
                "",
                Cow::from(""),
            ),
            Envelope::EndSession {
                origin,
                user,
                session_id,
            } => (
                "X",
                origin,
                PrincipalId::User(*user).key(),
                session_id.clone(),
                "",
                Cow::from(""),
            ),
            Envelope::Call {
                origin,
                who,
                socket,
                call,
                op,
            } => (
                "C",
                origin,
                who.key(),
                format!("{}:{call}", socket_text(socket)),
                "",
                Cow::from(serde_json::to_string(op).unwrap_or_default()),
            ),
            Envelope::Order { origin, order } => (
                "Z",
                origin,
                NOBODY.key(),
                String::new(),
                "",
                Cow::from(serde_json::to_string(order).unwrap_or_default()),
            ),
            Envelope::Busy { origin, who, call } => (
                "U",
                origin,
                who.key(),
                call.map_or_else(String::new, |c| c.to_string()),
                "",
                Cow::from(""),
            ),
            Envelope::Remote {
                origin,
                socket,
                work,
            } => (
                "M",
                origin,
                work.principal.id().key(),
                socket_text(socket),
                "",
                Cow::from(serde_json::to_string(work).unwrap_or_default()),
            ),
            Envelope::EndBetween {
                origin,
                a,
                b,
                reason,
            } => (
                "B",
                origin,
                PrincipalId::User(*a).key(),
                b.to_string(),
                "",
                Cow::from(serde_json::to_string(reason).unwrap_or_default()),
            ),
            Envelope::Room {
                origin,
                socket,
                room,
                side,
                op,
            } => (
                "R",
                origin,
                NOBODY.key(),
                socket_text(socket),
                "",
                Cow::from(format!(
                    "{room} {} {}",
                    side_text(*side),
                    serde_json::to_string(op).unwrap_or_default()
                )),
            ),
            Envelope::RoomFrame {
                origin,
                conn,
                seq,
                kind,
                text,
            } => (
                "F",
                origin,
                NOBODY.key(),
                format!("{conn}:{seq}"),
                *kind,
                Cow::from(text),
            ),
            Envelope::RoomClose {
                origin,
                conn,
                code,
                reason,
            } => (
                "K",
                origin,
                NOBODY.key(),
                format!("{conn}:{code}"),
                "",
                Cow::from(*reason),
            ),
            Envelope::RoomGone { origin, turn_tag } => (
                "G",
                origin,
                NOBODY.key(),
                format!("{turn_tag:x}"),
                "",
                Cow::from(""),
            ),
            Envelope::CodeRedeemed { origin, room } => (
                "D",
                origin,
                NOBODY.key(),
                room.to_string(),
                "",
                Cow::from(""),
            ),
        };
        format!("{op}\n{:x}\n{to}\n{arg}\n{kind}\n{text}", origin.0).into_bytes()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, Malformed> {
        let text = std::str::from_utf8(payload).map_err(|_| Malformed("not UTF-8"))?;
        let mut parts = text.splitn(6, '\n');
        let mut next = |what| parts.next().ok_or(Malformed(what));
        let (op, origin, to, arg, kind, text) = (
            next("op")?,
            next("origin")?,
            next("principal")?,
            next("argument")?,
            next("type")?,
            next("text")?,
        );
        let origin = InstanceId(u64::from_str_radix(origin, 16).map_err(|_| Malformed("origin"))?);
        let to = PrincipalId::from_key(to).ok_or(Malformed("principal"))?;
        let user = || match to {
            PrincipalId::User(id) => Ok(id),
            PrincipalId::Guest(_) => Err(Malformed("sessions are a user's")),
        };
        Ok(match op {
            "A" => Envelope::All {
                origin,
                to,
                kind: intern(kind),
                text: text.to_string(),
            },
            "O" => Envelope::Others {
                origin,
                to,
                except: parse_socket(arg)?,
                kind: intern(kind),
                text: text.to_string(),
            },
            "S" => Envelope::Socket {
                origin,
                to,
                conn: arg.parse().map_err(|_| Malformed("socket"))?,
                kind: intern(kind),
                text: text.to_string(),
            },
            "E" => Envelope::EndSessions {
                origin,
                user: user()?,
                token_version: match arg {
                    "" => None,
                    v => Some(v.parse().map_err(|_| Malformed("token version"))?),
                },
            },
            "X" => Envelope::EndSession {
                origin,
                user: user()?,
                session_id: arg.to_string(),
            },
            "C" => {
                let (socket, call) = arg.rsplit_once(':').ok_or(Malformed("call"))?;
                Envelope::Call {
                    origin,
                    who: to,
                    socket: parse_socket(socket)?,
                    call: call.parse().map_err(|_| Malformed("call"))?,
                    op: serde_json::from_str(text).map_err(|_| Malformed("call op"))?,
                }
            }
            "Z" => Envelope::Order {
                origin,
                order: serde_json::from_str(text).map_err(|_| Malformed("order"))?,
            },
            "U" => Envelope::Busy {
                origin,
                who: to,
                call: match arg {
                    "" => None,
                    call => Some(call.parse().map_err(|_| Malformed("call"))?),
                },
            },
            "M" => {
                let work: RemoteWork =
                    serde_json::from_str(text).map_err(|_| Malformed("remote work"))?;
                if work.principal.id() != to {
                    return Err(Malformed("principal"));
                }
                Envelope::Remote {
                    origin,
                    socket: parse_socket(arg)?,
                    work,
                }
            }
            "B" => Envelope::EndBetween {
                origin,
                a: user()?,
                b: arg.parse().map_err(|_| Malformed("user"))?,
                reason: serde_json::from_str(text).map_err(|_| Malformed("reason"))?,
            },
            "R" => {
                let mut parts = text.splitn(3, ' ');
                let room = parts.next().and_then(|r| r.parse().ok());
                let side = parts.next().and_then(Side::parse);
                let op = parts.next().and_then(|op| serde_json::from_str(op).ok());
                let (Some(room), Some(side), Some(op)) = (room, side, op) else {
                    return Err(Malformed("room work"));
                };
                Envelope::Room {
                    origin,
                    socket: parse_socket(arg)?,
                    room,
                    side,
                    op,
                }
            }
            "F" => {
                let (conn, seq) = numbers(arg).ok_or(Malformed("room frame"))?;
                Envelope::RoomFrame {
                    origin,
                    conn,
                    seq,
                    kind: intern(kind),
                    text: text.to_string(),
                }
            }
            "K" => {
                let (conn, code) = numbers(arg).ok_or(Malformed("room close"))?;
                Envelope::RoomClose {
                    origin,
                    conn,
                    code: u16::try_from(code).map_err(|_| Malformed("room close"))?,
                    reason: intern(text),
                }
            }
            "G" => Envelope::RoomGone {
                origin,
                turn_tag: u64::from_str_radix(arg, 16).map_err(|_| Malformed("tag"))?,
            },
            "D" => Envelope::CodeRedeemed {
                origin,
                room: arg.parse().map_err(|_| Malformed("room"))?,
            },
            _ => return Err(Malformed("op")),
        })
    }
}

/// The principal written in envelopes that concern nobody's sockets (rooms, orders).
const NOBODY: PrincipalId = PrincipalId::User(0);

fn side_text(side: Side) -> &'static str {
    match side {
        Side::A => "A",
        Side::B => "B",
    }
}

/// `<a>:<b>`, two numbers.
fn numbers(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A socket's address as envelopes write it: `<instance hex>:<connection>`.
fn socket_text(socket: &SocketRef) -> String {
    format!("{:x}:{}", socket.instance.0, socket.conn)
}

fn parse_socket(text: &str) -> Result<SocketRef, Malformed> {
    let (instance, conn) = text.split_once(':').ok_or(Malformed("socket"))?;
    Ok(SocketRef {
        instance: InstanceId(u64::from_str_radix(instance, 16).map_err(|_| Malformed("socket"))?),
        conn: conn.parse().map_err(|_| Malformed("socket"))?,
    })
}

/// Frame types name metrics labels, which are `&'static str`: the few types there are, each
/// kept once. Past [`MAX_KINDS`] (only a bug could get there), `other`.
fn intern(kind: &str) -> &'static str {
    const MAX_KINDS: usize = 128;
    static KINDS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut kinds = KINDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = kinds.iter().find(|k| **k == kind) {
        return known;
    }
    if kinds.len() >= MAX_KINDS || kind.len() > 64 {
        return "other";
    }
    let leaked: &'static str = Box::leak(kind.to_string().into_boxed_str());
    kinds.push(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::GuestId;

    #[test]
    fn every_envelope_round_trips_with_its_text_untouched() {
        let origin = InstanceId(0xfeed_beef);
        let text = "{\"type\":\"message\",\"body\":\"two\\nlines\\n\\nand more\"}".to_string();
        for envelope in [
            Envelope::All {
                origin,
                to: PrincipalId::User(42),
                kind: "message",
                text: text.clone(),
            },
            Envelope::Others {
                origin,
                to: PrincipalId::Guest(GuestId(7)),
                except: SocketRef {
                    instance: InstanceId(u64::MAX),
                    conn: 9,
                },
                kind: "typing",
                text: text.clone(),
            },
            Envelope::Socket {
                origin,
                to: PrincipalId::User(1),
                conn: 3,
                kind: "call_signal",
                text: String::new(),
            },
            Envelope::EndSessions {
                origin,
                user: 5,
                token_version: Some(2),
            },
            Envelope::EndSessions {
                origin,
                user: 5,
                token_version: None,
            },
            Envelope::EndSession {
                origin,
                user: 5,
                session_id: "0123456789abcdef0123456789abcdef".into(),
            },
            Envelope::Call {
                origin,
                who: PrincipalId::Guest(GuestId(3)),
                socket: SocketRef {
                    instance: InstanceId(12),
                    conn: 4,
                },
                call: CallId(u128::MAX - 5),
                op: CallOp::Signal {
                    data: "{\"sdp\":\"v=0\\r\\n\"}\n".into(),
                },
            },
            Envelope::Call {
                origin,
                who: PrincipalId::User(3),
                socket: SocketRef {
                    instance: InstanceId(12),
                    conn: 4,
                },
                call: CallId(1),
                op: CallOp::SocketClosed,
            },
            Envelope::EndBetween {
                origin,
                a: 1,
                b: 2,
                reason: CallEndReason::NotAllowed,
            },
            Envelope::Order {
                origin,
                order: StrangersOrder::Ban {
                    who: "g:00000000000000000000000000000009".into(),
                    address: "abc".into(),
                    until: "2026-11-26T00:00:00.000Z".into(),
                },
            },
            Envelope::Busy {
                origin,
                who: PrincipalId::User(4),
                call: Some(CallId(u128::MAX / 3)),
            },
            Envelope::Room {
                origin,
                socket: SocketRef {
                    instance: InstanceId(5),
                    conn: 77,
                },
                room: AppId::from_random(u128::MAX / 7),
                side: Side::B,
                op: RoomOp::Relay {
                    kind: "offer".into(),
                    text: "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n a b\"}\n".into(),
                },
            },
            Envelope::Room {
                origin,
                socket: SocketRef {
                    instance: InstanceId(5),
                    conn: 1,
                },
                room: AppId::from_random(3),
                side: Side::A,
                op: RoomOp::Join {
                    session: Some("tab-1".into()),
                },
            },
            Envelope::RoomFrame {
                origin,
                conn: 9,
                seq: 12,
                kind: "deliver",
                text: text.clone(),
            },
            Envelope::RoomClose {
                origin,
                conn: 9,
                code: 1008,
                reason: "side_busy",
            },
            Envelope::RoomGone {
                origin,
                turn_tag: u64::MAX,
            },
            Envelope::CodeRedeemed {
                origin,
                room: AppId::from_random(99),
            },
            Envelope::Busy {
                origin,
                who: PrincipalId::Guest(GuestId(4)),
                call: None,
            },
            Envelope::Remote {
                origin,
                socket: SocketRef {
                    instance: InstanceId(3),
                    conn: 8,
                },
                work: RemoteWork {
                    principal: crate::server::auth::Principal::Guest(GuestId(u128::MAX)),
                    address: "203.0.113.0/24".into(),
                    work: StrangerWork::Message {
                        message: crate::protocol::ClientMsg::StrangerChat {
                            text: "hi\nthere".into(),
                        },
                    },
                },
            },
        ] {
            assert_eq!(Envelope::decode(&envelope.encode()), Ok(envelope.clone()));
        }
    }

    #[test]
    fn garbage_is_refused_not_delivered() {
        for bad in [
            &b""[..],
            b"A\nzz\nu:1\n\nmessage\n{}",
            b"A\n1\nnobody\n\nmessage\n{}",
            b"Q\n1\nu:1\n\nmessage\n{}",
            b"E\n1\ng:00000000000000000000000000000001\n\n\n",
            b"O\n1\nu:1\nnot-a-socket\nmessage\n{}",
            b"A\n1\nu:1",
            b"R\n1\nu:0\n1:2\n\nnot-a-room A {\"op\":\"leave\"}",
            b"R\n1\nu:0\n1:2\n\n00000000-0000-4000-8000-000000000000 C {\"op\":\"leave\"}",
            b"F\n1\nu:0\n9\ndeliver\n{}",
            b"K\n1\nu:0\n9:70000\n\nbye",
            &[0xff, 0xfe][..],
        ] {
            assert!(Envelope::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn types_are_kept_once_and_bounded() {
        assert!(std::ptr::eq(intern("presence"), intern("presence")));
        assert_eq!(intern(&"x".repeat(65)), "other");
    }
}
