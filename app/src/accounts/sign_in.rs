//! Sign in with email and password, or with Google when the server has it configured.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::{api::SignIn, session::use_auth};
use crate::components::form::{last_error, Field, FormError};

#[component]
pub fn SignInPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    use_auth().refresh_after(sign_in);
    let error = last_error(sign_in);
    let pending = sign_in.pending();

    view! {
        <Title text="Sign in" />
        <section class="page narrow" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">"Sign in"</h1>
            <GoogleProblem />
            <ActionForm action=sign_in>
                <FormError error />
                <Field label="Email" name="email" kind="email" autocomplete="email" error />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="current-password"
                    error
                />
                <button type="submit" class="primary" disabled=pending>
                    "Sign in"
                </button>
            </ActionForm>
            <GoogleButton />
            <p>"New here? " <A href="/signup">"Create an account"</A></p>
        </section>
    }
}

/// "Sign in with Google", shown only when the server has Google configured.
#[component]
pub fn GoogleButton() -> impl IntoView {
    let auth = use_auth();
    view! {
        <Show when=move || auth.session.with(|s| s.google_sign_in)>
            <p class="or">"or"</p>
            <a class="button google" href="/auth/google" rel="external">
                "Sign in with Google"
            </a>
        </Show>
    }
}

/// Explains why Google sign-in came back without signing in (`?google=...`).
#[component]
fn GoogleProblem() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let message = move || {
        query.read().get("google").map(|code| match code.as_str() {
            "denied" => "Google sign-in was cancelled.",
            "link" => {
                "An account with this email already exists. Sign in with its password to link your Google account to it."
            }
            "taken" => {
                "The account with this email is already linked to another Google account. Sign in with that one, or with your password."
            }
            _ => "Google sign-in did not work. Please try again.",
        })
    };
    view! {
        <Show when=move || message().is_some()>
            <p class="form-error" role="alert">{message}</p>
        </Show>
    }
}
