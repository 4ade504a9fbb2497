//! Shared helpers for the simulation tests: small worlds written as JSON, and ways to read a
//! run's trace and mailboxes.
#![allow(dead_code)]

use serde_json::{json, Value};
use smtp_lab::sim::run_text::outcome_line;
use smtp_lab::sim::trace::Direction;
use smtp_lab::sim::{run, Event, Fate, RunResult, Scenario, TraceEvent};

/// Parses and validates a scenario, panicking with every error found.
pub fn scenario(value: &Value) -> Scenario {
    Scenario::from_json(&value.to_string())
        .unwrap_or_else(|errors| panic!("the test scenario is invalid:\n{errors}"))
}

/// Runs a scenario written as JSON with its own seed, and checks conservation.
pub fn run_json(value: &Value) -> RunResult {
    let scenario = scenario(value);
    let result = run(&scenario, scenario.seed);
    assert!(
        result.conservation_problems.is_empty(),
        "conservation: {:?}",
        result.conservation_problems
    );
    result
}

pub fn mx(name: &str, preference: u16, exchange: &str) -> Value {
    json!({"name": name, "data": {"MX": {"preference": preference, "exchange": exchange}}})
}

pub fn a(name: &str, address: &str) -> Value {
    json!({"name": name, "data": {"A": address}})
}

/// The sending side: mail.sender.test (192.0.2.10), a submission server for alice, and the
/// sender.test zone.
pub fn sender_host() -> Value {
    json!({
        "name": "mail.sender.test",
        "address": "192.0.2.10",
        "local_domains": ["sender.test"],
        "mailboxes": [{"address": "alice@sender.test", "password": "alice-pw"}],
        "submission_users": [{"user": "alice", "password": "secret"}]
    })
}

pub fn sender_zone() -> Value {
    json!({"origin": "sender.test", "records": [
        mx("sender.test", 10, "mail.sender.test"),
        a("mail.sender.test", "192.0.2.10"),
    ]})
}

/// A receiving host holding mailboxes of `domain`.
pub fn store_host(name: &str, address: &str, domain: &str, users: &[&str]) -> Value {
    json!({
        "name": name,
        "address": address,
        "local_domains": [domain],
        "mailboxes": users.iter().map(|u| json!({
            "address": format!("{u}@{domain}"),
            "password": format!("{u}-pw"),
        })).collect::<Vec<_>>(),
    })
}

/// A message from alice, submitted on port 587 with AUTH.
pub fn message(to: &[&str]) -> Value {
    json!({
        "from": "alice@sender.test",
        "to": to,
        "subject": "Hello",
        "body": "Hi there,\n\nsee you at noon.\n\nAlice\n",
        "submit_to": "mail.sender.test",
        "port": 587,
        "auth": {"user": "alice", "password": "secret"}
    })
}

/// The usual two-domain world: alice@sender.test sends to bob@receiver.test, whose mailbox is
/// on mx.receiver.test (192.0.2.20), the single MX of receiver.test.
pub fn basic_world(name: &str) -> Value {
    json!({
        "name": name,
        "title": name,
        "dns": {"zones": [
            sender_zone(),
            {"origin": "receiver.test", "records": [
                mx("receiver.test", 10, "mx.receiver.test"),
                a("mx.receiver.test", "192.0.2.20"),
            ]},
        ]},
        "hosts": [
            sender_host(),
            store_host("mx.receiver.test", "192.0.2.20", "receiver.test", &["bob", "carol"]),
        ],
        "messages": [message(&["bob@receiver.test"])],
    })
}

pub fn events(result: &RunResult) -> impl Iterator<Item = &TraceEvent> {
    result.trace.events.iter()
}

/// (time, conn, client, server, port) of every connection attempt, in order.
pub fn attempts(result: &RunResult) -> Vec<(u64, u32, String, String, u16)> {
    events(result)
        .filter_map(|e| match &e.event {
            Event::ConnectionAttempted(boxed) => {
                let smtp_lab::sim::trace::ConnectionAttempted {
                    conn,
                    client,
                    server,
                    port,
                    ..
                } = &**boxed;
                Some((
                    e.time_ms,
                    *conn,
                    client.to_string(),
                    server.to_string(),
                    *port,
                ))
            }
            _ => None,
        })
        .collect()
}

/// The servers `client` tried to reach on port 25, in order.
pub fn relay_targets(result: &RunResult, client: &str) -> Vec<String> {
    attempts(result)
        .into_iter()
        .filter(|(_, _, c, _, port)| c == client && *port == 25)
        .map(|(_, _, _, server, _)| server)
        .collect()
}

pub fn fate<'a>(result: &'a RunResult, message: &str, recipient: &str) -> &'a Fate {
    let found: Vec<&Fate> = result
        .outcomes
        .iter()
        .filter(|(m, r, _)| m == message && r == recipient)
        .map(|(_, _, f)| f)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{message} <{recipient}> should have exactly one fate: {:?}",
        result.outcomes
    );
    found[0]
}

/// The messages in a mailbox at the end of the run.
pub fn mailbox<'a>(result: &'a RunResult, address: &str) -> Vec<&'a [u8]> {
    result
        .mailboxes
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(address))
        .map(|(_, items)| items.iter().map(|(_, bytes)| bytes.as_slice()).collect())
        .unwrap_or_default()
}

/// The bytes of every transmission on a connection, in order, with their direction.
pub fn transmissions(result: &RunResult, conn: u32) -> Vec<(Direction, Vec<u8>)> {
    events(result)
        .filter_map(|e| match &e.event {
            Event::Transmitted {
                conn: c,
                direction,
                bytes,
            } if *c == conn => Some((*direction, bytes.as_bytes().to_vec())),
            _ => None,
        })
        .collect()
}

/// The header section of a message, unfolded: (name, value) in order.
pub fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The text trace followed by one line per recipient's fate, as `smtp-lab run` prints them.
pub fn golden_text(result: &RunResult) -> String {
    let mut text = result.trace.to_text();
    text.push_str("\nOutcome:\n");
    for (message, recipient, fate) in &result.outcomes {
        text.push_str(&format!("  {}\n", outcome_line(message, recipient, fate)));
    }
    text
}

/// The first line where two texts differ, both versions, with a little context.
pub fn first_difference(expected: &str, actual: &str) -> String {
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    let index = expected_lines
        .iter()
        .zip(&actual_lines)
        .position(|(e, a)| e != a)
        .unwrap_or(expected_lines.len().min(actual_lines.len()));
    let mut out = format!("first difference at line {}:\n", index + 1);
    for line in &expected_lines[index.saturating_sub(3)..index] {
        out.push_str(&format!("    {line}\n"));
    }
    out.push_str(&format!(
        "  - {}\n  + {}\n",
        expected_lines
            .get(index)
            .copied()
            .unwrap_or("<end of golden file>"),
        actual_lines.get(index).copied().unwrap_or("<end of trace>")
    ));
    out.push_str(&format!(
        "({} lines expected, {} produced)",
        expected_lines.len(),
        actual_lines.len()
    ));
    out
}
