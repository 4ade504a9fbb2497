//! Playback controls: rewind, step back, play/pause, step forward, to the end, speed.

use super::focus_on_page;
use super::player::{Player, PlayerAction};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ControlsProps {
    pub player: Player,
    pub on_action: Callback<PlayerAction>,
}

/// The step buttons, in the order they are drawn: a button that becomes disabled hands the
/// focus to its mirror (`STEP_BUTTONS - 1 - index`).
const STEP_BUTTONS: usize = 4;

#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let player = &props.player;
    let step_buttons: [NodeRef; STEP_BUTTONS] = [
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    ];
    let play_button = use_node_ref();
    // The step button that last had the focus: a browser drops the focus of a button that
    // becomes disabled, so it may no longer say.
    let last_focused = use_mut_ref(|| None::<usize>);
    let empty = player.trace_len == 0;
    {
        let step_buttons = step_buttons.clone();
        let play_button = play_button.clone();
        let last_focused = last_focused.clone();
        use_effect_with((empty, player.at_start(), player.at_end()), move |_| {
            // Read before the focus moves: the button that takes it records itself.
            let focused = *last_focused.borrow();
            keep_focus_in_controls(&step_buttons, &play_button, focused);
        });
    }
    let button = |index: usize,
                  icon: Icon,
                  title: &'static str,
                  action: PlayerAction,
                  disabled: bool| {
        let on_action = props.on_action.clone();
        let keys = match action {
            PlayerAction::Rewind => "Home",
            PlayerAction::StepBack => "ArrowLeft",
            PlayerAction::StepForward => "ArrowRight",
            PlayerAction::ToEnd => "End",
            _ => "",
        };
        let focused = last_focused.clone();
        let blurred = last_focused.clone();
        html! {
            <button type="button" title={title} aria-label={title} aria-keyshortcuts={keys} {disabled}
                ref={step_buttons[index].clone()}
                onfocus={Callback::from(move |_| *focused.borrow_mut() = Some(index))}
                // A button the user leaves while it still works (for another element, or
                // for a click on the page) did not lose the focus to being disabled.
                onblur={Callback::from(move |event: FocusEvent| {
                    let still_usable = event
                        .target_dyn_into::<web_sys::Element>()
                        .is_some_and(|button| !button.has_attribute("disabled"));
                    if still_usable {
                        *blurred.borrow_mut() = None;
                    }
                })}
                onclick={Callback::from(move |_| on_action.emit(action))}>
                { icon.svg() }
            </button>
        }
    };
    let play_label = if player.playing { "Pause" } else { "Play" };
    let on_play = {
        let on_action = props.on_action.clone();
        Callback::from(move |_| on_action.emit(PlayerAction::TogglePlay))
    };
    let position = if empty {
        "No scenario loaded".to_string()
    } else {
        format!("Step {} of {}", player.cursor, player.trace_len)
    };

    html! {
        <div class="controls">
            { button(0, Icon::Rewind, "Back to the start", PlayerAction::Rewind, empty || player.at_start()) }
            { button(1, Icon::StepBack, "Step back", PlayerAction::StepBack, empty || player.at_start()) }
            <button type="button" class="primary play" aria-keyshortcuts="Space" disabled={empty}
                ref={play_button} onclick={on_play}>
                { play_label }
            </button>
            { button(2, Icon::StepForward, "Step forward", PlayerAction::StepForward, empty || player.at_end()) }
            { button(3, Icon::ToEnd, "To the end", PlayerAction::ToEnd, empty || player.at_end()) }
            <button type="button" title="Playback speed" disabled={empty}
                // The name starts with the button's text, so that a voice command naming
                // what is seen ("click 2×") finds it (WCAG 2.5.3).
                aria-label={match player.speed_events_per_s() {
                    1 => "1× playback speed: 1 step a second".to_string(),
                    speed => format!("{speed}× playback speed: {speed} steps a second"),
                }}
                onclick={{
                    let on_action = props.on_action.clone();
                    Callback::from(move |_| on_action.emit(PlayerAction::CycleSpeed))
                }}>
                { format!("{}×", player.speed_events_per_s()) }
            </button>
            // Read out when it changes, but not several times a second while playing.
            // Room for the last step's number (styles), so that the buttons before it stay
            // put under the pointer as the step number gains digits; three at least, as the
            // picker's width then changes little from one scenario to the next.
            <span class="controls-position" style={format!("--position-digits: {}", digits(player.trace_len).max(3))}
                aria-live={if player.playing { "off" } else { "polite" }}>{ position }</span>
        </div>
    }
}

/// How many digits `number` is written with.
fn digits(number: usize) -> usize {
    number.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// A step button that had the focus and is now disabled (at the start or the end) hands it
/// to its mirror, or to Play: left where the browser puts it, on the page, the focus would
/// make a keyboard user Tab back through the whole page to reach the controls again.
fn keep_focus_in_controls(
    step_buttons: &[NodeRef; STEP_BUTTONS],
    play_button: &NodeRef,
    last_focused: Option<usize>,
) {
    let Some(index) = last_focused else {
        return;
    };
    let Some(left) = step_buttons[index].cast::<web_sys::HtmlElement>() else {
        return;
    };
    if !left.has_attribute("disabled") {
        return;
    }
    let focus_lost = focus_on_page()
        || gloo::utils::document()
            .active_element()
            .is_some_and(|active| left.is_same_node(Some(&active)));
    if !focus_lost {
        return;
    }
    let enabled = |node: &NodeRef| {
        node.cast::<web_sys::HtmlElement>()
            .filter(|button| !button.has_attribute("disabled"))
    };
    if let Some(next) =
        enabled(&step_buttons[STEP_BUTTONS - 1 - index]).or_else(|| enabled(play_button))
    {
        let _ = next.focus();
    }
}

/// Icons drawn as SVG paths, so they look the same whatever fonts the device has.
#[derive(Clone, Copy)]
enum Icon {
    Rewind,
    StepBack,
    StepForward,
    ToEnd,
}

impl Icon {
    fn svg(self) -> Html {
        let path = match self {
            Icon::Rewind => "M4 4h2v16H4zM20 4v16L8 12z",
            Icon::StepBack => "M18 4v16L6 12z",
            Icon::StepForward => "M6 4v16l12-8z",
            Icon::ToEnd => "M18 4h2v16h-2zM4 4v16l12-8z",
        };
        html! {
            <svg class="controls-icon" viewBox="0 0 24 24" aria-hidden="true"><path d={path} /></svg>
        }
    }
}
