//! Who moderates (the accounts whose email is in `PARLOR_ADMIN_EMAILS`) and the rule that
//! restricts someone by itself: reports from [`AUTO_RESTRICT_REPORTERS`] different people
//! (counted by address, so one person's many guest identities count once) within
//! [`AUTO_RESTRICT_WINDOW_HOURS`] restrict them for [`AUTO_RESTRICT_HOURS`]: they keep
//! looking but are never matched, until a moderator decides. Bans and the log are in
//! `db::moderation`; the pages' functions in `crate::strangers::moderation`.

use std::collections::HashSet;

use super::{
    auth::{require_user, PrincipalId, SessionUser},
    calls::carry_out,
    cluster::StrangersOrder,
    state::{app_state, AppState},
};
use crate::error::AppError;

/// Different reporters within the window that restrict someone.
pub const AUTO_RESTRICT_REPORTERS: i64 = 3;
/// The window those reports must fall in (hours).
pub const AUTO_RESTRICT_WINDOW_HOURS: u32 = 1;
/// How long the restriction lasts unless a moderator decides sooner (hours).
pub const AUTO_RESTRICT_HOURS: u32 = 24;

/// The moderators' emails, compared without regard to case.
#[derive(Debug, Clone, Default)]
pub struct Moderators(HashSet<String>);

impl Moderators {
    pub fn new<S: AsRef<str>>(emails: impl IntoIterator<Item = S>) -> Self {
        Self(
            emails
                .into_iter()
                .map(|e| e.as_ref().trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
        )
    }

    pub fn includes(&self, email: &str) -> bool {
        self.0.contains(&email.trim().to_lowercase())
    }
}

/// The signed-in moderator, or `Unauthorized` (nobody signed in) / `Forbidden` (not one).
pub fn require_moderator() -> Result<SessionUser, AppError> {
    let me = require_user()?;
    if app_state()?.moderators.includes(&me.email) {
        Ok(me)
    } else {
        Err(AppError::Forbidden(
            "Only moderators can see and decide reports.".into(),
        ))
    }
}

/// After a report on `reported` was stored: restricts them if enough different people
/// reported them lately (in memory too, so a search running now stays unmatched).
pub async fn after_report(state: &AppState, reported: PrincipalId) {
    match state
        .db
        .restrict_if_reported(
            &reported.key(),
            AUTO_RESTRICT_REPORTERS,
            AUTO_RESTRICT_WINDOW_HOURS,
            AUTO_RESTRICT_HOURS,
        )
        .await
    {
        Ok(Some(until)) => {
            tracing::warn!(%until, "a stranger was restricted after reports from several people");
            state.metrics.moderation("restricted");
            order_strangers(
                state,
                StrangersOrder::Shadow {
                    who: reported.key(),
                    on: true,
                },
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "checking for an automatic restriction failed"),
    }
}

/// Carries out a moderation decision on the strangers' queue and matches: here, or on the
/// instance that runs strangers (several instances).
pub async fn order_strangers(state: &AppState, order: StrangersOrder) {
    if let Some(cluster) = &state.cluster {
        if cluster.strangers_leader() != state.hub.instance() {
            if !cluster.forward_order(order).await {
                tracing::warn!("the instance running strangers did not take a moderation decision (stored all the same)");
            }
            return;
        }
    }
    apply_order(state, order).await;
}

/// [`order_strangers`], here.
pub async fn apply_order(state: &AppState, order: StrangersOrder) {
    let effects = match order {
        StrangersOrder::Shadow { who, on } => {
            let Some(who) = PrincipalId::from_key(&who) else {
                return;
            };
            let alive = state.reachable();
            state
                .strangers
                .set_shadow(who, on, state.calls.as_ref(), &alive)
        }
        StrangersOrder::Ban {
            who,
            address,
            until,
        } => {
            let Some(who) = PrincipalId::from_key(&who) else {
                return;
            };
            state
                .strangers
                .ban(who, &address, &until, state.calls.as_ref())
        }
    };
    carry_out(state, effects).await;
}
