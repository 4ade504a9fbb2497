//! The server's view of one user's mailbox (a "maildrop", RFC 1939 2), and the interface through
//! which a POP3 server finds a user's maildrop at login.
//!
//! This module does not store mail anywhere lasting: the simulator gives its simulated mailbox,
//! a native driver could give a Maildir. It only says what a session needs: the messages, each
//! with a unique-id (RFC 1939 7, UIDL), checked credentials and an exclusive lock (RFC 1939 8).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest unique-id (RFC 1939 7: "1 to 70 characters").
pub const UID_MAX_OCTETS: usize = 70;

/// One message in a maildrop. `bytes` is the RFC 5322 message; the server sends it with every
/// line ending made CRLF, and its size in LIST and STAT counts those octets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The unique-id shown by UIDL: 1 to 70 characters from 0x21 to 0x7E, never reused for
    /// another message of the same maildrop (RFC 1939 7).
    pub uid: String,
    pub bytes: Vec<u8>,
}

impl StoredMessage {
    pub fn new(uid: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        StoredMessage {
            uid: uid.into(),
            bytes: bytes.into(),
        }
    }
}

/// The messages of one maildrop, in the order they get their message numbers (1, 2, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maildrop {
    pub messages: Vec<StoredMessage>,
}

impl Maildrop {
    pub fn new(messages: Vec<StoredMessage>) -> Self {
        Maildrop { messages }
    }
}

/// True when `uid` is a valid unique-id (RFC 1939 7).
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= UID_MAX_OCTETS
        && uid.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
}

/// Why a store would not give a maildrop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenError {
    /// No such user, or the wrong password. The two are not told apart, so that nobody learns
    /// which user names exist (RFC 1939 13).
    BadCredentials,
    /// Another session holds the maildrop's lock (RFC 1939 8; RFC 2449 8.1.2 `[IN-USE]`).
    InUse,
    /// The store cannot give the maildrop now (RFC 3206 4 `[SYS/TEMP]`).
    TemporarilyUnavailable { reason: String },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::BadCredentials => f.write_str("invalid user name or password"),
            OpenError::InUse => f.write_str("maildrop already locked by another session"),
            OpenError::TemporarilyUnavailable { reason } => {
                write!(f, "maildrop temporarily unavailable: {reason}")
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// Where a POP3 server finds maildrops. `open` checks the credentials and, when they are
/// right, takes the maildrop's lock and returns its messages (RFC 1939 4 and 8).
///
/// When a session ends with QUIT, the UPDATE state asks the store to remove the messages
/// marked as deleted ([`MaildropStore::remove_deleted`]) and emits `MaildropUpdated` with the
/// unique-ids removed. A store that leaves the removal to its driver (the simulation's) removes
/// nothing there, and its driver removes those the event lists. The driver releases the lock
/// on any `Closed` event.
pub trait MaildropStore {
    fn open(&mut self, user: &str, password: &str) -> Result<Maildrop, OpenError>;

    /// Releases the lock `open` took, for a login the server refuses after all: RFC 1939 4,
    /// "If a lock was acquired but the POP3 server intends to respond with a negative status
    /// indicator, the POP3 server must release the lock prior to rejecting the command."
    /// A store whose locks its caller keeps has nothing to do.
    fn release(&mut self) {}

    /// The UPDATE state's removal (RFC 1939 6) for a store that does it itself, such as one on
    /// disk: removes the messages with these unique-ids and returns those it could not
    /// remove, which the session's QUIT then reports with "-ERR some deleted messages not
    /// removed". A store whose driver removes them on `MaildropUpdated` has nothing to do.
    fn remove_deleted(&mut self, _uids: &[String]) -> Vec<String> {
        Vec::new()
    }

    /// How many messages reached the locked maildrop after `open`: a session does not list
    /// them (its message numbers stay fixed, RFC 1939 4), but they are there after it ends.
    fn arrived_since_open(&self) -> usize {
        0
    }
}

/// One user's entry in an [`InMemoryStore`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub password: String,
    pub maildrop: Maildrop,
    /// Set by the caller while another session holds this maildrop.
    pub in_use: bool,
}

/// A store kept in memory, for the simulator and tests. Users are kept in name order, so
/// anything derived from the store is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InMemoryStore {
    pub mailboxes: BTreeMap<String, Mailbox>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user with an empty maildrop.
    pub fn add_user(&mut self, user: impl Into<String>, password: impl Into<String>) {
        self.mailboxes.insert(
            user.into(),
            Mailbox {
                password: password.into(),
                ..Mailbox::default()
            },
        );
    }

    /// Appends a message to a user's maildrop; false when there is no such user.
    pub fn deliver(&mut self, user: &str, message: StoredMessage) -> bool {
        match self.mailboxes.get_mut(user) {
            Some(mailbox) => {
                mailbox.maildrop.messages.push(message);
                true
            }
            None => false,
        }
    }

    pub fn set_in_use(&mut self, user: &str, in_use: bool) {
        if let Some(mailbox) = self.mailboxes.get_mut(user) {
            mailbox.in_use = in_use;
        }
    }

    /// Removes the messages with these unique-ids (what a `MaildropUpdated` event asks for).
    /// Returns how many were removed.
    pub fn remove(&mut self, user: &str, uids: &[String]) -> usize {
        let Some(mailbox) = self.mailboxes.get_mut(user) else {
            return 0;
        };
        let before = mailbox.maildrop.messages.len();
        mailbox
            .maildrop
            .messages
            .retain(|message| !uids.contains(&message.uid));
        before - mailbox.maildrop.messages.len()
    }

    pub fn maildrop(&self, user: &str) -> Option<&Maildrop> {
        self.mailboxes.get(user).map(|mailbox| &mailbox.maildrop)
    }
}

impl MaildropStore for InMemoryStore {
    fn open(&mut self, user: &str, password: &str) -> Result<Maildrop, OpenError> {
        let mailbox = self
            .mailboxes
            .get(user)
            .filter(|mailbox| mailbox.password == password)
            .ok_or(OpenError::BadCredentials)?;
        if mailbox.in_use {
            return Err(OpenError::InUse);
        }
        Ok(mailbox.maildrop.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules() {
        assert!(is_valid_uid("whqtswO00WBw418f9t5JxYwZ"));
        assert!(!is_valid_uid(""));
        assert!(!is_valid_uid("has space"));
        assert!(!is_valid_uid(&"x".repeat(71)));
        assert!(is_valid_uid(&"x".repeat(70)));
    }

    #[test]
    fn store_checks_password_and_lock() {
        let mut store = InMemoryStore::new();
        store.add_user("alice", "secret");
        store.deliver(
            "alice",
            StoredMessage::new("a1", "Subject: x\r\n\r\nhi\r\n"),
        );
        assert_eq!(store.open("alice", "wrong"), Err(OpenError::BadCredentials));
        assert_eq!(store.open("bob", "secret"), Err(OpenError::BadCredentials));
        assert_eq!(store.open("alice", "secret").unwrap().messages.len(), 1);
        store.set_in_use("alice", true);
        assert_eq!(store.open("alice", "secret"), Err(OpenError::InUse));
        assert_eq!(store.remove("alice", &["a1".to_string()]), 1);
        assert!(store.maildrop("alice").unwrap().messages.is_empty());
    }
}
