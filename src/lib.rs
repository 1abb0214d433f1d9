//! Switchyard: the front door of a multi-tenant HTTP service while it moves, route by route and
//! tenant by tenant, from a legacy monolith to new services (the strangler-fig pattern).
//!
//! For each request it finds the tenant, matches a route, decides which side serves it
//! (legacy or new), forwards it streaming with a fallback to legacy, and — where asked —
//! sends a shadow copy to the other side and compares the two answers off the hot path.
//! The request path is [`proxy::handle`]; the rules it runs on are one immutable
//! [`live::Snapshot`] swapped whole on reload.

//! tenant by tenant, from a legacy monolith to new services.

pub mod access_log;
pub mod admin;
pub mod api;
pub mod body;
pub mod cli;
pub mod client;
pub mod clock;
pub mod compare;
pub mod config;
pub mod demo;
pub mod error;
pub mod fleet;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod guard;
pub mod head;
pub mod live;
pub mod proxy;
pub mod rules;
pub mod server;
pub mod shadow;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod term;
pub mod tls;
pub mod trace;
pub mod traffic;
pub mod upstream;
