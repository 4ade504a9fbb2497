//! Delivery status notifications (RFC 3464 in a `multipart/report`, RFC 6522): the bounce or
//! delay notice an MTA sends back to a message's envelope sender, built from what the MTA
//! knows about each recipient. It also reads the `Auto-Submitted` field (RFC 3834) so that
//! automatic messages are not answered automatically.
//!
//! It is not a sender and not a queue: it does not decide when a notice is due (that is the
//! queue's job; a message with the null reverse-path never gets one, RFC 5321 4.5.5), does not
//! parse notices back, and reads no clock and no random source: the times, ids and names are
//! all in the [`DsnRequest`], so the same request always gives the same bytes.
//!
//! Choices:
//! - The notice itself is 7-bit, so it can go back through any server, with or without
//!   8BITMIME. The human-readable part is quoted-printable when it holds non-ASCII text.
//! - The original message goes back as `message/rfc822`, unchanged, when it is 7-bit with
//!   lines of at most 998 octets and only CRLF line ends (RFC 2046 5.2.1 allows no transfer
//!   encoding of `message/rfc822` but 7bit, 8bit or binary). Anything else (8-bit text, UTF-8
//!   header fields, over-long lines, bare CR or LF) goes back as `message/global` in base64
//!   (RFC 6532 3.7 allows that encoding for it; RFC 6533 4 returns it in notices): the sender
//!   still gets every octet back, and the notice stays 7-bit. Readers that do not know
//!   `message/global` show it as an attachment.
//! - Headers only: `text/rfc822-headers` (RFC 6522 4) when the header section is 7-bit;
//!   `message/global-headers` (RFC 6533 4), in quoted-printable, when it holds UTF-8, the
//!   type RFC 6533 made for it; otherwise (over-long lines, NUL or bare CR/LF, 8-bit octets
//!   that are not UTF-8) `text/rfc822-headers` in quoted-printable, which a `text/*` type may
//!   use (RFC 2045 6.4).
//! - A message larger than [`RETURN_FULL_MAX_OCTETS`] goes back as headers only, whatever was
//!   asked, and the text says so (Postfix does the same with its `bounce_size_limit`).
//! - Addresses that are not ASCII are written with the `utf-8` address type in its xtext
//!   form (RFC 6533 3), which is the form allowed in `message/delivery-status`.

use serde::{Deserialize, Serialize};

use crate::mail::{base64, boundary, compose, date};
use crate::smtp::dsn_params::{utf8_address_from_xtext, utf8_address_xtext};
use crate::smtp::reply::{EnhancedStatus, Reply};

/// RFC 5322 2.1.1: lines should be at most 78 characters, must be at most 998.
const LINE_PREFERRED_MAX: usize = compose::LINE_PREFERRED_MAX;

/// Longest run of non-space characters written on one header line before it is cut (with a
/// fold, which reads back as an added space): keeps every line within 998 octets.
const WORD_MAX_CHARS: usize = 900;

/// Width of the human-readable text.
const TEXT_WIDTH: usize = 76;

/// Largest original message returned in full; a larger one is returned as headers only.
pub const RETURN_FULL_MAX_OCTETS: usize = 1024 * 1024;

/// Largest header section returned or searched; a longer one is cut at a line end.
pub const HEADER_SECTION_MAX_OCTETS: usize = 256 * 1024;

/// Longest server reply text copied into a report; longer text is cut and ends in "...".
pub const DIAGNOSTIC_MAX_CHARS: usize = 1000;

/// What to return of the original message (RFC 3461 4.3, the RET parameter: FULL or HDRS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnContent {
    /// The whole message.
    Full,
    /// Its header section only.
    Headers,
}

/// What happened to one recipient (RFC 3464 2.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Could not be delivered, and no more attempts will be made (status class 5).
    Failed,
    /// Not delivered yet; attempts go on (status class 4).
    Delayed,
    /// Delivered into the recipient's mailbox (status class 2).
    Delivered,
    /// Handed on to a system that does not send notices, so no more will come (class 2).
    Relayed,
    /// Delivered to an alias or list, which sent it on to several addresses (class 2).
    Expanded,
}

impl Action {
    /// The field value (RFC 3464 2.3.3: lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// What the reporting MTA knows about one recipient (RFC 3464 2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientReport {
    /// The address the MTA tried to deliver to (RCPT TO, after any rewriting).
    pub final_recipient: String,
    /// The address as the sender gave it (the ORCPT parameter, RFC 3461 4.2), if known.
    pub original_recipient: Option<String>,
    /// The ORCPT's address type as the sender gave it (`rfc822`, `utf-8`, ...); none: `rfc822`
    /// for an ASCII address, `utf-8` for another (RFC 6533).
    #[serde(default)]
    pub original_recipient_type: Option<String>,
    pub action: Action,
    /// Its class should match the action: 5 for failed, 4 for delayed, 2 otherwise.
    pub status: EnhancedStatus,
    /// The server the MTA spoke to about this recipient, if it got as far as one (RFC 3464
    /// 2.3.5); none when no connection was made. The `Remote-MTA` field names it only when
    /// the diagnostic is that server's reply (2.3.6); the text for people always does.
    pub remote_mta: Option<String>,
    /// What decided the outcome.
    pub diagnostic: Option<Diagnostic>,
    /// When the MTA last tried to deliver to this recipient (RFC 3464 2.3.7); none when it
    /// has not tried yet, and the field is then left out.
    pub last_attempt_date_unix_s: Option<i64>,
    /// The MTA's attempts since the last one (all of them, when there was none) did not try
    /// the server: it had failed to reach it a short while before, and did not try it again
    /// so soon (RFC 5321 4.5.4.1; Postfix's "delivery temporarily suspended"). Said in the
    /// text for people, so that the last attempt's date and the last failure read together.
    pub not_tried_since_last_attempt: bool,
    /// For a delayed recipient: when the MTA gives up (RFC 3464 2.3.9).
    pub will_retry_until_unix_s: Option<i64>,
    /// The sender asked for no failure notice for this recipient (a NOTIFY without FAILURE,
    /// RFC 3461 4.1): a delay notice then says that none will follow the give-up.
    #[serde(default)]
    pub no_failure_notice: bool,
}

/// What decided a recipient's outcome (RFC 3464 2.3.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Diagnostic {
    /// A reply a server sent (`550 5.1.1 User unknown`): diagnostic-type `smtp`.
    Smtp(Reply),
    /// What the reporting MTA found itself, with no server reply saying so: a refused
    /// connection, a null MX, a message the server cannot take, an expired retry time. The
    /// `smtp` type would claim a server said it, so the text goes under the private type
    /// [`LOCAL_DIAGNOSTIC_TYPE`], as Postfix writes `X-Postfix`.
    Local(String),
}

/// The diagnostic-type of a [`Diagnostic::Local`] text (an RFC 3464 2.3.6 x-token).
pub const LOCAL_DIAGNOSTIC_TYPE: &str = "X-SMTP-Lab";

/// Everything a notice is made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRequest {
    /// The host name of the MTA writing the notice.
    pub reporting_mta: String,
    /// The From address: the reporting host's postmaster, who reads replies to the notice
    /// (RFC 3464 2), as `postmaster@` its first local domain; shown as "Mail Delivery System".
    pub postmaster_address: String,
    /// The original reverse-path (MAIL FROM); the notice goes to it. Never empty: a message
    /// with the null reverse-path gets no notice (RFC 5321 4.5.5).
    pub envelope_sender: String,
    /// The original message as received (after DATA, dot-unstuffed).
    pub original_message: Vec<u8>,
    pub return_content: ReturnContent,
    /// When the reporting MTA received the message.
    pub arrival_date_unix_s: i64,
    /// The notice's `Date:`.
    pub date_unix_s: i64,
    pub utc_offset_min: i32,
    /// A token unique to this notice (the caller's job), the left side of the Message-ID.
    pub message_id_token: String,
    /// The ENVID parameter given with MAIL FROM (RFC 3461 4.4), decoded.
    pub envelope_id: Option<String>,
    /// At least one (RFC 3464 2.1: a report has one or more per-recipient groups).
    pub recipients: Vec<RecipientReport>,
}

impl DsnRequest {
    /// The notice's subject: any failure makes it a bounce; otherwise any delay makes it a
    /// delay notice; otherwise it reports success (asked for with NOTIFY=SUCCESS, RFC 3461 4.1).
    pub fn subject(&self) -> &'static str {
        let any = |action: Action| self.recipients.iter().any(|r| r.action == action);
        if any(Action::Failed) {
            "Undelivered Mail Returned to Sender"
        } else if any(Action::Delayed) {
            "Delayed Mail (still being retried)"
        } else {
            "Successful Mail Delivery Report"
        }
    }
}

/// The notice as a complete message, CRLF line endings throughout, ready for
/// [`crate::smtp::dot::dot_stuff`] and to be sent with `MAIL FROM:<>` (RFC 5321 4.5.5).
pub fn build_dsn(request: &DsnRequest) -> Vec<u8> {
    debug_assert!(
        !request.recipients.is_empty(),
        "a report has at least one recipient (RFC 3464 2.1)"
    );
    debug_assert!(
        !request.envelope_sender.is_empty(),
        "never send a notice about a message with the null reverse-path (RFC 5321 4.5.5)"
    );

    let original = Original::new(&request.original_message, request.return_content);
    let parts = [
        text_part(request, &original),
        delivery_status_part(request),
        original.part(
            request
                .recipients
                .iter()
                .any(|r| matches!(r.action, Action::Failed | Action::Delayed)),
        ),
    ];
    let boundary = choose_boundary(request, &parts);

    let mut header = String::new();
    const FROM_NAME: &str = "From: Mail Delivery System";
    let postmaster = clean_address(&request.postmaster_address);
    // RFC 5322 2.1.1: lines should be at most 78 characters; a long address goes on a
    // folded line of its own (CFWS may come before an angle-addr, 3.4).
    let fits = FROM_NAME.len() + " <>".len() + postmaster.len()
        <= crate::mail::compose::LINE_PREFERRED_MAX;
    let fold = if fits { " " } else { "\r\n " };
    header.push_str(&format!("{FROM_NAME}{fold}<{postmaster}>\r\n"));
    header.push_str(&format!(
        "To: {}\r\n",
        clean_address(&request.envelope_sender)
    ));
    header.push_str(&format!(
        "Date: {}\r\n",
        date::rfc5322_date(request.date_unix_s, request.utc_offset_min)
    ));
    header.push_str(&format!("Subject: {}\r\n", request.subject()));
    header.push_str(&format!(
        "Message-ID: <{}@{}>\r\n",
        id_left(&request.message_id_token),
        clean_host(&request.reporting_mta)
    ));
    // RFC 3834 5.1: "auto-replied" marks a message sent automatically in answer to another,
    // so that vacation responders and the like do not answer it in turn.
    header.push_str("Auto-Submitted: auto-replied\r\n");
    header.push_str("MIME-Version: 1.0\r\n");
    // RFC 6522 3: report-type names the second part's type without "message/".
    header.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n"
    ));
    header.push_str("\r\n");

    let mut message = header.into_bytes();
    // RFC 2046 5.1.1: the preamble is for readers without MIME.
    message.extend_from_slice(b"This is a MIME-encapsulated message.\r\n");
    for part in &parts {
        message.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        // A part keeps its last line break; the delimiter brings its own CRLF (RFC 2046
        // 5.1.1), so the last recipient's fields end with an empty line, as Postfix writes.
        message.extend_from_slice(part);
    }
    message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    message
}

/// Whether the message says it was sent automatically (RFC 3834 5): it has an
/// `Auto-Submitted` field whose value is anything but "no". A responder must not answer such
/// a message automatically (RFC 3834 2). A malformed value counts as automatic: staying
/// silent once too often is cheaper than a mail loop.
pub fn is_auto_submitted(message: &[u8]) -> bool {
    header_fields(message)
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Auto-Submitted"))
        .any(|(_, value)| {
            // auto-submitted-field = "Auto-Submitted:" [CFWS] auto-submitted
            //                        *(CFWS optional-parameter); the keyword comes first.
            let value = strip_comments(&value);
            let keyword = value.split(';').next().unwrap_or_default().trim();
            !keyword.eq_ignore_ascii_case("no")
        })
}

/// The original message and how it goes back.
struct Original<'a> {
    bytes: &'a [u8],
    /// The header section, each field with its CRLF, without the empty line after it.
    header: &'a [u8],
    form: ReturnForm,
    /// Full content was asked for but the message was too large.
    cut_for_size: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReturnForm {
    Rfc822,
    Global,
    Headers,
    /// Headers that are neither 7-bit clean nor UTF-8, as `text/rfc822-headers` in
    /// quoted-printable.
    EncodedHeaders,
    GlobalHeaders,
}

impl<'a> Original<'a> {
    fn new(bytes: &'a [u8], asked: ReturnContent) -> Self {
        let header = header_section(bytes);
        let too_large = bytes.len() > RETURN_FULL_MAX_OCTETS;
        let form = match asked {
            ReturnContent::Full if !too_large => {
                if is_seven_bit_clean(bytes) {
                    ReturnForm::Rfc822
                } else {
                    ReturnForm::Global
                }
            }
            _ => {
                if is_seven_bit_clean(header) {
                    ReturnForm::Headers
                } else if !header.is_ascii() && std::str::from_utf8(header).is_ok() {
                    ReturnForm::GlobalHeaders
                } else {
                    ReturnForm::EncodedHeaders
                }
            }
        };
        Original {
            bytes,
            header,
            form,
            cut_for_size: asked == ReturnContent::Full && too_large,
        }
    }

    fn is_full(&self) -> bool {
        matches!(self.form, ReturnForm::Rfc822 | ReturnForm::Global)
    }

    /// The third part of the report (RFC 6522 3: optional, the returned message or part of it).
    /// `undelivered`: the report tells of a failure or a delay, not only of success (a report
    /// asked for with NOTIFY=SUCCESS, RFC 3461 4.1), and its description says so.
    fn part(&self, undelivered: bool) -> Vec<u8> {
        let mut part = Vec::with_capacity(self.bytes.len() * 4 / 3 + 256);
        part.extend_from_slice(if undelivered {
            b"Content-Description: Undelivered Message"
        } else {
            b"Content-Description: Original Message"
        });
        match self.form {
            ReturnForm::Rfc822 => {
                part.extend_from_slice(
                    b"\r\n\
                      Content-Type: message/rfc822\r\n\
                      Content-Transfer-Encoding: 7bit\r\n\r\n",
                );
                // Unchanged, octet for octet. The CRLF before the closing delimiter belongs
                // to the delimiter (RFC 2046 5.1.1), so a message ending in CRLF keeps it.
                part.extend_from_slice(self.bytes);
            }
            ReturnForm::Global => {
                part.extend_from_slice(
                    b"\r\n\
                      Content-Type: message/global\r\n\
                      Content-Transfer-Encoding: base64\r\n\r\n",
                );
                push_base64_lines(&mut part, self.bytes);
            }
            ReturnForm::Headers => {
                part.extend_from_slice(
                    b" Headers\r\n\
                      Content-Type: text/rfc822-headers\r\n\
                      Content-Transfer-Encoding: 7bit\r\n\r\n",
                );
                part.extend_from_slice(self.header);
            }
            ReturnForm::EncodedHeaders | ReturnForm::GlobalHeaders => {
                let media_type: &[u8] = if self.form == ReturnForm::GlobalHeaders {
                    b"message/global-headers"
                } else {
                    b"text/rfc822-headers"
                };
                part.extend_from_slice(b" Headers\r\nContent-Type: ");
                part.extend_from_slice(media_type);
                part.extend_from_slice(b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
                part.extend_from_slice(&compose::quoted_printable(self.header));
            }
        }
        part
    }
}

/// The header section of a message: up to and including the line end before the first empty
/// line (CRLF or bare LF), or the whole message when there is no empty line, cut at a line end
/// to at most [`HEADER_SECTION_MAX_OCTETS`].
fn header_section(message: &[u8]) -> &[u8] {
    let mut end = message.len();
    let mut line_start = 0;
    while line_start < message.len() {
        let line_end = message[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| line_start + i + 1);
        let line = &message[line_start..line_end];
        if line == b"\r\n" || line == b"\n" {
            end = line_start;
            break;
        }
        line_start = line_end;
    }
    let header = &message[..end];
    if header.len() <= HEADER_SECTION_MAX_OCTETS {
        return header;
    }
    let cut = header[..HEADER_SECTION_MAX_OCTETS]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    &header[..cut]
}

/// Whether the bytes can go as 7bit (RFC 2045 2.7): ASCII without NUL, CR and LF only as
/// CRLF, lines of at most 998 octets.
fn is_seven_bit_clean(bytes: &[u8]) -> bool {
    let mut line_len = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            0 | 0x80..=0xff => return false,
            b'\r' if bytes.get(index + 1) != Some(&b'\n') => return false,
            b'\n' if index == 0 || bytes[index - 1] != b'\r' => return false,
            b'\r' => {}
            b'\n' => line_len = 0,
            _ => {
                line_len += 1;
                if line_len > compose::LINE_MAX {
                    return false;
                }
            }
        }
    }
    true
}

fn push_base64_lines(out: &mut Vec<u8>, bytes: &[u8]) {
    let encoded = base64::encode(bytes);
    let lines: Vec<&[u8]> = encoded
        .as_bytes()
        .chunks(compose::ENCODED_LINE_MAX)
        .collect();
    for (index, line) in lines.iter().enumerate() {
        out.extend_from_slice(line);
        // The last line's CRLF is the closing delimiter's (RFC 2046 5.1.1).
        if index + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The first part: what happened, in words a sender can act on (RFC 6522 3: the first part
/// is for people; RFC 3464 leaves its wording free).
fn text_part(request: &DsnRequest, original: &Original<'_>) -> Vec<u8> {
    let date_of = |unix_s: i64| date::rfc5322_date(unix_s, request.utc_offset_min);
    let any = |action: Action| request.recipients.iter().any(|r| r.action == action);
    let mut text = String::new();
    let paragraph = |text: &mut String, indent: usize, words: &str| {
        wrap_into(text, words, indent, TEXT_WIDTH);
    };

    paragraph(
        &mut text,
        0,
        &format!(
            "This is the mail system at host {}.",
            clean_host(&request.reporting_mta)
        ),
    );
    text.push('\n');
    let intro = if any(Action::Failed) {
        "Your message could not be delivered to one or more of its recipients. \
         Below is what happened to each of them."
    } else if any(Action::Delayed) {
        "Your message has not been delivered yet to one or more of its recipients. \
         The mail system keeps trying, so you do not need to send it again."
    } else {
        "You asked to be told when your message was delivered. \
         Below is what happened to each of its recipients."
    };
    paragraph(&mut text, 0, intro);

    for recipient in &request.recipients {
        text.push('\n');
        text.push_str(&format!(
            "<{}>\n",
            clean_text(&recipient.final_recipient, 300)
        ));
        let status = recipient.status;
        let gave_up = is_give_up(recipient.action, status);
        let outcome = match recipient.action {
            // A temporary status on a failure (RFC 3463 2: "persistent transient") would
            // otherwise read as a contradiction.
            Action::Failed if gave_up => format!(
                "Delivery failed for good (status {status}: a temporary problem that lasted \
                 too long)."
            ),
            Action::Failed => format!("Delivery failed for good (status {status})."),
            Action::Delayed => format!("Not delivered yet (status {status})."),
            Action::Delivered => format!("Delivered to the mailbox (status {status})."),
            Action::Relayed => format!(
                "Passed on to a system that sends no delivery reports (status {status}): no \
                 report of its delivery will follow, though a failure there may still come \
                 back as a bounce."
            ),
            Action::Expanded => format!(
                "Delivered to an alias or mailing list, which sent it on to its members \
                 (status {status})."
            ),
        };
        paragraph(&mut text, 2, &outcome);
        // A failure under a temporary status is a give-up: the last problem kept the message
        // from going until the mail system stopped trying (RFC 3463 X.4.7).
        // (X.4.7 says the same in its own words below.)
        if gave_up && (status.subject, status.detail) != (4, 7) {
            let last = if recipient.diagnostic.is_some() {
                " The last problem it met:"
            } else {
                ""
            };
            paragraph(
                &mut text,
                2,
                &format!(
                    "The mail system gave up: the message had been waiting for the longest \
                     time it keeps one.{last}"
                ),
            );
        }
        if let Some(original_recipient) = &recipient.original_recipient {
            // A `utf-8` address is kept in its 7-bit form (RFC 6533 3); people read it as
            // written, as the text's other addresses are.
            let is_utf8 = match &recipient.original_recipient_type {
                Some(address_type) => address_type.eq_ignore_ascii_case("utf-8"),
                None => !original_recipient.is_ascii(),
            };
            let readable = if is_utf8 {
                utf8_address_from_xtext(original_recipient)
            } else {
                original_recipient.clone()
            };
            paragraph(
                &mut text,
                2,
                &format!("You addressed it to: <{}>", clean_text(&readable, 300)),
            );
        }
        let server = recipient
            .remote_mta
            .as_deref()
            .map(clean_host)
            .filter(|host| !host.is_empty());
        match (&recipient.diagnostic, server) {
            (Some(Diagnostic::Smtp(reply)), Some(host)) => paragraph(
                &mut text,
                2,
                &format!("The server {host} answered: {}", reply_text(reply, false)),
            ),
            (Some(Diagnostic::Smtp(reply)), None) => paragraph(
                &mut text,
                2,
                &format!("The answer was: {}", reply_text(reply, false)),
            ),
            (Some(Diagnostic::Local(found)), server) => {
                paragraph(
                    &mut text,
                    2,
                    &format!(
                        "The mail system found: {}",
                        clean_text(found, DIAGNOSTIC_MAX_CHARS)
                    ),
                );
                if let Some(host) = server {
                    // The finding is this system's: the server sent no reply about it.
                    paragraph(
                        &mut text,
                        2,
                        &format!("The server it was going to: {host} (it sent no such reply)"),
                    );
                }
            }
            (None, Some(host)) => paragraph(&mut text, 2, &format!("Receiving server: {host}")),
            (None, None) => {}
        }
        const NOT_TRIED: &str = "this mail system had failed to reach the receiving server \
                                 a short while before, and did not try it again so soon";
        match (
            recipient.last_attempt_date_unix_s,
            recipient.not_tried_since_last_attempt,
        ) {
            (Some(last_attempt), false) => paragraph(
                &mut text,
                2,
                &format!("Last attempt: {}", date_of(last_attempt)),
            ),
            (Some(last_attempt), true) => paragraph(
                &mut text,
                2,
                &format!(
                    "Last attempt: {}. The attempts after it did not try the server: \
                     {NOT_TRIED}.",
                    date_of(last_attempt)
                ),
            ),
            (None, true) => paragraph(
                &mut text,
                2,
                &format!("No attempt tried the server: {NOT_TRIED}."),
            ),
            (None, false) => {}
        }
        if let (Action::Delayed, Some(until)) =
            (recipient.action, recipient.will_retry_until_unix_s)
        {
            let then = if recipient.no_failure_notice {
                "it gives up without another message: you asked for no notice of failure \
                 (NOTIFY)"
            } else {
                "you will get another message saying so"
            };
            paragraph(
                &mut text,
                2,
                &format!(
                    "The mail system will keep trying, at the latest until {}. If it \
                     still cannot deliver by then, {then}.",
                    date_of(until)
                ),
            );
        }
        let (meaning, advice) = explain(recipient.action, status);
        // A give-up's meaning is the temporary problem's ("full for now"), as it was met.
        // (X.4.7 says that the time ran out, no more: it means what it says.)
        let what_it_means = if gave_up
            && (status.subject, status.detail) != (4, 7)
            && recipient.last_attempt_date_unix_s.is_some()
        {
            "What it meant at each attempt"
        } else {
            "What it means"
        };
        paragraph(&mut text, 2, &format!("{what_it_means}: {meaning}"));
        if let Some(advice) = advice {
            paragraph(&mut text, 2, &format!("What to do: {advice}"));
        }
    }

    text.push('\n');
    let closing = if original.is_full() {
        "Your original message is attached at the end, so that you can send it again or keep it."
    } else if original.cut_for_size {
        "The header of your original message is attached at the end; the whole message was \
         too large to send back."
    } else {
        "The header of your original message is attached at the end (not the whole message)."
    };
    paragraph(&mut text, 0, closing);
    text.push('\n');
    paragraph(
        &mut text,
        0,
        "The part after this text repeats the details in the form programs read \
         (RFC 3464 delivery status).",
    );

    let text = text.replace('\n', "\r\n");
    let mut part = b"Content-Description: Notification\r\n".to_vec();
    if text.is_ascii() {
        part.extend_from_slice(
            b"Content-Type: text/plain; charset=us-ascii\r\n\
              Content-Transfer-Encoding: 7bit\r\n\r\n",
        );
        part.extend_from_slice(text.as_bytes());
    } else {
        part.extend_from_slice(
            b"Content-Type: text/plain; charset=utf-8\r\n\
              Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        );
        part.extend_from_slice(&compose::quoted_printable(text.as_bytes()));
    }
    part
}

/// What a status means and what the sender can do, for the codes a student meets most
/// (RFC 3463 3, registry in RFC 5248), then by class.
fn explain(action: Action, status: EnhancedStatus) -> (&'static str, Option<&'static str>) {
    match action {
        Action::Delivered | Action::Expanded => {
            return ("the message arrived; nothing went wrong.", None)
        }
        // RFC 3464 2.3.3: the next system took it, and is not one that reports delivery.
        Action::Relayed => {
            return (
                "the next mail system took the message; whether it reached the mailbox is \
                 not known here.",
                None,
            )
        }
        Action::Failed | Action::Delayed => {}
    }
    let permanent = status.class == 5;
    let (meaning, advice) = meaning_and_advice(permanent, status);
    // A give-up keeps the last temporary status (RFC 3463 X.4.7): the problem is explained as
    // it was, but nobody is trying any more.
    if is_give_up(action, status) {
        return (meaning, Some(GIVE_UP_ADVICE));
    }
    (meaning, advice)
}

/// A failure under a temporary status: the mail system stopped trying.
fn is_give_up(action: Action, status: EnhancedStatus) -> bool {
    action == Action::Failed && status.class == 4
}

const GIVE_UP_ADVICE: &str = "the mail system has stopped trying: send the message again later, \
     when the problem may be gone, or reach the person another way.";

fn meaning_and_advice(
    permanent: bool,
    status: EnhancedStatus,
) -> (&'static str, Option<&'static str>) {
    match (status.subject, status.detail) {
        (1, 1) => (
            "the receiving server has no mailbox with this name.",
            Some("check the part before the @ for typing mistakes, or ask the person for their current address."),
        ),
        (1, 2) | (4, 4) => (
            "the domain (the part after the @) could not be found, or names no server that takes its mail.",
            Some("check the part after the @ for typing mistakes."),
        ),
        (1, 10) => (
            "the domain (the part after the @) says it accepts no mail at all (a null MX).",
            Some("check the part after the @ for typing mistakes, or ask the person for an address that takes mail."),
        ),
        (1, 3) => (
            "the address is not written the way e-mail addresses must be.",
            Some("check the address: one @, no spaces, no brackets."),
        ),
        (2, 2) if permanent => (
            "the recipient's mailbox has no room for this message: it is full, or the message is larger than the room left.",
            Some("try again in a few days, or send less (a smaller attachment), or reach the person another way."),
        ),
        (2, 2) => (
            "the recipient's mailbox has no room for this message for now: it is full, or the message is larger than the room left.",
            Some("nothing: the mail system tries again."),
        ),
        (3, 4) | (2, 3) => (
            "the message is larger than the receiving server accepts.",
            Some("send a smaller message, for example a link to a large file instead of the file."),
        ),
        (4, 1) => (
            "the receiving server could not be reached (it refused the connection or did not \
             answer).",
            Some(if permanent {
                "try again later; if it keeps failing, tell the recipient their mail server is unreachable."
            } else {
                "nothing: the mail system tries again."
            }),
        ),
        (4, 7) => (
            "the mail system gave up: the message had been waiting for the longest time it keeps one.",
            Some("try again later; if it keeps failing, tell the recipient their mail server is unreachable."),
        ),
        (5, 3) => (
            if permanent {
                "the receiving server takes fewer recipients in one message."
            } else {
                // A server's 452 4.5.3, or the sending server's own limit of transactions in
                // one connection.
                "there were more recipients than one message or one connection carries."
            },
            Some(if permanent {
                "send the message in several smaller batches of recipients."
            } else {
                "nothing: the mail system sends the rest in another batch."
            }),
        ),
        (6, 7) => (
            "the address has characters outside ASCII, and a server on the way does not support such addresses (SMTPUTF8).",
            Some("use an ASCII address for this recipient if they have one."),
        ),
        (7, 1) if permanent => (
            "the receiving side refused the message by its rules (for example, it does not relay for others, it blocks the sender, or it judged the message to be spam).",
            Some("if you think this is a mistake, write to the postmaster of the recipient's domain."),
        ),
        (7, 1) => (
            "the receiving server asked to try again later (often greylisting, a defence against spam).",
            Some("nothing: the mail system tries again, and the next try usually works."),
        ),
        (4, 6) if permanent => (
            "the way to this domain leads back to the sending server itself: the domain's mail hosts name it, and it does not take mail for the domain, so sending the message on would only make it go round in a loop.",
            Some("the mail routing between the servers is wrong: tell the postmaster of the recipient's domain, or your own mail provider."),
        ),
        (4, 0) if permanent => (
            "the message could not be routed onward; when the answer speaks of too many hops, it went round in a loop between servers (each adds a Received: line, and servers refuse a message with too many).",
            Some("the mail routing between the servers is wrong: tell the postmaster of the recipient's domain, or your own mail provider."),
        ),
        (3, 2) if permanent => (
            "the receiving server refuses all mail: it turned the connection away at its greeting, whatever the message.",
            Some("nothing in the message can change that: try again later, or reach the person another way; if it lasts, tell them their mail server refuses mail."),
        ),
        (6, 3) if permanent => (
            "the message cannot go as it is, and the sending host does not convert it: it has 8-bit data for a server that does not offer 8BITMIME, or binary data (a NUL octet, a line longer than 998 octets) that SMTP carries only with BINARYMIME.",
            Some("send it again with its content encoded in 7 bits (quoted-printable or base64), in lines of at most 998 octets."),
        ),
        (6, 9) if permanent => (
            "the message has UTF-8 in its header fields, and a server on its way cannot take them (it does not offer SMTPUTF8).",
            Some("send it again with ASCII header fields (non-ASCII text as encoded words); if what is not ASCII is an address, which no encoding may change, use an ASCII address instead (ask the recipient for one, or send from one of your own)."),
        ),
        _ if permanent => (
            "the message was refused for good; sending it again unchanged will fail the same way.",
            Some("read the reason above (the server's answer, or what the mail system found), fix what it names, and send again."),
        ),
        _ => (
            "a temporary problem stopped delivery.",
            Some("nothing: the mail system tries again."),
        ),
    }
}

/// The second part: RFC 3464 2.1, per-message fields, then one group of per-recipient fields
/// per recipient, each group after an empty line. Field order follows the ABNF of RFC 3464
/// 2.2 and 2.3.
fn delivery_status_part(request: &DsnRequest) -> Vec<u8> {
    let date_of = |unix_s: i64| date::rfc5322_date(unix_s, request.utc_offset_min);
    let mut part = String::from(
        "Content-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n",
    );
    // RFC 3464 2.2.1: the ENVID exactly as given, so the sender can match the notice.
    if let Some(envelope_id) = &request.envelope_id {
        push_field(
            &mut part,
            "Original-Envelope-Id",
            &clean_ascii(envelope_id, 100),
        );
    }
    // RFC 3464 2.2.2: mta-name-type "dns" for an Internet host name.
    push_field(
        &mut part,
        "Reporting-MTA",
        &format!("dns; {}", clean_host(&request.reporting_mta)),
    );
    // RFC 3464 2.2.5.
    push_field(
        &mut part,
        "Arrival-Date",
        &date_of(request.arrival_date_unix_s),
    );
    for recipient in &request.recipients {
        part.push_str("\r\n");
        // RFC 3464 2.3.1: the ORCPT value, when the sender gave one.
        if let Some(original) = &recipient.original_recipient {
            let value = match &recipient.original_recipient_type {
                // RFC 3461 6.3: the ORCPT as given, its type included.
                Some(address_type) => format!(
                    "{}; {}",
                    clean_ascii(address_type, 64),
                    clean_ascii(original, 500)
                ),
                None => typed_address(original),
            };
            push_field(&mut part, "Original-Recipient", &value);
        }
        push_field(
            &mut part,
            "Final-Recipient",
            &typed_address(&recipient.final_recipient),
        );
        push_field(&mut part, "Action", recipient.action.as_str());
        push_field(&mut part, "Status", &recipient.status.to_string());
        // RFC 3464 2.3.6: "the presence of a Remote-MTA field indicates that the Diagnostic
        // Code was issued by the Remote MTA", so the field is left out when the reporting MTA
        // wrote the diagnostic itself (the text for people still names the server).
        let diagnosed_here = matches!(recipient.diagnostic, Some(Diagnostic::Local(_)));
        if let Some(host) = recipient.remote_mta.as_deref().map(clean_host) {
            if !host.is_empty() && !diagnosed_here {
                push_field(&mut part, "Remote-MTA", &format!("dns; {host}"));
            }
        }
        // RFC 3464 2.3.6: diagnostic-type "smtp" for an SMTP reply, code first; the MTA's
        // own findings under its private type.
        match &recipient.diagnostic {
            Some(Diagnostic::Smtp(reply)) => push_field(
                &mut part,
                "Diagnostic-Code",
                &format!("smtp; {}", reply_text(reply, true)),
            ),
            Some(Diagnostic::Local(found)) => push_field(
                &mut part,
                "Diagnostic-Code",
                &format!(
                    "{LOCAL_DIAGNOSTIC_TYPE}; {}",
                    clean_ascii(found, DIAGNOSTIC_MAX_CHARS)
                ),
            ),
            None => {}
        }
        if let Some(last_attempt) = recipient.last_attempt_date_unix_s {
            push_field(&mut part, "Last-Attempt-Date", &date_of(last_attempt));
        }
        // RFC 3464 2.3.9: only meaningful for "delayed".
        if recipient.action == Action::Delayed {
            if let Some(until) = recipient.will_retry_until_unix_s {
                push_field(&mut part, "Will-Retry-Until", &date_of(until));
            }
        }
    }
    part.into_bytes()
}

/// `550 5.1.1 User unknown`: the code, the enhanced status if any, and the lines joined by
/// spaces, cut to [`DIAGNOSTIC_MAX_CHARS`]. `ascii_only` replaces other characters with "?"
/// for `message/delivery-status`, which is ASCII (RFC 3464 2.1).
fn reply_text(reply: &Reply, ascii_only: bool) -> String {
    let mut text = reply.code.to_string();
    if let Some(enhanced) = reply.enhanced {
        text.push(' ');
        text.push_str(&enhanced.to_string());
    }
    let lines = reply.text();
    if !lines.trim().is_empty() {
        text.push(' ');
        text.push_str(lines.trim());
    }
    let text = clean_text(&text, DIAGNOSTIC_MAX_CHARS);
    if ascii_only {
        to_ascii(text)
    } else {
        text
    }
}

/// `text` with every character that is not ASCII replaced by "?", for
/// `message/delivery-status`, which is ASCII (RFC 3464 2.1).
fn to_ascii(text: String) -> String {
    if text.is_ascii() {
        return text;
    }
    text.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// `rfc822; user@example.org`, or for an address that is not ASCII `utf-8;` with the
/// utf-8-addr-xtext form (RFC 6533 3): characters outside QCHAR become `\x{HEX}`.
fn typed_address(address: &str) -> String {
    let address = clean_address(address);
    if address.is_ascii() {
        return format!("rfc822; {address}");
    }
    format!("utf-8; {}", utf8_address_xtext(&address))
}

/// Appends `Name: value` CRLF, folded at spaces (RFC 5322 2.2.3) to stay within 78 characters
/// where the words allow; a word longer than [`WORD_MAX_CHARS`] is cut with a fold so that no
/// line passes 998 octets.
fn push_field(out: &mut String, name: &str, value: &str) {
    let mut line_len = name.len() + 1;
    out.push_str(name);
    out.push(':');
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        for chunk in split_long_word(word, WORD_MAX_CHARS) {
            if line_len + 1 + chunk.len() > LINE_PREFERRED_MAX && line_len > name.len() + 1 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            out.push_str(chunk);
            line_len += 1 + chunk.len();
        }
    }
    out.push_str("\r\n");
}

/// The word in pieces of at most `max_octets` octets, split between characters.
fn split_long_word(word: &str, max_octets: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (index, c) in word.char_indices() {
        if index + c.len_utf8() - start > max_octets {
            pieces.push(&word[start..index]);
            start = index;
        }
    }
    pieces.push(&word[start..]);
    pieces
}

/// Appends `text` as lines of at most `width` characters, each indented by `indent` spaces,
/// broken at spaces; a longer word gets a line of its own, and one longer than
/// [`WORD_MAX_CHARS`] is cut so that no line passes 998 octets.
fn wrap_into(out: &mut String, text: &str, indent: usize, width: usize) {
    let mut line = String::new();
    let mut line_chars = 0;
    let words = text
        .split(' ')
        .filter(|w| !w.is_empty())
        .flat_map(|word| split_long_word(word, WORD_MAX_CHARS));
    for word in words {
        let word_chars = word.chars().count();
        if line_chars > 0 && indent + line_chars + 1 + word_chars > width {
            out.push_str(&" ".repeat(indent));
            out.push_str(&line);
            out.push('\n');
            line.clear();
            line_chars = 0;
        }
        if line_chars > 0 {
            line.push(' ');
            line_chars += 1;
        }
        line.push_str(word);
        line_chars += word_chars;
    }
    if line_chars > 0 {
        out.push_str(&" ".repeat(indent));
        out.push_str(&line);
        out.push('\n');
    }
}

/// Text from outside (addresses, server replies) on one line: controls become spaces, and it
/// is cut to `max_chars`, ending in "..." when cut.
fn clean_text(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() <= max_chars {
        return cleaned.to_string();
    }
    let mut cut: String = cleaned.chars().take(max_chars.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// Printable ASCII only (for fields that must be ASCII): anything else becomes "?".
fn clean_ascii(text: &str, max_chars: usize) -> String {
    to_ascii(clean_text(text, max_chars))
}

/// An address without brackets, spaces or controls, at most 254 characters (RFC 5321
/// 4.5.3.1.3 path limit), so it cannot break the field it is written into. A quoted local part
/// keeps its spaces and brackets (RFC 5322 3.4.1): `"al ice"@a.test` is not `"alice"@a.test`.
fn clean_address(address: &str) -> String {
    let address = address.trim();
    let address = address
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(address);
    if crate::smtp::address::is_writable_quoted_mailbox(
        address,
        crate::smtp::address::PATH_MAX_OCTETS - 2,
    ) {
        return address.to_string();
    }
    address
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>'))
        .take(254)
        .collect()
}

/// A host name of letters, digits, "-" and "." (or an address literal's "[", "]" and ":"),
/// at most 253 characters (RFC 1035 2.3.4).
fn clean_host(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'))
        .take(253)
        .collect()
}

/// The Message-ID's left side, as for composed messages.
fn id_left(token: &str) -> String {
    compose::message_id_left(token, "dsn").into_owned()
}

/// A boundary that depends only on the request, checked against every part: a boundary
/// delimiter must not occur in any encapsulated part (RFC 2046 5.1.1). The returned message is
/// sent unchanged and may hold anything, so the boundary changes until it is free.
fn choose_boundary(request: &DsnRequest, parts: &[Vec<u8>]) -> String {
    boundary::choose_boundary(
        "smtp-lab-dsn",
        &[
            request.message_id_token.as_bytes(),
            &request.date_unix_s.to_le_bytes(),
        ],
        parts,
    )
}

/// The header fields of a message as (name, unfolded value), in order, from the header
/// section (see [`header_section`]). Lines that are neither a field nor a continuation are
/// skipped.
fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let header = String::from_utf8_lossy(header_section(message));
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            // RFC 5322 2.2.3: unfolding removes the CRLF, keeping the whitespace.
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) {
                fields.push((name.to_string(), value.to_string()));
            }
        }
    }
    fields
}

/// The text without RFC 5322 3.2.2 comments (parenthesised, nestable, with `\` quoting).
pub(crate) fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if depth > 0 => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::boundary::contains;

    fn request() -> DsnRequest {
        DsnRequest {
            reporting_mta: "mail.example.org".into(),
            postmaster_address: "postmaster@mail.example.org".into(),
            envelope_sender: "alice@example.org".into(),
            original_message: b"From: alice@example.org\r\nTo: bob@example.net\r\n\
                                Subject: Hi\r\n\r\nHello Bob.\r\n"
                .to_vec(),
            return_content: ReturnContent::Full,
            arrival_date_unix_s: 1_700_000_000,
            date_unix_s: 1_700_000_060,
            utc_offset_min: 0,
            message_id_token: "dsn.1".into(),
            envelope_id: None,
            recipients: vec![RecipientReport {
                final_recipient: "bob@example.net".into(),
                original_recipient: None,
                original_recipient_type: None,
                action: Action::Failed,
                status: EnhancedStatus::new(5, 1, 1),
                remote_mta: Some("mx.example.net".into()),
                diagnostic: Some(Diagnostic::Smtp(Reply::new(
                    550,
                    Some(EnhancedStatus::new(5, 1, 1)),
                    "User unknown",
                ))),
                last_attempt_date_unix_s: Some(1_700_000_030),
                not_tried_since_last_attempt: false,
                will_retry_until_unix_s: None,
                no_failure_notice: false,
            }],
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).expect("the notice is UTF-8")
    }

    #[test]
    fn a_long_postmaster_address_goes_on_a_folded_line_of_its_own() {
        let notice = text(&build_dsn(&request()));
        assert!(
            notice.starts_with("From: Mail Delivery System <postmaster@mail.example.org>\r\n"),
            "{notice}"
        );
        let mut long = request();
        long.postmaster_address = format!("postmaster@{}.example.org", "sub".repeat(15));
        let notice = text(&build_dsn(&long));
        let expected = format!(
            "From: Mail Delivery System\r\n <{}>\r\n",
            long.postmaster_address
        );
        assert!(notice.starts_with(&expected), "{notice}");
    }

    #[test]
    fn a_quoted_local_part_keeps_its_space_in_to_and_final_recipient() {
        // "al ice" and "alice" are two mailboxes (RFC 5322 3.4.1): a notice must not merge them.
        let mut r = request();
        r.envelope_sender = "\"al ice\"@example.org".into();
        r.recipients[0].final_recipient = "\"no body\"@example.net".into();
        let notice = text(&build_dsn(&r));
        assert!(
            notice.contains("To: \"al ice\"@example.org\r\n"),
            "{notice}"
        );
        assert!(
            notice.contains("Final-Recipient: rfc822; \"no body\"@example.net\r\n"),
            "{notice}"
        );
        // Outside quotes nothing of the kind survives.
        assert_eq!(clean_address("<al ice@x>"), "alice@x");
    }

    #[test]
    fn delivery_status_fields_in_rfc_order() {
        let part = text(&delivery_status_part(&DsnRequest {
            envelope_id: Some("QQ314159".into()),
            recipients: vec![RecipientReport {
                original_recipient: Some("Bob@Example.net".into()),
                original_recipient_type: None,
                ..request().recipients[0].clone()
            }],
            ..request()
        }));
        let body = part.split_once("\r\n\r\n").expect("part header").1;
        assert_eq!(
            body,
            "Original-Envelope-Id: QQ314159\r\n\
             Reporting-MTA: dns; mail.example.org\r\n\
             Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
             \r\n\
             Original-Recipient: rfc822; Bob@Example.net\r\n\
             Final-Recipient: rfc822; bob@example.net\r\n\
             Action: failed\r\n\
             Status: 5.1.1\r\n\
             Remote-MTA: dns; mx.example.net\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
             Last-Attempt-Date: Tue, 14 Nov 2023 22:13:50 +0000\r\n"
        );
        // In the whole notice the last field keeps its CRLF before the delimiter's own
        // (RFC 2046 5.1.1): the recipient's group ends with an empty line.
        let notice = text(&build_dsn(&request()));
        assert!(notice.contains("+0000\r\n\r\n--"), "{notice}");
    }

    #[test]
    fn will_retry_until_only_for_delayed() {
        let mut delayed = request();
        delayed.recipients[0].action = Action::Delayed;
        delayed.recipients[0].status = EnhancedStatus::new(4, 4, 1);
        delayed.recipients[0].diagnostic = None;
        delayed.recipients[0].will_retry_until_unix_s = Some(1_700_432_000);
        let part = text(&delivery_status_part(&delayed));
        assert!(part.contains("Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000"));
        assert!(!part.contains("Diagnostic-Code"));

        let mut failed = delayed.clone();
        failed.recipients[0].action = Action::Failed;
        assert!(!text(&delivery_status_part(&failed)).contains("Will-Retry-Until"));
    }

    #[test]
    fn subjects() {
        let mut r = request();
        assert_eq!(r.subject(), "Undelivered Mail Returned to Sender");
        r.recipients[0].action = Action::Delayed;
        assert_eq!(r.subject(), "Delayed Mail (still being retried)");
        r.recipients[0].action = Action::Delivered;
        assert_eq!(r.subject(), "Successful Mail Delivery Report");
    }

    #[test]
    fn non_ascii_addresses_use_utf8_xtext() {
        assert_eq!(
            typed_address("<bob@example.net>"),
            "rfc822; bob@example.net"
        );
        assert_eq!(
            typed_address("jörg+x@bücher.example"),
            "utf-8; j\\x{F6}rg\\x{2B}x@b\\x{FC}cher.example"
        );
    }

    #[test]
    fn long_fields_fold_and_stay_within_998() {
        let mut out = String::new();
        let long_word = "x".repeat(2500);
        push_field(
            &mut out,
            "Diagnostic-Code",
            &format!("smtp; 550 {} {long_word}", "word ".repeat(40)),
        );
        assert!(out.ends_with("\r\n"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 3);
        for (index, line) in lines.iter().enumerate() {
            assert!(line.len() <= 998, "line {index} has {} octets", line.len());
            if index > 0 {
                assert!(line.starts_with(' '), "a continuation starts with a space");
            }
        }
    }

    #[test]
    fn seven_bit_cleanliness() {
        assert!(is_seven_bit_clean(b"A: b\r\n\r\nbody\r\n"));
        assert!(!is_seven_bit_clean("A: b\r\n\r\nb\u{e9}\r\n".as_bytes()));
        assert!(!is_seven_bit_clean(b"A: b\n\nbody\n"));
        assert!(!is_seven_bit_clean(b"A: b\r\n\rbody"));
        assert!(!is_seven_bit_clean(b"A: \0\r\n"));
        let long = format!("A: {}\r\n", "x".repeat(996));
        assert!(!is_seven_bit_clean(long.as_bytes()));
        assert!(is_seven_bit_clean(&long.as_bytes()[1..]));
    }

    #[test]
    fn header_section_ends_at_the_empty_line() {
        assert_eq!(
            header_section(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_section(b"A: 1\nB: 2\n\nbody"), b"A: 1\nB: 2\n");
        assert_eq!(header_section(b"A: 1\r\n"), b"A: 1\r\n");
        assert_eq!(header_section(b"\r\nbody"), b"");
    }

    #[test]
    fn auto_submitted_values() {
        assert!(!is_auto_submitted(b"From: a@b\r\n\r\nbody\r\n"));
        assert!(!is_auto_submitted(b"Auto-Submitted: no\r\n\r\n"));
        assert!(!is_auto_submitted(b"Auto-Submitted: No (a person)\r\n\r\n"));
        assert!(is_auto_submitted(b"Auto-Submitted: auto-replied\r\n\r\n"));
        assert!(is_auto_submitted(b"auto-submitted:auto-generated\r\n\r\n"));
        assert!(is_auto_submitted(
            b"Subject: x\r\nAuto-Submitted:\r\n auto-notified; owner-email=\"a@b\"\r\n\r\n"
        ));
        assert!(is_auto_submitted(
            b"Auto-Submitted: (comment) auto-replied\n\n"
        ));
        // Only the header section counts.
        assert!(!is_auto_submitted(
            b"From: a@b\r\n\r\nAuto-Submitted: auto-replied\r\n"
        ));
        // A notice marks itself.
        assert!(is_auto_submitted(&build_dsn(&request())));
    }

    #[test]
    fn explanations_cover_each_class() {
        let (meaning, advice) = explain(Action::Failed, EnhancedStatus::new(5, 1, 1));
        assert!(meaning.contains("no mailbox"));
        assert!(advice.is_some());
        // A give-up keeps its last temporary status and its meaning; nobody tries again.
        for status in [(4, 4, 1), (4, 4, 3), (4, 7, 1), (4, 2, 2)] {
            let status = EnhancedStatus::new(status.0, status.1, status.2);
            let (meaning, advice) = explain(Action::Failed, status);
            assert!(!meaning.contains("for good") && !meaning.contains("by its rules"));
            assert_eq!(advice, Some(GIVE_UP_ADVICE), "{status}");
        }
        let (meaning, _) = explain(Action::Delayed, EnhancedStatus::new(4, 7, 1));
        assert!(meaning.contains("try again later"));
        // A domain that does not exist, and one that takes no mail, are told apart.
        let (not_found, _) = explain(Action::Failed, EnhancedStatus::new(5, 1, 2));
        let (null_mx, _) = explain(Action::Failed, EnhancedStatus::new(5, 1, 10));
        assert!(!not_found.contains("null MX") && null_mx.contains("null MX"));
        // A mailbox over quota may have room, but not for this message.
        let (quota, _) = explain(Action::Failed, EnhancedStatus::new(5, 2, 2));
        assert!(quota.contains("larger than the room left"), "{quota}");
        let (_, advice) = explain(Action::Delivered, EnhancedStatus::new(2, 0, 0));
        assert_eq!(advice, None);
        let (meaning, advice) = explain(Action::Failed, EnhancedStatus::new(5, 9, 9));
        assert!(meaning.contains("for good"));
        // The reason above may be the mail system's own finding, with no server's answer.
        assert!(advice.is_some_and(|advice| advice.contains("what the mail system found")));
        // And the sending host's own findings are explained as what they are.
        for (status, says) in [
            ((5, 6, 3), "8BITMIME"),
            ((5, 6, 9), "SMTPUTF8"),
            ((5, 4, 6), "loop"),
            // A server that refused service at its greeting (554 5.3.2).
            ((5, 3, 2), "refuses all mail"),
            // A hop count over the limit (554 5.4.0 Too many hops, as Postfix says it).
            ((5, 4, 0), "loop"),
        ] {
            let status = EnhancedStatus::new(status.0, status.1, status.2);
            let (meaning, advice) = explain(Action::Failed, status);
            assert!(meaning.contains(says), "{status}: {meaning}");
            assert!(
                !advice.unwrap_or_default().contains("server's answer"),
                "{status}"
            );
        }
    }

    #[test]
    fn text_part_wraps_and_names_the_reply() {
        let r = request();
        let original = Original::new(&r.original_message, r.return_content);
        let part = text(&text_part(&r, &original));
        assert!(part.contains("Content-Transfer-Encoding: 7bit"));
        assert!(part.contains("<bob@example.net>"));
        assert!(part.contains("The server mx.example.net answered: 550 5.1.1 User unknown"));
        for line in part.split("\r\n") {
            assert!(line.len() <= TEXT_WIDTH, "long line {line:?}");
        }
    }

    #[test]
    fn a_give_up_under_a_temporary_status_says_the_problem_lasted() {
        let mut r = request();
        r.recipients[0].status = EnhancedStatus::new(4, 2, 2);
        r.recipients[0].diagnostic = Some(Diagnostic::Smtp(Reply::new(
            452,
            Some(EnhancedStatus::new(4, 2, 2)),
            "Mailbox full",
        )));
        let original = Original::new(&r.original_message, r.return_content);
        let part = text(&text_part(&r, &original)).replace("\r\n  ", " ");
        assert!(
            part.contains("(status 4.2.2: a temporary problem that lasted too long)"),
            "{part}"
        );
        assert!(
            part.contains("What it meant at each attempt: the"),
            "{part}"
        );
        assert!(!part.contains("What it means"), "{part}");
        // X.4.7 says that the time ran out, which is what it means.
        r.recipients[0].status = EnhancedStatus::new(4, 4, 7);
        let part = text(&text_part(&r, &original)).replace("\r\n  ", " ");
        assert!(
            part.contains("What it means: the mail system gave up: the message had been waiting"),
            "{part}"
        );
        // A permanent failure says what it means, now.
        let r = request();
        let original = Original::new(&r.original_message, r.return_content);
        let part = text(&text_part(&r, &original)).replace("\r\n  ", " ");
        assert!(
            part.contains("Delivery failed for good (status 5.1.1)."),
            "{part}"
        );
        assert!(part.contains("What it means: the"), "{part}");
    }

    #[test]
    fn a_utf8_original_recipient_is_written_for_people_as_it_reads() {
        let mut r = request();
        r.recipients[0].original_recipient = Some("j\\x{FC}rgen\\x{2B}1@example.net".into());
        r.recipients[0].original_recipient_type = Some("UTF-8".into());
        let original = Original::new(&r.original_message, r.return_content);
        let part = text(&text_part(&r, &original)).replace("=\r\n", "");
        // "ü" in quoted-printable UTF-8.
        assert!(
            part.contains("You addressed it to: <j=C3=BCrgen+1@example.net>"),
            "{part}"
        );
        // For programs, the 7-bit form as given (RFC 6533 3).
        let status = text(&delivery_status_part(&r));
        assert!(
            status.contains("Original-Recipient: UTF-8; j\\x{FC}rgen\\x{2B}1@example.net"),
            "{status}"
        );
        // An rfc822 address is shown as given, escapes and all.
        r.recipients[0].original_recipient = Some("a\\x{FC}@example.net".into());
        r.recipients[0].original_recipient_type = Some("rfc822".into());
        let part = text(&text_part(&r, &original));
        assert!(
            part.contains("You addressed it to: <a\\x{FC}@example.net>"),
            "{part}"
        );
    }

    #[test]
    fn utf8_addresses_read_back_from_their_xtext_form() {
        for address in [
            "j\u{F6}rg+x=y\\z@b\u{FC}cher.example",
            "\u{1F600}@example.net",
            "plain@a.test",
        ] {
            assert_eq!(
                utf8_address_from_xtext(&utf8_address_xtext(address)),
                address
            );
        }
        // What is not an escape stays as written.
        for kept in [
            "a\\x{}b",
            "a\\x{110000}b",
            "a\\x{FC",
            "a\\x{G1}b",
            "a\\x{0000041}b",
            "\\x",
        ] {
            assert_eq!(utf8_address_from_xtext(kept), kept);
        }
        assert_eq!(utf8_address_from_xtext("\\x{41}\\x{fc}"), "A\u{FC}");
    }

    #[test]
    fn non_ascii_reply_text_is_quoted_printable_for_people_and_ascii_for_programs() {
        let mut r = request();
        r.recipients[0].diagnostic = Some(Diagnostic::Smtp(Reply::new(
            550,
            None,
            "Benutzer unbekannt: jörg",
        )));
        let original = Original::new(&r.original_message, r.return_content);
        let part = text(&text_part(&r, &original));
        assert!(part.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(part.contains("j=C3=B6rg"));
        let status = text(&delivery_status_part(&r));
        assert!(status.contains("Diagnostic-Code: smtp; 550 Benutzer unbekannt: j?rg"));
    }

    #[test]
    fn forms_of_the_original() {
        let seven = b"A: 1\r\n\r\nbody\r\n";
        let eight = "A: 1\r\n\r\nb\u{f6}dy\r\n".as_bytes();
        let eight_header = "A: \u{f6}\r\n\r\nbody\r\n".as_bytes();
        let form = |bytes: &[u8], asked| Original::new(bytes, asked).form;
        assert_eq!(form(seven, ReturnContent::Full), ReturnForm::Rfc822);
        assert_eq!(form(eight, ReturnContent::Full), ReturnForm::Global);
        assert_eq!(form(eight, ReturnContent::Headers), ReturnForm::Headers);
        assert_eq!(
            form(eight_header, ReturnContent::Headers),
            ReturnForm::GlobalHeaders
        );
        // ASCII, or 8-bit but not UTF-8, yet not fit to go as 7bit: encoded, as text.
        let long_line = [b"A: ".as_slice(), &[b'x'; 1000], b"\r\n\r\nbody\r\n"].concat();
        for odd in [
            &long_line[..],
            b"A: \0\r\n\r\nbody\r\n",
            b"A: \xf6\r\n\r\nbody\r\n",
        ] {
            assert_eq!(
                form(odd, ReturnContent::Headers),
                ReturnForm::EncodedHeaders
            );
        }
        let big = [seven.as_slice(), &vec![b'x'; RETURN_FULL_MAX_OCTETS]].concat();
        let original = Original::new(&big, ReturnContent::Full);
        assert_eq!(original.form, ReturnForm::Headers);
        assert!(original.cut_for_size);
    }

    #[test]
    fn boundary_changes_when_the_content_holds_it() {
        let r = request();
        let parts = vec![b"x".to_vec()];
        let first = choose_boundary(&r, &parts);
        let with_it = vec![format!("--{first}").into_bytes()];
        let second = choose_boundary(&r, &with_it);
        assert_ne!(first, second);
        assert!(!contains(&with_it[0], format!("--{second}").as_bytes()));
    }

    #[test]
    fn clean_inputs_cannot_break_fields() {
        assert_eq!(clean_address(" <a\r\nb@c> "), "ab@c");
        assert_eq!(clean_host("mx.example.net\r\nX: y"), "mx.example.netX:y");
        assert_eq!(clean_text("a\r\nb", 10), "a  b");
        assert_eq!(clean_text("abcdefghij", 6), "abc...");
        assert_eq!(id_left("a b..c"), "a_b._c");
        assert_eq!(id_left(""), "dsn");
    }
}
