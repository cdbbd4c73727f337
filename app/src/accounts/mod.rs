//! Accounts: signing up and in (password or Google), the session as pages see it, and the
//! profile page (name, password, sign out everywhere, deletion). Server functions in [`api`],
//! field rules shared by browser and server in [`validate`].

pub mod api;
pub mod profile;
pub mod session;
pub mod sign_in;
pub mod sign_up;
pub mod validate;
