//! The message a step carries whole, for its outline in the details: a client's message data
//! after the server's 354 (RFC 5321 4.1.1.4), a POP3 server's answer to RETR (RFC 1939 5), a
//! notice a host writes (RFC 3464); and the same message as it was first seen in the run, found
//! by its `Message-ID:` field (RFC 5322 3.6.4), which every copy of it keeps, so that the
//! outline can say which fields the servers on the way added.

use super::notes::earlier_on_connection;
use super::trace::{Direction, Event, TraceEvent};
use crate::mail::outline::{header_fields, outline, Outline};
use crate::smtp::dot::{dot_unstuff, lines_inclusive};
use std::collections::HashMap;

/// The end of a message's data, and of a POP3 multi-line response.
const DATA_END: &[u8] = b"\r\n.\r\n";

/// How a step carries its message, which the outline's words depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A client's message data after the server's 354.
    Data,
    /// A POP3 server's answer to RETR.
    Retrieved,
    /// A notice as the host that wrote it has it.
    Notice,
}

/// Where each message (by its `Message-ID:` field, octet for octet) is first carried in a
/// run: made once per run, so that showing a step does not read the whole trace again.
#[derive(Debug, Default)]
pub struct FirstCopies {
    first: HashMap<Vec<u8>, usize>,
}

impl FirstCopies {
    pub fn of(events: &[TraceEvent]) -> FirstCopies {
        let mut first = HashMap::new();
        for index in 0..events.len() {
            let Some((bytes, _)) = carried_bytes(events, index) else {
                continue;
            };
            // The fields are the same with or without dot-stuffing: a field's line cannot
            // start with a dot and a continuation line starts with white space.
            if let Some(id) = message_id_field(bytes) {
                first.entry(id.to_vec()).or_insert(index);
            }
        }
        FirstCopies { first }
    }
}

/// The outline of the message the event at `index` carries, compared with its first copy in
/// the run (see [`FirstCopies`]), and how the event carries it; `None` for an event that
/// carries no whole message.
pub fn message_outline(
    events: &[TraceEvent],
    index: usize,
    first_copies: &FirstCopies,
) -> Option<(Outline, Carried)> {
    let (message, carried) = message_carried(events, index)?;
    let first = message_id_field(&message)
        .and_then(|id| first_copies.first.get(id))
        .filter(|&&first| first < index)
        .and_then(|&first| message_carried(events, first))
        .map(|(first, _)| first);
    Some((outline(&message, first.as_deref()), carried))
}

/// The message (without dot-stuffing and end line) that the event at `index` carries whole,
/// and how.
pub fn message_carried(events: &[TraceEvent], index: usize) -> Option<(Vec<u8>, Carried)> {
    let (bytes, carried) = carried_bytes(events, index)?;
    let message = match carried {
        Carried::Notice => bytes.to_vec(),
        Carried::Data | Carried::Retrieved => dot_unstuff(bytes),
    };
    Some((message, carried))
}

/// The bytes of the message the event at `index` carries whole, as they went (dot-stuffed
/// but for a notice, with the end line), and how.
fn carried_bytes(events: &[TraceEvent], index: usize) -> Option<(&[u8], Carried)> {
    match &events.get(index)?.event {
        Event::BounceCreated(created) => Some((created.bytes.as_bytes(), Carried::Notice)),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } => {
            // The data comes in the client's first send after the server's 354, whole: the
            // trace records each write whole, also one a broken link then cuts on its way
            // (what was sent is shown). Data with commands pipelined after it, and BDAT
            // chunks, are not taken for one message.
            let bytes = bytes.as_bytes();
            let after_354 = bytes.ends_with(DATA_END)
                && earlier_on_connection(events, index)
                    .next()
                    .is_some_and(|(direction, sent)| {
                        direction == Direction::ServerToClient && last_reply_is_354(sent)
                    });
            after_354.then_some((bytes, Carried::Data))
        }
        Event::Transmitted {
            direction: Direction::ServerToClient,
            bytes,
            ..
        } => {
            // A RETR's answer: "+OK <size> octets", then the message (RFC 1939 5). TOP's
            // holds only part of one, and says so.
            let bytes = bytes.as_bytes();
            let status_end = memchr::memchr(b'\n', bytes)? + 1;
            let status = bytes[..status_end].strip_suffix(b"\r\n")?;
            let size = status.strip_prefix(b"+OK ")?.strip_suffix(b" octets")?;
            let is_retr = !size.is_empty() && size.iter().all(u8::is_ascii_digit);
            let rest = &bytes[status_end..];
            (is_retr && (rest.ends_with(DATA_END) || rest == b".\r\n"))
                .then_some((rest, Carried::Retrieved))
        }
        _ => None,
    }
}

/// Whether the last reply in a server's send is a 354 (start mail input).
fn last_reply_is_354(sent: &[u8]) -> bool {
    lines_inclusive(sent)
        .last()
        .is_some_and(|line| line.starts_with(b"354") && line.ends_with(b"\r\n"))
}

/// The `Message-ID:` field of `message`'s header section, as written (with its continuation
/// lines and CRLF).
fn message_id_field(message: &[u8]) -> Option<&[u8]> {
    header_fields(message).into_iter().find(|field| {
        field
            .get(..11)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"Message-ID:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{library, run};

    fn outlines_of(name: &str) -> Vec<(usize, Outline, Carried)> {
        let scenario = library::find(name).expect("a built-in");
        let trace = run(&scenario, scenario.seed).trace;
        let first_copies = FirstCopies::of(&trace.events);
        (0..trace.events.len())
            .filter_map(|index| {
                let (outline, carried) = message_outline(&trace.events, index, &first_copies)?;
                Some((index, outline, carried))
            })
            .collect()
    }

    fn added(outline: &Outline) -> Vec<String> {
        outline
            .fields
            .iter()
            .filter(|field| field.added)
            .map(|field| field.name.clone())
            .collect()
    }

    #[test]
    fn each_hop_of_a_message_with_attachments_is_outlined_with_what_servers_added() {
        let outlines = outlines_of("attachments");
        let carried: Vec<Carried> = outlines.iter().map(|(_, _, carried)| *carried).collect();
        // Submission, relay, and the recipient's RETR.
        assert_eq!(
            carried,
            [Carried::Data, Carried::Data, Carried::Retrieved],
            "{outlines:#?}"
        );
        let [(_, submitted, _), (_, relayed, _), (_, retrieved, _)] = &outlines[..] else {
            unreachable!()
        };
        // The user agent's own copy is the first: nothing to compare it with.
        assert!(!submitted.compared);
        assert!(submitted.fields.iter().any(|f| f.name == "Message-ID"));
        assert_eq!(added(relayed), ["Received"]);
        assert!(relayed.fields[0].value.contains("by mail.sender.test"));
        // At delivery: the MDA's Return-Path and Delivered-To, the receiving server's Received,
        // and the submission server's.
        assert_eq!(
            added(retrieved),
            ["Return-Path", "Received", "Delivered-To", "Received"]
        );
        assert!(retrieved.removed.is_empty() && relayed.removed.is_empty());
        // The body is the same MIME tree at every hop: a multipart with its attachments.
        assert_eq!(submitted.body_summary(), "multipart/mixed, 4 parts");
        assert_eq!(submitted.parts, retrieved.parts);
        let attachments: Vec<&str> = submitted
            .parts
            .iter()
            .filter(|p| p.text.contains(", attachment \""))
            .map(|p| p.media_type.as_str())
            .collect();
        assert_eq!(attachments, ["image/png", "audio/mpeg", "video/mp4"]);
        assert!(submitted
            .parts
            .iter()
            .filter(|p| p.text.contains(", attachment \""))
            .all(|p| p.text.contains(", base64, ") && p.text.ends_with(" decoded")));
    }

    #[test]
    fn a_bounce_is_outlined_where_it_is_written_and_where_it_is_read() {
        let outlines = outlines_of("unknown-domain");
        let reports: Vec<(&Outline, Carried)> = outlines
            .iter()
            .filter(|(_, o, _)| o.body_summary().starts_with("multipart/report"))
            .map(|(_, o, carried)| (o, *carried))
            .collect();
        let carried: Vec<Carried> = reports.iter().map(|(_, carried)| *carried).collect();
        assert_eq!(
            carried,
            [Carried::Notice, Carried::Retrieved],
            "{outlines:#?}"
        );
        // Written by the host, it has no earlier copy; read, it is compared with it.
        assert!(!reports[0].0.compared);
        assert!(reports[1].0.compared);
        assert_eq!(added(reports[1].0), ["Return-Path", "Delivered-To"]);
        assert!(reports[0]
            .0
            .parts
            .iter()
            .any(|p| p.depth == 1 && p.text.starts_with("message/delivery-status")));
    }

    #[test]
    fn a_message_given_its_message_id_on_the_way_has_no_earlier_copy() {
        // The raw message of this built-in has no Message-ID: the submission server writes
        // one, so the copies after it match nothing before them.
        let outlines = outlines_of("8bit-without-8bitmime");
        let relayed: Vec<&Outline> = outlines
            .iter()
            .filter(|(_, o, _)| o.fields.iter().any(|f| f.name == "Received"))
            .map(|(_, o, _)| o)
            .collect();
        assert!(!relayed.is_empty(), "{outlines:#?}");
        assert!(relayed[0].fields.iter().any(|f| f.name == "Message-ID"));
        assert!(!relayed[0].compared);
    }

    #[test]
    fn commands_replies_and_a_top_answer_carry_no_whole_message() {
        for (name, messages) in [
            // Two messages submitted, relayed and retrieved; one submitted and relayed to
            // two domains; a smuggled message that goes with the commands.
            ("pop3-commands", 6),
            ("pipelining", 3),
            ("smtp-smuggling", 0),
        ] {
            let scenario = library::find(name).expect("a built-in");
            let trace = run(&scenario, scenario.seed).trace;
            let mut carried = 0;
            let mut top_answers = 0;
            for (index, event) in trace.events.iter().enumerate() {
                let Event::Transmitted { bytes, .. } = &event.event else {
                    continue;
                };
                let bytes = bytes.as_bytes();
                let is_top = bytes.starts_with(b"+OK top of message follows");
                top_answers += usize::from(is_top);
                let Some((message, _)) = message_carried(&trace.events, index) else {
                    continue;
                };
                carried += 1;
                assert!(!is_top, "{name} #{index}");
                // Whatever carries one carries header fields and is no command or reply.
                assert!(!header_fields(&message).is_empty(), "{name} #{index}");
                assert!(!bytes.starts_with(b"MAIL "), "{name} #{index}");
            }
            assert_eq!(carried, messages, "{name}");
            if name == "pop3-commands" {
                assert!(top_answers > 0);
            }
        }
    }
}
