//! The frame around every page: skip link, header with the main navigation, the `<main>`
//! landmark and the footer (with the operator's status page). Also marks the body once the
//! page has hydrated.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::accounts::session::{provide_auth, use_auth};
use crate::realtime::{use_realtime, ConnStatus};

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // Inside the router: account actions then see an error a form post without JavaScript
    // brought back in the URL.
    provide_auth();
    let auth = use_auth();
    let realtime = use_realtime();
    let signed_in = move || auth.session.with(|s| s.user.is_some());
    let moderator = move || auth.is_moderator();
    let call = crate::calls::provide_call();
    // Whoever is signed in may be called: load the call's code once the page is up.
    Effect::new(move |_| {
        if signed_in() {
            call.preload();
        }
    });
    // The real-time channel is open while someone is signed in.
    realtime.follow(Signal::derive(move || {
        auth.session.with(|s| s.user.as_ref().map(|u| u.id))
    }));
    // A socket closed because a session ended: is this tab still signed in?
    Effect::new(move |previous: Option<u64>| {
        let ended = realtime.sessions_ended.get();
        if previous.is_some_and(|p| p != ended) {
            auth.refresh();
        }
        ended
    });

    // Effects run only in the browser, after hydration: end-to-end tests wait for this marker
    // before they interact with the page.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    // Browsers scroll to a fragment but do not move focus there: do it, so the next Tab
    // starts inside the content. Without JavaScript the plain link still scrolls.
    let main = NodeRef::<leptos::html::Main>::new();
    let skip_to_main = move |ev: leptos::ev::MouseEvent| {
        if let Some(main) = main.get() {
            ev.prevent_default();
            let _ = main.focus();
        }
    };

    view! {
        <a class="skip-link" href="#main" on:click=skip_to_main>
            "Skip to content"
        </a>
        <header class="site-header">
            <div class="brand">
                <A href="/">
                    <span class="brand-mark" aria-hidden="true">"◐"</span>
                    " Parlor"
                </A>
            </div>
            <nav aria-label="Main">
                <ul>
                    <li>
                        <A href="/" exact=true>
                            "Home"
                        </A>
                    </li>
                    <Show when=signed_in>
                        <li>
                            <A href="/friends">"Friends"</A>
                        </li>
                        <li>
                            <A href="/messages">
                                "Messages"
                                <Show when=move || { realtime.unread.get() > 0 }>
                                    " "
                                    <span class="badge" data-testid="nav-unread">
                                        {move || realtime.unread.get()}
                                        <span class="visually-hidden">" unread"</span>
                                    </span>
                                </Show>
                            </A>
                        </li>
                    </Show>
                    <Show when=moderator>
                        <li>
                            <A href="/moderation">"Moderation"</A>
                        </li>
                    </Show>
                </ul>
            </nav>
            <AccountMenu />
        </header>
        <ConnectionBanner />
        <main id="main" tabindex="-1" node_ref=main>
            {children()}
        </main>
        <crate::calls::CallOverlay />
        <footer class="site-footer">
            <p>
                "Parlor · open-source video chat you host yourself · "
                <A href="/connectivity">"Test your connection"</A>
                " · "
                <A href="/status">"Server status"</A>
            </p>
        </footer>
    }
}

/// The signed-in user's name and "Sign out", or the links to sign in and sign up.
#[component]
fn AccountMenu() -> impl IntoView {
    let auth = use_auth();
    view! {
        <div class="account-menu">
            {move || match auth.session.get().user {
                Some(me) => view! {
                    <A href="/profile">
                        <span class="visually-hidden">"Signed in as "</span>
                        <span data-testid="signed-in-name">{me.display_name}</span>
                    </A>
                    <ActionForm action=auth.sign_out>
                        <button type="submit">"Sign out"</button>
                    </ActionForm>
                }
                    .into_any(),
                None => view! {
                    <A href="/signin">"Sign in"</A>
                    <A href="/signup">"Create account"</A>
                }
                    .into_any(),
            }}
        </div>
    }
}

/// Says when the real-time channel is down: messages wait, and the page catches up by itself.
#[component]
fn ConnectionBanner() -> impl IntoView {
    let realtime = use_realtime();
    view! {
        <div class="connection-banner" role="status" aria-live="polite" data-testid="connection">
            {move || match realtime.status.get() {
                ConnStatus::Offline => Some("You are offline. Messages will be sent when the connection is back."),
                ConnStatus::Reconnecting => Some("Connection lost. Reconnecting…"),
                _ => None,
            }}
        </div>
    }
}
