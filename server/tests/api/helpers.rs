//! Spawns the real application for a test: its own temporary data directory, port 0, and a
//! shutdown handle that stops it when the test ends.

use std::net::SocketAddr;

use app::server::state::AppState;
use server::{config::Config, startup::Application};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestApp {
    pub addr: SocketAddr,
    /// The built-in TURN server's address, when the test turned it on.
    pub turn_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: AppState,
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

    async fn start(config: Config, data_dir: TempDir) -> Self {
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
            data_dir: Some(data_dir),
            stop: Some(stop),
            task: Some(task),
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
