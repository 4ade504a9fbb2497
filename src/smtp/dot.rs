//! SMTP data transparency (RFC 5321 4.5.2): turning a message into the bytes sent after a
//! 354 reply, and back.
//!
//! This module does not parse the message itself (headers, MIME); it makes sure the bytes on
//! the wire end lines with CRLF, cannot end the data early, and do end it properly, and it says
//! whether a message is binary data, which SMTP carries only with BINARYMIME.

use std::borrow::Cow;
use std::sync::LazyLock;

/// The line that ends the mail data (RFC 5321 4.1.1.4): a "." alone on a line.
pub const END_OF_DATA: &[u8] = b".\r\n";

/// Rewrites every line ending to CRLF and makes sure the message ends with CRLF.
///
/// A bare LF or a bare CR each become CRLF (RFC 5321 2.3.8: only CRLF ends a line). Sending a
/// bare LF or CR would let a lenient server see a line end where a strict one sees none: the
/// root of SMTP smuggling (CVE-2023-51764 and friends). An empty message stays empty.
pub fn normalize_line_endings(message: &[u8]) -> Vec<u8> {
    normalized(message).into_owned()
}

/// [`normalize_line_endings`], borrowing the message when it needs no change (most messages
/// already have CRLF everywhere).
pub fn normalized(message: &[u8]) -> Cow<'_, [u8]> {
    if (message.is_empty() || message.ends_with(b"\r\n")) && !has_bare_line_break(message) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    let mut index = 0;
    while index < message.len() {
        match message[index] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                // A CR followed by LF is one line end, not two.
                if message.get(index + 1) == Some(&b'\n') {
                    index += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            byte => out.push(byte),
        }
        index += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

/// The DATA payload for `message` (RFC 5321 4.5.2): every line ending made CRLF, a leading "."
/// doubled on every line, a final CRLF added when missing, and the ".CRLF" terminator appended.
///
/// The result never contains a bare CR or LF, and never contains CRLF "." CRLF anywhere but at
/// its very end, so no receiver can see the data end early.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    dot_stuff_normalized(&normalized(message))
}

/// [`dot_stuff`] for a message that [`normalized`] already made CRLF throughout.
pub fn dot_stuff_normalized(normalized: &[u8]) -> Vec<u8> {
    debug_assert!(!has_bare_line_break(normalized));
    // Built once: a searcher is costly to set up next to the short messages most runs send.
    static LINE_STARTING_WITH_DOT: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\n."));
    let starts_with_dot = normalized.first() == Some(&b'.');
    // Counted first, so that the payload is allocated once at its exact size: it is kept
    // whole in the trace, where spare room would be wasted.
    let doubled =
        usize::from(starts_with_dot) + LINE_STARTING_WITH_DOT.find_iter(normalized).count();
    let mut out = Vec::with_capacity(normalized.len() + doubled + END_OF_DATA.len());
    // A "." that starts a line is doubled; the text between such lines is copied whole.
    if starts_with_dot {
        out.push(b'.');
    }
    let mut copied = 0;
    for newline in LINE_STARTING_WITH_DOT.find_iter(normalized) {
        out.extend_from_slice(&normalized[copied..=newline]);
        out.push(b'.');
        copied = newline + 1;
    }
    out.extend_from_slice(&normalized[copied..]);
    debug_assert!(out.is_empty() || out.ends_with(b"\r\n"));
    out.extend_from_slice(END_OF_DATA);
    out
}

/// The lines of `bytes`, each with the LF that ends it (the last may have none), as
/// `split_inclusive` gives them; line ends are found with memchr, a word at a time.
pub fn lines_inclusive(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut line_start = 0;
    memchr::memchr_iter(b'\n', bytes)
        .map(|newline| newline + 1)
        .chain(std::iter::once(bytes.len()))
        .filter_map(move |line_end| {
            let line = &bytes[line_start..line_end];
            line_start = line_end;
            (!line.is_empty()).then_some(line)
        })
}

/// The lines of `bytes`, each with the CRLF that ends it (the last may have none; an empty
/// rest is no line). Only CRLF ends a line (RFC 5321 2.3.8): a bare CR or LF stays inside its
/// line, so `<LF>.<CRLF>` is never taken for the end of the data.
pub fn crlf_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', bytes) {
        if newline > start && bytes[newline - 1] == b'\r' {
            lines.push(&bytes[start..=newline]);
            start = newline + 1;
        }
    }
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    lines
}

/// The inverse of [`dot_stuff`] for a message whose lines already end in CRLF: removes one
/// leading "." from every line that has one, and stops at the ".CRLF" line that ends the data
/// (RFC 5321 4.5.2, receiver side). Anything after the end line is ignored; without an end
/// line, the whole input is taken as data.
pub fn dot_unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        let line_len = rest
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .map_or(rest.len(), |position| position + 2);
        let (line, after) = rest.split_at(line_len);
        if line == END_OF_DATA {
            break;
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        rest = after;
    }
    out
}

/// True when `bytes` holds an octet above 127, which needs `BODY=8BITMIME` (RFC 6152) or an
/// encoding before it may be sent.
pub fn has_8bit(bytes: &[u8]) -> bool {
    !bytes.is_ascii()
}

/// What makes a message binary data, which SMTP carries only with BINARYMIME (RFC 3030):
/// text, 7-bit or 8-bit, has no NUL and no line longer than 998 octets before its CRLF
/// (RFC 5321 4.5.3.1.6; RFC 2045 2.7, 2.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryContent {
    Nul,
    /// The first line that is too long: its number (from 1) and its length without CRLF.
    LongLine {
        number: usize,
        octets: usize,
    },
}

impl std::fmt::Display for BinaryContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinaryContent::Nul => f.write_str("it has a NUL octet (RFC 2045 2.8)"),
            BinaryContent::LongLine { number, octets } => write!(
                f,
                "line {number} has {octets} octets, more than the 998 a line may have before \
                 its CRLF (RFC 5321 4.5.3.1.6)"
            ),
        }
    }
}

/// What makes `message` (CRLF line breaks) binary data, if anything: its first line longer
/// than 998 octets, or else a NUL octet.
pub fn binary_content(message: &[u8]) -> Option<BinaryContent> {
    let mut start = 0;
    let line_ends = memchr::memchr_iter(b'\n', message).chain(std::iter::once(message.len()));
    for (number, end) in (1..).zip(line_ends) {
        let line = &message[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > LINE_MAX_OCTETS {
            return Some(BinaryContent::LongLine {
                number,
                octets: line.len(),
            });
        }
        start = end + 1;
    }
    memchr::memchr(0, message).map(|_| BinaryContent::Nul)
}

/// The longest line of text before its CRLF (RFC 5321 4.5.3.1.6: 1000 octets with it).
const LINE_MAX_OCTETS: usize = 998;

/// True when `bytes` holds a CR not followed by LF, or an LF not preceded by CR.
pub fn has_bare_line_break(bytes: &[u8]) -> bool {
    // One stop per line: every LF must follow a CR. Then there are as many CRLF pairs as
    // LFs, and a bare CR exists exactly when there are more CRs than that (counted a vector
    // at a time).
    let mut line_feeds = 0;
    for index in memchr::memchr_iter(b'\n', bytes) {
        if index == 0 || bytes[index - 1] != b'\r' {
            return true;
        }
        line_feeds += 1;
    }
    memchr::memchr_iter(b'\r', bytes).count() != line_feeds
}

/// Every text made of at most `max_pieces` of `pieces`, the empty one first: the inputs the
/// exhaustive tests of line handling check against their definitions.
#[cfg(test)]
pub(crate) fn every_text(pieces: &[&[u8]], max_pieces: usize) -> Vec<Vec<u8>> {
    let mut texts = vec![Vec::new()];
    let mut start = 0;
    for _ in 0..max_pieces {
        let end = texts.len();
        for index in start..end {
            for piece in pieces {
                texts.push([texts[index].as_slice(), piece].concat());
            }
        }
        start = end;
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_breaks_become_crlf() {
        assert_eq!(
            normalize_line_endings(b"a\nb\rc\r\nd"),
            b"a\r\nb\r\nc\r\nd\r\n"
        );
        assert_eq!(normalize_line_endings(b"a\r\r\n"), b"a\r\n\r\n");
        assert_eq!(normalize_line_endings(b""), b"");
        assert!(!has_bare_line_break(&normalize_line_endings(b"\n\r\n\r\r")));
    }

    #[test]
    fn bare_line_breaks_are_found_wherever_they_are() {
        // Against the definition, over every string of up to 7 octets of CR, LF and "a".
        let naive = |bytes: &[u8]| {
            (0..bytes.len()).any(|i| match bytes[i] {
                b'\r' => bytes.get(i + 1) != Some(&b'\n'),
                b'\n' => i == 0 || bytes[i - 1] != b'\r',
                _ => false,
            })
        };
        let strings = every_text(&[b"\r", b"\n", b"a"], 7);
        assert_eq!(strings.len(), (0..=7).map(|n| 3usize.pow(n)).sum::<usize>());
        for bytes in &strings {
            assert_eq!(has_bare_line_break(bytes), naive(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn only_crlf_ends_a_line() {
        assert_eq!(crlf_lines(b""), Vec::<&[u8]>::new());
        assert_eq!(crlf_lines(b"\r\n\r\n"), [&b"\r\n"[..], b"\r\n"]);
        assert_eq!(
            crlf_lines(b"Hello\n.\r\n\r\r\nX"),
            [&b"Hello\n.\r\n"[..], b"\r\r\n", b"X"]
        );
    }

    #[test]
    fn every_line_starting_with_a_dot_gets_one_more() {
        // Every message of up to six pieces from CRLF, "." and "a" that ends in CRLF, against
        // the rule applied line by line.
        let messages = every_text(&[b"\r\n", b".", b"a"], 6);
        for message in messages
            .iter()
            .filter(|m| m.is_empty() || m.ends_with(b"\r\n"))
        {
            let mut expected = Vec::new();
            for line in message.split_inclusive(|&byte| byte == b'\n') {
                if line.starts_with(b".") {
                    expected.push(b'.');
                }
                expected.extend_from_slice(line);
            }
            expected.extend_from_slice(END_OF_DATA);
            assert_eq!(dot_stuff_normalized(message), expected, "{message:?}");
        }
    }

    #[test]
    fn leading_dots_are_doubled_and_data_terminated() {
        assert_eq!(dot_stuff(b".a\r\nb.\r\n.\r\n"), b"..a\r\nb.\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no end"), b"no end\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        // The smuggling sequence LF "." LF can only come out as harmless stuffed lines.
        assert_eq!(dot_stuff(b"x\n.\ny"), b"x\r\n..\r\ny\r\n.\r\n");
    }

    #[test]
    fn unstuff_reverses_stuff() {
        let message = b"..x\r\n.\r\nplain\r\n";
        assert_eq!(dot_unstuff(&dot_stuff(message)), message);
        assert_eq!(dot_unstuff(b".\r\n"), b"");
    }

    #[test]
    fn eight_bit_detection() {
        assert!(!has_8bit(b"plain ascii\r\n"));
        assert_eq!(binary_content(b"plain ascii\r\nand more"), None);
        assert!(has_8bit("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn binary_content_is_a_nul_or_a_line_over_998_octets() {
        let line = |octets: usize| vec![b'a'; octets];
        let message = |lines: &[Vec<u8>]| lines.join(&b"\r\n"[..]);
        // 998 octets is the longest line, with or without its CRLF (the last line).
        assert_eq!(binary_content(&message(&[line(998), line(998)])), None);
        assert_eq!(
            binary_content(&message(&[line(3), line(999), line(1500)])),
            Some(BinaryContent::LongLine {
                number: 2,
                octets: 999
            })
        );
        assert_eq!(
            binary_content(&message(&[line(3), line(999)])),
            Some(BinaryContent::LongLine {
                number: 2,
                octets: 999
            })
        );
        assert_eq!(binary_content(b"a\r\nb\0c\r\n"), Some(BinaryContent::Nul));
        assert_eq!(binary_content(b""), None);
    }
}
