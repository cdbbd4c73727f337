//! The public status page: whether Parlor and its database answer, checked through the
//! `get_status` server function.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::error_panel::ErrorPanel;
use crate::status::api::{get_status, ServerStatus};

#[component]
pub fn StatusPage() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_status());

    view! {
        <Title text="Status" />
        <section class="page" aria-labelledby="status-title">
            <h1 id="status-title">"Server status"</h1>
            <Suspense fallback=|| view! { <p aria-busy="true">"Checking…"</p> }>
                <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                    {move || Suspend::new(async move {
                        status.await.map(|status| view! { <StatusDetails status /> })
                    })}
                </ErrorBoundary>
            </Suspense>
        </section>
    }
}

#[component]
fn StatusDetails(status: ServerStatus) -> impl IntoView {
    view! {
        <p class="status-ok" data-testid="server-status" role="status">
            "All systems working: accounts, messages and calls are available."
        </p>
        <p class="muted">
            "Checked at "
            <time datetime=status.checked_at.clone()>{status.checked_at.clone()}</time>
            "."
        </p>
    }
}
