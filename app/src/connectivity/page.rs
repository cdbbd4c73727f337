//! `/connectivity`: one button runs the test; the page lists what was found (addresses on
//! this network, the public address, relay addresses, the relay's round trip) and says in a
//! sentence whether calls will connect from here. Anyone may use it (the page makes the
//! browser a guest unless signed in).

use leptos::prelude::*;
use leptos_meta::Title;

use super::{check_server_relay, test_ice_servers, Findings, RelayCheck};
use crate::accounts::session::use_auth;

#[derive(Clone, Debug, PartialEq)]
enum Stage {
    Ready,
    Running,
    Done(Findings),
    Failed(String),
}

/// Runs the test in the browser (the server never runs it: the button works after hydration).
async fn probe(servers: Vec<crate::protocol::IceServer>) -> Findings {
    #[cfg(feature = "hydrate")]
    {
        crate::webrtc::probe::run(&servers).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = servers;
        Findings::default()
    }
}

#[component]
pub fn ConnectivityPage() -> impl IntoView {
    let stage = RwSignal::new(Stage::Ready);
    let auth = use_auth();
    let moderator = move || auth.is_moderator();
    let run = move || {
        stage.set(Stage::Running);
        leptos::task::spawn_local(async move {
            let servers = match crate::guests::start_guest().await {
                Ok(_) => test_ice_servers().await,
                Err(e) => Err(e),
            };
            match servers {
                Ok(servers) => stage.set(Stage::Done(probe(servers).await)),
                Err(e) => stage.set(Stage::Failed(e.to_string())),
            }
        });
    };
    let found = |n: usize| match n {
        0 => "none found".to_string(),
        1 => "1 found".to_string(),
        n => format!("{n} found"),
    };

    view! {
        <Title text="Test your connection" />
        <section class="page connectivity" aria-labelledby="connectivity-title">
            <h1 id="connectivity-title">"Test your connection"</h1>
            <p class="lead">
                "See whether calls will connect from this browser and network, before you need one. Nothing is sent to anyone: the test talks to this server's relay only."
            </p>
            <p>
                <button
                    type="button"
                    class="primary"
                    disabled=move || stage.get() == Stage::Running
                    on:click=move |_| run()
                >
                    {move || match stage.get() {
                        Stage::Running => "Testing…",
                        Stage::Ready => "Run the test",
                        _ => "Run it again",
                    }}
                </button>
            </p>
            {move || match stage.get() {
                Stage::Ready => ().into_any(),
                Stage::Running => view! {
                    <p role="status" data-testid="connectivity-status">"Testing: this takes a few seconds…"</p>
                }
                    .into_any(),
                Stage::Failed(why) => view! {
                    <p class="form-error" role="alert" data-testid="connectivity-error">{why}</p>
                }
                    .into_any(),
                Stage::Done(f) => view! {
                    <p class="notice" role="status" data-testid="connectivity-verdict">{f.verdict()}</p>
                    <dl class="checks">
                        <dt>"Addresses on this network"</dt>
                        <dd data-testid="check-host">{found(f.host)}</dd>
                        <dt>"Public address (STUN)"</dt>
                        <dd data-testid="check-public">{found(f.public)}</dd>
                        <dt>"Relay addresses (TURN)"</dt>
                        <dd data-testid="check-relay">{found(f.relay)}</dd>
                        <dt>"Round trip through the relay"</dt>
                        <dd data-testid="check-round-trip">
                            {match f.relay_rtt_ms {
                                Some(ms) => format!("{ms:.0} ms"),
                                None => "not measured".to_string(),
                            }}
                        </dd>
                    </dl>
                    {f.problem.map(|p| view! { <p class="muted" data-testid="connectivity-problem">{p}</p> })}
                }
                    .into_any(),
            }}
            <Show when=moderator>
                <ServerRelayCheck />
            </Show>
        </section>
    }
}

/// For moderators (who run the server): the server checks its own relay now, as it does at
/// start, and says what it found.
#[component]
fn ServerRelayCheck() -> impl IntoView {
    let check = Action::new(|_: &()| check_server_relay());
    let verdict = move |found: Result<RelayCheck, crate::error::AppError>| {
        match found {
        Ok(RelayCheck {
            ok: true, millis, ..
        }) => view! {
            <p class="notice" role="status" data-testid="server-relay-verdict">
                {format!(
                    "The server's relay works: a datagram went through it in {} ms.",
                    millis.unwrap_or(0),
                )}
            </p>
        }
            .into_any(),
        Ok(RelayCheck { problem, .. }) => view! {
            <p class="form-error" role="alert" data-testid="server-relay-verdict">
                {format!(
                    "The server's relay does not work ({}). Calls that need it will not connect: check PARLOR_TURN_PUBLIC_IP and that its UDP and TCP port and the relay ports are open.",
                    problem.unwrap_or_default(),
                )}
            </p>
        }
            .into_any(),
        Err(e) => view! {
            <p class="form-error" role="alert" data-testid="server-relay-verdict">{e.to_string()}</p>
        }
            .into_any(),
    }
    };
    view! {
        <h2>"The server's relay"</h2>
        <p class="muted">
            "Checks from the server itself that its TURN relay is reachable at the address browsers are given (it also checks at start)."
        </p>
        <p>
            <button
                type="button"
                disabled=move || check.pending().get()
                on:click=move |_| {
                    check.dispatch(());
                }
            >
                {move || if check.pending().get() { "Checking…" } else { "Check the server's relay" }}
            </button>
        </p>
        {move || check.value().get().map(verdict)}
    }
}
