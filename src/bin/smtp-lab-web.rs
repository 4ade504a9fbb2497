//! The browser app's entry point: mounts the Yew app (see `smtp_lab::ui`). Built by Trunk.

/// The simulation allocates many small, short-lived buffers; talc serves them faster than
/// Rust's default wasm allocator (dlmalloc), and its code is smaller.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(target_arch = "wasm32")]
fn main() {
    smtp_lab::ui::mount();
}

// Natively there is no browser to mount into.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("smtp-lab-web runs in the browser: use `make serve`.");
}
