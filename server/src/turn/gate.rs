//! What stands in front of each TURN listener: requests without credentials (or with a
//! nonce that is not current) are answered here ([`super::nonces`]), and who sends each
//! Allocate request is noted for the quota ([`super::quota`]).

use std::{net::SocketAddr, sync::Arc};

use async_trait::async_trait;
use webrtc_util::Conn;

use super::{
    nonces::{Nonces, Verdict},
    quota::{asking, Current},
};

/// A listener's socket behind the nonce gate, noting Allocate requests.
pub struct Gate {
    inner: Arc<dyn Conn + Send + Sync>,
    current: Current,
    nonces: Arc<Nonces>,
}

impl Gate {
    pub fn new(inner: Arc<dyn Conn + Send + Sync>, current: Current, nonces: Arc<Nonces>) -> Self {
        Self {
            inner,
            current,
            nonces,
        }
    }
}

#[async_trait]
impl Conn for Gate {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            match self.nonces.check(&buf[..n]) {
                Verdict::Pass => {
                    if let Some(asking) = asking(&buf[..n], from) {
                        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(asking);
                    }
                    return Ok((n, from));
                }
                Verdict::Answer(answer) => {
                    // A client that cannot be reached is the TURN server's concern no more
                    // than ours.
                    let _ = self.inner.send_to(&answer, from).await;
                }
                Verdict::Drop => {}
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.nonces.observe(buf);
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.nonces.observe(buf);
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
