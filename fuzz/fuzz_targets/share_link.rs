//! Any text as a share link's fragment: reading it never panics, and a link to a scenario's
//! step (and seed) without a message reads back the same once written again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::sim::link::{parse, write};

fuzz_target!(|data: &[u8]| {
    let Ok(fragment) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Some(link)) = parse(fragment) else {
        return;
    };
    if link.message.is_none() && !link.message_unreadable {
        let again = parse(&write(&link.scenario, link.seed, link.step))
            .expect("a written link reads")
            .expect("a written link names a scenario");
        assert_eq!(
            (&again.scenario, again.seed, again.step),
            (&link.scenario, link.seed, link.step),
            "{fragment:?}"
        );
    }
});
