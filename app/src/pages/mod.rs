//! The site's own pages, beside the ways to meet: the landing page and "not found".

pub mod home;
pub mod not_found;
