//! Scenarios: a JSON description of a mail world (DNS, hosts, their policies and faults,
//! mailboxes) and of the messages sent in it, with validation that says what is wrong and where.
//!
//! This module only describes and checks; `world` runs a scenario.

use crate::dns::DnsWorld;
use crate::mail::compose::{self, Attachment};
use crate::smtp::address::{
    domain_key, mailbox_key, strict_a_labels, strict_a_labels_of_any_length, AddressError, Mailbox,
};
use crate::smtp::client::{MESSAGE_MAX_OCTETS, SASL_PLAIN_FIELD_MAX_OCTETS};
use crate::smtp::reply::{EnhancedStatus, Reply, ReplyReader};
use crate::smtp::server::ServerExtensionSet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Largest scenario file accepted, in octets.
pub const SCENARIO_MAX_OCTETS: usize = 4 * 1024 * 1024;
/// Most hosts, messages, recipients per message and fetches in one scenario.
pub const HOSTS_MAX: usize = 256;
pub const MESSAGES_MAX: usize = 20_000;
pub const RECIPIENTS_MAX: usize = 1_000;
pub const FETCHES_MAX: usize = 1_000;
/// Largest generated attachment, in octets.
pub const ATTACHMENT_MAX_OCTETS: usize = 8 * 1024 * 1024;
/// Most attachment octets in a whole scenario: the simulation keeps every message in memory.
pub const ATTACHMENTS_TOTAL_MAX_OCTETS: usize = 64 * 1024 * 1024;
pub const RAW_SESSIONS_MAX: usize = 1_000;
/// The longest stretch of simulated time a scenario may describe (a year), so that every
/// time in milliseconds stays far from overflowing.
pub const SIMULATED_TIME_MAX_S: u64 = 366 * 24 * 3600;
/// Largest mailbox size or quota, in octets (1 TiB).
pub const MAILBOX_MAX_OCTETS: u64 = 1 << 40;
/// The latest wall-clock start: the year 9999 (RFC 5322 dates have four-digit years).
pub const START_UNIX_S_MAX: i64 = 253_402_300_799 - SIMULATED_TIME_MAX_S as i64;

/// 2026-09-01 08:00:00 UTC: the default wall-clock time at which a simulation starts.
pub const DEFAULT_START_UNIX_S: i64 = 1_788_249_600;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier, used on the command line (`smtp-lab run NAME`).
    pub name: String,
    pub title: String,
    /// What the scenario teaches, for the student (a few sentences).
    #[serde(default)]
    pub teaching: String,
    /// The seed used when none is given on the command line.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The simulated wall clock at time 0 (Unix seconds, UTC), for Date and Received fields.
    #[serde(default = "default_start")]
    pub start_unix_s: i64,
    /// One-way latency of every link, unless a host's fault slows it.
    #[serde(default = "default_latency")]
    pub latency_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    pub dns: DnsWorld,
    pub hosts: Vec<HostSpec>,
    pub messages: Vec<MessageSpec>,
    /// Recipients reading their mail over POP3.
    #[serde(default)]
    pub fetches: Vec<FetchSpec>,
    /// Scripted clients that send fixed bytes (misbehaving or hostile peers, raw POP3).
    #[serde(default)]
    pub raw_sessions: Vec<RawSessionSpec>,
    /// The simulation stops at this time even if retries are still queued.
    #[serde(default = "default_run_until")]
    pub run_until_s: u64,
}

fn default_seed() -> u64 {
    1
}
fn default_start() -> i64 {
    DEFAULT_START_UNIX_S
}
fn default_latency() -> u64 {
    20
}
fn default_run_until() -> u64 {
    7 * 24 * 3600
}

/// When a queued message is tried again (RFC 5321 4.5.4.1): the first retry after
/// `first_retry_s`, each later wait twice the one before up to `max_interval_s`, and a bounce
/// once the message has been queued for `give_up_s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RetryPolicyFields")]
pub struct RetryPolicy {
    pub first_retry_s: u64,
    pub max_interval_s: u64,
    pub give_up_s: u64,
    /// Send the sender a "delayed" notice (RFC 3464 Action: delayed) once the message has
    /// waited this long; none when absent.
    pub delay_notice_s: Option<u64>,
    /// How long a client waits for a TCP connection before trying the next MX.
    pub connect_timeout_s: u64,
}

/// The longest wait between attempts unless a scenario sets another. RFC 5321 4.5.4.1:
/// "two connection attempts in the first hour the message is in the queue, and then backing
/// off to one every two or three hours".
pub const DEFAULT_MAX_INTERVAL_S: u64 = 3 * 3600;

/// A retry policy as a scenario file writes it, each field optional. A `max_interval_s` left
/// out is the default, or `first_retry_s` when that is longer: a file that sets only a long
/// first wait is not refused over a field it never wrote.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RetryPolicyFields {
    first_retry_s: u64,
    #[serde(deserialize_with = "present")]
    max_interval_s: Option<u64>,
    give_up_s: u64,
    delay_notice_s: Option<u64>,
    connect_timeout_s: u64,
}

/// A field that, when present, must be an integer (not `null`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(deserializer).map(Some)
}

impl Default for RetryPolicyFields {
    fn default() -> Self {
        let defaults = RetryPolicy::default();
        RetryPolicyFields {
            first_retry_s: defaults.first_retry_s,
            max_interval_s: None,
            give_up_s: defaults.give_up_s,
            delay_notice_s: defaults.delay_notice_s,
            connect_timeout_s: defaults.connect_timeout_s,
        }
    }
}

impl From<RetryPolicyFields> for RetryPolicy {
    fn from(fields: RetryPolicyFields) -> Self {
        RetryPolicy {
            first_retry_s: fields.first_retry_s,
            max_interval_s: fields
                .max_interval_s
                .unwrap_or(DEFAULT_MAX_INTERVAL_S.max(fields.first_retry_s)),
            give_up_s: fields.give_up_s,
            delay_notice_s: fields.delay_notice_s,
            connect_timeout_s: fields.connect_timeout_s,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_retry_s: 30 * 60,
            max_interval_s: DEFAULT_MAX_INTERVAL_S,
            give_up_s: 5 * 24 * 3600,
            delay_notice_s: None,
            connect_timeout_s: 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The host's name: its greeting, its Received fields, the MX targets that point to it.
    pub name: String,
    /// Its IP address; DNS A/AAAA records point here.
    pub address: IpAddr,
    /// Domains whose mailboxes live on this host (final delivery through its MDA).
    #[serde(default)]
    pub local_domains: Vec<String>,
    #[serde(default)]
    pub mailboxes: Vec<MailboxSpec>,
    /// Domains this host accepts mail for without knowing the mailboxes, and passes on (an
    /// MX in front of an internal mail store).
    #[serde(default)]
    pub relay_domains: Vec<String>,
    /// Where mail for a domain goes instead of its MX (a smart host or an internal route).
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// A message submission agent on port 587 (RFC 6409): these users may authenticate and
    /// then send to any domain.
    #[serde(default)]
    pub submission_users: Vec<UserSpec>,
    /// Whether a user who authenticated may send only as their own address (RFC 6409 6.1;
    /// Postfix's `reject_sender_login_mismatch`): `alice` as `alice@` one of the
    /// `local_domains`, or a user named by an address as that address.
    #[serde(default)]
    pub reject_sender_login_mismatch: bool,
    /// Greylisting (451 4.7.1) for this long after the first attempt.
    #[serde(default)]
    pub greylist_s: Option<u64>,
    #[serde(default = "default_max_size")]
    pub max_size_octets: u64,
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    #[serde(default)]
    pub extensions: ServerExtensionSet,
    /// What the server does with a bare CR or LF in a message.
    #[serde(default)]
    pub bare_line_ending: BareLineEndingSpec,
    /// Whether this host's SMTP client pipelines when the server offers it.
    #[serde(default = "default_true")]
    pub client_pipelining: bool,
    /// When set, this host's SMTP client sends messages with BDAT (RFC 3030 CHUNKING) in
    /// chunks of at most this many octets to a server that offers CHUNKING; otherwise, and
    /// to a server without it, with DATA.
    #[serde(default)]
    pub client_chunk_octets: Option<u64>,
    /// How long this host's SMTP client keeps a connection open after its last message, for
    /// more mail to the same server (Postfix's connection cache keeps 2 s). With 0 it says
    /// QUIT at once; mail queued while a session is still open joins it either way.
    #[serde(default)]
    pub connection_cache_s: u64,
    #[serde(default)]
    pub faults: Vec<HostFault>,
}

/// TCP port 0 is reserved (RFC 6335 6): no server listens there, and no client can connect
/// to it.
const PORT_ZERO: &str = "0 is no port a server listens on (TCP port 0 is reserved)";

/// Longest a client keeps an idle connection for more mail: less than a server's 5-minute
/// idle timeout (RFC 5321 4.5.3.2.7), with room for the link, so that the client ends the
/// session with QUIT before the server gives up on it.
pub const CONNECTION_CACHE_S_MAX: u64 = 240;

fn default_max_size() -> u64 {
    10 * 1024 * 1024
}
fn default_max_recipients() -> usize {
    100
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BareLineEndingSpec {
    #[default]
    Reject,
    Normalize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSpec {
    pub address: String,
    /// For POP3.
    #[serde(default)]
    pub password: Option<String>,
    /// The mailbox refuses messages that would take it over this size.
    #[serde(default)]
    pub quota_octets: Option<u64>,
    /// Octets already used at the start (to make a mailbox full).
    #[serde(default)]
    pub used_octets: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub domain: String,
    /// A host name from `hosts`.
    pub host: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub user: String,
    pub password: String,
}

/// Something wrong with a host, as data: from `from_s` until `until_s` (for ever when absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFault {
    pub kind: FaultKind,
    #[serde(default)]
    pub from_s: u64,
    #[serde(default)]
    pub until_s: Option<u64>,
}

impl HostFault {
    pub fn active_at(&self, now_ms: u64) -> bool {
        let from_ms = self.from_s.saturating_mul(1000);
        now_ms >= from_ms
            && self
                .until_s
                .is_none_or(|until| now_ms < until.saturating_mul(1000))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", try_from = "FaultKindFields")]
pub enum FaultKind {
    /// Nothing listens: connections are refused at once.
    Down,
    /// The host does not answer at all: connections time out.
    NoAnswer,
    /// The connection breaks in the middle of the message: of the data that arrives after
    /// the 354, the first half reaches the server, never its end (see `part_before_data_end`).
    DropInData,
    /// Every link to and from this host takes this much longer, each way.
    Slow { extra_latency_ms: u64 },
    /// The SMTP server is up but cannot serve now: it answers 421 at the greeting and
    /// closes (RFC 5321 3.8), so the sending server tries the next MX or later.
    Busy,
    /// The SMTP server refuses service: it answers 554 at the greeting instead of 220, then
    /// waits for QUIT and answers anything else with 503 (RFC 5321 3.1).
    Refuse,
    /// The SMTP server hangs at one point of the session (a stuck process, a content filter
    /// that never returns): it reads on but answers nothing more, so the client waits out
    /// its timeout for that reply (RFC 5321 4.5.3.2).
    Stall { at: StallPoint },
    /// The SMTP server answers MAIL, every RCPT or the message's final dot with the reply the
    /// scenario writes (`450 4.2.1 Mailbox busy`), in place of what its own rules (mailboxes,
    /// relaying, greylisting, senders) would have said: for showing the refusals RFC 5321
    /// 4.3.2 lists for that command. The checks every server makes first still come first.
    Reply { at: StallPoint, reply: String },
}

/// A reply fault's reply at `at`, read as the client reads one from the wire: a code from
/// 400 to 599 whose second digit is 0 to 5 (RFC 5321 4.2.1), one of RFC 5321 4.3.2's refusals
/// of that command (less 503 and 555, the client's sequence and syntax errors, which a server
/// counts against it; and 554 at MAIL and RCPT too, as servers such as Postfix give it for
/// policy), then a space and printable ASCII text (`textstring` has at least one character),
/// which may start with an enhanced status code of the same class (RFC 3463 2).
pub fn scripted_reply(text: &str, at: StallPoint) -> Result<Reply, &'static str> {
    const NOT_A_REPLY: &str = "a reply fault's reply is a refusal such as \"450 4.2.1 Mailbox \
                               busy, try again later\": a code from 400 to 599, a space and \
                               printable ASCII text";
    let bytes = text.as_bytes();
    if bytes.len() < 5 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[3] != b' ' {
        return Err(NOT_A_REPLY);
    }
    if !matches!(bytes[0], b'4' | b'5') || bytes[1] > b'5' {
        return Err(NOT_A_REPLY);
    }
    if &text[..3] == "421" {
        return Err("421 closes the connection (RFC 5321 3.8): that is a busy fault");
    }
    if !bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Err(NOT_A_REPLY);
    }
    if bytes.len() > 512 - 2 {
        return Err("a reply fault's reply is at most 510 characters (RFC 5321 4.5.3.1.5)");
    }
    let mut reader = ReplyReader::new();
    reader.push(text.as_bytes());
    reader.push(b"\r\n");
    let Some(Ok(reply)) = reader.next_reply() else {
        return Err(NOT_A_REPLY);
    };
    // The reader keeps a status of another class as text; a reply fault's author meant it.
    let written_status = EnhancedStatus::parse_prefix(&text[4..]);
    if let Some((status, rest)) = written_status {
        if reply.enhanced.is_none() {
            return Err(
                "a reply fault's enhanced status code has the class of its reply code: 4.x.x \
                 after 4xx, 5.x.x after 5xx (RFC 3463 2)",
            );
        }
        // As written, not as read: `4.02.001` reads as 4.2.1.
        if !text[4..].starts_with(&status.to_string()) {
            return Err(
                "a reply fault's enhanced status code is written without leading zeros, as \
                 4.2.1 (RFC 3463 2)",
            );
        }
        if rest.trim().is_empty() {
            return Err("a reply fault's reply has text after its enhanced status code");
        }
    }
    let (codes, refused): (&[u16], _) = match at {
        StallPoint::Mail => (
            &[451, 452, 455, 550, 552, 553, 554],
            "a reply fault at mail answers 451, 452, 455, 550, 552, 553 or 554 (RFC 5321 \
             4.3.2, and 554 as servers give it for policy)",
        ),
        StallPoint::Rcpt => (
            &[450, 451, 452, 455, 550, 551, 552, 553, 554],
            "a reply fault at rcpt answers 450, 451, 452, 455, 550, 551, 552, 553 or 554 (RFC \
             5321 4.3.2, and 554 as servers give it for policy)",
        ),
        StallPoint::Dot => (
            &[450, 451, 452, 550, 552, 554],
            "a reply fault at dot answers 450, 451, 452, 550, 552 or 554 (RFC 5321 4.3.2)",
        ),
        StallPoint::Greeting | StallPoint::Ehlo | StallPoint::Data => {
            return Err("a reply fault answers at mail, rcpt or dot");
        }
    };
    if !codes.contains(&reply.code) {
        return Err(refused);
    }
    Ok(reply)
}

/// Where a stalled server stops answering: the reply it never sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallPoint {
    /// No greeting.
    Greeting,
    /// No reply to EHLO (or HELO).
    Ehlo,
    /// No reply to MAIL.
    Mail,
    /// No reply to the first RCPT.
    Rcpt,
    /// No 354 for DATA.
    Data,
    /// No reply to the message: the server hangs once its final dot arrives, before it takes
    /// responsibility for it.
    Dot,
}

impl StallPoint {
    /// The command whose reply the server never sends, as a client's timeout names it.
    pub fn awaited(self) -> &'static str {
        match self {
            StallPoint::Greeting => "the greeting",
            StallPoint::Ehlo => "the reply to EHLO",
            StallPoint::Mail => "the reply to MAIL",
            StallPoint::Rcpt => "the reply to RCPT",
            StallPoint::Data => "the 354 for DATA",
            StallPoint::Dot => "the reply to the message's final dot",
        }
    }
}

/// A fault kind as written: its type and the fields a type may take. Read through this,
/// because serde lets a tagged enum's variants without fields ignore unknown ones, and a
/// misspelt field must be an error.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a fault kind such as {\"type\": \"down\"}, {\"type\": \"slow\", \"extra_latency_ms\": 500}, {\"type\": \"stall\", \"at\": \"dot\"} or {\"type\": \"reply\", \"at\": \"rcpt\", \"reply\": \"450 4.2.1 Mailbox busy\"}"
)]
struct FaultKindFields {
    #[serde(rename = "type")]
    kind: FaultType,
    extra_latency_ms: Option<u64>,
    at: Option<StallPoint>,
    reply: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FaultType {
    Down,
    NoAnswer,
    DropInData,
    Slow,
    Busy,
    Refuse,
    Stall,
    Reply,
}

impl TryFrom<FaultKindFields> for FaultKind {
    type Error = &'static str;

    fn try_from(fields: FaultKindFields) -> Result<FaultKind, &'static str> {
        let FaultKindFields {
            kind,
            extra_latency_ms,
            at,
            reply,
        } = fields;
        if extra_latency_ms.is_some() && !matches!(kind, FaultType::Slow) {
            return Err("only a slow fault takes extra_latency_ms");
        }
        if at.is_some() && !matches!(kind, FaultType::Stall | FaultType::Reply) {
            return Err("only a stall or reply fault takes at");
        }
        if reply.is_some() && !matches!(kind, FaultType::Reply) {
            return Err("only a reply fault takes reply");
        }
        Ok(match kind {
            FaultType::Down => FaultKind::Down,
            FaultType::NoAnswer => FaultKind::NoAnswer,
            FaultType::DropInData => FaultKind::DropInData,
            FaultType::Busy => FaultKind::Busy,
            FaultType::Refuse => FaultKind::Refuse,
            FaultType::Slow => FaultKind::Slow {
                extra_latency_ms: extra_latency_ms.ok_or("a slow fault needs extra_latency_ms")?,
            },
            FaultType::Stall => FaultKind::Stall {
                at: at.ok_or("a stall fault needs at: greeting, ehlo, mail, rcpt, data or dot")?,
            },
            FaultType::Reply => {
                let at = at.ok_or("a reply fault needs at: mail, rcpt or dot")?;
                if !matches!(at, StallPoint::Mail | StallPoint::Rcpt | StallPoint::Dot) {
                    return Err(
                        "a reply fault answers at mail, rcpt or dot (a busy or refuse fault \
                         answers the greeting)",
                    );
                }
                let reply = reply.ok_or(
                    "a reply fault needs reply, such as \"450 4.2.1 Mailbox busy, try again \
                     later\"",
                )?;
                FaultKind::Reply { at, reply }
            }
        })
    }
}

/// A message a user agent composes and submits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<AttachmentSpec>,
    /// The host the user agent submits to.
    pub submit_to: String,
    /// 587 (submission with AUTH) or 25.
    #[serde(default = "default_submission_port")]
    pub port: u16,
    #[serde(default)]
    pub auth: Option<UserSpec>,
    #[serde(default)]
    pub at_s: u64,
    /// The exact message instead of a composed one (escapes are not interpreted: JSON
    /// strings can hold CR and LF), for cases like SMTP smuggling.
    #[serde(default)]
    pub raw: Option<String>,
    /// Whether the user agent pipelines when offered.
    #[serde(default = "default_true")]
    pub pipelining: bool,
    /// Whether non-ASCII body text goes as it is, as 8bit data (RFC 6152), rather than as
    /// quoted-printable.
    #[serde(default)]
    pub eight_bit_body: bool,
    /// Delivery status notifications the sender asks for (RFC 3461), sent to a submission
    /// server that offers DSN.
    /// Written back even when empty: an array read as this object is refused only where the
    /// scenario written back has the object (`refuse_arrays_read_as_objects`).
    #[serde(default)]
    pub dsn: DsnSpec,
}

/// What a message's sender asks of DSN (RFC 3461), written as on the wire: `"notify":
/// "SUCCESS,DELAY"` (or `"NEVER"`), `"ret": "HDRS"` (or `"FULL"`), `"envid": "order-42"`, and
/// `"orcpt": true` for each recipient's address as `ORCPT=rfc822;ADDRESS` (`utf-8;` for one
/// that is not ASCII, RFC 6533 3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsnSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<crate::smtp::dsn_params::Notify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<crate::smtp::dsn_params::DsnReturn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orcpt: bool,
}

impl DsnSpec {
    pub fn is_empty(&self) -> bool {
        *self == DsnSpec::default()
    }

    /// The parameters the user agent's client session sends.
    pub fn parameters(&self) -> crate::smtp::client::DsnParameters {
        crate::smtp::client::DsnParameters {
            notify: self.notify,
            ret: self.ret,
            envid: self.envid.clone(),
            orcpt: self.orcpt,
            recipients: Vec::new(),
        }
    }
}

fn default_submission_port() -> u16 {
    587
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSpec {
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Generated content of this size (deterministic bytes), or `text` below.
    #[serde(default)]
    pub size_octets: Option<usize>,
    #[serde(default)]
    pub text: Option<String>,
}

impl AttachmentSpec {
    /// How many octets the attachment holds before encoding: its text's, or the size asked
    /// for, whichever is larger (what the limits on attachments count).
    pub fn octets(&self) -> usize {
        self.size_octets
            .unwrap_or(0)
            .max(self.text.as_ref().map_or(0, String::len))
    }

    /// The attachment the user agent of message number `message_index` (from 0) composes:
    /// `text` when given, otherwise generated content (1024 octets unless `size_octets` says).
    pub fn attachment(&self, message_index: usize) -> Attachment {
        Attachment {
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            bytes: match (&self.text, self.size_octets) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, size) => generated_content(size.unwrap_or(1024), message_index),
            },
        }
    }
}

/// Deterministic attachment content: a repeating pattern that differs per message, capped as
/// validation caps it, for scenarios built in code.
fn generated_content(size: usize, salt: usize) -> Vec<u8> {
    (0..size.min(ATTACHMENT_MAX_OCTETS))
        .map(|i| (i.wrapping_mul(31).wrapping_add(salt * 7) % 251) as u8)
        .collect()
}

/// A user agent reading a mailbox over POP3 (RFC 1939).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    pub mailbox: String,
    /// The host holding the mailbox.
    pub host: String,
    pub at_s: u64,
    /// Delete the messages after retrieving them (the POP3 default).
    #[serde(default = "default_true")]
    pub delete: bool,
    /// The password to use; the mailbox's own when absent.
    #[serde(default)]
    pub password: Option<String>,
}

/// A client that connects and, after the greeting, writes `bytes` exactly as given (CR and
/// LF included), whatever the server answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionSpec {
    /// The actor's name in the trace.
    pub client: String,
    pub address: IpAddr,
    /// A host name from `hosts`.
    pub server: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub at_s: u64,
    pub bytes: String,
}

fn default_smtp_port() -> u16 {
    25
}

/// One problem in a scenario: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioError {
    /// A path into the document, like `hosts[2].routes[0].host`.
    pub at: String,
    pub problem: String,
}

impl fmt::Display for ScenarioError {
    /// One line: a control character, line separator or bidirectional formatting character
    /// quoted from the file (a name, an unknown field) is written as an escape, as in the text
    /// trace, so that it neither breaks the line nor acts on a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = elide_long_parts(&crate::escape::visible(self.at.clone()));
        let problem = elide_long_parts(&crate::escape::visible(self.problem.clone()));
        if at.is_empty() {
            f.write_str(&problem)
        } else {
            write!(f, "{at}: {problem}")
        }
    }
}

/// Shortens each part of `text` longer than a line to its start and end: a quoted value
/// (`"..."`, `` `...` ``) or a run without white space. A value or key quoted from the file
/// may be any length, and a message that repeats 200 KB of it hides what it says.
fn elide_long_parts(text: &str) -> String {
    const LONGEST: usize = 100;
    const HEAD: usize = 40;
    const TAIL: usize = 12;
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len().min(4 * LONGEST));
    let mut start = 0;
    while start < chars.len() {
        let first = chars[start];
        let end = if first.is_whitespace() {
            start + 1
        } else if first == '"' || first == '`' {
            // To the closing quote; a `"` escaped inside a quoted string does not close it.
            let mut end = start + 1;
            while end < chars.len() && !(chars[end] == first && chars[end - 1] != '\\') {
                end += 1;
            }
            (end + 1).min(chars.len())
        } else {
            let mut end = start + 1;
            while end < chars.len()
                && !chars[end].is_whitespace()
                && chars[end] != '"'
                && chars[end] != '`'
            {
                end += 1;
            }
            end
        };
        let part = &chars[start..end];
        if part.len() > LONGEST {
            out.extend(&part[..HEAD]);
            let _ = write!(out, "…({} characters left out)…", part.len() - HEAD - TAIL);
            out.extend(&part[part.len() - TAIL..]);
        } else {
            out.extend(part);
        }
        start = end;
    }
    out
}

/// Every problem found, so that a student fixes them all at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// What is wrong with a scenario file larger than [`SCENARIO_MAX_OCTETS`], in words that
/// follow its name (the command line and the app say the same).
pub fn file_too_large() -> String {
    format!("is larger than {SCENARIO_MAX_OCTETS} octets, the most a scenario may be")
}

/// The text of a scenario file, or what is wrong with its bytes, in words that follow its
/// name (the command line and the app say the same). JSON is UTF-8 (RFC 8259 8.1); a file
/// saved as UTF-16 (what some editors call "Unicode") or UTF-32 is named as such, since its
/// bytes say so: a byte order mark, or NULs among the first bytes, which JSON text, starting
/// with a bracket or white space, cannot have in UTF-8.
pub fn file_text(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() > SCENARIO_MAX_OCTETS {
        return Err(file_too_large());
    }
    if let Some(encoding) = wide_encoding(&bytes) {
        // Editors that say "Unicode" mean UTF-16.
        let called = if encoding == "UTF-16" {
            " (what some editors call \"Unicode\")"
        } else {
            ""
        };
        return Err(format!(
            "is {encoding} text{called}, but a JSON file must be UTF-8 (RFC 8259 8.1): save it \
             again as UTF-8"
        ));
    }
    String::from_utf8(bytes).map_err(|error| {
        // Where the first octet that is not UTF-8 is, counted as the other reading errors
        // count, from the text before it.
        let valid_up_to = error.utf8_error().valid_up_to();
        let octets = error.as_bytes();
        let before = std::str::from_utf8(&octets[..valid_up_to]).unwrap_or_default();
        // A byte order mark is no part of the text: columns are counted after it, as the JSON
        // reader counts them.
        let before = before.strip_prefix('\u{feff}').unwrap_or(before);
        format!(
            "is not UTF-8 text, which a JSON file must be (RFC 8259 8.1): octet {:#04x} at {} \
             (octet {} of the file) is not part of a UTF-8 character",
            octets[valid_up_to],
            line_and_column(before, before.len()),
            valid_up_to + 1
        )
    })
}

/// "UTF-32" or "UTF-16" when the first bytes of a file are those of JSON text in one of
/// them: a byte order mark (the UTF-32 ones begin like UTF-16's, so they are asked first),
/// or a character JSON text can begin with beside the NULs its high bytes leave: three in
/// four in UTF-32, one in two in UTF-16. Other bytes beside a NUL are not taken for text: a
/// binary file is not called UTF-16.
fn wide_encoding(bytes: &[u8]) -> Option<&'static str> {
    // RFC 8259 2 and 3: white space, then a value.
    let starts_json = |byte: &u8| {
        matches!(
            byte,
            b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"' | b'-' | b'0'
                ..=b'9' | b't' | b'f' | b'n'
        )
    };
    let utf32 = bytes.starts_with(&[0xFF, 0xFE, 0, 0])
        || bytes.starts_with(&[0, 0, 0xFE, 0xFF])
        || matches!(bytes, [first, 0, 0, 0, ..] | [0, 0, 0, first, ..] if starts_json(first));
    if utf32 {
        return Some("UTF-32");
    }
    let utf16 = bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
        || matches!(bytes, [first, 0, ..] | [0, first, ..] if starts_json(first));
    utf16.then_some("UTF-16")
}

impl Scenario {
    /// Parses and validates a scenario from JSON text.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioErrors> {
        if text.len() > SCENARIO_MAX_OCTETS {
            return Err(ScenarioErrors(vec![ScenarioError {
                at: String::new(),
                problem: format!("the scenario is larger than {SCENARIO_MAX_OCTETS} octets"),
            }]));
        }
        // A byte order mark, which some editors write, is not JSON; RFC 8259 8.1 lets a
        // reader ignore it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // serde_json places the end of an empty text at column 0.
        if text.trim_start().is_empty() {
            return Err(ScenarioErrors(vec![ScenarioError {
                at: String::new(),
                problem: "the file is empty (or holds only white space): a scenario is a JSON \
                          object ({\"name\": ..., ...})"
                    .into(),
            }]));
        }
        if text.trim_start().starts_with('[') {
            return Err(ScenarioErrors(vec![ScenarioError {
                at: line_and_column(text, text.len() - text.trim_start().len()),
                problem: format!(
                    "a scenario is a JSON object ({{\"name\": ..., ...}}), {NOT_AN_ARRAY}"
                ),
            }]));
        }
        // The path of the field that failed ("hosts[1].max_recipients") says where far better
        // than a line and column alone, for a file written by hand.
        let mut json = serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(&mut json).map_err(|error| {
            if let Some(at) = array_read_as_object(error.path()) {
                let position = array_position(text, &at, &error.into_inner());
                return ScenarioErrors(vec![array_for_object(format!("{at} ({position})"))]);
            }
            let path = error.path().to_string();
            read_error(text, &path, &error.into_inner())
        })?;
        // Text after the scenario (a second object, say) is refused as serde_json::from_str
        // does.
        json.end().map_err(|error| read_error(text, ".", &error))?;
        // The browser reads only the built-in library, whose files the native tests read
        // through this check; there it would add 9 KB (gzip) to every page load.
        #[cfg(not(target_arch = "wasm32"))]
        refuse_arrays_read_as_objects(text, &scenario)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what JSON parsing cannot: references between parts, addresses, limits.
    pub fn validate(&self) -> Result<(), ScenarioErrors> {
        let mut errors = Vec::new();
        let mut error = |at: String, problem: String| errors.push(ScenarioError { at, problem });
        if looks_empty(&self.name) {
            error("name".into(), "the scenario needs a name".into());
        }
        // The name and the title are printed on one line at the top of the text trace, the
        // name again in its first event: a line break there would forge a trace line. The
        // teaching text is running text (wrapped in the trace, a paragraph in the web page),
        // so a line break there is only a space; other control characters are mistakes.
        for (field, value, is_name) in [("name", &self.name, true), ("title", &self.title, false)] {
            if let Some(problem) = unfit_line(value, is_name) {
                error(field.into(), problem);
            }
        }
        if self.teaching.chars().any(|c| c.is_control() && c != '\n') {
            error(
                "teaching".into(),
                "holds a control character other than a line break (\\n)".into(),
            );
        }
        for problem in self.dns.validate() {
            error("dns".into(), problem.to_string());
        }
        if self.hosts.is_empty() {
            error("hosts".into(), "the world needs at least one host".into());
        }
        if self.hosts.len() > HOSTS_MAX {
            error("hosts".into(), format!("more than {HOSTS_MAX} hosts"));
        }
        if self.messages.len() > MESSAGES_MAX {
            error(
                "messages".into(),
                format!("more than {MESSAGES_MAX} messages"),
            );
        }
        if self.fetches.len() > FETCHES_MAX {
            error("fetches".into(), format!("more than {FETCHES_MAX} fetches"));
        }
        for (index, host) in self.hosts.iter().enumerate() {
            for (f, fault) in host.faults.iter().enumerate() {
                if let FaultKind::Reply { at, reply } = &fault.kind {
                    if let Err(problem) = scripted_reply(reply, *at) {
                        error(
                            format!("hosts[{index}].faults[{f}].kind.reply"),
                            problem.to_string(),
                        );
                    }
                }
            }
        }
        // A time in seconds, or (`in_ms`) in milliseconds, refused in its own unit: at most
        // SIMULATED_TIME_MAX_S, not a millisecond more.
        let mut time_in = |at: &str, value: u64, in_ms: bool| {
            let (unit, limit) = if in_ms {
                ("ms", SIMULATED_TIME_MAX_S * 1000)
            } else {
                ("s", SIMULATED_TIME_MAX_S)
            };
            if value > limit {
                errors.push(ScenarioError {
                    at: at.to_string(),
                    problem: format!("{value} {unit} is more than a year ({limit} {unit})"),
                });
            }
        };
        time_in("latency_ms", self.latency_ms, true);
        for (index, fault) in self.dns.faults.iter().enumerate() {
            let window = [("from_ms", fault.from_ms), ("until_ms", fault.until_ms)];
            for (field, value_ms) in window {
                if let Some(value_ms) = value_ms {
                    time_in(&format!("dns.faults[{index}].{field}"), value_ms, true);
                }
            }
        }
        for (index, host) in self.hosts.iter().enumerate() {
            for (f, fault) in host.faults.iter().enumerate() {
                if let FaultKind::Slow { extra_latency_ms } = fault.kind {
                    time_in(
                        &format!("hosts[{index}].faults[{f}].kind.extra_latency_ms"),
                        extra_latency_ms,
                        true,
                    );
                }
            }
        }
        time_in("run_until_s", self.run_until_s, false);
        time_in("retry.first_retry_s", self.retry.first_retry_s, false);
        time_in("retry.max_interval_s", self.retry.max_interval_s, false);
        time_in("retry.give_up_s", self.retry.give_up_s, false);
        time_in(
            "retry.connect_timeout_s",
            self.retry.connect_timeout_s,
            false,
        );
        if let Some(notice) = self.retry.delay_notice_s {
            time_in("retry.delay_notice_s", notice, false);
        }
        for (index, host) in self.hosts.iter().enumerate() {
            if let Some(greylist) = host.greylist_s {
                time_in(&format!("hosts[{index}].greylist_s"), greylist, false);
            }
            for (f, fault) in host.faults.iter().enumerate() {
                time_in(
                    &format!("hosts[{index}].faults[{f}].from_s"),
                    fault.from_s,
                    false,
                );
                if let Some(until) = fault.until_s {
                    time_in(&format!("hosts[{index}].faults[{f}].until_s"), until, false);
                }
            }
        }
        for (index, message) in self.messages.iter().enumerate() {
            time_in(&format!("messages[{index}].at_s"), message.at_s, false);
        }
        for (index, fetch) in self.fetches.iter().enumerate() {
            time_in(&format!("fetches[{index}].at_s"), fetch.at_s, false);
        }
        for (index, raw) in self.raw_sessions.iter().enumerate() {
            time_in(&format!("raw_sessions[{index}].at_s"), raw.at_s, false);
        }
        let mut error = |at: String, problem: String| errors.push(ScenarioError { at, problem });
        if !(0..=START_UNIX_S_MAX).contains(&self.start_unix_s) {
            error(
                "start_unix_s".into(),
                format!(
                    "must be between 0 and {START_UNIX_S_MAX} (so that a year-long run ends by \
                     the year 9999)"
                ),
            );
        }
        if self.raw_sessions.len() > RAW_SESSIONS_MAX {
            error(
                "raw_sessions".into(),
                format!("more than {RAW_SESSIONS_MAX} raw sessions"),
            );
        }
        // A `raw` message's attachments are ignored: never built, never checked.
        let attachment_octets: usize = self
            .messages
            .iter()
            .filter(|m| m.raw.is_none())
            .flat_map(|m| &m.attachments)
            .map(AttachmentSpec::octets)
            .fold(0, usize::saturating_add);
        if attachment_octets > ATTACHMENTS_TOTAL_MAX_OCTETS {
            error(
                "messages".into(),
                format!(
                    "the attachments add up to {attachment_octets} octets, more than \
                     {ATTACHMENTS_TOTAL_MAX_OCTETS}"
                ),
            );
        }
        for (field, seconds) in [
            ("first_retry_s", self.retry.first_retry_s),
            ("max_interval_s", self.retry.max_interval_s),
        ] {
            if seconds == 0 {
                error(
                    format!("retry.{field}"),
                    "must be at least one second: a retry interval of 0 would retry at once, \
                     forever"
                        .into(),
                );
            }
        }
        if self.retry.max_interval_s != 0 && self.retry.max_interval_s < self.retry.first_retry_s {
            error(
                "retry.max_interval_s".into(),
                format!(
                    "{} s is shorter than first_retry_s ({} s); the waits grow from the first \
                     up to this longest one",
                    self.retry.max_interval_s, self.retry.first_retry_s
                ),
            );
        }
        // A client that gives up on a connection at once never reaches any server.
        if self.retry.connect_timeout_s == 0 {
            error(
                "retry.connect_timeout_s".into(),
                "must be at least one second".into(),
            );
        } else if self.latency_ms.saturating_mul(2)
            >= self.retry.connect_timeout_s.saturating_mul(1000)
        {
            // Nor does one whose every handshake outlasts its patience.
            error(
                "latency_ms".into(),
                format!(
                    "a round trip of {} ms is not shorter than retry.connect_timeout_s ({} s): \
                     no connection could ever be made",
                    u128::from(self.latency_ms) * 2,
                    self.retry.connect_timeout_s
                ),
            );
        }
        // Anything set to happen after the run ends would silently not happen: a message
        // would have no fate at all.
        let after_end = |what: &str, at_s: u64| {
            (at_s > self.run_until_s).then(|| {
                format!(
                    "{what} at {at_s} s, after the run ends (run_until_s is {} s)",
                    self.run_until_s
                )
            })
        };
        for (index, message) in self.messages.iter().enumerate() {
            if let Some(problem) = after_end("sent", message.at_s) {
                error(format!("messages[{index}].at_s"), problem);
            }
        }
        for (index, fetch) in self.fetches.iter().enumerate() {
            if let Some(problem) = after_end("fetched", fetch.at_s) {
                error(format!("fetches[{index}].at_s"), problem);
            }
        }
        for (index, raw) in self.raw_sessions.iter().enumerate() {
            if let Some(problem) = after_end("opened", raw.at_s) {
                error(format!("raw_sessions[{index}].at_s"), problem);
            }
        }
        // The first host with each name (in lower case) and address, so that a second one is
        // told which. The names are looked up again below, for the hosts that routes, messages
        // and raw sessions name.
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let mut mailbox_addresses = BTreeSet::new();
        for (index, host) in self.hosts.iter().enumerate() {
            let at = format!("hosts[{index}]");
            if let Some(problem) = host_name_problem(&host.name) {
                error(
                    format!("{at}.name"),
                    format!("{:?} is not a host name: {problem}", host.name),
                );
            }
            let name_key = host.name.to_ascii_lowercase();
            if let Some(&first) = names.get(&name_key) {
                error(
                    format!("{at}.name"),
                    format!(
                        "two hosts are named {} (hosts[{first}] is named {})",
                        host.name, self.hosts[first].name
                    ),
                );
            } else {
                names.insert(name_key, index);
            }
            if let Some(problem) = host_address_problem(host.address) {
                error(format!("{at}.address"), problem);
            }
            // An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 2.5.5.2).
            let canonical = host.address.to_canonical();
            if let Some(&first) = addresses.get(&canonical) {
                error(
                    format!("{at}.address"),
                    format!(
                        "two hosts have the address {} (hosts[{first}] has {})",
                        host.address, self.hosts[first].address
                    ),
                );
            } else {
                addresses.insert(canonical, index);
            }
            for (m, mailbox) in host.mailboxes.iter().enumerate() {
                // The address names the reader's actor in the trace (`ua:ADDRESS`).
                let unfit = unfit_line(&mailbox.address, true);
                if let Some(problem) = &unfit {
                    error(format!("{at}.mailboxes[{m}].address"), problem.clone());
                }
                if !mailbox_addresses.insert(mailbox_key(&mailbox.address)) {
                    error(
                        format!("{at}.mailboxes[{m}].address"),
                        format!(
                            "the mailbox {} is defined twice; a mailbox lives on one host",
                            mailbox.address
                        ),
                    );
                }
                match mailbox.address.rsplit_once('@') {
                    // A quoted local part would be looked up in its unquoted form.
                    Some((local, _)) if local.contains('"') => error(
                        format!("{at}.mailboxes[{m}].address"),
                        format!(
                            "{:?}: a mailbox's local part cannot be quoted",
                            mailbox.address
                        ),
                    ),
                    Some((local, domain))
                        if !local.is_empty()
                            && host
                                .local_domains
                                .iter()
                                .any(|d| domain_key(d) == domain_key(domain)) =>
                    {
                        // Mail can only reach an address a server takes in RCPT TO, where a
                        // local part like `al ice` is written quoted.
                        let quoted = format!(
                            "\"{}\"@{domain}",
                            local.replace('\\', "\\\\").replace('"', "\\\"")
                        );
                        // The bare form's own problem, unless only quoting was missing.
                        let (parsed, form) = match Mailbox::parse(&mailbox.address) {
                            Err(AddressError::Syntax(_)) => {
                                (Mailbox::parse(&quoted), " once quoted")
                            }
                            bare => (bare, ""),
                        };
                        // A character said above to be unfit is the problem the parser
                        // finds too: said once.
                        if let (Err(problem), None) = (parsed, &unfit) {
                            let rfc = match problem {
                                AddressError::UnregisteredLiteral(_) => "4.1.3",
                                _ => "4.1.2, 4.5.3.1",
                            };
                            error(
                                format!("{at}.mailboxes[{m}].address"),
                                format!(
                                    "{:?} is not an address mail can be sent to{form}: \
                                     {problem} (RFC 5321 {rfc})",
                                    mailbox.address
                                ),
                            );
                        }
                    }
                    _ => error(
                        format!("{at}.mailboxes[{m}].address"),
                        format!(
                            "{:?} must be local-part@domain with a domain from local_domains",
                            mailbox.address
                        ),
                    ),
                }
                let sizes = [
                    ("quota_octets", mailbox.quota_octets.unwrap_or(0)),
                    ("used_octets", mailbox.used_octets),
                ];
                for (field, octets) in sizes {
                    if octets > MAILBOX_MAX_OCTETS {
                        error(
                            format!("{at}.mailboxes[{m}].{field}"),
                            format!("larger than {MAILBOX_MAX_OCTETS} octets (1 TiB)"),
                        );
                    }
                }
            }
            // PASS takes an argument (RFC 1939 7): an empty password could never be sent. A
            // mailbox without one has no password field.
            for (m, mailbox) in host.mailboxes.iter().enumerate() {
                if mailbox.password.as_deref() == Some("") {
                    error(
                        format!("{at}.mailboxes[{m}].password"),
                        "empty; PASS needs a password (RFC 1939 7), and a mailbox without one \
                         is written with no password field"
                            .into(),
                    );
                }
            }
            let mut users = BTreeSet::new();
            for (u, user) in host.submission_users.iter().enumerate() {
                for (field, problem) in credential_problems(user) {
                    error(format!("{at}.submission_users[{u}].{field}"), problem);
                }
                if !users.insert(&user.user) {
                    error(
                        format!("{at}.submission_users[{u}].user"),
                        format!("the user {:?} is defined twice", user.user),
                    );
                }
            }
            if !host.extensions.ehlo && !host.submission_users.is_empty() {
                error(
                    format!("{at}.extensions.ehlo"),
                    "false on a host with submission_users: submission needs AUTH, an ESMTP \
                     extension that only EHLO can offer (RFC 4954, RFC 6409 4.3)"
                        .into(),
                );
            }
            if host.max_recipients == 0 {
                error(format!("{at}.max_recipients"), "must be at least 1".into());
            }
            for (f, fault) in host.faults.iter().enumerate() {
                if fault.until_s.is_some_and(|until| until < fault.from_s) {
                    error(
                        format!("{at}.faults[{f}].until_s"),
                        "ends before it starts (from_s)".into(),
                    );
                }
            }
            if let Some(octets) = host.client_chunk_octets {
                if octets == 0 || octets > MESSAGE_MAX_OCTETS as u64 {
                    error(
                        format!("{at}.client_chunk_octets"),
                        format!(
                            "must be from 1 to {MESSAGE_MAX_OCTETS} (64 MiB, the largest \
                             message a client here sends), or null to send with DATA"
                        ),
                    );
                }
            }
            if host.connection_cache_s > CONNECTION_CACHE_S_MAX {
                error(
                    format!("{at}.connection_cache_s"),
                    format!(
                        "must be at most {CONNECTION_CACHE_S_MAX}, so that the client quits \
                         before a server's 5-minute idle timeout"
                    ),
                );
            }
        }
        for (index, host) in self.hosts.iter().enumerate() {
            // Domains are matched against recipients' domains as written there, so one that
            // could never match (a final dot, a space) would silently change nothing.
            let domains = (host.local_domains.iter().enumerate())
                .map(|(d, domain)| (format!("hosts[{index}].local_domains[{d}]"), domain))
                .chain(
                    (host.relay_domains.iter().enumerate())
                        .map(|(d, domain)| (format!("hosts[{index}].relay_domains[{d}]"), domain)),
                )
                .chain(host.routes.iter().enumerate().map(|(r, route)| {
                    (format!("hosts[{index}].routes[{r}].domain"), &route.domain)
                }));
            for (at, domain) in domains {
                if let Some(problem) = mail_domain_problem(domain) {
                    error(at, format!("{domain:?} {problem}"));
                }
            }
            let mut routed = BTreeSet::new();
            for (r, route) in host.routes.iter().enumerate() {
                if !routed.insert(domain_key(&route.domain)) {
                    error(
                        format!("hosts[{index}].routes[{r}].domain"),
                        format!(
                            "{} has another route above; only the first would be used",
                            route.domain
                        ),
                    );
                }
                if !names.contains_key(&route.host.to_ascii_lowercase()) {
                    error(
                        format!("hosts[{index}].routes[{r}].host"),
                        format!("no host is named {:?}", route.host),
                    );
                }
            }
        }
        for (index, message) in self.messages.iter().enumerate() {
            let at = format!("messages[{index}]");
            // Addresses and subjects are shown in traces one per line; a control character in
            // them could only be a mistake (or a forged trace line). `raw` may hold anything.
            let fields = std::iter::once(("from", &message.from))
                .chain(message.to.iter().map(|a| ("to", a)))
                .chain(message.cc.iter().map(|a| ("cc", a)))
                .chain(message.bcc.iter().map(|a| ("bcc", a)))
                .chain(std::iter::once(("subject", &message.subject)));
            for (field, value) in fields {
                // A subject may hold right-to-left marks; an address may not.
                if let Some(problem) = unfit_line(value, field != "subject") {
                    error(format!("{at}.{field}"), problem);
                }
            }
            // The user agent cuts a longer subject; a file asking for one is told so.
            if message.raw.is_none()
                && message.subject.chars().count() > crate::mail::compose::SUBJECT_MAX_CHARS
            {
                error(
                    format!("{at}.subject"),
                    format!(
                        "longer than {} characters, the most the user agent writes",
                        crate::mail::compose::SUBJECT_MAX_CHARS
                    ),
                );
            }
            if let Some(auth) = &message.auth {
                for (field, problem) in credential_problems(auth) {
                    error(format!("{at}.auth.{field}"), problem);
                }
            }
            let envid = message.dsn.envid.as_deref();
            if let Some(problem) =
                envid.and_then(crate::smtp::dsn_params::chosen_envelope_id_problem)
            {
                error(format!("{at}.dsn.envid"), problem);
            }
            if !names.contains_key(&message.submit_to.to_ascii_lowercase()) {
                error(
                    format!("{at}.submit_to"),
                    format!("no host is named {:?}", message.submit_to),
                );
            }
            if message.port == 110 {
                error(
                    format!("{at}.port"),
                    "110 is POP3; a user agent submits on 587 or 25".into(),
                );
            }
            if message.port == 0 {
                error(format!("{at}.port"), PORT_ZERO.into());
            }
            let recipients = message.to.len() + message.cc.len() + message.bcc.len();
            if recipients == 0 {
                error(at.clone(), "a message needs at least one recipient".into());
            }
            if recipients > RECIPIENTS_MAX {
                error(at.clone(), format!("more than {RECIPIENTS_MAX} recipients"));
            }
            // A `raw` message is sent as it is, and its attachments are ignored.
            let attachments = match message.raw {
                Some(_) => &[][..],
                None => &message.attachments[..],
            };
            for (a, attachment) in attachments.iter().enumerate() {
                if attachment.size_octets.unwrap_or(0) > ATTACHMENT_MAX_OCTETS {
                    error(
                        format!("{at}.attachments[{a}].size_octets"),
                        format!(
                            "larger than {ATTACHMENT_MAX_OCTETS} octets ({} KiB), the most an \
                             attachment may be",
                            ATTACHMENT_MAX_OCTETS / 1024
                        ),
                    );
                }
                // A message/* or multipart/* attachment goes into the message unencoded (RFC
                // 2045 6.4), so content that cannot go that way (a NUL, a line over 998
                // octets) is refused here rather than left to fail at submission, as is a
                // multipart/* one without a boundary its content uses (RFC 2046 5.1.1), and a
                // message/rfc822 one with 8-bit header fields (RFC 2046 5.2.1). Only
                // such attachments are built, and only while the scenario's total is within
                // bounds.
                let unencoded = compose::attachment_is_unencoded(
                    &attachment.filename,
                    attachment.content_type.as_deref(),
                );
                if !unencoded || attachment_octets > ATTACHMENTS_TOTAL_MAX_OCTETS {
                    continue;
                }
                if let Err(problem) = compose::check_attachment(&attachment.attachment(index)) {
                    // A missing or malformed boundary parameter is the content type's fault,
                    // whatever the content.
                    let about_the_content = !matches!(
                        problem,
                        compose::ComposeError::BadBoundary {
                            problem: compose::BoundaryProblem::Missing
                                | compose::BoundaryProblem::Invalid { .. },
                            ..
                        }
                    );
                    let hint = if attachment.text.is_none() && about_the_content {
                        "; generated content is binary, so give such an attachment its `text`"
                    } else {
                        ""
                    };
                    error(format!("{at}.attachments[{a}]"), format!("{problem}{hint}"));
                }
            }
        }
        for (index, raw) in self.raw_sessions.iter().enumerate() {
            // The client's name is its actor in the trace, on every line it writes.
            if let Some(problem) = unfit_line(&raw.client, true) {
                error(format!("raw_sessions[{index}].client"), problem);
            } else if looks_empty(&raw.client) {
                error(
                    format!("raw_sessions[{index}].client"),
                    "the client needs a name that shows: it names the client on every line of \
                     the trace it writes"
                        .into(),
                );
            }
            if !names.contains_key(&raw.server.to_ascii_lowercase()) {
                error(
                    format!("raw_sessions[{index}].server"),
                    format!("no host is named {:?}", raw.server),
                );
            }
            if let Some(problem) = host_address_problem(raw.address) {
                error(format!("raw_sessions[{index}].address"), problem);
            }
            if raw.port == 0 {
                error(format!("raw_sessions[{index}].port"), PORT_ZERO.into());
            }
        }
        for (index, fetch) in self.fetches.iter().enumerate() {
            let at = format!("fetches[{index}]");
            match self
                .hosts
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(&fetch.host))
            {
                None => error(
                    format!("{at}.host"),
                    format!("no host is named {:?}", fetch.host),
                ),
                Some(host) => {
                    let mailbox = host
                        .mailboxes
                        .iter()
                        .find(|m| mailbox_key(&m.address) == mailbox_key(&fetch.mailbox));
                    match mailbox {
                        None => error(
                            format!("{at}.mailbox"),
                            format!("{} has no mailbox {:?}", host.name, fetch.mailbox),
                        ),
                        Some(m) if m.password.is_none() && fetch.password.is_none() => error(
                            format!("{at}.mailbox"),
                            "the mailbox has no password to log in with".into(),
                        ),
                        Some(_) if fetch.password.as_deref() == Some("") => error(
                            format!("{at}.password"),
                            "empty; PASS needs a password (RFC 1939 7)".into(),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(errors))
        }
    }
}

/// The end of the error for an array where the format has an object.
const NOT_AN_ARRAY: &str =
    "not an array: the fields of an object are not read from a list of values";

/// The error for an array at `at`, where the format has an object.
fn array_for_object(at: String) -> ScenarioError {
    ScenarioError {
        at,
        problem: format!("must be an object ({{\"field\": value, ...}}), {NOT_AN_ARRAY}"),
    }
}

/// serde reads an object's fields from an array too, in the order the program declares them
/// (`"retry": [60, 300]`). The format has no such form, and a reader of the file could not
/// tell which value is which: every place where the scenario read an array as an object is
/// refused. Found by laying the text, as JSON, over the scenario written back as JSON: an
/// array in the one where the other has an object.
#[cfg(not(target_arch = "wasm32"))]
fn refuse_arrays_read_as_objects(text: &str, scenario: &Scenario) -> Result<(), ScenarioErrors> {
    use serde_json::Value;
    fn walk(written: &Value, read: &Value, at: &str, errors: &mut Vec<ScenarioError>) {
        match (written, read) {
            (Value::Array(_), Value::Object(_)) => errors.push(array_for_object(at.to_string())),
            (Value::Object(written), Value::Object(read)) => {
                for (key, value) in written {
                    if let Some(read_value) = read.get(key) {
                        let at = if at.is_empty() {
                            key.clone()
                        } else {
                            format!("{at}.{key}")
                        };
                        walk(value, read_value, &at, errors);
                    }
                }
            }
            (Value::Array(written), Value::Array(read)) => {
                for (index, (value, read_value)) in written.iter().zip(read).enumerate() {
                    walk(value, read_value, &format!("{at}[{index}]"), errors);
                }
            }
            _ => {}
        }
    }
    // Both cannot fail: the text was just read as a scenario, and a scenario is plain data.
    let (Ok(written), Ok(read)) = (
        serde_json::from_str::<Value>(text),
        serde_json::to_value(scenario),
    ) else {
        return Ok(());
    };
    let mut errors = Vec::new();
    walk(&written, &read, "", &mut errors);
    for error in &mut errors {
        if let Some(offset) = value_offset(text, &error.at) {
            error.at = format!("{} ({})", error.at, line_and_column(text, offset));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ScenarioErrors(errors))
    }
}

/// Where the array at `path` starts, that serde read as an object until `error`: its opening
/// bracket, where the mistake is, rather than the element it failed at.
fn array_position(text: &str, path: &str, error: &serde_json::Error) -> String {
    match value_offset(text, path) {
        Some(offset) => line_and_column(text, offset),
        None => format!("line {}, column {}", error.line(), error.column().max(1)),
    }
}

/// Where `offset` is in `text`, as serde_json counts in its errors: lines from 1, octets of
/// the line from 1.
fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
    format!("line {line}, column {column}")
}

/// serde_json's limit on nesting (its default recursion limit).
const JSON_NESTING_MAX: usize = 128;

/// Where the value at `path` (as `hosts[1].faults`) starts in a JSON text already read, so
/// that an error found after reading points into the file as one found while reading does.
/// None if the text has no value there (or is not JSON up to it: read while reading, it may
/// be broken further on).
fn value_offset(text: &str, path: &str) -> Option<usize> {
    /// Err(Some(offset)): found; Err(None): not JSON after all, or nested deeper than
    /// serde_json reads (past the place reading stopped, a file may nest without end, and
    /// this search must not run out of stack); Ok: passed over.
    fn value(
        text: &str,
        at: &mut usize,
        here: &str,
        path: &str,
        depth: usize,
    ) -> Result<(), Option<usize>> {
        if depth > JSON_NESTING_MAX {
            return Err(None);
        }
        let bytes = text.as_bytes();
        let skip_blanks = |at: &mut usize| {
            while bytes.get(*at).is_some_and(u8::is_ascii_whitespace) {
                *at += 1;
            }
        };
        skip_blanks(at);
        if here == path {
            return Err(Some(*at));
        }
        match bytes.get(*at) {
            Some(b'{') => {
                *at += 1;
                loop {
                    skip_blanks(at);
                    match bytes.get(*at) {
                        Some(b'}') => {
                            *at += 1;
                            return Ok(());
                        }
                        Some(b',') => *at += 1,
                        Some(b'"') => {
                            let start = *at;
                            string(bytes, at)?;
                            let key: String =
                                serde_json::from_str(&text[start..*at]).map_err(|_| None)?;
                            skip_blanks(at);
                            if bytes.get(*at) != Some(&b':') {
                                return Err(None);
                            }
                            *at += 1;
                            let inner = if here.is_empty() {
                                key
                            } else {
                                format!("{here}.{key}")
                            };
                            value(text, at, &inner, path, depth + 1)?;
                        }
                        _ => return Err(None),
                    }
                }
            }
            Some(b'[') => {
                *at += 1;
                let mut index = 0;
                loop {
                    skip_blanks(at);
                    match bytes.get(*at) {
                        Some(b']') => {
                            *at += 1;
                            return Ok(());
                        }
                        Some(b',') => {
                            *at += 1;
                            index += 1;
                        }
                        Some(_) => value(text, at, &format!("{here}[{index}]"), path, depth + 1)?,
                        None => return Err(None),
                    }
                }
            }
            Some(b'"') => string(bytes, at),
            Some(_) => {
                // A number, true, false or null: up to what ends a value.
                while bytes
                    .get(*at)
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
                {
                    *at += 1;
                }
                Ok(())
            }
            None => Err(None),
        }
    }
    /// Past a string, its quotes included.
    fn string(bytes: &[u8], at: &mut usize) -> Result<(), Option<usize>> {
        *at += 1;
        loop {
            match bytes.get(*at) {
                Some(b'"') => {
                    *at += 1;
                    return Ok(());
                }
                Some(b'\\') => *at += 2,
                Some(_) => *at += 1,
                None => return Err(None),
            }
        }
    }
    let mut at = 0;
    match value(text, &mut at, "", path, 0) {
        Err(found) => found,
        Ok(()) => None,
    }
}

/// The format's fields whose value is an array; every other field's value, and every array's
/// element, is an object or a plain value, never an array (the format has no list of lists).
const ARRAY_FIELDS: &[&str] = &[
    "hosts",
    "messages",
    "fetches",
    "raw_sessions",
    "zones",
    "records",
    "faults",
    "local_domains",
    "mailboxes",
    "relay_domains",
    "routes",
    "submission_users",
    "to",
    "cc",
    "bcc",
    "attachments",
];

/// Where a failed read went into an array in the place of an object, if it did: serde reads
/// an object's fields from an array in declaration order, so an element of the wrong type
/// there (`"fetches": [[{...}]]`) fails inside the array, at a path the format does not have.
/// An index is in the format only right after an array field's name.
fn array_read_as_object(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut at = String::new();
    let mut previous: Option<&Segment> = None;
    for segment in path.iter() {
        // The path as serde_path_to_error writes it: names after dots, indexes in brackets.
        let name = match segment {
            Segment::Seq { index } => {
                let after_array_field = matches!(
                    previous,
                    Some(Segment::Map { key }) if ARRAY_FIELDS.contains(&key.as_str())
                );
                if !after_array_field {
                    return Some(if at.is_empty() { ".".into() } else { at });
                }
                at.push_str(&format!("[{index}]"));
                None
            }
            Segment::Map { key } | Segment::Enum { variant: key } => Some(key.as_str()),
            Segment::Unknown => Some("?"),
        };
        if let Some(name) = name {
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(name);
        }
        previous = Some(segment);
    }
    None
}

/// A JSON error as a scenario error: at the path of the field being read (`.` for the whole
/// file, `?` where the text stopped being JSON) and its line and column.
fn read_error(text: &str, path: &str, error: &serde_json::Error) -> ScenarioErrors {
    // Inside an object, at a key not read yet: the object is where.
    let path = path.strip_suffix(".?").unwrap_or(path);
    // serde_json counts columns from 1, but says 0 for the end of a file after a line break.
    let position = format!("line {}, column {}", error.line(), error.column().max(1));
    // serde_json ends its message with the position, which `at` already says.
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    // (A record's data, below, is an object of one field, where this says too little.)
    let not_a_word = (message == "expected value" && !path.ends_with(".data"))
        .then(|| value_not_a_word(text, path))
        .flatten();
    let message = not_a_word.as_deref().unwrap_or(message);
    let message = &plain_number_names(&plain_type_names(message), path);
    // serde tries an array where an object belongs as the fields in order; one of the wrong
    // length ends that way (see `refuse_arrays_read_as_objects` for one of the right length).
    // The format has no array of a fixed length, so nothing else says "invalid length".
    if path != "." && (message == "trailing characters" || message.starts_with("invalid length ")) {
        let position = array_position(text, path, error);
        return ScenarioErrors(vec![array_for_object(format!("{path} ({position})"))]);
    }
    // serde_json says only "expected value" for a record's data of `{}`, `null` or two record
    // types at once; the note below says what is expected.
    // (Not for a value missing from the JSON text itself, `"data": ,`.)
    let message = if path.ends_with(".data")
        && message == "expected value"
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    {
        "this is not the data of one record"
    } else {
        message
    };
    // std's address parser says only "invalid IPv4 address syntax": which value, and what
    // one looks like.
    let address_kind = match message {
        "invalid IPv4 address syntax" => Some(("an IPv4", "like 192.0.2.1")),
        "invalid IPv6 address syntax" => Some(("an IPv6", "like 2001:db8::1")),
        "invalid IP address syntax" => {
            Some(("an IP", "IPv4 like 192.0.2.1, or IPv6 like 2001:db8::1"))
        }
        _ => None,
    };
    let not_an_address = address_kind.map(|(kind, example)| {
        let value = value_offset(text, path)
            .and_then(|offset| text.get(offset..))
            .and_then(|rest| {
                let mut reader = serde_json::Deserializer::from_str(rest);
                serde::Deserialize::deserialize(&mut reader).ok()
            })
            .map_or_else(|| "this".to_string(), |value: String| format!("{value:?}"));
        format!("{value} is not {kind} address ({example})")
    });
    let message = not_an_address.as_deref().unwrap_or(message);
    // serde_json reads an integer too large for 64 bits as a float, and then calls it one.
    let note = if error.is_eof() {
        " (the file ends before the scenario does: it may have been cut short)"
    } else if message == "unexpected end of hex escape"
        || message == "lone leading surrogate in hex escape"
    {
        // serde_json's words for half of a UTF-16 pair written alone (RFC 8259 7).
        " (\\uD800 to \\uDFFF are halves of a pair: a character beyond U+FFFF is written as \
         \\uD800-\\uDBFF followed at once by \\uDC00-\\uDFFF, and a half alone is no character)"
    } else if message == "trailing comma" {
        // serde_json points at the bracket after the comma, which may be lines further on.
        " (remove the last comma before this position: JSON has none before a closing ] or })"
    } else if message.starts_with("invalid type: floating point") && not_a_word.is_none() {
        " (JSON numbers written with a fraction or an exponent, -0, and whole numbers too large \
         for 64 bits, are read as fractions)"
    } else if path.ends_with(".data") && !message.starts_with("unknown variant") {
        " (a record's data is an object with exactly one of MX, A, AAAA, CNAME, NS or SOA, \
         e.g. {\"A\": \"192.0.2.1\"})"
    } else {
        ""
    };
    ScenarioErrors(vec![ScenarioError {
        at: if path == "." || path == "?" {
            position
        } else {
            format!("{path} ({position})")
        },
        problem: format!("{message}{note}"),
    }])
}

/// serde_json says only "expected value", its words for a file that is not JSON, when a
/// field that takes one of a few words (`"reject"`, `"refuse"`, ...) holds a number, `true`,
/// `null`, an array or an object. What the author needs is what was found there and which
/// words the field takes: serde's own list of them, got by reading the file again with an
/// empty string in the value's place. None where that is not what happened.
fn value_not_a_word(text: &str, path: &str) -> Option<String> {
    use serde_json::Value;
    let start = value_offset(text, path)?;
    let rest = text.get(start..)?;
    // An array or an object is named by its first character, not read into a tree.
    let found = match rest.as_bytes().first()? {
        b'[' => "sequence".to_string(),
        b'{' => "map".to_string(),
        _ => match serde_json::Deserializer::from_str(rest)
            .into_iter::<Value>()
            .next()?
            .ok()?
        {
            Value::Null => "null".to_string(),
            Value::Bool(value) => format!("boolean `{value}`"),
            Value::Number(number) if number.is_f64() => format!("floating point `{number}`"),
            Value::Number(number) => format!("integer `{number}`"),
            Value::String(_) | Value::Array(_) | Value::Object(_) => return None,
        },
    };
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let end = start + values.byte_offset();
    let again = format!("{}\"\"{}", &text[..start], &text[end..]);
    let mut json = serde_json::Deserializer::from_str(&again);
    let error = serde_path_to_error::deserialize::<_, Scenario>(&mut json).err()?;
    if error.path().to_string() != path {
        return None;
    }
    let message = error.into_inner().to_string();
    if !message.starts_with("unknown variant ``") {
        return None;
    }
    let words = &message[serde_expectation(&message)?..];
    let words = words.rfind(" at line ").map_or(words, |at| &words[..at]);
    Some(format!("invalid type: {found}, expected {words}"))
}

/// serde names the program's integer types ("expected u16"); a scenario's author knows the
/// range of whole numbers the field at `path` takes.
fn plain_number_names(message: &str, path: &str) -> String {
    let Some(start) = serde_expectation(message) else {
        return message.to_string();
    };
    // Ports and MX preferences take the whole range of their type, 0 to 65535, and so do an
    // SOA's 32-bit serial and intervals (RFC 1035 3.3.13); TTLs take 0 to 2^31 - 1 (RFC 2181
    // 8). The
    // wider fields have limits of their own (times, sizes: checked once the file is read),
    // which the type's largest value would only contradict.
    let plain = match &message[start..] {
        "u16" => "a whole number from 0 to 65535",
        "u32" if path.ends_with(".ttl_s") => "a whole number from 0 to 2147483647",
        "u32" if path.contains(".SOA.") => "a whole number from 0 to 4294967295",
        // Any seed runs: the whole range of its type.
        "u64" if path == "seed" => "a whole number from 0 to 18446744073709551615",
        "u32" | "u64" | "usize" => "a whole number, not negative",
        // The one signed field: the range serde would name is wider than the one checked.
        "i64" if path == "start_unix_s" => {
            return format!(
                "{}a whole number from 0 to {START_UNIX_S_MAX}",
                &message[..start]
            )
        }
        "i64" => "a whole number",
        _ => return message.to_string(),
    };
    format!("{}{plain}", &message[..start])
}

/// Where serde's own "expected ..." ends its message: after the last ", expected ", since
/// the author's text (a string value, a field's name) comes before it.
fn serde_expectation(message: &str) -> Option<usize> {
    const SAID: &str = ", expected ";
    message.rfind(SAID).map(|at| at + SAID.len())
}

/// serde names the program's own types ("expected struct HostSpec", "struct variant
/// RecordData::Mx", "struct Scenario with 13 elements", "a sequence", "a map"); a scenario's
/// author knows only JSON, where each of these is an object or an array.
fn plain_type_names(message: &str) -> String {
    // Only where serde says what it expected: elsewhere "struct " may be the author's text
    // (an unknown field's name, say).
    let Some(expected) = serde_expectation(message) else {
        return message.to_string();
    };
    let expected = expected - "expected ".len();
    let mut out = String::with_capacity(message.len());
    // What serde found, when it names a JSON value by its own words, comes first.
    let found = &message[..expected];
    let found = [
        ("invalid type: sequence,", "invalid type: array,"),
        ("invalid type: map,", "invalid type: object,"),
    ]
    .into_iter()
    .find_map(|(serde, json)| found.strip_prefix(serde).map(|rest| (json, rest)));
    match found {
        Some((json, rest)) => {
            out.push_str(json);
            out.push_str(rest);
        }
        None => out.push_str(&message[..expected]),
    }
    let mut rest = &message[expected..];
    while let Some(start) = rest.find("expected struct ") {
        out.push_str(&rest[..start + "expected ".len()]);
        let after = &rest[start + "expected struct ".len()..];
        let after = after.strip_prefix("variant ").unwrap_or(after);
        let name_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let mut tail = &after[name_end..];
        // "with 13 elements" counts the fields, which a JSON object does not list in order.
        if let Some(counted) = tail.strip_prefix(" with ") {
            if let Some(end) = counted.find(" elements") {
                if counted[..end].bytes().all(|b| b.is_ascii_digit()) {
                    tail = &counted[end + " elements".len()..];
                }
            }
        }
        out.push_str("an object");
        rest = tail;
    }
    // And JSON's words for serde's sequence and map (RFC 8259 5, 4).
    out.push_str(
        &rest
            .replace("expected a sequence", "expected an array")
            .replace("expected a map", "expected an object"),
    );
    out
}

/// Why `domain` is not one as the part of an address after the @, if it is not: what
/// follows the domain in the sentence that says so. Such a domain is a host name, an address
/// literal in brackets (RFC 5321 4.1.3), or with SMTPUTF8 an internationalised one (RFC 6531
/// 3.3).
pub(crate) fn mail_domain_problem(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        // RFC 5321 4.1.3's grammar, as the server parses an address's domain.
        return match crate::smtp::address::Domain::parse(domain) {
            Ok(crate::smtp::address::Domain::Literal(_)) => None,
            Ok(_) => Some("is not an address literal (RFC 5321 4.1.3)".into()),
            Err(problem) => Some(format!(
                "is not an address literal: {problem} (RFC 5321 4.1.3)"
            )),
        };
    }
    let problem = if domain.is_ascii() {
        host_name_problem(domain)?
    } else {
        // An internationalised domain is its A-labels (RFC 5890 2.3.2.1), which follow the
        // rules of a host name, so `ü_x.test` is no more a domain than `u_x.test`. IDNA also
        // checks each U-label (no hyphen at either end, nor in the third and fourth places,
        // RFC 5891 4.2.3.1).
        match strict_a_labels(domain) {
            Some(a_labels) => host_name_problem(&a_labels)
                .map(|problem| format!("in A-labels, {a_labels:?}, {problem}"))?,
            None => idna_problem(domain),
        }
    };
    Some(format!("is not a domain as addresses write it: {problem}"))
}

/// Why IDNA (UTS 46 with the rules of host names, RFC 5891) gives `domain`, an
/// internationalised domain, no A-labels: the first label it refuses alone, and why, or what
/// is wrong with the labels together.
fn idna_problem(domain: &str) -> String {
    // UTS 46 reads these full stops as dots too (RFC 3490 3.1).
    for label in domain.split(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}']) {
        if label.is_empty() || label.is_ascii() {
            if let Some(problem) = host_label_problem(label) {
                return problem;
            }
            continue;
        }
        match strict_a_labels_of_any_length(label) {
            Some(a_label) if a_label.len() > 63 => {
                return format!(
                    "label {label:?} is {} octets long as an A-label ({a_label:?}); a label is \
                     at most 63 (RFC 1035 2.3.4)",
                    a_label.len()
                )
            }
            Some(_) => {}
            None => {
                return format!(
                    "label {label:?} has no A-label: IDNA refuses it (a character a host name \
                     may not hold, '-' at either end or in its third and fourth places, or a \
                     joiner or combining mark out of place, RFC 5891 4.2.3)"
                )
            }
        }
    }
    match strict_a_labels_of_any_length(domain) {
        Some(a_labels) if a_labels.len() > 253 => format!(
            "in A-labels it is {} characters long; a host name is at most 253 (255 octets in \
             wire form, RFC 1035 2.3.4)",
            a_labels.len()
        ),
        _ => "IDNA refuses its labels together: a label in a right-to-left script beside one \
              the Bidi rule does not allow there (RFC 5893 2)"
            .into(),
    }
}

/// Why `name` is not a host name, if it is not: a host name is letters, digits, hyphens and
/// dots, labels of 1 to 63 octets, the last not all digits (RFC 1123 2.1).
fn host_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a host name cannot be empty".into());
    }
    if name.len() > 253 {
        return Some(format!(
            "it is {} characters long; a host name is at most 253 (255 octets in wire \
             form, RFC 1035 2.3.4)",
            name.len()
        ));
    }
    if let Some(problem) = name.split('.').find_map(host_label_problem) {
        return Some(problem);
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    last.bytes().all(|b| b.is_ascii_digit()).then(|| {
        format!(
            "its last label {last:?} is all digits; a host name never has the dotted-decimal \
             form #.#.#.#, its top-level label has a letter (RFC 1123 2.1)"
        )
    })
}

/// Why `label` is not a label of a host name, if it is not.
fn host_label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("it has an empty label (two dots in a row, or a dot at an end)".into());
    }
    if label.len() > 63 {
        return Some(format!(
            "label {label:?} is {} octets long; a label is at most 63 (RFC 1035 2.3.4)",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && c != '-')
    {
        let hint = if c.is_ascii() {
            ""
        } else {
            "; an internationalised name is written in its A-label form (xn--...)"
        };
        return Some(format!(
            "label {label:?} contains {c:?}; a host name has only letters, digits and '-' \
             (RFC 1123 2.1){hint}"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(format!(
            "label {label:?} starts or ends with '-' (RFC 1123 2.1)"
        ));
    }
    let a_label = label
        .get(..4)
        .is_some_and(|start| start.eq_ignore_ascii_case("xn--"));
    (a_label && strict_a_labels(label).is_none()).then(|| {
        format!(
            "label {label:?} starts with \"xn--\" but is no A-label: it does not decode to a \
             valid U-label (RFC 5890 2.3.2.1)"
        )
    })
}

/// Why no host can have `address`: the unspecified address means "no address yet" (RFC 1122
/// 3.2.1.3, RFC 4291 2.5.2), a multicast one names a group (RFC 1112 4, RFC 4291 2.7) and the
/// limited broadcast address every host on the link (RFC 919 7); TCP connects to none of them.
fn host_address_problem(address: IpAddr) -> Option<String> {
    // An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 2.5.5.2).
    let canonical = address.to_canonical();
    let what = if canonical.is_unspecified() {
        "the unspecified address"
    } else if canonical.is_multicast() {
        "a multicast address"
    } else if canonical == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        "the broadcast address"
    } else {
        return None;
    };
    Some(format!(
        "{address} is {what}, which no single host can have; TCP cannot connect to it"
    ))
}

/// Whether `name` shows nothing: empty, or only white space and [`shows_nothing`] characters.
fn looks_empty(name: &str) -> bool {
    name.chars().all(|c| c.is_whitespace() || shows_nothing(c))
}

/// A character that is drawn as nothing: one of Unicode's Default_Ignorable_Code_Point
/// characters (DerivedCoreProperties.txt), such as a zero-width space or joiner, a byte-order
/// mark, a soft hyphen, a Hangul filler, a variation selector or a tag character. A name of
/// these alone looks empty.
fn shows_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// A character that breaks or hides a line of the text trace: a control character, or
/// Unicode's line and paragraph separators (U+2028, U+2029), which many viewers show as line
/// breaks.
pub(crate) fn breaks_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// [`breaks_a_line`], or a bidirectional formatting character (U+061C, U+200E, U+200F,
/// U+202A to U+202E, U+2066 to U+2069), which can make a name or an address read as
/// another; fine in text, not in names that identify something.
fn unfit_for_a_name(c: char) -> bool {
    breaks_a_line(c) || crate::escape::is_bidi_control(c)
}

/// Why `value` cannot be one line of the trace: a character that [`breaks_a_line`], or, in a
/// name (`is_name`: a scenario name, an address, a client), one [`unfit_for_a_name`].
fn unfit_line(value: &str, is_name: bool) -> Option<String> {
    let unfit = if is_name {
        unfit_for_a_name
    } else {
        breaks_a_line
    };
    let first = value.chars().find(|&c| unfit(c))?;
    let which = if breaks_a_line(first) {
        "a control or line-separator character; it is one line"
    } else {
        "a bidirectional formatting character, which would show it in another order than it \
         is written"
    };
    // Shown with each such character as its code point, which prints as itself: the
    // character would break the line or reorder it.
    let mut shown = String::from("\"");
    for c in value.chars() {
        if unfit(c) {
            let _ = write!(shown, "U+{:04X}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    shown.push('"');
    Some(format!("{shown} holds U+{:04X}, {which}", u32::from(first)))
}

/// What makes a user name and password unusable for the user agents' AUTH PLAIN: RFC 4616 2
/// separates the fields with NUL and has neither empty, and the client sends 1 to 255 octets of
/// each (what a server must accept). A submission user the user agents could never
/// log in as, or a message's `auth` they could never send, is a mistake in the scenario.
fn credential_problems(credentials: &UserSpec) -> Vec<(&'static str, String)> {
    let max = SASL_PLAIN_FIELD_MAX_OCTETS;
    let mut problems = Vec::new();
    let user = &credentials.user;
    let password = &credentials.password;
    if user.is_empty() || user.len() > max {
        problems.push((
            "user",
            format!(
                "{} octets; the user agents send a user name of 1 to {max} octets in AUTH \
                 PLAIN, what every server must accept (RFC 4616 2)",
                user.len()
            ),
        ));
    }
    if password.is_empty() || password.len() > max {
        problems.push((
            "password",
            format!(
                "{} octets; the user agents send a password of 1 to {max} octets in AUTH \
                 PLAIN, what every server must accept (RFC 4616 2)",
                password.len()
            ),
        ));
    }
    for (field, value) in [("user", user), ("password", password)] {
        if value.contains('\0') {
            problems.push((
                field,
                "holds a NUL, which separates the fields of AUTH PLAIN (RFC 4616 2)".into(),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A file saved as "Unicode" is named by its encoding, with or without a byte order
    /// mark, in either byte order; UTF-8 with or without its mark is read.
    #[test]
    fn a_scenario_file_in_a_wide_encoding_is_named_by_it() {
        let json = "{\"name\": \"x\"}";
        let utf16 = |little: bool, mark: bool| -> Vec<u8> {
            let units = mark
                .then_some(0xFEFF)
                .into_iter()
                .chain(json.encode_utf16());
            units
                .flat_map(|u| {
                    if little {
                        u.to_le_bytes()
                    } else {
                        u.to_be_bytes()
                    }
                })
                .collect()
        };
        let utf32 = |little: bool, mark: bool| -> Vec<u8> {
            let chars = mark
                .then_some(0xFEFF)
                .into_iter()
                .chain(json.chars().map(u32::from));
            chars
                .flat_map(|c| {
                    if little {
                        c.to_le_bytes()
                    } else {
                        c.to_be_bytes()
                    }
                })
                .collect()
        };
        for little in [true, false] {
            for mark in [true, false] {
                let case = format!("little-endian {little}, byte order mark {mark}");
                let error = file_text(utf16(little, mark)).unwrap_err();
                assert!(error.starts_with("is UTF-16 text"), "{case}: {error}");
                let error = file_text(utf32(little, mark)).unwrap_err();
                assert!(error.starts_with("is UTF-32 text, but"), "{case}: {error}");
            }
        }
        assert_eq!(file_text(json.as_bytes().to_vec()).as_deref(), Ok(json));
        let marked = format!("\u{feff}{json}");
        assert_eq!(file_text(marked.clone().into_bytes()), Ok(marked));
        assert_eq!(file_text(Vec::new()).as_deref(), Ok(""));
        // A NUL beside bytes JSON text does not begin with is binary, not wide text: it is
        // read, and refused as JSON.
        for binary in [&b"\0\x01\x02garbage"[..], b"\x7fELF\0\0\0", b"\0\0\0\x01"] {
            let read = file_text(binary.to_vec());
            assert!(read.is_ok(), "{binary:?}: {read:?}");
            let errors = Scenario::from_json(&read.unwrap()).unwrap_err().to_string();
            assert!(!errors.contains("UTF-"), "{binary:?}: {errors}");
        }
    }

    #[test]
    fn the_position_finder_stops_at_nesting_serde_json_would_not_read() {
        let deep = format!("{{\"a\": 1, \"b\": {}", "[".repeat(200_000));
        assert_eq!(value_offset(&deep, "c"), None);
        assert_eq!(value_offset(&deep, "a"), Some(6));
    }

    /// A file cut short after a line break is placed at column 1 of the line after it, not
    /// at serde_json's column 0.
    #[test]
    fn a_file_cut_short_after_a_line_break_is_placed_at_column_1() {
        for (text, at) in [
            ("{\"name\": \"x\",\n", "line 2, column 1"),
            (
                "{\"name\": \"x\",\n\"hosts\": [\n",
                "hosts (line 3, column 1)",
            ),
        ] {
            let errors = Scenario::from_json(text).unwrap_err();
            assert_eq!(errors.0[0].at, at, "{text:?}: {errors}");
            assert!(errors.0[0].problem.contains("cut short"), "{errors}");
        }
    }

    /// A record's data missing from the JSON text is a syntax error, told as serde_json
    /// tells it, not as data of no single record type.
    #[test]
    fn a_record_whose_data_is_missing_from_the_text_is_a_json_error() {
        let (_, text) = crate::sim::library::file("basic-delivery").expect("a built-in");
        let start = text.find("\"data\": {").expect("a record's data");
        let end = start + text[start..].find('}').expect("its end") + 1;
        let broken = format!("{}\"data\": ,{}", &text[..start], &text[end..]);
        let errors = Scenario::from_json(&broken).unwrap_err().to_string();
        assert!(errors.contains("expected value"), "{errors}");
        assert!(!errors.contains("not the data of one record"), "{errors}");
    }

    #[test]
    fn a_host_name_that_is_none_says_why() {
        for (name, why) in [
            ("mx_b.test", "label \"mx_b\" contains '_'"),
            ("a..b.test", "an empty label"),
            ("-a.test", "label \"-a\" starts or ends with '-'"),
            ("mx.bü.test", "A-label form"),
            ("", "cannot be empty"),
            ("192.0.2.20", "dotted-decimal"),
            ("mx.b.123", "last label \"123\" is all digits"),
            ("mx.xn--abc.test", "is no A-label"),
        ] {
            let problem = host_name_problem(name).expect("not a host name");
            assert!(problem.contains(why), "{name:?}: {problem}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        assert!(host_name_problem(&long_label).is_some_and(|p| p.contains("64 octets")));
        for name in [
            "mx.b.test",
            "a-b.test",
            "x1",
            "1.b.test",
            "123.b2",
            "mx.xn--b-eha.test",
        ] {
            assert_eq!(host_name_problem(name), None, "{name:?}");
        }
    }

    /// A domain of `local_domains` (and of the other lists of domains) follows the rules of a
    /// host name, written with U-labels as with A-labels.
    #[test]
    fn an_internationalised_mail_domain_follows_the_host_name_rules_of_its_a_labels() {
        for domain in [
            "bü.test",
            "例え.テスト",
            "xn--b-eha.test",
            "[192.0.2.20]",
            "[IPv6:2001:db8::20]",
        ] {
            assert_eq!(mail_domain_problem(domain), None, "{domain:?}");
        }
        // Address literals by RFC 5321 4.1.3's grammar, as in an address, and with a tag
        // registered with IANA (only IPv6 is).
        for domain in [
            "[x-tag:content]",
            "[2001:db8::20]",
            "[IPv4:192.0.2.20]",
            "[foo]",
            "[999.0.2.20]",
            "[IPv6:zz]",
            "[1.2.3.4.5]",
            "[]",
            "[192.0.2.20",
            "[192.0.2.20]x",
        ] {
            assert!(mail_domain_problem(domain).is_some(), "{domain:?}");
        }
        // Each refused with what is wrong in it.
        let long_label = format!("ü{}.test", "a".repeat(62));
        let long_name = format!("ü.{}", vec!["a".repeat(60); 5].join("."));
        for (domain, why) in [
            ("ü_x.test", "label \"ü_x\" has no A-label"),
            ("u_x.test", "label \"u_x\" contains '_'"),
            ("bü..test", "an empty label"),
            ("-bü.test", "label \"-bü\" has no A-label"),
            ("bü.test.", "an empty label"),
            ("x\u{3002}-bü.test", "label \"-bü\" has no A-label"),
            ("bü.u_x.test", "label \"u_x\" contains '_'"),
            (
                "bü.xn--zz.test",
                "label \"xn--zz\" starts with \"xn--\" but is no A-label",
            ),
            ("1a.\u{5d0}.test", "the Bidi rule"),
            ("a\u{200d}ü.test", "joiner or combining mark out of place"),
            ("ab--ü.test", "label \"ab--ü\" has no A-label"),
            (
                "b.xn--zz.test",
                "label \"xn--zz\" starts with \"xn--\" but is no A-label",
            ),
            (
                "bü.123",
                "in A-labels, \"xn--b-eha.123\", its last label \"123\" is all",
            ),
            ("[IPv6:zz]", "is not an address literal: "),
            (&long_label, "octets long as an A-label (\"xn--"),
            (
                &long_name,
                "in A-labels it is 312 characters long; a host name is at most 253",
            ),
        ] {
            let problem = mail_domain_problem(domain).unwrap_or_else(|| panic!("{domain:?}"));
            assert!(problem.contains(why), "{domain:?}: {problem}");
        }
    }

    /// A huge value or key quoted back is shortened in the message, start and end kept; the
    /// rest of the message is whole.
    #[test]
    fn a_long_value_quoted_in_an_error_is_shortened() {
        let long = "x".repeat(200_000);
        let error = Scenario::from_json(&format!("{{\"name\": \"n\", \"{long}\": 1}}"))
            .unwrap_err()
            .to_string();
        assert!(error.len() < 1000, "{} octets", error.len());
        assert!(
            error.contains(&format!(
                "unknown field `{}…(199950 characters left out)…{}`, expected one of `name`",
                "x".repeat(39),
                "x".repeat(11)
            )),
            "{error}"
        );
        let spaced = "a b ".repeat(1000);
        let error = Scenario::from_json(&format!("{{\"dns\": \"{spaced}\"}}"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("characters left out"), "{error}");
        assert!(error.ends_with("expected an object"), "{error}");
        // Short ones are left as they are.
        let error = Scenario::from_json("{\"colour\": 1}")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown field `colour`, expected one of"),
            "{error}"
        );
        // The callers say that the file is not a valid scenario; the problem does not again.
        assert!(
            error.starts_with("colour (line 1, column 9): unknown field"),
            "{error}"
        );
    }

    /// The first octet that is not UTF-8 is placed as serde_json places its errors: line, and
    /// column in octets; and by its offset in the file.
    #[test]
    fn a_file_that_is_not_utf8_is_refused_where_its_first_bad_octet_is() {
        let error = file_text(b"{\"name\": \"\xc3\xa9\xff\"}".to_vec()).unwrap_err();
        assert!(
            error.ends_with("octet 0xff at line 1, column 13 (octet 13 of the file) is not part of a UTF-8 character"),
            "{error}"
        );
        let error = file_text(b"{\n\"name\": \"\xff\"}".to_vec()).unwrap_err();
        assert!(
            error.contains("at line 2, column 10 (octet 12 of the file)"),
            "{error}"
        );
        // After a byte order mark, the column is counted as the JSON reader counts it, from
        // after the mark; the octet is the file's.
        let error = file_text(b"\xef\xbb\xbf{\"name\": \"\xff\"}".to_vec()).unwrap_err();
        assert!(
            error.contains("at line 1, column 11 (octet 14 of the file)"),
            "{error}"
        );
    }

    /// An empty file, or one of white space only, is called empty, not placed at a column 0.
    #[test]
    fn an_empty_scenario_file_is_called_empty() {
        for text in ["", "  ", "\n\n", "\u{feff}", "\u{feff}\r\n"] {
            let errors = Scenario::from_json(text).unwrap_err();
            assert_eq!(errors.0.len(), 1, "{text:?}");
            assert_eq!(errors.0[0].at, "", "{text:?}");
            assert!(
                errors.0[0].problem.starts_with("the file is empty"),
                "{text:?}: {errors}"
            );
        }
    }

    /// `ARRAY_FIELDS` names exactly the fields that the built-in scenarios, written back as
    /// JSON, hold arrays in: a field added to the format as an array is not taken for an array
    /// where an object belongs.
    #[test]
    fn the_array_fields_are_the_formats_arrays() {
        fn collect(value: &serde_json::Value, arrays: &mut BTreeSet<String>) {
            match value {
                serde_json::Value::Object(fields) => {
                    for (key, field) in fields {
                        if field.is_array() {
                            arrays.insert(key.clone());
                        }
                        collect(field, arrays);
                    }
                }
                serde_json::Value::Array(elements) => {
                    for element in elements {
                        assert!(!element.is_array(), "a list of lists: {value}");
                        collect(element, arrays);
                    }
                }
                _ => {}
            }
        }
        let mut arrays = BTreeSet::new();
        for scenario in crate::sim::library::builtin() {
            let scenario = scenario.expect("a built-in scenario validates");
            collect(
                &serde_json::to_value(&scenario).expect("a scenario serialises"),
                &mut arrays,
            );
        }
        let listed: BTreeSet<String> = ARRAY_FIELDS.iter().map(|f| f.to_string()).collect();
        assert_eq!(arrays, listed);
    }
}
