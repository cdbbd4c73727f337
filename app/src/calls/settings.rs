//! The settings panel: which camera and microphone the call uses, switchable mid-call, and
//! whether calls go through the server's relay only (kept in the browser).

use leptos::prelude::*;

use super::{CallUi, Panel};

#[component]
pub fn DevicePicker(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    let open = move || ui.panel.get() == Some(Panel::Settings);
    let picker = move |kind: &'static str,
                       label: &'static str,
                       current: RwSignal<Option<String>>| {
        let id = format!("device-{kind}");
        view! {
            <label for=id.clone()>{label}</label>
            <select
                id=id
                on:change=move |ev| engine.switch_device(kind, event_target_value(&ev))
                prop:value=move || current.get().unwrap_or_default()
            >
                {move || {
                    engine
                        .devices
                        .get()
                        .into_iter()
                        .filter(|d| d.kind == kind)
                        .map(|d| {
                            let selected = current.get_untracked().as_deref() == Some(d.id.as_str());
                            view! { <option value=d.id selected=selected>{d.label}</option> }
                        })
                        .collect_view()
                }}
            </select>
        }
    };
    view! {
        <div class="call-panel" class:open=open hidden=move || !open() role="region" aria-label="Settings">
            <h2 class="panel-title">"Settings"</h2>
            <div class="devices">
                {picker("videoinput", "Camera", engine.camera)}
                {picker("audioinput", "Microphone", engine.microphone)}
            </div>
            <p class="relay-setting">
                <input
                    id="relay-only"
                    type="checkbox"
                    prop:checked=move || engine.relay_only.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        engine.relay_only.set(on);
                        #[cfg(feature = "hydrate")]
                        super::remember_relay_only(on);
                    }
                />
                " "
                <label for="relay-only">"Always relay calls"</label>
                <br />
                <span class="muted small">
                    "Media goes through this server, so the other person never learns your address. From the next connection on."
                </span>
            </p>
        </div>
    }
}
