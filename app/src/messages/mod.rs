//! Messages between friends: the conversation list and a conversation with its live history.
//! Reading goes through the server functions in [`api`]; sending, receipts and typing travel
//! over the real-time channel (`crate::realtime`). The pages are in [`page`].

pub mod api;
pub mod page;
