//! The player: a cursor over the trace, whether it is playing, and how fast. A pure reducer,
//! so that stepping back only moves the cursor and never re-runs the protocol.

use std::rc::Rc;
use yew::Reducible;

/// Playback speeds offered to the user, in trace events per second.
pub const SPEEDS_EVENTS_PER_S: [u32; 4] = [1, 2, 4, 8];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Player {
    /// How many trace events are shown (0 = none yet); at most `trace_len`.
    pub cursor: usize,
    pub trace_len: usize,
    pub playing: bool,
    /// Index into [`SPEEDS_EVENTS_PER_S`].
    pub speed_index: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayerAction {
    StepForward,
    StepBack,
    Rewind,
    ToEnd,
    TogglePlay,
    /// A timer tick while playing: advance one event, stop at the end.
    Tick,
    CycleSpeed,
    /// Go to a step (a share link's), or to the end if there are fewer.
    Seek {
        cursor: usize,
    },
    /// A new trace was loaded: start again from the beginning.
    Load {
        trace_len: usize,
    },
}

/// The keyboard shortcut for a key (`KeyboardEvent.key`): arrows step, Home and End jump,
/// Space plays and pauses, as media players do.
pub fn key_action(key: &str) -> Option<PlayerAction> {
    Some(match key {
        "ArrowRight" => PlayerAction::StepForward,
        "ArrowLeft" => PlayerAction::StepBack,
        "Home" => PlayerAction::Rewind,
        "End" => PlayerAction::ToEnd,
        " " => PlayerAction::TogglePlay,
        _ => return None,
    })
}

/// The keyboard shortcut to the next failure (Shift+→: true) or the one before (Shift+←:
/// false): the step keys, further. Not a letter, which a screen reader user or a speech
/// command could press by accident (WCAG 2.1.4).
pub fn failure_key(key: &str, shift: bool) -> Option<bool> {
    match (key, shift) {
        ("ArrowRight", true) => Some(true),
        ("ArrowLeft", true) => Some(false),
        _ => None,
    }
}

impl Player {
    pub fn new(trace_len: usize) -> Self {
        Player {
            cursor: 0,
            trace_len,
            playing: false,
            speed_index: 1,
        }
    }

    pub fn speed_events_per_s(&self) -> u32 {
        SPEEDS_EVENTS_PER_S[self.speed_index % SPEEDS_EVENTS_PER_S.len()]
    }

    pub fn at_start(&self) -> bool {
        self.cursor == 0
    }

    pub fn at_end(&self) -> bool {
        self.cursor >= self.trace_len
    }

    /// The state after `action`. Never moves the cursor outside `0..=trace_len`.
    pub fn apply(&self, action: PlayerAction) -> Player {
        let mut next = self.clone();
        match action {
            PlayerAction::StepForward => {
                next.cursor = (self.cursor + 1).min(self.trace_len);
                next.playing = false;
            }
            PlayerAction::StepBack => {
                next.cursor = self.cursor.saturating_sub(1);
                next.playing = false;
            }
            PlayerAction::Rewind => {
                next.cursor = 0;
                next.playing = false;
            }
            PlayerAction::ToEnd => {
                next.cursor = self.trace_len;
                next.playing = false;
            }
            PlayerAction::TogglePlay => {
                if self.playing {
                    next.playing = false;
                } else if self.trace_len > 0 {
                    // Playing from the end starts again from the beginning.
                    if self.at_end() {
                        next.cursor = 0;
                    }
                    next.playing = true;
                }
            }
            PlayerAction::Tick => {
                if self.playing {
                    next.cursor = (self.cursor + 1).min(self.trace_len);
                    next.playing = next.cursor < self.trace_len;
                }
            }
            PlayerAction::Seek { cursor } => {
                next.cursor = cursor.min(self.trace_len);
                next.playing = false;
            }
            PlayerAction::CycleSpeed => {
                next.speed_index = (self.speed_index + 1) % SPEEDS_EVENTS_PER_S.len();
            }
            PlayerAction::Load { trace_len } => {
                next = Player {
                    speed_index: self.speed_index,
                    ..Player::new(trace_len)
                };
            }
        }
        debug_assert!(next.cursor <= next.trace_len);
        next
    }
}

impl Default for Player {
    /// Nothing loaded yet.
    fn default() -> Self {
        Player::new(0)
    }
}

impl Reducible for Player {
    type Action = PlayerAction;

    fn reduce(self: Rc<Self>, action: PlayerAction) -> Rc<Self> {
        Rc::new(self.apply(action))
    }
}
