-- Accounts: email + password and/or a linked Google identity.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- As the user typed it (trimmed); shown back to them.
    email TEXT NOT NULL,
    -- Lower-cased: emails are unique regardless of case.
    email_key TEXT NOT NULL UNIQUE,
    email_verified INTEGER NOT NULL DEFAULT 0,
    display_name TEXT NOT NULL,
    -- argon2id PHC string; NULL for accounts that only sign in with Google.
    password_hash TEXT,
    -- Bumped to end every session at once (password change, "sign out everywhere").
    token_version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- External identities (Google) linked to an account.
CREATE TABLE identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_user ON identities (user_id);
