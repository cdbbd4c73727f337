//! The session as the page sees it: who is signed in, and whether Google sign-in is offered.
//! The server renders it into the first HTML (no loading state, no flash of "Sign in") and
//! hands the same value to the browser with the page; after an account action the browser
//! asks the server again. It is a plain signal, not a resource, so no `<Suspense>` waits on
//! it.
//!
//! Account forms create their own server actions (a form posted without JavaScript finds its
//! error in the URL, which only route views see) and call [`AuthContext::refresh_after`].

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::accounts::api::{current_session, SessionInfo, SignOut};

#[derive(Clone, Copy)]
pub struct AuthContext {
    pub session: RwSignal<SessionInfo>,
    pub sign_out: ServerAction<SignOut>,
}

impl AuthContext {
    /// Whether the one signed in moderates strangers and runs the server (tracks the session).
    pub fn is_moderator(self) -> bool {
        self.session
            .with(|s| s.user.as_ref().is_some_and(|u| u.moderator))
    }

    /// Asks the server who is signed in now.
    pub fn refresh(self) {
        leptos::task::spawn_local(async move {
            match current_session().await {
                Ok(info) => self.session.set(info),
                Err(error) => leptos::logging::warn!("reading the session failed: {error}"),
            }
        });
    }

    /// Reads the session again each time `action` completes.
    pub fn refresh_after<S>(self, action: ServerAction<S>)
    where
        S: ServerFn + Clone + Send + Sync + 'static,
        S::Output: Send + Sync + 'static,
        S::Error: Send + Sync + 'static,
    {
        Effect::new(move |_| {
            if action.version().get() > 0 {
                self.refresh();
            }
        });
    }
}

pub fn provide_auth() {
    let initial = SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            crate::server::auth::session_info()
        }
        // In the browser the value comes from the page; this runs only without one.
        #[cfg(not(feature = "ssr"))]
        {
            SessionInfo::default()
        }
    });
    let context = AuthContext {
        session: RwSignal::new(initial.into_inner()),
        sign_out: ServerAction::<SignOut>::new(),
    };
    context.refresh_after(context.sign_out);
    provide_context(context);
}

/// The session context. The layout provides it above every route, so it is always there.
pub fn use_auth() -> AuthContext {
    use_context::<AuthContext>().expect("AuthContext is provided by the layout")
}
