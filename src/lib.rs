//! SMTP Lab: the protocol engines, the simulated mail world, and the browser app that shows it.
//!
//! The layers depend on each other in one direction only: `smtp` knows nothing of the world
//! around it, `ui` (wasm only) reads what the layers below produce and never drives protocol
//! logic itself, and `native` (not on wasm) puts the same engines on real TCP sockets.

pub mod dns;
pub mod mail;
pub mod pop3;
pub mod sim;
pub mod smtp;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(target_arch = "wasm32")]
pub mod ui;
