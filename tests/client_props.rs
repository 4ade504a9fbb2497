//! Property tests for the client side: data transparency (dot-stuffing) and the client
//! session's indifference to how the server's bytes are split, and its robustness to garbage.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;

use smtp_lab::smtp::client::{
    ClientConfig, ClientEvent, ClientSession, ClientStateKind, Envelope, SessionOutcome,
};
use smtp_lab::smtp::dot::{dot_stuff, dot_unstuff, has_bare_line_break, normalize_line_endings};

/// Messages made of lines that already end in CRLF, rich in dots, CRs and LFs.
fn crlf_message() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::collection::vec(
        prop_oneof![
            Just(b'.'),
            Just(b'a'),
            Just(b' '),
            Just(0xc3u8),
            any::<u8>().prop_filter("no line breaks inside a line", |b| {
                *b != b'\r' && *b != b'\n'
            }),
        ],
        0..20,
    );
    prop::collection::vec(line, 0..12).prop_map(|lines| {
        let mut message = Vec::new();
        for line in lines {
            message.extend(line);
            message.extend_from_slice(b"\r\n");
        }
        message
    })
}

/// Any bytes, with line breaks and dots made frequent.
fn raw_message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'.'),
            Just(b'\r'),
            Just(b'\n'),
            Just(b'x'),
            any::<u8>()
        ],
        0..200,
    )
}

/// [`raw_message`] without NUL octets, which would make it binary data that the client does
/// not send (RFC 2045 2.8); its lines stay far below the 998 octets text allows.
fn text_message() -> impl Strategy<Value = Vec<u8>> {
    raw_message().prop_map(|mut message| {
        message.retain(|&b| b != 0);
        message
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

proptest! {
    #[test]
    fn the_declared_size_is_the_size_with_crlf_line_endings(message in text_message()) {
        // RFC 1870 3: SIZE counts the message as sent, CRLF line endings and all.
        let mut client = session(true, false, &message);
        let mut sent = Vec::new();
        let mut events = Vec::new();
        client.handle_input(
            // SMTPUTF8 too: random octets in the header section need it (RFC 6531 3.2).
            b"220 mx ready\r\n250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n",
            10,
        );
        observe(&mut client, &mut sent, &mut events);
        let mail = find(&sent, b"MAIL FROM:");
        prop_assert!(mail.is_some(), "no MAIL command in {:?}", String::from_utf8_lossy(&sent));
        let line = sent[mail.unwrap_or_default()..].split(|&b| b == b'\r').next().unwrap_or_default();
        let expected = format!("SIZE={}", normalize_line_endings(&message).len());
        prop_assert!(
            line.split(|&b| b == b' ').any(|word| word == expected.as_bytes()),
            "{:?} does not declare {}",
            String::from_utf8_lossy(line),
            expected
        );
        // And it is the size of what the data carries once the receiver removes the stuffing,
        // counted from the bytes sent, not from the function the client uses.
        let line = line.to_vec();
        client.handle_input(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go on\r\n", 20);
        observe(&mut client, &mut sent, &mut events);
        let data_start = find(&sent, b"DATA\r\n").map(|at| at + b"DATA\r\n".len());
        prop_assert!(data_start.is_some(), "no DATA in {:?}", String::from_utf8_lossy(&sent));
        let received = dot_unstuff(&sent[data_start.unwrap_or_default()..]);
        let delivered = format!("SIZE={}", received.len());
        prop_assert!(
            line.split(|&b| b == b' ').any(|word| word == delivered.as_bytes()),
            "{:?} does not declare {}",
            String::from_utf8_lossy(&line),
            delivered
        );
    }

    #[test]
    fn unstuff_inverts_stuff_on_crlf_messages(message in crlf_message()) {
        prop_assert_eq!(dot_unstuff(&dot_stuff(&message)), message);
    }

    #[test]
    fn unstuff_of_stuff_is_the_normalised_message(message in raw_message()) {
        prop_assert_eq!(
            dot_unstuff(&dot_stuff(&message)),
            normalize_line_endings(&message)
        );
    }

    #[test]
    fn stuffed_data_never_ends_early_and_has_no_bare_line_breaks(message in raw_message()) {
        let data = dot_stuff(&message);
        prop_assert!(!has_bare_line_break(&data));
        prop_assert!(data.ends_with(b"\r\n.\r\n") || data == b".\r\n");
        // The end-of-data sequence occurs only at the very end (RFC 5321 4.1.1.4).
        let first_end = find(&data, b"\r\n.\r\n");
        if data.len() >= 5 {
            prop_assert_eq!(first_end, Some(data.len() - 5));
        }
        // Nor can the data start with the end line, unless the message is empty.
        if data.starts_with(b".\r\n") {
            prop_assert!(normalize_line_endings(&message).is_empty());
        }
    }
}

/// Replies a server might send, good and bad, including the special cases the client handles
/// (421, 452, fallbacks, multi-line EHLO with an empty last line).
const REPLIES: &[&str] = &[
    "220 mx.example ESMTP\r\n",
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 \r\n",
    "250-mx.example\r\n250 AUTH PLAIN\r\n",
    "250 2.1.0 Ok\r\n",
    "250 Ok\r\n",
    "251 will forward\r\n",
    "354 go ahead\r\n",
    "421 4.3.2 closing\r\n",
    "450 4.7.1 greylisted\r\n",
    "452 4.5.3 too many recipients\r\n",
    "500 what\r\n",
    "502 no\r\n",
    "503 bad sequence\r\n",
    "550 5.1.1 unknown\r\n",
    "552 5.3.4 too big\r\n",
    "554 no service\r\n",
    "221 bye\r\n",
    "235 2.7.0 ok\r\n",
    "334 \r\n",
    "535 5.7.8 bad credentials\r\n",
];

fn session(pipelining: bool, credentials: bool, message: &[u8]) -> ClientSession {
    let mut config = ClientConfig::new("client.example");
    config.prefer_pipelining = pipelining;
    config.recipients_per_transaction_max = 2;
    if credentials {
        config.credentials = Some(("alice".into(), "secret".into()));
    }
    let envelope = Envelope {
        dsn: Default::default(),
        reverse_path: "alice@example.org".into(),
        forward_paths: vec![
            "a@example.net".into(),
            "b@example.net".into(),
            "c@example.net".into(),
            "jürgen@example.de".into(),
        ],
    };
    let mut session = ClientSession::new(config, envelope, message.to_vec()).expect("valid setup");
    session.handle_connected(0);
    session
}

/// Everything observable: the bytes sent, the events, the outcome.
fn observe(session: &mut ClientSession, sent: &mut Vec<u8>, events: &mut Vec<ClientEvent>) {
    while let Some(bytes) = session.poll_output() {
        sent.extend(bytes);
    }
    while let Some(event) = session.poll_event() {
        events.push(event);
    }
}

fn run_split(
    pipelining: bool,
    credentials: bool,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Vec<ClientEvent>, Option<SessionOutcome>) {
    let mut client = session(pipelining, credentials, b"Subject: x\r\n\r\n.dot\r\n");
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    for point in points {
        client.handle_input(&input[start..point], 10);
        observe(&mut client, &mut sent, &mut events);
        start = point;
    }
    client.handle_peer_closed();
    observe(&mut client, &mut sent, &mut events);
    (sent, events, client.outcome().cloned())
}

fn check_invariants(sent: &[u8], outcome: Option<&SessionOutcome>) -> Result<(), TestCaseError> {
    prop_assert!(
        !has_bare_line_break(sent),
        "the client sent a bare CR or LF"
    );
    let outcome = outcome.expect("finished after the peer closed");
    prop_assert_eq!(outcome.recipients.len(), 4);
    // Without SMTPUTF8 nothing non-ASCII may be sent.
    let utf8_offered = outcome.extensions.as_ref().is_some_and(|e| e.smtputf8);
    if !utf8_offered {
        prop_assert!(find(sent, "jürgen".as_bytes()).is_none());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn splitting_server_bytes_anywhere_changes_nothing(
        script in prop::collection::vec(0..REPLIES.len(), 0..16),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        pipelining in any::<bool>(),
        credentials in any::<bool>(),
    ) {
        let input: Vec<u8> = script.iter().flat_map(|&i| REPLIES[i].bytes()).collect();
        let whole = run_split(pipelining, credentials, &input, &[]);
        let split = run_split(pipelining, credentials, &input, &cuts);
        check_invariants(&whole.0, whole.2.as_ref())?;
        prop_assert_eq!(&whole, &split);
        // One byte at a time, too.
        let every_byte: Vec<usize> = (0..input.len()).collect();
        let bytewise = run_split(pipelining, credentials, &input, &every_byte);
        prop_assert_eq!(&whole, &bytewise);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::collection::vec(0..REPLIES.len(), 0..6),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        timeout_at in prop::option::of(0u64..1_000_000),
        pipelining in any::<bool>(),
        message in text_message(),
    ) {
        let mut client = session(pipelining, false, &message);
        let mut sent = Vec::new();
        let mut events = Vec::new();
        for &index in &prefix {
            client.handle_input(REPLIES[index].as_bytes(), 1);
            observe(&mut client, &mut sent, &mut events);
        }
        for chunk in &chunks {
            client.handle_input(chunk, 2);
            observe(&mut client, &mut sent, &mut events);
        }
        if let Some(now) = timeout_at {
            client.handle_timeout(now);
            observe(&mut client, &mut sent, &mut events);
        }
        client.handle_peer_closed();
        observe(&mut client, &mut sent, &mut events);
        check_invariants(&sent, client.outcome())?;
        prop_assert!(client.is_finished());
        prop_assert_eq!(events.last(), Some(&ClientEvent::Finished));
        prop_assert_eq!(
            events.iter().filter(|e| **e == ClientEvent::Finished).count(),
            1
        );
    }
}

/// What happens to a session carrying several messages, one step at a time.
#[derive(Clone, Debug)]
enum Step {
    Reply(usize),
    /// The reply a willing server gives in the client's state, so that runs get through
    /// whole transactions, idle connections and later messages, not only early failures.
    Cooperate,
    /// Time passes by this much and the session's timer is checked.
    Wait(u64),
    /// The caller hands over another message (it may be refused).
    AddMessage,
}

/// What a willing server answers in `state`; `None` when the client waits for nothing.
fn cooperative_reply(state: ClientStateKind) -> Option<&'static str> {
    Some(match state {
        ClientStateKind::ExpectGreeting => REPLIES[0],
        ClientStateKind::ExpectEhloReply => REPLIES[1],
        ClientStateKind::ExpectHeloReply
        | ClientStateKind::ExpectMailReply
        | ClientStateKind::ExpectRcptReplies
        | ClientStateKind::ExpectRsetReply
        | ClientStateKind::ExpectDataReply
        | ClientStateKind::ExpectChunkReply
        | ClientStateKind::ExpectLastChunkReply => "250 2.0.0 ok\r\n",
        ClientStateKind::ExpectAuthReply => "235 2.7.0 ok\r\n",
        ClientStateKind::ExpectDataGoAhead => "354 go ahead\r\n",
        ClientStateKind::ExpectQuitReply => "221 bye\r\n",
        ClientStateKind::Idle | ClientStateKind::Finished => return None,
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..REPLIES.len()).prop_map(Step::Reply),
        16 => Just(Step::Cooperate),
        1 => (0u64..400_000).prop_map(Step::Wait),
        2 => Just(Step::AddMessage),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_message_of_a_session_gets_exactly_one_outcome(
        steps in prop::collection::vec(step(), 0..40),
        pipelining in any::<bool>(),
        keep_open in prop::option::of(1u64..5_000),
        chunk in prop::option::of(1usize..12),
    ) {
        let mut config = ClientConfig::new("client.example");
        config.prefer_pipelining = pipelining;
        config.keep_open_ms = keep_open;
        config.bdat_chunk_octets = chunk;
        config.transactions_max = 4;
        let envelope = |n: usize| Envelope {
            dsn: Default::default(),
            reverse_path: "alice@example.org".into(),
            forward_paths: (0..=n % 3).map(|r| format!("r{n}x{r}@example.net")).collect(),
        };
        let mut client = ClientSession::new(config, envelope(0), b"Subject: 0\r\n\r\nx\r\n".to_vec())
            .expect("valid setup");
        let mut now = 0;
        client.handle_connected(now);
        let mut given = vec![envelope(0)];
        let mut finished = Vec::new();
        let mut sent = Vec::new();
        let mut drain = |client: &mut ClientSession, finished: &mut Vec<usize>| {
            while let Some(bytes) = client.poll_output() {
                sent.extend(bytes);
            }
            while let Some(event) = client.poll_event() {
                if let ClientEvent::MessageFinished { index } = event {
                    finished.push(index);
                }
            }
        };
        for step in &steps {
            match step {
                Step::Reply(index) => client.handle_input(REPLIES[*index].as_bytes(), now),
                Step::Cooperate => {
                    if let Some(reply) = cooperative_reply(client.state()) {
                        client.handle_input(reply.as_bytes(), now);
                    }
                }
                Step::Wait(ms) => {
                    now += ms;
                    client.handle_timeout(now);
                }
                Step::AddMessage => {
                    let next = envelope(given.len());
                    let body = format!("Subject: {}\r\n\r\nx\r\n", given.len());
                    if let Ok(index) = client.add_message(next.clone(), body.as_bytes(), now) {
                        prop_assert_eq!(index, given.len());
                        given.push(next);
                    }
                }
            }
            drain(&mut client, &mut finished);
            if !client.is_finished() {
                prop_assert!(
                    client.poll_timeout().is_some(),
                    "an open session always has a deadline (state {:?})",
                    client.state()
                );
            }
        }
        client.handle_peer_closed();
        drain(&mut client, &mut finished);
        prop_assert!(client.is_finished());
        // Outside BDAT chunks, whose octets are counted (RFC 3030 2), every line ends in CRLF
        // and no bare CR or LF is sent; each chunk is as long as its command says.
        let mut at = 0;
        while at < sent.len() {
            let end = find(&sent[at..], b"\r\n").map(|end| at + end);
            prop_assert!(end.is_some(), "a command line without its CRLF: {:?}", &sent[at..]);
            let end = end.unwrap_or_default();
            let line = &sent[at..end];
            prop_assert!(!line.contains(&b'\r') && !line.contains(&b'\n'), "{:?}", line);
            at = end + 2;
            if let Some(size) = line.strip_prefix(b"BDAT ") {
                prop_assert!(chunk.is_some());
                let size = String::from_utf8_lossy(size);
                let size: usize = size.trim_end_matches(" LAST").parse().unwrap_or(usize::MAX);
                prop_assert!(size <= chunk.unwrap_or_default(), "BDAT {}", size);
                prop_assert!(at + size <= sent.len(), "a chunk cut short");
                at += size;
            }
        }
        let expected: Vec<usize> = (0..given.len()).collect();
        prop_assert_eq!(&finished, &expected, "each message finished once, in order");
        let outcomes = client.outcomes();
        prop_assert_eq!(outcomes.len(), given.len());
        for (outcome, envelope) in outcomes.iter().zip(&given) {
            let paths: Vec<&str> = outcome.recipients.iter().map(|r| r.forward_path.as_str()).collect();
            let wanted: Vec<&str> = envelope.forward_paths.iter().map(String::as_str).collect();
            prop_assert_eq!(paths, wanted);
        }
    }
}
