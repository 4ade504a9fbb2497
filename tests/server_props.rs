//! Property tests of the server session: splitting the input anywhere changes nothing, no
//! input makes it panic, a refused line does not put it out of step, and dot-stuffed data
//! comes out as it went in.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use smtp_lab::smtp::data_in::BareLineEnding;
use smtp_lab::smtp::policy::{PeerInfo, StaticPolicy};
use smtp_lab::smtp::reply::ReplyReader;
use smtp_lab::smtp::server::{
    ServerConfig, ServerEvent, ServerSession, ServerStateKind, StorageOutcome,
};

fn config(bare: BareLineEnding) -> ServerConfig {
    let mut config = ServerConfig::new("mx.example.org");
    config.bare_line_ending = bare;
    config.auth_enabled = true;
    config.message_size_max_octets = 2000;
    config.recipients_max = 5;
    config.errors_max = 1000;
    config.auth_failures_max = 1000;
    config
}

fn policy() -> StaticPolicy {
    StaticPolicy::new()
        .mailbox("bob@example.org")
        .full_mailbox("full@example.org")
        .user("alice", "secret")
}

fn session(bare: BareLineEnding) -> ServerSession<StaticPolicy> {
    ServerSession::new(
        config(bare),
        policy(),
        PeerInfo::new("192.0.2.7", Some(40000)),
        0,
    )
}

/// Feeds the chunks one by one (storing each message at once) and returns all output bytes
/// and all events.
fn run(bare: BareLineEnding, chunks: &[&[u8]]) -> (Vec<u8>, Vec<ServerEvent>) {
    let mut server = session(bare);
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut stored = 0;
    let mut drain = |server: &mut ServerSession<StaticPolicy>,
                     output: &mut Vec<u8>,
                     events: &mut Vec<ServerEvent>| loop {
        let mut progressed = false;
        while let Some(event) = server.poll_event() {
            if matches!(event, ServerEvent::MessageReceived { .. }) {
                stored += 1;
                server
                    .message_stored(
                        StorageOutcome::Stored {
                            queue_id: Some(format!("Q{stored}")),
                        },
                        0,
                    )
                    .expect("a message is awaiting storage right after MessageReceived");
            }
            events.push(event);
            progressed = true;
        }
        if let Some(bytes) = server.poll_output() {
            output.extend_from_slice(&bytes);
            progressed = true;
        }
        if !progressed {
            break;
        }
    };
    drain(&mut server, &mut output, &mut events);
    for chunk in chunks {
        server.handle_input(chunk, 0);
        drain(&mut server, &mut output, &mut events);
    }
    (output, events)
}

fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

/// Pieces of client input, valid and not, that a script is made of.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO client.example\r\n".to_vec()),
        Just(b"HELO client.example\r\n".to_vec()),
        Just(b"MAIL FROM:<a@client.example>\r\n".to_vec()),
        Just(b"MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n".to_vec()),
        Just(b"RCPT TO:<bob@example.org>\r\n".to_vec()),
        Just(b"RCPT TO:<full@example.org>\r\n".to_vec()),
        Just(b"RCPT TO:<x@elsewhere.example>\r\n".to_vec()),
        Just(b"RCPT TO:<Postmaster>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"Subject: x\r\n\r\n..dot\r\nbody\n.\r\n.\r\n".to_vec()),
        Just(b"text\r\n.\r\n".to_vec()),
        Just(b"BDAT 5\r\nab\r\nc".to_vec()),
        Just(b"BDAT 3 LAST\r\nxyz".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"VRFY bob\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n".to_vec()),
        Just(b"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n".to_vec()),
        Just(b"HELP\r\n".to_vec()),
        Just(b"bare\nline\r\n".to_vec()),
        Just(vec![b'x'; 600]),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn script() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat())
}

fn replies(output: &[u8]) -> Vec<smtp_lab::smtp::reply::Reply> {
    let mut reader = ReplyReader::new();
    reader.push(output);
    let mut all = Vec::new();
    while let Some(reply) = reader.next_reply() {
        all.push(reply.expect("the server only sends well-formed replies"));
    }
    assert!(!reader.has_partial(), "output ends inside a reply");
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn split_input_gives_the_same_output_and_events(
        input in script(),
        points in proptest::collection::vec(any::<usize>(), 0..12),
        normalize in any::<bool>(),
    ) {
        let bare = if normalize { BareLineEnding::Normalize } else { BareLineEnding::Reject };
        let whole = run(bare, &[&input]);
        let split = run(bare, &split_at_points(&input, &points));
        prop_assert_eq!(&whole.0, &split.0);
        prop_assert_eq!(&whole.1, &split.1);
        let byte_by_byte: Vec<&[u8]> = input.chunks(1).collect();
        let single = run(bare, &byte_by_byte);
        prop_assert_eq!(&whole.0, &single.0);
    }

    #[test]
    fn never_panics_and_only_sends_crlf_lines(
        input in proptest::collection::vec(any::<u8>(), 0..3000),
        normalize in any::<bool>(),
        prefix in 0usize..4,
    ) {
        let bare = if normalize { BareLineEnding::Normalize } else { BareLineEnding::Reject };
        let prefixes: [&[u8]; 4] = [
            b"",
            b"EHLO c.example\r\n",
            b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
            b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<bob@example.org>\r\nBDAT 100000\r\n",
        ];
        let (output, events) = run(bare, &[prefixes[prefix], &input]);
        // Every reply on the wire is a ReplySent event, in order.
        let sent: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::ReplySent { reply, .. } => Some(reply.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(replies(&output), sent);
        for line in output.split(|&b| b == b'\n') {
            prop_assert!(!line.contains(&b'\r') || line.ends_with(b"\r"));
        }
        prop_assert!(output.ends_with(b"\r\n"));
    }

    #[test]
    fn a_refused_line_does_not_break_the_sync(
        garbage in proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'), 0..700),
        bare_lf in any::<bool>(),
    ) {
        // The garbage starts with a byte no verb starts with, so it is never a command.
        let mut input = b"EHLO c.example\r\n\x01".to_vec();
        input.extend_from_slice(&garbage);
        if bare_lf {
            input.extend_from_slice(b"\nmore garbage");
        }
        input.extend_from_slice(b"\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<bob@example.org>\r\nNOOP\r\n");
        let (output, _) = run(BareLineEnding::Reject, &[&input]);
        let all = replies(&output);
        // Up to its CRLF it is one line, bare LF or not, so it gets exactly one reply
        // (RFC 5321 2.3.8, 4.2).
        prop_assert_eq!(all.len(), 6, "greeting, EHLO, refusal, MAIL, RCPT, NOOP: {:?}", all);
        prop_assert_eq!(all[2].code, 500);
        prop_assert_eq!(all[3].code, 250);
        prop_assert_eq!(all[3].lines[0].as_str(), "Sender <a@c.example> OK");
        prop_assert_eq!(all[4].lines[0].as_str(), "Recipient <bob@example.org> OK");
        prop_assert_eq!(all[5].lines[0].as_str(), "OK");
    }

    #[test]
    fn dot_stuffed_data_is_stored_as_sent(
        lines in proptest::collection::vec(
            proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\r' && *b != b'\n'), 0..80)
                .prop_map(|mut l| { if l.first() == Some(&b'x') { l[0] = b'.'; } l }),
            0..20),
        points in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut message = Vec::new();
        for line in &lines {
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
        }
        let mut input = b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".to_vec();
        for line in &lines {
            if line.first() == Some(&b'.') {
                input.push(b'.');
            }
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b".\r\n");
        let (_, events) = run(BareLineEnding::Reject, &split_at_points(&input, &points));
        let received: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::MessageReceived { message } => Some(message.data.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(received, vec![message]);
    }
}

#[test]
fn state_is_expect_mail_after_a_stored_message() {
    let mut server = session(BareLineEnding::Reject);
    server.handle_input(
        b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n.\r\n",
        0,
    );
    assert_eq!(server.state(), ServerStateKind::AwaitingStorage);
    assert_eq!(server.poll_timeout(), None, "no idle timeout while storing");
    assert!(server
        .message_stored(StorageOutcome::Stored { queue_id: None }, 5)
        .is_ok());
    assert_eq!(server.state(), ServerStateKind::ExpectMail);
    assert!(
        server
            .message_stored(StorageOutcome::Stored { queue_id: None }, 5)
            .is_err(),
        "a second message_stored is API misuse"
    );
    assert_eq!(server.poll_timeout(), Some(5 + 300_000));
}
