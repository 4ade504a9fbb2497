//! The built-in scenario library: JSON files under `scenarios/`, compiled into the program.
//! Adding a scenario is adding a file there and an entry to [`SCENARIO_FILES`]; the rules a
//! library scenario keeps beyond any scenario's are [`library_problems`]'s.

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
        "two-senders.json",
        include_str!("../../scenarios/two-senders.json"),
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
        "pop3-commands.json",
        include_str!("../../scenarios/pop3-commands.json"),
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
        "dsn-on-request.json",
        include_str!("../../scenarios/dsn-on-request.json"),
    ),
    (
        "address-syntax-error.json",
        include_str!("../../scenarios/address-syntax-error.json"),
    ),
    (
        "mx-lookup.json",
        include_str!("../../scenarios/mx-lookup.json"),
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
        "connection-lost-in-data.json",
        include_str!("../../scenarios/connection-lost-in-data.json"),
    ),
    (
        "server-hangs.json",
        include_str!("../../scenarios/server-hangs.json"),
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
        "temporary-or-permanent.json",
        include_str!("../../scenarios/temporary-or-permanent.json"),
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
        "chunking.json",
        include_str!("../../scenarios/chunking.json"),
    ),
    (
        "old-server-no-ehlo.json",
        include_str!("../../scenarios/old-server-no-ehlo.json"),
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
    (
        "sender-not-owned.json",
        include_str!("../../scenarios/sender-not-owned.json"),
    ),
];

/// The picker's groups of built-in scenarios, by what they teach: each group's label and the
/// first of its scenarios in [`SCENARIO_FILES`], where it runs to the next group's first. The
/// first group starts at the library's first scenario.
pub const GROUPS: &[(&str, &str)] = &[
    ("Delivery", "basic-delivery"),
    ("Refused and bounced", "unknown-user"),
    ("DNS and MX", "mx-lookup"),
    ("Tried again later", "all-mx-down-then-back"),
    ("The server's limits", "mailbox-full"),
    ("SMTP extensions and smuggling", "pipelining"),
    ("Submission", "submission-auth-failed"),
];

/// The built-in scenarios' positions in [`SCENARIO_FILES`], under their [`GROUPS`] labels, in
/// order, each scenario once.
pub fn grouped() -> Vec<(&'static str, std::ops::Range<usize>)> {
    groups_of(GROUPS, SCENARIO_FILES.len(), position)
}

/// [`grouped`] for `groups` over a library of `count` scenarios found by `position`. A group
/// whose first scenario is not found, or does not come after the group before it, is left
/// out, its scenarios staying in that group: the picker lists every scenario once even then
/// (and [`library_problems`] says what is wrong).
fn groups_of(
    groups: &[(&'static str, &str)],
    count: usize,
    position: impl Fn(&str) -> Option<usize>,
) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let mut starts: Vec<(&'static str, usize)> = Vec::new();
    for (index, (label, first)) in groups.iter().enumerate() {
        // The first group takes the library from its start, whatever it names.
        let start = if index == 0 { Some(0) } else { position(first) };
        if let Some(start) = start.filter(|&start| {
            start < count && starts.last().is_none_or(|&(_, previous)| start > previous)
        }) {
            starts.push((label, start));
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(index, &(label, start))| {
            let end = starts.get(index + 1).map_or(count, |&(_, next)| next);
            (label, start..end)
        })
        .collect()
}

/// Every built-in scenario, parsed and validated.
pub fn builtin() -> Vec<Result<Scenario, (String, ScenarioErrors)>> {
    SCENARIO_FILES
        .iter()
        .map(|(file, text)| Scenario::from_json(text).map_err(|e| (file.to_string(), e)))
        .collect()
}

/// Where the built-in scenario with this name, in any case, is in [`SCENARIO_FILES`]: each
/// file is named after its scenario, so none is parsed to find it. Names are lower-case (see
/// [`is_library_name`]); `Greylisting` on the command line names the same scenario as a share
/// link written that way does.
pub fn position(name: &str) -> Option<usize> {
    SCENARIO_FILES.iter().position(|(file, _)| {
        file.strip_suffix(".json")
            .is_some_and(|file_name| file_name.eq_ignore_ascii_case(name))
    })
}

/// How many near names [`near_names`] gives at most.
const NEAR_NAMES_MAX: usize = 3;

/// The built-in scenario names a name that is none may have meant, best first, at most
/// [`NEAR_NAMES_MAX`]: those it is part of (`greylist`, `mx-down`), or else those a few
/// letters away from it (`unknwon-user`). None when nothing is near.
pub fn near_names(name: &str) -> Vec<&'static str> {
    // A scenario's file named for its scenario (`scenarios/null-mx.json`) names it too.
    let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let name = file_name
        .strip_suffix(".json")
        .unwrap_or(file_name)
        .to_ascii_lowercase();
    let letters = name.chars().count();
    let names = || {
        SCENARIO_FILES
            .iter()
            .filter_map(|(file, _)| file.strip_suffix(".json"))
    };
    // Shorter than three letters, a part of a name would be a part of many.
    let mut near: Vec<&'static str> = if letters >= 3 {
        names()
            .filter(|known| known.contains(name.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    if near.is_empty() {
        // Up to one edit in three letters (a typing slip, a letter left out), and at least one.
        let allowed = (letters / 3).max(1);
        // Names whose lengths differ by more than that are further apart than it, whatever
        // their letters: not measured (a name given on the command line may be long).
        let mut by_distance: Vec<(usize, &'static str)> = names()
            .filter(|known| known.len().abs_diff(letters) <= allowed)
            .map(|known| (strsim::damerau_levenshtein(&name, known), known))
            .filter(|(distance, _)| *distance <= allowed)
            .collect();
        by_distance.sort_by_key(|(distance, _)| *distance);
        near = by_distance.into_iter().map(|(_, known)| known).collect();
    } else {
        // The closest in length first: `unknown-user` before `unknown-user-after-relay`.
        near.sort_by_key(|known| known.len());
    }
    near.truncate(NEAR_NAMES_MAX);
    near
}

/// The near names of [`near_names`] as the end of a sentence (` Did you mean "a" or "b"?`),
/// or nothing when there are none.
pub fn did_you_mean(name: &str) -> String {
    let mut near: Vec<String> = near_names(name)
        .into_iter()
        .map(|known| format!("\"{known}\""))
        .collect();
    let Some(last) = near.pop() else {
        return String::new();
    };
    if near.is_empty() {
        format!(" Did you mean {last}?")
    } else {
        format!(" Did you mean {} or {last}?", near.join(", "))
    }
}

/// The file of the built-in scenario with this name: (file name, contents).
pub fn file(name: &str) -> Option<(&'static str, &'static str)> {
    SCENARIO_FILES.get(position(name)?).copied()
}

/// The built-in scenario with this name.
pub fn find(name: &str) -> Option<Scenario> {
    load(name)?.ok()
}

/// The built-in scenario with this name, or why its file is not a valid scenario; `None`
/// when there is no built-in scenario of that name.
pub fn load(name: &str) -> Option<Result<Scenario, ScenarioErrors>> {
    let (_, text) = file(name)?;
    Some(Scenario::from_json(text))
}

/// Whether `name` can name a built-in scenario: lower-case letters a to z, digits and '-', at
/// most 64 characters. Share links and the command line find a scenario by its name, and a
/// link is read in any case.
pub fn is_library_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What keeps the library from working as it should, one sentence each: a file that is not a
/// valid scenario, a file not named after its scenario (`NAME.json`), a name a link cannot
/// hold, a name used twice, a scenario without a title or a teaching text; and a picker's
/// group ([`GROUPS`]) that names no scenario, comes before the group listed ahead of it, or
/// leaves the library's first scenario out of the first group.
pub fn library_problems() -> Vec<String> {
    let mut problems = problems_of(SCENARIO_FILES);
    let mut previous = None;
    for (label, first) in GROUPS {
        match position(first) {
            None => problems.push(format!(
                "the picker's group {label:?} starts at {first:?}, which is no built-in scenario"
            )),
            Some(at) if previous.is_some_and(|previous| at <= previous) => problems.push(format!(
                "the picker's group {label:?} starts at {first:?}, not after the group before \
                 it starts: groups are listed in the library's order"
            )),
            Some(at) => previous = Some(at),
        }
    }
    if GROUPS.first().and_then(|(_, first)| position(first)) != Some(0) {
        problems
            .push("the picker's first group does not start at the library's first scenario".into());
    }
    problems
}

/// [`library_problems`] of a list of (file name, contents).
fn problems_of(files: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (file, text) in files {
        let scenario = match Scenario::from_json(text) {
            Ok(scenario) => scenario,
            Err(errors) => {
                problems.push(format!(
                    "scenarios/{file} is not a valid scenario:\n{errors}"
                ));
                continue;
            }
        };
        let name = &scenario.name;
        if !is_library_name(name) {
            problems.push(format!(
                "scenarios/{file}: the name {name:?} is not a library name: lower-case letters \
                 a to z, digits and '-', at most 64 characters (share links and `smtp-lab run` \
                 find a scenario by its name)"
            ));
        } else if file.strip_suffix(".json") != Some(name.as_str()) {
            // Only for a name that can be one: a file named after a name that cannot would
            // be asked for in vain.
            problems.push(format!(
                "scenarios/{file} holds the scenario {name:?}: a library file is named after \
                 its scenario, {name}.json, so that it is found by that name"
            ));
        }
        if !names.insert(name.clone()) {
            problems.push(format!(
                "scenarios/{file}: the name {name:?} is already another library scenario's"
            ));
        }
        if scenario.title.trim().is_empty() || scenario.teaching.trim().is_empty() {
            problems.push(format!(
                "scenarios/{file}: a library scenario has a title and a teaching text, which \
                 the picker and the details show"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_keeps_its_rules() {
        let problems = library_problems();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        for (file, _) in SCENARIO_FILES {
            let name = file.strip_suffix(".json").expect("a .json file");
            let scenario = find(name).expect("found by its name");
            assert_eq!(scenario.name, name);
        }
        assert_eq!(position("no-such-scenario"), None);
        assert!(load("no-such-scenario").is_none());
        // As a share link is read: in any case.
        assert_eq!(position("Null-MX"), position("null-mx"));
        assert!(position("null-mx").is_some());
        assert_eq!(position("null-mx.json"), None);
        // The groups hold every scenario once, in the library's order.
        let grouped = grouped();
        assert_eq!(grouped.len(), GROUPS.len());
        let positions: Vec<usize> = grouped
            .iter()
            .flat_map(|(_, range)| range.clone())
            .collect();
        assert_eq!(positions, (0..SCENARIO_FILES.len()).collect::<Vec<_>>());
        assert!(grouped.iter().all(|(_, range)| !range.is_empty()));
        assert_eq!(
            grouped[1],
            (
                "Refused and bounced",
                position("unknown-user").unwrap()..position("mx-lookup").unwrap()
            )
        );
        // A group that names no scenario, or one out of order, is left out: its scenarios
        // stay in the group before it, and none is listed twice.
        let at = |name: &str| ["a", "b", "c", "d", "e"].iter().position(|n| *n == name);
        let groups = [
            ("A", "a"),
            ("Gone", "x"),
            ("C", "c"),
            ("Back", "b"),
            ("E", "e"),
        ];
        assert_eq!(
            groups_of(&groups, 5, at),
            [("A", 0..2), ("C", 2..4), ("E", 4..5)]
        );
        assert_eq!(groups_of(&groups, 0, at), []);
    }

    #[test]
    fn a_name_that_is_none_is_told_the_names_it_may_have_meant() {
        // A part of a name, in any case: the names it is part of, the closest in length first.
        assert_eq!(near_names("greylist"), ["greylisting"]);
        assert_eq!(
            near_names("MX-down"),
            ["primary-mx-down", "all-mx-down-then-back"]
        );
        assert_eq!(
            near_names("unknown"),
            ["unknown-user", "unknown-domain", "unknown-user-after-relay"]
        );
        // A slip of the keys: a letter swapped, left out, or one too many.
        assert_eq!(near_names("unknwon-user"), ["unknown-user"]);
        assert_eq!(near_names("nul-mx"), ["null-mx"]);
        assert_eq!(near_names("pipelinning"), ["pipelining"]);
        // Nothing near, and too short to be a part.
        assert!(near_names("weather-report").is_empty());
        assert!(near_names("mx").is_empty());
        assert!(near_names("").is_empty());
        // Every name is near itself, first.
        for (file, _) in SCENARIO_FILES {
            let name = file.strip_suffix(".json").expect("a .json file");
            assert_eq!(near_names(name).first(), Some(&name));
        }
        // A file of the library named, as the command line may be given it.
        assert_eq!(near_names("scenarios/null-mx.json"), ["null-mx"]);
        assert_eq!(near_names("Greylisting.json"), ["greylisting"]);
        assert_eq!(near_names("unknown_user"), ["unknown-user"]);
        // A long name costs no measuring, and is near nothing.
        assert!(near_names(&"x".repeat(100_000)).is_empty());
        assert_eq!(did_you_mean("greylist"), " Did you mean \"greylisting\"?");
        assert_eq!(
            did_you_mean("mx-down"),
            " Did you mean \"primary-mx-down\" or \"all-mx-down-then-back\"?"
        );
        assert_eq!(
            did_you_mean("unknown"),
            " Did you mean \"unknown-user\", \"unknown-domain\" or \"unknown-user-after-relay\"?"
        );
        assert_eq!(did_you_mean("weather-report"), "");
    }

    #[test]
    fn a_library_that_breaks_a_rule_is_told_which_and_where() {
        let (_, basic) = SCENARIO_FILES[0];
        let renamed = |name: &str| basic.replacen("\"basic-delivery\"", &format!("{name:?}"), 1);
        let (upper, other, untaught) = (renamed("Basic-Delivery"), renamed("other"), {
            let mut untaught: serde_json::Value = serde_json::from_str(basic).expect("JSON");
            untaught["teaching"] = "".into();
            untaught.to_string()
        });
        let cases: [(&str, &str, &str); 5] = [
            ("basic-delivery.json", "{", "is not a valid scenario"),
            ("Basic-Delivery.json", &upper, "is not a library name"),
            (
                "mine.json",
                &other,
                "is named after its scenario, other.json",
            ),
            (
                "basic-delivery.json",
                basic,
                "already another library scenario's",
            ),
            (
                "basic-delivery.json",
                &untaught,
                "a title and a teaching text",
            ),
        ];
        for (file, text, expected) in cases {
            let problems = problems_of(&[SCENARIO_FILES[0], (file, text)]);
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("scenarios/{file}")) && p.contains(expected)),
                "{file}: {expected:?} not in {problems:?}"
            );
        }
        assert!(problems_of(&SCENARIO_FILES[..2]).is_empty());
        // A name that cannot be one is told so, and not asked for as a file name.
        let problems = problems_of(&[("my-demo.json", &renamed("My-Demo"))]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("is not a library name"),
            "{problems:?}"
        );
    }

    #[test]
    fn library_names_are_what_a_link_holds() {
        for name in ["greylisting", "null-mx", "8bit-without-8bitmime"] {
            assert!(is_library_name(name), "{name}");
        }
        let too_long = "a".repeat(65);
        for name in [
            "",
            "Greylisting",
            "null_mx",
            "two words",
            "x.json",
            too_long.as_str(),
        ] {
            assert!(!is_library_name(name), "{name}");
        }
    }

    /// A file put in `scenarios/` is in the library only with its entry in `SCENARIO_FILES`.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn every_file_in_the_scenarios_directory_is_in_the_library() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let listed: std::collections::BTreeSet<&str> =
            SCENARIO_FILES.iter().map(|(file, _)| *file).collect();
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(&directory).expect("the scenarios directory") {
            let file = entry.expect("a directory entry").file_name();
            let file = file.to_string_lossy();
            if file.ends_with(".json") && !listed.contains(file.as_ref()) {
                missing.push(file.into_owned());
            }
        }
        assert!(
            missing.is_empty(),
            "in scenarios/ but not in SCENARIO_FILES (src/sim/library.rs): {}",
            missing.join(", ")
        );
    }
}
