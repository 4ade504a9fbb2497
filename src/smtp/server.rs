//! The server side of an SMTP session (RFC 5321, with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//! ENHANCEDSTATUSCODES, CHUNKING and AUTH) as a sans-I/O state machine: bytes and the time go
//! in through `handle_*`, bytes to send, events and the next deadline come out through
//! `poll_*`.
//!
//! This module does not read sockets or clocks, does not store messages and does not decide
//! who may send to whom: the driver moves the bytes, stores each received message and then
//! calls [`ServerSession::message_stored`], and a [`Policy`] makes the decisions.
//!
//! ```text
//!            greeting 220                   554 from policy on connect
//!                 |                                  |
//!                 v                                  v
//!           ExpectHelo --EHLO/HELO--> ExpectMail   ExpectQuit --QUIT--> Closed
//!                                     |  ^  ^  \
//!                             AUTH    |  |  |   `--AUTH--> ExpectAuthResponse --235/535/501--'
//!                                MAIL |  |  | RSET, EHLO, end of data (any reply), BDAT refused
//!                                     v  |  |
//!                              ExpectRcpt   |
//!                                 | RCPT 250|
//!                                 v         |
//!                         ExpectRcptOrData -+-DATA 354--> ReceivingData --.CRLF--.
//!                                 |                                               |
//!                                 `-BDAT n--> ReceivingBdat <--BDAT n-- ExpectBdat |
//!                                              |  (n octets read)    ^         |
//!                                              |---------------------'         |
//!                                              `--LAST--> AwaitingStorage <----'
//!                                                           | message_stored: 250 / 451
//!                                                           v
//!                                                        ExpectMail
//! ```
//!
//! QUIT from any state where commands are read, timeouts, too many errors and the peer closing
//! lead to Closed. All other transitions are errors: the command gets 503 and the state stays.

use super::address::{ForwardPath, ReversePath};
use super::command::{
    bdat_chunk_size, bdat_chunk_size_overflows, parse_command, Command, CommandError, EsmtpParam,
    Verb,
};
use super::data_in::{BareKind, BareLineEnding, DataReader, Framing};
use super::dsn_params::{
    is_printable_ascii, xtext_decode, DsnReturn, Notify, OriginalRecipient, RecipientDsn,
    ENVID_MAX_CHARS,
};
use super::explain::Explanation;
use super::policy::{Decision, PeerInfo, Policy, SessionInfo, TransactionInfo};
use super::reply::{EnhancedStatus, Reply};
use super::sasl::{self, Mechanism};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

/// The settings of one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// The name in the greeting, the EHLO reply and the QUIT reply.
    pub hostname: String,
    /// Text after the hostname in the 220 greeting (`Service ready` for a server without EHLO).
    pub greeting_text: String,
    /// Largest message accepted, advertised as `SIZE n` (RFC 1870). 0 is advertised as
    /// `SIZE 0`: no fixed maximum (RFC 1870 4), and `message_held_max_octets` applies.
    pub message_size_max_octets: u64,
    /// Most accepted recipients per mail transaction; RFC 5321 4.5.3.1.8 requires at least
    /// 100. Beyond it: 452 4.5.3 (RFC 5321 4.5.3.1.10).
    pub recipients_max: usize,
    /// Protocol errors (500-504, 555) after which the session answers 421 and closes. A bare
    /// CR or LF inside an over-long line (answered only at its CRLF) counts as one too.
    pub errors_max: u32,
    /// Failed AUTH attempts after which the session answers 421 and closes.
    pub auth_failures_max: u32,
    /// Idle time after which the session answers 421 4.4.2 and closes; RFC 5321 4.5.3.2.7
    /// asks for at least 5 minutes.
    pub idle_timeout_ms: u64,
    pub bare_line_ending: BareLineEnding,
    /// Whether AUTH PLAIN and LOGIN are offered (a submission server, RFC 6409, RFC 4954).
    pub auth_enabled: bool,
    /// Which optional extensions EHLO advertises, so that a simulated world can hold older
    /// servers too. An extension that is not advertised is not honoured either (RFC 5321 2.2.1).
    pub extensions: ServerExtensionSet,
    /// Longest command line, CRLF included (RFC 5321 4.5.3.1.4: 512). After EHLO, a MAIL
    /// line may be longer by what the MAIL parameters of the advertised extensions add (RFC
    /// 1870 3, RFC 6531 3.1, RFC 4954 3); AUTH has its own limit.
    pub command_line_max_octets: usize,
    /// Longest AUTH command or response line, CRLF included (RFC 4954 4: 12288).
    pub auth_line_max_octets: usize,
    /// More `Received:` header fields than this means a mail loop (RFC 5321 6.3).
    pub received_headers_max: usize,
    /// Most input bytes buffered while a message is being stored.
    pub pending_input_max_octets: usize,
    /// Most octets of one message held in memory when `message_size_max_octets` is 0. A
    /// safety limit, not advertised: with no fixed maximum the session would otherwise hold
    /// whatever a client sends. A fixed maximum is its own bound, so this is not used then.
    pub message_held_max_octets: u64,
    /// Whether each command line is reported as a `CommandReceived` event. A driver that
    /// records the bytes it hands over anyway (the simulation's trace does) turns it off and
    /// saves a copy of every line.
    pub command_events: bool,
}

/// The fewest recipients per transaction a server may limit itself to (RFC 5321 4.5.3.1.8).
pub const RECIPIENTS_MIN: usize = 100;

/// The most BDAT chunks after a refused MAIL or a failed chunk whose 503s are not counted as
/// errors: more than a pipelining client has in flight before it reads the failure, and a
/// bound for one that sends BDAT forever, which still reaches the error limit.
const PIPELINED_CHUNKS_MAX: usize = 100;

impl ServerConfig {
    pub fn new(hostname: impl Into<String>) -> Self {
        ServerConfig {
            hostname: hostname.into(),
            greeting_text: "ESMTP SMTP Lab".into(),
            message_size_max_octets: 10 * 1024 * 1024,
            recipients_max: RECIPIENTS_MIN,
            errors_max: 10,
            auth_failures_max: 3,
            idle_timeout_ms: 300_000,
            bare_line_ending: BareLineEnding::Reject,
            auth_enabled: false,
            extensions: ServerExtensionSet::default(),
            command_line_max_octets: 512,
            auth_line_max_octets: 12_288,
            received_headers_max: 100,
            pending_input_max_octets: 1024 * 1024,
            // As much as this crate's client takes, before its line ends become CRLF.
            message_held_max_octets: super::client::MESSAGE_MAX_OCTETS as u64,
            command_events: true,
        }
    }
}

/// The optional ESMTP extensions a server offers. ENHANCEDSTATUSCODES and SIZE are offered
/// whenever EHLO is: every reply then carries enhanced codes, and SIZE gives the fixed limit
/// or, as `SIZE 0`, says that there is none. Without `ehlo`, the server is one of RFC 821's
/// time, which knows no extension at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerExtensionSet {
    /// EHLO itself (RFC 5321 2.2.1). Without it, EHLO is an unknown command, answered `500`
    /// so that clients fall back to HELO (RFC 5321 3.2); no extension is offered or honoured,
    /// and no reply carries an enhanced status code (RFC 2034 is an extension too).
    pub ehlo: bool,
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3030 (BDAT).
    pub chunking: bool,
    /// RFC 3461: delivery status notifications on request (NOTIFY and ORCPT on RCPT, RET and
    /// ENVID on MAIL). Off unless asked for: the server offering it must then report as asked,
    /// which only the simulation's hosts do.
    pub dsn: bool,
}

impl ServerExtensionSet {
    /// What a server of RFC 821's time offers: nothing, not even EHLO.
    pub const NONE: ServerExtensionSet = ServerExtensionSet {
        ehlo: false,
        pipelining: false,
        eight_bit_mime: false,
        smtputf8: false,
        chunking: false,
        dsn: false,
    };

    /// Whether SMTPUTF8 is offered: only with 8BITMIME, which RFC 6531 3.1 requires of a
    /// server that offers it ("Servers offering this extension MUST provide support for, and
    /// announce, the 8BITMIME extension").
    pub fn offers_smtputf8(&self) -> bool {
        self.smtputf8 && self.eight_bit_mime
    }
}

impl Default for ServerExtensionSet {
    fn default() -> Self {
        ServerExtensionSet {
            ehlo: true,
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            chunking: true,
            dsn: false,
        }
    }
}

/// Reads ENVID's value (RFC 3461 4.4): xtext, at most 100 characters, printable ASCII once
/// decoded. The error completes "ENVID ...".
fn read_envelope_id(value: &str) -> Result<String, &'static str> {
    if value.is_empty() {
        return Err("is empty: it names the message for its sender");
    }
    if value.len() > ENVID_MAX_CHARS {
        return Err("is longer than 100 characters");
    }
    match xtext_decode(value) {
        Some(id) if is_printable_ascii(&id) => Ok(String::from_utf8_lossy(&id).into_owned()),
        Some(_) => Err("holds an octet that is not printable ASCII once decoded"),
        None => Err(
            "is not xtext: \"+\" and \"=\" are written +2B and +3D, and other octets \
             outside ! to ~ as + and two upper-case hex digits",
        ),
    }
}

/// The session's state, named after what it expects next, for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerStateKind {
    /// Greeting sent; EHLO or HELO expected.
    ExpectHelo,
    /// Greeted; MAIL (or AUTH) expected.
    ExpectMail,
    /// MAIL accepted; RCPT expected (no recipient accepted yet).
    ExpectRcpt,
    /// At least one recipient accepted; more RCPT, DATA or BDAT expected.
    ExpectRcptOrData,
    /// After 354: message data up to `<CRLF>.<CRLF>`.
    ReceivingData,
    /// After BDAT n: the n octets of the chunk.
    ReceivingBdat,
    /// A BDAT chunk without LAST was accepted: the next BDAT expected.
    ExpectBdat,
    /// The message was handed to the driver; the reply waits until it is stored.
    AwaitingStorage,
    /// AUTH sent a 334 challenge; a base64 response line expected.
    ExpectAuthResponse,
    /// The connection was refused (554 greeting); only QUIT is answered with 221.
    ExpectQuit,
    Closed,
}

impl ServerStateKind {
    /// The state's name, as displayed.
    pub fn name(self) -> &'static str {
        match self {
            ServerStateKind::ExpectHelo => "ExpectHelo",
            ServerStateKind::ExpectMail => "ExpectMail",
            ServerStateKind::ExpectRcpt => "ExpectRcpt",
            ServerStateKind::ExpectRcptOrData => "ExpectRcptOrData",
            ServerStateKind::ReceivingData => "ReceivingData",
            ServerStateKind::ReceivingBdat => "ReceivingBdat",
            ServerStateKind::ExpectBdat => "ExpectBdat",
            ServerStateKind::AwaitingStorage => "AwaitingStorage",
            ServerStateKind::ExpectAuthResponse => "ExpectAuthResponse",
            ServerStateKind::ExpectQuit => "ExpectQuit",
            ServerStateKind::Closed => "Closed",
        }
    }
}

impl fmt::Display for ServerStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The BODY parameter of MAIL (RFC 6152).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyType {
    /// No BODY parameter, or BODY=7BIT.
    SevenBit,
    EightBitMime,
}

/// The WITH protocol of a Received header field (RFC 3848, RFC 6531 3.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    Smtp,
    Esmtp,
    Esmtpa,
    Utf8Smtp,
    Utf8Smtpa,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "SMTP",
            Protocol::Esmtp => "ESMTP",
            Protocol::Esmtpa => "ESMTPA",
            Protocol::Utf8Smtp => "UTF8SMTP",
            Protocol::Utf8Smtpa => "UTF8SMTPA",
        }
    }
}

/// The envelope of a received message: everything a Received header field, a Return-Path and
/// delivery need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub reverse_path: ReversePath,
    /// Accepted recipients, in the order they were accepted.
    pub forward_paths: Vec<ForwardPath>,
    /// MAIL parameters as sent.
    pub mail_params: Vec<EsmtpParam>,
    pub helo_name: String,
    pub peer: PeerInfo,
    pub protocol: Protocol,
    pub body: BodyType,
    pub smtputf8: bool,
    /// SIZE declared on MAIL, if any.
    pub declared_size: Option<u64>,
    pub authenticated_as: Option<String>,
    /// Whether the content came through BDAT rather than DATA.
    pub chunked: bool,
    /// The caller's time when the end of data arrived.
    pub received_at_ms: u64,
    /// RET on MAIL (RFC 3461 4.3), when the server offers DSN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn_return: Option<DsnReturn>,
    /// ENVID on MAIL (RFC 3461 4.4), decoded from xtext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<String>,
    /// NOTIFY and ORCPT of each accepted recipient, in the order of `forward_paths`; empty
    /// when the server does not offer DSN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipient_dsn: Vec<RecipientDsn>,
}

/// A message received at the end of DATA or BDAT LAST, not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub envelope: Envelope,
    /// The content, dot-unstuffed, as the client meant it.
    pub data: Vec<u8>,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    Quit,
    Timeout,
    TooManyErrors,
    TooManyAuthFailures,
    PeerClosed,
    InputOverflow,
    /// The policy refused the connection with 421 at the greeting (RFC 5321 3.8).
    ServiceUnavailable,
    /// The client ends its command lines with bare CR or LF (RFC 5321 2.3.8).
    BareLineEnding,
    /// The server is shutting down (RFC 5321 3.8).
    ShuttingDown,
    /// A BDAT chunk too large to count to its end (RFC 3030 2).
    ChunkTooLarge,
}

/// What happened in the session, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerEvent {
    /// A command line (or AUTH response) arrived, without its line end. A line longer than
    /// the limit is cut at the limit. Credentials are shown as `<credentials>`: the initial
    /// response of `AUTH PLAIN ...` and every line of an AUTH exchange (base64 is not
    /// encryption, and events end up in transcripts).
    CommandReceived {
        line: Vec<u8>,
    },
    ReplySent {
        reply: Reply,
        explanation: Explanation,
    },
    StateChanged {
        from: ServerStateKind,
        to: ServerStateKind,
    },
    Authenticated {
        identity: String,
    },
    /// The driver must store the message and then call [`ServerSession::message_stored`].
    /// Boxed: every other event is small, and events are moved through queues.
    MessageReceived {
        message: Box<ReceivedMessage>,
    },
    Closed {
        reason: CloseReason,
    },
}

/// The driver's answer about storing a received message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageOutcome {
    Stored { queue_id: Option<String> },
    Failed { reason: String },
}

/// Misuse of the session API by the driver (peer misbehaviour is never an error value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// `message_stored` was called with no message waiting.
    NoMessageAwaitingStorage,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message_stored called with no message awaiting storage")
    }
}

impl std::error::Error for SessionError {}

/// A list with at least one element: the recipients of a transaction that may send DATA.
#[derive(Clone, Debug)]
struct NonEmpty<T>(Vec<T>);

impl<T> NonEmpty<T> {
    fn new(first: T) -> Self {
        NonEmpty(vec![first])
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn push(&mut self, item: T) {
        self.0.push(item);
    }

    fn as_slice(&self) -> &[T] {
        &self.0
    }

    fn into_vec(self) -> Vec<T> {
        self.0
    }
}

/// A mail transaction begun by an accepted MAIL (RFC 5321 3.3).
#[derive(Clone, Debug)]
struct MailTransaction {
    reverse_path: ReversePath,
    params: Vec<EsmtpParam>,
    declared_size: Option<u64>,
    body: BodyType,
    smtputf8: bool,
    /// RCPT commands refused so far, to tell "no valid recipients" (554) from "no RCPT yet"
    /// (503) at DATA.
    rcpt_refused: u32,
    /// What the client asked of DSN, when the server offers it; boxed, as the transaction
    /// moves with every change of state and most servers do not offer DSN.
    dsn: Option<Box<TransactionDsn>>,
}

/// The DSN parameters of one mail transaction (RFC 3461 4).
#[derive(Clone, Debug, Default)]
struct TransactionDsn {
    ret: Option<DsnReturn>,
    envelope_id: Option<String>,
    /// One per accepted recipient, in the order they were accepted.
    recipients: Vec<RecipientDsn>,
}

#[derive(Clone, Debug)]
enum AuthStep {
    PlainResponse,
    LoginUsername,
    LoginPassword { username: String },
}

/// A mail transaction whose content arrives in BDAT chunks.
#[derive(Debug)]
struct ChunkedMessage {
    mail: MailTransaction,
    forward_paths: NonEmpty<ForwardPath>,
    reader: DataReader,
}

/// Where the octets of a BDAT chunk go.
#[derive(Debug)]
enum BdatTarget {
    /// Boxed: it is much larger than `Discard`, and a session holds one at most.
    Message(Box<ChunkedMessage>),
    /// The chunk is refused, but its octets must still be read (RFC 3030 2); then `reply` is
    /// sent and the session goes to `after`.
    Discard {
        reply: Reply,
        why: String,
        rfc: Cow<'static, str>,
        after: Box<State>,
    },
}

impl BdatTarget {
    /// A refused chunk: read and dropped, then `reply`, then `after`.
    fn discard(
        reply: Reply,
        why: impl Into<String>,
        rfc: impl Into<Cow<'static, str>>,
        after: State,
    ) -> BdatTarget {
        BdatTarget::Discard {
            reply,
            why: why.into(),
            rfc: rfc.into(),
            after: Box::new(after),
        }
    }
}

#[derive(Debug)]
enum State {
    ExpectHelo,
    ExpectMail,
    ExpectRcpt {
        mail: MailTransaction,
    },
    ExpectRcptOrData {
        mail: MailTransaction,
        forward_paths: NonEmpty<ForwardPath>,
    },
    ReceivingData {
        mail: MailTransaction,
        forward_paths: NonEmpty<ForwardPath>,
        reader: DataReader,
    },
    ReceivingBdat {
        /// The chunk size announced by BDAT.
        size: u64,
        remaining_octets: u64,
        last: bool,
        target: BdatTarget,
    },
    ExpectBdat {
        mail: MailTransaction,
        forward_paths: NonEmpty<ForwardPath>,
        reader: DataReader,
    },
    AwaitingStorage {
        /// Remarks for the final reply's explanation (e.g. over-long lines).
        note: String,
        /// Whether a last BDAT chunk, not DATA's final dot, ended the message.
        chunked: bool,
    },
    ExpectAuthResponse {
        step: AuthStep,
    },
    ExpectQuit,
    Closed,
}

impl State {
    fn kind(&self) -> ServerStateKind {
        match self {
            State::ExpectHelo => ServerStateKind::ExpectHelo,
            State::ExpectMail => ServerStateKind::ExpectMail,
            State::ExpectRcpt { .. } => ServerStateKind::ExpectRcpt,
            State::ExpectRcptOrData { .. } => ServerStateKind::ExpectRcptOrData,
            State::ReceivingData { .. } => ServerStateKind::ReceivingData,
            State::ReceivingBdat { .. } => ServerStateKind::ReceivingBdat,
            State::ExpectBdat { .. } => ServerStateKind::ExpectBdat,
            State::AwaitingStorage { .. } => ServerStateKind::AwaitingStorage,
            State::ExpectAuthResponse { .. } => ServerStateKind::ExpectAuthResponse,
            State::ExpectQuit => ServerStateKind::ExpectQuit,
            State::Closed => ServerStateKind::Closed,
        }
    }

    fn in_transaction(&self) -> bool {
        matches!(
            self,
            State::ExpectRcpt { .. } | State::ExpectRcptOrData { .. } | State::ExpectBdat { .. }
        )
    }
}

#[derive(Clone, Debug)]
struct Greeted {
    name: String,
    esmtp: bool,
    /// A HELO that came after an EHLO of this session, whose extensions it withdrew.
    helo_after_ehlo: bool,
}

/// How a command line ended.
enum LineScan {
    /// A line ended by CRLF (or, when normalising, by a bare LF): content range and octets
    /// consumed.
    Line {
        end: usize,
        consumed: usize,
    },
    /// A bare CR or LF in a command line (reject mode; a bare CR in normalize mode too): it
    /// does not end the line. Content range up to and with the bare octet, and octets
    /// consumed.
    Bare {
        kind: BareKind,
        end: usize,
        consumed: usize,
    },
    Incomplete,
}

/// Why the rest of a command line is being read and dropped up to its CRLF. Only CRLF ends a
/// line (RFC 5321 2.3.8), so whatever comes before it is part of the refused line and must
/// never run as a command.
enum SkippedLine {
    /// The line is over the length limit (RFC 5321 4.5.3.1.4); it is answered with 500 once
    /// its CRLF arrives. `head` is the octets a line may hold, shown in the event; `octets`
    /// is the limit that applied, CRLF included, and `limit` what set it.
    TooLong {
        head: Vec<u8>,
        limit: LineLimit,
        octets: usize,
        /// The chunk size, should the line be a BDAT line: read as the line goes by, since
        /// the size word may run past the head (leading zeros).
        bdat: BdatSizeScan,
    },
    /// The line had a bare CR or LF; it was answered with 500 at that octet.
    AfterBare,
    /// The line had a bare CR or LF after `BDAT` and a chunk size (`size`): the 500 waits
    /// until the line has ended and the chunk that follows it has been read and dropped, as
    /// for every refused BDAT (RFC 3030 2).
    BareBdat { kind: BareKind, size: u64 },
}

/// What sets the longest command line allowed. RFC 5321 4.5.3.1.4 sets 512 octets with the
/// CRLF and lets extensions raise it; the extensions that add MAIL parameters say by how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineLimit {
    /// Every command but MAIL, RCPT and AUTH.
    Command,
    /// RCPT: raised by 500 when this session's EHLO reply offered DSN (RFC 3461 3), for
    /// NOTIFY and ORCPT; otherwise as any command.
    Rcpt,
    /// MAIL: raised by the extensions this session's EHLO reply advertised
    /// (`ServerSession::mail_line_increases`).
    Mail,
    /// AUTH, and the lines of an AUTH exchange (RFC 4954 4: 12288 octets).
    Auth,
}

/// How much one extension raises the MAIL line limit, by the MAIL parameter it adds.
struct LineIncrease {
    extension: &'static str,
    octets: usize,
    rfc: &'static str,
}

/// RFC 3461 3 (6): the MAIL command line may be 100 characters longer, for RET and ENVID.
const DSN_MAIL_INCREASE: LineIncrease = LineIncrease {
    extension: "DSN",
    octets: 100,
    rfc: "RFC 3461 3",
};

/// RFC 3461 3 (5): the RCPT command line may be 500 characters longer, for NOTIFY and ORCPT.
const DSN_RCPT_INCREASE: LineIncrease = LineIncrease {
    extension: "DSN",
    octets: 500,
    rfc: "RFC 3461 3",
};

/// RFC 1870 3 (5): "the maximum length of a MAIL FROM command line is increased by 26
/// characters by the possible addition of the SIZE keyword and value".
const SIZE_INCREASE: LineIncrease = LineIncrease {
    extension: "SIZE",
    octets: 26,
    rfc: "RFC 1870 3",
};

/// RFC 6531 3.1 (5): "The maximum length of a MAIL command line is increased by 10
/// characters to accommodate the possible addition of the SMTPUTF8 parameter." MAIL only:
/// SMTPUTF8 adds no RCPT parameter.
const SMTPUTF8_INCREASE: LineIncrease = LineIncrease {
    extension: "SMTPUTF8",
    octets: 10,
    rfc: "RFC 6531 3.1",
};

/// RFC 4954 3 (5): the AUTH parameter of MAIL "extends the maximum line length of the MAIL
/// FROM command by 500 characters".
const AUTH_INCREASE: LineIncrease = LineIncrease {
    extension: "AUTH",
    octets: 500,
    rfc: "RFC 4954 3",
};

/// Reads the chunk size of a command line too long to keep, octet by octet as it is skipped,
/// as `bdat_chunk_size` reads it from a whole line: "BDAT", spaces or tabs, and digits that
/// end at a space, a tab or the end of the line. Only the line's first octets are kept, and
/// the size word may run past them (leading zeros, many blanks). A bare CR or LF ends the
/// digits too, as when a command line that fits has one after the size
/// (`ServerSession::bare_in_command`).
#[derive(Clone, Copy, Debug)]
enum BdatSizeScan {
    /// After "BDAT" and a blank: more blanks, or a digit.
    Start,
    Digits(u64),
    Done(Option<u64>),
}

impl BdatSizeScan {
    /// `head`: the first octets of the line.
    fn new(head: &[u8]) -> Self {
        let mut scan = BdatSizeScan::Done(None);
        if let Some(rest) = head
            .get(..5)
            .filter(|verb| {
                verb[..4].eq_ignore_ascii_case(b"BDAT") && matches!(verb[4], b' ' | b'\t')
            })
            .map(|_| &head[5..])
        {
            scan = BdatSizeScan::Start;
            scan.feed(rest);
        }
        scan
    }

    fn feed(&mut self, octets: &[u8]) {
        use BdatSizeScan::{Digits, Done, Start};
        for &octet in octets {
            *self = match (*self, octet) {
                (Done(_), _) => return,
                (Start, b' ' | b'\t') => Start,
                (Start, b'0'..=b'9') => Digits(u64::from(octet - b'0')),
                (Digits(size), b'0'..=b'9') => size
                    .checked_mul(10)
                    .and_then(|size| size.checked_add(u64::from(octet - b'0')))
                    .map_or(Done(None), Digits),
                (Digits(size), b' ' | b'\t' | b'\r' | b'\n') => Done(Some(size)),
                _ => Done(None),
            };
        }
    }

    /// The size, once the line has ended.
    fn size(self) -> Option<u64> {
        match self {
            BdatSizeScan::Start => None,
            BdatSizeScan::Digits(size) => Some(size),
            BdatSizeScan::Done(size) => size,
        }
    }
}

/// Whether `line` starts with `verb` (a command word and its space), without regard to case
/// (RFC 5321 2.4).
fn starts_with_verb(line: &[u8], verb: &[u8]) -> bool {
    line.get(..verb.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(verb))
}

/// What bounds the size of a message on this server.
#[derive(Clone, Copy, Debug)]
enum SizeLimit {
    /// The fixed maximum advertised as `SIZE n` (RFC 1870).
    Fixed(u64),
    /// `SIZE 0`: no fixed maximum (RFC 1870 4). The session still holds at most this many
    /// octets of a message in memory (`message_held_max_octets`).
    Held(u64),
}

impl SizeLimit {
    fn octets(self) -> u64 {
        match self {
            SizeLimit::Fixed(octets) | SizeLimit::Held(octets) => octets,
        }
    }

    /// The refusal of a message over the limit. RFC 3463 3.4: X.3.4 is "message too big for
    /// system", whichever limit it is.
    fn refusal(self) -> Reply {
        let text = match self {
            SizeLimit::Fixed(_) => "Message size exceeds fixed limit",
            SizeLimit::Held(_) => "Message too big for system",
        };
        reply(552, EnhancedStatus::new(5, 3, 4), text)
    }

    /// For the explanation of a refusal on the held limit.
    fn no_fixed_limit_note(octets: u64) -> String {
        format!(
            "this server has no fixed limit (SIZE 0 where it advertises SIZE, RFC 1870 4), but \
             it holds a message in memory while receiving it and takes at most {octets} octets"
        )
    }
}

const OK: EnhancedStatus = EnhancedStatus::new(2, 0, 0);
const SEQUENCE: EnhancedStatus = EnhancedStatus::new(5, 5, 1);
const BAD_ARGS: EnhancedStatus = EnhancedStatus::new(5, 5, 4);
const SYNTAX: EnhancedStatus = EnhancedStatus::new(5, 5, 2);

fn reply(code: u16, enhanced: EnhancedStatus, text: impl Into<String>) -> Reply {
    Reply::new(code, Some(enhanced), text)
}

/// A server of RFC 821's time's reply to a MAIL or RCPT parameter: RFC 821 has none, so to
/// it one is a syntax error.
fn rfc_821_parameter_error() -> Reply {
    reply(501, BAD_ARGS, "Syntax error in parameters or arguments")
}

/// One SMTP server session, from the greeting to the close.
pub struct ServerSession<P: Policy> {
    config: ServerConfig,
    policy: P,
    peer: PeerInfo,
    state: State,
    greeted: Option<Greeted>,
    authenticated_as: Option<String>,
    /// Bytes received and not yet processed.
    input: Vec<u8>,
    /// A refused command line whose rest is being dropped up to its CRLF.
    skipping: Option<SkippedLine>,
    output: Vec<u8>,
    events: VecDeque<ServerEvent>,
    errors: u32,
    /// `503` replies still to come that are not counted in `errors`: those a pipelining
    /// client's RCPT and DATA commands get after its MAIL was refused. It sent them before it
    /// could read MAIL's reply (RFC 2920 3.1), so they are no sign of a confused client. Any
    /// other command ends them.
    uncounted_sequence_replies: usize,
    /// `503` replies to BDAT still to come that are not counted in `errors`: those to the
    /// chunks a pipelining client sent after its MAIL was refused or after a chunk that
    /// failed, up to its last chunk, which the server must read and discard (RFC 3030 2). Any
    /// command but RCPT, DATA and BDAT ends them.
    uncounted_chunk_replies: usize,
    /// The BDAT whose chunk is being read came while a mail transaction was open.
    chunk_in_transaction: bool,
    auth_failures: u32,
    now_ms: u64,
    last_activity_ms: u64,
    /// A MessageReceived event is waiting for `message_stored`.
    storage_pending: bool,
    /// Input arrived beyond `pending_input_max_octets` while waiting for storage.
    input_overflowed: bool,
}

impl<P: Policy> ServerSession<P> {
    /// Starts a session for a new connection at `now_ms`: the greeting (or the policy's
    /// refusal) is ready in [`ServerSession::poll_output`].
    pub fn new(mut config: ServerConfig, policy: P, peer: PeerInfo, now_ms: u64) -> Self {
        if !config.extensions.ehlo {
            // A server without EHLO has no way to offer an extension, so it honours none
            // (RFC 5321 2.2.1), AUTH (RFC 4954) included; and its greeting is RFC 821
            // 4.2.2's, since "ESMTP" there would announce what it lacks.
            config.extensions = ServerExtensionSet::NONE;
            config.auth_enabled = false;
            config.greeting_text = "Service ready".into();
        }
        let mut session = ServerSession {
            config,
            policy,
            peer,
            state: State::ExpectHelo,
            greeted: None,
            authenticated_as: None,
            input: Vec::new(),
            skipping: None,
            output: Vec::new(),
            events: VecDeque::new(),
            errors: 0,
            uncounted_sequence_replies: 0,
            uncounted_chunk_replies: 0,
            chunk_in_transaction: false,
            auth_failures: 0,
            now_ms,
            last_activity_ms: now_ms,
            storage_pending: false,
            input_overflowed: false,
        };
        let info = session_info(
            &session.peer,
            &session.greeted,
            &session.authenticated_as,
            now_ms,
        );
        match session.policy.check_connect(&info) {
            // RFC 5321 3.8: a server that cannot serve now says 421 and closes at once.
            Decision::Respond { reply, why, rfc } if reply.code == 421 => {
                session.send(reply, why, rfc);
                session.close(CloseReason::ServiceUnavailable);
            }
            Decision::Respond { reply, why, rfc } if !reply.is_success() => {
                session.send(reply, why, rfc);
                session.state = State::ExpectQuit;
                session.events.push_back(ServerEvent::StateChanged {
                    from: ServerStateKind::ExpectHelo,
                    to: ServerStateKind::ExpectQuit,
                });
            }
            _ => {
                // RFC 5321 4.2 and RFC 2034 3: the greeting carries no enhanced code.
                let greeting = Reply::new(
                    220,
                    None,
                    format!(
                        "{} {}",
                        session.config.hostname, session.config.greeting_text
                    ),
                );
                session.send(
                    greeting,
                    "a new connection is greeted with 220 and the server's name; the client \
                     should wait for it before sending EHLO (or HELO)",
                    "RFC 5321 4.3.1",
                );
            }
        }
        session
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    pub fn state(&self) -> ServerStateKind {
        self.state.kind()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The identity the client authenticated as, if any.
    pub fn authenticated_as(&self) -> Option<&str> {
        self.authenticated_as.as_deref()
    }

    /// Bytes received from the peer at `now_ms`.
    pub fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        if self.is_closed() {
            return;
        }
        self.now_ms = now_ms;
        self.last_activity_ms = now_ms;
        let room = self
            .config
            .pending_input_max_octets
            .saturating_sub(self.input.len());
        if bytes.len() > room && matches!(self.state, State::AwaitingStorage { .. }) {
            // Replies must stay in order, so nothing can be answered before the storage
            // result; the excess is dropped and the session closes after that reply.
            self.input.extend_from_slice(&bytes[..room]);
            self.input_overflowed = true;
            return;
        }
        self.input.extend_from_slice(bytes);
        self.process();
    }

    /// The peer closed its side of the connection.
    pub fn handle_peer_closed(&mut self) {
        if self.is_closed() {
            return;
        }
        self.input.clear();
        self.close(CloseReason::PeerClosed);
    }

    /// When [`ServerSession::handle_timeout`] should next be called. None while closed or
    /// while a message is being stored (the client is waiting for us, not the reverse).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Closed | State::AwaitingStorage { .. } => None,
            _ => Some(
                self.last_activity_ms
                    .saturating_add(self.config.idle_timeout_ms),
            ),
        }
    }

    /// The caller's clock reached `now_ms`: closes an idle session with 421 4.4.2.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now_ms < deadline {
            return;
        }
        let lost = match self.state {
            State::ReceivingData { .. }
            | State::ReceivingBdat { .. }
            | State::ExpectBdat { .. } => " The message being received is discarded.",
            _ => "",
        };
        self.send(
            reply(
                421,
                EnhancedStatus::new(4, 4, 2),
                format!("{} Error: timeout exceeded", self.config.hostname),
            ),
            format!(
                "nothing arrived for {} s; RFC 5321 4.5.3.2.7 asks servers to wait at least \
                 5 minutes, then they may close with 421.{lost}",
                self.config.idle_timeout_ms / 1000
            ),
            "RFC 5321 4.5.3.2.7",
        );
        self.input.clear();
        self.close(CloseReason::Timeout);
    }

    /// The server is shutting down: it says so with 421 and closes, whatever the client is
    /// doing. RFC 5321 3.8 lets a server close a connection only after QUIT, a timeout, or a
    /// 421, which it may send "asynchronously from command receipt". A message being received
    /// is dropped: its client got no 250 for it, so the client still has it.
    ///
    /// While a received message awaits storage it does nothing: the message's reply (250 or
    /// not) must come first, or a stored message would get no 250 and come again; call it
    /// again after [`ServerSession::message_stored`].
    pub fn shut_down(&mut self, now_ms: u64) {
        if self.is_closed() || matches!(self.state, State::AwaitingStorage { .. }) {
            return;
        }
        self.now_ms = now_ms;
        let lost = match self.state {
            State::ReceivingData { .. }
            | State::ReceivingBdat { .. }
            | State::ExpectBdat { .. } => {
                " The message being received is dropped; the client got no 250 for the \
                 whole message, so it still has it and will retry."
            }
            _ => "",
        };
        self.send(
            reply(
                421,
                EnhancedStatus::new(4, 3, 2),
                format!(
                    "{} Service shutting down, closing transmission channel",
                    self.config.hostname
                ),
            ),
            format!(
                "the server is being stopped; a server may close a connection only after QUIT, \
                 a timeout or a 421, which says the service is going away for now (4.3.2: \
                 system not accepting messages).{lost}"
            ),
            "RFC 5321 3.8",
        );
        self.input.clear();
        self.close(CloseReason::ShuttingDown);
    }

    /// Bytes to send to the peer, all that are ready.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        if self.output.is_empty() {
            None
        } else {
            // A copy of exactly the bytes written, so that a caller who keeps them holds no
            // spare room; the session's buffer keeps its room for the next replies.
            let bytes = self.output.as_slice().to_vec();
            self.output.clear();
            Some(bytes)
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The driver stored (or failed to store) the message of the last `MessageReceived`: the
    /// reply to DATA or BDAT LAST goes out now (RFC 5321 4.1.1.4, 6.1: 250 means the server
    /// took responsibility), and input that arrived meanwhile is processed.
    pub fn message_stored(
        &mut self,
        outcome: StorageOutcome,
        now_ms: u64,
    ) -> Result<(), SessionError> {
        if !self.storage_pending {
            return Err(SessionError::NoMessageAwaitingStorage);
        }
        self.storage_pending = false;
        let from = self.state.kind();
        let State::AwaitingStorage { note, chunked } =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            // The peer closed or timed out while the message was being stored: there is
            // nobody to answer. A client that saw no 250 will send the message again.
            debug_assert!(self.is_closed(), "storage pending outside AwaitingStorage");
            self.state = State::Closed;
            return Ok(());
        };
        self.now_ms = now_ms;
        self.last_activity_ms = now_ms;
        match outcome {
            StorageOutcome::Stored { queue_id } => {
                let text = match &queue_id {
                    Some(id) => format!("OK: queued as {id}"),
                    None => "OK: message accepted".to_string(),
                };
                const STORED: &str = "the message is stored, so the server now owns it and \
                    answers 250; it sent nothing until the storage finished, because a 250 \
                    for a message that is then lost breaks RFC 5321 6.1.";
                let why: Cow<'static, str> = if note.is_empty() {
                    STORED.into()
                } else {
                    [STORED, note.as_str()].concat().into()
                };
                // RFC 3030 2: the reply to the last chunk is the message's, as the one after
                // DATA's final dot is.
                let rfc = if chunked {
                    "RFC 3030 2, RFC 5321 6.1"
                } else {
                    "RFC 5321 4.1.1.4, 6.1"
                };
                self.send(reply(250, OK, text), why, rfc);
            }
            StorageOutcome::Failed { reason } => {
                self.send(
                    reply(
                        451,
                        EnhancedStatus::new(4, 3, 0),
                        "Requested action aborted: local error in processing",
                    ),
                    format!(
                        "the message could not be stored ({reason}); a temporary failure \
                         makes the client keep it and retry later, so nothing is lost"
                    ),
                    "RFC 5321 4.2.5, 6.1",
                );
            }
        }
        self.enter(from, State::ExpectMail);
        if self.input_overflowed {
            self.send(
                reply(
                    421,
                    EnhancedStatus::new(4, 7, 0),
                    format!("{} Too much pipelined input", self.config.hostname),
                ),
                format!(
                    "more than {} octets arrived while the message was being stored; they \
                     cannot be answered in order, so the session closes",
                    self.config.pending_input_max_octets
                ),
                "RFC 5321 3.8",
            );
            self.input.clear();
            self.close(CloseReason::InputOverflow);
            return Ok(());
        }
        self.process();
        Ok(())
    }

    // ----- output helpers -------------------------------------------------------------

    fn send(
        &mut self,
        reply: Reply,
        why: impl Into<std::borrow::Cow<'static, str>>,
        rfc: impl Into<std::borrow::Cow<'static, str>>,
    ) {
        if reply.code == 503 && self.uncounted_sequence_replies > 0 {
            self.uncounted_sequence_replies -= 1;
        } else if matches!(reply.code, 500..=504 | 555) {
            self.errors = self.errors.saturating_add(1);
        }
        self.send_uncounted(reply, why, rfc);
    }

    /// Sends `reply` without counting it towards the error limit.
    fn send_uncounted(
        &mut self,
        reply: Reply,
        why: impl Into<std::borrow::Cow<'static, str>>,
        rfc: impl Into<std::borrow::Cow<'static, str>>,
    ) {
        let mut why = why.into();
        let reply = match reply.enhanced {
            // RFC 821 has no enhanced status codes: they are an ESMTP extension (RFC 2034).
            // What is said of the code is still true of what the reply means.
            Some(enhanced) if !self.config.extensions.ehlo => {
                let stop = if why.ends_with('.') { "" } else { "." };
                why = format!(
                    "{why}{stop} A server offering ENHANCEDSTATUSCODES (in a session begun \
                     with EHLO) would add the enhanced status code {enhanced}; this server of \
                     RFC 821's time sends none (RFC 2034 is an extension)"
                )
                .into();
                Reply {
                    enhanced: None,
                    ..reply
                }
            }
            _ => reply,
        };
        reply.write_wire(&mut self.output);
        let explanation = Explanation::for_reply(&reply, why, rfc);
        self.events
            .push_back(ServerEvent::ReplySent { reply, explanation });
    }

    fn enter(&mut self, from: ServerStateKind, state: State) {
        let to = state.kind();
        self.state = state;
        if from != to {
            self.events
                .push_back(ServerEvent::StateChanged { from, to });
        }
    }

    fn close(&mut self, reason: CloseReason) {
        let from = self.state.kind();
        self.enter(from, State::Closed);
        self.events.push_back(ServerEvent::Closed { reason });
    }

    fn size_limit(&self) -> SizeLimit {
        match self.config.message_size_max_octets {
            0 => SizeLimit::Held(self.config.message_held_max_octets),
            octets => SizeLimit::Fixed(octets),
        }
    }

    /// The state to go to when a transaction ends or is reset.
    fn idle_state(&self) -> State {
        if self.greeted.is_some() {
            State::ExpectMail
        } else {
            State::ExpectHelo
        }
    }

    // ----- input processing ------------------------------------------------------------

    fn process(&mut self) {
        let input = std::mem::take(&mut self.input);
        let mut pos = 0;
        loop {
            match &mut self.state {
                State::Closed => {
                    pos = input.len();
                    break;
                }
                State::AwaitingStorage { .. } => break,
                State::ReceivingData { reader, .. } => {
                    pos += reader.feed(&input[pos..]);
                    if reader.ended() {
                        self.finish_data();
                    } else {
                        debug_assert_eq!(pos, input.len(), "data reader stops only at the end");
                        break;
                    }
                }
                State::ReceivingBdat {
                    remaining_octets,
                    target,
                    ..
                } => {
                    let available = (input.len() - pos) as u64;
                    let take = (*remaining_octets).min(available);
                    // `take` is at most `available`, which came from a usize.
                    let end = pos + take as usize;
                    if let BdatTarget::Message(message) = target {
                        message.reader.feed(&input[pos..end]);
                    }
                    pos = end;
                    *remaining_octets -= take;
                    if *remaining_octets == 0 {
                        self.finish_chunk();
                    } else {
                        break;
                    }
                }
                _ => {
                    let rest = &input[pos..];
                    if self.skipping.is_none() {
                        // The text before the first CR or LF already exceeds the limit: skip
                        // the line from here, whatever way the bytes were split (RFC 5321
                        // 4.5.3.1.4). The event shows the octets a line may hold.
                        let limit = self.line_limit(rest);
                        let octets = self.limit_octets(limit);
                        let content = rest
                            .iter()
                            .position(|&b| b == b'\r' || b == b'\n')
                            .unwrap_or(rest.len());
                        if content + 2 > octets {
                            let head = octets.saturating_sub(2);
                            self.skipping = Some(SkippedLine::TooLong {
                                head: rest[..head].to_vec(),
                                limit,
                                octets,
                                bdat: BdatSizeScan::new(&rest[..head]),
                            });
                            pos += head;
                            continue;
                        }
                    }
                    match self.scan_line(rest) {
                        LineScan::Incomplete => {
                            if self.skipping.is_some() {
                                // Nothing kept of a skipped line, so that it cannot fill memory
                                // however long it is. A CR at the very end may be the start of
                                // the CRLF that ends the line, so it is kept.
                                let trailing_cr = usize::from(rest.last() == Some(&b'\r'));
                                let end = input.len() - trailing_cr;
                                self.skip_octets(&input[pos..end]);
                                pos = end;
                            }
                            break;
                        }
                        LineScan::Line { end, consumed } => {
                            let line = &input[pos..pos + end];
                            pos += consumed;
                            match self.skipping.take() {
                                Some(SkippedLine::TooLong {
                                    head,
                                    limit,
                                    octets,
                                    mut bdat,
                                }) => {
                                    bdat.feed(line);
                                    self.line_too_long(head, limit, octets, bdat.size());
                                }
                                // Already answered at its bare octet: every command gets exactly
                                // one reply (RFC 5321 4.2), or a pipelining client falls out of
                                // step (RFC 2920).
                                Some(SkippedLine::AfterBare) => {}
                                Some(SkippedLine::BareBdat { kind, size }) => {
                                    self.bare_in_bdat(kind, size);
                                }
                                None => self.handle_line(line),
                            }
                        }
                        LineScan::Bare {
                            kind,
                            end,
                            consumed,
                        } => {
                            let line = &input[pos..pos + end];
                            pos += consumed;
                            if matches!(
                                self.skipping,
                                Some(SkippedLine::AfterBare | SkippedLine::BareBdat { .. })
                            ) {
                                // A second bare octet before any CRLF: this client ends its
                                // lines that way (`nc` without -C, a script's "\n") and would
                                // wait for replies that never come, so it is told and closed.
                                self.skipping = None;
                                self.bare_again(kind);
                            } else if self.skipping.is_some() {
                                // Inside an over-long line: unanswered, but still a protocol
                                // error, counted one octet at a time so that the 421 comes at
                                // the same point however the input was split.
                                self.errors = self.errors.saturating_add(1);
                                self.skip_octets(line);
                            } else {
                                self.skipping = Some(self.bare_in_command(kind, line));
                            }
                        }
                    }
                }
            }
            if self.errors >= self.config.errors_max && !self.is_closed() {
                self.send(
                    reply(
                        421,
                        EnhancedStatus::new(4, 7, 0),
                        format!(
                            "{} Too many errors, closing connection",
                            self.config.hostname
                        ),
                    ),
                    format!(
                        "{} protocol errors in one session: every reply from 500 to 504 and \
                         555 counts (a command not understood, out of order or not offered, a \
                         bad argument), but the 503s a pipelining client's RCPT and DATA get \
                         after its MAIL was refused (up to 101), and its BDATs after a refused \
                         MAIL or a failed chunk (up to 100, until its last chunk). RFC 5321 3.8 \
                         asks a server to \
                         answer commands it does not understand with 500 and carry on, but \
                         7.8 lets it defend itself: a client this confused (or attacking) is \
                         closed after a reasonable number of error replies rather than \
                         answered forever (Postfix closes after 20 by default, \
                         smtpd_hard_error_limit)",
                        self.errors
                    ),
                    "RFC 5321 7.8, 3.8",
                );
                self.close(CloseReason::TooManyErrors);
            }
        }
        let mut rest = input;
        rest.drain(..pos);
        if rest.len() > self.config.pending_input_max_octets {
            // Only possible while awaiting storage: everywhere else input is consumed.
            debug_assert!(matches!(self.state, State::AwaitingStorage { .. }));
            rest.truncate(self.config.pending_input_max_octets);
            self.input_overflowed = true;
        }
        self.input = rest;
    }

    /// What sets the longest line allowed for what `line` starts with. The verb is known
    /// from the first octets of a line, and the line is kept until its CRLF, so the limit is
    /// decided again with each piece that arrives: a line is cut off at the limit of its own
    /// verb, never buffered beyond the largest (the AUTH limit).
    fn line_limit(&self, line: &[u8]) -> LineLimit {
        // AUTH's longer limit is AUTH's own: only where this session's EHLO reply offered it.
        if matches!(self.state, State::ExpectAuthResponse { .. })
            || (starts_with_verb(line, b"AUTH ") && self.esmtp() && self.config.auth_enabled)
        {
            LineLimit::Auth
        } else if starts_with_verb(line, b"MAIL ") {
            LineLimit::Mail
        } else if starts_with_verb(line, b"RCPT ") {
            LineLimit::Rcpt
        } else {
            LineLimit::Command
        }
    }

    /// Whether the session was greeted with EHLO, which enables extensions (RFC 5321 2.2.1).
    fn esmtp(&self) -> bool {
        self.greeted.as_ref().is_some_and(|greeted| greeted.esmtp)
    }

    /// Why no extension may be used in this session as it stands (`esmtp()` is false), for
    /// explanations: the greeting so far decides (RFC 5321 2.2.1, 4.1.4).
    fn why_no_extensions(&self) -> &'static str {
        if !self.config.extensions.ehlo {
            return "this server of RFC 821's time offers none";
        }
        match &self.greeted {
            Some(greeted) if greeted.helo_after_ehlo => {
                "the session's last greeting was HELO, which took back the extensions the \
                 earlier EHLO reply had offered: this server treats a new HELO as it must a \
                 new EHLO (RFC 5321 4.1.4), as a reset, and after HELO no extension applies"
            }
            Some(_) => "this session's greeting was HELO, which enables none",
            None => "no EHLO of this session has been accepted",
        }
    }

    /// The longest line `limit` allows in this session, CRLF included.
    fn limit_octets(&self, limit: LineLimit) -> usize {
        match limit {
            LineLimit::Command => self.config.command_line_max_octets,
            LineLimit::Rcpt => {
                self.rcpt_line_increase()
                    .map_or(self.config.command_line_max_octets, |increase| {
                        self.config
                            .command_line_max_octets
                            .saturating_add(increase.octets)
                    })
            }
            LineLimit::Mail => self
                .mail_line_increases()
                .fold(self.config.command_line_max_octets, |octets, increase| {
                    octets.saturating_add(increase.octets)
                }),
            LineLimit::Auth => self.config.auth_line_max_octets,
        }
    }

    /// The extensions whose MAIL parameters raise the MAIL line limit in this session: those
    /// the EHLO reply advertised (SIZE always). None after HELO or before any greeting, since
    /// a client may use only the extensions the server listed (RFC 5321 2.2.1, 4.1.1.1).
    /// 8BITMIME is not among them: RFC 6152 adds the BODY parameter but states no increase
    /// (" BODY=8BITMIME" is 14 octets, and a path of at most 256 leaves room for it in 512).
    fn mail_line_increases(&self) -> impl Iterator<Item = &'static LineIncrease> {
        let esmtp = self.esmtp();
        [
            (true, &SIZE_INCREASE),
            (self.config.extensions.offers_smtputf8(), &SMTPUTF8_INCREASE),
            (self.config.auth_enabled, &AUTH_INCREASE),
            (self.config.extensions.dsn, &DSN_MAIL_INCREASE),
        ]
        .into_iter()
        .filter(move |(advertised, _)| esmtp && *advertised)
        .map(|(_, increase)| increase)
    }

    /// DSN's increase of the RCPT line limit, when this session's EHLO reply offered DSN.
    fn rcpt_line_increase(&self) -> Option<&'static LineIncrease> {
        (self.esmtp() && self.config.extensions.dsn).then_some(&DSN_RCPT_INCREASE)
    }

    /// Whether a bare LF ends command lines and a bare CR or LF in message data is stored as
    /// CRLF (`BareLineEnding::Normalize`).
    fn normalizes_bare_lf(&self) -> bool {
        self.config.bare_line_ending == BareLineEnding::Normalize
    }

    /// Finds the end of the command line at the start of `bytes`, or its first bare CR or
    /// LF. Only CRLF ends a line (RFC 5321 2.3.8); in normalize mode a bare LF ends it too,
    /// as `nc` without `-C` and Postfix's `smtpd_forbid_bare_newline = normalize` have it. A
    /// bare CR never does: taking it as an end would let `MAIL FROM:<a>\rRCPT TO:<b>` pass as
    /// two commands where a CRLF-reading server sees one.
    fn scan_line(&self, bytes: &[u8]) -> LineScan {
        let normalize = self.normalizes_bare_lf();
        let Some(i) = bytes.iter().position(|&b| b == b'\r' || b == b'\n') else {
            return LineScan::Incomplete;
        };
        let kind = if bytes[i] == b'\n' {
            BareKind::Lf
        } else {
            match bytes.get(i + 1) {
                None => return LineScan::Incomplete,
                Some(b'\n') => {
                    return LineScan::Line {
                        end: i,
                        consumed: i + 2,
                    }
                }
                Some(_) => BareKind::Cr,
            }
        };
        if normalize && kind == BareKind::Lf {
            return LineScan::Line {
                end: i,
                consumed: i + 1,
            };
        }
        LineScan::Bare {
            kind,
            end: i + 1,
            consumed: i + 1,
        }
    }

    /// Octets of a line being skipped go by without being kept.
    fn skip_octets(&mut self, octets: &[u8]) {
        if let Some(SkippedLine::TooLong { bdat, .. }) = &mut self.skipping {
            bdat.feed(octets);
        }
    }

    /// `chunk`: the chunk size, should the line be a BDAT line whose size could be read.
    fn line_too_long(
        &mut self,
        head: Vec<u8>,
        limit: LineLimit,
        octets: usize,
        chunk: Option<u64>,
    ) {
        let in_auth_exchange = matches!(self.state, State::ExpectAuthResponse { .. });
        self.report_command(&head, in_auth_exchange);
        if !in_auth_exchange {
            self.command_seen(chunk.map(|_| Verb::Bdat));
        }
        let base = self.config.command_line_max_octets;
        let (what, rfc) = match limit {
            LineLimit::Rcpt if self.rcpt_line_increase().is_some() => (
                format!(
                    "the RCPT command line is longer than {octets} octets including CRLF: \
                     {base} (RFC 5321 4.5.3.1.4) plus 500 for the NOTIFY and ORCPT parameters \
                     of DSN, which this server advertised in its EHLO reply"
                ),
                "RFC 5321 4.5.3.1.4, RFC 3461 3".to_string(),
            ),
            LineLimit::Command | LineLimit::Rcpt => (
                format!(
                    "the command line is longer than {octets} octets including CRLF, the limit \
                     of RFC 5321 4.5.3.1.4 for a command that no advertised extension extends"
                ),
                "RFC 5321 4.5.3.1.4".to_string(),
            ),
            LineLimit::Mail => {
                let increases: Vec<&LineIncrease> = self.mail_line_increases().collect();
                if increases.is_empty() {
                    let greeting = self.why_no_extensions();
                    (
                        format!(
                            "the MAIL command line is longer than {octets} octets including \
                             CRLF (RFC 5321 4.5.3.1.4). Extensions raise that limit for MAIL \
                             by the parameters they add, but only once the EHLO reply has \
                             listed them, and {greeting}"
                        ),
                        "RFC 5321 4.5.3.1.4".to_string(),
                    )
                } else {
                    let parts: Vec<String> = increases
                        .iter()
                        .map(|i| format!("{} for {} ({})", i.octets, i.extension, i.rfc))
                        .collect();
                    let rfcs: Vec<&str> = increases.iter().map(|i| i.rfc).collect();
                    (
                        format!(
                            "the MAIL command line is longer than {octets} octets including \
                             CRLF: {base} (RFC 5321 4.5.3.1.4) plus {}, for the MAIL \
                             parameters of the extensions this server advertised in its EHLO \
                             reply",
                            join_words(&parts)
                        ),
                        format!("RFC 5321 4.5.3.1.4, {}", rfcs.join(", ")),
                    )
                }
            }
            LineLimit::Auth => (
                format!(
                    "the AUTH line is longer than {octets} octets including CRLF, the limit of \
                     RFC 4954 4 for AUTH commands and the responses of an AUTH exchange"
                ),
                "RFC 4954 4".to_string(),
            ),
        };
        let refusal = match limit {
            // RFC 4954 6: "500 5.5.6 Authentication Exchange line is too long".
            LineLimit::Auth => reply(
                500,
                EnhancedStatus::new(5, 5, 6),
                format!("Authentication Exchange line is too long (limit {octets} octets)"),
            ),
            _ => reply(
                500,
                SYNTAX,
                format!("Line too long (limit {octets} octets)"),
            ),
        };
        let why = format!(
            "{what}; it is skipped up to its CRLF. aiosmtpd also answers 500, while Postfix \
             and Exim accept much longer command lines"
        );
        // Only a command line can be BDAT: in an AUTH exchange a line is a response.
        if let Some(size) = chunk.filter(|_| !in_auth_exchange) {
            self.drop_refused_chunk(
                refusal,
                &format!("{why}. The line starts with BDAT and a chunk size"),
                rfc.into(),
                size,
            );
            return;
        }
        self.send(refusal, why, rfc);
        if in_auth_exchange {
            let from = self.state.kind();
            let idle = self.idle_state();
            self.enter(from, idle);
        }
    }

    /// A bare CR or LF in a command line (reject mode; a bare CR in normalize mode too), `line`
    /// up to and with it: answered at once, unless the line starts with BDAT and a chunk size.
    /// Returns how the rest of the line is to be skipped.
    fn bare_in_command(&mut self, kind: BareKind, line: &[u8]) -> SkippedLine {
        let in_auth_exchange = matches!(self.state, State::ExpectAuthResponse { .. });
        self.report_command(line, in_auth_exchange);
        // The text before the bare octet is whole: the size word cannot go on past it.
        let before = &line[..line.len().saturating_sub(1)];
        if !in_auth_exchange {
            let size = bdat_chunk_size(before);
            self.command_seen(size.map(|_| Verb::Bdat));
            if let Some(size) = size {
                return SkippedLine::BareBdat { kind, size };
            }
        }
        let name = kind.name();
        let why = if self.normalizes_bare_lf() {
            format!(
                "a {name} not paired with LF never ends a line (RFC 5321 2.3.8). This server \
                 takes a bare LF as a line end (its normalize setting, for clients like `nc` \
                 that send one), but not a bare {name}: taken as an end, it would make one line \
                 two commands where other servers see one. The server answers at once and \
                 then drops the rest of the line, up to its CR LF or bare LF, without another \
                 reply: it is still the same line, it gets one reply (RFC 5321 4.2), and text \
                 after a bare {name} must not run as a command. A second bare {name} before \
                 that closes the connection"
            )
        } else {
            let (unpaired, sender) = match kind {
                BareKind::Lf => (
                    "an <LF> without the <CR> before it",
                    " (as `nc` without -C does)",
                ),
                BareKind::Cr => ("a <CR> without the <LF> after it", ""),
            };
            format!(
                "{unpaired} never ends a line (RFC 5321 2.3.8), so the line goes on to the \
                 next CR LF and is not a command. The server answers at once, so that a \
                 client that ends its lines with a bare {name}{sender} sees an answer, and \
                 then drops the rest of the line up to its CR LF without another reply: it is \
                 still the same line, it gets one reply (RFC 5321 4.2), and text after a bare \
                 {name} must not run as a command. Send CR LF (`nc -C`): a second bare CR or \
                 LF before it closes the connection. Postfix with \
                 smtpd_forbid_bare_newline=reject answers 550 5.5.2 and closes the connection \
                 at the first bare LF (it does not check bare CR)"
            )
        };
        self.send(
            reply(
                500,
                SYNTAX,
                format!("Bare {name} in command line; end lines with <CR><LF>"),
            ),
            why,
            "RFC 5321 2.3.8",
        );
        if in_auth_exchange {
            let from = self.state.kind();
            let idle = self.idle_state();
            self.enter(from, idle);
        }
        SkippedLine::AfterBare
    }

    /// The CRLF has ended a line that started with BDAT and a chunk size and had a bare CR or
    /// LF after them. Where the chunk begins depends on who is right about where the line
    /// ends: RFC 5321 2.3.8 says at the CRLF, a client that ends lines with a bare LF puts it
    /// right after the bare octet. Reading `size` octets after the CRLF, with the rest of the
    /// line dropped before them, drops every octet of the chunk in either reading, so none of
    /// them can run as a command.
    fn bare_in_bdat(&mut self, kind: BareKind, size: u64) {
        let name = kind.name();
        // In normalize mode only a bare CR gets here, and a bare LF ends the line.
        let (line_end, second) = if self.normalizes_bare_lf() {
            (
                "its CR LF or bare LF (this server takes a bare LF as a line end)",
                "CR",
            )
        } else {
            ("the next CR LF", "CR or LF")
        };
        self.drop_refused_chunk(
            reply(
                500,
                SYNTAX,
                format!("Bare {name} in command line; end lines with <CR><LF>"),
            ),
            &format!(
                "a bare {name}, not part of a CR LF pair, never ends a line (RFC 5321 2.3.8), \
                 so the line went on to {line_end} and is not a command; it was dropped up to \
                 there. \
                 It starts with BDAT and a chunk size before the bare {name}, so the answer \
                 waited for the line's end and its chunk, taken to follow that end: with the \
                 rest of the line, that drops every octet a client that ends lines with a bare \
                 {name} meant as the chunk too. Send CR LF (`nc -C`): a second bare {second} \
                 before the line's end closes the connection"
            ),
            "RFC 5321 2.3.8".into(),
            size,
        );
    }

    /// A client that ends its command lines with bare CR or LF: answering each would make
    /// two replies for one line, and not answering leaves it waiting, so the session ends,
    /// with 421 before closing (RFC 5321 3.8), as a server's defence (7.8).
    fn bare_again(&mut self, kind: BareKind) {
        let name = kind.name();
        self.send(
            reply(
                421,
                EnhancedStatus::new(4, 5, 0),
                format!(
                    "{} Bare {name} again; end lines with <CR><LF>, closing connection",
                    self.config.hostname
                ),
            ),
            if self.normalizes_bare_lf() {
                // Only a bare CR gets here: this server takes a bare LF as a line end.
                format!(
                    "a second bare {name} before the end of a line already answered for one: \
                     this client ends its lines with bare CR and will not get the one reply per \
                     line it waits for, so the server closes the connection. RFC 5321 2.3.8 \
                     says only that lines end with CR LF; closing is the server defending \
                     itself against a client it cannot serve, which 7.8 allows"
                )
            } else {
                format!(
                    "another bare CR or LF (this one a {name}) before the end of a line already \
                     answered for one: this client ends its lines without CR LF and will not \
                     get the one reply per line it waits for, so the server closes the \
                     connection. RFC 5321 2.3.8 says only that lines end with CR LF; closing is \
                     the server defending itself against a client it cannot serve, which 7.8 \
                     allows. Postfix with smtpd_forbid_bare_newline=reject answers 550 5.5.2 \
                     and closes the connection at the first bare LF (it does not check bare CR)"
                )
            },
            "RFC 5321 2.3.8, 7.8",
        );
        self.close(CloseReason::BareLineEnding);
    }

    /// A `CommandReceived` event for `line`, when the driver wants them.
    fn report_command(&mut self, line: &[u8], in_auth_exchange: bool) {
        if self.config.command_events {
            self.events.push_back(ServerEvent::CommandReceived {
                line: shown_line(line, in_auth_exchange),
            });
        }
    }

    fn handle_line(&mut self, line: &[u8]) {
        let in_auth_exchange = matches!(self.state, State::ExpectAuthResponse { .. });
        self.report_command(line, in_auth_exchange);
        if let State::ExpectAuthResponse { .. } = self.state {
            self.auth_response(line);
            return;
        }
        let parsed = parse_command(line);
        let verb = match &parsed {
            Ok(command) => Some(command.verb()),
            Err(error) => error.verb,
        };
        self.command_seen(verb);
        if let Some(verb) = verb.filter(|&verb| self.unknown_to_rfc_821(verb)) {
            // EHLO's 500 is what tells a client to fall back to HELO; AUTH and STARTTLS are
            // simply commands this server does not know.
            let (why, rfc) = if verb == Verb::Ehlo {
                (
                    "this server is of RFC 821's time and does not know EHLO, whatever its \
                     arguments, so it answers 500 and stays where it was; a client whose EHLO \
                     is refused this way starts again with HELO (the built-in sending client does \
                     after 500, 501, 502 or 504), and then uses no extension"
                        .to_string(),
                    "RFC 1869 4.6, RFC 5321 3.2",
                )
            } else {
                (
                    format!(
                        "this server is of RFC 821's time and does not know {verb}, whatever \
                         its arguments: {verb} belongs to an extension, which only an EHLO \
                         reply can offer. An unknown command gets 500 and changes nothing"
                    ),
                    "RFC 5321 2.2.1, 4.2.4",
                )
            };
            self.send(Reply::new(500, None, "Command unrecognized"), why, rfc);
            return;
        }
        self.handle_parsed(line, parsed);
        // A refused MAIL, with no transaction open: what a pipelining client sent after it
        // gets 503 uncounted. A client batches as many RCPTs as it means to send in one
        // transaction, which it learns is too many only from a 452: at least the 100 every
        // server must take (RFC 5321 4.5.3.1.8), or more where this one takes more.
        // Only a client that saw PIPELINING in an EHLO reply may pipeline (RFC 2920 3.1).
        if verb == Some(Verb::Mail)
            && matches!(self.state, State::ExpectMail | State::ExpectHelo)
            && !self.is_closed()
            && self.esmtp()
            && self.config.extensions.pipelining
        {
            self.uncounted_sequence_replies = self
                .config
                .recipients_max
                .max(RECIPIENTS_MIN)
                .saturating_add(1);
            self.uncounted_chunk_replies = PIPELINED_CHUNKS_MAX;
        }
    }

    /// Whether this server, being of RFC 821's time (no `ehlo`), answers `verb` as an unknown
    /// command (RFC 1869 4.6: such a server "will not recognize the EHLO command"). BDAT is
    /// answered as a command not offered, so that its chunk is still read and dropped. In a
    /// session refused at the greeting, every command but QUIT gets that session's 503
    /// (RFC 5321 3.1), these too.
    fn unknown_to_rfc_821(&self, verb: Verb) -> bool {
        !self.config.extensions.ehlo
            && matches!(verb, Verb::Ehlo | Verb::Auth | Verb::Starttls)
            && !matches!(self.state, State::ExpectQuit)
    }

    /// A line held a command (`verb`; `None` when none could be read): what a pipelining
    /// client sent after a refused MAIL or a failed chunk ends at any other command.
    fn command_seen(&mut self, verb: Option<Verb>) {
        if !matches!(verb, Some(Verb::Rcpt | Verb::Data | Verb::Bdat)) {
            self.uncounted_sequence_replies = 0;
            self.uncounted_chunk_replies = 0;
        }
        if verb == Some(Verb::Bdat) {
            self.chunk_in_transaction = matches!(
                self.state,
                State::ExpectRcpt { .. }
                    | State::ExpectRcptOrData { .. }
                    | State::ExpectBdat { .. }
            );
        }
    }

    fn handle_parsed(&mut self, line: &[u8], parsed: Result<Command, CommandError>) {
        let command = match parsed {
            Ok(command) => command,
            Err(error) => {
                if error.verb == Some(Verb::Bdat) {
                    if bdat_chunk_size_overflows(line) {
                        self.bdat_chunk_unskippable();
                    } else {
                        self.bdat_malformed(&error, bdat_chunk_size(line));
                    }
                    return;
                }
                if matches!(self.state, State::ExpectQuit) {
                    self.refused_session(error.verb);
                    return;
                }
                if error.verb == Some(Verb::Auth) && !self.config.auth_enabled {
                    self.auth_not_available();
                    return;
                }
                let in_sequence = match error.verb {
                    Some(Verb::Mail) => self.mail_in_sequence(),
                    Some(Verb::Rcpt) => self.rcpt_in_sequence(),
                    _ => true,
                };
                if in_sequence {
                    self.send(error.reply(), error.why.clone(), error.rfc);
                }
                return;
            }
        };
        if matches!(self.state, State::ExpectQuit) {
            match command {
                Command::Quit => self.quit(),
                Command::Bdat { size, last } => {
                    let from = self.state.kind();
                    let target = BdatTarget::discard(
                        reply(503, SEQUENCE, "Only QUIT is accepted now"),
                        "this server refused the connection at the greeting; the chunk's \
                         octets were read and dropped",
                        "RFC 5321 3.1, RFC 3030 2",
                        State::ExpectQuit,
                    );
                    self.receive_chunk(from, size, last, target);
                }
                other => self.refused_session(Some(other.verb())),
            }
            return;
        }
        match command {
            Command::Ehlo { domain } => self.hello(domain, true),
            Command::Helo { domain } => self.hello(domain, false),
            Command::Mail {
                reverse_path,
                params,
                source_route,
            } => self.mail(reverse_path, params, source_route),
            Command::Rcpt {
                forward_path,
                params,
                source_route,
            } => self.rcpt(forward_path, params, source_route),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => self.rset(),
            Command::Noop { .. } => self.send(
                reply(250, OK, "OK"),
                "NOOP does nothing and always succeeds; any argument is ignored",
                "RFC 5321 4.1.1.9",
            ),
            Command::Quit => self.quit(),
            Command::Vrfy { query } => self.vrfy(&query),
            Command::Expn { .. } => self.send(
                reply(502, SEQUENCE, "EXPN not implemented"),
                "this server does not implement EXPN, which RFC 5321 leaves optional (4.5.1 \
                 lists the commands every server must implement, and EXPN is not one); 502 \
                 is one of EXPN's replies in 4.3.2. A server that has EXPN but disables it \
                 for security (it would reveal a list's members) answers 252 instead (7.3)",
                "RFC 5321 4.5.1, 4.3.2, 7.3",
            ),
            Command::Help { .. } => self.help(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(&mechanism, initial_response.as_deref()),
            Command::Starttls => self.send(
                reply(502, SEQUENCE, "STARTTLS not implemented"),
                "this teaching server has no TLS; STARTTLS is not advertised in the EHLO \
                 reply, and an unadvertised command may be answered 502",
                "RFC 3207 4, RFC 5321 4.2.4",
            ),
        }
    }

    /// The 503 for a command other than QUIT (of `verb`, if known) in a refused session.
    fn refused_session(&mut self, verb: Option<Verb>) {
        // RFC 2034 3 and 4: no enhanced status code on the replies to EHLO and HELO.
        let refusal = if matches!(verb, Some(Verb::Ehlo | Verb::Helo)) {
            Reply::new(503, None, "Only QUIT is accepted now")
        } else {
            reply(503, SEQUENCE, "Only QUIT is accepted now")
        };
        self.send(
            refusal,
            "this server refused the connection at the greeting (554); RFC 5321 3.1 says it \
             must then wait for QUIT, and should answer everything else with 503",
            "RFC 5321 3.1",
        );
    }

    // ----- commands --------------------------------------------------------------------

    fn hello(&mut self, name: String, esmtp: bool) {
        let from = self.state.kind();
        let reset = self.state.in_transaction();
        let helo_after_ehlo = !esmtp
            && self
                .greeted
                .as_ref()
                .is_some_and(|greeted| greeted.esmtp || greeted.helo_after_ehlo);
        self.greeted = Some(Greeted {
            name: name.clone(),
            esmtp,
            helo_after_ehlo,
        });
        let host = self.config.hostname.clone();
        let greets = greets_line(&host, &name);
        let reset_note = if reset {
            " It came in the middle of a mail transaction, which is reset as if by RSET \
             (RFC 5321 4.1.4)."
        } else {
            ""
        };
        // RFC 2034 3: no enhanced status codes on the replies to EHLO and HELO.
        if esmtp {
            let offered = self.config.extensions;
            let mut lines = vec![greets];
            if offered.pipelining {
                lines.push("PIPELINING".into());
            }
            lines.push(format!("SIZE {}", self.config.message_size_max_octets));
            if offered.eight_bit_mime {
                lines.push("8BITMIME".into());
            }
            if offered.offers_smtputf8() {
                lines.push("SMTPUTF8".into());
            }
            lines.push("ENHANCEDSTATUSCODES".into());
            if offered.chunking {
                lines.push("CHUNKING".into());
            }
            if offered.dsn {
                lines.push("DSN".into());
            }
            if self.config.auth_enabled {
                lines.push("AUTH PLAIN LOGIN".into());
            }
            // What each keyword means is said from the reply's own lines, where it is shown
            // (`explain::ehlo_keywords`), not written for every session.
            let why: Cow<'static, str> = if reset {
                Cow::Owned(format!("{EHLO_WHY}{reset_note}"))
            } else {
                Cow::Borrowed(EHLO_WHY)
            };
            self.send(Reply::multiline(250, None, lines), why, "RFC 5321 4.1.1.1");
        } else {
            let why = if self.config.extensions.ehlo {
                "HELO starts a plain SMTP session with no extensions; the client should use \
                 EHLO to learn them."
            } else {
                "HELO starts a plain SMTP session, the only kind this server of RFC 821's time \
                 knows: no extension can be used."
            };
            self.send(
                Reply::new(250, None, greets),
                format!("{why}{reset_note}"),
                "RFC 5321 4.1.1.1",
            );
        }
        self.enter(from, State::ExpectMail);
    }

    /// Answers 503 and returns false when MAIL is out of sequence. Sequence is checked before
    /// the arguments' syntax, as Postfix does: "need EHLO first" helps more than a syntax
    /// error about an address that could not have been used anyway.
    fn mail_in_sequence(&mut self) -> bool {
        if self.greeted.is_none() {
            self.send(
                reply(
                    503,
                    SEQUENCE,
                    if self.config.extensions.ehlo {
                        "Send EHLO or HELO first"
                    } else {
                        "Send HELO first"
                    },
                ),
                "a mail transaction can only start after EHLO or HELO (RFC 5321 4.1.4); \
                 aiosmtpd and Exim answer 503 too, Postfix accepts MAIL before EHLO in its \
                 default configuration",
                "RFC 5321 4.1.4",
            );
            return false;
        }
        if self.state.in_transaction() {
            self.send(
                reply(503, SEQUENCE, "Nested MAIL command"),
                "a mail transaction is already open; send RSET first to start another. \
                 The open transaction is unchanged",
                "RFC 5321 4.1.4",
            );
            return false;
        }
        debug_assert!(
            matches!(self.state, State::ExpectMail),
            "MAIL read in {:?}",
            self.state.kind()
        );
        true
    }

    /// Answers 503 and returns false when RCPT is out of sequence.
    fn rcpt_in_sequence(&mut self) -> bool {
        match self.state {
            State::ExpectRcpt { .. } | State::ExpectRcptOrData { .. } => true,
            State::ExpectBdat { .. } => {
                self.send(
                    reply(503, SEQUENCE, "RCPT not allowed after BDAT"),
                    "message data has begun with BDAT, so the recipient list is closed",
                    "RFC 3030 2",
                );
                false
            }
            _ => {
                self.send(
                    reply(503, SEQUENCE, "Need MAIL before RCPT"),
                    "RCPT adds a recipient to a mail transaction, and none was started with \
                     MAIL: none came first, or the one before was refused (a client that \
                     pipelines sends RCPT without waiting for MAIL's reply, so each of its RCPT \
                     commands after a refused MAIL gets this 503, and it must read every reply)",
                    "RFC 5321 4.1.4, RFC 2920 3.1",
                );
                false
            }
        }
    }

    /// `source_route`: the path had one, which the parser skipped.
    fn mail(&mut self, reverse_path: ReversePath, params: Vec<EsmtpParam>, source_route: bool) {
        if !self.mail_in_sequence() {
            return;
        }
        let Some(esmtp) = self.greeted.as_ref().map(|greeted| greeted.esmtp) else {
            debug_assert!(false, "mail_in_sequence checked the greeting");
            return;
        };
        if self.policy.auth_required(&session_info(
            &self.peer,
            &self.greeted,
            &self.authenticated_as,
            self.now_ms,
        )) && self.authenticated_as.is_none()
        {
            self.send(
                reply(530, EnhancedStatus::new(5, 7, 0), "Authentication required"),
                "this is a submission server: clients must AUTH before MAIL",
                "RFC 4954 6, RFC 6409 4.3",
            );
            return;
        }
        let mut declared_size = None;
        let mut body = BodyType::SevenBit;
        let mut smtputf8 = false;
        let mut dsn_return = None;
        let mut envelope_id = None;
        for (index, param) in params.iter().enumerate() {
            let keyword = shown_keyword(&param.keyword);
            if params[..index]
                .iter()
                .any(|earlier| earlier.keyword.eq_ignore_ascii_case(&param.keyword))
            {
                self.send(
                    reply(501, BAD_ARGS, format!("Duplicate {keyword} parameter")),
                    format!("the {keyword} parameter was given twice"),
                    "RFC 5321 4.1.2",
                );
                return;
            }
            if !esmtp {
                self.send(
                    if self.config.extensions.ehlo {
                        reply(555, BAD_ARGS, format!("{keyword} parameter needs EHLO"))
                    } else {
                        rfc_821_parameter_error()
                    },
                    format!(
                        "MAIL parameters belong to extensions, and {}",
                        self.why_no_extensions()
                    ),
                    "RFC 5321 4.1.1.11",
                );
                return;
            }
            let value = param.value.as_deref();
            match (&*keyword, value) {
                ("SIZE", Some(v))
                    if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let size: u64 = v.parse().unwrap_or(u64::MAX);
                    declared_size = Some(size);
                }
                ("SIZE", _) => {
                    self.send(
                        reply(501, BAD_ARGS, "Bad SIZE parameter"),
                        "SIZE takes the message size as a decimal number of octets",
                        "RFC 1870 6",
                    );
                    return;
                }
                ("BODY" | "SMTPUTF8" | "AUTH", _)
                    if (keyword == "BODY" && !self.config.extensions.eight_bit_mime)
                        || (keyword == "SMTPUTF8" && !self.config.extensions.offers_smtputf8())
                        || (keyword == "AUTH" && !self.config.auth_enabled) =>
                {
                    self.send(
                        reply(555, BAD_ARGS, format!("{keyword} parameter not supported")),
                        "this server did not advertise the extension that defines this \
                         parameter, so it does not accept it; a client must not use a \
                         parameter the server did not offer",
                        "RFC 5321 4.1.1.11",
                    );
                    return;
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => body = BodyType::SevenBit,
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                    body = BodyType::EightBitMime;
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => {
                    // 555, not 504: RFC 5321 4.1.1.11 names it for a MAIL parameter the
                    // server cannot implement, and 4.3.2 allows no 504 after MAIL.
                    self.send(
                        reply(555, BAD_ARGS, "BODY=BINARYMIME not implemented"),
                        "BINARYMIME (RFC 3030 3) is not advertised by this server; only \
                         7BIT and 8BITMIME are, and a parameter value the server cannot \
                         implement gets 555",
                        "RFC 5321 4.1.1.11, RFC 3030 3",
                    );
                    return;
                }
                ("BODY", _) => {
                    self.send(
                        reply(501, BAD_ARGS, "Bad BODY parameter"),
                        "BODY takes 7BIT or 8BITMIME",
                        "RFC 6152 2",
                    );
                    return;
                }
                ("SMTPUTF8", None) => smtputf8 = true,
                ("SMTPUTF8", Some(_)) => {
                    self.send(
                        reply(501, BAD_ARGS, "SMTPUTF8 takes no value"),
                        "the SMTPUTF8 parameter has no value",
                        "RFC 6531 3.4",
                    );
                    return;
                }
                // RFC 4954 5: AUTH=<mailbox> or AUTH=<> names who submitted the message; a
                // server that does not trust the client ignores it.
                ("AUTH", Some(_)) => {}
                ("AUTH", None) => {
                    self.send(
                        reply(501, BAD_ARGS, "Bad AUTH parameter"),
                        "AUTH on MAIL takes a value: AUTH=<mailbox> (as xtext) names who \
                         submitted the message, and AUTH=<> says nobody can be named; without \
                         a value the parameter breaks its syntax",
                        "RFC 4954 5",
                    );
                    return;
                }
                ("RET", value) if self.config.extensions.dsn => {
                    match value.and_then(DsnReturn::parse) {
                        Some(ret) => dsn_return = Some(ret),
                        None => {
                            self.send(
                                reply(501, BAD_ARGS, "Bad RET parameter"),
                                "RET takes FULL (return the whole message in a failure notice) \
                                 or HDRS (its header only)",
                                "RFC 3461 4.3",
                            );
                            return;
                        }
                    }
                }
                ("ENVID", value) if self.config.extensions.dsn => {
                    match value.map(read_envelope_id) {
                        Some(Ok(id)) => envelope_id = Some(id),
                        Some(Err(why)) => {
                            self.send(
                                reply(501, BAD_ARGS, "Bad ENVID parameter"),
                                format!("ENVID {why}"),
                                "RFC 3461 4.4",
                            );
                            return;
                        }
                        None => {
                            self.send(
                                reply(501, BAD_ARGS, "Bad ENVID parameter"),
                                "ENVID takes a value: the sender's identifier for the \
                                 message, in xtext",
                                "RFC 3461 4.4",
                            );
                            return;
                        }
                    }
                }
                ("RET" | "ENVID", _) => {
                    self.send(
                        reply(555, BAD_ARGS, format!("{keyword} parameter not supported")),
                        format!(
                            "{keyword} belongs to the DSN extension (RFC 3461), which this \
                             server does not advertise"
                        ),
                        "RFC 5321 4.1.1.11, RFC 3461",
                    );
                    return;
                }
                _ => {
                    self.send(
                        reply(555, BAD_ARGS, format!("Unsupported parameter {keyword}")),
                        format!(
                            "{keyword} is not a parameter of any extension this server \
                             advertised. Postfix also answers 555 5.5.4, Exim answers 501"
                        ),
                        "RFC 5321 4.1.1.11",
                    );
                    return;
                }
            }
        }
        let limit = self.size_limit();
        if let Some(size) = declared_size.filter(|&size| size > limit.octets()) {
            // A value past 64 bits was read as the largest; say so rather than misquote it.
            let size = if size == u64::MAX {
                format!("{size} or more")
            } else {
                size.to_string()
            };
            let why = match limit {
                SizeLimit::Fixed(octets) => format!(
                    "the client declared SIZE={size}, over this server's limit of {octets} \
                     octets (advertised as SIZE in the EHLO reply), so it is refused before \
                     any data is sent"
                ),
                SizeLimit::Held(octets) => format!(
                    "the client declared SIZE={size}; {}, so the message is refused before \
                     any data is sent",
                    SizeLimit::no_fixed_limit_note(octets)
                ),
            };
            self.send(limit.refusal(), why, "RFC 1870 6");
            return;
        }
        if !smtputf8 && !reverse_path.is_ascii() {
            self.non_ascii_refused(AddressRole::Sender);
            return;
        }
        let decision = self.policy.check_mail(
            &session_info(
                &self.peer,
                &self.greeted,
                &self.authenticated_as,
                self.now_ms,
            ),
            &reverse_path,
            declared_size,
        );
        match decision {
            Decision::Respond { reply, why, rfc } if !reply.is_success() => {
                self.send(reply, why, rfc);
            }
            decision => {
                let null_note = if reverse_path == ReversePath::Null {
                    " The null reverse-path <> marks a message (usually a bounce) that must \
                     never cause another bounce (RFC 5321 4.5.5)."
                } else {
                    ""
                };
                match decision {
                    Decision::Respond { reply, why, rfc } => self.send(reply, why, rfc),
                    Decision::Accept { why } => self.send(
                        reply(
                            250,
                            EnhancedStatus::new(2, 1, 0),
                            path_text("Sender ", |out| reverse_path.push_wire(out), " OK"),
                        ),
                        format!(
                            "MAIL starts a mail transaction: {why}.{null_note}{}",
                            source_route_note(source_route, AddressRole::Sender)
                        ),
                        "RFC 5321 4.1.1.2",
                    ),
                }
                let from = self.state.kind();
                self.enter(
                    from,
                    State::ExpectRcpt {
                        mail: MailTransaction {
                            reverse_path,
                            params,
                            declared_size,
                            body,
                            smtputf8,
                            rcpt_refused: 0,
                            dsn: self.config.extensions.dsn.then(|| {
                                Box::new(TransactionDsn {
                                    ret: dsn_return,
                                    envelope_id,
                                    recipients: Vec::new(),
                                })
                            }),
                        },
                    },
                );
            }
        }
    }

    /// Whether this session offered SMTPUTF8: the client said EHLO, and the server has it.
    fn offers_smtputf8_now(&self) -> bool {
        self.esmtp() && self.config.extensions.offers_smtputf8()
    }

    /// RFC 6531 3.5: 550 when MAIL's address must be ASCII, 553 when RCPT's must; both 5.6.7.
    fn non_ascii_refused(&mut self, role: AddressRole) {
        let (code, role) = match role {
            AddressRole::Sender => (550, "sender"),
            AddressRole::Recipient => (553, "recipient"),
        };
        self.send(
            reply(
                code,
                EnhancedStatus::new(5, 6, 7),
                "Non-ASCII address requires SMTPUTF8",
            ),
            if self.offers_smtputf8_now() {
                format!(
                    "the {role} address has non-ASCII characters, but MAIL did not carry the \
                     SMTPUTF8 parameter"
                )
            } else {
                let why = if self.esmtp() {
                    "its EHLO reply did not list it"
                } else {
                    self.why_no_extensions()
                };
                format!(
                    "the {role} address has non-ASCII characters, and this server does not \
                     offer SMTPUTF8 in this session ({why}), so it takes ASCII addresses \
                     only: such mail cannot reach it"
                )
            },
            "RFC 6531 3.5",
        );
    }

    /// Whether the transaction under way was started with SMTPUTF8 (RFC 6531 3.4).
    fn transaction_smtputf8(&self) -> bool {
        match &self.state {
            State::ExpectRcpt { mail } | State::ExpectRcptOrData { mail, .. } => mail.smtputf8,
            _ => false,
        }
    }

    /// `source_route`: the path had one, which the parser skipped.
    fn rcpt(&mut self, forward_path: ForwardPath, params: Vec<EsmtpParam>, source_route: bool) {
        if !self.rcpt_in_sequence() {
            return;
        }
        let Some((recipient_dsn, params)) = self.read_rcpt_dsn(params) else {
            return;
        };
        let from = self.state.kind();
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (mut mail, forward_paths) = match state {
            State::ExpectRcpt { mail } => (mail, None),
            State::ExpectRcptOrData {
                mail,
                forward_paths,
            } => (mail, Some(forward_paths)),
            other => {
                debug_assert!(
                    false,
                    "rcpt_in_sequence let RCPT through in {:?}",
                    other.kind()
                );
                self.state = other;
                return;
            }
        };
        let outcome = self.check_rcpt(
            &mut mail,
            forward_paths.as_ref(),
            &forward_path,
            &params,
            source_route,
        );
        if let Some(dsn) = mail.dsn.as_mut().filter(|_| outcome) {
            dsn.recipients.push(recipient_dsn);
        }
        let next = match (outcome, forward_paths) {
            (true, None) => State::ExpectRcptOrData {
                mail,
                forward_paths: NonEmpty::new(forward_path),
            },
            (true, Some(mut paths)) => {
                paths.push(forward_path);
                State::ExpectRcptOrData {
                    mail,
                    forward_paths: paths,
                }
            }
            (false, None) => State::ExpectRcpt { mail },
            (false, Some(paths)) => State::ExpectRcptOrData {
                mail,
                forward_paths: paths,
            },
        };
        self.enter(from, next);
    }

    /// Takes NOTIFY and ORCPT out of a RCPT's parameters when this server offers DSN (RFC
    /// 3461 4.1, 4.2), leaving the others to be checked as any; None once a reply said what is
    /// wrong with them.
    fn read_rcpt_dsn(
        &mut self,
        params: Vec<EsmtpParam>,
    ) -> Option<(RecipientDsn, Vec<EsmtpParam>)> {
        let mut dsn = RecipientDsn::default();
        if !self.config.extensions.dsn || !self.esmtp() {
            return Some((dsn, params));
        }
        let mut others = Vec::new();
        let mut seen_notify = false;
        let mut seen_orcpt = false;
        for param in params {
            let keyword = shown_keyword(&param.keyword);
            let (seen, section) = match &*keyword {
                "NOTIFY" => (&mut seen_notify, "RFC 3461 4.1"),
                "ORCPT" => (&mut seen_orcpt, "RFC 3461 4.2"),
                _ => {
                    others.push(param);
                    continue;
                }
            };
            if std::mem::replace(seen, true) {
                self.send(
                    reply(501, BAD_ARGS, format!("Duplicate {keyword} parameter")),
                    format!("the {keyword} parameter was given twice"),
                    "RFC 5321 4.1.2",
                );
                return None;
            }
            let value = param.value.as_deref().unwrap_or("");
            let read = if keyword == "NOTIFY" {
                Notify::parse(value).map(|notify| dsn.notify = Some(notify))
            } else {
                OriginalRecipient::parse(value, self.transaction_smtputf8())
                    .map(|orcpt| dsn.orcpt = Some(orcpt))
                    .map_err(String::from)
            };
            if let Err(why) = read {
                self.send(
                    reply(501, BAD_ARGS, format!("Bad {keyword} parameter")),
                    if keyword == "NOTIFY" {
                        format!("in NOTIFY, {why}")
                    } else {
                        format!(
                            "ORCPT takes TYPE;ADDRESS, such as rfc822;bob@example.net, the \
                             address in xtext, and {why}"
                        )
                    },
                    section,
                );
                return None;
            }
        }
        Some((dsn, others))
    }

    /// Checks one RCPT and sends its reply; true when the recipient was accepted.
    fn check_rcpt(
        &mut self,
        mail: &mut MailTransaction,
        accepted: Option<&NonEmpty<ForwardPath>>,
        forward_path: &ForwardPath,
        params: &[EsmtpParam],
        source_route: bool,
    ) -> bool {
        if let Some(param) = params.first() {
            let keyword = shown_keyword(&param.keyword);
            let dsn = matches!(&*keyword, "NOTIFY" | "ORCPT");
            self.send(
                if !self.config.extensions.ehlo {
                    rfc_821_parameter_error()
                } else if dsn {
                    // As MAIL words RET and ENVID: a parameter this server knows of.
                    reply(555, BAD_ARGS, format!("{keyword} parameter not supported"))
                } else {
                    reply(555, BAD_ARGS, format!("Unsupported parameter {keyword}"))
                },
                if dsn && self.config.extensions.dsn {
                    // Offered, but not in this session: it was greeted with HELO.
                    format!(
                        "{keyword} belongs to the DSN extension (RFC 3461), and {}",
                        self.why_no_extensions()
                    )
                } else if dsn {
                    format!(
                        "{keyword} belongs to the DSN extension (RFC 3461), which this server \
                         does not advertise"
                    )
                } else {
                    format!(
                        "{keyword} is not a RCPT parameter of any extension this server \
                         advertised. Postfix also answers 555 5.5.4, Exim answers 501"
                    )
                },
                "RFC 5321 4.1.1.11",
            );
            return false;
        }
        let count = accepted.map_or(0, NonEmpty::len);
        if count >= self.config.recipients_max {
            // A limit so low that the student sees it at work with a handful of recipients
            // is said to be one no real server may have.
            let below_the_minimum = if count < RECIPIENTS_MIN {
                format!(
                    ". A limit under {RECIPIENTS_MIN} breaks the standard: a real server must \
                     take at least {RECIPIENTS_MIN} recipients"
                )
            } else {
                String::new()
            };
            let recipients_ending = crate::plural(u64::try_from(count).unwrap_or(u64::MAX));
            self.send(
                reply(452, EnhancedStatus::new(4, 5, 3), "Too many recipients"),
                format!(
                    "this transaction already has {count} recipient{recipients_ending}, this \
                     server's limit; 452 (not 5xx) tells the client to send the rest in \
                     another transaction, as Postfix and Exim do{below_the_minimum}"
                ),
                "RFC 5321 4.5.3.1.10, 4.5.3.1.8",
            );
            return false;
        }
        if !mail.smtputf8 && !forward_path.is_ascii() {
            mail.rcpt_refused = mail.rcpt_refused.saturating_add(1);
            self.non_ascii_refused(AddressRole::Recipient);
            return false;
        }
        let Some(mailbox) = forward_path.mailbox() else {
            self.send(
                reply(
                    250,
                    EnhancedStatus::new(2, 1, 5),
                    path_text("Recipient ", |out| forward_path.push_wire(out), " OK"),
                ),
                "every server must accept mail for <Postmaster> with no domain, whatever its \
                 policy, so that problems can always be reported",
                "RFC 5321 4.5.1",
            );
            return true;
        };
        let all = accepted.map_or(&[][..], NonEmpty::as_slice);
        let transaction = TransactionInfo {
            reverse_path: &mail.reverse_path,
            declared_size: mail.declared_size,
            forward_paths: all,
        };
        let info = session_info(
            &self.peer,
            &self.greeted,
            &self.authenticated_as,
            self.now_ms,
        );
        let decision = self.policy.check_rcpt(&info, &transaction, mailbox);
        match decision {
            Decision::Accept { why } => {
                let why = match source_route_note(source_route, AddressRole::Recipient) {
                    "" => why,
                    note => format!("{why}.{note}").into(),
                };
                self.send(
                    reply(
                        250,
                        EnhancedStatus::new(2, 1, 5),
                        path_text("Recipient ", |out| forward_path.push_wire(out), " OK"),
                    ),
                    why,
                    "RFC 5321 4.1.1.3",
                );
                true
            }
            Decision::Respond { reply, why, rfc } => {
                let accepted = reply.is_success();
                if !accepted {
                    mail.rcpt_refused = mail.rcpt_refused.saturating_add(1);
                }
                self.send(reply, why, rfc);
                accepted
            }
        }
    }

    fn data(&mut self) {
        let from = self.state.kind();
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::ExpectRcptOrData {
                mail,
                forward_paths,
            } => {
                macro_rules! ready {
                    () => {
                        " accepted, so the server is ready for the message; it \
                         ends at a line holding only \".\", and lines starting with \".\" \
                         arrive with an extra dot (RFC 5321 4.5.2)"
                    };
                }
                // Most transactions have one recipient: that text is written once.
                let why: Cow<'static, str> = if forward_paths.len() == 1 {
                    concat!("1 recipient", ready!()).into()
                } else {
                    format!("{} recipients{}", forward_paths.len(), ready!()).into()
                };
                self.send(
                    Reply::new(354, None, "End data with <CR><LF>.<CR><LF>"),
                    why,
                    "RFC 5321 4.1.1.4",
                );
                let reader = DataReader::new(
                    Framing::Dot,
                    self.config.bare_line_ending,
                    self.size_limit().octets(),
                )
                .declared(mail.declared_size);
                self.enter(
                    from,
                    State::ReceivingData {
                        mail,
                        forward_paths,
                        reader,
                    },
                );
            }
            State::ExpectRcpt { mail } if mail.rcpt_refused > 0 => {
                self.state = State::ExpectRcpt { mail };
                self.send(
                    reply(554, SEQUENCE, "No valid recipients"),
                    "every RCPT in this transaction was refused, so there is nobody to \
                     deliver to; the server may refuse DATA with 554 (no valid recipients), as \
                     Postfix does, or with 503. The client sends no message data without a \
                     354",
                    "RFC 5321 3.3, 4.1.1.4",
                );
            }
            State::ExpectBdat { .. } => {
                self.state = state;
                self.send(
                    reply(503, SEQUENCE, "DATA not allowed in a BDAT transaction"),
                    "this transaction's data has begun with BDAT; DATA and BDAT cannot be \
                     mixed, and the client must RSET",
                    "RFC 3030 2",
                );
            }
            other => {
                let need = if matches!(other, State::ExpectRcpt { .. }) {
                    "Need RCPT before DATA"
                } else {
                    "Need MAIL and RCPT before DATA"
                };
                self.state = other;
                self.send(
                    reply(503, SEQUENCE, need),
                    "DATA is only accepted once a mail transaction has at least one accepted \
                     recipient; the state is unchanged",
                    "RFC 5321 4.1.4",
                );
            }
        }
    }

    fn bdat(&mut self, size: u64, last: bool) {
        let from = self.state.kind();
        let state = std::mem::replace(&mut self.state, State::Closed);
        let target = match (self.bdat_not_advertised(), state) {
            // Refused like a command of an extension that was not offered, but the chunk's
            // octets follow the command all the same (RFC 3030 2): read as commands, they would
            // put client and server out of step, and whatever they hold would run as commands.
            (Some((reply, why, rfc)), state) => BdatTarget::discard(reply, why, rfc, state),
            (
                None,
                State::ExpectRcptOrData {
                    mail,
                    forward_paths,
                },
            ) => {
                let reader = DataReader::new(
                    Framing::Chunked,
                    self.config.bare_line_ending,
                    self.size_limit().octets(),
                )
                .declared(mail.declared_size);
                self.bdat_target(mail, forward_paths, reader, size)
            }
            (
                None,
                State::ExpectBdat {
                    mail,
                    forward_paths,
                    reader,
                },
            ) => self.bdat_target(mail, forward_paths, reader, size),
            (None, State::ExpectRcpt { mail }) => {
                let (text, why) = if mail.rcpt_refused > 0 {
                    (
                        "No valid recipients",
                        "every RCPT in this transaction was refused; the chunk's octets were \
                         read and dropped",
                    )
                } else {
                    (
                        "Need RCPT before BDAT",
                        "no recipient has been accepted yet; the chunk's octets were read and \
                         dropped, as a server must always read exactly the announced octets",
                    )
                };
                // RFC 3030 2: after a 5yz to a chunk the client "should" consider the
                // transaction failed, and it starts again with MAIL: so does the server after
                // this 554, or a pipelined MAIL would be nested and its RCPTs and chunks would
                // join this transaction, under its sender. A 503 leaves the state as it was.
                let (code, why, after) = if mail.rcpt_refused > 0 {
                    let why = format!("{why}; the transaction is over");
                    (554, Cow::Owned(why), State::ExpectMail)
                } else {
                    (503, Cow::Borrowed(why), State::ExpectRcpt { mail })
                };
                BdatTarget::discard(reply(code, SEQUENCE, text), why, "RFC 3030 2", after)
            }
            (None, other) => BdatTarget::discard(
                reply(503, SEQUENCE, "Need MAIL and RCPT before BDAT"),
                "BDAT carries message data, and there is no mail transaction with a recipient; \
                 the chunk's octets were read and dropped, as a server must always read \
                 exactly the announced octets",
                "RFC 3030 2",
                other,
            ),
        };
        self.receive_chunk(from, size, last, target);
    }

    /// Reads the `size` octets of a BDAT chunk into `target` (RFC 3030 2).
    fn receive_chunk(&mut self, from: ServerStateKind, size: u64, last: bool, target: BdatTarget) {
        self.enter(
            from,
            State::ReceivingBdat {
                size,
                remaining_octets: size,
                last,
                target,
            },
        );
    }

    /// A BDAT line that breaks the grammar. When its chunk size can still be read, the client
    /// sends that many octets after the line whatever the answer (RFC 3030 2), so they are
    /// read and dropped before the reply, as for every other refused BDAT: read as commands, a
    /// chunk holding "RSET\r\nMAIL FROM:..." would run. Without a readable size nothing can
    /// be consumed, since nobody can tell how many octets follow.
    fn bdat_malformed(&mut self, error: &CommandError, size: Option<u64>) {
        let Some(size) = size else {
            if matches!(self.state, State::ExpectQuit) {
                self.refused_session(Some(Verb::Bdat));
            } else {
                self.send(
                    error.reply(),
                    format!(
                        "{}. No chunk size could be read, so the server cannot know how many \
                         octets follow the line: none are consumed, and whatever follows will \
                         be read as commands",
                        error.why
                    ),
                    error.rfc,
                );
            }
            return;
        };
        if matches!(self.state, State::ExpectQuit) {
            self.drop_refused_chunk(
                reply(503, SEQUENCE, "Only QUIT is accepted now"),
                "this server refused the connection at the greeting",
                "RFC 5321 3.1, RFC 3030 2".into(),
                size,
            );
        } else {
            self.drop_refused_chunk(error.reply(), &error.why, error.rfc.into(), size);
        }
    }

    /// A BDAT line whose chunk size has more digits than 64 bits hold: the client will send
    /// that many octets, which the server can neither take nor count to skip, and read as
    /// commands they would run as commands. It ends the session, with 421 before closing
    /// (RFC 5321 3.8), rather than answer 501 and lose its place in the input.
    fn bdat_chunk_unskippable(&mut self) {
        self.send(
            reply(
                421,
                EnhancedStatus::new(4, 5, 0),
                format!(
                    "{} Chunk size too large to read, closing connection",
                    self.config.hostname
                ),
            ),
            "the chunk size is a number of digits RFC 3030 allows but no server can count \
             to: the chunk that follows cannot be read to its end, and read as commands its \
             octets would run as commands, so the server closes the connection",
            "RFC 3030 2, RFC 5321 3.8",
        );
        self.close(CloseReason::ChunkTooLarge);
    }

    /// A refused BDAT line whose chunk size could be read: the `size` octets that follow the
    /// line are read and dropped, and then `refusal` is sent, explained by `why` and what
    /// became of the chunk. In a transaction with recipients the transaction ends, since its
    /// message could only lack the chunk; elsewhere the state stays as it was.
    fn drop_refused_chunk(&mut self, refusal: Reply, why: &str, rfc: Cow<'static, str>, size: u64) {
        let unit = if size == 1 { "octet" } else { "octets" };
        let dropped = format!(
            "the chunk size could still be read, so the chunk that follows the line ({size} \
             {unit}) was read and dropped: the client sends it whatever the answer, and read as \
             commands its octets would run as commands"
        );
        let rfc: Cow<'static, str> = if rfc.contains("RFC 3030") {
            rfc
        } else {
            format!("{rfc}, RFC 3030 2").into()
        };
        let from = self.state.kind();
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (why, after) = match state {
            // The message could only lack the dropped chunk, so it must not be completed by
            // a later BDAT; after a failed chunk the client must send no more BDAT anyway.
            State::ExpectRcptOrData { .. } | State::ExpectBdat { .. } => (
                format!(
                    "{why}; {dropped}. The transaction is over: its message could only lack \
                     this chunk, and after a failed chunk the client must send no more BDAT"
                ),
                State::ExpectMail,
            ),
            other => (format!("{why}; {dropped}"), other),
        };
        let target = BdatTarget::discard(refusal, why, rfc, after);
        self.receive_chunk(from, size, false, target);
    }

    /// BDAT is only available when CHUNKING was advertised in the EHLO reply to this client
    /// (RFC 3030 2): the refusal, explanation and RFC when it was not.
    fn bdat_not_advertised(&self) -> Option<(Reply, String, &'static str)> {
        if !self.config.extensions.chunking {
            return Some((
                reply(502, SEQUENCE, "BDAT not implemented"),
                "BDAT belongs to the CHUNKING extension (RFC 3030), which this server does not \
                 offer (no EHLO reply of its lists it), so it is answered like any command \
                 the server does not implement (Postfix with CHUNKING turned off answers \
                 521 5.5.1 and closes the connection instead, since it does not skip the \
                 chunk). \
                 The chunk's octets were still read and dropped: they follow the command \
                 whatever the answer, and read as commands they would run as commands"
                    .to_string(),
                "RFC 3030 2, RFC 5321 4.2.4",
            ));
        }
        if !self.esmtp() {
            return Some((
                reply(503, SEQUENCE, "Send EHLO first"),
                format!(
                    "BDAT belongs to the CHUNKING extension (RFC 3030), which a client may use \
                     only once the server has listed CHUNKING in its reply to EHLO, and {}. \
                     The chunk's octets were still read and dropped: they follow the command \
                     whatever the answer, and read as commands they would run as commands",
                    self.why_no_extensions()
                ),
                "RFC 3030 2, RFC 5321 4.1.1.1",
            ));
        }
        None
    }

    fn bdat_target(
        &self,
        mail: MailTransaction,
        forward_paths: NonEmpty<ForwardPath>,
        reader: DataReader,
        size: u64,
    ) -> BdatTarget {
        let total = reader.octets().saturating_add(size);
        let limit = self.size_limit();
        if total > limit.octets() {
            let over = match limit {
                SizeLimit::Fixed(octets) => format!("over the limit of {octets}"),
                SizeLimit::Held(octets) => {
                    format!("too many: {}", SizeLimit::no_fixed_limit_note(octets))
                }
            };
            return BdatTarget::discard(
                limit.refusal(),
                format!(
                    "with this chunk the message would be {total} octets, {over}; the chunk \
                     was read and dropped and the transaction is over (a client must send no \
                     more BDAT after a failure)"
                ),
                "RFC 3030 2, RFC 1870 6",
                State::ExpectMail,
            );
        }
        BdatTarget::Message(Box::new(ChunkedMessage {
            mail,
            forward_paths,
            reader,
        }))
    }

    /// The last octet of a chunk was read: the chunk is answered. RFC 3030 2: after a failed
    /// BDAT the server "MUST be prepared to accept and discard additional BDAT chunks already
    /// in the pipeline", which a pipelining client sends before it reads the failure (RFC 3030
    /// 4: BDAT may be pipelined); their 503s, up to its last chunk, are not counted as errors.
    /// Only a chunk of an open transaction that failed starts that: a BDAT with no
    /// transaction is a client's mistake.
    fn finish_chunk(&mut self) {
        let last = matches!(self.state, State::ReceivingBdat { last: true, .. });
        let uncounted_before = self.uncounted_chunk_replies;
        let answered = self.output.len();
        self.answer_chunk();
        // The first digit of the reply just written, if any (a last chunk's waits for its
        // message to be stored).
        let failed = self.output.get(answered).is_some_and(|&code| code != b'2');
        if last {
            // The client's pipeline for this message ends here.
            self.uncounted_chunk_replies = 0;
            self.uncounted_sequence_replies = 0;
        } else if failed && self.chunk_in_transaction && uncounted_before == 0 {
            self.uncounted_chunk_replies = PIPELINED_CHUNKS_MAX;
        }
    }

    fn answer_chunk(&mut self) {
        let from = self.state.kind();
        let State::ReceivingBdat {
            size, last, target, ..
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            debug_assert!(false, "finish_chunk outside ReceivingBdat");
            return;
        };
        match target {
            BdatTarget::Discard {
                reply,
                why,
                rfc,
                after,
            } => {
                // A chunk a pipelining client sent after its refused MAIL or a failed chunk
                // (see `finish_chunk`).
                if reply.code == 503 && self.uncounted_chunk_replies > 0 {
                    self.uncounted_chunk_replies -= 1;
                    self.send_uncounted(reply, why, rfc);
                } else if reply.code == 503 {
                    // Counted, whatever the client's RCPTs may still send uncounted.
                    self.errors = self.errors.saturating_add(1);
                    self.send_uncounted(reply, why, rfc);
                } else {
                    self.send(reply, why, rfc);
                }
                self.enter(from, *after);
            }
            BdatTarget::Message(message) => {
                let ChunkedMessage {
                    mail,
                    forward_paths,
                    mut reader,
                } = *message;
                if last {
                    reader.finish_chunked();
                }
                if reader.bare().is_some() && self.config.bare_line_ending == BareLineEnding::Reject
                {
                    self.refuse_bare(&reader, "BDAT");
                    self.enter(from, State::ExpectMail);
                    return;
                }
                if last {
                    self.end_of_message(from, mail, forward_paths, reader, true);
                } else {
                    self.send(
                        reply(
                            250,
                            OK,
                            if size == 1 {
                                "1 octet received".to_string()
                            } else {
                                format!("{size} octets received")
                            },
                        ),
                        "the chunk was read; more chunks may follow until BDAT ... LAST",
                        "RFC 3030 2",
                    );
                    self.enter(
                        from,
                        State::ExpectBdat {
                            mail,
                            forward_paths,
                            reader,
                        },
                    );
                }
            }
        }
    }

    /// `<CRLF>.<CRLF>` was read.
    fn finish_data(&mut self) {
        let from = self.state.kind();
        let State::ReceivingData {
            mail,
            forward_paths,
            reader,
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            debug_assert!(false, "finish_data outside ReceivingData");
            return;
        };
        if reader.bare().is_some() && self.config.bare_line_ending == BareLineEnding::Reject {
            self.refuse_bare(&reader, "DATA");
            self.enter(from, State::ExpectMail);
            return;
        }
        self.end_of_message(from, mail, forward_paths, reader, false);
    }

    fn refuse_bare(&mut self, reader: &DataReader, verb: &str) {
        let (kind, offset) = reader.bare().unwrap_or((BareKind::Lf, 0));
        let name = kind.name();
        self.send(
            reply(
                550,
                SYNTAX,
                format!("Message refused: bare {name} in message data"),
            ),
            format!(
                "the {verb} content has a bare {name}, not part of a CR LF pair (the first is \
                 octet {} of that content). Only CRLF ends a line (RFC 5321 2.3.8); {risk}. The \
                 data was read to {end} and refused, and the session goes on; Postfix's \
                 smtpd_forbid_bare_newline=reject refuses a bare LF so too, and then closes \
                 the connection (it does not check bare CR)",
                offset + 1,
                risk = if verb == "BDAT" {
                    "a chunk has no end marker to forge, but the message, taken and sent on \
                     with DATA, could reach a server that takes <LF>.<CR><LF>, <LF>.<LF>, \
                     <CR>.<CR> or <CR>.<CR><LF> as the end of data and delivers a second, \
                     forged message (SMTP smuggling, CVE-2023-51764)"
                } else {
                    "a server that took <LF>.<CR><LF>, <LF>.<LF>, <CR>.<CR> or <CR>.<CR><LF> \
                     as the end of data could be made to deliver a second, forged message \
                     (SMTP smuggling, CVE-2023-51764)"
                },
                end = if verb == "BDAT" {
                    "the end of this chunk (the transaction is over: a later chunk of it gets \
                     503)"
                } else {
                    "the real end"
                },
            ),
            "RFC 5321 2.3.8, 4.1.1.4",
        );
    }

    fn end_of_message(
        &mut self,
        from: ServerStateKind,
        mail: MailTransaction,
        forward_paths: NonEmpty<ForwardPath>,
        reader: DataReader,
        chunked: bool,
    ) {
        if reader.over_size() {
            let limit = self.size_limit();
            let octets = reader.octets();
            let why = match limit {
                SizeLimit::Fixed(max) => format!(
                    "the message has {octets} octets, over this server's limit of {max} \
                     ({}); the data was read to its end and then refused",
                    if self.config.extensions.ehlo {
                        "advertised as SIZE"
                    } else {
                        "which, without EHLO, it cannot announce"
                    }
                ),
                SizeLimit::Held(max) => format!(
                    "the message has {octets} octets; {}. The data was read to its end and \
                     then refused",
                    SizeLimit::no_fixed_limit_note(max)
                ),
            };
            self.send(limit.refusal(), why, "RFC 5321 4.5.3.1.9, RFC 1870 6");
            self.enter(from, State::ExpectMail);
            return;
        }
        let longest = reader.longest_line_octets();
        let data = reader.into_data();
        let hops = super::trace::count_received_headers(&data);
        if hops > self.config.received_headers_max {
            self.send(
                reply(
                    554,
                    EnhancedStatus::new(5, 4, 0),
                    "Too many hops, mail loop detected",
                ),
                format!(
                    "the message already has {hops} Received: header fields, more than {}; it \
                     is most likely circling between servers. Postfix answers the same, \
                     554 5.4.0 \"too many hops\", at 50 (5.4.6, routing loop, is meant for \
                     temporary failures)",
                    self.config.received_headers_max
                ),
                "RFC 5321 6.3",
            );
            self.enter(from, State::ExpectMail);
            return;
        }
        let forward_paths = forward_paths.into_vec();
        let decision = {
            let transaction = TransactionInfo {
                reverse_path: &mail.reverse_path,
                declared_size: mail.declared_size,
                forward_paths: &forward_paths,
            };
            let info = session_info(
                &self.peer,
                &self.greeted,
                &self.authenticated_as,
                self.now_ms,
            );
            self.policy.check_data(&info, &transaction, &data)
        };
        if let Decision::Respond { reply, why, rfc } = decision {
            if !reply.is_success() {
                self.send(reply, why, rfc);
                self.enter(from, State::ExpectMail);
                return;
            }
        }
        let mut note = String::new();
        if longest > 1000 {
            note = format!(
                " The data had a line of {longest} octets, over the 1000 (CRLF included) \
                 of RFC 5321 4.5.3.1.6; this server accepts it as Postfix and Exim do \
                 (aiosmtpd answers 500), but no client here sends such a line on: a message \
                 relayed further bounces (binary data, 554 5.6.3)."
            );
        }
        let greeted = self.greeted.clone().unwrap_or(Greeted {
            name: String::new(),
            esmtp: false,
            helo_after_ehlo: false,
        });
        debug_assert!(
            !greeted.name.is_empty(),
            "a transaction needs EHLO/HELO first"
        );
        let authenticated = self.authenticated_as.is_some();
        let protocol = match (greeted.esmtp, mail.smtputf8, authenticated) {
            (false, _, _) => Protocol::Smtp,
            (true, true, true) => Protocol::Utf8Smtpa,
            (true, true, false) => Protocol::Utf8Smtp,
            (true, false, true) => Protocol::Esmtpa,
            (true, false, false) => Protocol::Esmtp,
        };
        let dsn = mail.dsn.map(|dsn| *dsn).unwrap_or_default();
        let message = ReceivedMessage {
            envelope: Envelope {
                reverse_path: mail.reverse_path,
                forward_paths,
                mail_params: mail.params,
                helo_name: greeted.name,
                peer: self.peer.clone(),
                protocol,
                body: mail.body,
                smtputf8: mail.smtputf8,
                declared_size: mail.declared_size,
                authenticated_as: self.authenticated_as.clone(),
                chunked,
                received_at_ms: self.now_ms,
                dsn_return: dsn.ret,
                envelope_id: dsn.envelope_id,
                recipient_dsn: dsn.recipients,
            },
            data,
        };
        self.storage_pending = true;
        self.enter(from, State::AwaitingStorage { note, chunked });
        self.events.push_back(ServerEvent::MessageReceived {
            message: Box::new(message),
        });
    }

    fn rset(&mut self) {
        let from = self.state.kind();
        let had = self.state.in_transaction();
        self.send(
            reply(250, OK, "OK"),
            if had {
                "RSET abandons the mail transaction (sender, recipients, data); the session \
                 and its EHLO or HELO stay"
            } else {
                "RSET with no transaction open does nothing but succeed"
            },
            "RFC 5321 4.1.1.5",
        );
        let idle = self.idle_state();
        self.enter(from, idle);
    }

    fn quit(&mut self) {
        let dropped = if self.state.in_transaction() {
            " The open mail transaction is abandoned."
        } else {
            ""
        };
        self.send(
            reply(
                221,
                OK,
                format!("{} closing connection", self.config.hostname),
            ),
            format!(
                "QUIT ends the session: the server answers 221 and closes the connection.{dropped}"
            ),
            "RFC 5321 4.1.1.10",
        );
        self.close(CloseReason::Quit);
    }

    fn vrfy(&mut self, query: &str) {
        let decision = self.policy.check_vrfy(
            &session_info(
                &self.peer,
                &self.greeted,
                &self.authenticated_as,
                self.now_ms,
            ),
            query,
        );
        match decision {
            Decision::Respond { reply, why, rfc } => self.send(reply, why, rfc),
            Decision::Accept { why } => self.send(
                reply(
                    252,
                    OK,
                    "Cannot VRFY user, but will accept message and attempt delivery",
                ),
                why,
                "RFC 5321 3.5.3",
            ),
        }
    }

    fn help(&mut self) {
        let mut commands = String::from(if self.config.extensions.ehlo {
            "Commands: EHLO HELO MAIL RCPT DATA"
        } else {
            "Commands: HELO MAIL RCPT DATA"
        });
        if self.config.extensions.chunking {
            commands.push_str(" BDAT");
        }
        commands.push_str(" RSET NOOP QUIT VRFY HELP");
        if self.config.auth_enabled {
            commands.push_str(" AUTH");
        }
        self.send(
            reply(214, OK, commands),
            "HELP lists the commands this server implements (for humans at the keyboard; \
             a client learns the extensions from the EHLO reply, where there is one)",
            "RFC 5321 4.1.1.8",
        );
    }

    // ----- AUTH (RFC 4954) -------------------------------------------------------------

    /// AUTH on a server without it: not implemented, whatever its arguments (RFC 5321
    /// 4.2.4), so that a client is not taught the syntax of a command it cannot use here.
    fn auth_not_available(&mut self) {
        self.send(
            reply(502, SEQUENCE, "AUTH not available"),
            "authentication is not enabled on this server and AUTH is not advertised in its \
             EHLO reply: a command it does not implement, whatever its arguments",
            "RFC 4954 3, RFC 5321 4.2.4",
        );
    }

    fn auth(&mut self, mechanism: &str, initial_response: Option<&str>) {
        if !self.config.auth_enabled {
            self.auth_not_available();
            return;
        }
        if !self.esmtp() {
            self.send(
                reply(503, SEQUENCE, "Send EHLO first"),
                "AUTH is an ESMTP extension; it is only available after EHLO",
                "RFC 4954 4",
            );
            return;
        }
        if self.authenticated_as.is_some() {
            self.send(
                reply(503, SEQUENCE, "Already authenticated"),
                "a client may authenticate only once per session",
                "RFC 4954 4",
            );
            return;
        }
        if self.state.in_transaction() {
            self.send(
                reply(503, SEQUENCE, "AUTH not allowed during a mail transaction"),
                "AUTH must come before MAIL",
                "RFC 4954 4",
            );
            return;
        }
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            self.send(
                reply(504, BAD_ARGS, "Unrecognized authentication mechanism"),
                format!(
                    "this server offers PLAIN and LOGIN, not {}",
                    mechanism.to_ascii_uppercase()
                ),
                "RFC 4954 4",
            );
            return;
        };
        let from = self.state.kind();
        match (mechanism, initial_response) {
            (Mechanism::Plain, Some(response)) => self.auth_plain(response),
            (Mechanism::Plain, None) => {
                self.send(
                    Reply::new(334, None, ""),
                    "AUTH PLAIN came without an initial response, so the server sends an \
                     empty challenge and waits for base64(authzid NUL user NUL password)",
                    "RFC 4954 4, RFC 4616 2",
                );
                self.enter(
                    from,
                    State::ExpectAuthResponse {
                        step: AuthStep::PlainResponse,
                    },
                );
            }
            (Mechanism::Login, Some(response)) => {
                if response == "*" {
                    self.auth_cancelled();
                    return;
                }
                match sasl::decode_response(response).and_then(|b| sasl::parse_login_field(&b)) {
                    Ok(username) => self.login_ask_password(from, username),
                    Err(error) => self.auth_undecodable(error, Mechanism::Login),
                }
            }
            (Mechanism::Login, None) => {
                self.send(
                    Reply::new(334, None, sasl::base64_encode(b"Username:")),
                    "LOGIN asks for the user name, in base64 (VXNlcm5hbWU6 is \"Username:\")",
                    "RFC 4954 4",
                );
                self.enter(
                    from,
                    State::ExpectAuthResponse {
                        step: AuthStep::LoginUsername,
                    },
                );
            }
        }
    }

    fn login_ask_password(&mut self, from: ServerStateKind, username: String) {
        self.send(
            Reply::new(334, None, sasl::base64_encode(b"Password:")),
            "LOGIN asks for the password, in base64 (UGFzc3dvcmQ6 is \"Password:\")",
            "RFC 4954 4",
        );
        self.enter(
            from,
            State::ExpectAuthResponse {
                step: AuthStep::LoginPassword { username },
            },
        );
    }

    fn auth_response(&mut self, line: &[u8]) {
        let State::ExpectAuthResponse { step } = &self.state else {
            debug_assert!(false, "auth_response outside ExpectAuthResponse");
            return;
        };
        let step = step.clone();
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches([' ', '\t']);
        if line == "*" {
            self.auth_cancelled();
            return;
        }
        match step {
            AuthStep::PlainResponse => self.auth_plain(line),
            AuthStep::LoginUsername => {
                match sasl::decode_response(line).and_then(|b| sasl::parse_login_field(&b)) {
                    Ok(username) => {
                        let from = self.state.kind();
                        self.login_ask_password(from, username);
                    }
                    Err(error) => self.auth_undecodable(error, Mechanism::Login),
                }
            }
            AuthStep::LoginPassword { username } => {
                match sasl::decode_response(line).and_then(|b| sasl::parse_login_field(&b)) {
                    Ok(password) => self.auth_verify(None, &username, &password),
                    Err(error) => self.auth_undecodable(error, Mechanism::Login),
                }
            }
        }
    }

    fn auth_plain(&mut self, response: &str) {
        if response == "*" {
            self.auth_cancelled();
            return;
        }
        match sasl::decode_response(response).and_then(|b| sasl::parse_plain(&b)) {
            Ok(creds) => {
                self.auth_verify(creds.authzid.as_deref(), &creds.authcid, &creds.password)
            }
            Err(error) => self.auth_undecodable(error, Mechanism::Plain),
        }
    }

    /// Ends an exchange: back to ExpectMail (AUTH only starts there).
    fn auth_done(&mut self) {
        let from = self.state.kind();
        self.enter(from, State::ExpectMail);
    }

    fn auth_cancelled(&mut self) {
        self.send(
            reply(
                501,
                EnhancedStatus::new(5, 0, 0),
                "Authentication cancelled",
            ),
            "the client answered the challenge with \"*\", which cancels the exchange",
            "RFC 4954 4",
        );
        self.auth_done();
    }

    fn auth_undecodable(&mut self, error: sasl::ResponseError, mechanism: Mechanism) {
        match (error, mechanism) {
            // RFC 4954 4: 501 5.5.2 is for a response that cannot be base64-decoded.
            (sasl::ResponseError::NotBase64, _) => {
                self.send(
                    reply(501, SYNTAX, "Cannot decode response"),
                    format!("{}; the exchange is abandoned", error.describe()),
                    "RFC 4954 4",
                );
                self.auth_done();
                self.auth_failed_count();
            }
            // It decoded, but holds no credentials the mechanism can use: authentication
            // fails, as it does for a wrong password.
            (sasl::ResponseError::TooLong, _) => self.auth_rejected(
                "the response is valid base64, but decodes to more than 1024 octets, more than \
                 any credentials this server takes (RFC 4616 2 asks a server to take fields of \
                 up to 255 octets), so authentication fails",
                "RFC 4954 4, 6, RFC 4616 2",
            ),
            (sasl::ResponseError::Malformed, Mechanism::Plain) => self.auth_rejected(
                "the response is valid base64, but what it decodes to is not \
                 \"authzid NUL authcid NUL password\" in UTF-8 with a user name and a \
                 password (an empty response, \"=\", is not either), so it holds no \
                 credentials and authentication fails",
                "RFC 4954 4, 6, RFC 4616 2",
            ),
            (sasl::ResponseError::Malformed, Mechanism::Login) => self.auth_rejected(
                "the response is valid base64, but what it decodes to is not UTF-8 text, so it \
                 is no user name or password, and authentication fails",
                "RFC 4954 4, 6",
            ),
        }
    }

    /// `535 5.7.8`: the exchange ended without valid credentials (RFC 4954 6).
    fn auth_rejected(&mut self, why: impl Into<std::borrow::Cow<'static, str>>, rfc: &'static str) {
        self.send(
            reply(
                535,
                EnhancedStatus::new(5, 7, 8),
                "Authentication credentials invalid",
            ),
            why,
            rfc,
        );
        self.auth_done();
        self.auth_failed_count();
    }

    fn auth_verify(&mut self, authzid: Option<&str>, authcid: &str, password: &str) {
        // AUTH is refused once authenticated, so the session is not authenticated here.
        let info = session_info(
            &self.peer,
            &self.greeted,
            &self.authenticated_as,
            self.now_ms,
        );
        if self.policy.authenticate(&info, authzid, authcid, password) {
            let identity = authzid.unwrap_or(authcid).to_string();
            self.send(
                reply(
                    235,
                    EnhancedStatus::new(2, 7, 0),
                    "Authentication successful",
                ),
                format!(
                    "the credentials for \"{authcid}\" are valid. A well-configured server \
                     offers PLAIN and LOGIN only over TLS (after STARTTLS, or on port 465 \
                     where TLS starts at once, RFC 8314; Postfix's smtpd_tls_auth_only = yes), \
                     since base64 is an encoding anyone can decode, not encryption; this \
                     teaching server has no TLS"
                ),
                "RFC 4954 4, 6",
            );
            self.authenticated_as = Some(identity.clone());
            self.events
                .push_back(ServerEvent::Authenticated { identity });
            self.auth_done();
        } else {
            self.auth_rejected(
                match authzid.filter(|authzid| *authzid != authcid) {
                    // RFC 4616 2: acting as another identity needs the server's permission.
                    Some(authzid) => format!(
                        "\"{authcid}\" asked to act as \"{authzid}\" (the authorization \
                         identity, RFC 4616 2), which the server did not allow, or the user \
                         name or its password is wrong (the server does not say which, so \
                         as not to help guessing)"
                    ),
                    None => format!(
                        "the user name \"{authcid}\" or its password is wrong (the server \
                         does not say which, so as not to help guessing)"
                    ),
                },
                "RFC 4954 6",
            );
        }
    }

    fn auth_failed_count(&mut self) {
        self.auth_failures = self.auth_failures.saturating_add(1);
        if self.auth_failures >= self.config.auth_failures_max {
            self.send(
                reply(
                    421,
                    EnhancedStatus::new(4, 7, 0),
                    format!(
                        "{} Too many failed authentication attempts",
                        self.config.hostname
                    ),
                ),
                format!(
                    "{} failed AUTH attempts; closing slows down password guessing",
                    self.auth_failures
                ),
                "RFC 4954 4",
            );
            self.close(CloseReason::TooManyAuthFailures);
        }
    }
}

/// What the policy is told about the session (a free function so that the policy can be
/// borrowed mutably at the same time as the other fields).
fn session_info<'a>(
    peer: &'a PeerInfo,
    greeted: &'a Option<Greeted>,
    authenticated_as: &'a Option<String>,
    now_ms: u64,
) -> SessionInfo<'a> {
    SessionInfo {
        peer,
        helo_name: greeted.as_ref().map(|g| g.name.as_str()),
        authenticated_as: authenticated_as.as_deref(),
        now_ms,
    }
}

/// Longest parameter keyword echoed in a reply. The grammar puts no limit on
/// `esmtp-keyword` (RFC 5321 4.1.2), but a reply line holds at most 512 octets with its code
/// and CRLF (RFC 5321 4.5.3.1.5), and a keyword that long is not one anybody implements.
const KEYWORD_SHOWN_MAX_CHARS: usize = 64;

/// Which address of the envelope a refusal or a note is about.
#[derive(Clone, Copy)]
enum AddressRole {
    Sender,
    Recipient,
}

/// `prefix`, a path, `suffix`: the text of the reply to every MAIL and RCPT, written without
/// the formatting machinery.
///
/// A path with non-ASCII characters (SMTPUTF8) is left out: reply text is ASCII (RFC 5321 4.2;
/// RFC 6531 3.7.4.2 allows UTF-8 only in a few replies, not these).
fn path_text(prefix: &str, push_path: impl FnOnce(&mut String), suffix: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + suffix.len() + 64);
    text.push_str(prefix);
    push_path(&mut text);
    if !text.is_ascii() {
        text.truncate(prefix.trim_end().len());
    }
    text.push_str(suffix);
    text
}

/// Why a server answers EHLO with its extensions: the explanation of every EHLO reply, under
/// which the details list what each of its keywords means (`explain::ehlo_keywords`).
pub const EHLO_WHY: &str = "EHLO starts an ESMTP session: the first line names the server, \
     each further line is an extension the client may use (RFC 5321 4.1.1.1). Only extensions \
     this server really implements are listed.";

/// `HOST greets NAME`, the first line of the reply to EHLO or HELO. A long argument (a
/// domain of up to 255 octets after a long host name) is cut with "...", so that the reply
/// line stays within 512 octets with its code and CRLF (RFC 5321 4.5.3.1.5).
///
/// A name with non-ASCII letters is shown as its A-label (RFC 6531 3.7.1: the EHLO response
/// holds LDH labels or A-labels), or not at all when it has none: reply text is ASCII
/// (RFC 5321 4.2).
fn greets_line(host: &str, name: &str) -> String {
    const REPLY_LINE_MAX: usize = 512;
    let a_label;
    let name = if name.is_ascii() {
        name
    } else {
        a_label = crate::smtp::address::domain_key(name);
        if a_label.is_ascii() {
            a_label.as_str()
        } else {
            "you"
        }
    };
    let room = REPLY_LINE_MAX.saturating_sub("250-".len() + host.len() + " greets ".len() + 2);
    let mut line = format!("{host} greets ");
    if name.len() <= room {
        line.push_str(name);
    } else {
        let mut end = room.saturating_sub(3);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        line.push_str(&name[..end]);
        line.push_str("...");
    }
    line
}

/// A MAIL/RCPT parameter keyword as replies name it: upper case, cut to
/// [`KEYWORD_SHOWN_MAX_CHARS`] with "..." so that no reply line can outgrow 512 octets.
fn shown_keyword(keyword: &str) -> Cow<'_, str> {
    // Nearly every keyword (SIZE, BODY) is shown as it came.
    if keyword.len() <= KEYWORD_SHOWN_MAX_CHARS
        && keyword
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_lowercase())
    {
        return Cow::Borrowed(keyword);
    }
    let mut shown: String = keyword
        .chars()
        .take(KEYWORD_SHOWN_MAX_CHARS)
        .collect::<String>()
        .to_ascii_uppercase();
    if keyword.chars().count() > KEYWORD_SHOWN_MAX_CHARS {
        shown.push_str("...");
    }
    Cow::Owned(shown)
}

/// "a", "a and b", "a, b and c".
fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What an accepted MAIL or RCPT adds to its explanation when its path had a source route.
fn source_route_note(source_route: bool, role: AddressRole) -> &'static str {
    match (source_route, role) {
        (false, _) => "",
        (true, AddressRole::Sender) => {
            " The source route before the mailbox (\"@host,...:\") is obsolete: the \
             server accepts it and ignores it, and a bounce goes to the mailbox itself \
             (RFC 5321 4.1.1.2, 3.6.1 and appendix C)."
        }
        (true, AddressRole::Recipient) => {
            " The source route before the mailbox (\"@host,...:\") is obsolete: the \
             server accepts it and ignores it, and the mail goes by the mailbox's own \
             domain (RFC 5321 4.1.1.3, 3.6.1 and appendix C)."
        }
    }
}

/// A command line as events show it, with credentials masked (see `CommandReceived`).
fn shown_line(line: &[u8], in_auth_exchange: bool) -> Vec<u8> {
    if in_auth_exchange {
        return b"<credentials>".to_vec();
    }
    // Any whitespace separates words here: a line the parser refuses (a TAB after the
    // mechanism, say) may still carry credentials.
    let mut words = line
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty());
    match (words.next(), words.next(), words.next()) {
        (Some(verb), Some(mechanism), Some(_)) if verb.eq_ignore_ascii_case(b"AUTH") => {
            [verb, b" ", mechanism, b" <credentials>"].concat()
        }
        _ => line.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::policy::StaticPolicy;

    #[test]
    fn the_greeting_line_stays_within_512_octets() {
        assert_eq!(
            greets_line("mx.example.org", "client.example"),
            "mx.example.org greets client.example"
        );
        // The longest names there can be: 247 and 254 octets (RFC 1035 2.3.4).
        let host = vec!["a".repeat(61); 4].join(".");
        let name = [
            "b".repeat(63),
            "b".repeat(63),
            "b".repeat(63),
            "c".repeat(62),
        ]
        .join(".");
        let line = greets_line(&host, &name);
        let wire = Reply::multiline(250, None, vec![line.clone(), "SIZE".into()]).to_wire();
        let first = wire.split(|&b| b == b'\n').next().unwrap();
        // With its LF: 512 octets at most, and not cut much shorter.
        assert!((510..=512).contains(&(first.len() + 1)), "{line}");
        assert!(line.ends_with("..."), "{line}");
    }

    #[test]
    fn the_greeting_line_is_ascii_whatever_name_the_client_gave() {
        // RFC 6531 3.7.1: an A-label, never the U-label the client sent.
        assert_eq!(
            greets_line("mx.example.org", "café.test"),
            "mx.example.org greets xn--caf-dma.test"
        );
        // A long one stays within the line (cut as an ASCII one would be).
        for name in ["é".repeat(300), "éa".repeat(300)] {
            let long = greets_line("mx.example.org", &name);
            assert!(long.is_ascii() && long.len() <= 506, "{long}");
        }
        // No A-label for a name IDNA refuses (a noncharacter): no name shown.
        assert_eq!(
            greets_line("mx.example.org", "b\u{ffff}é.test"),
            "mx.example.org greets you"
        );
    }

    #[test]
    fn a_path_with_non_ascii_characters_is_left_out_of_the_reply() {
        let text = path_text("Sender ", |out| out.push_str("<jö@y.test>"), " OK");
        assert_eq!(text, "Sender OK");
        let text = path_text("Recipient ", |out| out.push_str("<jo@y.test>"), " OK");
        assert_eq!(text, "Recipient <jo@y.test> OK");
    }

    #[test]
    fn keywords_are_shown_upper_case_and_cut() {
        assert!(matches!(shown_keyword("SIZE"), Cow::Borrowed("SIZE")));
        assert_eq!(shown_keyword("size"), "SIZE");
        assert_eq!(shown_keyword("x-Ünï"), "X-ÜNï");
        let long = "k".repeat(KEYWORD_SHOWN_MAX_CHARS + 1);
        let shown = shown_keyword(&long);
        assert_eq!(shown.len(), KEYWORD_SHOWN_MAX_CHARS + 3);
        assert!(shown.ends_with("K..."));
        let exact = "K".repeat(KEYWORD_SHOWN_MAX_CHARS);
        assert_eq!(shown_keyword(&exact), exact);
    }

    fn session(config: ServerConfig) -> ServerSession<StaticPolicy> {
        ServerSession::new(
            config,
            StaticPolicy::new().local_domain("example.org"),
            PeerInfo::new("192.0.2.10", Some(50000)),
            0,
        )
    }

    /// The first line of every reply sent so far.
    fn reply_lines(session: &mut ServerSession<StaticPolicy>) -> Vec<String> {
        let output = session.poll_output().unwrap_or_default();
        String::from_utf8(output)
            .expect("replies are ASCII")
            .split("\r\n")
            .filter(|line| !line.is_empty() && line.as_bytes().get(3) != Some(&b'-'))
            .map(str::to_string)
            .collect()
    }

    /// RFC 2920 3.1 and RFC 3030 4: after a refused MAIL, a pipelining client's batch of as
    /// many RCPTs as it may send (100) and a message cut into many BDAT chunks all get 503s that
    /// do not count as errors; the session stays open for its next transaction. More RCPTs
    /// than that still reach the error limit.
    #[test]
    fn bdat_chunks_after_a_refused_mail_do_not_use_up_the_recipients_allowance() {
        let batch = |recipients: usize| {
            let mut batch =
                b"EHLO c.example\r\nMAIL FROM:<a@example.net> SIZE=999999999\r\n".to_vec();
            for _ in 0..recipients {
                batch.extend_from_slice(b"RCPT TO:<bob@example.org>\r\n");
            }
            for _ in 0..20 {
                batch.extend_from_slice(b"BDAT 4\r\nabcd");
            }
            batch.extend_from_slice(b"BDAT 0 LAST\r\n");
            batch
        };
        let mut config = ServerConfig::new("mx.example.org");
        config.errors_max = 10;
        let mut s = session(config.clone());
        s.handle_input(&batch(RECIPIENTS_MIN), 0);
        s.handle_input(b"MAIL FROM:<a@example.net>\r\n", 0);
        let replies = reply_lines(&mut s);
        assert!(replies[2].starts_with("552 5.3.4 "), "{:?}", &replies[..3]);
        let sequence = replies.iter().filter(|r| r.starts_with("503 ")).count();
        assert_eq!(sequence, RECIPIENTS_MIN + 21, "{replies:?}");
        assert_eq!(
            replies.last().map(String::as_str),
            Some("250 2.1.0 Sender <a@example.net> OK"),
            "{replies:?}"
        );

        // Beyond the allowance, RCPTs count again: the 10th such error closes the session.
        let mut s = session(config);
        s.handle_input(&batch(RECIPIENTS_MIN + 1 + 10), 0);
        let replies = reply_lines(&mut s);
        assert!(
            replies.last().is_some_and(|r| r.starts_with("421 4.7.0 ")),
            "{:?}",
            replies.last()
        );
        assert!(s.is_closed());
    }

    /// RFC 5321 4.1.1.3 and appendix C: a source route is ignored, and the explanation of the
    /// reply says so only for a path that had one.
    #[test]
    fn only_a_path_with_a_source_route_is_told_it_was_ignored() {
        let mut s = session(ServerConfig::new("mx.example.org"));
        s.handle_input(
            b"EHLO c.example\r\nMAIL FROM:<@hop.example:a@example.net>\r\n\
              RCPT TO:<bob@example.org>\r\nRCPT TO: <@relay.example,@r2.example:carol@example.org>\r\n\
              RSET\r\nMAIL FROM:<a@example.net>\r\n",
            0,
        );
        let said: Vec<(u16, String)> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|event| match event {
                ServerEvent::ReplySent { reply, explanation } => {
                    Some((reply.code, explanation.why.into_owned()))
                }
                _ => None,
            })
            .collect();
        let route_noted: Vec<bool> = said
            .iter()
            .skip(2)
            .map(|(code, why)| {
                assert_eq!(*code, 250, "{why}");
                why.contains("source route before the mailbox")
            })
            .collect();
        assert_eq!(route_noted, [true, false, true, false, false], "{said:?}");
    }

    /// The 452 for one recipient too many counts them in words that agree with the number.
    #[test]
    fn a_recipient_limit_of_one_is_told_in_the_singular() {
        for (limit, counted) in [
            (1, "already has 1 recipient,"),
            (2, "already has 2 recipients,"),
        ] {
            let mut config = ServerConfig::new("mx.example.org");
            config.recipients_max = limit;
            let mut s = session(config);
            let rcpts: String = (0..=limit)
                .map(|n| format!("RCPT TO:<u{n}@example.org>\r\n"))
                .collect();
            s.handle_input(
                format!("EHLO c.example\r\nMAIL FROM:<a@example.net>\r\n{rcpts}").as_bytes(),
                0,
            );
            let why = std::iter::from_fn(|| s.poll_event())
                .find_map(|event| match event {
                    ServerEvent::ReplySent { reply, explanation } if reply.code == 452 => {
                        Some(explanation.why.into_owned())
                    }
                    _ => None,
                })
                .expect("a 452");
            assert!(why.contains(counted), "{why}");
        }
    }

    /// Shutting down says 421 and closes, in the middle of a message too, which is then not
    /// stored (no MessageReceived); a closed session stays as it is.
    #[test]
    fn shutting_down_says_421_and_closes_without_storing_a_partial_message() {
        let mut s = session(ServerConfig::new("mx.example.org"));
        s.handle_input(
            b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
              DATA\r\nSubject: half\r\n",
            0,
        );
        let _ = reply_lines(&mut s);
        s.shut_down(10);
        assert_eq!(
            reply_lines(&mut s),
            ["421 4.3.2 mx.example.org Service shutting down, closing transmission channel"]
        );
        assert!(s.is_closed());
        let events: Vec<ServerEvent> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(events.iter().any(|e| matches!(
            e,
            ServerEvent::Closed {
                reason: CloseReason::ShuttingDown
            }
        )));
        assert!(!events
            .iter()
            .any(|e| matches!(e, ServerEvent::MessageReceived { .. })));
        s.shut_down(20);
        assert_eq!(s.poll_output(), None);
    }

    /// A message awaiting storage gets its 250 before the 421: shutting down then waits.
    #[test]
    fn shutting_down_waits_for_the_reply_of_a_message_being_stored() {
        let mut s = session(ServerConfig::new("mx.example.org"));
        s.handle_input(
            b"EHLO c.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
              DATA\r\nSubject: whole\r\n\r\nx\r\n.\r\n",
            0,
        );
        let _ = reply_lines(&mut s);
        s.shut_down(10);
        assert_eq!(s.poll_output(), None);
        assert!(!s.is_closed());
        s.message_stored(
            StorageOutcome::Stored {
                queue_id: Some("Q1".into()),
            },
            20,
        )
        .expect("a message awaits storage");
        s.shut_down(30);
        let replies = reply_lines(&mut s);
        assert!(replies[0].starts_with("250 2.0.0"), "{replies:?}");
        assert!(replies[1].starts_with("421 4.3.2"), "{replies:?}");
        assert!(s.is_closed());
    }

    /// Read octet by octet, in any split, a line gives the chunk size `bdat_chunk_size` reads
    /// from it whole.
    #[test]
    fn bdat_size_scan_reads_as_bdat_chunk_size() {
        let lines: &[&[u8]] = &[
            b"BDAT 6",
            b"bdat 6 LAST",
            b"BDAT 0006 FIRST",
            b"BDAT 6\t",
            b"BDAT 6\t \t",
            b"BDAT 6\t x",
            b"BDAT 6 \tx",
            b"BDAT 6x",
            b"BDAT  6",
            b"BDAT x",
            b"BDAT ",
            b"BDAT",
            b"BDATX 6",
            b"BDAT\t6",
            b"NOOP 6",
            b"BDAT 18446744073709551615 LAST",
            b"BDAT 18446744073709551616 LAST",
            b"BDAT 99999999999999999999999",
            b"BDAT \t  0000000000000000000000000000012 LAST",
            b"BDAT\t\t",
        ];
        for &line in lines {
            let expected = bdat_chunk_size(line);
            for split in 0..=line.len() {
                let (head, rest) = line.split_at(split);
                let mut scan = BdatSizeScan::new(head);
                scan.feed(rest);
                if head.len() >= 5 || expected.is_none() {
                    assert_eq!(
                        scan.size(),
                        expected,
                        "{:?} split at {split}",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
        // A bare CR or LF ends the size as the text before it would.
        let mut scan = BdatSizeScan::new(b"BDAT 0000");
        scan.feed(b"12\nQUIT");
        assert_eq!(scan.size(), Some(12));
        let mut scan = BdatSizeScan::new(b"BDAT 12\t");
        scan.feed(b"\rx");
        assert_eq!(scan.size(), Some(12));
    }

    #[test]
    fn smtputf8_is_offered_only_with_8bitmime() {
        let mut config = ServerConfig::new("mx.example.org");
        config.extensions.eight_bit_mime = false;
        let mut server = session(config);
        server.handle_input(b"EHLO c.example\r\n", 0);
        let ehlo = String::from_utf8(server.poll_output().unwrap_or_default()).unwrap();
        assert!(
            !ehlo.contains("SMTPUTF8") && !ehlo.contains("8BITMIME"),
            "{ehlo}"
        );
        server.handle_input(b"MAIL FROM:<a@c.example> SMTPUTF8\r\n", 0);
        assert_eq!(
            reply_lines(&mut server),
            ["555 5.5.4 SMTPUTF8 parameter not supported"]
        );
        let mut server = session(ServerConfig::new("mx.example.org"));
        server.handle_input(b"EHLO c.example\r\n", 0);
        let ehlo = String::from_utf8(server.poll_output().unwrap_or_default()).unwrap();
        assert!(ehlo.contains("250-8BITMIME\r\n250-SMTPUTF8\r\n"), "{ehlo}");
    }

    #[test]
    fn command_lines_are_reported_only_when_the_driver_asks() {
        let commands = |command_events: bool| {
            let mut config = ServerConfig::new("mx.example.org");
            config.command_events = command_events;
            let mut server = session(config);
            server.handle_input(b"EHLO c.example\r\nAUTH PLAIN AGEAYg==\r\nNOOP\r\n", 0);
            std::iter::from_fn(|| server.poll_event())
                .filter_map(|event| match event {
                    ServerEvent::CommandReceived { line } => Some(line),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            commands(true),
            [
                b"EHLO c.example".to_vec(),
                b"AUTH PLAIN <credentials>".to_vec(),
                b"NOOP".to_vec()
            ]
        );
        assert!(commands(false).is_empty());
    }

    #[test]
    fn a_line_after_a_bare_lf_is_dropped_not_buffered() {
        let mut server = session(ServerConfig::new("mx.example.org"));
        server.handle_input(b"EHLO c.example\r\nNOOP\n", 0);
        for _ in 0..1000 {
            server.handle_input(&[b'x'; 1000], 0);
            server.handle_input(b"MAIL FROM:<a@evil.example> b", 0);
            assert!(
                server.input.is_empty(),
                "{} octets kept",
                server.input.len()
            );
        }
        // A CR at the end may be half of the CRLF that ends the line: it alone is kept.
        server.handle_input(b"\r", 0);
        assert_eq!(server.input.len(), 1);
        server.handle_input(b"\nNOOP\r\n", 0);
        assert_eq!(
            reply_lines(&mut server),
            [
                "220 mx.example.org ESMTP SMTP Lab",
                "250 CHUNKING",
                "500 5.5.2 Bare <LF> in command line; end lines with <CR><LF>",
                "250 2.0.0 OK",
            ]
        );
        assert_eq!(server.state(), ServerStateKind::ExpectMail);
    }

    #[test]
    fn an_over_long_mail_line_is_cut_at_its_limit_not_buffered() {
        let mut config = ServerConfig::new("mx.example.org");
        config.auth_enabled = true;
        for (greeting, limit) in [("EHLO", 1048), ("HELO", 512)] {
            let mut server = session(config.clone());
            server.handle_input(format!("{greeting} c.example\r\n").as_bytes(), 0);
            server.handle_input(b"MAIL FROM:<a@b.example> AUTH=", 0);
            for _ in 0..100 {
                server.handle_input(&[b'x'; 997], 0);
                assert!(
                    server.input.len() < limit,
                    "{greeting}: {} octets kept",
                    server.input.len()
                );
            }
            server.handle_input(b"\r\nNOOP\r\n", 0);
            let lines = reply_lines(&mut server);
            assert_eq!(
                lines[lines.len() - 2..],
                [
                    format!("500 5.5.2 Line too long (limit {limit} octets)"),
                    "250 2.0.0 OK".to_string(),
                ],
                "{greeting}"
            );
        }
    }

    #[test]
    fn mail_line_limit_counts_only_the_advertised_extensions() {
        let mut config = ServerConfig::new("mx.example.org");
        let limit = |config: &ServerConfig, greeting: &str| {
            let mut server = session(config.clone());
            server.handle_input(format!("{greeting} c.example\r\n").as_bytes(), 0);
            (
                server.limit_octets(server.line_limit(b"mail FROM:<a@b>")),
                server.limit_octets(server.line_limit(b"RCPT TO:<a@b>")),
            )
        };
        // SIZE (always advertised) 26 and SMTPUTF8 10; nothing after HELO; never for RCPT.
        assert_eq!(limit(&config, "EHLO"), (548, 512));
        assert_eq!(limit(&config, "HELO"), (512, 512));
        config.auth_enabled = true;
        assert_eq!(limit(&config, "EHLO"), (1048, 512));
        assert_eq!(limit(&config, "HELO"), (512, 512));
        config.extensions.smtputf8 = false;
        assert_eq!(limit(&config, "EHLO"), (1038, 512));
        // RFC 6152 states no increase for BODY.
        config.extensions.eight_bit_mime = false;
        assert_eq!(limit(&config, "EHLO"), (1038, 512));
    }

    #[test]
    fn a_bdat_chunk_with_a_readable_size_never_runs_as_commands() {
        // The chunk is "QUIT\r\n": run as a command, it would close the session.
        let before = [
            "",
            "HELO c.example\r\n",
            "EHLO c.example\r\n",
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n",
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\n",
            "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\n\
             BDAT 1\r\nx",
            "HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\n",
        ];
        // Well-formed (accepted in a transaction after EHLO with CHUNKING, refused elsewhere)
        // and malformed with a readable size (always refused).
        let bdat = [
            "BDAT 6",
            "BDAT 6 FIRST",
            "BDAT 6 LAST LAST",
            "BDAT 6 LAST\x01",
            "BDAT 6 \u{e9}",
        ];
        for chunking in [true, false] {
            let mut config = ServerConfig::new("mx.example.org");
            config.extensions.chunking = chunking;
            for prefix in before {
                for line in bdat {
                    let mut server = session(config.clone());
                    server.handle_input(prefix.as_bytes(), 0);
                    let replies = reply_lines(&mut server).len();
                    server.handle_input(format!("{line}\r\nQUIT\r\n").as_bytes(), 0);
                    let what = format!("{prefix:?} {line:?} chunking {chunking}");
                    assert_eq!(reply_lines(&mut server).len(), 1, "{what}");
                    assert!(replies > 0 && !server.is_closed(), "{what}");
                    assert!(server.input.is_empty(), "{what}");
                }
            }
        }
        // A refused session (554 at the greeting) reads the chunk too.
        for line in bdat {
            let mut server = ServerSession::new(
                ServerConfig::new("mx.example.org"),
                StaticPolicy::new().refuse_peer("192.0.2.10"),
                PeerInfo::new("192.0.2.10", Some(50000)),
                0,
            );
            assert_eq!(server.state(), ServerStateKind::ExpectQuit);
            server.handle_input(format!("{line}\r\nQUIT\r\n").as_bytes(), 0);
            assert!(!server.is_closed(), "{line:?}");
            server.handle_input(b"QUIT\r\n", 0);
            assert!(server.is_closed(), "{line:?}");
        }
    }

    #[test]
    fn a_client_that_ends_lines_with_bare_lf_is_told_and_closed() {
        let mut server = session(ServerConfig::new("mx.example.org"));
        server.handle_input(
            b"EHLO c.example\nMAIL FROM:<a@b.example>\nRCPT TO:<c@d>\n",
            0,
        );
        assert_eq!(
            reply_lines(&mut server),
            [
                "220 mx.example.org ESMTP SMTP Lab",
                "500 5.5.2 Bare <LF> in command line; end lines with <CR><LF>",
                "421 4.5.0 mx.example.org Bare <LF> again; end lines with <CR><LF>, closing connection",
            ]
        );
        assert!(server.is_closed());
    }

    #[test]
    fn credentials_never_reach_the_events() {
        let shown = |line: &[u8], in_auth| String::from_utf8(shown_line(line, in_auth)).unwrap();
        for (line, in_auth, expected) in [
            (
                &b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="[..],
                false,
                "AUTH PLAIN <credentials>",
            ),
            (b"auth login YWxpY2U=", false, "auth login <credentials>"),
            (b"AUTH LOGIN", false, "AUTH LOGIN"),
            (
                b"AUTH PLAIN\tAGFsaWNlAHNlY3JldA==",
                false,
                "AUTH PLAIN <credentials>",
            ),
            (
                b"AUTH\tPLAIN AGFsaWNlAHNlY3JldA==",
                false,
                "AUTH PLAIN <credentials>",
            ),
            (b"c2VjcmV0", true, "<credentials>"),
            (b"MAIL FROM:<a@b>", false, "MAIL FROM:<a@b>"),
        ] {
            assert_eq!(shown(line, in_auth), expected, "{line:?}");
        }
    }
}
