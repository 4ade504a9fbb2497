//! The built-in scenario library: JSON files under `scenarios/`, compiled into the program.
//! Adding a scenario is adding a file there and a line to [`SCENARIO_FILES`].

use super::scenario::{Scenario, ScenarioErrors};

/// (file name, contents) of every built-in scenario, in teaching order.
pub const SCENARIO_FILES: &[(&str, &str)] = &[
    (
        "basic-delivery.json",
        include_str!("../../scenarios/basic-delivery.json"),
    ),
    (
        "several-recipients.json",
        include_str!("../../scenarios/several-recipients.json"),
    ),
    (
        "two-domains.json",
        include_str!("../../scenarios/two-domains.json"),
    ),
    (
        "one-session-many-messages.json",
        include_str!("../../scenarios/one-session-many-messages.json"),
    ),
    (
        "to-cc-bcc.json",
        include_str!("../../scenarios/to-cc-bcc.json"),
    ),
    (
        "attachments.json",
        include_str!("../../scenarios/attachments.json"),
    ),
    (
        "unknown-user.json",
        include_str!("../../scenarios/unknown-user.json"),
    ),
    (
        "unknown-user-after-relay.json",
        include_str!("../../scenarios/unknown-user-after-relay.json"),
    ),
    (
        "address-syntax-error.json",
        include_str!("../../scenarios/address-syntax-error.json"),
    ),
    (
        "unknown-domain.json",
        include_str!("../../scenarios/unknown-domain.json"),
    ),
    ("null-mx.json", include_str!("../../scenarios/null-mx.json")),
    (
        "primary-mx-down.json",
        include_str!("../../scenarios/primary-mx-down.json"),
    ),
    (
        "all-mx-down-then-back.json",
        include_str!("../../scenarios/all-mx-down-then-back.json"),
    ),
    (
        "server-down-for-good.json",
        include_str!("../../scenarios/server-down-for-good.json"),
    ),
    (
        "dns-servfail-then-success.json",
        include_str!("../../scenarios/dns-servfail-then-success.json"),
    ),
    (
        "greylisting.json",
        include_str!("../../scenarios/greylisting.json"),
    ),
    (
        "mailbox-full.json",
        include_str!("../../scenarios/mailbox-full.json"),
    ),
    (
        "over-quota-at-delivery.json",
        include_str!("../../scenarios/over-quota-at-delivery.json"),
    ),
    (
        "message-too-big.json",
        include_str!("../../scenarios/message-too-big.json"),
    ),
    (
        "relay-denied.json",
        include_str!("../../scenarios/relay-denied.json"),
    ),
    (
        "too-many-recipients.json",
        include_str!("../../scenarios/too-many-recipients.json"),
    ),
    (
        "pipelining.json",
        include_str!("../../scenarios/pipelining.json"),
    ),
    (
        "8bit-without-8bitmime.json",
        include_str!("../../scenarios/8bit-without-8bitmime.json"),
    ),
    (
        "smtputf8.json",
        include_str!("../../scenarios/smtputf8.json"),
    ),
    (
        "smtp-smuggling.json",
        include_str!("../../scenarios/smtp-smuggling.json"),
    ),
    (
        "submission-auth-failed.json",
        include_str!("../../scenarios/submission-auth-failed.json"),
    ),
];

/// Every built-in scenario, parsed and validated.
pub fn builtin() -> Vec<Result<Scenario, (String, ScenarioErrors)>> {
    SCENARIO_FILES
        .iter()
        .map(|(file, text)| Scenario::from_json(text).map_err(|e| (file.to_string(), e)))
        .collect()
}

/// Where the built-in scenario with this name is in [`SCENARIO_FILES`]: each file is named
/// after its scenario, so none is parsed to find it.
pub fn position(name: &str) -> Option<usize> {
    SCENARIO_FILES
        .iter()
        .position(|(file, _)| file.strip_suffix(".json") == Some(name))
}

/// The built-in scenario with this name.
pub fn find(name: &str) -> Option<Scenario> {
    let (_, text) = SCENARIO_FILES.get(position(name)?)?;
    Scenario::from_json(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_file_is_named_after_its_scenario() {
        for ((file, _), scenario) in SCENARIO_FILES.iter().zip(builtin()) {
            let scenario = scenario.expect("a valid built-in scenario");
            assert_eq!(file.strip_suffix(".json"), Some(scenario.name.as_str()));
            assert_eq!(find(&scenario.name), Some(scenario.clone()));
        }
        assert_eq!(position("no-such-scenario"), None);
    }
}
