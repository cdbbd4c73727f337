//! Spawns the real application for a test: its own temporary data directory, port 0, and a
//! shutdown handle that stops it when the test ends.

use std::net::SocketAddr;

use app::server::state::AppState;
use server::{config::Config, startup::Application};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    data_dir: Option<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// The app on a fresh, empty data directory.
    pub async fn spawn() -> Self {
        Self::spawn_in(tempfile::tempdir().expect("temporary data directory")).await
    }

    /// The app on an existing data directory.
    pub async fn spawn_in(data_dir: TempDir) -> Self {
        let app = Application::build(Config::for_tests(data_dir.path()))
            .await
            .expect("the application builds");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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
