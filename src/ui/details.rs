//! Details of the current step: what the replies in it mean and why the server sent them
//! (with the RFC section), and the state of the world at this moment.

use super::app::{run_identity, same_run, Loaded, Source};
use super::conversation::{line_classes, split_line, words_for};
use super::focus_on_page;
use crate::mail::glossary::{field_purpose, protocol_purpose};
use crate::mail::outline::{counted, Hop, Outline, OutlinePart, FIELDS_SHOWN};
use crate::sim::carried::{self, Carried, Earlier};
use crate::sim::library;
use crate::sim::link;
use crate::sim::notes::{StepNote, STATE_MACHINE_SENTENCE};
use crate::sim::run_text;
use crate::sim::scenario::{file_too_large, SCENARIO_MAX_OCTETS};
use crate::sim::steps::{
    bare_line_endings, lines_repeated, next_failure, previous_failure, refusal_lines, wire_lines,
    LineEnding, Refusal, Step, StepExplanation,
};
use crate::sim::trace::{data_summary_lines, format_time, Event, TextRenderer, TraceEvent};
use gloo::timers::callback::Timeout;
use std::borrow::Cow;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties)]
pub struct DetailsProps {
    pub loaded: Option<Rc<Loaded>>,
    pub cursor: usize,
    pub error: Option<String>,
    /// Whether `error` is about a scenario file: another can be opened from here.
    #[prop_or_default]
    pub file_error: bool,
    /// How many errors were shown so far: the same error shown again is said again.
    #[prop_or_default]
    pub errors_shown: u32,
    /// Opens the file dialog for a scenario file. Not compared: it only ever does that.
    #[prop_or_default]
    pub on_open_file: Callback<()>,
    /// Opens the dialog for writing a message in the world shown. Not compared: it only ever
    /// does that.
    #[prop_or_default]
    pub on_write: Callback<()>,
    /// Goes to the next failure (true) or the one before (false). Not compared: it only ever
    /// does that.
    #[prop_or_default]
    pub on_failure: Callback<bool>,
    /// Runs the scenario shown again with this seed. Not compared: it only ever does that.
    #[prop_or_default]
    pub on_seed: Callback<u64>,
    /// What a link left out, said over the details.
    #[prop_or_default]
    pub notice: Option<String>,
    /// How many notices the failure keys gave: the same one given again is said again.
    #[prop_or_default]
    pub failure_key_notices: u32,
    /// Whether the picker, where the scenario was just chosen, said its title.
    #[prop_or_default]
    pub title_told_by_picker: bool,
    /// How far the run of a scenario file has got, under the notice that says it runs.
    #[prop_or_default]
    pub progress: Option<String>,
    /// While playing, the step is not read out: steps come faster than speech.
    #[prop_or_default]
    pub playing: bool,
}

impl PartialEq for DetailsProps {
    fn eq(&self, other: &Self) -> bool {
        self.cursor == other.cursor
            && self.error == other.error
            && self.file_error == other.file_error
            && self.errors_shown == other.errors_shown
            && self.failure_key_notices == other.failure_key_notices
            && self.title_told_by_picker == other.title_told_by_picker
            && self.notice == other.notice
            && self.progress == other.progress
            && self.playing == other.playing
            && same_run(&self.loaded, &other.loaded)
    }
}

#[function_component(Details)]
pub fn details(props: &DetailsProps) -> Html {
    let body = use_node_ref();
    // Opened once, the bytes stay open from step to step, so that a class can follow them.
    let opened = Opened {
        bytes: use_state_eq(|| false),
        outline: use_state_eq(|| false),
        glossary: use_state_eq(|| false),
    };
    // The last element in the details that had the keyboard focus: a step without bytes
    // removes their disclosure, and the focus on it would fall to the page.
    let last_focused = use_mut_ref(|| None::<web_sys::Element>);
    // The run shown (by its address) and the step it was shown at, until the student moves.
    let arrival = use_mut_ref(|| (0usize, None::<usize>));
    // Each step's details start at their top, wherever the last step's were scrolled to.
    {
        let body = body.clone();
        let last_focused = Rc::clone(&last_focused);
        use_effect_with((props.cursor, run_identity(&props.loaded)), move |_| {
            if let Some(element) = body.cast::<web_sys::HtmlElement>() {
                element.set_scroll_top(0);
                // The seed's form stays from run to run with the focus in it (its field, or a
                // button pressed): it is brought back into sight, or the class would go on
                // from a form it cannot see; the focused control last, in case the form is
                // taller than the box.
                let active = gloo::utils::document().active_element();
                let form = active
                    .as_ref()
                    .and_then(|active| active.closest(".details-seed").ok().flatten());
                if let (Some(form), Some(active)) = (form, active) {
                    let options = web_sys::ScrollIntoViewOptions::new();
                    options.set_block(web_sys::ScrollLogicalPosition::Nearest);
                    form.scroll_into_view_with_scroll_into_view_options(&options);
                    active.scroll_into_view_with_scroll_into_view_options(&options);
                }
                let focused = last_focused.borrow().clone();
                let removed = focused
                    .as_ref()
                    .is_some_and(|focused| !focused.is_connected());
                if removed && focus_on_page() {
                    // A failure button that is gone (there is no failure further that way)
                    // passes the focus to the other way's, as the player's buttons do.
                    let failure_button = focused
                        .as_ref()
                        .and_then(|focused| focused.get_attribute("data-forward"))
                        .and_then(|_| element.query_selector(".details-failures button").ok())
                        .flatten()
                        .and_then(|button| button.dyn_into::<web_sys::HtmlElement>().ok());
                    let options = web_sys::FocusOptions::new();
                    options.set_prevent_scroll(true);
                    let _ = failure_button
                        .unwrap_or(element)
                        .focus_with_options(&options);
                }
            }
        });
    }
    let on_focus_in = {
        let last_focused = Rc::clone(&last_focused);
        Callback::from(move |event: FocusEvent| {
            *last_focused.borrow_mut() = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok());
        })
    };
    // What a link left out, over whatever the details show. Under it, how far a file's run
    // has got: outside the live region, which would otherwise read out each of the many
    // changes.
    let notice = html! {
        <>
            <Notice text={props.notice.clone()} said_for={props.failure_key_notices} />
            <p class="details-progress" hidden={props.progress.is_none()}>
                { props.progress.clone().unwrap_or_default() }
            </p>
        </>
    };
    let open_file = open_file_button(&props.on_open_file);
    if let Some(error) = &props.error {
        // A new element for each error (by its key), so that the same error shown again is
        // said again; the notice stays the element it was, or its text would not be said.
        // What is wrong, then each of a file's problems as an item of a list: many, and long,
        // they would otherwise run together.
        let mut lines = error.lines();
        let summary = lines.next().unwrap_or_default().to_string();
        let problems: Vec<Html> = lines
            .map(|problem| html! { <li>{ problem.to_string() }</li> })
            .collect();
        let alert = html! {
            <div key={props.errors_shown.to_string()} class="details-error" role="alert">
                <p>{ summary }</p>
                if !problems.is_empty() {
                    <ul class="details-problems">{ for problems }</ul>
                }
            </div>
        };
        // In a box that scrolls, and that the keyboard can scroll (WCAG 2.1.1): a file may
        // have many problems. Three parts, the notice, the steps' live region and the box, as
        // every view of the details has: Yew matches the parts of lists without keys from
        // their ends, and the live regions must stay the elements they were.
        return html! {
            <>
                { notice }
                // The steps' live region, kept in the page (silent) for the next step.
                <Announcer text={String::new()} said_for={(0, 0)} />
                <div class="details-body" tabindex="0" role="group" aria-label="What is wrong">
                    { for std::iter::once(alert) }
                    // The run shown before stays beside the error: said to be that one, so
                    // that its conversation is not taken for the file's.
                    if let Some(loaded) = &props.loaded {
                        <p class="details-hint">
                            { format!("Still shown beside this is the scenario opened before: {}.", loaded.scenario.title) }
                        </p>
                    }
                    if props.file_error {
                        <p class="details-hint">{ open_file }</p>
                    } else {
                        // A broken link, or a built-in scenario that cannot be read: the
                        // way on is another scenario, the picker's or one's own.
                        <p class="details-hint">
                            { "Choose a scenario with the Scenario picker, or open a scenario file of your own: " }{ open_file }
                        </p>
                    }
                </div>
            </>
        };
    }
    let Some(loaded) = &props.loaded else {
        return html! {
            <>
                { notice }
                // The parts of every view of the details (see above).
                <Announcer text={String::new()} said_for={(0, 0)} />
                <div>
                    <p class="details-text">
                        { "Each step's details appear here: what a reply means, why the server sent it, and the RFC section that defines it." }
                    </p>
                    <p class="details-hint">
                        { "A scenario of your own: " }{ open_file }{ ", or drop its file on the page." }
                    </p>
                </div>
            </>
        };
    };
    // Whether the run shown is still at the step it was shown at first: until the student
    // moves, what is said there starts with the scenario's title.
    let arrived_at_step = {
        let identity = run_identity(&props.loaded);
        let mut arrival = arrival.borrow_mut();
        if arrival.0 != identity {
            *arrival = (identity, Some(props.cursor));
        } else if arrival.1 != Some(props.cursor) {
            arrival.1 = None;
        }
        arrival.1 == Some(props.cursor)
    };
    // One box for the scenario's introduction and for every step, so that its focus
    // handling and its live region are there from the start (a live region made together
    // with its first text is not read out).
    let (label, spoken, content) = match loaded.step_at(props.cursor) {
        None => (
            "About this scenario",
            // A scenario's start is said by its title: the focus goes to Play (or stays where
            // it was, after the browser's Back), and a screen reader would otherwise say only
            // that. Not when the picker, where it was just chosen, has said it.
            match &loaded.source {
                _ if props.playing => String::new(),
                Source::File(file) => format!("{}, from your file {file}.", loaded.scenario.title),
                Source::Written => format!("{}.", loaded.scenario.title),
                Source::Library if props.title_told_by_picker => String::new(),
                Source::Library => format!("{}.", loaded.scenario.title),
            },
            introduction(
                loaded,
                open_file,
                write_button(&props.on_write),
                html! { <RunTextButton loaded={Rc::clone(loaded)} /> },
                failure_jumps(loaded, props.cursor, &props.on_failure),
                seed_control(loaded, &props.on_seed),
            ),
        ),
        Some(step) => {
            let lines = step.lines(loaded.viewer.trace());
            // Told with the rest of the run (a give-up's looks back to its queueing).
            let note = step.noted(loaded.viewer.trace());
            let outcomes = outcomes_at_the_check(loaded, step);
            let spoken = if props.playing {
                String::new()
            } else {
                let commands = step.commands_answered(loaded.viewer.trace());
                let chunk = step.chunk_answered(loaded.viewer.trace());
                let said = announcement(
                    step,
                    &lines,
                    note.as_ref(),
                    Answering {
                        commands: commands.as_deref(),
                        chunk: chunk.as_ref(),
                    },
                    outcomes.as_deref(),
                );
                // Shown at a step of its own (the browser's Back, a link): which scenario it
                // is, first.
                if arrived_at_step && !props.title_told_by_picker {
                    format!("{}. {said}", loaded.scenario.title)
                } else {
                    said
                }
            };
            (
                "Details of this step",
                spoken,
                step_details(
                    loaded,
                    step,
                    &lines,
                    note,
                    &opened,
                    failure_jumps(loaded, props.cursor, &props.on_failure),
                    outcomes,
                ),
            )
        }
    };
    html! {
        <>
            { notice }
            // What a screen reader says at each step (the rest is there to read on demand):
            // beside the details' box, not in it, the same element in every view of the
            // details, so that it is in the page before a step's words come, and is not met
            // again among the details.
            <Announcer text={spoken} said_for={(run_identity(&props.loaded), props.cursor)} />
            // Focusable, so that the keyboard can scroll it (WCAG 2.1.1).
            <div class="details-body" ref={body} tabindex="0" role="group" aria-label={label}
                onfocusin={on_focus_in}>
                { content }
            </div>
        </>
    }
}

/// How long what a step says stays in its live region: long enough for a screen reader to
/// have taken it (it reads a change when it happens), short enough not to be found again by
/// a reader moving through the page, who would hear the step said twice.
pub const ANNOUNCEMENT_KEPT_MS: u32 = 2_000;

/// How long the same words said again are taken out of their live region before they are
/// put back: a screen reader says a live region when its content changes, so words already
/// there would not be said again (as Angular CDK's LiveAnnouncer does, for the same reason).
pub const SAID_AGAIN_AFTER_MS: u32 = 100;

/// What a live region shows of `text`, said for `said_for` (a step, a key's press): the words
/// as they are given, but the same words said for something else (two steps alike, a key
/// pressed twice) are taken out for [`SAID_AGAIN_AFTER_MS`] and put back; with `kept_ms`,
/// emptied that long after they are put.
#[hook]
fn use_said(text: &str, said_for: (usize, usize), kept_ms: Option<u32>) -> String {
    // The words last put in the region, what for, and how many puts that made; and the put
    // whose words were emptied out of it once kept.
    let last_put = use_mut_ref(|| None::<((usize, usize), String, u64)>);
    let emptied = use_state_eq(|| None::<u64>);
    let redraw = use_force_update();
    let (same_words_again, emptied_now, put_number) = {
        let last = last_put.borrow();
        let same_words = last
            .as_ref()
            .filter(|(_, words, _)| !text.is_empty() && words == text);
        (
            same_words.is_some_and(|(put_for, _, _)| *put_for != said_for),
            same_words
                .is_some_and(|(put_for, _, put)| *put_for == said_for && *emptied == Some(*put)),
            last.as_ref().map_or(0, |(_, _, put)| put + 1),
        )
    };
    {
        let last_put = last_put.clone();
        let emptied = emptied.clone();
        use_effect_with((said_for, text.to_string()), move |(said_for, text)| {
            let put = {
                let said = (*said_for, text.clone(), put_number);
                move || *last_put.borrow_mut() = Some(said)
            };
            let (put_back, delay_ms) = if same_words_again {
                let put_back = Timeout::new(SAID_AGAIN_AFTER_MS, move || {
                    put();
                    redraw.force_update();
                });
                (Some(put_back), SAID_AGAIN_AFTER_MS)
            } else {
                put();
                (None, 0)
            };
            let clear = kept_ms.map(|kept_ms| {
                Timeout::new(delay_ms + kept_ms, move || emptied.set(Some(put_number)))
            });
            // Newer words cancel what was still to be done for these (a dropped timeout does
            // not fire).
            move || drop((put_back, clear))
        });
    }
    if same_words_again || emptied_now {
        String::new()
    } else {
        text.to_string()
    }
}

#[derive(Properties, PartialEq)]
struct AnnouncerProps {
    text: String,
    /// What the text is said for (the run, by its address, and the step's cursor): the same
    /// words for another step, or another run, are said again.
    said_for: (usize, usize),
}

/// A live region that says `text` for each step it is given for, then empties itself after
/// `ANNOUNCEMENT_KEPT_MS`.
#[function_component(Announcer)]
fn announcer(props: &AnnouncerProps) -> Html {
    let said = use_said(&props.text, props.said_for, Some(ANNOUNCEMENT_KEPT_MS));
    html! {
        <p class="visually-hidden" aria-live="polite" aria-atomic="true">{ said }</p>
    }
}

#[derive(Properties, PartialEq)]
struct NoticeProps {
    text: Option<String>,
    /// How many notices the failure keys gave: the same notice given again is said again.
    said_for: u32,
}

/// What a link left out, or what a failure key found, over whatever the details show: a live
/// region that is there before its text, in every case, so that the text is read out.
#[function_component(Notice)]
fn notice(props: &NoticeProps) -> Html {
    let text = props.text.clone().unwrap_or_default();
    let said = use_said(&text, (0, props.said_for as usize), None);
    html! {
        <p class={classes!("details-notice", said.is_empty().then_some("details-notice-empty"))}
            role="status">{ said }</p>
    }
}

/// Buttons to the failures before and after `cursor` (refusals, connections that failed, DNS
/// answers that are none...), where a scenario's lesson is: a student need not step through
/// every command to find them. None when there are none.
fn failure_jumps(loaded: &Loaded, cursor: usize, on_failure: &Callback<bool>) -> Html {
    let before = previous_failure(&loaded.failures, cursor);
    let after = next_failure(&loaded.failures, cursor);
    if before.is_none() && after.is_none() {
        return Html::default();
    }
    let first = cursor == 0;
    let button = |forward: bool, position: usize| {
        let onclick = on_failure.reform(move |_: MouseEvent| forward);
        let words = match (forward, first) {
            (true, true) => format!("First failure: step {position}"),
            (true, false) => format!("Next failure: step {position}"),
            (false, _) => format!("Previous failure: step {position}"),
        };
        // The arrows are drawn, not said.
        html! {
            <button type="button" key={if forward { "next" } else { "previous" }} {onclick}
                data-forward={forward.to_string()}
                aria-keyshortcuts={if forward { "Shift+ArrowRight" } else { "Shift+ArrowLeft" }}>
                if !forward {
                    // No-break spaces: a flex item's edge spaces are dropped.
                    <span aria-hidden="true">{ "◀\u{a0}" }</span>
                }
                { words }
                if forward {
                    <span aria-hidden="true">{ "\u{a0}▶" }</span>
                }
            </button>
        }
    };
    html! {
        <nav class="details-failures" aria-label="Failures in this run">
            if let Some(position) = before {
                { button(false, position) }
            }
            if let Some(position) = after {
                { button(true, position) }
            }
        </nav>
    }
}

/// The button that opens the file dialog for a scenario file (as the picker's last entry
/// does, where a browser lets a list's choice open a dialog).
fn open_file_button(on_open_file: &Callback<()>) -> Html {
    let onclick = on_open_file.reform(|_: MouseEvent| ());
    html! {
        <button type="button" class="details-open-file" {onclick}>{ "Open a scenario file…" }</button>
    }
}

/// The button that opens the dialog for writing a message in the scenario shown (the
/// picker's last entry opens it too).
fn write_button(on_write: &Callback<()>) -> Html {
    let onclick = on_write.reform(|_: MouseEvent| ());
    html! {
        <button type="button" class="details-write" {onclick}>{ "Write a message…" }</button>
    }
}

/// The id of the seed control's text field.
pub const SEED_INPUT_ID: &str = "run-seed";

/// The id of the sentence that says why what was typed for a seed is none.
const SEED_PROBLEM_ID: &str = "run-seed-problem";

/// Where the world has MX hosts of equal preference, which a sender tries in an order drawn
/// at random (RFC 5321 5.1): the run's seed, and a way to run it with another, typed or the
/// next one, to see the order drawn otherwise. Elsewhere nothing: no other choice in a run
/// is drawn, and another seed would only number its Message-IDs otherwise.
fn seed_control(loaded: &Loaded, on_seed: &Callback<u64>) -> Html {
    let scenario = &loaded.scenario;
    if !scenario.dns.draws_among_equal_mx() {
        return Html::default();
    }
    let run = std::ptr::from_ref(loaded) as usize;
    html! {
        <SeedControl {run} seed={scenario.seed} on_seed={on_seed.clone()} />
    }
}

/// Compared whole, the callback too: it holds the state of the page it was made with, and
/// a form drawn again with the details keeps the newest.
#[derive(Properties, PartialEq)]
struct SeedControlProps {
    /// The run shown, by its address (see [`run_identity`]).
    run: usize,
    seed: u64,
    on_seed: Callback<u64>,
}

/// The seed of the run shown, a field to type another, and a button for the next one. What
/// is no seed is said under the field, which keeps it and takes the focus to be put right.
#[function_component(SeedControl)]
fn seed_control_form(props: &SeedControlProps) -> Html {
    let seed = props.seed;
    let typed = use_state(|| seed.to_string());
    let problem = use_state(|| None::<String>);
    // The seed of the run shown asked for again: the run would be the same one, so it is
    // said rather than made again in silence.
    let asked_again = use_state(|| false);
    let field = use_node_ref();
    // What was typed for the run before goes with it. The form stays, and the focus in it:
    // a class trying seed after seed types on.
    {
        let typed = typed.clone();
        let problem = problem.clone();
        let asked_again = asked_again.clone();
        use_effect_with((props.run, seed), move |_| {
            typed.set(seed.to_string());
            problem.set(None);
            asked_again.set(false);
        });
    }
    let oninput = {
        let typed = typed.clone();
        let problem = problem.clone();
        let asked_again = asked_again.clone();
        Callback::from(move |event: InputEvent| {
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            typed.set(input.value());
            problem.set(None);
            asked_again.set(false);
        })
    };
    let onsubmit = {
        let typed = typed.clone();
        let problem = problem.clone();
        let asked_again = asked_again.clone();
        let field = field.clone();
        let on_seed = props.on_seed.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            match read_seed(&typed) {
                Ok(typed_seed) if typed_seed == seed => asked_again.set(true),
                Ok(seed) => on_seed.emit(seed),
                Err(why) => {
                    problem.set(Some(why));
                    // Where it is to be put right (the button pressed had the focus).
                    if let Some(field) = field.cast::<web_sys::HtmlElement>() {
                        let _ = field.focus();
                    }
                }
            }
        })
    };
    let next = props
        .on_seed
        .reform(move |_: MouseEvent| seed.wrapping_add(1));
    html! {
        <form class="details-seed" {onsubmit}>
            // A live region, so that a run made again with another seed is said: the focus
            // stays in the form, and nothing else the screen reader hears changes.
            <p class="details-hint" role="status">{ format!(
                "MX hosts of equal preference are tried in an order drawn at random (RFC 5321 \
                 5.1); this run draws from the seed {seed}. Another seed may draw another order, \
                 and the same seed always the same.{}",
                if *asked_again { SAME_SEED_AGAIN } else { "" },
            ) }</p>
            <label for={SEED_INPUT_ID}>{ "Seed" }</label>
            <input id={SEED_INPUT_ID} ref={field} type="text" inputmode="numeric" autocomplete="off"
                spellcheck="false" value={(*typed).clone()} {oninput}
                aria-invalid={problem.is_some().then_some("true")}
                aria-describedby={problem.is_some().then_some(SEED_PROBLEM_ID)} />
            <button type="submit">{ "Run with this seed" }</button>
            <button type="button" onclick={next}>{ "Try the next seed" }</button>
            if let Some(why) = &*problem {
                <p id={SEED_PROBLEM_ID} class="details-seed-problem" role="alert">{ why.clone() }</p>
            }
        </form>
    }
}

/// Said after the seed sentence when the seed of the run shown is asked for again.
const SAME_SEED_AGAIN: &str = " That is this run's seed already, so this is the run it makes.";

/// The seed typed in the seed field, or why it is none.
pub fn read_seed(typed: &str) -> Result<u64, String> {
    let typed = typed.trim();
    link::read_seed(typed).ok_or_else(|| {
        let what = if typed.is_empty() {
            "The field is empty".to_string()
        } else {
            format!("\u{201c}{typed}\u{201d} is not a seed")
        };
        format!("{what}: a seed is a whole number from 0 to {}.", u64::MAX)
    })
}

/// Before the first step: the scenario's title and teaching text, and how to change it.
fn introduction(
    loaded: &Loaded,
    open_file: Html,
    write: Html,
    run_text: Html,
    jumps: Html,
    seed: Html,
) -> Html {
    let scenario = &loaded.scenario;
    html! {
        <>
            <h3 class="details-heading">{ scenario.title.clone() }</h3>
            if let Source::File(file) = &loaded.source {
                <p class="details-hint">{ format!("From your file {file}.") }</p>
            }
            <p class="details-text">{ scenario.teaching.clone() }</p>
            { seed }
            <p class="details-hint">{ format!(
                "{} steps. Press Play or step forward; on a keyboard, → and ← step, Space plays and pauses, Home and End jump{}",
                loaded.steps.len(),
                if loaded.failures.is_empty() { ". Nothing fails in this scenario." } else { ", Shift with → and ← goes to the next and previous failure." },
            ) }</p>
            { jumps }
            if let Some((file, text)) = builtin_file(loaded) {
                <p class="details-hint">
                    { "To change it: " }
                    <a href={data_url(text)} download={file}>{ format!("download its file, {file}") }</a>
                    { ", edit it, and open it: " }{ open_file }
                </p>
            } else if loaded.source == Source::Written {
                { written_file_hint(scenario, open_file) }
                <p class="details-hint">
                    { "To share it: the address bar holds a link to it, when it was written in a built-in scenario's world and is short enough for one." }
                </p>
            } else {
                <p class="details-hint">{ "Changed the file? Open it again: " }{ open_file }</p>
            }
            <p class="details-hint">{ "Your own message, in this world: " }{ write }</p>
            { run_text }
        </>
    }
}

/// The events of a run's text stop at this size, its outcomes still all written: a run of a
/// scenario file may reach hundreds of megabytes of trace, whose text the page could not
/// hold twice.
const RUN_TEXT_EVENTS_OCTETS_MAX: usize = 32 * 1024 * 1024;

/// How long the page keeps a downloaded run text's address: a browser reads the file after
/// the click that asked for it, not in it.
const RUN_TEXT_URL_KEPT_MS: u32 = 60_000;

#[derive(Properties)]
struct RunTextButtonProps {
    loaded: Rc<Loaded>,
}

impl PartialEq for RunTextButtonProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.loaded, &other.loaded)
    }
}

/// The button that downloads the run as text, as `smtp-lab run` prints it, with what it is
/// for, and what it did said under it (a download the browser starts says nothing to a
/// screen reader). The text is made when the button is pressed, not at each step.
#[function_component(RunTextButton)]
fn run_text_button(props: &RunTextButtonProps) -> Html {
    let presses = use_state_eq(|| (0u32, String::new()));
    let onclick = {
        let loaded = Rc::clone(&props.loaded);
        let presses = presses.clone();
        Callback::from(move |_: MouseEvent| {
            let words = download_run_text(&loaded);
            presses.set((presses.0.wrapping_add(1), words));
        })
    };
    let said = use_said(&presses.1, (0, presses.0 as usize), None);
    html! {
        <p class="details-hint">
            { "The whole run as text, a line per event as smtp-lab run prints it, for a handout or to compare two runs: " }
            <button type="button" class="details-run-text" {onclick}>
                { "Download the run as text" }
            </button>
            { " " }
            <span role="status">{ said }</span>
        </p>
    }
}

/// Saves the run shown as `NAME-seed-SEED.txt`, through an address for its text that the page
/// keeps for [`RUN_TEXT_URL_KEPT_MS`]; says what it handed to the browser.
fn download_run_text(loaded: &Loaded) -> String {
    let trace = loaded.viewer.trace();
    let mut text = String::new();
    let mut cut = false;
    run_text::write_run(&loaded.scenario, trace, TextRenderer::default(), |chunk| {
        cut = text.len() + chunk.len() > RUN_TEXT_EVENTS_OCTETS_MAX;
        if !cut {
            text.push_str(chunk);
        }
        !cut
    });
    if cut {
        text.push_str(&format!(
            "... (the events stop here, at {} MiB: `smtp-lab run` prints them all for the \
             scenario's file)\n",
            RUN_TEXT_EVENTS_OCTETS_MAX / (1024 * 1024)
        ));
    }
    run_text::write_outcomes(trace, |chunk| {
        text.push_str(chunk);
        true
    });
    let file = run_text::file_name(&loaded.scenario.name, loaded.scenario.seed);
    let blob =
        gloo::file::Blob::new_with_options(text.as_bytes(), Some("text/plain;charset=utf-8"));
    let address = gloo::file::ObjectUrl::from(blob);
    let anchor = gloo::utils::document()
        .create_element("a")
        .ok()
        .and_then(|anchor| anchor.dyn_into::<web_sys::HtmlElement>().ok());
    let Some(anchor) = anchor else {
        return "The page could not make the file.".into();
    };
    let _ = anchor.set_attribute("href", &address);
    let _ = anchor.set_attribute("download", &file);
    anchor.click();
    Timeout::new(RUN_TEXT_URL_KEPT_MS, move || drop(address)).forget();
    let size = format!("{} KiB", text.len().div_ceil(1024));
    if cut {
        format!(
            "Downloading {file} ({size}): its events stop at {} MiB; every outcome is there.",
            RUN_TEXT_EVENTS_OCTETS_MAX / (1024 * 1024)
        )
    } else {
        format!("Downloading {file} ({size}).")
    }
}

/// How to keep a written message's run: its scenario file to download, unless the file
/// would be larger than a scenario file may be, which could not be opened again (a long
/// body: the user agent takes bodies twice that size).
fn written_file_hint(scenario: &crate::sim::Scenario, open_file: Html) -> Html {
    let json = scenario_json(scenario);
    if json.len() > SCENARIO_MAX_OCTETS {
        return html! {
            <p class="details-hint">{ format!(
                "Its scenario file, of {} octets, {}, so it is not offered for download: it \
                 could not be opened again. A shorter message makes one.",
                json.len(),
                file_too_large()
            ) }</p>
        };
    }
    html! {
        <p class="details-hint">
            { "To keep it, or change more than the message: " }
            <a href={data_url(&json)} download={format!("{}.json", scenario.name)}>
                { "download it as a scenario file" }
            </a>
            { ", edit it, and open it: " }{ open_file }
        </p>
    }
}

/// The file of the built-in scenario shown, by its name and text; none for a file of the
/// user's own or a written message.
fn builtin_file(loaded: &Loaded) -> Option<(&'static str, &'static str)> {
    if loaded.source != Source::Library {
        return None;
    }
    library::file(&loaded.scenario.name)
}

/// `scenario` as the text of a scenario file.
fn scenario_json(scenario: &crate::sim::Scenario) -> String {
    serde_json::to_string_pretty(scenario).unwrap_or_default()
}

/// `json` as a `data:` address, which a link downloads without a server.
fn data_url(json: &str) -> String {
    let encoded: String = js_sys::encode_uri_component(json).into();
    format!("data:application/json;charset=utf-8,{encoded}")
}

/// A step: its time, lines (on phones; `lines`, see [`Step::lines`]), explanations, bytes and
/// the state of the world after it; at the run's last step, every recipient's `outcomes` and
/// the run as text to download.
fn step_details(
    loaded: &Rc<Loaded>,
    step: &Step,
    lines: &[String],
    note: Option<StepNote>,
    opened: &Opened,
    jumps: Html,
    outcomes: Option<Vec<(String, &'static str)>>,
) -> Html {
    let view = loaded.viewer.view_at(step.event + 1);
    let commands = step.commands_answered(loaded.viewer.trace());
    let chunk = step.chunk_answered(loaded.viewer.trace());
    let sessions: Vec<String> = view
        .connections
        .iter()
        .filter(|(_, c)| c.open)
        .map(|(conn, c)| c.line(*conn))
        .collect();
    let run_end_ms = loaded
        .viewer
        .trace()
        .events
        .last()
        .map_or(0, |event| event.time_ms);
    let queued: Vec<String> = view
        .queues
        .iter()
        .flat_map(|(host, entries)| {
            entries
                .iter()
                .map(move |(entry, e)| e.line(host, *entry, run_end_ms))
        })
        .collect();
    let mailboxes: Vec<String> = view
        .mailbox_summaries(&loaded.scenario)
        .iter()
        .map(|mailbox| mailbox.line())
        .collect();
    // `none`: what an empty list says.
    let list = |title: &'static str, items: Vec<String>, none: &'static str| {
        html! {
            <div class="details-state">
                // h3, as the explanations' headings: the next level under the region's h2.
                <h3>{ title }</h3>
                if items.is_empty() {
                    <p class="details-none">{ none }</p>
                } else {
                    <ul>{ for items.into_iter().map(|item| html! { <li>{ item }</li> }) }</ul>
                }
            </div>
        }
    };
    html! {
        <>
            <p class="details-time" title="days+hours:minutes:seconds.milliseconds since the run began">
                { format!("Simulated time {}", format_time(step.time_ms)) }
            </p>
            // At the top, where each step's details start: a button pressed stays in sight.
            { jumps }
            // At the end, where each message went comes first: it is what a student looks
            // for there, and the check's explanation can wait below it.
            if let Some(outcomes) = outcomes {
                if outcomes.len() <= OUTCOMES_LISTED_AT_ONCE {
                    {
                        list(
                            "Outcomes",
                            outcomes.into_iter().map(|(line, _)| line).collect(),
                            // A scripted client's mail is no user agent's message, and has
                            // no outcome: "none" alone would say that nothing happened to it.
                            if loaded.scenario.raw_sessions.is_empty() {
                                "none"
                            } else {
                                NO_OUTCOME_FOR_SCRIPTED_MAIL
                            },
                        )
                    }
                } else {
                    <ManyOutcomes outcomes={Rc::new(outcomes)} />
                }
                <RunTextButton loaded={Rc::clone(loaded)} />
            }
            { step_lines(step, lines) }
            if let Some(note) = note {
                <div class={classes!("explanation", "step-note", step.failure.map(refusal_class))}>
                    <p class="explanation-why">{ note.text.to_string() }</p>
                    <p class="explanation-rfc">{ note.rfc.to_string() }</p>
                </div>
            }
            // Pipelined replies come in one step, and the one that matters is often not the
            // first: refusals are explained first, and stand out.
            // Each says which commands its replies answer, where that can be told.
            { for each_once(refusals_first(&step.explained(loaded.viewer.trace()), commands.as_deref())).into_iter().map(|Explained { explanation: e, replies, commands }| html! {
                <div class={classes!("explanation", Refusal::of(e).map(refusal_class))}>
                    <h3 class="details-heading">
                        { e.heading.clone() }
                        if replies > 1 {
                            { format!(", {replies} replies") }
                        }
                    </h3>
                    if !commands.is_empty() {
                        <p class="explanation-answers">
                            <span class="explanation-label">{ "In answer to: " }</span>
                            { commands_shown(&commands) }
                        </p>
                    }
                    if let Some((command, number)) = &chunk {
                        <p class="explanation-answers">
                            <span class="explanation-label">{ "In answer to: " }</span>
                            <code>{ shortened(command).into_owned() }</code>
                            { which_chunk(command, *number) }
                        </p>
                    }
                    // Why this server sent it first: the general meaning of a code can
                    // mislead on its own (greylisting's 451 "local error in processing"), and
                    // in a short window only the first lines are in sight.
                    <p class="explanation-why">{ as_sentence(&e.why) }</p>
                    if !e.points.is_empty() {
                        <ul class="explanation-points">
                            { for e.points.iter().map(|point| html! { <li>{ point.clone() }</li> }) }
                        </ul>
                    }
                    <p class="explanation-meaning">
                        <span class="explanation-label">{ "What the code means in general: " }</span>
                        { e.meaning.to_string() }
                    </p>
                    <p class="explanation-rfc">{ e.rfc.to_string() }</p>
                </div>
            }) }
            { wire(loaded, step, &opened.bytes) }
            { message_outline(loaded, step, opened) }
            { list("Open sessions", sessions, "none") }
            { list("Queued", queued, "none") }
            { list("Mailboxes", mailboxes, "none") }
        </>
    }
}

/// Said for the outcomes of a run whose only mail came from scripted clients.
const NO_OUTCOME_FOR_SCRIPTED_MAIL: &str = "none: no user agent sent a message in this run, \
    and a scripted client's mail has no outcome of its own (what the server did with it is in \
    its replies, at the steps before)";

/// Outcomes listed as they are up to this many. More (a scenario file of a whole class's mail
/// has thousands) are counted by fate, and listed only when asked for: the browser took seconds
/// to lay out thousands of lines each time the last step was shown.
const OUTCOMES_LISTED_AT_ONCE: usize = 20;

/// At the conservation check that ends a run, every recipient's outcome, as the command
/// line's outcome list has them, each with its fate's word: the check refers to them, and the
/// mailboxes alone do not tell (a message fetched and deleted is in none).
fn outcomes_at_the_check(loaded: &Loaded, step: &Step) -> Option<Vec<(String, &'static str)>> {
    let events = &loaded.viewer.trace().events;
    if !matches!(
        events.get(step.event),
        Some(TraceEvent {
            event: Event::ConservationChecked { .. },
            ..
        })
    ) {
        return None;
    }
    Some(
        events
            .iter()
            .filter_map(|event| match &event.event {
                Event::Outcome(outcome) => Some((
                    run_text::outcome_line(&outcome.message, &outcome.recipient, &outcome.fate),
                    outcome.fate.word(),
                )),
                _ => None,
            })
            .collect(),
    )
}

/// "2000 recipients: 1990 delivered, 10 bounced.": how many recipients have each fate, in
/// the order the fates first come.
fn outcome_counts(words: impl Iterator<Item = &'static str>) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut total = 0;
    for word in words {
        total += 1;
        match counts.iter_mut().find(|(counted, _)| *counted == word) {
            Some((_, count)) => *count += 1,
            None => counts.push((word, 1)),
        }
    }
    let each = counts
        .iter()
        .map(|(word, count)| format!("{count} {word}"))
        .collect::<Vec<_>>()
        .join(", ");
    let recipients = if total == 1 {
        "recipient"
    } else {
        "recipients"
    };
    format!("{total} {recipients}: {each}.")
}

#[derive(Properties, PartialEq)]
struct ManyOutcomesProps {
    /// Each recipient's outcome line and its fate's word.
    outcomes: Rc<Vec<(String, &'static str)>>,
}

/// More outcomes than [`OUTCOMES_LISTED_AT_ONCE`]: counted by fate, and listed in a
/// disclosure whose lines are made only once it is opened.
#[function_component(ManyOutcomes)]
fn many_outcomes(props: &ManyOutcomesProps) -> Html {
    let open = use_state(|| false);
    let ontoggle = on_toggle(&open);
    let outcomes = &props.outcomes;
    html! {
        <div class="details-state">
            <h3>{ "Outcomes" }</h3>
            <p class="details-outcome-counts">{ outcome_counts(outcomes.iter().map(|(_, word)| *word)) }</p>
            <details class="details-outcomes" open={*open} {ontoggle}>
                <summary>{ format!("Each recipient's outcome ({})", outcomes.len()) }</summary>
                if *open {
                    <ul>{ for outcomes.iter().map(|(line, _)| html! { <li>{ line.clone() }</li> }) }</ul>
                }
            </details>
        </div>
    }
}

/// A step in a few sentences, for a screen reader: its first lines (pipelined replies come
/// together, and the one that matters need not be the first), who writes them, and what it
/// means; at the run's last step, `outcomes`, that the run is over and where the mail went.
fn announcement(
    step: &Step,
    lines: &[String],
    note: Option<&StepNote>,
    answering: Answering,
    outcomes: Option<&[(String, &'static str)]>,
) -> String {
    // The lines the details repeat: the first ones, and the first refusal among them, each
    // refusal told by the words the conversation gives it (WCAG 1.4.1), and lines left out
    // counted, as the details show them. Each says who writes it, as the conversation's
    // column does, where that changes: "mx.receiver.test: #2 S: 250 ...".
    let refusals = refusal_lines(step, lines);
    let mut last_actor = String::new();
    let line = repeated_lines(step, lines, &refusals)
        .into_iter()
        .map(|repeated| match repeated {
            Repeated::Line(index) => {
                let words = refusals[index].map_or("", |refusal| words_for(refusal, false));
                let (_, actor, text) = split_line(step, &lines[index]);
                if actor.is_empty() || actor == last_actor {
                    format!("{words}{text}")
                } else {
                    let said = format!("{words}{actor}: {text}");
                    last_actor = actor;
                    said
                }
            }
            Repeated::LeftOut(count) => more_lines(count),
        })
        .collect::<Vec<_>>()
        .join(". ");
    // The first box of the details, said as it reads.
    let meaning = match each_once(refusals_first(&step.explanations, answering.commands)).first() {
        Some(Explained {
            explanation: e,
            replies,
            commands,
        }) => {
            let mut said = e.heading.clone();
            if *replies > 1 {
                said.push_str(&format!(", {replies} replies"));
            }
            let (named, more) = commands_named(commands);
            if !named.is_empty() {
                let comma = if *replies > 1 { "," } else { "" };
                said.push_str(&format!("{comma} in answer to {}", named.join(", ")));
                if more > 0 {
                    said.push_str(&format!(" and {more} more"));
                }
            }
            if let Some((command, number)) = answering.chunk {
                said.push_str(&format!(
                    " in answer to {}{}",
                    shortened(command),
                    which_chunk(command, *number)
                ));
            }
            format!("{said}: {}", as_sentence(&e.why))
        }
        // A session state's note ends with what every state is: shown in the details, and
        // not said at nearly every other step.
        None => note
            .map(|note| {
                note.text
                    .trim_end_matches(STATE_MACHINE_SENTENCE)
                    .to_string()
            })
            .unwrap_or_default(),
    };
    // The last step: that the run is over, and where the mail ended up, as it lists them.
    let line = match outcomes {
        // A run of scripted sessions alone has no recipient to account for.
        Some([]) => format!("End of the run. {line}"),
        Some(outcomes) if outcomes.len() <= OUTCOMES_LISTED_AT_ONCE => format!(
            "End of the run. {}. {line}",
            outcomes
                .iter()
                .map(|(outcome, _)| outcome.as_str())
                .collect::<Vec<_>>()
                .join(". ")
        ),
        Some(outcomes) => format!(
            "End of the run. {} {line}",
            outcome_counts(outcomes.iter().map(|(_, word)| *word))
        ),
        None => line,
    };
    // What the colour of a failure the step reports says (WCAG 1.4.1), when no refusing line
    // said it.
    let failed = match step.failure {
        Some(failure) if !Refusal::in_replies(step) => words_for(failure, true),
        _ => "",
    };
    if meaning.is_empty() {
        format!("{failed}{line}")
    } else {
        format!("{failed}{line}. {meaning}")
    }
}

/// What stands for `count` lines of a step left out of its repeated lines.
fn more_lines(count: usize) -> String {
    format!("... {count} more line{}", if count == 1 { "" } else { "s" })
}

/// Most lines of a step repeated over its details.
const STEP_LINES_SHOWN: usize = 3;

/// The step's own lines, over its explanation. Shown on narrow screens only (styles), where
/// the conversation is below the details, out of sight: the student reads what is explained.
/// A step of many lines shows its first ones, and its first refusal, which is explained first.
fn step_lines(step: &Step, lines: &[String]) -> Html {
    let classes = line_classes(step, lines);
    let items = repeated_lines(step, lines, &refusal_lines(step, lines))
        .into_iter()
        .map(|repeated| match repeated {
            Repeated::Line(index) => {
                let (_, actor, text) = split_line(step, &lines[index]);
                html! { <li class={classes[index]}><span class="details-step-actor">{ actor }</span>{ " " }{ text }</li> }
            }
            Repeated::LeftOut(count) => html! { <li class="line-event">{ more_lines(count) }</li> },
        });
    html! { <ol class="details-step-lines">{ for items }</ol> }
}

/// A line of a step that the details repeat, by its index, or how many in a row they leave
/// out.
enum Repeated {
    Line(usize),
    LeftOut(usize),
}

/// What the details repeat of `lines`, a step's lines (`refusals`: which refuse, see
/// [`refusal_lines`]), in order: its first ones and its first refusal, the rest counted. The
/// note that ends a long transmission's lines counts as the lines on the wire it stands for.
fn repeated_lines(step: &Step, lines: &[String], refusals: &[Option<Refusal>]) -> Vec<Repeated> {
    let mut repeated = Vec::new();
    let mut left_out = 0;
    let last = lines.len().saturating_sub(1);
    let summarised = lines
        .last()
        .filter(|_| step.direction.is_some() && last > 0)
        .and_then(|line| data_summary_lines(line));
    for (index, shown) in lines_repeated(refusals, STEP_LINES_SHOWN)
        .into_iter()
        .enumerate()
        .take(lines.len())
    {
        if !shown {
            left_out += match summarised {
                Some(lines) if index == last => lines,
                _ => 1,
            };
            continue;
        }
        if left_out > 0 {
            repeated.push(Repeated::LeftOut(left_out));
            left_out = 0;
        }
        repeated.push(Repeated::Line(index));
    }
    if left_out > 0 {
        repeated.push(Repeated::LeftOut(left_out));
    }
    repeated
}

/// The class of an explanation of a refusal, or of a failure, in its colour.
fn refusal_class(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Temporary => "explanation-temporary",
        Refusal::Permanent => "explanation-permanent",
    }
}

/// The explanations of a step's replies, those of refusals (4yz, 5yz, -ERR) first, each group
/// in the order the replies came, each with the command its reply answers where `commands`
/// (see [`Step::commands_answered`]) tells it.
fn refusals_first<'a>(
    explanations: &'a [StepExplanation],
    commands: Option<&'a [String]>,
) -> impl Iterator<Item = (&'a StepExplanation, Option<&'a str>)> {
    let answered = explanations
        .iter()
        .enumerate()
        .map(move |(index, explanation)| {
            let command = commands.and_then(|commands| commands.get(index));
            (explanation, command.map(String::as_str))
        });
    let refused = |(e, _): &(&StepExplanation, Option<&str>)| Refusal::of(e).is_some();
    answered
        .clone()
        .filter(refused)
        .chain(answered.filter(move |answer| !refused(answer)))
}

/// What a server's step answers, where that is told: the command of each reply
/// ([`Step::commands_answered`]), or the BDAT chunk of its one reply
/// ([`Step::chunk_answered`]).
#[derive(Clone, Copy)]
struct Answering<'a> {
    commands: Option<&'a [String]>,
    chunk: Option<&'a (String, usize)>,
}

/// One box of a step's explanations: an explanation, how many of the step's replies it
/// explains, and the commands they answer, where told.
struct Explained<'a> {
    explanation: &'a StepExplanation,
    replies: usize,
    commands: Vec<&'a str>,
}

/// Each explanation once, in the order given, with how many replies it explains and the
/// commands they answer: pipelined replies often say the same (a 250 for each of three
/// recipients, a 452 for each beyond the limit), and the same box again would only push the
/// others out of sight.
fn each_once<'a>(
    explanations: impl Iterator<Item = (&'a StepExplanation, Option<&'a str>)>,
) -> Vec<Explained<'a>> {
    let mut once: Vec<Explained> = Vec::new();
    for (explanation, command) in explanations {
        let index = match once.iter().position(|seen| seen.explanation == explanation) {
            Some(index) => index,
            None => {
                once.push(Explained {
                    explanation,
                    replies: 0,
                    commands: Vec::new(),
                });
                once.len() - 1
            }
        };
        once[index].replies += 1;
        once[index].commands.extend(command);
    }
    once
}

/// Most commands an explanation names; the rest are counted.
const COMMANDS_NAMED: usize = 3;
/// Most characters of a command named; a longer one is cut, as an address may be long.
const COMMAND_CHARS_NAMED: usize = 72;

/// `command` (as a line of the conversation shows it) as named, cut after
/// [`COMMAND_CHARS_NAMED`] characters, an escape such as `\xff` counted as one and kept whole.
fn shortened(command: &str) -> Cow<'_, str> {
    match crate::escape::cut_after_shown(command, COMMAND_CHARS_NAMED) {
        Some(cut) => Cow::Owned(format!("{}…", &command[..cut])),
        None => Cow::Borrowed(command),
    }
}

/// Which chunk of its message a BDAT line (as shown) sent, after the line: its number among
/// the chunks sent one after another (1 for the first), or, for a first chunk that is also
/// the last (`BDAT 534 LAST`), that it is the message's only chunk.
fn which_chunk(command: &str, number: usize) -> String {
    let last = command
        .trim_end()
        .rsplit(' ')
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("LAST"));
    if number == 1 && last {
        " (the message's only chunk)".to_string()
    } else {
        format!(" (chunk {number})")
    }
}

/// The first few of `commands`, each [`shortened`], and how many more there are.
fn commands_named<'a>(commands: &[&'a str]) -> (Vec<Cow<'a, str>>, usize) {
    let named = commands
        .iter()
        .take(COMMANDS_NAMED)
        .map(|command| shortened(command))
        .collect();
    (named, commands.len().saturating_sub(COMMANDS_NAMED))
}

/// The commands an explanation's replies answer, as code, the first few of them and how
/// many more.
fn commands_shown(commands: &[&str]) -> Html {
    let (named, more) = commands_named(commands);
    html! {
        <>
            { for named.into_iter().enumerate().map(|(index, command)| html! {
                <>
                    if index > 0 {
                        { ", " }
                    }
                    <code>{ command.into_owned() }</code>
                </>
            }) }
            if more > 0 {
                { format!(" and {more} more") }
            }
        </>
    }
}

/// Most lines of one transmission shown in full.
const WIRE_LINES_SHOWN: usize = 500;

/// For bytes on a connection: every line as it was sent, with its line ending marked (the
/// conversation shows a message's first lines only, and no line endings). For a notice
/// written (a bounce), the notice, which a delivery on its own host shows nowhere else.
fn wire(loaded: &Loaded, step: &Step, open: &UseStateHandle<bool>) -> Html {
    let (bytes, what) = match loaded.viewer.trace().events.get(step.event) {
        Some(TraceEvent {
            event: Event::Transmitted { bytes, .. },
            ..
        }) => (bytes, "The bytes as sent"),
        Some(TraceEvent {
            event: Event::BounceCreated(created),
            ..
        }) => (&created.bytes, "The notice as written"),
        _ => return Html::default(),
    };
    let (lines, left_out) = wire_lines(bytes.as_bytes(), WIRE_LINES_SHOWN);
    let octets = bytes.as_bytes().len();
    let total = lines.len() + left_out;
    let plural = |count: usize| if count == 1 { "" } else { "s" };
    // Only CRLF ends a line: a bare CR or LF starts a row of its own below, inside a line.
    let summary = match bare_line_endings(bytes.as_bytes()) {
        0 => format!("{what}: {total} line{}, {octets} octets", plural(total)),
        bare => {
            let lines = total.saturating_sub(bare);
            let bare = match bare {
                1 => "a bare CR or LF, which ends no line".to_string(),
                _ => format!("{bare} bare CRs or LFs, which end no line"),
            };
            format!(
                "{what}: {lines} line{} in {total} row{} ({bare}), {octets} octets",
                plural(lines),
                plural(total)
            )
        }
    };
    let ontoggle = on_toggle(open);
    html! {
        <details class="wire" open={**open} {ontoggle}>
            <summary>{ summary }</summary>
            <pre class="wire-lines" tabindex="0" role="group" aria-label="The bytes, line by line">
                { for lines.iter().map(|line| {
                    let (ending, class) = match line.ending {
                        LineEnding::CrLf => ("CRLF", "wire-crlf"),
                        LineEnding::BareLf => ("LF (bare)", "wire-bare"),
                        LineEnding::BareCr => ("CR (bare)", "wire-bare"),
                        LineEnding::Unterminated => ("", "wire-crlf"),
                    };
                    html! {
                        <>
                            { line.text.clone() }
                            <span class={class}>{ ending }</span>
                            { "\n" }
                        </>
                    }
                }) }
                if left_out > 0 {
                    { format!("... {left_out} more line{}", if left_out == 1 { "" } else { "s" }) }
                }
            </pre>
        </details>
    }
}

/// Which of a step's disclosures are open: each stays open from step to step until it is
/// closed.
struct Opened {
    /// "The bytes as sent".
    bytes: UseStateHandle<bool>,
    /// The message's outline.
    outline: UseStateHandle<bool>,
    /// What the outline's header fields are for.
    glossary: UseStateHandle<bool>,
}

/// Keeps `open` as the disclosure `<details>` element says, when it is opened or closed.
fn on_toggle(open: &UseStateHandle<bool>) -> Callback<web_sys::Event> {
    let open = open.clone();
    Callback::from(move |event: web_sys::Event| {
        let details: web_sys::Element = event.target_unchecked_into();
        open.set(details.has_attribute("open"));
    })
}

/// The message a step carries whole (message data after a 354, a last BDAT chunk with the
/// chunks before it, the MDA's stored copy, a POP3 RETR's answer, a notice as written) or in
/// part (a POP3 TOP's answer: the header and the first body lines), field by field and part
/// by part, with the fields servers added on the way marked, its path and
/// what its fields are for: what the bytes show line by line, read as a message.
fn message_outline(loaded: &Loaded, step: &Step, opened: &Opened) -> Html {
    let open = &opened.outline;
    let events = &loaded.viewer.trace().events;
    let first_copies = || {
        loaded
            .first_copies
            .get_or_init(|| carried::FirstCopies::of(events))
    };
    let Some((outline, carried, earlier)) =
        carried::message_outline(events, step.event, first_copies)
    else {
        return Html::default();
    };
    let fields = outline.fields.len();
    let added = outline.added();
    let whole_from = match carried {
        Carried::Chunks(1) => ", in one BDAT chunk".to_string(),
        Carried::Chunks(chunks) => format!(", from its {chunks} BDAT chunks"),
        Carried::Stored => " as stored".to_string(),
        Carried::Top(0) => "'s header, as TOP sent it".to_string(),
        Carried::Top(lines) => format!(
            "'s header and up to {lines} line{} of its body, as TOP sent them",
            crate::plural(lines)
        ),
        _ => String::new(),
    };
    let mut summary = format!(
        "The message{whole_from}: {}",
        counted(fields, "header field")
    );
    if added > 0 {
        summary.push_str(&format!(" ({added} added on the way)"));
    }
    let body = outline.body_summary();
    if !body.is_empty() {
        summary.push_str(", body ");
        summary.push_str(&body);
    }
    let (about_fields, parts_follow) = match (earlier, carried) {
        (Earlier::Compared, _) => (OUTLINE_COMPARED, true),
        (Earlier::ThisIsTheOriginal, Carried::Notice) => (OUTLINE_NOTICE, true),
        (Earlier::ThisIsTheOriginal, _) => (OUTLINE_FIRST_COPY, false),
        (Earlier::NoMessageId, _) => (OUTLINE_NO_MESSAGE_ID, true),
        (Earlier::NoOriginal, _) => (OUTLINE_NO_ORIGINAL, true),
        (Earlier::OtherBody, _) => (OUTLINE_OTHER_BODY, true),
        (Earlier::SharedId, _) => (OUTLINE_SHARED_ID, true),
    };
    // A body cut short (a TOP answer) has no parts listed.
    let about_fields = match parts_follow && !outline.body_cut {
        true => format!("{about_fields} Then the body's MIME parts."),
        false => about_fields.to_string(),
    };
    html! {
        <details class="wire outline" open={**open} ontoggle={on_toggle(open)}>
            <summary>{ summary }</summary>
            <div class="outline-body" tabindex="0" role="group" aria-label="The message, field by field and part by part">
                <p class="outline-about">{ about_fields }</p>
                <ol class="outline-fields" role="list" aria-label="Header fields">
                    { for outline.fields.iter().take(FIELDS_SHOWN).map(|field| html! {
                        <li class={classes!(field.added.then_some("outline-added"))}>
                            <span class="outline-name">{ format!("{}:", field.name) }</span>
                            { " " }{ field.value.clone() }
                            if let Some(reads) = &field.reads {
                                { " " }<span class="outline-mark">{ format!("(reads: {reads})") }</span>
                            }
                            if field.added {
                                { " " }<span class="outline-mark">{ "added on the way" }</span>
                            }
                        </li>
                    }) }
                </ol>
                if fields > FIELDS_SHOWN {
                    <p class="outline-about">{ format!("and {} more, not listed", counted(fields - FIELDS_SHOWN, "field")) }</p>
                }
                if !outline.removed.is_empty() {
                    <p class="outline-about">
                        { format!("Taken out on the way: {}.", outline.removed.join(", ")) }
                    </p>
                }
                if !outline.path.is_empty() {
                    <p class="outline-about">{ OUTLINE_PATH }</p>
                    <ol class="outline-path" aria-label="The message's path">
                        { for outline.path.iter().map(|hop| html! { <li>{ hop_text(hop) }</li> }) }
                    </ol>
                }
                <ul class="outline-parts" role="list" aria-label="The body's MIME parts">
                    { parts_tree(&outline.parts) }
                </ul>
                if outline.parts_left_out > 0 {
                    <p class="outline-about">{ parts_left_out_told(&outline) }</p>
                }
                <p class="outline-about">{ sizes_told(carried, &outline) }</p>
                { fields_glossary(&outline, &opened.glossary) }
                <p class="explanation-rfc">{ outline_rfcs(&outline, carried) }</p>
            </div>
        </details>
    }
}

/// The parts an outline leaves out, in words: those past its most or nested too deep, and
/// whether some of them hold parts of their own, which are not counted.
fn parts_left_out_told(outline: &Outline) -> String {
    let left_out = counted(outline.parts_left_out, "part");
    match outline.nested_beyond {
        true => format!(
            "and {left_out} more, not listed, not counting the parts some of those hold in \
             turn"
        ),
        false => format!("and {left_out} more, not listed"),
    }
}

/// One hop of a message's path, in words: where the message came from (as the server that
/// took it wrote it), that server, the protocol with what it says, and when.
fn hop_text(hop: &Hop) -> String {
    let mut text = match (&hop.from, &hop.by) {
        (Some(from), Some(by)) => format!("{from} to {by}"),
        (None, Some(by)) => format!("written on {by}"),
        (Some(from), None) => format!("{from} to a server it does not name"),
        (None, None) => "a Received: field that names no host".to_string(),
    };
    if let Some(with) = &hop.with {
        text.push_str(&format!(", with {with}"));
        if let Some(words) = protocol_purpose(with) {
            text.push_str(&format!(" ({words})"));
        }
    }
    if let Some(date) = &hop.date {
        text.push_str(&format!(", {date}"));
    }
    text
}

/// What each header field of a message is for, once per name, in the order the fields first
/// come: closed until asked for, as a student who knows them need not read it again; opened,
/// it stays open from step to step.
fn fields_glossary(outline: &Outline, open: &UseStateHandle<bool>) -> Html {
    let mut names: Vec<&str> = Vec::new();
    for field in outline.fields.iter().take(FIELDS_SHOWN) {
        if !names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&field.name))
        {
            names.push(&field.name);
        }
    }
    let told: Vec<(&str, &str)> = names
        .into_iter()
        .filter_map(|name| Some((name, field_purpose(name)?)))
        .collect();
    if told.is_empty() {
        return Html::default();
    }
    html! {
        <details class="outline-glossary" open={**open} ontoggle={on_toggle(open)}>
            <summary>{ "What these header fields are for" }</summary>
            <dl>
                { for told.into_iter().map(|(name, purpose)| html! {
                    <>
                        <dt class="outline-name">{ format!("{name}:") }</dt>
                        <dd>{ purpose }</dd>
                    </>
                }) }
            </dl>
        </details>
    }
}

/// A message's parts (each with its depth, in order) as nested list items: each part with the
/// parts inside it in a list of their own, so that a screen reader tells which is in which.
fn parts_tree(parts: &[OutlinePart]) -> Html {
    let mut items = Vec::new();
    let mut rest = parts;
    while let Some((part, after)) = rest.split_first() {
        let inside = after
            .iter()
            .position(|other| other.depth <= part.depth)
            .unwrap_or(after.len());
        let (children, next) = after.split_at(inside);
        items.push(html! {
            <li>
                { part.text.clone() }
                if !children.is_empty() {
                    <ul role="list">{ parts_tree(children) }</ul>
                }
            </li>
        });
        rest = next;
    }
    items.into_iter().collect()
}

/// Said above the fields of a message compared with its original in the run.
const OUTLINE_COMPARED: &str = "Header fields, top to bottom; those marked were added on the \
    way, after this message (by its Message-ID) was first sent or written in the run. Each server \
    that takes a message writes a Received: field above it; the one that delivers it, a \
    Return-Path: (and, in this simulation, a Delivered-To:).";

/// Said above the fields of a message as its sender sent it.
const OUTLINE_FIRST_COPY: &str = "Header fields, top to bottom, as this message's sender sent \
    it: no server's Received: field yet (only any it was written with). Each server that takes \
    it will write one above them; the one that delivers it, a Return-Path:. Then the body's \
    MIME parts: media type, transfer encoding, size.";

/// Said above the fields of a notice as its host wrote it.
const OUTLINE_NOTICE: &str = "Header fields, top to bottom, as the host that wrote this notice \
    has them (with its own Received: field). Sent on, each server that takes it writes a \
    Received: field above them; the host that delivers it, a Return-Path:.";

/// Said above the fields of a message without a Message-ID.
const OUTLINE_NO_MESSAGE_ID: &str = "Header fields, top to bottom. This message has no \
    Message-ID, by which its first copy in the run would be found, so none is marked as added \
    on the way; a Received: field names the server that wrote it.";

/// Said above the fields of a message whose original (by its Message-ID) is not in the run.
const OUTLINE_NO_ORIGINAL: &str = "Header fields, top to bottom. No copy with this Message-ID \
    was shown before as its user agent sent it, or without a Received: field (a submission \
    server writes a Message-ID for a message that has none; a scripted client's message goes \
    in one write with its commands, which is not read as a message), so none is marked as \
    added on the way; a Received: field names the server that wrote it.";

/// Said above the fields of a message whose Message-ID an earlier message with another body
/// has.
const OUTLINE_OTHER_BODY: &str = "Header fields, top to bottom. The first message sent with \
    this Message-ID has another body: another message uses the same Message-ID (or a server \
    changed the body, making its bare line ends CRLF), so none is marked as added on the \
    way.";

/// Said above the fields of a TOP answer whose Message-ID two messages of the run use.
const OUTLINE_SHARED_ID: &str = "Header fields, top to bottom. Two messages of this run use \
    this Message-ID, and the start of a body that TOP sent cannot tell which this is, so none \
    is marked as added on the way.";

/// Said above a message's path.
const OUTLINE_PATH: &str = "Its path, from its Received: fields read from the bottom up (the \
    first server to take it wrote the lowest): each names where the message came from, with \
    the address the server saw in brackets, and the server itself (RFC 5321 4.4; protocols: \
    RFC 3848, RFC 6531 3.7.3).";

/// What is said under a message's parts of their sizes, by how the step carries it: the
/// message's own size, and why the bytes beside it count otherwise.
fn sizes_told(carried: Carried, outline: &Outline) -> String {
    let octets = outline.octets;
    if let Carried::Top(lines) = carried {
        let body = match lines {
            0 => "none of its body".to_string(),
            lines => format!("up to {lines} line{} of its body", crate::plural(lines)),
        };
        let (own, cut) = match (outline.body_cut, lines) {
            (true, 0) => (
                "",
                " No line of the body came, so its MIME parts are not listed.",
            ),
            (true, _) => (
                "",
                " The body may go on past these lines, so its MIME parts are not listed: a \
                 part cut in two would look whole.",
            ),
            (false, _) => (
                "; sizes here are its own",
                " All of the message came: it has no more body lines than TOP asked for.",
            ),
        };
        return format!(
            "What TOP sent of the message is {}: its header and {body} (RFC 1939 7){own}. \
             The bytes as sent count more: the +OK line, one more dot before each line that \
             starts with one, and the line of a dot alone that ends the answer (RFC 1939 \
             3).{cut}",
            counted(octets, "octet")
        );
    }
    let size = format!(
        "The message is {}; sizes here are its own.",
        counted(octets, "octet")
    );
    let why = match carried {
        Carried::Data => {
            "The bytes as sent count more: one more dot before each line that \
            starts with one (dot-stuffing), and the line of a dot alone that ends the data \
            (RFC 5321 4.5.2)."
        }
        Carried::Retrieved => {
            "The server's +OK line gives the same size. The bytes as sent \
            count more: that line, one more dot before each line that starts with one, and the \
            line of a dot alone that ends the answer (RFC 1939 3, 5)."
        }
        Carried::Notice => {
            "As its host wrote it, the octets of the notice shown above: it \
            has not crossed a wire yet."
        }
        Carried::Stored => {
            "As its mailbox holds it: this copy crosses no wire, so no dots are \
            added (a POP3 server adds them as it sends it, and its reader takes them out)."
        }
        Carried::Chunks(1) => {
            "A BDAT chunk carries it as it is, counted, with no \
            dot-stuffing. This chunk, the message's only one (BDAT ... LAST), holds it whole."
        }
        Carried::Chunks(_) => {
            "BDAT chunks carry it as it is, counted, with no dot-stuffing. \
            The bytes as sent are this step's chunk only, the last (BDAT ... LAST); the chunks \
            before it went in the steps before. Put together, they are the message as the \
            client sent it, outlined here."
        }
        // Told above.
        Carried::Top(_) => "",
    };
    format!("{size} {why}")
}

/// The rules an outline shows at work, for the message it outlines and how the step carries
/// it: those of every message, and those of its MIME parts, encoded words, dispositions,
/// delivery fields and notice only where it has them.
fn outline_rfcs(outline: &Outline, carried: Carried) -> String {
    let has_field = |name: &str| {
        outline
            .fields
            .iter()
            .any(|field| field.name.eq_ignore_ascii_case(name))
    };
    let mut rfcs = vec!["RFC 5322 2.2, 3.6"];
    rfcs.push(match carried {
        Carried::Data | Carried::Retrieved | Carried::Top(_) => "RFC 5321 4.4, 4.5.2",
        _ => "RFC 5321 4.4",
    });
    match carried {
        Carried::Chunks(_) => rfcs.push("RFC 3030 2"),
        Carried::Retrieved => rfcs.push("RFC 1939 3, 5"),
        Carried::Top(_) => rfcs.push("RFC 1939 3, 7"),
        _ => {}
    }
    if has_field("MIME-Version") || has_field("Content-Type") {
        rfcs.push("RFC 2045 5, 6");
    }
    if outline.parts.iter().any(|part| part.parts_count.is_some()) {
        rfcs.push("RFC 2046 5.1");
    }
    if outline.fields.iter().any(|field| field.reads.is_some()) {
        rfcs.push("RFC 2047");
    }
    if outline.disposed {
        rfcs.push("RFC 2183 2");
    }
    if outline
        .parts
        .iter()
        .any(|part| part.media_type == "multipart/report")
    {
        rfcs.push("RFC 3464; RFC 6522");
    }
    if has_field("Auto-Submitted") {
        rfcs.push("RFC 3834 5");
    }
    if has_field("Delivered-To") {
        rfcs.push("RFC 9228");
    }
    rfcs.join("; ")
}

/// A server's reason, written as the engines keep it (a clause: "the mailbox exists"), as a
/// sentence: capital first letter, full stop at the end. A clause that starts with a name (a
/// domain, an address, a keyword) keeps it as written: `receiver.test is ...`.
fn as_sentence(text: &str) -> String {
    let first_word = text.split(' ').next().unwrap_or_default();
    let starts_with_name = first_word.chars().any(|c| {
        matches!(c, '.' | '@' | '<' | '[' | '"') || c.is_ascii_digit() || c.is_uppercase()
    });
    let mut chars = text.chars();
    let mut sentence: String = match chars.next() {
        Some(first) if !starts_with_name => first.to_uppercase().chain(chars).collect(),
        Some(_) => text.to_string(),
        None => return String::new(),
    };
    if sentence.ends_with(|c: char| c.is_alphanumeric() || c == ')') {
        sentence.push('.');
    }
    sentence
}
