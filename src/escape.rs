//! How protocol text is shown: control characters, line and paragraph separators and the
//! bidirectional formatting characters written as escapes, so that what a peer sent can
//! neither break a line of a transcript nor reorder it. One rule for every layer that shows
//! a peer's text: the text trace, the native transcripts, and an engine's own error text.

use std::fmt::Write as _;

/// Shows the bytes of one protocol line as text onto `out` as [`push_visible`] shows each
/// character (a tab as it is when `keep_tabs`), and an octet that is not UTF-8 as `\xNN`.
/// A backslash sent where it would read as the start of an escape (before `\`, `r`, `n`,
/// `t`, `x` and two hex digits, `u{`, a character shown as an escape or an octet that is
/// not UTF-8) is shown as `\\`, so that the text `\n` a client sent and a bare LF never look
/// the same; any other backslash, as in a quoted local part's `\"`, is shown as sent.
pub fn push_escaped_line(out: &mut String, line: &[u8], keep_tabs: bool) {
    push_escaped_between(out, line, keep_tabs, None);
}

/// [`push_escaped_line`], for text shown between two `quote` characters: a `quote` in it is
/// written `\"` (and a backslash before one `\\`), so that the text cannot seem to end early.
fn push_escaped_between(out: &mut String, line: &[u8], keep_tabs: bool, quote: Option<char>) {
    let quote_octet = quote.map(|quote| quote as u8);
    for chunk in line.utf8_chunks() {
        let valid = chunk.valid();
        if valid
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'\\' && Some(b) != quote_octet)
        {
            // Printable ASCII, the common case, needs no look at each character.
            out.push_str(valid);
        } else {
            let mut chars = valid.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\t' && keep_tabs {
                    out.push(c);
                    continue;
                }
                if c == '\\' {
                    let next_reads_as_escape = match chars.peek() {
                        Some('\t') if keep_tabs => false,
                        Some(&next) if Some(next) == quote => true,
                        Some(&next) => match next {
                            '\\' | 'r' | 'n' | 't' => true,
                            // Only `\xNN` and `\u{` are escapes: RFC 6533's `\x{FC}` in
                            // a notice's or an ORCPT's address stays as sent.
                            'x' => {
                                let mut after = chars.clone().skip(1);
                                after.next().is_some_and(|c| c.is_ascii_hexdigit())
                                    && after.next().is_some_and(|c| c.is_ascii_hexdigit())
                            }
                            'u' => chars.clone().nth(1) == Some('{'),
                            next => needs_escape(next),
                        },
                        // An octet that is not UTF-8 follows, shown as `\xNN`.
                        None => !chunk.invalid().is_empty(),
                    };
                    if next_reads_as_escape {
                        out.push('\\');
                    }
                }
                if Some(c) == quote {
                    out.push('\\');
                }
                push_visible(out, c);
            }
        }
        for octet in chunk.invalid() {
            let _ = write!(out, "\\x{octet:02x}");
        }
    }
}

/// Shows the bytes of one protocol line as text: control characters as escapes, and an
/// octet that is not UTF-8 as `\xNN`, that octet.
pub fn escaped(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len());
    push_escaped_line(&mut out, line, false);
    out
}

/// `text`, with every character that could break a text trace's line or reorder what it
/// shows written as an escape.
pub fn visible(text: String) -> String {
    if !text.chars().any(needs_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// The bidirectional formatting characters, Unicode's Bidi_Control property (UAX #9 2.1 to
/// 2.6): the marks ALM, LRM and RLM, the embeddings and overrides, and the isolates. Each
/// can reorder the text around it as shown.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Control characters (a line break among them, such as U+0085), the line and paragraph
/// separators, and the bidirectional formatting characters, which reorder a line as shown.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_bidi_control(c)
}

/// `\r`, `\n`, `\t`, `\xNN` for another ASCII control character (its octet), `\u{NNNN}`
/// for any other character [`needs_escape`] names; any other character as it is.
fn push_visible(out: &mut String, c: char) {
    match c {
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `line` in double quotes, shown as a transcript's line from the wire shows it (a `"` in it
/// as `\"`): for an error that quotes what a peer sent. The error's text goes into a reply's
/// text, a report's diagnostic and a terminal, where a control character must not; written
/// once, it is shown as it is after.
pub fn quoted(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len() + 2);
    out.push('"');
    push_escaped_between(&mut out, line, true, Some('"'));
    out.push('"');
    out
}

/// `line` as [`quoted`] shows it between its quotes, without them: for text cut to a length
/// before it is put in quotes.
pub fn escaped_for_quotes(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len());
    push_escaped_between(&mut out, line, true, Some('"'));
    out
}

/// Where to cut `shown` (text as [`push_escaped_line`] shows it) to keep its first `count`
/// characters, an escape (`\\`, `\r`, `\n`, `\t`, `\xNN`, `\u{...}`) counted as one and
/// never cut in two: a byte index into `shown`, or `None` when it has no more than `count`.
pub fn cut_after_shown(shown: &str, count: usize) -> Option<usize> {
    let mut chars = shown.char_indices().peekable();
    for _ in 0..count {
        let (_, c) = chars.next()?;
        if c != '\\' {
            continue;
        }
        let rest = chars.peek().map_or("", |&(at, _)| &shown[at..]);
        let escape_rest = match rest.as_bytes() {
            [b'\\' | b'r' | b'n' | b't', ..] => 1,
            [b'x', high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => 3,
            [b'u', b'{', ..] => rest
                .find('}')
                .map_or(0, |close| rest[..=close].chars().count()),
            _ => 0,
        };
        for _ in 0..escape_rest {
            chars.next();
        }
    }
    chars.peek().map(|&(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_line_cannot_seem_to_end_early() {
        assert_eq!(quoted(b"a\"b"), r#""a\"b""#);
        // A backslash sent before a quote is told apart from the escape.
        assert_eq!(quoted(b"a\\\"b"), r#""a\\\"b""#);
        assert_eq!(quoted(b"\x1b[0m\t\xff"), "\"\\x1b[0m\t\\xff\"");
        // Outside quotes, a quote and a backslash before it are as sent.
        let mut line = String::new();
        push_escaped_line(&mut line, b"a\\\"b", false);
        assert_eq!(line, r#"a\"b"#);
    }

    #[test]
    fn a_cut_keeps_each_escape_whole() {
        let shown = escaped(b"ab\xff\r\\\xe2\x80\xae-");
        assert_eq!(shown, r"ab\xff\r\\\u{202e}-");
        let kept = |count| cut_after_shown(&shown, count).map(|cut| &shown[..cut]);
        assert_eq!(kept(2), Some("ab"));
        assert_eq!(kept(3), Some(r"ab\xff"));
        assert_eq!(kept(4), Some(r"ab\xff\r"));
        assert_eq!(kept(5), Some(r"ab\xff\r\\"));
        assert_eq!(kept(6), Some(r"ab\xff\r\\\u{202e}"));
        assert_eq!(kept(7), None);
        // Non-ASCII characters are one each, and a backslash shown as sent is one.
        assert_eq!(
            cut_after_shown("é\\\"x", 2).map(|cut| &"é\\\"x"[..cut]),
            Some("é\\")
        );
        assert_eq!(cut_after_shown(r#"a\"b"#, 2), Some(2));
        assert_eq!(cut_after_shown("", 0), None);
    }
}
