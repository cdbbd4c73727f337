//! The wasm entry point: hydrates the page the server rendered. Everything else lives in `app`.

// The whole app's view type is one deeply nested type.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
