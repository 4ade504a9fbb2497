//! Any bytes as a message a step carries, and as its first copy (cut at the first 0xFF): its
//! outline never panics, lists no more fields than the message has lines, and marks fields
//! added only when it had a first copy to compare with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::mail::outline::outline;

fuzz_target!(|data: &[u8]| {
    let (message, first) = match data.iter().position(|&b| b == 0xff) {
        Some(cut) => (&data[..cut], Some(&data[cut + 1..])),
        None => (data, None),
    };
    let outlined = outline(message, first);
    let lines = message.split(|&b| b == b'\n').count();
    assert!(outlined.fields.len() <= lines);
    assert!(first.is_some() || outlined.added() == 0);
    assert!(!outlined.parts.is_empty());
});
