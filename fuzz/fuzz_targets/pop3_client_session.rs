//! Any bytes as a POP3 server's responses: the client session (the simulation's recipient
//! user agent, and `smtp-lab fetch`) never panics, always finishes with an outcome once the
//! connection closes, and never marks a message twice or commits deletions it did not ask for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::pop3::client::{Pop3Client, Pop3ClientConfig};

fuzz_target!(|data: &[u8]| {
    let mut config = Pop3ClientConfig::new("alice", "secret");
    config.delete_after_retrieve = true;
    let Ok(mut client) = Pop3Client::new(config) else {
        return;
    };
    client.handle_connected(0);
    // Fed in pieces cut at every 0xFF byte, so that splits are fuzzed too; every 0xFE byte
    // lets the clock run past any deadline.
    let mut now = 0;
    for piece in data.split(|&b| b == 0xff) {
        if piece.first() == Some(&0xfe) {
            now += 3_600_000;
            client.handle_timeout(now);
        }
        client.handle_input(piece, now);
        while client.poll_output().is_some() {}
        while client.poll_event().is_some() {}
    }
    client.handle_peer_closed();
    assert!(client.is_finished());
    let outcome = client.outcome().expect("a finished session has an outcome");
    // A message is marked for deletion at most once.
    let mut marked = outcome.marked_for_deletion.clone();
    marked.sort_unstable();
    marked.dedup();
    assert_eq!(marked.len(), outcome.marked_for_deletion.len());
    // QUIT's +OK commits deletions only after at least one DELE was accepted.
    assert!(!outcome.deletions_committed || !outcome.marked_for_deletion.is_empty());
    assert!(!(outcome.deletions_committed && outcome.quit_refused));
});
