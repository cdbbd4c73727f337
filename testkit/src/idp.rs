//! A stand-in for Google's identity provider that speaks the same protocol Parlor uses:
//! the authorization endpoint (a consent page a person or a test fills in: who to sign in as,
//! allow or deny), the token endpoint (authorization code + PKCE S256 + client credentials in
//! HTTP Basic or the form), and the userinfo endpoint (Bearer token). Codes are single use
//! and bound to client, redirect URI and PKCE challenge; anything else is refused the way the
//! real provider refuses it (`invalid_grant`, `invalid_client`, 401).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Form, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Json, Router,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The one client the provider knows.
pub const CLIENT_ID: &str = "parlor-test-client";
pub const CLIENT_SECRET: &str = "parlor-test-secret";

/// Who the user signs in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
}

struct Grant {
    identity: Identity,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Provider {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Identity>,
    counter: u64,
}

type Shared = Arc<Mutex<Provider>>;

pub fn router() -> Router {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/authorize/decide", post(decide))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(Shared::default())
}

/// Serves the provider on `addr` (port 0 for any); returns the bound address.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router()).await });
    Ok(bound)
}

#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct AuthorizeParams {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    #[serde(default)]
    pub scope: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The consent page.
async fn authorize(Query(p): Query<AuthorizeParams>) -> Response {
    if p.client_id != CLIENT_ID || p.response_type != "code" || p.code_challenge_method != "S256" {
        return (StatusCode::BAD_REQUEST, "invalid_request").into_response();
    }
    let hidden = |name: &str, value: &str| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value)
        )
    };
    Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><title>Stand-in identity provider</title></head>
<body><main><h1>Sign in to Parlor</h1>
<form method="post" action="/authorize/decide">
{}{}{}{}
<label>Email <input name="email" type="email" value="tester@example.com"></label>
<label>Name <input name="name" value="Test User"></label>
<label>Subject <input name="sub" value="subject-1"></label>
<label><input name="email_verified" type="checkbox" value="true" checked> Email verified</label>
<button name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Deny</button>
</form></main></body></html>"#,
        hidden("client_id", &p.client_id),
        hidden("redirect_uri", &p.redirect_uri),
        hidden("state", &p.state),
        hidden("code_challenge", &p.code_challenge),
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub email: String,
    pub name: String,
    pub sub: String,
    #[serde(default)]
    pub email_verified: Option<String>,
    pub decision: String,
}

async fn decide(State(provider): State<Shared>, Form(d): Form<Decision>) -> Response {
    if d.client_id != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "invalid_request").into_response();
    }
    let sep = if d.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    // The state goes back exactly as received.
    let state = form_encode(&d.state);
    if d.decision != "allow" {
        return Redirect::to(&format!(
            "{}{sep}error=access_denied&state={state}",
            d.redirect_uri
        ))
        .into_response();
    }
    let mut p = provider.lock().unwrap();
    p.counter += 1;
    let code = format!("code-{}-{}", p.counter, d.sub.len());
    p.codes.insert(
        code.clone(),
        Grant {
            identity: Identity {
                sub: d.sub,
                email: d.email,
                email_verified: d.email_verified.as_deref() == Some("true"),
                name: d.name,
            },
            redirect_uri: d.redirect_uri.clone(),
            challenge: d.code_challenge,
        },
    );
    Redirect::to(&format!("{}{sep}code={code}&state={state}", d.redirect_uri)).into_response()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

async fn token(
    State(provider): State<Shared>,
    headers: HeaderMap,
    Form(t): Form<TokenRequest>,
) -> Response {
    // Client credentials: HTTP Basic (what the oauth2 crate sends) or the form.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = basic.unwrap_or((
        t.client_id.clone().unwrap_or_default(),
        t.client_secret.clone().unwrap_or_default(),
    ));
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if t.grant_type != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let mut p = provider.lock().unwrap();
    // Single use: a code is gone once presented, valid or not.
    let Some(grant) = p.codes.remove(&t.code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(t.code_verifier.as_bytes()));
    if grant.redirect_uri != t.redirect_uri || grant.challenge != challenge {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    p.counter += 1;
    let access = format!("access-{}", p.counter);
    p.tokens.insert(access.clone(), grant.identity);
    Json(serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid email profile",
    }))
    .into_response()
}

async fn userinfo(State(provider): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| provider.lock().unwrap().tokens.get(t).cloned()) {
        Some(identity) => Json(identity).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
