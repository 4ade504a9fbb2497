//! Base64 (RFC 4648 4, the standard alphabet with padding) for MIME bodies (RFC 2045 6.8),
//! encoded words (RFC 2047) and SASL (RFC 4954).
//!
//! This module does not wrap lines; callers that need MIME's 76-character lines split the
//! output themselves (it is pure ASCII, so any split point is safe).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` as base64 with `=` padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let group = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (group >> (18 - 6 * position)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64, skipping whitespace (CR, LF, space, tab) between characters. Returns `None`
/// on any other character outside the alphabet or on a wrong length or padding.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|byte| !matches!(byte, b'\r' | b'\n' | b' ' | b'\t'))
        .collect();
    if !symbols.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quads = symbols.len() / 4;
    for (quad_index, quad) in symbols.chunks(4).enumerate() {
        let is_last = quad_index + 1 == quads;
        let padding = quad.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 || (padding > 0 && !is_last) {
            return None;
        }
        let mut group = 0u32;
        for &symbol in &quad[..4 - padding] {
            let value = ALPHABET.iter().position(|&letter| letter == symbol)?;
            group = (group << 6) | value as u32;
        }
        group <<= 6 * padding as u32;
        let decoded = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_from_rfc_4648() {
        let cases: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode(b"\0alice\0secret"), "AGFsaWNlAHNlY3JldA==");
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode("Zm9").is_none());
        assert!(decode("Zm=v").is_none());
        assert!(decode("Zg==Zg==").is_none());
        assert!(decode("Z!==").is_none());
        assert_eq!(decode("Zm9v\r\nYmFy").unwrap(), b"foobar");
    }
}
