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
use std::sync::LazyLock;

/// The built-in scenarios' files, as a user would copy one to start their own: read once.
fn library_files() -> &'static [(String, String)] {
    static FILES: LazyLock<Vec<(String, String)>> = LazyLock::new(read_library_files);
    &FILES
}

/// One of [`library_files`], as a property test picks it.
fn library_file(pick: prop::sample::Index) -> &'static (String, String) {
    let files = library_files();
    &files[pick.index(files.len())]
}

/// The same cases on every run, so that a failure is seen again.
fn fixed(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn read_library_files() -> Vec<(String, String)> {
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
    /// A field of the scenario's own added (or given twice) with a number, in or out of
    /// range: the limits validation holds the timing and the seed to.
    AddField { field: &'static str, value: String },
}

/// Edits that change nothing a reader of JSON sees.
#[derive(Clone, Debug)]
enum Harmless {
    /// Spaces, tabs or line breaks between tokens.
    Whitespace { at: f64, text: String },
    /// A byte order mark before the document, as some editors write.
    ByteOrderMark,
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
        3 => (prop::sample::select(TOP_LEVEL_NUMBERS), number())
            .prop_map(|(field, value)| Damage::AddField { field, value }),
    ]
}

/// The scenario's fields (and its retry policy's) that hold a number.
const TOP_LEVEL_NUMBERS: &[&str] = &[
    "seed",
    "start_unix_s",
    "latency_ms",
    "run_until_s",
    "retry.first_retry_s",
    "retry.max_interval_s",
    "retry.give_up_s",
    "retry.delay_notice_s",
    "retry.connect_timeout_s",
];

fn harmless() -> impl Strategy<Value = Harmless> {
    prop_oneof![
        4 => (0.0..1.0, "[ \t\r\n]{1,6}").prop_map(|(at, text)| Harmless::Whitespace { at, text }),
        1 => Just(Harmless::ByteOrderMark),
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
    let (numbers, texts, _) = tokens(chars);
    (numbers, texts)
}

/// The positions just after each `{`, `[`, `,` and `:` of `chars` (outside texts), where
/// whitespace may go.
fn between_tokens(chars: &[char]) -> Vec<usize> {
    tokens(chars).2
}

fn tokens(chars: &[char]) -> (Spans, Spans, Vec<usize>) {
    let (mut numbers, mut texts, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
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
            '{' | '[' | ',' | ':' => {
                index += 1;
                gaps.push(index);
            }
            _ => index += 1,
        }
    }
    (numbers, texts, gaps)
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
        Damage::AddField { field, value } => {
            // After the document's `{`, or its retry policy's.
            let (object, name) = match field.split_once('.') {
                Some((object, name)) => (Some(object), name),
                None => (None, *field),
            };
            let text: String = chars.iter().collect();
            let at = match object {
                None => text.find('{').map(|at| at + 1),
                Some(object) => text
                    .find(&format!("\"{object}\""))
                    .and_then(|start| text[start..].find('{').map(|at| start + at + 1)),
            };
            let added = match object {
                None => format!("\"{name}\": {value},"),
                // An object of its own when the file has none: the rest take their defaults.
                Some(object) if at.is_none() => format!("\"{object}\": {{\"{name}\": {value}}},"),
                Some(_) => format!("\"{name}\": {value},"),
            };
            let at = at.or_else(|| text.find('{').map(|at| at + 1)).unwrap_or(0);
            let at = text[..at].chars().count();
            chars.splice(at..at, added.chars());
        }
    }
    chars.into_iter().collect()
}

fn harmlessly_edited(original: &str, edit: &Harmless) -> String {
    match edit {
        // One mark only: a second is a character of the document.
        Harmless::ByteOrderMark if original.starts_with('\u{feff}') => original.to_string(),
        Harmless::ByteOrderMark => format!("\u{feff}{original}"),
        Harmless::Whitespace { at, text } => {
            let mut chars: Vec<char> = original.chars().collect();
            let gaps = between_tokens(&chars);
            let at = gaps[nth(*at, gaps.len())];
            chars.splice(at..at, text.chars());
            chars.into_iter().collect()
        }
    }
}

proptest! {
    #![proptest_config(fixed(1000, 0xc0_22e7_f11e))]

    #[test]
    fn a_damaged_scenario_file_is_refused_with_reasons_or_runs_with_every_message_accounted_for(
        file in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let (path, original) = library_file(file);
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
                    let problem = &error.problem;
                    prop_assert!(!error.at.trim().is_empty(), "{path}: no place for {problem:?}");
                    // A line given is one of the file's.
                    if let Some(line) = line_named(&error.at) {
                        // After a last line break, the end of the file is on a line of its own.
                        let lines = text.matches('\n').count() + 1;
                        prop_assert!(line <= lines, "{path}: line {line} of {lines}: {problem}");
                    }
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

/// The line number in a place like `hosts[0].name (line 7, column 3)`.
fn line_named(at: &str) -> Option<usize> {
    let (_, after) = at.split_once("line ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

proptest! {
    #![proptest_config(fixed(300, 0x0ca1_f11e))]

    /// Whitespace between tokens and a byte order mark change nothing: the same scenario.
    #[test]
    fn an_edit_that_changes_nothing_a_json_reader_sees_gives_the_same_scenario(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec(harmless(), 1..4),
    ) {
        let (path, original) = library_file(file);
        let mut text = original.clone();
        for edit in &edits {
            text = harmlessly_edited(&text, edit);
        }
        let expected = Scenario::from_json(original).expect("a valid built-in scenario");
        match Scenario::from_json(&text) {
            Ok(scenario) => prop_assert!(scenario == expected, "{path} after {edits:?}"),
            Err(errors) => prop_assert!(false, "{path} after {edits:?}: {errors}"),
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
    let added = Damage::AddField {
        field: "seed",
        value: "7".into(),
    };
    assert_eq!(
        damaged(original, &added),
        r#"{"seed": 7,"a": 12, "b": "xy"}"#
    );
    let retry = Damage::AddField {
        field: "retry.give_up_s",
        value: "0".into(),
    };
    assert_eq!(
        damaged(original, &retry),
        r#"{"retry": {"give_up_s": 0},"a": 12, "b": "xy"}"#
    );
    let with_retry = r#"{"retry": {"first_retry_s": 60}}"#;
    assert_eq!(
        damaged(with_retry, &retry),
        r#"{"retry": {"give_up_s": 0,"first_retry_s": 60}}"#
    );
    let spaced = Harmless::Whitespace {
        at: 0.0,
        text: " \n".into(),
    };
    assert_eq!(
        harmlessly_edited(original, &spaced),
        "{ \n\"a\": 12, \"b\": \"xy\"}"
    );
    assert_eq!(line_named("hosts[0].name (line 7, column 3)"), Some(7));
    assert_eq!(line_named("hosts[0].name"), None);
}
