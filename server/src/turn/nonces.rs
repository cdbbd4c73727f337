//! Keeps the TURN crate's nonce map small. The crate hands every unauthenticated request a
//! fresh nonce and keeps it until it is presented again after its hour, so a flood of
//! requests (spoofable over UDP) would grow that map without end. Instead the [`Gate`]
//! answers requests without credentials, or with a nonce that is not current, itself, with
//! the one nonce the crate gave out last; only one request every few seconds reaches the
//! crate, when a new nonce is due (every half hour).
//!
//! [`Gate`]: super::gate::Gate

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use super::message::{
    attribute, authenticated_request, error_response_code, nonce_error, MESSAGE_INTEGRITY, NONCE,
};

/// A nonce is renewed after this long (the crate refuses it after an hour)...
const RENEW_AFTER: Duration = Duration::from_secs(30 * 60);
/// ...and taken from clients for this long (the crate's hour, less a margin).
const ACCEPT_FOR: Duration = Duration::from_secs(55 * 60);
/// While a nonce is due, one request this often goes through for the crate to make one.
const PASS_EVERY: Duration = Duration::from_secs(1);

/// What to do with a message from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The TURN server handles it.
    Pass,
    /// Send this answer back instead.
    Answer(Vec<u8>),
    /// Drop it (no nonce yet: the client asks again).
    Drop,
}

#[derive(Default)]
struct State {
    /// The newest nonce the crate gave out, and the one before, with when they were seen.
    current: Option<(Vec<u8>, Instant)>,
    previous: Option<(Vec<u8>, Instant)>,
    passed_at: Option<Instant>,
}

/// The nonces in use, shared by the listeners (the crate's map is shared too).
pub struct Nonces {
    realm: String,
    state: Mutex<State>,
}

impl Nonces {
    pub fn new(realm: &str) -> Self {
        Self {
            realm: realm.into(),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to do with `message`, from a client.
    pub fn check(&self, message: &[u8]) -> Verdict {
        let Some(method) = authenticated_request(message) else {
            return Verdict::Pass;
        };
        let presented = attribute(message, MESSAGE_INTEGRITY).and(attribute(message, NONCE));
        let mut state = self.lock();
        let accepted = |slot: &Option<(Vec<u8>, Instant)>| {
            slot.as_ref().is_some_and(|(nonce, seen)| {
                Some(nonce.as_slice()) == presented && seen.elapsed() < ACCEPT_FOR
            })
        };
        if presented.is_some() && (accepted(&state.current) || accepted(&state.previous)) {
            return Verdict::Pass;
        }
        let due = state
            .current
            .as_ref()
            .is_none_or(|(_, seen)| seen.elapsed() >= RENEW_AFTER);
        if due && state.passed_at.is_none_or(|at| at.elapsed() >= PASS_EVERY) {
            state.passed_at = Some(Instant::now());
            return Verdict::Pass;
        }
        match &state.current {
            Some((nonce, _)) => {
                let code = if presented.is_some() { 438 } else { 401 };
                Verdict::Answer(nonce_error(message, method, code, &self.realm, nonce))
            }
            None => Verdict::Drop,
        }
    }

    /// Notes the nonce of an answer the TURN server sends (a 401 or 438).
    pub fn observe(&self, message: &[u8]) {
        let Some((_, 401 | 438)) = error_response_code(message) else {
            return;
        };
        let Some(nonce) = attribute(message, NONCE) else {
            return;
        };
        let mut state = self.lock();
        if state.current.as_ref().is_some_and(|(n, _)| n == nonce) {
            return;
        }
        state.previous = state.current.take();
        state.current = Some((nonce.to_vec(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::{tests::request, ALLOCATE, USERNAME};
    use super::*;

    fn crate_answer(nonce: &[u8]) -> Vec<u8> {
        nonce_error(&request(ALLOCATE, &[]), ALLOCATE, 401, "parlor", nonce)
    }

    #[test]
    fn one_request_reaches_the_turn_server_for_a_nonce_and_the_rest_are_answered_with_it() {
        let nonces = Nonces::new("parlor");
        let bare = request(ALLOCATE, &[]);
        // No nonce yet: the first goes through, the next are dropped until it is known.
        assert_eq!(nonces.check(&bare), Verdict::Pass);
        assert_eq!(nonces.check(&bare), Verdict::Drop);
        nonces.observe(&crate_answer(b"n1"));
        // Now every request without credentials is answered here, with that nonce.
        for _ in 0..1000 {
            let Verdict::Answer(answer) = nonces.check(&bare) else {
                panic!("answered here");
            };
            assert_eq!(error_response_code(&answer), Some((ALLOCATE, 401)));
            assert_eq!(attribute(&answer, NONCE), Some(&b"n1"[..]));
        }
        // With credentials and the current nonce: the TURN server checks them.
        let signed = |nonce: &[u8]| {
            request(
                ALLOCATE,
                &[
                    (USERNAME, b"5:test"),
                    (NONCE, nonce),
                    (MESSAGE_INTEGRITY, &[0; 20]),
                ],
            )
        };
        assert_eq!(nonces.check(&signed(b"n1")), Verdict::Pass);
        // A nonce it never gave (or a nonce without integrity): stale, answered here.
        let Verdict::Answer(stale) = nonces.check(&signed(b"made-up")) else {
            panic!("answered here");
        };
        assert_eq!(error_response_code(&stale), Some((ALLOCATE, 438)));
        assert_eq!(attribute(&stale, NONCE), Some(&b"n1"[..]));
        // A new nonce from the crate: the one before still works for a while.
        nonces.observe(&crate_answer(b"n2"));
        assert_eq!(nonces.check(&signed(b"n1")), Verdict::Pass);
        assert_eq!(nonces.check(&signed(b"n2")), Verdict::Pass);
        // Other messages are not looked at.
        assert_eq!(nonces.check(&request(0x001, &[])), Verdict::Pass);
        assert_eq!(nonces.check(&[0x40, 0, 0, 4, 1, 2, 3, 4]), Verdict::Pass);
    }
}
