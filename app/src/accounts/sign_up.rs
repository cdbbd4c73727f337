//! Create an account with email, display name and password.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::{
    api::SignUp,
    session::use_auth,
    sign_in::GoogleButton,
    validate::{MAX_DISPLAY_NAME, MAX_EMAIL, MAX_PASSWORD},
};
use crate::components::form::{last_error, Field, FormError};

#[component]
pub fn SignUpPage() -> impl IntoView {
    let sign_up = ServerAction::<SignUp>::new();
    use_auth().refresh_after(sign_up);
    let error = last_error(sign_up);
    let pending = sign_up.pending();

    view! {
        <Title text="Create an account" />
        <section class="page narrow" aria-labelledby="sign-up-title">
            <h1 id="sign-up-title">"Create an account"</h1>
            <ActionForm action=sign_up>
                <FormError error />
                <Field
                    label="Email"
                    name="email"
                    kind="email"
                    autocomplete="email"
                    maxlength=MAX_EMAIL
                    error
                />
                <Field
                    label="Display name"
                    name="display_name"
                    autocomplete="nickname"
                    maxlength=MAX_DISPLAY_NAME
                    hint="How friends see you. You can change it later."
                    error
                />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    maxlength=MAX_PASSWORD
                    hint="At least 8 characters."
                    error
                />
                <button type="submit" class="primary" disabled=pending>
                    "Create account"
                </button>
            </ActionForm>
            <GoogleButton />
            <p>"Already have an account? " <A href="/signin">"Sign in"</A></p>
        </section>
    }
}
