//! How the command line prints a session: client lines `C:`, server lines `S:` (as swaks does),
//! and notes about what they mean on lines starting with `#`.

use crate::escape::visible;
use crate::sim::trace::ChunkStart;
use crate::smtp::reply::Reply;
use std::io::Write;

/// Most lines of message data printed in a transcript; the rest is summarised in one line.
pub const DATA_LINES_SHOWN_MAX: usize = 24;

/// Prints one transcript line, with an optional session tag (`[3] C: ...`). Write errors on
/// stdout (a closed pipe) are ignored: the transcript is a courtesy, the session goes on.
pub fn print_line(out: &mut impl Write, tag: Option<u64>, prefix: &str, text: &str) {
    write_line(out, tag, prefix, &printable(text));
}

/// Prints a line in the program's own words (`# ...`), which may quote what a peer sent as
/// the transcript already shows it (an unreadable reply's line, escaped once by the engine
/// that read it): a control character is escaped, a backslash left as it is, so that nothing
/// is escaped twice.
pub fn print_note(out: &mut impl Write, tag: Option<u64>, text: &str) {
    write_line(out, tag, "#", &visible(text.to_string()));
}

/// Prints one line of bytes from the wire: an octet that is not UTF-8 is shown as `\xNN`.
pub fn print_bytes_line(out: &mut impl Write, tag: Option<u64>, prefix: &str, bytes: &[u8]) {
    write_line(out, tag, prefix, &printable_bytes(bytes));
}

fn write_line(out: &mut impl Write, tag: Option<u64>, prefix: &str, printable: &str) {
    let _ = match tag {
        Some(tag) => writeln!(out, "[{tag}] {prefix} {printable}"),
        None => writeln!(out, "{prefix} {printable}"),
    };
}

/// Prints each line of a reply as it was on the wire.
pub fn print_reply(out: &mut impl Write, tag: Option<u64>, reply: &Reply) {
    let wire = reply.to_wire();
    for line in String::from_utf8_lossy(&wire).split_terminator("\r\n") {
        print_line(out, tag, "S:", line);
    }
}

/// Prints the data of a message (already dot-stuffed, ending in CRLF.CRLF, or a BDAT chunk,
/// which may stop inside a line), cut after [`DATA_LINES_SHOWN_MAX`] lines when more than one
/// would be left out. A last line without its CRLF is marked, as the simulation's trace marks
/// it: `C (no CRLF):`.
pub fn print_data(out: &mut impl Write, tag: Option<u64>, prefix: &str, data: &[u8]) {
    print_lines_of(out, tag, prefix, data, ChunkStart::default());
}

/// [`print_data`], the first line marked by how the chunk `data` begins.
fn print_lines_of(
    out: &mut impl Write,
    tag: Option<u64>,
    prefix: &str,
    data: &[u8],
    start: ChunkStart,
) {
    let lines = crate::smtp::dot::crlf_lines(data);
    let shown = crate::sim::trace::lines_shown(lines.len(), DATA_LINES_SHOWN_MAX);
    for (at, line) in lines[..shown].iter().enumerate() {
        let body = line.strip_suffix(b"\r\n");
        match start.mark(at == 0, body.is_some()) {
            None => print_bytes_line(out, tag, prefix, body.unwrap_or(line)),
            Some(mark) => {
                let marked = format!("{} ({mark}):", prefix.trim_end_matches(':'));
                print_bytes_line(out, tag, &marked, body.unwrap_or(line))
            }
        }
    }
    if lines.len() > shown {
        let hidden = lines.len() - shown;
        print_note(
            out,
            tag,
            &format!(
                "... {hidden} more lines of data, {} octets in all",
                data.len()
            ),
        );
    }
}

/// Prints a BDAT chunk as [`print_data`] does, its first line marked as the simulation's
/// trace marks it (`C (rest of line): ...` when it goes on with a line the chunk before cut),
/// by `tail`, the last octets (two at most) of the message before the chunk.
pub fn print_chunk(out: &mut impl Write, chunk: &[u8], tail: &[u8]) {
    print_lines_of(out, None, "C:", chunk, ChunkStart::after(tail, chunk));
}

/// Shows control characters (a bare CR or LF, a NUL) and other characters that break or
/// reorder lines as escapes, as the text trace does, so that a transcript line is always one
/// line, and a smuggling attempt is visible as what it is; a sent backslash that would read
/// as an escape is doubled, as there. A tab stays a tab here.
pub fn printable(text: &str) -> String {
    printable_bytes(text.as_bytes())
}

/// [`printable`] for bytes: an octet that is not part of UTF-8 text is shown as `\xNN`.
pub fn printable_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    crate::escape::push_escaped_line(&mut out, bytes, true);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\rc\0"), "a\\nb\\rc\\x00");
        assert_eq!(printable("a\u{2028}b\tc"), "a\\u{2028}b\tc");
        assert_eq!(printable_bytes(b"caf\xe9 \xc3\xa9"), "caf\\xe9 \u{e9}");
        // Sent text that would read as an escape is told apart from the character.
        assert_eq!(
            printable("a\\r\\n.\\r\\n\r\n"),
            "a\\\\r\\\\n.\\\\r\\\\n\\r\\n"
        );
        assert_eq!(printable("\\\t\\\""), "\\\t\\\"");
    }

    #[test]
    fn a_chunk_marks_the_rest_of_a_cut_line_and_its_own_cut() {
        let printed = |chunk: &[u8], tail: &[u8]| {
            let mut out = Vec::new();
            print_chunk(&mut out, chunk, tail);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            printed(b"ceiver\r\nSubject: x\r\nTo: b", b"e"),
            "C (rest of line): ceiver\nC: Subject: x\nC (no CRLF): To: b\n"
        );
        assert_eq!(printed(b"\r\nx\r\n", b"c"), "C (rest of line): \nC: x\n");
        assert_eq!(printed(b"ab", b" "), "C (rest of line, no CRLF): ab\n");
        assert_eq!(printed(b"\r\nx\r\n", b"\r\n"), "C: \nC: x\n");
        assert_eq!(printed(b"\r\nx\r\n", b""), "C: \nC: x\n");
        // Chunks of one octet: a CR, then the LF that ends its line, then a new line.
        assert_eq!(printed(b"\r", b"a"), "C (rest of line, no CRLF): \\r\n");
        assert_eq!(printed(b"\n", b"a\r"), "C (rest of line): \\n\n");
        assert_eq!(printed(b"\t", b"\r\n"), "C (no CRLF): \t\n");
        // The line limit counts the marked line, as any other.
        let long: Vec<u8> = (0..40)
            .flat_map(|i| format!("l{i}\r\n").into_bytes())
            .collect();
        let text = printed(&long, b"x");
        assert_eq!(text.lines().count(), DATA_LINES_SHOWN_MAX + 1, "{text}");
        assert!(
            text.contains(&format!("{} octets in all", long.len())),
            "{text}"
        );
    }

    #[test]
    fn long_data_is_cut() {
        let data: String = (0..40).map(|i| format!("line {i}\r\n")).collect();
        let mut out = Vec::new();
        print_data(&mut out, Some(1), "C:", data.as_bytes());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), DATA_LINES_SHOWN_MAX + 1);
        assert!(text.starts_with("[1] C: line 0\n"));
        assert!(text.contains("16 more lines"));
    }

    #[test]
    fn one_line_too_many_is_shown_rather_than_summarised() {
        let data: String = (0..=DATA_LINES_SHOWN_MAX)
            .map(|i| format!("line {i}\r\n"))
            .collect();
        let mut out = Vec::new();
        print_data(&mut out, None, "C:", data.as_bytes());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), DATA_LINES_SHOWN_MAX + 1);
        assert!(
            text.ends_with(&format!("line {DATA_LINES_SHOWN_MAX}\n")),
            "{text}"
        );
        assert!(!text.contains("more line"), "{text}");
    }
}
