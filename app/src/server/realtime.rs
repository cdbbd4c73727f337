//! What the server does with each message a signed-in browser sends over `/ws`, and the
//! presence announcements when a user's first socket opens or last socket closes. The socket
//! itself (frames, limits, heartbeats) is the server binary's `routes::ws`; this part only
//! sees typed messages, so it is independent of the transport.

use tokio::sync::mpsc;

use super::{
    db::messages::StoreError,
    hub::{encode, Outbound},
    state::AppState,
};
use crate::protocol::{check_body, ClientMsg, ErrorCode, ServerMsg, MAX_CLIENT_ID_CHARS};

/// Messages sent per `Backlog` answer.
pub const BACKLOG_BATCH: i64 = 200;

/// One socket's view of the app: who is on it and where its replies go.
pub struct Session {
    pub user_id: i64,
    /// The user's display name, as callees see it.
    pub name: String,
    /// This socket, in the hub.
    pub conn_id: u64,
    pub state: AppState,
    pub reply: mpsc::Sender<Outbound>,
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
        let _ = self.reply.try_send(Outbound::Text(encode(message)));
    }

    pub async fn handle(&self, message: ClientMsg) {
        match message {
            ClientMsg::Ping => self.reply(&ServerMsg::Pong),
            ClientMsg::Resume { after } => self.resume(after).await,
            ClientMsg::Send {
                conversation_id,
                client_id,
                body,
            } => self.send(conversation_id, client_id, body).await,
            ClientMsg::Typing { conversation_id } => self.typing(conversation_id).await,
            ClientMsg::Receipt {
                conversation_id,
                delivered_up_to,
                read_up_to,
            } => {
                self.receipt(conversation_id, delivered_up_to, read_up_to)
                    .await
            }
            ClientMsg::CallStart { to, video } => self.call(to, video).await,
            ClientMsg::CallAccept { call_id } => {
                let calls = &self.state.calls;
                self.call_op(calls.accept(self.user_id, self.conn_id, call_id))
                    .await
            }
            ClientMsg::CallReject { call_id } => {
                self.call_op(self.state.calls.reject(self.user_id, call_id))
                    .await
            }
            ClientMsg::CallHangup { call_id } => {
                self.call_op(self.state.calls.hang_up(self.user_id, call_id))
                    .await
            }
            ClientMsg::CallSignal { call_id, data } => {
                let calls = &self.state.calls;
                self.call_op(calls.signal(self.user_id, self.conn_id, call_id, data))
                    .await
            }
            ClientMsg::CallResume { call_id } => {
                let calls = &self.state.calls;
                self.call_op(calls.resume(self.user_id, self.conn_id, call_id))
                    .await
            }
        }
    }

    /// Rings a friend: they must be friends with no block either way (the same rules as
    /// posting in their conversation).
    async fn call(&self, to: i64, video: bool) {
        let refuse = || ServerMsg::CallEnded {
            call_id: 0,
            reason: crate::protocol::CallEndReason::NotAllowed,
        };
        let db = &self.state.db;
        let conversation =
            match super::db::messages::conversation_between(db, self.user_id, to).await {
                Ok(Some(c)) => c,
                Ok(None) => return self.reply(&refuse()),
                Err(e) => return self.unavailable("finding a conversation", None)(e),
            };
        let detail = match db.conversation_detail(conversation, self.user_id).await {
            Ok(Some(detail)) if detail.read_only_reason.is_none() => detail,
            Ok(_) => return self.reply(&refuse()),
            Err(e) => return self.unavailable("checking who may call", None)(e),
        };
        let me = crate::api::friends::UserCard {
            id: self.user_id,
            display_name: self.name.clone(),
        };
        let effects = self
            .state
            .calls
            .start(me, self.conn_id, detail.peer, conversation, video);
        self.state.calls.apply(&self.state, effects).await;
    }

    async fn call_op(&self, result: Result<super::calls::Effects, super::calls::CallError>) {
        match result {
            Ok(effects) => self.state.calls.apply(&self.state, effects).await,
            Err(e) => self.reply(&error(ErrorCode::NotAllowed, e.to_string(), None)),
        }
    }

    /// This socket closed: a call running on it ends or waits for it to come back.
    pub async fn closed(&self) {
        let effects = self.state.calls.socket_closed(self.user_id, self.conn_id);
        self.state.calls.apply(&self.state, effects).await;
    }

    fn unavailable(
        &self,
        doing: &'static str,
        client_id: Option<String>,
    ) -> impl FnOnce(super::db::DbError) + '_ {
        move |e| {
            tracing::error!(error = %e, "{doing} failed");
            self.reply(&error(
                ErrorCode::Unavailable,
                "The server could not do that right now. Please try again.",
                client_id,
            ));
        }
    }

    async fn resume(&self, after: i64) {
        match self
            .state
            .db
            .messages_after(self.user_id, after, BACKLOG_BATCH + 1)
            .await
        {
            Ok(mut messages) => {
                let more = messages.len() > BACKLOG_BATCH as usize;
                messages.truncate(BACKLOG_BATCH as usize);
                self.reply(&ServerMsg::Backlog { messages, more });
            }
            Err(e) => self.unavailable("reading missed messages", None)(e),
        }
    }

    /// The peer of a conversation this user may post in, or the refusal (already sent).
    async fn postable(&self, conversation_id: i64, client_id: Option<&String>) -> Option<i64> {
        match self
            .state
            .db
            .posting_rights(conversation_id, self.user_id)
            .await
        {
            Ok(Some((peer, None))) => Some(peer),
            Ok(Some((_, Some(reason)))) => {
                self.reply(&error(ErrorCode::NotAllowed, reason, client_id.cloned()));
                None
            }
            Ok(None) => {
                self.reply(&error(
                    ErrorCode::NotFound,
                    "This conversation does not exist or is not yours.",
                    client_id.cloned(),
                ));
                None
            }
            Err(e) => {
                self.unavailable("checking who may post", client_id.cloned())(e);
                None
            }
        }
    }

    async fn send(&self, conversation_id: i64, client_id: String, body: String) {
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
        let Some(peer) = self.postable(conversation_id, Some(&client_id)).await else {
            return;
        };
        match self
            .state
            .db
            .store_message(conversation_id, self.user_id, &client_id, body)
            .await
        {
            Ok((message, true)) => {
                tracing::debug!(conversation_id, message_id = message.id, "message stored");
                self.state
                    .hub
                    .send_to_users(&[self.user_id, peer], &ServerMsg::Message { message });
            }
            // A resend of a stored message: this socket learns it arrived; nobody gets it twice.
            Ok((message, false)) => self.reply(&ServerMsg::Message { message }),
            Err(StoreError::ClientIdReused) => self.reply(&error(
                ErrorCode::Invalid,
                "This message id was already used for another conversation.",
                Some(client_id),
            )),
            Err(StoreError::Db(e)) => self.unavailable("storing a message", Some(client_id))(e),
        }
    }

    async fn typing(&self, conversation_id: i64) {
        if let Some(peer) = self.postable(conversation_id, None).await {
            self.state.hub.send_to_user(
                peer,
                &ServerMsg::Typing {
                    conversation_id,
                    user_id: self.user_id,
                },
            );
        }
    }

    async fn receipt(&self, conversation_id: i64, delivered: i64, read: i64) {
        let db = &self.state.db;
        // Receipts stay allowed after an unfriend: reading history is.
        let peer = match db.conversation_peer(conversation_id, self.user_id).await {
            Ok(Some(peer)) => peer,
            Ok(None) => {
                let message = "This conversation does not exist or is not yours.";
                return self.reply(&error(ErrorCode::NotFound, message, None));
            }
            Err(e) => return self.unavailable("reading a conversation", None)(e),
        };
        match db
            .advance_receipts(conversation_id, self.user_id, delivered, read)
            .await
        {
            Ok((delivered_up_to, read_up_to)) => self.state.hub.send_to_users(
                &[self.user_id, peer],
                &ServerMsg::Receipt {
                    conversation_id,
                    user_id: self.user_id,
                    delivered_up_to,
                    read_up_to,
                },
            ),
            Err(e) => self.unavailable("saving receipts", None)(e),
        }
    }

    /// Tells the user's friends they came online (first socket) .
    pub async fn announce_online(&self) {
        self.announce(true, None).await;
    }

    /// Records when the user was last seen and tells their friends they left (last socket).
    pub async fn announce_offline(&self) {
        let last_seen = match self.state.db.touch_last_seen(self.user_id).await {
            Ok(Some(at)) => Some(at),
            // The account was deleted: its friends were told already.
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "recording last seen failed");
                None
            }
        };
        self.announce(false, last_seen).await;
    }

    async fn announce(&self, online: bool, last_seen: Option<String>) {
        match self.state.db.friend_ids(self.user_id).await {
            Ok(friends) => self.state.hub.send_to_users(
                &friends,
                &ServerMsg::Presence {
                    user_id: self.user_id,
                    online,
                    last_seen,
                },
            ),
            Err(e) => tracing::error!(error = %e, "reading friends for presence failed"),
        }
    }
}
