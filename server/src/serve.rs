//! The accept loop: every connection is served as HTTP/1.1 (upgrades included, for the
//! sockets), with a deadline on reading a request's head, and stops gracefully.
//!
//! `axum::serve` would do the same through hyper-util's auto builder, which first reads the
//! start of each connection to tell HTTP/2 from HTTP/1: an extra read and a rewinding wrapper
//! on every connection, for a protocol Parlor does not speak (its sockets are HTTP/1.1
//! upgrades). Serving HTTP/1.1 directly saves that on each of the tens of thousands of
//! sockets that connect after a restart.

use std::{future::Future, net::SocketAddr, pin::pin, time::Duration};

use axum::{extract::ConnectInfo, serve::Listener, Router};
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a client may take to send a request's head (slow clients holding connections
/// open without asking anything are closed).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a request head a connection reads before it gives up and answers 431
/// (hyper checks between reads, so one read more may come in: at most about twice this).
/// hyper's default, about 400 KB, would let each of thousands of connections hold that much
/// of anyone's headers. Browsers' heads, cookies included, are a few KB; common proxies stop
/// at 32 KiB too.
pub const MAX_BUFFER_BYTES: usize = 32 * 1024;

/// How many connections the kernel may hold for the accept loop. The standard library's
/// `bind` asks for 128: when thousands of browsers reconnect at once (after a restart, or a
/// network coming back), a full queue drops their SYNs and each waits a second or more to
/// try again. The kernel caps this at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and, as the standard library's, address
/// reuse: a restart does not wait for the previous process's connections to time out).
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets each
/// connection finish the request it is serving (idle ones close at once) and returns when
/// all have. Upgraded connections (sockets) are no longer the server's: their owners close
/// them. A connection that has not sent a whole request head `header_timeout` after it
/// opened (or after its last response) is closed; one whose head is over
/// [`MAX_BUFFER_BYTES`] is answered 431.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_BUFFER_BYTES);
    // Told once, when shutting down; each connection holds a receiver, so the sender also
    // counts the connections still open.
    let (stopping, stop) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, address) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(address));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection.with_upgrades());
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::trace!(%error, %address, "connection ended with an error");
            }
            drop(stop);
        });
    }
    drop(listener);
    drop(stop);
    let _ = stopping.send(());
    stopping.closed().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::get;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
        sync::{oneshot, Notify},
    };

    use super::*;

    /// A server on a free port whose `/slow` answers only when `release` is notified and
    /// whose `/peer` says the address the connection came from; stops when `stop` is sent.
    async fn start(
        header_timeout: Duration,
    ) -> (
        SocketAddr,
        Arc<Notify>,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let release = Arc::new(Notify::new());
        let waited = release.clone();
        let router = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    waited.notified().await;
                    "finished"
                }),
            )
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, header_timeout, async {
            let _ = stopped.await;
        }));
        (addr, release, stop, server)
    }

    #[tokio::test]
    async fn a_crowd_connecting_at_once_is_queued_not_dropped() {
        // Nobody accepts: every connection waits in the kernel's queue. With the standard
        // library's 128, the rest of the SYNs are dropped and their clients retry only after
        // a second.
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let crowd = (0..400)
            .map(|_| tokio::time::timeout(Duration::from_millis(700), TcpStream::connect(addr)));
        let connected = futures::future::join_all(crowd).await;
        let queued = connected.iter().filter(|c| matches!(c, Ok(Ok(_)))).count();
        assert_eq!(queued, 400);
        drop(listener);
    }

    async fn ask(stream: &mut TcpStream, path: &str) {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: parlor\r\n\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// Reads until the response's body (which ends with `end`) is in, or the peer closes.
    async fn read_until(stream: &mut TcpStream, end: &str) -> String {
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&response).ends_with(end) {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("the server answers or closes")
                .unwrap();
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(response).unwrap()
    }

    #[tokio::test]
    async fn handlers_learn_the_address_a_connection_comes_from() {
        let (addr, _, _stop, _server) = start(HEADER_READ_TIMEOUT).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let me = stream.local_addr().unwrap().to_string();
        ask(&mut stream, "/peer").await;
        let response = read_until(&mut stream, &me).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(&me), "{response}");
    }

    #[tokio::test]
    async fn stopping_answers_the_request_in_flight_closes_idle_connections_and_accepts_no_more() {
        let (addr, release, stop, server) = start(HEADER_READ_TIMEOUT).await;
        // One connection idle after a request, one waiting for its answer.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        ask(&mut idle, "/peer").await;
        let me = idle.local_addr().unwrap().to_string();
        assert!(read_until(&mut idle, &me).await.starts_with("HTTP/1.1 200"));
        let mut busy = TcpStream::connect(addr).await.unwrap();
        ask(&mut busy, "/slow").await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        stop.send(()).unwrap();
        // The idle connection is closed at once; the server waits for the busy one.
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0))), "the idle connection stays open");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !server.is_finished(),
            "stopped before the request in flight was answered"
        );
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting while stopping"
        );

        release.notify_one();
        let response = read_until(&mut busy, "finished").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops once the last request is answered")
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
        let (addr, _, _stop, _server) = start(Duration::from_millis(300)).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /peer HTTP/1.1\r\nHost: par")
            .await
            .unwrap();
        let opened = tokio::time::Instant::now();
        // hyper answers 408 and closes, or just closes: either way the connection ends.
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .unwrap();
        assert!(opened.elapsed() >= Duration::from_millis(250));
        let rest = String::from_utf8_lossy(&rest);
        assert!(!rest.contains("200 OK"), "{rest}");
        // A client that sends its head in time is served as usual.
        let mut prompt = TcpStream::connect(addr).await.unwrap();
        let me = prompt.local_addr().unwrap().to_string();
        ask(&mut prompt, "/peer").await;
        assert!(read_until(&mut prompt, &me)
            .await
            .starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_request_head_over_the_limit_is_refused_and_a_browser_sized_one_served() {
        let (addr, _, _stop, _server) = start(HEADER_READ_TIMEOUT).await;
        // A cookie of 100 KB: hyper's default buffer would take it.
        let mut flood = TcpStream::connect(addr).await.unwrap();
        let cookie = "a".repeat(100 * 1024);
        let head = format!("GET /peer HTTP/1.1\r\nHost: parlor\r\nCookie: x={cookie}\r\n\r\n");
        // The server may close before it has read everything: a failed write is fine.
        let _ = flood.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(read) = tokio::time::timeout(Duration::from_secs(5), flood.read(&mut buf)).await
            else {
                panic!(
                    "the server refuses and closes, not serves: {}",
                    String::from_utf8_lossy(&answer)
                );
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        // Closing with part of the head unread may reset the connection before the answer
        // is read: then there is none to check.
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
        // 16 KB of cookies, more than browsers send, is served as usual.
        let mut fine = TcpStream::connect(addr).await.unwrap();
        let me = fine.local_addr().unwrap().to_string();
        let cookie = "b".repeat(16 * 1024);
        fine.write_all(
            format!("GET /peer HTTP/1.1\r\nHost: parlor\r\nCookie: y={cookie}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let response = read_until(&mut fine, &me).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}
