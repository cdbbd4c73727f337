//! The frame around every page: skip link, header with the main navigation, the `<main>`
//! landmark and the footer. Also marks the body once the page has hydrated.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
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
        </header>
        <main id="main" tabindex="-1" node_ref=main>
            {children()}
        </main>
        <footer class="site-footer">
            <p>"Parlor · open-source video chat you host yourself"</p>
        </footer>
    }
}
