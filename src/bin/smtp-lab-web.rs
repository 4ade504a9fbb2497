//! The browser app's entry point: mounts the Yew app (see `smtp_lab::ui`). Built by Trunk.

#[cfg(target_arch = "wasm32")]
fn main() {
    smtp_lab::ui::mount();
}

// Natively there is no browser to mount into.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("smtp-lab-web runs in the browser: use `make serve`.");
}
