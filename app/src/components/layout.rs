//! The frame around every page: skip link, header with the main navigation, the `<main>`
//! landmark and the footer. Also marks the body once the page has hydrated.

use leptos::prelude::*;
use leptos_router::components::A;

use super::auth::{provide_auth, use_auth};

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // Inside the router: account actions then see an error a form post without JavaScript
    // brought back in the URL.
    provide_auth();

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
                    <li>
                        <A href="/status">"Status"</A>
                    </li>
                </ul>
            </nav>
            <AccountMenu />
        </header>
        <main id="main" tabindex="-1" node_ref=main>
            {children()}
        </main>
        <footer class="site-footer">
            <p>"Parlor · open-source video chat you host yourself"</p>
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
