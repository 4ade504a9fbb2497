//! The bytes of POP3 on the wire (RFC 1939 3): command lines ended by CRLF, status lines that
//! start with `+OK` or `-ERR`, and multi-line responses that are dot-stuffed and end with a
//! line holding only ".". Readers here take bytes in any split and give whole lines.
//!
//! This module does not know which command is allowed when, or which response is multi-line:
//! the sessions do.

/// Longest command line a server takes, CRLF included (RFC 2449 4: 255 octets, raised from
/// RFC 1939's 4-character keyword plus a 40-character argument).
pub const COMMAND_LINE_MAX_OCTETS: usize = 255;

/// Longest status line a server may send, CRLF included (RFC 2449 4). The client's reader is
/// more lenient; see [`RESPONSE_LINE_MAX_OCTETS`].
pub const STATUS_LINE_MAX_OCTETS: usize = 512;

/// Longest line a client takes in a response. Message lines may be up to 998 octets plus CRLF
/// (RFC 5322 2.1.1), and real mail breaks even that; only garbage is longer than this.
pub const RESPONSE_LINE_MAX_OCTETS: usize = 64 * 1024;

/// The line that ends a multi-line response (RFC 1939 3).
pub const TERMINATION_LINE: &[u8] = b".\r\n";

/// The message as the server sends it: every line ending made CRLF (a bare LF or a bare CR
/// each become CRLF) and a final CRLF added when missing, so that the terminating "." is
/// always on a line of its own. Its length is the size LIST and STAT report (RFC 1939 5:
/// "the exact size of the message in octets", which for a server with another local line
/// ending means counting CRLF).
pub fn canonical_message(message: &[u8]) -> Vec<u8> {
    // The same rule as SMTP's data transparency: only CRLF ends a line.
    crate::smtp::dot::normalize_line_endings(message)
}

/// Appends `lines` (CRLF-ended, as [`canonical_message`] makes them) dot-stuffed: every line
/// that starts with "." gets another "." in front (RFC 1939 3), so that no line of the content
/// can be the terminating ".". Then appends the termination line. A line ends at CRLF, or,
/// with `lf_ends_lines`, at any LF (as a client reads a server that writes no CR).
pub fn write_dot_stuffed(out: &mut Vec<u8>, lines: &[u8], lf_ends_lines: bool) {
    let mut at_line_start = true;
    let mut after_cr = false;
    for &byte in lines {
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        at_line_start = byte == b'\n' && (lf_ends_lines || after_cr);
        after_cr = byte == b'\r';
    }
    debug_assert!(
        at_line_start,
        "multi-line content ends with its last line's end"
    );
    out.extend_from_slice(TERMINATION_LINE);
}

/// The part of a canonical message that `TOP msg n` sends (RFC 1939 7): the header, the blank
/// line after it, and the first `body_lines` lines of the body. A message without a blank line
/// is all header.
pub fn top_of(message: &[u8], body_lines: u64) -> &[u8] {
    let Some(mut end) = header_section_end(message) else {
        return message;
    };
    let mut remaining = body_lines;
    while remaining > 0 && end < message.len() {
        match message[end..].windows(2).position(|pair| pair == b"\r\n") {
            Some(position) => end += position + 2,
            None => end = message.len(),
        }
        remaining -= 1;
    }
    &message[..end]
}

/// How many lines `text` has: its CRLFs, and one more for text after the last.
pub fn line_count(text: &[u8]) -> u64 {
    let ends = memchr::memmem::find_iter(text, b"\r\n").count() as u64;
    ends + u64::from(!text.is_empty() && !text.ends_with(b"\r\n"))
}

/// Where the body of `message` starts: after the empty line that ends its header section,
/// or `None` when it has no such line (a message that is all header fields).
pub fn header_section_end(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(2);
    }
    message
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|position| position + 4)
}

/// What a server's [`CommandReader`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLine {
    /// A whole line, without its CRLF. It may still hold a bare CR or LF: only CRLF ends a
    /// line, and the session refuses lines with control characters in them.
    Line(Vec<u8>),
    /// A line longer than [`COMMAND_LINE_MAX_OCTETS`]; its bytes up to and including the CRLF
    /// that ended it were thrown away.
    TooLong { octets: usize },
}

/// Splits a client's bytes into command lines at CRLF, whatever way the bytes are split, and
/// never keeps more than one line's worth of them.
#[derive(Clone, Debug, Default)]
pub struct CommandReader {
    buffer: Vec<u8>,
    /// How much of `buffer` has been read already; dropped on the next `push`, so that a
    /// large batch of pipelined commands is not moved once per line.
    consumed: usize,
    /// Octets of an over-long line thrown away so far (0 when not discarding).
    discarded_octets: usize,
}

impl CommandReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes from the client. Call [`CommandReader::next_line`] until it gives `None`
    /// after each push: the reader keeps at most one line's worth of bytes, so when it is full
    /// it starts discarding.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.drain(..self.consumed);
        self.consumed = 0;
        self.buffer.extend_from_slice(bytes);
    }

    /// True when bytes of an unfinished line are waiting.
    pub fn has_partial(&self) -> bool {
        self.consumed < self.buffer.len() || self.discarded_octets > 0
    }

    pub fn next_line(&mut self) -> Option<CommandLine> {
        let content_max = COMMAND_LINE_MAX_OCTETS - 2;
        let unread = &self.buffer[self.consumed..];
        match memchr::memmem::find(unread, b"\r\n") {
            Some(position) => {
                let line = unread[..position].to_vec();
                self.consumed += position + 2;
                let octets = self.discarded_octets + position + 2;
                if self.discarded_octets > 0 || position > content_max {
                    self.discarded_octets = 0;
                    return Some(CommandLine::TooLong { octets });
                }
                Some(CommandLine::Line(line))
            }
            None => {
                // Without a CRLF yet, more unread bytes than the longest content plus a
                // pending CR can only become a too-long line: keep counting, not keeping. A
                // final CR is kept, as it may be the start of the CRLF that ends the line.
                if unread.len() > content_max + 1 {
                    let keep_cr = unread.last() == Some(&b'\r');
                    let dropped = unread.len() - usize::from(keep_cr);
                    self.discarded_octets = self.discarded_octets.saturating_add(dropped);
                    self.buffer.clear();
                    self.consumed = 0;
                    if keep_cr {
                        self.buffer.push(b'\r');
                    }
                }
                None
            }
        }
    }
}

/// What a client's [`ResponseReader`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseLine {
    /// A line, without its line ending; `crlf` says whether it ended with CRLF (true) or a
    /// bare LF (false).
    Line { content: Vec<u8>, crlf: bool },
    /// A line longer than [`RESPONSE_LINE_MAX_OCTETS`]: the server is not speaking POP3.
    TooLong,
}

/// Splits a server's bytes into lines, whatever way the bytes are split. Lines end with CRLF;
/// a bare LF is also taken as a line end here, because the client is lenient in what it reads
/// (RFC 1939 is silent; RFC 1123 1.2.2 robustness), but strict in what it sends.
#[derive(Clone, Debug)]
pub struct ResponseReader {
    buffer: Vec<u8>,
    /// How much of `buffer` has been read already; dropped on the next `push`, so that
    /// reading a line does not move the rest of a long response each time.
    consumed: usize,
    /// Where to resume looking for LF, so that a long line arriving byte by byte is scanned
    /// once, not once per byte.
    scanned: usize,
    /// Longest line taken, CRLF included: [`RESPONSE_LINE_MAX_OCTETS`] unless the caller
    /// says otherwise (a message's own lines may be longer; RFC 1939 sets them no limit).
    line_max: usize,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader {
            buffer: Vec::new(),
            consumed: 0,
            scanned: 0,
            line_max: RESPONSE_LINE_MAX_OCTETS,
        }
    }
}

impl ResponseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes lines of up to `octets` (CRLF included) from now on.
    pub fn set_line_max(&mut self, octets: usize) {
        self.line_max = octets;
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.drain(..self.consumed);
        self.scanned -= self.consumed;
        self.consumed = 0;
        self.buffer.extend_from_slice(bytes);
    }

    /// True when bytes of an unfinished line are waiting.
    pub fn has_partial(&self) -> bool {
        self.consumed < self.buffer.len()
    }

    pub fn next_line(&mut self) -> Option<ResponseLine> {
        match memchr::memchr(b'\n', &self.buffer[self.scanned..]) {
            Some(offset) => {
                let newline = self.scanned + offset;
                let mut content = &self.buffer[self.consumed..newline];
                self.consumed = newline + 1;
                self.scanned = self.consumed;
                let crlf = content.last() == Some(&b'\r');
                if crlf {
                    content = &content[..content.len() - 1];
                }
                if content.len() + 2 > self.line_max {
                    return Some(ResponseLine::TooLong);
                }
                Some(ResponseLine::Line {
                    content: content.to_vec(),
                    crlf,
                })
            }
            None => {
                self.scanned = self.buffer.len();
                if self.buffer.len() - self.consumed > self.line_max {
                    self.buffer.clear();
                    self.consumed = 0;
                    self.scanned = 0;
                    return Some(ResponseLine::TooLong);
                }
                None
            }
        }
    }
}

/// The response code in brackets right after `-ERR` (RFC 2449 8), as `IN-USE`.
pub fn response_code(first_line: &str) -> Option<&str> {
    let text = first_line.strip_prefix("-ERR")?.trim_start();
    text.strip_prefix('[')?
        .split_once(']')
        .map(|(code, _)| code)
}

/// What a status line's indicator means in general (RFC 1939 3), and the response code after
/// it when there is one, for a student: the counterpart of an SMTP code's general meaning
/// (`smtp::explain`). Why a server sent the line is the reply's own explanation.
pub fn status_meaning(ok: bool, first_line: &str) -> String {
    if ok {
        return "+OK, the positive status indicator: the command succeeded (or, as the first \
                line on a connection, the server is ready). The text after it is for people, \
                or holds what the command asked for (counts, sizes, a message number)."
            .to_string();
    }
    let failed = "-ERR, the negative status indicator: the command failed.";
    let Some(code) = response_code(first_line) else {
        return format!(
            "{failed} The text after it says why, for people; without a response code in \
             brackets after the indicator, a client has only the indicator to act on."
        );
    };
    let kind = match code {
        "IN-USE" => "another session holds the maildrop: worth trying again later (RFC 2449 8.1.2)",
        "LOGIN-DELAY" => {
            "the user logged in too recently: worth trying again later (RFC 2449 8.1.1)"
        }
        "SYS/TEMP" => {
            "a passing problem of the server's own: worth trying again later (RFC 3206 4)"
        }
        "SYS/PERM" => {
            "a lasting problem of the server's own: trying again soon will not help (RFC 3206 4)"
        }
        "AUTH" => {
            "the credentials or the account were refused (a wrong password, an unknown user, \
             or a rule such as the time of day), not the server's own trouble (RFC 3206 5)"
        }
        "UTF8" => "the command needs UTF-8 mode, which the client has not turned on (RFC 6856 5)",
        _ => "a response code of an extension (RFC 2449 8)",
    };
    format!(
        "{failed} [{code}] is a response code, which tells a client what kind of failure it is \
         without reading the text: {kind}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_is_explained_by_its_indicator_and_its_response_code() {
        for (line, says) in [
            ("+OK POP3 server ready", "the server is ready"),
            ("-ERR no such message", "has only the indicator to act on"),
            ("-ERR [IN-USE] maildrop already locked", "RFC 2449 8.1.2"),
            (
                "-ERR [SYS/TEMP] maildrop unavailable",
                "worth trying again later",
            ),
            ("-ERR [SYS/PERM] maildrop cannot be served", "will not help"),
            (
                "-ERR [UTF8] message 1 has non-ASCII header fields",
                "RFC 6856 5",
            ),
            ("-ERR [X-OTHER] odd", "an extension"),
        ] {
            let meaning = status_meaning(line.starts_with("+OK"), line);
            assert!(meaning.contains(says), "{line}: {meaning}");
        }
        assert_eq!(response_code("-ERR [AUTH] bad"), Some("AUTH"));
        assert_eq!(response_code("-ERR [unclosed"), None);
    }

    fn lines(reader: &mut CommandReader) -> Vec<CommandLine> {
        std::iter::from_fn(|| reader.next_line()).collect()
    }

    #[test]
    fn canonical_form_makes_every_line_end_crlf() {
        assert_eq!(canonical_message(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(canonical_message(b""), b"");
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_only() {
        let mut out = Vec::new();
        write_dot_stuffed(&mut out, b".a\r\nb.c\r\n.\r\n", false);
        assert_eq!(out, b"..a\r\nb.c\r\n..\r\n.\r\n");
    }

    #[test]
    fn top_sends_header_blank_line_and_body_lines() {
        let message = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(top_of(message, 0), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(top_of(message, 2), b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top_of(message, 10), &message[..]);
        assert_eq!(top_of(b"A: 1\r\n", 3), b"A: 1\r\n");
        assert_eq!(top_of(b"\r\nbody\r\n", 0), b"\r\n");
    }

    #[test]
    fn command_reader_needs_crlf_and_limits_length() {
        let mut reader = CommandReader::new();
        reader.push(b"NOOP\nSTAT\r");
        assert!(lines(&mut reader).is_empty());
        reader.push(b"\nQUIT\r\n");
        assert_eq!(
            lines(&mut reader),
            vec![
                CommandLine::Line(b"NOOP\nSTAT".to_vec()),
                CommandLine::Line(b"QUIT".to_vec())
            ]
        );
        let long = vec![b'x'; 300];
        for byte in &long {
            reader.push(&[*byte]);
            assert!(lines(&mut reader).is_empty());
        }
        reader.push(b"\r");
        reader.push(b"\nNOOP\r\n");
        assert_eq!(
            lines(&mut reader),
            vec![
                CommandLine::TooLong { octets: 302 },
                CommandLine::Line(b"NOOP".to_vec())
            ]
        );
    }

    #[test]
    fn command_reader_gives_the_same_lines_however_the_bytes_are_split() {
        let pieces: [&[u8]; 4] = [b"\r", b"\n", b"ab", b"\r\n"];
        for text in crate::smtp::dot::every_text(&pieces, 5) {
            let mut whole = CommandReader::new();
            whole.push(&text);
            let expected = lines(&mut whole);
            for split in 0..=text.len() {
                let mut reader = CommandReader::new();
                reader.push(&text[..split]);
                let mut got = lines(&mut reader);
                reader.push(&text[split..]);
                got.extend(lines(&mut reader));
                assert_eq!(got, expected, "{text:?} split at {split}");
                assert_eq!(reader.has_partial(), whole.has_partial(), "{text:?}");
            }
        }
    }

    #[test]
    fn command_reader_reads_a_large_pipelined_batch_in_order() {
        let mut batch = Vec::new();
        for n in 0..50_000 {
            batch.extend_from_slice(format!("RETR {n}\r\n").as_bytes());
        }
        batch.extend_from_slice(b"QU");
        let mut reader = CommandReader::new();
        reader.push(&batch);
        let read = lines(&mut reader);
        assert_eq!(read.len(), 50_000);
        assert_eq!(read[49_999], CommandLine::Line(b"RETR 49999".to_vec()));
        assert!(reader.has_partial());
        reader.push(b"IT\r\n");
        assert_eq!(
            lines(&mut reader),
            vec![CommandLine::Line(b"QUIT".to_vec())]
        );
        assert!(!reader.has_partial());
    }

    #[test]
    fn command_reader_limit_is_exact() {
        let mut reader = CommandReader::new();
        let mut exact = vec![b'x'; COMMAND_LINE_MAX_OCTETS - 2];
        exact.extend_from_slice(b"\r\n");
        reader.push(&exact);
        assert!(matches!(reader.next_line(), Some(CommandLine::Line(_))));
        let mut over = vec![b'x'; COMMAND_LINE_MAX_OCTETS - 1];
        over.extend_from_slice(b"\r\n");
        reader.push(&over);
        assert!(matches!(
            reader.next_line(),
            Some(CommandLine::TooLong { octets: 256 })
        ));
    }

    #[test]
    fn response_reader_takes_crlf_and_bare_lf() {
        let mut reader = ResponseReader::new();
        reader.push(b"+OK a\r\n.\nx");
        assert_eq!(
            reader.next_line(),
            Some(ResponseLine::Line {
                content: b"+OK a".to_vec(),
                crlf: true
            })
        );
        assert_eq!(
            reader.next_line(),
            Some(ResponseLine::Line {
                content: b".".to_vec(),
                crlf: false
            })
        );
        assert_eq!(reader.next_line(), None);
        assert!(reader.has_partial());
    }
}
