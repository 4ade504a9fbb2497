//! POP3, the Post Office Protocol version 3 (RFC 1939, with CAPA from RFC 2449, response codes
//! from RFC 2449 8 and RFC 3206, and UTF-8 mode and user names from RFC 6856), as sans-I/O
//! engines: the server that lets a user agent download its maildrop, and the user agent's
//! client that downloads it.
//!
//! Nothing here reads a clock, a socket, a file or a random source: sessions take bytes and the
//! time in and give bytes, events and the next deadline out, so the same code runs in the
//! browser's simulation, in tests, and behind a real TCP port. Where the messages live is not
//! this module's business either: a [`maildrop::MaildropStore`] hands a maildrop to the server
//! at login, and removes the messages marked as deleted when the session ends with QUIT (or
//! reports them, for a store that leaves the removal to its driver).
//!
//! Not here: APOP (it needs MD5 over a greeting timestamp; the server answers -ERR and does not
//! advertise it), AUTH/SASL (RFC 5034), STLS (RFC 2595), LANG (RFC 6856 3, optional), SASLprep
//! normalisation of UTF-8 user names and passwords (RFC 6856 2.2: servers SHOULD apply it;
//! they are compared as sent), surrogate (downgraded) messages for clients not in UTF-8 mode
//! (RFC 6856 2.1 allows -ERR instead, which is what the server answers) and IMAP.

pub mod client;
pub mod maildrop;
pub mod server;
pub mod wire;
