//! Trace header fields (RFC 5321 4.4): the `Received:` line each SMTP server prepends when it
//! accepts a message, and the `Return-Path:` added at final delivery; plus counting `Received:`
//! lines for loop detection (RFC 5321 6.3), and finding the header section and the fields in
//! it that servers and clients look for.
//!
//! This module only writes, finds and counts header fields; it does not decide when a server
//! adds them, and it does not parse their values or the rest of a message.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::mail::date;
use crate::smtp::address::domain_key;

/// Folded lines are kept to this length where the parts allow (RFC 5322 2.1.1).
pub const LINE_PREFERRED_MAX: usize = 78;

/// Longest name or id copied into a trace field; longer ones are cut.
const TOKEN_MAX_OCTETS: usize = 255;

/// The `with` protocol (RFC 3848 and RFC 6531 3.7.3 registry of "Mail Transmission Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WithProtocol {
    /// HELO: plain SMTP.
    Smtp,
    /// EHLO.
    Esmtp,
    /// EHLO with AUTH.
    Esmtpa,
    /// EHLO with STARTTLS.
    Esmtps,
    /// EHLO with STARTTLS and AUTH.
    Esmtpsa,
    /// EHLO with SMTPUTF8 used for the transaction.
    Utf8Smtp,
    Utf8Smtpa,
    Utf8Smtps,
    Utf8Smtpsa,
}

impl WithProtocol {
    /// The protocol for a session: `extended` when EHLO (not HELO) was used, `tls` after
    /// STARTTLS, `authenticated` after a successful AUTH, `smtputf8` when the transaction used
    /// the SMTPUTF8 parameter (which needs EHLO).
    pub fn for_session(extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> Self {
        match (extended || smtputf8, smtputf8, tls, authenticated) {
            (false, _, _, _) => WithProtocol::Smtp,
            (true, false, false, false) => WithProtocol::Esmtp,
            (true, false, false, true) => WithProtocol::Esmtpa,
            (true, false, true, false) => WithProtocol::Esmtps,
            (true, false, true, true) => WithProtocol::Esmtpsa,
            (true, true, false, false) => WithProtocol::Utf8Smtp,
            (true, true, false, true) => WithProtocol::Utf8Smtpa,
            (true, true, true, false) => WithProtocol::Utf8Smtps,
            (true, true, true, true) => WithProtocol::Utf8Smtpsa,
        }
    }

    /// Whether the transaction used SMTPUTF8 (RFC 6531 3.7.3).
    pub fn is_utf8(self) -> bool {
        matches!(
            self,
            WithProtocol::Utf8Smtp
                | WithProtocol::Utf8Smtpa
                | WithProtocol::Utf8Smtps
                | WithProtocol::Utf8Smtpsa
        )
    }

    pub fn keyword(self) -> &'static str {
        match self {
            WithProtocol::Smtp => "SMTP",
            WithProtocol::Esmtp => "ESMTP",
            WithProtocol::Esmtpa => "ESMTPA",
            WithProtocol::Esmtps => "ESMTPS",
            WithProtocol::Esmtpsa => "ESMTPSA",
            WithProtocol::Utf8Smtp => "UTF8SMTP",
            WithProtocol::Utf8Smtpa => "UTF8SMTPA",
            WithProtocol::Utf8Smtps => "UTF8SMTPS",
            WithProtocol::Utf8Smtpsa => "UTF8SMTPSA",
        }
    }
}

/// What a server knows when it accepts a message, for its `Received:` field. Borrowed: the
/// field is written once, from what the session and the server already hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedFields<'a> {
    /// The name the client gave with EHLO/HELO (as sent; it is sanitised here).
    pub helo_name: &'a str,
    /// The client's name from reverse DNS, if known.
    pub peer_name: Option<&'a str>,
    /// The client's IP address.
    pub peer_address: IpAddr,
    /// This server's name.
    pub by_host: &'a str,
    pub with: WithProtocol,
    /// The server's id for the message (its queue id), if any.
    pub id: Option<&'a str>,
    /// The forward path, given only when the message has a single recipient: listing several
    /// would disclose Bcc recipients (RFC 5321 7.2).
    pub for_path: Option<&'a str>,
    /// The message's header section is already UTF-8 (RFC 6532), so the message can travel
    /// on only with SMTPUTF8.
    pub utf8_header: bool,
    pub date_unix_s: i64,
    pub utc_offset_min: i32,
}

/// The address literal for an IP (RFC 5321 4.1.3): `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn address_literal(address: IpAddr) -> String {
    let mut out = String::new();
    push_address_literal(&mut out, address);
    out
}

fn push_address_literal(out: &mut String, address: IpAddr) {
    let v4 = match address {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                // Writing to a String cannot fail.
                let _ = write!(out, "[IPv6:{v6}]");
                return;
            }
        },
    };
    out.push('[');
    push_ipv4(out, v4);
    out.push(']');
}

/// Appends `address` as `Ipv4Addr` displays itself, octet by octet, without the formatting
/// machinery: addresses are written for every message.
pub fn push_ipv4(out: &mut String, address: std::net::Ipv4Addr) {
    for (index, octet) in address.octets().into_iter().enumerate() {
        if index > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// The whole `Received:` field, folded, with its final CRLF (RFC 5321 4.4):
///
/// ```text
/// Received: from client.example (client.example [192.0.2.1])
///     by mx.example.net with ESMTP id 4F2A1
///     for <bob@example.net>; Thu, 1 Jan 1970 00:00:00 +0000
/// ```
///
/// (folded lines start with a TAB). Names the client chose are reduced to domain characters,
/// so they cannot add header lines or comments of their own. Internationalised domain names
/// are written as A-labels, or as U-labels when the transaction used SMTPUTF8 and the message
/// already has a UTF-8 header: RFC 6531 3.7.3 says a server SHOULD use the U-label form in the
/// trace fields it adds to a message that "was or will be transmitted" with SMTPUTF8, and that
/// trace fields sent without it "must conform to RFC 5321". A message with an ASCII header may
/// still go on without SMTPUTF8 (to its ASCII recipients), which a U-label of the server's own
/// would forbid it.
pub fn received_header(fields: &ReceivedFields) -> String {
    let mut field = FoldedField::new("Received:");
    let domain_form = if fields.with.is_utf8() && fields.utf8_header {
        DomainForm::ULabels
    } else {
        DomainForm::ALabels
    };
    // Clauses in RFC 5321 4.4 order: From, By, With, ID, For; then the date.
    field.clause(false, |out| {
        out.push_str("from ");
        push_domain_token(out, fields.helo_name, domain_form);
    });
    // A fold may go before the TCP-info too (RFC 5321 4.4: Extended-Domain), for a long name.
    field.clause(false, |out| {
        out.push('(');
        if let Some(name) = fields.peer_name {
            push_domain_token(out, name, domain_form);
            out.push(' ');
        }
        push_address_literal(out, fields.peer_address);
        out.push(')');
    });
    field.clause(true, |out| {
        out.push_str("by ");
        push_domain_token(out, fields.by_host, domain_form);
    });
    // The last clause before the date ends with ";", which counts towards its line.
    let semicolon_after = |later_clauses: bool| if later_clauses { "" } else { ";" };
    field.clause(false, |out| {
        out.push_str("with ");
        out.push_str(fields.with.keyword());
        out.push_str(semicolon_after(
            fields.id.is_some() || fields.for_path.is_some(),
        ));
    });
    if let Some(id) = fields.id {
        field.clause(false, |out| {
            out.push_str("id ");
            push_atom_token(out, id);
            out.push_str(semicolon_after(fields.for_path.is_some()));
        });
    }
    if let Some(path) = fields.for_path {
        field.clause(true, |out| {
            out.push_str("for <");
            push_path_token(out, path);
            out.push_str(">;");
        });
    }
    field.clause(false, |out| {
        date::push_rfc5322_date(out, fields.date_unix_s, fields.utc_offset_min)
    });
    field.text.push_str("\r\n");
    field.text
}

/// The `Received:` field a host puts on a message it writes itself, such as a delivery status
/// notification, which no SMTP session brought (so there is no "from" clause, as Postfix
/// writes it): `Received: by mail.example.net id b1; DATE`. RFC 5322 3.6.7 wants a
/// `Received:` after the `Return-Path:` the final delivery adds.
pub fn local_received_header(
    by_host: &str,
    id: &str,
    date_unix_s: i64,
    utc_offset_min: i32,
) -> String {
    let mut field = FoldedField::new("Received:");
    field.clause(false, |out| {
        out.push_str("by ");
        push_domain_token(out, by_host, DomainForm::ALabels);
    });
    field.clause(false, |out| {
        out.push_str("id ");
        push_atom_token(out, id);
        out.push(';');
    });
    field.clause(false, |out| {
        date::push_rfc5322_date(out, date_unix_s, utc_offset_min)
    });
    field.text.push_str("\r\n");
    field.text
}

/// A header field written clause by clause, each clause starting a new folded line when asked
/// to or when it would not fit on the current one (RFC 5322 2.2.3).
struct FoldedField {
    text: String,
    /// Where the current line starts in `text`.
    line_start: usize,
    clauses: usize,
}

impl FoldedField {
    fn new(name: &str) -> Self {
        let mut text = String::with_capacity(256);
        text.push_str(name);
        FoldedField {
            text,
            line_start: 0,
            clauses: 0,
        }
    }

    fn clause(&mut self, new_line: bool, write: impl FnOnce(&mut String)) {
        let separator = self.text.len();
        self.text.push(' ');
        write(&mut self.text);
        let fits = self.text.len() - self.line_start <= LINE_PREFERRED_MAX;
        if self.clauses > 0 && (new_line || !fits) {
            self.text.replace_range(separator..separator + 1, "\r\n\t");
            self.line_start = separator + 2;
        }
        self.clauses += 1;
    }
}

/// `Return-Path: <reverse-path>` with its CRLF (RFC 5321 4.4); `<>` for a bounce.
pub fn return_path_header(reverse_path: &str) -> String {
    let mut out = String::from("Return-Path: <");
    push_path_token(&mut out, reverse_path);
    out.push_str(">\r\n");
    out
}

/// How many `Received:` fields the header section of `message` holds (RFC 5321 6.3 loop
/// detection).
pub fn count_received_headers(message: &[u8]) -> usize {
    count_header_fields(message, b"Received")
}

/// How many fields named `name` (any case) the header section of `message` holds. Stops at
/// the empty line that ends the header section. Space before the colon is tolerated, as RFC
/// 5322 4.5.3's obsolete syntax allows.
pub fn count_header_fields(message: &[u8], name: &[u8]) -> usize {
    // A plain loop over the lines: every message is counted at least once on arrival.
    let mut count = 0;
    let mut rest = message;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |newline| newline + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        // The name, then nothing but white space before the colon: what is before the
        // line's first colon, trimmed, is the name.
        if line
            .get(..name.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(name))
            && line[name.len()..]
                .iter()
                .find(|byte| !byte.is_ascii_whitespace())
                == Some(&b':')
        {
            count += 1;
        }
    }
    count
}

/// Where the header fields at the start of `message` end (after the last one's CRLF), and
/// whether what follows is the blank line that ends the header section, or nothing. A field
/// is a name of printable characters other than ":", then ":" (RFC 5322 2.2), or, in the
/// obsolete syntax a reader must still honour, white space between the name and the ":"
/// (RFC 5322 4.5, `Date : ...`); a line starting with a space or a tab continues the field
/// above (RFC 5322 2.2.3).
pub fn header_fields_end(message: &[u8]) -> (usize, bool) {
    let mut end = 0;
    for line in crate::smtp::dot::lines_inclusive(message) {
        let content = line.strip_suffix(b"\r\n").unwrap_or(line);
        let continuation = end > 0 && matches!(content.first(), Some(b' ' | b'\t'));
        let field = content
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| {
                let name = content[..colon].trim_ascii_end();
                !name.is_empty()
                    && content[name.len()..colon]
                        .iter()
                        .all(|&b| b == b' ' || b == b'\t')
                    && name.iter().all(|&b| (33..=126).contains(&b))
            });
        if !(field || continuation) {
            return (end, content.is_empty());
        }
        end += line.len();
    }
    (end, true)
}

/// Whether the header fields at the start of `message` (as [`header_fields_end`] finds them,
/// so a body line not set apart by an empty line is not one) hold anything but ASCII: UTF-8
/// header fields (RFC 6532 3).
pub fn has_utf8_header_fields(message: &[u8]) -> bool {
    // The fields lie within the header section: when it is ASCII, as nearly always, the
    // line-by-line reading of the fields is not needed.
    if header_section(message).is_ascii() {
        return false;
    }
    let (end, _) = header_fields_end(message);
    !message[..end].is_ascii()
}

/// Whether a line of `message`'s header section (everything before its first empty line)
/// might start a field named `name` (any case). A quick test, true for every message that has
/// one: the exact work of [`remove_header_fields`] can be skipped for nearly every message.
fn may_have_header_field(message: &[u8], name: &[u8]) -> bool {
    let mut rest = message;
    loop {
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return false;
        }
        if rest
            .get(..name.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(name))
        {
            return true;
        }
        match memchr::memchr(b'\n', rest) {
            Some(newline) => rest = &rest[newline + 1..],
            None => return false,
        }
    }
}

/// The length of the header field `name` (any case) that starts `message`, with its
/// continuation lines (RFC 5322 2.2.3), or 0 when the message starts with another line.
pub fn leading_field_len(message: &[u8], name: &[u8]) -> usize {
    let starts_with_name = message.len() > name.len()
        && message[..name.len()].eq_ignore_ascii_case(name)
        && message[name.len()] == b':';
    if !starts_with_name {
        return 0;
    }
    let mut end = 0;
    loop {
        match memchr::memchr(b'\n', &message[end..]) {
            Some(newline) => end += newline + 1,
            None => return message.len(),
        }
        if !matches!(message.get(end), Some(b' ' | b'\t')) {
            return end;
        }
    }
}

/// Appends `message` to `out` without the `Return-Path:` fields of its header section: final
/// delivery writes its own above it, and MAY remove those that came with the message (RFC
/// 5321 4.4). Nearly every message has none, and is only scanned.
pub fn push_without_return_path(out: &mut Vec<u8>, message: &[u8]) {
    let start = out.len();
    out.extend_from_slice(message);
    if may_have_header_field(message, b"Return-Path") {
        let (header_end, _) = header_fields_end(message);
        remove_header_fields(out, start, header_end, &[b"Return-Path"]);
    }
}

/// Makes the text after the header fields at `data[from..]` its body: when a line that is
/// neither a field nor the empty line follows them (or starts the message, which then has no
/// fields), the empty line that ends the header section goes before it (RFC 5322 2.1), as
/// Postfix's cleanup does. Without it, the fields a server writes above a message (`Received:`,
/// `Return-Path:`) would turn the first line of its body into a header line. Returns what
/// [`header_fields_end`] says of the message now.
pub fn separate_body(data: &mut Vec<u8>, from: usize) -> (usize, bool) {
    let (fields_end, separated) = header_fields_end(&data[from..]);
    let at = from + fields_end;
    // An empty line ended by a bare LF ends the section too (the callers' data has none: a
    // server refuses bare line endings or makes them CRLF).
    if !separated && !data[at..].starts_with(b"\n") {
        data.splice(at..at, *b"\r\n");
        return (fields_end, true);
    }
    (fields_end, separated)
}

/// Takes every field named in `names` (any case), with its continuation lines, out of the
/// header fields in `data[from..from + header_end]` (`header_end` as [`header_fields_end`]
/// says); returns where the header fields end now.
pub fn remove_header_fields(
    data: &mut Vec<u8>,
    from: usize,
    header_end: usize,
    names: &[&[u8]],
) -> usize {
    let is_named = |line: &[u8]| {
        // Most lines start with none of the names' letters: no need to compare names.
        line.first().is_some_and(|first| {
            names
                .iter()
                .any(|name| name.first().is_some_and(|n| n.eq_ignore_ascii_case(first)))
        }) && names.iter().any(|name| count_header_fields(line, name) > 0)
    };
    let fields = &data[from..from + header_end];
    if !crate::smtp::dot::lines_inclusive(fields).any(is_named) {
        return header_end;
    }
    let mut kept = Vec::with_capacity(header_end);
    let mut dropping = false;
    for line in crate::smtp::dot::lines_inclusive(fields) {
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            dropping = is_named(line);
        }
        if !dropping {
            kept.extend_from_slice(line);
        }
    }
    let kept_len = kept.len();
    data.splice(from..from + header_end, kept);
    kept_len
}

/// The header section of a message with CRLF line ends: everything before the first empty
/// line (RFC 5322 2.1), or the whole message when it has no body.
pub fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    // Built once: a searcher is costly to set up next to a header section of a few lines.
    static EMPTY_LINE: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    EMPTY_LINE
        .find(message)
        .map_or(message, |end| &message[..end])
}

/// How a trace field writes an internationalised domain name (RFC 6531 3.7.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum DomainForm {
    ALabels,
    ULabels,
}

/// Keeps letters, digits and the characters of domains and address literals; anything else
/// (spaces, parentheses, ";", line breaks) becomes "_". With `DomainForm::ALabels` a U-label
/// goes in as its A-label (RFC 5890 2.3.2.1): the field stays ASCII whatever name a client
/// gave, so that a message sent without SMTPUTF8 never gains a UTF-8 header field (RFC 6532
/// 3, RFC 6531 3.2). With `DomainForm::ULabels` (the transaction used SMTPUTF8) a valid IDN is
/// written in U-labels.
fn push_domain_token(out: &mut String, text: &str, form: DomainForm) {
    let domain_character =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':' | '_');
    if form == DomainForm::ULabels && !text.starts_with('[') && has_idn_labels(text) {
        // Only a name that is a valid IDN is written in U-labels; anything else (an EHLO
        // argument with other characters) is reduced to ASCII as without SMTPUTF8.
        let (unicode, valid) = idna::domain_to_unicode(text);
        if valid.is_ok()
            && unicode.len() <= TOKEN_MAX_OCTETS
            && unicode.chars().all(|c| {
                domain_character(c) || !(c.is_ascii() || c.is_control() || c.is_whitespace())
            })
        {
            out.push_str(&unicode);
            return;
        }
    }
    let ascii = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(domain_key(text))
    };
    push_sanitized(out, &ascii, domain_character)
}

/// Whether a domain name has a U-label or an A-label (`xn--`, RFC 5890 2.3.2.1).
fn has_idn_labels(name: &str) -> bool {
    !name.is_ascii()
        || name.split('.').any(|label| {
            label
                .as_bytes()
                .get(..4)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--"))
        })
}

/// An RFC 5322 atom (atext) for the id clause.
fn push_atom_token(out: &mut String, text: &str) {
    push_sanitized(out, text, |c| {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
    })
}

/// A path between angle brackets: no brackets, no controls, no spaces, except inside a quoted
/// local part, where RFC 5321 4.1.2 allows them (`"al ice"@b.test` is another mailbox than
/// `"al_ice"@b.test`).
fn push_path_token(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if super::address::is_writable_quoted_mailbox(text, TOKEN_MAX_OCTETS) {
        out.push_str(text);
        return;
    }
    push_sanitized(out, text, |c| {
        !c.is_control() && !c.is_whitespace() && c != '<' && c != '>'
    })
}

/// Appends `text` with every character `allowed` refuses replaced by "_", cut at
/// [`TOKEN_MAX_OCTETS`]; "unknown" when nothing is left.
fn push_sanitized(out: &mut String, text: &str, allowed: impl Fn(char) -> bool) {
    // Nearly always the text is fine as it is.
    if !text.is_empty() && text.len() <= TOKEN_MAX_OCTETS && text.chars().all(&allowed) {
        out.push_str(text);
        return;
    }
    let start = out.len();
    for c in text.chars() {
        let c = if allowed(c) { c } else { '_' };
        if out.len() - start + c.len_utf8() > TOKEN_MAX_OCTETS {
            break;
        }
        out.push(c);
    }
    if out.len() == start {
        out.push_str("unknown");
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_leading_field_is_measured_with_its_continuation_lines() {
        let folded = b"Received: from a\r\n\tby b; date\r\nDelivered-To: x\r\n\r\nbody\r\n";
        assert_eq!(
            leading_field_len(folded, b"Received"),
            "Received: from a\r\n\tby b; date\r\n".len()
        );
        assert_eq!(leading_field_len(b"received: by b\r\n", b"Received"), 16);
        // Without a final line ending, the field runs to the end.
        assert_eq!(leading_field_len(b"Received: by b", b"Received"), 14);
        // Another field first, a name that only starts the same, or nothing.
        assert_eq!(
            leading_field_len(b"Subject: x\r\nReceived: y\r\n", b"Received"),
            0
        );
        assert_eq!(leading_field_len(b"Received-SPF: pass\r\n", b"Received"), 0);
        assert_eq!(leading_field_len(b"Received", b"Received"), 0);
        assert_eq!(leading_field_len(b"", b"Received"), 0);
    }
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn fields() -> ReceivedFields<'static> {
        ReceivedFields {
            helo_name: "client.example",
            peer_name: Some("client.example"),
            peer_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            by_host: "mx.example.net",
            with: WithProtocol::Esmtp,
            id: Some("4F2A1"),
            for_path: Some("bob@example.net"),
            utf8_header: false,
            date_unix_s: 0,
            utc_offset_min: 0,
        }
    }

    #[test]
    fn received_has_the_rfc_5321_clauses_in_order() {
        assert_eq!(
            received_header(&fields()),
            "Received: from client.example (client.example [192.0.2.1])\r\n\
             \tby mx.example.net with ESMTP id 4F2A1\r\n\
             \tfor <bob@example.net>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn a_quoted_local_part_keeps_its_spaces_and_brackets() {
        let mut quoted = fields();
        quoted.for_path = Some("\"al <ice>\"@example.net");
        assert!(received_header(&quoted).contains("for <\"al <ice>\"@example.net>;"));
        assert_eq!(
            return_path_header("\"al ice\"@example.net"),
            "Return-Path: <\"al ice\"@example.net>\r\n"
        );
        // Outside quotes a space is no part of a path, and a line break never is.
        assert_eq!(
            return_path_header("al ice@x"),
            "Return-Path: <al_ice@x>\r\n"
        );
        assert_eq!(
            return_path_header("\"a\r\nb\"@x"),
            "Return-Path: <\"a__b\"@x>\r\n"
        );
    }

    #[test]
    fn minimal_received_and_ipv6() {
        let mut minimal = fields();
        minimal.peer_name = None;
        minimal.peer_address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        minimal.id = None;
        minimal.for_path = None;
        minimal.with = WithProtocol::Smtp;
        assert_eq!(
            received_header(&minimal),
            "Received: from client.example ([IPv6:2001:db8::1])\r\n\
             \tby mx.example.net with SMTP; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn a_long_client_name_keeps_its_address_on_a_line_of_its_own() {
        let long_name = format!("{}.example", "a".repeat(70));
        let mut long = fields();
        long.helo_name = &long_name;
        let header = received_header(&long);
        let lines: Vec<&str> = header.trim_end().split("\r\n").collect();
        assert_eq!(lines[0], format!("Received: from {long_name}"));
        assert_eq!(lines[1], "\t(client.example [192.0.2.1])");
        // A host's own trace field: no "from", no "with".
        assert_eq!(
            local_received_header("mx.example.net", "b1", 0, 0),
            "Received: by mx.example.net id b1; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }

    #[test]
    fn hostile_names_cannot_inject_lines() {
        let mut hostile = fields();
        hostile.helo_name = "evil\r\nX-Injected: yes (";
        hostile.id = Some("a b;c");
        hostile.for_path = Some("x>\r\n<y");
        let header = received_header(&hostile);
        assert!(!header.contains("\r\nX-Injected"));
        assert!(header.contains("from evil__X-Injected:_yes__ ("));
        assert!(header.contains("id a_b_c"));
        assert!(header.contains("for <x____y>;"));
        // Every line but the first is a continuation.
        for line in header.trim_end().split("\r\n").skip(1) {
            assert!(line.starts_with('\t'));
        }
    }

    #[test]
    fn u_label_names_go_in_as_a_labels() {
        // A client's EHLO name in U-labels must not make an ASCII message need SMTPUTF8.
        let mut idn = fields();
        idn.helo_name = "b\u{fc}.example";
        idn.by_host = "MX.B\u{dc}.example";
        let header = received_header(&idn);
        assert!(header.is_ascii(), "{header}");
        assert!(
            header.starts_with("Received: from xn--b-eha.example ("),
            "{header}"
        );
        assert!(header.contains("by mx.xn--b-eha.example with"), "{header}");
        // What IDNA refuses is not ASCII either way: its other characters become "_".
        idn.helo_name = "\u{2028}x";
        assert!(received_header(&idn).starts_with("Received: from _x ("));
    }

    #[test]
    fn an_smtputf8_transaction_names_domains_in_u_labels() {
        // RFC 6531 3.7.3: a server SHOULD use the U-label form in the trace field it adds to a
        // message that came with SMTPUTF8 and has a UTF-8 header; the client's EHLO name came
        // in A-labels (3.7.1).
        let mut idn = fields();
        idn.with = WithProtocol::Utf8Smtp;
        idn.utf8_header = true;
        idn.helo_name = "xn--b-eha.example";
        idn.peer_name = Some("MX.B\u{dc}.example");
        idn.by_host = "mx.xn--b-eha.example";
        let header = received_header(&idn);
        assert!(
            header.starts_with(
                "Received: from b\u{fc}.example (mx.b\u{fc}.example [192.0.2.1])\r\n\tby mx.b\u{fc}.example with UTF8SMTP"
            ),
            "{header}"
        );
        // A message whose header is ASCII came with SMTPUTF8 only for an address of its
        // envelope, and may go on without it to its other recipients: its trace field keeps
        // to RFC 5321, in A-labels.
        idn.utf8_header = false;
        let header = received_header(&idn);
        assert!(
            header.starts_with(
                "Received: from xn--b-eha.example (mx.xn--b-eha.example [192.0.2.1])\r\n\tby mx.xn--b-eha.example with UTF8SMTP"
            ),
            "{header}"
        );
        idn.utf8_header = true;
        // Names that are not IDNs stay as they are, and what IDNA refuses is still reduced
        // to ASCII, so nothing can add a line.
        idn.helo_name = "xn--zz\r\nX-Injected: yes";
        idn.peer_name = Some("[192.0.2.1]");
        idn.by_host = "mx.example.net";
        let header = received_header(&idn);
        assert!(
            header.starts_with("Received: from xn--zz__X-Injected:_yes ([192.0.2.1] [192.0.2.1])"),
            "{header}"
        );
        assert!(
            header.contains("by mx.example.net with UTF8SMTP"),
            "{header}"
        );
    }

    #[test]
    fn only_header_fields_make_a_message_have_a_utf8_header() {
        assert!(has_utf8_header_fields(
            "Subject: \u{fc}\r\n\r\nbody\r\n".as_bytes()
        ));
        assert!(has_utf8_header_fields(
            "Subject: hi\r\n \u{fc}\r\n".as_bytes()
        ));
        // A body line, set apart by an empty line or not, is no header field.
        for message in [
            "Subject: hi\r\n\r\nbody \u{fc}\r\n",
            "Subject: hi\r\nbody \u{fc}\r\n",
            "\u{fc} body only\r\n",
        ] {
            assert!(!has_utf8_header_fields(message.as_bytes()), "{message:?}");
        }
    }

    #[test]
    fn lines_stay_within_78_when_parts_allow() {
        let mut long = fields();
        long.by_host = "a-rather-long-mail-exchanger-name.mail.example.net";
        long.id = Some("0123456789ABCDEF0123");
        for line in received_header(&long).trim_end().split("\r\n") {
            assert!(line.len() <= LINE_PREFERRED_MAX, "{line:?}");
        }
    }

    #[test]
    fn protocol_keywords_follow_rfc_3848_and_6531() {
        assert_eq!(
            WithProtocol::for_session(false, false, false, false).keyword(),
            "SMTP"
        );
        assert_eq!(
            WithProtocol::for_session(true, false, true, false).keyword(),
            "ESMTPA"
        );
        assert_eq!(
            WithProtocol::for_session(true, true, true, false).keyword(),
            "ESMTPSA"
        );
        assert_eq!(
            WithProtocol::for_session(true, false, false, true).keyword(),
            "UTF8SMTP"
        );
        assert_eq!(
            address_literal("::ffff:192.0.2.7".parse().unwrap()),
            "[192.0.2.7]"
        );
    }

    #[test]
    fn return_path_and_loop_count() {
        assert_eq!(return_path_header(""), "Return-Path: <>\r\n");
        assert_eq!(
            return_path_header("alice@example.org"),
            "Return-Path: <alice@example.org>\r\n"
        );
        let message =
            b"Received: a\r\n\tcontinued\r\nRECEIVED: b\r\nSubject: x\r\n\r\nReceived: body\r\n";
        assert_eq!(count_received_headers(message), 2);
    }

    #[test]
    fn received_headers_are_counted_in_the_header_section_only() {
        let data = b"Received: a\r\nreceived : b\r\n\tfolded\r\nSubject: x\r\n\r\nReceived: c\r\n";
        assert_eq!(count_received_headers(data), 2);
        assert_eq!(count_received_headers(b""), 0);
    }

    #[test]
    fn address_literals_are_written_as_addresses_display_themselves() {
        let mut addresses: Vec<IpAddr> = [0u8, 1, 9, 10, 99, 100, 199, 200, 255]
            .iter()
            .flat_map(|&a| {
                [0u8, 7, 42, 255]
                    .map(|b| IpAddr::V4(Ipv4Addr::new(a, b, 10 * (a % 26), 100 + b % 156)))
            })
            .collect();
        addresses.push("::ffff:192.0.2.1".parse().unwrap());
        addresses.push("2001:db8::1".parse().unwrap());
        for address in addresses {
            let mut out = String::new();
            push_address_literal(&mut out, address);
            let expected = match address {
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => format!("[IPv6:{v6}]"),
                IpAddr::V6(v6) => format!("[{}]", v6.to_ipv4_mapped().unwrap()),
                IpAddr::V4(v4) => format!("[{v4}]"),
            };
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn tokens_are_kept_whole_only_when_nothing_in_them_is_refused() {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '.';
        for (text, expected) in [
            ("mx.example", "mx.example"),
            ("", "unknown"),
            ("a b", "a_b"),
            ("\u{e9}", "_"),
        ] {
            let mut out = String::from(">");
            push_sanitized(&mut out, text, allowed);
            assert_eq!(out, format!(">{expected}"));
        }
        let long = "a".repeat(TOKEN_MAX_OCTETS + 1);
        let mut out = String::new();
        push_sanitized(&mut out, &long, allowed);
        assert_eq!(out.len(), TOKEN_MAX_OCTETS);
        let mut out = String::new();
        push_sanitized(&mut out, &long[1..], allowed);
        assert_eq!(out.len(), TOKEN_MAX_OCTETS);
    }

    #[test]
    fn the_quick_field_test_finds_every_field_the_exact_one_would() {
        let name = b"Return-Path";
        for message in [
            &b"Return-Path: <a@b>\r\nSubject: x\r\n\r\nbody\r\n"[..],
            b"Subject: x\r\nreturn-path : <a@b>\r\n\r\n",
            b"Subject: x\nRETURN-PATH: <a@b>\n\nbody",
        ] {
            assert!(may_have_header_field(message, name));
        }
        // Not in the header section, or not at the start of a line: no.
        assert!(!may_have_header_field(
            b"Subject: x\r\n\r\nReturn-Path: <a@b>\r\n",
            name
        ));
        assert!(!may_have_header_field(
            b"X-Old-Return-Path: <a@b>\r\n\r\n",
            name
        ));
        assert!(!may_have_header_field(b"", name));
    }

    #[test]
    fn text_after_the_fields_is_put_under_an_empty_line() {
        let separated = |message: &[u8], from: usize| {
            let mut data = message.to_vec();
            separate_body(&mut data, from);
            String::from_utf8(data).unwrap()
        };
        assert_eq!(separated(b"R: x\r\nHello\r\n", 6), "R: x\r\n\r\nHello\r\n");
        assert_eq!(
            separated(b"A: 1\r\n b\r\nHello: no\r\nHi there\r\n", 0),
            "A: 1\r\n b\r\nHello: no\r\n\r\nHi there\r\n"
        );
        // Already separated, only fields, or nothing at all: unchanged.
        for message in [
            &b"A: 1\r\n\r\nHi\r\n"[..],
            b"A: 1\r\n",
            b"A: 1\r\n\nHi\n",
            b"",
        ] {
            assert_eq!(separated(message, 0).as_bytes(), message);
        }
    }

    #[test]
    fn a_field_is_named_by_what_is_before_its_first_colon() {
        // The rule written out: the text before the first colon, trimmed, is the name.
        let named = |line: &[u8], name: &[u8]| {
            line.iter()
                .position(|&byte| byte == b':')
                .is_some_and(|end| line[..end].trim_ascii_end().eq_ignore_ascii_case(name))
        };
        let lines = crate::smtp::dot::every_text(&[b"R", b"r", b":", b" ", b"\t", b"x"], 5);
        for line in lines.iter().filter(|line| !line.is_empty()) {
            let message = [line.as_slice(), b"\r\n"].concat();
            assert_eq!(
                count_header_fields(&message, b"R"),
                usize::from(named(line, b"R")),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
