//! What a step means, for steps that are not server replies (those carry the server's own
//! explanation): client commands, DNS, queues, retries, bounces, delivery and POP3, each with
//! the RFC section that defines it. The texts are for students; the UI shows them beside the
//! trace.

use super::trace::{Direction, Event, Protocol, StateName};
use crate::smtp::client::ClientStateKind;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepNote {
    pub text: Cow<'static, str>,
    pub rfc: Cow<'static, str>,
}

const fn note(text: &'static str, rfc: &'static str) -> Option<StepNote> {
    Some(StepNote {
        text: Cow::Borrowed(text),
        rfc: Cow::Borrowed(rfc),
    })
}

/// The note for an event, if there is one. `protocol` is the protocol of the event's
/// connection, when it has one.
pub fn note_for(event: &Event, protocol: Option<Protocol>) -> Option<StepNote> {
    match event {
        Event::MessageComposed { .. } => note(
            "The user agent writes the message: header fields (From, To, Subject, Date, \
             Message-ID), an empty line, then the body. The envelope (MAIL FROM, RCPT TO) is \
             separate: Bcc recipients are only in the envelope.",
            "RFC 5322 3.6, RFC 5321 2.3.1",
        ),
        Event::ConnectionAttempted(attempt) if attempt.port == 587 => note(
            "A user agent submits mail to its own provider on port 587, where it must \
             authenticate before the server takes the message.",
            "RFC 6409 3.1, RFC 4954",
        ),
        Event::ConnectionAttempted(attempt) if attempt.protocol == Protocol::Pop3 => note(
            "The recipient's user agent connects to its mail server on port 110 to fetch the \
             mailbox with POP3.",
            "RFC 1939 3",
        ),
        Event::ConnectionAttempted { .. } => note(
            "A client opens a TCP connection to port 25 of the server; the server speaks first, \
             with a 220 greeting.",
            "RFC 5321 3.1",
        ),
        Event::ConnectionOpened { .. } => note(
            "The TCP connection is up. In SMTP and POP3 the server speaks first: the client \
             waits for its greeting before sending anything.",
            "RFC 5321 3.1, RFC 1939 4",
        ),
        Event::ClientState {
            to: StateName::SmtpClient(ClientStateKind::Idle),
            ..
        } => note(
            "The client has nothing more to send, but keeps the connection open a moment: \
             mail for the same server that comes now needs no new connection, greeting or \
             EHLO, just another MAIL. Real servers do this (Postfix's connection cache keeps \
             2 seconds); then the client says QUIT.",
            "RFC 5321 3.3, 4.1.1.10",
        ),
        Event::ClientState { .. } | Event::ServerState { .. } => note(
            "Each side of a session is a state machine, here named after what it expects \
             next. Commands are only valid in some states: MAIL after EHLO, RCPT after MAIL, \
             DATA after an accepted RCPT; anything else gets 503.",
            "RFC 5321 4.1.4",
        ),
        Event::ConnectionClosed { .. } => note(
            "The side that is done closes the connection, normally after QUIT and its reply.",
            "RFC 5321 4.1.1.10",
        ),
        Event::ConnectionRefused { .. } => note(
            "Nothing listens there (the host is down). For a mail server this is a temporary \
             problem: try the next MX host, or keep the message queued and retry later.",
            "RFC 5321 4.5.4.1, 5.1",
        ),
        Event::ConnectionTimedOut { .. } => note(
            "No answer at all. The client gives up on this host after a while and tries the \
             next MX host, or retries later.",
            "RFC 5321 4.5.3.2, 5.1",
        ),
        Event::ConnectionDropped { .. } => note(
            "The connection broke before the server confirmed the message with 250, so the \
             client must assume it was not delivered and send it again later.",
            "RFC 5321 4.1.1.4, 6.1",
        ),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } if protocol == Some(Protocol::Pop3) => pop3_command_note(bytes.as_bytes()),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } => smtp_command_note(bytes.as_bytes()),
        Event::DnsQuery { .. } => note(
            "To find where mail for a domain goes, the sending server asks DNS for the domain's \
             MX records, then for the addresses (A, AAAA) of the hosts they name.",
            "RFC 5321 5.1, RFC 1035",
        ),
        Event::DnsResponse { .. } => note(
            "The DNS answer. NXDOMAIN (no such domain) is permanent and the mail bounces; a \
             failure such as SERVFAIL is temporary and the mail waits in the queue.",
            "RFC 5321 5.1, RFC 1035 4.1.1",
        ),
        Event::MxResolved(resolved) if resolved.from_cache => note(
            "No DNS query this time: the server asked about this domain a short while ago and \
             keeps the answer for as long as its records' TTL allows.",
            "RFC 1035 3.2.1, RFC 2308 5, RFC 5321 5.1",
        ),
        Event::MxResolved { .. } => note(
            "The hosts to try, lowest preference first (equal preferences in random order). \
             With no MX record the domain itself is used; a single 'MX 0 .' means the domain \
             takes no mail.",
            "RFC 5321 5.1, RFC 7505",
        ),
        Event::MessageAccepted { .. } => note(
            "With its 250 reply after the data, this server has taken responsibility for the \
             message: from now on it must deliver it or bounce it, never lose it.",
            "RFC 5321 6.1",
        ),
        Event::Queued { .. } => note(
            "The message waits in this server's queue, one entry per destination domain, until \
             it is delivered, bounced, or given up on.",
            "RFC 5321 4.5.4.1",
        ),
        Event::AttemptStarted { .. } => note(
            "A delivery attempt: look up the MX hosts, then try them in order.",
            "RFC 5321 4.5.4.1, 5.1",
        ),
        Event::RecipientResult { .. } => note(
            "The outcome for one recipient: accepted, a temporary failure (4yz: retry later) or \
             a permanent failure (5yz: bounce to the sender).",
            "RFC 5321 4.2.1",
        ),
        Event::RetryScheduled { .. } => note(
            "A temporary failure: the message stays queued and is tried again later, at least \
             30 minutes apart (here doubling up to 4 hours).",
            "RFC 5321 4.5.4.1",
        ),
        Event::GaveUp { .. } => note(
            "The message has waited too long (4 to 5 days is usual): the server gives up and \
             tells the sender.",
            "RFC 5321 4.5.4.1",
        ),
        Event::BounceCreated { .. } => note(
            "A delivery status notification goes back to the envelope sender (the MAIL FROM \
             address, not the From: header), sent with the null reverse path MAIL FROM:<>.",
            "RFC 3464, RFC 5321 4.5.5",
        ),
        Event::BounceDiscarded { .. } => note(
            "This undeliverable message was itself a bounce (null reverse path). Bounces are \
             never bounced, or two servers could send them back and forth for ever.",
            "RFC 5321 4.5.5",
        ),
        Event::Delivered { .. } => note(
            "Final delivery: the MDA stores the message in the mailbox, adding Return-Path with \
             the envelope sender and Delivered-To.",
            "RFC 5321 4.4",
        ),
        Event::DeliveryRefused { .. } => note(
            "The MDA could not store the message (no such mailbox, or over quota). The server \
             already said 250, so it must now send a bounce.",
            "RFC 5321 6.1, RFC 3463 X.2.2",
        ),
        Event::MessageRetrieved { .. } => note(
            "RETR sends the whole message; lines starting with '.' get an extra dot, and a line \
             with only '.' ends it.",
            "RFC 1939 7",
        ),
        Event::MessagesLeft { .. } => note(
            "A user agent need not download everything the server lists: it may leave a message \
             it cannot take, or more than it fetches at once, in the maildrop. Nothing is lost; \
             the messages stay there.",
            "RFC 1939 5, 7",
        ),
        Event::FetchNotStarted { .. } => note(
            "The user agent could not even begin: USER and PASS each take one argument on one \
             line, so a user name with a space, a password with a control character or a line \
             over 255 octets cannot be sent. It did not connect, and the mailbox is unchanged.",
            "RFC 1939 7, RFC 2449 4",
        ),
        Event::MailboxUpdated { .. } => note(
            "Deletions happen only now, in the UPDATE state after QUIT; a dropped connection \
             would have deleted nothing.",
            "RFC 1939 6",
        ),
        _ => None,
    }
}

fn verb(line: &[u8]) -> String {
    let end = line
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b':')
        .unwrap_or(line.len());
    String::from_utf8_lossy(&line[..end]).to_ascii_uppercase()
}

fn smtp_command_note(bytes: &[u8]) -> Option<StepNote> {
    match verb(bytes).as_str() {
        "EHLO" => note(
            "EHLO names the client and asks which extensions the server offers (one per line \
             of the reply). An older server answers 500/502, and the client falls back to HELO.",
            "RFC 5321 4.1.1.1",
        ),
        "HELO" => note(
            "HELO starts a plain SMTP session without extensions.",
            "RFC 5321 4.1.1.1",
        ),
        "AUTH" => note(
            "AUTH PLAIN sends the user name and password, base64-encoded (not encrypted): \
             submission servers require it before they take mail.",
            "RFC 4954, RFC 4616",
        ),
        "MAIL" => note(
            "MAIL FROM starts a mail transaction and gives the reverse path, where bounces go. \
             With PIPELINING the client sends MAIL and every RCPT without waiting.",
            "RFC 5321 4.1.1.2, RFC 2920",
        ),
        "RCPT" => note(
            "RCPT TO names one recipient of the envelope; each gets its own reply.",
            "RFC 5321 4.1.1.3",
        ),
        "DATA" => note(
            "DATA asks to send the message itself; the client waits for 354 before sending it.",
            "RFC 5321 4.1.1.4",
        ),
        "QUIT" => note("QUIT ends the session.", "RFC 5321 4.1.1.10"),
        "RSET" => note(
            "RSET abandons the current mail transaction.",
            "RFC 5321 4.1.1.5",
        ),
        "BDAT" => note(
            "BDAT sends a chunk of exactly the given number of octets; no dot-stuffing.",
            "RFC 3030 2",
        ),
        _ => note(
            "The message data: header fields, an empty line, the body. Lines starting with '.' \
             get an extra dot, and a line with only '.' (CRLF . CRLF) ends the data.",
            "RFC 5321 4.5.2, 4.1.1.4",
        ),
    }
}

fn pop3_command_note(bytes: &[u8]) -> Option<StepNote> {
    match verb(bytes).as_str() {
        "USER" | "PASS" => note(
            "USER and PASS log in (AUTHORIZATION state); the password travels in clear unless \
             the connection is encrypted.",
            "RFC 1939 7",
        ),
        "STAT" | "LIST" => note(
            "STAT gives the number of messages and their total size; LIST gives each message's \
             size.",
            "RFC 1939 5",
        ),
        "UIDL" => note(
            "UIDL gives each message's unique id, so a client can tell which it has seen.",
            "RFC 1939 7",
        ),
        "RETR" => note("RETR asks for a whole message.", "RFC 1939 5"),
        "DELE" => note(
            "DELE marks a message for deletion; it is removed only after QUIT.",
            "RFC 1939 5",
        ),
        "QUIT" => note(
            "QUIT ends the session and lets the server delete what was marked (UPDATE state).",
            "RFC 1939 6",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::trace::WireBytes;

    fn sent(text: &str, protocol: Protocol) -> Option<StepNote> {
        note_for(
            &Event::Transmitted {
                conn: 1,
                direction: Direction::ClientToServer,
                bytes: WireBytes::from_bytes(text.as_bytes()),
            },
            Some(protocol),
        )
    }

    #[test]
    fn commands_are_explained_by_their_verb() {
        assert_eq!(
            sent("MAIL FROM:<a@b>\r\n", Protocol::Smtp).unwrap().rfc,
            "RFC 5321 4.1.1.2, RFC 2920"
        );
        assert_eq!(
            sent("rcpt to:<a@b>\r\n", Protocol::Smtp).unwrap().rfc,
            "RFC 5321 4.1.1.3"
        );
        assert!(sent("Subject: hi\r\n", Protocol::Smtp)
            .unwrap()
            .text
            .contains("extra dot"));
        assert_eq!(
            sent("RETR 1\r\n", Protocol::Pop3).unwrap().rfc,
            "RFC 1939 5"
        );
        assert!(sent("XYZZY\r\n", Protocol::Pop3).is_none());
    }

    #[test]
    fn an_idle_client_is_explained_as_a_kept_connection() {
        let state = |to| Event::ClientState {
            conn: 1,
            from: StateName::SmtpClient(ClientStateKind::ExpectDataReply),
            to: StateName::SmtpClient(to),
        };
        let idle = note_for(&state(ClientStateKind::Idle), Some(Protocol::Smtp)).unwrap();
        assert!(idle.text.contains("keeps the connection open"));
        let other = note_for(
            &state(ClientStateKind::ExpectMailReply),
            Some(Protocol::Smtp),
        );
        assert_eq!(other.unwrap().rfc, "RFC 5321 4.1.4");
    }
}
