//! The conversation: every line of the run up to the cursor, client lines (`C:`) and server
//! lines (`S:`) told apart by colour and by their prefix; the current step is marked.

use super::app::{same_run, Loaded};
use crate::sim::trace::{is_data_summary, Direction};
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties)]
pub struct ConversationProps {
    pub loaded: Option<Rc<Loaded>>,
    pub cursor: usize,
}

impl PartialEq for ConversationProps {
    fn eq(&self, other: &Self) -> bool {
        self.cursor == other.cursor && same_run(&self.loaded, &other.loaded)
    }
}

#[function_component(Conversation)]
pub fn conversation(props: &ConversationProps) -> Html {
    let log = use_node_ref();
    // Keep the newest line in sight, scrolling only the log, never the page; a step of more
    // lines than fit keeps its first line (the one it is about) at the top instead, unless
    // that would hide the step's first refusal, which the details explain first: then the
    // refusal is the bottom line in sight.
    {
        let log = log.clone();
        use_effect_with(props.cursor, move |_| {
            if let Some(element) = log.cast::<web_sys::Element>() {
                const MARGIN: i32 = 8;
                let bottom = element.scroll_height() - element.client_height();
                let log_top = element.get_bounding_client_rect().top();
                // A line's top and bottom in the log's own coordinates (its scroll offsets).
                let extent = |selector: &str| {
                    let line = element.query_selector(selector).ok().flatten()?;
                    let rect = line.get_bounding_client_rect();
                    let top = element.scroll_top() + (rect.top() - log_top) as i32;
                    Some((top, top + rect.height() as i32))
                };
                let mut target = extent(".line-current").map_or(bottom, |(top, _)| top - MARGIN);
                if let Some((_, refusal_bottom)) = extent(".line-current.line-refusal") {
                    target = target.max(refusal_bottom + MARGIN - element.client_height());
                }
                element.set_scroll_top(target.min(bottom));
            }
        });
    }
    let Some(loaded) = &props.loaded else {
        return html! {
            <p class="region-empty">
                { "Choose a scenario with the Scenario picker, then step through it or press Play: every SMTP command and reply will appear here, client lines (C:) and server lines (S:) as they cross the wire." }
            </p>
        };
    };
    let shown = &loaded.steps[..props.cursor.min(loaded.steps.len())];
    let last = shown.len().checked_sub(1);
    html! {
        // Focusable, so that the keyboard can scroll back through it (WCAG 2.1.1).
        <ol class="conversation-log" ref={log} tabindex="0" aria-label="The conversation so far">
            { for shown.iter().enumerate().flat_map(|(index, step)| {
                let side = line_class(step.direction);
                let current = if Some(index) == last { " line-current" } else { "" };
                let cut = step.lines.len() > 1 && step.direction.is_some();
                let last_line = step.lines.len().saturating_sub(1);
                step.lines.iter().enumerate().map(move |(number, line)| {
                    let (time, actor, text) = split_line(line);
                    // The line that says how much of a long transmission is not shown is the
                    // trace's, not the sender's: it is drawn apart (Details show every line).
                    let side = if cut && number == last_line && is_data_summary(&text) {
                        "line-event line-summary"
                    } else if step.direction == Some(Direction::ServerToClient) {
                        refusal_class(&text).unwrap_or(side)
                    } else {
                        side
                    };
                    html! {
                        <li class={format!("line {side}{current}")}>
                            <span class="line-time">{ time }</span>
                            <span class="line-actor">{ actor }</span>
                            <span class="line-text">{ text }</span>
                        </li>
                    }
                })
            }) }
        </ol>
    }
}

/// The class that colours a line by who sent it: client, server, or neither (an event).
pub(super) fn line_class(direction: Option<Direction>) -> &'static str {
    match direction {
        Some(Direction::ClientToServer) => "line-client",
        Some(Direction::ServerToClient) => "line-server",
        None => "line-event",
    }
}

/// The classes of a server line that carries a refusal: a 4yz reply (temporary), a 5yz reply
/// or a POP3 `-ERR` (permanent), as the details colour their explanations; `None` for any
/// other line. `text` is the line's text column, `#1 S: 550 5.1.1 ...`.
fn refusal_class(text: &str) -> Option<&'static str> {
    let (_, reply) = text.split_once("S: ")?;
    let code = reply.as_bytes().get(..3)?;
    let is_code = code.iter().all(u8::is_ascii_digit)
        && reply
            .as_bytes()
            .get(3)
            .is_none_or(|&b| b == b' ' || b == b'-');
    match code[0] {
        b'4' if is_code => Some("line-server line-refusal line-temporary"),
        b'5' if is_code => Some("line-server line-refusal line-permanent"),
        _ if reply.starts_with("-ERR") => Some("line-server line-refusal line-permanent"),
        _ => None,
    }
}

/// Splits a trace line (`time  actor  text`) into its columns, so that narrow screens can put
/// the text under the time and actor instead of cutting it off.
pub(super) fn split_line(line: &str) -> (String, String, String) {
    let (time, rest) = line.split_once("  ").unwrap_or(("", line));
    let rest = rest.trim_start();
    let (actor, text) = rest.split_once(' ').unwrap_or((rest, ""));
    (
        time.to_string(),
        actor.to_string(),
        text.trim_start().to_string(),
    )
}
