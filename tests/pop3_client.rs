#![cfg(not(target_arch = "wasm32"))]
//! The POP3 client session, driven against the server engine in memory and against scripted
//! server responses.

mod pop3_common;

use pop3_common::run_pair;
use smtp_lab::pop3::client::{
    Pop3Client, Pop3ClientConfig, Pop3ClientEvent, Pop3ClientSetupError, Pop3ClientState,
    Pop3SessionResult,
};
use smtp_lab::pop3::maildrop::{InMemoryStore, StoredMessage};
use smtp_lab::pop3::wire::canonical_message;

fn store_with(messages: &[(&str, &[u8])]) -> InMemoryStore {
    let mut store = InMemoryStore::new();
    store.add_user("alice", "secret");
    for (uid, bytes) in messages {
        store.deliver("alice", StoredMessage::new(*uid, bytes.to_vec()));
    }
    store
}

fn sample_store() -> InMemoryStore {
    store_with(&[
        ("a1", b"Subject: one\r\n\r\nHello\r\n"),
        (
            "a2",
            b"Subject: two\r\n\r\n.leading dot\r\n.\r\n..\r\nend\r\n",
        ),
        ("a3", b"Subject: three\n\nbare LF lines\nno final newline"),
    ])
}

/// A scripted server: feeds `responses` one at a time, each after the client's next command,
/// and returns every command line the client sent.
fn scripted(config: Pop3ClientConfig, responses: &[&[u8]]) -> (Pop3Client, Vec<String>) {
    let mut client = Pop3Client::new(config).unwrap();
    client.handle_connected(0);
    let mut sent = Vec::new();
    for response in responses {
        client.handle_input(response, 0);
        while let Some(bytes) = client.poll_output() {
            sent.push(String::from_utf8(bytes).unwrap());
        }
    }
    (client, sent)
}

fn config() -> Pop3ClientConfig {
    Pop3ClientConfig::new("alice", "secret")
}

#[test]
fn downloads_and_deletes_every_message() {
    let store = sample_store();
    let expected: Vec<(String, Vec<u8>)> = store
        .maildrop("alice")
        .unwrap()
        .messages
        .iter()
        .map(|message| (message.uid.clone(), canonical_message(&message.bytes)))
        .collect();
    let run = run_pair(store, config(), 4096);
    assert_eq!(run.outcome.result, Pop3SessionResult::Completed);
    let retrieved: Vec<(String, Vec<u8>)> = run
        .outcome
        .retrieved
        .iter()
        .map(|message| (message.uid.clone().unwrap(), message.bytes.clone()))
        .collect();
    assert_eq!(retrieved, expected);
    assert_eq!(run.outcome.marked_for_deletion, vec![1, 2, 3]);
    assert!(run.outcome.deletions_committed);
    let octets: usize = expected.iter().map(|(_, bytes)| bytes.len()).sum();
    assert_eq!(octets, 23 + 42 + 51);
    assert_eq!(run.outcome.maildrop_size, Some((3, octets as u64)));
    assert!(run.store.maildrop("alice").unwrap().messages.is_empty());
    let commands = String::from_utf8(run.client_bytes).unwrap();
    assert_eq!(
        commands,
        "CAPA\r\nUTF8\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n\
         DELE 1\r\nRETR 2\r\nDELE 2\r\nRETR 3\r\nDELE 3\r\nQUIT\r\n"
    );
}

#[test]
fn keeps_mail_on_the_server_when_told() {
    let mut config = config();
    config.delete_after_retrieve = false;
    let run = run_pair(sample_store(), config, 7);
    assert!(run.outcome.is_completed());
    assert_eq!(run.outcome.retrieved.len(), 3);
    assert!(run.outcome.marked_for_deletion.is_empty());
    assert!(!run.outcome.deletions_committed);
    assert_eq!(run.store.maildrop("alice").unwrap().messages.len(), 3);
    assert!(!String::from_utf8(run.client_bytes)
        .unwrap()
        .contains("DELE"));
}

#[test]
fn wrong_password_fails_authentication_and_quits() {
    let run = run_pair(
        sample_store(),
        Pop3ClientConfig::new("alice", "wrong"),
        4096,
    );
    assert_eq!(
        run.outcome.result,
        Pop3SessionResult::AuthenticationFailed {
            response: "-ERR [AUTH] invalid user name or password".into()
        }
    );
    assert!(run.outcome.retrieved.is_empty());
    assert!(String::from_utf8(run.client_bytes)
        .unwrap()
        .ends_with("PASS wrong\r\nQUIT\r\n"));
    assert_eq!(run.store.maildrop("alice").unwrap().messages.len(), 3);
}

#[test]
fn busy_maildrop_is_reported_with_its_response_code() {
    let mut store = sample_store();
    store.set_in_use("alice", true);
    let run = run_pair(store, config(), 4096);
    assert_eq!(
        run.outcome.result,
        Pop3SessionResult::AuthenticationFailed {
            response: "-ERR [IN-USE] maildrop already locked".into()
        }
    );
}

#[test]
fn empty_maildrop_needs_no_uidl() {
    let run = run_pair(store_with(&[]), config(), 4096);
    assert!(run.outcome.is_completed());
    assert_eq!(run.outcome.maildrop_size, Some((0, 0)));
    assert_eq!(
        String::from_utf8(run.client_bytes).unwrap(),
        "CAPA\r\nUTF8\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nQUIT\r\n"
    );
}

#[test]
fn messages_max_leaves_the_rest_for_later() {
    let mut config = config();
    config.messages_max = 2;
    let run = run_pair(sample_store(), config, 4096);
    assert!(run.outcome.is_completed());
    assert_eq!(run.outcome.retrieved.len(), 2);
    let left: Vec<&str> = run
        .store
        .maildrop("alice")
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.as_str())
        .collect();
    assert_eq!(left, vec!["a3"]);
    let said: Vec<_> = messages_left(&run.client_events);
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].0, 1);
    assert!(said[0].1.contains("at most 2 messages"), "{said:?}");
}

/// The client's `MessagesLeft` events: (count, reason).
fn messages_left(events: &[Pop3ClientEvent]) -> Vec<(usize, String)> {
    events
        .iter()
        .filter_map(|event| match event {
            Pop3ClientEvent::MessagesLeft { count, reason } => Some((*count, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn password_is_masked_in_events_and_states_follow_the_diagram() {
    let run = run_pair(sample_store(), config(), 4096);
    let commands: Vec<&str> = run
        .client_events
        .iter()
        .filter_map(|event| match event {
            Pop3ClientEvent::CommandSent { line } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(commands.contains(&"PASS ********"));
    assert!(!commands.iter().any(|line| line.contains("secret")));
    let states = states_entered(&run.client_events);
    assert_eq!(
        states[..3],
        [
            Pop3ClientState::ExpectCapaReply,
            Pop3ClientState::ExpectUtf8Reply,
            Pop3ClientState::ExpectUserReply
        ]
    );
    assert_eq!(states.last(), Some(&Pop3ClientState::Finished));
    let retrieved = run
        .client_events
        .iter()
        .filter(|event| matches!(event, Pop3ClientEvent::MessageRetrieved { .. }))
        .count();
    assert_eq!(retrieved, 3);
    assert!(matches!(
        run.client_events.last(),
        Some(Pop3ClientEvent::StateChanged { .. }) | Some(Pop3ClientEvent::Finished { .. })
    ));
}

/// The greeting, a server of RFC 1939 alone refusing CAPA, and the login.
const LOGIN: [&[u8]; 4] = [
    b"+OK ready\r\n",
    b"-ERR unknown command\r\n",
    b"+OK\r\n",
    b"+OK logged in\r\n",
];

#[test]
fn scripted_server_without_uidl_gives_messages_without_uids() {
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 1 20\r\n",
        b"+OK\r\n1 20\r\n.\r\n",
        b"-ERR unknown command\r\n",
        b"+OK\r\n..hidden\r\nbody\r\n.\r\n",
        b"+OK\r\n",
        b"+OK bye\r\n",
    ]);
    let (client, sent) = scripted(config(), &responses);
    assert_eq!(
        sent,
        vec![
            "CAPA\r\n",
            "USER alice\r\n",
            "PASS secret\r\n",
            "STAT\r\n",
            "LIST\r\n",
            "UIDL\r\n",
            "RETR 1\r\n",
            "DELE 1\r\n",
            "QUIT\r\n"
        ]
    );
    let outcome = client.outcome().unwrap();
    assert!(outcome.is_completed());
    assert_eq!(outcome.retrieved[0].uid, None);
    assert_eq!(outcome.retrieved[0].bytes, b".hidden\r\nbody\r\n");
    assert!(outcome.deletions_committed);
}

#[test]
fn any_split_of_the_server_bytes_gives_the_same_result() {
    let script: &[u8] =
        b"+OK ready\r\n-ERR\r\n+OK\r\n+OK\r\n+OK 2 30\r\n+OK\r\n1 10\r\n2 20\r\n.\r\n\
        +OK\r\n1 u1\r\n2 u2\r\n.\r\n+OK\r\n.a\r\n..\r\n.\r\n+OK\r\n+OK\r\nx\r\n.\r\n+OK\r\n+OK\r\n";
    let whole = {
        let mut client = Pop3Client::new(config()).unwrap();
        client.handle_input(script, 0);
        client.outcome().unwrap().clone()
    };
    assert!(whole.is_completed(), "{whole:?}");
    assert_eq!(whole.retrieved[0].bytes, b"a\r\n.\r\n");
    assert_eq!(whole.retrieved[1].uid.as_deref(), Some("u2"));
    for split in 1..script.len() {
        let mut client = Pop3Client::new(config()).unwrap();
        client.handle_input(&script[..split], 0);
        client.handle_input(&script[split..], 0);
        assert_eq!(client.outcome(), Some(&whole), "split at {split}");
    }
    let mut client = Pop3Client::new(config()).unwrap();
    for byte in script {
        client.handle_input(&[*byte], 0);
    }
    assert_eq!(client.outcome(), Some(&whole));
}

#[test]
fn bare_lf_responses_are_read_leniently() {
    let script: &[u8] =
        b"+OK ready\n-ERR\n+OK\n+OK\n+OK 1 5\n+OK\n1 5\n.\n+OK\n1 u1\n.\n+OK\nhi\n.\n+OK\n+OK\n";
    let mut client = Pop3Client::new(config()).unwrap();
    client.handle_input(script, 0);
    let outcome = client.outcome().unwrap();
    assert!(outcome.is_completed(), "{outcome:?}");
    assert_eq!(outcome.retrieved[0].bytes, b"hi\n");
}

#[test]
fn a_dot_after_a_bare_lf_inside_a_crlf_message_is_content_not_its_end() {
    // A server whose lines end at CRLF sends a message holding "\n.\n" (RFC 1939 3: a line
    // ends at CRLF, and the server stuffs only what starts one). Taken for the end, the rest
    // would be read as DELE's reply and the whole message deleted with a part of it kept.
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 1 40\r\n",
        b"+OK\r\n1 40\r\n.\r\n",
        b"+OK\r\n1 u1\r\n.\r\n",
        b"+OK\r\nSubject: x\r\n\r\nfirst\n.\n+OK second part\r\n..third\n..\r\n.\r\n",
        b"+OK deleted\r\n",
        b"+OK bye\r\n",
    ]);
    let (client, sent) = scripted(config(), &responses);
    let outcome = client.outcome().expect("the session ended");
    assert!(outcome.is_completed(), "{outcome:?}");
    assert_eq!(
        outcome.retrieved[0].bytes,
        b"Subject: x\r\n\r\nfirst\n.\n+OK second part\r\n.third\n..\r\n"
    );
    assert_eq!(&sent[sent.len() - 2..], ["DELE 1\r\n", "QUIT\r\n"]);
    assert!(outcome.deletions_committed);
    // Cut off before its end, the message is not taken and nothing is deleted.
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 1 40\r\n",
        b"+OK\r\n1 40\r\n.\r\n",
        b"+OK\r\n1 u1\r\n.\r\n",
        b"+OK\r\nSubject: x\r\n\r\nfirst\n.\n",
    ]);
    let (mut client, sent) = scripted(config(), &responses);
    assert_eq!(sent.last().map(String::as_str), Some("RETR 1\r\n"));
    client.handle_peer_closed();
    let outcome = client.outcome().expect("the session ended");
    assert!(outcome.retrieved.is_empty(), "{outcome:?}");
    assert!(outcome.marked_for_deletion.is_empty());
}

#[test]
fn dropped_connection_mid_retr_commits_nothing() {
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 2 20\r\n",
        b"+OK\r\n1 10\r\n2 10\r\n.\r\n",
        b"+OK\r\n1 u1\r\n2 u2\r\n.\r\n",
        b"+OK\r\none\r\n.\r\n",
        b"+OK\r\n",
        b"+OK\r\ntw",
    ]);
    let (mut client, sent) = scripted(config(), &responses);
    assert_eq!(sent.last().map(String::as_str), Some("RETR 2\r\n"));
    client.handle_peer_closed();
    let outcome = client.outcome().unwrap();
    assert_eq!(
        outcome.result,
        Pop3SessionResult::ConnectionClosed {
            state: Pop3ClientState::ExpectRetrReply
        }
    );
    assert_eq!(outcome.retrieved.len(), 1);
    assert_eq!(outcome.marked_for_deletion, vec![1]);
    assert!(!outcome.deletions_committed);
    assert!(!outcome.quit_refused);
}

#[test]
fn retr_and_dele_errors_are_recorded_and_skipped() {
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 2 20\r\n",
        b"+OK\r\n1 10\r\n2 10\r\n.\r\n",
        b"+OK\r\n1 u1\r\n2 u2\r\n.\r\n",
        b"-ERR no such message\r\n",
        b"+OK\r\ntwo\r\n.\r\n",
        b"-ERR cannot\r\n",
        b"+OK bye\r\n",
    ]);
    let (client, sent) = scripted(config(), &responses);
    assert_eq!(sent.last().map(String::as_str), Some("QUIT\r\n"));
    let outcome = client.outcome().unwrap();
    assert!(outcome.is_completed());
    assert_eq!(outcome.retrieved.len(), 1);
    assert_eq!(outcome.retrieved[0].number, 2);
    assert_eq!(
        outcome.errors,
        vec![
            "RETR 1: -ERR no such message".to_string(),
            "DELE 2: -ERR cannot".to_string()
        ]
    );
    assert!(!outcome.deletions_committed);
}

#[test]
fn quit_error_means_deletions_not_known_to_be_committed() {
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 1 10\r\n",
        b"+OK\r\n1 10\r\n.\r\n",
        b"+OK\r\n1 u1\r\n.\r\n",
        b"+OK\r\nx\r\n.\r\n",
        b"+OK\r\n",
        b"-ERR some deleted messages not removed\r\n",
    ]);
    let (client, _) = scripted(config(), &responses);
    let outcome = client.outcome().unwrap();
    assert!(!outcome.deletions_committed);
    assert!(outcome.quit_refused);
    assert_eq!(
        outcome.errors,
        vec!["QUIT: -ERR some deleted messages not removed".to_string()]
    );
}

#[test]
fn refusals_and_garbage_end_the_session() {
    let (client, sent) = scripted(config(), &[b"-ERR go away\r\n"]);
    assert!(sent.is_empty());
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::Refused { .. }
    ));

    let (client, sent) = scripted(config(), &[b"220 smtp.example ESMTP\r\n"]);
    assert!(sent.is_empty());
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));

    let (client, _) = scripted(config(), &[b"+OKAY\r\n"]);
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));

    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.push(b"+OK lots\r\n");
    let (client, _) = scripted(config(), &responses);
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));

    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[b"-ERR mailbox broken\r\n", b"+OK bye\r\n"]);
    let (client, sent) = scripted(config(), &responses);
    assert_eq!(sent.last().map(String::as_str), Some("QUIT\r\n"));
    assert_eq!(
        client.outcome().unwrap().result,
        Pop3SessionResult::Refused {
            command: "STAT".into(),
            response: "-ERR mailbox broken".into()
        }
    );

    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[b"+OK 1 1\r\n", b"+OK\r\nnot a listing\r\n.\r\n"]);
    let (client, _) = scripted(config(), &responses);
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));
}

#[test]
fn authentication_failure_survives_the_server_closing_after_quit() {
    let (mut client, sent) = scripted(
        config(),
        &[b"+OK\r\n", b"-ERR\r\n", b"+OK\r\n", b"-ERR [AUTH] no\r\n"],
    );
    assert_eq!(sent.last().map(String::as_str), Some("QUIT\r\n"));
    client.handle_peer_closed();
    assert_eq!(
        client.outcome().unwrap().result,
        Pop3SessionResult::AuthenticationFailed {
            response: "-ERR [AUTH] no".into()
        }
    );
}

#[test]
fn a_message_larger_than_its_listed_size_ends_the_session() {
    // LIST said 5 octets, so the client asked for it; the server then sent more than the
    // client takes: it is not telling the truth, and the session ends.
    let mut config = config();
    config.message_octets_max = 10;
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    responses.extend_from_slice(&[
        b"+OK 1 5\r\n",
        b"+OK\r\n1 5\r\n.\r\n",
        b"+OK\r\n1 u1\r\n.\r\n",
        b"+OK\r\n0123456789abcdef\r\n.\r\n",
    ]);
    let (client, _) = scripted(config, &responses);
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));
}

#[test]
fn timeout_ends_the_wait() {
    let mut client = Pop3Client::new(config()).unwrap();
    client.handle_connected(1000);
    assert_eq!(client.poll_timeout(), Some(601_000));
    client.handle_timeout(600_999);
    assert!(!client.is_finished());
    client.handle_input(b"+OK hi\r\n", 5000);
    assert_eq!(client.poll_timeout(), Some(605_000));
    client.handle_timeout(605_000);
    assert_eq!(
        client.outcome().unwrap().result,
        Pop3SessionResult::TimedOut {
            state: Pop3ClientState::ExpectCapaReply
        }
    );
    assert_eq!(client.poll_timeout(), None);
}

/// The states the client entered, in order.
fn states_entered(events: &[Pop3ClientEvent]) -> Vec<Pop3ClientState> {
    events
        .iter()
        .filter_map(|event| match event {
            Pop3ClientEvent::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn setup_errors_are_caller_mistakes() {
    let long_utf8_user = "\u{e9}".repeat(125);
    let long_password = "x".repeat(300);
    for (user, password, expected) in [
        ("", "x", Pop3ClientSetupError::InvalidUser),
        ("a b", "x", Pop3ClientSetupError::InvalidUser),
        // A space or a control character of any script would still break USER's one argument.
        ("jo\u{a0}s\u{e9}", "x", Pop3ClientSetupError::InvalidUser),
        ("jo\u{85}s", "x", Pop3ClientSetupError::InvalidUser),
        // The limit counts octets, and each \u{e9} is two.
        (&long_utf8_user, "x", Pop3ClientSetupError::LineTooLong),
        ("a", "x\r\nDELE 1", Pop3ClientSetupError::InvalidPassword),
        ("a", &long_password, Pop3ClientSetupError::LineTooLong),
    ] {
        assert_eq!(
            Pop3Client::new(Pop3ClientConfig::new(user, password)).unwrap_err(),
            expected,
            "{user:?} / {password:?}"
        );
    }
    assert!(Pop3Client::new(Pop3ClientConfig::new("jos\u{e9}", "x")).is_ok());
}

fn utf8_store() -> InMemoryStore {
    let mut store = InMemoryStore::new();
    store.add_user("jos\u{e9}", "jos\u{e9}-pw");
    store.deliver(
        "jos\u{e9}",
        StoredMessage::new("j1", b"Subject: hola\r\n\r\nHola\r\n".to_vec()),
    );
    store
}

fn utf8_config() -> Pop3ClientConfig {
    Pop3ClientConfig::new("jos\u{e9}", "jos\u{e9}-pw")
}

#[test]
fn utf8_user_name_logs_in_after_capa_and_utf8() {
    for chunk_octets in [1, 4096] {
        let run = run_pair(utf8_store(), utf8_config(), chunk_octets);
        assert_eq!(run.outcome.result, Pop3SessionResult::Completed);
        assert_eq!(run.outcome.retrieved.len(), 1);
        assert!(run.outcome.deletions_committed);
        assert!(run.store.maildrop("jos\u{e9}").unwrap().messages.is_empty());
        assert_eq!(
            String::from_utf8(run.client_bytes).unwrap(),
            "CAPA\r\nUTF8\r\nUSER jos\u{e9}\r\nPASS jos\u{e9}-pw\r\nSTAT\r\nLIST\r\nUIDL\r\n\
             RETR 1\r\nDELE 1\r\nQUIT\r\n"
        );
        let states: Vec<Pop3ClientState> = states_entered(&run.client_events)
            .into_iter()
            .take(3)
            .collect();
        assert_eq!(
            states,
            vec![
                Pop3ClientState::ExpectCapaReply,
                Pop3ClientState::ExpectUtf8Reply,
                Pop3ClientState::ExpectUserReply
            ]
        );
    }
}

#[test]
fn utf8_user_name_is_not_sent_to_a_server_without_utf8_user() {
    let capa_without_utf8: &[u8] = b"+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n";
    // RFC 6856 2: UTF8 without its USER argument does not take UTF-8 user names.
    let capa_utf8_without_user: &[u8] = b"+OK\r\nUSER\r\nUTF8\r\n.\r\n";
    for capa in [capa_without_utf8, capa_utf8_without_user] {
        let (mut client, sent) = scripted(utf8_config(), &[b"+OK ready\r\n", capa]);
        assert_eq!(sent, vec!["CAPA\r\n", "QUIT\r\n"]);
        assert_eq!(client.state(), Pop3ClientState::ExpectQuitReply);
        // The server closes after QUIT; the reason stays what the session was about.
        client.handle_peer_closed();
        let outcome = client.outcome().unwrap();
        assert!(matches!(
            &outcome.result,
            Pop3SessionResult::Utf8UserNotSupported { reason } if reason.contains("RFC 6856")
        ));
        assert!(outcome.retrieved.is_empty());
    }
}

#[test]
fn utf8_user_name_gives_up_when_capa_is_refused() {
    let (client, sent) = scripted(
        utf8_config(),
        &[b"+OK ready\r\n", b"-ERR what is CAPA\r\n", b"+OK bye\r\n"],
    );
    assert_eq!(sent, vec!["CAPA\r\n", "QUIT\r\n"]);
    assert!(matches!(
        &client.outcome().unwrap().result,
        Pop3SessionResult::Utf8UserNotSupported { reason } if reason.contains("-ERR what is CAPA")
    ));

    // A refused UTF8 is not a refused UTF-8 user name: "UTF8 USER" lets the client send it
    // before (or without) UTF8 (RFC 6856 2.2), and the tags are case-insensitive.
    let (client, sent) = scripted(
        utf8_config(),
        &[
            b"+OK ready\r\n",
            b"+OK\r\nutf8 user\r\n.\r\n",
            b"-ERR not today\r\n",
            b"-ERR [AUTH] no\r\n",
            b"+OK bye\r\n",
        ],
    );
    assert_eq!(
        sent,
        vec!["CAPA\r\n", "UTF8\r\n", "USER jos\u{e9}\r\n", "QUIT\r\n"]
    );
    assert!(matches!(
        &client.outcome().unwrap().result,
        Pop3SessionResult::AuthenticationFailed { response } if response.contains("[AUTH]")
    ));
}

#[test]
fn a_message_with_a_very_long_line_is_retrieved_and_the_session_goes_on() {
    // The SMTP servers store lines over 1000 octets, and POP3 sets message lines no limit.
    let long = format!("Subject: long\r\n\r\n{}\r\n", "x".repeat(70_000));
    let store = store_with(&[
        ("a1", b"Subject: one\r\n\r\n1\r\n"),
        ("a2", long.as_bytes()),
        ("a3", b"Subject: three\r\n\r\n3\r\n"),
    ]);
    let run = run_pair(store, config(), 4096);
    assert_eq!(run.outcome.result, Pop3SessionResult::Completed);
    assert_eq!(run.outcome.retrieved.len(), 3);
    assert_eq!(run.outcome.retrieved[1].bytes, long.as_bytes());
    assert!(run.outcome.deletions_committed);
    assert!(run.store.maildrop("alice").unwrap().messages.is_empty());
}

#[test]
fn a_message_larger_than_the_client_takes_is_left_and_the_rest_still_deleted() {
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(2_000));
    let store = store_with(&[
        ("a1", b"Subject: one\r\n\r\n1\r\n"),
        ("a2", big.as_bytes()),
        ("a3", b"Subject: three\r\n\r\n3\r\n"),
    ]);
    let mut small = config();
    small.message_octets_max = 1_000;
    let run = run_pair(store, small, 4096);
    assert_eq!(run.outcome.result, Pop3SessionResult::Completed);
    let uids: Vec<_> = run
        .outcome
        .retrieved
        .iter()
        .map(|m| m.uid.clone().unwrap())
        .collect();
    assert_eq!(uids, ["a1", "a3"]);
    assert!(run.outcome.deletions_committed);
    let left = &run.store.maildrop("alice").unwrap().messages;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].uid, "a2");
    assert!(
        run.outcome.errors.iter().any(|e| e.contains("message 2")),
        "{:?}",
        run.outcome.errors
    );
    let said = messages_left(&run.client_events);
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].0, 1);
    assert!(said[0].1.starts_with("message 2 of "), "{said:?}");
}

#[test]
fn a_listing_of_more_messages_than_one_session_retrieves_is_read() {
    // 1100 messages, 5 retrieved per session: the UIDL listing (about 66 octets a line, 72 kB)
    // is larger than the 64 kB a short listing gets, and still within 100 octets per listed
    // message.
    let messages: Vec<(String, Vec<u8>)> = (0..1100)
        .map(|n| {
            (
                format!("uid-{n:05}-{}", "p".repeat(50)),
                b"S: x\r\n\r\nx\r\n".to_vec(),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &[u8])> = messages
        .iter()
        .map(|(uid, bytes)| (uid.as_str(), bytes.as_slice()))
        .collect();
    let mut few = config();
    few.messages_max = 5;
    let run = run_pair(store_with(&borrowed), few, 4096);
    assert_eq!(run.outcome.result, Pop3SessionResult::Completed);
    assert_eq!(run.outcome.retrieved.len(), 5);
}

#[test]
fn a_huge_count_in_stat_does_not_lift_the_bound_on_a_listing() {
    // STAT is the server's word: a listing longer than 100 octets for each of 100,000
    // messages still ends the session.
    let mut responses: Vec<&[u8]> = LOGIN.to_vec();
    let endless = format!("+OK\r\n{}", "1 5\r\n".repeat(2_100_000));
    responses.extend_from_slice(&[b"+OK 18446744073709551615 0\r\n", endless.as_bytes()]);
    let (client, _) = scripted(config(), &responses);
    assert!(matches!(
        client.outcome().unwrap().result,
        Pop3SessionResult::ProtocolError { .. }
    ));
}
