//! Work one instance sends another: what a socket asked of a call the other holds, its
//! strangers business for the instance that runs strangers, moderation decisions for it, and
//! ending the calls between two people everywhere. Carried out by
//! [`crate::server::calls::apply_forwarded`] where it arrives.

use super::{instance_channel, Cluster, Envelope, RemoteWork, StrangersOrder, ALL_CHANNEL};
use crate::server::{
    auth::PrincipalId,
    cluster::CallOp,
    hub::{InstanceId, SocketRef},
};

/// Work another instance sent here: an operation on a call this instance holds, or ending
/// the calls between two people. Carried out by [`crate::server::calls::apply_forwarded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    Call {
        who: PrincipalId,
        socket: SocketRef,
        call: crate::wire::CallId,
        op: CallOp,
    },
    EndBetween {
        a: i64,
        b: i64,
        reason: crate::protocol::CallEndReason,
    },
    /// A socket elsewhere's strangers business (this instance runs strangers).
    Remote { socket: SocketRef, work: RemoteWork },
    /// A moderation decision made through another instance (this one runs strangers).
    Order(StrangersOrder),
    /// What a room socket proxied on another instance said (this instance is the room's home).
    Room {
        socket: SocketRef,
        room: crate::rendezvous::AppId,
        side: crate::rendezvous::Side,
        op: crate::server::rendezvous::RoomOp,
    },
    /// Another instance's room with this TURN tag is gone.
    RoomGone(u64),
    /// The code of a room here was redeemed through another instance.
    CodeRedeemed(crate::rendezvous::AppId),
    /// An instance stopped (its heartbeat ran out, or it left).
    InstanceGone(InstanceId),
    /// Redis forgot this instance (restarted empty): what it holds is to be registered again.
    Resync,
    /// The instance that ran strangers stopped: this instance's sockets that looked or were
    /// matched there are to be told.
    StrangersLost,
    /// Another instance took over this call held here (this one was taken for gone).
    CallLost(crate::wire::CallId),
}

impl Cluster {
    /// A socket here has (had) strangers business with the instance that runs them.
    pub fn note_strangers_socket(&self, socket: SocketRef, who: PrincipalId) {
        self.strangers_sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket, who);
    }

    /// That socket closed.
    pub fn forget_strangers_socket(&self, socket: SocketRef) {
        self.strangers_sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&socket);
    }

    /// The sockets here that had strangers business with an instance that stopped: all of
    /// them (they start afresh with the next one).
    pub fn take_strangers_sockets(&self) -> Vec<(SocketRef, PrincipalId)> {
        self.strangers_sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect()
    }

    /// The instance that runs strangers (all of their queue and matches).
    pub fn strangers_leader(&self) -> InstanceId {
        InstanceId(
            self.strangers_leader
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Whether a socket on another instance can still be reached: its instance is alive
    /// (a socket closing there is forwarded as it happens).
    pub fn reachable_elsewhere(&self, socket: SocketRef) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&socket.instance)
    }

    /// Sends a socket's strangers business to the instance that runs strangers. `false` when
    /// no instance took it.
    pub async fn forward_remote(&self, socket: SocketRef, work: RemoteWork) -> bool {
        let envelope = Envelope::Remote {
            origin: self.origin(),
            socket,
            work,
        };
        let to = instance_channel(self.strangers_leader());
        self.publish_now(to, envelope, "strangers business").await
    }

    /// Sends a moderation decision to the instance that runs strangers.
    pub async fn forward_order(&self, order: StrangersOrder) -> bool {
        let envelope = Envelope::Order {
            origin: self.origin(),
            order,
        };
        let to = instance_channel(self.strangers_leader());
        self.publish_now(to, envelope, "a moderation decision")
            .await
    }

    /// Sends `op` on `call` (asked by `who` on `socket`) to the instance that holds it.
    /// `false` when no instance took it: that instance is gone (see
    /// [`crate::server::calls::handover`]).
    pub async fn forward_call(
        &self,
        who: PrincipalId,
        socket: SocketRef,
        call: crate::wire::CallId,
        op: CallOp,
    ) -> bool {
        self.forward_call_to(self.holder_of(who, call), who, socket, call, op)
            .await
    }

    /// [`Cluster::forward_call`] to instance `holder`.
    pub async fn forward_call_to(
        &self,
        holder: InstanceId,
        who: PrincipalId,
        socket: SocketRef,
        call: crate::wire::CallId,
        op: CallOp,
    ) -> bool {
        let envelope = Envelope::Call {
            origin: self.origin(),
            who,
            socket,
            call,
            op,
        };
        self.publish_now(instance_channel(holder), envelope, "a call operation")
            .await
    }

    /// Asks every other instance to end any call between users `a` and `b`.
    pub fn end_between_elsewhere(&self, a: i64, b: i64, reason: crate::protocol::CallEndReason) {
        self.send(
            ALL_CHANNEL.to_string(),
            Envelope::EndBetween {
                origin: self.origin(),
                a,
                b,
                reason,
            },
        );
    }

    /// Publishes `envelope` on `channel` now; whether any instance took it.
    async fn publish_now(&self, channel: String, envelope: Envelope, what: &str) -> bool {
        let mut redis = self.redis.clone();
        match redis::cmd("PUBLISH")
            .arg(channel)
            .arg(envelope.encode())
            .query_async::<i64>(&mut redis)
            .await
        {
            Ok(receivers) => receivers > 0,
            Err(error) => {
                tracing::warn!(%error, "forwarding {what} failed");
                false
            }
        }
    }
}
