//! MIME multipart boundaries (RFC 2046 5.1.1) chosen without randomness: from a hash of what
//! the message is made of, changed by a counter until its delimiter occurs in no part.

/// A boundary `=_{label}_{hash}` for the given parts. `seed` is hashed along with the parts,
/// so that different messages get different boundaries. "=_" cannot occur in base64 or
/// quoted-printable output, so a clash is only possible with text sent as it is.
pub fn choose_boundary(label: &str, seed: &[&[u8]], parts: &[Vec<u8>]) -> String {
    let mut hash = Fnv1a::new();
    for piece in seed {
        hash.write(piece);
    }
    for part in parts {
        hash.write(&(part.len() as u64).to_le_bytes());
        hash.write(part);
    }
    let start = hash.finish();
    for attempt in 0u64.. {
        let boundary = format!("=_{label}_{:016x}", start.wrapping_add(attempt));
        let delimiter = format!("--{boundary}");
        if !parts
            .iter()
            .any(|part| contains(part, delimiter.as_bytes()))
        {
            return boundary;
        }
    }
    unreachable!("the parts are finite, so some boundary does not occur in them")
}

/// Whether `needle` (not empty) occurs in `haystack`: a fast substring search, as a part may
/// be megabytes of base64.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// FNV-1a, 64 bits: a small, stable hash (the standard library's hashers may change).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_avoids_the_parts_and_is_stable() {
        let parts = vec![b"hello".to_vec(), b"world".to_vec()];
        let first = choose_boundary("x", &[b"seed"], &parts);
        assert_eq!(first, choose_boundary("x", &[b"seed"], &parts));
        assert_ne!(first, choose_boundary("x", &[b"other"], &parts));
        // A part that holds the first choice's delimiter forces another one.
        let clash = vec![format!("--{first}").into_bytes()];
        let second = choose_boundary("x", &[b"seed"], &clash);
        assert!(!contains(&clash[0], format!("--{second}").as_bytes()));
    }
}
