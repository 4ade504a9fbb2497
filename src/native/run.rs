//! `smtp-lab scenarios` and `smtp-lab run`: the built-in scenario library and a simulation run
//! printed as a trace.

use crate::sim::library;
use crate::sim::trace::describe_fate;
use crate::sim::{run, Scenario};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Lists the built-in scenarios: name, then title.
pub fn list() -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
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
    if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads a scenario by built-in name, or from a JSON file when the argument names one.
pub fn load(name_or_file: &str) -> Result<Scenario, String> {
    if let Some(scenario) = library::find(name_or_file) {
        return Ok(scenario);
    }
    let path = Path::new(name_or_file);
    if !path.exists() {
        return Err(format!(
            "{name_or_file:?} is neither a built-in scenario (see `smtp-lab scenarios`) nor a file"
        ));
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
    if text.len() > crate::sim::scenario::SCENARIO_MAX_OCTETS {
        return Err(format!(
            "{name_or_file} is larger than {} octets",
            crate::sim::scenario::SCENARIO_MAX_OCTETS
        ));
    }
    let text = String::from_utf8(text).map_err(|_| format!("{name_or_file} is not UTF-8 text"))?;
    Scenario::from_json(&text)
        .map_err(|errors| format!("{name_or_file} is not a valid scenario:\n{errors}"))
}

pub fn run_scenario(name_or_file: &str, seed: Option<u64>, format: Format) -> ExitCode {
    let scenario = match load(name_or_file) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("smtp-lab run: {error}");
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(scenario.seed);
    let result = run(&scenario, seed);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Text => {
            let _ = writeln!(out, "# {}: {}", scenario.name, scenario.title);
            for line in wrap(&scenario.teaching, 92) {
                let _ = writeln!(out, "# {line}");
            }
            let _ = out.write_all(result.trace.to_text().as_bytes());
            let _ = writeln!(out, "\nOutcome:");
            for (message, recipient, fate) in &result.outcomes {
                let _ = writeln!(out, "  {message} <{recipient}>: {}", describe_fate(fate));
            }
        }
        Format::Json => {
            let document = serde_json::json!({
                "trace": result.trace,
                "outcomes": result.outcomes.iter().map(|(m, r, f)| serde_json::json!({
                    "message": m, "recipient": r, "fate": f,
                })).collect::<Vec<_>>(),
                "conservation_problems": result.conservation_problems,
            });
            let _ = serde_json::to_writer_pretty(&mut out, &document);
            let _ = writeln!(out);
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
