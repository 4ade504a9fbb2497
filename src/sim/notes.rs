//! What a step means, for steps that are not server replies (those carry the server's own
//! explanation): client commands, DNS, queues, retries, bounces, delivery and POP3, each with
//! the RFC section that defines it. The texts are for students; the UI shows them beside the
//! trace.

use super::scenario::StallPoint;
use super::trace::{
    format_time, run_was_cut, ChunkStart, ConnId, Direction, EntryId, Event, GaveUp, MxResolved,
    Protocol, RecipientResult, RetryScheduled, StateName, TargetSkipped, TraceEvent,
    PERMANENT_FAILURE, TEMPORARY_FAILURE, USER_AGENT_PREFIX, WILL_RETRY,
};
use crate::dns::world::Outcome as DnsOutcome;
use crate::dns::RecordType;
use crate::smtp::client::{ClientStateKind, ServerExtensions};
use crate::smtp::command::{bdat_with_chunk, parse_command, Command};
use crate::smtp::dsn_params::Notify;
use crate::smtp::reply::ReplyReader;
use crate::smtp::server::ServerStateKind;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

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

// Parts of the notes for a retry, a skipped address and giving up, which a step shown
// tells with its own times (see [`in_context`]) and a step's stored note without them.

/// How waits between attempts go, after what a retry's note says of this one.
macro_rules! retry_rules {
    () => {
        "RFC 5321 says the wait should in general be at least 30 minutes. The sending host \
         waits its first retry interval after a first failed attempt, then doubles each wait \
         up to its longest (30 minutes and 3 hours unless the scenario sets others). A wait \
         that would go past the give-up time ends there instead, but is never shorter than \
         the first, so the last attempt may come up to one first interval after it. The wait \
         counts from now, the end of this attempt, not from its start, and an attempt may \
         take a while: a host that does not answer at all is waited for (30 seconds by \
         default), and a reply that does not come is waited for up to its time limit (2 to \
         10 minutes)."
    };
}

/// What an MX host of the domain does with the domain's MX records (RFC 5321 5.1), for its
/// resolution's note, fresh or from the cache.
macro_rules! own_level_dropped {
    () => {
        "This host is itself one of the domain's MX hosts, so it sends the mail on only to more \
         preferred ones (a lower preference): it drops its own level and every less preferred \
         one, so that the mail never comes back to itself or moves further from its \
         destination. The hosts left are tried lowest preference first."
    };
}

/// What a message does when an address is skipped, after when the address may be tried.
macro_rules! skipped_rest {
    () => {
        "this one goes on to the next MX host, or waits in the queue (or, once it has been \
         queued for its give-up time, bounces, or is dropped if it is itself a notice). \
         Postfix calls this \"delivery temporarily suspended\"; Exim keeps a retry time per \
         host."
    };
}

/// What giving up does, after how long the message was queued.
macro_rules! gave_up_rest {
    () => {
        "the server stops trying and tells the sender. The notice says it gave up and gives \
         each recipient's last failure with its code and status: RFC 3463 asks for the code \
         of the actual problem rather than X.4.7, delivery time expired."
    };
}

/// The note for an MX resolution that left no host to try, told by the failure its result
/// begins with (the texts of `MxOutcome::failure`).
fn mx_failure_note(result: &str) -> Option<StepNote> {
    use crate::dns::resolver::failure_text;
    if result.starts_with(failure_text::TEMPORARY) {
        if result.contains(WILL_RETRY) {
            note(
                "DNS could not answer for now (SERVFAIL, or no answer in time, to the MX query or \
                 to the address lookups of every MX host that could have an address). That \
                 says nothing about whether the domain exists, so it is a temporary failure \
                 (4.4.3): the message stays queued, and the next attempt asks DNS again.",
                "RFC 5321 5.1, 4.5.4.1, RFC 1035 4.1.1, RFC 3463 3.5",
            )
        } else {
            note(
                "DNS could not answer for now (SERVFAIL, or no answer in time), a temporary \
                 failure (4.4.3), but the message has been queued for the give-up time: this \
                 failure ends it, and it bounces to its sender.",
                "RFC 5321 4.5.4.1, 5.1, RFC 3463 3.5",
            )
        }
    } else if result.starts_with(failure_text::NOT_FOUND) {
        note(
            "DNS answered that the domain does not exist (NXDOMAIN), or the name is not a valid \
             domain at all. That is final, a permanent failure (5.1.2): the message leaves the \
             queue and bounces to its sender at once.",
            "RFC 5321 5.1, RFC 1035 4.1.1, RFC 3463 3.2",
        )
    } else if result.starts_with(failure_text::NULL_MX) {
        note(
            "The domain publishes a null MX, a single 'MX 0 .': it says it takes no mail at all. \
             The sending server does not fall back to the domain's own address (A or AAAA) \
             either; the message bounces at once \
             (556 5.1.10).",
            "RFC 7505 3, 4.1, RFC 7504",
        )
    } else if result.starts_with(failure_text::NO_ADDRESSES) {
        note(
            "No host to connect to: the MX hosts have no address (A or AAAA), and with MX \
             records present the domain's own address is not tried instead; or the domain has \
             neither MX records nor an address. The message bounces (5.4.4).",
            "RFC 5321 5.1, RFC 3463 3.5",
        )
    } else if result.starts_with(failure_text::LOOPS_BACK) {
        note(
            "This host is itself among the domain's mail hosts (an MX host, or the domain's \
             own address used as implicit MX): it may pass the mail on only to MX hosts more \
             preferred than itself (a lower preference number), and none is left to try. \
             Sending on would loop, so the message bounces (5.4.6, as Postfix writes it, though \
             RFC 3463 meant that code for temporary failures).",
            "RFC 5321 5.1, RFC 3463 3.5",
        )
    } else {
        note("No host to try; the result says why.", "RFC 5321 5.1")
    }
}

/// The note for a connection of a user agent submitting mail that failed (refused, timed
/// out, broken), when `event` is such a failure: a user agent keeps no queue, so what the
/// notes for a mail server's connection say of retrying is not for it.
pub fn submission_connection_note(event: &Event) -> Option<StepNote> {
    match event {
        Event::ServerStalled {
            at, after_chunks, ..
        } => Some(stalled_server_note(*at, *after_chunks, true)),
        Event::ConnectionAttempted(attempt) if attempt.port != 587 => Some(StepNote {
            text: Cow::Owned(format!(
                "A user agent normally submits mail on port 587, where it logs in and its \
                 provider's server takes its mail for any destination. This one connects to \
                 port {}, where the server speaks plain SMTP, as MTAs do to each other on port \
                 25, and offers no login: it takes mail only for the domains it receives or \
                 relays for, and refuses to relay the rest. Once the connection is up, the \
                 server speaks first, with its 220 greeting.",
                attempt.port
            )),
            rfc: Cow::Borrowed("RFC 6409 3.1, RFC 5321 3.1, 3.6.2, 7.9"),
        }),
        Event::ConnectionRefused { .. } => note(
            "The host is up but nothing listens on that port (its mail server is down), so it \
             refuses the connection at once; a host that is off or unreachable \
             does not answer at all, and the client waits for its timeout. A user agent keeps \
             no queue and does not try again on its own: the message is not sent, and the \
             mail program tells its user.",
            "RFC 6409 3.1, RFC 5321 4.5.4.1",
        ),
        Event::ConnectionTimedOut { .. } => note(
            "No answer at all: the TCP connection never opens, and the user agent gives up \
             after its own connect timeout. It keeps no queue and does not try again on its \
             own: the message is not sent, and the mail program tells its user.",
            "RFC 6409 3.1, RFC 5321 4.5.4.1",
        ),
        Event::ConnectionDropped { .. } => note(
            "The connection broke before the server confirmed the message with 250, so the \
             user agent cannot know whether the server kept it. It keeps no queue: the mail \
             program tells its user the message was not sent, and a message sent again might \
             arrive twice.",
            "RFC 5321 6.1, RFC 6409 3.1",
        ),
        _ => None,
    }
}

/// What a server that hangs at `at` (a stall fault) leaves its client to do: wait out the
/// timeout RFC 5321 4.5.3.2 gives that reply, then close; a sending host tries again later,
/// a user agent (`user_agent`), which keeps no queue, gives up.
fn stalled_server_note(at: StallPoint, after_chunks: bool, user_agent: bool) -> StepNote {
    let (wait, rfc) = match at {
        // RFC 3030 2: the last chunk ends the message, as DATA's final dot does.
        StallPoint::Dot if after_chunks => (
            "10 minutes for the reply to the last chunk (BDAT ... LAST), as for the reply to \
             DATA's final dot",
            "RFC 5321 4.5.3.2.6, 6.1, RFC 3030 2",
        ),
        StallPoint::Greeting => ("5 minutes for the greeting", "RFC 5321 4.5.3.2.1"),
        StallPoint::Ehlo => ("5 minutes for the reply to EHLO", "RFC 5321 4.5.3.2"),
        StallPoint::Mail => ("5 minutes for the reply to MAIL", "RFC 5321 4.5.3.2.2"),
        StallPoint::Rcpt => ("5 minutes for the reply to RCPT", "RFC 5321 4.5.3.2.3"),
        StallPoint::Data => ("2 minutes for the 354", "RFC 5321 4.5.3.2.4"),
        StallPoint::Dot => (
            "10 minutes for the reply to the final dot",
            "RFC 5321 4.5.3.2.6, 6.1",
        ),
    };
    let what = match at {
        StallPoint::Greeting => "it took the connection but sends no greeting",
        StallPoint::Dot if after_chunks => {
            "it read the whole message, to its last chunk, but answers nothing more"
        }
        StallPoint::Dot => "it read the whole message but answers nothing more",
        _ => "it read the client's command but answers nothing more",
    };
    let then = if user_agent {
        "A user agent keeps no queue: the message is not sent (4.4.2), and the mail program \
         tells its user."
    } else {
        "It counts the recipients as failed for now (451 4.4.2) and tries again later."
    };
    let why = match (at, user_agent) {
        (StallPoint::Dot, false) => {
            " That wait is the longest because a server may be delivering the message before \
             it answers: a client that gave up sooner would send again a message the server \
             had taken, and it would arrive twice. This server hung before taking it, so \
             nothing is lost or doubled: without its 250 it is not responsible for the \
             message, and the client, which still has it, tries again."
        }
        (StallPoint::Dot, true) => {
            " That wait is the longest because a server may be delivering the message before \
             it answers: had it taken the message, one sent again would arrive twice. This \
             one hung before its 250, so it did not take it."
        }
        _ => "",
    };
    StepNote {
        text: Cow::Owned(format!(
            "The server hangs (a stuck process, say, or a filter that never returns): {what}. \
             The client cannot tell a hung server from a slow one, so it waits as RFC 5321 \
             asks, {wait}, then closes the connection without QUIT. {then}{why}"
        )),
        rfc: Cow::Owned(format!(
            "{rfc}, {}",
            if user_agent {
                "RFC 6409 3.1"
            } else {
                "4.5.4.1"
            }
        )),
    }
}

/// The note for the event at `index` of a run's `events`, told with what the rest of the run
/// says, where that changes it: a retry's wait and a skipped address's interval as this
/// scenario has them, how long a message given up on was queued, a recipient's temporary
/// failure at the attempt after which the host gives up, and a notice dropped because DNS
/// found no host for it. `None` where the event's own note ([`note_for`]) says it all. Made
/// when a step is shown: a long run has thousands of retries, and their notes are not kept.
pub fn in_context(events: &[TraceEvent], index: usize) -> Option<StepNote> {
    let event = events.get(index)?;
    const QUEUE: Cow<str> = Cow::Borrowed("RFC 5321 4.5.4.1");
    let (text, rfc) = match &event.event {
        Event::RetryScheduled(retry) if refused_for_good_by_one(retry) => (
            retry_text(retry, event.time_ms),
            Cow::Borrowed("RFC 5321 4.5.4.1, 3.1, 4.2.1, 5.1"),
        ),
        Event::RetryScheduled(retry) => (retry_text(retry, event.time_ms), QUEUE),
        Event::TargetSkipped(skipped) => (skipped_text(skipped), QUEUE),
        Event::GaveUp(gave_up) => (
            gave_up_text(gave_up, events, index)?,
            Cow::Borrowed("RFC 5321 4.5.4.1, 4.5.5, RFC 3463 3.5 (X.4.7)"),
        ),
        Event::RecipientResult(result) if result.result == TEMPORARY_FAILURE => (
            last_attempt_text(result, &events[index + 1..], event.time_ms)?,
            Cow::Borrowed("RFC 5321 4.2.1, 4.5.4.1, 4.5.5, RFC 3463, RFC 3464"),
        ),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            ..
        } => after_chunk_text(events, index)?,
        Event::MxResolved(resolved)
            if notice_dropped_now(resolved, &events[index + 1..], event.time_ms) =>
        {
            // The failure's own note, then why its last words do not hold here.
            let ends = mx_failure_note(&resolved.result)?;
            (
                format!(
                    "{} But this message has the null reverse path <>, as notices do, and such \
                     a message is never bounced, as a notice about a notice could loop: it is \
                     dropped instead.",
                    ends.text
                ),
                Cow::Owned(format!("{}, RFC 5321 4.5.5", ends.rfc)),
            )
        }
        _ => return None,
    };
    Some(StepNote {
        text: Cow::Owned(text),
        rfc,
    })
}

/// Whether the MX resolution `resolved` found no host and so ends a notice's delivery: the
/// host drops that notice at once (`after` is the run after the resolution, `now_ms` its
/// time), rather than bouncing it as the resolution's own note says.
fn notice_dropped_now(resolved: &MxResolved, after: &[TraceEvent], now_ms: u64) -> bool {
    if resolved.failure.is_none() || resolved.result.contains(WILL_RETRY) {
        return false;
    }
    // The resolution names its entry's domain as the queue keys it; the recipients keep the
    // form they were written in.
    let in_domain = |recipient: &String| super::world::domain_of(recipient) == resolved.domain;
    // The host ends the entry in the same step as the resolution: its give-up, if the time
    // has come, its leaving the queue, then the drop. Anything else is not this entry's.
    after
        .iter()
        .take_while(|event| event.time_ms == now_ms)
        .find_map(|event| match &event.event {
            Event::GaveUp(gave_up) if gave_up.host == resolved.host => None,
            Event::Dequeued { host, .. } if *host == resolved.host => None,
            Event::BounceDiscarded(dropped) if dropped.host == resolved.host => {
                Some(dropped.recipients.iter().all(in_domain))
            }
            _ => Some(false),
        })
        .unwrap_or(false)
}

/// Whether a retry follows an attempt whose last failure was a 5yz: that ends an attempt for
/// now only when another MX host failed for now in it or was not tried; a refusal of service
/// bounces at once only when every host refused so (docs: "Which MX within one attempt").
fn refused_for_good_by_one(retry: &RetryScheduled) -> bool {
    retry
        .attempt_failure
        .as_ref()
        .is_some_and(|failure| failure.reply.starts_with('5'))
}

fn retry_text(retry: &RetryScheduled, now_ms: u64) -> String {
    let wait = spoken_duration(retry.at_ms.saturating_sub(now_ms));
    let why_not_bounced = if refused_for_good_by_one(retry) {
        "The reply shown is a 5yz, a refusal of service by one MX host (at its greeting, or \
         to both EHLO and HELO), yet the attempt failed only for now: another MX host of the \
         domain, or one of its addresses, failed only for now in it (a 4yz, a refused or \
         unanswered connection, an address lookup that failed for now) or was not tried in \
         it (an address skipped as unreachable a short while ago, or hosts the draw among \
         equal preferences left beyond the 16 looked up), and may take the mail later. So the \
         message waits for the next attempt rather than bouncing, as Postfix does \
         (smtp_skip_5xx_greeting). "
    } else {
        ""
    };
    let last = if retry.last_attempt {
        "That attempt is the last: by then the message will have been queued for the give-up \
         time (5 days unless the scenario sets another), so if it fails again, even for now, \
         the server gives up on it (RFC 5321 4.5.4.1). "
    } else {
        ""
    };
    format!(
        "A temporary failure: the message stays queued and is tried again in {wait}, at {}. \
         {last}{why_not_bounced}{}",
        format_time(retry.at_ms),
        retry_rules!()
    )
}

fn skipped_text(skipped: &TargetSkipped) -> String {
    format!(
        "Not tried: this sending host failed to connect to that address at {} (refused, or \
         no answer), and RFC 5321 says a sender must delay retrying a destination after a \
         failed attempt. So no message tries it again before {}, its first retry interval \
         ({}) after that failure: {}",
        format_time(skipped.failed_at_ms),
        format_time(skipped.until_ms),
        spoken_duration(skipped.until_ms.saturating_sub(skipped.failed_at_ms)),
        skipped_rest!()
    )
}

/// The give-up at `index` of `events`: the entry's `queued` event is before it, and a
/// notice's own failure is discarded at the same moment after it.
fn gave_up_text(gave_up: &GaveUp, events: &[TraceEvent], index: usize) -> Option<String> {
    let now_ms = events.get(index)?.time_ms;
    let (queued_at_ms, message) =
        events[..index]
            .iter()
            .rev()
            .find_map(|event| match &event.event {
                Event::Queued(queued)
                    if queued.entry == gave_up.entry && queued.host == gave_up.host =>
                {
                    Some((event.time_ms, &queued.message))
                }
                _ => None,
            })?;
    // What the host does about the message in the same moment, after giving up.
    let then_does = |done: &dyn Fn(&Event) -> bool| {
        events[index + 1..]
            .iter()
            .take_while(|event| event.time_ms == now_ms)
            .any(|event| done(&event.event))
    };
    let discarded = then_does(&|event| {
        matches!(event, Event::BounceDiscarded(d)
            if d.host == gave_up.host && d.message == *message)
    });
    let declined = then_does(&|event| {
        matches!(event, Event::NoticeDeclined(d)
            if d.host == gave_up.host && d.message == *message)
    });
    let notified = then_does(&|event| {
        matches!(event, Event::BounceCreated(b)
            if b.host == gave_up.host && b.about == *message)
    });
    let then = if discarded {
        "the server stops trying. The message is itself a notice (null reverse path <>), so \
         nobody is told: it is dropped, as a notice about a notice could loop."
    } else if declined && !notified {
        "the server stops trying. Its sender asked for no failure notice (NOTIFY=NEVER, or a \
         NOTIFY without FAILURE, RFC 3461 4.1), so nobody is told."
    } else {
        gave_up_rest!()
    };
    Some(format!(
        "The message has been queued since {}, for {}: that reaches the give-up time (RFC \
         5321: generally at least 4 to 5 days; 5 days unless the scenario sets another), so {then}",
        format_time(queued_at_ms),
        spoken_duration(now_ms.saturating_sub(queued_at_ms)),
    ))
}

/// A temporary failure for a recipient whose entry the host gives up on as this attempt
/// ends with it (`after` is the run after the result, `now_ms` its time), rather than trying
/// again or going on to another MX host first.
fn last_attempt_text(
    result: &RecipientResult,
    after: &[TraceEvent],
    now_ms: u64,
) -> Option<String> {
    let host = &result.host;
    let of_entry = |entry: &EntryId| *entry == result.entry;
    // The host decides at once, as the session's results come in: whatever comes later, or
    // the attempt going on (another address, another session, a lookup), is no such end.
    let gave_up = after
        .iter()
        .take_while(|event| event.time_ms == now_ms)
        .find_map(|event| match &event.event {
            Event::GaveUp(gave_up) if of_entry(&gave_up.entry) && gave_up.host == *host => {
                Some(Some(gave_up))
            }
            Event::RetryScheduled(retry) if of_entry(&retry.entry) && retry.host == *host => {
                Some(None)
            }
            Event::Dequeued { host: h, entry } if of_entry(entry) && h == host => Some(None),
            Event::TargetSkipped(skipped) if of_entry(&skipped.entry) => Some(None),
            Event::SessionJoined(joined) if of_entry(&joined.entry) => Some(None),
            Event::ConnectionAttempted(attempt) if attempt.client == *host => Some(None),
            Event::DnsQuery(query) if query.host == *host => Some(None),
            _ => None,
        })??;
    if !gave_up.recipients.contains(&result.recipient) {
        return None;
    }
    let failure = if result.own_finding {
        "A temporary failure for this recipient, found by the sending host itself (no server \
         reply with this code crossed the wire)"
    } else {
        "A temporary failure for this recipient: the server's 4yz reply says 'not now'"
    };
    Some(format!(
        "{failure}. But the message has been queued for its give-up time, and this attempt \
         ends with this reply: the sending host does not try again, gives up on them, and \
         sends a bounce (a delivery status notification) to the envelope sender with this \
         reply as their last failure, unless the message is itself a notice (null reverse \
         path <>), which is never bounced, or its sender asked for no failure notice (DSN's \
         NOTIFY, RFC 3461 4.1)."
    ))
}

/// A length of simulated time in words: `1 hour 30 minutes`, `10 minutes`, `2.5 seconds`.
pub fn spoken_duration(ms: u64) -> String {
    let unit = |count: u64, one: &str| {
        if count == 1 {
            format!("1 {one}")
        } else {
            format!("{count} {one}s")
        }
    };
    let mut parts = Vec::new();
    let (days, hours, minutes) = (ms / 86_400_000, ms / 3_600_000 % 24, ms / 60_000 % 60);
    let (seconds, millis) = (ms / 1000 % 60, ms % 1000);
    if days > 0 {
        parts.push(unit(days, "day"));
    }
    if hours > 0 {
        parts.push(unit(hours, "hour"));
    }
    if minutes > 0 {
        parts.push(unit(minutes, "minute"));
    }
    if millis > 0 {
        let fraction = format!("{millis:03}");
        parts.push(format!(
            "{seconds}.{} seconds",
            fraction.trim_end_matches('0')
        ));
    } else if seconds > 0 || parts.is_empty() {
        parts.push(unit(seconds, "second"));
    }
    parts.join(" ")
}

/// The note for an event, if there is one. `protocol` is the protocol of the event's
/// connection, when it has one.
pub fn note_for(event: &Event, protocol: Option<Protocol>) -> Option<StepNote> {
    match event {
        Event::Started { .. } => note(
            "The run begins: the scenario's DNS zones, hosts and mailboxes are set up, and the \
             simulated clock starts. The same scenario and seed always give the same run.",
            "RFC 5598 (the Internet mail architecture)",
        ),
        Event::MessageComposed(composed) if composed.raw => note(
            "This message was given as bytes: the user agent sends it as written (its line \
             endings made CRLF), adding no header field of its own. The submission server here \
             adds Date and Message-ID when they are missing, as RFC 6409 allows, and From (the \
             envelope's sender) when it is missing, as Postfix does: RFC 5322 requires Date \
             and From. It takes out any Bcc field, as Postfix does (RFC 5322 leaves Bcc to the \
             sender's choice). The envelope (MAIL FROM, RCPT TO) is separate from the header.",
            "RFC 5322 3.6, 3.6.3, RFC 6409 8.2, 8.3, RFC 5321 2.3.1",
        ),
        Event::MessageComposed { .. } => note(
            "The user agent writes the message: header fields (From, To, Subject, Date, \
             Message-ID), an empty line, then the body. The envelope (MAIL FROM, RCPT TO) is \
             separate: Bcc recipients are only in the envelope, and a name written with an \
             address (Alice Liddell <alice@example.test>) only in the header. A name or \
             subject that is not ASCII goes as an encoded word, =?UTF-8?B?...?= (base64) or \
             =?UTF-8?Q?...?=, which mail programs show decoded. An address may not be encoded \
             so: one that is not ASCII goes in the header as UTF-8, and the message then \
             needs SMTPUTF8 on every hop. Body text that is not ASCII goes as \
             quoted-printable (é as =C3=A9), unless it is sent as 8-bit text \
             (Content-Transfer-Encoding: 8bit), which only servers that offer 8BITMIME take.",
            "RFC 5322 3.6, 3.4, RFC 5321 2.3.1, RFC 2047 2, 5, RFC 6532 3, RFC 6531, \
             RFC 2045 6.7, RFC 6152",
        ),
        Event::SubmissionFailed { .. } => note(
            "The user agent does not submit this message, by its own finding: no server \
             refused it, so no reply says so and no bounce will come; a mail program tells \
             its user at once. It checks what it can before sending: that each address is \
             one it can write in the header and the envelope; that the message is no larger \
             than the size the server announced in its EHLO reply (SIZE); that 8-bit data or \
             UTF-8 addresses go only to a server that offers 8BITMIME or SMTPUTF8; and that \
             a server it has credentials for offers AUTH.",
            "RFC 5322 3.4, RFC 5321 4.1.2, RFC 1870 6.1, RFC 6152 3, RFC 6531 3.4, \
             RFC 4954 4",
        ),
        Event::ConnectionAttempted(attempt) if attempt.port == 587 => note(
            "A user agent submits mail to its own provider on port 587, where it normally \
             must authenticate before the server takes the message (a submission server may \
             also trust a protected network of its own).",
            "RFC 6409 3.1, 4.3, RFC 4954",
        ),
        Event::ConnectionAttempted(attempt) if attempt.protocol == Protocol::Pop3 => note(
            "A client connects to the mail server on port 110 to fetch the mail waiting in a \
             mailbox with POP3: usually the mailbox owner's user agent (a recipient's, or a \
             sender's own, where a bounce comes back).",
            "RFC 1939 3",
        ),
        Event::ConnectionAttempted(attempt) => {
            let port = match attempt.port {
                25 => Cow::Borrowed("port 25 of the server"),
                other => Cow::Owned(format!(
                    "port {other} of the server, where it speaks SMTP as on port 25"
                )),
            };
            Some(StepNote {
                text: Cow::Owned(format!(
                    "A client opens a TCP connection to {port}. Once it is up, the server \
                     speaks first, with a 220 greeting (or a 421 or 554 when it will not \
                     serve); a server that is down refuses the connection or never answers."
                )),
                rfc: Cow::Borrowed("RFC 5321 3.1"),
            })
        }
        Event::ConnectionOpened { .. } => note(
            "The TCP connection is up for the client. In SMTP and POP3 the server speaks \
             first: it sent its greeting as soon as it took the connection, half a round trip \
             ago, and the client reads that greeting before sending anything.",
            "RFC 5321 3.1, RFC 1939 4",
        ),
        // A session cut in the middle of a message: what each side is left with.
        Event::ServerState {
            from:
                StateName::SmtpServer(ServerStateKind::ReceivingData | ServerStateKind::ReceivingBdat),
            to: StateName::SmtpServer(ServerStateKind::Closed),
            ..
        } => note(
            "The session ended before the end of the message (its final dot, or its last \
             chunk) reached the server: the link broke (the client may have sent the end \
             already; it never arrived), or the client sent no more until the server stopped \
             waiting. It keeps nothing of what it received, and gave no 250: \
             the message is still the sender's to deliver.",
            "RFC 5321 4.1.1.4, 6.1",
        ),
        Event::ClientState {
            from:
                StateName::SmtpClient(
                    ClientStateKind::ExpectDataReply | ClientStateKind::ExpectLastChunkReply,
                ),
            to: StateName::SmtpClient(ClientStateKind::Finished),
            ..
        } => note(
            "The client's session is over without a 250 for the message: it cannot know \
             whether the server kept it. A sending server keeps the message and tries again \
             later (had the server kept it after all, it would arrive twice); a user agent \
             reports it not sent.",
            "RFC 5321 6.1, 4.5.3.2.6, RFC 1047",
        ),
        Event::ClientState {
            from: StateName::SmtpClient(ClientStateKind::ExpectRcptReplies),
            to: StateName::SmtpClient(ClientStateKind::ExpectQuitReply),
            ..
        } => note(
            "No recipient was accepted in this transaction, so there is no message to send: \
             the client skips DATA and says QUIT, and waits for 221. What the refusals said \
             goes back to the sender: a user agent shows them, a sending server bounces the \
             message or tries again later.",
            "RFC 5321 3.3, 4.1.1.10",
        ),
        Event::ClientState { to, .. } | Event::ServerState { to, .. } => {
            let (text, rfc) = state_note(*to);
            note(text, rfc)
        }
        Event::ConnectionClosed {
            idle_timeout: true, ..
        } => note(
            "No command came for 10 minutes, so the POP3 server ends the session on its \
             inactivity autologout timer (RFC 1939: at least 10 minutes), and sends no \
             response. Without QUIT the session never enters the UPDATE state: messages marked \
             as deleted are not removed, and stay in the mailbox for the next session.",
            "RFC 1939 3, 6",
        ),
        Event::ConnectionClosed { .. } if protocol == Some(Protocol::Pop3) => note(
            "The side that is done closes the connection, normally after QUIT and its +OK. \
             Only a QUIT in the TRANSACTION state removes the messages marked as deleted (the \
             UPDATE state); a connection that just drops keeps them all.",
            "RFC 1939 6",
        ),
        Event::ConnectionClosed { .. } => note(
            "The side that is done closes the connection, normally after QUIT and its reply.",
            "RFC 5321 4.1.1.10",
        ),
        Event::ConnectionRefused { .. } if protocol == Some(Protocol::Pop3) => note(
            "The host is up but nothing listens on the POP3 port, 110 (its POP3 server is \
             down), so it refuses the connection at once. Nothing is lost: any mail stays in the \
             mailbox on the server, for the user agent to fetch at its next check.",
            "RFC 1939 3",
        ),
        Event::ConnectionTimedOut { .. } if protocol == Some(Protocol::Pop3) => note(
            "No answer at all: the TCP connection never opens, and the user agent gives up \
             after its own connect timeout. Nothing is lost: any mail stays in the mailbox on \
             the server, for the user agent's next check.",
            "RFC 1939 3",
        ),
        Event::ConnectionDropped { .. } if protocol == Some(Protocol::Pop3) => note(
            "The connection broke during the POP3 session. Without QUIT the session never \
             reaches the UPDATE state, so no message is removed: those marked as deleted stay \
             on the server, and the next check fetches them again.",
            "RFC 1939 6",
        ),
        Event::ConnectionRefused { .. } => note(
            "The host is up but nothing listens on that port (its mail server is down), so it \
             refuses the connection at once; a host that is off or unreachable does not answer \
             at all, and the client waits for its timeout. For a mail server this is a \
             temporary problem: try the next MX host, or keep the message queued and retry \
             later (once it has been queued for its give-up time, bounce it).",
            "RFC 5321 4.5.4.1, 5.1",
        ),
        Event::ConnectionTimedOut { .. } => note(
            "No answer at all: the TCP connection never opens. The client gives up on this \
             host after its own connect timeout (RFC 5321 sets no value for it; its 5-minute \
             greeting timeout counts only once connected) and tries the next MX host, or \
             retries later (once the message has been queued for its give-up time, bounces \
             it, or drops it if it is itself a notice).",
            "RFC 5321 4.5.3.2.1, 5.1",
        ),
        Event::ConnectionDropped { .. } => note(
            "The connection broke before the server confirmed the message with 250. The \
             client should treat this like a 451 temporary failure: the message is not \
             delivered, stays queued and is sent again later (unless it has been queued for \
             its give-up time: then it bounces).",
            "RFC 5321 3.8, 4.5.4.1",
        ),
        Event::ServerStalled {
            at, after_chunks, ..
        } => Some(stalled_server_note(*at, *after_chunks, false)),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } if protocol == Some(Protocol::Pop3) => pop3_command_note(bytes.as_bytes()),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } if bare_line_feed_outside_chunks(bytes.as_bytes()) => bare_line_feed_note(),
        Event::Transmitted {
            direction: Direction::ClientToServer,
            bytes,
            ..
        } => smtp_command_note(bytes.as_bytes()),
        Event::DnsQuery(query) => Some(StepNote {
            text: Cow::Owned(format!(
                "A DNS question ({}). To find where mail for a domain goes, the sending server \
                 asks DNS for the domain's MX records, then for the addresses (A, AAAA) of the \
                 hosts they name.",
                query.question
            )),
            rfc: Cow::Borrowed("RFC 5321 5.1, RFC 1035"),
        }),
        Event::DnsResponse(response) if response.outcome == DnsOutcome::NxDomain => note(
            "NXDOMAIN: the name asked about does not exist. For the mail domain's MX \
                 question this is permanent: there is nowhere to deliver, and the mail bounces \
                 (5.1.2; a notice, sent from <>, is dropped instead: it is never bounced). For \
                 an MX host's A or AAAA question it only rules out that host: the others are \
                 still tried.",
            "RFC 1035 4.1.1, RFC 2308 2.1, RFC 5321 5.1",
        ),
        Event::DnsResponse(response) if response.outcome == DnsOutcome::ServFail => note(
            "SERVFAIL: the DNS server could not answer (a broken zone, an unreachable \
                 authoritative server). This says nothing about the domain, and may be better \
                 later: for the MX question the mail stays queued for another attempt (unless \
                 it has been queued for its give-up time: then it bounces, or is dropped if it \
                 is itself a notice); for an MX host's A or AAAA question only that host is \
                 ruled out this time.",
            "RFC 1035 4.1.1, RFC 2308 7.1, RFC 5321 5.1",
        ),
        Event::DnsResponse(response) if response.outcome == DnsOutcome::TimedOut => note(
            "No answer: the resolver stopped waiting for the DNS server. Like SERVFAIL, this \
                 is temporary and says nothing about the domain: for the MX question the mail \
                 stays queued for another attempt (unless it has been queued for its give-up \
                 time: then it bounces, or is dropped if it is itself a notice); for an MX \
                 host's A or AAAA question only that host is ruled out this time.",
            "RFC 2308 7.2, RFC 5321 5.1, 4.5.4.1",
        ),
        Event::DnsResponse(response)
            if response.outcome == DnsOutcome::NoError && response.records.is_empty() =>
        {
            // What was asked, from the answer's question section, says what the lack means.
            let asked = response
                .wire
                .as_deref()
                .and_then(crate::dns::wire::question_type);
            match asked {
                Some(RecordType::Mx) => note(
                    "NOERROR with no records (NODATA): the domain exists, but has no MX \
                     record. It is then its own mail host, the implicit MX: the client asks \
                     for the domain's own address next.",
                    "RFC 2308 2.2, RFC 5321 5.1",
                ),
                Some(RecordType::Aaaa) => note(
                    "NOERROR with no records (NODATA): the name exists, but has no IPv6 \
                     address (AAAA). A host (or a domain that is its own mail host) that has \
                     an IPv4 address (A) is reached by that.",
                    "RFC 2308 2.2, RFC 5321 5.1",
                ),
                Some(RecordType::A) => note(
                    "NOERROR with no records (NODATA): the name exists, but has no IPv4 \
                     address (A). A host (or a domain that is its own mail host) that has an \
                     IPv6 address (AAAA) is reached by that.",
                    "RFC 2308 2.2, RFC 5321 5.1",
                ),
                _ => note(
                    "NOERROR with no records (NODATA): the name exists, but has no record of \
                     the type asked. A host asked for its IPv6 address (AAAA) that has only an \
                     IPv4 one (A) is reached by that; a domain with no MX record uses its own \
                     address as its implicit MX.",
                    "RFC 2308 2.2, RFC 5321 5.1",
                ),
            }
        }
        Event::DnsResponse(response)
            if response
                .records
                .iter()
                .any(|record| record.ends_with(" IN MX 0 .")) =>
        {
            note(
                "The DNS answer: a null MX, a single MX record of preference 0 naming the root \
                 (\".\"). It says the domain takes no mail at all: the sending server looks \
                 for no address and does not fall back to the domain's own, and the mail \
                 bounces at once (556 5.1.10; a notice, sent from <>, is dropped instead: it is \
                 never bounced).",
                "RFC 7505 3, 4.1",
            )
        }
        // Only an answer with records is left: the others have notes of their own above.
        Event::DnsResponse(response) => Some(StepNote {
            text: Cow::Owned(format!(
                "The DNS answer, with the records asked for ({}). MX records name the hosts \
                 that take the domain's mail, each with a preference: the lowest is tried \
                 first, hosts of equal preference in random order. A and AAAA records give a \
                 host's IPv4 and IPv6 addresses, to connect to. A CNAME record says the name \
                 is an alias: the answer goes on with the records of the name it points to.",
                listed(&response.records, DNS_RECORDS_NAMED)
            )),
            rfc: Cow::Borrowed("RFC 5321 5.1, RFC 1035 3.3.9, 3.4.1, RFC 3596 2, RFC 1034 3.6.2"),
        }),
        // Before the cache's note: a host that is an MX of the domain drops its own level
        // whether the answer is fresh or kept. With no host left, the failure's note says why.
        Event::MxResolved(resolved)
            if !resolved.targets.is_empty()
                && resolved
                    .notes
                    .iter()
                    .any(|note| note.contains(crate::dns::resolver::OWN_LEVEL_DROPPED)) =>
        {
            if resolved.from_cache {
                note(
                    concat!(
                        "No DNS query this time: the answer is kept from a short while ago, for \
                         as long as its records' TTL allows. ",
                        own_level_dropped!()
                    ),
                    "RFC 5321 5.1, RFC 1035 3.2.1, RFC 2181 8",
                )
            } else {
                note(own_level_dropped!(), "RFC 5321 5.1")
            }
        }
        Event::MxResolved(resolved) if resolved.from_cache => note(
            "No DNS query this time: the server asked about this domain a short while ago and \
             keeps the answer for as long as its records' TTL allows. Hosts of equal \
             preference are still put in a random order of their own for each attempt, so \
             that they share the load.",
            "RFC 1035 3.2.1, RFC 2181 8, RFC 5321 5.1",
        ),
        Event::MxResolved(resolved) if resolved.result.contains(super::trace::NO_DNS_LOOKUP) => {
            note(
                "No DNS lookup: a route configured on this host, or an address literal such as \
                 [192.0.2.1] that names the host by its address, says where the mail goes.",
                "RFC 5321 4.1.3, 5.1",
            )
        }
        Event::MxResolved(resolved) if resolved.targets.is_empty() => {
            mx_failure_note(&resolved.result)
        }
        Event::MxResolved(resolved) if resolved.targets.len() == 1 => Some(StepNote {
            text: Cow::Owned(format!(
                "The host to try: {}, the only one. With several, the lowest preference goes \
                 first, and hosts of equal preference in a random order, drawn again for each \
                 attempt, so that they share the load. With no MX record the domain itself is \
                 used; a single 'MX 0 .' means the domain takes no mail.",
                resolved.targets[0]
            )),
            rfc: Cow::Borrowed("RFC 5321 5.1, RFC 7505"),
        }),
        Event::MxResolved(resolved) => Some(StepNote {
            text: Cow::Owned(format!(
                "The hosts to try, in this order: {}. The lowest preference goes first; hosts \
                 of equal preference, if any, in a random order, drawn again for each attempt, \
                 so that they share the load (here drawn from the run's seed, so that a run can \
                 be made again: another seed may draw another order). With no MX record the \
                 domain itself is used; a single 'MX 0 .' means the domain takes no mail.",
                listed(&resolved.targets, MX_TARGETS_NAMED)
            )),
            rfc: Cow::Borrowed("RFC 5321 5.1, RFC 7505"),
        }),
        Event::MessageAccepted(accepted) if accepted.reverse_path.is_empty() => note(
            "The message is stored. With the 250 reply it now sends after the data, this \
             server takes responsibility for the message: from then on it must deliver it, \
             and may not lose it for frivolous reasons such as a crash or a predictable \
             shortage of resources. This one is a notice, from the null reverse path <>: \
             should it fail, nobody is told, as a notice about a notice could loop.",
            "RFC 5321 6.1, 4.5.5",
        ),
        Event::MessageAccepted { .. } => note(
            "The message is stored. With the 250 reply it now sends after the data, this \
             server takes responsibility for the message: from then on it must deliver it or, \
             failing that, tell the sender with a bounce (unless the sender asked for none, \
             with DSN's NOTIFY), and may not lose it for frivolous reasons such as a crash or \
             a predictable shortage of resources.",
            "RFC 5321 6.1, RFC 3461 4.1",
        ),
        Event::Queued { .. } => note(
            "The message waits in this server's queue, one entry per destination domain, until \
             it is delivered, bounced, or given up on.",
            "RFC 5321 4.5.4.1",
        ),
        Event::AttemptStarted { .. } => note(
            "A delivery attempt: find the hosts that take the domain's mail (its MX records in \
             DNS, unless a route or an address literal names the host), then try them in order.",
            "RFC 5321 4.5.4.1, 5.1",
        ),
        Event::RecipientResult(result)
            if result.own_finding && result.reply.contains(crate::smtp::client::NO_REPLY) =>
        {
            note(
                "The client gave up waiting: RFC 5321 gives each reply a time limit (5 minutes \
                 for the greeting, MAIL and each RCPT, 2 for the 354, 10 for the reply to the \
                 message), and this one passed with no reply. It closes the connection without \
                 QUIT and writes its own finding as a temporary failure, 451 4.4.2 (a bad \
                 connection): with no 250 for the message, the sending host must count it as \
                 not delivered, keep it and try again later (had a slow server in fact taken \
                 it, it would arrive twice, which is why the last wait is the longest).",
                "RFC 5321 4.5.3.2, 6.1, RFC 3463 3.5 (X.4.2)",
            )
        }
        Event::RecipientResult(result) if result.own_finding => Some(StepNote {
            text: Cow::Owned(format!(
                "{}: the outcome for one recipient, decided by the sending host itself, so no \
                 server sent this reply (a message over the server's SIZE, 8-bit data for a \
                 server without 8BITMIME, a lost connection, ...). The host writes its finding \
                 as the reply a server would have given, with the status code RFC 3463 has for \
                 it, so that the queue and any bounce treat it like one.",
                result.reply
            )),
            rfc: Cow::Borrowed("RFC 5321 4.2.1, RFC 3463"),
        }),
        Event::RecipientResult(result) if result.result == TEMPORARY_FAILURE => note(
            "A temporary failure for this recipient: the server's 4yz reply says 'not now'. The \
             sending host keeps the message for them: it tries the next MX host in this \
             attempt if one is left, else keeps it queued and tries again later, and bounces \
             it only once it has been queued for its give-up time. No bounce goes to the \
             sender yet (at most a 'delayed' notice, from a host that sends those).",
            "RFC 5321 4.2.1, 4.5.4.1, 5.1, RFC 3464 2.3.3",
        ),
        Event::RecipientResult(result) if result.result == PERMANENT_FAILURE => note(
            "A permanent failure for this recipient: the server's 5yz reply says trying again \
             would get the same answer, so the sending host gives up on them and sends a bounce \
             (a delivery status notification) to the envelope sender, unless the message is \
             itself a notice (null reverse path <>), which is never bounced, or its sender \
             asked for no failure notice (DSN's NOTIFY, RFC 3461 4.1).",
            "RFC 5321 4.2.1, 6.1, RFC 3464",
        ),
        Event::RecipientResult { .. } => note(
            "Accepted for this recipient: the receiving server has taken the message for them \
             with its 2yz reply, and the sending host is done with them (but for a report \
             that it relayed them, when the sender asked to hear of success and that server \
             does not offer DSN, RFC 3461 5.2.2).",
            "RFC 5321 4.2.1, 6.1, RFC 3461 5.2.2",
        ),
        Event::RetryScheduled { .. } => note(
            concat!(
                "A temporary failure: the message stays queued and is tried again later. ",
                retry_rules!()
            ),
            "RFC 5321 4.5.4.1",
        ),
        Event::TargetSkipped { .. } => note(
            concat!(
                "Not tried: this sending host failed to connect to that address a short \
                 while ago (refused, or no answer), and RFC 5321 says a sender must delay \
                 retrying a destination after a failed attempt. So no message tries it again \
                 before the first retry interval (30 minutes unless the scenario sets \
                 another) has passed: ",
                skipped_rest!()
            ),
            "RFC 5321 4.5.4.1",
        ),
        Event::DsnWithheld(withheld) => {
            // A sending host reports a relay itself (RFC 3461 5.2.2); a user agent has no one
            // to tell, and nothing after it reports success.
            let (after, rfc) = if withheld.client.starts_with(USER_AGENT_PREFIX) {
                (
                    "That server will bounce a failure after it takes the message, as any \
                     server does, but nothing will report success.",
                    "RFC 3461 3",
                )
            } else {
                (
                    "That server will bounce a failure after it takes the message, as any \
                     server does, but send no report of success; a sender who asked for one \
                     (NOTIFY=SUCCESS) hears instead from this host that the message was \
                     relayed, once the server has taken it.",
                    "RFC 3461 3, 5.2.2",
                )
            };
            Some(StepNote {
                text: Cow::Owned(format!(
                    "The sender asked for delivery reports (DSN: NOTIFY, RET, ENVID or ORCPT), \
                     but {} does not offer DSN (an extension a server lists in its EHLO \
                     reply), so the MAIL just sent, and its RCPT commands, go without them: a \
                     client uses DSN parameters only with a server that offers the extension, \
                     and the request ends here. {after}",
                    withheld.server
                )),
                rfc: Cow::Borrowed(rfc),
            })
        }
        Event::SessionJoined { .. } => note(
            "No new connection: this sending host already has a session open (or being \
             opened) to that server, and the message goes on it as one more mail transaction \
             (MAIL, RCPT, DATA) after any already on it. Sending servers such as Postfix reuse \
             connections like this, saving a greeting and an EHLO per message. If that \
             connection cannot be opened, every message on it fails with it (each goes on to \
             the next MX host, or waits for its retry); if it breaks before a message's turn, \
             that message starts again on a connection of its own.",
            "RFC 5321 3.3, 4.1.4",
        ),
        Event::GaveUp { .. } => note(
            concat!(
                "The message has been queued for the give-up time (RFC 5321: generally at \
                 least 4 to 5 days; 5 days unless the scenario sets another): ",
                gave_up_rest!()
            ),
            "RFC 5321 4.5.4.1, RFC 3463 3.5 (X.4.7)",
        ),
        Event::Dequeued { .. } => note(
            "Nothing is left to do for this queue entry: each of its recipients was taken by \
             the next server (which delivers it or passes it on) or failed for good (the \
             sender gets a notice for those that failed, unless the message has the null \
             reverse path, when it is dropped, or the sender asked for none with DSN's \
             NOTIFY), so it leaves the queue.",
            "RFC 5321 4.5.4.1",
        ),
        Event::BounceCreated(created) if created.action == "delivered" => note(
            "A delivery report, asked for: the sender gave NOTIFY=SUCCESS for this recipient \
             (RFC 3461 4.1), so the host that stored the message in the mailbox tells the \
             sender so (RFC 3464 Action: delivered, Status 2.0.0). It quotes the sender's \
             ENVID and ORCPT when they were given (Original-Envelope-Id, Original-Recipient), \
             and goes back with the null reverse path <>, as every notice does. Without \
             NOTIFY=SUCCESS no one reports success: silence is the normal case.",
            "RFC 3461 4.1, 5.2.3, 6.2, 4.2, 4.4, RFC 3464 2.2.1, 2.3.1, 2.3.3, RFC 5321 4.5.5",
        ),
        Event::BounceCreated(created) if created.action == "relayed" => note(
            "A relay report, asked for: the sender gave NOTIFY=SUCCESS, and the next server \
             accepted the message but does not offer DSN, so it could not be handed the \
             request and will send no report of delivery (a failure there may still come back \
             as a bounce). This host tells the sender that the message went on to a system \
             that reports no success (RFC 3464 Action: relayed). Had \
             the next server offered DSN, this host would have passed NOTIFY, ORCPT, RET and \
             ENVID on with the message, and that server would report.",
            "RFC 3461 4.1, 5.2.2, 6.2, RFC 3464 2.3.3",
        ),
        Event::NoticeDeclined(declined) => {
            let (who, whose) = match declined.recipients.len() {
                1 => ("This recipient", "Its"),
                _ => ("These recipients", "Their"),
            };
            Some(StepNote {
                text: Cow::Owned(format!(
                    "{who} failed for good, but no bounce goes to the sender: the sender asked \
                     for none with NOTIFY=NEVER, or with a NOTIFY that leaves FAILURE out (RFC \
                     3461 4.1), as an automatic no-reply sender may, since nobody would read \
                     its bounces. {whose} fate is still a failure."
                )),
                rfc: Cow::Borrowed("RFC 3461 4.1"),
            })
        }
        Event::BounceCreated(created) if created.action == "delayed" => note(
            "A delay notice, not a bounce: the message is not delivered yet and stays queued. \
             The sender learns (RFC 3464 Action: delayed) until when this server will keep \
             trying. Like a bounce, its envelope sender is the null reverse path <> (MAIL \
             FROM:<> when it goes over SMTP).",
            "RFC 3464 2.3.3, 2.3.9, RFC 5321 4.5.5",
        ),
        Event::BounceCreated { .. } => note(
            "A delivery status notification goes back to the envelope sender (the MAIL FROM \
             address, not the From: header). Its own envelope sender is the null reverse path \
             <> (MAIL FROM:<> when it goes over SMTP), so that nothing is ever sent back \
             about it. It is a multipart/report: a text for people, then a \
             message/delivery-status part with Reporting-MTA (the host writing it) and \
             Arrival-Date (after Original-Envelope-Id, the sender's ENVID, when one was \
             given), then for each recipient Original-Recipient (the sender's ORCPT, when \
             given), Final-Recipient, Action (failed), Status \
             (the enhanced status code, RFC 3463), Remote-MTA (the server that refused, when \
             one did), Diagnostic-Code (its reply, or this host's own finding) and \
             Last-Attempt-Date (left out when this host never got to try); then the original \
             message's header, or the whole message when the sender asked for it with \
             RET=FULL (DSN, RFC 3461 4.3).",
            "RFC 6522, RFC 3464 2.1, 2.2.1, 2.2.2, 2.2.5, 2.3.1-2.3.7, RFC 5321 4.5.5, \
             RFC 3461 4.3",
        ),
        Event::BounceDiscarded { .. } => note(
            "This undeliverable message was sent with the null reverse-path (MAIL FROM:<>), \
             as bounces and other notifications are, so there is no one to notify: it is \
             dropped. Such messages are never bounced, or two servers could send them back \
             and forth for ever.",
            "RFC 5321 4.5.5",
        ),
        Event::Delivered { .. } => note(
            "Final delivery: the MDA stores the message in the mailbox. It adds Return-Path \
             with the envelope sender, which RFC 5321 requires at final delivery, and, under \
             this server's Received field, Delivered-To with the recipient, a common MDA \
             convention (RFC 9228).",
            "RFC 5321 4.4, RFC 5322 3.6.7, RFC 9228",
        ),
        Event::DeliveryRefused(refused) if refused.reason.starts_with(super::world::OVER_QUOTA) => {
            note(
                "The MDA could not store the message: the mailbox would go over its quota \
                 (5.2.2). The server already said 250, so it must not lose the message: once it \
                 treats the failure as final, it sends a bounce (a message with the null \
                 reverse path <>, such as a notice, it drops instead). This server treats a \
                 full mailbox as final, as many do, though RFC 3463 calls X.2.2 a persistent \
                 transient failure (a server may also keep the message and retry).",
                "RFC 5321 6.1, 4.5.5, RFC 3463 3.3 (X.2.2)",
            )
        }
        Event::DeliveryRefused { .. } => note(
            "The MDA could not store the message: there is no such mailbox here (5.1.1). The \
             server already said 250, so it must not lose the message: it sends a bounce (a \
             message with the null reverse path <>, such as a notice, it drops instead).",
            "RFC 5321 6.1, 4.5.5, RFC 3463 3.2 (X.1.1)",
        ),
        Event::MessageRetrieved { .. } => note(
            "RETR sends the whole message; lines starting with '.' get an extra dot, and a line \
             with only '.' ends it.",
            "RFC 1939 5, 3",
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
        Event::Outcome(outcome) => Some(StepNote {
            text: Cow::Owned(format!(
                "{}. That is where the message ended up for this recipient, one of: \
                 delivered to a mailbox, bounced to the sender, failed with no notice (the \
                 sender asked for none, with DSN's NOTIFY), refused at submission, discarded \
                 (undeliverable, from the null reverse path <>, so there is no one to tell), or \
                 still queued when the run ended. A server that answered 250 to the data must \
                 deliver the message or tell the sender it failed, unless asked not to; a crash \
                 or a full disk is no excuse to lose it.",
                super::run_text::outcome_line(&outcome.message, &outcome.recipient, &outcome.fate)
            )),
            rfc: Cow::Borrowed("RFC 5321 6.1, 4.5.5, RFC 3461 4.1"),
        }),
        Event::ConservationChecked {
            ok: false,
            problems,
        } if run_was_cut(problems) => note(
            "The run was cut here: it reached the simulator's limit (too many events, or \
             more trace and mail than a page can hold), and nothing after this moment was \
             simulated. The outcomes say where each message stood then; those still on \
             their way are not lost, a real server would go on. Fewer messages, \
             recipients, retries or smaller attachments make a run that ends.",
            "RFC 5321 6.1",
        ),
        Event::ConservationChecked { ok: false, .. } => note(
            "The conservation check failed: the problems listed say what does not add up (a \
             recipient without exactly one outcome, a message never sent). Every message a \
             server accepted must be delivered or bounced, never lost or delivered twice.",
            "RFC 5321 6.1",
        ),
        Event::ConservationChecked { .. } => note(
            "The conservation check: every recipient of every message ends in exactly one of \
             those outcomes, so nothing was lost or delivered twice.",
            "RFC 5321 6.1",
        ),
        Event::MailboxUpdated(update) if update.deleted.is_empty() => note(
            "No message is marked as deleted now (none was marked with DELE, or RSET unmarked \
             them), so nothing is removed: deletions happen only here, in the UPDATE state \
             after QUIT.",
            "RFC 1939 6",
        ),
        Event::MailboxUpdated { .. } => note(
            "Deletions happen only now, in the UPDATE state after QUIT; a dropped connection \
             would have deleted nothing.",
            "RFC 1939 6",
        ),
        _ => None,
    }
}

/// A state's note: what the state means, then what every state's note says. Written out
/// whole at compile time, as a run has a state change at nearly every other step.
macro_rules! state_text {
    ($meaning:literal) => {
        concat!($meaning, state_machine_sentence!())
    };
}

/// What every session state is, said at the end of each state's note.
macro_rules! state_machine_sentence {
    () => {
        " Each side of a session is a state machine, named after where it is or what it \
         expects next."
    };
}

/// The sentence every session state's note ends with (see `state_text`).
pub const STATE_MACHINE_SENTENCE: &str = state_machine_sentence!();

/// What a session state means, as its note says it (see `state_text`), and where it is
/// defined.
fn state_note(state: StateName) -> (&'static str, &'static str) {
    use crate::pop3::client::Pop3ClientState as P;
    use crate::pop3::server::Pop3State as Q;
    use crate::smtp::server::ServerStateKind as S;
    use ClientStateKind as C;
    match state {
        StateName::SmtpClient(state) => match state {
            C::ExpectGreeting => (
                state_text!(
                    "The client waits for the server's 220 greeting; it sends nothing before it."
                ),
                "RFC 5321 3.1",
            ),
            C::ExpectEhloReply => (
                state_text!(
                    "The client sends EHLO and waits for the reply that lists the server's \
                     extensions."
                ),
                "RFC 5321 4.1.1.1",
            ),
            C::ExpectHeloReply => (
                state_text!(
                    "The client fell back to HELO (no extensions) and waits for its reply."
                ),
                "RFC 5321 4.1.1.1",
            ),
            C::ExpectAuthReply => (
                state_text!(
                    "The client sends AUTH and waits for 235 (authenticated) or a refusal."
                ),
                "RFC 4954 4",
            ),
            // Entered before MAIL goes; with PIPELINING the RCPT TOs go with it, and this
            // state ends when the reply to MAIL comes, after they went.
            C::ExpectMailReply => (
                state_text!(
                    "The client sends MAIL FROM and waits for its reply. With PIPELINING, its RCPT \
                     TO commands go in the same batch, without waiting."
                ),
                "RFC 5321 4.1.1.2, RFC 2920 3.1",
            ),
            C::ExpectRcptReplies => (
                state_text!(
                    "The client waits for the replies to its RCPT TO commands, one per recipient, \
                     in the order sent. With PIPELINING they went out with MAIL FROM; without it, \
                     each goes after the reply to the one before."
                ),
                "RFC 5321 4.1.1.3, RFC 2920 3.1",
            ),
            C::ExpectRsetReply => (
                state_text!("The client sends RSET to abandon the transaction and waits for 250."),
                "RFC 5321 4.1.1.5",
            ),
            C::ExpectDataGoAhead => (
                state_text!("The client sends DATA and waits for 354 before it sends the message."),
                "RFC 5321 4.1.1.4",
            ),
            C::ExpectDataReply => (
                state_text!(
                    "The message goes out, ended by CRLF . CRLF; then the client waits for the \
                     reply that says whether the server took it."
                ),
                "RFC 5321 4.1.1.4",
            ),
            C::ExpectChunkReply => (
                state_text!(
                    "The client sends a BDAT command and its chunk in one write: the command \
                     says how many octets follow, and the server reads exactly that many, \
                     whatever they hold, so nothing is dot-stuffed and no line with a single dot \
                     ends anything. A client that pipelines (the server lists PIPELINING, and \
                     the client uses it) sends the chunks one after another, and reads the \
                     replies as they come (this client keeps at most 8 unanswered, its own \
                     choice: the RFCs set no number); one that does not waits for each chunk's \
                     250 before the next."
                ),
                "RFC 3030 2, 4.2, RFC 2920",
            ),
            C::ExpectLastChunkReply => (
                state_text!(
                    "The client has sent the message's last chunk, with BDAT ... LAST, and \
                     waits for its reply, which, like the one after DATA's final dot, says \
                     whether the server took the message."
                ),
                "RFC 3030 2",
            ),
            C::Idle => (
                state_text!(
                    "The client has nothing more to send, but keeps the connection open for a \
                     while (as long as the scenario sets for this host): mail for the same server \
                     that comes now needs no new connection, greeting or EHLO, just another \
                     MAIL. Real servers do this (Postfix, when mail for a destination backs up, \
                     keeps the connection up to 2 seconds: smtp_connection_cache_time_limit); \
                     then the client says QUIT."
                ),
                "RFC 5321 3.3, 4.1.1.10",
            ),
            C::ExpectQuitReply => (
                state_text!("The client sends QUIT and waits for 221."),
                "RFC 5321 4.1.1.10",
            ),
            C::Finished => (
                state_text!("The client's session is over."),
                "RFC 5321 4.1.1.10",
            ),
        },
        StateName::SmtpServer(state) => match state {
            S::ExpectHelo => (
                state_text!("The server has greeted the client and waits for EHLO or HELO."),
                "RFC 5321 4.1.1.1",
            ),
            S::ExpectMail => (
                state_text!(
                    "The server waits for MAIL FROM, which starts a mail transaction (on port \
                     587 a submission server wants AUTH before it; between servers, on port 25, \
                     no login is asked)."
                ),
                "RFC 5321 4.1.1.2, RFC 6409 4.3",
            ),
            S::ExpectRcpt => (
                state_text!("MAIL was accepted: the server waits for RCPT TO."),
                "RFC 5321 4.1.1.3",
            ),
            S::ExpectRcptOrData => (
                state_text!(
                    "At least one recipient was accepted: the server takes more RCPT TO, or DATA; \
                     DATA before any accepted recipient would get 503 or 554."
                ),
                "RFC 5321 4.1.1.4, 3.3",
            ),
            S::ReceivingData => (
                state_text!(
                    "After 354 the server reads the message up to a line holding only '.'."
                ),
                "RFC 5321 4.1.1.4",
            ),
            S::ReceivingBdat => (
                state_text!(
                    "The server reads the octets of a BDAT chunk, exactly as many as announced."
                ),
                "RFC 3030 2",
            ),
            S::ExpectBdat => (
                state_text!(
                    "A BDAT chunk without LAST was taken: the server waits for the next one."
                ),
                "RFC 3030 2",
            ),
            S::AwaitingStorage => (
                state_text!(
                    "The message is complete. The server stores it before it answers: its 250 will \
                     mean it has taken responsibility for the message."
                ),
                "RFC 5321 6.1",
            ),
            S::ExpectAuthResponse => (
                state_text!(
                    "The server sent a 334 challenge and waits for the client's base64 answer."
                ),
                "RFC 4954 4",
            ),
            S::ExpectQuit => (
                state_text!(
                    "The server refused the session in its greeting (554): it now waits for QUIT, \
                     and answers any other command with 503."
                ),
                "RFC 5321 3.1",
            ),
            S::Closed => (
                state_text!(
                    "The server's session ends here: it sends its last reply, if it has one \
                     (221 to QUIT), and closes the connection."
                ),
                "RFC 5321 4.1.1.10",
            ),
        },
        StateName::Pop3Client(state) => match state {
            P::ExpectGreeting => (
                state_text!("The user agent waits for the server's +OK greeting."),
                "RFC 1939 4",
            ),
            P::ExpectCapaReply => (
                state_text!("The user agent sends CAPA and waits for the list of capabilities."),
                "RFC 2449 5",
            ),
            P::ExpectUtf8Reply => (
                state_text!(
                    "The user agent sends UTF8 and waits for the server to turn UTF-8 mode on."
                ),
                "RFC 6856 2",
            ),
            P::ExpectUserReply => (
                state_text!("The user agent sends USER and waits for +OK."),
                "RFC 1939 7",
            ),
            P::ExpectPassReply => (
                state_text!(
                    "The user agent sends PASS; on +OK the maildrop is locked for this session."
                ),
                "RFC 1939 7, 4",
            ),
            P::ExpectStatReply => (
                state_text!(
                    "The user agent sends STAT and waits for the count and size of the messages."
                ),
                "RFC 1939 5",
            ),
            P::ExpectListReply => (
                state_text!("The user agent sends LIST and waits for each message's size."),
                "RFC 1939 5",
            ),
            P::ExpectUidlReply => (
                state_text!("The user agent sends UIDL and waits for each message's unique-id."),
                "RFC 1939 7",
            ),
            P::ExpectRetrReply => (
                state_text!("The user agent sends RETR and waits for the message."),
                "RFC 1939 5",
            ),
            P::ExpectDeleReply => (
                state_text!(
                    "The user agent sends DELE and waits for +OK: the message is marked, not yet \
                     removed."
                ),
                "RFC 1939 5",
            ),
            P::ExpectQuitReply => (
                state_text!(
                    "The user agent sends QUIT; the server now removes the messages marked with \
                     DELE, if any."
                ),
                "RFC 1939 6",
            ),
            P::Finished => (
                state_text!("The user agent's session is over."),
                "RFC 1939 6",
            ),
        },
        StateName::Pop3Server(state) => match state {
            Q::ExpectUser => (
                state_text!(
                    "AUTHORIZATION state: the server waits for USER (or CAPA, UTF8, QUIT)."
                ),
                "RFC 1939 4",
            ),
            Q::ExpectPass => (
                state_text!("AUTHORIZATION state: USER was taken; the server waits for PASS."),
                "RFC 1939 7",
            ),
            Q::Transaction => (
                state_text!(
                    "TRANSACTION state: the maildrop is locked, and the client lists, reads and \
                     marks messages."
                ),
                "RFC 1939 5",
            ),
            Q::Update => (
                state_text!(
                    "UPDATE state: after QUIT the server removes the messages marked with DELE, if \
                     any."
                ),
                "RFC 1939 6",
            ),
            Q::Closed => (state_text!("The server's session is over."), "RFC 1939 6"),
        },
    }
}

/// What each SMTP session's EHLO reply said about PIPELINING, read as the steps go by, so
/// that a MAIL sent alone is explained by its own session: a server that did not offer it
/// (the client must wait for each reply, RFC 2920 3.1), a session without extensions, or a
/// client that does not use it.
#[derive(Debug, Default)]
pub struct PipeliningOffers {
    by_conn: BTreeMap<ConnId, Offer>,
}

#[derive(Clone, Copy, Debug)]
enum Offer {
    /// The client sent EHLO; the reply has not come yet.
    Asked,
    /// The server took EHLO (250), with or without PIPELINING and CHUNKING among its
    /// extensions.
    Answered { pipelining: bool, chunking: bool },
    /// A HELO session, or EHLO refused: no extensions at all.
    NoExtensions,
}

impl PipeliningOffers {
    /// Takes note of bytes sent on an SMTP connection: a greeting command, or the reply to
    /// EHLO, read as the client reads it.
    pub fn observe(&mut self, conn: ConnId, direction: Direction, bytes: &[u8]) {
        match direction {
            Direction::ClientToServer => match verb(bytes).as_str() {
                "EHLO" => {
                    self.by_conn.insert(conn, Offer::Asked);
                }
                "HELO" => {
                    self.by_conn.insert(conn, Offer::NoExtensions);
                }
                _ => {}
            },
            Direction::ServerToClient => {
                if !matches!(self.by_conn.get(&conn), Some(Offer::Asked)) {
                    return;
                }
                let mut reader = ReplyReader::new();
                reader.push(bytes);
                let offer = match reader.next_reply() {
                    Some(Ok(reply)) if reply.code == 250 => {
                        let offered = ServerExtensions::from_ehlo_reply(&reply);
                        Offer::Answered {
                            pipelining: offered.pipelining,
                            chunking: offered.chunking,
                        }
                    }
                    Some(Ok(_)) => Offer::NoExtensions,
                    // Not a whole reply yet, or not one: the reply is still awaited.
                    _ => return,
                };
                self.by_conn.insert(conn, offer);
            }
        }
    }

    /// The note for `bytes`, when they are a DATA command sent alone on a session whose
    /// greeting is known: DATA, and why not BDAT, by what the server offered (RFC 3030 2: BDAT
    /// only where CHUNKING is listed).
    pub fn data_note(&self, conn: ConnId, bytes: &[u8]) -> Option<StepNote> {
        if !bytes.eq_ignore_ascii_case(b"DATA\r\n") {
            return None;
        }
        const DATA: &str =
            "DATA asks to send the message itself; the client waits for 354 before sending it.";
        let why = match self.by_conn.get(&conn)? {
            Offer::Asked => return None,
            Offer::Answered { chunking: true, .. } => {
                "The server also lists CHUNKING, with which the message could go in BDAT \
                 chunks, counted, nothing dot-stuffed; this client uses DATA, as user agents \
                 and most servers' clients do (Postfix's never sends BDAT)."
            }
            Offer::Answered {
                chunking: false, ..
            } => {
                "This server does not list CHUNKING, so DATA is the one way to send the \
                 message: a client that sends BDAT chunks where it can sends DATA here, its \
                 message dot-stuffed."
            }
            Offer::NoExtensions => {
                "This session began with HELO, so it has no extensions: DATA is the one way to \
                 send the message (BDAT needs CHUNKING, which only an EHLO reply can list)."
            }
        };
        Some(StepNote {
            text: Cow::Owned(format!("{DATA} {why}")),
            rfc: Cow::Borrowed("RFC 5321 4.1.1.4, RFC 3030 2"),
        })
    }

    /// The note for `bytes`, when they are a MAIL command sent alone (and nothing a note of
    /// its own explains, such as a bare line feed) on a session whose greeting is known.
    pub fn mail_sent_alone_note(&self, conn: ConnId, bytes: &[u8]) -> Option<StepNote> {
        if verb(bytes) != "MAIL" || !single_line(bytes) || has_bare_line_feed(bytes) {
            return None;
        }
        match self.by_conn.get(&conn)? {
            Offer::Asked => None,
            Offer::Answered {
                pipelining: false, ..
            } => note(
                "MAIL FROM starts a mail transaction and gives the reverse path, where bounces \
                 go. It goes alone here: this server's EHLO reply did not offer PIPELINING, so \
                 the client waits for each reply before its next command, one round trip per \
                 command.",
                "RFC 5321 4.1.1.2, RFC 2920 3.1",
            ),
            Offer::Answered {
                pipelining: true, ..
            } => note(
                "MAIL FROM starts a mail transaction and gives the reverse path, where bounces \
                 go. It goes alone here: the server offers PIPELINING, but this client does not \
                 use it, and waits for each reply before its next command, one round trip per \
                 command.",
                "RFC 5321 4.1.1.2, RFC 2920",
            ),
            Offer::NoExtensions => note(
                "MAIL FROM starts a mail transaction and gives the reverse path, where bounces \
                 go. It goes alone here: this session began with HELO, so it has no extensions \
                 (PIPELINING among them), and the client waits for each reply before its next \
                 command, one round trip per command.",
                "RFC 5321 4.1.1.2, RFC 2920 3.1",
            ),
        }
    }
}

/// Each SMTP session's mail transactions so far, read as the steps go by, so that a MAIL
/// starting another one on the same connection is told as such (RFC 5321 4.1.4), and as the
/// rest of a message's recipients after a 452 "too many recipients" (RFC 5321 4.5.3.1.10).
#[derive(Debug, Default)]
pub struct TransactionsSeen {
    by_conn: BTreeMap<ConnId, ConnectionTransactions>,
}

/// A connection's last mail transaction; there is one from its first MAIL on.
#[derive(Clone, Copy, Debug, Default)]
struct ConnectionTransactions {
    /// RCPT commands sent since the last MAIL, and replies read since it: the first reply is
    /// MAIL's own, the next `rcpts` those to RCPT, then DATA's 354 and the message's reply.
    rcpts: u32,
    replies: u32,
    /// A 354 came: the client's next send is the message, whose lines are no commands.
    content_next: bool,
    /// A recipient of the last transaction was accepted.
    recipient_accepted: bool,
    /// After an accepted recipient, a 452 (or RFC 821's 552) that the client takes as "too
    /// many recipients": it holds the rest back for the next transaction, as its engine does.
    recipients_held_back: bool,
    /// The server refused the last transaction's message: its DATA, the message after the
    /// data, or one of its BDAT chunks got a 4yz or 5yz.
    message_refused: bool,
}

impl TransactionsSeen {
    /// Takes note of bytes sent on an SMTP connection: a MAIL that begins a transaction, its
    /// RCPT commands, and the replies to them and to the data. Each send of the simulated
    /// servers holds whole replies.
    pub fn observe(&mut self, conn: ConnId, direction: Direction, bytes: &[u8]) {
        match direction {
            Direction::ClientToServer => {
                if let Some(seen) = self.by_conn.get_mut(&conn) {
                    // The message's lines, after a 354 or with their BDAT, are no commands.
                    if std::mem::take(&mut seen.content_next) || verb(bytes) == "BDAT" {
                        return;
                    }
                }
                let rcpts = crate::smtp::dot::lines_inclusive(bytes)
                    .filter(|line| verb(line) == "RCPT")
                    .count();
                let rcpts = u32::try_from(rcpts).unwrap_or(u32::MAX);
                if verb(bytes) == "MAIL" {
                    self.by_conn.insert(
                        conn,
                        ConnectionTransactions {
                            rcpts,
                            ..ConnectionTransactions::default()
                        },
                    );
                } else if let Some(seen) = self.by_conn.get_mut(&conn) {
                    seen.rcpts = seen.rcpts.saturating_add(rcpts);
                }
            }
            Direction::ServerToClient => {
                let Some(seen) = self.by_conn.get_mut(&conn) else {
                    return;
                };
                let mut reader = ReplyReader::new();
                reader.push(bytes);
                while let Some(Ok(reply)) = reader.next_reply() {
                    seen.replies = seen.replies.saturating_add(1);
                    let to_rcpt = (2..=seen.rcpts.saturating_add(1)).contains(&seen.replies);
                    if to_rcpt {
                        if reply.code / 100 == 2 {
                            seen.recipient_accepted = true;
                        } else if seen.recipient_accepted
                            && crate::smtp::client::may_mean_too_many_recipients(&reply)
                        {
                            seen.recipients_held_back = true;
                        }
                    } else if reply.code == 354 {
                        seen.content_next = true;
                    } else if seen.replies > 1 && reply.code >= 400 {
                        // Past MAIL's and the RCPTs' replies: DATA's, the message's, a chunk's
                        // (an RSET's 250 is none of these).
                        seen.message_refused = true;
                    }
                }
            }
        }
    }

    /// Whether the client's next send on `conn` is the message itself: a 354 came.
    pub fn message_comes_next(&self, conn: ConnId) -> bool {
        self.by_conn
            .get(&conn)
            .is_some_and(|seen| seen.content_next)
    }

    /// `note` (the MAIL's own), told for bytes that are a MAIL starting another transaction
    /// on a connection that has had one: what that transaction is comes first.
    pub fn with_transaction_context(
        &self,
        conn: ConnId,
        bytes: &[u8],
        note: Option<StepNote>,
    ) -> Option<StepNote> {
        let note = note?;
        // A connection has a transaction from its first MAIL on; a bare line feed has a note
        // of its own. (The message after a 354 never comes here: see `message_comes_next`.)
        let Some(seen) = self
            .by_conn
            .get(&conn)
            .filter(|_| verb(bytes) == "MAIL" && !has_bare_line_feed(bytes))
        else {
            return Some(note);
        };
        // The client engine sends the recipients it held back in the very next transaction,
        // whatever became of the message in the last one.
        let (before, rfc) = if seen.recipients_held_back {
            let (then, rfc) = if seen.message_refused {
                (
                    "; it then refused the message itself, but that refusal was the last \
                     transaction's and decided only the recipients it had taken: the ones held \
                     back get a transaction of their own, where the server answers for them",
                    "RFC 5321 4.5.3.1.10, 3.3, 4.1.4",
                )
            } else {
                (
                    ", and sends the rest in a new transaction",
                    "RFC 5321 4.5.3.1.10, 4.1.4",
                )
            };
            (
                Cow::Owned(format!(
                    "The same message again, in another transaction on this connection: in the \
                     last one the server refused some recipients with 452 (or RFC 821's 552) \
                     after taking others, which a client takes as 'too many recipients' unless \
                     the reply's enhanced code says otherwise{then}. So the message now goes \
                     again to those recipients (and on to those not yet offered, when it has \
                     more than the 100 a client puts in one transaction), with no new \
                     connection, greeting or EHLO. "
                )),
                rfc,
            )
        } else {
            (
                Cow::Borrowed(
                    "Another mail transaction on this connection, which stays open: no new \
                     connection, greeting or EHLO is needed, as a session may hold any number \
                     of transactions. ",
                ),
                "RFC 5321 4.1.4",
            )
        };
        Some(StepNote {
            text: Cow::Owned(format!("{before}{}", note.text)),
            rfc: Cow::Owned(joined_citations(rfc, &note.rfc)),
        })
    }
}

/// How many of a DNS answer's records, and of the hosts to try, a note names; the rest are
/// counted (the step's lines have them all).
const DNS_RECORDS_NAMED: usize = 6;
const MX_TARGETS_NAMED: usize = 8;

/// `items` joined with "; ", the first `named` of them, and how many more.
fn listed(items: &[String], named: usize) -> String {
    let mut text = items
        .iter()
        .take(named)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > named {
        text.push_str(&format!(" and {} more", items.len() - named));
    }
    text
}

/// Two lists of citations as one: `RFC 5321 4.1.4` then `RFC 5321 4.1.1.2, RFC 2920` is
/// `RFC 5321 4.1.4, 4.1.1.2, RFC 2920`, an RFC named once where its sections follow on.
fn joined_citations(first: &str, then: &str) -> String {
    let last_rfc = |citations: &str| {
        citations
            .rsplit(", ")
            .find_map(|citation| citation.strip_prefix("RFC "))
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string)
    };
    let then = match (last_rfc(first), then.strip_prefix("RFC ")) {
        (Some(number), Some(rest)) => match rest.strip_prefix(number.as_str()) {
            Some(sections) if sections.starts_with(' ') => sections.trim_start(),
            _ => then,
        },
        _ => then,
    };
    format!("{first}, {then}")
}

/// What a MAIL note says of the reverse path, and what it says instead when the path is the
/// null one: a notice, about which nothing may be sent back (RFC 5321 4.5.5).
const REVERSE_PATH_TEXT: &str = "gives the reverse path, where bounces go.";
const NULL_REVERSE_PATH_TEXT: &str = "gives the null reverse path <>, as notices such as \
     bounces and delay notices do: nothing may be sent back about this message (RFC 5321 \
     4.5.5).";

/// `note`, told for bytes that are a MAIL command with the null reverse path (`MAIL FROM:<>`)
/// when they are: the general text says bounces go to the reverse path, which such a message
/// has none of.
pub fn for_null_reverse_path(note: Option<StepNote>, bytes: &[u8]) -> Option<StepNote> {
    let mut note = note?;
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let null_path = first_line
        .get(..10)
        .is_some_and(|start| start.eq_ignore_ascii_case(b"MAIL FROM:"))
        && first_line[10..].trim_ascii_start().starts_with(b"<>");
    if null_path && note.text.contains(REVERSE_PATH_TEXT) {
        note.text = Cow::Owned(note.text.replace(REVERSE_PATH_TEXT, NULL_REVERSE_PATH_TEXT));
    }
    Some(note)
}

/// `note`, for bytes holding `MAIL FROM:<...>` or `RCPT TO:<...>` commands with parameters
/// (RFC 5321 4.1.1.11), followed by what each parameter says: the reason the server's reply
/// may turn on them, and what the sender asked for. A MAIL is read on the first line, where
/// it stands in a send; the RCPT commands on every line (a pipelined batch).
pub fn with_mail_parameters(note: Option<StepNote>, bytes: &[u8]) -> Option<StepNote> {
    let mut note = note?;
    let mut said: Vec<String> = Vec::new();
    // What has been told: a NOTIFY value once whatever its case, ORCPT once whatever its
    // address (a batch of many recipients would repeat it for each).
    let mut told: Vec<String> = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let is_mail = index == 0
            && line
                .get(..10)
                .is_some_and(|start| start.eq_ignore_ascii_case(b"MAIL FROM:"));
        let is_rcpt = line
            .get(..8)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"RCPT TO:"));
        if !is_mail && !is_rcpt {
            continue;
        }
        let Some(path_end) = path_end(line) else {
            continue;
        };
        let parameters = String::from_utf8_lossy(&line[path_end + 1..]);
        for parameter in parameters.split_ascii_whitespace() {
            let (keyword, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            let keyword = keyword.to_ascii_uppercase();
            let told_as = match keyword.as_str() {
                "ORCPT" => keyword.clone(),
                _ => format!("{keyword}={}", value.to_ascii_uppercase()),
            };
            if told.contains(&told_as) {
                continue;
            }
            told.push(told_as);
            let sentence = if is_mail {
                mail_parameter_note(&keyword, value)
            } else {
                rcpt_parameter_note(&keyword, value)
            };
            said.extend(sentence);
        }
    }
    if !said.is_empty() {
        note.text = Cow::Owned(format!("{} {}", note.text, said.join(" ")));
    }
    Some(note)
}

/// What a MAIL parameter says (RFC 5321 4.1.1.11 and the extensions').
fn mail_parameter_note(keyword: &str, value: &str) -> Option<String> {
    Some(match keyword {
        "SIZE" => format!(
            "SIZE={value} declares the message's size in octets, so that a server with a \
             smaller limit refuses it now, before it is sent (RFC 1870 3, 6)."
        ),
        "BODY" if value.eq_ignore_ascii_case("8BITMIME") => "BODY=8BITMIME says the message \
             holds 8-bit data, which only a server that offers 8BITMIME takes (RFC 6152 2)."
            .to_string(),
        "BODY" => {
            format!("BODY={value} says what kind of data the message is (RFC 6152 2, RFC 3030 3).")
        }
        "SMTPUTF8" => "SMTPUTF8 says that the message's addresses or header fields are UTF-8, \
             which only a server that offers SMTPUTF8 takes (RFC 6531 3.4)."
            .to_string(),
        "AUTH" => format!(
            "AUTH={value} names who submitted the message, as far as this client knows (RFC \
             4954 5)."
        ),
        "RET" if value.eq_ignore_ascii_case("FULL") => "RET=FULL asks that a notice of \
             failure return the whole message; success and delay reports return its header \
             only (DSN, RFC 3461 4.3)."
            .to_string(),
        "RET" => format!(
            "RET={value} asks that a notice of failure return only the message's header, not \
             its body (DSN, RFC 3461 4.3)."
        ),
        "ENVID" => format!(
            "ENVID={value} is the sender's own name for this sending, in xtext (+ and two hex \
             digits for \"+\", \"=\", a space and what is not printable), which every notice \
             about it quotes as Original-Envelope-Id, so that the sender can match it (DSN, RFC \
             3461 4.4)."
        ),
        _ => return None,
    })
}

/// What a RCPT parameter says: those of DSN (RFC 3461 4.1, 4.2).
fn rcpt_parameter_note(keyword: &str, value: &str) -> Option<String> {
    Some(match keyword {
        "NOTIFY" if value.eq_ignore_ascii_case("NEVER") => "NOTIFY=NEVER asks for no notice \
             at all about this recipient: should delivery fail, the sender is not told, not \
             even by a bounce (DSN, RFC 3461 4.1)."
            .to_string(),
        "NOTIFY" => {
            // Read as the server reads it: a value it refuses is told as such.
            let Ok(Notify::On {
                success,
                failure,
                delay,
            }) = Notify::parse(value)
            else {
                return Some(format!(
                    "NOTIFY={value} would say when the sender wants a notice about this \
                     recipient: NEVER, or any of SUCCESS, FAILURE and DELAY (DSN, RFC 3461 \
                     4.1)."
                ));
            };
            let asked: Vec<&str> = [
                (success, "of delivery"),
                (failure, "of failure"),
                (delay, "of a delay"),
            ]
            .into_iter()
            .filter_map(|(on, words)| on.then_some(words))
            .collect();
            format!(
                "NOTIFY={value} asks for a notice {} and of nothing else: with no NOTIFY a \
                 server reports failures, and delays if it chooses, never success (DSN, RFC \
                 3461 4.1).",
                with_and(&asked)
            )
        }
        "ORCPT" => format!(
            "ORCPT={value} gives the recipient's address as the sender first wrote it (type; \
             address, in xtext{}), which a notice quotes as Original-Recipient however later \
             servers rewrite the address (DSN, RFC 3461 4.2).",
            if value
                .get(..6)
                .is_some_and(|t| t.eq_ignore_ascii_case("utf-8;"))
            {
                "; the utf-8 type writes each character outside printable ASCII as \\x{HEX}, \
                 RFC 6533 3"
            } else {
                ""
            }
        ),
        _ => return None,
    })
}

/// `a`, `a and b`, `a, b and c`.
fn with_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Where the path of `line` (`MAIL FROM:<...>`) ends: its `>`, outside a quoted local part
/// (`<"a>b"@c>`) and not escaped in one (RFC 5321 4.1.2).
fn path_end(line: &[u8]) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (at, &byte) in line.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

/// Whether `bytes` hold a line feed without a carriage return before it.
fn has_bare_line_feed(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes).any(|at| at == 0 || bytes[at - 1] != b'\r')
}

/// The command word a line starts with, in upper case; nothing when the word is followed at
/// once by ":", as in a message's header field ("Mail: ...", "Data: ..."): no command is
/// (RFC 5321 4.1.1), and a message may begin with such a field.
fn verb(line: &[u8]) -> String {
    let end = line
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n' || *b == b':')
        .unwrap_or(line.len());
    if line.get(end) == Some(&b':') {
        return String::new();
    }
    String::from_utf8_lossy(&line[..end]).to_ascii_uppercase()
}

/// Whether a client's send holds a line ended by a bare LF outside the chunks of its BDAT
/// commands: a chunk is counted octets, which no line ending ends (RFC 3030 2), unlike the
/// data after DATA, whose lines are read until the line holding only ".".
fn bare_line_feed_outside_chunks(bytes: &[u8]) -> bool {
    let mut at = 0;
    let mut in_data = false;
    while let Some(end) = memchr::memchr(b'\n', &bytes[at..]).map(|end| at + end) {
        let line = &bytes[at..end];
        if line.last() != Some(&b'\r') {
            return true;
        }
        at = end + 1;
        if in_data {
            in_data = line != b".\r";
            continue;
        }
        match verb(line).as_str() {
            "DATA" => in_data = true,
            // Read as the server reads it: a BDAT it cannot read is its own error, no chunk.
            "BDAT" => {
                let command = line.strip_suffix(b"\r").unwrap_or(line);
                if let Ok(Command::Bdat { size, .. }) = parse_command(command) {
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    at = at.saturating_add(size).min(bytes.len());
                }
            }
            _ => {}
        }
    }
    false
}

fn smtp_command_note(bytes: &[u8]) -> Option<StepNote> {
    let verb = verb(bytes);
    // RFC 2920 3.1: these commands may only end a group sent without waiting, because what
    // follows depends on their reply; a scripted client may send on regardless.
    let must_wait = matches!(
        verb.as_str(),
        "EHLO" | "HELO" | "DATA" | "VRFY" | "EXPN" | "TURN" | "QUIT" | "NOOP"
    );
    if must_wait && memchr::memchr(b'\n', bytes).is_some_and(|end| end + 1 < bytes.len()) {
        return note(
            "These bytes hold several lines sent at once, and the first is a command whose \
             reply the client must wait for: EHLO, HELO, DATA, VRFY, EXPN, TURN, QUIT and \
             NOOP may only end a group of commands sent without waiting, as what comes next \
             depends on their reply (after EHLO, whether PIPELINING is offered at all; after \
             DATA, the 354 that asks for the message). A client that writes everything at \
             once, as a script or a spam engine may, is not following SMTP; the server still \
             reads one command at a time, and answers each as its state allows.",
            "RFC 2920 3.1, RFC 5321 4.1.4, 4.3.2",
        );
    }
    match verb.as_str() {
        "EHLO" => note(
            "EHLO names the client and asks which extensions the server offers (one per line \
             of the reply). RFC 5321 lists 500, 501, 502 and 550 as a server's replies when \
             it will not take EHLO; after a failed EHLO a client may try HELO (RFC 1869 4.5). \
             This client, as most do, falls back to HELO after a 500, 501, 502 or 504 (a \
             command the server does not know or take), but not after a 550, which refuses \
             the client itself.",
            "RFC 5321 4.1.1.1, 4.1.4, RFC 1869 4.5",
        ),
        "HELO" => note(
            "HELO starts a plain SMTP session without extensions.",
            "RFC 5321 4.1.1.1",
        ),
        "AUTH" => note(
            "AUTH PLAIN sends the user name and password, base64-encoded (not encrypted): \
             submission servers normally require authentication, with this or another \
             mechanism, before they take mail.",
            "RFC 4954, RFC 4616, RFC 6409 4.3",
        ),
        // Whether the commands after MAIL went with it tells a pipelining client from one
        // that waits for each reply.
        "MAIL" if single_line(bytes) => note(
            "MAIL FROM starts a mail transaction and gives the reverse path, where bounces go. \
             It goes alone here, as from a client that waits for each reply before its next \
             command: one round trip per command. Where the server offers PIPELINING, a \
             client may send MAIL and every RCPT at once.",
            "RFC 5321 4.1.1.2, RFC 2920",
        ),
        // A line not ended yet: the server waits for its CRLF before it reads the command.
        "MAIL" if memchr::memchr(b'\n', bytes).is_none() => note(
            "MAIL FROM starts a mail transaction and gives the reverse path, where bounces go. \
             A command ends with CRLF: until it comes, the server waits.",
            "RFC 5321 4.1.1.2, 2.3.8",
        ),
        "MAIL" => note(
            "MAIL FROM starts a mail transaction and gives the reverse path, where bounces go. \
             Here the commands after it go in the same send, without waiting for each reply: \
             PIPELINING allows this when the server offers it, and saves a round trip per \
             command.",
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
        "BDAT" => Some(bdat_note(bytes)),
        // Other commands come from scripted clients, one line at a time (message data may
        // start with a field such as "Help:", which is no command).
        "NOOP" if single_line(bytes) => note(
            "NOOP does nothing and gets 250: a client may use it to keep a connection alive \
             or to test it.",
            "RFC 5321 4.1.1.9",
        ),
        "VRFY" if single_line(bytes) => note(
            "VRFY asks whether an address is a mailbox here. Many servers answer 252 (cannot \
             verify, but will accept the mail), which reveals nothing to address harvesters; \
             others check the address (Postfix by default) or turn VRFY off with 502, which \
             RFC 5321 says is not fully compliant: a server that will not verify answers 252.",
            "RFC 5321 3.5.3, 4.1.1.6, 7.3",
        ),
        "EXPN" if single_line(bytes) => note(
            "EXPN asks for the members of a mailing list; few servers implement it.",
            "RFC 5321 3.5.2, 4.1.1.7",
        ),
        "HELP" if single_line(bytes) => note(
            "HELP asks the server for information, such as the commands it knows.",
            "RFC 5321 4.1.1.8",
        ),
        "STARTTLS" if single_line(bytes) => note(
            "STARTTLS asks to continue the session over TLS, which a client may do only when \
             the server offers it in its EHLO reply.",
            "RFC 3207 4",
        ),
        _ => whole_message_note(bytes).or_else(|| {
            note(
                "Bytes from the client: message data if they follow a 354 reply (header \
                 fields, an empty line, the body, until a line with only '.'), otherwise a \
                 command this note does not cover; the server's reply says what it made of \
                 them.",
                "RFC 5321 4.1, 4.1.1.4",
            )
        }),
    }
}

/// The note for a BDAT command (with its chunk, as a client writes them), by whether it
/// carries the message's last chunk.
fn bdat_note(bytes: &[u8]) -> StepNote {
    bdat_note_after(bytes, b"")
}

/// [`bdat_note`] for a chunk that follows chunks of the same message whose last octets were
/// `tail` (see [`chunk_stream_tail`]): a lone LF after a CR ends a line, not stops in one.
fn bdat_note_after(bytes: &[u8], tail: &[u8]) -> StepNote {
    let line_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let line = &bytes[..line_end];
    let command = line.strip_suffix(b"\r").unwrap_or(line);
    const COUNTED: &str = "exactly that many octets follow the command line, and the server \
        counts them rather than look for an end, so nothing is dot-stuffed and a line holding \
        only a dot is just text. BDAT belongs to CHUNKING, which the server lists in its EHLO \
        reply";
    let text = match parse_command(command) {
        Ok(Command::Bdat { size, last: true }) => format!(
            "BDAT {size} LAST sends the message's last chunk: {COUNTED}. LAST says the message \
             is complete, so the reply to this chunk says whether the server took it, as the \
             reply after DATA's final dot does."
        ),
        Ok(Command::Bdat { size, last: false }) => format!(
            "BDAT {size} sends a chunk of the message: {COUNTED}. More chunks follow, each \
             with its own BDAT; the last one says LAST."
        ),
        _ => {
            "BDAT sends a chunk of exactly the given number of octets; no dot-stuffing.".to_string()
        }
    };
    // A chunk before the last that stops inside a line, as a client's may: its count, not a
    // line end, ends it.
    let text = match bdat_with_chunk(bytes) {
        Some((chunk, false)) if ChunkStart::after(tail, chunk).completes_crlf => text,
        Some((chunk, false)) if chunk.ends_with(b"\r") && !chunk.ends_with(b"\r\n") => format!(
            "{text} This chunk ends with a CR whose LF opens the next chunk: the server joins \
             them into one line end, as it counts octets rather than reading lines."
        ),
        Some((chunk, false)) if !chunk.is_empty() && !chunk.ends_with(b"\r\n") => format!(
            "{text} This chunk stops in the middle of a line (marked \"no CRLF\"): the next \
             one goes on from there."
        ),
        _ => text,
    };
    StepNote {
        text: Cow::Owned(text),
        rfc: Cow::Borrowed("RFC 3030 2"),
    }
}

/// The sends before the event at `index` (a send on a connection) on the same connection,
/// each with its direction, the latest first, back to the connection's opening, not beyond.
pub(crate) fn earlier_on_connection(
    events: &[TraceEvent],
    index: usize,
) -> impl Iterator<Item = (Direction, &[u8])> {
    let conn = match events.get(index).map(|event| &event.event) {
        Some(Event::Transmitted { conn, .. }) => Some(*conn),
        _ => None,
    };
    // No connection: nothing before it (`index` is within `events` then).
    let before = if conn.is_some() {
        &events[..index]
    } else {
        &[]
    };
    let opened_here = move |event: &&Event| matches!(event, Event::ConnectionOpened { conn: opened } if Some(*opened) == conn);
    before
        .iter()
        .rev()
        .map(|event| &event.event)
        .take_while(move |event| !opened_here(event))
        .filter_map(move |event| match event {
            Event::Transmitted {
                conn: on,
                direction,
                bytes,
            } if Some(*on) == conn => Some((*direction, bytes.as_bytes())),
            _ => None,
        })
}

/// Whether the last reply in a server's send is a 354 (start mail input): the client's next
/// send is the message (its last line, as a reply's last line is, RFC 5321 4.2.1).
pub(crate) fn last_reply_is_354(sent: &[u8]) -> bool {
    crate::smtp::dot::lines_inclusive(sent)
        .last()
        .is_some_and(|line| line.starts_with(b"354"))
}

/// How many SMTP replies `bytes` (a server's send) holds: lines that end a reply, with a space
/// or nothing after their code (RFC 5321 4.2.1).
fn replies_in_send(bytes: &[u8]) -> usize {
    crate::smtp::dot::lines_inclusive(bytes)
        .map(|line| line.strip_suffix(b"\r\n").unwrap_or(line))
        .filter(|line| {
            line.get(..3)
                .is_some_and(|code| code.iter().all(u8::is_ascii_digit))
                && line.get(3).is_none_or(|&after| after == b' ')
        })
        .count()
}

/// The commands the replies of a server's send (the event at `index`, holding `replies`
/// replies) answer, each line as sent, in the order of the replies: a server answers the
/// commands it reads in the order they came (RFC 5321 4.1.1, RFC 2920 3.1). Told only when
/// that is sure: the client's sends since the server's send before this one, on the
/// connection since it opened, hold exactly `replies` lines, each ended by CR LF (RFC 5321
/// 2.3.8), none empty, none of them a message after a 354 or a BDAT command, whose chunk's
/// octets are no commands. `None` otherwise, and for the greeting and the server's first send
/// after it: the trace has the greeting before the client's side of the connection opens, so
/// the walk back along the connection stops short of it. (The host clients' first command
/// after the greeting is EHLO or HELO, sent alone.) The step's own checks are in
/// [`super::steps::Step::commands_answered`].
pub(crate) fn commands_answered(
    events: &[TraceEvent],
    index: usize,
    replies: usize,
) -> Option<Vec<&[u8]>> {
    let mut sends = Vec::new();
    let mut server_send_before = None;
    for (direction, bytes) in earlier_on_connection(events, index) {
        match direction {
            Direction::ClientToServer => sends.push(bytes),
            Direction::ServerToClient => {
                server_send_before = Some(bytes);
                break;
            }
        }
    }
    // An empty send holds no reply to pair with.
    let server_send_before = server_send_before.filter(|send| !send.is_empty())?;
    if last_reply_is_354(server_send_before) {
        return None;
    }
    let mut commands = Vec::with_capacity(replies);
    for bytes in sends.into_iter().rev() {
        for line in crate::smtp::dot::lines_inclusive(bytes) {
            let command = line.strip_suffix(b"\r\n")?;
            let is_bdat = command
                .get(..4)
                .is_some_and(|start| start.eq_ignore_ascii_case(b"BDAT"));
            if command.is_empty()
                || command.contains(&b'\r')
                || is_bdat
                || commands.len() == replies
            {
                return None;
            }
            commands.push(command);
        }
    }
    (commands.len() == replies).then_some(commands)
}

/// The BDAT command a server's send of one reply (the event at `index`) answers, and which
/// chunk of its run that is (1 for the first): replies to chunks come in the order the chunks
/// went (RFC 3030 4.2, RFC 2920 3.1), so with chunks pipelined, the reply after a client's
/// last chunk may answer its first. Told only when that is sure: the client's sends since its
/// last other command are each one whole chunk (its BDAT line and exactly the octets it
/// announces), that command's replies all came before the first chunk went, and this reply
/// comes before all the chunks are answered.
pub(crate) fn chunk_answered(events: &[TraceEvent], index: usize) -> Option<(&[u8], usize)> {
    // Back along the connection to the client's last send that is not a chunk.
    let mut sends = Vec::new();
    let mut command_before = None;
    for (direction, bytes) in earlier_on_connection(events, index) {
        if direction == Direction::ClientToServer && bdat_with_chunk(bytes).is_none() {
            command_before = Some(bytes);
            break;
        }
        sends.push((direction, bytes));
    }
    sends.reverse();
    let first_chunk = sends
        .iter()
        .position(|(direction, _)| *direction == Direction::ClientToServer)?;
    let answered_before: usize = sends[..first_chunk]
        .iter()
        .map(|(_, bytes)| replies_in_send(bytes))
        .sum();
    let commands_before = crate::smtp::dot::lines_inclusive(command_before?).count();
    if answered_before != commands_before {
        return None;
    }
    let mut chunks = Vec::new();
    let mut replies = 0;
    for (direction, bytes) in &sends[first_chunk..] {
        match direction {
            Direction::ClientToServer => chunks.push(*bytes),
            Direction::ServerToClient => replies += replies_in_send(bytes),
        }
    }
    let chunk = chunks.get(replies)?;
    let line_end = memchr::memchr(b'\n', chunk)?;
    let command = chunk[..line_end].strip_suffix(b"\r")?;
    Some((command, replies + 1))
}

/// The client's send before the event at `index` on the same connection, if any.
fn previous_client_send(events: &[TraceEvent], index: usize) -> Option<&[u8]> {
    earlier_on_connection(events, index)
        .find(|(direction, _)| *direction == Direction::ClientToServer)
        .map(|(_, bytes)| bytes)
}

/// The last octets (two at most) of the message data a client sent in BDAT chunks right
/// before the event at `index` on its connection: `None` unless the send before it was a
/// chunk that was not the message's last. A line the chunks cut ends here unless these are
/// CR LF: chunks count octets, so a line end may come split over two of them.
pub(crate) fn chunk_stream_tail(events: &[TraceEvent], index: usize) -> Option<Vec<u8>> {
    // Gathered from the end backwards.
    let mut tail = Vec::with_capacity(2);
    let mut chunks = 0;
    for (direction, bytes) in earlier_on_connection(events, index) {
        if direction != Direction::ClientToServer {
            continue;
        }
        let Some((chunk, false)) = bdat_with_chunk(bytes) else {
            break;
        };
        chunks += 1;
        tail.extend(chunk.iter().rev().take(2 - tail.len()));
        if tail.len() == 2 {
            break;
        }
    }
    if chunks == 0 {
        return None;
    }
    tail.reverse();
    Some(tail)
}

/// How many of the chunks the client sent before the event at `index` (a BDAT write) were
/// still unanswered when it went: counted back along the connection's run of BDAT writes,
/// with the server's replies since the first of them (replies come in order, one per chunk).
fn chunks_unanswered_before(events: &[TraceEvent], index: usize) -> usize {
    let (mut chunks, mut answered, mut replies_since) = (0usize, 0usize, 0usize);
    for (direction, bytes) in earlier_on_connection(events, index) {
        match direction {
            Direction::ServerToClient => replies_since += replies_in_send(bytes),
            Direction::ClientToServer => match bdat_with_chunk(bytes) {
                Some((_, false)) => {
                    chunks += 1;
                    answered += std::mem::take(&mut replies_since);
                }
                // A last chunk ended another message; anything else is no chunk.
                _ => break,
            },
        }
    }
    chunks.saturating_sub(answered)
}

/// A client's BDAT or RSET told with the send before it: a chunk sent before the one ahead
/// of it was answered, a chunk that goes on with the line the one before stopped in, an RSET
/// after a refused chunk.
fn after_chunk_text(events: &[TraceEvent], index: usize) -> Option<(String, Cow<'static, str>)> {
    let Event::Transmitted {
        direction: Direction::ClientToServer,
        bytes,
        ..
    } = &events.get(index)?.event
    else {
        return None;
    };
    let bytes = bytes.as_bytes();
    let (_, before_last) = bdat_with_chunk(previous_client_send(events, index)?)?;
    if bytes.eq_ignore_ascii_case(b"RSET\r\n") {
        // Right after a chunk, last or not, the client resets only when one was refused: an
        // accepted last chunk ends the transaction, and MAIL comes next.
        return Some((
            "RSET abandons the mail transaction. It follows a refused BDAT chunk, after which \
             RFC 3030 leaves open whether the server still holds the transaction: the client \
             ends it before its next one (the next message's, or this one's for recipients a \
             452 held back). Any chunks the client had already sent behind the refused one \
             (pipelined) the server reads and discards; their replies change nothing."
                .to_string(),
            Cow::Borrowed("RFC 5321 4.1.1.5, RFC 3030 2"),
        ));
    }
    // A chunk after a last one starts another message.
    if before_last {
        return None;
    }
    let (chunk, _) = bdat_with_chunk(bytes)?;
    let tail = chunk_stream_tail(events, index).unwrap_or_default();
    let base = bdat_note_after(bytes, &tail);
    let pipelined = match chunks_unanswered_before(events, index) {
        0 => String::new(),
        unanswered => format!(
            " It goes before the replies to the chunks ahead of it ({unanswered} still \
             unanswered): the server lists PIPELINING, with which a client may send its chunks \
             one after another (this one keeps at most {} unanswered, each reply letting one \
             more go). The replies come back in order, one per chunk.",
            crate::smtp::client::PIPELINED_CHUNKS_MAX
        ),
    };
    let joined = if !ChunkStart::after(&tail, chunk).rest_of_line {
        ""
    } else if tail.ends_with(b"\r") && chunk.starts_with(b"\n") {
        " Its first octet, an LF, ends the line whose CR closed the previous chunk: the server \
         joins them into one CRLF."
    } else if chunk.starts_with(b"\r\n") {
        " Its first two octets, CR LF, end the line the previous chunk stopped in (marked \"no \
         CRLF\" there), so what shows as an empty line first is that line's end, not an empty \
         line of the message: the server joins them, as it counts octets rather than reading \
         lines."
    } else {
        " Its first line goes on with the line the previous chunk stopped in (marked \"no \
         CRLF\" there): the server joins them, as it counts octets rather than reading lines."
    };
    if pipelined.is_empty() && joined.is_empty() {
        return None;
    }
    let rfc = if pipelined.is_empty() {
        base.rfc
    } else {
        Cow::Owned(format!("{}, 4.2, RFC 2920", base.rfc))
    };
    Some((format!("{}{pipelined}{joined}", base.text), rfc))
}

/// A note for bytes that end a line with a bare LF: the smuggling they allow.
fn bare_line_feed_note() -> Option<StepNote> {
    note(
        "These bytes end a line with a bare LF, not CRLF. SMTP lines end only in CRLF, and the \
         data only with CRLF . CRLF. A server that also took LF . LF (or LF . CRLF) as the end \
         would read the bytes after it as new commands, a second message nobody \
         authenticated: SMTP smuggling. A careful server either refuses the message (550 \
         5.5.2), or reads on to the real CRLF . CRLF and only then stores each bare LF as \
         CRLF, never letting a bare LF end the data.",
        "RFC 5321 2.3.8, 4.1.1.4; CVE-2023-51764",
    )
}

/// The note for bytes a client sends as a message's data, after the server's 354: text,
/// whatever its lines look like (a first line "RCPT TO:<x>" is no command there).
pub fn message_data_note(bytes: &[u8]) -> Option<StepNote> {
    if has_bare_line_feed(bytes) {
        return bare_line_feed_note();
    }
    if bytes == b".\r\n" {
        return note(
            "The line with only '.' that ends the data, at once: the message is empty, with no \
             header fields and no body. RFC 5322 requires at least Date and From; a submission \
             server may add what is missing, as this simulation's do, and a relay adds \
             nothing but its Received: field.",
            "RFC 5321 4.1.1.4, RFC 5322 3.6, RFC 6409 8",
        );
    }
    whole_message_note(bytes).or_else(|| {
        note(
            "The message data: header fields, an empty line, the body, until a line with only \
             '.' (CRLF . CRLF), which is still to come. Lines starting with '.' get an extra \
             dot.",
            "RFC 5321 4.5.2, 4.1.1.4",
        )
    })
}

/// The note for bytes that are a whole message's data, ended by CRLF . CRLF; `None` for
/// others.
fn whole_message_note(bytes: &[u8]) -> Option<StepNote> {
    if !bytes.ends_with(b"\r\n.\r\n") {
        return None;
    }
    match multipart_subtype(bytes).as_deref() {
        Some("report") => note(
            "The message data: header fields, an empty line, the body. This is a delivery \
             status notification written by a mail server (a bounce, a delay notice, or a \
             report of delivery the sender asked for with DSN), a multipart/report: a part \
             for people saying what happened, a \
             message/delivery-status part with the same for programs (per recipient: Action, \
             Status, Diagnostic-Code), and the returned message or its header section. It goes \
             with an empty reverse path, MAIL FROM:<>, so that no notice is ever sent about it. \
             Lines starting with '.' get an extra dot, and a line with only '.' (CRLF . CRLF) \
             ends the data.",
            "RFC 5321 4.5.2, 4.1.1.4, 4.5.5, RFC 6522 3, RFC 3464 2",
        ),
        Some(_) => note(
            "The message data: header fields, an empty line, the body. This body is MIME \
             multipart: the header's Content-Type names a boundary, and a line of two dashes \
             and that boundary starts each part, which has header fields of its own; the same \
             line with two more dashes at its end closes the last. An attachment's part says \
             so in Content-Disposition: attachment, with its file name. SMTP carries lines of \
             text, so an attachment's bytes go as base64 (Content-Transfer-Encoding), in lines \
             of at most 76 characters, and text beyond ASCII as quoted-printable (or 8-bit, to \
             a server that offers 8BITMIME). Lines starting with '.' get an extra dot, and a \
             line with only '.' (CRLF . CRLF) ends the data.",
            "RFC 5321 4.5.2, 4.1.1.4, RFC 2046 5.1.1, RFC 2045 6.7, 6.8, RFC 2183 2",
        ),
        None => note(
            "The message data: header fields, an empty line, the body. Lines starting with '.' \
             get an extra dot, and a line with only '.' (CRLF . CRLF) ends the data.",
            "RFC 5321 4.5.2, 4.1.1.4",
        ),
    }
}

/// The subtype of message data's multipart body (`mixed`, `report`), if its header section
/// gives it one (RFC 2046 5.1).
fn multipart_subtype(data: &[u8]) -> Option<String> {
    let header_end = memchr::memmem::find(data, b"\r\n\r\n").unwrap_or(data.len());
    data[..header_end]
        .split(|&octet| octet == b'\n')
        .find_map(|line| {
            let line = String::from_utf8_lossy(line).to_ascii_lowercase();
            let value = line.strip_prefix("content-type:")?.trim_start();
            let subtype = value.strip_prefix("multipart/")?;
            let end = subtype
                .find(|c: char| c == ';' || c.is_whitespace())
                .unwrap_or(subtype.len());
            Some(subtype[..end].to_string())
        })
}

/// Whether `bytes` are one line, ended by its line feed.
fn single_line(bytes: &[u8]) -> bool {
    memchr::memchr(b'\n', bytes).is_some_and(|end| end + 1 == bytes.len())
}

fn pop3_command_note(bytes: &[u8]) -> Option<StepNote> {
    // Several commands in one send: the pipelining is what the step shows (RFC 2449 6.6).
    let commands = memchr::memchr_iter(b'\n', bytes).count();
    if commands > 1 {
        let capa_among_them = bytes
            .split(|&octet| octet == b'\n')
            .any(|line| verb(line) == "CAPA");
        return if capa_among_them {
            note(
                "Several commands in one send, without waiting for each reply: pipelining, \
                 which saves a round trip per command; the server answers them in order. A \
                 POP3 client may pipeline once the server lists PIPELINING in its CAPA reply, \
                 and this one sends on before it has read that reply: it takes for granted \
                 what it has not been told yet (this server does list it).",
                "RFC 2449 6.6, 5",
            )
        } else {
            note(
                "Several commands in one send, without waiting for each reply: pipelining, \
                 which saves a round trip per command; the server answers them in order. A \
                 POP3 client may do so when the server lists PIPELINING in its CAPA reply.",
                "RFC 2449 6.6",
            )
        };
    }
    match verb(bytes).as_str() {
        "USER" => note(
            "USER names the maildrop to log in to (AUTHORIZATION state); PASS, with its \
             password, comes next.",
            "RFC 1939 7",
        ),
        "PASS" => note(
            "PASS gives the password for the name USER gave, in clear unless the connection is \
             encrypted (STLS, or POP3 over TLS on port 995); on +OK the maildrop is locked for \
             this session, and the TRANSACTION state begins.",
            "RFC 1939 7, 4, RFC 8314",
        ),
        "STAT" => note(
            "STAT gives the number of messages in the maildrop and their total size in octets \
             (those marked with DELE not counted).",
            "RFC 1939 5",
        ),
        "LIST" => note(
            "LIST gives each message's number and size in octets, a line each (with a number, \
             that message's alone).",
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
            "QUIT ends the session and lets the server delete the messages marked with DELE, if \
             any (UPDATE state).",
            "RFC 1939 6",
        ),
        "CAPA" => note(
            "CAPA asks which optional features the server has (TOP, UIDL, PIPELINING, UTF8 \
             ...), one per line of the reply, so the client uses only those.",
            "RFC 2449 5",
        ),
        "UTF8" => note(
            "UTF8 turns on UTF-8 mode (only before login): the server may then send messages \
             whose header fields are UTF-8, and responses in UTF-8. UTF-8 user names and \
             passwords depend on something else: 'UTF8 USER' in the server's CAPA list.",
            "RFC 6856 2.1, 2.2",
        ),
        "TOP" => note(
            "TOP asks for a message's header section and its first lines of body.",
            "RFC 1939 7",
        ),
        "NOOP" => note("NOOP does nothing; the server answers +OK.", "RFC 1939 5"),
        "RSET" => note(
            "RSET unmarks every message marked for deletion in this session.",
            "RFC 1939 5",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::trace::WireBytes;

    /// Data that is only the end line is an empty message, not data whose end is to come.
    #[test]
    fn an_empty_message_is_told_as_one() {
        let empty = message_data_note(b".\r\n").expect("a note");
        assert!(
            empty.text.contains("the message is empty"),
            "{}",
            empty.text
        );
        assert!(empty.rfc.contains("RFC 5321 4.1.1.4"));
        let started = message_data_note(b"Subject: x\r\n").expect("a note");
        assert!(started.text.contains("still to come"), "{}", started.text);
    }

    /// The notes, as shown, of the steps of `scenario`'s run whose lines hold `line`.
    fn shown_notes(scenario: &crate::sim::Scenario, line: &str) -> Vec<String> {
        shown_notes_cited(scenario, line)
            .into_iter()
            .map(|note| note.text.into_owned())
            .collect()
    }

    /// [`shown_notes`] with the RFC sections each cites.
    fn shown_notes_cited(scenario: &crate::sim::Scenario, line: &str) -> Vec<StepNote> {
        let result = crate::sim::run(scenario, scenario.seed);
        crate::sim::steps::steps(&result.trace)
            .iter()
            .filter(|step| step.lines(&result.trace).iter().any(|l| l.contains(line)))
            .filter_map(|step| step.noted(&result.trace))
            .collect()
    }

    /// The page leaves the sentence every state's note ends with out of what a screen reader
    /// says (it would be said at nearly every other step): every state of every built-in run
    /// ends with it.
    #[test]
    fn every_state_note_ends_with_what_a_state_is() {
        let mut states = 0;
        for scenario in crate::sim::library::builtin().into_iter().flatten() {
            let result = crate::sim::run(&scenario, scenario.seed);
            for event in &result.trace.events {
                if let Event::ClientState { to, .. } | Event::ServerState { to, .. } = &event.event
                {
                    let (text, _) = state_note(*to);
                    assert!(text.ends_with(STATE_MACHINE_SENTENCE), "{text}");
                    assert!(text.len() > STATE_MACHINE_SENTENCE.len() + 10, "{text}");
                    states += 1;
                }
            }
        }
        assert!(states > 1000, "{states}");
    }

    #[test]
    fn a_length_of_time_is_said_in_words() {
        for (ms, said) in [
            (0, "0 seconds"),
            (1000, "1 second"),
            (300, "0.3 seconds"),
            (5, "0.005 seconds"),
            (2_500, "2.5 seconds"),
            (600_000, "10 minutes"),
            (3_600_000, "1 hour"),
            (5_400_000, "1 hour 30 minutes"),
            (432_001_360, "5 days 1.36 seconds"),
            (90_061_000, "1 day 1 hour 1 minute 1 second"),
        ] {
            assert_eq!(spoken_duration(ms), said, "{ms}");
        }
    }

    /// A retry, a skipped address and giving up are told with this run's times, not only the
    /// defaults: a scenario sets its own.
    #[test]
    fn retries_skips_and_giving_up_are_told_with_the_runs_own_times() {
        let down = crate::sim::library::find("server-down-for-good").expect("built in");
        let retries = shown_notes(&down, " retry at ");
        assert!(
            retries[0].starts_with(
                "A temporary failure: the message stays queued and is tried again in 30 \
                 minutes, at 0+00:30:00.260. RFC 5321 says"
            ),
            "{}",
            retries[0]
        );
        assert!(retries[1].contains("tried again in 1 hour, at 0+01:30:00.300."));
        let last = retries.last().expect("retries");
        // The last wait ends at the give-up time, shorter than the 3 hours before it.
        assert!(
            last.contains(
                "tried again in 2 hours 29 minutes 58.32 seconds, at 5+00:00:00.220. That \
                 attempt is the last"
            ),
            "{last}"
        );
        assert!(retries[..retries.len() - 1]
            .iter()
            .all(|retry| !retry.contains("is the last")));
        assert_eq!(
            shown_notes(&down, "gave up on"),
            [concat!(
                "The message has been queued since 0+00:00:00.220, for 5 days 0.04 seconds: \
                 that reaches the give-up time (RFC 5321: generally at least 4 to 5 days; 5 \
                 days unless the scenario sets another), so ",
                gave_up_rest!()
            )]
        );
        // A notice given up on is dropped, not told to anyone: here the bounce to a sender
        // in the domain that is down.
        let mut circular = down.clone();
        circular.messages[0].from = "alice@receiver.test".into();
        circular.retry.give_up_s = 3600;
        circular.retry.delay_notice_s = None;
        circular.run_until_s = 4 * 3600;
        circular.fetches.clear();
        let gave_up = shown_notes(&circular, "gave up on");
        assert_eq!(gave_up.len(), 2, "{gave_up:?}");
        assert!(gave_up[0].ends_with(gave_up_rest!()), "{}", gave_up[0]);
        assert!(
            gave_up[1].ends_with(
                "so the server stops trying. The message is itself a notice (null reverse \
                 path <>), so nobody is told: it is dropped, as a notice about a notice could \
                 loop."
            ),
            "{}",
            gave_up[1]
        );
        let mut quick = down.clone();
        quick.retry.first_retry_s = 600;
        let retries = shown_notes(&quick, " retry at ");
        assert!(retries[0].contains("tried again in 10 minutes, at 0+00:10:00.260."));
        assert!(retries[1].contains("tried again in 20 minutes, at 0+00:30:00.300."));

        let skipped = crate::sim::library::find("primary-mx-down").expect("built in");
        let skips = shown_notes(&skipped, " skips ");
        assert!(
            skips[0].starts_with(
                "Not tried: this sending host failed to connect to that address at \
                 0+00:00:00.260 (refused, or no answer), and RFC 5321 says a sender must delay \
                 retrying a destination after a failed attempt. So no message tries it again \
                 before 0+00:30:00.260, its first retry interval (30 minutes) after that \
                 failure: this one goes on"
            ),
            "{}",
            skips[0]
        );
    }

    /// A recipient's temporary failure says the message will be tried again, except where the
    /// attempt ends with it and the host gives up: that says so.
    #[test]
    fn a_temporary_failure_at_the_last_attempt_says_it_is_the_last() {
        use crate::dns::{Record, RecordData};
        let mut full = crate::sim::library::find("mailbox-full").expect("built in");
        full.retry.give_up_s = 3600;
        let results = shown_notes(&full, "temporary failure: 452 4.2.2");
        assert!(results.len() >= 2, "{results:?}");
        let (last, earlier) = results.split_last().expect("results");
        for note in earlier {
            assert!(note.contains("tries again later"), "{note}");
        }
        assert!(
            last.contains("this attempt ends with this reply: the sending host does not try"),
            "{last}"
        );
        assert_eq!(shown_notes(&full, "gave up on").len(), 1);
        // With a backup MX that does not answer, the attempt goes on after the 452, and the
        // backup's silence is the last failure: the 452 is not.
        let mut backup = full.clone();
        let zone = (backup.dns.zones.iter_mut())
            .find(|zone| zone.origin == "receiver.test")
            .expect("the receiving domain's zone");
        zone.records.push(Record {
            name: "receiver.test".into(),
            ttl_s: 3600,
            data: RecordData::Mx {
                preference: 20,
                exchange: "mx9.receiver.test".into(),
            },
        });
        zone.records.push(Record {
            name: "mx9.receiver.test".into(),
            ttl_s: 3600,
            data: RecordData::A("192.0.2.99".parse().expect("an address")),
        });
        assert_eq!(shown_notes(&backup, "gave up on").len(), 1);
        let results = shown_notes(&backup, "temporary failure: 452 4.2.2");
        assert!(!results.is_empty());
        for note in &results {
            assert!(note.contains("tries again later"), "{note}");
        }
    }

    /// A notice for which DNS finds no host is dropped, never bounced (RFC 5321 4.5.5): the
    /// resolution's note says so, where a message with a sender says it bounces.
    #[test]
    fn a_notice_that_dns_finds_no_host_for_is_said_to_be_dropped() {
        let mut scenario = crate::sim::library::find("unknown-user").expect("built in");
        // The bounce about the unknown user goes to a sender's domain that does not exist.
        scenario.messages[0].from = "alice@nowhere.test".into();
        scenario.fetches.clear();
        let dropped = "But this message has the null reverse path <>, as notices do, and such \
                       a message is never bounced, as a notice about a notice could loop: it is \
                       dropped instead.";
        let resolved = shown_notes_cited(&scenario, "MX for nowhere.test: Host or domain name");
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert!(resolved[0].text.ends_with(dropped), "{:?}", resolved[0]);
        // The sections of the failure's own note, and the one that forbids the bounce.
        assert_eq!(
            resolved[0].rfc,
            "RFC 5321 5.1, RFC 1035 4.1.1, RFC 3463 3.2, RFC 5321 4.5.5"
        );
        // A domain written in Unicode is resolved by its A-labels: the same.
        let mut unicode = scenario.clone();
        unicode.messages[0].from = "alice@bücher.test".into();
        let resolved = shown_notes(&unicode, "MX for xn--bcher-kva.test: Host or domain name");
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert!(resolved[0].ends_with(dropped), "{}", resolved[0]);
        // A message with a sender, to that domain, bounces as the note says.
        let mut plain = crate::sim::library::find("unknown-domain").expect("built in");
        plain.fetches.clear();
        let resolved = shown_notes(&plain, "Host or domain name not found (5.1.2)");
        assert!(!resolved.is_empty());
        for note in &resolved {
            assert!(!note.contains("it is dropped instead"), "{note}");
            assert!(note.contains("bounces to its sender at once"), "{note}");
        }
    }

    /// A 5yz that ends an attempt for now is explained: another MX host failed only for now.
    #[test]
    fn a_retry_after_a_refusal_of_service_says_why_it_is_no_bounce() {
        let mut scenario = crate::sim::library::find("primary-mx-down").expect("built in");
        let backup = (scenario.hosts.iter_mut())
            .find(|host| host.name == "mx2.receiver.test")
            .expect("the backup");
        backup.faults.push(crate::sim::scenario::HostFault {
            kind: crate::sim::scenario::FaultKind::Refuse,
            from_s: 0,
            until_s: None,
        });
        let retries = shown_notes(&scenario, "attempt failed: 554");
        assert!(!retries.is_empty());
        for note in &retries {
            assert!(
                note.contains("The reply shown is a 5yz, a refusal of service by one MX host"),
                "{note}"
            );
        }
        // A retry after a 4yz says nothing of it.
        let plain = crate::sim::library::find("primary-mx-down").expect("built in");
        let others = shown_notes(&plain, "attempt failed: 451");
        assert!(!others.is_empty());
        assert!(others.iter().all(|note| !note.contains("5yz")));
    }

    #[test]
    fn a_client_whose_wait_ran_out_is_told_why_it_keeps_the_message() {
        let result = |reply: &str| {
            Event::RecipientResult(Box::new(crate::sim::trace::RecipientResult {
                host: std::rc::Rc::from("mail.sender.test"),
                entry: 1,
                recipient: "bob@receiver.test".into(),
                result: TEMPORARY_FAILURE.into(),
                reply: reply.into(),
                own_finding: true,
            }))
        };
        let timed_out = note_for(
            &result("451 4.4.2 no reply from the server while waiting for the reply to MAIL"),
            Some(Protocol::Smtp),
        )
        .expect("a note");
        assert!(
            timed_out.text.contains("gave up waiting"),
            "{}",
            timed_out.text
        );
        assert!(timed_out.rfc.contains("4.5.3.2"));
        let lost = note_for(
            &result("451 4.4.2 lost connection while waiting for the reply to MAIL"),
            Some(Protocol::Smtp),
        )
        .expect("a note");
        assert!(!lost.text.contains("gave up waiting"), "{}", lost.text);
    }

    #[test]
    fn a_withheld_dsn_request_names_the_server_and_who_reports_a_relay() {
        let withheld = |client: &str| {
            Event::DsnWithheld(Box::new(crate::sim::trace::DsnWithheld {
                client: std::rc::Rc::from(client),
                conn: 5,
                message: "m2".into(),
                server: std::rc::Rc::from("mx.old.test"),
            }))
        };
        let host = note_for(&withheld("mail.sender.test"), Some(Protocol::Smtp)).expect("a note");
        assert!(
            host.text.contains("but mx.old.test does not offer DSN")
                && host
                    .text
                    .contains("hears instead from this host that the message was relayed"),
            "{}",
            host.text
        );
        assert_eq!(host.rfc, "RFC 3461 3, 5.2.2");
        // A user agent has no one to report a relay to.
        let user_agent =
            note_for(&withheld("ua:alice@sender.test"), Some(Protocol::Smtp)).expect("a note");
        assert!(
            user_agent.text.contains("nothing will report success")
                && !user_agent.text.contains("relayed"),
            "{}",
            user_agent.text
        );
        assert_eq!(user_agent.rfc, "RFC 3461 3");
    }

    #[test]
    fn a_hung_server_is_explained_with_the_wait_its_client_keeps() {
        for (at, wait, rfc) in [
            (
                StallPoint::Greeting,
                "5 minutes for the greeting",
                "4.5.3.2.1",
            ),
            (
                StallPoint::Ehlo,
                "5 minutes for the reply to EHLO",
                "4.5.3.2",
            ),
            (
                StallPoint::Mail,
                "5 minutes for the reply to MAIL",
                "4.5.3.2.2",
            ),
            (
                StallPoint::Rcpt,
                "5 minutes for the reply to RCPT",
                "4.5.3.2.3",
            ),
            (StallPoint::Data, "2 minutes for the 354", "4.5.3.2.4"),
            (
                StallPoint::Dot,
                "10 minutes for the reply to the final dot",
                "4.5.3.2.6",
            ),
        ] {
            let stalled = Event::ServerStalled {
                conn: 2,
                at,
                after_chunks: false,
            };
            let note = note_for(&stalled, Some(Protocol::Smtp)).expect("a note");
            assert!(note.text.contains(wait), "{at:?}: {}", note.text);
            assert!(note.rfc.contains(rfc), "{at:?}: {}", note.rfc);
            // Only the final dot's wait is about a message the server may have taken.
            assert_eq!(
                note.text.contains("arrive twice"),
                at == StallPoint::Dot,
                "{at:?}"
            );
            assert!(note.text.contains("tries again later"), "{at:?}");
            // A user agent keeps no queue: it does not try again.
            let submission = submission_connection_note(&stalled).expect("a note");
            assert!(submission.text.contains(wait), "{at:?}");
            assert!(submission.text.contains("keeps no queue"), "{at:?}");
            assert!(!submission.text.contains("tries again"), "{at:?}");
        }
        // A message sent in BDAT chunks has no final dot: the wait is for the last chunk's
        // reply (RFC 3030 2), as long.
        let stalled = Event::ServerStalled {
            conn: 2,
            at: StallPoint::Dot,
            after_chunks: true,
        };
        let note = note_for(&stalled, Some(Protocol::Smtp)).expect("a note");
        assert!(note
            .text
            .contains("10 minutes for the reply to the last chunk (BDAT ... LAST)"));
        assert!(!note.text.contains("final dot but"), "{}", note.text);
        assert!(note.rfc.contains("RFC 3030 2"), "{}", note.rfc);
    }

    /// A domain without MX records is its own mail host: its empty MX answer says so, and
    /// not what an empty AAAA answer means (RFC 5321 5.1).
    #[test]
    fn an_empty_mx_answer_is_explained_as_the_implicit_mx() {
        use crate::dns::{Record, RecordData};
        let mut scenario = crate::sim::library::find("basic-delivery").expect("built in");
        let zone = scenario
            .dns
            .zones
            .iter_mut()
            .find(|zone| zone.origin == "receiver.test")
            .expect("the receiving domain's zone");
        zone.records
            .retain(|record| !matches!(record.data, RecordData::Mx { .. }));
        zone.records.push(Record {
            name: "receiver.test".into(),
            ttl_s: 3600,
            data: RecordData::A("192.0.2.20".parse().expect("an address")),
        });
        let result = crate::sim::run(&scenario, scenario.seed);
        let empty_answers: Vec<String> = crate::sim::steps::steps(&result.trace)
            .into_iter()
            .filter_map(|step| step.note.map(|note| note.text.into_owned()))
            .filter(|note| note.starts_with("NOERROR with no records"))
            .collect();
        assert!(
            empty_answers
                .iter()
                .any(|note| note.contains("has no MX record") && note.contains("implicit MX")),
            "{empty_answers:?}"
        );
        assert!(
            empty_answers
                .iter()
                .all(|note| !(note.contains("IPv6") && note.contains("implicit MX"))),
            "{empty_answers:?}"
        );
    }

    /// A user agent that cannot reach its server is told, in the step of the refused
    /// connection, that it keeps no queue (its message is not sent); a POP3 reader that
    /// cannot connect, that its mail waits. Neither is sent to the MX hosts.
    #[test]
    fn a_user_agent_or_pop3_reader_that_cannot_connect_is_not_told_of_mx_hosts() {
        use crate::sim::draft::{Draft, ServerChange};
        use crate::sim::trace::Fate;
        let base = crate::sim::library::find("basic-delivery").expect("a built-in scenario");
        let mut draft = Draft::of(&base);
        for host in ["mail.sender.test", "mx.receiver.test"] {
            draft
                .server_changes
                .insert(host.into(), ServerChange::DownForGood);
        }
        let scenario = draft.sent_in(&base).expect("a scenario");
        let result = crate::sim::run(&scenario, scenario.seed);
        let steps = crate::sim::steps::steps(&result.trace);
        let refused_at = |port: &str| -> Vec<String> {
            let line = format!("connection refused: no server listens on port {port}");
            steps
                .iter()
                .filter(|step| step.lines(&result.trace).iter().any(|l| l.ends_with(&line)))
                .filter_map(|step| {
                    step.note
                        .as_ref()
                        .map(|n| format!("{} ({})", n.text, n.rfc))
                })
                .collect()
        };
        let submission = refused_at("587");
        let pop3 = refused_at("110");
        assert_eq!(submission.len(), 1, "{submission:?}");
        assert_eq!(pop3.len(), 1, "{pop3:?}");
        assert!(submission[0].contains("keeps no queue"), "{submission:?}");
        assert!(pop3[0].contains("stays in the mailbox"), "{pop3:?}");
        assert!(pop3[0].contains("RFC 1939"), "{pop3:?}");
        for text in submission.iter().chain(&pop3) {
            assert!(!text.contains("MX") && !text.contains("5321 5.1"), "{text}");
        }
        assert!(
            result.outcomes.iter().all(|(_, _, fate)| matches!(
                fate,
                Fate::RefusedAtSubmission { status }
                    if status.starts_with("4.4.1 the submission server cannot be reached")
            )),
            "{:?}",
            result.outcomes
        );
    }

    #[test]
    fn a_state_changes_note_is_written_once_for_every_run() {
        // A run changes a session's state at nearly every other step: a note of its own for
        // each would take tens of megabytes in a run of thousands of messages.
        let scenario = crate::sim::library::find("pop3-commands").expect("a built-in scenario");
        let trace = crate::sim::run(&scenario, scenario.seed).trace;
        let steps = crate::sim::steps::steps(&trace);
        let state_notes: Vec<&StepNote> = steps
            .iter()
            .filter(|step| {
                matches!(
                    trace.events[step.event].event,
                    Event::ClientState { .. } | Event::ServerState { .. }
                )
            })
            .filter_map(|step| step.note.as_ref())
            .collect();
        assert!(state_notes.len() > 20, "{}", state_notes.len());
        for note in state_notes {
            assert!(matches!(note.text, Cow::Borrowed(_)), "{}", note.text);
        }
    }

    /// The notes of the steps of built-in scenario `name` whose lines hold `line`.
    fn notes_at_lines(name: &str, line: &str) -> Vec<String> {
        let scenario = crate::sim::library::find(name).expect("a built-in scenario");
        let result = crate::sim::run(&scenario, scenario.seed);
        crate::sim::steps::steps(&result.trace)
            .into_iter()
            .filter(|step| step.lines(&result.trace).iter().any(|l| l.contains(line)))
            .filter_map(|step| step.note.map(|note| note.text.into_owned()))
            .collect()
    }

    /// RFC 5321 5.1: an MX host that relays mail for the domain drops its own preference
    /// level and every less preferred one; its resolution's note says so, not only what any
    /// resolution says.
    #[test]
    fn a_backup_mx_that_drops_its_own_level_is_told_why() {
        let notes = notes_at_lines("primary-mx-down", crate::dns::resolver::OWN_LEVEL_DROPPED);
        assert!(!notes.is_empty());
        let fresh = notes
            .iter()
            .filter(|note| !note.starts_with("No DNS query"))
            .count();
        assert!(fresh > 0, "a fresh lookup among {notes:?}");
        for note in &notes {
            assert!(
                note.contains("This host is itself one of the domain's MX hosts"),
                "{note}"
            );
        }
        // The backup made the most preferred host: it drops every host, itself included, and
        // the failure's own note says the mail loops back (5.4.6).
        let mut scenario = crate::sim::library::find("primary-mx-down").expect("a built-in");
        for record in scenario
            .dns
            .zones
            .iter_mut()
            .flat_map(|zone| &mut zone.records)
        {
            if let crate::dns::RecordData::Mx {
                preference,
                exchange,
            } = &mut record.data
            {
                if exchange.starts_with("mx2.") {
                    *preference = 5;
                }
            }
        }
        let looped = shown_notes(
            &scenario,
            "MX for receiver.test: Mail for this domain loops back",
        );
        assert!(!looped.is_empty());
        for note in &looped {
            assert!(!note.contains("The hosts left are tried"), "{note}");
            assert!(note.contains("none is left to try"), "{note}");
        }
    }

    /// The MDA's refusal is told by its cause: a mailbox over quota is not said to be
    /// perhaps missing.
    #[test]
    fn an_mda_refusal_is_told_by_its_cause() {
        let notes = notes_at_lines("over-quota-at-delivery", "MDA refused");
        assert!(!notes.is_empty());
        for note in notes {
            assert!(note.contains("would go over its quota (5.2.2)"), "{note}");
            assert!(!note.contains("no such mailbox"), "{note}");
        }
    }

    /// A connection's note names its port: a user agent on port 25 is told that it is not
    /// submitting (RFC 6409 3.1) and what a server does with mail there; another client on
    /// another port is not told of port 25.
    #[test]
    fn a_connection_is_told_by_its_port() {
        let on_25 = notes_at_lines(
            "relay-denied",
            "connect to mail.sender.test [192.0.2.10]:25",
        );
        assert_eq!(on_25.len(), 1, "{on_25:?}");
        assert!(
            on_25[0].starts_with("A user agent normally submits mail on port 587"),
            "{on_25:?}"
        );
        assert!(on_25[0].contains("connects to port 25"), "{on_25:?}");
        let mut scenario = crate::sim::library::find("basic-delivery").expect("a built-in");
        scenario
            .raw_sessions
            .push(crate::sim::scenario::RawSessionSpec {
                client: "tester".into(),
                address: "203.0.113.9".parse().expect("an address"),
                server: "mx.receiver.test".into(),
                port: 2525,
                at_s: 0,
                bytes: "QUIT\r\n".into(),
            });
        let raw = shown_notes(&scenario, "connect to mx.receiver.test [192.0.2.20]:2525");
        assert_eq!(raw.len(), 1, "{raw:?}");
        assert!(
            raw[0].starts_with("A client opens a TCP connection to port 2525"),
            "{raw:?}"
        );
        let relay = notes_at_lines(
            "basic-delivery",
            "connect to mx.receiver.test [192.0.2.20]:25",
        );
        assert_eq!(relay.len(), 1, "{relay:?}");
        assert!(
            relay[0].starts_with("A client opens a TCP connection to port 25 "),
            "{relay:?}"
        );
    }

    /// RFC 5321 4.1.4: a session may carry several mail transactions. A MAIL that starts
    /// another one on the same connection is told so, and after a 452 "too many recipients"
    /// (RFC 5321 4.5.3.1.10) as the rest of the same message; the first on each is not.
    #[test]
    fn a_mail_that_starts_another_transaction_on_a_connection_is_told_so() {
        for (name, later_ones) in [
            (
                "one-session-many-messages",
                "Another mail transaction on this connection",
            ),
            (
                "too-many-recipients",
                "The same message again, in another transaction",
            ),
        ] {
            let scenario = crate::sim::library::find(name).expect("a built-in scenario");
            let result = crate::sim::run(&scenario, scenario.seed);
            let mut seen = BTreeMap::new();
            let mut later = 0;
            for step in crate::sim::steps::steps(&result.trace) {
                if !step
                    .lines(&result.trace)
                    .iter()
                    .any(|l| l.contains("C: MAIL FROM:"))
                {
                    continue;
                }
                let conn = step.conn.expect("a MAIL is sent on a connection");
                let note = step.noted(&result.trace).expect("a note").text.into_owned();
                let first = *seen.entry(conn).and_modify(|n| *n += 1).or_insert(1) == 1;
                if first {
                    assert!(
                        note.starts_with("MAIL FROM starts a mail transaction"),
                        "{name}: {note}"
                    );
                } else {
                    later += 1;
                    assert!(note.starts_with(later_ones), "{name}: {note}");
                    // What MAIL is and how it is sent is still told after it.
                    assert!(
                        note.contains("MAIL FROM starts a mail transaction"),
                        "{note}"
                    );
                }
            }
            assert!(
                later > 0,
                "{name} has a connection with several transactions"
            );
        }
        // A HELO server refuses a message too big with a 552 without an enhanced code, which
        // a client would take as "too many recipients" after an RCPT: not after the data. The
        // next MAIL, on the same connection, is another message's.
        let scenario = crate::sim::Scenario::from_json(REFUSED_THEN_NEXT).expect("a scenario");
        let result = crate::sim::run(&scenario, scenario.seed);
        let text = result.trace.to_text();
        assert!(text.contains("S: 552 "), "{text}");
        let notes = shown_notes(&scenario, "C: MAIL FROM:");
        // The relay's second MAIL, on its HELO session (the user agent's is pipelined).
        assert!(
            notes
                .iter()
                .any(|note| note.starts_with("Another mail transaction")
                    && note.contains("this session began with HELO")),
            "{notes:?}"
        );
        for note in &notes {
            assert!(!note.contains("The same message again"), "{note}");
        }
    }

    /// DATA's note says why not BDAT, by what the session's server offered: CHUNKING listed
    /// (the client chose DATA), not listed (DATA is the one way), or a HELO session.
    #[test]
    fn a_data_note_says_why_the_message_does_not_go_in_bdat_chunks() {
        let chunking = crate::sim::library::find("chunking").expect("a built-in");
        let notes = shown_notes(&chunking, "C: DATA");
        // The user agent's, to a server that offers CHUNKING; the relay's, to one that does
        // not.
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("DATA asks to send the message itself")
                && notes[0].contains("The server also lists CHUNKING"),
            "{}",
            notes[0]
        );
        assert!(
            notes[1].contains("This server does not list CHUNKING, so DATA is the one way"),
            "{}",
            notes[1]
        );
        let old = crate::sim::library::find("old-server-no-ehlo").expect("a built-in");
        let helo: Vec<String> = shown_notes(&old, "C: DATA")
            .into_iter()
            .filter(|note| note.contains("began with HELO"))
            .collect();
        assert!(!helo.is_empty(), "a HELO session's DATA");
        for note in &helo {
            assert!(note.contains("BDAT needs CHUNKING"), "{note}");
        }
        let cited = shown_notes_cited(&chunking, "C: DATA");
        assert!(cited
            .iter()
            .all(|note| note.rfc == "RFC 5321 4.1.1.4, RFC 3030 2"));
    }

    /// A message the server refuses after its data, in a transaction where a 452 held a
    /// recipient back: the refusal decides only the recipients that transaction carried, and
    /// the next MAIL, for the one held back, says so (RFC 5321 3.3, 4.5.3.1.10); that
    /// recipient's bounce quotes the server's reply in its own transaction.
    #[test]
    fn a_recipient_held_back_by_a_452_gets_its_own_transaction_after_a_refused_message() {
        let mut json: serde_json::Value =
            serde_json::from_str(REFUSED_THEN_NEXT).expect("a scenario's JSON");
        json["hosts"][1]["max_recipients"] = 1.into();
        json["messages"][0]["to"] = serde_json::json!(["bob@old.test", "carol@old.test"]);
        json["messages"]
            .as_array_mut()
            .expect("messages")
            .truncate(1);
        let scenario = crate::sim::Scenario::from_json(&json.to_string()).expect("a scenario");
        let result = crate::sim::run(&scenario, scenario.seed);
        let text = result.trace.to_text();
        // The relay's session: bob taken, carol held back, the message refused, then carol's
        // own transaction, refused on its own.
        let relay: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(" #2 ") && (line.contains("C: ") || line.contains("S: ")))
            .filter(|line| {
                !line.contains("C: ") || line.contains("C: MAIL") || line.contains("C: RCPT")
            })
            .map(|line| line.split(" #2 ").nth(1).expect("a connection's line"))
            .collect();
        let expected = [
            "C: MAIL FROM:<alice@sender.test>",
            "S: 250 Sender <alice@sender.test> OK",
            "C: RCPT TO:<bob@old.test>",
            "S: 250 Recipient <bob@old.test> OK",
            "C: RCPT TO:<carol@old.test>",
            "S: 452 Too many recipients",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "S: 552 Message size exceeds fixed limit",
            "C: MAIL FROM:<alice@sender.test>",
            "S: 250 Sender <alice@sender.test> OK",
            "C: RCPT TO:<carol@old.test>",
            "S: 250 Recipient <carol@old.test> OK",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "S: 552 Message size exceeds fixed limit",
        ];
        let from_mail = relay
            .iter()
            .position(|line| line.starts_with("C: MAIL"))
            .expect("a MAIL on the relay's session");
        assert_eq!(
            &relay[from_mail..from_mail + expected.len()],
            &expected,
            "{text}"
        );
        let notes = shown_notes(&scenario, "C: MAIL FROM:");
        let again: Vec<&String> = notes
            .iter()
            .filter(|note| note.starts_with("The same message again"))
            .collect();
        assert_eq!(again.len(), 1, "{notes:?}");
        assert!(
            again[0].contains(
                "then refused the message itself, but that refusal was the last \
                               transaction's and decided only the recipients it had taken"
            ),
            "{}",
            again[0]
        );
        assert!(result.conservation_problems.is_empty());
    }

    /// A message may begin with a field named like a command ("Mail:", "Data:"), or with a
    /// line that reads like one ("RCPT TO:<x>", "QUIT"): sent after the 354, it is the
    /// message's data, told as such, and changes nothing the session's later notes say.
    #[test]
    fn a_message_beginning_like_a_command_is_no_command() {
        for first_line in [
            "Mail: from the front desk",
            "Rcpt: kept",
            "Data: 2026-09-01",
            "Helo: there",
            "MAIL FROM:<evil@x.test>",
            "RCPT TO:<victim@b.test>",
            "RSET",
            "QUIT",
            "EHLO evil.test",
            "HELO evil.test",
            "DATA",
        ] {
            let mut scenario = crate::sim::library::find("basic-delivery").expect("a built-in");
            scenario.messages[0].raw = Some(format!(
                "{first_line}\r\nFrom: alice@sender.test\r\n\r\nHello.\r\n"
            ));
            let result = crate::sim::run(&scenario, scenario.seed);
            let notes: Vec<String> = crate::sim::steps::steps(&result.trace)
                .iter()
                .filter(|step| {
                    let lines = step.lines(&result.trace);
                    lines
                        .iter()
                        .any(|l| l.ends_with(&format!("C: {first_line}")))
                        && lines
                            .iter()
                            .any(|l| l.ends_with("C: From: alice@sender.test"))
                })
                .filter_map(|step| step.noted(&result.trace))
                .map(|note| note.text.into_owned())
                .collect();
            assert!(!notes.is_empty(), "{first_line}");
            for note in &notes {
                assert!(note.starts_with("The message data"), "{first_line}: {note}");
            }
            // A line in the message that reads like HELO does not make the session's later
            // MAIL notes speak of a HELO session.
            for note in shown_notes(&scenario, "C: MAIL FROM:") {
                assert!(!note.contains("began with HELO"), "{first_line}: {note}");
            }
        }
    }

    /// Two messages on one connection to a HELO server that takes at most 400 octets.
    const REFUSED_THEN_NEXT: &str = r#"{"name":"refused-then-next","title":"refused-then-next","dns":{"zones":[{"origin":"sender.test","records":[{"name":"sender.test","data":{"MX":{"preference":10,"exchange":"mail.sender.test"}}},{"name":"mail.sender.test","data":{"A":"192.0.2.10"}}]},{"origin":"old.test","records":[{"name":"old.test","data":{"MX":{"preference":10,"exchange":"mx.old.test"}}},{"name":"mx.old.test","data":{"A":"192.0.2.20"}}]}]},"hosts":[{"name":"mail.sender.test","address":"192.0.2.10","local_domains":["sender.test"],"mailboxes":[{"address":"alice@sender.test","password":"alice-pw"}],"submission_users":[{"user":"alice","password":"secret"}],"connection_cache_s":5},{"name":"mx.old.test","address":"192.0.2.20","local_domains":["old.test"],"mailboxes":[{"address":"bob@old.test","password":"bob-pw"},{"address":"carol@old.test","password":"carol-pw"}],"extensions":{"ehlo":false},"max_size_octets":400}],"messages":[{"from":"alice@sender.test","to":["bob@old.test"],"subject":"Big","body":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n","submit_to":"mail.sender.test","port":587,"auth":{"user":"alice","password":"secret"}},{"from":"alice@sender.test","to":["carol@old.test"],"subject":"Small","body":"hi\n","submit_to":"mail.sender.test","port":587,"auth":{"user":"alice","password":"secret"}}],"fetches":[]}"#;

    /// RFC 1939 6: QUIT's UPDATE state removes what DELE marked; where nothing was marked,
    /// the mailbox's update says nothing is removed, not that the marked messages are.
    #[test]
    fn a_pop3_quit_with_nothing_marked_is_not_said_to_remove_messages() {
        let nothing = notes_at_lines("sender-not-owned", ": nothing deleted");
        assert!(!nothing.is_empty());
        for note in &nothing {
            assert!(
                note.starts_with("No message is marked as deleted now"),
                "{note}"
            );
        }
        let deleted = notes_at_lines("basic-delivery", ": deleted m1");
        assert!(!deleted.is_empty());
        for note in &deleted {
            assert!(note.starts_with("Deletions happen only now"), "{note}");
        }
        // What QUIT and the UPDATE state remove is told as what was marked, if anything was.
        let pop3_quit: Vec<String> = notes_at_lines("sender-not-owned", "C: QUIT")
            .into_iter()
            .filter(|note| note.contains("UPDATE"))
            .chain(notes_at_lines("sender-not-owned", "-> Update"))
            .collect();
        assert!(pop3_quit.len() >= 2, "{pop3_quit:?}");
        for note in pop3_quit {
            assert!(note.contains("marked with DELE, if any"), "{note}");
        }
    }

    #[test]
    fn a_dns_answer_and_a_recipients_result_are_explained_by_what_they_are() {
        for (name, line, says) in [
            (
                "unknown-domain",
                ": NXDOMAIN",
                "NXDOMAIN: the name asked about does not exist",
            ),
            (
                "dns-servfail-then-success",
                ": SERVFAIL",
                "SERVFAIL: the DNS server",
            ),
            (
                "basic-delivery",
                "IN MX 10 mx.receiver.test.",
                "The DNS answer, with the records asked for (receiver.test. 3600 IN MX 10 \
                 mx.receiver.test.). MX records name the hosts",
            ),
            (
                "basic-delivery",
                "DNS answer id 469: NOERROR",
                "NOERROR with no records (NODATA): the name exists, but has no IPv6 address",
            ),
            ("null-mx", "IN MX 0 .", "The DNS answer: a null MX"),
            (
                "greylisting",
                "temporary failure: 451",
                "A temporary failure for this",
            ),
            (
                "unknown-user",
                "permanent failure: 550",
                "A permanent failure for this",
            ),
            (
                "basic-delivery",
                "> accepted: 250",
                "Accepted for this recipient",
            ),
        ] {
            let notes = notes_at_lines(name, line);
            assert!(!notes.is_empty(), "{name}: no step with {line}");
            for note in notes {
                assert!(note.starts_with(says), "{name}, {line}: {note}");
            }
        }
        // No answer at all, which no built-in scenario shows.
        let timed_out = Event::DnsResponse(Box::new(crate::sim::trace::DnsResponse {
            host: "mail.a.test".into(),
            id: 1,
            outcome: DnsOutcome::TimedOut,
            records: Vec::new(),
            authority: Vec::new(),
            wire: None,
        }));
        let note = note_for(&timed_out, None).expect("a note");
        assert!(note
            .text
            .starts_with("No answer: the resolver stopped waiting"));
    }

    #[test]
    fn the_parameters_of_mail_from_are_explained() {
        let too_big = notes_at_lines("message-too-big", "C: MAIL FROM:<alice@sender.test> SIZE=");
        assert!(!too_big.is_empty());
        assert!(too_big
            .iter()
            .all(|note| note.contains("declares the message's size")));
        let eight = notes_at_lines("8bit-without-8bitmime", "BODY=8BITMIME");
        assert!(eight
            .iter()
            .any(|note| note.contains("BODY=8BITMIME says the message holds 8-bit")));
        let utf8 = notes_at_lines("smtputf8", " SMTPUTF8");
        assert!(utf8
            .iter()
            .any(|note| note.contains("SMTPUTF8 says that the message's addresses")));
        // Without parameters, nothing is added.
        let plain = with_mail_parameters(
            note("MAIL starts a transaction.", "RFC 5321 4.1.1.2"),
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d> SIZE=1\r\n",
        )
        .unwrap();
        assert_eq!(plain.text, "MAIL starts a transaction.");
        // Parameters are after the path, which may hold a quoted > and words like them.
        let quoted = with_mail_parameters(
            note("MAIL starts a transaction.", "RFC 5321 4.1.1.2"),
            b"MAIL FROM:<\"x> SIZE=5 \\\" BODY=8BITMIME\"@a.example> SMTPUTF8\r\n",
        )
        .unwrap();
        assert!(!quoted.text.contains("SIZE=5"), "{}", quoted.text);
        assert!(!quoted.text.contains("BODY="), "{}", quoted.text);
        assert!(quoted.text.contains("SMTPUTF8 says"), "{}", quoted.text);
    }

    /// DSN's parameters (RFC 3461) are told where they are sent, on MAIL and on each RCPT of a
    /// batch, each sentence once.
    #[test]
    fn dsn_parameters_are_explained_where_they_are_sent() {
        let told = |line: &str, words: &str| {
            let notes = notes_at_lines("dsn-on-request", line);
            assert!(!notes.is_empty(), "no step sends {line}");
            for note in &notes {
                assert!(note.contains(words), "{line}: {note}");
            }
        };
        told(
            "RET=HDRS",
            "RET=HDRS asks that a notice of failure return only",
        );
        told("ENVID=order-42", "ENVID=order-42 is the sender's own name");
        told(
            "NOTIFY=SUCCESS,FAILURE",
            "asks for a notice of delivery and of failure and of nothing else",
        );
        told("NOTIFY=NEVER", "NOTIFY=NEVER asks for no notice at all");
        told("no notice about m3", "This recipient failed for good");
        // A notice accepted owes no bounce; a message from a sender does, unless NOTIFY.
        told("accepted s1 from <>", "This one is a notice");
        told(
            "accepted m1 from <alice",
            "unless the sender asked for none",
        );
        told(
            "ORCPT=rfc822;bob@receiver.test",
            "ORCPT=rfc822;bob@receiver.test gives the recipient's address",
        );
        let batch = with_mail_parameters(
            note("MAIL starts a transaction.", "RFC 5321 4.1.1.2"),
            b"MAIL FROM:<a@b> RET=FULL\r\nRCPT TO:<c@d> NOTIFY=delay\r\n\
              RCPT TO:<e@d> NOTIFY=DELAY ORCPT=utf-8;j\\x{FC}rgen@d\r\n\
              RCPT TO:<g@d> ORCPT=rfc822;g@d\r\n\
              RCPT TO:<f@d> NOTIFY=SOMETIMES\r\n",
        )
        .unwrap()
        .text;
        assert!(batch.contains("RET=FULL asks that a notice of failure return the whole"));
        assert_eq!(
            batch.matches("asks for a notice of a delay and").count(),
            1,
            "{batch}"
        );
        assert!(batch.contains("NOTIFY=delay asks"), "{batch}");
        assert_eq!(
            batch.matches("gives the recipient's address").count(),
            1,
            "{batch}"
        );
        assert!(
            batch.contains("the utf-8 type writes each character"),
            "{batch}"
        );
        assert!(batch.contains("NOTIFY=SOMETIMES would say when"), "{batch}");
    }

    #[test]
    fn a_session_cut_in_the_data_is_explained_by_what_each_side_is_left_with() {
        let server = notes_at_lines("connection-lost-in-data", "server ReceivingData -> Closed");
        assert_eq!(server.len(), 1);
        assert!(server[0].contains("keeps nothing"), "{}", server[0]);
        let client = notes_at_lines(
            "connection-lost-in-data",
            "client ExpectDataReply -> Finished",
        );
        assert_eq!(client.len(), 1);
        assert!(client[0].contains("arrive twice"), "{}", client[0]);
        // A session that ends as it should is over, no more.
        let quit = notes_at_lines("basic-delivery", "server ExpectMail -> Closed");
        assert!(!quit.is_empty());
        assert!(quit
            .iter()
            .all(|note| note.starts_with("The server's session ends here")));
    }

    #[test]
    fn a_message_given_as_bytes_is_not_said_to_be_written_by_the_user_agent() {
        let raw = notes_at_lines("address-syntax-error", " composed m1: ");
        assert_eq!(raw.len(), 1);
        assert!(raw[0].contains("given as bytes"), "{}", raw[0]);
        let composed = notes_at_lines("basic-delivery", " composed m1: ");
        assert_eq!(composed.len(), 1);
        assert!(
            composed[0].contains("header fields (From"),
            "{}",
            composed[0]
        );
    }

    #[test]
    fn a_mail_with_the_null_reverse_path_is_not_said_to_name_where_bounces_go() {
        // Pipelined (unknown-user-after-relay's relay) and sent alone (a client that waits).
        for name in ["unknown-user-after-relay", "pipelining"] {
            let null = notes_at_lines(name, "C: MAIL FROM:<>");
            let plain = notes_at_lines(name, "C: MAIL FROM:<alice@");
            if name == "unknown-user-after-relay" {
                assert!(!null.is_empty(), "{name}: a notice goes by SMTP");
            }
            for note in &null {
                assert!(note.contains("null reverse path <>"), "{name}: {note}");
                assert!(!note.contains("where bounces go"), "{name}: {note}");
            }
            assert!(!plain.is_empty(), "{name}");
            for note in &plain {
                assert!(note.contains("where bounces go"), "{name}: {note}");
            }
        }
        // Every wording of the MAIL note is told for the null path.
        let offers = [
            Offer::Answered {
                pipelining: false,
                chunking: true,
            },
            Offer::Answered {
                pipelining: true,
                chunking: true,
            },
            Offer::NoExtensions,
        ];
        let mut notes: Vec<Option<StepNote>> = offers
            .into_iter()
            .map(|offer| {
                let mut offers = PipeliningOffers::default();
                offers.by_conn.insert(1, offer);
                offers.mail_sent_alone_note(1, b"MAIL FROM:<>\r\n")
            })
            .collect();
        for bytes in [
            "MAIL FROM:<>\r\n",
            "MAIL FROM:<>",
            "MAIL FROM:<>\r\nRCPT TO:<a@b.example>\r\n",
        ] {
            notes.push(sent(bytes, Protocol::Smtp));
        }
        for note in notes {
            let told = for_null_reverse_path(note, b"mail from: <>\r\n").expect("a note");
            assert!(told.text.contains(NULL_REVERSE_PATH_TEXT), "{}", told.text);
        }
    }

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
    fn a_bdat_note_tells_a_last_chunk_from_another_and_one_that_stops_inside_a_line() {
        let middle = sent("BDAT 5\r\nab\r\nc", Protocol::Smtp).unwrap();
        assert!(
            middle.text.starts_with("BDAT 5 sends a chunk"),
            "{middle:?}"
        );
        assert!(middle.text.contains("the last one says LAST"), "{middle:?}");
        assert!(middle.text.contains("middle of a line"), "{middle:?}");
        let last = sent("BDAT 4 LAST\r\nab\r\n", Protocol::Smtp).unwrap();
        assert!(last
            .text
            .starts_with("BDAT 4 LAST sends the message's last chunk"));
        assert!(last.text.contains("whether the server took it"), "{last:?}");
        assert!(!last.text.contains("middle of a line"), "{last:?}");
        // Nothing is said of chunk boundaries where the octets are not the count's.
        let short = sent("BDAT 9\r\nab", Protocol::Smtp).unwrap();
        assert!(!short.text.contains("middle of a line"), "{short:?}");
        assert_eq!(last.rfc, "RFC 3030 2");
        // A chunk ending with the CR of a CRLF; a last chunk promises no next one.
        let cr = sent("BDAT 3\r\nab\r", Protocol::Smtp).unwrap();
        assert!(
            cr.text
                .contains("ends with a CR whose LF opens the next chunk"),
            "{cr:?}"
        );
        let last_lf = sent("BDAT 1 LAST\r\n\n", Protocol::Smtp).unwrap();
        assert!(!last_lf.text.contains("next"), "{last_lf:?}");
    }

    /// A chunk told with the one before it: the rest of a line it cut, the LF of its CR; an
    /// RSET after a refused chunk.
    #[test]
    fn a_chunk_or_an_rset_is_told_with_the_chunk_before_it() {
        let send = |bytes: &str| TraceEvent {
            time_ms: 0,
            event: Event::Transmitted {
                conn: 3,
                direction: Direction::ClientToServer,
                bytes: WireBytes::from_bytes(bytes.as_bytes()),
            },
        };
        let reply = TraceEvent {
            time_ms: 0,
            event: Event::Transmitted {
                conn: 3,
                direction: Direction::ServerToClient,
                bytes: WireBytes::from_bytes(b"250 ok\r\n"),
            },
        };
        let told = |first: &str, second: &str| {
            let events = [send(first), reply.clone(), send(second)];
            in_context(&events, 2).map(|note| note.text.into_owned())
        };
        let cut = told("BDAT 5\r\nab\r\nc", "BDAT 5 LAST\r\nd\r\n\r\n").expect("told");
        assert!(
            cut.contains("goes on with the line the previous chunk stopped in"),
            "{cut}"
        );
        let lf = told("BDAT 3\r\nab\r", "BDAT 1 LAST\r\n\n").expect("told");
        assert!(
            lf.contains("ends the line whose CR closed the previous chunk"),
            "{lf}"
        );
        // The client resets after a refused chunk, last or not.
        for refused in ["BDAT 3\r\nab\r", "BDAT 2 LAST\r\nab"] {
            let rset = told(refused, "RSET\r\n").expect("told");
            assert!(rset.contains("follows a refused BDAT chunk"), "{rset}");
        }
        // Nothing to add after a chunk that ended its line, a last chunk (the next starts
        // another message), or a command.
        assert_eq!(told("BDAT 4\r\nab\r\n", "BDAT 2 LAST\r\nc\n"), None);
        assert_eq!(told("BDAT 2 LAST\r\nab", "BDAT 2 LAST\r\nc\n"), None);
        assert_eq!(told("DATA\r\n", "BDAT 2 LAST\r\nc\n"), None);
        assert_eq!(told("BDAT 3\r\nab\r", "QUIT\r\n"), None);
        // Chunks of one octet: the LF after a CR ends the line (no chunk stops in one), and
        // the chunk after that LF starts a new line, not the rest of one.
        let three = |a: &str, b: &str, c: &str| {
            let events = [send(a), reply.clone(), send(b), reply.clone(), send(c)];
            (
                in_context(&events, 2).map(|note| note.text.into_owned()),
                in_context(&events, 4).map(|note| note.text.into_owned()),
            )
        };
        let (lf, after) = three("BDAT 1\r\n\r", "BDAT 1\r\n\n", "BDAT 1\r\n\t");
        let lf = lf.expect("told");
        assert!(lf.contains("ends the line whose CR closed"), "{lf}");
        assert!(!lf.contains("middle of a line"), "{lf}");
        assert_eq!(after, None);
        // A chunk whose first octets are the CRLF of the line the one before cut.
        let crlf = told("BDAT 3\r\nabc", "BDAT 5 LAST\r\n\r\nd\r\n").expect("told");
        assert!(
            crlf.contains("Its first two octets, CR LF, end the line the previous chunk")
                && crlf.contains("not an empty line of the message"),
            "{crlf}"
        );
        // A chunk sent before the one ahead of it was answered: pipelined, said so, and
        // alone a reason for a note; one sent after a reply is not.
        let pipelined = |first: &str, second: &str| {
            let events = [send(first), send(second)];
            in_context(&events, 1).map(|note| (note.text.into_owned(), note.rfc.into_owned()))
        };
        let (text, rfc) = pipelined("BDAT 4\r\nab\r\n", "BDAT 2 LAST\r\nc\n").expect("told");
        assert!(
            text.contains("before the replies to the chunks ahead of it (1 still unanswered)")
                && text.contains("at most 8 unanswered"),
            "{text}"
        );
        assert_eq!(rfc, "RFC 3030 2, 4.2, RFC 2920");
        // A full window: the ninth chunk goes after the first one's reply, the seven after
        // it still unanswered; the replies counted are those since the first chunk.
        let mut window: Vec<TraceEvent> = vec![reply.clone()];
        window.extend((0..8).map(|_| send("BDAT 4\r\nab\r\n")));
        window.push(reply.clone());
        window.push(send("BDAT 2 LAST\r\nc\n"));
        let ninth = in_context(&window, window.len() - 1).expect("told").text;
        assert!(ninth.contains("(7 still unanswered)"), "{ninth}");
        let (both, _) = pipelined("BDAT 5\r\nab\r\nc", "BDAT 5 LAST\r\nd\r\n\r\n").expect("told");
        assert!(
            both.contains("still unanswered")
                && both.contains("goes on with the line the previous chunk stopped in"),
            "{both}"
        );
        assert!(!cut.contains("still unanswered"), "{cut}");
        // Another connection's send is no chunk before.
        let mut other = send("BDAT 5\r\nab\r\nc");
        if let Event::Transmitted { conn, .. } = &mut other.event {
            *conn = 4;
        }
        let events = [other, send("BDAT 5 LAST\r\nd\r\n\r\n")];
        assert_eq!(in_context(&events, 1), None);
    }

    #[test]
    fn replies_are_paired_with_commands_only_where_that_is_sure() {
        use crate::sim::trace::sent_on_first_connection as sent;
        let (client, server) = (Direction::ClientToServer, Direction::ServerToClient);
        // As the trace has a session: the greeting before the client's side opens.
        let session = |commands: &[&str], replies: &str| {
            let mut events = crate::sim::trace::first_connection_greeted();
            events.extend(commands.iter().map(|c| sent(client, c)));
            events.push(sent(server, replies));
            events
        };
        let answered = |events: &[TraceEvent], replies| {
            commands_answered(events, events.len() - 1, replies).map(|c| {
                c.iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        // Commands over two sends, answered in one.
        let events = session(
            &["MAIL FROM:<a@a.test>\r\n", "RCPT TO:<b@b.test>\r\nDATA\r\n"],
            "250 ok\r\n550 no\r\n554 no\r\n",
        );
        assert_eq!(
            answered(&events, 3).expect("told"),
            ["MAIL FROM:<a@a.test>", "RCPT TO:<b@b.test>", "DATA"]
        );
        // As many lines as replies, or nothing is told.
        assert_eq!(answered(&events, 2), None);
        assert_eq!(answered(&events, 4), None);
        // A line a bare LF or CR ends or holds, or a line cut short, is read by each server
        // its own way; a chunk's octets are no commands; an empty line is none either.
        for commands in [
            "MAIL FROM:<a@a.test>\nRCPT TO:<b@b.test>\r\n",
            "MAIL FROM:<a@a.test>\rRCPT TO:<b@b.test>\r\nNOOP\r\n",
            "MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>",
            "BDAT 6 LAST\r\nx\r\ny\r\n",
            "bdat\t6 LAST\r\nx\r\ny\r\n",
            "\r\nNOOP\r\n",
        ] {
            let events = session(&[commands], "250 ok\r\n250 ok\r\n");
            assert_eq!(answered(&events, 2), None, "{commands:?}");
        }
        // After a 354 the client sends a message; the greeting answers no command.
        let mut events = session(&["DATA\r\n"], "354 go\r\n");
        events.push(sent(client, "RSET\r\n.\r\n"));
        events.push(sent(server, "250 ok\r\n250 ok\r\n"));
        assert_eq!(answered(&events, 2), None);
        // The greeting, and the first send after it, which the walk back does not reach.
        assert_eq!(answered(&events[..1], 1), None);
        let early = [
            events[0].clone(),
            events[1].clone(),
            sent(client, "EHLO a.test\r\nNOOP\r\n"),
            sent(server, "250 b.test\r\n250 ok\r\n"),
        ];
        assert_eq!(answered(&early, 2), None);
    }

    #[test]
    fn a_reply_to_a_pipelined_chunk_is_paired_with_its_chunk() {
        use crate::sim::trace::sent_on_first_connection as sent;
        let (client, server) = (Direction::ClientToServer, Direction::ServerToClient);
        let mut events = crate::sim::trace::first_connection_greeted();
        events.extend([
            sent(client, "MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\n"),
            sent(server, "250 ok\r\n250 ok\r\n"),
            sent(client, "BDAT 3\r\nab\n"),
            sent(client, "BDAT 3\r\nc\r\n"),
            sent(server, "250 3 octets\r\n"),
            sent(client, "BDAT 2 LAST\r\n\r\n"),
            sent(server, "250 3 octets\r\n"),
            sent(server, "250 queued\r\n"),
            sent(server, "221 bye\r\n"),
        ]);
        let answered = |events: &[TraceEvent], index: usize| {
            chunk_answered(events, index)
                .map(|(command, number)| (String::from_utf8_lossy(command).into_owned(), number))
        };
        // In the order the chunks went, whichever send came before the reply.
        assert_eq!(answered(&events, 8), Some(("BDAT 3".to_string(), 1)));
        assert_eq!(answered(&events, 10), Some(("BDAT 3".to_string(), 2)));
        assert_eq!(answered(&events, 11), Some(("BDAT 2 LAST".to_string(), 3)));
        // Every chunk answered: the next reply is to something else.
        assert_eq!(answered(&events, 12), None);
        // A chunk sent before the replies to MAIL and RCPT came: those replies would be
        // counted as the chunks', so nothing is told.
        let early = [
            &events[..5],
            &[
                sent(client, "BDAT 1\r\na"),
                sent(server, "250 ok\r\n250 ok\r\n"),
                sent(client, "BDAT 1\r\nb"),
                sent(client, "BDAT 1 LAST\r\nc"),
                sent(server, "250 1 octet\r\n"),
            ],
        ]
        .concat();
        assert_eq!(answered(&early, 9), None);
        // A write whose octets are not the chunk its BDAT announces is no chunk.
        events[7] = sent(client, "BDAT 3\r\nc\r\nNOOP\r\n");
        assert_eq!(answered(&events, 8), None);
        // The replies to MAIL and RCPT, and the greeting, answer no chunk.
        assert_eq!(answered(&events, 5), None);
        assert_eq!(answered(&events, 0), None);
    }

    #[test]
    fn a_closed_connection_is_explained_by_its_own_protocol() {
        let closed = Event::ConnectionClosed {
            conn: 1,
            by: "mx.b.test".into(),
            idle_timeout: false,
        };
        let pop3 = note_for(&closed, Some(Protocol::Pop3)).expect("a note");
        assert_eq!(pop3.rfc, "RFC 1939 6");
        assert!(pop3.text.contains("UPDATE"), "{}", pop3.text);
        let smtp = note_for(&closed, Some(Protocol::Smtp)).expect("a note");
        assert_eq!(smtp.rfc, "RFC 5321 4.1.1.10");
    }

    #[test]
    fn commands_are_explained_by_their_verb() {
        // A scripted client's other commands are explained too, not called data.
        for (line, protocol, rfc) in [
            (
                "MAIL FROM:<a@b>\r\n",
                Protocol::Smtp,
                "RFC 5321 4.1.1.2, RFC 2920",
            ),
            ("rcpt to:<a@b>\r\n", Protocol::Smtp, "RFC 5321 4.1.1.3"),
            ("NOOP\r\n", Protocol::Smtp, "RFC 5321 4.1.1.9"),
            (
                "VRFY bob\r\n",
                Protocol::Smtp,
                "RFC 5321 3.5.3, 4.1.1.6, 7.3",
            ),
            ("RETR 1\r\n", Protocol::Pop3, "RFC 1939 5"),
        ] {
            assert_eq!(sent(line, protocol).unwrap().rfc, rfc, "{line}");
        }
        // POP3 commands sent together are explained as the pipelining they are, and sent
        // with CAPA, as sent before the client could know that the server allows it.
        let unasked = sent("CAPA\r\nUSER bob\r\nPASS x\r\n", Protocol::Pop3).unwrap();
        assert_eq!(unasked.rfc, "RFC 2449 6.6, 5");
        assert!(
            unasked.text.contains("before it has read that reply"),
            "{unasked:?}"
        );
        let capa_later = sent("USER bob\r\nPASS x\r\nCAPA\r\n", Protocol::Pop3).unwrap();
        assert_eq!(capa_later.rfc, "RFC 2449 6.6, 5");
        let after_capa = sent("USER bob\r\nPASS x\r\n", Protocol::Pop3).unwrap();
        assert_eq!(after_capa.rfc, "RFC 2449 6.6");
        assert_eq!(sent("CAPA\r\n", Protocol::Pop3).unwrap().rfc, "RFC 2449 5");
        // Multipart data is explained with its parts; other data without.
        let multipart = sent(
            "From: a@b\r\nContent-Type: Multipart/Mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n.\r\n",
            Protocol::Smtp,
        )
        .unwrap();
        assert!(multipart.text.contains("MIME multipart"), "{multipart:?}");
        let report = sent(
            "From: MAILER-DAEMON@b\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n boundary=x\r\n\r\n--x--\r\n.\r\n",
            Protocol::Smtp,
        )
        .unwrap();
        assert!(report.text.contains("multipart/report"), "{report:?}");
        assert!(!report.text.contains("base64"), "{report:?}");
        let plain = sent(
            "From: a@b\r\n\r\nContent-Type: multipart/mixed\r\n.\r\n",
            Protocol::Smtp,
        )
        .unwrap();
        assert!(!plain.text.contains("multipart"), "{plain:?}");
        // Data is data, even when its first field is named like a command.
        for data in [
            "Subject: hi\r\n\r\nhello\r\n.\r\n",
            "Help: me\r\n\r\nhello\r\n.\r\n",
        ] {
            let note = sent(data, Protocol::Smtp).unwrap();
            assert!(note.text.contains("extra dot"), "{data}");
        }
        // MAIL alone is a client that waits; MAIL with what follows, one that pipelines.
        let alone = sent("MAIL FROM:<a@b>\r\n", Protocol::Smtp).unwrap();
        assert!(alone.text.contains("waits for each reply"), "{alone:?}");
        let unended = sent("MAIL FROM:<a@b>", Protocol::Smtp).unwrap();
        assert!(unended.text.contains("until it comes"), "{unended:?}");
        let pipelined = sent("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", Protocol::Smtp).unwrap();
        assert!(pipelined.text.contains("same send"), "{pipelined:?}");
        // Once the session's EHLO reply is known, a MAIL sent alone is explained by it.
        let mut offers = PipeliningOffers::default();
        let mail = b"MAIL FROM:<a@b>\r\n";
        assert!(offers.mail_sent_alone_note(1, mail).is_none());
        offers.observe(1, Direction::ClientToServer, b"EHLO a.test\r\n");
        offers.observe(
            1,
            Direction::ServerToClient,
            b"250-b.test\r\n250 SIZE 100\r\n",
        );
        offers.observe(2, Direction::ClientToServer, b"EHLO a.test\r\n");
        offers.observe(
            2,
            Direction::ServerToClient,
            b"250-b.test\r\n250 pipelining\r\n",
        );
        let without = offers.mail_sent_alone_note(1, mail).unwrap();
        assert!(
            without.text.contains("did not offer PIPELINING"),
            "{without:?}"
        );
        let unused = offers.mail_sent_alone_note(2, mail).unwrap();
        assert!(unused.text.contains("does not use it"), "{unused:?}");
        // As the client reads EHLO replies: a keyword with parameters or a trailing space.
        offers.observe(3, Direction::ClientToServer, b"EHLO a.test\r\n");
        offers.observe(
            3,
            Direction::ServerToClient,
            b"250-b.test\r\n250 PIPELINING \r\n",
        );
        assert!(offers
            .mail_sent_alone_note(3, mail)
            .unwrap()
            .text
            .contains("does not use it"));
        // EHLO refused, then HELO: a session without extensions.
        offers.observe(4, Direction::ClientToServer, b"EHLO a.test\r\n");
        offers.observe(4, Direction::ServerToClient, b"502 5.5.1 not here\r\n");
        offers.observe(4, Direction::ClientToServer, b"HELO a.test\r\n");
        offers.observe(4, Direction::ServerToClient, b"250 b.test\r\n");
        assert!(offers
            .mail_sent_alone_note(4, mail)
            .unwrap()
            .text
            .contains("began with HELO"));
        // A bare line feed keeps its own note (SMTP smuggling).
        assert!(offers
            .mail_sent_alone_note(1, b"MAIL FROM:<a@b>\n")
            .is_none());
        assert!(offers
            .mail_sent_alone_note(2, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
            .is_none());
        let unknown = sent("XYZZY\r\n", Protocol::Smtp).unwrap();
        assert!(unknown.text.contains("does not cover"), "{unknown:?}");
        assert!(sent("XYZZY\r\n", Protocol::Pop3).is_none());
    }

    #[test]
    fn a_bare_line_feed_is_explained_as_the_smuggling_it_allows() {
        let smuggled = "EHLO x\r\nDATA\r\nHello\n.\r\nMAIL FROM:<ceo@b>\r\n";
        let smuggling = sent(smuggled, Protocol::Smtp).unwrap();
        assert!(smuggling.text.contains("SMTP smuggling"), "{smuggling:?}");
        // A data line that begins with the word BDAT is no BDAT command; a chunk's counted
        // octets are skipped, and a bare LF after them is still seen.
        for smuggled in [
            "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nbdat is a verb\nhi\n.\r\n",
            "EHLO x\r\nBDAT 3 LAST\r\na\nbDATA\r\nhi\n.\r\n",
        ] {
            let note = sent(smuggled, Protocol::Smtp).unwrap();
            assert!(note.text.contains("SMTP smuggling"), "{smuggled:?}");
        }
        // CRLF lines, and the octets of a BDAT chunk, are not.
        assert_eq!(
            sent("EHLO x\r\n", Protocol::Smtp).unwrap().rfc,
            "RFC 5321 4.1.1.1, 4.1.4, RFC 1869 4.5"
        );
        assert_eq!(
            sent("BDAT 3 LAST\r\na\nb", Protocol::Smtp).unwrap().rfc,
            "RFC 3030 2"
        );
        // A scripted client's whole session in one send: the commands after EHLO did not wait
        // for its reply (RFC 2920 3.1), and the bare LF is in a BDAT chunk's counted octets.
        for script in [
            "EHLO x\r\nMAIL FROM:<a@b>\r\n",
            "EHLO c\r\nMAIL FROM:<c@c>\r\nRCPT TO:<r@r>\r\nBDAT 3 LAST\r\na\nbQUIT\r\n",
            "DATA\r\nSubject: at once\r\n",
        ] {
            assert_eq!(
                sent(script, Protocol::Smtp).unwrap().rfc,
                "RFC 2920 3.1, RFC 5321 4.1.4, 4.3.2",
                "{script:?}"
            );
        }
        // A command that ends a group with nothing after it, one that may lead a group, and
        // a message's data that begins with a field named like a command.
        for alone in [
            "QUIT\r\n",
            "DATA\r\n",
            "RSET\r\nMAIL FROM:<a@b>\r\n",
            "Noop: x\r\nSubject: y\r\n\r\nhi\r\n.\r\n",
        ] {
            assert!(
                !sent(alone, Protocol::Smtp)
                    .unwrap()
                    .rfc
                    .contains("2920 3.1"),
                "{alone:?}"
            );
        }
    }

    #[test]
    fn every_pop3_command_a_user_agent_sends_is_explained() {
        for command in [
            "CAPA", "UTF8", "USER a", "PASS b", "STAT", "LIST", "UIDL", "RETR 1",
        ] {
            let line = format!("{command}\r\n");
            assert!(sent(&line, Protocol::Pop3).is_some(), "{command}");
        }
        assert_eq!(
            sent("UTF8\r\n", Protocol::Pop3).unwrap().rfc,
            "RFC 6856 2.1, 2.2"
        );
    }

    #[test]
    fn an_mx_result_without_hosts_and_a_delay_notice_have_their_own_notes() {
        use crate::dns::resolver::failure_text;
        use crate::sim::trace::{BounceCreated, MxResolved};
        let resolved = |result: &str, targets: Vec<String>| {
            Event::MxResolved(Box::new(MxResolved {
                host: "mail.a.test".into(),
                domain: "b.test".into(),
                result: result.into(),
                targets,
                from_cache: false,
                notes: Vec::new(),
                failure: None,
            }))
        };
        // Each failure is explained by itself, with its status, as the world writes it.
        for (result, says) in [
            ("Temporary DNS failure; will retry (4.4.3)", "stays queued"),
            ("Temporary DNS failure (4.4.3)", "give-up time"),
            ("Host or domain name not found (5.1.2)", "NXDOMAIN"),
            ("Recipient address has null MX (5.1.10)", "'MX 0 .'"),
            (
                "Unable to route: no mail host with an address (5.4.4)",
                "(5.4.4)",
            ),
            (
                "Mail for this domain loops back to myself (5.4.6)",
                "bounces (5.4.6",
            ),
        ] {
            let explained = note_for(&resolved(result, Vec::new()), None).unwrap();
            assert!(explained.text.contains(says), "{result}: {explained:?}");
        }
        let temporary = note_for(
            &resolved(
                &format!("{}; {WILL_RETRY} (4.4.3)", failure_text::TEMPORARY),
                Vec::new(),
            ),
            None,
        )
        .unwrap();
        assert!(temporary.text.contains("SERVFAIL"), "{temporary:?}");
        assert!(!temporary.text.contains("NXDOMAIN"), "{temporary:?}");
        let unknown = note_for(&resolved("something else", Vec::new()), None).unwrap();
        assert!(unknown.text.starts_with("No host to try"), "{unknown:?}");
        let some = note_for(
            &resolved(
                "MX records, by preference",
                vec!["mx.b.test [192.0.2.1]".into()],
            ),
            None,
        )
        .unwrap();
        assert!(
            some.text
                .starts_with("The host to try: mx.b.test [192.0.2.1], the only one."),
            "{some:?}"
        );
        assert!(!some.text.contains("seed"), "{some:?}");
        let several = note_for(
            &resolved(
                "MX records, by preference",
                vec![
                    "mx1.b.test [192.0.2.1]".into(),
                    "mx2.b.test [192.0.2.2]".into(),
                ],
            ),
            None,
        )
        .unwrap();
        assert!(
            several.text.starts_with(
                "The hosts to try, in this order: mx1.b.test [192.0.2.1]; mx2.b.test [192.0.2.2]."
            ),
            "{several:?}"
        );
        let routed = Event::MxResolved(Box::new(MxResolved {
            host: "mail.a.test".into(),
            domain: "b.test".into(),
            result: format!("configured route, {}", crate::sim::trace::NO_DNS_LOOKUP),
            targets: vec!["mx.b.test [192.0.2.1]".into()],
            from_cache: false,
            notes: Vec::new(),
            failure: None,
        }));
        let routed = note_for(&routed, None).unwrap();
        assert!(routed.text.starts_with("No DNS lookup"), "{routed:?}");
        let notice = |action: &str| {
            Event::BounceCreated(Box::new(BounceCreated {
                host: "mail.a.test".into(),
                about: "m1".into(),
                bounce: "d1".into(),
                to: "alice@a.test".into(),
                recipients: vec!["bob@b.test".into()],
                action: action.into(),
                bytes: crate::sim::trace::WireBytes::from_bytes(b""),
            }))
        };
        let delayed = note_for(&notice("delayed"), None).unwrap();
        assert!(delayed.text.starts_with("A delay notice, not a bounce"));
        let failed = note_for(&notice("failed"), None).unwrap();
        assert!(failed.text.starts_with("A delivery status notification"));
    }

    #[test]
    fn a_transaction_without_an_accepted_recipient_is_said_to_skip_data() {
        let skipped = notes_at_lines(
            "address-syntax-error",
            "client ExpectRcptReplies -> ExpectQuitReply",
        );
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].starts_with("No recipient was accepted in this transaction"),
            "{}",
            skipped[0]
        );
        // Where a recipient was accepted, the client goes on to DATA, with no such note.
        assert!(notes_at_lines(
            "basic-delivery",
            "client ExpectRcptReplies -> ExpectQuitReply"
        )
        .is_empty());
    }

    #[test]
    fn citations_joined_name_an_rfc_once_where_its_sections_follow_on() {
        assert_eq!(
            joined_citations("RFC 5321 4.1.4", "RFC 5321 4.1.1.2, RFC 2920"),
            "RFC 5321 4.1.4, 4.1.1.2, RFC 2920"
        );
        assert_eq!(
            joined_citations("RFC 5321 4.5.3.1.10, 4.1.4", "RFC 5321 4.1.1.2, RFC 2920"),
            "RFC 5321 4.5.3.1.10, 4.1.4, 4.1.1.2, RFC 2920"
        );
        // Another RFC, one whose number begins the same, or one named without a section.
        assert_eq!(
            joined_citations("RFC 5321 4.1.4", "RFC 2920 3.1"),
            "RFC 5321 4.1.4, RFC 2920 3.1"
        );
        assert_eq!(
            joined_citations("RFC 821 4.1", "RFC 8210 2"),
            "RFC 821 4.1, RFC 8210 2"
        );
        assert_eq!(
            joined_citations("RFC 2920 3.1", "RFC 2920"),
            "RFC 2920 3.1, RFC 2920"
        );
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
        )
        .unwrap();
        assert_eq!(other.rfc, "RFC 5321 4.1.1.2, RFC 2920 3.1");
        assert!(
            other.text.starts_with("The client sends MAIL FROM"),
            "{other:?}"
        );
    }
}
