//! Google sign-in against the stand-in identity provider (same protocol: authorize redirect,
//! code exchange with PKCE, userinfo), including its error cases.

use serde_json::Value;
use server::config::{GoogleConfig, Secret};
use testkit::idp;

use crate::helpers::TestApp;

async fn app_with_google() -> TestApp {
    let idp = idp::spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    TestApp::spawn_with(|config| {
        config.google = Some(GoogleConfig {
            client_id: idp::CLIENT_ID.into(),
            client_secret: Secret::new(idp::CLIENT_SECRET),
            auth_url: format!("http://{idp}/authorize"),
            token_url: format!("http://{idp}/token"),
            userinfo_url: format!("http://{idp}/userinfo"),
        })
    })
    .await
}

struct Consent<'a> {
    email: &'a str,
    sub: &'a str,
    verified: bool,
    allow: bool,
}

impl Default for Consent<'_> {
    fn default() -> Self {
        Self {
            email: "gina@example.com",
            sub: "google-sub-1",
            verified: true,
            allow: true,
        }
    }
}

fn location(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers()["location"].to_str().unwrap().to_string()
}

/// Starts the flow in `browser`, answers the consent page, and returns the callback URL the
/// provider sends the browser back to (pointed at the test app).
async fn consent(app: &TestApp, browser: &reqwest::Client, consent: Consent<'_>) -> String {
    let start = browser.get(app.url("/auth/google")).send().await.unwrap();
    let authorize = location(&start);
    let url = url::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].contains("email"));
    // The consent page is there for people.
    let page = browser
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow"), "{page}");

    let verified = if consent.verified { "true" } else { "" };
    let decision = if consent.allow { "allow" } else { "deny" };
    let mut form = vec![
        ("client_id", q["client_id"].as_str()),
        ("redirect_uri", q["redirect_uri"].as_str()),
        ("state", q["state"].as_str()),
        ("code_challenge", q["code_challenge"].as_str()),
        ("email", consent.email),
        ("name", "Gina G"),
        ("sub", consent.sub),
        ("decision", decision),
    ];
    if consent.verified {
        form.push(("email_verified", verified));
    }
    let decided = browser
        .post(format!(
            "{}://{}/authorize/decide",
            url.scheme(),
            url.authority()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    // The configured public URL has no port in tests; the app listens on its own.
    location(&decided).replacen("http://127.0.0.1/", &app.url("/"), 1)
}

async fn finish(browser: &reqwest::Client, callback: &str) -> String {
    location(&browser.get(callback).send().await.unwrap())
}

#[tokio::test]
async fn the_google_button_appears_only_when_configured() {
    let plain = TestApp::spawn().await;
    assert_eq!(plain.get("/auth/google").await.status(), 404);
    let html = plain.get("/signin").await.text().await.unwrap();
    assert!(!html.contains("Sign in with Google"));

    let app = app_with_google().await;
    let html = app.get("/signin").await.text().await.unwrap();
    assert!(html.contains("Sign in with Google"), "{html}");
}

#[tokio::test]
async fn first_google_sign_in_creates_an_account() {
    let app = app_with_google().await;
    let browser = app.browser();
    let callback = consent(&app, &browser, Consent::default()).await;
    assert_eq!(finish(&browser, &callback).await, "/");
    let me = app.me(&browser).await;
    assert_eq!(me["email"], "gina@example.com");
    assert_eq!(me["display_name"], "Gina G");
    assert_eq!(me["google_linked"], true);
    assert_eq!(me["has_password"], false);

    // Signing in again finds the same account.
    let again = app.browser();
    let callback = consent(&app, &again, Consent::default()).await;
    assert_eq!(finish(&again, &callback).await, "/");
    assert_eq!(app.me(&again).await["id"], me["id"]);
}

#[tokio::test]
async fn a_password_account_is_linked_only_after_its_password_is_entered() {
    let app = app_with_google().await;
    let owner = app.browser();
    app.sign_up(&owner, "Gina@Example.com", "Gina", "correct horse battery")
        .await;
    let id = app.me(&owner).await["id"].clone();

    // Google vouches for the email, but the account never proved it: no silent link.
    let browser = app.browser();
    let callback = consent(&app, &browser, Consent::default()).await;
    assert_eq!(finish(&browser, &callback).await, "/signin?google=link");
    assert_eq!(app.me(&browser).await, Value::Null);
    let html = app.page(&browser, "/signin?google=link").await;
    assert!(html.contains("Sign in with its password to link"), "{html}");
    assert_eq!(app.me(&owner).await["google_linked"], false);

    // The owner enters the account's password in that browser: now it is linked.
    let response = app
        .sign_in(&browser, "gina@example.com", "correct horse battery")
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let me = app.me(&browser).await;
    assert_eq!(me["id"], id);
    assert_eq!(me["google_linked"], true);
    assert_eq!(me["has_password"], true);
    // From now on Google alone signs in to it.
    let later = app.browser();
    let callback = consent(&app, &later, Consent::default()).await;
    assert_eq!(finish(&later, &callback).await, "/");
    assert_eq!(app.me(&later).await["id"], id);
}

#[tokio::test]
async fn a_squatter_who_signed_up_with_someone_elses_email_never_gets_their_google_identity() {
    let app = app_with_google().await;
    let squatter = app.browser();
    app.sign_up(
        &squatter,
        "gina@example.com",
        "Not Gina",
        "squatters password",
    )
    .await;
    // The real Gina uses Google: she is not let into the squatter's account...
    let gina = app.browser();
    let callback = consent(&app, &gina, Consent::default()).await;
    assert_eq!(finish(&gina, &callback).await, "/signin?google=link");
    assert_eq!(app.me(&gina).await, Value::Null);
    // ...and the squatter signing in (in their own browser, without her pending identity)
    // links nothing.
    let response = app
        .sign_in(&squatter, "gina@example.com", "squatters password")
        .await;
    assert!(response.status().is_success());
    assert_eq!(app.me(&squatter).await["google_linked"], false);
    // A wrong password in Gina's browser links nothing either.
    let response = app
        .sign_in(&gina, "gina@example.com", "a wrong guess")
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.me(&squatter).await["google_linked"], false);
}

#[tokio::test]
async fn an_unverified_google_email_does_not_take_over_an_existing_account() {
    let app = app_with_google().await;
    app.sign_up(
        &app.browser(),
        "gina@example.com",
        "Gina",
        "correct horse battery",
    )
    .await;
    let browser = app.browser();
    let callback = consent(
        &app,
        &browser,
        Consent {
            verified: false,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(finish(&browser, &callback).await, "/signin?google=link");
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn an_account_keeps_at_most_one_google_identity() {
    let app = app_with_google().await;
    let first = app.browser();
    let callback = consent(&app, &first, Consent::default()).await;
    assert_eq!(finish(&first, &callback).await, "/");
    // Another Google account claiming the same (verified) email.
    let second = app.browser();
    let callback = consent(
        &app,
        &second,
        Consent {
            sub: "google-sub-2",
            ..Default::default()
        },
    )
    .await;
    assert_eq!(finish(&second, &callback).await, "/signin?google=taken");
    assert_eq!(app.me(&second).await, Value::Null);
}

#[tokio::test]
async fn denied_consent_returns_to_sign_in_with_a_message() {
    let app = app_with_google().await;
    let browser = app.browser();
    let callback = consent(
        &app,
        &browser,
        Consent {
            allow: false,
            ..Default::default()
        },
    )
    .await;
    assert!(callback.contains("error=access_denied"));
    assert_eq!(finish(&browser, &callback).await, "/signin?google=denied");
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn a_wrong_state_is_refused() {
    let app = app_with_google().await;
    let browser = app.browser();
    let callback = consent(&app, &browser, Consent::default()).await;
    let forged = regex_replace(&callback, "state=", "state=forged");
    assert_eq!(finish(&browser, &forged).await, "/signin?google=failed");
    assert_eq!(app.me(&browser).await, Value::Null);
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused() {
    // The attacker's own callback URL, opened in the victim's browser (login CSRF): the victim
    // has no flow cookie, so nothing happens.
    let app = app_with_google().await;
    let attacker = app.browser();
    let callback = consent(&app, &attacker, Consent::default()).await;
    let victim = app.browser();
    assert_eq!(finish(&victim, &callback).await, "/signin?google=failed");
    assert_eq!(app.me(&victim).await, Value::Null);
}

#[tokio::test]
async fn a_bad_or_reused_code_is_refused() {
    let app = app_with_google().await;
    let browser = app.browser();
    let callback = consent(&app, &browser, Consent::default()).await;
    let bad = regex_replace(&callback, "code=", "code=bogus");
    assert_eq!(finish(&browser, &bad).await, "/signin?google=failed");
    assert_eq!(app.me(&browser).await, Value::Null);

    // A code works once: the provider refuses a replay even with a fresh flow.
    let browser = app.browser();
    let callback = consent(&app, &browser, Consent::default()).await;
    assert_eq!(finish(&browser, &callback).await, "/");
    let other = app.browser();
    let fresh = consent(&app, &other, Consent::default()).await;
    let state = fresh.split("state=").nth(1).unwrap();
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let replay = format!(
        "{}?code={code}&state={state}",
        app.url("/auth/google/callback")
    );
    assert_eq!(finish(&other, &replay).await, "/signin?google=failed");
}

/// Replaces the value after `key` (up to the next `&`) with what follows it in `with`.
fn regex_replace(url: &str, key: &str, with: &str) -> String {
    let (head, tail) = url.split_once(key).unwrap();
    let rest = tail
        .split_once('&')
        .map(|(_, r)| format!("&{r}"))
        .unwrap_or_default();
    format!("{head}{with}{rest}")
}
