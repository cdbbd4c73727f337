//! `/moderation`: the reports on strangers, newest first (open ones, or all), each with its
//! reason, note, attached chat lines and how many different people reported that person;
//! Dismiss, or Ban for a chosen time; and the log of every decision. Moderators only (the
//! menu shows the link to them; the server refuses everyone else).

use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::components::Redirect;

use super::moderation::{
    ban_reported, dismiss_report, lift_ban, moderation_log, moderation_reports, LogEntry,
    ReportView, BAN_CHOICES,
};
use crate::{
    accounts::session::use_auth,
    components::{form::Check, time},
};

/// The page's state, shared by its parts.
#[derive(Clone, Copy)]
struct Moderation {
    reports: RwSignal<Option<Vec<ReportView>>>,
    has_more: RwSignal<bool>,
    all: RwSignal<bool>,
    log: RwSignal<Vec<LogEntry>>,
    error: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
}

impl Moderation {
    /// Loads the first page of reports (or appends the next one) and the log.
    fn load(self, more: bool) {
        let before = more
            .then(|| {
                self.reports
                    .with_untracked(|r| r.as_ref().and_then(|r| r.last().map(|r| r.id)))
            })
            .flatten();
        let all = self.all.get_untracked();
        spawn_local(async move {
            match moderation_reports(all, before).await {
                Ok(page) => {
                    self.has_more.set(page.has_more);
                    if more {
                        self.reports
                            .update(|r| r.get_or_insert_with(Vec::new).extend(page.reports));
                    } else {
                        self.reports.set(Some(page.reports));
                    }
                }
                Err(e) => self.error.set(Some(e.to_string())),
            }
            match moderation_log(None).await {
                Ok(log) => self.log.set(log),
                Err(e) => self.error.set(Some(e.to_string())),
            }
        });
    }

    fn dismiss(self, id: i64) {
        self.error.set(None);
        spawn_local(async move {
            match dismiss_report(id).await {
                Ok(()) => self.notice.set(Some(format!("Report {id} dismissed."))),
                Err(e) => self.error.set(Some(e.to_string())),
            }
            self.load(false);
        });
    }

    fn lift(self, id: i64) {
        self.error.set(None);
        spawn_local(async move {
            match lift_ban(id).await {
                Ok(()) => self.notice.set(Some(format!("Ban lifted (report {id})."))),
                Err(e) => self.error.set(Some(e.to_string())),
            }
            self.load(false);
        });
    }

    fn ban(self, id: i64, hours: u32) {
        self.error.set(None);
        spawn_local(async move {
            match ban_reported(id, hours).await {
                Ok(until) => self.notice.set(Some(format!(
                    "Banned until {} (report {id}).",
                    time::short(&until)
                ))),
                Err(e) => self.error.set(Some(e.to_string())),
            }
            self.load(false);
        });
    }
}

#[component]
pub fn ModerationPage() -> impl IntoView {
    let auth = use_auth();
    let state = Moderation {
        reports: RwSignal::new(None),
        has_more: RwSignal::new(false),
        all: RwSignal::new(false),
        log: RwSignal::new(Vec::new()),
        error: RwSignal::new(None),
        notice: RwSignal::new(None),
    };
    Effect::new(move |_| {
        state.all.track();
        if auth.session.with(|s| s.user.is_some()) {
            state.load(false);
        }
    });

    view! {
        <Title text="Moderation" />
        <section class="page moderation" aria-labelledby="moderation-title">
            <h1 id="moderation-title">"Moderation"</h1>
            <Show when=move || auth.session.with(|s| s.user.is_none())>
                <Redirect path="/signin" />
            </Show>
            <p class="form-error" role="alert" data-testid="moderation-error">
                {move || state.error.get()}
            </p>
            <p class="notice" role="status" data-testid="moderation-notice">
                {move || state.notice.get()}
            </p>
            <section class="card" aria-labelledby="reports-title">
                <h2 id="reports-title">"Reports on strangers"</h2>
                <Check checked=state.all label="Show decided reports too" />
                {move || match state.reports.get() {
                    None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                    Some(reports) if reports.is_empty() => {
                        view! { <p class="muted">"No reports to decide."</p> }.into_any()
                    }
                    Some(reports) => view! {
                        <ol class="reports" data-testid="reports">
                            {reports
                                .into_iter()
                                .map(|report| view! { <Report state report /> })
                                .collect_view()}
                        </ol>
                    }
                        .into_any(),
                }}
                <Show when=move || state.has_more.get()>
                    <button type="button" on:click=move |_| state.load(true)>
                        "Older reports"
                    </button>
                </Show>
            </section>
            <section class="card" aria-labelledby="log-title">
                <h2 id="log-title">"What moderators did"</h2>
                {move || {
                    let log = state.log.get();
                    if log.is_empty() {
                        return view! { <p class="muted">"Nothing yet."</p> }.into_any();
                    }
                    view! {
                        <ul class="moderation-log" data-testid="moderation-log">
                            {log.into_iter().map(|entry| view! { <LogLine entry /> }).collect_view()}
                        </ul>
                    }
                        .into_any()
                }}
            </section>
        </section>
    }
}

#[component]
fn Report(state: Moderation, report: ReportView) -> impl IntoView {
    let id = report.id;
    let hours = RwSignal::new(BAN_CHOICES[1].0);
    let select_id = format!("ban-length-{id}");
    let people = match report.reporters {
        1 => "1 person".to_string(),
        n => format!("{n} people"),
    };
    let standing = match (&report.banned_until, &report.restricted_until) {
        (Some(until), _) => format!("Banned until {}.", time::short(until)),
        (None, Some(until)) => format!(
            "Restricted automatically until {}: they look but are not matched.",
            time::short(until)
        ),
        _ => String::new(),
    };
    let open = report.resolution.is_none();
    let banned = report.banned_until.is_some();
    view! {
        <li class="report" data-testid="report">
            <h3>
                {format!("Report {id} · {}", report.reason)}
                " "
                <span class="muted">{time::ago(&report.created_at)}</span>
            </h3>
            <p data-testid="report-about">
                {format!(
                    "About {} · reported by {people} · {} open report{}",
                    report.reported,
                    report.open_reports,
                    if report.open_reports == 1 { "" } else { "s" },
                )}
            </p>
            <Show when={
                let standing = standing.clone();
                move || !standing.is_empty()
            }>
                <p class="notice">{standing.clone()}</p>
            </Show>
            <Show when={
                let empty = report.note.is_empty();
                move || !empty
            }>
                <blockquote class="report-note">{report.note.clone()}</blockquote>
            </Show>
            {(!report.lines.is_empty())
                .then(|| view! {
                    <ol class="report-lines" aria-label="The last chat lines">
                        {report
                            .lines
                            .iter()
                            .map(|(by_reporter, text)| {
                                let who = if *by_reporter { "Reporter" } else { "Reported" };
                                view! {
                                    <li>
                                        <strong>{who}": "</strong>
                                        {text.clone()}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ol>
                })}
            {match report.resolution.clone() {
                Some(resolution) => view! {
                    <p class="muted">{format!("Decided: {resolution}.")}</p>
                }
                    .into_any(),
                None => ().into_any(),
            }}
            <div class="report-actions">
                <Show when=move || open>
                    <button type="button" on:click=move |_| state.dismiss(id)>
                        "Dismiss"
                    </button>
                </Show>
                <Show when=move || banned>
                    <button type="button" on:click=move |_| state.lift(id)>
                        "Lift the ban"
                    </button>
                </Show>
                <label for=select_id.clone()>"Ban for"</label>
                <select
                    id=select_id
                    on:change=move |ev| {
                        if let Ok(h) = event_target_value(&ev).parse() {
                            hours.set(h);
                        }
                    }
                >
                    {BAN_CHOICES
                        .iter()
                        .map(|(h, label)| {
                            view! {
                                <option value=h.to_string() selected=*h == hours.get_untracked()>
                                    {*label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <button type="button" class="danger" on:click=move |_| state.ban(id, hours.get_untracked())>
                    "Ban"
                </button>
            </div>
        </li>
    }
}

#[component]
fn LogLine(entry: LogEntry) -> impl IntoView {
    let what = match entry.action.as_str() {
        "banned" => format!(
            "banned {} until {}",
            entry.about,
            time::short(&entry.detail)
        ),
        "restricted" => format!(
            "restricted {} until {} (reported by several people)",
            entry.about,
            time::short(&entry.detail)
        ),
        "dismissed" => format!("dismissed a report on {}", entry.about),
        "lifted" => format!("lifted the ban on {}", entry.about),
        other => format!("{other} {}", entry.about),
    };
    let report = entry
        .report_id
        .map(|id| format!(" (report {id})"))
        .unwrap_or_default();
    view! {
        <li>
            <span class="muted">{time::short(&entry.created_at)}</span>
            " "
            <strong>{entry.by}</strong>
            " "
            {what}
            {report}
        </li>
    }
}
