//! Benchmarks of the SMTP engine: the server session (a whole transaction, and the cost of one
//! command line: parsing plus the state step), the client session, and the same command lines
//! through Stalwart's `smtp-proto` request parser for a side-by-side ratio. Figures only; no
//! assertion on speed.

use criterion::{black_box, criterion_group, Criterion, Throughput};
use smtp_lab::smtp::client::{ClientConfig, ClientSession, Envelope};
use smtp_lab::smtp::policy::{PeerInfo, StaticPolicy};
use smtp_lab::smtp::server::{ServerConfig, ServerEvent, ServerSession, StorageOutcome};
use std::time::Instant;

/// One whole session as a client would pipeline it: 8 command lines and a short message.
const TRANSACTION: &[u8] = b"EHLO client.example.net\r\n\
MAIL FROM:<alice@example.net> SIZE=120\r\n\
RCPT TO:<bob@example.org>\r\n\
RCPT TO:<carol@example.org>\r\n\
RCPT TO:<dave@example.org>\r\n\
DATA\r\n\
From: alice@example.net\r\nTo: bob@example.org\r\nSubject: bench\r\n\r\nHello\r\n..dot\r\n.\r\n\
NOOP\r\n\
QUIT\r\n";
const TRANSACTION_COMMANDS: u64 = 8;

/// Command lines repeated in one long session: MAIL, RCPT, RSET, over and over.
const COMMAND_CYCLE: &[u8] =
    b"MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nRSET\r\n";
const COMMAND_CYCLE_LINES: u64 = 3;

fn policy() -> StaticPolicy {
    StaticPolicy::new()
        .mailbox("bob@example.org")
        .mailbox("carol@example.org")
        .mailbox("dave@example.org")
}

fn new_server() -> ServerSession<StaticPolicy> {
    ServerSession::new(
        ServerConfig::new("mx.example.org"),
        policy(),
        PeerInfo::new("192.0.2.1", Some(40000)),
        0,
    )
}

/// Feeds `input`, stores any message at once, drains the output; returns the octets sent.
fn drive_server(session: &mut ServerSession<StaticPolicy>, input: &[u8]) -> usize {
    session.handle_input(input, 0);
    let mut sent = 0;
    loop {
        let mut progressed = false;
        while let Some(event) = session.poll_event() {
            progressed = true;
            if let ServerEvent::MessageReceived { .. } = event {
                session
                    .message_stored(StorageOutcome::Stored { queue_id: None }, 0)
                    .expect("a received message awaits storage");
            }
        }
        while let Some(bytes) = session.poll_output() {
            progressed = true;
            sent += bytes.len();
        }
        if !progressed {
            return sent;
        }
    }
}

fn server_ready_for_mail() -> ServerSession<StaticPolicy> {
    let mut session = new_server();
    drive_server(&mut session, b"EHLO client.example.net\r\n");
    session
}

/// The server's replies for one client session, as one byte string.
const SERVER_REPLIES: &[u8] = b"220 mx.example.org ESMTP\r\n\
250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n\
250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n\
354 go ahead\r\n250 2.0.0 queued\r\n221 2.0.0 bye\r\n";

fn client_session() -> ClientSession {
    ClientSession::new(
        ClientConfig::new("client.example.net"),
        Envelope {
            dsn: Default::default(),
            reverse_path: "alice@example.net".into(),
            forward_paths: vec![
                "bob@example.org".into(),
                "carol@example.org".into(),
                "dave@example.org".into(),
            ],
        },
        b"From: alice@example.net\r\nSubject: bench\r\n\r\nHello\r\n.dot\r\n".to_vec(),
    )
    .expect("a valid envelope")
}

fn drive_client(mut session: ClientSession) -> usize {
    session.handle_connected(0);
    let mut sent = 0;
    // Replies are fed one line at a time, as a server would send them after each command.
    for line in SERVER_REPLIES.split_inclusive(|&b| b == b'\n') {
        session.handle_input(line, 0);
        while let Some(bytes) = session.poll_output() {
            sent += bytes.len();
        }
        while session.poll_event().is_some() {}
    }
    assert!(session.is_finished());
    sent
}

fn smtp_proto_parse_cycle() -> usize {
    let mut parsed = 0;
    for line in COMMAND_CYCLE.split_inclusive(|&b| b == b'\n') {
        if smtp_proto::Request::parse(&mut line.iter()).is_ok() {
            parsed += 1;
        }
    }
    parsed
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("server");
    group.throughput(Throughput::Elements(TRANSACTION_COMMANDS));
    group.bench_function("full transaction (8 commands, pipelined)", |b| {
        b.iter(|| {
            let mut session = new_server();
            black_box(drive_server(&mut session, black_box(TRANSACTION)))
        })
    });
    group.throughput(Throughput::Elements(COMMAND_CYCLE_LINES));
    group.bench_function("command lines (MAIL, RCPT, RSET)", |b| {
        let mut session = server_ready_for_mail();
        b.iter(|| black_box(drive_server(&mut session, black_box(COMMAND_CYCLE))))
    });
    group.finish();

    let mut group = c.benchmark_group("smtp-proto");
    group.throughput(Throughput::Elements(COMMAND_CYCLE_LINES));
    group.bench_function("parse only (MAIL, RCPT, RSET)", |b| {
        b.iter(|| black_box(smtp_proto_parse_cycle()))
    });
    group.finish();

    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(TRANSACTION_COMMANDS - 1));
    group.bench_function("full transaction (3 recipients)", |b| {
        b.iter(|| black_box(drive_client(client_session())))
    });
    group.finish();
}

criterion_group!(engine, benches);

/// Nanoseconds per command line, measured over many cycles, for the summary lines.
fn ns_per_line(mut cycle: impl FnMut(), lines_per_cycle: u64) -> f64 {
    const CYCLES: u64 = 200_000;
    for _ in 0..CYCLES / 10 {
        cycle();
    }
    let start = Instant::now();
    for _ in 0..CYCLES {
        cycle();
    }
    start.elapsed().as_nanos() as f64 / (CYCLES * lines_per_cycle) as f64
}

fn main() {
    engine();
    Criterion::default().configure_from_args().final_summary();

    let mut session = server_ready_for_mail();
    let ours = ns_per_line(
        || {
            black_box(drive_server(&mut session, black_box(COMMAND_CYCLE)));
        },
        COMMAND_CYCLE_LINES,
    );
    let theirs = ns_per_line(
        || {
            black_box(smtp_proto_parse_cycle());
        },
        COMMAND_CYCLE_LINES,
    );
    println!("summary: server session, parse + state step: {ours:.0} ns per command line");
    println!("summary: smtp-proto, parse only:            {theirs:.0} ns per command line");
    println!(
        "summary: ratio (ours / smtp-proto parse): {:.2}x (target at most 2x and at most 1000 ns)",
        ours / theirs
    );
}
