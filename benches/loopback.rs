//! Loopback throughput of `smtp-lab serve`: messages per second with 1 and with 20 concurrent
//! senders, each message in its own session (connect, EHLO, MAIL, RCPT, DATA, QUIT) driven by
//! the engine's client session, and each one synced to a Maildir before its 250. Prints
//! figures; asserts only that every message was accepted and stored.

use smtp_lab::smtp::client::{ClientConfig, ClientSession, Envelope};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const MESSAGES_PER_SENDER_SINGLE: usize = 400;
const MESSAGES_PER_SENDER_CONCURRENT: usize = 50;

fn send_one(port: u16, index: usize) {
    let message = format!(
        "From: alice@example.net\r\nTo: bob@example.org\r\nSubject: bench {index}\r\n\r\nHello {index}\r\n"
    );
    let mut session = ClientSession::new(
        ClientConfig::new("bench.example.net"),
        Envelope {
            dsn: Default::default(),
            reverse_path: "alice@example.net".into(),
            forward_paths: vec!["bob@example.org".into()],
        },
        message.into_bytes(),
    )
    .expect("a valid envelope");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("serve accepts");
    stream.set_nodelay(true).expect("setting TCP_NODELAY works");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("setting a timeout works");
    session.handle_connected(0);
    let mut buffer = [0u8; 4096];
    while !session.is_finished() {
        while let Some(bytes) = session.poll_output() {
            stream.write_all(&bytes).expect("writing to serve works");
        }
        if session.is_finished() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => session.handle_peer_closed(),
            Ok(read) => session.handle_input(&buffer[..read], 0),
        }
        while session.poll_event().is_some() {}
    }
    let outcome = session
        .outcome()
        .expect("a finished session has an outcome");
    assert!(
        outcome.all_accepted(),
        "message {index} refused: {outcome:?}"
    );
}

fn run(port: u16, senders: usize, per_sender: usize) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|sender| {
            thread::spawn(move || {
                for n in 0..per_sender {
                    send_one(port, sender * per_sender + n);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a sender thread finished");
    }
    (senders * per_sender) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes harness flags such as --bench; they mean nothing here.
    let maildir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("loopback-bench-maildir");
    let _ = std::fs::remove_dir_all(&maildir);
    let mut server = Command::new(env!("CARGO_BIN_EXE_smtp-lab"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--domain",
            "example.org",
        ])
        .args(["--mailbox", "bob@example.org", "--quiet", "--maildir"])
        .arg(&maildir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("smtp-lab serve starts");
    let mut lines = BufReader::new(server.stdout.take().expect("piped")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let port: u16 = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .expect("serve prints its port");
    thread::spawn(move || for _ in lines {});

    let single = run(port, 1, MESSAGES_PER_SENDER_SINGLE);
    let concurrent = run(port, 20, MESSAGES_PER_SENDER_CONCURRENT);
    let stored = std::fs::read_dir(maildir.join("bob").join("new"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();
    let expected = MESSAGES_PER_SENDER_SINGLE + 20 * MESSAGES_PER_SENDER_CONCURRENT;
    assert_eq!(stored, expected, "every accepted message is in the Maildir");
    println!(
        "summary: loopback, 1 sender:   {single:.0} messages/s (one session each, synced to disk)"
    );
    println!("summary: loopback, 20 senders: {concurrent:.0} messages/s");
    let _ = std::fs::remove_dir_all(&maildir);
}
