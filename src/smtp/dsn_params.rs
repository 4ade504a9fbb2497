//! The parameters of the DSN extension (RFC 3461), shared by the client, which sends them,
//! and the server, which reads them: `NOTIFY` and `ORCPT` on RCPT, `RET` and `ENVID` on
//! MAIL, and xtext (RFC 3461 4), the encoding `ENVID` and `ORCPT` travel in.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The `NOTIFY` value (RFC 3461 4.1): never, or on any of success, failure and delay. Written
/// in a scenario as on the wire: `"NEVER"`, `"SUCCESS,DELAY"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Notify {
    Never,
    On {
        success: bool,
        failure: bool,
        delay: bool,
    },
}

impl Notify {
    /// Reads `NEVER`, or a comma-separated list of `SUCCESS`, `FAILURE` and `DELAY`, in any
    /// case (RFC 3461 4.1: NEVER stands alone).
    pub fn parse(text: &str) -> Result<Notify, String> {
        if text.eq_ignore_ascii_case("NEVER") {
            return Ok(Notify::Never);
        }
        let (mut success, mut failure, mut delay) = (false, false, false);
        for word in text.split(',') {
            let flag = if word.eq_ignore_ascii_case("SUCCESS") {
                &mut success
            } else if word.eq_ignore_ascii_case("FAILURE") {
                &mut failure
            } else if word.eq_ignore_ascii_case("DELAY") {
                &mut delay
            } else if word.eq_ignore_ascii_case("NEVER") {
                return Err("NEVER cannot be combined with other values (RFC 3461 4.1)".into());
            } else {
                return Err(format!(
                    "{word:?} is not a NOTIFY value: NEVER, or any of SUCCESS, FAILURE and DELAY \
                     separated by commas (RFC 3461 4.1)"
                ));
            };
            if *flag {
                return Err(format!("{word} is given twice (RFC 3461 4.1)"));
            }
            *flag = true;
        }
        Ok(Notify::On {
            success,
            failure,
            delay,
        })
    }

    /// The value as sent: `NEVER`, or the conditions in the RFC's order.
    pub fn wire(self) -> String {
        match self {
            Notify::Never => "NEVER".to_string(),
            Notify::On {
                success,
                failure,
                delay,
            } => [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, word)| *word)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

impl TryFrom<String> for Notify {
    type Error = String;

    fn try_from(text: String) -> Result<Notify, String> {
        Notify::parse(&text)
    }
}

impl From<Notify> for String {
    fn from(notify: Notify) -> String {
        notify.wire()
    }
}

/// The `RET` value (RFC 3461 4.3), written in a scenario as on the wire, in any case as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DsnReturn {
    /// `FULL`: the whole message.
    Full,
    /// `HDRS`: its header only.
    Headers,
}

impl TryFrom<String> for DsnReturn {
    type Error = String;

    fn try_from(text: String) -> Result<DsnReturn, String> {
        DsnReturn::read(&text)
    }
}

impl From<DsnReturn> for String {
    fn from(ret: DsnReturn) -> String {
        ret.wire().to_string()
    }
}

impl DsnReturn {
    /// Reads `FULL` or `HDRS`, in any case.
    pub fn parse(text: &str) -> Option<DsnReturn> {
        if text.eq_ignore_ascii_case("FULL") {
            Some(DsnReturn::Full)
        } else if text.eq_ignore_ascii_case("HDRS") {
            Some(DsnReturn::Headers)
        } else {
            None
        }
    }

    /// As [`DsnReturn::parse`], with what is wrong when it is neither.
    pub fn read(text: &str) -> Result<DsnReturn, String> {
        DsnReturn::parse(text)
            .ok_or_else(|| format!("{text:?} is neither FULL nor HDRS (RFC 3461 4.3)"))
    }

    pub fn wire(self) -> &'static str {
        match self {
            DsnReturn::Full => "FULL",
            DsnReturn::Headers => "HDRS",
        }
    }
}

/// Longest `ENVID` value, as sent (RFC 3461 4.4).
pub const ENVID_MAX_CHARS: usize = 100;

/// What keeps a sender from choosing `envid` as its ENVID, in words that start with "ENVID":
/// what keeps it off the wire ([`envelope_id_problem`]), or a space at its start or end,
/// which a notice could not give back (RFC 3464 2.2.1 writes it after a field's colon, where
/// readers drop the spaces around a value). Only for a sender's own choice: an MTA passes on
/// an ENVID as it came (RFC 3461 5.2).
pub fn chosen_envelope_id_problem(envid: &str) -> Option<String> {
    if let Some(problem) = envelope_id_problem(envid) {
        return Some(problem);
    }
    (envid.starts_with(' ') || envid.ends_with(' ')).then(|| {
        "ENVID begins or ends with a space, which the notices could not give back: they quote \
         it after a field's colon, where a reader drops the spaces around a value (RFC 3464 \
         2.2.1)"
            .into()
    })
}

/// What keeps `envid` from being sent as an ENVID (RFC 3461 4.4), in words that start with
/// "ENVID": it is empty, holds what is not printable ASCII, or is too long as xtext.
pub fn envelope_id_problem(envid: &str) -> Option<String> {
    if envid.is_empty() {
        return Some("ENVID is empty: it names the message for its sender".into());
    }
    if let Some(c) = envid.chars().find(|c| !(' '..='~').contains(c)) {
        return Some(format!(
            "ENVID holds {}: an ENVID is printable ASCII, a space included (RFC 3461 4.4)",
            character_named(c)
        ));
    }
    let sent = xtext(envid).len();
    (sent > ENVID_MAX_CHARS).then(|| {
        format!(
            "ENVID is {sent} characters as sent in xtext (\"+\", \"=\" and a space take three \
             each), more than {ENVID_MAX_CHARS} (RFC 3461 4.4)"
        )
    })
}

/// `c` in words a student can tell apart: a tab, a no-break space or another control or
/// space character by name and code point, any other as itself and its code point.
fn character_named(c: char) -> String {
    match c {
        '\t' => "a tab (U+0009)".into(),
        '\u{a0}' => "a no-break space (U+00A0)".into(),
        c if c.is_control() => format!("a control character (U+{:04X})", u32::from(c)),
        c if c.is_whitespace() => format!("a space character (U+{:04X})", u32::from(c)),
        c => format!("\u{201c}{c}\u{201d} (U+{:04X})", u32::from(c)),
    }
}

/// `text` as xtext (RFC 3461 4): `+`, `=` and any octet outside `!`..`~` become `+` and two
/// upper-case hex digits.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "+{byte:02X}");
        }
    }
    out
}

/// `address` in RFC 6533 3's utf-8-addr-xtext form, the 7-bit form of an internationalized
/// address: a character outside QCHAR (printable ASCII but `+`, `=` and `\`) becomes
/// `\x{HEX}`, upper-case hex of its code point, so `jörg@b.example` is `j\x{F6}rg@b.example`.
/// Holding neither `+` nor `=`, it is xtext as it stands.
pub fn utf8_address_xtext(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    for c in address.chars() {
        if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
            out.push(c);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
        }
    }
    out
}

/// The address RFC 6533 3's utf-8-addr-xtext form stands for, each `\x{HEX}` the character
/// it names, for people to read: `j\x{F6}rg@b.example` is `jörg@b.example`. What is not such
/// an escape (no closing brace, no hex, a number that is no character) stays as written.
pub fn utf8_address_from_xtext(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find("\\x{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let named = after.find('}').and_then(|end| {
            let hex = &after[..end];
            if !(1..=6).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let named = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)?;
            Some((named, end))
        });
        match named {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..at + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `ORCPT` value a client sends for `address` (RFC 3461 4.2): `rfc822;` and the address
/// in xtext, or for an address that is not ASCII `utf-8;` and its utf-8-addr-xtext form (RFC
/// 6533 3, which any server may take, SMTPUTF8 or not). None when that is longer than
/// [`ORCPT_MAX_CHARS`] (an address of many `+` or non-ASCII characters): a server could only
/// refuse the RCPT over it.
pub fn original_recipient_parameter(address: &str) -> Option<String> {
    let value = if address.is_ascii() {
        ["rfc822;", &xtext(address)].concat()
    } else {
        ["utf-8;", &utf8_address_xtext(address)].concat()
    };
    (value.len() <= ORCPT_MAX_CHARS).then_some(value)
}

/// Longest `ORCPT` value, as sent (RFC 3461 3: the RCPT line may grow by 500 characters for
/// NOTIFY and ORCPT).
pub const ORCPT_MAX_CHARS: usize = 500;

/// Reads xtext (RFC 3461 4): `+` and two upper-case hex digits stand for an octet, any other
/// character from `!` to `~` but `=` for itself. None when it is not xtext.
pub fn xtext_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'+' {
            let hex = |b: u8| match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'A'..=b'F' => Some(b - b'A' + 10),
                _ => None,
            };
            let high = hex(*bytes.get(i + 1)?)?;
            let low = hex(*bytes.get(i + 2)?)?;
            out.push(high * 16 + low);
            i += 3;
        } else if (b'!'..=b'~').contains(&byte) && byte != b'=' {
            out.push(byte);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

/// Whether every octet is printable ASCII, space included: what RFC 3461 4.2 and 4.4 ask of
/// an ORCPT address and an ENVID before their xtext encoding.
pub fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// The `ORCPT` value (RFC 3461 4.2): the address as the sender first gave it, with its type
/// (`rfc822` for an Internet address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalRecipient {
    pub address_type: String,
    /// Decoded from xtext.
    pub address: String,
}

impl OriginalRecipient {
    /// `TYPE;xtext`, as sent.
    pub fn wire(&self) -> String {
        format!("{};{}", self.address_type, xtext(&self.address))
    }

    /// Reads `TYPE;xtext`: the type an atom (RFC 3461 4.2, RFC 5322 3.2.3), the address
    /// printable ASCII once decoded. With `smtputf8` (the transaction's MAIL asked for it), a
    /// `utf-8` address may also hold UTF-8 itself, RFC 6533 3's utf-8-addr-unitext, which is
    /// kept in its 7-bit form, each such character as `\x{HEX}`: the same address, written as
    /// a notice's `message/delivery-status` and any next server can take it.
    pub fn parse(value: &str, smtputf8: bool) -> Result<OriginalRecipient, &'static str> {
        if value.len() > ORCPT_MAX_CHARS {
            return Err("it is longer than 500 characters (RFC 3461 3)");
        }
        let (address_type, encoded) = value
            .split_once(';')
            .ok_or("it has no \";\" between the address type and the address (RFC 3461 4.2)")?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if address_type.is_empty() || !address_type.chars().all(atext) {
            return Err("its address type is not an atom such as rfc822 (RFC 3461 4.2)");
        }
        let sevenbit;
        let encoded = if encoded.is_ascii() {
            encoded
        } else if !address_type.eq_ignore_ascii_case("utf-8") {
            return Err(
                "its address is not ASCII, which only the utf-8 address type may \
                        be (RFC 6533 3)",
            );
        } else if !smtputf8 {
            return Err(
                "its address is not ASCII, which a utf-8 address may be only when \
                        MAIL gave SMTPUTF8; without it, write each such character as \\x{HEX} \
                        (RFC 6533 3)",
            );
        } else {
            let mut out = String::with_capacity(encoded.len() + 8);
            for c in encoded.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
                }
            }
            // Passed on and quoted in this form, it must fit the parameter's length too.
            if address_type.len() + 1 + out.len() > ORCPT_MAX_CHARS {
                return Err(
                    "its address, written in the 7-bit form it is passed on and \
                            quoted in (\\x{HEX} for each character beyond ASCII), is longer \
                            than 500 characters (RFC 3461 3, RFC 6533 3)",
                );
            }
            sevenbit = out;
            &sevenbit
        };
        let address = xtext_decode(encoded).ok_or(
            "its address is not xtext: \"+\" and \"=\" are written +2B and +3D (RFC 3461 4)",
        )?;
        if address.is_empty() || !is_printable_ascii(&address) {
            return Err("its address is empty or not printable ASCII once decoded (RFC 3461 4.2)");
        }
        Ok(OriginalRecipient {
            address_type: address_type.to_string(),
            // Printable ASCII is UTF-8.
            address: String::from_utf8_lossy(&address).into_owned(),
        })
    }
}

/// What a sender asked of DSN for one recipient (RFC 3461 4.1, 4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientDsn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<OriginalRecipient>,
}

impl RecipientDsn {
    /// Whether a notice of `event` may go to the sender: as asked with NOTIFY, or, when
    /// nothing was asked, of a failure or a delay (RFC 3461 4.1: the server then notifies of
    /// failures, and of delays if it so chooses), never of success.
    pub fn wants(&self, event: NoticeEvent) -> bool {
        match self.notify {
            None => event != NoticeEvent::Success,
            Some(Notify::Never) => false,
            Some(Notify::On {
                success,
                failure,
                delay,
            }) => match event {
                NoticeEvent::Success => success,
                NoticeEvent::Failure => failure,
                NoticeEvent::Delay => delay,
            },
        }
    }
}

/// What a notice reports: the three conditions of NOTIFY (RFC 3461 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeEvent {
    /// Delivered, or relayed to a server that could not be asked for more.
    Success,
    Failure,
    Delay,
}
