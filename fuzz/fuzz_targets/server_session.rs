//! Any bytes from a client, split anywhere: the server session never panics, answers every
//! line it can, and when fed the same bytes whole or in pieces, sends the same replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::smtp::policy::{PeerInfo, StaticPolicy};
use smtp_lab::smtp::server::{ServerConfig, ServerEvent, ServerSession, StorageOutcome};

fn run(pieces: &[&[u8]]) -> Vec<u8> {
    let policy = StaticPolicy::new()
        .mailbox("bob@example.org")
        .user("alice", "secret");
    let mut config = ServerConfig::new("mx.example.org");
    config.auth_enabled = true;
    config.message_size_max_octets = 2048;
    // DSN too, for its parameters (RFC 3461: xtext, NOTIFY, ORCPT) on MAIL and RCPT.
    config.extensions.dsn = true;
    let mut session = ServerSession::new(config, policy, PeerInfo::new("192.0.2.1", Some(2525)), 0);
    // The greeting goes out before any input.
    let mut output = session.poll_output().unwrap_or_default();
    for (index, piece) in pieces.iter().enumerate() {
        session.handle_input(piece, index as u64);
        while let Some(event) = session.poll_event() {
            if let ServerEvent::MessageReceived { .. } = event {
                session
                    .message_stored(StorageOutcome::Stored { queue_id: None }, index as u64)
                    .expect("a received message awaits storage");
            }
        }
        while let Some(bytes) = session.poll_output() {
            output.extend_from_slice(&bytes);
        }
    }
    output
}

fuzz_target!(|data: &[u8]| {
    let whole = run(&[data]);
    let pieces: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(whole, run(&pieces));
});
