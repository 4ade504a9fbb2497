#![cfg(not(target_arch = "wasm32"))]
//! Corrupt scenario files: every built-in scenario's JSON, damaged the ways files are damaged
//! (cut short, a piece lost, stray characters, a number or a text replaced by one out of
//! range). Whatever the damage, loading never panics: the file is refused with errors that
//! each say what is wrong and where, or it is still a valid scenario, and then it runs, with
//! every message accounted for.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use smtp_lab::sim::{run, Scenario};
use std::path::Path;

/// The built-in scenarios' files, as a user would copy one to start their own.
fn library_files() -> Vec<(String, String)> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&directory)
        .expect("the scenarios directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a scenario file");
            (path.display().to_string(), text)
        })
        .collect();
    files.sort();
    files
}

/// One way a file gets damaged. Positions are fractions of the file's length, so that any
/// generated damage applies to any file.
#[derive(Clone, Debug)]
enum Damage {
    /// Cut short (a download or a copy that stopped).
    Truncate { at: f64 },
    /// A piece lost (a slip of the editor).
    Delete { at: f64, chars: usize },
    /// Something typed or pasted in the wrong place.
    Insert { at: f64, text: String },
    /// A number edited to one out of range, negative, fractional or huge.
    ReplaceNumber { which: f64, with: String },
    /// A text edited to another (an address, a name, a kind).
    ReplaceText { which: f64, with: String },
}

fn stray_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("null".to_string()),
        Just("\"x\": 1,".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{0}".to_string()),
        "\\PC{1,12}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("0".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("0.5".to_string()),
        1 => Just("1e400".to_string()),
        1 => Just("4294967296".to_string()),
        1 => Just("9007199254740993".to_string()),
        1 => Just("18446744073709551615".to_string()),
        1 => Just("18446744073709551616".to_string()),
        // In range, though not what the scenario meant.
        8 => (0u64..100_000).prop_map(|n| n.to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("@".to_string()),
        Just("a@".to_string()),
        Just("bob@@b.test".to_string()),
        Just("<bob@b.test>".to_string()),
        Just("::1".to_string()),
        Just("999.1.1.1".to_string()),
        Just("\\u0000".to_string()),
        Just("\\ud800".to_string()),
        Just("é@ü.test".to_string()),
        "[a-z0-9.@-]{0,20}",
        "\\PC{0,20}",
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    // Most damage to the syntax is found at once; edited values get as far as validation and
    // the run, and so are tried more often.
    prop_oneof![
        1 => (0.0..1.0).prop_map(|at| Damage::Truncate { at }),
        2 => (0.0..1.0, 1usize..40).prop_map(|(at, chars)| Damage::Delete { at, chars }),
        2 => (0.0..1.0, stray_text()).prop_map(|(at, text)| Damage::Insert { at, text }),
        4 => (0.0..1.0, number()).prop_map(|(which, with)| Damage::ReplaceNumber { which, with }),
        4 => (0.0..1.0, text()).prop_map(|(which, with)| Damage::ReplaceText { which, with }),
    ]
}

/// The index that `fraction` of `count` falls on.
fn nth(fraction: f64, count: usize) -> usize {
    ((fraction * count as f64) as usize).min(count.saturating_sub(1))
}

/// Where some parts of a text are: (start, end) as character indices.
type Spans = Vec<(usize, usize)>;

/// Where the JSON numbers and the texts (string contents) of `chars` are.
fn numbers_and_texts(chars: &[char]) -> (Spans, Spans) {
    let (mut numbers, mut texts) = (Vec::new(), Vec::new());
    let mut index = 0;
    while index < chars.len() {
        match chars[index] {
            '"' => {
                let start = index + 1;
                index = start;
                while index < chars.len() && chars[index] != '"' {
                    index += if chars[index] == '\\' { 2 } else { 1 };
                }
                texts.push((start, index.min(chars.len())));
                index += 1;
            }
            '-' | '0'..='9' => {
                let start = index;
                while index < chars.len()
                    && matches!(chars[index], '-' | '+' | '.' | 'e' | 'E' | '0'..='9')
                {
                    index += 1;
                }
                numbers.push((start, index));
            }
            _ => index += 1,
        }
    }
    (numbers, texts)
}

fn damaged(original: &str, damage: &Damage) -> String {
    let mut chars: Vec<char> = original.chars().collect();
    let (numbers, texts) = numbers_and_texts(&chars);
    let replace = |chars: &mut Vec<char>, (start, end): (usize, usize), with: &str| {
        chars.splice(start..end, with.chars());
    };
    match damage {
        Damage::Truncate { at } => chars.truncate(nth(*at, chars.len())),
        Damage::Delete { at, chars: count } => {
            let start = nth(*at, chars.len());
            let end = (start + count).min(chars.len());
            chars.drain(start..end);
        }
        Damage::Insert { at, text } => {
            let at = nth(*at, chars.len() + 1);
            chars.splice(at..at, text.chars());
        }
        Damage::ReplaceNumber { which, with } if !numbers.is_empty() => {
            replace(&mut chars, numbers[nth(*which, numbers.len())], with)
        }
        Damage::ReplaceText { which, with } if !texts.is_empty() => {
            replace(&mut chars, texts[nth(*which, texts.len())], with)
        }
        Damage::ReplaceNumber { .. } | Damage::ReplaceText { .. } => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_seed: RngSeed::Fixed(0xc0_22e7_f11e),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_damaged_scenario_file_is_refused_with_reasons_or_runs_with_every_message_accounted_for(
        file in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let files = library_files();
        let (path, original) = &files[file.index(files.len())];
        let mut text = original.clone();
        for damage in &damages {
            text = damaged(&text, damage);
        }
        match Scenario::from_json(&text) {
            Err(errors) => {
                prop_assert!(!errors.0.is_empty(), "{path}: refused without a reason");
                for error in &errors.0 {
                    // What is wrong, and where: a field's path or a line and column.
                    prop_assert!(!error.problem.trim().is_empty(), "{path}: an empty problem");
                    prop_assert!(!error.at.trim().is_empty(), "{path}: no place for {:?}", error.problem);
                }
            }
            Ok(scenario) => {
                let result = run(&scenario, scenario.seed);
                prop_assert!(
                    result.conservation_problems.is_empty(),
                    "{path} after {damages:?}: {:?}",
                    result.conservation_problems
                );
            }
        }
    }
}

#[test]
fn damage_lands_where_it_is_aimed() {
    let original = r#"{"a": 12, "b": "xy"}"#;
    let number = Damage::ReplaceNumber {
        which: 0.0,
        with: "-1".into(),
    };
    assert_eq!(damaged(original, &number), r#"{"a": -1, "b": "xy"}"#);
    let text = Damage::ReplaceText {
        which: 0.99,
        with: "@".into(),
    };
    assert_eq!(damaged(original, &text), r#"{"a": 12, "b": "@"}"#);
    let cut = Damage::Truncate { at: 0.5 };
    assert_eq!(damaged(original, &cut), r#"{"a": 12, "#);
    let lost = Damage::Delete { at: 0.0, chars: 2 };
    assert_eq!(damaged(original, &lost), r#"a": 12, "b": "xy"}"#);
    let stray = Damage::Insert {
        at: 1.0,
        text: "]".into(),
    };
    assert_eq!(damaged(original, &stray), r#"{"a": 12, "b": "xy"}]"#);
}
