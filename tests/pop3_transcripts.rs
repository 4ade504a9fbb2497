#![cfg(not(target_arch = "wasm32"))]
//! Runs every POP3 server transcript in `tests/transcripts/pop3/*.txt` against `Pop3Server`.
//!
//! A transcript is the test: a new case is a new file. Each file runs twice, once feeding each
//! block of client lines in one piece and once one byte at a time, and both runs must pass.
//!
//! Format, one directive per line (`#` comments and blank lines are ignored):
//!
//! ```text
//! @ mailbox alice secret       a user and password with an empty maildrop
//! @ message a1 Subject: x\r\n  a message (unique-id, then the bytes with escapes \r \n \t \\
//!                              \xHH) appended to the last mailbox's maildrop
//! @ in-use alice               another session holds alice's maildrop
//! @ config idle_timeout_ms 5   a Pop3ServerConfig field: idle_timeout_ms, auth_failures_max,
//!                              commands_max, maildrop_messages_max, implementation
//!
//! S: +OK ready                 the next line the server must have sent (without CRLF);
//!                              `S:` alone is an empty line
//! C: USER alice                a line the client sends, CRLF added; consecutive C:/B: lines
//!                              are fed to the server together (pipelined)
//! B: NOOP\nSTAT\r\n            raw client bytes with escapes, nothing added
//! = Transaction                the server's state (Pop3State) now
//! ! closed                     the client closes the connection
//! ! timeout 600000             the clock (ms, starts at 0) moves to this time and the
//!                              server's timeout handler runs
//! ! deleted a1 a2              the session entered UPDATE and asked to delete exactly these
//!                              unique-ids, in this order (`! deleted` alone: none)
//! ! no-update                  the session has not entered UPDATE
//! ! remaining alice a2 a3      alice's maildrop in the store now holds exactly these
//!                              unique-ids (the runner applies every MaildropUpdated event)
//! ```
//!
//! Before client bytes are fed and at the end of the file, every line the server sent must
//! have been matched by an `S:` line. All `@` lines come first.

mod transcript_common;

use std::fmt::Write as _;
use std::path::Path;
use transcript_common::{transcript_files, unescape};

use smtp_lab::pop3::maildrop::{InMemoryStore, StoredMessage};
use smtp_lab::pop3::server::{Pop3Server, Pop3ServerConfig, Pop3ServerEvent, Pop3State};

#[derive(Clone, Copy, PartialEq, Eq)]
enum FeedMode {
    Whole,
    ByteByByte,
}

struct Runner<'a> {
    file: &'a Path,
    mode: FeedMode,
    server: Pop3Server<InMemoryStore>,
    /// Server bytes not yet matched by `S:` lines.
    sent: Vec<u8>,
    pending_input: Vec<u8>,
    now_ms: u64,
    updates: Vec<Vec<String>>,
    log: String,
}

impl Runner<'_> {
    fn fail(&self, line_number: usize, message: &str) -> String {
        format!(
            "{}:{} ({} feed): {}\n  server output not yet matched: {:?}\n  events so far:\n{}",
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
        while let Some(bytes) = self.server.poll_output() {
            self.sent.extend_from_slice(&bytes);
        }
        while let Some(event) = self.server.poll_event() {
            let _ = writeln!(self.log, "    {event:?}");
            if let Pop3ServerEvent::MaildropUpdated { user, deleted_uids } = event {
                self.server.store_mut().remove(&user, &deleted_uids);
                self.updates.push(deleted_uids);
            }
        }
    }

    fn flush_input(&mut self, line_number: usize) -> Result<(), String> {
        if self.pending_input.is_empty() {
            return Ok(());
        }
        if !self.sent.is_empty() {
            return Err(self.fail(
                line_number,
                "the server sent more than the transcript expects before this input",
            ));
        }
        let input = std::mem::take(&mut self.pending_input);
        match self.mode {
            FeedMode::Whole => self.server.handle_input(&input, self.now_ms),
            FeedMode::ByteByByte => {
                for byte in input {
                    self.server.handle_input(&[byte], self.now_ms);
                }
            }
        }
        self.collect();
        Ok(())
    }

    /// Takes the next CRLF-ended line of server output.
    fn next_server_line(&mut self) -> Option<String> {
        let end = self.sent.windows(2).position(|pair| pair == b"\r\n")?;
        let line: Vec<u8> = self.sent.drain(..end + 2).take(end).collect();
        Some(String::from_utf8_lossy(&line).into_owned())
    }
}

fn apply_setup(
    store: &mut InMemoryStore,
    config: &mut Pop3ServerConfig,
    last_user: &mut Option<String>,
    rest: &str,
) -> Result<(), String> {
    let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
    match key {
        "mailbox" => {
            let (user, password) = value
                .split_once(' ')
                .ok_or("mailbox needs user and password")?;
            store.add_user(user, password);
            *last_user = Some(user.to_string());
        }
        "message" => {
            let user = last_user.as_deref().ok_or("message before any mailbox")?;
            let (uid, text) = value.split_once(' ').unwrap_or((value, ""));
            store.deliver(user, StoredMessage::new(uid, unescape(text)?));
        }
        "in-use" => store.set_in_use(value, true),
        "config" => {
            let (field, setting) = value
                .split_once(' ')
                .ok_or("config needs a field and a value")?;
            let number = || {
                setting
                    .parse::<u64>()
                    .map_err(|_| format!("config {field} needs a number"))
            };
            match field {
                "idle_timeout_ms" => config.idle_timeout_ms = number()?,
                "auth_failures_max" => config.auth_failures_max = number()? as u32,
                "commands_max" => config.commands_max = number()? as u32,
                "maildrop_messages_max" => config.maildrop_messages_max = number()? as usize,
                "implementation" => config.implementation = Some(setting.to_string()),
                _ => return Err(format!("unknown config field {field:?}")),
            }
        }
        _ => return Err(format!("unknown setup directive {key:?}")),
    }
    Ok(())
}

fn parse_state(name: &str) -> Option<Pop3State> {
    [
        Pop3State::ExpectUser,
        Pop3State::ExpectPass,
        Pop3State::Transaction,
        Pop3State::Update,
        Pop3State::Closed,
    ]
    .into_iter()
    .find(|state| state.name() == name)
}

fn run(file: &Path, text: &str, mode: FeedMode) -> Result<(), String> {
    let mut store = InMemoryStore::new();
    let mut config = Pop3ServerConfig::new("pop.example.org");
    let mut last_user = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, line)) = lines.peek() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            lines.next();
            continue;
        }
        let Some(rest) = line.strip_prefix("@ ") else {
            break;
        };
        let (index, _) = lines.next().expect("peeked");
        apply_setup(&mut store, &mut config, &mut last_user, rest)
            .map_err(|e| format!("{}:{}: {e}", file.display(), index + 1))?;
    }
    let mut runner = Runner {
        file,
        mode,
        server: Pop3Server::new(config, store, 0),
        sent: Vec::new(),
        pending_input: Vec::new(),
        now_ms: 0,
        updates: Vec::new(),
        log: String::new(),
    };
    runner.collect();
    let mut directives = 0;
    for (index, raw) in lines {
        let line_number = index + 1;
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        directives += 1;
        if let Some(command) = line.strip_prefix("C: ") {
            runner.pending_input.extend_from_slice(command.as_bytes());
            runner.pending_input.extend_from_slice(b"\r\n");
            continue;
        }
        if let Some(raw_bytes) = line.strip_prefix("B: ") {
            let bytes = unescape(raw_bytes).map_err(|e| runner.fail(line_number, &e))?;
            runner.pending_input.extend_from_slice(&bytes);
            continue;
        }
        runner.flush_input(line_number)?;
        if line == "S:" || line.starts_with("S: ") {
            let expected = line.get(3..).unwrap_or("");
            match runner.next_server_line() {
                Some(actual) if actual == expected => {}
                Some(actual) => {
                    return Err(runner.fail(
                        line_number,
                        &format!("expected server line {expected:?}, got {actual:?}"),
                    ))
                }
                None => {
                    return Err(runner.fail(
                        line_number,
                        &format!("expected server line {expected:?}, the server sent nothing"),
                    ))
                }
            }
        } else if let Some(name) = line.strip_prefix("= ") {
            let expected = parse_state(name.trim())
                .ok_or_else(|| runner.fail(line_number, &format!("unknown state {name:?}")))?;
            let actual = runner.server.state();
            if actual != expected {
                return Err(runner.fail(
                    line_number,
                    &format!("expected state {expected}, got {actual}"),
                ));
            }
        } else if let Some(directive) = line.strip_prefix("! ") {
            let mut words = directive.split_whitespace();
            match words.next() {
                Some("closed") => {
                    runner.server.handle_peer_closed();
                    runner.collect();
                }
                Some("timeout") => {
                    let ms = words
                        .next()
                        .and_then(|word| word.parse().ok())
                        .ok_or_else(|| runner.fail(line_number, "timeout needs ms"))?;
                    runner.now_ms = ms;
                    runner.server.handle_timeout(ms);
                    runner.collect();
                }
                Some("deleted") => {
                    let expected: Vec<String> = words.map(str::to_string).collect();
                    match runner.updates.last() {
                        Some(actual) if *actual == expected => {}
                        Some(actual) => {
                            return Err(runner.fail(
                                line_number,
                                &format!("expected deletions {expected:?}, got {actual:?}"),
                            ))
                        }
                        None => {
                            return Err(runner.fail(
                                line_number,
                                "expected an UPDATE, the session did not enter it",
                            ))
                        }
                    }
                }
                Some("no-update") => {
                    if !runner.updates.is_empty() {
                        return Err(runner.fail(line_number, "the session entered UPDATE"));
                    }
                }
                Some("remaining") => {
                    let user = words
                        .next()
                        .ok_or_else(|| runner.fail(line_number, "remaining needs a user"))?;
                    let expected: Vec<&str> = words.collect();
                    let actual: Vec<&str> = runner
                        .server
                        .store()
                        .maildrop(user)
                        .map(|maildrop| {
                            maildrop
                                .messages
                                .iter()
                                .map(|message| message.uid.as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    if actual != expected {
                        return Err(runner.fail(
                            line_number,
                            &format!("expected {user}'s maildrop {expected:?}, got {actual:?}"),
                        ));
                    }
                }
                _ => {
                    return Err(
                        runner.fail(line_number, &format!("unknown directive {directive:?}"))
                    )
                }
            }
        } else if line.starts_with("@ ") {
            return Err(runner.fail(line_number, "@ lines must come before everything else"));
        } else {
            return Err(runner.fail(line_number, &format!("unknown line {line:?}")));
        }
    }
    if directives == 0 {
        return Err(format!("{}: no directives after the setup", file.display()));
    }
    let last_line = text.lines().count();
    runner.flush_input(last_line)?;
    if !runner.sent.is_empty() {
        return Err(runner.fail(
            last_line,
            "the server sent more than the transcript expects at the end",
        ));
    }
    Ok(())
}

#[test]
fn pop3_server_transcripts() {
    let files = transcript_files("pop3");
    assert!(
        !files.is_empty(),
        "no transcripts in tests/transcripts/pop3"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for mode in [FeedMode::Whole, FeedMode::ByteByByte] {
            if let Err(failure) = run(file, &text, mode) {
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcript runs failed:\n\n{}",
        failures.len(),
        files.len() * 2,
        failures.join("\n\n")
    );
    println!(
        "{} POP3 transcripts passed, each fed whole and byte by byte",
        files.len()
    );
}
