//! The client side of a POP3 session (RFC 1939): the recipient's user agent downloading its
//! maildrop, as a sans-I/O engine. Server bytes and the time go in; command bytes, events and
//! the next deadline come out, and at the end an outcome says which messages were retrieved.
//!
//! It logs in with USER and PASS, asks STAT, LIST and (optionally) UIDL, then RETRs every
//! listed message, marks each retrieved one with DELE unless told to keep mail on the server,
//! and ends with QUIT, which is what makes the deletions happen (RFC 1939 6). It sends one
//! command at a time, never pipelines, and does not speak APOP, AUTH, STLS or TOP.
//!
//! Before USER the client sends CAPA (RFC 2449), and when the server lists UTF8 it sends UTF8,
//! so that messages with UTF-8 header fields come as they are (RFC 6856 2.1); outside UTF-8
//! mode a server that follows RFC 6856 answers them `-ERR [UTF8]` (RFC 6856 5) and they stay
//! on the server. A -ERR to CAPA means a server of RFC 1939 alone: the login goes on. A user
//! name that is not ASCII (a mailbox like `josé`) is sent only when the listing has
//! `UTF8 USER` ("Clients MUST NOT use UTF-8 characters when authenticating if the server did
//! not include the USER argument", RFC 6856 2.2); otherwise the client sends QUIT instead of
//! USER. A -ERR to UTF8 does not stop the login, since `UTF8 USER` alone lets the name be sent
//! (RFC 6856 2.2).
//!
//! ```text
//!  connect ──► ExpectGreeting ──+OK──► ExpectUserReply ──+OK──► ExpectPassReply ──+OK──┐
//!                  │ -ERR                  │ -ERR                   │ -ERR              │
//!                  ▼                       └───────► QUIT ◄─────────┘                   ▼
//!               Finished                                                     ExpectStatReply
//!                  ▲                                                                │ +OK
//!                  │                 ┌───── for each listed message ──────┐         ▼
//!                  │                 ▼                                    │  ExpectListReply
//!           ExpectQuitReply ◄── ExpectRetrReply ──+OK──► ExpectDeleReply ─┘         │ +OK
//!                  ▲  none left         ▲                                           ▼
//!                  │                    └──────────────────────────────── ExpectUidlReply
//! ```
//!
//! Between the greeting's +OK and USER come CAPA (RFC 2449) and UTF8 (RFC 6856):
//!
//! ```text
//!  ExpectGreeting ─+OK─► ExpectCapaReply ─"UTF8"─► ExpectUtf8Reply ─+OK or -ERR─► ExpectUserReply
//!                         │         │ no UTF8, or -ERR (an ASCII user name)              ▲
//!                         │         └────────────────────────────────────────────────────┘
//!                         │ UTF-8 user name and no "UTF8 USER"
//!                         ▼
//!                        QUIT
//! ```
//!
//! A -ERR to STAT or LIST sends QUIT; a -ERR to RETR or DELE is recorded and the client goes
//! on with the next message; a -ERR to UIDL means no unique-ids. A malformed response, a
//! timeout or a closed connection end the session at once, and then nothing marked with DELE
//! is deleted (RFC 1939 6).

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::maildrop::is_valid_uid;
use super::wire::{
    ResponseLine, ResponseReader, COMMAND_LINE_MAX_OCTETS, RESPONSE_LINE_MAX_OCTETS,
};
use crate::escape::quoted;

/// RFC 1939 3 sets at least 10 minutes for the server's idle timer; a client waiting as long
/// for a response never gives up before the server would.
pub const RESPONSE_TIMEOUT_MS_DEFAULT: u64 = 10 * 60 * 1000;

/// Most messages a listing (LIST, UIDL) is sized for, whatever STAT claims.
const LISTED_MESSAGES_MAX: u64 = 100_000;

/// How the client behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pop3ClientConfig {
    pub user: String,
    pub password: String,
    /// DELE each message once it has been retrieved (the classic "download and delete"). When
    /// false the mail stays on the server.
    pub delete_after_retrieve: bool,
    /// Ask UIDL for unique-ids (RFC 1939 7); a server without UIDL answers -ERR, and then the
    /// messages have none.
    pub ask_unique_ids: bool,
    pub response_timeout_ms: u64,
    /// Most messages retrieved in one session; the rest wait for the next one.
    pub messages_max: usize,
    /// Largest message accepted; a larger one ends the session.
    pub message_octets_max: usize,
}

impl Pop3ClientConfig {
    /// Download and delete, with UIDL, the default timeout and limits.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Pop3ClientConfig {
            user: user.into(),
            password: password.into(),
            delete_after_retrieve: true,
            ask_unique_ids: true,
            response_timeout_ms: RESPONSE_TIMEOUT_MS_DEFAULT,
            messages_max: 10_000,
            message_octets_max: 64 * 1024 * 1024,
        }
    }
}

/// Why a session could not be set up: a mistake of the calling code, not of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pop3ClientSetupError {
    /// USER takes one argument without spaces or control characters: printable ASCII
    /// (RFC 1939 3), or UTF-8 text, which needs a server that offers RFC 6856's `UTF8 USER`.
    InvalidUser,
    /// The password must be printable ASCII or UTF-8 without control characters.
    InvalidPassword,
    /// The USER or PASS line would be longer than 255 octets (RFC 2449 4).
    LineTooLong,
    InvalidLimit {
        name: &'static str,
    },
}

impl fmt::Display for Pop3ClientSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pop3ClientSetupError::InvalidUser => f.write_str(
                "the user name must not be empty or contain spaces or control characters",
            ),
            Pop3ClientSetupError::InvalidPassword => {
                f.write_str("the password must be non-empty and hold no control characters")
            }
            Pop3ClientSetupError::LineTooLong => {
                f.write_str("the USER or PASS line would exceed 255 octets")
            }
            Pop3ClientSetupError::InvalidLimit { name } => write!(f, "{name} must be at least 1"),
        }
    }
}

impl std::error::Error for Pop3ClientSetupError {}

/// What the client waits for next; the session's state as shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pop3ClientState {
    ExpectGreeting,
    /// Does the server offer UTF8, and `UTF8 USER` (RFC 2449 5, RFC 6856 2)?
    ExpectCapaReply,
    /// The server's answer to UTF8 (RFC 6856 2.1).
    ExpectUtf8Reply,
    ExpectUserReply,
    ExpectPassReply,
    ExpectStatReply,
    ExpectListReply,
    ExpectUidlReply,
    ExpectRetrReply,
    ExpectDeleReply,
    ExpectQuitReply,
    Finished,
}

impl Pop3ClientState {
    pub fn name(self) -> &'static str {
        match self {
            Pop3ClientState::ExpectGreeting => "ExpectGreeting",
            Pop3ClientState::ExpectCapaReply => "ExpectCapaReply",
            Pop3ClientState::ExpectUtf8Reply => "ExpectUtf8Reply",
            Pop3ClientState::ExpectUserReply => "ExpectUserReply",
            Pop3ClientState::ExpectPassReply => "ExpectPassReply",
            Pop3ClientState::ExpectStatReply => "ExpectStatReply",
            Pop3ClientState::ExpectListReply => "ExpectListReply",
            Pop3ClientState::ExpectUidlReply => "ExpectUidlReply",
            Pop3ClientState::ExpectRetrReply => "ExpectRetrReply",
            Pop3ClientState::ExpectDeleReply => "ExpectDeleReply",
            Pop3ClientState::ExpectQuitReply => "ExpectQuitReply",
            Pop3ClientState::Finished => "Finished",
        }
    }

    /// When something happened, in words: "while waiting for the reply to RETR".
    pub fn moment(self) -> &'static str {
        match self {
            Pop3ClientState::ExpectGreeting => "while waiting for the greeting",
            Pop3ClientState::ExpectCapaReply => "while waiting for the reply to CAPA",
            Pop3ClientState::ExpectUtf8Reply => "while waiting for the reply to UTF8",
            Pop3ClientState::ExpectUserReply => "while waiting for the reply to USER",
            Pop3ClientState::ExpectPassReply => "while waiting for the reply to PASS",
            Pop3ClientState::ExpectStatReply => "while waiting for the reply to STAT",
            Pop3ClientState::ExpectListReply => "while waiting for the reply to LIST",
            Pop3ClientState::ExpectUidlReply => "while waiting for the reply to UIDL",
            Pop3ClientState::ExpectRetrReply => "while waiting for the reply to RETR",
            Pop3ClientState::ExpectDeleReply => "while waiting for the reply to DELE",
            Pop3ClientState::ExpectQuitReply => "while waiting for the reply to QUIT",
            Pop3ClientState::Finished => "after the session ended",
        }
    }
}

impl fmt::Display for Pop3ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One message downloaded with RETR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrievedMessage {
    /// The message number in this session (RFC 1939 5); not stable across sessions.
    pub number: u32,
    /// The unique-id from UIDL, stable across sessions, when the server gave one.
    pub uid: Option<String>,
    /// The message, dot-unstuffed, with the line endings the server sent (CRLF).
    pub bytes: Vec<u8>,
}

/// How the session ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pop3SessionResult {
    /// Every listed message (up to `messages_max`) was tried and QUIT was answered. Single
    /// messages may still have failed: see [`Pop3ClientOutcome::errors`].
    Completed,
    /// The server answered -ERR to the greeting, STAT or LIST.
    Refused {
        command: String,
        response: String,
    },
    /// USER or PASS got -ERR (with `[AUTH]`, `[IN-USE]` or `[SYS/TEMP]` when the server uses
    /// RFC 2449/3206 response codes, which tell a wrong password from a busy maildrop).
    AuthenticationFailed {
        response: String,
    },
    /// The user name is not ASCII and the server does not take UTF-8 user names: its CAPA
    /// listing has no `UTF8 USER`, or it refused CAPA (RFC 6856 2.2). The client sent QUIT
    /// instead of USER; `reason` says what the server showed.
    Utf8UserNotSupported {
        reason: String,
    },
    /// The connection closed before QUIT was answered.
    ConnectionClosed {
        state: Pop3ClientState,
    },
    TimedOut {
        state: Pop3ClientState,
    },
    /// The server's bytes were not POP3.
    ProtocolError {
        reason: String,
    },
}

/// What a finished session achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pop3ClientOutcome {
    pub result: Pop3SessionResult,
    /// The messages downloaded, in the order they were retrieved.
    pub retrieved: Vec<RetrievedMessage>,
    /// Message numbers the server accepted DELE for.
    pub marked_for_deletion: Vec<u32>,
    /// True when QUIT got +OK after at least one DELE: the server removed those messages in
    /// its UPDATE state (RFC 1939 6). Without it nothing was removed, unless QUIT was refused.
    pub deletions_committed: bool,
    /// True when QUIT got -ERR: the server entered its UPDATE state but says some marked
    /// messages were not removed (RFC 1939 6), so which of them are gone is not known.
    pub quit_refused: bool,
    /// What STAT said: (messages, octets).
    pub maildrop_size: Option<(u64, u64)>,
    /// The -ERR responses the session went past (UTF8, RETR or DELE of one message, QUIT's
    /// "some deleted messages not removed").
    pub errors: Vec<String>,
}

impl Pop3ClientOutcome {
    pub fn is_completed(&self) -> bool {
        self.result == Pop3SessionResult::Completed
    }
}

/// Something that happened in the session, in order, for traces and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pop3ClientEvent {
    /// A command line was handed out through `poll_output`, without its CRLF; the password
    /// is masked.
    CommandSent {
        line: String,
    },
    /// A whole response arrived: its status line, and for a multi-line response the number
    /// of lines before the terminating ".".
    ResponseReceived {
        ok: bool,
        first_line: String,
        body_lines: Option<usize>,
    },
    MessageRetrieved {
        number: u32,
        uid: Option<String>,
        bytes: Vec<u8>,
        /// The response's status line ended at a bare LF, so its lines were read as ending
        /// at one (a server that writes no CR), each unstuffed where it starts; otherwise a
        /// line ends at CRLF only, and an LF is a line's content.
        lines_end_at_lf: bool,
    },
    /// Listed messages this session will not retrieve, and why (too large for this client,
    /// or beyond the messages it takes per session). They stay on the server.
    MessagesLeft {
        count: usize,
        reason: String,
    },
    StateChanged {
        from: Pop3ClientState,
        to: Pop3ClientState,
    },
    /// The server's bytes could not be read as POP3; the session ends.
    MalformedResponse {
        /// The response's status line as it came, when that line is what could not be read
        /// (no `ResponseReceived` shows it).
        status_line: Option<Vec<u8>>,
        reason: String,
    },
    TimedOut {
        state: Pop3ClientState,
    },
    PeerClosed,
    Finished {
        result: Pop3SessionResult,
    },
}

/// The command whose response is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaited {
    Greeting,
    Capa,
    Utf8,
    User,
    Pass,
    Stat,
    List,
    Uidl,
    /// RETR of the message at this index of the scan listing.
    Retr(usize),
    Dele(usize),
    Quit,
}

impl Awaited {
    fn state(self) -> Pop3ClientState {
        match self {
            Awaited::Greeting => Pop3ClientState::ExpectGreeting,
            Awaited::Capa => Pop3ClientState::ExpectCapaReply,
            Awaited::Utf8 => Pop3ClientState::ExpectUtf8Reply,
            Awaited::User => Pop3ClientState::ExpectUserReply,
            Awaited::Pass => Pop3ClientState::ExpectPassReply,
            Awaited::Stat => Pop3ClientState::ExpectStatReply,
            Awaited::List => Pop3ClientState::ExpectListReply,
            Awaited::Uidl => Pop3ClientState::ExpectUidlReply,
            Awaited::Retr(_) => Pop3ClientState::ExpectRetrReply,
            Awaited::Dele(_) => Pop3ClientState::ExpectDeleReply,
            Awaited::Quit => Pop3ClientState::ExpectQuitReply,
        }
    }

    /// True when a +OK to this command is followed by dot-stuffed lines (RFC 1939 3).
    fn is_multi_line(self) -> bool {
        matches!(
            self,
            Awaited::Capa | Awaited::List | Awaited::Uidl | Awaited::Retr(_)
        )
    }
}

/// A multi-line response being read: its status line and the lines so far, dot-unstuffed.
#[derive(Clone, Debug)]
struct MultiLine {
    first_line: String,
    body: Vec<u8>,
    lines: usize,
    /// The status line ended at a bare LF: a server that writes no CR, whose lines end at LF.
    lines_end_at_lf: bool,
    /// The last piece read ended at a bare LF inside a line (a server that ends its lines
    /// with CRLF): what follows is more of that line, neither unstuffed nor an end.
    inside_line: bool,
}

/// One line of the scan listing: a message the client will retrieve.
#[derive(Clone, Debug)]
struct Listed {
    number: u32,
    /// The size LIST gave: a message larger than the client takes is left on the server.
    octets: u64,
    uid: Option<String>,
}

/// The client side of one POP3 session. See the module doc.
#[derive(Clone, Debug)]
pub struct Pop3Client {
    config: Pop3ClientConfig,
    reader: ResponseReader,
    awaiting: Option<Awaited>,
    multi_line: Option<MultiLine>,
    listed: Vec<Listed>,
    retrieved: Vec<RetrievedMessage>,
    marked_for_deletion: Vec<u32>,
    maildrop_size: Option<(u64, u64)>,
    errors: Vec<String>,
    /// Set when the session failed but still sends QUIT politely before ending.
    pending_result: Option<Pop3SessionResult>,
    deadline_ms: Option<u64>,
    output: VecDeque<Vec<u8>>,
    events: VecDeque<Pop3ClientEvent>,
    outcome: Option<Pop3ClientOutcome>,
}

impl Pop3Client {
    /// A session that waits for the server's greeting. Call [`Pop3Client::handle_connected`]
    /// when the connection is up to start the timer.
    pub fn new(config: Pop3ClientConfig) -> Result<Pop3Client, Pop3ClientSetupError> {
        // For ASCII this is RFC 1939 3's printable characters other than SPACE; other UTF-8
        // text is allowed and sent to a server that lists UTF8 USER (RFC 6856 2.2). A space of
        // any script would split USER's one argument, and SASLprep forbids control characters
        // (RFC 4013 2.3).
        let user_ok = !config.user.is_empty()
            && !config
                .user
                .chars()
                .any(|c| c.is_control() || c.is_whitespace());
        if !user_ok {
            return Err(Pop3ClientSetupError::InvalidUser);
        }
        if config.password.is_empty() || config.password.chars().any(char::is_control) {
            return Err(Pop3ClientSetupError::InvalidPassword);
        }
        if "USER ".len() + config.user.len() + 2 > COMMAND_LINE_MAX_OCTETS
            || "PASS ".len() + config.password.len() + 2 > COMMAND_LINE_MAX_OCTETS
        {
            return Err(Pop3ClientSetupError::LineTooLong);
        }
        if config.messages_max == 0 {
            return Err(Pop3ClientSetupError::InvalidLimit {
                name: "messages_max",
            });
        }
        Ok(Pop3Client {
            config,
            reader: ResponseReader::new(),
            awaiting: Some(Awaited::Greeting),
            multi_line: None,
            listed: Vec::new(),
            retrieved: Vec::new(),
            marked_for_deletion: Vec::new(),
            maildrop_size: None,
            errors: Vec::new(),
            pending_result: None,
            deadline_ms: None,
            output: VecDeque::new(),
            events: VecDeque::new(),
            outcome: None,
        })
    }

    /// The connection is up: the wait for the greeting starts now.
    pub fn handle_connected(&mut self, now_ms: u64) {
        if self.awaiting == Some(Awaited::Greeting) {
            self.deadline_ms = Some(now_ms.saturating_add(self.config.response_timeout_ms));
        }
    }

    /// Bytes received from the server, in any split.
    pub fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        if self.is_finished() {
            return;
        }
        self.reader.push(bytes);
        while !self.is_finished() {
            let Some(line) = self.reader.next_line() else {
                break;
            };
            let before = self.state();
            match line {
                ResponseLine::Line { content, crlf } => self.handle_line(content, crlf, now_ms),
                ResponseLine::TooLong => self.protocol_error("a response line is far too long"),
            }
            self.note_state_change(before);
        }
    }

    /// The server closed the connection (or it broke). If QUIT was not answered, nothing
    /// marked with DELE was deleted (RFC 1939 6).
    pub fn handle_peer_closed(&mut self) {
        if self.is_finished() {
            return;
        }
        let before = self.state();
        self.events.push_back(Pop3ClientEvent::PeerClosed);
        self.finish(Pop3SessionResult::ConnectionClosed { state: before });
        self.note_state_change(before);
    }

    /// When [`Pop3Client::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadline_ms
    }

    /// The time has come (or passed): if the awaited response is overdue, the session ends.
    /// Calling it early does nothing.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.is_finished() || self.deadline_ms.is_none_or(|deadline| now_ms < deadline) {
            return;
        }
        let before = self.state();
        self.events
            .push_back(Pop3ClientEvent::TimedOut { state: before });
        self.finish(Pop3SessionResult::TimedOut { state: before });
        self.note_state_change(before);
    }

    /// The next bytes to send to the server: one command line per call.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Pop3ClientEvent> {
        self.events.pop_front()
    }

    pub fn state(&self) -> Pop3ClientState {
        self.awaiting
            .map_or(Pop3ClientState::Finished, Awaited::state)
    }

    /// True once the session is over: the caller closes the connection after sending what
    /// `poll_output` still holds.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The result, once the session is finished.
    pub fn outcome(&self) -> Option<&Pop3ClientOutcome> {
        self.outcome.as_ref()
    }

    pub fn config(&self) -> &Pop3ClientConfig {
        &self.config
    }

    // ----- responses -----

    fn handle_line(&mut self, content: Vec<u8>, crlf: bool, now_ms: u64) {
        let Some(awaited) = self.awaiting else {
            return;
        };
        if let Some(multi_line) = self.multi_line.as_mut() {
            // RFC 1939 3: a line holding only "." ends the response; otherwise a leading "."
            // was added by the server and is taken off. A line ends at CRLF: a "." after a
            // bare LF inside a message is the message's own (a server stuffs what starts a
            // line), and taking it for the end would keep a message cut short, read the rest
            // as replies, and delete the whole message with DELE.
            let line_start = !multi_line.inside_line;
            let ended = crlf || multi_line.lines_end_at_lf;
            if line_start && ended && content == b"." {
                let Some(multi_line) = self.multi_line.take() else {
                    return;
                };
                self.reader.set_line_max(RESPONSE_LINE_MAX_OCTETS);
                self.events.push_back(Pop3ClientEvent::ResponseReceived {
                    ok: true,
                    first_line: multi_line.first_line,
                    body_lines: Some(multi_line.lines),
                });
                self.handle_multi_line(
                    awaited,
                    multi_line.body,
                    multi_line.lines_end_at_lf,
                    now_ms,
                );
                return;
            }
            let unstuffed = match content.strip_prefix(b".") {
                Some(rest) if line_start => rest,
                _ => &content,
            };
            if line_start {
                multi_line.lines += 1;
            }
            multi_line.inside_line = !ended;
            multi_line.body.extend_from_slice(unstuffed);
            multi_line
                .body
                .extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            let limit = match awaited {
                Awaited::Retr(_) => self.config.message_octets_max,
                // A listing line is short; allow a generous 100 octets per message, for as
                // many messages as STAT counted (a listing names them all, however few of
                // them this session retrieves).
                // The count is the server's word, so it is capped: a listing never grows
                // past what 100,000 messages need (the servers' own maildrop limit).
                _ => {
                    let counted = self.maildrop_size.map_or(0, |(count, _)| count);
                    usize::try_from(counted.min(LISTED_MESSAGES_MAX))
                        .unwrap_or(usize::MAX)
                        .max(self.config.messages_max)
                        .saturating_mul(100)
                        .max(64 * 1024)
                }
            };
            if multi_line.body.len() > limit {
                self.protocol_error("a multi-line response is larger than this client takes");
            }
            return;
        }
        let first_line = String::from_utf8_lossy(&content).into_owned();
        let ok = match status_of(&content) {
            Some(ok) => ok,
            None => {
                let reason = format!(
                    "the response {} starts with neither +OK nor -ERR",
                    quoted(&content)
                );
                self.malformed(Some(content), &reason);
                return;
            }
        };
        if ok && awaited.is_multi_line() {
            // A message's lines may be as long as the message (the SMTP servers take lines
            // over 1000 octets); listings keep the usual limit.
            if let Awaited::Retr(_) = awaited {
                self.reader
                    .set_line_max(self.config.message_octets_max.saturating_add(2));
            }
            self.multi_line = Some(MultiLine {
                first_line,
                body: Vec::new(),
                lines: 0,
                lines_end_at_lf: !crlf,
                inside_line: false,
            });
            return;
        }
        self.events.push_back(Pop3ClientEvent::ResponseReceived {
            ok,
            first_line: first_line.clone(),
            body_lines: None,
        });
        self.handle_status(awaited, ok, first_line, now_ms);
    }

    /// A single-line response (or a -ERR to a command that may have a multi-line one).
    fn handle_status(&mut self, awaited: Awaited, ok: bool, first_line: String, now_ms: u64) {
        match (awaited, ok) {
            // RFC 2449 5: CAPA says whether the server offers UTF8 (RFC 6856 2), which this
            // user agent takes so that messages with UTF-8 header fields come as they are,
            // and whether a UTF-8 user name may be sent at all.
            (Awaited::Greeting, true) => self.send_command("CAPA", Awaited::Capa, now_ms),
            // A server of RFC 1939 alone: an ASCII user name logs in as RFC 1939 says.
            (Awaited::Capa, false) if self.config.user.is_ascii() => self.send_user(now_ms),
            (Awaited::Capa, false) => self.quit_without_utf8(
                format!(
                    "the server refused CAPA ({first_line}), so it offers no UTF8 capability \
                     for a UTF-8 user name (RFC 2449 5, RFC 6856 2)"
                ),
                now_ms,
            ),
            (Awaited::Utf8, true) => self.send_user(now_ms),
            // RFC 6856 2.1: "The server MAY respond to the "UTF8" command with an -ERR
            // response", and 2.2: with "UTF8 USER" listed the client may use UTF-8 with USER
            // and PASS "before issuing the "UTF8" command". So the login goes on, outside
            // UTF-8 mode: messages with UTF-8 header fields will get -ERR [UTF8].
            (Awaited::Utf8, false) => {
                self.errors.push(format!("UTF8: {first_line}"));
                self.send_user(now_ms);
            }
            (Awaited::Greeting, false) => self.finish(Pop3SessionResult::Refused {
                command: "greeting".into(),
                response: first_line,
            }),
            (Awaited::User, true) => {
                let line = format!("PASS {}", self.config.password);
                self.send(line, "PASS ********".into(), Awaited::Pass, now_ms);
            }
            (Awaited::Pass, true) => self.send_command("STAT", Awaited::Stat, now_ms),
            (Awaited::User | Awaited::Pass, false) => {
                self.send_quit(now_ms);
                self.pending_result = Some(Pop3SessionResult::AuthenticationFailed {
                    response: first_line,
                });
            }
            (Awaited::Stat, true) => {
                // RFC 1939 5: "+OK nn mm"; anything after the two numbers is not ours to read.
                let mut words = first_line.split(' ').skip(1);
                let count = words.next().and_then(|word| word.parse::<u64>().ok());
                let octets = words.next().and_then(|word| word.parse::<u64>().ok());
                match (count, octets) {
                    (Some(count), Some(octets)) => {
                        self.maildrop_size = Some((count, octets));
                        self.send_command("LIST", Awaited::List, now_ms);
                    }
                    _ => self.protocol_error("the STAT response is not \"+OK nn mm\""),
                }
            }
            (Awaited::Stat | Awaited::List, false) => {
                let command = if awaited == Awaited::Stat {
                    "STAT"
                } else {
                    "LIST"
                };
                self.send_quit(now_ms);
                self.pending_result = Some(Pop3SessionResult::Refused {
                    command: command.into(),
                    response: first_line,
                });
            }
            // A server without UIDL (it is optional): the messages have no unique-ids.
            (Awaited::Uidl, false) => self.retrieve_next(0, now_ms),
            (Awaited::Retr(index), false) => {
                self.errors
                    .push(format!("RETR {}: {first_line}", self.listed[index].number));
                self.retrieve_next(index + 1, now_ms);
            }
            (Awaited::Dele(index), ok) => {
                let number = self.listed[index].number;
                if ok {
                    self.marked_for_deletion.push(number);
                } else {
                    self.errors.push(format!("DELE {number}: {first_line}"));
                }
                self.retrieve_next(index + 1, now_ms);
            }
            (Awaited::Quit, ok) => {
                if !ok {
                    // RFC 1939 6: "-ERR some deleted messages not removed".
                    self.errors.push(format!("QUIT: {first_line}"));
                }
                let committed = ok && !self.marked_for_deletion.is_empty();
                let result = self
                    .pending_result
                    .take()
                    .unwrap_or(Pop3SessionResult::Completed);
                self.finish(result);
                if let Some(outcome) = self.outcome.as_mut() {
                    outcome.deletions_committed = committed;
                    outcome.quit_refused = !ok;
                }
            }
            (Awaited::Capa | Awaited::List | Awaited::Uidl | Awaited::Retr(_), true) => {
                debug_assert!(false, "a +OK to a multi-line command is read as multi-line");
            }
        }
    }

    fn handle_multi_line(
        &mut self,
        awaited: Awaited,
        body: Vec<u8>,
        lines_end_at_lf: bool,
        now_ms: u64,
    ) {
        match awaited {
            Awaited::Capa => {
                // RFC 2449 5: one capability per line, a tag and then its arguments, both
                // case-insensitive. RFC 6856 2.2: UTF-8 user names need UTF8 with USER. UTF8
                // goes first, for UTF-8 mode (RFC 6856 2.1).
                let text = String::from_utf8_lossy(&body);
                let utf8_arguments = text.lines().find_map(|line| {
                    let mut words = line.split(' ');
                    let tag = words.next()?;
                    tag.eq_ignore_ascii_case("UTF8").then_some(words)
                });
                let utf8_offered = utf8_arguments.is_some();
                let utf8_user_offered = utf8_arguments
                    .is_some_and(|mut words| words.any(|word| word.eq_ignore_ascii_case("USER")));
                if !self.config.user.is_ascii() && !utf8_user_offered {
                    self.quit_without_utf8(
                        "the server's CAPA listing has no \"UTF8 USER\", so it does not take \
                         UTF-8 user names (RFC 6856 2)"
                            .to_string(),
                        now_ms,
                    );
                } else if utf8_offered {
                    self.send_command("UTF8", Awaited::Utf8, now_ms);
                } else {
                    self.send_user(now_ms);
                }
            }
            Awaited::List => {
                let text = String::from_utf8_lossy(&body);
                let mut beyond_the_cap = 0;
                for line in text.lines() {
                    // RFC 1939 5: "msg size"; more may follow, separated by a space.
                    let mut words = line.split(' ');
                    let number = words.next().and_then(|word| word.parse::<u32>().ok());
                    let size = words.next().and_then(|word| word.parse::<u64>().ok());
                    let (Some(number), Some(octets)) = (number, size) else {
                        self.protocol_error(&format!(
                            "the scan listing line {} is not \"msg size\"",
                            quoted(line.as_bytes())
                        ));
                        return;
                    };
                    if number == 0 || self.listed.iter().any(|listed| listed.number == number) {
                        self.protocol_error(&format!(
                            "the scan listing line {} repeats or misnumbers a message",
                            quoted(line.as_bytes())
                        ));
                        return;
                    }
                    if self.listed.len() < self.config.messages_max {
                        self.listed.push(Listed {
                            number,
                            octets,
                            uid: None,
                        });
                    } else {
                        beyond_the_cap += 1;
                    }
                }
                if beyond_the_cap > 0 {
                    self.events.push_back(Pop3ClientEvent::MessagesLeft {
                        count: beyond_the_cap,
                        reason: format!(
                            "this client retrieves at most {} messages per session; the \
                             others stay on the server",
                            self.config.messages_max
                        ),
                    });
                }
                if self.config.ask_unique_ids && !self.listed.is_empty() {
                    self.send_command("UIDL", Awaited::Uidl, now_ms);
                } else {
                    self.retrieve_next(0, now_ms);
                }
            }
            Awaited::Uidl => {
                let text = String::from_utf8_lossy(&body);
                for line in text.lines() {
                    let mut words = line.split(' ');
                    let number = words.next().and_then(|word| word.parse::<u32>().ok());
                    let uid = words.next().filter(|uid| is_valid_uid(uid));
                    let (Some(number), Some(uid)) = (number, uid) else {
                        self.protocol_error(&format!(
                            "the unique-id listing line {} is not \"msg unique-id\"",
                            quoted(line.as_bytes())
                        ));
                        return;
                    };
                    if let Some(listed) = self.listed.iter_mut().find(|l| l.number == number) {
                        listed.uid = Some(uid.to_string());
                    }
                }
                self.retrieve_next(0, now_ms);
            }
            Awaited::Retr(index) => {
                let Listed { number, uid, .. } = self.listed[index].clone();
                self.events.push_back(Pop3ClientEvent::MessageRetrieved {
                    number,
                    uid: uid.clone(),
                    bytes: body.clone(),
                    lines_end_at_lf,
                });
                self.retrieved.push(RetrievedMessage {
                    number,
                    uid,
                    bytes: body,
                });
                if self.config.delete_after_retrieve {
                    self.send_command(&format!("DELE {number}"), Awaited::Dele(index), now_ms);
                } else {
                    self.retrieve_next(index + 1, now_ms);
                }
            }
            _ => debug_assert!(
                false,
                "only CAPA, LIST, UIDL and RETR are read as multi-line"
            ),
        }
    }

    // ----- commands -----

    /// RETRs the listed message at `index`, or QUITs when none is left.
    fn retrieve_next(&mut self, index: usize, now_ms: u64) {
        // A message LIST says is larger than this client takes stays on the server; the
        // session goes on, and its QUIT still commits the deletions (RFC 1939 6).
        let mut index = index;
        while let Some(listed) = self.listed.get(index) {
            if listed.octets <= self.config.message_octets_max as u64 {
                break;
            }
            let reason = format!(
                "message {} of {} octets is larger than this client takes ({})",
                listed.number, listed.octets, self.config.message_octets_max
            );
            self.errors.push(format!("{reason}; left on the server"));
            self.events
                .push_back(Pop3ClientEvent::MessagesLeft { count: 1, reason });
            index += 1;
        }
        match self.listed.get(index) {
            Some(listed) => {
                let line = format!("RETR {}", listed.number);
                self.send_command(&line, Awaited::Retr(index), now_ms);
            }
            None => self.send_quit(now_ms),
        }
    }

    fn send_user(&mut self, now_ms: u64) {
        let line = format!("USER {}", self.config.user);
        self.send(line.clone(), line, Awaited::User, now_ms);
    }

    fn send_quit(&mut self, now_ms: u64) {
        self.send_command("QUIT", Awaited::Quit, now_ms);
    }

    /// The user name is UTF-8 and the server does not list `UTF8 USER` (RFC 6856 2.2): ending
    /// with QUIT is polite and changes nothing, since no maildrop was opened.
    fn quit_without_utf8(&mut self, reason: String, now_ms: u64) {
        self.send_quit(now_ms);
        self.pending_result = Some(Pop3SessionResult::Utf8UserNotSupported { reason });
    }

    fn send_command(&mut self, line: &str, awaited: Awaited, now_ms: u64) {
        self.send(line.to_string(), line.to_string(), awaited, now_ms);
    }

    fn send(&mut self, line: String, shown: String, awaited: Awaited, now_ms: u64) {
        debug_assert!(line.len() + 2 <= COMMAND_LINE_MAX_OCTETS);
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        self.output.push_back(bytes);
        self.events
            .push_back(Pop3ClientEvent::CommandSent { line: shown });
        self.awaiting = Some(awaited);
        self.deadline_ms = Some(now_ms.saturating_add(self.config.response_timeout_ms));
    }

    // ----- ending -----

    /// The server is not speaking POP3: close at once. Without an answered QUIT nothing is
    /// deleted, so this is always safe.
    fn protocol_error(&mut self, reason: &str) {
        self.malformed(None, reason);
    }

    /// [`Self::protocol_error`], with the status line that could not be read.
    fn malformed(&mut self, status_line: Option<Vec<u8>>, reason: &str) {
        self.events.push_back(Pop3ClientEvent::MalformedResponse {
            status_line,
            reason: reason.to_string(),
        });
        self.finish(Pop3SessionResult::ProtocolError {
            reason: reason.to_string(),
        });
    }

    fn finish(&mut self, result: Pop3SessionResult) {
        if self.outcome.is_some() {
            return;
        }
        // An earlier refusal (bad password, -ERR to LIST) is what the session is about; the
        // way the connection ended after it matters less.
        let result = self.pending_result.take().unwrap_or(result);
        self.awaiting = None;
        self.multi_line = None;
        self.deadline_ms = None;
        self.events.push_back(Pop3ClientEvent::Finished {
            result: result.clone(),
        });
        self.outcome = Some(Pop3ClientOutcome {
            result,
            retrieved: std::mem::take(&mut self.retrieved),
            marked_for_deletion: self.marked_for_deletion.clone(),
            deletions_committed: false,
            quit_refused: false,
            maildrop_size: self.maildrop_size,
            errors: std::mem::take(&mut self.errors),
        });
    }

    fn note_state_change(&mut self, before: Pop3ClientState) {
        let after = self.state();
        if before != after {
            self.events.push_back(Pop3ClientEvent::StateChanged {
                from: before,
                to: after,
            });
        }
    }
}

/// `Some(true)` for `+OK`, `Some(false)` for `-ERR` (each alone or followed by a space),
/// `None` for anything else (RFC 1939 3: status indicators are upper case).
fn status_of(line: &[u8]) -> Option<bool> {
    let followed_by_space_or_end = |rest: &[u8]| rest.is_empty() || rest.first() == Some(&b' ');
    if let Some(rest) = line.strip_prefix(b"+OK") {
        return followed_by_space_or_end(rest).then_some(true);
    }
    if let Some(rest) = line.strip_prefix(b"-ERR") {
        return followed_by_space_or_end(rest).then_some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays a scripted server against the client: each `S:` line (CRLF added) is fed to the
    /// client, and each `C:` line must be the next command the client sent.
    fn play(client: &mut Pop3Client, transcript: &str) {
        client.handle_connected(0);
        let mut sent: VecDeque<String> = VecDeque::new();
        for line in transcript.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(response) = line.strip_prefix("S:") {
                let response = response.strip_prefix(' ').unwrap_or(response);
                client.handle_input(format!("{response}\r\n").as_bytes(), 0);
                while let Some(bytes) = client.poll_output() {
                    sent.push_back(String::from_utf8(bytes).unwrap());
                }
            } else if let Some(command) = line.strip_prefix("C: ") {
                assert_eq!(sent.pop_front(), Some(format!("{command}\r\n")), "{line}");
            } else {
                panic!("not a transcript line: {line:?}");
            }
        }
        assert!(sent.is_empty(), "unmatched commands: {sent:?}");
    }

    /// RFC 6856 2.1: "The server MAY respond to the "UTF8" command with an -ERR response";
    /// 2.2: with "UTF8 USER" in CAPA "the client MAY use UTF-8 characters with a "USER",
    /// "PASS", or "APOP" command; the client MAY do so before issuing the "UTF8" command".
    /// A refused UTF8 is no reason to give up: the login goes on outside UTF-8 mode, and a
    /// message with UTF-8 header fields then gets -ERR [UTF8] (RFC 6856 5) and stays.
    #[test]
    fn utf8_user_name_logs_in_when_utf8_is_refused() {
        let mut client =
            Pop3Client::new(Pop3ClientConfig::new("jos\u{e9}", "jos\u{e9}-pw")).unwrap();
        play(
            &mut client,
            "S: +OK ready
             C: CAPA
             S: +OK
             S: UTF8 USER
             S: .
             C: UTF8
             S: -ERR not today
             C: USER jos\u{e9}
             S: +OK
             C: PASS jos\u{e9}-pw
             S: +OK
             C: STAT
             S: +OK 2 50
             C: LIST
             S: +OK
             S: 1 25
             S: 2 25
             S: .
             C: UIDL
             S: +OK
             S: 1 u1
             S: 2 u2
             S: .
             C: RETR 1
             S: -ERR [UTF8] message 1 has non-ASCII header fields and UTF-8 mode is off
             C: RETR 2
             S: +OK
             S: Subject: two
             S:
             S: .
             C: DELE 2
             S: +OK
             C: QUIT
             S: +OK bye",
        );
        let outcome = client.outcome().unwrap();
        assert_eq!(outcome.result, Pop3SessionResult::Completed);
        assert_eq!(outcome.retrieved.len(), 1);
        assert_eq!(outcome.marked_for_deletion, vec![2]);
        assert_eq!(
            outcome.errors,
            vec![
                "UTF8: -ERR not today".to_string(),
                "RETR 1: -ERR [UTF8] message 1 has non-ASCII header fields and UTF-8 mode is off"
                    .to_string(),
            ]
        );
    }
}
