//! What keeps a code call between the two people who share the code: SPAKE2 over the room's
//! mailbox with the whole code (the server only ever sees its first digits), key confirmation,
//! sealing with keys derived from the shared key, and the verification words both screens
//! show. Pure Rust: the browser runs it (wasm) and the unit tests run it natively.

use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::words::WORDS;
use crate::rendezvous::Side;

/// A sealed frame's random nonce (XChaCha20: 192 bits, safe to pick at random for every
/// frame, so nothing has to count across reloads).
pub const NONCE_LEN: usize = 24;

/// One side's half of a PAKE run, waiting for the other side's message.
pub struct Pending {
    side: Side,
    room: String,
    state: Spake2<Ed25519Group>,
}

/// Both sides' identities name the room, so a message from one room is useless in another.
fn identities(room: &str) -> (Identity, Identity) {
    (
        Identity::new(format!("parlor code A {room}").as_bytes()),
        Identity::new(format!("parlor code B {room}").as_bytes()),
    )
}

/// Starts a run as `side` with the whole code (room digits and secret digits); returns the
/// state to keep and the message to send.
pub fn start(
    side: Side,
    room: &str,
    code: &str,
    rng: impl CryptoRng + RngCore,
) -> (Pending, Vec<u8>) {
    let (a, b) = identities(room);
    let password = Password::new(code.as_bytes());
    let (state, message) = match side {
        Side::A => Spake2::<Ed25519Group>::start_a_with_rng(&password, &a, &b, rng),
        Side::B => Spake2::<Ed25519Group>::start_b_with_rng(&password, &a, &b, rng),
    };
    let pending = Pending {
        side,
        room: room.to_string(),
        state,
    };
    (pending, message)
}

impl Pending {
    /// Finishes with the other side's message. A different code does not fail here: it gives
    /// a different key, which the key confirmation then catches.
    pub fn finish(self, theirs: &[u8]) -> Option<Keys> {
        let shared = self.state.finish(theirs).ok()?;
        Some(Keys::derive(self.side, &self.room, &shared))
    }
}

/// The keys of one established (or, until confirmed, candidate) run, as one side holds them.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    side: Side,
    room: String,
    shared: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::A => "A",
        Side::B => "B",
    }
}

impl Keys {
    fn derive(side: Side, room: &str, shared: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(room.as_bytes()), shared)
            .expand(b"parlor code key", &mut key)
            .expect("32 bytes is a valid HKDF length");
        Self {
            side,
            room: room.to_string(),
            shared: key,
        }
    }

    fn expand<const N: usize>(&self, label: &str) -> [u8; N] {
        let mut out = [0u8; N];
        Hkdf::<Sha256>::from_prk(&self.shared)
            .expect("32 bytes is a valid HKDF key")
            .expand(label.as_bytes(), &mut out)
            .expect("a valid HKDF length");
        out
    }

    /// This side's proof that it holds the key (reveals nothing about the other keys).
    pub fn confirmation(&self) -> [u8; 32] {
        self.expand(&format!("confirm {}", side_name(self.side)))
    }

    /// Whether the other side's proof matches the key this side holds (constant time).
    pub fn confirms(&self, theirs: &[u8]) -> bool {
        let expected: [u8; 32] = self.expand(&format!("confirm {}", side_name(self.side.other())));
        theirs.len() == expected.len()
            && theirs
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn cipher(&self, from: Side) -> XChaCha20Poly1305 {
        let key: [u8; 32] = self.expand(&format!("seal from {}", side_name(from)));
        XChaCha20Poly1305::new(&key.into())
    }

    fn aad(&self, from: Side) -> Vec<u8> {
        format!("parlor code {} from {}", self.room, side_name(from)).into_bytes()
    }

    /// Seals a frame from this side to the other.
    pub fn seal(&self, plain: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let aad = self.aad(self.side);
        self.cipher(self.side)
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("sealing in memory does not fail")
    }

    /// Opens a frame the other side sealed; `None` if it was not sealed with this key, in
    /// that direction, for this room, or was altered.
    pub fn open(&self, sealed: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let from = self.side.other();
        let aad = self.aad(from);
        self.cipher(from)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()
    }

    /// Three words both screens show; equal only if both hold the same key.
    pub fn words(&self) -> [&'static str; 3] {
        let bytes: [u8; 3] = self.expand("verification words");
        bytes.map(|b| WORDS[usize::from(b)])
    }

    /// The key as hex, to keep across a reload (in the tab's session storage only).
    pub fn to_hex(&self) -> String {
        hex(&self.shared)
    }

    pub fn from_hex(side: Side, room: &str, text: &str) -> Option<Self> {
        let shared: [u8; 32] = unhex(text)?.try_into().ok()?;
        Some(Self {
            side,
            room: room.to_string(),
            shared,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    const ROOM: &str = "0f6c1d2e-1111-4222-8333-444455556666";

    fn run(code_a: &str, code_b: &str) -> (Keys, Keys) {
        let (a, msg_a) = start(Side::A, ROOM, code_a, OsRng);
        let (b, msg_b) = start(Side::B, ROOM, code_b, OsRng);
        (a.finish(&msg_b).unwrap(), b.finish(&msg_a).unwrap())
    }

    #[test]
    fn the_same_code_gives_the_same_key_words_and_working_seals() {
        let (a, b) = run("4829137150", "4829137150");
        assert!(a.confirms(&b.confirmation()) && b.confirms(&a.confirmation()));
        assert_eq!(a.words(), b.words());
        let nonce = [7u8; NONCE_LEN];
        let sealed = a.seal(b"offer sdp", &nonce);
        assert_eq!(b.open(&sealed, &nonce).as_deref(), Some(&b"offer sdp"[..]));
        // A frame goes one way only: the sender cannot open its own (a reflected frame).
        assert_eq!(a.open(&sealed, &nonce), None);
    }

    #[test]
    fn a_wrong_secret_fails_the_confirmation_and_opens_nothing() {
        let (a, b) = run("4829137150", "4829137151");
        assert!(!a.confirms(&b.confirmation()));
        assert!(!b.confirms(&a.confirmation()));
        let nonce = [1u8; NONCE_LEN];
        assert_eq!(b.open(&a.seal(b"x", &nonce), &nonce), None);
        assert_ne!(a.words(), b.words());
    }

    #[test]
    fn altered_frames_or_another_room_open_nothing() {
        let (a, b) = run("123456", "123456");
        let nonce = [9u8; NONCE_LEN];
        let mut sealed = a.seal(b"candidate", &nonce);
        sealed[0] ^= 1;
        assert_eq!(b.open(&sealed, &nonce), None);
        let sealed = a.seal(b"candidate", &nonce);
        assert_eq!(b.open(&sealed, &[8u8; NONCE_LEN]), None);
        assert_eq!(b.open(&sealed, &nonce[..23]), None);
        let elsewhere = Keys::from_hex(Side::B, "another room", &b.to_hex()).unwrap();
        assert_eq!(elsewhere.open(&sealed, &nonce), None);
    }

    #[test]
    fn keys_survive_a_reload_as_hex_and_bad_hex_is_refused() {
        let (a, b) = run("99887766", "99887766");
        let back = Keys::from_hex(Side::B, ROOM, &b.to_hex()).unwrap();
        assert_eq!(back, b);
        assert!(back.confirms(&a.confirmation()));
        for bad in ["", "zz", "abc", &b.to_hex()[2..]] {
            assert!(Keys::from_hex(Side::B, ROOM, bad).is_none(), "{bad}");
        }
        assert!(format!("{b:?}").find(&b.to_hex()).is_none());
    }

    #[test]
    fn garbage_from_the_other_side_is_refused() {
        let (a, _) = start(Side::A, ROOM, "1234", OsRng);
        assert!(a.finish(&[0x42; 5]).is_none());
        // A's own message reflected back to it.
        let (a, msg_a) = start(Side::A, ROOM, "1234", OsRng);
        assert!(a.finish(&msg_a).is_none());
    }
}
