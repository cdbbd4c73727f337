//! Several instances as one (`PARLOR_REDIS_URL`): reaching sockets on any instance, and
//! presence over all of them, through Redis.
//!
//! - Delivery: every instance subscribes to one channel per principal it holds sockets of
//!   (`parlor:p:<key>`) and one of its own (`parlor:i:<instance>`, for one socket). Sending
//!   queues for this instance's sockets at once (as the [`Hub`] alone does) and publishes an
//!   [`Envelope`] for the others; the instance that sent it ignores its own. Publishing never
//!   waits: envelopes go through a bounded queue to one task that pipelines them in order.
//! - Presence: `parlor:where:<user>` holds the instances a user has sockets on;
//!   `parlor:alive` the instances' heartbeats (valid for [`ALIVE_FOR`], sent five times as
//!   often).
//!   A user is online while one of their instances is alive. Coming online and going offline
//!   are decided by Lua scripts, atomic over all instances. Instances sweep the heartbeats:
//!   the users of an instance that stopped without saying so go offline everywhere else.
//! - Calls: operations on a call go to the instance holding it (`busy`); friends calls
//!   are kept in Redis, and taken over by another instance when theirs stops (`held`).
//! - If Redis forgets everything (restarted without persistence), the next heartbeat notices
//!   this instance is unknown and registers its people (and calls) again.
//!
//! Stored data never goes through here: PostgreSQL stays the source of truth, and a lost or
//! late envelope loses no message (browsers catch up from the database).

mod busy;
pub mod envelope;
mod forward;
mod held;
mod limits;
mod presence;
mod rooms;
mod scripts;
mod sockets;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    PushInfo, PushKind, Value,
};
use tokio::sync::mpsc;

pub use envelope::{CallOp, Envelope, RemoteWork, StrangerWork, StrangersOrder};
pub use forward::Forwarded;
pub use held::{Found, Taken};
pub use limits::SharedLimiter;
pub use rooms::{Claim, RoomHome, RoomSockets};
pub use sockets::SharedSlot;

use super::{
    auth::PrincipalId,
    hub::{encode, Delivery, Frame, Hub, InstanceId, SocketRef},
};
use crate::protocol::ServerMsg;

/// How long a heartbeat counts by default: an instance silent this long is taken for gone.
/// Instances say they are alive five times as often.
pub const ALIVE_FOR: Duration = Duration::from_secs(10);
/// Envelopes waiting for the publisher; past it they are dropped (and counted in the log):
/// browsers catch up on reconnecting.
const PUBLISH_QUEUE: usize = 65_536;
/// The most envelopes sent in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// A user came online (`true`) or went offline (`false`) over all instances: their friends
/// are to be told.
pub type PresenceChange = (i64, bool);

/// What joining the cluster gives: the cluster, and the work it hands over.
pub struct Joined {
    pub cluster: Arc<Cluster>,
    /// Presence changes whose friends are to be told.
    pub presence: mpsc::UnboundedReceiver<PresenceChange>,
    /// Call work other instances sent here.
    pub forwarded: mpsc::UnboundedReceiver<Forwarded>,
}

/// Every instance's channel for what concerns all of them.
const ALL_CHANNEL: &str = "parlor:all";
/// Who is in a call, which, and the instance holding it.
const BUSY_KEY: &str = "parlor:busy";

fn principal_channel(who: PrincipalId) -> String {
    format!("parlor:p:{}", who.key())
}

fn instance_channel(instance: InstanceId) -> String {
    format!("parlor:i:{:x}", instance.0)
}

fn instance_name(instance: InstanceId) -> String {
    format!("{:x}", instance.0)
}

/// This instance's side of the cluster.
pub struct Cluster {
    hub: Arc<Hub>,
    redis: ConnectionManager,
    publish: mpsc::Sender<(String, Vec<u8>)>,
    /// Principals whose registration here may have changed, for the reconciler.
    changes: mpsc::UnboundedSender<PrincipalId>,
    /// Principals registered in Redis as having sockets here (their channel subscribed).
    registered: Mutex<HashSet<PrincipalId>>,
    /// How long a heartbeat counts.
    alive_for: Duration,
    /// The instance that runs strangers (their queue and matches), as of the last heartbeat.
    strangers_leader: std::sync::atomic::AtomicU64,
    /// The instances alive at the last heartbeat, and any heard from since.
    live: Arc<Mutex<HashSet<InstanceId>>>,
    /// Who is in a call other instances hold (as they said), and which instance holds it.
    busy: Arc<Mutex<HashMap<PrincipalId, (crate::wire::CallId, InstanceId)>>>,
    /// Who is in a call here now, for the task telling the others.
    busy_here: mpsc::UnboundedSender<(PrincipalId, Option<crate::wire::CallId>)>,
    /// How the friends calls here changed, for the task keeping them in Redis.
    held_here: mpsc::UnboundedSender<held::Change>,
    /// Room sockets held here for rooms other instances are home to.
    room_sockets: Arc<RoomSockets>,
    /// Places of closed sockets to give back in Redis (see [`sockets`]).
    sockets_given: mpsc::UnboundedSender<sockets::Change>,
    /// This instance's socket counts, as put in Redis (see [`sockets`]).
    sockets_counted: sockets::Counts,
    /// Sockets here whose strangers business went to another instance (to be told if it
    /// stops).
    strangers_sockets: Mutex<HashMap<SocketRef, PrincipalId>>,
    /// Work for this instance's worker (see [`Forwarded`]): what others sent, and instances
    /// found gone.
    forward: mpsc::UnboundedSender<Forwarded>,
    /// Call operations waiting for their call's holder (see
    /// [`crate::server::calls::handover`]).
    pub chases: crate::server::calls::handover::Chases,
    /// The background tasks, stopped by [`Cluster::halt`].
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instance", &self.hub.instance())
            .finish()
    }
}

impl Cluster {
    /// Connects to Redis at `url`, subscribes this instance's own channel and says it is
    /// alive. Returns the cluster and the presence changes its friends should hear about
    /// (someone's last instance stopped, or their first or last socket anywhere).
    pub async fn connect(
        url: &str,
        hub: Arc<Hub>,
        alive_for: Duration,
    ) -> Result<Joined, redis::RedisError> {
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let receiver = hub.clone();
        let live: Arc<Mutex<HashSet<InstanceId>>> = Default::default();
        let heard = live.clone();
        let busy: Arc<Mutex<HashMap<PrincipalId, (crate::wire::CallId, InstanceId)>>> =
            Default::default();
        let busy_heard = busy.clone();
        let (forward, forwarded) = mpsc::unbounded_channel();
        let room_sockets: Arc<RoomSockets> = Default::default();
        let (proxied, forwarder) = (room_sockets.clone(), forward.clone());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                receive(&receiver, &heard, &busy_heard, &proxied, &forwarder, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut redis = client.get_connection_manager_with_config(config).await?;
        redis.subscribe(instance_channel(hub.instance())).await?;
        redis.subscribe(ALL_CHANNEL).await?;
        // Who is in a call elsewhere, as of now (changes come on the channel above).
        let known: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(BUSY_KEY)
            .query_async(&mut redis)
            .await?;
        busy.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(known.iter().filter_map(|(who, call)| {
                Some((PrincipalId::from_key(who)?, busy::parse_busy(call)?))
            }));
        let (busy_here, busy_changes) = mpsc::unbounded_channel();
        let (held_here, held_changes) = mpsc::unbounded_channel();
        scripts::heartbeat(&mut redis, hub.instance(), alive_for).await?;

        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let (sockets_given, given) = mpsc::unbounded_channel();
        let (changes, changed) = mpsc::unbounded_channel();
        let (events, presence) = mpsc::unbounded_channel();
        let cluster = Arc::new(Self {
            hub,
            redis,
            publish,
            changes,
            registered: Default::default(),
            alive_for,
            strangers_leader: Default::default(),
            live,
            busy,
            busy_here,
            held_here,
            room_sockets,
            sockets_given,
            sockets_counted: Default::default(),
            strangers_sockets: Default::default(),
            forward,
            chases: Default::default(),
            tasks: Default::default(),
        });
        cluster.lead().await?;
        let tasks = [
            tokio::spawn(publisher(cluster.redis.clone(), queue)).abort_handle(),
            tokio::spawn(busy::busy_writer(cluster.clone(), busy_changes)).abort_handle(),
            tokio::spawn(held::writer(
                cluster.redis.clone(),
                cluster.origin(),
                cluster.forward.clone(),
                held_changes,
            ))
            .abort_handle(),
            tokio::spawn(sockets::giver(
                cluster.redis.clone(),
                sockets::own_key(&cluster),
                cluster.sockets_counted.clone(),
                given,
            ))
            .abort_handle(),
            tokio::spawn(presence::reconcile(
                cluster.clone(),
                changed,
                events.clone(),
            ))
            .abort_handle(),
            tokio::spawn(presence::heartbeats(Arc::downgrade(&cluster), events)).abort_handle(),
        ];
        cluster
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(Joined {
            cluster,
            presence,
            forwarded,
        })
    }

    /// Leaves the cluster (the server is stopping, its sockets closed): stops the background
    /// work and forgets this instance in Redis at once. Returns the users who were only here,
    /// for their friends to hear they left.
    pub async fn depart(&self) -> Vec<i64> {
        let mut redis = self.redis.clone();
        // No more call work is taken in: it waits for another instance to take the calls
        // over, with the last word this one had on them.
        if let Err(error) = redis
            .unsubscribe(instance_channel(self.hub.instance()))
            .await
        {
            tracing::warn!(%error, "unsubscribing from Redis failed");
        }
        self.flush_calls(Duration::from_secs(2)).await;
        // What is queued to publish still goes; registering and heart-beating stop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.halt();
        let offline = match scripts::sweep(&mut redis, Some(self.hub.instance())).await {
            Ok(offline) => offline,
            Err(error) => {
                tracing::warn!(%error, "leaving the cluster failed: the others will time this instance out");
                Vec::new()
            }
        };
        // Nothing more is taken in: what is sent here now finds nobody (and says so).
        let mut channels = vec![instance_channel(self.hub.instance()), ALL_CHANNEL.into()];
        channels.extend(
            self.registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .map(principal_channel),
        );
        if let Err(error) = redis.unsubscribe(&channels).await {
            tracing::warn!(%error, "unsubscribing from Redis failed");
        }
        offline
    }

    /// Stops publishing, registering and heart-beating, as a crashed instance would (the
    /// others take it for gone once its heartbeat runs out). For tests.
    pub fn halt(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// A round trip to Redis, for readiness checks.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await?;
        Ok(())
    }

    fn send(&self, channel: String, envelope: Envelope) {
        if let Err(error) = self.publish.try_send((channel, envelope.encode())) {
            tracing::warn!(%error, "the cluster's publish queue is full: dropping an envelope");
        }
    }

    fn origin(&self) -> InstanceId {
        self.hub.instance()
    }

    /// How long a heartbeat counts: an instance silent this long is taken for gone.
    pub fn alive_for(&self) -> Duration {
        self.alive_for
    }
}

impl Delivery for Cluster {
    fn send_frame(&self, to: PrincipalId, frame: &Frame) -> usize {
        let sent = self.hub.send_frame(to, frame);
        self.send(
            principal_channel(to),
            Envelope::All {
                origin: self.origin(),
                to,
                kind: frame.kind,
                text: frame.text.to_string(),
            },
        );
        sent
    }

    fn send_to_socket(&self, to: PrincipalId, socket: SocketRef, message: &ServerMsg) -> bool {
        if socket.instance == self.origin() {
            return self.hub.send_to_socket(to, socket, message);
        }
        let frame = encode(message);
        self.send(
            instance_channel(socket.instance),
            Envelope::Socket {
                origin: self.origin(),
                to,
                conn: socket.conn,
                kind: frame.kind,
                text: frame.text.to_string(),
            },
        );
        // Whether it is still there is for its instance to know.
        true
    }

    fn send_to_others(&self, to: PrincipalId, except: SocketRef, message: &ServerMsg) {
        let frame = encode(message);
        self.hub.send_frame_except(
            to,
            &frame,
            (except.instance == self.origin()).then_some(except.conn),
        );
        self.send(
            principal_channel(to),
            Envelope::Others {
                origin: self.origin(),
                to,
                except,
                kind: frame.kind,
                text: frame.text.to_string(),
            },
        );
    }

    fn end_sessions(&self, user: i64, token_version: Option<i64>) {
        self.hub.end_sessions(user, token_version);
        self.send(
            principal_channel(PrincipalId::User(user)),
            Envelope::EndSessions {
                origin: self.origin(),
                user,
                token_version,
            },
        );
    }

    fn end_session(&self, user: i64, session_id: &str) {
        Delivery::end_session(self.hub.as_ref(), user, session_id);
        self.send(
            principal_channel(PrincipalId::User(user)),
            Envelope::EndSession {
                origin: self.origin(),
                user,
                session_id: session_id.to_string(),
            },
        );
    }
}

/// A message Redis pushed: an envelope for this instance's sockets, or call work.
fn receive(
    hub: &Hub,
    live: &Mutex<HashSet<InstanceId>>,
    busy: &Mutex<HashMap<PrincipalId, (crate::wire::CallId, InstanceId)>>,
    room_sockets: &RoomSockets,
    forward: &mpsc::UnboundedSender<Forwarded>,
    push: PushInfo,
) {
    if push.kind != PushKind::Message {
        if push.kind == PushKind::Disconnection {
            tracing::warn!("lost the connection to Redis: reconnecting");
            // Their frames may have been lost: their clients reconnect and say hello.
            room_sockets.end_all("redis_lost");
        }
        return;
    }
    let Some(Value::BulkString(payload)) = push.data.get(1) else {
        return;
    };
    let envelope = match Envelope::decode(payload) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::warn!(%error, "dropping a cluster envelope");
            return;
        }
    };
    if envelope.origin() == hub.instance() {
        // Delivered here when it was sent.
        return;
    }
    // An instance that sends is alive (before this one's next heartbeat says so).
    live.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(envelope.origin());
    let frame = |kind, text: String| Frame {
        text: text.into(),
        kind,
    };
    match envelope {
        Envelope::All { to, kind, text, .. } => {
            hub.send_frame(to, &frame(kind, text));
        }
        Envelope::Others {
            to,
            except,
            kind,
            text,
            ..
        } => {
            let except = (except.instance == hub.instance()).then_some(except.conn);
            hub.send_frame_except(to, &frame(kind, text), except);
        }
        Envelope::Socket {
            to,
            conn,
            kind,
            text,
            ..
        } => {
            hub.send_frame_to_conn(to, conn, &frame(kind, text));
        }
        Envelope::EndSessions {
            user,
            token_version,
            ..
        } => hub.end_sessions(user, token_version),
        Envelope::EndSession {
            user, session_id, ..
        } => Delivery::end_session(hub, user, &session_id),
        Envelope::Call {
            who,
            socket,
            call,
            op,
            ..
        } => {
            let _ = forward.send(Forwarded::Call {
                who,
                socket,
                call,
                op,
            });
        }
        Envelope::EndBetween { a, b, reason, .. } => {
            let _ = forward.send(Forwarded::EndBetween { a, b, reason });
        }
        Envelope::Remote { socket, work, .. } => {
            let _ = forward.send(Forwarded::Remote { socket, work });
        }
        Envelope::Order { order, .. } => {
            let _ = forward.send(Forwarded::Order(order));
        }
        Envelope::Room {
            socket,
            room,
            side,
            op,
            ..
        } => {
            let _ = forward.send(Forwarded::Room {
                socket,
                room,
                side,
                op,
            });
        }
        envelope @ (Envelope::RoomFrame { .. } | Envelope::RoomClose { .. }) => {
            rooms::arrived(room_sockets, envelope);
        }
        Envelope::RoomGone { turn_tag, .. } => {
            let _ = forward.send(Forwarded::RoomGone(turn_tag));
        }
        Envelope::CodeRedeemed { room, .. } => {
            let _ = forward.send(Forwarded::CodeRedeemed(room));
        }
        Envelope::Busy { who, call, origin } => {
            let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
            match call {
                Some(call) => {
                    busy.insert(who, (call, origin));
                }
                // Only if it is still a call that instance holds (a later one may be
                // another instance's).
                None => {
                    if busy.get(&who).is_some_and(|&(_, holder)| holder == origin) {
                        busy.remove(&who);
                    }
                }
            }
        }
    }
}

/// Publishes envelopes in the order they were queued, as many per round trip as are waiting.
async fn publisher(mut redis: ConnectionManager, mut queue: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(%error, "publishing to Redis failed: those deliveries are lost");
        }
    }
}
