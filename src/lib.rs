//! SMTP Lab: the protocol engines, the simulated mail world, and the browser app that shows it.
//!
//! The layers depend on each other in one direction only: `smtp` knows nothing of the world
//! around it, `ui` (wasm only) reads what the layers below produce and never drives protocol
//! logic itself, and `native` (not on wasm) puts the same engines on real TCP sockets.

pub mod dns;
pub mod escape;
pub mod mail;
pub mod percent;
pub mod pop3;
pub mod sim;
pub mod smtp;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(target_arch = "wasm32")]
pub mod ui;

/// The ending that makes a noun agree with `count` in the texts the layers write: "" for one,
/// "s" for any other number ("1 message", "2 messages", "0 recipients").
pub(crate) fn plural(count: u64) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

// The page runs single-threaded wasm (no `atomics`), which this allocator is for.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
