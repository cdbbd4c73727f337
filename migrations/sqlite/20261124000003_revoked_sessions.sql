-- Sessions ended on the server (sign out): their tokens stop working at once, also when a copy
-- of the cookie is used elsewhere. Rows are kept until the token could have expired anyway.
CREATE TABLE revoked_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at);
