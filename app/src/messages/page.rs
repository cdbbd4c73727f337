//! Messages: the conversation list beside the open conversation. History loads by pages
//! (older ones when scrolling up), new messages arrive live, and the user's own messages
//! show whether they were sent, delivered and read. Message text is always rendered as
//! text, never as HTML.

use leptos::{html, prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::{
    components::{Outlet, Redirect, A},
    hooks::{use_location, use_params_map},
};

use crate::{
    accounts::session::use_auth,
    components::time,
    messages::api::{
        conversation, conversations, history, ConversationDetail, ConversationSummary,
    },
    protocol::{check_body, ClientMsg, ServerMsg, MAX_MESSAGE_CHARS},
    realtime::{use_realtime, ConnStatus},
    wire::{CallOutcome, MessageView},
};

/// How long a typing notice lasts without a new one.
const TYPING_SHOWN_MS: f64 = 4000.0;
/// How often the browser tells the other side that the user is typing.
const TYPING_EVERY_MS: f64 = 2500.0;

fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

/// `/messages` and `/messages/:id`: the list, and the conversation in the outlet.
#[component]
pub fn MessagesLayout() -> impl IntoView {
    let auth = use_auth();
    let location = use_location();
    let open = move || location.pathname.get().trim_end_matches('/') != "/messages";
    view! {
        <Title text="Messages" />
        <Show when=move || auth.session.with(|s| s.user.is_none())>
            <Redirect path="/signin" />
        </Show>
        <div class="messages" class:conversation-open=open>
            <ConversationList />
            <div class="conversation-pane">
                <Outlet />
            </div>
        </div>
    }
}

#[component]
pub fn NoConversation() -> impl IntoView {
    view! {
        <div class="empty-pane">
            <p class="muted">"Choose a conversation, or start one from your friends list."</p>
        </div>
    }
}

#[component]
fn ConversationList() -> impl IntoView {
    let auth = use_auth();
    let realtime = use_realtime();
    let list = RwSignal::new(None::<Vec<ConversationSummary>>);
    let error = RwSignal::new(None::<String>);
    let reload = move || {
        spawn_local(async move {
            match conversations().await {
                Ok(found) => {
                    if let Some(newest) = found
                        .iter()
                        .filter_map(|c| c.last_message.as_ref().map(|m| m.id))
                        .max()
                    {
                        realtime.saw_message(newest);
                    }
                    list.set(Some(found));
                    error.set(None);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    Effect::new(move |_| {
        realtime.connections.track();
        if auth.session.with(|s| s.user.is_some()) {
            reload();
        }
    });
    let me = realtime.me;
    realtime.subscribe(move |message| match message {
        ServerMsg::Message { .. } | ServerMsg::FriendsChanged => reload(),
        ServerMsg::Receipt { user_id, .. } if Some(*user_id) == me.get_untracked() => reload(),
        _ => {}
    });
    let params = use_params_map();
    let current = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));

    view! {
        <nav class="conversation-list" aria-labelledby="conversations-title">
            <h1 id="conversations-title">"Messages"</h1>
            <p class="form-error" role="alert">{move || error.get()}</p>
            {move || match list.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="muted">
                        "No conversations yet. "
                        <A href="/friends">"Add a friend"</A>
                        " to start one."
                    </p>
                }
                    .into_any(),
                Some(list) => view! {
                    <ul data-testid="conversations">
                        {list
                            .into_iter()
                            .map(|c| {
                                let id = c.id;
                                let preview = c
                                    .last_message
                                    .as_ref()
                                    .map(|m| summary(m).lines().next().unwrap_or_default().to_string())
                                    .unwrap_or_else(|| "No messages yet".into());
                                let when = c.last_message.as_ref().map(|m| time::short(&m.sent_at));
                                let unread = c.unread;
                                view! {
                                    <li>
                                        <A
                                            href=format!("/messages/{id}")
                                            attr:class="conversation-link"
                                            attr:aria-current=move || (current() == Some(id)).then_some("page")
                                        >
                                            <span class="avatar" aria-hidden="true">
                                                {c.peer.display_name.chars().next().map(|ch| ch.to_uppercase().to_string())}
                                            </span>
                                            <span class="conversation-text">
                                                <span class="person-name">{c.peer.display_name.clone()}</span>
                                                <span class="preview muted">{preview}</span>
                                            </span>
                                            <span class="conversation-meta">
                                                <span class="muted">{when}</span>
                                                {(unread > 0).then(|| view! {
                                                    <span class="badge" data-testid="unread">
                                                        {unread}
                                                        <span class="visually-hidden">" unread"</span>
                                                    </span>
                                                })}
                                            </span>
                                        </A>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any(),
            }}
        </nav>
    }
}

/// What a message says: its text, or for a call's record how the call went.
fn summary(m: &MessageView) -> String {
    let Some(call) = &m.call else {
        return m.body.clone();
    };
    let kind = if call.video {
        "Video call"
    } else {
        "Voice call"
    };
    match call.outcome {
        CallOutcome::Missed => format!("Missed {}", kind.to_lowercase()),
        CallOutcome::Rejected => format!("{kind} declined"),
        CallOutcome::Completed => {
            let (m, s) = (call.duration_secs / 60, call.duration_secs % 60);
            format!("{kind} · {m}:{s:02}")
        }
    }
}

/// Adds messages to a list kept in id order, without duplicates.
fn merge(list: &mut Vec<MessageView>, new: impl IntoIterator<Item = MessageView>) {
    list.extend(new);
    list.sort_by_key(|m| m.id);
    list.dedup_by_key(|m| m.id);
}

#[component]
pub fn ConversationPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    view! {
        {move || match id.get() {
            Some(id) => view! { <Conversation id /> }.into_any(),
            None => view! { <p class="form-error" role="alert">"There is no such conversation."</p> }.into_any(),
        }}
    }
}

#[component]
fn Conversation(id: i64) -> impl IntoView {
    let auth = use_auth();
    let realtime = use_realtime();
    let detail = RwSignal::new(None::<ConversationDetail>);
    let messages = RwSignal::new(Vec::<MessageView>::new());
    let has_more = RwSignal::new(false);
    let loading_older = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let typing_until = RwSignal::new(0.0f64);
    let read_sent = RwSignal::new(0i64);
    let scroller = NodeRef::<html::Div>::new();
    let me = realtime.me;

    let scroll_to_end = move || {
        request_animation_frame(move || {
            if let Some(el) = scroller.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    };
    let near_end = move || {
        scroller
            .get_untracked()
            .map(|el| el.scroll_height() - el.scroll_top() - el.client_height() < 80)
            .unwrap_or(true)
    };

    // Tells the server how far the user has read, when the page is in view.
    let mark_read = move || {
        #[cfg(feature = "hydrate")]
        if document().hidden() {
            return;
        }
        // The newest message from the other person (the server counts your own as read).
        let me = me.get_untracked();
        let newest = messages
            .with_untracked(|m| {
                m.iter()
                    .rev()
                    .find(|m| Some(m.sender_id) != me)
                    .map(|m| m.id)
            })
            .unwrap_or(0);
        if newest > read_sent.get_untracked() {
            read_sent.set(newest);
            realtime.send(&ClientMsg::Receipt {
                conversation_id: id,
                delivered_up_to: newest,
                read_up_to: newest,
            });
        }
    };

    let load = move || {
        spawn_local(async move {
            match conversation(id).await {
                Ok(found) => {
                    read_sent.update(|r| *r = (*r).max(found.read_up_to));
                    detail.set(Some(found));
                }
                Err(e) => {
                    error.set(Some(e.to_string()));
                    return;
                }
            }
            match history(id, None).await {
                Ok(page) => {
                    if let Some(last) = page.messages.last() {
                        realtime.saw_message(last.id);
                    }
                    if messages.with_untracked(Vec::is_empty) {
                        has_more.set(page.has_more);
                    }
                    messages.update(|m| merge(m, page.messages));
                    error.set(None);
                    scroll_to_end();
                    mark_read();
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    Effect::new(move |_| {
        realtime.connections.track();
        if auth.session.with(|s| s.user.is_some()) {
            load();
        }
    });

    let load_older = move || {
        if loading_older.get_untracked() || !has_more.get_untracked() {
            return;
        }
        let Some(oldest) = messages.with_untracked(|m| m.first().map(|m| m.id)) else {
            return;
        };
        loading_older.set(true);
        spawn_local(async move {
            let before_height = scroller
                .get_untracked()
                .map(|el| el.scroll_height())
                .unwrap_or(0);
            match history(id, Some(oldest)).await {
                Ok(page) => {
                    has_more.set(page.has_more);
                    messages.update(|m| merge(m, page.messages));
                    // Keep the reader's place: the list grew above it.
                    request_animation_frame(move || {
                        if let Some(el) = scroller.get_untracked() {
                            el.set_scroll_top(el.scroll_height() - before_height + el.scroll_top());
                        }
                    });
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            loading_older.set(false);
        });
    };

    realtime.subscribe(move |message| match message {
        ServerMsg::Message { message } if message.conversation_id == id => {
            let follow = near_end() || Some(message.sender_id) == me.get_untracked();
            if Some(message.sender_id) != me.get_untracked() {
                typing_until.set(0.0);
            }
            messages.update(|m| merge(m, [message.clone()]));
            if follow {
                scroll_to_end();
            }
            mark_read();
        }
        ServerMsg::Receipt {
            conversation_id,
            user_id,
            delivered_up_to,
            read_up_to,
        } if *conversation_id == id => detail.update(|d| {
            if let Some(d) = d {
                if d.peer.id == *user_id {
                    d.peer_delivered_up_to = *delivered_up_to;
                    d.peer_read_up_to = *read_up_to;
                }
            }
        }),
        ServerMsg::Typing {
            conversation_id, ..
        } if *conversation_id == id => {
            let until = now_ms() + TYPING_SHOWN_MS;
            typing_until.set(until);
            set_timeout(
                move || {
                    if typing_until.get_untracked() <= until {
                        typing_until.set(0.0);
                    }
                },
                std::time::Duration::from_millis(TYPING_SHOWN_MS as u64),
            );
        }
        ServerMsg::Presence {
            user_id, online, ..
        } => detail.update(|d| {
            if let Some(d) = d.as_mut().filter(|d| d.peer.id == *user_id) {
                d.peer_online = *online;
            }
        }),
        ServerMsg::FriendsChanged => load(),
        _ => {}
    });

    // Reading resumes when the tab comes back into view.
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::visibilitychange, move |_| mark_read());
        on_cleanup(move || handle.remove());
    }

    // A memo: the composer (and what is typed in it) must survive every other change to the
    // conversation (receipts, presence), and be rebuilt only when posting becomes allowed
    // or refused.
    let read_only =
        Memo::new(move |_| detail.with(|d| d.as_ref().map(|d| d.read_only_reason.clone())));
    let peer_name = move || {
        detail.with(|d| {
            d.as_ref()
                .map(|d| d.peer.display_name.clone())
                .unwrap_or_default()
        })
    };
    let status_of = move |m: &MessageView| -> &'static str {
        detail.with(|d| match d {
            Some(d) if m.id <= d.peer_read_up_to => "Read",
            Some(d) if m.id <= d.peer_delivered_up_to => "Delivered",
            _ => "Sent",
        })
    };

    view! {
        <Title text=move || format!("{} · Messages", peer_name()) />
        <section class="conversation" aria-labelledby="conversation-title">
            <header class="conversation-header">
                <A href="/messages" attr:class="back-link">
                    <span aria-hidden="true">"‹ "</span>
                    "All conversations"
                </A>
                <h2 id="conversation-title" data-testid="conversation-title">{peer_name}</h2>
                <span class="muted" data-testid="peer-presence">
                    {move || detail.with(|d| match d {
                        Some(d) if d.peer_online => "Online",
                        Some(_) => "Offline",
                        None => "",
                    })}
                </span>
                <CallButtons detail read_only />
            </header>
            <p class="form-error" role="alert">{move || error.get()}</p>
            <div
                class="message-scroller"
                node_ref=scroller
                on:scroll=move |_| {
                    if scroller.get_untracked().is_some_and(|el| el.scroll_top() < 40) {
                        load_older();
                    }
                }
            >
                <Show when=move || has_more.get()>
                    <button class="secondary load-older" on:click=move |_| load_older()>
                        {move || if loading_older.get() { "Loading…" } else { "Load older messages" }}
                    </button>
                </Show>
                <ol class="message-list" data-testid="messages" aria-live="polite" aria-relevant="additions">
                    <For
                        each=move || messages.get()
                        key=|m| m.id
                        children=move |m| {
                            let mine = Some(m.sender_id) == me.get_untracked();
                            let sent_at = time::short(&m.sent_at);
                            let m2 = m.clone();
                            view! {
                                <li class="message" class:mine=mine data-testid="message" data-id=m.id>
                                    <span class="visually-hidden">
                                        {if mine { "You: ".to_string() } else { format!("{}: ", peer_name()) }}
                                    </span>
                                    <p class="message-body" class:call-record=m.call.is_some() data-testid="message-body">{summary(&m)}</p>
                                    <span class="message-meta muted">
                                        <time datetime=m.sent_at.clone()>{sent_at}</time>
                                        {mine.then(|| view! {
                                            " · "
                                            <span data-testid="receipt">{move || status_of(&m2)}</span>
                                        })}
                                    </span>
                                </li>
                            }
                        }
                    />
                    <For
                        each=move || {
                            realtime
                                .outbox
                                .get()
                                .into_iter()
                                .filter(|p| p.conversation_id == id)
                                .filter(|p| messages.with(|m| !m.iter().any(|m| m.client_id == p.client_id && Some(m.sender_id) == me.get_untracked())))
                                .collect::<Vec<_>>()
                        }
                        key=|p| (p.client_id.clone(), p.failed.clone())
                        children=move |p| {
                            let client_id = p.client_id.clone();
                            view! {
                                <li class="message mine pending" class:failed=p.failed.is_some() data-testid="pending">
                                    <p class="message-body">{p.body.clone()}</p>
                                    <span class="message-meta muted">
                                        {match p.failed.clone() {
                                            Some(reason) => view! {
                                                <span class="form-error" role="alert">"Not sent: " {reason}</span>
                                                " "
                                                <button class="link" on:click=move |_| realtime.dismiss(&client_id)>"Dismiss"</button>
                                            }
                                                .into_any(),
                                            None => view! {
                                                <span data-testid="receipt">
                                                    {move || if realtime.status.get() == ConnStatus::Online { "Sending…" } else { "Waiting for connection…" }}
                                                </span>
                                            }
                                                .into_any(),
                                        }}
                                    </span>
                                </li>
                            }
                        }
                    />
                </ol>
            </div>
            <p class="typing muted" aria-live="polite" data-testid="typing">
                {move || (typing_until.get() > 0.0).then(|| format!("{} is typing…", peer_name()))}
            </p>
            {move || match read_only.get() {
                Some(Some(reason)) => view! {
                    <p class="read-only notice" data-testid="read-only">{reason}</p>
                }
                    .into_any(),
                Some(None) => view! { <Composer id /> }.into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

/// "Video call" and "Voice call", while the two may talk.
#[component]
fn CallButtons(
    detail: RwSignal<Option<ConversationDetail>>,
    read_only: Memo<Option<Option<String>>>,
) -> impl IntoView {
    let call = crate::calls::use_call();
    let start = move |video: bool| {
        if let Some(peer) = detail.with_untracked(|d| d.as_ref().map(|d| d.peer.clone())) {
            call.start(peer, video);
        }
    };
    view! {
        <Show when=move || read_only.get() == Some(None)>
            <span class="call-buttons">
                <button class="primary" on:click=move |_| start(true)>"Video call"</button>
                <button on:click=move |_| start(false)>"Voice call"</button>
            </span>
        </Show>
    }
}

#[component]
fn Composer(id: i64) -> impl IntoView {
    let realtime = use_realtime();
    let body = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let last_typing = StoredValue::new(0.0f64);
    let length = move || body.with(|b| b.trim().chars().count());

    let submit = move || {
        let text = body.get_untracked();
        match check_body(&text) {
            Ok(text) => {
                realtime.send_chat(id, text.to_string());
                body.set(String::new());
                error.set(None);
                last_typing.set_value(0.0);
            }
            Err(message) => error.set(Some(message)),
        }
    };
    view! {
        <form
            class="composer"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                submit();
            }
        >
            <label for="composer-text" class="visually-hidden">"Message"</label>
            <textarea
                id="composer-text"
                name="body"
                rows="2"
                placeholder="Write a message"
                aria-describedby="composer-hint composer-error"
                prop:value=move || body.get()
                on:input=move |ev| {
                    body.set(event_target_value(&ev));
                    if now_ms() - last_typing.get_value() > TYPING_EVERY_MS && !body.with_untracked(|b| b.trim().is_empty()) {
                        last_typing.set_value(now_ms());
                        realtime.send(&ClientMsg::Typing { conversation_id: id });
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <button type="submit">"Send"</button>
            <p id="composer-hint" class="muted hint" class:over=move || { length() > MAX_MESSAGE_CHARS }>
                {move || format!("{} / {MAX_MESSAGE_CHARS}", length())}
                " · Enter sends, Shift+Enter adds a line"
            </p>
            <p id="composer-error" class="form-error" role="alert" data-testid="composer-error">
                {move || error.get()}
            </p>
        </form>
    }
}
