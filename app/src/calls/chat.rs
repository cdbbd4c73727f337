//! The chat panel: lines straight between the two browsers during the call, gone when it
//! ends, and files sent the same way (with their progress, and a link to save what came).
//! Kept in the page while closed, so a draft survives and new lines count as unread.

use leptos::prelude::*;

use super::{CallUi, Panel};

#[component]
pub fn CallChat(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    let draft = RwSignal::new(String::new());
    let open = move || ui.panel.get() == Some(Panel::Chat);
    let stranger = move || ui.stranger.with(Option::is_some);
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
                    if ui.say(&draft.get_untracked()) {
                        draft.set(String::new());
                    }
                }
            >
                // With a stranger the chat is the conversation: "Message", as in conversations
                // (a call opened from a conversation already has a box of that name).
                <label for="call-chat-input" class="visually-hidden">
                    {move || if stranger() { "Message" } else { "Chat message" }}
                </label>
                <input
                    id="call-chat-input"
                    autocomplete="off"
                    placeholder=move || if stranger() { "Say hello" } else { "Chat during the call" }
                    maxlength=crate::strangers::MAX_CHAT_CHARS.to_string()
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit">"Send"</button>
            </form>
            // No files from strangers.
            <Show when=move || ui.stranger.with(Option::is_none)>
                <Files ui />
            </Show>
            <p class="form-error" role="alert">{move || engine.chat_error.get()}</p>
        </div>
    }
}

/// "Megabytes" for people: one decimal under 10 MB.
fn size_text(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if bytes < 1_000 {
        format!("{bytes} B")
    } else if mb < 1.0 {
        format!("{:.0} kB", bytes as f64 / 1_000.0)
    } else if mb < 10.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{mb:.0} MB")
    }
}

/// Send a file; the files of this call, sent and received.
#[component]
fn Files(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    view! {
        <div class="call-files">
            <label class="button" for="call-file-input">"Send a file"</label>
            <input
                id="call-file-input"
                class="visually-hidden"
                type="file"
                on:change=move |ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use wasm_bindgen::JsCast;
                        let Some(input) = ev
                            .target()
                            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                        else {
                            return;
                        };
                        if let Some(files) = input.files() {
                            for i in 0..files.length() {
                                if let Some(file) = files.get(i) {
                                    engine.send_file(file);
                                }
                            }
                        }
                        // The same file can be chosen again.
                        input.set_value("");
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = (ev, engine);
                }
            />
            <ul class="call-file-list" data-testid="call-files">
                <For each=move || engine.transfers.get() key=|t| (t.id, t.mine, t.done, t.url.clone(), t.failed.clone()) let:t>
                    <li class:mine=t.mine data-testid="call-file">
                        <span class="call-file-name">{t.name.clone()}</span>
                        " "
                        <span class="muted">{size_text(t.size)}</span>
                        " "
                        {match (&t.failed, &t.url) {
                            (Some(why), _) => view! { <span class="form-error">{why.clone()}</span> }.into_any(),
                            (None, Some(url)) => view! {
                                <a href=url.clone() download=t.name.clone()>{format!("Save {}", t.name)}</a>
                            }
                                .into_any(),
                            (None, None) if t.sent() => view! { <span>"Sent"</span> }.into_any(),
                            (None, None) => view! {
                                <progress max=t.size.to_string() value=t.done.to_string() aria-label=format!("{} progress", t.name)></progress>
                            }
                                .into_any(),
                        }}
                    </li>
                </For>
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_people_say_them() {
        assert_eq!(super::size_text(512), "512 B");
        assert_eq!(super::size_text(42_000), "42 kB");
        assert_eq!(super::size_text(3_145_728), "3.1 MB");
        assert_eq!(super::size_text(250_000_000), "250 MB");
    }
}
