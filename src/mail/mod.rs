//! E-mail messages (RFC 5322, MIME RFC 2045-2049): composing them, dating them, and the
//! encodings they use. This module knows nothing of how messages travel; `smtp` does that.

pub mod base64;
pub mod date;
