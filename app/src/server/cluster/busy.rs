//! Who is in a call, over all instances: each instance records its own in `parlor:busy` (for
//! instances that start later; `<call>/<holder>`) and publishes every change at once; the
//! others keep what they hear, so the call registry can refuse someone in a call another
//! instance holds, and operations on a call go to the instance holding it now (which may
//! have taken it over from the one that started it).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{held::Change, instance_name, Cluster, Envelope, ALL_CHANNEL, BUSY_KEY, PUBLISH_BATCH};
use crate::{
    server::{
        auth::PrincipalId,
        calls::{owner_of, shared::SharedCall},
        hub::InstanceId,
    },
    wire::CallId,
};

impl crate::server::calls::CallsElsewhere for Cluster {
    fn changed(&self, who: PrincipalId, call: Option<CallId>) {
        let _ = self.busy_here.send((who, call));
    }

    fn busy_elsewhere(&self, who: PrincipalId) -> bool {
        let Some(&(_, holder)) = self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&who)
        else {
            return false;
        };
        holder != self.origin()
            && self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&holder)
    }

    fn kept(&self, call: SharedCall) {
        let _ = self.held_here.send(Change::Kept(Box::new(call)));
    }

    fn dropped(&self, id: CallId) {
        let _ = self.held_here.send(Change::Dropped(id));
    }
}

impl Cluster {
    /// The instance to send `who`'s operation on call `id` to: the one that said `who` is in
    /// it, or else the one that started it.
    pub fn holder_of(&self, who: PrincipalId, id: CallId) -> InstanceId {
        match self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&who)
        {
            Some(&(call, holder)) if call == id => holder,
            _ => owner_of(id),
        }
    }
}

/// What `parlor:busy` holds for someone: the call, and the instance holding it.
fn busy_value(call: CallId, holder: InstanceId) -> String {
    format!("{call}/{}", instance_name(holder))
}

/// Reads a [`busy_value`].
pub(super) fn parse_busy(value: &str) -> Option<(CallId, InstanceId)> {
    let (call, holder) = value.split_once('/')?;
    Some((
        call.parse().ok()?,
        InstanceId(u64::from_str_radix(holder, 16).ok()?),
    ))
}

/// Records who is in a call here (for instances that start later) and tells the others at
/// once, in the order it changed.
pub(super) async fn busy_writer(
    cluster: Arc<Cluster>,
    mut changes: mpsc::UnboundedReceiver<(PrincipalId, Option<CallId>)>,
) {
    let mut redis = cluster.redis.clone();
    let mut batch = Vec::new();
    while changes.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (who, call) in batch.drain(..) {
            match call {
                Some(call) => pipe
                    .hset(BUSY_KEY, who.key(), busy_value(call, cluster.origin()))
                    .ignore(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_value_names_its_call_and_holder() {
        let (call, holder) = (CallId(u128::MAX - 1), InstanceId(0xab));
        assert_eq!(parse_busy(&busy_value(call, holder)), Some((call, holder)));
        for bad in ["", "/", "zz/ab", &format!("{call}/zz"), &call.to_string()] {
            assert_eq!(parse_busy(bad), None, "{bad}");
        }
    }
}
