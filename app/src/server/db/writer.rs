//! Conversation messages are stored by one writer task, in batches. SQLite takes one writer
//! at a time anyway (and on PostgreSQL writers take turns too, see `Db::immediate`); here the
//! messages that arrive while one transaction commits go together in the next (up to
//! [`MAX_BATCH`]), so a busy server pays one commit for many messages instead of one each, and
//! a quiet one writes each message at once (no waiting to fill a batch). Each message's
//! posting rights are checked in the same transaction as its insert, so a block or unfriend
//! cannot slip in between. A sender hears back only after the commit: the durability is that
//! of one write per message. The writer keeps its connection between batches, and a batch is
//! one insert statement (on SQLite its own transaction): few round trips to the database.

use std::time::{Duration, Instant};

use sqlx::{pool::PoolConnection, Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{
    begin_immediate_on,
    messages::{posting_rights, MessageRow, MESSAGE_COLUMNS},
    DbError, Engine,
};
use crate::wire::MessageView;

/// The most messages written in one transaction.
pub const MAX_BATCH: usize = 128;
/// Messages waiting for the writer; senders wait (briefly) when it is full.
const QUEUE: usize = 4096;

/// A message to store.
#[derive(Debug, Clone)]
pub struct Post {
    pub conversation: i64,
    pub sender: i64,
    pub client_id: String,
    pub body: String,
}

/// What storing a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Stored now; `peer`, the conversation's other member, should get it too.
    New { message: MessageView, peer: i64 },
    /// Stored before under this client id (a resend): nobody gets it twice.
    Again(MessageView),
}

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// No such conversation, or not the sender's.
    #[error("no such conversation")]
    NotFound,
    /// The sender may read but not post (blocked, no longer friends): why, in words for them.
    #[error("{0}")]
    NotAllowed(String),
    /// The sender already used this client id for a message elsewhere.
    #[error("client id reused in another conversation")]
    ClientIdReused,
    /// The database failed (logged where it happened).
    #[error("the database is unavailable")]
    Unavailable,
}

struct Job {
    post: Post,
    done: oneshot::Sender<Result<Posted, PostError>>,
}

/// The handle to the writer task; cheap to clone. The task ends when every handle is gone.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Job>,
}

impl MessageWriter {
    /// Starts the writer on `pool` (inside a tokio runtime).
    pub fn start(pool: AnyPool, engine: Engine) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, engine, jobs));
        Self { queue }
    }

    /// Stores a message (or finds its earlier copy) once its batch has committed.
    pub async fn post(&self, post: Post) -> Result<Posted, PostError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job { post, done })
            .await
            .map_err(|_| PostError::Unavailable)?;
        answer.await.unwrap_or(Err(PostError::Unavailable))
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("post", &self.post).finish()
    }
}

/// The two members of conversations the writer has seen (members never change; an entry
/// for a conversation that went is harmless: the insert checks it exists).
#[derive(Default)]
struct Members(std::collections::HashMap<i64, (i64, i64)>);

impl Members {
    async fn peer(
        &mut self,
        tx: &mut AnyConnection,
        conversation: i64,
        me: i64,
    ) -> Result<i64, DbError> {
        let (a, b) = match self.0.get(&conversation) {
            Some(&members) => members,
            None => {
                let members: (i64, i64) =
                    sqlx::query_as("SELECT user_a, user_b FROM conversations WHERE id = $1")
                        .bind(conversation)
                        .fetch_one(&mut *tx)
                        .await?;
                if self.0.len() >= 100_000 {
                    self.0.clear();
                }
                self.0.insert(conversation, members);
                members
            }
        };
        Ok(if a == me { b } else { a })
    }
}

async fn run(pool: AnyPool, engine: Engine, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut members = Members::default();
    let mut held = Held::default();
    let mut closing = std::pin::pin!(pool.close_event());
    let mut closed = false;
    loop {
        let job = tokio::select! {
            // First: closed means closed. The kept connection goes too, and nothing is
            // written after `Db::close`.
            biased;
            () = &mut closing, if !closed => {
                closed = true;
                held.conn = None;
                continue;
            }
            job = jobs.recv() => job,
        };
        let Some(job) = job else { break };
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let written = match held.connection(&pool, engine).await {
            Ok(conn) => write(conn, engine, &batch, &mut members).await,
            Err(error) => Err(error),
        };
        let answers = match written {
            Ok(answers) => answers,
            Err(error) => {
                tracing::error!(%error, messages = batch.len(), "storing messages failed");
                // Back to the pool, which tests it and closes it if it is broken.
                held.conn = None;
                vec![Err(PostError::Unavailable); batch.len()]
            }
        };
        for (job, answer) in batch.drain(..).zip(answers) {
            // A sender that went away meanwhile: its message is stored all the same.
            let _ = job.done.send(answer);
        }
    }
}

/// The writer's connection, kept from one batch to the next: giving it back to the pool
/// costs a round trip to the database each time (the pool tests it on the way back).
#[derive(Default)]
struct Held {
    conn: Option<PoolConnection<Any>>,
    last_used: Option<Instant>,
}

/// A network connection idle this long is tested before use, as the pool would.
const IDLE_TEST_AFTER: Duration = Duration::from_secs(1);

impl Held {
    async fn connection(
        &mut self,
        pool: &AnyPool,
        engine: Engine,
    ) -> Result<&mut PoolConnection<Any>, DbError> {
        let idle = self
            .last_used
            .is_some_and(|at| at.elapsed() > IDLE_TEST_AFTER);
        if let (Some(conn), Engine::Postgres, true) = (&mut self.conn, engine, idle) {
            if conn.ping().await.is_err() {
                self.conn = None;
            }
        }
        self.last_used = Some(Instant::now());
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => pool.acquire().await?,
        };
        Ok(self.conn.insert(conn))
    }
}

/// The whole batch as one insert statement: each message whose sender may post it is stored,
/// all or none (a database failure fails all of it: nothing is half stored, and every sender
/// is told). On SQLite that statement is a transaction of its own, taking the write lock
/// before it reads; on PostgreSQL it runs in a transaction that first takes its turn (see
/// `Db::immediate`). Either way a batch costs one round trip to the database, not one per
/// message and two more for `BEGIN` and `COMMIT`. The few messages it did not store (resends,
/// refusals) are then looked at one by one in a transaction, so that why is read in the same
/// one as the refusal.
async fn write(
    conn: &mut AnyConnection,
    engine: Engine,
    batch: &[Job],
    members: &mut Members,
) -> Result<Vec<Result<Posted, PostError>>, DbError> {
    let mut answers: Vec<Option<Result<Posted, PostError>>> = vec![None; batch.len()];
    match engine {
        Engine::Sqlite => {
            store(&mut *conn, batch, &mut answers, members).await?;
            if answers.iter().any(Option::is_none) {
                let mut tx = begin_immediate_on(conn, engine).await?;
                rest(&mut tx, batch, &mut answers, members).await?;
                tx.commit().await?;
            }
        }
        Engine::Postgres => {
            let mut tx = begin_immediate_on(conn, engine).await?;
            store(&mut tx, batch, &mut answers, members).await?;
            rest(&mut tx, batch, &mut answers, members).await?;
            tx.commit().await?;
        }
    }
    Ok(answers
        .into_iter()
        .map(|answer| answer.unwrap_or(Err(PostError::Unavailable)))
        .collect())
}

/// Stores what of the batch may be stored, in one statement, and answers those messages:
/// each stored row goes to the first message of the batch it is (a resend of the same client
/// id in the same batch is left for [`rest`], which finds it stored).
async fn store(
    conn: &mut AnyConnection,
    batch: &[Job],
    answers: &mut [Option<Result<Posted, PostError>>],
    members: &mut Members,
) -> Result<(), DbError> {
    for row in insert_all(&mut *conn, batch.iter().map(|job| &job.post)).await? {
        let Some(at) = batch.iter().zip(answers.iter()).position(|(job, answer)| {
            answer.is_none()
                && job.post.sender == row.sender_id
                && job.post.conversation == row.conversation_id
                && job.post.client_id == row.client_id
        }) else {
            continue;
        };
        let peer = members
            .peer(conn, row.conversation_id, row.sender_id)
            .await?;
        answers[at] = Some(Ok(Posted::New {
            message: row.into(),
            peer,
        }));
    }
    Ok(())
}

/// Answers the messages the batch's statement did not store, one by one (inside `tx`).
async fn rest(
    tx: &mut AnyConnection,
    batch: &[Job],
    answers: &mut [Option<Result<Posted, PostError>>],
    members: &mut Members,
) -> Result<(), DbError> {
    for (job, answer) in batch.iter().zip(answers.iter_mut()) {
        if answer.is_none() {
            *answer = Some(post_one(tx, &job.post, members).await?);
        }
    }
    Ok(())
}

/// Stores each of `posts` whose sender may post it, in one statement: a member of the
/// conversation, friends with the other, no block either way (the same rules as
/// [`posting_rights`], which says why when nothing is stored). Returns the stored rows, in no
/// given order.
async fn insert_all<'p>(
    conn: &mut AnyConnection,
    posts: impl ExactSizeIterator<Item = &'p Post>,
) -> Result<Vec<MessageRow>, DbError> {
    let statement = insert_statement(posts.len());
    let mut query = sqlx::query_as(&statement);
    for post in posts {
        query = query
            .bind(post.conversation)
            .bind(post.sender)
            .bind(&post.client_id)
            .bind(&post.body);
    }
    // All rows, not the first: the statement runs to its end, and on its own (on SQLite) that
    // end is its commit, whose failure must be seen.
    query.fetch_all(conn).await
}

/// The statement [`insert_all`] runs for `n` messages. Conversations and friendships both
/// store their pair smaller id first. (The casts tell PostgreSQL the values' types.)
fn insert_statement(n: usize) -> String {
    use std::fmt::Write;
    let mut values = String::with_capacity(n * 96);
    for i in 0..n {
        let p = 4 * i;
        let _ = write!(
            values,
            "{}(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT))",
            if i == 0 { "" } else { ", " },
            p + 1,
            p + 2,
            p + 3,
            p + 4
        );
    }
    format!(
        "WITH v (conversation_id, sender_id, client_id, body) AS (VALUES {values}) \
         INSERT INTO messages (conversation_id, sender_id, client_id, body) \
         SELECT v.conversation_id, v.sender_id, v.client_id, v.body \
         FROM v JOIN conversations c ON c.id = v.conversation_id \
         WHERE (c.user_a = v.sender_id OR c.user_b = v.sender_id) \
           AND EXISTS (SELECT 1 FROM friendships f \
                       WHERE f.user_a = c.user_a AND f.user_b = c.user_b) \
           AND NOT EXISTS (SELECT 1 FROM blocks b \
                           WHERE (b.blocker = c.user_a AND b.blocked = c.user_b) \
                              OR (b.blocker = c.user_b AND b.blocked = c.user_a)) \
         ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING {MESSAGE_COLUMNS}"
    )
}

/// Stores the message where the sender may post: `None` when it was not stored.
async fn insert(
    conn: &mut AnyConnection,
    post: &Post,
    members: &mut Members,
) -> Result<Option<Posted>, DbError> {
    let Some(row) = insert_all(&mut *conn, std::iter::once(post)).await?.pop() else {
        return Ok(None);
    };
    let peer = members.peer(conn, post.conversation, post.sender).await?;
    Ok(Some(Posted::New {
        message: row.into(),
        peer,
    }))
}

async fn post_one(
    tx: &mut AnyConnection,
    post: &Post,
    members: &mut Members,
) -> Result<Result<Posted, PostError>, DbError> {
    // One statement in the usual case; the reason is looked up only when nothing is stored.
    if let Some(posted) = insert(tx, post, members).await? {
        return Ok(Ok(posted));
    }
    let Some(rights) = posting_rights(&mut *tx, post.conversation, post.sender).await? else {
        return Ok(Err(PostError::NotFound));
    };
    if let Some(refusal) = rights.refusal {
        return Ok(Err(PostError::NotAllowed(refusal)));
    }
    let existing: MessageRow = sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND client_id = $2"
    ))
    .bind(post.sender)
    .bind(&post.client_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(if existing.conversation_id == post.conversation {
        Ok(Posted::Again(existing.into()))
    } else {
        Err(PostError::ClientIdReused)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::Db;

    async fn friends() -> (tempfile::TempDir, Db, i64, i64, i64) {
        let (dir, db) = Db::for_tests().await;
        let ann = db
            .create_user("ann@example.com", false, "Ann", None)
            .await
            .unwrap();
        let bob = db
            .create_user("bob@example.com", false, "Bob", None)
            .await
            .unwrap();
        db.send_friend_request(ann.id, bob.id).await.unwrap();
        let conversation = db.accept_friend_request(bob.id, ann.id).await.unwrap();
        (dir, db, ann.id, bob.id, conversation)
    }

    fn post(conversation: i64, sender: i64, client_id: &str) -> Post {
        Post {
            conversation,
            sender,
            client_id: client_id.into(),
            body: format!("text of {client_id}"),
        }
    }

    #[tokio::test]
    async fn a_burst_is_stored_once_each_with_refusals_kept_to_their_own_message() {
        let (_dir, db, ann, bob, conversation) = friends().await;
        // Far more than one batch, all at once; among them a resend of the same id, a
        // conversation that is not theirs, and an id used in another conversation.
        let mut posts: Vec<Post> = (0..300)
            .map(|n| {
                post(
                    conversation,
                    if n % 2 == 0 { ann } else { bob },
                    &format!("m{n}"),
                )
            })
            .collect();
        posts.push(post(conversation, ann, "m0"));
        posts.push(post(conversation + 1, ann, "elsewhere"));
        let tasks: Vec<_> = posts
            .iter()
            .cloned()
            .map(|p| {
                let db = db.clone();
                tokio::spawn(async move { db.post_message(p).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }

        let mut ids = std::collections::HashSet::new();
        let mut again = 0;
        for (post, answer) in posts.iter().zip(&answers) {
            match answer {
                Ok(Posted::New { message, peer }) => {
                    assert!(ids.insert(message.id), "id {} twice", message.id);
                    assert_eq!(message.client_id, post.client_id);
                    assert_eq!(message.body, post.body);
                    assert_eq!(*peer, if post.sender == ann { bob } else { ann });
                }
                Ok(Posted::Again(message)) => {
                    again += 1;
                    assert_eq!(message.client_id, "m0");
                }
                Err(PostError::NotFound) => assert_eq!(post.client_id, "elsewhere"),
                Err(other) => panic!("{}: {other:?}", post.client_id),
            }
        }
        assert_eq!((ids.len(), again), (300, 1));
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(stored, 300);

        assert_eq!(
            db.post_message(post(conversation, bob, "m0")).await,
            Ok(Posted::New {
                message: db
                    .messages_after(bob, 0, 1000)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|m| m.sender_id == bob && m.client_id == "m0")
                    .unwrap(),
                peer: ann,
            }),
            "client ids are per sender"
        );
    }

    #[tokio::test]
    async fn rights_are_checked_in_the_writing_transaction() {
        let (_dir, db, ann, bob, conversation) = friends().await;
        db.block(bob.max(ann), bob.min(ann)).await.unwrap();
        let refused = db.post_message(post(conversation, ann, "x")).await;
        assert!(
            matches!(refused, Err(PostError::NotAllowed(_))),
            "{refused:?}"
        );
        let other = db
            .post_message(post(conversation, bob, "y"))
            .await
            .unwrap_err();
        assert!(matches!(other, PostError::NotAllowed(_)), "{other:?}");
    }

    #[tokio::test]
    async fn the_database_closes_while_the_writer_holds_its_connection() {
        let (_dir, db, ann, _bob, conversation) = friends().await;
        let stored = db.post_message(post(conversation, ann, "a")).await;
        assert!(matches!(stored, Ok(Posted::New { .. })), "{stored:?}");
        // The writer kept its connection after that message: closing takes it back, and
        // nothing is stored after.
        tokio::time::timeout(Duration::from_secs(5), db.close())
            .await
            .expect("the database closes");
        assert_eq!(
            db.post_message(post(conversation, ann, "b")).await,
            Err(PostError::Unavailable)
        );
    }

    #[tokio::test]
    async fn a_closed_database_fails_the_batch_with_unavailable() {
        let (_dir, db, ann, _bob, conversation) = friends().await;
        db.close().await;
        assert_eq!(
            db.post_message(post(conversation, ann, "z")).await,
            Err(PostError::Unavailable)
        );
    }
}
