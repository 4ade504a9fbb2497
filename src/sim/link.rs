//! Share links: a built-in scenario and a step in it, written in a URL's fragment
//! (`#scenario=greylisting&step=55`), so that a teacher can point students at one moment of a
//! delivery; or a message written in the page, sent in a built-in scenario's world, and a step
//! of its run (`#scenario=basic-delivery&to=nobody@receiver.test&...&step=40`): the run is
//! deterministic, so the link's message makes the same run wherever it is opened. A run with
//! a seed other than its scenario's own says so (`#scenario=mx-lookup&seed=1&step=12`): the
//! seed orders MX hosts of equal preference, and so the steps. Reading a
//! link never fails silently: a broken one gets a sentence that says what is wrong with it. A link whose scenario is clear is followed even when the rest of it is
//! not (a step that cannot be read, a part added on its way): the student sees the scenario,
//! and the sentence says what was left out.

use super::draft::{Draft, ServerChange};
use super::library::{self, is_library_name};
use super::scenario::{AttachmentSpec, DsnSpec};
use crate::percent::percent_decoded_octets;
use crate::smtp::dsn_params::{DsnReturn, Notify};
use std::fmt::Write as _;

/// Where a link points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareLink {
    /// A built-in scenario's name.
    pub scenario: String,
    /// How many steps are shown (0: none yet).
    pub step: usize,
    /// The seed the link gives for the run (see [`crate::sim::run`]); SMTP Lab writes one
    /// only when it is not the scenario's own.
    pub seed: Option<u64>,
    /// The link gives a seed that could not be read: the scenario runs with its own, and
    /// `step`, a step of another run, is 0.
    pub seed_unreadable: bool,
    /// What in the link could not be followed and was left out, as a sentence for the user.
    pub left_out: Option<String>,
    /// The link gives a step that could not be read (then `step` is 0).
    pub step_unreadable: bool,
    /// A message written in the page, to be sent in the scenario's world; `None` when the
    /// link has none, or has one that could not be read (`left_out` then says why).
    pub message: Option<Draft>,
    /// The link has a message that could not be read: its step, a step of the message's run,
    /// is no step of the scenario shown without it.
    pub message_unreadable: bool,
}

/// The longest fragment read, and written. A link is a few dozen characters, or a few
/// hundred with a message, but a chat or mail program may add a long part of its own (a click
/// identifier), which is left out.
pub const FRAGMENT_MAX_CHARS: usize = 8192;
/// The most parts SMTP Lab does not know that a complaint names.
const UNKNOWN_PARTS_NAMED: usize = 3;

/// The fragment for `scenario` at `step`, run with `seed` when it has one other than its
/// own, with its `#`.
pub fn write(scenario: &str, seed: Option<u64>, step: usize) -> String {
    let mut fragment = String::from("#scenario=");
    fragment.push_str(scenario);
    // Writing to a String cannot fail.
    if let Some(seed) = seed {
        let _ = write!(fragment, "&seed={seed}");
    }
    let _ = write!(fragment, "&step={step}");
    fragment
}

/// The fragment for a message written in the page, `draft`, sent in the world of the built-in
/// scenario `scenario`, run with `seed` when it has one other than the scenario's own, at
/// `step` of its run, with its `#`; `None` when it would be longer
/// than a link may be ([`FRAGMENT_MAX_CHARS`]: a long body), or has an attachment a link
/// cannot give (one of text, or of the default size, which the page never writes). Empty fields are left out, and
/// the step comes last, so that the punctuation of a sentence after the link is not taken for
/// part of the body.
pub fn write_message(
    scenario: &str,
    draft: &Draft,
    seed: Option<u64>,
    step: usize,
) -> Option<String> {
    if draft
        .attachments
        .iter()
        .any(|attachment| attachment.text.is_some() || attachment.size_octets.is_none())
    {
        return None;
    }
    let mut fragment = String::from("#scenario=");
    fragment.push_str(scenario);
    let fields = [
        ("from", &draft.from),
        ("to", &draft.to),
        ("cc", &draft.cc),
        ("bcc", &draft.bcc),
        ("subject", &draft.subject),
        ("body", &draft.body),
    ];
    for (name, value) in fields.into_iter().filter(|(_, value)| !value.is_empty()) {
        let _ = write!(fragment, "&{name}={}", percent_encoded(value));
    }
    if draft.eight_bit_body {
        fragment.push_str("&8bit=1");
    }
    // The delivery reports asked for, as NOTIFY, RET, ENVID and "orcpt", each encoded, empty
    // when not asked.
    if !draft.dsn.is_empty() {
        let dsn = &draft.dsn;
        let _ = write!(
            fragment,
            "&dsn={};{};{};{}",
            percent_encoded(&dsn.notify.map(Notify::wire).unwrap_or_default()),
            dsn.ret.map(DsnReturn::wire).unwrap_or_default(),
            percent_encoded(dsn.envid.as_deref().unwrap_or_default()),
            if dsn.orcpt { "orcpt" } else { "" }
        );
    }
    // An attachment as its file name, media type and size in octets; a server change as the
    // host's name and the change. Each component is encoded, so a `;` in a name is kept.
    for attachment in &draft.attachments {
        let _ = write!(
            fragment,
            "&attach={};{};{}",
            percent_encoded(&attachment.filename),
            percent_encoded(attachment.content_type.as_deref().unwrap_or_default()),
            attachment.octets()
        );
    }
    for (host, change) in &draft.server_changes {
        let _ = write!(
            fragment,
            "&server={};{}",
            percent_encoded(host),
            change.key()
        );
    }
    if let Some(seed) = seed {
        let _ = write!(fragment, "&seed={seed}");
    }
    // Room for any step, so that a message has a link at every step of its run or at none.
    let room_for_step = "&step=".len() + usize::MAX.to_string().len();
    if fragment.chars().count() + room_for_step > FRAGMENT_MAX_CHARS {
        return None;
    }
    let _ = write!(fragment, "&step={step}");
    Some(fragment)
}

/// `text` with every character but ASCII letters, digits, `-`, `.`, `_`, `~` and `@`
/// percent-encoded as its UTF-8 octets (RFC 3986 2.1, 2.3): what a link's part may hold
/// without a chat or mail program taking it for the end of the link.
fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What a message's part of a link is when its `%HH` octets are not UTF-8 text.
const NOT_UTF8: &str = "holds percent-encoded octets that are not UTF-8 text (the link may have \
                        been cut or changed on its way)";

/// What a message's part of a link is when a `%` in it starts no `%HH`: a link SMTP Lab
/// wrote encodes every `%` of a text as `%25`.
const BROKEN_ESCAPE: &str = "holds a % that is not followed by two hexadecimal digits (the link \
                             may have been cut or changed on its way)";

/// The parts of a link that give a message, read into a draft; the first thing wrong with
/// them, if any, as a sentence.
#[derive(Default)]
struct MessageParts {
    draft: Draft,
    given: bool,
    problem: Option<String>,
    /// The one-value fields given so far, so that one given twice is said.
    fields_given: Vec<&'static str>,
}

impl MessageParts {
    /// Reads the part `name`=`value` if it is a message's, `value` as [`write_message`]
    /// encoded it: decoded here, once, even in a link that was encoded whole on its way and
    /// decoded once already, since a message's text is always encoded in the link. False for
    /// a part that is not a message's.
    fn read(&mut self, name: &str, value: &str) -> bool {
        let decode = percent_decoded;
        let field = match name {
            "from" => Some(("from", &mut self.draft.from)),
            "to" => Some(("to", &mut self.draft.to)),
            "cc" => Some(("cc", &mut self.draft.cc)),
            "bcc" => Some(("bcc", &mut self.draft.bcc)),
            "subject" => Some(("subject", &mut self.draft.subject)),
            "body" => Some(("body", &mut self.draft.body)),
            _ => None,
        };
        if let Some((field, text)) = field {
            if self.fields_given.contains(&field) {
                self.problem
                    .get_or_insert(format!("it gives {field} twice; a link gives it once"));
            }
            self.fields_given.push(field);
            *text = percent_decoded_text(value).unwrap_or_else(|problem| {
                self.problem.get_or_insert(format!("its {field} {problem}"));
                decode(value)
            });
            self.given = true;
            return true;
        }
        match name {
            "8bit" => match decode(value).as_str() {
                "1" | "true" | "yes" | "" => self.draft.eight_bit_body = true,
                "0" | "false" | "no" => {}
                other => {
                    self.problem.get_or_insert(format!(
                        "its 8bit part is {}, which is neither 1 nor 0",
                        quoted(other)
                    ));
                }
            },
            "dsn" => self.read_dsn(value),
            // The components are split before they are decoded: an encoded `;` is a name's
            // (but see `separated`).
            "attach" => {
                let parts = separated(value);
                let decoded: Vec<Result<String, &str>> = parts
                    .iter()
                    .map(|part| percent_decoded_text(part))
                    .collect();
                if let Some(Err(problem)) = decoded.iter().find(|text| text.is_err()) {
                    self.problem
                        .get_or_insert(format!("one of its attachments {problem}"));
                }
                let components: Vec<String> = decoded
                    .into_iter()
                    .zip(&parts)
                    .map(|(text, part)| text.unwrap_or_else(|_| percent_decoded(part)))
                    .collect();
                match components.as_slice() {
                    [filename, content_type, size] if !filename.trim().is_empty() => {
                        match read_step(size) {
                            Some(octets) => self.draft.attachments.push(AttachmentSpec {
                                filename: filename.clone(),
                                content_type: (!content_type.is_empty())
                                    .then(|| content_type.clone()),
                                size_octets: Some(octets),
                                text: None,
                            }),
                            None => {
                                self.problem.get_or_insert(format!(
                                    "the attachment {} has the size {}, which is not a number \
                                     of octets",
                                    quoted(filename),
                                    quoted(size)
                                ));
                            }
                        }
                    }
                    _ => {
                        self.problem.get_or_insert(format!(
                            "its attachment {} is not a file name, a media type and a size, \
                             separated by ';'",
                            quoted(value)
                        ));
                    }
                }
            }
            "server" => {
                let components = decoded_components(value);
                match components.as_slice() {
                    [host, key] => match ServerChange::from_key(&key.to_ascii_lowercase()) {
                        // Host names are read in any case: one named twice is a link put
                        // together wrong.
                        Some(_)
                            if self
                                .draft
                                .server_changes
                                .keys()
                                .any(|named| named.eq_ignore_ascii_case(host)) =>
                        {
                            self.problem.get_or_insert(format!(
                                "it changes the server {} twice; a link changes it once",
                                quoted(host)
                            ));
                        }
                        Some(change) => {
                            self.draft.server_changes.insert(host.clone(), change);
                        }
                        None => {
                            self.problem.get_or_insert(format!(
                                "it changes the server {} to {}, which is not one of the \
                                 changes ({})",
                                quoted(host),
                                quoted(key),
                                ServerChange::ALL.map(ServerChange::key).join(", ")
                            ));
                        }
                    },
                    _ => {
                        self.problem.get_or_insert(format!(
                            "its server change {} is not a server's name and a change, \
                             separated by ';'",
                            quoted(value)
                        ));
                    }
                }
            }
            _ => return false,
        }
        self.given = true;
        true
    }
}

impl MessageParts {
    /// Reads a `dsn` part, `NOTIFY;RET;ENVID;orcpt` as [`write_message`] writes it, each
    /// component empty when not asked, and those missing at the end too (a link's trailing
    /// `;` may be taken for punctuation); says the first thing wrong with it.
    fn read_dsn(&mut self, value: &str) {
        if self.fields_given.contains(&"dsn") {
            self.problem
                .get_or_insert("it gives dsn twice; a link gives it once".into());
        }
        self.fields_given.push("dsn");
        let mut components = decoded_components(value);
        if components.len() < 4 {
            components.resize(4, String::new());
        }
        let [notify, ret, envid, orcpt] = components.as_slice() else {
            self.problem.get_or_insert(format!(
                "its delivery reports (dsn) {} are not NOTIFY, RET, ENVID and orcpt, separated \
                 by ';'",
                quoted(value)
            ));
            return;
        };
        let mut dsn = DsnSpec {
            envid: (!envid.is_empty()).then(|| envid.clone()),
            ..DsnSpec::default()
        };
        let problem = (|| {
            if !notify.is_empty() {
                dsn.notify =
                    Some(Notify::parse(notify).map_err(|why| format!("its NOTIFY: {why}"))?);
            }
            if !ret.is_empty() {
                dsn.ret = Some(DsnReturn::read(ret).map_err(|why| format!("its RET: {why}"))?);
            }
            dsn.orcpt = match orcpt.to_ascii_lowercase().as_str() {
                "orcpt" => true,
                "" => false,
                other => {
                    return Err(format!("its ORCPT part is {}, not orcpt", quoted(other)));
                }
            };
            Ok(())
        })();
        match problem {
            Ok(()) => self.draft.dsn = dsn,
            Err(why) => {
                self.problem
                    .get_or_insert(format!("in its delivery reports (dsn), {why}"));
            }
        }
    }
}

/// Reads a URL fragment (with or without its `#`): `None` when it is empty, the link when it
/// names a scenario, or what is wrong with it. Names and the scenario are read in any case
/// (a phone's keyboard capitalises the first letter). Whether the scenario exists is for
/// the caller to check.
pub fn parse(fragment: &str) -> Result<Option<ShareLink>, String> {
    let fragment = without_trailing_prose(fragment.strip_prefix('#').unwrap_or(fragment));
    if fragment.is_empty() {
        return Ok(None);
    }
    if fragment.chars().count() > FRAGMENT_MAX_CHARS {
        return Err(format!(
            "This link is not one of SMTP Lab's: it is over {FRAGMENT_MAX_CHARS} characters long."
        ));
    }
    // Each part, with whether it is decoded already: a link encoded whole on its way
    // (`scenario%3Dgreylisting%26step%3D55`), or a part of it, has no `=` left, so such a
    // part is decoded first and split again where it holds one. Otherwise each name and
    // value is decoded after the split. Either way a part is decoded once.
    let parts: Vec<(String, bool)> = fragment
        .split('&')
        .flat_map(|part| {
            let decoded = percent_decoded(part);
            if part.contains('=') || !decoded.contains('=') {
                vec![(part.to_string(), false)]
            } else {
                decoded
                    .split('&')
                    .map(|part| (part.to_string(), true))
                    .collect()
            }
        })
        .filter(|(part, _)| !part.is_empty())
        .collect();
    let mut scenario: Option<String> = None;
    let mut step = None;
    let mut seed = None;
    let mut seed_problem: Option<String> = None;
    // What cannot be followed, the first of each kind; the link is followed without it. A
    // step that cannot be read changes what is shown, so it is said first.
    let mut step_problem: Option<String> = None;
    let mut unknown_parts: Vec<&str> = Vec::new();
    let mut scenario_written = String::new();
    let mut message = MessageParts::default();
    // Whether a part named step came yet, and the unknown parts before it: a message's link
    // ends with its step, so one without is cut short, and an unknown part among the
    // message's is one of its values broken up on the way (decoded once: `body=Q&A`).
    let mut step_seen = false;
    let mut unknown_before_step: Vec<&str> = Vec::new();
    for (part, decoded) in &parts {
        // A name or value may come back percent-encoded from a chat or a mail program
        // (`scenario=null%2Dmx`): each is read as it was written, after the split, so that
        // an encoded `&` or `=` stays part of its value. A name without `=` has an empty
        // value (`step` alone gives no step).
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let decode = |text: &str| match decoded {
            true => text.to_string(),
            false => percent_decoded(text),
        };
        let name = decode(name).to_ascii_lowercase();
        if message.read(&name, value) {
            continue;
        }
        let written = value;
        let value = decode(value);
        step_seen |= name == "step";
        match name.as_str() {
            // An empty scenario name is none: the link names no scenario.
            "scenario" if value.is_empty() => {}
            "scenario" => {
                // Broken encoding is said as such, not as a name with a stray `%` or U+FFFD.
                if let (false, Err(problem)) = (*decoded, percent_decoded_text(written)) {
                    return Err(format!(
                        "This link's scenario name, {}, {problem}.",
                        quoted(written)
                    ));
                }
                let name = value.to_ascii_lowercase();
                // Two different scenarios are not taken as either: the link was put together
                // by hand or cut and pasted wrong, and showing one would hide that.
                if scenario.as_deref().is_some_and(|first| first != name) {
                    return Err(format!(
                        "This link names two scenarios, {} and {}; a link names one.",
                        quoted(&scenario_written),
                        quoted(&value)
                    ));
                }
                scenario_written = value.clone();
                if !is_library_name(&name) {
                    return Err(format!(
                        "This link names the scenario {}, which is not a scenario name \
                         (letters a to z, digits and '-').{}",
                        quoted(&value),
                        library::did_you_mean(&value)
                    ));
                }
                scenario = Some(name);
            }
            "seed" => match (read_seed(&value), seed) {
                (Some(second), Some(first)) if first != second => {
                    seed_problem.get_or_insert(format!(
                        "This link gives two seeds, {first} and {second}; a link gives one."
                    ));
                }
                (Some(number), _) => seed = Some(number),
                (None, _) => {
                    seed_problem.get_or_insert(format!(
                        "This link gives the seed {}, which is not a seed (a whole number from 0 \
                         to {}): the scenario runs with its own.",
                        quoted(&value),
                        u64::MAX
                    ));
                }
            },
            "step" => match (read_step(&value), step) {
                (Some(second), Some(first)) if first != second => {
                    step_problem.get_or_insert(format!(
                        "This link gives two steps, {first} and {second}; a link gives one."
                    ));
                }
                (Some(number), _) => step = Some(number),
                (None, _) if value.is_empty() => {
                    step_problem
                        .get_or_insert("This link names a step but gives no number.".to_string());
                }
                (None, _) => {
                    step_problem.get_or_insert(format!(
                        "This link gives the step {}, which is not a step number \
                         (0, 1, 2, ...).",
                        quoted(&value)
                    ));
                }
            },
            _ => {
                if !step_seen {
                    unknown_before_step.push(part);
                }
                unknown_parts.push(part);
            }
        }
    }
    // The parts SMTP Lab does not know, a few of them by name.
    let unknown = (!unknown_parts.is_empty()).then(|| {
        let mut named: Vec<String> = unknown_parts
            .iter()
            .take(UNKNOWN_PARTS_NAMED)
            .map(|part| quoted(part))
            .collect();
        if unknown_parts.len() > UNKNOWN_PARTS_NAMED {
            named.push(format!(
                "{} more",
                unknown_parts.len() - UNKNOWN_PARTS_NAMED
            ));
        }
        let last = named.pop().unwrap_or_default();
        if named.is_empty() {
            last
        } else {
            format!("{} and {last}", named.join(", "))
        }
    });
    let (parts_unknown, are) = match unknown_parts.len() {
        1 => ("a part", "is"),
        _ => ("parts", "are"),
    };
    let Some(scenario) = scenario else {
        let unknown = unknown
            .map(|list| format!(", and has {parts_unknown} SMTP Lab does not know: {list}"))
            .unwrap_or_default();
        return Err(format!(
            "This link names no scenario{unknown}. A link looks like \
             #scenario=greylisting&step=55."
        ));
    };
    let unknown = unknown.map(|list| {
        format!(
            "This link has {parts_unknown} SMTP Lab does not know, {list}, which {are} left out."
        )
    });
    if message.given && !step_seen {
        message
            .problem
            .get_or_insert("it has no step at its end, so it may have been cut short".into());
    }
    if let (true, Some(first)) = (message.given, unknown_before_step.first()) {
        message.problem.get_or_insert(format!(
            "a part among its message's, {}, is no part of a message, so a value may have \
             been broken up on the way",
            quoted(first)
        ));
    }
    // A message read in part would be another experiment: it is not sent at all.
    let message_problem = message.problem.take().map(|problem| {
        format!("This link's message cannot be read: {problem}. The scenario is shown without it.")
    });
    let left_out: Vec<String> = step_problem
        .iter()
        .chain(&seed_problem)
        .chain(&message_problem)
        .chain(&unknown)
        .cloned()
        .collect();
    Ok(Some(ShareLink {
        scenario,
        // A step that could not be read is no step, and a step of a run with a seed that
        // could not be read is a step of another run: the scenario is shown from its start.
        step: if step_problem.is_some() || seed_problem.is_some() {
            0
        } else {
            step.unwrap_or(0)
        },
        seed: seed.filter(|_| seed_problem.is_none()),
        seed_unreadable: seed_problem.is_some(),
        left_out: (!left_out.is_empty()).then(|| left_out.join(" ")),
        step_unreadable: step_problem.is_some(),
        message_unreadable: message_problem.is_some(),
        message: (message.given && message_problem.is_none()).then_some(message.draft),
    }))
}

/// `fragment` without what a link pasted at the end of a sentence, or in brackets or quotes,
/// takes with it: punctuation, a closing bracket or quote (typographic ones too), an
/// ellipsis, spaces. Each may come percent-encoded, as browsers give `"`, `>`, `` ` ``, a
/// space and any non-ASCII character in an address (`%22`, `%E2%80%9D`). No scenario name or
/// step ends with any of them.
fn without_trailing_prose(fragment: &str) -> &str {
    let is_prose = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '>' | '\'' | '"' | '`'
                    // Closing quotes, as English, French and German close them: ’ ” » › and
                    // ‘ “ « ‹ (German „…“ and ‚…‘, Swiss and Danish »…«).
                    | '\u{2019}'
                    | '\u{201D}'
                    | '\u{00BB}'
                    | '\u{203A}'
                    | '\u{2018}'
                    | '\u{201C}'
                    | '\u{00AB}'
                    | '\u{2039}'
                    | '\u{2026}' // …
            )
    };
    let mut rest = fragment;
    loop {
        let trimmed = rest.trim_end_matches(is_prose);
        let trimmed = strip_encoded_char(trimmed, is_prose).unwrap_or(trimmed);
        if trimmed.len() == rest.len() {
            return rest;
        }
        rest = trimmed;
    }
}

/// `text` without its last character when that is percent-encoded (one to four `%XX`, its
/// UTF-8 octets) and `wanted`.
fn strip_encoded_char(text: &str, wanted: impl Fn(char) -> bool) -> Option<&str> {
    (1..=4).find_map(|octets| {
        let start = text.len().checked_sub(octets * 3)?;
        let tail = text.get(start..)?;
        let encoded = tail
            .as_bytes()
            .chunks(3)
            .all(|triplet| triplet[0] == b'%' && triplet[1..].iter().all(u8::is_ascii_hexdigit));
        let decoded = percent_decoded(tail);
        let mut chars = decoded.chars();
        match (encoded, chars.next(), chars.next()) {
            (true, Some(c), None) if c != char::REPLACEMENT_CHARACTER && wanted(c) => {
                Some(&text[..start])
            }
            _ => None,
        }
    })
}

/// The longest part of a link quoted whole in a complaint.
const PART_CHARS_QUOTED: usize = 40;

/// `part` as a complaint quotes it, in double quotes: [`shortened`], with each character that
/// would not show (a control character, a right-to-left override) written as its code point
/// (`U+202E`), so that the reader sees it is there.
fn quoted(part: &str) -> String {
    let mut text = String::from("\"");
    for c in shortened(part).chars() {
        // `escape_debug` escapes what does not print, and the quotes and the backslash, which
        // print.
        if !matches!(c, '"' | '\'' | '\\') && c.escape_debug().nth(1).is_some() {
            let _ = write!(text, "U+{:04X}", u32::from(c));
        } else {
            text.push(c);
        }
    }
    text.push('"');
    text
}

/// `part` as a complaint quotes it: whole, or its start and "...".
fn shortened(part: &str) -> String {
    if part.chars().count() <= PART_CHARS_QUOTED {
        return part.to_string();
    }
    let start: String = part.chars().take(PART_CHARS_QUOTED - 3).collect();
    format!("{start}...")
}

/// A seed, written as `smtp-lab run --seed` takes it: digits, no larger than a `u64`.
pub fn read_seed(number: &str) -> Option<u64> {
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse::<u64>().ok())
        .flatten()
}

/// A step number: decimal digits only; a step past the end shows the end, however large the
/// number.
fn read_step(number: &str) -> Option<usize> {
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse::<usize>().unwrap_or(usize::MAX))
}

/// A part's components, still encoded, split at its `;`s. A part with no `;` of its own but
/// an encoded one (`%3B`) went through a tool on the way that encodes `;`, separators and
/// all (a link written here has a `;` between its components, and encodes only those in a
/// name): it is split at those.
fn separated(value: &str) -> Vec<&str> {
    const ENCODED_SEPARATOR: &str = "%3B";
    let upper = value.to_ascii_uppercase();
    if value.contains(';') || !upper.contains(ENCODED_SEPARATOR) {
        return value.split(';').collect();
    }
    // The same octets at the same places: only ASCII letters changed case.
    let mut parts = Vec::new();
    let mut start = 0;
    for (at, _) in upper.match_indices(ENCODED_SEPARATOR) {
        parts.push(&value[start..at]);
        start = at + ENCODED_SEPARATOR.len();
    }
    parts.push(&value[start..]);
    parts
}

/// [`separated`]'s components, each decoded.
fn decoded_components(value: &str) -> Vec<String> {
    separated(value).into_iter().map(percent_decoded).collect()
}

/// `text` with each `%HH` (two hexadecimal digits) replaced by that octet (RFC 3986 2.1); a
/// `%` not followed by two of them stays as it is. Octets that are not UTF-8 are shown as
/// U+FFFD.
fn percent_decoded(text: &str) -> String {
    String::from_utf8_lossy(&percent_decoded_octets(text).0).into_owned()
}

/// [`percent_decoded`], or what is wrong when a `%` starts no `%HH` or the octets are not
/// UTF-8: a message's text that a link cut or changed on its way, which is said rather than
/// sent with a stray `%` or U+FFFD.
fn percent_decoded_text(text: &str) -> Result<String, &'static str> {
    let (octets, broken_escape) = percent_decoded_octets(text);
    if broken_escape {
        return Err(BROKEN_ESCAPE);
    }
    String::from_utf8(octets).map_err(|_| NOT_UTF8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link followed whole: `scenario` at `step`, nothing left out.
    fn followed(scenario: &str, step: usize) -> ShareLink {
        ShareLink {
            scenario: scenario.to_string(),
            step,
            seed: None,
            seed_unreadable: false,
            left_out: None,
            step_unreadable: false,
            message: None,
            message_unreadable: false,
        }
    }

    #[test]
    fn a_written_link_reads_back() {
        let fragment = write("greylisting", None, 55);
        assert_eq!(fragment, "#scenario=greylisting&step=55");
        assert_eq!(parse(&fragment), Ok(Some(followed("greylisting", 55))));
        // The step may be left out, and the order does not matter.
        assert_eq!(
            parse("step=3&scenario=null-mx"),
            Ok(Some(followed("null-mx", 3)))
        );
        assert_eq!(parse("#scenario=null-mx").unwrap().unwrap().step, 0);
        // The same part twice says nothing different.
        assert_eq!(
            parse("#scenario=null-mx&step=3&scenario=null-mx&step=3"),
            Ok(Some(followed("null-mx", 3)))
        );
        // Percent-encoded on its way (RFC 3986 2.1), in parts or whole, it reads the same.
        for encoded in [
            "#scenario=null%2Dmx&step=%33",
            "#scenario%3Dnull%2Dmx%26step%3D3",
        ] {
            assert_eq!(
                parse(encoded),
                Ok(Some(followed("null-mx", 3))),
                "{encoded}"
            );
        }
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("#"), Ok(None));
    }

    #[test]
    fn a_seed_other_than_the_scenarios_own_is_written_and_read_back() {
        let fragment = write("mx-lookup", Some(1), 12);
        assert_eq!(fragment, "#scenario=mx-lookup&seed=1&step=12");
        let link = parse(&fragment).expect("a link").expect("a scenario");
        assert_eq!(
            link,
            ShareLink {
                seed: Some(1),
                ..followed("mx-lookup", 12)
            }
        );
        // The largest seed a run takes, any order, and the same seed twice.
        let largest = format!(
            "#step=3&seed={}&scenario=mx-lookup&seed={}",
            u64::MAX,
            u64::MAX
        );
        let link = parse(&largest).expect("a link").expect("a scenario");
        assert_eq!(
            (link.seed, link.step, link.left_out),
            (Some(u64::MAX), 3, None)
        );
        // A message's link carries its run's seed before its step.
        let draft = Draft {
            to: "bob@b.test".into(),
            ..Draft::default()
        };
        let fragment = write_message("mx-lookup", &draft, Some(7), 4).expect("short");
        assert!(fragment.ends_with("&seed=7&step=4"), "{fragment}");
        let link = parse(&fragment).expect("a link").expect("a scenario");
        assert_eq!((link.seed, link.step), (Some(7), 4));
        assert_eq!(
            link.message.map(|message| message.to),
            Some("bob@b.test".into())
        );
    }

    #[test]
    fn a_seed_that_cannot_be_read_runs_the_scenario_with_its_own_from_its_start() {
        for (fragment, said) in [
            (
                "#scenario=mx-lookup&seed=-1&step=12",
                "This link gives the seed \"-1\", which is not a seed (a whole number from 0 \
                 to 18446744073709551615): the scenario runs with its own.",
            ),
            (
                "#scenario=mx-lookup&seed=18446744073709551616&step=12",
                "This link gives the seed \"18446744073709551616\", which is not a seed (a \
                 whole number from 0 to 18446744073709551615): the scenario runs with its own.",
            ),
            (
                "#scenario=mx-lookup&seed&step=12",
                "This link gives the seed \"\", which is not a seed (a whole number from 0 to \
                 18446744073709551615): the scenario runs with its own.",
            ),
            (
                "#scenario=mx-lookup&seed=1&seed=2&step=12",
                "This link gives two seeds, 1 and 2; a link gives one.",
            ),
        ] {
            let link = parse(fragment).expect(fragment).expect(fragment);
            assert_eq!(
                (link.seed, link.seed_unreadable, link.step),
                (None, true, 0),
                "{fragment}"
            );
            assert_eq!(link.left_out.as_deref(), Some(said), "{fragment}");
        }
    }

    #[test]
    fn every_builtin_scenario_has_a_link() {
        for scenario in crate::sim::library::builtin() {
            let scenario = scenario.expect("a valid built-in scenario");
            let link = parse(&write(&scenario.name, None, 3)).expect(&scenario.name);
            assert_eq!(link, Some(followed(&scenario.name, 3)));
        }
    }

    #[test]
    fn a_step_past_the_end_is_a_step_however_large() {
        // The app shows the end for it; a number too large for this machine is no different.
        for (fragment, step) in [
            (
                "#scenario=greylisting&step=4294967296",
                usize::try_from(4_294_967_296u64).unwrap_or(usize::MAX),
            ),
            (
                "#scenario=greylisting&step=99999999999999999999999",
                usize::MAX,
            ),
            ("#scenario=greylisting&step=007", 7),
        ] {
            let link = parse(fragment).expect(fragment).expect(fragment);
            assert_eq!(link.step, step, "{fragment}");
        }
    }

    #[test]
    fn a_link_without_a_clear_scenario_says_what_is_wrong() {
        for (fragment, expected) in [
            ("#step=5", "names no scenario"),
            ("#step=x", "names no scenario"),
            (
                "#colour=red&step=5",
                "names no scenario, and has a part SMTP Lab does not know: \"colour=red\"",
            ),
            // Only ASCII letters are folded: a dotted capital I is no i.
            ("#scenario=GREYL%C4%B0STING", "not a scenario name"),
            // The name is quoted as it was written.
            ("#scenario=Grey%20Listing", "\"Grey Listing\", which is not"),
            ("#scenario=", "names no scenario"),
            // A part is decoded once: what it held encoded stays encoded.
            (
                "#scenario%3Dnull%252Dmx",
                "\"null%2Dmx\", which is not a scenario name",
            ),
            ("#scenario", "names no scenario"),
            // Quoted as written.
            (
                "#scenario=Greylisting&scenario=Null-MX",
                "names two scenarios, \"Greylisting\" and \"Null-MX\"",
            ),
            ("#scenario=Grey%20listing", "not a scenario name"),
            // A name that breaks the rules may still be near one.
            (
                "#scenario=null.mx",
                "not a scenario name (letters a to z, digits and '-'). Did you mean \"null-mx\"?",
            ),
            ("#scenario=Grey%20listing", "Did you mean \"greylisting\"?"),
            ("#garbage", "does not know"),
            (
                "#scenario=greylisting&step=5&scenario=basic-delivery",
                "names two scenarios, \"greylisting\" and \"basic-delivery\"",
            ),
            // A name whose encoding is broken is said to be so.
            (
                "#scenario=null%2",
                "scenario name, \"null%2\", holds a % that is not followed by two hexadecimal \
                 digits (the link may have been cut or changed on its way)",
            ),
            (
                "#scenario=%E0%A4%A&step=1",
                "holds a % that is not followed by two hexadecimal digits",
            ),
            (
                "#scenario=%FF",
                "scenario name, \"%FF\", holds percent-encoded octets that are not UTF-8 text",
            ),
        ] {
            let error = parse(fragment).expect_err(fragment);
            assert!(error.contains(expected), "{fragment}: {error}");
        }
        let long = format!("#scenario={}", "a".repeat(FRAGMENT_MAX_CHARS));
        let error = parse(&long).unwrap_err();
        assert!(
            error.contains(&format!("over {FRAGMENT_MAX_CHARS}")),
            "{error}"
        );
        // Characters that would not show are named, never written out.
        let error = parse("#scenario=a\u{7}b").unwrap_err();
        assert!(error.contains("\"aU+0007b\""), "{error}");
        let error = parse("#scenario=%E2%80%AEgreylisting").unwrap_err();
        assert!(error.contains("\"U+202Egreylisting\""), "{error}");
        // A quote or a backslash shows as itself.
        assert_eq!(quoted("a\"b\\c'd"), "\"a\"b\\c'd\"");
    }

    #[test]
    fn a_link_with_a_clear_scenario_is_followed_and_says_what_it_left_out() {
        for (fragment, step, step_unreadable, expected) in [
            (
                "#scenario=greylisting&step=-1",
                0,
                true,
                "not a step number",
            ),
            ("#scenario=greylisting&step=", 0, true, "gives no number"),
            ("#scenario=greylisting&step", 0, true, "gives no number"),
            (
                "#scenario=greylisting&step=+5",
                0,
                true,
                "not a step number",
            ),
            (
                "#scenario=greylisting&step=5&step=6",
                0,
                true,
                "gives two steps, 5 and 6",
            ),
            // A step that cannot be read is said first, whatever came before it.
            (
                "#scenario=greylisting&utm_source=x&step=abc",
                0,
                true,
                "step \"abc\", which is not a step number (0, 1, 2, ...). This link has a part \
                 SMTP Lab does not know, \"utm_source=x\", which is left out.",
            ),
            (
                "#scenario=greylisting&step=5&step=x",
                0,
                true,
                "not a step number",
            ),
            // An encoded separator is part of its value, not a second part.
            (
                "#scenario=greylisting&step=5%26scenario%3Dnull-mx",
                0,
                true,
                "not a step number",
            ),
            // A part added on the way is left out; the step still holds.
            (
                "#scenario=greylisting&colour=red&step=5",
                5,
                false,
                "does not know, \"colour=red\", which is left out",
            ),
            (
                "#scenario=greylisting&step=5&utm_source",
                5,
                false,
                "does not know",
            ),
            // Every part added is left out, a few of them by name.
            (
                "#scenario=greylisting&fbclid=x&step=5&utm_source=y",
                5,
                false,
                "has parts SMTP Lab does not know, \"fbclid=x\" and \"utm_source=y\", which are left out.",
            ),
            (
                "#scenario=greylisting&a=1&b=2&c=3&d=4&e=5",
                0,
                false,
                "\"a=1\", \"b=2\", \"c=3\" and 2 more, which are left out.",
            ),
            // A long part added on the way does not hide the scenario, and is quoted short.
            (
                &format!("#scenario=greylisting&step=5&fbclid={}", "x".repeat(500)),
                5,
                false,
                "\"fbclid=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\", which is left out",
            ),
            // An encoded link with a part added after it.
            (
                "#scenario%3Dgreylisting%26step%3D5&x=1",
                5,
                false,
                "\"x=1\", which is left out",
            ),
        ] {
            let link = parse(fragment).expect(fragment).expect(fragment);
            assert_eq!(link.scenario, "greylisting", "{fragment}");
            assert_eq!(link.step, step, "{fragment}");
            assert_eq!(link.step_unreadable, step_unreadable, "{fragment}");
            let left_out = link.left_out.expect(fragment);
            assert!(left_out.contains(expected), "{fragment}: {left_out}");
        }
    }

    #[test]
    fn a_link_at_the_end_of_a_sentence_leaves_its_punctuation_out() {
        for fragment in [
            "#scenario=greylisting&step=55.",
            "#scenario=greylisting&step=55).",
            "#scenario=greylisting&step=55\"",
            "#scenario=greylisting&step=55>",
            "#scenario=greylisting&step=55%20",
            "#scenario=greylisting&step=55 ,",
            // As a browser gives them: `"`, a typographic quote, `>`, a backtick, an ellipsis,
            // a guillemet, a space, and several of them.
            "#scenario=greylisting&step=55%22",
            "#scenario=greylisting&step=55%E2%80%9D",
            "#scenario=greylisting&step=55%e2%80%9d",
            "#scenario=greylisting&step=55%3E",
            "#scenario=greylisting&step=55%60",
            "#scenario=greylisting&step=55%E2%80%A6",
            "#scenario=greylisting&step=55%C2%BB",
            "#scenario=greylisting&step=55\u{201D}",
            "#scenario=greylisting&step=55%E2%80%9C",
            "#scenario=greylisting&step=55\u{2018}",
            "#scenario=greylisting&step=55%C2%AB",
            "#scenario=greylisting&step=55\u{2039}",
            "#scenario=greylisting&step=55%22).%20",
        ] {
            assert_eq!(
                parse(fragment),
                Ok(Some(followed("greylisting", 55))),
                "{fragment}"
            );
        }
        assert_eq!(
            parse("#scenario=null-mx."),
            Ok(Some(followed("null-mx", 0)))
        );
        assert_eq!(
            parse("#scenario=greylisting%22"),
            Ok(Some(followed("greylisting", 0)))
        );
        // Not prose: an encoded digit (the link's own), a lone octet of a character, a `%`.
        assert_eq!(
            parse("#scenario=greylisting&step=5%35"),
            Ok(Some(followed("greylisting", 55)))
        );
        for fragment in [
            "#scenario=greylisting&step=55%E2%80",
            "#scenario=greylisting&step=55%",
        ] {
            assert!(
                parse(fragment).is_ok_and(|link| link.is_some_and(|link| link.step_unreadable)),
                "{fragment}"
            );
        }
        // Punctuation inside a link is still the link's.
        assert!(parse("#scenario=greylisting&step=5.5")
            .is_ok_and(|link| link.is_some_and(|link| link.step_unreadable)));
        assert_eq!(parse("#."), Ok(None));
    }

    #[test]
    fn names_and_the_scenario_are_read_in_any_case() {
        for fragment in [
            "#Scenario=Greylisting&Step=5",
            "#SCENARIO=GREYLISTING&STEP=5",
            "#scenario=greyListing&step=5",
        ] {
            assert_eq!(
                parse(fragment),
                Ok(Some(followed("greylisting", 5))),
                "{fragment}"
            );
        }
    }

    /// A message as the dialog writes it, with every character a link must encode.
    fn written_message() -> Draft {
        let mut draft = Draft {
            from: "Alice Liddell <alice@sender.test>".into(),
            to: "bob@receiver.test, \"Eve; Q&A\" <eve@receiver.test>".into(),
            cc: String::new(),
            bcc: "carol@receiver.test".into(),
            subject: "Hé & = ; # % + ? \"quoted\"".into(),
            body: "Line 1\r\nLine 2 ends a sentence.\n.\n\u{202e}é\t%41".into(),
            attachments: vec![
                AttachmentSpec {
                    filename: "photo.jpg".into(),
                    content_type: Some("image/jpeg".into()),
                    size_octets: Some(2048),
                    text: None,
                },
                AttachmentSpec {
                    filename: "a;b&c=d %.txt".into(),
                    content_type: None,
                    size_octets: Some(0),
                    text: None,
                },
            ],
            eight_bit_body: true,
            dsn: DsnSpec {
                notify: Notify::parse("SUCCESS,DELAY").ok(),
                ret: Some(DsnReturn::Full),
                envid: Some("order=42; a&b %41".into()),
                orcpt: true,
            },
            server_changes: Default::default(),
        };
        draft
            .server_changes
            .insert("mx.receiver.test".into(), ServerChange::Greylisting);
        draft
            .server_changes
            .insert("mail.sender.test".into(), ServerChange::SmallSizeLimit);
        draft
    }

    #[test]
    fn a_written_message_reads_back_from_its_link() {
        let draft = written_message();
        let fragment = write_message("basic-delivery", &draft, None, 40).expect("short enough");
        assert!(
            fragment.starts_with("#scenario=basic-delivery&from="),
            "{fragment}"
        );
        assert!(fragment.ends_with("&step=40"), "{fragment}");
        // Nothing a chat program would take for the end of a link, or a new part.
        let after_hash = &fragment[1..];
        assert!(
            after_hash
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~@%&=;".contains(c)),
            "{fragment}"
        );
        let expected = ShareLink {
            message: Some(draft.clone()),
            ..followed("basic-delivery", 40)
        };
        assert_eq!(parse(&fragment), Ok(Some(expected.clone())));
        // Encoded whole on its way, or followed by the end of a sentence, it reads the same.
        let whole = percent_encoded(after_hash);
        assert_eq!(parse(&whole), Ok(Some(expected.clone())));
        assert_eq!(parse(&format!("{fragment}.")), Ok(Some(expected)));
        // Empty fields are left out; a message of nothing but a sender is still a message.
        let only_from = Draft {
            from: "a@b.test".into(),
            ..Draft::default()
        };
        let fragment = write_message("null-mx", &only_from, None, 0).expect("short");
        assert_eq!(fragment, "#scenario=null-mx&from=a@b.test&step=0");
        assert_eq!(
            parse(&fragment).unwrap().unwrap().message,
            Some(only_from.clone())
        );
        // A body too long for a link makes none.
        let long = Draft {
            body: "x".repeat(FRAGMENT_MAX_CHARS),
            ..draft
        };
        assert_eq!(write_message("basic-delivery", &long, None, 1), None);
        // A message has a link at every step of its run or at none, whatever its length.
        for length in FRAGMENT_MAX_CHARS - 120..FRAGMENT_MAX_CHARS {
            let near = Draft {
                body: "x".repeat(length),
                ..only_from.clone()
            };
            assert_eq!(
                write_message("basic-delivery", &near, None, 0).is_some(),
                write_message("basic-delivery", &near, None, usize::MAX).is_some(),
                "a body of {length}"
            );
        }
        // Nor does an attachment a link cannot give: one of text, or of the default size.
        for attachment in [
            AttachmentSpec {
                filename: "notes.txt".into(),
                content_type: Some("text/plain".into()),
                size_octets: None,
                text: Some("hello".into()),
            },
            AttachmentSpec {
                filename: "photo.jpg".into(),
                content_type: None,
                size_octets: None,
                text: None,
            },
        ] {
            let with = Draft {
                attachments: vec![attachment],
                ..only_from.clone()
            };
            assert_eq!(write_message("basic-delivery", &with, None, 1), None);
        }
    }

    #[test]
    fn a_message_that_cannot_be_read_is_not_sent_and_the_link_says_why() {
        for (fragment, expected) in [
            (
                "scenario=basic-delivery&to=b@x.test&dsn=ALWAYS;;;",
                "in its delivery reports (dsn), its NOTIFY:",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&dsn=NEVER;ALL;;",
                "its RET: \"ALL\" is neither FULL nor HDRS",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&dsn=NEVER;;;yes",
                "its ORCPT part is \"yes\", not orcpt",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&dsn=NEVER;;;orcpt;x",
                "are not NOTIFY, RET, ENVID and orcpt, separated by ';'",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&dsn=;;;&dsn=;;;",
                "it gives dsn twice",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&attach=photo.jpg",
                "not a file name, a media type and a size",
            ),
            (
                "scenario=basic-delivery&attach=photo.jpg;image%2Fjpeg;big",
                "the size \"big\"",
            ),
            (
                "scenario=basic-delivery&attach=%20;image%2Fjpeg;1",
                "not a file name",
            ),
            (
                "scenario=basic-delivery&server=mx.receiver.test;on-fire",
                "\"on-fire\", which is not one of the changes (down-two-hours,",
            ),
            (
                "scenario=basic-delivery&server=mx.receiver.test",
                "not a server's name and a change",
            ),
            (
                "scenario=basic-delivery&from=a@x.test&from=b@x.test",
                "gives from twice",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&8bit=maybe",
                "neither 1 nor 0",
            ),
            // Octets a link's own encoding could not have made: no U+FFFD in the message.
            (
                "scenario=basic-delivery&from=%E0%A4&to=b@x.test",
                "its from holds percent-encoded octets that are not UTF-8 text",
            ),
            // Nor a `%` that starts no `%HH`, which a link's own encoding never leaves.
            (
                "scenario=basic-delivery&from=a@x.test&to=%ZZ",
                "its to holds a % that is not followed by two hexadecimal digits",
            ),
            (
                "scenario=basic-delivery&from=%E0%A4%A&to=b@x.test",
                "its from holds a % that is not followed by two hexadecimal digits",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&body=100%",
                "its body holds a % that is not followed",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&attach=a%2.jpg;image%2Fjpeg;1",
                "one of its attachments holds a % that is not followed",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&subject=%FF%FE",
                "its subject holds percent-encoded octets that are not UTF-8 text",
            ),
            (
                "scenario=basic-delivery&to=b@x.test&attach=a%FF.jpg;image%2Fjpeg;1",
                "one of its attachments holds percent-encoded octets",
            ),
        ] {
            let link = parse(fragment).expect(fragment).expect(fragment);
            assert_eq!(link.scenario, "basic-delivery");
            assert_eq!(link.message, None, "{fragment}");
            let left_out = link.left_out.expect(fragment);
            assert!(
                left_out.starts_with("This link's message cannot be read: ")
                    && left_out.contains(expected)
                    && left_out.ends_with("The scenario is shown without it."),
                "{fragment}: {left_out}"
            );
        }
        // A link cut short (it has no step at its end), one whose value was broken up by a
        // decoding on the way, and one changing a server twice (names in any case) are not
        // sent either; what a chat program adds after the step is left out, as always.
        for (fragment, expected) in [
            (
                "#scenario=basic-delivery&from=a@x.test&to=bob@rece",
                "no step at its end",
            ),
            (
                "#scenario=basic-delivery&from=a@x.test&body=Q&A: x=1&step=2",
                "a part among its message's, \"A: x=1\"",
            ),
            (
                "#scenario=basic-delivery&from=a@x.test&server=MX.receiver.test;greylisting\
                 &server=mx.receiver.test;down-for-good&step=2",
                "changes the server \"mx.receiver.test\" twice",
            ),
        ] {
            let link = parse(fragment).expect(fragment).expect(fragment);
            assert_eq!(link.message, None, "{fragment}");
            assert!(link.message_unreadable, "{fragment}");
            let left_out = link.left_out.expect(fragment);
            assert!(left_out.contains(expected), "{fragment}: {left_out}");
        }
        // A message whose every `;` a tool on the way encoded reads as the one written.
        let link = parse(
            "#scenario=basic-delivery&from=a@x.test&dsn=SUCCESS%3BHDRS%3B%3Borcpt\
             &attach=photo.jpg%3Bimage%2Fjpeg%3B2048&step=2",
        )
        .unwrap()
        .unwrap();
        assert_eq!(link.left_out, None);
        let message = link.message.expect("the message");
        assert_eq!(message.dsn.ret, Some(DsnReturn::Headers));
        assert_eq!(
            message
                .attachments
                .iter()
                .map(|a| (
                    a.filename.as_str(),
                    a.content_type.as_deref(),
                    a.size_octets
                ))
                .collect::<Vec<_>>(),
            [("photo.jpg", Some("image/jpeg"), Some(2048))]
        );
        // A server change whose `;` a tool on the way encoded reads as the one written.
        let link = parse(
            "#scenario=basic-delivery&from=a@x.test&server=mx.receiver.test%3Bgreylisting&step=2",
        )
        .unwrap()
        .unwrap();
        assert_eq!(link.left_out, None);
        assert_eq!(
            link.message
                .map(|m| m.server_changes.into_iter().collect::<Vec<_>>()),
            Some(vec![(
                "mx.receiver.test".to_string(),
                ServerChange::Greylisting
            )])
        );
        let link = parse("#scenario=basic-delivery&from=a@x.test&step=2&fbclid=x")
            .unwrap()
            .unwrap();
        assert_eq!(link.message.map(|m| m.from), Some("a@x.test".into()));
        assert!(link.left_out.is_some_and(|l| l.contains("\"fbclid=x\"")));
        // A part of a message's that reads is no unknown part.
        let link = parse("scenario=basic-delivery&to=b@x.test&8bit=0&step=0")
            .unwrap()
            .unwrap();
        assert_eq!(link.left_out, None);
        assert_eq!(
            link.message.map(|m| (m.to, m.eight_bit_body)),
            Some(("b@x.test".into(), false))
        );
    }

    /// Link parts as they come: SMTP Lab's own, in any case and encoding, and what chat and
    /// mail programs add or break.
    #[cfg(not(target_arch = "wasm32"))]
    fn link_part() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("scenario=greylisting".to_string()),
            Just("Scenario=Null-MX".to_string()),
            Just("scenario%3Dgreylisting".to_string()),
            Just("scenario=".to_string()),
            Just("step=55".to_string()),
            Just("step=".to_string()),
            Just("step".to_string()),
            Just("step=99999999999999999999999".to_string()),
            Just("seed=1".to_string()),
            Just("seed=".to_string()),
            Just("seed=-1".to_string()),
            Just("seed=18446744073709551616".to_string()),
            Just("%26".to_string()),
            Just("%3D".to_string()),
            Just("%".to_string()),
            Just("%e2%82".to_string()),
            Just("=".to_string()),
            Just("&".to_string()),
            Just("#".to_string()),
            Just("to=bob%40receiver.test".to_string()),
            Just("from=alice@sender.test&to=bob@receiver.test".to_string()),
            Just("attach=a;b".to_string()),
            Just("attach=a;image%2Fpng;x".to_string()),
            Just("server=mx.receiver.test;greylisting".to_string()),
            Just("server=x;y".to_string()),
            Just("8bit=2".to_string()),
            Just("dsn=NEVER;;;".to_string()),
            Just("dsn=SUCCESS%2CDELAY;full;order%3D1;orcpt".to_string()),
            Just("dsn=ALWAYS;;;".to_string()),
            Just("dsn=;;".to_string()),
            "[a-z]{1,8}=[a-zA-Z0-9_-]{0,60}",
            // A click identifier, or a scenario or step pasted over and over.
            "(scenario|step|[a-z]{1,8})=[a-zA-Z0-9_-]{100,300}",
            "\\PC{0,60}",
        ]
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x11_4c_5e),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Any message the dialog can write reads back from its link as written.
        #[test]
        fn any_written_message_reads_back(
            fields in proptest::collection::vec("\\PC{0,30}|[ -~]{0,30}", 6),
            attachments in proptest::collection::vec(("[ -~]{0,12}[a-z][ -~]{0,12}", "[ -~]{0,20}", 0usize..100_000_000), 0..4),
            changes in proptest::collection::btree_map("[ -~]{0,20}", 0..ServerChange::ALL.len(), 0..3),
            eight_bit_body in proptest::bool::ANY,
            dsn in (0usize..crate::sim::draft::NOTIFY_CHOICES.len(), 0usize..3, proptest::option::of("[ -~]{1,20}"), proptest::bool::ANY),
            step in 0usize..100_000,
        ) {
            let draft = Draft {
                from: fields[0].clone(),
                to: fields[1].clone(),
                cc: fields[2].clone(),
                bcc: fields[3].clone(),
                subject: fields[4].clone(),
                body: fields[5].clone(),
                attachments: attachments
                    .into_iter()
                    .map(|(filename, content_type, size)| AttachmentSpec {
                        filename,
                        content_type: (!content_type.is_empty()).then_some(content_type),
                        size_octets: Some(size),
                        text: None,
                    })
                    .collect(),
                eight_bit_body,
                dsn: DsnSpec {
                    notify: Notify::parse(crate::sim::draft::NOTIFY_CHOICES[dsn.0].0).ok(),
                    ret: [None, Some(DsnReturn::Headers), Some(DsnReturn::Full)][dsn.1],
                    envid: dsn.2,
                    orcpt: dsn.3,
                },
                server_changes: changes
                    .into_iter()
                    .map(|(host, change)| (host, ServerChange::ALL[change]))
                    .collect(),
            };
            let fragment = write_message("two-domains", &draft, None, step).expect("short enough");
            let link = parse(&fragment).expect("a written link reads").expect("a link");
            proptest::prop_assert_eq!(link.left_out, None);
            proptest::prop_assert_eq!(link.step, step);
            // An empty draft writes no message part, and reads back as no message.
            let empty = draft == Draft::default();
            proptest::prop_assert_eq!(link.message, (!empty).then_some(draft));
        }

        /// Whatever a link holds, reading it gives a scenario to show, nothing, or a short
        /// sentence that says what is wrong; never a panic.
        #[test]
        fn any_link_is_followed_or_explained(
            parts in proptest::collection::vec(link_part(), 0..8),
            hash in proptest::bool::ANY,
        ) {
            let fragment = format!("{}{}", if hash { "#" } else { "" }, parts.join("&"));
            match parse(&fragment) {
                Ok(None) => {
                    let without_hash = fragment.strip_prefix('#').unwrap_or(&fragment);
                    proptest::prop_assert!(without_hash.is_empty());
                }
                Ok(Some(link)) => {
                    proptest::prop_assert!(is_library_name(&link.scenario), "{link:?}");
                    if link.step_unreadable || link.seed_unreadable {
                        proptest::prop_assert_eq!(link.step, 0);
                        proptest::prop_assert!(link.left_out.is_some());
                    }
                    if let Some(left_out) = &link.left_out {
                        proptest::prop_assert!(left_out.starts_with("This link"), "{left_out}");
                        proptest::prop_assert!(left_out.chars().count() <= 1200, "{left_out}");
                    }
                    // What the address bar is given back reads as the same place.
                    let written = write(&link.scenario, link.seed, link.step);
                    let again = parse(&written).expect("a written link reads");
                    proptest::prop_assert_eq!(
                        again.map(|l| (l.scenario, l.seed, l.step)),
                        Some((link.scenario.clone(), link.seed, link.step))
                    );
                }
                Err(complaint) => {
                    proptest::prop_assert!(complaint.starts_with("This link"), "{complaint}");
                    proptest::prop_assert!(complaint.chars().count() <= 1200, "{complaint}");
                }
            }
        }
    }

    /// `text` with the characters `encode` picks (by position, cycling) written `%HH`, in
    /// upper or lower case, and every `=` and `&` too when `whole` (a link encoded whole).
    #[cfg(not(target_arch = "wasm32"))]
    fn encoded(text: &str, encode: &[bool], whole: bool) -> String {
        let mut out = String::new();
        for (index, c) in text.chars().enumerate() {
            let pick = encode
                .get(index % encode.len().max(1))
                .copied()
                .unwrap_or(false);
            if (whole && matches!(c, '=' | '&')) || (pick && c.is_ascii_alphanumeric()) {
                if index % 2 == 0 {
                    out.push_str(&format!("%{:02X}", c as u32));
                } else {
                    out.push_str(&format!("%{:02x}", c as u32));
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x11_4c_5f),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// A link to a built-in scenario and step, spelled in any case, encoded in part or
        /// whole, with parts of chat programs' added anywhere (long ones too), is followed to
        /// that scenario and step; what was added is left out and said in a short sentence.
        #[test]
        fn a_link_in_any_spelling_is_followed_to_its_scenario_and_step(
            which in proptest::sample::select(
                crate::sim::library::SCENARIO_FILES
                    .iter()
                    .map(|(file, _)| *file)
                    .collect::<Vec<_>>()
            ),
            step in 0usize..2000,
            upper in proptest::collection::vec(proptest::bool::ANY, 1..24),
            encode in proptest::collection::vec(proptest::bool::weighted(0.2), 1..24),
            whole in proptest::bool::weighted(0.2),
            added in proptest::collection::vec(
                "x[a-z]{0,7}=([a-z0-9_-]{0,20}|[a-z0-9]{100,300})",
                0..4
            ),
            order in proptest::collection::vec(0usize..8, 2),
        ) {
            let name = which.strip_suffix(".json").expect("a .json file");
            let cased = |text: &str| -> String {
                text.chars()
                    .enumerate()
                    .map(|(i, c)| if upper[i % upper.len()] { c.to_ascii_uppercase() } else { c })
                    .collect()
            };
            let mut parts = added.clone();
            let scenario_part = format!("{}={}", cased("scenario"), cased(name));
            let step_part = format!("{}={step}", cased("step"));
            parts.insert(order[0] % (parts.len() + 1), scenario_part);
            parts.insert(order[1] % (parts.len() + 1), step_part);
            let link = parts.join("&");
            let fragment = if whole {
                encoded(&link, &encode, true)
            } else {
                parts
                    .iter()
                    .map(|part| {
                        let (key, value) = part.split_once('=').expect("key=value");
                        let key = encoded(key, &encode, false);
                        format!("{key}={}", encoded(value, &encode, false))
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            };
            let followed = parse(&format!("#{fragment}"));
            let Ok(Some(followed)) = followed else {
                let why = format!("{fragment}: {followed:?}");
                return Err(proptest::test_runner::TestCaseError::fail(why));
            };
            proptest::prop_assert_eq!(&followed.scenario, name, "{}", fragment);
            proptest::prop_assert_eq!(followed.step, step, "{}", fragment);
            proptest::prop_assert!(!followed.step_unreadable);
            match &followed.left_out {
                None => proptest::prop_assert!(added.is_empty(), "{}", fragment),
                Some(left_out) => {
                    proptest::prop_assert!(!added.is_empty(), "{}: {}", fragment, left_out);
                    // At most three parts quoted, each cut to 40 characters.
                    proptest::prop_assert!(left_out.chars().count() <= 300, "{}", left_out);
                }
            }
        }
    }
}
