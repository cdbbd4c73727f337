//! The friends page: find people, answer requests, see who is online, and manage friends
//! and blocks. Loaded in the browser and kept current by the real-time channel: requests,
//! answers and presence changes appear without a reload.

use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::components::{Redirect, A};

use crate::{
    accounts::session::use_auth,
    components::time,
    error::AppError,
    friends::api::{
        answer_friend_request, block_user, cancel_friend_request, load_friends, search_users,
        send_friend_request, unblock_user, unfriend, Friend, FriendRequest, FriendsOverview,
        Relation, RequestOutcome, SearchResult, MIN_QUERY_CHARS,
    },
    protocol::ServerMsg,
    realtime::use_realtime,
};

/// The page's state, shared by its parts.
#[derive(Clone, Copy)]
struct Friends {
    overview: RwSignal<Option<FriendsOverview>>,
    /// What went wrong last (shown in an alert), or what just happened (a status line).
    error: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
    query: RwSignal<String>,
    results: RwSignal<Option<Vec<SearchResult>>>,
    page: RwSignal<u32>,
    has_more: RwSignal<bool>,
    /// The latest overview and search asked for: an older answer that arrives after a newer
    /// one (a reconnection and a change at once, on a slow network) is dropped.
    loads: StoredValue<Latest>,
    searches: StoredValue<Latest>,
}

/// Numbers requests so that only the answer to the latest one is shown.
#[derive(Debug, Default, Clone, Copy)]
struct Latest(u64);

impl Latest {
    /// A new request: its number.
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// Whether request `n` is still the latest.
    fn is(self, n: u64) -> bool {
        self.0 == n
    }
}

impl Friends {
    fn reload(self) {
        let n = self
            .loads
            .try_update_value(Latest::next)
            .unwrap_or_default();
        spawn_local(async move {
            let answer = load_friends().await;
            if !self.loads.with_value(|l| l.is(n)) {
                return;
            }
            match answer {
                Ok(overview) => self.overview.set(Some(overview)),
                Err(e) => self.error.set(Some(e.to_string())),
            }
        });
    }

    /// Runs the search for pages `0..=page` again (relations change after every action).
    fn search(self, page: u32) {
        let query = self.query.get_untracked();
        if query.trim().chars().count() < MIN_QUERY_CHARS {
            // (And a search still under way is not shown.)
            self.searches.update_value(|l| {
                l.next();
            });
            self.results.set(None);
            return;
        }
        let n = self
            .searches
            .try_update_value(Latest::next)
            .unwrap_or_default();
        spawn_local(async move {
            let mut all = Vec::new();
            let mut more = false;
            for p in 0..=page {
                let found = search_users(query.clone(), p).await;
                if !self.searches.with_value(|l| l.is(n)) {
                    return;
                }
                match found {
                    Ok(found) => {
                        all.extend(found.results);
                        more = found.has_more;
                    }
                    Err(e) => {
                        self.error.set(Some(e.to_string()));
                        return;
                    }
                }
            }
            self.page.set(page);
            self.has_more.set(more);
            self.results.set(Some(all));
        });
    }

    /// Runs a change, then shows its outcome and reloads what it affects.
    fn act<T: 'static>(
        self,
        change: impl std::future::Future<Output = Result<T, AppError>> + 'static,
        done: impl FnOnce(T) -> Option<String> + 'static,
    ) {
        self.error.set(None);
        self.notice.set(None);
        spawn_local(async move {
            match change.await {
                Ok(value) => self.notice.set(done(value)),
                Err(e) => self.error.set(Some(e.to_string())),
            }
            self.reload();
            if self.results.get_untracked().is_some() {
                self.search(self.page.get_untracked());
            }
        });
    }
}

#[component]
pub fn FriendsPage() -> impl IntoView {
    let auth = use_auth();
    let realtime = use_realtime();
    let state = Friends {
        overview: RwSignal::new(None),
        error: RwSignal::new(None),
        notice: RwSignal::new(None),
        query: RwSignal::new(String::new()),
        results: RwSignal::new(None),
        page: RwSignal::new(0),
        has_more: RwSignal::new(false),
        loads: StoredValue::new(Latest::default()),
        searches: StoredValue::new(Latest::default()),
    };
    // Load on arrival and after every reconnection (presence may have changed meanwhile).
    Effect::new(move |_| {
        realtime.connections.track();
        if auth.session.with(|s| s.user.is_some()) {
            state.reload();
        }
    });
    realtime.subscribe(move |message| match message {
        ServerMsg::FriendsChanged => {
            state.reload();
            if state.results.get_untracked().is_some() {
                state.search(state.page.get_untracked());
            }
        }
        ServerMsg::Presence {
            user_id,
            online,
            last_seen,
        } => state.overview.update(|o| {
            for friend in o.iter_mut().flat_map(|o| o.friends.iter_mut()) {
                if friend.user.id == *user_id {
                    friend.online = *online;
                    friend.last_seen.clone_from(last_seen);
                }
            }
        }),
        _ => {}
    });

    view! {
        <Title text="Friends" />
        <section class="page" aria-labelledby="friends-title">
            <h1 id="friends-title">"Friends"</h1>
            <Show when=move || auth.session.with(|s| s.user.is_none())>
                <Redirect path="/signin" />
            </Show>
            <p class="form-error" role="alert" data-testid="friends-error">
                {move || state.error.get()}
            </p>
            <p class="notice" role="status" data-testid="friends-notice">
                {move || state.notice.get()}
            </p>
            <Search state />
            {move || match state.overview.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(overview) => view! { <Overview state overview /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Search(state: Friends) -> impl IntoView {
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if state.query.get_untracked().trim().chars().count() < MIN_QUERY_CHARS {
            state.error.set(Some(format!(
                "Type at least {MIN_QUERY_CHARS} characters to search."
            )));
            return;
        }
        state.error.set(None);
        state.search(0);
    };
    view! {
        <section class="card" aria-labelledby="search-title">
            <h2 id="search-title">"Find people"</h2>
            <form class="search" role="search" on:submit=on_submit>
                <label for="friend-search">"Name or exact email"</label>
                <div class="inline">
                    <input
                        id="friend-search"
                        name="query"
                        type="search"
                        autocomplete="off"
                        maxlength="254"
                        prop:value=move || state.query.get()
                        on:input=move |ev| state.query.set(event_target_value(&ev))
                    />
                    <button type="submit">"Search"</button>
                </div>
            </form>
            {move || {
                state
                    .results
                    .get()
                    .map(|results| {
                        if results.is_empty() {
                            return view! { <p class="muted">"Nobody found."</p> }.into_any();
                        }
                        view! {
                            <ul class="people" data-testid="search-results">
                                {results
                                    .into_iter()
                                    .map(|r| view! { <SearchRow state result=r /> })
                                    .collect_view()}
                            </ul>
                            <Show when=move || state.has_more.get()>
                                <button
                                    class="secondary"
                                    on:click=move |_| state.search(state.page.get_untracked() + 1)
                                >
                                    "More results"
                                </button>
                            </Show>
                        }
                            .into_any()
                    })
            }}
        </section>
    }
}

#[component]
fn SearchRow(state: Friends, result: SearchResult) -> impl IntoView {
    let id = result.user.id;
    let name = result.user.display_name.clone();
    let action = match result.relation {
        Relation::None => view! {
            <button on:click=move |_| {
                state.act(send_friend_request(id), |outcome| Some(match outcome {
                    RequestOutcome::Sent => "Friend request sent.".to_string(),
                    RequestOutcome::Accepted { .. } => "You are friends now.".to_string(),
                }))
            }>"Add friend"</button>
        }
        .into_any(),
        Relation::RequestSent => view! {
            <span class="muted">"Request sent"</span>
            <button
                class="secondary"
                on:click=move |_| state.act(cancel_friend_request(id), |()| None)
            >
                "Cancel"
            </button>
        }
        .into_any(),
        Relation::RequestReceived => view! {
            <button on:click=move |_| {
                state.act(answer_friend_request(id, true), |_| Some("You are friends now.".into()))
            }>"Accept request"</button>
        }
        .into_any(),
        Relation::Friend => view! { <span class="muted">"Friends"</span> }.into_any(),
    };
    view! {
        <li class="person" data-testid="person">
            <span class="avatar" aria-hidden="true">{initial(&name)}</span>
            <span class="person-name">{name.clone()}</span>
            <span class="person-actions">{action}</span>
        </li>
    }
}

fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

#[component]
fn Overview(state: Friends, overview: FriendsOverview) -> impl IntoView {
    let FriendsOverview {
        friends,
        incoming,
        outgoing,
        blocked,
    } = overview;
    let incoming_view = (!incoming.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="incoming-title">
                <h2 id="incoming-title">"Requests for you"</h2>
                <ul class="people" data-testid="incoming">
                    {incoming.into_iter().map(|r| view! { <Incoming state request=r /> }).collect_view()}
                </ul>
            </section>
        }
    });
    let outgoing_view = (!outgoing.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="outgoing-title">
                <h2 id="outgoing-title">"Requests you sent"</h2>
                <ul class="people" data-testid="outgoing">
                    {outgoing
                        .into_iter()
                        .map(|FriendRequest { user, sent_at }| {
                            let id = user.id;
                            view! {
                                <li class="person">
                                    <span class="avatar" aria-hidden="true">{initial(&user.display_name)}</span>
                                    <span class="person-name">{user.display_name}</span>
                                    <span class="muted">{time::ago(&sent_at)}</span>
                                    <span class="person-actions">
                                        <button
                                            class="secondary"
                                            on:click=move |_| state.act(cancel_friend_request(id), |()| Some("Request cancelled.".into()))
                                        >
                                            "Cancel"
                                        </button>
                                    </span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </section>
        }
    });
    let blocked_view = (!blocked.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="blocked-title">
                <h2 id="blocked-title">"Blocked"</h2>
                <ul class="people" data-testid="blocked">
                    {blocked
                        .into_iter()
                        .map(|user| {
                            let id = user.id;
                            view! {
                                <li class="person">
                                    <span class="person-name">{user.display_name}</span>
                                    <span class="person-actions">
                                        <button
                                            class="secondary"
                                            on:click=move |_| state.act(unblock_user(id), |()| Some("Unblocked.".into()))
                                        >
                                            "Unblock"
                                        </button>
                                    </span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </section>
        }
    });
    let friend_list = if friends.is_empty() {
        view! { <p class="muted">"No friends yet. Find people above and send a request."</p> }
            .into_any()
    } else {
        view! {
            <ul class="people" data-testid="friends">
                {friends.into_iter().map(|f| view! { <FriendRow state friend=f /> }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        {incoming_view}
        <section class="card" aria-labelledby="list-title">
            <h2 id="list-title">"Your friends"</h2>
            {friend_list}
        </section>
        {outgoing_view}
        {blocked_view}
    }
}

#[component]
fn Incoming(state: Friends, request: FriendRequest) -> impl IntoView {
    let id = request.user.id;
    let name = request.user.display_name;
    view! {
        <li class="person" data-testid="request">
            <span class="avatar" aria-hidden="true">{initial(&name)}</span>
            <span class="person-name">{name.clone()}</span>
            <span class="muted">{time::ago(&request.sent_at)}</span>
            <span class="person-actions">
                <button on:click=move |_| {
                    state.act(answer_friend_request(id, true), |_| Some("You are friends now.".into()))
                }>"Accept"</button>
                <button
                    class="secondary"
                    on:click=move |_| state.act(answer_friend_request(id, false), |_| Some("Request declined.".into()))
                >
                    "Decline"
                </button>
                <button class="danger" on:click=move |_| block(state, id)>
                    "Block"
                </button>
            </span>
        </li>
    }
}

fn confirmed(question: &str) -> bool {
    window().confirm_with_message(question).unwrap_or(false)
}

fn block(state: Friends, id: i64) {
    if confirmed("Block this person? They will no longer be able to find you, send you requests or messages, or call you.") {
        state.act(block_user(id), |()| Some("Blocked.".into()));
    }
}

#[component]
fn FriendRow(state: Friends, friend: Friend) -> impl IntoView {
    let Friend {
        user,
        online,
        last_seen,
        conversation_id,
    } = friend;
    let id = user.id;
    let presence = if online {
        "Online".to_string()
    } else {
        match last_seen {
            Some(at) => format!("Last seen {}", time::ago(&at)),
            None => "Offline".to_string(),
        }
    };
    let name = user.display_name;
    let call = crate::calls::use_call();
    view! {
        <li class="person" data-testid="friend" data-online=online.to_string()>
            <span class="avatar" aria-hidden="true">
                {initial(&name)}
                <span class="presence-dot" class:online=online></span>
            </span>
            <span class="person-name">{name.clone()}</span>
            <span class="muted presence" data-testid="presence">{presence}</span>
            <span class="person-actions">
                <A href=format!("/messages/{conversation_id}") attr:class="button">
                    "Message"
                </A>
                <button
                    class="primary"
                    on:click={
                        let card = crate::wire::UserCard {
                            id,
                            display_name: name.clone(),
                        };
                        move |_| call.start(card.clone(), true)
                    }
                >
                    "Call"
                </button>
                <button
                    class="secondary"
                    on:click=move |_| {
                        if confirmed("Remove this friend? Your conversation stays readable.") {
                            state.act(unfriend(id), |()| Some("Friend removed.".into()));
                        }
                    }
                >
                    "Unfriend"
                </button>
                <button class="danger" on:click=move |_| block(state, id)>
                    "Block"
                </button>
            </span>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::Latest;

    #[test]
    fn only_the_latest_request_counts() {
        let mut latest = Latest::default();
        let first = latest.next();
        let second = latest.next();
        assert!(!latest.is(first), "an older answer is dropped");
        assert!(latest.is(second));
    }
}
