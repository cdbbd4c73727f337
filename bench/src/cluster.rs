//! Cross-instance mode (`--instances 2`): the same people, sockets and messages on one Parlor
//! instance, then on several instances sharing one Redis (a private `redis-server`), every
//! pair of friends talking across instances (the sender on the first, the receiver on the
//! last). Both runs use a throwaway PostgreSQL (`scripts/pg-temp.sh`, a fresh database each),
//! so the difference is what crossing instances costs: delivery latency, server CPU per
//! message (all instances together), Redis commands and Redis CPU per message.

use std::time::Duration;

use testkit::redis::Redis;

use crate::{connect, messages, percentile, wait_ready, Options, Server, Ws};

/// What one run measured.
struct Figures {
    connect_ms_per_1000: f64,
    kib_per_idle: f64,
    delivered: usize,
    p50_ms: f64,
    p99_ms: f64,
    cpu_per_100k: f64,
    redis_commands_per_message: Option<f64>,
    redis_cpu_per_100k: Option<f64>,
}

/// Commands Redis has processed so far (`INFO stats`), through `redis-cli`.
fn redis_commands(redis: &Redis) -> f64 {
    let out = std::process::Command::new("redis-cli")
        .arg("-s")
        .arg(redis.socket_path())
        .args(["info", "stats"])
        .output()
        .expect("redis-cli runs (Debian package redis-tools, with redis-server)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Redis's CPU seconds so far.
fn redis_cpu(redis: &Redis) -> f64 {
    let Some(pid) = redis.pid() else {
        return f64::NAN;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A throwaway PostgreSQL server (`scripts/pg-temp.sh`), stopped when dropped.
struct Postgres {
    dir: tempfile::TempDir,
    /// Its URL with `{db}` where a database name goes.
    template: String,
}

impl Postgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for PostgreSQL");
        let out = std::process::Command::new("scripts/pg-temp.sh")
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("scripts/pg-temp.sh runs (from the repository's root)");
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let template = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Self { dir, template }
    }

    /// A fresh database: its URL.
    fn database(&self, name: &str) -> String {
        let status = std::process::Command::new("psql")
            .arg(self.template.replace("{db}", "postgres"))
            .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
            .status()
            .expect("psql runs");
        assert!(status.success(), "creating database {name} failed");
        self.template.replace("{db}", name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scripts/pg-temp.sh")
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

async fn measure(o: &Options, instances: usize, postgres: &Postgres) -> Figures {
    let redis = (instances > 1).then(Redis::start);
    let data = tempfile::tempdir().expect("a data directory");
    let database = postgres.database(&format!("bench_{instances}"));
    let servers: Vec<Server> = (0..instances)
        .map(|_| {
            Server::start_with(&o.server, |command| {
                crate::load_settings(command);
                command
                    .env("PARLOR_DATA_DIR", data.path())
                    .env("PARLOR_DATABASE_URL", &database)
                    // Calls are not measured here (and each would want its own port).
                    .env("PARLOR_TURN", "off")
                    .env(
                        "PARLOR_SESSION_SECRET",
                        "bench-session-secret-0123456789abcdef0123",
                    );
                if let Some(redis) = &redis {
                    command.env("PARLOR_REDIS_URL", redis.url());
                }
            })
        })
        .collect();
    let http = reqwest::Client::new();
    for server in &servers {
        wait_ready(&http, server, true).await;
    }
    let base = format!("http://{}", servers[0].addr);
    let idle_users = 20;
    let (users, conversations) = crate::people(&http, &base, idle_users, o.pairs).await;
    let cpu = |servers: &[Server]| servers.iter().map(Server::cpu).sum::<f64>();
    let rss = |servers: &[Server]| servers.iter().map(Server::rss_kib).sum::<f64>();

    // Idle sockets, spread over the instances in turn.
    let rss_before = rss(&servers);
    let cpu_before = cpu(&servers);
    let mut idle: Vec<Ws> = Vec::with_capacity(o.sockets);
    let mut batch = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for n in 0..o.sockets {
        let addr = servers[n % instances].addr.clone();
        let cookie = users[n % idle_users].cookie.clone();
        batch.push(async move { connect(&addr, &cookie).await });
        if batch.len() >= 200 {
            idle.push(batch.next().await.unwrap());
        }
    }
    while let Some(ws) = batch.next().await {
        idle.push(ws);
    }
    let connect_cpu = cpu(&servers) - cpu_before;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kib_per_idle = (rss(&servers) - rss_before) / o.sockets as f64;
    for mut ws in idle {
        tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    }

    // Messages: each pair's sender on the first instance, its receiver on the last.
    let mut pairs = Vec::new();
    let last = &servers[instances - 1];
    for p in 0..o.pairs {
        let a = connect(&servers[0].addr, &users[idle_users + 2 * p].cookie).await;
        let b = connect(&last.addr, &users[idle_users + 2 * p + 1].cookie).await;
        pairs.push((a, b, conversations[p]));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let message_rate = (o.rate / 10).max(o.pairs);
    let commands_before = redis.as_ref().map(redis_commands);
    let redis_cpu_before = redis.as_ref().map(redis_cpu);
    let cpu_before = cpu(&servers);
    let lat = messages(pairs, message_rate, Duration::from_secs(o.seconds)).await;
    let used = cpu(&servers) - cpu_before;
    let per_message = |total: f64| total / lat.len().max(1) as f64;
    Figures {
        connect_ms_per_1000: connect_cpu * 1000.0 / (o.sockets as f64 / 1000.0),
        kib_per_idle,
        delivered: lat.len(),
        p50_ms: percentile(&lat, 0.5) / 1000.0,
        p99_ms: percentile(&lat, 0.99) / 1000.0,
        cpu_per_100k: per_message(used) * 100_000.0,
        redis_commands_per_message: redis
            .as_ref()
            .zip(commands_before)
            .map(|(r, before)| per_message(redis_commands(r) - before)),
        redis_cpu_per_100k: redis
            .as_ref()
            .zip(redis_cpu_before)
            .map(|(r, before)| per_message(redis_cpu(r) - before) * 100_000.0),
    }
}

pub async fn run(o: &Options, instances: usize) {
    println!(
        "Parlor across instances: {} ({} idle sockets, {} pairs talking at {}/s for {} s), one \
         instance, then {instances} on one Redis, in the same run (on a throwaway PostgreSQL)",
        o.server,
        o.sockets,
        o.pairs,
        (o.rate / 10).max(o.pairs),
        o.seconds
    );
    let postgres = Postgres::start();
    let one = measure(o, 1, &postgres).await;
    let many = measure(o, instances, &postgres).await;
    println!(
        "{:<52} {:>14} {:>14}",
        "",
        "one instance",
        format!("{instances} instances")
    );
    let row = |name: &str, a: String, b: String| println!("{name:<52} {a:>14} {b:>14}");
    row(
        "server CPU per 1 000 connects (all instances)",
        format!("{:.1} ms", one.connect_ms_per_1000),
        format!("{:.1} ms", many.connect_ms_per_1000),
    );
    row(
        "server memory per idle connection (all instances)",
        format!("{:.2} KiB", one.kib_per_idle),
        format!("{:.2} KiB", many.kib_per_idle),
    );
    row(
        "stored messages delivered",
        one.delivered.to_string(),
        many.delivered.to_string(),
    );
    row(
        "send → delivery p50",
        format!("{:.1} ms", one.p50_ms),
        format!("{:.1} ms", many.p50_ms),
    );
    row(
        "send → delivery p99",
        format!("{:.1} ms", one.p99_ms),
        format!("{:.1} ms", many.p99_ms),
    );
    row(
        "server CPU seconds per 100 000 messages",
        format!("{:.2}", one.cpu_per_100k),
        format!("{:.2}", many.cpu_per_100k),
    );
    let or_dash = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    row(
        "Redis commands per message",
        or_dash(one.redis_commands_per_message, 2),
        or_dash(many.redis_commands_per_message, 2),
    );
    row(
        "Redis CPU seconds per 100 000 messages",
        or_dash(one.redis_cpu_per_100k, 2),
        or_dash(many.redis_cpu_per_100k, 2),
    );
}
