//! The browser app (wasm only).
pub fn mount() {}
