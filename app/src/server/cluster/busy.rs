//! Who is in a call, over all instances: each instance records its own in `parlor:busy` (for
//! instances that start later) and publishes every change at once; the others keep what they
//! hear, so the call registry can refuse someone in a call another instance holds.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Cluster, Envelope, ALL_CHANNEL, BUSY_KEY, PUBLISH_BATCH};
use crate::server::auth::PrincipalId;

impl crate::server::calls::BusyElsewhere for Cluster {
    fn changed(&self, who: PrincipalId, call: Option<crate::wire::CallId>) {
        let _ = self.busy_here.send((who, call));
    }

    fn busy_elsewhere(&self, who: PrincipalId) -> bool {
        let Some(&call) = self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&who)
        else {
            return false;
        };
        let owner = crate::server::calls::owner_of(call);
        owner != self.origin()
            && self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&owner)
    }
}

/// Records who is in a call here (for instances that start later) and tells the others at
/// once, in the order it changed.
pub(super) async fn busy_writer(
    cluster: Arc<Cluster>,
    mut changes: mpsc::UnboundedReceiver<(PrincipalId, Option<crate::wire::CallId>)>,
) {
    let mut redis = cluster.redis.clone();
    let mut batch = Vec::new();
    while changes.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (who, call) in batch.drain(..) {
            match call {
                Some(call) => pipe.hset(BUSY_KEY, who.key(), call.to_string()).ignore(),
                None => pipe.hdel(BUSY_KEY, who.key()).ignore(),
            };
            let envelope = Envelope::Busy {
                origin: cluster.origin(),
                who,
                call,
            };
            pipe.publish(ALL_CHANNEL, envelope.encode()).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(%error, "telling the other instances who is in a call failed");
        }
    }
}
