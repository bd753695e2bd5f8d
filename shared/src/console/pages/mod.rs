//! The console's pages, one module per area. A page parses its request, authorizes the caller's
//! role, calls one domain function with the caller (which scopes every read to what the caller
//! may see) and renders the answer.

pub(super) mod auth;
pub(super) mod bills;
pub(super) mod catalog;
pub(super) mod customer;
pub(super) mod exports;
pub(super) mod instances;
pub(super) mod listing;
pub(super) mod media;
pub(super) mod operator;
pub(super) mod pricing;
pub(super) mod principals;
pub(super) mod provider;
pub(super) mod sales;
pub(super) mod settlements;
pub(super) mod webhooks;
pub(super) mod wizard;

/// How many rows a page reads where it shows a whole, short list (a provider's services in a
/// choice, a product's reviews).
pub(super) const MANY: usize = 500;
