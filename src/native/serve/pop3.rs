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

    /// No logins: the POP3 service does not run.
    pub(super) fn is_empty(&self) -> bool {
        self.logins.is_empty()
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

/// Most octets of messages (as sent, with CRLF line ends) one session serves when it has more
/// than one: a session holds its maildrop in memory. The messages past it wait for a later
/// session; the oldest is served alone whatever its size, up to the engine's own limit.
const SESSION_OCTETS_MAX: usize = 256 * 1024 * 1024;

/// How much of a Maildir one session serves.
#[derive(Clone, Copy, Debug)]
struct SessionLimits {
    messages_max: usize,
    /// Past this, a message is served only as the session's one message.
    octets_max: usize,
    /// Past this, a message can never be served (the engine's `maildrop_octets_max`).
    message_octets_max: usize,
}

/// A session's view of the Maildirs: it opens one at login and remembers which file each
/// unique-id came from, so that an UPDATE removes exactly the files it served.
struct MaildirDrops<'a> {
    logins: &'a Logins,
    store: &'a MaildirStore,
    /// The Maildir this session holds, and its files by unique-id.
    held: Option<(String, BTreeMap<String, PathBuf>)>,
    /// What the log should say about the Maildir: files not served, files not removed.
    notes: Vec<String>,
    limits: SessionLimits,
}

impl<'a> MaildirDrops<'a> {
    /// The store of a session whose engine is configured by `config`: it never hands the
    /// engine a maildrop the engine would refuse for its size.
    fn new(
        logins: &'a Logins,
        store: &'a MaildirStore,
        config: &Pop3ServerConfig,
    ) -> MaildirDrops<'a> {
        MaildirDrops {
            logins,
            store,
            held: None,
            notes: Vec::new(),
            limits: SessionLimits {
                messages_max: config.maildrop_messages_max,
                octets_max: SESSION_OCTETS_MAX.min(config.maildrop_octets_max),
                message_octets_max: config.maildrop_octets_max,
            },
        }
    }
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
        match read_maildir(&self.store.mailbox_dir(&login.maildir), self.limits) {
            Ok(read) => {
                self.notes.extend(read.notes);
                self.held = Some((login.maildir.clone(), read.files));
                Ok(Maildrop::new(read.messages))
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

    /// The UPDATE state's work (RFC 1939 6): removes the files of the messages marked as
    /// deleted; those that stay are noted and returned, for QUIT's -ERR.
    fn remove_deleted(&mut self, uids: &[String]) -> Vec<String> {
        let Some((_, files)) = &self.held else {
            return uids.to_vec();
        };
        let mut kept = Vec::new();
        for uid in uids {
            let Some(path) = files.get(uid) else {
                kept.push(uid.clone());
                continue;
            };
            match fs::remove_file(path) {
                Ok(()) => {}
                // Another reader of the Maildir took the file since the login: it is gone
                // from here (a reader that moved it to cur/ leaves it for the next session).
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    self.notes.push(format!(
                        "could not remove a deleted message, {}: {error}",
                        path.display()
                    ));
                    kept.push(uid.clone());
                }
            }
        }
        kept
    }
}

/// A lock is never kept past its session, however the session's thread ends.
impl Drop for MaildirDrops<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// A Maildir as a session serves it.
struct MaildirRead {
    messages: Vec<StoredMessage>,
    files: BTreeMap<String, PathBuf>,
    notes: Vec<String>,
}

/// The messages of a Maildir, oldest first, each with its unique-id, and the file each came
/// from; a Maildir not yet made has no messages. A file that cannot be read, or that is too
/// large to ever be served, is left out and noted, and the newest messages past `limits` wait
/// for a later session, so that no file keeps the others from their reader.
fn read_maildir(dir: &Path, limits: SessionLimits) -> io::Result<MaildirRead> {
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
            let name = entry.file_name();
            // Dot files are not messages (maildir(5)).
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let key = order_key(metadata.modified().ok(), name.as_encoded_bytes());
            found.push((key, sub, name, entry.path(), metadata.len()));
        }
    }
    found.sort();
    let mut read = MaildirRead {
        messages: Vec::new(),
        files: BTreeMap::new(),
        notes: Vec::new(),
    };
    let mut octets = 0usize;
    let mut waiting = 0usize;
    let too_large = |path: &Path, length: u64| {
        format!(
            "{} is not served: {length} octets, where a session serves at most {}",
            path.display(),
            limits.message_octets_max
        )
    };
    for (_, sub, name, path, length) in found {
        // As sent, a message is never shorter than its file.
        let length_at_least = usize::try_from(length).unwrap_or(usize::MAX);
        if length_at_least > limits.message_octets_max {
            read.notes.push(too_large(&path, length));
            continue;
        }
        let fits = |octets_sent: usize| {
            read.messages.is_empty()
                || (read.messages.len() < limits.messages_max
                    && octets.saturating_add(octets_sent) <= limits.octets_max)
        };
        if waiting > 0 || !fits(length_at_least) {
            waiting += 1;
            continue;
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Taken by another reader between the listing and now.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                read.notes
                    .push(format!("{} is not served: {error}", path.display()));
                continue;
            }
        };
        // A bare LF or CR becomes CRLF, and a last line gets its CRLF (RFC 1939 3).
        let octets_sent = crate::pop3::wire::canonical_message(&bytes).len();
        if octets_sent > limits.message_octets_max {
            read.notes.push(too_large(&path, octets_sent as u64));
            continue;
        }
        if !fits(octets_sent) {
            waiting += 1;
            continue;
        }
        octets = octets.saturating_add(octets_sent);
        let base = unique_id_base(name.as_encoded_bytes());
        let mut uid = unique_id(base);
        // The same name in new/ and cur/ (copied there by hand) is two messages, each with a
        // unique-id that stays when a reader changes the name's flags.
        if read.files.contains_key(&uid) {
            let mut place = sub.as_bytes().to_vec();
            place.push(b'/');
            place.extend_from_slice(base);
            uid = format!("h{:016x}", fnv1a(&place));
        }
        if read.files.contains_key(&uid) {
            read.notes.push(format!(
                "{} is not served: its unique-id is another message's",
                path.display()
            ));
            continue;
        }
        read.files.insert(uid.clone(), path);
        read.messages.push(StoredMessage::new(uid, bytes));
    }
    if waiting > 0 {
        read.notes.push(format!(
            "{waiting} newer message{} not served in this session, which serves at most {} \
             messages and {} MiB: a later session serves {}",
            crate::plural(waiting as u64),
            limits.messages_max,
            limits.octets_max / (1024 * 1024),
            if waiting == 1 { "it" } else { "them" }
        ));
    }
    Ok(read)
}

/// The order a Maildir's messages are served in: by the time each file was written, then by
/// the numbers in its name compared as numbers (`1733.M99998P7Q9` before `1733.M100001P7Q10`),
/// as a file system's clock may give two deliveries the same time.
fn order_key(written: Option<std::time::SystemTime>, name: &[u8]) -> impl Ord {
    let numbers: Vec<u64> = name
        .split(|byte| !byte.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| {
            run.iter().fold(0u64, |n, digit| {
                n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
            })
        })
        .collect();
    (written, numbers, name.to_vec())
}

/// A Maildir name without the info a reader adds after ':' (maildir(5)): the part that names
/// the message for good, in new/ and in cur/.
fn unique_id_base(file_name: &[u8]) -> &[u8] {
    file_name
        .split(|&byte| byte == b':')
        .next()
        .unwrap_or(file_name)
}

/// A message's unique-id (RFC 1939 7: 1 to 70 characters from 0x21 to 0x7E, never given to
/// another message of the maildrop) from its name's base ([`unique_id_base`]), which is
/// unique by construction (maildir(5)): the base itself, or a hash of its octets when it is
/// not a valid unique-id (too long, or not ASCII).
fn unique_id(base: &[u8]) -> String {
    match std::str::from_utf8(base) {
        Ok(text) if is_valid_uid(text) => text.to_string(),
        _ => format!("h{:016x}", fnv1a(base)),
    }
}

/// One POP3 session on `stream`, logged as the SMTP sessions are, under the same numbering.
pub(super) fn serve_session(shared: &Shared, mut stream: TcpStream) {
    let tag = shared
        .sessions_started
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let _under_way = super::UnderWay::new(shared, tag, super::Service::Pop3);
    let now_ms = || shared.started.elapsed().as_millis() as u64;
    let _ = stream.set_nodelay(true);
    let from = super::peer_of(&stream)
        .map_or_else(|| "[0.0.0.0]".to_string(), |peer| peer.address_literal());
    say(shared, tag, "#", &format!("POP3 connection from {from}"));
    // RFC 1939 3: the inactivity timer is at least 10 minutes, the engine's default.
    let config = Pop3ServerConfig::new(shared.config.hostname.clone());
    let stalled_after = Duration::from_millis(config.idle_timeout_ms);
    let drops = MaildirDrops::new(&shared.pop3, &shared.store, &config);
    let mut session = Pop3Server::new(config, drops, now_ms());
    let mut buffer = vec![0u8; 16 * 1024];
    let mut cut: Option<&str> = None;
    loop {
        while let Some(event) = session.poll_event() {
            // Released before the close is logged: a client that sees the log line may log
            // in again at once.
            if matches!(event, Pop3ServerEvent::Closed { .. }) {
                session.store_mut().release();
            }
            print_event(shared, tag, &event, cut);
            // After the command's own lines: what the store found reading or updating the
            // Maildir (a login's notes come after its PASS, an update's after its QUIT).
            if matches!(event, Pop3ServerEvent::CommandReceived { .. }) {
                continue;
            }
            for note in std::mem::take(&mut session.store_mut().notes) {
                say(shared, tag, "#", &note);
            }
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
        assert_eq!(unique_id("1733.M5P7Q1.host".as_bytes()), "1733.M5P7Q1.host");
        // The info a reader adds in cur/ is not part of the name.
        assert_eq!(
            unique_id(unique_id_base(b"1733.M5P7Q1.host:2,S")),
            "1733.M5P7Q1.host"
        );
        let long = format!("1733.M5P7Q1.{}", "h".repeat(100));
        let hashed = unique_id(long.as_bytes());
        assert!(is_valid_uid(&hashed), "{hashed}");
        assert_ne!(hashed, unique_id(format!("{long}x").as_bytes()));
        assert!(is_valid_uid(&unique_id("caf\u{e9}".as_bytes())));
        // Names that differ only in octets that are not UTF-8 get different unique-ids.
        assert_ne!(unique_id(b"a\xff"), unique_id(b"a\xfe"));
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
        let mut session = MaildirDrops::new(&logins, &store, &Pop3ServerConfig::new("h"));
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
        let mut other = MaildirDrops::new(&logins, &store, &Pop3ServerConfig::new("h"));
        assert_eq!(other.open("bob", "pw").unwrap_err(), OpenError::InUse);
        // The UPDATE removes the file it served, and only that one.
        let uid = maildrop.messages[0].uid.clone();
        assert!(session.remove_deleted(&[uid]).is_empty());
        assert!(!first.exists());
        session.release();
        let again = other.open("bob", "pw").unwrap();
        assert_eq!(again.messages.len(), 1);
        other.release();
        // A Maildir that does not exist yet holds no messages.
        let logins = Logins::new(vec![("carol".into(), "pw".into(), "carol".into())]);
        let mut carol = MaildirDrops::new(&logins, &store, &Pop3ServerConfig::new("h"));
        assert!(carol.open("carol", "pw").unwrap().messages.is_empty());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn odd_maildir_contents_leave_the_other_messages_served() {
        let dir = std::env::temp_dir().join(format!("smtp-lab-pop3-odd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let same_time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        let write = |path: &str, bytes: &[u8]| {
            let path = dir.join(path);
            fs::write(&path, bytes).unwrap();
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(same_time)
                .unwrap();
        };
        // Written in the same instant: the numbers in the names order them.
        write("new/1733.M100001P7Q10.h", b"third\r\n");
        write("new/1733.M99998P7Q9.h", b"second\r\n");
        write("new/1733.M5P7Q1.h", b"first\r\n");
        // One name in new/ and in cur/: two messages with two unique-ids.
        write("cur/1733.M5P7Q1.h:2,S", b"copy\r\n");
        // A directory is no message.
        fs::create_dir(dir.join("new/1733.M6P7Q1.h")).unwrap();
        let limits = |messages_max, octets_max| SessionLimits {
            messages_max,
            octets_max,
            message_octets_max: 1 << 20,
        };
        let read = read_maildir(&dir, limits(10, 1 << 20)).unwrap();
        let bodies: Vec<&[u8]> = read.messages.iter().map(|m| m.bytes.as_slice()).collect();
        assert_eq!(
            bodies,
            [&b"first\r\n"[..], b"copy\r\n", b"second\r\n", b"third\r\n"]
        );
        let uids: BTreeSet<&str> = read.messages.iter().map(|m| m.uid.as_str()).collect();
        assert_eq!(uids.len(), 4);
        assert!(read.notes.is_empty(), "{:?}", read.notes);
        // Past the session's octets or messages, the newest messages wait, and the log says
        // so; the oldest is served whatever its size.
        let read = read_maildir(&dir, limits(10, 16)).unwrap();
        assert_eq!(read.messages.len(), 2);
        assert_eq!(
            read.notes,
            [
                "2 newer messages not served in this session, which serves at most 10 messages \
              and 0 MiB: a later session serves them"
            ]
        );
        assert_eq!(
            read_maildir(&dir, limits(3, 1 << 20))
                .unwrap()
                .messages
                .len(),
            3
        );
        assert_eq!(read_maildir(&dir, limits(10, 1)).unwrap().messages.len(), 1);
        // A file with a bare LF and no last line end grows as it is sent (RFC 1939 3): one
        // that would then pass what a session can serve is left out, and the rest served.
        write(
            "new/1734.M1P7Q1.h",
            b"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nx",
        );
        let tight = SessionLimits {
            message_octets_max: 30,
            ..limits(10, 1 << 20)
        };
        let read = read_maildir(&dir, tight).unwrap();
        assert_eq!(read.messages.len(), 4);
        assert!(
            read.notes.iter().any(|note| note.ends_with(
                "1734.M1P7Q1.h is not served: 43 octets, where a session serves at most 30"
            )),
            "{:?}",
            read.notes
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
