//! The waiting queue and who goes with whom: plain data, no I/O, no clock of its own (callers
//! pass `now`), generic over the key so the benchmark can drive it alone.
//!
//! Rules: two seekers of the same mode (video or text) may be paired when neither avoids the
//! other (blocked either way) and they share an interest, or both are *open* (gave no
//! interests, or waited [`WIDEN_AFTER`] already). Among the possible partners the one sharing
//! the most interests wins, then the one waiting longest. A recent partner is passed over
//! while anyone else of the same mode waits (whatever their interests: they will be open
//! soon), and until both have waited [`WIDEN_AFTER`], so Next never hands back the same
//! person while someone else is there. Every lookup scans at most [`SCAN`] seekers per list, oldest
//! first, so a join costs the same with ten or ten thousand waiting.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::Hash,
    sync::Arc,
    time::{Duration, Instant},
};

/// How long someone with interests waits for a shared one before anyone will do.
pub const WIDEN_AFTER: Duration = Duration::from_secs(crate::strangers::WIDEN_AFTER_SECS);
/// Seekers looked at per list and lookup.
pub const SCAN: usize = 64;

/// Someone who wants a match.
#[derive(Debug, Clone)]
pub struct Seeker<K> {
    pub who: K,
    /// Normalised interests (`crate::strangers::normalize_interests`).
    pub interests: Vec<Arc<str>>,
    pub text_only: bool,
    /// People never to be matched with (blocked by or blocking this seeker).
    pub avoid: Arc<HashSet<K>>,
    /// Recent partners, passed over for a while.
    pub recent: Vec<K>,
}

/// A pair the queue made: both have left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<K> {
    /// The one who was waiting (offers first).
    pub waiting: K,
    pub joined: K,
    /// The interests they share, in the joiner's order.
    pub shared: Vec<String>,
}

#[derive(Debug)]
struct Waiting<K> {
    seeker: Seeker<K>,
    ticket: u64,
    since: Instant,
    /// Whether anyone will do now.
    open: bool,
}

/// The queue of one instance.
#[derive(Debug)]
pub struct Queue<K> {
    waiting: HashMap<K, Waiting<K>>,
    /// Open seekers by mode (`text_only` as index), oldest first.
    open: [BTreeMap<u64, K>; 2],
    /// Seekers by (mode, interest), oldest first.
    by_interest: HashMap<(bool, Arc<str>), BTreeMap<u64, K>>,
    /// Seekers who have not waited [`WIDEN_AFTER`] yet, oldest first.
    young: BTreeMap<u64, K>,
    /// Every seeker by mode, oldest first.
    all: [BTreeMap<u64, K>; 2],
    next_ticket: u64,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
            open: Default::default(),
            by_interest: HashMap::new(),
            young: BTreeMap::new(),
            all: Default::default(),
            next_ticket: 0,
        }
    }
}

/// What [`Queue::widen`] did.
#[derive(Debug)]
pub struct Widened<K> {
    pub pairs: Vec<Pair<K>>,
    /// Seekers with interests who now take anyone (and were not paired at once).
    pub now_open: Vec<K>,
}

impl<K: Copy + Eq + Hash + std::fmt::Debug> Queue<K> {
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn contains(&self, who: K) -> bool {
        self.waiting.contains_key(&who)
    }

    /// How long `who` has been waiting.
    pub fn waited(&self, who: K, now: Instant) -> Option<Duration> {
        self.waiting.get(&who).map(|w| now - w.since)
    }

    /// Adds a seeker (replacing an earlier entry of theirs) and pairs them at once if anyone
    /// fits; `alive` says whether a waiting seeker can still be reached (those who cannot
    /// are dropped from the queue, never matched).
    pub fn join(
        &mut self,
        seeker: Seeker<K>,
        now: Instant,
        alive: impl Fn(K) -> bool,
    ) -> Option<Pair<K>> {
        self.leave(seeker.who);
        let open = seeker.interests.is_empty();
        let candidate = Waiting {
            seeker,
            ticket: 0,
            since: now,
            open,
        };
        if let Some(pair) = self.pair(&candidate, now, &alive) {
            return Some(pair);
        }
        self.insert(candidate);
        None
    }

    /// Removes `who` from the queue; whether they were in it.
    pub fn leave(&mut self, who: K) -> bool {
        self.take(who).is_some()
    }

    /// Removes `who` from the queue and every list, returning their entry.
    fn take(&mut self, who: K) -> Option<Waiting<K>> {
        let w = self.waiting.remove(&who)?;
        let mode = w.seeker.text_only;
        self.open[mode as usize].remove(&w.ticket);
        self.all[mode as usize].remove(&w.ticket);
        self.young.remove(&w.ticket);
        for interest in &w.seeker.interests {
            let key = (mode, interest.clone());
            if let Some(list) = self.by_interest.get_mut(&key) {
                list.remove(&w.ticket);
                if list.is_empty() {
                    self.by_interest.remove(&key);
                }
            }
        }
        Some(w)
    }

    /// Seekers who have now waited [`WIDEN_AFTER`] take anyone (and their recent partners),
    /// oldest first; call it every few hundred milliseconds.
    pub fn widen(&mut self, now: Instant, alive: impl Fn(K) -> bool) -> Widened<K> {
        let mut widened = Widened {
            pairs: Vec::new(),
            now_open: Vec::new(),
        };
        while let Some((&ticket, &who)) = self.young.iter().next() {
            let due = self
                .waiting
                .get(&who)
                .is_some_and(|w| now.duration_since(w.since) >= WIDEN_AFTER);
            if !due {
                break;
            }
            // Out of the lists while it looks, so it does not find itself.
            let Some(mut w) = self.take(who) else {
                self.young.remove(&ticket);
                continue;
            };
            let had_interests = !w.open;
            w.open = true;
            match self.pair(&w, now, &alive) {
                Some(pair) => widened.pairs.push(pair),
                None => {
                    if had_interests {
                        widened.now_open.push(who);
                    }
                    self.reinsert(w);
                }
            }
        }
        widened
    }

    fn insert(&mut self, mut w: Waiting<K>) {
        w.ticket = self.next_ticket;
        self.next_ticket += 1;
        self.young.insert(w.ticket, w.seeker.who);
        self.reinsert(w);
    }

    /// Puts a seeker back with its ticket (its place in line).
    fn reinsert(&mut self, w: Waiting<K>) {
        let mode = w.seeker.text_only;
        let (ticket, who) = (w.ticket, w.seeker.who);
        if w.open {
            self.open[mode as usize].insert(ticket, who);
        }
        self.all[mode as usize].insert(ticket, who);
        for interest in &w.seeker.interests {
            self.by_interest
                .entry((mode, interest.clone()))
                .or_default()
                .insert(ticket, who);
        }
        self.waiting.insert(who, w);
    }

    /// Whether `a` and `b` may be paired now, ignoring interests. Recent partners only with
    /// `recent_too`, and once both have waited [`WIDEN_AFTER`].
    fn compatible(&self, a: &Waiting<K>, b: &Waiting<K>, now: Instant, recent_too: bool) -> bool {
        if a.seeker.who == b.seeker.who
            || a.seeker.avoid.contains(&b.seeker.who)
            || b.seeker.avoid.contains(&a.seeker.who)
        {
            return false;
        }
        let recent =
            a.seeker.recent.contains(&b.seeker.who) || b.seeker.recent.contains(&a.seeker.who);
        !recent
            || (recent_too
                && now.duration_since(a.since) >= WIDEN_AFTER
                && now.duration_since(b.since) >= WIDEN_AFTER)
    }

    /// Finds `seeker`'s partner: anyone else first, a recent partner only when nobody else
    /// is waiting at all.
    fn pair(
        &mut self,
        seeker: &Waiting<K>,
        now: Instant,
        alive: &impl Fn(K) -> bool,
    ) -> Option<Pair<K>> {
        self.pair_with(seeker, now, alive, false).or_else(|| {
            if self.someone_new_waits(seeker, now, alive) {
                None
            } else {
                self.pair_with(seeker, now, alive, true)
            }
        })
    }

    /// Whether anyone `seeker` may meet and has not met lately waits in its mode, open or
    /// not yet (they will be soon).
    fn someone_new_waits(
        &self,
        seeker: &Waiting<K>,
        now: Instant,
        alive: &impl Fn(K) -> bool,
    ) -> bool {
        let mode = seeker.seeker.text_only as usize;
        self.all[mode].values().take(SCAN).any(|&who| {
            self.waiting
                .get(&who)
                .is_some_and(|other| self.compatible(seeker, other, now, false))
                && alive(who)
        })
    }

    /// Finds `seeker`'s partner among the waiting, takes the partner out of the queue and
    /// returns the pair. Unreachable seekers met on the way are dropped.
    fn pair_with(
        &mut self,
        seeker: &Waiting<K>,
        now: Instant,
        alive: &impl Fn(K) -> bool,
        recent_too: bool,
    ) -> Option<Pair<K>> {
        let mode = seeker.seeker.text_only;
        let mut dead = Vec::new();
        // (shared count, ticket, who): the most shared, then the oldest.
        let mut best: Option<(usize, u64, K)> = None;
        let mut counts: HashMap<K, usize> = HashMap::new();
        for interest in &seeker.seeker.interests {
            let Some(list) = self.by_interest.get(&(mode, interest.clone())) else {
                continue;
            };
            for (_, &who) in list.iter().take(SCAN) {
                *counts.entry(who).or_default() += 1;
            }
        }
        for (who, shared) in counts {
            let Some(other) = self.waiting.get(&who) else {
                continue;
            };
            if !self.compatible(seeker, other, now, recent_too) {
                continue;
            }
            let better =
                best.is_none_or(|(s, t, _)| shared > s || (shared == s && other.ticket < t));
            if better {
                if !alive(who) {
                    dead.push(who);
                    continue;
                }
                best = Some((shared, other.ticket, who));
            }
        }
        if best.is_none() && (seeker.open || seeker.seeker.interests.is_empty()) {
            for (_, &who) in self.open[mode as usize].iter().take(SCAN) {
                let Some(other) = self.waiting.get(&who) else {
                    continue;
                };
                if !self.compatible(seeker, other, now, recent_too) {
                    continue;
                }
                if !alive(who) {
                    dead.push(who);
                    continue;
                }
                best = Some((0, other.ticket, who));
                break;
            }
        }
        for who in dead {
            self.leave(who);
        }
        let (_, _, partner) = best?;
        let other = self.waiting.get(&partner)?;
        let shared = seeker
            .seeker
            .interests
            .iter()
            .filter(|i| other.seeker.interests.contains(i))
            .map(|i| i.to_string())
            .collect();
        self.leave(partner);
        Some(Pair {
            waiting: partner,
            joined: seeker.seeker.who,
            shared,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeker(who: u32, interests: &[&str]) -> Seeker<u32> {
        Seeker {
            who,
            interests: interests.iter().map(|i| Arc::from(*i)).collect(),
            text_only: false,
            avoid: Arc::default(),
            recent: Vec::new(),
        }
    }

    fn alive(_: u32) -> bool {
        true
    }

    #[test]
    fn two_without_interests_are_paired_and_nobody_with_themselves() {
        let mut q = Queue::default();
        let now = Instant::now();
        assert_eq!(q.join(seeker(1, &[]), now, alive), None);
        // Joining again (another tab) replaces the entry: still one, not paired with itself.
        assert_eq!(q.join(seeker(1, &[]), now, alive), None);
        assert_eq!(q.len(), 1);
        let pair = q.join(seeker(2, &[]), now, alive).unwrap();
        assert_eq!((pair.waiting, pair.joined), (1, 2));
        assert!(pair.shared.is_empty());
        assert!(q.is_empty());
    }

    #[test]
    fn a_shared_interest_pairs_at_once_and_others_wait() {
        let mut q = Queue::default();
        let t = Instant::now();
        assert_eq!(q.join(seeker(1, &["chess"]), t, alive), None);
        assert_eq!(q.join(seeker(2, &["jazz"]), t, alive), None);
        let pair = q
            .join(seeker(3, &["Jazz".to_lowercase().as_str(), "go"]), t, alive)
            .unwrap();
        assert_eq!((pair.waiting, pair.joined), (2, 3));
        assert_eq!(pair.shared, ["jazz"]);
        assert!(q.contains(1) && q.len() == 1);
    }

    #[test]
    fn overlap_beats_age() {
        let mut q = Queue::default();
        let t = Instant::now();
        // Nobody shares anything with anybody while they join.
        q.join(seeker(1, &["a"]), t, alive);
        q.join(seeker(2, &["b", "c"]), t, alive);
        let pair = q.join(seeker(3, &["a", "b", "c"]), t, alive).unwrap();
        assert_eq!(
            pair.waiting, 2,
            "two shared beat one shared, though 1 waited longer"
        );
        assert_eq!(pair.shared, ["b", "c"]);
        // Among equals, the one waiting longest.
        let mut q = Queue::default();
        q.join(seeker(3, &["p"]), t, alive);
        q.join(seeker(4, &["q"]), t, alive);
        let pair = q.join(seeker(5, &["p", "q"]), t, alive).unwrap();
        assert_eq!(pair.waiting, 3);
    }

    #[test]
    fn no_shared_interest_means_anyone_after_the_wait() {
        let mut q = Queue::default();
        let t = Instant::now();
        assert_eq!(q.join(seeker(1, &["chess"]), t, alive), None);
        assert_eq!(
            q.join(seeker(2, &[]), t, alive),
            None,
            "1 still hopes for chess"
        );
        let early = q.widen(t + Duration::from_secs(7), alive);
        assert!(early.pairs.is_empty() && early.now_open.is_empty());
        let widened = q.widen(t + WIDEN_AFTER, alive);
        assert_eq!(widened.pairs.len(), 1);
        assert_eq!(widened.pairs[0].shared, Vec::<String>::new());
        assert!(q.is_empty());
    }

    #[test]
    fn a_widened_seeker_with_nobody_around_is_told_and_then_takes_the_next_one() {
        let mut q = Queue::default();
        let t = Instant::now();
        q.join(seeker(1, &["chess"]), t, alive);
        let widened = q.widen(t + WIDEN_AFTER, alive);
        assert_eq!(widened.now_open, [1]);
        let pair = q.join(seeker(2, &["jazz"]), t + WIDEN_AFTER, alive);
        assert_eq!(pair, None, "2 is not open yet");
        let widened = q.widen(t + WIDEN_AFTER * 2, alive);
        assert_eq!(widened.pairs.len(), 1);
    }

    #[test]
    fn blocked_people_are_never_paired_either_way() {
        let mut q = Queue::default();
        let t = Instant::now();
        let mut a = seeker(1, &[]);
        a.avoid = Arc::new([2].into_iter().collect());
        q.join(a, t, alive);
        assert_eq!(q.join(seeker(2, &[]), t, alive), None, "1 blocked 2");
        let pair = q.join(seeker(3, &[]), t, alive).unwrap();
        assert_eq!(pair.waiting, 1);
        let later = q.widen(t + WIDEN_AFTER * 10, alive);
        assert!(later.pairs.is_empty(), "time does not lift a block");
        assert!(q.contains(2));
    }

    #[test]
    fn recent_partners_wait_for_someone_else_first() {
        let mut q = Queue::default();
        let t = Instant::now();
        let mut a = seeker(1, &[]);
        a.recent = vec![2];
        q.join(a.clone(), t, alive);
        assert_eq!(q.join(seeker(2, &[]), t, alive), None, "just met");
        // A third person is taken instead...
        let pair = q.join(seeker(3, &[]), t, alive).unwrap();
        assert_eq!((pair.waiting, pair.joined), (1, 3));
        // ...and with nobody else, the two meet again once both have waited.
        q.join(a, t, alive);
        let widened = q.widen(t + WIDEN_AFTER, alive);
        assert_eq!(widened.pairs.len(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn recent_partners_wait_while_others_with_other_interests_are_not_open_yet() {
        // Two pairs pressed Next: 1 and 3 met (chess), 2 and 4 met (jazz).
        let mut q = Queue::default();
        let t = Instant::now();
        let with = |who, interests: &[&str], recent| Seeker {
            recent: vec![recent],
            ..seeker(who, interests)
        };
        q.join(with(1, &["chess"], 3), t, alive);
        q.join(with(3, &["chess"], 1), t, alive);
        let later = t + Duration::from_millis(400);
        q.join(with(2, &["jazz"], 4), later, alive);
        q.join(with(4, &["jazz"], 2), later, alive);
        // 1 and 3 are due first; 2 and 4 are still young but waiting: 1 and 3 do not meet
        // again.
        let widened = q.widen(t + WIDEN_AFTER, alive);
        assert!(widened.pairs.is_empty(), "{widened:?}");
        assert_eq!(widened.now_open, [1, 3]);
        // Once 2 and 4 are open too, each meets someone from the other pair.
        let widened = q.widen(later + WIDEN_AFTER, alive);
        let mut pairs: Vec<(u32, u32)> = widened
            .pairs
            .iter()
            .map(|p| (p.waiting.min(p.joined), p.waiting.max(p.joined)))
            .collect();
        pairs.sort();
        assert_eq!(pairs, [(1, 2), (3, 4)]);
        assert!(q.is_empty());
    }

    #[test]
    fn unreachable_seekers_are_dropped_not_matched() {
        let mut q = Queue::default();
        let t = Instant::now();
        q.join(seeker(1, &[]), t, alive);
        q.join(seeker(2, &["x"]), t, alive);
        assert_eq!(q.join(seeker(3, &["x"]), t, |who| who != 2), None);
        assert!(!q.contains(2), "2's socket is gone");
        // 3 is not open yet (it hopes for "x"), so 1 is not taken.
        assert!(q.contains(1) && q.contains(3));
        // 4 takes anyone: 1 is open but gone, so 4 waits (3 still hopes for "x").
        assert_eq!(q.join(seeker(4, &[]), t, |who| who != 1), None);
        assert!(!q.contains(1), "1's socket is gone");
        let pair = q.join(seeker(5, &["x"]), t, alive).unwrap();
        assert_eq!(pair.waiting, 3);
        assert!(q.contains(4) && q.len() == 1);
    }

    #[test]
    fn after_next_interests_give_way_to_anyone() {
        let mut q = Queue::default();
        let t = Instant::now();
        assert!(q.join(seeker(1, &["chess"]), t, alive).is_none());
        assert!(q.join(seeker(2, &["jazz", "chess"]), t, alive).is_some());
        assert!(q.join(seeker(3, &[]), t, alive).is_none());
        let t1 = t + Duration::from_millis(1);
        let mut a = seeker(1, &["chess"]);
        a.recent = vec![2];
        let mut b = seeker(2, &["jazz", "chess"]);
        b.recent = vec![1];
        assert!(q.join(a, t1, alive).is_none());
        assert!(q.join(b, t1 + Duration::from_millis(1), alive).is_none());
        // Both waited as long, and share "chess": still, 3 is there, so 1 meets 3.
        let widened = q.widen(t1 + WIDEN_AFTER, alive);
        assert_eq!(widened.pairs.len(), 1, "{widened:?} {q:?}");
        assert_eq!((widened.pairs[0].waiting, widened.pairs[0].joined), (3, 1));
    }

    #[test]
    fn video_and_text_seekers_are_kept_apart() {
        let mut q = Queue::default();
        let t = Instant::now();
        let mut text = seeker(1, &[]);
        text.text_only = true;
        q.join(text, t, alive);
        assert_eq!(q.join(seeker(2, &[]), t, alive), None);
        let mut text = seeker(3, &[]);
        text.text_only = true;
        assert_eq!(q.join(text, t, alive).unwrap().waiting, 1);
    }

    #[test]
    fn leaving_removes_every_trace() {
        let mut q = Queue::default();
        let t = Instant::now();
        q.join(seeker(1, &["a", "b"]), t, alive);
        assert!(q.leave(1));
        assert!(!q.leave(1));
        assert!(
            q.by_interest.is_empty() && q.young.is_empty() && q.open.iter().all(|o| o.is_empty())
        );
        assert_eq!(q.join(seeker(2, &["a"]), t, alive), None);
    }
}
