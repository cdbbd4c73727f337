//! Headers every response carries for the browser's protection: what the page may use
//! (camera, microphone and screen for calls, nothing else), HTTPS only from now on when served
//! over HTTPS, and no caching of anything personal (pages seen with a session or guest cookie,
//! and every server function's answer). The browser bundle under `/pkg/` is cached for a year
//! when its name carries its content hash, and revalidated otherwise (see `crate::assets`).
//! The page's Content-Security-Policy is set where the page is rendered (it carries that
//! response's nonce): see `app::shell`.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};

/// What the site may use: calls need the camera, the microphone and screen capture.
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
     fullscreen=(self), autoplay=(self), geolocation=(), payment=(), usb=(), serial=(), \
     midi=(), magnetometer=(), gyroscope=(), accelerometer=()";

/// Browsers remember for a year to use HTTPS only (sent only when served over HTTPS).
pub const HSTS: &str = "max-age=31536000";

#[derive(Clone, Copy)]
pub struct HeaderPolicy {
    pub https: bool,
}

pub async fn layer(State(policy): State<HeaderPolicy>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let personal = path.starts_with("/api/")
        || path.starts_with("/auth/")
        || request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("parlor_session=") || v.contains("parlor_guest="));
    // The browser bundle (`crate::assets`): `Some(hashed)` for a file under /pkg/.
    let bundle_file = path
        .strip_prefix("/pkg/")
        .map(|file| crate::assets::is_hashed(file.rsplit('/').next().unwrap_or(file)));
    let assets = bundle_file.is_some();
    let mut response = next.run(request).await;
    let found = response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if policy.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if personal && !assets {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let (Some(hashed), true) = (bundle_file, found) {
        let policy = if hashed {
            crate::assets::IMMUTABLE
        } else {
            crate::assets::REVALIDATE
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        // The same URL answers brotli, gzip or plain bytes depending on the request.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}
