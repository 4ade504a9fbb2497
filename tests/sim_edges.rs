#![cfg(not(target_arch = "wasm32"))]
//! Edge cases of the simulation found in review: scripted clients whose mail is accepted,
//! addresses written in more than one way, runs that stop mid-submission, routes, the
//! postmaster of a relay-only host, and scenario values that would overflow.

mod sim_common;

use serde_json::json;
use sim_common::{basic_world, events, fate, mailbox, message, run_json};
use smtp_lab::sim::{Fate, RunResult, Scenario};

fn assert_conserved(result: &smtp_lab::sim::RunResult) {
    assert!(
        result.conservation_problems.is_empty(),
        "{:?}",
        result.conservation_problems
    );
}

#[test]
fn mail_accepted_from_a_scripted_client_is_tracked_per_message() {
    let mut world = basic_world("raw-accepted");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": "EHLO script.example\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: one\r\n\r\n1\r\n.\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: two\r\n\r\n2\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert_eq!(mailbox(&result, "bob@receiver.test").len(), 2);
    assert!(matches!(
        fate(&result, "r1.1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    assert!(matches!(
        fate(&result, "r1.2", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn a_message_without_header_fields_keeps_its_text_as_body_under_the_servers_fields() {
    // Over port 25 nothing completes a message: one whose first line is text (no fields, no
    // empty line) gets the empty line under the Received: the receiving server writes, so
    // that the text stays the body (RFC 5322 2.1). Two fields followed by text too.
    let mut world = basic_world("raw-no-header");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": "EHLO script.example\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nHello Bob,\r\nsee you.\r\n.\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: two\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nHello again,\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    let stored = mailbox(&result, "bob@receiver.test");
    assert_eq!(stored.len(), 2);
    let first = String::from_utf8_lossy(stored[0]);
    let (header, body) = first.split_once("\r\n\r\n").expect("an empty line");
    assert!(header.contains("\r\nReceived: "), "{first}");
    assert!(!header.contains("Hello Bob"), "{first}");
    assert_eq!(body, "Hello Bob,\r\nsee you.\r\n");
    let second = String::from_utf8_lossy(stored[1]);
    let (header, body) = second.split_once("\r\n\r\n").expect("an empty line");
    assert!(
        header.ends_with("\r\nSubject: two\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000"),
        "{second}"
    );
    assert_eq!(body, "Hello again,\r\n");
}

#[test]
fn final_delivery_keeps_only_its_own_return_path() {
    // A Return-Path that arrived inside the message (folded here) is removed by the MDA,
    // which writes the envelope's (RFC 5321 4.4); other fields and the body are untouched.
    let mut world = basic_world("raw-return-path");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": "EHLO script.example\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nreturn-path: <forged@x.test>\r\n\t(folded)\r\nSubject: one\r\n\r\nReturn-Path: <in-body@x.test>\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    let stored = mailbox(&result, "bob@receiver.test");
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8_lossy(stored[0]);
    assert!(
        text.starts_with("Return-Path: <a@script.example>\r\n"),
        "{text}"
    );
    assert!(
        !text.contains("forged") && !text.contains("(folded)"),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: one\r\n\r\nReturn-Path: <in-body@x.test>\r\n"),
        "{text}"
    );
}

#[test]
fn a_quoted_local_part_is_one_recipient_however_it_is_written() {
    let mut world = basic_world("quoted");
    world["messages"][0]["to"] = json!(["\"bob\"@receiver.test"]);
    world["messages"][0]["raw"] = json!("Subject: quoted\r\n\r\nhi\r\n");
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn a_run_that_stops_during_submission_leaves_the_message_with_the_user_agent() {
    let mut world = basic_world("cut-short");
    world["messages"][0]["at_s"] = json!(100);
    world["run_until_s"] = json!(100);
    let result = run_json(&world);
    assert_conserved(&result);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::Queued { host } => assert_eq!(host, "ua:alice@sender.test"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_message_the_run_ends_before_is_a_conservation_problem_not_a_silent_loss() {
    // Validation refuses such a file; a scenario built in code is not validated.
    let mut world = basic_world("never-sent");
    world["messages"][0]["at_s"] = json!(100);
    let mut scenario: Scenario = serde_json::from_value(world).expect("a scenario");
    scenario.run_until_s = 50;
    let result = smtp_lab::sim::run(&scenario, scenario.seed);
    assert!(
        result
            .conservation_problems
            .iter()
            .any(|p| p.contains("1 message(s) were never sent")),
        "{:?}",
        result.conservation_problems
    );
}

#[test]
fn a_maildrop_is_locked_while_a_pop3_session_holds_it() {
    use smtp_lab::sim::trace::Event;
    // Two readers at the same moment, and a third once both are done.
    let mut world = basic_world("pop3-lock");
    world["fetches"] = json!([
        {"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 600},
        {"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 600},
        {"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 900, "delete": false},
    ]);
    let result = run_json(&world);
    let server_text: String = events(&result)
        .filter_map(|e| match &e.event {
            Event::Transmitted { bytes, .. } => Some(String::from_utf8_lossy(bytes.as_bytes())),
            _ => None,
        })
        .collect();
    assert_eq!(
        server_text.matches("-ERR [IN-USE]").count(),
        1,
        "the second reader is refused: {server_text}"
    );
    let retrieved = events(&result)
        .filter(|e| matches!(e.event, Event::MessageRetrieved(_)))
        .count();
    let deletions = events(&result)
        .filter(|e| matches!(e.event, Event::MailboxUpdated(_)))
        .count();
    // The first reader takes and deletes the message; the later one finds the lock free
    // and the maildrop empty.
    assert_eq!((retrieved, deletions), (1, 2));
    assert!(
        server_text.contains("+OK maildrop has 0 messages"),
        "{server_text}"
    );
    // The lock is a temporary refusal (RFC 2449 8.1.2): explained as a 4yz is, not as a
    // permanent one.
    let in_use: Vec<u16> = events(&result)
        .filter_map(|e| match &e.event {
            Event::ReplyExplained { code, note, .. } if note.rfc.contains("2449 8.1.2") => {
                Some(*code)
            }
            _ => None,
        })
        .collect();
    assert_eq!(in_use, [400]);
}

/// Bob's reader, at `at_s`, with a password that is not his.
fn fetch_with_wrong_password(at_s: u64) -> serde_json::Value {
    json!({"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": at_s,
           "password": "not-bobs"})
}

#[test]
fn a_pop3_refusal_without_a_temporary_response_code_is_explained_as_permanent() {
    use smtp_lab::sim::trace::Event;
    let mut world = basic_world("pop3-wrong-password");
    world["fetches"] = json!([fetch_with_wrong_password(600)]);
    let result = run_json(&world);
    let refusals: Vec<(u16, String)> = events(&result)
        .filter_map(|e| match &e.event {
            Event::ReplyExplained { code, note, .. } if note.meaning.starts_with("-ERR") => {
                Some((*code, note.why.to_string()))
            }
            _ => None,
        })
        .collect();
    assert!(!refusals.is_empty());
    assert!(
        refusals.iter().all(|(code, _)| *code == 500),
        "{refusals:?}"
    );
}

#[test]
fn a_reply_to_a_bounce_reaches_the_postmaster_of_the_host_that_sent_it() {
    // RFC 3464 2: the From of a notice is a person responsible for the reporting MTA, so that
    // a reply to it is read.
    let mut world = basic_world("reply-to-bounce");
    world["messages"] = json!([message(&["nobody@receiver.test"])]);
    let first = run_json(&world);
    let (_, bounce) = first.mailboxes["alice@sender.test"]
        .first()
        .expect("the bounce is stored")
        .clone();
    let bounce = String::from_utf8_lossy(&bounce).into_owned();
    let from_line = bounce
        .lines()
        .find(|line| line.starts_with("From: "))
        .expect("a From field");
    let from = from_line
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .expect("an address in angle brackets");
    let mut reply = message(&[&from]);
    reply["at_s"] = json!(3600);
    world["messages"] = json!([message(&["nobody@receiver.test"]), reply]);
    let second = run_json(&world);
    let fates: Vec<&Fate> = second
        .outcomes
        .iter()
        .filter(|(_, recipient, _)| *recipient == from)
        .map(|(_, _, fate)| fate)
        .collect();
    assert!(
        matches!(fates[..], [Fate::Delivered { .. }]),
        "{from}: {fates:?}"
    );
}

#[test]
fn a_pop3_reply_is_explained_by_what_its_status_indicator_means_not_by_its_own_line() {
    use smtp_lab::sim::trace::{Direction, Event};
    let mut world = basic_world("pop3-meanings");
    world["fetches"] = json!([
        fetch_with_wrong_password(600),
        {"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 700},
    ]);
    let result = run_json(&world);
    let pop3_conns: Vec<u32> = events(&result)
        .filter_map(|e| match &e.event {
            Event::ConnectionAttempted(a) if a.port == 110 => Some(a.conn),
            _ => None,
        })
        .collect();
    let lines: Vec<String> = events(&result)
        .filter_map(|e| match &e.event {
            Event::Transmitted {
                conn,
                direction: Direction::ServerToClient,
                bytes,
            } if pop3_conns.contains(conn) => {
                Some(String::from_utf8_lossy(bytes.as_bytes()).into_owned())
            }
            _ => None,
        })
        .collect();
    let meanings: Vec<(u16, String)> = events(&result)
        .filter_map(|e| match &e.event {
            Event::ReplyExplained {
                conn, code, note, ..
            } if pop3_conns.contains(conn) => Some((*code, note.meaning.to_string())),
            _ => None,
        })
        .collect();
    assert!(meanings.len() >= 6, "{meanings:?}");
    for (code, meaning) in &meanings {
        let expected = if *code < 400 {
            "+OK, the positive"
        } else {
            "-ERR, the negative"
        };
        assert!(meaning.starts_with(expected), "{code}: {meaning}");
        assert!(
            lines.iter().all(|line| !line.contains(meaning.as_str())),
            "{meaning} is a reply line"
        );
    }
    // The wrong password's [AUTH] is a response code, which the meaning explains.
    assert!(
        meanings.iter().any(|(code, m)| *code == 500
            && m.contains("[AUTH] is a response code")
            && m.contains("credentials or the account were refused")),
        "{meanings:?}"
    );
}

#[test]
fn the_pop3_sign_off_counts_mail_that_arrived_during_the_session() {
    use smtp_lab::sim::trace::Event;
    // Three messages wait; a fourth is stored while the reader's session holds the lock. The
    // session neither lists nor deletes it (RFC 1939 4), and its QUIT reply says it is left.
    let mut world = basic_world("pop3-arrival");
    let mut late = message(&["bob@receiver.test"]);
    late["at_s"] = json!(600);
    world["messages"] = json!([
        message(&["bob@receiver.test"]),
        message(&["bob@receiver.test"]),
        message(&["bob@receiver.test"]),
        late,
    ]);
    world["fetches"] = json!([
        {"mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 600},
    ]);
    let result = run_json(&world);
    assert_conserved(&result);
    let server_text: String = events(&result)
        .filter_map(|e| match &e.event {
            Event::Transmitted { bytes, .. } => Some(String::from_utf8_lossy(bytes.as_bytes())),
            _ => None,
        })
        .collect();
    let retrieved = events(&result)
        .filter(|e| matches!(e.event, Event::MessageRetrieved(_)))
        .count();
    assert_eq!(retrieved, 3, "{server_text}");
    assert!(
        server_text.contains("POP3 server signing off (1 message left)"),
        "{server_text}"
    );
}

#[test]
fn a_fetch_whose_client_cannot_start_is_the_user_agents_event_not_an_mda_refusal() {
    use smtp_lab::sim::trace::Event;
    // PASS cannot carry a control character, so the user agent cannot even begin.
    let mut world = basic_world("fetch-not-started");
    world["fetches"] = json!([{
        "mailbox": "bob@receiver.test", "host": "mx.receiver.test", "at_s": 600,
        "password": "bob\u{7}pw"
    }]);
    let result = run_json(&world);
    let not_started: Vec<_> = events(&result)
        .filter_map(|e| match &e.event {
            Event::FetchNotStarted(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(not_started.len(), 1);
    assert_eq!(&*not_started[0].client, "ua:bob@receiver.test");
    assert_eq!(not_started[0].mailbox, "bob@receiver.test");
    assert!(not_started[0].reason.contains("password"));
    assert!(!events(&result).any(|e| matches!(e.event, Event::DeliveryRefused(_))));
    assert!(!events(&result).any(|e| matches!(&e.event,
        Event::ConnectionAttempted(a) if a.port == 110)));
    assert_eq!(mailbox(&result, "bob@receiver.test").len(), 1);
    assert!(result
        .trace
        .to_text()
        .contains("ua:bob@receiver.test   fetch of bob@receiver.test not started: "));
}

#[test]
fn what_a_client_sends_before_it_hears_of_the_servers_close_is_on_the_wire() {
    use smtp_lab::sim::trace::{Direction, Event};
    // Six minutes each way: the server gives up waiting for EHLO (5 minutes) before its
    // greeting has even reached the client, which then still sends EHLO.
    let mut world = basic_world("late-close");
    world["hosts"][1]["faults"] =
        json!([{"kind": {"type": "slow", "extra_latency_ms": 360_000}, "until_s": 60}]);
    // A client patient enough to wait out the 12-minute handshake.
    world["retry"] = json!({"connect_timeout_s": 1000});
    let result = run_json(&world);
    let closed = events(&result)
        .position(|e| {
            matches!(&e.event,
            Event::ConnectionClosed { by, .. } if &**by == "mx.receiver.test")
        })
        .expect("the server closes first");
    let Event::ConnectionClosed {
        conn: closed_conn, ..
    } = result.trace.events[closed].event
    else {
        unreachable!()
    };
    let sent_after_close = events(&result).skip(closed).any(|e| {
        matches!(&e.event,
        Event::Transmitted { conn, direction: Direction::ClientToServer, bytes }
            if *conn == closed_conn && bytes.as_bytes().starts_with(b"EHLO"))
    });
    assert!(sent_after_close, "the EHLO is in the trace");
}

#[test]
fn a_link_slower_than_the_connect_timeout_times_out() {
    use smtp_lab::sim::trace::Event;
    let mut world = basic_world("too-slow");
    // 40 s each way: the handshake would take 80 s, the client waits 30 s.
    world["hosts"][1]["faults"] =
        json!([{"kind": {"type": "slow", "extra_latency_ms": 40_000}, "until_s": 60}]);
    let result = run_json(&world);
    let first = sim_common::attempts(&result)
        .into_iter()
        .find(|(_, _, _, server, _)| server == "mx.receiver.test")
        .expect("an attempt");
    let timed_out = events(&result)
        .find(|e| matches!(e.event, Event::ConnectionTimedOut { conn } if conn == first.1))
        .map(|e| e.time_ms)
        .expect("the attempt times out");
    assert_eq!(timed_out - first.0, 30_000);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn the_submission_server_adds_a_missing_date_and_message_id_once() {
    let mut world = basic_world("msa-fields");
    world["messages"] = json!([
        {"from": "alice@sender.test", "to": ["bob@receiver.test"],
         "submit_to": "mail.sender.test", "auth": {"user": "alice", "password": "secret"},
         "raw": "From: alice@sender.test\r\nSubject: bare\r\n\r\nNo date, no id.\r\n"},
        {"from": "alice@sender.test", "to": ["bob@receiver.test"], "at_s": 1,
         "submit_to": "mail.sender.test", "auth": {"user": "alice", "password": "secret"},
         "raw": "Date: Tue, 1 Sep 2026 08:00:00 +0000\r\nMessage-ID: <own@a.test>\r\n\r\nx\r\n"},
        // The obsolete syntax, white space before the colon (RFC 5322 4.5), is still a field.
        {"from": "alice@sender.test", "to": ["bob@receiver.test"], "at_s": 2,
         "submit_to": "mail.sender.test", "auth": {"user": "alice", "password": "secret"},
         "raw": "Subject: obs\r\nDate : Tue, 1 Sep 2026 07:00:00 +0000\r\nFrom: alice@sender.test\r\nMessage-ID\t: <obs@a.test>\r\nTo: bob@receiver.test\r\n\r\nbody\r\n"},
    ]);
    world["fetches"] = json!([]);
    // Port 587 of a host without submission users is plain SMTP: nothing is added.
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test", "port": 587,
        "at_s": 60,
        "bytes": "EHLO s.example\r\nMAIL FROM:<s@s.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: plain\r\n\r\nx\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    let stored = mailbox(&result, "bob@receiver.test");
    assert_eq!(stored.len(), 4);
    let plain = String::from_utf8_lossy(stored[3]).into_owned();
    assert!(plain.contains("Subject: plain"), "{plain}");
    assert!(
        !plain.contains("\r\nDate: ") && !plain.contains("Message-ID: "),
        "{plain}"
    );
    let header = |message: &[u8]| {
        let text = String::from_utf8_lossy(message).into_owned();
        text[..text.find("\r\n\r\n").expect("a header section")].to_string()
    };
    let bare = header(stored[0]);
    assert_eq!(bare.matches("\r\nDate: ").count(), 1, "{bare}");
    assert_eq!(bare.matches("\r\nMessage-ID: <").count(), 1, "{bare}");
    // Added after the message's own last field, so below the trace fields.
    assert!(bare.find("Subject: bare").unwrap() < bare.find("\r\nDate: ").unwrap());
    let complete = header(stored[1]);
    assert_eq!(complete.matches("Date: ").count(), 1, "{complete}");
    assert_eq!(complete.matches("Message-ID: ").count(), 1, "{complete}");
    let obsolete = String::from_utf8_lossy(stored[2]).into_owned();
    assert!(
        obsolete.ends_with(
            "Subject: obs\r\nDate : Tue, 1 Sep 2026 07:00:00 +0000\r\nFrom: alice@sender.test\r\n\
             Message-ID\t: <obs@a.test>\r\nTo: bob@receiver.test\r\n\r\nbody\r\n"
        ),
        "nothing added, no blank line inserted: {obsolete}"
    );
}

#[test]
fn a_notice_gives_the_arrival_of_the_copy_it_reports() {
    use smtp_lab::sim::trace::Event;
    // mx.c.test takes one recipient per transaction; the second transaction's data is dropped,
    // so the second copy of m1 reaches mx.c.test half an hour after the first. Both bounce.
    let world: serde_json::Value = serde_json::from_str(ARRIVAL_WORLD).expect("JSON");
    let result = run_json(&world);
    let arrivals: Vec<u64> = events(&result)
        .filter_map(|e| match &e.event {
            Event::MessageAccepted(a) if &*a.host == "mx.c.test" => Some(e.time_ms),
            _ => None,
        })
        .collect();
    assert_eq!(arrivals.len(), 2, "two copies reach mx.c.test");
    let notices = mailbox(&result, "alice@a.test");
    assert_eq!(notices.len(), 2);
    let arrival_dates: Vec<String> = notices
        .iter()
        .map(|notice| {
            let text = String::from_utf8_lossy(notice);
            let line = text
                .lines()
                .find(|line| line.starts_with("Arrival-Date: "))
                .expect("an Arrival-Date");
            line["Arrival-Date: ".len()..].to_string()
        })
        .collect();
    // 08:00:00 plus each copy's own arrival at mx.c.test (RFC 3464 2.2.5).
    let at = |ms: u64| {
        format!(
            "Tue, 1 Sep 2026 08:{:02}:{:02} +0000",
            ms / 60_000,
            ms / 1000 % 60
        )
    };
    assert_eq!(arrival_dates, [at(arrivals[0]), at(arrivals[1])]);
}

const ARRIVAL_WORLD: &str = r#"{"name": "arrival-split", "title": "arrival-split", "seed": 2, "retry": {}, "dns": {"zones": [{"origin": "a.test", "records": [{"name": "@", "data": {"MX": {"preference": 10, "exchange": "gw.a.test"}}}, {"name": "gw.a.test", "data": {"A": "192.0.2.11"}}, {"name": "msa.a.test", "data": {"A": "192.0.2.10"}}, {"name": "store.a.test", "data": {"A": "192.0.2.12"}}]}, {"origin": "c.test", "records": [{"name": "@", "data": {"MX": {"preference": 10, "exchange": "mx.c.test"}}}, {"name": "mx.c.test", "data": {"A": "192.0.2.30"}}]}]}, "hosts": [{"name": "msa.a.test", "address": "192.0.2.10", "submission_users": [{"user": "alice", "password": "secret"}]}, {"name": "gw.a.test", "address": "192.0.2.11", "relay_domains": ["a.test"], "routes": [{"domain": "a.test", "host": "store.a.test"}]}, {"name": "store.a.test", "address": "192.0.2.12", "local_domains": ["a.test"], "mailboxes": [{"address": "alice@a.test", "password": "pw"}]}, {"name": "mx.c.test", "address": "192.0.2.30", "relay_domains": ["c.test"], "routes": [{"domain": "c.test", "host": "store.c.test"}], "max_recipients": 1, "faults": [{"kind": {"type": "drop_in_data"}, "from_s": 22, "until_s": 100}]}, {"name": "store.c.test", "address": "192.0.2.31", "local_domains": ["c.test"], "mailboxes": [{"address": "bob@c.test", "password": "pw"}]}], "messages": [{"from": "alice@a.test", "to": ["nobody1@c.test", "nobody2@c.test"], "subject": "s", "body": "b\n", "submit_to": "msa.a.test", "auth": {"user": "alice", "password": "secret"}, "at_s": 0}], "latency_ms": 1000, "fetches": []}"#;

#[test]
fn a_raw_session_to_port_110_speaks_to_the_pop3_server() {
    use smtp_lab::sim::trace::{Direction, Event};
    let mut world = basic_world("raw-pop3");
    world["fetches"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.9", "server": "mx.receiver.test",
        "port": 110, "at_s": 600,
        "bytes": "USER bob@receiver.test\r\nPASS bob-pw\r\nDELE 1\r\nRETR 1\r\nRSET\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    let replies: String = events(&result)
        .filter_map(|e| match &e.event {
            Event::Transmitted {
                direction: Direction::ServerToClient,
                bytes,
                ..
            } => Some(String::from_utf8_lossy(bytes.as_bytes()).into_owned()),
            _ => None,
        })
        .collect();
    assert!(replies.contains("+OK maildrop has 1 message"), "{replies}");
    // RETR of a message marked deleted is refused (RFC 1939 5), and RSET unmarks it.
    assert!(replies.contains("-ERR"), "{replies}");
    assert_eq!(mailbox(&result, "bob@receiver.test").len(), 1);
    // The steps head POP3 replies as POP3 writes them, never with a numeric code.
    let headings: Vec<String> = smtp_lab::sim::steps::steps(&result.trace)
        .into_iter()
        .filter(|step| step.time_ms >= 600_000)
        .flat_map(|step| step.explanations)
        .map(|explanation| explanation.heading)
        .collect();
    assert!(headings.contains(&"-ERR".to_string()), "{headings:?}");
    assert!(
        headings.iter().all(|h| h == "+OK" || h == "-ERR"),
        "{headings:?}"
    );
    // Each response's step has its own explanation, though the commands went at once: the
    // -ERR is explained, and marked, on the step that carries it.
    let steps = smtp_lab::sim::steps::steps(&result.trace);
    let mut refused = 0;
    let responses = steps.iter().filter(|step| {
        step.time_ms >= 600_000
            && step.direction == Some(Direction::ServerToClient)
            && step.lines(&result.trace)[0].contains(" S: ")
    });
    for step in responses {
        let lines = step.lines(&result.trace);
        let status = lines[0]
            .split_once(" S: ")
            .map(|(_, text)| text)
            .unwrap_or("");
        let headings: Vec<&str> = step
            .explanations
            .iter()
            .map(|e| e.heading.as_str())
            .collect();
        let expected = if status.starts_with("-ERR") {
            "-ERR"
        } else {
            "+OK"
        };
        assert_eq!(headings, [expected], "{lines:#?}");
        let marked = smtp_lab::sim::steps::refusal_lines(step, &lines)[0].is_some();
        assert_eq!(marked, expected == "-ERR", "{lines:#?}");
        refused += usize::from(marked);
    }
    assert_eq!(
        refused, 1,
        "the RETR of a deleted message is the one refusal"
    );
}

#[test]
fn a_route_does_not_make_a_host_relay_for_strangers() {
    let mut world = basic_world("route-not-relay");
    world["hosts"][0]["routes"] = json!([{"domain": "receiver.test", "host": "mx.receiver.test"}]);
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "stranger", "address": "203.0.113.9", "server": "mail.sender.test",
        "bytes": "EHLO x\r\nMAIL FROM:<s@stranger.example>\r\nRCPT TO:<bob@receiver.test>\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    let text = result.trace.to_text();
    assert!(text.contains("S: 550 5.7.1 Relay access denied"), "{text}");
}

#[test]
fn postmaster_of_a_relay_only_host_gets_the_mail() {
    let mut world = basic_world("postmaster");
    world["hosts"][1] = json!({"name": "relay.receiver.test", "address": "192.0.2.20",
                               "relay_domains": ["receiver.test"]});
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "user", "address": "203.0.113.7", "server": "relay.receiver.test",
        "bytes": "EHLO x\r\nMAIL FROM:<u@example.net>\r\nRCPT TO:<Postmaster>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n"
    }, {
        // By the host's own name too (RFC 5321 4.5.1), from a stranger: not relaying.
        "client": "user", "address": "203.0.113.7", "server": "relay.receiver.test", "at_s": 60,
        "bytes": "EHLO x\r\nMAIL FROM:<u@example.net>\r\nRCPT TO:<postmaster@Relay.Receiver.Test>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert_eq!(mailbox(&result, "postmaster@relay.receiver.test").len(), 2);
}

#[test]
fn values_that_would_overflow_are_refused_by_validation() {
    for (path, apply) in [
        (
            "latency_ms",
            Box::new(|w: &mut serde_json::Value| w["latency_ms"] = json!(u64::MAX))
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "retry.give_up_s",
            Box::new(|w: &mut serde_json::Value| w["retry"] = json!({"give_up_s": u64::MAX})),
        ),
        (
            "hosts[1].greylist_s",
            Box::new(|w: &mut serde_json::Value| w["hosts"][1]["greylist_s"] = json!(u64::MAX)),
        ),
        (
            "messages[0].at_s",
            Box::new(|w: &mut serde_json::Value| w["messages"][0]["at_s"] = json!(u64::MAX)),
        ),
        (
            "start_unix_s",
            Box::new(|w: &mut serde_json::Value| w["start_unix_s"] = json!(i64::MAX)),
        ),
        (
            "hosts[1].mailboxes[0].quota_octets",
            Box::new(|w: &mut serde_json::Value| {
                w["hosts"][1]["mailboxes"][0]["quota_octets"] = json!(u64::MAX)
            }),
        ),
    ] {
        let mut world = basic_world("overflow");
        apply(&mut world);
        let errors = Scenario::from_json(&world.to_string()).expect_err(path);
        assert!(errors.0.iter().any(|e| e.at == path), "{path}: {errors}");
    }
}

#[test]
fn unknown_fields_in_dns_and_extensions_are_refused() {
    let mut world = basic_world("typos");
    world["dns"]["fualts"] = json!([]);
    assert!(Scenario::from_json(&world.to_string()).is_err());
    let mut world = basic_world("typos");
    world["hosts"][1]["extensions"] = json!({"8bitmime": false});
    assert!(Scenario::from_json(&world.to_string()).is_err());
}

#[test]
fn control_characters_in_addresses_are_refused() {
    let mut world = basic_world("forged");
    world["messages"][0]["from"] = json!("alice@sender.test\n9+99:99:99.999  sim  FAKE");
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    assert!(
        errors.0.iter().any(|e| e.at == "messages[0].from"),
        "{errors}"
    );
}

#[test]
fn a_file_cut_short_is_refused_at_the_object_it_ends_in() {
    let whole = basic_world("cut").to_string();
    let hosts = whole.find("\"hosts\"").expect("hosts");
    // Cut inside the first host's first key after its name.
    let name = hosts + whole[hosts..].find("\"name\"").expect("a host name");
    let key = name + whole[name..].find(',').expect("a comma") + 3;
    let errors = Scenario::from_json(&whole[..key]).expect_err("refused");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(
        errors.0[0].at.starts_with("hosts[0] (line 1, column "),
        "{errors}"
    );
    assert!(
        errors.0[0]
            .problem
            .ends_with("(the file ends before the scenario does: it may have been cut short)"),
        "{errors}"
    );
}

/// The problem validation found at `at`.
fn problem_at(errors: &smtp_lab::sim::ScenarioErrors, at: &str) -> String {
    errors
        .0
        .iter()
        .find(|e| e.at == at)
        .map(|e| e.problem.clone())
        .unwrap_or_else(|| panic!("no error at {at}: {errors}"))
}

/// The paths of the errors a scenario is refused with (it must be refused).
fn error_paths(world: &serde_json::Value) -> Vec<String> {
    match Scenario::from_json(&world.to_string()) {
        Ok(_) => panic!("the scenario should be refused"),
        Err(errors) => errors.0.into_iter().map(|e| e.at).collect(),
    }
}

#[test]
fn control_characters_in_the_name_and_title_are_refused() {
    // A line break in the title would plant a forged line at the top of the text trace.
    for (field, value) in [
        ("name", "forged\n0+00:00:00.000  sim  FAKE"),
        ("name", "nul\0name"),
        (
            "title",
            "A title\n0+00:00:00.000  check                  conservation holds",
        ),
        ("title", "tab\there"),
        ("title", "cr\rhere"),
        ("teaching", "bell\u{7}"),
        ("teaching", "crlf\r\nline"),
        // Unicode's line separator is a line break to many viewers; a name with a
        // right-to-left override reads as another name.
        ("title", "line\u{2028}separator"),
        ("name", "abc\u{202e}txt.exe"),
    ] {
        let mut world = basic_world("one-line");
        world[field] = json!(value);
        let paths = error_paths(&world);
        assert!(
            paths.iter().any(|p| p == field),
            "{field} {value:?}: {paths:?}"
        );
    }
    // Right-to-left marks are text: fine in a title and a subject.
    let mut world = basic_world("rtl");
    world["title"] = json!("\u{5e9}\u{5dc}\u{5d5}\u{5dd} \u{200f}(RTL)");
    world["messages"][0]["subject"] = json!("\u{5e9}\u{5dc}\u{5d5}\u{5dd}\u{200f}!");
    assert!(Scenario::from_json(&world.to_string()).is_ok());
    let mut world = basic_world("spoofed-address");
    world["messages"][0]["to"] = json!(["bob\u{202e}@receiver.test"]);
    assert!(error_paths(&world).iter().any(|p| p == "messages[0].to"));
    // The Arabic letter mark is one of the three implicit marks (UAX #9 2.6).
    world["messages"][0]["to"] = json!(["\"a\u{61c}b\"@receiver.test"]);
    assert!(error_paths(&world).iter().any(|p| p == "messages[0].to"));
    // Teaching text is running text: a line break in it is only a space.
    let mut world = basic_world("teaching");
    world["teaching"] = json!("First sentence.\nSecond sentence.\n");
    assert!(Scenario::from_json(&world.to_string()).is_ok());
}

#[test]
fn an_error_quoting_control_characters_from_the_file_stays_on_its_line() {
    // One error per line, and nothing from the file acts on the terminal: an owner name, an
    // origin, a fault's domain and an unknown field, each with a line break and an escape.
    let mut world = basic_world("quoted-controls");
    world["dns"]["zones"][0]["records"]
        .as_array_mut()
        .expect("records")
        .push(json!({"name": "a\nb\u{1b}[31mRED.b.test", "data": {"A": "192.0.2.1"}}));
    world["dns"]["faults"] = json!([{"domain": "x\ny\u{1b}[2J", "fault": "ServFail"}]);
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    let text = errors.to_string();
    assert_eq!(text.lines().count(), errors.0.len(), "{text}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("a\\nb\\x1b[31mRED"), "{text}");
    let mut world = basic_world("unknown-field");
    world["hosts"][0]["bad\u{1b}[2Jfield\r"] = json!(1);
    let text = Scenario::from_json(&world.to_string())
        .expect_err("refused")
        .to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\\x1b[2J"), "{text}");
}

#[test]
fn control_characters_in_a_raw_clients_name_and_a_mailbox_address_are_refused() {
    // Both are actors in the text trace: `client`, and `ua:MAILBOX` for a fetch.
    let mut world = basic_world("raw-client-name");
    world["raw_sessions"] = json!([{
        "client": "mal\0lory", "address": "203.0.113.66", "server": "mx.receiver.test",
        "bytes": "QUIT\r\n"
    }]);
    assert_eq!(error_paths(&world), ["raw_sessions[0].client"]);
    let mut world = basic_world("mailbox-address");
    world["hosts"][1]["mailboxes"][0]["address"] = json!("bo\nb@receiver.test");
    let paths = error_paths(&world);
    assert!(
        paths.iter().any(|p| p == "hosts[1].mailboxes[0].address"),
        "{paths:?}"
    );
}

#[test]
fn credentials_a_user_agent_cannot_send_are_refused() {
    // The user agent sends AUTH PLAIN fields of 1 to 255 octets, without NUL (RFC 4616 2); a submission user or a message's `auth` it could
    // never send is a mistake in the scenario, not something to find out at run time.
    let long = "p".repeat(256);
    let cases = [
        (
            "/hosts/0/submission_users/0/password",
            json!(long),
            "hosts[0].submission_users[0].password",
        ),
        (
            "/hosts/0/submission_users/0/user",
            json!(long),
            "hosts[0].submission_users[0].user",
        ),
        (
            "/hosts/0/submission_users/0/user",
            json!(""),
            "hosts[0].submission_users[0].user",
        ),
        (
            "/hosts/0/submission_users/0/password",
            json!("se\0cret"),
            "hosts[0].submission_users[0].password",
        ),
        (
            "/messages/0/auth/password",
            json!(long),
            "messages[0].auth.password",
        ),
        (
            "/messages/0/auth/user",
            json!("al\0ice"),
            "messages[0].auth.user",
        ),
        ("/messages/0/auth/user", json!(""), "messages[0].auth.user"),
        // RFC 4616 2: passwd = 1*SAFE.
        (
            "/messages/0/auth/password",
            json!(""),
            "messages[0].auth.password",
        ),
        (
            "/hosts/0/submission_users/0/password",
            json!(""),
            "hosts[0].submission_users[0].password",
        ),
    ];
    for (pointer, value, path) in cases {
        let mut world = basic_world("credentials");
        *world.pointer_mut(pointer).expect(pointer) = value;
        let paths = error_paths(&world);
        assert!(paths.iter().any(|p| p == path), "{path}: {paths:?}");
    }
    // 255 octets on both sides are fine, and the message is delivered.
    let longest = "p".repeat(255);
    let mut world = basic_world("credentials-255");
    world["hosts"][0]["submission_users"][0]["password"] = json!(longest);
    world["messages"][0]["auth"]["password"] = json!(longest);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn a_kept_connection_given_a_message_the_server_cannot_take_still_ends() {
    let mut world = basic_world("cache-8bit");
    world["hosts"][0]["connection_cache_s"] = json!(2);
    world["hosts"][1]["extensions"] = json!({"eight_bit_mime": false});
    let mut later = message(&["carol@receiver.test"]);
    later["at_s"] = json!(1);
    later["raw"] = json!(
        "From: alice@sender.test\r\nTo: carol@receiver.test\r\nSubject: x\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nUn caf\u{e9}.\r\n"
    );
    world["messages"] = json!([message(&["bob@receiver.test"]), later]);
    let result = run_json(&world);
    assert!(result.conservation_problems.is_empty());
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    // 8-bit data to a server without 8BITMIME: refused by the sending client (5.6.3).
    match fate(&result, "m2", "carol@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.contains("5.6.3"), "{status}"),
        other => panic!("{other:?}"),
    }
    // The relay session idled after the refusal and then said QUIT, as after any message.
    let quits = events(&result)
        .filter(|e| {
            matches!(&e.event, smtp_lab::sim::Event::ClientState { to, .. }
                if to.as_str() == "ExpectQuitReply")
        })
        .count();
    assert!(quits >= 2, "submission and relay both ended with QUIT");
}

#[test]
fn nearly_a_thousand_mx_addresses_where_nobody_answers_defer_the_message_without_recursion() {
    let mut world = basic_world("nobody-answers");
    // 15 MX hosts with 64 addresses each (a zone holds 1024 records), none of them a
    // simulated host.
    let mut records = Vec::new();
    for host in 0..15 {
        let exchange = format!("mx{host}.receiver.test");
        records.push(sim_common::mx("receiver.test", 10 + host, &exchange));
        for n in 0..64 {
            records.push(sim_common::a(&exchange, &format!("10.77.{host}.{}", n + 1)));
        }
    }
    world["dns"]["zones"][1]["records"] = json!(records);
    world["run_until_s"] = json!(60);
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Queued { .. }
    ));
}

#[test]
fn postmaster_of_a_local_domain_is_accepted_without_a_configured_mailbox() {
    let mut world = basic_world("postmaster");
    world["messages"][0]["to"] = json!(["Postmaster@receiver.test"]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "m1", "Postmaster@receiver.test"),
        Fate::Delivered { .. }
    ));
}

/// RFC 5321 4.5.1: `RCPT TO:<Postmaster>`, without a domain, from a user agent (a raw message
/// names its envelope as written) is the submission server's postmaster, and the recipient is
/// followed to that mailbox: one fate, none lost.
#[test]
fn a_user_agents_bare_postmaster_is_delivered_and_accounted_for() {
    let mut world = basic_world("bare-postmaster");
    world["messages"][0]["to"] = json!(["Postmaster"]);
    world["messages"][0]["raw"] =
        json!("From: alice@sender.test\r\nTo: postmaster@sender.test\r\nSubject: x\r\n\r\nhi\r\n");
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(
        matches!(
            fate(&result, "m1", "postmaster@sender.test"),
            Fate::Delivered { host, .. } if host == "mail.sender.test"
        ),
        "{:?}",
        result.outcomes
    );
    assert_eq!(result.outcomes.len(), 1, "{:?}", result.outcomes);
    assert_eq!(mailbox(&result, "postmaster@sender.test").len(), 1);
}

/// RFC 5321 4.5.1: every server takes its domains' postmaster mail. Two hosts serving one
/// domain share its postmaster mailbox: the second accepts and delivers as the first did,
/// where its MDA used to refuse a mailbox the first had made ("no such mailbox").
#[test]
fn hosts_that_share_a_domain_all_deliver_its_postmaster_mail() {
    let mut world = basic_world("postmaster-two-hosts");
    world["dns"]["zones"][1]["records"] = json!([
        sim_common::mx("receiver.test", 10, "mx.receiver.test"),
        sim_common::a("mx.receiver.test", "192.0.2.20"),
        sim_common::mx("receiver.test", 20, "mx2.receiver.test"),
        sim_common::a("mx2.receiver.test", "192.0.2.21"),
    ]);
    world["hosts"][1]["faults"] = json!([{"kind": {"type": "down"}, "from_s": 60}]);
    world["hosts"]
        .as_array_mut()
        .expect("hosts")
        .push(sim_common::store_host(
            "mx2.receiver.test",
            "192.0.2.21",
            "receiver.test",
            &["dave"],
        ));
    let mut second = message(&["postmaster@receiver.test"]);
    second["at_s"] = json!(120);
    world["messages"] = json!([message(&["postmaster@receiver.test"]), second]);
    let result = run_json(&world);
    assert_conserved(&result);
    // Both copies are in the one mailbox, kept by the host where its reader fetches it.
    for name in ["m1", "m2"] {
        let delivered = fate(&result, name, "postmaster@receiver.test");
        assert!(
            matches!(delivered, Fate::Delivered { host, mailbox } if host == "mx.receiver.test" && mailbox == "postmaster@receiver.test"),
            "{name}: {delivered:?}"
        );
    }
    assert!(events(&result).any(|e| matches!(&e.event,
        smtp_lab::sim::Event::Delivered(d) if d.message == "m2" && &*d.host == "mx2.receiver.test")));
    assert_eq!(mailbox(&result, "postmaster@receiver.test").len(), 2);
}

/// RFC 5321 4.5.1, 4.1.3: `<Postmaster>`, postmaster@ the host's domain, its name and its
/// address literal all name one person. One message naming all of them is stored once, in
/// the one mailbox a reader can fetch; the name and the literal used to get mailboxes of their
/// own, which no fetch could reach.
#[test]
fn every_name_of_a_hosts_postmaster_reaches_one_mailbox_once() {
    let mut world = basic_world("postmaster-names");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "raw", "address": "203.0.113.5", "server": "mx.receiver.test", "port": 25,
        "bytes": "EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<postmaster@receiver.test>\r\nRCPT TO:<PostMaster@MX.RECEIVER.TEST>\r\nRCPT TO:<postmaster@[192.0.2.20]>\r\nDATA\r\nSubject: hi\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    for recipient in [
        "postmaster@receiver.test",
        "PostMaster@MX.RECEIVER.TEST",
        "postmaster@[192.0.2.20]",
    ] {
        assert_eq!(
            fate(&result, "r1.1", recipient),
            &Fate::Delivered {
                host: "mx.receiver.test".into(),
                mailbox: "postmaster@receiver.test".into()
            },
            "{recipient}"
        );
    }
    assert_eq!(mailbox(&result, "postmaster@receiver.test").len(), 1);
}

/// Every octet sent on every connection of a run, as text, in order.
fn transmitted_text(result: &RunResult) -> String {
    events(result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::Transmitted { bytes, .. } => {
                Some(String::from_utf8_lossy(bytes.as_bytes()).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// Any other local part at the host's own name or address literal reaches this host, which
/// keeps no mailbox there: 550 5.1.1 at RCPT, not "relay denied".
#[test]
fn another_user_at_the_hosts_own_name_or_literal_is_unknown_not_relayed() {
    let mut world = basic_world("own-literal-user");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "raw", "address": "203.0.113.5", "server": "mx.receiver.test", "port": 25,
        "bytes": "EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<bob@[192.0.2.20]>\r\nRCPT TO:<bob@mx.receiver.test>\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    let server_said = transmitted_text(&result);
    assert_eq!(
        server_said.matches("550 5.1.1 User unknown").count(),
        2,
        "{server_said}"
    );
    assert!(!server_said.contains("5.7.1"), "{server_said}");
    // Each says why: the server itself, where only postmaster is taken.
    let whys: Vec<&str> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::ReplyExplained {
                code: 550, note, ..
            } => Some(&*note.why),
            _ => None,
        })
        .collect();
    assert_eq!(whys.len(), 2, "{whys:?}");
    for (why, domain) in whys.iter().zip(["[192.0.2.20]", "mx.receiver.test"]) {
        assert!(
            why.starts_with(&format!("{domain} is this server itself"))
                && why.contains("only postmaster is taken (RFC 5321 4.5.1), so \"bob\" is unknown"),
            "{why}"
        );
    }
}

/// A host's postmaster by its own name keeps a mailbox of that name when one is configured:
/// the mail goes there, not to the host's other postmaster mailbox. Where there is none, a
/// full postmaster mailbox is full under every name: `452` at RCPT, never `250` and a bounce.
#[test]
fn a_configured_postmaster_mailbox_by_the_hosts_name_gets_its_mail_and_quota() {
    let raw = |to: &str| {
        json!({
            "client": "raw", "address": "203.0.113.5", "server": "mx.receiver.test", "port": 25,
            "bytes": format!("EHLO a.example\r\nMAIL FROM:<x@a.example>\r\nRCPT TO:<{to}>\r\nDATA\r\nSubject: hi\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        })
    };
    let mut world = basic_world("postmaster-by-name");
    world["messages"] = json!([]);
    world["hosts"][1]["local_domains"] = json!(["receiver.test", "mx.receiver.test"]);
    world["hosts"][1]["mailboxes"]
        .as_array_mut()
        .expect("mailboxes")
        .push(json!({"address": "postmaster@mx.receiver.test", "password": "pm"}));
    world["raw_sessions"] = json!([raw("postmaster@mx.receiver.test")]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert_eq!(mailbox(&result, "postmaster@mx.receiver.test").len(), 1);
    assert!(mailbox(&result, "postmaster@receiver.test").is_empty());

    let mut world = basic_world("postmaster-full");
    world["messages"] = json!([]);
    world["hosts"][1]["mailboxes"]
        .as_array_mut()
        .expect("mailboxes")
        .push(
            json!({"address": "postmaster@receiver.test", "quota_octets": 10, "used_octets": 10}),
        );
    world["raw_sessions"] = json!([
        raw("postmaster@receiver.test"),
        raw("postmaster@mx.receiver.test"),
        raw("postmaster@[192.0.2.20]"),
    ]);
    let result = run_json(&world);
    assert_conserved(&result);
    let server_said = transmitted_text(&result);
    assert_eq!(server_said.matches("452 4.2.2").count(), 3, "{server_said}");
    assert!(!events(&result).any(|e| matches!(&e.event, smtp_lab::sim::Event::DeliveryRefused(_))));

    // The same when the host's name is one of its local domains, with no mailbox of that name:
    // the RCPT check looks at the mailbox the MDA would use.
    world["hosts"][1]["local_domains"] = json!(["receiver.test", "mx.receiver.test"]);
    world["raw_sessions"] = json!([raw("postmaster@mx.receiver.test")]);
    let result = run_json(&world);
    assert_conserved(&result);
    let refused = events(&result).any(|e| {
        matches!(&e.event,
        smtp_lab::sim::Event::Transmitted { bytes, .. }
            if String::from_utf8_lossy(bytes.as_bytes()).contains("452 4.2.2"))
    });
    assert!(refused);
    assert!(!events(&result).any(|e| matches!(&e.event, smtp_lab::sim::Event::DeliveryRefused(_))));
}

/// A message/* or multipart/* attachment goes unencoded (RFC 2045 6.4); validation refuses
/// one whose content cannot (a NUL, a line over 998 octets), naming the attachment.
#[test]
fn composite_attachments_that_cannot_go_unencoded_are_refused_by_validation() {
    let long_line = format!("Subject: x\n\n{}\n", "a".repeat(1000));
    let mut world = basic_world("unencodable");
    world["messages"][0]["attachments"] = json!([
        {"filename": "ok.eml", "content_type": "message/rfc822", "text": "Subject: x\n\nfine\n"},
        {"filename": "nul.eml", "content_type": "message/rfc822", "text": "Subject: x\n\n\u{0}\n"},
        {"filename": "long.mime", "content_type": "multipart/mixed; boundary=b", "text": long_line},
        {"filename": "generated.eml", "content_type": "message/rfc822", "size_octets": 300},
        {"filename": "leaf.bin", "content_type": "application/octet-stream", "text": "\u{0}"},
    ]);
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    let problem = |at: &str| problem_at(&errors, at);
    let nul = problem("messages[0].attachments[1]");
    assert!(nul.contains("\"nul.eml\"") && nul.contains("NUL"), "{nul}");
    let long = problem("messages[0].attachments[2]");
    assert!(
        long.contains("\"long.mime\"") && long.contains("1000 octets"),
        "{long}"
    );
    let generated = problem("messages[0].attachments[3]");
    assert!(generated.contains("\"generated.eml\"") && generated.contains("`text`"));
    assert_eq!(errors.0.len(), 3, "{errors}");
}

/// RFC 2046 5.1.1: a multipart/* attachment needs a boundary parameter, of 1 to 70 bchars,
/// which its content uses; validation refuses one without, naming the attachment.
#[test]
fn multipart_attachments_without_a_usable_boundary_are_refused_by_validation() {
    let parts = "--b\nContent-Type: text/plain\n\none\n--b--\n";
    let mut world = basic_world("boundary");
    world["messages"][0]["attachments"] = json!([
        {"filename": "ok.mime", "content_type": "multipart/mixed; boundary=b", "text": parts},
        {"filename": "none.mime", "content_type": "multipart/mixed", "text": parts},
        {"filename": "bad.mime", "content_type": "multipart/mixed; boundary=\"b \"", "text": parts},
        {"filename": "other.mime", "content_type": "multipart/mixed; boundary=c", "text": parts},
        {"filename": "generated.mime", "content_type": "multipart/mixed", "size_octets": 300},
    ]);
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    let problem = |at: &str| problem_at(&errors, at);
    for (index, name, says) in [
        (1, "none.mime", "no boundary parameter"),
        (2, "bad.mime", "\"b \""),
        (3, "other.mime", "\"--c\""),
        (4, "generated.mime", "no boundary parameter"),
    ] {
        let text = problem(&format!("messages[0].attachments[{index}]"));
        assert!(
            text.contains(&format!("\"{name}\"")) && text.contains(says),
            "{text}"
        );
        assert!(text.contains("RFC 2046 5.1.1"), "{text}");
    }
    // The content is not the problem of a missing parameter: no hint about `text`.
    assert!(!problem("messages[0].attachments[4]").contains("`text`"));
    assert_eq!(errors.0.len(), 4, "{errors}");
}

/// RFC 2046 5.2.1: a message/rfc822's header fields are always US-ASCII; one with UTF-8 header
/// fields is a message/global (RFC 6532 3.7). Validation refuses the first, naming it.
#[test]
fn a_message_rfc822_attachment_with_utf8_header_fields_is_refused_by_validation() {
    let inner = "From: jos\u{e9}@example.net\nSubject: Gr\u{fc}\u{df}e\n\nhi\n";
    let mut world = basic_world("utf8-header");
    world["messages"][0]["attachments"] = json!([
        {"filename": "global.eml", "content_type": "message/global", "text": inner},
        {"filename": "fwd.eml", "content_type": "message/rfc822", "text": inner},
        {"filename": "body.eml", "content_type": "message/rfc822",
         "text": "Subject: x\n\nGr\u{fc}\u{df}e\n"},
    ]);
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    let problem = problem_at(&errors, "messages[0].attachments[1]");
    assert!(
        problem.contains("\"fwd.eml\"")
            && problem.contains("RFC 2046 5.2.1")
            && problem.contains("message/global"),
        "{problem}"
    );
    assert_eq!(errors.0.len(), 1, "{errors}");
}

/// An 8-bit message/rfc822 attachment makes the message 8-bit: it goes with BODY=8BITMIME,
/// and to a server without 8BITMIME it fails as any 8-bit message does (RFC 6152 3).
#[test]
fn an_8bit_message_attachment_takes_the_8bitmime_path() {
    let inner = "From: carol@example.net\r\nSubject: Greetings\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e aus K\u{f6}ln\r\n";
    let mut world = basic_world("8bit-attachment");
    world["messages"][0]["attachments"] =
        json!([{"filename": "fwd.eml", "content_type": "message/rfc822", "text": inner}]);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    let mail_commands: Vec<String> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::Transmitted { bytes, .. } => {
                let text = String::from_utf8_lossy(bytes.as_bytes()).into_owned();
                text.starts_with("MAIL FROM:").then_some(text)
            }
            _ => None,
        })
        .collect();
    // Submission, then relay: both declare the 8-bit body.
    assert_eq!(mail_commands.len(), 2, "{mail_commands:?}");
    assert!(
        mail_commands.iter().all(|c| c.contains(" BODY=8BITMIME")),
        "{mail_commands:?}"
    );
    let stored = mailbox(&result, "bob@receiver.test");
    assert_eq!(stored.len(), 1);
    let stored = stored[0];
    assert!(stored
        .windows(inner.len())
        .any(|window| window == inner.as_bytes()));

    world["hosts"][1]["extensions"] = json!({"eight_bit_mime": false});
    let result = run_json(&world);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.contains("5.6.3"), "{status}"),
        other => panic!("{other:?}"),
    }
}

/// A body written with letters beyond ASCII goes as quoted-printable, or, asked for, as it is:
/// 8bit data with BODY=8BITMIME on every hop (RFC 2045 2.8, RFC 6152 2), delivered byte for
/// byte; and then not to a server without 8BITMIME (5.6.3).
#[test]
fn an_eight_bit_body_goes_as_it_is_only_when_asked_for() {
    let mail_commands = |result: &smtp_lab::sim::RunResult| -> Vec<String> {
        events(result)
            .filter_map(|e| match &e.event {
                smtp_lab::sim::Event::Transmitted { bytes, .. } => {
                    let text = String::from_utf8_lossy(bytes.as_bytes()).into_owned();
                    text.starts_with("MAIL FROM:").then_some(text)
                }
                _ => None,
            })
            .collect()
    };
    let mut world = basic_world("8bit-body");
    world["messages"][0]["body"] = json!("Un caf\u{e9} cr\u{e8}me.\n");
    let result = run_json(&world);
    let stored = String::from_utf8(mailbox(&result, "bob@receiver.test")[0].to_vec()).unwrap();
    assert!(
        stored.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nUn caf=C3=A9"),
        "{stored}"
    );
    assert!(mail_commands(&result)
        .iter()
        .all(|c| !c.contains("BODY=8BITMIME")));

    world["messages"][0]["eight_bit_body"] = json!(true);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    let stored = String::from_utf8(mailbox(&result, "bob@receiver.test")[0].to_vec()).unwrap();
    assert!(
        stored.contains("Content-Transfer-Encoding: 8bit\r\n\r\nUn caf\u{e9} cr\u{e8}me.\r\n"),
        "{stored}"
    );
    let commands = mail_commands(&result);
    // Submission, then relay: both declare the 8-bit body.
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands.iter().all(|c| c.contains(" BODY=8BITMIME")),
        "{commands:?}"
    );

    world["hosts"][1]["extensions"] = json!({"eight_bit_mime": false});
    let result = run_json(&world);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.contains("5.6.3"), "{status}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_u_label_domain_and_its_a_label_are_one_domain() {
    // RFC 5890 2.3.2.1: "bü.test" and "xn--b-eha.test" name one domain; DNS knows only the
    // A-label (RFC 5891 5). The host lists one form, the addresses use either.
    for (local_domain, recipients) in [
        ("b\u{fc}.test", ["bob@b\u{fc}.test", "bob@xn--b-eha.test"]),
        ("xn--b-eha.test", ["bob@B\u{dc}.test", "bob@xn--b-eha.test"]),
    ] {
        let mut world = basic_world("idn");
        world["dns"]["zones"][1] = json!({"origin": "xn--b-eha.test", "records": [
            sim_common::mx("xn--b-eha.test", 10, "mx.xn--b-eha.test"),
            sim_common::a("mx.xn--b-eha.test", "192.0.2.20"),
        ]});
        world["hosts"][1] =
            sim_common::store_host("mx.b.test", "192.0.2.20", local_domain, &["bob"]);
        world["messages"] = json!([message(&recipients[..1]), message(&recipients[1..])]);
        // The reader may name the mailbox in the other form too.
        world["fetches"] = json!([{
            "host": "mx.b.test", "mailbox": recipients[0], "at_s": 600, "delete": false
        }]);
        let result = run_json(&world);
        for (index, recipient) in recipients.iter().enumerate() {
            let label = format!("m{}", index + 1);
            assert!(
                matches!(fate(&result, &label, recipient), Fate::Delivered { .. }),
                "{local_domain}: {recipient}: {:?}",
                result.outcomes
            );
        }
        assert_eq!(mailbox(&result, &format!("bob@{local_domain}")).len(), 2);
        let text = result.trace.to_text();
        assert!(
            text.contains("DNS query id ") && text.contains(": xn--b-eha.test. IN MX"),
            "{text}"
        );
        assert_eq!(text.matches(" retrieved m").count(), 2, "{text}");
    }
}

#[test]
fn a_message_is_stored_with_the_size_pop3_reports() {
    // A BDAT chunk may end without CRLF (RFC 3030); the mailbox keeps lines, so the stored
    // message gets its final CRLF and the MDA's size is the size LIST and RETR give.
    let mut world = basic_world("bdat-no-final-crlf");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "c", "address": "203.0.113.70", "server": "mx.receiver.test",
        "bytes": "EHLO c.example\r\nMAIL FROM:<s@src.test>\r\nRCPT TO:<bob@receiver.test>\r\n\
                  BDAT 30 LAST\r\nSubject: no final crlf\r\n\r\nbodyQUIT\r\n"
    }]);
    world["fetches"] =
        json!([{"host": "mx.receiver.test", "mailbox": "bob@receiver.test", "at_s": 60}]);
    let result = run_json(&world);
    let stored: Vec<usize> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::Delivered(delivered) => Some(delivered.octets),
            _ => None,
        })
        .collect();
    let retrieved: Vec<usize> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::MessageRetrieved(retrieved) => Some(retrieved.octets),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "{:?}", result.trace.to_text());
    assert_eq!(stored, retrieved);
    assert!(
        mailbox(&result, "bob@receiver.test").is_empty(),
        "retrieved and deleted"
    );
}

#[test]
fn a_raw_message_is_composed_with_the_size_it_declares() {
    let mut world = basic_world("raw-lf");
    world["messages"][0]["raw"] = json!("Subject: lf\n\nline one\nline two\n");
    let result = run_json(&world);
    let composed: Vec<usize> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::MessageComposed(composed) => Some(composed.octets),
            _ => None,
        })
        .collect();
    // Four lines, each ending in CRLF (RFC 5321 2.3.8), as SIZE counts them (RFC 1870 3).
    assert_eq!(
        composed,
        vec!["Subject: lf\r\n\r\nline one\r\nline two\r\n".len()]
    );
    let text = result.trace.to_text();
    assert!(text.contains(&format!("SIZE={}", composed[0])), "{text}");
}

/// A raw message's attachments are ignored (docs/scenario-format.md), so validation does not
/// check them either.
#[test]
fn a_raw_messages_attachments_are_not_validated() {
    let mut world = basic_world("raw-attachments");
    world["messages"][0]["attachments"] = json!([
        {"filename": "none.mime", "content_type": "multipart/mixed", "text": "x"},
        {"filename": "nul.eml", "content_type": "message/rfc822", "text": "A: b\n\n\u{0}"},
        {"filename": "huge.bin", "size_octets": 9_000_000},
    ]);
    assert_eq!(
        error_paths(&world),
        [
            "messages[0].attachments[0]",
            "messages[0].attachments[1]",
            "messages[0].attachments[2].size_octets",
        ]
    );
    world["messages"][0]["raw"] = json!("Subject: raw\r\n\r\nhello\r\n");
    let scenario = Scenario::from_json(&world.to_string()).expect("a raw message is accepted");
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    assert_eq!(scenario.messages[0].attachments.len(), 3);
    // Nor do they count towards the scenario's total.
    let big = json!({"filename": "big.bin", "size_octets": 8_000_000});
    world["messages"][0]["attachments"] = json!(vec![big; 9]);
    assert!(Scenario::from_json(&world.to_string()).is_ok());
    world["messages"][0]["raw"] = json!(null);
    assert_eq!(error_paths(&world), ["messages"]);
}

#[test]
fn one_mailbox_written_in_two_cases_gets_one_copy() {
    // The relay keeps BOB@ and bob@ apart (RFC 5321 2.4: only the final host may fold a
    // local part's case); the final host folds them into one mailbox, which gets one copy.
    let mut world = basic_world("case-twice");
    world["messages"][0]["bcc"] = json!(["BOB@receiver.test", "bob@receiver.test"]);
    let result = run_json(&world);
    for recipient in ["bob@receiver.test", "BOB@receiver.test"] {
        assert!(matches!(
            fate(&result, "m1", recipient),
            Fate::Delivered { .. }
        ));
    }
    assert_eq!(mailbox(&result, "bob@receiver.test").len(), 1);
    let text = result.trace.to_text();
    assert!(text.contains("C: RCPT TO:<BOB@receiver.test>"), "{text}");
}

#[test]
fn a_refusal_of_one_mailbox_written_in_two_cases_names_both() {
    // Over quota at the MDA: one mailbox, one refusal, and one notice that reports each
    // address the sender used (RFC 3464 2.3: a group of fields per recipient).
    let mut world = basic_world("case-twice-over-quota");
    world["hosts"][1]["mailboxes"][0]["quota_octets"] = json!(100);
    world["messages"][0]["to"] = json!(["BOB@receiver.test", "bob@RECEIVER.test"]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    for recipient in ["BOB@receiver.test", "bob@RECEIVER.test"] {
        match fate(&result, "m1", recipient) {
            Fate::Bounced { status, .. } => assert!(status.starts_with("552 5.2.2"), "{status}"),
            other => panic!("{recipient}: {other:?}"),
        }
    }
    let refusals = events(&result)
        .filter(|e| matches!(e.event, smtp_lab::sim::Event::DeliveryRefused(_)))
        .count();
    assert_eq!(refusals, 1);
    assert_one_notice_to_alice_names(&result, &["BOB@receiver.test", "bob@RECEIVER.test"]);
}

/// Alice's mailbox holds one notice, which reports each of `recipients`.
fn assert_one_notice_to_alice_names(result: &smtp_lab::sim::RunResult, recipients: &[&str]) {
    let notices = mailbox(result, "alice@sender.test");
    assert_eq!(notices.len(), 1);
    let notice = String::from_utf8_lossy(notices[0]);
    for recipient in recipients {
        assert!(
            notice.contains(&format!("Final-Recipient: rfc822; {recipient}\r\n")),
            "{notice}"
        );
    }
}

#[test]
fn the_mdas_refusals_of_one_message_make_one_notice() {
    // Two mailboxes, both over quota for this message: one notice names both recipients
    // (RFC 3464 2: one report for several recipients), as refusals at RCPT do.
    let mut world = basic_world("two-over-quota");
    world["hosts"][1]["mailboxes"][0]["quota_octets"] = json!(100);
    world["hosts"][1]["mailboxes"][1]["quota_octets"] = json!(100);
    world["messages"][0]["to"] = json!(["bob@receiver.test", "carol@receiver.test"]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    assert_one_notice_to_alice_names(&result, &["bob@receiver.test", "carol@receiver.test"]);
    for recipient in ["bob@receiver.test", "carol@receiver.test"] {
        assert!(matches!(
            fate(&result, "m1", recipient),
            Fate::Bounced { .. }
        ));
    }
}

#[test]
fn an_unanswered_dns_question_takes_the_resolvers_timeout() {
    let mut world = basic_world("dns-timeout");
    world["dns"]["faults"] =
        json!([{"domain": "receiver.test", "fault": "Timeout", "until_ms": 60_000}]);
    let result = run_json(&world);
    let times = |wanted: fn(&smtp_lab::sim::Event) -> bool| -> Vec<u64> {
        events(&result)
            .filter(|e| wanted(&e.event))
            .map(|e| e.time_ms)
            .collect()
    };
    let queries = times(
        |e| matches!(e, smtp_lab::sim::Event::DnsQuery(q) if q.question.contains("receiver.test")),
    );
    let answers = times(
        |e| matches!(e, smtp_lab::sim::Event::DnsResponse(r) if r.outcome == smtp_lab::dns::Outcome::TimedOut),
    );
    assert_eq!(answers.len(), 1, "{}", result.trace.to_text());
    // The question at t, its lack of answer 10 s later, and then the deferral.
    assert_eq!(answers[0], queries[0] + 10_000);
    let text = result.trace.to_text();
    assert!(text.contains("4.4.3"), "{text}");
    // After the fault, the retry finds the MX and delivers.
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn fields_the_submission_server_adds_never_swallow_the_body() {
    // Text that is not a header field is the body: the added fields go before it, with the
    // blank line that ends a header section (RFC 5322 2.1, 2.2; RFC 6409 8.2, 8.3).
    for (raw, body) in [
        (
            "just a body line\r\nsecond\r\n",
            "just a body line\r\nsecond\r\n",
        ),
        ("Subject: s\r\nbody at once\r\n", "body at once\r\n"),
        ("Subject: s\r\n folded\r\n\r\nbody\r\n", "body\r\n"),
        ("\r\nempty header\r\n", "empty header\r\n"),
    ] {
        let text = stored_at_bob(raw);
        let (header, stored_body) = text.split_once("\r\n\r\n").expect("a header section");
        assert_eq!(stored_body, body, "{raw:?}: {text}");
        assert_eq!(header.matches("\r\nDate: ").count(), 1, "{text}");
        assert_eq!(header.matches("\r\nMessage-ID: <").count(), 1, "{text}");
        for line in header.split("\r\n") {
            assert!(
                line.contains(':') || line.starts_with(' ') || line.starts_with('\t'),
                "{raw:?}: not a field: {line:?}"
            );
        }
    }
}

/// RFC 5322 3.6: `From:` is required. A submission server gives a message without one the
/// envelope's sender, as Postfix's cleanup does; one that has an author keeps it alone.
#[test]
fn a_submitted_message_without_an_author_gets_the_envelope_sender() {
    for (raw, author) in [
        ("Subject: no author\r\n\r\nhi\r\n", "alice@sender.test"),
        (
            "From: Carol <carol@sender.test>\r\n\r\nhi\r\n",
            "Carol <carol@sender.test>",
        ),
        ("FROM : x@sender.test\r\n\r\nhi\r\n", "x@sender.test"),
    ] {
        let authors = authors_at_bob(raw);
        assert_eq!(authors, [author], "{raw:?}");
    }
    // Who resends a message is not its author (RFC 5322 3.6.6).
    let resent = "Resent-From: alice@sender.test\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 \
                  +0000\r\n\r\nhi\r\n";
    assert!(authors_at_bob(resent).is_empty());
}

/// The message that `raw`, submitted, leaves at bob's.
fn stored_at_bob(raw: &str) -> String {
    let mut world = basic_world("msa-raw");
    world["messages"][0]["raw"] = json!(raw);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    let stored = mailbox(&result, "bob@receiver.test");
    String::from_utf8_lossy(stored[0]).into_owned()
}

/// The values of the `From:` fields of the message that `raw`, submitted, leaves at bob's.
fn authors_at_bob(raw: &str) -> Vec<String> {
    let text = stored_at_bob(raw);
    let (header, _) = text.split_once("\r\n\r\n").expect("a header section");
    header
        .split("\r\n")
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("From")
                .then(|| value.trim().to_string())
        })
        .collect()
}

#[test]
fn a_reader_spelling_the_mailbox_its_own_way_empties_it_in_the_view_too() {
    use smtp_lab::sim::view::TraceViewer;
    let mut world = basic_world("idn-fetch-delete");
    world["dns"]["zones"][1] = json!({"origin": "xn--b-eha.test", "records": [
        sim_common::mx("xn--b-eha.test", 10, "mx.xn--b-eha.test"),
        sim_common::a("mx.xn--b-eha.test", "192.0.2.20"),
    ]});
    world["hosts"][1] = sim_common::store_host("mx.b.test", "192.0.2.20", "b\u{fc}.test", &["bob"]);
    world["messages"] = json!([message(&["bob@b\u{fc}.test"])]);
    world["fetches"] = json!([{"host": "mx.b.test", "mailbox": "BOB@xn--b-eha.test", "at_s": 600}]);
    let result = run_json(&world);
    assert!(mailbox(&result, "bob@b\u{fc}.test").is_empty());
    let text = result.trace.to_text();
    assert!(text.contains("bob@b\u{fc}.test: deleted m1.1"), "{text}");
    let viewer = TraceViewer::new(result.trace.clone());
    let end = viewer.view_at(result.trace.events.len());
    assert!(
        end.mailboxes.values().all(|items| items.is_empty()),
        "{:?}",
        end.mailboxes
    );
}

#[test]
fn mx_targets_are_named_with_their_addresses_v4_and_v6() {
    let targets = |world: &serde_json::Value| -> Vec<String> {
        events(&run_json(world))
            .filter_map(|e| match &e.event {
                smtp_lab::sim::Event::MxResolved(r) if r.domain == "receiver.test" => {
                    Some(r.targets.join(", "))
                }
                _ => None,
            })
            .collect()
    };
    let world = basic_world("mx-labels-v4");
    assert_eq!(targets(&world), ["mx.receiver.test [192.0.2.20]"]);
    let mut world = basic_world("mx-labels-v6");
    world["dns"]["zones"][1]["records"][1] =
        json!({"name": "mx.receiver.test", "data": {"AAAA": "2001:db8::20"}});
    world["hosts"][1]["address"] = json!("2001:db8::20");
    assert_eq!(targets(&world), ["mx.receiver.test [2001:db8::20]"]);
    assert!(matches!(
        fate(&run_json(&world), "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

/// The basic world where every DNS answer for `failing` is SERVFAIL, retried every 10
/// minutes until `give_up_s`, run for `run_until_s`.
fn servfail_world(
    name: &str,
    failing: &str,
    give_up_s: u64,
    run_until_s: u64,
) -> serde_json::Value {
    let mut world = basic_world(name);
    world["dns"]["faults"] = json!([{"domain": failing, "fault": "ServFail"}]);
    world["retry"] = json!({"first_retry_s": 600, "max_interval_s": 600, "give_up_s": give_up_s});
    world["run_until_s"] = json!(run_until_s);
    world
}

#[test]
fn a_bounce_after_dns_failures_does_not_promise_a_retry() {
    let world = servfail_world("dns-fails-for-good", "receiver.test", 1800, 7200);
    let result = run_json(&world);
    let text = result.trace.to_text();
    // While it keeps trying, the resolver's answer says so; at the attempt that ends the
    // entry's time in the queue, it does not.
    let answers: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("MX for receiver.test"))
        .collect();
    let (last, earlier) = answers.split_last().expect("MX lookups");
    assert!(!earlier.is_empty(), "{text}");
    assert!(
        earlier
            .iter()
            .all(|line| line.ends_with("Temporary DNS failure; will retry (4.4.3)")),
        "{text}"
    );
    assert!(last.ends_with("Temporary DNS failure (4.4.3)"), "{text}");
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Bounced { status, .. } if status.contains("Temporary DNS failure")
            && !status.contains("will retry")
    ));
    let bounces = mailbox(&result, "alice@sender.test");
    assert_eq!(bounces.len(), 1);
    let bounce = String::from_utf8_lossy(bounces[0]);
    assert!(bounce.contains("Temporary DNS failure"), "{bounce}");
    assert!(!bounce.contains("will retry"), "{bounce}");
}

#[test]
fn a_failed_address_lookup_names_the_mx_host_too() {
    // The MX query is answered; only mx.receiver.test's address lookups fail. The failure
    // reported is that host's, not receiver.test's.
    let world = servfail_world("mx-address-fails", "mx.receiver.test", 1200, 3600);
    let result = run_json(&world);
    let wanted = "receiver.test: Temporary DNS failure looking up the address of \
                  mx.receiver.test";
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Bounced { status, .. } if status.contains(wanted)
    ));
    let bounces = mailbox(&result, "alice@sender.test");
    assert_eq!(bounces.len(), 1);
    let bounce = String::from_utf8_lossy(bounces[0]).replace("\r\n ", " ");
    assert!(
        bounce.contains(&format!(
            "Diagnostic-Code: X-SMTP-Lab; delivery time expired; last error: {wanted}"
        )),
        "{bounce}"
    );
    // Two MX records naming that host name it once.
    let mut world = basic_world("mx-address-fails-twice");
    world["dns"]["faults"] = json!([{"domain": "mx.receiver.test", "fault": "ServFail"}]);
    world["dns"]["zones"][1]["records"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "receiver.test",
                     "data": {"MX": {"preference": 20, "exchange": "mx.receiver.test"}}}));
    let result = run_json(&world);
    let text = result.trace.to_text();
    assert!(
        text.contains(&format!("{wanted} (this host's own finding)")),
        "{text}"
    );
    assert!(
        !text.contains("mx.receiver.test, mx.receiver.test"),
        "{text}"
    );
    // When the MX query itself fails, the mail domain is the one named, as before.
    let world = servfail_world("mx-query-fails", "receiver.test", 1200, 3600);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Bounced { status, .. } if status.contains("receiver.test: Temporary DNS failure")
            && !status.contains("looking up")
    ));
}

/// Positions in the trace of the first event `wanted` picks.
fn position(
    result: &smtp_lab::sim::RunResult,
    wanted: impl Fn(&smtp_lab::sim::Event) -> bool,
) -> usize {
    events(result)
        .position(|e| wanted(&e.event))
        .expect("the event is in the trace")
}

fn sent_by_server(event: &smtp_lab::sim::Event, text: &str) -> bool {
    matches!(event, smtp_lab::sim::Event::Transmitted {
        direction: smtp_lab::sim::trace::Direction::ServerToClient, bytes, ..
    } if String::from_utf8_lossy(bytes.as_bytes()).contains(text))
}

#[test]
fn replies_to_commands_sent_in_one_go_come_before_what_later_commands_do() {
    // A scripted client sends everything at once: the server's replies up to 354 leave before
    // the message is taken, and those before QUIT before the maildrop changes.
    let mut world = basic_world("raw-order");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([
        {
            "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
            "bytes": "EHLO script.example\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: one\r\n\r\n1\r\n.\r\nQUIT\r\n"
        },
        {
            "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
            "port": 110, "at_s": 60,
            "bytes": "USER bob@receiver.test\r\nPASS bob-pw\r\nDELE 1\r\nQUIT\r\n"
        }
    ]);
    let result = run_json(&world);
    let go_ahead = position(&result, |e| sent_by_server(e, "354 "));
    let accepted = position(&result, |e| {
        matches!(e, smtp_lab::sim::Event::MessageAccepted(_))
    });
    let queued = position(&result, |e| sent_by_server(e, "queued as"));
    assert!(
        go_ahead < accepted && accepted < queued,
        "{}",
        result.trace.to_text()
    );
    let deleted = position(&result, |e| sent_by_server(e, "+OK message 1 deleted"));
    let updated = position(&result, |e| {
        matches!(e, smtp_lab::sim::Event::MailboxUpdated(_))
    });
    let signed_off = position(&result, |e| sent_by_server(e, "signing off"));
    assert!(
        deleted < updated && updated < signed_off,
        "{}",
        result.trace.to_text()
    );
    assert!(mailbox(&result, "bob@receiver.test").is_empty());
}

#[test]
fn the_resolver_says_when_an_mx_names_an_alias() {
    let mut world = basic_world("mx-to-cname");
    world["dns"]["zones"][1]["records"] = json!([
        {"name": "receiver.test", "data": {"MX": {"preference": 10, "exchange": "mail.receiver.test"}}},
        {"name": "mail.receiver.test", "data": {"CNAME": "mx.receiver.test"}},
        {"name": "mx.receiver.test", "data": {"A": "192.0.2.20"}},
    ]);
    let result = run_json(&world);
    let notes: Vec<&String> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::MxResolved(r) => Some(&r.notes),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        notes,
        [
            "MX host mail.receiver.test is an alias of mx.receiver.test; followed, but an MX must \
          name a host, not an alias (RFC 2181 10.3)"
        ]
    );
    let text = result.trace.to_text();
    assert!(
        text.contains("  note: MX host mail.receiver.test is an alias"),
        "{text}"
    );
    // Followed anyway, as real MTAs do.
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn the_mda_delivers_after_the_servers_250() {
    // RFC 5321 6.1: the 250 after the data is where the server takes the message over; its
    // MDA stores it (or refuses it, and the server bounces it) after that.
    let mut world = basic_world("mda-after-250");
    let result = run_json(&world);
    let queued_reply = position(&result, |e| sent_by_server(e, "queued as B"));
    let stored = position(
        &result,
        |e| matches!(e, smtp_lab::sim::Event::Delivered(d) if d.message == "m1"),
    );
    assert!(queued_reply < stored, "{}", result.trace.to_text());
    world["hosts"][1]["mailboxes"][0]["quota_octets"] = json!(10);
    let result = run_json(&world);
    let queued_reply = position(&result, |e| sent_by_server(e, "queued as B"));
    let refused = position(&result, |e| {
        matches!(e, smtp_lab::sim::Event::DeliveryRefused(_))
    });
    let notice = position(&result, |e| {
        matches!(e, smtp_lab::sim::Event::BounceCreated(_))
    });
    assert!(
        queued_reply < refused && refused < notice,
        "{}",
        result.trace.to_text()
    );
}

#[test]
fn each_accepted_recipient_is_explained_by_why_this_server_takes_it() {
    let result = run_json(&basic_world("rcpt-reasons"));
    let reasons: Vec<String> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::Event::ReplyExplained {
                code: 250, note, ..
            } if note.meaning.contains("5.1.5") || note.meaning.contains("2.1.5") => {
                Some(note.why.to_string())
            }
            _ => None,
        })
        .collect();
    // The submission server relays for the authenticated user; the receiving one holds the
    // mailbox.
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("authenticated"), "{reasons:?}");
    assert!(reasons[1].contains("the mailbox exists"), "{reasons:?}");
}

#[test]
fn messages_sent_in_one_go_are_delivered_in_the_order_they_were_taken() {
    // Two messages in one input, and room for one: the first is stored, the second refused
    // by the MDA after its 250 and bounced.
    let mut world = basic_world("two-in-one-go");
    world["messages"] = json!([]);
    world["hosts"][1]["mailboxes"][0]["quota_octets"] = json!(300);
    let one = "MAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\n";
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": format!("EHLO s.example\r\n{one}Subject: one\r\n\r\none\r\n.\r\n{one}Subject: two\r\n\r\ntwo\r\n.\r\nQUIT\r\n")
    }]);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "r1.1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    assert!(matches!(
        fate(&result, "r1.2", "bob@receiver.test"),
        Fate::Bounced { .. }
    ));
    let stored = mailbox(&result, "bob@receiver.test");
    assert_eq!(stored.len(), 1);
    assert!(String::from_utf8_lossy(stored[0]).contains("Subject: one"));
}

/// The world of `basic_world` where mail.sender.test also relays for receiver.test, and a
/// scripted client hands it one message for `recipients` on port 25.
fn relayed_by_the_sender(name: &str, recipients: &[String]) -> serde_json::Value {
    let mut world = basic_world(name);
    world["messages"] = json!([]);
    world["hosts"][0]["relay_domains"] = json!(["receiver.test"]);
    let rcpts: String = recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>\r\n"))
        .collect();
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mail.sender.test",
        "bytes": format!("EHLO s.example\r\nMAIL FROM:<a@script.example>\r\n{rcpts}DATA\r\nSubject: relayed\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    }]);
    world
}

#[test]
fn a_quoted_local_part_holding_an_angle_bracket_is_relayed_and_its_neighbour_delivered() {
    // RFC 5321 4.1.2: qtextSMTP includes "<" and ">". The relay's client must send such an
    // address, not refuse the whole message it has already accepted.
    let world = relayed_by_the_sender(
        "quoted-bracket",
        &["bob@receiver.test".into(), "\"a>b\"@receiver.test".into()],
    );
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "r1.1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    // No such mailbox: refused by the receiving server, not by the relay itself.
    match fate(&result, "r1.1", "\"a>b\"@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.starts_with("550 5.1.1"), "{status}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_envelope_larger_than_one_client_session_takes_is_split_not_bounced() {
    let count = smtp_lab::smtp::client::FORWARD_PATHS_MAX + 1;
    let users: Vec<String> = (0..count).map(|n| format!("u{n}")).collect();
    let recipients: Vec<String> = users.iter().map(|u| format!("{u}@receiver.test")).collect();
    let mut world = relayed_by_the_sender("1001", &recipients);
    world["hosts"][0]["max_recipients"] = json!(2000);
    world["hosts"][1]["max_recipients"] = json!(2000);
    world["hosts"][1]["mailboxes"] = json!(recipients
        .iter()
        .map(|r| json!({"address": r}))
        .collect::<Vec<_>>());
    let result = run_json(&world);
    assert_conserved(&result);
    for recipient in &recipients {
        assert!(
            matches!(fate(&result, "r1.1", recipient), Fate::Delivered { .. }),
            "{recipient}: {:?}",
            fate(&result, "r1.1", recipient)
        );
    }
}

#[test]
fn a_message_over_the_first_mx_size_limit_bounces_at_once_with_the_size_error() {
    // RFC 1870 6.1: the client does not send a message over the advertised SIZE; that is the
    // message's permanent failure, not a connection failure to retry for five days on the
    // next MX (here down).
    let mut world = basic_world("size-then-down");
    world["dns"]["zones"][1]["records"] = json!([
        sim_common::mx("receiver.test", 10, "mx.receiver.test"),
        sim_common::mx("receiver.test", 20, "mx2.receiver.test"),
        sim_common::a("mx.receiver.test", "192.0.2.20"),
        sim_common::a("mx2.receiver.test", "192.0.2.22"),
    ]);
    world["hosts"][1]["max_size_octets"] = json!(100);
    world["hosts"].as_array_mut().expect("hosts").push(json!({
        "name": "mx2.receiver.test", "address": "192.0.2.22",
        "relay_domains": ["receiver.test"], "faults": [{"kind": {"type": "down"}}]
    }));
    let result = run_json(&world);
    assert_conserved(&result);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::Bounced {
            host,
            status,
            own_finding,
            notice_declined: false,
        } => {
            assert_eq!(host, "mail.sender.test");
            assert!(status.starts_with("552 5.3.4"), "{status}");
            // No server said it: the sending host found the message over the SIZE.
            assert!(own_finding);
        }
        other => panic!("{other:?}"),
    }
    let last_event_ms = events(&result).map(|e| e.time_ms).max().unwrap_or(0);
    assert!(last_event_ms < 3_600_000, "no retries: {last_event_ms} ms");
}

#[test]
fn a_full_mailbox_at_rcpt_does_not_hold_back_the_next_recipient() {
    // 452 4.2.2 is one full mailbox (RFC 3463 3.3), not "too many recipients": the next
    // RCPT goes in the same transaction, and the message is sent once.
    let mut world = basic_world("452-full");
    world["hosts"][0]["client_pipelining"] = json!(false);
    world["hosts"][1]["mailboxes"] = json!([
        {"address": "bob@receiver.test"},
        {"address": "carol@receiver.test", "quota_octets": 10, "used_octets": 10},
        {"address": "dave@receiver.test"},
    ]);
    world["messages"][0]["to"] = json!([
        "bob@receiver.test",
        "carol@receiver.test",
        "dave@receiver.test"
    ]);
    world["run_until_s"] = json!(600);
    let result = run_json(&world);
    assert_conserved(&result);
    let relay_conn = events(&result)
        .find_map(|e| match &e.event {
            smtp_lab::sim::trace::Event::ConnectionAttempted(attempt)
                if &*attempt.server == "mx.receiver.test" =>
            {
                Some(attempt.conn)
            }
            _ => None,
        })
        .expect("the relay connects");
    let sent: Vec<u8> = sim_common::transmissions(&result, relay_conn)
        .into_iter()
        .filter(|(direction, _)| *direction == smtp_lab::sim::trace::Direction::ClientToServer)
        .flat_map(|(_, bytes)| bytes)
        .collect();
    let sent = String::from_utf8_lossy(&sent);
    assert_eq!(sent.matches("DATA\r\n").count(), 1, "{sent}");
    assert_eq!(
        sent.matches("RCPT TO:<carol@receiver.test>").count(),
        1,
        "{sent}"
    );
    assert!(matches!(
        fate(&result, "m1", "dave@receiver.test"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn a_subject_longer_than_the_user_agent_writes_is_refused_not_cut() {
    let mut world = basic_world("long-subject");
    world["messages"][0]["subject"] = json!("ü".repeat(1000));
    assert!(Scenario::from_json(&world.to_string()).is_ok());
    world["messages"][0]["subject"] = json!("ü".repeat(1001));
    let errors = Scenario::from_json(&world.to_string()).expect_err("refused");
    let problem = problem_at(&errors, "messages[0].subject");
    assert!(problem.contains("1000 characters"), "{problem}");
}

#[test]
fn an_address_literal_is_routed_to_its_address_without_dns() {
    // RFC 5321 4.1.3: postmaster@[192.0.2.20] names the host at that address. The submission
    // server sends it there with no lookup, and that host takes mail for its own postmaster,
    // into its one postmaster mailbox.
    let mut world = basic_world("literal");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "alice-raw", "address": "203.0.113.5", "server": "mail.sender.test",
        "port": 587,
        "bytes": "EHLO a.example\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<alice@sender.test>\r\nRCPT TO:<postmaster@[192.0.2.20]>\r\nDATA\r\nSubject: literal\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(events(&result).any(|e| matches!(
        &e.event,
        smtp_lab::sim::trace::Event::MxResolved(mx)
            if mx.result.contains("address literal, no DNS lookup")
    )));
    assert_eq!(
        fate(&result, "r1.1", "postmaster@[192.0.2.20]"),
        &Fate::Delivered {
            host: "mx.receiver.test".into(),
            mailbox: "postmaster@receiver.test".into()
        }
    );
}

#[test]
fn a_mailbox_whose_local_part_needs_quotes_gets_the_mail_it_was_promised() {
    // RCPT TO:<"al ice"@receiver.test> is the mailbox al ice@receiver.test: the 250 at RCPT
    // and the MDA's lookup must agree (RFC 5321 6.1), through a relay too.
    let mut world = basic_world("quoted-space");
    world["hosts"][1]["mailboxes"] = json!([{"address": "al ice@receiver.test"}]);
    world["messages"][0]["to"] = json!(["\"al ice\"@receiver.test"]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert_eq!(
        fate(&result, "m1", "\"al ice\"@receiver.test"),
        &Fate::Delivered {
            host: "mx.receiver.test".into(),
            mailbox: "al ice@receiver.test".into()
        }
    );
    assert_eq!(mailbox(&result, "al ice@receiver.test").len(), 1);
}

#[test]
fn an_ipv6_literal_domain_matches_however_its_tag_is_written() {
    let mut world = basic_world("ipv6-literal");
    world["messages"] = json!([]);
    // Written in full in the scenario, compressed (and in another case) at RCPT.
    world["hosts"][1]["local_domains"] = json!(["receiver.test", "[IPv6:2001:db8:0:0:0:0:0:20]"]);
    world["hosts"][1]["mailboxes"] = json!([{"address": "bob@[IPv6:2001:db8:0:0:0:0:0:20]"}]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": "EHLO s.example\r\nMAIL FROM:<a@s.example>\r\nRCPT TO:<bob@[ipv6:2001:DB8::20]>\r\nDATA\r\nSubject: v6\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "r1.1", "bob@[IPv6:2001:db8::20]"),
        Fate::Delivered { .. }
    ));
}

#[test]
fn a_sender_at_an_address_literal_greets_with_its_own_address() {
    // RFC 5321 4.1.1.1: a client with no domain name to give sends an address literal.
    let mut world = basic_world("literal-sender");
    world["messages"][0]["from"] = json!("alice@[192.0.2.10]");
    let result = run_json(&world);
    assert_conserved(&result);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Delivered { .. }
    ));
    let sent: Vec<u8> = sim_common::transmissions(&result, 1)
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    assert!(String::from_utf8_lossy(&sent).contains("EHLO [198.51.100.1]\r\n"));
}

#[test]
fn a_refusal_the_user_agent_made_itself_carries_no_reply_code() {
    let mut world = basic_world("ua-own-refusals");
    world["hosts"][0]["max_size_octets"] = json!(2000);
    world["hosts"][0]["faults"] =
        json!([{"kind": {"type": "drop_in_data"}, "from_s": 60, "until_s": 120}]);
    world["messages"] = json!([
        // Over the SIZE the submission server announces: the client does not send it.
        {"from": "alice@sender.test", "to": ["bob@receiver.test"], "subject": "big",
         "body": "x".repeat(3000), "submit_to": "mail.sender.test",
         "auth": {"user": "alice", "password": "secret"}},
        // The link breaks in the data: the session failed, no server refused anything.
        {"from": "alice@sender.test", "to": ["bob@receiver.test"], "subject": "cut",
         "body": "y\n", "submit_to": "mail.sender.test", "at_s": 60,
         "auth": {"user": "alice", "password": "secret"}},
        // The server's own refusal keeps its reply code.
        {"from": "alice@sender.test", "to": ["bob@receiver.test"], "subject": "pw",
         "body": "z\n", "submit_to": "mail.sender.test", "at_s": 200,
         "auth": {"user": "alice", "password": "wrong"}},
    ]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    let status = |message: &str| match fate(&result, message, "bob@receiver.test") {
        Fate::RefusedAtSubmission { status } => status.clone(),
        other => panic!("{message}: {other:?}"),
    };
    let big = status("m1");
    assert!(
        big.starts_with("the user agent refused to send it: message of "),
        "{big}"
    );
    let cut = status("m2");
    assert!(cut.starts_with("4.4.2 the submission failed: "), "{cut}");
    assert!(status("m3").starts_with("535 5.7.8 "), "{}", status("m3"));
}

#[test]
fn a_run_that_would_hold_too_much_mail_stops_and_says_so() {
    use smtp_lab::sim::trace::Event;
    use smtp_lab::sim::world::RUN_OCTETS_MAX;
    // An 8 MiB attachment (about 11 MB once encoded) to more mailboxes than the run can
    // hold copies of, even before counting the trace.
    let mailboxes = RUN_OCTETS_MAX / 8_388_608 + 2;
    let users: Vec<String> = (0..mailboxes).map(|n| format!("u{n}")).collect();
    let user_names: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut world = basic_world("too-much-mail");
    world["hosts"][0]["max_size_octets"] = json!(0);
    world["hosts"][1] = sim_common::store_host(
        "mx.receiver.test",
        "192.0.2.20",
        "receiver.test",
        &user_names,
    );
    world["hosts"][1]["max_size_octets"] = json!(0);
    let recipients: Vec<String> = users.iter().map(|u| format!("{u}@receiver.test")).collect();
    let recipient_refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
    world["messages"] = json!([message(&recipient_refs)]);
    world["messages"][0]["attachments"] = json!([{"filename": "f.bin", "size_octets": 8_388_608}]);
    world["fetches"] = json!([]);
    let scenario = sim_common::scenario(&world);
    let result = smtp_lab::sim::run(&scenario, scenario.seed);
    assert!(
        result
            .conservation_problems
            .iter()
            .any(|problem| problem.contains("MiB of trace and mail and was cut there")),
        "{:?}",
        result.conservation_problems
    );
    let delivered = events(&result)
        .filter(|e| matches!(e.event, Event::Delivered(_)))
        .count();
    assert!((1..mailboxes).contains(&delivered), "{delivered} delivered");
    let stored: usize = result
        .mailboxes
        .values()
        .flatten()
        .map(|(_, bytes)| bytes.len())
        .sum();
    assert!(stored <= RUN_OCTETS_MAX, "{stored} octets stored");
    // Every recipient still has a fate: the copies not stored are still the host's.
    assert_eq!(result.outcomes.len(), mailboxes);
    let queued = result
        .outcomes
        .iter()
        .filter(|(_, _, fate)| matches!(fate, Fate::Queued { host } if host == "mx.receiver.test"))
        .count();
    assert_eq!(queued, mailboxes - delivered);
    // The trace reports it too, a cut run included: each recipient's outcome, then the check
    // that failed, a failure step whose note says the run was cut.
    let trace = &result.trace.events;
    let outcomes = trace
        .iter()
        .filter(|e| matches!(e.event, Event::Outcome(_)))
        .count();
    assert_eq!(outcomes, mailboxes);
    let last = trace.last().expect("events");
    assert!(
        matches!(&last.event, Event::ConservationChecked { ok: false, problems }
            if problems.iter().any(|p| p.ends_with("was cut there"))),
        "{:?}",
        last.event
    );
    assert!(smtp_lab::sim::steps::failure_of(&last.event, None).is_some());
    // Its line says the run was cut, not that something was lost.
    let text = result.trace.to_text();
    let check = text.lines().last().expect("a line");
    assert!(check.contains("RUN CUT SHORT: the run held"), "{check}");
    assert!(!text.contains("CONSERVATION VIOLATED"));
    let steps = smtp_lab::sim::steps::steps(&result.trace);
    let note = steps
        .last()
        .and_then(|step| step.note.clone())
        .expect("a note");
    assert!(note.text.starts_with("The run was cut here"), "{note:?}");
}

#[test]
fn the_submission_server_takes_out_bcc_and_return_path() {
    let mut world = basic_world("msa-private-fields");
    world["messages"] = json!([
        {"from": "alice@sender.test", "to": ["bob@receiver.test", "carol@receiver.test"],
         "submit_to": "mail.sender.test", "auth": {"user": "alice", "password": "secret"},
         "raw": "Return-Path: <forged@evil.test>\r\nFrom: alice@sender.test\r\nTo: bob@receiver.test\r\nBcc: carol@receiver.test,\r\n  dave@receiver.test\r\nSubject: private\r\nbcc:again@receiver.test\r\nResent-Bcc: eve@receiver.test\r\n\r\nBcc: in the body stays.\r\n"},
    ]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    for reader in ["bob@receiver.test", "carol@receiver.test"] {
        let stored = mailbox(&result, reader);
        assert_eq!(stored.len(), 1, "{reader}");
        let text = String::from_utf8_lossy(stored[0]).into_owned();
        let (header, body) = text.split_once("\r\n\r\n").expect("a header section");
        assert!(!header.to_ascii_lowercase().contains("bcc:"), "{header}");
        assert!(
            !header.contains("dave@") && !header.contains("eve@"),
            "{header}"
        );
        assert!(!header.contains("forged@"), "{header}");
        // The MDA's own Return-Path is the only one.
        assert_eq!(header.matches("Return-Path:").count(), 1, "{header}");
        assert!(
            header.starts_with("Return-Path: <alice@sender.test>"),
            "{header}"
        );
        assert!(
            header.contains(
                "\r\nFrom: alice@sender.test\r\nTo: bob@receiver.test\r\nSubject: private\r\nDate: "
            ),
            "{header}"
        );
        assert_eq!(body, "Bcc: in the body stays.\r\n");
    }
}

#[test]
fn binary_data_is_not_sent_by_a_user_agent_nor_relayed() {
    // A line over 998 octets before its CRLF is binary data (RFC 5321 4.5.3.1.6, RFC 2045
    // 2.9), which SMTP carries only with BINARYMIME (RFC 3030): no client here sends it.
    let long_line = "x".repeat(1500);
    let mut world = basic_world("binary-data");
    world["hosts"][0]["relay_domains"] = json!(["receiver.test"]);
    world["messages"][0]["raw"] = json!(format!("Subject: long\r\n\r\nshort\r\n{long_line}\r\n"));
    // Taken by a lenient relay from a scripted client, it bounces instead.
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mail.sender.test",
        "bytes": format!("EHLO script.example\r\nMAIL FROM:<alice@sender.test>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: nul\r\n\r\na\0b\r\n.\r\nQUIT\r\n")
    }]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::RefusedAtSubmission { status } => assert_eq!(
            status,
            "the user agent refused to send it: message is binary data: line 4 has 1500 \
             octets, more than the 998 a line may have before its CRLF (RFC 5321 4.5.3.1.6); \
             SMTP carries binary data only with BINARYMIME (RFC 3030), which this client does \
             not use"
        ),
        other => panic!("{other:?}"),
    }
    match fate(&result, "r1.1", "bob@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.starts_with("554 5.6.3 "), "{status}"),
        other => panic!("{other:?}"),
    }
    assert!(mailbox(&result, "bob@receiver.test").is_empty());
    let notices = mailbox(&result, "alice@sender.test");
    assert_eq!(notices.len(), 1);
    let notice = String::from_utf8_lossy(notices[0]);
    assert!(notice.contains("Status: 5.6.3"), "{notice}");
}

#[test]
fn an_ipv4_mapped_ipv6_address_is_the_ipv4_host() {
    // RFC 4291 2.5.5.2: ::ffff:192.0.2.20 is 192.0.2.20, in an AAAA record and in an address
    // literal alike; and the sending host knows itself by it (RFC 5321 5.1).
    let aaaa = |name: &str, address: &str| json!({"name": name, "data": {"AAAA": address}});
    let mut world = basic_world("v4-mapped");
    world["dns"]["zones"][1]["records"] = json!([
        sim_common::mx("receiver.test", 10, "mx.receiver.test"),
        aaaa("mx.receiver.test", "::ffff:192.0.2.20"),
    ]);
    world["messages"][0]["to"] =
        json!(["bob@receiver.test", "postmaster@[IPv6:::ffff:192.0.2.20]"]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    for recipient in ["bob@receiver.test", "postmaster@[IPv6:::ffff:192.0.2.20]"] {
        match fate(&result, "m1", recipient) {
            Fate::Delivered { host, .. } => assert_eq!(host, "mx.receiver.test"),
            other => panic!("{recipient}: {other:?}"),
        }
    }

    let mut world = basic_world("v4-mapped-self");
    world["dns"]["zones"][1]["records"] = json!([
        sim_common::mx("receiver.test", 5, "backup.receiver.test"),
        aaaa("backup.receiver.test", "::ffff:192.0.2.10"),
        sim_common::mx("receiver.test", 10, "mx.receiver.test"),
        sim_common::a("mx.receiver.test", "192.0.2.20"),
    ]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    match fate(&result, "m1", "bob@receiver.test") {
        Fate::Bounced { status, .. } => assert!(status.contains("5.4.6"), "{status}"),
        other => panic!("{other:?}"),
    }

    // A host that serves its address literal as a domain takes mail for the mapped form too.
    let mut world = basic_world("v4-mapped-literal-domain");
    world["hosts"][1]["local_domains"] = json!(["receiver.test", "[192.0.2.20]"]);
    world["hosts"][1]["mailboxes"] = json!([{"address": "bob@[192.0.2.20]"}]);
    world["messages"][0]["to"] = json!(["bob@[IPv6:::ffff:192.0.2.20]"]);
    world["fetches"] = json!([]);
    let result = run_json(&world);
    match fate(&result, "m1", "bob@[IPv6:::ffff:192.0.2.20]") {
        Fate::Delivered { mailbox, .. } => assert_eq!(mailbox, "bob@[192.0.2.20]"),
        other => panic!("{other:?}"),
    }

    // Greylisting sees one client in both forms: the retry from the IPv4 form is let in.
    let mut world = basic_world("v4-mapped-greylist");
    world["messages"] = json!([]);
    world["fetches"] = json!([]);
    world["hosts"][1]["greylist_s"] = json!(60);
    let attempt = "EHLO script.example\r\nMAIL FROM:<a@script.example>\r\nRCPT TO:<bob@receiver.test>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\nQUIT\r\n";
    world["raw_sessions"] = json!([
        {"client": "script", "address": "::ffff:203.0.113.5", "server": "mx.receiver.test", "bytes": attempt},
        {"client": "script", "address": "203.0.113.5", "server": "mx.receiver.test", "at_s": 120, "bytes": attempt},
    ]);
    let result = run_json(&world);
    assert_eq!(mailbox(&result, "bob@receiver.test").len(), 1);

    // So two hosts cannot have it, one in each form.
    let mut world = basic_world("v4-mapped-twice");
    world["hosts"][1]["address"] = json!("::ffff:192.0.2.10");
    let errors = Scenario::from_json(&world.to_string()).expect_err("one address, two hosts");
    assert!(errors.to_string().contains("hosts[1].address"), "{errors}");
}

#[test]
fn outcomes_are_stamped_at_the_end_only_when_something_was_still_to_happen() {
    // Delivered within a second; the sessions' timers that would have fired later are for
    // connections long closed, so nothing was still to happen: the outcomes come at the last
    // event, not at run_until_s.
    let mut world = basic_world("ends-early");
    world["fetches"] = json!([]);
    world["run_until_s"] = json!(60);
    let result = run_json(&world);
    let outcome_time = |result: &smtp_lab::sim::RunResult| {
        events(result)
            .find(|e| matches!(e.event, smtp_lab::sim::Event::Outcome(_)))
            .map(|e| e.time_ms)
            .expect("an outcome")
    };
    assert!(outcome_time(&result) < 1_000, "{}", outcome_time(&result));

    // A greylisted message is still queued when the run stops at 60 s, before its retry.
    let mut world = basic_world("stops-with-a-retry-queued");
    world["fetches"] = json!([]);
    world["run_until_s"] = json!(60);
    world["hosts"][1]["greylist_s"] = json!(30);
    let result = run_json(&world);
    assert!(matches!(
        fate(&result, "m1", "bob@receiver.test"),
        Fate::Queued { .. }
    ));
    assert_eq!(outcome_time(&result), 60_000);
}

#[test]
fn a_scripted_client_that_says_nothing_is_timed_out_from_the_greeting() {
    // Nothing to send is no write at all: the server's idle timer (RFC 5321 4.5.3.2.7) runs
    // from its greeting, not from an empty write arriving two latencies later.
    let mut world = basic_world("raw-silent");
    world["messages"] = json!([]);
    world["raw_sessions"] = json!([{
        "client": "script", "address": "203.0.113.5", "server": "mx.receiver.test",
        "bytes": ""
    }]);
    let result = run_json(&world);
    assert_conserved(&result);
    let conn = sim_common::attempts(&result)[0].1;
    let sent: Vec<(u64, smtp_lab::sim::trace::Direction, String)> = events(&result)
        .filter_map(|e| match &e.event {
            smtp_lab::sim::trace::Event::Transmitted {
                conn: c,
                direction,
                bytes,
            } if *c == conn => Some((
                e.time_ms,
                *direction,
                String::from_utf8_lossy(bytes.as_bytes()).into_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (greeting_ms, greeting_direction, greeting) = &sent[0];
    let (closing_ms, closing_direction, closing) = &sent[1];
    use smtp_lab::sim::trace::Direction::ServerToClient;
    assert!(*greeting_direction == ServerToClient && greeting.starts_with("220 "));
    assert!(*closing_direction == ServerToClient && closing.starts_with("421 "));
    assert_eq!(closing_ms - greeting_ms, 300_000, "{sent:?}");
}
