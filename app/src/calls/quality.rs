//! The quality panel: round trip, bitrates, packet loss and the received resolution, read
//! from the engine's `getStats` every second while the panel is open.

use leptos::prelude::*;

use super::CallUi;

#[component]
pub fn QualityPanel(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    #[cfg(feature = "hydrate")]
    {
        engine.read_quality();
        let handle = set_interval_with_handle(
            move || engine.read_quality(),
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    let show = |value: Option<f64>, unit: &'static str| {
        value
            .map(|v| format!("{v:.0} {unit}"))
            .unwrap_or_else(|| "…".into())
    };
    view! {
        <div class="call-panel quality open" data-testid="quality" role="region" aria-label="Connection quality">
            <h2 class="panel-title">"Connection quality"</h2>
            <dl>
                <dt>"Round trip"</dt>
                <dd data-testid="quality-rtt">{move || show(engine.quality.get().rtt_ms, "ms")}</dd>
                <dt>"Receiving"</dt>
                <dd data-testid="quality-in">{move || show(engine.quality.get().kbps_in, "kbit/s")}</dd>
                <dt>"Sending"</dt>
                <dd data-testid="quality-out">{move || show(engine.quality.get().kbps_out, "kbit/s")}</dd>
                <dt>"Packet loss"</dt>
                <dd data-testid="quality-loss">
                    {move || engine.quality.get().loss_percent.map(|l| format!("{l:.1} %")).unwrap_or_else(|| "…".into())}
                </dd>
                <dt>"Route"</dt>
                <dd data-testid="quality-route">
                    {move || engine.quality.get().route.map_or("…", |r| r.label())}
                </dd>
                <dt>"Video received"</dt>
                <dd data-testid="quality-resolution">
                    {move || engine.quality.get().resolution.map(|(w, h)| format!("{w}×{h}")).unwrap_or_else(|| "…".into())}
                </dd>
            </dl>
        </div>
    }
}
