//! The browser bundle as a release build serves it: content-hashed names cached for a year,
//! and the brotli or gzip copy to browsers that accept one.
//!
//! The tests run against the dev build, whose bundle has plain names and no compressed
//! copies (only `parlor_release_build` in scripts/env.sh makes those). So each test here
//! builds a small site of its own the way that build lays it out (`hash.txt` in the site
//! root, `pkg/parlor.<hash>.wasm` with `.br` and `.gz` beside it) and points the app at it.
//! The copies hold marker bytes rather than real brotli or gzip: what is checked is which
//! file answers and what the headers say (the client does not decompress).

use tempfile::TempDir;

use crate::helpers::TestApp;

const JS: &str = "JSJSJSJSJSJSJSJSJSJSJS";
const WASM: &str = "WASMWASMWASMWASMWASM-_";
const CSS: &str = "CSSCSSCSSCSSCSSCSSCSSC";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A release-like site: hashed JS, wasm and CSS with brotli and gzip copies, a plain file.
fn release_site() -> TempDir {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(
        site.path().join("hash.txt"),
        format!("js: {JS}\nwasm: {WASM}\ncss: {CSS}\n"),
    )
    .unwrap();
    for (name, body) in [
        (
            format!("parlor.{JS}.js"),
            "export default function init() {}",
        ),
        (format!("parlor.{WASM}.wasm"), "\0asm the wasm itself"),
        (format!("parlor.{CSS}.css"), "body { margin: 0 }"),
    ] {
        std::fs::write(pkg.join(&name), body).unwrap();
        std::fs::write(pkg.join(format!("{name}.br")), format!("brotli of {name}")).unwrap();
        std::fs::write(pkg.join(format!("{name}.gz")), format!("gzip of {name}")).unwrap();
    }
    std::fs::write(pkg.join("plain.js"), "export const plain = 1;").unwrap();
    site
}

async fn spawn(site: &TempDir) -> TestApp {
    let root = site.path().to_path_buf();
    TestApp::spawn_with(move |config| config.site_root = root).await
}

async fn fetch(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(encodings) = accept_encoding {
        request = request.header("accept-encoding", encodings);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_hashed_asset_is_served_as_brotli_to_browsers_that_accept_it_and_kept_a_year() {
    let site = release_site();
    let app = spawn(&site).await;
    let path = format!("/pkg/parlor.{WASM}.wasm");

    let response = fetch(&app, &path, Some("gzip, deflate, br, zstd")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-encoding"], "br");
    assert_eq!(headers["content-type"], "application/wasm");
    assert_eq!(headers["cache-control"], IMMUTABLE);
    assert_eq!(headers["vary"], "accept-encoding");
    let body = response.text().await.unwrap();
    assert_eq!(body, format!("brotli of parlor.{WASM}.wasm"));

    // Without brotli, gzip.
    let response = fetch(&app, &path, Some("gzip")).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["cache-control"], IMMUTABLE);
    let body = response.text().await.unwrap();
    assert_eq!(body, format!("gzip of parlor.{WASM}.wasm"));
}

#[tokio::test]
async fn without_accept_encoding_the_plain_bytes_are_served() {
    let site = release_site();
    let app = spawn(&site).await;
    for (path, plain) in [
        (format!("/pkg/parlor.{WASM}.wasm"), "\0asm the wasm itself"),
        (
            format!("/pkg/parlor.{JS}.js"),
            "export default function init() {}",
        ),
    ] {
        let response = fetch(&app, &path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            !headers.contains_key("content-encoding"),
            "{path}: {headers:?}"
        );
        assert_eq!(headers["content-length"], plain.len().to_string(), "{path}");
        assert_eq!(headers["cache-control"], IMMUTABLE, "{path}");
        assert_eq!(response.text().await.unwrap(), plain, "{path}");
    }
    // An encoding the site has no copy for gets the plain bytes too.
    let response = fetch(&app, &format!("/pkg/parlor.{CSS}.css"), Some("zstd")).await;
    assert!(!response.headers().contains_key("content-encoding"));
    assert_eq!(response.text().await.unwrap(), "body { margin: 0 }");
}

#[tokio::test]
async fn pages_link_the_hashed_names_the_site_lists() {
    let site = release_site();
    let app = spawn(&site).await;
    let html = app.get("/").await.text().await.unwrap();
    for name in [
        format!("/pkg/parlor.{JS}.js"),
        format!("/pkg/parlor.{WASM}.wasm"),
        format!("/pkg/parlor.{CSS}.css"),
    ] {
        assert!(html.contains(&name), "{name} missing from {html}");
    }
    assert!(!html.contains("/pkg/parlor.js"), "{html}");
}

#[tokio::test]
async fn plain_names_are_revalidated_and_missing_files_not_cached() {
    let site = release_site();
    let app = spawn(&site).await;
    let response = fetch(&app, "/pkg/plain.js", Some("br")).await;
    assert_eq!(response.status(), 200);
    // Same name, new content after the next build: the browser asks again every time.
    assert_eq!(response.headers()["cache-control"], "no-cache");

    let response = fetch(&app, &format!("/pkg/gone.{JS}.js"), Some("br")).await;
    assert_eq!(response.status(), 404);
    let cache = response.headers().get("cache-control");
    assert!(
        cache.is_none_or(|v| !v.to_str().unwrap().contains("immutable")),
        "{cache:?}"
    );
}

#[tokio::test]
async fn a_site_without_hashes_links_plain_names() {
    // What a dev build (`parlor_build`) leaves: no hash.txt.
    let site = release_site();
    std::fs::remove_file(site.path().join("hash.txt")).unwrap();
    let app = spawn(&site).await;
    let html = app.get("/").await.text().await.unwrap();
    assert!(html.contains("/pkg/parlor.js"), "{html}");
    assert!(html.contains("/pkg/parlor.css"), "{html}");
}
