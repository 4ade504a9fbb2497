//! The browser app (wasm only): Yew components that show the simulation. Components read what
//! the layers below produce; they never drive protocol logic themselves.

mod app;
mod bench;
mod controls;
mod conversation;
mod details;
pub mod player;
mod topology;

pub use app::{App, Lab, LabAction};

/// Id of the element in index.html that the app mounts into.
pub const ROOT_ID: &str = "lab";

/// Mounts the app into the `#lab` element of index.html, replacing the static placeholder
/// regions shown while the wasm loaded. Falls back to `<body>` if the element is missing.
pub fn mount() {
    let document = gloo::utils::document();
    let search = gloo::utils::window()
        .location()
        .search()
        .unwrap_or_default();
    if search.contains("bench=s10k") {
        bench::run_s10k(&document);
        return;
    }
    match document.get_element_by_id(ROOT_ID) {
        Some(root) => {
            root.set_inner_html("");
            yew::Renderer::<App>::with_root(root).render();
        }
        None => {
            gloo::console::warn!("SMTP Lab: #lab not found; mounting into <body>");
            yew::Renderer::<App>::new().render();
        }
    }
}
