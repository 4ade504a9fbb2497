//! The browser app (wasm only): Yew components that show the simulation. Components read what
//! the layers below produce; they never drive protocol logic themselves.

mod app;
mod bench;
mod compose;
mod controls;
mod conversation;
mod details;
pub mod player;
mod topology;

pub use app::{
    App, Lab, LabAction, ADDRESS_DELAY_MS, KEY_REPEAT_WAIT_MAX_MS, LARGE_FILE_OCTETS, PAGE_TITLE,
};
pub use conversation::LINES_DRAWN_MAX;
pub use details::{ANNOUNCEMENT_KEPT_MS, SAID_AGAIN_AFTER_MS};
pub use topology::{Topology, TopologyProps};

/// Whether the keyboard focus is on no element of the page (on its body): where a browser
/// leaves it when the focused element goes away or becomes disabled.
fn focus_on_page() -> bool {
    let document = gloo::utils::document();
    document.active_element().is_none_or(|active| {
        document
            .body()
            .is_some_and(|page| page.is_same_node(Some(&active)))
    })
}

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
