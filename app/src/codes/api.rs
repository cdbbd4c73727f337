//! What a code call asks the server besides the rendezvous API: the STUN/TURN servers, handed
//! only to someone who names a live room (the room's id is a secret of its two sides).

use leptos::prelude::*;

use crate::{error::AppError, protocol::IceServer};

/// The STUN/TURN servers for a call in room `app_id`; 404 when the room is gone.
#[server(endpoint = "codes/ice")]
pub async fn code_ice_servers(app_id: String) -> Result<Vec<IceServer>, AppError> {
    crate::server::respond(imp::ice_servers(&app_id).await)
}

#[cfg(feature = "ssr")]
mod imp {
    use crate::{
        error::AppError,
        protocol::IceServer,
        rendezvous::AppId,
        server::{state::app_state, turn_binding::TurnBinding},
    };

    pub async fn ice_servers(app_id: &str) -> Result<Vec<IceServer>, AppError> {
        let state = app_state()?;
        let gone = || AppError::NotFound("This code call has ended.".into());
        let room: AppId = app_id.parse().map_err(|_| gone())?;
        // Credentials bound to the room: they stop working when it is gone.
        let tag = match (state.rooms.turn_tag(room), &state.cluster) {
            (Some(tag), _) => tag,
            // A room another instance holds: this one's TURN server takes its credentials
            // until that instance says the room is gone.
            (None, Some(cluster)) => {
                let home = cluster.room_home(room).await.map_err(|error| {
                    tracing::warn!(%error, "looking up a room in Redis failed");
                    AppError::Unavailable
                })?;
                let tag = home.ok_or_else(gone)?.turn_tag;
                state.rooms.learn_remote_tag(tag);
                tag
            }
            (None, None) => return Err(gone()),
        };
        Ok(state.ice_servers.bound_to(&TurnBinding::Room { tag }))
    }
}
