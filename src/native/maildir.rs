//! Maildir storage (the format of qmail, Postfix, Dovecot): one file per message, written to
//! `tmp/` and renamed into `new/`, so a reader or a crash never sees half a message.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most of the host name a file name holds. The rest of the name (`seconds.Mmicros
/// PpidQn.`) takes at most 61 octets, and file systems allow 255 per name: a host name of up
/// to 253 (a `--hostname` may be that long) would not fit whole.
const HOST_PART_MAX: usize = 128;

/// A tree of Maildirs: `root/<mailbox>/{tmp,new,cur}`.
#[derive(Debug)]
pub struct MaildirStore {
    root: PathBuf,
    hostname: String,
    deliveries: AtomicU64,
}

impl MaildirStore {
    pub fn new(root: impl Into<PathBuf>, hostname: &str) -> MaildirStore {
        MaildirStore {
            root: root.into(),
            // The host name is part of every file name: keep it to safe characters, and
            // short enough that a name stays within a file system's 255 octets.
            hostname: hostname
                .chars()
                .take(HOST_PART_MAX)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            deliveries: AtomicU64::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the root if it is missing and writes and removes a file in it: a root that
    /// cannot take mail is found before the server listens, not at each message's 451.
    pub fn check_writable(&self) -> io::Result<()> {
        // create_dir_all on a file says only "File exists".
        if self.root.exists() && !self.root.is_dir() {
            return Err(io::Error::other("it is not a directory"));
        }
        // A root made here is private too: its entries name the mailboxes.
        private_dir_builder().create(&self.root)?;
        let probe = self
            .root
            .join(format!(".smtp-lab-check.{}", std::process::id()));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&probe)?
            .sync_all()?;
        fs::remove_file(&probe)
    }

    /// The directory of a mailbox, named after its local part with unsafe characters escaped.
    pub fn mailbox_dir(&self, mailbox: &str) -> PathBuf {
        self.root.join(folder_name(mailbox))
    }

    /// Stores `message` in `mailbox` and returns the path of the new file. The message is on
    /// disk (synced) when this returns `Ok`; only then may the server answer 250.
    pub fn deliver(&self, mailbox: &str, message: &[u8]) -> io::Result<PathBuf> {
        let dir = self.mailbox_dir(mailbox);
        let new_mailbox = !dir.join("new").is_dir();
        // The root (if it went missing) and each mailbox's own directories private.
        private_dir_builder().create(&self.root)?;
        for sub in ["tmp", "new", "cur"] {
            private_dir_builder().create(dir.join(sub))?;
        }
        // A new mailbox's directories are entries in the mailbox and the root directories,
        // which are synced too: a crash after the 250 loses neither them nor the message.
        if new_mailbox {
            File::open(&dir)?.sync_all()?;
            File::open(&self.root)?.sync_all()?;
        }
        let name = self.unique_name();
        let tmp_path = dir.join("tmp").join(&name);
        let new_path = dir.join("new").join(&name);
        let written = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            // Mail is for its owner alone, as Postfix's and Dovecot's Maildirs are.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp_path)?;
            file.write_all(message)?;
            file.sync_all()?;
            fs::rename(&tmp_path, &new_path)?;
            // The rename is durable once the directory itself is synced.
            File::open(dir.join("new"))?.sync_all()
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp_path);
            return Err(error);
        }
        Ok(new_path)
    }

    /// Takes back a message [`MaildirStore::deliver`] stored (a transaction that failed for
    /// another recipient, so its client was not answered 250 and will send it again): the
    /// file is removed and its directory synced, so that a crash cannot bring it back as a
    /// duplicate.
    pub fn withdraw(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)?;
        match path.parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }

    /// `seconds.MmicrosPpidQn.host`, unique per process and delivery (the Maildir convention).
    fn unique_name(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let delivery = self.deliveries.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            delivery,
            self.hostname
        )
    }
}

/// Creates a directory and its missing parents (under an existing root: the mailbox's own),
/// readable by the owner alone (on Unix).
fn private_dir_builder() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// A local part as a directory name: letters, digits and `+-_=` stay, `.` stays unless it
/// leads; everything else (including `/`) becomes `%XX` of its UTF-8 bytes.
pub fn folder_name(local_part: &str) -> String {
    let mut name = String::with_capacity(local_part.len());
    for (index, byte) in local_part.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'+' | b'-' | b'_' | b'=')
            || (byte == b'.' && index > 0);
        if keep {
            name.push(byte as char);
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.is_empty() {
        name.push_str("%00");
    }
    // A local part may be 64 octets (RFC 5321 4.5.3.1.1), and one of UTF-8 letters, in lower
    // case and escaped, can take three times that or more: past a file system's 255 octets a
    // name keeps its start and ends in a hash of the whole local part, so that it still names
    // one mailbox and no other.
    if name.len() > FOLDER_NAME_MAX {
        let hash = format!("~{:016x}", fnv1a(local_part.as_bytes()));
        // Escaped names are ASCII: any cut is on a character's boundary.
        name.truncate(FOLDER_NAME_MAX - hash.len());
        name.push_str(&hash);
    }
    name
}

/// The longest file name most file systems take, in octets.
const FOLDER_NAME_MAX: usize = 255;

/// FNV-1a, 64 bits: the same on every run and every machine, as a folder's name must be.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_cannot_escape_the_root() {
        assert_eq!(folder_name("bob"), "bob");
        assert_eq!(folder_name("first.last+tag"), "first.last+tag");
        assert_eq!(folder_name(".."), "%2E.");
        assert_eq!(folder_name("a/b"), "a%2Fb");
        assert_eq!(folder_name("\"x y\""), "%22x%20y%22");
        assert_eq!(folder_name("jos\u{e9}"), "jos%C3%A9");
    }

    #[test]
    fn a_root_that_cannot_take_mail_is_found_before_any_message() {
        let base = std::env::temp_dir().join(format!("smtp-lab-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        // A new root is made, and left as empty as it was found.
        let root = base.join("mail");
        MaildirStore::new(&root, "h").check_writable().unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        // A root under a file cannot be made.
        let file = base.join("a-file");
        fs::write(&file, b"x").unwrap();
        assert!(MaildirStore::new(file.join("sub"), "h")
            .check_writable()
            .is_err());
        // A root that is a file says so.
        let error = MaildirStore::new(&file, "h").check_writable().unwrap_err();
        assert_eq!(error.to_string(), "it is not a directory");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn delivery_lands_in_new_and_leaves_tmp_empty() {
        let root = std::env::temp_dir().join(format!("smtp-lab-maildir-{}", std::process::id()));
        let store = MaildirStore::new(&root, "test host");
        let first = store.deliver("bob", b"Subject: 1\r\n\r\none\r\n").unwrap();
        let second = store.deliver("bob", b"Subject: 2\r\n\r\ntwo\r\n").unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read(&first).unwrap(), b"Subject: 1\r\n\r\none\r\n");
        assert!(first.starts_with(root.join("bob").join("new")));
        assert_eq!(
            fs::read_dir(root.join("bob").join("tmp")).unwrap().count(),
            0
        );
        assert!(root.join("bob").join("cur").is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&first), 0o600);
            for dir in ["", "tmp", "new", "cur"] {
                assert_eq!(mode(&root.join("bob").join(dir)), 0o700, "bob/{dir}");
            }
            // The root, made here, names the mailboxes: private as well.
            assert_eq!(mode(&root), 0o700);
        }
        fs::remove_dir_all(&root).unwrap();
    }

    /// A local part of 64 octets whose lower case and escaping take it past 255 octets still
    /// names a folder that can be made, one of its own.
    #[test]
    fn a_long_escaped_local_part_gets_a_folder_that_fits() {
        // U+023A is 2 octets, its lower case U+2C65 is 3: 32 of them are 64 octets, 96 in
        // lower case, 288 escaped.
        let long = "\u{2c65}".repeat(32);
        let other = ["\u{2c65}".repeat(31), "\u{2c66}".into()].concat();
        let (name, other_name) = (folder_name(&long), folder_name(&other));
        assert_eq!(name.len(), FOLDER_NAME_MAX, "{name}");
        assert!(name.starts_with("%E2%B1%A5%E2%B1%A5"), "{name}");
        assert_ne!(name, other_name);
        assert_eq!(name, folder_name(&long), "the same every time");
        let root =
            std::env::temp_dir().join(format!("smtp-lab-maildir-utf8-{}", std::process::id()));
        let store = MaildirStore::new(&root, "h");
        let path = store.deliver(&long, b"Subject: 1\r\n\r\none\r\n").unwrap();
        assert!(
            path.starts_with(root.join(&name).join("new")),
            "{}",
            path.display()
        );
        fs::remove_dir_all(&root).unwrap();
    }

    /// A host name as long as a name may be (253 octets) leaves every file name within 255.
    #[test]
    fn a_long_host_name_still_gives_file_names_that_fit() {
        let root =
            std::env::temp_dir().join(format!("smtp-lab-maildir-long-{}", std::process::id()));
        let hostname = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(hostname.len(), 253);
        let store = MaildirStore::new(&root, &hostname);
        let path = store.deliver("bob", b"Subject: 1\r\n\r\none\r\n").unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= 255, "{} octets", name.len());
        // The host's first 128 characters, its dots made safe.
        let host_part = ["a".repeat(63), "b".repeat(63), String::new()].join("_");
        assert!(name.ends_with(&format!(".{host_part}")), "{name}");
        fs::remove_dir_all(&root).unwrap();
    }
}
