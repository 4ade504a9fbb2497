//! The SMTP protocol (RFC 5321 and its extensions) as sans-I/O engines.
//!
//! Nothing here reads a clock, a socket or a random source: sessions take bytes (and, where it
//! matters, the time) in and give bytes and events out, so the same code runs in the browser's
//! simulation, in tests, and behind a real TCP port.

pub mod address;
pub mod client;
pub mod command;
pub mod data_in;
pub mod dot;
pub mod dsn_params;
pub mod explain;
pub mod policy;
pub mod reply;
pub mod sasl;
pub mod server;
pub mod trace;
