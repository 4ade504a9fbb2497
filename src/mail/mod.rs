//! E-mail messages (RFC 5322, MIME RFC 2045-2049): composing them, dating them, the encodings
//! they use, and delivery status notifications (RFC 3464). This module does not send messages
//! or hold sessions; `smtp` does that.

pub mod base64;
pub mod boundary;
pub mod compose;
pub mod date;
pub mod dsn;
pub mod glossary;
pub mod outline;
