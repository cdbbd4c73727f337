//! `/connectivity`: one button runs the test; the page lists what was found (addresses on
//! this network, the public address, relay addresses, the relay's round trip) and says in a
//! sentence whether calls will connect from here. Anyone may use it (the page makes the
//! browser a guest unless signed in).

use leptos::prelude::*;
use leptos_meta::Title;

use super::{test_ice_servers, Findings};

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
        </section>
    }
}
