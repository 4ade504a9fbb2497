//! One client session carrying several messages (RFC 5321 3.3: a session is any number of
//! mail transactions): the order on the wire, RSET between transactions only when one is
//! still open, a connection kept open for more mail, and what happens to messages still
//! waiting when the session fails.
#![cfg(not(target_arch = "wasm32"))]

use smtp_lab::smtp::client::{
    ClientConfig, ClientEvent, ClientSession, ClientSetupError, ClientStateKind, Envelope,
    RecipientStatus, ReplyOrigin,
};

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        dsn: Default::default(),
        reverse_path: "alice@sender.test".into(),
        forward_paths: to.iter().map(|t| t.to_string()).collect(),
    }
}

fn message(subject: &str) -> Vec<u8> {
    format!("Subject: {subject}\r\n\r\nHello.\r\n").into_bytes()
}

fn config(keep_open_ms: Option<u64>) -> ClientConfig {
    let mut config = ClientConfig::new("mail.sender.test");
    config.prefer_pipelining = false;
    config.keep_open_ms = keep_open_ms;
    config
}

const EHLO_REPLY: &str = "250-mx.test\r\n250 8BITMIME\r\n";

/// The server's replies up to the acceptance of one message, one reply per client step.
const ONE_MESSAGE: [&str; 6] = [
    "220 mx.test\r\n",
    EHLO_REPLY,
    "250 ok\r\n",
    "250 ok\r\n",
    "354 go\r\n",
    "250 queued\r\n",
];

/// Drives a session: each reply is fed after draining what the client sent; returns every
/// command line the client sent, in order, without the message data.
fn converse(client: &mut ClientSession, replies: &[&str], now_ms: u64) -> Vec<String> {
    let mut sent = Vec::new();
    client.handle_connected(now_ms);
    for reply in replies {
        client.handle_input(reply.as_bytes(), now_ms);
        drain(client, &mut sent);
    }
    sent
}

fn drain(client: &mut ClientSession, sent: &mut Vec<String>) {
    while let Some(event) = client.poll_event() {
        if let ClientEvent::CommandSent { line } = event {
            sent.push(line);
        }
    }
    while client.poll_output().is_some() {}
}

fn finished_indices(client: &mut ClientSession) -> Vec<usize> {
    let mut indices = Vec::new();
    while let Some(event) = client.poll_event() {
        if let ClientEvent::MessageFinished { index } = event {
            indices.push(index);
        }
    }
    indices
}

#[test]
fn queued_messages_follow_each_other_without_rset_after_a_completed_transaction() {
    let mut client =
        ClientSession::new(config(None), envelope(&["bob@mx.test"]), message("one")).unwrap();
    let second = client
        .add_message(envelope(&["carol@mx.test"]), &message("two"), 0)
        .unwrap();
    assert_eq!(second, 1);
    let sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            EHLO_REPLY,
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued one\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued two\r\n",
            "221 bye\r\n",
        ],
        0,
    );
    assert_eq!(
        sent,
        [
            "EHLO mail.sender.test",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<bob@mx.test>",
            "DATA",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<carol@mx.test>",
            "DATA",
            "QUIT",
        ]
    );
    assert!(client.is_finished());
    let outcomes = client.outcomes();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].recipients[0].forward_path, "bob@mx.test");
    assert_eq!(outcomes[1].recipients[0].forward_path, "carol@mx.test");
    assert_eq!(
        outcomes[1].final_data_reply().map(|r| r.text()),
        Some("queued two".to_string())
    );
    assert_eq!(outcomes[1].mail_transactions, 1);
}

#[test]
fn a_message_whose_recipients_were_all_refused_is_followed_by_rset() {
    let mut client =
        ClientSession::new(config(None), envelope(&["nobody@mx.test"]), message("one")).unwrap();
    client
        .add_message(envelope(&["bob@mx.test"]), &message("two"), 0)
        .unwrap();
    let sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            EHLO_REPLY,
            "250 ok\r\n",
            "550 5.1.1 no such user\r\n",
            "250 reset\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued\r\n",
            "221 bye\r\n",
        ],
        0,
    );
    assert_eq!(
        sent[3..6],
        [
            "RSET",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<bob@mx.test>"
        ]
    );
    let outcomes = client.outcomes();
    assert!(matches!(
        outcomes[0].recipients[0].status,
        RecipientStatus::PermanentFailure(_)
    ));
    assert!(outcomes[1].all_accepted());
}

#[test]
fn a_kept_connection_idles_takes_a_late_message_then_quits_when_nothing_comes() {
    let mut client = ClientSession::new(
        config(Some(2_000)),
        envelope(&["bob@mx.test"]),
        message("one"),
    )
    .unwrap();
    let mut sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            EHLO_REPLY,
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued one\r\n",
        ],
        100,
    );
    assert_eq!(client.state(), ClientStateKind::Idle);
    assert_eq!(client.poll_timeout(), Some(2_100), "kept for keep_open_ms");
    assert_eq!(sent.last().map(String::as_str), Some("DATA"));
    // A message arriving while idle goes at once.
    let index = client
        .add_message(envelope(&["carol@mx.test"]), &message("two"), 1_000)
        .unwrap();
    assert_eq!(index, 1);
    assert_eq!(client.state(), ClientStateKind::ExpectMailReply);
    drain(&mut client, &mut sent);
    for reply in [
        "250 ok\r\n",
        "250 ok\r\n",
        "354 go\r\n",
        "250 queued two\r\n",
    ] {
        client.handle_input(reply.as_bytes(), 1_000);
        drain(&mut client, &mut sent);
    }
    assert_eq!(client.state(), ClientStateKind::Idle);
    // Early: nothing happens. At the deadline: QUIT, a normal end.
    client.handle_timeout(2_999);
    assert_eq!(client.state(), ClientStateKind::Idle);
    client.handle_timeout(3_000);
    drain(&mut client, &mut sent);
    assert_eq!(sent.last().map(String::as_str), Some("QUIT"));
    assert_eq!(
        client.add_message(envelope(&["dave@mx.test"]), &message("three"), 3_000),
        Err(ClientSetupError::SessionClosing),
        "a quitting session takes nothing more"
    );
    client.handle_input(b"221 bye\r\n", 3_010);
    assert!(client.is_finished());
    assert_eq!(client.outcomes().len(), 2);
    assert!(client.outcomes().iter().all(|o| o.all_accepted()));
}

#[test]
fn a_refused_session_fails_every_waiting_message_with_the_same_reply() {
    let mut client =
        ClientSession::new(config(None), envelope(&["bob@mx.test"]), message("one")).unwrap();
    client
        .add_message(
            envelope(&["carol@mx.test", "dave@mx.test"]),
            &message("two"),
            0,
        )
        .unwrap();
    let sent = converse(&mut client, &["554 5.7.1 go away\r\n", "221 bye\r\n"], 0);
    assert_eq!(sent, ["QUIT"]);
    assert!(client.is_finished());
    let outcomes = client.outcomes();
    assert_eq!(outcomes.len(), 2);
    for outcome in outcomes {
        assert_eq!(outcome.mail_transactions, 0);
        for recipient in &outcome.recipients {
            match &recipient.status {
                RecipientStatus::PermanentFailure(reply) => assert_eq!(reply.code, 554),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(outcomes[1].recipients.len(), 2);
}

/// RFC 5321 3.8: a 421 closes the session. At the greeting, its reply is why every message
/// waiting in the session was not delivered, as it is for the one in progress (they used to
/// be told only that the session ended). After the hello, the messages not yet begun were
/// never offered to the server: the session ended before them.
#[test]
fn a_421_tells_every_waiting_message_the_servers_reply_until_the_hello_is_answered() {
    for (replies, second_told) in [
        (&["421 4.3.2 busy, try later\r\n"][..], 421),
        (
            &["220 mx.test\r\n", EHLO_REPLY, "421 4.3.2 shutting down\r\n"][..],
            451,
        ),
    ] {
        let mut client =
            ClientSession::new(config(None), envelope(&["bob@mx.test"]), message("one")).unwrap();
        client
            .add_message(envelope(&["carol@mx.test"]), &message("two"), 0)
            .unwrap();
        converse(&mut client, replies, 0);
        assert!(client.is_finished());
        let outcomes = client.outcomes();
        assert_eq!(outcomes.len(), 2);
        for (outcome, told, origin) in [
            (&outcomes[0], 421, ReplyOrigin::Server),
            (
                &outcomes[1],
                second_told,
                if second_told == 421 {
                    ReplyOrigin::Server
                } else {
                    ReplyOrigin::Client
                },
            ),
        ] {
            for recipient in &outcome.recipients {
                match &recipient.status {
                    RecipientStatus::TemporaryFailure(reply) => {
                        assert_eq!(reply.code, told, "{replies:?}");
                        assert_eq!(recipient.reply_origin, origin, "{replies:?}");
                    }
                    other => panic!("{replies:?}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_closed_connection_fails_waiting_messages_temporarily_and_each_is_reported_once() {
    let mut client =
        ClientSession::new(config(None), envelope(&["bob@mx.test"]), message("one")).unwrap();
    client
        .add_message(envelope(&["carol@mx.test"]), &message("two"), 0)
        .unwrap();
    client.handle_connected(0);
    client.handle_input(b"220 mx.test\r\n", 0);
    client.handle_peer_closed();
    assert!(client.is_finished());
    assert_eq!(finished_indices(&mut client), [0, 1]);
    for outcome in client.outcomes() {
        assert!(matches!(
            outcome.recipients[0].status,
            RecipientStatus::TemporaryFailure(_)
        ));
    }
}

#[test]
fn a_bad_second_message_is_refused_at_the_door_and_the_session_goes_on() {
    let mut client =
        ClientSession::new(config(None), envelope(&["bob@mx.test"]), message("one")).unwrap();
    assert_eq!(
        client.add_message(envelope(&[]), &message("two"), 0),
        Err(ClientSetupError::NoForwardPaths)
    );
    assert!(client
        .add_message(envelope(&["bad\r\nRCPT TO:<x@y>"]), &message("three"), 0)
        .is_err());
    let mut sent = converse(&mut client, &ONE_MESSAGE, 0);
    sent.extend(converse(&mut client, &["221 bye\r\n"], 0));
    assert_eq!(sent.iter().filter(|l| l.starts_with("MAIL")).count(), 1);
    assert_eq!(client.outcomes().len(), 1);
}

/// Runs one message to its 250 on a session that keeps the connection (2 s), at time 100.
fn idle_session(transactions_max: usize) -> ClientSession {
    let mut config = config(Some(2_000));
    config.transactions_max = transactions_max;
    let mut client =
        ClientSession::new(config, envelope(&["bob@mx.test"]), message("one")).unwrap();
    // A plain EHLO reply: no 8BITMIME.
    let mut replies = ONE_MESSAGE;
    replies[1] = "250 mx.test\r\n";
    converse(&mut client, &replies, 100);
    assert_eq!(client.state(), ClientStateKind::Idle);
    client
}

#[test]
fn an_idle_session_given_a_message_it_cannot_send_idles_again_with_a_deadline() {
    // The server (HELO-like EHLO reply) has no 8BITMIME: the 8-bit message fails locally.
    let mut client = idle_session(100);
    let index = client
        .add_message(
            envelope(&["carol@mx.test"]),
            "Subject: x\r\n\r\ncaf\u{e9}\r\n".as_bytes(),
            500,
        )
        .unwrap();
    assert_eq!(index, 1);
    assert_eq!(client.state(), ClientStateKind::Idle);
    assert_eq!(client.poll_timeout(), Some(2_500));
    assert!(matches!(
        client.outcomes()[1].recipients[0].status,
        RecipientStatus::PermanentFailure(_)
    ));
    client.handle_timeout(2_500);
    assert_eq!(client.state(), ClientStateKind::ExpectQuitReply);
}

#[test]
fn a_reply_to_an_idle_session_ends_it_without_a_panic() {
    let mut client = idle_session(100);
    client.handle_input(b"421 4.3.2 shutting down\r\n", 200);
    assert!(client.is_finished());
    assert_eq!(client.outcomes().len(), 1);
    assert!(client.outcomes()[0].all_accepted());
    let mut client = idle_session(100);
    client.handle_input(b"250 what?\r\n", 200);
    assert!(client.is_finished());
}

#[test]
fn a_session_takes_exactly_as_many_messages_as_it_has_transactions_left() {
    let mut client = idle_session(2);
    assert!(client
        .add_message(envelope(&["carol@mx.test"]), &message("two"), 200)
        .is_ok());
    assert_eq!(
        client.add_message(envelope(&["dave@mx.test"]), &message("three"), 200),
        Err(ClientSetupError::SessionClosing)
    );
    // Before its first transaction, a session of one transaction takes nothing more.
    let mut config = config(None);
    config.transactions_max = 1;
    let mut fresh = ClientSession::new(config, envelope(&["bob@mx.test"]), message("one")).unwrap();
    assert_eq!(
        fresh.add_message(envelope(&["carol@mx.test"]), &message("two"), 0),
        Err(ClientSetupError::SessionClosing)
    );
}

#[test]
fn pipelined_messages_keep_their_order_through_a_452_split_and_a_refusal() {
    let mut config = config(None);
    config.prefer_pipelining = true;
    let mut client = ClientSession::new(
        config,
        envelope(&["a@mx.test", "b@mx.test"]),
        message("one"),
    )
    .unwrap();
    client
        .add_message(envelope(&["c@mx.test"]), &message("two"), 0)
        .unwrap();
    client
        .add_message(envelope(&["d@mx.test"]), &message("three"), 0)
        .unwrap();
    let sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            "250-mx.test\r\n250 PIPELINING\r\n",
            "250 ok\r\n250 ok\r\n452 4.5.3 too many recipients\r\n",
            "354 go\r\n",
            "250 queued a\r\n",
            "250 ok\r\n250 ok\r\n",
            "354 go\r\n",
            "250 queued b\r\n",
            "250 ok\r\n550 5.1.1 no such user\r\n",
            "250 reset\r\n",
            "250 ok\r\n250 ok\r\n",
            "354 go\r\n",
            "250 queued d\r\n",
            "221 bye\r\n",
        ],
        0,
    );
    let rcpts: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("RCPT") || *l == "RSET")
        .collect();
    assert_eq!(
        rcpts,
        [
            "RCPT TO:<a@mx.test>",
            "RCPT TO:<b@mx.test>",
            "RCPT TO:<b@mx.test>",
            "RCPT TO:<c@mx.test>",
            "RSET",
            "RCPT TO:<d@mx.test>",
        ]
    );
    let outcomes = client.outcomes();
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[0].all_accepted());
    assert_eq!(outcomes[0].mail_transactions, 2);
    assert!(!outcomes[1].all_accepted());
    assert!(outcomes[2].all_accepted());
}

#[test]
fn a_message_needing_more_transactions_than_are_left_is_refused_at_the_door() {
    let mut config = config(None);
    config.transactions_max = 2;
    config.recipients_per_transaction_max = 1;
    let mut client = ClientSession::new(
        config,
        envelope(&["bob@mx.test", "carol@mx.test"]),
        message("one"),
    )
    .unwrap();
    // The first message needs both transactions, one per recipient.
    converse(&mut client, &["220 mx.test\r\n", EHLO_REPLY], 0);
    assert_eq!(
        client.add_message(envelope(&["dave@mx.test"]), &message("two"), 0),
        Err(ClientSetupError::SessionClosing)
    );
}

#[test]
fn recipients_a_broken_session_never_reached_are_told_so_not_the_break_in_progress() {
    // Three recipients, one transaction each (the server takes one a transaction): the link
    // breaks in the second transaction's data. carol's transaction broke; dave's never began.
    let mut client = ClientSession::new(
        config(None),
        envelope(&["bob@mx.test", "carol@mx.test", "dave@mx.test"]),
        message("one"),
    )
    .unwrap();
    let too_many = "452 4.5.3 Too many recipients\r\n";
    let sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            EHLO_REPLY,
            "250 ok\r\n",
            "250 ok\r\n",
            too_many,
            "354 go\r\n",
            "250 queued\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            too_many,
            "354 go\r\n",
        ],
        0,
    );
    assert_eq!(
        sent.iter().filter(|line| line.starts_with("MAIL")).count(),
        2,
        "{sent:?}"
    );
    client.handle_peer_closed();
    let outcome = client.outcome().expect("the message has an outcome");
    let texts: Vec<(&str, String)> = outcome
        .recipients
        .iter()
        .map(|r| (r.forward_path.as_str(), r.status.reply().text()))
        .collect();
    assert!(matches!(
        outcome.recipients[0].status,
        RecipientStatus::Accepted(_)
    ));
    assert!(texts[1].1.starts_with("lost connection"), "{texts:?}");
    assert_eq!(texts[2].1, "session ended before delivery", "{texts:?}");
}

/// The messages' acceptances and ends, in order, as `client` tells them when it is fed
/// `replies` one after another: `["a@mx.test"] true 0` for the acceptance of the first
/// message for a@mx.test with more transactions to come, `finished 0` for its end.
fn acceptances_and_ends(client: &mut ClientSession, replies: &[&str]) -> Vec<String> {
    let mut told = Vec::new();
    client.handle_connected(0);
    for reply in replies {
        client.handle_input(reply.as_bytes(), 0);
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::MessageAccepted {
                    forward_paths,
                    more_transactions,
                    index,
                    ..
                } => told.push(format!("{forward_paths:?} {more_transactions} {index}")),
                ClientEvent::MessageFinished { index } => told.push(format!("finished {index}")),
                _ => {}
            }
        }
        while client.poll_output().is_some() {}
    }
    told
}

/// A transaction that leaves recipients for another says so with the recipients it settled
/// and its message's place in the session, even when no transaction is left for the others
/// and the message is done in the same step (by the time its events are read, the count of
/// messages done has passed it).
#[test]
fn recipients_settled_before_a_messages_last_transaction_name_their_message() {
    let mut config = config(None);
    config.transactions_max = 1;
    let mut client = ClientSession::new(
        config,
        envelope(&["a@mx.test", "b@mx.test"]),
        message("one"),
    )
    .unwrap();
    let told = acceptances_and_ends(
        &mut client,
        &[
            "220 mx.test\r\n",
            EHLO_REPLY,
            "250 ok\r\n",
            "250 ok\r\n",
            "452 4.5.3 too many recipients\r\n",
            "354 go\r\n",
            "250 queued a\r\n",
        ],
    );
    // No transaction is left for b: the message is done in the same step.
    assert_eq!(told, ["[\"a@mx.test\"] true 0", "finished 0"]);
    assert_eq!(client.outcomes().len(), 1);
    let recipients = &client.outcomes()[0].recipients;
    assert!(recipients[0].status.is_accepted());
    assert!(matches!(
        recipients[1].status,
        RecipientStatus::TemporaryFailure(_)
    ));
}

/// The second message of a session, split by a 452, names itself as the second.
#[test]
fn a_later_messages_early_settled_recipients_name_it() {
    let mut client =
        ClientSession::new(config(None), envelope(&["a@mx.test"]), message("one")).unwrap();
    client
        .add_message(envelope(&["b@mx.test", "c@mx.test"]), &message("two"), 0)
        .unwrap();
    let replies: Vec<&str> = ONE_MESSAGE
        .into_iter()
        .chain([
            "250 ok\r\n",
            "250 ok\r\n",
            "452 4.5.3 too many recipients\r\n",
            "354 go\r\n",
            "250 queued b\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued c\r\n",
        ])
        .collect();
    assert_eq!(
        acceptances_and_ends(&mut client, &replies),
        [
            "[\"a@mx.test\"] false 0",
            "finished 0",
            "[\"b@mx.test\"] true 1",
            "[\"c@mx.test\"] false 1",
            "finished 1",
        ]
    );
}

/// RFC 3030 2: a refused chunk fails its message and no further chunk goes; whether the
/// server still holds the transaction the RFC leaves open, so RSET ends it before the next
/// message, which goes in chunks too; after the last chunk too.
#[test]
fn a_refused_chunk_last_or_not_is_followed_by_rset() {
    let mut chunking = config(None);
    chunking.bdat_chunk_octets = Some(20);
    // 24 octets each: two chunks, 20 and 4.
    let mut client =
        ClientSession::new(chunking, envelope(&["bob@mx.test"]), message("one")).unwrap();
    client
        .add_message(envelope(&["carol@mx.test"]), &message("two"), 0)
        .unwrap();
    client
        .add_message(envelope(&["dave@mx.test"]), &message("six"), 0)
        .unwrap();
    let sent = converse(
        &mut client,
        &[
            "220 mx.test\r\n",
            "250-mx.test\r\n250 CHUNKING\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "552 5.3.4 too big\r\n",
            "250 reset\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 20 octets received\r\n",
            "554 5.6.0 no\r\n",
            "250 reset\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 20 octets received\r\n",
            "250 queued six\r\n",
            "221 bye\r\n",
        ],
        0,
    );
    assert_eq!(
        sent,
        [
            "EHLO mail.sender.test",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<bob@mx.test>",
            "BDAT 20",
            "RSET",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<carol@mx.test>",
            "BDAT 20",
            "BDAT 4 LAST",
            "RSET",
            "MAIL FROM:<alice@sender.test>",
            "RCPT TO:<dave@mx.test>",
            "BDAT 20",
            "BDAT 4 LAST",
            "QUIT",
        ]
    );
    let outcomes = client.outcomes();
    let statuses: Vec<(u16, bool)> = outcomes
        .iter()
        .map(|outcome| {
            let status = &outcome.recipients[0].status;
            (status.reply().code, status.is_accepted())
        })
        .collect();
    assert_eq!(statuses, [(552, false), (554, false), (250, true)]);
}
