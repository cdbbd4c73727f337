//! What strangers leave in the database: blocks between principals (kept, so a block holds
//! on every later visit) and reports for moderators. Match and chat themselves are never
//! stored.

use std::collections::HashSet;

use super::{Db, DbError};
use crate::server::{auth::PrincipalId, strangers::ReportDraft};

/// The most blocks read for one person (the newest): a bound on what one start costs.
const MAX_BLOCKS_READ: i64 = 10_000;

impl Db {
    /// Everyone `who` must never be matched with: whom they blocked and who blocked them,
    /// as strangers, and for a user also as a user (a block between friends holds here too).
    pub async fn stranger_avoid(&self, who: PrincipalId) -> Result<HashSet<PrincipalId>, DbError> {
        let key = who.key();
        let keys: Vec<(String,)> = sqlx::query_as(
            "SELECT blocked FROM stranger_blocks WHERE blocker = $1 \
             UNION SELECT blocker FROM stranger_blocks WHERE blocked = $1 LIMIT $2",
        )
        .bind(&key)
        .bind(MAX_BLOCKS_READ)
        .fetch_all(&self.pool)
        .await?;
        let mut avoid: HashSet<PrincipalId> = keys
            .iter()
            .filter_map(|(k,)| PrincipalId::from_key(k))
            .collect();
        if let PrincipalId::User(id) = who {
            let users: Vec<(i64,)> = sqlx::query_as(
                "SELECT blocked FROM blocks WHERE blocker = $1 \
                 UNION SELECT blocker FROM blocks WHERE blocked = $1 LIMIT $2",
            )
            .bind(id)
            .bind(MAX_BLOCKS_READ)
            .fetch_all(&self.pool)
            .await?;
            avoid.extend(users.into_iter().map(|(u,)| PrincipalId::User(u)));
        }
        Ok(avoid)
    }

    /// `blocker` never meets `blocked` again.
    pub async fn stranger_block(
        &self,
        blocker: PrincipalId,
        blocked: PrincipalId,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO stranger_blocks (blocker, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(blocker.key())
        .bind(blocked.key())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a report; its id.
    pub async fn stranger_report(&self, report: &ReportDraft) -> Result<i64, DbError> {
        let lines = serde_json::to_string(&report.lines).unwrap_or_else(|_| "[]".into());
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO stranger_reports \
             (reporter, reporter_address, reported, reported_address, reason, note, lines) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(report.reporter.key())
        .bind(&report.reporter_address)
        .bind(report.reported.key())
        .bind(&report.reported_address)
        .bind(report.reason.as_str())
        .bind(&report.note)
        .bind(lines)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{server::auth::GuestId, strangers::ReportReason};

    #[tokio::test]
    async fn blocks_hold_both_ways_and_reports_are_kept() {
        let (_dir, db) = Db::for_tests().await;
        let (ann, eve) = (
            PrincipalId::Guest(GuestId(1)),
            PrincipalId::Guest(GuestId(2)),
        );
        let bob = PrincipalId::User(9);
        db.stranger_block(ann, eve).await.unwrap();
        db.stranger_block(ann, eve).await.unwrap();
        db.stranger_block(bob, ann).await.unwrap();
        assert_eq!(
            db.stranger_avoid(ann).await.unwrap(),
            [eve, bob].into_iter().collect()
        );
        assert_eq!(
            db.stranger_avoid(eve).await.unwrap(),
            [ann].into_iter().collect()
        );
        assert!(db
            .stranger_avoid(PrincipalId::User(3))
            .await
            .unwrap()
            .is_empty());

        let report = ReportDraft {
            reporter: ann,
            reporter_address: "0123".into(),
            reported: eve,
            reported_address: "abcd".into(),
            reason: ReportReason::Spam,
            note: "<b>buy</b>".into(),
            lines: vec![(false, "buy now".into())],
        };
        let first = db.stranger_report(&report).await.unwrap();
        assert!(db.stranger_report(&report).await.unwrap() > first);
        let (lines, reason): (String, String) =
            sqlx::query_as("SELECT lines, reason FROM stranger_reports WHERE id = $1")
                .bind(first)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(lines, r#"[[false,"buy now"]]"#);
        assert_eq!(reason, "spam");
    }
}
