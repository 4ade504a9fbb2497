//! Helpers shared by the POP3 integration tests: a client and a server session wired together
//! in memory.

use smtp_lab::pop3::client::{Pop3Client, Pop3ClientConfig, Pop3ClientEvent, Pop3ClientOutcome};
use smtp_lab::pop3::maildrop::InMemoryStore;
use smtp_lab::pop3::server::{Pop3Server, Pop3ServerConfig, Pop3ServerEvent};

/// What one client session against one server session produced.
pub struct PairRun {
    pub outcome: Pop3ClientOutcome,
    pub store: InMemoryStore,
    pub client_events: Vec<Pop3ClientEvent>,
    pub server_events: Vec<Pop3ServerEvent>,
    /// Every byte the client sent, then every byte the server sent.
    pub client_bytes: Vec<u8>,
    pub server_bytes: Vec<u8>,
}

/// Runs a client against a server over a perfect in-memory connection until the client
/// finishes, applying every `MaildropUpdated` event to the store as a driver would. Bytes are
/// handed over in pieces of `chunk_octets` (at least 1).
pub fn run_pair(store: InMemoryStore, config: Pop3ClientConfig, chunk_octets: usize) -> PairRun {
    let chunk_octets = chunk_octets.max(1);
    let mut server = Pop3Server::new(Pop3ServerConfig::new("pop.example.org"), store, 0);
    let mut client = Pop3Client::new(config).expect("a valid client configuration");
    client.handle_connected(0);
    let mut run = PairRun {
        outcome: empty_outcome(),
        store: InMemoryStore::new(),
        client_events: Vec::new(),
        server_events: Vec::new(),
        client_bytes: Vec::new(),
        server_bytes: Vec::new(),
    };
    // Each round moves at least one response or command; the session needs a few per message.
    for _ in 0..100_000 {
        let mut moved = false;
        while let Some(bytes) = server.poll_output() {
            run.server_bytes.extend_from_slice(&bytes);
            for piece in bytes.chunks(chunk_octets) {
                client.handle_input(piece, 0);
            }
            moved = true;
        }
        while let Some(event) = server.poll_event() {
            if let Pop3ServerEvent::MaildropUpdated { user, deleted_uids } = &event {
                server.store_mut().remove(user, deleted_uids);
            }
            run.server_events.push(event);
        }
        while let Some(bytes) = client.poll_output() {
            run.client_bytes.extend_from_slice(&bytes);
            for piece in bytes.chunks(chunk_octets) {
                server.handle_input(piece, 0);
            }
            moved = true;
        }
        while let Some(event) = client.poll_event() {
            run.client_events.push(event);
        }
        if client.is_finished() {
            break;
        }
        if !moved {
            // Nobody has anything to say: the server closed, so the connection does.
            assert!(server.is_closed(), "both sides wait for each other");
            client.handle_peer_closed();
        }
    }
    server.handle_peer_closed();
    while let Some(event) = server.poll_event() {
        if let Pop3ServerEvent::MaildropUpdated { user, deleted_uids } = &event {
            server.store_mut().remove(user, deleted_uids);
        }
        run.server_events.push(event);
    }
    while let Some(event) = client.poll_event() {
        run.client_events.push(event);
    }
    run.outcome = client.outcome().expect("the client finished").clone();
    run.store = server.into_store();
    run
}

fn empty_outcome() -> Pop3ClientOutcome {
    Pop3ClientOutcome {
        result: smtp_lab::pop3::client::Pop3SessionResult::Completed,
        retrieved: Vec::new(),
        marked_for_deletion: Vec::new(),
        deletions_committed: false,
        quit_refused: false,
        maildrop_size: None,
        errors: Vec::new(),
    }
}
