//! Strangers on the server: who is looking, who is matched with whom, the chat relayed
//! between them, and what is kept for a report (the last lines of a match, for a while).
//! [`matcher`] decides pairs; [`Strangers`] keeps the people around it and turns each
//! operation into [`Effects`] under one short std mutex (never held across an await),
//! carried out by [`crate::server::calls::carry_out`] afterwards. Every match is a call of the
//! registry in the relay-only [`CallContext::Stranger`] context (a text-only match too, with
//! no media), so ending, reconnecting and the grace for a dropped side work as for any call.
//!
//! Lock order: this mutex, then the call registry's or the hub's (neither calls back here).

pub mod matcher;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use matcher::{Pair, Queue, Seeker};

use super::{
    auth::PrincipalId,
    calls::{CallContext, CallRegistry, Effects, Party, To},
    hub::SocketRef,
};
use crate::{
    protocol::{CallEndReason, ServerMsg},
    strangers::{MatchEnd, ReportReason},
    wire::CallPeer,
};

/// Chat lines kept per match for a report.
pub const KEPT_LINES: usize = 20;
/// How long the last partner can still be reported or blocked after a match ended.
pub const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// Recent partners passed over when matching.
const RECENT: usize = 5;

/// How the stranger is shown: a label, never an id.
fn stranger() -> CallPeer {
    CallPeer::Anonymous {
        label: "Stranger".into(),
    }
}

/// What someone looks with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interests: Vec<Arc<str>>,
    pub text_only: bool,
    /// People never to be matched with (blocks either way).
    pub avoid: Arc<HashSet<PrincipalId>>,
    /// The keyed hash of their address (for reports and bans; never the address).
    pub address: Arc<str>,
    /// Restricted after reports: they look, but nobody is matched with them.
    pub shadow: bool,
}

#[derive(Debug)]
struct Seeking {
    socket: SocketRef,
    settings: Settings,
    /// When they started looking (for the time-to-match figure).
    since: Instant,
}

#[derive(Debug)]
struct Side {
    who: PrincipalId,
    socket: SocketRef,
    settings: Settings,
}

#[derive(Debug)]
struct Match {
    sides: [Side; 2],
    /// The last lines: who said it, and what.
    lines: VecDeque<(PrincipalId, String)>,
    /// Which side pressed "Add as friend".
    friend: [bool; 2],
}

impl Match {
    fn side(&self, who: PrincipalId) -> Option<usize> {
        self.sides.iter().position(|s| s.who == who)
    }
}

/// What is left of a match one side ended.
#[derive(Debug)]
struct Ended {
    socket: SocketRef,
    settings: Settings,
    /// The other side, when it looks again by itself.
    other: Option<Side>,
}

/// The last partner of someone, kept for [`REMEMBER_FOR`].
#[derive(Debug, Clone)]
struct Last {
    partner: PrincipalId,
    partner_address: Arc<str>,
    /// Lines as this person saw them: `(mine, text)`.
    lines: Vec<(bool, String)>,
}

#[derive(Debug, Default)]
struct History {
    recent: VecDeque<PrincipalId>,
    last: Option<Last>,
    at: Option<Instant>,
}

/// A report to store: who reported whom, why, and the lines if the reporter agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDraft {
    pub reporter: PrincipalId,
    /// The reporter's address hash: reports from one address count as one person's.
    pub reporter_address: String,
    pub reported: PrincipalId,
    pub reported_address: String,
    pub reason: ReportReason,
    pub note: String,
    /// `(by the reporter, text)`, oldest first.
    pub lines: Vec<(bool, String)>,
}

/// Why an operation was refused (told to the browser as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StrangerError {
    #[error("You are not talking to anyone right now.")]
    NotMatched,
    #[error("There is nobody to report or block: you have not met anyone in the last minutes.")]
    NobodyToReport,
    #[error("End your call first: you cannot talk to strangers during a call.")]
    InACall,
    #[error("Only two signed-in people can add each other as friends.")]
    NotBothSignedIn,
    #[error("The stranger's connection dropped: that line was not delivered. They have a few seconds to come back.")]
    PartnerAway,
}

/// What pressing "Add as friend" did.
#[derive(Debug)]
pub enum FriendAsk {
    /// The stranger is told (in the effects); it takes their press too.
    Asked(Effects),
    /// Pressed before: nothing new.
    Again,
    /// Both pressed: the two users, each with the socket to tell, to make friends.
    Both([(i64, SocketRef); 2]),
}

#[derive(Debug, Default)]
struct Inner {
    queue: Queue<PrincipalId>,
    seeking: HashMap<PrincipalId, Seeking>,
    matches: HashMap<u64, Match>,
    match_of: HashMap<PrincipalId, u64>,
    history: HashMap<PrincipalId, History>,
    /// `(when, who)` in the order histories were written; stale items are skipped.
    history_order: VecDeque<(Instant, PrincipalId)>,
    metrics: super::metrics::StrangerMetrics,
}

/// The strangers of this instance.
pub struct Strangers {
    inner: Mutex<Inner>,
    /// Where the messages of each operation go, sent before its lock is released (see
    /// [`Strangers::deliver`]).
    delivery: Option<Arc<dyn super::hub::Delivery>>,
    /// Keys the hash that stands for a client address.
    address_key: Vec<u8>,
}

impl std::fmt::Debug for Strangers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strangers")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Looks for pairs among those who waited long enough, every half second, for as long as
/// the server runs (one matcher per instance).
pub async fn run_ticker(state: super::state::AppState) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let alive = state.reachable();
        let effects = state.strangers.tick(state.calls.as_ref(), &alive);
        super::calls::carry_out(&state, effects).await;
    }
}

/// Whether a socket is still connected (the hub's answer).
pub trait Reachable: Fn(PrincipalId, SocketRef) -> bool {}
impl<F: Fn(PrincipalId, SocketRef) -> bool> Reachable for F {}

impl Strangers {
    /// `secret`: the session secret; the address hash's key is derived from it (so it
    /// lasts as long as it, and is no second secret to keep).
    pub fn new(secret: &[u8]) -> Self {
        let mut address_key = vec![0u8; 32];
        let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, secret)
            .expand(b"parlor address tag v1", &mut address_key);
        Self {
            inner: Mutex::default(),
            delivery: None,
            address_key,
        }
    }

    /// Sends each operation's messages through `delivery` while the operation still holds
    /// the lock, so every socket gets them in the order the state changed: a match's end
    /// always before the next match, whichever task carries out the rest.
    pub fn with_delivery(self, delivery: Arc<dyn super::hub::Delivery>) -> Self {
        Self {
            delivery: Some(delivery),
            ..self
        }
    }

    /// Sends `effects`' messages now (with a delivery; called under the lock) and returns
    /// the rest (timers, records) for [`crate::server::calls::carry_out`].
    fn deliver(&self, mut effects: Effects) -> Effects {
        if let Some(delivery) = &self.delivery {
            for (to, message) in effects.send.drain(..) {
                super::calls::deliver(delivery.as_ref(), to, &message);
            }
        }
        effects
    }

    /// Counts matches and times to match in `metrics` (the server's `/metrics`).
    pub fn with_metrics(self, metrics: super::metrics::StrangerMetrics) -> Self {
        self.lock().metrics = metrics;
        self
    }

    /// What stands for a client address in reports and bans: a keyed hash (HMAC-SHA256,
    /// 128 bits in hex), so the address itself is never stored and cannot be guessed back
    /// without the server's key.
    pub fn address_tag(&self, address: &str) -> Arc<str> {
        let (prk, _) =
            hkdf::Hkdf::<sha2::Sha256>::extract(Some(&self.address_key), address.as_bytes());
        prk[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many are waiting and how many matches run (for metrics and tests).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.queue.len(), inner.matches.len())
    }

    /// `who` starts looking on `socket`. Another tab of theirs that was looking or matched
    /// stops (its match ends as if they pressed Next); in a call of another kind, refused.
    pub fn start(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        settings: Settings,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
    ) -> Result<Effects, StrangerError> {
        let mut inner = self.lock();
        let mut effects = Effects::default();
        let now = Instant::now();
        if let Some(&id) = inner.match_of.get(&who) {
            if let Some(ended) = inner.end_match(id, who, MatchEnd::Next, calls, &mut effects) {
                if ended.socket != socket {
                    effects.send.push((
                        To::Socket(who, ended.socket),
                        ServerMsg::StrangerEnded {
                            reason: MatchEnd::OtherTab,
                        },
                    ));
                }
                let ended = Ended {
                    socket,
                    settings,
                    other: ended.other,
                };
                inner.look_again(who, ended, calls, alive, now, &mut effects);
                return Ok(self.deliver(effects));
            }
        } else if calls.call_of(who).is_some() {
            return Err(StrangerError::InACall);
        }
        if let Some(old) = inner.seeking.get(&who).map(|s| s.socket) {
            if old != socket {
                effects.send.push((
                    To::Socket(who, old),
                    ServerMsg::StrangerEnded {
                        reason: MatchEnd::OtherTab,
                    },
                ));
            }
        }
        inner.join(who, socket, settings, calls, alive, now, &mut effects);
        Ok(self.deliver(effects))
    }

    /// Ends `who`'s match and looks again at once; the stranger is told and looks again too.
    pub fn next(
        &self,
        who: PrincipalId,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
    ) -> Result<Effects, StrangerError> {
        let mut inner = self.lock();
        let id = *inner.match_of.get(&who).ok_or(StrangerError::NotMatched)?;
        let mut effects = Effects::default();
        let now = Instant::now();
        // The one who pressed Next looks first: the one waiting longest is theirs.
        if let Some(ended) = inner.end_match(id, who, MatchEnd::Next, calls, &mut effects) {
            inner.look_again(who, ended, calls, alive, now, &mut effects);
        }
        Ok(self.deliver(effects))
    }

    /// Stops looking, or ends the match (the stranger is told and may look again).
    pub fn stop(&self, who: PrincipalId, calls: &dyn CallRegistry) -> Effects {
        let mut inner = self.lock();
        let mut effects = Effects::default();
        inner.queue.leave(who);
        inner.seeking.remove(&who);
        if let Some(&id) = inner.match_of.get(&who) {
            inner.end_match(id, who, MatchEnd::Left, calls, &mut effects);
        }
        self.deliver(effects)
    }

    /// Relays a chat line (already checked) to the stranger, keeping it for a report.
    /// While the stranger's connection is down (their grace), the line is refused rather than
    /// lost on their old socket.
    pub fn chat(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        text: String,
        alive: &impl Reachable,
    ) -> Result<Effects, StrangerError> {
        let mut inner = self.lock();
        let (m, me) = inner.match_on(who, socket)?;
        let other = &m.sides[1 - me];
        if !alive(other.who, other.socket) {
            return Err(StrangerError::PartnerAway);
        }
        let to = To::Socket(other.who, other.socket);
        if m.lines.len() == KEPT_LINES {
            m.lines.pop_front();
        }
        m.lines.push_back((who, text.clone()));
        let mut effects = Effects::default();
        effects.send.push((to, ServerMsg::StrangerChat { text }));
        Ok(self.deliver(effects))
    }

    /// A report on the current or last stranger: what to store.
    pub fn report(
        &self,
        who: PrincipalId,
        reporter_address: &str,
        reason: ReportReason,
        note: String,
        include_chat: bool,
    ) -> Result<ReportDraft, StrangerError> {
        let mut inner = self.lock();
        inner.prune(Instant::now());
        let last = inner.partner_of(who).ok_or(StrangerError::NobodyToReport)?;
        Ok(ReportDraft {
            reporter: who,
            reporter_address: reporter_address.to_string(),
            reported: last.partner,
            reported_address: last.partner_address.to_string(),
            reason,
            note,
            lines: if include_chat { last.lines } else { Vec::new() },
        })
    }

    /// Blocks the current or last stranger: the match ends (for them as a Next) and `who`
    /// looks again at once if they were matched. Returns the blocked principal to store.
    pub fn block(
        &self,
        who: PrincipalId,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
    ) -> Result<(Effects, PrincipalId), StrangerError> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.prune(now);
        let partner = inner
            .partner_of(who)
            .ok_or(StrangerError::NobodyToReport)?
            .partner;
        let mut effects = Effects::default();
        let add_block = |settings: &mut Settings| {
            let mut avoid = (*settings.avoid).clone();
            avoid.insert(partner);
            settings.avoid = Arc::new(avoid);
        };
        if let Some(&id) = inner.match_of.get(&who) {
            if let Some(mut ended) = inner.end_match(id, who, MatchEnd::Next, calls, &mut effects) {
                add_block(&mut ended.settings);
                inner.look_again(who, ended, calls, alive, now, &mut effects);
            }
        } else if let Some(seeking) = inner.seeking.get_mut(&who) {
            // Waiting already: the block holds from now on.
            add_block(&mut seeking.settings);
            let (socket, settings) = (seeking.socket, seeking.settings.clone());
            inner.queue.leave(who);
            inner.join_quietly(who, socket, settings, calls, alive, now, &mut effects);
        }
        effects
            .send
            .push((To::All(who), ServerMsg::StrangerBlocked));
        Ok((self.deliver(effects), partner))
    }

    /// `who` pressed "Add as friend" in their match (both sides must be users).
    pub fn befriend(
        &self,
        who: PrincipalId,
        socket: SocketRef,
    ) -> Result<FriendAsk, StrangerError> {
        let mut inner = self.lock();
        let (m, me) = inner.match_on(who, socket)?;
        let (PrincipalId::User(mine), PrincipalId::User(theirs)) = (who, m.sides[1 - me].who)
        else {
            return Err(StrangerError::NotBothSignedIn);
        };
        if m.friend[me] {
            return Ok(FriendAsk::Again);
        }
        m.friend[me] = true;
        let other = &m.sides[1 - me];
        if m.friend[1 - me] {
            return Ok(FriendAsk::Both([
                (mine, m.sides[me].socket),
                (theirs, other.socket),
            ]));
        }
        let mut effects = Effects::default();
        effects.send.push((
            To::Socket(other.who, other.socket),
            ServerMsg::StrangerFriendAsked,
        ));
        Ok(FriendAsk::Asked(self.deliver(effects)))
    }

    /// A socket closed: if it was looking, it stops (a match waits for it: the call's grace).
    pub fn socket_closed(&self, who: PrincipalId, socket: SocketRef) {
        let mut inner = self.lock();
        if inner.seeking.get(&who).is_some_and(|s| s.socket == socket) {
            inner.seeking.remove(&who);
            inner.queue.leave(who);
        }
    }

    /// `who`'s match call goes on over `socket` now (they reconnected).
    pub fn resumed(&self, who: PrincipalId, socket: SocketRef) {
        let mut inner = self.lock();
        if let Some(&id) = inner.match_of.get(&who) {
            if let Some(side) = inner
                .matches
                .get_mut(&id)
                .and_then(|m| m.sides.iter_mut().find(|s| s.who == who))
            {
                side.socket = socket;
            }
        }
    }

    /// The registry ended match `id`'s call (a side hung up or did not come back): both are
    /// told, and nobody looks again by themselves.
    pub fn call_over(&self, id: u64, reason: CallEndReason) -> Effects {
        let mut inner = self.lock();
        let mut effects = Effects::default();
        let Some(m) = inner.matches.remove(&id) else {
            return effects;
        };
        let why = if reason == CallEndReason::ConnectionLost {
            MatchEnd::ConnectionLost
        } else {
            MatchEnd::Left
        };
        let now = Instant::now();
        inner.forget_match(&m, now);
        for side in &m.sides {
            effects.send.push((
                To::Socket(side.who, side.socket),
                ServerMsg::StrangerEnded { reason: why },
            ));
        }
        self.deliver(effects)
    }

    /// Restricts `who` (`shadow`: they keep looking but are never matched) or lifts it. A
    /// search running now changes at once; a running match goes on, and what comes after it
    /// follows the new rule.
    pub fn set_shadow(
        &self,
        who: PrincipalId,
        shadow: bool,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
    ) -> Effects {
        let mut inner = self.lock();
        let mut effects = Effects::default();
        if let Some(&id) = inner.match_of.get(&who) {
            if let Some(side) = inner
                .matches
                .get_mut(&id)
                .and_then(|m| m.sides.iter_mut().find(|s| s.who == who))
            {
                side.settings.shadow = shadow;
            }
        } else if let Some(seeking) = inner.seeking.remove(&who) {
            inner.queue.leave(who);
            let settings = Settings {
                shadow,
                ..seeking.settings
            };
            let now = Instant::now();
            inner.join_quietly(
                who,
                seeking.socket,
                settings,
                calls,
                alive,
                now,
                &mut effects,
            );
        }
        self.deliver(effects)
    }

    /// A moderator banned `who` and `address` (a hash; empty: none) until `until`: everyone
    /// concerned stops looking, their matches end (the other side is told the stranger left)
    /// and every tab of theirs is told until when.
    pub fn ban(
        &self,
        who: PrincipalId,
        address: &str,
        until: &str,
        calls: &dyn CallRegistry,
    ) -> Effects {
        let mut inner = self.lock();
        let mut effects = Effects::default();
        let covered = |w: PrincipalId, settings: &Settings| {
            w == who || (!address.is_empty() && &*settings.address == address)
        };
        let mut banned: HashSet<PrincipalId> = inner
            .seeking
            .iter()
            .filter(|(w, s)| covered(**w, &s.settings))
            .map(|(w, _)| *w)
            .collect();
        banned.extend(
            inner
                .matches
                .values()
                .flat_map(|m| &m.sides)
                .filter(|s| covered(s.who, &s.settings))
                .map(|s| s.who),
        );
        banned.insert(who);
        for w in banned {
            inner.queue.leave(w);
            inner.seeking.remove(&w);
            if let Some(&id) = inner.match_of.get(&w) {
                inner.end_match(id, w, MatchEnd::Left, calls, &mut effects);
            }
            effects.send.push((
                To::All(w),
                ServerMsg::StrangerBanned {
                    until: until.to_string(),
                },
            ));
        }
        self.deliver(effects)
    }

    /// Every half second: those who waited long enough take anyone; old histories go.
    pub fn tick(&self, calls: &dyn CallRegistry, alive: &impl Reachable) -> Effects {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.prune(now);
        let mut effects = Effects::default();
        let Inner { queue, seeking, .. } = &mut *inner;
        let widened = queue.widen(now, |w| seeking.get(&w).is_some_and(|s| alive(w, s.socket)));
        for who in widened.now_open {
            if let Some(s) = inner.seeking.get(&who) {
                effects.send.push((
                    To::Socket(who, s.socket),
                    ServerMsg::StrangerLooking { anyone: true },
                ));
            }
        }
        for pair in widened.pairs {
            inner.make_match(pair, calls, alive, now, &mut effects);
        }
        self.deliver(effects)
    }
}

impl Inner {
    /// `who`'s running match and their side of it, when they act on the socket in it (not
    /// another tab).
    fn match_on(
        &mut self,
        who: PrincipalId,
        socket: SocketRef,
    ) -> Result<(&mut Match, usize), StrangerError> {
        let id = *self.match_of.get(&who).ok_or(StrangerError::NotMatched)?;
        let m = self.matches.get_mut(&id).ok_or(StrangerError::NotMatched)?;
        match m.side(who) {
            Some(me) if m.sides[me].socket == socket => Ok((m, me)),
            _ => Err(StrangerError::NotMatched),
        }
    }

    /// The current partner of `who`, or the last one (if recent).
    fn partner_of(&self, who: PrincipalId) -> Option<Last> {
        if let Some(m) = self.match_of.get(&who).and_then(|id| self.matches.get(id)) {
            let me = m.side(who)?;
            let other = &m.sides[1 - me];
            return Some(Last {
                partner: other.who,
                partner_address: other.settings.address.clone(),
                lines: m
                    .lines
                    .iter()
                    .map(|(by, text)| (*by == who, text.clone()))
                    .collect(),
            });
        }
        self.history.get(&who)?.last.clone()
    }

    /// Joins the queue and, if nobody fits, tells the socket it is looking.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        who: PrincipalId,
        socket: SocketRef,
        settings: Settings,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
        now: Instant,
        effects: &mut Effects,
    ) {
        let anyone = settings.interests.is_empty();
        if !self.join_quietly(who, socket, settings, calls, alive, now, effects) {
            effects.send.push((
                To::Socket(who, socket),
                ServerMsg::StrangerLooking { anyone },
            ));
        }
    }

    /// Joins the queue; whether a match was made.
    #[allow(clippy::too_many_arguments)]
    fn join_quietly(
        &mut self,
        who: PrincipalId,
        socket: SocketRef,
        settings: Settings,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
        now: Instant,
        effects: &mut Effects,
    ) -> bool {
        // Restricted: looking, as far as they can tell, but never in the queue.
        let queued = (!settings.shadow).then(|| Seeker {
            who,
            interests: settings.interests.clone(),
            text_only: settings.text_only,
            avoid: settings.avoid.clone(),
            recent: self
                .history
                .get(&who)
                .map(|h| h.recent.iter().copied().collect())
                .unwrap_or_default(),
        });
        self.seeking.insert(
            who,
            Seeking {
                socket,
                settings,
                since: now,
            },
        );
        let Some(seeker) = queued else {
            return false;
        };
        let Inner { queue, seeking, .. } = self;
        let pair = queue.join(seeker, now, |w| {
            seeking.get(&w).is_some_and(|s| alive(w, s.socket))
        });
        match pair {
            Some(pair) => {
                self.make_match(pair, calls, alive, now, effects);
                true
            }
            None => false,
        }
    }

    /// Opens the call of a pair the queue made. Someone who got into another call meanwhile
    /// is dropped; the other one looks again.
    fn make_match(
        &mut self,
        pair: Pair<PrincipalId>,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
        now: Instant,
        effects: &mut Effects,
    ) {
        let (Some(a), Some(b)) = (
            self.seeking.remove(&pair.waiting),
            self.seeking.remove(&pair.joined),
        ) else {
            return;
        };
        let text_only = a.settings.text_only;
        self.metrics.matches.inc();
        for since in [a.since, b.since] {
            self.metrics
                .time_to_match
                .observe(now.duration_since(since).as_secs_f64());
        }
        let id = new_match_id();
        let opened = calls.open(
            CallContext::Stranger { match_id: id },
            (
                Party {
                    who: pair.waiting,
                    seen_as: stranger(),
                },
                a.socket,
            ),
            (
                Party {
                    who: pair.joined,
                    seen_as: stranger(),
                },
                b.socket,
            ),
            !text_only,
        );
        let call = match opened {
            Ok(call) => call,
            Err(_) => {
                for (who, side) in [(pair.waiting, a), (pair.joined, b)] {
                    if calls.call_of(who).is_some() {
                        effects.send.push((
                            To::Socket(who, side.socket),
                            ServerMsg::StrangerEnded {
                                reason: MatchEnd::OtherTab,
                            },
                        ));
                    } else {
                        self.join(who, side.socket, side.settings, calls, alive, now, effects);
                    }
                }
                return;
            }
        };
        for (who, socket) in [(pair.waiting, a.socket), (pair.joined, b.socket)] {
            effects.send.push((
                To::Socket(who, socket),
                ServerMsg::StrangerMatched {
                    shared: pair.shared.clone(),
                    text_only,
                    can_befriend: pair.waiting.user().is_some() && pair.joined.user().is_some(),
                },
            ));
            self.match_of.insert(who, id);
        }
        effects.absorb(call);
        self.matches.insert(
            id,
            Match {
                sides: [
                    Side {
                        who: pair.waiting,
                        socket: a.socket,
                        settings: a.settings,
                    },
                    Side {
                        who: pair.joined,
                        socket: b.socket,
                        settings: b.settings,
                    },
                ],
                lines: VecDeque::new(),
                friend: [false; 2],
            },
        );
    }

    /// Ends match `id` because `by` left it (`why` is what the other is told) and ends its
    /// call. Returns `by`'s socket and settings (to look again with) and, after a
    /// [`MatchEnd::Next`], the other side to put back in the queue (after `by`).
    fn end_match(
        &mut self,
        id: u64,
        by: PrincipalId,
        why: MatchEnd,
        calls: &dyn CallRegistry,
        effects: &mut Effects,
    ) -> Option<Ended> {
        let m = self.matches.remove(&id)?;
        self.forget_match(&m, Instant::now());
        effects.absorb(calls.end_for(by, CallEndReason::HungUp));
        let me = m.side(by)?;
        let [a, b] = m.sides;
        let (mine, other) = if me == 0 { (a, b) } else { (b, a) };
        effects.send.push((
            To::Socket(other.who, other.socket),
            ServerMsg::StrangerEnded { reason: why },
        ));
        Some(Ended {
            socket: mine.socket,
            settings: mine.settings,
            other: (why == MatchEnd::Next).then_some(other),
        })
    }

    /// After a match ended, `who` looks again first (with `ended`'s socket and settings),
    /// then the other side if it looks again too.
    fn look_again(
        &mut self,
        who: PrincipalId,
        ended: Ended,
        calls: &dyn CallRegistry,
        alive: &impl Reachable,
        now: Instant,
        effects: &mut Effects,
    ) {
        self.join(
            who,
            ended.socket,
            ended.settings,
            calls,
            alive,
            now,
            effects,
        );
        if let Some(side) = ended.other {
            self.join(
                side.who,
                side.socket,
                side.settings,
                calls,
                alive,
                now,
                effects,
            );
        }
    }

    /// Unlinks both sides from a finished match and remembers each other as the last (and a
    /// recent) partner.
    fn forget_match(&mut self, m: &Match, now: Instant) {
        for (i, side) in m.sides.iter().enumerate() {
            self.match_of.remove(&side.who);
            let other = &m.sides[1 - i];
            let history = self.history.entry(side.who).or_default();
            if history.recent.len() == RECENT {
                history.recent.pop_front();
            }
            history.recent.push_back(other.who);
            history.last = Some(Last {
                partner: other.who,
                partner_address: other.settings.address.clone(),
                lines: m
                    .lines
                    .iter()
                    .map(|(by, text)| (*by == side.who, text.clone()))
                    .collect(),
            });
            history.at = Some(now);
            self.history_order.push_back((now, side.who));
        }
    }

    /// Forgets histories older than [`REMEMBER_FOR`], oldest first.
    fn prune(&mut self, now: Instant) {
        while let Some(&(at, who)) = self.history_order.front() {
            if now.duration_since(at) < REMEMBER_FOR {
                break;
            }
            self.history_order.pop_front();
            if self.history.get(&who).and_then(|h| h.at) == Some(at) {
                self.history.remove(&who);
            }
        }
    }
}

/// A match's id: random, so nothing about one match says anything about another.
fn new_match_id() -> u64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{
        auth::GuestId,
        calls::registry::LocalCalls,
        hub::{Delivery, Frame, InstanceId},
    };

    /// Every message sent, in order: to whom, and its type.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(PrincipalId, &'static str)>>);

    impl Delivery for Recorder {
        fn send_frame(&self, to: PrincipalId, frame: &Frame) -> usize {
            self.0.lock().unwrap().push((to, frame.kind));
            1
        }
        fn send_to_socket(&self, to: PrincipalId, _: SocketRef, message: &ServerMsg) -> bool {
            self.0.lock().unwrap().push((to, message.kind()));
            true
        }
        fn send_to_others(&self, to: PrincipalId, _: SocketRef, message: &ServerMsg) {
            self.0.lock().unwrap().push((to, message.kind()));
        }
        fn end_sessions(&self, _: i64, _: Option<i64>) {}
        fn end_session(&self, _: i64, _: &str) {}
    }

    fn settings() -> Settings {
        Settings {
            interests: Vec::new(),
            text_only: true,
            avoid: Arc::default(),
            address: "a".into(),
            shadow: false,
        }
    }

    #[test]
    fn an_operations_messages_leave_before_its_lock_so_a_match_ends_before_the_next_begins() {
        let recorder = Arc::new(Recorder::default());
        let strangers = Strangers::new(b"secret").with_delivery(recorder.clone());
        let calls = LocalCalls::new(Duration::from_secs(30), Duration::from_secs(5));
        let alive = |_, _| true;
        let guest = |n| PrincipalId::Guest(GuestId(n));
        let socket = |conn| SocketRef {
            instance: InstanceId(1),
            conn,
        };
        let (a, b, c, d) = (guest(1), guest(2), guest(3), guest(4));
        for (who, conn) in [(a, 1), (b, 2)] {
            let left = strangers
                .start(who, socket(conn), settings(), &calls, &alive)
                .unwrap();
            assert!(left.send.is_empty(), "sent already: {left:?}");
        }
        recorder.0.lock().unwrap().clear();
        // A blocks B: B hears the match ended, then looks again and meets D (C takes A, who
        // waited longer), in that order.
        let left = strangers.block(a, &calls, &alive).unwrap().0;
        assert!(left.send.is_empty());
        for (who, conn) in [(c, 3), (d, 4)] {
            strangers
                .start(who, socket(conn), settings(), &calls, &alive)
                .unwrap();
        }
        let to_b: Vec<&str> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| *to == b)
            .map(|(_, kind)| *kind)
            .collect();
        assert_eq!(
            to_b,
            [
                "call_ended",
                "stranger_ended",
                "stranger_looking",
                "stranger_matched",
                "call_opened"
            ]
        );
    }
}
