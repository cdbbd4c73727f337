//! `/code` and `/code/new`: make a code and show it (grouped digits, countdown, copy, link,
//! QR code) until someone joins; or type one (or open a link) and join. The call itself is
//! the call window every way to meet shares; this page shows what happens around it.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::calls::{use_call, CallUi};

/// Where this tab's code stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Nothing yet: make a code, or join with one.
    Start,
    /// Asking the server for a code, or redeeming one.
    Asking,
    /// The creator waits for someone to join (the code is shown).
    Waiting,
    /// Both browsers are there and check that they share the code.
    Checking,
    /// In the call (the call window is open).
    Call,
    /// Over: why, in words (an error, the call's end), with a way to start again.
    Over { message: String, error: bool },
}

/// The code the creator shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    pub grouped: String,
    pub link: String,
    /// When the code stops working (ms since the epoch).
    pub expires_ms: f64,
    /// The link's QR code: its width in modules and the SVG path of its dark modules.
    pub qr: Option<(usize, String)>,
}

/// The page's state, shared with the browser-side room logic.
#[derive(Clone, Copy)]
pub struct CodeUi {
    pub stage: RwSignal<Stage>,
    pub shown: RwSignal<Option<Shown>>,
    /// The join field and its error.
    pub draft: RwSignal<String>,
    pub join_error: RwSignal<Option<String>>,
    /// Now, ticking each second while a code is shown (ms since the epoch).
    pub now: RwSignal<f64>,
    /// "Copied" after the copy buttons.
    pub copied: RwSignal<Option<&'static str>>,
    /// The call window the call opens in.
    pub call: CallUi,
}

impl CodeUi {
    fn new(call: CallUi) -> Self {
        Self {
            call,
            stage: RwSignal::new(Stage::Start),
            shown: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            join_error: RwSignal::new(None),
            now: RwSignal::new(0.0),
            copied: RwSignal::new(None),
        }
    }

    /// Ends with a message and a way to start again.
    pub fn over(self, message: impl Into<String>, error: bool) {
        self.shown.set(None);
        self.stage.set(Stage::Over {
            message: message.into(),
            error,
        });
    }
}

/// `m:ss` left until `expires_ms`.
fn remaining(expires_ms: f64, now: f64) -> String {
    let secs = ((expires_ms - now) / 1000.0).ceil().max(0.0) as u64;
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[component]
pub fn CodePage(
    /// `/code/new`: make a code as soon as the page runs.
    #[prop(optional)]
    create: bool,
) -> impl IntoView {
    let ui = CodeUi::new(use_call());
    #[cfg(feature = "hydrate")]
    super::room::mount(ui, create);
    #[cfg(not(feature = "hydrate"))]
    let _ = create;
    let stage = move || ui.stage.get();
    view! {
        <Title text="Meet with a code" />
        <section class="code-page narrow" aria-labelledby="code-title">
            <h1 id="code-title">"Meet with a code"</h1>
            {move || match stage() {
                Stage::Start => view! { <Start ui /> }.into_any(),
                Stage::Asking => view! { <p class="muted" role="status">"One moment…"</p> }.into_any(),
                Stage::Waiting => view! { <Waiting ui /> }.into_any(),
                Stage::Checking => view! {
                    <p role="status" data-testid="code-status">"Connecting: checking that you both have the same code…"</p>
                    <p><button type="button" on:click=move |_| leave(ui)>"Cancel"</button></p>
                }
                    .into_any(),
                Stage::Call => view! {
                    <p role="status" data-testid="code-status">"In a call."</p>
                }
                    .into_any(),
                Stage::Over { message, error } => view! {
                    <p class:form-error=error class:notice=!error role="alert" data-testid="code-status">{message}</p>
                    <Start ui />
                }
                    .into_any(),
            }}
            <p class="muted small">
                "The code's last four digits never reach the server: the two browsers check them "
                "between themselves and encrypt how they connect, so nobody else can step in."
            </p>
        </section>
    }
}

fn leave(ui: CodeUi) {
    #[cfg(feature = "hydrate")]
    super::room::leave();
    ui.shown.set(None);
    ui.stage.set(Stage::Start);
}

/// Make a code, or join with one.
#[component]
fn Start(ui: CodeUi) -> impl IntoView {
    // Enabled once the page runs: the code must never be posted in a URL.
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    let join = move || {
        #[cfg(feature = "hydrate")]
        super::room::join(ui);
    };
    view! {
        <div class="code-start">
            <section class="card" aria-labelledby="create-title">
                <h2 id="create-title">"Make a code"</h2>
                <p>"Give it to one person: read it out, send the link, or show the QR code."</p>
                <p>
                    <button
                        type="button"
                        class="button primary"
                        disabled=move || !ready.get()
                        on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            super::room::create(ui);
                        }
                    >
                        "Create a code"
                    </button>
                </p>
            </section>
            <section class="card" aria-labelledby="join-title">
                <h2 id="join-title">"Join with a code"</h2>
                <form
                    class="join-form"
                    on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        join();
                    }
                >
                    <div class="field">
                        <label for="code-input">"Code"</label>
                        <input
                            id="code-input"
                            name="code"
                            inputmode="numeric"
                            autocomplete="off"
                            placeholder="482 913 7150"
                            aria-describedby="code-error"
                            prop:value=move || ui.draft.get()
                            on:input=move |ev| {
                                ui.draft.set(event_target_value(&ev));
                                ui.join_error.set(None);
                            }
                        />
                    </div>
                    <p id="code-error" class="form-error" role="alert">{move || ui.join_error.get()}</p>
                    <button type="submit" class="button primary" disabled=move || !ready.get()>"Join"</button>
                </form>
            </section>
        </div>
    }
}

/// The creator's code, until someone joins.
#[component]
fn Waiting(ui: CodeUi) -> impl IntoView {
    let shown = move || ui.shown.get();
    let left = move || shown().map(|s| remaining(s.expires_ms, ui.now.get()));
    let copy = move |what: &'static str| {
        #[cfg(feature = "hydrate")]
        super::room::copy(ui, what);
        #[cfg(not(feature = "hydrate"))]
        let _ = what;
    };
    view! {
        <div class="code-shown">
            <label for="your-code" class="code-label">"Your code"</label>
            <output id="your-code" class="code-digits" data-testid="your-code">
                {move || shown().map(|s| s.grouped)}
            </output>
            <p class="code-expiry" role="timer" aria-live="off">
                "Works once, for " {left} " more."
            </p>
            <p class="code-actions">
                <button type="button" on:click=move |_| copy("code")>"Copy code"</button>
                <button type="button" on:click=move |_| copy("link")>"Copy link"</button>
                <span class="form-ok" role="status">
                    {move || ui.copied.get().map(|what| format!("Copied the {what}."))}
                </span>
            </p>
            <p class="code-link">
                <label for="code-link">"Link"</label>
                <input id="code-link" readonly=true prop:value=move || shown().map(|s| s.link).unwrap_or_default() />
            </p>
            {move || {
                shown()
                    .and_then(|s| s.qr)
                    .map(|(width, d)| {
                        let size = width + 8;
                        view! {
                            <svg
                                class="code-qr"
                                role="img"
                                aria-label="QR code of the link"
                                viewBox=format!("-4 -4 {size} {size}")
                                shape-rendering="crispEdges"
                            >
                                <rect x="-4" y="-4" width=size height=size fill="#fff" />
                                <path d=d fill="#000" />
                            </svg>
                        }
                    })
            }}
            <p role="status" data-testid="code-status">"Waiting for the other person to join…"</p>
            <p><button type="button" on:click=move |_| leave(ui)>"Cancel"</button></p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_countdown_shows_minutes_and_seconds_left() {
        assert_eq!(super::remaining(600_000.0, 0.0), "10:00");
        assert_eq!(super::remaining(61_000.0, 500.0), "1:01");
        assert_eq!(super::remaining(1_000.0, 5_000.0), "0:00");
    }
}
