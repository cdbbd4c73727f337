//! What the two browsers of a code room say to each other through its mailbox, and the
//! handshake that turns the shared code into keys.
//!
//! The creator (side A) starts a PAKE run each time its page loads without keys; the joiner
//! (B) answers every run it receives with its message and its proof of the key; A checks the
//! proof of the run it holds (answers to runs lost in a reload are ignored), then sends its own
//! proof (`ok`), or `wrong` and the room is spent: one wrong guess per code. Everything after
//! that is [`Inner`], sealed. Pure logic over [`super::secure`], tested natively; the browser
//! keeps [`Saved`] in the tab's session storage so a reload resumes where it was.

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use super::secure::{self, hex, unhex, Keys, Pending, NONCE_LEN};
use crate::{rendezvous::Side, webrtc::Signal};

/// A mailbox frame's payload between the two browsers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Payload {
    /// A PAKE message: from A it starts run `attempt`; from B it answers that run, with B's
    /// proof of the key it got.
    Pake {
        attempt: String,
        msg: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm: Option<String>,
    },
    /// A took B's proof for run `attempt`: A's own proof.
    Ok { attempt: String, confirm: String },
    /// A refused B's proof: the code was wrong, and the room is spent.
    Wrong,
    /// Everything after the handshake: an [`Inner`] sealed with the run's key.
    Sealed { n: String, c: String },
}

/// What travels sealed once both sides hold the key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Inner {
    /// The sender built a new peer connection, known as `gen` (a page load, or a rebuild).
    Join { gen: u32 },
    /// A call signal from the sender's connection `from` to the receiver's connection `to`
    /// (0: whichever the receiver has).
    Signal { from: u32, to: u32, signal: Signal },
    /// The sender hung up.
    Bye,
}

/// What the caller should do after a step of the handshake.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Send(Payload),
    /// Both sides hold this key (A: the proof it sent will convince B).
    Established(Keys),
    /// The code was wrong (or a proof was forged): the room is spent.
    Wrong,
}

/// What survives a reload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The confirmed key, as hex.
    pub key: Option<String>,
    /// B: the runs answered and their keys, until A says which it took.
    #[serde(default)]
    pub answered: Vec<(String, String)>,
    #[serde(default)]
    pub failed: bool,
    /// B: how many runs it has answered in all.
    #[serde(default)]
    pub runs: u32,
}

/// At most this many runs answered and not yet settled (a few reloads of A's page).
const MAX_ANSWERED: usize = 8;
/// B answers at most this many runs in all. Each run lets whoever started it test one guess
/// of the secret digits against B's proof, so a server posing as A could otherwise try all
/// 10 000 of them; with this cap it has a 0.16 % chance, and the room is spent.
const MAX_RUNS: u32 = 16;

pub struct Handshake {
    side: Side,
    room: String,
    code: String,
    /// A: the run this page load started.
    running: Option<(String, Pending)>,
    answered: Vec<(String, Keys)>,
    /// B: runs answered in all (see [`MAX_RUNS`]).
    runs: u32,
    keys: Option<Keys>,
    failed: bool,
}

impl Handshake {
    /// `code`: all the digits; `room`: the room's id (the app id).
    pub fn new(side: Side, room: &str, code: &str, saved: &Saved) -> Self {
        let restore = |hex: &str| Keys::from_hex(side, room, hex);
        Self {
            side,
            room: room.to_string(),
            code: code.to_string(),
            running: None,
            answered: saved
                .answered
                .iter()
                .filter_map(|(attempt, key)| Some((attempt.clone(), restore(key)?)))
                .collect(),
            runs: saved.runs,
            keys: saved.key.as_deref().and_then(restore),
            failed: saved.failed,
        }
    }

    pub fn saved(&self) -> Saved {
        Saved {
            key: self.keys.as_ref().map(Keys::to_hex),
            answered: self
                .answered
                .iter()
                .map(|(attempt, keys)| (attempt.clone(), keys.to_hex()))
                .collect(),
            failed: self.failed,
            runs: self.runs,
        }
    }

    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    #[cfg(test)]
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// A, once per page load while it has no key: starts a run.
    pub fn begin(&mut self) -> Option<Payload> {
        if self.side != Side::A || self.keys.is_some() || self.failed {
            return None;
        }
        let mut id = [0u8; 8];
        OsRng.fill_bytes(&mut id);
        let attempt = hex(&id);
        let (pending, msg) = secure::start(Side::A, &self.room, &self.code, OsRng);
        self.running = Some((attempt.clone(), pending));
        Some(Payload::Pake {
            attempt,
            msg: hex(&msg),
            confirm: None,
        })
    }

    /// A handshake frame from the other side (sealed frames are not the handshake's).
    pub fn receive(&mut self, payload: Payload) -> Vec<Outcome> {
        if self.failed || matches!(payload, Payload::Sealed { .. }) {
            return Vec::new();
        }
        match (self.side, payload) {
            (
                Side::A,
                Payload::Pake {
                    attempt,
                    msg,
                    confirm,
                },
            ) => self.check_answer(&attempt, &msg, confirm.as_deref()),
            (
                Side::B,
                Payload::Pake {
                    attempt,
                    msg,
                    confirm: None,
                },
            ) => self.answer(attempt, &msg),
            (Side::B, Payload::Ok { attempt, confirm }) => self.settle(&attempt, &confirm),
            (Side::B, Payload::Wrong) => self.fail(),
            _ => Vec::new(),
        }
    }

    fn fail(&mut self) -> Vec<Outcome> {
        self.failed = true;
        self.running = None;
        self.answered.clear();
        vec![Outcome::Wrong]
    }

    /// A: B's answer to a run. Only the run this page holds counts; an answer to a run lost
    /// in a reload (or a repeat once the key is set) is ignored.
    fn check_answer(&mut self, attempt: &str, msg: &str, confirm: Option<&str>) -> Vec<Outcome> {
        if self.keys.is_some() || self.running.as_ref().is_none_or(|(id, _)| id != attempt) {
            return Vec::new();
        }
        let (_, pending) = self.running.take().expect("checked above");
        let keys = unhex(msg).and_then(|msg| pending.finish(&msg));
        let proof = confirm.and_then(unhex);
        match (keys, proof) {
            (Some(keys), Some(proof)) if keys.confirms(&proof) => {
                let ok = Payload::Ok {
                    attempt: attempt.to_string(),
                    confirm: hex(&keys.confirmation()),
                };
                self.keys = Some(keys.clone());
                vec![Outcome::Send(ok), Outcome::Established(keys)]
            }
            _ => {
                let mut out = vec![Outcome::Send(Payload::Wrong)];
                out.extend(self.fail());
                out
            }
        }
    }

    /// B: answers a run A started.
    fn answer(&mut self, attempt: String, msg: &str) -> Vec<Outcome> {
        if self.keys.is_some() || self.answered.iter().any(|(id, _)| *id == attempt) {
            return Vec::new();
        }
        if self.runs >= MAX_RUNS {
            return self.fail();
        }
        self.runs += 1;
        let (pending, mine) = secure::start(Side::B, &self.room, &self.code, OsRng);
        let Some(keys) = unhex(msg).and_then(|msg| pending.finish(&msg)) else {
            return Vec::new();
        };
        let reply = Payload::Pake {
            attempt: attempt.clone(),
            msg: hex(&mine),
            confirm: Some(hex(&keys.confirmation())),
        };
        if self.answered.len() == MAX_ANSWERED {
            self.answered.remove(0);
        }
        self.answered.push((attempt, keys));
        vec![Outcome::Send(reply)]
    }

    /// B: A took one of the answered runs; its proof must match that run's key.
    fn settle(&mut self, attempt: &str, confirm: &str) -> Vec<Outcome> {
        if self.keys.is_some() {
            return Vec::new();
        }
        let keys = self
            .answered
            .iter()
            .find(|(id, _)| id == attempt)
            .map(|(_, keys)| keys.clone());
        match (keys, unhex(confirm)) {
            (Some(keys), Some(proof)) if keys.confirms(&proof) => {
                self.answered.clear();
                self.keys = Some(keys.clone());
                vec![Outcome::Established(keys)]
            }
            _ => self.fail(),
        }
    }
}

/// Seals `inner` for the other side.
pub fn seal(keys: &Keys, inner: &Inner) -> Payload {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let plain = serde_json::to_vec(inner).expect("an Inner serializes");
    Payload::Sealed {
        n: hex(&nonce),
        c: hex(&keys.seal(&plain, &nonce)),
    }
}

/// Opens a sealed frame from the other side; `None` if it is not one, or not genuine.
pub fn open(keys: &Keys, payload: &Payload) -> Option<Inner> {
    let Payload::Sealed { n, c } = payload else {
        return None;
    };
    let plain = keys.open(&unhex(c)?, &unhex(n)?)?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "0f6c1d2e-1111-4222-8333-444455556666";

    fn sent(outcomes: Vec<Outcome>) -> Payload {
        match outcomes.into_iter().next() {
            Some(Outcome::Send(payload)) => payload,
            other => panic!("expected a frame to send, got {other:?}"),
        }
    }

    fn established(outcomes: &[Outcome]) -> Keys {
        outcomes
            .iter()
            .find_map(|o| match o {
                Outcome::Established(keys) => Some(keys.clone()),
                _ => None,
            })
            .expect("established")
    }

    /// Runs a whole handshake; returns both keys.
    fn handshake(a_code: &str, b_code: &str) -> (Handshake, Handshake, Vec<Outcome>) {
        let mut a = Handshake::new(Side::A, ROOM, a_code, &Saved::default());
        let mut b = Handshake::new(Side::B, ROOM, b_code, &Saved::default());
        let start = a.begin().unwrap();
        let answer = sent(b.receive(start));
        let verdict = a.receive(answer);
        (a, b, verdict)
    }

    #[test]
    fn the_same_code_gives_both_sides_the_same_key_and_words() {
        let (_, mut b, outcomes) = handshake("4829137150", "4829137150");
        let a_keys = established(&outcomes);
        let ok = match &outcomes[0] {
            Outcome::Send(ok @ Payload::Ok { .. }) => ok.clone(),
            other => panic!("{other:?}"),
        };
        let b_keys = established(&b.receive(ok));
        assert_eq!(a_keys.words(), b_keys.words());
        let sealed = seal(&a_keys, &Inner::Join { gen: 7 });
        assert_eq!(open(&b_keys, &sealed), Some(Inner::Join { gen: 7 }));
        // Sealed frames hide what they carry.
        let wire = serde_json::to_string(&sealed).unwrap();
        assert!(!wire.contains("join"), "{wire}");
    }

    #[test]
    fn a_wrong_secret_is_told_to_both_and_spends_the_room() {
        let (mut a, mut b, outcomes) = handshake("4829137150", "4829137151");
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0], Outcome::Send(Payload::Wrong));
        assert_eq!(outcomes[1], Outcome::Wrong);
        assert_eq!(b.receive(Payload::Wrong), vec![Outcome::Wrong]);
        // One guess per code: no second run, and nothing more is taken.
        assert!(a.failed() && a.begin().is_none());
        assert!(b.saved().failed);
        let restored = Handshake::new(Side::B, ROOM, "4829137151", &b.saved());
        assert!(restored.failed(), "a reload does not give another guess");
    }

    #[test]
    fn a_reload_of_the_creator_mid_handshake_still_meets() {
        let mut a1 = Handshake::new(Side::A, ROOM, "12345678", &Saved::default());
        let mut b = Handshake::new(Side::B, ROOM, "12345678", &Saved::default());
        let first = a1.begin().unwrap();
        // A reloads before B answers: a new page, a new run.
        let mut a2 = Handshake::new(Side::A, ROOM, "12345678", &a1.saved());
        let second = a2.begin().unwrap();
        // B gets both runs from its mailbox, in order, and answers both.
        let stale = sent(b.receive(first));
        let fresh = sent(b.receive(second));
        // The answer to the lost run is not counted as a wrong guess.
        assert!(a2.receive(stale).is_empty());
        assert!(!a2.failed());
        let outcomes = a2.receive(fresh);
        let a_keys = established(&outcomes);
        let Outcome::Send(ok) = &outcomes[0] else {
            panic!()
        };
        // B reloads before A's proof arrives: the answered runs survive.
        let mut b2 = Handshake::new(Side::B, ROOM, "12345678", &b.saved());
        let b_keys = established(&b2.receive(ok.clone()));
        assert_eq!(a_keys.words(), b_keys.words());
        // And a reload after that keeps the key.
        let a3 = Handshake::new(Side::A, ROOM, "12345678", &a2.saved());
        assert_eq!(a3.keys().map(Keys::words), Some(a_keys.words()));
    }

    #[test]
    fn forged_or_repeated_frames_change_nothing_or_fail_safe() {
        let (mut a, mut b, outcomes) = handshake("11112222", "11112222");
        let Outcome::Send(ok) = &outcomes[0] else {
            panic!()
        };
        let keys = established(&b.receive(ok.clone()));
        // A repeated proof or run after the key is set: ignored.
        assert!(b.receive(ok.clone()).is_empty());
        assert!(a
            .receive(Payload::Pake {
                attempt: "00".into(),
                msg: "zz".into(),
                confirm: None
            })
            .is_empty());
        assert_eq!(b.keys(), Some(&keys));
        // B, before a key: a proof for a run it never answered fails the room.
        let mut fresh = Handshake::new(Side::B, ROOM, "11112222", &Saved::default());
        assert_eq!(
            fresh.receive(Payload::Ok {
                attempt: "feed".into(),
                confirm: "00".into()
            }),
            vec![Outcome::Wrong]
        );
        // Garbage instead of a PAKE message is not answered.
        let mut other = Handshake::new(Side::B, ROOM, "11112222", &Saved::default());
        assert!(other
            .receive(Payload::Pake {
                attempt: "01".into(),
                msg: "not hex".into(),
                confirm: None
            })
            .is_empty());
        // A sealed frame that was tampered with does not open.
        let Payload::Sealed { n, mut c } = seal(&keys, &Inner::Bye) else {
            panic!()
        };
        c.replace_range(0..2, if &c[0..2] == "00" { "01" } else { "00" });
        assert_eq!(open(a.keys().unwrap(), &Payload::Sealed { n, c }), None);
    }

    #[test]
    fn the_joiner_answers_only_so_many_runs_so_the_server_cannot_try_every_secret() {
        // Someone who knows the room but not the secret (the server, say) starts run after
        // run with guessed digits and never settles any of them.
        let mut b = Handshake::new(Side::B, ROOM, "1234565678", &Saved::default());
        for guess in 0..MAX_RUNS {
            let mut a = Handshake::new(
                Side::A,
                ROOM,
                &format!("123456{guess:04}"),
                &Saved::default(),
            );
            let reply = b.receive(a.begin().unwrap());
            assert!(
                matches!(reply[..], [Outcome::Send(Payload::Pake { .. })]),
                "run {guess}"
            );
            // The count survives a reload of B's page.
            b = Handshake::new(Side::B, ROOM, "1234565678", &b.saved());
        }
        let mut one_more = Handshake::new(Side::A, ROOM, "1234565678", &Saved::default());
        assert_eq!(b.receive(one_more.begin().unwrap()), vec![Outcome::Wrong]);
        assert!(b.failed());
    }

    #[test]
    fn payloads_have_a_stable_wire_form() {
        let json = serde_json::to_string(&Payload::Pake {
            attempt: "ab".into(),
            msg: "cd".into(),
            confirm: None,
        })
        .unwrap();
        assert_eq!(json, r#"{"t":"pake","attempt":"ab","msg":"cd"}"#);
        assert_eq!(
            serde_json::to_string(&Payload::Wrong).unwrap(),
            r#"{"t":"wrong"}"#
        );
    }
}
