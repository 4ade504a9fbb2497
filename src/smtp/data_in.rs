//! The server's reader of message data: DATA content up to `<CRLF>.<CRLF>` with dot-unstuffing
//! (RFC 5321 4.1.1.4, 4.5.2), and BDAT chunk content (RFC 3030), both strict about line
//! endings (RFC 5321 2.3.8) so that SMTP smuggling cannot work through this server.
//!
//! This module does not decide the reply: it reports what it saw (size, bare CR/LF, the
//! longest line) and the session turns that into 250, 550 or 552.
//!
//! Only CRLF ends a line. A bare LF or a bare CR never ends a line and never ends the data, so
//! `<LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR><LF>` and `<CR><LF>.<LF>` are all content. A "."
//! starts a line only right after CRLF (or at the start of the data).

use serde::{Deserialize, Serialize};

/// What to do with a CR or LF that is not part of a CRLF pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BareLineEnding {
    /// Read to the real end of the data, then refuse the message with 550 5.5.2 (as Postfix's
    /// `smtpd_forbid_bare_newline = reject` does for a bare LF; it does not check bare CR).
    /// In a command line: answer 500 5.5.2 at the bare octet and drop the rest of that line,
    /// up to its CRLF, without another reply.
    #[default]
    Reject,
    /// Store each bare CR or LF as CRLF (as `smtpd_forbid_bare_newline = normalize` does for
    /// a bare LF), still never ending the data on it. In a command line: a bare LF ends the
    /// command there; a bare CR is refused as under `Reject`.
    Normalize,
}

/// Which kind of bare line ending was seen first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BareKind {
    Lf,
    Cr,
}

impl BareKind {
    /// How replies and explanations name it: `<LF>` or `<CR>`.
    pub fn name(self) -> &'static str {
        match self {
            BareKind::Lf => "<LF>",
            BareKind::Cr => "<CR>",
        }
    }
}

/// DATA (dot-terminated, dot-stuffed) or BDAT (length-delimited, raw).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Dot,
    Chunked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Right after CRLF, or at the start of the data.
    LineStart,
    /// A "." at the start of a line (DATA only).
    Dot,
    /// A "." at the start of a line, then CR (DATA only).
    DotCr,
    InLine,
    /// A CR inside a line: a line end if LF follows, else a bare CR.
    Cr,
}

/// Capacity reserved for a message's data when its first octets arrive.
const DATA_FIRST_CAPACITY: usize = 1024;
/// Most capacity reserved at once for the size a client declared, whatever it declared and
/// the server allows: as much as the largest message a client here sends
/// ([`crate::smtp::client::MESSAGE_MAX_OCTETS`]). Beyond, the data grows as it comes.
const DATA_DECLARED_CAPACITY_MAX: usize = crate::smtp::client::MESSAGE_MAX_OCTETS;

/// Reads message data whatever way the bytes are split.
#[derive(Clone, Debug)]
pub struct DataReader {
    framing: Framing,
    bare_policy: BareLineEnding,
    size_max_octets: u64,
    /// The size the client declared (RFC 1870), reserved at once rather than grown to.
    size_declared_octets: u64,
    position: Position,
    data: Vec<u8>,
    /// Octets of content seen (after unstuffing and normalising), stored or not.
    octets: u64,
    bare: Option<(BareKind, u64)>,
    line_octets: u64,
    longest_line_octets: u64,
    ended: bool,
}

impl DataReader {
    pub fn new(framing: Framing, bare_policy: BareLineEnding, size_max_octets: u64) -> Self {
        DataReader {
            framing,
            bare_policy,
            size_max_octets,
            size_declared_octets: 0,
            position: Position::LineStart,
            data: Vec::new(),
            octets: 0,
            bare: None,
            line_octets: 0,
            longest_line_octets: 0,
            ended: false,
        }
    }

    /// Reads `bytes`. Returns how many were consumed: all of them, unless the DATA end
    /// `.<CRLF>` was found, in which case the rest belongs to the commands that follow.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut index = 0;
        while index < bytes.len() {
            if self.ended {
                return index;
            }
            let byte = bytes[index];
            // Inside a line, everything up to the next CR or LF is plain content: taken as a
            // run, exactly as `step` would take it byte by byte.
            let plain = match self.position {
                Position::InLine => true,
                Position::LineStart => !(byte == b'.' && self.framing == Framing::Dot),
                _ => false,
            };
            if plain && byte != b'\r' && byte != b'\n' {
                let run =
                    memchr::memchr2(b'\r', b'\n', &bytes[index..]).unwrap_or(bytes.len() - index);
                self.emit(&bytes[index..index + run]);
                self.position = Position::InLine;
                index += run;
                continue;
            }
            self.step(byte);
            index += 1;
        }
        bytes.len()
    }

    /// The reader of a message whose client declared its size on MAIL (RFC 1870 `SIZE=`): as
    /// much is reserved when the data begins, up to the most this server stores (and at most
    /// [`DATA_DECLARED_CAPACITY_MAX`]), so that a large message is not copied each time its
    /// buffer doubles.
    pub fn declared(mut self, size_octets: Option<u64>) -> Self {
        self.size_declared_octets = size_octets.unwrap_or(0);
        self
    }

    /// True once `<CRLF>.<CRLF>` was read (DATA only).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Ends chunked content after BDAT LAST: a CR left waiting at the very end was bare.
    pub fn finish_chunked(&mut self) {
        debug_assert_eq!(self.framing, Framing::Chunked);
        if self.position == Position::Cr {
            self.bare_line_end(BareKind::Cr);
            self.position = Position::InLine;
        }
        self.ended = true;
    }

    /// Content octets seen, after unstuffing (and normalising).
    pub fn octets(&self) -> u64 {
        self.octets
    }

    pub fn over_size(&self) -> bool {
        self.octets > self.size_max_octets
    }

    /// The first bare CR or LF, and the content offset where it was.
    pub fn bare(&self) -> Option<(BareKind, u64)> {
        self.bare
    }

    /// The longest line, CRLF included.
    pub fn longest_line_octets(&self) -> u64 {
        self.longest_line_octets.max(self.line_octets)
    }

    /// The content, when it was kept. It is not kept once the size limit is passed, nor,
    /// when bare line endings are refused, once one was seen.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    fn keeping(&self) -> bool {
        let refusing = self.bare.is_some() && self.bare_policy == BareLineEnding::Reject;
        !self.over_size() && !refusing
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.octets = self.octets.saturating_add(bytes.len() as u64);
        self.line_octets = self.line_octets.saturating_add(bytes.len() as u64);
        if self.keeping() {
            if self.data.capacity() == 0 {
                // Start at the size of a short message rather than grow from a
                // few bytes one doubling at a time.
                let declared = usize::try_from(self.size_declared_octets)
                    .unwrap_or(usize::MAX)
                    .min(DATA_DECLARED_CAPACITY_MAX);
                let limit = usize::try_from(self.size_max_octets).unwrap_or(usize::MAX);
                let first = DATA_FIRST_CAPACITY.max(declared).min(limit);
                // A reservation the memory cannot give is not made: the data then grows as
                // it comes, as it would without one.
                if self.data.try_reserve(first.max(bytes.len())).is_err() {
                    self.data.reserve(bytes.len());
                }
            }
            self.data.extend_from_slice(bytes);
        } else if !self.data.is_empty() {
            // Nothing more will be delivered; free the memory now.
            self.data = Vec::new();
        }
    }

    fn end_line(&mut self) {
        self.emit(b"\r\n");
        self.longest_line_octets = self.longest_line_octets.max(self.line_octets);
        self.line_octets = 0;
    }

    fn bare_line_end(&mut self, kind: BareKind) {
        if self.bare.is_none() {
            self.bare = Some((kind, self.octets));
        }
        match self.bare_policy {
            // Normalised, but the position stays "inside a line": a bare LF is not a line
            // start, so no dot is removed after it and no end of data is seen after it.
            BareLineEnding::Normalize => self.emit(b"\r\n"),
            BareLineEnding::Reject => self.emit(if kind == BareKind::Lf { b"\n" } else { b"\r" }),
        }
    }

    fn step(&mut self, byte: u8) {
        match (self.position, byte) {
            (Position::LineStart, b'.') if self.framing == Framing::Dot => {
                self.position = Position::Dot;
            }
            (Position::LineStart | Position::InLine, b'\r') => self.position = Position::Cr,
            (Position::LineStart | Position::InLine, b'\n') => {
                self.bare_line_end(BareKind::Lf);
                self.position = Position::InLine;
            }
            (Position::LineStart | Position::InLine, _) => {
                self.emit(&[byte]);
                self.position = Position::InLine;
            }
            (Position::Dot, b'\r') => self.position = Position::DotCr,
            // RFC 5321 4.5.2: a leading dot followed by more text is removed.
            (Position::Dot, _) => {
                self.position = Position::InLine;
                self.step(byte);
            }
            (Position::DotCr, b'\n') => {
                // RFC 5321 4.1.1.4: <CRLF>.<CRLF> ends the data; the first CRLF belongs to
                // the content and was already stored.
                self.ended = true;
                self.longest_line_octets = self.longest_line_octets.max(self.line_octets);
                self.position = Position::LineStart;
            }
            (Position::DotCr, _) => {
                // ".<CR>x": the dot is removed (the line has more text) and the CR is bare.
                self.bare_line_end(BareKind::Cr);
                self.position = Position::InLine;
                self.step(byte);
            }
            (Position::Cr, b'\n') => {
                self.end_line();
                self.position = Position::LineStart;
            }
            (Position::Cr, _) => {
                self.bare_line_end(BareKind::Cr);
                self.position = Position::InLine;
                self.step(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_size_is_reserved_up_to_the_most_stored() {
        let data = b"Subject: hi\r\n\r\nHello.\r\n.\r\n";
        let reserved = |declared: Option<u64>, limit: u64| {
            let mut reader =
                DataReader::new(Framing::Dot, BareLineEnding::Reject, limit).declared(declared);
            assert_eq!(reader.feed(data), data.len());
            assert!(reader.ended());
            reader.into_data().capacity()
        };
        assert!(reserved(Some(100_000), 1 << 20) >= 100_000);
        // Not more than the server stores, whatever the client says.
        assert!(reserved(Some(100_000), 5000) < 100_000);
        assert!(reserved(None, 1 << 20) < 100_000);
        // Nor more than the largest message a client sends, nor more than memory holds.
        assert!(reserved(Some(u64::MAX), u64::MAX) <= DATA_DECLARED_CAPACITY_MAX);
        // The data is the same either way.
        let mut reader =
            DataReader::new(Framing::Dot, BareLineEnding::Reject, 1 << 20).declared(Some(1 << 30));
        reader.feed(data);
        assert_eq!(reader.into_data(), b"Subject: hi\r\n\r\nHello.\r\n");
    }

    fn read(input: &[u8], policy: BareLineEnding) -> (Vec<u8>, bool, Option<BareKind>, usize) {
        let mut reader = DataReader::new(Framing::Dot, policy, 1 << 20);
        let consumed = reader.feed(input);
        let ended = reader.ended();
        let bare = reader.bare().map(|(k, _)| k);
        (reader.into_data(), ended, bare, consumed)
    }

    #[test]
    fn end_and_unstuffing() {
        let (data, ended, bare, consumed) = read(
            b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
            BareLineEnding::Reject,
        );
        assert_eq!(data, b"Subject: x\r\n\r\n.dot\r\n");
        assert!(ended);
        assert_eq!(bare, None);
        assert_eq!(consumed, 24);
        let (data, ended, _, _) = read(b".\r\n", BareLineEnding::Reject);
        assert_eq!(data, b"");
        assert!(ended);
    }

    #[test]
    fn smuggling_sequences_never_end_the_data() {
        for (input, kind) in [
            (&b"a\n.\r\nb\r\n.\r\n"[..], BareKind::Lf),
            (b"a\n.\nb\r\n.\r\n", BareKind::Lf),
            (b"a\r.\r\nb\r\n.\r\n", BareKind::Cr),
            (b"a\r\n.\nb\r\n.\r\n", BareKind::Lf),
            (b"a\r\n.\rb\r\n.\r\n", BareKind::Cr),
            (b"a\r\r\n.\r\n", BareKind::Cr),
        ] {
            let (data, ended, bare, consumed) = read(input, BareLineEnding::Reject);
            assert!(ended, "{input:?}");
            assert_eq!(consumed, input.len(), "{input:?} ended early");
            assert_eq!(bare, Some(kind), "{input:?}");
            assert!(data.is_empty(), "rejected data is not kept");
        }
    }

    #[test]
    fn normalize_keeps_content_and_line_structure() {
        let (data, ended, bare, _) = read(b"a\n.\r\nb\rc\r\n.\r\n", BareLineEnding::Normalize);
        assert!(ended);
        assert_eq!(bare, Some(BareKind::Lf));
        assert_eq!(data, b"a\r\n.\r\nb\r\nc\r\n");
    }

    #[test]
    fn split_anywhere() {
        let input = b"x\r\n..y\r\nz\n.\r\n\r\n.\r\n";
        let whole = read(input, BareLineEnding::Normalize);
        for cut in 0..input.len() {
            let mut reader = DataReader::new(Framing::Dot, BareLineEnding::Normalize, 1 << 20);
            let a = reader.feed(&input[..cut]);
            let b = reader.feed(&input[cut..]);
            assert_eq!(a + b, whole.3);
            assert_eq!(reader.into_data(), whole.0, "cut at {cut}");
        }
    }

    #[test]
    fn size_limit_and_long_lines() {
        let mut reader = DataReader::new(Framing::Dot, BareLineEnding::Reject, 10);
        reader.feed(b"0123456789abc\r\n.\r\n");
        assert!(reader.ended());
        assert!(reader.over_size());
        assert_eq!(reader.octets(), 15);
        assert_eq!(reader.longest_line_octets(), 15);
        assert!(reader.into_data().is_empty());
    }

    #[test]
    fn chunked_is_raw_but_strict() {
        let mut reader = DataReader::new(Framing::Chunked, BareLineEnding::Reject, 1 << 20);
        reader.feed(b".\r\n..x\r");
        reader.feed(b"\n");
        reader.finish_chunked();
        assert_eq!(reader.bare(), None);
        assert_eq!(reader.into_data(), b".\r\n..x\r\n");
        let mut reader = DataReader::new(Framing::Chunked, BareLineEnding::Reject, 1 << 20);
        reader.feed(b"x\r");
        reader.finish_chunked();
        assert_eq!(reader.bare().map(|b| b.0), Some(BareKind::Cr));
    }
}
