//! What moderation keeps: bans (a principal and an address hash, until a time), automatic
//! restrictions, the reports as moderators read them, and the log of every decision. A
//! decision and its log line are written in one transaction.

use super::{Db, DbError, Flag};
use crate::strangers::{
    moderation::{LogEntry, ReportView},
    ReportReason,
};

/// The user id in a principal key (`u:12`), for joining `users` by its primary key.
const USER_OF: &str = "CASE WHEN substr({k}, 1, 2) = 'u:' THEN CAST(substr({k}, 3) AS BIGINT) END";

fn user_of(column: &str) -> String {
    USER_OF.replace("{k}", column)
}

/// Who report `id` is about: their principal key and address hash.
async fn reported(tx: &mut super::Tx, id: i64) -> Result<Option<(String, String)>, DbError> {
    sqlx::query_as("SELECT reported, reported_address FROM stranger_reports WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// A ban just made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The principal key (`u:…`/`g:…`).
    pub principal: String,
    /// The address hash it covers too.
    pub address: String,
    /// RFC 3339.
    pub until: String,
}

/// Whether someone may be matched with strangers now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// When their ban (or their address's) ends, if banned.
    pub banned_until: Option<String>,
    /// Restricted automatically: they look but are not matched.
    pub restricted: bool,
}

/// How a moderator sees a principal: a guest by the start of its id, an account by name and
/// email.
fn about(key: &str, name: Option<String>, email: Option<String>) -> String {
    match (key.split_once(':'), name, email) {
        (Some(("u", id)), Some(name), Some(email)) => format!("{name} <{email}> (account {id})"),
        (Some(("u", id)), _, _) => format!("Deleted account {id}"),
        (Some(("g", hex)), _, _) => format!("Guest {}", &hex[..hex.len().min(8)]),
        _ => key.to_string(),
    }
}

type ReportRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

type LogRow = (
    i64,
    String,
    i64,
    Option<String>,
    String,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// What dismissing a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dismissal {
    NoSuchReport,
    /// Someone decided on it already: nothing changed.
    AlreadyDecided,
    /// Dismissed now; `lifted`: the principal whose restriction ended with it.
    Dismissed {
        lifted: Option<String>,
    },
}

impl Db {
    /// Whether `principal` (or anyone on `address`) is banned, and whether they are restricted.
    pub async fn stranger_standing(
        &self,
        principal: &str,
        address: &str,
    ) -> Result<Standing, DbError> {
        let now = self.engine.now();
        let (banned_until, Flag(restricted)): (Option<String>, Flag) = sqlx::query_as(&format!(
            "SELECT (SELECT MAX(until) FROM stranger_bans \
                     WHERE (principal = $1 OR ($2 <> '' AND address = $2)) AND until > {now}), \
                    EXISTS (SELECT 1 FROM stranger_restrictions \
                            WHERE principal = $1 AND until > {now})"
        ))
        .bind(principal)
        .bind(address)
        .fetch_one(&self.pool)
        .await?;
        Ok(Standing {
            banned_until,
            restricted,
        })
    }

    /// Restricts `principal` for `hours` if at least `reporters` different people (by
    /// address) reported them within the last `window_hours` and nobody decided on those
    /// reports yet. Returns the restriction's end when this made one (not when one was
    /// already running), and logs it as automatic.
    pub async fn restrict_if_reported(
        &self,
        principal: &str,
        reporters: i64,
        window_hours: u32,
        hours: u32,
    ) -> Result<Option<String>, DbError> {
        let now = self.engine.now();
        let since = self.engine.hours_from_now("$3");
        let until = self.engine.hours_from_now("$4");
        let until: Option<(String,)> = sqlx::query_as(&format!(
            "INSERT INTO stranger_restrictions (principal, until) \
             SELECT $1, {until} \
             WHERE (SELECT COUNT(DISTINCT CASE WHEN reporter_address = '' THEN reporter \
                                               ELSE reporter_address END) \
                    FROM stranger_reports WHERE reported = $1 AND resolved_at IS NULL \
                    AND created_at > {since}) >= $2 \
             ON CONFLICT (principal) DO UPDATE \
               SET until = excluded.until, created_at = excluded.created_at \
               WHERE stranger_restrictions.until <= {now} \
             RETURNING until"
        ))
        .bind(principal)
        .bind(reporters)
        .bind(-i64::from(window_hours))
        .bind(i64::from(hours))
        .fetch_optional(&self.pool)
        .await?;
        let Some((until,)) = until else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO moderation_log (moderator, action, principal, detail) \
             VALUES (0, 'restricted', $1, $2)",
        )
        .bind(principal)
        .bind(&until)
        .execute(&self.pool)
        .await?;
        Ok(Some(until))
    }

    /// Reports newest first (only open ones unless `all`), below report id `before`.
    pub async fn moderation_reports(
        &self,
        all: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ReportView>, DbError> {
        let now = self.engine.now();
        let rows: Vec<ReportRow> = sqlx::query_as(&format!(
            "SELECT r.id, r.created_at, r.reason, r.note, r.lines, r.reported, \
                    u.display_name, u.email, \
                    (SELECT COUNT(DISTINCT CASE WHEN x.reporter_address = '' THEN x.reporter \
                                                ELSE x.reporter_address END) \
                     FROM stranger_reports x WHERE x.reported = r.reported), \
                    (SELECT COUNT(*) FROM stranger_reports x \
                     WHERE x.reported = r.reported AND x.resolved_at IS NULL), \
                    (SELECT MAX(b.until) FROM stranger_bans b \
                     WHERE (b.principal = r.reported \
                            OR (r.reported_address <> '' AND b.address = r.reported_address)) \
                       AND b.until > {now}), \
                    (SELECT s.until FROM stranger_restrictions s \
                     WHERE s.principal = r.reported AND s.until > {now}), \
                    r.resolution \
             FROM stranger_reports r LEFT JOIN users u ON u.id = {} \
             WHERE ($1 OR r.resolved_at IS NULL) AND ($2 IS NULL OR r.id < $2) \
             ORDER BY r.id DESC LIMIT $3",
            user_of("r.reported")
        ))
        .bind(all)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    created_at,
                    reason,
                    note,
                    lines,
                    reported,
                    name,
                    email,
                    reporters,
                    open_reports,
                    banned_until,
                    restricted_until,
                    resolution,
                )| ReportView {
                    id,
                    created_at,
                    reason: ReportReason::parse(&reason)
                        .map_or(reason.clone(), |r| r.label().to_string()),
                    note,
                    lines: serde_json::from_str(&lines).unwrap_or_default(),
                    reported: about(&reported, name, email),
                    reporters,
                    open_reports,
                    banned_until,
                    restricted_until,
                    resolution,
                },
            )
            .collect())
    }

    /// Closes report `id` as dismissed by `moderator` (if still open), and lifts the
    /// reported person's restriction when none of their reports stays open.
    pub async fn dismiss_report(&self, id: i64, moderator: i64) -> Result<Dismissal, DbError> {
        let now = self.engine.now();
        let mut tx = self.immediate().await?;
        let Some((reported,)): Option<(String,)> =
            sqlx::query_as("SELECT reported FROM stranger_reports WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(Dismissal::NoSuchReport);
        };
        let closed = sqlx::query(&format!(
            "UPDATE stranger_reports SET resolved_at = {now}, resolution = 'dismissed' \
             WHERE id = $1 AND resolved_at IS NULL"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 0 {
            // Decided already (by another moderator, or twice): nothing more to do.
            return Ok(Dismissal::AlreadyDecided);
        }
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM stranger_reports WHERE reported = $1 AND resolved_at IS NULL",
        )
        .bind(&reported)
        .fetch_one(&mut *tx)
        .await?;
        let lifted = open == 0
            && sqlx::query("DELETE FROM stranger_restrictions WHERE principal = $1")
                .bind(&reported)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        sqlx::query(
            "INSERT INTO moderation_log (moderator, action, report_id, principal) \
             VALUES ($1, 'dismissed', $2, $3)",
        )
        .bind(moderator)
        .bind(id)
        .bind(&reported)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Dismissal::Dismissed {
            lifted: lifted.then_some(reported),
        })
    }

    /// Bans the person report `id` is about, and their address, for `hours`; closes every
    /// open report on them and ends their restriction (the ban replaces it). `None`: no such
    /// report.
    pub async fn ban_reported(
        &self,
        id: i64,
        hours: u32,
        moderator: i64,
    ) -> Result<Option<Ban>, DbError> {
        let now = self.engine.now();
        let mut tx = self.immediate().await?;
        let Some((principal, address)) = reported(&mut tx, id).await? else {
            return Ok(None);
        };
        let until = self.engine.hours_from_now("$3");
        let (until,): (String,) = sqlx::query_as(&format!(
            "INSERT INTO stranger_bans (principal, address, until, report_id, moderator) \
             VALUES ($1, $2, {until}, $4, $5) \
             RETURNING until"
        ))
        .bind(&principal)
        .bind(&address)
        .bind(i64::from(hours))
        .bind(id)
        .bind(moderator)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE stranger_reports SET resolved_at = {now}, resolution = 'banned' \
             WHERE reported = $1 AND resolved_at IS NULL"
        ))
        .bind(&principal)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM stranger_restrictions WHERE principal = $1")
            .bind(&principal)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO moderation_log (moderator, action, report_id, principal, detail) \
             VALUES ($1, 'banned', $2, $3, $4)",
        )
        .bind(moderator)
        .bind(id)
        .bind(&principal)
        .bind(&until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Ban {
            principal,
            address,
            until,
        }))
    }

    /// Ends now every running ban on the person report `id` is about (and on their address),
    /// logged as `moderator`'s. `None`: no such report; `Some(false)`: nothing was banned.
    pub async fn lift_ban(&self, id: i64, moderator: i64) -> Result<Option<bool>, DbError> {
        let now = self.engine.now();
        let mut tx = self.immediate().await?;
        let Some((principal, address)) = reported(&mut tx, id).await? else {
            return Ok(None);
        };
        let lifted = sqlx::query(&format!(
            "UPDATE stranger_bans SET until = {now} \
             WHERE (principal = $1 OR ($2 <> '' AND address = $2)) AND until > {now}"
        ))
        .bind(&principal)
        .bind(&address)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if lifted == 0 {
            return Ok(Some(false));
        }
        sqlx::query(
            "INSERT INTO moderation_log (moderator, action, report_id, principal) \
             VALUES ($1, 'lifted', $2, $3)",
        )
        .bind(moderator)
        .bind(id)
        .bind(&principal)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// The log newest first, below entry id `before`.
    pub async fn moderation_log(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LogEntry>, DbError> {
        let rows: Vec<LogRow> = sqlx::query_as(&format!(
            "SELECT l.id, l.created_at, l.moderator, m.display_name, l.action, l.report_id, \
                    l.principal, u.display_name, u.email, l.detail \
             FROM moderation_log l \
             LEFT JOIN users m ON m.id = l.moderator \
             LEFT JOIN users u ON u.id = {} \
             WHERE ($1 IS NULL OR l.id < $1) ORDER BY l.id DESC LIMIT $2",
            user_of("l.principal")
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    created_at,
                    by,
                    by_name,
                    action,
                    report_id,
                    principal,
                    name,
                    email,
                    detail,
                )| {
                    LogEntry {
                        id,
                        created_at,
                        by: match (by, by_name) {
                            (0, _) => "Automatic".into(),
                            (_, Some(name)) => name,
                            (id, None) => format!("Deleted account {id}"),
                        },
                        action,
                        report_id,
                        about: about(&principal, name, email),
                        detail,
                    }
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{
        auth::{GuestId, PrincipalId},
        strangers::ReportDraft,
    };

    fn report(reporter: u128, reporter_address: &str, reported: PrincipalId) -> ReportDraft {
        ReportDraft {
            reporter: PrincipalId::Guest(GuestId(reporter)),
            reporter_address: reporter_address.into(),
            reported,
            reported_address: "feed".into(),
            reason: ReportReason::Harassment,
            note: "rude".into(),
            lines: vec![(true, "hi".into()), (false, "<b>go away</b>".into())],
        }
    }

    #[tokio::test]
    async fn three_addresses_within_the_hour_restrict_once_and_a_dismissal_lifts_it() {
        let (_dir, db) = Db::for_tests().await;
        let eve = PrincipalId::Guest(GuestId(7));
        let key = eve.key();
        // One person with three guest identities is one reporter.
        for n in 0..3 {
            db.stranger_report(&report(n, "aaaa", eve)).await.unwrap();
            assert_eq!(db.restrict_if_reported(&key, 3, 1, 24).await.unwrap(), None);
        }
        db.stranger_report(&report(10, "bbbb", eve)).await.unwrap();
        assert_eq!(db.restrict_if_reported(&key, 3, 1, 24).await.unwrap(), None);
        let last = db.stranger_report(&report(11, "cccc", eve)).await.unwrap();
        let until = db.restrict_if_reported(&key, 3, 1, 24).await.unwrap();
        assert!(until.is_some());
        // Already restricted: not again.
        assert_eq!(db.restrict_if_reported(&key, 3, 1, 24).await.unwrap(), None);
        let standing = db.stranger_standing(&key, "feed").await.unwrap();
        assert!(standing.restricted && standing.banned_until.is_none());

        let reports = db.moderation_reports(false, None, 10).await.unwrap();
        assert_eq!(reports.len(), 5);
        assert_eq!(reports[0].id, last, "newest first");
        assert_eq!(reports[0].reporters, 3);
        assert_eq!(reports[0].open_reports, 5);
        assert_eq!(reports[0].reason, "Harassment or bullying");
        assert_eq!(reports[0].lines[1], (false, "<b>go away</b>".to_string()));
        assert_eq!(reports[0].restricted_until, until);
        assert!(reports[0].reported.starts_with("Guest 00000000"));
        let older = db
            .moderation_reports(false, Some(reports[1].id), 10)
            .await
            .unwrap();
        assert_eq!(older.len(), 3);

        // Dismissing all but one keeps the restriction; the last lifts it.
        for r in &reports[1..] {
            assert_eq!(
                db.dismiss_report(r.id, 1).await.unwrap(),
                Dismissal::Dismissed { lifted: None }
            );
        }
        assert_eq!(
            db.dismiss_report(last, 1).await.unwrap(),
            Dismissal::Dismissed {
                lifted: Some(key.clone())
            }
        );
        assert_eq!(
            db.dismiss_report(last, 1).await.unwrap(),
            Dismissal::AlreadyDecided
        );
        assert_eq!(
            db.dismiss_report(9999, 1).await.unwrap(),
            Dismissal::NoSuchReport
        );
        assert!(!db.stranger_standing(&key, "feed").await.unwrap().restricted);
        assert!(db
            .moderation_reports(false, None, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            db.moderation_reports(true, None, 10).await.unwrap().len(),
            5
        );
        let log = db.moderation_log(None, 100).await.unwrap();
        assert_eq!(log.len(), 6);
        assert_eq!(log[0].action, "dismissed");
        assert_eq!(log[5].action, "restricted");
        assert_eq!(log[5].by, "Automatic");
    }

    #[tokio::test]
    async fn a_ban_covers_the_principal_and_the_address_and_closes_their_reports() {
        let (_dir, db) = Db::for_tests().await;
        let eve = PrincipalId::Guest(GuestId(7));
        let first = db.stranger_report(&report(1, "aaaa", eve)).await.unwrap();
        db.stranger_report(&report(2, "bbbb", eve)).await.unwrap();
        let other = db
            .stranger_report(&report(3, "cccc", PrincipalId::Guest(GuestId(8))))
            .await
            .unwrap();
        let ban = db.ban_reported(first, 24, 5).await.unwrap().unwrap();
        assert_eq!(ban.principal, eve.key());
        assert_eq!(ban.address, "feed");
        assert!(ban.until.ends_with('Z'), "{}", ban.until);
        assert_eq!(
            db.stranger_standing(&eve.key(), "other")
                .await
                .unwrap()
                .banned_until,
            Some(ban.until.clone())
        );
        // Someone else on the same address is covered; elsewhere nobody is.
        let other_key = PrincipalId::Guest(GuestId(99)).key();
        assert!(db
            .stranger_standing(&other_key, "feed")
            .await
            .unwrap()
            .banned_until
            .is_some());
        assert_eq!(
            db.stranger_standing(&other_key, "").await.unwrap(),
            Standing::default()
        );
        let open = db.moderation_reports(false, None, 10).await.unwrap();
        assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), [other]);
        assert!(db.ban_reported(12345, 24, 5).await.unwrap().is_none());
        // Lifted early: nobody on that principal or address is banned any more.
        assert_eq!(db.lift_ban(first, 5).await.unwrap(), Some(true));
        assert_eq!(db.lift_ban(first, 5).await.unwrap(), Some(false));
        assert_eq!(db.lift_ban(12345, 5).await.unwrap(), None);
        assert_eq!(
            db.stranger_standing(&other_key, "feed").await.unwrap(),
            Standing::default()
        );
        assert_eq!(
            db.moderation_log(None, 10).await.unwrap()[0].action,
            "lifted"
        );
        let ban = db.ban_reported(first, 1, 5).await.unwrap().unwrap();
        assert_eq!(
            db.stranger_standing(&eve.key(), "")
                .await
                .unwrap()
                .banned_until,
            Some(ban.until.clone())
        );
        let log = db.moderation_log(None, 10).await.unwrap();
        assert_eq!(log[0].action, "banned");
        assert_eq!(log[0].detail, ban.until);
        assert_eq!(log[0].by, "Deleted account 5");
    }
}
