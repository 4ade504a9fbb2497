//! The server's half of SMTP AUTH (RFC 4954) for the PLAIN (RFC 4616) and LOGIN mechanisms:
//! base64 (RFC 4648 4) and the decoding of the client's responses.
//!
//! This module does not check credentials (the policy does) nor sequence the exchange (the
//! session does).

/// Longest decoded SASL response we accept; RFC 4616 2 allows 255 octets for each of the
/// three PLAIN fields.
pub const RESPONSE_MAX_OCTETS: usize = 1024;

/// Encodes bytes as base64 with padding (RFC 4648 4).
pub fn base64_encode(bytes: &[u8]) -> String {
    crate::mail::base64::encode(bytes)
}

/// Decodes strict base64 with padding (RFC 4648 4): a SASL response is one token, so unlike
/// MIME bodies no whitespace is allowed inside it. None on anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return None;
    }
    crate::mail::base64::decode(text)
}

/// The SASL mechanisms this server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Credentials from a PLAIN response: `[authzid] NUL authcid NUL passwd` (RFC 4616 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainCredentials {
    pub authzid: Option<String>,
    pub authcid: String,
    pub password: String,
}

/// Why a client's response could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    NotBase64,
    TooLong,
    /// Not `authzid NUL authcid NUL passwd`, or not UTF-8.
    Malformed,
}

impl ResponseError {
    pub fn describe(self) -> &'static str {
        match self {
            ResponseError::NotBase64 => "the response is not valid base64",
            ResponseError::TooLong => "the decoded response is longer than 1024 octets",
            ResponseError::Malformed => {
                "the decoded response is not \"authzid NUL authcid NUL password\" in UTF-8"
            }
        }
    }
}

/// Decodes one base64 response line; `=` stands for an empty response (RFC 4954 4).
/// A response that is valid base64 but decodes to more than [`RESPONSE_MAX_OCTETS`] is
/// `TooLong` (the AUTH line limit, 12288 octets, bounds what is decoded).
pub fn decode_response(line: &str) -> Result<Vec<u8>, ResponseError> {
    if line == "=" {
        return Ok(Vec::new());
    }
    let decoded = base64_decode(line).ok_or(ResponseError::NotBase64)?;
    if decoded.len() > RESPONSE_MAX_OCTETS {
        return Err(ResponseError::TooLong);
    }
    Ok(decoded)
}

/// Decodes a PLAIN response (already base64-decoded).
pub fn parse_plain(decoded: &[u8]) -> Result<PlainCredentials, ResponseError> {
    let text = std::str::from_utf8(decoded).map_err(|_| ResponseError::Malformed)?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ResponseError::Malformed);
    };
    // RFC 4616 2: authcid = 1*SAFE, passwd = 1*SAFE.
    if authcid.is_empty() || password.is_empty() {
        return Err(ResponseError::Malformed);
    }
    Ok(PlainCredentials {
        authzid: (!authzid.is_empty()).then(|| authzid.to_string()),
        authcid: authcid.to_string(),
        password: password.to_string(),
    })
}

/// Decodes a LOGIN username or password (already base64-decoded).
pub fn parse_login_field(decoded: &[u8]) -> Result<String, ResponseError> {
    String::from_utf8(decoded.to_vec()).map_err(|_| ResponseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_answers() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\0alice\0secret", "AGFsaWNlAHNlY3JldA=="),
            (b"Username:", "VXNlcm5hbWU6"),
            (b"Password:", "UGFzc3dvcmQ6"),
        ];
        for (raw, encoded) in cases {
            assert_eq!(base64_encode(raw), *encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(*raw));
        }
        for bad in ["Zg=", "Zg==Zg==", "Z===", "Zm9v!", "Zm 9"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn plain_fields() {
        let creds = parse_plain(b"\0alice\0secret").unwrap();
        assert_eq!(creds.authzid, None);
        assert_eq!(creds.authcid, "alice");
        assert_eq!(creds.password, "secret");
        let creds = parse_plain(b"bob\0alice\0secret").unwrap();
        assert_eq!(creds.authzid.as_deref(), Some("bob"));
        assert_eq!(parse_plain(b"alice\0secret"), Err(ResponseError::Malformed));
        assert_eq!(parse_plain(b"\0\0secret"), Err(ResponseError::Malformed));
        // RFC 4616 2: passwd = 1*SAFE.
        assert_eq!(parse_plain(b"\0alice\0"), Err(ResponseError::Malformed));
        assert_eq!(decode_response("="), Ok(Vec::new()));
    }

    #[test]
    fn a_response_is_too_long_by_what_it_decodes_to() {
        let at_most = base64_encode(&[b'a'; RESPONSE_MAX_OCTETS]);
        assert_eq!(decode_response(&at_most).map(|d| d.len()), Ok(1024));
        let over = base64_encode(&[b'a'; RESPONSE_MAX_OCTETS + 1]);
        assert_eq!(decode_response(&over), Err(ResponseError::TooLong));
        // What is not base64 is that first, however long.
        let long_garbage = "!".repeat(4000);
        assert_eq!(
            decode_response(&long_garbage),
            Err(ResponseError::NotBase64)
        );
    }
}
