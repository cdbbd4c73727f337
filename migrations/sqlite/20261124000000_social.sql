-- Friends, blocks, 1:1 conversations and their messages.

-- When the user was last connected (set when their last socket closes).
ALTER TABLE users ADD COLUMN last_seen_at TEXT;
-- The display name lower-cased by the application (Unicode-aware), for search.
ALTER TABLE users ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET name_key = lower(display_name);

-- A pending friend request. At most one per direction; accepting, rejecting or cancelling
-- deletes it.
CREATE TABLE friend_requests (
    from_user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (from_user, to_user),
    CHECK (from_user <> to_user)
);
CREATE INDEX friend_requests_to ON friend_requests (to_user);

-- A friendship, stored once with the smaller id first.
CREATE TABLE friendships (
    user_a INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
);
CREATE INDEX friendships_b ON friendships (user_b);

-- `blocker` no longer wants anything from `blocked`.
CREATE TABLE blocks (
    blocker INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);
CREATE INDEX blocks_blocked ON blocks (blocked);

-- The 1:1 conversation of two users (smaller id first). Created when they become friends and
-- kept after an unfriend or a block, so the history stays readable.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_a INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The newest message, for ordering the conversation list.
    last_message_id INTEGER,
    UNIQUE (user_a, user_b),
    CHECK (user_a < user_b)
);
CREATE INDEX conversations_b ON conversations (user_b);

-- Message ids grow with time: they order history, page it, and say how far receipts reach.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Chosen by the sending browser: a resend with the same id is the same message.
    client_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (sender_id, client_id)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

-- How far each member has received and read a conversation (message ids, only ever growing).
CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delivered_up_to INTEGER NOT NULL DEFAULT 0,
    read_up_to INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members (user_id);
