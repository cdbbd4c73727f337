//! `/strangers`: the rules and the "18 or older" checkbox, interests, text-only mode, Start;
//! then "Looking for someone…" with Stop, and what became of the last match (with Look
//! again and Block). A match itself runs in the call window (`crate::calls`), which shows
//! Next, Report, Block and Stop for strangers. Anyone may use it: the page makes the browser
//! a guest unless it is signed in, and holds the socket open while it is shown.

use leptos::prelude::*;
use leptos_meta::Title;

use super::{normalize_interests, MatchEnd, MAX_INTERESTS};
use crate::{
    calls::use_call,
    components::form::Check,
    protocol::{ClientMsg, ErrorCode, ServerMsg},
    realtime::{use_realtime, ConnStatus},
};

/// Where this page stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Not looking (first visit, or stopped).
    Idle,
    Looking {
        anyone: bool,
    },
    Matched,
    /// A match ended and nobody looks again by themselves: why.
    Ended(MatchEnd),
}

#[component]
pub fn StrangersPage() -> impl IntoView {
    let realtime = use_realtime();
    let call = use_call();
    let stage = RwSignal::new(Stage::Idle);
    let accepted = RwSignal::new(false);
    let interests = RwSignal::new(String::new());
    let text_only = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let ready = RwSignal::new(false);

    // A guest unless signed in; the socket stays open while this page is shown.
    let held = StoredValue::new(false);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            match crate::guests::start_guest().await {
                Ok(_) => {
                    held.set_value(true);
                    realtime.hold();
                    ready.set(true);
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    });
    on_cleanup(move || {
        if held.get_value() {
            realtime.send(&ClientMsg::StrangerStop);
            realtime.release();
        }
    });

    realtime.subscribe(move |message| match message {
        ServerMsg::StrangerLooking { anyone } => {
            stage.set(Stage::Looking { anyone: *anyone });
        }
        ServerMsg::StrangerMatched { .. } => {
            problem.set(None);
            notice.set(None);
            stage.set(Stage::Matched);
        }
        ServerMsg::StrangerEnded { reason } => match reason {
            // The server looks again for us: a `stranger_looking` follows.
            MatchEnd::Next => notice.set(Some(reason.text().into())),
            _ => stage.set(Stage::Ended(*reason)),
        },
        ServerMsg::StrangerBanned { until } => {
            stage.set(Stage::Idle);
            notice.set(None);
            problem.set(Some(format!(
                "You are banned from talking to strangers until {}.",
                crate::components::time::short(until)
            )));
        }
        ServerMsg::StrangerBlocked => notice.set(Some(
            "Blocked: you will never be matched with them again.".into(),
        )),
        ServerMsg::Error {
            code,
            message,
            client_id: None,
        } if *code != ErrorCode::SignInRequired => {
            if stage.get_untracked() == Stage::Matched {
                call.engine.chat_error.set(Some(message.clone()));
            } else {
                problem.set(Some(message.clone()));
            }
        }
        _ => {}
    });

    let start = move || {
        let typed = interests.get_untracked();
        let list = match normalize_interests(&[typed.as_str()]) {
            Ok(list) => list,
            Err(why) => return problem.set(Some(why)),
        };
        if !accepted.get_untracked() {
            return problem.set(Some(
                "Confirm that you are 18 or older and accept the rules first.".into(),
            ));
        }
        problem.set(None);
        notice.set(None);
        let sent = realtime.send(&ClientMsg::StrangerStart {
            interests: list,
            text_only: text_only.get_untracked(),
            accept_rules: true,
        });
        if !sent {
            problem.set(Some(
                "Not connected right now: try again in a moment.".into(),
            ));
        }
    };
    let stop = move || {
        realtime.send(&ClientMsg::StrangerStop);
        stage.set(Stage::Idle);
    };
    let looking = move || matches!(stage.get(), Stage::Looking { .. });
    let connected = move || ready.get() && realtime.status.get() == ConnStatus::Online;

    let status = move || match stage.get() {
        Stage::Idle => String::new(),
        Stage::Looking { anyone: false } => {
            let typed = interests.get();
            match normalize_interests(&[typed.as_str()]) {
                Ok(list) if !list.is_empty() => {
                    format!("Looking for someone who likes {}…", list.join(", "))
                }
                _ => "Looking for someone…".into(),
            }
        }
        Stage::Looking { anyone: true } if !interests.with(|i| i.trim().is_empty()) => {
            "Nobody shares your interests right now: looking for anyone…".into()
        }
        Stage::Looking { anyone: true } => "Looking for someone…".into(),
        Stage::Matched => "Talking to a stranger.".into(),
        Stage::Ended(reason) => reason.text().into(),
    };

    view! {
        <Title text="Talk to a stranger" />
        <section class="strangers" aria-labelledby="strangers-title">
            <h1 id="strangers-title">"Talk to a stranger"</h1>
            <p class="lead">
                "Meet someone new at random. Nobody sees your name or account, and calls go through our relay, so the stranger never learns your address."
            </p>
            <h2>"The rules"</h2>
            <ul class="rules">
                <li>"You must be 18 or older."</li>
                <li>"No nudity, sexual content, harassment, hate or threats."</li>
                <li>"No spam or advertising."</li>
                <li>"Press Next to move on, Report anyone who breaks the rules, Block anyone you never want to meet again."</li>
            </ul>
            <form
                class="stranger-form"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    start();
                }
            >
                <Check checked=accepted label="I am 18 or older and accept the rules" />
                <label for="strangers-interests">
                    {format!("Interests (optional, up to {MAX_INTERESTS}, separated by commas)")}
                </label>
                <input
                    id="strangers-interests"
                    autocomplete="off"
                    placeholder="chess, jazz, hiking"
                    prop:value=move || interests.get()
                    on:input=move |ev| interests.set(event_target_value(&ev))
                />
                <Check checked=text_only label="Text only (no camera or microphone)" />
                <super::preview::Preview active=Signal::derive(move || {
                    !text_only.get() && stage.get() != Stage::Matched
                }) />
                <p class="form-actions">
                    <Show
                        when=looking
                        fallback=move || view! {
                            <button type="submit" class="primary" disabled=move || !connected() || !accepted.get()>
                                {move || if matches!(stage.get(), Stage::Ended(_)) { "Look again" } else { "Start" }}
                            </button>
                        }
                    >
                        <button type="button" on:click=move |_| stop()>"Stop"</button>
                    </Show>
                    <Show when=move || matches!(stage.get(), Stage::Ended(_))>
                        " "
                        <button type="button" on:click=move |_| {
                            realtime.send(&ClientMsg::StrangerBlock);
                        }>"Block the last stranger"</button>
                    </Show>
                </p>
                <p class="form-error" role="alert" data-testid="stranger-error">{move || problem.get()}</p>
            </form>
            <p class="stranger-status" role="status" aria-live="polite" data-testid="stranger-status">
                {status}
            </p>
            <p class="muted" role="status" data-testid="stranger-notice">{move || notice.get()}</p>
        </section>
    }
}
