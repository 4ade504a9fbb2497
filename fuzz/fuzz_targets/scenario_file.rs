//! Any bytes as a scenario file, read as the page and `smtp-lab run` read one: reading and
//! checking it never panics, and a scenario that passes the checks runs to its end with every
//! message accounted for (the conservation check), runs again to the same trace, is cut into
//! steps, each step explained, and the world shown at every step, as the page does, without a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::sim::preparing::Prepared;
use smtp_lab::sim::scenario::file_text;
use smtp_lab::sim::{run, Scenario};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = file_text(data.to_vec()) else {
        return;
    };
    let Ok(scenario) = Scenario::from_json(&text) else {
        return;
    };
    let result = run(&scenario, scenario.seed);
    assert!(
        result.conservation_problems.is_empty(),
        "{:?}",
        result.conservation_problems
    );
    let prepared = Prepared::of(scenario);
    let trace = prepared.viewer.trace();
    assert!(
        *trace == result.trace,
        "a second run of the scenario differs"
    );
    for step in &prepared.steps {
        step.explained(trace);
        step.lines(trace);
    }
    for cursor in 0..=prepared.viewer.len() {
        let view = prepared.viewer.view_at(cursor);
        view.mailbox_summaries(&prepared.scenario);
    }
});
