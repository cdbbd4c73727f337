-- Moderation of strangers: bans, automatic (shadow) restrictions, and the log of what each
-- moderator did. Principals are keys as `PrincipalId::key` writes them; addresses are keyed
-- hashes (`Strangers::address_tag`), never addresses. Times are UTC in RFC 3339 with
-- milliseconds, as SQLite's strftime below writes them, so they compare as text.

-- Who reported: the reporter's address hash, so many guest identities of one person count as
-- one person (automatic restriction counts distinct addresses).
ALTER TABLE stranger_reports ADD COLUMN reporter_address TEXT NOT NULL DEFAULT '';

-- Banned from strangers until `until`: the principal, and anyone from the same address.
CREATE TABLE stranger_bans (
    id INTEGER PRIMARY KEY,
    principal TEXT NOT NULL,
    address TEXT NOT NULL,
    until TEXT NOT NULL,
    -- The report it answered, and the moderator (a user id) who decided.
    report_id INTEGER,
    moderator INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX stranger_bans_principal ON stranger_bans (principal, until);
CREATE INDEX stranger_bans_address ON stranger_bans (address, until);

-- Reported by several people within an hour: still looking, never matched, until `until` or
-- until a moderator decides (dismiss lifts it, a ban replaces it).
CREATE TABLE stranger_restrictions (
    principal TEXT PRIMARY KEY,
    until TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Every moderator action: who (a user id; the name is read when shown), what, on which
-- report and principal, and the details (a ban's end).
CREATE TABLE moderation_log (
    id INTEGER PRIMARY KEY,
    moderator INTEGER NOT NULL,
    action TEXT NOT NULL,
    report_id INTEGER,
    principal TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
