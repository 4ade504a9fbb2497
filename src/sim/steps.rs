//! A trace cut into the steps a student steps through: each step is one event that shows as
//! text (a line on the wire, a DNS answer, a queue change, a session's new state, ...), with
//! the explanations of the replies it carries. A reply's explanation, which has no text of its
//! own, joins the step of the bytes that carry the reply.

use super::notes::{
    for_null_reverse_path, in_context, message_data_note, note_for, submission_connection_note,
    with_mail_parameters, PipeliningOffers, StepNote, TransactionsSeen,
};
use super::trace::{
    is_data_summary, ConnId, Direction, Event, Name, Protocol, TextRenderer, Trace, TraceEvent,
    PERMANENT_FAILURE, TEMPORARY_FAILURE, USER_AGENT_PREFIX,
};
use crate::dns::world::Outcome as DnsOutcome;
use crate::smtp::command::bdat_with_chunk;
use crate::smtp::explain::ehlo_keywords;
use crate::smtp::server::EHLO_WHY;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a server sent a reply, for the details panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepExplanation {
    pub code: u16,
    pub enhanced: Option<String>,
    /// The reply as its protocol names it: `550 5.1.1` for SMTP, `+OK` or `-ERR` for POP3,
    /// which has no numeric codes (RFC 1939 3; the trace's 200 and 500 stand for them).
    pub heading: String,
    pub meaning: Name,
    pub why: Name,
    /// What the reply says point by point, after `why`: what each keyword of an EHLO reply
    /// offers, and what the usual ones it leaves out mean. Written by [`Step::explained`],
    /// when the step is shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<String>,
    pub rfc: Name,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Index of the event in the trace; the world after this step is the view after
    /// `event + 1` events.
    pub event: usize,
    pub time_ms: u64,
    /// How many text lines the event has: [`Step::lines`] writes them when they are shown.
    /// A step does not keep them, since a long run has millions of lines, most never shown,
    /// and their text is in the trace already.
    pub line_count: usize,
    /// Who the lines are of, as each names them after its time. A name may hold spaces (a
    /// quoted local part, a scripted client's name): the lines' columns alone do not say
    /// where it ends.
    #[serde(default)]
    pub actor: Name,
    /// The connection the event happened on, if any.
    pub conn: Option<ConnId>,
    /// For bytes on a connection: which way they went.
    pub direction: Option<Direction>,
    /// For bytes a server sent: the explanation of each reply in them, in order.
    pub explanations: Vec<StepExplanation>,
    /// What any other step means, for the student.
    pub note: Option<StepNote>,
    /// A failure the step's event reports itself, not in a reply: see [`failure_of`].
    #[serde(default)]
    pub failure: Option<Refusal>,
}

impl Step {
    /// The text lines of the step's event in `trace` (the trace the step was cut from),
    /// without their newlines: the lines of the text trace.
    pub fn lines(&self, trace: &Trace) -> Vec<String> {
        let Some(event) = trace.events.get(self.event) else {
            return Vec::new();
        };
        let mut renderer = match self.conn {
            Some(conn) => {
                let renderer = TextRenderer::for_one_event_of(conn, &self.actor);
                // A chunk's first line may be the rest of one the chunks before cut: looked
                // for only for a client's BDAT, as the scan goes back along the connection.
                let tail = match &event.event {
                    Event::Transmitted {
                        direction: Direction::ClientToServer,
                        bytes,
                        ..
                    } if bdat_with_chunk(bytes.as_bytes()).is_some() => {
                        super::notes::chunk_stream_tail(&trace.events, self.event)
                    }
                    _ => None,
                };
                match tail {
                    Some(tail) => renderer.after_chunks(conn, tail),
                    None => renderer,
                }
            }
            None => TextRenderer::default(),
        }
        .with_days_of(trace);
        let mut text = String::new();
        renderer.write(event, &mut text);
        text.lines().map(str::to_string).collect()
    }

    /// The step's note as it is shown, told with what the rest of `trace` (the trace the
    /// step was cut from) says where that changes it ([`in_context`]): this run's waits, and
    /// the attempt after which a host gives up.
    pub fn noted(&self, trace: &Trace) -> Option<StepNote> {
        let note = self.note.as_ref()?;
        Some(in_context(&trace.events, self.event).unwrap_or_else(|| note.clone()))
    }

    /// The step's explanations, an EHLO reply's with its points, which say what each keyword
    /// in the reply's lines offers: written from the step's bytes in `trace` when the step is
    /// shown, not for each of the thousands of EHLO replies of a long run.
    pub fn explained(&self, trace: &Trace) -> Vec<StepExplanation> {
        let mut explanations = self.explanations.clone();
        if !explanations.iter().any(|e| e.why.starts_with(EHLO_WHY)) {
            return explanations;
        }
        let Some(bytes) = self.sent_bytes(trace) else {
            return explanations;
        };
        // The explanations pair with the replies in the bytes, in order.
        for (explanation, reply) in explanations.iter_mut().zip(replies_in(bytes)) {
            if explanation.why.starts_with(EHLO_WHY) {
                explanation.points = ehlo_reply_points(&reply);
            }
        }
        explanations
    }

    /// For each of the step's explanations, the command its reply answers, as a line of the
    /// conversation shows it (see [`wire_lines`]): for a server's send of several replies to
    /// pipelined commands (RFC 2920), whose replies the details do not list in the order they
    /// came, refusals first. `None` for a step of one reply, whose command is the step before
    /// it, and wherever which command a reply answers cannot be told for sure
    /// ([`commands_answered`](super::notes::commands_answered)): also where a 421 is among
    /// the replies (a server that closes, after too many errors, say, reads no more of what
    /// was sent), or a 354 before the last (the lines after its DATA are a message).
    pub fn commands_answered(&self, trace: &Trace) -> Option<Vec<String>> {
        let replies = self.explanations.len();
        if replies < 2 || self.direction != Some(Direction::ServerToClient) {
            return None;
        }
        let closes = self.explanations.iter().any(|e| e.code == 421);
        let message_after = self.explanations[..replies - 1]
            .iter()
            .any(|e| e.code == 354);
        if closes || message_after {
            return None;
        }
        if replies_in(self.sent_bytes(trace)?).len() != replies {
            return None;
        }
        let commands = super::notes::commands_answered(&trace.events, self.event, replies)?;
        Some(
            commands
                .into_iter()
                .map(|command| {
                    wire_lines(command, 1)
                        .0
                        .pop()
                        .map(|line| line.text)
                        .unwrap_or_default()
                })
                .collect(),
        )
    }

    /// For a server's send of one reply to a BDAT chunk, the chunk's BDAT line as the
    /// conversation shows it, and which chunk of its run it is (1 for the first): with chunks
    /// pipelined, the step before a reply need not be its chunk. `None` where that cannot be
    /// told for sure ([`chunk_answered`](super::notes::chunk_answered)), and for a 421, which
    /// a server that closes may send in answer to nothing.
    pub fn chunk_answered(&self, trace: &Trace) -> Option<(String, usize)> {
        if self.explanations.len() != 1
            || self.explanations[0].code == 421
            || self.direction != Some(Direction::ServerToClient)
        {
            return None;
        }
        if replies_in(self.sent_bytes(trace)?).len() != 1 {
            return None;
        }
        let (command, number) = super::notes::chunk_answered(&trace.events, self.event)?;
        Some((wire_lines(command, 1).0.pop()?.text, number))
    }

    /// The bytes of the step's event in `trace`, when it is a send on a connection.
    fn sent_bytes<'t>(&self, trace: &'t Trace) -> Option<&'t [u8]> {
        match &trace.events.get(self.event)?.event {
            Event::Transmitted { bytes, .. } => Some(bytes.as_bytes()),
            _ => None,
        }
    }
}

/// How a line of bytes on the wire ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// CR LF, the only line ending SMTP and POP3 allow (RFC 5321 2.3.8, RFC 1939 3).
    CrLf,
    /// A bare LF: what SMTP smuggling hides behind.
    BareLf,
    /// A bare CR.
    BareCr,
    /// The bytes ended inside the line.
    Unterminated,
}

/// One line of a transmission as sent: its text (control characters other than TAB written
/// as `\xNN`, and a backslash before `\`, `x` and two hex digits, or such a character as
/// `\\`) and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireLine {
    pub text: String,
    pub ending: LineEnding,
}

/// The first `max_lines` lines of `bytes` as they went on the wire, and how many more there
/// were.
pub fn wire_lines(bytes: &[u8], max_lines: usize) -> (Vec<WireLine>, usize) {
    let mut lines = Vec::new();
    let mut left_out = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let (ending, length) = match &rest[end..] {
            [b'\r', b'\n', ..] => (LineEnding::CrLf, 2),
            [b'\n', ..] => (LineEnding::BareLf, 1),
            [b'\r', ..] => (LineEnding::BareCr, 1),
            _ => (LineEnding::Unterminated, 0),
        };
        if lines.len() < max_lines {
            let mut text = String::new();
            let shown_as_escape = |c: char| c.is_control() && c != '\t';
            let line = String::from_utf8_lossy(&rest[..end]);
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if shown_as_escape(c) {
                    text.push_str(&format!("\\x{:02x}", c as u32));
                    continue;
                }
                // A backslash sent before what would read as an escape is doubled, so that
                // the text `\x00` a client sent never looks like a NUL.
                // RFC 6533's `\x{F6}` cannot be read as one, and stays as sent.
                let reads_as_escape = match chars.peek() {
                    Some('\\') => true,
                    Some('x') => {
                        let mut after = chars.clone().skip(1);
                        after.next().is_some_and(|c| c.is_ascii_hexdigit())
                            && after.next().is_some_and(|c| c.is_ascii_hexdigit())
                    }
                    Some(&next) => shown_as_escape(next),
                    None => false,
                };
                if c == '\\' && reads_as_escape {
                    text.push('\\');
                }
                text.push(c);
            }
            lines.push(WireLine { text, ending });
        } else {
            left_out += 1;
        }
        rest = &rest[end + length..];
    }
    (lines, left_out)
}

/// How many CRs and LFs in `bytes` are not part of a CRLF: each splits a row of
/// [`wire_lines`] without ending a line (RFC 5321 2.3.8: only CRLF ends one).
pub fn bare_line_endings(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = bytes;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
        if rest[at..].starts_with(b"\r\n") {
            rest = &rest[at + 2..];
        } else {
            count += 1;
            rest = &rest[at + 1..];
        }
    }
    count
}

/// Cuts a trace into steps.
pub fn steps(trace: &Trace) -> Vec<Step> {
    let mut cutter = StepCutter::new(trace.events.len());
    for (index, event) in trace.events.iter().enumerate() {
        cutter.cut(index, event);
    }
    cutter.steps
}

/// Cuts a trace into steps an event at a time, in order (see [`steps`]), so that a page can
/// draw between slices of a long run.
#[derive(Default)]
pub struct StepCutter {
    renderer: TextRenderer,
    actor: Name,
    steps: Vec<Step>,
    /// Explanations are recorded just before the bytes that carry their replies.
    pending: Vec<(ConnId, StepExplanation)>,
    text: String,
    protocols: BTreeMap<ConnId, Protocol>,
    /// The connections on which a user agent submits mail.
    submissions: BTreeSet<ConnId>,
    pipelining: PipeliningOffers,
    transactions: TransactionsSeen,
    /// Each host's DNS questions by their id, for the answers to them.
    dns_questions: BTreeMap<(Name, u16), String>,
}

impl StepCutter {
    /// A cutter for a trace of `events` events: at most one step per event, reserved at once,
    /// as a run may have millions.
    pub fn new(events: usize) -> StepCutter {
        StepCutter {
            steps: Vec::with_capacity(events),
            ..StepCutter::default()
        }
    }

    /// The steps cut so far.
    pub fn finish(self) -> Vec<Step> {
        self.steps
    }

    /// Cuts the event at `index` of the trace, the one after the last cut.
    pub fn cut(&mut self, index: usize, event: &TraceEvent) {
        let StepCutter {
            renderer,
            actor,
            steps,
            pending,
            text,
            protocols,
            submissions,
            pipelining,
            transactions,
            dns_questions,
        } = self;
        if let Event::ConnectionAttempted(attempt) = &event.event {
            protocols.insert(attempt.conn, attempt.protocol);
            if attempt.protocol == Protocol::Smtp && attempt.client.starts_with(USER_AGENT_PREFIX) {
                submissions.insert(attempt.conn);
            }
        }
        if let Event::ReplyExplained {
            conn,
            code,
            enhanced,
            note,
        } = &event.event
        {
            let heading = match protocols.get(conn) {
                Some(Protocol::Pop3) if *code < 400 => "+OK".to_string(),
                Some(Protocol::Pop3) => "-ERR".to_string(),
                _ => match enhanced {
                    Some(status) => format!("{code} {status}"),
                    None => code.to_string(),
                },
            };
            pending.push((
                *conn,
                StepExplanation {
                    code: *code,
                    heading,
                    enhanced: enhanced.map(|status| status.to_string()),
                    meaning: note.meaning.clone(),
                    why: note.why.clone(),
                    points: Vec::new(),
                    rfc: note.rfc.clone(),
                },
            ));
            return;
        }
        text.clear();
        renderer.write(event, text);
        if text.is_empty() {
            return;
        }
        let conn = event_conn(&event.event);
        let dns_question = match &event.event {
            Event::DnsQuery(query) => {
                dns_questions.insert((Name::clone(&query.host), query.id), query.question.clone());
                None
            }
            Event::DnsResponse(response) => dns_questions
                .get(&(Name::clone(&response.host), response.id))
                .map(String::as_str),
            _ => None,
        };
        let explanations = match (&event.event, conn) {
            (
                Event::Transmitted {
                    direction: Direction::ServerToClient,
                    ..
                },
                Some(conn),
            ) => {
                // An SMTP server's send holds every reply written since its last one; a POP3
                // server's, one response (a client that sends all its commands at once gets
                // their explanations ahead of the responses): the oldest waiting.
                let take = match protocols.get(&conn) {
                    Some(Protocol::Pop3) => 1,
                    _ => usize::MAX,
                };
                let (mut mine, mut others) = (Vec::new(), Vec::new());
                for (c, explanation) in pending.drain(..) {
                    if c == conn && mine.len() < take {
                        mine.push(explanation);
                    } else {
                        others.push((c, explanation));
                    }
                }
                *pending = others;
                mine
            }
            _ => Vec::new(),
        };
        let direction = match &event.event {
            Event::Transmitted { direction, .. } => Some(*direction),
            _ => None,
        };
        let note = match &event.event {
            Event::Transmitted {
                conn,
                direction,
                bytes,
            } if protocols.get(conn) == Some(&Protocol::Smtp) => {
                let bytes = bytes.as_bytes();
                // After a 354 the client sends the message: its lines are text, whatever they
                // look like ("RCPT TO:<x>" in a message is no command).
                let note = if *direction == Direction::ClientToServer
                    && transactions.message_comes_next(*conn)
                {
                    message_data_note(bytes)
                } else {
                    let note = pipelining
                        .mail_sent_alone_note(*conn, bytes)
                        .or_else(|| pipelining.data_note(*conn, bytes))
                        .or_else(|| note_for(&event.event, Some(Protocol::Smtp)));
                    let note = transactions.with_transaction_context(*conn, bytes, note);
                    pipelining.observe(*conn, *direction, bytes);
                    with_mail_parameters(for_null_reverse_path(note, bytes), bytes)
                };
                transactions.observe(*conn, *direction, bytes);
                note
            }
            _ => conn
                .filter(|c| submissions.contains(c))
                .and_then(|_| submission_connection_note(&event.event))
                .or_else(|| note_for(&event.event, conn.and_then(|c| protocols.get(&c).copied()))),
        };
        // One name shared by a run of steps of the same actor.
        if **actor != *renderer.last_actor() {
            *actor = Name::from(renderer.last_actor());
        }
        steps.push(Step {
            event: index,
            time_ms: event.time_ms,
            line_count: text.lines().count(),
            actor: Name::clone(actor),
            conn,
            direction,
            explanations,
            note,
            failure: failure_of(&event.event, dns_question),
        });
    }
}

/// The SMTP replies in `bytes`, each as its lines without CRLF: a reply ends with a line
/// whose code is followed by a space or nothing (RFC 5321 4.2.1). Lines after the last
/// complete reply are left out.
fn replies_in(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut replies = Vec::new();
    let mut reply = Vec::new();
    for line in crate::smtp::dot::crlf_lines(bytes) {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(line));
        let last = is_last_reply_line(&text);
        reply.push(text.into_owned());
        if last {
            replies.push(std::mem::take(&mut reply));
        }
    }
    replies
}

/// What each extension keyword in an EHLO reply (`reply`: its lines, code and all) means:
/// said from the bytes shown, where the student reads them, rather than written by the
/// server for every session.
fn ehlo_reply_points(reply: &[String]) -> Vec<String> {
    let keywords: Vec<&str> = reply
        .iter()
        .skip(1)
        .map(|line| line.get(4..).unwrap_or_default())
        .collect();
    ehlo_keywords(&keywords)
}

/// A failure an event reports itself, which the diagram, the conversation and the details
/// draw as they draw a refusing reply:
/// - a connection that could not be made, or that broke: temporary, since the sender tries
///   the next host, or again later (RFC 5321 5.1, 4.5.4.1);
/// - a DNS answer to the mail domain's MX question (`dns_question`, the question the answer
///   is to) that is not an answer: NXDOMAIN, the domain does not exist (RFC 1035 4.1.1);
///   SERVFAIL, or none at all, which may be better later (RFC 2308 7). For an MX host's
///   address question such an answer only rules out that host, which the MX result says;
/// - an MX resolution that found no host, by its status's class (RFC 3463 2);
/// - the sending host's result for a recipient, whether a reply or its own finding: a
///   temporary failure keeps the recipient queued, a permanent one bounces;
/// - a retry scheduled: a temporary failure keeps the message queued;
/// - an MX host not tried, as it could not be reached a short while ago;
/// - a queue entry given up on: the sender will try no more;
/// - a delivery the MDA refused (over quota) after the server's 250: it bounces;
/// - a message its user agent would not submit (an address it cannot write, a message over
///   the server's SIZE, ...): it is not sent at all.
pub fn failure_of(event: &Event, dns_question: Option<&str>) -> Option<Refusal> {
    let failed_for_now = |temporary: bool| {
        if temporary {
            Refusal::Temporary
        } else {
            Refusal::Permanent
        }
    };
    match event {
        Event::ConnectionRefused { .. }
        | Event::ConnectionTimedOut { .. }
        | Event::ConnectionDropped { .. }
        | Event::ServerStalled { .. } => Some(Refusal::Temporary),
        // A run cut at the simulator's limit, or one that lost or duplicated a message.
        Event::ConservationChecked { ok: false, .. } => Some(Refusal::Permanent),
        Event::DnsResponse(_) if !dns_question.is_some_and(|q| q.ends_with(" IN MX")) => None,
        Event::DnsResponse(response) => match response.outcome {
            DnsOutcome::NxDomain => Some(Refusal::Permanent),
            DnsOutcome::ServFail | DnsOutcome::TimedOut => Some(Refusal::Temporary),
            DnsOutcome::NoError => None,
        },
        Event::MxResolved(resolved) => resolved
            .failure
            .map(|status| failed_for_now(status.class == 4)),
        Event::RecipientResult(result) => match result.result.as_str() {
            TEMPORARY_FAILURE => Some(Refusal::Temporary),
            PERMANENT_FAILURE => Some(Refusal::Permanent),
            _ => None,
        },
        Event::RetryScheduled(_) | Event::TargetSkipped(_) => Some(Refusal::Temporary),
        Event::GaveUp(_) => Some(Refusal::Permanent),
        // After its 250 the server may not drop the message: an MDA refusal bounces it.
        Event::DeliveryRefused(_) => Some(Refusal::Permanent),
        Event::SubmissionFailed(_) => Some(Refusal::Permanent),
        _ => None,
    }
}

/// A reply that refuses, or a failure an event reports: what the details colour its
/// explanation by. Ordered by how bad: a permanent refusal is worse than a temporary one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Refusal {
    /// 4yz: try again later (RFC 5321 4.2.1), or a POP3 `-ERR` whose response code says so
    /// (`[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`, RFC 2449 8, RFC 3206).
    Temporary,
    /// 5yz, or any other POP3 `-ERR`.
    Permanent,
}

impl Refusal {
    /// The refusal an explained reply is, if it is one.
    pub fn of(explanation: &StepExplanation) -> Option<Refusal> {
        match explanation.code {
            400..=499 => Some(Refusal::Temporary),
            500.. => Some(Refusal::Permanent),
            _ => None,
        }
    }

    /// What goes wrong at a step, if anything, for the diagram, the conversation and the
    /// details to draw it in that colour: the worst refusal among the step's replies, or the
    /// failure its event reports.
    pub fn of_step(step: &Step) -> Option<Refusal> {
        step.explanations
            .iter()
            .filter_map(Refusal::of)
            .chain(step.failure)
            .max()
    }

    /// Whether one of the step's replies refuses: what goes wrong is then a refusal, else a
    /// failure its event reports.
    pub fn in_replies(step: &Step) -> bool {
        step.explanations.iter().any(|e| Refusal::of(e).is_some())
    }
}

/// Whether an event only follows from a failure shown before it: the sending host's record
/// of a server's refusal, and the retry it schedules. Coloured as the failure is, but the
/// failure happened elsewhere (on a hop, at the refusing server): the diagram marks nothing
/// for it, and going from failure to failure passes it by.
pub fn restates_a_failure(event: &Event) -> bool {
    match event {
        Event::RetryScheduled(_) => true,
        Event::RecipientResult(result) => {
            !result.own_finding
                && matches!(
                    result.result.as_str(),
                    TEMPORARY_FAILURE | PERMANENT_FAILURE
                )
        }
        _ => false,
    }
}

/// Whether an event starts something a failure can come of: bytes sent, a connection tried,
/// a DNS question, a delivery attempt.
fn starts_something(event: &Event) -> bool {
    matches!(
        event,
        Event::Transmitted { .. }
            | Event::ConnectionAttempted(_)
            | Event::DnsQuery(_)
            | Event::AttemptStarted { .. }
    )
}

/// The positions (a player's cursor: 1 for the first step) of the steps of `trace` where
/// something goes wrong, a refusal or a failure, in order: where a student looking for the
/// lesson of a scenario jumps to. Left out are the failures that only follow from one before:
/// those of [`restates_a_failure`], and a failure the sending host reports when nothing was
/// started since the last one (an MX lookup that found nothing after its NXDOMAIN answer, a
/// recipient's "lost connection" after the connection broke), though not its giving up nor
/// an MDA's refusal.
pub fn failure_positions(steps: &[Step], trace: &Trace) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut started = true;
    for (index, step) in steps.iter().enumerate() {
        let Some(event) = trace.events.get(step.event).map(|event| &event.event) else {
            continue;
        };
        let refused = Refusal::in_replies(step);
        let failed = step.failure.is_some()
            && !restates_a_failure(event)
            && (started || matches!(event, Event::GaveUp(_) | Event::DeliveryRefused(_)));
        if refused || failed {
            positions.push(index + 1);
            started = false;
        }
        if starts_something(event) {
            started = true;
        }
    }
    positions
}

/// The first of `positions` (see [`failure_positions`]) after `cursor`.
pub fn next_failure(positions: &[usize], cursor: usize) -> Option<usize> {
    positions
        .get(positions.partition_point(|&position| position <= cursor))
        .copied()
}

/// The last of `positions` (see [`failure_positions`]) before `cursor`.
pub fn previous_failure(positions: &[usize], cursor: usize) -> Option<usize> {
    positions
        .partition_point(|&position| position < cursor)
        .checked_sub(1)
        .map(|index| positions[index])
}

/// For each of `lines`, the lines of `step` ([`Step::lines`]), the refusal its reply is,
/// when the line belongs to a reply that refuses. The replies in a server's step are its
/// explanations, in order: one starts at the step's first line and after each last line of
/// an SMTP reply (`250 ...`, not `250-...`, RFC 5321 4.2.1). A POP3 server's step is one
/// response, whose data lines (a message's, which may read like replies) start nothing.
pub fn refusal_lines(step: &Step, lines: &[String]) -> Vec<Option<Refusal>> {
    let mut refusals = vec![None; lines.len()];
    if step.direction != Some(Direction::ServerToClient) || !Refusal::in_replies(step) {
        return refusals;
    }
    let mut replies = step.explanations.iter();
    let mut current = None;
    let mut reply_starts = true;
    for (refusal, line) in refusals.iter_mut().zip(lines) {
        let Some((_, text)) = line.split_once(" S: ") else {
            continue;
        };
        if is_data_summary(line) {
            break;
        }
        if reply_starts {
            let Some(explanation) = replies.next() else {
                break;
            };
            current = Refusal::of(explanation);
        }
        *refusal = current;
        reply_starts = is_last_reply_line(text);
    }
    refusals
}

/// Which lines of a step to repeat where its lines are not in sight (over its details on a
/// phone), given each line's refusal: the first `first` lines, and the lines of the step's
/// first refusal (with any refusal right after it, at most `first` lines in all), which the
/// details explain first.
pub fn lines_repeated(refusals: &[Option<Refusal>], first: usize) -> Vec<bool> {
    let first_refusal = refusals.iter().position(Option::is_some);
    (0..refusals.len())
        .map(|number| {
            number < first
                || first_refusal.is_some_and(|start| {
                    (start..start + first).contains(&number)
                        && refusals
                            .get(start..=number)
                            .is_some_and(|run| run.iter().all(Option::is_some))
                })
        })
        .collect()
}

/// Whether `text` is the last line of an SMTP reply: its code, then a space or nothing.
fn is_last_reply_line(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && bytes.get(3).is_none_or(|&b| b == b' ')
}

/// The connection an event happened on, if any.
pub(crate) fn event_conn(event: &Event) -> Option<ConnId> {
    match event {
        Event::ConnectionAttempted(attempt) => Some(attempt.conn),
        Event::MessageAccepted(accepted) => Some(accepted.conn),
        Event::MessageRetrieved(retrieved) => Some(retrieved.conn),
        Event::MessagesLeft(left) => Some(left.conn),
        // One more transaction on a session already open: that session's link, not the host.
        Event::SessionJoined(joined) => Some(joined.conn),
        Event::DsnWithheld(withheld) => Some(withheld.conn),
        Event::ConnectionOpened { conn }
        | Event::ConnectionRefused { conn, .. }
        | Event::ConnectionTimedOut { conn }
        | Event::ConnectionDropped { conn, .. }
        | Event::ServerStalled { conn, .. }
        | Event::ConnectionClosed { conn, .. }
        | Event::Transmitted { conn, .. }
        | Event::ClientState { conn, .. }
        | Event::ServerState { conn, .. } => Some(*conn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{library, run};

    #[test]
    fn a_student_jumps_from_failure_to_failure() {
        let of = |name: &str| {
            let scenario = library::find(name).expect("a built-in scenario");
            let trace = run(&scenario, scenario.seed).trace;
            let steps = super::steps(&trace);
            let failures = failure_positions(&steps, &trace);
            (steps, failures, trace)
        };
        let position_of = |steps: &[Step], trace: &Trace, text: &str| {
            steps
                .iter()
                .position(|step| step.lines(trace).join(" ").contains(text))
                .unwrap_or_else(|| panic!("a step with {text}"))
                + 1
        };
        // Greylisting's one failure is its 451; the sending host's record of it and the retry
        // it schedules follow from it: coloured, but passed by.
        let (steps, failures, trace) = of("greylisting");
        assert_eq!(failures, [position_of(&steps, &trace, "451 4.7.1")]);
        for passed_by in ["temporary failure: 451", " retry at "] {
            let position = position_of(&steps, &trace, passed_by);
            assert!(
                Refusal::of_step(&steps[position - 1]).is_some(),
                "{passed_by}"
            );
        }
        // A finding of the sending host's own is a failure of its own.
        let (steps, failures, trace) = of("message-too-big");
        assert!(failures.contains(&position_of(&steps, &trace, "permanent failure: 552 5.3.4")));
        // What the sending host reports of a failure just shown is passed by: the MX lookup
        // that found nothing after NXDOMAIN, a recipient's "lost connection" after the
        // connection broke; its giving up is not.
        let (steps, failures, trace) = of("unknown-domain");
        assert!(failures.contains(&position_of(&steps, &trace, ": NXDOMAIN")));
        assert!(!failures.contains(&position_of(&steps, &trace, "not found (5.1.2)")));
        let (steps, failures, trace) = of("connection-lost-in-data");
        assert!(!failures.contains(&position_of(&steps, &trace, "temporary failure: 451 4.4.2")));
        let (steps, failures, trace) = of("server-down-for-good");
        let refused = position_of(&steps, &trace, "connection refused");
        assert!(failures.contains(&refused));
        assert!(failures.contains(&position_of(&steps, &trace, " gave up on ")));
        assert!(!failures.contains(&(refused + 1)), "{failures:?}");
        // Mailbox-full refuses at RCPT at every attempt: from one to the next and back.
        let (steps, failures, _) = of("mailbox-full");
        assert!(failures.len() >= 2, "{failures:?}");
        assert!(failures.windows(2).all(|pair| pair[0] < pair[1]));
        for &position in &failures {
            assert!(Refusal::of_step(&steps[position - 1]).is_some());
        }
        let (first, second) = (failures[0], failures[1]);
        assert_eq!(next_failure(&failures, 0), Some(first));
        assert_eq!(next_failure(&failures, first - 1), Some(first));
        assert_eq!(next_failure(&failures, first), Some(second));
        assert_eq!(previous_failure(&failures, second), Some(first));
        assert_eq!(previous_failure(&failures, first), None);
        assert_eq!(
            previous_failure(&failures, steps.len()),
            failures.last().copied()
        );
        assert_eq!(next_failure(&failures, *failures.last().unwrap()), None);
        assert_eq!(next_failure(&[], 0), None);
        assert_eq!(previous_failure(&[], 5), None);
    }

    #[test]
    fn a_step_is_trouble_when_a_reply_refuses_or_its_event_reports_a_failure() {
        // What each kind of step comes to, found in the scenarios that show it.
        let kinds = |name: &str| {
            let scenario = library::find(name).expect("a built-in scenario");
            let trace = run(&scenario, scenario.seed).trace;
            steps(&trace)
                .iter()
                .map(|step| (step.lines(&trace).join(" "), Refusal::of_step(step)))
                .collect::<Vec<_>>()
        };
        use Refusal::{Permanent, Temporary};
        // The first step of scenario `name` whose lines hold the text, and what it comes to.
        for (name, text, expected) in [
            ("unknown-user", "550 5.1.1", Some(Permanent)),
            ("unknown-user", "C: RCPT TO", None),
            ("unknown-user", "S: 220 ", None),
            ("greylisting", "451 4.7.1", Some(Temporary)),
            // The sending host's result for the recipient, a reply's or its own finding.
            ("greylisting", "temporary failure: 451", Some(Temporary)),
            ("greylisting", "accepted: 250", None),
            ("greylisting", " retry at ", Some(Temporary)),
            (
                "message-too-big",
                "permanent failure: 552 5.3.4",
                Some(Permanent),
            ),
            ("primary-mx-down", "connection refused", Some(Temporary)),
            (
                "primary-mx-down",
                "skips mx1.receiver.test",
                Some(Temporary),
            ),
            ("primary-mx-down", "MX for receiver.test: MX records", None),
            // DNS answers that are not answers, and resolutions that found no host.
            ("unknown-domain", ": NXDOMAIN", Some(Permanent)),
            ("unknown-domain", "not found (5.1.2)", Some(Permanent)),
            ("null-mx", "null MX (5.1.10)", Some(Permanent)),
            ("dns-servfail-then-success", ": SERVFAIL", Some(Temporary)),
            (
                "dns-servfail-then-success",
                "will retry (4.4.3)",
                Some(Temporary),
            ),
            ("dns-servfail-then-success", ": NOERROR", None),
            ("server-down-for-good", " gave up on ", Some(Permanent)),
            ("over-quota-at-delivery", "MDA refused ", Some(Permanent)),
        ] {
            let found = kinds(name)
                .into_iter()
                .find(|(lines, _)| lines.contains(text))
                .unwrap_or_else(|| panic!("{name}: a step with {text}"))
                .1;
            assert_eq!(found, expected, "{name}: {text}");
        }
    }

    /// A name with spaces (a quoted local part, a scripted client's) is each step's actor
    /// whole, the name every one of its lines gives after the time.
    #[test]
    fn each_step_names_its_actor_whole_even_with_spaces() {
        let (_, text) = library::file("basic-delivery").expect("a built-in scenario");
        let mut world: serde_json::Value = serde_json::from_str(text).expect("JSON");
        world["messages"][0]["from"] = serde_json::json!(r#""al ice"@sender.test"#);
        world["raw_sessions"] = serde_json::json!([{"client": "Mallory the attacker",
            "address": "203.0.113.66", "server": "mx.receiver.test", "bytes": "QUIT\r\n"}]);
        let scenario = crate::sim::Scenario::from_json(&world.to_string()).expect("valid");
        let trace = run(&scenario, scenario.seed).trace;
        let steps = steps(&trace);
        let actors: std::collections::BTreeSet<&str> =
            steps.iter().map(|step| &*step.actor).collect();
        for actor in [
            r#"ua:"al ice"@sender.test"#,
            "Mallory the attacker",
            "mx.receiver.test",
        ] {
            assert!(actors.contains(actor), "{actor}: {actors:?}");
        }
        for step in &steps {
            for line in &step.lines(&trace) {
                let after_time = line.split_once("  ").expect("a time").1;
                assert!(
                    after_time.starts_with(&*step.actor),
                    "{line} / {}",
                    step.actor
                );
            }
        }
    }

    #[test]
    fn a_failed_answer_about_an_mx_host_only_rules_it_out_and_is_no_failure() {
        // A first MX whose name does not exist: the mail goes to the second.
        let (_, text) = library::file("basic-delivery").expect("a built-in scenario");
        let mut world: serde_json::Value = serde_json::from_str(text).expect("JSON");
        world["dns"]["zones"][1]["records"]
            .as_array_mut()
            .expect("records")
            .push(serde_json::json!({"name": "receiver.test",
                "data": {"MX": {"preference": 5, "exchange": "ghost.receiver.test"}}}));
        let scenario = crate::sim::Scenario::from_json(&world.to_string()).expect("valid");
        let trace = run(&scenario, scenario.seed).trace;
        let steps = steps(&trace);
        let first_line = |step: &Step| step.lines(&trace).remove(0);
        let ghost_query = steps
            .iter()
            .position(|step| first_line(step).contains("ghost.receiver.test. IN A"))
            .expect("the ghost's address is asked");
        let answer = first_line(&steps[ghost_query + 1]);
        assert!(answer.contains(": NXDOMAIN"), "{answer}");
        assert_eq!(steps[ghost_query + 1].failure, None);
        assert!(steps
            .iter()
            .all(|step| step.failure.is_none() || !first_line(step).contains("DNS answer")));
    }

    #[test]
    fn an_ehlo_reply_is_explained_keyword_by_keyword_from_its_own_lines() {
        let ehlo_whys = |name: &str| {
            let scenario = library::find(name).expect("a built-in scenario");
            let trace = run(&scenario, scenario.seed).trace;
            steps(&trace)
                .into_iter()
                .flat_map(|step| step.explained(&trace))
                .filter(|explanation| explanation.why.starts_with(EHLO_WHY))
                .map(|explanation| {
                    assert_eq!(
                        &*explanation.why, EHLO_WHY,
                        "the keywords are points of their own"
                    );
                    explanation.points.join(" ")
                })
                .collect::<Vec<_>>()
        };
        let basic = ehlo_whys("basic-delivery");
        assert!(!basic.is_empty());
        // The submission server, which offers AUTH, and the receiving one, which does not.
        assert!(basic
            .iter()
            .any(|why| why.contains("AUTH PLAIN LOGIN: the client may log in")));
        for why in &basic {
            for said in [
                "PIPELINING: the client may send several commands",
                "SIZE 10485760: the largest message it takes",
                "8BITMIME: the message body may hold octets above 127",
                "ENHANCEDSTATUSCODES: every later 2xx, 4xx or 5xx reply (but those to EHLO",
            ] {
                assert!(why.contains(said), "{said}: {why}");
            }
            assert!(!why.contains("No PIPELINING"), "{why}");
        }
        // What a server does not offer is said too: the lesson of these scenarios.
        let too_big = ehlo_whys("message-too-big");
        assert!(too_big
            .iter()
            .any(|why| why.contains("SIZE 20000: the largest message")));
        let seven_bit = ehlo_whys("8bit-without-8bitmime");
        assert!(seven_bit
            .iter()
            .any(|why| why.contains("No 8BITMIME: the message must be 7-bit")));
        // Only the EHLO reply's own lines are its keywords, when other replies travel with it
        // (the smuggler's pipelined MAIL and RCPT): every built-in server offers only
        // extensions the explanation covers.
        for scenario in library::builtin().into_iter().map(|s| s.expect("valid")) {
            for why in ehlo_whys(&scenario.name) {
                assert!(!why.contains("does not cover"), "{}: {why}", scenario.name);
            }
        }
        let pipelining = ehlo_whys("pipelining");
        assert!(pipelining
            .iter()
            .any(|why| why.contains("No PIPELINING: the client waits")));
    }

    #[test]
    fn every_reply_explanation_lands_on_the_step_that_carries_it() {
        let scenario = library::find("unknown-user").expect("a built-in scenario");
        let result = run(&scenario, scenario.seed);
        let explained = result
            .trace
            .events
            .iter()
            .filter(|e| matches!(e.event, Event::ReplyExplained { .. }))
            .count();
        let steps = steps(&result.trace);
        let attached: usize = steps.iter().map(|s| s.explanations.len()).sum();
        assert_eq!(attached, explained);
        // The 550 for the unknown user is explained on the step that shows it.
        let refusal = steps
            .iter()
            .find(|s| {
                s.lines(&result.trace)
                    .iter()
                    .any(|l| l.contains("S: 550 5.1.1"))
            })
            .expect("the refusal is shown");
        assert!(refusal
            .explanations
            .iter()
            .any(|e| e.code == 550 && e.heading == "550 5.1.1"));
        // Steps are in trace order, and the text is the same as the whole trace's.
        assert!(steps.windows(2).all(|w| w[0].event < w[1].event));
        let joined: String = steps
            .iter()
            .flat_map(|s| s.lines(&result.trace))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(joined, result.trace.to_text());
    }

    #[test]
    fn each_step_writes_the_lines_of_the_whole_text_trace_on_its_own() {
        // A step writes its lines only when shown, out of order, with no renderer that saw
        // the connection open: they must be the lines the text trace has, in every built-in
        // and in a raw session whose client's name holds spaces.
        let (_, text) = library::file("basic-delivery").expect("a built-in scenario");
        let mut world: serde_json::Value = serde_json::from_str(text).expect("JSON");
        world["raw_sessions"] = serde_json::json!([{"client": "Mallory the attacker",
            "address": "203.0.113.66", "server": "mx.receiver.test",
            "bytes": "EHLO x\r\nMAIL FROM:<m@x.test>\r\nQUIT\r\n"}]);
        let raw = crate::sim::Scenario::from_json(&world.to_string()).expect("valid");
        // And a run of more than ten days, whose times are padded to one width.
        world["raw_sessions"] = serde_json::json!([]);
        world["fetches"][0]["at_s"] = serde_json::json!(900_000);
        world["run_until_s"] = serde_json::json!(1_000_000);
        let long = crate::sim::Scenario::from_json(&world.to_string()).expect("valid");
        let scenarios = library::builtin().into_iter().map(|s| s.expect("valid"));
        for scenario in scenarios.chain([raw, long.clone()]) {
            let trace = run(&scenario, scenario.seed).trace;
            let steps = steps(&trace);
            let mut joined = String::new();
            // Backwards, as a student stepping back from the end draws them.
            for step in steps.iter().rev() {
                let lines = step.lines(&trace);
                assert_eq!(lines.len(), step.line_count, "{}: {lines:?}", scenario.name);
                let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
                joined.insert_str(0, &text);
            }
            assert_eq!(joined, trace.to_text(), "{}", scenario.name);
        }
        let long_text = run(&long, long.seed).trace.to_text();
        assert!(
            long_text.starts_with(" 0+00:00:00.000  sim "),
            "{long_text}"
        );
    }

    #[test]
    fn every_step_of_every_builtin_scenario_is_explained() {
        for scenario in library::builtin().into_iter().map(|s| s.expect("valid")) {
            let trace = run(&scenario, scenario.seed).trace;
            let steps = steps(&trace);
            let unexplained: Vec<String> = steps
                .iter()
                .filter(|s| s.note.is_none() && s.explanations.is_empty())
                .map(|s| s.lines(&trace).remove(0))
                .collect();
            assert!(
                unexplained.is_empty(),
                "{}: {unexplained:#?}",
                scenario.name
            );
        }
    }

    /// A server's step of `lines` (wire text) carrying replies with these codes, and its
    /// lines as the text trace writes them.
    fn server_step(lines: &[&str], codes: &[u16]) -> (Step, Vec<String>) {
        let lines: Vec<String> = lines
            .iter()
            .map(|line| format!("0+00:00:00.000  mx.b.test  #1 S: {line}"))
            .collect();
        let step = Step {
            event: 0,
            time_ms: 0,
            line_count: lines.len(),
            actor: Name::from("mx.b.test"),
            conn: Some(1),
            direction: Some(Direction::ServerToClient),
            explanations: codes
                .iter()
                .map(|&code| StepExplanation {
                    code,
                    enhanced: None,
                    heading: code.to_string(),
                    meaning: "".into(),
                    why: "".into(),
                    points: Vec::new(),
                    rfc: "".into(),
                })
                .collect(),
            note: None,
            failure: None,
        };
        (step, lines)
    }

    #[test]
    fn refusals_are_the_replies_their_explanations_say() {
        use Refusal::{Permanent, Temporary};
        // Pipelined replies, one of them on two lines: each reply takes its explanation.
        let (step, lines) = server_step(
            &[
                "250 OK",
                "550-no such user",
                "550 really",
                "452 too many",
                "354 go",
            ],
            &[250, 550, 452, 354],
        );
        assert_eq!(
            refusal_lines(&step, &lines),
            [
                None,
                Some(Permanent),
                Some(Permanent),
                Some(Temporary),
                None
            ]
        );
        // A POP3 message holds lines that read like replies; its +OK refuses nothing.
        let (retrieved, lines) = server_step(
            &["+OK 120 octets", "550 quoted", "-ERR quoted", "."],
            &[200],
        );
        assert_eq!(refusal_lines(&retrieved, &lines), [None; 4]);
        let (refused, lines) = server_step(&["-ERR no such message"], &[500]);
        assert_eq!(refusal_lines(&refused, &lines), [Some(Permanent)]);
        // A client's lines are never replies, whatever they read.
        let (mut sent, lines) = server_step(&["550 quoted"], &[550]);
        sent.direction = Some(Direction::ClientToServer);
        assert_eq!(refusal_lines(&sent, &lines), [None]);
    }

    #[test]
    fn a_step_repeats_its_first_lines_and_its_first_refusal() {
        use Refusal::{Permanent, Temporary};
        let refusals = [
            None,
            None,
            None,
            None,
            Some(Permanent),
            Some(Permanent),
            None,
            Some(Temporary),
        ];
        assert_eq!(
            lines_repeated(&refusals, 3),
            [true, true, true, false, true, true, false, false]
        );
        // A refusal among the first lines adds nothing; a long one is cut like them.
        assert_eq!(
            lines_repeated(&[Some(Permanent), None, None, None], 3),
            [true, true, true, false]
        );
        assert_eq!(lines_repeated(&[None, Some(Permanent)], 1), [true, true]);
        assert_eq!(
            lines_repeated(
                &[None, Some(Permanent), Some(Permanent), Some(Permanent)],
                1
            ),
            [true, true, false, false]
        );
        assert!(lines_repeated(&[], 3).is_empty());
    }

    #[test]
    fn the_smuggling_attempts_refusal_is_found_among_its_thirteen_lines() {
        let scenario = library::find("smtp-smuggling").expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        let steps = steps(&trace);
        let step = steps
            .iter()
            .find(|s| s.explanations.iter().any(|e| e.code == 550))
            .expect("the 550");
        let lines = step.lines(&trace);
        let marked: Vec<&str> = refusal_lines(step, &lines)
            .iter()
            .zip(&lines)
            .filter(|(refusal, _)| refusal.is_some())
            .map(|(_, line)| line.as_str())
            .collect();
        assert_eq!(marked.len(), 1, "{marked:?}");
        assert!(marked[0].ends_with("S: 550 5.5.2 Message refused: bare <LF> in message data"));
    }

    #[test]
    fn every_refusal_of_every_builtin_scenario_marks_its_own_lines() {
        for scenario in library::builtin().into_iter().map(|s| s.expect("valid")) {
            let trace = run(&scenario, scenario.seed).trace;
            for step in steps(&trace) {
                let lines = step.lines(&trace);
                let marked: Vec<&str> = refusal_lines(&step, &lines)
                    .iter()
                    .zip(&lines)
                    .filter(|(refusal, _)| refusal.is_some())
                    .filter_map(|(_, line)| line.split_once(" S: ").map(|(_, text)| text))
                    .collect();
                for explanation in step.explanations.iter().filter(|e| e.code >= 400) {
                    let code = match explanation.heading.as_str() {
                        "-ERR" => "-ERR".to_string(),
                        _ => explanation.code.to_string(),
                    };
                    assert!(
                        marked.iter().any(|text| text.starts_with(&code)),
                        "{}: {code} in {:#?}",
                        scenario.name,
                        lines
                    );
                }
                assert!(
                    marked.iter().all(|text| text.starts_with('4')
                        || text.starts_with('5')
                        || text.starts_with("-ERR")),
                    "{}: {marked:#?}",
                    scenario.name
                );
            }
        }
    }

    #[test]
    fn pipelined_replies_name_the_commands_they_answer() {
        let scenario = library::find("unknown-user").expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        let steps = steps(&trace);
        let refusal = steps
            .iter()
            .find(|s| s.explanations.iter().any(|e| e.code == 550))
            .expect("the 550");
        let commands = refusal.commands_answered(&trace).expect("told");
        let answered: Vec<(u16, &str)> = refusal
            .explanations
            .iter()
            .map(|e| e.code)
            .zip(commands.iter().map(String::as_str))
            .collect();
        assert_eq!(
            answered,
            [
                (250, "MAIL FROM:<alice@sender.test> SIZE=419"),
                (250, "RCPT TO:<bob@receiver.test>"),
                (550, "RCPT TO:<nobody@receiver.test>"),
            ]
        );
        // One reply: the step before it is its command. The greeting answers none, nor does
        // the reply to a message, whose lines are no commands.
        for step in &steps {
            let lines = step.lines(&trace);
            let first = lines.first().map(String::as_str).unwrap_or_default();
            if step.explanations.len() < 2
                || first.contains("S: 220 ")
                || first.contains("S: 250 2.0.0 ")
            {
                assert_eq!(step.commands_answered(&trace), None, "{lines:?}");
            }
        }
    }

    #[test]
    fn replies_of_a_server_that_closes_or_reads_a_message_name_no_commands() {
        use crate::sim::trace::sent_on_first_connection as sent;
        let (client, server) = (Direction::ClientToServer, Direction::ServerToClient);
        let told = |commands: &str, replies: &[&str], codes: &[u16]| {
            let mut events = crate::sim::trace::first_connection_greeted();
            events.extend([sent(client, commands), sent(server, &replies.concat())]);
            let trace = Trace {
                events,
                ..Trace::default()
            };
            let (mut step, _) = server_step(replies, codes);
            step.event = 5;
            step.commands_answered(&trace)
        };
        let pair = "MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\n";
        assert_eq!(
            told(pair, &["250 ok\r\n", "550 no\r\n"], &[250, 550]).expect("told"),
            ["MAIL FROM:<a@a.test>", "RCPT TO:<b@b.test>"]
        );
        // A server that closes may have read no more than one of them (its 421 after too
        // many errors answers none).
        assert_eq!(
            told(pair, &["250 ok\r\n", "421 bye\r\n"], &[250, 421]),
            None
        );
        // The line after a DATA answered with 354 is the message.
        assert_eq!(
            told(
                "DATA\r\nNOOP\r\n",
                &["354 go\r\n", "250 ok\r\n"],
                &[354, 250]
            ),
            None
        );
        // A chunk's reply names its chunk, but a 421 may answer nothing sent.
        let chunk_told = |reply: &str, code: u16| {
            let mut events = crate::sim::trace::first_connection_greeted();
            events.extend([
                sent(client, pair),
                sent(server, "250 ok\r\n250 ok\r\n"),
                sent(client, "BDAT 1 LAST\r\nx"),
                sent(server, reply),
            ]);
            let trace = Trace {
                events,
                ..Trace::default()
            };
            let (mut step, _) = server_step(&[reply], &[code]);
            step.event = 7;
            step.chunk_answered(&trace)
        };
        assert_eq!(
            chunk_told("250 ok\r\n", 250),
            Some(("BDAT 1 LAST".to_string(), 1))
        );
        assert_eq!(chunk_told("421 bye\r\n", 421), None);
    }

    #[test]
    fn replies_to_pipelined_chunks_name_their_chunks_in_order() {
        let scenario = library::find("chunking").expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        let told: Vec<(String, String, usize)> = steps(&trace)
            .iter()
            .filter_map(|step| {
                let (command, number) = step.chunk_answered(&trace)?;
                let reply = step
                    .lines(&trace)
                    .first()?
                    .split_once(" S: ")?
                    .1
                    .to_string();
                Some((reply, command, number))
            })
            .collect();
        let received = "250 2.0.0 200 octets received";
        let told: Vec<(&str, &str, usize)> = told
            .iter()
            .map(|(reply, command, number)| (reply.as_str(), command.as_str(), *number))
            .collect();
        // The receiving server lists PIPELINING: the three chunks go before any reply.
        assert_eq!(
            told,
            [
                (received, "BDAT 200", 1),
                (received, "BDAT 200", 2),
                ("250 2.0.0 OK: queued as B00001", "BDAT 134 LAST", 3),
            ]
        );
        // Every built-in: a reply named for a chunk answers a BDAT.
        for scenario in library::builtin().into_iter().map(|s| s.expect("valid")) {
            let trace = run(&scenario, scenario.seed).trace;
            for step in steps(&trace) {
                if let Some((command, _)) = step.chunk_answered(&trace) {
                    assert!(command.starts_with("BDAT "), "{}: {command}", scenario.name);
                }
            }
        }
    }

    #[test]
    fn every_command_a_builtin_scenarios_pipelined_replies_name_fits_its_reply() {
        let mut told = 0;
        for scenario in library::builtin().into_iter().map(|s| s.expect("valid")) {
            let trace = run(&scenario, scenario.seed).trace;
            for step in steps(&trace) {
                let Some(commands) = step.commands_answered(&trace) else {
                    continue;
                };
                told += 1;
                assert_eq!(commands.len(), step.explanations.len());
                for (explanation, command) in step.explanations.iter().zip(&commands) {
                    let verb = command
                        .split([' ', ':'])
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let fits = match explanation.code {
                        354 => verb == "DATA",
                        // A greeting or a message's end answer no command of a batch.
                        220 | 221 => verb == "QUIT" && explanation.code == 221,
                        250..=252 => ["MAIL", "RCPT", "RSET", "NOOP", "EHLO", "HELO"]
                            .contains(&verb.as_str()),
                        334 | 235 => verb == "AUTH" || !command.contains(' '),
                        _ => true,
                    };
                    assert!(fits, "{}: {} to {command}", scenario.name, explanation.code);
                }
                assert!(
                    commands.iter().any(|c| c.starts_with("MAIL FROM:")
                        || c.starts_with("RCPT TO:")
                        || c.starts_with("EHLO")
                        || c.starts_with("AUTH")),
                    "{}: {commands:?}",
                    scenario.name
                );
            }
        }
        assert!(told >= 50, "{told} steps of pipelined replies told");
    }

    #[test]
    fn a_mail_sent_alone_is_explained_by_its_servers_ehlo_reply() {
        let scenario = library::find("pipelining").expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        let steps = steps(&trace);
        let mails: Vec<&Step> = steps
            .iter()
            .filter(|s| s.lines(&trace)[0].contains(" C: MAIL FROM:"))
            .collect();
        let alone: Vec<&str> = mails
            .iter()
            .filter(|s| s.line_count == 1)
            .map(|s| s.note.as_ref().expect("a note").text.as_ref())
            .collect();
        assert!(!alone.is_empty() && mails.len() > alone.len(), "{mails:#?}");
        assert!(
            alone
                .iter()
                .all(|text| text.contains("did not offer PIPELINING")),
            "{alone:#?}"
        );
    }

    #[test]
    fn wire_lines_show_every_line_ending_as_it_was_sent() {
        let (lines, left_out) = wire_lines(b"Hello\n.\r\nMAIL FROM:<a@b>\r\n\tx\x07\ry", 10);
        let shown: Vec<(&str, LineEnding)> =
            lines.iter().map(|l| (l.text.as_str(), l.ending)).collect();
        assert_eq!(
            shown,
            [
                ("Hello", LineEnding::BareLf),
                (".", LineEnding::CrLf),
                ("MAIL FROM:<a@b>", LineEnding::CrLf),
                ("\tx\\x07", LineEnding::BareCr),
                ("y", LineEnding::Unterminated),
            ]
        );
        assert_eq!(left_out, 0);
        let (lines, left_out) = wire_lines(b"a\r\nb\r\nc\r\n", 2);
        assert_eq!((lines.len(), left_out), (2, 1));
        assert_eq!(wire_lines(b"", 5), (Vec::new(), 0));
        // The text `\x07` a client sent is not the BEL character; other backslashes stay.
        let (lines, _) = wire_lines(b"a\\x07\x07\\\x07 \"q\\\"\" \\\\\r\n", 1);
        assert_eq!(lines[0].text, "a\\\\x07\\x07\\\\\\x07 \"q\\\"\" \\\\\\");
        // RFC 6533's `\x{F6}` is no escape, and stays as sent.
        let (lines, _) = wire_lines(b"ORCPT=utf-8;j\\x{F6}rg@b.test\r\n", 1);
        assert_eq!(lines[0].text, "ORCPT=utf-8;j\\x{F6}rg@b.test");
    }

    #[test]
    fn bare_line_endings_are_the_rows_that_end_no_line() {
        let bytes = b"Hello\n.\r\nMAIL FROM:<a@b>\r\n\tx\x07\ry\r";
        let (rows, _) = wire_lines(bytes, 10);
        let bare = rows
            .iter()
            .filter(|row| matches!(row.ending, LineEnding::BareLf | LineEnding::BareCr))
            .count();
        assert_eq!(bare_line_endings(bytes), bare);
        assert_eq!(bare_line_endings(bytes), 3);
        assert_eq!(bare_line_endings(b"a\r\n\r\n"), 0);
        assert_eq!(bare_line_endings(b"\n\r"), 2);
    }

    #[test]
    fn pop3_replies_are_headed_as_pop3_writes_them() {
        let scenario = library::find("basic-delivery").expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        let pop3_conns: Vec<ConnId> = trace
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::ConnectionAttempted(a) if a.protocol == Protocol::Pop3 => Some(a.conn),
                _ => None,
            })
            .collect();
        let steps = steps(&trace);
        let pop3: Vec<&StepExplanation> = steps
            .iter()
            .filter(|s| s.conn.is_some_and(|c| pop3_conns.contains(&c)))
            .flat_map(|s| s.explanations.iter())
            .collect();
        assert!(!pop3.is_empty());
        assert!(pop3.iter().all(|e| e.heading == "+OK"), "{pop3:?}");
    }

    #[test]
    fn a_pop3_server_closing_an_idle_session_says_why() {
        // The server's close of the raw session's connection, as its step, and its text.
        let server_close = |scenario: &crate::sim::Scenario| -> (Step, String) {
            let trace = run(scenario, scenario.seed).trace;
            let raw_conn = trace
                .events
                .iter()
                .find_map(|e| match &e.event {
                    Event::ConnectionAttempted(a) if a.client.as_ref() == "bob-mail-client" => {
                        Some(a.conn)
                    }
                    _ => None,
                })
                .expect("the raw session connects");
            let closes: Vec<Step> = steps(&trace)
                .into_iter()
                .filter(|s| s.conn == Some(raw_conn) && s.actor.as_ref() == "mx.receiver.test")
                .filter(|s| s.lines(&trace).join(" ").contains("closed the connection"))
                .collect();
            assert_eq!(closes.len(), 1, "{closes:?}");
            let close = closes.into_iter().next().unwrap();
            let text = close.lines(&trace).join(" ");
            (close, text)
        };
        let note_of = |step: &Step| step.note.as_ref().expect("a note").text.to_string();
        // After QUIT: the usual note.
        let mut scenario = library::find("pop3-commands").expect("a built-in scenario");
        assert_eq!(scenario.raw_sessions[0].client, "bob-mail-client");
        let (closed, text) = server_close(&scenario);
        assert!(
            note_of(&closed).contains("normally after QUIT"),
            "{closed:?}"
        );
        assert!(!text.contains("idle timeout"), "{text}");
        // The same commands but the last few, and no QUIT, or a QUIT without its CRLF, which
        // the server never reads as a command: its timer closes the session.
        let full = scenario.raw_sessions[0].bytes.clone();
        let head = full.split("TOP").next().unwrap_or_default().to_string();
        for bytes in [head.clone(), format!("{head}QUIT")] {
            scenario.raw_sessions[0].bytes = bytes;
            let (closed, lines) = server_close(&scenario);
            let text = note_of(&closed);
            assert!(text.contains("inactivity autologout timer"), "{text}");
            assert!(
                lines.contains("no command came before its idle timeout"),
                "{lines}"
            );
        }
    }
}
