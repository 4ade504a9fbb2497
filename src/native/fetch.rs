//! `smtp-lab fetch`: the POP3 engine's client session (RFC 1939) over a real TCP connection:
//! logs in, lists, retrieves every message and, with `--delete`, deletes them, printing the
//! conversation, as a recipient's user agent does.

use super::maildir::MaildirStore;
use super::net::{read_until, Readout};
use super::output::CheckedStdout;
use super::send::{check_server, connect};
use super::transcript::{print_bytes_line, print_data, print_line, print_note};
use crate::escape::visible;
use crate::pop3::client::{
    Pop3Client, Pop3ClientConfig, Pop3ClientEvent, Pop3ClientState, Pop3SessionResult,
};
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub server: String,
    pub user: String,
    pub password: String,
    /// Where each retrieved message is stored: `DIR/<user>/new/`.
    pub maildir: Option<PathBuf>,
    /// DELE each message once it is stored, so that QUIT removes it from the server.
    pub delete: bool,
}

/// Exit status: every message was retrieved (and deleted, if asked) and QUIT was answered.
const EXIT_DONE: u8 = 0;
/// Exit status: the login was refused, a message could not be had or stored, or the session
/// failed.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn run(options: FetchOptions) -> ExitCode {
    if let Err(error) = check_server(&options.server) {
        eprintln!("smtp-lab fetch: {error}");
        return ExitCode::from(EXIT_USAGE);
    }
    // A message deleted on the server must be somewhere else first.
    if options.delete && options.maildir.is_none() {
        eprintln!(
            "smtp-lab fetch: --delete removes the messages from the server: give --maildir DIR \
             to keep them"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let mut config = Pop3ClientConfig::new(options.user.clone(), options.password.clone());
    config.delete_after_retrieve = options.delete;
    let client = match Pop3Client::new(config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("smtp-lab fetch: --user cannot be sent: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let store = options
        .maildir
        .as_ref()
        .map(|dir| MaildirStore::new(dir, "smtp-lab-fetch"));
    if let Some(store) = &store {
        if let Err(error) = store.check_writable() {
            eprintln!(
                "smtp-lab fetch: cannot store mail in {}: {error}",
                store.root().display()
            );
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let stream = match connect(&options.server) {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!(
                "smtp-lab fetch: cannot connect to {}: {error}",
                options.server
            );
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut out = CheckedStdout::lock();
    let storage = store.as_ref().map(|store| (store, options.user.as_str()));
    let fetched = drive(client, stream, storage, &mut out);
    print_note(&mut out, None, &fetched.summary());
    // It may quote a server's words (a -ERR's text), control characters and all.
    let failure = fetched.failure().map(visible);
    if let Some(error) = out.finish() {
        eprintln!(
            "smtp-lab fetch: cannot write the transcript ({error}); {}",
            failure.as_deref().unwrap_or("every message was fetched")
        );
    } else if let Some(failure) = &failure {
        eprintln!("smtp-lab fetch: {failure}");
    }
    ExitCode::from(if failure.is_some() {
        EXIT_FAILED
    } else {
        EXIT_DONE
    })
}

/// Why a session does not know whether its marked messages were removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemovalUnknown {
    QuitRefused,
    QuitUnanswered,
}

/// What a session achieved.
struct Fetched {
    result: Option<Pop3SessionResult>,
    retrieved: usize,
    stored: usize,
    /// Messages removed on the server: marked with DELE and committed by QUIT's +OK.
    deleted: usize,
    /// Messages marked with DELE whose removal is not known: QUIT was sent, so the server
    /// entered its UPDATE state (RFC 1939 6), but answered -ERR ("some deleted messages not
    /// removed") or nothing.
    removal_unknown: Option<(usize, RemovalUnknown)>,
    /// The -ERR responses the session went past, and a message that could not be stored.
    problems: Vec<String>,
}

impl Fetched {
    fn summary(&self) -> String {
        let count = |n: usize| format!("{n} message{}", crate::plural(n as u64));
        let deleted = match self.removal_unknown {
            Some((marked, why)) => format!(
                "{marked} marked for deletion, but {}: some or all may still be on the server",
                match why {
                    RemovalUnknown::QuitRefused => "QUIT was answered -ERR",
                    RemovalUnknown::QuitUnanswered => "QUIT was not answered",
                }
            ),
            None => format!("{} deleted on the server", self.deleted),
        };
        format!(
            "{} retrieved, {} stored, {deleted}",
            count(self.retrieved),
            self.stored,
        )
    }

    /// What went wrong, for stderr and the exit status; `None` when nothing did.
    fn failure(&self) -> Option<String> {
        let why = match &self.result {
            Some(Pop3SessionResult::Completed) => return self.problems.first().cloned(),
            Some(Pop3SessionResult::Refused { command, response }) => {
                format!("{command} refused: {response}")
            }
            Some(Pop3SessionResult::AuthenticationFailed { response }) => {
                format!("login refused: {response}")
            }
            Some(Pop3SessionResult::Utf8UserNotSupported { reason }) => reason.clone(),
            Some(Pop3SessionResult::ConnectionClosed {
                state: Pop3ClientState::ExpectQuitReply,
            }) => "the connection closed before QUIT was answered".to_string(),
            Some(Pop3SessionResult::ConnectionClosed { state }) => {
                format!(
                    "the connection closed {}; nothing was deleted without QUIT",
                    state.moment()
                )
            }
            Some(Pop3SessionResult::TimedOut { state }) => {
                format!("the server did not answer: timed out {}", state.moment())
            }
            Some(Pop3SessionResult::ProtocolError { reason }) => {
                format!("the server's answer is not POP3: {reason}")
            }
            None => self
                .problems
                .first()
                .cloned()
                .unwrap_or_else(|| "the session did not finish".to_string()),
        };
        Some(why)
    }
}

/// Runs the session over the stream until it finishes, printing the transcript and storing
/// each message in `storage` (a store and the user's Maildir in it) as it arrives. A message
/// is stored before the client says anything more, so before its DELE: when it cannot be,
/// the connection is closed without QUIT, and the server deletes nothing (RFC 1939 6).
fn drive(
    mut client: Pop3Client,
    mut stream: TcpStream,
    storage: Option<(&MaildirStore, &str)>,
    out: &mut impl Write,
) -> Fetched {
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;
    let _ = stream.set_nodelay(true);
    client.handle_connected(now_ms());
    let mut fetched = Fetched {
        result: None,
        retrieved: 0,
        stored: 0,
        deleted: 0,
        removal_unknown: None,
        problems: Vec::new(),
    };
    let mut buffer = vec![0u8; 16 * 1024];
    // Whether the response due is RETR's, whose lines are the message, shown as such.
    let mut retrieving = false;
    'session: loop {
        while let Some(event) = client.poll_event() {
            if let Pop3ClientEvent::MessageRetrieved {
                number,
                uid,
                bytes,
                lines_end_at_lf,
            } = &event
            {
                fetched.retrieved += 1;
                print_data(out, None, "S:", &as_sent(bytes, *lines_end_at_lf));
                let name = match uid {
                    Some(uid) => format!("message {number} (unique-id {uid})"),
                    None => format!("message {number}"),
                };
                let Some((store, mailbox)) = storage else {
                    print_note(out, None, &format!("{name}: {} octets", bytes.len()));
                    continue;
                };
                match store.deliver(mailbox, bytes) {
                    Ok(path) => {
                        fetched.stored += 1;
                        print_note(out, None, &format!("{name} stored in {}", path.display()));
                    }
                    Err(error) => {
                        let problem = format!(
                            "cannot store {name}: {error}; the connection is closed without \
                             QUIT, so the server deletes nothing (RFC 1939 6)"
                        );
                        print_note(out, None, &problem);
                        fetched.problems.push(problem);
                        break 'session;
                    }
                }
            } else {
                if let Pop3ClientEvent::CommandSent { line } = &event {
                    retrieving = line.starts_with("RETR ");
                }
                print_event(out, &event, retrieving);
            }
        }
        while let Some(bytes) = client.poll_output() {
            if let Err(error) = stream.write_all(&bytes) {
                print_note(
                    out,
                    None,
                    &format!("the connection broke while sending: {error}"),
                );
                client.handle_peer_closed();
                continue 'session;
            }
        }
        if client.is_finished() {
            break;
        }
        match read_until(&mut stream, &mut buffer, client.poll_timeout(), now_ms()) {
            Readout::Bytes(read) => client.handle_input(&buffer[..read], now_ms()),
            Readout::Closed => client.handle_peer_closed(),
            Readout::TimedOut => client.handle_timeout(now_ms()),
            Readout::Interrupted => {}
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if let Some(outcome) = client.outcome() {
        fetched.result = Some(outcome.result.clone());
        if outcome.deletions_committed {
            fetched.deleted = outcome.marked_for_deletion.len();
        } else if !outcome.marked_for_deletion.is_empty() {
            let marked = outcome.marked_for_deletion.len();
            let quit_unanswered = matches!(
                outcome.result,
                Pop3SessionResult::ConnectionClosed {
                    state: Pop3ClientState::ExpectQuitReply
                } | Pop3SessionResult::TimedOut {
                    state: Pop3ClientState::ExpectQuitReply
                }
            );
            if outcome.quit_refused {
                fetched.removal_unknown = Some((marked, RemovalUnknown::QuitRefused));
            } else if quit_unanswered {
                fetched.removal_unknown = Some((marked, RemovalUnknown::QuitUnanswered));
            }
        }
        fetched.problems.extend(outcome.errors.iter().cloned());
    }
    fetched
}

/// A retrieved message as the server sent it (RFC 1939 3): its lines with a leading "."
/// doubled, then the "." line that ends the response. A line ends where the client read one
/// to end, at CRLF, or at any LF from a server that writes no CR (`lines_end_at_lf`), so a
/// line's stuffing is shown where the client removed it.
fn as_sent(message: &[u8], lines_end_at_lf: bool) -> Vec<u8> {
    let mut lines = message.to_vec();
    let ended =
        lines.is_empty() || lines.ends_with(b"\r\n") || (lines_end_at_lf && lines.ends_with(b"\n"));
    if !ended {
        lines.extend_from_slice(b"\r\n");
    }
    let mut sent = Vec::with_capacity(lines.len() + 8);
    crate::pop3::wire::write_dot_stuffed(&mut sent, &lines, lines_end_at_lf);
    sent
}

fn print_event(out: &mut impl Write, event: &Pop3ClientEvent, retrieving: bool) {
    match event {
        // The engine masks the password.
        Pop3ClientEvent::CommandSent { line } => print_line(out, None, "C:", line),
        Pop3ClientEvent::ResponseReceived {
            first_line,
            body_lines,
            ..
        } => {
            print_line(out, None, "S:", first_line);
            // A message's lines are shown when it is retrieved; a listing's are counted.
            if let Some(lines) = body_lines.filter(|_| !retrieving) {
                print_note(
                    out,
                    None,
                    &format!(
                        "{lines} line{} follow{}, then \".\"",
                        crate::plural(lines as u64),
                        if lines == 1 { "s" } else { "" }
                    ),
                );
            }
        }
        Pop3ClientEvent::MessagesLeft { count, reason } => print_note(
            out,
            None,
            &format!(
                "{count} message{} left on the server: {reason}",
                crate::plural(*count as u64)
            ),
        ),
        Pop3ClientEvent::MalformedResponse {
            status_line,
            reason,
        } => {
            if let Some(line) = status_line {
                print_bytes_line(out, None, "S:", line);
            }
            print_note(out, None, &format!("not POP3: {reason}"))
        }
        Pop3ClientEvent::TimedOut { state } => {
            print_note(out, None, &format!("timed out {}", state.moment()))
        }
        Pop3ClientEvent::PeerClosed => print_note(out, None, "the server closed the connection"),
        Pop3ClientEvent::Finished { .. }
        | Pop3ClientEvent::StateChanged { .. }
        | Pop3ClientEvent::MessageRetrieved { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retrieved_message_is_shown_as_the_server_sent_it() {
        assert_eq!(
            as_sent(b"Subject: x\r\n\r\n.dot\r\n..two\r\nbare\nLF\r\n", false),
            b"Subject: x\r\n\r\n..dot\r\n...two\r\nbare\nLF\r\n.\r\n"
        );
        // From a server whose lines end at CRLF, a "." after a bare LF is inside a line and
        // was not unstuffed; from one that writes no CR, it starts a line.
        assert_eq!(as_sent(b"a\n.b\r\n", false), b"a\n.b\r\n.\r\n");
        assert_eq!(as_sent(b"a\n.b\n", true), b"a\n..b\n.\r\n");
        assert_eq!(as_sent(b".a", false), b"..a\r\n.\r\n");
        assert_eq!(as_sent(b"no end\n", false), b"no end\n\r\n.\r\n");
        assert_eq!(as_sent(b"no end", false), b"no end\r\n.\r\n");
        assert_eq!(as_sent(b"", false), b".\r\n");
    }

    #[test]
    fn the_summary_says_when_quit_left_deletions_unknown() {
        let mut fetched = Fetched {
            result: Some(Pop3SessionResult::Completed),
            retrieved: 2,
            stored: 2,
            deleted: 2,
            removal_unknown: None,
            problems: Vec::new(),
        };
        assert_eq!(
            fetched.summary(),
            "2 messages retrieved, 2 stored, 2 deleted on the server"
        );
        fetched.deleted = 0;
        fetched.removal_unknown = Some((2, RemovalUnknown::QuitRefused));
        assert_eq!(
            fetched.summary(),
            "2 messages retrieved, 2 stored, 2 marked for deletion, but QUIT was answered -ERR: \
             some or all may still be on the server"
        );
        fetched.removal_unknown = Some((1, RemovalUnknown::QuitUnanswered));
        assert_eq!(
            fetched.summary(),
            "2 messages retrieved, 2 stored, 1 marked for deletion, but QUIT was not answered: \
             some or all may still be on the server"
        );
        fetched.result = Some(Pop3SessionResult::ConnectionClosed {
            state: Pop3ClientState::ExpectQuitReply,
        });
        assert_eq!(
            fetched.failure().as_deref(),
            Some("the connection closed before QUIT was answered")
        );
    }
}
