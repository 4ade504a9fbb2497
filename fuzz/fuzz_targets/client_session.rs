//! Any bytes as a server's replies: the client session never panics and always ends with an
//! outcome for every recipient once the connection closes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::smtp::client::{ClientConfig, ClientSession, Envelope};

fuzz_target!(|data: &[u8]| {
    let envelope = Envelope {
        reverse_path: "alice@example.org".into(),
        forward_paths: vec!["bob@example.net".into(), "carol@example.net".into()],
    };
    let message = b"Subject: fuzz\r\n\r\nHello\r\n.\r\n".to_vec();
    let Ok(mut session) = ClientSession::new(ClientConfig::new("client.example.org"), envelope, message)
    else {
        return;
    };
    session.handle_connected(0);
    // Feed the input in pieces cut at every 0xFF byte, so that splits are fuzzed too.
    for (index, piece) in data.split(|&b| b == 0xff).enumerate() {
        session.handle_input(piece, index as u64);
        while session.poll_output().is_some() {}
        while session.poll_event().is_some() {}
    }
    session.handle_peer_closed();
    let outcome = session.outcome().expect("a closed session has an outcome");
    assert_eq!(outcome.recipients.len(), 2);
});
