//! The trace: every event of a simulation run, in order, with its simulated time and actors.
//! The UI and the command line only read it; nothing here runs the world.

use crate::dns::world::Outcome as DnsOutcome;
use crate::escape::{escaped, push_escaped_line, visible};
use crate::pop3::client::Pop3ClientState;
use crate::pop3::server::Pop3State;
use crate::sim::scenario::StallPoint;
use crate::smtp::client::ClientStateKind;
use crate::smtp::reply::EnhancedStatus;
use crate::smtp::server::ServerStateKind;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt::{self, Write as _};
use std::rc::Rc;

/// A name that recurs in many events (a host, a state): shared or static, not copied.
pub type Name = Rc<str>;

pub type ConnId = u32;
pub type EntryId = u32;

/// A session state, as the engine that was in it names it. Kept as the engines' own small
/// state values, not as text, because a large run records hundreds of thousands of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateName {
    SmtpClient(ClientStateKind),
    SmtpServer(ServerStateKind),
    Pop3Client(Pop3ClientState),
    Pop3Server(Pop3State),
}

impl StateName {
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::SmtpClient(state) => state.name(),
            StateName::SmtpServer(state) => state.name(),
            StateName::Pop3Client(state) => state.name(),
            StateName::Pop3Server(state) => state.name(),
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StateName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Bytes as they crossed a link. Serialised as text when they are UTF-8 (nearly always),
/// else as the octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireBytes(Box<[u8]>);

impl WireBytes {
    pub fn from_bytes(bytes: &[u8]) -> WireBytes {
        WireBytes(bytes.into())
    }

    /// Takes the bytes over rather than copying them.
    pub fn from_vec(bytes: Vec<u8>) -> WireBytes {
        WireBytes(bytes.into_boxed_slice())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for WireBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_octets(&self.0, serializer)
    }
}

/// Octets as text when they are UTF-8 (nearly always), else as the octets.
fn serialize_octets<S: Serializer>(octets: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(octets) {
        Ok(text) => serializer.serialize_str(text),
        Err(_) => octets.serialize(serializer),
    }
}

/// A message as the MDA stored it in a mailbox, shared with the mailbox rather than copied.
/// Serialised as [`WireBytes`] are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBytes(Rc<Vec<u8>>);

impl StoredBytes {
    pub fn shared(bytes: &Rc<Vec<u8>>) -> StoredBytes {
        StoredBytes(Rc::clone(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for StoredBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_octets(&self.0, serializer)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Smtp,
    Pop3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// What finally happened to one recipient of one message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fate")]
pub enum Fate {
    /// Stored in a mailbox.
    Delivered { host: String, mailbox: String },
    /// Refused for good; a bounce went (or, for a bounce, could not go) to the sender.
    /// `own_finding`: no server sent the status's reply; the bouncing host found it itself
    /// (for example a message over a server's SIZE, a domain that does not exist, a mailbox
    /// over its quota at delivery) or wrote it when the retry time ran out.
    Bounced {
        host: String,
        status: String,
        #[serde(default, skip_serializing_if = "is_false")]
        own_finding: bool,
        /// The sender asked for no failure notice (NOTIFY=NEVER, or a NOTIFY without
        /// FAILURE, RFC 3461 4.1), so none went.
        #[serde(default, skip_serializing_if = "is_false")]
        notice_declined: bool,
    },
    /// The submission server refused it; the user agent showed the error at once.
    RefusedAtSubmission { status: String },
    /// Still in a queue when the simulation stopped.
    Queued { host: String },
    /// A bounce that could not be delivered: never bounced again (RFC 5321 4.5.5).
    Discarded {
        host: String,
        status: String,
        #[serde(default, skip_serializing_if = "is_false")]
        own_finding: bool,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Fate {
    pub fn word(&self) -> &'static str {
        match self {
            Fate::Delivered { .. } => "delivered",
            Fate::Bounced {
                notice_declined: true,
                ..
            } => "failed, no notice asked",
            Fate::Bounced { .. } => "bounced",
            Fate::RefusedAtSubmission { .. } => "refused at submission",
            Fate::Queued { .. } => "still queued",
            Fate::Discarded { .. } => "discarded",
        }
    }
}

/// What a reply means, why this server sent it and where the rule is: one shared copy for
/// every reply that says the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ReplyNote {
    pub meaning: Name,
    pub why: Name,
    pub rfc: Name,
}

fn enhanced_as_text<S: Serializer>(
    enhanced: &Option<EnhancedStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match enhanced {
        Some(status) => serializer.collect_str(status),
        None => serializer.serialize_none(),
    }
}

// The events. Frequent ones are small and inline; the rest keep their fields in a box, so
// that every event in a long trace costs as little as the most frequent ones.

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageComposed {
    pub message: String,
    pub ua: Name,
    pub reverse_path: String,
    pub forward_paths: Vec<String>,
    pub octets: usize,
    /// The scenario gave the message as bytes (`raw`): the user agent wrote none of it.
    pub raw: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionAttempted {
    pub conn: ConnId,
    pub client: Name,
    pub server: Name,
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsQuery {
    pub host: Name,
    pub id: u16,
    pub question: String,
    pub wire: Vec<u8>,
}

fn serialize_dns_outcome<S: Serializer>(outcome: &DnsOutcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(outcome.as_str())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsResponse {
    pub host: Name,
    pub id: u16,
    /// Written as the trace's text writes it (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `timed out`).
    #[serde(serialize_with = "serialize_dns_outcome")]
    pub outcome: DnsOutcome,
    pub records: Vec<String>,
    /// The authority section: the zone's SOA on a negative answer, whose TTL and minimum say
    /// how long the denial may be cached (RFC 2308 3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authority: Vec<String>,
    pub wire: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxResolved {
    pub host: Name,
    pub domain: String,
    pub result: String,
    pub targets: Vec<String>,
    /// Taken from the host's cache of earlier answers, without asking DNS.
    pub from_cache: bool,
    /// What the resolver noticed on the way: an alias followed, a host skipped, its own
    /// level dropped (RFC 5321 5.1, RFC 2181 10.3, RFC 7505).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why no host was found, when none was: its status, whose class says whether the
    /// sending host tries again (4) or bounces (5) (RFC 3463 2).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "enhanced_as_text"
    )]
    pub failure: Option<EnhancedStatus>,
}

/// A server took responsibility for a message (its 250 after the data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageAccepted {
    pub host: Name,
    pub conn: ConnId,
    pub message: String,
    pub reverse_path: String,
    pub forward_paths: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub host: Name,
    pub entry: EntryId,
    pub message: String,
    pub domain: String,
    pub recipients: Vec<String>,
}

/// Ends an `MxResolved::result` that was not asked of DNS: a configured route, or an address
/// literal.
pub const NO_DNS_LOOKUP: &str = "no DNS lookup";
/// In an MX result that failed for now: the host tries again (not past its give-up time).
pub const WILL_RETRY: &str = "will retry";

/// Ends the conservation check's problem for a run cut at the simulator's limit.
pub const RUN_CUT: &str = "was cut there";

/// Whether the conservation check's `problems` say the run was cut at the simulator's limit
/// (nothing lost: the run stopped), rather than that a message was lost or duplicated.
pub fn run_was_cut(problems: &[String]) -> bool {
    problems.iter().any(|problem| problem.ends_with(RUN_CUT))
}

/// Begins the name of a user agent, before its mailbox: `ua:alice@example.org`.
pub const USER_AGENT_PREFIX: &str = "ua:";

/// `RecipientResult::result` for a recipient that stays queued for another attempt.
pub const TEMPORARY_FAILURE: &str = "temporary failure";
/// `RecipientResult::result` for a recipient the message is bounced for.
pub const PERMANENT_FAILURE: &str = "permanent failure";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecipientResult {
    pub host: Name,
    pub entry: EntryId,
    pub recipient: String,
    pub result: String,
    pub reply: String,
    /// The sending host decided this itself (a message over the server's SIZE, 8-bit data
    /// for a server without 8BITMIME, a lost connection, ...): `reply` is its finding written
    /// as a reply, and no reply with that code crossed the wire.
    pub own_finding: bool,
}

impl RecipientResult {
    /// The reply as the trace shows it: one the sending host found itself says so, since no
    /// server sent it.
    pub fn reply_with_origin(&self) -> String {
        with_origin(&self.reply, self.own_finding)
    }
}

fn with_origin(reply: &str, own_finding: bool) -> String {
    if own_finding {
        format!("{reply} (this host's own finding)")
    } else {
        reply.to_string()
    }
}

/// A message its user agent would not submit, by its own finding (an address it cannot
/// write, a message over the server's SIZE, 8-bit data for a server without 8BITMIME...): no
/// server refused it, and no bounce will come (the sender's mail program says so at once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubmissionFailed {
    pub ua: Name,
    pub message: String,
    pub recipients: Vec<String>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetryScheduled {
    pub host: Name,
    pub entry: EntryId,
    pub at_ms: u64,
    pub recipients: Vec<String>,
    /// Whether the entry will have been queued for the give-up time by `at_ms`, so that the
    /// attempt then is the last: a temporary failure in it gives up (RFC 5321 4.5.4.1). An
    /// attempt that starts just before that time and fails after it gives up too, unflagged:
    /// how long it takes is known only when it ends.
    pub last_attempt: bool,
    /// What ended the attempt for every recipient at once: its last address could not be
    /// reached (refused, no answer, skipped), the session failed before MAIL (a `421`
    /// greeting), or no address was found; also after an earlier server of the attempt
    /// deferred the recipients, since the later failure is the one they wait after. `None`
    /// when the attempt's last `RecipientResult`s give each recipient's reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_failure: Option<AttemptFailure>,
}

/// The failure an attempt ended with as a whole (see [`RetryScheduled::attempt_failure`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptFailure {
    /// A server's reply, or the sending host's own finding written as one (`451 4.4.1
    /// mx.example [192.0.2.1]: connection refused: ...`), as for `RecipientResult::reply`.
    pub reply: String,
    pub own_finding: bool,
}

impl AttemptFailure {
    /// The reply as the trace shows it, with its origin as for a recipient's.
    pub fn reply_with_origin(&self) -> String {
        with_origin(&self.reply, self.own_finding)
    }
}

/// An address a queue entry's attempt does not try (an MX host's, or one a route or an
/// address literal names): the sending host failed to connect to it a short while ago, and
/// tries it again only once its first retry interval has passed (RFC 5321 4.5.4.1),
/// whichever message is to go there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetSkipped {
    pub host: Name,
    pub entry: EntryId,
    /// The target's name (as DNS, a route or the literal gave it) and the address not tried.
    pub target: Name,
    pub address: String,
    /// When and why the connection to it failed, and when it may be tried again.
    pub failed_at_ms: u64,
    pub until_ms: u64,
    pub reason: String,
}

/// A queue entry's message goes on a session its host already has open, or is opening, to
/// the same server, as one more mail transaction after any already on it (RFC 5321 3.3,
/// 4.1.4), instead of on a new connection, as sending servers such as Postfix reuse them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionJoined {
    pub host: Name,
    pub entry: EntryId,
    pub conn: ConnId,
    pub server: Name,
}

/// A message that asked for delivery reports (DSN) goes to a server that does not offer
/// DSN: its MAIL and RCPT commands on `conn` go without NOTIFY, RET, ENVID and ORCPT (RFC
/// 3461 5.2.2). Recorded after the bytes of the MAIL that leaves them out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DsnWithheld {
    /// The client: a sending host, or a user agent.
    pub client: Name,
    pub conn: ConnId,
    pub message: String,
    pub server: Name,
}

/// An address a sending host connects to, as it names it: `NAME [ADDRESS]`, or an address
/// literal alone, which is its own name.
pub fn target_label(name: &str, address: impl std::fmt::Display) -> String {
    if name.starts_with('[') {
        name.to_string()
    } else {
        format!("{name} [{address}]")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GaveUp {
    pub host: Name,
    pub entry: EntryId,
    pub recipients: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub host: Name,
    pub mailbox: String,
    pub message: String,
    pub uid: String,
    pub octets: usize,
    /// The message as stored: with the `Return-Path:` and `Delivered-To:` fields the MDA
    /// wrote (RFC 5321 4.4), seen here even when a reader later deletes it.
    pub stored: StoredBytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryRefused {
    pub host: Name,
    pub mailbox: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BounceCreated {
    pub host: Name,
    pub about: String,
    pub bounce: String,
    pub to: String,
    pub recipients: Vec<String>,
    pub action: String,
    /// The notice as its host wrote it (RFC 3464): seen here even when it is delivered on
    /// this host, crossing no wire.
    pub bytes: WireBytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BounceDiscarded {
    pub host: Name,
    pub message: String,
    pub recipients: Vec<String>,
}

/// Recipients that failed for good and get no notice: their sender asked for none
/// (NOTIFY=NEVER, or a NOTIFY without FAILURE, RFC 3461 4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoticeDeclined {
    pub host: Name,
    pub message: String,
    pub recipients: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageRetrieved {
    pub conn: ConnId,
    pub mailbox: String,
    pub uid: Option<String>,
    pub octets: usize,
}

/// Listed messages a fetch's user agent chose not to retrieve (too large for it, or beyond
/// the messages it takes per session). They stay in the mailbox for a later fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessagesLeft {
    pub conn: ConnId,
    pub mailbox: String,
    pub count: usize,
    pub reason: String,
}

/// A fetch that never began: the user agent could not set up its POP3 session (a user name or
/// password that USER or PASS cannot carry), so it opened no connection. Nothing was refused
/// by a server, and the mailbox is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchNotStarted {
    /// The user agent, `ua:MAILBOX`.
    pub client: Name,
    pub mailbox: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailboxUpdated {
    pub host: Name,
    pub mailbox: String,
    pub deleted: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub message: String,
    pub recipient: String,
    pub fate: Fate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    Started {
        scenario: Box<str>,
        seed: u64,
    },
    MessageComposed(Box<MessageComposed>),
    SubmissionFailed(Box<SubmissionFailed>),
    ConnectionAttempted(Box<ConnectionAttempted>),
    ConnectionOpened {
        conn: ConnId,
    },
    ConnectionRefused {
        conn: ConnId,
        reason: String,
    },
    ConnectionTimedOut {
        conn: ConnId,
    },
    /// The link broke (a fault), not a close by either side.
    ConnectionDropped {
        conn: ConnId,
        reason: String,
    },
    /// The server hung (a stall fault): it reads on but sends nothing more, from the reply
    /// `at` names on, and the connection ends when its client gives up waiting.
    ServerStalled {
        conn: ConnId,
        at: StallPoint,
        /// At `dot`: the message ended with a last BDAT chunk (RFC 3030 2), not a final dot.
        #[serde(default, skip_serializing_if = "is_false")]
        after_chunks: bool,
    },
    ConnectionClosed {
        conn: ConnId,
        by: Name,
        /// The server ended the session on its inactivity timer, without a reply (a POP3
        /// server, RFC 1939 3).
        #[serde(default, skip_serializing_if = "is_false")]
        idle_timeout: bool,
    },
    /// Bytes sent on a connection, exactly as written.
    Transmitted {
        conn: ConnId,
        direction: Direction,
        bytes: WireBytes,
    },
    /// A server reply with its explanation for the student.
    ReplyExplained {
        conn: ConnId,
        code: u16,
        #[serde(serialize_with = "enhanced_as_text")]
        enhanced: Option<EnhancedStatus>,
        #[serde(flatten)]
        note: Rc<ReplyNote>,
    },
    ClientState {
        conn: ConnId,
        from: StateName,
        to: StateName,
    },
    ServerState {
        conn: ConnId,
        from: StateName,
        to: StateName,
    },
    DnsQuery(Box<DnsQuery>),
    DnsResponse(Box<DnsResponse>),
    MxResolved(Box<MxResolved>),
    MessageAccepted(Box<MessageAccepted>),
    Queued(Box<Queued>),
    AttemptStarted {
        host: Name,
        entry: EntryId,
        attempt: u32,
    },
    RecipientResult(Box<RecipientResult>),
    TargetSkipped(Box<TargetSkipped>),
    SessionJoined(Box<SessionJoined>),
    DsnWithheld(Box<DsnWithheld>),
    RetryScheduled(Box<RetryScheduled>),
    /// Nothing is left to do for a queue entry.
    Dequeued {
        host: Name,
        entry: EntryId,
    },
    GaveUp(Box<GaveUp>),
    Delivered(Box<Delivered>),
    DeliveryRefused(Box<DeliveryRefused>),
    BounceCreated(Box<BounceCreated>),
    BounceDiscarded(Box<BounceDiscarded>),
    NoticeDeclined(Box<NoticeDeclined>),
    MessageRetrieved(Box<MessageRetrieved>),
    MessagesLeft(Box<MessagesLeft>),
    FetchNotStarted(Box<FetchNotStarted>),
    MailboxUpdated(Box<MailboxUpdated>),
    Outcome(Box<Outcome>),
    ConservationChecked {
        ok: bool,
        problems: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceEvent {
    pub time_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub scenario: String,
    pub seed: u64,
    pub start_unix_s: i64,
    pub events: Vec<TraceEvent>,
}

impl Event {
    /// About how many octets the event holds outside itself (its box, texts, lists, bytes),
    /// so that a run can bound its trace's memory. Shared names are not counted: many events
    /// hold the same one.
    pub fn heap_octets(&self) -> usize {
        use std::mem::size_of;
        fn texts(list: &[String]) -> usize {
            list.iter()
                .map(|text| size_of::<String>() + text.len())
                .sum()
        }
        match self {
            Event::Started { scenario, .. } => scenario.len(),
            Event::MessageComposed(e) => {
                size_of::<MessageComposed>()
                    + e.message.len()
                    + e.reverse_path.len()
                    + texts(&e.forward_paths)
            }
            Event::SubmissionFailed(e) => {
                size_of::<SubmissionFailed>()
                    + e.message.len()
                    + texts(&e.recipients)
                    + e.reason.len()
            }
            Event::ConnectionAttempted(e) => size_of::<ConnectionAttempted>() + e.address.len(),
            Event::ConnectionRefused { reason, .. } | Event::ConnectionDropped { reason, .. } => {
                reason.len()
            }
            Event::ConnectionOpened { .. }
            | Event::ServerStalled { .. }
            | Event::ConnectionTimedOut { .. }
            | Event::ConnectionClosed { .. }
            | Event::ReplyExplained { .. }
            | Event::ClientState { .. }
            | Event::ServerState { .. }
            | Event::AttemptStarted { .. }
            | Event::Dequeued { .. } => 0,
            Event::Transmitted { bytes, .. } => bytes.as_bytes().len(),
            Event::DnsQuery(e) => size_of::<DnsQuery>() + e.question.len() + e.wire.len(),
            Event::DnsResponse(e) => {
                size_of::<DnsResponse>()
                    + texts(&e.records)
                    + texts(&e.authority)
                    + e.wire.as_ref().map_or(0, Vec::len)
            }
            Event::MxResolved(e) => {
                size_of::<MxResolved>()
                    + e.domain.len()
                    + e.result.len()
                    + texts(&e.targets)
                    + texts(&e.notes)
            }
            Event::MessageAccepted(e) => {
                size_of::<MessageAccepted>()
                    + e.message.len()
                    + e.reverse_path.len()
                    + texts(&e.forward_paths)
            }
            Event::Queued(e) => {
                size_of::<Queued>() + e.message.len() + e.domain.len() + texts(&e.recipients)
            }
            Event::RecipientResult(e) => {
                size_of::<RecipientResult>() + e.recipient.len() + e.result.len() + e.reply.len()
            }
            Event::RetryScheduled(e) => {
                size_of::<RetryScheduled>()
                    + texts(&e.recipients)
                    + e.attempt_failure.as_ref().map_or(0, |failure| {
                        size_of::<AttemptFailure>() + failure.reply.len()
                    })
            }
            Event::GaveUp(e) => size_of::<GaveUp>() + texts(&e.recipients),
            Event::TargetSkipped(e) => {
                size_of::<TargetSkipped>() + e.address.len() + e.reason.len()
            }
            Event::SessionJoined(_) => size_of::<SessionJoined>(),
            Event::DsnWithheld(e) => size_of::<DsnWithheld>() + e.message.len(),
            // The stored message is shared with the mailbox, and counted once, as the MDA's
            // copy, by the run that stores it.
            Event::Delivered(e) => {
                size_of::<Delivered>() + e.mailbox.len() + e.message.len() + e.uid.len()
            }
            Event::DeliveryRefused(e) => {
                size_of::<DeliveryRefused>() + e.mailbox.len() + e.reason.len()
            }
            Event::BounceCreated(e) => {
                size_of::<BounceCreated>()
                    + e.about.len()
                    + e.bounce.len()
                    + e.to.len()
                    + texts(&e.recipients)
                    + e.action.len()
                    + e.bytes.as_bytes().len()
            }
            Event::NoticeDeclined(e) => {
                size_of::<NoticeDeclined>() + e.message.len() + texts(&e.recipients)
            }
            Event::BounceDiscarded(e) => {
                size_of::<BounceDiscarded>() + e.message.len() + texts(&e.recipients)
            }
            Event::MessageRetrieved(e) => {
                size_of::<MessageRetrieved>()
                    + e.mailbox.len()
                    + e.uid.as_ref().map_or(0, String::len)
            }
            Event::MessagesLeft(e) => size_of::<MessagesLeft>() + e.mailbox.len() + e.reason.len(),
            Event::FetchNotStarted(e) => {
                size_of::<FetchNotStarted>() + e.mailbox.len() + e.reason.len()
            }
            Event::MailboxUpdated(e) => {
                size_of::<MailboxUpdated>() + e.mailbox.len() + texts(&e.deleted)
            }
            Event::Outcome(e) => size_of::<Outcome>() + e.message.len() + e.recipient.len() + 32,
            Event::ConservationChecked { problems, .. } => texts(problems),
        }
    }
}

/// `d+hh:mm:ss.mmm`, fixed width, so that text traces line up and diff well.
pub fn format_time(time_ms: u64) -> String {
    let mut text = String::with_capacity(16);
    push_time(&mut text, time_ms);
    text
}

/// How many digits [`format_time`] writes for the days of `time_ms`.
fn day_digits(time_ms: u64) -> usize {
    (time_ms / 86_400_000)
        .checked_ilog10()
        .map_or(1, |log| log as usize + 1)
}

/// [`format_time`], onto `out`: written digit by digit, since a long run's text trace writes
/// it on every line.
fn push_time(out: &mut String, time_ms: u64) {
    match time_ms / 86_400_000 {
        days @ 0..=9 => out.push(char::from(b'0' + days as u8)),
        days => {
            let _ = write!(out, "{days}");
        }
    }
    let fields = [
        ('+', time_ms / 3_600_000 % 24, 2),
        (':', time_ms / 60_000 % 60, 2),
        (':', time_ms / 1000 % 60, 2),
        ('.', time_ms % 1000, 3),
    ];
    for (separator, value, width) in fields {
        out.push(separator);
        if width == 3 {
            out.push(char::from(b'0' + (value / 100) as u8));
        }
        out.push(char::from(b'0' + (value / 10 % 10) as u8));
        out.push(char::from(b'0' + (value % 10) as u8));
    }
}

/// One line of the text trace: the time, the actor in a column of 22 characters (as
/// `{actor:<22}` pads it), and `text`, which must need no escape.
fn push_line(out: &mut String, last_actor: &mut String, time: &str, actor: &str, text: &str) {
    if last_actor != actor {
        last_actor.clear();
        last_actor.push_str(actor);
    }
    out.push_str(time);
    out.push_str("  ");
    out.push_str(actor);
    for _ in actor.chars().count()..ACTOR_COLUMN_CHARS {
        out.push(' ');
    }
    out.push(' ');
    out.push_str(text);
    out.push('\n');
}

/// The width of the text trace's actor column.
const ACTOR_COLUMN_CHARS: usize = 22;

/// [`escaped`], onto `out`. What it writes needs no escape: [`visible`] leaves it as it is.
fn push_escaped(out: &mut String, line: &[u8]) {
    push_escaped_line(out, line, false);
}

/// Most lines of one data transmission shown in the text trace.
const DATA_LINES_SHOWN: usize = 12;

/// How a BDAT chunk begins, by the last octets (two at most) of the chunks of its message
/// before it: RFC 3030 2 counts octets, not lines, so a chunk may go on with a line the chunk
/// before cut, or finish that line's CRLF with a lone LF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkStart {
    /// Its first line is the rest of a line the chunks before it cut.
    pub rest_of_line: bool,
    /// It is the lone LF whose CR ended the chunk before: that line's end, whole now.
    pub completes_crlf: bool,
}

impl ChunkStart {
    pub fn after(tail: &[u8], chunk: &[u8]) -> ChunkStart {
        ChunkStart {
            rest_of_line: !chunk.is_empty() && chunks_cut_a_line(tail),
            completes_crlf: tail.ends_with(b"\r") && chunk == b"\n",
        }
    }

    /// The mark of a chunk's line (shown `C (MARK): ...`) when it is the chunk's first
    /// (`first`) and ends with CRLF or not; `None` for an ordinary line.
    pub fn mark(self, first: bool, ends_with_crlf: bool) -> Option<&'static str> {
        match (
            first && self.rest_of_line,
            ends_with_crlf || self.completes_crlf,
        ) {
            (true, true) => Some("rest of line"),
            (true, false) => Some("rest of line, no CRLF"),
            (false, _) if !ends_with_crlf => Some("no CRLF"),
            (false, _) => None,
        }
    }
}

/// Whether chunks whose last octets were `tail` stopped inside a line.
fn chunks_cut_a_line(tail: &[u8]) -> bool {
    !tail.is_empty() && tail != b"\r\n"
}

/// How many of `total` lines to show when at most `most` are wanted and a summary line
/// stands for the rest: all of them when only one would be left out, since the summary would
/// take its place and say less.
pub fn lines_shown(total: usize, most: usize) -> usize {
    if total <= most.saturating_add(1) {
        total
    } else {
        most
    }
}

/// Whether a text-trace line's text (after the time and the actor) is the note that stands for
/// the lines of a transmission it leaves out (`#1 C: ... 3 more lines, 272 octets in all`), as
/// [`TextRenderer`] writes it.
pub fn is_data_summary(text: &str) -> bool {
    data_summary_lines(text).is_some()
}

/// How many lines the note of [`is_data_summary`] stands for, if `text` is one.
pub fn data_summary_lines(text: &str) -> Option<usize> {
    let (_, rest) = text.split_once(": ... ")?;
    let (count, rest) = rest.split_once(" more lines, ")?;
    rest.ends_with(" octets in all")
        .then(|| count.parse().ok())
        .flatten()
}

impl Trace {
    /// One line per event (a transmission gives one line per protocol line): simulated time,
    /// then the actor, then what happened. Stable across runs, for golden files and diffs.
    pub fn to_text(&self) -> String {
        self.to_text_with(TextRenderer::default())
    }

    /// [`Trace::to_text`], written by `renderer` (one that writes whole transmissions, say).
    pub fn to_text_with(&self, renderer: TextRenderer) -> String {
        let mut renderer = renderer.with_days_of(self);
        let mut out = String::new();
        for event in &self.events {
            renderer.write(event, &mut out);
        }
        out
    }
}

/// Turns events into text lines; it remembers which connection joins which actors, so feed
/// it the events in order.
#[derive(Clone, Debug, Default)]
pub struct TextRenderer {
    conns: std::collections::BTreeMap<ConnId, (Name, Name)>,
    /// A line being written, kept for the next one.
    scratch: String,
    /// Every line of each transmission, rather than the first [`DATA_LINES_SHOWN`] and a
    /// line that says how many more there were.
    whole_transmissions: bool,
    /// The actor of the last line written: every line of an event has the same one.
    last_actor: String,
    /// The width the days of a time are right-aligned to, so that the columns stay where
    /// they are in a run of ten days or more; a day count needs at least one digit.
    day_digits: usize,
    /// For each connection whose client's last send was a BDAT chunk not the message's last,
    /// the last octets (two at most) of the chunks so far: when they are not CR LF, a line
    /// was cut, and the next chunk's first line is its rest, marked so that, say, the CRLF
    /// that ends it does not read as an empty line of the message.
    chunk_tails: std::collections::BTreeMap<ConnId, Vec<u8>>,
}

impl TextRenderer {
    /// A renderer that writes every line of each transmission: a message's, or a delivery
    /// status notice's, whose report (RFC 3464) comes after its first lines.
    pub fn whole_transmissions() -> TextRenderer {
        TextRenderer {
            whole_transmissions: true,
            ..TextRenderer::default()
        }
    }

    /// This renderer, writing the days of every time as wide as those of `trace`'s last
    /// event: the widest, since events come in time order.
    pub fn with_days_of(mut self, trace: &Trace) -> TextRenderer {
        if let Some(last) = trace.events.last() {
            self.day_digits = self.day_digits.max(day_digits(last.time_ms));
        }
        self
    }

    /// A renderer for one event of connection `conn` out of their order (see
    /// [`crate::sim::steps::Step::lines`]), whose lines are `actor`'s: the client's or the
    /// server's, as a renderer fed every event before it named them. Every line of an event has
    /// the same actor, and no line of it names the other end.
    pub fn for_one_event_of(conn: ConnId, actor: &Name) -> TextRenderer {
        let mut renderer = TextRenderer::default();
        renderer
            .conns
            .insert(conn, (Name::clone(actor), Name::clone(actor)));
        renderer
    }

    /// This renderer, told the last octets of the chunks the client on `conn` sent right
    /// before (see [`crate::sim::steps::Step::lines`]), as a renderer fed every event before
    /// would know them.
    pub fn after_chunks(mut self, conn: ConnId, tail: Vec<u8>) -> TextRenderer {
        self.chunk_tails.insert(conn, tail);
        self
    }

    /// The actor of the lines last written (of the last event that wrote any): a name may
    /// hold spaces (a quoted local part, a scripted client's name), so the text's columns
    /// alone do not say where it ends.
    pub fn last_actor(&self) -> &str {
        &self.last_actor
    }

    /// The lines for one event, each ending in a newline (none for some events).
    pub fn write(&mut self, event: &TraceEvent, out: &mut String) {
        let TraceEvent { time_ms, event } = event;
        let conns = &mut self.conns;
        let mut time = String::with_capacity(16);
        for _ in day_digits(*time_ms)..self.day_digits {
            time.push(' ');
        }
        push_time(&mut time, *time_ms);
        let scratch = &mut self.scratch;
        let last_actor = &mut self.last_actor;
        // Addresses and reply texts from raw sessions may hold any character.
        macro_rules! line {
            ($actor:expr, $text:expr $(,)?) => {
                push_line(out, last_actor, &time, $actor, &visible($text))
            };
        }
        match event {
            Event::Started { scenario, seed } => {
                line!("sim", format!("scenario {scenario}, seed {seed}"))
            }
            Event::MessageComposed(boxed) => {
                let MessageComposed {
                    message,
                    ua,
                    reverse_path,
                    forward_paths,
                    octets,
                    raw: _,
                } = &**boxed;
                line!(
                    ua,
                    format!(
                    "composed {message}: MAIL FROM:<{reverse_path}> RCPT TO:{} ({octets} octets)",
                    forward_paths
                        .iter()
                        .map(|p| format!("<{p}>"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                );
            }
            Event::SubmissionFailed(boxed) => {
                let SubmissionFailed {
                    ua,
                    message,
                    recipients,
                    reason,
                } = &**boxed;
                line!(
                    ua,
                    format!(
                        "{message} not submitted, for {}: {reason}",
                        recipients.join(", ")
                    ),
                );
            }
            Event::ConnectionAttempted(boxed) => {
                let ConnectionAttempted {
                    conn,
                    client,
                    server,
                    address,
                    port,
                    protocol,
                } = &**boxed;
                {
                    conns.insert(*conn, (client.clone(), server.clone()));
                    line!(
                        client,
                        format!(
                            "#{conn} connect to {server} [{address}]:{port} ({})",
                            match protocol {
                                Protocol::Smtp => "SMTP",
                                Protocol::Pop3 => "POP3",
                            }
                        ),
                    )
                }
            }
            Event::ConnectionOpened { conn } => {
                line!(&conn_client(conns, *conn), format!("#{conn} connected"))
            }
            Event::ConnectionRefused { conn, reason } => line!(
                &conn_client(conns, *conn),
                format!("#{conn} connection refused: {reason}"),
            ),
            Event::ConnectionTimedOut { conn } => line!(
                &conn_client(conns, *conn),
                format!("#{conn} connection timed out"),
            ),
            Event::ConnectionDropped { conn, reason } => line!(
                &conn_client(conns, *conn),
                format!("#{conn} connection dropped: {reason}"),
            ),
            Event::ServerStalled {
                conn,
                at,
                after_chunks,
            } => line!(
                &conn_server(conns, *conn),
                format!(
                    "#{conn} server hangs: {} never comes (stall fault)",
                    if *after_chunks && *at == StallPoint::Dot {
                        "the reply to the message's last BDAT chunk"
                    } else {
                        at.awaited()
                    }
                ),
            ),
            Event::ConnectionClosed {
                conn,
                by,
                idle_timeout,
            } => {
                line!(
                    by,
                    if *idle_timeout {
                        format!("#{conn} closed the connection: no command came before its idle timeout")
                    } else {
                        format!("#{conn} closed the connection")
                    }
                )
            }
            Event::Transmitted {
                conn,
                direction,
                bytes,
            } => {
                let (client, server) = conns.get(conn).cloned().unwrap_or_default();
                let (actor, prefix) = match direction {
                    Direction::ClientToServer => (client, "C:"),
                    Direction::ServerToClient => (server, "S:"),
                };
                let raw = bytes.as_bytes();
                let lines = crate::smtp::dot::crlf_lines(raw);
                // A client's BDAT write: its command line, then its chunk's lines, the first
                // of them the rest of a line the chunk before cut (RFC 3030 2 counts octets).
                let chunk = match direction {
                    Direction::ClientToServer => crate::smtp::command::bdat_with_chunk(raw),
                    Direction::ServerToClient => None,
                };
                let start = match (chunk, self.chunk_tails.get(conn)) {
                    (Some((octets, _)), Some(tail)) => ChunkStart::after(tail, octets),
                    _ => ChunkStart::default(),
                };
                if direction == &Direction::ClientToServer {
                    match chunk {
                        Some((octets, false)) => {
                            let mut tail = self.chunk_tails.remove(conn).unwrap_or_default();
                            tail.extend_from_slice(&octets[octets.len().saturating_sub(2)..]);
                            tail.drain(..tail.len().saturating_sub(2));
                            self.chunk_tails.insert(*conn, tail);
                        }
                        _ => {
                            self.chunk_tails.remove(conn);
                        }
                    }
                }
                let most = if self.whole_transmissions {
                    usize::MAX
                } else {
                    DATA_LINES_SHOWN
                };
                let shown = lines_shown(lines.len(), most);
                for (at, piece) in lines[..shown].iter().enumerate() {
                    // Bytes after the last CRLF end no line (RFC 5321 2.3.8): a command there
                    // has not ended (BDAT chunk data needs no CRLF). Said in the part of the
                    // line the sent bytes cannot write, so that `QUIT (no CRLF)<CRLF>`, sent,
                    // does not look the same.
                    // A chunk's first line comes after its command's (`at` 1).
                    let body = piece.strip_suffix(b"\r\n");
                    let shown = body.unwrap_or(piece);
                    match start.mark(chunk.is_some() && at == 1, body.is_some()) {
                        // The most common line of all, written without a string of its own.
                        None => {
                            scratch.clear();
                            let _ = write!(scratch, "#{conn} {prefix} ");
                            push_escaped(scratch, shown);
                            push_line(out, last_actor, &time, &actor, scratch);
                        }
                        Some(mark) => {
                            let prefix = prefix.trim_end_matches(':');
                            line!(
                                &actor,
                                format!("#{conn} {prefix} ({mark}): {}", escaped(shown)),
                            )
                        }
                    }
                }
                if lines.len() > shown {
                    line!(
                        &actor,
                        format!(
                            "#{conn} {prefix} ... {} more lines, {} octets in all",
                            lines.len() - shown,
                            raw.len()
                        ),
                    );
                }
            }
            Event::ReplyExplained { .. } => {}
            // Common lines whose text needs no escape (state names are ASCII words), written
            // without a string of their own.
            Event::ClientState { conn, from, to } => {
                scratch.clear();
                let _ = write!(scratch, "#{conn} client {from} -> {to}");
                push_line(out, last_actor, &time, &conn_client(conns, *conn), scratch);
            }
            Event::ServerState { conn, from, to } => {
                scratch.clear();
                let _ = write!(scratch, "#{conn} server {from} -> {to}");
                push_line(out, last_actor, &time, &conn_server(conns, *conn), scratch);
            }
            Event::DnsQuery(boxed) => {
                let DnsQuery {
                    host, id, question, ..
                } = &**boxed;
                line!(host, format!("DNS query id {id}: {question}"));
            }
            Event::DnsResponse(boxed) => {
                let DnsResponse {
                    host,
                    id,
                    outcome,
                    records,
                    authority,
                    ..
                } = &**boxed;
                {
                    line!(host, format!("DNS answer id {id}: {outcome}"));
                    for record in records {
                        line!(host, format!("  {record}"));
                    }
                    for record in authority {
                        line!(host, format!("  authority: {record}"));
                    }
                }
            }
            Event::MxResolved(boxed) => {
                // A cached answer says so in its result text.
                let MxResolved {
                    host,
                    domain,
                    result,
                    targets,
                    from_cache: _,
                    notes,
                    failure: _,
                } = &**boxed;
                // A result without hosts (NXDOMAIN, null MX, a DNS failure) has no list.
                let text = if targets.is_empty() {
                    format!("MX for {domain}: {result}")
                } else {
                    format!("MX for {domain}: {result} [{}]", targets.join(", "))
                };
                line!(host, text);
                for note in notes {
                    line!(host, format!("  note: {note}"));
                }
            }
            Event::MessageAccepted(boxed) => {
                let MessageAccepted {
                    host,
                    conn,
                    message,
                    reverse_path,
                    forward_paths,
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "#{conn} accepted {message} from <{reverse_path}> for {}",
                        forward_paths.join(", ")
                    ),
                );
            }
            Event::Queued(boxed) => {
                let Queued {
                    host,
                    entry,
                    message,
                    domain,
                    recipients,
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "queued q{entry} ({message}) for {domain}: {}",
                        recipients.join(", ")
                    ),
                );
            }
            Event::AttemptStarted {
                host,
                entry,
                attempt,
            } => line!(host, format!("q{entry} delivery attempt {attempt}")),
            Event::RecipientResult(boxed) => {
                let RecipientResult {
                    host,
                    entry,
                    recipient,
                    result,
                    ..
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "q{entry} <{recipient}> {result}: {}",
                        boxed.reply_with_origin()
                    ),
                );
            }
            Event::RetryScheduled(boxed) => {
                let RetryScheduled {
                    host,
                    entry,
                    at_ms,
                    recipients,
                    last_attempt,
                    attempt_failure,
                } = &**boxed;
                // Said here when no recipient result above says it (as Postfix logs a
                // deferral with its reason).
                let failure = attempt_failure.as_ref().map_or(String::new(), |failure| {
                    format!("; attempt failed: {}", failure.reply_with_origin())
                });
                line!(
                    host,
                    format!(
                        "q{entry} {}retry at {} for {}{failure}",
                        if *last_attempt { "last " } else { "" },
                        format_time(*at_ms),
                        recipients.join(", ")
                    ),
                );
            }
            Event::SessionJoined(boxed) => {
                let SessionJoined {
                    host,
                    entry,
                    conn,
                    server,
                } = &**boxed;
                line!(
                    host,
                    format!("q{entry} joins #{conn} to {server}, one more transaction on it"),
                );
            }
            Event::DsnWithheld(boxed) => {
                let DsnWithheld {
                    client,
                    conn,
                    message,
                    server,
                } = &**boxed;
                line!(
                    client,
                    format!(
                        "#{conn} {message}: DSN request not passed on, {server} does not offer DSN"
                    ),
                );
            }
            Event::TargetSkipped(boxed) => {
                let TargetSkipped {
                    host,
                    entry,
                    target,
                    address,
                    failed_at_ms,
                    until_ms,
                    reason,
                } = &**boxed;
                let label = target_label(target, address);
                line!(
                    host,
                    format!(
                        "q{entry} skips {label}: {reason} at {}, not tried again before {}",
                        format_time(*failed_at_ms),
                        format_time(*until_ms)
                    ),
                );
            }
            Event::Dequeued { host, entry } => line!(host, format!("q{entry} done")),
            Event::GaveUp(boxed) => {
                let GaveUp {
                    host,
                    entry,
                    recipients,
                } = &**boxed;
                line!(
                    host,
                    format!("q{entry} gave up on {}", recipients.join(", ")),
                );
            }
            Event::Delivered(boxed) => {
                let Delivered {
                    host,
                    mailbox,
                    message,
                    uid,
                    octets,
                    ..
                } = &**boxed;
                line!(
                    host,
                    format!("MDA stored {message} in {mailbox} as {uid} ({octets} octets)"),
                );
            }
            Event::DeliveryRefused(boxed) => {
                let DeliveryRefused {
                    host,
                    mailbox,
                    reason,
                } = &**boxed;
                line!(host, format!("MDA refused {mailbox}: {reason}"));
            }
            Event::BounceCreated(boxed) => {
                let BounceCreated {
                    host,
                    about,
                    bounce,
                    to,
                    recipients,
                    action,
                    bytes,
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "{action} notice {bounce} about {about} to <{to}> for {}",
                        recipients.join(", ")
                    ),
                );
                // The notice as written, each line indented under the event, for the whole
                // trace: one delivered on this host crosses no wire to be shown on.
                if self.whole_transmissions {
                    for piece in crate::smtp::dot::crlf_lines(bytes.as_bytes()) {
                        scratch.clear();
                        scratch.push_str("  | ");
                        push_escaped(scratch, piece.strip_suffix(b"\r\n").unwrap_or(piece));
                        push_line(out, last_actor, &time, host, scratch);
                    }
                }
            }
            Event::BounceDiscarded(boxed) => {
                let BounceDiscarded {
                    host,
                    message,
                    recipients,
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "discarded undeliverable {message} (from <>, so no notice) for {}",
                        recipients.join(", ")
                    ),
                );
            }
            Event::NoticeDeclined(boxed) => {
                let NoticeDeclined {
                    host,
                    message,
                    recipients,
                } = &**boxed;
                line!(
                    host,
                    format!(
                        "no notice about {message} for {}: its sender asked for none (NOTIFY)",
                        recipients.join(", ")
                    ),
                );
            }
            Event::MessageRetrieved(boxed) => {
                let MessageRetrieved {
                    conn,
                    mailbox,
                    uid,
                    octets,
                } = &**boxed;
                line!(
                    &conn_client(conns, *conn),
                    format!(
                        "#{conn} retrieved {} from {mailbox} ({octets} octets)",
                        uid.as_deref().unwrap_or("a message")
                    ),
                );
            }
            Event::MessagesLeft(boxed) => {
                let MessagesLeft {
                    conn,
                    mailbox,
                    count,
                    reason,
                } = &**boxed;
                let messages = if *count == 1 { "message" } else { "messages" };
                line!(
                    &conn_client(conns, *conn),
                    format!("#{conn} left {count} {messages} in {mailbox}: {reason}"),
                );
            }
            Event::FetchNotStarted(boxed) => {
                let FetchNotStarted {
                    client,
                    mailbox,
                    reason,
                } = &**boxed;
                line!(client, format!("fetch of {mailbox} not started: {reason}"));
            }
            Event::MailboxUpdated(boxed) => {
                let MailboxUpdated {
                    host,
                    mailbox,
                    deleted,
                } = &**boxed;
                if deleted.is_empty() {
                    line!(host, format!("{mailbox}: nothing deleted"));
                } else {
                    line!(host, format!("{mailbox}: deleted {}", deleted.join(", ")));
                }
            }
            Event::Outcome(boxed) => {
                let Outcome {
                    message,
                    recipient,
                    fate,
                } = &**boxed;
                line!(
                    "outcome",
                    format!("{message} <{recipient}> {}", describe_fate(fate)),
                );
            }
            Event::ConservationChecked { ok, problems } => line!(
                "check",
                if *ok {
                    "conservation holds: every recipient of every message has exactly one fate"
                        .to_string()
                } else if run_was_cut(problems) {
                    // Nothing was lost: the run stopped, and what it had is reported.
                    format!("RUN CUT SHORT: {}", problems.join("; "))
                } else {
                    format!("CONSERVATION VIOLATED: {}", problems.join("; "))
                },
            ),
        }
    }
}

fn conn_client(conns: &std::collections::BTreeMap<ConnId, (Name, Name)>, conn: ConnId) -> Name {
    conns
        .get(&conn)
        .map(|c| Rc::clone(&c.0))
        .unwrap_or_else(|| Name::from(""))
}

fn conn_server(conns: &std::collections::BTreeMap<ConnId, (Name, Name)>, conn: ConnId) -> Name {
    conns
        .get(&conn)
        .map(|c| Rc::clone(&c.1))
        .unwrap_or_else(|| Name::from(""))
}

pub fn describe_fate(fate: &Fate) -> String {
    match fate {
        Fate::Delivered { host, mailbox } => format!("delivered to {mailbox} on {host}"),
        Fate::Bounced {
            host,
            status,
            own_finding,
            notice_declined: false,
        } => format!("bounced by {host} ({}{status})", whose(*own_finding)),
        Fate::Bounced {
            host,
            status,
            own_finding,
            notice_declined: true,
        } => {
            // The host is the one that would have bounced it; the status may be another
            // server's reply to it.
            let found = if *own_finding {
                format!("{host}'s own finding: ")
            } else {
                String::new()
            };
            format!(
                "failed ({found}{status}); {host} sends no notice, as the sender asked (NOTIFY)"
            )
        }
        Fate::RefusedAtSubmission { status } => format!("refused at submission ({status})"),
        Fate::Queued { host } => format!("still queued on {host}"),
        Fate::Discarded {
            host,
            status,
            own_finding,
        } => format!("discarded by {host} ({}{status})", whose(*own_finding)),
    }
}

/// Said before a status that no server sent: the host's own finding is not a reply.
fn whose(own_finding: bool) -> &'static str {
    if own_finding {
        "its own finding: "
    } else {
        ""
    }
}

/// `text` sent on connection 1 at time 0, for tests that build a session's events by hand.
#[cfg(test)]
pub(crate) fn sent_on_first_connection(direction: Direction, text: &str) -> TraceEvent {
    TraceEvent {
        time_ms: 0,
        event: Event::Transmitted {
            conn: 1,
            direction,
            bytes: WireBytes::from_bytes(text.as_bytes()),
        },
    }
}

/// The events of connection 1 up to its EHLO reply (offering PIPELINING and CHUNKING), as a
/// trace has them, the greeting before the client's side opens: for tests that build a
/// session's events by hand.
#[cfg(test)]
pub(crate) fn first_connection_greeted() -> Vec<TraceEvent> {
    let (client, server) = (Direction::ClientToServer, Direction::ServerToClient);
    vec![
        sent_on_first_connection(server, "220 ready\r\n"),
        TraceEvent {
            time_ms: 0,
            event: Event::ConnectionOpened { conn: 1 },
        },
        sent_on_first_connection(client, "EHLO a.test\r\n"),
        sent_on_first_connection(server, "250-b.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
    ]
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn an_event_costs_forty_bytes_or_less_whatever_its_kind() {
        // Long runs record close to a million events: rare, large ones live in a box.
        assert!(
            std::mem::size_of::<TraceEvent>() <= 40,
            "{} bytes",
            std::mem::size_of::<TraceEvent>()
        );
    }

    #[test]
    fn wire_bytes_serialise_as_text_when_they_are_utf8_and_as_octets_otherwise() {
        let text = WireBytes::from_bytes(b"EHLO a\r\n");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"EHLO a\\r\\n\"");
        let octets = WireBytes::from_bytes(&[0xff, 0x0d, 0x0a]);
        assert_eq!(serde_json::to_string(&octets).unwrap(), "[255,13,10]");
    }
}

#[cfg(test)]
mod text_tests {
    use super::*;

    /// A run of ten days or more writes every time with as many day digits as its last one,
    /// so that the actor and text columns do not move.
    #[test]
    fn the_time_column_keeps_its_width_in_a_run_of_ten_days_or_more() {
        let started = |time_ms: u64| TraceEvent {
            time_ms,
            event: Event::Started {
                scenario: "long".into(),
                seed: 1,
            },
        };
        let text_of = |last_ms: u64| {
            Trace {
                scenario: "long".into(),
                seed: 1,
                start_unix_s: 0,
                events: vec![started(0), started(last_ms)],
            }
            .to_text()
        };
        let day = 86_400_000;
        let text = text_of(123 * day);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("  0+00:00:00.000  sim "), "{text}");
        assert!(lines[1].starts_with("123+00:00:00.000  sim "), "{text}");
        assert_eq!(lines[0].find("sim"), lines[1].find("sim"));
        // Under ten days, as every built-in scenario: no padding.
        assert!(text_of(9 * day).starts_with("0+00:00:00.000  sim "));
    }

    #[test]
    fn the_time_reads_days_then_hours_minutes_seconds_and_milliseconds() {
        let ms = |days: u64, h: u64, m: u64, s: u64, milli: u64| {
            (((days * 24 + h) * 60 + m) * 60 + s) * 1000 + milli
        };
        assert_eq!(format_time(0), "0+00:00:00.000");
        assert_eq!(format_time(ms(0, 1, 2, 3, 4)), "0+01:02:03.004");
        assert_eq!(format_time(ms(9, 23, 59, 59, 999)), "9+23:59:59.999");
        assert_eq!(format_time(ms(12, 10, 20, 30, 450)), "12+10:20:30.450");
        assert_eq!(
            format_time(u64::MAX),
            format!("{}+14:25:51.615", u64::MAX / 86_400_000)
        );
    }

    #[test]
    fn an_actor_fills_its_column_by_characters_not_octets() {
        let mut out = String::new();
        push_line(
            &mut out,
            &mut String::new(),
            "0+00:00:00.000",
            "ü@b.test",
            "x",
        );
        assert_eq!(out, format!("0+00:00:00.000  {:<22} x\n", "ü@b.test"));
        out.clear();
        let long = "a-name-longer-than-the-column@b.test";
        push_line(&mut out, &mut String::new(), "0+00:00:00.000", long, "x");
        assert_eq!(out, format!("0+00:00:00.000  {long} x\n"));
    }

    /// A trace of `events`, all at time 0, after connection `conn`'s attempt by `client`.
    fn trace_after_attempt(
        conn: ConnId,
        client: &str,
        protocol: Protocol,
        events: Vec<Event>,
    ) -> Trace {
        let port = match protocol {
            Protocol::Smtp => 25,
            Protocol::Pop3 => 110,
        };
        let attempted = Event::ConnectionAttempted(Box::new(ConnectionAttempted {
            conn,
            client: Name::from(client),
            server: Name::from("mx.b.test"),
            address: "192.0.2.20".into(),
            port,
            protocol,
        }));
        Trace {
            scenario: "t".into(),
            seed: 1,
            start_unix_s: 0,
            events: std::iter::once(attempted)
                .chain(events)
                .map(|event| TraceEvent { time_ms: 0, event })
                .collect(),
        }
    }

    /// The text trace after `bytes` sent by a client on connection 1.
    fn client_text(bytes: &[u8]) -> String {
        trace_after_attempt(
            1,
            "alice",
            Protocol::Smtp,
            vec![Event::Transmitted {
                conn: 1,
                direction: Direction::ClientToServer,
                bytes: WireBytes::from_bytes(bytes),
            }],
        )
        .to_text()
    }

    /// The text trace's lines for `bytes` sent by a client on connection 1.
    fn shown_client_lines(bytes: &[u8]) -> Vec<String> {
        client_text(bytes)
            .lines()
            .filter_map(|line| {
                line.split_once("#1 C: ")
                    .or_else(|| line.split_once("#1 C (no CRLF): "))
                    .map(|(_, text)| text.to_string())
            })
            .collect()
    }

    #[test]
    fn only_crlf_ends_a_shown_line() {
        let shown = shown_client_lines(b"Hello\n.\r\n\n\r\nX\rY\r\nQUIT");
        assert_eq!(shown, ["Hello\\n.", "\\n", "X\\rY", "QUIT"]);
    }

    /// The text `\n` a client sent is not shown as a bare LF is: a backslash that would read
    /// as the start of an escape is doubled, and any other is shown as sent.
    #[test]
    fn a_sent_backslash_never_reads_as_an_escape() {
        let shown =
            shown_client_lines(b"a\\nb\nc\\\\d\\\x01e\\\xff\r\nMAIL FROM:<\"a\\\"b\"@x>\\\r\n");
        assert_eq!(
            shown,
            [
                "a\\\\nb\\nc\\\\\\d\\\\\\x01e\\\\\\xff",
                "MAIL FROM:<\"a\\\"b\"@x>\\"
            ]
        );
        // `\xNN` and `\u{` are the escapes: a sent `\x41` and `\u{41}` are doubled, while
        // RFC 6533's `\x{FC}`, `\x4` or `\user` cannot be read as one and stay as sent.
        let shown = shown_client_lines(b"\\x41 \\u{41} j\\x{FC}rgen \\x4 \\user\r\n");
        assert_eq!(shown, ["\\\\x41 \\\\u{41} j\\x{FC}rgen \\x4 \\user"]);
    }

    /// Bytes after the last CRLF are marked where sent bytes cannot write: the same words,
    /// sent as a line, look different.
    #[test]
    fn a_last_line_without_crlf_is_marked_where_sent_bytes_cannot_forge_it() {
        let text = client_text;
        let unended = text(b"NOOP\r\nQUIT");
        assert!(unended.contains("#1 C: NOOP\n"), "{unended}");
        assert!(unended.contains("#1 C (no CRLF): QUIT\n"), "{unended}");
        let forged = text(b"NOOP\r\n(no CRLF): QUIT\r\n");
        assert!(!forged.contains("#1 C (no CRLF)"), "{forged}");
        // Bytes that are not UTF-8 are escaped there as in any line.
        let binary = text(b"BDAT 2 LAST\r\n\xff\xfe");
        assert!(binary.contains("#1 C (no CRLF): \\xff\\xfe\n"), "{binary}");
    }

    /// A chunk's first line that goes on with the line the chunk before cut (RFC 3030 2
    /// counts octets, not lines) is marked as that line's rest, so that a chunk starting
    /// with that line's CRLF does not show an empty line of the message; after a chunk that
    /// ended its line, or another command, it is an ordinary line.
    #[test]
    fn the_rest_of_a_line_a_chunk_cut_is_marked() {
        let sends = |writes: &[&[u8]]| {
            trace_after_attempt(
                1,
                "alice",
                Protocol::Smtp,
                writes
                    .iter()
                    .map(|bytes| Event::Transmitted {
                        conn: 1,
                        direction: Direction::ClientToServer,
                        bytes: WireBytes::from_bytes(bytes),
                    })
                    .collect(),
            )
            .to_text()
        };
        let crlf = sends(&[b"BDAT 3\r\nabc", b"BDAT 5 LAST\r\n\r\nd\r\n"]);
        assert!(crlf.contains("#1 C (no CRLF): abc\n"), "{crlf}");
        assert!(crlf.contains("#1 C (rest of line): \n"), "{crlf}");
        assert!(crlf.contains("#1 C: d\n"), "{crlf}");
        assert!(!crlf.contains("#1 C: \n"), "{crlf}");
        let cut = sends(&[b"BDAT 2\r\nab", b"BDAT 1\r\nc", b"BDAT 3 LAST\r\nd\r\n"]);
        assert!(cut.contains("#1 C (rest of line, no CRLF): c\n"), "{cut}");
        assert!(cut.contains("#1 C (rest of line): d\n"), "{cut}");
        // Chunks of one octet split a CRLF: the LF ends the line, and the next chunk starts
        // a new one.
        let ones = sends(&[
            b"BDAT 1\r\na",
            b"BDAT 1\r\n\r",
            b"BDAT 1\r\n\n",
            b"BDAT 1\r\n\t",
            b"BDAT 1 LAST\r\nb",
        ]);
        let marked: Vec<&str> = ones
            .lines()
            .filter_map(|line| line.split_once("#1 C ").map(|(_, mark)| mark))
            .filter(|mark| mark.starts_with('('))
            .collect();
        assert_eq!(
            marked,
            [
                "(no CRLF): a",
                "(rest of line, no CRLF): \\r",
                "(rest of line): \\n",
                "(no CRLF): \\t",
                "(rest of line, no CRLF): b",
            ],
            "{ones}"
        );
        let whole = sends(&[b"BDAT 4\r\nab\r\n", b"BDAT 4 LAST\r\ncd\r\n"]);
        assert!(whole.contains("#1 C: cd\n"), "{whole}");
        let reset = sends(&[b"BDAT 2\r\nab", b"RSET\r\n", b"BDAT 4 LAST\r\ncd\r\n"]);
        assert!(reset.contains("#1 C: cd\n"), "{reset}");
        assert!(!reset.contains("rest of line"), "{reset}");
    }

    /// Each event is one line of text, shown in its order: an octet that is not UTF-8 is
    /// that octet (`\xNN`), and a character that breaks or reorders lines (U+0085, U+2028,
    /// a bidirectional override) is an escape, in bytes on the wire and in other events.
    #[test]
    fn characters_that_break_or_reorder_lines_are_escaped() {
        let shown =
            shown_client_lines("NOOP a\u{1}b\u{85}c\u{2028}d\u{202e}e\u{61c}f\r\n".as_bytes());
        assert_eq!(
            shown,
            ["NOOP a\\x01b\\u{0085}c\\u{2028}d\\u{202e}e\\u{061c}f"]
        );
        assert_eq!(
            shown_client_lines(b"NOOP \xff\xc3\r\n"),
            ["NOOP \\xff\\xc3"]
        );
        let refused = trace_after_attempt(
            1,
            "alice",
            Protocol::Smtp,
            vec![Event::ConnectionDropped {
                conn: 1,
                reason: "a\u{2029}b".into(),
            }],
        );
        let text = refused.to_text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("connection dropped: a\\u{2029}b"), "{text}");
    }

    #[test]
    fn long_data_is_summarised_but_never_for_a_single_line() {
        let shown_after = |count: usize| {
            let data: String = (1..=count).map(|i| format!("line {i}\r\n")).collect();
            shown_client_lines(data.as_bytes())
        };
        let one_over = shown_after(DATA_LINES_SHOWN + 1);
        assert_eq!(one_over.len(), DATA_LINES_SHOWN + 1);
        assert_eq!(one_over.last().map(String::as_str), Some("line 13"));
        let two_over = shown_after(DATA_LINES_SHOWN + 2);
        assert_eq!(two_over.len(), DATA_LINES_SHOWN + 1);
        assert_eq!(
            two_over.last().map(String::as_str),
            Some("... 2 more lines, 117 octets in all")
        );
        // The UI tells the note apart from the lines sent by what the renderer writes.
        assert!(is_data_summary("#1 C: ... 2 more lines, 117 octets in all"));
        assert!(!is_data_summary("#1 C: ... 2 more lines of my own"));
        assert_eq!(
            data_summary_lines("#1 C: ... 546 more lines, 41687 octets in all"),
            Some(546)
        );
        assert_eq!(
            data_summary_lines("#1 C: ... many more lines, 1 octets in all"),
            None
        );
    }

    #[test]
    fn messages_left_on_the_server_are_shown_by_the_user_agent_with_the_reason() {
        let left = |count| {
            Event::MessagesLeft(Box::new(MessagesLeft {
                conn: 2,
                mailbox: "bob@b.test".into(),
                count,
                reason: "too large".into(),
            }))
        };
        let trace = trace_after_attempt(2, "ua:bob@b.test", Protocol::Pop3, vec![left(1), left(3)]);
        let text = trace.to_text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" left ")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("ua:bob@b.test"), "{}", lines[0]);
        assert!(
            lines[0].ends_with("#2 left 1 message in bob@b.test: too large"),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with("#2 left 3 messages in bob@b.test: too large"));
        let json = serde_json::to_value(&trace.events[1]).unwrap();
        assert_eq!(json["type"], "messages_left");
        assert_eq!(json["count"], 1);
        assert_eq!(json["reason"], "too large");
    }
}
