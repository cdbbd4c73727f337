//! A real Redis server for one test: `redis-server` (the Debian package) on a Unix socket in a
//! temporary directory, no TCP port, nothing saved to disk. Stopped (killed) when dropped;
//! [`Redis::restart`] kills it and starts a fresh, empty one on the same socket, as a Redis
//! restart without persistence does.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Redis {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server; panics with the reason when `redis-server` is missing or fails.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for Redis");
        let mut redis = Self { dir, child: None };
        redis.spawn();
        redis
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn spawn(&mut self) {
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs (Debian package redis-server: make bootstrap)");
        self.child = Some(child);
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's Unix socket (for `redis-cli -s`).
    pub fn socket_path(&self) -> PathBuf {
        self.socket()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The URL Parlor takes (`PARLOR_REDIS_URL`).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Stops the server (killed, as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts an empty one on the same socket.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
