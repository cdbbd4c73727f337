//! Signed-up users and guests for social tests: their cookie, server function calls made as
//! them, their WebSocket connections as a browser tab would open them, and the choreography
//! the tests share (pairs of friends, reading one kind of message, ringing and answering).

use std::time::Duration;

use app::{
    protocol::{CallEndReason, ClientMsg, ErrorCode, ServerMsg},
    wire::{CallId, MessageView},
};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use testkit::client::Ws;
use tokio_tungstenite::tungstenite::{self, protocol::CloseFrame, Message};

use crate::helpers::TestApp;

pub const PASSWORD: &str = "correct horse battery";

pub struct Person {
    /// The user id; 0 for a guest.
    pub id: i64,
    pub name: String,
    /// `parlor_session=…` (`parlor_guest=…` for a guest), as the browser sends it.
    pub cookie: String,
}

pub use testkit::client::set_cookie;

impl TestApp {
    /// Signs up `name` (email `<name>@example.com`) and keeps their session cookie.
    pub async fn person(&self, name: &str) -> Person {
        let email = format!("{}@example.com", name.to_lowercase());
        let (id, cookie) =
            testkit::client::sign_up(&self.client, &self.url(""), &email, name, PASSWORD).await;
        Person {
            id,
            name: name.to_string(),
            cookie,
        }
    }

    /// A new guest, as the strangers or codes page makes one.
    pub async fn guest(&self) -> Person {
        let response = self
            .client
            .post(self.url("/api/guest/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "a guest starts");
        let cookie = set_cookie(&response, "parlor_guest").expect("a guest cookie");
        Person {
            id: 0,
            name: "Guest".into(),
            cookie,
        }
    }

    /// Two friends, Ann and Bob, and their conversation.
    pub async fn pair(&self) -> (Person, Person, i64) {
        let ann = self.person("Ann").await;
        let bob = self.person("Bob").await;
        let conversation = self.befriend(&ann, &bob).await;
        (ann, bob, conversation)
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

    /// The newest page of a conversation's history, as `who` reads it.
    pub async fn history(&self, who: &Person, conversation: i64) -> Value {
        self.ok_as(
            who,
            "/api/messages/history",
            &[("conversation_id", &conversation.to_string())],
        )
        .await
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
            ServerMsg::Welcome { user_id, .. } => {
                assert_eq!(user_id, (who.id != 0).then_some(who.id))
            }
            other => panic!("expected a welcome, got {other:?}"),
        }
        socket
    }

    /// [`Self::socket`] as if from `client` behind a proxy (tests that trust loopback as one).
    pub async fn socket_from(&self, who: &Person, client: &str) -> Socket {
        let ws =
            testkit::client::connect_from(&self.addr.to_string(), Some(&who.cookie), Some(client))
                .await
                .expect("socket opens");
        let mut socket = Socket { ws };
        assert!(matches!(socket.next().await, ServerMsg::Welcome { .. }));
        socket
    }

    pub async fn try_socket(&self, cookie: Option<&str>) -> Result<Socket, tungstenite::Error> {
        let ws = testkit::client::connect(&self.addr.to_string(), cookie).await?;
        Ok(Socket { ws })
    }
}

pub struct Socket {
    pub ws: Ws,
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

/// Reading one kind of message, and the call choreography.
impl Socket {
    pub async fn message(&mut self) -> MessageView {
        self.next_where(|m| match m {
            ServerMsg::Message { message } => Some(message),
            _ => None,
        })
        .await
    }

    /// The next error: code, text, and the refused send's client id.
    pub async fn error(&mut self) -> (ErrorCode, String, Option<String>) {
        self.next_where(|m| match m {
            ServerMsg::Error {
                code,
                message,
                client_id,
            } => Some((code, message, client_id)),
            _ => None,
        })
        .await
    }

    pub async fn error_code(&mut self) -> ErrorCode {
        self.error().await.0
    }

    /// Rings `to`; returns the request id the answer will carry.
    pub async fn start_call(&mut self, to: i64, video: bool) -> u32 {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let request_id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.send(&ClientMsg::CallStart {
            request_id,
            to,
            video,
        })
        .await;
        request_id
    }

    /// The call this socket started rings: its id (and the request it answers).
    pub async fn ringing(&mut self) -> CallId {
        self.next_where(|m| match m {
            ServerMsg::CallRinging { call_id, .. } => Some(call_id),
            _ => None,
        })
        .await
    }

    /// A refused `call_start`: the request it answers and why.
    pub async fn call_refused(&mut self) -> (u32, CallEndReason) {
        self.next_where(|m| match m {
            ServerMsg::CallRefused { request_id, reason } => Some((request_id, reason)),
            _ => None,
        })
        .await
    }

    /// Someone calls: the call id and the caller's name.
    pub async fn incoming(&mut self) -> (CallId, String) {
        self.next_where(|m| match m {
            ServerMsg::CallIncoming { call_id, from, .. } => Some((call_id, from.name().into())),
            _ => None,
        })
        .await
    }

    /// The call was answered: its id and whether this side makes the offer.
    pub async fn accepted(&mut self) -> (CallId, bool) {
        self.next_where(|m| match m {
            ServerMsg::CallAccepted {
                call_id, you_offer, ..
            } => Some((call_id, you_offer)),
            _ => None,
        })
        .await
    }

    pub async fn call_ended(&mut self) -> (CallId, CallEndReason) {
        self.next_where(|m| match m {
            ServerMsg::CallEnded { call_id, reason } => Some((call_id, reason)),
            _ => None,
        })
        .await
    }

    pub async fn call_signal(&mut self) -> String {
        self.next_where(|m| match m {
            ServerMsg::CallSignal { data, .. } => Some(data),
            _ => None,
        })
        .await
    }

    /// The record a call left in the conversation.
    pub async fn call_record(&mut self) -> MessageView {
        self.next_where(|m| match m {
            ServerMsg::Message { message } if message.call.is_some() => Some(message),
            _ => None,
        })
        .await
    }
}

/// `caller` rings `callee` (user `to`), who answers on `callee`: the answered call's id.
pub async fn ring_and_answer(caller: &mut Socket, callee: &mut Socket, to: i64) -> CallId {
    caller.start_call(to, true).await;
    let call_id = caller.ringing().await;
    assert_eq!(callee.incoming().await.0, call_id);
    callee.send(&ClientMsg::CallAccept { call_id }).await;
    assert_eq!(
        caller.accepted().await,
        (call_id, true),
        "the caller offers"
    );
    assert_eq!(callee.accepted().await, (call_id, false));
    call_id
}
