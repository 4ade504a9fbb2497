#![cfg(not(target_arch = "wasm32"))]
//! The outline of every message the built-in scenarios carry, read against an independent
//! parser (mail-parser): the same MIME parts in the same order, of the same media types, and
//! the same sizes once decoded where a part is base64 or quoted-printable.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use smtp_lab::mail::glossary::field_purpose;
use smtp_lab::mail::outline::outline;
use smtp_lab::sim::carried::message_carried;
use smtp_lab::sim::{library, run};

/// The parts that hold content (not a multipart, not a message around others), in order:
/// media type, and the decoded size where the transfer encoding changes it.
fn leaves_by_mail_parser(message: &Message<'_>, id: usize, out: &mut Vec<(String, Option<usize>)>) {
    let part = &message.parts[id];
    match &part.body {
        PartType::Multipart(children) => {
            for &child in children {
                leaves_by_mail_parser(message, child as usize, out);
            }
        }
        PartType::Message(inner) => leaves_by_mail_parser(inner, 0, out),
        body => {
            let media_type = part.content_type().map_or("text/plain".to_string(), |t| {
                format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()).to_ascii_lowercase()
            });
            let encoded = part.content_transfer_encoding().is_some_and(|e| {
                ["base64", "quoted-printable"].contains(&&*e.to_ascii_lowercase())
            });
            let decoded = match body {
                PartType::Text(text) | PartType::Html(text) => text.len(),
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.len(),
                _ => unreachable!("containers are matched above"),
            };
            out.push((media_type, encoded.then_some(decoded)));
        }
    }
}

/// Every message a built-in scenario's steps carry whole: the scenario's name, the event's
/// index, and the message.
fn carried_messages() -> Vec<(String, usize, Vec<u8>)> {
    let mut carried = Vec::new();
    for scenario in library::builtin() {
        let scenario = scenario.expect("the built-ins are valid");
        let trace = run(&scenario, scenario.seed).trace;
        for index in 0..trace.events.len() {
            if let Some((message, _)) = message_carried(&trace.events, index) {
                carried.push((scenario.name.clone(), index, message));
            }
        }
    }
    carried
}

#[test]
fn every_carried_message_is_outlined_as_an_independent_parser_reads_it() {
    let mut messages = 0;
    let mut encoded_parts = 0;
    for (scenario, index, message) in carried_messages() {
        messages += 1;
        let parsed = MessageParser::default()
            .parse(&message)
            .expect("mail-parser reads the message");
        let mut expected = Vec::new();
        leaves_by_mail_parser(&parsed, 0, &mut expected);
        let outlined = outline(&message, None);
        let leaves: Vec<(String, Option<usize>)> = outlined
            .parts
            .iter()
            .filter(|part| {
                !part.media_type.starts_with("multipart/")
                    && !part.text.contains(": a whole message,")
            })
            .map(|part| {
                let decoded = part
                    .text
                    .strip_suffix(" decoded")
                    .and_then(|text| text.rsplit(", ").next())
                    .map(|count| count.parse().expect("a count"));
                (part.media_type.clone(), decoded)
            })
            .collect();
        encoded_parts += leaves.iter().filter(|(_, d)| d.is_some()).count();
        assert_eq!(
            leaves, expected,
            "{scenario} event {index}: {:#?}",
            outlined.parts
        );
    }
    // Every built-in's messages, their notices, and the attachments among them.
    assert!(messages >= 100, "{messages} messages");
    assert!(encoded_parts >= 10, "{encoded_parts} encoded parts");
}

/// A student reading any message of the built-ins finds what each of its header fields is
/// for: every field they write has a purpose in the glossary.
#[test]
fn every_header_field_the_built_ins_write_has_a_purpose_and_every_hop_is_read() {
    let mut names = std::collections::BTreeSet::new();
    let (mut hops, mut hops_from) = (0, 0);
    for (_, _, message) in carried_messages() {
        let outlined = outline(&message, None);
        // Every server's Received: field names it and the time, and every one but a
        // notice's own names where the message came from.
        for hop in &outlined.path {
            assert!(hop.by.is_some() && hop.date.is_some(), "{hop:?}");
        }
        hops += outlined.path.len();
        hops_from += outlined
            .path
            .iter()
            .filter(|hop| hop.from.is_some())
            .count();
        names.extend(outlined.fields.into_iter().map(|f| f.name));
    }
    let without: Vec<&String> = names
        .iter()
        .filter(|name| field_purpose(name).is_none())
        .collect();
    assert!(without.is_empty(), "no purpose for {without:?}");
    // The trace fields, the originator fields and MIME's, at least.
    assert!(names.len() >= 12, "{names:?}");
    assert!(hops > 100 && hops_from > hops / 2, "{hops_from} of {hops}");
}
