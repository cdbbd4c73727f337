//! One peer connection and its negotiation, the same for the camera and the screen: offers
//! and answers, and ICE candidates held back until the remote description is set.

use std::{any::Any, cell::RefCell, rc::Rc};

use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcIceCandidateInit, RtcIceTransportPolicy, RtcOfferOptions,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType, RtcSessionDescriptionInit,
};

use super::Ice;
use crate::protocol::IceServer;

/// A peer connection with its candidate buffer. Clones share both.
#[derive(Clone)]
pub struct Negotiation {
    pc: RtcPeerConnection,
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    remote_set: bool,
    /// Candidates that arrived before the remote description.
    early: Vec<RtcIceCandidateInit>,
    /// Event handlers of the connection, kept alive with it.
    handlers: Vec<Box<dyn Any>>,
}

/// A peer connection's configuration: these servers, and relay only or not.
fn configuration(ice_servers: &[IceServer], relay_only: bool) -> RtcConfiguration {
    let config = RtcConfiguration::new();
    if relay_only {
        config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
    }
    let servers = serde_json::to_string(ice_servers)
        .ok()
        .and_then(|json| js_sys::JSON::parse(&json).ok())
        .unwrap_or_else(|| js_sys::Array::new().into());
    config.set_ice_servers(&servers);
    config
}

impl Negotiation {
    /// A peer connection with these STUN/TURN servers (an empty list works on one network),
    /// whose own candidates go to `on_candidate`; `relay_only`: through TURN only, so the
    /// other side never learns this side's addresses.
    pub fn new(
        ice_servers: &[IceServer],
        relay_only: bool,
        on_candidate: impl Fn(Ice) + 'static,
    ) -> Result<Self, JsValue> {
        let pc =
            RtcPeerConnection::new_with_configuration(&configuration(ice_servers, relay_only))?;
        let handler = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |event: RtcPeerConnectionIceEvent| {
                if let Some(c) = event.candidate() {
                    on_candidate(Ice {
                        candidate: c.candidate(),
                        mid: c.sdp_mid(),
                        index: c.sdp_m_line_index(),
                    });
                }
            },
        );
        pc.set_onicecandidate(Some(handler.as_ref().unchecked_ref()));
        let negotiation = Self {
            pc,
            state: Rc::default(),
        };
        negotiation.keep(handler);
        Ok(negotiation)
    }

    pub fn pc(&self) -> &RtcPeerConnection {
        &self.pc
    }

    /// Uses these servers (fresh TURN credentials) from the next ICE gathering on; the
    /// policy stays as it was made.
    pub fn renew_servers(&self, ice_servers: &[IceServer], relay_only: bool) {
        if let Err(error) = self
            .pc
            .set_configuration_with_configuration(&configuration(ice_servers, relay_only))
        {
            leptos::logging::warn!("could not renew the STUN/TURN servers: {error:?}");
        }
    }

    /// Keeps an event handler alive as long as the connection.
    pub fn keep(&self, handler: impl Any) {
        self.state.borrow_mut().handlers.push(Box::new(handler));
    }

    /// Creates and applies an offer; returns its SDP to send.
    pub async fn offer(&self, ice_restart: bool) -> Result<String, JsValue> {
        self.set_local(RtcSdpType::Offer, ice_restart).await
    }

    /// Applies the other side's offer; returns the answer's SDP to send.
    pub async fn answer(&self, offer: &str) -> Result<String, JsValue> {
        self.set_remote(RtcSdpType::Offer, offer).await?;
        self.set_local(RtcSdpType::Answer, false).await
    }

    /// Applies the other side's answer to this side's offer.
    pub async fn accept(&self, answer: &str) -> Result<(), JsValue> {
        self.set_remote(RtcSdpType::Answer, answer).await
    }

    /// Adds the other side's candidate, or keeps it until the remote description is set.
    pub async fn add_candidate(&self, ice: Ice) -> Result<(), JsValue> {
        let init = RtcIceCandidateInit::new(&ice.candidate);
        init.set_sdp_mid(ice.mid.as_deref());
        init.set_sdp_m_line_index(ice.index);
        {
            let mut state = self.state.borrow_mut();
            if !state.remote_set {
                state.early.push(init);
                return Ok(());
            }
        }
        self.add(&init).await
    }

    pub fn close(&self) {
        self.pc.close();
        let mut state = self.state.borrow_mut();
        state.early.clear();
        state.handlers.clear();
    }

    async fn add(&self, init: &RtcIceCandidateInit) -> Result<(), JsValue> {
        JsFuture::from(
            self.pc
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init)),
        )
        .await
        .map(|_| ())
    }

    async fn set_remote(&self, kind: RtcSdpType, sdp: &str) -> Result<(), JsValue> {
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(sdp);
        JsFuture::from(self.pc.set_remote_description(&init)).await?;
        let early = {
            let mut state = self.state.borrow_mut();
            state.remote_set = true;
            std::mem::take(&mut state.early)
        };
        for init in early {
            let _ = self.add(&init).await;
        }
        Ok(())
    }

    async fn set_local(&self, kind: RtcSdpType, ice_restart: bool) -> Result<String, JsValue> {
        let created = if kind == RtcSdpType::Offer {
            let options = RtcOfferOptions::new();
            options.set_ice_restart(ice_restart);
            JsFuture::from(self.pc.create_offer_with_rtc_offer_options(&options)).await?
        } else {
            JsFuture::from(self.pc.create_answer()).await?
        };
        let sdp = js_sys::Reflect::get(&created, &"sdp".into())?
            .as_string()
            .unwrap_or_default();
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(&sdp);
        JsFuture::from(self.pc.set_local_description(&init)).await?;
        Ok(sdp)
    }
}
