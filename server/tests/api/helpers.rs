//! Spawns the real application for a test: its own temporary data directory, port 0, and a
//! shutdown handle that stops it when the test ends.

use std::net::SocketAddr;

use app::server::state::AppState;
use server::{
    config::{Config, Secret},
    startup::Application,
};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

/// With `PARLOR_TEST_POSTGRES` set (a URL with `{db}` where the database name goes, as
/// `scripts/test.sh` sets it), every test app gets its own fresh PostgreSQL database instead
/// of the SQLite file; its name is kept in the data directory, so a restart on the same
/// directory finds the same database. Unset: SQLite, as by default.
async fn postgres_for(data_dir: &std::path::Path) -> Option<String> {
    use sqlx::Connection;
    let template = std::env::var("PARLOR_TEST_POSTGRES").ok()?;
    let marker = data_dir.join("test-postgres-database");
    let name = match std::fs::read_to_string(&marker) {
        Ok(name) => name,
        Err(_) => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let name = format!(
                "parlor_{}_{nanos}_{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut admin = sqlx::PgConnection::connect(&template.replace("{db}", "postgres"))
                .await
                .expect("the test PostgreSQL server (PARLOR_TEST_POSTGRES) answers");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("a test database");
            let _ = admin.close().await;
            std::fs::write(&marker, &name).unwrap();
            name
        }
    };
    Some(template.replace("{db}", &name))
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The built-in TURN server's address, when the test turned it on.
    pub turn_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: AppState,
    /// PostgreSQL's URL, when the test runs on it (see [`postgres_for`]).
    database_url: Option<String>,
    data_dir: Option<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// The app on a fresh, empty data directory.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The app on a fresh data directory, with the test configuration adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config::for_tests(data_dir.path());
        adjust(&mut config);
        Self::start(config, data_dir).await
    }

    /// The app on an existing data directory.
    pub async fn spawn_in(data_dir: TempDir) -> Self {
        Self::start(Config::for_tests(data_dir.path()), data_dir).await
    }

    async fn start(mut config: Config, data_dir: TempDir) -> Self {
        if config.database_url.is_none() {
            config.database_url = postgres_for(&config.data_dir).await.map(Secret::new);
        }
        let database_url = config
            .database_url
            .as_ref()
            .map(|url| url.expose().to_string());
        let app = Application::build(config)
            .await
            .expect("the application builds");
        let addr = app.local_addr();
        let turn_addr = app.turn_addr();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            turn_addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            state,
            database_url,
            data_dir: Some(data_dir),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `n` instances of the app sharing one database and one Redis (a `redis-server` of the
    /// test's own), as behind a load balancer: one data directory (so one session key and, on
    /// SQLite, one file) and, when the suite runs on PostgreSQL, one database. Instances are
    /// taken for gone 1 s after their last heartbeat.
    pub async fn cluster(n: usize) -> (testkit::redis::Redis, Vec<TestApp>) {
        Self::cluster_with(n, |_| {}).await
    }

    /// [`Self::cluster`] with every instance's configuration adjusted by `adjust`.
    pub async fn cluster_with(
        n: usize,
        adjust: impl Fn(&mut Config),
    ) -> (testkit::redis::Redis, Vec<TestApp>) {
        let redis = testkit::redis::Redis::start();
        let join = |config: &mut Config| {
            config.redis_url = Some(Secret::new(redis.url()));
            config.instance_timeout = std::time::Duration::from_secs(1);
            adjust(config);
        };
        let first = Self::spawn_with(join).await;
        let mut apps = vec![first];
        for _ in 1..n {
            let mut config = Config::for_tests(apps[0].data_path());
            join(&mut config);
            let own = tempfile::tempdir().expect("temporary directory");
            apps.push(Self::start(config, own).await);
        }
        (redis, apps)
    }

    /// Another handle on the app's database, as a second instance sharing it would have (its
    /// own pool and message writer).
    pub async fn second_db(&self) -> app::server::db::Db {
        use app::server::db::Db;
        match &self.database_url {
            Some(url) => Db::open_postgres(url, 8).await.unwrap(),
            None => Db::open_sqlite(&self.data_path().join("parlor.db"))
                .await
                .unwrap(),
        }
    }

    pub fn data_path(&self) -> &std::path::Path {
        self.data_dir.as_ref().unwrap().path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A client with its own cookie jar: one browser.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Calls a server function the way the browser's fetch does (form-encoded POST).
    pub async fn call(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    /// Signs up a new user in `client`'s cookie jar; returns the response.
    pub async fn sign_up(
        &self,
        client: &reqwest::Client,
        email: &str,
        name: &str,
        password: &str,
    ) -> reqwest::Response {
        self.call(
            client,
            "/api/auth/sign_up",
            &[
                ("email", email),
                ("display_name", name),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in `client`'s cookie jar with email and password; returns the response.
    pub async fn sign_in(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.call(
            client,
            "/api/auth/sign_in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// The HTML of page `path` as `client` (with its cookies) sees it.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("a page")
    }

    /// The signed-in user as `/api/auth/session` reports it (JSON `null` when signed out).
    pub async fn me(&self, client: &reqwest::Client) -> serde_json::Value {
        let response = self.call(client, "/api/auth/session", &[]).await;
        assert_eq!(response.status(), 200);
        response.json::<serde_json::Value>().await.unwrap()["user"].clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Waits (up to 5 s) until `/readyz` says ready, e.g. after Redis came back.
    pub async fn ready_again(&self) -> bool {
        for _ in 0..50 {
            if self.get("/readyz").await.status() == 200 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// Stops the server the way SIGTERM does and waits until it has stopped.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.expect("server task")
    }
}

impl TestApp {
    /// Stops the app and starts a new one on the same data directory.
    pub async fn restart(mut self) -> Self {
        let data_dir = self.data_dir.take().unwrap();
        let _ = self.stop.take().unwrap().send(());
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("clean shutdown");
        Self::spawn_in(data_dir).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
