//! The landing page: what Parlor is and the three ways to meet someone, each card leading to
//! its way in.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};

use crate::accounts::session::use_auth;

#[component]
pub fn HomePage() -> impl IntoView {
    let auth = use_auth();
    let signed_in = move || auth.session.with(|s| s.user.is_some());
    view! {
        <Title text="" />
        <section class="hero" aria-labelledby="home-title">
            <h1 id="home-title">"Video chat you host yourself"</h1>
            <p class="lead">
                "Parlor connects two browsers directly: your camera, microphone and screen go peer to peer. "
                "The server only introduces you."
            </p>
        </section>
        <section aria-labelledby="ways-title">
            <h2 id="ways-title">"Three ways to meet"</h2>
            <ul class="cards">
                <li class="card" data-testid="way-friends">
                    <h3>"Friends"</h3>
                    <p>
                        "An account, friend requests, messages that wait for you, and calls that ring."
                    </p>
                    <p class="card-actions">
                        <Show
                            when=signed_in
                            fallback=|| {
                                view! {
                                    <A href="/signup" attr:class="button primary">"Create account"</A>
                                    " or "
                                    <A href="/signin">"sign in"</A>
                                }
                            }
                        >
                            <A href="/friends" attr:class="button primary">"Your friends"</A>
                        </Show>
                    </p>
                </li>
                <li class="card" data-testid="way-strangers">
                    <h3>"Strangers"</h3>
                    <p>"Random matching by shared interests, with next, report and block. No account needed."</p>
                    <p class="card-actions">
                        <A href="/strangers" attr:class="button primary">"Talk to a stranger"</A>
                    </p>
                </li>
                <li class="card" data-testid="way-codes">
                    <h3>"Meet with a code"</h3>
                    <p>"A short single-use code pairs two browsers, no account needed."</p>
                    <p class="card-actions">
                        <A href="/code/new" attr:class="button primary">"Create a code"</A>
                    </p>
                    <JoinWithCode />
                </li>
            </ul>
        </section>
    }
}

/// The joiner's field: the code goes to `/code` in the URL's fragment, which browsers never
/// send to a server (the button waits for the page to run, so no form post carries it).
#[component]
fn JoinWithCode() -> impl IntoView {
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    let input = NodeRef::<leptos::html::Input>::new();
    let navigate = use_navigate();
    view! {
        <form
            class="inline join-form"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let typed = input.get().map(|i| i.value()).unwrap_or_default();
                let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
                navigate(&format!("/code#join-{code}"), Default::default());
            }
        >
            <label for="home-code">"Code"</label>
            <input id="home-code" node_ref=input inputmode="numeric" autocomplete="off" placeholder="482 913 7150" />
            <button type="submit" disabled=move || !ready.get()>"Join"</button>
        </form>
    }
}
