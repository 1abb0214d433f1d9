//! Shadow traffic: a copy of a request goes to the other side, its response is compared with the
//! one the client received, and the differences are recorded — never returned to the client.
//!
//! This module holds the pure parts, usable without a runtime:
//! - [`compare`]: `diff(primary, shadow, &CompareRules) -> Diff` — status, chosen headers and
//!   the body (JSON structurally, text line by line, binary by digest), plus redaction;
//! - [`noise`]: learned noise — paths that differ between two answers of the same side are
//!   told apart from real mismatches by a statistical test;
//! - [`decode`]: bounded decoding of `Content-Encoding` (gzip, deflate, br) before comparing.

pub mod compare;
pub mod decode;
pub mod noise;
