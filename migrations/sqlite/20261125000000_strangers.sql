-- Strangers: blocks and reports between principals (`u:<user id>` or `g:<guest id>`, as
-- `PrincipalId::key` writes them). Guests have no row anywhere else, so these are plain keys.

-- `blocker` never wants to be matched with `blocked` again.
CREATE TABLE stranger_blocks (
    blocker TEXT NOT NULL,
    blocked TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);
CREATE INDEX stranger_blocks_blocked ON stranger_blocks (blocked);

-- A report on a stranger. `reported_address` is a keyed hash of their address (never the
-- address); `lines` the match's last chat lines as JSON `[[by_reporter, text], ...]`, only
-- when the reporter agreed to attach them. Moderators resolve reports.
CREATE TABLE stranger_reports (
    id INTEGER PRIMARY KEY,
    reporter TEXT NOT NULL,
    reported TEXT NOT NULL,
    reported_address TEXT NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    lines TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    resolved_at TEXT,
    resolution TEXT
);
CREATE INDEX stranger_reports_open ON stranger_reports (resolved_at, id);
CREATE INDEX stranger_reports_reported ON stranger_reports (reported, created_at);
