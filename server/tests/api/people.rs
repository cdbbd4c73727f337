//! Signed-up users for social tests: their session cookie, server function calls made as
//! them, and their WebSocket connections, as a browser tab would open them.

use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        self, client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame, Message,
    },
    MaybeTlsStream, WebSocketStream,
};

use crate::helpers::TestApp;

pub const PASSWORD: &str = "correct horse battery";

pub struct Person {
    pub id: i64,
    pub name: String,
    /// `parlor_session=…`, as the browser sends it.
    pub cookie: String,
}

impl TestApp {
    /// Signs up `name` (email `<name>@example.com`) and keeps their session cookie.
    pub async fn person(&self, name: &str) -> Person {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = self.sign_up(&self.client, &email, name, PASSWORD).await;
        assert!(
            response.status().is_success(),
            "sign-up: {}",
            response.status()
        );
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let session: Value = self
            .client
            .post(self.url("/api/auth/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Person {
            id: session["user"]["id"].as_i64().unwrap(),
            name: name.to_string(),
            cookie,
        }
    }

    /// Calls a server function as `who`.
    pub async fn call_as(
        &self,
        who: &Person,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("cookie", &who.cookie)
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    /// Calls a server function as `who`, expecting success; returns its JSON answer.
    pub async fn ok_as(&self, who: &Person, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self.call_as(who, path, form).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status.is_success(),
            "{path} as {}: {status} {body}",
            who.name
        );
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// Calls a server function as `who`, expecting a refusal; returns status and error.
    pub async fn refused_as(
        &self,
        who: &Person,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = self.call_as(who, path, form).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status >= 400,
            "{path} as {} should fail: {status} {body}",
            who.name
        );
        (status, serde_json::from_str(&body).unwrap())
    }

    /// Makes `a` and `b` friends; returns their conversation id.
    pub async fn befriend(&self, a: &Person, b: &Person) -> i64 {
        let b_id = b.id.to_string();
        let a_id = a.id.to_string();
        assert_eq!(
            self.ok_as(a, "/api/friends/request", &[("user_id", &b_id)])
                .await,
            "Sent"
        );
        let answer = self
            .ok_as(
                b,
                "/api/friends/answer",
                &[("user_id", &a_id), ("accept", "true")],
            )
            .await;
        answer.as_i64().expect("a conversation id")
    }

    /// Opens a socket as `who`, from our own origin, and reads the welcome.
    pub async fn socket(&self, who: &Person) -> Socket {
        let mut socket = self
            .try_socket(Some(&who.cookie))
            .await
            .expect("socket opens");
        match socket.next().await {
            ServerMsg::Welcome { user_id, .. } => assert_eq!(user_id, who.id),
            other => panic!("expected a welcome, got {other:?}"),
        }
        socket
    }

    pub async fn try_socket(&self, cookie: Option<&str>) -> Result<Socket, tungstenite::Error> {
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "origin",
            HeaderValue::from_str(&format!("http://{}", self.addr)).unwrap(),
        );
        if let Some(cookie) = cookie {
            headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Socket { ws })
    }
}

pub struct Socket {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    pub async fn send(&mut self, message: &ClientMsg) {
        self.send_text(&serde_json::to_string(message).unwrap())
            .await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("frame sent");
    }

    /// The next server message (pings are answered by tungstenite as it reads).
    pub async fn next(&mut self) -> ServerMsg {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("the socket is open")
                .expect("a readable frame");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("a server message")
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Skips messages until one `pick` accepts.
    pub async fn next_where<T>(&mut self, mut pick: impl FnMut(ServerMsg) -> Option<T>) -> T {
        loop {
            if let Some(found) = pick(self.next().await) {
                return found;
            }
        }
    }

    /// Asserts that nothing but pings arrives for `wait`.
    pub async fn silent_for(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Asserts that no message `unwanted` accepts arrives for `wait`.
    pub async fn none_for(&mut self, wait: Duration, unwanted: impl Fn(&ServerMsg) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(text) = frame {
                let message: ServerMsg = serde_json::from_str(&text).unwrap();
                assert!(!unwanted(&message), "unexpected {message:?}");
            }
        }
    }

    /// Reads until the server closes; returns its close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("closed within 10 s")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}
