//! SMTP envelope addresses (RFC 5321 4.1.2 and 4.1.3): mailboxes, domains, address literals,
//! reverse-paths and forward-paths, their parsing from command arguments, and their wire form.
//!
//! This module does not decide whether an address is acceptable to a server (that is the
//! policy's job) nor whether non-ASCII addresses are allowed in a given mail transaction (the
//! session checks that against the SMTPUTF8 parameter, RFC 6531 3.5). It parses UTF-8 in local
//! parts and domain labels so that the session can tell "not allowed here" from "not an address".

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest local part, in octets (RFC 5321 4.5.3.1.1).
pub const LOCAL_PART_MAX_OCTETS: usize = 64;
/// Longest domain, in octets (RFC 5321 4.5.3.1.2).
pub const DOMAIN_MAX_OCTETS: usize = 255;
/// Longest reverse-path or forward-path, punctuation included (RFC 5321 4.5.3.1.3).
pub const PATH_MAX_OCTETS: usize = 256;
/// Longest label of a domain name (RFC 1035 2.3.4).
pub const LABEL_MAX_OCTETS: usize = 63;

/// An address literal (RFC 5321 4.1.3): `[192.0.2.1]` or `[IPv6:2001:db8::1]`. The grammar
/// also has a `[tag:content]` general literal, but its tag "MUST be ... registered with
/// IANA" and IPv6 is the only one registered, so no other literal names a host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AddressLiteral {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::Ipv4(ip) => write!(f, "[{ip}]"),
            AddressLiteral::Ipv6(ip) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// A domain name as a lookup key: in lower case (names compare without regard to case, RFC
/// 5321 2.4), and with every U-label written as its A-label (`bü.test` is `xn--b-eha.test`),
/// since the two forms name one domain (RFC 5890 2.3.2.1) and DNS knows only the A-label
/// (RFC 5891 5). A name that IDNA refuses is kept in lower case, so that it matches nothing
/// but itself.
pub fn domain_key(name: &str) -> String {
    // An address literal in the form its address writes (`[ipv6:2001:DB8:0::20]` is
    // `[IPv6:2001:db8::20]`, `[192.0.2.020]` is `[192.0.2.20]`), as RCPT's parsed one is.
    if name.starts_with('[') {
        if let Ok(literal @ Domain::Literal(_)) = Domain::parse(name) {
            return literal.key();
        }
    }
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    idna::domain_to_ascii(name).unwrap_or_else(|_| name.to_lowercase())
}

/// `name` in A-labels as IDNA's strict checks make it (UTS 46 with the STD3 rules, hyphen
/// checks and DNS lengths), or `None` when they refuse it: an A-label that decodes to no valid
/// U-label included.
pub fn strict_a_labels(name: &str) -> Option<std::borrow::Cow<'_, str>> {
    a_labels_checked(name, idna::uts46::DnsLength::Verify)
}

/// As [`strict_a_labels`], but of any length: to tell a name too long from one IDNA refuses
/// for another reason.
pub fn strict_a_labels_of_any_length(name: &str) -> Option<std::borrow::Cow<'_, str>> {
    a_labels_checked(name, idna::uts46::DnsLength::Ignore)
}

fn a_labels_checked(
    name: &str,
    length: idna::uts46::DnsLength,
) -> Option<std::borrow::Cow<'_, str>> {
    idna::uts46::Uts46::new()
        .to_ascii(
            name.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::Check,
            length,
        )
        .ok()
}

/// The recipients a message names, each once, in their canonical form (the one servers report
/// back), in the order named: an address written the same way in To, Cc and Bcc gets one RCPT,
/// as mail programs drop repeated addresses; sent twice, it could go in two transactions
/// (after a 452) and arrive twice. Another spelling (`BOB@`, a domain in capitals) is another
/// recipient, which only the final host may fold (RFC 5321 2.4). What does not parse is kept
/// as written, for the server to refuse.
pub fn distinct_recipients<A: AsRef<str>>(addresses: impl IntoIterator<Item = A>) -> Vec<String> {
    let mut recipients: Vec<String> = addresses
        .into_iter()
        .map(|address| {
            let address = address.as_ref();
            Mailbox::parse(address)
                .map(|m| m.text())
                .unwrap_or_else(|_| address.to_string())
        })
        .collect();
    if recipients.len() > 1 {
        let mut seen = rustc_hash::FxHashSet::default();
        recipients.retain(|path| seen.insert(path.clone()));
    }
    recipients
}

/// Whether `text` is a mailbox with a quoted local part, of at most `max_octets`, that a header
/// field can hold as it is: it parses (RFC 5321 4.1.2), so its spaces and angle brackets stand
/// inside the quotes, and it has no control character.
pub fn is_writable_quoted_mailbox(text: &str, max_octets: usize) -> bool {
    text.starts_with('"')
        && text.len() <= max_octets
        && !text.chars().any(char::is_control)
        && Mailbox::parse(text).is_ok()
}

/// A mailbox address as a lookup key: the local part in lower case (the simulated servers
/// treat it without regard to case, as most do), the domain as [`domain_key`] writes it.
pub fn mailbox_key(address: &str) -> String {
    // A quoted local part is keyed by what it holds ("al ice"@b.test is al ice@b.test), as
    // the server keys the mailbox it parsed from RCPT (RFC 5321 4.1.2: the quotes are only
    // syntax).
    if address.starts_with('"') {
        if let Ok(mailbox) = Mailbox::parse(address) {
            return mailbox.key();
        }
    }
    match address.rsplit_once('@') {
        Some((local_part, domain)) => key_of_parts(local_part, |key| {
            if domain.is_ascii() && !domain.starts_with('[') {
                push_ascii_lowercase(key, domain);
            } else {
                key.push_str(&domain_key(domain));
            }
        }),
        None => address.to_lowercase(),
    }
}

/// `local_part` in lower case, "@", then what `push_domain` writes: one allocation for the
/// common case of ASCII addresses, which a large run looks up for every recipient.
fn key_of_parts(local_part: &str, push_domain: impl FnOnce(&mut String)) -> String {
    let mut key = String::with_capacity(local_part.len() + 64);
    if local_part.is_ascii() {
        push_ascii_lowercase(&mut key, local_part);
    } else {
        key.push_str(&local_part.to_lowercase());
    }
    key.push('@');
    push_domain(&mut key);
    key
}

fn push_ascii_lowercase(out: &mut String, ascii: &str) {
    out.extend(ascii.chars().map(|c| c.to_ascii_lowercase()));
}

/// The part of a mailbox after the "@": a domain name or an address literal.
///
/// Domain names compare and hash by [`domain_key`]: without regard to case (RFC 5321 2.4), and
/// a U-label equals its A-label; the spelling the peer used is kept for display.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Domain {
    Name(String),
    Literal(AddressLiteral),
}

impl Domain {
    /// Parses a whole string as a domain name or an address literal.
    pub fn parse(text: &str) -> Result<Domain, AddressError> {
        let mut cursor = Cursor::new(text);
        let domain = cursor.domain_or_literal()?;
        if !cursor.at_end() {
            return Err(AddressError::Syntax(
                "unexpected characters after the domain",
            ));
        }
        Ok(domain)
    }

    /// The domain name folded to ASCII lower case, or the literal's wire form; use it as a
    /// lookup key.
    pub fn key(&self) -> String {
        match self {
            Domain::Name(name) => domain_key(name),
            // An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 2.5.5.2), so its
            // literal is the IPv4 literal. Any other IPv6 literal is written with its tag as
            // RFC 5321 4.1.3 spells it and the address's canonical form (RFC 5952: hex digits
            // in lower case): the tag and digits compare without regard to case.
            Domain::Literal(AddressLiteral::Ipv6(ip)) => match ip.to_ipv4_mapped() {
                Some(v4) => AddressLiteral::Ipv4(v4).to_string(),
                None => AddressLiteral::Ipv6(*ip).to_string(),
            },
            Domain::Literal(literal) => literal.to_string(),
        }
    }

    /// True when the domain name is pure ASCII (address literals always are).
    pub fn is_ascii(&self) -> bool {
        match self {
            Domain::Name(name) => name.is_ascii(),
            Domain::Literal(_) => true,
        }
    }
}

impl PartialEq for Domain {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Domain::Name(a), Domain::Name(b)) if a.is_ascii() && b.is_ascii() => {
                a.eq_ignore_ascii_case(b)
            }
            (Domain::Name(a), Domain::Name(b)) => domain_key(a) == domain_key(b),
            (Domain::Literal(a), Domain::Literal(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Domain {}

impl Hash for Domain {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(name) => f.write_str(name),
            Domain::Literal(literal) => literal.fmt(f),
        }
    }
}

/// A mailbox `local-part@domain` (RFC 5321 4.1.2).
///
/// `local_part` holds the local part's meaning: a quoted local part is stored without its
/// quotes and backslashes, and [`fmt::Display`] quotes it again when it is not a dot-string.
/// Its case is preserved and significant (RFC 5321 2.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mailbox {
    pub local_part: String,
    pub domain: Domain,
}

impl Mailbox {
    /// [`mailbox_key`] of this mailbox, from its parsed parts.
    pub fn key(&self) -> String {
        key_of_parts(&self.local_part, |key| match &self.domain {
            Domain::Name(name) if name.is_ascii() => push_ascii_lowercase(key, name),
            domain => key.push_str(&domain.key()),
        })
    }

    /// Parses `local-part@domain` with no angle brackets.
    pub fn parse(text: &str) -> Result<Mailbox, AddressError> {
        let mut cursor = Cursor::new(text);
        let mailbox = cursor.mailbox()?;
        if !cursor.at_end() {
            return Err(AddressError::Syntax(
                "unexpected characters after the mailbox",
            ));
        }
        Ok(mailbox)
    }

    /// True when neither the local part nor the domain has a non-ASCII character.
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.domain.is_ascii()
    }

    /// The local part as it goes on the wire: as is when it is a dot-string, else quoted.
    pub fn local_part_wire(&self) -> Cow<'_, str> {
        local_part_wire(&self.local_part)
    }

    /// Appends the address as [`fmt::Display`] writes it, without the formatting machinery,
    /// for the places that write one for every message.
    pub fn push_text(&self, out: &mut String) {
        out.push_str(&self.local_part_wire());
        out.push('@');
        match &self.domain {
            Domain::Name(name) => out.push_str(name),
            Domain::Literal(literal) => {
                use std::fmt::Write as _;
                // Writing to a String cannot fail.
                let _ = write!(out, "{literal}");
            }
        }
    }

    /// The address as [`fmt::Display`] writes it (see [`Mailbox::push_text`]).
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.local_part.len() + 48);
        self.push_text(&mut text);
        text
    }
}

impl fmt::Display for Mailbox {
    // Piece by piece rather than through `write!`: addresses are written for every command,
    // reply and trace event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local_part_wire())?;
        f.write_str("@")?;
        fmt::Display::fmt(&self.domain, f)
    }
}

/// The argument of MAIL FROM (RFC 5321 4.1.1.2): a mailbox, or `<>` for messages that must
/// never cause a bounce (the null reverse-path, RFC 5321 4.5.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReversePath {
    Null,
    Mailbox(Mailbox),
}

impl ReversePath {
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(mailbox) => Some(mailbox),
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }

    /// Appends the wire form as [`fmt::Display`] writes it (see [`Mailbox::push_text`]).
    pub fn push_wire(&self, out: &mut String) {
        match self {
            ReversePath::Null => out.push_str("<>"),
            ReversePath::Mailbox(mailbox) => {
                out.push('<');
                mailbox.push_text(out);
                out.push('>');
            }
        }
    }
}

impl fmt::Display for ReversePath {
    /// The wire form with angle brackets: `<>` or `<user@example.org>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(mailbox) => in_angle_brackets(f, mailbox),
        }
    }
}

/// The argument of RCPT TO (RFC 5321 4.1.1.3): a mailbox, or the special `<Postmaster>` with
/// no domain, which every server must accept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ForwardPath {
    /// `<Postmaster>` with no domain; `spelling` keeps the case the client used.
    Postmaster {
        spelling: String,
    },
    Mailbox(Mailbox),
}

impl ForwardPath {
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ForwardPath::Postmaster { .. } => None,
            ForwardPath::Mailbox(mailbox) => Some(mailbox),
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }

    /// Appends the wire form as [`fmt::Display`] writes it (see [`Mailbox::push_text`]).
    pub fn push_wire(&self, out: &mut String) {
        out.push('<');
        match self {
            ForwardPath::Postmaster { spelling } => out.push_str(spelling),
            ForwardPath::Mailbox(mailbox) => mailbox.push_text(out),
        }
        out.push('>');
    }
}

impl fmt::Display for ForwardPath {
    /// The wire form with angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster { spelling } => write!(f, "<{spelling}>"),
            ForwardPath::Mailbox(mailbox) => in_angle_brackets(f, mailbox),
        }
    }
}

/// `<mailbox>`, the way paths are written on the wire (RFC 5321 4.1.2).
fn in_angle_brackets(f: &mut fmt::Formatter<'_>, mailbox: &Mailbox) -> fmt::Result {
    f.write_str("<")?;
    fmt::Display::fmt(mailbox, f)?;
    f.write_str(">")
}

/// Why a string is not a valid path, mailbox or domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressError {
    /// The path does not start with "<" (RFC 5321 4.1.2 `Path`).
    MissingAngleBrackets,
    /// `<>` where a mailbox is required (RFC 5321 4.1.1.3: RCPT takes no null path).
    NullPathNotAllowed,
    LocalPartTooLong {
        octets: usize,
    },
    DomainTooLong {
        octets: usize,
    },
    LabelTooLong {
        octets: usize,
    },
    PathTooLong {
        octets: usize,
    },
    /// Any other break of the grammar; the text says what was expected.
    Syntax(&'static str),
    /// An address literal that follows the grammar's general form but names no address:
    /// its tag is not a registered one (RFC 5321 4.1.3); the text says what was written.
    UnregisteredLiteral(&'static str),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::MissingAngleBrackets => f.write_str("the path must be in angle brackets"),
            AddressError::NullPathNotAllowed => f.write_str("the null path <> is not allowed here"),
            AddressError::LocalPartTooLong { octets } => write!(
                f,
                "local part of {octets} octets (at most {LOCAL_PART_MAX_OCTETS})"
            ),
            AddressError::DomainTooLong { octets } => {
                write!(f, "domain of {octets} octets (at most {DOMAIN_MAX_OCTETS})")
            }
            AddressError::LabelTooLong { octets } => write!(
                f,
                "domain label of {octets} octets (at most {LABEL_MAX_OCTETS})"
            ),
            AddressError::PathTooLong { octets } => {
                write!(f, "path of {octets} octets (at most {PATH_MAX_OCTETS})")
            }
            AddressError::Syntax(what) | AddressError::UnregisteredLiteral(what) => {
                f.write_str(what)
            }
        }
    }
}

impl std::error::Error for AddressError {}

/// A path read at the start of a text: the path, whether a source route came before its
/// mailbox (accepted and ignored, RFC 5321 3.6.1 and appendix C), and the text after its
/// closing ">".
#[derive(Debug, PartialEq)]
pub struct ParsedPath<'a, P> {
    pub path: P,
    pub source_route: bool,
    pub rest: &'a str,
}

/// Parses a reverse-path at the start of `text` (`<>` or `<[A-d-l:]mailbox>`).
pub fn parse_reverse_path(text: &str) -> Result<ParsedPath<'_, ReversePath>, AddressError> {
    let mut cursor = Cursor::new(text);
    let path = match cursor.path(true)? {
        None => ReversePath::Null,
        Some(mailbox) => ReversePath::Mailbox(mailbox),
    };
    Ok(cursor.parsed(path))
}

/// Parses a forward-path at the start of `text` (`<Postmaster>` or `<[A-d-l:]mailbox>`).
pub fn parse_forward_path(text: &str) -> Result<ParsedPath<'_, ForwardPath>, AddressError> {
    // RFC 5321 4.1.1.3: "<Postmaster>" with no domain, in any case.
    if let Some(inner) = text.strip_prefix('<') {
        if let Some(end) = inner.find('>') {
            if inner[..end].eq_ignore_ascii_case("postmaster") {
                return Ok(ParsedPath {
                    path: ForwardPath::Postmaster {
                        spelling: inner[..end].to_string(),
                    },
                    source_route: false,
                    rest: &inner[end + 1..],
                });
            }
        }
    }
    let mut cursor = Cursor::new(text);
    match cursor.path(false)? {
        None => Err(AddressError::NullPathNotAllowed),
        Some(mailbox) => Ok(cursor.parsed(ForwardPath::Mailbox(mailbox))),
    }
}

/// RFC 5322 3.2.3 atext, plus any non-ASCII octet (RFC 6531 3.3 extends atext with UTF-8).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// A local part as an address writes it (RFC 5321 4.1.2, RFC 5322 3.4.1): as is when it is
/// a dot-string, else as a quoted string, with `"` and `\` escaped.
pub fn local_part_wire(local_part: &str) -> Cow<'_, str> {
    if is_dot_string(local_part) {
        return Cow::Borrowed(local_part);
    }
    let mut quoted = String::with_capacity(local_part.len() + 2);
    quoted.push('"');
    for c in local_part.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

/// True when `s` can go on the wire unquoted (RFC 5321 4.1.2 `Dot-string`).
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

/// A byte cursor over a UTF-8 string. It only ever stops at ASCII delimiters, so every slice
/// it takes falls on a character boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// [`Cursor::path`] skipped a source route.
    source_route: bool,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            text,
            pos: 0,
            source_route: false,
        }
    }

    /// `path`, read up to here, with what the cursor learnt reading it.
    fn parsed<P>(&self, path: P) -> ParsedPath<'a, P> {
        ParsedPath {
            path,
            source_route: self.source_route,
            rest: self.rest(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `Path = "<" [ A-d-l ":" ] Mailbox ">"`, or `<>` when `null_allowed`. Returns None for
    /// the null path.
    fn path(&mut self, null_allowed: bool) -> Result<Option<Mailbox>, AddressError> {
        let start = self.pos;
        if !self.eat(b'<') {
            return Err(AddressError::MissingAngleBrackets);
        }
        if self.eat(b'>') {
            return if null_allowed {
                Ok(None)
            } else {
                Err(AddressError::NullPathNotAllowed)
            };
        }
        // RFC 5321 4.1.1.3 and appendix C: a source route is accepted and ignored.
        if self.peek() == Some(b'@') {
            self.source_route = true;
            loop {
                if !self.eat(b'@') {
                    return Err(AddressError::Syntax("bad source route"));
                }
                self.domain_name()?;
                if self.eat(b',') {
                    continue;
                }
                if self.eat(b':') {
                    break;
                }
                return Err(AddressError::Syntax("bad source route"));
            }
        }
        let mailbox = self.mailbox()?;
        if !self.eat(b'>') {
            return Err(AddressError::Syntax("expected \">\" after the mailbox"));
        }
        let octets = self.pos - start;
        if octets > PATH_MAX_OCTETS {
            return Err(AddressError::PathTooLong { octets });
        }
        Ok(Some(mailbox))
    }

    /// `Mailbox = Local-part "@" ( Domain / address-literal )`.
    fn mailbox(&mut self) -> Result<Mailbox, AddressError> {
        let start = self.pos;
        let local_part = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            self.dot_string()?
        };
        let octets = self.pos - start;
        if octets > LOCAL_PART_MAX_OCTETS {
            return Err(AddressError::LocalPartTooLong { octets });
        }
        if !self.eat(b'@') {
            return Err(AddressError::Syntax("expected \"@\" and a domain"));
        }
        let domain = self.domain_or_literal()?;
        Ok(Mailbox { local_part, domain })
    }

    /// `Dot-string = Atom *("." Atom)`.
    fn dot_string(&mut self) -> Result<String, AddressError> {
        let start = self.pos;
        loop {
            let atom_start = self.pos;
            while self.peek().is_some_and(is_atext) {
                self.pos += 1;
            }
            if self.pos == atom_start {
                return Err(AddressError::Syntax(
                    "bad local part (empty atom, or a character that needs quoting)",
                ));
            }
            if !self.eat(b'.') {
                break;
            }
        }
        Ok(self.text[start..self.pos].to_string())
    }

    /// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`, returned without quoting.
    fn quoted_string(&mut self) -> Result<String, AddressError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let mut value = String::new();
        let mut run_start = self.pos;
        loop {
            match self.peek() {
                None => return Err(AddressError::Syntax("unterminated quoted local part")),
                Some(b'"') => {
                    value.push_str(&self.text[run_start..self.pos]);
                    self.pos += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    value.push_str(&self.text[run_start..self.pos]);
                    // quoted-pairSMTP = "\" %d32-126
                    match self.text.as_bytes().get(self.pos + 1) {
                        Some(&b) if (32..=126).contains(&b) => {
                            value.push(char::from(b));
                            self.pos += 2;
                            run_start = self.pos;
                        }
                        _ => return Err(AddressError::Syntax("bad quoted pair in local part")),
                    }
                }
                // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531 3.3).
                Some(b) if (32..=126).contains(&b) || b >= 0x80 => self.pos += 1,
                Some(_) => {
                    return Err(AddressError::Syntax(
                        "control character in quoted local part",
                    ))
                }
            }
        }
    }

    fn domain_or_literal(&mut self) -> Result<Domain, AddressError> {
        if self.peek() == Some(b'[') {
            Ok(Domain::Literal(self.address_literal()?))
        } else {
            Ok(Domain::Name(self.domain_name()?))
        }
    }

    /// `Domain = sub-domain *("." sub-domain)`; `sub-domain = Let-dig [Ldh-str]`. Non-ASCII
    /// octets count as letters so that U-labels parse (RFC 6531 3.3).
    fn domain_name(&mut self) -> Result<String, AddressError> {
        let start = self.pos;
        // Whether a label starts with the ACE prefix `xn--` (RFC 5890 2.3.1), in any case.
        let mut has_a_label = false;
        loop {
            let label_start = self.pos;
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
            {
                self.pos += 1;
            }
            let label = &self.text.as_bytes()[label_start..self.pos];
            if label.is_empty() {
                return Err(AddressError::Syntax(if self.peek() == Some(b'@') {
                    "bad domain (it begins with a second \"@\", and an unquoted local part \
                     cannot hold one either)"
                } else {
                    "bad domain (empty label)"
                }));
            }
            if label[0] == b'-' || label[label.len() - 1] == b'-' {
                return Err(AddressError::Syntax(
                    "bad domain (a label starts or ends with \"-\")",
                ));
            }
            // A label with UTF-8 is a U-label, whose limit is its A-label's, checked below by
            // IDNA: in UTF-8 it may be longer (RFC 5890 2.3.2.1).
            if label.len() > LABEL_MAX_OCTETS && label.is_ascii() {
                return Err(AddressError::LabelTooLong {
                    octets: label.len(),
                });
            }
            has_a_label |= label.len() >= 4 && label[..4].eq_ignore_ascii_case(b"xn--");
            if !self.eat(b'.') {
                break;
            }
        }
        let octets = self.pos - start;
        if octets > DOMAIN_MAX_OCTETS {
            return Err(AddressError::DomainTooLong { octets });
        }
        let name = &self.text[start..self.pos];
        // RFC 6531 3.3 lets a label be a U-label, which must be a valid IDNA label (RFC 5890
        // 2.3.2.1), as must an A-label ("xn--"): otherwise the name is no domain at all and
        // could never be looked up. Checked as UTS 46 processing checks it, which lets
        // through some symbols IDNA2008 disallows (RFC 5892 3). ASCII names without "xn--"
        // are checked by the loop above.
        if (has_a_label || !name.is_ascii()) && strict_a_labels(name).is_none() {
            return Err(AddressError::Syntax(
                "bad domain (not a valid internationalised domain name, RFC 5890 2.3.2.1)",
            ));
        }
        Ok(name.to_string())
    }

    /// `address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]"`.
    fn address_literal(&mut self) -> Result<AddressLiteral, AddressError> {
        debug_assert_eq!(self.peek(), Some(b'['));
        self.pos += 1;
        let rest = self.rest();
        let Some(end) = rest.find(']') else {
            return Err(AddressError::Syntax("unterminated address literal"));
        };
        let inner = &rest[..end];
        self.pos += end + 1;
        if let Some(ip) = parse_ipv4(inner) {
            return Ok(AddressLiteral::Ipv4(ip));
        }
        // Read by the grammar, `[2001:db8::1]` is a general literal of tag "2001" and
        // `[::1]` no literal at all; either way it is what was probably meant.
        if inner.parse::<Ipv6Addr>().is_ok() {
            return Err(AddressError::UnregisteredLiteral(
                "IPv6 address literal without its \"IPv6:\" tag",
            ));
        }
        let Some((tag, content)) = inner.split_once(':') else {
            return Err(AddressError::Syntax("bad IPv4 address literal"));
        };
        if tag.eq_ignore_ascii_case("IPv6") {
            return parse_ipv6(content)
                .map(AddressLiteral::Ipv6)
                .ok_or(AddressError::Syntax("bad IPv6 address literal"));
        }
        // General-address-literal: Standardized-tag is an Ldh-str; dcontent = %d33-90 / %d94-126.
        let tag_ok = !tag.is_empty()
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !tag.ends_with('-');
        let content_ok = !content.is_empty()
            && content
                .bytes()
                .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b));
        if !tag_ok || !content_ok {
            return Err(AddressError::Syntax("bad address literal"));
        }
        // Well formed, but the tag "MUST be specified in a Standards-Track RFC and registered
        // with IANA" (RFC 5321 4.1.3) and only "IPv6" is.
        Err(AddressError::UnregisteredLiteral(
            "address literal with an unregistered tag (only \"IPv6:\" is registered)",
        ))
    }
}

/// `IPv6-addr` of RFC 5321 4.1.3: eight groups of 1 to 4 hexadecimal digits (`IPv6-full`),
/// or six then an IPv4 address (`IPv6v4-full`); or either with "::" standing for "at least 2
/// 16-bit groups of zeros", so that at most 6 groups (an IPv4 address counting as 2) are
/// written beside it (`IPv6-comp`, `IPv6v4-comp`).
fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    // Each side of a "::" (or the whole, without one) as its groups, written out.
    let groups = |side: &str| -> Option<Vec<u16>> {
        if side.is_empty() {
            return Some(Vec::new());
        }
        let parts: Vec<&str> = side.split(':').collect();
        let mut groups = Vec::with_capacity(parts.len() + 1);
        for (index, part) in parts.iter().enumerate() {
            if index + 1 == parts.len() && part.contains('.') {
                let [a, b, c, d] = parse_ipv4(part)?.octets();
                groups.push(u16::from_be_bytes([a, b]));
                groups.push(u16::from_be_bytes([c, d]));
            } else if (1..=4).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                groups.push(u16::from_str_radix(part, 16).ok()?);
            } else {
                return None;
            }
        }
        Some(groups)
    };
    let all = match text.split_once("::") {
        None => {
            let all = groups(text)?;
            (all.len() == 8).then_some(all)?
        }
        Some((before, after)) => {
            let (before, after) = (groups(before)?, groups(after)?);
            // An IPv4 address may only end the address.
            if text.rsplit_once("::")?.0.contains('.') || before.len() + after.len() > 6 {
                return None;
            }
            let zeros = 8 - before.len() - after.len();
            [before, vec![0; zeros], after].concat()
        }
    };
    let groups: [u16; 8] = all.try_into().ok()?;
    Some(Ipv6Addr::from(groups))
}

/// `IPv4-address-literal = Snum 3("." Snum)`, Snum being 1 to 3 digits worth 0 to 255.
fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse::<u16>().ok()?.try_into().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_has_one_key_however_it_is_written() {
        // The key the server gives the mailbox it parsed equals the key of the text, and of
        // other spellings of the same mailbox.
        for (written, key, same) in [
            ("\"al ice\"@B.test", "al ice@b.test", "al ice@b.test"),
            ("\"Bob\"@b.test", "bob@b.test", "bob@b.test"),
            (
                "bob@[IPv6:2001:DB8::20]",
                "bob@[IPv6:2001:db8::20]",
                "bob@[ipv6:2001:db8::20]",
            ),
            ("bob@[192.0.2.1]", "bob@[192.0.2.1]", "BOB@[192.0.2.1]"),
            // Literals not written in their address's own form.
            (
                "bob@[IPv6:2001:db8:0:0:0:0:0:20]",
                "bob@[IPv6:2001:db8::20]",
                "bob@[ipv6:2001:DB8::20]",
            ),
            ("bob@[192.0.2.001]", "bob@[192.0.2.1]", "bob@[192.000.2.1]"),
            // An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 2.5.5.2).
            (
                "bob@[IPv6:::FFFF:192.0.2.1]",
                "bob@[192.0.2.1]",
                "bob@[IPv6:0:0:0:0:0:ffff:c000:201]",
            ),
        ] {
            assert_eq!(mailbox_key(written), key, "{written}");
            assert_eq!(Mailbox::parse(written).unwrap().key(), key, "{written}");
            assert_eq!(mailbox_key(same), key, "{same}");
            let domain = written.rsplit_once('@').unwrap().1;
            assert_eq!(
                domain_key(domain),
                key.rsplit_once('@').unwrap().1,
                "{domain}"
            );
        }
    }

    #[test]
    fn reverse_paths_known_answers() {
        let good: &[(&str, &str, &str)] = &[
            // (input, Display of the path, rest)
            ("<>", "<>", ""),
            ("<a@b.example>", "<a@b.example>", ""),
            (
                "<John.Doe@Example.ORG> SIZE=10",
                "<John.Doe@Example.ORG>",
                " SIZE=10",
            ),
            (
                "<@relay.example,@r2.example:u@c.example>",
                "<u@c.example>",
                "",
            ),
            (
                "<\"john doe\"@example.org>",
                "<\"john doe\"@example.org>",
                "",
            ),
            ("<\"john\"@example.org>", "<john@example.org>", ""),
            ("<\"a\\\"b\"@example.org>", "<\"a\\\"b\"@example.org>", ""),
            ("<user@[192.0.2.1]>", "<user@[192.0.2.1]>", ""),
            ("<user@[IPv6:2001:db8::1]>", "<user@[IPv6:2001:db8::1]>", ""),
            ("<user@[ipv6:::1]>", "<user@[IPv6:::1]>", ""),
            (
                "<!#$%&'*+-/=?^_`{|}~@x.example>",
                "<!#$%&'*+-/=?^_`{|}~@x.example>",
                "",
            ),
            (
                "<δοκιμή@παράδειγμα.δοκιμή>",
                "<δοκιμή@παράδειγμα.δοκιμή>",
                "",
            ),
            ("<a@localhost>", "<a@localhost>", ""),
            ("<\"a>b\"@x.example> X", "<\"a>b\"@x.example>", " X"),
        ];
        for (input, display, rest) in good {
            let ParsedPath {
                path, rest: tail, ..
            } = parse_reverse_path(input).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(path.to_string(), *display, "display of {input:?}");
            assert_eq!(tail, *rest, "rest of {input:?}");
        }
    }

    #[test]
    fn bad_paths_known_answers() {
        let long_local = format!("<{}@x.example>", "a".repeat(65));
        let long_label = format!("<a@{}.example>", "b".repeat(64));
        let long_domain = format!("<a@{}example>", "abcdefghi.".repeat(26));
        let long_path = format!("<{}@{}example>", "a".repeat(60), "abcdefghi.".repeat(20));
        let bad: Vec<(&str, AddressError)> = vec![
            ("a@b.example", AddressError::MissingAngleBrackets),
            ("", AddressError::MissingAngleBrackets),
            (
                "<a@b.example",
                AddressError::Syntax("expected \">\" after the mailbox"),
            ),
            ("<a>", AddressError::Syntax("expected \"@\" and a domain")),
            ("<a@>", AddressError::Syntax("bad domain (empty label)")),
            ("<a@b..c>", AddressError::Syntax("bad domain (empty label)")),
            ("<a@b.c.>", AddressError::Syntax("bad domain (empty label)")),
            (
                "<a@@b.c>",
                AddressError::Syntax(
                    "bad domain (it begins with a second \"@\", and an unquoted local part \
                     cannot hold one either)",
                ),
            ),
            (
                "<a@-b.c>",
                AddressError::Syntax("bad domain (a label starts or ends with \"-\")"),
            ),
            (
                "<a..b@c>",
                AddressError::Syntax(
                    "bad local part (empty atom, or a character that needs quoting)",
                ),
            ),
            (
                "<.a@c>",
                AddressError::Syntax(
                    "bad local part (empty atom, or a character that needs quoting)",
                ),
            ),
            (
                "<a b@c>",
                AddressError::Syntax("expected \"@\" and a domain"),
            ),
            (
                "<\"ab@c>",
                AddressError::Syntax("unterminated quoted local part"),
            ),
            (
                "<a@[1.2.3]>",
                AddressError::Syntax("bad IPv4 address literal"),
            ),
            (
                "<a@[256.1.1.1]>",
                AddressError::Syntax("bad IPv4 address literal"),
            ),
            (
                "<a@[IPv6:zz]>",
                AddressError::Syntax("bad IPv6 address literal"),
            ),
            (
                "<a@[1.2.3.4>",
                AddressError::Syntax("unterminated address literal"),
            ),
            (
                "<a@[2001:db8::20]>",
                AddressError::UnregisteredLiteral("IPv6 address literal without its \"IPv6:\" tag"),
            ),
            (
                "<a@[::ffff:192.0.2.1]>",
                AddressError::UnregisteredLiteral("IPv6 address literal without its \"IPv6:\" tag"),
            ),
            (
                "<a@[IPv4:192.0.2.1]>",
                AddressError::UnregisteredLiteral(
                    "address literal with an unregistered tag (only \"IPv6:\" is registered)",
                ),
            ),
            (
                "<a@[x-tag:abc]>",
                AddressError::UnregisteredLiteral(
                    "address literal with an unregistered tag (only \"IPv6:\" is registered)",
                ),
            ),
            ("<a@[x-tag:]>", AddressError::Syntax("bad address literal")),
            (
                "<@a.example:>",
                AddressError::Syntax(
                    "bad local part (empty atom, or a character that needs quoting)",
                ),
            ),
            ("<@a.example>", AddressError::Syntax("bad source route")),
            (
                long_local.as_str(),
                AddressError::LocalPartTooLong { octets: 65 },
            ),
            (
                long_label.as_str(),
                AddressError::LabelTooLong { octets: 64 },
            ),
            (
                long_domain.as_str(),
                AddressError::DomainTooLong { octets: 267 },
            ),
            (
                long_path.as_str(),
                AddressError::PathTooLong { octets: 270 },
            ),
        ];
        for (input, expected) in bad {
            assert_eq!(
                parse_reverse_path(input).map(|parsed| parsed.path),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn an_ipv6_literal_follows_rfc_5321_grammar() {
        // RFC 5321 4.1.3: "::" stands for at least two groups of zeros, with at most six
        // groups (an IPv4 address counting as two) beside it; Snum allows leading zeros.
        for (good, address) in [
            ("[IPv6:2001:db8::20]", "2001:db8::20"),
            ("[IPv6:1:2:3:4:5:6:7:8]", "1:2:3:4:5:6:7:8"),
            ("[IPv6:::]", "::"),
            ("[IPv6:1:2:3::6:7:8]", "1:2:3::6:7:8"),
            ("[IPv6:1:2:3:4:5:6:192.0.2.1]", "1:2:3:4:5:6:c000:201"),
            ("[IPv6:::ffff:192.0.2.020]", "::ffff:192.0.2.20"),
            ("[IPv6:1:2:3:4::192.0.2.1]", "1:2:3:4::c000:201"),
        ] {
            match Domain::parse(good) {
                Ok(Domain::Literal(AddressLiteral::Ipv6(ip))) => {
                    assert_eq!(ip, address.parse::<Ipv6Addr>().unwrap(), "{good}");
                }
                other => panic!("{good}: {other:?}"),
            }
        }
        for bad in [
            "[IPv6:1::2:3:4:5:6:7]",
            "[IPv6:1:2:3:4:5:6:7::]",
            "[IPv6:1:2:3:4:5::1.2.3.4]",
            "[IPv6:1:2:3:4:5:6:7]",
            "[IPv6:1:2:3:4:5:6:7:8:9]",
            "[IPv6:1::2::3]",
            "[IPv6:1.2.3.4::1]",
            "[IPv6:12345::1]",
            "[IPv6:zz::1]",
            "[IPv6::1]",
            "[IPv6:]",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_domain_of_u_labels_or_a_labels_must_be_valid_idna() {
        // RFC 6531 3.3 and RFC 5890 2.3.2.1: a U-label is a valid IDNA label (as UTS 46
        // checks it), and an A-label decodes to one; anything else is no domain, refused at
        // parsing, as a syntax error.
        for good in [
            "bob@b\u{fc}.test",
            "bob@\u{4f8b}\u{3048}.\u{30c6}\u{30b9}\u{30c8}",
            "bob@xn--b-eha.test",
            "bob@B\u{dc}.test",
        ] {
            assert!(Mailbox::parse(good).is_ok(), "{good:?}");
        }
        // A U-label of 90 octets in UTF-8 whose A-label has 36: the DNS limit is the
        // A-label's (RFC 5890 2.3.2.1).
        let long = format!("bob@{}.test", "\u{4f8b}".repeat(30));
        assert!(Mailbox::parse(&long).is_ok(), "{long}");
        let too_long = format!("bob@{}.test", "\u{4f8b}".repeat(60));
        assert!(Mailbox::parse(&too_long).is_err(), "{too_long}");
        for bad in [
            "bob@b.test\u{a0}",
            "bob@\u{301}b.test",
            "bob@b\u{200d}.test",
            "bob@b\u{3000}.test",
            "bob@b\u{fffd}.test",
            "bob@xn--zz.test",
            "bob@XN--ZZ.test",
        ] {
            assert!(
                matches!(Mailbox::parse(bad), Err(AddressError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn u_labels_and_a_labels_are_one_domain() {
        // RFC 3492 7.1 and RFC 5891: the A-label of "bü" is "xn--b-eha".
        assert_eq!(domain_key("B\u{dc}.Test"), "xn--b-eha.test");
        assert_eq!(domain_key("xn--B-EHA.test"), "xn--b-eha.test");
        assert_eq!(domain_key("Example.ORG"), "example.org");
        let u_label = Domain::Name("b\u{fc}.test".into());
        let a_label = Domain::Name("XN--b-eha.test".into());
        assert_eq!(u_label, a_label);
        assert_ne!(u_label, Domain::Name("bu.test".into()));
        let hash = |domain: &Domain| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            domain.hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&u_label), hash(&a_label));
        assert_eq!(mailbox_key("Bob@b\u{fc}.test"), "bob@xn--b-eha.test");
        assert_eq!(mailbox_key("Jos\u{c9}@a.test"), "jos\u{e9}@a.test");
        // What IDNA refuses stays itself, in lower case.
        assert_eq!(
            domain_key("a\u{fffd}\u{2028}.Test"),
            "a\u{fffd}\u{2028}.test"
        );
    }

    #[test]
    fn forward_paths_known_answers() {
        let parsed = parse_forward_path("<Postmaster>").unwrap();
        assert!(matches!(parsed.path, ForwardPath::Postmaster { .. }));
        assert_eq!(parsed.rest, "");
        let path = parse_forward_path("<pOsTmAsTeR>").unwrap().path;
        assert_eq!(path.to_string(), "<pOsTmAsTeR>");
        let path = parse_forward_path("<postmaster@example.org>").unwrap().path;
        assert!(matches!(path, ForwardPath::Mailbox(_)));
        assert_eq!(
            parse_forward_path("<>"),
            Err(AddressError::NullPathNotAllowed)
        );
        assert_eq!(
            parse_forward_path("bob@example.org"),
            Err(AddressError::MissingAngleBrackets)
        );
    }

    #[test]
    fn case_rules() {
        let a = Mailbox::parse("Alice@EXAMPLE.org").unwrap();
        let b = Mailbox::parse("Alice@example.ORG").unwrap();
        let c = Mailbox::parse("alice@example.org").unwrap();
        assert_eq!(a, b, "domains compare without case");
        assert_ne!(a, c, "local parts keep their case");
        assert_eq!(a.local_part, "Alice");
        assert_eq!(a.to_string(), "Alice@EXAMPLE.org", "spelling preserved");
        assert_eq!(a.domain.key(), "example.org");
    }

    #[test]
    fn ascii_detection() {
        assert!(Mailbox::parse("a@b.example").unwrap().is_ascii());
        assert!(!Mailbox::parse("ü@b.example").unwrap().is_ascii());
        assert!(!Mailbox::parse("a@bü.example").unwrap().is_ascii());
        assert!(ReversePath::Null.is_ascii());
    }

    #[test]
    fn written_directly_as_display_writes_them() {
        for path in [
            "<alice@example.org>",
            "<Alice.B@EXAMPLE.org>",
            "<\"al ice\"@example.org>",
            "<\"a\\\"b\"@example.org>",
            "<a@[192.0.2.1]>",
            "<a@[IPv6:2001:db8::1]>",
            "<j\u{f6}rg@b\u{fc}cher.example>",
            "<Postmaster>",
            "<postMASTER>",
        ] {
            let forward = parse_forward_path(path).expect(path).path;
            let mut text = String::new();
            forward.push_wire(&mut text);
            assert_eq!(text, forward.to_string(), "{path}");
            assert_eq!(text, path, "{path}");
            let Ok(ParsedPath { path: reverse, .. }) = parse_reverse_path(path) else {
                continue;
            };
            let mut text = String::from("x");
            reverse.push_wire(&mut text);
            assert_eq!(text, format!("x{reverse}"), "{path}");
            if let Some(mailbox) = reverse.mailbox() {
                assert_eq!(mailbox.text(), mailbox.to_string(), "{path}");
            }
        }
        let mut text = String::new();
        ReversePath::Null.push_wire(&mut text);
        assert_eq!(text, ReversePath::Null.to_string());
    }

    #[test]
    fn domains_and_literals() {
        assert!(Domain::parse("mail.example.org").is_ok());
        assert!(Domain::parse("[127.0.0.1]").is_ok());
        assert!(Domain::parse("[001.002.003.004]").is_ok());
        assert!(Domain::parse("bad_host").is_err());
        assert!(Domain::parse("").is_err());
        assert_eq!(
            Domain::parse("[IPv6:::ffff:192.0.2.1]")
                .unwrap()
                .to_string(),
            "[IPv6:::ffff:192.0.2.1]"
        );
    }
}
