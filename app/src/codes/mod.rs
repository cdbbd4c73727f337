//! Meet with a code: two browsers pair through a short single-use code, no account needed.
//! The server's side is the rendezvous API (`crate::rendezvous`, `crate::server::rendezvous`);
//! here is the browser's: the page ([`page`]), the code people read out ([`code`]), and, in
//! the browser only, the room's socket, the handshake that keeps the server out of the call
//! (SPAKE2 over the whole code, sealed signals), and the call on the shared engine.

pub mod api;
pub mod code;
#[cfg(any(feature = "hydrate", test))]
mod handshake;
#[cfg(feature = "hydrate")]
mod mailbox;
pub mod page;
#[cfg(any(feature = "hydrate", test))]
mod qr;
#[cfg(feature = "hydrate")]
mod room;
#[cfg(any(feature = "hydrate", test))]
mod secure;
#[cfg(any(feature = "hydrate", test))]
mod words;
