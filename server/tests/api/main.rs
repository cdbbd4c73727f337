//! Integration tests: the real application on port 0 with a fresh database each, driven over
//! HTTP; and the real binary, for what happens before the server can start.

mod assets;
mod auth;
mod binary;
mod calls;
mod cluster;
mod cluster_calls;
mod cluster_codes;
mod cluster_limits;
mod decoders;
mod friends;
mod guests;
mod health;
mod helpers;
mod limits;
mod messaging;
mod metrics;
mod moderation;
mod oauth;
mod pages;
mod people;
mod rendezvous;
mod strangers;
mod tls;
mod turn;
