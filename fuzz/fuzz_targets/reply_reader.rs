//! Any bytes from a server, split anywhere: the reply reader never panics, and reading the
//! same bytes in one piece or byte by byte gives the same replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_lab::smtp::reply::ReplyReader;

fn read_all(chunks: &[&[u8]]) -> Vec<String> {
    let mut reader = ReplyReader::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        while let Some(next) = reader.next_reply() {
            seen.push(format!("{next:?}"));
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let whole = read_all(&[data]);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(whole, read_all(&bytes));
});
