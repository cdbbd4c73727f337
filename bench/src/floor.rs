//! The floor: the least a WebSocket server can do for the same load, measured in the same
//! run as Parlor. A minimal tokio-tungstenite server (what `../shared/notes/performance.md`
//! measured as the floor): accept, upgrade with the same small buffers Parlor uses, send a
//! welcome, answer each `ping` with a `pong`. No authentication, no storage, no hub.

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Message};

/// Serves on `addr` until killed.
pub async fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("the floor binds");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(1024)
                .write_buffer_size(0)
                .max_write_buffer_size(256 * 1024)
                .max_message_size(Some(32 * 1024))
                .max_frame_size(Some(32 * 1024));
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
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
