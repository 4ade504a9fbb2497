//! A message's outline, as a step's details show it: its header fields in order (RFC 5322
//! 2.2), which of them were not in the message when it was first sent (the `Received:` fields
//! each server writes above it, RFC 5321 4.4; `Return-Path:` at delivery), and its MIME
//! structure (RFC 2045, RFC 2046): each part's media type, its transfer encoding, whether it
//! is an attachment and under which file name (RFC 2183), and its size in the message (not
//! counting the dots SMTP and POP3 add on the wire, RFC 5321 4.5.2) and decoded; and the path
//! its `Received:` fields give, read from the bottom up.

use crate::escape::{cut_after_shown, escaped, escaped_for_quotes, visible};
use crate::mail::compose::{
    boundary_parameter, is_token, parse_disposition, parse_media_type, BoundaryProblem, MediaType,
};
use crate::percent::{hex_escapes_decoded, percent_decoded_octets};
use crate::smtp::dot::lines_inclusive;
use crate::smtp::trace::header_fields_end;
use std::collections::HashMap;

/// A field's value is cut after this many characters (a `Received:` field is about 150): the
/// bytes show the rest of one longer.
pub const VALUE_SHOWN: usize = 400;

/// Parts nested deeper than this (a message in a message in a message...) are not listed.
const DEPTH_SHOWN: usize = 8;

/// Parts listed at most: a message may hold any number.
const PARTS_SHOWN: usize = 64;

/// Fields a page lists at most: a scenario file's message may have a header of any size.
pub const FIELDS_SHOWN: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlineField {
    pub name: String,
    /// The value unfolded (RFC 5322 2.2.3) and cut to [`VALUE_SHOWN`] characters.
    pub value: String,
    /// The value with its RFC 2047 encoded words decoded, where it has any.
    pub reads: Option<String>,
    /// Not in the first copy compared with: added on the way.
    pub added: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlinePart {
    /// 0 for the message's own body, 1 for a part of it, and so on.
    pub depth: usize,
    /// Its media type (`multipart/mixed`, `image/png`), as `text` says it.
    pub media_type: String,
    /// For a multipart whose boundary can be read, how many parts it has (some may be left
    /// out of the list).
    pub parts_count: Option<usize>,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outline {
    pub fields: Vec<OutlineField>,
    /// The names of fields the first copy had and this one has not.
    pub removed: Vec<String>,
    /// Whether a first copy was compared with (otherwise no field is marked `added`).
    pub compared: bool,
    pub parts: Vec<OutlinePart>,
    /// Parts left out beyond [`PARTS_SHOWN`] or [`DEPTH_SHOWN`].
    pub parts_left_out: usize,
    /// Whether some part left out may hold parts of its own (nested too deep to list, or a
    /// multipart or message past the most listed): those are not counted.
    pub nested_beyond: bool,
    /// The message's path as its `Received:` fields tell it, the first hop first: the
    /// fields read from the bottom up.
    pub path: Vec<Hop>,
    /// The message's size, as outlined (no dot-stuffing, no end line).
    pub octets: usize,
    /// Whether a part says how it is to be shown, with `Content-Disposition:` (RFC 2183).
    pub disposed: bool,
    /// The body is cut short (a POP3 answer to TOP), so its parts are not listed.
    pub body_cut: bool,
}

/// One hop of a message's path, as the `Received:` field of the server that took it tells
/// it (RFC 5321 4.4): clauses as written, each found by its keyword.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hop {
    /// The `from` clause: the name the client gave with EHLO or HELO and, in a comment,
    /// the address (and name) the server saw it come from.
    pub from: Option<String>,
    /// The server that took the message (the `by` clause's name, without its comment).
    pub by: Option<String>,
    /// The protocol (the `with` clause's keyword: `ESMTPA`, RFC 3848).
    pub with: Option<String>,
    /// The time it took the message, after the `;`.
    pub date: Option<String>,
}

/// The clauses of a `Received:` field's value (unfolded): `from`, `by`, `via`, `with`, `id`
/// and `for`, each up to the next keyword outside a comment, and the date after the last
/// `;` (RFC 5321 4.4's Time-stamp-line). A clause it does not hold is `None`.
pub fn hop_of(received: &str) -> Hop {
    const KEYWORDS: [&str; 6] = ["from", "by", "via", "with", "id", "for"];
    let (clauses, date) = match received.rsplit_once(';') {
        Some((clauses, date)) => (clauses, Some(date.trim()).filter(|d| !d.is_empty())),
        None => (received, None),
    };
    // Each keyword with the words after it, up to the next.
    let mut found: Vec<(&str, String)> = Vec::new();
    for word in words_outside_comments(clauses) {
        if KEYWORDS
            .iter()
            .any(|keyword| keyword.eq_ignore_ascii_case(word))
        {
            found.push((word, String::new()));
        } else if let Some((_, text)) = found.last_mut() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
        }
    }
    let clause = |keyword: &str| {
        found
            .iter()
            .find(|(name, text)| name.eq_ignore_ascii_case(keyword) && !text.is_empty())
            .map(|(_, text)| text.as_str())
    };
    let first_word = |text: &str| text.split(' ').next().unwrap_or_default().to_string();
    Hop {
        from: clause("from").map(str::to_string),
        by: clause("by").map(first_word),
        with: clause("with").map(first_word),
        date: date.map(str::to_string),
    }
}

/// `text` split at white space outside comments: a comment (in parentheses, nested, with
/// `\` quoting a character, RFC 5322 3.2.2) stays whole in its word, spaces and all.
fn words_outside_comments(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let (mut depth, mut quoted_next, mut word_start) = (0usize, false, None);
    for (at, c) in text.char_indices() {
        if quoted_next {
            quoted_next = false;
            continue;
        }
        match c {
            '\\' if depth > 0 => quoted_next = true,
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() && depth == 0 => {
                if let Some(start) = word_start.take() {
                    words.push(&text[start..at]);
                }
                continue;
            }
            _ => {}
        }
        word_start.get_or_insert(at);
    }
    if let Some(start) = word_start {
        words.push(&text[start..]);
    }
    words
}

impl Outline {
    /// How many fields were added on the way.
    pub fn added(&self) -> usize {
        self.fields.iter().filter(|field| field.added).count()
    }

    /// The body in a few words: `multipart/mixed, 4 parts`, `text/plain`.
    pub fn body_summary(&self) -> String {
        let Some(body) = self.parts.first() else {
            return String::new();
        };
        match body.parts_count {
            Some(count) => format!("{}, {}", body.media_type, counted(count, "part")),
            None => body.media_type.clone(),
        }
    }
}

/// The outline of `message` (its bytes as stored: no dot-stuffing, no end-of-data line),
/// with the fields not in `first_copy` (the same message as it was first sent) marked.
pub fn outline(message: &[u8], first_copy: Option<&[u8]>) -> Outline {
    // The first copy's fields, each as many times as it has it: each matches one field here
    // at most.
    let mut first: HashMap<&[u8], usize> = HashMap::new();
    for raw in first_copy.map(header_fields).unwrap_or_default() {
        *first.entry(raw).or_default() += 1;
    }
    let raw_fields = header_fields(message);
    let mut fields = Vec::with_capacity(raw_fields.len());
    for raw in raw_fields {
        let kept = first
            .get_mut(raw)
            .filter(|left| **left > 0)
            .map(|left| *left -= 1);
        let name = field_name(raw);
        let unfolded = unfolded_value(raw);
        let value = cut(escaped(&unfolded));
        // Read from the octets, not from the value as shown: its escapes are no syntax.
        let reads = decoded_words(&String::from_utf8_lossy(&unfolded), words_allowed(&name))
            .map(|text| cut(visible(text)));
        fields.push(OutlineField {
            name,
            value,
            reads,
            added: first_copy.is_some() && kept.is_none(),
        });
    }
    let mut removed: Vec<String> = first
        .iter()
        .filter(|(_, left)| **left > 0)
        .map(|(raw, _)| name_and_value(raw).0)
        .collect();
    removed.sort();
    removed.dedup();
    let path = fields
        .iter()
        .rev()
        .filter(|field| field.name.eq_ignore_ascii_case("Received"))
        .map(|field| hop_of(&field.value))
        .collect();
    let mut outline = Outline {
        fields,
        removed,
        compared: first_copy.is_some(),
        path,
        octets: message.len(),
        ..Outline::default()
    };
    let mut budget = PARTS_SHOWN;
    let place = Place {
        depth: 0,
        in_digest: false,
        whole_message: true,
    };
    list_entity(message, place, &mut outline, &mut budget);
    outline
}

/// An entity (a whole message, or a part of a multipart body) cut into its header fields and
/// its body: the empty line that ends the header section is neither's (RFC 5322 2.1).
pub fn split_entity(entity: &[u8]) -> (&[u8], &[u8]) {
    let (fields_end, _) = header_fields_end(entity);
    let (header, after_fields) = entity.split_at(fields_end);
    let body = after_fields
        .strip_prefix(b"\r\n")
        .or_else(|| after_fields.strip_prefix(b"\n"))
        .unwrap_or(after_fields);
    (header, body)
}

/// The raw fields (each with its continuation lines and CRLF) at the start of `message`.
pub fn header_fields(message: &[u8]) -> Vec<&[u8]> {
    let (end, _) = header_fields_end(message);
    let mut fields: Vec<&[u8]> = Vec::new();
    let (mut start, mut line_start) = (0, 0);
    for line in lines_inclusive(&message[..end]) {
        if line_start > start && !matches!(line.first(), Some(b' ' | b'\t')) {
            fields.push(&message[start..line_start]);
            start = line_start;
        }
        line_start += line.len();
    }
    if end > start {
        fields.push(&message[start..end]);
    }
    fields
}

/// A raw field's name, and its value unfolded, its runs of white space made one space, shown
/// as protocol text is (control characters and octets that are not UTF-8 as escapes).
fn name_and_value(raw: &[u8]) -> (String, String) {
    (field_name(raw), cut(escaped(&unfolded_value(raw))))
}

/// A raw field's name, shown as protocol text is.
fn field_name(raw: &[u8]) -> String {
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    cut(escaped(raw[..colon].trim_ascii()))
}

/// A raw field's value unfolded, its runs of white space made one space (RFC 5322 2.2.3).
fn unfolded_value(raw: &[u8]) -> Vec<u8> {
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    let value_bytes = raw.get(colon + 1..).unwrap_or_default();
    let mut unfolded = Vec::with_capacity(value_bytes.len());
    for word in value_bytes
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
    {
        if !unfolded.is_empty() {
            unfolded.push(b' ');
        }
        unfolded.extend_from_slice(word);
    }
    unfolded
}

/// `text` (as shown, with escapes) cut after [`VALUE_SHOWN`] characters, an escape counted
/// as one and kept whole.
fn cut(text: String) -> String {
    match cut_after_shown(&text, VALUE_SHOWN) {
        Some(at) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Where an entity sits: its depth, whether it is a part of a multipart/digest, whose parts
/// are messages by default, and whether it is a whole message.
#[derive(Clone, Copy)]
struct Place {
    depth: usize,
    in_digest: bool,
    whole_message: bool,
}

/// Lists `entity` (a whole message, or a part of a multipart body: header fields, an empty
/// line, a body) and the parts within it.
fn list_entity(entity: &[u8], place: Place, outline: &mut Outline, budget: &mut usize) {
    if place.depth > DEPTH_SHOWN || *budget == 0 {
        outline.parts_left_out += 1;
        // A part left out may hold parts of its own, which are not counted.
        outline.nested_beyond |= place.depth > DEPTH_SHOWN || may_hold_parts(entity, place);
        return;
    }
    *budget -= 1;
    let (header, body) = split_entity(entity);
    let fields = header_fields(header);
    let field = |name: &str| field_value(&fields, name);
    let content_type = field("Content-Type");
    let media_type = content_type.as_deref().and_then(read_media_type);
    let default_type = match place.in_digest {
        // RFC 2046 5.1.5: in a digest, a part without a Content-Type is a message.
        true => "message/rfc822",
        false => "text/plain",
    };
    let (essence, mut described) = match (&media_type, &content_type) {
        (Some(media_type), _) => {
            let mut described = cut(visible(media_type.essence.clone()));
            if let Some(charset) = parameter(&media_type.parameters, "charset") {
                described.push_str("; charset=");
                described.push_str(&cut(visible(charset)));
            }
            (media_type.essence.clone(), described)
        }
        // RFC 2045 5.2: a Content-Type that cannot be read means plain text.
        (None, Some(unreadable)) => (
            "text/plain".to_string(),
            format!(
                "text/plain (a Content-Type that cannot be read, {}, is plain text, RFC 2045 5.2)",
                cut(escaped(unreadable.as_bytes()))
            ),
        ),
        (None, None) if place.whole_message => (
            "text/plain".to_string(),
            "text/plain (no Content-Type: plain text, RFC 2045 5.2)".to_string(),
        ),
        (None, None) => (
            default_type.to_string(),
            format!("{default_type} (no Content-Type)"),
        ),
    };
    let boundary = media_type
        .as_ref()
        .filter(|media_type| media_type.essence.starts_with("multipart/"))
        .map(boundary_parameter);
    if let Some(Ok(boundary)) = boundary {
        let Multipart {
            parts,
            count,
            preamble,
            epilogue,
            delimited,
            closed,
        } = multipart_parts(body, boundary.as_bytes(), *budget);
        let mut text = format!("{described}: {}", counted(count, "part"));
        // RFC 2046 5.1.1: the parts are between delimiter lines, the last ended by the close
        // delimiter. A reader takes what it can of a body that breaks the rule; so is it shown.
        let boundary_shown = cut(visible(boundary.to_string()));
        let mut told = false;
        if !delimited {
            text.push_str(&format!(", as no line --{boundary_shown} is in the body"));
            told = true;
        } else if !closed {
            text.push_str(&format!(
                ", not closed: no line --{boundary_shown}-- ends the last, which runs to the end"
            ));
            told = true;
        }
        // RFC 2046 5.1.1: text before the first delimiter and after the last is no part; a
        // reader that knows MIME skips it (a writer puts a line there for those that do not).
        let preamble = skipped_text(preamble);
        if let Some(shown) = &preamble {
            text.push_str(&format!(
                "; before the first part, a preamble, which MIME readers skip: \"{shown}\""
            ));
        }
        if let Some(shown) = skipped_text(epilogue) {
            let said = match preamble {
                Some(_) => "after the last, an epilogue, skipped too",
                None => "after the last part, an epilogue, which MIME readers skip",
            };
            text.push_str(&format!("; {said}: \"{shown}\""));
            told = true;
        }
        told |= preamble.is_some();
        if told {
            text.push_str(" (RFC 2046 5.1.1)");
        }
        outline.parts.push(OutlinePart {
            depth: place.depth,
            media_type: essence.clone(),
            parts_count: Some(count),
            text,
        });
        outline.parts_left_out += count - parts.len();
        for part in parts {
            let inner = Place {
                depth: place.depth + 1,
                in_digest: essence == "multipart/digest",
                whole_message: false,
            };
            list_entity(part, inner, outline, budget);
        }
        return;
    }
    // RFC 2046 5.1.1: a multipart without a boundary it can use cannot be cut into parts.
    match boundary {
        Some(Err(BoundaryProblem::Missing)) => {
            described.push_str(" (no boundary parameter, so no parts; RFC 2046 5.1.1)");
        }
        Some(Err(BoundaryProblem::Invalid { boundary })) => described.push_str(&format!(
            " (its boundary \"{}\" is not 1 to 70 of the characters RFC 2046 5.1.1 allows, \
             ending in no space, so no parts)",
            cut(escaped_for_quotes(boundary.as_bytes()))
        )),
        _ => {}
    }
    let disposition = field("Content-Disposition");
    let disposition = disposition.as_deref().and_then(read_disposition);
    let file_name = disposition
        .as_ref()
        .and_then(|(_, parameters)| parameter(parameters, "filename"))
        .or_else(|| {
            let media_type = media_type.as_ref()?;
            parameter(&media_type.parameters, "name")
        });
    // RFC 2183 2: `attachment` or `inline`, with the file's name; a name given only in the
    // Content-Type (RFC 2046 4.5.1's older `name`) says no disposition.
    outline.disposed |= disposition.is_some();
    let kind = disposition
        .as_ref()
        .map(|(kind, _)| cut(visible(kind.clone())));
    match (kind, file_name) {
        (Some(kind), Some(name)) => {
            described.push_str(&format!(", {kind} \"{}\"", cut(visible(name))));
        }
        (Some(kind), None) => described.push_str(&format!(", {kind}")),
        (None, Some(name)) => {
            described.push_str(&format!(", named \"{}\"", cut(visible(name))));
        }
        (None, None) => {}
    }
    if matches!(essence.as_str(), "message/rfc822" | "message/global") {
        outline.parts.push(OutlinePart {
            depth: place.depth,
            media_type: essence,
            parts_count: None,
            text: format!("{described}: a whole message, {} octets", body.len()),
        });
        let inner = Place {
            depth: place.depth + 1,
            in_digest: false,
            whole_message: true,
        };
        list_entity(body, inner, outline, budget);
        return;
    }
    // RFC 2045 6.1: the mechanism is a token; a comment may follow it.
    let encoding = field("Content-Transfer-Encoding")
        .and_then(|e| {
            crate::mail::dsn::strip_comments(&e)
                .split_whitespace()
                .next()
                .map(str::to_ascii_lowercase)
        })
        .map(|token| cut(visible(token)))
        .unwrap_or_else(|| "7bit".into());
    described.push_str(&format!(", {encoding}, {} octets", body.len()));
    let decoded = match encoding.as_str() {
        "base64" => Some(base64_decoded_len(body)),
        "quoted-printable" => Some(quoted_printable_decoded_len(body)),
        _ => None,
    };
    if let Some(decoded) = decoded {
        described.push_str(&format!(", {decoded} decoded"));
    }
    outline.parts.push(OutlinePart {
        depth: place.depth,
        media_type: essence,
        parts_count: None,
        text: described,
    });
}

/// `count` and `noun`, made plural unless the count is 1: "1 part", "3 parts".
pub fn counted(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", crate::plural(count as u64))
}

/// A media type, read as [`parse_media_type`] reads it for composing or, where that refuses
/// it, leniently, as a reader should take what others wrote: a UTF-8 file name in quotes
/// (RFC 6532 3.2), an empty parameter (`;;`), a very long one.
fn read_media_type(text: &str) -> Option<MediaType> {
    parse_media_type(text).or_else(|| {
        let (essence, parameters) = lenient_parameters(text)?;
        let (kind, subtype) = essence.split_once('/')?;
        (is_token(kind) && is_token(subtype)).then(|| MediaType {
            essence: essence.to_ascii_lowercase(),
            parameters,
        })
    })
}

/// A Content-Disposition, read as [`read_media_type`] reads a media type.
fn read_disposition(text: &str) -> Option<(String, Vec<(String, String)>)> {
    parse_disposition(text).or_else(|| {
        let (kind, parameters) = lenient_parameters(text)?;
        is_token(&kind).then(|| (kind.to_ascii_lowercase(), parameters))
    })
}

/// `value *(";" attribute "=" value)`, cut at the semicolons outside quotes: the first
/// value trimmed, and each parameter's attribute lowercased, its value without its quotes and
/// quoted-pairs. What is not `attribute=value` is passed over.
fn lenient_parameters(text: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut pieces = Vec::new();
    let (mut piece, mut quoted, mut escaped_next) = (String::new(), false, false);
    for c in text.chars() {
        match c {
            _ if escaped_next => {
                piece.push(c);
                escaped_next = false;
            }
            '\\' if quoted => escaped_next = true,
            '"' => quoted = !quoted,
            ';' if !quoted => pieces.push(std::mem::take(&mut piece)),
            c => piece.push(c),
        }
    }
    pieces.push(piece);
    let mut pieces = pieces.into_iter();
    let first = pieces.next()?.trim().to_string();
    let parameters = pieces
        .filter_map(|piece| {
            let (attribute, value) = piece.split_once('=')?;
            let attribute = attribute.trim().to_ascii_lowercase();
            is_token(&attribute).then(|| (attribute, value.trim().to_string()))
        })
        .collect();
    Some((first, parameters))
}

/// A raw field's name and its value unfolded (RFC 5322 2.2.3: the line breaks taken out, the
/// white space after them kept), as text (an octet that is not UTF-8 replaced).
/// The value of the first of `fields` named `name` (any case), as [`raw_name_and_value`]
/// reads it.
fn field_value(fields: &[&[u8]], name: &str) -> Option<String> {
    fields.iter().find_map(|raw| {
        let (field_name, value) = raw_name_and_value(raw);
        field_name
            .eq_ignore_ascii_case(name.as_bytes())
            .then_some(value)
    })
}

fn raw_name_and_value(raw: &[u8]) -> (&[u8], String) {
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    let value = raw.get(colon + 1..).unwrap_or_default();
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    (
        raw[..colon].trim_ascii(),
        String::from_utf8_lossy(unfolded.trim_ascii()).into_owned(),
    )
}

/// The parts of a multipart body (RFC 2046 5.1.1): what lies between its delimiter lines,
/// `--` and the boundary (white space may follow), up to the close delimiter, which has `--`
/// after the boundary too. The preamble before the first delimiter and the epilogue after the
/// last are no parts; the CRLF before a delimiter line is the delimiter's, not the part's.
/// At most `kept` parts are returned, with how many there are in all.
fn multipart_parts<'m>(body: &'m [u8], boundary: &[u8], kept: usize) -> Multipart<'m> {
    let mut parts = Vec::new();
    let mut count = 0;
    let mut part_start: Option<usize> = None;
    let mut offset = 0;
    // No delimiter at all: no parts, and nothing to call a preamble.
    let mut preamble: &[u8] = &[];
    let mut epilogue: &[u8] = &[];
    let mut delimited = false;
    let mut closed = false;
    let mut take = |start: usize, end: usize, parts: &mut Vec<&'m [u8]>| {
        count += 1;
        if parts.len() < kept {
            parts.push(&body[start..end]);
        }
    };
    for line in lines_inclusive(body) {
        let line_start = offset;
        offset += line.len();
        let content = line.trim_ascii_end();
        let Some(after) = content
            .strip_prefix(b"--")
            .and_then(|rest| rest.strip_prefix(boundary))
        else {
            continue;
        };
        let closes = after == b"--";
        if !(after.is_empty() || closes) {
            continue;
        }
        // The first delimiter line: a close one ends the loop, so none was seen before.
        if !delimited {
            preamble = without_line_ending(&body[..line_start]);
        }
        delimited |= !closes;
        if let Some(start) = part_start {
            let mut end = line_start.max(start);
            for ending in [b"\r\n".as_slice(), b"\n"] {
                if body[start..end].ends_with(ending) {
                    end -= ending.len();
                    break;
                }
            }
            take(start, end, &mut parts);
        }
        if closes {
            part_start = None;
            epilogue = &body[offset..];
            closed = true;
            break;
        }
        part_start = Some(offset);
    }
    // No close delimiter: the last part runs to the end.
    if let Some(start) = part_start {
        take(start, body.len(), &mut parts);
    }
    Multipart {
        parts,
        count,
        preamble,
        epilogue,
        delimited,
        closed,
    }
}

/// A multipart body cut into its parts (RFC 2046 5.1.1).
struct Multipart<'m> {
    /// The parts kept, in order.
    parts: Vec<&'m [u8]>,
    /// How many parts there are in all.
    count: usize,
    /// What comes before the first delimiter line, without the line ending that belongs to
    /// the delimiter: text for readers that do not know MIME.
    preamble: &'m [u8],
    /// What comes after the close delimiter line.
    epilogue: &'m [u8],
    /// Whether the body has a delimiter line (not only a close delimiter) at all.
    delimited: bool,
    /// Whether a close delimiter line ends the last part.
    closed: bool,
}

/// `text` without one CRLF or LF at its end.
fn without_line_ending(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .unwrap_or(text)
}

/// A preamble's or an epilogue's text as shown between quotes: its lines joined by a space,
/// empty ones left out, cut as a field's value is; `None` for one of nothing but white space.
fn skipped_text(text: &[u8]) -> Option<String> {
    // A character shown takes at most 4 octets: past this many, the cut is the same.
    let enough = 4 * VALUE_SHOWN + 4;
    let mut joined = Vec::new();
    for line in lines_inclusive(text)
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
    {
        if joined.len() > enough {
            break;
        }
        if !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(&line[..line.len().min(enough)]);
    }
    (!joined.is_empty()).then(|| cut(escaped_for_quotes(&joined)))
}

/// A parameter's value (RFC 2045 5.1), or, in RFC 2231's forms, its sections put together
/// (`name*0`, `name*1`, ...) and its extended value decoded (`name*=utf-8''%C3%A9`).
fn parameter(parameters: &[(String, String)], name: &str) -> Option<String> {
    if let Some((_, value)) = parameters.iter().find(|(attribute, _)| attribute == name) {
        return Some(value.clone());
    }
    // RFC 2231 3 and 4: `name*` alone, or numbered sections, each `*` at its end if it is
    // extended (percent-encoded); the first extended section starts `charset'language'`.
    let mut sections: Vec<(usize, bool, &str)> = Vec::new();
    for (attribute, value) in parameters {
        let Some(rest) = attribute
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('*'))
        else {
            continue;
        };
        let (number, extended) = match rest.strip_suffix('*') {
            Some(number) => (number, true),
            None if rest.is_empty() => ("0", true),
            None => (rest, false),
        };
        let Ok(number) = number.parse::<usize>() else {
            continue;
        };
        sections.push((number, extended, value));
    }
    if sections.is_empty() {
        return None;
    }
    sections.sort_by_key(|(number, _, _)| *number);
    let mut octets = Vec::new();
    let mut charset = "";
    for (index, (_, extended, value)) in sections.iter().enumerate() {
        if !extended {
            octets.extend_from_slice(value.as_bytes());
            continue;
        }
        let value = match index {
            // charset'language'value.
            0 => {
                let mut pieces = value.splitn(3, '\'');
                match (pieces.next(), pieces.next(), pieces.next()) {
                    (Some(named), Some(_), Some(value)) => {
                        charset = named;
                        value
                    }
                    _ => value,
                }
            }
            _ => value,
        };
        // RFC 2231 7's `%XX` is URL's (RFC 3986 2.1).
        octets.extend(percent_decoded_octets(value).0);
    }
    // An empty charset, as in `''name`, says nothing: taken as UTF-8, which ASCII is too.
    let charset = if charset.is_empty() { "utf-8" } else { charset };
    // A charset this reader does not know: the value as written, its octets still encoded.
    Some(in_charset(charset, &octets).unwrap_or_else(|| {
        let written: Vec<&str> = sections.iter().map(|(_, _, value)| *value).collect();
        written.concat()
    }))
}

/// Whether `entity` is a multipart or a message, by its Content-Type (a part of a digest
/// without one is a message: RFC 2046 5.1.5).
fn may_hold_parts(entity: &[u8], place: Place) -> bool {
    let (header, _) = split_entity(entity);
    match field_value(&header_fields(header), "Content-Type") {
        None => place.in_digest,
        Some(value) => {
            let value = value.trim_start().to_ascii_lowercase();
            value.starts_with("multipart/") || value.starts_with("message/")
        }
    }
}

/// `octets` read in `charset` (any case): UTF-8 and US-ASCII, and ISO-8859-1, whose octets
/// are the first 256 characters; `None` for another.
fn in_charset(charset: &str, octets: &[u8]) -> Option<String> {
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "us-ascii" => Some(String::from_utf8_lossy(octets).into_owned()),
        "iso-8859-1" | "latin1" => Some(octets.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

/// Where a field's value may hold encoded words (RFC 2047 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WordsAllowed {
    /// Unstructured text (Subject, Comments, a field this reader does not know): any word
    /// that stands apart, between white space (5(1)).
    Text,
    /// A field of addresses or phrases (From, To, Keywords, ...): a word of a phrase, such as
    /// a display name, or of a comment (5(2), 5(3)); never in a quoted string or between
    /// angle brackets (an address).
    Phrases,
    /// Any other structured field (Message-ID, Content-Type, ...): only in a comment; never
    /// in an identifier or a parameter's value.
    Comments,
    /// Received: nowhere (RFC 2047 5: "MUST NOT be used in a Received header field").
    Nowhere,
}

/// Where the value of the field `name` may hold encoded words.
fn words_allowed(name: &str) -> WordsAllowed {
    const PHRASES: &[&str] = &[
        "From",
        "Sender",
        "Reply-To",
        "To",
        "Cc",
        "Bcc",
        "Resent-From",
        "Resent-Sender",
        "Resent-To",
        "Resent-Cc",
        "Resent-Bcc",
        "Keywords",
        "Disposition-Notification-To",
        "List-Id",
        "Mail-Followup-To",
        "Mail-Reply-To",
        "Return-Receipt-To",
        "Errors-To",
        "Apparently-To",
    ];
    const STRUCTURED: &[&str] = &[
        "Return-Path",
        "Delivered-To",
        "Date",
        "Resent-Date",
        "Message-ID",
        "Resent-Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Content-ID",
        "Content-Language",
        "Auto-Submitted",
        "DKIM-Signature",
        "Authentication-Results",
        "Received-SPF",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Help",
        "List-Subscribe",
        "List-Post",
        "List-Owner",
        "List-Archive",
    ];
    let is = |names: &[&str]| names.iter().any(|known| known.eq_ignore_ascii_case(name));
    if name.eq_ignore_ascii_case("Received") {
        WordsAllowed::Nowhere
    } else if is(PHRASES) {
        WordsAllowed::Phrases
    } else if is(STRUCTURED) {
        WordsAllowed::Comments
    } else {
        // Subject, Comments, Content-Description, and fields this reader does not know.
        WordsAllowed::Text
    }
}

/// `text`, the value of a field whose encoded words may stand where `allowed` says, with
/// those RFC 2047 encoded words (`=?UTF-8?B?wqFIb2xhIQ==?=`) decoded, the white space between
/// two of them dropped (RFC 2047 6.2); `None` when it has none that can be decoded. A word
/// must stand apart, between white space, the value's ends or a comment's parentheses (RFC
/// 2047 5): `foo=?UTF-8?Q?bar?=` is no encoded word. A display name decoded into text with
/// characters an address gives meaning to (`Doe, John`) is shown in quotes, as it would have
/// to be written. Charsets: UTF-8 and US-ASCII, and ISO-8859-1, whose octets are the first
/// 256 characters; a word in another is left as it is.
fn decoded_words(text: &str, allowed: WordsAllowed) -> Option<String> {
    if allowed == WordsAllowed::Nowhere {
        return None;
    }
    let structured = allowed != WordsAllowed::Text;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut decoded_any = false;
    // Where in a structured value: within quotes, angle brackets, comments (nested).
    let (mut quoted, mut in_angle, mut comment_depth) = (false, false, 0usize);
    // The character before `rest`, for whether a word starts apart.
    let mut before: Option<char> = None;
    // White space after a decoded word waits: dropped if another decoded word follows.
    let (mut after_word, mut pending_space) = (false, String::new());
    // The decoded words of a phrase in a row, outside comments: quoted as a whole if needed.
    let mut phrase = String::new();
    let flush_phrase = |out: &mut String, phrase: &mut String| {
        if phrase.is_empty() {
            return;
        }
        const SPECIALS: &[char] = &['(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '"'];
        if phrase.contains(SPECIALS) {
            out.push('"');
            for c in phrase.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(phrase);
        }
        phrase.clear();
    };
    while let Some(c) = rest.chars().next() {
        let starts_apart =
            before.is_none_or(|b| b.is_whitespace() || (b == '(' && comment_depth > 0));
        let place_allows = match allowed {
            WordsAllowed::Text => true,
            WordsAllowed::Phrases => !quoted && !in_angle,
            WordsAllowed::Comments => !quoted && !in_angle && comment_depth > 0,
            WordsAllowed::Nowhere => false,
        };
        if starts_apart && place_allows {
            if let Some((decoded, used)) = encoded_word(rest) {
                let next = rest[used..].chars().next();
                let ends_apart =
                    next.is_none_or(|n| n.is_whitespace() || (n == ')' && comment_depth > 0));
                if ends_apart {
                    let in_phrase = allowed == WordsAllowed::Phrases && comment_depth == 0;
                    if !after_word {
                        out.push_str(&pending_space);
                    }
                    pending_space.clear();
                    if in_phrase {
                        phrase.push_str(&decoded);
                    } else if comment_depth > 0 {
                        // As it would have to be written in a comment (RFC 5322 3.2.2): a
                        // decoded parenthesis cannot close the comment and fake what follows.
                        for c in decoded.chars() {
                            if matches!(c, '(' | ')' | '\\') {
                                out.push('\\');
                            }
                            out.push(c);
                        }
                    } else {
                        out.push_str(&decoded);
                    }
                    (after_word, decoded_any) = (true, true);
                    before = rest[..used].chars().last();
                    rest = &rest[used..];
                    continue;
                }
            }
        }
        rest = &rest[c.len_utf8()..];
        before = Some(c);
        if c.is_whitespace() && after_word {
            pending_space.push(c);
            continue;
        }
        flush_phrase(&mut out, &mut phrase);
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        after_word = false;
        if structured {
            match c {
                '\\' if quoted || comment_depth > 0 => {
                    // A quoted pair: the next character is itself, not a delimiter.
                    if let Some(next) = rest.chars().next() {
                        out.push(next);
                        rest = &rest[next.len_utf8()..];
                        before = Some(next);
                    }
                }
                '"' if comment_depth == 0 => quoted = !quoted,
                '(' if !quoted => comment_depth += 1,
                ')' if !quoted && comment_depth > 0 => comment_depth -= 1,
                '<' if !quoted && comment_depth == 0 => in_angle = true,
                '>' if !quoted && comment_depth == 0 => in_angle = false,
                _ => {}
            }
        }
    }
    flush_phrase(&mut out, &mut phrase);
    out.push_str(&pending_space);
    decoded_any.then_some(out)
}

/// The encoded word at the start of `text` (RFC 2047 2: `=?charset?encoding?text?=`),
/// decoded, and how many octets of `text` it takes.
fn encoded_word(text: &str) -> Option<(String, usize)> {
    let word = text.strip_prefix("=?")?;
    let (charset, word) = word.split_once('?')?;
    let (encoding, word) = word.split_once('?')?;
    let (encoded, after) = word.split_once("?=")?;
    if encoded.contains(char::is_whitespace) {
        return None;
    }
    let octets = match encoding {
        "B" | "b" => crate::mail::base64::decode(encoded)?,
        // RFC 2047 4.2: `_` is a space, `=XX` an octet.
        "Q" | "q" => {
            let spaced = encoded.replace('_', " ");
            hex_escapes_decoded(spaced.as_bytes(), b'=').0
        }
        _ => return None,
    };
    // RFC 2231 5: a language may follow the charset after '*'.
    let charset = charset.split('*').next().unwrap_or_default();
    let decoded = in_charset(charset, &octets)?;
    Some((decoded, text.len() - after.len()))
}

/// How many octets base64 text stands for (RFC 2045 6.8): 3 for every 4 characters of its
/// alphabet; line breaks, padding and anything else count for nothing.
fn base64_decoded_len(text: &[u8]) -> usize {
    let characters = text
        .iter()
        .filter(|&&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        .count();
    characters * 3 / 4
}

/// How many octets quoted-printable text stands for (RFC 2045 6.7), line by line: white space
/// at a line's end is taken out (rule 3); a line that then ends in `=` is a soft line break,
/// and joins the next with nothing (rule 5); else its line break stays as it is (rule 4). In
/// a line, `=XX` is one octet, and so is any other.
fn quoted_printable_decoded_len(text: &[u8]) -> usize {
    let mut count = 0;
    for line in lines_inclusive(text) {
        let line_break = if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n"))
        };
        let content = line[..line.len() - line_break].trim_ascii_end();
        let (content, soft) = match content.strip_suffix(b"=") {
            Some(content) => (content, true),
            None => (content, false),
        };
        let mut index = 0;
        while index < content.len() {
            let encoded = content[index] == b'='
                && content
                    .get(index + 1..index + 3)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
            count += 1;
            index += if encoded { 3 } else { 1 };
        }
        if !soft {
            count += line_break;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each part's depth, and what `what` reads of it.
    fn depths_and(outline: &Outline, what: fn(&OutlinePart) -> &String) -> Vec<(usize, &str)> {
        outline
            .parts
            .iter()
            .map(|part| (part.depth, what(part).as_str()))
            .collect()
    }

    const PLAIN: &[u8] = b"From: alice@sender.test\r\nTo: bob@receiver.test\r\nSubject: Hello\r\n \
          again\r\nMessage-ID: <1@sender.test>\r\n\r\nHi Bob.\r\n";

    fn hop(from: Option<&str>, by: &str, with: Option<&str>, date: Option<&str>) -> Hop {
        Hop {
            from: from.map(str::to_string),
            by: Some(by.to_string()),
            with: with.map(str::to_string),
            date: date.map(str::to_string),
        }
    }

    #[test]
    fn a_received_field_is_read_clause_by_clause() {
        let date = Some("Tue, 1 Sep 2026 08:00:00 +0000");
        // As this simulation's servers write it.
        assert_eq!(
            hop_of(
                "from client.sender.test ([198.51.100.1]) by mail.sender.test with ESMTPA id \
                 A00001 for <bob@receiver.test>; Tue, 1 Sep 2026 08:00:00 +0000"
            ),
            hop(
                Some("client.sender.test ([198.51.100.1])"),
                "mail.sender.test",
                Some("ESMTPA"),
                date
            )
        );
        // As Postfix writes it: a comment after `by`, keywords in any case.
        assert_eq!(
            hop_of(
                "FROM mail.example.com (mail.example.com [192.0.2.1]) BY mx.example.net \
                 (Postfix) WITH ESMTPS id 4AbC; Tue, 1 Sep 2026 08:00:00 +0000"
            ),
            hop(
                Some("mail.example.com (mail.example.com [192.0.2.1])"),
                "mx.example.net",
                Some("ESMTPS"),
                date
            )
        );
        // A notice's own: no `from`, no `with`.
        assert_eq!(
            hop_of("by mail.sender.test id b1; Tue, 1 Sep 2026 08:00:00 +0000"),
            hop(None, "mail.sender.test", None, date)
        );
        // Keywords inside a comment, a quoted parenthesis, and no date.
        assert_eq!(
            hop_of("from a.test (from b by c with \\) d) by e.test with SMTP"),
            hop(
                Some("a.test (from b by c with \\) d)"),
                "e.test",
                Some("SMTP"),
                None
            )
        );
        assert_eq!(hop_of(""), Hop::default());
        assert_eq!(hop_of("by ; "), Hop::default());
    }

    #[test]
    fn the_path_is_read_from_the_bottom_up() {
        let message = b"Received: from mail.sender.test by mx.receiver.test with ESMTP; \
            Tue, 1 Sep 2026 08:00:01 +0000\r\nReceived: from client.sender.test\r\n \
            ([198.51.100.1]) by mail.sender.test with ESMTPA; Tue, 1 Sep 2026 08:00:00 \
            +0000\r\nSubject: Hi\r\n\r\nHello\r\n";
        let path = outline(message, None).path;
        let hops: Vec<(Option<&str>, Option<&str>)> = path
            .iter()
            .map(|hop| (hop.from.as_deref(), hop.by.as_deref()))
            .collect();
        assert_eq!(
            hops,
            [
                (
                    Some("client.sender.test ([198.51.100.1])"),
                    Some("mail.sender.test")
                ),
                (Some("mail.sender.test"), Some("mx.receiver.test")),
            ]
        );
        assert!(outline(PLAIN, None).path.is_empty());
        assert!(!outline(PLAIN, None).disposed);
    }

    #[test]
    fn fields_are_listed_in_order_unfolded_and_a_plain_body_is_text() {
        let outline = outline(PLAIN, None);
        let names: Vec<&str> = outline.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["From", "To", "Subject", "Message-ID"]);
        assert_eq!(outline.fields[2].value, "Hello again");
        assert!(!outline.compared && outline.added() == 0);
        assert_eq!(outline.parts.len(), 1);
        assert!(outline.parts[0]
            .text
            .starts_with("text/plain (no Content-Type"));
        assert!(outline.parts[0].text.contains("7bit, 9 octets"));
        assert_eq!(outline.body_summary(), "text/plain");
    }

    #[test]
    fn fields_not_in_the_first_copy_are_marked_added_and_those_taken_out_named() {
        let first = [b"Bcc: carol@sender.test\r\n".as_slice(), PLAIN].concat();
        let later = [
            b"Received: from a by b; Mon, 7 Dec 2026 10:00:00 +0000\r\n".as_slice(),
            PLAIN,
        ]
        .concat();
        let outline = outline(&later, Some(&first));
        let added: Vec<&str> = outline
            .fields
            .iter()
            .filter(|f| f.added)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(added, ["Received"]);
        assert_eq!(outline.removed, ["Bcc"]);
        assert!(outline.compared);
    }

    #[test]
    fn a_field_repeated_is_matched_once() {
        let one = b"Received: x\r\n\r\nbody\r\n";
        let two = b"Received: x\r\nReceived: x\r\n\r\nbody\r\n";
        assert_eq!(outline(two, Some(one)).added(), 1);
    }

    #[test]
    fn mime_parts_show_type_encoding_attachment_and_sizes() {
        let message = b"From: a@b.test\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
            --XX\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\nJ=C3=BCrgen\r\n\
            --XX\r\nContent-Type: image/png\r\n\
            Content-Disposition: attachment; filename=\"cat.png\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--XX--\r\n";
        let outline = outline(message, None);
        assert!(outline.disposed);
        assert_eq!(outline.octets, message.len());
        let parts = depths_and(&outline, |p| &p.text);
        assert_eq!(parts[0], (0, "multipart/mixed: 2 parts"));
        assert_eq!(outline.body_summary(), "multipart/mixed, 2 parts");
        assert_eq!(parts[1].0, 1);
        assert!(
            parts[1]
                .1
                .starts_with("text/plain; charset=utf-8, quoted-printable, "),
            "{}",
            parts[1].1
        );
        assert!(parts[1].1.ends_with(", 7 decoded"), "{}", parts[1].1);
        // The CRLF before a boundary line belongs to the boundary (RFC 2046 5.1.1).
        assert_eq!(
            parts[2],
            (
                1,
                "image/png, attachment \"cat.png\", base64, 12 octets, 8 decoded"
            )
        );
    }

    #[test]
    fn a_preamble_and_an_epilogue_are_shown_as_what_mime_readers_skip() {
        let multipart = |body: &str| {
            let message = format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n{body}");
            outline(message.as_bytes(), None).parts[0].text.clone()
        };
        // What the composer writes: a line for readers without MIME, none after the end.
        assert_eq!(
            multipart("This is a multi-part message in MIME format.\r\n--b\r\n\r\nhi\r\n--b--\r\n"),
            "multipart/mixed: 1 part; before the first part, a preamble, which MIME readers \
             skip: \"This is a multi-part message in MIME format.\" (RFC 2046 5.1.1)"
        );
        // Lines joined, empty ones left out; an epilogue after the close delimiter.
        assert_eq!(
            multipart("one\r\n\r\ntwo\r\n\r\n--b\r\n\r\nhi\r\n--b--\r\nbye\r\n"),
            "multipart/mixed: 1 part; before the first part, a preamble, which MIME readers \
             skip: \"one two\"; after the last, an epilogue, skipped too: \"bye\" (RFC 2046 5.1.1)"
        );
        assert_eq!(
            multipart("--b\r\n\r\nhi\r\n--b--\r\n\r\nbye"),
            "multipart/mixed: 1 part; after the last part, an epilogue, which MIME readers \
             skip: \"bye\" (RFC 2046 5.1.1)"
        );
        // White space only, or no delimiter at all: nothing is said.
        assert_eq!(
            multipart(" \r\n\r\n--b\r\n\r\nhi\r\n--b--\r\n\t\r\n"),
            "multipart/mixed: 1 part"
        );
        // Only a close delimiter: no part, and no delimiter line to find one by.
        assert_eq!(
            multipart("--b--\r\n"),
            "multipart/mixed: 0 parts, as no line --b is in the body (RFC 2046 5.1.1)"
        );
        assert_eq!(
            multipart("no parts here\r\n"),
            "multipart/mixed: 0 parts, as no line --b is in the body (RFC 2046 5.1.1)"
        );
        // Unclosed: the last part runs to the end, and there is no epilogue.
        assert_eq!(
            multipart("pre\r\n--b\r\n\r\nhi\r\n"),
            "multipart/mixed: 1 part, not closed: no line --b-- ends the last, which runs to \
             the end; before the first part, a preamble, which MIME readers skip: \"pre\" \
             (RFC 2046 5.1.1)"
        );
        // Bytes that are not text are escaped, as in a field's value.
        // A quote in the text cannot seem to end it (and so fake an epilogue).
        assert!(multipart("a \"q\"; after\r\n--b\r\n\r\nhi\r\n--b--\r\n")
            .contains(r#"skip: "a \"q\"; after" (RFC"#));
        let escaped = multipart("a\x1bb\r\n--b\r\n\r\nhi\r\n--b--\r\n");
        assert!(
            !escaped.contains('\x1b') && escaped.contains("\"a\\"),
            "{escaped}"
        );
    }

    #[test]
    fn an_attached_message_a_commented_encoding_and_latin_1_names_are_read() {
        let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: message/rfc822\r\n\
            Content-Disposition: attachment; filename=\"orig.eml\"\r\n\r\n\
            Subject: inner\r\n\r\nhi\r\n--b\r\n\
            Content-Type: text/plain\r\n\
            Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.txt\r\n\
            Content-Transfer-Encoding: (the file as it is) base64\r\n\r\naGk=\r\n--b\r\n\
            Content-Type: text/plain; name*=windows-1252''%80.txt\r\n\r\nx\r\n--b--\r\n";
        let outline = outline(message, None);
        let parts = depths_and(&outline, |p| &p.text);
        // An attached message keeps its disposition and name (RFC 2183 2).
        assert_eq!(
            parts[1],
            (
                1,
                "message/rfc822, attachment \"orig.eml\": a whole message, 20 octets"
            )
        );
        // RFC 2231 4: the charset names the octets; a comment may follow the encoding's
        // token (RFC 2045 6.1).
        assert_eq!(
            parts[3],
            (
                1,
                "text/plain, attachment \"r\u{e9}sum\u{e9}.txt\", base64, 4 octets, 2 decoded"
            )
        );
        // A charset not known here: the name as written, not garbled.
        assert!(
            parts[4].1.contains("named \"windows-1252''%80.txt\""),
            "{}",
            parts[4].1
        );
    }

    #[test]
    fn parts_nested_too_deep_are_said_to_be_left_out_uncounted() {
        let mut message = Vec::new();
        for depth in 0..12 {
            message.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n")
                    .as_bytes(),
            );
        }
        message.extend_from_slice(b"\r\nleaf\r\n");
        let deep = outline(&message, None);
        assert_eq!(deep.parts.len(), DEPTH_SHOWN + 1);
        assert!(deep.nested_beyond && deep.parts_left_out > 0);
        // A wide message leaves parts out for their number, not their depth.
        let wide: String = (0..PARTS_SHOWN + 5).map(|_| "--b\r\n\r\nx\r\n").collect();
        let wide = outline(
            format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n{wide}--b--\r\n").as_bytes(),
            None,
        );
        assert!(!wide.nested_beyond && wide.parts_left_out == 6);
        // Left out for their number, parts that hold parts leave theirs uncounted.
        let nested: String = (0..PARTS_SHOWN + 1)
            .map(|_| {
                "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n"
            })
            .collect();
        let nested = outline(
            format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n{nested}--b--\r\n")
                .as_bytes(),
            None,
        );
        assert!(nested.nested_beyond && nested.parts_left_out > 0);
    }

    #[test]
    fn long_values_are_cut_and_control_characters_escaped() {
        let message = [
            b"Subject: ".as_slice(),
            &[b'x'; 1000],
            b"\r\nX-Odd: a\x1bb\r\n\r\n",
        ]
        .concat();
        let outline = outline(&message, None);
        assert_eq!(outline.fields[0].value.chars().count(), VALUE_SHOWN + 1);
        assert!(outline.fields[0].value.ends_with('…'));
        assert!(!outline.fields[1].value.contains('\x1b'));
    }

    #[test]
    fn file_names_in_rfc_2231_sections_and_extended_values_are_put_together() {
        let parts = |disposition: &str| {
            let message = format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                 Content-Type: text/plain; name=old.txt\r\n{disposition}\r\n\r\nhi\r\n--b--\r\n"
            );
            outline(message.as_bytes(), None).parts[1].text.clone()
        };
        assert!(
            parts("Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt")
                .contains(", attachment \"\u{e9}t\u{e9}.txt\"")
        );
        assert!(parts(
            "Content-Disposition: attachment;\r\n filename*0*=utf-8''%C3%A9;\r\n filename*1=t.txt"
        )
        .contains(", attachment \"\u{e9}t.txt\""));
        assert!(parts("Content-Disposition: inline").contains(", inline \"old.txt\""));
        // Only the older `name` of the Content-Type: named, no disposition.
        assert!(parts("X-Other: 1").contains(", named \"old.txt\""));
    }

    #[test]
    fn nested_messages_unclosed_multiparts_and_unreadable_types_are_outlined() {
        let message = b"Content-Type: multipart/report; report-type=delivery-status;\r\n\
            \tboundary=\"R R\"\r\n\r\npreamble\r\n--R R  \r\n\r\nplain part\r\n\
            --R R\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\
            Content-Type: text/html; charset=\"us-ascii\"\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>a=3Db=\r\nc</p>\r\n\
            --R R\r\nContent-Type: image/\r\n\r\nx";
        let outline = outline(message, None);
        assert_eq!(
            depths_and(&outline, |p| &p.text),
            [
                (
                    0,
                    "multipart/report: 3 parts, not closed: no line --R R-- ends the last, \
                     which runs to the end; before the first part, a preamble, which MIME \
                     readers skip: \"preamble\" (RFC 2046 5.1.1)"
                ),
                (1, "text/plain (no Content-Type), 7bit, 10 octets"),
                (1, "message/rfc822: a whole message, 124 octets"),
                (
                    2,
                    "text/html; charset=us-ascii, quoted-printable, 16 octets, 11 decoded"
                ),
                (
                    1,
                    "text/plain (a Content-Type that cannot be read, image/, is plain text, \
                     RFC 2045 5.2), 7bit, 1 octets"
                ),
            ]
        );
    }

    #[test]
    fn what_readers_take_is_read_leniently() {
        // A UTF-8 file name in quotes (RFC 6532), and an empty parameter.
        let message = "Content-Type: multipart/mixed; boundary=b;;\r\n\r\n--b\r\n\
            Content-Type: image/png; name=\"\u{e9}t\u{e9}.png\"\r\n\
            Content-Disposition: attachment; filename=\"\u{e9}t\u{e9}.png\"\r\n\r\nx\r\n--b--\r\n";
        let outline = outline(message.as_bytes(), None);
        assert_eq!(outline.body_summary(), "multipart/mixed, 1 part");
        assert_eq!(
            outline.parts[1].text,
            "image/png, attachment \"\u{e9}t\u{e9}.png\", 7bit, 1 octets"
        );
    }

    #[test]
    fn the_parts_of_a_digest_are_messages_by_default() {
        let message = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n\
            Subject: one\r\n\r\nfirst\r\n--d\r\nContent-Type: text/plain\r\n\r\nnote\r\n--d--\r\n";
        let outline = outline(message, None);
        assert_eq!(
            depths_and(&outline, |p| &p.media_type),
            [
                (0, "multipart/digest"),
                (1, "message/rfc822"),
                (2, "text/plain"),
                (1, "text/plain")
            ]
        );
    }

    #[test]
    fn quoted_printable_drops_trailing_white_space_and_soft_breaks() {
        // "a b" then a soft break with spaces after its "=", then "c=3D", a hard break, "d ".
        assert_eq!(quoted_printable_decoded_len(b"a b=  \r\nc=3D  \r\nd \t"), 8);
        assert_eq!(quoted_printable_decoded_len(b"x=\ny\n"), 3);
        assert_eq!(quoted_printable_decoded_len(b"=4"), 2);
    }

    #[test]
    fn a_multipart_of_many_parts_is_counted_whole_and_listed_in_part() {
        let mut message = b"Content-Type: multipart/mixed; boundary=m\r\n\r\n".to_vec();
        for _ in 0..100 {
            message.extend_from_slice(b"--m\r\n\r\npart\r\n");
        }
        message.extend_from_slice(b"--m--\r\n");
        let outline = outline(&message, None);
        assert_eq!(outline.body_summary(), "multipart/mixed, 100 parts");
        assert_eq!(outline.parts.len(), PARTS_SHOWN);
        assert_eq!(outline.parts_left_out, 100 + 1 - PARTS_SHOWN);
    }

    #[test]
    fn what_is_no_media_type_is_not_read_as_one() {
        let body_of = |content_type: &str| {
            let message = format!("Content-Type: {content_type}\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n");
            let outline = outline(message.as_bytes(), None);
            (outline.body_summary(), outline.parts[0].text.clone())
        };
        assert_eq!(body_of("text/html=x").0, "text/plain");
        assert_eq!(body_of("multipart/mixed,boundary=x").0, "text/plain");
        assert_eq!(
            body_of("multipart/mixed; boundary=x").0,
            "multipart/mixed, 1 part"
        );
        let (summary, text) = body_of("multipart/mixed; charset=x");
        assert_eq!(summary, "multipart/mixed");
        assert!(
            text.contains("(no boundary parameter, so no parts; RFC 2046 5.1.1)"),
            "{text}"
        );
        // A boundary RFC 2046 5.1.1 does not allow is named, and why.
        // A quote in it is escaped, so that the quoted boundary cannot seem to end early.
        let (_, text) = body_of("multipart/mixed; boundary=\"x\\\" is fine (y\"");
        assert!(
            text.contains(r#"boundary "x\" is fine (y" is not"#),
            "{text}"
        );
        for boundary in ["\"sp \"", &"x".repeat(71)] {
            let (_, text) = body_of(&format!("multipart/mixed; boundary={boundary}"));
            assert!(
                text.contains("is not 1 to 70 of the characters RFC 2046 5.1.1 allows"),
                "{text}"
            );
        }
        let disposition = outline(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
              Content-Disposition: filename=\"a.pdf\"\r\n\r\nx\r\n--b--\r\n",
            None,
        );
        assert!(
            !disposition.parts[1].text.contains("filename"),
            "{}",
            disposition.parts[1].text
        );
    }

    #[test]
    fn encoded_words_are_decoded_beside_the_field_as_written() {
        assert_eq!(
            decoded_words("=?UTF-8?B?wqFIb2xhIQ==?=", WordsAllowed::Text).as_deref(),
            Some("\u{a1}Hola!")
        );
        // The space between two encoded words is dropped; other text is kept.
        assert_eq!(
            decoded_words(
                "Re: =?utf-8?q?J=C3=BCr?= =?utf-8?q?gen_sagt?= hi",
                WordsAllowed::Text
            )
            .as_deref(),
            Some("Re: J\u{fc}rgen sagt hi")
        );
        assert_eq!(
            decoded_words("=?iso-8859-1?Q?caf=E9?=", WordsAllowed::Text).as_deref(),
            Some("caf\u{e9}")
        );
        for plain in [
            "Hello",
            "=?UTF-8?B?",
            "=?koi8-r?B?wqE=?=",
            "=?UTF-8?X?a?=",
            "a =? b ?= c",
        ] {
            assert_eq!(decoded_words(plain, WordsAllowed::Text), None, "{plain}");
        }
        let outline = outline(b"Subject: =?UTF-8?B?wqFIb2xhIQ==?=\r\n\r\nx\r\n", None);
        assert_eq!(outline.fields[0].value, "=?UTF-8?B?wqFIb2xhIQ==?=");
        assert_eq!(outline.fields[0].reads.as_deref(), Some("\u{a1}Hola!"));
    }

    #[test]
    fn encoded_words_are_decoded_only_where_rfc_2047_allows_them() {
        let reads = |field: &str| {
            let message = format!("{field}\r\n\r\nx\r\n");
            outline(message.as_bytes(), None).fields[0].reads.clone()
        };
        // Display names and comments of address fields (RFC 2047 5(2), 5(3)).
        assert_eq!(
            reads("From: =?UTF-8?Q?J=C3=BCrgen?= <j@x.test> (=?UTF-8?Q?B=C3=BCro?=)").as_deref(),
            Some("J\u{fc}rgen <j@x.test> (B\u{fc}ro)")
        );
        // Never in an address, an identifier, a quoted string or a parameter's value.
        for field in [
            "To: =?UTF-8?Q?bob?=@receiver.test",
            "To: <=?UTF-8?Q?bob?=@receiver.test>",
            "Message-ID: <=?UTF-8?Q?x?=@sender.test>",
            "In-Reply-To: <=?UTF-8?Q?x?=@sender.test>",
            "Content-Type: text/plain; name==?UTF-8?Q?n.txt?=",
            "Content-Type: text/plain; name=\"=?UTF-8?Q?n.txt?=\"",
            "From: \"=?UTF-8?Q?not_decoded?=\" <carol@x.test>",
            // Glued to other text, in any field (5(1)).
            "X-Glued: foo=?UTF-8?Q?bar?=baz",
            "Subject: (=?ISO-8859-1?B?4Q==?=)",
        ] {
            assert_eq!(reads(field), None, "{field}");
        }
        for (field, read) in [
            // A structured field's comment may hold one, as Content-Type's may.
            (
                "Content-Type: text/plain (=?UTF-8?Q?f=C3=BCr_dich?=)",
                "text/plain (f\u{fc}r dich)",
            ),
            // A display name decoded into characters an address gives meaning to is quoted.
            (
                "From: =?UTF-8?Q?Doe=2C_John?= <alice@sender.test>",
                "\"Doe, John\" <alice@sender.test>",
            ),
            (
                "To: =?UTF-8?Q?=3Cbob=40evil=2Etest=3E?= <bob@receiver.test>",
                "\"<bob@evil.test>\" <bob@receiver.test>",
            ),
            ("To: =?UTF-8?Q?a=22b?= <c@d.test>", "\"a\\\"b\" <c@d.test>"),
            // A decoded comment cannot close its comment and fake an address after it.
            (
                "From: alice@sender.test (=?UTF-8?B?KSA8Ym9iQGV2aWwudGVzdD4gKA==?=)",
                "alice@sender.test (\\) <bob@evil.test> \\()",
            ),
            // List-Id's description is a phrase (RFC 2919); another address field's
            // display name is quoted too.
            (
                "List-Id: =?UTF-8?Q?Liste_f=C3=BCr_alle?= <alle.lists.example>",
                "Liste f\u{fc}r alle <alle.lists.example>",
            ),
            (
                "Mail-Followup-To: =?UTF-8?Q?Doe=2C_John?= <a@b.test>",
                "\"Doe, John\" <a@b.test>",
            ),
        ] {
            assert_eq!(reads(field).as_deref(), Some(read), "{field}");
        }
        // Never in Received: (RFC 2047 5), even in a comment.
        assert_eq!(
            reads("Received: from a.test (=?UTF-8?Q?x?=) by b.test"),
            None
        );
        // A parenthesis outside a comment is no delimiter.
        assert_eq!(reads("From: =?UTF-8?Q?x?=) <a@b.test>"), None);
        // Quoted pairs are read from the octets: `\\` is one backslash, and the quote after
        // it ends the string.
        assert_eq!(
            reads("From: \"a\\\\\" x \" =?UTF-8?Q?evil?= \" <a@b.test>"),
            None
        );
        assert_eq!(
            reads("From: \"Back\\\\\" =?UTF-8?Q?J=C3=BCrgen?= <j@x.test>").as_deref(),
            Some("\"Back\\\\\" J\u{fc}rgen <j@x.test>")
        );
        // A quoted pair does not end the quoted string it is in.
        assert_eq!(reads("From: \"a\\\" =?UTF-8?Q?b?=\" <c@d.test>"), None);
    }

    /// Pieces of messages, whole and broken: fields, folds, boundaries, nested messages, the
    /// encodings, and bytes of any kind.
    #[cfg(not(target_arch = "wasm32"))]
    fn message_piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = |text: &'static str| Just(text.as_bytes().to_vec());
        prop_oneof![
            piece("Message-ID: <1@a>\r\n"),
            piece("Received: by mx\r\n"),
            piece(" folded\r\n"),
            piece("\r\n"),
            piece("\n"),
            piece(":"),
            piece("Content-Type: multipart/mixed; boundary=b\r\n"),
            piece("Content-Type: multipart/mixed; boundary=\"\"\r\n"),
            piece("Content-Type: message/rfc822\r\n"),
            piece("Content-Type: text/plain; charset=\"x\r\n"),
            piece("Content-Disposition: attachment; filename*=utf-8''%C3%A9\r\n"),
            piece("Content-Transfer-Encoding: base64\r\n"),
            piece("Content-Transfer-Encoding: quoted-printable\r\n"),
            piece("--b\r\n"),
            piece("--b--\r\n"),
            piece("=?utf-8?q?=C3?=\r\n"),
            piece("=\r\n"),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x0007_111e),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Any bytes, as a message and as its first copy, make an outline: no panic, no more
        /// fields than lines, fields marked added only against a first copy, and a body.
        #[test]
        fn any_bytes_make_an_outline(
            message in proptest::collection::vec(message_piece(), 0..40),
            first in proptest::option::of(proptest::collection::vec(message_piece(), 0..40)),
        ) {
            let message = message.concat();
            let first = first.map(|pieces| pieces.concat());
            let outlined = outline(&message, first.as_deref());
            let lines = message.split(|&b| b == b'\n').count();
            proptest::prop_assert!(outlined.fields.len() <= lines);
            proptest::prop_assert!(first.is_some() || outlined.added() == 0);
            proptest::prop_assert!(!outlined.parts.is_empty());
            for field in &outlined.fields {
                proptest::prop_assert!(field.value.chars().count() <= VALUE_SHOWN + 1);
                proptest::prop_assert!(!field.value.contains(['\r', '\n']));
            }
            // A part's line: its type, names and a preamble and an epilogue, each cut.
            for part in &outlined.parts {
                proptest::prop_assert!(part.text.chars().count() <= 4 * VALUE_SHOWN + 300);
                proptest::prop_assert!(!part.text.contains(['\r', '\n']));
            }
        }
    }
}
