//! The message a step carries whole, for its outline in the details: a client's message data
//! after the server's 354 (RFC 5321 4.1.1.4), a POP3 server's answer to RETR (RFC 1939 7), a
//! notice a host writes (RFC 3464); and the same message as it was first seen in the run, found
//! by its `Message-ID:` field (RFC 5322 3.6.4), which every copy of it keeps, so that the
//! outline can say which fields the servers on the way added.

use super::notes::earlier_on_connection;
use super::trace::{Direction, Event, TraceEvent};
use crate::mail::outline::{header_fields, outline, Outline};
use crate::smtp::dot::{dot_unstuff, lines_inclusive};

/// The end of a message's data, and of a POP3 multi-line response.
const DATA_END: &[u8] = b"\r\n.\r\n";

/// The outline of the message the event at `index` carries, compared with its first copy in
/// the run; `None` for an event that carries no whole message.
pub fn message_outline(events: &[TraceEvent], index: usize) -> Option<Outline> {
    let message = message_carried(events, index)?;
    let first = first_copy(events, index, &message);
    Some(outline(&message, first.as_deref()))
}

/// The message (without dot-stuffing and end line) that the event at `index` carries whole.
pub fn message_carried(events: &[TraceEvent], index: usize) -> Option<Vec<u8>> {
    match &events.get(index)?.event {
        Event::BounceCreated(created) => Some(created.bytes.as_bytes().to_vec()),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } => {
            let bytes = bytes.as_bytes();
            // The data comes in the client's first send after the server's 354; a send that
            // holds less than all of it (a link broken in the middle) is not a whole message.
            let after_354 =
                earlier_on_connection(events, index)
                    .next()
                    .is_some_and(|(direction, sent)| {
                        direction == Direction::ServerToClient && last_reply_is_354(sent)
                    });
            (after_354 && bytes.ends_with(DATA_END)).then(|| dot_unstuff(bytes))
        }
        Event::Transmitted {
            direction: Direction::ServerToClient,
            bytes,
            ..
        } => {
            // A RETR's answer: "+OK <size> octets", then the message (RFC 1939 7). TOP's
            // holds only part of one.
            let bytes = bytes.as_bytes();
            let status_end = memchr::memchr(b'\n', bytes)? + 1;
            let status = bytes[..status_end].strip_suffix(b"\r\n")?;
            let size = status.strip_prefix(b"+OK ")?.strip_suffix(b" octets")?;
            let is_retr = !size.is_empty() && size.iter().all(u8::is_ascii_digit);
            let rest = &bytes[status_end..];
            (is_retr && (rest.ends_with(DATA_END) || rest == b".\r\n")).then(|| dot_unstuff(rest))
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

/// The same message as it was first carried in the run (by its user agent, or written by the
/// host that wrote a notice), if that was before the event at `index`: the first event that
/// carries a message with `message`'s `Message-ID:` field, octet for octet.
fn first_copy(events: &[TraceEvent], index: usize, message: &[u8]) -> Option<Vec<u8>> {
    let id_field = message_id_field(message)?;
    let finder = memchr::memmem::Finder::new(id_field);
    let earlier = events.get(..index)?;
    earlier.iter().enumerate().find_map(|(at, event)| {
        let bytes = match &event.event {
            Event::BounceCreated(created) => created.bytes.as_bytes(),
            Event::Transmitted {
                direction: Direction::ClientToServer,
                bytes,
                ..
            } if bytes.as_bytes().ends_with(DATA_END) => bytes.as_bytes(),
            _ => return None,
        };
        finder.find(bytes)?;
        message_carried(events, at).filter(|copy| message_id_field(copy) == Some(id_field))
    })
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

    fn outlines_of(name: &str) -> Vec<(usize, Outline)> {
        let scenario = library::find(name).expect("a built-in");
        let trace = run(&scenario, scenario.seed).trace;
        (0..trace.events.len())
            .filter_map(|index| message_outline(&trace.events, index).map(|o| (index, o)))
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
        // Submission, relay, and the recipient's RETR.
        assert_eq!(outlines.len(), 3, "{outlines:#?}");
        let [(_, submitted), (_, relayed), (_, retrieved)] = &outlines[..] else {
            unreachable!()
        };
        // The user agent's own copy is the first: nothing to compare it with.
        assert!(!submitted.compared);
        assert!(submitted.fields.iter().any(|f| f.name == "Message-ID"));
        assert_eq!(added(relayed), ["Received"]);
        assert!(relayed.fields[0].value.contains("by mail.sender.test"));
        // At delivery: the MDA's Return-Path and Delivered-To, the receiving server's Received.
        let at_delivery = added(retrieved);
        assert_eq!(at_delivery.first().map(String::as_str), Some("Return-Path"));
        assert_eq!(at_delivery.iter().filter(|n| *n == "Received").count(), 2);
        assert!(retrieved.removed.is_empty() && relayed.removed.is_empty());
        // The body is the same MIME tree at every hop: a multipart with its attachments.
        assert!(submitted.parts[0].text.starts_with("multipart/mixed: "));
        assert_eq!(submitted.parts, retrieved.parts);
        let attachments = submitted
            .parts
            .iter()
            .filter(|part| part.depth == 1 && part.text.contains(", attachment \""))
            .count();
        assert!(attachments >= 3, "{:#?}", submitted.parts);
        assert!(submitted
            .parts
            .iter()
            .filter(|p| p.text.contains(", attachment \""))
            .all(|p| p.text.contains(", base64, ") && p.text.ends_with(" decoded")));
    }

    #[test]
    fn a_bounce_is_outlined_where_it_is_written_and_as_it_travels() {
        let outlines = outlines_of("unknown-domain");
        let report = |outline: &Outline| {
            outline
                .parts
                .first()
                .is_some_and(|part| part.text.starts_with("multipart/report"))
        };
        let reports: Vec<&Outline> = outlines
            .iter()
            .map(|(_, o)| o)
            .filter(|o| report(o))
            .collect();
        assert!(reports.len() >= 2, "{outlines:#?}");
        // Written by the host, it has no earlier copy; later copies are compared with it.
        assert!(!reports[0].compared);
        assert!(reports[1..].iter().all(|o| o.compared));
        assert!(reports[0]
            .parts
            .iter()
            .any(|p| p.depth == 1 && p.text.starts_with("message/delivery-status")));
    }

    #[test]
    fn commands_replies_and_a_top_answer_carry_no_whole_message() {
        for name in ["pop3-commands", "pipelining", "chunking", "smtp-smuggling"] {
            let scenario = library::find(name).expect("a built-in");
            let trace = run(&scenario, scenario.seed).trace;
            for (index, event) in trace.events.iter().enumerate() {
                let Some(message) = message_carried(&trace.events, index) else {
                    continue;
                };
                // Whatever carries one carries a header section and is no command or reply.
                assert!(
                    !header_fields(&message).is_empty(),
                    "{name} #{index}: {event:?}"
                );
                if let Event::Transmitted { bytes, .. } = &event.event {
                    let first = bytes.as_bytes();
                    assert!(
                        !first.starts_with(b"MAIL ") && !first.starts_with(b"+OK top"),
                        "{name} #{index}"
                    );
                }
            }
        }
    }
}
