//! Any bytes as a server's replies: the client session never panics and always ends with an
//! outcome for every recipient of every message once the connection closes. The session
//! carries two messages and keeps the connection open a while after them, so that replies
//! out of turn, to an idle session, are fuzzed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::smtp::client::{
    ClientConfig, ClientSession, DsnParameters, DsnReturn, Envelope, Notify,
};

fuzz_target!(|data: &[u8]| {
    // With DSN asked for, which a server's EHLO reply listing DSN brings into play.
    let envelope = Envelope {
        dsn: DsnParameters {
            notify: Notify::parse("SUCCESS,DELAY").ok(),
            ret: Some(DsnReturn::Headers),
            envid: Some("order=42 +1".into()),
            orcpt: true,
            recipients: Vec::new(),
        },
        reverse_path: "alice@example.org".into(),
        forward_paths: vec!["bob@example.net".into(), "carol@example.net".into()],
    };
    let message = b"Subject: fuzz\r\n\r\nHello\r\n.\r\n".to_vec();
    let mut config = ClientConfig::new("client.example.org");
    config.keep_open_ms = Some(1_000);
    // An odd first byte: BDAT chunks of 7 octets where the server offers CHUNKING (RFC 3030).
    if data.first().is_some_and(|byte| byte & 1 == 1) {
        config.bdat_chunk_octets = Some(7);
    }
    let Ok(mut session) = ClientSession::new(config, envelope.clone(), message.clone()) else {
        return;
    };
    let mut messages = 1;
    if session.add_message(envelope, &message, 0).is_ok() {
        messages += 1;
    }
    session.handle_connected(0);
    // Feed the input in pieces cut at every 0xFF byte, so that splits are fuzzed too; every
    // 0xFE byte lets the clock run past any deadline.
    let mut now = 0;
    for piece in data.split(|&b| b == 0xff) {
        if piece.first() == Some(&0xfe) {
            now += 400_000;
            session.handle_timeout(now);
        }
        session.handle_input(piece, now);
        while session.poll_output().is_some() {}
        while session.poll_event().is_some() {}
    }
    session.handle_peer_closed();
    assert!(session.is_finished());
    assert_eq!(session.outcomes().len(), messages);
    for outcome in session.outcomes() {
        assert_eq!(outcome.recipients.len(), 2);
    }
});
