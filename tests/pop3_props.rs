#![cfg(not(target_arch = "wasm32"))]
//! Properties of the POP3 sessions: any split of the input gives the same output, no input
//! makes them panic or send a bare line ending, and a client downloading from a server always
//! ends with exactly the maildrop's messages that it may have without UTF-8 mode.

mod pop3_common;

use pop3_common::run_pair;
use proptest::prelude::*;
use smtp_lab::pop3::client::{Pop3Client, Pop3ClientConfig};
use smtp_lab::pop3::maildrop::{InMemoryStore, StoredMessage};
use smtp_lab::pop3::server::{Pop3Server, Pop3ServerConfig, Pop3ServerEvent};
use smtp_lab::pop3::wire::canonical_message;

fn sample_store() -> InMemoryStore {
    let mut store = InMemoryStore::new();
    store.add_user("alice", "secret");
    store.deliver(
        "alice",
        StoredMessage::new("a1", "Subject: one\r\n\r\n.dot\r\n.\r\nend\r\n"),
    );
    store.deliver("alice", StoredMessage::new("a2", "Subject: two\n\nbody\n"));
    store.deliver("alice", StoredMessage::new("a3", ""));
    store
}

/// Command lines a client might send, valid or not, in any state.
fn command_line() -> impl Strategy<Value = Vec<u8>> {
    let words = prop_oneof![
        Just("USER alice".to_string()),
        Just("PASS secret".to_string()),
        Just("PASS wrong".to_string()),
        Just("STAT".to_string()),
        Just("LIST".to_string()),
        Just("UIDL".to_string()),
        Just("CAPA".to_string()),
        Just("NOOP".to_string()),
        Just("RSET".to_string()),
        Just("QUIT".to_string()),
        Just("APOP alice x".to_string()),
        Just("UTF8".to_string()),
        Just("USER jos\u{e9}".to_string()),
        (0u32..5).prop_map(|n| format!("LIST {n}")),
        (0u32..5).prop_map(|n| format!("RETR {n}")),
        (0u32..5).prop_map(|n| format!("DELE {n}")),
        (0u32..5).prop_map(|n| format!("UIDL {n}")),
        (0u32..5, 0u32..3).prop_map(|(n, m)| format!("TOP {n} {m}")),
        "[ -~]{0,300}",
    ];
    (words, prop_oneof![Just("\r\n"), Just("\n"), Just("\r")]).prop_map(|(line, end)| {
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(end.as_bytes());
        bytes
    })
}

fn script() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(command_line(), 0..30).prop_map(|lines| lines.concat())
}

/// Everything a server said and did for `input` fed in the pieces cut at `cuts`.
fn run_server(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<Pop3ServerEvent>, String) {
    let mut server = Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), sample_store(), 0);
    let mut positions: Vec<usize> = cuts.iter().map(|cut| cut % (input.len() + 1)).collect();
    positions.push(0);
    positions.push(input.len());
    positions.sort_unstable();
    for pair in positions.windows(2) {
        server.handle_input(&input[pair[0]..pair[1]], 0);
    }
    server.handle_peer_closed();
    let mut output = Vec::new();
    while let Some(bytes) = server.poll_output() {
        output.extend_from_slice(&bytes);
    }
    let events = std::iter::from_fn(|| server.poll_event()).collect();
    (output, events, server.state().to_string())
}

fn has_bare_line_ending(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(index, &byte)| match byte {
        b'\n' => index == 0 || bytes[index - 1] != b'\r',
        b'\r' => bytes.get(index + 1) != Some(&b'\n'),
        _ => false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_output_does_not_depend_on_how_input_is_split(
        input in script(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run_server(&input, &[]);
        let split = run_server(&input, &cuts);
        prop_assert_eq!(&whole, &split);
        let one_by_one: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&whole, &run_server(&input, &one_by_one));
    }

    #[test]
    fn server_survives_arbitrary_bytes(
        login in any::<bool>(),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..8),
    ) {
        let mut server =
            Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), sample_store(), 0);
        if login {
            server.handle_input(b"USER alice\r\nPASS secret\r\n", 0);
        }
        for chunk in &chunks {
            server.handle_input(chunk, 0);
        }
        server.handle_timeout(u64::MAX);
        let mut output = Vec::new();
        while let Some(bytes) = server.poll_output() {
            prop_assert!(bytes.starts_with(b"+OK") || bytes.starts_with(b"-ERR"));
            prop_assert!(bytes.ends_with(b"\r\n"));
            output.extend_from_slice(&bytes);
        }
        prop_assert!(!has_bare_line_ending(&output));
        // Without a QUIT, nothing may be deleted.
        let quit_seen = chunks.concat().windows(4).any(|w| w.eq_ignore_ascii_case(b"QUIT"));
        while let Some(event) = server.poll_event() {
            if let Pop3ServerEvent::MaildropUpdated { .. } = event {
                prop_assert!(quit_seen);
            }
        }
    }

    #[test]
    fn client_survives_arbitrary_bytes_and_any_split(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        cut in any::<usize>(),
        utf8_user in any::<bool>(),
    ) {
        // A UTF-8 user name takes the RFC 6856 path (CAPA, UTF8) through the same input.
        let user = if utf8_user { "jos\u{e9}" } else { "alice" };
        let run = |pieces: &[&[u8]]| {
            let mut client = Pop3Client::new(Pop3ClientConfig::new(user, "secret")).unwrap();
            for piece in pieces {
                client.handle_input(piece, 0);
            }
            client.handle_peer_closed();
            let output: Vec<u8> = std::iter::from_fn(|| client.poll_output()).flatten().collect();
            (output, client.outcome().cloned())
        };
        let cut = cut % (input.len() + 1);
        let whole = run(&[&input]);
        prop_assert!(whole.1.is_some());
        prop_assert!(!has_bare_line_ending(&whole.0));
        prop_assert_eq!(&whole, &run(&[&input[..cut], &input[cut..]]));
    }

    #[test]
    fn client_ends_with_exactly_the_maildrops_messages(
        bodies in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
                0..120,
            ),
            0..6,
        ),
        delete in any::<bool>(),
        chunk_octets in 1usize..64,
    ) {
        let mut store = InMemoryStore::new();
        store.add_user("alice", "secret");
        for (index, body) in bodies.iter().enumerate() {
            store.deliver("alice", StoredMessage::new(format!("uid{index}"), body.clone()));
        }
        let mut config = Pop3ClientConfig::new("alice", "secret");
        config.delete_after_retrieve = delete;
        let run = run_pair(store, config, chunk_octets);
        prop_assert!(run.outcome.is_completed(), "{:?}", run.outcome.result);
        let retrieved: Vec<(Option<String>, Vec<u8>)> = run
            .outcome
            .retrieved
            .iter()
            .map(|message| (message.uid.clone(), message.bytes.clone()))
            .collect();
        // The client turns UTF-8 mode on (RFC 6856 2.1), so every message comes as it is,
        // header fields that are not ASCII included.
        let expected: Vec<(Option<String>, Vec<u8>)> = bodies
            .iter()
            .enumerate()
            .map(|(index, body)| (Some(format!("uid{index}")), canonical_message(body)))
            .collect();
        prop_assert_eq!(retrieved, expected);
        prop_assert!(run.outcome.errors.is_empty(), "{:?}", run.outcome.errors);
        let left = run.store.maildrop("alice").unwrap().messages.len();
        prop_assert_eq!(left, if delete { 0 } else { bodies.len() });
        prop_assert!(!has_bare_line_ending(&run.client_bytes));
        prop_assert!(!has_bare_line_ending(&run.server_bytes));
    }
}
