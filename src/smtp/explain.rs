//! Explanations of SMTP replies for students: what a reply code and an enhanced status code
//! mean (RFC 5321 4.2.2 and 4.2.3, RFC 3463 and the IANA registry of RFC 5248), and the record
//! a session attaches to every reply it sends saying why it sent it.
//!
//! This module does not choose replies; sessions do, and they write the `why`.

use super::reply::{EnhancedStatus, Reply};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Why a reply was sent: the meaning of its codes, the reason in this situation, and the RFC
/// section the rule comes from.
///
/// The texts are shared or static where they can be: a busy server explains the same few
/// replies over and over, and a simulation records every explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// What the reply code (and enhanced status code) mean in general.
    pub meaning: Rc<str>,
    /// Why this server sent it here; where real servers commonly differ, what they do.
    pub why: Cow<'static, str>,
    /// Where the rule is written, e.g. "RFC 5321 4.1.4".
    pub rfc: Cow<'static, str>,
}

impl Explanation {
    /// An explanation of `reply` with its meaning taken from the table.
    pub fn for_reply(
        reply: &Reply,
        why: impl Into<Cow<'static, str>>,
        rfc: impl Into<Cow<'static, str>>,
    ) -> Self {
        Explanation {
            meaning: shared_meaning(reply.code, reply.enhanced),
            why: why.into(),
            rfc: rfc.into(),
        }
    }
}

/// Most distinct meanings remembered; a reply beyond them gets its meaning written afresh.
const MEANINGS_REMEMBERED_MAX: usize = 1024;

/// Meanings by (code, enhanced status).
type MeaningCache = RefCell<BTreeMap<(u16, Option<EnhancedStatus>), Rc<str>>>;

thread_local! {
    /// Meanings already written, by (code, enhanced status). The set of replies a server
    /// sends is small, so this stays small; it only saves formatting the same text again.
    static MEANINGS: MeaningCache = const { RefCell::new(BTreeMap::new()) };
}

/// [`meaning`], shared between all replies with the same codes.
pub fn shared_meaning(code: u16, enhanced: Option<EnhancedStatus>) -> Rc<str> {
    MEANINGS.with(|cache| {
        if let Some(text) = cache.borrow().get(&(code, enhanced)) {
            return Rc::clone(text);
        }
        let text: Rc<str> = Rc::from(meaning(code, enhanced));
        let mut cache = cache.borrow_mut();
        if cache.len() < MEANINGS_REMEMBERED_MAX {
            cache.insert((code, enhanced), Rc::clone(&text));
        }
        text
    })
}

/// The meaning of a three-digit reply code (RFC 5321 4.2.2, 4.2.3; RFC 4954 for 334, 235, 530,
/// 535; RFC 7504 for 521; RFC 6531 for 553 with 5.6.7).
pub fn code_meaning(code: u16) -> &'static str {
    match code {
        211 => "System status or help reply",
        214 => "Help message",
        220 => "Service ready",
        221 => "Service closing transmission channel",
        235 => "Authentication succeeded",
        250 => "Requested mail action okay, completed",
        251 => "User not local; will forward",
        252 => "Cannot VRFY user, but will accept message and attempt delivery",
        334 => "Authentication challenge: send the next (base64) response",
        354 => "Start mail input; end with <CRLF>.<CRLF>",
        421 => "Service not available, closing transmission channel",
        450 => "Requested mail action not taken: mailbox unavailable (e.g., mailbox busy or temporarily blocked for policy reasons)",
        451 => "Requested action aborted: local error in processing",
        452 => "Requested action not taken: insufficient system storage",
        455 => "Server unable to accommodate parameters",
        500 => "Syntax error, command unrecognized (or line too long)",
        501 => "Syntax error in parameters or arguments",
        502 => "Command not implemented",
        503 => "Bad sequence of commands",
        504 => "Command parameter not implemented",
        521 => "Server does not accept mail",
        530 => "Authentication required",
        535 => "Authentication credentials invalid",
        550 => "Requested action not taken: mailbox unavailable or refused by policy",
        551 => "User not local",
        552 => "Requested mail action aborted: exceeded storage allocation",
        553 => "Requested action not taken: mailbox name not allowed",
        554 => "Transaction failed (or, on connection, no SMTP service here)",
        555 => "MAIL FROM/RCPT TO parameters not recognized or not implemented",
        556 => "Domain does not accept mail (RFC 7504)",
        _ => match code / 100 {
            2 => "Success",
            3 => "Intermediate: go on",
            4 => "Transient failure: try again later",
            _ => "Permanent failure: do not retry as is",
        },
    }
}

/// The meaning of an enhanced status code's subject and detail (RFC 3463 3, RFC 5248
/// registry; 5.6.7 and 5.6.9 from RFC 6531, 5.7.8 from RFC 4954, 5.1.10 from RFC 7505).
pub fn enhanced_meaning(status: EnhancedStatus) -> &'static str {
    match (status.subject, status.detail) {
        (0, 0) => "Other undefined status",
        (1, 0) => "Other address status",
        (1, 1) => "Bad destination mailbox address (no such user)",
        (1, 2) => "Bad destination system address",
        (1, 3) => "Bad destination mailbox address syntax",
        (1, 4) => "Destination mailbox address ambiguous",
        (1, 5) => "Destination address valid",
        (1, 6) => "Destination mailbox has moved",
        (1, 7) => "Bad sender's mailbox address syntax",
        (1, 8) => "Bad sender's system address",
        (1, 10) => "Recipient address has null MX",
        (2, 0) => "Other or undefined mailbox status",
        (2, 1) => "Mailbox disabled, not accepting messages",
        (2, 2) => "Mailbox full",
        (2, 3) => "Message length exceeds administrative limit",
        (2, 4) => "Mailing list expansion problem",
        (3, 0) => "Other or undefined mail system status",
        (3, 1) => "Mail system full",
        (3, 2) => "System not accepting network messages",
        (3, 3) => "System not capable of selected features",
        (3, 4) => "Message too big for system",
        (3, 5) => "System incorrectly configured",
        (4, 0) => "Other or undefined network or routing status",
        (4, 1) => "No answer from host",
        (4, 2) => "Bad connection",
        (4, 3) => "Directory server failure",
        (4, 4) => "Unable to route",
        (4, 5) => "Mail system congestion",
        (4, 6) => "Routing loop detected",
        (4, 7) => "Delivery time expired",
        (5, 0) => "Other or undefined protocol status",
        (5, 1) => "Invalid command",
        (5, 2) => "Syntax error",
        (5, 3) => "Too many recipients",
        (5, 4) => "Invalid command arguments",
        (5, 5) => "Wrong protocol version",
        (5, 6) => "Authentication exchange line is too long",
        (6, 0) => "Other or undefined media error",
        (6, 1) => "Media not supported",
        (6, 2) => "Conversion required and prohibited",
        (6, 3) => "Conversion required but not supported",
        (6, 4) => "Conversion with loss performed",
        (6, 5) => "Conversion failed",
        (6, 7) => "Non-ASCII addresses not permitted for that sender/recipient",
        (6, 9) => "UTF-8 header message cannot be transferred to one or more recipients",
        (7, 0) => "Other or undefined security status",
        (7, 1) => "Delivery not authorized, message refused",
        (7, 2) => "Mailing list expansion prohibited",
        (7, 3) => "Security conversion required but not possible",
        (7, 4) => "Security features not supported",
        (7, 5) => "Cryptographic failure",
        (7, 6) => "Cryptographic algorithm not supported",
        (7, 7) => "Message integrity failure",
        (7, 8) => "Authentication credentials invalid",
        (7, 9) => "Authentication mechanism is too weak",
        (7, 11) => "Encryption required for requested authentication mechanism",
        _ => match status.subject {
            0 => "Other or undefined status",
            1 => "Addressing status",
            2 => "Mailbox status",
            3 => "Mail system status",
            4 => "Network and routing status",
            5 => "Mail delivery protocol status",
            6 => "Message content or media status",
            7 => "Security or policy status",
            _ => "Unregistered status",
        },
    }
}

/// The meaning of a reply: the code's, with what its first two digits say (RFC 5321 4.2.1),
/// followed by the enhanced code's when there is one.
pub fn meaning(code: u16, enhanced: Option<EnhancedStatus>) -> String {
    let class = match code / 100 {
        2 => "success",
        3 => "intermediate",
        4 => "temporary failure",
        _ => "permanent failure",
    };
    // The second digit's categories; x3z and x4z are unspecified.
    let category = match code / 10 % 10 {
        0 => "; x0z: syntax",
        1 => "; x1z: information",
        2 => "; x2z: the connection",
        5 => "; x5z: the mail system",
        _ => "",
    };
    match enhanced {
        None => format!("{code}: {} ({class}{category})", code_meaning(code)),
        Some(status) => format!(
            "{code}: {} ({class}{category}); {status}: {}",
            code_meaning(code),
            enhanced_meaning(status)
        ),
    }
}

/// What each extension keyword of an EHLO reply lets the client do, a sentence each in the
/// reply's order, then what the usual ones it does not list mean for the client. `keywords`
/// are the reply's lines after the first (which names the server), without their code.
pub fn ehlo_keywords(keywords: &[&str]) -> Vec<String> {
    let offers = |name: &str| {
        keywords.iter().any(|line| {
            line.split(' ')
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case(name))
        })
    };
    let mut said: Vec<String> = keywords
        .iter()
        .map(|line| {
            let (keyword, parameters) = line.split_once(' ').unwrap_or((line, ""));
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => "PIPELINING: the client may send several commands (MAIL, RCPT, \
                     DATA) without waiting for each reply (RFC 2920)."
                    .to_string(),
                "SIZE" if parameters.trim() == "0" => {
                    format!("{line}: there is no fixed limit on a message's size (RFC 1870 4).")
                }
                "SIZE" if parameters.trim().is_empty() => "SIZE: the client may declare a \
                     message's size (MAIL FROM:<...> SIZE=), but the server gives no limit \
                     here (RFC 1870 4)."
                    .to_string(),
                "SIZE" => format!(
                    "{line}: the largest message it takes, in octets; a client that declares a \
                     larger one (MAIL FROM:<...> SIZE=) is refused at once, before sending it \
                     (RFC 1870)."
                ),
                "8BITMIME" => "8BITMIME: the message body may hold octets above 127 (MAIL \
                     FROM:<...> BODY=8BITMIME, RFC 6152); header fields stay ASCII unless \
                     SMTPUTF8 is used."
                    .to_string(),
                "SMTPUTF8" => "SMTPUTF8: addresses and header fields may be UTF-8 (MAIL \
                     FROM:<...> SMTPUTF8, RFC 6531)."
                    .to_string(),
                "ENHANCEDSTATUSCODES" => "ENHANCEDSTATUSCODES: every later 2xx, 4xx or \
                     5xx reply (but those to EHLO and HELO) starts its text with a status code \
                     class.subject.detail, such as 5.1.1; the go-aheads 354 and 334 do not \
                     (RFC 2034 3, RFC 3463)."
                    .to_string(),
                "CHUNKING" => "CHUNKING: the message may go in BDAT chunks of a stated size \
                     instead of with DATA (RFC 3030)."
                    .to_string(),
                "DSN" => "DSN: the sender may ask for delivery status notifications: NOTIFY \
                     (NEVER, or on SUCCESS, FAILURE, DELAY) and ORCPT on RCPT, RET (FULL or \
                     HDRS) and ENVID on MAIL (RFC 3461)."
                    .to_string(),
                "BINARYMIME" => "BINARYMIME: the message may be binary, sent with BDAT (RFC \
                     3030 3)."
                    .to_string(),
                "STARTTLS" => "STARTTLS: the client may turn the session into an encrypted one \
                     (RFC 3207)."
                    .to_string(),
                "AUTH" => {
                    format!("{line}: the client may log in, with these mechanisms (RFC 4954).")
                }
                _ => format!("{line}: an extension this explanation does not cover."),
            }
        })
        .collect();
    for (name, missing) in [
        (
            "PIPELINING",
            "No PIPELINING: the client waits for each reply before its next command (RFC 2920).",
        ),
        (
            "8BITMIME",
            "No 8BITMIME: the message must be 7-bit ASCII; 8-bit data must be encoded first, or \
             is not sent (RFC 6152 3).",
        ),
        (
            "SMTPUTF8",
            "No SMTPUTF8: addresses and header fields must be ASCII (RFC 6531 3.2).",
        ),
        (
            "CHUNKING",
            "No CHUNKING: the message goes with DATA (RFC 3030).",
        ),
    ] {
        if !offers(name) {
            said.push(missing.to_string());
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_keywords_are_said_in_the_replys_order_then_what_is_missing() {
        let said = ehlo_keywords(&["SIZE 0", "X-SHINY", "8BITMIME"]).join(" ");
        let size = said
            .find("SIZE 0: there is no fixed limit")
            .expect("SIZE 0");
        let shiny = said.find("X-SHINY: an extension").expect("unknown keyword");
        let eight = said
            .find("8BITMIME: the message body may hold")
            .expect("8BITMIME");
        assert!(size < shiny && shiny < eight, "{said}");
        assert!(
            said.contains("No PIPELINING") && said.contains("No CHUNKING"),
            "{said}"
        );
        assert!(!said.contains("No 8BITMIME"), "{said}");
        assert!(ehlo_keywords(&["pipelining"])[0].starts_with("PIPELINING: "));
        // SIZE without a number gives no limit, and does not say there is none (RFC 1870 4).
        let bare = &ehlo_keywords(&["SIZE"])[0];
        assert!(bare.starts_with("SIZE: the client may declare"), "{bare}");
    }

    #[test]
    fn meanings_known_answers() {
        assert_eq!(
            meaning(550, Some(EnhancedStatus::new(5, 1, 1))),
            "550: Requested action not taken: mailbox unavailable or refused by policy \
             (permanent failure; x5z: the mail system); 5.1.1: Bad destination mailbox \
             address (no such user)"
        );
        assert_eq!(
            meaning(220, None),
            "220: Service ready (success; x2z: the connection)"
        );
        assert_eq!(
            meaning(500, None),
            "500: Syntax error, command unrecognized (or line too long) (permanent failure; \
             x0z: syntax)"
        );
        assert_eq!(
            meaning(334, None),
            "334: Authentication challenge: send the next (base64) response (intermediate)"
        );
        assert_eq!(
            enhanced_meaning(EnhancedStatus::new(4, 7, 1)),
            "Delivery not authorized, message refused"
        );
        // The detail's meaning, not its subject's heading (RFC 3463 3.4, 3.5).
        for (subject, detail, said) in [
            (3, 2, "System not accepting network messages"),
            (4, 1, "No answer from host"),
            (4, 3, "Directory server failure"),
        ] {
            assert_eq!(
                enhanced_meaning(EnhancedStatus::new(4, subject, detail)),
                said
            );
        }
        assert_eq!(code_meaning(299), "Success");
        assert_eq!(
            enhanced_meaning(EnhancedStatus::new(5, 9, 99)),
            "Unregistered status"
        );
    }
}
