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

    view! {
        <a class="skip-link" href="#main">
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
        <main id="main" tabindex="-1">
            {children()}
        </main>
        <footer class="site-footer">
            <p>"Parlor · open-source video chat you host yourself"</p>
        </footer>
    }
}
