//! Parlor's application, shared by the server (SSR, feature `ssr`) and the browser (feature
//! `hydrate`). Each way to meet has its own module with its pages and server functions
//! ([`friends`], [`messages`], calls in `calls` on the shared WebRTC engine; strangers and
//! codes are next, for accounts and [`guests`] alike), beside [`accounts`]. [`protocol`] and
//! [`wire`] are what the browser and the server say to each other. Server-only code lives
//! under [`server`], behind the one `ssr` gate.

// Deeply nested views have deeply nested types; release builds need more room for them.
#![recursion_limit = "256"]

pub mod accounts;
mod calls;
mod components;
pub mod error;
pub mod friends;
pub mod guests;
pub mod messages;
mod pages;
pub mod protocol;
mod realtime;
#[cfg(feature = "ssr")]
pub mod server;
pub mod status;
pub mod webrtc;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

use accounts::{profile::ProfilePage, sign_in::SignInPage, sign_up::SignUpPage};
use components::layout::Layout;
use friends::page::FriendsPage;
use messages::page::{ConversationPage, MessagesLayout, NoConversation};
use pages::{home::HomePage, not_found::NotFound};
use status::page::StatusPage;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    server::headers::content_security_policy(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta
                    name="description"
                    content="Parlor: self-hosted video chat with friends, strangers, or a one-time code."
                />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // `/pkg/parlor.css`, or its hashed name in a release build.
                <HashedStylesheet options=options.clone() id="leptos" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The root component: metadata, the router and the site layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let unread = realtime::provide_realtime().unread;

    view! {
        // Unread messages lead the title, so they show on the tab.
        <Title formatter=move |title: String| {
            let title = if title.is_empty() { "Parlor".to_string() } else { format!("{title} · Parlor") };
            match unread.get() {
                0 => title,
                n => format!("({n}) {title}"),
            }
        } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage />
                    <Route path=path!("/signin") view=SignInPage />
                    <Route path=path!("/signup") view=SignUpPage />
                    <Route path=path!("/profile") view=ProfilePage />
                    <Route path=path!("/friends") view=FriendsPage />
                    <ParentRoute path=path!("/messages") view=MessagesLayout>
                        <Route path=path!("") view=NoConversation />
                        <Route path=path!(":id") view=ConversationPage />
                    </ParentRoute>
                    // Async: the page arrives complete, so it reads well without JavaScript.
                    <Route path=path!("/status") view=StatusPage ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}
