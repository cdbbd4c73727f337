//! Parlor's application, shared by the server (SSR, feature `ssr`) and the browser (feature
//! `hydrate`). Each way to meet has its own module with its pages and server functions
//! ([`friends`], [`messages`], calls in `calls` on the shared WebRTC engine, [`codes`],
//! [`strangers`]), for accounts and [`guests`] alike, beside [`accounts`]. [`protocol`],
//! [`rendezvous`] and [`wire`] are what the browser and the server say to each other.
//! Server-only code lives under [`server`](mod@server), behind the one `ssr` gate.

// Deeply nested views have deeply nested types; release builds need more room for them.
#![recursion_limit = "256"]

pub mod accounts;
mod calls;
pub mod codes;
mod components;
pub mod connectivity;
pub mod error;
pub mod friends;
pub mod guests;
pub mod messages;
mod pages;
pub mod protocol;
mod realtime;
pub mod rendezvous;
#[cfg(feature = "ssr")]
pub mod server;
pub mod status;
pub mod strangers;
pub mod webrtc;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    lazy_route, path, Lazy, LazyRoute, SsrMode,
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
        // Unread messages lead the title, so they show on the tab. The server renders none
        // (the count comes over the socket) and must not read the signal: leptos_axum calls
        // the formatter after the render, outside the request's reactive arena, where a read
        // panics (it did, for about one HTTPS page in ten).
        <Title formatter=move |title: String| {
            let title = if title.is_empty() { "Parlor".to_string() } else { format!("{title} · Parlor") };
            let unread = if cfg!(feature = "ssr") { 0 } else { unread.get() };
            match unread {
                0 => title,
                n => format!("({n}) {title}"),
            }
        } />
        <Router>
            <Layout>
                // The pages a visitor opens first are in the main bundle; the others are
                // loaded when first visited (see `Friends` below).
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage />
                    <Route path=path!("/signin") view=SignInPage />
                    <Route path=path!("/signup") view=SignUpPage />
                    <Route path=path!("/profile") view={Lazy::<Profile>::new()} />
                    <Route path=path!("/friends") view={Lazy::<Friends>::new()} />
                    <Route path=path!("/strangers") view={Lazy::<Strangers>::new()} />
                    <Route path=path!("/moderation") view={Lazy::<Moderation>::new()} />
                    <Route path=path!("/connectivity") view={Lazy::<Connectivity>::new()} />
                    <Route path=path!("/code") view={Lazy::<Code>::new()} />
                    <Route path=path!("/code/new") view={Lazy::<NewCode>::new()} />
                    <ParentRoute path=path!("/messages") view={Lazy::<Messages>::new()}>
                        <Route path=path!("") view=NoConversation />
                        <Route path=path!(":id") view={Lazy::<Conversation>::new()} />
                    </ParentRoute>
                    // Async: the page arrives complete, so it reads well without JavaScript.
                    <Route path=path!("/status") view={Lazy::<Status>::new()} ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}

// Pages split off the main bundle: `#[lazy_route]` makes each `view` a split point, so the
// page's code (and what only it uses) becomes a wasm chunk of its own
// (`cargo leptos build --split`), loaded when the page is first visited. The server renders
// them like any page and names their chunks in `<link rel="preload">` so hydration does not
// wait for them. They take no route data: each page loads its own.

/// `/friends`: search, requests, the friends list.
struct Friends;

#[lazy_route]
impl LazyRoute for Friends {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <FriendsPage /> }.into_any()
    }
}

/// `/strangers`: talk to a stranger.
struct Strangers;

#[lazy_route]
impl LazyRoute for Strangers {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <strangers::page::StrangersPage /> }.into_any()
    }
}

/// `/connectivity`: test your connection before a call.
struct Connectivity;

#[lazy_route]
impl LazyRoute for Connectivity {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <connectivity::page::ConnectivityPage /> }.into_any()
    }
}

/// `/moderation`: reports on strangers and moderators' decisions.
struct Moderation;

#[lazy_route]
impl LazyRoute for Moderation {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <strangers::moderation_page::ModerationPage /> }.into_any()
    }
}

/// `/code`: make a code or join with one, and the code call around the call window.
struct Code;

#[lazy_route]
impl LazyRoute for Code {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <codes::page::CodePage /> }.into_any()
    }
}

/// `/code/new`: the same page, making a code at once (the home page's button).
struct NewCode;

#[lazy_route]
impl LazyRoute for NewCode {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <codes::page::CodePage create=true /> }.into_any()
    }
}

/// `/messages`: the conversation list around the open conversation.
struct Messages;

#[lazy_route]
impl LazyRoute for Messages {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <MessagesLayout /> }.into_any()
    }
}

/// `/messages/:id`: one conversation.
struct Conversation;

#[lazy_route]
impl LazyRoute for Conversation {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ConversationPage /> }.into_any()
    }
}

/// `/profile`: the account's settings.
struct Profile;

#[lazy_route]
impl LazyRoute for Profile {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ProfilePage /> }.into_any()
    }
}

/// `/status`: the operator's status page.
struct Status;

#[lazy_route]
impl LazyRoute for Status {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <StatusPage /> }.into_any()
    }
}
