//! Server policy: the decisions about peers, senders, recipients, credentials and content that
//! differ between one mail server and the next, behind one trait, so that the simulator, the
//! tests and the command line run the same session engine with different rules.
//!
//! This module does not parse or sequence anything: the session calls a policy only with
//! commands that are already valid and in order, and sends the reply the policy decides on.

use super::address::{domain_key, mailbox_key, Domain, ForwardPath, Mailbox, ReversePath};
use super::reply::{EnhancedStatus, Reply};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Who is connected: the peer's IP address as text (`192.0.2.1`, `2001:db8::1`) and port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub ip: String,
    pub port: Option<u16>,
}

impl PeerInfo {
    pub fn new(ip: impl Into<String>, port: Option<u16>) -> Self {
        PeerInfo {
            ip: ip.into(),
            port,
        }
    }

    /// The address literal for trace headers (RFC 5321 4.1.3, 4.4): `[192.0.2.1]`,
    /// `[IPv6:2001:db8::1]`; anything that is not an IP address is bracketed as is.
    pub fn address_literal(&self) -> String {
        match self.ip.parse::<std::net::IpAddr>() {
            Ok(ip) => super::trace::address_literal(ip),
            Err(_) => format!("[{}]", self.ip),
        }
    }
}

/// What the session knows when it asks the policy.
#[derive(Clone, Copy, Debug)]
pub struct SessionInfo<'a> {
    pub peer: &'a PeerInfo,
    /// The EHLO/HELO name, once given.
    pub helo_name: Option<&'a str>,
    /// The authenticated identity (RFC 4954), if any.
    pub authenticated_as: Option<&'a str>,
    /// The caller's clock, in milliseconds.
    pub now_ms: u64,
}

/// The envelope of the mail transaction a decision is about.
#[derive(Clone, Copy, Debug)]
pub struct TransactionInfo<'a> {
    pub reverse_path: &'a ReversePath,
    /// SIZE declared on MAIL (RFC 1870), if any.
    pub declared_size: Option<u64>,
    /// Recipients accepted so far.
    pub forward_paths: &'a [ForwardPath],
}

/// A policy decision: accept with the session's usual success reply, or send this reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Accept {
        why: Cow<'static, str>,
    },
    /// Send exactly `reply` (usually a 4xx or 5xx refusal; a 2xx counts as acceptance).
    Respond {
        reply: Reply,
        why: Cow<'static, str>,
        rfc: Cow<'static, str>,
    },
}

impl Decision {
    pub fn accept(why: impl Into<Cow<'static, str>>) -> Self {
        Decision::Accept { why: why.into() }
    }

    /// A one-line reply with an enhanced status code `(class, subject, detail)`.
    pub fn respond(
        code: u16,
        enhanced: (u8, u16, u16),
        text: impl Into<String>,
        why: impl Into<Cow<'static, str>>,
        rfc: impl Into<Cow<'static, str>>,
    ) -> Self {
        let (class, subject, detail) = enhanced;
        Decision::Respond {
            reply: Reply::new(
                code,
                Some(EnhancedStatus::new(class, subject, detail)),
                text,
            ),
            why: why.into(),
            rfc: rfc.into(),
        }
    }

    // The refusals of RCPT that every policy gives the same way.

    /// 550 5.7.1: mail for a domain this server does not handle, from a client that did not
    /// authenticate.
    pub fn relay_denied(domain: impl fmt::Display) -> Self {
        Decision::respond(
            550,
            (5, 7, 1),
            "Relay access denied",
            format!(
                "{domain} is not a domain this server receives mail for, and the client is \
                 not authenticated, so relaying is refused (an open relay would carry \
                 anybody's spam); Postfix answers 554 5.7.1 here by default, Exim 550"
            ),
            "RFC 5321 3.6.1, 3.6.2, 7.9, RFC 3463 3.8 (X.7.1)",
        )
    }

    /// 550 5.1.1: a local domain without that mailbox.
    pub fn user_unknown(domain: impl fmt::Display, local_part: impl fmt::Display) -> Self {
        Decision::respond(
            550,
            (5, 1, 1),
            "User unknown",
            format!(
                "{domain} is a local domain but has no mailbox \"{local_part}\"; refused at \
                 RCPT, the message stays with the SMTP client that sent it (the sender's \
                 server, or a relay on the way), and that client, not this server, tells the \
                 sender"
            ),
            "RFC 5321 3.3, RFC 3463 3.2 (X.1.1)",
        )
    }

    /// 452 4.2.2: the mailbox is at its quota, for now.
    pub fn mailbox_full_for_now() -> Self {
        Decision::respond(
            452,
            (4, 2, 2),
            "Mailbox full, try again later",
            "the mailbox is at its quota; a temporary reply lets the sender retry once the \
             owner makes room. 452's general meaning is the system's storage (RFC 5321 \
             4.2.3); the reply's text says for people that it is this mailbox, and an \
             enhanced status code X.2.2, where the server sends one, says so for programs",
            "RFC 5321 4.2.3, RFC 3463 3.3 (X.2.2)",
        )
    }
}

/// The rules of one mail server. Every method has a default that accepts (or, for
/// authentication, refuses), so a policy overrides only what it cares about.
///
/// `RCPT TO:<Postmaster>` never reaches the policy: RFC 5321 4.5.1 requires every server to
/// accept it.
pub trait Policy {
    /// Whether to serve this peer at all. A refusal is sent instead of the 220 greeting
    /// (RFC 5321 3.1: 554, then only QUIT is answered with anything but 503).
    fn check_connect(&mut self, session: &SessionInfo<'_>) -> Decision {
        let _ = session;
        Decision::accept("this server serves every peer")
    }

    /// Whether MAIL needs a prior successful AUTH (RFC 6409 4.3 on a submission port):
    /// if so, MAIL gets 530 5.7.0 until the client authenticates.
    fn auth_required(&self, session: &SessionInfo<'_>) -> bool {
        let _ = session;
        false
    }

    /// MAIL FROM, after the syntax, sequence and size checks passed.
    fn check_mail(
        &mut self,
        session: &SessionInfo<'_>,
        reverse_path: &ReversePath,
        declared_size: Option<u64>,
    ) -> Decision {
        let _ = (session, reverse_path, declared_size);
        Decision::accept("this server accepts any sender")
    }

    /// RCPT TO with a mailbox, after the syntax, sequence and recipient-limit checks passed.
    fn check_rcpt(
        &mut self,
        session: &SessionInfo<'_>,
        transaction: &TransactionInfo<'_>,
        forward_path: &Mailbox,
    ) -> Decision;

    /// VRFY (RFC 5321 3.5.3). The default gives 252: it neither confirms nor denies, as
    /// many sites configure their servers so as not to help address harvesters.
    fn check_vrfy(&mut self, session: &SessionInfo<'_>, query: &str) -> Decision {
        let _ = (session, query);
        vrfy_neither_confirms_nor_denies()
    }

    /// Checks credentials from AUTH PLAIN or LOGIN (RFC 4954, RFC 4616). `authzid` is the
    /// identity to act as, when the client asked for one different from `authcid`.
    fn authenticate(
        &mut self,
        session: &SessionInfo<'_>,
        authzid: Option<&str>,
        authcid: &str,
        password: &str,
    ) -> bool {
        let _ = (session, authzid, authcid, password);
        false
    }

    /// The whole message after the end of data (a content filter). Runs before the message
    /// is handed over for storage.
    fn check_data(
        &mut self,
        session: &SessionInfo<'_>,
        transaction: &TransactionInfo<'_>,
        data: &[u8],
    ) -> Decision {
        let _ = (session, transaction, data);
        Decision::accept("this server does not filter message content")
    }
}

/// A policy shared by several sessions, behind `$shared` (reached with `$get` to read and
/// `$get_mut` to change it): every method is the inner policy's.
macro_rules! shared_policy {
    ($(#[$doc:meta])* $shared:ty, |$this:ident| $get:expr, $get_mut:expr) => {
        $(#[$doc])*
        impl<P: Policy> Policy for $shared {
            fn check_connect(&mut self, s: &SessionInfo<'_>) -> Decision {
                let $this = self;
                $get_mut.check_connect(s)
            }
            fn auth_required(&self, s: &SessionInfo<'_>) -> bool {
                let $this = self;
                $get.auth_required(s)
            }
            fn check_mail(
                &mut self,
                s: &SessionInfo<'_>,
                r: &ReversePath,
                z: Option<u64>,
            ) -> Decision {
                let $this = self;
                $get_mut.check_mail(s, r, z)
            }
            fn check_rcpt(
                &mut self,
                s: &SessionInfo<'_>,
                t: &TransactionInfo<'_>,
                f: &Mailbox,
            ) -> Decision {
                let $this = self;
                $get_mut.check_rcpt(s, t, f)
            }
            fn check_vrfy(&mut self, s: &SessionInfo<'_>, q: &str) -> Decision {
                let $this = self;
                $get_mut.check_vrfy(s, q)
            }
            fn authenticate(
                &mut self,
                s: &SessionInfo<'_>,
                z: Option<&str>,
                c: &str,
                p: &str,
            ) -> bool {
                let $this = self;
                $get_mut.authenticate(s, z, c, p)
            }
            fn check_data(
                &mut self,
                s: &SessionInfo<'_>,
                t: &TransactionInfo<'_>,
                d: &[u8],
            ) -> Decision {
                let $this = self;
                $get_mut.check_data(s, t, d)
            }
        }
    };
}

/// VRFY's 252, which neither confirms nor denies the address (RFC 5321 3.5.3).
fn vrfy_neither_confirms_nor_denies() -> Decision {
    Decision::respond(
        252,
        (2, 0, 0),
        "Cannot VRFY user, but will accept message and attempt delivery",
        "this server does not confirm or deny addresses (VRFY would help harvesters), so it \
         answers 252, as RFC 5321 7.3 requires of a server that will not verify for security \
         reasons. Servers differ: Postfix by default checks the address (252 if it would take \
         mail for it, 550 5.1.1 if the user is unknown) unless its disable_vrfy_command turns \
         VRFY off (502 5.5.1, which 3.5.3 calls not fully compliant)",
        "RFC 5321 7.3, 3.5.3",
    )
}

shared_policy!(
    /// A policy shared by the sessions of one single-threaded simulation.
    Rc<RefCell<P>>,
    |this| this.borrow(),
    this.borrow_mut()
);

shared_policy!(
    /// A policy shared by the sessions of a threaded server (the command line's `serve`). A
    /// poisoned lock still holds a usable policy (its state is a few sets and maps), so it is
    /// used rather than turned into a panic.
    Arc<Mutex<P>>,
    |this| lock(this),
    lock(this)
);

fn lock<P>(mutex: &Mutex<P>) -> std::sync::MutexGuard<'_, P> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Most greylist entries kept; the oldest is forgotten first when full.
pub const GREYLIST_ENTRIES_MAX: usize = 10_000;

/// Greylisting's memory (RFC 6647): when each (client address, reverse-path, recipient)
/// triplet was first seen. Kept apart from any one policy so that every session of a server
/// shares it.
#[derive(Clone, Debug, Default)]
pub struct Greylist {
    first_seen_ms: BTreeMap<(String, String, String), u64>,
}

impl Greylist {
    /// [`Greylist::check`] for a recipient of a transaction, as a policy's RCPT check does
    /// it: a client that authenticated is not greylisted.
    pub fn check_rcpt(
        &mut self,
        session: &SessionInfo<'_>,
        transaction: &TransactionInfo<'_>,
        recipient: &str,
        delay_ms: u64,
    ) -> Option<Decision> {
        if session.authenticated_as.is_some() {
            return None;
        }
        // The sender as the recipient is given, without regard to case: a retry that spells
        // it otherwise is the same retry.
        let sender = match transaction.reverse_path.mailbox() {
            Some(mailbox) => mailbox.key(),
            None => "<>".to_string(),
        };
        self.check(
            &session.peer.ip,
            &sender,
            recipient,
            session.now_ms,
            delay_ms,
        )
    }

    /// `None` when the triplet may pass; otherwise the 451 4.7.1 to answer. The first attempt
    /// of a triplet is refused, and so is every retry until `delay_ms` have passed.
    pub fn check(
        &mut self,
        peer_ip: &str,
        reverse_path: &str,
        recipient: &str,
        now_ms: u64,
        delay_ms: u64,
    ) -> Option<Decision> {
        let triplet = (
            peer_ip.to_string(),
            reverse_path.to_string(),
            recipient.to_string(),
        );
        let first_ms = match self.first_seen_ms.get(&triplet) {
            Some(&first) => first,
            None => {
                if self.first_seen_ms.len() >= GREYLIST_ENTRIES_MAX {
                    let oldest = self
                        .first_seen_ms
                        .iter()
                        .min_by_key(|(_, &t)| t)
                        .map(|(k, _)| k.clone());
                    if let Some(oldest) = oldest {
                        self.first_seen_ms.remove(&oldest);
                    }
                }
                self.first_seen_ms.insert(triplet, now_ms);
                now_ms
            }
        };
        let ready_ms = first_ms.saturating_add(delay_ms);
        (now_ms < ready_ms).then(|| {
            let seen = if first_ms == now_ms {
                "first attempt for this (client, sender, recipient)".to_string()
            } else {
                format!(
                    "this (client, sender, recipient) was first seen {} s ago, less than the \
                     {} s the server waits for",
                    (now_ms - first_ms) / 1000,
                    delay_ms.div_ceil(1000)
                )
            };
            Decision::respond(
                451,
                (4, 7, 1),
                "Greylisted, please try again later",
                format!(
                    "{seen}; a real MTA queues and retries, spam software often does not. A \
                     retry is accepted once {} more seconds have passed; when it comes is up \
                     to the sender's queue (RFC 5321 4.5.4.1 asks for waits of at least 30 \
                     minutes). Greylisting servers often send 4.7.1 (milter-greylist does), \
                     though RFC 3463 defines X.7.1 for permanent refusals; others send 450 \
                     (postgrey, through Postfix)",
                    (ready_ms - now_ms).div_ceil(1000)
                ),
                "RFC 6647 2, RFC 3463 3.8",
            )
        })
    }
}

/// A ready policy for a small mail server: a set of local domains, optionally a list of
/// mailboxes, relaying on or off, full mailboxes, greylisting and a user table.
///
/// Local parts are matched without regard to case (as Postfix and Exim do by default); the
/// envelope keeps the case the client sent.
#[derive(Clone, Debug, Default)]
pub struct StaticPolicy {
    local_domains: BTreeSet<String>,
    /// `None`: every local part at a local domain exists.
    mailboxes: Option<BTreeSet<String>>,
    relay_allowed: bool,
    /// No relaying at all, not even for an authenticated client: a server that only stores
    /// mail has no queue to send other domains' mail on from.
    local_delivery_only: bool,
    full_mailboxes: BTreeSet<String>,
    mailbox_full_permanent: bool,
    greylist_delay_ms: Option<u64>,
    /// (peer ip, reverse-path, forward-path) -> first seen, in the caller's milliseconds.
    greylist: Greylist,
    users: BTreeMap<String, String>,
    auth_required: bool,
    refused_peers: BTreeSet<String>,
    vrfy_reveals: bool,
    /// The server's own names and address literals, whose postmaster it takes mail for.
    own_names: BTreeSet<String>,
}

impl StaticPolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a domain this server takes mail for (case-insensitive).
    pub fn local_domain(mut self, domain: &str) -> Self {
        self.local_domains.insert(domain_key(domain));
        self
    }

    /// Adds an existing mailbox `local@domain`. Once any is added, other local parts at the
    /// local domains are unknown users (550 5.1.1); the domain is added as local too.
    pub fn mailbox(mut self, address: &str) -> Self {
        let key = mailbox_key(address);
        if let Some((_, domain)) = key.rsplit_once('@') {
            self.local_domains.insert(domain.to_string());
        }
        self.mailboxes.get_or_insert_with(BTreeSet::new).insert(key);
        self
    }

    /// Adds a name (or an address literal, `[192.0.2.1]`) of this server itself: mail to its
    /// postmaster there is taken (RFC 5321 4.5.1; 4.1.3 for a literal), as Postfix takes it
    /// for `$myhostname` and `[$inet_interfaces]`, though the name is no mail domain of its.
    pub fn own_name(mut self, name: &str) -> Self {
        // A name written with its final dot is the same name.
        let name = name.strip_suffix('.').unwrap_or(name);
        self.own_names.insert(domain_key(name));
        self
    }

    /// Whether mail for other domains is relayed for unauthenticated clients (an open relay
    /// when true; fine on loopback, never on the Internet).
    pub fn relay_allowed(mut self, allowed: bool) -> Self {
        self.relay_allowed = allowed;
        self
    }

    /// Whether mail for other domains is refused even from an authenticated client, for a
    /// server that stores mail and relays nothing.
    pub fn local_delivery_only(mut self, only: bool) -> Self {
        self.local_delivery_only = only;
        self
    }

    /// Marks a mailbox as full.
    pub fn full_mailbox(mut self, address: &str) -> Self {
        self.full_mailboxes.insert(mailbox_key(address));
        self
    }

    /// Whether a full mailbox is refused with 552 5.2.2 (permanent) rather than 452 4.2.2.
    pub fn mailbox_full_permanent(mut self, permanent: bool) -> Self {
        self.mailbox_full_permanent = permanent;
        self
    }

    /// Greylists local recipients: the first attempt of each (peer, sender, recipient)
    /// triplet is refused with 451 4.7.1, and retries after `delay_ms` are accepted.
    pub fn greylist(mut self, delay_ms: u64) -> Self {
        self.greylist_delay_ms = Some(delay_ms);
        self
    }

    /// Adds a user who may authenticate.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.insert(name.to_string(), password.to_string());
        self
    }

    /// Requires AUTH before MAIL (a submission server, RFC 6409).
    pub fn auth_required(mut self, required: bool) -> Self {
        self.auth_required = required;
        self
    }

    /// Refuses connections from this peer IP with 554 5.7.1.
    pub fn refuse_peer(mut self, ip: &str) -> Self {
        self.refused_peers.insert(ip.to_string());
        self
    }

    /// Whether VRFY tells whether a mailbox exists (250/550) instead of answering 252.
    pub fn vrfy_reveals(mut self, reveals: bool) -> Self {
        self.vrfy_reveals = reveals;
        self
    }

    fn is_local(&self, domain: &Domain) -> bool {
        self.local_domains.contains(&domain.key())
    }

    fn is_own_postmaster(&self, mailbox: &Mailbox) -> bool {
        mailbox.local_part.eq_ignore_ascii_case("postmaster")
            && self.own_names.contains(&mailbox.domain.key())
    }

    fn mailbox_exists(&self, mailbox: &Mailbox) -> bool {
        mailbox.local_part.eq_ignore_ascii_case("postmaster")
            || self
                .mailboxes
                .as_ref()
                .is_none_or(|set| set.contains(&mailbox.key()))
    }
}

impl Policy for StaticPolicy {
    fn check_connect(&mut self, session: &SessionInfo<'_>) -> Decision {
        if self.refused_peers.contains(&session.peer.ip) {
            return Decision::respond(
                554,
                (5, 7, 1),
                "No SMTP service here",
                format!(
                    "this server's policy refuses connections from {}; RFC 5321 3.1 lets a \
                     server answer 554 instead of 220 and then wait for QUIT",
                    session.peer.ip
                ),
                "RFC 5321 3.1",
            );
        }
        Decision::accept("this peer is not on the refused list")
    }

    fn auth_required(&self, _session: &SessionInfo<'_>) -> bool {
        self.auth_required
    }

    fn check_rcpt(
        &mut self,
        session: &SessionInfo<'_>,
        transaction: &TransactionInfo<'_>,
        forward_path: &Mailbox,
    ) -> Decision {
        // The postmaster of this server by its own name or address is a local mailbox, as
        // those of its domains are (RFC 5321 4.5.1): full-mailbox and greylisting apply.
        if !self.is_local(&forward_path.domain) && !self.is_own_postmaster(forward_path) {
            if self.local_delivery_only && session.authenticated_as.is_some() {
                // Accepted here, the message would get a 250 after DATA, which takes
                // responsibility for delivering it (RFC 5321 6.1): this server could not.
                return Decision::respond(
                    550,
                    (5, 7, 1),
                    "Relay access denied",
                    format!(
                        "{} is not a domain this server receives mail for, and this server \
                         relays nothing, not even for an authenticated client: it only stores \
                         mail for its own domains, so it could not deliver this",
                        forward_path.domain
                    ),
                    "RFC 5321 6.1, RFC 3463 3.8 (X.7.1)",
                );
            }
            if let Some(user) = session.authenticated_as {
                return Decision::accept(format!(
                    "{} is not a local domain, but the client authenticated as {user}, so \
                     the server will relay it",
                    forward_path.domain
                ));
            }
            if self.relay_allowed {
                return Decision::accept(format!(
                    "{} is not a local domain; this server is configured to relay for \
                     anyone (an open relay: fine on loopback, abused within hours on the \
                     Internet)",
                    forward_path.domain
                ));
            }
            return Decision::relay_denied(&forward_path.domain);
        }
        if !self.mailbox_exists(forward_path) {
            return Decision::user_unknown(&forward_path.domain, &forward_path.local_part);
        }
        if self.full_mailboxes.contains(&forward_path.key()) {
            return if self.mailbox_full_permanent {
                Decision::respond(
                    552,
                    (5, 2, 2),
                    "Mailbox full",
                    "the mailbox is over its quota and this server reports that as \
                     permanent (552, exceeded storage allocation), though RFC 3463 says X.2.2 \
                     should be used as a persistent transient failure: the owner can make \
                     room by deleting mail",
                    "RFC 5321 4.2.2, RFC 3463 3.3 (X.2.2)",
                )
            } else {
                Decision::mailbox_full_for_now()
            };
        }
        if let Some(delay_ms) = self.greylist_delay_ms {
            let key = forward_path.key();
            if let Some(refusal) = self
                .greylist
                .check_rcpt(session, transaction, &key, delay_ms)
            {
                return refusal;
            }
        }
        Decision::accept(format!(
            "{} is a local mailbox of this server",
            forward_path
        ))
    }

    fn check_vrfy(&mut self, session: &SessionInfo<'_>, query: &str) -> Decision {
        if !self.vrfy_reveals {
            let _ = session;
            return vrfy_neither_confirms_nor_denies();
        }
        let query = query.trim().trim_start_matches('<').trim_end_matches('>');
        let found = match Mailbox::parse(query) {
            Ok(mailbox) => {
                (self.is_local(&mailbox.domain) && self.mailbox_exists(&mailbox))
                    || self.is_own_postmaster(&mailbox)
            }
            Err(_) => self.local_domains.iter().any(|d| {
                Mailbox::parse(&format!("{query}@{d}")).is_ok_and(|m| self.mailbox_exists(&m))
            }),
        };
        if found {
            Decision::respond(
                250,
                (2, 1, 5),
                query.to_string(),
                "this server is configured to reveal whether mailboxes exist",
                "RFC 5321 3.5.3",
            )
        } else {
            Decision::respond(
                550,
                (5, 1, 1),
                "User unknown",
                "this server is configured to reveal whether mailboxes exist, and this one \
                 does not",
                "RFC 5321 3.5.3",
            )
        }
    }

    fn authenticate(
        &mut self,
        _session: &SessionInfo<'_>,
        authzid: Option<&str>,
        authcid: &str,
        password: &str,
    ) -> bool {
        credentials_match(&self.users, authzid, authcid, password)
    }
}

/// Whether `authcid` may log in with `password`, given users and their passwords.
/// RFC 4616 2: acting as someone else (an `authzid` other than the `authcid`) needs an
/// authorisation rule, which the simple policies here do not have, so it is refused.
pub fn credentials_match(
    users: &BTreeMap<String, String>,
    authzid: Option<&str>,
    authcid: &str,
    password: &str,
) -> bool {
    authzid.is_none_or(|z| z == authcid) && users.get(authcid).is_some_and(|p| p == password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_match_only_the_user_acting_as_itself() {
        let users = BTreeMap::from([("alice".to_string(), "secret".to_string())]);
        assert!(credentials_match(&users, None, "alice", "secret"));
        assert!(credentials_match(&users, Some("alice"), "alice", "secret"));
        assert!(!credentials_match(&users, Some("bob"), "alice", "secret"));
        assert!(!credentials_match(&users, None, "alice", "wrong"));
        assert!(!credentials_match(&users, None, "bob", "secret"));
    }

    fn rcpt(policy: &mut StaticPolicy, to: &str, auth: Option<&str>, now_ms: u64) -> Decision {
        rcpt_from(policy, ReversePath::Null, to, auth, now_ms)
    }

    fn rcpt_from(
        policy: &mut StaticPolicy,
        reverse_path: ReversePath,
        to: &str,
        auth: Option<&str>,
        now_ms: u64,
    ) -> Decision {
        let peer = PeerInfo::new("192.0.2.1", None);
        let session = SessionInfo {
            peer: &peer,
            helo_name: Some("client.example"),
            authenticated_as: auth,
            now_ms,
        };
        let transaction = TransactionInfo {
            reverse_path: &reverse_path,
            declared_size: None,
            forward_paths: &[],
        };
        policy.check_rcpt(&session, &transaction, &Mailbox::parse(to).unwrap())
    }

    fn code(decision: &Decision) -> u16 {
        match decision {
            Decision::Accept { .. } => 250,
            Decision::Respond { reply, .. } => reply.code,
        }
    }

    #[test]
    fn static_policy_decisions() {
        let mut policy = StaticPolicy::new()
            .mailbox("alice@example.org")
            .full_mailbox("bob@example.org")
            .mailbox("bob@example.org");
        assert_eq!(code(&rcpt(&mut policy, "alice@example.org", None, 0)), 250);
        assert_eq!(code(&rcpt(&mut policy, "ALICE@EXAMPLE.ORG", None, 0)), 250);
        assert_eq!(code(&rcpt(&mut policy, "carol@example.org", None, 0)), 550);
        assert_eq!(
            code(&rcpt(&mut policy, "postmaster@example.org", None, 0)),
            250
        );
        assert_eq!(code(&rcpt(&mut policy, "bob@example.org", None, 0)), 452);
        assert_eq!(
            code(&rcpt(&mut policy, "x@elsewhere.example", None, 0)),
            550
        );
        assert_eq!(
            code(&rcpt(&mut policy, "x@elsewhere.example", Some("alice"), 0)),
            250
        );
    }

    #[test]
    fn greylisting_lets_retries_through() {
        let mut policy = StaticPolicy::new()
            .local_domain("example.org")
            .greylist(60_000);
        assert_eq!(code(&rcpt(&mut policy, "a@example.org", None, 1_000)), 451);
        assert_eq!(code(&rcpt(&mut policy, "a@example.org", None, 30_000)), 451);
        assert_eq!(code(&rcpt(&mut policy, "a@example.org", None, 61_000)), 250);
        assert_eq!(code(&rcpt(&mut policy, "b@example.org", None, 61_000)), 451);
    }

    #[test]
    fn a_greylisted_retry_may_spell_the_sender_otherwise() {
        let mut policy = StaticPolicy::new()
            .local_domain("example.org")
            .greylist(60_000);
        let from = |text: &str| ReversePath::Mailbox(Mailbox::parse(text).unwrap());
        let first = rcpt_from(
            &mut policy,
            from("Alice@Sender.TEST"),
            "a@example.org",
            None,
            0,
        );
        assert_eq!(code(&first), 451);
        let retry = rcpt_from(
            &mut policy,
            from("alice@sender.test"),
            "A@example.org",
            None,
            61_000,
        );
        assert_eq!(code(&retry), 250);
    }

    #[test]
    fn the_postmaster_by_the_servers_own_name_or_address_is_a_local_mailbox() {
        let mut policy = StaticPolicy::new()
            .mailbox("bob@example.org")
            .local_delivery_only(true)
            .vrfy_reveals(true)
            .own_name("mx.example.org.")
            .own_name("[IPv6:::ffff:192.0.2.1]");
        for to in ["Postmaster@MX.example.org", "postmaster@[192.0.2.1]"] {
            assert_eq!(code(&rcpt(&mut policy, to, None, 0)), 250, "{to}");
        }
        assert_eq!(code(&rcpt(&mut policy, "bob@mx.example.org", None, 0)), 550);
        assert_eq!(
            code(&rcpt(&mut policy, "postmaster@other.example", None, 0)),
            550
        );
        let peer = PeerInfo::new("192.0.2.9", None);
        let session = SessionInfo {
            peer: &peer,
            helo_name: None,
            authenticated_as: None,
            now_ms: 0,
        };
        assert_eq!(
            code(&policy.check_vrfy(&session, "postmaster@mx.example.org")),
            250
        );
        // Like any local mailbox, it can be full, and greylisted.
        let mut full = StaticPolicy::new()
            .own_name("mx.example.org")
            .full_mailbox("postmaster@mx.example.org");
        assert_eq!(
            code(&rcpt(&mut full, "postmaster@mx.example.org", None, 0)),
            452
        );
        let mut greylisted = StaticPolicy::new()
            .own_name("mx.example.org")
            .greylist(1_000);
        assert_eq!(
            code(&rcpt(&mut greylisted, "postmaster@mx.example.org", None, 0)),
            451
        );
    }

    #[test]
    fn credentials() {
        let mut policy = StaticPolicy::new().user("alice", "secret");
        let peer = PeerInfo::new("::1", Some(25));
        assert_eq!(peer.address_literal(), "[IPv6:::1]");
        let session = SessionInfo {
            peer: &peer,
            helo_name: None,
            authenticated_as: None,
            now_ms: 0,
        };
        assert!(policy.authenticate(&session, None, "alice", "secret"));
        assert!(policy.authenticate(&session, Some("alice"), "alice", "secret"));
        assert!(!policy.authenticate(&session, Some("bob"), "alice", "secret"));
        assert!(!policy.authenticate(&session, None, "alice", "wrong"));
        assert!(!policy.authenticate(&session, None, "mallory", ""));
    }
}
