//! The chat panel: lines straight between the two browsers during the call, gone when it
//! ends. Kept in the page while closed, so a draft survives and new lines count as unread.

use leptos::prelude::*;

use super::{CallUi, Panel};

#[component]
pub fn CallChat(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    let draft = RwSignal::new(String::new());
    let open = move || ui.panel.get() == Some(Panel::Chat);
    // Lines that arrive while the panel is open are read.
    Effect::new(move |_| {
        let lines = engine.chat.with(|c| c.len());
        if open() {
            ui.chat_seen.set(lines);
        }
    });
    view! {
        <div class="call-panel call-chat" class:open=open hidden=move || !open() aria-label="Chat" role="region">
            <ol class="call-chat-lines" data-testid="call-chat" aria-live="polite">
                {move || {
                    engine
                        .chat
                        .get()
                        .into_iter()
                        .map(|(mine, text)| {
                            let who = if mine { "You".to_string() } else { ui.peer_name() };
                            view! {
                                <li class:mine=mine>
                                    <strong>{who} ": "</strong>
                                    {text}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ol>
            <form
                class="inline"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    if engine.say(&draft.get_untracked()) {
                        draft.set(String::new());
                    }
                }
            >
                <label for="call-chat-input" class="visually-hidden">"Chat message"</label>
                <input
                    id="call-chat-input"
                    autocomplete="off"
                    placeholder="Chat during the call"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit">"Send"</button>
            </form>
            <p class="form-error" role="alert">{move || engine.chat_error.get()}</p>
        </div>
    }
}
