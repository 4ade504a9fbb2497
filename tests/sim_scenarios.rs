#![cfg(not(target_arch = "wasm32"))]
//! Scenario files: the built-in library validates, and a broken scenario gives errors that
//! say where the problem is, never a panic; `smtp-lab run` and `smtp-lab scenarios` on the
//! command line.

mod sim_common;

use serde_json::{json, Value};
use sim_common::{basic_world, store_host};
use smtp_lab::sim::{library, Scenario, ScenarioErrors};
use std::process::Command;

fn errors_of(value: &Value) -> ScenarioErrors {
    match Scenario::from_json(&value.to_string()) {
        Ok(_) => panic!("the scenario should be refused:\n{value:#}"),
        Err(errors) => errors,
    }
}

/// The scenario is refused with an error at `at` whose text contains `problem`.
fn assert_error(value: &Value, at: &str, problem: &str) {
    let errors = errors_of(value);
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.at == at && e.problem.contains(problem)),
        "expected an error at {at:?} containing {problem:?}, got:\n{errors}"
    );
}

/// As [`assert_error`], for an error found while reading the JSON, whose `at` goes on with the
/// line and column.
fn assert_read_error(value: &Value, at: &str, problem: &str) {
    let errors = errors_of(value);
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.at.starts_with(&format!("{at} (line ")) && e.problem.contains(problem)),
        "expected an error at {at:?} (line ...) containing {problem:?}, got:\n{errors}"
    );
}

fn world() -> Value {
    let mut world = basic_world("validation");
    world["fetches"] = json!([{"mailbox": "bob@receiver.test", "host": "mx.receiver.test",
                               "at_s": 600}]);
    world
}

#[test]
fn every_builtin_scenario_validates_and_has_a_title_and_teaching_text() {
    let all = library::builtin();
    assert!(all.len() >= 20);
    let mut names = std::collections::BTreeSet::new();
    for entry in all {
        let scenario = entry.unwrap_or_else(|(file, errors)| panic!("{file}:\n{errors}"));
        assert!(scenario.validate().is_ok());
        assert!(!scenario.title.trim().is_empty(), "{}", scenario.name);
        assert!(!scenario.teaching.trim().is_empty(), "{}", scenario.name);
        assert!(
            names.insert(scenario.name.clone()),
            "{} twice",
            scenario.name
        );
        assert_eq!(library::find(&scenario.name), Some(scenario.clone()));
        // A scenario survives a JSON round trip.
        let text = serde_json::to_string(&scenario).unwrap();
        assert_eq!(Scenario::from_json(&text).unwrap(), scenario);
    }
    assert_eq!(library::find("no-such-scenario"), None);
}

#[test]
fn the_test_world_itself_is_valid() {
    Scenario::from_json(&world().to_string()).expect("valid");
}

#[test]
fn text_that_is_not_json_is_refused_with_its_line_and_column() {
    // An empty text is called empty instead (see `an_empty_scenario_file_is_called_empty`).
    for text in [
        "{",
        "not json",
        "{\"name\": \"x\",\n  \"hosts\": [}",
        "[]",
        "null",
    ] {
        let errors = Scenario::from_json(text).expect_err(text);
        assert_eq!(errors.0.len(), 1);
        // The line and column, after the path of what was being read if there is one.
        assert!(errors.0[0].at.contains("line "), "{text:?}: {errors}");
    }
}

/// Half of a UTF-16 pair written alone in a string is no character (RFC 8259 7); serde_json
/// calls it the end of an escape, which the note explains.
#[test]
fn half_a_surrogate_pair_is_explained() {
    let world = world().to_string();
    for half in ["\\ud83d", "\\ud83dx", "\\ude00", "\\ud83d\\u0041"] {
        let text = world.replacen("\"title\":\"", &format!("\"title\":\"{half}"), 1);
        assert_ne!(text, world, "the world has a title");
        let errors = Scenario::from_json(&text).expect_err(half);
        let said = errors.to_string();
        assert!(
            errors.0[0].at.starts_with("title (line ") && said.contains("halves of a pair"),
            "{half}: {said}"
        );
    }
    // A whole pair is a character.
    let text = world.replacen("\"title\":\"", "\"title\":\"\\ud83d\\ude00", 1);
    assert!(Scenario::from_json(&text).is_ok());
}
/// The format's example of an unknown field's error is the error the program gives, every
/// field it lists included.
#[test]
fn the_format_documents_the_unknown_field_error_as_given() {
    let docs = include_str!("../docs/scenario-format.md");
    let example = docs
        .lines()
        .find(|line| line.starts_with("hosts[1].colour (line "))
        .expect("the example in docs/scenario-format.md");
    let (_, documented) = example
        .split_once("): ")
        .expect("a position, then the problem");
    let mut world = world();
    world["hosts"][1]["colour"] = json!("blue");
    let errors = errors_of(&world);
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(
        errors.0[0].at.starts_with("hosts[1].colour (line "),
        "{errors}"
    );
    assert_eq!(errors.0[0].problem, documented);
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let mut top = world();
    top["colour"] = json!("blue");
    let mut host = world();
    host["hosts"][1]["greylisting"] = json!(300);
    let mut message = world();
    message["messages"][0]["reply_to"] = json!("x@y.test");
    let mut retry = world();
    retry["retry"] = json!({"first_retry": 10});
    let mut fault = world();
    fault["hosts"][1]["faults"] = json!([{"kind": {"type": "down"}, "until": 5}]);
    // Inside a fault's kind and a record's data too.
    let mut kind = world();
    kind["hosts"][1]["faults"] = json!([{"kind": {"type": "busy", "colour": 1}}]);
    let mut mx = world();
    mx["dns"]["zones"][1]["records"][0]["data"]["MX"]["colour"] = json!(1);
    for (value, field, at) in [
        (top, "colour", "colour"),
        (host, "greylisting", "hosts[1].greylisting"),
        (message, "reply_to", "messages[0].reply_to"),
        (retry, "first_retry", "retry.first_retry"),
        (fault, "until", "hosts[1].faults[0].until"),
        (kind, "colour", "hosts[1].faults[0].kind.colour"),
        (mx, "colour", "dns.zones[1].records[0].data.MX.colour"),
    ] {
        let errors = errors_of(&value);
        let text = errors.to_string();
        assert!(text.contains(&format!("unknown field `{field}`")), "{text}");
        assert!(
            errors.0[0].at.starts_with(&format!("{at} (line ")),
            "{text}"
        );
    }
}

#[test]
fn wrong_types_and_missing_fields_are_refused() {
    let mut port = world();
    port["messages"][0]["port"] = json!(70_000);
    let mut address = world();
    address["hosts"][0]["address"] = json!("not an address");
    let mut missing = world();
    missing["hosts"][0]
        .as_object_mut()
        .unwrap()
        .remove("address");
    let mut kind = world();
    kind["hosts"][1]["faults"] = json!([{"kind": {"type": "on_fire"}}]);
    let mut down_latency = world();
    down_latency["hosts"][1]["faults"] = json!([{"kind": {"type": "down", "extra_latency_ms": 5}}]);
    let errors = errors_of(&down_latency).to_string();
    assert!(
        errors.contains("only a slow fault takes extra_latency_ms"),
        "{errors}"
    );
    // A stall says where the server hangs, and a reply fault where it answers and what;
    // only they take `at`, and only a reply fault takes `reply`.
    for (kind, problem) in [
        (
            json!({"type": "stall"}),
            "a stall fault needs at: greeting, ehlo, mail, rcpt, data or dot",
        ),
        (
            json!({"type": "down", "at": "mail"}),
            "only a stall or reply fault takes at",
        ),
        (
            json!({"type": "stall", "at": "mail", "reply": "450 busy"}),
            "only a reply fault takes reply",
        ),
        (
            json!({"type": "reply", "reply": "450 busy"}),
            "a reply fault needs at: mail, rcpt or dot",
        ),
        (
            json!({"type": "reply", "at": "ehlo", "reply": "450 busy"}),
            "a reply fault answers at mail, rcpt or dot",
        ),
        (
            json!({"type": "reply", "at": "rcpt"}),
            "a reply fault needs reply, such as \"450 4.2.1 Mailbox busy",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "250 fine"}),
            "a code from 400 to 599",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "460 no"}),
            "a code from 400 to 599",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450-busy"}),
            "a code from 400 to 599",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450 busy\r\nRSET"}),
            "printable ASCII",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "421 4.3.2 bye"}),
            "421 closes the connection (RFC 5321 3.8): that is a busy fault",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450 5.2.1 busy"}),
            "the class of its reply code",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450 4.02.001 busy"}),
            "without leading zeros",
        ),
        // RFC 5321 4.2's textstring has at least one character.
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450"}),
            "a code from 400 to 599, a space and printable ASCII text",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "450 4.2.1 "}),
            "text after its enhanced status code",
        ),
        // Each point answers the refusals RFC 5321 4.3.2 lists for its command.
        (
            json!({"type": "reply", "at": "mail", "reply": "450 4.2.1 busy"}),
            "a reply fault at mail answers 451, 452, 455, 550, 552, 553 or 554",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": "503 5.5.1 Bad sequence"}),
            "a reply fault at rcpt answers 450, 451, 452, 455, 550, 551, 552, 553 or 554",
        ),
        (
            json!({"type": "reply", "at": "dot", "reply": "553 5.1.3 bad"}),
            "a reply fault at dot answers 450, 451, 452, 550, 552 or 554",
        ),
        (
            json!({"type": "reply", "at": "rcpt", "reply": format!("450 {}", "x".repeat(507))}),
            "at most 510 characters",
        ),
        (
            json!({"type": "stall", "at": "mail", "extra_latency_ms": 5}),
            "only a slow fault takes extra_latency_ms",
        ),
        (
            json!({"type": "stall", "at": "quit"}),
            "unknown variant `quit`",
        ),
    ] {
        let mut stall = world();
        let reply_checked = kind["reply"].is_string() && kind["at"].is_string();
        stall["hosts"][1]["faults"] = json!([{ "kind": kind }]);
        let errors = errors_of(&stall).to_string();
        assert!(errors.contains(problem), "{errors}");
        assert!(errors.contains("hosts[1].faults[0].kind"), "{errors}");
        // A reply fault's reply is checked once read, and the error names that field.
        if reply_checked && !problem.contains("only a") && !problem.contains("answers at") {
            assert!(
                errors.contains("hosts[1].faults[0].kind.reply: "),
                "{errors}"
            );
        }
    }
    let mut text_number = world();
    text_number["retry"] = json!({"first_retry_s": "600"});
    // In JSON's words: an array, an object (not serde's sequence and map).
    let mut one_recipient = world();
    one_recipient["messages"][0]["to"] = json!("bob@receiver.test");
    assert_read_error(
        &one_recipient,
        "messages[0].to",
        "invalid type: string \"bob@receiver.test\", expected an array",
    );
    let mut zones = world();
    zones["dns"] = json!({"zones": [7]});
    assert_read_error(&zones, "dns.zones[0]", "expected an object");
    // And what was found: an array, an object.
    let mut listed = world();
    listed["messages"][0]["from"] = json!(["alice@sender.test"]);
    assert_read_error(
        &listed,
        "messages[0].from",
        "invalid type: array, expected a string",
    );
    let mut object = world();
    object["messages"][0]["from"] = json!({"address": "alice@sender.test"});
    assert_read_error(
        &object,
        "messages[0].from",
        "invalid type: object, expected a string",
    );
    // A trailing comma is found at the bracket after it, which is said.
    let text = world().to_string();
    let fetches = text.find("\"fetches\":[").expect("fetches");
    let end = fetches + text[fetches..].find(']').expect("the end of fetches");
    let text = format!("{},{}", &text[..end], &text[end..]);
    let errors = Scenario::from_json(&text).expect_err("refused");
    assert!(
        errors.0[0]
            .problem
            .ends_with("trailing comma (remove the last comma before this position: JSON has none before a closing ] or })"),
        "{errors}"
    );
    // A retry interval of 0 is refused by its field's name.
    let mut no_wait = world();
    no_wait["retry"] = json!({"first_retry_s": 0, "max_interval_s": 0});
    assert_error(
        &no_wait,
        "retry.first_retry_s",
        "must be at least one second",
    );
    assert_error(
        &no_wait,
        "retry.max_interval_s",
        "must be at least one second",
    );
    assert!(!errors_of(&no_wait).to_string().contains("shorter than"));
    // Each error names the field by its path, then where it is in the text.
    for (value, at) in [
        (port, "messages[0].port (line "),
        (address, "hosts[0].address (line "),
        (missing, "hosts[0] (line "),
        (kind, "hosts[1].faults[0].kind.type (line "),
        (text_number, "retry.first_retry_s (line "),
    ] {
        let errors = errors_of(&value);
        assert!(errors.0[0].at.starts_with(at), "{at}: {errors}");
        // The position is said once, in `at`.
        assert!(!errors.0[0].problem.contains(" at line "), "{errors}");
    }
    // A whole number too large for 64 bits is read as a float; the error says what is wrong.
    let mut seedless = world();
    seedless.as_object_mut().unwrap().remove("seed");
    let text = seedless
        .to_string()
        .replacen('{', "{\"seed\":18446744073709551616,", 1);
    let errors = Scenario::from_json(&text).expect_err("refused");
    assert!(errors.0[0].at.starts_with("seed (line "), "{errors}");
    assert!(
        errors.0[0]
            .problem
            .contains("expected a whole number from 0 to 18446744073709551615")
            && errors.0[0].problem.contains("too large for 64 bits"),
        "{errors}"
    );
}

#[test]
fn references_to_missing_hosts_are_refused_where_they_are() {
    let mut route = world();
    route["hosts"][0]["routes"] = json!([{"domain": "receiver.test", "host": "ghost.test"}]);
    assert_error(&route, "hosts[0].routes[0].host", "ghost.test");

    let mut submit = world();
    submit["messages"][0]["submit_to"] = json!("ghost.test");
    assert_error(&submit, "messages[0].submit_to", "ghost.test");

    let mut fetch = world();
    fetch["fetches"][0]["host"] = json!("ghost.test");
    assert_error(&fetch, "fetches[0].host", "ghost.test");

    let mut mailbox = world();
    mailbox["fetches"][0]["mailbox"] = json!("nobody@receiver.test");
    assert_error(&mailbox, "fetches[0].mailbox", "nobody@receiver.test");

    let mut raw = world();
    raw["raw_sessions"] = json!([{"client": "mallory", "address": "203.0.113.66",
                                  "server": "ghost.test", "bytes": "QUIT\r\n"}]);
    assert_error(&raw, "raw_sessions[0].server", "ghost.test");
}

#[test]
fn duplicates_are_refused() {
    let mut name = world();
    name["hosts"][1]["name"] = json!("MAIL.sender.test");
    assert_error(&name, "hosts[1].name", "two hosts are named");
    // The error names the host it clashes with, too.
    assert_error(
        &name,
        "hosts[1].name",
        "(hosts[0] is named mail.sender.test)",
    );

    let mut address = world();
    address["hosts"][1]["address"] = json!("192.0.2.10");
    assert_error(
        &address,
        "hosts[1].address",
        "192.0.2.10 (hosts[0] has 192.0.2.10)",
    );

    let mut mailbox = world();
    let mut other = store_host("mx2.receiver.test", "192.0.2.22", "receiver.test", &["bob"]);
    other["mailboxes"][0]["address"] = json!("Bob@receiver.test");
    mailbox["hosts"].as_array_mut().unwrap().push(other);
    assert_error(&mailbox, "hosts[2].mailboxes[0].address", "defined twice");

    let mut user = world();
    user["hosts"][0]["submission_users"] = json!([
        {"user": "alice", "password": "secret"}, {"user": "alice", "password": "other"}
    ]);
    assert_error(&user, "hosts[0].submission_users[1].user", "defined twice");

    let mut route = world();
    route["hosts"][0]["routes"] = json!([
        {"domain": "receiver.test", "host": "mx.receiver.test"},
        {"domain": "RECEIVER.test", "host": "mail.sender.test"}
    ]);
    assert_error(&route, "hosts[0].routes[1].domain", "another route above");
}

#[test]
fn a_submission_host_without_ehlo_is_refused() {
    // Submission needs AUTH, which only an EHLO reply can offer (RFC 4954).
    let mut submission = world();
    submission["hosts"][0]["extensions"] = json!({"ehlo": false});
    assert_error(
        &submission,
        "hosts[0].extensions.ehlo",
        "submission needs AUTH",
    );
    // A receiving host without EHLO is a world of its own: valid.
    let mut receiving = world();
    receiving["hosts"][1]["extensions"] = json!({"ehlo": false});
    if let Err(errors) = Scenario::from_json(&receiving.to_string()) {
        panic!("a receiving host without EHLO is valid:\n{errors}");
    }
}

#[test]
fn a_mailbox_no_mail_or_fetch_could_reach_is_refused() {
    let mut long = world();
    long["hosts"][1]["mailboxes"][1]["address"] =
        json!(format!("{}@receiver.test", "x".repeat(65)));
    assert_error(
        &long,
        "hosts[1].mailboxes[1].address",
        "local part of 65 octets (at most 64)",
    );
    // A local part that needs quotes in RCPT TO is written bare, and is fine.
    let mut spaced = world();
    spaced["hosts"][1]["mailboxes"][1]["address"] = json!("car ol@receiver.test");
    assert!(Scenario::from_json(&spaced.to_string()).is_ok());

    let mut quoted = world();
    quoted["hosts"][1]["mailboxes"][1]["address"] =
        json!(format!("{} @receiver.test", "x".repeat(62)));
    assert_error(
        &quoted,
        "hosts[1].mailboxes[1].address",
        "once quoted: local part of 65 octets",
    );

    let mut empty = world();
    empty["hosts"][1]["mailboxes"][0]["password"] = json!("");
    assert_error(
        &empty,
        "hosts[1].mailboxes[0].password",
        "PASS needs a password",
    );
    let mut fetch = world();
    fetch["fetches"][0]["password"] = json!("");
    assert_error(&fetch, "fetches[0].password", "PASS needs a password");
}

/// serde would read an object's fields from an array, in declaration order; the format has
/// no such form, so an array where an object belongs is refused, whatever its length.
#[test]
fn an_array_where_an_object_belongs_is_refused() {
    for retry in [
        json!([60, 300, 1000, null, 30]),
        json!([60, 300, 1000, null, 30, 1]),
        json!([]),
    ] {
        let mut value = world();
        value["retry"] = retry.clone();
        // Read to the end or stopped at the wrong length: either way with the line and
        // column.
        assert_read_error(&value, "retry", "must be an object");
    }
    let mut fault = world();
    fault["hosts"][1]["faults"] = json!([{"kind": ["down", null], "until_s": 60}]);
    assert_read_error(&fault, "hosts[1].faults[0].kind", "not an array");
    fault["hosts"][1]["faults"] = json!([{"kind": ["down"], "until_s": 60}]);
    assert_read_error(&fault, "hosts[1].faults[0].kind", "not an array");
    // An object wrapped in one more array fails inside it, at an index the format does not
    // have: the error names the array that stands where the object belongs.
    let mut wrapped = world();
    wrapped["fetches"] = json!([[wrapped["fetches"][0].clone()]]);
    assert_read_error(&wrapped, "fetches[0]", "not an array");
    let mut wrapped_record = world();
    wrapped_record["dns"]["zones"][0]["records"] =
        json!([[wrapped_record["dns"]["zones"][0]["records"][0].clone()]]);
    assert_read_error(&wrapped_record, "dns.zones[0].records[0]", "not an array");
    let top = Scenario::from_json(&json!([world()]).to_string()).expect_err("refused");
    assert!(
        top.to_string().contains("a scenario is a JSON object"),
        "{top}"
    );
    // Arrays where the format has them are read as before.
    assert!(Scenario::from_json(&world().to_string()).is_ok());
}

/// An array read to the end as an object is found after reading, and pointed at all the same:
/// the line and column of its opening bracket, in a file laid out over many lines.
#[test]
fn an_array_where_an_object_belongs_is_pointed_at() {
    // Read to the end, stopped at an element of the wrong type, at the wrong length, empty;
    // laid out over lines, the elements are on lines after the bracket's.
    for retry in [
        json!([60, 300, 1000, null, 30]),
        json!(["x"]),
        json!([60, 300, 1000, null, 30, 1]),
        json!([]),
    ] {
        let mut value = world();
        value["retry"] = retry.clone();
        let text = serde_json::to_string_pretty(&value).expect("JSON");
        let offset = text.find("\"retry\": ").expect("in the text") + "\"retry\": ".len();
        let line = text[..offset].matches('\n').count() + 1;
        let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
        let expected = format!("retry (line {line}, column {column})");
        let errors = Scenario::from_json(&text).expect_err("refused");
        assert!(
            errors.0.iter().any(|e| e.at == expected),
            "{retry}: {expected}: {errors}"
        );
    }
}

/// A number out of a field's range is refused with the range the field takes, in words, not
/// the program's type name; one too large for 64 bits, which JSON readers take as a
/// fraction, is said to be read so.
#[test]
fn a_number_out_of_range_is_refused_with_the_fields_range() {
    let mut port = world();
    port["messages"][0]["port"] = json!(70_000);
    assert_read_error(
        &port,
        "messages[0].port",
        "expected a whole number from 0 to 65535",
    );
    // serde's own "expected u16" is put in words, not the author's text that says the same.
    port["messages"][0]["port"] = json!("a, expected u16");
    assert_read_error(
        &port,
        "messages[0].port",
        "invalid type: string \"a, expected u16\", expected a whole number from 0 to 65535",
    );
    // 32-bit fields: an SOA's take the whole range (RFC 1035 3.3.13), a TTL half of it.
    let mut soa = world();
    let records = soa["dns"]["zones"][1]["records"].as_array_mut().unwrap();
    records.push(json!({"name": "@", "data": {"SOA": {
        "mname": "ns.receiver.test", "rname": "hostmaster.receiver.test", "serial": 4_294_967_296u64,
        "refresh_s": 1, "retry_s": 1, "expire_s": 1, "minimum_ttl_s": 1}}}));
    let at = format!(
        "dns.zones[1].records[{}].data.SOA.serial",
        records.len() - 1
    );
    assert_read_error(&soa, &at, "expected a whole number from 0 to 4294967295");
    let mut ttl = world();
    ttl["dns"]["zones"][1]["records"][0]["ttl_s"] = json!(4_294_967_296u64);
    assert_read_error(
        &ttl,
        "dns.zones[1].records[0].ttl_s",
        "expected a whole number from 0 to 2147483647",
    );
    // A whole number past the signed 64-bit range is still called one, with the range checked.
    let mut start = world();
    start["start_unix_s"] = json!(9_223_372_036_854_775_808u64);
    assert_read_error(
        &start,
        "start_unix_s",
        &format!(
            "integer `9223372036854775808`, expected a whole number from 0 to {}",
            smtp_lab::sim::scenario::START_UNIX_S_MAX
        ),
    );
    let mut negative_zero = world();
    negative_zero["messages"][0]["at_s"] = serde_json::from_str("-0").expect("a number");
    assert_read_error(
        &negative_zero,
        "messages[0].at_s",
        "an exponent, -0, and whole numbers",
    );
    let mut unknown = world();
    unknown["messages"][0]["x, expected struct Y"] = json!(1);
    assert_read_error(
        &unknown,
        "messages[0].x, expected struct Y",
        "unknown field `x, expected struct Y`, expected one of",
    );
    let huge: serde_json::Value = serde_json::from_str("99999999999999999999").expect("a number");
    port["messages"][0]["port"] = huge;
    let errors = errors_of(&port);
    assert!(
        errors.0.iter().any(|e| e.at.starts_with("messages[0].port")
            && e.problem
                .contains("expected a whole number from 0 to 65535")
            && e.problem
                .contains("too large for 64 bits, are read as fractions")
            && !e.problem.contains("u16")),
        "{errors}"
    );
}

#[test]
fn a_time_in_milliseconds_is_refused_in_milliseconds() {
    let mut latency = world();
    latency["latency_ms"] = json!(u64::MAX);
    assert_error(
        &latency,
        "latency_ms",
        &format!("{} ms is more than a year", u64::MAX),
    );
    let mut slow = world();
    slow["hosts"][1]["faults"] =
        json!([{"kind": {"type": "slow", "extra_latency_ms": 40_000_000_000u64}}]);
    assert_error(
        &slow,
        "hosts[1].faults[0].kind.extra_latency_ms",
        "40000000000 ms is more than a year",
    );
    // The limit is 31622400 s to the millisecond: one more is refused, and the error says
    // the limit in milliseconds.
    let dns_fault_until = |until_ms: u64| {
        let mut value = world();
        value["dns"]["faults"] =
            json!([{"domain": "receiver.test", "fault": "Timeout", "until_ms": until_ms}]);
        value
    };
    assert_error(
        &dns_fault_until(31_622_400_001),
        "dns.faults[0].until_ms",
        "31622400001 ms is more than a year (31622400000 ms)",
    );
    assert!(Scenario::from_json(&dns_fault_until(31_622_400_000).to_string()).is_ok());
}

#[test]
fn a_mailbox_outside_the_hosts_local_domains_is_refused() {
    let mut value = world();
    value["hosts"][1]["mailboxes"][1]["address"] = json!("carol@elsewhere.test");
    assert_error(&value, "hosts[1].mailboxes[1].address", "local_domains");
    let mut no_local_part = world();
    no_local_part["hosts"][1]["mailboxes"][0]["address"] = json!("receiver.test");
    assert_error(
        &no_local_part,
        "hosts[1].mailboxes[0].address",
        "local_domains",
    );
}

#[test]
fn a_fetch_without_a_password_is_refused() {
    let mut value = world();
    value["hosts"][1]["mailboxes"][0]
        .as_object_mut()
        .unwrap()
        .remove("password");
    assert_error(&value, "fetches[0].mailbox", "password");
    // With a password in the fetch itself it is fine.
    value["fetches"][0]["password"] = json!("bob-pw");
    Scenario::from_json(&value.to_string()).expect("valid");
}

#[test]
fn invalid_dns_data_is_refused() {
    let mut exchange = world();
    exchange["dns"]["zones"][1]["records"][0]["data"]["MX"]["exchange"] = json!("bad..name");
    assert_error(&exchange, "dns", "");
    let text = errors_of(&exchange).to_string();
    assert!(text.contains("receiver.test"), "the zone is named: {text}");

    let mut origin = world();
    origin["dns"]["zones"][1]["origin"] = json!("-bad-.test");
    assert_error(&origin, "dns", "");

    let mut duplicate = world();
    duplicate["dns"]["zones"][1]["origin"] = json!("sender.test");
    assert_error(&duplicate, "dns", "");

    let mut fault = world();
    fault["dns"]["faults"] = json!([{"domain": "bad..test", "fault": "ServFail"}]);
    assert_error(&fault, "dns", "");

    // A malformed address in an A record is a JSON-level error with its position.
    let mut a_record = world();
    a_record["dns"]["zones"][1]["records"][1]["data"]["A"] = json!("999.0.2.20");
    let at = &errors_of(&a_record).0[0].at;
    assert!(
        at.starts_with("dns.zones[1].records[1].data.A (line "),
        "{at}"
    );
    // It names the value, and says what an address looks like.
    assert_read_error(
        &a_record,
        "dns.zones[1].records[1].data.A",
        "\"999.0.2.20\" is not an IPv4 address (like 192.0.2.1)",
    );
    let mut aaaa_record = world();
    aaaa_record["dns"]["zones"][1]["records"][1]["data"] = json!({"AAAA": "2001:db8::g"});
    assert_read_error(
        &aaaa_record,
        "dns.zones[1].records[1].data.AAAA",
        "\"2001:db8::g\" is not an IPv6 address (like 2001:db8::1)",
    );
    let mut host_address = world();
    host_address["hosts"][1]["address"] = json!("mx.receiver.test");
    assert_read_error(
        &host_address,
        "hosts[1].address",
        "\"mx.receiver.test\" is not an IP address (IPv4 like 192.0.2.1, or IPv6 like",
    );
}

#[test]
fn settings_that_contradict_each_other_are_refused() {
    // A message sent after the run ends would have no fate at all.
    let mut late_message = world();
    late_message["run_until_s"] = json!(3600);
    late_message["messages"][0]["at_s"] = json!(7200);
    assert_error(&late_message, "messages[0].at_s", "after the run ends");
    let mut late_fetch = world();
    late_fetch["run_until_s"] = json!(3600);
    late_fetch["fetches"][0]["at_s"] = json!(3601);
    assert_error(&late_fetch, "fetches[0].at_s", "after the run ends");
    let mut at_the_end = world();
    at_the_end["run_until_s"] = json!(600);
    at_the_end["messages"][0]["at_s"] = json!(600);
    assert!(Scenario::from_json(&at_the_end.to_string()).is_ok());

    let mut waits = world();
    waits["retry"] = json!({"first_retry_s": 3600, "max_interval_s": 600});
    assert_error(&waits, "retry.max_interval_s", "shorter than first_retry_s");
    // A longest wait left out follows a first wait longer than its default, rather than
    // refusing the file over a field it never wrote; written as null, it is an error.
    let mut long_first = world();
    long_first["retry"] = json!({"first_retry_s": 12_000});
    let scenario = Scenario::from_json(&long_first.to_string()).expect("loads");
    assert_eq!(scenario.retry.max_interval_s, 12_000);
    long_first["retry"] = json!({"first_retry_s": 600});
    let scenario = Scenario::from_json(&long_first.to_string()).expect("loads");
    assert_eq!(scenario.retry.max_interval_s, 3 * 3600);
    long_first["retry"] = json!({"max_interval_s": null});
    let refused = errors_of(&long_first).to_string();
    assert!(
        refused.starts_with("retry.max_interval_s (line 1, column ")
            && refused.contains("invalid type: null"),
        "{refused}"
    );
    long_first["retry"] = json!({"max_interval": 600});
    let refused = errors_of(&long_first).to_string();
    assert!(
        refused.contains("unknown field `max_interval`"),
        "{refused}"
    );
    let mut timeout = world();
    timeout["retry"] = json!({"connect_timeout_s": 0});
    assert_error(&timeout, "retry.connect_timeout_s", "at least one second");
    // The round trip is said as it is, even where twice the latency passes 64 bits.
    let mut slow = world();
    slow["latency_ms"] = json!(u64::MAX);
    assert_error(
        &slow,
        "latency_ms",
        "a round trip of 36893488147419103230 ms is not shorter than",
    );

    let mut final_dot = world();
    final_dot["hosts"][1]["local_domains"] = json!(["receiver.test."]);
    assert_error(
        &final_dot,
        "hosts[1].local_domains[0]",
        "not a domain as addresses write it",
    );
    let mut spaced = world();
    spaced["hosts"][0]["routes"] = json!([{"domain": "receiver test", "host": "mx.receiver.test"}]);
    assert_error(&spaced, "hosts[0].routes[0].domain", "not a domain");

    for (unfit, what) in [
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("::ffff:0.0.0.0", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let mut no_host = world();
        no_host["hosts"][1]["address"] = json!(unfit);
        assert_error(&no_host, "hosts[1].address", what);
        let mut no_client = world();
        no_client["raw_sessions"] = json!([{"client": "c", "address": unfit,
            "server": "mx.receiver.test", "bytes": "QUIT\r\n"}]);
        assert_error(&no_client, "raw_sessions[0].address", what);
    }

    let mut pop3_port = world();
    pop3_port["messages"][0]["port"] = json!(110);
    assert_error(&pop3_port, "messages[0].port", "110 is POP3");
    let mut port_zero = world();
    port_zero["messages"][0]["port"] = json!(0);
    assert_error(&port_zero, "messages[0].port", "TCP port 0 is reserved");
    port_zero["messages"][0]["port"] = json!(587);
    port_zero["raw_sessions"] = json!([{"client": "c", "address": "192.0.2.99",
        "server": "mx.receiver.test", "port": 0, "bytes": "QUIT\r\n"}]);
    assert_error(&port_zero, "raw_sessions[0].port", "TCP port 0 is reserved");
    // A raw client's name is its actor column in the trace: one that shows nothing is refused.
    for blank in ["", "   ", "\u{200b}"] {
        let mut unnamed = world();
        unnamed["raw_sessions"] = json!([{"client": blank, "address": "192.0.2.99",
            "server": "mx.receiver.test", "bytes": "QUIT\r\n"}]);
        assert_error(
            &unnamed,
            "raw_sessions[0].client",
            "the client needs a name that shows",
        );
    }
    let mut quoted_mailbox = world();
    quoted_mailbox["hosts"][1]["mailboxes"][0]["address"] = json!("\"bo b\"@receiver.test");
    assert_error(
        &quoted_mailbox,
        "hosts[1].mailboxes[0].address",
        "cannot be quoted",
    );
    // A control character in a mailbox is said once, not again as the address's syntax.
    let mut tabbed_mailbox = world();
    tabbed_mailbox["hosts"][1]["mailboxes"][0]["address"] = json!("b\tob@receiver.test");
    let errors = errors_of(&tabbed_mailbox);
    let said: Vec<_> = errors
        .0
        .iter()
        .filter(|e| e.at == "hosts[1].mailboxes[0].address")
        .collect();
    assert!(
        said.len() == 1 && said[0].problem.contains("holds U+0009"),
        "{errors}"
    );
    // A domain that is none says what is wrong in it.
    let mut underscored = world();
    underscored["hosts"][1]["local_domains"] = json!(["receiver.test", "b_x.test"]);
    assert_error(
        &underscored,
        "hosts[1].local_domains[1]",
        "\"b_x.test\" is not a domain as addresses write it: label \"b_x\" contains '_'",
    );

    let mut literal = world();
    literal["hosts"][1]["relay_domains"] = json!(["[192.0.2.99]"]);
    assert!(
        Scenario::from_json(&literal.to_string()).is_ok(),
        "an address literal"
    );
    literal["hosts"][1]["relay_domains"] = json!(["[2001:db8::99]"]);
    assert_error(
        &literal,
        "hosts[1].relay_domains[0]",
        "not an address literal: IPv6 address literal without its \"IPv6:\" tag",
    );

    // Huge values are refused, never overflowed.
    let mut huge_timeout = world();
    huge_timeout["retry"] = json!({"connect_timeout_s": u64::MAX});
    assert_error(&huge_timeout, "retry.connect_timeout_s", "more than a year");

    let mut slow_world = world();
    slow_world["latency_ms"] = json!(15_000);
    assert_error(
        &slow_world,
        "latency_ms",
        "no connection could ever be made",
    );
    let mut dns_fault_late = world();
    dns_fault_late["dns"]["faults"] =
        json!([{"domain": "receiver.test", "fault": "Timeout", "from_ms": 1_000_000_000_000u64}]);
    assert_error(&dns_fault_late, "dns.faults[0].from_ms", "more than a year");

    let mut host_fault = world();
    host_fault["hosts"][1]["faults"] =
        json!([{"kind": {"type": "down"}, "from_s": 600, "until_s": 60}]);
    assert_error(
        &host_fault,
        "hosts[1].faults[0].until_s",
        "before it starts",
    );
    let mut dns_fault = world();
    dns_fault["dns"]["faults"] = json!([{"domain": "receiver.test", "fault": "ServFail",
                                          "from_ms": 5000, "until_ms": 1000}]);
    let errors = errors_of(&dns_fault).to_string();
    assert!(
        errors.contains("faults[0].until_ms: ends before it starts (from_ms)"),
        "{errors}"
    );
}

#[test]
fn other_problems_are_refused_where_they_are() {
    let mut no_recipient = world();
    no_recipient["messages"][0]["to"] = json!([]);
    assert_error(&no_recipient, "messages[0]", "at least one recipient");

    let mut host_name = world();
    host_name["hosts"][1]["name"] = json!("mx receiver");
    assert_error(&host_name, "hosts[1].name", "not a host name");

    let mut no_hosts = world();
    no_hosts["hosts"] = json!([]);
    let errors = errors_of(&no_hosts);
    assert!(errors.0.iter().any(|e| e.at == "hosts"), "{errors}");

    let mut retry = world();
    retry["retry"] = json!({"first_retry_s": 0});
    assert_error(&retry, "retry.first_retry_s", "at least one second");

    let mut limit = world();
    limit["hosts"][1]["max_recipients"] = json!(0);
    assert_error(&limit, "hosts[1].max_recipients", "at least 1");

    let mut cache = world();
    cache["hosts"][0]["connection_cache_s"] = json!(301);
    assert_error(&cache, "hosts[0].connection_cache_s", "at most 240");
    for octets in [json!(0), json!(64 * 1024 * 1024 + 1)] {
        let mut chunks = basic_world("chunks");
        chunks["hosts"][0]["client_chunk_octets"] = octets;
        assert_error(
            &chunks,
            "hosts[0].client_chunk_octets",
            "from 1 to 67108864",
        );
    }

    let mut name = world();
    name["name"] = json!("  ");
    assert_error(&name, "name", "needs a name");
    // Characters drawn as nothing make no name either.
    for invisible in [
        "\u{200b}",
        "\u{feff}\u{2060}",
        " \u{00ad} ",
        "\u{3164}",
        "\u{e0001}",
        "\u{1d173}",
    ] {
        name["name"] = json!(invisible);
        assert_error(&name, "name", "needs a name");
    }
    name["name"] = json!("\u{200b}x");
    assert!(Scenario::from_json(&name.to_string()).is_ok());
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut value = world();
    value["messages"][0]["submit_to"] = json!("ghost.test");
    value["fetches"][0]["host"] = json!("ghost.test");
    value["hosts"][1]["address"] = json!("192.0.2.10");
    let errors = errors_of(&value);
    assert!(errors.0.len() >= 3, "{errors}");
    assert_eq!(errors.to_string().lines().count(), errors.0.len());
}

#[test]
fn no_prefix_of_a_scenario_file_panics() {
    let (_, text) = library::SCENARIO_FILES[0];
    // Every cut before the closing brace leaves something that is not a scenario.
    for end in (0..text.trim_end().len()).filter(|&i| text.is_char_boundary(i)) {
        let result = Scenario::from_json(&text[..end]);
        assert!(
            result.is_err(),
            "a prefix of {end} octets is not a scenario"
        );
    }
    assert!(Scenario::from_json(text).is_ok());
}

// ----- the command line -----

fn smtp_lab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smtp-lab"))
        .args(args)
        .output()
        .expect("run smtp-lab")
}

#[test]
fn run_on_a_broken_file_exits_2_with_the_error_on_stderr() {
    let dir = std::env::temp_dir().join(format!("sim-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut value = world();
    value["messages"][0]["submit_to"] = json!("ghost.test");
    let broken = dir.join("broken.json");
    std::fs::write(&broken, value.to_string()).unwrap();
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "{ this is not json").unwrap();
    // Saved as "Unicode" by an editor: UTF-16, little-endian, with its byte order mark.
    let utf16 = dir.join("utf16.json");
    let utf16_bytes: Vec<u8> = [0xFEFF_u16]
        .into_iter()
        .chain(value.to_string().encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(&utf16, utf16_bytes).unwrap();
    let latin1 = dir.join("latin1.json");
    std::fs::write(&latin1, b"{\"name\": \"caf\xe9\"}").unwrap();
    for (path, expected) in [
        (&broken, "messages[0].submit_to"),
        (&not_json, "line 1, column"),
        (
            &utf16,
            "utf16.json is UTF-16 text (what some editors call \"Unicode\"), but a JSON file \
             must be UTF-8 (RFC 8259 8.1): save it again as UTF-8",
        ),
        (
            &latin1,
            "latin1.json is not UTF-8 text, which a JSON file must be (RFC 8259 8.1): octet \
             0xe9 at line 1, column 14 (octet 14 of the file) is not part of a UTF-8 character",
        ),
    ] {
        let output = smtp_lab(&["run", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", path.display());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(output.stdout.is_empty());
    }
    let output = smtp_lab(&["run", "no-such-scenario-or-file"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!output.stderr.is_empty());
    // A valid file runs.
    let valid = dir.join("valid.json");
    std::fs::write(&valid, world().to_string()).unwrap();
    let output = smtp_lab(&["run", valid.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("conservation holds"));
    // A path that cannot be looked at is not called missing: the reason is given.
    let beyond_a_file = valid.join("scenario.json");
    let output = smtp_lab(&["run", beyond_a_file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("Not a directory"),
        "{stderr}"
    );
    // A file name need not be UTF-8 (file names are octets on Unix).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.json"));
        std::fs::write(&odd, world().to_string()).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_smtp-lab"))
            .arg("run")
            .arg(&odd)
            .output()
            .expect("run smtp-lab");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("conservation holds"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_with_format_json_prints_the_trace_as_json() {
    let output = smtp_lab(&["run", "basic-delivery", "--seed", "5", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["trace"]["scenario"], "basic-delivery");
    assert_eq!(document["trace"]["seed"], 5);
    assert!(document["trace"]["events"].as_array().unwrap().len() > 50);
    assert_eq!(document["outcomes"][0]["recipient"], "bob@receiver.test");
    assert_eq!(document["outcomes"][0]["fate"]["fate"], "delivered");
    assert_eq!(document["conservation_problems"], json!([]));
    // A DNS answer's outcome is written as the text trace writes it: its RCODE's name.
    let events = document["trace"]["events"].as_array().unwrap();
    let answer = events
        .iter()
        .find(|event| event["type"] == "dns_response")
        .expect("a DNS answer");
    assert_eq!(answer["outcome"], "NOERROR", "{answer}");
    // It is the trace the library produces.
    let scenario = library::find("basic-delivery").unwrap();
    let trace = smtp_lab::sim::run(&scenario, 5).trace;
    assert_eq!(document["trace"], serde_json::to_value(&trace).unwrap());
}

#[test]
fn a_seed_is_decimal_digits_only() {
    // `-1` is refused as a seed, not taken for an option; `+5` is not 5.
    for (bad, reason) in [
        ("-1", "decimal digits only"),
        ("+5", "decimal digits only"),
        ("", "decimal digits only"),
        ("0x10", "decimal digits only"),
        ("18446744073709551616", "larger than 18446744073709551615"),
    ] {
        let output = smtp_lab(&["run", "basic-delivery", "--seed", bad]);
        assert_eq!(output.status.code(), Some(2), "--seed {bad:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(
            error.contains(&format!("invalid value '{bad}' for '--seed <SEED>': "))
                && error.contains(reason),
            "--seed {bad:?}: {error}"
        );
    }
    let largest = smtp_lab(&["run", "basic-delivery", "--seed", "18446744073709551615"]);
    assert_eq!(largest.status.code(), Some(0));
}

#[test]
fn a_negative_number_is_refused_as_that_options_value() {
    // Not "unexpected argument '-1'", which would send the reader looking for a flag.
    let serve = |option: &'static str| {
        vec![
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--domain",
            "example.test",
            option,
            "-1",
        ]
    };
    let send = vec![
        "send",
        "--server",
        "127.0.0.1:1",
        "--from",
        "a@example.test",
        "--to",
        "b@example.test",
        "--bdat",
        "-1",
    ];
    for (arguments, option) in [
        (serve("--max-size"), "--max-size <MAX_SIZE>"),
        (
            serve("--max-recipients"),
            "--max-recipients <MAX_RECIPIENTS>",
        ),
        (serve("--max-sessions"), "--max-sessions <MAX_SESSIONS>"),
        (serve("--idle-timeout"), "--idle-timeout <IDLE_TIMEOUT>"),
        (send, "--bdat <OCTETS>"),
    ] {
        let output = smtp_lab(&arguments);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(
            error.contains(&format!("invalid value '-1' for '{option}'")),
            "{arguments:?}: {error}"
        );
    }
}

#[test]
fn run_with_whole_prints_every_line_of_a_bounces_report() {
    let report_line = "S: Final-Recipient: rfc822; nobody@receiver.test";
    let output = smtp_lab(&["run", "unknown-user", "--whole"]);
    assert_eq!(output.status.code(), Some(0));
    let whole = String::from_utf8_lossy(&output.stdout);
    assert!(whole.contains(report_line), "{whole}");
    assert!(!whole.contains(" more lines, "), "{whole}");
    // The notice as its host wrote it, under the line that says so, before it crosses any
    // wire (a notice delivered on that host crosses none).
    let written_line = "  | Final-Recipient: rfc822; nobody@receiver.test";
    let written = whole.find(written_line).expect("the notice as written");
    let created = whole.find("failed notice b1").expect("the notice's line");
    assert!(created < written && written < whole.find(report_line).unwrap());
    // Without it, a long transmission shows its first lines, and says how many more.
    let output = smtp_lab(&["run", "unknown-user"]);
    let cut = String::from_utf8_lossy(&output.stdout);
    assert!(!cut.contains(report_line));
    assert!(!cut.contains(written_line));
    assert!(cut.contains(" more lines, "));
    // The same events, the same outcome.
    assert!(whole.len() > cut.len());
    assert_eq!(
        whole.split("\nOutcome:").nth(1),
        cut.split("\nOutcome:").nth(1)
    );
    // The JSON format has every byte already: asking for more is a usage error, not ignored.
    let output = smtp_lab(&["run", "unknown-user", "--whole", "--format", "json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--whole is for the text format"),
        "{stderr}"
    );
}

#[test]
fn scenarios_lists_the_library() {
    let output = smtp_lab(&["scenarios"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 20, "{stdout}");
    for entry in library::builtin() {
        let scenario = entry.unwrap();
        assert!(names.contains(&scenario.name.as_str()), "{}", scenario.name);
    }
}

#[test]
fn scenarios_name_prints_the_built_in_file_that_runs_as_it() {
    let output = smtp_lab(&["scenarios", "greylisting"]);
    assert_eq!(output.status.code(), Some(0));
    let printed = String::from_utf8(output.stdout).unwrap();
    let scenario = Scenario::from_json(&printed).expect("the printed file is a valid scenario");
    assert_eq!(scenario, library::find("greylisting").unwrap());
    let unknown = smtp_lab(&["scenarios", "no-such-scenario"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(unknown.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("\"no-such-scenario\" is not a built-in scenario"),
        "{stderr}"
    );
    assert!(!stderr.contains("Did you mean"), "{stderr}");
    // A name mistyped, or cut short, is told the names it may have meant.
    let mistyped = smtp_lab(&["scenarios", "greylist"]);
    assert_eq!(mistyped.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&mistyped.stderr);
    assert!(stderr.contains("Did you mean \"greylisting\"?"), "{stderr}");
    let mistyped = smtp_lab(&["run", "unknwon-user"]);
    assert_eq!(mistyped.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&mistyped.stderr);
    assert!(
        stderr.contains("neither a built-in scenario")
            && stderr.contains("Did you mean \"unknown-user\"?"),
        "{stderr}"
    );
}

#[test]
fn a_record_without_exactly_one_type_is_named_as_such() {
    for data in [
        json!({}),
        json!(null),
        json!({"MX": {"preference": 10, "exchange": "mx.receiver.test"}, "A": "192.0.2.20"}),
    ] {
        let mut world = world();
        world["dns"]["zones"][1]["records"][0]["data"] = data.clone();
        let errors = errors_of(&world);
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.at.starts_with("dns.zones[1].records[0].data (line 1")
                    && e.problem
                        .contains("exactly one of MX, A, AAAA, CNAME, NS or SOA")),
            "{data}: {errors}"
        );
        // Not serde_json's bare "expected value".
        assert!(!errors.to_string().contains("expected value"), "{errors}");
    }
}

/// A field that takes one of a few words, given a value of another JSON type, names what it
/// found and the words it takes, not serde_json's "expected value" (said of text that is
/// not JSON at all).
#[test]
fn a_word_field_given_another_type_names_what_it_found_and_the_words() {
    let bare_line_ending = |value: Value| {
        let mut world = world();
        world["hosts"][1]["bare_line_ending"] = value;
        (world, "hosts[1].bare_line_ending")
    };
    let dns_fault = |value: Value| {
        let mut world = world();
        world["dns"]["faults"] =
            json!([{"domain": "receiver.test", "fault": value, "from_s": 0, "until_s": 60}]);
        (world, "dns.faults[0].fault")
    };
    let fault_type = |value: Value| {
        let mut world = world();
        world["hosts"][1]["faults"] = json!([{ "kind": { "type": value } }]);
        (world, "hosts[1].faults[0].kind.type")
    };
    let stall_at = |value: Value| {
        let mut world = world();
        world["hosts"][1]["faults"] = json!([{ "kind": { "type": "stall", "at": value } }]);
        (world, "hosts[1].faults[0].kind.at")
    };
    for ((world, at), problem) in [
        (
            bare_line_ending(json!(true)),
            "invalid type: boolean `true`, expected `reject` or `normalize`",
        ),
        (
            bare_line_ending(json!({})),
            "invalid type: object, expected `reject` or `normalize`",
        ),
        (
            dns_fault(json!(0)),
            "invalid type: integer `0`, expected `ServFail` or `Timeout`",
        ),
        (
            fault_type(json!(null)),
            "invalid type: null, expected one of `down`, `no_answer`",
        ),
        (
            fault_type(json!([1])),
            "invalid type: array, expected one of `down`",
        ),
        (
            stall_at(json!(1.5)),
            "invalid type: floating point `1.5`, expected one of `greeting`, `ehlo`",
        ),
    ] {
        assert_read_error(&world, at, problem);
        let errors = errors_of(&world).to_string();
        assert!(!errors.contains("expected value"), "{errors}");
        // The note on numbers with fractions is about numeric fields.
        assert!(!errors.contains("read as fractions"), "{errors}");
    }
}

#[test]
fn reading_errors_speak_json_not_the_programs_types() {
    // The author's own words are left as they are.
    let mut unknown = world();
    unknown["struct x"] = json!(1);
    let errors = Scenario::from_json(&unknown.to_string()).expect_err("refused");
    assert!(errors.0[0].problem.contains("`struct x`"), "{errors}");
    // A byte order mark before the JSON is ignored (RFC 8259 8.1).
    let text = format!("\u{feff}{}", world());
    assert!(Scenario::from_json(&text).is_ok());
    for (text, at) in [
        ("[]".to_string(), "line 1"),
        (
            {
                let mut value = world();
                value["hosts"][1]["extensions"] = Value::Null;
                value.to_string()
            },
            "hosts[1].extensions",
        ),
        (
            {
                let mut value = world();
                value["dns"]["zones"][1]["records"][0]["data"] = json!({"MX": 5});
                value.to_string()
            },
            "dns.zones[1].records[0].data",
        ),
    ] {
        let errors = Scenario::from_json(&text).expect_err("refused");
        let error = &errors.0[0];
        assert!(error.at.starts_with(at), "{errors}");
        assert!(error.problem.contains("an object"), "{errors}");
        assert!(
            !error.problem.contains("struct") && !error.problem.contains("Spec"),
            "{errors}"
        );
    }
}
