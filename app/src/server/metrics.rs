//! What an operator can watch (`GET /metrics`, Prometheus/OpenMetrics text): one registry per
//! server instance, no global state (tests run many instances in one process). Counters only
//! go up; every gauge is kept true by construction: an open socket holds a guard that takes
//! itself off the gauge when dropped, whatever way the socket ends, and the database pool is
//! read when scraped.

use std::time::Duration;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::{Registry, Unit},
};

use crate::wire::CallOutcome;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    context: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// Every metric of one server instance.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
    sockets_open: Family<KindLabels, Gauge>,
    socket_connects: Family<KindLabels, Counter>,
    socket_closes: Family<ReasonLabels, Counter>,
    frames_in: Family<TypeLabels, Counter>,
    frames_out: Family<TypeLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    messages_stored: Counter,
    calls: Family<CallLabels, Counter>,
    codes: Family<EventLabels, Counter>,
    telemetry: Family<EventLabels, Counter>,
    db_pool: Family<PoolLabels, Gauge>,
    turn_allocations: Gauge,
    turn_relayed: Counter,
    turn_self_test: Gauge,
    strangers_waiting: Gauge,
    stranger_matches_open: Gauge,
    strangers: StrangerMetrics,
    stranger_reports: Counter,
    moderation: Family<EventLabels, Counter>,
}

/// What the strangers' matcher counts as it goes (handles: cloning one shares the series).
#[derive(Debug, Clone)]
pub struct StrangerMetrics {
    /// Matches made.
    pub matches: Counter,
    /// From looking (start, next, or being left) to matched, per person.
    pub time_to_match: Histogram,
}

impl Default for StrangerMetrics {
    fn default() -> Self {
        Self {
            matches: Counter::default(),
            // 10 ms … ~80 s.
            time_to_match: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

fn http_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("parlor");
        let http = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            http_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests by route, method and status, and how long they took",
            Unit::Seconds,
            http.clone(),
        );
        let sockets_open = Family::default();
        registry.register(
            "sockets_open",
            "Real-time sockets open now, by kind (member, guest)",
            Family::clone(&sockets_open),
        );
        let socket_connects = Family::default();
        registry.register(
            "socket_connects",
            "Real-time sockets opened, by kind",
            Family::clone(&socket_connects),
        );
        let socket_closes = Family::default();
        registry.register(
            "socket_closes",
            "Real-time sockets closed, by reason",
            Family::clone(&socket_closes),
        );
        let frames_in = Family::default();
        registry.register(
            "frames_in",
            "Frames received on real-time sockets, by message type",
            Family::clone(&frames_in),
        );
        let frames_out = Family::default();
        registry.register(
            "frames_out",
            "Frames written to real-time sockets, by message type",
            Family::clone(&frames_out),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Requests and frames refused by a rate limit, by limit",
            Family::clone(&rate_limited),
        );
        let refused = Family::default();
        registry.register(
            "refused",
            "Requests refused for another reason than a rate limit, by reason",
            Family::clone(&refused),
        );
        let messages_stored = Counter::default();
        registry.register(
            "messages_stored",
            "Conversation messages stored",
            messages_stored.clone(),
        );
        let calls = Family::default();
        registry.register(
            "calls",
            "Calls ended, by way of meeting and outcome",
            Family::clone(&calls),
        );
        let codes = Family::default();
        registry.register(
            "codes",
            "Rendezvous codes by event (minted, redeemed, failed, expired)",
            Family::clone(&codes),
        );
        let telemetry = Family::default();
        registry.register(
            "rendezvous_telemetry",
            "Telemetry events rendezvous clients reported (ice-connected, ice-failed, other)",
            Family::clone(&telemetry),
        );
        let db_pool = Family::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections, by state (idle, in_use), when scraped",
            Family::clone(&db_pool),
        );
        let turn_allocations = Gauge::default();
        registry.register(
            "turn_allocations",
            "Relay allocations of the built-in TURN server open now",
            turn_allocations.clone(),
        );
        let turn_relayed = Counter::default();
        registry.register_with_unit(
            "turn_relayed",
            "Bytes the built-in TURN server relayed between a client and its peers",
            Unit::Bytes,
            turn_relayed.clone(),
        );
        let turn_self_test = Gauge::default();
        registry.register(
            "turn_self_test_ok",
            "1 when the built-in TURN server's start-up self-test relayed, 0 when it failed, \
             -1 while it runs",
            turn_self_test.clone(),
        );
        let strangers_waiting = Gauge::default();
        registry.register(
            "strangers_waiting",
            "People looking for a stranger now, when scraped",
            strangers_waiting.clone(),
        );
        let stranger_matches_open = Gauge::default();
        registry.register(
            "stranger_matches_open",
            "Stranger matches running now, when scraped",
            stranger_matches_open.clone(),
        );
        let strangers = StrangerMetrics::default();
        registry.register(
            "stranger_matches",
            "Stranger matches made",
            strangers.matches.clone(),
        );
        registry.register_with_unit(
            "stranger_time_to_match",
            "From looking for a stranger to being matched, per person",
            Unit::Seconds,
            strangers.time_to_match.clone(),
        );
        let stranger_reports = Counter::default();
        registry.register(
            "stranger_reports",
            "Reports on strangers stored",
            stranger_reports.clone(),
        );
        let moderation = Family::default();
        registry.register(
            "moderation",
            "Moderation of strangers by event (banned, dismissed, lifted, restricted)",
            Family::clone(&moderation),
        );
        Self {
            registry,
            strangers_waiting,
            stranger_matches_open,
            strangers,
            stranger_reports,
            moderation,
            turn_self_test,
            turn_allocations,
            turn_relayed,
            http,
            sockets_open,
            socket_connects,
            socket_closes,
            frames_in,
            frames_out,
            rate_limited,
            refused,
            messages_stored,
            calls,
            codes,
            telemetry,
            db_pool,
        }
    }
}

/// Keeps an open socket on the `sockets_open` gauge until dropped.
#[derive(Debug)]
pub struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One rate limit's refusals, held by the limiter (no lookup per refusal).
#[derive(Debug, Clone, Default)]
pub struct LimitCounter(Counter);

impl LimitCounter {
    pub fn inc(&self) {
        self.0.inc();
    }
}

impl Metrics {
    /// One HTTP request answered. `route` is the matched route, never the raw path (an
    /// attacker choosing paths must not grow the metrics without bound).
    pub fn http_request(&self, labels: &HttpLabels, took: Duration) {
        self.http.get_or_create(labels).observe(took.as_secs_f64());
    }

    /// A socket opened; it counts as open until the returned guard is dropped.
    pub fn socket_opened(&self, kind: &'static str) -> OpenSocket {
        let labels = KindLabels { kind };
        self.socket_connects.get_or_create(&labels).inc();
        let gauge = self.sockets_open.get_or_create_owned(&labels);
        gauge.inc();
        OpenSocket(gauge)
    }

    pub fn socket_closed(&self, reason: &'static str) {
        self.socket_closes
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn frame_in(&self, r#type: &'static str) {
        self.frames_in.get_or_create(&TypeLabels { r#type }).inc();
    }

    pub fn frame_out(&self, r#type: &'static str) {
        self.frames_out.get_or_create(&TypeLabels { r#type }).inc();
    }

    /// The counter of refusals by the limit called `limit`.
    pub fn limit(&self, limit: &'static str) -> LimitCounter {
        LimitCounter(
            self.rate_limited
                .get_or_create_owned(&LimitLabels { limit }),
        )
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// A TURN relay allocation opened (`1`) or closed (`-1`).
    pub fn turn_allocation(&self, change: i64) {
        self.turn_allocations.inc_by(change);
    }

    /// The TURN self-test's outcome: `None` while it runs.
    pub fn turn_self_test(&self, ok: Option<bool>) {
        self.turn_self_test.set(ok.map_or(-1, i64::from));
    }

    pub fn turn_relayed(&self, bytes: u64) {
        self.turn_relayed.inc_by(bytes);
    }

    /// The handles the strangers' matcher counts with.
    pub fn strangers(&self) -> StrangerMetrics {
        self.strangers.clone()
    }

    /// How many look for a stranger and how many matches run (read at scrape time).
    pub fn set_strangers(&self, waiting: usize, matches: usize) {
        self.strangers_waiting.set(waiting as i64);
        self.stranger_matches_open.set(matches as i64);
    }

    pub fn stranger_reported(&self) {
        self.stranger_reports.inc();
    }

    /// A moderation event: `banned`, `dismissed` or `restricted`.
    pub fn moderation(&self, event: &'static str) {
        self.moderation.get_or_create(&EventLabels { event }).inc();
    }

    pub fn message_stored(&self) {
        self.messages_stored.inc();
    }

    pub fn call_ended(&self, context: &'static str, outcome: CallOutcome) {
        let outcome = match outcome {
            CallOutcome::Missed => "missed",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Completed => "completed",
        };
        self.calls
            .get_or_create(&CallLabels { context, outcome })
            .inc();
    }

    /// A rendezvous code was `minted`, `redeemed`, `failed` (redeeming an unknown, used or
    /// expired code) or `expired` (never redeemed).
    pub fn code_event(&self, event: &'static str) {
        self.codes.get_or_create(&EventLabels { event }).inc();
    }

    /// A rendezvous client's telemetry event (unknown ones count as `other`).
    pub fn telemetry(&self, event: &str) {
        let event = match event {
            "ice-connected" => "ice-connected",
            "ice-failed" => "ice-failed",
            _ => "other",
        };
        self.telemetry.get_or_create(&EventLabels { event }).inc();
    }

    /// The text exposition, with what is read at scrape time (`pool`: connections open and
    /// idle) brought up to date first.
    pub fn render(&self, pool: PoolUse) -> String {
        self.db_pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(pool.idle as i64);
        self.db_pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(pool.open.saturating_sub(pool.idle) as i64);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The database pool as seen at one moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn the_socket_gauge_follows_the_guards() {
        let metrics = Metrics::default();
        let pool = PoolUse { open: 3, idle: 1 };
        let a = metrics.socket_opened("member");
        let b = metrics.socket_opened("member");
        let text = metrics.render(pool);
        assert_eq!(
            value(&text, r#"parlor_sockets_open{kind="member"}"#),
            Some(2.0)
        );
        drop((a, b));
        let text = metrics.render(pool);
        assert_eq!(
            value(&text, r#"parlor_sockets_open{kind="member"}"#),
            Some(0.0)
        );
        assert_eq!(
            value(&text, r#"parlor_socket_connects_total{kind="member"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&text, r#"parlor_db_pool_connections{state="in_use"}"#),
            Some(2.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
