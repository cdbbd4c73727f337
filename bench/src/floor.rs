//! The floor: the least a WebSocket server can do for the same load, measured in the same
//! run as Parlor. A minimal tokio-tungstenite server (what `../shared/notes/performance.md`
//! measured as the floor): accept, upgrade with the same small buffers Parlor uses, send a
//! welcome, answer each `ping` with a `pong`. No authentication, no storage, no hub. On
//! `/pair/<room>/<A|B>` it is instead the least a rendezvous relay can do: forward every text
//! frame to the room's other side (no codes, no mailbox, no acknowledgements). On
//! `/strangers` it is the least a random matcher can do ([`matcher`]): one FIFO, no interests
//! (a seeker giving some just waits), no blocks, no rate limits, no checks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    handshake::server::{Request, Response},
    protocol::WebSocketConfig,
    Message, Utf8Bytes,
};

type Sides = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Utf8Bytes>>>>;

/// The floor's strangers: who waits, who is with whom, and how to reach each socket.
#[derive(Default)]
struct Matcher {
    waiting: std::collections::VecDeque<u64>,
    /// Seekers who gave interests: they wait, never matched (the floor has no interests).
    held: std::collections::HashSet<u64>,
    partner: HashMap<u64, u64>,
    out: HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>,
    next_id: u64,
}

impl Matcher {
    fn tell(&self, who: u64, text: &str) {
        if let Some(out) = self.out.get(&who) {
            let _ = out.send(text.into());
        }
    }

    /// Pairs `who` with the first one waiting, or queues them.
    fn seek(&mut self, who: u64) {
        while let Some(other) = self.waiting.pop_front() {
            if other == who || !self.out.contains_key(&other) {
                continue;
            }
            self.partner.insert(who, other);
            self.partner.insert(other, who);
            let matched = r#"{"type":"stranger_matched","shared":[],"text_only":false}"#;
            self.tell(other, matched);
            self.tell(who, matched);
            return;
        }
        self.waiting.push_back(who);
        self.tell(who, r#"{"type":"stranger_looking","anyone":true}"#);
    }

    /// Ends `who`'s match: the other is told `reason`.
    fn end(&mut self, who: u64, reason: &str) -> Option<u64> {
        let other = self.partner.remove(&who)?;
        self.partner.remove(&other);
        self.tell(
            other,
            &format!(r#"{{"type":"stranger_ended","reason":"{reason}"}}"#),
        );
        Some(other)
    }

    fn handle(&mut self, who: u64, text: &str) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        match v["type"].as_str().unwrap_or("") {
            "ping" => self.tell(who, r#"{"type":"pong"}"#),
            "stranger_start" => {
                self.waiting.retain(|w| *w != who);
                self.end(who, "next");
                let holds = v["interests"].as_array().is_some_and(|i| !i.is_empty());
                if holds {
                    self.held.insert(who);
                    self.tell(who, r#"{"type":"stranger_looking","anyone":false}"#);
                } else {
                    self.seek(who);
                }
            }
            "stranger_next" | "stranger_block" => {
                if let Some(other) = self.end(who, "next") {
                    self.seek(who);
                    self.seek(other);
                }
            }
            "stranger_stop" => {
                self.held.remove(&who);
                self.waiting.retain(|w| *w != who);
                self.end(who, "left");
            }
            "stranger_chat" => {
                if let Some(&other) = self.partner.get(&who) {
                    let line = serde_json::json!({"type": "stranger_chat", "text": v["text"]});
                    self.tell(other, &line.to_string());
                }
            }
            _ => {}
        }
    }
}

/// One strangers socket of the floor.
async fn stranger<S>(ws: tokio_tungstenite::WebSocketStream<S>, matcher: Arc<Mutex<Matcher>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let me = {
        let mut m = matcher.lock().unwrap();
        m.next_id += 1;
        let me = m.next_id;
        m.out.insert(me, tx.clone());
        me
    };
    let _ = tx.send(r#"{"type":"welcome"}"#.into());
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        if let Message::Text(text) = frame {
            matcher.lock().unwrap().handle(me, &text);
        }
    }
    let mut m = matcher.lock().unwrap();
    m.out.remove(&me);
    m.held.remove(&me);
    m.waiting.retain(|w| *w != me);
    m.end(me, "left");
    drop(m);
    writer.abort();
}

/// Serves on `addr` until killed.
pub async fn serve(addr: &str) {
    // Parlor's accept queue (`server/src/serve.rs`), not the standard library's 128: with
    // 200 connects in flight a short queue drops SYNs, and the retries make parts uneven.
    let addr: std::net::SocketAddr = addr.parse().expect("the floor's address");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("address reuse");
    socket.bind(addr).expect("the floor binds");
    let listener = socket.listen(4096).expect("the floor listens");
    let sides: Sides = Arc::default();
    let matcher: Arc<Mutex<Matcher>> = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sides = sides.clone();
        let matcher = matcher.clone();
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(1024)
                .write_buffer_size(0)
                .max_write_buffer_size(256 * 1024)
                .max_message_size(Some(32 * 1024))
                .max_frame_size(Some(32 * 1024));
            let mut path = String::new();
            // The handshake callback's signature is tungstenite's.
            #[allow(clippy::result_large_err)]
            let read_path = |request: &Request, response: Response| {
                path = request.uri().path().to_string();
                Ok(response)
            };
            let Ok(mut ws) =
                tokio_tungstenite::accept_hdr_async_with_config(stream, read_path, Some(config))
                    .await
            else {
                return;
            };
            if let Some(pair) = path.strip_prefix("/pair/") {
                relay(ws, pair, &sides).await;
                return;
            }
            if path == "/strangers" {
                stranger(ws, matcher).await;
                return;
            }
            if ws
                .send(Message::text(r#"{"type":"welcome"}"#))
                .await
                .is_err()
            {
                return;
            }
            while let Some(Ok(frame)) = ws.next().await {
                if let Message::Text(text) = frame {
                    if text.as_str() == r#"{"type":"ping"}"#
                        && ws.send(Message::text(r#"{"type":"pong"}"#)).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
    }
}

/// Forwards text frames between `<room>/A` and `<room>/B`.
async fn relay<S>(ws: tokio_tungstenite::WebSocketStream<S>, me: &str, sides: &Sides)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let other = match me.strip_suffix("/A") {
        Some(room) => format!("{room}/B"),
        None => format!("{}/A", me.trim_end_matches("/B")),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    sides.lock().unwrap().insert(me.to_string(), tx);
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        if let Message::Text(text) = frame {
            if let Some(peer) = sides.lock().unwrap().get(&other) {
                let _ = peer.send(text);
            }
        }
    }
    sides.lock().unwrap().remove(me);
    writer.abort();
}
