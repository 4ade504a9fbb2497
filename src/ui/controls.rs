//! Playback controls: rewind, step back, play/pause, step forward, to the end, speed.

use super::player::{Player, PlayerAction};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ControlsProps {
    pub player: Player,
    pub on_action: Callback<PlayerAction>,
}

#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let player = &props.player;
    let button = |icon: Icon, title: &'static str, action: PlayerAction, disabled: bool| {
        let on_action = props.on_action.clone();
        let keys = match action {
            PlayerAction::Rewind => "Home",
            PlayerAction::StepBack => "ArrowLeft",
            PlayerAction::StepForward => "ArrowRight",
            PlayerAction::ToEnd => "End",
            _ => "",
        };
        html! {
            <button type="button" title={title} aria-label={title} aria-keyshortcuts={keys} {disabled}
                onclick={Callback::from(move |_| on_action.emit(action))}>
                { icon.svg() }
            </button>
        }
    };
    let empty = player.trace_len == 0;
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
            { button(Icon::Rewind, "Back to the start", PlayerAction::Rewind, empty || player.at_start()) }
            { button(Icon::StepBack, "Step back", PlayerAction::StepBack, empty || player.at_start()) }
            <button type="button" class="primary" aria-keyshortcuts="Space" disabled={empty} onclick={on_play}>
                { play_label }
            </button>
            { button(Icon::StepForward, "Step forward", PlayerAction::StepForward, empty || player.at_end()) }
            { button(Icon::ToEnd, "To the end", PlayerAction::ToEnd, empty || player.at_end()) }
            <button type="button" title="Playback speed" disabled={empty}
                aria-label={match player.speed_events_per_s() {
                    1 => "Playback speed: 1 step a second".to_string(),
                    speed => format!("Playback speed: {speed} steps a second"),
                }}
                onclick={{
                    let on_action = props.on_action.clone();
                    Callback::from(move |_| on_action.emit(PlayerAction::CycleSpeed))
                }}>
                { format!("{}×", player.speed_events_per_s()) }
            </button>
            <span class="controls-position" aria-live="polite">{ position }</span>
        </div>
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
