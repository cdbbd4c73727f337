//! The public status page: is Parlor healthy (and nothing an attacker could use).

pub mod api;
pub mod page;
