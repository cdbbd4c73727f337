//! One module per page of the site.

pub mod friends;
pub mod home;
pub mod messages;
pub mod not_found;
pub mod profile;
pub mod sign_in;
pub mod sign_up;
pub mod status;
