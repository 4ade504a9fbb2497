//! `smtp-lab send`: composes a message and delivers it over a real TCP connection with the
//! engine's client session, printing the transcript and what happened to each recipient.

use super::net::{read_until, Readout};
use super::output::CheckedStdout;
use super::transcript::{
    print_bytes_line, print_chunk, print_data, print_line, print_note, print_reply, printable,
};
use crate::escape::visible;
use crate::mail::compose::{
    compose, envelope_address, Attachment, ComposeError, ComposeRequest, ATTACHMENTS_MAX,
    ATTACHMENTS_MAX_OCTETS,
};
use crate::smtp::address::{distinct_recipients, Domain};
use crate::smtp::client::{
    ClientConfig, ClientEvent, ClientSession, DsnParameters, Envelope, RecipientOutcome,
    RecipientStatus, ReplyOrigin, SessionOutcome,
};
use crate::smtp::dot::dot_stuff;
use crate::smtp::explain::meaning;
use crate::smtp::reply::Reply;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for the TCP connection itself.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body or attachment file read from disk.
const INPUT_FILE_MAX_OCTETS: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub server: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body_file: Option<PathBuf>,
    pub attach: Vec<PathBuf>,
    pub helo: String,
    pub auth: Option<(String, String)>,
    pub no_pipelining: bool,
    /// Send with BDAT (RFC 3030) in chunks of at most this many octets where the server
    /// offers CHUNKING.
    pub bdat_chunk_octets: Option<usize>,
    pub eight_bit_body: bool,
    /// Delivery status notifications to ask for (RFC 3461).
    pub dsn: DsnParameters,
}

/// Exit status: every recipient accepted.
const EXIT_ALL_ACCEPTED: u8 = 0;
/// Exit status: a recipient was refused, or the session failed.
const EXIT_NOT_ALL_ACCEPTED: u8 = 1;
/// Exit status: the command line or its input files are wrong.
const EXIT_USAGE: u8 = 2;

pub fn run(options: SendOptions) -> ExitCode {
    // A malformed --server is a usage error (exit 2), found before the body is read from
    // standard input; only a well-formed address that cannot be reached is a failure (exit 1).
    if let Err(error) = check_server(&options.server)
        .and_then(|()| check_helo(&options.helo))
        .and_then(|()| check_subject(&options.subject))
    {
        eprintln!("smtp-lab send: {error}");
        return ExitCode::from(EXIT_USAGE);
    }
    let message = match build_message(&options) {
        Ok(message) => message,
        Err(error) => {
            eprintln!("smtp-lab send: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let envelope = Envelope {
        dsn: options.dsn.clone(),
        reverse_path: envelope_address(&options.from).into_owned(),
        forward_paths: distinct_recipients(
            options
                .to
                .iter()
                .chain(&options.cc)
                .chain(&options.bcc)
                .map(|written| envelope_address(written)),
        ),
    };
    let mut config = ClientConfig::new(options.helo.clone());
    config.credentials = options.auth.clone();
    config.prefer_pipelining = !options.no_pipelining;
    config.bdat_chunk_octets = options.bdat_chunk_octets;
    // The transcript shows the data as the session sends it.
    let sent_data = SentData::new(&message, options.bdat_chunk_octets.is_some());
    let session = match ClientSession::new(config, envelope, message) {
        Ok(session) => session,
        Err(error) => {
            eprintln!("smtp-lab send: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stream = match connect(&options.server) {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!(
                "smtp-lab send: cannot connect to {}: {error}",
                options.server
            );
            return ExitCode::from(EXIT_NOT_ALL_ACCEPTED);
        }
    };
    let mut out = CheckedStdout::lock();
    let sent = drive(session, stream, &sent_data, &mut out);
    print_outcome(&mut out, &sent);
    // The status says what became of the message, whatever became of the transcript: a
    // script that took a lost transcript for a failure would send the message again.
    let (status, failures) = if sent.outcome.all_accepted() {
        (EXIT_ALL_ACCEPTED, None)
    } else {
        (EXIT_NOT_ALL_ACCEPTED, Some(failure_summary(&sent)))
    };
    if let Some(error) = out.finish() {
        let what = failures.unwrap_or_else(|| "every recipient was accepted".to_string());
        eprintln!("smtp-lab send: cannot write the transcript ({error}); {what}");
    } else if let Some(failures) = failures {
        // The transcript on stdout says what happened; stderr gets one line for scripts and
        // people who only look there (a 421 greeting, a dropped connection, a refusal).
        eprintln!("smtp-lab send: {failures}");
    }
    ExitCode::from(status)
}

/// Recipients a failure summary names; the rest are counted.
const SUMMARY_NAMES_MAX: usize = 3;

/// One line about the recipients that did not get the message, naming the first few of them.
fn failure_summary(sent: &Sent) -> String {
    let outcome = &sent.outcome;
    let failed: Vec<_> = outcome
        .recipients
        .iter()
        .filter(|r| !r.status.is_accepted())
        .collect();
    if failed.is_empty() {
        return "every recipient was accepted".to_string();
    }
    let named: Vec<String> = failed
        .iter()
        .take(SUMMARY_NAMES_MAX)
        .map(|recipient| recipient_result(sent, recipient))
        .collect();
    let more = match failed.len().saturating_sub(SUMMARY_NAMES_MAX) {
        0 => String::new(),
        more => format!("; and {more} more (see the transcript)"),
    };
    // A message that may have been kept is not said to be refused.
    let verb = if failed.iter().all(|r| sent.fate_unknown(&r.forward_path)) {
        "not confirmed"
    } else {
        "not accepted"
    };
    format!(
        "{} of {} recipient(s) {verb}; {}{more}",
        failed.len(),
        outcome.recipients.len(),
        named.join("; "),
    )
}

/// A reply in one line: its code, its enhanced code if it has one, its text if it has any.
/// A server's words are shown as its `S:` line shows them: they go to a terminal, where an
/// escape sequence would act, and a backslash it sent is told apart from an escape. This
/// client's own words may quote a server's line, escaped already: only what is not yet is.
fn reply_summary(reply: &Reply, origin: ReplyOrigin) -> String {
    let mut summary = reply.code.to_string();
    if let Some(code) = reply.enhanced {
        summary.push_str(&format!(" {code}"));
    }
    let text = reply.text();
    if !text.is_empty() {
        summary.push(' ');
        summary.push_str(&match origin {
            ReplyOrigin::Server => printable(&text),
            ReplyOrigin::Client => visible(text),
        });
    }
    summary
}

fn read_limited(path: &PathBuf) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    read_at_most(file, &path.display().to_string())
}

/// All of `input`, refused when it holds more than [`INPUT_FILE_MAX_OCTETS`].
fn read_at_most(input: impl Read, name: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    input
        .take(INPUT_FILE_MAX_OCTETS + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > INPUT_FILE_MAX_OCTETS {
        return Err(format!(
            "{name} is larger than {INPUT_FILE_MAX_OCTETS} octets"
        ));
    }
    Ok(bytes)
}

fn build_message(options: &SendOptions) -> Result<Vec<u8>, String> {
    let body = match &options.body_file {
        Some(path) => read_limited(path)?,
        None => read_at_most(io::stdin(), "the body on standard input")?,
    };
    let body_text = String::from_utf8(body).map_err(|_| {
        "the body is not UTF-8 text (send binary content with --attach)".to_string()
    })?;
    // The composer's limits on attachments, checked as the files are read: a long list of
    // large files is refused at the first past the limit, not after all are in memory.
    if options.attach.len() > ATTACHMENTS_MAX {
        return Err(ComposeError::TooManyAttachments {
            count: options.attach.len(),
            max: ATTACHMENTS_MAX,
        }
        .to_string());
    }
    let mut attachments = Vec::new();
    let mut attachment_octets = 0usize;
    for path in &options.attach {
        let filename = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".to_string());
        let bytes = read_limited(path)?;
        attachment_octets = attachment_octets.saturating_add(bytes.len());
        if attachment_octets > ATTACHMENTS_MAX_OCTETS {
            return Err(format!(
                "the attachments up to {} come to {attachment_octets} octets, more than \
                 {ATTACHMENTS_MAX_OCTETS}",
                path.display()
            ));
        }
        attachments.push(Attachment {
            filename,
            content_type: None,
            bytes,
        });
    }
    // The native command line may read the clock; the composer below it does not.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let request = ComposeRequest {
        from: options.from.clone(),
        to: options.to.clone(),
        cc: options.cc.clone(),
        bcc: options.bcc.clone(),
        subject: options.subject.clone(),
        body_text,
        attachments,
        date_unix_s: now.as_secs() as i64,
        utc_offset_min: 0,
        message_id_token: format!("{}.{}", now.as_nanos(), std::process::id()),
        hostname: options.helo.clone(),
        eight_bit_body: options.eight_bit_body,
    };
    compose(&request).map_err(|error| error.to_string())
}

/// Checks that `server` is `HOST:PORT` (`[IPv6]:PORT` for an IPv6 address) with a port from
/// 1 to 65535, without resolving the host.
pub(super) fn check_server(server: &str) -> Result<(), String> {
    let usage = |why: &str| format!("--server takes HOST:PORT, not {server:?} ({why})");
    let Some((host, port)) = server.rsplit_once(':') else {
        return Err(usage("no port"));
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .filter(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
            .ok_or_else(|| usage("bad IPv6 address"))?,
        None if host.contains(':') => return Err(usage("put an IPv6 address in brackets")),
        None => host,
    };
    if host.is_empty() {
        return Err(usage("no host"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(usage("spaces in the host"));
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(()),
        _ => Err(usage("the port is a number from 1 to 65535")),
    }
}

/// Checks that `subject` can be a header field's text: one line (RFC 5322 2.2), so no
/// control character but the tab, nor a Unicode line or paragraph separator. Refused rather
/// than changed, as the scenario format refuses it: the user sees what would be sent.
fn check_subject(subject: &str) -> Result<(), String> {
    match subject
        .chars()
        .find(|&c| c != '\t' && crate::sim::scenario::breaks_a_line(c))
    {
        Some(c) => Err(format!(
            "--subject holds {c:?}: a header field's text is one line (RFC 5322 2.2)"
        )),
        None => Ok(()),
    }
}

/// Checks that `helo` is what EHLO must carry: a domain name, in ASCII (A-labels, RFC 6531
/// 3.7.1), or an address literal (RFC 5321 4.1.1.1, 4.1.3).
fn check_helo(helo: &str) -> Result<(), String> {
    let why = if !helo.is_ascii() {
        "write an internationalised name with A-labels (xn--...), RFC 6531 3.7.1".to_string()
    } else if let Ok(address) = helo.parse::<std::net::IpAddr>() {
        // All-digit labels pass the grammar of a domain, but no host name looks like an IPv4
        // address (RFC 1123 2.1): an address goes in brackets (RFC 5321 4.1.3).
        let literal = match address {
            std::net::IpAddr::V4(v4) => format!("[{v4}]"),
            std::net::IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        format!("an IP address is written as an address literal, {literal} (RFC 5321 4.1.3)")
    } else {
        match Domain::parse(helo) {
            Ok(_) => return Ok(()),
            Err(error) => error.to_string(),
        }
    };
    Err(format!(
        "--helo takes a domain name or an address literal, not {helo:?}: {why}"
    ))
}

pub(super) fn connect(server: &str) -> io::Result<TcpStream> {
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for address in server.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// What a session achieved, and what the client cannot know of it.
pub struct Sent {
    pub outcome: SessionOutcome,
    /// The recipients whose message went out whole but got no reply: the server may have
    /// kept it (RFC 5321 6.1), so their failure is no sure one.
    pub fate_unknown: Vec<String>,
}

impl Sent {
    fn fate_unknown(&self, forward_path: &str) -> bool {
        self.fate_unknown.iter().any(|path| path == forward_path)
    }
}

/// Runs the session over the stream until it finishes, printing the transcript.
/// Runs `session` over `stream`, writing its transcript to `out`, which shows the message's
/// data (`data`, made from the message the session was given) as it goes out.
pub fn drive(
    mut session: ClientSession,
    mut stream: TcpStream,
    data: &SentData,
    out: &mut impl Write,
) -> Sent {
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;
    let _ = stream.set_nodelay(true);
    // RFC 5321 4.5.3.2.5: each send may take 3 minutes; a server that reads nothing for
    // longer is given up on, as one that does not reply is.
    let data_block_ms = session.timeouts().data_block_ms;
    let _ = stream.set_write_timeout(Some(Duration::from_millis(data_block_ms)));
    session.handle_connected(now_ms());
    let mut buffer = vec![0u8; 16 * 1024];
    let mut transcript = Transcript {
        dsn_asked: !session.envelope().dsn.is_empty(),
        ..Transcript::default()
    };
    loop {
        let mut send_failure = None;
        let mut sent_any = false;
        while let Some(bytes) = session.poll_output() {
            sent_any = true;
            // The chunk of this write is shown as sent, whole, even when the write fails:
            // the note after the events says how much of it went out.
            if bytes.starts_with(b"BDAT ") || bytes.starts_with(b"bdat ") {
                transcript.chunks_written += 1;
            }
            if let Err(failure) = send_all(&mut stream, &bytes) {
                let reason = if failure.timed_out {
                    format!(
                        "sending stalled: the connection took nothing more for {} s (RFC 5321 \
                         4.5.3.2.5)",
                        data_block_ms / 1000
                    )
                } else {
                    format!("the connection broke while sending ({})", failure.error)
                };
                session.handle_send_failed(&reason);
                // The send that failed held the end of the message, or one queued behind it
                // (pipelined chunks) did: the server cannot have taken it (RFC 5321 4.1.1.4,
                // RFC 3030 2: only the final dot, or the last chunk, completes it).
                transcript.message_cut_short |= ends_message_data(&bytes);
                while let Some(unsent) = session.poll_output() {
                    transcript.message_cut_short |= ends_message_data(&unsent);
                }
                send_failure = Some(format!(
                    "{reason}: {} of the {} octets of the last send went out",
                    failure.sent,
                    bytes.len()
                ));
                break;
            }
        }
        // The replies are waited for from now, when the writes are done (a large message
        // may take long to go out).
        if sent_any && send_failure.is_none() {
            session.handle_sent(now_ms());
        }
        while let Some(event) = session.poll_event() {
            print_event(out, &event, data, &mut transcript);
        }
        // After the lines of the send that failed, which the events above printed whole.
        if let Some(note) = send_failure {
            print_note(out, None, &note);
        }
        if session.is_finished() {
            break;
        }
        match read_until(&mut stream, &mut buffer, session.poll_timeout(), now_ms()) {
            Readout::Bytes(read) => {
                transcript.replies.feed(&buffer[..read]);
                session.handle_input(&buffer[..read], now_ms())
            }
            Readout::Closed => session.handle_peer_closed(),
            Readout::TimedOut => session.handle_timeout(now_ms()),
            Readout::Interrupted => {}
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    while let Some(event) = session.poll_event() {
        print_event(out, &event, data, &mut transcript);
    }
    Sent {
        outcome: session
            .outcome()
            .cloned()
            .expect("a finished client session always has an outcome"),
        fate_unknown: transcript.fate_unknown,
    }
}

/// How a send to the server failed: after how many of its octets, and why.
struct SendFailure {
    sent: usize,
    timed_out: bool,
    error: io::Error,
}

/// Writes all of `bytes`, counting what went out before a write failed or timed out.
fn send_all(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), SendFailure> {
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => {
                return Err(SendFailure {
                    sent,
                    timed_out: false,
                    error: io::ErrorKind::WriteZero.into(),
                })
            }
            Ok(written) => sent += written,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                let timed_out = matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                );
                return Err(SendFailure {
                    sent,
                    timed_out,
                    error,
                });
            }
        }
    }
    Ok(())
}

/// The server's replies as they came, line by line, for the transcript: the client's reader
/// parses them, and a reply rebuilt from what it read would hide what a server that does
/// not follow the rules sent (an enhanced code on one line of a reply and not another, a
/// missing space).
#[derive(Default)]
struct WireReplies {
    /// Replies complete on the wire, each its lines without their line ends.
    complete: VecDeque<Vec<Vec<u8>>>,
    /// The lines of the reply not yet complete.
    current: Vec<Vec<u8>>,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// Octets of that line past [`Self::LINE_KEPT_MAX`], not kept.
    partial_dropped: usize,
    /// Whether the last octet of that line, kept or not, is a CR: its line end's.
    partial_ends_in_cr: bool,
}

impl WireReplies {
    /// Longest part of a line kept: the client refuses a longer line anyway.
    const LINE_KEPT_MAX: usize = 8 * 1024;

    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.push_to_line(&bytes[..end]);
            let line = self.take_line();
            // RFC 5321 4.2.1: "NNN-" goes on, anything else ends the reply.
            let last = line.get(3) != Some(&b'-');
            self.current.push(line);
            if last {
                self.complete.push_back(std::mem::take(&mut self.current));
            }
            bytes = &bytes[end + 1..];
        }
        self.push_to_line(bytes);
    }

    fn push_to_line(&mut self, bytes: &[u8]) {
        let room = Self::LINE_KEPT_MAX.saturating_sub(self.partial.len());
        let kept = bytes.len().min(room);
        self.partial.extend_from_slice(&bytes[..kept]);
        self.partial_dropped += bytes.len() - kept;
        if let Some(&last) = bytes.last() {
            self.partial_ends_in_cr = last == b'\r';
        }
    }

    /// The line gathered so far, without its CR, with what was not kept said at its end.
    fn take_line(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.partial);
        if std::mem::take(&mut self.partial_ends_in_cr) {
            match self.partial_dropped {
                0 => {
                    line.pop();
                }
                _ => self.partial_dropped -= 1,
            }
        }
        if self.partial_dropped > 0 {
            line.extend_from_slice(
                format!(" [... {} more octets]", self.partial_dropped).as_bytes(),
            );
            self.partial_dropped = 0;
        }
        line
    }

    /// The lines of the next reply, as they came.
    fn next_reply(&mut self) -> Option<Vec<Vec<u8>>> {
        self.complete.pop_front()
    }

    /// Every line not yet shown, the start of an unfinished one included.
    fn rest(&mut self) -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = self.complete.drain(..).flatten().collect();
        lines.append(&mut self.current);
        if !self.partial.is_empty() || self.partial_dropped > 0 {
            lines.push(self.take_line());
        }
        lines
    }
}

/// What the transcript keeps from event to event.
#[derive(Default)]
struct Transcript {
    replies: WireReplies,
    /// The message's data went out (after DATA, or its last chunk), and the reply to it has
    /// not come.
    data_unanswered: bool,
    /// BDAT writes attempted so far, and chunks shown: a chunk queued behind a write that
    /// failed was never sent.
    chunks_written: usize,
    chunks_shown: usize,
    /// Replies owed to chunks that went out: they come in order, the last chunk's last.
    chunk_replies_owed: usize,
    /// A send that held the end of the message's data failed, so the end did not go out.
    message_cut_short: bool,
    /// See [`Sent::fate_unknown`].
    fate_unknown: Vec<String>,
    /// The sender asked for delivery status notifications (RFC 3461).
    dsn_asked: bool,
}

/// Whether `bytes`, one send, ends a message's data: DATA's final dot, or a `BDAT ... LAST`
/// chunk (RFC 5321 4.1.1.4, RFC 3030 2).
fn ends_message_data(bytes: &[u8]) -> bool {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    bytes.ends_with(b"\r\n.\r\n")
        || (first_line.len() >= 5
            && first_line[..5].eq_ignore_ascii_case(b"BDAT ")
            && first_line
                .trim_ascii_end()
                .to_ascii_uppercase()
                .ends_with(b" LAST"))
}

/// A message's data as a session sends it, for the transcript: after DATA dot-stuffed, in
/// BDAT chunks as it is (with CRLF line endings). Only the form the session will use is made
/// at once; a session that would send chunks to a server without CHUNKING sends DATA, whose
/// form is then made from the other.
pub struct SentData {
    dot_stuffed: std::cell::OnceCell<Vec<u8>>,
    as_is: Option<Vec<u8>>,
}

impl SentData {
    /// `chunks`: whether the session was given a BDAT chunk size.
    pub fn new(message: &[u8], chunks: bool) -> SentData {
        if chunks {
            SentData {
                dot_stuffed: std::cell::OnceCell::new(),
                as_is: Some(crate::smtp::dot::normalized(message).into_owned()),
            }
        } else {
            SentData {
                dot_stuffed: std::cell::OnceCell::from(dot_stuff(message)),
                as_is: None,
            }
        }
    }

    fn dot_stuffed(&self) -> &[u8] {
        self.dot_stuffed.get_or_init(|| {
            crate::smtp::dot::dot_stuff_normalized(self.as_is.as_deref().unwrap_or_default())
        })
    }

    fn chunk(&self, offset: usize, octets: usize) -> &[u8] {
        let as_is = self.as_is.as_deref().unwrap_or_default();
        as_is
            .get(offset..offset.saturating_add(octets))
            .unwrap_or_default()
    }

    /// The message's last octets (two at most) before the chunk at `offset`.
    fn tail_before(&self, offset: usize) -> &[u8] {
        let as_is = self.as_is.as_deref().unwrap_or_default();
        let end = offset.min(as_is.len());
        &as_is[end.saturating_sub(2)..end]
    }
}

fn print_event(
    out: &mut impl Write,
    event: &ClientEvent,
    data: &SentData,
    transcript: &mut Transcript,
) {
    let wire = &mut transcript.replies;
    match event {
        ClientEvent::CommandSent { line } => print_line(out, None, "C:", line),
        ClientEvent::DataSent { .. } => {
            print_data(out, None, "C:", data.dot_stuffed());
            transcript.data_unanswered = !transcript.message_cut_short;
        }
        ClientEvent::ChunkSent {
            offset,
            octets,
            last,
        } => {
            transcript.chunks_shown += 1;
            if transcript.chunks_shown > transcript.chunks_written {
                print_note(
                    out,
                    None,
                    "not sent: the connection failed before this chunk's turn",
                );
                return;
            }
            print_chunk(out, data.chunk(*offset, *octets), data.tail_before(*offset));
            transcript.chunk_replies_owed += 1;
            // Only the last chunk completes the message (RFC 3030 2): before it, the server
            // cannot have kept it.
            if *last {
                transcript.data_unanswered = !transcript.message_cut_short;
            }
        }
        ClientEvent::ReplyReceived { reply } => {
            // Pipelined chunks are answered in order: the message's reply is the one to the
            // last chunk, after those to the chunks before it.
            if transcript.chunk_replies_owed > 0 {
                transcript.chunk_replies_owed -= 1;
            }
            if transcript.chunk_replies_owed == 0 {
                transcript.data_unanswered = false;
            }
            match wire.next_reply() {
                Some(lines) => {
                    for line in lines {
                        print_bytes_line(out, None, "S:", &line);
                    }
                }
                // Every reply the client reads came on the wire, so this is not reached; if
                // it were, the reply as the client holds it is the best there is.
                None => print_reply(out, None, reply),
            }
            print_note(out, None, &meaning(reply.code, reply.enhanced));
        }
        ClientEvent::MalformedReply { error } => {
            for line in wire.rest() {
                print_bytes_line(out, None, "S:", &line);
            }
            print_note(out, None, &format!("unreadable reply: {error}"))
        }
        ClientEvent::RecipientRefused {
            forward_path,
            reply,
            reply_origin,
        } => {
            // No server refused what failed by this client's own finding (a timeout, a lost
            // connection); and once the whole message went out, the client cannot know
            // whether the server kept it (RFC 5321 6.1).
            let (word, whose) = match (reply_origin, transcript.data_unanswered) {
                (ReplyOrigin::Server, _) => ("refused", whose(*reply_origin)),
                (ReplyOrigin::Client, false) => ("not delivered", whose(*reply_origin)),
                (ReplyOrigin::Client, true) => {
                    transcript.fate_unknown.push(forward_path.clone());
                    (
                        FATE_UNKNOWN,
                        " (this client's own finding: the server may have kept the message, \
                         and a retry may deliver it twice, RFC 5321 6.1)",
                    )
                }
            };
            let summary = reply_summary(reply, *reply_origin);
            print_note(
                out,
                None,
                &format!("<{forward_path}> {word}: {summary}{whose}"),
            )
        }
        ClientEvent::RecipientDeferred { forward_path, .. } => print_note(
            out,
            None,
            &format!("<{forward_path}> too many recipients: goes in the next transaction"),
        ),
        ClientEvent::TimedOut { state } => {
            print_note(out, None, &format!("timed out {}", state.moment()))
        }
        ClientEvent::PeerClosed => print_note(out, None, "the connection closed"),
        ClientEvent::ExtensionsLearned { extensions } => {
            if transcript.dsn_asked {
                let note = if extensions.dsn {
                    "the server offers DSN (RFC 3461): the notices asked for go with MAIL and RCPT"
                } else {
                    "the server does not offer DSN (RFC 3461): the notices asked for (NOTIFY, \
                     RET, ENVID, ORCPT) are not sent, and the server notifies as it sees fit"
                };
                print_note(out, None, note)
            }
            if data.as_is.is_some() && !extensions.chunking {
                print_note(
                    out,
                    None,
                    "the server does not offer CHUNKING (RFC 3030): no BDAT, the message goes \
                     with DATA, dot-stuffed",
                )
            }
        }
        _ => {}
    }
}

/// A code this client gave its own finding is no server's word: said after the reply.
fn whose(origin: ReplyOrigin) -> &'static str {
    match origin {
        ReplyOrigin::Server => "",
        ReplyOrigin::Client => " (this client's own finding)",
    }
}

/// Said of a recipient whose message went out whole and got no reply.
const FATE_UNKNOWN: &str = "delivered or not, unknown";

/// What became of one recipient: `<ADDRESS> FATE: REPLY`, and whose finding the reply is.
fn recipient_result(sent: &Sent, recipient: &RecipientOutcome) -> String {
    let fate = match &recipient.status {
        RecipientStatus::Accepted(_) => "accepted",
        _ if sent.fate_unknown(&recipient.forward_path) => FATE_UNKNOWN,
        RecipientStatus::TemporaryFailure(_) => "temporary failure",
        RecipientStatus::PermanentFailure(_) => "permanent failure",
    };
    format!(
        "<{}> {fate}: {}{}",
        recipient.forward_path,
        reply_summary(recipient.status.reply(), recipient.reply_origin),
        whose(recipient.reply_origin)
    )
}

fn print_outcome(out: &mut impl Write, sent: &Sent) {
    let _ = writeln!(out, "Result:");
    for recipient in &sent.outcome.recipients {
        let _ = writeln!(out, "  {}", recipient_result(sent, recipient));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_in_one_line_has_no_space_it_did_not_have_and_no_control_character() {
        use crate::smtp::reply::EnhancedStatus;
        let server = ReplyOrigin::Server;
        assert_eq!(reply_summary(&Reply::new(550, None, ""), server), "550");
        let status = EnhancedStatus::parse_prefix("5.1.1 x").map(|(status, _)| status);
        assert_eq!(
            reply_summary(&Reply::new(550, status, "no \x1b[31mRED"), server),
            "550 5.1.1 no \\x1b[31mRED"
        );
        // A server's backslash before what would read as an escape is told apart from one;
        // this client's own text, quoting a server's line escaped already, is left as it is.
        let sent = "no \\x1b and \x07";
        assert_eq!(
            reply_summary(&Reply::new(550, None, sent), server),
            "550 no \\\\x1b and \\x07"
        );
        assert_eq!(
            reply_summary(
                &Reply::new(451, None, "quoted \"\\x1b\""),
                ReplyOrigin::Client
            ),
            "451 quoted \"\\x1b\""
        );
    }

    #[test]
    fn replies_are_kept_line_by_line_as_they_came_however_they_are_cut() {
        let wire = b"220 hi\r\n250-a\r\n250-2.1.0 b\n250 c\r\n354\r\n421-x";
        // Fed whole, and an octet at a time: the same replies.
        for cut in [wire.len(), 1] {
            let mut replies = WireReplies::default();
            for piece in wire.chunks(cut) {
                replies.feed(piece);
            }
            let text = |lines: Vec<Vec<u8>>| -> Vec<String> {
                lines
                    .into_iter()
                    .map(|line| String::from_utf8(line).unwrap())
                    .collect()
            };
            assert_eq!(text(replies.next_reply().unwrap()), ["220 hi"]);
            assert_eq!(
                text(replies.next_reply().unwrap()),
                ["250-a", "250-2.1.0 b", "250 c"]
            );
            assert_eq!(text(replies.next_reply().unwrap()), ["354"]);
            assert!(replies.next_reply().is_none());
            assert_eq!(text(replies.rest()), ["421-x"]);
            assert!(replies.rest().is_empty());
        }
        // A line longer than any reply's is kept only in part, and says so.
        let mut replies = WireReplies::default();
        replies.feed(&vec![b'9'; 3 * WireReplies::LINE_KEPT_MAX]);
        replies.feed(b"\r\n");
        let line = String::from_utf8(replies.next_reply().unwrap().remove(0)).unwrap();
        let said = format!(" [... {} more octets]", 2 * WireReplies::LINE_KEPT_MAX);
        assert_eq!(
            line.len(),
            WireReplies::LINE_KEPT_MAX + said.len(),
            "{said}"
        );
        assert!(line.ends_with(&said), "{said}");
    }
    use crate::smtp::client::RecipientOutcome;
    use crate::smtp::reply::Reply;

    #[test]
    fn input_over_the_limit_is_refused_not_cut() {
        let at_limit = io::repeat(b'a').take(INPUT_FILE_MAX_OCTETS);
        assert_eq!(
            read_at_most(at_limit, "input").map(|b| b.len() as u64),
            Ok(INPUT_FILE_MAX_OCTETS)
        );
        let over = io::repeat(b'a').take(INPUT_FILE_MAX_OCTETS + 1);
        let error = read_at_most(over, "the body on standard input").unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }

    /// A server on loopback that greets, takes EHLO, MAIL, RCPT and DATA, answers 354 and
    /// then reads nothing more until `release` says so; `closes` closes the connection at once
    /// instead.
    fn server_that_stops_at_354(
        closes: bool,
        release: std::sync::mpsc::Receiver<()>,
    ) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = io::BufReader::new(stream.try_clone().unwrap());
            stream.write_all(b"220 test ESMTP\r\n").unwrap();
            let mut line = String::new();
            for reply in [
                &b"250 test\r\n"[..],
                b"250 2.1.0 OK\r\n",
                b"250 2.1.5 OK\r\n",
            ] {
                line.clear();
                io::BufRead::read_line(&mut reader, &mut line).unwrap();
                stream.write_all(reply).unwrap();
            }
            line.clear();
            io::BufRead::read_line(&mut reader, &mut line).unwrap();
            assert_eq!(line, "DATA\r\n");
            stream.write_all(b"354 go ahead\r\n").unwrap();
            if closes {
                return;
            }
            // Holds the connection, reading nothing, until the client has given up.
            let _ = release.recv();
        });
        (address, server)
    }

    fn session_with_large_message(data_block_ms: u64) -> (ClientSession, Vec<u8>) {
        let mut config = ClientConfig::new("client.test");
        config.prefer_pipelining = false;
        // Should the test's server ever read it all, the test fails soon rather than wait.
        config.timeouts.data_termination_ms = 10_000;
        config.timeouts.data_block_ms = data_block_ms;
        let mut message = b"Subject: big\r\n\r\n".to_vec();
        // More than loopback's socket buffers hold on both sides together.
        message.extend(std::iter::repeat_n(b"0123456789\r\n".as_slice(), 1_500_000).flatten());
        let envelope = Envelope {
            dsn: Default::default(),
            reverse_path: "a@client.test".into(),
            forward_paths: vec!["b@server.test".into()],
        };
        (
            ClientSession::new(config, envelope, message.clone()).unwrap(),
            message,
        )
    }

    /// Sends a large message to [`server_that_stops_at_354`]: the outcome, the transcript and
    /// the size of what was to be sent.
    fn send_to_server_that_stops_at_354(
        closes: bool,
        data_block_ms: u64,
    ) -> (SessionOutcome, String, usize) {
        let (release, released) = std::sync::mpsc::channel();
        let (address, server) = server_that_stops_at_354(closes, released);
        let (session, message) = session_with_large_message(data_block_ms);
        let stream = TcpStream::connect(address).unwrap();
        let mut transcript = Vec::new();
        let data = SentData::new(&message, false);
        let outcome = drive(session, stream, &data, &mut transcript).outcome;
        let _ = release.send(());
        server.join().unwrap();
        let transcript = String::from_utf8_lossy(&transcript).into_owned();
        (outcome, transcript, dot_stuff(&message).len())
    }

    /// RFC 5321 4.5.3.2.5: a send that makes no progress for the data block timeout ends the
    /// session, and the transcript says how much of it went out, not that it all did.
    #[test]
    fn a_server_that_stops_reading_the_data_is_given_up_on() {
        let (outcome, transcript, payload_octets) = send_to_server_that_stops_at_354(false, 1000);
        let recipient = &outcome.recipients[0];
        assert!(
            matches!(&recipient.status, RecipientStatus::TemporaryFailure(reply)
                if reply.text().contains("took nothing more for 1 s (RFC 5321 4.5.3.2.5)")),
            "{recipient:?}"
        );
        let note = transcript
            .lines()
            .find(|l| l.contains("octets of the last send went out"))
            .unwrap_or_else(|| panic!("no note of what went out"));
        assert!(
            !note.contains(&format!("{0} of the {0} octets", payload_octets)),
            "{note}"
        );
        // The final dot never went out: the server cannot have kept the message.
        assert!(transcript.contains("> not delivered: 451"), "{transcript}");
        assert!(
            !transcript.contains("delivered or not, unknown"),
            "{transcript}"
        );
    }

    #[test]
    fn a_server_that_closes_after_354_is_a_broken_send_not_a_lost_reply() {
        let (outcome, transcript, _) = send_to_server_that_stops_at_354(true, 60_000);
        let recipient = &outcome.recipients[0];
        assert!(
            matches!(&recipient.status, RecipientStatus::TemporaryFailure(reply)
                if reply.text().starts_with("the connection broke while sending")),
            "{recipient:?}"
        );
        assert!(transcript.contains("> not delivered: 451"), "{transcript}");
    }

    #[test]
    fn the_end_of_a_messages_data_is_known_by_its_final_dot_or_bdat_last() {
        assert!(ends_message_data(b"Subject: x\r\n\r\nbody\r\n.\r\n"));
        assert!(ends_message_data(b"BDAT 4 LAST\r\nbody"));
        assert!(ends_message_data(b"bdat 4 last \r\nbody"));
        assert!(!ends_message_data(b"BDAT 4\r\nbody"));
        assert!(!ends_message_data(b"Subject: x\r\n\r\nbody\r\n"));
        assert!(!ends_message_data(b"QUIT\r\n"));
    }

    #[test]
    fn the_result_tells_the_clients_own_findings_from_server_replies() {
        let recipient = |forward_path: &str, code, reply_origin| RecipientOutcome {
            forward_path: forward_path.into(),
            status: RecipientStatus::PermanentFailure(Reply::new(code, None, "no")),
            reply_origin,
        };
        let outcome = SessionOutcome {
            recipients: vec![
                recipient("a@b.test", 550, ReplyOrigin::Server),
                recipient("c@b.test", 552, ReplyOrigin::Client),
            ],
            data_replies: Vec::new(),
            extensions: None,
            mail_transactions: 0,
        };
        let mut sent = Sent {
            outcome,
            fate_unknown: Vec::new(),
        };
        let mut printed = Vec::new();
        print_outcome(&mut printed, &sent);
        assert_eq!(
            String::from_utf8(printed).unwrap(),
            "Result:\n  <a@b.test> permanent failure: 550 no\n  \
             <c@b.test> permanent failure: 552 no (this client's own finding)\n"
        );
        assert_eq!(
            failure_summary(&sent),
            "2 of 2 recipient(s) not accepted; <a@b.test> permanent failure: 550 no; \
             <c@b.test> permanent failure: 552 no (this client's own finding)"
        );
        // A message that went out whole and got no reply may have been kept (RFC 5321 6.1).
        sent.fate_unknown.push("c@b.test".into());
        let mut printed = Vec::new();
        print_outcome(&mut printed, &sent);
        assert!(String::from_utf8(printed).unwrap().ends_with(
            "<c@b.test> delivered or not, unknown: 552 no (this client's own finding)\n"
        ));
        sent.outcome.recipients.remove(0);
        assert!(failure_summary(&sent).starts_with(
            "1 of 1 recipient(s) not confirmed; <c@b.test> delivered or not, unknown: 552"
        ));
    }

    #[test]
    fn a_failure_summary_names_three_recipients_and_counts_the_rest() {
        let recipients = (0..5)
            .map(|n| RecipientOutcome {
                forward_path: format!("r{n}@b.test"),
                status: RecipientStatus::PermanentFailure(Reply::new(550, None, "no")),
                reply_origin: ReplyOrigin::Server,
            })
            .collect();
        let sent = Sent {
            outcome: SessionOutcome {
                recipients,
                data_replies: Vec::new(),
                extensions: None,
                mail_transactions: 1,
            },
            fate_unknown: Vec::new(),
        };
        let summary = failure_summary(&sent);
        assert!(
            summary.starts_with("5 of 5 recipient(s) not accepted; <r0@b.test>"),
            "{summary}"
        );
        assert!(
            summary.contains("<r2@b.test>") && !summary.contains("<r3@b.test>"),
            "{summary}"
        );
        assert!(
            summary.ends_with("; and 2 more (see the transcript)"),
            "{summary}"
        );
    }

    #[test]
    fn a_subject_is_one_line() {
        assert_eq!(check_subject("Re: lunch\tat noon, café"), Ok(()));
        for bad in ["a\nBcc: x@y.test", "a\rb", "a\u{0}", "a\u{2028}b", "\u{85}"] {
            let error = check_subject(bad).expect_err(bad);
            assert!(error.starts_with("--subject holds "), "{error}");
        }
    }

    #[test]
    fn helo_takes_a_domain_name_or_an_address_literal() {
        for good in [
            "client.example.org",
            "localhost",
            "xn--bcher-kva.test",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
        ] {
            assert_eq!(check_helo(good), Ok(()), "{good}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        for bad in [
            "bücher.test",
            "a..b",
            "a_b.test",
            &long_label,
            "[300.1.1.1]",
            "-a.test",
            "two words",
            "",
            "192.0.2.1",
            "2001:db8::1",
            "[2001:db8::1]",
            "[IPv4:192.0.2.1]",
        ] {
            let error = check_helo(bad).expect_err(bad);
            assert!(error.starts_with("--helo takes a domain name"), "{error}");
        }
        // An address is shown as the literal to write instead.
        for (address, literal) in [
            ("192.0.2.1", "[192.0.2.1]"),
            ("2001:db8::1", "[IPv6:2001:db8::1]"),
        ] {
            let error = check_helo(address).expect_err(address);
            assert!(
                error.contains(&format!("address literal, {literal}")),
                "{error}"
            );
        }
    }

    /// A text file given to --attach is sent with the charset its bytes allow: nothing for
    /// ASCII, `utf-8` for UTF-8, `unknown-8bit` for anything else (RFC 2046 4.1.2, RFC 1428).
    #[test]
    fn attached_text_files_get_a_charset_their_bytes_allow() {
        let dir = std::env::temp_dir().join(format!("smtp-lab-send-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("body.txt", &b"Hello\n"[..]),
            ("ascii.txt", b"plain\n"),
            ("utf8.txt", "w\u{f6}rld\n".as_bytes()),
            ("latin1.txt", b"w\xf6rld\n"),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let options = SendOptions {
            server: "127.0.0.1:25".into(),
            from: "alice@example.org".into(),
            to: vec!["bob@example.net".into()],
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: "files".into(),
            body_file: Some(dir.join("body.txt")),
            attach: files[1..].iter().map(|(name, _)| dir.join(name)).collect(),
            helo: "client.example.org".into(),
            auth: None,
            no_pipelining: false,
            bdat_chunk_octets: None,
            eight_bit_body: false,
            dsn: DsnParameters::default(),
        };
        let message = build_message(&options);
        std::fs::remove_dir_all(&dir).unwrap();
        let message = String::from_utf8(message.unwrap()).unwrap();
        for expected in [
            "Content-Type: text/plain;\r\n name=\"ascii.txt\"\r\n",
            "Content-Type: text/plain;\r\n charset=utf-8;\r\n name=\"utf8.txt\"\r\n",
            "Content-Type: text/plain;\r\n charset=unknown-8bit;\r\n name=\"latin1.txt\"\r\n",
        ] {
            assert!(message.contains(expected), "{expected:?} in {message}");
        }
    }
}
