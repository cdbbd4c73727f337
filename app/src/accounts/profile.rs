//! The signed-in user's profile: display name, password, sessions and account deletion.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use super::{
    api::{ChangeDisplayName, ChangePassword, DeleteAccount, Me, SignOutEverywhere},
    session::use_auth,
    validate::{MAX_DISPLAY_NAME, MAX_PASSWORD},
};
use crate::components::form::{last_error, succeeded, Field, FormError};

/// The page's actions, made once per page so their results outlive a re-render of the forms
/// (which happens every time the session is read again).
#[derive(Clone, Copy)]
struct Actions {
    change_display_name: ServerAction<ChangeDisplayName>,
    change_password: ServerAction<ChangePassword>,
    sign_out_everywhere: ServerAction<SignOutEverywhere>,
    delete_account: ServerAction<DeleteAccount>,
}

#[component]
pub fn ProfilePage() -> impl IntoView {
    let auth = use_auth();
    let actions = Actions {
        change_display_name: ServerAction::new(),
        change_password: ServerAction::new(),
        sign_out_everywhere: ServerAction::new(),
        delete_account: ServerAction::new(),
    };
    auth.refresh_after(actions.change_display_name);
    auth.refresh_after(actions.change_password);
    auth.refresh_after(actions.sign_out_everywhere);
    auth.refresh_after(actions.delete_account);
    view! {
        <Title text="Profile" />
        <section class="page narrow" aria-labelledby="profile-title">
            <h1 id="profile-title">"Profile"</h1>
            {move || match auth.session.get().user {
                Some(me) => view! { <ProfileForms me actions /> }.into_any(),
                None => view! { <Redirect path="/signin" /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn ProfileForms(me: Me, actions: Actions) -> impl IntoView {
    let Actions {
        change_display_name,
        change_password,
        sign_out_everywhere,
        delete_account,
    } = actions;
    let name_error = last_error(change_display_name);
    let name_saved = succeeded(change_display_name);
    let password_error = last_error(change_password);
    let password_saved = succeeded(change_password);
    let delete_error = last_error(delete_account);
    let everywhere_error = last_error(sign_out_everywhere);
    let has_password = me.has_password;

    view! {
        <p class="account-email">
            "Signed in as " <strong>{me.email.clone()}</strong>
            {me.google_linked.then_some(" · Google linked")}
        </p>

        <section aria-labelledby="name-title" class="card">
            <h2 id="name-title">"Display name"</h2>
            <ActionForm action=change_display_name>
                <FormError error=name_error />
                <Field
                    label="Display name"
                    name="display_name"
                    value=me.display_name.clone()
                    maxlength=MAX_DISPLAY_NAME
                    autocomplete="nickname"
                    error=name_error
                />
                <button type="submit" class="primary">"Save name"</button>
                <Show when=move || name_saved.get()>
                    <p class="form-ok" role="status">"Display name saved."</p>
                </Show>
            </ActionForm>
        </section>

        <section aria-labelledby="password-title" class="card">
            <h2 id="password-title">
                {if has_password { "Change password" } else { "Set a password" }}
            </h2>
            <ActionForm action=change_password>
                <FormError error=password_error />
                {if has_password {
                    view! {
                        <Field
                            label="Current password"
                            name="current_password"
                            kind="password"
                            autocomplete="current-password"
                            error=password_error
                        />
                    }
                        .into_any()
                } else {
                    view! { <input type="hidden" name="current_password" value="" /> }.into_any()
                }}
                <Field
                    label="New password"
                    name="new_password"
                    kind="password"
                    autocomplete="new-password"
                    maxlength=MAX_PASSWORD
                    hint="At least 8 characters. Your other devices will be signed out."
                    error=password_error
                />
                <button type="submit" class="primary">"Save password"</button>
                <Show when=move || password_saved.get()>
                    <p class="form-ok" role="status">"Password saved. Other sessions were signed out."</p>
                </Show>
            </ActionForm>
        </section>

        <section aria-labelledby="sessions-title" class="card">
            <h2 id="sessions-title">"Sessions"</h2>
            <p>"Sign out on every device where you are signed in, this one included."</p>
            <ActionForm action=sign_out_everywhere>
                <FormError error=everywhere_error />
                <button type="submit">"Sign out everywhere"</button>
            </ActionForm>
        </section>

        <section aria-labelledby="delete-title" class="card danger">
            <h2 id="delete-title">"Delete account"</h2>
            <p>
                "Deletes your account and everything stored with it. This cannot be undone."
            </p>
            <ActionForm action=delete_account>
                <FormError error=delete_error />
                {if has_password {
                    view! {
                        <Field
                            label="Password"
                            name="confirmation"
                            kind="password"
                            autocomplete="current-password"
                            hint="Enter your password to confirm."
                            error=delete_error
                        />
                    }
                        .into_any()
                } else {
                    view! {
                        <Field
                            label="Email address"
                            name="confirmation"
                            kind="email"
                            hint="Enter your email address to confirm."
                            error=delete_error
                        />
                    }
                        .into_any()
                }}
                <button type="submit" class="danger">"Delete my account"</button>
            </ActionForm>
        </section>
    }
}
