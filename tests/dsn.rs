#![cfg(not(target_arch = "wasm32"))]
//! Delivery status notifications read back by an independent parser (mail-parser): the
//! multipart/report structure (RFC 6522), the delivery-status fields (RFC 3464), the returned
//! message, and the line rules of RFC 5322.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use smtp_lab::mail::dsn::{
    build_dsn, is_auto_submitted, Action, Diagnostic, DsnRequest, RecipientReport, ReturnContent,
};
use smtp_lab::smtp::reply::{EnhancedStatus, Reply};

const ORIGINAL: &[u8] = b"Date: Tue, 14 Nov 2023 22:13:00 +0000\r\n\
From: Alice <alice@example.org>\r\n\
To: bob@example.net, carol@example.com\r\n\
Subject: Lunch on Friday?\r\n\
Message-ID: <20231114.abc@client.example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Hi both,\r\n\
shall we?\r\n\
--not-a-boundary\r\n\
.\r\n";

fn failed(address: &str, reply: Reply, remote: &str) -> RecipientReport {
    RecipientReport {
        final_recipient: address.into(),
        original_recipient: None,
        original_recipient_type: None,
        action: Action::Failed,
        status: reply.enhanced.expect("the test replies carry a status"),
        remote_mta: Some(remote.into()),
        diagnostic: Some(Diagnostic::Smtp(reply)),
        last_attempt_date_unix_s: Some(1_700_000_030),
        not_tried_since_last_attempt: false,
        will_retry_until_unix_s: None,
        no_failure_notice: false,
    }
}

fn request() -> DsnRequest {
    DsnRequest {
        reporting_mta: "mail.example.org".into(),
        postmaster_address: "postmaster@mail.example.org".into(),
        envelope_sender: "alice@example.org".into(),
        original_message: ORIGINAL.to_vec(),
        return_content: ReturnContent::Full,
        arrival_date_unix_s: 1_700_000_000,
        date_unix_s: 1_700_000_060,
        utc_offset_min: 60,
        message_id_token: "20231114.dsn.1".into(),
        envelope_id: Some("QQ314159".into()),
        recipients: vec![failed(
            "bob@example.net",
            Reply::new(550, Some(EnhancedStatus::new(5, 1, 1)), "User unknown"),
            "mx.example.net",
        )],
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("the notice parses as a message")
}

/// The root's three sub-parts, as (content type "type/subtype", part).
fn report_parts<'a>(message: &'a Message<'a>) -> Vec<(String, &'a mail_parser::MessagePart<'a>)> {
    let PartType::Multipart(ids) = &message.parts[0].body else {
        panic!("the root is multipart");
    };
    ids.iter()
        .map(|&id| {
            let part = &message.parts[id as usize];
            let content_type = part.content_type().expect("each part has a Content-Type");
            let essence = format!(
                "{}/{}",
                content_type.ctype(),
                content_type.subtype().unwrap_or_default()
            );
            (essence.to_ascii_lowercase(), part)
        })
        .collect()
}

/// The raw body octets of a part, as they are in the notice.
fn raw_body<'a>(message: &'a Message<'a>, part: &mail_parser::MessagePart<'_>) -> &'a [u8] {
    &message.raw_message()[part.offset_body as usize..part.offset_end as usize]
}

/// The message/delivery-status body as field groups (RFC 3464 2.1): groups are separated by
/// empty lines, folded lines are unfolded, names are lowercased.
fn field_groups(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).expect("delivery-status is ASCII");
    assert!(text.is_ascii(), "delivery-status is ASCII");
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.split("\r\n") {
        if line.is_empty() {
            if !groups.last().expect("one group").is_empty() {
                groups.push(Vec::new());
            }
        } else if line.starts_with([' ', '\t']) {
            let (_, value) = groups
                .last_mut()
                .and_then(|g| g.last_mut())
                .expect("a continuation follows a field");
            value.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("a field has a colon");
            groups
                .last_mut()
                .expect("one group")
                .push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    group
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn delivery_status(message: &Message<'_>) -> Vec<Vec<(String, String)>> {
    let parts = report_parts(message);
    assert_eq!(parts[1].0, "message/delivery-status");
    field_groups(raw_body(message, parts[1].1))
}

fn boundary_of(message: &Message<'_>) -> String {
    message
        .content_type()
        .and_then(|ct| ct.attribute("boundary"))
        .expect("a boundary")
        .to_string()
}

fn assert_lines_ok(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "ends with CRLF");
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'\n' {
            assert!(index > 0 && bytes[index - 1] == b'\r', "bare LF at {index}");
        }
        if byte == b'\r' {
            assert_eq!(bytes.get(index + 1), Some(&b'\n'), "bare CR at {index}");
        }
    }
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
}

#[test]
fn top_level_is_a_delivery_status_report() {
    let bytes = build_dsn(&request());
    let message = parse(&bytes);
    let content_type = message.content_type().expect("Content-Type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("report"));
    assert_eq!(
        content_type.attribute("report-type"),
        Some("delivery-status")
    );
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    let from = message.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some("postmaster@mail.example.org"));
    assert_eq!(from.name(), Some("Mail Delivery System"));
    let to = message.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("alice@example.org"));
    assert_eq!(
        message.message_id(),
        Some("20231114.dsn.1@mail.example.org")
    );
    assert_eq!(
        message.date().map(|d| d.to_timestamp()),
        Some(1_700_000_060)
    );
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        message.header_raw("MIME-Version").map(str::trim),
        Some("1.0")
    );
    assert!(is_auto_submitted(&bytes));
    assert_lines_ok(&bytes);
}

#[test]
fn three_parts_with_the_right_types() {
    let bytes = build_dsn(&request());
    let message = parse(&bytes);
    let parts = report_parts(&message);
    let types: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["text/plain", "message/delivery-status", "message/rfc822"]
    );
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    assert!(text.contains("could not be delivered"));
    assert!(text.contains("<bob@example.net>"));
    assert!(text.contains("550 5.1.1 User unknown"));
    assert!(text.contains("What to do:"));
    assert!(matches!(parts[2].1.body, PartType::Message(_)));
}

#[test]
fn delivery_status_fields() {
    let bytes = build_dsn(&request());
    let message = parse(&bytes);
    let groups = delivery_status(&message);
    assert_eq!(groups.len(), 2, "per-message fields and one recipient");
    let per_message = &groups[0];
    assert_eq!(
        field(per_message, "Reporting-MTA"),
        Some("dns; mail.example.org")
    );
    assert_eq!(field(per_message, "Original-Envelope-Id"), Some("QQ314159"));
    assert_eq!(
        field(per_message, "Arrival-Date"),
        Some("Tue, 14 Nov 2023 23:13:20 +0100")
    );
    let recipient = &groups[1];
    assert_eq!(
        field(recipient, "Final-Recipient"),
        Some("rfc822; bob@example.net")
    );
    assert_eq!(field(recipient, "Original-Recipient"), None);
    assert_eq!(field(recipient, "Action"), Some("failed"));
    assert_eq!(field(recipient, "Status"), Some("5.1.1"));
    assert_eq!(field(recipient, "Remote-MTA"), Some("dns; mx.example.net"));
    assert_eq!(
        field(recipient, "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 User unknown")
    );
    assert_eq!(
        field(recipient, "Last-Attempt-Date"),
        Some("Tue, 14 Nov 2023 23:13:50 +0100")
    );
    assert_eq!(field(recipient, "Will-Retry-Until"), None);
}

#[test]
fn the_mtas_own_finding_is_not_written_as_a_server_reply() {
    let mut r = request();
    r.recipients[0].remote_mta = None;
    r.recipients[0].status = EnhancedStatus::new(4, 4, 7);
    r.recipients[0].diagnostic = Some(Diagnostic::Local(
        "delivery time expired; last error: mx.example.net: connection refused".into(),
    ));
    let bytes = build_dsn(&r);
    let message = parse(&bytes);
    let groups = delivery_status(&message);
    assert_eq!(
        field(&groups[1], "Diagnostic-Code"),
        Some("X-SMTP-Lab; delivery time expired; last error: mx.example.net: connection refused")
    );
    assert_eq!(field(&groups[1], "Remote-MTA"), None);
    let parts = report_parts(&message);
    let text = one_line(&String::from_utf8_lossy(raw_body(&message, parts[0].1)));
    assert!(
        text.contains("The mail system found: delivery time expired"),
        "{text}"
    );
    assert!(!text.contains("answered"), "{text}");
}

#[test]
fn a_server_is_not_named_as_the_author_of_the_mtas_own_finding() {
    // The MTA reached mx.example.net, then refused the message itself: RFC 3464 2.3.6 reads
    // a Remote-MTA field as "that server issued the diagnostic", so there is none, while
    // the text for people still says which server it was.
    let mut r = request();
    r.recipients[0].status = EnhancedStatus::new(5, 6, 3);
    r.recipients[0].diagnostic = Some(Diagnostic::Local(
        "the server does not advertise 8BITMIME".into(),
    ));
    let bytes = build_dsn(&r);
    let message = parse(&bytes);
    let groups = delivery_status(&message);
    assert_eq!(field(&groups[1], "Remote-MTA"), None);
    assert_eq!(
        field(&groups[1], "Diagnostic-Code"),
        Some("X-SMTP-Lab; the server does not advertise 8BITMIME")
    );
    let parts = report_parts(&message);
    let text = one_line(&String::from_utf8_lossy(raw_body(&message, parts[0].1)));
    assert!(
        text.contains("The server it was going to: mx.example.net (it sent no such reply)"),
        "{text}"
    );
}

#[test]
fn original_message_is_returned_octet_for_octet() {
    let bytes = build_dsn(&request());
    let message = parse(&bytes);
    let parts = report_parts(&message);
    assert_eq!(raw_body(&message, parts[2].1), ORIGINAL);
    let PartType::Message(inner) = &parts[2].1.body else {
        panic!("message/rfc822 is read as a message");
    };
    assert_eq!(inner.subject(), Some("Lunch on Friday?"));
    assert_eq!(inner.message_id(), Some("20231114.abc@client.example.org"));
}

#[test]
fn headers_only() {
    let bytes = build_dsn(&DsnRequest {
        return_content: ReturnContent::Headers,
        ..request()
    });
    let message = parse(&bytes);
    let parts = report_parts(&message);
    assert_eq!(parts[2].0, "text/rfc822-headers");
    let header_end = ORIGINAL
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the original has a body")
        + 2;
    assert_eq!(raw_body(&message, parts[2].1), &ORIGINAL[..header_end]);
    assert!(!contains(&bytes, b"shall we?"), "the body is left out");
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    assert!(one_line(text).contains("not the whole message"));
    assert_lines_ok(&bytes);
}

/// A header section that cannot go as it is (a line over 998 octets, a NUL) goes back as
/// text/rfc822-headers in quoted-printable, which decodes to the original octets.
#[test]
fn headers_unfit_to_go_as_they_are_go_back_quoted_printable() {
    let long_field = format!("X-Long: {}\r\n", "y".repeat(1200));
    let original = [
        long_field.as_bytes(),
        b"X-Nul: a\0b\r\n",
        &ORIGINAL[ORIGINAL.iter().position(|&b| b == b'\n').unwrap() + 1..],
    ]
    .concat();
    let bytes = build_dsn(&DsnRequest {
        original_message: original.clone(),
        return_content: ReturnContent::Headers,
        ..request()
    });
    assert_lines_ok(&bytes);
    let message = parse(&bytes);
    let parts = report_parts(&message);
    assert_eq!(parts[2].0, "text/rfc822-headers");
    let encoding = parts[2]
        .1
        .content_transfer_encoding()
        .expect("the part says its encoding");
    assert!(
        encoding.eq_ignore_ascii_case("quoted-printable"),
        "{encoding}"
    );
    let header_end = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the original has a body")
        + 2;
    let decoded = match &parts[2].1.body {
        PartType::Text(text) => text.as_bytes().to_vec(),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
        other => panic!("unexpected body {other:?}"),
    };
    assert_eq!(decoded, &original[..header_end]);
}

#[test]
fn delayed_notice_with_will_retry_until() {
    let mut delayed = request();
    delayed.return_content = ReturnContent::Headers;
    delayed.recipients = vec![RecipientReport {
        final_recipient: "bob@example.net".into(),
        original_recipient: None,
        original_recipient_type: None,
        action: Action::Delayed,
        status: EnhancedStatus::new(4, 4, 1),
        remote_mta: None,
        diagnostic: None,
        last_attempt_date_unix_s: Some(1_700_003_600),
        not_tried_since_last_attempt: false,
        will_retry_until_unix_s: Some(1_700_432_000),
        no_failure_notice: false,
    }];
    let bytes = build_dsn(&delayed);
    let message = parse(&bytes);
    assert_eq!(
        message.subject(),
        Some("Delayed Mail (still being retried)")
    );
    let groups = delivery_status(&message);
    let recipient = &groups[1];
    assert_eq!(field(recipient, "Action"), Some("delayed"));
    assert_eq!(field(recipient, "Status"), Some("4.4.1"));
    assert_eq!(
        field(recipient, "Will-Retry-Until"),
        Some("Sun, 19 Nov 2023 23:13:20 +0100")
    );
    assert_eq!(field(recipient, "Remote-MTA"), None);
    assert_eq!(field(recipient, "Diagnostic-Code"), None);
    let parts = report_parts(&message);
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    let text = one_line(text);
    assert!(text.contains("not been delivered yet"));
    assert!(text.contains("keep trying, at the latest until Sun, 19 Nov 2023 23:13:20 +0100"));
}

#[test]
fn a_recipient_not_tried_yet_has_no_last_attempt_date() {
    // RFC 3464 2.3.7: the field gives the last attempt; with none made, it is left out, in
    // the fields and in the text for people alike.
    let mut notice = request();
    notice.recipients[0].last_attempt_date_unix_s = None;
    let bytes = build_dsn(&notice);
    let message = parse(&bytes);
    let groups = delivery_status(&message);
    assert_eq!(field(&groups[1], "Last-Attempt-Date"), None);
    assert_eq!(
        field(&groups[1], "Final-Recipient"),
        Some("rfc822; bob@example.net")
    );
    let parts = report_parts(&message);
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    assert!(!text.contains("Last attempt"), "{text}");
    // And with one made, both give it.
    let tried_bytes = build_dsn(&request());
    let tried = parse(&tried_bytes);
    assert!(field(&delivery_status(&tried)[1], "Last-Attempt-Date").is_some());
    let PartType::Text(text) = &report_parts(&tried)[0].1.body else {
        panic!("the first part is text");
    };
    assert!(text.contains("Last attempt"), "{text}");
}

#[test]
fn several_recipients_each_get_a_group() {
    let mut r = request();
    r.recipients.push(failed(
        "carol@example.com",
        Reply::new(552, Some(EnhancedStatus::new(5, 2, 2)), "Mailbox full"),
        "mx.example.com",
    ));
    r.recipients.push(RecipientReport {
        final_recipient: "dave@example.com".into(),
        original_recipient: Some("Dave@Example.COM".into()),
        original_recipient_type: None,
        action: Action::Delayed,
        status: EnhancedStatus::new(4, 7, 1),
        remote_mta: Some("mx.example.com".into()),
        diagnostic: Some(Diagnostic::Smtp(Reply::multiline(
            451,
            Some(EnhancedStatus::new(4, 7, 1)),
            vec!["Greylisted,".into(), "please try again later".into()],
        ))),
        last_attempt_date_unix_s: Some(1_700_000_040),
        not_tried_since_last_attempt: false,
        will_retry_until_unix_s: Some(1_700_432_000),
        no_failure_notice: false,
    });
    let bytes = build_dsn(&r);
    let message = parse(&bytes);
    // A failure among them makes it a bounce.
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    let groups = delivery_status(&message);
    assert_eq!(groups.len(), 4);
    let summary: Vec<(Option<&str>, Option<&str>, Option<&str>)> = groups[1..]
        .iter()
        .map(|g| {
            (
                field(g, "Final-Recipient"),
                field(g, "Action"),
                field(g, "Status"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some("rfc822; bob@example.net"),
                Some("failed"),
                Some("5.1.1")
            ),
            (
                Some("rfc822; carol@example.com"),
                Some("failed"),
                Some("5.2.2")
            ),
            (
                Some("rfc822; dave@example.com"),
                Some("delayed"),
                Some("4.7.1")
            ),
        ]
    );
    assert_eq!(
        field(&groups[2], "Diagnostic-Code"),
        Some("smtp; 552 5.2.2 Mailbox full")
    );
    assert_eq!(
        field(&groups[3], "Original-Recipient"),
        Some("rfc822; Dave@Example.COM")
    );
    assert_eq!(
        field(&groups[3], "Diagnostic-Code"),
        Some("smtp; 451 4.7.1 Greylisted, please try again later")
    );
    assert!(field(&groups[3], "Will-Retry-Until").is_some());
    assert_eq!(field(&groups[1], "Will-Retry-Until"), None);
    let parts = report_parts(&message);
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    for address in ["bob@example.net", "carol@example.com", "dave@example.com"] {
        assert!(
            text.contains(&format!("<{address}>")),
            "{address} explained"
        );
    }
    assert_lines_ok(&bytes);
}

#[test]
fn same_input_same_bytes() {
    assert_eq!(build_dsn(&request()), build_dsn(&request()));
    let other = DsnRequest {
        message_id_token: "20231114.dsn.2".into(),
        ..request()
    };
    assert_ne!(build_dsn(&request()), build_dsn(&other));
}

#[test]
fn boundary_does_not_occur_in_the_content() {
    let bytes = build_dsn(&request());
    let message = parse(&bytes);
    let boundary = boundary_of(&message);
    let parts = report_parts(&message);
    for (_, part) in &parts {
        let whole = &message.raw_message()[part.offset_header as usize..part.offset_end as usize];
        assert!(!contains(whole, boundary.as_bytes()));
    }
    // The boundary appears only as the three delimiters and the closing one, plus the
    // Content-Type parameter.
    let count = bytes
        .windows(boundary.len())
        .filter(|w| *w == boundary.as_bytes())
        .count();
    assert_eq!(count, 5);
}

#[test]
fn boundary_moves_when_the_original_holds_it() {
    let first = build_dsn(&request());
    let boundary = boundary_of(&parse(&first));
    // An original that contains exactly the boundary that would have been chosen.
    let mut tricky = request();
    let mut original = ORIGINAL.to_vec();
    original.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    tricky.original_message = original.clone();
    let bytes = build_dsn(&tricky);
    let message = parse(&bytes);
    let new_boundary = boundary_of(&message);
    assert!(!contains(&original, format!("--{new_boundary}").as_bytes()));
    let parts = report_parts(&message);
    assert_eq!(parts.len(), 3);
    assert_eq!(raw_body(&message, parts[2].1), original.as_slice());
}

#[test]
fn eight_bit_original_goes_back_as_message_global_in_base64() {
    let original = "From: J\u{f6}rg <jorg@example.org>\r\nSubject: Gr\u{fc}\u{df}e\r\n\r\n\
                    Sch\u{f6}ne Gr\u{fc}\u{df}e\r\n"
        .as_bytes()
        .to_vec();
    let bytes = build_dsn(&DsnRequest {
        original_message: original.clone(),
        ..request()
    });
    assert!(bytes.is_ascii(), "the notice stays 7-bit");
    assert_lines_ok(&bytes);
    let message = parse(&bytes);
    let parts = report_parts(&message);
    assert_eq!(parts[2].0, "message/global");
    let part_header =
        &message.raw_message()[parts[2].1.offset_header as usize..parts[2].1.offset_body as usize];
    assert!(contains(part_header, b"Content-Transfer-Encoding: base64"));
    let PartType::Message(inner) = &parts[2].1.body else {
        panic!("message/global is read as a message");
    };
    assert_eq!(inner.raw_message(), original.as_slice());
    assert_eq!(inner.subject(), Some("Gr\u{fc}\u{df}e"));

    // Headers only: UTF-8 header fields go as message/global-headers, quoted-printable.
    let bytes = build_dsn(&DsnRequest {
        original_message: original.clone(),
        return_content: ReturnContent::Headers,
        ..request()
    });
    assert!(bytes.is_ascii());
    let message = parse(&bytes);
    let parts = report_parts(&message);
    assert_eq!(parts[2].0, "message/global-headers");
    let decoded = parts[2].1.contents();
    assert_eq!(
        decoded,
        &original[..original.len() - "Sch\u{f6}ne Gr\u{fc}\u{df}e\r\n".len() - 2]
    );
}

#[test]
fn long_and_non_ascii_replies_keep_lines_short() {
    let mut r = request();
    let long_text = format!("{} {}", "blocked ".repeat(60), "z".repeat(1500));
    r.recipients[0].diagnostic = Some(Diagnostic::Smtp(Reply::new(
        554,
        Some(EnhancedStatus::new(5, 7, 1)),
        long_text,
    )));
    r.recipients.push(failed(
        "j\u{f6}rg@b\u{fc}cher.example",
        Reply::new(
            553,
            Some(EnhancedStatus::new(5, 6, 7)),
            "Adresse ung\u{fc}ltig",
        ),
        "mx.b\u{fc}cher.example",
    ));
    let bytes = build_dsn(&r);
    assert!(bytes.is_ascii());
    assert_lines_ok(&bytes);
    let message = parse(&bytes);
    let groups = delivery_status(&message);
    let diagnostic = field(&groups[1], "Diagnostic-Code").expect("Diagnostic-Code");
    assert!(diagnostic.starts_with("smtp; 554 5.7.1 blocked blocked"));
    assert!(diagnostic.ends_with("..."), "cut to a limit");
    assert_eq!(
        field(&groups[2], "Final-Recipient"),
        Some("utf-8; j\\x{F6}rg@b\\x{FC}cher.example")
    );
    assert_eq!(
        field(&groups[2], "Diagnostic-Code"),
        Some("smtp; 553 5.6.7 Adresse ung?ltig")
    );
    let parts = report_parts(&message);
    let PartType::Text(text) = &parts[0].1.body else {
        panic!("the first part is text");
    };
    assert!(
        text.contains("Adresse ung\u{fc}ltig"),
        "people see the real text"
    );
    assert!(text.contains("<j\u{f6}rg@b\u{fc}cher.example>"));
}

#[test]
fn success_report() {
    let mut r = request();
    r.recipients[0].action = Action::Delivered;
    r.recipients[0].status = EnhancedStatus::new(2, 0, 0);
    r.recipients[0].diagnostic = Some(Diagnostic::Smtp(Reply::new(
        250,
        Some(EnhancedStatus::new(2, 0, 0)),
        "OK",
    )));
    let message_bytes = build_dsn(&r);
    let message = parse(&message_bytes);
    assert_eq!(message.subject(), Some("Successful Mail Delivery Report"));
    let groups = delivery_status(&message);
    assert_eq!(field(&groups[1], "Action"), Some("delivered"));
}

#[test]
fn auto_submitted_reads_the_header_only() {
    assert!(!is_auto_submitted(ORIGINAL));
    assert!(!is_auto_submitted(b"Auto-Submitted: no\r\n\r\nbody\r\n"));
    assert!(is_auto_submitted(
        b"From: robot@example.org\r\nAuto-Submitted: auto-generated\r\n\r\nbody\r\n"
    ));
    assert!(!is_auto_submitted(
        b"From: a@example.org\r\n\r\nAuto-Submitted: auto-replied\r\n"
    ));
}

/// The text with each run of whitespace (line breaks included) as one space, so that checks
/// do not depend on where the text was wrapped.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_success_report_names_the_original_recipient_with_its_own_type_and_no_undelivered_part() {
    let mut r = request();
    r.return_content = ReturnContent::Headers;
    r.recipients[0].action = Action::Delivered;
    r.recipients[0].status = EnhancedStatus::new(2, 0, 0);
    r.recipients[0].diagnostic = None;
    r.recipients[0].original_recipient = Some("Bob+x@example.net".into());
    r.recipients[0].original_recipient_type = Some("x-local".into());
    let bytes = build_dsn(&r);
    assert_lines_ok(&bytes);
    let message = parse(&bytes);
    assert_eq!(message.subject(), Some("Successful Mail Delivery Report"));
    let groups = delivery_status(&message);
    assert_eq!(
        field(&groups[1], "Original-Recipient"),
        Some("x-local; Bob+x@example.net")
    );
    assert_eq!(field(&groups[1], "Action"), Some("delivered"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("Content-Description: Original Message Headers"),
        "{text}"
    );
    assert!(!text.contains("Undelivered"), "{text}");
}
