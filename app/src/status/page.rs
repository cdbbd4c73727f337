//! The server status page: version, database and schema, read from the database through the
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
            <Suspense fallback=|| view! { <p aria-busy="true">"Loading…"</p> }>
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
    let migrations = status
        .migrations
        .into_iter()
        .map(|m| {
            view! {
                <li>
                    <span class="migration-version">{m.version}</span>
                    " "
                    {m.description}
                </li>
            }
        })
        .collect_view();

    view! {
        <dl class="facts" data-testid="server-status">
            <dt>"Version"</dt>
            <dd>{status.version}</dd>
            <dt>"Database"</dt>
            <dd data-testid="database">{status.database}</dd>
            <dt>"Data created"</dt>
            <dd>
                <time datetime=status.created_at.clone()>{status.created_at.clone()}</time>
            </dd>
            <dt>"Schema migrations"</dt>
            <dd>
                <ol class="migrations" data-testid="migrations">
                    {migrations}
                </ol>
            </dd>
        </dl>
    }
}
