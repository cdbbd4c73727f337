//! TURN over TCP (RFC 8656 §5, the client-to-server leg only; relays stay UDP): accepts TCP
//! connections, splits each byte stream into STUN messages and ChannelData frames (padded to
//! four bytes on TCP), and hands them to the TURN server as if they were datagrams from the
//! connection's address, through one [`Conn`]. Answers go back on the connection they belong
//! to. Bounded everywhere: connections in all and per address, frame size, queues, and idle
//! time, so a peer that only opens sockets or trickles bytes costs little.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use app::server::auth::rate_limit::address_key;
use async_trait::async_trait;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use webrtc_util::Conn;

/// The largest frame accepted: a STUN message or ChannelData with a full datagram inside.
pub const MAX_FRAME: usize = 1500;
/// Connections open at once, in all and from one address (an IPv6 /64 counts as one).
const MAX_CONNECTIONS: usize = 4096;
const MAX_PER_ADDRESS: usize = 32;
/// A connection that sends no whole frame for this long is closed: a TURN client refreshes
/// its allocation and permissions well within it.
const IDLE: Duration = Duration::from_secs(330);
/// The first frame must come sooner.
const FIRST_FRAME: Duration = Duration::from_secs(10);
/// Frames queued toward the TURN server, and toward one client.
const INBOX: usize = 1024;
const OUTBOX: usize = 256;

/// What a frame's first four bytes say about it.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// A frame of this many bytes follows (header included), then `pad` bytes to skip.
    Frame { len: usize, pad: usize },
    /// Not TURN, or too big: the connection is closed.
    Invalid,
}

/// Reads the header of a STUN message (first two bits 00) or ChannelData (channel numbers
/// 0x4000–0x4FFF; padded to a multiple of four on TCP).
pub fn header(first: [u8; 4]) -> Header {
    let body = usize::from(u16::from_be_bytes([first[2], first[3]]));
    let (len, pad) = match first[0] {
        0x00..=0x3f => (20 + body, 0),
        0x40..=0x4f => (4 + body, (4 - body % 4) % 4),
        _ => return Header::Invalid,
    };
    if len > MAX_FRAME {
        Header::Invalid
    } else {
        Header::Frame { len, pad }
    }
}

/// A frame as sent on TCP: ChannelData padded to four bytes.
pub fn framed(frame: &[u8]) -> Vec<u8> {
    let pad = match frame.first() {
        Some(0x40..=0x4f) => (4 - frame.len() % 4) % 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(frame.len() + pad);
    out.extend_from_slice(frame);
    out.resize(frame.len() + pad, 0);
    out
}

/// Reads one frame (without its padding) from `stream`, or `None` at its end or on garbage.
pub async fn read_frame<R: AsyncReadExt + Unpin>(stream: &mut R) -> Option<Vec<u8>> {
    let mut first = [0u8; 4];
    stream.read_exact(&mut first).await.ok()?;
    let Header::Frame { len, pad } = header(first) else {
        return None;
    };
    let mut frame = vec![0u8; len + pad];
    frame[..4].copy_from_slice(&first);
    stream.read_exact(&mut frame[4..]).await.ok()?;
    frame.truncate(len);
    // A STUN message carries the magic cookie (TLS, for one, would look like STUN without it).
    let stun = first[0] < 0x40;
    (!stun || frame[4..8] == super::message::MAGIC_COOKIE).then_some(frame)
}

type Peers = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// All TCP connections of the listener, seen by the TURN server as one datagram socket.
pub struct TcpTurn {
    local: SocketAddr,
    inbox: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    peers: Peers,
    accepting: JoinHandle<()>,
}

impl TcpTurn {
    /// Starts accepting on `listener`.
    pub fn new(listener: TcpListener) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (to_server, inbox) = mpsc::channel(INBOX);
        let peers = Peers::default();
        let accepting = tokio::spawn(accept(listener, to_server, peers.clone()));
        Ok(Self {
            local,
            inbox: tokio::sync::Mutex::new(inbox),
            peers,
            accepting,
        })
    }
}

async fn accept(
    listener: TcpListener,
    to_server: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    peers: Peers,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "TURN over TCP: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let outbox = {
            let mut peers = peers.lock().expect("peers lock");
            // One address, as the rate limits see it (an IPv6 /64 is one).
            let key = address_key(addr.ip());
            let same = peers.keys().filter(|a| address_key(a.ip()) == key).count();
            if peers.len() >= MAX_CONNECTIONS || same >= MAX_PER_ADDRESS {
                tracing::debug!(%addr, "TURN over TCP: too many connections, refused");
                continue;
            }
            let (to_client, outbox) = mpsc::channel(OUTBOX);
            peers.insert(addr, to_client);
            outbox
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(
            stream,
            addr,
            outbox,
            to_server.clone(),
            peers.clone(),
        ));
    }
}

/// One connection: frames in go to the server, frames out come from `outbox`.
async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    mut outbox: mpsc::Receiver<Vec<u8>>,
    to_server: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    peers: Peers,
) {
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut wait = FIRST_FRAME;
    while let Ok(Some(frame)) = tokio::time::timeout(wait, read_frame(&mut reader)).await {
        wait = IDLE;
        if to_server.send((frame, addr)).await.is_err() {
            break;
        }
    }
    // Gone from the map, its sender drops and the writer ends after what is queued.
    peers.lock().expect("peers lock").remove(&addr);
    let _ = writing.await;
}

impl Drop for TcpTurn {
    fn drop(&mut self) {
        self.accepting.abort();
        self.peers.lock().expect("peers lock").clear();
    }
}

#[async_trait]
impl Conn for TcpTurn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let Some((frame, addr)) = self.inbox.lock().await.recv().await else {
            return Err(webrtc_util::Error::ErrUseClosedNetworkConn);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, addr))
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not supported".into()))
    }

    /// Queues `buf` for the connection from `target`; dropped (as a datagram would be) when
    /// that connection is gone or its queue is full, so one slow client never stalls others.
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let client = self.peers.lock().expect("peers lock").get(&target).cloned();
        if let Some(client) = client {
            let _ = client.try_send(framed(buf));
        }
        Ok(buf.len())
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Nothing: the TURN crate closes the listening conn whenever one allocation ends (a
    /// no-op for UDP sockets too). The listener stops when the last holder drops it.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_say_how_long_a_frame_is() {
        // A STUN binding request with 8 bytes of attributes.
        assert_eq!(
            header([0x00, 0x01, 0, 8]),
            Header::Frame { len: 28, pad: 0 }
        );
        // ChannelData of 5 bytes: padded to 8 on TCP.
        assert_eq!(header([0x40, 0x00, 0, 5]), Header::Frame { len: 9, pad: 3 });
        assert_eq!(
            header([0x4f, 0xff, 0, 8]),
            Header::Frame { len: 12, pad: 0 }
        );
        // HTTP, a reserved channel range, and a frame over the limit.
        assert_eq!(header(*b"GET "), Header::Invalid);
        assert_eq!(header([0x50, 0x00, 0, 4]), Header::Invalid);
        assert_eq!(header([0x00, 0x03, 0x10, 0x00]), Header::Invalid);
    }

    #[test]
    fn channel_data_is_padded_on_the_way_out_and_stun_is_not() {
        assert_eq!(
            &framed(&[0x40, 0, 0, 1, 9])[..],
            &[0x40, 0, 0, 1, 9, 0, 0, 0]
        );
        let stun = [0u8; 20];
        assert_eq!(framed(&stun).len(), 20);
    }

    #[tokio::test]
    async fn frames_are_split_from_a_stream_whatever_the_reads_look_like() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&framed(&[0x40, 0x01, 0, 3, b'a', b'b', b'c']));
        let mut stun = vec![0x00, 0x01, 0, 4, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[7; 12]);
        stun.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend_from_slice(&stun);
        bytes.extend_from_slice(&stun);
        // A TLS record header looks like a STUN header, but has no magic cookie.
        bytes.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x08, 1, 0, 0, 4]);
        bytes.extend_from_slice(&[0; 32]);
        // One byte per read, as a slow or hostile peer might send.
        let mut reader = tokio_test_reader(&bytes);
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            [0x40, 0x01, 0, 3, b'a', b'b', b'c']
        );
        assert_eq!(read_frame(&mut reader).await.unwrap(), stun);
        assert_eq!(read_frame(&mut reader).await.unwrap(), stun);
        assert_eq!(
            read_frame(&mut reader).await,
            None,
            "TLS is not TURN: the end"
        );
    }

    /// A reader that returns one byte per read.
    fn tokio_test_reader(bytes: &[u8]) -> impl AsyncReadExt + Unpin {
        let (mut tx, rx) = tokio::io::duplex(1);
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            for b in bytes {
                if tx.write_all(&[b]).await.is_err() {
                    break;
                }
            }
        });
        rx
    }
}
