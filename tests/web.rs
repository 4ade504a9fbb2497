//! Browser tests: Yew components mounted in a real headless Chromium and checked in the DOM.
//! Run with `cargo test --target wasm32-unknown-unknown --test web` (see Makefile).
#![cfg(target_arch = "wasm32")]

mod sim_common;

use smtp_lab::ui::player::{Player, PlayerAction};
use smtp_lab::ui::{App, KEY_REPEAT_WAIT_MAX_MS, LINES_DRAWN_MAX, PAGE_TITLE};
use wasm_bindgen_test::*;
use web_sys::Element;

wasm_bindgen_test_configure!(run_in_browser);

/// Mounts the app into a fresh element in the page and renders it synchronously.
async fn mount_app() -> Element {
    mount_app_at("#").await
}

thread_local! {
    /// The app mounted last, with its element: the tests share one page.
    static MOUNTED: std::cell::RefCell<Option<(yew::AppHandle<App>, Element)>> =
        const { std::cell::RefCell::new(None) };
}

/// Mounts the app with `fragment` in the page's address, as a share link opens it. The
/// address is replaced, not navigated to. The app mounted before is taken away first: its
/// keyboard shortcuts listen on the whole page, and every app writes the address as it steps,
/// which Chromium stops taking after a few hundred writes in a few seconds.
async fn mount_app_at(fragment: &str) -> Element {
    if let Some((app, element)) = MOUNTED.with(|mounted| mounted.borrow_mut().take()) {
        app.destroy();
        element.remove();
    }
    gloo::utils::window()
        .history()
        .expect("the page has a history")
        .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(fragment))
        .expect("the address can be replaced");
    let document = gloo::utils::document();
    let root = document
        .create_element("main")
        .expect("creating an element works");
    document
        .body()
        .expect("the test page has a body")
        .append_child(&root)
        .expect("appending to body works");
    let app = yew::Renderer::<App>::with_root(root.clone()).render();
    MOUNTED.with(|mounted| *mounted.borrow_mut() = Some((app, root.clone())));
    yew::scheduler::flush().await;
    root
}

#[wasm_bindgen_test]
async fn app_renders_the_four_regions() {
    let root = mount_app().await;
    let titles: Vec<String> = (0..)
        .map_while(|index| {
            root.query_selector_all(".region-title")
                .ok()?
                .item(index)
                .and_then(|node| node.text_content())
        })
        .collect();
    assert_eq!(titles, ["Topology", "Conversation", "Details"]);
    for region in ["topology", "conversation", "details", "controls"] {
        let selector = format!(".region-{region}");
        assert!(
            root.query_selector(&selector).unwrap().is_some(),
            "region {region} is missing"
        );
    }
    let svg = root
        .query_selector("svg.topology")
        .unwrap()
        .expect("topology diagram");
    let labels = svg.text_content().unwrap_or_default();
    for host in [
        "Alice",
        "mail.sender",
        "DNS",
        "mx.receiver",
        "Bob",
        "POP3 :110",
    ] {
        assert!(labels.contains(host), "diagram lacks {host}: {labels}");
    }
}

#[wasm_bindgen_test]
async fn controls_are_disabled_without_a_trace() {
    let root = mount_app().await;
    let buttons = root.query_selector_all(".controls button").unwrap();
    assert_eq!(buttons.length(), 6);
    for index in 0..buttons.length() {
        let button = buttons.item(index).unwrap();
        let element: &Element = wasm_bindgen::JsCast::unchecked_ref(&button);
        assert!(
            element.has_attribute("disabled"),
            "button {index} should be disabled"
        );
    }
    let position = root.query_selector(".controls-position").unwrap().unwrap();
    assert_eq!(position.text_content().unwrap(), "No scenario loaded");
}

/// The speed button's name starts with what it shows, so that a voice command naming what
/// is seen finds it (WCAG 2.5.3), at every speed.
#[wasm_bindgen_test]
async fn the_speed_buttons_name_starts_with_its_text() {
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let button = element(&root, ".controls button[title='Playback speed']");
        let text = button.text_content().unwrap_or_default();
        let name = button.get_attribute("aria-label").unwrap_or_default();
        assert!(name.starts_with(&format!("{text} ")), "{text:?}: {name:?}");
        seen.push(text);
        click(&root, ".controls button[title='Playback speed']");
        yew::scheduler::flush().await;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
fn player_never_leaves_the_trace() {
    let mut player = Player::new(3);
    player = player.apply(PlayerAction::StepBack);
    assert_eq!(player.cursor, 0);
    for _ in 0..5 {
        player = player.apply(PlayerAction::StepForward);
    }
    assert_eq!(player.cursor, 3);
    assert!(player.at_end());
    // Playing from the end starts over; ticks stop at the end.
    player = player.apply(PlayerAction::TogglePlay);
    assert!(player.playing);
    assert_eq!(player.cursor, 0);
    for _ in 0..10 {
        player = player.apply(PlayerAction::Tick);
    }
    assert_eq!(player.cursor, 3);
    assert!(!player.playing);
    // An empty trace cannot play.
    assert!(!Player::new(0).apply(PlayerAction::TogglePlay).playing);
}

/// Picks a scenario in the select box as a user would: set the value, fire `change`.
fn choose_scenario(root: &Element, index: usize) {
    choose_in_picker(root, &index.to_string());
}

/// Picks the picker's entry of `value` as a user would: set the value, fire `change`.
fn choose_in_picker(root: &Element, value: &str) {
    let select: web_sys::HtmlSelectElement = wasm_bindgen::JsCast::unchecked_into(
        root.query_selector("#scenario-select")
            .unwrap()
            .expect("the scenario picker"),
    );
    select.set_value(value);
    let event = web_sys::Event::new("change").unwrap();
    select.dispatch_event(&event).unwrap();
}

/// The element `selector` finds in the app.
fn element(root: &Element, selector: &str) -> web_sys::HtmlElement {
    wasm_bindgen::JsCast::unchecked_into(
        root.query_selector(selector)
            .unwrap()
            .expect("the element exists"),
    )
}

fn click(root: &Element, selector: &str) {
    element(root, selector).click();
}

/// Presses `key` on the page, as a keyboard does; whether the app kept the browser from its
/// own action for it.
fn press_key(key: &str) -> bool {
    press_key_on(&gloo::utils::document().body().unwrap(), key)
}

/// Presses `key` with Shift held, on the page.
fn press_shifted_key(key: &str) -> bool {
    press_key_with(&gloo::utils::document().body().unwrap(), key, true)
}

/// Presses `key` with `target` focused: the event starts there and bubbles up.
fn press_key_on(target: &Element, key: &str) -> bool {
    press_key_with(target, key, false)
}

fn press_key_with(target: &Element, key: &str, shift: bool) -> bool {
    let event = key_down(key, shift, false);
    target.dispatch_event(&event).unwrap();
    event.default_prevented()
}

/// A `keydown` of `key`, with Shift held or not, that the keyboard repeats (as a held key
/// sends) or not; its time stamp is when it is made, and how long it waited is counted from
/// then.
fn key_down(key: &str, shift: bool, repeat: bool) -> web_sys::KeyboardEvent {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_shift_key(shift);
    init.set_repeat(repeat);
    init.set_bubbles(true);
    init.set_cancelable(true);
    web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init)
        .expect("a key event")
}

#[wasm_bindgen_test]
async fn choosing_a_scenario_then_stepping_shows_the_conversation_and_explanations() {
    let root = mount_app().await;
    let options = root.query_selector_all("#scenario-select option").unwrap();
    assert!(options.length() > 20, "the library is offered");
    // Grouped by what they teach, each group's scenarios under its label, in library order.
    let groups = root
        .query_selector_all("#scenario-select optgroup")
        .unwrap();
    let labels: Vec<String> = (0..groups.length())
        .filter_map(|index| groups.item(index))
        .map(|group| {
            wasm_bindgen::JsCast::unchecked_into::<Element>(group)
                .get_attribute("label")
                .unwrap_or_default()
        })
        .collect();
    let mut expected: Vec<String> = smtp_lab::sim::library::GROUPS
        .iter()
        .map(|(label, _)| label.to_string())
        .collect();
    expected.push("Your own".into());
    assert_eq!(labels, expected);
    let refused: Vec<String> = texts_of(
        &root,
        "#scenario-select optgroup[label='Refused and bounced'] option",
    );
    assert_eq!(refused[0], "Unknown user refused at RCPT", "{refused:?}");
    choose_scenario(&root, 0);
    yew::scheduler::flush().await;
    let position = root.query_selector(".controls-position").unwrap().unwrap();
    let text = position.text_content().unwrap();
    assert!(text.starts_with("Step 0 of "), "{text}");
    let details = root.query_selector(".region-details").unwrap().unwrap();
    assert!(details
        .text_content()
        .unwrap()
        .contains("One message, delivered and read"));
    // Step until a server reply with an explanation is the current step.
    for _ in 0..4 {
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    let lines = root.query_selector_all(".conversation-log .line").unwrap();
    assert!(lines.length() >= 4, "lines shown: {}", lines.length());
    let log = root
        .query_selector(".conversation-log")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert!(log.contains("S: 220 mail.sender.test"), "{log}");
    assert!(
        details.text_content().unwrap().contains("Simulated time"),
        "details follow the cursor"
    );
    // A client command is explained too, with its RFC section.
    let mut steps_taken = step_to(&root, "C: EHLO").await;
    assert!(steps_taken < 10, "EHLO is sent within a few steps");
    let text = details.text_content().unwrap();
    assert!(
        text.contains("RFC 5321 4.1.1.1"),
        "the EHLO step is explained: {text}"
    );
    // Its reply is explained keyword by keyword, one point each.
    steps_taken += step_to(&root, "S: 250-").await;
    assert!(steps_taken < 15, "the EHLO reply comes within a few steps");
    let points = details
        .query_selector_all(".explanation-points li")
        .unwrap();
    let points: Vec<String> = (0..points.length())
        .filter_map(|index| points.item(index)?.text_content())
        .collect();
    assert!(
        points.iter().any(|point| point.starts_with("PIPELINING: "))
            && points
                .iter()
                .any(|point| point.starts_with("AUTH PLAIN LOGIN: "))
            && points.len() == 7,
        "{points:?}"
    );
    for _ in 0..steps_taken {
        click(&root, "button[title='Step back']");
    }
    yew::scheduler::flush().await;
    // The greeting travels on the submission hop, which the diagram highlights; the diagram
    // draws this run's parties, the reader too.
    assert_eq!(
        root.query_selector_all(".topology-link-active")
            .unwrap()
            .length(),
        1,
        "one hop is highlighted"
    );
    let diagram = root
        .query_selector("svg.topology")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    for party in [
        "alice@sender.test",
        "mail.sender.test",
        "mx.receiver.test",
        "bob@receiver.test",
        "SMTP :587",
    ] {
        assert!(diagram.contains(party), "{party} in {diagram}");
    }
    // Back to the start: nothing shown again.
    click(&root, "button[title='Back to the start']");
    yew::scheduler::flush().await;
    assert_eq!(
        root.query_selector_all(".conversation-log .line")
            .unwrap()
            .length(),
        0
    );
}

fn text_of(root: &Element, selector: &str) -> String {
    root.query_selector(selector)
        .unwrap()
        .and_then(|element| element.text_content())
        .unwrap_or_default()
}

/// The player's "Step N of M", as (N, M).
fn position(root: &Element) -> (usize, usize) {
    let text = text_of(root, ".controls-position");
    text.trim_start_matches("Step ")
        .split_once(" of ")
        .and_then(|(shown, total)| Some((shown.parse().ok()?, total.parse().ok()?)))
        .unwrap_or_else(|| panic!("not \"Step N of M\": {text}"))
}

/// Steps forward until the step's first line holds `text`; how many steps that took. Fails
/// at the end of the run without it.
async fn step_to(root: &Element, text: &str) -> usize {
    let (_, steps) = position(root);
    for taken in 0..=steps {
        if text_of(root, ".line-current").contains(text) {
            return taken;
        }
        click(root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    panic!("no step of the run has {text}");
}

/// A retry's explanation, shown and said, gives the wait of its run, which a scenario may
/// set: not only the defaults.
#[wasm_bindgen_test]
async fn a_retry_is_explained_with_the_wait_of_its_run() {
    let root = mount_app_at("#scenario=greylisting").await;
    yew::scheduler::flush().await;
    step_to(&root, " retry at ").await;
    let note = text_of(&root, ".region-details .step-note");
    assert!(
        note.contains("is tried again in 30 minutes, at 0+00:30:00."),
        "{note}"
    );
    let said = text_of(&root, ".region-details [aria-live='polite']");
    assert!(
        said.contains("is tried again in 30 minutes, at 0+00:30:00."),
        "{said}"
    );
    mount_app_at("#").await;
}

/// A bounce delivered on the host that wrote it crosses no wire; its step shows it as
/// written, line by line.
#[wasm_bindgen_test]
async fn a_bounce_can_be_read_at_the_step_that_writes_it() {
    let root = mount_app_at("#scenario=unknown-user").await;
    yew::scheduler::flush().await;
    step_to(&root, "failed notice b1").await;
    let summary = text_of(&root, ".wire summary");
    assert!(summary.starts_with("The notice as written: "), "{summary}");
    let lines = text_of(&root, ".wire-lines");
    assert!(lines.contains("report-type=delivery-status"), "{lines}");
    assert!(
        lines.contains("Final-Recipient: rfc822; nobody@receiver.test"),
        "{lines}"
    );
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_student_goes_from_failure_to_failure_by_button_or_key() {
    let root = mount_app_at("#scenario=mailbox-full").await;
    yew::scheduler::flush().await;
    let jump = |root: &Element| {
        let buttons = root.query_selector_all(".details-failures button").unwrap();
        (0..buttons.length())
            .filter_map(|index| buttons.item(index)?.text_content())
            .collect::<Vec<String>>()
    };
    // The introduction offers the first failure: the full mailbox's 452 at RCPT.
    let offered = jump(&root);
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(
        offered[0].starts_with("First failure: step "),
        "{offered:?}"
    );
    click(&root, ".details-failures button");
    yew::scheduler::flush().await;
    let (first, _) = position(&root);
    assert!(
        offered[0].contains(&format!("step {first}\u{a0}")),
        "{offered:?} at {first}"
    );
    assert!(text_of(&root, ".line-current.line-refusal").contains("452 4.2.2"));
    // Shift+→ goes on to the next one, the refusal at the retry, past the sending host's record
    // of the first and the retry it scheduled; Shift+← comes back.
    assert!(press_shifted_key("ArrowRight"));
    yew::scheduler::flush().await;
    let (second, _) = position(&root);
    assert!(second > first);
    assert!(text_of(&root, ".line-current.line-refusal").contains("452 4.2.2"));
    assert!(text_of(&root, ".line-current").contains("S: 250 2.1.0"));
    let offered = jump(&root);
    assert!(
        offered[0] == format!("◀\u{a0}Previous failure: step {first}"),
        "{offered:?}"
    );
    assert!(press_shifted_key("ArrowLeft"));
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, first);
    // A button pressed keeps the focus while it is there, at the top of the details, in
    // sight; where it goes (no failure before the first), the other way's takes it.
    let focused_button = || {
        gloo::utils::document()
            .active_element()
            .and_then(|active| active.get_attribute("data-forward"))
    };
    let next: web_sys::HtmlElement = wasm_bindgen::JsCast::unchecked_into(element(
        &root,
        ".details-failures button[data-forward='true']",
    ));
    next.focus().unwrap();
    next.click();
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, second);
    assert_eq!(focused_button().as_deref(), Some("true"));
    let previous: web_sys::HtmlElement = wasm_bindgen::JsCast::unchecked_into(element(
        &root,
        ".details-failures button[data-forward='false']",
    ));
    previous.focus().unwrap();
    previous.click();
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, first);
    assert_eq!(focused_button().as_deref(), Some("true"));
    // (No styles load in these tests: the order stands for the place.)
    let nav = element(&root, ".details-failures");
    assert_eq!(
        nav.previous_element_sibling()
            .map(|above| above.class_name()),
        Some("details-time".to_string()),
        "the buttons are at the top of the details, under the time"
    );
    // Before the first failure there is none to go back to: Shift+← stays, and says so.
    press_shifted_key("ArrowLeft");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, first);
    let said = text_of(&root, ".region-details [role='status']");
    assert_eq!(said, "No failure before this step.");
    // After the last, the steps marked as failing only follow from it (the retry it
    // schedules): Shift+→ says so, rather than doing nothing; a step puts that away.
    let root = mount_app_at("#scenario=greylisting&step=55").await;
    yew::scheduler::flush().await;
    press_shifted_key("ArrowRight");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 55);
    let said = text_of(&root, ".region-details [role='status']");
    assert!(said.starts_with("No failure after this step: "), "{said}");
    press_key("ArrowRight");
    yew::scheduler::flush().await;
    assert_eq!(text_of(&root, ".region-details [role='status']"), "");
    // A run where nothing fails offers no such way, and says so.
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    assert!(root.query_selector(".details-failures").unwrap().is_none());
    let hint = text_of(&root, ".region-details");
    assert!(
        hint.contains("Home and End jump. Nothing fails in this scenario."),
        "{hint}"
    );
    press_shifted_key("ArrowRight");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 0, "Shift+→ stays where nothing fails");
    let said = text_of(&root, ".region-details [role='status']");
    assert_eq!(said, "Nothing fails in this run.");
    // A letter is no shortcut (WCAG 2.1.4).
    assert!(!press_key("n"));
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_share_link_opens_its_scenario_at_its_step_and_the_address_follows_the_player() {
    let root = mount_app_at("#scenario=greylisting&step=55").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 55);
    assert!(text_of(&root, ".conversation-log").contains("S: 451 4.7.1"));
    // The refusal is explained first, its reason as a sentence.
    let first = text_of(&root, ".region-details .explanation");
    assert!(first.starts_with("451 4.7.1"), "{first}");
    // Why this server sent it, before what 451 means in general ("local error in
    // processing", which would mislead on its own).
    let why = first.find("First attempt for this");
    let general = first.find("What the code means in general: 451");
    assert!(
        why.zip(general).is_some_and(|(why, general)| why < general),
        "{first}"
    );
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(address().await, "#scenario=greylisting&step=56");
    // A step past the end shows the end, and says so.
    let root = mount_app_at("#scenario=null-mx&step=100000").await;
    yew::scheduler::flush().await;
    let (shown, total) = position(&root);
    assert_eq!(shown, total);
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains(&format!(
            "This link gives step 100000, but this scenario has {total} steps. \
             The scenario opens at step {total}."
        )),
        "{details}"
    );
    // A number too large to hold is not written back as another one.
    let root = mount_app_at("#scenario=null-mx&step=99999999999999999999999").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, total);
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains(&format!(
            "This link gives a step number larger than any scenario has; this one has \
             {total} steps."
        )),
        "{details}"
    );
    // The last step itself is no step past the end.
    let root = mount_app_at(&format!("#scenario=null-mx&step={total}")).await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, total);
    let details = text_of(&root, ".region-details");
    assert!(!details.contains("This link gives step"), "{details}");
    // Capitals, as a phone's keyboard puts them, name the same scenario.
    let root = mount_app_at("#Scenario=Greylisting&Step=55").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 55);
    assert!(text_of(&root, "#scenario-select option:checked")
        .to_lowercase()
        .contains("greylist"));
}

#[wasm_bindgen_test]
async fn a_link_written_with_a_question_mark_is_followed_and_put_right() {
    let window = gloo::utils::window();
    let path = window.location().pathname().unwrap_or_default();
    let root = mount_app_at(&format!("{path}?scenario=null-mx&step=3")).await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 3);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    // The address now reads as every other link: the query moved after '#'.
    assert_eq!(window.location().search().unwrap_or_default(), "");
    assert_eq!(address().await, "#scenario=null-mx&step=3");
    // A query that is no link to a scenario is left alone, and opens nothing.
    let root = mount_app_at(&format!("{path}?utm_source=x")).await;
    yew::scheduler::flush().await;
    assert!(text_of(&root, ".controls-position").contains("No scenario loaded"));
    assert_eq!(
        window.location().search().unwrap_or_default(),
        "?utm_source=x"
    );
    assert!(text_of(&root, ".region-details").contains("Each step's details appear here"));
    // A link in the query and another after '#': the fragment is followed, and the query goes.
    let root = mount_app_at(&format!(
        "{path}?scenario=greylisting&step=2#scenario=null-mx&step=3"
    ))
    .await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 3);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    assert_eq!(window.location().search().unwrap_or_default(), "");
    assert_eq!(address().await, "#scenario=null-mx&step=3");
    // A fragment that is no link gives way to the query's link.
    let root = mount_app_at(&format!("{path}?scenario=greylisting&step=2#top")).await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 2);
    assert_eq!(window.location().search().unwrap_or_default(), "");
    assert_eq!(address().await, "#scenario=greylisting&step=2");
    mount_app_at(&path).await;
}

/// A link followed while the dialog for writing a message is open (Back to a link opened
/// before, which on a phone is also how a dialog is closed) closes it: its world is no longer
/// the one shown.
#[wasm_bindgen_test]
async fn a_link_followed_while_writing_a_message_closes_the_dialog() {
    let root = write_a_message_in("greylisting").await;
    follow_link("#scenario=basic-delivery&step=3").await;
    assert!(!compose_is_open(&root));
    assert_eq!(position(&root).0, 3);
    assert!(text_of(&root, "#scenario-select option:checked").contains("delivered and read"));
    // The focus is on Play, not given back to the picker, where the arrow keys would choose
    // another scenario.
    sleep(20).await;
    let focused = gloo::utils::document().active_element().unwrap();
    assert_eq!(focused.text_content().unwrap_or_default(), "Play");
    mount_app_at("#").await;
}

/// The tab's title names the scenario shown, so that tabs opened from several links can be
/// told apart (WCAG 2.4.2).
#[wasm_bindgen_test]
async fn the_tab_title_names_the_scenario_shown() {
    // The page's title before the app runs is the one it gives back.
    let page = include_str!("../index.html");
    assert!(page.contains(&format!("<title>{PAGE_TITLE}</title>")));
    let root = mount_app_at("#scenario=greylisting&step=3").await;
    yew::scheduler::flush().await;
    let chosen = text_of(&root, "#scenario-select option:checked");
    let title = gloo::utils::document().title();
    assert_eq!(title, format!("{chosen} · SMTP Lab: watch e-mail travel"));
    follow_link("#scenario=null-mx").await;
    let title = gloo::utils::document().title();
    assert!(
        title.starts_with(&text_of(&root, "#scenario-select option:checked")),
        "{title}"
    );
    assert_ne!(title, format!("{chosen} · SMTP Lab: watch e-mail travel"));
    mount_app_at("#").await;
    yew::scheduler::flush().await;
    assert_eq!(
        gloo::utils::document().title(),
        "SMTP Lab: watch e-mail travel"
    );
}

#[wasm_bindgen_test]
async fn a_link_with_a_step_it_cannot_read_opens_its_scenario_and_says_what_it_left_out() {
    let root = mount_app_at("#scenario=null-mx&step=fifty").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("not a step number"), "{details}");
    assert!(details.contains("opens at its start"), "{details}");
    assert_eq!(position(&root).0, 0);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    // The address bar holds the link to what is shown, not the one that was opened.
    assert_eq!(address().await, "#scenario=null-mx&step=0");
    // The scenario is there to step through; the first step puts the complaint away.
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 1);
    assert!(!text_of(&root, ".region-details").contains("not a step number"));
    // Over another scenario, such a link opens its own at its start; over its own, it leaves
    // it where it is.
    let root = mount_app_at("#scenario=greylisting&step=7").await;
    follow_link("#scenario=null-mx&step=x").await;
    assert_eq!(position(&root).0, 0);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    let root = mount_app_at("#scenario=greylisting&step=7").await;
    follow_link("#scenario=greylisting&step=x").await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("stays at step 7"), "{details}");
    assert_eq!(position(&root).0, 7);
    assert_eq!(address().await, "#scenario=greylisting&step=7");
    // The same link again is replaced again; a broken link before it does not hide what
    // this one left out.
    // What had the focus in the details (its next-failure button, say) is replaced by the
    // complaint: the focus goes to the details, not lost to the page.
    let next: web_sys::HtmlElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, ".region-details button"));
    next.focus().unwrap();
    follow_link("#scenario=nope").await;
    assert!(text_of(&root, ".region-details").contains("not one of SMTP Lab's"));
    sleep(20).await;
    let focused = gloo::utils::document().active_element().unwrap();
    assert!(
        focused.closest(".region-details").unwrap().is_some(),
        "{}",
        focused.outer_html()
    );
    // The notice's live region is there before its text, or a screen reader would not say it.
    let status = element(&root, ".region-details [role='status']");
    assert_eq!(status.text_content().unwrap_or_default(), "");
    follow_link("#scenario=greylisting&step=x").await;
    let status_now = element(&root, ".region-details [role='status']");
    assert!(status.is_same_node(Some(&status_now)));
    assert!(status_now
        .text_content()
        .unwrap_or_default()
        .contains("stays at step 7"));
    let details = text_of(&root, ".region-details");
    assert!(details.contains("stays at step 7"), "{details}");
    assert!(!details.contains("not one of SMTP Lab's"), "{details}");
    assert_eq!(address().await, "#scenario=greylisting&step=7");
    // So does a broken link that gives a step.
    follow_link("#scenario=nope&step=1").await;
    assert!(text_of(&root, ".region-details").contains("not one of SMTP Lab's"));
    follow_link("#scenario=greylisting&step=x").await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("stays at step 7"), "{details}");
    assert_eq!(position(&root).0, 7);
    // A part added on the way is left out, and the step still holds.
    let root = mount_app_at("#scenario=null-mx&step=3&fbclid=abc").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 3);
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("\"fbclid=abc\", which is left out. The scenario opens at step 3."),
        "{details}"
    );
    // Said over the step's details, which stay.
    assert!(details.contains("Simulated time"), "{details}");
    assert_eq!(address().await, "#scenario=null-mx&step=3");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_broken_share_link_says_why_and_the_app_keeps_working() {
    for (fragment, expected) in [
        ("#scenario=no-such-scenario", "not one of SMTP Lab's"),
        ("#scenario=greylist&step=3", "Did you mean \"greylisting\"?"),
        (
            "#scenario=greylisting&scenario=null-mx",
            "names two scenarios",
        ),
        ("#%E2%80%AE<script>", "does not know"),
    ] {
        let root = mount_app_at(fragment).await;
        yew::scheduler::flush().await;
        let details = text_of(&root, ".region-details");
        assert!(details.contains(expected), "{fragment}: {details}");
        assert_eq!(text_of(&root, ".controls-position"), "No scenario loaded");
        // Choosing a scenario still works, and replaces the error.
        choose_scenario(&root, 0);
        yew::scheduler::flush().await;
        let position = text_of(&root, ".controls-position");
        assert!(position.starts_with("Step 0 of "), "{position}");
        assert!(!text_of(&root, ".region-details").contains(expected));
    }
    // A broken link opened over a scenario leaves the scenario where it was, and the address
    // its link; the next step puts the complaint away.
    let root = mount_app_at("#scenario=greylisting&step=7").await;
    yew::scheduler::flush().await;
    follow_link("#scenario=no-such-scenario").await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("not one of SMTP Lab's"), "{details}");
    assert_eq!(position(&root).0, 7);
    assert_eq!(address().await, "#scenario=greylisting&step=7");
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 8);
    assert!(text_of(&root, ".region-details").contains("Simulated time"));
    mount_app_at("#").await;
}

/// The fragment in the page's address, once the app has written it (it waits for what is
/// shown to stand still).
async fn address() -> String {
    sleep(2 * smtp_lab::ui::ADDRESS_DELAY_MS as i32).await;
    gloo::utils::window().location().hash().unwrap()
}

/// Lets `ms` milliseconds pass, the page going on meanwhile.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        gloo::utils::window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// Puts `fragment` in the address as a user editing it would: the page hears "hashchange".
async fn follow_link(fragment: &str) {
    let window = gloo::utils::window();
    window
        .history()
        .unwrap()
        .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(fragment))
        .unwrap();
    window
        .dispatch_event(&web_sys::Event::new("hashchange").unwrap())
        .unwrap();
    yew::scheduler::flush().await;
}

#[wasm_bindgen_test]
async fn a_transmission_can_be_seen_whole_with_its_line_endings() {
    // The smuggling attempt: the details show every line, with the bare LF the attack hides
    // behind named.
    let root = mount_app_at("#scenario=smtp-smuggling&step=5").await;
    yew::scheduler::flush().await;
    let wire = text_of(&root, ".wire");
    assert!(wire.contains("The bytes as sent"), "{wire}");
    assert!(wire.contains("LF (bare)"), "{wire}");
    assert!(wire.contains("MAIL FROM:<ceo@receiver.test>"), "{wire}");
    // Lines counted as the conversation counts them: the bare LF ends none.
    assert!(
        wire.contains("12 lines in 13 rows (a bare CR or LF, which ends no line)"),
        "{wire}"
    );
    // The message data of the attachments scenario is too long for the conversation, whose
    // note on the lines it leaves out is not drawn as the client's.
    let root = mount_app_at("#scenario=attachments&step=24").await;
    yew::scheduler::flush().await;
    let summary = text_of(&root, ".line-summary");
    assert!(summary.contains("more lines"), "{summary}");
    // The details' copy of the step's lines counts what it leaves out in lines on the wire,
    // not in the conversation's rows.
    let wire = text_of(&root, ".wire summary");
    let total: usize = wire
        .trim_start_matches("The bytes as sent: ")
        .split(' ')
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no line count: {wire}"));
    let shown = root
        .query_selector_all(".details-step-lines li:not(.line-event)")
        .unwrap()
        .length() as usize;
    let left_out = text_of(&root, ".details-step-lines .line-event");
    assert!(total > 20, "{wire}");
    assert_eq!(
        left_out,
        format!("... {} more lines", total - shown),
        "{wire}"
    );
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn opened_bytes_stay_open_from_step_to_step() {
    let root = mount_app_at("#scenario=basic-delivery&step=24").await;
    yew::scheduler::flush().await;
    let toggle = |open: bool| {
        // As a click on the summary does: the element opens or closes, then says so.
        let wire = element(&root, ".wire");
        if open {
            wire.set_attribute("open", "").unwrap();
        } else {
            wire.remove_attribute("open").unwrap();
        }
        wire.dispatch_event(&web_sys::Event::new("toggle").unwrap())
            .unwrap();
    };
    // The next step with bytes, within 40 steps: whether they are open.
    let next_bytes_open = || async {
        for _ in 0..40 {
            click(&root, "button[title='Step forward']");
            yew::scheduler::flush().await;
            if let Some(wire) = root.query_selector(".wire").unwrap() {
                return wire.has_attribute("open");
            }
        }
        panic!("no bytes within 40 steps of step {}", position(&root).0);
    };
    assert!(
        !element(&root, ".wire").has_attribute("open"),
        "the bytes start closed"
    );
    toggle(true);
    yew::scheduler::flush().await;
    for _ in 0..3 {
        assert!(
            next_bytes_open().await,
            "closed again at step {}",
            position(&root).0
        );
    }
    // Closed, they stay closed.
    toggle(false);
    yew::scheduler::flush().await;
    assert!(
        !next_bytes_open().await,
        "open again at step {}",
        position(&root).0
    );
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn the_scrolling_boxes_take_the_keyboard_focus() {
    // A keyboard alone can scroll what does not fit: the boxes are in the Tab order.
    let root = mount_app_at("#scenario=basic-delivery&step=24").await;
    yew::scheduler::flush().await;
    for selector in [".conversation-log", ".details-body", ".wire-lines"] {
        let scroller = element(&root, selector);
        assert_eq!(
            scroller.tab_index(),
            0,
            "{selector} is not in the Tab order"
        );
        assert!(
            scroller.has_attribute("aria-label"),
            "{selector} has no name for a screen reader"
        );
    }
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn the_keyboard_steps_through_a_scenario() {
    let root = mount_app_at("#scenario=basic-delivery&step=10").await;
    yew::scheduler::flush().await;
    // Each handled key is the player's alone: the browser does not also scroll the page.
    let press = press_key;
    assert!(press("ArrowRight"), "the page would scroll too");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 11);
    assert!(press("ArrowLeft") && press("ArrowLeft"));
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 9);
    assert!(press("End"));
    yew::scheduler::flush().await;
    let (shown, total) = position(&root);
    assert_eq!(shown, total);
    assert!(press("Home"));
    assert!(!press("x"), "other keys are left to the browser");
    // A scenario chosen with the picker hands the focus on to Play, where the keys step.
    let picker = element(&root, "#scenario-select");
    picker.focus().unwrap();
    choose_scenario(&root, 1);
    yew::scheduler::flush().await;
    let focused = || gloo::utils::document().active_element().unwrap();
    assert_eq!(focused().text_content().as_deref(), Some("Play"));
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 0);
    // The arrow keys on the closed picker change the scenario at each press: the focus stays
    // there, so that they browse the list, until Enter hands it on.
    picker.focus().unwrap();
    press_key_on(&picker, "ArrowDown");
    choose_scenario(&root, 2);
    yew::scheduler::flush().await;
    assert_eq!(focused().id(), "scenario-select");
    press_key_on(&picker, "ArrowDown");
    choose_scenario(&root, 3);
    yew::scheduler::flush().await;
    assert_eq!(focused().id(), "scenario-select");
    assert!(press_key_on(&picker, "Enter"), "Enter would press Play too");
    yew::scheduler::flush().await;
    assert_eq!(focused().text_content().as_deref(), Some("Play"));
    assert_eq!(position(&root).0, 0);
    mount_app_at("#").await;
}

/// A `keydown` of `key` that the keyboard repeats, as a held key sends.
fn key_repeat(key: &str) -> web_sys::KeyboardEvent {
    key_down(key, false, true)
}

#[wasm_bindgen_test]
async fn a_held_key_stops_stepping_when_let_go_however_slow_the_drawing() {
    let root = mount_app_at("#scenario=basic-delivery&step=10").await;
    yew::scheduler::flush().await;
    let body = gloo::utils::document().body().unwrap();
    // Repeats that waited longer than a machine that keeps up makes them wait (queued while a
    // slow one drew a step) are passed by, and not left to the browser either.
    let queued: Vec<_> = (0..5).map(|_| key_repeat("ArrowRight")).collect();
    sleep(KEY_REPEAT_WAIT_MAX_MS as i32 + 50).await;
    for event in &queued {
        body.dispatch_event(event).unwrap();
        yew::scheduler::flush().await;
    }
    assert!(queued.iter().all(|event| event.default_prevented()));
    assert_eq!(position(&root).0, 10);
    // A repeat taken at once steps, as does every press of a key, however long it waited.
    let press = key_down("ArrowRight", false, false);
    sleep(KEY_REPEAT_WAIT_MAX_MS as i32 + 50).await;
    body.dispatch_event(&key_repeat("ArrowRight")).unwrap();
    body.dispatch_event(&press).unwrap();
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 12);
    // Space held down plays once: its repeats, however soon, do not pause and play again.
    assert!(press_key(" "));
    let repeat = key_repeat(" ");
    body.dispatch_event(&repeat).unwrap();
    yew::scheduler::flush().await;
    assert!(repeat.default_prevented(), "the page would scroll");
    assert_eq!(text_of(&root, ".controls button.primary"), "Pause");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn space_plays_and_pauses_from_the_players_buttons_and_opens_the_bytes() {
    // Reached the end with the button, the focus is on "Back to the start": Space there plays
    // (from the start, as Play does at the end), not a jump back.
    let root = mount_app_at("#scenario=basic-delivery&step=10").await;
    yew::scheduler::flush().await;
    let to_the_end = element(&root, "button[title='To the end']");
    to_the_end.focus().unwrap();
    to_the_end.click();
    yew::scheduler::flush().await;
    let back = element(&root, "button[title='Back to the start']");
    assert!(press_key_on(&back, " "), "Space would press the button too");
    yew::scheduler::flush().await;
    assert_eq!(text_of(&root, ".controls button.primary"), "Pause");
    assert!(press_key_on(&back, " "));
    yew::scheduler::flush().await;
    assert_eq!(text_of(&root, ".controls button.primary"), "Play");
    // On the summary of a transmission's bytes, Space is the summary's own: it opens them.
    let root = mount_app_at("#scenario=smtp-smuggling&step=5").await;
    yew::scheduler::flush().await;
    let summary = element(&root, ".wire summary");
    assert!(!press_key_on(&summary, " "), "Space is left to the summary");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 5);
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn the_details_read_as_sentences() {
    // The 550 5.1.1 for an unknown user: "receiver.test is a local domain ...", a sentence
    // whose first word is a name, not "Receiver.test".
    let root = mount_app_at("#scenario=unknown-user&step=56").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("receiver.test is a local domain"),
        "{details}"
    );
    assert!(!details.contains("Receiver.test"), "{details}");
    // A queue entry whose recipients have all answered, just before it leaves the queue.
    let root = mount_app_at("#scenario=basic-delivery&step=69").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("q1 m1 for no recipient left (attempt 1 over)"),
        "{details}"
    );
    // A bounce queued and not yet tried.
    let root = mount_app_at("#scenario=unknown-user-after-relay&step=94").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("(not tried yet)"), "{details}");
    assert!(!details.contains("(attempt 0)"), "{details}");
    // Greylisted: the entry waits, and says after what and until when.
    let root = mount_app_at("#scenario=greylisting&step=60").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("(attempt 1 failed: 451 4.7.1 ")
            && details.contains("; next attempt at 0+00:30:00.340)"),
        "{details}"
    );
    // The last step, the conservation check, lists every recipient's outcome: bob fetched
    // and deleted his message, so the mailboxes alone would show nothing.
    let root = mount_app_at("#scenario=basic-delivery&step=100000").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(details.contains("conservation holds"), "{details}");
    assert!(
        details.contains("Outcomes")
            && details.contains("m1 <bob@receiver.test>: delivered to bob@receiver.test"),
        "{details}"
    );
    // First, before the check's own line (the step's summary above the details aside):
    // where the mail went is what is looked for there.
    let check_line = details.find("check conservation holds");
    assert!(check_line.is_some(), "{details}");
    assert!(details.find("Outcomes") < check_line, "{details}");
    // Any other step has no such list.
    let root = mount_app_at("#scenario=basic-delivery&step=5").await;
    yew::scheduler::flush().await;
    assert!(!text_of(&root, ".region-details").contains("Outcomes"));
    // A run whose only mail came from a scripted client: no outcome, and why, rather than a
    // bare "none" beside a refusal.
    let root = mount_app_at("#scenario=smtp-smuggling&step=100000").await;
    yew::scheduler::flush().await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("none: no user agent sent a message in this run, and a scripted client's mail has no outcome"),
        "{details}"
    );
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_step_button_that_becomes_disabled_hands_the_focus_to_its_mirror() {
    let root = mount_app_at("#scenario=basic-delivery&step=10").await;
    yew::scheduler::flush().await;
    let focus_and_click = |title: &str| {
        let button = element(&root, &format!("button[title='{title}']"));
        button.focus().unwrap();
        button.click();
    };
    let focused_title = || {
        gloo::utils::document()
            .active_element()
            .and_then(|element| element.get_attribute("title"))
    };
    focus_and_click("To the end");
    yew::scheduler::flush().await;
    let (shown, total) = position(&root);
    assert_eq!(shown, total);
    assert_eq!(focused_title().as_deref(), Some("Back to the start"));
    // The keys still step from there, and the way back leaves the focus at the other end.
    focus_and_click("Back to the start");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 0);
    assert_eq!(focused_title().as_deref(), Some("To the end"));
    focus_and_click("Step forward");
    yew::scheduler::flush().await;
    focus_and_click("Step back");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 0);
    assert_eq!(focused_title().as_deref(), Some("Step forward"));
    // A button the user left for the page while it worked keeps nothing: reaching the end
    // later, by the keys, leaves the focus where the user put it.
    element(&root, "button[title='Step forward']")
        .blur()
        .unwrap();
    press_key("End");
    yew::scheduler::flush().await;
    let (shown, total) = position(&root);
    assert_eq!(shown, total);
    assert_eq!(focused_title(), None, "the focus stays on the page");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_link_within_one_column_goes_round_the_side_not_through_the_boxes() {
    // primary-mx-down: the backup MX passes the mail to the primary, both in one column.
    let root = mount_app_at("#scenario=primary-mx-down&step=0").await;
    yew::scheduler::flush().await;
    let mut found = false;
    for _ in 0..400 {
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
        let current = text_of(&root, ".line-current");
        if current.contains("mx2.receiver.test") && current.contains("connect to mx1") {
            found = true;
            break;
        }
    }
    assert!(found, "mx2 connects to mx1");
    let active = root
        .query_selector(".topology-link-active")
        .unwrap()
        .expect("the link is marked");
    assert_eq!(active.tag_name(), "polyline");
    let points = active.get_attribute("points").unwrap_or_default();
    assert_eq!(points.split(' ').count(), 4, "{points}");
    mount_app_at("#").await;
}

/// The topology diagram's accessible name.
fn diagram_name(root: &Element) -> String {
    element(root, "svg.topology")
        .get_attribute("aria-label")
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn the_hop_where_a_step_goes_wrong_is_drawn_as_trouble() {
    let root = mount_app_at("#scenario=primary-mx-down&step=0").await;
    yew::scheduler::flush().await;
    let active = |root: &Element| {
        let link = root
            .query_selector(".topology-link-active")
            .unwrap()
            .expect("the step's hop is marked");
        // An SVG element's className is not a string: its attribute is. A reply's
        // arrowhead is at the link's start, pointing back at the client.
        let marker = |end: &str| link.get_attribute(end).unwrap_or_default();
        let (start, end) = (marker("marker-start"), marker("marker-end"));
        assert!(
            start.is_empty() || end.is_empty(),
            "one arrowhead: {start} {end}"
        );
        (
            link.get_attribute("class").unwrap_or_default(),
            start + &end,
        )
    };
    let reply_drawn = |root: &Element| {
        let link = element(root, ".topology-link-active");
        link.get_attribute("marker-start").is_some()
    };
    let mut seen = Vec::new();
    for _ in 0..400 {
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
        let current = text_of(&root, ".line-current");
        if current.contains("S: 220 ") && seen.is_empty() {
            let (class, marker) = active(&root);
            assert!(
                !class.contains("trouble"),
                "a greeting is no trouble: {class}"
            );
            assert_eq!(marker, "url(#topology-arrow-active)");
            // The greeting goes from the server to the client, as its arrowhead and the
            // diagram's name say, before who talks to whom.
            assert!(
                reply_drawn(&root),
                "the arrowhead points back at the client"
            );
            let name = diagram_name(&root);
            assert!(
                name.starts_with(
                    "At this step: mail.sender.test answers alice@sender.test \
                     (SMTP :587). Who talks to whom: alice@sender.test connects to \
                     mail.sender.test (SMTP :587)"
                ),
                "{name}"
            );
            seen.push("greeting");
        }
        if current.contains("C: EHLO ") && seen == ["greeting"] {
            // A command goes the way the connection was opened.
            assert!(!reply_drawn(&root), "the arrowhead points at the server");
            let (_, marker) = active(&root);
            assert_eq!(marker, "url(#topology-arrow-active)");
            assert!(
                diagram_name(&root).starts_with(
                    "At this step: alice@sender.test connects to mail.sender.test (SMTP :587)."
                ),
                "{}",
                diagram_name(&root)
            );
            seen.push("command");
        }
        if current.contains("connection refused") {
            let (class, marker) = active(&root);
            assert!(class.contains("topology-trouble-temporary"), "{class}");
            assert_eq!(marker, "url(#topology-arrow-temporary)");
            // And that it fails there, which its colour shows (WCAG 1.4.1).
            let name = diagram_name(&root);
            assert!(
                name.starts_with(
                    "At this step: mail.sender.test connects to mx1.receiver.test \
                     (SMTP :25), which fails for now. Who talks to whom: "
                ),
                "{name}"
            );
            // The conversation's line and the details carry the diagram's colour.
            let line = element(&root, ".conversation-log .line-current");
            assert_eq!(line.get_attribute("aria-current").as_deref(), Some("step"));
            let line_class = line.class_name();
            assert!(
                line_class.contains("line-refusal line-temporary"),
                "{line_class}"
            );
            // A failed connection's line says so in its own words, and whether it is for
            // now or for good, which its bar's colour shows, in words to a screen reader.
            assert_eq!(
                text_of(&root, ".line-current.line-refusal .visually-hidden"),
                "Failed for now: "
            );
            let note = element(&root, ".region-details .step-note");
            let note_class = note.class_name();
            assert!(note_class.contains("explanation-temporary"), "{note_class}");
            seen.push("refused");
            break;
        }
    }
    assert_eq!(seen, ["greeting", "command", "refused"]);
    let root = mount_app_at("#scenario=unknown-user&step=56").await;
    yew::scheduler::flush().await;
    assert!(text_of(&root, ".conversation-log").contains("550 5.1.1"));
    // A refusal is told by its colour, and to a screen reader by words (WCAG 1.4.1).
    assert_eq!(
        text_of(&root, ".line-current.line-refusal .visually-hidden"),
        "Refused for good: "
    );
    let (class, marker) = active(&root);
    assert!(class.contains("topology-trouble-permanent"), "{class}");
    assert_eq!(marker, "url(#topology-arrow-permanent)");
    assert!(reply_drawn(&root), "the refusal goes back to the client");
    // A reply that refuses is told as the conversation tells it: the server refuses.
    let name = diagram_name(&root);
    assert!(
        name.starts_with(
            "At this step: mx.receiver.test answers mail.sender.test (SMTP :25), where \
             the server refuses for good."
        ),
        "{name}"
    );
    let root = mount_app_at("#scenario=greylisting").await;
    yew::scheduler::flush().await;
    let (_, steps) = position(&root);
    for _ in 0..steps {
        if text_of(&root, ".line-current.line-refusal").contains("S: 451 ") {
            break;
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    assert_eq!(
        text_of(&root, ".line-current.line-refusal .visually-hidden"),
        "Refused for now: "
    );
    // Failures the sending host finds itself are drawn as the replies are: a DNS answer
    // that is none, a resolution that found no host, a recipient's result.
    for (scenario, text, class, hop) in [
        (
            "dns-servfail-then-success",
            ": SERVFAIL",
            "line-refusal line-temporary",
            Some("topology-trouble-temporary"),
        ),
        (
            "unknown-domain",
            ": NXDOMAIN",
            "line-refusal line-permanent",
            Some("topology-trouble-permanent"),
        ),
        (
            "unknown-domain",
            "not found (5.1.2)",
            "line-refusal line-permanent",
            None,
        ),
        (
            "greylisting",
            "temporary failure: 451",
            "line-refusal line-temporary",
            None,
        ),
        (
            "greylisting",
            " retry at ",
            "line-refusal line-temporary",
            None,
        ),
    ] {
        let root = mount_app_at(&format!("#scenario={scenario}")).await;
        yew::scheduler::flush().await;
        step_to(&root, text).await;
        let line = element(&root, ".conversation-log .line-current");
        assert!(line.text_content().unwrap_or_default().contains(text));
        let line_class = line.class_name();
        assert!(
            line_class.contains(class),
            "{scenario}, {text}: {line_class}"
        );
        let note = element(&root, ".region-details .step-note").class_name();
        let colour = class.replace("line-refusal line-", "explanation-");
        assert!(note.contains(&colour), "{scenario}, {text}: {note}");
        let said = text_of(&root, ".region-details [aria-live='polite']");
        let words = if class.ends_with("temporary") {
            "Failed for now: "
        } else {
            "Failed for good: "
        };
        assert!(said.starts_with(words), "{scenario}, {text}: {said}");
        assert_eq!(
            text_of(&root, ".line-current.line-refusal .visually-hidden"),
            words,
            "{scenario}, {text}"
        );
        if let Some(hop) = hop {
            let (hop_class, _) = active(&root);
            assert!(hop_class.contains(hop), "{scenario}, {text}: {hop_class}");
            let name = diagram_name(&root);
            let fails = if hop.ends_with("temporary") {
                "mail.sender.test asks DNS, which fails for now."
            } else {
                "mail.sender.test asks DNS, which fails for good."
            };
            assert!(
                name.starts_with(&format!("At this step: {fails}")),
                "{scenario}, {text}: {name}"
            );
        }
    }
    // A failure at a party itself, on no hop, marks that party: a message over the server's
    // SIZE, which the client does not send; a mailbox over its quota, which the MDA finds.
    for (scenario, text, party) in [
        (
            "message-too-big",
            "permanent failure: 552 5.3.4",
            "mail.sender.test, where it fails for good.",
        ),
        (
            "over-quota-at-delivery",
            "MDA refused ",
            "mx.receiver.test, where it fails for good.",
        ),
    ] {
        let root = mount_app_at(&format!("#scenario={scenario}")).await;
        yew::scheduler::flush().await;
        step_to(&root, text).await;
        assert!(text_of(&root, ".line-current").contains(text), "{scenario}");
        let node = element(&root, ".topology-node-active");
        let class = node.get_attribute("class").unwrap_or_default();
        assert!(
            class.contains("topology-trouble-permanent"),
            "{scenario}: {class}"
        );
        let name = diagram_name(&root);
        assert!(
            name.starts_with(&format!("At this step: {party}")),
            "{scenario}: {name}"
        );
    }
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn links_round_a_column_run_apart_and_clear_of_a_readers_link() {
    // A backup MX under two MX hosts passes mail to both (the primary and one that is
    // switched off), and a reader fetches from the primary: two links round the right side
    // of one column, and one into the primary's right side from the next column.
    use smtp_lab::sim::map::{RunMap, Side};
    let node = server_at;
    let map = RunMap::from_parts(
        vec![
            node("mail.school.test", Side::Server, 0, 0),
            node("mx1.partner.test", Side::Server, 1, 0),
            node("old.partner.test", Side::Server, 1, 1),
            node("backup.partner.test", Side::Server, 1, 2),
            node("ua:penpals@partner.test", Side::Reader, 2, 0),
        ],
        &[
            (0, 1, "SMTP :25"),
            (0, 2, "SMTP :25"),
            (0, 3, "SMTP :25"),
            (3, 1, "SMTP :25"),
            (3, 2, "SMTP :25"),
            (4, 1, "POP3 :110"),
        ],
        Vec::new(),
    );
    let (rounds, texts, _) = draw_map(map).await;
    assert_eq!(rounds.len(), 2, "{rounds:?}");
    let (side_a, side_b) = (rounds[0][1].0, rounds[1][1].0);
    assert_ne!(
        side_a, side_b,
        "the two links run along one line: {rounds:?}"
    );
    // Neither leaves, nor arrives, where the other does.
    assert_ne!(rounds[0][0], rounds[1][0], "{rounds:?}");
    assert_ne!(rounds[0][3], rounds[1][3], "{rounds:?}");
    // The shorter, to old.partner.test, is the inner: the longer's way out along
    // backup.partner.test passes under where the shorter turns up, not across it.
    let (inner, outer) = if side_a < side_b {
        (&rounds[0], &rounds[1])
    } else {
        (&rounds[1], &rounds[0])
    };
    assert!(inner[3].1 > outer[3].1, "inner {inner:?}, outer {outer:?}");
    assert!(outer[0].1 > inner[0].1, "inner {inner:?}, outer {outer:?}");
    // The reader's link arrives at the middle of the primary's right side (the first row's
    // middle), where no round link ends.
    let middle = 62 + 52 / 2;
    for round in &rounds {
        assert!(
            round.iter().all(|&(_, y)| y != middle),
            "a round link meets the reader's at y={middle}: {round:?}"
        );
    }
    // The labels of the round links are beyond both lines, not run through by the outer.
    let outermost = side_a.max(side_b);
    let side_labels: Vec<i32> = texts
        .iter()
        .filter(|(x, _, words)| words == "SMTP :25" && *x > outermost - 100)
        .map(|(x, _, _)| *x)
        .collect();
    assert_eq!(side_labels.len(), 2, "{side_labels:?}");
    assert!(
        side_labels.iter().all(|&x| x > outermost),
        "{side_labels:?} vs {outermost}"
    );
}

/// A party of a diagram drawn for a test, at `column` and `row`.
fn server_at(
    name: &str,
    side: smtp_lab::sim::map::Side,
    column: usize,
    row: usize,
) -> smtp_lab::sim::map::MapNode {
    smtp_lab::sim::map::MapNode {
        name: name.to_string(),
        side,
        roles: vec!["MTA"],
        column,
        row,
    }
}

/// A link's drawn line, as its points.
type Polyline = Vec<(i32, i32)>;

/// Draws `map` alone and returns its round links' lines, its texts (x, y, words) and the
/// boxes' left edges by the name in them.
async fn draw_map(
    map: smtp_lab::sim::map::RunMap,
) -> (Vec<Polyline>, Vec<(i32, i32, String)>, Vec<(String, i32)>) {
    let document = gloo::utils::document();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let drawn = yew::Renderer::<smtp_lab::ui::Topology>::with_root_and_props(
        root.clone(),
        smtp_lab::ui::TopologyProps {
            map: Some(std::rc::Rc::new(map)),
            focus: None,
            trouble: None,
            trouble_reported: false,
            reply: false,
            one_column: false,
            large: false,
        },
    )
    .render();
    yew::scheduler::flush().await;
    let all = |selector: &str| -> Vec<Element> {
        let list = root.query_selector_all(selector).unwrap();
        (0..list.length())
            .filter_map(|index| list.item(index))
            .map(wasm_bindgen::JsCast::unchecked_into::<Element>)
            .collect()
    };
    let number = |element: &Element, name: &str| -> i32 {
        element.get_attribute(name).unwrap().parse().unwrap()
    };
    let lines = all("svg.topology polyline")
        .iter()
        .map(|line| {
            line.get_attribute("points")
                .unwrap()
                .split(' ')
                .map(|point| {
                    let (x, y) = point.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect();
    let texts = all("svg.topology text")
        .iter()
        .map(|text| {
            (
                number(text, "x"),
                number(text, "y"),
                text.text_content().unwrap_or_default(),
            )
        })
        .collect();
    let boxes = all("svg.topology g.topology-node")
        .iter()
        .filter_map(|node| {
            let name = node.query_selector("text").ok()??.text_content()?;
            let rect = node.query_selector("rect").ok()??;
            Some((name, number(&rect, "x")))
        })
        .collect();
    drawn.destroy();
    root.remove();
    (lines, texts, boxes)
}

/// Whether two lines of links round a column cross, or run along each other, other than
/// where they share an end.
fn cross(a: &Polyline, b: &Polyline) -> bool {
    let segments = |line: &Polyline| -> Vec<((i32, i32), (i32, i32))> {
        line.windows(2).map(|pair| (pair[0], pair[1])).collect()
    };
    let inside = |value: i32, from: i32, to: i32| from.min(to) < value && value < from.max(to);
    let overlap = |a1: i32, a2: i32, b1: i32, b2: i32| {
        a1.max(a2).min(b1.max(b2)) > a1.min(a2).max(b1.min(b2))
    };
    for (p1, p2) in segments(a) {
        for (q1, q2) in segments(b) {
            let (a_flat, b_flat) = (p1.1 == p2.1, q1.1 == q2.1);
            let crossing = match (a_flat, b_flat) {
                (true, false) => inside(q1.0, p1.0, p2.0) && inside(p1.1, q1.1, q2.1),
                (false, true) => inside(p1.0, q1.0, q2.0) && inside(q1.1, p1.1, p2.1),
                (true, true) => p1.1 == q1.1 && overlap(p1.0, p2.0, q1.0, q2.0),
                (false, false) => p1.0 == q1.0 && overlap(p1.1, p2.1, q1.1, q2.1),
            };
            if crossing {
                return true;
            }
        }
    }
    false
}

#[wasm_bindgen_test]
async fn links_round_a_column_never_meet_whichever_way_they_go() {
    use smtp_lab::sim::map::{RunMap, Side};
    let node = server_at;
    // Mail comes to mx1 from the sender's server, and its reader fetches it from the next
    // column; between the three MX hosts of one column, the links of each case go round.
    for (case, round) in [
        ("two backups into one primary", [(2, 1), (3, 1)]),
        ("each way between two", [(2, 3), (3, 2)]),
        (
            "one party sending down and receiving from below",
            [(1, 2), (3, 1)],
        ),
        ("a party's link to itself", [(2, 2), (3, 1)]),
    ] {
        let mut links = vec![(0, 1, "SMTP :25"), (4, 1, "POP3 :110")];
        links.extend(round.map(|(from, to)| (from, to, "SMTP :25")));
        let map = RunMap::from_parts(
            vec![
                node("mail.sender.test", Side::Server, 0, 0),
                node("mx1.receiver.test", Side::Server, 1, 0),
                node("mx2.receiver.test", Side::Server, 1, 1),
                node("mx3.receiver.test", Side::Server, 1, 2),
                node("ua:bob@receiver.test", Side::Reader, 2, 0),
            ],
            &links,
            Vec::new(),
        );
        let (rounds, texts, boxes) = draw_map(map).await;
        assert!(rounds.len() >= 2, "{case}: {rounds:?}");
        for (i, a) in rounds.iter().enumerate() {
            for b in &rounds[i + 1..] {
                assert!(!cross(a, b), "{case}: {a:?} and {b:?} meet");
                assert!(
                    a[0] != b[0] && a[0] != b[3] && a[3] != b[0] && a[3] != b[3],
                    "{case}: {a:?} and {b:?} share an end"
                );
            }
        }
        // The reader's link arrives at the middle of the primary's side, where no round
        // link ends.
        let middle = rounds
            .iter()
            .flat_map(|line| [line[0], line[3]])
            .filter(|&(_, y)| y == 62 + 52 / 2)
            .count();
        assert_eq!(middle, 0, "{case}: {rounds:?}");
        // Their labels are a line apart at least, and end before the reader's box.
        let mut labels: Vec<&(i32, i32, String)> = texts
            .iter()
            .filter(|(x, _, words)| words == "SMTP :25" && *x > 150 + 230)
            .collect();
        labels.sort_by_key(|(_, y, _)| *y);
        assert_eq!(labels.len(), rounds.len(), "{case}: {texts:?}");
        for pair in labels.windows(2) {
            assert!(pair[1].1 - pair[0].1 >= 13, "{case}: {labels:?}");
        }
        let reader = boxes
            .iter()
            .find(|(name, _)| name == "bob@receiver.test")
            .map(|(_, x)| *x)
            .expect("the reader's box");
        for (x, _, words) in &labels {
            let end = x + 7 * words.chars().count() as i32;
            assert!(
                end < reader,
                "{case}: a label ends at {end}, the reader starts at {reader}"
            );
        }
    }
}

#[wasm_bindgen_test]
async fn a_detour_is_labelled_by_the_party_it_leads_to() {
    // A reader right of every server who reads on the sender's server: the link goes round
    // under mx.receiver.test to mail.sender.test.
    use smtp_lab::sim::map::{MapNode, RunMap, Side};
    let node = |name: &str, side, column| MapNode {
        name: name.to_string(),
        side,
        roles: vec!["UA"],
        column,
        row: 0,
    };
    let map = RunMap::from_parts(
        vec![
            node("ua:alice@sender.test", Side::Sender, 0),
            node("mail.sender.test", Side::Server, 1),
            node("mx.receiver.test", Side::Server, 2),
            node("ua:carol@sender.test", Side::Reader, 3),
        ],
        &[(0, 1, "SMTP :587"), (1, 2, "SMTP :25"), (3, 1, "POP3 :110")],
        Vec::new(),
    );
    let (lines, texts, _) = draw_map(map).await;
    assert!(!lines.is_empty(), "the link goes round");
    let x_of = |wanted: &str| {
        texts
            .iter()
            .find(|(_, _, words)| words == wanted)
            .map(|(x, _, _)| *x)
            .unwrap_or_else(|| panic!("no label {wanted}"))
    };
    let label = x_of("POP3 :110");
    let (sender, receiver) = (x_of("mail.sender.test"), x_of("mx.receiver.test"));
    assert!(
        (label - sender).abs() < (label - receiver).abs(),
        "the POP3 label at x={label} is nearer mx.receiver.test (x={receiver}) than \
         mail.sender.test (x={sender})"
    );
}

#[wasm_bindgen_test]
async fn a_screen_reader_hears_each_step_but_not_while_playing() {
    // unknown-user, the refusal at RCPT: its line and why.
    let root = mount_app_at("#scenario=unknown-user&step=56").await;
    yew::scheduler::flush().await;
    let live = element(&root, ".region-details [aria-live='polite']");
    let said = live.text_content().unwrap_or_default();
    // Said in words, as its colour shows it (WCAG 1.4.1), before the refusal, not before
    // the replies that accept, which come first in the step.
    assert!(
        said.contains("Refused for good: #2 S: 550 5.1.1 User unknown"),
        "{said}"
    );
    // Opened by a link at a step: which scenario first; then who writes the lines, as the
    // conversation's column says.
    let said = said
        .strip_prefix("Unknown user refused at RCPT. ")
        .unwrap_or_else(|| panic!("the title first: {said}"))
        .to_string();
    assert!(said.starts_with("mx.receiver.test: #2 S: 250 "), "{said}");
    assert!(
        said.contains(
            "550 5.1.1 in answer to RCPT TO:<nobody@receiver.test>: receiver.test is a local \
             domain"
        ),
        "{said}"
    );
    // Said once: emptied a while later, so that a reader moving through the page does not
    // find it again before the details that show it.
    sleep(smtp_lab::ui::ANNOUNCEMENT_KEPT_MS as i32 + 100).await;
    yew::scheduler::flush().await;
    assert_eq!(
        live.text_content().as_deref(),
        Some(""),
        "emptied once said"
    );
    click(&root, "button[title='Step back']");
    yew::scheduler::flush().await;
    let before = live.text_content().unwrap_or_default();
    assert!(
        !before.is_empty() && before != said,
        "the step before is said: {before}"
    );
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(
        live.text_content().unwrap_or_default(),
        said,
        "said again on coming back"
    );
    click(&root, ".controls button.primary");
    yew::scheduler::flush().await;
    assert_eq!(
        live.text_content().as_deref(),
        Some(""),
        "quiet while playing"
    );
    let position = element(&root, ".controls-position");
    assert_eq!(position.get_attribute("aria-live").as_deref(), Some("off"));
    click(&root, ".controls button.primary");
    yew::scheduler::flush().await;
    assert_eq!(
        position.get_attribute("aria-live").as_deref(),
        Some("polite")
    );
    // A step whose refusals come after its first lines: they are read out too.
    let root = mount_app_at("#scenario=too-many-recipients&step=56").await;
    yew::scheduler::flush().await;
    let said = element(&root, ".region-details [aria-live='polite']")
        .text_content()
        .unwrap_or_default();
    assert!(said.contains("Refused for now: #2 S: 452 4.5.3"), "{said}");
    // Lines left out of what is said are counted, as the details show them.
    let shown_lines = text_of(&root, ".details-step-lines");
    let count = shown_lines
        .split("... ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("the step's lines leave some out: {shown_lines}"));
    assert!(said.contains(&format!("... {count} more line")), "{said}");
    // The same explanation of several replies is shown once, with how many it explains.
    let headings = root
        .query_selector_all(".region-details .explanation .details-heading")
        .unwrap();
    let headings: Vec<String> = (0..headings.length())
        .filter_map(|index| headings.item(index)?.text_content())
        .collect();
    let mut distinct = headings.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), headings.len(), "{headings:?}");
    assert!(
        headings[0].starts_with("452 4.5.3, ") && headings[0].ends_with(" replies"),
        "{headings:?}"
    );
    // Shown refusals first, out of the order they came, each names the commands it answers,
    // and what is said names the first.
    let answers = text_of(&root, ".region-details .explanation .explanation-answers");
    assert!(answers.starts_with("In answer to: RCPT TO:<"), "{answers}");
    let replies = headings[0]
        .trim_start_matches("452 4.5.3, ")
        .trim_end_matches(" replies");
    assert_eq!(
        answers.matches("RCPT TO:<").count().to_string(),
        replies,
        "{answers}"
    );
    assert!(
        said.contains(
            "452 4.5.3, 2 replies, in answer to RCPT TO:<user4@receiver.test>, RCPT \
             TO:<user5@receiver.test>: This transaction"
        ),
        "{said}"
    );
    mount_app_at("#").await;
}

/// An explanation of many pipelined replies names the first commands they answer, and counts
/// the rest.
#[wasm_bindgen_test]
async fn an_explanation_of_many_pipelined_replies_names_the_first_commands_and_counts_the_rest() {
    // Eight recipients at a server that takes three in a transaction: five 452s at once.
    let to: Vec<String> = (1..=8).map(|n| format!("user{n}@receiver.test")).collect();
    let root = mount_app_at(&format!(
        "#scenario=too-many-recipients&from=alice@sender.test&to={}&step=0",
        to.join(",")
    ))
    .await;
    yew::scheduler::flush().await;
    let (_, steps) = position(&root);
    let mut answers = None;
    let mut seen = Vec::new();
    for _ in 0..steps {
        let heading = text_of(&root, ".region-details .explanation .details-heading");
        seen.push(heading.clone());
        if heading == "452 4.5.3, 5 replies" {
            answers = Some(text_of(
                &root,
                ".region-details .explanation .explanation-answers",
            ));
            break;
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    let answers = answers.unwrap_or_else(|| panic!("a step of five 452s: {steps} {seen:?}"));
    assert_eq!(
        answers,
        "In answer to: RCPT TO:<user4@receiver.test>, RCPT TO:<user5@receiver.test>, \
         RCPT TO:<user6@receiver.test> and 2 more"
    );
    mount_app_at("#").await;
}

/// Replies to pipelined BDAT chunks come after the last chunk went: each names its chunk, in
/// the details and in what is said.
#[wasm_bindgen_test]
async fn a_reply_to_a_pipelined_chunk_names_its_chunk() {
    let root = mount_app_at("#scenario=chunking").await;
    yew::scheduler::flush().await;
    let live = element(&root, ".region-details [aria-live='polite']");
    let (_, steps) = position(&root);
    let mut told = Vec::new();
    for _ in 0..steps {
        let answers = text_of(&root, ".region-details .explanation .explanation-answers");
        if answers.contains("(chunk ") {
            told.push(answers);
            let said = live.text_content().unwrap_or_default();
            let chunk = told.len();
            assert!(said.contains(&format!(" (chunk {chunk}): ")), "{said}");
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    assert_eq!(
        told,
        [
            "In answer to: BDAT 200 (chunk 1)",
            "In answer to: BDAT 200 (chunk 2)",
            "In answer to: BDAT 134 LAST (chunk 3)"
        ]
    );
    mount_app_at("#").await;
}

/// A step that carries a whole message shows it field by field and part by part: at each
/// hop of a message with attachments, the fields the servers added are marked, and its parts
/// listed; the outline, once opened, stays open from step to step.
#[wasm_bindgen_test]
async fn a_message_with_attachments_is_outlined_at_each_hop_with_what_servers_added() {
    let root = mount_app_at("#scenario=attachments").await;
    yew::scheduler::flush().await;
    let (_, steps) = position(&root);
    let mut summaries = Vec::new();
    for _ in 0..steps {
        if root
            .query_selector(".region-details details.outline")
            .unwrap()
            .is_some()
        {
            if summaries.is_empty() {
                // Opened once, it stays open at the next message's step, and so does what
                // its fields are for.
                click(&root, ".region-details details.outline summary");
                yew::scheduler::flush().await;
                sleep(50).await;
                click(&root, ".region-details .outline-glossary summary");
                yew::scheduler::flush().await;
                sleep(50).await;
            }
            let outline = element(&root, ".region-details details.outline");
            assert!(outline.has_attribute("open"), "{summaries:?}");
            let glossary = element(&root, ".region-details .outline-glossary");
            assert!(glossary.has_attribute("open"), "{summaries:?}");
            let marked = root
                .query_selector_all(".region-details .outline-added .outline-name")
                .unwrap();
            let marked: Vec<String> = (0..marked.length())
                .filter_map(|i| marked.item(i)?.text_content())
                .collect();
            let parts = text_of(&root, ".region-details .outline-parts");
            assert!(
                parts.contains("image/png, attachment \"beach.png\", base64, "),
                "{parts}"
            );
            let about = text_of(&root, ".region-details .outline-about");
            let expected_about = match summaries.len() {
                0 => "Header fields, top to bottom, as this message's sender sent it",
                _ => "Header fields, top to bottom; those marked were added on the way",
            };
            assert!(about.starts_with(expected_about), "{about}");
            // The MDA's copy crosses no wire: its sizes are told as the mailbox's.
            let outline_text = text_of(&root, ".region-details details.outline");
            assert_eq!(
                outline_text.contains("As its mailbox holds it: this copy crosses no wire"),
                summaries.len() == 2,
                "{outline_text}"
            );
            if summaries.len() == 2 {
                // Its size is the one the MDA's line gives ("... as m1.1 (7796 octets)").
                let lines = text_of(&root, ".details-step-lines");
                let stored = lines
                    .rsplit_once(" (")
                    .and_then(|(_, size)| size.split_once(' '))
                    .map(|(octets, _)| octets.to_string())
                    .expect("the MDA's line gives the size");
                let size = format!("The message is {stored} octets; sizes here are its own.");
                assert!(outline_text.contains(&size), "{size} {outline_text}");
                // Home and End scroll the outline's box that has the focus, not the run.
                let before = position(&root);
                let body = element(&root, ".region-details .outline-body");
                assert!(!press_key_on(&body, "End"), "End is the box's");
                assert!(!press_key_on(&body, "Home"), "Home is the box's");
                yew::scheduler::flush().await;
                assert_eq!(position(&root), before);
            }
            // The rules at work, for this message carried this way.
            let rfcs = text_of(&root, ".region-details details.outline .explanation-rfc");
            let mime = "RFC 2045 5, 6; RFC 2046 5.1; RFC 2183 2";
            let expected_rfcs = match summaries.len() {
                0 | 1 => format!("RFC 5322 2.2, 3.6; RFC 5321 4.4, 4.5.2; {mime}"),
                2 => format!("RFC 5322 2.2, 3.6; RFC 5321 4.4; {mime}; RFC 9228"),
                _ => format!(
                    "RFC 5322 2.2, 3.6; RFC 5321 4.4, 4.5.2; RFC 1939 3, 5; {mime}; RFC 9228"
                ),
            };
            assert_eq!(rfcs, expected_rfcs);
            // The path its Received: fields give, the first hop first.
            let path = texts_of(&root, ".region-details .outline-path li");
            assert_eq!(path.len(), [0, 1, 2, 2][summaries.len()], "{path:?}");
            let date = "Tue, 1 Sep 2026 08:00:00 +0000";
            if let Some(first) = path.first() {
                assert_eq!(
                    first,
                    &format!(
                        "client.sender.test ([198.51.100.1]) to mail.sender.test, with ESMTPA \
                         (EHLO, then AUTH), {date}"
                    )
                );
            }
            if let Some(second) = path.get(1) {
                assert_eq!(
                    second,
                    &format!(
                        "mail.sender.test ([192.0.2.10]) to mx.receiver.test, with ESMTP (EHLO: \
                         SMTP with extensions), {date}"
                    )
                );
            }
            // What each field is for, each name once, in the order the fields come.
            let glossary = texts_of(&root, ".region-details .outline-glossary dt");
            let first = ["Return-Path:", "Received:", "Delivered-To:", "Date:"];
            match summaries.len() {
                0 => assert_eq!(glossary[0], "Date:", "{glossary:?}"),
                1 => assert_eq!(glossary[..2], ["Received:", "Date:"], "{glossary:?}"),
                _ => assert_eq!(glossary[..4], first, "{glossary:?}"),
            }
            // 7 names as sent, Received once relayed, Return-Path and Delivered-To stored.
            assert_eq!(
                glossary.len(),
                [7, 8, 10, 10][summaries.len()],
                "{glossary:?}"
            );
            let first_purpose = text_of(&root, ".region-details .outline-glossary dd");
            assert_eq!(
                first_purpose.contains("where bounces go"),
                summaries.len() >= 2,
                "{first_purpose}"
            );
            summaries.push((
                text_of(&root, ".region-details details.outline summary"),
                marked,
            ));
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    let body = "body multipart/mixed, 4 parts";
    let delivered: Vec<String> = ["Return-Path:", "Received:", "Delivered-To:", "Received:"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        summaries,
        [
            (format!("The message: 7 header fields, {body}"), vec![]),
            (
                format!("The message: 8 header fields (1 added on the way), {body}"),
                vec!["Received:".to_string()]
            ),
            (
                format!("The message as stored: 11 header fields (4 added on the way), {body}"),
                delivered.clone()
            ),
            (
                format!("The message: 11 header fields (4 added on the way), {body}"),
                delivered
            ),
        ]
    );
    mount_app_at("#").await;
}

/// A message sent in one BDAT chunk: the reply to it says so rather than numbering it, and
/// the outline at it says the message came in one chunk.
#[wasm_bindgen_test]
async fn a_message_sent_in_one_chunk_is_told_as_its_only_chunk() {
    let root = mount_app_at("#").await;
    yew::scheduler::flush().await;
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES
        .iter()
        .find(|(name, _)| *name == "chunking.json")
        .expect("the chunking scenario");
    let mut world: serde_json::Value = serde_json::from_str(text).unwrap();
    let hosts = world["hosts"].as_array_mut().expect("hosts");
    let sender = hosts
        .iter_mut()
        .find(|host| host["client_chunk_octets"].is_number())
        .expect("the host that sends in chunks");
    sender["client_chunk_octets"] = serde_json::json!(100_000);
    choose_file(&root, "one-chunk.json", world.to_string().as_bytes());
    until("the file's scenario is shown", || {
        text_of(&root, ".region-details").contains("From your file one-chunk.json.")
    })
    .await;
    let live = element(&root, ".region-details [aria-live='polite']");
    let (_, steps) = position(&root);
    let (mut told, mut outlined) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
        let answers = text_of(&root, ".region-details .explanation .explanation-answers");
        if answers.contains("BDAT") {
            let said = live.text_content().unwrap_or_default();
            assert!(said.contains("(the message's only chunk): "), "{said}");
            told.push(answers);
        }
        if root
            .query_selector(".region-details details.outline")
            .unwrap()
            .is_some()
        {
            let summary = text_of(&root, ".region-details details.outline summary");
            if summary.starts_with("The message, in one BDAT chunk: ") {
                let outline = text_of(&root, ".region-details details.outline");
                assert!(outline.contains("the message's only one"), "{outline}");
                assert!(!outline.contains("the chunks before it"), "{outline}");
            }
            outlined.push(summary);
        }
    }
    assert_eq!(
        told,
        ["In answer to: BDAT 534 LAST (the message's only chunk)"]
    );
    assert!(
        outlined
            .iter()
            .any(|summary| summary.starts_with("The message, in one BDAT chunk: ")),
        "{outlined:?}"
    );
    mount_app_at("#").await;
}

/// A message sent in BDAT chunks is outlined whole at its last chunk, said to be put together
/// from them, as the same message sent with DATA is at its data.
#[wasm_bindgen_test]
async fn a_message_sent_in_chunks_is_outlined_at_its_last_chunk() {
    let root = mount_app_at("#scenario=chunking").await;
    yew::scheduler::flush().await;
    let (_, steps) = position(&root);
    let mut outlined = Vec::new();
    for _ in 0..steps {
        if root
            .query_selector(".region-details details.outline")
            .unwrap()
            .is_some()
        {
            outlined.push((
                text_of(&root, ".region-details details.outline summary"),
                text_of(&root, ".region-details details.outline"),
            ));
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    // Submitted, relayed in chunks and stored, relayed with DATA and stored, retrieved.
    assert_eq!(outlined.len(), 6, "{outlined:#?}");
    let (chunked, chunked_text) = &outlined[1];
    let (with_data, data_text) = &outlined[3];
    assert!(with_data.contains("(1 added on the way)"), "{with_data}");
    assert_eq!(
        chunked,
        &with_data.replacen("The message:", "The message, from its 3 BDAT chunks:", 1)
    );
    assert!(
        chunked_text.contains("The bytes as sent are this step's chunk only"),
        "{chunked_text}"
    );
    assert!(chunked_text.contains("RFC 3030 2"), "{chunked_text}");
    assert!(!data_text.contains("RFC 3030"), "{data_text}");
    mount_app_at("#").await;
}

/// A POP3 answer to TOP is outlined as what it holds: the message's header, marked with what
/// the servers added, and as many body lines as asked for, with no parts listed of a body
/// cut short.
#[wasm_bindgen_test]
async fn a_top_answer_is_outlined_as_the_header_and_the_lines_it_holds() {
    let root = mount_app_at("#scenario=pop3-commands").await;
    yew::scheduler::flush().await;
    let (_, steps) = position(&root);
    let mut tops = Vec::new();
    for _ in 0..steps {
        let summary = root
            .query_selector(".region-details details.outline summary")
            .unwrap()
            .map(|summary| summary.text_content().unwrap_or_default());
        if let Some(summary) = summary.filter(|summary| summary.contains("TOP")) {
            let parts = root
                .query_selector_all(".region-details .outline-parts li")
                .unwrap()
                .length();
            tops.push((
                summary,
                text_of(&root, ".region-details details.outline"),
                parts,
            ));
        }
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
    }
    assert_eq!(tops.len(), 2, "{tops:#?}");
    let (header_only, header_only_text, _) = &tops[0];
    assert!(
        header_only.starts_with("The message's header, as TOP sent it: ")
            && header_only.contains("(4 added on the way)"),
        "{header_only}"
    );
    assert!(
        header_only_text.contains("its header and none of its body (RFC 1939 7). "),
        "{header_only_text}"
    );
    let (preview, preview_text, parts) = &tops[1];
    assert!(
        preview
            .starts_with("The message's header and up to 3 lines of its body, as TOP sent them: "),
        "{preview}"
    );
    assert!(
        preview_text
            .contains("The body may go on past these lines, so its MIME parts are not listed"),
        "{preview_text}"
    );
    assert!(preview_text.contains("RFC 1939 3, 7"), "{preview_text}");
    assert_eq!(*parts, 0);
    mount_app_at("#").await;
}

/// Stepping through a whole run, a screen reader hears something new at every step (two
/// steps alike are said again), never the sentence every state's note ends with, and at the
/// end that the run is over and where the mail went.
#[wasm_bindgen_test]
async fn a_screen_reader_hears_every_step_of_a_run_and_its_end() {
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    let live = element(&root, ".region-details [aria-live='polite']");
    let mut said_before = String::new();
    let mut steps = 0;
    let mut state_notes_shown = 0;
    while root
        .query_selector("button[title='Step forward']:not([disabled])")
        .unwrap()
        .is_some()
    {
        click(&root, "button[title='Step forward']");
        yew::scheduler::flush().await;
        steps += 1;
        let right_after = live.text_content().unwrap_or_default();
        let said = if right_after.is_empty() {
            // The same words as the step before, taken out a moment to be said again.
            sleep(smtp_lab::ui::SAID_AGAIN_AFTER_MS as i32 + 100).await;
            yew::scheduler::flush().await;
            live.text_content().unwrap_or_default()
        } else {
            right_after.clone()
        };
        assert!(
            right_after.is_empty() || said != said_before,
            "step {steps} is not said again: {said}"
        );
        assert!(!said.trim().is_empty(), "step {steps} says nothing");
        assert!(
            !said.contains("Each side of a session is a state machine"),
            "step {steps}: {said}"
        );
        if text_of(&root, ".region-details").contains("Each side of a session is a state machine") {
            state_notes_shown += 1;
        }
        said_before = said;
    }
    assert!(
        steps > 100 && state_notes_shown > 20,
        "{steps} steps, {state_notes_shown} states"
    );
    assert!(
        said_before.starts_with(
            "End of the run. m1 <bob@receiver.test>: delivered to bob@receiver.test on \
             mx.receiver.test. "
        ),
        "{said_before}"
    );
    mount_app_at("#").await;
}

/// A failure key pressed again where there is no failure that way says so again.
#[wasm_bindgen_test]
async fn a_failure_key_pressed_again_where_there_is_none_says_so_again() {
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    let status = || text_of(&root, ".region-details [role='status']");
    assert!(press_shifted_key("ArrowRight"));
    yew::scheduler::flush().await;
    assert_eq!(status(), "Nothing fails in this run.");
    // Pressed again, the same sentence is taken out of its live region a moment, and put
    // back: a screen reader says a live region when its content changes.
    for _ in 0..2 {
        assert!(press_shifted_key("ArrowRight"));
        yew::scheduler::flush().await;
        assert_eq!(status(), "");
        sleep(smtp_lab::ui::SAID_AGAIN_AFTER_MS as i32 + 100).await;
        yew::scheduler::flush().await;
        assert_eq!(status(), "Nothing fails in this run.");
    }
    mount_app_at("#").await;
}

/// A file of `contents` named `name`, as the browser hands one over from a file dialog or a
/// drop.
fn file_of(name: &str, contents: &[u8]) -> web_sys::DataTransfer {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(contents));
    let file = web_sys::File::new_with_u8_array_sequence(&parts, name).unwrap();
    let transfer = web_sys::DataTransfer::new().unwrap();
    transfer.items().add_with_file(&file).unwrap();
    transfer
}

/// Chooses a file in the picker's file dialog, as a user would: the hidden input gets it and
/// says `change`.
fn choose_file(root: &Element, name: &str, contents: &[u8]) {
    let input: web_sys::HtmlInputElement =
        wasm_bindgen::JsCast::unchecked_into(element(root, "input[type=file]"));
    input.set_files(file_of(name, contents).files().as_ref());
    input
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
}

/// Drops a file on the page, as one dragged from a file manager.
fn drop_file(name: &str, contents: &[u8]) {
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(&file_of(name, contents)));
    let drop = web_sys::DragEvent::new_with_event_init_dict("drop", &init).unwrap();
    let handled = !gloo::utils::document()
        .body()
        .unwrap()
        .dispatch_event(&drop)
        .unwrap();
    assert!(handled, "the page takes the dropped file, not the browser");
}

/// Waits, a few seconds at most, until `done` holds: a file is read in the background.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        yew::scheduler::flush().await;
        if done() {
            return;
        }
        sleep(20).await;
    }
    panic!("never: {what}");
}

/// The picker's entries, as their values and texts, and the value chosen.
fn picker(root: &Element) -> (Vec<(String, String)>, String) {
    let select: web_sys::HtmlSelectElement =
        wasm_bindgen::JsCast::unchecked_into(element(root, "#scenario-select"));
    let options = select.options();
    let entries = (0..options.length())
        .filter_map(|index| options.item(index))
        .map(|option| {
            let option: web_sys::HtmlOptionElement = wasm_bindgen::JsCast::unchecked_into(option);
            (option.value(), option.text())
        })
        .collect();
    (entries, select.value())
}

/// A built-in scenario's file with another title: a teacher's copy of it, edited.
fn own_scenario_file() -> Vec<u8> {
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES[0];
    let mut scenario: serde_json::Value = serde_json::from_str(text).unwrap();
    scenario["title"] = "Our class scenario".into();
    serde_json::to_vec_pretty(&scenario).unwrap()
}

/// The scenario of [`own_scenario_file`], its message sent `copies` times.
fn own_scenario_sending(copies: usize) -> serde_json::Value {
    let mut world: serde_json::Value = serde_json::from_slice(&own_scenario_file()).expect("JSON");
    let message = world["messages"][0].clone();
    world["messages"] = serde_json::json!(vec![message; copies]);
    world
}

/// Waits until the scenario file `name` is said to be running.
async fn until_said_running(root: &Element, name: &str) {
    let sentence = format!("Running the scenario of {name}");
    until("the file is said to be running", || {
        text_of(root, ".details-notice").starts_with(&sentence)
    })
    .await;
}

/// A large scenario file is said to be running before its run holds the page, and the
/// sentence goes once it is shown.
#[wasm_bindgen_test]
async fn a_large_scenario_file_is_said_to_be_running_before_it_runs() {
    let root = mount_app_at("#").await;
    yew::scheduler::flush().await;
    // Large by its white space, which JSON allows anywhere between values.
    let mut contents = own_scenario_file();
    contents.extend(std::iter::repeat_n(b' ', smtp_lab::ui::LARGE_FILE_OCTETS));
    // Something else shown meanwhile (a link followed) is not replaced by the file after all.
    choose_file(&root, "large.json", &contents);
    until_said_running(&root, "large.json").await;
    follow_link("#scenario=null-mx&step=2").await;
    sleep(500).await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 2);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    assert!(!text_of(&root, ".region-details").contains("large.json"));
    choose_file(&root, "large.json", &contents);
    until_said_running(&root, "large.json").await;
    until("the file's scenario is shown", || {
        text_of(&root, ".region-details").contains("From your file large.json.")
    })
    .await;
    assert!(!text_of(&root, ".region-details").contains("Running the scenario"));
    // A small file runs at once, unannounced.
    choose_file(&root, "small.json", &own_scenario_file());
    until("the small file's scenario is shown", || {
        let details = text_of(&root, ".region-details");
        assert!(!details.contains("Running the scenario"), "{details}");
        details.contains("From your file small.json.")
    })
    .await;
    mount_app_at("#").await;
}

/// A large scenario file runs a slice at a time: the page says how far it has got, the
/// scenario shown before still steps meanwhile, and the file's run, once shown, is the one
/// made at once. Something else chosen meanwhile stops it.
#[wasm_bindgen_test]
async fn a_large_scenario_file_runs_in_slices_saying_how_far_it_has_got() {
    let root = mount_app_at("#scenario=basic-delivery&step=3").await;
    yew::scheduler::flush().await;
    let world = own_scenario_sending(300);
    let mut contents = serde_json::to_vec(&world).unwrap();
    contents.extend(std::iter::repeat_n(b' ', smtp_lab::ui::LARGE_FILE_OCTETS));
    let progress = || {
        let shown = element(&root, ".details-progress");
        (!shown.hidden()).then(|| shown.text_content().unwrap_or_default())
    };
    // Given up for a link followed meanwhile.
    choose_file(&root, "big.json", &contents);
    until("the run says how far it has got", || progress().is_some()).await;
    follow_link("#scenario=null-mx&step=2").await;
    sleep(1000).await;
    yew::scheduler::flush().await;
    assert_eq!(progress(), None);
    assert!(text_of(&root, "#scenario-select option:checked").contains("null MX"));
    assert!(!text_of(&root, ".region-details").contains("big.json"));
    // Given up for another file chosen once it was said to be running: the other one shows.
    choose_file(&root, "big.json", &contents);
    until_said_running(&root, "big.json").await;
    choose_file(&root, "small.json", &own_scenario_file());
    until("the other file's scenario is shown", || {
        text_of(&root, ".region-details").contains("From your file small.json.")
    })
    .await;
    sleep(1000).await;
    yew::scheduler::flush().await;
    assert!(text_of(&root, ".region-details").contains("From your file small.json."));
    assert_eq!(progress(), None);
    assert_eq!(text_of(&root, ".details-notice"), "");
    // Given up for a message written in the world shown, whose dialog it would otherwise
    // change under it.
    choose_file(&root, "big.json", &contents);
    until("the run says how far it has got", || progress().is_some()).await;
    choose_in_picker(&root, "write-message");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert_eq!(progress(), None);
    assert_eq!(text_of(&root, ".details-notice"), "");
    sleep(1000).await;
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert!(text_of(&root, ".region-details").contains("From your file small.json."));
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    follow_link("#scenario=basic-delivery&step=3").await;
    // Run to its end.
    let run = Run {
        steps_at_once: steps_at_once(&contents),
        running: "Running the scenario of big.json",
        shown: "From your file big.json.",
        picked: None,
    };
    runs_in_slices_to_its_end(&root, run, || choose_file(&root, "big.json", &contents)).await;
    mount_app_at("#").await;
}

/// How many steps the run of the scenario file holding `contents` has, made at once.
fn steps_at_once(contents: &[u8]) -> usize {
    let scenario = smtp_lab::sim::Scenario::from_json(std::str::from_utf8(contents).unwrap())
        .expect("a valid scenario");
    smtp_lab::sim::preparing::Prepared::of(scenario).steps.len()
}

/// A run made a slice at a time, as the page shows it: how many steps it has, made at once;
/// what the page says while it runs; what the details say once it is shown; and the picker's
/// entry chosen while it runs (none: the picker stays on what is shown).
#[derive(Clone, Copy)]
struct Run {
    steps_at_once: usize,
    running: &'static str,
    shown: &'static str,
    picked: Option<&'static str>,
}

/// Starts `run`, one whose run outlasts a slice, and checks that it is said to be running and
/// how far it has got, that the scenario shown before answers the player meanwhile, and that
/// the run shown at its end is the one made at once.
async fn runs_in_slices_to_its_end(root: &Element, run: Run, start: impl FnOnce()) {
    let progress = || {
        let shown = element(root, ".details-progress");
        (!shown.hidden()).then(|| shown.text_content().unwrap_or_default())
    };
    let picked = run.picked.map_or_else(|| picker(root).1, str::to_string);
    start();
    let mut said = Vec::new();
    let mut stepped = false;
    for _ in 0..3000 {
        yew::scheduler::flush().await;
        if text_of(root, ".region-details").contains(run.shown) {
            break;
        }
        if let Some(words) = progress() {
            if said.last() != Some(&words) {
                said.push(words);
            }
            // The scenario shown before answers the player meanwhile.
            if !stepped {
                let before = position(root).0;
                assert!(press_key("ArrowRight"));
                yew::scheduler::flush().await;
                assert_eq!(position(root).0, before + 1);
                assert!(text_of(root, ".details-notice").starts_with(run.running));
                assert_eq!(picker(root).1, picked);
                stepped = true;
            }
        }
        sleep(20).await;
    }
    assert!(stepped, "{said:?}");
    // Said at each stage, in the run's order (a stage may be over within a slice: the first
    // too, once the page's code is warm), and a while after it was said.
    let stages = [
        "Running: ",
        "Cutting the run into steps: ",
        "Making ready to jump to any step: ",
    ];
    let stages_said: Vec<Option<usize>> = said
        .iter()
        .map(|words| stages.iter().position(|stage| words.starts_with(stage)))
        .collect();
    assert!(stages_said.iter().all(Option::is_some), "{said:?}");
    assert!(stages_said.is_sorted(), "{said:?}");
    assert_eq!(progress(), None);
    assert_eq!(position(root), (0, run.steps_at_once));
    assert_eq!(text_of(root, ".details-notice"), "");
}

/// A small scenario file may still make a long run: a server down for good, tried every
/// second for hours. It runs a slice at a time as a large one does, said to be running once
/// it outlasts a slice, rather than holding the page until it is over; and so does a message
/// written in its world.
#[wasm_bindgen_test]
async fn a_small_scenario_file_with_a_long_run_runs_in_slices() {
    let root = mount_app_at("#scenario=basic-delivery&step=3").await;
    yew::scheduler::flush().await;
    let (contents, file_run) = open_storm(&root).await;
    // Its message, written again in its world as the dialog opens on it.
    let world = smtp_lab::sim::Scenario::from_json(std::str::from_utf8(&contents).unwrap())
        .expect("a valid scenario");
    let written = smtp_lab::sim::draft::Draft::of(&world)
        .sent_in(&world)
        .expect("its message is sent");
    let message_run = Run {
        steps_at_once: smtp_lab::sim::preparing::Prepared::of(written).steps.len(),
        running: MESSAGE_RUNNING,
        shown: "Your message, in",
        picked: None,
    };
    choose_in_picker(&root, "write-message");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    runs_in_slices_to_its_end(&root, message_run, || {
        click(&root, ".compose button.primary")
    })
    .await;
    // Chosen again in the picker, after another scenario, each is run again as it was first,
    // its entry chosen meanwhile.
    for (choice, run) in [("own", file_run), ("written", message_run)] {
        choose_scenario(&root, 0);
        yew::scheduler::flush().await;
        assert!(!text_of(&root, ".region-details").contains(run.shown));
        let run = Run {
            picked: Some(choice),
            ..run
        };
        runs_in_slices_to_its_end(&root, run, || choose_in_picker(&root, choice)).await;
    }
    mount_app_at("#").await;
}

/// How long the sending server of [`storm_file`] retries, every second.
const STORM_HOURS: u64 = 3;

/// A small scenario file whose run is long: a server down for good, tried every second for
/// hours, titled [`STORM_TITLE`].
fn storm_file() -> Vec<u8> {
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES
        .iter()
        .find(|(file, _)| file.contains("server-down-for-good"))
        .expect("the built-in scenario");
    let mut world: serde_json::Value = serde_json::from_str(text).unwrap();
    world["title"] = STORM_TITLE.into();
    world["retry"] = serde_json::json!({
        "first_retry_s": 1,
        "max_interval_s": 1,
        "give_up_s": STORM_HOURS * 3600,
    });
    world["run_until_s"] = (STORM_HOURS * 3600 + 60).into();
    world["fetches"] = serde_json::json!([]);
    let contents = serde_json::to_vec(&world).unwrap();
    assert!(contents.len() < smtp_lab::ui::LARGE_FILE_OCTETS / 10);
    contents
}

const STORM_TITLE: &str = "A storm of retries";

/// Opens [`storm_file`] as storm.json and checks that it runs in slices to its end (see
/// [`runs_in_slices_to_its_end`]): its contents, and its run.
async fn open_storm(root: &Element) -> (Vec<u8>, Run) {
    let contents = storm_file();
    let file_run = Run {
        steps_at_once: steps_at_once(&contents),
        running: "Running the scenario of storm.json",
        shown: "From your file storm.json.",
        picked: None,
    };
    runs_in_slices_to_its_end(root, file_run, || {
        choose_file(root, "storm.json", &contents)
    })
    .await;
    (contents, file_run)
}

/// Chooses the picker's `entry` ("own" or "written") again while the first built-in scenario
/// is shown, and, while it runs, writes a message, from the picker or else from the
/// introduction's button; what the details say once it is sent.
async fn write_while_running(root: &Element, entry: &str, from_picker: bool) -> String {
    choose_scenario(root, 0);
    yew::scheduler::flush().await;
    choose_in_picker(root, entry);
    let running = if entry == "own" {
        "Running the scenario of storm.json"
    } else {
        MESSAGE_RUNNING
    };
    until("the entry chosen again is said to be running", || {
        text_of(root, ".details-notice").starts_with(running)
    })
    .await;
    assert_eq!(picker(root).1, entry);
    if from_picker {
        choose_in_picker(root, "write-message");
    } else {
        click(root, ".details-write");
    }
    yew::scheduler::flush().await;
    assert!(compose_is_open(root));
    send_written_message(root).await;
    text_of(root, ".region-details")
}

/// The scenario file, or the message written, chosen again in the picker while another
/// scenario is shown, is what the picker names while it runs: the scenario shown meanwhile,
/// chosen, stops it, and a message is written in its world from the picker (from the shown
/// scenario's introduction, in that one's). A new file of the same name is not it: the
/// picker stays on what is shown while that one runs.
#[wasm_bindgen_test]
async fn an_entry_chosen_again_is_what_the_picker_names_while_it_runs() {
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    let clock = web_sys::window().unwrap().performance().unwrap();
    let started = clock.now();
    let (contents, file_run) = open_storm(&root).await;
    let run_ms = clock.now() - started;
    let in_storm = format!("Your message, in “{STORM_TITLE}”");
    let in_basic = format!(
        "Your message, in “{}”",
        smtp_lab::sim::library::builtin()[0]
            .as_ref()
            .expect("a valid scenario")
            .title
    );
    // The scenario shown meanwhile, chosen, stops the run, and stays where it is; the run
    // never comes (waited for twice as long as it took first).
    choose_scenario(&root, 0);
    yew::scheduler::flush().await;
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    // Chosen, as with the mouse, it moves the focus on to Play at once: the keys step the
    // scenario shown meanwhile, rather than choose another entry.
    element(&root, "#scenario-select").focus().unwrap();
    choose_in_picker(&root, "own");
    until_said_running(&root, "storm.json").await;
    assert_eq!(picker(&root).1, "own");
    let focused = gloo::utils::document().active_element().unwrap();
    assert!(
        focused.matches(".controls button.primary").unwrap(),
        "{}",
        focused.outer_html()
    );
    choose_scenario(&root, 0);
    yew::scheduler::flush().await;
    assert_eq!(picker(&root).1, "0");
    assert_eq!(text_of(&root, ".details-notice"), "");
    assert_eq!(position(&root).0, 1);
    sleep((run_ms * 2.0) as i32).await;
    yew::scheduler::flush().await;
    assert_eq!(picker(&root).1, "0");
    assert!(!text_of(&root, ".region-details").contains(file_run.shown));
    assert_eq!(position(&root).0, 1);
    // A message written from the picker while it runs is written in its world, as when it is
    // shown; and the message chosen again, while it runs, is written again as it was sent.
    let details = write_while_running(&root, "own", true).await;
    assert!(details.contains(&in_storm), "{details}");
    let details = write_while_running(&root, "written", true).await;
    assert!(details.contains(&in_storm), "{details}");
    assert!(!details.contains(&in_basic), "{details}");
    // The introduction's button, though, writes in the world it introduces, the one shown.
    let details = write_while_running(&root, "own", false).await;
    assert!(details.contains(&in_basic), "{details}");
    // A new file of the same name runs with the picker on what is shown.
    choose_scenario(&root, 0);
    yew::scheduler::flush().await;
    runs_in_slices_to_its_end(&root, file_run, || {
        choose_file(&root, "storm.json", &contents)
    })
    .await;
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_scenario_file_of_ones_own_opens_and_stays_in_the_picker() {
    let root = mount_app_at("#scenario=greylisting&step=7").await;
    yew::scheduler::flush().await;
    let entries = picker(&root).0;
    assert!(entries.contains(&("open-file".into(), "Open a scenario file…".into())));
    choose_file(&root, "class.json", &own_scenario_file());
    until("the file's scenario is shown", || {
        text_of(&root, ".region-details").contains("Our class scenario")
    })
    .await;
    assert_eq!(position(&root).0, 0);
    assert!(position(&root).1 > 10);
    assert!(text_of(&root, ".region-details").contains("From your file class.json."));
    // A screen reader, its focus moved to Play, hears which scenario opened.
    let said = element(&root, ".region-details [aria-live='polite']")
        .text_content()
        .unwrap_or_default();
    assert_eq!(said, "Our class scenario, from your file class.json.");
    let (entries, chosen) = picker(&root);
    assert!(entries.contains(&(chosen.clone(), "Our class scenario (class.json)".into())));
    // Its name is a built-in scenario's, but a link cannot carry the file: the address holds
    // no link, rather than one to the built-in scenario.
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(address().await, "");
    assert_eq!(position(&root).0, 1);
    let log = text_of(&root, ".conversation-log");
    assert!(log.contains("scenario basic-delivery, seed 1"), "{log}");
    // Another scenario chosen, the file's is still offered, and comes back at its start.
    choose_scenario(&root, 1);
    yew::scheduler::flush().await;
    assert!(!text_of(&root, ".region-details").contains("Our class scenario"));
    choose_in_picker(&root, &chosen);
    yew::scheduler::flush().await;
    assert!(text_of(&root, ".region-details").contains("Our class scenario"));
    assert_eq!(position(&root).0, 0);
    // A file dropped on the page opens as one chosen in the dialog.
    drop_file("dropped.json", &own_scenario_file());
    until("the dropped file's scenario is shown", || {
        text_of(&root, ".region-details").contains("From your file dropped.json.")
    })
    .await;
    assert_eq!(picker(&root).1, chosen);
    mount_app_at("#").await;
}

/// A sender whose address holds a space (a quoted local part) is one name in the actor
/// column, not a name cut at the space with the rest in the text; one the user agent cannot
/// write is named by what its brackets hold, and connects nowhere.
#[wasm_bindgen_test]
async fn an_actor_name_with_a_space_stays_whole_in_the_conversation() {
    let root = mount_app_at("#").await;
    yew::scheduler::flush().await;
    let mut world: serde_json::Value = serde_json::from_slice(&own_scenario_file()).expect("JSON");
    world["messages"][0]["from"] = serde_json::json!(r#""al ice"@sender.test"#);
    open_file_at_its_end(&root, "spaced.json", &world).await;
    let actors = texts_of(&root, ".conversation-log .line-actor");
    assert!(
        actors.iter().any(|a| a == r#"ua:"al ice"@sender.test"#),
        "{actors:?}"
    );
    assert!(!actors.iter().any(|a| a == r#"ua:"al"#), "{actors:?}");
    let texts = texts_of(&root, ".conversation-log .line-text");
    assert!(
        !texts.iter().any(|t| t.starts_with(r#"ice"@"#)),
        "{texts:?}"
    );
    // A sender the user agent cannot write connects nowhere, and the diagram says so.
    world["messages"][0]["from"] = serde_json::json!("Jane <jane@@sender.test>");
    world["fetches"] = serde_json::json!([]);
    open_file_at_its_end(&root, "nowhere.json", &world).await;
    let actors = texts_of(&root, ".conversation-log .line-actor");
    assert!(
        actors.iter().any(|a| a == "ua:jane@@sender.test"),
        "{actors:?}"
    );
    assert!(diagram_name(&root).ends_with("No one connects to anyone."));
    mount_app_at("#").await;
}

/// Opens `world` as the file `name`, and goes to its last step.
async fn open_file_at_its_end(root: &Element, name: &str, world: &serde_json::Value) {
    choose_file(root, name, world.to_string().as_bytes());
    let from_it = format!("From your file {name}.");
    until("the file's scenario is shown", || {
        text_of(root, ".region-details").contains(&from_it)
    })
    .await;
    assert!(press_key("End"));
    yew::scheduler::flush().await;
}

/// The text of every element `selector` finds, in order.
fn texts_of(root: &Element, selector: &str) -> Vec<String> {
    let found = root.query_selector_all(selector).unwrap();
    (0..found.length())
        .filter_map(|index| found.item(index))
        .filter_map(|element| element.text_content())
        .collect()
}

/// A run of many recipients (a class's scenario file) ends with their outcomes counted by
/// fate; each one's line is made only when the list is opened.
#[wasm_bindgen_test]
async fn many_outcomes_are_counted_and_listed_when_asked_for() {
    let root = mount_app_at("#").await;
    yew::scheduler::flush().await;
    let mut world = own_scenario_sending(21);
    let mut unknown = world["messages"][0].clone();
    unknown["to"] = serde_json::json!(["nobody@receiver.test"]);
    world["messages"]
        .as_array_mut()
        .expect("messages")
        .push(unknown);
    open_file_at_its_end(&root, "class.json", &world).await;
    // 21 messages to bob, one refused and bounced, and the bounce delivered to alice.
    assert_eq!(
        text_of(&root, ".details-outcome-counts"),
        "23 recipients: 22 delivered, 1 bounced."
    );
    assert!(texts_of(&root, ".details-outcomes li").is_empty());
    let disclosure = element(&root, ".details-outcomes");
    assert_eq!(
        text_of(&root, ".details-outcomes summary"),
        "Each recipient's outcome (23)"
    );
    disclosure.set_attribute("open", "").unwrap();
    disclosure
        .dispatch_event(&web_sys::Event::new("toggle").unwrap())
        .unwrap();
    yew::scheduler::flush().await;
    let outcomes = texts_of(&root, ".details-outcomes li");
    assert_eq!(outcomes.len(), 23, "{outcomes:?}");
    assert_eq!(
        outcomes[21],
        "m22 <nobody@receiver.test>: bounced by mail.sender.test (550 5.1.1 User unknown)"
    );
    // Closed again, its lines go.
    disclosure.remove_attribute("open").unwrap();
    disclosure
        .dispatch_event(&web_sys::Event::new("toggle").unwrap())
        .unwrap();
    yew::scheduler::flush().await;
    assert!(texts_of(&root, ".details-outcomes li").is_empty());
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_broken_scenario_file_says_why_and_what_is_shown_stays() {
    let root = mount_app_at("#scenario=greylisting&step=7").await;
    yew::scheduler::flush().await;
    let greylisting = smtp_lab::sim::library::position("greylisting")
        .unwrap()
        .to_string();
    // An unknown field, in the first host.
    let broken = String::from_utf8(own_scenario_file())
        .unwrap()
        .replacen("\"address\":", "\"colour\": \"red\", \"address\":", 1)
        .into_bytes();
    for (name, contents, expected) in [
        (
            "typo.json",
            broken.as_slice(),
            "typo.json is not a valid scenario:",
        ),
        (
            "latin1.json",
            b"{\"name\": \"caf\xe9\"}".as_slice(),
            "latin1.json is not UTF-8 text",
        ),
        (
            "empty.json",
            b"".as_slice(),
            "empty.json is not a valid scenario:",
        ),
        // Saved as "Unicode" by an editor, without a byte order mark: the same words as
        // `smtp-lab run`.
        (
            "utf16.json",
            b"{\x00}\x00".as_slice(),
            "utf16.json is UTF-16 text (what some editors call \"Unicode\"), but a JSON file \
             must be UTF-8 (RFC 8259 8.1): save it again as UTF-8.",
        ),
    ] {
        choose_file(&root, name, contents);
        until(name, || {
            text_of(&root, ".region-details").contains(expected)
        })
        .await;
        // The scenario shown stays, at its step, with its link, and is said to be the one
        // opened before.
        assert_eq!(position(&root).0, 7, "{name}");
        assert!(
            text_of(&root, ".region-details")
                .contains("Still shown beside this is the scenario opened before: Greylisting."),
            "{name}: {}",
            text_of(&root, ".region-details")
        );
        assert_eq!(
            picker(&root).1,
            greylisting,
            "{name}: greylisting is still chosen"
        );
        assert!(
            !picker(&root).0.iter().any(|(value, _)| value == "own"),
            "{name}"
        );
    }
    // What is wrong with the first file, and where, as `smtp-lab run` says it; opened twice,
    // the same complaint is a new alert, said again.
    choose_file(&root, "typo.json", &broken);
    until("the typo is named", || {
        text_of(&root, ".region-details").contains("unknown field `colour`")
    })
    .await;
    // Under what is wrong, each problem is an item of a list.
    assert_eq!(
        text_of(&root, ".details-error p"),
        "typo.json is not a valid scenario:"
    );
    let problems = root
        .query_selector_all(".details-error .details-problems li")
        .unwrap();
    assert_eq!(problems.length(), 1);
    let problem = problems.get(0).unwrap().text_content().unwrap_or_default();
    assert!(problem.starts_with("hosts[0]"), "{problem}");
    let alert = element(&root, ".details-error[role=alert]");
    choose_file(&root, "typo.json", &broken);
    until("the typo is named again", || {
        !alert.is_connected() && text_of(&root, ".details-error").contains("unknown field")
    })
    .await;
    // Another file can be opened from the complaint.
    assert_eq!(
        text_of(&root, ".region-details .details-open-file"),
        "Open a scenario file…"
    );
    // A file too large to be a scenario is not read.
    let large = vec![b' '; smtp_lab::sim::scenario::SCENARIO_MAX_OCTETS + 1];
    choose_file(&root, "large.json", &large);
    until("the large file is refused", || {
        text_of(&root, ".details-error")
            == "large.json is larger than 4194304 octets, the most a scenario may be."
    })
    .await;
    assert_eq!(address().await, "#scenario=greylisting&step=7");
    // The next step puts the complaint away.
    click(&root, "button[title='Step forward']");
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 8);
    assert!(text_of(&root, ".region-details").contains("Simulated time"));
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_built_in_scenario_offers_its_file_to_download_and_change() {
    let root = mount_app_at("#scenario=greylisting").await;
    yew::scheduler::flush().await;
    let link: web_sys::HtmlAnchorElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, ".region-details a[download]"));
    assert_eq!(link.download(), "greylisting.json");
    let href = link.href();
    let (kind, encoded) = href.split_once(',').expect("a data: address");
    assert_eq!(kind, "data:application/json;charset=utf-8");
    let text: String = js_sys::decode_uri_component(encoded).unwrap().into();
    let index = smtp_lab::sim::library::position("greylisting").unwrap();
    assert_eq!(text, smtp_lab::sim::library::SCENARIO_FILES[index].1);
    // A file of one's own is the user's already: no link.
    choose_file(&root, "class.json", &own_scenario_file());
    until("the file's scenario is shown", || {
        text_of(&root, ".region-details").contains("From your file class.json.")
    })
    .await;
    assert!(root
        .query_selector(".region-details a[download]")
        .unwrap()
        .is_none());
    mount_app_at("#").await;
}

/// A drag over the page of `transfer`, and whether the page took it (cancelled its default).
fn drag_over(transfer: &web_sys::DataTransfer) -> bool {
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(transfer));
    let over = web_sys::DragEvent::new_with_event_init_dict("dragover", &init).unwrap();
    !gloo::utils::document()
        .body()
        .unwrap()
        .dispatch_event(&over)
        .unwrap()
}

#[wasm_bindgen_test]
async fn the_picker_always_names_what_is_shown() {
    let root = mount_app_at("#").await;
    // Entries chosen one after the other, a file's among them, and a second file.
    choose_file(&root, "a.json", &own_scenario_file());
    until("a.json is shown", || picker(&root).1 == "own").await;
    choose_scenario(&root, 1);
    yew::scheduler::flush().await;
    choose_in_picker(&root, "own");
    yew::scheduler::flush().await;
    assert_eq!(picker(&root).1, "own");
    assert!(text_of(&root, ".region-details").contains("From your file a.json."));
    choose_scenario(&root, 2);
    yew::scheduler::flush().await;
    choose_file(&root, "b.json", &own_scenario_file());
    until("b.json is shown", || {
        text_of(&root, ".region-details").contains("From your file b.json.")
    })
    .await;
    let (entries, chosen) = picker(&root);
    assert_eq!(chosen, "own");
    assert!(entries.contains(&("own".into(), "Our class scenario (b.json)".into())));
    // A link to another scenario than the picker was last left on.
    choose_scenario(&root, 1);
    yew::scheduler::flush().await;
    choose_scenario(&root, 3);
    yew::scheduler::flush().await;
    let name = &smtp_lab::sim::library::builtin()[1]
        .as_ref()
        .unwrap()
        .name
        .clone();
    follow_link(&format!("#scenario={name}&step=2")).await;
    assert_eq!(position(&root).0, 2);
    assert_eq!(picker(&root).1, "1");
    // Left on the entry that opens a file, it goes back to what is shown.
    let select: web_sys::HtmlSelectElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, "#scenario-select"));
    select.set_value("open-file");
    select
        .dispatch_event(&web_sys::Event::new("blur").unwrap())
        .unwrap();
    assert_eq!(select.value(), "1");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_file_still_being_read_gives_way_to_a_scenario_chosen_meanwhile() {
    let root = mount_app_at("#").await;
    choose_file(&root, "late.json", &own_scenario_file());
    // Chosen before the browser has read the file.
    choose_scenario(&root, 2);
    yew::scheduler::flush().await;
    sleep(300).await;
    yew::scheduler::flush().await;
    assert_eq!(picker(&root).1, "2");
    assert!(!text_of(&root, ".region-details").contains("late.json"));
    // The file input was emptied, so that the same file, chosen again, is read again.
    let input: web_sys::HtmlInputElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, "input[type=file]"));
    assert_eq!(input.files().map_or(0, |files| files.length()), 0);
    choose_file(&root, "late.json", &own_scenario_file());
    until("the file chosen again is shown", || {
        text_of(&root, ".region-details").contains("From your file late.json.")
    })
    .await;
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn files_dragged_over_the_page_are_taken_and_text_is_not() {
    let root = mount_app_at("#").await;
    assert!(drag_over(&file_of("a.json", b"{}")));
    let text = web_sys::DataTransfer::new().unwrap();
    text.set_data("text/plain", "hello").unwrap();
    assert!(!drag_over(&text));
    // Two files dropped: the first is opened, and the other is said to be left out.
    let two = file_of("first.json", &own_scenario_file());
    let second = web_sys::File::new_with_u8_array_sequence(
        &js_sys::Array::of1(&js_sys::Uint8Array::from(&b"{}"[..])),
        "second.json",
    )
    .unwrap();
    two.items().add_with_file(&second).unwrap();
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(&two));
    let drop = web_sys::DragEvent::new_with_event_init_dict("drop", &init).unwrap();
    gloo::utils::document()
        .body()
        .unwrap()
        .dispatch_event(&drop)
        .unwrap();
    until("the first file is shown", || {
        text_of(&root, ".region-details").contains("From your file first.json.")
    })
    .await;
    assert!(text_of(&root, ".details-notice")
        .contains("2 files were dropped; only the first, first.json, is opened"));
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn the_details_offer_to_open_a_scenario_file() {
    let root = mount_app_at("#").await;
    // The dialog is the hidden input's: a click on it is what opens it.
    let input = element(&root, "input[type=file]");
    let clicks = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = std::rc::Rc::clone(&clicks);
    let listener = gloo::events::EventListener::new_with_options(
        &input,
        "click",
        gloo::events::EventListenerOptions::enable_prevent_default(),
        move |event| {
            event.prevent_default();
            counted.set(counted.get() + 1);
        },
    );
    for fragment in ["#", "#scenario=greylisting", "#scenario=no-such-scenario"] {
        follow_link(fragment).await;
        click(&root, ".region-details .details-open-file");
    }
    assert_eq!(
        clicks.get(),
        3,
        "from the first words, a scenario's introduction and a broken link's error"
    );
    choose_in_picker(&root, "open-file");
    assert_eq!(clicks.get(), 4, "and from the picker's last entry");
    assert_ne!(
        picker(&root).1,
        "open-file",
        "which goes back to what is shown"
    );
    drop(listener);
    mount_app_at("#").await;
}

/// A step adds its lines to the log and leaves those above as they are: redrawing every line
/// at every step made a step near the end of a long run take a tenth of a second on a desktop.
#[wasm_bindgen_test]
async fn a_step_leaves_the_lines_above_it_untouched() {
    let root = mount_app_at("#scenario=server-down-for-good&step=400").await;
    yew::scheduler::flush().await;
    let lines = || root.query_selector_all(".conversation-log .line").unwrap();
    let before = lines();
    let first = before.get(0).expect("a first line");
    let first_text = first.text_content();
    let count = before.length();
    let changes = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counted = std::rc::Rc::clone(&changes);
    let on_change = wasm_bindgen::closure::Closure::<dyn FnMut(js_sys::Array)>::new(
        move |records: js_sys::Array| {
            counted.set(counted.get() + records.length());
        },
    );
    let observer =
        web_sys::MutationObserver::new(wasm_bindgen::JsCast::unchecked_ref(on_change.as_ref()))
            .unwrap();
    let options = web_sys::MutationObserverInit::new();
    options.set_subtree(true);
    options.set_child_list(true);
    options.set_character_data(true);
    options.set_attributes(true);
    observer
        .observe_with_options(&element(&root, ".conversation-log"), &options)
        .unwrap();
    press_key("ArrowRight");
    yew::scheduler::flush().await;
    let records = observer.take_records();
    observer.disconnect();
    let changed = changes.get() + records.length();
    let after = lines();
    assert!(after.length() > count, "the step's lines are added");
    let still_first = after.get(0).expect("a first line");
    assert!(
        still_first.is_same_node(Some(&first)),
        "the first line is the same node"
    );
    assert_eq!(still_first.text_content(), first_text);
    // The new lines, and the marks of the step before and of this one.
    assert!(
        changed <= 2 * (after.length() - count) + 8,
        "{changed} changes in the log for {} new lines",
        after.length() - count
    );
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_long_run_from_a_file_draws_its_latest_lines_only() {
    let root = mount_app_at("#").await;
    // Forty copies of the message: some four thousand lines.
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES[0];
    let mut scenario: serde_json::Value = serde_json::from_str(text).unwrap();
    let message = scenario["messages"][0].clone();
    scenario["messages"] = serde_json::Value::Array(vec![message; 40]);
    // A title that turns the text after it round.
    scenario["title"] = "\u{202e}reversed".into();
    choose_file(&root, "long.json", &serde_json::to_vec(&scenario).unwrap());
    until("the long file is shown", || {
        text_of(&root, ".region-details").contains("From your file long.json.")
    })
    .await;
    let entry = picker(&root)
        .0
        .into_iter()
        .find(|(value, _)| value == "own")
        .unwrap()
        .1;
    assert_eq!(entry, "\u{2068}\u{202e}reversed\u{2069} (long.json)");
    click(&root, "button[title='To the end']");
    yew::scheduler::flush().await;
    let drawn = root
        .query_selector_all(".conversation-log .line:not(.line-left-out)")
        .unwrap()
        .length() as usize;
    let left_out = text_of(&root, ".conversation-log .line-left-out");
    let count: usize = left_out
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{left_out}"));
    assert!(
        drawn <= LINES_DRAWN_MAX && drawn > LINES_DRAWN_MAX - 100,
        "{drawn} lines drawn of {}",
        drawn + count
    );
    assert!(count > 1000, "{count} left out");
    assert!(left_out.ends_with("they come back as you step back."));
    // The last line is the run's last.
    let last = text_of(&root, ".conversation-log .line:last-child");
    assert!(last.contains("conservation"), "{last}");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_files_problems_scroll_in_a_box_the_keyboard_reaches() {
    let root = mount_app_at("#").await;
    choose_file(&root, "typo.json", b"{\"name\": 1, \"title\": 2}");
    until("the problems are shown", || {
        text_of(&root, ".region-details").contains("typo.json is not a valid scenario:")
    })
    .await;
    let scroller = element(&root, ".region-details .details-body");
    assert_eq!(scroller.tab_index(), 0);
    assert!(scroller.contains(Some(&element(&root, ".details-error"))));
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn the_problems_of_a_file_opened_from_the_details_take_the_focus_the_button_had() {
    let root = mount_app_at("#scenario=greylisting").await;
    yew::scheduler::flush().await;
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES[0];
    let mut scenario: serde_json::Value = serde_json::from_str(text).unwrap();
    scenario["fetches"] = (0..40)
        .map(|n| {
            serde_json::json!({
                "mailbox": format!("nobody{n}@receiver.test"),
                "host": "mx.receiver.test",
                "at_s": 10
            })
        })
        .collect();
    // The introduction's button had the focus; the problems take its place.
    element(&root, ".region-details .details-open-file")
        .focus()
        .unwrap();
    choose_file(&root, "many.json", &serde_json::to_vec(&scenario).unwrap());
    until("the problems are shown", || {
        text_of(&root, ".details-error").contains("nobody39@receiver.test")
    })
    .await;
    let problems = element(&root, ".region-details .details-body");
    let focused = gloo::utils::document().active_element().unwrap();
    assert!(
        focused.is_same_node(Some(&problems)),
        "the box of the problems has the focus"
    );
    mount_app_at("#").await;
}

/// Types `text` into the field `selector` finds, as a keyboard does: its value, then `input`.
fn type_into(root: &Element, selector: &str, text: &str) {
    let field = element(root, selector);
    match wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlTextAreaElement>(&field) {
        Some(area) => area.set_value(text),
        None => {
            wasm_bindgen::JsCast::unchecked_ref::<web_sys::HtmlInputElement>(&field).set_value(text)
        }
    }
    let init = web_sys::InputEventInit::new();
    init.set_bubbles(true);
    let event = web_sys::InputEvent::new_with_event_init_dict("input", &init).unwrap();
    field.dispatch_event(&event).unwrap();
}

fn field_value(root: &Element, selector: &str) -> String {
    wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlInputElement>(element(root, selector))
        .value()
}

fn compose_is_open(root: &Element) -> bool {
    wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlDialogElement>(element(
        root,
        "dialog.compose",
    ))
    .open()
}

#[wasm_bindgen_test]
async fn a_student_writes_a_message_in_a_scenarios_world_and_sees_what_the_servers_make_of_it() {
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    let builtin = picker(&root).1;
    assert!(!compose_is_open(&root));
    // The picker's entry opens the dialog, filled in with the scenario's own message, and
    // goes back to what is shown.
    choose_in_picker(&root, "write-message");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert_eq!(picker(&root).1, builtin);
    assert_eq!(field_value(&root, "#compose-from"), "alice@sender.test");
    assert_eq!(field_value(&root, "#compose-to"), "bob@receiver.test");
    assert_eq!(field_value(&root, "#compose-subject"), "Hello");
    let hint = text_of(&root, ".compose-hint");
    assert!(
        hint.contains("bob@receiver.test, carol@receiver.test"),
        "{hint}"
    );
    // A key pressed in the dialog is the dialog's: the player behind it stays.
    let to = element(&root, "#compose-to");
    assert!(!press_key_on(&to, "ArrowRight"));
    assert!(!press_key_on(
        &element(&root, ".compose button.primary"),
        "ArrowRight"
    ));
    assert_eq!(position(&root).0, 0);
    type_into(
        &root,
        "#compose-to",
        "carol@receiver.test, nobody@receiver.test",
    );
    type_into(&root, "#compose-subject", "Are you there?");
    // An attachment: a video of the size asked for; a size that is none is refused.
    choose_in_dialog(&root, "#compose-sample", "2");
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#compose-size"), "2048");
    type_into(&root, "#compose-size", "lots");
    click_button(&root, ".compose", "Add attachment");
    yew::scheduler::flush().await;
    assert!(text_of(&root, ".compose-problem").contains("whole number of KiB"));
    // The field to put right is marked, described by the problem, and has the focus.
    assert_invalid_and_focused(&root, "compose-size");
    // Enter in the size field adds the attachment; Enter in another one-line field does
    // not send the message.
    type_into(&root, "#compose-size", "64");
    assert!(press_key_on(&element(&root, "#compose-size"), "Enter"));
    yew::scheduler::flush().await;
    assert_eq!(
        text_of(&root, ".compose-attachments li span"),
        "clip.mp4 (video/mp4, 64 KiB)"
    );
    // The focus stays in the size field, so a status says what happened.
    assert_eq!(
        text_of(&root, ".compose [role='status']"),
        "Attached clip.mp4 (video/mp4, 64 KiB); 1 attachment."
    );
    assert!(root.query_selector(".compose-problem").unwrap().is_none());
    assert!(press_key_on(&element(&root, "#compose-to"), "Enter"));
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    // Removed, an attachment hands the focus to the Remove button taking its place, and the
    // last one to the list of attachments to add.
    click_button(&root, ".compose", "Add attachment");
    yew::scheduler::flush().await;
    click(&root, "#compose-remove-0");
    yew::scheduler::flush().await;
    assert_eq!(focused_id(), "compose-remove-0");
    click(&root, "#compose-remove-0");
    yew::scheduler::flush().await;
    assert_eq!(focused_id(), "compose-sample");
    assert_eq!(
        text_of(&root, ".compose [role='status']"),
        "Removed clip.mp4 (video/mp4, 64 KiB); no attachments."
    );
    assert!(root
        .query_selector(".compose-attachments li")
        .unwrap()
        .is_none());
    type_into(&root, "#compose-size", "64");
    click_button(&root, ".compose", "Add attachment");
    yew::scheduler::flush().await;
    // What is missing is said, in its field: here, the sender.
    let sender = field_value(&root, "#compose-from");
    type_into(&root, "#compose-from", " ");
    click(&root, ".compose button.primary");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert_eq!(
        text_of(&root, ".compose-problem"),
        "From: give the sender's address."
    );
    assert_invalid_and_focused(&root, "compose-from");
    // Put right, the field is no longer marked, and the problem is put away. A display name
    // is taken, as a mail program takes it.
    type_into(&root, "#compose-from", &format!("Alice Liddell <{sender}>"));
    type_into(&root, "#compose-cc", "Jane Doe <jane@receiver.test>");
    yew::scheduler::flush().await;
    assert_eq!(
        element(&root, "#compose-from").get_attribute("aria-invalid"),
        None
    );
    assert!(root.query_selector("#compose-problem").unwrap().is_none());
    send_written_message(&root).await;
    // Sent: the dialog closes, and the message's run is shown at its start, offered by the
    // picker, with a link to it in the address.
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("Your message, in “One message, delivered and read”"),
        "{details}"
    );
    let (entries, chosen) = picker(&root);
    assert_eq!(chosen, "written");
    assert!(entries.contains(&(
        "written".into(),
        "Your message, in “One message, delivered and read”".into()
    )));
    let link = address().await;
    assert!(
        link.starts_with("#scenario=basic-delivery&from=Alice%20Liddell%20%3C")
            && link.contains("&cc=Jane%20Doe%20%3Cjane@receiver.test%3E")
            && link.contains("&attach=clip.mp4;video%2Fmp4;65536")
            && link.ends_with("&step=0"),
        "{link}"
    );
    let said = element(&root, ".region-details [aria-live='polite']")
        .text_content()
        .unwrap_or_default();
    assert_eq!(said, "Your message, in “One message, delivered and read”.");
    // The unknown user is refused by the receiving server, at RCPT (RFC 5321 3.3).
    assert!(press_shifted_key("ArrowRight"));
    yew::scheduler::flush().await;
    let step = text_of(&root, ".region-details");
    assert!(step.contains("550"), "{step}");
    assert!(step.contains("nobody@receiver.test"), "{step}");
    // Written again from its introduction, the dialog holds the message as sent; a message
    // to nobody is not sent, and says why; Cancel leaves the run shown.
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert_eq!(
        field_value(&root, "#compose-to"),
        "carol@receiver.test, nobody@receiver.test"
    );
    assert_eq!(
        field_value(&root, "#compose-cc"),
        "Jane Doe <jane@receiver.test>"
    );
    assert!(field_value(&root, "#compose-from").starts_with("Alice Liddell <"));
    assert_eq!(
        text_of(&root, ".compose-attachments li span"),
        "clip.mp4 (video/mp4, 64 KiB)"
    );
    type_into(&root, "#compose-to", " , ");
    type_into(&root, "#compose-cc", "");
    click(&root, ".compose button.primary");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert!(text_of(&root, ".compose-problem").contains("at least one recipient"));
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    assert!(!compose_is_open(&root));
    assert_eq!(picker(&root).1, "written");
    mount_app_at("#").await;
}

/// A message written in a built-in scenario's world has a link: opened in a fresh page, it
/// sends the same message in that world again, and shows the same run at the same step.
#[wasm_bindgen_test]
async fn a_written_message_has_a_link_that_makes_the_same_run_again() {
    let root = write_a_message_in("basic-delivery").await;
    type_into(&root, "#compose-to", "nobody@receiver.test");
    type_into(&root, "#compose-subject", "Où & pourquoi ? #1");
    choose_in_dialog(&root, "#compose-server-1", "greylisting");
    yew::scheduler::flush().await;
    send_written_message(&root).await;
    assert!(press_shifted_key("ArrowRight"));
    yew::scheduler::flush().await;
    let (step, total) = position(&root);
    assert!(step > 0);
    let link = address().await;
    assert!(
        link.starts_with("#scenario=basic-delivery&from=")
            && link.contains("&to=nobody@receiver.test&")
            && link.contains("&subject=O%C3%B9%20%26%20pourquoi%20%3F%20%231&")
            && link.contains("&server=mx.receiver.test;greylisting&")
            && link.ends_with(&format!("&step={step}")),
        "{link}"
    );
    let conversation = text_of(&root, ".conversation-log");
    let explanation = text_of(&root, ".region-details .explanation");
    // A draft changed and put away, then the link opened in the same page: written again,
    // the dialog holds the link's message, not the draft put away.
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    type_into(&root, "#compose-to", "someone-else@receiver.test");
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    follow_link(&link).await;
    assert_eq!(position(&root), (step, total));
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#compose-to"), "nobody@receiver.test");
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    // Opened afresh: the same run, at the same step, offered as the written message.
    let root = mount_app_at(&link).await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root), (step, total));
    assert_eq!(picker(&root).1, "written");
    assert_eq!(text_of(&root, ".conversation-log"), conversation);
    assert_eq!(text_of(&root, ".region-details .explanation"), explanation);
    // Written again, the dialog holds the message and the change as sent.
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#compose-to"), "nobody@receiver.test");
    assert_eq!(field_value(&root, "#compose-subject"), "Où & pourquoi ? #1");
    assert_eq!(field_value(&root, "#compose-server-1"), "greylisting");
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    // A link whose message cannot be sent shows the world without it, and says why.
    let root = mount_app_at("#scenario=basic-delivery&to=bob@receiver.test&step=3").await;
    yew::scheduler::flush().await;
    // At its start: the link's step is one of the message's run.
    assert_eq!(position(&root).0, 0);
    assert_ne!(picker(&root).1, "written");
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains(
            "This link's message cannot be sent: From: give the sender's address. The \
             scenario is shown without it. The scenario opens at its start."
        ),
        "{details}"
    );
    mount_app_at("#").await;
}

/// The greetings of the servers the run's sessions reached, in order: which MX host each
/// message went to.
async fn greetings_to_the_end(root: &Element) -> Vec<String> {
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let log = text_of(root, ".conversation-log");
    let greetings = log
        .match_indices("220 mx")
        .map(|(at, _)| log[at..at + "220 mx1".len()].to_string())
        .collect();
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    greetings
}

/// A world with MX hosts of equal preference offers its run's seed: another seed draws
/// another order, and the address, and a message written there, keep the seed chosen.
#[wasm_bindgen_test]
async fn a_student_runs_a_world_that_draws_among_mx_hosts_with_another_seed() {
    // Nothing is drawn in a world without hosts of equal preference: no seed is offered.
    let root = mount_app_at("#scenario=basic-delivery").await;
    yew::scheduler::flush().await;
    assert!(root.query_selector(".details-seed").unwrap().is_none());
    let root = mount_app_at("#scenario=mx-lookup").await;
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#run-seed"), "7");
    let (_, own_total) = position(&root);
    assert_eq!(
        greetings_to_the_end(&root).await,
        ["220 mx2", "220 mx1", "220 mx2"]
    );
    // Seed 1, typed, sends all three to mx1, and the address says so. The field stays, with
    // the focus in it, for the next seed.
    element(&root, "#run-seed").focus().unwrap();
    type_into(&root, "#run-seed", " 1 ");
    click_button(&root, ".details-seed", "Run with this seed");
    yew::scheduler::flush().await;
    assert_eq!(focused_id(), "run-seed");
    assert_eq!(field_value(&root, "#run-seed"), "1");
    // Said, in a live region: nothing else a screen reader hears changes.
    assert!(text_of(&root, ".details-seed [role=status]").contains("draws from the seed 1."));
    assert_eq!(position(&root).0, 0);
    assert!(text_of(&root, ".details-seed").contains("draws from the seed 1."));
    assert_eq!(address().await, "#scenario=mx-lookup&seed=1&step=0");
    assert_eq!(
        greetings_to_the_end(&root).await,
        ["220 mx1", "220 mx1", "220 mx1"]
    );
    // The next seed, with a button.
    click_button(&root, ".details-seed", "Try the next seed");
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#run-seed"), "2");
    assert_eq!(address().await, "#scenario=mx-lookup&seed=2&step=0");
    // What is no seed is said under the field, which keeps it, and the run stays.
    for (typed, said) in [
        ("abc", "\u{201c}abc\u{201d} is not a seed"),
        ("-1", "\u{201c}-1\u{201d} is not a seed"),
        ("", "The field is empty"),
        (
            "18446744073709551616",
            "\u{201c}18446744073709551616\u{201d} is not a seed",
        ),
    ] {
        type_into(&root, "#run-seed", typed);
        // Pressed, the button has the focus; the field takes it, to be put right.
        element(&root, ".details-seed button[type=submit]")
            .focus()
            .unwrap();
        click_button(&root, ".details-seed", "Run with this seed");
        yew::scheduler::flush().await;
        assert_eq!(focused_id(), "run-seed");
        assert_eq!(
            text_of(&root, "#run-seed-problem"),
            format!("{said}: a seed is a whole number from 0 to 18446744073709551615."),
        );
        assert_eq!(field_value(&root, "#run-seed"), typed);
        let field = element(&root, "#run-seed");
        assert_eq!(field.get_attribute("aria-invalid").as_deref(), Some("true"));
        assert_eq!(
            field.get_attribute("aria-describedby").as_deref(),
            Some("run-seed-problem")
        );
        assert!(text_of(&root, ".details-seed").contains("draws from the seed 2."));
    }
    // Put right, the field is no longer marked.
    type_into(&root, "#run-seed", "2");
    yew::scheduler::flush().await;
    assert!(root.query_selector("#run-seed-problem").unwrap().is_none());
    assert_eq!(
        element(&root, "#run-seed").get_attribute("aria-invalid"),
        None
    );
    // Back to the scenario's own seed: the address has none.
    type_into(&root, "#run-seed", "7");
    click_button(&root, ".details-seed", "Run with this seed");
    yew::scheduler::flush().await;
    assert_eq!(position(&root), (0, own_total));
    assert_eq!(address().await, "#scenario=mx-lookup&step=0");
    // A link that gives the scenario's own seed is one without: its address has none, and
    // one whose step cannot be read leaves the run where it is.
    follow_link("#scenario=mx-lookup&seed=7&step=3").await;
    assert_eq!(position(&root).0, 3);
    assert_eq!(address().await, "#scenario=mx-lookup&step=3");
    follow_link("#scenario=mx-lookup&seed=7&step=x").await;
    assert_eq!(position(&root).0, 3);
    // A link with a seed opens its run at its step.
    let root = mount_app_at("#scenario=mx-lookup&seed=1&step=3").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 3);
    assert_eq!(
        greetings_to_the_end(&root).await,
        ["220 mx1", "220 mx1", "220 mx1"]
    );
    assert_eq!(field_value(&root, "#run-seed"), "1");
    // A step of it, reached from another seed by a link whose step cannot be read: the link's
    // seed is run, from its start.
    follow_link("#scenario=mx-lookup&seed=2&step=x").await;
    assert_eq!(position(&root).0, 0);
    assert_eq!(field_value(&root, "#run-seed"), "2");
    // A seed that cannot be read: the scenario's own, from its start, and said.
    let root = mount_app_at("#scenario=mx-lookup&seed=x&step=3").await;
    yew::scheduler::flush().await;
    assert_eq!(position(&root).0, 0);
    assert_eq!(field_value(&root, "#run-seed"), "7");
    assert_eq!(
        text_of(&root, ".details-notice"),
        "This link gives the seed \"x\", which is not a seed (a whole number from 0 to \
         18446744073709551615): the scenario runs with its own. The scenario opens at its start."
    );
    let root = mount_app_at("#scenario=mx-lookup&seed=1&step=3").await;
    yew::scheduler::flush().await;
    // A message written in that run's world is sent with its seed, and its link keeps it.
    choose_in_picker(&root, "write-message");
    yew::scheduler::flush().await;
    type_into(&root, "#compose-to", "bob@b.test");
    send_written_message(&root).await;
    assert!(address().await.ends_with("&seed=1&step=0"));
    assert_eq!(
        greetings_to_the_end(&root)
            .await
            .first()
            .map(String::as_str),
        Some("220 mx1")
    );
    // Another seed for the message's run: run a slice at a time, as when it was sent.
    type_into(&root, "#run-seed", "7");
    click_button(&root, ".details-seed", "Run with this seed");
    until("the message's run is shown again", || {
        !text_of(&root, ".details-notice").starts_with(MESSAGE_RUNNING)
            && field_value(&root, "#run-seed") == "7"
    })
    .await;
    assert_eq!(picker(&root).1, "written");
    let link = address().await;
    assert!(!link.contains("seed="), "{link}");
    assert_eq!(
        greetings_to_the_end(&root)
            .await
            .first()
            .map(String::as_str),
        Some("220 mx2")
    );
    // A scenario file of one's own, with its seed, likewise; chosen again, it keeps the seed
    // it was last run with.
    let (_, text) = smtp_lab::sim::library::SCENARIO_FILES
        .iter()
        .find(|(file, _)| *file == "mx-lookup.json")
        .expect("the built-in file");
    choose_file(&root, "our-mx.json", text.as_bytes());
    until("the file's run is shown", || picker(&root).1 == "own").await;
    assert_eq!(field_value(&root, "#run-seed"), "7");
    type_into(&root, "#run-seed", "1");
    click_button(&root, ".details-seed", "Run with this seed");
    until("the file's run is shown again", || {
        field_value(&root, "#run-seed") == "1"
    })
    .await;
    assert_eq!(picker(&root).1, "own");
    assert_eq!(
        greetings_to_the_end(&root).await,
        ["220 mx1", "220 mx1", "220 mx1"]
    );
    choose_in_picker(&root, "written");
    until("the message is shown", || picker(&root).1 == "written").await;
    choose_in_picker(&root, "own");
    until("the file is shown", || {
        picker(&root).1 == "own" && field_value(&root, "#run-seed") == "1"
    })
    .await;
    mount_app_at("#").await;
}

/// A receiving server that refuses the message after its data, as a content filter does:
/// the dialog offers it (and busy mailboxes) for that server, the reply at the final dot is
/// shown and explained as permanent, and the sender's server bounces the message.
#[wasm_bindgen_test]
async fn a_student_has_a_server_refuse_the_message_as_spam_and_sees_it_bounce() {
    let root = write_a_message_in("basic-delivery").await;
    let offered = texts_of(&root, "#compose-server-1 option");
    assert!(
        offered.contains(&"mailboxes busy (450 4.2.1)".to_string()),
        "{offered:?}"
    );
    assert!(root
        .query_selector("#compose-server-1-said")
        .unwrap()
        .is_none());
    choose_in_dialog(&root, "#compose-server-1", "refuses-as-spam");
    yew::scheduler::flush().await;
    // The list's short words, said whole under it, and read with it by a screen reader.
    let said = text_of(&root, "#compose-server-1-said");
    assert!(
        said.starts_with("mx.receiver.test refuses as spam"),
        "{said}"
    );
    assert_eq!(
        element(&root, "#compose-server-1").get_attribute("aria-describedby"),
        Some("compose-server-1-said".into())
    );
    send_written_message(&root).await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("mx.receiver.test refuses as spam, as a content filter does"),
        "{details}"
    );
    step_to(&root, "S: 554 5.7.1 Message refused").await;
    let explained = text_of(&root, ".region-details");
    assert!(explained.contains("a permanent failure"), "{explained}");
    assert!(
        explained
            .contains("(a reply fault, given by the scenario or chosen in the message dialog)"),
        "{explained}"
    );
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let last = text_of(&root, ".region-details");
    assert!(last.contains("bounced"), "{last}");
    mount_app_at("#").await;
}

/// A change to a server the message, as written, does not pass is said under its list to
/// change nothing, and no more so once a recipient there is written.
#[wasm_bindgen_test]
async fn a_change_off_the_messages_way_is_said_to_change_nothing_as_the_message_is_written() {
    let root = write_a_message_in("two-senders").await;
    // Dave's provider, when Alice writes to Bob.
    choose_in_dialog(&root, "#compose-server-1", "down-for-good");
    yew::scheduler::flush().await;
    let said = text_of(&root, "#compose-server-1-said");
    assert!(
        said.starts_with("mail.other.test is down")
            && said.ends_with("The message does not pass that way, so this changes nothing."),
        "{said}"
    );
    // Alice writes to Dave: his provider is now the MX on the way.
    type_into(&root, "#compose-to", "dave@other.test");
    yew::scheduler::flush().await;
    let said = text_of(&root, "#compose-server-1-said");
    assert!(
        said.starts_with("mail.other.test is down") && !said.contains("changes nothing"),
        "{said}"
    );
    mount_app_at("#").await;
}

/// A server of the world changed before sending: the run is that experiment, and its
/// introduction says what was changed.
#[wasm_bindgen_test]
async fn a_student_takes_a_server_down_before_sending_and_sees_the_message_bounce() {
    let root = write_a_message_in("basic-delivery").await;
    // One list per server of the world, each as the world has it.
    assert_eq!(
        texts_of(&root, ".compose-servers label"),
        [
            "mail.sender.test (the sender's server)",
            "mx.receiver.test (MX of receiver.test)"
        ]
    );
    assert_eq!(field_value(&root, "#compose-server-1"), "");
    choose_in_dialog(&root, "#compose-server-1", "down-for-good");
    yew::scheduler::flush().await;
    assert_eq!(field_value(&root, "#compose-server-1"), "down-for-good");
    send_written_message(&root).await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("mx.receiver.test is down from the message's submission on."),
        "{details}"
    );
    // The first failure is the server that does not answer; at the end, the bounce.
    assert!(press_shifted_key("ArrowRight"));
    yew::scheduler::flush().await;
    let step = text_of(&root, ".region-details");
    assert!(step.contains("refused"), "{step}");
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let last = text_of(&root, ".region-details");
    assert!(last.contains("bounced"), "{last}");
    // Written again from the run, the dialog shows the change as sent, and the user agent's
    // own server offers only what does something to it (the user agent never retries).
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert_eq!(field_value(&root, "#compose-server-1"), "down-for-good");
    assert_eq!(
        texts_of(&root, "#compose-server-0 option"),
        [
            "as this world has it",
            "down for good",
            "1 KiB at most (SIZE 1024)",
            "login refused (535 5.7.8)",
            "hangs at the final dot"
        ]
    );
    // Taken back, the change is undone: the server is up again, and the message delivered.
    choose_in_dialog(&root, "#compose-server-1", "");
    yew::scheduler::flush().await;
    send_written_message(&root).await;
    let details = text_of(&root, ".region-details");
    assert!(!details.contains("is down"), "{details}");
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let last = text_of(&root, ".region-details");
    assert!(!last.contains("bounced"), "{last}");
    assert!(last.contains("delivered"), "{last}");
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_written_message_too_long_for_a_scenario_file_is_not_offered_as_one() {
    // The user agent takes a body of up to 8 MiB; a scenario file may be 4 MiB. A body of
    // 4.55 MB makes a file that could not be opened again: the run is shown, its file is not
    // offered.
    let root = write_a_message_in("basic-delivery").await;
    let line = format!("{}\n", "x".repeat(69));
    type_into(&root, "#compose-body", &line.repeat(65_000));
    send_written_message(&root).await;
    let details = text_of(&root, ".region-details");
    assert!(
        details.contains("so it is not offered for download"),
        "{details}"
    );
    assert!(root
        .query_selector(".region-details a[download]")
        .unwrap()
        .is_none());
    // A short one is offered, as a file that opens.
    let root = write_a_message_in("basic-delivery").await;
    type_into(&root, "#compose-body", &line.repeat(10));
    send_written_message(&root).await;
    let link: web_sys::HtmlAnchorElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, ".region-details a[download]"));
    let href = link.href();
    let (_, encoded) = href.split_once(',').expect("a data: address");
    let text: String = js_sys::decode_uri_component(encoded).unwrap().into();
    assert!(smtp_lab::sim::scenario::Scenario::from_json(&text).is_ok());
    mount_app_at("#").await;
}

#[wasm_bindgen_test]
async fn a_student_sends_letters_beyond_ascii_as_8bit_text_or_as_quoted_printable() {
    let root = write_a_message_in("8bit-without-8bitmime").await;
    let eight_bit = || -> web_sys::HtmlInputElement {
        wasm_bindgen::JsCast::unchecked_into(element(&root, "#compose-8bit"))
    };
    // The scenario's message came as 8-bit text: it goes so again, and the server without
    // 8BITMIME never gets it.
    assert!(eight_bit().checked());
    send_written_message(&root).await;
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let last = text_of(&root, ".region-details");
    assert!(last.contains("bounced") && last.contains("5.6.3"), "{last}");
    // As quoted-printable, it is 7-bit and delivered.
    assert!(press_key("Home"));
    yew::scheduler::flush().await;
    click(&root, ".details-write");
    yew::scheduler::flush().await;
    assert!(eight_bit().checked());
    eight_bit().click();
    yew::scheduler::flush().await;
    assert!(!eight_bit().checked());
    send_written_message(&root).await;
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let last = text_of(&root, ".region-details");
    assert!(
        last.contains("delivered") && !last.contains("bounced"),
        "{last}"
    );
    mount_app_at("#").await;
}

/// Where the submission server offers DSN, the dialog asks for the delivery reports the
/// scenario's message asked for, but its ENVID; the student's choice goes on the wire and in
/// the link, and an ENVID that cannot be sent is refused in its field.
#[wasm_bindgen_test]
async fn a_student_chooses_the_delivery_reports_asked_for() {
    let root = write_a_message_in("basic-delivery").await;
    assert!(root.query_selector("#compose-notify").unwrap().is_none());
    click_button(&root, ".compose", "Cancel");
    yew::scheduler::flush().await;
    let root = write_a_message_in("dsn-on-request").await;
    assert_eq!(field_value(&root, "#compose-notify"), "SUCCESS,FAILURE");
    assert_eq!(field_value(&root, "#compose-ret"), "HDRS");
    assert_eq!(field_value(&root, "#compose-envid"), "");
    let orcpt: web_sys::HtmlInputElement =
        wasm_bindgen::JsCast::unchecked_into(element(&root, "#compose-orcpt"));
    assert!(orcpt.checked());
    type_into(&root, "#compose-to", "nobody@receiver.test");
    choose_in_dialog(&root, "#compose-notify", "NEVER");
    choose_in_dialog(&root, "#compose-ret", "FULL");
    type_into(&root, "#compose-envid", "caf\u{e9}");
    yew::scheduler::flush().await;
    click(&root, ".compose button.primary");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    assert!(text_of(&root, ".compose-problem").starts_with("Envelope id: ENVID holds"));
    type_into(&root, "#compose-envid", "class 1");
    send_written_message(&root).await;
    assert!(press_key("End"));
    yew::scheduler::flush().await;
    let link = address().await;
    assert!(link.contains("&dsn=NEVER;FULL;class%201;orcpt&"), "{link}");
    let last = text_of(&root, ".region-details");
    assert!(
        last.contains("sends no notice, as the sender asked (NOTIFY)"),
        "{last}"
    );
    mount_app_at("#").await;
}

/// The app showing the built-in scenario `name`, with the dialog for writing a message in its
/// world open.
async fn write_a_message_in(name: &str) -> Element {
    let root = mount_app_at(&format!("#scenario={name}")).await;
    yew::scheduler::flush().await;
    choose_in_picker(&root, "write-message");
    yew::scheduler::flush().await;
    assert!(compose_is_open(&root));
    root
}

/// Presses the dialog's Send; the dialog closes, and the message's run is shown once made (a
/// slice at a time, of which a short run takes one).
async fn send_written_message(root: &Element) {
    click(root, ".compose button.primary");
    yew::scheduler::flush().await;
    assert!(!compose_is_open(root));
    until("the message's run is shown", || {
        !text_of(root, ".details-notice").starts_with(MESSAGE_RUNNING)
            && picker(root).1 == "written"
    })
    .await;
}

/// What the page says while a message written is being run.
const MESSAGE_RUNNING: &str = "Running the delivery of your message";

/// Chooses `value` in the dialog's list `selector` finds, as a user would.
fn choose_in_dialog(root: &Element, selector: &str, value: &str) {
    let select: web_sys::HtmlSelectElement =
        wasm_bindgen::JsCast::unchecked_into(element(root, selector));
    select.set_value(value);
    select
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
}

/// Clicks the button under `within` whose text is `text`.
fn click_button(root: &Element, within: &str, text: &str) {
    let buttons = root
        .query_selector_all(&format!("{within} button"))
        .unwrap();
    let button = (0..buttons.length())
        .filter_map(|index| buttons.item(index))
        .find(|button| button.text_content().as_deref() == Some(text))
        .expect("the button");
    wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlElement>(button).click();
}

/// The id of the element with the focus.
fn focused_id() -> String {
    gloo::utils::document()
        .active_element()
        .map(|element| element.id())
        .unwrap_or_default()
}

/// Whether the field of `id` is marked as invalid, described by the problem shown, and has
/// the focus.
fn assert_invalid_and_focused(root: &Element, id: &str) {
    let field = element(root, &format!("#{id}"));
    assert_eq!(field.get_attribute("aria-invalid").as_deref(), Some("true"));
    assert_eq!(
        field.get_attribute("aria-describedby").as_deref(),
        Some("compose-problem")
    );
    assert!(root.query_selector("#compose-problem").unwrap().is_some());
    assert_eq!(focused_id(), id);
}

/// Each built-in scenario's golden trace (tests/golden, which the native `sim_golden` test
/// checks), by name: the names are in tests/golden/names.rs. The file names are read beside
/// that list, where its names were written.
macro_rules! golden_traces {
    ($($name:literal,)*) => {
        &[$(($name, include_str!(concat!($name, ".txt")))),*]
    };
}
const GOLDEN_TRACES: &[(&str, &str)] = include!("golden/names.rs");

/// The simulation compiled to wasm, as the page runs it, gives every built-in scenario the
/// very trace and outcome that the native build gives and `smtp-lab run` prints: a student's
/// run in the browser is the same run as on the command line, byte for byte.
#[wasm_bindgen_test]
fn every_built_in_runs_in_the_browser_as_its_golden_trace() {
    let built_ins: Vec<_> = smtp_lab::sim::library::builtin()
        .into_iter()
        .map(|entry| entry.unwrap_or_else(|(file, errors)| panic!("{file}: {errors}")))
        .collect();
    assert_eq!(
        built_ins.len(),
        GOLDEN_TRACES.len(),
        "every built-in is named in tests/golden/names.rs"
    );
    for scenario in built_ins {
        let golden = GOLDEN_TRACES
            .iter()
            .find(|(name, _)| *name == scenario.name)
            .map(|(_, text)| *text)
            .unwrap_or_else(|| panic!("{} is not named in tests/golden/names.rs", scenario.name));
        let result = smtp_lab::sim::run(&scenario, scenario.seed);
        assert!(result.conservation_problems.is_empty(), "{}", scenario.name);
        let text = sim_common::golden_text(&result);
        assert!(
            text == golden,
            "{}: the browser's trace differs from tests/golden\n{}",
            scenario.name,
            sim_common::first_difference(golden, &text)
        );
    }
}
