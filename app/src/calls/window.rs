//! The call window: the incoming-call prompt, then the call filling the screen (the other
//! person's video as large as it fits, yours in a corner), one bar of labelled buttons, and
//! the chat, quality and settings panels that open over the video. A small notice once the
//! call has ended.

use leptos::prelude::*;

use super::{chat::CallChat, quality::QualityPanel, settings::DevicePicker, CallUi, Panel, Phase};
use crate::webrtc::Link;

/// Icons as SVG path data (24×24, stroked), shown beside each button's label.
fn icon(name: &'static str) -> impl IntoView {
    let d = match name {
        "mic" => "M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3zM19 10v2a7 7 0 0 1-14 0v-2M12 19v4M8 23h8",
        "mic-off" => "M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3zM19 10v2a7 7 0 0 1-14 0v-2M12 19v4M8 23h8M2 2l20 20",
        "camera" => "M23 7l-7 5 7 5V7zM3 5h11a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z",
        "camera-off" => "M23 7l-7 5 7 5V7zM3 5h11a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zM2 2l20 20",
        "screen" => "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zM8 21h8M12 17v4",
        "record" => "M12 5a7 7 0 1 0 0 14a7 7 0 1 0 0-14z",
        "stop" => "M6 6h12v12H6z",
        "chat" => "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z",
        "quality" => "M4 20v-4M10 20v-8M16 20V8M22 20V4",
        "settings" => "M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6",
        "flag" => "M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1zM4 22v-7",
        "friend" => "M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M8.5 3a4 4 0 1 0 0 8a4 4 0 1 0 0-8zM20 8v6M23 11h-6",
        "block" => "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM4.9 4.9l14.2 14.2",
        "next" => "M5 4l10 8-10 8V4zM19 5v14",
        _ => "M22 16.9v3a2 2 0 0 1-2.2 2 19.8 19.8 0 0 1-8.6-3.1 19.5 19.5 0 0 1-6-6A19.8 19.8 0 0 1 2.1 4.2 2 2 0 0 1 4.1 2h3a2 2 0 0 1 2 1.7c.1.9.4 1.9.7 2.8a2 2 0 0 1-.5 2.1L8.1 9.9a16 16 0 0 0 6 6l1.3-1.3a2 2 0 0 1 2.1-.5c.9.3 1.9.6 2.8.7a2 2 0 0 1 1.7 2z",
    };
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
            <path d=d />
        </svg>
    }
}

#[component]
pub fn CallOverlay() -> impl IntoView {
    let ui = super::use_call();
    let engine = ui.engine;
    let peer_name = move || ui.peer_name();
    let status = move || match ui.phase.get() {
        Phase::Idle => String::new(),
        Phase::Calling => format!("Calling {}…", peer_name()),
        Phase::Incoming => format!("{} is calling you", peer_name()),
        Phase::InCall => match engine.link.get() {
            Link::Connecting => "Connecting…".into(),
            Link::Connected => "Connected".into(),
            Link::Reconnecting => "Reconnecting…".into(),
            Link::Failed => "Connection failed. Trying again…".into(),
        },
        Phase::Ended(why) => why,
    };
    let ended = move || matches!(ui.phase.get(), Phase::Ended(_));
    // Before an answer there is only yourself to see.
    let preview = move || matches!(ui.phase.get(), Phase::Calling | Phase::Incoming);
    view! {
        <Show when=move || ui.phase.get() != Phase::Idle>
            <section
                class="call"
                class:incoming=move || ui.phase.get() == Phase::Incoming
                class:ended=ended
                role=move || if ui.phase.get() == Phase::Incoming { "alertdialog" } else { "dialog" }
                aria-label="Call"
                data-testid="call"
                on:keydown=move |ev| {
                    if ev.key() == "Escape" && ui.panel.get_untracked().is_some() {
                        ui.panel.set(None);
                    }
                }
            >
                <div
                    class="call-stage"
                    class:hidden=ended
                    class:preview=preview
                    class:sharing=move || engine.peer_sharing.get()
                    class:voice=move || !ui.video.get()
                >
                    <div class="screen" class:hidden=move || !engine.peer_sharing.get()>
                        <video id="screen-video" class="screen-video" data-testid="screen-video" autoplay=true playsinline=true muted=true></video>
                    </div>
                    <p class="voice-peer" aria-hidden="true">{peer_name}</p>
                    <video id="remote-video" class="remote-video" data-testid="remote-video" autoplay=true playsinline=true></video>
                    <video id="local-video" class="local-video" data-testid="local-video" autoplay=true playsinline=true muted=true></video>
                </div>
                <div class="call-top">
                    <p class="call-status" role="status" data-testid="call-status">{status}</p>
                    {move || ui.verification.get().map(|words| view! {
                        <p class="call-note verification">
                            <label for="call-verification">"Verification"</label>
                            " "
                            <output id="call-verification" data-testid="verification">{words}</output>
                        </p>
                    })}
                    {move || ui.stranger.get().map(|s| view! {
                        <p class="call-note" data-testid="stranger-shared">
                            {if s.shared.is_empty() {
                                "You were matched with a random stranger.".to_string()
                            } else {
                                format!("You both like: {}", s.shared.join(", "))
                            }}
                        </p>
                        {s.friend_note.map(|note| view! {
                            <p class="call-note" role="status" data-testid="stranger-friend">{note}</p>
                        })}
                    })}
                    <p class="call-note" data-testid="peer-state">
                        {move || match (engine.peer_muted.get(), engine.peer_camera_off.get()) {
                            (true, true) => format!("{} muted and turned the camera off", peer_name()),
                            (true, false) => format!("{} is muted", peer_name()),
                            (false, true) => format!("{} turned the camera off", peer_name()),
                            _ => String::new(),
                        }}
                    </p>
                    <p class="call-note" data-testid="peer-screen">
                        {move || engine.peer_sharing.get().then(|| format!("{} is sharing their screen", peer_name()))}
                    </p>
                    <p class="call-note recording-state" data-testid="peer-recording" role="status">
                        {move || engine.peer_recording.get().then(|| format!("{} is recording this call", peer_name()))}
                    </p>
                    <p class="call-note recording-state" data-testid="recording">
                        {move || engine.recording_since.get().map(|_| {
                            let secs = engine.recorded_secs.get();
                            format!("● Recording {}:{:02}", secs / 60, secs % 60)
                        })}
                    </p>
                </div>
                // The panels and buttons: their own wasm chunk (see `super::load_controls`).
                {move || ui.controls.get().map(|controls| controls(ui))}
            </section>
        </Show>
    }
}

/// The call's panels and its button bar, below the video and the status lines. Part of the
/// chunk that loads when a call first needs it.
pub fn controls(ui: CallUi) -> AnyView {
    let ended = move || matches!(ui.phase.get(), Phase::Ended(_));
    let answered = move || ui.phase.get() == Phase::InCall;
    view! {
        <Show when=answered>
            <CallChat ui />
        </Show>
        <Show when=move || ui.panel.get() == Some(Panel::Quality)>
            <QualityPanel ui />
        </Show>
        <Show when=move || ui.panel.get() == Some(Panel::Report)>
            <ReportPanel ui />
        </Show>
        <Show when=move || !ended()>
            <DevicePicker ui />
        </Show>
        <Show when=move || !ended()>
            <ControlBar ui />
        </Show>
    }
    .into_any()
}

/// One toolbar button: an icon and a short label that is also its accessible name.
fn control(
    icon_name: impl Fn() -> &'static str + Send + Sync + 'static,
    label: impl Fn() -> String + Send + Sync + 'static,
    class: &'static str,
    on_click: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <button type="button" class=format!("control {class}") on:click=move |_| on_click()>
            {move || icon(icon_name())}
            <span class="control-label">{label}</span>
        </button>
    }
}

/// A button that switches something on and off, there while `shown`: its icon and label
/// follow the state (`(off, on)` pairs), and `aria-pressed` says which it is.
fn toggle(
    shown: impl Fn() -> bool + Send + Sync + 'static,
    on: impl Fn() -> bool + Copy + Send + Sync + 'static,
    icons: (&'static str, &'static str),
    labels: (&'static str, &'static str),
    on_click: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <Show when=shown>
            <button
                type="button"
                class="control"
                class:on=on
                aria-pressed=move || on().to_string()
                on:click=move |_| on_click()
            >
                {move || icon(if on() { icons.1 } else { icons.0 })}
                <span class="control-label">{move || if on() { labels.1 } else { labels.0 }}</span>
            </button>
        </Show>
    }
}

/// A button that opens one of the panels over the video (and closes it again).
fn panel_toggle(
    ui: CallUi,
    panel: Panel,
    icon_name: &'static str,
    label: &'static str,
) -> impl IntoView {
    let open = move || ui.panel.get() == Some(panel);
    let unread = move || {
        (panel == Panel::Chat && !open())
            .then(|| {
                ui.engine
                    .chat
                    .with(|c| c.len())
                    .saturating_sub(ui.chat_seen.get())
            })
            .filter(|n| *n > 0)
    };
    view! {
        <button
            type="button"
            class="control"
            aria-expanded=move || open().to_string()
            on:click=move |_| ui.panel.update(|p| *p = if *p == Some(panel) { None } else { Some(panel) })
        >
            {icon(icon_name)}
            <span class="control-label">{label}</span>
            {move || unread().map(|n| view! {
                " "
                <span class="badge control-badge">
                    {n}
                    <span class="visually-hidden">" unread"</span>
                </span>
            })}
        </button>
    }
}

/// The call's buttons, in one bar: Accept and Decline while it rings; then microphone,
/// camera, screen, recording, the panels, and hang up.
#[component]
fn ControlBar(ui: CallUi) -> impl IntoView {
    let engine = ui.engine;
    let text_only = move || {
        ui.stranger
            .with(|s| s.as_ref().is_some_and(|s| s.text_only))
    };
    let answered = move || ui.phase.get() == Phase::InCall;
    let connected = move || answered() && engine.link.get() == Link::Connected;
    view! {
        <div class="call-bar" role="group" aria-label="Call controls">
            {move || match ui.phase.get() {
                Phase::Incoming => view! {
                    {control(|| "phone", || "Accept".into(), "accept", move || ui.accept())}
                    {control(|| "phone", || "Decline".into(), "hang-up", move || ui.hang_up())}
                    {panel_toggle(ui, Panel::Settings, "settings", "Settings")}
                }
                    .into_any(),
                _ if ui.stranger.with(Option::is_some) => view! {
                    {toggle(move || !text_only(), move || engine.muted.get(), ("mic", "mic-off"), ("Mute", "Unmute"), move || engine.toggle_mute())}
                    {toggle(move || ui.video.get(), move || engine.camera_off.get(), ("camera", "camera-off"), ("Camera off", "Camera on"), move || engine.toggle_camera())}
                    {panel_toggle(ui, Panel::Chat, "chat", "Chat")}
                    <Show when=move || !text_only()>
                        {panel_toggle(ui, Panel::Quality, "quality", "Quality")}
                        {panel_toggle(ui, Panel::Settings, "settings", "Settings")}
                    </Show>
                    <Show when=move || ui.stranger.with(|s| s.as_ref().is_some_and(|s| s.can_befriend))>
                        {control(
                            || "friend",
                            move || {
                                let asked = ui.stranger.with(|s| s.as_ref().is_some_and(|s| s.friend_asked));
                                if asked { "Asked to be friends".into() } else { "Add as friend".into() }
                            },
                            "",
                            move || ui.befriend_stranger(),
                        )}
                    </Show>
                    {panel_toggle(ui, Panel::Report, "flag", "Report")}
                    {control(|| "block", || "Block".into(), "", move || ui.block_stranger())}
                    {control(|| "next", || "Next".into(), "accept", move || ui.next_stranger())}
                    {control(|| "phone", || "Stop".into(), "hang-up", move || ui.hang_up())}
                }
                    .into_any(),
                _ => view! {
                    {toggle(|| true, move || engine.muted.get(), ("mic", "mic-off"), ("Mute", "Unmute"), move || engine.toggle_mute())}
                    {toggle(move || ui.video.get(), move || engine.camera_off.get(), ("camera", "camera-off"), ("Camera off", "Camera on"), move || engine.toggle_camera())}
                    // Sharing and recording start once connected, and can be stopped whatever happens.
                    {toggle(move || connected() || engine.sharing.get(), move || engine.sharing.get(), ("screen", "screen"), ("Share screen", "Stop sharing"), move || engine.toggle_screen())}
                    {toggle(move || connected() || engine.recording_since.get().is_some(), move || engine.recording_since.get().is_some(), ("record", "stop"), ("Record", "Stop recording"), move || engine.toggle_recording())}
                    <Show when=answered>
                        {panel_toggle(ui, Panel::Chat, "chat", "Chat")}
                        {panel_toggle(ui, Panel::Quality, "quality", "Quality")}
                    </Show>
                    {panel_toggle(ui, Panel::Settings, "settings", "Settings")}
                    {control(
                        || "phone",
                        move || if ui.phase.get() == Phase::Calling { "Cancel".into() } else { "Hang up".into() },
                        "hang-up",
                        move || ui.hang_up(),
                    )}
                }
                    .into_any(),
            }}
        </div>
    }
}

/// Reporting the stranger: a reason, an optional note, and (only if ticked) the last chat
/// lines. The stranger is not told.
#[component]
fn ReportPanel(ui: CallUi) -> impl IntoView {
    use crate::strangers::{ReportReason, MAX_NOTE_CHARS};
    let reason = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let include_chat = RwSignal::new(false);
    let problem = RwSignal::new(None::<&'static str>);
    view! {
        <form
            class="call-panel open report-panel"
            aria-label="Report this stranger"
            on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let Some(reason) = ReportReason::parse(&reason.get_untracked()) else {
                    problem.set(Some("Choose a reason."));
                    return;
                };
                problem.set(None);
                ui.report_note.set(None);
                let sent = ui.realtime.send(&crate::protocol::ClientMsg::StrangerReport {
                    reason,
                    note: note.get_untracked(),
                    include_chat: include_chat.get_untracked(),
                });
                if !sent {
                    problem.set(Some("Not connected right now: try again in a moment."));
                }
            }
        >
            <label for="report-reason">"Reason"</label>
            <select id="report-reason" on:change=move |ev| reason.set(event_target_value(&ev))>
                <option value="">"Choose…"</option>
                {ReportReason::ALL
                    .into_iter()
                    .map(|r| view! { <option value=r.as_str()>{r.label()}</option> })
                    .collect_view()}
            </select>
            <label for="report-note">"Note (optional)"</label>
            <textarea
                id="report-note"
                maxlength=MAX_NOTE_CHARS.to_string()
                prop:value=move || note.get()
                on:input=move |ev| note.set(event_target_value(&ev))
            ></textarea>
            <crate::components::form::Check checked=include_chat label="Attach the last chat lines" />
            <button type="submit">"Send report"</button>
            <p class="form-error" role="alert">{move || problem.get()}</p>
            <p role="status" data-testid="report-note">{move || ui.report_note.get()}</p>
        </form>
    }
}
