//! "Sign in with Google": the OAuth 2 authorization code flow with PKCE. The `state` and the
//! PKCE verifier travel in a short-lived signed cookie scoped to these routes; the callback
//! checks the state, exchanges the code, reads the userinfo endpoint, then signs the user in,
//! linking or creating the account. An existing account is linked only when its email is
//! proven; otherwise the identity waits for that account's password
//! (`app::server::auth::google`). Every failure ends on the sign-in page with a reason code
//! (`/signin?google=...`) and nothing else from the provider.

use app::server::{
    auth::{
        cookies::{GOOGLE_LINK, OAUTH_FLOW},
        google::{PendingLink, LINK_SECS, PROVIDER},
        session::now_secs,
        GoogleSettings,
    },
    db::users::{CreateUserError, UserRow},
    state::AppState,
};
use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use oauth2::{
    basic::BasicClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

const FLOW_SECS: u64 = 600;

/// What the flow cookie carries between the redirect and the callback.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    verifier: String,
    exp: u64,
}

/// Google's answer at the userinfo endpoint (OpenID Connect standard claims).
#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a Google sign-in ended without signing in; the sign-in page explains each.
enum Failure {
    /// The user declined at Google.
    Denied,
    /// An account with this email exists whose email is not proven: enter its password to
    /// link (the identity waits in a cookie).
    LinkNeeded(String),
    /// The account with this email already has another Google identity.
    Taken,
    /// Anything else: bad state, bad code, provider unreachable.
    Failed,
}

fn client(
    google: &GoogleSettings,
) -> Result<
    BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    oauth2::url::ParseError,
> {
    Ok(BasicClient::new(ClientId::new(google.client_id.clone()))
        .set_client_secret(ClientSecret::new(google.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(google.auth_url.clone())?)
        .set_token_uri(TokenUrl::new(google.token_url.clone())?)
        .set_redirect_uri(RedirectUrl::new(google.redirect_url.clone())?))
}

/// `GET /auth/google`: off to the provider's consent page.
pub async fn start(State(state): State<AppState>) -> Response {
    let Some(google) = &state.auth.google else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(client) = client(google) else {
        return fail(Failure::Failed, &state, "invalid provider URL");
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let flow = state.auth.sessions.sign(&Flow {
        state: csrf.secret().clone(),
        verifier: verifier.secret().clone(),
        exp: now_secs() + FLOW_SECS,
    });
    let cookie = flow_cookie(&state, &flow, FLOW_SECS);
    ([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response()
}

/// `GET /auth/google/callback`: back from the provider.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    match finish(&state, &headers, callback).await {
        Ok(user) => {
            tracing::info!(user_id = user.id, "signed in with Google");
            let sessions = &state.auth.sessions;
            let session = sessions.cookie(&sessions.issue(user.id, user.token_version));
            let mut response = Redirect::to("/").into_response();
            append_cookie(&mut response, &session);
            append_cookie(&mut response, &flow_cookie(&state, "", 0));
            response
        }
        Err((failure, why)) => fail(failure, &state, why),
    }
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    callback: Callback,
) -> Result<UserRow, (Failure, &'static str)> {
    let google = state
        .auth
        .google
        .as_ref()
        .ok_or((Failure::Failed, "Google sign-in not configured"))?;
    if let Some(error) = callback.error {
        let failure = if error == "access_denied" {
            Failure::Denied
        } else {
            Failure::Failed
        };
        return Err((failure, "the provider returned an error"));
    }
    let flow: Flow = OAUTH_FLOW
        .from_headers(headers, state.auth.sessions.secure())
        .and_then(|token| state.auth.sessions.open(&token))
        .ok_or((Failure::Failed, "missing or expired flow cookie"))?;
    if callback.state.as_deref() != Some(flow.state.as_str()) {
        return Err((Failure::Failed, "state mismatch"));
    }
    let code = callback.code.ok_or((Failure::Failed, "no code"))?;

    let http = reqwest::Client::builder()
        // Following redirects from the provider would open the server to SSRF.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|_| (Failure::Failed, "HTTP client"))?;
    let client = client(google).map_err(|_| (Failure::Failed, "invalid provider URL"))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
        .request_async(&http)
        .await
        .map_err(|_| (Failure::Failed, "code exchange refused"))?;
    let info: UserInfo = http
        .get(&google.userinfo_url)
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|_| (Failure::Failed, "userinfo request failed"))?
        .json()
        .await
        .map_err(|_| (Failure::Failed, "userinfo unreadable"))?;

    resolve_account(state, info).await
}

/// The account for a Google identity: the linked one; else an existing account with the same
/// email, linked only when both Google and the account have proven that email (else the
/// identity waits for the account's password); else a new account.
async fn resolve_account(
    state: &AppState,
    info: UserInfo,
) -> Result<UserRow, (Failure, &'static str)> {
    let db = &state.db;
    let db_failed = |_| (Failure::Failed, "database");
    if let Some(user) = db
        .user_by_identity(PROVIDER, &info.sub)
        .await
        .map_err(db_failed)?
    {
        return Ok(user);
    }
    let email = app::accounts::validate::email(&info.email)
        .map_err(|_| (Failure::Failed, "provider sent an invalid email"))?;
    if let Some(user) = db.user_by_email(&email).await.map_err(db_failed)? {
        if user.google_linked {
            return Err((Failure::Taken, "the account has another Google identity"));
        }
        if !(info.email_verified && user.email_verified) {
            let pending = state.auth.sessions.sign(&PendingLink {
                google_sub: info.sub.clone(),
                email: email.clone(),
                exp: now_secs() + LINK_SECS,
            });
            return Err((
                Failure::LinkNeeded(pending),
                "the account's password is needed",
            ));
        }
        db.link_identity(user.id, PROVIDER, &info.sub, &email)
            .await
            .map_err(db_failed)?;
        tracing::info!(
            user_id = user.id,
            "Google identity linked to an existing account"
        );
        return Ok(user);
    }
    let name = info
        .name
        .as_deref()
        .and_then(|n| app::accounts::validate::display_name(n).ok())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("Parlor user").to_string());
    let user = match db
        .create_user(&email, info.email_verified, &name, None)
        .await
    {
        Ok(user) => user,
        Err(CreateUserError::EmailTaken) => return Err((Failure::Failed, "email taken meanwhile")),
        Err(CreateUserError::Db(_)) => return Err((Failure::Failed, "database")),
    };
    db.link_identity(user.id, PROVIDER, &info.sub, &email)
        .await
        .map_err(db_failed)?;
    tracing::info!(user_id = user.id, "account created with Google");
    Ok(user)
}

fn fail(failure: Failure, state: &AppState, why: &str) -> Response {
    let code = match failure {
        Failure::Denied => "denied",
        Failure::LinkNeeded(_) => "link",
        Failure::Taken => "taken",
        Failure::Failed => "failed",
    };
    tracing::info!(code, why, "Google sign-in did not complete");
    let mut response = Redirect::to(&format!("/signin?google={code}")).into_response();
    append_cookie(&mut response, &flow_cookie(state, "", 0));
    if let Failure::LinkNeeded(token) = &failure {
        let secure = state.auth.sessions.secure();
        append_cookie(&mut response, &GOOGLE_LINK.set(token, LINK_SECS, secure));
    }
    response
}

fn flow_cookie(state: &AppState, value: &str, max_age: u64) -> String {
    OAUTH_FLOW.set(value, max_age, state.auth.sessions.secure())
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
