//! `smtp-lab scenarios` and `smtp-lab run`: the built-in scenario library and a simulation run
//! printed as a trace.

use super::output::CheckedStdout;
use crate::sim::library;
use crate::sim::run_text;
use crate::sim::scenario::file_text;
use crate::sim::trace::{Fate, TextRenderer, Trace, TraceEvent};
use crate::sim::{run, RunResult, Scenario};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per event; with `whole_transmissions`, every line of each transmission.
    Text { whole_transmissions: bool },
    /// The whole trace, every byte.
    Json,
}

/// Lists the built-in scenarios: name, then title.
pub fn list() -> ExitCode {
    let mut out = CheckedStdout::lock();
    let mut broken = false;
    for entry in library::builtin() {
        match entry {
            Ok(scenario) => {
                let _ = writeln!(out, "{:<28} {}", scenario.name, scenario.title);
            }
            Err((file, errors)) => {
                broken = true;
                eprintln!("smtp-lab scenarios: {file} is invalid:\n{errors}");
            }
        }
    }
    if let Some(error) = out.finish() {
        eprintln!("smtp-lab scenarios: cannot write the list: {error}");
        return ExitCode::from(1);
    }
    if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a built-in scenario's JSON file as it is built in: a complete example to copy.
pub fn show(name: &str) -> ExitCode {
    let Some((_, text)) = library::file(name) else {
        eprintln!(
            "smtp-lab scenarios: {name:?} is not a built-in scenario (`smtp-lab scenarios` \
             lists them).{}",
            library::did_you_mean(name)
        );
        return ExitCode::from(2);
    };
    let mut out = CheckedStdout::lock();
    let _ = out.write_all(text.as_bytes());
    if let Some(error) = out.finish() {
        eprintln!("smtp-lab scenarios: cannot write {name}: {error}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Loads a scenario by built-in name, or from a JSON file when the argument names one.
pub fn load(argument: &OsStr) -> Result<Scenario, String> {
    if let Some(name) = argument.to_str() {
        match library::load(name) {
            Some(Ok(scenario)) => return Ok(scenario),
            // A library file that does not validate (one being added): its errors, not "no
            // such scenario".
            Some(Err(errors)) => {
                return Err(format!(
                    "the built-in scenario {name:?} is not a valid scenario:\n{errors}"
                ))
            }
            None => {}
        }
    }
    let path = Path::new(argument);
    // Shown as it is when it is UTF-8, and with U+FFFD for what is not.
    let name_or_file = path.to_string_lossy();
    match std::fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{name_or_file:?} is neither a built-in scenario (see `smtp-lab scenarios`) nor \
                 a file.{}",
                library::did_you_mean(&name_or_file)
            ))
        }
        // It may be there, but cannot be looked at (a directory on its way that may not be
        // searched): the reason, not "no such file".
        Err(e) => return Err(format!("cannot read {name_or_file}: {e}")),
    }
    // Read no more than a scenario may hold, so that a huge file (or /dev/zero) is refused
    // instead of filling memory.
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(crate::sim::scenario::SCENARIO_MAX_OCTETS as u64 + 1)
                .read_to_end(&mut text)
        })
        .map_err(|e| format!("cannot read {name_or_file}: {e}"))?;
    let text = file_text(text).map_err(|problem| format!("{name_or_file} {problem}"))?;
    Scenario::from_json(&text)
        .map_err(|errors| format!("{name_or_file} is not a valid scenario:\n{errors}"))
}

pub fn run_scenario(argument: &OsStr, seed: Option<u64>, format: Format) -> ExitCode {
    let scenario = match load(argument) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("smtp-lab run: {error}");
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(scenario.seed);
    let result = run(&scenario, seed);
    let mut out = CheckedStdout::lock();
    match format {
        Format::Text {
            whole_transmissions,
        } => {
            let renderer = if whole_transmissions {
                TextRenderer::whole_transmissions()
            } else {
                TextRenderer::default()
            };
            run_text::write(&scenario, &result.trace, renderer, |text| {
                out.write_all(text.as_bytes()).is_ok()
            });
        }
        Format::Json => {
            let _ = serde_json::to_writer_pretty(&mut out, &JsonDocument(&result));
            let _ = writeln!(out);
        }
    }
    if let Some(error) = out.finish() {
        eprintln!("smtp-lab run: cannot write the output: {error}");
        if result.conservation_problems.is_empty() {
            return ExitCode::from(1);
        }
    }
    if result.conservation_problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "smtp-lab run: conservation check failed:\n  {}",
            result.conservation_problems.join("\n  ")
        );
        ExitCode::from(1)
    }
}

/// The JSON document `run --format json` prints: `trace`, `outcomes` and
/// `conservation_problems`, object keys in alphabetical order at every level. Written as it
/// goes, one event at a time: a long trace (up to 20,000,000 events or 384 MiB) would otherwise be
/// built again in memory as one JSON value, many times its own size.
struct JsonDocument<'a>(&'a RunResult);

impl Serialize for JsonDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("conservation_problems", &self.0.conservation_problems)?;
        map.serialize_entry("outcomes", &JsonOutcomes(&self.0.outcomes))?;
        map.serialize_entry("trace", &JsonTrace(&self.0.trace))?;
        map.end()
    }
}

struct JsonOutcomes<'a>(&'a [(String, String, Fate)]);

impl Serialize for JsonOutcomes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (message, recipient, fate) in self.0 {
            seq.serialize_element(&serde_json::json!({
                "message": message, "recipient": recipient, "fate": fate,
            }))?;
        }
        seq.end()
    }
}

struct JsonTrace<'a>(&'a Trace);

impl Serialize for JsonTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Trace {
            scenario,
            seed,
            start_unix_s,
            events,
        } = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("events", &JsonEvents(events))?;
        map.serialize_entry("scenario", scenario)?;
        map.serialize_entry("seed", seed)?;
        map.serialize_entry("start_unix_s", start_unix_s)?;
        map.end()
    }
}

struct JsonEvents<'a>(&'a [TraceEvent]);

impl Serialize for JsonEvents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for event in self.0 {
            // As a JSON value, whose object keys are sorted.
            let value = serde_json::to_value(event).map_err(S::Error::custom)?;
            seq.serialize_element(&value)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_document_is_the_trace_as_one_json_value_would_print() {
        for name in [
            "basic-delivery",
            "smtp-smuggling",
            "server-down-for-good",
            "null-mx",
        ] {
            let scenario = library::find(name).expect("a built-in scenario");
            let result = run(&scenario, scenario.seed);
            let whole = serde_json::json!({
                "trace": result.trace,
                "outcomes": result.outcomes.iter().map(|(m, r, f)| serde_json::json!({
                    "message": m, "recipient": r, "fate": f,
                })).collect::<Vec<_>>(),
                "conservation_problems": result.conservation_problems,
            });
            assert_eq!(
                serde_json::to_string_pretty(&JsonDocument(&result)).unwrap(),
                serde_json::to_string_pretty(&whole).unwrap(),
                "{name}"
            );
        }
    }
}
