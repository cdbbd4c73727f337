//! Measures Parlor's real-time channel the way `../shared/notes/performance.md` asks: the
//! real `parlor` binary in its own process, driven over loopback by real WebSocket clients
//! from this one. Reports figures (memory per connection, CPU per 1 000 connects, CPU while
//! idle, round-trip and delivery latency under load); it does not pass or fail.
//!
//! `cargo run --release -p bench -- [--server target/release/parlor] [--sockets 10000]
//! [--rate 10000] [--seconds 10] [--pause SECS]`, or `make bench`; `--soak MINUTES` runs the
//! soak ([`soak`]) instead, `make soak`; `--rendezvous ROOMS` the code rooms
//! ([`rendezvous`]); `--strangers GUESTS` random matching ([`strangers`]); `--instances N`
//! one instance against N on one Redis ([`cluster`]). Every measurement is taken for the floor ([`floor`])
//! in the same run too, and reported beside Parlor's.

mod cluster;
mod floor;
mod holder;
mod rendezvous;
mod soak;
mod strangers;

use std::{
    collections::HashMap,
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use holder::Holder;
use serde_json::{json, Value};
use testkit::client::{self, Ws};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

struct Options {
    server: String,
    sockets: usize,
    rate: usize,
    seconds: u64,
    pairs: usize,
    /// Seconds to wait before Parlor's connects, for attaching a profiler.
    pause: u64,
    /// Minutes of soak instead of the measurements (`--soak 30`).
    soak: u64,
    /// Code rooms for the rendezvous mode instead of the channel (`--rendezvous 1000`).
    rendezvous: usize,
    /// Guests for the strangers mode instead of the channel (`--strangers 10000`).
    strangers: usize,
    /// Instances for the cross-instance mode instead of the channel (`--instances 2`).
    instances: usize,
}

fn options() -> Options {
    let mut o = Options {
        server: "target/release/parlor".into(),
        sockets: 10_000,
        rate: 10_000,
        seconds: 10,
        pairs: 50,
        pause: 0,
        soak: 0,
        rendezvous: 0,
        strangers: 0,
        instances: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number = || {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--server" => o.server = value.clone(),
            "--sockets" => o.sockets = number(),
            "--rate" => o.rate = number(),
            "--seconds" => o.seconds = number() as u64,
            "--pairs" => o.pairs = number(),
            "--pause" => o.pause = number() as u64,
            "--soak" => o.soak = number() as u64,
            "--rendezvous" => o.rendezvous = number(),
            "--strangers" => o.strangers = number(),
            "--instances" => o.instances = number(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Parlor's settings for a load: limits that would refuse a load generator lifted.
fn load_settings(command: &mut Command) {
    command
        .env("PARLOR_LOG", "warn")
        .env("PARLOR_AUTH_ATTEMPTS_PER_IP", "100000")
        .env("PARLOR_WS_MESSAGES_PER_SEC", "10000")
        // Thousands of sockets from one address and a few users: the load is the point.
        .env("PARLOR_WS_SOCKETS_PER_IP", "1000000")
        .env("PARLOR_WS_SOCKETS_PER_PRINCIPAL", "10000");
}

/// The server process and what /proc says about it.
struct Server {
    /// "Parlor" or "floor", for progress lines.
    name: &'static str,
    child: Child,
    addr: String,
    cpu: std::sync::Mutex<ThreadClock>,
    _data: tempfile::TempDir,
}

/// The server's CPU time, to the nanosecond: the scheduler's own count per thread
/// (`/proc/<pid>/task/<tid>/schedstat`). `/proc/<pid>/stat` counts in clock ticks (10 ms), and
/// charges each tick to whichever thread it lands on: a phase taking a third of a second
/// of CPU read ±20 % from run to run.
#[derive(Default)]
struct ThreadClock {
    /// Each thread's time when last read.
    seen: HashMap<u32, u64>,
    /// Time of the threads that have exited since (as last read).
    gone: u64,
}

impl ThreadClock {
    /// Nanoseconds so far over every thread, those gone included (up to their last reading).
    fn read(&mut self, pid: u32) -> u64 {
        let mut now = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let ns = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok());
                if let Some(ns) = ns {
                    now.insert(tid, ns);
                }
            }
        }
        for (tid, ns) in &self.seen {
            if !now.contains_key(tid) {
                self.gone += ns;
            }
        }
        self.seen = now;
        self.gone + self.seen.values().sum::<u64>()
    }
}

impl Server {
    /// Parlor with `configure`'s settings only.
    fn start_with(path: &str, configure: impl FnOnce(&mut Command)) -> Self {
        Self::spawn(path, &[], configure)
    }

    fn start(path: &str) -> Self {
        Self::spawn(path, &[], load_settings)
    }

    /// The floor ([`floor`]): this same program in its own process.
    fn floor() -> Self {
        let exe = std::env::current_exe().expect("the bench knows where it is");
        Self::spawn(&exe.to_string_lossy(), &["--floor-server"], |_| {})
    }

    fn spawn(path: &str, args: &[&str], configure: impl FnOnce(&mut Command)) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(path);
        command
            .args(args)
            .arg(&addr)
            .env("PARLOR_ADDR", &addr)
            .env("PARLOR_DATA_DIR", data.path())
            .stdout(Stdio::null());
        configure(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start {path}: {e} (build it: cargo leptos build --release)")
        });
        Self {
            name: if args.is_empty() { "Parlor" } else { "floor" },
            child,
            addr,
            cpu: std::sync::Mutex::default(),
            _data: data,
        }
    }

    /// CPU seconds used so far (user + system, every thread; see [`ThreadClock`]).
    fn cpu(&self) -> f64 {
        let mut clock = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
        clock.read(self.child.id()) as f64 / 1e9
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct User {
    id: i64,
    cookie: String,
}

async fn sign_up(http: &reqwest::Client, base: &str, n: usize) -> User {
    let (id, cookie) = client::sign_up(
        http,
        base,
        &format!("bench{n}@example.com"),
        &format!("Bench {n}"),
        "benchmark password",
    )
    .await;
    User { id, cookie }
}

/// `idle` people to hold idle tabs, then `pairs` pairs of friends (the two after them, in
/// order): everyone, and each pair's conversation.
async fn people(
    http: &reqwest::Client,
    base: &str,
    idle: usize,
    pairs: usize,
) -> (Vec<User>, Vec<i64>) {
    let mut users = Vec::new();
    for n in 0..idle + 2 * pairs {
        users.push(sign_up(http, base, n).await);
    }
    let mut conversations = Vec::new();
    for p in 0..pairs {
        let (a, b) = (&users[idle + 2 * p], &users[idle + 2 * p + 1]);
        let to_b = b.id.to_string();
        call(
            http,
            base,
            &a.cookie,
            "friends/request",
            &[("user_id", &to_b)],
        )
        .await;
        let to_a = a.id.to_string();
        let answer = [("user_id", to_a.as_str()), ("accept", "true")];
        let c = call(http, base, &b.cookie, "friends/answer", &answer).await;
        conversations.push(c.as_i64().unwrap());
    }
    (users, conversations)
}

/// Calls a server function that must succeed; its JSON answer.
async fn call(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Value {
    let response = client::call(http, base, cookie, &format!("/api/{path}"), form).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// A socket past its welcome.
async fn connect(addr: &str, cookie: &str) -> Ws {
    let mut ws = client::connect(addr, Some(cookie))
        .await
        .expect("socket opens");
    ws.next().await.unwrap().unwrap();
    ws
}

/// Reads JSON frames until one `pick` accepts; `None` when the socket ends or `within` passes.
async fn until(ws: &mut Ws, within: Duration, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + within;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if pick(&value) {
                return Some(value);
            }
        }
    }
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, value: String) {
    println!("{name:<48} {value}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match args.get(1).map(String::as_str) {
        Some("--floor-server") => return runtime.block_on(floor::serve(&args[2])),
        Some("--hold") => return runtime.block_on(holder::serve(&args[2])),
        _ => {}
    }
    runtime.block_on(run(options()));
}

/// What the channel costs, for Parlor and for the floor alike.
struct Channel {
    connect_ms_per_1000: f64,
    kib_per_idle: f64,
    idle_cpu_percent: f64,
    rtt_p50_us: f64,
    rtt_p99_us: f64,
    cpu_per_100k_rtt: f64,
}

/// Waits until `server` accepts connections (and, for Parlor, is ready).
async fn wait_ready(http: &reqwest::Client, server: &Server, parlor: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = if parlor {
            http.get(format!("http://{}/readyz", server.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        } else {
            tokio::net::TcpStream::connect(&server.addr).await.is_ok()
        };
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Idle sockets opened in parts, and what opening them cost. Memory is reported for the
/// second half of the parts, so heap freed earlier (argon2 uses 19 MiB per hash) and reuse
/// do not flatter the figure.
#[derive(Default)]
struct Opened {
    /// Server CPU seconds the connects took.
    cpu: f64,
    /// Resident memory (KiB) a second after each part, and how many sockets each opened.
    rss: Vec<f64>,
    counts: Vec<usize>,
}

impl Opened {
    /// Has `holder` open `count` more sockets on `server` (cycling over its cookies from
    /// `offset`), and reads the server's memory a second later.
    async fn part(&mut self, server: &Server, holder: &mut Holder, count: usize, offset: usize) {
        let (cpu_before, started) = (server.cpu(), Instant::now());
        holder.open(count, offset).await;
        let cpu = server.cpu() - cpu_before;
        eprintln!(
            "{}: {count} connects in {:.2} s, {:.2} ms of CPU per 1 000",
            server.name,
            started.elapsed().as_secs_f64(),
            cpu * 1e6 / count as f64
        );
        self.cpu += cpu;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.rss.push(server.rss_kib());
        self.counts.push(count);
    }

    /// KiB per socket over the second half of the parts.
    fn kib_per_socket(&self) -> f64 {
        let half = self.rss.len() / 2;
        let sockets: usize = self.counts[half..].iter().sum();
        (self.rss[self.rss.len() - 1] - self.rss[half - 1]) / sockets as f64
    }
}

/// How many parts each server's idle sockets are opened in ([`open_both`]).
const PARTS: usize = 10;

/// Opens `o.sockets` idle sockets on each server in [`PARTS`] parts, alternating floor,
/// Parlor, Parlor, floor, floor, Parlor, …; each server's from a holder process of its own
/// ([`holder`]), which keeps them open and read.
///
/// What a connect costs moves with the machine: more after the other server's load phases
/// (measured one after the other, Parlor's connects after the floor's 10-second phases cost
/// up to a third more than after 2-second ones), and far more once fresh memory has to come
/// from the host (on this VM, a first touch of a page the guest gave back, free page
/// reporting: the kernel's `clear_page` then took a fifth of Parlor's connect CPU). Short
/// alternating parts, before any load, give both servers the same machine: a change of
/// regime falls on both.
async fn open_both(
    floor: &Server,
    parlor: &Server,
    cookies: &[String],
    o: &Options,
) -> ((Opened, Holder), (Opened, Holder)) {
    let mut floor_holder = Holder::start(&floor.addr, &[String::new()]).await;
    let mut parlor_holder = Holder::start(&parlor.addr, cookies).await;
    // The sockets of part `n` of a server: offset and count.
    let part = |n: usize| {
        let offset = o.sockets * n / PARTS;
        (offset, o.sockets * (n + 1) / PARTS - offset)
    };
    let (mut f, mut p) = (Opened::default(), Opened::default());
    for turn in 0..2 * PARTS {
        // f P P f f P P f …
        if matches!(turn % 4, 0 | 3) {
            let (offset, count) = part(f.counts.len());
            f.part(floor, &mut floor_holder, count, offset).await;
        } else {
            let (offset, count) = part(p.counts.len());
            p.part(parlor, &mut parlor_holder, count, offset).await;
        }
    }
    ((f, floor_holder), (p, parlor_holder))
}

/// With `opened`'s idle sockets held: CPU while they idle, then ping → pong round trips at
/// the target rate over `2 × pairs` more sockets. `cookies` are cycled over (empty for the
/// floor).
async fn measure_channel(
    server: &Server,
    cookies: &[String],
    o: &Options,
    opened: Opened,
) -> Channel {
    let (connect_cpu, kib_per_idle) = (opened.cpu, opened.kib_per_socket());
    let cpu_before = server.cpu();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu_percent = (server.cpu() - cpu_before) * 10.0;

    let mut sockets = Vec::new();
    for n in 0..2 * o.pairs {
        sockets.push(connect(&server.addr, &cookies[n % cookies.len()]).await);
    }
    let per_socket = (o.rate as f64 / sockets.len() as f64).max(1.0);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let cpu_before = server.cpu();
    let mut tasks = Vec::new();
    let run_for = Duration::from_secs(o.seconds);
    for ws in sockets.drain(..) {
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let (mut tx, rx) = ws.split();
            let interval = Duration::from_secs_f64(1.0 / per_socket);
            let sent_at = Arc::new(Mutex::new(std::collections::VecDeque::<Instant>::new()));
            let reader_sent = sent_at.clone();
            let reader = tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut ws_back = rx;
                while let Some(Ok(frame)) = ws_back.next().await {
                    if let Message::Text(text) = frame {
                        if text.as_str() == r#"{"type":"pong"}"# {
                            if let Some(at) = reader_sent.lock().await.pop_front() {
                                mine.push(at.elapsed().as_secs_f64() * 1e6);
                            }
                        }
                    }
                }
                mine
            });
            let start = Instant::now();
            let mut ticker = tokio::time::interval(interval);
            while start.elapsed() < run_for {
                ticker.tick().await;
                sent_at.lock().await.push_back(Instant::now());
                if tx.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = tx.close().await;
            let mine = reader.await.unwrap_or_default();
            latencies.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let cpu = server.cpu() - cpu_before;
    let mut rtts = latencies.lock().await.clone();
    rtts.sort_by(f64::total_cmp);
    Channel {
        connect_ms_per_1000: connect_cpu * 1000.0 / (o.sockets as f64 / 1000.0),
        kib_per_idle,
        idle_cpu_percent,
        rtt_p50_us: percentile(&rtts, 0.5),
        rtt_p99_us: percentile(&rtts, 0.99),
        cpu_per_100k_rtt: cpu / rtts.len().max(1) as f64 * 100_000.0,
    }
}

async fn run(o: Options) {
    let http = reqwest::Client::new();
    if o.strangers > 0 {
        strangers::run(&o, o.strangers).await;
        return;
    }
    if o.instances > 0 {
        cluster::run(&o, o.instances.max(2)).await;
        return;
    }
    if o.rendezvous > 0 {
        rendezvous::run(&o, o.rendezvous).await;
        return;
    }
    if o.soak > 0 {
        let server = Server::start(&o.server);
        wait_ready(&http, &server, true).await;
        soak::run(&server, o.soak).await;
        return;
    }

    // Both servers up, and Parlor's people signed up, before anything is measured.
    let floor_server = Server::floor();
    wait_ready(&http, &floor_server, false).await;
    let server = Server::start(&o.server);
    wait_ready(&http, &server, true).await;
    let base = format!("http://{}", server.addr);

    // People: some to hold idle tabs, and pairs of friends who talk.
    let idle_users = 20;
    let (users, conversations) = people(&http, &base, idle_users, o.pairs).await;
    println!(
        "Parlor real-time channel: {} ({} idle sockets, {} talking pairs, {} ping/s), beside \
         the floor (a minimal tokio-tungstenite server) measured in the same run",
        o.server, o.sockets, o.pairs, o.rate
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    if o.pause > 0 {
        eprintln!(
            "Parlor (pid {}) connects in {} s (--pause)",
            server.child.id(),
            o.pause
        );
        tokio::time::sleep(Duration::from_secs(o.pause)).await;
    }
    let cookies: Vec<String> = users[..idle_users]
        .iter()
        .map(|u| u.cookie.clone())
        .collect();
    let ((floor_opened, floor_holder), (parlor_opened, _parlor_holder)) =
        open_both(&floor_server, &server, &cookies, &o).await;
    // Then the floor's idle and load phases (Parlor's idle sockets stay open meanwhile, each
    // pinged every 25 s), the floor goes, and Parlor's phases.
    let floor = measure_channel(&floor_server, &[String::new()], &o, floor_opened).await;
    drop((floor_server, floor_holder));
    let parlor = measure_channel(&server, &cookies, &o, parlor_opened).await;
    println!("{:<52} {:>12} {:>12} {:>7}", "", "Parlor", "floor", "ratio");
    let row = |name: &str, ours: f64, floor: f64, unit: &str| {
        println!(
            "{name:<52} {:>12} {:>12} {:>6.2}×",
            format!("{ours:.2} {unit}"),
            format!("{floor:.2} {unit}"),
            ours / floor
        );
    };
    row(
        "server CPU per 1 000 connects (Parlor: session check)",
        parlor.connect_ms_per_1000,
        floor.connect_ms_per_1000,
        "ms",
    );
    row(
        "server memory per idle connection",
        parlor.kib_per_idle,
        floor.kib_per_idle,
        "KiB",
    );
    report(
        "server CPU with all of them idle (10 s)",
        format!(
            "{:.2} % (floor {:.2} %)",
            parlor.idle_cpu_percent, floor.idle_cpu_percent
        ),
    );
    row("round trip p50", parlor.rtt_p50_us, floor.rtt_p50_us, "µs");
    row("round trip p99", parlor.rtt_p99_us, floor.rtt_p99_us, "µs");
    row(
        "server CPU seconds per 100 000 round trips",
        parlor.cpu_per_100k_rtt,
        floor.cpu_per_100k_rtt,
        "s",
    );
    report(
        "server memory with all sockets after the load",
        format!("{:.0} MiB", server.rss_kib() / 1024.0),
    );
    let run_for = Duration::from_secs(o.seconds);

    // Stored messages: each is a SQLite transaction, then a fan-out to both members.
    let mut pairs = Vec::new();
    for p in 0..o.pairs {
        let a = connect(&server.addr, &users[idle_users + 2 * p].cookie).await;
        let b = connect(&server.addr, &users[idle_users + 2 * p + 1].cookie).await;
        pairs.push((a, b, conversations[p]));
    }
    let message_rate = (o.rate / 10).max(o.pairs);
    let cpu_before = server.cpu();
    let lat = messages(pairs, message_rate, run_for).await;
    let cpu = server.cpu() - cpu_before;
    report(
        "stored messages delivered",
        format!(
            "{} of {message_rate}/s asked ({:.0}/s)",
            lat.len(),
            lat.len() as f64 / o.seconds as f64
        ),
    );
    report(
        "send → delivery p50 / p99",
        format!(
            "{:.1} ms / {:.1} ms",
            percentile(&lat, 0.5) / 1000.0,
            percentile(&lat, 0.99) / 1000.0
        ),
    );
    report(
        "server CPU seconds per 100 000 stored messages",
        format!("{:.2}", cpu / lat.len().max(1) as f64 * 100_000.0),
    );
}

/// Stored messages at `message_rate` per second over `pairs` (sender socket, receiver socket,
/// their conversation) for `run_for`: each message's send → delivery time in µs, sorted.
async fn messages(pairs: Vec<(Ws, Ws, i64)>, message_rate: usize, run_for: Duration) -> Vec<f64> {
    let per_pair = message_rate as f64 / pairs.len().max(1) as f64;
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let origin = Instant::now();
    let mut tasks = Vec::new();
    for (mut a, b, conversation) in pairs {
        let delivered = delivered.clone();
        tasks.push(tokio::spawn(async move {
            let reader = tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut b = b;
                let until = Instant::now() + run_for + Duration::from_secs(2);
                while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until.into(), b.next()).await {
                    if let Message::Text(text) = frame {
                        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if v["type"] == "message" {
                            let sent: f64 = v["message"]["body"].as_str().unwrap_or("0").parse().unwrap_or(0.0);
                            mine.push(origin.elapsed().as_secs_f64() * 1e6 - sent);
                        }
                    }
                }
                mine
            });
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_pair));
            let mut n = 0u64;
            let start = Instant::now();
            while start.elapsed() < run_for {
                ticker.tick().await;
                n += 1;
                let body = format!("{:.0}", origin.elapsed().as_secs_f64() * 1e6);
                let frame = json!({"type": "send", "conversation_id": conversation, "client_id": format!("b{n}"), "body": body});
                if a.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                // Drain the echo so the sender's queue never fills.
                while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::ZERO, a.next()).await {}
            }
            let mine = reader.await.unwrap_or_default();
            delivered.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut lat = delivered.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    lat
}
