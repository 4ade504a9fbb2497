//! A run as text, as `smtp-lab run` prints it and the page downloads it: the scenario's name,
//! title and teaching text as `#` lines, a line per event of the trace (see [`TextRenderer`]:
//! the first says the seed), then where the mail ended up for every recipient.

use super::trace::{describe_fate, Event, Fate, TextRenderer, Trace};
use super::Scenario;
use crate::escape::visible;

/// How much text is rendered before it is handed on: a long trace's text is never held whole
/// beside the trace.
const CHUNK_OCTETS: usize = 64 * 1024;

/// Width the teaching text is wrapped to, in octets of its words.
const TEACHING_WIDTH: usize = 92;

/// Text handed on to a sink a chunk at a time, each chunk ending at a line's end.
struct Chunks<F: FnMut(&str) -> bool> {
    text: String,
    sink: F,
}

impl<F: FnMut(&str) -> bool> Chunks<F> {
    /// Hands the text on once it is a chunk long; false once the sink refused it.
    fn flush_when_full(&mut self) -> bool {
        self.text.len() < CHUNK_OCTETS || self.flush()
    }

    /// Hands on what text there is; false once the sink refused it.
    fn flush(&mut self) -> bool {
        let taken = self.text.is_empty() || (self.sink)(&self.text);
        self.text.clear();
        taken
    }
}

/// Writes the run of `scenario` whose trace is `trace` to `sink`, a chunk of text at a time,
/// each ending at a line's end: [`write_run`], then [`write_outcomes`]. Stops when `sink`
/// returns false (a write that failed).
pub fn write(
    scenario: &Scenario,
    trace: &Trace,
    renderer: TextRenderer,
    mut sink: impl FnMut(&str) -> bool,
) {
    if write_run(scenario, trace, renderer, &mut sink) {
        write_outcomes(trace, sink);
    }
}

/// The scenario's lines and a line per event; false if `sink` refused a chunk.
pub fn write_run(
    scenario: &Scenario,
    trace: &Trace,
    renderer: TextRenderer,
    sink: impl FnMut(&str) -> bool,
) -> bool {
    // Every line shown as one line: addresses from scripted sessions may hold any character,
    // and the teaching text (or its title) a line separator or a bidirectional control.
    let mut chunks = Chunks {
        text: visible(format!("# {}: {}", scenario.name, scenario.title)),
        sink,
    };
    chunks.text.push('\n');
    for line in wrap(&scenario.teaching, TEACHING_WIDTH) {
        chunks.text.push_str("# ");
        chunks.text.push_str(&visible(line));
        chunks.text.push('\n');
    }
    let mut renderer = renderer.with_days_of(trace);
    for event in &trace.events {
        renderer.write(event, &mut chunks.text);
        if !chunks.flush_when_full() {
            return false;
        }
    }
    chunks.flush()
}

/// Where the mail ended up for every recipient, from the trace's outcome events, in the order
/// the run recorded them (the run's outcome list), after an empty line.
pub fn write_outcomes(trace: &Trace, sink: impl FnMut(&str) -> bool) {
    let mut chunks = Chunks {
        text: "\nOutcome:\n".to_string(),
        sink,
    };
    for event in &trace.events {
        if let Event::Outcome(outcome) = &event.event {
            chunks.text.push_str("  ");
            chunks.text.push_str(&visible(outcome_line(
                &outcome.message,
                &outcome.recipient,
                &outcome.fate,
            )));
            chunks.text.push('\n');
            if !chunks.flush_when_full() {
                return;
            }
        }
    }
    chunks.flush();
}

/// A recipient's outcome in words: `m1 <bob@receiver.test>: delivered to ...`.
pub fn outcome_line(message: &str, recipient: &str, fate: &Fate) -> String {
    format!("{message} <{recipient}>: {}", describe_fate(fate))
}

/// The file a run of the scenario named `name` with `seed` is saved to as text:
/// `NAME-seed-SEED.txt`, so that two runs of one scenario to compare are two files. The name
/// is made a file's name on any system, so that the page says the name the browser saves
/// under: a character other than a letter, a digit, `-`, `_` or `.` becomes `_`, a leading `.`
/// (a hidden file) or `_` goes, and at most 200 octets are kept (255 is the usual limit).
pub fn file_name(name: &str, seed: u64) -> String {
    const OCTETS_MAX: usize = 200;
    let mut safe = String::new();
    for c in name.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '_'
        };
        if safe.len() + c.len_utf8() > OCTETS_MAX {
            break;
        }
        safe.push(c);
    }
    match safe.trim_start_matches(['.', '_']) {
        "" => format!("run-seed-{seed}.txt"),
        safe => format!("{safe}-seed-{seed}.txt"),
    }
}

/// `text`'s words in lines of at most `width` octets (a longer word alone on its line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{library, run};

    /// The whole text of [`write`], as `smtp-lab run` prints it.
    fn to_string(scenario: &Scenario, trace: &Trace) -> String {
        let mut whole = String::new();
        write(scenario, trace, TextRenderer::default(), |text| {
            whole.push_str(text);
            true
        });
        whole
    }

    fn builtin(name: &str) -> Scenario {
        library::load(name).expect("built in").expect("valid")
    }

    #[test]
    fn a_transcript_has_the_scenario_every_event_and_every_outcome() {
        let scenario = builtin("unknown-user");
        let result = run(&scenario, scenario.seed);
        let text = to_string(&scenario, &result.trace);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("# unknown-user: Unknown user refused at RCPT")
        );
        assert!(text.contains(&format!("scenario unknown-user, seed {}\n", scenario.seed)));
        // The trace's own text, whole, between the header and the outcomes.
        assert!(text.contains(&result.trace.to_text()), "{text}");
        let (_, outcomes) = text.split_once("\nOutcome:\n").expect("an outcome list");
        let listed: Vec<&str> = outcomes.lines().collect();
        assert_eq!(listed.len(), result.outcomes.len());
        for ((message, recipient, fate), line) in result.outcomes.iter().zip(&listed) {
            assert_eq!(
                *line,
                format!("  {message} <{recipient}>: {}", describe_fate(fate))
            );
        }
        assert!(
            listed.iter().any(|line| line.contains("bounced")),
            "{listed:?}"
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_long_run_is_handed_on_in_chunks_that_end_at_a_line_and_stop_when_refused() {
        let scenario = builtin("dsn-on-request");
        let result = run(&scenario, scenario.seed);
        // Every line of every transmission: more text than a chunk.
        let mut chunks = Vec::new();
        write(
            &scenario,
            &result.trace,
            TextRenderer::whole_transmissions(),
            |text| {
                chunks.push(text.to_string());
                true
            },
        );
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|chunk| chunk.ends_with('\n')));
        let whole = chunks.concat();
        assert!(whole.contains(
            &result
                .trace
                .to_text_with(TextRenderer::whole_transmissions())
        ));
        assert!(whole.len() > to_string(&scenario, &result.trace).len());
        let mut calls = 0;
        write(
            &scenario,
            &result.trace,
            TextRenderer::whole_transmissions(),
            |_| {
                calls += 1;
                false
            },
        );
        assert_eq!(calls, 1);
    }

    /// A title or teaching text holding a line break or a bidirectional control (a Hebrew
    /// or Arabic one may) is written as escapes, each `#` line one line that reads in order.
    #[test]
    fn the_scenarios_lines_stay_one_line_each() {
        let mut scenario = builtin("basic-delivery");
        scenario.title = "Two\nlines \u{202e}reversed".into();
        scenario.teaching = "A\u{2028}B \u{200f}C".into();
        let result = run(&scenario, scenario.seed);
        let text = to_string(&scenario, &result.trace);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("# basic-delivery: Two\\nlines \\u{202e}reversed")
        );
        // A line separator is white space between words, as a space is.
        assert_eq!(lines.next(), Some("# A B \\u{200f}C"));
        assert!(lines.next().unwrap().starts_with("0+00:00:00.000  sim"));
    }

    #[test]
    fn a_run_texts_file_name_is_safe_on_any_system() {
        assert_eq!(file_name("basic-delivery", 7), "basic-delivery-seed-7.txt");
        assert_eq!(
            file_name("basic-delivery", u64::MAX),
            "basic-delivery-seed-18446744073709551615.txt"
        );
        assert_eq!(
            file_name("../../etc/pa:ss*wd?", 1),
            "etc_pa_ss_wd_-seed-1.txt"
        );
        assert_eq!(file_name(" .hidden. ", 1), "hidden._-seed-1.txt");
        assert_eq!(file_name("a\u{200b}b\u{feff}c", 1), "a_b_c-seed-1.txt");
        assert_eq!(file_name("jürgen-日本", 1), "jürgen-日本-seed-1.txt");
        assert_eq!(file_name("...", 0), "run-seed-0.txt");
        let long = file_name(&"ש".repeat(200), 3);
        assert!(
            long.len() <= 200 + "-seed-3.txt".len()
                && long
                    .trim_end_matches("-seed-3.txt")
                    .chars()
                    .all(|c| c == 'ש'),
            "{long}"
        );
    }

    #[test]
    fn teaching_text_is_wrapped_at_word_ends() {
        assert_eq!(wrap("a bb  ccc\ndd", 4), ["a bb", "ccc", "dd"]);
        assert_eq!(wrap("", 4), Vec::<String>::new());
        assert_eq!(wrap("abcdefgh ij", 4), ["abcdefgh", "ij"]);
    }
}
