//! What a message's header fields are for, in a sentence each, with where the rule is: for a
//! student reading a message's outline field by field. The fields every message of the
//! simulation holds, those user agents commonly write (RFC 5322's, resending's, a read
//! receipt's request), the MIME and trace fields, and those that mailing lists and receiving
//! servers' checks write into messages a student may give as bytes.

/// A field's purpose, by its name (any case): `None` for a field this glossary does not hold.
pub fn field_purpose(name: &str) -> Option<&'static str> {
    let purpose = FIELD_PURPOSES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, purpose)| *purpose);
    purpose.or_else(|| {
        let private = name
            .get(..2)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("X-"));
        private.then_some(PRIVATE_FIELD)
    })
}

/// What a `Received:` field's `with` keyword says of the session the message came in
/// (RFC 3848 and RFC 6531 3.7.3, 4.3 name them; RFC 4356, MMS), by the keyword (any
/// case).
pub fn protocol_purpose(keyword: &str) -> Option<&'static str> {
    const PROTOCOLS: &[(&str, &str)] = &[
        ("SMTP", "HELO: SMTP without extensions"),
        ("ESMTP", "EHLO: SMTP with extensions"),
        ("ESMTPA", "EHLO, then AUTH"),
        ("ESMTPS", "EHLO, over TLS"),
        ("ESMTPSA", "EHLO, over TLS, then AUTH"),
        ("UTF8SMTP", "EHLO, with SMTPUTF8"),
        ("UTF8SMTPA", "EHLO, with SMTPUTF8, then AUTH"),
        ("UTF8SMTPS", "EHLO, over TLS, with SMTPUTF8"),
        ("UTF8SMTPSA", "EHLO, over TLS, with SMTPUTF8, then AUTH"),
        ("LMTP", "LMTP, to a local delivery agent"),
        ("LMTPA", "LMTP, then AUTH"),
        ("LMTPS", "LMTP, over TLS"),
        ("LMTPSA", "LMTP, over TLS, then AUTH"),
        ("UTF8LMTP", "LMTP, with SMTPUTF8"),
        ("UTF8LMTPA", "LMTP, with SMTPUTF8, then AUTH"),
        ("UTF8LMTPS", "LMTP, over TLS, with SMTPUTF8"),
        ("UTF8LMTPSA", "LMTP, over TLS, with SMTPUTF8, then AUTH"),
        ("MMS", "from a phone network's Multimedia Messaging Service"),
    ];
    PROTOCOLS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(keyword))
        .map(|(_, words)| *words)
}

/// Said of a field named `X-...`.
const PRIVATE_FIELD: &str = "A field of some program's own, not a standard one: RFC 822 left \
    names starting X- for such fields, and RFC 6648 asks new ones not to use the prefix.";

const FIELD_PURPOSES: &[(&str, &str)] = &[
    (
        "Return-Path",
        "The envelope's sender (MAIL FROM) as the delivering server saw it: where bounces go. \
         Written by the server that delivers the message, in place of any before (RFC 5321 \
         4.4).",
    ),
    (
        "Received",
        "A trace field: each server that takes the message writes one above the others, \
         naming where it came from, the server itself, the protocol, an id and the time (a \
         host that writes a notice puts one of its own on it). Read from the bottom up, they \
         are the message's path (RFC 5321 4.4).",
    ),
    (
        "Delivered-To",
        "The address of the mailbox the message was delivered into, written by the host that \
         delivered it. This simulation writes it under that host's own Received: field, so \
         that Return-Path: and the Received: fields stay one trace block; Postfix and Dovecot \
         write it above (RFC 9228; RFC 5322 3.6.7).",
    ),
    (
        "Date",
        "When the message's author (its user agent, or the host that wrote a notice) sent it \
         on its way, by its own clock, not when it arrived (RFC 5322 3.6.1); a submission \
         server adds one where it is missing (RFC 6409 8.2).",
    ),
    (
        "From",
        "The author, as the reader sees it: not the envelope's sender (MAIL FROM), which may \
         differ (RFC 5322 3.6.2).",
    ),
    (
        "Sender",
        "Who sent the message for its author, where that is someone else (RFC 5322 3.6.2).",
    ),
    (
        "Reply-To",
        "Where replies should go, where that is not the author (RFC 5322 3.6.2).",
    ),
    (
        "To",
        "The main recipients, as the reader sees them; where the message goes is decided by \
         the envelope's RCPT TO commands, not by this field (RFC 5322 3.6.3).",
    ),
    (
        "Cc",
        "Further recipients, shown to everyone (RFC 5322 3.6.3).",
    ),
    (
        "Bcc",
        "Recipients hidden from the others: the user agent sends to them in the envelope and \
         leaves this field out of the message, or empty (RFC 5322 3.6.3).",
    ),
    (
        "Message-ID",
        "The message's unique identifier, which every copy keeps and replies name (RFC 5322 \
         3.6.4); a submission server writes one where the user agent did not (RFC 6409 \
         8.3).",
    ),
    (
        "In-Reply-To",
        "The Message-ID of the message this one answers (RFC 5322 3.6.4).",
    ),
    (
        "References",
        "The Message-IDs of the conversation so far, for threading (RFC 5322 3.6.4).",
    ),
    (
        "Subject",
        "What the message is about, as its author (a person, or the program that wrote a \
         notice) put it (RFC 5322 3.6.5).",
    ),
    (
        "Comments",
        "Remarks on the message's text, from its author (RFC 5322 3.6.5).",
    ),
    (
        "Keywords",
        "Words or phrases about the message, separated by commas, for the reader to sort or \
         find it by (RFC 5322 3.6.5).",
    ),
    (
        "Resent-Date",
        "When someone sent the message on again, as it was (a mail program's Resend or \
         Redirect). Each resending adds a block of Resent- fields above the others; they are \
         for information only, and replies do not use them (RFC 5322 3.6.6).",
    ),
    (
        "Resent-From",
        "Who sent the message on again, as it was (RFC 5322 3.6.6).",
    ),
    (
        "Resent-Sender",
        "Who sent the message on again for the person in Resent-From:, where that is someone \
         else (RFC 5322 3.6.6).",
    ),
    (
        "Resent-To",
        "The main recipients the message was sent on to again; the envelope's RCPT TO \
         commands decide where it goes (RFC 5322 3.6.6).",
    ),
    (
        "Resent-Cc",
        "Further recipients the message was sent on to again (RFC 5322 3.6.6).",
    ),
    (
        "Resent-Bcc",
        "Hidden recipients of the message sent on again, left out or empty as for Bcc: \
         (RFC 5322 3.6.6).",
    ),
    (
        "Resent-Message-ID",
        "The identifier of this resending of the message; the message keeps its own \
         Message-ID: (RFC 5322 3.6.6).",
    ),
    (
        "MIME-Version",
        "Says that the message is written by MIME's rules, version 1.0 (RFC 2045 4).",
    ),
    (
        "Content-Type",
        "The body's media type (text/plain, multipart/mixed, image/png, ...) and its \
         parameters: the charset of text, the boundary line between a multipart's parts (RFC \
         2045 5, RFC 2046).",
    ),
    (
        "Content-Transfer-Encoding",
        "How the body is written for mail: as it is (7bit, 8bit) or encoded into lines of \
         ASCII (quoted-printable, base64) (RFC 2045 6).",
    ),
    (
        "Content-ID",
        "A part's identifier, unique in the world as a Message-ID is, by which another part \
         refers to it: an HTML body shows an image part with cid: and this identifier (RFC \
         2045 7, RFC 2392).",
    ),
    (
        "Content-Description",
        "A few words on what a part holds, for the reader (RFC 2045 8).",
    ),
    (
        "Content-Language",
        "The language or languages of a part (or of the whole message), as language tags \
         such as en or fr-CA, commas between them (RFC 3282 2).",
    ),
    (
        "Content-Disposition",
        "Whether a part is shown in the message or is an attachment, and its file name (RFC \
         2183).",
    ),
    (
        "Auto-Submitted",
        "Says whether a program wrote the message: no for a person; auto-replied for a \
         program's answer to another message, as a bounce is; auto-generated for any other. \
         No program should answer a message so marked (all but no) automatically, which \
         could loop (RFC 3834 5).",
    ),
    (
        "Disposition-Notification-To",
        "Asks the recipient's mail program for a message disposition notification (a read \
         receipt, though it may only say the message was shown), to these addresses: a \
         request only, which the program is free to leave unanswered (RFC 8098 2.1).",
    ),
    (
        "List-Id",
        "Names the mailing list that sent the message on, so that a mail program can sort \
         and filter its messages (RFC 2919).",
    ),
    (
        "List-Unsubscribe",
        "How to leave the mailing list that sent the message: one or more mailto: or web \
         addresses, the mail program using the first it can (RFC 2369 3.2).",
    ),
    (
        "List-Unsubscribe-Post",
        "Says that the mail program may unsubscribe by sending a POST to List-Unsubscribe:'s \
         https address itself, with no page for the reader to visit (RFC 8058).",
    ),
    (
        "List-Help",
        "Where to find help on the mailing list that sent the message (RFC 2369 3.1).",
    ),
    (
        "List-Subscribe",
        "How to join the mailing list that sent the message (RFC 2369 3.3).",
    ),
    (
        "List-Post",
        "Where to write to post to the mailing list, or NO where members cannot (RFC 2369 \
         3.4).",
    ),
    (
        "List-Owner",
        "How to reach the people who run the mailing list (RFC 2369 3.5).",
    ),
    (
        "List-Archive",
        "Where the mailing list's past messages are kept (RFC 2369 3.6).",
    ),
    (
        "Authentication-Results",
        "What a receiving server found when it checked the message's origin (SPF, DKIM, \
         DMARC), named by that server, for the reader's program to use. A receiving server \
         that makes these checks takes out such fields that claim its name but came from \
         outside, since anyone could write one; the servers here make none, and leave them \
         as they came (RFC 8601 2, 5).",
    ),
    (
        "Received-SPF",
        "The result of a receiving server's SPF check: whether the sending host may send \
         mail for the envelope sender's domain (or the HELO name's), by that domain's DNS \
         record: pass, fail, softfail, neutral and others (RFC 7208 9.1).",
    ),
    (
        "DKIM-Signature",
        "The sending domain's signature over some fields and the body, which a receiver \
         checks with a key published in the DNS (RFC 6376).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_found_in_any_case_and_an_unknown_one_is_not() {
        assert_eq!(field_purpose("received"), field_purpose("Received"));
        assert!(
            field_purpose("RETURN-PATH").is_some_and(|purpose| purpose.contains("RFC 5321 4.4"))
        );
        assert_eq!(field_purpose("x-mailer"), Some(PRIVATE_FIELD));
        assert_eq!(field_purpose("Thread-Topic"), None);
        assert!(field_purpose("list-id").is_some_and(|purpose| purpose.contains("RFC 2919")));
        assert_eq!(field_purpose("X"), None);
        assert_eq!(field_purpose(""), None);
        assert_eq!(field_purpose("é"), None);
    }

    #[test]
    fn every_protocol_the_servers_write_is_told() {
        use crate::smtp::trace::WithProtocol;
        for (extended, tls, authenticated, smtputf8) in
            (0..16).map(|bits| (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0))
        {
            let keyword =
                WithProtocol::for_session(extended, tls, authenticated, smtputf8).keyword();
            let told = protocol_purpose(keyword).unwrap_or_default();
            assert!(told.starts_with(if extended || smtputf8 { "EHLO" } else { "HELO" }));
            assert_eq!(
                told.contains("TLS"),
                tls && (extended || smtputf8),
                "{keyword}"
            );
            assert_eq!(
                told.contains("AUTH"),
                authenticated && (extended || smtputf8),
                "{keyword}"
            );
            assert_eq!(told.contains("SMTPUTF8"), smtputf8, "{keyword}");
        }
        assert_eq!(protocol_purpose("esmtpa"), protocol_purpose("ESMTPA"));
        assert_eq!(
            protocol_purpose("utf8lmtpsa"),
            protocol_purpose("UTF8LMTPSA")
        );
        assert!(protocol_purpose("UTF8LMTPSA").is_some_and(|told| told.starts_with("LMTP")));
        assert_eq!(protocol_purpose("FOO"), None);
    }

    #[test]
    fn each_purpose_is_one_sentence_or_two_with_its_rfc() {
        for (name, purpose) in FIELD_PURPOSES {
            assert!(purpose.ends_with(")."), "{name}");
            assert!(purpose.contains("RFC "), "{name}");
            assert!(!purpose.contains("  "), "{name}");
        }
        let names: std::collections::BTreeSet<String> = FIELD_PURPOSES
            .iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect();
        assert_eq!(names.len(), FIELD_PURPOSES.len(), "a field named twice");
    }
}
