//! Runs every server transcript in `tests/transcripts/server/*.txt` against `ServerSession`.
//!
//! A transcript is a conversation, one directive per line:
//!
//! ```text
//! # comment                 ignored, as are blank lines
//! @ key value               configuration; only before the first other directive
//! C: text                   the client sends text followed by CRLF
//! C~ text                   the client sends text with no CRLF added
//! S: text                   the next line the server sent, without its CRLF, exactly
//! = StateName               the session's state now (ServerStateKind, e.g. ExpectMail)
//! X: text                   the explanation of the last reply sent contains text
//! X! text                   ... and does not contain text
//! M: text                   a line of the last stored message (text + CRLF); consecutive
//! M~ text                     M: / M~ lines together must equal the whole message
//! E: key value              the last stored message's envelope: from <path>,
//!                             to <path> <path>..., with PROTOCOL, helo NAME, body 7BIT|8BITMIME,
//!                             smtputf8 yes|no, auth USER|none, chunked yes|no, count N
//!                             (messages stored so far), ret FULL|HDRS|none, envid ID|none,
//!                             dsn NOTIFY/ORCPT,... (per recipient, `-` for none)
//! ! wait MS                 the clock moves on MS milliseconds; a due timeout fires
//! ! close                   the client closes the connection
//! ! reconnect               a new session with the same policy (and clock)
//! ! store-hold              the next received message is not stored until a later
//! ! store-ok [QUEUE-ID]       store-ok (250) or
//! ! store-fail REASON         store-fail (451)
//! ! store-fails             the next received message fails to store (451)
//! ```
//!
//! C:, C~, S:, X:, X!, M: and M~ text takes escapes: `\r`, `\n`, `\t`, `\s` (a space, for trailing
//! spaces), `\\` and `\xHH`. Consecutive C lines are sent in one `handle_input` call (a
//! pipelined batch); everything else first delivers the pending bytes and collects the
//! replies. Unless held, each received message is stored at once with the queue id `MSGn`.
//! At the end, every line the server sent must have been matched by an S: line.
//!
//! Configuration keys: `hostname NAME`, `max-size N`, `max-recipients N`, `max-errors N`,
//! `max-auth-failures N`, `max-received N`, `timeout MS`, `bare-line-ending reject|normalize`,
//! `auth on|required`, `user NAME PASSWORD`, `local-domain D`, `mailbox ADDR`,
//! `full-mailbox ADDR`, `mailbox-full permanent`, `greylist MS`, `relay allowed`,
//! `refuse-peer IP`, `peer IP`, `vrfy reveal`, `pending-input-max N`, `held-max N`,
//! `ehlo off` (a server of RFC 821's time), `dsn on` (RFC 3461 offered).
//!
//! Defaults: hostname mx.example.org, peer 192.0.2.10, local domain example.org where every
//! local part exists, the clock starting at 1000000 ms, and the other `ServerConfig::new`
//! defaults.
//!
//! Every reply the session sends must also appear, equal, in a ReplySent event with a
//! non-empty explanation; the runner checks that for every transcript.
#![cfg(not(target_arch = "wasm32"))]

mod transcript_common;

use smtp_lab::smtp::data_in::BareLineEnding;
use smtp_lab::smtp::policy::{PeerInfo, StaticPolicy};
use smtp_lab::smtp::reply::{Reply, ReplyReader};
use smtp_lab::smtp::server::{
    ReceivedMessage, ServerConfig, ServerEvent, ServerSession, StorageOutcome,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs;
use std::path::Path;
use std::rc::Rc;
use transcript_common::{transcript_files, unescape};

type Policy = Rc<RefCell<StaticPolicy>>;

const START_MS: u64 = 1_000_000;

struct Runner {
    config: ServerConfig,
    policy: Policy,
    peer: PeerInfo,
    session: Option<ServerSession<Policy>>,
    now_ms: u64,
    pending: Vec<u8>,
    /// Server output lines not yet matched by S: lines.
    lines: VecDeque<String>,
    /// Output bytes after the last CRLF (must be empty when checked).
    partial: Vec<u8>,
    reader: ReplyReader,
    /// Replies from ReplySent events not yet matched against the output.
    event_replies: VecDeque<Reply>,
    last_explanation: Option<String>,
    messages: Vec<ReceivedMessage>,
    hold_next: bool,
    fail_next: Option<String>,
    held: bool,
    expected_message: Option<Vec<u8>>,
}

impl Runner {
    fn new() -> Self {
        Runner {
            config: ServerConfig::new("mx.example.org"),
            policy: Rc::new(RefCell::new(
                StaticPolicy::new().local_domain("example.org"),
            )),
            peer: PeerInfo::new("192.0.2.10", Some(50000)),
            session: None,
            now_ms: START_MS,
            pending: Vec::new(),
            lines: VecDeque::new(),
            partial: Vec::new(),
            reader: ReplyReader::new(),
            event_replies: VecDeque::new(),
            last_explanation: None,
            messages: Vec::new(),
            hold_next: false,
            fail_next: None,
            held: false,
            expected_message: None,
        }
    }

    fn configure(&mut self, rest: &str) -> Result<(), String> {
        if self.session.is_some() {
            return Err("@ configuration after the session started".into());
        }
        let mut words = rest.split_whitespace();
        let key = words.next().ok_or("empty @ line")?;
        let value = words.next().unwrap_or("");
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
        let policy = std::mem::take(&mut *self.policy.borrow_mut());
        let policy = match key {
            "hostname" => {
                self.config.hostname = value.to_string();
                policy
            }
            "ehlo" if value == "off" => {
                self.config.extensions.ehlo = false;
                policy
            }
            "dsn" if value == "on" => {
                self.config.extensions.dsn = true;
                policy
            }
            "max-size" => {
                self.config.message_size_max_octets = num(value)?;
                policy
            }
            "max-recipients" => {
                self.config.recipients_max = num(value)? as usize;
                policy
            }
            "max-errors" => {
                self.config.errors_max = num(value)? as u32;
                policy
            }
            "max-auth-failures" => {
                self.config.auth_failures_max = num(value)? as u32;
                policy
            }
            "max-received" => {
                self.config.received_headers_max = num(value)? as usize;
                policy
            }
            "held-max" => {
                self.config.message_held_max_octets = num(value)?;
                policy
            }
            "pending-input-max" => {
                self.config.pending_input_max_octets = num(value)? as usize;
                policy
            }
            "timeout" => {
                self.config.idle_timeout_ms = num(value)?;
                policy
            }
            "bare-line-ending" => {
                self.config.bare_line_ending = match value {
                    "reject" => BareLineEnding::Reject,
                    "normalize" => BareLineEnding::Normalize,
                    other => return Err(format!("bad bare-line-ending {other:?}")),
                };
                policy
            }
            "auth" => {
                self.config.auth_enabled = true;
                match value {
                    "on" => policy,
                    "required" => policy.auth_required(true),
                    other => return Err(format!("bad auth {other:?}")),
                }
            }
            "user" => policy.user(value, words.next().ok_or("user needs a password")?),
            "local-domain" => policy.local_domain(value),
            "mailbox" => policy.mailbox(value),
            "full-mailbox" => policy.full_mailbox(value),
            "mailbox-full" if value == "permanent" => policy.mailbox_full_permanent(true),
            "greylist" => policy.greylist(num(value)?),
            "relay" if value == "allowed" => policy.relay_allowed(true),
            "refuse-peer" => policy.refuse_peer(value),
            "vrfy" if value == "reveal" => policy.vrfy_reveals(true),
            "peer" => {
                self.peer = PeerInfo::new(value, Some(50000));
                policy
            }
            "without" => {
                let offered = &mut self.config.extensions;
                match value {
                    "PIPELINING" => offered.pipelining = false,
                    "8BITMIME" => offered.eight_bit_mime = false,
                    "SMTPUTF8" => offered.smtputf8 = false,
                    "CHUNKING" => offered.chunking = false,
                    other => return Err(format!("unknown extension {other:?}")),
                }
                policy
            }
            other => return Err(format!("unknown @ key {other:?}")),
        };
        *self.policy.borrow_mut() = policy;
        Ok(())
    }

    fn session(&mut self) -> &mut ServerSession<Policy> {
        if self.session.is_none() {
            self.session = Some(ServerSession::new(
                self.config.clone(),
                Rc::clone(&self.policy),
                self.peer.clone(),
                self.now_ms,
            ));
        }
        self.session.as_mut().expect("created just above")
    }

    /// Delivers pending client bytes, stores received messages and collects the output.
    fn pump(&mut self) -> Result<(), String> {
        let bytes = std::mem::take(&mut self.pending);
        let now = self.now_ms;
        if !bytes.is_empty() {
            self.session().handle_input(&bytes, now);
        } else {
            self.session();
        }
        loop {
            let mut progressed = false;
            let session = self
                .session
                .as_mut()
                .expect("session exists after session()");
            while let Some(event) = session.poll_event() {
                match event {
                    ServerEvent::ReplySent { reply, explanation } => {
                        if explanation.meaning.is_empty()
                            || explanation.why.is_empty()
                            || explanation.rfc.is_empty()
                        {
                            return Err(format!("reply {reply:?} has an empty explanation"));
                        }
                        self.last_explanation = Some(format!(
                            "{} | {} | {}",
                            explanation.meaning, explanation.why, explanation.rfc
                        ));
                        self.event_replies.push_back(reply);
                    }
                    ServerEvent::MessageReceived { message } => {
                        self.messages.push(*message);
                        if self.hold_next {
                            self.hold_next = false;
                            self.held = true;
                        } else {
                            let outcome = match self.fail_next.take() {
                                Some(reason) => StorageOutcome::Failed { reason },
                                None => StorageOutcome::Stored {
                                    queue_id: Some(format!("MSG{}", self.messages.len())),
                                },
                            };
                            session
                                .message_stored(outcome, now)
                                .map_err(|e| e.to_string())?;
                            progressed = true;
                        }
                    }
                    _ => {}
                }
            }
            if let Some(out) = session.poll_output() {
                self.take_output(&out)?;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok(())
    }

    fn take_output(&mut self, out: &[u8]) -> Result<(), String> {
        self.reader.push(out);
        while let Some(reply) = self.reader.next_reply() {
            let reply = reply.map_err(|e| format!("server sent a malformed reply: {e}"))?;
            match self.event_replies.pop_front() {
                Some(event) if event == reply => {}
                other => {
                    return Err(format!(
                        "reply on the wire {reply:?} does not match the ReplySent event {other:?}"
                    ))
                }
            }
        }
        self.partial.extend_from_slice(out);
        while let Some(end) = self.partial.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.partial.drain(..end + 2).collect();
            let line = &line[..line.len() - 2];
            if line.iter().any(|&b| b == b'\r' || b == b'\n') {
                return Err(format!("server sent a bare CR or LF: {line:?}"));
            }
            self.lines
                .push_back(String::from_utf8_lossy(line).into_owned());
        }
        Ok(())
    }

    fn check_message(&mut self) -> Result<(), String> {
        let Some(expected) = self.expected_message.take() else {
            return Ok(());
        };
        let message = self
            .messages
            .last()
            .ok_or("M: but no message was received")?;
        if message.data != expected {
            return Err(format!(
                "stored message differs:\n  expected {:?}\n  got      {:?}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&message.data)
            ));
        }
        Ok(())
    }

    fn directive(&mut self, line: &str) -> Result<(), String> {
        if let Some(rest) = line.strip_prefix("C: ").or(line.strip_prefix("C:")) {
            self.session();
            let mut bytes = unescape(rest)?;
            bytes.extend_from_slice(b"\r\n");
            self.pending.extend_from_slice(&bytes);
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("C~ ") {
            self.session();
            self.pending.extend_from_slice(&unescape(rest)?);
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("@ ") {
            return self.configure(rest);
        }
        let is_message_line = line.starts_with("M: ") || line.starts_with("M~ ") || line == "M:";
        if !is_message_line {
            self.check_message()?;
        }
        self.pump()?;
        if let Some(rest) = line.strip_prefix("S: ").or(line.strip_prefix("S:")) {
            let expected = String::from_utf8_lossy(&unescape(rest)?).into_owned();
            return match self.lines.pop_front() {
                Some(got) if got == expected => Ok(()),
                Some(got) => Err(format!(
                    "expected server line\n  {expected:?}\ngot\n  {got:?}"
                )),
                None => Err(format!("expected server line {expected:?}, got nothing")),
            };
        }
        if let Some(rest) = line.strip_prefix("= ") {
            let state = self.session().state().to_string();
            return if state == rest.trim() {
                Ok(())
            } else {
                Err(format!("expected state {}, got {state}", rest.trim()))
            };
        }
        let explanation_check = line
            .strip_prefix("X: ")
            .map(|rest| (rest, true))
            .or_else(|| line.strip_prefix("X! ").map(|rest| (rest, false)));
        if let Some((rest, contains)) = explanation_check {
            let explanation = self.last_explanation.clone().ok_or("X but no reply yet")?;
            let wanted = String::from_utf8_lossy(&unescape(rest)?).into_owned();
            return if explanation.contains(&wanted) == contains {
                Ok(())
            } else if contains {
                Err(format!(
                    "explanation {explanation:?} does not contain {wanted:?}"
                ))
            } else {
                Err(format!("explanation {explanation:?} contains {wanted:?}"))
            };
        }
        if is_message_line {
            let (text, crlf) = match line.strip_prefix("M~ ") {
                Some(text) => (text, false),
                None => (line.strip_prefix("M: ").unwrap_or(""), true),
            };
            let expected = self.expected_message.get_or_insert_with(Vec::new);
            expected.extend_from_slice(&unescape(text)?);
            if crlf {
                expected.extend_from_slice(b"\r\n");
            }
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("E: ") {
            return self.check_envelope(rest.trim());
        }
        if let Some(rest) = line.strip_prefix("! ") {
            let mut words = rest.split_whitespace();
            let command = words.next().unwrap_or("");
            let argument = words.collect::<Vec<_>>().join(" ");
            match command {
                "wait" => {
                    let ms: u64 = argument.parse().map_err(|_| "bad wait")?;
                    self.now_ms += ms;
                    let now = self.now_ms;
                    let session = self.session();
                    if session.poll_timeout().is_some_and(|t| t <= now) {
                        session.handle_timeout(now);
                    }
                }
                "close" => self.session().handle_peer_closed(),
                "reconnect" => {
                    if !self.lines.is_empty() {
                        return Err(format!("unmatched server output {:?}", self.lines));
                    }
                    self.session = None;
                    self.reader = ReplyReader::new();
                    self.session();
                }
                "store-hold" => self.hold_next = true,
                "store-fails" => self.fail_next = Some(argument),
                "store-ok" | "store-fail" => {
                    if !self.held {
                        return Err("no held message".into());
                    }
                    self.held = false;
                    let outcome = if command == "store-ok" {
                        StorageOutcome::Stored {
                            queue_id: (!argument.is_empty()).then_some(argument),
                        }
                    } else {
                        StorageOutcome::Failed { reason: argument }
                    };
                    let now = self.now_ms;
                    self.session()
                        .message_stored(outcome, now)
                        .map_err(|e| e.to_string())?;
                }
                other => return Err(format!("unknown ! directive {other:?}")),
            }
            return self.pump();
        }
        Err(format!("unknown directive {line:?}"))
    }

    fn check_envelope(&self, rest: &str) -> Result<(), String> {
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if key == "count" {
            let got = self.messages.len().to_string();
            return if got == value {
                Ok(())
            } else {
                Err(format!("expected {value} messages, got {got}"))
            };
        }
        let envelope = &self.messages.last().ok_or("E: but no message")?.envelope;
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let got = match key {
            "from" => envelope.reverse_path.to_string(),
            "to" => envelope
                .forward_paths
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            "with" => envelope.protocol.as_str().to_string(),
            "helo" => envelope.helo_name.clone(),
            "body" => match envelope.body {
                smtp_lab::smtp::server::BodyType::SevenBit => "7BIT".into(),
                smtp_lab::smtp::server::BodyType::EightBitMime => "8BITMIME".into(),
            },
            "smtputf8" => yes_no(envelope.smtputf8),
            "chunked" => yes_no(envelope.chunked),
            "ret" => envelope
                .dsn_return
                .map_or("none".into(), |ret| ret.wire().to_string()),
            "envid" => envelope
                .envelope_id
                .clone()
                .unwrap_or_else(|| "none".into()),
            "dsn" => envelope
                .recipient_dsn
                .iter()
                .map(|r| {
                    let notify = r.notify.map_or("-".into(), |n| n.wire());
                    let orcpt = r
                        .orcpt
                        .as_ref()
                        .map_or("-".into(), |o| format!("{};{}", o.address_type, o.address));
                    format!("{notify}/{orcpt}")
                })
                .collect::<Vec<_>>()
                .join(","),
            "auth" => envelope
                .authenticated_as
                .clone()
                .unwrap_or_else(|| "none".into()),
            other => return Err(format!("unknown E: key {other:?}")),
        };
        if got == value {
            Ok(())
        } else {
            Err(format!("envelope {key}: expected {value:?}, got {got:?}"))
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.check_message()?;
        self.pump()?;
        if !self.lines.is_empty() {
            return Err(format!(
                "server output not matched by S: lines: {:?}",
                self.lines
            ));
        }
        if !self.partial.is_empty() {
            return Err(format!(
                "server output without CRLF at the end: {:?}",
                self.partial
            ));
        }
        if !self.event_replies.is_empty() {
            return Err(format!(
                "ReplySent events with no bytes sent: {:?}",
                self.event_replies
            ));
        }
        Ok(())
    }
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut runner = Runner::new();
    let mut directives = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        directives += 1;
        runner
            .directive(trimmed)
            .map_err(|e| format!("{}:{}: {trimmed}\n  {e}", path.display(), index + 1))?;
    }
    if directives == 0 {
        return Err(format!("{}: no directives", path.display()));
    }
    runner
        .finish()
        .map_err(|e| format!("{}: at the end: {e}", path.display()))
}

#[test]
fn server_transcripts() {
    let files = transcript_files("server");
    let mut failures = Vec::new();
    for file in &files {
        if let Err(error) = run_file(file) {
            failures.push(error);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} server transcripts failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn runner_catches_a_wrong_expectation() {
    let dir = std::env::temp_dir().join(format!("smtp-lab-runner-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir is writable");
    let file = dir.join("wrong.txt");
    fs::write(
        &file,
        "S: 220 mx.example.org ESMTP SMTP Lab\nC: NOOP\nS: 500 nope\n",
    )
    .expect("temp file is writable");
    let error = run_file(&file).expect_err("a wrong S: line must fail");
    assert!(error.contains("wrong.txt:3"), "{error}");
    fs::write(&file, "S: 220 mx.example.org ESMTP SMTP Lab\nC: NOOP\n")
        .expect("temp file is writable");
    let error = run_file(&file).expect_err("unmatched output must fail");
    assert!(error.contains("not matched"), "{error}");
    let _ = fs::remove_dir_all(&dir);
}
