//! Friends, the first way to meet: finding people, requests, the friends list with presence,
//! unfriending and blocking. Server functions in [`api`], the page in [`page`].

pub mod api;
pub mod page;
