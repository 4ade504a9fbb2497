//! Any bytes from a POP3 client, split anywhere: the server session never panics, and when
//! fed the same bytes whole or in pieces, sends the same responses and reports the same
//! events (RFC 1939 and RFC 2449 PIPELINING: a command is a line, however it arrives).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::pop3::maildrop::{InMemoryStore, StoredMessage};
use smtp_lab::pop3::server::{Pop3Server, Pop3ServerConfig};

fn run(pieces: &[&[u8]]) -> (Vec<u8>, Vec<String>) {
    let mut store = InMemoryStore::new();
    store.add_user("alice", "secret");
    store.deliver(
        "alice",
        StoredMessage::new(
            "uid-1",
            b"Subject: one\r\n\r\n.a dot line\r\nbody\r\n".to_vec(),
        ),
    );
    store.deliver(
        "alice",
        StoredMessage::new("uid-2", b"Subject: two\r\n\r\n".to_vec()),
    );
    let mut server = Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), store, 0);
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut drain = |server: &mut Pop3Server<InMemoryStore>| {
        while let Some(bytes) = server.poll_output() {
            output.extend_from_slice(&bytes);
        }
        while let Some(event) = server.poll_event() {
            events.push(format!("{event:?}"));
        }
    };
    // The greeting goes out before any input.
    drain(&mut server);
    for piece in pieces {
        server.handle_input(piece, 0);
        drain(&mut server);
    }
    server.handle_peer_closed();
    drain(&mut server);
    (output, events)
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&[data]);
    let pieces: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(whole, run(&pieces));
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(whole, run(&bytes));
});
