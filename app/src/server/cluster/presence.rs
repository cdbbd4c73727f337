//! Presence over all instances, kept in Redis: one reconciler per instance registers who
//! has sockets here (subscribing their channel, running the arrive/leave scripts) one person
//! at a time, and the heartbeat says this instance is alive, keeps or takes the running of
//! strangers, sweeps instances that stopped, and registers everyone again when Redis forgot.

use std::{future::Future, pin::Pin, sync::Arc};

use tokio::sync::mpsc;

use super::{instance_name, principal_channel, scripts, Cluster, Forwarded, PresenceChange};
use crate::server::{
    auth::PrincipalId,
    hub::{InstanceId, Presence},
};
use std::collections::HashSet;

impl Cluster {
    /// Keeps or takes the running of strangers, and learns which instances are alive.
    pub(super) async fn lead(&self) -> Result<(), redis::RedisError> {
        use std::sync::atomic::Ordering;
        let mut redis = self.redis.clone();
        let me = self.hub.instance();
        let (leader, live) = scripts::lead(&mut redis, me, self.alive_for).await?;
        let before = self.strangers_leader.swap(leader.0, Ordering::Relaxed);
        if before != leader.0 {
            tracing::info!(
                instance = %instance_name(leader),
                here = leader == me,
                "strangers are run by this instance"
            );
        }
        let live: HashSet<InstanceId> = live.into_iter().collect();
        let gone: Vec<InstanceId> = {
            let mut known = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let gone = known.difference(&live).copied().collect();
            *known = live;
            gone
        };
        if before != leader.0 && gone.contains(&InstanceId(before)) {
            // Whoever looked or was matched there is to start again on the next one.
            let _ = self.forward.send(Forwarded::StrangersLost);
        }
        for instance in gone.into_iter().filter(|&i| i != me) {
            // Rooms held there are gone, and sides held there for rooms here are free.
            self.room_sockets.home_gone(instance);
            let _ = self.forward.send(Forwarded::InstanceGone(instance));
        }
        Ok(())
    }
}

impl Presence for Cluster {
    fn online<'a>(
        &'a self,
        users: &'a [i64],
    ) -> Pin<Box<dyn Future<Output = Vec<bool>> + Send + 'a>> {
        Box::pin(async move {
            let mut redis = self.redis.clone();
            match scripts::online(&mut redis, users).await {
                Ok(online) => online,
                Err(error) => {
                    // Shown as offline rather than failing the page.
                    tracing::warn!(%error, "reading presence from Redis failed");
                    users
                        .iter()
                        .map(|&u| self.hub.holds(PrincipalId::User(u)))
                        .collect()
                }
            }
        })
    }

    fn local_change(&self, who: PrincipalId, _here: bool) -> bool {
        // The reconciler registers or unregisters them, and announces what changed.
        let _ = self.changes.send(who);
        false
    }
}

/// Keeps Redis in step with who has sockets here: subscribes their channel and records them
/// as present (or the reverse), one principal at a time, so a close and an open of the same
/// person cannot cross. Announces who came online or went offline everywhere.
pub(super) async fn reconcile(
    cluster: Arc<Cluster>,
    mut changed: mpsc::UnboundedReceiver<PrincipalId>,
    events: mpsc::UnboundedSender<PresenceChange>,
) {
    let registered = &cluster.registered;
    let mut redis = cluster.redis.clone();
    let instance = cluster.hub.instance();
    while let Some(who) = changed.recv().await {
        if who == RESYNC {
            // Redis lost this instance, or missed changes: whoever left meanwhile leaves
            // again, and everyone here registers again.
            let before: Vec<PrincipalId> = registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            for gone in before.into_iter().filter(|p| !cluster.hub.holds(*p)) {
                if let PrincipalId::User(user) = gone {
                    if let Ok(true) = scripts::leave(&mut redis, instance, user).await {
                        let _ = events.send((user, false));
                    }
                }
                let _ = redis.unsubscribe(principal_channel(gone)).await;
            }
            for who in cluster.hub.principals() {
                let _ = cluster.changes.send(who);
            }
            // And its code rooms.
            let _ = cluster.forward.send(Forwarded::Resync);
            continue;
        }
        let wanted = cluster.hub.holds(who);
        let is = registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&who);
        if wanted == is {
            continue;
        }
        let result = async {
            let channel = principal_channel(who);
            let changed = if wanted {
                redis.subscribe(&channel).await?;
                match who {
                    PrincipalId::User(user) => scripts::arrive(&mut redis, instance, user).await?,
                    PrincipalId::Guest(_) => false,
                }
            } else {
                let changed = match who {
                    PrincipalId::User(user) => scripts::leave(&mut redis, instance, user).await?,
                    PrincipalId::Guest(_) => false,
                };
                redis.unsubscribe(&channel).await?;
                changed
            };
            Ok::<_, redis::RedisError>(changed)
        }
        .await;
        match result {
            Ok(changed) => {
                let mut registered = registered.lock().unwrap_or_else(|e| e.into_inner());
                if wanted {
                    registered.insert(who);
                } else {
                    registered.remove(&who);
                }
                if let (true, PrincipalId::User(user)) = (changed, who) {
                    let _ = events.send((user, wanted));
                }
            }
            // Tried again at the next heartbeat that finds Redis back.
            Err(error) => tracing::warn!(%error, ?who, "updating presence in Redis failed"),
        }
    }
}

/// Not a principal anyone has: asks the reconciler to register everyone again.
const RESYNC: PrincipalId = PrincipalId::Guest(crate::server::auth::GuestId(0));

/// Says this instance is alive five times per `alive_for`, and sweeps instances that stopped.
pub(super) async fn heartbeats(
    cluster: std::sync::Weak<Cluster>,
    events: mpsc::UnboundedSender<PresenceChange>,
) {
    let Some(alive_for) = cluster.upgrade().map(|c| c.alive_for) else {
        return;
    };
    let mut tick = tokio::time::interval(alive_for / 5);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let mut redis = cluster.redis.clone();
        let instance = cluster.hub.instance();
        match scripts::heartbeat(&mut redis, instance, alive_for).await {
            Ok(known) => {
                if failing {
                    // What failed meanwhile (a registration, a subscription) is done again.
                    tracing::info!("Redis answers again: registering this instance's people again");
                    failing = false;
                    let _ = cluster.changes.send(RESYNC);
                } else if !known {
                    tracing::warn!(
                        instance = %instance_name(instance),
                        "Redis did not know this instance (restarted, or this instance stalled): registering its people again"
                    );
                    let _ = cluster.changes.send(RESYNC);
                }
            }
            Err(error) => {
                if !failing {
                    tracing::error!(%error, "Redis is unreachable: other instances cannot reach this one's sockets until it is back");
                    failing = true;
                }
                continue;
            }
        }
        if let Err(error) = cluster.lead().await {
            tracing::warn!(%error, "reading who runs strangers failed");
        }
        match scripts::sweep(&mut redis, None).await {
            Ok(offline) => {
                for user in offline {
                    let _ = events.send((user, false));
                }
            }
            Err(error) => tracing::warn!(%error, "sweeping stopped instances failed"),
        }
    }
}
