//! The page's Content-Security-Policy: only this site's own scripts, started by the inline
//! hydration script that carries this response's nonce (`'strict-dynamic'` lets it load the
//! app's module and wasm), WebAssembly compilation, styles and media from this site (media
//! also from the call's own streams and recordings), network traffic only back to this site,
//! no plugins, no framing, forms only to this site.

use leptos::prelude::*;

pub fn content_security_policy(options: &LeptosOptions) {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    // `cargo leptos watch` reloads the page through its own socket.
    let reload = if std::env::var("LEPTOS_WATCH").is_ok() {
        let port = options.reload_external_port.unwrap_or(options.reload_port);
        format!(" ws://*:{port} wss://*:{port}")
    } else {
        String::new()
    };
    let policy = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
         connect-src 'self'{reload}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}
