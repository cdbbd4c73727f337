//! What a browser does to get in, for the integration tests and the benchmark alike: signing
//! up, reading the cookie a response set, calling a server function with a cookie, and
//! opening the real-time socket as a page of the site would.

use reqwest::Response;
use serde_json::Value;
use tokio_tungstenite::{
    tungstenite::{self, client::IntoClientRequest, http::HeaderValue},
    MaybeTlsStream, WebSocketStream,
};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The `name=value` part of the `Set-Cookie` a response carries for cookie `name`.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// Calls server function `path` (e.g. `/api/auth/session`) with `cookie`, form-encoded as the
/// browser's fetch does.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Response {
    http.post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("request sent")
}

/// Signs up an account; returns its user id and session cookie (`parlor_session=…`).
pub async fn sign_up(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    name: &str,
    password: &str,
) -> (i64, String) {
    let response = http
        .post(format!("{base}/api/auth/sign_up"))
        .form(&[
            ("email", email),
            ("display_name", name),
            ("password", password),
        ])
        .send()
        .await
        .expect("request sent");
    assert!(
        response.status().is_success(),
        "sign-up: {}",
        response.status()
    );
    let cookie = set_cookie(&response, "parlor_session").expect("a session cookie");
    let session: Value = call(http, base, &cookie, "/api/auth/session", &[])
        .await
        .json()
        .await
        .expect("the session as JSON");
    let id = session["user"]["id"].as_i64().expect("a user id");
    (id, cookie)
}

/// Opens `/ws` on `addr` with `cookie` (if any), from the site's own origin.
pub async fn connect(addr: &str, cookie: Option<&str>) -> Result<Ws, tungstenite::Error> {
    connect_from(addr, cookie, None).await
}

/// [`connect`], as if through a proxy that names the client `forwarded_for` (the server
/// believes it only when it trusts the proxy).
pub async fn connect_from(
    addr: &str,
    cookie: Option<&str>,
    forwarded_for: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{addr}/ws").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "origin",
        HeaderValue::from_str(&format!("http://{addr}")).expect("an address is a header value"),
    );
    if let Some(cookie) = cookie {
        headers.insert(
            "cookie",
            HeaderValue::from_str(cookie).expect("a cookie is a header value"),
        );
    }
    if let Some(client) = forwarded_for {
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_str(client).expect("an address is a header value"),
        );
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}
