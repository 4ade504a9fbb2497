//! The trace: every event of a simulation run, in order, with its simulated time and actors.
//! The UI and the command line only read it; nothing here runs the world.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::rc::Rc;

/// A name that recurs in many events (a host, a state): shared or static, not copied.
pub type Name = Rc<str>;
/// A session state's name: always one of the engines' static names when recorded.
pub type StateName = Cow<'static, str>;

pub type ConnId = u32;
pub type EntryId = u32;

/// Bytes as they crossed a link: text when they are UTF-8 (nearly always), else the octets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireBytes {
    Text(String),
    Octets(Vec<u8>),
}

impl WireBytes {
    pub fn from_bytes(bytes: &[u8]) -> WireBytes {
        match std::str::from_utf8(bytes) {
            Ok(text) => WireBytes::Text(text.to_string()),
            Err(_) => WireBytes::Octets(bytes.to_vec()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WireBytes::Text(text) => text.as_bytes(),
            WireBytes::Octets(octets) => octets,
        }
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
    Bounced { host: String, status: String },
    /// The submission server refused it; the user agent showed the error at once.
    RefusedAtSubmission { status: String },
    /// Still in a queue when the simulation stopped.
    Queued { host: String },
    /// A bounce that could not be delivered: never bounced again (RFC 5321 4.5.5).
    Discarded { host: String, status: String },
}

impl Fate {
    pub fn word(&self) -> &'static str {
        match self {
            Fate::Delivered { .. } => "delivered",
            Fate::Bounced { .. } => "bounced",
            Fate::RefusedAtSubmission { .. } => "refused at submission",
            Fate::Queued { .. } => "still queued",
            Fate::Discarded { .. } => "discarded",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    Started {
        scenario: String,
        seed: u64,
    },
    MessageComposed {
        message: String,
        ua: Name,
        reverse_path: String,
        forward_paths: Vec<String>,
        octets: usize,
    },
    ConnectionAttempted {
        conn: ConnId,
        client: Name,
        server: Name,
        address: String,
        port: u16,
        protocol: Protocol,
    },
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
    ConnectionClosed {
        conn: ConnId,
        by: Name,
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
        enhanced: Option<String>,
        meaning: Name,
        why: Name,
        rfc: Name,
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
    DnsQuery {
        host: Name,
        id: u16,
        question: String,
        wire: Vec<u8>,
    },
    DnsResponse {
        host: Name,
        id: u16,
        outcome: String,
        records: Vec<String>,
        wire: Option<Vec<u8>>,
    },
    MxResolved {
        host: Name,
        domain: String,
        result: String,
        targets: Vec<String>,
    },
    /// A server took responsibility for a message (its 250 after the data).
    MessageAccepted {
        host: Name,
        conn: ConnId,
        message: String,
        reverse_path: String,
        forward_paths: Vec<String>,
    },
    Queued {
        host: Name,
        entry: EntryId,
        message: String,
        domain: String,
        recipients: Vec<String>,
    },
    AttemptStarted {
        host: Name,
        entry: EntryId,
        attempt: u32,
    },
    RecipientResult {
        host: Name,
        entry: EntryId,
        recipient: String,
        result: String,
        reply: String,
    },
    RetryScheduled {
        host: Name,
        entry: EntryId,
        at_ms: u64,
        recipients: Vec<String>,
    },
    /// Nothing is left to do for a queue entry.
    Dequeued {
        host: Name,
        entry: EntryId,
    },
    GaveUp {
        host: Name,
        entry: EntryId,
        recipients: Vec<String>,
    },
    Delivered {
        host: Name,
        mailbox: String,
        message: String,
        uid: String,
        octets: usize,
    },
    DeliveryRefused {
        host: Name,
        mailbox: String,
        reason: String,
    },
    BounceCreated {
        host: Name,
        about: String,
        bounce: String,
        to: String,
        recipients: Vec<String>,
        action: String,
    },
    BounceDiscarded {
        host: Name,
        message: String,
        recipients: Vec<String>,
    },
    MessageRetrieved {
        conn: ConnId,
        mailbox: String,
        uid: Option<String>,
        octets: usize,
    },
    MailboxUpdated {
        host: Name,
        mailbox: String,
        deleted: Vec<String>,
    },
    Outcome {
        message: String,
        recipient: String,
        fate: Fate,
    },
    ConservationChecked {
        ok: bool,
        problems: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub time_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub scenario: String,
    pub seed: u64,
    pub start_unix_s: i64,
    pub events: Vec<TraceEvent>,
}

/// `d+hh:mm:ss.mmm`, fixed width, so that text traces line up and diff well.
pub fn format_time(time_ms: u64) -> String {
    let days = time_ms / 86_400_000;
    let hours = time_ms / 3_600_000 % 24;
    let minutes = time_ms / 60_000 % 60;
    let seconds = time_ms / 1000 % 60;
    let millis = time_ms % 1000;
    format!("{days}+{hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// Shows control characters other than the line's CRLF as escapes.
fn escaped(line: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(line).chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Most lines of one data transmission shown in the text trace.
const DATA_LINES_SHOWN: usize = 12;

impl Trace {
    /// One line per event (a transmission gives one line per protocol line): simulated time,
    /// then the actor, then what happened. Stable across runs, for golden files and diffs.
    pub fn to_text(&self) -> String {
        let mut renderer = TextRenderer::default();
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
}

impl TextRenderer {
    /// The lines for one event, each ending in a newline (none for some events).
    pub fn write(&mut self, event: &TraceEvent, out: &mut String) {
        let TraceEvent { time_ms, event } = event;
        let conns = &mut self.conns;
        let time = format_time(*time_ms);
        let mut line = |actor: &str, text: String| {
            let _ = writeln!(out, "{time}  {actor:<22} {text}");
        };
        match event {
            Event::Started { scenario, seed } => {
                line("sim", format!("scenario {scenario}, seed {seed}"))
            }
            Event::MessageComposed {
                message,
                ua,
                reverse_path,
                forward_paths,
                octets,
            } => line(
                ua,
                format!(
                    "composed {message}: MAIL FROM:<{reverse_path}> RCPT TO:{} ({octets} octets)",
                    forward_paths
                        .iter()
                        .map(|p| format!("<{p}>"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
            Event::ConnectionAttempted {
                conn,
                client,
                server,
                address,
                port,
                protocol,
            } => {
                conns.insert(*conn, (client.clone(), server.clone()));
                line(
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
            Event::ConnectionOpened { conn } => {
                line(&conn_client(conns, *conn), format!("#{conn} connected"))
            }
            Event::ConnectionRefused { conn, reason } => line(
                &conn_client(conns, *conn),
                format!("#{conn} connection refused: {reason}"),
            ),
            Event::ConnectionTimedOut { conn } => line(
                &conn_client(conns, *conn),
                format!("#{conn} connection timed out"),
            ),
            Event::ConnectionDropped { conn, reason } => line(
                &conn_client(conns, *conn),
                format!("#{conn} connection dropped: {reason}"),
            ),
            Event::ConnectionClosed { conn, by } => {
                line(by, format!("#{conn} closed the connection"))
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
                let lines: Vec<&[u8]> = raw
                    .split_inclusive(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .collect();
                let shown = lines.len().min(DATA_LINES_SHOWN);
                for piece in &lines[..shown] {
                    let body = piece.strip_suffix(b"\r\n").unwrap_or(piece);
                    line(&actor, format!("#{conn} {prefix} {}", escaped(body)));
                }
                if lines.len() > shown {
                    line(
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
            Event::ClientState { conn, from, to } => line(
                &conn_client(conns, *conn),
                format!("#{conn} client {from} -> {to}"),
            ),
            Event::ServerState { conn, from, to } => line(
                &conns.get(conn).map(|c| c.1.clone()).unwrap_or_default(),
                format!("#{conn} server {from} -> {to}"),
            ),
            Event::DnsQuery {
                host, id, question, ..
            } => line(host, format!("DNS query id {id}: {question}")),
            Event::DnsResponse {
                host,
                id,
                outcome,
                records,
                ..
            } => {
                line(host, format!("DNS answer id {id}: {outcome}"));
                for record in records {
                    line(host, format!("  {record}"));
                }
            }
            Event::MxResolved {
                host,
                domain,
                result,
                targets,
            } => line(
                host,
                format!("MX for {domain}: {result} [{}]", targets.join(", ")),
            ),
            Event::MessageAccepted {
                host,
                conn,
                message,
                reverse_path,
                forward_paths,
            } => line(
                host,
                format!(
                    "#{conn} accepted {message} from <{reverse_path}> for {}",
                    forward_paths.join(", ")
                ),
            ),
            Event::Queued {
                host,
                entry,
                message,
                domain,
                recipients,
            } => line(
                host,
                format!(
                    "queued q{entry} ({message}) for {domain}: {}",
                    recipients.join(", ")
                ),
            ),
            Event::AttemptStarted {
                host,
                entry,
                attempt,
            } => line(host, format!("q{entry} delivery attempt {attempt}")),
            Event::RecipientResult {
                host,
                entry,
                recipient,
                result,
                reply,
            } => line(host, format!("q{entry} <{recipient}> {result}: {reply}")),
            Event::RetryScheduled {
                host,
                entry,
                at_ms,
                recipients,
            } => line(
                host,
                format!(
                    "q{entry} retry at {} for {}",
                    format_time(*at_ms),
                    recipients.join(", ")
                ),
            ),
            Event::Dequeued { host, entry } => line(host, format!("q{entry} done")),
            Event::GaveUp {
                host,
                entry,
                recipients,
            } => line(
                host,
                format!("q{entry} gave up on {}", recipients.join(", ")),
            ),
            Event::Delivered {
                host,
                mailbox,
                message,
                uid,
                octets,
            } => line(
                host,
                format!("MDA stored {message} in {mailbox} as {uid} ({octets} octets)"),
            ),
            Event::DeliveryRefused {
                host,
                mailbox,
                reason,
            } => line(host, format!("MDA refused {mailbox}: {reason}")),
            Event::BounceCreated {
                host,
                about,
                bounce,
                to,
                recipients,
                action,
            } => line(
                host,
                format!(
                    "{action} notice {bounce} about {about} to <{to}> for {}",
                    recipients.join(", ")
                ),
            ),
            Event::BounceDiscarded {
                host,
                message,
                recipients,
            } => line(
                host,
                format!(
                    "discarded undeliverable bounce {message} for {}",
                    recipients.join(", ")
                ),
            ),
            Event::MessageRetrieved {
                conn,
                mailbox,
                uid,
                octets,
            } => line(
                &conn_client(conns, *conn),
                format!(
                    "#{conn} retrieved {} from {mailbox} ({octets} octets)",
                    uid.as_deref().unwrap_or("a message")
                ),
            ),
            Event::MailboxUpdated {
                host,
                mailbox,
                deleted,
            } => line(host, format!("{mailbox}: deleted {}", deleted.join(", "))),
            Event::Outcome {
                message,
                recipient,
                fate,
            } => line(
                "outcome",
                format!("{message} <{recipient}> {}", describe_fate(fate)),
            ),
            Event::ConservationChecked { ok, problems } => line(
                "check",
                if *ok {
                    "conservation holds: every recipient of every message has exactly one fate"
                        .to_string()
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

pub fn describe_fate(fate: &Fate) -> String {
    match fate {
        Fate::Delivered { host, mailbox } => format!("delivered to {mailbox} on {host}"),
        Fate::Bounced { host, status } => format!("bounced by {host} ({status})"),
        Fate::RefusedAtSubmission { status } => format!("refused at submission ({status})"),
        Fate::Queued { host } => format!("still queued on {host}"),
        Fate::Discarded { host, status } => format!("discarded by {host} ({status})"),
    }
}
