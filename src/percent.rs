//! Reading octets written as an escape character and two hexadecimal digits: percent-encoding
//! (RFC 3986 2.1), which share links and RFC 2231 parameter values (RFC 2231 7) use, and the
//! `=XX` of RFC 2047's Q encoding.

/// `text`'s octets with each `%HH` decoded (RFC 3986 2.1), and whether a `%` in it was not
/// followed by two hexadecimal digits (kept as it is).
pub fn percent_decoded_octets(text: &str) -> (Vec<u8>, bool) {
    hex_escapes_decoded(text.as_bytes(), b'%')
}

/// `bytes` with each `escape` followed by two hexadecimal digits made the octet they write, and
/// whether an `escape` in them was not followed by two (kept as it is).
pub fn hex_escapes_decoded(bytes: &[u8], escape: u8) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(bytes.len());
    let mut broken_escape = false;
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (byte, Some(octet)) if byte == escape => {
                out.push(octet);
                index += 3;
            }
            (byte, _) => {
                broken_escape |= byte == escape;
                out.push(byte);
                index += 1;
            }
        }
    }
    (out, broken_escape)
}
