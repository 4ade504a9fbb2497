//! SMTP replies (RFC 5321 4.2): a three-digit code, an optional enhanced status code
//! (RFC 3463, RFC 2034) and one or more lines of text; their wire form, and an incremental
//! reader that turns a server's bytes back into replies.
//!
//! This module does not decide which reply to send; the sessions do.

use crate::escape::quoted;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Longest reply line we accept from a peer, CRLF included. RFC 5321 4.5.3.1.5 sets 512 as the
/// minimum a client must take; real servers send longer lines, so we allow more and stop only
/// at a size that can only be garbage.
pub const REPLY_LINE_MAX_OCTETS: usize = 4096;

/// Most lines we accept in one multi-line reply (an EHLO reply has one per extension).
pub const REPLY_LINES_MAX: usize = 128;

/// An enhanced status code `class.subject.detail` (RFC 3463 2). The class always equals the
/// first digit of the reply code it is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        EnhancedStatus {
            class,
            subject,
            detail,
        }
    }

    /// Parses `c.s.d` at the start of `text` (RFC 3463 2: class is 2, 4 or 5; subject and
    /// detail are 1 to 3 digits). Returns the code and the rest of the text after one space.
    pub fn parse_prefix(text: &str) -> Option<(EnhancedStatus, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let mut token = &text.as_bytes()[..end];
        let class = take_number(&mut token, 1)?;
        take_dot(&mut token)?;
        let subject = take_number(&mut token, 3)?;
        take_dot(&mut token)?;
        let detail = take_number(&mut token, 3)?;
        if !token.is_empty() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let status = EnhancedStatus::new(class as u8, subject, detail);
        let rest = text[end..].strip_prefix(' ').unwrap_or(&text[end..]);
        Some((status, rest))
    }

    /// Appends `class.subject.detail`, as `Display` writes it, without the formatting
    /// machinery (replies are summarised often).
    pub(crate) fn push_to(&self, out: &mut String) {
        Decimal::new(self.class.into()).push_to(out);
        out.push('.');
        Decimal::new(self.subject.into()).push_to(out);
        out.push('.');
        Decimal::new(self.detail.into()).push_to(out);
    }
}

/// One to `max` digits at the start of `token`, as a number; `token` moves past them.
fn take_number(token: &mut &[u8], max: usize) -> Option<u16> {
    let digits = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > max {
        return None;
    }
    let value = token[..digits]
        .iter()
        .fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'));
    *token = &token[digits..];
    Some(value)
}

/// Moves `token` past the "." it starts with; `None` when it does not.
fn take_dot(token: &mut &[u8]) -> Option<()> {
    *token = token.strip_prefix(b".")?;
    Some(())
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What a reply code says about the command it answers (RFC 5321 4.2.1, first digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyClass {
    /// 2yz: the command was accepted.
    Success,
    /// 3yz: go on (354 after DATA, 334 during AUTH).
    Intermediate,
    /// 4yz: not now; the same command may work later.
    TransientFailure,
    /// 5yz: no, and the same command will fail again.
    PermanentFailure,
}

/// One SMTP reply. `lines` holds the text of each line without the code, the separator or the
/// enhanced status code; there is always at least one line (possibly empty). The lines are
/// shared: a reply is handed to the session's events, its outcome and each recipient's status,
/// and copying it should not copy its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<EnhancedStatus>,
    pub lines: Arc<[String]>,
}

impl Reply {
    /// A one-line reply. `enhanced` must have the same class as `code`.
    pub fn new(code: u16, enhanced: Option<EnhancedStatus>, text: impl Into<String>) -> Self {
        debug_assert!((200..600).contains(&code), "reply code out of range");
        debug_assert!(
            enhanced.is_none_or(|e| u16::from(e.class) == code / 100),
            "enhanced status class must equal the reply's first digit (RFC 3463 2)"
        );
        Reply {
            code,
            enhanced,
            lines: Arc::new([text.into()]),
        }
    }

    /// A multi-line reply; the first line comes first on the wire.
    pub fn multiline(code: u16, enhanced: Option<EnhancedStatus>, lines: Vec<String>) -> Self {
        debug_assert!(!lines.is_empty(), "a reply has at least one line");
        Reply {
            code,
            enhanced,
            lines: lines.into(),
        }
    }

    pub fn class(&self) -> ReplyClass {
        match self.code / 100 {
            2 => ReplyClass::Success,
            3 => ReplyClass::Intermediate,
            4 => ReplyClass::TransientFailure,
            _ => ReplyClass::PermanentFailure,
        }
    }

    pub fn is_success(&self) -> bool {
        self.class() == ReplyClass::Success
    }

    pub fn is_permanent(&self) -> bool {
        self.class() == ReplyClass::PermanentFailure
    }

    /// The whole text, lines joined by a space (for one-line summaries).
    pub fn text(&self) -> String {
        let mut text = String::new();
        self.push_text(&mut text);
        text
    }

    /// Appends [`Reply::text`] to `out`.
    pub fn push_text(&self, out: &mut String) {
        for (index, line) in self.lines.iter().enumerate() {
            if index > 0 {
                out.push(' ');
            }
            out.push_str(line);
        }
    }

    /// The wire form: `NNN-text` on every line but the last, `NNN text` on the last, each ended
    /// by CRLF (RFC 5321 4.2.1). The enhanced code, when there is one, starts every line
    /// (RFC 2034 4). Line text never contains CR or LF: they are replaced by spaces so a reply
    /// can never be split into two by its text.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_wire(&mut out);
        out
    }

    /// Appends the wire form to `out` (see [`Reply::to_wire`]).
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        // Code, separator, enhanced code, space and CRLF fit in 24 octets.
        out.reserve(self.lines.iter().map(|line| line.len() + 24).sum());
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            push_decimal(out, u32::from(self.code));
            out.push(if index == last { b' ' } else { b'-' });
            if let Some(enhanced) = self.enhanced {
                push_decimal(out, u32::from(enhanced.class));
                out.push(b'.');
                push_decimal(out, u32::from(enhanced.subject));
                out.push(b'.');
                push_decimal(out, u32::from(enhanced.detail));
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            if line.bytes().any(|b| b == b'\r' || b == b'\n') {
                out.extend(
                    line.bytes()
                        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
            } else {
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_wire()))
    }
}

/// Why a peer's reply bytes could not be read as an SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyError {
    /// The line does not start with three digits followed by a space, a hyphen or the end:
    /// its octets, quoted as the transcripts show them (an octet that is not UTF-8 as `\xNN`).
    Malformed { line: Vec<u8> },
    /// The lines of one multi-line reply carry different codes (RFC 5321 4.2.1).
    MixedCodes { first: u16, other: u16 },
    /// A line longer than [`REPLY_LINE_MAX_OCTETS`].
    LineTooLong,
    /// More than [`REPLY_LINES_MAX`] lines in one reply.
    TooManyLines,
    /// The connection closed with only part of a reply received: its lines so far, and the
    /// octets of the start of the line that was cut.
    CutShort { received: Vec<u8> },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed { line } => {
                write!(f, "not an SMTP reply line: {}", quoted(line))
            }
            ReplyError::MixedCodes { first, other } => {
                write!(f, "multi-line reply mixes codes {first} and {other}")
            }
            ReplyError::LineTooLong => {
                write!(f, "reply line longer than {REPLY_LINE_MAX_OCTETS} octets")
            }
            ReplyError::TooManyLines => write!(f, "reply with more than {REPLY_LINES_MAX} lines"),
            ReplyError::CutShort { received } => {
                write!(
                    f,
                    "the connection closed in the middle of a reply: {}",
                    quoted(received)
                )
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Reads replies from a server's byte stream, whatever way the bytes are split.
///
/// Lines end with CRLF. A bare LF is also taken as a line end here: the client is lenient in
/// what it reads (RFC 5321 4.5.3.1 robustness), but strict in what it sends.
#[derive(Clone, Debug, Default)]
pub struct ReplyReader {
    buffer: Vec<u8>,
    /// The lines so far of a multi-line reply: (code, enhanced code, texts).
    pending: Option<(u16, Option<EnhancedStatus>, Vec<String>)>,
    /// How much of `buffer` has been read already; dropped from it on the next `push` (but
    /// for a pending reply's lines), so that reading a line does not move the rest of the
    /// buffer.
    consumed: usize,
    /// Where in `buffer` the pending reply's first line starts: its lines are kept as they
    /// came, to be quoted octet for octet if the connection closes in the middle of it.
    pending_start: usize,
}

impl ReplyReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        let read = self.kept_from();
        if read == self.buffer.len() {
            self.buffer.clear();
        } else {
            self.buffer.drain(..read);
        }
        self.consumed -= read;
        self.pending_start = 0;
        self.buffer.extend_from_slice(bytes);
    }

    /// Where the octets still wanted start: the pending reply's first line, or else what is
    /// unread.
    fn kept_from(&self) -> usize {
        if self.pending.is_some() {
            self.pending_start
        } else {
            self.consumed
        }
    }

    /// True when bytes are waiting that do not yet form a whole reply.
    pub fn has_partial(&self) -> bool {
        self.consumed < self.buffer.len() || self.pending.is_some()
    }

    /// What the bytes so far hold of a reply that was not finished, when the connection has
    /// closed: the lines read and what came of the next one.
    pub fn cut_short(&self) -> Option<ReplyError> {
        if !self.has_partial() {
            return None;
        }
        let received = self.buffer[self.kept_from()..].to_vec();
        Some(ReplyError::CutShort { received })
    }

    /// The next whole reply, if the bytes so far hold one. An error consumes the offending
    /// line, so the caller may go on reading (it will usually close the session instead).
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        loop {
            let unread = &self.buffer[self.consumed..];
            let Some(newline) = unread.iter().position(|&b| b == b'\n') else {
                if unread.len() > REPLY_LINE_MAX_OCTETS {
                    self.buffer.clear();
                    self.consumed = 0;
                    self.pending = None;
                    return Some(Err(ReplyError::LineTooLong));
                }
                return None;
            };
            let line = &unread[..newline];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line_start = self.consumed;
            self.consumed += newline + 1;
            if line.len() > REPLY_LINE_MAX_OCTETS {
                self.pending = None;
                return Some(Err(ReplyError::LineTooLong));
            }
            let raw = line;
            // Replies are nearly always ASCII: the strict check is the fast one.
            let line = match std::str::from_utf8(line) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(line),
            };
            let Some((code, last, text)) = split_reply_line(&line) else {
                self.pending = None;
                return Some(Err(ReplyError::Malformed { line: raw.to_vec() }));
            };
            let (enhanced, text) = match EnhancedStatus::parse_prefix(text) {
                Some((status, rest)) if u16::from(status.class) == code / 100 => {
                    (Some(status), rest)
                }
                _ => (None, text),
            };
            let (mut lines, enhanced) = match self.pending.take() {
                None if last => {
                    let reply = Reply {
                        code,
                        enhanced,
                        lines: Arc::new([text.to_string()]),
                    };
                    return Some(Ok(reply));
                }
                None => {
                    self.pending_start = line_start;
                    (Vec::new(), enhanced)
                }
                Some((first_code, first_enhanced, lines)) => {
                    if first_code != code {
                        return Some(Err(ReplyError::MixedCodes {
                            first: first_code,
                            other: code,
                        }));
                    }
                    if lines.len() >= REPLY_LINES_MAX {
                        return Some(Err(ReplyError::TooManyLines));
                    }
                    (lines, first_enhanced)
                }
            };
            lines.push(text.to_string());
            if last {
                return Some(Ok(Reply {
                    code,
                    enhanced,
                    lines: lines.into(),
                }));
            }
            self.pending = Some((code, enhanced, lines));
        }
    }
}

/// Appends `value` in decimal, without the formatting machinery (replies are written often).
fn push_decimal(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(Decimal::new(value.into()).digits());
}

/// The decimal digits of a number, as `format!` writes them, worked out without the
/// formatting machinery: replies, and the names a simulation gives, are written often.
pub(crate) struct Decimal {
    buffer: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn new(value: u64) -> Self {
        let mut buffer = [0u8; 20];
        let mut start = buffer.len();
        let mut rest = value;
        loop {
            start -= 1;
            buffer[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        Decimal { buffer, start }
    }

    /// The ASCII digits.
    pub(crate) fn digits(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    pub(crate) fn push_to(&self, out: &mut String) {
        out.extend(self.digits().iter().map(|&digit| char::from(digit)));
    }
}

/// Splits `NNN-text`, `NNN text` or `NNN` into (code, is_last_line, text).
fn split_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    // RFC 5321 4.2: the first digit is 2 to 5; the second 0 to 5.
    if !(b'2'..=b'5').contains(&bytes[0]) || bytes[1] > b'5' {
        return None;
    }
    let code: u16 = line[..3].parse().ok()?;
    match bytes.get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_is_written_as_display_writes_it() {
        for status in [
            EnhancedStatus::new(2, 0, 0),
            EnhancedStatus::new(4, 7, 1),
            EnhancedStatus::new(5, 999, 100),
            EnhancedStatus::new(5, 10, 0),
        ] {
            let mut pushed = String::from("x");
            status.push_to(&mut pushed);
            assert_eq!(pushed, format!("x{status}"));
        }
    }

    #[test]
    fn wire_form_of_multiline_reply_with_enhanced_code() {
        let reply = Reply::multiline(
            250,
            None,
            vec![
                "mx.example.org".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
            ],
        );
        assert_eq!(
            reply.to_wire(),
            b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
        );
        let reply = Reply::new(550, Some(EnhancedStatus::new(5, 1, 1)), "No such user");
        assert_eq!(reply.to_wire(), b"550 5.1.1 No such user\r\n");
    }

    #[test]
    fn a_reply_cut_short_by_the_close_is_told_as_it_came() {
        let mut reader = ReplyReader::new();
        assert_eq!(reader.cut_short(), None);
        reader.push(b"250-first\r\n250-sec");
        assert!(reader.next_reply().is_none());
        assert_eq!(
            reader.cut_short(),
            Some(ReplyError::CutShort {
                received: b"250-first\r\n250-sec".to_vec()
            })
        );
        let mut whole = ReplyReader::new();
        whole.push(b"250 done\r\n");
        assert!(whole.next_reply().is_some());
        assert_eq!(whole.cut_short(), None);
    }

    /// An unreadable line is quoted octet for octet, as its `S:` line in a transcript shows
    /// it: an octet that is not UTF-8 as `\xNN`, not as U+FFFD.
    #[test]
    fn an_unreadable_reply_is_quoted_with_its_octets() {
        let mut reader = ReplyReader::new();
        reader.push(b"2\xff0 ok\r\n");
        let error = reader
            .next_reply()
            .expect("a line")
            .expect_err("not a reply");
        assert_eq!(error.to_string(), r#"not an SMTP reply line: "2\xff0 ok""#);
        reader.push(b"250 half \xfe");
        assert!(reader.next_reply().is_none());
        let cut = reader.cut_short().expect("part of a reply");
        assert_eq!(
            cut.to_string(),
            r#"the connection closed in the middle of a reply: "250 half \xfe""#
        );
        // The lines before the cut one too, as they came, over several reads.
        let mut reader = ReplyReader::new();
        reader.push(b"250-2.0.0 fir\xffst\r\n");
        assert!(reader.next_reply().is_none());
        reader.push(b"250-second\r\n250-thi");
        assert!(reader.next_reply().is_none());
        assert_eq!(
            reader.cut_short(),
            Some(ReplyError::CutShort {
                received: b"250-2.0.0 fir\xffst\r\n250-second\r\n250-thi".to_vec()
            })
        );
    }

    #[test]
    fn reader_handles_split_bytes_and_empty_last_line() {
        let mut reader = ReplyReader::new();
        reader.push(b"250-sink.example\r\n250-PIPE");
        assert!(reader.next_reply().is_none());
        reader.push(b"LINING\r\n250 \r\n354 go on\r\n");
        let first = reader.next_reply().unwrap().unwrap();
        assert_eq!(first.code, 250);
        assert_eq!(*first.lines, ["sink.example", "PIPELINING", ""]);
        let second = reader.next_reply().unwrap().unwrap();
        assert_eq!(second.code, 354);
        assert!(reader.next_reply().is_none());
    }

    #[test]
    fn reader_rejects_garbage_and_mixed_codes() {
        let mut reader = ReplyReader::new();
        reader.push(b"hello\r\n250-a\r\n251 b\r\n");
        assert!(matches!(
            reader.next_reply(),
            Some(Err(ReplyError::Malformed { .. }))
        ));
        assert!(matches!(
            reader.next_reply(),
            Some(Err(ReplyError::MixedCodes { .. }))
        ));
    }

    #[test]
    fn enhanced_code_parsed_only_when_class_matches() {
        let mut reader = ReplyReader::new();
        reader.push(b"550 5.7.1 Relay denied\r\n250 4.0.0 odd\r\n");
        let relay = reader.next_reply().unwrap().unwrap();
        assert_eq!(relay.enhanced, Some(EnhancedStatus::new(5, 7, 1)));
        assert_eq!(*relay.lines, ["Relay denied"]);
        let odd = reader.next_reply().unwrap().unwrap();
        assert_eq!(odd.enhanced, None);
        assert_eq!(*odd.lines, ["4.0.0 odd"]);
    }
}
