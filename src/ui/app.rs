//! The root component: the four regions of the simulator (topology, conversation, details,
//! controls) around one state: the loaded scenario, its steps, and the player's cursor.

use super::compose::Compose;
use super::controls::Controls;
use super::conversation::Conversation;
use super::details::Details;
use super::focus_on_page;
use super::player::{failure_key, key_action, Player, PlayerAction};
use super::topology::Topology;
use crate::sim::carried::FirstCopies;
use crate::sim::draft::Draft;
use crate::sim::library::{self, SCENARIO_FILES};
use crate::sim::link;
use crate::sim::map::RunMap;
use crate::sim::preparing::{Advanced, Prepared, Preparing, Progress};
use crate::sim::scenario::{file_text, file_too_large, SCENARIO_MAX_OCTETS};
use crate::sim::steps::{next_failure, previous_failure, restates_a_failure, Refusal, Step};
use crate::sim::trace::{self, format_time, Direction};
use crate::sim::view::TraceViewer;
use crate::sim::Scenario;
use gloo::events::{EventListener, EventListenerOptions};
use gloo::file::callbacks::FileReader;
use gloo::timers::callback::{Interval, Timeout};
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::{JsCast, JsValue};
use yew::prelude::*;

/// A scenario that has been run: what the student steps through.
#[derive(Debug)]
pub struct Loaded {
    pub scenario: Scenario,
    pub steps: Vec<Step>,
    pub viewer: TraceViewer,
    /// Who talks to whom in this run, for the topology diagram.
    pub map: Rc<RunMap>,
    /// Where the scenario came from.
    pub source: Source,
    /// Where the steps that go wrong are, as cursors (see [`failure_positions`]).
    pub failures: Vec<usize>,
    /// Where each message's original is carried in the run, for the outlines of messages:
    /// found the first time a step shows a copy that is not an original.
    pub first_copies: OnceCell<FirstCopies>,
}

/// Where a scenario shown came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The library's (its place is [`Lab::selected`]).
    Library,
    /// A scenario file of the user's own, by its name.
    File(String),
    /// A message written in the page, sent in the world of the scenario shown then.
    Written,
}

impl Loaded {
    /// The step the player shows at `cursor` (0 is before the first step).
    pub fn step_at(&self, cursor: usize) -> Option<&Step> {
        cursor
            .checked_sub(1)
            .and_then(|index| self.steps.get(index))
    }
}

/// The address's fragment; or, when it has none, its query when that is a link to a
/// scenario written with '?' instead of '#' (by hand, say): the address is then put right, so
/// that it reads as every other link does.
fn link_in_address_putting_a_query_right() -> String {
    let window = gloo::utils::window();
    let location = window.location();
    let fragment = location.hash().unwrap_or_default();
    let query = location.search().unwrap_or_default();
    let moved = query
        .strip_prefix('?')
        .map(|query| format!("#{query}"))
        .filter(|moved| link::parse(moved).is_ok_and(|link| link.is_some()));
    let Some(moved) = moved else {
        return fragment;
    };
    // A link in the query and another after '#': the fragment is the one followed, and the
    // query goes, or the address copied without its fragment would open the other scenario.
    // A fragment that is no link (`#top`) gives way to the query's.
    let fragment_is_link = link::parse(&fragment).is_ok_and(|link| link.is_some());
    let followed = if fragment_is_link { fragment } else { moved };
    let path = location.pathname().unwrap_or_default();
    if let Ok(history) = window.history() {
        let _ =
            history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("{path}{followed}")));
    }
    followed
}

/// Which run (or part of one, such as its map) a state holds (0 for none), for effects that
/// must run again when another scenario is shown at the same step: its address, since a run
/// is only ever replaced, never changed in place.
pub fn run_identity<T>(shared: &Option<Rc<T>>) -> usize {
    shared
        .as_ref()
        .map_or(0, |shared| Rc::as_ptr(shared) as usize)
}

/// Whether two states hold the same run: compared by address, since a run is only ever
/// replaced, never changed in place.
pub fn same_run(a: &Option<Rc<Loaded>>, b: &Option<Rc<Loaded>>) -> bool {
    run_identity(a) == run_identity(b)
}

/// The whole app state. Running a scenario is deterministic and has no side effects, so it
/// happens in the reducer; stepping only moves the player's cursor.
#[derive(Clone, Debug, Default)]
pub struct Lab {
    /// The built-in scenario chosen, by its place in the library.
    pub selected: Option<usize>,
    pub loaded: Option<Rc<Loaded>>,
    /// Why a link or a scenario file cannot be shown: in place of the details.
    pub error: Option<String>,
    /// Whether `error` is about a scenario file (the details then offer to open another).
    pub file_error: bool,
    /// How many errors were shown, so that the same one shown again is announced again.
    pub errors_shown: u32,
    /// What a link that was followed in part left out, or what a failure key found: over the
    /// details.
    pub notice: Option<String>,
    /// How many notices the failure keys gave, so that the same one given again is said again.
    pub failure_key_notices: u32,
    /// Whether the scenario shown was just chosen in the picker, which says its title itself,
    /// or run again with another seed, which the seed control says: its start does not say
    /// the title until the student moves (a step, Home).
    pub title_told_by_picker: bool,
    /// How many links were followed, so that the address bar is written after each.
    pub links_followed: u32,
    pub player: Player,
    /// The scenario file opened last, which the picker offers until another one is opened.
    pub own: Option<Rc<OwnScenario>>,
    /// The message written last, which the picker offers until another one is written.
    pub written: Option<Rc<WrittenMessage>>,
    /// What is said to be running, a slice at a time, until it is shown or something else is
    /// shown first (then it is not shown after all).
    pub running: Option<RunOf>,
    /// How far that run has got, under the sentence that says it is running.
    pub progress: Option<String>,
    /// The seed a link to the built-in scenario shown gives: the seed of its run, chosen with
    /// the seed control or given by a link, when it is not the scenario's own.
    pub link_seed: Option<u64>,
}

/// A message written in the page and sent.
#[derive(Debug)]
pub struct WrittenMessage {
    /// The scenario it makes: the message in its world, with the servers as changed.
    pub run: Scenario,
    /// The world it was written in, as it was before any change to its servers, and the
    /// draft as sent: the dialog opened on the message's run writes in that world again,
    /// from that draft.
    pub world: Rc<Scenario>,
    pub draft: Draft,
    /// Whether `world` is a built-in scenario as the library has it, its seed aside: a link
    /// names its world, and cannot carry a file's.
    world_is_builtin: bool,
    /// The seed a link gives: `world`'s, when it is not the built-in scenario's own.
    link_seed: Option<u64>,
}

impl WrittenMessage {
    /// `draft` sent in `world`, making `run`.
    pub fn new(run: Scenario, world: Rc<Scenario>, draft: Draft) -> WrittenMessage {
        let builtin = library::find(&world.name);
        let link_seed = builtin
            .as_ref()
            .filter(|builtin| builtin.seed != world.seed)
            .map(|_| world.seed);
        let world_is_builtin = builtin.is_some_and(|builtin| {
            Scenario {
                seed: world.seed,
                ..builtin
            } == *world
        });
        WrittenMessage {
            run,
            world,
            draft,
            world_is_builtin,
            link_seed,
        }
    }

    /// The share link to `step` of its run, when it has one: written in a built-in
    /// scenario's world, and short enough for a link.
    pub fn link(&self, step: usize) -> Option<String> {
        self.world_is_builtin
            .then(|| link::write_message(&self.world.name, &self.draft, self.link_seed, step))
            .flatten()
    }
}

/// What a run made a slice at a time is of, as said while it runs (see [`running_sentence`]).
#[derive(Clone, Debug, PartialEq)]
pub enum RunOf {
    /// The scenario file of this name: one just opened, or, `again`, the one opened last,
    /// chosen again in the picker (which shows its entry meanwhile).
    File { name: String, again: bool },
    /// A message: the one just written, or, `again`, the one written last, chosen again in
    /// the picker.
    Message { again: bool },
}

/// What a run made a slice at a time is shown as, once ready.
pub enum Destined {
    /// The scenario file `name`, which came with `left_out` other files, not opened: just
    /// now, or, `again`, before, and chosen again in the picker.
    File {
        name: String,
        left_out: usize,
        again: bool,
    },
    /// The message written, sent in the world the dialog was open on: just now, or, `again`,
    /// before, and chosen again in the picker.
    Message {
        written: Rc<WrittenMessage>,
        again: bool,
    },
}

impl Destined {
    /// Whether it was chosen again in the picker (see [`RunOf`]).
    fn again(&self) -> bool {
        match self {
            Destined::File { again, .. } | Destined::Message { again, .. } => *again,
        }
    }

    /// What its run is said to be of.
    fn run_of(&self) -> RunOf {
        match self {
            Destined::File { name, again, .. } => RunOf::File {
                name: name.clone(),
                again: *again,
            },
            Destined::Message { again, .. } => RunOf::Message { again: *again },
        }
    }
}

/// A scenario from a file of the user's own, read and found valid.
#[derive(Debug)]
pub struct OwnScenario {
    pub file_name: String,
    pub scenario: Scenario,
}

impl PartialEq for Lab {
    fn eq(&self, other: &Self) -> bool {
        self.selected == other.selected
            && self.player == other.player
            && self.error == other.error
            && self.file_error == other.file_error
            && self.errors_shown == other.errors_shown
            && self.failure_key_notices == other.failure_key_notices
            && self.title_told_by_picker == other.title_told_by_picker
            && self.notice == other.notice
            && self.links_followed == other.links_followed
            && self.link_seed == other.link_seed
            && same_run(&self.loaded, &other.loaded)
            && run_identity(&self.own) == run_identity(&other.own)
            && run_identity(&self.written) == run_identity(&other.written)
    }
}

pub enum LabAction {
    Select(usize),
    Player(PlayerAction),
    /// A share link (the URL's fragment) was opened: its scenario at its step, with a
    /// sentence for what in it was left out, or a sentence that says why it cannot be
    /// followed.
    FollowLink(String),
    /// Go to the next step that goes wrong (true), or the one before (false); stay when
    /// there is none.
    ToFailure(bool),
    /// A scenario file was read, or a message written, and its run is about to be made,
    /// which may take a while: said to be running (see [`running_sentence`], the player
    /// paused) until it is shown.
    Running(RunOf),
    /// The run said to be running is given up (a message is being written in the world
    /// shown).
    GiveUpRun,
    /// The run said to be running has got this far (words for [`Lab::progress`]).
    Preparing {
        of: RunOf,
        progress: String,
    },
    /// The run said to be running is ready: shown as a file opened, or a message written,
    /// is, if nothing else was shown since.
    Prepared {
        destined: Destined,
        prepared: Box<Prepared>,
    },
    /// A scenario file opened (chosen in the file dialog, or dropped on the page) could not
    /// be read or is no valid scenario: its name, and every reason why (see
    /// [`file_scenario`]), said where the details go (the scenario shown, if any, stays).
    FileRefused {
        name: String,
        problem: String,
        /// Said to be running first (`Running`): said only if nothing else was shown since.
        announced: bool,
    },
    /// A share link's message was sent: the scenario it makes, shown and offered by the
    /// picker from then on, and the world it was written in. (A message written in the
    /// dialog is run a slice at a time, and shown by `Prepared`.)
    Written(Rc<WrittenMessage>),
    /// The built-in scenario shown is run again with this seed, and shown at its start. (A
    /// scenario file's, or a message's, is run a slice at a time, and shown by `Prepared`.)
    Reseed(u64),
}

impl Reducible for Lab {
    type Action = LabAction;

    fn reduce(self: Rc<Self>, action: LabAction) -> Rc<Self> {
        match action {
            // Stepping on in a scenario that is shown puts a link's complaint away (not the
            // sentence that a file is running, which is said for as long as it runs).
            LabAction::Player(action) => Rc::new(Lab {
                player: self.player.apply(action),
                error: self.error.clone().filter(|_| self.loaded.is_none()),
                notice: None,
                title_told_by_picker: false,
                ..(*self).clone()
            }),
            LabAction::Running(of) => {
                let mut player = self.player.clone();
                player.playing = false;
                Rc::new(Lab {
                    player,
                    notice: None,
                    running: Some(of),
                    progress: None,
                    ..(*self).clone()
                })
            }
            LabAction::GiveUpRun => Rc::new(Lab {
                running: None,
                progress: None,
                ..(*self).clone()
            }),
            LabAction::Preparing { of, progress } => {
                if self.running.as_ref() != Some(&of) {
                    return self;
                }
                Rc::new(Lab {
                    progress: Some(progress),
                    ..(*self).clone()
                })
            }
            LabAction::Prepared { destined, prepared } => {
                if self.running.as_ref() != Some(&destined.run_of()) {
                    return self;
                }
                match destined {
                    Destined::File { name, left_out, .. } => {
                        self.with_file_prepared(name, *prepared, left_out)
                    }
                    Destined::Message { written, .. } => Rc::new(Lab {
                        written: Some(written),
                        ..self.showing_prepared(*prepared, None, Source::Written)
                    }),
                }
            }
            LabAction::ToFailure(forward) => {
                let Some(loaded) = &self.loaded else {
                    return self;
                };
                let cursor = self.player.cursor;
                let target = if forward {
                    next_failure(&loaded.failures, cursor)
                } else {
                    previous_failure(&loaded.failures, cursor)
                };
                match target {
                    Some(cursor) => self.reduce(LabAction::Player(PlayerAction::Seek { cursor })),
                    // Said, rather than nothing happening: the steps marked after (or before)
                    // this one, if any, only follow from a failure already shown.
                    None => Rc::new(Lab {
                        notice: Some(no_failure_sentence(forward, loaded.failures.is_empty())),
                        // Counted, so that the same sentence is said again at each press.
                        failure_key_notices: self.failure_key_notices.wrapping_add(1),
                        ..(*self).clone()
                    }),
                }
            }
            LabAction::FollowLink(fragment) => {
                let followed = self.clone().follow_link(&fragment);
                Rc::new(Lab {
                    // Counted, so that the address bar is written again even when what is
                    // shown did not change (a link followed in part, or not at all).
                    links_followed: self.links_followed.wrapping_add(1),
                    // A run still going is given up for the link, as the page gives up
                    // its run.
                    running: None,
                    progress: None,
                    ..(*followed).clone()
                })
            }
            LabAction::Select(index) => Rc::new(Lab {
                title_told_by_picker: true,
                ..(*self.selecting(index, None)).clone()
            }),
            LabAction::Written(written) => Rc::new(Lab {
                written: Some(Rc::clone(&written)),
                ..self.showing(written.run.clone(), None, Source::Written)
            }),
            // A file said to be running is not spoken of once something else was shown.
            LabAction::FileRefused {
                announced: true,
                name,
                ..
            } if self.running.as_ref()
                != Some(&RunOf::File {
                    name: name.clone(),
                    again: false,
                }) =>
            {
                self
            }
            LabAction::FileRefused { problem, .. } => self.with_error_about(problem, true),
            LabAction::Reseed(seed) => match self.loaded.as_ref().map(|l| &l.source) {
                Some(Source::Library) => match self.selected {
                    Some(index) => Rc::new(Lab {
                        title_told_by_picker: true,
                        ..(*self.selecting(index, Some(seed))).clone()
                    }),
                    None => self,
                },
                _ => self,
            },
        }
    }
}

impl Lab {
    /// The built-in scenario at `index` run, with `seed` when given (else its own), and shown
    /// at its start; or why it cannot be.
    fn selecting(self: Rc<Self>, index: usize, seed: Option<u64>) -> Rc<Lab> {
        let Some((file, text)) = SCENARIO_FILES.get(index) else {
            return self;
        };
        match Scenario::from_json(text) {
            Ok(scenario) => {
                let link_seed = seed.filter(|seed| *seed != scenario.seed);
                let scenario = Scenario {
                    seed: seed.unwrap_or(scenario.seed),
                    ..scenario
                };
                Rc::new(Lab {
                    link_seed,
                    ..self.showing(scenario, Some(index), Source::Library)
                })
            }
            Err(errors) => Rc::new(Lab {
                selected: Some(index),
                loaded: None,
                error: Some(format!("{file} is not a valid scenario: {errors}")),
                file_error: false,
                notice: None,
                player: self.player.apply(PlayerAction::Load { trace_len: 0 }),
                ..(*self).clone()
            }),
        }
    }

    /// `scenario` run and shown at its start: the built-in one at `selected`, or one from
    /// `source`.
    fn showing(&self, scenario: Scenario, selected: Option<usize>, source: Source) -> Lab {
        self.showing_prepared(Prepared::of(scenario), selected, source)
    }

    /// A run made ready, shown at its start (see [`Lab::showing`]).
    fn showing_prepared(&self, prepared: Prepared, selected: Option<usize>, source: Source) -> Lab {
        let Prepared {
            scenario,
            steps,
            viewer,
            map,
            failures,
        } = prepared;
        let player = self.player.apply(PlayerAction::Load {
            trace_len: steps.len(),
        });
        Lab {
            selected,
            loaded: Some(Rc::new(Loaded {
                scenario,
                steps,
                viewer,
                map: Rc::new(map),
                source,
                failures,
                first_copies: OnceCell::new(),
            })),
            error: None,
            file_error: false,
            notice: None,
            player,
            running: None,
            progress: None,
            link_seed: None,
            title_told_by_picker: false,
            ..self.clone()
        }
    }

    /// The run of the scenario file `name`, made ready, shown at its start and offered by the
    /// picker from then on.
    fn with_file_prepared(&self, name: String, prepared: Prepared, left_out: usize) -> Rc<Lab> {
        let own = Rc::new(OwnScenario {
            file_name: name.clone(),
            scenario: prepared.scenario.clone(),
        });
        let notice = (left_out > 0).then(|| {
            format!(
                "{} files were dropped; only the first, {name}, is opened: one scenario at a \
                 time.",
                left_out + 1
            )
        });
        Rc::new(Lab {
            own: Some(own),
            notice,
            ..self.showing_prepared(prepared, None, Source::File(name))
        })
    }

    /// A share link (the URL's fragment) opened: its scenario at its step, with a notice of
    /// what in it was left out, or an error that says why it cannot be followed.
    fn follow_link(self: Rc<Self>, fragment: &str) -> Rc<Lab> {
        let link = match link::parse(fragment) {
            Ok(Some(link)) => link,
            Ok(None) => return self,
            Err(problem) => return self.with_error(problem),
        };
        let Some(index) = library::position(&link.scenario) else {
            return self.with_error(format!(
                "This link names the scenario {:?}, which is not one of SMTP Lab's.{} \
                 Choose one with the Scenario picker.",
                link.scenario,
                library::did_you_mean(&link.scenario)
            ));
        };
        // Whether the run shown has the link's seed: the one it gives, or, when it gives none,
        // the scenario's own.
        let same_seed = self.loaded.as_ref().is_some_and(|loaded| match link.seed {
            Some(seed) => loaded.scenario.seed == seed,
            None => self.link_seed.is_none(),
        });
        // A link whose step could not be read, to the scenario already shown with the link's
        // seed, leaves it where it is; otherwise the link's scenario opens at its step (or its
        // start), with the link's message sent in its world if it has one.
        let stays = link.step_unreadable
            && link.message.is_none()
            && self.selected == Some(index)
            && same_seed;
        let mut message_problem = None;
        let opened = if stays {
            let mut player = self.player.clone();
            // Paused, or the next tick would put the notice away at once.
            player.playing = false;
            Rc::new(Lab {
                player,
                ..(*self).clone()
            })
        } else {
            let mut opened = self.clone().selecting(index, link.seed);
            let world = opened.loaded.as_ref().map(|l| Rc::new(l.scenario.clone()));
            if let (Some(draft), Some(world)) = (link.message.clone(), world) {
                let draft = draft.with_host_names_of(&world);
                match draft.sent_in(&world) {
                    Ok(run) => {
                        let written = WrittenMessage::new(run, world, draft);
                        opened = opened.reduce(LabAction::Written(Rc::new(written)));
                    }
                    Err(problem) => {
                        // The words may begin as the dialog says them ("This message cannot
                        // be sent."): said once.
                        let words = problem
                            .words
                            .strip_prefix("This message cannot be sent. ")
                            .unwrap_or(&problem.words);
                        message_problem = Some(format!(
                            "This link's message cannot be sent: {words} The scenario is shown \
                             without it."
                        ));
                    }
                }
            }
            // The step of a message's run is no step of the scenario without it.
            let cursor = if message_problem.is_some() || link.message_unreadable {
                0
            } else {
                link.step
            };
            Rc::new(Lab {
                player: opened.player.apply(PlayerAction::Seek { cursor }),
                ..(*opened).clone()
            })
        };
        let shown = match opened.loaded.as_ref().map(|l| &l.source) {
            Some(Source::Written) => "Your message's run",
            _ => "The scenario",
        };
        let outcome = match (link.step_unreadable, stays, opened.player.cursor) {
            (false, _, cursor) if cursor > 0 => format!(" {shown} opens at step {cursor}."),
            (false, _, _) => format!(" {shown} opens at its start."),
            (true, true, cursor) if cursor > 0 => {
                format!(" The scenario stays at step {cursor}.")
            }
            (true, true, _) => " The scenario stays at its start.".to_string(),
            (true, false, _) => format!(" {shown} opens at its start."),
        };
        // A step past the end (a link to a longer version of the scenario, or one changed by
        // hand) shows the end, and says so: a student told to look at step 90 of 60 would
        // otherwise wonder what they missed.
        let message_failed = link.message_unreadable || message_problem.is_some();
        let past_end = (!link.step_unreadable
            && !message_failed
            && link.step > opened.player.trace_len)
            .then(|| {
                let steps = opened.player.trace_len;
                let plural = if steps == 1 { "" } else { "s" };
                // A number too large to hold is read as the largest there is, not written back.
                if link.step == usize::MAX {
                    format!(
                        "This link gives a step number larger than any scenario has; this one has \
                     {steps} step{plural}."
                    )
                } else {
                    format!(
                        "This link gives step {}, but this scenario has {steps} step{plural}.",
                        link.step
                    )
                }
            });
        let problems: Vec<String> = link
            .left_out
            .into_iter()
            .chain(message_problem)
            .chain(past_end)
            .collect();
        // What was left out is said over the step's details, which stay.
        Rc::new(Lab {
            error: None,
            file_error: false,
            notice: (!problems.is_empty()).then(|| problems.join(" ") + &outcome),
            ..(*opened).clone()
        })
    }

    /// `problem` shown where the details go; the scenario shown, if any, stays (paused).
    fn with_error(&self, problem: String) -> Rc<Lab> {
        self.with_error_about(problem, false)
    }

    /// `problem`, about a scenario file or not, shown where the details go.
    fn with_error_about(&self, problem: String, file_error: bool) -> Rc<Lab> {
        let mut player = self.player.clone();
        player.playing = false;
        Rc::new(Lab {
            error: Some(problem),
            file_error,
            errors_shown: self.errors_shown.wrapping_add(1),
            notice: None,
            player,
            running: None,
            progress: None,
            ..self.clone()
        })
    }
}

/// How long what is shown stands still before the address bar is written.
pub const ADDRESS_DELAY_MS: u32 = 150;

/// Most time a repeat of a held key may have waited to be taken. A held key repeats some 30
/// times a second; a machine slower to draw a step queues the repeats, and would go on stepping
/// long after the key is let go. A repeat that waited longer is passed by: the steps keep
/// pace with the drawing and stop soon after the key does. A repeat that waited less steps:
/// a laptop or phone four to six times slower than a desktop, at the end of a scenario file
/// of a hundred messages, keeps them waiting up to about 170 ms, and steps at every one.
pub const KEY_REPEAT_WAIT_MAX_MS: f64 = 250.0;

/// How long `event` waited to be taken, on the clock of its time stamp; none, when the time
/// stamp cannot be on that clock (a browser that gives none, or one from another clock): a
/// repeat is then taken.
fn waited_ms(event: &web_sys::KeyboardEvent) -> f64 {
    /// Longer than any wait a key repeat has on a page that still answers.
    const PLAUSIBLE_WAIT_MAX_MS: f64 = 60_000.0;
    let waited = gloo::utils::window()
        .performance()
        .map_or(0.0, |performance| performance.now() - event.time_stamp());
    if (0.0..PLAUSIBLE_WAIT_MAX_MS).contains(&waited) {
        waited
    } else {
        0.0
    }
}

/// The page's own title: index.html's `<title>` (a test holds them together), after the
/// scenario's when one is shown.
pub const PAGE_TITLE: &str = "SMTP Lab: watch e-mail travel";

/// What the failure keys say when there is no failure that way.
pub fn no_failure_sentence(forward: bool, none_in_run: bool) -> String {
    if none_in_run {
        "Nothing fails in this run.".to_string()
    } else if forward {
        "No failure after this step: any later step marked as failing only follows from one \
         already shown (such as the retry it schedules), and the failure keys pass it by."
            .to_string()
    } else {
        "No failure before this step.".to_string()
    }
}

/// Titles of the built-in scenarios, in library order (a broken file shows its name).
fn scenario_titles() -> Vec<String> {
    library::builtin()
        .into_iter()
        .map(|scenario| match scenario {
            Ok(scenario) => scenario.title,
            Err((file, _)) => format!("{file} (invalid)"),
        })
        .collect()
}

/// Where the browser keeps whether the diagram was made larger (`large`, or nothing).
const DIAGRAM_SIZE_KEY: &str = "smtp-lab.diagram";

/// The browser's storage for this site, when it gives one (a private window or a browser set
/// to keep nothing may not: the choice then lasts as long as the page).
fn site_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn stored_diagram_large() -> bool {
    site_storage()
        .and_then(|storage| storage.get_item(DIAGRAM_SIZE_KEY).ok().flatten())
        .is_some_and(|size| size == "large")
}

fn store_diagram_large(large: bool) {
    if let Some(storage) = site_storage() {
        // A storage that is full or refuses is no error: the choice lasts as long as the page.
        let _ = match large {
            true => storage.set_item(DIAGRAM_SIZE_KEY, "large"),
            false => storage.remove_item(DIAGRAM_SIZE_KEY),
        };
    }
}

#[function_component(App)]
pub fn app() -> Html {
    let lab = use_reducer(Lab::default);
    let titles = use_memo((), |_| scenario_titles());
    // Whether the diagram takes most of the height (a class projected on a short screen): an
    // attribute of the lab, whose rows the style sheet sets by it. The browser keeps the
    // choice, so that a projector's page, reloaded or opened again, keeps its larger diagram.
    let diagram_large = use_state_eq(stored_diagram_large);
    use_effect_with(*diagram_large, |&large| {
        if let Some(lab) = gloo::utils::document().get_element_by_id(super::ROOT_ID) {
            let _ = match large {
                true => lab.set_attribute("data-diagram", "large"),
                false => lab.remove_attribute("data-diagram"),
            };
        }
        store_diagram_large(large);
    });

    // While playing, a timer moves the cursor; it stops with the player or a new speed.
    {
        let lab = lab.clone();
        let playing = lab.player.playing;
        let speed = lab.player.speed_events_per_s();
        use_effect_with((playing, speed), move |&(playing, speed)| {
            let interval = playing.then(|| {
                Interval::new(1000 / speed.max(1), move || {
                    lab.dispatch(LabAction::Player(PlayerAction::Tick))
                })
            });
            move || drop(interval)
        });
    }

    // A scenario file being read or run, or a message written being run, given up (dropped)
    // when something else is chosen first.
    let file_in_hand = use_mut_ref(|| None::<FileInHand>);
    // Set when the user chose a scenario or a file, so that the focus moves on to Play once
    // it is shown (see below).
    let play_when_shown = use_mut_ref(|| false);
    // The world the dialog for writing a message is open on, while it is open.
    let compose_base = use_state(|| None::<Rc<Scenario>>);
    // The draft it opens with, when not the world's own message.
    let compose_draft = use_state(|| None::<Draft>);
    // A share link opens its scenario at its step, on load and when the fragment changes.
    // The dialog for writing a message, if open, closes: the world it was writing in is no
    // longer shown (the browser's Back button, say, back to a link opened before, which on a
    // phone is also how a dialog is closed).
    {
        let lab = lab.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        let compose_base = compose_base.clone();
        use_effect_with((), move |_| {
            let window = gloo::utils::window();
            let follow = move || {
                *file_in_hand.borrow_mut() = None;
                *play_when_shown.borrow_mut() = false;
                compose_base.set(None);
                let fragment = link_in_address_putting_a_query_right();
                // A step, or what is wrong with the link or left out of it, is said in the
                // details.
                let said_in_details = match link::parse(&fragment) {
                    Ok(None) => false,
                    Ok(Some(link)) => {
                        link.step > 0
                            || link.left_out.is_some()
                            || link.step_unreadable
                            || link.message.is_some()
                            || library::position(&link.scenario).is_none()
                    }
                    Err(_) => true,
                };
                // Where the focus goes once the link is shown: off the picker, where the
                // arrow keys would choose another scenario, if a dialog the link closes gave it
                // back there; and to the details, if what had it was replaced (a link that
                // cannot be followed replaces the details' content), rather than lost to the
                // page. A page just opened keeps the focus where the browser puts it.
                let document = gloo::utils::document();
                let dialog_was_open = document
                    .query_selector("dialog[open]")
                    .ok()
                    .flatten()
                    .is_some();
                let focus_was_in_page = !focus_on_page();
                lab.dispatch(LabAction::FollowLink(fragment));
                if said_in_details {
                    // Once the step is drawn.
                    Timeout::new(0, bring_details_into_sight).forget();
                }
                Timeout::new(0, move || {
                    if dialog_was_open {
                        focus_play();
                    }
                    if (dialog_was_open || focus_was_in_page) && focus_on_page() {
                        focus_first(".region-details .details-body", false);
                    }
                })
                .forget();
            };
            follow();
            let listener = EventListener::new(&window, "hashchange", move |_| follow());
            move || drop(listener)
        });
    }
    // Keyboard shortcuts for the player, anywhere but in a form field, and not for a key a
    // focused element handles itself (Space presses a button and opens a summary), except on
    // the player's own buttons and the diagram's size button (a teacher who clicked it then
    // presses Space to play): there Space plays and pauses, as in media players, and Enter
    // presses the button.
    {
        let lab = lab.clone();
        use_effect_with((), move |_| {
            // Not passive: a handled key must not also scroll the page.
            let options = EventListenerOptions::enable_prevent_default();
            let window = gloo::utils::window();
            let listener =
                EventListener::new_with_options(&window, "keydown", options, move |event| {
                    let Some(event) = event.dyn_ref::<web_sys::KeyboardEvent>() else {
                        return;
                    };
                    if event.ctrl_key() || event.alt_key() || event.meta_key() {
                        return;
                    }
                    let target = event
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::Element>().ok());
                    let tag = target
                        .as_ref()
                        .map(|element| element.tag_name())
                        .unwrap_or_default();
                    let in_player = target
                        .as_ref()
                        .and_then(|element| {
                            element
                                .closest(".controls, .topology-resize")
                                .ok()
                                .flatten()
                        })
                        .is_some();
                    let key = event.key();
                    // A diagram wider than its box scrolls sideways with ← and → when it has
                    // the focus (see the topology); Home and End stay the player's, as the
                    // box does not scroll up and down.
                    let scrolls_diagram = matches!(key.as_str(), "ArrowLeft" | "ArrowRight")
                        && !event.shift_key()
                        && target
                            .as_ref()
                            .and_then(|element| element.closest(".topology-scroll").ok().flatten())
                            .is_some();
                    // A box of lines in the details (the bytes, a message's outline) that has
                    // the focus scrolls to its top and end with Home and End, as any scrolling
                    // box does (← and → still step).
                    let scrolls_box = matches!(key.as_str(), "Home" | "End")
                        && target
                            .as_ref()
                            .and_then(|element| {
                                element.closest(".wire-lines, .outline-body").ok().flatten()
                            })
                            .is_some();
                    let pressed_by_space =
                        matches!(tag.as_str(), "BUTTON" | "SUMMARY") && !in_player;
                    // Nor while a dialog is over the page (writing a message): the keys are
                    // its own, and the player behind it is out of reach.
                    let in_dialog = gloo::utils::document()
                        .query_selector("dialog[open]")
                        .ok()
                        .flatten()
                        .is_some();
                    if matches!(tag.as_str(), "SELECT" | "INPUT" | "TEXTAREA")
                        || in_dialog
                        || scrolls_diagram
                        || scrolls_box
                        || (key == " " && pressed_by_space)
                    {
                        return;
                    }
                    let action = match failure_key(&key, event.shift_key()) {
                        Some(forward) => LabAction::ToFailure(forward),
                        None => match key_action(&key) {
                            Some(action) => LabAction::Player(action),
                            None => return,
                        },
                    };
                    event.prevent_default();
                    // Space held down would play and pause over and over: a repeat of it is
                    // passed by, as one of any key that waited too long.
                    let toggles = matches!(action, LabAction::Player(PlayerAction::TogglePlay));
                    if event.repeat() && (toggles || waited_ms(event) > KEY_REPEAT_WAIT_MAX_MS) {
                        return;
                    }
                    match action {
                        LabAction::ToFailure(forward) => jump_to_failure(&lab, forward),
                        action => lab.dispatch(action),
                    }
                });
            move || drop(listener)
        });
    }
    // The address bar holds the link to what is shown, without adding to the history; not
    // while playing. It is written once what is shown has stood still a moment: a student
    // holding an arrow key steps faster than browsers take address changes (Chromium ignores
    // more than 200 in 10 seconds). A link that was not followed as written (in part, or not
    // at all) is replaced too, even where what is shown did not change.
    {
        let shown = lab
            .loaded
            .as_ref()
            .filter(|_| !lab.player.playing)
            // A link cannot carry a scenario file, nor a message written in one's world or too
            // long for a link: the address then holds none.
            .map(|l| match l.source {
                Source::Library => link::write(&l.scenario.name, lab.link_seed, lab.player.cursor),
                Source::Written => lab
                    .written
                    .as_ref()
                    .and_then(|written| written.link(lab.player.cursor))
                    .unwrap_or_default(),
                Source::File(_) => String::new(),
            });
        // How many links had been followed when what is shown last changed: the first change
        // after another is a link's (opened, or reached with Back), whose address it only puts
        // right. Decided when it changes, not when the address is written: a change before
        // then (a message sent at once) cancels that write, and is a page of its own.
        let links_seen = use_mut_ref(|| 0_u32);
        use_effect_with(
            (shown, lab.links_followed),
            move |(shown, links_followed)| {
                let address = || gloo::utils::window().location().hash().unwrap_or_default();
                let before = address();
                let after_link = *links_followed != links_seen.replace(*links_followed);
                let write = shown.clone().map(|fragment| {
                    Timeout::new(ADDRESS_DELAY_MS, move || {
                        // A link opened meanwhile is the user's, and about to be followed: kept.
                        if address() != before {
                            return;
                        }
                        let window = gloo::utils::window();
                        // The page's path alone: a query may be a link written with '?'.
                        let url = if fragment.is_empty() {
                            window.location().pathname().unwrap_or_default()
                        } else {
                            fragment
                        };
                        // Another scenario picked, or a message written and sent, is another
                        // page to the student: Back returns to the one before, at its step.
                        // Steps within one replace the address, or Back would walk back
                        // through every step; so does a link followed, or a link the app could
                        // not follow as written would come back with every Back.
                        let page_of = |address: &str| {
                            link::parse(address).ok().flatten().map(|link| {
                                (link.scenario.to_ascii_lowercase(), link.seed, link.message)
                            })
                        };
                        let another_page = !after_link
                            && matches!(
                                (page_of(&before), page_of(&url)),
                                (Some(was), Some(now)) if was != now
                            );
                        if let Ok(history) = window.history() {
                            let _ = if another_page {
                                history.push_state_with_url(&JsValue::NULL, "", Some(&url))
                            } else {
                                history.replace_state_with_url(&JsValue::NULL, "", Some(&url))
                            };
                        }
                    })
                });
                // A change before then cancels the write (a dropped timeout does not fire).
                move || drop(write)
            },
        );
    }

    // The tab's title names the scenario shown, so that tabs opened from several links can
    // be told apart (WCAG 2.4.2).
    {
        let shown_title = lab.loaded.as_ref().map(|l| l.scenario.title.clone());
        use_effect_with(shown_title, |shown_title| {
            let title = match shown_title {
                Some(scenario) => format!("{scenario} · {PAGE_TITLE}"),
                None => PAGE_TITLE.to_string(),
            };
            gloo::utils::document().set_title(&title);
        });
    }

    // A scenario chosen with the picker (a click, or Enter in its open list), or a scenario
    // file chosen in the file dialog: once it is shown, the focus moves on to Play, so that
    // the keys step through it rather than choose the next scenario. The arrow keys on the
    // closed picker change the scenario at each press: there they browse, and the focus stays
    // until Enter (WCAG 3.2.2: an input does not move the user away). A file that cannot be
    // shown leaves the focus where it was, or, if it went with what the details showed, puts
    // it on the box of its problems.
    let picker_browsing = use_mut_ref(|| false);
    {
        let play_when_shown = Rc::clone(&play_when_shown);
        let failed = lab.error.is_some();
        use_effect_with(
            (run_identity(&lab.loaded), lab.errors_shown, failed),
            move |_| {
                if std::mem::take(&mut *play_when_shown.borrow_mut()) {
                    if !failed {
                        focus_play();
                    } else if focus_on_page() {
                        // The box of the problems, from their start, which the keyboard then
                        // scrolls; the button to open another file is at their end.
                        focus_first(".region-details .details-body", false);
                    }
                }
            },
        );
    }
    // The picker's entry for what is shown: a built-in scenario's place, the scenario file's
    // entry, the written message's, or none.
    let shown_entry = match (lab.loaded.as_ref().map(|l| &l.source), lab.selected) {
        (Some(Source::File(_)), _) => OWN_SCENARIO.to_string(),
        (Some(Source::Written), _) => WRITTEN.to_string(),
        (_, Some(index)) => index.to_string(),
        _ => String::new(),
    };
    // The picker's value: the entry of what is shown, but while the file or the message,
    // chosen again in the picker, is running, its entry, as chosen (what is shown meanwhile
    // is not what the picker's arrows go on from, nor what a message is written in).
    let running_entry = match &lab.running {
        Some(RunOf::File { again: true, .. }) => Some(OWN_SCENARIO),
        Some(RunOf::Message { again: true }) => Some(WRITTEN),
        _ => None,
    };
    let shown_choice = running_entry.map_or_else(|| shown_entry.clone(), str::to_string);
    // The picker shows what is shown, whatever the user or a script left it on before (a
    // browser stops following an entry's `selected` once its choice was changed), but for
    // the entry that opens a file, which the arrows may rest on.
    let picker = use_node_ref();
    {
        let picker = picker.clone();
        let shown_choice = shown_choice.clone();
        use_effect(move || {
            if let Some(select) = picker.cast::<web_sys::HtmlSelectElement>() {
                let value = select.value();
                if value != shown_choice && !opens_something(&value) {
                    select.set_value(&shown_choice);
                }
            }
        });
    }
    let file_input = use_node_ref();
    let open_file = {
        let file_input = file_input.clone();
        Callback::from(move |()| open_file_dialog(&file_input))
    };
    let on_failure = {
        let lab = lab.clone();
        Callback::from(move |forward: bool| jump_to_failure(&lab, forward))
    };
    let on_file_chosen = {
        let lab = lab.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        Callback::from(move |event: Event| {
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            let file = input.files().and_then(|files| files.get(0));
            // Emptied, so that the same file, edited and chosen again, is read again.
            input.set_value("");
            if let Some(file) = file {
                *play_when_shown.borrow_mut() = true;
                read_scenario_file(file, 0, lab.dispatcher(), &file_in_hand);
            }
        })
    };
    // A file dropped anywhere on the page is opened as a scenario file; without this a
    // browser would leave the app to show the file. The dialog for writing a message, if
    // open, closes: its world is no longer shown. While a file is dragged over the page, the
    // page says it will open it.
    let file_over_page = use_state_eq(|| false);
    {
        let lab = lab.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        let compose_base = compose_base.clone();
        let file_over_page = file_over_page.clone();
        use_effect_with((), move |_| {
            let window = gloo::utils::window();
            let options = EventListenerOptions::enable_prevent_default();
            // The page's elements the drag is over, counted: a drag that moves from one
            // element to another enters the second before it leaves the first, so the drag has
            // left the page when as many leaves as enters have come.
            let elements_entered = Rc::new(Cell::new(0u32));
            let entered = {
                let elements_entered = Rc::clone(&elements_entered);
                let file_over_page = file_over_page.clone();
                EventListener::new(&window, "dragenter", move |event| {
                    if dragged_files(event).is_some() {
                        elements_entered.set(elements_entered.get().saturating_add(1));
                        file_over_page.set(true);
                    }
                })
            };
            let left = {
                let elements_entered = Rc::clone(&elements_entered);
                let file_over_page = file_over_page.clone();
                EventListener::new(&window, "dragleave", move |event| {
                    if dragged_files(event).is_some() {
                        elements_entered.set(elements_entered.get().saturating_sub(1));
                        if elements_entered.get() == 0 {
                            file_over_page.set(false);
                        }
                    }
                })
            };
            let over = {
                let file_over_page = file_over_page.clone();
                EventListener::new_with_options(&window, "dragover", options, move |event| {
                    if let Some(transfer) = dragged_files(event) {
                        event.prevent_default();
                        transfer.set_drop_effect("copy");
                        file_over_page.set(true);
                    }
                })
            };
            let dropped = EventListener::new_with_options(&window, "drop", options, move |event| {
                let Some(transfer) = dragged_files(event) else {
                    // Text or a link: not the app's.
                    return;
                };
                elements_entered.set(0);
                file_over_page.set(false);
                // Taken from the browser, which would leave the app to show it, even when it
                // holds no file the page can read.
                event.prevent_default();
                let files = transfer.files();
                let count = files.as_ref().map_or(0, |files| files.length() as usize);
                if let Some(file) = files.and_then(|files| files.get(0)) {
                    *play_when_shown.borrow_mut() = false;
                    compose_base.set(None);
                    let left_out = count.saturating_sub(1);
                    read_scenario_file(file, left_out, lab.dispatcher(), &file_in_hand);
                }
            });
            move || drop((entered, left, over, dropped))
        });
    }
    // Opened on the scenario shown, or on the library's first when none is; from the picker
    // (`from_picker`), on the scenario the picker names, which may be a file or a message
    // chosen again and still running. A scenario playing is paused, so as not to go on unseen
    // behind the dialog.
    let open_compose = {
        let compose_base = compose_base.clone();
        let compose_draft = compose_draft.clone();
        let lab = lab.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let shown_choice = shown_choice.clone();
        let shown_entry = shown_entry.clone();
        Callback::from(move |from_picker: bool| {
            if lab.player.playing {
                lab.dispatch(LabAction::Player(PlayerAction::TogglePlay));
            }
            // A file being read or run, or a message being run, would replace the world the
            // dialog writes in, under it: it is given up, as for another scenario chosen.
            give_up_run(&lab, &file_in_hand);
            let entry = if from_picker {
                &shown_choice
            } else {
                &shown_entry
            };
            // The message written last is written again in the world it was written in, so
            // that the dialog shows the draft as sent, server changes too, and a change taken
            // back is undone rather than kept in the world.
            if let (WRITTEN, Some(written)) = (entry.as_str(), &lab.written) {
                compose_draft.set(Some(written.draft.clone()));
                compose_base.set(Some(Rc::clone(&written.world)));
                return;
            }
            compose_draft.set(None);
            // Copied only now: a scenario of a large file is large.
            let base = match (entry.as_str(), &lab.own) {
                (OWN_SCENARIO, Some(own)) => Some(own.scenario.clone()),
                _ => lab
                    .loaded
                    .as_ref()
                    .map(|loaded| loaded.scenario.clone())
                    .or_else(|| library::builtin().into_iter().flatten().next()),
            };
            compose_base.set(base.map(Rc::new));
        })
    };
    let on_written = {
        let lab = lab.clone();
        let compose_base = compose_base.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        Callback::from(move |(scenario, draft): (Scenario, Draft)| {
            let Some(world) = (*compose_base).clone() else {
                return;
            };
            compose_base.set(None);
            *play_when_shown.borrow_mut() = true;
            // Run a slice at a time, as a file is: a world from a file may retry for a year.
            // A file still being read would replace the message when it is: it is given up.
            let written = Rc::new(WrittenMessage::new(scenario, world, draft));
            run_in_slices(
                written.run.clone(),
                Destined::Message {
                    written,
                    again: false,
                },
                lab.dispatcher(),
                &file_in_hand,
                Rc::new(()),
                false,
            );
        })
    };
    // The scenario shown run again with another seed: a built-in one at once, a file's or a
    // message's a slice at a time, as when it was first opened or sent.
    let on_seed = {
        let lab = lab.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        Callback::from(move |seed: u64| {
            let Some(loaded) = &lab.loaded else {
                return;
            };
            *play_when_shown.borrow_mut() = false;
            if lab.player.playing {
                lab.dispatch(LabAction::Player(PlayerAction::TogglePlay));
            }
            // A file or a message still running would replace this run when it is.
            give_up_run(&lab, &file_in_hand);
            let reseeded = |scenario: &Scenario| Scenario {
                seed,
                ..scenario.clone()
            };
            let (scenario, destined) = match (&loaded.source, &lab.written) {
                (Source::Library, _) => return lab.dispatch(LabAction::Reseed(seed)),
                (Source::File(name), _) => (
                    reseeded(&loaded.scenario),
                    Destined::File {
                        name: name.clone(),
                        left_out: 0,
                        again: true,
                    },
                ),
                (Source::Written, Some(written)) => {
                    let run = reseeded(&written.run);
                    let world = Rc::new(reseeded(&written.world));
                    let written = WrittenMessage::new(run.clone(), world, written.draft.clone());
                    (
                        run,
                        Destined::Message {
                            written: Rc::new(written),
                            again: true,
                        },
                    )
                }
                (Source::Written, None) => return,
            };
            run_in_slices(
                scenario,
                destined,
                lab.dispatcher(),
                &file_in_hand,
                Rc::new(()),
                false,
            );
        })
    };
    let on_compose_closed = {
        let compose_base = compose_base.clone();
        Callback::from(move |()| {
            compose_base.set(None);
            // Closed, the dialog gives the focus back to what opened it. The picker moves the
            // focus on to Play after any choice, so that the arrow keys step rather than
            // change the scenario: a dialog it opened and that was put away does too.
            Timeout::new(0, || {
                let on_picker = gloo::utils::document()
                    .active_element()
                    .is_some_and(|active| active.id() == PICKER_ID);
                if on_picker {
                    focus_play();
                }
            })
            .forget();
        })
    };
    let on_picker_key = {
        let open_compose = open_compose.clone();
        let picker_browsing = Rc::clone(&picker_browsing);
        let file_input = file_input.clone();
        let shown_choice = shown_choice.clone();
        Callback::from(move |event: KeyboardEvent| {
            let key = event.key();
            let opens_the_list = event.alt_key() || key == "F4";
            if opens_the_list || key == " " {
                show_what_is_shown(&event, &shown_choice);
            }
            match key.as_str() {
                "Enter" if !opens_the_list => {
                    // Not also a press of Play, which the Enter would reach once it has the
                    // focus.
                    event.prevent_default();
                    *picker_browsing.borrow_mut() = false;
                    let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
                    let value = select.value();
                    if opens_something(&value) {
                        // Browsed to with the arrows: Enter opens its dialog.
                        show_what_is_shown(&event, &shown_choice);
                        if value == OPEN_FILE {
                            open_file_dialog(&file_input);
                        } else {
                            open_compose.emit(true);
                        }
                    } else {
                        focus_play();
                    }
                }
                // These change a closed picker's choice as part of the key press, so its
                // `change` comes before the next task; on macOS they open the list instead,
                // whose later choice must move the focus as a click does. Typing a title's
                // first letters picks it, as the arrows do.
                "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight" | "Home" | "End"
                | "PageUp" | "PageDown"
                    if !opens_the_list =>
                {
                    browse_for_this_key(&picker_browsing);
                }
                _ if key.chars().count() == 1 && key != " " && !opens_the_list => {
                    browse_for_this_key(&picker_browsing);
                }
                _ => *picker_browsing.borrow_mut() = false,
            }
        })
    };
    let on_picker_pointer = {
        let picker_browsing = Rc::clone(&picker_browsing);
        let shown_choice = shown_choice.clone();
        Callback::from(move |event: PointerEvent| {
            *picker_browsing.borrow_mut() = false;
            show_what_is_shown(&event, &shown_choice);
        })
    };

    let on_action = {
        let lab = lab.clone();
        Callback::from(move |action: PlayerAction| lab.dispatch(LabAction::Player(action)))
    };
    let on_select = {
        let lab = lab.clone();
        let open_compose = open_compose.clone();
        let picker_browsing = Rc::clone(&picker_browsing);
        let file_input = file_input.clone();
        let shown_choice = shown_choice.clone();
        let shown_entry = shown_entry.clone();
        let file_in_hand = Rc::clone(&file_in_hand);
        let play_when_shown = Rc::clone(&play_when_shown);
        Callback::from(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            let value = select.value();
            match value.as_str() {
                // Back from the entry that opens a file, with the arrows, to what is shown:
                // it stays where it is.
                _ if value == shown_choice => {}
                // Browsing with the arrows passes this entry by, as it passes the others by
                // without leaving the picker; Enter on it opens the dialog.
                _ if opens_something(&value) && *picker_browsing.borrow() => {}
                OPEN_FILE => {
                    // The picker goes on showing what is shown until a file is opened.
                    show_what_is_shown(&event, &shown_choice);
                    open_file_dialog(&file_input);
                }
                WRITE_MESSAGE => {
                    show_what_is_shown(&event, &shown_choice);
                    open_compose.emit(true);
                }
                // What is shown while an entry chosen again runs, chosen back: the run is given
                // up, and what is shown stays where it is.
                _ if value == shown_entry => {
                    give_up_run(&lab, &file_in_hand);
                    *play_when_shown.borrow_mut() = false;
                    if !*picker_browsing.borrow() {
                        focus_play();
                    }
                }
                // The scenario file opened last, or the message written last, chosen again:
                // run again a slice at a time, as when it was first opened or sent (its run may
                // last a year of retries). It replaces a file or a message still running.
                OWN_SCENARIO | WRITTEN => {
                    let (scenario, destined) = match (value.as_str(), &lab.own, &lab.written) {
                        (OWN_SCENARIO, Some(own), _) => (
                            own.scenario.clone(),
                            Destined::File {
                                name: own.file_name.clone(),
                                left_out: 0,
                                again: true,
                            },
                        ),
                        (WRITTEN, _, Some(written)) => {
                            let written = Rc::clone(written);
                            (
                                written.run.clone(),
                                Destined::Message {
                                    written,
                                    again: true,
                                },
                            )
                        }
                        _ => return,
                    };
                    // Chosen, not browsed to: the focus moves on to Play at once, as for a
                    // built-in scenario, not once the run is shown, so that the keys step the
                    // scenario shown meanwhile rather than choose another entry (which would
                    // give this run up).
                    *play_when_shown.borrow_mut() = false;
                    let chosen = !*picker_browsing.borrow();
                    run_in_slices(
                        scenario,
                        destined,
                        lab.dispatcher(),
                        &file_in_hand,
                        Rc::new(()),
                        false,
                    );
                    if chosen {
                        focus_play();
                    }
                }
                _ => {
                    let Ok(index) = value.parse::<usize>() else {
                        return;
                    };
                    // A file still being read or run, or a message being run, would replace the
                    // choice when it is.
                    *file_in_hand.borrow_mut() = None;
                    *play_when_shown.borrow_mut() = !*picker_browsing.borrow();
                    lab.dispatch(LabAction::Select(index));
                }
            }
        })
    };
    // Left on the entry that opens a file, the picker goes back to what is shown.
    let on_picker_blur = {
        let shown_choice = shown_choice.clone();
        Callback::from(move |event: FocusEvent| show_what_is_shown(&event, &shown_choice))
    };

    let one_column = use_one_column();
    let cursor = lab.player.cursor;
    let loaded = lab.loaded.clone();
    let map = loaded.as_ref().map(|l| Rc::clone(&l.map));
    let (focus, trouble, trouble_reported, reply) = loaded
        .as_ref()
        .and_then(|l| {
            let step = l.step_at(cursor)?;
            let event = &l.viewer.trace().events.get(step.event)?.event;
            // No reply refuses: what goes wrong is a failure the event reports.
            let reported = !Refusal::in_replies(step);
            // What only follows from a failure before it is not where it went wrong.
            let trouble = Refusal::of_step(step).filter(|_| !restates_a_failure(event));
            let reply = matches!(
                event,
                trace::Event::Transmitted {
                    direction: Direction::ServerToClient,
                    ..
                } | trace::Event::ReplyExplained { .. }
            );
            Some((l.map.focus(event), trouble, reported, reply))
        })
        .unwrap_or_default();
    // On a wide screen the diagram is drawn as large as its row lets it; a short screen (a
    // projector) leaves it small, its labels hard to read from the back of a classroom. The
    // button gives it most of the height, and gives it back. In one column (a phone, or a
    // projector zoomed to 200%) it is a strip over the controls: the button gives it the
    // height the controls leave, so that zooming makes its labels larger too.
    let resize_diagram = {
        let large = *diagram_large;
        let onclick = {
            let diagram_large = diagram_large.clone();
            Callback::from(move |_: MouseEvent| diagram_large.set(!large))
        };
        html! {
            <button type="button" class="topology-resize" {onclick}>
                { if large { "Smaller diagram" } else { "Larger diagram" } }
            </button>
        }
    };
    let topology = html! {
        <section key="topology" class="region region-topology" aria-labelledby="topology-title">
            <h2 id="topology-title" class="region-title">{ "Topology" }</h2>
            { resize_diagram }
            <Topology {map} {focus} {trouble} {trouble_reported} {reply} {one_column} large={*diagram_large} />
        </section>
    };
    let conversation = html! {
        <section key="conversation" class="region region-conversation" aria-labelledby="conversation-title">
            <h2 id="conversation-title" class="region-title">{ "Conversation" }</h2>
            <Conversation loaded={loaded.clone()} {cursor} {one_column} />
        </section>
    };
    let details = html! {
        <section key="details" class="region region-details" aria-labelledby="details-title">
            <h2 id="details-title" class="region-title">{ "Details" }</h2>
            <Details loaded={loaded} {cursor} error={lab.error.clone()} file_error={lab.file_error}
                errors_shown={lab.errors_shown} failure_key_notices={lab.failure_key_notices} title_told_by_picker={lab.title_told_by_picker} notice={lab.notice.clone().or_else(|| lab.running.as_ref().map(running_sentence))}
                progress={lab.progress.clone()}
                playing={lab.player.playing} on_open_file={open_file} {on_failure} {on_seed}
                on_write={open_compose.reform(|()| false)} />
        </section>
    };
    let controls = html! {
        <section key="controls" class="region region-controls" aria-label="Scenario and playback controls">
            <div class="scenario-picker">
                <label for={PICKER_ID}>{ "Scenario" }</label>
                <select id={PICKER_ID} ref={picker} onchange={on_select} onblur={on_picker_blur}
                    onkeydown={on_picker_key} onpointerdown={on_picker_pointer}>
                    <option value="" selected={shown_choice.is_empty()} disabled=true>
                        { "Choose a scenario…" }
                    </option>
                    // Grouped by what they teach, a teacher finds one among many; each keeps
                    // its place in the library as its value.
                    { for library::grouped().into_iter().map(|(label, positions)| html! {
                        <optgroup label={label}>
                            { for positions.filter_map(|index| Some((index, titles.get(index)?))).map(|(index, title)| html! {
                                <option value={index.to_string()} selected={shown_choice == index.to_string()}>
                                    { title }
                                </option>
                            }) }
                        </optgroup>
                    }) }
                    <optgroup label="Your own">
                        if let Some(own) = &lab.own {
                            <option value={OWN_SCENARIO} selected={shown_choice == OWN_SCENARIO}>
                                { own_entry(&own.scenario.title, &own.file_name) }
                            </option>
                        }
                        if let Some(written) = &lab.written {
                            <option value={WRITTEN} selected={shown_choice == WRITTEN}>
                                { isolated(&written.run.title) }
                            </option>
                        }
                        <option value={OPEN_FILE}>{ "Open a scenario file…" }</option>
                        <option value={WRITE_MESSAGE}>{ "Write a message…" }</option>
                    </optgroup>
                </select>
                <input type="file" accept=".json,application/json" hidden=true ref={file_input}
                    onchange={on_file_chosen} />
            </div>
            <Controls player={lab.player.clone()} {on_action} />
        </section>
    };
    // The regions in the order they are shown, which Tab and screen readers follow too (the
    // grid places them by area whatever their order).
    let regions = if one_column {
        [topology, controls, details, conversation]
    } else {
        [topology, conversation, details, controls]
    };
    // The dialog after the regions, which move: a dialog moved in the page would stop being
    // modal.
    html! {
        <>
            { for regions }
            // Seen, not read: dragging a file is done with a pointer, and the page says what it
            // opened once the file is dropped. Always there, keyed as its siblings are, so that
            // the regions are moved, not made again, when they change order.
            <div key="drop-overlay" class="drop-overlay" hidden={!*file_over_page} aria-hidden="true">
                <p class="drop-overlay-text">{ "Drop the file to open it as a scenario" }</p>
            </div>
            <Compose key="compose" base={(*compose_base).clone()} draft={(*compose_draft).clone()} on_send={on_written}
                on_close={on_compose_closed} />
        </>
    }
}

/// The media query of the one-column layout (styles/layout.css), where the controls come
/// right under the topology and the conversation last.
const ONE_COLUMN: &str = "(max-width: 720px)";

/// Whether the page is laid out in one column now, and again whenever that changes (a phone
/// turned, a window resized or zoomed). The regions are then put in their new order; a region
/// moved loses the focus and its scroll positions, which are given back, and the focus is
/// brought into sight (the conversation scrolls to its step itself).
#[hook]
fn use_one_column() -> bool {
    let media = use_memo((), |_| {
        gloo::utils::window().match_media(ONE_COLUMN).ok().flatten()
    });
    let one_column = use_state_eq(|| media.as_ref().as_ref().is_some_and(|m| m.matches()));
    let before_move = use_mut_ref(|| None::<BeforeMove>);
    {
        let one_column = one_column.clone();
        let before_move = Rc::clone(&before_move);
        use_effect_with(Rc::clone(&media), move |media| {
            let listener = media.as_ref().as_ref().map(|media| {
                let list = media.clone();
                let shown = *one_column;
                let change = move || {
                    // What was there before the first of several changes made before the
                    // regions moved.
                    before_move.borrow_mut().get_or_insert_with(BeforeMove::now);
                    one_column.set(list.matches());
                };
                // A change between the first render and now fired no event.
                if media.matches() != shown {
                    change();
                }
                EventListener::new(media, "change", move |_| change())
            });
            move || drop(listener)
        });
    }
    // After every render, not only those that change the order: two quick changes that cancel
    // out render the same order again, and what was kept for them is given back (and let go)
    // after the next render.
    let rendered = *one_column;
    use_effect(move || {
        // Only once the regions are in the order the window asks for: another change may
        // be on its way.
        let settled = media
            .as_ref()
            .as_ref()
            .is_none_or(|m| m.matches() == rendered);
        let before = settled.then(|| before_move.borrow_mut().take()).flatten();
        if let Some(before) = before {
            before.restore();
        }
    });
    *one_column
}

/// The scroll boxes of the regions whose positions a move loses, but for the conversation's
/// and the diagram's, which bring the step into sight themselves.
const KEPT_SCROLLERS: &str = "#lab .details-body, #lab .wire-lines";

/// What a move of the regions would lose: the focus and the scroll positions.
struct BeforeMove {
    focused: Option<web_sys::HtmlElement>,
    scrolled: Vec<(web_sys::Element, i32, i32)>,
}

impl BeforeMove {
    fn now() -> BeforeMove {
        let document = gloo::utils::document();
        let focused = document
            .active_element()
            .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
        let mut scrolled = Vec::new();
        if let Ok(scrollers) = document.query_selector_all(KEPT_SCROLLERS) {
            for index in 0..scrollers.length() {
                let Some(element) = scrollers
                    .item(index)
                    .and_then(|node| node.dyn_into::<web_sys::Element>().ok())
                else {
                    continue;
                };
                let (top, left) = (element.scroll_top(), element.scroll_left());
                if top != 0 || left != 0 {
                    scrolled.push((element, top, left));
                }
            }
        }
        BeforeMove { focused, scrolled }
    }

    fn restore(self) {
        for (element, top, left) in self.scrolled {
            if element.is_connected() {
                element.set_scroll_top(top);
                element.set_scroll_left(left);
            }
        }
        let Some(element) = self.focused else {
            return;
        };
        if !element.is_connected() {
            return;
        }
        let focused = gloo::utils::document().active_element();
        if focused.as_ref() != Some(element.as_ref()) {
            let options = web_sys::FocusOptions::new();
            options.set_prevent_scroll(true);
            let _ = element.focus_with_options(&options);
        }
        // In sight in its region and on the page: the regions may now be elsewhere.
        if element.closest("#lab").ok().flatten().is_some() {
            let options = web_sys::ScrollIntoViewOptions::new();
            options.set_block(web_sys::ScrollLogicalPosition::Nearest);
            options.set_inline(web_sys::ScrollLogicalPosition::Nearest);
            element.scroll_into_view_with_scroll_into_view_options(&options);
        }
    }
}

/// How much of the details must show for a link's step to count as in sight: its lines and
/// the start of their explanation.
const DETAILS_IN_SIGHT_PX: f64 = 200.0;

/// Shows the next (or previous) failure. A jump to a failure is made to read it: in one
/// column its explanation is brought up under the controls, as a link's step is; other steps
/// leave the page where the reader has it.
fn jump_to_failure(lab: &UseReducerHandle<Lab>, forward: bool) {
    lab.dispatch(LabAction::ToFailure(forward));
    Timeout::new(0, bring_details_into_sight).forget();
}

/// In one column the step a link opens, or what is wrong with the link, is said in the
/// details, which a short window (a projector zoomed to 200%, a phone held sideways) shows
/// below its bottom edge, and a reader who scrolled down to the conversation has above the
/// window or under the pinned controls: the page scrolls them to just under the controls,
/// unless enough of them shows already. Under the controls as they are drawn, not as the
/// page's scroll padding expects them: larger text makes them taller.
fn bring_details_into_sight() {
    let window = gloo::utils::window();
    let one_column = window
        .match_media(ONE_COLUMN)
        .ok()
        .flatten()
        .is_some_and(|media| media.matches());
    let document = gloo::utils::document();
    let details = document
        .query_selector("#lab .region-details")
        .ok()
        .flatten();
    let (true, Some(details)) = (one_column, details) else {
        return;
    };
    let height = window
        .inner_height()
        .ok()
        .and_then(|height| height.as_f64())
        .unwrap_or_default();
    let controls = document
        .query_selector("#lab .region-controls")
        .ok()
        .flatten();
    let controls_bottom = controls.as_ref().map_or(0.0, |controls| {
        controls.get_bounding_client_rect().bottom().max(0.0)
    });
    // In so short a window that they scroll with the page, the controls are not pinned.
    let pinned_height = controls
        .filter(|controls| {
            window
                .get_computed_style(controls)
                .ok()
                .flatten()
                .and_then(|style| style.get_property_value("position").ok())
                .is_some_and(|position| position == "sticky")
        })
        .map_or(0.0, |controls| controls.get_bounding_client_rect().height());
    let top = details.get_bounding_client_rect().top();
    if top + DETAILS_IN_SIGHT_PX > height || top < controls_bottom - 1.0 {
        window.scroll_by_with_x_and_y(0.0, top - pinned_height);
    }
}

/// The picker's value for the scenario file opened last.
const OWN_SCENARIO: &str = "own";
/// The picker's value for the message written last.
const WRITTEN: &str = "written";
/// The picker's value for its entry that opens a scenario file.
const OPEN_FILE: &str = "open-file";
/// The picker's value for its entry that opens the dialog for writing a message.
const WRITE_MESSAGE: &str = "write-message";

/// Whether the picker's entry of `value` opens a dialog rather than choosing a scenario.
fn opens_something(value: &str) -> bool {
    value == OPEN_FILE || value == WRITE_MESSAGE
}

/// The picker's entry for a scenario file: its title and the file's name. A title that
/// changes the direction of the text around it (bidirectional formatting characters) is
/// isolated (UAX #9, 2.4), so that the name after it reads as written.
fn own_entry(title: &str, file_name: &str) -> String {
    format!("{} ({file_name})", isolated(title))
}

/// `title`, isolated (UAX #9, 2.4) when it changes the direction of the text around it
/// (bidirectional formatting characters), so that what follows it reads as written.
fn isolated(title: &str) -> String {
    let directs = title.chars().any(crate::escape::is_bidi_control);
    if directs {
        format!("\u{2068}{title}\u{2069}")
    } else {
        title.to_string()
    }
}

/// Shows the browser's dialog for choosing a file, the hidden input's.
fn open_file_dialog(file_input: &NodeRef) {
    if let Some(input) = file_input.cast::<web_sys::HtmlInputElement>() {
        input.click();
    }
}

/// What a drag event carries, when it carries files (not text or a link).
fn dragged_files(event: &Event) -> Option<web_sys::DataTransfer> {
    let event = event.dyn_ref::<web_sys::DragEvent>()?;
    event.data_transfer().filter(|transfer| {
        transfer
            .types()
            .iter()
            .any(|kind| kind.as_string().as_deref() == Some("Files"))
    })
}

/// Puts the picker that `event` happened on back on what is shown when it rests on an entry
/// that opens a dialog (for a file, or for writing a message): so that the entry, chosen
/// again, says `change` and opens it.
fn show_what_is_shown(event: &Event, shown_choice: &str) {
    let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
    if opens_something(&select.value()) {
        select.set_value(shown_choice);
    }
}

/// A scenario file at least this large is said to be running before it is read as a
/// scenario and run: hundreds of messages, whose reading and run take a moment, and seconds
/// on a phone. A smaller one is said to be running once its run outlasts a slice.
pub const LARGE_FILE_OCTETS: usize = 100 * 1024;
/// How long the page has to draw that sentence before the run holds it (a few frames).
const RUNNING_SAID_MS: u32 = 100;

/// Gives up a file being read or run, or a message being run, if any, and stops saying that
/// it runs.
fn give_up_run(lab: &UseReducerHandle<Lab>, file_in_hand: &Rc<RefCell<Option<FileInHand>>>) {
    *file_in_hand.borrow_mut() = None;
    if lab.running.is_some() {
        lab.dispatch(LabAction::GiveUpRun);
    }
}

/// Says that the scenario file `name` is running.
fn say_running(lab: &UseReducerDispatcher<Lab>, name: &str) {
    lab.dispatch(LabAction::Running(RunOf::File {
        name: name.to_string(),
        again: false,
    }));
}

/// The sentence over the details while a run is made a slice at a time, unless another
/// notice is said meanwhile.
fn running_sentence(of: &RunOf) -> String {
    match of {
        RunOf::File { name, .. } => {
            format!("Running the scenario of {name}: a long run takes a few seconds.")
        }
        RunOf::Message { .. } => {
            "Running the delivery of your message: a long run takes a few seconds.".into()
        }
    }
}

/// A scenario file in hand, or a message written: being read (a file), then run a slice at
/// a time, for as long as its token is held (the run holds a `Weak` to it). Dropped, either
/// is given up.
pub enum FileInHand {
    Reading { _reader: FileReader, _token: Rc<()> },
    Running { _token: Rc<()> },
}

/// How long one slice of a run holds the page, at most about: the page draws between
/// slices, and the player's buttons answer.
const PREPARING_SLICE_MS: f64 = 40.0;
/// Scheduled actions, or events, taken between two looks at the clock during a slice.
const PREPARING_WORK_PER_LOOK: usize = 500;
/// How often, at most, the words that say how far the run has got change: each change draws
/// the page again, which on a slow machine takes a good part of a slice.
const PREPARING_SAID_EVERY_MS: f64 = 250.0;

/// Runs the scenario file `name` a slice at a time, saying how far it has got, and shows it
/// when it is ready; or, when it is no scenario, says why as a file opened does. A file not
/// yet said to be running (not `announced`) is said to be once its run outlasts a slice: a
/// small file may still make a long run (a retry every second for a year), and the page
/// must not freeze for it.
fn run_file(
    name: String,
    contents: Result<Vec<u8>, String>,
    left_out: usize,
    lab: UseReducerDispatcher<Lab>,
    in_hand: &Rc<RefCell<Option<FileInHand>>>,
    held: Weak<()>,
    announced: bool,
) {
    // Given up while it was said to be running: something else was chosen, another file too.
    let Some(token) = held.upgrade() else {
        return;
    };
    match file_scenario(&name, contents) {
        // The reader is let go here, outside its own callback; the token stays.
        Ok(scenario) => run_in_slices(
            scenario,
            Destined::File {
                name,
                left_out,
                again: false,
            },
            lab,
            in_hand,
            token,
            announced,
        ),
        Err(problem) => refuse_file(&lab, name, problem, announced),
    }
}

/// Runs `scenario` a slice at a time for `destined`, for as long as `token` is held: kept in
/// `in_hand`, where it lets go of what was there (a file's reader, another run). Said to be
/// running unless it is `already_said`; said at first, this is drawn only if the first slice
/// does not finish the run: the page is drawn after this task, by which time a short run has
/// been shown.
fn run_in_slices(
    scenario: Scenario,
    destined: Destined,
    lab: UseReducerDispatcher<Lab>,
    in_hand: &Rc<RefCell<Option<FileInHand>>>,
    token: Rc<()>,
    already_said: bool,
) {
    let held = Rc::downgrade(&token);
    *in_hand.borrow_mut() = Some(FileInHand::Running { _token: token });
    if !already_said {
        lab.dispatch(LabAction::Running(destined.run_of()));
    }
    run_slice(
        Preparing::new(scenario),
        destined,
        lab,
        held,
        Said::default(),
    );
}

/// The scenario in the file `name`, whose contents were read, or why they could not be: the
/// words `smtp-lab run` says, every problem and where it is.
fn file_scenario(name: &str, contents: Result<Vec<u8>, String>) -> Result<Scenario, String> {
    let text = contents
        .and_then(file_text)
        .map_err(|problem| unreadable(name, &problem))?;
    Scenario::from_json(&text)
        .map_err(|errors| format!("{name} is not a valid scenario:\n{errors}"))
}

/// When how far a run has got was last said, and in which stage it was.
#[derive(Clone, Copy)]
struct Said {
    at_ms: f64,
    stage: Option<std::mem::Discriminant<Progress>>,
}

impl Default for Said {
    fn default() -> Said {
        Said {
            at_ms: f64::NEG_INFINITY,
            stage: None,
        }
    }
}

/// One slice of a run made for a file ([`run_file`]) or a message written, and the next one
/// after the page has drawn; none once it is given up (its token dropped).
fn run_slice(
    mut preparing: Preparing,
    destined: Destined,
    lab: UseReducerDispatcher<Lab>,
    held: Weak<()>,
    said: Said,
) {
    if held.upgrade().is_none() {
        return;
    }
    let clock = gloo::utils::window().performance();
    let now = || clock.as_ref().map_or(0.0, |performance| performance.now());
    let started = now();
    loop {
        preparing = match preparing.advance(PREPARING_WORK_PER_LOOK) {
            Advanced::Going(going) => going,
            Advanced::Done(prepared) => {
                // Chosen again in the picker, it leaves the page where it is, as a built-in
                // scenario chosen does; a file opened, or a message sent, from the picker
                // pinned over the page's end, is brought into sight.
                let again = destined.again();
                lab.dispatch(LabAction::Prepared { destined, prepared });
                if !again {
                    Timeout::new(0, bring_details_into_sight).forget();
                }
                return;
            }
        };
        // Without a clock, one look per slice.
        if clock.is_none() || now() - started >= PREPARING_SLICE_MS {
            break;
        }
    }
    // Said again when a stage begins, or a while after it was last said.
    let progress = preparing.progress();
    let stage = Some(std::mem::discriminant(&progress));
    let said = if clock.is_none()
        || stage != said.stage
        || now() - said.at_ms >= PREPARING_SAID_EVERY_MS
    {
        lab.dispatch(LabAction::Preparing {
            of: destined.run_of(),
            progress: progress_words(progress),
        });
        Said {
            at_ms: now(),
            stage,
        }
    } else {
        said
    };
    Timeout::new(0, move || run_slice(preparing, destined, lab, held, said)).forget();
}

/// How far a run made a slice at a time has got, in words.
fn progress_words(progress: Progress) -> String {
    let percent = |done: usize, total: usize| done.saturating_mul(100) / total.max(1);
    match progress {
        Progress::Running { events, time_ms } => format!(
            "Running: {events} events so far, at simulated time {}.",
            format_time(time_ms)
        ),
        Progress::Cutting { done, total } => {
            format!("Cutting the run into steps: {}%.", percent(done, total))
        }
        Progress::Storing { done, total } => format!(
            "Making ready to jump to any step: {}%.",
            percent(done, total)
        ),
    }
}

/// Why the file `name` could not be read, from the end of the sentence: `problem`.
fn unreadable(name: &str, problem: &str) -> String {
    format!("{name} {problem}.")
}

/// Says why the scenario file `name` cannot be shown (see [`LabAction::FileRefused`]), and
/// brings that into sight once drawn: opened from the picker pinned over the page's end, say.
fn refuse_file(lab: &UseReducerDispatcher<Lab>, name: String, problem: String, announced: bool) {
    lab.dispatch(LabAction::FileRefused {
        name,
        problem,
        announced,
    });
    Timeout::new(0, bring_details_into_sight).forget();
}

/// Reads `file` and hands its contents to the app as a scenario file, with how many files
/// came with it and are `left_out`; a file too large to be a scenario is not read. A read
/// still going on is given up for this one.
fn read_scenario_file(
    file: web_sys::File,
    left_out: usize,
    lab: UseReducerDispatcher<Lab>,
    file_in_hand: &Rc<RefCell<Option<FileInHand>>>,
) {
    let name = file.name();
    let in_hand = Rc::clone(file_in_hand);
    let token = Rc::new(());
    let held = Rc::downgrade(&token);
    let opened = move |contents: Result<Vec<u8>, String>| {
        if let Err(problem) = &contents {
            let problem = unreadable(&name, problem);
            refuse_file(&lab, name, problem, false);
            return;
        }
        // Run after the reader is done with the file, as the reader is then let go.
        let large = contents
            .as_ref()
            .is_ok_and(|bytes| bytes.len() >= LARGE_FILE_OCTETS);
        if large {
            // Said first, and drawn before its reading as a scenario and its run start: a
            // student sees the file was taken.
            say_running(&lab, &name);
        }
        let wait_ms = if large { RUNNING_SAID_MS } else { 0 };
        Timeout::new(wait_ms, move || {
            run_file(name, contents, left_out, lab, &in_hand, held, large)
        })
        .forget();
    };
    if file.size() > SCENARIO_MAX_OCTETS as f64 {
        *file_in_hand.borrow_mut() = None;
        opened(Err(file_too_large()));
        return;
    }
    let read = gloo::file::callbacks::read_as_bytes(&file.into(), move |contents| {
        opened(contents.map_err(|error| {
            format!(
                "could not be read by the browser ({})",
                error.to_string().trim_end_matches('.')
            )
        }))
    });
    *file_in_hand.borrow_mut() = Some(FileInHand::Reading {
        _reader: read,
        _token: token,
    });
}

/// Puts the focus on the first element `selector` finds, when there is one, scrolling the
/// page to it if `scroll`.
fn focus_first(selector: &str, scroll: bool) {
    let element = gloo::utils::document()
        .query_selector(selector)
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(element) = element {
        let options = web_sys::FocusOptions::new();
        options.set_prevent_scroll(!scroll);
        let _ = element.focus_with_options(&options);
    }
}

/// The id of the scenario picker.
const PICKER_ID: &str = "scenario-select";

/// Puts the focus on the player's Play button, when there is one.
fn focus_play() {
    focus_first(".controls button.primary", true);
}

/// Marks the picker as browsed for the `change` the key being pressed makes, and for no later
/// one.
fn browse_for_this_key(browsing: &Rc<RefCell<bool>>) {
    *browsing.borrow_mut() = true;
    let browsing = Rc::clone(browsing);
    Timeout::new(0, move || *browsing.borrow_mut() = false).forget();
}
