//! Moderation of strangers, as moderators (`PARLOR_ADMIN_EMAILS`) see it: the reports, newest
//! first, and what they decide (dismiss, or ban for a chosen time), with the log of every
//! decision. The page is [`crate::strangers::moderation_page`]; the rules the server keeps
//! (bans, automatic restriction) are in `crate::server::moderation`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Reports per page.
pub const REPORTS_PAGE: i64 = 50;
/// Log entries per page.
pub const LOG_PAGE: i64 = 50;

/// The ban lengths a moderator chooses from: hours, and what the list says.
pub const BAN_CHOICES: [(u32, &str); 5] = [
    (1, "1 hour"),
    (24, "1 day"),
    (24 * 7, "1 week"),
    (24 * 30, "30 days"),
    (24 * 365, "1 year"),
];

/// One report as a moderator reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportView {
    pub id: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The reason as the list said it.
    pub reason: String,
    pub note: String,
    /// The last chat lines, oldest first: `(said by the reporter, text)`. Empty when the
    /// reporter did not attach them.
    pub lines: Vec<(bool, String)>,
    /// Who was reported: "Guest 1a2b3c4d" or "Ann <ann@example.com> (account 12)".
    pub reported: String,
    /// How many different people (by address) reported them, ever.
    pub reporters: i64,
    /// Their reports nobody decided on yet (this one included, if open).
    pub open_reports: i64,
    /// When their current ban ends (RFC 3339), if banned.
    pub banned_until: Option<String>,
    /// When their automatic restriction ends (RFC 3339), if restricted.
    pub restricted_until: Option<String>,
    /// `None` while open; "dismissed" or "banned" once decided.
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportsPage {
    pub reports: Vec<ReportView>,
    pub has_more: bool,
}

/// One line of the moderation log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: i64,
    pub created_at: String,
    /// The moderator's name, or "Automatic" for a restriction the server made.
    pub by: String,
    /// "dismissed", "banned", "lifted" or "restricted".
    pub action: String,
    pub report_id: Option<i64>,
    /// Who it was about (as in [`ReportView::reported`]).
    pub about: String,
    /// A ban's or restriction's end (RFC 3339), else empty.
    pub detail: String,
}

/// Reports newest first: only the open ones unless `all`; `before` a report id to page on.
#[server(endpoint = "moderation/reports")]
pub async fn moderation_reports(all: bool, before: Option<i64>) -> Result<ReportsPage, AppError> {
    crate::server::respond(imp::reports(all, before).await)
}

/// Decides a report needs nothing: it is closed; when it was the last open report on that
/// person, an automatic restriction of theirs ends too.
#[server(endpoint = "moderation/dismiss")]
pub async fn dismiss_report(report_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::dismiss(report_id).await)
}

/// Bans the reported person (and their address) from strangers for `hours` (one of
/// [`BAN_CHOICES`]): their match ends at once and they are told until when. Every open report
/// on them is closed. Returns the ban's end (RFC 3339).
#[server(endpoint = "moderation/ban")]
pub async fn ban_reported(report_id: i64, hours: u32) -> Result<String, AppError> {
    crate::server::respond(imp::ban(report_id, hours).await)
}

/// Ends the ban on the person report `report_id` is about (and on their address) now.
#[server(endpoint = "moderation/lift")]
pub async fn lift_ban(report_id: i64) -> Result<(), AppError> {
    crate::server::respond(imp::lift(report_id).await)
}

/// The moderation log, newest first; `before` an entry id to page on.
#[server(endpoint = "moderation/log")]
pub async fn moderation_log(before: Option<i64>) -> Result<Vec<LogEntry>, AppError> {
    crate::server::respond(imp::log(before).await)
}

#[cfg(feature = "ssr")]
mod imp {
    use super::*;
    use crate::server::{
        db::moderation::Dismissal, moderation::require_moderator, state::app_state, unavailable,
    };

    const NO_REPORT: &str = "There is no such report.";

    pub async fn reports(all: bool, before: Option<i64>) -> Result<ReportsPage, AppError> {
        require_moderator()?;
        let state = app_state()?;
        let mut reports = state
            .db
            .moderation_reports(all, before, REPORTS_PAGE + 1)
            .await
            .map_err(unavailable("reading reports"))?;
        let has_more = reports.len() > REPORTS_PAGE as usize;
        reports.truncate(REPORTS_PAGE as usize);
        Ok(ReportsPage { reports, has_more })
    }

    pub async fn dismiss(report_id: i64) -> Result<(), AppError> {
        let me = require_moderator()?;
        let state = app_state()?;
        let done = state
            .db
            .dismiss_report(report_id, me.id)
            .await
            .map_err(unavailable("dismissing a report"))?;
        let lifted = match done {
            Dismissal::NoSuchReport => return Err(AppError::NotFound(NO_REPORT.into())),
            // Decided already (twice, or by another moderator): done, and not counted again.
            Dismissal::AlreadyDecided => return Ok(()),
            Dismissal::Dismissed { lifted } => lifted,
        };
        tracing::info!(report = report_id, moderator = me.id, "report dismissed");
        state.metrics.moderation("dismissed");
        if let Some(who) = lifted {
            let order = crate::server::cluster::StrangersOrder::Shadow { who, on: false };
            crate::server::moderation::order_strangers(&state, order).await;
        }
        Ok(())
    }

    pub async fn ban(report_id: i64, hours: u32) -> Result<String, AppError> {
        let me = require_moderator()?;
        if !BAN_CHOICES.iter().any(|(h, _)| *h == hours) {
            return Err(AppError::invalid("hours", "Choose how long the ban lasts."));
        }
        let state = app_state()?;
        let ban = state
            .db
            .ban_reported(report_id, hours, me.id)
            .await
            .map_err(unavailable("banning"))?
            .ok_or_else(|| AppError::NotFound(NO_REPORT.into()))?;
        tracing::info!(
            report = report_id,
            moderator = me.id,
            hours,
            "stranger banned"
        );
        state.metrics.moderation("banned");
        let order = crate::server::cluster::StrangersOrder::Ban {
            who: ban.principal.clone(),
            address: ban.address.clone(),
            until: ban.until.clone(),
        };
        crate::server::moderation::order_strangers(&state, order).await;
        Ok(ban.until)
    }

    pub async fn lift(report_id: i64) -> Result<(), AppError> {
        let me = require_moderator()?;
        let state = app_state()?;
        match state
            .db
            .lift_ban(report_id, me.id)
            .await
            .map_err(unavailable("lifting a ban"))?
        {
            None => Err(AppError::NotFound(NO_REPORT.into())),
            Some(false) => Err(AppError::NotFound(
                "There is no running ban to lift for this report.".into(),
            )),
            Some(true) => {
                tracing::info!(report = report_id, moderator = me.id, "ban lifted");
                state.metrics.moderation("lifted");
                Ok(())
            }
        }
    }

    pub async fn log(before: Option<i64>) -> Result<Vec<LogEntry>, AppError> {
        require_moderator()?;
        let state = app_state()?;
        state
            .db
            .moderation_log(before, LOG_PAGE)
            .await
            .map_err(unavailable("reading the moderation log"))
    }
}
