//! Domain names as the simulated DNS stores and compares them: checked, lower-cased, absolute.
//!
//! This is not an IDNA implementation: a name with non-ASCII characters is refused and the
//! author is asked for its A-label (`xn--...`) form.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest label, in octets (RFC 1035 2.3.4).
pub const LABEL_MAX_OCTETS: usize = 63;

/// Longest name in wire form, in octets, length octets and the root's zero octet included
/// (RFC 1035 2.3.4). In text without the final dot that leaves 253 characters.
pub const NAME_MAX_WIRE_OCTETS: usize = 255;

/// A checked domain name in canonical text form: lower case (names compare without regard to
/// case, RFC 4343), absolute, always written with its final dot (`mx1.example.org.`); the
/// root is `.`.
///
/// Accepted characters are letters, digits, `-` and `_` (the last for names like
/// `_dmarc.example.org`); a label neither starts nor ends with `-` (RFC 1123 2.1,
/// RFC 5321 4.1.2). The final dot is optional on input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

/// Why a text is not a domain name. Each variant carries the part that is wrong, so the message
/// can point at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameError {
    /// The text is empty (the root is written `.`).
    Empty,
    /// Two dots in a row, or a leading dot: a label of length zero is only the root's.
    EmptyLabel { name: String },
    /// A label longer than 63 octets (RFC 1035 2.3.4).
    LabelTooLong { label: String, length_octets: usize },
    /// The whole name is longer than 255 octets in wire form (RFC 1035 2.3.4).
    NameTooLong { length_octets: usize },
    /// A character that is not a letter, digit, `-` or `_`.
    BadCharacter { label: String, character: char },
    /// A label that starts or ends with `-` (RFC 1123 2.1).
    HyphenAtLabelEdge { label: String },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty (the root is written \".\")"),
            NameError::EmptyLabel { name } => write!(
                f,
                "\"{name}\" has an empty label (two dots in a row or a leading dot)"
            ),
            NameError::LabelTooLong {
                label,
                length_octets,
            } => write!(
                f,
                "label \"{label}\" is {length_octets} octets long; a label is at most \
                 {LABEL_MAX_OCTETS} (RFC 1035 2.3.4)"
            ),
            NameError::NameTooLong { length_octets } => write!(
                f,
                "the name is {length_octets} octets long in wire form; a name is at most \
                 {NAME_MAX_WIRE_OCTETS} (RFC 1035 2.3.4)"
            ),
            NameError::BadCharacter { label, character } => {
                if character.is_ascii() {
                    write!(
                        f,
                        "label \"{label}\" contains {character:?}; use letters, digits, '-' and '_'"
                    )
                } else {
                    write!(
                        f,
                        "label \"{label}\" contains the non-ASCII character {character:?}; write \
                         the name in its A-label form (xn--...)"
                    )
                }
            }
            NameError::HyphenAtLabelEdge { label } => write!(
                f,
                "label \"{label}\" starts or ends with '-' (RFC 1123 2.1)"
            ),
        }
    }
}

impl std::error::Error for NameError {}

impl DomainName {
    /// The root name `.`.
    pub fn root() -> DomainName {
        DomainName(".".to_owned())
    }

    /// Checks `text` and returns it in canonical form. The final dot is optional.
    pub fn parse(text: &str) -> Result<DomainName, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text == "." {
            return Ok(DomainName::root());
        }
        let without_dot = text.strip_suffix('.').unwrap_or(text);
        // Each label costs its length plus one length octet; the root adds one zero octet.
        let wire_octets = without_dot.len() + 2;
        if wire_octets > NAME_MAX_WIRE_OCTETS {
            return Err(NameError::NameTooLong {
                length_octets: wire_octets,
            });
        }
        for label in without_dot.split('.') {
            check_label(label, text)?;
        }
        let mut canonical = without_dot.to_ascii_lowercase();
        canonical.push('.');
        Ok(DomainName(canonical))
    }

    /// The canonical text, with its final dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text without its final dot (`example.org`), as SMTP writes domains; the root,
    /// which is nothing but that dot, stays ".".
    pub fn without_final_dot(&self) -> &str {
        if self.is_root() {
            return ".";
        }
        self.0.strip_suffix('.').unwrap_or(&self.0)
    }

    pub fn is_root(&self) -> bool {
        self.0 == "."
    }

    /// True if `self` equals `ancestor` or lies below it (`mx1.example.org.` is at or below
    /// `example.org.` and below `.`).
    pub fn is_at_or_below(&self, ancestor: &DomainName) -> bool {
        if ancestor.is_root() || self == ancestor {
            return true;
        }
        self.0
            .strip_suffix(ancestor.as_str())
            .is_some_and(|prefix| prefix.ends_with('.'))
    }

    /// Number of labels, the root not counted (`example.org.` has 2).
    pub fn label_count(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.without_final_dot().split('.').count()
        }
    }

    /// True if the name, read without its final dot, is an IPv4 or IPv6 address. Such a name
    /// is legal DNS syntax but never what an author meant as a host name.
    pub fn looks_like_ip_address(text: &str) -> bool {
        let bare = text.strip_suffix('.').unwrap_or(text);
        let bare = bare
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(bare);
        bare.parse::<std::net::IpAddr>().is_ok()
    }
}

fn check_label(label: &str, whole: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel {
            name: whole.to_owned(),
        });
    }
    if label.len() > LABEL_MAX_OCTETS {
        return Err(NameError::LabelTooLong {
            label: label.to_owned(),
            length_octets: label.len(),
        });
    }
    if let Some(character) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::BadCharacter {
            label: label.to_owned(),
            character,
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenAtLabelEdge {
            label: label.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainName {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        DomainName::parse(&text)
    }
}

impl From<DomainName> for String {
    fn from(name: DomainName) -> String {
        name.0
    }
}

impl std::str::FromStr for DomainName {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DomainName::parse(text)
    }
}
