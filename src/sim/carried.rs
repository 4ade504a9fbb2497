//! The message a step carries whole, for its outline in the details: a client's message data
//! after the server's 354 (RFC 5321 4.1.1.4), a client's last BDAT chunk with the chunks
//! before it (RFC 3030 2), a POP3 server's answer to RETR (RFC 1939 5), a notice a host writes
//! (RFC 3464), a message as the MDA stored it (RFC 5321 4.4), and, in part, a POP3 server's
//! answer to TOP (RFC 1939 7); and the message's original in
//! the run (as its sender sent it, or its host wrote it), found by its `Message-ID:` field
//! (RFC 5322 3.6.4), which every copy keeps, and its body, which no server changes, so that
//! the outline can say which fields the servers on the way added.

use super::notes::{earlier_on_connection, last_reply_is_354};
use super::trace::{ConnId, Direction, Event, TraceEvent};
use crate::mail::outline::{header_fields, outline, split_entity, Outline};
use crate::pop3::wire as pop3_wire;
use crate::smtp::command::bdat_with_chunk;
use crate::smtp::dot::{dot_unstuff, lines_inclusive};
use crate::smtp::trace::count_received_headers;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// The end of a message's data, and of a POP3 multi-line response.
const DATA_END: &[u8] = b"\r\n.\r\n";

/// How a step carries its message, which the outline's words depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A client's message data after the server's 354.
    Data,
    /// A client's last BDAT chunk (BDAT ... LAST), which completes the message that this
    /// many chunks, it among them, carry.
    Chunks(usize),
    /// A POP3 server's answer to RETR.
    Retrieved,
    /// A POP3 server's answer to TOP, which asked for the message's header and this many
    /// lines of its body (RFC 1939 7): the message whole only when its body is no longer.
    Top(u64),
    /// A message as the MDA stored it in a mailbox.
    Stored,
    /// A notice as the host that wrote it has it.
    Notice,
}

/// What a message's outline was compared with, which the words above its fields say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Earlier {
    /// The message's original: its user agent's data (with any `Received:` fields it was
    /// written with), another client's data without a `Received:` field, or a notice as its
    /// host wrote it.
    ThisIsTheOriginal,
    /// Compared with the original, earlier in the run: the fields not in it are marked.
    Compared,
    /// The message has no `Message-ID:` to find its original by.
    NoMessageId,
    /// No original with its Message-ID was carried before it (its submission server may have
    /// written the Message-ID, or its original went where no outline is made).
    NoOriginal,
    /// The original with its Message-ID has another body: another message uses the same
    /// Message-ID.
    OtherBody,
    /// A copy whose body is cut (a TOP answer) of a Message-ID that two messages of the run
    /// use: the start of a body cannot tell which it is.
    SharedId,
}

/// Where each message's original (by its `Message-ID:` field, octet for octet) is carried in
/// a run: made once per run, so that showing a step does not read the whole trace again.
#[derive(Debug, Default)]
pub struct FirstCopies {
    original: HashMap<Vec<u8>, usize>,
    /// For a Message-ID that originals of different bodies have (another message uses the
    /// same one), where the first such other original is carried. A copy whose body is cut
    /// (a TOP answer) after it cannot tell them apart.
    reused: HashMap<Vec<u8>, usize>,
}

impl FirstCopies {
    pub fn of(events: &[TraceEvent]) -> FirstCopies {
        let mut original: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut reused: HashMap<Vec<u8>, usize> = HashMap::new();
        // The connections whose server has offered CHUNKING so far, found in the same pass
        // rather than by a walk back along each connection for each message sent in chunks.
        let mut chunking_offered: HashSet<ConnId> = HashSet::new();
        // The connections a user agent opened, likewise.
        let mut user_agents: HashSet<&str> = HashSet::new();
        let mut from_user_agent: HashSet<ConnId> = HashSet::new();
        for (index, event) in events.iter().enumerate() {
            let mut conn_offers_chunking = false;
            let mut sent_by_user_agent = false;
            match &event.event {
                Event::MessageComposed(composed) => {
                    user_agents.insert(&composed.ua);
                }
                Event::ConnectionAttempted(attempted)
                    if user_agents.contains(&*attempted.client) =>
                {
                    from_user_agent.insert(attempted.conn);
                }
                Event::Transmitted {
                    conn,
                    direction,
                    bytes,
                } => {
                    if *direction == Direction::ServerToClient && offers_chunking(bytes.as_bytes())
                    {
                        chunking_offered.insert(*conn);
                    }
                    conn_offers_chunking = chunking_offered.contains(conn);
                    sent_by_user_agent = from_user_agent.contains(conn);
                }
                _ => {}
            }
            let Some((bytes, carried)) =
                carried_bytes_where(events, index, || conn_offers_chunking)
            else {
                continue;
            };
            // Fields are read the same with or without dot-stuffing: a dot before a field's
            // name only changes the name, and a continuation line starts with white space.
            if !is_original(&bytes, carried, sent_by_user_agent) {
                continue;
            }
            let Some(id) = message_id_field(&bytes) else {
                continue;
            };
            match original.get(id) {
                None => {
                    original.insert(id.to_vec(), index);
                }
                Some(&first) if !reused.contains_key(id) => {
                    // Compared as messages: without dot-stuffing and end line, as DATA and
                    // BDAT carry the same message differently.
                    let this = as_message(&bytes, carried);
                    let same_body = message_carried(events, first)
                        .is_some_and(|(first, _)| split_entity(&first).1 == split_entity(&this).1);
                    if !same_body {
                        reused.insert(id.to_vec(), index);
                    }
                }
                Some(_) => {}
            }
        }
        FirstCopies { original, reused }
    }
}

/// Whether bytes carried are a message's original: a notice, or data that its user agent
/// sent, or that no server has written a `Received:` field above (RFC 5321 4.4: each one
/// that takes it does). A user agent's message may hold `Received:` fields of its own (a
/// message written by hand, or sent on as it came): it is the original all the same.
fn is_original(message: &[u8], carried: Carried, sent_by_user_agent: bool) -> bool {
    match carried {
        Carried::Notice => true,
        Carried::Retrieved | Carried::Top(_) | Carried::Stored => false,
        Carried::Data | Carried::Chunks(_) => {
            sent_by_user_agent || count_received_headers(message) == 0
        }
    }
}

/// Whether the event at `index` was sent on a connection that a user agent of the run
/// opened: the client a `ConnectionAttempted` names is one that composed a message.
fn sent_by_user_agent(events: &[TraceEvent], index: usize) -> bool {
    let Some(Event::Transmitted { conn, .. }) = events.get(index).map(|event| &event.event) else {
        return false;
    };
    let mut earlier = events[..index].iter().rev().map(|event| &event.event);
    let Some(client) = earlier.find_map(|event| match event {
        Event::ConnectionAttempted(attempted) if attempted.conn == *conn => Some(&attempted.client),
        _ => None,
    }) else {
        return false;
    };
    // A user agent composes each message before it connects to submit it.
    earlier.any(|event| matches!(event, Event::MessageComposed(composed) if composed.ua == *client))
}

/// The outline of the message the event at `index` carries, compared with its original in
/// the run where there is one (see [`FirstCopies`], asked for only for a copy that is not an
/// original, as making it reads the whole trace), how the event carries it, and what it was
/// compared with; `None` for an event that carries no whole message.
pub fn message_outline<'a>(
    events: &[TraceEvent],
    index: usize,
    first_copies: impl FnOnce() -> &'a FirstCopies,
) -> Option<(Outline, Carried, Earlier)> {
    let (message, carried) = message_carried(events, index)?;
    let from_user_agent =
        matches!(carried, Carried::Data | Carried::Chunks(_)) && sent_by_user_agent(events, index);
    if is_original(&message, carried, from_user_agent) {
        return Some((outline(&message, None), carried, Earlier::ThisIsTheOriginal));
    }
    let uncompared = |earlier| Some((outlined(&message, None, carried), carried, earlier));
    let Some(id) = message_id_field(&message) else {
        return uncompared(Earlier::NoMessageId);
    };
    let first_copies = first_copies();
    // The start of a body cannot tell two messages of one Message-ID apart.
    let shared = first_copies
        .reused
        .get(id)
        .is_some_and(|&other| other < index);
    if matches!(carried, Carried::Top(_)) && shared {
        return uncompared(Earlier::SharedId);
    }
    let original = first_copies
        .original
        .get(id)
        .filter(|&&original| original < index)
        .and_then(|&original| message_carried(events, original));
    let Some((original, _)) = original else {
        return uncompared(Earlier::NoOriginal);
    };
    // The servers write fields above a message and take some out; its body they leave as it
    // is. Another body is another message; TOP sends the start of the same one.
    let (original_body, body) = (split_entity(&original).1, split_entity(&message).1);
    let same_body = match carried {
        Carried::Top(_) => original_body.starts_with(body),
        _ => original_body == body,
    };
    if !same_body {
        return uncompared(Earlier::OtherBody);
    }
    Some((
        outlined(&message, Some(&original), carried),
        carried,
        Earlier::Compared,
    ))
}

/// [`outline`], but for a TOP answer whose body may be cut short: its parts are not listed
/// (a part cut in two would be shown as if whole), unless the answer's body has fewer lines
/// than TOP asked for (RFC 1939 7) or is the first copy's whole body: then it is whole.
fn outlined(message: &[u8], first_copy: Option<&[u8]>, carried: Carried) -> Outline {
    let mut outlined = outline(message, first_copy);
    if let Carried::Top(lines_asked) = carried {
        // A message with no empty line after its fields has no body: TOP sends it all.
        let whole = match pop3_wire::header_section_end(message) {
            None => true,
            Some(body_start) => {
                pop3_wire::line_count(&message[body_start..]) < lines_asked
                    || first_copy
                        .is_some_and(|first| split_entity(first).1 == split_entity(message).1)
            }
        };
        if !whole {
            outlined.parts.clear();
            outlined.parts_left_out = 0;
            outlined.disposed = false;
            outlined.body_cut = true;
        }
    }
    outlined
}

/// The message (without dot-stuffing and end line) that the event at `index` carries whole,
/// and how.
pub fn message_carried(events: &[TraceEvent], index: usize) -> Option<(Vec<u8>, Carried)> {
    let (bytes, carried) = carried_bytes(events, index)?;
    Some((as_message(&bytes, carried).into_owned(), carried))
}

/// The message in bytes carried as `carried` says: without the dot-stuffing and end line of
/// data and of a POP3 answer.
fn as_message(bytes: &[u8], carried: Carried) -> Cow<'_, [u8]> {
    match carried {
        Carried::Notice | Carried::Chunks(_) | Carried::Stored => Cow::Borrowed(bytes),
        Carried::Data | Carried::Retrieved | Carried::Top(_) => Cow::Owned(dot_unstuff(bytes)),
    }
}

/// The bytes of the message the event at `index` carries whole, as they went (dot-stuffed
/// but for a notice, chunks and a stored message, with the end line after data), and how.
fn carried_bytes(events: &[TraceEvent], index: usize) -> Option<(Cow<'_, [u8]>, Carried)> {
    carried_bytes_where(events, index, || {
        earlier_on_connection(events, index).any(|(direction, sent)| {
            direction == Direction::ServerToClient && offers_chunking(sent)
        })
    })
    .or_else(|| top_answer(events, index))
}

/// A POP3 server's answer to TOP at `index`: "+OK", then the message's header and the first
/// lines of its body, dot-stuffed, ended by a dot alone (RFC 1939 7). No original is ever one,
/// so the index of originals ([`FirstCopies`]) never looks for these.
fn top_answer(events: &[TraceEvent], index: usize) -> Option<(Cow<'_, [u8]>, Carried)> {
    let Event::Transmitted {
        direction: Direction::ServerToClient,
        bytes,
        ..
    } = &events.get(index)?.event
    else {
        return None;
    };
    let (_, rest) = positive_multi_line(bytes.as_bytes())?;
    let lines_asked = top_lines_asked(events, index)?;
    Some((Cow::Borrowed(rest), Carried::Top(lines_asked)))
}

/// A POP3 server's positive multi-line answer (RFC 1939 3): its status line (`+OK ...`,
/// without its CRLF) and what follows, ended by a dot alone.
fn positive_multi_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let status_end = memchr::memchr(b'\n', bytes)? + 1;
    let status = bytes[..status_end].strip_suffix(b"\r\n")?;
    let rest = &bytes[status_end..];
    let ended = rest.ends_with(DATA_END) || rest == b".\r\n";
    (status.starts_with(b"+OK") && ended).then_some((status, rest))
}

/// How many body lines the TOP command that the POP3 server's send at `index` answers asked
/// for, if it answers one. A POP3 server answers each line its client sends, ended by CRLF,
/// with one response, in the order the lines came, after its greeting (RFC 1939 3; RFC 2449
/// 6.6, a client that pipelines); this simulation's server writes each response in a send of
/// its own. So the answer is paired with its command by counting, from the connection's start.
fn top_lines_asked(events: &[TraceEvent], index: usize) -> Option<u64> {
    let Event::Transmitted { conn, .. } = &events.get(index)?.event else {
        return None;
    };
    let mut responses_before = 0usize;
    let mut client_sends = Vec::new();
    for event in events[..index].iter().rev() {
        match &event.event {
            Event::ConnectionAttempted(attempted) if attempted.conn == *conn => break,
            Event::Transmitted {
                conn: on,
                direction,
                bytes,
            } if on == conn => match direction {
                Direction::ServerToClient => responses_before += 1,
                Direction::ClientToServer => client_sends.push(bytes.as_bytes()),
            },
            _ => {}
        }
    }
    // The greeting answers no line.
    let lines_answered_before = responses_before.checked_sub(1)?;
    let sent: Vec<u8> = client_sends.into_iter().rev().flatten().copied().collect();
    // The server's lines end at CRLF only (a bare LF is part of a line).
    let mut rest = sent.as_slice();
    for _ in 0..lines_answered_before {
        let end = memchr::memmem::find(rest, b"\r\n")?;
        rest = &rest[end + 2..];
    }
    let command = &rest[..memchr::memmem::find(rest, b"\r\n")?];
    let command = std::str::from_utf8(command).ok()?;
    let mut words = command.split(' ');
    let keyword = words.next()?;
    let (_, count) = (words.next()?, words.next()?);
    if !keyword.eq_ignore_ascii_case("TOP") || words.next().is_some() {
        return None;
    }
    crate::pop3::server::parse_decimal(count)
}

/// [`carried_bytes`], told by `chunking_offered` whether the event's server offered CHUNKING
/// before it on its connection (asked only of a last BDAT chunk).
fn carried_bytes_where(
    events: &[TraceEvent],
    index: usize,
    chunking_offered: impl FnOnce() -> bool,
) -> Option<(Cow<'_, [u8]>, Carried)> {
    match &events.get(index)?.event {
        Event::BounceCreated(created) => {
            Some((Cow::Borrowed(created.bytes.as_bytes()), Carried::Notice))
        }
        Event::Delivered(delivered) => {
            Some((Cow::Borrowed(delivered.stored.as_bytes()), Carried::Stored))
        }
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } => {
            let bytes = bytes.as_bytes();
            if let Some((last_chunk, true)) = bdat_with_chunk(bytes) {
                // A client may send BDAT only to a server that offered CHUNKING (RFC 3030 2):
                // to any other, its octets are no message.
                if !chunking_offered() {
                    return None;
                }
                let chunks = chunks_before(events, index)?;
                let count = chunks.len() + 1;
                let in_order: Vec<&[u8]> = chunks.into_iter().rev().chain([last_chunk]).collect();
                let message = in_order.concat();
                return Some((Cow::Owned(message), Carried::Chunks(count)));
            }
            // The data comes in the client's first send after the server's 354, whole: the
            // trace records each write whole, also one a broken link then cuts on its way
            // (what was sent is shown). Data with commands pipelined after it is not taken
            // for one message.
            let after_354 = bytes.ends_with(DATA_END)
                && earlier_on_connection(events, index)
                    .next()
                    .is_some_and(|(direction, sent)| {
                        direction == Direction::ServerToClient && last_reply_is_354(sent)
                    });
            after_354.then_some((Cow::Borrowed(bytes), Carried::Data))
        }
        Event::Transmitted {
            direction: Direction::ServerToClient,
            bytes,
            ..
        } => {
            // A RETR's answer: "+OK <size> octets", then the message (RFC 1939 5). TOP's
            // holds only part of one, and says so.
            let (status, rest) = positive_multi_line(bytes.as_bytes())?;
            let size = status.strip_prefix(b"+OK ")?.strip_suffix(b" octets")?;
            let is_retr = !size.is_empty() && size.iter().all(u8::is_ascii_digit);
            is_retr.then_some((Cow::Borrowed(rest), Carried::Retrieved))
        }
        _ => None,
    }
}

/// Whether a server's send holds an EHLO reply's line that offers CHUNKING (RFC 3030 2, RFC
/// 5321 4.1.1.1: `250-CHUNKING` or `250 CHUNKING`).
fn offers_chunking(sent: &[u8]) -> bool {
    lines_inclusive(sent).any(|line| {
        let line = line.strip_suffix(b"\r\n").unwrap_or(line);
        line.len() == 12
            && line.starts_with(b"250")
            && matches!(line[3], b'-' | b' ')
            && line[4..].eq_ignore_ascii_case(b"CHUNKING")
    })
}

/// The chunks of the message whose last chunk the client sent at `index`, that it sent before
/// that one, the latest first: its BDAT writes back along the connection (each a command and
/// its chunk, RFC 3030 2) to the send before the first of them (its MAIL and RCPT commands,
/// say), or to the last chunk of the message before. `None` when that send holds a BDAT
/// command too (a chunk pipelined in one write with other commands), whose chunk cannot be
/// told from the commands: the message is not known whole then.
fn chunks_before(events: &[TraceEvent], index: usize) -> Option<Vec<&[u8]>> {
    let mut chunks = Vec::new();
    for (direction, bytes) in earlier_on_connection(events, index) {
        if direction != Direction::ClientToServer {
            continue;
        }
        match bdat_with_chunk(bytes) {
            Some((chunk, false)) => chunks.push(chunk),
            // The message before this one ended there.
            Some((_, true)) => break,
            None => {
                let holds_bdat = lines_inclusive(bytes).any(|line| {
                    line.get(..5)
                        .is_some_and(|verb| verb.eq_ignore_ascii_case(b"BDAT "))
                });
                if holds_bdat {
                    return None;
                }
                break;
            }
        }
    }
    Some(chunks)
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
    use crate::sim::{library, run, Scenario};

    fn outlines_of(name: &str) -> Vec<(usize, Outline, Carried)> {
        outlines_with_earlier(&library::find(name).expect("a built-in"))
            .into_iter()
            .map(|(index, outline, carried, _)| (index, outline, carried))
            .collect()
    }

    fn outlines_with_earlier(scenario: &Scenario) -> Vec<(usize, Outline, Carried, Earlier)> {
        let trace = run(scenario, scenario.seed).trace;
        let first_copies = FirstCopies::of(&trace.events);
        (0..trace.events.len())
            .filter_map(|index| {
                let (outline, carried, earlier) =
                    message_outline(&trace.events, index, || &first_copies)?;
                Some((index, outline, carried, earlier))
            })
            .collect()
    }

    /// `basic-delivery` with its message written by hand, as `raw`.
    fn basic_delivery_of(raw: &str) -> Scenario {
        let mut scenario = library::find("basic-delivery").expect("a built-in");
        scenario.messages[0].raw = Some(raw.to_string());
        scenario
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
        // Submission, relay, the MDA's copy, and the recipient's RETR.
        assert_eq!(
            carried,
            [
                Carried::Data,
                Carried::Data,
                Carried::Stored,
                Carried::Retrieved
            ],
            "{outlines:#?}"
        );
        let [(_, submitted, _), (_, relayed, _), (_, stored, _), (_, retrieved, _)] = &outlines[..]
        else {
            unreachable!()
        };
        // What RETR sends is what the MDA stored.
        assert_eq!(stored, retrieved);
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
    fn a_message_sent_in_bdat_chunks_is_outlined_whole_at_its_last_chunk() {
        let outlines = outlines_of("chunking");
        let carried: Vec<Carried> = outlines.iter().map(|(_, _, carried)| *carried).collect();
        // Submitted with DATA; relayed in three chunks to one server and stored, with DATA
        // to the other and stored; retrieved.
        assert_eq!(
            carried,
            [
                Carried::Data,
                Carried::Chunks(3),
                Carried::Stored,
                Carried::Data,
                Carried::Stored,
                Carried::Retrieved
            ],
            "{outlines:#?}"
        );
        let scenario = library::find("chunking").expect("a built-in");
        let trace = run(&scenario, scenario.seed).trace;
        let message = |position: usize| message_carried(&trace.events, outlines[position].0);
        // The chunks put together are the message the other server had with DATA, octet for
        // octet: its lone dot line as it is, nothing dot-stuffed.
        let (chunked, _) = message(1).expect("the chunks");
        let (with_data, _) = message(3).expect("the data");
        assert_eq!(chunked, with_data);
        assert!(chunked.windows(5).any(|w| w == b"\r\n.\r\n"));
        let (_, chunked_outline, _) = &outlines[1];
        assert!(chunked_outline.compared);
        assert_eq!(added(chunked_outline), ["Received"]);
        assert_eq!(chunked_outline, &outlines[3].1);
        // The earlier chunks carry no whole message.
        let chunk_writes = trace
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| {
                matches!(&event.event, Event::Transmitted { bytes, .. }
                    if bytes.as_bytes().starts_with(b"BDAT "))
            })
            .map(|(index, _)| message_carried(&trace.events, index).is_some())
            .collect::<Vec<bool>>();
        assert_eq!(chunk_writes, [false, false, true]);
    }

    /// A connection's sends, the client's and the server's, as a trace holds them.
    fn sends(sends: &[(Direction, &[u8])]) -> Vec<TraceEvent> {
        let opened = TraceEvent {
            time_ms: 0,
            event: Event::ConnectionOpened { conn: 1 },
        };
        let sent = sends.iter().map(|&(direction, bytes)| TraceEvent {
            time_ms: 0,
            event: Event::Transmitted {
                conn: 1,
                direction,
                bytes: crate::sim::trace::WireBytes::from_bytes(bytes),
            },
        });
        std::iter::once(opened).chain(sent).collect()
    }

    #[test]
    fn chunks_are_put_together_only_back_to_the_send_before_the_first() {
        use Direction::{ClientToServer as C, ServerToClient as S};
        let message = |events: &[TraceEvent]| message_carried(events, events.len() - 1);
        let offered: (Direction, &[u8]) = (S, b"250-mx.d.test\r\n250 CHUNKING\r\n");
        let commands: &[u8] = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n";
        let answered: &[u8] = b"250 OK\r\n250 OK\r\n";
        // Two chunks, the first answered before the last went.
        let two = sends(&[
            offered,
            (C, commands),
            (S, answered),
            (C, b"BDAT 11\r\nSubject: x\r"),
            (S, b"250 2.0.0 11 octets received\r\n"),
            (C, b"BDAT 8 LAST\r\n\n\r\nHello"),
        ]);
        let (whole, carried) = message(&two).expect("a message");
        assert_eq!(carried, Carried::Chunks(2));
        assert_eq!(whole, b"Subject: x\r\n\r\nHello");
        // A second message on the connection starts after the first one's last chunk.
        let mut again = two.clone();
        again.extend(sends(&[(C, b"BDAT 3 LAST\r\nHi!")]).into_iter().skip(1));
        assert_eq!(message(&again), Some((b"Hi!".to_vec(), Carried::Chunks(1))));
        // A first chunk pipelined in one write with the commands cannot be told from them:
        // the message is not known whole.
        let pipelined = sends(&[
            offered,
            (C, b"MAIL FROM:<a@b.test>\r\nBDAT 11\r\nSubject: x\r"),
            (C, b"BDAT 8 LAST\r\n\n\r\nHello"),
        ]);
        assert_eq!(message(&pipelined), None);
        assert!(message_carried(&pipelined, pipelined.len() - 1).is_none());
        // Nor is a write whose BDAT count is not the octets after it a chunk.
        let miscounted = sends(&[offered, (C, commands), (C, b"BDAT 99 LAST\r\nHello")]);
        assert_eq!(message(&miscounted), None);
        // A client may send BDAT only where the server offered CHUNKING (RFC 3030 2): to any
        // other server (or to a POP3 server), a chunk is no message.
        let not_offered = sends(&[
            (S, b"250-mx.d.test\r\n250 PIPELINING\r\n"),
            (C, commands),
            (C, b"BDAT 5 LAST\r\nHello"),
        ]);
        assert_eq!(message(&not_offered), None);
        let offered_again = sends(&[offered, (C, commands), (C, b"BDAT 5 LAST\r\nHello")]);
        assert_eq!(
            message(&offered_again),
            Some((b"Hello".to_vec(), Carried::Chunks(1)))
        );
        // The index of originals, made in one pass, tells the same: a message sent in chunks
        // with no Received: field is an original only where CHUNKING was offered.
        let original: &[u8] = b"BDAT 23 LAST\r\nMessage-ID: <a@b>\r\n\r\nHi";
        let indexed = |events: &[TraceEvent]| FirstCopies::of(events).original.len();
        assert_eq!(indexed(&sends(&[offered, (C, commands), (C, original)])), 1);
        let not_offered = sends(&[(S, b"250 PIPELINING\r\n"), (C, commands), (C, original)]);
        assert_eq!(indexed(&not_offered), 0);
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
            [Carried::Notice, Carried::Stored, Carried::Retrieved],
            "{outlines:#?}"
        );
        // Written by the host, it has no earlier copy; stored and read, it is compared with
        // it: the MDA wrote two fields above it.
        assert!(!reports[0].0.compared);
        assert!(reports[1].0.compared);
        assert_eq!(added(reports[1].0), ["Return-Path", "Delivered-To"]);
        assert_eq!(reports[1].0, reports[2].0);
        assert!(reports[0]
            .0
            .parts
            .iter()
            .any(|p| p.depth == 1 && p.text.starts_with("message/delivery-status")));
    }

    #[test]
    fn what_each_copy_is_compared_with_is_told() {
        let earlier = |scenario: &Scenario| -> Vec<(Carried, Earlier)> {
            outlines_with_earlier(scenario)
                .into_iter()
                .map(|(_, _, carried, earlier)| (carried, earlier))
                .collect()
        };
        let sent = (Carried::Data, Earlier::ThisIsTheOriginal);
        // A user agent's message with a Message-ID: submitted, relayed, retrieved.
        let with_id = basic_delivery_of(
            "From: alice@sender.test\r\nTo: bob@receiver.test\r\nMessage-ID: <x@sender.test>\r\n\
             Subject: Hi\r\n\r\nHello\r\n",
        );
        let compared = [
            sent,
            (Carried::Data, Earlier::Compared),
            (Carried::Stored, Earlier::Compared),
            (Carried::Retrieved, Earlier::Compared),
        ];
        assert_eq!(earlier(&with_id), compared);
        // A message written with Received: fields of its own (a real one pasted in): the user
        // agent's copy is still the original, and only the servers' fields are added.
        let pasted = basic_delivery_of(
            "Received: from elsewhere.test by old.test; Mon, 31 Aug 2026 08:00:00 +0000\r\n\
             From: alice@sender.test\r\nTo: bob@receiver.test\r\nMessage-ID: <x@sender.test>\r\n\
             Subject: Hi\r\n\r\nHello\r\n",
        );
        assert_eq!(earlier(&pasted), compared);
        let stored = outlines_with_earlier(&pasted)
            .into_iter()
            .find(|(_, _, carried, _)| *carried == Carried::Stored)
            .expect("stored");
        let added: Vec<&str> = stored
            .1
            .fields
            .iter()
            .filter(|field| field.added)
            .map(|field| field.name.as_str())
            .collect();
        // The submission server wrote the Date: the message had none (RFC 6409 8.2).
        assert_eq!(
            added,
            [
                "Return-Path",
                "Received",
                "Delivered-To",
                "Received",
                "Date"
            ]
        );
        // Without one, the submission server writes it: the copies after it have no
        // original with that Message-ID.
        let without_id = basic_delivery_of(
            "From: alice@sender.test\r\nTo: bob@receiver.test\r\nSubject: Hi\r\n\r\nHello\r\n",
        );
        let unknown = [
            sent,
            (Carried::Data, Earlier::NoOriginal),
            (Carried::Stored, Earlier::NoOriginal),
            (Carried::Retrieved, Earlier::NoOriginal),
        ];
        assert_eq!(earlier(&without_id), unknown);
        // Two messages of one Message-ID and different bodies, the second an hour later
        // (after the recipient's fetch): the second is not compared with the first.
        let mut two = with_id.clone();
        let mut second = two.messages[0].clone();
        second.raw = second.raw.map(|raw| raw.replace("Hello", "Goodbye"));
        second.at_s += 3600;
        two.messages.push(second.clone());
        let outlines = earlier(&two);
        assert_eq!(outlines[..4], compared);
        assert_eq!(
            outlines[4..],
            [
                sent,
                (Carried::Data, Earlier::OtherBody),
                (Carried::Stored, Earlier::OtherBody)
            ]
        );
        // The same body again is the same message sent twice: compared.
        let mut twice = with_id.clone();
        second.raw.clone_from(&twice.messages[0].raw);
        twice.messages.push(second);
        let outlines = earlier(&twice);
        assert_eq!(
            outlines[4..],
            [
                sent,
                (Carried::Data, Earlier::Compared),
                (Carried::Stored, Earlier::Compared)
            ]
        );
    }

    #[test]
    fn a_top_answer_is_outlined_as_the_header_and_the_first_lines_it_holds() {
        let scenario = library::find("pop3-commands").expect("a built-in");
        let trace = run(&scenario, scenario.seed).trace;
        let stored: Vec<&[u8]> = trace
            .events
            .iter()
            .filter_map(|event| match &event.event {
                Event::Delivered(delivered) => Some(delivered.stored.as_bytes()),
                _ => None,
            })
            .collect();
        let first_copies = FirstCopies::of(&trace.events);
        let mut tops = Vec::new();
        for index in 0..trace.events.len() {
            let Some((message, Carried::Top(lines))) = message_carried(&trace.events, index) else {
                continue;
            };
            let (outline, _, earlier) =
                message_outline(&trace.events, index, || &first_copies).expect("outlined");
            tops.push((lines, message, outline, earlier));
        }
        // TOP 1 0 and TOP 2 3 (RFC 1939 7), in the order the client wrote them.
        assert_eq!(
            tops.iter().map(|(lines, ..)| *lines).collect::<Vec<_>>(),
            [0, 3]
        );
        for ((lines, message, outline, earlier), stored) in tops.iter().zip(&stored) {
            // The start of the message as stored: its whole header, then as many body
            // lines as asked for.
            assert!(stored.starts_with(message), "TOP {lines}");
            let (header, body) = split_entity(message);
            assert_eq!(header, split_entity(stored).0);
            assert_eq!(pop3_wire::line_count(body), *lines);
            // Compared with the message as first sent, though only its start came.
            assert_eq!(*earlier, Earlier::Compared);
            assert_eq!(outline.added(), 4, "TOP {lines}");
            // The body is cut, so no part is listed as if it were whole.
            assert!(outline.body_cut && outline.parts.is_empty(), "TOP {lines}");
            assert_eq!(outline.octets, message.len());
        }
    }

    #[test]
    fn a_top_answer_is_told_by_the_command_it_answers_counted_from_the_greeting() {
        let answer = b"+OK top of message follows\r\nSubject: x\r\n\r\na\r\nb\r\n.\r\n".as_slice();
        let carried = |client: &[u8], responses: usize| {
            let mut sent = vec![(Direction::ServerToClient, b"+OK ready\r\n".as_slice())];
            sent.push((Direction::ClientToServer, client));
            sent.extend((0..responses).map(|_| (Direction::ServerToClient, b"+OK\r\n".as_slice())));
            sent.push((Direction::ServerToClient, answer));
            let events = sends(&sent);
            message_carried(&events, events.len() - 1).map(|(message, how)| (how, message))
        };
        // Two commands answered before it: the third line is TOP's.
        let (how, message) = carried(b"USER a\r\nPASS b\r\nTOP 1 2\r\n", 2).expect("TOP");
        assert_eq!(how, Carried::Top(2));
        assert_eq!(message, b"Subject: x\r\n\r\na\r\nb\r\n");
        // Any case, and a count past 64 bits is "all" as the server reads it.
        assert_eq!(
            carried(b"USER a\r\nPASS b\r\ntop 1 99999999999999999999\r\n", 2).map(|(how, _)| how),
            Some(Carried::Top(u64::MAX))
        );
        // The answer to another multi-line command is none.
        assert_eq!(carried(b"USER a\r\nPASS b\r\nLIST\r\n", 2), None);
        // Counted wrong by one either way: the line answered is not TOP's.
        assert_eq!(carried(b"USER a\r\nPASS b\r\nTOP 1 2\r\n", 1), None);
        assert_eq!(carried(b"USER a\r\nPASS b\r\nTOP 1 2\r\n", 3), None);
        // A bare LF ends no line for the server: "USER a\nPASS b" is one line to it.
        assert_eq!(
            carried(b"USER a\nPASS b\r\nTOP 1 2\r\n", 1).map(|(how, _)| how),
            Some(Carried::Top(2))
        );
        // A line not yet ended, or a TOP without its count, is no TOP.
        assert_eq!(carried(b"USER a\r\nPASS b\r\nTOP 1 2", 2), None);
        assert_eq!(carried(b"USER a\r\nPASS b\r\nTOP 1\r\n", 2), None);
        assert_eq!(carried(b"USER a\r\nPASS b\r\nTOP 1 2 3\r\n", 2), None);
        // A refusal is no answer to outline.
        let events = sends(&[
            (Direction::ServerToClient, b"+OK ready\r\n"),
            (Direction::ClientToServer, b"TOP 9 1\r\n"),
            (Direction::ServerToClient, b"-ERR no such message\r\n"),
        ]);
        assert_eq!(message_carried(&events, events.len() - 1), None);
    }

    #[test]
    fn a_top_answer_with_fewer_body_lines_than_asked_is_the_whole_message() {
        // The body has two lines and TOP asked for five: all of it came, so its parts are
        // listed; asked for two, it may be cut.
        let answer =
            b"+OK\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--\r\n.\r\n";
        let outlined = |command: &[u8]| {
            let events = sends(&[
                (Direction::ServerToClient, b"+OK ready\r\n".as_slice()),
                (Direction::ClientToServer, command),
                (Direction::ServerToClient, answer),
            ]);
            let first_copies = FirstCopies::default();
            message_outline(&events, events.len() - 1, || &first_copies)
                .map(|(outline, ..)| outline)
        };
        let whole = outlined(b"TOP 1 5\r\n").expect("outlined");
        assert!(!whole.body_cut);
        assert_eq!(whole.body_summary(), "multipart/mixed, 1 part");
        let cut = outlined(b"TOP 1 2\r\n").expect("outlined");
        assert!(cut.body_cut && cut.parts.is_empty());
        assert_eq!(cut.body_summary(), "");
    }

    #[test]
    fn a_top_answer_is_not_compared_where_two_messages_share_its_message_id() {
        let on = |conn, direction, bytes: &[u8]| TraceEvent {
            time_ms: 0,
            event: Event::Transmitted {
                conn,
                direction,
                bytes: crate::sim::trace::WireBytes::from_bytes(bytes),
            },
        };
        let (to_server, to_client) = (Direction::ClientToServer, Direction::ServerToClient);
        let submitted = |conn, subject_and_body: &[u8]| {
            let data = [
                b"Message-ID: <same@x.test>\r\n".as_slice(),
                subject_and_body,
                b".\r\n",
            ]
            .concat();
            [
                on(conn, to_client, b"354 go on\r\n"),
                on(conn, to_server, &data),
            ]
        };
        // A reader's TOP 1 0 and its answer, on a connection of its own.
        let top_session = || {
            [
                on(3, to_client, b"+OK ready\r\n"),
                on(3, to_server, b"TOP 1 0\r\n"),
                on(
                    3,
                    to_client,
                    b"+OK\r\nReceived: by x.test\r\nMessage-ID: <same@x.test>\r\n\r\n.\r\n",
                ),
            ]
        };
        let top_of = |bodies: [&[u8]; 2]| {
            let mut events: Vec<TraceEvent> = submitted(1, bodies[0]).into_iter().collect();
            events.extend(submitted(2, bodies[1]));
            events.extend(top_session());
            let first_copies = FirstCopies::of(&events);
            message_outline(&events, events.len() - 1, || &first_copies)
                .map(|(outline, _, earlier)| (earlier, outline.body_cut))
        };
        // One message sent twice: the TOP answer is compared with it.
        assert_eq!(
            top_of([b"\r\nA\r\n", b"\r\nA\r\n"]),
            Some((Earlier::Compared, true))
        );
        // Two messages of one Message-ID: the empty start of a body matches both, so neither.
        assert_eq!(
            top_of([b"\r\nA\r\n", b"\r\nB\r\n"]),
            Some((Earlier::SharedId, true))
        );
        // The other message sent only after the TOP answer: no doubt yet which it is.
        let mut events: Vec<TraceEvent> = submitted(1, b"\r\nA\r\n").into_iter().collect();
        events.extend(top_session());
        let top = events.len() - 1;
        events.extend(submitted(2, b"\r\nB\r\n"));
        let first_copies = FirstCopies::of(&events);
        assert_eq!(
            message_outline(&events, top, || &first_copies).map(|(_, _, earlier)| earlier),
            Some(Earlier::Compared)
        );
        // The same message sent with DATA (its dots stuffed, an end line) and in one BDAT
        // chunk (as it is): the same body, once read as a message.
        let mut events: Vec<TraceEvent> = submitted(1, b"\r\n..A\r\n").into_iter().collect();
        events.extend([
            on(2, to_client, b"250-x.test\r\n250 CHUNKING\r\n"),
            on(
                2,
                to_server,
                b"BDAT 33 LAST\r\nMessage-ID: <same@x.test>\r\n\r\n.A\r\n",
            ),
        ]);
        events.extend(top_session());
        assert!(matches!(
            message_carried(&events, 3),
            Some((_, Carried::Chunks(1)))
        ));
        let first_copies = FirstCopies::of(&events);
        assert_eq!(
            message_outline(&events, events.len() - 1, || &first_copies)
                .map(|(_, _, earlier)| earlier),
            Some(Earlier::Compared)
        );
    }

    #[test]
    fn a_top_answer_of_a_message_without_a_body_is_the_whole_message() {
        let events = sends(&[
            (Direction::ServerToClient, b"+OK ready\r\n"),
            (Direction::ClientToServer, b"TOP 1 0\r\n"),
            (
                Direction::ServerToClient,
                b"+OK\r\nSubject: header only\r\nMIME-Version: 1.0\r\n.\r\n",
            ),
        ]);
        let first_copies = FirstCopies::default();
        let (outline, carried, _) =
            message_outline(&events, events.len() - 1, || &first_copies).expect("outlined");
        assert_eq!(carried, Carried::Top(0));
        assert!(!outline.body_cut);
        assert_eq!(outline.body_summary(), "text/plain");
    }

    #[test]
    fn commands_and_replies_carry_no_whole_message() {
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
                let Some((message, how)) = message_carried(&trace.events, index) else {
                    assert!(!is_top, "{name} #{index}");
                    continue;
                };
                // A TOP answer carries part of one (tested below).
                assert_eq!(is_top, matches!(how, Carried::Top(_)), "{name} #{index}");
                if is_top {
                    continue;
                }
                carried += 1;
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
