//! The operator's status page: version, database and applied migrations.

pub mod api;
pub mod page;
