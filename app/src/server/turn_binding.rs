//! What a TURN credential is bound to: the `principal` part of its `expiry:principal`
//! username names one party of one call, a code room, a connection test or the server's own
//! self-test. Calls and rooms mint credentials for their parties only, and the built-in TURN
//! server refuses them once that call or room is over (an external coturn checks the expiry
//! only).

use super::{auth::PrincipalId, calls::CallRegistry, rendezvous::Rooms};
use crate::wire::CallId;

/// What one TURN username is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnBinding {
    /// `who`'s side of call `call`: `u42@<call>`, `g<guest>@<call>`.
    Call { who: PrincipalId, call: CallId },
    /// Either side of the code room with this tag (not the room's id, which is its secret):
    /// `code@<tag>`.
    Room { tag: u64 },
    /// A connection test from the connectivity page: `test`.
    Test,
    /// The server checking that it relays: `self-test`.
    SelfTest,
}

impl TurnBinding {
    /// The principal part of the username.
    pub fn label(&self) -> String {
        match self {
            TurnBinding::Call { who, call } => match who {
                PrincipalId::User(id) => format!("u{id}@{call}"),
                PrincipalId::Guest(guest) => format!("g{:032x}@{call}", guest.0),
            },
            TurnBinding::Room { tag } => format!("code@{tag:016x}"),
            TurnBinding::Test => "test".into(),
            TurnBinding::SelfTest => "self-test".into(),
        }
    }

    /// The binding [`label`](Self::label) wrote; `None` for anything else.
    pub fn parse(label: &str) -> Option<Self> {
        match label {
            "test" => return Some(TurnBinding::Test),
            "self-test" => return Some(TurnBinding::SelfTest),
            _ => {}
        }
        let (who, bound) = label.split_once('@')?;
        if who == "code" {
            return hex(bound, 16).map(|tag| TurnBinding::Room { tag: tag as u64 });
        }
        let call = CallId(hex(bound, 32)?);
        let who = match who.split_at_checked(1)? {
            ("u", id) if id.bytes().all(|b| b.is_ascii_digit()) => {
                PrincipalId::User(id.parse().ok()?)
            }
            ("g", guest) => PrincipalId::Guest(super::auth::GuestId(hex(guest, 32)?)),
            _ => return None,
        };
        Some(TurnBinding::Call { who, call })
    }

    /// Whether credentials bound like this still work: the call still has this party, the
    /// room still exists. Tests and the self-test end with their credentials' expiry.
    pub fn live(&self, calls: &dyn CallRegistry, rooms: &Rooms) -> bool {
        match *self {
            TurnBinding::Call { who, call } => calls.holds(who, call),
            TurnBinding::Room { tag } => rooms.has_turn_tag(tag),
            TurnBinding::Test | TurnBinding::SelfTest => true,
        }
    }
}

/// Exactly `digits` lowercase hex digits.
fn hex(text: &str, digits: usize) -> Option<u128> {
    (text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::GuestId;

    #[test]
    fn labels_read_back_and_nothing_else_does() {
        let call = CallId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        for binding in [
            TurnBinding::Call {
                who: PrincipalId::User(42),
                call,
            },
            TurnBinding::Call {
                who: PrincipalId::Guest(GuestId(u128::MAX - 5)),
                call,
            },
            TurnBinding::Room { tag: 0xfeed },
            TurnBinding::Test,
            TurnBinding::SelfTest,
        ] {
            let label = binding.label();
            assert!(!label.contains(':'), "{label}");
            assert_eq!(TurnBinding::parse(&label), Some(binding), "{label}");
        }
        assert_eq!(
            TurnBinding::Call {
                who: PrincipalId::User(42),
                call
            }
            .label(),
            "u42@0123456789abcdef0011223344556677"
        );
        for bad in [
            "",
            "u42",
            "guest",
            "u42@",
            "u@0123456789abcdef0011223344556677",
            "u-1@0123456789abcdef0011223344556677",
            "u+1@0123456789abcdef0011223344556677",
            "x42@0123456789abcdef0011223344556677",
            "u42@0123456789ABCDEF0011223344556677",
            "u42@0123456789abcdef001122334455667",
            "g12@0123456789abcdef0011223344556677",
            "code@12",
            "code@+00000000000000f",
            "u42@0123456789abcdef0011223344556677@x",
        ] {
            assert_eq!(TurnBinding::parse(bad), None, "{bad}");
        }
    }
}
