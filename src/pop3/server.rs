//! The server side of a POP3 session (RFC 1939, CAPA and response codes from RFC 2449, RFC 3206,
//! UTF-8 user names from RFC 6856) as a sans-I/O engine: the client's bytes and the time go in,
//! response bytes, events and the next deadline come out.
//!
//! It is not a socket, a mail store or a lock manager: a [`MaildropStore`] checks the user's
//! password and hands over the maildrop at login, and when the session ends with QUIT the
//! session asks the store to remove the messages marked as deleted (a store on disk does; the
//! simulation's leaves it to its driver) and emits [`Pop3ServerEvent::MaildropUpdated`]
//! listing the messages removed. It does not speak APOP (answered -ERR and not offered in the
//! greeting), AUTH or STLS.
//!
//! ```text
//!            greeting
//!               │
//!               ▼        USER                PASS ok (maildrop locked)
//!   ┌──────► ExpectUser ──────► ExpectPass ──────────────────────► Transaction
//!   │           │                  │   │                              │  │
//!   │  PASS bad │ QUIT             │   │ QUIT                    QUIT │  │ peer closed,
//!   └───────────┼──────────────────┘   │                              ▼  │ idle timeout
//!               │                      │                           Update│
//!               ▼                      ▼                              │  │
//!             Closed ◄─────────────────┴──────────────────────────────┘◄─┘
//! ```
//!
//! AUTHORIZATION (RFC 1939 4) is ExpectUser and ExpectPass; TRANSACTION (RFC 1939 5) is
//! Transaction; UPDATE (RFC 1939 6) is entered only by QUIT from Transaction, and only there are
//! messages deleted. A closed connection, a timeout or too many errors go straight to Closed
//! and delete nothing. All other commands in a state get -ERR and change nothing.
//!
//! UTF8 (RFC 6856 2.1) is not a state: in AUTHORIZATION, before USER (or after a failed PASS),
//! it switches the session to UTF-8 mode for good. CAPA lists `UTF8 USER`, so USER and PASS
//! take UTF-8 with or without it (RFC 6856 2.2). What the mode changes is what the server may
//! send: outside it nothing but ASCII goes to the client as is (RFC 6856 2.1), so a message
//! whose header section is not ASCII (RFC 6532) is refused to RETR and TOP with `-ERR [UTF8]`
//! (RFC 6856 5) instead of being downgraded, and a non-ASCII user name is not echoed. In UTF-8
//! mode messages are sent as they are stored.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::maildrop::{is_valid_uid, Maildrop, MaildropStore, OpenError};
use super::wire::{self, CommandLine, CommandReader};

/// RFC 1939 3: the inactivity autologout timer "MUST be of at least 10 minutes' duration".
pub const IDLE_TIMEOUT_MS_MIN: u64 = 10 * 60 * 1000;

/// How the server behaves; the defaults are safe for a server facing the Internet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pop3ServerConfig {
    /// The name in the greeting and the sign-off.
    pub hostname: String,
    /// Close the connection after this long without a command (RFC 1939 3). Values below
    /// [`IDLE_TIMEOUT_MS_MIN`] break the RFC; they are allowed so a simulation can show it.
    pub idle_timeout_ms: u64,
    /// Wrong passwords before the server gives up and closes: its own limit, not an RFC
    /// rule, to make password guessing slow.
    pub auth_failures_max: u32,
    /// Commands in one session; more is a client in a loop.
    pub commands_max: u32,
    /// Largest maildrop one session serves, in messages and in octets.
    pub maildrop_messages_max: usize,
    pub maildrop_octets_max: usize,
    /// The text of the `IMPLEMENTATION` capability (RFC 2449 6.9); none is sent when `None`.
    pub implementation: Option<String>,
}

impl Pop3ServerConfig {
    pub fn new(hostname: impl Into<String>) -> Self {
        Pop3ServerConfig {
            hostname: hostname.into(),
            idle_timeout_ms: IDLE_TIMEOUT_MS_MIN,
            auth_failures_max: 3,
            commands_max: 100_000,
            maildrop_messages_max: 100_000,
            maildrop_octets_max: 1 << 30,
            implementation: None,
        }
    }
}

/// What the server expects next; the session's state as shown to people. [`Pop3State::rfc_state`]
/// gives the RFC 1939 name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pop3State {
    /// AUTHORIZATION, waiting for USER (or CAPA, UTF8, QUIT).
    ExpectUser,
    /// AUTHORIZATION, USER given, waiting for PASS.
    ExpectPass,
    /// TRANSACTION: the maildrop is locked and the client works on it.
    Transaction,
    /// UPDATE: the deletions are being made after QUIT; the session closes right after.
    Update,
    Closed,
}

impl Pop3State {
    pub fn name(self) -> &'static str {
        match self {
            Pop3State::ExpectUser => "ExpectUser",
            Pop3State::ExpectPass => "ExpectPass",
            Pop3State::Transaction => "Transaction",
            Pop3State::Update => "Update",
            Pop3State::Closed => "Closed",
        }
    }

    /// The state's name in RFC 1939 (AUTHORIZATION, TRANSACTION, UPDATE), or "CLOSED".
    pub fn rfc_state(self) -> &'static str {
        match self {
            Pop3State::ExpectUser | Pop3State::ExpectPass => "AUTHORIZATION",
            Pop3State::Transaction => "TRANSACTION",
            Pop3State::Update => "UPDATE",
            Pop3State::Closed => "CLOSED",
        }
    }
}

impl fmt::Display for Pop3State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CloseReason {
    /// The client sent QUIT (with an UPDATE when it came in the TRANSACTION state).
    Quit,
    /// The client closed the connection, or it broke; nothing was deleted.
    PeerClosed,
    /// No command for `idle_timeout_ms` (RFC 1939 3); nothing was deleted.
    IdleTimeout,
    TooManyAuthFailures,
    TooManyCommands,
}

/// Something that happened in the session, in order, for traces and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pop3ServerEvent {
    /// A command line arrived, without its CRLF. The argument of PASS is masked; control
    /// characters are shown escaped (`\n`, `\x00`).
    CommandReceived {
        line: String,
    },
    /// A response was handed out through `poll_output`. `first_line` is its status line
    /// without CRLF (the lines of a multi-line response follow it on the wire, not here).
    ReplySent {
        ok: bool,
        first_line: String,
        /// Why the server answered this way.
        explanation: String,
        /// Where the rule is written, e.g. "RFC 1939 5".
        rfc: String,
    },
    StateChanged {
        from: Pop3State,
        to: Pop3State,
    },
    /// PASS was refused.
    LoginRefused {
        user: String,
        error: OpenError,
    },
    /// The store gave the maildrop; the session holds it until it closes (RFC 1939 8).
    MaildropLocked {
        user: String,
        messages: usize,
        octets: usize,
    },
    /// The UPDATE state (RFC 1939 6): these messages are removed from the store, by the store
    /// itself ([`MaildropStore::remove_deleted`]) or, for a store that leaves it to its
    /// driver, by the driver. Sent once, on QUIT from TRANSACTION, possibly with an empty
    /// list; a message the store could not remove is not listed, and QUIT answered -ERR.
    MaildropUpdated {
        user: String,
        deleted_uids: Vec<String>,
    },
    /// The session is over; the driver closes the connection after sending what
    /// `poll_output` still holds, and releases the maildrop's lock.
    Closed {
        reason: CloseReason,
    },
}

/// One message as the session serves it: canonical bytes (CRLF line ends) and its mark.
#[derive(Clone, Debug)]
struct SessionMessage {
    uid: String,
    bytes: Vec<u8>,
    deleted: bool,
}

/// The TRANSACTION state's data: the locked maildrop. Message numbers are indices plus one,
/// and never change during the session (RFC 1939 5).
#[derive(Clone, Debug)]
struct Transaction {
    user: String,
    messages: Vec<SessionMessage>,
}

impl Transaction {
    /// Messages not marked as deleted, and their octets (what STAT and RSET report).
    fn totals(&self) -> (usize, usize) {
        self.messages
            .iter()
            .filter(|message| !message.deleted)
            .fold((0, 0), |(count, octets), message| {
                (count + 1, octets + message.bytes.len())
            })
    }

    fn stat(&self, arguments: &[&str]) -> Response {
        if let Some(refusal) = no_arguments("STAT", arguments) {
            return refusal;
        }
        let (count, octets) = self.totals();
        Response::ok(
            format!("{count} {octets}"),
            "STAT gives the number of messages and their size in octets, not counting \
             messages marked as deleted.",
            "RFC 1939 5",
        )
    }

    fn list(&self, arguments: &[&str]) -> Response {
        let transaction = self;
        match arguments {
            [] => {
                let (count, octets) = transaction.totals();
                let mut body = String::new();
                for (index, message) in transaction.messages.iter().enumerate() {
                    if !message.deleted {
                        body.push_str(&format!("{} {}\r\n", index + 1, message.bytes.len()));
                    }
                }
                Response::ok(
                    format!("{count} message{} ({octets} octets)", plural(count)),
                    "LIST without an argument gives a scan listing: one line per message not \
                     marked as deleted, with its number and exact size in octets, then a \
                     line holding only \".\".",
                    "RFC 1939 5",
                )
                .with_body(body.into_bytes())
            }
            [number] => match self.message_ref(number) {
                MessageRef::Found(index) => Response::ok(
                    format!("{} {}", index + 1, transaction.messages[index].bytes.len()),
                    "LIST with a message number gives that message's scan listing on one \
                     line.",
                    "RFC 1939 5",
                ),
                MessageRef::Refused(refusal) => refusal,
            },
            _ => too_many_arguments("LIST", "at most one argument"),
        }
    }

    fn retr(&self, arguments: &[&str], utf8_mode: bool) -> Response {
        let [number] = arguments else {
            return wrong_arguments("RETR", "one argument, a message number");
        };
        match self.message_ref(number) {
            MessageRef::Found(index) => {
                if let Some(refusal) = self.needs_utf8_mode(index, utf8_mode, "RETR") {
                    return refusal;
                }
                let message = &self.messages[index];
                Response::ok(
                    format!("{} octets", message.bytes.len()),
                    "The message follows, dot-stuffed: every line starting with \".\" gets \
                     another \".\" in front, and a line holding only \".\" ends it. RETR does \
                     not delete the message; only DELE then QUIT do.",
                    "RFC 1939 5, 3",
                )
                .with_body(message.bytes.clone())
            }
            MessageRef::Refused(refusal) => refusal,
        }
    }

    fn dele(&mut self, arguments: &[&str]) -> Response {
        let [number] = arguments else {
            return wrong_arguments("DELE", "one argument, a message number");
        };
        match self.message_ref(number) {
            MessageRef::Found(index) => {
                self.messages[index].deleted = true;
                Response::ok(
                    format!("message {} deleted", index + 1),
                    "The message is only marked as deleted: it is removed in the UPDATE state \
                     after QUIT, and RSET or a dropped connection keeps it.",
                    "RFC 1939 5",
                )
            }
            MessageRef::Refused(refusal) => refusal,
        }
    }

    fn rset(&mut self, arguments: &[&str]) -> Response {
        if let Some(refusal) = no_arguments("RSET", arguments) {
            return refusal;
        }
        let transaction = self;
        for message in &mut transaction.messages {
            message.deleted = false;
        }
        let (count, octets) = transaction.totals();
        Response::ok(
            format!(
                "maildrop has {count} message{} ({octets} octets)",
                plural(count)
            ),
            "RSET unmarks every message marked as deleted in this session.",
            "RFC 1939 5",
        )
    }

    fn top(&self, arguments: &[&str], utf8_mode: bool) -> Response {
        let [number, lines] = arguments else {
            return wrong_arguments("TOP", "two arguments, a message number and a line count");
        };
        let Some(lines) = parse_decimal(lines) else {
            return Response::err(
                "invalid number of lines",
                "TOP msg n: n is a non-negative number of body lines.",
                "RFC 1939 7",
            );
        };
        match self.message_ref(number) {
            MessageRef::Found(index) => {
                // The header section is always sent, whatever the line count.
                if let Some(refusal) = self.needs_utf8_mode(index, utf8_mode, "TOP") {
                    return refusal;
                }
                let message = &self.messages[index];
                let why = if let Some(body_start) = wire::header_section_end(&message.bytes) {
                    let body_lines = wire::line_count(&message.bytes[body_start..]);
                    if lines == 0 {
                        "TOP with 0 lines sends the header and the blank line after it, and \
                         none of the body, dot-stuffed like RETR: a look at who sent what, \
                         without downloading it."
                            .to_string()
                    } else if lines < body_lines {
                        format!(
                            "TOP sends the header, the blank line after it and the first \
                             {lines} line{} of the body, dot-stuffed like RETR.",
                            crate::plural(lines)
                        )
                    } else {
                        // RFC 1939 7: a count past the body's end sends the whole body.
                        format!(
                            "TOP sends the header, the blank line after it and the first lines \
                             of the body, dot-stuffed like RETR: this body has {body_lines} \
                             line{}, no more than asked for, so all of it is sent.",
                            crate::plural(body_lines)
                        )
                    }
                } else {
                    // RFC 5322 2.1: the body, and the empty line before it, are optional.
                    "TOP sends the header and the first lines of the body; this message has \
                     no empty line after its header fields, so it has no body and all of it \
                     is sent, dot-stuffed like RETR."
                        .to_string()
                };
                Response::ok("top of message follows", why, "RFC 1939 7")
                    .with_body(wire::top_of(&message.bytes, lines).to_vec())
            }
            MessageRef::Refused(refusal) => refusal,
        }
    }

    fn uidl(&self, arguments: &[&str]) -> Response {
        let transaction = self;
        match arguments {
            [] => {
                let mut body = String::new();
                for (index, message) in transaction.messages.iter().enumerate() {
                    if !message.deleted {
                        body.push_str(&format!("{} {}\r\n", index + 1, message.uid));
                    }
                }
                Response::ok(
                    "unique-id listing follows",
                    "UIDL gives each message's unique-id, which stays the same across \
                     sessions (unlike message numbers), so a client that keeps mail on the \
                     server knows which messages it already has.",
                    "RFC 1939 7",
                )
                .with_body(body.into_bytes())
            }
            [number] => match self.message_ref(number) {
                MessageRef::Found(index) => Response::ok(
                    format!("{} {}", index + 1, transaction.messages[index].uid),
                    "UIDL with a message number gives that message's unique-id.",
                    "RFC 1939 7",
                ),
                MessageRef::Refused(refusal) => refusal,
            },
            _ => too_many_arguments("UIDL", "at most one argument"),
        }
    }

    /// RFC 6856 2.1: "When UTF-8 mode has not been enabled, character strings outside the
    /// ASCII repertoire MUST NOT be sent to the client as is", and for a message that needs
    /// the mode the server "MUST either send the client a surrogate message [...] or fail the
    /// request with an -ERR response". This server does not make surrogates (downgrading,
    /// RFC 6857): it fails RETR and TOP with the UTF8 response code (RFC 6856 5). Only the
    /// header section counts: an 8bit body with ASCII header fields is plain MIME (RFC 2045
    /// 2.8), which POP3 clients took long before RFC 6856, just as SMTP needs SMTPUTF8 only
    /// for UTF-8 header fields and 8BITMIME for an 8bit body.
    fn needs_utf8_mode(&self, index: usize, utf8_mode: bool, command: &str) -> Option<Response> {
        // UTF-8 header fields (RFC 6532); the bytes are canonical, CRLF lines.
        if utf8_mode || crate::smtp::trace::header_section(&self.messages[index].bytes).is_ascii() {
            return None;
        }
        Some(Response::err(
            format!(
                "[UTF8] message {} has non-ASCII header fields and UTF-8 mode is off",
                index + 1
            ),
            format!(
                "The message's header section is not ASCII (UTF-8 header fields, RFC 6532), \
                 and this session is not in UTF-8 mode: then nothing outside ASCII \
                 may be sent to the client as is, and the server must either send a surrogate \
                 (downgraded) message or fail the request. This server does not downgrade, so \
                 {command} fails and the message stays in the maildrop. The [UTF8] response \
                 code (RFC 6856 5) tells the client it may ask again in UTF-8 mode: in a new \
                 session, sending UTF8 before logging in, since UTF8 is valid only in the \
                 AUTHORIZATION state."
            ),
            "RFC 6856 2.1",
        ))
    }

    /// Resolves a message-number argument: a number from 1 to the count, not marked as
    /// deleted (RFC 1939 5: such a message "may not be referenced").
    fn message_ref(&self, argument: &str) -> MessageRef {
        let transaction = self;
        let count = transaction.messages.len();
        let Some(number) = parse_decimal(argument) else {
            return MessageRef::Refused(Response::err(
                "invalid message number",
                "A message number is a decimal number, starting at 1.",
                "RFC 1939 3",
            ));
        };
        let index = match usize::try_from(number) {
            Ok(number) if (1..=count).contains(&number) => number - 1,
            _ => {
                return MessageRef::Refused(Response::err(
                    format!(
                        "no such message, only {count} message{} in maildrop",
                        plural(count)
                    ),
                    "Message numbers go from 1 to the number of messages at login.",
                    "RFC 1939 5",
                ))
            }
        };
        if transaction.messages[index].deleted {
            return MessageRef::Refused(Response::err(
                format!("message {number} already deleted"),
                "A message marked as deleted cannot be referenced again in this session \
                 (RSET unmarks it).",
                "RFC 1939 5",
            ));
        }
        MessageRef::Found(index)
    }
}

#[derive(Clone, Debug)]
enum State {
    ExpectUser,
    ExpectPass { user: String },
    Transaction(Box<Transaction>),
    Closed,
}

impl State {
    fn kind(&self) -> Pop3State {
        match self {
            State::ExpectUser => Pop3State::ExpectUser,
            State::ExpectPass { .. } => Pop3State::ExpectPass,
            State::Transaction(_) => Pop3State::Transaction,
            State::Closed => Pop3State::Closed,
        }
    }
}

/// A response under construction: the status line, an optional multi-line body, and why.
struct Response {
    ok: bool,
    text: String,
    body: Option<Vec<u8>>,
    explanation: String,
    rfc: &'static str,
}

impl Response {
    fn ok(text: impl Into<String>, explanation: impl Into<String>, rfc: &'static str) -> Self {
        Response {
            ok: true,
            text: text.into(),
            body: None,
            explanation: explanation.into(),
            rfc,
        }
    }

    fn err(text: impl Into<String>, explanation: impl Into<String>, rfc: &'static str) -> Self {
        Response {
            ok: false,
            ..Response::ok(text, explanation, rfc)
        }
    }

    /// A multi-line response; `body` holds CRLF-ended lines, not yet dot-stuffed.
    fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

/// What a message-number argument refers to.
enum MessageRef {
    Found(usize),
    Refused(Response),
}

/// The server side of one POP3 session. See the module doc.
#[derive(Debug)]
pub struct Pop3Server<S: MaildropStore> {
    config: Pop3ServerConfig,
    store: S,
    state: State,
    /// Set by the UTF8 command (RFC 6856 2.1) and kept until the session ends: a mode of the
    /// whole session, not of one state, so a failed PASS does not turn it off.
    utf8_mode: bool,
    reader: CommandReader,
    auth_failures: u32,
    commands: u32,
    deadline_ms: Option<u64>,
    output: VecDeque<Vec<u8>>,
    events: VecDeque<Pop3ServerEvent>,
}

impl<S: MaildropStore> Pop3Server<S> {
    /// A session on a connection that just opened at `now_ms`: the greeting is ready in
    /// `poll_output` and the idle timer runs.
    pub fn new(config: Pop3ServerConfig, store: S, now_ms: u64) -> Self {
        let mut server = Pop3Server {
            deadline_ms: Some(now_ms.saturating_add(config.idle_timeout_ms)),
            config,
            store,
            state: State::ExpectUser,
            utf8_mode: false,
            reader: CommandReader::new(),
            auth_failures: 0,
            commands: 0,
            output: VecDeque::new(),
            events: VecDeque::new(),
        };
        // RFC 1939 4: no timestamp in the greeting, because APOP is not offered.
        let greeting = Response::ok(
            format!("{} POP3 server ready", server.config.hostname),
            "The server greets the client; the session is now in the AUTHORIZATION state, \
             where the client logs in with USER and PASS (and may first ask CAPA what the \
             server can do).",
            "RFC 1939 4",
        );
        server.send(greeting);
        server
    }

    pub fn config(&self) -> &Pop3ServerConfig {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, for the driver to apply a `MaildropUpdated` event or release a lock.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    pub fn state(&self) -> Pop3State {
        self.state.kind()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The user whose maildrop this session holds, in the TRANSACTION state.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Transaction(transaction) => Some(&transaction.user),
            _ => None,
        }
    }

    /// Bytes received from the client at `now_ms`, in any split. Whole command lines are
    /// answered in order (RFC 2449 6.6: a client may pipeline).
    pub fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        if self.is_closed() {
            return;
        }
        self.deadline_ms = Some(now_ms.saturating_add(self.config.idle_timeout_ms));
        self.reader.push(bytes);
        while !self.is_closed() {
            let Some(line) = self.reader.next_line() else {
                break;
            };
            self.commands = self.commands.saturating_add(1);
            let response = match line {
                CommandLine::Line(line) => {
                    self.events.push_back(Pop3ServerEvent::CommandReceived {
                        line: display_command(&line),
                    });
                    if self.commands > self.config.commands_max {
                        self.close_after(
                            Response::err(
                                "too many commands, closing",
                                format!(
                                    "This server's own limit (not an RFC rule) is {} commands \
                                     per session. It closes without entering the UPDATE \
                                     state, so nothing is deleted.",
                                    self.config.commands_max
                                ),
                                "RFC 1939 6",
                            ),
                            CloseReason::TooManyCommands,
                        );
                        break;
                    }
                    self.handle_command(&line)
                }
                CommandLine::TooLong { octets } => {
                    self.events.push_back(Pop3ServerEvent::CommandReceived {
                        line: format!("<a line of {octets} octets>"),
                    });
                    Some(Response::err(
                        "line too long",
                        format!(
                            "A command line may be at most {} octets with its CRLF; this one \
                             had {octets}. The line is ignored.",
                            wire::COMMAND_LINE_MAX_OCTETS
                        ),
                        "RFC 2449 4",
                    ))
                }
            };
            if let Some(response) = response {
                self.send(response);
            }
        }
    }

    /// The client closed the connection, or it broke. RFC 1939 6: without QUIT there is no
    /// UPDATE state, so messages marked as deleted stay in the maildrop.
    pub fn handle_peer_closed(&mut self) {
        if !self.is_closed() {
            self.close(CloseReason::PeerClosed);
        }
    }

    /// When [`Pop3Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadline_ms
    }

    /// The time has come (or passed): after `idle_timeout_ms` without a command the server
    /// closes the connection, without a response and without entering UPDATE (RFC 1939 3).
    /// Calling it early does nothing.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.is_closed() || self.deadline_ms.is_none_or(|deadline| now_ms < deadline) {
            return;
        }
        self.close(CloseReason::IdleTimeout);
    }

    /// The next bytes to send to the client: one whole response per call.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Pop3ServerEvent> {
        self.events.pop_front()
    }

    // ----- commands -----

    /// The response to one command line, or `None` when the command closed the session and
    /// already sent its response.
    fn handle_command(&mut self, line: &[u8]) -> Option<Response> {
        // RFC 1939 3: keywords and arguments are printable ASCII. A CR or LF inside a line is
        // one that did not end it: a lenient server would have seen two commands here.
        if line.iter().any(|&byte| byte < 0x20 || byte == 0x7f) {
            let why = if line.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
                "Only CRLF ends a command line; a bare CR or LF inside it makes the whole line \
                 invalid. Servers that took a bare CR or LF as a line end would have seen more \
                 than one command here."
            } else {
                "A command line is printable characters: a keyword, then arguments separated \
                 by single spaces, then CRLF. A control character in it (a TAB, a NUL, ...) \
                 makes the whole line invalid."
            };
            return Some(Response::err(
                "command line contains a control character",
                why,
                "RFC 1939 3",
            ));
        }
        // RFC 6856 2.2: CAPA lists "UTF8 USER", so these take UTF-8 arguments whether or not
        // the client sent UTF8 ("the client MAY do so before issuing the "UTF8" command").
        let keyword_bytes = line.split(|&byte| byte == b' ').next().unwrap_or_default();
        let takes_utf8 = [&b"USER"[..], b"PASS", b"APOP"]
            .iter()
            .any(|keyword| keyword_bytes.eq_ignore_ascii_case(keyword));
        let Ok(line) = std::str::from_utf8(line) else {
            if takes_utf8 {
                return Some(Response::err(
                    "command line is not UTF-8",
                    "USER, PASS and APOP may carry UTF-8 user names and passwords, but these \
                     bytes are not valid UTF-8, and the server must reject user names and \
                     passwords that are not.",
                    "RFC 6856 2.2",
                ));
            }
            if self.utf8_mode {
                return Some(Response::err(
                    "command line is not UTF-8",
                    "In UTF-8 mode, arguments may be UTF-8 text, but these bytes are not valid \
                     UTF-8.",
                    "RFC 6856 2",
                ));
            }
            return Some(Response::err(
                "command line is not ASCII",
                "Keywords and arguments are printable ASCII; this line is not even UTF-8.",
                "RFC 1939 3",
            ));
        };
        let (keyword, rest) = match line.split_once(' ') {
            Some((keyword, rest)) => (keyword, Some(rest)),
            None => (line, None),
        };
        let keyword = keyword.to_ascii_uppercase();
        // RFC 1939 3: printable ASCII, except the user name and password (RFC 6856 2.2).
        let ascii_needed = match rest {
            Some(_) if takes_utf8 => keyword.as_str(),
            _ => line,
        };
        if !ascii_needed.is_ascii() {
            return Some(Response::err(
                "command line is not ASCII",
                "Keywords and arguments are printable ASCII; only the arguments of USER, PASS \
                 and APOP may be other UTF-8 text (CAPA lists \"UTF8 USER\", RFC 6856 2.2).",
                "RFC 1939 3",
            ));
        }
        // RFC 1939 7: PASS has exactly one argument, which may contain spaces; an empty one
        // is none, which `pass` refuses as a failed PASS.
        let arguments: Vec<&str> = match rest {
            Some(rest) if keyword != "PASS" => rest.split(' ').collect(),
            Some("") => Vec::new(),
            Some(rest) => vec![rest],
            None => Vec::new(),
        };
        if arguments.iter().any(|argument| argument.is_empty()) {
            return Some(Response::err(
                "syntax error: arguments are separated by one space",
                "Keywords and arguments are each separated by a single SPACE; an empty \
                 argument (two spaces, or a space at the end) is a syntax error.",
                "RFC 1939 3",
            ));
        }
        let state = self.state.kind();
        let utf8_mode = self.utf8_mode;
        if let State::Transaction(transaction) = &mut self.state {
            let response = match keyword.as_str() {
                "STAT" => Some(transaction.stat(&arguments)),
                "LIST" => Some(transaction.list(&arguments)),
                "RETR" => Some(transaction.retr(&arguments, utf8_mode)),
                "DELE" => Some(transaction.dele(&arguments)),
                "NOOP" => Some(no_arguments("NOOP", &arguments).unwrap_or_else(|| {
                    Response::ok(
                        "",
                        "NOOP does nothing but get a positive response.",
                        "RFC 1939 5",
                    )
                })),
                "RSET" => Some(transaction.rset(&arguments)),
                "TOP" => Some(transaction.top(&arguments, utf8_mode)),
                "UIDL" => Some(transaction.uidl(&arguments)),
                _ => None,
            };
            if response.is_some() {
                return response;
            }
        }
        match (keyword.as_str(), state) {
            ("CAPA", Pop3State::ExpectUser | Pop3State::ExpectPass | Pop3State::Transaction) => {
                Some(self.capa(&arguments))
            }
            ("QUIT", _) => self.quit(&arguments),
            ("USER", Pop3State::ExpectUser) => Some(self.user_command(&arguments)),
            ("USER", Pop3State::ExpectPass) => Some(Response::err(
                "USER already given, send PASS",
                "After a successful USER the client sends PASS (or QUIT); USER may only come \
                 again after a failed USER or PASS.",
                "RFC 1939 7",
            )),
            ("PASS", Pop3State::ExpectPass) => self.pass(&arguments),
            ("PASS", Pop3State::ExpectUser) => Some(Response::err(
                "send USER first",
                "PASS is only valid after a successful USER command (RFC 1939 7 has it come \
                 right after; this server also lets CAPA and other commands it answers in \
                 between).",
                "RFC 1939 7",
            )),
            ("UTF8", Pop3State::ExpectUser) => Some(self.utf8_command(&arguments)),
            // RFC 6856 2.1 lets a server answer UTF8 with -ERR: this one does between USER and
            // PASS, since the mode is chosen before the name is given.
            ("UTF8", Pop3State::ExpectPass) => Some(Response::err(
                "UTF8 must come before USER",
                "UTF8 chooses how the session reads names, so it comes before USER (or after a \
                 failed PASS); the server may refuse it, and between USER and PASS it does. \
                 PASS is still expected, as RFC 1939 7 has it come after USER.",
                "RFC 6856 2.1",
            )),
            // RFC 6856 2: "Commands valid in states: AUTHORIZATION".
            ("UTF8", _) => Some(Response::err(
                format!("UTF8 not valid in the {} state", state.rfc_state()),
                "UTF8 is valid only in the AUTHORIZATION state: the mode is chosen before the \
                 maildrop is opened. A client that wants messages with UTF-8 header fields \
                 sends UTF8 before logging in, in a new session. The session is unchanged.",
                "RFC 6856 2",
            )),
            ("APOP", Pop3State::ExpectUser | Pop3State::ExpectPass) => Some(Response::err(
                "APOP not supported",
                "APOP is optional. This server does not offer it (its greeting has no \
                 <timestamp>), so the client must use USER and PASS.",
                "RFC 1939 7",
            )),
            (
                "USER" | "PASS" | "APOP" | "STAT" | "LIST" | "RETR" | "DELE" | "NOOP" | "RSET"
                | "TOP" | "UIDL",
                _,
            ) => Some(Response::err(
                format!("{keyword} not valid in the {} state", state.rfc_state()),
                format!(
                    "Each command is valid only in some states; {keyword} is not valid in the \
                     {} state. The session is unchanged.",
                    state.rfc_state()
                ),
                if state == Pop3State::Transaction {
                    "RFC 1939 5"
                } else {
                    "RFC 1939 4"
                },
            )),
            // Extensions RFCs define that this server does not offer: CAPA does not list
            // them, and a client that asked CAPA first would not send them.
            ("AUTH" | "STLS", _) => {
                let (extension, capability) = if keyword == "AUTH" {
                    ("SASL login, RFC 5034", "SASL")
                } else {
                    ("TLS, RFC 2595", "STLS")
                };
                Some(Response::err(
                    "unknown command",
                    format!(
                        "{keyword} belongs to an extension ({extension}) that this server does \
                         not offer: CAPA does not list {capability}, its capability, so a \
                         client that asked CAPA first would not send it."
                    ),
                    "RFC 2449 5",
                ))
            }
            _ => Some(Response::err(
                "unknown command",
                "The server does not know this keyword. Keywords are case-insensitive, three \
                 or four characters long.",
                "RFC 1939 3",
            )),
        }
    }

    fn capa(&self, arguments: &[&str]) -> Response {
        if let Some(refusal) = no_arguments("CAPA", arguments) {
            return refusal;
        }
        // RFC 2449 5: capabilities of the AUTHORIZATION state are listed in both states.
        let mut body = String::from("USER\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\n");
        body.push_str("AUTH-RESP-CODE\r\n");
        // RFC 6856 2: "UTF8" offers the UTF8 command; its "USER" argument (RFC 6856 2.2) says
        // that USER and PASS take UTF-8, before the UTF8 command as well as after it.
        body.push_str("UTF8 USER\r\n");
        if let Some(implementation) = &self.config.implementation {
            let implementation = self.wire_text(&one_line(implementation));
            body.push_str(&format!("IMPLEMENTATION {implementation}\r\n"));
        }
        Response::ok(
            "Capability list follows",
            "CAPA lists what this server supports beyond RFC 1939's required commands: \
             USER/PASS login, TOP, UIDL, pipelined commands, [response codes] in -ERR \
             lines (RFC 3206 adds AUTH-RESP-CODE), and UTF8 with USER: USER and PASS take \
             UTF-8 user names and passwords, and the UTF8 command switches to UTF-8 mode, \
             in which messages with UTF-8 header fields are sent as they are (RFC 6856).",
            "RFC 2449 5",
        )
        .with_body(body.into_bytes())
    }

    fn quit(&mut self, arguments: &[&str]) -> Option<Response> {
        if let Some(refusal) = no_arguments("QUIT", arguments) {
            return Some(refusal);
        }
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Transaction(transaction) => {
                // RFC 1939 6: the UPDATE state removes the messages marked as deleted.
                self.events.push_back(Pop3ServerEvent::StateChanged {
                    from: Pop3State::Transaction,
                    to: Pop3State::Update,
                });
                let marked: Vec<String> = transaction
                    .messages
                    .iter()
                    .filter(|message| message.deleted)
                    .map(|message| message.uid.clone())
                    .collect();
                let not_removed = if marked.is_empty() {
                    Vec::new()
                } else {
                    self.store.remove_deleted(&marked)
                };
                let kept: std::collections::HashSet<&String> = not_removed.iter().collect();
                let deleted_uids: Vec<String> = marked
                    .iter()
                    .filter(|uid| !kept.contains(uid))
                    .cloned()
                    .collect();
                let deleted = deleted_uids.len();
                self.events.push_back(Pop3ServerEvent::MaildropUpdated {
                    user: transaction.user.clone(),
                    deleted_uids,
                });
                if !not_removed.is_empty() {
                    let kept = not_removed.len();
                    self.send(Response::err(
                        "some deleted messages not removed",
                        format!(
                            "QUIT in the TRANSACTION state enters UPDATE, but {kept} of the {} \
                             message{} marked with DELE could not be removed: {} still in \
                             the maildrop. The lock is released and the connection closes.",
                            marked.len(),
                            plural(marked.len()),
                            if kept == 1 { "it is" } else { "they are" }
                        ),
                        "RFC 1939 6",
                    ));
                    self.enter_closed(Pop3State::Update, CloseReason::Quit);
                    return None;
                }
                // What the maildrop holds after the update: the session's messages it did not
                // delete, and any that arrived while it was locked.
                let (left, _) = transaction.totals();
                let left = left + self.store.arrived_since_open();
                let summary = if left == 0 {
                    "maildrop empty".to_string()
                } else {
                    format!("{left} message{} left", plural(left))
                };
                self.send(Response::ok(
                    format!(
                        "{} POP3 server signing off ({summary})",
                        self.config.hostname
                    ),
                    if deleted == 0 && left == 0 {
                        "QUIT in the TRANSACTION state enters UPDATE: the maildrop is empty, \
                         so nothing is removed; the lock is released and the connection \
                         closes."
                            .to_string()
                    } else if deleted == 0 {
                        "QUIT in the TRANSACTION state enters UPDATE: no message was marked \
                         with DELE, so the maildrop keeps every message; the lock is released \
                         and the connection closes."
                            .to_string()
                    } else {
                        format!(
                            "QUIT in the TRANSACTION state enters UPDATE: the {deleted} \
                             message{} marked with DELE {} now removed, the lock is released \
                             and the connection closes.",
                            plural(deleted),
                            if deleted == 1 { "is" } else { "are" }
                        )
                    },
                    "RFC 1939 6",
                ));
                self.enter_closed(Pop3State::Update, CloseReason::Quit);
            }
            other => {
                let from = other.kind();
                self.send(Response::ok(
                    format!("{} POP3 server signing off", self.config.hostname),
                    "QUIT in the AUTHORIZATION state closes the connection without entering \
                     UPDATE: no maildrop was locked, nothing changes.",
                    "RFC 1939 4",
                ));
                self.enter_closed(from, CloseReason::Quit);
            }
        }
        None
    }

    /// UTF8 (RFC 6856 2.1): UTF-8 mode for the rest of the session. The state stays the same.
    fn utf8_command(&mut self, arguments: &[&str]) -> Response {
        if let Some(refusal) = no_arguments("UTF8", arguments) {
            return refusal;
        }
        if self.utf8_mode {
            // Switching on what is already on is harmless: +OK tells the client that the mode
            // it asked for is in force.
            return Response::ok(
                "already in UTF-8 mode",
                "UTF-8 mode was already on; it lasts until the connection ends, so sending \
                 UTF8 again changes nothing.",
                "RFC 6856 2.1",
            );
        }
        self.utf8_mode = true;
        Response::ok(
            "UTF8 enabled",
            "The session is now in UTF-8 mode until the connection ends: messages whose \
             header fields hold UTF-8 (RFC 6532) are sent as they are, and responses may \
             hold UTF-8 text. (USER and PASS take UTF-8 with or without it, as \"UTF8 USER\" \
             in CAPA says, RFC 6856 2.2.) The session stays in the AUTHORIZATION state.",
            "RFC 6856 2.1",
        )
    }

    fn user_command(&mut self, arguments: &[&str]) -> Response {
        let [name] = arguments else {
            return Response::err(
                "USER takes one argument, the mailbox name",
                "USER name: exactly one argument.",
                "RFC 1939 7",
            );
        };
        // ASCII controls and SPACE never get here (the line checks and the split on SPACE take
        // them); a UTF-8 name (RFC 6856 2.2) could still hold C1 controls or other spaces.
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Response::err(
                "user name contains a control or space character",
                "RFC 6856 2.2 has servers apply SASLprep to UTF-8 user names and reject what \
                 it prohibits, such as control characters; and a space of any script would \
                 not be one argument.",
                "RFC 4013 2.3",
            );
        }
        // RFC 1939 7 allows -ERR for an unknown mailbox here; answering +OK to every name and
        // refusing only at PASS tells an attacker nothing about which names exist.
        let response = if name.is_ascii() {
            Response::ok(
                format!("send PASS for {name}"),
                "The server takes the name and waits for the password. It does not say yet \
                 whether the mailbox exists, so user names cannot be probed.",
                "RFC 1939 7",
            )
        } else if self.utf8_mode {
            Response::ok(
                format!("send PASS for {name}"),
                "The server takes the UTF-8 name (CAPA lists \"UTF8 USER\") and waits for the \
                 password. It does not say yet whether the mailbox exists, so user names \
                 cannot be probed.",
                "RFC 6856 2.2",
            )
        } else {
            // RFC 6856 2.1: outside UTF-8 mode nothing but ASCII goes to the client as is.
            Response::ok(
                "send PASS",
                "CAPA lists \"UTF8 USER\", so USER may carry a UTF-8 name even before the \
                 UTF8 command. The reply does not repeat the name: the session is not in UTF-8 \
                 mode, and outside it nothing but ASCII may be sent to the client (RFC 6856 \
                 2.1). It does not say yet whether the mailbox exists, so user names cannot \
                 be probed.",
                "RFC 6856 2.2",
            )
        };
        self.enter(State::ExpectPass {
            user: (*name).to_string(),
        });
        response
    }

    fn pass(&mut self, arguments: &[&str]) -> Option<Response> {
        let [password] = arguments else {
            // A failed PASS: the client may start again with USER (RFC 1939 7).
            self.enter(State::ExpectUser);
            return Some(Response::err(
                "PASS takes one argument, the password",
                "PASS string: exactly one argument, which may contain spaces. A failed PASS \
                 ends the login attempt: the client starts again with USER.",
                "RFC 1939 7",
            ));
        };
        let State::ExpectPass { user } = &self.state else {
            debug_assert!(false, "PASS is only dispatched in ExpectPass");
            return None;
        };
        let user = user.clone();
        let refusal = match self.store.open(&user, password) {
            Ok(maildrop) => match self.check_maildrop(maildrop) {
                Ok(messages) => return Some(self.lock_maildrop(user, messages)),
                Err(reason) => {
                    // The store's data breaks the RFC or this server's limits: retrying will
                    // not help until someone fixes the maildrop. The lock goes before the -ERR
                    // (RFC 1939 4), or other sessions would be told [IN-USE].
                    self.store.release();
                    self.events.push_back(Pop3ServerEvent::LoginRefused {
                        user,
                        error: OpenError::TemporarilyUnavailable {
                            reason: reason.clone(),
                        },
                    });
                    self.enter(State::ExpectUser);
                    return Some(Response::err(
                        format!(
                            "[SYS/PERM] maildrop cannot be served: {}",
                            one_line(&reason)
                        ),
                        "The credentials were right, but this maildrop cannot be served as it \
                         is (a unique-id breaks RFC 1939 7, or it is larger than this server's \
                         limits). The [SYS/PERM] code tells the client not to retry as is.",
                        "RFC 3206 4",
                    ));
                }
            },
            Err(error) => error,
        };
        self.events.push_back(Pop3ServerEvent::LoginRefused {
            user,
            error: refusal.clone(),
        });
        // RFC 1939 7: after -ERR to PASS the session stays in AUTHORIZATION, back at USER.
        self.enter(State::ExpectUser);
        let response = match refusal {
            OpenError::BadCredentials => {
                self.auth_failures += 1;
                const WRONG: &str = "The user name or the password is wrong (the server does \
                                     not say which). The [AUTH] code tells the client that \
                                     the credentials were refused, not that the server is \
                                     in trouble: trying again as is will not help.";
                if self.auth_failures >= self.config.auth_failures_max {
                    let response = Response::err(
                        "[AUTH] invalid user name or password, too many failures, closing",
                        format!(
                            "{WRONG} After {} wrong passwords the server closes the \
                             connection, to slow down password guessing.",
                            self.auth_failures
                        ),
                        "RFC 3206 5",
                    );
                    self.close_after(response, CloseReason::TooManyAuthFailures);
                    return None;
                }
                Response::err(
                    "[AUTH] invalid user name or password",
                    [WRONG, " The client may start over with USER."].concat(),
                    "RFC 3206 5",
                )
            }
            OpenError::InUse => Response::err(
                "[IN-USE] maildrop already locked",
                "Another session holds this maildrop's exclusive lock; two sessions must not \
                 change the same maildrop at once. Try again later.",
                "RFC 2449 8.1.2",
            ),
            OpenError::TemporarilyUnavailable { reason } => Response::err(
                format!("[SYS/TEMP] maildrop unavailable: {}", one_line(&reason)),
                "The credentials were right but the maildrop cannot be served now.",
                "RFC 3206 4",
            ),
        };
        Some(response)
    }

    /// Checks what the store gave against the RFC's and this server's limits, and puts each
    /// message in the form it is sent in.
    fn check_maildrop(&self, maildrop: Maildrop) -> Result<Vec<SessionMessage>, String> {
        if maildrop.messages.len() > self.config.maildrop_messages_max {
            return Err(format!(
                "more than {} messages",
                self.config.maildrop_messages_max
            ));
        }
        let mut octets = 0usize;
        let mut messages: Vec<SessionMessage> = Vec::with_capacity(maildrop.messages.len());
        let mut uids_seen = std::collections::HashSet::with_capacity(maildrop.messages.len());
        for (index, message) in maildrop.messages.into_iter().enumerate() {
            if !is_valid_uid(&message.uid) {
                return Err(format!("message {} has an invalid unique-id", index + 1));
            }
            if !uids_seen.insert(message.uid.clone()) {
                return Err(format!("message {} repeats a unique-id", index + 1));
            }
            let bytes = wire::canonical_message(&message.bytes);
            octets = octets.saturating_add(bytes.len());
            if octets > self.config.maildrop_octets_max {
                return Err(format!(
                    "more than {} octets",
                    self.config.maildrop_octets_max
                ));
            }
            messages.push(SessionMessage {
                uid: message.uid,
                bytes,
                deleted: false,
            });
        }
        Ok(messages)
    }

    fn lock_maildrop(&mut self, user: String, messages: Vec<SessionMessage>) -> Response {
        let transaction = Transaction { user, messages };
        let (count, octets) = transaction.totals();
        self.events.push_back(Pop3ServerEvent::MaildropLocked {
            user: transaction.user.clone(),
            messages: count,
            octets,
        });
        self.enter(State::Transaction(Box::new(transaction)));
        Response::ok(
            format!(
                "maildrop has {count} message{} ({octets} octets)",
                plural(count)
            ),
            if count == 0 {
                "The password is right: the server locks the maildrop, which is empty, and \
                 enters the TRANSACTION state."
            } else {
                "The password is right: the server locks the maildrop, numbers its messages \
                 from 1 and enters the TRANSACTION state."
            },
            "RFC 1939 7",
        )
    }

    // ----- state and output -----

    fn send(&mut self, response: Response) {
        let indicator = if response.ok { "+OK" } else { "-ERR" };
        let first_line = if response.text.is_empty() {
            indicator.to_string()
        } else {
            format!("{indicator} {}", self.wire_text(&one_line(&response.text)))
        };
        let mut bytes = Vec::with_capacity(
            first_line.len() + 2 + response.body.as_ref().map_or(0, |body| body.len() + 16),
        );
        bytes.extend_from_slice(first_line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        if let Some(body) = &response.body {
            wire::write_dot_stuffed(&mut bytes, body, false);
        }
        self.output.push_back(bytes);
        self.events.push_back(Pop3ServerEvent::ReplySent {
            ok: response.ok,
            first_line,
            explanation: response.explanation,
            rfc: response.rfc.to_string(),
        });
    }

    /// Text for a response line. RFC 6856 2.1: "When UTF-8 mode has not been enabled,
    /// character strings outside the ASCII repertoire MUST NOT be sent to the client as is",
    /// so outside UTF-8 mode every non-ASCII character becomes "?" (a host name, the
    /// IMPLEMENTATION text or a store's reason could hold one).
    fn wire_text(&self, text: &str) -> String {
        if self.utf8_mode || text.is_ascii() {
            return text.to_string();
        }
        text.chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect()
    }

    fn enter(&mut self, state: State) {
        let from = self.state.kind();
        self.state = state;
        let to = self.state.kind();
        if from != to {
            self.events
                .push_back(Pop3ServerEvent::StateChanged { from, to });
        }
    }

    /// Sends `response`, then closes without UPDATE.
    fn close_after(&mut self, response: Response, reason: CloseReason) {
        self.send(response);
        self.close(reason);
    }

    /// Closes without UPDATE: nothing marked as deleted is removed (RFC 1939 6).
    fn close(&mut self, reason: CloseReason) {
        let from = self.state.kind();
        self.state = State::Closed;
        self.enter_closed(from, reason);
    }

    fn enter_closed(&mut self, from: Pop3State, reason: CloseReason) {
        debug_assert!(matches!(self.state, State::Closed));
        self.deadline_ms = None;
        if from != Pop3State::Closed {
            self.events.push_back(Pop3ServerEvent::StateChanged {
                from,
                to: Pop3State::Closed,
            });
        }
        self.events.push_back(Pop3ServerEvent::Closed { reason });
    }
}

fn no_arguments(keyword: &str, arguments: &[&str]) -> Option<Response> {
    if arguments.is_empty() {
        None
    } else {
        Some(too_many_arguments(keyword, "no arguments"))
    }
}

fn too_many_arguments(keyword: &str, allowed: &str) -> Response {
    wrong_arguments(keyword, allowed)
}

fn wrong_arguments(keyword: &str, wanted: &str) -> Response {
    Response::err(
        format!("{keyword} takes {wanted}"),
        format!("Wrong number of arguments: {keyword} takes {wanted}."),
        "RFC 1939 3",
    )
}

/// A decimal number, however many digits (leading zeros too; no sign, no spaces); a value
/// past 64 bits is read as the largest. As a message number that names no message, so every
/// number too large gets the same "no such message" answer; as TOP's line count (RFC 1939 7:
/// more lines than the body has means the whole message) it stands for "all".
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// [`crate::plural`] for a count of things in memory.
fn plural(count: usize) -> &'static str {
    crate::plural(u64::try_from(count).unwrap_or(u64::MAX))
}

/// Text that goes on one response line: CR and LF become spaces, so that no text can split a
/// response in two.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A command line for people: control characters escaped, PASS's argument masked.
fn display_command(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = match text.split_once(' ') {
        Some((keyword, _)) if keyword.eq_ignore_ascii_case("PASS") => {
            format!("{keyword} ********")
        }
        _ => text.into_owned(),
    };
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop3::maildrop::{InMemoryStore, StoredMessage};

    fn server() -> Pop3Server<InMemoryStore> {
        let mut store = InMemoryStore::new();
        store.add_user("alice", "secret");
        store.deliver("alice", StoredMessage::new("a1", "Subject: x\r\n\r\ny\r\n"));
        Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), store, 0)
    }

    /// A store that counts its locks, as the simulation's does.
    #[derive(Default)]
    struct LockingStore {
        held: usize,
    }

    impl MaildropStore for LockingStore {
        fn open(&mut self, _user: &str, _password: &str) -> Result<Maildrop, OpenError> {
            self.held += 1;
            // Two messages with one unique-id: a maildrop this server cannot serve.
            Ok(Maildrop::new(vec![
                StoredMessage::new("same", "a\r\n"),
                StoredMessage::new("same", "b\r\n"),
            ]))
        }

        fn release(&mut self) {
            self.held -= 1;
        }
    }

    #[test]
    fn a_maildrop_refused_after_its_lock_was_taken_is_released_before_the_err() {
        // RFC 1939 4: the lock is released prior to rejecting the command.
        let mut server = Pop3Server::new(
            Pop3ServerConfig::new("pop.example.org"),
            LockingStore::default(),
            0,
        );
        server.handle_input(b"USER alice\r\nPASS secret\r\n", 0);
        let output: Vec<u8> = std::iter::from_fn(|| server.poll_output())
            .flatten()
            .collect();
        assert!(String::from_utf8_lossy(&output).contains("-ERR [SYS/PERM]"));
        assert_eq!(server.store.held, 0);
    }

    /// The explanations of the responses to `input`, in order.
    fn explanations(server: &mut Pop3Server<InMemoryStore>, input: &[u8]) -> Vec<String> {
        server.handle_input(input, 0);
        std::iter::from_fn(|| server.poll_event())
            .filter_map(|event| match event {
                Pop3ServerEvent::ReplySent { explanation, .. } => Some(explanation),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_message_number_too_large_gets_the_same_answer_and_leading_zeros_are_read() {
        let mut server = server();
        play(
            &mut server,
            "S: +OK pop.example.org POP3 server ready
             C: USER alice
             S: +OK send PASS for alice
             C: PASS secret
             S: +OK maildrop has 1 message (17 octets)
             C: LIST 00000000001
             S: +OK 1 17
             C: LIST 4294967297
             S: -ERR no such message, only 1 message in maildrop
             C: LIST 18446744073709551617
             S: -ERR no such message, only 1 message in maildrop
             C: LIST 1x
             S: -ERR invalid message number",
        );
    }

    #[test]
    fn top_of_a_message_without_a_body_says_all_of_it_is_sent() {
        let mut store = InMemoryStore::new();
        store.add_user("alice", "secret");
        store.deliver("alice", StoredMessage::new("a1", "Subject: x\r\n"));
        store.deliver("alice", StoredMessage::new("a2", "Subject: y\r\n\r\nz\r\n"));
        let mut server = Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), store, 0);
        let said = explanations(
            &mut server,
            b"USER alice\r\nPASS secret\r\nTOP 1 0\r\nTOP 2 0\r\n",
        );
        let [.., without_body, with_body] = said.as_slice() else {
            panic!("replies to both TOPs: {said:?}");
        };
        assert!(without_body.contains("no empty line"), "{without_body}");
        assert!(
            !without_body.contains("blank line after it"),
            "{without_body}"
        );
        assert!(with_body.contains("the blank line after it"), "{with_body}");
    }

    #[test]
    fn top_says_the_lines_it_sends_not_a_count_past_the_body() {
        let mut store = InMemoryStore::new();
        store.add_user("alice", "secret");
        store.deliver(
            "alice",
            StoredMessage::new("a1", "Subject: y\r\n\r\none\r\ntwo\r\nthree"),
        );
        let mut server = Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), store, 0);
        let said = explanations(
            &mut server,
            b"USER alice\r\nPASS secret\r\nTOP 1 2\r\nTOP 1 3\r\nTOP 1 1000\r\n\
              TOP 1 99999999999999999999\r\n",
        );
        let [.., two, three, thousand, huge] = said.as_slice() else {
            panic!("replies to the TOPs: {said:?}");
        };
        assert!(two.contains("the first 2 lines of the body"), "{two}");
        // RFC 1939 7: a count past the body's end sends the whole body, three lines here
        // (the last without its CRLF).
        for all in [three, thousand, huge] {
            assert!(
                all.contains("this body has 3 lines, no more than asked for"),
                "{all}"
            );
            assert!(
                !all.contains("1000") && !all.contains("18446744073709551615"),
                "{all}"
            );
        }
    }

    #[test]
    fn a_control_character_is_explained_by_what_it_is() {
        let said = explanations(&mut server(), b"LIST\t1\r\nSTAT\0\r\nNOOP\rX\r\n");
        let [_greeting, tab, nul, bare_cr] = said.as_slice() else {
            panic!("three refusals after the greeting: {said:?}");
        };
        for printable_only in [tab, nul] {
            assert!(printable_only.contains("a TAB, a NUL"), "{printable_only}");
            assert!(
                !printable_only.contains("more than one command"),
                "{printable_only}"
            );
        }
        assert!(bare_cr.contains("more than one command"), "{bare_cr}");
    }

    #[test]
    fn auth_and_stls_are_extensions_this_server_does_not_offer() {
        let said = explanations(&mut server(), b"AUTH PLAIN\r\nSTLS\r\nXYZZY\r\n");
        let [_greeting, auth, stls, unknown] = said.as_slice() else {
            panic!("three refusals: {said:?}");
        };
        assert!(
            auth.contains("RFC 5034") && auth.contains("does not offer"),
            "{auth}"
        );
        assert!(
            stls.contains("RFC 2595") && stls.contains("does not offer"),
            "{stls}"
        );
        assert!(unknown.contains("does not know this keyword"), "{unknown}");
    }

    #[test]
    fn a_quit_explains_what_the_update_removed_and_a_closing_refusal_does_not_invite_a_retry() {
        let said = explanations(&mut server(), b"USER alice\r\nPASS secret\r\nQUIT\r\n");
        let quit = said.last().expect("a reply to QUIT");
        assert!(quit.contains("no message was marked with DELE"), "{quit}");
        let said = explanations(
            &mut server(),
            b"USER alice\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n",
        );
        let quit = said.last().expect("a reply to QUIT");
        assert!(
            quit.contains("the 1 message marked with DELE is now removed"),
            "{quit}"
        );

        let max = Pop3ServerConfig::new("pop.example.org").auth_failures_max as usize;
        let wrong = b"USER alice\r\nPASS wrong\r\n".repeat(max);
        let said = explanations(&mut server(), &wrong);
        let refusals: Vec<&String> = said.iter().filter(|e| e.contains("[AUTH]")).collect();
        assert_eq!(refusals.len(), max, "{said:?}");
        assert!(refusals[0].ends_with("The client may start over with USER."));
        let last = refusals[max - 1];
        assert!(!last.contains("start over"), "{last}");
        assert!(last.contains("closes the connection"), "{last}");
    }

    #[test]
    fn events_tell_the_whole_story_and_mask_the_password() {
        let mut server = server();
        server.handle_input(b"USER alice\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n", 0);
        let events: Vec<Pop3ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
        let commands: Vec<&str> = events
            .iter()
            .filter_map(|event| match event {
                Pop3ServerEvent::CommandReceived { line } => Some(line.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            commands,
            vec!["USER alice", "PASS ********", "DELE 1", "QUIT"]
        );
        let states: Vec<(Pop3State, Pop3State)> = events
            .iter()
            .filter_map(|event| match event {
                Pop3ServerEvent::StateChanged { from, to } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                (Pop3State::ExpectUser, Pop3State::ExpectPass),
                (Pop3State::ExpectPass, Pop3State::Transaction),
                (Pop3State::Transaction, Pop3State::Update),
                (Pop3State::Update, Pop3State::Closed),
            ]
        );
        assert!(events.contains(&Pop3ServerEvent::MaildropLocked {
            user: "alice".into(),
            messages: 1,
            octets: 17,
        }));
        assert!(events.contains(&Pop3ServerEvent::MaildropUpdated {
            user: "alice".into(),
            deleted_uids: vec!["a1".into()],
        }));
        assert_eq!(
            events.last(),
            Some(&Pop3ServerEvent::Closed {
                reason: CloseReason::Quit
            })
        );
        let replies = events
            .iter()
            .filter(|event| matches!(event, Pop3ServerEvent::ReplySent { rfc, .. } if rfc.starts_with("RFC ")))
            .count();
        assert_eq!(
            replies, 5,
            "the greeting and four responses, each with its RFC section"
        );
    }

    /// A store that removes messages itself and cannot remove one of them.
    struct StubbornStore;

    impl MaildropStore for StubbornStore {
        fn open(&mut self, _user: &str, _password: &str) -> Result<Maildrop, OpenError> {
            Ok(Maildrop::new(vec![
                StoredMessage::new("kept", "a\r\n"),
                StoredMessage::new("gone", "b\r\n"),
            ]))
        }

        fn remove_deleted(&mut self, uids: &[String]) -> Vec<String> {
            uids.iter().filter(|uid| *uid == "kept").cloned().collect()
        }
    }

    /// RFC 1939 6: when the UPDATE state cannot remove every message marked as deleted, QUIT
    /// answers "-ERR some deleted messages not removed", and the event lists only those that
    /// were removed.
    #[test]
    fn a_removal_that_fails_is_reported_by_quit() {
        let mut server =
            Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), StubbornStore, 0);
        server.handle_input(b"USER a\r\nPASS b\r\nDELE 1\r\nDELE 2\r\nQUIT\r\n", 1);
        let output: Vec<u8> = std::iter::from_fn(|| server.poll_output())
            .flatten()
            .collect();
        assert!(
            output.ends_with(b"-ERR some deleted messages not removed\r\n"),
            "{}",
            String::from_utf8_lossy(&output)
        );
        let events: Vec<Pop3ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
        assert!(events.contains(&Pop3ServerEvent::MaildropUpdated {
            user: "a".into(),
            deleted_uids: vec!["gone".into()],
        }));
        assert!(server.is_closed());
        assert_eq!(
            events.last(),
            Some(&Pop3ServerEvent::Closed {
                reason: CloseReason::Quit
            })
        );
    }

    /// Plays a transcript: `C: line` is sent with CRLF added, `B: bytes` is sent as is (with
    /// `\xHH` escapes), and each `S: line` must be the next line the server sent. Every line
    /// the server sent must be matched.
    fn play(server: &mut Pop3Server<InMemoryStore>, transcript: &str) {
        let mut sent: Vec<u8> = Vec::new();
        for line in transcript.lines().map(str::trim).filter(|l| !l.is_empty()) {
            while let Some(bytes) = server.poll_output() {
                sent.extend_from_slice(&bytes);
            }
            if let Some(command) = line.strip_prefix("C: ") {
                assert!(sent.is_empty(), "unmatched before {line:?}: {sent:?}");
                server.handle_input(format!("{command}\r\n").as_bytes(), 0);
            } else if let Some(raw) = line.strip_prefix("B: ") {
                assert!(sent.is_empty(), "unmatched before {line:?}: {sent:?}");
                server.handle_input(&unescape_hex(raw), 0);
            } else if let Some(expected) = line.strip_prefix("S:") {
                let end = sent
                    .windows(2)
                    .position(|pair| pair == b"\r\n")
                    .unwrap_or_else(|| panic!("no server line for {line:?}"));
                let got: Vec<u8> = sent.drain(..end + 2).take(end).collect();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    expected.trim_start(),
                    "{line}"
                );
            } else {
                panic!("not a transcript line: {line:?}");
            }
        }
        while let Some(bytes) = server.poll_output() {
            sent.extend_from_slice(&bytes);
        }
        assert!(sent.is_empty(), "unmatched at the end: {sent:?}");
    }

    fn unescape_hex(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = text.as_bytes();
        while let Some((&byte, tail)) = rest.split_first() {
            if byte == b'\\' && tail.first() == Some(&b'x') && tail.len() >= 3 {
                let hex = std::str::from_utf8(&tail[1..3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[3..];
            } else {
                out.push(byte);
                rest = tail;
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// José and Bob each have a message with a UTF-8 header field, then one with ASCII header
    /// fields and an 8bit body.
    fn utf8_server(config: Pop3ServerConfig) -> Pop3Server<InMemoryStore> {
        let mut store = InMemoryStore::new();
        for user in ["jos\u{e9}", "bob"] {
            store.add_user(user, format!("{user}-pw"));
            store.deliver(
                user,
                StoredMessage::new("m1", "Subject: \u{a1}Hola!\r\n\r\nHi\r\n"),
            );
            store.deliver(
                user,
                StoredMessage::new("m2", "Subject: hola\r\n\r\nHola Jos\u{e9}\r\n"),
            );
        }
        Pop3Server::new(config, store, 0)
    }

    /// RFC 6856 2.2: "If the server includes the USER argument in the UTF8 capability
    /// response, the client MAY use UTF-8 characters with a "USER", "PASS", or "APOP"
    /// command; the client MAY do so before issuing the "UTF8" command." The name is not
    /// echoed outside UTF-8 mode (RFC 6856 2.1), and bytes that are not UTF-8 are refused.
    #[test]
    fn utf8_user_name_is_taken_before_the_utf8_command() {
        let mut server = utf8_server(Pop3ServerConfig::new("pop.example.org"));
        play(
            &mut server,
            "S: +OK pop.example.org POP3 server ready
             B: USER jos\\xe9
             S: -ERR command line is not UTF-8
             B: PASS \\xff
             S: -ERR command line is not UTF-8
             C: USER jos\u{e9}
             S: +OK send PASS
             C: PASS jos\u{e9}-pw
             S: +OK maildrop has 2 messages (53 octets)",
        );
        assert_eq!(server.user(), Some("jos\u{e9}"));
        let replies: Vec<(String, String)> = std::iter::from_fn(|| server.poll_event())
            .filter_map(|event| match event {
                Pop3ServerEvent::ReplySent {
                    first_line, rfc, ..
                } => Some((first_line, rfc)),
                _ => None,
            })
            .collect();
        assert!(replies.contains(&("+OK send PASS".into(), "RFC 6856 2.2".into())));
        assert!(replies.contains(&(
            "-ERR command line is not UTF-8".into(),
            "RFC 6856 2.2".into()
        )));
    }

    /// RFC 6856 2.1: without UTF-8 mode a message with UTF-8 header fields is not sent as is;
    /// this server fails RETR and TOP with the UTF8 response code (RFC 6856 5). LIST, DELE
    /// and a message whose only non-ASCII text is in an 8bit body are unaffected.
    #[test]
    fn utf8_header_message_is_refused_outside_utf8_mode() {
        let mut server = utf8_server(Pop3ServerConfig::new("pop.example.org"));
        play(
            &mut server,
            "S: +OK pop.example.org POP3 server ready
             C: USER bob
             S: +OK send PASS for bob
             C: PASS bob-pw
             S: +OK maildrop has 2 messages (53 octets)
             C: LIST
             S: +OK 2 messages (53 octets)
             S: 1 24
             S: 2 29
             S: .
             C: RETR 1
             S: -ERR [UTF8] message 1 has non-ASCII header fields and UTF-8 mode is off
             C: TOP 1 0
             S: -ERR [UTF8] message 1 has non-ASCII header fields and UTF-8 mode is off
             C: RETR 2
             S: +OK 29 octets
             S: Subject: hola
             S:
             S: Hola Jos\u{e9}
             S: .
             C: DELE 1
             S: +OK message 1 deleted
             C: UTF8
             S: -ERR UTF8 not valid in the TRANSACTION state",
        );
    }

    /// RFC 6856 2.1: "In UTF-8 mode, if the character encoding format of maildrops is UTF-8
    /// or ASCII, the messages are sent to the client as is".
    #[test]
    fn utf8_header_message_is_sent_as_is_in_utf8_mode() {
        let mut server = utf8_server(Pop3ServerConfig::new("pop.example.org"));
        play(
            &mut server,
            "S: +OK pop.example.org POP3 server ready
             C: UTF8
             S: +OK UTF8 enabled
             C: USER jos\u{e9}
             S: +OK send PASS for jos\u{e9}
             C: PASS jos\u{e9}-pw
             S: +OK maildrop has 2 messages (53 octets)
             C: TOP 1 0
             S: +OK top of message follows
             S: Subject: \u{a1}Hola!
             S:
             S: .
             C: RETR 1
             S: +OK 24 octets
             S: Subject: \u{a1}Hola!
             S:
             S: Hi
             S: .",
        );
    }

    /// RFC 6856 2.1: "When UTF-8 mode has not been enabled, character strings outside the
    /// ASCII repertoire MUST NOT be sent to the client as is": not in the greeting, not in
    /// CAPA's IMPLEMENTATION line. In UTF-8 mode they are.
    #[test]
    fn nothing_but_ascii_is_sent_outside_utf8_mode() {
        let mut config = Pop3ServerConfig::new("p\u{f6}p.example.org");
        config.implementation = Some("L\u{e4}b".into());
        let mut server = utf8_server(config);
        play(
            &mut server,
            "S: +OK p?p.example.org POP3 server ready
             C: CAPA
             S: +OK Capability list follows
             S: USER
             S: TOP
             S: UIDL
             S: PIPELINING
             S: RESP-CODES
             S: AUTH-RESP-CODE
             S: UTF8 USER
             S: IMPLEMENTATION L?b
             S: .
             C: UTF8
             S: +OK UTF8 enabled
             C: QUIT
             S: +OK p\u{f6}p.example.org POP3 server signing off",
        );
    }

    #[test]
    fn idle_timer_is_ten_minutes_by_default_and_closes_silently() {
        let mut server = server();
        assert_eq!(server.poll_timeout(), Some(IDLE_TIMEOUT_MS_MIN));
        server.handle_input(b"NO", 1_000);
        assert_eq!(server.poll_timeout(), Some(1_000 + IDLE_TIMEOUT_MS_MIN));
        let _ = std::iter::from_fn(|| server.poll_output()).count();
        server.handle_timeout(1_000 + IDLE_TIMEOUT_MS_MIN);
        assert_eq!(server.state(), Pop3State::Closed);
        assert_eq!(server.poll_output(), None);
        assert_eq!(server.poll_timeout(), None);
    }
}
