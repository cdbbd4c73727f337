//! What a code call asks the server besides the rendezvous API: the STUN/TURN servers, handed
//! only to someone who names a live room (the room's id is a secret of its two sides).

use leptos::prelude::*;

use crate::{error::AppError, protocol::IceServer};

/// The STUN/TURN servers for a call in room `app_id`; 404 when the room is gone.
#[server(endpoint = "codes/ice")]
pub async fn code_ice_servers(app_id: String) -> Result<Vec<IceServer>, AppError> {
    crate::server::respond(imp::ice_servers(&app_id))
}

#[cfg(feature = "ssr")]
mod imp {
    use crate::{
        error::AppError,
        protocol::IceServer,
        rendezvous::AppId,
        server::{state::app_state, turn_binding::TurnBinding},
    };

    pub fn ice_servers(app_id: &str) -> Result<Vec<IceServer>, AppError> {
        let state = app_state()?;
        let gone = || AppError::NotFound("This code call has ended.".into());
        let room: AppId = app_id.parse().map_err(|_| gone())?;
        // Credentials bound to the room: they stop working when it is gone.
        let tag = state.rooms.turn_tag(room).ok_or_else(gone)?;
        Ok(state.ice_servers.bound_to(&TurnBinding::Room { tag }))
    }
}
