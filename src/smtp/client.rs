//! The client side of an SMTP session (RFC 5321 3 and 4, with PIPELINING RFC 2920, SIZE
//! RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, AUTH PLAIN RFC 4954 and the parameters
//! of DSN RFC 3461) as a sans-I/O
//! engine: server bytes and the time go in, command bytes, events and the next deadline come
//! out, and at the end an outcome says what happened to each recipient.
//!
//! It is not a queue, a resolver or a socket: it delivers the messages it is given, one mail
//! transaction after another, over one connection that someone else opened, and it never
//! retries later, reads a clock or blocks. After a completed transaction the next one (the
//! next message's, or this one's for recipients a 452 held back) starts with MAIL; after one
//! left open (every recipient refused, DATA refused, or a BDAT chunk refused) with RSET (RFC
//! 5321 4.1.1.5). With nothing left it says QUIT, or first idles
//! `keep_open_ms` for another message, as a connection cache does. Configured with a chunk
//! size, it sends the message with BDAT (CHUNKING, RFC 3030) to a server that offers it, as
//! counted chunks the server need not scan for an end, without dot-stuffing, waiting for each
//! chunk's reply, or, where the server offers PIPELINING and the client pipelines (its
//! `prefer_pipelining`), sending them on with up to
//! [`PIPELINED_CHUNKS_MAX`] unanswered (RFC 3030 4.2); otherwise with DATA. It does not speak
//! STARTTLS or BINARYMIME, and does not convert 8-bit messages to 7-bit.
//!
//! ```text
//!  connect ──► ExpectGreeting ──220──► ExpectEhloReply ──250──┬───────────────┐
//!                                        │ 500/501/502/504    │ credentials   │
//!                                        ▼                    ▼               │
//!                                  ExpectHeloReply ──250──► ExpectAuthReply   │
//!                                        │                    │ 235           │
//!                                        └────────────────────┴──────┬────────┘
//!                                                                    ▼
//!        ┌─── 250 (more recipients, or the next message) ───── ExpectMailReply
//!        │                                                           │ 250 (pipelined: MAIL
//!        │              ExpectRsetReply ◄── none accepted,           ▼  and RCPTs in one batch)
//!        │                   │ 250        more to send ──── ExpectRcptReplies
//!        │                   └────────────► MAIL again               │ some accepted
//!        │                                                           ▼
//!        │                             CHUNKING offered and a chunk size set? ──no──┐
//!        │                                                           │ yes          │
//!        │                                                           ▼              │
//!        │                  ┌─── 250 ──────────► more than one chunk left?          │
//!        │                  │                     │ yes              │ no           ▼
//!        │           ExpectChunkReply ◄─ BDAT n ──┘     BDAT n LAST, │     ExpectDataGoAhead
//!        │           (4yz/5yz: RSET      and a chunk    the last     │              │ 354: the
//!        │            before more mail)  (pipelined:    chunk        │              │ data, dot-
//!        │                               up to 8 sent                ▼              │ stuffed
//!        │                               unanswered)      ExpectLastChunkReply      ▼
//!        │                                                           │        ExpectDataReply
//!        └─────────── 250 (the next message) ────────────────────────┼─── 250 ──────┘
//!                                                                    │ nothing left to send
//!                          Idle (keep_open_ms) ◄── a kept connection ┤
//!                           │ time is up                             ▼
//!                           └───────────► QUIT ───────────────► ExpectQuitReply
//!                                                                    │ 221/close/timeout
//!                                                                    ▼
//!                                                                 Finished
//! ```
//!
//! Every other transition ends the session: a 421 at any point closes at once, a 4yz or 5yz
//! that refuses the session sends QUIT (one that refuses a message goes on to the next
//! transaction, for recipients a 452 held back, or to the next message, if any, as above),
//! and a malformed reply, a reply of the
//! wrong class, a timeout or a closed connection close at once. Recipients without a final
//! answer then fail temporarily: the message was not delivered to them.

use std::collections::VecDeque;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::dot;
use super::dsn_params::{envelope_id_problem, original_recipient_parameter};
pub use super::dsn_params::{
    xtext, DsnReturn, Notify, OriginalRecipient, RecipientDsn, ENVID_MAX_CHARS,
};
use super::reply::{EnhancedStatus, Reply, ReplyError, ReplyReader};
use crate::mail::base64;

/// Most forward paths one session accepts from its caller.
pub const FORWARD_PATHS_MAX: usize = 1000;

/// Longest path, angle brackets included (RFC 5321 4.5.3.1.3).
pub const PATH_MAX_OCTETS: usize = 256;

/// Longest domain, and so longest EHLO argument (RFC 5321 4.5.3.1.2).
pub const HELO_NAME_MAX_OCTETS: usize = 255;

/// Largest message the session accepts from its caller.
pub const MESSAGE_MAX_OCTETS: usize = 64 * 1024 * 1024;

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4).
pub const COMMAND_LINE_MAX_OCTETS: usize = 512;

/// Longest user name or password in SASL PLAIN (RFC 4616 2).
pub const SASL_PLAIN_FIELD_MAX_OCTETS: usize = 255;

/// Most AUTH mechanisms and unknown keywords kept from one EHLO reply.
const EXTENSION_WORDS_MAX: usize = 64;

/// Most BDAT chunks a pipelining client has sent and not yet had answered. RFC 3030 2 and
/// 4.2 let a client pipeline its chunks; a bound on those in flight keeps a client that writes
/// before it reads (RFC 2920 3.1 makes avoiding that deadlock the client's task) from having
/// more replies owed than any connection's buffers hold, however small the chunks.
pub const PIPELINED_CHUNKS_MAX: usize = 8;

/// RFC 5321 4.5.3.2: how long to wait for each reply. The values are the RFC's minimums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTimeouts {
    /// The 220 greeting (4.5.3.2.1: 5 minutes).
    pub greeting_ms: u64,
    /// The reply to MAIL (4.5.3.2.2: 5 minutes).
    pub mail_ms: u64,
    /// The reply to each RCPT (4.5.3.2.3: 5 minutes).
    pub rcpt_ms: u64,
    /// The 354 after DATA (4.5.3.2.4: 2 minutes).
    pub data_initiation_ms: u64,
    /// Each send of a block of data (4.5.3.2.5: 3 minutes). Only the transport sees each send:
    /// a driver writing to a socket applies it to each write and reports one that stalls with
    /// [`ClientSession::handle_send_failed`]. The session waits this long for the reply to a
    /// BDAT chunk that is not the last (RFC 3030 names no timeout).
    pub data_block_ms: u64,
    /// The reply after the final ".CRLF" (4.5.3.2.6: 10 minutes), and after the last BDAT
    /// chunk, which completes the message as the final dot does (RFC 3030 names no timeout).
    pub data_termination_ms: u64,
    /// EHLO, HELO, AUTH, RSET and QUIT, for which the RFC names no value.
    pub other_command_ms: u64,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        const MINUTE_MS: u64 = 60_000;
        ClientTimeouts {
            greeting_ms: 5 * MINUTE_MS,
            mail_ms: 5 * MINUTE_MS,
            rcpt_ms: 5 * MINUTE_MS,
            data_initiation_ms: 2 * MINUTE_MS,
            data_block_ms: 3 * MINUTE_MS,
            data_termination_ms: 10 * MINUTE_MS,
            other_command_ms: 5 * MINUTE_MS,
        }
    }
}

/// How the client behaves, independent of which message it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The client's own name, sent with EHLO/HELO (RFC 5321 4.1.1.1).
    pub helo_name: String,
    /// User name and password for AUTH PLAIN (RFC 4954, RFC 4616), for submission (RFC 6409).
    /// When set, the session fails rather than send without authenticating.
    pub credentials: Option<(String, String)>,
    /// Batch MAIL and all RCPTs in one write when the server advertises PIPELINING (RFC 2920).
    pub prefer_pipelining: bool,
    pub timeouts: ClientTimeouts,
    /// Most RCPTs in one mail transaction; more recipients go in further transactions. RFC 5321
    /// 4.5.3.1.8 obliges servers to take at least 100.
    pub recipients_per_transaction_max: usize,
    /// Most mail transactions in one session (452 "too many recipients" starts another).
    pub transactions_max: usize,
    /// After the last message, keep the connection open this long for more messages before
    /// QUIT, as Postfix's connection cache does (`smtp_connection_cache_time_limit`, 2 s).
    /// `None`: QUIT as soon as nothing is left to send.
    pub keep_open_ms: Option<u64>,
    /// Send each message with BDAT (RFC 3030 CHUNKING), in chunks of at most this many
    /// octets, to a server that offers CHUNKING (as Exim does; Postfix's client never does).
    /// `None`, or a server without CHUNKING: DATA.
    pub bdat_chunk_octets: Option<usize>,
}

impl ClientConfig {
    /// The defaults: no credentials, pipelining when offered, RFC timeouts, 100 recipients per
    /// transaction, 100 transactions.
    pub fn new(helo_name: impl Into<String>) -> Self {
        ClientConfig {
            helo_name: helo_name.into(),
            credentials: None,
            prefer_pipelining: true,
            timeouts: ClientTimeouts::default(),
            recipients_per_transaction_max: super::server::RECIPIENTS_MIN,
            transactions_max: 100,
            keep_open_ms: None,
            bdat_chunk_octets: None,
        }
    }
}

/// The SMTP envelope (RFC 5321 2.3.1): where bounces go and who receives the message. It is not
/// the message's From/To/Cc header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The address for `MAIL FROM:<...>`, without angle brackets; empty for a bounce
    /// (RFC 5321 4.5.5: `MAIL FROM:<>`).
    pub reverse_path: String,
    /// The addresses for `RCPT TO:<...>`, without angle brackets, in order.
    pub forward_paths: Vec<String>,
    /// Delivery status notifications asked for with the DSN extension (RFC 3461); none by
    /// default.
    #[serde(default, skip_serializing_if = "DsnParameters::is_empty")]
    pub dsn: DsnParameters,
}

/// What a sender asks of the DSN extension (RFC 3461): when to be told about each recipient,
/// how much of the message a failure notice returns, and an identifier that the notices carry
/// back. They go only to a server that lists `DSN` in its EHLO reply (RFC 3461 3: a client
/// uses the parameters only then); to any other they are not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnParameters {
    /// `NOTIFY` on every RCPT (RFC 3461 4.1). Without it the server decides, and notifies
    /// at least of failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// `RET` on MAIL (RFC 3461 4.3): whether a failure notice returns the whole message or
    /// only its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<DsnReturn>,
    /// `ENVID` on MAIL (RFC 3461 4.4): the sender's name for this transmission, printable
    /// ASCII, sent as xtext; each notice quotes it as `Original-Envelope-Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// `ORCPT=rfc822;<address>` on each RCPT (RFC 3461 4.2): the address as the sender gave
    /// it, which each notice quotes as `Original-Recipient` however later hops rewrite it. A
    /// non-ASCII address goes as `ORCPT=utf-8;` in RFC 6533's 7-bit form; one too long for
    /// the parameter's 500 characters goes without.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orcpt: bool,
    /// What an earlier hop was asked for each recipient, in the order of the forward paths,
    /// for an MTA that relays the message: passed on as it came (RFC 3461 5.2), in place of
    /// `notify` and `orcpt`. Empty, or one per forward path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientDsn>,
}

impl DsnParameters {
    /// Nothing asked: no parameter is sent, even to a server that offers DSN.
    pub fn is_empty(&self) -> bool {
        *self == DsnParameters::default()
    }
}

/// Why a session could not be set up: a mistake of the calling code, not of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientSetupError {
    InvalidHeloName {
        helo_name: String,
    },
    NoForwardPaths,
    TooManyForwardPaths {
        count: usize,
        max: usize,
    },
    InvalidPath {
        path: String,
        reason: &'static str,
    },
    MessageTooLarge {
        octets: usize,
        max: usize,
    },
    InvalidCredentials {
        reason: &'static str,
    },
    InvalidLimit {
        name: &'static str,
    },
    /// A DSN parameter (RFC 3461) that cannot be sent as given.
    InvalidDsn {
        reason: String,
    },
    /// A further message cannot join this session: it is ending, or has used its transactions.
    SessionClosing,
}

impl fmt::Display for ClientSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSetupError::InvalidHeloName { helo_name } => {
                write!(f, "not a usable EHLO name: {helo_name:?}")
            }
            ClientSetupError::NoForwardPaths => write!(f, "the envelope has no recipients"),
            ClientSetupError::TooManyForwardPaths { count, max } => {
                write!(
                    f,
                    "{count} recipients, more than the {max} one session takes"
                )
            }
            ClientSetupError::InvalidPath { path, reason } => {
                write!(f, "unusable address {path:?}: {reason}")
            }
            ClientSetupError::MessageTooLarge { octets, max } => {
                write!(f, "message of {octets} octets, more than {max}")
            }
            ClientSetupError::InvalidCredentials { reason } => {
                write!(f, "unusable credentials: {reason}")
            }
            ClientSetupError::InvalidLimit { name } => write!(f, "{name} must be at least 1"),
            ClientSetupError::InvalidDsn { reason } => write!(f, "{reason}"),
            ClientSetupError::SessionClosing => {
                write!(f, "the session is ending and takes no further message")
            }
        }
    }
}

impl std::error::Error for ClientSetupError {}

/// What the client waits for next; the session's state as shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientStateKind {
    ExpectGreeting,
    ExpectEhloReply,
    ExpectHeloReply,
    ExpectAuthReply,
    ExpectMailReply,
    ExpectRcptReplies,
    ExpectRsetReply,
    /// The 354 that allows the message to be sent.
    ExpectDataGoAhead,
    /// The reply after the message's final ".CRLF".
    ExpectDataReply,
    /// The reply to a BDAT chunk that is not the last (RFC 3030 2).
    ExpectChunkReply,
    /// The reply to the last BDAT chunk, which says whether the server took the message.
    ExpectLastChunkReply,
    /// Nothing to send: the connection is kept open a while for another message.
    Idle,
    ExpectQuitReply,
    Finished,
}

impl ClientStateKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientStateKind::ExpectGreeting => "ExpectGreeting",
            ClientStateKind::ExpectEhloReply => "ExpectEhloReply",
            ClientStateKind::ExpectHeloReply => "ExpectHeloReply",
            ClientStateKind::ExpectAuthReply => "ExpectAuthReply",
            ClientStateKind::ExpectMailReply => "ExpectMailReply",
            ClientStateKind::ExpectRcptReplies => "ExpectRcptReplies",
            ClientStateKind::ExpectRsetReply => "ExpectRsetReply",
            ClientStateKind::ExpectDataGoAhead => "ExpectDataGoAhead",
            ClientStateKind::ExpectDataReply => "ExpectDataReply",
            ClientStateKind::ExpectChunkReply => "ExpectChunkReply",
            ClientStateKind::ExpectLastChunkReply => "ExpectLastChunkReply",
            ClientStateKind::Idle => "Idle",
            ClientStateKind::ExpectQuitReply => "ExpectQuitReply",
            ClientStateKind::Finished => "Finished",
        }
    }

    /// When in the session something happened, in words for a report ("while waiting for
    /// the reply to MAIL").
    pub fn moment(self) -> &'static str {
        match self {
            ClientStateKind::ExpectGreeting => "while waiting for the greeting",
            ClientStateKind::ExpectEhloReply => "while waiting for the reply to EHLO",
            ClientStateKind::ExpectHeloReply => "while waiting for the reply to HELO",
            ClientStateKind::ExpectAuthReply => "while waiting for the reply to AUTH",
            ClientStateKind::ExpectMailReply => "while waiting for the reply to MAIL",
            ClientStateKind::ExpectRcptReplies => "while waiting for the replies to RCPT",
            ClientStateKind::ExpectRsetReply => "while waiting for the reply to RSET",
            ClientStateKind::ExpectDataGoAhead => "while waiting for the reply to DATA",
            ClientStateKind::ExpectDataReply => {
                "while waiting for the reply to the message (after its final dot)"
            }
            ClientStateKind::ExpectChunkReply => "while waiting for the reply to a BDAT chunk",
            ClientStateKind::ExpectLastChunkReply => {
                "while waiting for the reply to the message (after its last BDAT chunk)"
            }
            ClientStateKind::Idle => "while keeping the connection for more mail",
            ClientStateKind::ExpectQuitReply => "while waiting for the reply to QUIT",
            ClientStateKind::Finished => "after the session ended",
        }
    }
}

impl fmt::Display for ClientStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The service extensions a server listed in its EHLO reply (RFC 5321 4.1.1.1, 2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerExtensions {
    pub pipelining: bool,
    /// `SIZE n` (RFC 1870): `Some(0)` when advertised without a fixed limit.
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub enhanced_status_codes: bool,
    /// AUTH mechanisms in upper case (RFC 4954 3).
    pub auth_mechanisms: Vec<String>,
    pub chunking: bool,
    pub starttls: bool,
    pub dsn: bool,
    /// Any other keyword lines, as sent.
    pub others: Vec<String>,
}

impl ServerExtensions {
    /// Reads the keywords of a 250 reply to EHLO. The first line is the server's name and
    /// greeting; each following line is `keyword [params]` (RFC 5321 4.1.1.1). Empty lines (as
    /// in Postfix's smtp-sink, which ends with `250 `) are skipped.
    pub fn from_ehlo_reply(reply: &Reply) -> Self {
        let mut extensions = ServerExtensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(first) = words.next() else { continue };
            // `AUTH=PLAIN LOGIN` is the pre-RFC 4954 form that some servers still add.
            let (keyword, first_param) = match first.split_once('=') {
                Some((keyword, param)) => (keyword, Some(param)),
                None => (first, None),
            };
            let params: Vec<&str> = first_param
                .into_iter()
                .filter(|param| !param.is_empty())
                .chain(words)
                .collect();
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => extensions.pipelining = true,
                "SIZE" => {
                    // RFC 1870 4: no number, or 0, means no fixed limit.
                    let limit = params.first().and_then(|n| n.parse().ok()).unwrap_or(0);
                    extensions.size = Some(limit);
                }
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => extensions.enhanced_status_codes = true,
                "CHUNKING" => extensions.chunking = true,
                "STARTTLS" => extensions.starttls = true,
                "DSN" => extensions.dsn = true,
                "AUTH" => {
                    for mechanism in params {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if extensions.auth_mechanisms.len() < EXTENSION_WORDS_MAX
                            && !extensions.auth_mechanisms.contains(&mechanism)
                        {
                            extensions.auth_mechanisms.push(mechanism);
                        }
                    }
                }
                _ => {
                    if extensions.others.len() < EXTENSION_WORDS_MAX {
                        extensions.others.push(line.clone());
                    }
                }
            }
        }
        extensions
    }

    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms
            .iter()
            .any(|offered| offered.eq_ignore_ascii_case(mechanism))
    }
}

/// Who wrote a reply in an outcome: the server, or this client when it refused to send
/// something the server could not take (for example a non-ASCII address without SMTPUTF8) or
/// when the session broke (timeout, closed connection, garbage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyOrigin {
    Server,
    Client,
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    /// The server took responsibility for the message (RFC 5321 6.1); the reply is the one
    /// after the final ".CRLF".
    Accepted(Reply),
    /// Not delivered now; a 4yz (or a broken session): try again later (RFC 5321 4.5.4.1).
    TemporaryFailure(Reply),
    /// Not delivered, and trying again will not help; a 5yz: the sender gets a bounce.
    PermanentFailure(Reply),
}

impl RecipientStatus {
    pub fn reply(&self) -> &Reply {
        match self {
            RecipientStatus::Accepted(reply)
            | RecipientStatus::TemporaryFailure(reply)
            | RecipientStatus::PermanentFailure(reply) => reply,
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, RecipientStatus::Accepted(_))
    }
}

/// The result for one forward path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    pub forward_path: String,
    pub status: RecipientStatus,
    pub reply_origin: ReplyOrigin,
}

/// The status of this client's own temporary failure for the recipients a session had no
/// transactions left for (its `transactions_max`); this client gives X.5.3 to nothing else.
const SESSION_FULL_STATUS: EnhancedStatus = EnhancedStatus::new(4, 5, 3);

impl RecipientOutcome {
    /// Not tried: the session had used up its transactions before this recipient's turn, so
    /// another session may take it at once.
    pub fn left_for_another_session(&self) -> bool {
        self.reply_origin == ReplyOrigin::Client
            && matches!(&self.status, RecipientStatus::TemporaryFailure(reply)
                if reply.enhanced == Some(SESSION_FULL_STATUS))
    }
}

/// What a finished session achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOutcome {
    /// One entry per forward path of the envelope, in the envelope's order.
    pub recipients: Vec<RecipientOutcome>,
    /// The server's reply after each message sent with DATA that it accepted, in order (more
    /// than one when a 452 split the recipients over several mail transactions).
    pub data_replies: Vec<Reply>,
    /// What the server advertised, if it got as far as answering EHLO (shared with the
    /// session and its other outcomes).
    pub extensions: Option<Arc<ServerExtensions>>,
    /// How many mail transactions were started (MAIL commands sent).
    pub mail_transactions: usize,
}

impl SessionOutcome {
    /// The reply to the last accepted message.
    pub fn final_data_reply(&self) -> Option<&Reply> {
        self.data_replies.last()
    }

    pub fn all_accepted(&self) -> bool {
        self.recipients.iter().all(|r| r.status.is_accepted())
    }

    pub fn recipient(&self, forward_path: &str) -> Option<&RecipientOutcome> {
        self.recipients
            .iter()
            .find(|r| r.forward_path == forward_path)
    }
}

/// Begins the finding of a client whose wait for a reply ran out (RFC 5321 4.5.3.2): the
/// recipients it had not delivered fail with `451 4.4.2 no reply from the server while ...`.
pub const NO_REPLY: &str = "no reply from the server";

/// Something that happened in the session, in order, for traces and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientEvent {
    /// A command line was handed out through `poll_output`, without its CRLF. The AUTH
    /// credentials are shown as `<credentials>`.
    CommandSent {
        line: String,
    },
    /// The dot-stuffed message was handed out through `poll_output`, after DATA's 354.
    DataSent {
        octets: usize,
    },
    /// A BDAT chunk was handed out through `poll_output`, after its command line: `octets`
    /// of the message (with CRLF line endings, not dot-stuffed) from `offset` on; `last` for
    /// the one sent with LAST.
    ChunkSent {
        offset: usize,
        octets: usize,
        last: bool,
    },
    ReplyReceived {
        reply: Reply,
    },
    /// The server's bytes could not be read as a reply; the session ends.
    MalformedReply {
        error: ReplyError,
    },
    ExtensionsLearned {
        extensions: Arc<ServerExtensions>,
    },
    StateChanged {
        from: ClientStateKind,
        to: ClientStateKind,
    },
    /// A RCPT was accepted; delivery still depends on the DATA reply.
    RecipientAccepted {
        forward_path: String,
        reply: Reply,
    },
    /// The recipient will not get the message in this session.
    RecipientRefused {
        forward_path: String,
        reply: Reply,
        reply_origin: ReplyOrigin,
    },
    /// Refused with 452 "too many recipients" after others were accepted: it goes in the next
    /// mail transaction (RFC 5321 4.5.3.1.10).
    RecipientDeferred {
        forward_path: String,
        reply: Reply,
    },
    /// The server took responsibility for the message for these recipients.
    MessageAccepted {
        forward_paths: Vec<String>,
        reply: Reply,
        /// Other recipients of the message wait for a later mail transaction (past the
        /// recipients a transaction carries, or after a 452, RFC 5321 4.5.3.1.10): these are
        /// settled before the message is done.
        more_transactions: bool,
        /// The message's place in the session (0 for the first), as in `MessageFinished`.
        index: usize,
    },
    /// Every recipient of message `index` (0 for the first message of the session) has its
    /// answer; [`ClientSession::outcomes`] holds it.
    MessageFinished {
        index: usize,
    },
    /// Message `index` asked for delivery reports (DSN: NOTIFY, RET, ENVID or ORCPT), but
    /// the server does not offer DSN, so its MAIL and RCPT commands go without them (RFC
    /// 3461 5.2.2): the server will notify as it sees fit.
    DsnWithheld {
        index: usize,
    },
    TimedOut {
        state: ClientStateKind,
    },
    PeerClosed,
    Finished,
}

/// A command whose reply is still due, oldest first (RFC 2920 3.1: replies come in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    Greeting,
    Ehlo,
    Helo,
    Auth(AuthStep),
    Mail,
    Rcpt(usize),
    Rset,
    Data,
    Payload,
    /// The reply to a BDAT chunk; `last` for the one sent with LAST.
    Chunk {
        last: bool,
    },
    /// The reply to a chunk sent, pipelined, before the server refused one ahead of it: the
    /// transaction has failed, and whatever the server answers it changes nothing (RFC 3030
    /// 2: the server "MUST be prepared to accept and discard" such chunks).
    ChunkAfterRefusal,
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthStep {
    /// `AUTH PLAIN <initial response>` sent.
    InitialResponseSent,
    /// `AUTH PLAIN` alone sent, because the line with the response would be too long.
    AwaitingChallenge,
    /// The response sent after a 334.
    ResponseSent,
    /// `*` sent to cancel (RFC 4954 4) after a challenge PLAIN has no answer for.
    Cancelled,
}

/// One mail transaction (RFC 5321 3.3): MAIL, RCPTs, DATA. Recipients are indices into the
/// envelope's forward paths.
#[derive(Clone, Debug, Default)]
struct MailTransaction {
    forward_paths: Vec<usize>,
    rcpts_sent: usize,
    pipelined: bool,
    mail_refused: bool,
    accepted: Vec<usize>,
    deferred: Vec<usize>,
    /// After a "too many recipients" reply, further RCPTs would get the same.
    stop_sending_rcpts: bool,
    /// Octets of the message sent in BDAT chunks so far.
    chunked_octets: usize,
}

/// The client side of one SMTP session delivering one or more messages. See the module doc.
#[derive(Clone, Debug)]
pub struct ClientSession {
    config: ClientConfig,
    /// The message being sent (or the last one sent).
    current: QueuedMessage,
    reader: ReplyReader,
    awaiting: VecDeque<Awaited>,
    extensions: Option<Arc<ServerExtensions>>,
    transaction: Option<MailTransaction>,
    /// Recipients not yet tried in any transaction.
    untried: VecDeque<usize>,
    results: Vec<Option<(RecipientStatus, ReplyOrigin)>>,
    data_replies: Vec<Reply>,
    /// Mail transactions started in this session, for all messages.
    mail_transactions: usize,
    /// Mail transactions started for the current message.
    message_transactions: usize,
    /// Whether the current message still waits for its outcome.
    message_open: bool,
    /// Messages added while another was being sent, in order.
    queued: VecDeque<QueuedMessage>,
    /// The mail transactions the queued messages need, kept as they come and go so that
    /// adding a message need not count them again.
    queued_transactions: usize,
    /// Nothing to send; waiting `keep_open_ms` for another message.
    idle: bool,
    output: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    deadline_ms: Option<u64>,
    finished: bool,
    /// One per message, in the order the messages were given.
    outcomes: Vec<SessionOutcome>,
}

/// A message, checked and ready to send: the one being sent, or one waiting for its turn.
#[derive(Clone, Debug)]
struct QueuedMessage {
    envelope: Envelope,
    /// The message as it goes on the wire, built once: see `form`.
    payload: Vec<u8>,
    form: PayloadForm,
    /// RFC 1870 3: the size declared with SIZE=.
    declared_size: usize,
    has_8bit: bool,
    /// A NUL or an over-long line: the message is binary data, which this client does not send.
    binary: Option<dot::BinaryContent>,
    /// A non-ASCII octet before the first empty line: only SMTPUTF8 lets header fields hold
    /// one (as UTF-8, RFC 6532), so the message needs it like a non-ASCII address does.
    non_ascii_header_section: bool,
    /// Header fields (lines that are fields, not a body without its empty line) in UTF-8
    /// that is not ASCII: what only SMTPUTF8 carries, whatever the server's 8BITMIME.
    utf8_header_fields: bool,
}

/// How a message waits to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayloadForm {
    /// Dot-stuffed and ended by CRLF . CRLF, for DATA (RFC 5321 4.5.2).
    DotStuffed,
    /// As it is (CRLF line endings), for BDAT: a chunk is counted octets, which need no
    /// transparency (RFC 3030 2). Dot-stuffed when it goes to a server without CHUNKING.
    AsIs,
}

impl QueuedMessage {
    /// Checks an envelope and message from the caller and prepares the data to send, in the
    /// form `form`.
    fn prepare(
        envelope: Envelope,
        message: &[u8],
        form: PayloadForm,
    ) -> Result<QueuedMessage, ClientSetupError> {
        if envelope.forward_paths.is_empty() {
            return Err(ClientSetupError::NoForwardPaths);
        }
        if envelope.forward_paths.len() > FORWARD_PATHS_MAX {
            return Err(ClientSetupError::TooManyForwardPaths {
                count: envelope.forward_paths.len(),
                max: FORWARD_PATHS_MAX,
            });
        }
        check_path(&envelope.reverse_path, true)?;
        for forward_path in &envelope.forward_paths {
            check_path(forward_path, false)?;
        }
        check_dsn(&envelope.dsn, envelope.forward_paths.len())?;
        if message.len() > MESSAGE_MAX_OCTETS {
            return Err(ClientSetupError::MessageTooLarge {
                octets: message.len(),
                max: MESSAGE_MAX_OCTETS,
            });
        }
        // Normalised once; the size declared with SIZE is that of the normalised message
        // (RFC 1870 3), and its 8-bit octets are those of the message.
        let normalized = dot::normalized(message);
        let non_ascii_header_section = !super::trace::header_section(&normalized).is_ascii();
        // Looked for only when the header section is not ASCII, as nearly every one is.
        let utf8_header_fields = non_ascii_header_section && {
            let (fields_end, _) = super::trace::header_fields_end(&normalized);
            let fields = &normalized[..fields_end];
            !fields.is_ascii() && std::str::from_utf8(fields).is_ok()
        };
        let declared_size = normalized.len();
        let has_8bit = dot::has_8bit(&normalized);
        let binary = dot::binary_content(&normalized);
        let payload = match form {
            PayloadForm::DotStuffed => dot::dot_stuff_normalized(&normalized),
            PayloadForm::AsIs => normalized.into_owned(),
        };
        Ok(QueuedMessage {
            envelope,
            payload,
            form,
            declared_size,
            has_8bit,
            binary,
            non_ascii_header_section,
            utf8_header_fields,
        })
    }
}

impl ClientSession {
    /// A session that will deliver `message` (the RFC 5322 message, any line endings) to the
    /// envelope's forward paths. It starts waiting for the greeting; call
    /// [`ClientSession::handle_connected`] when the connection is up to start the greeting
    /// timer.
    pub fn new(
        config: ClientConfig,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> Result<ClientSession, ClientSetupError> {
        check_helo_name(&config.helo_name)?;
        if config.recipients_per_transaction_max == 0 {
            return Err(ClientSetupError::InvalidLimit {
                name: "recipients_per_transaction_max",
            });
        }
        if config.transactions_max == 0 {
            return Err(ClientSetupError::InvalidLimit {
                name: "transactions_max",
            });
        }
        if config.bdat_chunk_octets == Some(0) {
            return Err(ClientSetupError::InvalidLimit {
                name: "bdat_chunk_octets",
            });
        }
        if let Some((user, password)) = &config.credentials {
            if user.is_empty() || user.len() > SASL_PLAIN_FIELD_MAX_OCTETS {
                return Err(ClientSetupError::InvalidCredentials {
                    reason: "the user name must be 1 to 255 octets",
                });
            }
            // RFC 4616 2: passwd = 1*SAFE.
            if password.is_empty() || password.len() > SASL_PLAIN_FIELD_MAX_OCTETS {
                return Err(ClientSetupError::InvalidCredentials {
                    reason: "the password must be 1 to 255 octets",
                });
            }
            // RFC 4616 2: NUL separates the fields, so it cannot be inside one.
            if user.contains('\0') || password.contains('\0') {
                return Err(ClientSetupError::InvalidCredentials {
                    reason: "NUL is not allowed in SASL PLAIN fields",
                });
            }
        }
        let current = QueuedMessage::prepare(envelope, &message, payload_form(&config))?;
        let recipient_count = current.envelope.forward_paths.len();
        Ok(ClientSession {
            config,
            current,
            reader: ReplyReader::new(),
            awaiting: VecDeque::from([Awaited::Greeting]),
            extensions: None,
            transaction: None,
            untried: (0..recipient_count).collect(),
            results: vec![None; recipient_count],
            data_replies: Vec::new(),
            mail_transactions: 0,
            message_transactions: 0,
            message_open: true,
            queued: VecDeque::new(),
            queued_transactions: 0,
            idle: false,
            output: VecDeque::new(),
            events: VecDeque::new(),
            deadline_ms: None,
            finished: false,
            outcomes: Vec::new(),
        })
    }

    /// Another message for the same server, sent on this connection after the ones before it
    /// (RFC 5321 3.3: a session may carry any number of mail transactions). Returns its index
    /// among the session's messages. A session that is ending, or whose transactions are all
    /// spoken for, refuses it: open another session for it.
    pub fn add_message(
        &mut self,
        envelope: Envelope,
        message: &[u8],
        now_ms: u64,
    ) -> Result<usize, ClientSetupError> {
        let quitting = self.awaiting.contains(&Awaited::Quit);
        // Transactions already started, those the current message still needs for its
        // untried recipients, those of each queued message, and those of this one.
        let current_needs = if self.message_open {
            self.transactions_for(self.untried.len())
        } else {
            0
        };
        let this_needs = self.transactions_for(envelope.forward_paths.len());
        let needed = self.mail_transactions + current_needs + self.queued_transactions + this_needs;
        if self.finished || quitting || needed > self.config.transactions_max {
            return Err(ClientSetupError::SessionClosing);
        }
        let prepared = QueuedMessage::prepare(envelope, message, payload_form(&self.config))?;
        let index = self.outcomes.len() + usize::from(self.message_open) + self.queued.len();
        self.queued.push_back(prepared);
        self.queued_transactions += this_needs;
        if self.idle {
            let before = self.state();
            self.idle = false;
            self.next_message();
            // A message that cannot go to this server fails at once and the session idles
            // again: either way the deadline is set anew.
            self.start_mail_transaction();
            self.set_deadline(now_ms);
            self.note_state_change(before);
        }
        Ok(index)
    }

    /// The driver finished writing what `poll_output` gave it: the wait for the reply starts
    /// again now (RFC 5321 4.5.3.2 times a reply from when the command or the data has been
    /// sent, and a large message or chunk may take a while to go out). A driver that writes
    /// at once need not call it.
    pub fn handle_sent(&mut self, now_ms: u64) {
        if !self.idle {
            self.set_deadline(now_ms);
        }
    }

    /// The connection is up: the greeting timer starts now (RFC 5321 4.5.3.2.1).
    pub fn handle_connected(&mut self, now_ms: u64) {
        if self.awaiting.front() == Some(&Awaited::Greeting) {
            self.deadline_ms = Some(now_ms.saturating_add(self.config.timeouts.greeting_ms));
        }
    }

    /// Bytes received from the server, in any split.
    pub fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        if self.finished {
            return;
        }
        self.reader.push(bytes);
        while !self.finished {
            let Some(next) = self.reader.next_reply() else {
                break;
            };
            let before = self.state();
            match next {
                Ok(reply) => self.handle_reply(reply, now_ms),
                Err(error) => {
                    let text = format!("unreadable reply from the server: {error}");
                    self.events.push_back(ClientEvent::MalformedReply { error });
                    self.abort_on_protocol_error(&text);
                }
            }
            self.note_state_change(before);
        }
    }

    /// The server closed the connection (or it broke). Whatever was not yet accepted after
    /// DATA was not delivered.
    pub fn handle_peer_closed(&mut self) {
        if self.finished {
            return;
        }
        let before = self.state();
        // What came of a reply before the close is shown, not dropped unseen.
        if let Some(error) = self.reader.cut_short() {
            self.events.push_back(ClientEvent::MalformedReply { error });
        }
        self.events.push_back(ClientEvent::PeerClosed);
        // From this side a server's close and a broken link look the same (Postfix says
        // "lost connection" for both).
        self.end_broken(before, format!("lost connection {}", before.moment()));
    }

    /// The driver could not send what the session gave it: a send made no progress for the
    /// data block timeout (RFC 5321 4.5.3.2.5), or the connection broke. `reason` says which,
    /// for the recipients' failure. The session ends; nothing not yet accepted was delivered.
    pub fn handle_send_failed(&mut self, reason: &str) {
        if self.finished {
            return;
        }
        let before = self.state();
        self.end_broken(before, reason.to_string());
    }

    /// Ends a session whose connection failed in state `before`: unless only QUIT's reply
    /// was awaited, every recipient not yet decided gets `451 4.4.2 text`.
    fn end_broken(&mut self, before: ClientStateKind, text: String) {
        if self.awaiting.front() != Some(&Awaited::Quit) {
            self.fail_untried();
            let reply = local_reply(451, (4, 4, 2), text);
            self.fail_undecided(&reply, ReplyOrigin::Client);
            // Before the hello was answered, what broke the session kept every message
            // waiting in it from delivery, as a 421 greeting does (see `handle_reply`).
            if self.extensions.is_none() {
                self.fail_queued(&reply, ReplyOrigin::Client);
            }
        }
        self.close();
        self.note_state_change(before);
    }

    /// When [`ClientSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadline_ms
    }

    /// The time has come (or passed): if the awaited reply is overdue, the session ends
    /// (RFC 5321 4.5.3.2). Calling it early does nothing.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.finished {
            return;
        }
        let Some(deadline_ms) = self.deadline_ms else {
            return;
        };
        if now_ms < deadline_ms {
            return;
        }
        let before = self.state();
        if self.idle {
            // The connection was kept for more mail and none came: a normal end.
            self.idle = false;
            self.send_quit();
            self.set_deadline(now_ms);
            self.note_state_change(before);
            return;
        }
        self.events
            .push_back(ClientEvent::TimedOut { state: before });
        self.end_broken(
            before,
            format!("{NO_REPLY} {} (RFC 5321 4.5.3.2)", before.moment()),
        );
    }

    /// The next bytes to send to the server. A pipelined batch comes out as one piece.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// How long the session waits for each reply, and a driver for each send.
    pub fn timeouts(&self) -> &ClientTimeouts {
        &self.config.timeouts
    }

    pub fn state(&self) -> ClientStateKind {
        if self.finished {
            return ClientStateKind::Finished;
        }
        if self.idle {
            return ClientStateKind::Idle;
        }
        match self.awaiting.front() {
            Some(Awaited::Greeting) => ClientStateKind::ExpectGreeting,
            Some(Awaited::Ehlo) => ClientStateKind::ExpectEhloReply,
            Some(Awaited::Helo) => ClientStateKind::ExpectHeloReply,
            Some(Awaited::Auth(_)) => ClientStateKind::ExpectAuthReply,
            Some(Awaited::Mail) => ClientStateKind::ExpectMailReply,
            Some(Awaited::Rcpt(_)) => ClientStateKind::ExpectRcptReplies,
            Some(Awaited::Rset) => ClientStateKind::ExpectRsetReply,
            Some(Awaited::Data) => ClientStateKind::ExpectDataGoAhead,
            Some(Awaited::Payload) => ClientStateKind::ExpectDataReply,
            // A discarded chunk's reply is no message's, even the last chunk's.
            Some(Awaited::Chunk { last: false } | Awaited::ChunkAfterRefusal) => {
                ClientStateKind::ExpectChunkReply
            }
            Some(Awaited::Chunk { last: true }) => ClientStateKind::ExpectLastChunkReply,
            Some(Awaited::Quit) => ClientStateKind::ExpectQuitReply,
            None => {
                debug_assert!(false, "an open session always awaits a reply");
                ClientStateKind::Finished
            }
        }
    }

    /// True once the session is over: the caller closes the connection after sending what
    /// `poll_output` still holds.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The result for the first message, once the session is finished.
    pub fn outcome(&self) -> Option<&SessionOutcome> {
        if self.finished {
            self.outcomes.first()
        } else {
            None
        }
    }

    /// The result for each message whose recipients all have their answer, in the order the
    /// messages were given; every message has one once the session is finished.
    pub fn outcomes(&self) -> &[SessionOutcome] {
        &self.outcomes
    }

    /// What the server advertised in its EHLO reply, once known.
    pub fn extensions(&self) -> Option<&ServerExtensions> {
        self.extensions.as_deref()
    }

    pub fn envelope(&self) -> &Envelope {
        &self.current.envelope
    }

    // ----- replies -----

    fn handle_reply(&mut self, reply: Reply, now_ms: u64) {
        self.events.push_back(ClientEvent::ReplyReceived {
            reply: reply.clone(),
        });
        let Some(awaited) = self.awaiting.pop_front() else {
            // Only an idle session awaits nothing. A 421 there is the server closing a
            // connection it no longer wants (RFC 5321 3.8); anything else is out of turn.
            self.idle = false;
            if reply.code == 421 {
                self.close();
            } else {
                self.abort_on_unexpected(&reply, "nothing (the session was idle)");
            }
            return;
        };
        // RFC 5321 3.8: 421 may answer any command; the server is closing the channel. Before
        // the hello was answered (a busy server's greeting, say), that reply is why every
        // message waiting in this session was not delivered: they are told it. Later, the
        // messages not yet begun were never offered to the server, and are told that (their
        // driver may try them again at once, on a new connection).
        if reply.code == 421 && awaited != Awaited::Quit {
            self.fail_undecided(&reply, ReplyOrigin::Server);
            if self.extensions.is_none() {
                self.fail_queued(&reply, ReplyOrigin::Server);
            }
            self.close();
            return;
        }
        // RFC 5321 4.2.1: the client acts on the reply code, first by its first digit.
        let first_digit = reply.code / 100;
        match awaited {
            Awaited::Greeting => match first_digit {
                2 => self.send_ehlo(),
                3 => self.abort_on_unexpected(&reply, "the greeting"),
                // RFC 5321 3.1: after a 554 greeting the client sends QUIT.
                _ => self.refuse_session(&reply),
            },
            Awaited::Ehlo => match reply.code {
                200..=299 => {
                    let extensions = Arc::new(ServerExtensions::from_ehlo_reply(&reply));
                    self.events.push_back(ClientEvent::ExtensionsLearned {
                        extensions: extensions.clone(),
                    });
                    self.extensions = Some(extensions);
                    self.after_hello();
                }
                // RFC 5321 3.2: a server that does not know EHLO answers "command not
                // recognized" (500, or 502); RFC 821-era servers also said 501 or 504 for
                // verbs they did not know. HELO costs one round trip; failing costs the
                // delivery. 550 and other 5yz are a refusal, not ignorance: no fallback.
                500 | 501 | 502 | 504 => self.send_command("HELO", Awaited::Helo),
                300..=399 => self.abort_on_unexpected(&reply, "EHLO"),
                _ => self.refuse_session(&reply),
            },
            Awaited::Helo => match first_digit {
                2 => {
                    self.extensions = Some(Arc::default());
                    self.after_hello();
                }
                3 => self.abort_on_unexpected(&reply, "HELO"),
                _ => self.refuse_session(&reply),
            },
            Awaited::Auth(step) => self.handle_auth_reply(step, &reply),
            Awaited::Mail => self.handle_mail_reply(&reply),
            Awaited::Rcpt(index) => self.handle_rcpt_reply(index, &reply),
            Awaited::Rset => match first_digit {
                2 => self.start_mail_transaction(),
                3 => self.abort_on_unexpected(&reply, "RSET"),
                _ => self.refuse_session(&reply),
            },
            Awaited::Data => match first_digit {
                3 => self.send_payload(),
                // A 2yz to DATA would mean the server took an empty message or is confused.
                2 => self.abort_on_unexpected(&reply, "DATA"),
                _ => self.refuse_message(&reply, true),
            },
            Awaited::Payload => match first_digit {
                2 => self.message_accepted(reply),
                3 => self.abort_on_unexpected(&reply, "the end of data"),
                _ => self.refuse_message(&reply, false),
            },
            // RFC 3030 2: the reply to the last chunk is the reply to the message, as the one
            // after DATA's final dot is. After a 4yz or 5yz to any chunk the transaction has
            // failed and no further chunk may be sent; whether the server still holds it the
            // RFC leaves open (RFC 1830, which it replaced, called that state indeterminate
            // and asked for RSET), so RSET ends it before another transaction.
            Awaited::Chunk { last: true } => match first_digit {
                2 => self.message_accepted(reply),
                3 => self.abort_on_unexpected(&reply, "the last BDAT chunk"),
                _ => self.refuse_chunked_message(&reply),
            },
            Awaited::Chunk { last: false } => match first_digit {
                2 => self.send_chunks(),
                3 => self.abort_on_unexpected(&reply, "a BDAT chunk"),
                _ => self.refuse_chunked_message(&reply),
            },
            Awaited::ChunkAfterRefusal => {}
            // RFC 5321 4.1.1.10: the server answers 221 and closes; any answer ends it.
            Awaited::Quit => self.close(),
        }
        self.set_deadline(now_ms);
    }

    /// The deadline of the reply awaited next, or the end of an idle connection's time.
    fn set_deadline(&mut self, now_ms: u64) {
        if self.finished {
            return;
        }
        self.deadline_ms = match (self.idle, self.config.keep_open_ms) {
            (true, Some(keep_open_ms)) => Some(now_ms.saturating_add(keep_open_ms)),
            _ => self
                .awaiting
                .front()
                .map(|&next| now_ms.saturating_add(self.timeout_for(next))),
        };
    }

    fn handle_auth_reply(&mut self, step: AuthStep, reply: &Reply) {
        match (reply.code / 100, step) {
            (2, AuthStep::Cancelled) => self.abort_on_unexpected(reply, "the AUTH cancel"),
            (2, _) => self.start_mail_transaction(),
            (3, AuthStep::AwaitingChallenge) => {
                // RFC 4954 4: the response goes on its own line after an empty challenge.
                let response = self.sasl_plain_response();
                self.send_line(
                    response,
                    Some("<credentials>"),
                    Awaited::Auth(AuthStep::ResponseSent),
                );
            }
            (3, _) => {
                // PLAIN has a single message; a further challenge cannot be answered.
                self.send_line("*".into(), None, Awaited::Auth(AuthStep::Cancelled));
            }
            (4, _) | (5, _) => self.refuse_session(reply),
            _ => self.abort_on_unexpected(reply, "AUTH"),
        }
    }

    fn handle_mail_reply(&mut self, reply: &Reply) {
        let Some(transaction) = self.transaction.as_mut() else {
            debug_assert!(false, "MAIL is only sent inside a transaction");
            return;
        };
        match reply.code / 100 {
            2 => {
                if !transaction.pipelined {
                    self.send_next_rcpt_or_finish();
                }
            }
            3 => self.abort_on_unexpected(reply, "MAIL"),
            _ => {
                // The reverse-path or the message itself is refused: every recipient still
                // waiting would get the same answer (RFC 5321 4.3.2: 451, 452, 550, 552, 553).
                transaction.mail_refused = true;
                self.fail_undecided(reply, ReplyOrigin::Server);
                if self.awaiting.is_empty() {
                    self.message_done(false);
                }
                // With pipelining the RCPT replies (likely 503) are still read before QUIT.
            }
        }
    }

    fn handle_rcpt_reply(&mut self, index: usize, reply: &Reply) {
        let Some(transaction) = self.transaction.as_mut() else {
            debug_assert!(false, "RCPT is only sent inside a transaction");
            return;
        };
        if transaction.mail_refused {
            // The recipients already failed with the MAIL reply.
            if self.awaiting.is_empty() {
                self.message_done(false);
            }
            return;
        }
        let forward_path = self.current.envelope.forward_paths[index].clone();
        let too_many_recipients = may_mean_too_many_recipients(reply);
        match reply.code / 100 {
            2 => {
                transaction.accepted.push(index);
                self.events.push_back(ClientEvent::RecipientAccepted {
                    forward_path,
                    reply: reply.clone(),
                });
            }
            3 => {
                self.abort_on_unexpected(reply, "RCPT");
                return;
            }
            _ if too_many_recipients && !transaction.accepted.is_empty() => {
                transaction.deferred.push(index);
                transaction.stop_sending_rcpts = true;
                self.events.push_back(ClientEvent::RecipientDeferred {
                    forward_path,
                    reply: reply.clone(),
                });
            }
            _ => self.decide(index, reply.clone(), ReplyOrigin::Server),
        }
        if self.awaiting.is_empty() {
            self.send_next_rcpt_or_finish();
        }
    }

    fn message_accepted(&mut self, reply: Reply) {
        let Some(transaction) = self.transaction.take() else {
            debug_assert!(false, "data is only sent inside a transaction");
            return;
        };
        for &index in &transaction.accepted {
            self.results[index] = Some((
                RecipientStatus::Accepted(reply.clone()),
                ReplyOrigin::Server,
            ));
        }
        self.events.push_back(ClientEvent::MessageAccepted {
            forward_paths: transaction
                .accepted
                .iter()
                .map(|&index| self.current.envelope.forward_paths[index].clone())
                .collect(),
            reply: reply.clone(),
            more_transactions: !transaction.deferred.is_empty() || !self.untried.is_empty(),
            // Its outcome is recorded when it is done, after those of the ones before it.
            index: self.outcomes.len(),
        });
        self.data_replies.push(reply);
        // The deferred recipients go first, in their envelope order, into the next transaction.
        for &index in transaction.deferred.iter().rev() {
            self.untried.push_front(index);
        }
        // A completed transaction leaves the server ready for MAIL (RFC 5321 4.1.1.4).
        self.start_mail_transaction();
    }

    // ----- commands -----

    fn send_ehlo(&mut self) {
        self.send_command("EHLO", Awaited::Ehlo);
    }

    fn after_hello(&mut self) {
        if self.config.credentials.is_some() {
            self.start_auth();
        } else {
            self.start_mail_transaction();
        }
    }

    fn start_auth(&mut self) {
        let offers_plain = self
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.offers_auth("PLAIN"));
        if !offers_plain {
            // Sending without authenticating would be refused or, worse, relayed differently.
            let advertised = self
                .extensions
                .as_ref()
                .map(|extensions| extensions.auth_mechanisms.join(" "))
                .unwrap_or_default();
            // The server's words, in a text of this client's own: escaped here, once.
            let advertised = crate::escape::escaped(advertised.as_bytes());
            let text = if advertised.is_empty() {
                "credentials are configured but the server does not advertise AUTH".to_string()
            } else {
                format!("the server offers AUTH {advertised} but not PLAIN")
            };
            // RFC 4954 4: 504 5.5.4 is the server's word for an unsupported mechanism.
            let reply = local_reply(504, (5, 5, 4), text);
            self.fail_undecided(&reply, ReplyOrigin::Client);
            self.fail_queued(&reply, ReplyOrigin::Client);
            self.send_quit();
            return;
        }
        let response = self.sasl_plain_response();
        let line = format!("AUTH PLAIN {response}");
        if line.len() + 2 <= COMMAND_LINE_MAX_OCTETS {
            self.send_line(
                line,
                Some("AUTH PLAIN <credentials>"),
                Awaited::Auth(AuthStep::InitialResponseSent),
            );
        } else {
            // RFC 4954 4: no initial response when it would make the line too long.
            self.send_line(
                "AUTH PLAIN".into(),
                None,
                Awaited::Auth(AuthStep::AwaitingChallenge),
            );
        }
    }

    /// RFC 4616 2: authzid (empty), NUL, authcid, NUL, password, in base64 (RFC 4954 4).
    fn sasl_plain_response(&self) -> String {
        let (user, password) = self.config.credentials.clone().unwrap_or_default();
        let mut message = Vec::with_capacity(user.len() + password.len() + 2);
        message.push(0);
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(password.as_bytes());
        base64::encode(&message)
    }

    /// The client's own refusal of a message with non-ASCII header fields for a server
    /// without SMTPUTF8: RFC 6531 registers X.6.9 for exactly this, a UTF-8 header message
    /// that cannot be transferred. Only fields in UTF-8 are called so in the text: 8-bit
    /// octets there that are not UTF-8 are not allowed even with SMTPUTF8 (RFC 6532 3.2).
    fn refuse_non_ascii_header(&mut self) {
        let text = if self.current.utf8_header_fields {
            "message has UTF-8 header fields and the server does not advertise SMTPUTF8 \
             (RFC 6531); downgrading is not supported"
        } else {
            "message has 8-bit octets before its first empty line, where header fields \
             are, and the server does not advertise SMTPUTF8 (RFC 6531, RFC 6532)"
        };
        let reply = local_reply(554, (5, 6, 9), text);
        self.fail_undecided(&reply, ReplyOrigin::Client);
        self.message_done(false);
    }

    /// Starts a mail transaction for the next untried recipients, or QUITs when none are left.
    fn start_mail_transaction(&mut self) {
        self.transaction = None;
        if self.untried.is_empty() {
            self.message_done(false);
            return;
        }
        if self.mail_transactions >= self.config.transactions_max {
            let reply = Reply::new(
                451,
                Some(SESSION_FULL_STATUS),
                format!(
                    "{} mail transactions in one session; the rest need another session",
                    self.config.transactions_max
                ),
            );
            self.fail_undecided(&reply, ReplyOrigin::Client);
            self.fail_queued(&reply, ReplyOrigin::Client);
            self.send_quit();
            return;
        }
        let extensions = self.extensions.clone().unwrap_or_default();
        // RFC 1870 6.1: a message larger than the advertised limit is not sent.
        if let Some(limit) = extensions.size {
            if limit > 0 && self.current.declared_size as u64 > limit {
                let reply = local_reply(
                    552,
                    (5, 3, 4),
                    format!(
                        "message of {} octets exceeds the server's limit of {limit} (RFC 1870)",
                        self.current.declared_size
                    ),
                );
                self.fail_undecided(&reply, ReplyOrigin::Client);
                self.message_done(false);
                return;
            }
        }
        // Binary data (RFC 2045 2.9) goes over SMTP only with BDAT and BINARYMIME (RFC 3030
        // 3), which this client does not use (its BDAT carries text, as DATA would); as for
        // 8-bit data, no encoding is chosen here.
        if let Some(binary) = self.current.binary {
            let reply = local_reply(
                554,
                (5, 6, 3),
                format!(
                    "message is binary data: {binary}; SMTP carries binary data only with \
                     BINARYMIME (RFC 3030), which this client does not use"
                ),
            );
            self.fail_undecided(&reply, ReplyOrigin::Client);
            self.message_done(false);
            return;
        }
        // UTF-8 header fields to a server without SMTPUTF8 fail as such before any test of
        // 8-bit data: they are 8-bit too, but what the message needs is SMTPUTF8 (RFC 6531
        // 3.2, RFC 6532), which a server without 8BITMIME never has (RFC 6531 3.1). This
        // client does not downgrade (RFC 2047 words could carry text, nothing an address),
        // so 5.6.3's advice, to encode the content in 7 bits, would not help.
        if self.current.utf8_header_fields && !extensions.smtputf8 {
            self.refuse_non_ascii_header();
            return;
        }
        // RFC 6152 3: 8-bit data only to a server that advertised 8BITMIME. This client
        // does not downgrade to 7-bit; the message composer produces 7-bit MIME instead,
        // except for body text asked for as 8-bit and 8-bit message/* or multipart/*
        // attachments, which no encoding may hide (RFC 2045 6.4).
        if self.current.has_8bit && !extensions.eight_bit_mime {
            let reply = local_reply(
                554,
                (5, 6, 3),
                "message has 8-bit data and the server does not advertise 8BITMIME \
                 (RFC 6152); conversion to 7-bit is not supported",
            );
            self.fail_undecided(&reply, ReplyOrigin::Client);
            self.message_done(false);
            return;
        }
        // RFC 6531 3.2: a message with UTF-8 header fields (RFC 6532) goes only to a server
        // that advertised SMTPUTF8. The other choice the RFC leaves is to downgrade the
        // message, which this client does not do.
        if self.current.non_ascii_header_section && !extensions.smtputf8 {
            self.refuse_non_ascii_header();
            return;
        }
        // RFC 6531 3.4: non-ASCII addresses only with SMTPUTF8. The codes are those a server
        // gives (3.5): 550 for the reverse-path, 553 for a forward-path.
        if !extensions.smtputf8 && !self.current.envelope.reverse_path.is_ascii() {
            let reply = local_reply(
                550,
                (5, 6, 7),
                "non-ASCII reverse-path and the server does not advertise SMTPUTF8 (RFC 6531)",
            );
            self.fail_undecided(&reply, ReplyOrigin::Client);
            self.message_done(false);
            return;
        }
        let mut transaction = MailTransaction::default();
        while transaction.forward_paths.len() < self.config.recipients_per_transaction_max {
            let Some(index) = self.untried.pop_front() else {
                break;
            };
            if !extensions.smtputf8 && !self.current.envelope.forward_paths[index].is_ascii() {
                let reply = local_reply(
                    553,
                    (5, 6, 7),
                    "non-ASCII forward-path and the server does not advertise SMTPUTF8 \
                     (RFC 6531)",
                );
                self.decide(index, reply, ReplyOrigin::Client);
                continue;
            }
            transaction.forward_paths.push(index);
        }
        if transaction.forward_paths.is_empty() {
            // Every remaining recipient failed locally.
            self.message_done(false);
            return;
        }
        let needs_smtputf8 = self.current.non_ascii_header_section
            || !self.current.envelope.reverse_path.is_ascii()
            || transaction
                .forward_paths
                .iter()
                .any(|&index| !self.current.envelope.forward_paths[index].is_ascii());
        let mut mail = path_command("MAIL FROM:", &self.current.envelope.reverse_path);
        if extensions.size.is_some() {
            // Writing to a String cannot fail.
            let _ = write!(mail, " SIZE={}", self.current.declared_size);
        }
        if self.current.has_8bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if needs_smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if extensions.dsn {
            let dsn = &self.current.envelope.dsn;
            if let Some(ret) = dsn.ret {
                mail.push_str(" RET=");
                mail.push_str(ret.wire());
            }
            if let Some(envid) = &dsn.envid {
                mail.push_str(" ENVID=");
                mail.push_str(&xtext(envid));
            }
        } else {
            // RFC 3461 5.2.2: to a server without DSN the request is not passed on; said,
            // before the MAIL that goes without it, when this transaction had any to pass.
            let dsn = &self.current.envelope.dsn;
            let asked = !dsn.is_empty()
                && (dsn.ret.is_some()
                    || dsn.envid.is_some()
                    || transaction.forward_paths.iter().any(|&index| {
                        let (notify, orcpt) = self.recipient_dsn(index);
                        notify.is_some() || orcpt.is_some()
                    }));
            if asked {
                self.events.push_back(ClientEvent::DsnWithheld {
                    index: self.outcomes.len(),
                });
            }
        }
        transaction.pipelined = extensions.pipelining && self.config.prefer_pipelining;
        self.mail_transactions += 1;
        self.message_transactions += 1;
        if transaction.pipelined {
            // RFC 2920 3.1: MAIL and RCPT may be grouped; DATA waits for their replies so
            // that the message is never sent when no recipient was accepted.
            // Sized for MAIL and every "RCPT TO:<path>" with their CRLFs, so that the batch
            // is allocated once, at the size it is sent and kept at.
            let rcpt_octets: usize = transaction
                .forward_paths
                .iter()
                .map(|&index| self.current.envelope.forward_paths[index].len() + 12)
                .sum();
            let mut batch = Vec::with_capacity(mail.len() + 2 + rcpt_octets);
            self.queue_line(&mut batch, mail, None, Awaited::Mail);
            for &index in &transaction.forward_paths {
                let line = self.rcpt_command(index);
                self.queue_line(&mut batch, line, None, Awaited::Rcpt(index));
            }
            transaction.rcpts_sent = transaction.forward_paths.len();
            self.output.push_back(batch);
        } else {
            self.send_line(mail, None, Awaited::Mail);
        }
        self.transaction = Some(transaction);
    }

    /// The NOTIFY and ORCPT values asked for recipient `index` of the current message, as
    /// its RCPT gives them to a server that offers DSN (RFC 3461 4.1, 4.2).
    fn recipient_dsn(&self, index: usize) -> (Option<Notify>, Option<String>) {
        let dsn = &self.current.envelope.dsn;
        match dsn.recipients.get(index) {
            Some(relayed) => (relayed.notify, relayed.orcpt.as_ref().map(|o| o.wire())),
            None => (
                dsn.notify,
                dsn.orcpt
                    .then(|| {
                        original_recipient_parameter(&self.current.envelope.forward_paths[index])
                    })
                    .flatten(),
            ),
        }
    }

    /// `RCPT TO:<path>` for recipient `index`, with the DSN parameters the sender asked for
    /// when the server offers DSN (RFC 3461 4.1, 4.2).
    fn rcpt_command(&self, index: usize) -> String {
        let forward_path = &self.current.envelope.forward_paths[index];
        let mut line = path_command("RCPT TO:", forward_path);
        if self.extensions.as_ref().is_some_and(|e| e.dsn) {
            let (notify, orcpt) = self.recipient_dsn(index);
            if let Some(notify) = notify {
                line.push_str(" NOTIFY=");
                line.push_str(&notify.wire());
            }
            if let Some(orcpt) = orcpt {
                line.push_str(" ORCPT=");
                line.push_str(&orcpt);
            }
        }
        line
    }

    /// Without pipelining, one RCPT at a time; once all RCPT replies are in, DATA if someone
    /// was accepted, else RSET for the next transaction or QUIT.
    fn send_next_rcpt_or_finish(&mut self) {
        let Some(transaction) = self.transaction.as_mut() else {
            debug_assert!(false, "RCPT is only sent inside a transaction");
            return;
        };
        if transaction.rcpts_sent < transaction.forward_paths.len() {
            if !transaction.stop_sending_rcpts {
                let index = transaction.forward_paths[transaction.rcpts_sent];
                transaction.rcpts_sent += 1;
                let line = self.rcpt_command(index);
                self.send_line(line, None, Awaited::Rcpt(index));
                return;
            }
            let unsent: Vec<usize> = transaction.forward_paths[transaction.rcpts_sent..].to_vec();
            transaction.rcpts_sent = transaction.forward_paths.len();
            transaction.deferred.extend(unsent);
        }
        if !transaction.accepted.is_empty() {
            if self.sends_chunks() {
                self.send_chunks();
            } else {
                self.send_command_line("DATA", Awaited::Data);
            }
            return;
        }
        debug_assert!(
            transaction.deferred.is_empty(),
            "recipients are deferred only after an accepted one"
        );
        self.transaction = None;
        if self.untried.is_empty() {
            // The server still holds the open transaction: the next message needs RSET first.
            self.message_done(true);
        } else {
            // RFC 5321 4.1.1.5: the server still holds the open transaction; RSET ends it.
            self.send_command_line("RSET", Awaited::Rset);
        }
    }

    /// Whether the current message goes in BDAT chunks: when the client was given a chunk
    /// size and the server offers CHUNKING (RFC 3030 2: only then may BDAT be used).
    fn sends_chunks(&self) -> bool {
        self.current.form == PayloadForm::AsIs
            && self
                .extensions
                .as_ref()
                .is_some_and(|extensions| extensions.chunking)
    }

    /// Whether the message goes out again in a later transaction of this session, for
    /// recipients not yet tried or deferred by a 452.
    fn sent_again(&self) -> bool {
        !self.untried.is_empty()
            || self
                .transaction
                .as_ref()
                .is_some_and(|transaction| !transaction.deferred.is_empty())
    }

    /// Sends the current message's next chunks: with pipelining, while fewer than
    /// [`PIPELINED_CHUNKS_MAX`] chunks wait for their replies (RFC 3030 4.2 pipelines them;
    /// RFC 3030 2: only a refusal stops further chunks), else one after each reply.
    fn send_chunks(&mut self) {
        let window = match &self.transaction {
            Some(transaction) if transaction.pipelined => PIPELINED_CHUNKS_MAX,
            Some(_) => 1,
            None => {
                debug_assert!(false, "chunks are sent only inside a transaction");
                return;
            }
        };
        // The chunks awaiting their replies are the ones unanswered; the last one, once sent,
        // is among them until the transaction ends.
        while !self.last_chunk_sent() && self.chunks_unanswered() < window && self.send_chunk() {}
    }

    /// Chunks of the current transaction sent and not yet answered.
    fn chunks_unanswered(&self) -> usize {
        self.awaiting
            .iter()
            .filter(|awaited| matches!(awaited, Awaited::Chunk { .. }))
            .count()
    }

    /// The current transaction's last chunk has been sent, and its reply not yet come.
    fn last_chunk_sent(&self) -> bool {
        self.awaiting.contains(&Awaited::Chunk { last: true })
    }

    /// The server refused a chunk: the transaction has failed (RFC 3030 2), and the replies
    /// to chunks already sent behind it, pipelined, change nothing.
    fn refuse_chunked_message(&mut self, reply: &Reply) {
        for awaited in &mut self.awaiting {
            if let Awaited::Chunk { .. } = awaited {
                *awaited = Awaited::ChunkAfterRefusal;
            }
        }
        self.refuse_message(reply, true);
    }

    /// The next BDAT chunk of the current message, its command line and octets in one write
    /// (RFC 3030 2: exactly the octets announced follow the line, CRLF or not); the last one
    /// with LAST. An empty message is one empty chunk, `BDAT 0 LAST`. A chunk may stop inside
    /// a line, but not between a CR and its LF while it can be an octet shorter: the server
    /// joins them all the same, and a line end kept whole reads as one wherever the chunks
    /// are shown.
    /// Whether it sent one.
    fn send_chunk(&mut self) -> bool {
        let Some(chunk_max) = self.config.bdat_chunk_octets else {
            debug_assert!(false, "chunks are sent only with a chunk size");
            return false;
        };
        let Some(transaction) = self.transaction.as_mut() else {
            debug_assert!(false, "chunks are sent only inside a transaction");
            return false;
        };
        let start = transaction.chunked_octets.min(self.current.payload.len());
        let chunk = &self.current.payload[start..];
        let mut size = chunk.len().min(chunk_max.max(1));
        if size > 1 && chunk[size - 1] == b'\r' && chunk.get(size) == Some(&b'\n') {
            size -= 1;
        }
        let last = start + size == self.current.payload.len();
        transaction.chunked_octets = start + size;
        let line = if last {
            format!("BDAT {size} LAST")
        } else {
            format!("BDAT {size}")
        };
        let mut bytes = Vec::with_capacity(line.len() + 2 + size);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&chunk[..size]);
        self.events.push_back(ClientEvent::CommandSent { line });
        self.events.push_back(ClientEvent::ChunkSent {
            offset: start,
            octets: size,
            last,
        });
        self.output.push_back(bytes);
        self.awaiting.push_back(Awaited::Chunk { last });
        true
    }

    fn send_payload(&mut self) {
        // A message kept as it is for BDAT goes to a server without CHUNKING with DATA:
        // dot-stuffed now (RFC 5321 4.5.2).
        let stuffed_now = self.current.form == PayloadForm::AsIs;
        let payload = if stuffed_now {
            dot::dot_stuff_normalized(&self.current.payload)
        } else if self.sent_again() {
            self.current.payload.clone()
        } else {
            // Not sent again: handed over, not copied.
            std::mem::take(&mut self.current.payload)
        };
        debug_assert!(!dot::has_bare_line_break(&payload));
        debug_assert!(
            payload.ends_with(dot::END_OF_DATA),
            "a payload is sent once it is whole"
        );
        self.events.push_back(ClientEvent::DataSent {
            octets: payload.len(),
        });
        self.output.push_back(payload);
        self.awaiting.push_back(Awaited::Payload);
    }

    fn send_quit(&mut self) {
        self.transaction = None;
        self.send_command_line("QUIT", Awaited::Quit);
    }

    /// `verb helo_name`.
    fn send_command(&mut self, verb: &str, awaited: Awaited) {
        let line = format!("{verb} {}", self.config.helo_name);
        self.send_line(line, None, awaited);
    }

    fn send_command_line(&mut self, line: &str, awaited: Awaited) {
        self.send_line(line.to_string(), None, awaited);
    }

    /// Sends `line`; its event shows `shown` instead when the line holds credentials.
    fn send_line(&mut self, line: String, shown: Option<&str>, awaited: Awaited) {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        self.queue_line(&mut bytes, line, shown, awaited);
        self.output.push_back(bytes);
    }

    fn queue_line(
        &mut self,
        out: &mut Vec<u8>,
        line: String,
        shown: Option<&str>,
        awaited: Awaited,
    ) {
        debug_assert!(
            !line.contains(['\r', '\n']),
            "command lines are checked for line breaks at setup"
        );
        out.reserve(line.len() + 2);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.awaiting.push_back(awaited);
        let shown = match shown {
            Some(shown) => shown.to_string(),
            None => line,
        };
        self.events
            .push_back(ClientEvent::CommandSent { line: shown });
    }

    // ----- endings -----

    /// The server refused the session (greeting, EHLO, AUTH, RSET): every recipient still
    /// waiting fails by the reply's class, and the client says QUIT (RFC 5321 3.1, 4.1.1.10).
    fn refuse_session(&mut self, reply: &Reply) {
        self.fail_undecided(reply, ReplyOrigin::Server);
        self.fail_queued(reply, ReplyOrigin::Server);
        self.send_quit();
    }

    /// The server refused the message (after DATA, or after the data, or a BDAT chunk): the
    /// refusal is this transaction's, so it decides the recipients this transaction carries.
    /// Those a 452 deferred, or not yet tried, go in the next transaction, where the server
    /// answers for them itself (RFC 5321 3.3: each transaction stands alone); a bounce then
    /// quotes the server's own reply to each. A refused DATA leaves the transaction open on
    /// the server, so RSET goes first; a refusal after the data ends it (RFC 5321 4.1.1.4).
    fn refuse_message(&mut self, reply: &Reply, server_transaction_open: bool) {
        let Some(transaction) = self.transaction.take() else {
            debug_assert!(false, "a message is refused only inside a transaction");
            self.fail_undecided(reply, ReplyOrigin::Server);
            self.message_done(server_transaction_open);
            return;
        };
        // DATA and the first chunk wait for every RCPT reply, so the transaction's recipients
        // are decided by now but for those it accepted.
        for &index in &transaction.accepted {
            self.decide(index, reply.clone(), ReplyOrigin::Server);
        }
        for &index in transaction.deferred.iter().rev() {
            self.untried.push_front(index);
        }
        if self.untried.is_empty() {
            self.message_done(server_transaction_open);
        } else if server_transaction_open {
            // Its 250 starts the next transaction (`Awaited::Rset`).
            self.send_command_line("RSET", Awaited::Rset);
        } else {
            self.start_mail_transaction();
        }
    }

    /// The current message has every recipient's answer: its outcome is recorded, then the
    /// next message goes (after RSET when the server still holds a transaction), or the
    /// connection waits for more (`keep_open_ms`), or the client says QUIT.
    fn message_done(&mut self, server_transaction_open: bool) {
        self.transaction = None;
        self.record_outcome();
        let keep_open = self.config.keep_open_ms.is_some_and(|ms| ms > 0);
        if self.queued.is_empty() && !keep_open {
            self.send_quit();
            return;
        }
        if server_transaction_open {
            // RFC 5321 4.1.1.5: RSET ends the open transaction; its 250 starts the next one.
            self.send_command_line("RSET", Awaited::Rset);
            return;
        }
        if self.queued.is_empty() {
            self.idle = true;
            return;
        }
        self.next_message();
        self.start_mail_transaction();
    }

    /// How many mail transactions `recipients` recipients take.
    fn transactions_for(&self, recipients: usize) -> usize {
        recipients.div_ceil(self.config.recipients_per_transaction_max.max(1))
    }

    /// Makes the first queued message the current one.
    fn next_message(&mut self) {
        let Some(next) = self.queued.pop_front() else {
            return;
        };
        let recipient_count = next.envelope.forward_paths.len();
        self.queued_transactions = self
            .queued_transactions
            .saturating_sub(self.transactions_for(recipient_count));
        self.current = next;
        self.untried = (0..recipient_count).collect();
        self.results = vec![None; recipient_count];
        self.data_replies = Vec::new();
        self.message_transactions = 0;
        self.message_open = true;
    }

    /// The outcome of the current message, once: every recipient has been decided.
    fn record_outcome(&mut self) {
        if !self.message_open {
            return;
        }
        self.message_open = false;
        let recipients = self
            .results
            .iter()
            .zip(&self.current.envelope.forward_paths)
            .filter_map(|(result, forward_path)| {
                let (status, reply_origin) = result.clone()?;
                Some(RecipientOutcome {
                    forward_path: forward_path.clone(),
                    status,
                    reply_origin,
                })
            })
            .collect::<Vec<_>>();
        debug_assert_eq!(recipients.len(), self.current.envelope.forward_paths.len());
        self.outcomes.push(SessionOutcome {
            recipients,
            data_replies: std::mem::take(&mut self.data_replies),
            extensions: self.extensions.clone(),
            mail_transactions: self.message_transactions,
        });
        self.events.push_back(ClientEvent::MessageFinished {
            index: self.outcomes.len() - 1,
        });
    }

    /// Every message still waiting for its turn fails with `reply`: the session will not
    /// carry it.
    fn fail_queued(&mut self, reply: &Reply, origin: ReplyOrigin) {
        self.record_outcome();
        while !self.queued.is_empty() {
            self.next_message();
            self.fail_undecided(reply, origin);
            self.record_outcome();
        }
    }

    /// A well-formed reply that makes no sense here (RFC 5321 4.2.1): the two sides no longer
    /// agree on the state, so the session ends without another command.
    fn abort_on_unexpected(&mut self, reply: &Reply, answering: &str) {
        let text = format!("unexpected reply {} to {answering}", reply.code);
        self.abort_on_protocol_error(&text);
    }

    fn abort_on_protocol_error(&mut self, text: &str) {
        let reply = local_reply(451, (4, 5, 0), text);
        self.fail_undecided(&reply, ReplyOrigin::Client);
        self.fail_queued(&reply, ReplyOrigin::Client);
        self.close();
    }

    /// While a transaction is in progress, the current message's recipients that it does not
    /// carry (deferred by a 452 to the next one, or not yet sent): the session ended before
    /// their turn, whatever broke the transaction in progress.
    fn fail_untried(&mut self) {
        // Before any transaction (at the greeting, say), what broke is what kept them all
        // from delivery.
        let Some(transaction) = self.transaction.as_mut() else {
            return;
        };
        let deferred = std::mem::take(&mut transaction.deferred);
        let untried = std::mem::take(&mut self.untried);
        let reply = session_ended_before_delivery();
        for index in deferred.into_iter().chain(untried) {
            if self.results[index].is_none() {
                self.decide(index, reply.clone(), ReplyOrigin::Client);
            }
        }
    }

    /// Every recipient without a final status gets one from `reply`: 5yz permanent, anything
    /// else temporary (the message was not delivered to them).
    fn fail_undecided(&mut self, reply: &Reply, origin: ReplyOrigin) {
        for index in 0..self.results.len() {
            if self.results[index].is_none() {
                self.decide(index, reply.clone(), origin);
            }
        }
        self.untried.clear();
    }

    fn decide(&mut self, index: usize, reply: Reply, origin: ReplyOrigin) {
        debug_assert!(self.results[index].is_none(), "a recipient is decided once");
        // Only a reply after the data delivers (see `message_accepted`); anything decided
        // here is a failure, permanent only when the server (or this client) said 5yz.
        let status = if reply.is_permanent() {
            RecipientStatus::PermanentFailure(reply.clone())
        } else {
            RecipientStatus::TemporaryFailure(reply.clone())
        };
        self.events.push_back(ClientEvent::RecipientRefused {
            forward_path: self.current.envelope.forward_paths[index].clone(),
            reply,
            reply_origin: origin,
        });
        self.results[index] = Some((status, origin));
    }

    fn close(&mut self) {
        if self.finished {
            return;
        }
        let reply = session_ended_before_delivery();
        if self.message_open {
            self.fail_undecided(&reply, ReplyOrigin::Client);
        }
        self.fail_queued(&reply, ReplyOrigin::Client);
        self.awaiting.clear();
        self.transaction = None;
        self.deadline_ms = None;
        self.idle = false;
        self.finished = true;
    }

    fn note_state_change(&mut self, before: ClientStateKind) {
        let after = self.state();
        if after != before {
            self.events.push_back(ClientEvent::StateChanged {
                from: before,
                to: after,
            });
        }
        if self.finished && after != before {
            self.events.push_back(ClientEvent::Finished);
        }
    }

    fn timeout_for(&self, awaited: Awaited) -> u64 {
        let timeouts = &self.config.timeouts;
        match awaited {
            Awaited::Greeting => timeouts.greeting_ms,
            Awaited::Mail => timeouts.mail_ms,
            Awaited::Rcpt(_) => timeouts.rcpt_ms,
            Awaited::Data => timeouts.data_initiation_ms,
            // RFC 3030 names no timeouts. The last chunk's reply, like the reply after the
            // final dot, waits for the server to take the message; another chunk's only for
            // the server to read it, as each block of data does, unless the last chunk has
            // gone out behind it (pipelined): the message may then be complete at the server,
            // and a client that gave up sooner would send again a message the server had
            // taken (RFC 5321 4.5.3.2.6, 6.1).
            Awaited::Payload | Awaited::Chunk { last: true } => timeouts.data_termination_ms,
            Awaited::Chunk { last: false } if self.last_chunk_sent() => {
                timeouts.data_termination_ms
            }
            Awaited::Chunk { last: false } | Awaited::ChunkAfterRefusal => timeouts.data_block_ms,
            Awaited::Ehlo | Awaited::Helo | Awaited::Auth(_) | Awaited::Rset | Awaited::Quit => {
                timeouts.other_command_ms
            }
        }
    }
}

/// The form a client configured as `config` keeps its messages in until they are sent.
fn payload_form(config: &ClientConfig) -> PayloadForm {
    if config.bdat_chunk_octets.is_some() {
        PayloadForm::AsIs
    } else {
        PayloadForm::DotStuffed
    }
}

/// `MAIL FROM:<path>` or `RCPT TO:<path>`, built without the formatting machinery: one of
/// each is sent for every message.
fn path_command(command: &str, path: &str) -> String {
    // Room for the parameters MAIL may get (SIZE, BODY, SMTPUTF8).
    let mut line = String::with_capacity(command.len() + path.len() + 40);
    line.push_str(command);
    line.push('<');
    line.push_str(path);
    line.push('>');
    line
}

/// What a recipient the session never reached is told.
fn session_ended_before_delivery() -> Reply {
    local_reply(451, (4, 4, 2), "session ended before delivery")
}

/// A reply made by this client to record why it did not send something, or why the session
/// broke. `enhanced` is (class, subject, detail) and its class matches the code.
fn local_reply(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Reply {
    let (class, subject, detail) = enhanced;
    Reply::new(
        code,
        Some(EnhancedStatus::new(class, subject, detail)),
        text,
    )
}

fn check_helo_name(helo_name: &str) -> Result<(), ClientSetupError> {
    let usable = !helo_name.is_empty()
        && helo_name.len() <= HELO_NAME_MAX_OCTETS
        && helo_name
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control());
    if usable {
        Ok(())
    } else {
        Err(ClientSetupError::InvalidHeloName {
            helo_name: helo_name.to_string(),
        })
    }
}

/// Addresses go between angle brackets on a command line; anything that could end the line
/// or the brackets early would let the address inject commands.
fn check_path(path: &str, is_reverse_path: bool) -> Result<(), ClientSetupError> {
    let invalid = |reason| {
        Err(ClientSetupError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() && !is_reverse_path {
        return invalid("a forward-path cannot be empty (RFC 5321 4.1.1.3)");
    }
    if path.len() + 2 > PATH_MAX_OCTETS {
        return invalid("longer than 256 octets with its brackets (RFC 5321 4.5.3.1.3)");
    }
    let mut brackets = false;
    for c in path.chars() {
        if c.is_control() {
            return invalid("control characters are not allowed");
        }
        brackets |= c == '<' || c == '>';
    }
    // RFC 5321 4.1.2: "<" and ">" may stand inside a quoted local part ("a>b"@example.org),
    // where the grammar keeps them from ending the path; anywhere else they would.
    if brackets && super::address::Mailbox::parse(path).is_err() {
        return invalid(
            "angle brackets are allowed only inside a quoted local part (a display name with \
             an address, Jane <jane@example.org>, is not an address)",
        );
    }
    Ok(())
}

/// Checks what the sender asks of DSN (RFC 3461 4.1, 4.4).
fn check_dsn(dsn: &DsnParameters, forward_paths: usize) -> Result<(), ClientSetupError> {
    let invalid = |reason: String| Err(ClientSetupError::InvalidDsn { reason });
    let notifies = std::iter::once(dsn.notify).chain(dsn.recipients.iter().map(|r| r.notify));
    for notify in notifies {
        if let Some(Notify::On {
            success: false,
            failure: false,
            delay: false,
        }) = notify
        {
            return invalid(
                "NOTIFY needs NEVER or at least one of SUCCESS, FAILURE and DELAY (RFC 3461 4.1)"
                    .into(),
            );
        }
    }
    if !dsn.recipients.is_empty() && dsn.recipients.len() != forward_paths {
        return invalid(format!(
            "DSN parameters for {} recipients, and {forward_paths} forward paths",
            dsn.recipients.len()
        ));
    }
    for orcpt in dsn.recipients.iter().filter_map(|r| r.orcpt.as_ref()) {
        if OriginalRecipient::parse(&orcpt.wire(), false).as_ref() != Ok(orcpt) {
            return invalid(format!(
                "ORCPT {:?} cannot be sent (RFC 3461 4.2)",
                orcpt.wire()
            ));
        }
    }
    if let Some(problem) = dsn.envid.as_deref().and_then(envelope_id_problem) {
        return invalid(problem);
    }
    Ok(())
}

/// Whether a reply to RCPT may mean "too many recipients" (RFC 5321 4.5.3.1.10): 452, or RFC
/// 821's 552, which the client should take as temporary. After an accepted recipient it means
/// the limit, and the rest go in the next transaction, unless its enhanced code says
/// otherwise: 452 4.2.2 is one full mailbox (RFC 3463 3.3), and the next recipient may well be
/// taken.
pub(crate) fn may_mean_too_many_recipients(reply: &Reply) -> bool {
    matches!(reply.code, 452 | 552)
        && reply
            .enhanced
            .is_none_or(|status| (status.subject, status.detail) == (5, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(message: &[u8]) -> ClientSession {
        ClientSession::new(
            ClientConfig::new("client.example"),
            Envelope {
                dsn: Default::default(),
                reverse_path: "a@x.example".into(),
                forward_paths: vec!["b@y.example".into()],
            },
            message.to_vec(),
        )
        .expect("valid setup")
    }

    fn drain_output(session: &mut ClientSession) -> String {
        let mut all = Vec::new();
        while let Some(bytes) = session.poll_output() {
            all.extend(bytes);
        }
        String::from_utf8(all).expect("ascii")
    }

    #[test]
    fn angle_brackets_are_sent_only_inside_a_quoted_local_part() {
        // RFC 5321 4.1.2: qtextSMTP includes "<" and ">"; outside quotes they end the path.
        assert!(check_path("\"a>b\"@example.org", false).is_ok());
        assert!(check_path("\"<x>\"@example.org", true).is_ok());
        for bad in [
            "a>b@example.org",
            "a@example.org>",
            "<a@example.org",
            "\"a\">b@x.org",
        ] {
            assert!(check_path(bad, false).is_err(), "{bad}");
        }
        assert!(check_path("\"a\rb\"@example.org", false).is_err());
    }

    #[test]
    fn setup_rejects_injection_and_empty_envelopes() {
        let config = ClientConfig::new("client.example");
        let bad = Envelope {
            dsn: Default::default(),
            reverse_path: "a@x\r\nRCPT TO:<evil@x>".into(),
            forward_paths: vec!["b@y".into()],
        };
        assert!(matches!(
            ClientSession::new(config.clone(), bad, Vec::new()),
            Err(ClientSetupError::InvalidPath { .. })
        ));
        let empty = Envelope {
            dsn: Default::default(),
            reverse_path: String::new(),
            forward_paths: Vec::new(),
        };
        assert_eq!(
            ClientSession::new(config, empty, Vec::new()).unwrap_err(),
            ClientSetupError::NoForwardPaths
        );
        let mut with_space = ClientConfig::new("two words");
        with_space.prefer_pipelining = false;
        assert!(ClientSession::new(
            with_space,
            Envelope {
                dsn: Default::default(),
                reverse_path: String::new(),
                forward_paths: vec!["b@y".into()]
            },
            Vec::new()
        )
        .is_err());
    }

    #[test]
    fn happy_path_with_pipelining() {
        let mut client = session(b"Subject: t\r\n\r\nhi\r\n");
        client.handle_connected(0);
        assert_eq!(client.poll_timeout(), Some(300_000));
        client.handle_input(b"220 mx ESMTP\r\n", 1);
        assert_eq!(drain_output(&mut client), "EHLO client.example\r\n");
        client.handle_input(b"250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 2);
        assert_eq!(
            drain_output(&mut client),
            "MAIL FROM:<a@x.example> SIZE=18\r\nRCPT TO:<b@y.example>\r\n"
        );
        client.handle_input(b"250 ok\r\n250 ok\r\n", 3);
        assert_eq!(drain_output(&mut client), "DATA\r\n");
        assert_eq!(client.poll_timeout(), Some(3 + 120_000));
        client.handle_input(b"354 go\r\n", 4);
        assert_eq!(drain_output(&mut client), "Subject: t\r\n\r\nhi\r\n.\r\n");
        client.handle_input(b"250 2.0.0 queued\r\n", 5);
        assert_eq!(drain_output(&mut client), "QUIT\r\n");
        client.handle_input(b"221 bye\r\n", 6);
        assert!(client.is_finished());
        let outcome = client.outcome().expect("finished");
        assert!(outcome.all_accepted());
        assert_eq!(outcome.final_data_reply().map(|r| r.code), Some(250));
        let events: Vec<ClientEvent> = std::iter::from_fn(|| client.poll_event()).collect();
        assert_eq!(events.last(), Some(&ClientEvent::Finished));
    }

    /// RFC 5321 4.5.3.2: a reply is waited for from when the command or data went out; a
    /// driver whose writes took a while says when they were done.
    #[test]
    fn the_wait_for_a_reply_starts_again_when_the_driver_has_sent() {
        let mut client = session(b"Subject: x\r\n\r\nbody\r\n");
        client.handle_connected(0);
        assert_eq!(client.poll_timeout(), Some(300_000));
        client.handle_input(b"220 mx\r\n", 10);
        assert_eq!(client.poll_timeout(), Some(300_010));
        drain_output(&mut client);
        client.handle_sent(2_000);
        assert_eq!(client.poll_timeout(), Some(302_000));
        client.handle_timeout(300_010);
        assert_eq!(client.state(), ClientStateKind::ExpectEhloReply);
    }

    #[test]
    fn timeout_fails_recipients_temporarily() {
        let mut client = session(b"x");
        client.handle_connected(1000);
        client.handle_timeout(1000 + 299_999);
        assert!(!client.is_finished());
        client.handle_timeout(1000 + 300_000);
        let outcome = client.outcome().expect("finished");
        assert!(matches!(
            outcome.recipients[0].status,
            RecipientStatus::TemporaryFailure(_)
        ));
        assert_eq!(outcome.recipients[0].reply_origin, ReplyOrigin::Client);
    }

    #[test]
    fn ehlo_keywords_parsed() {
        let reply = Reply::multiline(
            250,
            None,
            vec![
                "mx greets you".into(),
                "pipelining".into(),
                "SIZE 10240000".into(),
                "AUTH PLAIN login".into(),
                "AUTH=CRAM-MD5".into(),
                "8BITMIME".into(),
                "XFOO bar".into(),
                "".into(),
            ],
        );
        let extensions = ServerExtensions::from_ehlo_reply(&reply);
        assert!(extensions.pipelining);
        assert_eq!(extensions.size, Some(10_240_000));
        assert_eq!(
            extensions.auth_mechanisms,
            vec!["PLAIN", "LOGIN", "CRAM-MD5"]
        );
        assert!(extensions.eight_bit_mime);
        assert!(!extensions.smtputf8);
        assert_eq!(extensions.others, vec!["XFOO bar"]);
    }

    #[test]
    fn notify_reads_never_alone_or_conditions_once_each_in_any_case() {
        assert_eq!(Notify::parse("never"), Ok(Notify::Never));
        let delay_success = Notify::parse("Delay,SUCCESS").unwrap();
        assert_eq!(
            delay_success,
            Notify::On {
                success: true,
                failure: false,
                delay: true
            }
        );
        // Sent in the RFC's order, whatever order it was given in.
        assert_eq!(delay_success.wire(), "SUCCESS,DELAY");
        assert_eq!(Notify::parse("FAILURE").unwrap().wire(), "FAILURE");
        for bad in [
            "NEVER,SUCCESS",
            "SUCCESS,NEVER",
            "SUCCESS,SUCCESS",
            "",
            "SUCCESS,",
            "ALWAYS",
        ] {
            assert!(Notify::parse(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn xtext_encodes_plus_equals_and_what_is_not_printable() {
        assert_eq!(xtext("bob@example.net"), "bob@example.net");
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("\u{e9}"), "+C3+A9");
    }

    #[test]
    fn orcpt_is_rfc822_for_ascii_and_utf8_in_its_7bit_form_otherwise() {
        use crate::smtp::dsn_params::original_recipient_parameter;
        assert_eq!(
            original_recipient_parameter("bob+news@example.net").as_deref(),
            Some("rfc822;bob+2Bnews@example.net")
        );
        // RFC 6533 3: outside QCHAR ("+", "=", "\\" and what is not printable ASCII) is \x{HEX}.
        assert_eq!(
            original_recipient_parameter("j\u{f6}rg+a=b\\c@b\u{fc}cher.example").as_deref(),
            Some("utf-8;j\\x{F6}rg\\x{2B}a\\x{3D}b\\x{5C}c@b\\x{FC}cher.example")
        );
        // What the server reads back is what it quotes: the same type and text.
        let sent = original_recipient_parameter("\u{1F600}@example.net").unwrap_or_default();
        let read = OriginalRecipient::parse(&sent, false).expect("a server takes it");
        assert_eq!(
            (read.address_type.as_str(), read.address.as_str()),
            ("utf-8", "\\x{1F600}@example.net")
        );
        // RFC 3461 3: at most 500 characters; longer goes without ORCPT.
        let fits = format!("a{}@example.net", "+".repeat(160));
        assert_eq!(
            original_recipient_parameter(&fits).map(|v| v.len()),
            Some(500)
        );
        let longer = format!("{}@example.net", "+".repeat(161));
        assert_eq!(original_recipient_parameter(&longer), None);
        let wide = format!("{}@example.net", "\u{e9}".repeat(90));
        assert_eq!(original_recipient_parameter(&wide), None);
    }

    #[test]
    fn an_envid_problem_names_the_character_and_the_rule() {
        use crate::smtp::dsn_params::{chosen_envelope_id_problem, envelope_id_problem};
        let problem = |envid: &str| chosen_envelope_id_problem(envid).unwrap_or_default();
        assert!(problem("a\u{a0}b").starts_with("ENVID holds a no-break space (U+00A0)"));
        assert!(problem("a\tb").starts_with("ENVID holds a tab (U+0009)"));
        assert!(problem("a\u{1}b").starts_with("ENVID holds a control character (U+0001)"));
        assert!(problem("caf\u{e9}").starts_with("ENVID holds \u{201c}\u{e9}\u{201d} (U+00E9)"));
        assert!(problem(" lead").starts_with("ENVID begins or ends with a space"));
        assert!(problem("trail ").starts_with("ENVID begins or ends with a space"));
        assert_eq!(chosen_envelope_id_problem("in between"), None);
        // Only a sender's own choice: one that came that way is passed on as it came.
        assert_eq!(envelope_id_problem(" lead"), None);
        let long = format!("{} x", "x".repeat(98));
        assert!(
            problem(&long).contains("102 characters as sent in xtext (\"+\", \"=\" and a space"),
            "{}",
            problem(&long)
        );
    }

    #[test]
    fn dsn_parameters_that_cannot_be_sent_are_refused_at_setup() {
        let setup = |dsn: DsnParameters| {
            let envelope = Envelope {
                reverse_path: "alice@example.org".into(),
                forward_paths: vec!["bob@example.net".into()],
                dsn,
            };
            ClientSession::new(
                ClientConfig::new("client.example"),
                envelope,
                b"Hi\r\n".to_vec(),
            )
            .err()
        };
        let envid = |text: &str| DsnParameters {
            envid: Some(text.to_string()),
            ..DsnParameters::default()
        };
        assert_eq!(setup(envid(&"x".repeat(ENVID_MAX_CHARS))), None);
        // 34 "+" are 102 characters as xtext.
        for bad in [
            envid(""),
            envid("caf\u{e9}"),
            envid("a\tb"),
            envid(&"+".repeat(34)),
        ] {
            assert!(
                matches!(
                    setup(bad.clone()),
                    Some(ClientSetupError::InvalidDsn { .. })
                ),
                "{bad:?} was taken"
            );
        }
        let nothing = DsnParameters {
            notify: Some(Notify::On {
                success: false,
                failure: false,
                delay: false,
            }),
            ..DsnParameters::default()
        };
        assert!(matches!(
            setup(nothing),
            Some(ClientSetupError::InvalidDsn { .. })
        ));
    }
}
