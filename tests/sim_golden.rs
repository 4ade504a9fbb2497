#![cfg(not(target_arch = "wasm32"))]
//! Golden traces: every built-in scenario, run with its own seed, gives exactly the text trace
//! in `tests/golden/<scenario>.txt`; and runs are deterministic.
//!
//! `UPDATE_GOLDEN=1 cargo test --test sim_golden` rewrites the files. A missing golden file is
//! written too, but unless `UPDATE_GOLDEN` is set the test then fails, so CI never passes
//! without one.

mod sim_common;

use serde_json::json;
use sim_common::{
    a, first_difference, golden_text, mx, relay_targets, run_json, sender_host, sender_zone,
    store_host,
};
use smtp_lab::sim::{library, run, Scenario};
use std::path::PathBuf;

fn builtin() -> Vec<Scenario> {
    library::builtin()
        .into_iter()
        .map(|entry| entry.unwrap_or_else(|(file, errors)| panic!("{file}: {errors}")))
        .collect()
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_builtin_scenario_matches_its_golden_trace() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty() && v != "0");
    // Nothing is written for a library that breaks its rules: a scenario given another's
    // name would overwrite that one's golden file.
    let problems = library::library_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).expect("create tests/golden");
    let mut failures = Vec::new();
    let mut created = Vec::new();
    for scenario in builtin() {
        let result = run(&scenario, scenario.seed);
        let text = golden_text(&result);
        let path = dir.join(format!("{}.txt", scenario.name));
        match std::fs::read_to_string(&path) {
            Ok(expected) if !update => {
                if expected != text {
                    failures.push(format!(
                        "{}: the trace differs from {}\n{}",
                        scenario.name,
                        path.display(),
                        first_difference(&expected, &text)
                    ));
                }
            }
            existing => {
                if existing.is_err() {
                    created.push(scenario.name.clone());
                }
                std::fs::write(&path, &text).expect("write the golden file");
            }
        }
    }
    // A missing golden file is written, so that a new scenario gets one, but the run fails
    // unless that was asked for: a trace compared with itself proves nothing.
    if !update && !created.is_empty() {
        failures.push(format!(
            "golden files were missing and had to be created (check and commit them): {}",
            created.join(", ")
        ));
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with UPDATE_GOLDEN=1 to accept the new traces)",
        failures.join("\n\n")
    );
}

#[test]
fn no_golden_file_is_left_without_its_scenario() {
    let names: Vec<String> = builtin().into_iter().map(|s| s.name).collect();
    let entries = std::fs::read_dir(golden_dir()).expect("read tests/golden");
    for entry in entries {
        let name = entry.expect("read tests/golden").file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".txt") {
            assert!(
                names.iter().any(|n| n == stem),
                "tests/golden/{name} belongs to no built-in scenario"
            );
        }
    }
}

/// The browser test (tests/web.rs) embeds the golden traces it names, as wasm cannot read
/// them at run time; a built-in left out of its list would fail only there, in a browser,
/// so the list is checked here too, where `cargo test` runs.
#[test]
fn the_browser_test_names_every_builtin_golden_trace() {
    macro_rules! golden_traces {
        ($($name:literal,)*) => {
            &[$($name),*]
        };
    }
    const NAMED: &[&str] = include!("golden/names.rs");
    let names: Vec<String> = builtin().into_iter().map(|s| s.name).collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !NAMED.contains(&name.as_str()))
        .collect();
    let unknown: Vec<&&str> = NAMED
        .iter()
        .filter(|named| !names.iter().any(|name| name == *named))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "tests/golden/names.rs must name every built-in scenario once and no other \
         (the browser test runs each against its golden trace): add {missing:?}, take out \
         {unknown:?}"
    );
    assert_eq!(NAMED.len(), names.len(), "a name is there twice");
}

#[test]
fn first_difference_names_the_line() {
    let report = first_difference("a\nb\nc\n", "a\nB\nc\n");
    assert!(report.starts_with("first difference at line 2"), "{report}");
    assert!(report.contains("  - b\n  + B\n"), "{report}");
    let report = first_difference("a\n", "a\nb\n");
    assert!(report.contains("<end of golden file>"), "{report}");
}

#[test]
fn every_builtin_scenario_gives_the_same_json_trace_twice() {
    for scenario in builtin() {
        for seed in [scenario.seed, 7, 123_456_789] {
            let first = serde_json::to_string(&run(&scenario, seed).trace).expect("json");
            let second = serde_json::to_string(&run(&scenario, seed).trace).expect("json");
            assert!(
                first == second,
                "{} with seed {seed} gave two different traces",
                scenario.name
            );
        }
    }
}

/// receiver.test has two MX of preference 10, both down: the sender tries both, in an order
/// drawn from the seed.
fn equal_preference_world(seed: u64) -> serde_json::Value {
    let down = json!([{"kind": {"type": "down"}}]);
    let mut mx_a = store_host(
        "mx-a.receiver.test",
        "192.0.2.21",
        "receiver.test",
        &["bob"],
    );
    mx_a["faults"] = down.clone();
    let mut mx_b = json!({"name": "mx-b.receiver.test", "address": "192.0.2.22",
        "relay_domains": ["receiver.test"]});
    mx_b["faults"] = down;
    json!({
        "name": "equal-preference",
        "title": "Two MX of equal preference",
        "seed": seed,
        "run_until_s": 60,
        "dns": {"zones": [
            sender_zone(),
            {"origin": "receiver.test", "records": [
                mx("receiver.test", 10, "mx-a.receiver.test"),
                mx("receiver.test", 10, "mx-b.receiver.test"),
                a("mx-a.receiver.test", "192.0.2.21"),
                a("mx-b.receiver.test", "192.0.2.22"),
            ]},
        ]},
        "hosts": [sender_host(), mx_a, mx_b],
        "messages": [sim_common::message(&["bob@receiver.test"])],
    })
}

#[test]
fn equal_preference_mx_order_depends_on_the_seed_only() {
    let mut orders = std::collections::BTreeSet::new();
    for seed in 1..=24u64 {
        let order = relay_targets(&run_json(&equal_preference_world(seed)), "mail.sender.test");
        assert_eq!(order.len(), 2, "seed {seed}: both MX are tried: {order:?}");
        assert_ne!(order[0], order[1], "seed {seed}: {order:?}");
        let again = relay_targets(&run_json(&equal_preference_world(seed)), "mail.sender.test");
        assert_eq!(
            order, again,
            "seed {seed}: the same seed gives the same order"
        );
        orders.insert(order);
    }
    assert_eq!(
        orders.len(),
        2,
        "both orders appear over 24 seeds: {orders:?}"
    );
}
