//! A scenario run and made ready to step through a slice at a time: its run, its steps and
//! a first look for its map, its stored views and its map drawn, then its failures. A page
//! draws between slices and says how far it has got, rather than holding still for seconds
//! while a scenario file of thousands of messages (or a year of retries) runs. The result is
//! the same as making each at once.

use super::map::{MapDrawing, MapSurvey, RunMap};
use super::steps::{failure_positions, StepCutter};
use super::view::{StoringViews, TraceViewer};
use super::world::RunInSlices;
use super::{Scenario, Trace};
use crate::sim::steps::Step;
use std::rc::Rc;

/// A run ready to step through.
#[derive(Debug)]
pub struct Prepared {
    pub scenario: Scenario,
    pub steps: Vec<Step>,
    pub viewer: TraceViewer,
    pub map: RunMap,
    /// Where the steps that go wrong are, as cursors (see [`failure_positions`]).
    pub failures: Vec<usize>,
}

impl Prepared {
    /// `scenario` run with its seed and made ready at once.
    pub fn of(scenario: Scenario) -> Prepared {
        let trace = super::run(&scenario, scenario.seed).trace;
        let steps = super::steps::steps(&trace);
        let map = RunMap::of(&trace);
        finished(scenario, trace, steps, map, TraceViewer::new)
    }
}

/// The failures of a run whose steps are cut and whose map is drawn, and its viewer from
/// `view`.
fn finished(
    scenario: Scenario,
    trace: Trace,
    steps: Vec<Step>,
    map: RunMap,
    view: impl FnOnce(Trace) -> TraceViewer,
) -> Prepared {
    let failures = failure_positions(&steps, &trace);
    Prepared {
        scenario,
        steps,
        viewer: view(trace),
        map,
        failures,
    }
}

/// How far a run being prepared has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Running: the events recorded so far, and the simulated time reached. How many there
    /// will be is not known before the run ends.
    Running { events: usize, time_ms: u64 },
    /// Cutting the run into steps: events cut, of all of them.
    Cutting { done: usize, total: usize },
    /// Storing views of the world to jump to any step: events taken, of all of them.
    Storing { done: usize, total: usize },
}

/// A run being prepared (see the module's documentation).
pub struct Preparing {
    scenario: Rc<Scenario>,
    /// Boxed: the world is large, and each slice hands it on.
    stage: Box<Stage>,
}

// One stage at a time, and boxed whole in `Preparing`: its variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Running(RunInSlices),
    Cutting {
        trace: Trace,
        cutter: StepCutter,
        survey: MapSurvey,
        done: usize,
    },
    Storing {
        trace: Trace,
        steps: Vec<Step>,
        storing: StoringViews,
        drawing: MapDrawing,
        done: usize,
    },
}

/// What a slice of preparing left.
pub enum Advanced {
    Going(Preparing),
    Done(Box<Prepared>),
}

impl Preparing {
    /// The preparation of a (validated) scenario's run with its own seed, not started.
    pub fn new(scenario: Scenario) -> Preparing {
        let scenario = Rc::new(scenario);
        let seed = scenario.seed;
        Preparing {
            stage: Box::new(Stage::Running(RunInSlices::new(Rc::clone(&scenario), seed))),
            scenario,
        }
    }

    /// How far it has got.
    pub fn progress(&self) -> Progress {
        match &*self.stage {
            Stage::Running(run) => Progress::Running {
                events: run.events(),
                time_ms: run.now_ms(),
            },
            Stage::Cutting { trace, done, .. } => Progress::Cutting {
                done: *done,
                total: trace.events.len(),
            },
            Stage::Storing { trace, done, .. } => Progress::Storing {
                done: *done,
                total: trace.events.len(),
            },
        }
    }

    /// About `work` more units of it: scheduled actions of the run, or events cut (and
    /// surveyed for the map) or stored (and drawn on it). The last slice also places the
    /// map's parties and finds the failures, at once.
    pub fn advance(self, work: usize) -> Advanced {
        let Preparing { scenario, stage } = self;
        let stage = match *stage {
            Stage::Running(mut run) => {
                if !run.advance(work as u64) {
                    Stage::Running(run)
                } else {
                    let trace = run.finish().trace;
                    Stage::Cutting {
                        cutter: StepCutter::new(trace.events.len()),
                        trace,
                        survey: MapSurvey::default(),
                        done: 0,
                    }
                }
            }
            Stage::Cutting {
                trace,
                mut cutter,
                mut survey,
                done,
            } => {
                let until = done.saturating_add(work).min(trace.events.len());
                for (index, event) in trace.events[done..until].iter().enumerate() {
                    cutter.cut(done + index, event);
                    survey.survey(&event.event);
                }
                if until < trace.events.len() {
                    Stage::Cutting {
                        trace,
                        cutter,
                        survey,
                        done: until,
                    }
                } else {
                    Stage::Storing {
                        trace,
                        steps: cutter.finish(),
                        storing: StoringViews::default(),
                        drawing: survey.drawing(),
                        done: 0,
                    }
                }
            }
            Stage::Storing {
                trace,
                steps,
                mut storing,
                mut drawing,
                done,
            } => {
                let until = done.saturating_add(work).min(trace.events.len());
                for event in &trace.events[done..until] {
                    storing.store(event);
                    drawing.draw(&event.event);
                }
                if until < trace.events.len() {
                    Stage::Storing {
                        trace,
                        steps,
                        storing,
                        drawing,
                        done: until,
                    }
                } else {
                    // The run is over, so the scenario is shared no more.
                    let scenario =
                        Rc::try_unwrap(scenario).unwrap_or_else(|shared| (*shared).clone());
                    let map = drawing.finish();
                    return Advanced::Done(Box::new(finished(
                        scenario,
                        trace,
                        steps,
                        map,
                        |trace| storing.finish(trace),
                    )));
                }
            }
        };
        Advanced::Going(Preparing {
            scenario,
            stage: Box::new(stage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::library;

    /// Prepares `scenario` in slices of `work`, counting the slices.
    fn in_slices(scenario: Scenario, work: usize) -> (Prepared, usize) {
        let mut preparing = Preparing::new(scenario);
        let mut slices = 0;
        loop {
            slices += 1;
            match preparing.advance(work) {
                Advanced::Going(going) => preparing = going,
                Advanced::Done(prepared) => return (*prepared, slices),
            }
        }
    }

    #[test]
    fn a_run_prepared_in_slices_is_the_run_prepared_at_once() {
        let scenarios = library::builtin().into_iter().map(|s| s.expect("valid"));
        for scenario in scenarios {
            let at_once = Prepared::of(scenario.clone());
            let events = at_once.viewer.len();
            for work in [1, 7, 1000] {
                let (sliced, slices) = in_slices(scenario.clone(), work);
                let name = &scenario.name;
                assert_eq!(sliced.scenario, at_once.scenario, "{name}");
                assert_eq!(
                    serde_json::to_string(sliced.viewer.trace()).unwrap(),
                    serde_json::to_string(at_once.viewer.trace()).unwrap(),
                    "{name}"
                );
                assert_eq!(
                    format!("{:?}", sliced.steps),
                    format!("{:?}", at_once.steps)
                );
                assert_eq!(sliced.failures, at_once.failures, "{name}");
                assert_eq!(format!("{:?}", sliced.map), format!("{:?}", at_once.map));
                for cursor in [0, events / 3, events / 2, events] {
                    assert_eq!(
                        format!("{:?}", sliced.viewer.view_at(cursor)),
                        format!("{:?}", at_once.viewer.view_at(cursor)),
                        "{name} at {cursor}"
                    );
                }
                // A slice of one action or event at a time takes at least one per event.
                if work == 1 {
                    assert!(slices > 2 * events, "{name}: {slices} slices");
                }
            }
        }
    }

    #[test]
    fn progress_goes_through_the_stages_in_order_and_never_back() {
        let scenario = library::builtin()
            .into_iter()
            .flatten()
            .find(|s| s.name == "server-down-for-good")
            .expect("a built-in");
        let mut preparing = Preparing::new(scenario);
        let mut seen = Vec::new();
        loop {
            seen.push(preparing.progress());
            match preparing.advance(50) {
                Advanced::Going(going) => preparing = going,
                Advanced::Done(_) => break,
            }
        }
        let stage = |progress: &Progress| match progress {
            Progress::Running { .. } => 0,
            Progress::Cutting { .. } => 1,
            Progress::Storing { .. } => 2,
        };
        assert!(seen
            .windows(2)
            .all(|pair| stage(&pair[0]) <= stage(&pair[1])));
        for stage_seen in 0..3 {
            assert!(seen.iter().any(|p| stage(p) == stage_seen), "{seen:?}");
        }
        let running: Vec<_> = seen
            .iter()
            .filter_map(|p| match p {
                Progress::Running { events, time_ms } => Some((*events, *time_ms)),
                _ => None,
            })
            .collect();
        assert!(running
            .windows(2)
            .all(|pair| pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1));
        // The run of server-down-for-good goes on for five days of retries.
        assert!(
            running.last().unwrap().1 > 4 * 24 * 3600 * 1000,
            "{running:?}"
        );
        for progress in &seen {
            if let Progress::Cutting { done, total } | Progress::Storing { done, total } = progress
            {
                assert!(done < total, "{progress:?}");
            }
        }
    }
}
