//! The conversation: every line of the run up to the cursor, client lines (`C:`) and server
//! lines (`S:`) told apart by colour and by their prefix; the current step is marked.

use super::app::{run_identity, same_run, Loaded};
use crate::sim::steps::{refusal_lines, Refusal, Step};
use crate::sim::trace::{is_data_summary, Direction};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties)]
pub struct ConversationProps {
    pub loaded: Option<Rc<Loaded>>,
    pub cursor: usize,
    /// The page is in its one-column layout, where the conversation comes last: a change
    /// moves the region, which loses its scroll position, so the step is scrolled to again.
    #[prop_or_default]
    pub one_column: bool,
}

impl PartialEq for ConversationProps {
    fn eq(&self, other: &Self) -> bool {
        self.cursor == other.cursor
            && self.one_column == other.one_column
            && same_run(&self.loaded, &other.loaded)
    }
}

#[function_component(Conversation)]
pub fn conversation(props: &ConversationProps) -> Html {
    let log = use_node_ref();
    // Each step, and each layout change that moves the region, scrolls to the step.
    {
        let log = log.clone();
        let shown = (props.cursor, run_identity(&props.loaded), props.one_column);
        use_effect_with(shown, move |_| {
            if let Some(element) = log.cast::<web_sys::Element>() {
                scroll_to_step(&element);
            }
        });
    }
    // A log that changes size (a window resized or zoomed, a phone turned) wraps its lines
    // anew, and the step's lines are no longer where they were: they are scrolled to again.
    {
        let log = log.clone();
        // The log is there once a scenario is.
        use_effect_with(props.loaded.is_some(), move |_| {
            let observer = log.cast::<web_sys::Element>().and_then(|element| {
                let last_size =
                    Rc::new(Cell::new((element.client_width(), element.client_height())));
                let on_resize = Closure::<dyn FnMut()>::new(move || {
                    if let Some(element) = log.cast::<web_sys::Element>() {
                        let size = (element.client_width(), element.client_height());
                        if size != last_size.replace(size) {
                            scroll_to_step(&element);
                        }
                    }
                });
                let observer =
                    web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()).ok()?;
                observer.observe(&element);
                Some((observer, on_resize))
            });
            move || {
                if let Some((observer, _)) = observer {
                    observer.disconnect();
                }
            }
        });
    }
    let Some(loaded) = &props.loaded else {
        return html! {
            <p class="region-empty">
                { "Choose a scenario with the Scenario picker, or open a scenario file of your own (the picker's \"Open a scenario file…\", or drop the file on the page), then step through it or press Play: every SMTP command and reply will appear here, client lines (C:) and server lines (S:) as they cross the wire." }
            </p>
        };
    };
    let shown = &loaded.steps[..props.cursor.min(loaded.steps.len())];
    let last = shown.len().checked_sub(1);
    // The latest lines only, in a long run: every line drawn is drawn again at each step.
    let (first_step, left_out) = latest_steps(shown, LINES_DRAWN_MAX);
    html! {
        // Focusable, so that the keyboard can scroll back through it (WCAG 2.1.1).
        <ol class="conversation-log" ref={log} tabindex="0" aria-label="The conversation so far">
            if left_out > 0 {
                <li class="line line-left-out">
                    { format!("{left_out} earlier lines are left out here; they come back as you step back.") }
                </li>
            }
            // One child of its own, a list of keyed steps only (the note above is not
            // keyed): Yew diffs a list of keyed children by key, but an unkeyed one from its
            // end, so that each step added at the end would otherwise rewrite every line
            // above it.
            { (first_step..shown.len()).map(|index| html! {
                <StepLines key={index} loaded={Rc::clone(loaded)} {index}
                    current={Some(index) == last} />
            }).collect::<Html>() }
        </ol>
    }
}

#[derive(Properties)]
struct StepLinesProps {
    loaded: Rc<Loaded>,
    /// The step's place in the run's steps.
    index: usize,
    current: bool,
}

impl PartialEq for StepLinesProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.loaded, &other.loaded)
            && self.index == other.index
            && self.current == other.current
    }
}

/// One step's lines in the log, a component of its own: Yew draws it again only when its
/// properties change (it becomes the current step, or stops being it), not at every step of
/// a run of hundreds.
#[function_component(StepLines)]
fn step_lines(props: &StepLinesProps) -> Html {
    let Some(step) = props.loaded.steps.get(props.index) else {
        return Html::default();
    };
    let is_current = props.current;
    let current = if is_current { " line-current" } else { "" };
    let lines = step.lines(props.loaded.viewer.trace());
    lines
        .iter()
        .zip(line_classes(step, &lines))
        .map(|(line, side)| {
            let (time, actor, text) = split_line(step, line);
            html! {
                // The step's lines are marked for screen readers too, not by their highlight
                // alone (WCAG 1.3.1).
                <li class={format!("line {side}{current}")}
                    aria-current={is_current.then_some("step")}>
                    <span class="line-time">{ time }</span>
                    <span class="line-actor">{ actor }</span>
                    <span class="line-text">
                        if let Some(words) = refusal_words(side) {
                            <span class="visually-hidden">{ words }</span>
                        }
                        { text }
                    </span>
                </li>
            }
        })
        .collect()
}

/// Most lines the log draws: more than any built-in scenario has (624, in
/// server-down-for-good), few enough that a step near the end of a run of a hundred thousand
/// steps (a scenario file of a thousand messages) is drawn quickly on a slow machine. The
/// browser lays out and paints every line drawn again at each step, which at 2,000 lines
/// took about a third of a second on a laptop four times slower than a desktop.
pub const LINES_DRAWN_MAX: usize = 700;

/// Where the latest steps of `steps` that hold at most `max_lines` lines begin (the last
/// step whole, however many lines it has), and how many lines come before them.
fn latest_steps(steps: &[Step], max_lines: usize) -> (usize, usize) {
    let mut first = steps.len();
    let mut lines = 0;
    while first > 0 {
        let step_lines = steps[first - 1].line_count;
        if lines + step_lines > max_lines && first < steps.len() {
            break;
        }
        lines += step_lines;
        first -= 1;
    }
    let left_out = steps[..first].iter().map(|step| step.line_count).sum();
    (first, left_out)
}

/// Scrolls the log (only the log, never the page) to the current step: the newest line in
/// sight; a step of more lines than fit keeps its first line (the one it is about) at the top
/// instead, unless that would hide the step's first refusal, which the details explain first:
/// then the refusal is at the bottom of what is in sight (or at the top, if it is taller than
/// the log).
fn scroll_to_step(element: &web_sys::Element) {
    const MARGIN: i32 = 8;
    let bottom = element.scroll_height() - element.client_height();
    let log_top = element.get_bounding_client_rect().top();
    // A line's top and bottom in the log's own coordinates (its scroll offsets).
    let extent = |line: &web_sys::Element| {
        let rect = line.get_bounding_client_rect();
        let top = element.scroll_top() + (rect.top() - log_top) as i32;
        (top, top + rect.height() as i32)
    };
    let current = element.query_selector(".line-current").ok().flatten();
    let mut target = current.map_or(bottom, |line| extent(&line).0 - MARGIN);
    // The first refusal's lines: it and the refusal lines right after it (a reply
    // of several lines).
    let refusal = element
        .query_selector(".line-current.line-refusal")
        .ok()
        .flatten()
        .map(|first| {
            let mut last = first.clone();
            while let Some(next) = last
                .next_element_sibling()
                .filter(|next| next.matches(".line-refusal").unwrap_or(false))
            {
                last = next;
            }
            (first, last)
        });
    if let Some((first, last)) = refusal {
        let (refusal_top, _) = extent(&first);
        let (_, refusal_bottom) = extent(&last);
        let refusal_at_bottom = refusal_bottom + MARGIN - element.client_height();
        target = target.max(refusal_at_bottom.min(refusal_top - MARGIN));
    }
    element.set_scroll_top(target.min(bottom));
}

/// The classes of each of `lines`, the lines of `step`: who sent it (client, server, or
/// neither, for an event); a refusal in its explanation's colour; the line that says how much
/// of a long transmission is not shown, which is the trace's, not the sender's, drawn apart
/// (the details show every line).
pub(super) fn line_classes(step: &Step, lines: &[String]) -> Vec<&'static str> {
    let side = match step.direction {
        Some(Direction::ClientToServer) => "line-client",
        Some(Direction::ServerToClient) => "line-server",
        None => "line-event",
    };
    let cut = lines.len() > 1 && step.direction.is_some();
    let last_line = lines.len().saturating_sub(1);
    lines
        .iter()
        .zip(refusal_lines(step, lines))
        .enumerate()
        .map(|(number, (line, refusal))| match refusal {
            _ if cut && number == last_line && is_data_summary(line) => "line-event line-summary",
            Some(Refusal::Temporary) => TEMPORARY_REFUSAL,
            Some(Refusal::Permanent) => PERMANENT_REFUSAL,
            // A failure the event reports itself (a connection refused, a DNS name not found, a
            // recipient given up on), in the colour the diagram draws it.
            None => match step.failure {
                Some(Refusal::Temporary) => TEMPORARY_FAILURE,
                Some(Refusal::Permanent) => PERMANENT_FAILURE,
                None => side,
            },
        })
        .collect()
}

/// The classes of a server's line that refuses for now (4yz) and for good (5yz, -ERR).
const TEMPORARY_REFUSAL: &str = "line-server line-refusal line-temporary";
const PERMANENT_REFUSAL: &str = "line-server line-refusal line-permanent";
/// The classes of a line whose event reports a failure for now and for good.
const TEMPORARY_FAILURE: &str = "line-event line-refusal line-temporary";
const PERMANENT_FAILURE: &str = "line-event line-refusal line-permanent";

/// What a screen reader says before a refusal's or a failure's line, which others tell by its
/// bar's colour and pattern (WCAG 1.4.1): the line's own words ("connection refused",
/// "NXDOMAIN") do not say whether it is for now or for good.
fn refusal_words(class: &str) -> Option<&'static str> {
    match class {
        TEMPORARY_REFUSAL => Some(words_for(Refusal::Temporary, false)),
        PERMANENT_REFUSAL => Some(words_for(Refusal::Permanent, false)),
        TEMPORARY_FAILURE => Some(words_for(Refusal::Temporary, true)),
        PERMANENT_FAILURE => Some(words_for(Refusal::Permanent, true)),
        _ => None,
    }
}

/// The words for a refusal's colour, said where a screen reader reads it: for a refusing
/// reply, or for a failure the step's event reports (`reported`).
pub(super) fn words_for(refusal: Refusal, reported: bool) -> &'static str {
    match (refusal, reported) {
        (Refusal::Temporary, false) => "Refused for now: ",
        (Refusal::Permanent, false) => "Refused for good: ",
        (Refusal::Temporary, true) => "Failed for now: ",
        (Refusal::Permanent, true) => "Failed for good: ",
    }
}

/// Splits a line of `step` (`time  actor  text`) into its columns, so that narrow screens can
/// put the text under the time and actor instead of cutting it off. The step names its actor,
/// which may hold spaces; a line that does not start with it splits at the first space.
pub(super) fn split_line(step: &Step, line: &str) -> (String, String, String) {
    let (time, rest) = line.split_once("  ").unwrap_or(("", line));
    let rest = rest.trim_start();
    let (actor, text) = rest
        .strip_prefix(&*step.actor)
        .filter(|text| !step.actor.is_empty() && (text.is_empty() || text.starts_with(' ')))
        .map(|text| (&*step.actor, text))
        .unwrap_or_else(|| rest.split_once(' ').unwrap_or((rest, "")));
    (
        time.to_string(),
        actor.to_string(),
        text.trim_start().to_string(),
    )
}
