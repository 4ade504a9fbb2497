//! Runs every client transcript in `tests/transcripts/client/*.txt` against `ClientSession`.
//!
//! A transcript is the test: a new case is a new file. Each file runs twice, once feeding each
//! block of server lines in one piece and once one byte at a time, and both runs must pass.
//!
//! Format, one directive per line (`#` comments and blank lines are ignored):
//!
//! ```text
//! @ from alice@example.org     reverse-path; `@ from <>` (or `@ from` alone) for a bounce
//! @ to bob@example.net         a forward-path; repeat for more
//! @ helo client.example        the EHLO/HELO name (default client.example)
//! @ message Subject: x\r\n     appended to the message; escapes \r \n \t \\ \xHH; repeatable
//! @ pipelining on|off          prefer PIPELINING when advertised (default on)
//! @ auth alice secret          credentials for AUTH PLAIN
//! @ per-transaction 2          recipients_per_transaction_max
//! @ transactions 3             transactions_max
//! @ timeout rcpt_ms 1000       one of the ClientTimeouts fields
//! @ notify SUCCESS,DELAY       DSN (RFC 3461): NOTIFY for every recipient
//! @ ret HDRS                   DSN: RET (FULL or HDRS)
//! @ envid a+b                  DSN: ENVID, as given (the client sends it as xtext)
//! @ orcpt on                   DSN: ORCPT=rfc822;ADDRESS on each RCPT
//! @ chunk 20                   bdat_chunk_octets: BDAT chunks of at most 20 octets
//!
//! S: 220 mx.example ESMTP      a line the server sends, CRLF added; consecutive S:/B: lines
//!                              are fed to the client together
//! B: 250 x\n                   raw server bytes with escapes, nothing added
//! C: EHLO client.example       the next line the client must have sent, compared exactly;
//!                              it must end in CRLF, and the client must not have sent more
//!                              before the next S:, B:, X: or T: line or the end of the file
//! D: a\r\n.b                  octets the client must have sent next, exactly, with escapes
//!                              (a BDAT chunk, which need not end a line)
//! = ExpectMailReply            the client's state (ClientStateKind) now
//! R: bob@example.net accepted 250 [2.0.0] [local]
//!                              the outcome for a recipient: accepted, temporary or
//!                              permanent, then optionally the reply code, the enhanced
//!                              status and `local` (the client wrote the reply itself)
//! X: closed                    the server closes the connection
//! T: 300000                    the clock (ms, starts at 0) moves to this time and the client's
//!                              timeout handler runs
//! ```
//!
//! All `@` lines come first. When the session has finished, every recipient must have an `R:`
//! line somewhere in the file.
#![cfg(not(target_arch = "wasm32"))]

mod transcript_common;

use std::fmt::Write as _;
use std::path::Path;
use transcript_common::{transcript_files, unescape};

use smtp_lab::smtp::client::{
    ClientConfig, ClientSession, ClientStateKind, DsnParameters, DsnReturn, Envelope, Notify,
    RecipientStatus, ReplyOrigin,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum FeedMode {
    Whole,
    ByteByByte,
}

struct Runner<'a> {
    file: &'a Path,
    mode: FeedMode,
    session: ClientSession,
    sent: Vec<u8>,
    now_ms: u64,
    pending_input: Vec<u8>,
    log: String,
}

impl Runner<'_> {
    fn fail(&self, line_number: usize, message: &str) -> String {
        format!(
            "{}:{} ({} feed): {}\n  client output not yet matched: {:?}\n  events so far:\n{}",
            self.file.display(),
            line_number,
            if self.mode == FeedMode::Whole {
                "whole"
            } else {
                "byte-by-byte"
            },
            message,
            String::from_utf8_lossy(&self.sent),
            self.log
        )
    }

    fn collect(&mut self) {
        while let Some(bytes) = self.session.poll_output() {
            self.sent.extend_from_slice(&bytes);
        }
        while let Some(event) = self.session.poll_event() {
            let _ = writeln!(self.log, "    {event:?}");
        }
    }

    fn flush_input(&mut self) {
        if self.pending_input.is_empty() {
            return;
        }
        let input = std::mem::take(&mut self.pending_input);
        match self.mode {
            FeedMode::Whole => self.session.handle_input(&input, self.now_ms),
            FeedMode::ByteByByte => {
                for byte in input {
                    self.session.handle_input(&[byte], self.now_ms);
                }
            }
        }
        self.collect();
    }

    fn expect_nothing_sent(&self, line_number: usize) -> Result<(), String> {
        if self.sent.is_empty() {
            Ok(())
        } else {
            Err(self.fail(
                line_number,
                "the client sent more than the transcript expects",
            ))
        }
    }
}

struct Setup {
    reverse_path: String,
    forward_paths: Vec<String>,
    message: Vec<u8>,
    config: ClientConfig,
    dsn: DsnParameters,
}

fn apply_setup(setup: &mut Setup, rest: &str) -> Result<(), String> {
    let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
    match key {
        "from" => {
            setup.reverse_path = if value == "<>" {
                String::new()
            } else {
                value.to_string()
            }
        }
        "to" => setup.forward_paths.push(value.to_string()),
        "helo" => setup.config.helo_name = value.to_string(),
        "message" => setup.message.extend(unescape(value)?),
        "pipelining" => {
            setup.config.prefer_pipelining = match value {
                "on" => true,
                "off" => false,
                _ => return Err(format!("pipelining on|off, not {value:?}")),
            }
        }
        "auth" => {
            let (user, password) = value
                .split_once(' ')
                .ok_or("auth needs user and password")?;
            setup.config.credentials = Some((user.to_string(), password.to_string()));
        }
        "per-transaction" => {
            setup.config.recipients_per_transaction_max = value
                .parse()
                .map_err(|_| "per-transaction needs a number")?
        }
        "transactions" => {
            setup.config.transactions_max =
                value.parse().map_err(|_| "transactions needs a number")?
        }
        "timeout" => {
            let (field, ms) = value.split_once(' ').ok_or("timeout needs field and ms")?;
            let ms: u64 = ms.parse().map_err(|_| "timeout needs a number of ms")?;
            let timeouts = &mut setup.config.timeouts;
            let slot = match field {
                "greeting_ms" => &mut timeouts.greeting_ms,
                "mail_ms" => &mut timeouts.mail_ms,
                "rcpt_ms" => &mut timeouts.rcpt_ms,
                "data_initiation_ms" => &mut timeouts.data_initiation_ms,
                "data_block_ms" => &mut timeouts.data_block_ms,
                "data_termination_ms" => &mut timeouts.data_termination_ms,
                "other_command_ms" => &mut timeouts.other_command_ms,
                _ => return Err(format!("unknown timeout {field:?}")),
            };
            *slot = ms;
        }
        "notify" => setup.dsn.notify = Some(Notify::parse(value)?),
        "ret" => {
            setup.dsn.ret = Some(match value {
                "FULL" => DsnReturn::Full,
                "HDRS" => DsnReturn::Headers,
                _ => return Err(format!("ret FULL|HDRS, not {value:?}")),
            })
        }
        "envid" => setup.dsn.envid = Some(value.to_string()),
        "orcpt" => setup.dsn.orcpt = value == "on",
        "chunk" => {
            setup.config.bdat_chunk_octets =
                Some(value.parse().map_err(|_| "chunk needs a number")?)
        }
        _ => return Err(format!("unknown setup line @ {key}")),
    }
    Ok(())
}

fn check_recipient(runner: &Runner, line_number: usize, spec: &str) -> Result<String, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [path, class, rest @ ..] = words.as_slice() else {
        return Err(runner.fail(line_number, "R: needs a path and a class"));
    };
    let Some(outcome) = runner.session.outcome() else {
        return Err(runner.fail(line_number, "R: but the session has not finished"));
    };
    let Some(result) = outcome.recipient(path) else {
        return Err(runner.fail(line_number, &format!("no outcome for {path}")));
    };
    let actual_class = match result.status {
        RecipientStatus::Accepted(_) => "accepted",
        RecipientStatus::TemporaryFailure(_) => "temporary",
        RecipientStatus::PermanentFailure(_) => "permanent",
    };
    let reply = result.status.reply();
    let describe = format!(
        "{actual_class} {} ({:?})",
        String::from_utf8_lossy(&reply.to_wire()).trim_end(),
        result.reply_origin
    );
    if actual_class != *class {
        return Err(runner.fail(
            line_number,
            &format!("{path}: expected {class}, got {describe}"),
        ));
    }
    for word in rest {
        let matches = if *word == "local" {
            result.reply_origin == ReplyOrigin::Client
        } else if word.contains('.') {
            reply.enhanced.map(|e| e.to_string()).as_deref() == Some(*word)
        } else {
            reply.code.to_string() == *word
        };
        if !matches {
            return Err(runner.fail(
                line_number,
                &format!("{path}: expected {word}, got {describe}"),
            ));
        }
    }
    Ok(path.to_string())
}

fn run_transcript(file: &Path, text: &str, mode: FeedMode) -> Result<(), String> {
    let mut setup = Setup {
        reverse_path: String::new(),
        forward_paths: Vec::new(),
        message: Vec::new(),
        config: ClientConfig::new("client.example"),
        dsn: DsnParameters::default(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim_end();
        if line.is_empty() || line.starts_with('#') {
            index += 1;
            continue;
        }
        let Some(rest) = line.strip_prefix("@ ") else {
            break;
        };
        apply_setup(&mut setup, rest)
            .map_err(|e| format!("{}:{}: {e}", file.display(), index + 1))?;
        index += 1;
    }
    let session = ClientSession::new(
        setup.config,
        Envelope {
            dsn: setup.dsn,
            reverse_path: setup.reverse_path,
            forward_paths: setup.forward_paths.clone(),
        },
        setup.message,
    )
    .map_err(|e| format!("{}: setup refused: {e}", file.display()))?;
    let mut runner = Runner {
        file,
        mode,
        session,
        sent: Vec::new(),
        now_ms: 0,
        pending_input: Vec::new(),
        log: String::new(),
    };
    runner.session.handle_connected(0);
    runner.collect();
    let mut recipients_checked = Vec::new();
    let mut directives = 0;
    for (offset, raw) in lines[index..].iter().enumerate() {
        let line_number = index + offset + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        directives += 1;
        let is_input = line.starts_with("S:") || line.starts_with("B:");
        if !is_input {
            runner.flush_input();
        }
        if let Some(text) = line.strip_prefix("S: ").or(line.strip_prefix("S:")) {
            if runner.pending_input.is_empty() {
                runner.expect_nothing_sent(line_number)?;
            }
            runner.pending_input.extend_from_slice(text.as_bytes());
            runner.pending_input.extend_from_slice(b"\r\n");
        } else if let Some(text) = line.strip_prefix("B: ") {
            if runner.pending_input.is_empty() {
                runner.expect_nothing_sent(line_number)?;
            }
            let bytes = unescape(text).map_err(|e| runner.fail(line_number, &e))?;
            runner.pending_input.extend(bytes);
        } else if let Some(expected) = line.strip_prefix("C: ").or(line.strip_prefix("C:")) {
            let Some(end) = runner.sent.windows(2).position(|pair| pair == b"\r\n") else {
                return Err(runner.fail(
                    line_number,
                    &format!("expected the client to send {expected:?}"),
                ));
            };
            let sent_line: Vec<u8> = runner.sent.drain(..end + 2).collect();
            let sent_line = &sent_line[..end];
            if sent_line.contains(&b'\r') || sent_line.contains(&b'\n') {
                return Err(runner.fail(line_number, "the client sent a bare CR or LF"));
            }
            if sent_line != expected.as_bytes() {
                return Err(runner.fail(
                    line_number,
                    &format!(
                        "expected the client to send {expected:?}, it sent {:?}",
                        String::from_utf8_lossy(sent_line)
                    ),
                ));
            }
        } else if let Some(text) = line.strip_prefix("D: ") {
            let expected = unescape(text).map_err(|e| runner.fail(line_number, &e))?;
            if !runner.sent.starts_with(&expected) {
                return Err(runner.fail(
                    line_number,
                    &format!(
                        "expected the client to send the octets {:?}",
                        String::from_utf8_lossy(&expected)
                    ),
                ));
            }
            runner.sent.drain(..expected.len());
        } else if let Some(state) = line.strip_prefix("= ") {
            let actual: ClientStateKind = runner.session.state();
            if actual.name() != state.trim() {
                return Err(runner.fail(
                    line_number,
                    &format!("expected state {}, the client is in {actual}", state.trim()),
                ));
            }
        } else if let Some(spec) = line.strip_prefix("R: ") {
            recipients_checked.push(check_recipient(&runner, line_number, spec)?);
        } else if line == "X: closed" {
            runner.expect_nothing_sent(line_number)?;
            runner.session.handle_peer_closed();
            runner.collect();
        } else if let Some(time) = line.strip_prefix("T: ") {
            runner.expect_nothing_sent(line_number)?;
            runner.now_ms = time
                .trim()
                .parse()
                .map_err(|_| runner.fail(line_number, "T: needs a time in ms"))?;
            runner.session.handle_timeout(runner.now_ms);
            runner.collect();
        } else {
            return Err(runner.fail(line_number, &format!("unknown line {line:?}")));
        }
    }
    if directives == 0 {
        return Err(format!("{}: no directives after the setup", file.display()));
    }
    runner.flush_input();
    runner.expect_nothing_sent(lines.len())?;
    if runner.session.is_finished() {
        for path in &setup.forward_paths {
            if !recipients_checked.contains(path) {
                return Err(runner.fail(
                    lines.len(),
                    &format!("the session finished but no R: line checks {path}"),
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn client_transcripts() {
    let files = transcript_files("client");
    assert!(
        !files.is_empty(),
        "no transcripts in tests/transcripts/client"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        for mode in [FeedMode::Whole, FeedMode::ByteByByte] {
            if let Err(failure) = run_transcript(file, &text, mode) {
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} client transcript runs failed:\n\n{}",
        failures.len(),
        files.len() * 2,
        failures.join("\n\n")
    );
}
