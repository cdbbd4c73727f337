//! The floor: the least a WebSocket server can do for the same load, measured in the same
//! run as Parlor. A minimal tokio-tungstenite server (what `../shared/notes/performance.md`
//! measured as the floor): accept, upgrade with the same small buffers Parlor uses, send a
//! welcome, answer each `ping` with a `pong`. No authentication, no storage, no hub. On
//! `/pair/<room>/<A|B>` it is instead the least a rendezvous relay can do: forward every text
//! frame to the room's other side (no codes, no mailbox, no acknowledgements).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::{
    handshake::server::{Request, Response},
    protocol::WebSocketConfig,
    Message, Utf8Bytes,
};

type Sides = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Utf8Bytes>>>>;

/// Serves on `addr` until killed.
pub async fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("the floor binds");
    let sides: Sides = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sides = sides.clone();
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
