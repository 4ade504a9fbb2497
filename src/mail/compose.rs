//! Composing an RFC 5322 message with MIME (RFC 2045-2049): header fields, a text body, and
//! attachments of any media type, as the bytes a client hands to DATA.
//!
//! It is not a parser and not a sender: it does not read messages back, does not touch the
//! SMTP envelope (Bcc recipients are returned for the envelope, never written into the header),
//! and uses nothing but its input, so the same request always gives the same bytes.
//!
//! Choices: the output is 7-bit wherever the composer has the choice (non-ASCII text goes as
//! quoted-printable, non-ASCII header text as RFC 2047 encoded words, attachments as base64),
//! so it can be sent to any server, with or without 8BITMIME. Three things make it 8-bit:
//! non-ASCII addresses (RFC 6532); a `message/*` (but `message/global*`) or `multipart/*`
//! attachment with 8-bit content, which no encoding may hide (RFC 2045 6.4); and non-ASCII
//! body text when the request asks for it as it is (`eight_bit_body`), as mail programs send
//! it to a server that offers 8BITMIME. Such a message needs 8BITMIME, as any 8-bit message
//! does.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{base64, boundary, date};

/// RFC 5322 2.1.1: lines should be at most 78 characters, must be at most 998.
pub const LINE_PREFERRED_MAX: usize = 78;
pub const LINE_MAX: usize = 998;

/// RFC 2045 6.7 and 6.8: encoded lines are at most 76 characters.
pub const ENCODED_LINE_MAX: usize = 76;

/// Limits on one request.
pub const ADDRESSES_MAX: usize = 1000;
pub const ATTACHMENTS_MAX: usize = 100;
pub const ATTACHMENTS_MAX_OCTETS: usize = 32 * 1024 * 1024;
pub const BODY_MAX_OCTETS: usize = 8 * 1024 * 1024;
pub const SUBJECT_MAX_CHARS: usize = 1000;
pub const FILENAME_MAX_OCTETS: usize = 255;

/// A file attached to the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's name; any directory part is dropped.
    pub filename: String,
    /// The media type (`image/png`); guessed from the file name when `None` or unusable.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Everything a message is made from. Addresses are `user@example.org` or
/// `Display Name <user@example.org>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRequest {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Envelope-only recipients (RFC 5322 3.6.3): never written into the header.
    pub bcc: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub attachments: Vec<Attachment>,
    /// The `Date:` time, seconds since 1970-01-01T00:00:00Z.
    pub date_unix_s: i64,
    pub utc_offset_min: i32,
    /// A token unique to this message (the caller's job), the left side of the Message-ID.
    pub message_id_token: String,
    /// The host name for the right side of the Message-ID.
    pub hostname: String,
    /// Non-ASCII body text goes as 8bit data (RFC 2045 2.8, RFC 6152) rather than
    /// quoted-printable, when it can: lines of at most 998 octets, and no control characters
    /// but tab (NUL is never 8bit data; the others are kept from a plain part's readers).
    #[serde(default)]
    pub eight_bit_body: bool,
}

impl ComposeRequest {
    /// The reverse-path for the envelope: the From address.
    pub fn reverse_path(&self) -> Result<String, ComposeError> {
        Ok(parse_mailbox("From", &self.from)?.address)
    }

    /// The forward paths for the envelope: To, Cc and Bcc addresses, in that order, each once.
    pub fn forward_paths(&self) -> Result<Vec<String>, ComposeError> {
        let mut paths: Vec<String> = Vec::new();
        for (field, list) in [("To", &self.to), ("Cc", &self.cc), ("Bcc", &self.bcc)] {
            for text in list.iter() {
                let address = parse_mailbox(field, text)?.address;
                if !paths.contains(&address) {
                    paths.push(address);
                }
            }
        }
        Ok(paths)
    }
}

/// Why a request cannot become a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComposeError {
    InvalidAddress {
        field: &'static str,
        value: String,
    },
    /// An address longer than an envelope can carry it (RFC 5321 4.5.3.1.3: a path of 256
    /// octets with its angle brackets).
    AddressTooLong {
        field: &'static str,
        value: String,
        octets: usize,
    },
    TooManyAddresses {
        count: usize,
        max: usize,
    },
    TooManyAttachments {
        count: usize,
        max: usize,
    },
    TooLarge {
        what: &'static str,
        octets: usize,
        max: usize,
    },
    /// An attachment of a composite media type (`message/*` but `message/global*`,
    /// `multipart/*`), which goes unencoded (RFC 2045 6.4), whose content cannot be sent that
    /// way.
    UnencodableAttachment {
        filename: String,
        media_type: String,
        problem: UnencodableContent,
    },
    /// A `message/rfc822` attachment with an 8-bit octet (at this offset of the content) in
    /// its header section, whose fields are always US-ASCII (RFC 2046 5.2.1): a message with
    /// UTF-8 header fields is a `message/global` (RFC 6532 3.7).
    NonAsciiHeader {
        filename: String,
        offset: usize,
    },
    /// A `multipart/*` attachment whose boundary (RFC 2046 5.1.1) is missing, malformed, or
    /// not used by its content: no reader could find its parts.
    BadBoundary {
        filename: String,
        media_type: String,
        problem: BoundaryProblem,
    },
}

/// What is wrong with a multipart attachment's boundary (RFC 2046 5.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundaryProblem {
    /// No `boundary` parameter, which every multipart type requires.
    Missing,
    /// A `boundary` that is not 1 to 70 `bchars`, or that ends in a space.
    Invalid { boundary: String },
    /// No delimiter line (`--` and the boundary) in the content.
    NoDelimiter { boundary: String },
    /// No close delimiter line (`--`, the boundary, `--`) after the first delimiter line.
    NoCloseDelimiter { boundary: String },
}

/// Why content cannot go as 7bit or 8bit data (RFC 2045 2.7, 2.8), after its line breaks are
/// made CRLF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnencodableContent {
    /// A NUL octet, at this offset of the content.
    Nul { offset: usize },
    /// A line (numbered from 1) longer than 998 octets, CRLF not counted.
    LongLine { line: usize, octets: usize },
    /// An 8-bit octet, at this offset, in a type that must be 7bit.
    EightBit { offset: usize },
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComposeError::InvalidAddress { field, value } => {
                write!(f, "{field}: not an address: {}", shortened_value(value))
            }
            ComposeError::AddressTooLong {
                field,
                value,
                octets,
            } => write!(
                f,
                "{field}: an address of {octets} octets, longer than the {ADDRESS_MAX_OCTETS} an \
                 envelope carries (RFC 5321 4.5.3.1.3): {}",
                shortened_value(value)
            ),
            ComposeError::TooManyAddresses { count, max } => {
                write!(f, "{count} addresses, more than {max}")
            }
            ComposeError::TooManyAttachments { count, max } => {
                write!(f, "{count} attachments, more than {max}")
            }
            ComposeError::TooLarge { what, octets, max } => {
                write!(f, "{what} of {octets} octets, more than {max}")
            }
            ComposeError::UnencodableAttachment {
                filename,
                media_type,
                problem,
            } => {
                write!(f, "attachment {filename:?} ({media_type}): ")?;
                // RFC 2045 6.4: no base64 or quoted-printable for a composite type, so the
                // content must already be 7bit or 8bit data (RFC 2045 2.7, 2.8).
                let rule = "cannot be base64-encoded (RFC 2045 6.4), and 7bit or 8bit data";
                match problem {
                    UnencodableContent::Nul { offset } => write!(
                        f,
                        "a NUL octet at offset {offset}; a {media_type} part {rule} has no NUL \
                         (RFC 2045 2.7, 2.8)"
                    ),
                    UnencodableContent::LongLine { line, octets } => write!(
                        f,
                        "line {line} has {octets} octets; a {media_type} part {rule} has lines \
                         of at most {LINE_MAX} octets (RFC 2045 2.7, 2.8)"
                    ),
                    UnencodableContent::EightBit { offset } => write!(
                        f,
                        "an 8-bit octet at offset {offset}; a {media_type} part must be 7bit \
                         (RFC 2046 5.2.2, 5.2.3)"
                    ),
                }
            }
            ComposeError::NonAsciiHeader { filename, offset } => write!(
                f,
                "attachment {filename:?} (message/rfc822): an 8-bit octet at offset {offset}, in \
                 the header section; the header fields of a message/rfc822 are always US-ASCII \
                 (RFC 2046 5.2.1), and a message with UTF-8 header fields is a message/global \
                 (RFC 6532 3.7): give it that type"
            ),
            ComposeError::BadBoundary {
                filename,
                media_type,
                problem,
            } => {
                write!(f, "attachment {filename:?} ({media_type}): ")?;
                match problem {
                    BoundaryProblem::Missing => write!(
                        f,
                        "no boundary parameter; a multipart type requires one, and its \
                         content is parts between delimiter lines made of it (RFC 2046 5.1.1)"
                    ),
                    BoundaryProblem::Invalid { boundary } => write!(
                        f,
                        "boundary {boundary:?} is not allowed; a boundary is 1 to \
                         {BOUNDARY_MAX} letters, digits, spaces and '()+_,-./:=?, and does not \
                         end in a space (RFC 2046 5.1.1)"
                    ),
                    BoundaryProblem::NoDelimiter { boundary } => write!(
                        f,
                        "no line of the content is the delimiter \"--{boundary}\" that the \
                         boundary parameter announces (RFC 2046 5.1.1)"
                    ),
                    BoundaryProblem::NoCloseDelimiter { boundary } => write!(
                        f,
                        "no line of the content after the first delimiter is the close \
                         delimiter \"--{boundary}--\" (RFC 2046 5.1.1)"
                    ),
                }
            }
        }
    }
}

impl std::error::Error for ComposeError {}

/// The longest address a path holds: 256 octets with its angle brackets (RFC 5321 4.5.3.1.3).
const ADDRESS_MAX_OCTETS: usize = 254;
/// The most characters of a refused value quoted in its error.
const VALUE_CHARS_QUOTED: usize = 80;

/// `value` quoted as an error shows it (escaped, as Rust's debug form writes it): whole, or
/// its start and how long it is, so that a huge value does not bury the reason.
fn shortened_value(value: &str) -> String {
    let count = value.chars().count();
    if count <= VALUE_CHARS_QUOTED {
        return format!("{value:?}");
    }
    let start: String = value.chars().take(VALUE_CHARS_QUOTED).collect();
    format!("{start:?}... ({count} characters)")
}

/// A display name and an address (RFC 5322 3.4 `name-addr` / `addr-spec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub display_name: Option<String>,
    pub address: String,
}

/// Reads `user@example.org`, `<user@example.org>` or `Name <user@example.org>` (the name may
/// be quoted). The address must have one "@" with something on both sides and no spaces,
/// controls, brackets, commas, semicolons or quotes, or else be one with a quoted local part
/// (`"al ice"@example.org`) that the SMTP address grammar takes.
pub fn parse_mailbox(field: &'static str, text: &str) -> Result<Mailbox, ComposeError> {
    let invalid = || ComposeError::InvalidAddress {
        field,
        value: text.to_string(),
    };
    let text = text.trim();
    // A quoted local part may hold angle brackets ("<x>"@example.org, RFC 5321 4.1.2): such
    // an address is one, not a display name before one.
    let quoted_address =
        text.starts_with('"') && crate::smtp::address::Mailbox::parse(text).is_ok();
    let (display_name, address) = match (text.rfind('<'), text.ends_with('>')) {
        _ if quoted_address => (None, text),
        (Some(open), true) => {
            let name = text[..open].trim();
            let shape = phrase_shape(name);
            // A special such as an angle bracket or `@` is no word of a phrase (RFC 5322
            // 3.2.3, 3.4): a name that has one outside quotes holds an address
            // (`Bob <bob@b.test> <eve@e.test>`, `"Bob" <bob@b.test> "Eve"`,
            // `bob@b.test <eve@e.test>`), a mistake or a disguise, not a name; nor is one whose
            // last quote is not closed.
            if shape.unquoted_special || shape.unclosed_quote {
                return Err(invalid());
            }
            let name = match shape.one_quoted_string {
                true => &name[1..name.len() - 1],
                false => name,
            };
            let name = name.replace("\\\"", "\"").replace("\\\\", "\\");
            let name = (!name.is_empty()).then_some(name);
            (name, &text[open + 1..text.len() - 1])
        }
        (None, false) => (None, text),
        _ => return Err(invalid()),
    };
    let plain = address.split('@').count() == 2
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c));
    // A quoted local part ("al ice"@example.org) or an address literal (postmaster@[192.0.2.1])
    // makes an address too (RFC 5321 4.1.2, 4.1.3, RFC 5322 3.4.1); the SMTP grammar checks
    // it, as the server will.
    let quoted = (address.starts_with('"') || address.ends_with(']'))
        && crate::smtp::address::Mailbox::parse(address).is_ok();
    if !(plain || quoted) {
        return Err(invalid());
    }
    if address.len() > ADDRESS_MAX_OCTETS {
        return Err(ComposeError::AddressTooLong {
            field,
            value: text.to_string(),
            octets: address.len(),
        });
    }
    if let Some(name) = &display_name {
        if name.chars().any(char::is_control) {
            return Err(invalid());
        }
    }
    Ok(Mailbox {
        display_name,
        address: address.to_string(),
    })
}

/// How a display name as written is made of quoted-strings (RFC 5322 3.2.4) and the rest.
#[derive(Debug, PartialEq, Eq)]
struct PhraseShape {
    /// A special a phrase cannot hold outside quotes: `<`, `>`, `@`, `[`, `]`, `:`, `;` or
    /// `\` (RFC 5322 3.2.3; a comment's parentheses and an obsolete phrase's dots are kept).
    unquoted_special: bool,
    /// A quote opened and never closed.
    unclosed_quote: bool,
    /// The name is one quoted-string whole (`"Doe, Jane"`, not `"A" "B"`).
    one_quoted_string: bool,
}

/// The [`PhraseShape`] of `name`. A backslash in quotes escapes what follows.
fn phrase_shape(name: &str) -> PhraseShape {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut unquoted_special = false;
    // Quoted-strings closed before the end: with none, a name that starts and ends with a
    // quote is one quoted-string.
    let mut closed_early = false;
    for (index, c) in name.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => {
                closed_early |= in_quotes && index + 1 < name.len();
                in_quotes = !in_quotes;
            }
            '<' | '>' | '@' | '[' | ']' | ':' | ';' | '\\' if !in_quotes => unquoted_special = true,
            _ => {}
        }
    }
    PhraseShape {
        unquoted_special,
        unclosed_quote: in_quotes,
        one_quoted_string: !in_quotes
            && !closed_early
            && name.len() >= 2
            && name.starts_with('"')
            && name.ends_with('"'),
    }
}

/// The address that goes in the envelope for one written as a header field writes it: a
/// display name and the angle brackets around the address (`Jane <jane@b.test>`) are the
/// header's alone (RFC 5322 3.4), and MAIL FROM and RCPT TO take the address (RFC 5321
/// 4.1.2). What [`parse_mailbox`] cannot read goes as what its brackets hold (`jane@@b.test`
/// for `Jane <jane@@b.test>`), or as written when they hold nothing or there is more than one
/// pair (`Bob <bob@b.test> <eve@c.test>` names neither), for the SMTP client to refuse with
/// its reason.
pub fn envelope_address(written: &str) -> Cow<'_, str> {
    // An address ends in its domain; only a name-addr ends in '>'.
    let Some(bracketed) = written.trim_end().strip_suffix('>') else {
        return Cow::Borrowed(written);
    };
    if let Ok(mailbox) = parse_mailbox("address", written) {
        return Cow::Owned(mailbox.address);
    }
    match bracketed.rsplit_once('<') {
        Some((name, inside)) if !inside.trim().is_empty() && !name.contains(['<', '>']) => {
            Cow::Borrowed(inside.trim())
        }
        _ => Cow::Borrowed(written),
    }
}

/// The media type for a file name, from its extension (case-insensitive).
pub fn media_type_for_filename(filename: &str) -> &'static str {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" => "text/plain",
        // RFC 4180 3.
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The message, CRLF line endings throughout, ready for [`crate::smtp::dot::dot_stuff`].
pub fn compose(request: &ComposeRequest) -> Result<Vec<u8>, ComposeError> {
    let address_count = request.to.len() + request.cc.len() + request.bcc.len();
    if address_count > ADDRESSES_MAX {
        return Err(ComposeError::TooManyAddresses {
            count: address_count,
            max: ADDRESSES_MAX,
        });
    }
    if request.attachments.len() > ATTACHMENTS_MAX {
        return Err(ComposeError::TooManyAttachments {
            count: request.attachments.len(),
            max: ATTACHMENTS_MAX,
        });
    }
    let attachment_octets: usize = request.attachments.iter().map(|a| a.bytes.len()).sum();
    if attachment_octets > ATTACHMENTS_MAX_OCTETS {
        return Err(ComposeError::TooLarge {
            what: "attachments",
            octets: attachment_octets,
            max: ATTACHMENTS_MAX_OCTETS,
        });
    }
    if request.body_text.len() > BODY_MAX_OCTETS {
        return Err(ComposeError::TooLarge {
            what: "body text",
            octets: request.body_text.len(),
            max: BODY_MAX_OCTETS,
        });
    }
    // Bcc addresses are checked, then left out (RFC 5322 3.6.3).
    for bcc in &request.bcc {
        parse_mailbox("Bcc", bcc)?;
    }

    let mut header = String::with_capacity(512);
    header.push_str("Date: ");
    date::push_rfc5322_date(&mut header, request.date_unix_s, request.utc_offset_min);
    header.push_str("\r\n");
    let from = parse_mailbox("From", &request.from)?;
    push_address_field(&mut header, "From", &[from]);
    let to = parse_list("To", &request.to)?;
    let cc = parse_list("Cc", &request.cc)?;
    if to.is_empty() && cc.is_empty() {
        // RFC 5322 A.1.3: a message for Bcc recipients only names an empty group.
        header.push_str("To: undisclosed-recipients:;\r\n");
    } else if !to.is_empty() {
        push_address_field(&mut header, "To", &to);
    }
    if !cc.is_empty() {
        push_address_field(&mut header, "Cc", &cc);
    }
    push_subject_field(&mut header, &request.subject);
    header.push_str("Message-ID: <");
    header.push_str(&message_id_left(&request.message_id_token, "message"));
    header.push('@');
    header.push_str(&id_right(&request.hostname));
    header.push_str(">\r\n");
    header.push_str("MIME-Version: 1.0\r\n");

    let (text_encoding, text_body) = text_part(&request.body_text, request.eight_bit_body);
    // Written out whole rather than formatted: one allocation less for every message.
    let text_headers = match text_encoding {
        TransferEncoding::SevenBit => {
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"
        }
        TransferEncoding::EightBit => {
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        }
        // `text_part` never gives base64.
        TransferEncoding::QuotedPrintable | TransferEncoding::Base64 => {
            "Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n"
        }
    };
    let mut message = header.into_bytes();
    if request.attachments.is_empty() {
        message.extend_from_slice(text_headers.as_bytes());
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(&text_body);
        return Ok(message);
    }

    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(request.attachments.len() + 1);
    let mut text = text_headers.as_bytes().to_vec();
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(&text_body);
    parts.push(text);
    let mut eight_bit = text_encoding == TransferEncoding::EightBit;
    for attachment in &request.attachments {
        let (part, encoding) = attachment_part(attachment)?;
        eight_bit |= encoding == TransferEncoding::EightBit;
        parts.push(part);
    }
    // The parts as they will be sent, unencoded content included: the boundary must occur in
    // none of them (RFC 2046 5.1.1).
    let boundary = choose_boundary(request, &parts);
    message.extend_from_slice(
        format!("Content-Type: multipart/mixed;\r\n boundary=\"{boundary}\"\r\n").as_bytes(),
    );
    // RFC 2045 6.4: a composite entity holding an 8bit part is itself 8bit data, and the
    // default label, 7bit, would be wrong.
    if eight_bit {
        message.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    }
    message.extend_from_slice(b"\r\n");
    // RFC 2046 5.1.1: the preamble is for readers without MIME.
    message.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
    for part in &parts {
        message.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        // Each part keeps its own last line break: the CRLF before the next delimiter
        // belongs to the delimiter (RFC 2046 5.1.1), and "body parts that must be considered
        // to end with line breaks ... must have two CRLFs preceding the boundary delimiter
        // line". Text typed with a final newline arrives with it.
        message.extend_from_slice(part);
    }
    message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(message)
}

fn parse_list(field: &'static str, list: &[String]) -> Result<Vec<Mailbox>, ComposeError> {
    list.iter().map(|text| parse_mailbox(field, text)).collect()
}

/// Appends `Field: a, b, c` folded after commas to stay within 78 characters where possible,
/// and within 76 when a display name is encoded (RFC 2047 2 limits every line holding an
/// encoded word).
fn push_address_field(out: &mut String, field: &str, mailboxes: &[Mailbox]) {
    out.push_str(field);
    out.push(':');
    let line_max = if mailboxes
        .iter()
        .any(|m| m.display_name.as_deref().is_some_and(is_encoded))
    {
        ENCODED_LINE_MAX
    } else {
        LINE_PREFERRED_MAX
    };
    let mut line_len = field.len() + 1;
    let mut first = true;
    let mut push_segment = |out: &mut String, segment: &str, comma: bool| {
        // A segment's own spaces (a run in a quoted display name) go with the one before it,
        // and a fold may go before any of them, never before the first segment on the line.
        let word = segment.trim_start_matches(' ');
        let spaces = 1 + segment.len() - word.len();
        let tail = if comma { "," } else { "" };
        push_after_spaces(out, &mut line_len, spaces, word, tail, !first, line_max);
        first = false;
    };
    for (index, mailbox) in mailboxes.iter().enumerate() {
        let more = index + 1 < mailboxes.len();
        if mailbox.display_name.is_none() {
            // Most addresses: one piece, nothing to build.
            push_segment(out, &mailbox.address, more);
            continue;
        }
        let segments = mailbox_segments(mailbox);
        for (position, segment) in segments.iter().enumerate() {
            push_segment(out, segment, more && position + 1 == segments.len());
        }
    }
    out.push_str("\r\n");
}

/// Appends `spaces` spaces, `word` and `tail` to a header field whose current line is
/// `line_len` characters long. When they do not fit within `line_max` and `may_fold`, the
/// line is folded: CRLF before one of the spaces (RFC 5322 2.2.3), which stay, each on the
/// line it was on. The fold is chosen within this run of spaces only: as many of them as
/// this line has room for stay at its end, and at least one starts the next, which holds
/// the word, so that no line is nothing but white space (RFC 5322 4.2 calls that obsolete,
/// and 4 forbids generating it).
fn push_after_spaces(
    out: &mut String,
    line_len: &mut usize,
    spaces: usize,
    word: &str,
    tail: &str,
    may_fold: bool,
    line_max: usize,
) {
    let text_len = word.len() + tail.len();
    let mut spaces_left = spaces;
    if may_fold && spaces > 0 && *line_len + spaces + text_len > line_max {
        let kept = (spaces - 1).min(line_max.saturating_sub(*line_len));
        out.extend(std::iter::repeat_n(' ', kept));
        out.push_str("\r\n");
        *line_len = 0;
        spaces_left = spaces - kept;
    }
    out.extend(std::iter::repeat_n(' ', spaces_left));
    out.push_str(word);
    out.push_str(tail);
    *line_len += spaces_left + text_len;
}

/// Whether a display name goes as encoded words (RFC 2047 5(3): allowed in a phrase): when it
/// is not ASCII, looks like an encoded word, or is too long to go as it is: longer than
/// [`PLAIN_DISPLAY_NAME_MAX_OCTETS`], or with a word that no fold could break to fit a line.
fn is_encoded(name: &str) -> bool {
    !name.is_ascii()
        || name.contains("=?")
        || name.len() > PLAIN_DISPLAY_NAME_MAX_OCTETS
        || name
            .split(|c| c != ' ')
            .any(|spaces| spaces.len() > PLAIN_WORD_MAX_OCTETS)
        || name.split(' ').any(|word| {
            // As written: every '"' and '\\' escaped in a quoted string. Its quotes (two
            // more characters) still fit: "From: " and a quoted word of 69 are 75.
            let escapes = word.bytes().filter(|&b| b == b'"' || b == b'\\').count();
            word.len() + escapes > PLAIN_WORD_MAX_OCTETS
        })
}

/// The longest display name written as it is (as atoms or a quoted string): quoted with every
/// character escaped, it is at most 600 octets, which a fold at any of its spaces breaks into
/// lines far below 998 (RFC 5322 2.1.1). Longer ones go as encoded words.
const PLAIN_DISPLAY_NAME_MAX_OCTETS: usize = 300;

/// The longest word (of a subject, of a display name as written) that goes as it is: with a
/// field name before it on the first line, or a space before it on a folded one, it stays
/// within 78 characters. A longer one could not be folded to fit, and goes as encoded words.
const PLAIN_WORD_MAX_OCTETS: usize = LINE_PREFERRED_MAX - 11;

/// A mailbox as header text, in the pieces a fold may go between: the address alone; or the
/// display name as atoms or a quoted string with the address, in one piece when they fit a
/// line, or else each word of the name, then the address; or, when the name is encoded (see
/// [`is_encoded`]), each of its encoded words, then the address.
fn mailbox_segments(mailbox: &Mailbox) -> Vec<Cow<'_, str>> {
    let Some(name) = &mailbox.display_name else {
        return vec![Cow::Borrowed(mailbox.address.as_str())];
    };
    let angle_address = || format!("<{}>", mailbox.address);
    if is_encoded(name) {
        let mut segments: Vec<Cow<str>> =
            encoded_words(name, 0).into_iter().map(Cow::Owned).collect();
        segments.push(Cow::Owned(angle_address()));
        return segments;
    }
    // Atoms when they say it all; a quoted string keeps what a phrase of atoms would not:
    // specials, and spaces at either end or in a run (RFC 5322 3.2.3: the white space
    // between atoms is not part of them).
    let atoms_say_it_all = name
        .chars()
        .all(|c| c == ' ' || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
        && !name.trim().is_empty()
        && name.trim() == name
        && !name.contains("  ");
    let name = if atoms_say_it_all {
        Cow::Borrowed(name.as_str())
    } else {
        Cow::Owned(format!("\"{}\"", escaped_for_quotes(name)))
    };
    let angle_address = angle_address();
    if name.len() + angle_address.len() < LINE_PREFERRED_MAX - "Field: ".len() {
        return vec![Cow::Owned(format!("{name} {angle_address}"))];
    }
    // Too long for one line: a fold may go at any space between the words of a phrase, in a
    // quoted string too, whose folds are not part of it (RFC 5322 3.2.4), and before the
    // address (3.4). The spaces of a run beyond the first start the next segment, so that
    // the name unfolds to itself; every segment holds a word (or, the first, the opening
    // quote, and the last of a quoted name, the closing one).
    let mut segments: Vec<Cow<str>> = Vec::new();
    let mut run = String::new();
    for (index, word) in name.split(' ').enumerate() {
        if index > 0 && word.is_empty() {
            run.push(' ');
            continue;
        }
        run.push_str(word);
        segments.push(Cow::Owned(std::mem::take(&mut run)));
    }
    segments.push(Cow::Owned(angle_address));
    segments
}

/// Appends `Subject:` as ASCII folded at spaces, or as RFC 2047 encoded words when the text
/// is not plain ASCII or holds something that looks like an encoded word.
fn push_subject_field(out: &mut String, subject: &str) {
    let cleaned: Cow<str> =
        if subject.len() <= SUBJECT_MAX_CHARS && !subject.chars().any(char::is_control) {
            Cow::Borrowed(subject)
        } else {
            subject
                .chars()
                .take(SUBJECT_MAX_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
    // Words, and runs of spaces, short enough to fold around; anything else is encoded.
    let plain = cleaned.is_ascii()
        && !cleaned.contains("=?")
        && cleaned
            .split(' ')
            .all(|word| word.len() <= PLAIN_WORD_MAX_OCTETS)
        && cleaned
            .split(|c| c != ' ')
            .all(|spaces| spaces.len() <= PLAIN_WORD_MAX_OCTETS);
    if plain {
        out.push_str("Subject:");
        let mut line_len = "Subject:".len();
        // Each word with the run of spaces before it (the first: the space after the colon
        // and any the subject starts with); spaces at the end go with the last word, so that
        // they count when it is placed.
        let words = cleaned.trim_end_matches(' ');
        let trailing = " ".repeat(cleaned.len() - words.len());
        let mut spaces = 1;
        let mut first = true;
        let mut pieces = words.split(' ').peekable();
        while let Some(word) = pieces.next() {
            if word.is_empty() {
                spaces += 1;
                continue;
            }
            let tail = if pieces.peek().is_none() {
                trailing.as_str()
            } else {
                ""
            };
            let may_fold = !first;
            push_after_spaces(
                out,
                &mut line_len,
                spaces,
                word,
                tail,
                may_fold,
                LINE_PREFERRED_MAX,
            );
            spaces = 1;
            first = false;
        }
        if first {
            // Nothing but spaces (or nothing): the one after the colon, and the subject's.
            out.push(' ');
            out.push_str(&trailing);
        }
        out.push_str("\r\n");
        return;
    }
    let words = encoded_words(&cleaned, "Subject: ".len());
    out.push_str("Subject: ");
    out.push_str(&words.join("\r\n "));
    out.push_str("\r\n");
}

/// RFC 2047 `=?UTF-8?B?...?=` words, each at most 75 characters and splitting only between
/// characters (RFC 2047 5), sized so that each line, with `first_line_prefix` on the first,
/// stays within 76.
fn encoded_words(text: &str, first_line_prefix: usize) -> Vec<String> {
    // RFC 2047 2: a line holding an encoded word is at most 76 characters. 39 octets are 52
    // base64 characters; with "=?UTF-8?B?" and "?=" a word is 64, and 64 plus "Subject: " is
    // 73 (a folded line, a space and a word, 65).
    debug_assert!(first_line_prefix <= 10);
    const CHUNK_OCTETS_MAX: usize = 39;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for (at, c) in text.char_indices() {
        if chunk.len() + c.len_utf8() > CHUNK_OCTETS_MAX {
            // An encoded word ends after its last space when the text word it would cut fits
            // whole in the next one, so that each holds whole words: RFC 2047 6.2 has readers
            // join adjacent encoded words, but some show a space where a word was split, and
            // a student reading the raw field finds the words whole. A text word too long for
            // one encoded word is cut between characters, as it must be.
            let cut = chunk
                .rfind(' ')
                .filter(|&space| space > 0)
                .filter(|&space| {
                    let word_end = text[at..].find(' ').unwrap_or(text.len() - at);
                    chunk.len() - (space + 1) + word_end <= CHUNK_OCTETS_MAX
                })
                .map_or(chunk.len(), |space| space + 1);
            let rest = chunk.split_off(cut);
            words.push(format!("=?UTF-8?B?{}?=", base64::encode(chunk.as_bytes())));
            chunk = rest;
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64::encode(chunk.as_bytes())));
    }
    words
}

/// How the text part goes, and its body so encoded. ASCII text with short lines and no
/// control characters but tab goes as 7bit; other such text as 8bit when `eight_bit` asks for
/// it (RFC 2045 2.8); anything else as quoted-printable, which keeps the message 7-bit.
fn text_part(body_text: &str, eight_bit: bool) -> (TransferEncoding, Vec<u8>) {
    let normalized = crate::smtp::dot::normalized(body_text.as_bytes());
    // 7bit and 8bit data (RFC 2045 2.7, 2.8): no NUL, lines of at most 998 octets before
    // their CRLF. Other controls are allowed there, but a plain part is kept free of them for
    // its readers.
    let short_clean_lines = crate::smtp::dot::binary_content(&normalized).is_none()
        && !normalized
            .iter()
            .any(|&b| b.is_ascii_control() && !matches!(b, b'\r' | b'\n' | b'\t'));
    match (short_clean_lines, normalized.is_ascii()) {
        (true, true) => (TransferEncoding::SevenBit, normalized.into_owned()),
        (true, false) if eight_bit => (TransferEncoding::EightBit, normalized.into_owned()),
        _ => (
            TransferEncoding::QuotedPrintable,
            quoted_printable(&normalized),
        ),
    }
}

/// Quoted-printable (RFC 2045 6.7) of CRLF-separated text: line breaks stay hard breaks, lines
/// longer than 76 get soft breaks ("=" at the end), and "=", controls, 8-bit octets and
/// whitespace at the end of a line become `=XX`.
pub fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 2 + 8);
    let ends_with_break = text.ends_with(b"\r\n");
    let body = text.strip_suffix(b"\r\n").unwrap_or(text);
    let lines: Vec<&[u8]> = if body.is_empty() && ends_with_break {
        vec![&[][..]]
    } else if body.is_empty() {
        Vec::new()
    } else {
        split_crlf(body)
    };
    for (index, line) in lines.iter().enumerate() {
        let mut line_len = 0;
        for (position, &byte) in line.iter().enumerate() {
            let is_last = position + 1 == line.len();
            let literal = match byte {
                b'=' => false,
                b' ' | b'\t' => !is_last,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Leave room for the "=" of a soft break unless this is the line's last octet.
            let limit = if is_last {
                ENCODED_LINE_MAX
            } else {
                ENCODED_LINE_MAX - 1
            };
            if line_len + width > limit {
                out.extend_from_slice(b"=\r\n");
                line_len = 0;
            }
            if literal {
                out.push(byte);
            } else {
                out.extend_from_slice(format!("={byte:02X}").as_bytes());
            }
            line_len += width;
        }
        if index + 1 < lines.len() || ends_with_break {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// `text` split at each CRLF, the CRLFs left out; what follows the last one is a line too.
fn split_crlf(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = crate::smtp::dot::crlf_lines(text)
        .into_iter()
        .map(|line| line.strip_suffix(b"\r\n").unwrap_or(line))
        .collect();
    // What follows the last CRLF is a line too, even when empty.
    if text.is_empty() || text.ends_with(b"\r\n") {
        lines.push(&[]);
    }
    lines
}

/// How a part's content is carried (RFC 2045 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TransferEncoding {
    /// As it is, short lines of ASCII without NUL (RFC 2045 2.7).
    SevenBit,
    /// As it is, short lines without NUL, with 8-bit octets (RFC 2045 2.8).
    EightBit,
    /// Text with its non-ASCII octets (and `=`, and some others) as `=XX`, in lines of at most
    /// 76 characters (RFC 2045 6.7).
    QuotedPrintable,
    Base64,
}

impl TransferEncoding {
    /// The Content-Transfer-Encoding value.
    fn name(self) -> &'static str {
        match self {
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::EightBit => "8bit",
            TransferEncoding::QuotedPrintable => "quoted-printable",
            TransferEncoding::Base64 => "base64",
        }
    }
}

/// Whether a media type is composite, one whose body may hold other entities: RFC 2045 6.4
/// forbids any encoding of it but 7bit, 8bit or binary (so do RFC 2046 5.1.1 for multipart and
/// 5.2.1 for message/rfc822), so its content goes in as it is.
///
/// The `message/global*` types are the exception (see [`is_global_message`]): they go in
/// base64 like a leaf type (of their canonical form, CRLF line breaks), which also keeps their
/// UTF-8 7-bit (the notices in `dsn` send `message/global` in base64 and
/// `message/global-headers` in quoted-printable).
fn is_composite(essence: &str) -> bool {
    essence.starts_with("multipart/")
        || (essence.starts_with("message/") && !is_global_message(essence))
}

/// The message types of internationalized email: `message/global` (RFC 6532 3.7) and the
/// three RFC 6533 defines for notices, `message/global-headers`,
/// `message/global-delivery-status` and `message/global-disposition-notification`. RFC 6532
/// 3.5 relaxes RFC 2045 6.4 for these newly defined types, whose registrations permit any
/// content-transfer-encoding, base64 and quoted-printable included. All four hold lines of
/// UTF-8 text, where LF is LF.
fn is_global_message(essence: &str) -> bool {
    matches!(
        essence,
        "message/global"
            | "message/global-headers"
            | "message/global-delivery-status"
            | "message/global-disposition-notification"
    )
}

/// message/partial (RFC 2046 5.2.2) and message/external-body (RFC 2046 5.2.3) must be 7bit
/// even where 8bit could be carried.
fn must_be_7bit(essence: &str) -> bool {
    matches!(essence, "message/partial" | "message/external-body")
}

/// The media type an attachment is sent as: its own when it parses, otherwise the one its
/// (cleaned) file name suggests.
fn attachment_media_type(content_type: Option<&str>, filename: &str) -> MediaType {
    content_type
        .and_then(parse_media_type)
        .unwrap_or_else(|| MediaType {
            essence: media_type_for_filename(filename).to_string(),
            parameters: Vec::new(),
        })
}

/// Whether an attachment with this file name and content type goes into the message as it is,
/// unencoded (a composite type, RFC 2045 6.4), so that its content must be 7bit or 8bit data;
/// otherwise it goes in base64, and any content will do.
pub fn attachment_is_unencoded(filename: &str, content_type: Option<&str>) -> bool {
    is_composite(&attachment_media_type(content_type, &clean_filename(filename)).essence)
}

/// The check [`compose`] makes of one attachment's content, for callers that want to report a
/// problem before composing (scenario validation does).
pub fn check_attachment(attachment: &Attachment) -> Result<(), ComposeError> {
    let filename = clean_filename(&attachment.filename);
    let media_type = attachment_media_type(attachment.content_type.as_deref(), &filename);
    if is_composite(&media_type.essence) {
        unencoded_content(attachment, &media_type)?;
    }
    Ok(())
}

/// The content of a composite attachment as it goes into the message, with its transfer
/// encoding: line breaks (CR, LF or CRLF) made CRLF, nothing else changed, so an encapsulated
/// message's header section is left exactly as given (RFC 2046 5.2.1 forbids changing it);
/// 7bit when it is ASCII, 8bit when it has 8-bit octets, and an error when it is neither
/// (a NUL, a line over 998 octets: RFC 2045 2.7, 2.8), or 8-bit where only 7bit is allowed
/// or in a `message/rfc822`'s header section (RFC 2046 5.2.1), or, for `multipart/*`, without
/// a boundary that the content uses (see [`boundary_parameter`], [`check_delimiters`]).
fn unencoded_content(
    attachment: &Attachment,
    media_type: &MediaType,
) -> Result<(TransferEncoding, Vec<u8>), ComposeError> {
    let essence = media_type.essence.as_str();
    let boundary_problem = |problem| ComposeError::BadBoundary {
        filename: attachment.filename.clone(),
        media_type: essence.to_string(),
        problem,
    };
    // The parameter first: without one the content cannot be read, whatever it holds.
    let boundary = if essence.starts_with("multipart/") {
        Some(boundary_parameter(media_type).map_err(boundary_problem)?)
    } else {
        None
    };
    let problem = |problem| ComposeError::UnencodableAttachment {
        filename: attachment.filename.clone(),
        media_type: essence.to_string(),
        problem,
    };
    let bytes = &attachment.bytes;
    if let Some(offset) = memchr::memchr(0, bytes) {
        return Err(problem(UnencodableContent::Nul { offset }));
    }
    let eight_bit = bytes.iter().position(|octet| !octet.is_ascii());
    if let (Some(offset), true) = (eight_bit, must_be_7bit(essence)) {
        return Err(problem(UnencodableContent::EightBit { offset }));
    }
    let content = crlf_everywhere(bytes);
    // RFC 2046 5.2.1: in a message/rfc822, only the body may be 8-bit. The header section is a
    // prefix of the content, so its first 8-bit octet is the content's first.
    if let (Some(offset), "message/rfc822") = (eight_bit, essence) {
        if !crate::smtp::trace::header_section(&content).is_ascii() {
            return Err(ComposeError::NonAsciiHeader {
                filename: attachment.filename.clone(),
                offset,
            });
        }
    }
    let long_line = split_crlf(&content)
        .iter()
        .enumerate()
        .find(|(_, line)| line.len() > LINE_MAX)
        .map(|(index, line)| (index + 1, line.len()));
    if let Some((line, octets)) = long_line {
        return Err(problem(UnencodableContent::LongLine { line, octets }));
    }
    if let Some(boundary) = boundary {
        check_delimiters(&content, boundary).map_err(boundary_problem)?;
    }
    let encoding = if eight_bit.is_some() {
        TransferEncoding::EightBit
    } else {
        TransferEncoding::SevenBit
    };
    Ok((encoding, content))
}

/// RFC 2046 5.1.1: a boundary is 1 to 70 characters.
const BOUNDARY_MAX: usize = 70;

/// RFC 2046 5.1.1 `bchars`: `bcharsnospace` and space.
fn is_bchar(octet: u8) -> bool {
    octet.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&octet)
}

/// A multipart media type's `boundary` parameter, which RFC 2046 5.1.1 requires: 1 to 70
/// `bchars`, the last not a space. Only the plain parameter counts, as for readers.
pub(crate) fn boundary_parameter(media_type: &MediaType) -> Result<&str, BoundaryProblem> {
    let (_, boundary) = media_type
        .parameters
        .iter()
        .find(|(attribute, _)| attribute == "boundary")
        .ok_or(BoundaryProblem::Missing)?;
    let valid = (1..=BOUNDARY_MAX).contains(&boundary.len())
        && boundary.bytes().all(is_bchar)
        && !boundary.ends_with(' ');
    if !valid {
        return Err(BoundaryProblem::Invalid {
            boundary: boundary.clone(),
        });
    }
    Ok(boundary)
}

/// Whether multipart content (CRLF line breaks) uses its boundary as RFC 2046 5.1.1 says a
/// body must: a delimiter line (`--boundary`), and after it a close delimiter line
/// (`--boundary--`), either followed by nothing but transport padding (blanks). Whether the
/// boundary also occurs inside the parts, which it must not, is the content's business.
fn check_delimiters(content: &[u8], boundary: &str) -> Result<(), BoundaryProblem> {
    let is_line = |line: &[u8], expected: &[u8]| {
        line.strip_prefix(expected)
            .is_some_and(|padding| padding.iter().all(|&octet| octet == b' ' || octet == b'\t'))
    };
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let lines = split_crlf(content);
    let first = lines
        .iter()
        .position(|line| is_line(line, delimiter.as_bytes()))
        .ok_or_else(|| BoundaryProblem::NoDelimiter {
            boundary: boundary.to_string(),
        })?;
    if !lines[first + 1..]
        .iter()
        .any(|line| is_line(line, close.as_bytes()))
    {
        return Err(BoundaryProblem::NoCloseDelimiter {
            boundary: boundary.to_string(),
        });
    }
    Ok(())
}

/// `bytes` with every CR, LF and CRLF made CRLF (RFC 2045 2.7, 2.8: in 7bit and 8bit data, CR
/// and LF occur only together, as a line break; RFC 2046 4.1.1: so in text in canonical form);
/// no line break is added at the end. The canonical form of every attachment that has lines
/// (text/*, message/*, multipart/*), and the same rule as the body's, which
/// [`crate::smtp::dot::normalize_line_endings`] makes CRLF and ends with a line break.
fn crlf_everywhere(bytes: &[u8]) -> Vec<u8> {
    let mut out = crate::smtp::dot::normalize_line_endings(bytes);
    // `normalize_line_endings` ends the text with a line break, which is not the content's.
    if !bytes.is_empty() && !bytes.ends_with(b"\r") && !bytes.ends_with(b"\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// One attachment: its headers and its content, in base64 in lines of 76 (RFC 2045 6.8), or
/// as it is for a composite type (see [`is_composite`]); with the encoding used.
fn attachment_part(attachment: &Attachment) -> Result<(Vec<u8>, TransferEncoding), ComposeError> {
    let filename = clean_filename(&attachment.filename);
    let media_type = attachment_media_type(attachment.content_type.as_deref(), &filename);
    // Checked before anything is built: content that cannot be sent leaves no half-made part.
    let unencoded = if is_composite(&media_type.essence) {
        Some(unencoded_content(attachment, &media_type)?)
    } else {
        None
    };
    // `name` is the older twin of Content-Disposition's `filename` (RFC 2046 4.5.1); readers
    // take one or the other, so both must name the same file. The file name wins: it is what
    // the request calls the file, and a `name` the user gave (or its RFC 2231 sections,
    // `name*`, `name*0` ...) is dropped rather than written twice.
    let mut content_type_parameters: Vec<(&str, &str)> = media_type
        .parameters
        .iter()
        .filter(|(attribute, _)| attribute.split('*').next() != Some("name"))
        .map(|(attribute, value)| (attribute.as_str(), value.as_str()))
        .collect();
    let added_charset = charset_to_add(&media_type, &attachment.bytes);
    if let Some(charset) = added_charset {
        content_type_parameters.push(("charset", charset));
    }
    content_type_parameters.push(("name", &filename));
    let mut part = field_with_parameters(
        "Content-Type",
        &media_type.essence,
        &content_type_parameters,
    );
    part.push_str(&field_with_parameters(
        "Content-Disposition",
        "attachment",
        &[("filename", &filename)],
    ));
    if let Some((encoding, content)) = unencoded {
        part.push_str(&format!(
            "Content-Transfer-Encoding: {}\r\n\r\n",
            encoding.name()
        ));
        let mut part = part.into_bytes();
        // As it is: the delimiter that follows brings its own CRLF, so the content keeps its
        // last line break if it has one, and gains none if it has not.
        part.extend_from_slice(&content);
        return Ok((part, encoding));
    }
    part.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let mut part = part.into_bytes();
    // Base64 carries the canonical form (RFC 2045 6.8), and text/* in canonical form has CRLF
    // line breaks, CR and LF never alone (RFC 2046 4.1.1): a lone CR or LF becomes CRLF, as in
    // the body and in message/* attachments. In UTF-16 or UTF-32 a CR or LF octet can be half
    // of another character, so the text is changed only in a charset where LF is LF (the one
    // given, or UTF-8 when added), or, with none, when it reads as UTF-8 without NULs (a NUL
    // may be half of a UTF-16 character). Without any charset parameter that is ASCII text, as
    // non-ASCII text has one added; but a charset given only in RFC 2231's form, `charset*`, is
    // neither read here nor added to (see `charset_to_add`), so that text may be anything, and
    // the same test decides: UTF-8 text gets CRLF line breaks, UTF-16 text (whose ASCII
    // characters have NUL halves) and 8-bit text that is not UTF-8 are left as they are.
    let charset = media_type
        .parameters
        .iter()
        .find(|(attribute, _)| attribute == "charset")
        .map(|(_, charset)| charset.as_str())
        .or(added_charset);
    // Asked only of text: other types' line breaks are left alone whatever the bytes.
    let lf_is_a_line_break = || match charset {
        Some(charset) => {
            let charset = charset.to_ascii_lowercase();
            // In `unknown-8bit` nobody knows.
            ![
                "utf-16",
                "utf-32",
                "ucs-2",
                "ucs-4",
                "iso-10646-ucs",
                UNKNOWN_8BIT,
            ]
            .iter()
            .any(|wide| charset.starts_with(wide))
        }
        None => std::str::from_utf8(&attachment.bytes).is_ok() && !attachment.bytes.contains(&0),
    };
    // An encapsulated message is in canonical form with CRLF line breaks (RFC 2049 4, RFC 5322
    // 2.1), message/global too (RFC 6532 3.7), whose header and body are UTF-8, where LF is LF,
    // and so are the header sections and notice fields of the other message/global* types
    // (RFC 6533): they go in base64 (see `is_composite`), but of that form, as message/rfc822
    // and message/delivery-status go as they are.
    let essence = media_type.essence.as_str();
    let has_crlf_lines =
        is_global_message(essence) || (essence.starts_with("text/") && lf_is_a_line_break());
    let encoded = if has_crlf_lines {
        base64::encode(&crlf_everywhere(&attachment.bytes))
    } else {
        base64::encode(&attachment.bytes)
    };
    for line in encoded.as_bytes().chunks(ENCODED_LINE_MAX) {
        part.extend_from_slice(line);
        part.extend_from_slice(b"\r\n");
    }
    Ok((part, TransferEncoding::Base64))
}

/// The charset of 8-bit text in a charset nobody named (RFC 1428; registered with IANA).
const UNKNOWN_8BIT: &str = "unknown-8bit";

/// The charset parameter a text/* attachment gets when its media type names none and its
/// content is not ASCII, which is what text without one is (RFC 2046 4.1.2): `utf-8` for
/// UTF-8 (the scenario's `text` always is), otherwise `unknown-8bit` (RFC 1428: 8-bit text
/// whose charset is not known, which is true of a file read from disk that is not UTF-8, and
/// better than a guess such as ISO 8859-1, which would be wrong for UTF-16 or Shift_JIS). A
/// charset the author gave, in any form (`charset`, or RFC 2231's `charset*`), is kept as it
/// is, and ASCII text needs none.
fn charset_to_add(media_type: &MediaType, bytes: &[u8]) -> Option<&'static str> {
    let named = media_type
        .parameters
        .iter()
        .any(|(attribute, _)| attribute.split('*').next() == Some("charset"));
    if !media_type.essence.starts_with("text/") || named || bytes.is_ascii() {
        return None;
    }
    Some(if std::str::from_utf8(bytes).is_ok() {
        "utf-8"
    } else {
        UNKNOWN_8BIT
    })
}

/// `Field: value;` and then the parameters, each section on a line of its own: the header is
/// folded before each (RFC 5322 2.2.3).
fn field_with_parameters(field: &str, value: &str, parameters: &[(&str, &str)]) -> String {
    let mut out = format!("{field}: {value}");
    for (attribute, parameter_value) in parameters {
        for section in parameter_sections(attribute, parameter_value) {
            out.push_str(";\r\n ");
            out.push_str(&section);
        }
    }
    out.push_str("\r\n");
    out
}

/// Whether `parameter`, with the space before it and the ";" after it, fits in 78 characters
/// (RFC 5322 2.1.1).
fn fits_on_a_parameter_line(parameter: &str) -> bool {
    " ".len() + parameter.len() + ";".len() <= LINE_PREFERRED_MAX
}

/// A parameter as one or more `attribute=value` texts, each for a line of its own. A value too
/// long for one line (but a boundary) is cut into RFC 2231 3 numbered sections (`attribute*0`, `attribute*1`
/// ...), between characters so that no section ends inside a quoted-pair, a `%XX` or a UTF-8
/// sequence; a non-ASCII value's sections are RFC 2231 4 extended values, and only the first
/// names the charset (RFC 2231 4.1).
fn parameter_sections(attribute: &str, value: &str) -> Vec<String> {
    let whole = parameter_text(attribute, value);
    // An attribute with "*" is already in RFC 2231 form, as the user wrote it, and cannot be
    // cut again; `parse_media_type` has made sure that it fits within 998 characters.
    if fits_on_a_parameter_line(&whole) || attribute.contains('*') {
        return vec![whole];
    }
    // A multipart boundary is never cut: readers look for the plain `boundary` parameter (as
    // `boundary_parameter` does) and many do not join `boundary*0`, `boundary*1` ... It is 1 to
    // 70 characters (RFC 2046 5.1.1, checked before a multipart part is built), so on its own
    // line it passes 78 (RFC 5322 2.1.1's "should") by a few characters at most, and stays
    // far below 998 (its "must").
    if attribute == "boundary" && value.len() <= BOUNDARY_MAX {
        return vec![whole];
    }
    let extended = needs_extended_value(value);
    let section = |index: usize, text: &str| match (extended, index) {
        (true, 0) => format!("{attribute}*0*=utf-8''{text}"),
        (true, _) => format!("{attribute}*{index}*={text}"),
        (false, _) => format!("{attribute}*{index}=\"{text}\""),
    };
    let mut sections = Vec::new();
    let mut text = String::new();
    for c in value.chars() {
        let c = c.encode_utf8(&mut [0; 4]).to_string();
        let piece = if extended {
            percent_encoded(&c)
        } else {
            escaped_for_quotes(&c)
        };
        let longer = format!("{text}{piece}");
        // Each section takes at least one character, so an attribute name too long for any
        // section still makes progress (and its lines stay far below 998).
        if !text.is_empty() && !fits_on_a_parameter_line(&section(sections.len(), &longer)) {
            sections.push(section(sections.len(), &text));
            text.clear();
        }
        text.push_str(&piece);
    }
    sections.push(section(sections.len(), &text));
    sections
}

/// Whether a parameter value goes as an RFC 2231 4 extended value: non-ASCII text, and a
/// value with "=?" in it, since RFC 2047 5 forbids encoded-words in parameters but many
/// readers decode them there anyway, and would show another name.
fn needs_extended_value(value: &str) -> bool {
    !value.is_ascii() || value.contains("=?")
}

/// `attribute=value`: a token as it is, anything else quoted (RFC 2045 5.1), and the values of
/// [`needs_extended_value`] as RFC 2231 4 extended values: charset, empty language,
/// percent-encoded octets. File names are always quoted, the form RFC 2183 2.3's examples use
/// and readers expect.
fn parameter_text(attribute: &str, value: &str) -> String {
    if needs_extended_value(value) {
        return format!("{attribute}*=utf-8''{}", percent_encoded(value));
    }
    let is_file_name = matches!(attribute, "name" | "filename");
    if is_token(value) && !is_file_name {
        format!("{attribute}={value}")
    } else {
        format!("{attribute}=\"{}\"", escaped_for_quotes(value))
    }
}

/// The inside of a quoted-string: a backslash or a double quote gets a backslash before it,
/// making a quoted-pair (RFC 5322 3.2.4).
fn escaped_for_quotes(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Text as an RFC 2231 extended value: each octet itself when it is an `attribute-char`
/// (RFC 2231 7), else `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|octet| {
            if octet.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&octet) {
                char::from(octet).to_string()
            } else {
                format!("%{octet:02X}")
            }
        })
        .collect()
}

/// The last path component, without controls, at most 255 octets; "attachment" if nothing
/// is left but dots and spaces. A longer name is cut before its extension, which stays, as
/// does the media type it gives.
fn clean_filename(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let whole: String = base.chars().filter(|c| !c.is_control()).collect();
    let out = if whole.len() <= FILENAME_MAX_OCTETS {
        whole
    } else {
        // An extension is a short last part after a dot, as media_type_for_filename reads it.
        let extension = whole
            .rsplit_once('.')
            .map(|(_, extension)| extension)
            .filter(|extension| {
                !extension.is_empty() && extension.len() <= FILENAME_EXTENSION_KEPT_MAX_OCTETS
            })
            .map_or(String::new(), |extension| format!(".{extension}"));
        let mut out = cut_to_octets(&whole, FILENAME_MAX_OCTETS - extension.len());
        out.push_str(&extension);
        out
    };
    // "." and ".." name directories, not files, and a name of dots and spaces is one of
    // them to a reader that trims it: saved under it, it would not make the file meant.
    if out.chars().all(|c| c == '.' || c.is_whitespace()) {
        "attachment".to_string()
    } else {
        out
    }
}

/// The longest extension a cut file name keeps.
const FILENAME_EXTENSION_KEPT_MAX_OCTETS: usize = 16;

/// The longest start of `text` of at most `octets` octets, cut between characters.
fn cut_to_octets(text: &str, octets: usize) -> String {
    let mut end = octets.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A media type and its parameters (RFC 2045 5.1). Type, subtype and attribute names are
/// lowercased, as they are case-insensitive; values are kept as given, without their quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaType {
    /// `type/subtype`.
    pub(crate) essence: String,
    /// (attribute, value) pairs in the order given.
    pub(crate) parameters: Vec<(String, String)>,
}

/// RFC 6838 4.2: type and subtype names are at most 127 characters; parameter names too here.
const MEDIA_TYPE_NAME_MAX: usize = 127;

/// Spaces and tabs, which may stand between the parts of a media type.
const BLANKS: [char; 2] = [' ', '\t'];

/// Reads `type/subtype *(";" attribute "=" value)` (RFC 2045 5.1), each value a token or a
/// quoted-string, with blanks and comments allowed between the parts (RFC 2045 5.1 keeps RFC
/// 822's comments in structured fields; they are dropped) and a trailing ";" tolerated.
/// Anything else (controls, non-ASCII, a missing value, a comment left open) gives `None`, so
/// that no unchecked text reaches a header.
pub(crate) fn parse_media_type(text: &str) -> Option<MediaType> {
    let text = without_comments(text)?;
    let mut rest = text.as_str();
    let kind = take_token(&mut rest).filter(|t| t.len() <= MEDIA_TYPE_NAME_MAX)?;
    take_char(&mut rest, '/')?;
    let subtype = take_token(&mut rest).filter(|t| t.len() <= MEDIA_TYPE_NAME_MAX)?;
    let parameters = take_parameters(&mut rest)?;
    Some(MediaType {
        essence: format!("{kind}/{subtype}").to_ascii_lowercase(),
        parameters,
    })
}

/// Takes `*(";" attribute "=" value)` (RFC 2045 5.1), the parameters of a media type or a
/// disposition, to the end of `rest`: attribute names lowercased, values without quotes.
fn take_parameters(rest: &mut &str) -> Option<Vec<(String, String)>> {
    let mut parameters = Vec::new();
    while take_char(rest, ';').is_some() {
        if rest.trim_start_matches(BLANKS).is_empty() {
            break;
        }
        let attribute = take_token(rest).filter(|t| t.len() <= MEDIA_TYPE_NAME_MAX)?;
        take_char(rest, '=')?;
        let value = match take_token(rest) {
            Some(token) => token.to_string(),
            None => take_quoted_string(rest)?,
        };
        // A parameter already in RFC 2231 form is written as given, on one line, which must
        // stay within 998 characters (RFC 5322 2.1.1).
        if attribute.contains('*') && parameter_text(attribute, &value).len() + 2 > LINE_MAX {
            return None;
        }
        parameters.push((attribute.to_ascii_lowercase(), value));
    }
    if !rest.trim_start_matches(BLANKS).is_empty() {
        return None;
    }
    Some(parameters)
}

/// Reads a Content-Disposition value, `type *(";" parameter)` (RFC 2183 2), as
/// [`parse_media_type`] reads a media type: the type lowercased, and its parameters.
pub(crate) fn parse_disposition(text: &str) -> Option<(String, Vec<(String, String)>)> {
    let text = without_comments(text)?;
    let mut rest = text.as_str();
    let kind = take_token(&mut rest).filter(|t| t.len() <= MEDIA_TYPE_NAME_MAX)?;
    let parameters = take_parameters(&mut rest)?;
    Some((kind.to_ascii_lowercase(), parameters))
}

/// `text` with each comment (RFC 5322 3.2.2: `(` text, quoted-pairs and nested comments `)`)
/// outside quoted-strings made one space; `None` for a comment left open or closed without
/// being opened, or a character that is not printable ASCII, a space or a tab in one.
fn without_comments(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if depth > 0 {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '\\' => {
                    chars
                        .next()
                        .filter(|&c| c.is_ascii_graphic() || BLANKS.contains(&c))?;
                }
                c if c.is_ascii_graphic() || BLANKS.contains(&c) => {}
                _ => return None,
            }
            if depth == 0 {
                out.push(' ');
            }
            continue;
        }
        match c {
            '(' if !in_quotes => depth = 1,
            ')' if !in_quotes => return None,
            '"' => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            // A quoted-pair inside a quoted-string stays for the string's own reading.
            '\\' if in_quotes => {
                out.push(c);
                out.push(chars.next()?);
            }
            c => out.push(c),
        }
    }
    (depth == 0).then_some(out)
}

/// RFC 2045 5.1 `token`: printable ASCII except space and `tspecials`.
fn is_token_octet(octet: u8) -> bool {
    octet.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&octet)
}

pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_octet)
}

/// Takes the token at the start of `text`, after any blanks; `None` if there is none.
fn take_token<'a>(text: &mut &'a str) -> Option<&'a str> {
    let trimmed = text.trim_start_matches(BLANKS);
    let end = trimmed
        .bytes()
        .position(|octet| !is_token_octet(octet))
        .unwrap_or(trimmed.len());
    let (token, rest) = trimmed.split_at(end);
    *text = rest;
    (!token.is_empty()).then_some(token)
}

/// Takes `expected` from the start of `text`, after any blanks.
fn take_char(text: &mut &str, expected: char) -> Option<()> {
    *text = text.trim_start_matches(BLANKS).strip_prefix(expected)?;
    Some(())
}

/// Takes a quoted-string (RFC 5322 3.2.4) from the start of `text`, after any blanks, and
/// returns its content with the quoted-pairs resolved. Only printable ASCII and spaces are
/// accepted inside, so no control character (CR and LF above all) gets through.
fn take_quoted_string(text: &mut &str) -> Option<String> {
    let inner = text.trim_start_matches(BLANKS).strip_prefix('"')?;
    let is_printable = |c: char| c == ' ' || c.is_ascii_graphic();
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => {
                *text = &inner[index + 1..];
                return Some(value);
            }
            '\\' => value.push(chars.next().map(|(_, c)| c).filter(|&c| is_printable(c))?),
            c if is_printable(c) => value.push(c),
            _ => return None,
        }
    }
    None
}

/// A boundary that depends only on the request (no randomness), checked against every part.
fn choose_boundary(request: &ComposeRequest, parts: &[Vec<u8>]) -> String {
    boundary::choose_boundary(
        "smtp-lab",
        &[
            request.message_id_token.as_bytes(),
            request.subject.as_bytes(),
            &request.date_unix_s.to_le_bytes(),
        ],
        parts,
    )
}

/// The Message-ID's left side: dot-atom text (RFC 5322 3.6.4); other characters become "_",
/// and an empty result becomes `fallback`.
pub(crate) fn message_id_left<'a>(token: &'a str, fallback: &str) -> Cow<'a, str> {
    let id_atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    // Nearly every token is already a dot-atom: kept as it is.
    if !token.is_empty()
        && token.len() <= 128
        && token.chars().all(id_atext)
        && !token.starts_with('.')
        && !token.ends_with('.')
        && !token.contains("..")
    {
        return Cow::Borrowed(token);
    }
    let cleaned: String = token
        .chars()
        .take(128)
        .map(|c| if id_atext(c) { c } else { '_' })
        .collect();
    let cleaned = cleaned.trim_matches('.').replace("..", "._");
    Cow::Owned(if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned
    })
}

/// The Message-ID's right side (RFC 5322 3.6.4 id-right): an address literal as it is, a
/// `no-fold-literal`; otherwise a host name of letters, digits, "-" and ".", an
/// internationalised one by its A-label (`bücher.test` is `xn--bcher-kva.test`, RFC 5890
/// 2.3.2.1), not by what is left of it without its non-ASCII letters.
fn id_right(hostname: &str) -> Cow<'_, str> {
    if let Some(inside) = hostname
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        // dtext: printable ASCII but "[", "]" and "\".
        if !inside.is_empty() && inside.bytes().all(|b| matches!(b, 33..=90 | 94..=126)) {
            return Cow::Borrowed(hostname);
        }
    }
    if !hostname.is_ascii() {
        if let Ok(a_labels) = idna::domain_to_ascii(hostname) {
            return Cow::Owned(host_name_right(&a_labels).into_owned());
        }
    }
    host_name_right(hostname)
}

/// [`id_right`] for a host name: letters, digits, "-" and "."; other characters dropped.
fn host_name_right(hostname: &str) -> Cow<'_, str> {
    let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    // Nearly every host name is already one: kept as it is.
    if hostname.len() <= 253
        && hostname.split('.').all(|label| !label.is_empty())
        && hostname.chars().all(host_char)
    {
        return Cow::Borrowed(hostname);
    }
    let cleaned: String = hostname
        .chars()
        .take(253)
        .filter(|&c| host_char(c))
        .collect();
    let labels: Vec<&str> = cleaned
        .split('.')
        .filter(|label| !label.is_empty())
        .collect();
    let cleaned = labels.join(".");
    Cow::Owned(if cleaned.is_empty() {
        "localhost".to_string()
    } else {
        cleaned
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::boundary::contains;

    /// An address too long for an envelope says so, and a long value is quoted shortened.
    /// The envelope takes a name-addr's address, what the brackets of one it cannot read
    /// hold, and the text as written when it holds more than one pair of brackets: the
    /// refusal then quotes what was written, not one of the addresses in it.
    #[test]
    fn the_envelope_address_of_a_written_one() {
        for (written, envelope) in [
            ("Bob <bob@b.test>", "bob@b.test"),
            ("bob@b.test", "bob@b.test"),
            ("Bob <bob@@b.test>", "bob@@b.test"),
            ("Bob <>", "Bob <>"),
            (
                "Bob <bob@b.test> <eve@c.test>",
                "Bob <bob@b.test> <eve@c.test>",
            ),
            ("Bob> <eve@c.test>", "Bob> <eve@c.test>"),
        ] {
            assert_eq!(envelope_address(written), envelope, "{written}");
        }
    }

    #[test]
    fn an_address_too_long_says_why_and_a_long_value_is_quoted_short() {
        let longest = format!("{}@{}.test", "a".repeat(64), "b".repeat(184));
        assert_eq!(longest.len(), 254);
        assert!(parse_mailbox("To", &longest).is_ok());
        let long = format!("{}@receiver.test", "a".repeat(10_000));
        let error = parse_mailbox("To", &format!("Bob <{long}>")).unwrap_err();
        assert_eq!(
            error,
            ComposeError::AddressTooLong {
                field: "To",
                value: format!("Bob <{long}>"),
                octets: long.len(),
            }
        );
        let said = error.to_string();
        assert!(
            said.starts_with(
                "To: an address of 10014 octets, longer than the 254 an envelope carries \
                 (RFC 5321 4.5.3.1.3): \"Bob <aaa"
            ),
            "{said}"
        );
        assert!(said.ends_with("aaa\"... (10020 characters)"), "{said}");
        assert!(said.len() < 250, "{said}");
        // Not an address at all, and long: the same shortening.
        let said = parse_mailbox("Cc", &"x".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(said.starts_with("Cc: not an address: \"xxx"), "{said}");
        assert!(said.ends_with("... (500 characters)"), "{said}");
        // A short one is quoted whole, as before.
        let said = parse_mailbox("To", "bob@@x.test").unwrap_err().to_string();
        assert_eq!(said, "To: not an address: \"bob@@x.test\"");
    }

    fn request() -> ComposeRequest {
        ComposeRequest {
            from: "Alice Example <alice@example.org>".into(),
            to: vec!["bob@example.net".into(), "Carol <carol@example.net>".into()],
            cc: vec!["\"Dave, the boss\" <dave@example.com>".into()],
            bcc: vec!["secret@example.com".into()],
            subject: "Lunch on Friday?".into(),
            body_text: "Hi all,\nshall we?\n.\n".into(),
            attachments: Vec::new(),
            date_unix_s: 1_700_000_000,
            utc_offset_min: 60,
            message_id_token: "20231114.abc123".into(),
            hostname: "client.example.org".into(),
            eight_bit_body: false,
        }
    }

    /// Every string of up to four characters from a small alphabet of the cases that matter.
    fn short_strings() -> Vec<String> {
        let alphabet = ['a', '.', '-', '_', ' ', '\u{e9}', '<', '\u{7}'];
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn text_is_split_at_each_crlf_and_nowhere_else() {
        // Every text of up to six octets from CR, LF and "a", against a pair-by-pair scan.
        for text in &crate::smtp::dot::every_text(&[b"\r", b"\n", b"a"], 6) {
            let mut expected: Vec<&[u8]> = Vec::new();
            let (mut line_start, mut index) = (0, 0);
            while index + 1 < text.len() {
                if &text[index..index + 2] == b"\r\n" {
                    expected.push(&text[line_start..index]);
                    index += 2;
                    line_start = index;
                } else {
                    index += 1;
                }
            }
            expected.push(&text[line_start..]);
            assert_eq!(split_crlf(text), expected, "{text:?}");
        }
    }

    #[test]
    fn message_id_parts_are_the_cleaned_text_whether_or_not_it_needed_cleaning() {
        // The cleaning written out in full: the short cut for clean text must agree with it.
        fn left_in_full(token: &str, fallback: &str) -> String {
            let cleaned: String = token
                .chars()
                .take(128)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let cleaned = cleaned.trim_matches('.').replace("..", "._");
            if cleaned.is_empty() {
                fallback.to_string()
            } else {
                cleaned
            }
        }
        fn right_in_full(hostname: &str) -> String {
            let cleaned: String = hostname
                .chars()
                .take(253)
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .collect();
            let labels: Vec<&str> = cleaned.split('.').filter(|l| !l.is_empty()).collect();
            let cleaned = labels.join(".");
            if cleaned.is_empty() {
                "localhost".to_string()
            } else {
                cleaned
            }
        }
        let mut inputs = short_strings();
        inputs.push("a".repeat(128));
        inputs.push("a".repeat(129));
        inputs.push(format!("{}.b", "a".repeat(251)));
        inputs.push(format!("{}.b", "a".repeat(252)));
        for input in &inputs {
            assert_eq!(
                message_id_left(input, "fb"),
                left_in_full(input, "fb"),
                "{input:?}"
            );
            assert_eq!(host_name_right(input), right_in_full(input), "{input:?}");
        }
    }

    #[test]
    fn a_message_ids_right_side_names_an_idn_by_its_a_label_and_keeps_an_address_literal() {
        assert_eq!(id_right("bücher.test"), "xn--bcher-kva.test");
        assert_eq!(id_right("sender.test"), "sender.test");
        assert_eq!(id_right("[192.0.2.10]"), "[192.0.2.10]");
        assert_eq!(id_right("[IPv6:2001:db8::1]"), "[IPv6:2001:db8::1]");
        // Not dtext inside: cleaned as a host name.
        assert_eq!(id_right("[a]b]"), "ab");
        assert_eq!(id_right("[]"), "localhost");
        let mut req = request();
        req.hostname = "bücher.test".into();
        let message = String::from_utf8(compose(&req).expect("composes")).expect("UTF-8");
        assert!(message.contains("@xn--bcher-kva.test>\r\n"), "{message}");
    }

    #[test]
    fn lines_of_an_encoded_display_name_are_at_most_76_characters() {
        // RFC 2047 2, for the address fields as for Subject; folds go between encoded words.
        let mut req = request();
        req.from = format!(
            "{} <juergen@example.de>",
            "Jürgen Müller-Lüdenscheidt ".repeat(5)
        );
        req.to = vec![
            "bob@example.net".into(),
            "Zoë Ångström <zoe@example.net>".into(),
            "carol@example.net".into(),
        ];
        let message = compose(&req).unwrap();
        let header = crate::smtp::trace::header_section(&message);
        for line in String::from_utf8_lossy(header).split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
        }
        let parsed = parse(&message);
        let from = parsed.field("From").unwrap();
        assert!(from.ends_with(" <juergen@example.de>"), "{from}");
        assert!(parsed
            .field("To")
            .unwrap()
            .contains("<zoe@example.net>, carol@example.net"));
    }

    #[test]
    fn an_address_literal_is_an_address() {
        // RFC 5321 4.1.3, RFC 5322 3.4.1 (domain-literal).
        for good in ["postmaster@[192.0.2.1]", "bob@[IPv6:2001:db8::1]"] {
            assert!(parse_mailbox("To", good).is_ok(), "{good}");
        }
        for bad in [
            "bob@[192.0.2.1",
            "bob@[not an address]",
            "bob@192.0.2.1]",
            "bob@[2001:db8::1]",
        ] {
            assert!(parse_mailbox("To", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_second_address_where_the_name_goes_is_no_name() {
        for bad in [
            "Bob <bob@example.org> <eve@example.net>",
            "<bob@example.org> <eve@example.net>",
            "Bob > <eve@example.net>",
            // An address where the name goes: it would read as the recipient's.
            "bob@example.org <eve@example.net>",
            "Bob [boss] <eve@example.net>",
            "Re: Bob <eve@example.net>",
        ] {
            assert!(parse_mailbox("To", bad).is_err(), "{bad}");
        }
        // Two quoted words around a second address are no quoted name either.
        for bad in [
            "\"Bob\" <bob@example.org> \"Eve\" <eve@example.net>",
            "\"Bob\\\" <bob@example.org> \"Eve\" <eve@example.net>",
        ] {
            assert!(parse_mailbox("To", bad).is_err(), "{bad}");
        }
        let shape = |unquoted_special, unclosed_quote, one_quoted_string| PhraseShape {
            unquoted_special,
            unclosed_quote,
            one_quoted_string,
        };
        assert_eq!(phrase_shape("\"Doe, Jane\""), shape(false, false, true));
        assert_eq!(phrase_shape("\"A\\\"B\""), shape(false, false, true));
        assert_eq!(phrase_shape("\"A\" \"B\""), shape(false, false, false));
        assert_eq!(phrase_shape("\"<x>\" y"), shape(false, false, false));
        assert_eq!(phrase_shape("\""), shape(false, true, false));
        assert_eq!(phrase_shape("Jane \"J\" Doe"), shape(false, false, false));
        assert_eq!(phrase_shape("a > b"), shape(true, false, false));
        assert_eq!(
            phrase_shape("\"bob@example.org\""),
            shape(false, false, true)
        );
        assert_eq!(
            phrase_shape("J. R. R. (the author)"),
            shape(false, false, false)
        );
        // A quote not closed: no name, whatever follows it.
        assert!(parse_mailbox("To", "\"Jane <jane@example.org>").is_err());
        assert!(parse_mailbox("To", "Jane \"J <jane@example.org>").is_err());
        // Quoted, a name may hold what it likes but controls.
        let quoted = parse_mailbox("To", "\"Bob <bob@example.org>\" <eve@example.net>").unwrap();
        assert_eq!(
            quoted.display_name.as_deref(),
            Some("Bob <bob@example.org>")
        );
        assert_eq!(quoted.address, "eve@example.net");
    }

    #[test]
    fn a_folded_subject_has_no_line_of_only_white_space_and_unfolds_to_itself() {
        // RFC 5322 4.2 and 4: a line of nothing but white space is obsolete syntax.
        for subject in [
            format!("Re:{}lunch", " ".repeat(160)),
            format!("{}x", " ".repeat(67)),
            "word ".repeat(60),
        ] {
            let mut field = String::new();
            push_subject_field(&mut field, &subject);
            let lines: Vec<&str> = field.trim_end_matches("\r\n").split("\r\n").collect();
            assert!(
                lines.iter().all(|line| !line.trim().is_empty()),
                "{field:?}"
            );
            assert!(lines.iter().all(|line| line.len() <= LINE_MAX), "{field:?}");
            let unfolded = field.trim_end_matches("\r\n").replace("\r\n", "");
            let value = unfolded.strip_prefix("Subject: ").expect("the field name");
            if !value.starts_with("=?") {
                assert_eq!(value, subject);
            }
        }
    }

    /// RFC 5322 2.1.1: lines SHOULD be at most 78 characters. A run of spaces before a word
    /// that does not fit is folded within, so that neither line passes 78 when both can fit.
    #[test]
    fn a_run_of_spaces_is_folded_so_that_both_lines_fit() {
        let cases = [
            (format!("{}{}end", "x".repeat(60), " ".repeat(30)), 2),
            (format!("a{}{}", " ".repeat(60), "y".repeat(60)), 2),
            (format!("  lead {}  trail  ", "w".repeat(67)), 2),
            (String::new(), 1),
            ("   ".to_string(), 1),
            (
                format!(
                    "x{}{}{}{}",
                    " ".repeat(60),
                    "y".repeat(18),
                    " ".repeat(67),
                    "z".repeat(67)
                ),
                3,
            ),
            (format!("a {} ", "b".repeat(67)), 2),
        ];
        // Every line within 78 and not blank; the field unfolds to `written`. Its line count.
        let check = |field: &str, written: &str| -> usize {
            let lines: Vec<&str> = field.trim_end_matches("\r\n").split("\r\n").collect();
            assert!(
                lines.iter().all(|line| line.len() <= LINE_PREFERRED_MAX),
                "{field:?}"
            );
            assert!(
                lines.iter().all(|line| !line.trim().is_empty()),
                "{field:?}"
            );
            let unfolded = field.trim_end_matches("\r\n").replace("\r\n", "");
            assert_eq!(unfolded, written);
            lines.len()
        };
        for (subject, line_count) in cases {
            let mut field = String::new();
            push_subject_field(&mut field, &subject);
            let written = format!("Subject: {subject}");
            assert_eq!(check(&field, &written), line_count, "{field:?}");
        }
        // The same for a quoted display name with a run of spaces in it.
        let name = format!("{}{}end", "q".repeat(40), " ".repeat(30));
        let mut field = String::new();
        push_address_field(
            &mut field,
            "From",
            &[parse_mailbox("from", &format!("\"{name}\" <alice@a.test>")).expect("a mailbox")],
        );
        check(&field, &format!("From: \"{name}\" <alice@a.test>"));
    }

    #[test]
    fn lines_holding_encoded_words_are_at_most_76_characters() {
        // RFC 2047 2.
        let mut field = String::new();
        push_subject_field(
            &mut field,
            &"Grüße aus Köln, ein sehr langer Betreff, der gefaltet werden muss ".repeat(4),
        );
        for line in field.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
        }
    }

    #[test]
    fn a_clean_subject_is_written_as_a_cleaned_one_would_be() {
        let mut inputs = short_strings();
        inputs.push("x".repeat(SUBJECT_MAX_CHARS));
        inputs.push("x".repeat(SUBJECT_MAX_CHARS + 1));
        for input in &inputs {
            let cleaned: String = input
                .chars()
                .take(SUBJECT_MAX_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let subject_field = |subject: &str| {
                let mut out = String::new();
                push_subject_field(&mut out, subject);
                out
            };
            assert_eq!(subject_field(input), subject_field(&cleaned), "{input:?}");
            assert!(!subject_field(input).contains('\u{7}'), "{input:?}");
        }
    }

    /// Checks that `attachment` is refused with `expected`, alone and in a message (`context`
    /// names the case in a failure); the error's text.
    fn assert_refused(attachment: Attachment, expected: &ComposeError, context: &str) -> String {
        assert_eq!(
            check_attachment(&attachment),
            Err(expected.clone()),
            "{context}"
        );
        let mut req = request();
        req.attachments = vec![attachment];
        assert_eq!(compose(&req), Err(expected.clone()), "{context}");
        expected.to_string()
    }

    /// Checks that `attachment` is taken, alone and in a message.
    fn assert_accepted(attachment: Attachment, context: &str) {
        assert_eq!(check_attachment(&attachment), Ok(()), "{context}");
        let mut req = request();
        req.attachments = vec![attachment];
        assert!(compose(&req).is_ok(), "{context}");
    }

    /// A parsed message: unfolded header fields (name, value) and the body.
    struct Parsed {
        fields: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Parsed {
        fn field(&self, name: &str) -> Option<&str> {
            self.fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn parse(message: &[u8]) -> Parsed {
        let split = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header section ends with an empty line");
        let header = std::str::from_utf8(&message[..split + 2]).expect("7-bit header");
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in header.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(
                line.len() <= LINE_PREFERRED_MAX,
                "long header line {line:?}"
            );
            if line.starts_with([' ', '\t']) {
                fields
                    .last_mut()
                    .expect("continuation after a field")
                    .1
                    .push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("field name");
                fields.push((name.to_string(), value.trim_start().to_string()));
            }
        }
        Parsed {
            fields,
            body: message[split + 4..].to_vec(),
        }
    }

    fn assert_crlf_only(message: &[u8]) {
        assert!(!crate::smtp::dot::has_bare_line_break(message));
        assert!(message.ends_with(b"\r\n"));
    }

    fn decode_quoted_printable(text: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(text).expect("quoted-printable is ASCII");
        let mut out = Vec::new();
        let lines: Vec<&str> = text.split("\r\n").collect();
        for (index, line) in lines.iter().enumerate() {
            assert!(line.len() <= ENCODED_LINE_MAX, "long QP line {line:?}");
            let (content, soft) = match line.strip_suffix('=') {
                Some(content) => (content, true),
                None => (*line, false),
            };
            let bytes = content.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' {
                    let hex = &content[i + 1..i + 3];
                    out.push(u8::from_str_radix(hex, 16).expect("hex"));
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            if !soft && index + 1 < lines.len() {
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    #[test]
    fn a_cut_file_name_keeps_its_extension_and_media_type() {
        let long = "verylongname_".repeat(20) + ".txt";
        let cut = clean_filename(&long);
        assert_eq!(cut.len(), FILENAME_MAX_OCTETS);
        assert!(cut.ends_with("name_verylongname_very.txt"), "{cut}");
        assert_eq!(media_type_for_filename(&cut), "text/plain");
        // Cut between characters: "é" is two octets, so 125 of them fit before ".pdf".
        let accented = "é".repeat(200) + ".pdf";
        assert_eq!(clean_filename(&accented), "é".repeat(125) + ".pdf");
        // No extension to keep: the name is cut at its end.
        let no_extension = "x".repeat(300);
        assert_eq!(
            clean_filename(&no_extension),
            "x".repeat(FILENAME_MAX_OCTETS)
        );
        let long_extension = format!("a.{}", "b".repeat(300));
        assert_eq!(clean_filename(&long_extension).len(), FILENAME_MAX_OCTETS);
        assert!(clean_filename(&long_extension).starts_with("a.bbb"));
    }

    #[test]
    fn encoded_words_end_after_a_space_so_that_each_holds_whole_words() {
        let text = "Grüße aus München, schöne Wörter hätten wir gern, und noch viel mehr davon";
        let words: Vec<String> = encoded_words(text, "Subject: ".len())
            .iter()
            .map(|word| {
                let inner = word
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .expect("an encoded word");
                String::from_utf8(base64::decode(inner).expect("base64")).expect("UTF-8")
            })
            .collect();
        assert!(words.len() >= 2, "{words:?}");
        assert_eq!(words.concat(), text);
        for word in &words[..words.len() - 1] {
            assert!(word.ends_with(' '), "{words:?}");
        }
        // With no space in reach, a word is cut between characters, as before.
        let unbroken = "ü".repeat(60);
        let cut = encoded_words(&unbroken, 0);
        assert_eq!(cut.len(), 4, "{cut:?}");
        // A space early in a word's room still ends it, when the text word after it fits
        // whole in the next encoded word (30 letters); a text word that does not fit any is
        // cut (45 letters), and the space is not wasted on it.
        let decoded = |text: &str| -> Vec<String> {
            encoded_words(text, 0)
                .iter()
                .map(|word| {
                    let inner = &word["=?UTF-8?B?".len()..word.len() - "?=".len()];
                    String::from_utf8(base64::decode(inner).unwrap()).unwrap()
                })
                .collect()
        };
        let fits = format!("Grüße aus {}", "ä".repeat(15));
        assert_eq!(decoded(&fits), ["Grüße aus ", &"ä".repeat(15)]);
        let too_long = format!("Grüße {}", "a".repeat(45));
        let words = decoded(&too_long);
        assert_eq!(words.concat(), too_long);
        assert_eq!(words[0].len(), 39, "{words:?}");
    }

    #[test]
    fn a_file_name_of_only_dots_becomes_attachment() {
        for dots in [".", "..", "dir/..", " .. ", " . .", "a/. .", "  ", ""] {
            assert_eq!(clean_filename(dots), "attachment", "{dots:?}");
        }
        assert_eq!(clean_filename(".profile"), ".profile");
        assert_eq!(clean_filename("a..b"), "a..b");
    }

    #[test]
    fn a_file_name_that_looks_like_an_encoded_word_goes_as_an_extended_value() {
        // RFC 2047 5: no encoded-word in a parameter; a reader that decoded one anyway would
        // show "encoded.txt". RFC 2231 4's form cannot be read as one.
        assert_eq!(
            parameter_text("filename", "=?utf-8?q?encoded?=.txt"),
            "filename*=utf-8''%3D%3Futf-8%3Fq%3Fencoded%3F%3D.txt"
        );
        assert_eq!(
            parameter_text("filename", "a=b?.txt"),
            "filename=\"a=b?.txt\""
        );
        // So do the sections of a name too long for one line (RFC 2231 3, 4.1).
        let long = format!("=?utf-8?q?e?={}.txt", "x".repeat(80));
        let sections = parameter_sections("filename", &long);
        assert!(sections.len() > 1, "{sections:?}");
        assert!(
            sections[0].starts_with("filename*0*=utf-8''%3D%3Futf-8"),
            "{sections:?}"
        );
        assert!(
            sections[1..]
                .iter()
                .all(|s| s.contains("*=") && !s.contains('"')),
            "{sections:?}"
        );
    }

    #[test]
    fn a_body_line_of_998_octets_is_still_7bit() {
        // RFC 2045 2.7: 998 octets before the CRLF is the longest line 7bit data may have.
        let encoding = |line_octets: usize| {
            let mut with_line = request();
            with_line.body_text = format!("first\n{}\nlast\n", "a".repeat(line_octets));
            parse(&compose(&with_line).unwrap())
                .field("Content-Transfer-Encoding")
                .map(str::to_string)
        };
        assert_eq!(encoding(998).as_deref(), Some("7bit"));
        assert_eq!(encoding(999).as_deref(), Some("quoted-printable"));
    }

    #[test]
    fn non_ascii_body_text_goes_as_8bit_only_when_asked_for_and_only_when_it_can_be() {
        let composed = |text: &str, eight_bit_body: bool| {
            let message = compose(&ComposeRequest {
                body_text: text.into(),
                eight_bit_body,
                ..request()
            })
            .unwrap();
            assert_crlf_only(&message);
            let parsed = parse(&message);
            let encoding = parsed
                .field("Content-Transfer-Encoding")
                .map(str::to_string);
            (encoding.unwrap_or_default(), parsed.body)
        };
        let (encoding, body) = composed("Un café.\n", true);
        assert_eq!(encoding, "8bit");
        assert_eq!(body, "Un café.\r\n".as_bytes());
        assert_eq!(composed("Un café.\n", false).0, "quoted-printable");
        assert_eq!(composed("A coffee.\n", true).0, "7bit");
        // RFC 2045 2.8: 8bit data has lines of at most 998 octets and no NUL.
        let long = format!("é{}\n", "a".repeat(997));
        assert_eq!(composed(&long, true).0, "quoted-printable");
        assert_eq!(composed(&format!("é{}\n", "a".repeat(996)), true).0, "8bit");
        assert_eq!(composed("caf\u{0}é\n", true).0, "quoted-printable");

        // RFC 2045 6.4: a multipart holding an 8bit part is labelled 8bit itself.
        let with_attachment = compose(&ComposeRequest {
            body_text: "Un café.\n".into(),
            eight_bit_body: true,
            attachments: vec![Attachment {
                filename: "a.txt".into(),
                content_type: None,
                bytes: b"plain".to_vec(),
            }],
            ..request()
        })
        .unwrap();
        let parsed = parse(&with_attachment);
        assert_eq!(parsed.field("Content-Transfer-Encoding"), Some("8bit"));
        let body = String::from_utf8(parsed.body).expect("the 8bit body is UTF-8");
        assert!(
            body.contains("Content-Transfer-Encoding: 8bit\r\n\r\nUn café.\r\n"),
            "{body}"
        );
    }

    #[test]
    fn simple_message_has_the_required_fields_and_no_bcc() {
        let message = compose(&request()).unwrap();
        assert_crlf_only(&message);
        let parsed = parse(&message);
        assert_eq!(
            parsed.field("Date"),
            Some("Tue, 14 Nov 2023 23:13:20 +0100")
        );
        assert_eq!(
            parsed.field("From"),
            Some("Alice Example <alice@example.org>")
        );
        assert_eq!(
            parsed.field("To"),
            Some("bob@example.net, Carol <carol@example.net>")
        );
        assert_eq!(
            parsed.field("Cc"),
            Some("\"Dave, the boss\" <dave@example.com>")
        );
        assert_eq!(parsed.field("Bcc"), None);
        assert!(!contains(&message, b"secret@example.com"));
        assert_eq!(parsed.field("Subject"), Some("Lunch on Friday?"));
        assert_eq!(
            parsed.field("Message-ID"),
            Some("<20231114.abc123@client.example.org>")
        );
        assert_eq!(parsed.field("MIME-Version"), Some("1.0"));
        assert_eq!(parsed.field("Content-Transfer-Encoding"), Some("7bit"));
        assert_eq!(parsed.body, b"Hi all,\r\nshall we?\r\n.\r\n");
    }

    #[test]
    fn envelope_includes_bcc_once() {
        let mut req = request();
        req.bcc.push("bob@example.net".into());
        assert_eq!(req.reverse_path().unwrap(), "alice@example.org");
        assert_eq!(
            req.forward_paths().unwrap(),
            vec![
                "bob@example.net",
                "carol@example.net",
                "dave@example.com",
                "secret@example.com"
            ]
        );
    }

    #[test]
    fn bcc_only_names_an_empty_group() {
        let mut req = request();
        req.to.clear();
        req.cc.clear();
        let parsed = parse(&compose(&req).unwrap());
        assert_eq!(parsed.field("To"), Some("undisclosed-recipients:;"));
    }

    #[test]
    fn non_ascii_subject_and_body_stay_7_bit() {
        let mut req = request();
        req.subject = "Grüße aus Köln – ein sehr langer Betreff, der gefaltet werden muss, \
                       damit keine Zeile zu lang wird"
            .into();
        req.from = "Jürgen Müller <juergen@example.de>".into();
        req.body_text = format!("Grüße!\n{}\ntrailing space \n", "é".repeat(100));
        let message = compose(&req).unwrap();
        assert!(!crate::smtp::dot::has_8bit(&message));
        assert_crlf_only(&message);
        let parsed = parse(&message);
        let subject = parsed.field("Subject").unwrap();
        let decoded: Vec<u8> = subject
            .split_whitespace()
            .flat_map(|word| {
                assert!(word.len() <= 75, "encoded word too long: {word}");
                let inner = word
                    .strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .expect("an encoded word");
                base64::decode(inner).expect("base64")
            })
            .collect();
        assert_eq!(String::from_utf8(decoded).unwrap(), req.subject);
        assert!(parsed.field("From").unwrap().starts_with("=?UTF-8?B?"));
        assert!(parsed
            .field("From")
            .unwrap()
            .ends_with(" <juergen@example.de>"));
        assert_eq!(
            parsed.field("Content-Transfer-Encoding"),
            Some("quoted-printable")
        );
        let body = decode_quoted_printable(&parsed.body);
        assert_eq!(
            body,
            crate::smtp::dot::normalize_line_endings(req.body_text.as_bytes())
        );
    }

    #[test]
    fn quoted_printable_known_answers() {
        assert_eq!(quoted_printable(b"a=b\r\n"), b"a=3Db\r\n");
        assert_eq!(quoted_printable(b"end \r\nx\t"), b"end=20\r\nx=09");
        assert_eq!(quoted_printable("é\r\n".as_bytes()), b"=C3=A9\r\n");
        let long = quoted_printable(&[b'a'; 200]);
        for line in long.split(|&b| b == b'\n') {
            assert!(line.len() <= ENCODED_LINE_MAX + 1);
        }
        assert_eq!(decode_quoted_printable(&long), vec![b'a'; 200]);
    }

    #[test]
    fn attachments_become_base64_parts_with_a_boundary_not_in_the_content() {
        let mut req = request();
        let png: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        req.attachments = vec![
            Attachment {
                filename: "/home/alice/cat.PNG".into(),
                content_type: None,
                bytes: png.clone(),
            },
            Attachment {
                filename: "song.ogg".into(),
                content_type: Some("audio/x-custom; rate=1".into()),
                bytes: b"OggS".to_vec(),
            },
            Attachment {
                filename: "résumé.pdf".into(),
                content_type: Some("bad type\r\nX: y".into()),
                bytes: Vec::new(),
            },
            Attachment {
                filename: "data.bin".into(),
                content_type: None,
                bytes: vec![0; 10],
            },
        ];
        let message = compose(&req).unwrap();
        assert_crlf_only(&message);
        assert!(!crate::smtp::dot::has_8bit(&message));
        let parsed = parse(&message);
        let content_type = parsed.field("Content-Type").unwrap();
        let boundary = content_type
            .split("boundary=\"")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("a quoted boundary");
        assert!(content_type.starts_with("multipart/mixed;"));
        assert!(boundary.len() <= 70, "RFC 2046 5.1.1");
        let body = std::str::from_utf8(&parsed.body).unwrap();
        let delimiter = format!("\r\n--{boundary}");
        let closing = format!("{delimiter}--\r\n");
        assert!(body.ends_with(&closing));
        let inner = &body[..body.len() - closing.len()];
        let mut pieces = inner.split(delimiter.as_str());
        let preamble = pieces.next().unwrap();
        assert!(!preamble.contains(boundary));
        let parts: Vec<Parsed> = pieces
            .map(|piece| {
                let piece = piece
                    .strip_prefix("\r\n")
                    .expect("CRLF after the delimiter");
                let mut bytes = piece.as_bytes().to_vec();
                bytes.extend_from_slice(b"\r\n");
                parse(&bytes)
            })
            .collect();
        assert_eq!(parts.len(), 5);
        assert_eq!(
            parts[0].field("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        let expected = [
            ("image/png; name=\"cat.PNG\"", png.as_slice()),
            (
                "audio/x-custom; rate=1; name=\"song.ogg\"",
                b"OggS".as_slice(),
            ),
            (
                "application/pdf; name*=utf-8''r%C3%A9sum%C3%A9.pdf",
                b"".as_slice(),
            ),
            (
                "application/octet-stream; name=\"data.bin\"",
                [0u8; 10].as_slice(),
            ),
        ];
        for (part, (content_type, bytes)) in parts[1..].iter().zip(expected) {
            assert_eq!(part.field("Content-Type"), Some(content_type));
            assert_eq!(part.field("Content-Transfer-Encoding"), Some("base64"));
            assert!(part
                .field("Content-Disposition")
                .unwrap()
                .starts_with("attachment;"));
            let text = std::str::from_utf8(&part.body).unwrap();
            for line in text.split("\r\n") {
                assert!(line.len() <= ENCODED_LINE_MAX, "base64 line too long");
            }
            assert_eq!(base64::decode(text).unwrap(), bytes);
        }
        // The same request gives the same bytes.
        assert_eq!(compose(&req).unwrap(), message);
    }

    /// The unfolded Content-Type of the part made for `filename` with `content_type`.
    fn attachment_content_type(filename: &str, content_type: &str) -> String {
        let part = attachment_part(&Attachment {
            filename: filename.into(),
            content_type: Some(content_type.into()),
            bytes: b"x".to_vec(),
        })
        .unwrap()
        .0;
        let parsed = parse(&part);
        parsed.field("Content-Type").unwrap().to_string()
    }

    #[test]
    fn media_type_parameters_are_kept_in_canonical_form() {
        let cases = [
            (
                "text/plain; charset=utf-8",
                "text/plain; charset=utf-8; name=\"a.txt\"",
            ),
            // Names lowercased, values kept, quotes only where a value is not a token.
            (
                " Text/Plain ; Charset = \"UTF-8\" ;\tFormat=flowed ;",
                "text/plain; charset=UTF-8; format=flowed; name=\"a.txt\"",
            ),
            (
                r#"application/x-thing; title="a b;c"; q="say \"hi\" \\o/"; empty="""#,
                r#"application/x-thing; title="a b;c"; q="say \"hi\" \\o/"; empty=""; name="a.txt""#,
            ),
            (
                "text/plain; title*=us-ascii'en'This%20is",
                "text/plain; title*=us-ascii'en'This%20is; name=\"a.txt\"",
            ),
            // The file name is the one `name`; the user's, in any RFC 2231 form, is dropped.
            (
                "application/pdf; NAME=\"other.pdf\"; name*0*=utf-8''x; names=y",
                "application/pdf; names=y; name=\"a.txt\"",
            ),
            // Comments (RFC 2045 5.1, RFC 5322 3.2.2), nested or with quoted-pairs, are
            // dropped; inside a quoted-string, parentheses are the value's.
            (
                "text/html (web page); charset=utf-8 (Plain text (UTF-8) \\) here)",
                "text/html; charset=utf-8; name=\"a.txt\"",
            ),
            (
                "text/plain;(why) format=\"(not a comment)\"",
                "text/plain; format=\"(not a comment)\"; name=\"a.txt\"",
            ),
        ];
        for (given, written) in cases {
            assert_eq!(
                attachment_content_type("a.txt", given),
                written,
                "{given:?}"
            );
        }
    }

    #[test]
    fn media_types_that_do_not_parse_fall_back_to_the_file_name() {
        let unusable = [
            "",
            ";",
            "text",
            "text/",
            "/plain",
            "bad type\r\nX: y",
            "text/plain\r\nX: y",
            "text/plain; charset=utf-8\r\nX: y",
            "text/plain; charset=\"utf-8\r\nX: y\"",
            "text/plain; charset=\"utf-8\\\r\nX: y\"",
            "text/plain; a=\"tab\there\"",
            "text/plain; charset",
            "text/plain; charset=",
            "text/plain; =utf-8",
            "text/plain charset=utf-8",
            "text/plain; charset=utf-8 junk",
            "text/plain (a comment left open",
            "text/plain (a (nested) comment left open",
            "text/plain a comment) closed only",
            "text/plain (a comment with\r\nX: y)",
            "text/plain (a comment with \\é)",
            "text/plain; a=\"unterminated",
            "text/plain; a=\"é\"",
            "text/plain; a=é",
            "tëxt/plain",
        ];
        for given in unusable {
            assert_eq!(parse_media_type(given), None, "{given:?}");
            assert_eq!(
                attachment_content_type("a.pdf", given),
                "application/pdf; name=\"a.pdf\"",
                "{given:?}"
            );
        }
        let long_name = "x".repeat(MEDIA_TYPE_NAME_MAX + 1);
        assert_eq!(parse_media_type(&format!("{long_name}/plain")), None);
        assert_eq!(parse_media_type(&format!("text/{long_name}")), None);
        assert_eq!(
            parse_media_type(&format!("text/plain; {long_name}=1")),
            None
        );
        // A parameter in the user's own RFC 2231 form is not cut, so it must fit on a line.
        let long_value = "x".repeat(LINE_MAX);
        assert_eq!(
            parse_media_type(&format!("text/plain; title*={long_value}")),
            None
        );
        assert!(parse_media_type(&format!("text/plain; title={long_value}")).is_some());
    }

    #[test]
    fn long_parameter_values_are_cut_into_rfc_2231_sections() {
        let a = |count: usize| "a".repeat(count);
        assert_eq!(
            parameter_sections("filename", &a(100)),
            [
                format!("filename*0=\"{}\"", a(63)),
                format!("filename*1=\"{}\"", a(37)),
            ]
        );
        // Quoted-pairs, "%XX" and UTF-8 sequences stay whole; only the first extended section
        // names the charset (RFC 2231 4.1).
        let e_acute = |count: usize| "%C3%A9".repeat(count);
        assert_eq!(
            parameter_sections("filename", &"é".repeat(30)),
            [
                format!("filename*0*=utf-8''{}", e_acute(9)),
                format!("filename*1*={}", e_acute(10)),
                format!("filename*2*={}", e_acute(10)),
                format!("filename*3*={}", e_acute(1)),
            ]
        );
        let quotes = parameter_sections("title", &"\"".repeat(40));
        assert_eq!(quotes.len(), 2);
        assert!(quotes[0].ends_with("\\\"\""), "{quotes:?}");
        // Short values stay as they were.
        assert_eq!(
            parameter_sections("filename", "a.txt"),
            ["filename=\"a.txt\""]
        );
        assert_eq!(parameter_sections("charset", "utf-8"), ["charset=utf-8"]);
        // An attribute too long for any section still gets one character a section.
        let long_attribute = a(MEDIA_TYPE_NAME_MAX);
        let sections = parameter_sections(&long_attribute, "xyz");
        assert_eq!(sections.len(), 3);
        assert!(sections.iter().all(|s| s.len() < LINE_MAX));
    }

    /// The decoded content of the part made for `attachment`.
    fn attachment_content(attachment: Attachment) -> Vec<u8> {
        let parsed = parse(&attachment_part(&attachment).unwrap().0);
        let text = std::str::from_utf8(&parsed.body).unwrap();
        base64::decode(text).unwrap()
    }

    #[test]
    fn text_attachments_get_crlf_line_breaks() {
        let attachment = |filename: &str, content_type: Option<&str>, bytes: &[u8]| Attachment {
            filename: filename.into(),
            content_type: content_type.map(String::from),
            bytes: bytes.to_vec(),
        };
        let mixed = b"one\ntwo\r\n\nthree\rfour\n\nfive";
        let canonical = b"one\r\ntwo\r\n\r\nthree\r\nfour\r\n\r\nfive";
        for text in [
            attachment("notes.txt", None, mixed),
            attachment("notes", Some("text/plain; charset=utf-8"), mixed),
            attachment("page.bin", Some("TEXT/HTML"), mixed),
        ] {
            assert_eq!(attachment_content(text), canonical);
        }
        assert_eq!(
            attachment_content(attachment("Grüße.txt", None, "\nä\n".as_bytes())),
            "\r\nä\r\n".as_bytes()
        );
        // RFC 2046 4.1.1: CR and LF occur in text only as CRLF, so a lone CR is a line break
        // too, as in the body and in message/* attachments; nothing is added at the end.
        for (given, canonical) in [
            (&b"a\r\nb\rc\n"[..], &b"a\r\nb\r\nc\r\n"[..]),
            (b"\r\r\n\n\r", b"\r\n\r\n\r\n\r\n"),
            (b"no break", b"no break"),
            (b"", b""),
        ] {
            assert_eq!(
                attachment_content(attachment("notes.txt", None, given)),
                canonical,
                "{:?}",
                String::from_utf8_lossy(given)
            );
        }
        // A charset where LF is LF, even when the text is not UTF-8 (ISO 8859-1 "é", LF).
        assert_eq!(
            attachment_content(attachment(
                "notes.txt",
                Some("text/plain; charset=ISO-8859-1"),
                b"\xe9\n\xe9\r"
            )),
            b"\xe9\r\n\xe9\r\n"
        );
        // Not text, or not UTF-8 text (here UTF-16LE "a", LF), or in a wide charset where an
        // 0x0A or 0x0D octet belongs to another character (UTF-16BE U+4E0A U+4E0D, without a
        // single NUL): left as it is.
        let utf16 = b"\xff\xfea\x00\n\x00";
        let wide = b"\x4e\x0a\x4e\x0d";
        for untouched in [
            attachment("data.bin", None, mixed),
            attachment("notes.txt", Some("application/octet-stream"), mixed),
            attachment("notes.txt", None, utf16),
            attachment("notes.txt", None, &utf16[2..]),
            attachment("notes.txt", Some("text/plain; charset=utf-16be"), wide),
            attachment("notes.txt", Some("text/plain; charset=UTF-32"), wide),
        ] {
            let bytes = untouched.bytes.clone();
            assert_eq!(attachment_content(untouched), bytes);
        }
        // A charset given only as RFC 2231's `charset*` is not read: its text is changed when
        // it reads as UTF-8 without NULs, as text without a charset is.
        let starred = |charset: &str, bytes: &[u8]| {
            let content_type = format!("text/plain; charset*={charset}''{charset}");
            attachment_content(attachment("notes.txt", Some(&content_type), bytes))
        };
        assert_eq!(starred("utf-8", "ä\n".as_bytes()), "ä\r\n".as_bytes());
        assert_eq!(starred("utf-16le", &utf16[2..]), &utf16[2..]);
        assert_eq!(starred("iso-8859-1", b"\xe9\n"), b"\xe9\n");
    }

    #[test]
    fn non_ascii_text_attachments_name_their_charset() {
        let sent = |filename: &str, content_type: Option<&str>, bytes: &[u8]| {
            let part = attachment_part(&Attachment {
                filename: filename.into(),
                content_type: content_type.map(String::from),
                bytes: bytes.to_vec(),
            })
            .unwrap()
            .0;
            let parsed = parse(&part);
            let content = base64::decode(std::str::from_utf8(&parsed.body).unwrap()).unwrap();
            (parsed.field("Content-Type").unwrap().to_string(), content)
        };
        // RFC 2046 4.1.2: without a charset the text is US-ASCII, so UTF-8 text says so (the
        // scenario's `text` always is UTF-8); ASCII text needs nothing.
        assert_eq!(
            sent("notes.txt", None, "hello\nwörld\n".as_bytes()),
            (
                "text/plain; charset=utf-8; name=\"notes.txt\"".to_string(),
                "hello\r\nwörld\r\n".as_bytes().to_vec()
            )
        );
        assert_eq!(
            sent(
                "page",
                Some("text/html; format=x"),
                "<p>東京</p>".as_bytes()
            )
            .0,
            "text/html; format=x; charset=utf-8; name=\"page\""
        );
        assert_eq!(
            sent("notes.txt", None, b"hello\n").0,
            "text/plain; name=\"notes.txt\""
        );
        assert_eq!(
            sent("notes", Some("text/plain"), b"hello\n").0,
            "text/plain; name=\"notes\""
        );
        // UTF-8 with a NUL is still UTF-8: named so, and its line breaks made CRLF.
        assert_eq!(
            sent("notes.txt", None, "é\0\n".as_bytes()),
            (
                "text/plain; charset=utf-8; name=\"notes.txt\"".to_string(),
                "é\0\r\n".as_bytes().to_vec()
            )
        );
        // A charset the author gave is kept as it is, right or wrong, and none is added.
        for (given, written) in [
            (
                "text/plain; charset=ISO-8859-1",
                "text/plain; charset=ISO-8859-1; name=\"notes.txt\"",
            ),
            (
                "text/plain; Charset=\"us-ascii\"",
                "text/plain; charset=us-ascii; name=\"notes.txt\"",
            ),
            (
                "text/plain; charset*=utf-8'en'utf-8",
                "text/plain; charset*=utf-8'en'utf-8; name=\"notes.txt\"",
            ),
        ] {
            assert_eq!(sent("notes.txt", Some(given), "ü".as_bytes()).0, written);
        }
        // 8-bit text that is not UTF-8 (a file `smtp-lab send --attach` read: ISO 8859-1
        // "café", UTF-16LE with its byte order mark) is in a charset nobody named: RFC 1428's
        // `unknown-8bit` says just that, and its octets, line breaks included, stay as they are
        // (in UTF-16 an LF octet can be half of a character).
        for bytes in [&b"caf\xe9\n"[..], b"\xff\xfea\x00\n\x00"] {
            assert_eq!(
                sent("notes.txt", None, bytes),
                (
                    "text/plain; charset=unknown-8bit; name=\"notes.txt\"".to_string(),
                    bytes.to_vec()
                )
            );
        }
        // Only text has a charset.
        for (filename, content_type) in [
            ("a.bin", None),
            ("a.png", None),
            ("a.eml", Some("message/global")),
        ] {
            let (written, _) = sent(filename, content_type, "ü".as_bytes());
            assert!(!written.contains("charset"), "{written}");
        }
    }

    /// The pieces of `haystack` between occurrences of `separator`.
    fn split_on<'a>(haystack: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut index = 0;
        while index + separator.len() <= haystack.len() {
            if haystack[index..].starts_with(separator) {
                pieces.push(&haystack[start..index]);
                index += separator.len();
                start = index;
            } else {
                index += 1;
            }
        }
        pieces.push(&haystack[start..]);
        pieces
    }

    /// A multipart message's boundary and its parts as sent: each part's header and body, the
    /// body up to the CRLF that belongs to the next delimiter (RFC 2046 5.1.1).
    fn multipart_parts(message: &[u8]) -> (String, Vec<Parsed>) {
        let parsed = parse(message);
        let boundary = parsed
            .field("Content-Type")
            .unwrap()
            .split("boundary=\"")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("a quoted boundary")
            .to_string();
        let delimiter = format!("\r\n--{boundary}");
        let body = parsed
            .body
            .strip_suffix(format!("{delimiter}--\r\n").as_bytes())
            .expect("the close delimiter ends the message");
        let parts = split_on(body, delimiter.as_bytes())
            .into_iter()
            .skip(1)
            .map(|piece| parse(piece.strip_prefix(b"\r\n").expect("CRLF after a delimiter")))
            .collect();
        (boundary, parts)
    }

    #[test]
    fn the_text_part_of_a_multipart_message_keeps_its_last_line_break() {
        // RFC 2046 5.1.1: a part that ends with a line break has two CRLFs before the next
        // delimiter. Text without a final line break gets one, as in a one-part message.
        for (typed, sent) in [("hello\n", "hello\r\n"), ("no eol", "no eol\r\n")] {
            let mut request = request();
            request.body_text = typed.into();
            let unended: &[u8] = b"Subject: x\r\n\r\nno line break";
            request.attachments = vec![forwarded("message/rfc822", unended)];
            let (_, parts) = multipart_parts(&compose(&request).expect("composes"));
            assert_eq!(parts[0].body, sent.as_bytes(), "{typed:?}");
            // An attachment sent as it is, without a final line break, gains none.
            assert_eq!(parts[1].body, unended, "{typed:?}");
        }
    }

    /// A message as a user agent saves it, LF line ends: a header section with fields the
    /// composer writes too, an encoded word, a line that starts with a dot, one with "From ".
    const FORWARDED: &str = "From: Carol <carol@example.net>\n\
                             To: alice@example.org\n\
                             Subject: =?UTF-8?B?w6k=?= and more\n\
                             Date: Mon, 13 Nov 2023 10:00:00 +0000\n\
                             Message-ID: <inner@example.net>\n\
                             MIME-Version: 1.0\n\
                             Content-Type: text/plain; charset=us-ascii\n\
                             Content-Transfer-Encoding: 7bit\n\
                             \n\
                             See below.\n\
                             .\n\
                             From the archive\n";

    fn forwarded(content_type: &str, bytes: &[u8]) -> Attachment {
        Attachment {
            filename: "forwarded.eml".into(),
            content_type: Some(content_type.into()),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn message_attachments_go_as_7bit_with_their_bytes_unchanged() {
        let mut req = request();
        req.attachments = vec![forwarded("message/rfc822", FORWARDED.as_bytes())];
        let message = compose(&req).unwrap();
        assert_crlf_only(&message);
        assert!(!crate::smtp::dot::has_8bit(&message));
        // 7-bit throughout: the multipart keeps the default label, 7bit.
        assert_eq!(parse(&message).field("Content-Transfer-Encoding"), None);
        let crlf = FORWARDED.replace('\n', "\r\n");
        assert!(contains(&message, crlf.as_bytes()));
        let (_, parts) = multipart_parts(&message);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1].field("Content-Type"),
            Some("message/rfc822; name=\"forwarded.eml\"")
        );
        assert_eq!(parts[1].field("Content-Transfer-Encoding"), Some("7bit"));
        // Every octet, the header section and the last line break included.
        assert_eq!(parts[1].body, crlf.as_bytes());
        // Line breaks of any kind become CRLF, and nothing else changes: no line break is
        // added at the end.
        for (given, sent) in [
            (&b"A: b\r\n\r\nc\r\n"[..], &b"A: b\r\n\r\nc\r\n"[..]),
            (b"A: b\r\rc\rd\n\ne", b"A: b\r\n\r\nc\r\nd\r\n\r\ne"),
            (b"A: b\n\n", b"A: b\r\n\r\n"),
            (b"", b""),
        ] {
            req.attachments = vec![forwarded("Message/RFC822", given)];
            let (_, parts) = multipart_parts(&compose(&req).unwrap());
            assert_eq!(parts[1].body, sent, "{:?}", String::from_utf8_lossy(given));
        }
    }

    #[test]
    fn a_message_global_attachment_goes_in_base64_in_canonical_form() {
        // RFC 6532 3.7 lets message/global have any encoding, and base64 keeps the message
        // 7-bit, but what is encoded is the canonical form (RFC 2049 4, RFC 2045 6.8): an
        // encapsulated message with CRLF line breaks, as message/rfc822 has.
        let inner = "From: josé@example.net\nSubject: Grüße\r\n\rGrüße aus Köln\n";
        let mut req = request();
        req.attachments = vec![forwarded("message/global", inner.as_bytes())];
        let message = compose(&req).unwrap();
        assert!(!crate::smtp::dot::has_8bit(&message));
        let (_, parts) = multipart_parts(&message);
        assert_eq!(
            parts[1].field("Content-Type"),
            Some("message/global; name=\"forwarded.eml\"")
        );
        assert_eq!(parts[1].field("Content-Transfer-Encoding"), Some("base64"));
        let text = std::str::from_utf8(&parts[1].body).unwrap();
        assert_eq!(
            base64::decode(text).unwrap(),
            "From: josé@example.net\r\nSubject: Grüße\r\n\r\nGrüße aus Köln\r\n".as_bytes()
        );
        // Nothing else changes: no line break is added, and any octet may be encoded.
        assert_eq!(
            attachment_content(forwarded("message/global", b"A: b\n\nnul \0 \xff")),
            b"A: b\r\n\r\nnul \0 \xff"
        );
    }

    #[test]
    fn every_message_global_type_goes_in_base64_in_canonical_form() {
        // RFC 6532 3.5 relaxes RFC 2045 6.4 for the newly defined message/global types, the
        // three of RFC 6533 as much as message/global: none is forced unencoded, so UTF-8 in
        // them leaves the message 7-bit, with no need for 8BITMIME.
        let headers = "From: josé@example.net\nSubject: Grüße\r\rX: ü";
        let status = "Reporting-MTA: dns; mx.example.net\n\n\
                      Final-Recipient: utf-8; josé@example.net\nAction: failed\n";
        let disposition = "Disposition: manual-action/MDN-sent-manually; displayed\n\
                           Final-Recipient: utf-8; josé@example.net\n";
        for (media_type, content) in [
            ("message/global-headers", headers),
            ("message/global-delivery-status", status),
            ("Message/Global-Disposition-Notification", disposition),
        ] {
            assert!(
                !attachment_is_unencoded("a", Some(media_type)),
                "{media_type}"
            );
            let mut req = request();
            req.attachments = vec![forwarded(media_type, content.as_bytes())];
            let message = compose(&req).unwrap();
            assert!(!crate::smtp::dot::has_8bit(&message), "{media_type}");
            assert_eq!(parse(&message).field("Content-Transfer-Encoding"), None);
            let (_, parts) = multipart_parts(&message);
            assert_eq!(parts[1].field("Content-Transfer-Encoding"), Some("base64"));
            let text = std::str::from_utf8(&parts[1].body).unwrap();
            let crlf = content.replace("\r\n", "\n").replace(['\r', '\n'], "\r\n");
            assert_eq!(
                base64::decode(text).unwrap(),
                crlf.as_bytes(),
                "{media_type}"
            );
            // Any octet may be encoded.
            assert_eq!(
                check_attachment(&forwarded(media_type, b"nul \0 here")),
                Ok(())
            );
        }
    }

    #[test]
    fn an_8bit_message_attachment_goes_as_8bit_and_makes_the_message_8bit() {
        let inner = "From: carol@example.net\n\
                     Subject: Greetings\n\
                     MIME-Version: 1.0\n\
                     Content-Type: text/plain; charset=utf-8\n\
                     Content-Transfer-Encoding: 8bit\n\
                     \n\
                     Grüße aus Köln\n";
        let mut req = request();
        req.attachments = vec![forwarded("message/rfc822", inner.as_bytes())];
        let message = compose(&req).unwrap();
        assert_crlf_only(&message);
        // What the client looks at to send BODY=8BITMIME, or to refuse a server without it.
        assert!(crate::smtp::dot::has_8bit(&message));
        // RFC 2045 6.4: the multipart around an 8bit part is 8bit data too.
        assert_eq!(
            parse(&message).field("Content-Transfer-Encoding"),
            Some("8bit")
        );
        let (_, parts) = multipart_parts(&message);
        assert_eq!(parts[0].field("Content-Transfer-Encoding"), Some("7bit"));
        assert_eq!(parts[1].field("Content-Transfer-Encoding"), Some("8bit"));
        assert_eq!(parts[1].body, inner.replace('\n', "\r\n").as_bytes());
        // The header section stays 7-bit: only the encapsulated message's body is 8-bit.
        assert!(crate::smtp::trace::header_section(&message).is_ascii());
    }

    #[test]
    fn a_message_rfc822_with_utf8_header_fields_is_refused() {
        // RFC 2046 5.2.1: the header fields of a message/rfc822 are always US-ASCII; with UTF-8
        // ones it is a message/global (RFC 6532 3.7).
        for (content, offset) in [
            ("From: josé@example.net\n\nhi\n", 9),
            ("Subject: x\r\nX: \r\n\tGrüße\r\n\r\nhi", 20),
            // Without an empty line, all of it is the header section.
            ("Subject: x\nX: é", 14),
        ] {
            let attachment = forwarded("message/rfc822", content.as_bytes());
            let expected = ComposeError::NonAsciiHeader {
                filename: "forwarded.eml".into(),
                offset,
            };
            let text = assert_refused(attachment, &expected, &format!("{content:?}"));
            assert!(
                text.starts_with("attachment \"forwarded.eml\" (message/rfc822)")
                    && text.contains("RFC 2046 5.2.1")
                    && text.contains("message/global"),
                "{text}"
            );
            // As message/global it goes.
            assert_eq!(
                check_attachment(&forwarded("message/global", content.as_bytes())),
                Ok(())
            );
        }
        // 8-bit octets after the empty line, whatever its line breaks, are the body's.
        for content in [
            "Subject: x\n\nGrüße",
            "Subject: x\r\rGrüße",
            "Subject: x\n\r\nGrüße",
            "\nGrüße",
            "\r\nGrüße",
        ] {
            let attachment = forwarded("message/rfc822", content.as_bytes());
            assert_eq!(check_attachment(&attachment), Ok(()), "{content:?}");
        }
        // Other message types that go as they are may be 8-bit anywhere.
        assert_eq!(
            check_attachment(&forwarded("message/delivery-status", "X: é\n".as_bytes())),
            Ok(())
        );
    }

    #[test]
    fn a_multipart_attachment_goes_as_it_is_and_the_boundary_avoids_its_content() {
        let nested = |planted: &str| {
            format!(
                "--inner\nContent-Type: text/plain\n\nfirst\n{planted}--inner\n\
                 Content-Type: text/plain\n\nsecond\n--inner--\n"
            )
        };
        let mut req = request();
        req.attachments = vec![Attachment {
            filename: "parts.mime".into(),
            content_type: Some("multipart/mixed; boundary=inner".into()),
            bytes: nested("").into_bytes(),
        }];
        let (first, _) = multipart_parts(&compose(&req).unwrap());
        // The boundary chosen for the first version goes into the content, as a delimiter and
        // a close delimiter: it must not be chosen again, and whatever is chosen must occur
        // nowhere in the content, which is now sent as it is.
        let content = nested(&format!("--{first}\n--{first}--\n"));
        req.attachments[0].bytes = content.clone().into_bytes();
        let message = compose(&req).unwrap();
        let (second, parts) = multipart_parts(&message);
        assert_ne!(second, first);
        let crlf = content.replace('\n', "\r\n");
        assert!(!contains(crlf.as_bytes(), format!("--{second}").as_bytes()));
        assert!(contains(&message, crlf.as_bytes()));
        assert_eq!(
            split_on(&message, format!("--{second}").as_bytes()).len(),
            4
        );
        assert_eq!(parts.len(), 2);
        // The attachment's own boundary parameter is its business, kept as given.
        assert_eq!(
            parts[1].field("Content-Type"),
            Some("multipart/mixed; boundary=inner; name=\"parts.mime\"")
        );
        assert_eq!(parts[1].field("Content-Transfer-Encoding"), Some("7bit"));
        assert_eq!(parts[1].body, crlf.as_bytes());
    }

    #[test]
    fn composite_attachments_that_cannot_go_as_they_are_are_refused() {
        let with_line = |octets: usize| {
            let mut bytes = b"Subject: x\n\n".to_vec();
            bytes.extend_from_slice(&vec![b'a'; octets]);
            bytes.extend_from_slice(b"\nend\n");
            bytes
        };
        let refused = [
            (
                forwarded("message/rfc822", b"Subject: x\n\nnul \0 here\n"),
                "message/rfc822",
                UnencodableContent::Nul { offset: 16 },
            ),
            (
                forwarded("multipart/mixed; boundary=b", &with_line(1000)),
                "multipart/mixed",
                UnencodableContent::LongLine {
                    line: 3,
                    octets: 1000,
                },
            ),
            (
                forwarded("message/delivery-status", &with_line(999)),
                "message/delivery-status",
                UnencodableContent::LongLine {
                    line: 3,
                    octets: 999,
                },
            ),
            // RFC 2046 5.2.2, 5.2.3: these two are 7bit even where 8bit could go.
            (
                forwarded(
                    "message/partial; id=\"a@b\"; number=1",
                    "Subject: é\n".as_bytes(),
                ),
                "message/partial",
                UnencodableContent::EightBit { offset: 9 },
            ),
            (
                forwarded("message/external-body; access-type=x", b"\xff"),
                "message/external-body",
                UnencodableContent::EightBit { offset: 0 },
            ),
        ];
        for (attachment, media_type, problem) in refused {
            let expected = ComposeError::UnencodableAttachment {
                filename: "forwarded.eml".into(),
                media_type: media_type.into(),
                problem,
            };
            let text = assert_refused(attachment, &expected, "");
            assert!(
                text.starts_with("attachment \"forwarded.eml\""),
                "{expected}"
            );
        }
        // 998 octets is the longest line (CRLF not counted, RFC 2045 2.7), however it ends.
        let mut at_most_998 = with_line(998);
        at_most_998.extend_from_slice(&[b'b'; 998]);
        at_most_998.extend_from_slice(b"\r");
        at_most_998.extend_from_slice(&[b'c'; 998]);
        let allowed = [
            forwarded("message/rfc822", &at_most_998),
            // Leaf types and message/global (RFC 6532 3.7) go in base64, whatever they hold.
            forwarded("message/global", b"nul \0 here"),
            forwarded("application/octet-stream", &with_line(5000)),
        ];
        for attachment in allowed {
            assert_accepted(attachment, "");
        }
        // Which attachments go as they are.
        assert!(attachment_is_unencoded("a", Some("Message/RFC822")));
        assert!(attachment_is_unencoded(
            "a",
            Some("multipart/alternative; boundary=x")
        ));
        assert!(attachment_is_unencoded(
            "a",
            Some("message/delivery-status")
        ));
        assert!(!attachment_is_unencoded("a", Some("message/global")));
        assert!(!attachment_is_unencoded("a.eml", None));
        assert!(!attachment_is_unencoded(
            "a.txt",
            Some("message/rfc822 junk")
        ));
    }

    #[test]
    fn multipart_attachments_need_a_boundary_that_their_content_uses() {
        let content = "preamble\n--b 1\nContent-Type: text/plain\n\none\n--b 1--\nepilogue\n";
        let refused = [
            ("multipart/mixed", content, BoundaryProblem::Missing),
            (
                "multipart/mixed; charset=b",
                content,
                BoundaryProblem::Missing,
            ),
            (
                "multipart/mixed; boundary=\"\"",
                content,
                BoundaryProblem::Invalid {
                    boundary: String::new(),
                },
            ),
            (
                "multipart/mixed; boundary=\"b \"",
                content,
                BoundaryProblem::Invalid {
                    boundary: "b ".into(),
                },
            ),
            (
                "multipart/mixed; boundary=b*1",
                content,
                BoundaryProblem::Invalid {
                    boundary: "b*1".into(),
                },
            ),
            (
                "multipart/mixed; boundary=\"b 1\"",
                "--b 1x\n\none\n--b 2--\n",
                BoundaryProblem::NoDelimiter {
                    boundary: "b 1".into(),
                },
            ),
            (
                "multipart/alternative; boundary=\"b 1\"",
                "--b 1--\n--b 1\n\none\n",
                BoundaryProblem::NoCloseDelimiter {
                    boundary: "b 1".into(),
                },
            ),
        ];
        let too_long = format!("multipart/mixed; boundary={}", "b".repeat(71));
        let refused = refused.into_iter().chain([(
            too_long.as_str(),
            content,
            BoundaryProblem::Invalid {
                boundary: "b".repeat(71),
            },
        )]);
        for (content_type, content, problem) in refused {
            let attachment = forwarded(content_type, content.as_bytes());
            let expected = ComposeError::BadBoundary {
                filename: "forwarded.eml".into(),
                media_type: content_type.split(';').next().unwrap().into(),
                problem,
            };
            let text = assert_refused(attachment, &expected, content_type);
            assert!(
                text.starts_with("attachment \"forwarded.eml\"") && text.contains("RFC 2046 5.1.1"),
                "{text}"
            );
        }
        // 1 to 70 of the RFC 2046 5.1.1 bchars, not ending in a space; delimiter lines may
        // have transport padding (blanks) after them, and the first may start the content.
        let bchars = "0aZ'()+_,-./:=? x";
        let seventy = "b".repeat(70);
        for (boundary, content) in [
            ("b 1", content.to_string()),
            (
                bchars,
                format!("--{bchars} \t\r\n\r\none\r\n--{bchars}-- \r\n"),
            ),
            (seventy.as_str(), format!("--{seventy}\n\n--{seventy}--")),
        ] {
            let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
            let attachment = forwarded(&content_type, content.as_bytes());
            assert_accepted(attachment, &format!("{boundary:?}"));
        }
    }

    #[test]
    fn a_long_boundary_is_never_cut_into_sections() {
        // RFC 2046 5.1.1 allows 70 characters; from 66 on, a quoted boundary with the space
        // before it and the ";" after it passes 78, and from 69 on, a token does too. It stays
        // whole, on a line of its own, as readers look for it.
        let quoted = format!("{}-x y", "b".repeat(62));
        let token = "b".repeat(70);
        assert_eq!((quoted.len(), token.len()), (66, 70));
        for (boundary, written) in [
            (&quoted, format!("boundary=\"{quoted}\"")),
            (&token, format!("boundary={token}")),
        ] {
            let content = format!("--{boundary}\n\none\n--{boundary}--\n");
            let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
            let mut req = request();
            req.attachments = vec![forwarded(&content_type, content.as_bytes())];
            let message = compose(&req).unwrap();
            let line = format!("\r\n {written};\r\n name=\"forwarded.eml\"\r\n");
            assert!(
                contains(&message, line.as_bytes()),
                "{}",
                String::from_utf8_lossy(&message)
            );
            assert!(!contains(&message, b"boundary*"));
            assert!(message
                .split(|&octet| octet == b'\n')
                .all(|line| line.len() <= LINE_PREFERRED_MAX + 4));
        }
        // Any other parameter that long is still cut, and so is a "boundary" too long to be
        // one, which only a type that is not multipart, and so not checked, can have.
        assert_eq!(parameter_sections("boundary", &quoted).len(), 1);
        assert_eq!(parameter_sections("x-boundary", &quoted).len(), 2);
        let sections = parameter_sections("boundary", &"b".repeat(200));
        assert!(sections.len() > 1);
        assert!(sections[0].starts_with("boundary*0="));
    }

    /// Tests that read the message back with an independent parser, mail-parser (a native-only
    /// dev-dependency).
    #[cfg(not(target_arch = "wasm32"))]
    mod read_back {
        use super::*;
        use mail_parser::{MessageParser, MimeHeaders};

        fn with_attachment(attachment: Attachment) -> Vec<u8> {
            let mut req = request();
            req.attachments = vec![attachment];
            compose(&req).unwrap()
        }

        /// Every line of the message, header or body, is at most 78 octets.
        fn assert_lines_within_78(message: &[u8]) {
            for line in message.split(|&octet| octet == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                assert!(
                    line.len() <= LINE_PREFERRED_MAX,
                    "a line of {} octets: {}",
                    line.len(),
                    String::from_utf8_lossy(line)
                );
            }
        }

        #[test]
        fn long_file_names_fit_in_78_and_read_back_whole() {
            let ascii_300: String = "Quarterly report (draft \"v2\"; final=no) for the board, "
                .chars()
                .cycle()
                .take(296)
                .chain(".pdf".chars())
                .collect();
            let mixed_200: String = "Übersicht über die Änderungen, "
                .chars()
                .cycle()
                .take(200)
                .collect();
            let non_ascii_200 = "é".repeat(100) + &"東京".repeat(50);
            assert_eq!(ascii_300.chars().count(), 300);
            assert_eq!(mixed_200.chars().count(), 200);
            assert_eq!(non_ascii_200.chars().count(), 200);
            let long_title = "A title with \"quotes\", a \\ and ; = signs. ".repeat(4);
            let content_type = format!(
                "text/plain; charset=utf-8; title=\"{}\"",
                escaped_for_quotes(&long_title)
            );
            for name in [&ascii_300, &mixed_200, &non_ascii_200] {
                let message = with_attachment(Attachment {
                    filename: name.clone(),
                    content_type: Some(content_type.clone()),
                    bytes: b"x".to_vec(),
                });
                assert_lines_within_78(&message);
                // The composer keeps at most FILENAME_MAX_OCTETS of a name (cut between
                // characters, before the extension), so the longest names come back cut to
                // that, and no shorter.
                let expected = clean_filename(name);
                let (stem, extension) = match name.rsplit_once('.') {
                    Some((_, extension)) if expected != *name => (
                        expected.strip_suffix(&format!(".{extension}")).unwrap(),
                        extension,
                    ),
                    _ => (expected.as_str(), ""),
                };
                assert!(name.starts_with(stem));
                assert!(name.ends_with(extension));
                assert!(expected == *name || expected.len() > FILENAME_MAX_OCTETS - 4);
                assert!(expected.len() <= FILENAME_MAX_OCTETS);
                let parsed = MessageParser::default().parse(&message).unwrap();
                let part = parsed.attachment(0).expect("one attachment");
                let disposition = part.content_disposition().unwrap();
                assert_eq!(disposition.attribute("filename"), Some(expected.as_str()));
                let content_type = part.content_type().unwrap();
                assert_eq!(content_type.attribute("name"), Some(expected.as_str()));
                assert_eq!(content_type.attribute("charset"), Some("utf-8"));
                assert_eq!(content_type.attribute("title"), Some(long_title.as_str()));
            }
            assert_eq!(clean_filename(&mixed_200), mixed_200);
        }

        #[test]
        fn long_display_names_fold_between_words_and_read_back_whole() {
            // RFC 5322 2.1.1: lines should be at most 78 characters. Names of 100 to 290
            // characters, as atoms and as quoted strings with runs of spaces, fold at spaces;
            // one with a word or a run of spaces too long for a line goes as encoded words.
            let atoms = (0..20)
                .map(|i| format!("Word{i}"))
                .collect::<Vec<_>>()
                .join(" ");
            let quoted = format!("{}, \"the\"  second  (name)", "Dr. Quoted ".repeat(8));
            let spaced = format!("   {atoms}  ");
            let long_word = "x".repeat(70);
            let long_spaces = format!("a{}b", " ".repeat(70));
            let mut req = request();
            let names = [&atoms, &quoted, &spaced, &long_word, &long_spaces];
            req.to = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                    format!("\"{escaped}\" <user{i}@example.net>")
                })
                .collect();
            let message = compose(&req).unwrap();
            assert_crlf_only(&message);
            let text = String::from_utf8_lossy(&message);
            let header = text.split("\r\n\r\n").next().unwrap();
            for line in header.split("\r\n") {
                assert!(line.len() <= LINE_PREFERRED_MAX, "{line:?}");
                assert!(
                    !line.trim().is_empty(),
                    "a line of only white space in {header}"
                );
            }
            assert!(header.contains("To: Word0 Word1"), "{header}");
            assert!(header.contains("\"   Word0"), "{header}");
            let parsed = MessageParser::default().parse(&message).unwrap();
            let to: Vec<(Option<&str>, Option<&str>)> = parsed
                .to()
                .unwrap()
                .iter()
                .map(|a| (a.name(), a.address()))
                .collect();
            let expected: Vec<(Option<&str>, Option<String>)> = names
                .iter()
                .enumerate()
                .map(|(i, name)| (Some(name.as_str()), Some(format!("user{i}@example.net"))))
                .collect();
            for ((name, address), (expected_name, expected_address)) in to.iter().zip(&expected) {
                assert_eq!(*address, expected_address.as_deref());
                // mail-parser trims a name's outer spaces; the words and what is between them
                // read back as written.
                assert_eq!(name.map(str::trim), expected_name.map(|n| n.trim()));
            }
            assert_eq!(to.len(), names.len());
            // The threshold, as for a subject: a word of 67 goes as it is, within 78; one of
            // 68 is encoded.
            for (length, encoded) in [(67, false), (68, true)] {
                let mut req = request();
                req.to = vec![format!("{} <a@example.net>", "y".repeat(length))];
                let message = compose(&req).unwrap();
                let text = String::from_utf8_lossy(&message);
                let header = text.split("\r\n\r\n").next().unwrap();
                assert_eq!(header.contains("To: =?UTF-8?B?"), encoded, "{header}");
                assert!(
                    header.split("\r\n").all(|l| l.len() <= LINE_PREFERRED_MAX),
                    "{header}"
                );
            }
        }

        #[test]
        fn a_very_long_display_name_is_folded_as_encoded_words() {
            // As one piece with its address it would pass the 998-octet line limit.
            let mut long_name = request();
            let name = "\"quoted\" words ".repeat(60);
            long_name.from = format!("{name}<alice@example.org>");
            let message = compose(&long_name).unwrap();
            assert_crlf_only(&message);
            let header = String::from_utf8_lossy(&message);
            let header = header.split("\r\n\r\n").next().unwrap();
            assert!(
                header
                    .split("\r\n")
                    .all(|line| line.len() <= ENCODED_LINE_MAX),
                "{header}"
            );
            assert!(header.contains("From: =?UTF-8?"), "{header}");
            assert!(header.contains("<alice@example.org>"), "{header}");
            // And reads back whole.
            let parsed = MessageParser::default().parse(&message).unwrap();
            let from = parsed.from().and_then(|from| from.first()).unwrap();
            assert_eq!(from.name(), Some(name.trim_end()));
            assert_eq!(from.address(), Some("alice@example.org"));
        }

        #[test]
        fn an_attachments_charset_reaches_the_reader() {
            let text = "Grüße aus Köln, 東京から";
            let message = with_attachment(Attachment {
                filename: "notes.txt".into(),
                content_type: Some("text/plain; charset=utf-8".into()),
                bytes: text.as_bytes().to_vec(),
            });
            let parsed = MessageParser::default().parse(&message).unwrap();
            let part = parsed.attachment(0).expect("one attachment");
            let content_type = part.content_type().unwrap();
            assert_eq!(content_type.ctype(), "text");
            assert_eq!(content_type.subtype(), Some("plain"));
            assert_eq!(content_type.attribute("charset"), Some("utf-8"));
            assert_eq!(content_type.attribute("name"), Some("notes.txt"));
            assert_eq!(part.attachment_name(), Some("notes.txt"));
            assert_eq!(part.text_contents(), Some(text));
        }

        #[test]
        fn a_utf8_text_attachment_without_a_charset_reads_back_as_utf8() {
            let message = with_attachment(Attachment {
                filename: "notes.txt".into(),
                content_type: None,
                bytes: "hello\nwörld\r東京\n".as_bytes().to_vec(),
            });
            let parsed = MessageParser::default().parse(&message).unwrap();
            let part = parsed.attachment(0).expect("one attachment");
            let content_type = part.content_type().unwrap();
            assert_eq!(content_type.attribute("charset"), Some("utf-8"));
            assert_eq!(part.text_contents(), Some("hello\r\nwörld\r\n東京\r\n"));
        }

        #[test]
        fn message_attachments_read_back_as_messages() {
            // An 8-bit body under an ASCII header section, as message/rfc822 must have (RFC
            // 2046 5.2.1).
            let inner = "From: carol@example.net\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\n\
                         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
                         Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln\n";
            // UTF-8 header fields make a message/global (RFC 6532 3.7).
            let global = inner.replace("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße");
            for (media_type, content, subject, text) in [
                (
                    "message/rfc822",
                    FORWARDED,
                    "é and more",
                    "See below.\n.\nFrom the archive\n",
                ),
                ("message/rfc822", inner, "Grüße", "Grüße aus Köln\n"),
                ("message/global", &global, "Grüße", "Grüße aus Köln\n"),
            ] {
                let message = with_attachment(forwarded(media_type, content.as_bytes()));
                let parsed = MessageParser::default().parse(&message).unwrap();
                let part = parsed.attachment(0).expect("one attachment");
                let nested = part.message().expect("an encapsulated message");
                assert_eq!(nested.subject(), Some(subject));
                assert_eq!(
                    nested.body_text(0).unwrap().replace("\r\n", "\n"),
                    text,
                    "{content}"
                );
            }
        }
    }

    #[test]
    fn boundary_avoids_text_that_contains_it() {
        let mut req = request();
        req.attachments = vec![Attachment {
            filename: "a.txt".into(),
            content_type: None,
            bytes: b"x".to_vec(),
        }];
        let first = compose(&req).unwrap();
        let parsed = parse(&first);
        let boundary = parsed
            .field("Content-Type")
            .unwrap()
            .split('"')
            .nth(1)
            .unwrap()
            .to_string();
        // Put that very delimiter into the body text: a different boundary must be chosen.
        req.body_text = format!("--{boundary}\n");
        let second = compose(&req).unwrap();
        let parsed = parse(&second);
        let new_boundary = parsed
            .field("Content-Type")
            .unwrap()
            .split('"')
            .nth(1)
            .unwrap();
        let body = std::str::from_utf8(&parsed.body).unwrap();
        assert_eq!(body.matches(&format!("--{new_boundary}")).count(), 3);
    }

    #[test]
    fn media_types_from_extensions() {
        let cases = [
            ("a.txt", "text/plain"),
            ("a.CSV", "text/csv"),
            ("a.HTML", "text/html"),
            ("a.htm", "text/html"),
            ("a.png", "image/png"),
            ("a.jpeg", "image/jpeg"),
            ("a.JPG", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.svg", "image/svg+xml"),
            ("a.pdf", "application/pdf"),
            ("a.mp3", "audio/mpeg"),
            ("a.wav", "audio/wav"),
            ("a.ogg", "audio/ogg"),
            ("a.mp4", "video/mp4"),
            ("a.webm", "video/webm"),
            ("a.zip", "application/zip"),
            ("a.tar.gz", "application/octet-stream"),
            ("noextension", "application/octet-stream"),
        ];
        for (name, media_type) in cases {
            assert_eq!(media_type_for_filename(name), media_type, "{name}");
        }
    }

    #[test]
    fn bad_addresses_are_refused_and_headers_cannot_be_injected() {
        let mut req = request();
        req.to = vec!["bob@example.net\r\nBcc: x@y".into()];
        assert!(matches!(
            compose(&req),
            Err(ComposeError::InvalidAddress { field: "To", .. })
        ));
        for bad in [
            "",
            "no-at-sign",
            "a@b@c",
            "@x",
            "x@",
            "a b@c",
            "<a@b",
            "\"a b\"@",
            "\"a\r\nBcc: x\"@b.example",
            "\"unclosed@b.example",
        ] {
            assert!(parse_mailbox("To", bad).is_err(), "{bad:?}");
        }
        // A quoted local part is an address (RFC 5321 4.1.2).
        let quoted = parse_mailbox("From", "\"al ice\"@sender.test").expect("quoted");
        assert_eq!(quoted.address, "\"al ice\"@sender.test");
        let mut req = request();
        req.subject = "hi\r\nBcc: evil@example.com".into();
        let parsed = parse(&compose(&req).unwrap());
        assert_eq!(parsed.field("Bcc"), None);
        assert_eq!(parsed.field("Subject"), Some("hi  Bcc: evil@example.com"));
    }

    #[test]
    fn long_address_lists_fold_within_78() {
        let mut req = request();
        req.to = (0..30).map(|i| format!("person{i}@example.net")).collect();
        let message = compose(&req).unwrap();
        let parsed = parse(&message);
        assert_eq!(parsed.field("To").unwrap().matches('@').count(), 30);
    }
}
