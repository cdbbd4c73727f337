//! What the server does with each message a browser sends over `/ws`, and the presence
//! announcements when a user's first socket opens or last socket closes. A socket belongs to
//! a signed-in user or a guest; guests may use calls that do not need an account (strangers
//! and codes) and are refused everything else with `sign_in_required`. The socket
//! itself (frames, limits, heartbeats) is the server binary's `routes::ws`; this part only
//! sees typed messages, so it is independent of the transport.

use super::strangers::{Settings, StrangerError};
use super::{
    auth::{Principal, PrincipalId},
    calls::{carry_out, friends_call, CallError, Effects, FriendsRefusal, Party},
    cluster::{CallOp, RemoteWork, StrangerWork},
    db::writer::{Post, PostError, Posted},
    hub::{encode, Outbound, SocketRef},
    state::AppState,
};
use crate::{
    protocol::{check_body, CallEndReason, ClientMsg, ErrorCode, ServerMsg, MAX_CLIENT_ID_CHARS},
    strangers::{check_chat, normalize_interests, ReportReason, MAX_NOTE_CHARS},
    wire::{CallId, UserCard},
};

/// Messages sent per `Backlog` answer, at most.
pub const BACKLOG_BATCH: i64 = 200;

const NOT_YOURS: &str = "This conversation does not exist or is not yours.";
const TRY_AGAIN: &str = "The server could not do that right now. Please try again.";
/// The most one `Backlog` answer holds, in bytes of JSON: well inside a socket's write buffer
/// (256 KiB), whatever the messages contain. The browser asks again for the rest.
pub const BACKLOG_MAX_BYTES: usize = 128 * 1024;

/// How many of `messages` (at least one, at most `max`) fit in `budget` bytes of JSON.
fn fitting(messages: &[crate::wire::MessageView], max: usize, budget: usize) -> usize {
    // The envelope: `{"type":"backlog","messages":[...],"more":true}`.
    let mut size = 48;
    let mut keep = 0;
    for message in messages.iter().take(max) {
        size += serde_json::to_string(message).map_or(budget, |json| json.len() + 1);
        if keep > 0 && size > budget {
            break;
        }
        keep += 1;
    }
    keep
}

/// One socket's view of the app: who is on it and where its replies go.
pub struct Session {
    pub principal: Principal,
    /// This socket's address.
    pub socket: SocketRef,
    /// The client's address as limits count it (`auth::rate_limit::address_key`).
    pub address: String,
    pub state: AppState,
    pub reply: super::queue::Sender<Outbound>,
    /// Calls held by other instances that this socket answered or resumed: told when it
    /// closes.
    pub remote_calls: std::sync::Mutex<std::collections::HashSet<CallId>>,
    /// Whether this socket sent strangers business to the instance that runs strangers
    /// (which is then told when it closes).
    pub remote_strangers: std::sync::atomic::AtomicBool,
}

fn error(code: ErrorCode, message: impl Into<String>, client_id: Option<String>) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id,
    }
}

impl Session {
    /// Queues a frame for this socket only. A full queue means the hub is closing the socket
    /// already; the browser catches up after it reconnects.
    pub fn reply(&self, message: &ServerMsg) {
        if self.socket.instance == self.state.hub.instance() {
            let _ = self.reply.try_send(Outbound::Text(encode(message)));
        } else {
            // A socket of another instance, whose strangers business is run here.
            self.state
                .delivery
                .send_to_socket(self.who(), self.socket, message);
        }
    }

    fn who(&self) -> PrincipalId {
        self.principal.id()
    }

    /// The signed-in user, or `None` after telling a guest to sign in.
    fn member(&self) -> Option<&crate::server::auth::SessionUser> {
        let user = self.principal.user();
        if user.is_none() {
            self.reply(&error(
                ErrorCode::SignInRequired,
                "Sign in to use friends, messages and calls to friends.",
                None,
            ));
        }
        user
    }

    /// Counts a message that costs the server work or reaches someone else against the
    /// principal's allowance over all their sockets; refuses it (naming a `send`) when spent.
    fn within_principal_rate(&self, message: &ClientMsg) -> bool {
        let client_id = match message {
            ClientMsg::Send { client_id, .. } => Some(client_id.clone()),
            ClientMsg::Typing { .. } | ClientMsg::Receipt { .. } | ClientMsg::CallStart { .. } => {
                None
            }
            _ => return true,
        };
        let key = format!("socket:{}", self.who().key());
        if self.state.limits.principal_messages.hit(&key).is_ok() {
            return true;
        }
        self.reply(&error(
            ErrorCode::RateLimited,
            "You are sending too fast from your open tabs; some messages were dropped.",
            client_id,
        ));
        false
    }

    pub async fn handle(&self, message: ClientMsg) {
        if !self.within_principal_rate(&message) {
            return;
        }
        let strangers_business = matches!(
            message,
            ClientMsg::StrangerStart { .. }
                | ClientMsg::StrangerNext
                | ClientMsg::StrangerStop
                | ClientMsg::StrangerChat { .. }
                | ClientMsg::StrangerReport { .. }
                | ClientMsg::StrangerBlock
                | ClientMsg::StrangerFriend
        );
        if strangers_business && self.strangers_elsewhere() {
            return self
                .forward_strangers(StrangerWork::Message { message })
                .await;
        }
        let state = &self.state;
        let calls = &state.calls;
        let (who, socket) = (self.who(), self.socket);
        match message {
            ClientMsg::Ping => self.reply(&ServerMsg::Pong),
            ClientMsg::Resume { after } => {
                if let Some(user) = self.member() {
                    self.resume(user.id, after).await
                }
            }
            ClientMsg::Send {
                conversation_id,
                client_id,
                body,
            } => {
                if let Some(user) = self.member() {
                    self.send(user.id, conversation_id, client_id, body).await
                }
            }
            ClientMsg::Typing { conversation_id } => {
                if let Some(user) = self.member() {
                    self.typing(user.id, conversation_id).await
                }
            }
            ClientMsg::Receipt {
                conversation_id,
                delivered_up_to,
                read_up_to,
            } => {
                if let Some(user) = self.member() {
                    self.receipt(user.id, conversation_id, delivered_up_to, read_up_to)
                        .await
                }
            }
            ClientMsg::CallStart {
                request_id,
                to,
                video,
            } => {
                if let Some(user) = self.member() {
                    let user = user.clone();
                    self.call(user, request_id, to, video).await
                }
            }
            ClientMsg::CallAccept { call_id } => {
                if !self.elsewhere(call_id, CallOp::Accept).await {
                    self.call_op(calls.accept(who, socket, call_id)).await
                }
            }
            ClientMsg::CallReject { call_id } => {
                if !self.elsewhere(call_id, CallOp::Reject).await {
                    self.call_op(calls.reject(who, call_id)).await
                }
            }
            ClientMsg::CallHangup { call_id } => {
                if !self.elsewhere(call_id, CallOp::HangUp).await {
                    self.call_op(calls.hang_up(who, call_id)).await
                }
            }
            ClientMsg::CallSignal { call_id, data } => {
                // (Cloned only when another instance holds the call.)
                if !self
                    .elsewhere_with(call_id, || CallOp::Signal { data: data.clone() })
                    .await
                {
                    self.call_op(calls.signal(who, socket, call_id, data)).await
                }
            }
            ClientMsg::CallResume { call_id } if self.held_elsewhere(call_id) => {
                self.elsewhere(call_id, CallOp::Resume).await;
            }
            ClientMsg::CallResume { call_id } => {
                let resumed = calls.resume(who, socket, call_id);
                if resumed.is_ok() {
                    state.strangers.resumed(who, socket);
                }
                self.call_op(resumed).await
            }
            ClientMsg::StrangerStart {
                interests,
                text_only,
                accept_rules,
            } => {
                self.stranger_start(interests, text_only, accept_rules)
                    .await
            }
            ClientMsg::StrangerNext => {
                if self.stranger_within_starts() {
                    let alive = self.state.reachable();
                    let next = state.strangers.next(who, calls.as_ref(), &alive);
                    self.stranger_op(next).await
                }
            }
            ClientMsg::StrangerStop => {
                let effects = state.strangers.stop(who, calls.as_ref());
                carry_out(state, effects).await
            }
            ClientMsg::StrangerChat { text } => self.stranger_chat(text).await,
            ClientMsg::StrangerReport {
                reason,
                note,
                include_chat,
            } => self.stranger_report(reason, note, include_chat).await,
            ClientMsg::StrangerBlock => self.stranger_block().await,
            ClientMsg::StrangerFriend => self.stranger_friend().await,
        }
    }

    /// Counts a start or next against the principal's and the address's allowance.
    fn stranger_within_starts(&self) -> bool {
        let limits = &self.state.limits;
        let spent = limits
            .stranger_starts
            .hit(&self.who().key())
            .and_then(|()| limits.stranger_starts_per_address.hit(&self.address));
        if let Err(wait) = spent {
            self.reply(&error(
                ErrorCode::RateLimited,
                format!(
                    "You are moving on too fast. Try again in {} seconds.",
                    wait.as_secs().max(1)
                ),
                None,
            ));
            return false;
        }
        true
    }

    async fn stranger_op(&self, result: Result<Effects, StrangerError>) {
        match result {
            Ok(effects) => carry_out(&self.state, effects).await,
            Err(e) => self.reply(&error(ErrorCode::NotAllowed, e.to_string(), None)),
        }
    }

    async fn stranger_start(&self, interests: Vec<String>, text_only: bool, accept_rules: bool) {
        if !accept_rules {
            return self.reply(&error(
                ErrorCode::Invalid,
                "Confirm that you are 18 or older and accept the rules first.",
                None,
            ));
        }
        let interests = match normalize_interests(&interests) {
            Ok(interests) => interests,
            Err(message) => return self.reply(&error(ErrorCode::Invalid, message, None)),
        };
        if !self.stranger_within_starts() {
            return;
        }
        let state = &self.state;
        let address = state.strangers.address_tag(&self.address);
        let standing = match state
            .db
            .stranger_standing(&self.who().key(), &address)
            .await
        {
            Ok(standing) => standing,
            Err(e) => return self.unavailable("reading bans", None)(e),
        };
        if let Some(until) = standing.banned_until {
            return self.reply(&ServerMsg::StrangerBanned { until });
        }
        let avoid = match state.db.stranger_avoid(self.who()).await {
            Ok(avoid) => avoid,
            Err(e) => return self.unavailable("reading blocks", None)(e),
        };
        let settings = Settings {
            interests: interests.into_iter().map(Into::into).collect(),
            text_only,
            avoid: std::sync::Arc::new(avoid),
            address,
            shadow: standing.restricted,
        };
        let alive = self.state.reachable();
        let started = state.strangers.start(
            self.who(),
            self.socket,
            settings,
            state.calls.as_ref(),
            &alive,
        );
        self.stranger_op(started).await
    }

    async fn stranger_chat(&self, text: String) {
        let text = match check_chat(&text) {
            Ok(text) => text.to_string(),
            Err(message) => return self.reply(&error(ErrorCode::Invalid, message, None)),
        };
        if self
            .state
            .limits
            .stranger_chat
            .hit(&self.who().key())
            .is_err()
        {
            return self.reply(&error(
                ErrorCode::RateLimited,
                "You are typing too fast; that line was not sent.",
                None,
            ));
        }
        let alive = self.state.reachable();
        let relayed = self
            .state
            .strangers
            .chat(self.who(), self.socket, text, &alive);
        self.stranger_op(relayed).await
    }

    /// Whether the principal may report or block once more now.
    fn stranger_within_reports(&self) -> bool {
        let ok = self
            .state
            .limits
            .stranger_reports
            .hit(&self.who().key())
            .is_ok();
        if !ok {
            self.reply(&error(
                ErrorCode::RateLimited,
                "Too many reports and blocks in a short time. Try again in a minute.",
                None,
            ));
        }
        ok
    }

    async fn stranger_report(&self, reason: ReportReason, note: String, include_chat: bool) {
        let note = note.trim().to_string();
        if note.chars().count() > MAX_NOTE_CHARS {
            let message = format!("A note can have at most {MAX_NOTE_CHARS} characters.");
            return self.reply(&error(ErrorCode::Invalid, message, None));
        }
        if !self.stranger_within_reports() {
            return;
        }
        let strangers = &self.state.strangers;
        let reporter_address = strangers.address_tag(&self.address);
        let draft =
            match strangers.report(self.who(), &reporter_address, reason, note, include_chat) {
                Ok(draft) => draft,
                Err(e) => return self.reply(&error(ErrorCode::NotAllowed, e.to_string(), None)),
            };
        match self.state.db.stranger_report(&draft).await {
            Ok(id) => {
                tracing::info!(report = id, reason = reason.as_str(), "stranger reported");
                self.reply(&ServerMsg::StrangerReported);
                self.state.metrics.stranger_reported();
                super::moderation::after_report(&self.state, draft.reported).await;
            }
            Err(e) => self.unavailable("saving a report", None)(e),
        }
    }

    async fn stranger_block(&self) {
        if !self.stranger_within_reports() {
            return;
        }
        let alive = self.state.reachable();
        let blocked = self
            .state
            .strangers
            .block(self.who(), self.state.calls.as_ref(), &alive);
        let (effects, blocked) = match blocked {
            Ok(done) => done,
            Err(e) => return self.reply(&error(ErrorCode::NotAllowed, e.to_string(), None)),
        };
        carry_out(&self.state, effects).await;
        if let Err(e) = self.state.db.stranger_block(self.who(), blocked).await {
            // The block holds in memory for this visit; say it may not last.
            tracing::error!(error = %e, "storing a stranger block failed");
        }
    }

    /// "Add as friend": the stranger is asked; once both asked, they become friends and each
    /// learns the other's name.
    async fn stranger_friend(&self) {
        use super::strangers::FriendAsk;
        if !self.stranger_within_reports() {
            return;
        }
        let state = &self.state;
        let [(a, a_socket), (b, b_socket)] = match state.strangers.befriend(self.who(), self.socket)
        {
            Ok(FriendAsk::Asked(effects)) => return carry_out(state, effects).await,
            Ok(FriendAsk::Again) => return,
            Ok(FriendAsk::Both(users)) => users,
            Err(e) => return self.reply(&error(ErrorCode::NotAllowed, e.to_string(), None)),
        };
        // A request one way, then the other way accepts it (with the friendship's checks).
        let befriended = async {
            state.db.send_friend_request(a, b).await?;
            state.db.send_friend_request(b, a).await
        };
        let conversation_id = match befriended.await {
            Ok(crate::friends::api::RequestOutcome::Accepted { conversation_id }) => {
                conversation_id
            }
            Ok(crate::friends::api::RequestOutcome::Sent) => {
                tracing::error!("befriending two strangers left a request pending");
                return self.reply(&error(ErrorCode::Unavailable, TRY_AGAIN, None));
            }
            Err(super::db::social::SocialError::Db(e)) => {
                return self.unavailable("befriending strangers", None)(e)
            }
            Err(refused) => {
                return self.reply(&error(ErrorCode::NotAllowed, refused.to_string(), None))
            }
        };
        let card = |id: i64| async move {
            state
                .db
                .user_by_id(id)
                .await
                .ok()
                .flatten()
                .map(|u| UserCard {
                    id,
                    display_name: u.display_name,
                })
        };
        let (Some(a_card), Some(b_card)) = (card(a).await, card(b).await) else {
            return;
        };
        tracing::info!("two strangers became friends");
        for (to, socket, user) in [(a, a_socket, b_card), (b, b_socket, a_card)] {
            state.delivery.send_to_socket(
                PrincipalId::User(to),
                socket,
                &ServerMsg::StrangerFriends {
                    user,
                    conversation_id,
                },
            );
        }
        state
            .delivery
            .send_to_users(&[a, b], &ServerMsg::FriendsChanged);
    }

    /// Rings a friend; a refusal names the request it answers.
    async fn call(
        &self,
        me: crate::server::auth::SessionUser,
        request_id: u32,
        to: i64,
        video: bool,
    ) {
        let (context, callee) = match friends_call(&self.state, me.id, to).await {
            Ok(found) => found,
            Err(FriendsRefusal::NotAllowed) => {
                return self.reply(&ServerMsg::CallRefused {
                    request_id,
                    reason: CallEndReason::NotAllowed,
                })
            }
            Err(FriendsRefusal::Unavailable(e)) => {
                return self.unavailable("checking who may call", None)(e)
            }
        };
        let caller = Party::friend(UserCard {
            id: me.id,
            display_name: me.display_name,
        });
        let effects =
            self.state
                .calls
                .start(context, caller, self.socket, request_id, callee, video);
        carry_out(&self.state, effects).await;
    }

    /// Whether another instance runs strangers (only with several instances).
    fn strangers_elsewhere(&self) -> bool {
        self.state
            .cluster
            .as_ref()
            .is_some_and(|cluster| cluster.strangers_leader() != self.state.hub.instance())
    }

    /// Sends this socket's strangers business to the instance that runs strangers.
    async fn forward_strangers(&self, work: StrangerWork) {
        let Some(cluster) = &self.state.cluster else {
            return;
        };
        self.remote_strangers
            .store(true, std::sync::atomic::Ordering::Relaxed);
        cluster.note_strangers_socket(self.socket, self.who());
        let work = RemoteWork {
            principal: self.principal.clone(),
            address: self.address.clone(),
            work,
        };
        if !cluster.forward_remote(self.socket, work).await {
            self.reply(&error(ErrorCode::Unavailable, TRY_AGAIN, None));
        }
    }

    /// Whether another instance holds call `id` (only with several instances): not this
    /// one, and another is named as its holder (one that took it over, or else the one that
    /// started it).
    fn held_elsewhere(&self, id: CallId) -> bool {
        self.state.cluster.as_ref().is_some_and(|cluster| {
            !self.state.calls.has(id) && cluster.holder_of(self.who(), id) != self.socket.instance
        })
    }

    /// Sends `op` to the instance that holds call `id`, if that is another; whether it did
    /// (or, that instance gone, handed it to [`super::calls::handover`]).
    async fn elsewhere(&self, id: CallId, op: CallOp) -> bool {
        self.elsewhere_with(id, || op).await
    }

    async fn elsewhere_with(&self, id: CallId, op: impl FnOnce() -> CallOp) -> bool {
        if !self.held_elsewhere(id) {
            return false;
        }
        let op = op();
        if matches!(op, CallOp::Accept | CallOp::Resume) {
            // Its closing is to be told wherever the call is (even if it is still looked
            // for when it closes).
            self.remote_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        }
        self.forward(id, op).await;
        true
    }

    /// Sends `op` on call `id` to the instance holding it; if none answers, to the one that
    /// takes it over (what must not be lost), or refuses it.
    async fn forward(&self, id: CallId, op: CallOp) {
        let Some(cluster) = &self.state.cluster else {
            return;
        };
        let who = self.who();
        if cluster.forward_call(who, self.socket, id, op.clone()).await {
            return;
        }
        if super::calls::handover::waits(&op) {
            super::calls::handover::chase(&self.state, who, self.socket, id, op);
        } else if op != CallOp::SocketClosed {
            self.reply(&CallError::NoSuchCall.refusal());
        }
    }

    async fn call_op(&self, result: Result<Effects, CallError>) {
        match result {
            Ok(effects) => carry_out(&self.state, effects).await,
            Err(e) => self.reply(&e.refusal()),
        }
    }

    /// This socket closed: it stops looking for a stranger; a call running on it ends or
    /// waits for it to come back.
    pub async fn closed(&self) {
        self.state.strangers.socket_closed(self.who(), self.socket);
        let effects = self.state.calls.socket_closed(self.who(), self.socket);
        carry_out(&self.state, effects).await;
        let remote: Vec<CallId> = self
            .remote_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        // (A call taken over here since was told above.)
        for id in remote.into_iter().filter(|&id| !self.state.calls.has(id)) {
            self.forward(id, CallOp::SocketClosed).await;
        }
        if self
            .remote_strangers
            .load(std::sync::atomic::Ordering::Relaxed)
            && self.strangers_elsewhere()
        {
            self.forward_strangers(StrangerWork::SocketClosed).await;
        }
        if let Some(cluster) = &self.state.cluster {
            cluster.forget_strangers_socket(self.socket);
        }
    }

    fn unavailable(
        &self,
        doing: &'static str,
        client_id: Option<String>,
    ) -> impl FnOnce(super::db::DbError) + '_ {
        move |e| {
            tracing::error!(error = %e, "{doing} failed");
            self.reply(&error(ErrorCode::Unavailable, TRY_AGAIN, client_id));
        }
    }

    async fn resume(&self, user: i64, after: i64) {
        match self
            .state
            .db
            .messages_after(user, after, BACKLOG_BATCH + 1)
            .await
        {
            Ok(mut messages) => {
                let keep = fitting(&messages, BACKLOG_BATCH as usize, BACKLOG_MAX_BYTES);
                let more = messages.len() > keep;
                messages.truncate(keep);
                self.reply(&ServerMsg::Backlog { messages, more });
            }
            Err(e) => self.unavailable("reading missed messages", None)(e),
        }
    }

    /// The peer of a conversation this user may post in, or the refusal (already sent).
    async fn postable(
        &self,
        user: i64,
        conversation_id: i64,
        client_id: Option<&String>,
    ) -> Option<i64> {
        match self.state.db.posting_rights(conversation_id, user).await {
            Ok(Some(rights)) => match rights.refusal {
                None => Some(rights.peer),
                Some(reason) => {
                    self.reply(&error(ErrorCode::NotAllowed, reason, client_id.cloned()));
                    None
                }
            },
            Ok(None) => {
                self.reply(&error(ErrorCode::NotFound, NOT_YOURS, client_id.cloned()));
                None
            }
            Err(e) => {
                self.unavailable("checking who may post", client_id.cloned())(e);
                None
            }
        }
    }

    async fn send(&self, user: i64, conversation_id: i64, client_id: String, body: String) {
        if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID_CHARS {
            let message = format!("A message id must have 1 to {MAX_CLIENT_ID_CHARS} characters.");
            self.reply(&error(ErrorCode::Invalid, message, Some(client_id)));
            return;
        }
        let body = match check_body(&body) {
            Ok(body) => body,
            Err(message) => {
                self.reply(&error(ErrorCode::Invalid, message, Some(client_id)));
                return;
            }
        };
        let post = Post {
            conversation: conversation_id,
            sender: user,
            client_id,
            body: body.to_string(),
        };
        let client_id = Some(post.client_id.clone());
        match self.state.db.post_message(post).await {
            Ok(Posted::New { message, peer }) => {
                tracing::debug!(conversation_id, message_id = message.id, "message stored");
                self.state.metrics.message_stored();
                self.state
                    .delivery
                    .send_to_users(&[user, peer], &ServerMsg::Message { message });
            }
            // A resend of a stored message: this socket learns it arrived; nobody gets it twice.
            Ok(Posted::Again(message)) => self.reply(&ServerMsg::Message { message }),
            Err(PostError::NotFound) => {
                self.reply(&error(ErrorCode::NotFound, NOT_YOURS, client_id))
            }
            Err(PostError::NotAllowed(reason)) => {
                self.reply(&error(ErrorCode::NotAllowed, reason, client_id))
            }
            Err(PostError::ClientIdReused) => self.reply(&error(
                ErrorCode::Invalid,
                "This message id was already used for another conversation.",
                client_id,
            )),
            Err(PostError::Unavailable) => {
                self.reply(&error(ErrorCode::Unavailable, TRY_AGAIN, client_id))
            }
        }
    }

    async fn typing(&self, user: i64, conversation_id: i64) {
        if let Some(peer) = self.postable(user, conversation_id, None).await {
            self.state.delivery.send_to_user(
                peer,
                &ServerMsg::Typing {
                    conversation_id,
                    user_id: user,
                },
            );
        }
    }

    async fn receipt(&self, user: i64, conversation_id: i64, delivered: i64, read: i64) {
        let db = &self.state.db;
        // Receipts stay allowed after an unfriend or a block (reading history is), but across
        // a block they reach only the reader's own tabs.
        let rights = match db.posting_rights(conversation_id, user).await {
            Ok(Some(rights)) => rights,
            Ok(None) => {
                let message = "This conversation does not exist or is not yours.";
                return self.reply(&error(ErrorCode::NotFound, message, None));
            }
            Err(e) => return self.unavailable("reading a conversation", None)(e),
        };
        match db
            .advance_receipts(conversation_id, user, delivered, read)
            .await
        {
            // Nothing moved: nothing to tell.
            Ok(None) => {}
            Ok(Some((delivered_up_to, read_up_to))) => self.state.delivery.send_to_users(
                &[user, rights.peer][..if rights.blocked { 1 } else { 2 }],
                &ServerMsg::Receipt {
                    conversation_id,
                    user_id: user,
                    delivered_up_to,
                    read_up_to,
                },
            ),
            Err(e) => self.unavailable("saving receipts", None)(e),
        }
    }

    /// Tells the user's friends they came online (first socket). Guests have no friends.
    pub async fn announce_online(&self) {
        if let Some(user) = self.principal.user() {
            announce_presence(&self.state, user.id, true).await;
        }
    }

    /// Records when the user was last seen and tells their friends they left (last socket).
    pub async fn announce_offline(&self) {
        if let Some(user) = self.principal.user() {
            announce_presence(&self.state, user.id, false).await;
        }
    }
}

/// Tells `user`'s friends they came online or went offline (recording when they were last
/// seen). Sockets call it for a first or last socket; with several instances the cluster
/// does, when it decides that over all of them.
pub async fn announce_presence(state: &AppState, user: i64, online: bool) {
    let last_seen = if online {
        None
    } else {
        match state.db.touch_last_seen(user).await {
            Ok(Some(at)) => Some(at),
            // The account was deleted: its friends were told already.
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "recording last seen failed");
                None
            }
        }
    };
    match state.db.friend_ids(user).await {
        Ok(friends) => state.delivery.send_to_users(
            &friends,
            &ServerMsg::Presence {
                user_id: user,
                online,
                last_seen,
            },
        ),
        Err(e) => tracing::error!(error = %e, "reading friends for presence failed"),
    }
}

/// Runs a socket's strangers business sent here by its own instance (this one runs
/// strangers): the same handling as for a socket of this instance, its replies sent back
/// through the cluster.
pub async fn run_remote(state: &AppState, socket: SocketRef, work: RemoteWork) {
    let session = Session {
        principal: work.principal,
        socket,
        address: work.address,
        state: state.clone(),
        // Unused: replies to another instance's socket go through the cluster.
        reply: super::queue::queue(1).0,
        remote_calls: Default::default(),
        remote_strangers: Default::default(),
    };
    match work.work {
        StrangerWork::Message { message } => session.handle(message).await,
        StrangerWork::SocketClosed => session.closed().await,
    }
}
