//! `smtp-lab serve --pop3`: the POP3 engine's server session (RFC 1939) on a real TCP port,
//! serving the Maildirs the SMTP side writes, so that a real mail client can fetch what a
//! real sender delivered.

use super::{say, Shared};
use crate::native::maildir::{fnv1a, MaildirStore};
use crate::native::net::Readout;
use crate::native::transcript::print_line;
use crate::pop3::maildrop::{is_valid_uid, Maildrop, MaildropStore, OpenError, StoredMessage};
use crate::pop3::server::{CloseReason, Pop3Server, Pop3ServerConfig, Pop3ServerEvent};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One login: its password and the Maildir it opens.
#[derive(Debug)]
struct Login {
    name: String,
    password: String,
    maildir: String,
}

/// The POP3 logins, and the Maildirs a session holds: RFC 1939 8 has a session lock its
/// maildrop, so that two sessions never delete from one maildrop at once.
#[derive(Debug, Default)]
pub(super) struct Logins {
    /// By the login's name in lower case: the mailboxes it names are found without regard to
    /// case, as SMTP finds them.
    logins: BTreeMap<String, Login>,
    locked: Mutex<BTreeSet<String>>,
}

impl Logins {
    /// From (name, password, Maildir) triples.
    pub(super) fn new(logins: Vec<(String, String, String)>) -> Logins {
        Logins {
            logins: logins
                .into_iter()
                .map(|(name, password, maildir)| {
                    (
                        name.to_lowercase(),
                        Login {
                            name,
                            password,
                            maildir,
                        },
                    )
                })
                .collect(),
            locked: Mutex::default(),
        }
    }

    /// The logins' names as given, for the log.
    pub(super) fn names(&self) -> Vec<&str> {
        self.logins.values().map(|l| l.name.as_str()).collect()
    }

    /// The set of locked Maildirs; a thread that panicked holding it left it whole.
    fn locked(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.locked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's view of the Maildirs: it opens one at login and remembers which file each
/// unique-id came from, so that an UPDATE removes exactly the files it served.
struct MaildirDrops<'a> {
    logins: &'a Logins,
    store: &'a MaildirStore,
    /// The Maildir this session holds, and its files by unique-id.
    held: Option<(String, BTreeMap<String, PathBuf>)>,
}

impl MaildropStore for MaildirDrops<'_> {
    fn open(&mut self, user: &str, password: &str) -> Result<Maildrop, OpenError> {
        // An unknown name and a wrong password get the same answer: the reply must not tell
        // a guesser which names exist.
        let login = self
            .logins
            .logins
            .get(&user.to_lowercase())
            .filter(|login| login.password == password)
            .ok_or(OpenError::BadCredentials)?;
        if !self.logins.locked().insert(login.maildir.clone()) {
            return Err(OpenError::InUse);
        }
        match read_maildir(&self.store.mailbox_dir(&login.maildir)) {
            Ok((messages, files)) => {
                self.held = Some((login.maildir.clone(), files));
                Ok(Maildrop::new(messages))
            }
            Err(error) => {
                self.logins.locked().remove(&login.maildir);
                Err(OpenError::TemporarilyUnavailable {
                    reason: error.to_string(),
                })
            }
        }
    }

    fn release(&mut self) {
        if let Some((maildir, _)) = self.held.take() {
            self.logins.locked().remove(&maildir);
        }
    }
}

impl MaildirDrops<'_> {
    /// The UPDATE state's work (RFC 1939 6): removes the files of the messages marked as
    /// deleted, and says which could not be removed.
    fn remove(&self, uids: &[String]) -> Vec<String> {
        let Some((_, files)) = &self.held else {
            return Vec::new();
        };
        uids.iter()
            .filter_map(|uid| {
                let path = files.get(uid)?;
                match fs::remove_file(path) {
                    Ok(()) => None,
                    // Already gone (another reader of the Maildir took it): removed all the same.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => None,
                    Err(error) => Some(format!("{}: {error}", path.display())),
                }
            })
            .collect()
    }
}

/// The messages of a Maildir, oldest first (by the time they were stored, then by name), each
/// with its unique-id, and the file each came from. A Maildir not yet made has no messages.
fn read_maildir(dir: &Path) -> io::Result<(Vec<StoredMessage>, BTreeMap<String, PathBuf>)> {
    let mut found = Vec::new();
    // A message is in new/ until a reader has seen it, then in cur/ (maildir(5)).
    for sub in ["new", "cur"] {
        let entries = match fs::read_dir(dir.join(sub)) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot files are not messages (maildir(5)).
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let stored = entry.metadata()?.modified().ok();
            found.push((stored, name, entry.path()));
        }
    }
    found.sort();
    let mut messages = Vec::with_capacity(found.len());
    let mut files = BTreeMap::new();
    for (_, name, path) in found {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Taken by another reader between the listing and now.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let uid = unique_id(&name);
        files.insert(uid.clone(), path);
        messages.push(StoredMessage::new(uid, bytes));
    }
    Ok((messages, files))
}

/// A message's unique-id (RFC 1939 7: 1 to 70 characters from 0x21 to 0x7E, never given to
/// another message of the maildrop): its Maildir name without the info after ':', which is
/// unique by construction (maildir(5)) and stays when a reader moves the file to cur/. A name
/// that is not a valid unique-id (too long, or not ASCII) is replaced by a hash of it.
fn unique_id(file_name: &str) -> String {
    let base = file_name.split(':').next().unwrap_or(file_name);
    if is_valid_uid(base) {
        base.to_string()
    } else {
        format!("h{:016x}", fnv1a(base.as_bytes()))
    }
}

/// One POP3 session on `stream`, logged as the SMTP sessions are, under the same numbering.
pub(super) fn serve_session(shared: &Shared, mut stream: TcpStream) {
    let tag = shared
        .sessions_started
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let _under_way = super::UnderWay::new(shared, tag);
    let now_ms = || shared.started.elapsed().as_millis() as u64;
    let _ = stream.set_nodelay(true);
    let from = super::peer_of(&stream)
        .map_or_else(|| "[0.0.0.0]".to_string(), |peer| peer.address_literal());
    say(shared, tag, "#", &format!("POP3 connection from {from}"));
    // RFC 1939 3: the inactivity timer is at least 10 minutes, the engine's default.
    let config = Pop3ServerConfig::new(shared.config.hostname.clone());
    let stalled_after = Duration::from_millis(config.idle_timeout_ms);
    let drops = MaildirDrops {
        logins: &shared.pop3,
        store: &shared.store,
        held: None,
    };
    let mut session = Pop3Server::new(config, drops, now_ms());
    let mut buffer = vec![0u8; 16 * 1024];
    let mut cut: Option<&str> = None;
    loop {
        while let Some(event) = session.poll_event() {
            if let Pop3ServerEvent::MaildropUpdated { deleted_uids, .. } = &event {
                for problem in session.store().remove(deleted_uids) {
                    say(
                        shared,
                        tag,
                        "#",
                        &format!("could not remove a deleted message: {problem}"),
                    );
                }
            }
            // Released before the close is logged: a client that sees the log line may log
            // in again at once.
            if matches!(event, Pop3ServerEvent::Closed { .. }) {
                session.store_mut().release();
            }
            print_event(shared, tag, &event, cut);
        }
        let mut write_failed = false;
        while let Some(bytes) = session.poll_output() {
            if super::write_within(&mut stream, &bytes, stalled_after).is_err() {
                write_failed = true;
                break;
            }
        }
        if write_failed {
            cut = Some("closed: a response could not be sent");
            session.handle_peer_closed();
            continue;
        }
        if session.is_closed() {
            break;
        }
        if shared
            .shutting_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // POP3 has no reply that closes a session unasked: the connection is closed,
            // without the UPDATE state, so nothing is deleted (RFC 1939 6).
            cut = Some("closed by the server: it is stopping");
            session.handle_peer_closed();
            continue;
        }
        match super::read_or_look_up(&mut stream, &mut buffer, session.poll_timeout(), now_ms()) {
            Readout::Bytes(read) => session.handle_input(&buffer[..read], now_ms()),
            Readout::Closed => {
                cut = Some("closed by the client");
                session.handle_peer_closed();
            }
            Readout::TimedOut => session.handle_timeout(now_ms()),
            Readout::Interrupted => {}
        }
    }
    // Never held past the session, however it ended.
    session.store_mut().release();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// The transcript's last line of a POP3 session.
fn closed_text(reason: CloseReason, cut: Option<&str>) -> String {
    let why = match (reason, cut) {
        (CloseReason::PeerClosed, Some(cut)) => {
            return format!("{cut}; nothing is deleted without QUIT (RFC 1939 6)")
        }
        (CloseReason::Quit, _) => "after QUIT",
        (CloseReason::PeerClosed, None) => "by the client; nothing is deleted without QUIT",
        (CloseReason::IdleTimeout, _) => {
            "the client was idle too long (RFC 1939 3); nothing is deleted"
        }
        (CloseReason::TooManyAuthFailures, _) => "too many failed logins",
        (CloseReason::TooManyCommands, _) => "too many commands",
    };
    format!("closed: {why}")
}

fn print_event(shared: &Shared, tag: u64, event: &Pop3ServerEvent, cut: Option<&str>) {
    if shared.quiet {
        if let Pop3ServerEvent::Closed { reason } = event {
            say(shared, tag, "#", &closed_text(*reason, cut));
        }
        return;
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match event {
        // The engine masks PASS's argument.
        Pop3ServerEvent::CommandReceived { line } => print_line(&mut out, Some(tag), "C:", line),
        // A multi-line response's lines (a listing, a message) are not shown: its first line
        // says what follows.
        Pop3ServerEvent::ReplySent {
            ok,
            first_line,
            explanation,
            ..
        } => {
            print_line(&mut out, Some(tag), "S:", first_line);
            if !ok {
                print_line(&mut out, Some(tag), "#", explanation);
            }
        }
        Pop3ServerEvent::StateChanged { .. } => {}
        Pop3ServerEvent::LoginRefused { user, error } => print_line(
            &mut out,
            Some(tag),
            "#",
            &format!("login as {user} refused: {error}"),
        ),
        Pop3ServerEvent::MaildropLocked {
            user,
            messages,
            octets,
        } => print_line(
            &mut out,
            Some(tag),
            "#",
            &format!(
                "{user}'s maildrop locked: {messages} message{}, {octets} octets",
                crate::plural(*messages as u64)
            ),
        ),
        Pop3ServerEvent::MaildropUpdated { user, deleted_uids } => print_line(
            &mut out,
            Some(tag),
            "#",
            &format!(
                "{user}'s maildrop updated: {} message{} removed",
                deleted_uids.len(),
                crate::plural(deleted_uids.len() as u64)
            ),
        ),
        Pop3ServerEvent::Closed { reason } => {
            print_line(&mut out, Some(tag), "#", &closed_text(*reason, cut))
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_maildir_names_or_their_hashes() {
        assert_eq!(unique_id("1733.M5P7Q1.host"), "1733.M5P7Q1.host");
        // The info a reader adds in cur/ is not part of the name.
        assert_eq!(unique_id("1733.M5P7Q1.host:2,S"), "1733.M5P7Q1.host");
        let long = format!("1733.M5P7Q1.{}", "h".repeat(100));
        let hashed = unique_id(&long);
        assert!(is_valid_uid(&hashed), "{hashed}");
        assert_ne!(hashed, unique_id(&format!("{long}x")));
        assert!(is_valid_uid(&unique_id("caf\u{e9}")));
    }

    #[test]
    fn a_maildir_is_read_oldest_first_and_its_lock_is_exclusive() {
        let root = std::env::temp_dir().join(format!("smtp-lab-pop3-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = MaildirStore::new(&root, "h");
        let first = store.deliver("bob", b"Subject: 1\r\n\r\none\r\n").unwrap();
        store.deliver("bob", b"Subject: 2\r\n\r\ntwo\r\n").unwrap();
        // Dot files are not messages.
        fs::write(root.join("bob/new/.hidden"), b"x").unwrap();
        let logins = Logins::new(vec![("Bob".into(), "pw".into(), "bob".into())]);
        let mut session = MaildirDrops {
            logins: &logins,
            store: &store,
            held: None,
        };
        assert_eq!(
            session.open("bob", "wrong").unwrap_err(),
            OpenError::BadCredentials
        );
        assert_eq!(
            session.open("alice", "pw").unwrap_err(),
            OpenError::BadCredentials
        );
        let maildrop = session.open("BOB", "pw").unwrap();
        let bodies: Vec<&[u8]> = maildrop
            .messages
            .iter()
            .map(|m| m.bytes.as_slice())
            .collect();
        assert_eq!(
            bodies,
            [
                &b"Subject: 1\r\n\r\none\r\n"[..],
                b"Subject: 2\r\n\r\ntwo\r\n"
            ]
        );
        let mut other = MaildirDrops {
            logins: &logins,
            store: &store,
            held: None,
        };
        assert_eq!(other.open("bob", "pw").unwrap_err(), OpenError::InUse);
        // The UPDATE removes the file it served, and only that one.
        let uid = maildrop.messages[0].uid.clone();
        assert!(session.remove(&[uid]).is_empty());
        assert!(!first.exists());
        session.release();
        let again = other.open("bob", "pw").unwrap();
        assert_eq!(again.messages.len(), 1);
        other.release();
        // A Maildir that does not exist yet holds no messages.
        let logins = Logins::new(vec![("carol".into(), "pw".into(), "carol".into())]);
        let mut carol = MaildirDrops {
            logins: &logins,
            store: &store,
            held: None,
        };
        assert!(carol.open("carol", "pw").unwrap().messages.is_empty());
        let _ = fs::remove_dir_all(&root);
    }
}
