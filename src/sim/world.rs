//! The simulated mail world: user agents, submission and relay servers with their queues, DNS,
//! the MDA and POP3, all driven by one event queue in simulated time, with every step written
//! to the trace.
//!
//! Time jumps from event to event; one seeded generator is the only randomness, and every
//! collection is ordered, so a scenario and a seed always give the same trace. The protocol
//! engines are the same sans-I/O sessions that `smtp-lab serve` and `send` put on real sockets.

use super::rng::SimRng;
use super::scenario::{
    scripted_reply, BareLineEndingSpec, FaultKind, FetchSpec, HostSpec, MessageSpec, Scenario,
    StallPoint,
};
use super::trace;
use super::trace::{
    target_label, ConnId, Direction, EntryId, Event, Fate, Name, Protocol, ReplyNote, StateName,
    Trace, TraceEvent, WireBytes,
};
use crate::dns::{
    DomainName, MxCache, MxFailure, MxNote, MxOutcome, MxResolution, MxResolver,
    Outcome as DnsOutcome,
};
use crate::mail::compose::{compose, envelope_address, ComposeRequest};
use crate::mail::dsn::{
    build_dsn, Action as DsnAction, Diagnostic, DsnRequest, RecipientReport, ReturnContent,
};
use crate::pop3;
use crate::pop3::client::{Pop3Client, Pop3ClientConfig, Pop3ClientEvent};
use crate::pop3::maildrop::{Maildrop, MaildropStore, OpenError, StoredMessage};
use crate::pop3::server::{Pop3Server, Pop3ServerConfig, Pop3ServerEvent};
use crate::smtp::address::{
    distinct_recipients, domain_key, local_part_wire, mailbox_key, AddressLiteral, Domain,
    ForwardPath, Mailbox, ReversePath,
};
use crate::smtp::client::{
    ClientConfig, ClientEvent, ClientSession, DsnParameters, Envelope, RecipientOutcome,
    RecipientStatus, ReplyOrigin, SessionOutcome,
};
use crate::smtp::data_in::BareLineEnding;
use crate::smtp::dsn_params::{DsnReturn, NoticeEvent, RecipientDsn};
use crate::smtp::explain::Explanation;
use crate::smtp::policy::{
    credentials_match, Decision, Greylist, PeerInfo, Policy, SessionInfo, TransactionInfo,
};
use crate::smtp::reply::{Decimal, EnhancedStatus, Reply};
use crate::smtp::server::{
    ReceivedMessage, ServerConfig, ServerEvent, ServerSession, StorageOutcome,
};
use crate::smtp::trace::{
    address_literal, count_header_fields, has_utf8_header_fields, leading_field_len,
    local_received_header, push_ipv4, push_without_return_path, received_header,
    remove_header_fields, separate_body, ReceivedFields, WithProtocol,
};
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{hash_map, BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;

/// Most events one run may record; a run that reaches it stops with what it has. Its report
/// (an outcome per recipient, and the conservation check) comes on top, as it does on top of
/// `RUN_OCTETS_MAX`.
pub const TRACE_EVENTS_MAX: usize = 20_000_000;
/// Most memory one run may take (about: see `Event::heap_octets`): its trace, which holds
/// every byte sent, and so bounds the copies queues keep of what they received; the messages
/// its mailboxes store; and those its clients are sending. A run that reaches it stops with
/// what it has. S10k takes about 60 MB. A scenario can ask for far more (a retry every second
/// for a year, a large message to a thousand mailboxes), which would exhaust the machine's
/// memory or a browser tab's.
pub const RUN_OCTETS_MAX: usize = 384 * 1024 * 1024;
/// More than a `delivered` event takes (its names are bounded by validation's limits).
const DELIVERY_EVENT_OCTETS_MAX: usize = 4096;

/// Most trace events reserved before a run starts (see `World::new`).
const TRACE_EVENTS_RESERVED_MAX: usize = 1 << 20;
/// Trace events reserved per message of the scenario (see `World::new`).
const EVENTS_PER_MESSAGE_RESERVED: usize = 64;
/// Most simulation steps (scheduled actions) in one run.
pub const STEPS_MAX: u64 = 50_000_000;

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub trace: Trace,
    /// (message, recipient, fate), in the order the messages were created.
    pub outcomes: Vec<(String, String, Fate)>,
    pub conservation_problems: Vec<String>,
    /// What each mailbox holds at the end, by address.
    pub mailboxes: BTreeMap<String, MailboxContents>,
}

/// A mailbox's messages in arrival order: (uid, message bytes), the bytes shared with the
/// mailbox rather than copied.
pub type MailboxContents = Vec<(String, Rc<Vec<u8>>)>;

/// Runs a (validated) scenario with a seed.
pub fn run(scenario: &Scenario, seed: u64) -> RunResult {
    let mut world = World::new(ScenarioRef::Borrowed(scenario), seed);
    while !world.run_some(u64::MAX) {}
    world.finish()
}

/// A run made a slice at a time, so that a page can draw between slices and say how far the
/// run has got: the same run as [`run`] makes, event for event.
pub struct RunInSlices {
    world: World<'static>,
    done: bool,
}

impl RunInSlices {
    /// The run of a (validated) scenario with a seed, not started.
    pub fn new(scenario: Rc<Scenario>, seed: u64) -> RunInSlices {
        RunInSlices {
            world: World::new(ScenarioRef::Shared(scenario), seed),
            done: false,
        }
    }

    /// Runs at most `actions` more scheduled actions; whether the run is over.
    pub fn advance(&mut self, actions: u64) -> bool {
        if !self.done {
            self.done = self.world.run_some(actions);
        }
        self.done
    }

    /// How many events the run has recorded so far.
    pub fn events(&self) -> usize {
        self.world.events.len()
    }

    /// The simulated time the run has reached.
    pub fn now_ms(&self) -> u64 {
        self.world.now_ms
    }

    /// The run's result: what remains is run first.
    pub fn finish(mut self) -> RunResult {
        while !self.advance(u64::MAX) {}
        self.world.finish()
    }
}

/// The scenario a world runs: borrowed for a run made at once, shared for one made in slices
/// (which outlives the call that starts it).
#[derive(Clone)]
enum ScenarioRef<'a> {
    Borrowed(&'a Scenario),
    Shared(Rc<Scenario>),
}

impl std::ops::Deref for ScenarioRef<'_> {
    type Target = Scenario;

    fn deref(&self) -> &Scenario {
        match self {
            ScenarioRef::Borrowed(scenario) => scenario,
            ScenarioRef::Shared(scenario) => scenario,
        }
    }
}

// ----- shared state: mailboxes -----

#[derive(Clone, Debug)]
struct StoredMail {
    uid: String,
    bytes: Rc<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct MailboxState {
    address: String,
    host: usize,
    password: Option<String>,
    quota_octets: Option<u64>,
    used_octets: u64,
    messages: Vec<StoredMail>,
    next_uid: u32,
    /// A POP3 session holds the maildrop (RFC 1939 8).
    locked: bool,
}

#[derive(Debug, Default)]
struct MailStore {
    /// By lower-cased address.
    mailboxes: BTreeMap<String, MailboxState>,
}

type SharedStore = Rc<RefCell<MailStore>>;

/// A host's greylisting memory, shared by all its sessions.
type SharedGreylist = Rc<RefCell<Greylist>>;

// ----- the servers' policy -----

/// The rules a simulated host's SMTP server follows, read from its scenario entry; mailbox
/// fullness comes from the live mail store.
struct SimPolicy {
    host: usize,
    local_domains: Rc<BTreeSet<String>>,
    relay_domains: Rc<BTreeSet<String>>,
    users: Rc<BTreeMap<String, String>>,
    submission: bool,
    /// MAIL FROM of an authenticated client must be an address its user owns.
    reject_sender_login_mismatch: bool,
    greylist_delay_ms: Option<u64>,
    greylist: SharedGreylist,
    store: SharedStore,
    /// A `busy` fault was active when the connection arrived.
    busy: bool,
    /// A `refuse` fault was active when the connection arrived (and no `busy` one).
    refusing: bool,
    /// The replies `reply` faults active when the connection arrived give MAIL, RCPT or the
    /// final dot (the first listed for each).
    scripted_replies: Vec<(StallPoint, Reply)>,
    hostname: Name,
    address: IpAddr,
    /// The key of the mailbox this host's `<Postmaster>` goes into.
    postmaster_key: Rc<str>,
}

impl SimPolicy {
    /// For mail to `address` (a key) at this host, chosen as the MDA chooses
    /// ([`delivery_mailbox`]): whether `address` has a mailbox here, and whether the mailbox
    /// the mail goes into is at its quota. `own_postmaster` when the address names this host's
    /// postmaster by its name or address literal.
    fn delivery_target(&self, address: &str, own_postmaster: bool) -> (bool, bool) {
        let store = self.store.borrow();
        let postmaster = &*self.postmaster_key;
        let key = delivery_mailbox(
            &store,
            self.host,
            &self.local_domains,
            postmaster,
            address,
            own_postmaster,
        );
        let target = store
            .mailboxes
            .get(key)
            .filter(|m| may_deliver_into(m.host, key, self.host, &self.local_domains, postmaster));
        let full =
            target.is_some_and(|m| m.quota_octets.is_some_and(|quota| m.used_octets >= quota));
        (key == address && target.is_some(), full)
    }
}

/// How the MDA's refusal for a mailbox over its quota begins, by which the step's note knows
/// it.
pub(crate) const OVER_QUOTA: &str = "over quota";

/// Whether `host` may store mail in the mailbox `key`, kept by `keeper`: its own mailboxes,
/// and the postmaster mailbox of a domain it serves or of its own (RFC 5321 4.5.1), wherever
/// it is kept, as sites alias postmaster to one administrator.
fn may_deliver_into(
    keeper: usize,
    key: &str,
    host: usize,
    local_domains: &BTreeSet<String>,
    postmaster: &str,
) -> bool {
    keeper == host
        || (key.starts_with("postmaster@")
            && (local_domains.contains(&domain_of(key)) || key == postmaster))
}

/// `text` as a policy reply may echo it: printable ASCII only (RFC 5321 4.2, `textstring`),
/// and short enough that the reply line, with the rest of its text, stays within 512 octets
/// (4.5.3.1.5); otherwise it is left out, as the server leaves out a non-ASCII path.
fn shown_in_reply(text: &str) -> Option<&str> {
    const ECHOED_MAX_OCTETS: usize = 200;
    let printable = text.bytes().all(|b| b == b'\t' || (32..=126).contains(&b));
    (printable && text.len() <= ECHOED_MAX_OCTETS).then_some(text)
}

/// Whether the submission user `user` owns the address `sender`: the user's own name at one
/// of the host's domains (`alice` owns `alice@a.test`), or the user name itself when it is an
/// address. Compared without regard to case, as Postfix's login maps look names up.
fn login_owns(user: &str, sender: &Mailbox, local_domains: &BTreeSet<String>) -> bool {
    let sender = sender.key();
    if user.contains('@') {
        return mailbox_key(user).eq_ignore_ascii_case(&sender);
    }
    local_domains
        .iter()
        .any(|domain| mailbox_key(&[user, "@", domain].concat()).eq_ignore_ascii_case(&sender))
}

/// The key of the mailbox that mail for `recipient` (a key) goes into at `host`: its own,
/// when `host` may deliver into it; for `own_postmaster` (the host's postmaster by its name
/// or address literal) without one, the host's postmaster mailbox, as `<Postmaster>` goes
/// (RFC 5321 4.5.1, 4.1.3). One choice for the server's RCPT check and for the MDA.
fn delivery_mailbox<'k>(
    store: &MailStore,
    host: usize,
    local_domains: &BTreeSet<String>,
    postmaster: &'k str,
    recipient: &'k str,
    own_postmaster: bool,
) -> &'k str {
    let usable = store
        .mailboxes
        .get(recipient)
        .is_some_and(|m| may_deliver_into(m.host, recipient, host, local_domains, postmaster));
    if own_postmaster && !usable {
        postmaster
    } else {
        recipient
    }
}

impl SimPolicy {
    /// A submission server's refusal of an envelope address whose domain is not fully
    /// qualified: a single label such as `a`, which only a local resolver's search list could
    /// complete. RFC 6409 4.2: "The MSA MUST ensure that all domains in the SMTP envelope are
    /// fully-qualified", with 554 for a MAIL or RCPT that is not; RFC 5321 2.3.5: local
    /// aliases "MUST NOT appear in any SMTP transaction". `<Postmaster>` alone is not a
    /// mailbox, an address literal is complete, and so is a domain this host serves or relays
    /// for, however the scenario named it. A relay takes what it is given.
    fn not_fully_qualified(
        &self,
        mailbox: &Mailbox,
        status: (u8, u16, u16),
        role: &str,
    ) -> Option<Decision> {
        let Domain::Name(name) = &mailbox.domain else {
            return None;
        };
        if !self.submission {
            return None;
        }
        let qualified = |domain: &str| domain.trim_end_matches('.').contains('.');
        if name.is_ascii() && qualified(name) {
            return None;
        }
        // Labels are counted in the A-label form, where IDNA has made every dot an ASCII one
        // (`例え。jp` is `xn--r8jz45g.jp`). A single label the scenario made one of this
        // host's domains is complete here.
        let key = domain_key(name);
        if qualified(&key) || self.local_domains.contains(&key) || self.relay_domains.contains(&key)
        {
            return None;
        }
        let address = mailbox.key();
        let shown = shown_in_reply(&address).map_or(String::new(), |a| format!("<{a}>: "));
        Some(Decision::respond(
            554,
            status,
            format!("{shown}{role} address rejected: need fully-qualified address"),
            format!(
                "{name} is a single label, not a fully-qualified domain: a submission server \
                 must make sure every domain in the envelope is one, and refuse the command \
                 with 554 when it is not (as Postfix does with reject_non_fqdn_sender and \
                 reject_non_fqdn_recipient, though with 504): a name like {name} means \
                 something only on the writer's own network, and mail to or from it could \
                 never be answered or delivered"
            ),
            "RFC 6409 4.2, RFC 5321 2.3.5",
        ))
    }

    /// What a `reply` fault has this server answer at `at`, if one does: the scenario's
    /// reply, in place of what the server's own rules would have said.
    fn scripted(&self, at: StallPoint, what: &str) -> Option<Decision> {
        let (_, reply) = self
            .scripted_replies
            .iter()
            .find(|(point, _)| *point == at)?;
        let class = if reply.code / 100 == 4 {
            "A 4yz reply is a temporary failure: the same command may work later (RFC 5321 \
             4.2.1)"
        } else {
            "A 5yz reply is a permanent failure: the same command would fail again (RFC 5321 \
             4.2.1)"
        };
        let kept = if at == StallPoint::Dot {
            "; refused after its data, the message is not this server's to deliver (RFC 5321 \
             6.1): the client still has it"
        } else {
            ""
        };
        Some(Decision::Respond {
            reply: reply.clone(),
            why: format!(
                "this server answers {what} with a reply set for this run (a reply fault, \
                 given by the scenario or chosen in the message dialog), in place of what its \
                 own rules would have answered. {class}{kept}"
            )
            .into(),
            rfc: "RFC 5321 4.2".into(),
        })
    }
}

impl Policy for SimPolicy {
    fn check_connect(&mut self, _session: &SessionInfo<'_>) -> Decision {
        if self.refusing && !self.busy {
            return Decision::Respond {
                reply: Reply::new(
                    554,
                    Some(EnhancedStatus::new(5, 3, 2)),
                    format!("{} No SMTP service here", self.hostname),
                ),
                why: "this server refuses to serve (a refuse fault in the scenario): RFC 5321 \
                      3.1 lets it answer 554 instead of 220; it must then wait for QUIT, and \
                      should answer anything else with 503; a sending server rules this host out \
                      and tries the next MX, as Postfix does, and a user agent, which keeps no \
                      queue, tells its user"
                    .into(),
                rfc: "RFC 5321 3.1".into(),
            };
        }
        if !self.busy {
            return Decision::accept("this server serves every peer");
        }
        Decision::Respond {
            reply: Reply::new(
                421,
                Some(EnhancedStatus::new(4, 3, 2)),
                format!("{} Service not available, try again later", self.hostname),
            ),
            why: "this server cannot serve now (a busy fault in the scenario): it says so at \
                  the greeting with 421 and closes the connection; a sending server tries \
                  another MX or tries again later, and a user agent, which keeps no queue, \
                  tells its user"
                .into(),
            rfc: "RFC 5321 3.8".into(),
        }
    }

    fn auth_required(&self, _session: &SessionInfo<'_>) -> bool {
        self.submission
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

    fn check_mail(
        &mut self,
        session: &SessionInfo<'_>,
        reverse_path: &ReversePath,
        _declared_size: Option<u64>,
    ) -> Decision {
        if let Some(scripted) = self.scripted(StallPoint::Mail, "MAIL") {
            return scripted;
        }
        if let ReversePath::Mailbox(sender) = reverse_path {
            if let Some(refusal) = self.not_fully_qualified(sender, (5, 1, 8), "Sender") {
                return refusal;
            }
        }
        // RFC 6409 6.1 lets a submission server refuse a sender "not authorized with the
        // authentication used"; the null reverse-path names no one and is not checked.
        let (true, Some(user), ReversePath::Mailbox(sender)) = (
            self.reject_sender_login_mismatch,
            session.authenticated_as,
            reverse_path,
        ) else {
            return Decision::accept(match (reverse_path, session.authenticated_as) {
                (ReversePath::Null, _) => {
                    "the null reverse path names no one, so there is no sender to check, and \
                     a server must take it (RFC 1123 5.2.9)"
                }
                // What real receiving servers check here (SPF, DMARC, reputation) is not
                // simulated.
                (_, None) => {
                    "a receiving server takes mail from any sender here (real ones may check \
                     the sender's domain with SPF, and after the data the From: header's with \
                     DMARC, which this simulator does not do)"
                }
                (_, Some(_)) => {
                    "this server does not check whether the login owns the sender (a \
                     submission server may refuse one it does not, RFC 6409 6.1)"
                }
            });
        };
        if login_owns(user, sender, &self.local_domains) {
            return Decision::accept(
                "the sender is the authenticated user's own address, which this submission \
                 server checks (RFC 6409 6.1)",
            );
        }
        // Postfix's reply for `reject_sender_login_mismatch`: 553 (RFC 6409 6.1 names
        // 550) with X.7.1, delivery not authorized (RFC 3463).
        let sender_text = sender.to_string();
        let shown_sender =
            shown_in_reply(&sender_text).map_or(String::new(), |s| format!("<{s}>: "));
        let owner = shown_in_reply(user).map_or("the authenticated user".to_string(), |u| {
            format!("user {u}")
        });
        Decision::respond(
            553,
            (5, 7, 1),
            format!("{shown_sender}Sender address rejected: not owned by {owner}"),
            format!(
                "the client logged in as {user}, who may send as their own address only, and \
                 {sender} is not theirs: a submission server may refuse a sender the \
                 authentication does not allow, so that no user writes mail as another. RFC \
                 6409 names 550 with 5.7.1 for this; this server answers as Postfix's \
                 reject_sender_login_mismatch does: 553 (\"mailbox name not allowed\") with \
                 5.7.1."
            ),
            "RFC 6409 6.1, RFC 5321 4.2.3 (553), RFC 3463 3.8 (X.7.1)",
        )
    }

    fn check_rcpt(
        &mut self,
        session: &SessionInfo<'_>,
        transaction: &TransactionInfo<'_>,
        forward_path: &Mailbox,
    ) -> Decision {
        if let Some(scripted) = self.scripted(StallPoint::Rcpt, "RCPT") {
            return scripted;
        }
        if let Some(refusal) = self.not_fully_qualified(forward_path, (5, 1, 2), "Recipient") {
            return refusal;
        }
        let address = forward_path.key();
        // After the last "@" (a quoted local part may hold one; a domain never does).
        let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
        let why = if self.local_domains.contains(domain) {
            let postmaster = forward_path.local_part.eq_ignore_ascii_case("postmaster");
            let own_postmaster = postmaster && names_host(domain, &self.hostname, self.address);
            // A domain's postmaster is one mailbox, whichever of the hosts that serve the
            // domain keeps it (see `may_deliver_into`).
            let (exists, full) = self.delivery_target(&address, own_postmaster);
            if full {
                return Decision::mailbox_full_for_now();
            }
            match exists {
                true if postmaster => {
                    "every mail domain has a postmaster (RFC 5321 4.5.1), and this is one of \
                     this server's domains"
                }
                true => "the recipient's domain is local here and the mailbox exists",
                // Every mail domain has a postmaster (RFC 5321 4.5.1); the MDA makes the
                // mailbox when the first message for it arrives.
                false if postmaster => {
                    "every mail domain has a postmaster, and this is one of this server's \
                     domains (RFC 5321 4.5.1)"
                }
                false => return Decision::user_unknown(domain, &forward_path.local_part),
            }
        } else if forward_path.local_part.eq_ignore_ascii_case("postmaster")
            && domain.eq_ignore_ascii_case(&self.hostname)
        {
            // The postmaster of this host by its own name (RFC 5321 4.5.1), as Postfix takes
            // mail for $myhostname; the MDA delivers it to the host's postmaster.
            if self.delivery_target(&address, true).1 {
                return Decision::mailbox_full_for_now();
            }
            "this is the postmaster of this host by its own name (RFC 5321 4.5.1)"
        } else if forward_path.local_part.eq_ignore_ascii_case("postmaster")
            && is_literal_of(domain, self.address)
        {
            // And by its own address literal (RFC 5321 4.1.3), as Postfix takes mail for
            // [$inet_interfaces].
            if self.delivery_target(&address, true).1 {
                return Decision::mailbox_full_for_now();
            }
            "this is the postmaster of this host by its own address (RFC 5321 4.1.3, 4.5.1)"
        } else if self.relay_domains.contains(domain) {
            "this server relays mail for the recipient's domain"
        } else if names_host(domain, &self.hostname, self.address) {
            // This host itself, by its name or address literal, which is not one of its mail
            // domains: it keeps only its postmaster there, so anyone else is unknown here,
            // not someone to relay to.
            return Decision::respond(
                550,
                (5, 1, 1),
                "User unknown",
                format!(
                    "{domain} is this server itself, but not one of its mail domains: at its \
                     own name or address only postmaster is taken (RFC 5321 4.5.1), so \"{}\" \
                     is unknown there; anyone else is reached at a mail domain",
                    forward_path.local_part
                ),
                "RFC 5321 4.1.3, 4.5.1, RFC 3463 3.2 (X.1.1)",
            );
        } else if session.authenticated_as.is_some() {
            "the client has authenticated, so this server relays its mail to any domain \
             (RFC 6409, RFC 4954)"
        } else {
            return Decision::relay_denied(domain);
        };
        if let Some(delay_ms) = self.greylist_delay_ms {
            let refusal =
                self.greylist
                    .borrow_mut()
                    .check_rcpt(session, transaction, &address, delay_ms);
            if let Some(refusal) = refusal {
                return refusal;
            }
            // Why the greylist lets it through, where it refused the first time (RFC 6647 2).
            if session.authenticated_as.is_none() && delay_ms > 0 {
                return Decision::accept(format!(
                    "{why}; and the greylist has seen this (client address, sender, \
                     recipient) before, at least {} seconds ago, so it passes now (a retry, or \
                     a later message with the same three) (RFC 6647 2)",
                    delay_ms / 1000
                ));
            }
        }
        Decision::accept(why)
    }

    /// The message, after its final dot: this simulator's servers filter no content, but a
    /// `reply` fault may refuse it there.
    fn check_data(
        &mut self,
        _session: &SessionInfo<'_>,
        _transaction: &TransactionInfo<'_>,
        _data: &[u8],
    ) -> Decision {
        self.scripted(StallPoint::Dot, "the message")
            .unwrap_or_else(|| Decision::accept("this server does not filter message content"))
    }
}

/// POP3's view of the simulated mail store. Opening a maildrop takes its lock, so that a
/// second session for the same mailbox is refused `[IN-USE]` (RFC 1939 8, RFC 2449 8.1.2);
/// the lock is released when the session closes, or at the latest when it is dropped.
struct SimMaildrop {
    host: usize,
    store: SharedStore,
    /// The mailbox this session locked, by lower-cased address.
    locked: Option<String>,
    /// How many messages it held when it was locked.
    opened_with: usize,
}

impl Drop for SimMaildrop {
    fn drop(&mut self) {
        self.release();
    }
}

impl MaildropStore for SimMaildrop {
    fn release(&mut self) {
        if let Some(key) = self.locked.take() {
            if let Some(mailbox) = self.store.borrow_mut().mailboxes.get_mut(&key) {
                mailbox.locked = false;
            }
        }
    }

    fn open(&mut self, user: &str, password: &str) -> Result<Maildrop, OpenError> {
        // A login the server then refused (back to USER in the same session) holds nothing.
        self.release();
        let key = mailbox_key(user);
        let mut store = self.store.borrow_mut();
        let mailbox = store
            .mailboxes
            .get_mut(&key)
            .filter(|m| m.host == self.host && m.password.as_deref() == Some(password))
            .ok_or(OpenError::BadCredentials)?;
        if mailbox.locked {
            return Err(OpenError::InUse);
        }
        mailbox.locked = true;
        self.opened_with = mailbox.messages.len();
        let maildrop = Maildrop::new(
            mailbox
                .messages
                .iter()
                .map(|m| StoredMessage::new(m.uid.clone(), m.bytes.as_ref().clone()))
                .collect(),
        );
        drop(store);
        self.locked = Some(key);
        Ok(maildrop)
    }

    fn arrived_since_open(&self) -> usize {
        let Some(key) = &self.locked else {
            return 0;
        };
        // The lock keeps other sessions from removing any: the maildrop only grows meanwhile.
        self.store.borrow().mailboxes.get(key).map_or(0, |mailbox| {
            mailbox.messages.len().saturating_sub(self.opened_with)
        })
    }
}

// ----- hosts, queues, connections -----

/// Why a recipient was not delivered: the reply that says so, and whether a server sent it
/// or this host found it itself (a refused connection, a null MX, an expired retry time). A
/// delivery report must not present the host's own findings as a server's reply (RFC 3464
/// 2.3.6).
#[derive(Clone, Debug)]
struct Failure {
    reply: Reply,
    origin: ReplyOrigin,
    /// The server of the session it happened in, when one was reached (RFC 3464 2.3.5).
    remote: Option<String>,
    /// This host stopped trying: the failure was the last of a recipient whose time in the
    /// queue ran out (RFC 5321 4.5.4.1).
    expired: bool,
    /// A server's permanent refusal before any transaction (a `554` greeting) in an attempt
    /// where another target failed only for now: the refusal rules out its host, and the
    /// attempt counts as failed for now, since a later one may find a better host serving.
    counted_temporary: bool,
    /// An address this host skipped, having failed to connect to it a short while before
    /// (RFC 5321 4.5.4.1): no attempt of this message met the failure itself.
    suspended: bool,
}

impl Failure {
    /// What the client engine reported for a recipient in a session with `remote`, with who
    /// gave the reply.
    fn of_recipient(recipient: &RecipientOutcome, remote: &str) -> Failure {
        Failure {
            reply: recipient.status.reply().clone(),
            origin: recipient.reply_origin,
            remote: Some(remote.to_string()),
            expired: false,
            counted_temporary: false,
            suspended: false,
        }
    }

    /// What this host found itself, with no server reached.
    fn local(reply: Reply) -> Failure {
        Failure {
            reply,
            origin: ReplyOrigin::Client,
            remote: None,
            expired: false,
            counted_temporary: false,
            suspended: false,
        }
    }

    /// Whether the reply of [`Failure::final_reply`] is this host's, not a server's: found
    /// by the host itself, or written by it when the retry time ran out.
    fn is_own_finding(&self) -> bool {
        self.expired || self.origin == ReplyOrigin::Client
    }

    /// The reply a recipient's fate and its report's status come from. For an expired
    /// recipient, this host's own: RFC 3463 X.4.7 (delivery time expired) asks for "the code
    /// for the actual problem found when delivery was attempted" rather than its own, so the
    /// code and status are the last failure's, and X.4.7 only when it had none. Postfix
    /// does the same.
    fn final_reply(&self) -> Reply {
        if !self.expired {
            return self.reply.clone();
        }
        let last = match self.origin {
            ReplyOrigin::Server => format!("last reply: {}", reply_text(&self.reply)),
            ReplyOrigin::Client => format!("last error: {}", self.reply.text()),
        };
        let code = match self.reply.code {
            code @ 400..=499 => code,
            _ => 451,
        };
        let status = self
            .reply
            .enhanced
            .map(|status| self.as_counted(status))
            .filter(|status| status.class == 4)
            .unwrap_or(EnhancedStatus::new(4, 4, 7));
        Reply::new(code, Some(status), format!("delivery time expired; {last}"))
    }

    /// `status` in the class the failure counts in: a permanent refusal counted as temporary
    /// reports its detail under class 4 (RFC 3463 2: the class says whether the same message
    /// may be sent again), as Postfix does with it.
    fn as_counted(&self, status: EnhancedStatus) -> EnhancedStatus {
        if self.counted_temporary && status.class == 5 {
            EnhancedStatus::new(4, status.subject, status.detail)
        } else {
            status
        }
    }

    /// The status a delivery report gives the recipient.
    fn status(&self) -> EnhancedStatus {
        self.as_counted(status_of(&self.final_reply()))
    }

    /// What a delivery report says about it. A server's reply is that server's diagnostic,
    /// even when it was the last of an expired recipient (the report's text says that the
    /// host gave up); what this host found itself is its own.
    fn diagnostic(&self) -> Diagnostic {
        match self.origin {
            ReplyOrigin::Server => Diagnostic::Smtp(self.reply.clone()),
            ReplyOrigin::Client => Diagnostic::Local(self.final_reply().text()),
        }
    }
}

/// Recipients of a message, each with what a notice says of it.
type Reports = Vec<(String, Failure)>;

/// What a message's sender asked of DSN when a host took it (RFC 3461 4): RET and ENVID,
/// and NOTIFY and ORCPT by recipient.
#[derive(Clone, Debug, Default)]
struct MessageDsn {
    ret: Option<DsnReturn>,
    envelope_id: Option<String>,
    recipients: BTreeMap<String, RecipientDsn>,
}

impl MessageDsn {
    fn recipient(&self, recipient: &str) -> RecipientDsn {
        self.recipients.get(recipient).cloned().unwrap_or_default()
    }

    /// Whether a notice of `event` about `recipient` is wanted (RFC 3461 4.1).
    fn wants(&self, recipient: &str, event: NoticeEvent) -> bool {
        self.recipients.get(recipient).map_or_else(
            || RecipientDsn::default().wants(event),
            |asked| asked.wants(event),
        )
    }
}

/// The message a notice is about, as this host holds it.
struct Original {
    message: String,
    reverse_path: String,
    data: Rc<Vec<u8>>,
    /// When this copy reached this host (RFC 3464 2.2.5, Arrival-Date).
    arrived_ms: u64,
    /// When this host last tried to deliver it (RFC 3464 2.3.7, Last-Attempt-Date): none
    /// when every attempt so far skipped addresses it could not reach a short while ago.
    last_attempt_ms: Option<u64>,
}

#[derive(Clone, Debug)]
struct Target {
    name: String,
    address: IpAddr,
}

#[derive(Clone, Debug)]
struct Entry {
    message: String,
    reverse_path: String,
    domain: String,
    recipients: Vec<String>,
    data: Rc<Vec<u8>>,
    queued_at_ms: u64,
    attempts: u32,
    targets: Vec<Target>,
    target_index: usize,
    /// Sessions of the current attempt that got as far as MAIL (see `MX_SESSIONS_PER_ATTEMPT`).
    mx_sessions: u8,
    in_flight: bool,
    delay_notice_sent: bool,
    /// The last temporary failure that concerned every recipient still queued (a connection,
    /// a DNS answer), or the last recipient's of a session: what a recipient without a later
    /// one of its own is reported with.
    last_failure: Option<Failure>,
    /// The temporary failure each recipient got in the last session that answered them one
    /// by one, when no failure of the whole entry came after: a report gives each recipient
    /// its own status and diagnostic (RFC 3464 2.3.4, 2.3.6), not another's.
    recipient_failures: Vec<(String, Failure)>,
    /// When the last attempt that met a failure itself ended (RFC 3464 2.3.7): a failed DNS
    /// lookup, a refused or unanswered connection, a session's replies, a permanent failure.
    /// Not one that only skipped addresses this host could not reach a short while ago.
    last_attempt_ms: Option<u64>,
    /// What the targets of the current attempt did so far.
    attempt_so_far: AttemptSoFar,
}

/// What the targets of an attempt did, as far as it decides between a bounce and a retry when
/// none is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttemptSoFar {
    /// Nothing failed yet in this attempt.
    NoFailure,
    /// Every target tried refused service for good before any transaction (a `5yz` greeting,
    /// RFC 5321 3.1: "an attempt to make an SMTP connection to such a system is probably in
    /// error"; 4.2.1: a 5yz request is not repeated): with no target left, the message
    /// bounces.
    OnlyRefusals,
    /// Something failed only for now: with no target left, the message waits for the next
    /// attempt.
    SomethingTemporary,
}

impl Entry {
    /// A failure, at `now_ms`, that concerned every recipient still queued: temporary, or a
    /// target's refusal of service that rules out only that host.
    fn failed_all(&mut self, failure: Failure, now_ms: u64) {
        self.last_attempt_ms = Some(now_ms);
        let refusal = failure.reply.is_permanent();
        let before = self.attempt_so_far;
        self.failed_without_trying(failure);
        if refusal && before != AttemptSoFar::SomethingTemporary {
            self.attempt_so_far = AttemptSoFar::OnlyRefusals;
        }
    }

    /// A temporary failure of every recipient still queued that this host gave itself without
    /// trying anything: an address it skipped, no address left to try.
    fn failed_without_trying(&mut self, failure: Failure) {
        self.recipient_failures.clear();
        self.last_failure = Some(failure);
        self.attempt_so_far = AttemptSoFar::SomethingTemporary;
    }

    /// The temporary failures a session at `now_ms` gave its recipients, each its own.
    fn failed_each(&mut self, failures: Vec<(String, Failure)>, now_ms: u64) {
        self.last_attempt_ms = Some(now_ms);
        self.attempt_so_far = AttemptSoFar::SomethingTemporary;
        if let Some((_, last)) = failures.last() {
            self.last_failure = Some(last.clone());
        }
        self.recipient_failures = failures;
    }

    /// Each recipient still queued with the last failure that concerned it.
    fn failures(&self) -> Vec<(String, Failure)> {
        self.recipients
            .iter()
            .map(|recipient| {
                let own = self
                    .recipient_failures
                    .iter()
                    .find(|(deferred, _)| deferred == recipient)
                    .map(|(_, failure)| failure);
                let failure = own.or(self.last_failure.as_ref()).cloned();
                (recipient.clone(), failure.unwrap_or_else(no_answer))
            })
            .collect()
    }

    fn original(&self) -> Original {
        Original {
            message: self.message.clone(),
            reverse_path: self.reverse_path.clone(),
            data: Rc::clone(&self.data),
            arrived_ms: self.queued_at_ms,
            last_attempt_ms: self.last_attempt_ms,
        }
    }
}

/// A message's recipients on the host that took it, for its MDA.
struct LocalDelivery {
    host: usize,
    message: String,
    reverse_path: String,
    recipients: Vec<String>,
    data: Rc<Vec<u8>>,
}

struct Host {
    spec: HostSpec,
    /// The host's name, shared by every event about it.
    name: Name,
    local_domains: Rc<BTreeSet<String>>,
    /// The key of the mailbox its `<Postmaster>` goes into ([`postmaster_address`]).
    postmaster_key: Rc<str>,
    relay_domains: Rc<BTreeSet<String>>,
    users: Rc<BTreeMap<String, String>>,
    greylist: SharedGreylist,
    resolver: MxResolver,
    /// What this host's resolver learnt, kept for the records' TTL.
    mx_cache: MxCache,
    queue: BTreeMap<EntryId, Entry>,
    next_queue_id: u32,
    /// Addresses this host could not connect to lately, each with when and why: none is tried
    /// again before its time, whichever message is to go there ([`Unreachable`]).
    unreachable: BTreeMap<IpAddr, Unreachable>,
    /// Its `reply` faults, read once: each fault's index in `spec.faults`, where it answers
    /// and its reply.
    reply_faults: Vec<(usize, StallPoint, Reply)>,
}

/// An address a sending host failed to connect to (refused, or no answer). RFC 5321 4.5.4.1:
/// "The sender MUST delay retrying a particular destination after one attempt has failed",
/// so until the first retry interval has passed no message tries it; as Exim keeps a retry
/// time per host and Postfix suspends a dead destination, rather than each new message
/// knocking again at once.
#[derive(Clone, Debug)]
struct Unreachable {
    failed_at_ms: u64,
    until_ms: u64,
    reason: String,
}

impl Host {
    fn fault(&self, now_ms: u64, wanted: impl Fn(&FaultKind) -> bool) -> bool {
        self.spec
            .faults
            .iter()
            .any(|f| wanted(&f.kind) && f.active_at(now_ms))
    }

    /// The replies active `reply` faults give, with where (the first listed for each point
    /// comes first).
    fn scripted_replies(&self, now_ms: u64) -> Vec<(StallPoint, Reply)> {
        self.reply_faults
            .iter()
            .filter(|(fault, ..)| self.spec.faults[*fault].active_at(now_ms))
            .map(|(_, at, reply)| (*at, reply.clone()))
            .collect()
    }

    /// Where an active stall fault makes the SMTP server hang (the first listed, when
    /// several are active).
    fn stall_point(&self, now_ms: u64) -> Option<StallPoint> {
        self.spec
            .faults
            .iter()
            .filter(|f| f.active_at(now_ms))
            .find_map(|f| match f.kind {
                FaultKind::Stall { at } => Some(at),
                _ => None,
            })
    }

    fn extra_latency_ms(&self, now_ms: u64) -> u64 {
        self.spec
            .faults
            .iter()
            .filter(|f| f.active_at(now_ms))
            .map(|f| match f.kind {
                FaultKind::Slow { extra_latency_ms } => extra_latency_ms,
                _ => 0,
            })
            .fold(0, u64::saturating_add)
    }
}

#[derive(Clone, Debug)]
enum Purpose {
    /// A user agent submitting messages, in the order its session sends them; `spec` is the
    /// scenario entry of the first, whose settings the others share.
    Submission {
        spec: usize,
        messages: Vec<SubmittedMessage>,
    },
    /// A host delivering queue entries, in the order its session sends them.
    Relay {
        host: usize,
        entries: Vec<EntryId>,
    },
    Fetch {
        mailbox: String,
    },
    /// A scripted client: whatever the server accepts from it is labelled with `label`.
    Raw {
        label: String,
    },
}

#[derive(Clone, Debug)]
struct SubmittedMessage {
    label: String,
    forward_paths: Vec<String>,
}

/// What the simulation asks of a client engine, SMTP or POP3 alike, beyond what it tells
/// either end of a connection.
trait ClientEngine: ConnectionEnd {
    type Event;
    fn handle_connected(&mut self, now_ms: u64);
    fn handle_input(&mut self, bytes: &[u8], now_ms: u64);
    fn poll_output(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_timeout(&self) -> Option<u64>;
    fn is_finished(&self) -> bool;
}

macro_rules! client_engine {
    ($($engine:ty => $event:ty),*) => {$(
        impl ClientEngine for $engine {
            type Event = $event;
            fn handle_connected(&mut self, now_ms: u64) {
                <$engine>::handle_connected(self, now_ms)
            }
            fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
                <$engine>::handle_input(self, bytes, now_ms)
            }
            fn poll_output(&mut self) -> Option<Vec<u8>> {
                <$engine>::poll_output(self)
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$engine>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<u64> {
                <$engine>::poll_timeout(self)
            }
            fn is_finished(&self) -> bool {
                <$engine>::is_finished(self)
            }
        }
    )*};
}

client_engine!(ClientSession => ClientEvent, Pop3Client => Pop3ClientEvent);

/// The client end of a connection: the protocol's engine, or a scripted peer that writes
/// fixed bytes (a misbehaving client, such as a smuggling attempt, or raw POP3 commands).
enum ClientEnd<E> {
    Engine(Box<E>),
    Raw(RawClient),
}

type SmtpClient = ClientEnd<ClientSession>;
type Pop3ClientEnd = ClientEnd<Pop3Client>;

/// Sends its bytes once the greeting has arrived, then waits for the server to close.
struct RawClient {
    pending: Option<Vec<u8>>,
    output: Option<Vec<u8>>,
    finished: bool,
}

impl<E: ClientEngine> ClientEnd<E> {
    fn handle_connected(&mut self, now_ms: u64) {
        if let ClientEnd::Engine(client) = self {
            client.handle_connected(now_ms);
        }
    }
    fn handle_input(&mut self, bytes: &[u8], now_ms: u64) {
        match self {
            ClientEnd::Engine(client) => client.handle_input(bytes, now_ms),
            ClientEnd::Raw(raw) => {
                // A client with nothing to say writes nothing: an empty write would reach the
                // server as input and restart its idle timer.
                if !bytes.is_empty() {
                    if let Some(pending) = raw.pending.take().filter(|p| !p.is_empty()) {
                        raw.output = Some(pending);
                    }
                }
            }
        }
    }
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        match self {
            ClientEnd::Engine(client) => client.poll_output(),
            ClientEnd::Raw(raw) => raw.output.take(),
        }
    }
    fn poll_event(&mut self) -> Option<E::Event> {
        match self {
            ClientEnd::Engine(client) => client.poll_event(),
            ClientEnd::Raw(_) => None,
        }
    }
    fn poll_timeout(&self) -> Option<u64> {
        match self {
            ClientEnd::Engine(client) => client.poll_timeout(),
            ClientEnd::Raw(_) => None,
        }
    }
    fn is_finished(&self) -> bool {
        match self {
            ClientEnd::Engine(client) => client.is_finished(),
            ClientEnd::Raw(raw) => raw.finished,
        }
    }
}

enum Sessions {
    Smtp {
        client: Box<SmtpClient>,
        server: Option<Box<ServerSession<SimPolicy>>>,
    },
    Pop3 {
        client: Box<Pop3ClientEnd>,
        server: Option<Box<Pop3Server<SimMaildrop>>>,
    },
}

/// What the simulation tells either end of a connection, whatever its protocol.
trait ConnectionEnd {
    fn handle_peer_closed(&mut self);
    fn handle_timeout(&mut self, now_ms: u64);
}

macro_rules! connection_end {
    ($($end:ty),*) => {$(
        impl ConnectionEnd for $end {
            fn handle_peer_closed(&mut self) {
                <$end>::handle_peer_closed(self)
            }
            fn handle_timeout(&mut self, now_ms: u64) {
                <$end>::handle_timeout(self, now_ms)
            }
        }
    )*};
}

connection_end!(
    ClientSession,
    ServerSession<SimPolicy>,
    Pop3Client,
    Pop3Server<SimMaildrop>
);

impl<E: ClientEngine> ConnectionEnd for ClientEnd<E> {
    fn handle_peer_closed(&mut self) {
        match self {
            ClientEnd::Engine(client) => client.handle_peer_closed(),
            ClientEnd::Raw(raw) => raw.finished = true,
        }
    }
    fn handle_timeout(&mut self, now_ms: u64) {
        if let ClientEnd::Engine(client) = self {
            client.handle_timeout(now_ms);
        }
    }
}

impl Sessions {
    /// The client or the server end; a server end exists once the connection was accepted.
    fn end(&mut self, side: Side) -> Option<&mut dyn ConnectionEnd> {
        match (self, side) {
            (Sessions::Smtp { client, .. }, Side::Client) => Some(client.as_mut()),
            (Sessions::Smtp { server, .. }, Side::Server) => {
                server.as_deref_mut().map(|s| s as &mut dyn ConnectionEnd)
            }
            (Sessions::Pop3 { client, .. }, Side::Client) => Some(client.as_mut()),
            (Sessions::Pop3 { server, .. }, Side::Server) => {
                server.as_deref_mut().map(|s| s as &mut dyn ConnectionEnd)
            }
        }
    }
}

struct Conn {
    client_name: Name,
    client_address: IpAddr,
    server: usize,
    port: u16,
    latency_ms: u64,
    sessions: Sessions,
    purpose: Purpose,
    client_closed: bool,
    server_closed: bool,
    /// Broken by a fault: bytes in flight are lost.
    dropped: bool,
    /// Where the server hangs, when a stall fault was active as the connection reached it.
    stall_at: Option<StallPoint>,
    /// The server has hung there: it reads nothing more, writes nothing more, and its
    /// timers stop; the connection ends when the client closes its end.
    stalled: bool,
    client_timer_ms: Option<u64>,
    server_timer_ms: Option<u64>,
    /// Whether the SMTP server is reading message data (for a fault that breaks it).
    server_in_data: bool,
    /// POP3 replies the server has written whose bytes are not on the link yet: the trace
    /// shows them before the effects of a later command in the same input.
    pop3_replies_unsent: usize,
    /// Messages this connection's server took whose MDA delivery waits for the server's
    /// reply to go out (RFC 5321 6.1), oldest first.
    waiting_deliveries: VecDeque<LocalDelivery>,
    /// The octets of the messages its client holds to send, counted in the run's memory
    /// (see `RUN_OCTETS_MAX`) until the connection ends.
    held_octets: usize,
    /// Whether the server ended the session on its inactivity timer (POP3 closes so without
    /// a reply, RFC 1939 3), for the trace to say so.
    server_idle_timeout: bool,
    /// Recipients of the messages being relayed whose result the trace has told already,
    /// with the message's place in the session: those accepted in a mail transaction that
    /// left others of the message for a later one (past the recipients a transaction
    /// carries, or after a 452).
    settled_early: Vec<(usize, String)>,
    /// The client's message at this place in the session asked for delivery reports, and
    /// its MAIL, next on the wire, goes without them: told once the MAIL is.
    dsn_withheld: Option<usize>,
}

impl Conn {
    /// The recipients of message `index` of the session whose result the trace has told
    /// already, taken out of `settled_early`.
    fn take_settled_early(&mut self, index: usize) -> Vec<String> {
        let (this, others) = std::mem::take(&mut self.settled_early)
            .into_iter()
            .partition::<Vec<_>, _>(|(message, _)| *message == index);
        self.settled_early = others;
        this.into_iter().map(|(_, path)| path).collect()
    }
}

/// The open connections by id. Ids are handed out in increasing order and never reused, so
/// a connection is found by its offset from the oldest open one, without searching; a
/// connection that ended leaves an empty slot until every older one has ended too.
struct Connections<C = Conn> {
    /// Slot `i` holds connection `first_id + i`.
    slots: VecDeque<Option<C>>,
    first_id: ConnId,
}

impl<C> Default for Connections<C> {
    fn default() -> Self {
        Connections {
            slots: VecDeque::new(),
            first_id: 0,
        }
    }
}

impl<C> Connections<C> {
    fn index(&self, conn: ConnId) -> Option<usize> {
        let index = conn.checked_sub(self.first_id)? as usize;
        (index < self.slots.len()).then_some(index)
    }

    fn contains_key(&self, conn: &ConnId) -> bool {
        self.get(conn).is_some()
    }

    fn get(&self, conn: &ConnId) -> Option<&C> {
        self.slots.get(self.index(*conn)?)?.as_ref()
    }

    fn get_mut(&mut self, conn: &ConnId) -> Option<&mut C> {
        let index = self.index(*conn)?;
        self.slots.get_mut(index)?.as_mut()
    }

    /// Adds a connection with an id newer than every one added before.
    fn insert(&mut self, conn: ConnId, c: C) {
        if self.slots.is_empty() {
            self.first_id = conn;
        }
        let index = conn.saturating_sub(self.first_id) as usize;
        debug_assert!(index >= self.slots.len(), "connection ids only grow");
        while self.slots.len() < index {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(c));
    }

    fn remove(&mut self, conn: &ConnId) -> Option<C> {
        let index = self.index(*conn)?;
        let removed = self.slots.get_mut(index)?.take();
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first_id += 1;
        }
        removed
    }

    /// The open connections, oldest first.
    fn values(&self) -> impl Iterator<Item = &C> {
        self.slots.iter().flatten()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Client,
    Server,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Submit(usize),
    Fetch(usize),
    RawSession(usize),
    ServerAccept(ConnId),
    ClientConnected(ConnId),
    ClientRefused(ConnId, String),
    ClientConnectTimeout(ConnId),
    /// A queue entry's connection attempt to an address where no host lives timed out.
    NobodyAnswered(usize, EntryId, ConnId),
    /// Bytes reach one side of a connection: the bytes of the `Transmitted` event at this
    /// position in the trace, so that they are kept once.
    Arrive(ConnId, Side, usize),
    PeerClosed(ConnId, Side),
    Timer(ConnId, Side),
    QueueRun(usize, EntryId),
    /// A queue entry's DNS question went unanswered for the resolver's timeout.
    DnsTimedOut(usize, EntryId),
}

/// One shared copy of each explanation text and of each reply note: most replies repeat the
/// same few sentences, and a large run records hundreds of thousands of them.
#[derive(Default)]
struct Interner {
    texts: FxHashMap<Name, ()>,
    /// Notes by the addresses of their interned parts: equal texts share one address.
    notes: FxHashMap<[usize; 3], Rc<ReplyNote>>,
    /// Notes by the addresses and lengths of their parts, for explanations made of a shared
    /// meaning and static texts (nearly all): those never move, so no text is hashed.
    notes_by_address: FxHashMap<[usize; 5], Rc<ReplyNote>>,
    /// Notes for a reason written for the occasion (a count, a name) with a shared meaning
    /// and a static RFC text, by the addresses of those two and then by the reason's text:
    /// one text hashed instead of three. Each group keeps its meaning alive, so that its
    /// address is never reused for another text.
    notes_by_written_why: FxHashMap<[usize; 3], WrittenWhyNotes>,
    notes_by_written_why_count: usize,
}

/// A meaning (kept alive, for its address) and the notes that pair it with one static RFC text,
/// by their reasons.
type WrittenWhyNotes = (Name, FxHashMap<Name, Rc<ReplyNote>>);

/// Most notes found by address; beyond, notes are found by their texts.
const NOTES_BY_ADDRESS_MAX: usize = 4096;

impl Interner {
    fn intern(&mut self, text: &str) -> Name {
        if let Some((name, _)) = self.texts.get_key_value(text) {
            return Rc::clone(name);
        }
        let name = Name::from(text);
        self.texts.insert(Rc::clone(&name), ());
        name
    }

    /// The shared copy of `name`'s text (`name` itself when it is the first).
    fn intern_name(&mut self, name: Name) -> Name {
        match self.texts.entry(name) {
            hash_map::Entry::Occupied(entry) => Rc::clone(entry.key()),
            hash_map::Entry::Vacant(entry) => {
                let name = Rc::clone(entry.key());
                entry.insert(());
                name
            }
        }
    }

    /// The shared note for a server's explanation of a reply.
    fn reply_note(&mut self, explanation: Explanation) -> Rc<ReplyNote> {
        let Explanation { meaning, why, rfc } = explanation;
        let why = match (why, &rfc) {
            (Cow::Borrowed(why), _) => why,
            (Cow::Owned(why), Cow::Borrowed(rfc)) => {
                return self.written_why_note(meaning, why, rfc)
            }
            (Cow::Owned(why), Cow::Owned(rfc)) => return self.note(meaning, &why, rfc),
        };
        let Cow::Borrowed(rfc) = rfc else {
            return self.note(meaning, why, &rfc);
        };
        // The meaning is kept alive by the note stored below, and static texts live forever,
        // so an address is never reused for another text.
        let key = [
            Rc::as_ptr(&meaning) as *const u8 as usize,
            why.as_ptr() as usize,
            why.len(),
            rfc.as_ptr() as usize,
            rfc.len(),
        ];
        if let Some(note) = self.notes_by_address.get(&key) {
            return Rc::clone(note);
        }
        let note = self.note(Rc::clone(&meaning), why, rfc);
        if self.notes_by_address.len() < NOTES_BY_ADDRESS_MAX && Rc::ptr_eq(&note.meaning, &meaning)
        {
            self.notes_by_address.insert(key, Rc::clone(&note));
        }
        note
    }

    /// [`Interner::reply_note`] for a reason written for the occasion and a static RFC text.
    fn written_why_note(&mut self, meaning: Name, why: String, rfc: &'static str) -> Rc<ReplyNote> {
        let key = [
            Rc::as_ptr(&meaning) as *const u8 as usize,
            rfc.as_ptr() as usize,
            rfc.len(),
        ];
        if let Some(note) = self
            .notes_by_written_why
            .get(&key)
            .and_then(|(_, notes)| notes.get(why.as_str()))
        {
            return Rc::clone(note);
        }
        let note = self.note(Rc::clone(&meaning), &why, rfc);
        if self.notes_by_written_why_count < NOTES_BY_ADDRESS_MAX {
            self.notes_by_written_why_count += 1;
            self.notes_by_written_why
                .entry(key)
                .or_insert_with(|| (meaning, FxHashMap::default()))
                .1
                .insert(Rc::clone(&note.why), Rc::clone(&note));
        }
        note
    }

    /// The shared note for a reply's meaning, reason and RFC section.
    fn note(&mut self, meaning: Name, why: &str, rfc: &str) -> Rc<ReplyNote> {
        let meaning = self.intern_name(meaning);
        let why = self.intern(why);
        let rfc = self.intern(rfc);
        let key = [&meaning, &why, &rfc].map(|text| Rc::as_ptr(text) as *const u8 as usize);
        Rc::clone(
            self.notes
                .entry(key)
                .or_insert_with(|| Rc::new(ReplyNote { meaning, why, rfc })),
        )
    }
}

/// Most sessions that get as far as MAIL in one delivery attempt of a queue entry: Postfix's
/// `smtp_mx_session_limit` default. Sessions that fail before (refused, timed out, a refusing
/// greeting) do not count, and the next address is always tried after them.
const MX_SESSIONS_PER_ATTEMPT: u8 = 2;

/// How long a host's resolver waits for a DNS answer before it gives up on the question:
/// glibc's default (resolv.conf `timeout:5`, `attempts:2`), which Postfix and Exim use.
const RESOLVER_TIMEOUT_MS: u64 = 10_000;

/// An MX resolution whose exchanges are being recorded as they happen.
struct MxLookup {
    resolution: MxResolution,
    /// The exchange to record next.
    next_exchange: usize,
    /// Its question was asked and the resolver's timeout has passed: its (lack of) answer
    /// is next.
    timed_out: bool,
}

/// Everything that will happen, in (time, sequence) order. The scenario's own actions (every
/// message, fetch and raw session) are known before the run starts: they wait in a sorted
/// list, so that the heap holds only what the run itself schedules and stays small even
/// when a scenario sends thousands of messages.
#[derive(Default)]
struct Agenda {
    planned: VecDeque<Scheduled>,
    heap: BinaryHeap<Reverse<Scheduled>>,
}

/// An action and when it happens; the sequence number keeps actions at the same time in the
/// order they were scheduled.
struct Scheduled {
    time_ms: u64,
    sequence: u64,
    action: Action,
}

impl Scheduled {
    fn key(&self) -> (u64, u64) {
        (self.time_ms, self.sequence)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Agenda {
    /// The scenario's actions, in any order.
    fn plan(&mut self, mut planned: Vec<Scheduled>) {
        planned.sort_unstable();
        self.planned = planned.into();
    }

    fn push(&mut self, scheduled: Scheduled) {
        self.heap.push(Reverse(scheduled));
    }

    fn pop(&mut self) -> Option<Scheduled> {
        let from_plan = match (self.planned.front(), self.heap.peek()) {
            (Some(planned), Some(Reverse(next))) => planned < next,
            (planned, _) => planned.is_some(),
        };
        if from_plan {
            self.planned.pop_front()
        } else {
            self.heap.pop().map(|Reverse(next)| next)
        }
    }
}

struct World<'a> {
    scenario: ScenarioRef<'a>,
    /// Scheduled actions taken so far (at most [`STEPS_MAX`]).
    actions_taken: u64,
    interner: Interner,
    seed: u64,
    now_ms: u64,
    sequence: u64,
    agenda: Agenda,
    rng: SimRng,
    events: Vec<TraceEvent>,
    hosts: Vec<Host>,
    host_by_name: BTreeMap<String, usize>,
    host_by_address: BTreeMap<IpAddr, usize>,
    store: SharedStore,
    conns: Connections,
    /// The open SMTP connections to each server and port, oldest first: where a new message
    /// looks for a session to join, without going through every open connection.
    smtp_conns_to: FxHashMap<(usize, u16), Vec<ConnId>>,
    /// MX lookups waiting for a DNS question to time out.
    pending_lookups: BTreeMap<(usize, EntryId), MxLookup>,
    next_conn: ConnId,
    next_entry: EntryId,
    next_notice: u32,
    /// What the sender of each message asked of DSN (RFC 3461), by the host that took it:
    /// kept only for messages that came with DSN parameters.
    dsn_requests: BTreeMap<(usize, String), MessageDsn>,
    next_raw_message: u32,
    /// Every (message, recipient) that must end with exactly one fate, in creation order.
    tracked: Vec<(String, String)>,
    /// The fate of each (message, recipient) so far; reported in `tracked` order at the end.
    fates: FxHashMap<(String, String), Fate>,
    problems: Vec<String>,
    /// How many of the scenario's messages their user agents have tried to send.
    messages_submitted: usize,
    /// About how much memory the trace and the mail take so far (see `RUN_OCTETS_MAX`).
    run_octets: usize,
    truncated: bool,
    /// Whether the cut came from `TRACE_EVENTS_MAX` rather than `RUN_OCTETS_MAX`.
    cut_at_events: bool,
    /// The run is over and reports its outcomes.
    finishing: bool,
}

/// `prefix` and `number` in decimal, as `format!` writes them: the names the simulation gives
/// (`m12`, `m12.3`), written without the formatting machinery, for every message.
fn numbered(prefix: &str, number: u64) -> String {
    let mut text = String::with_capacity(prefix.len() + 20);
    text.push_str(prefix);
    Decimal::new(number).push_to(&mut text);
    text
}

/// `number` in upper-case hexadecimal, at least `width` digits, zero-padded (`{:0width$X}`).
fn push_hex(out: &mut String, number: u64, width: usize) {
    let digits = (64 - number.leading_zeros() as usize).div_ceil(4).max(1);
    for _ in digits..width {
        out.push('0');
    }
    for shift in (0..digits).rev() {
        let nibble = (number >> (shift * 4)) & 0xf;
        out.push(char::from(b"0123456789ABCDEF"[nibble as usize]));
    }
}

/// A user agent's address on its link to a server at `server`: `ipv4`, or for a server with
/// an IPv6 address, which an IPv4 client could not reach, `ipv4`'s 32 bits in an IPv6
/// documentation address (RFC 3849), `2001:db8:ffff::c633:6401` for 198.51.100.1.
fn client_address_for(ipv4: [u8; 4], server: IpAddr) -> IpAddr {
    match server {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0));
            IpAddr::V6(Ipv6Addr::from(
                prefix | u128::from(u32::from_be_bytes(ipv4)),
            ))
        }
        _ => IpAddr::from(ipv4),
    }
}

/// `address` with a domain written in U-labels written in A-labels: the same domain (RFC 5890
/// 2.3.2.1), in a form any message may carry in a header field (RFC 5322 2.2), where UTF-8 is
/// only for messages that travelled with SMTPUTF8 (RFC 6532 3). A non-ASCII local part has no
/// such form, and only reaches a mailbox in such a message.
fn with_ascii_domain(address: &str) -> Cow<'_, str> {
    match address.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => {
            Cow::Owned(format!("{local}@{}", domain_key(domain)))
        }
        _ => Cow::Borrowed(address),
    }
}

/// A mailbox's configured address (its local part bare, as a scenario writes it) as an
/// address is written: the local part quoted when it is no dot-string, the domain in A-labels.
fn configured_address_as_written(address: &str) -> Cow<'_, str> {
    let ascii = with_ascii_domain(address);
    let quoted = match ascii.rsplit_once('@') {
        Some((local, domain)) => match local_part_wire(local) {
            Cow::Owned(quoted) => format!("{quoted}@{domain}"),
            Cow::Borrowed(_) => return ascii,
        },
        None => return ascii,
    };
    Cow::Owned(quoted)
}

/// The domain of `address` as the queue keys its entries (in A-labels, lower case); empty for
/// an address without one.
pub(crate) fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| domain_key(d))
        .unwrap_or_default()
}

/// `code [enhanced] text`, the lines of the text joined by spaces.
fn reply_text(reply: &Reply) -> String {
    let mut text =
        String::with_capacity(16 + reply.lines.iter().map(|l| l.len() + 1).sum::<usize>());
    Decimal::new(reply.code.into()).push_to(&mut text);
    if let Some(enhanced) = reply.enhanced {
        text.push(' ');
        enhanced.push_to(&mut text);
    }
    text.push(' ');
    reply.push_text(&mut text);
    text
}

/// The mailbox of a host's own postmaster, where `<Postmaster>` goes (RFC 5321 4.5.1):
/// `postmaster@` its first local domain, or its own name when it has none.
fn postmaster_address(spec: &HostSpec) -> String {
    let domain = spec
        .local_domains
        .first()
        .cloned()
        .unwrap_or_else(|| spec.name.to_ascii_lowercase());
    format!("postmaster@{domain}")
}

/// Who a host's notices come from: a person responsible for it, so that a reply is read (RFC
/// 3464 2). The postmaster of its first local domain, which every such domain has (RFC 5321
/// 4.5.1) and which a reply finds in DNS when the domain is there; of its own name when it
/// receives mail for no domain, or when that domain is written in U-labels, which would make
/// the notice's header UTF-8 and its delivery depend on SMTPUTF8.
fn notice_sender(spec: &HostSpec) -> String {
    let postmaster = postmaster_address(spec);
    if postmaster.is_ascii() {
        postmaster.to_ascii_lowercase()
    } else {
        format!("postmaster@{}", spec.name.to_ascii_lowercase())
    }
}

/// Whether `domain` (a key) names the host itself: its name, or its address literal.
fn names_host(domain: &str, name: &str, address: IpAddr) -> bool {
    domain.eq_ignore_ascii_case(name) || is_literal_of(domain, address)
}

/// Whether `domain` is an address literal naming `address` (an IPv4-mapped form too).
fn is_literal_of(domain: &str, address: IpAddr) -> bool {
    literal_address(domain) == Some(address.to_canonical())
}

/// The address an IPv4 or IPv6 address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) names,
/// in canonical form: an IPv4-mapped IPv6 address is the IPv4 host (RFC 4291 2.5.5.2).
pub(crate) fn literal_address(domain: &str) -> Option<IpAddr> {
    if !domain.starts_with('[') {
        return None;
    }
    match Domain::parse(domain) {
        Ok(Domain::Literal(AddressLiteral::Ipv4(v4))) => Some(v4.into()),
        Ok(Domain::Literal(AddressLiteral::Ipv6(v6))) => Some(IpAddr::from(v6).to_canonical()),
        _ => None,
    }
}

/// The failures of the MDA's refusal, one for each address that reached the mailbox.
fn refused_each(recipients: &[&str], reply: &Reply) -> Vec<(String, Failure)> {
    recipients
        .iter()
        .map(|recipient| (recipient.to_string(), Failure::local(reply.clone())))
        .collect()
}

/// The mailbox a fetch's connection reads; empty for any other connection.
fn fetched_mailbox(purpose: &Purpose) -> String {
    match purpose {
        Purpose::Fetch { mailbox } => mailbox.clone(),
        _ => String::new(),
    }
}

/// How a host found where mail for a domain goes, for the trace (see [`trace::MxResolved`]).
struct HowResolved {
    result: String,
    from_cache: bool,
    notes: Vec<String>,
    failure: Option<EnhancedStatus>,
}

impl HowResolved {
    /// A route the scenario gives, or an address literal: no DNS asked, nothing failed.
    fn without_dns(result: String) -> HowResolved {
        HowResolved {
            result,
            from_cache: false,
            notes: Vec::new(),
            failure: None,
        }
    }
}

/// The notes of an MX resolution as the trace gives them: the resolver's, then those on
/// addresses left out as already targets (see [`targets_of`]).
fn note_lines(notes: &[MxNote], duplicates: Vec<String>) -> Vec<String> {
    notes
        .iter()
        .map(ToString::to_string)
        .chain(duplicates)
        .collect()
}

/// Every address of every host of a resolution, in the order to try them, each once: an
/// address reached through two MX records (or two names) is tried at its best place only,
/// since a second try would reach the same host.
fn targets_of(outcome: &MxOutcome) -> (Vec<Target>, Vec<String>) {
    let mut targets: Vec<Target> = Vec::new();
    let mut notes = Vec::new();
    for t in outcome.targets() {
        let name = t.exchange.without_final_dot();
        for address in &t.addresses {
            // An IPv4-mapped IPv6 address is the IPv4 host (RFC 4291 2.5.5.2).
            let address = address.to_canonical();
            match targets.iter().find(|known| known.address == address) {
                // Tried once per attempt, under the first name that gave it: trying it again
                // would only meet the same server, or the same failure. Said once, however
                // often it comes back (two MX records naming one host, an AAAA record that
                // is its A record's IPv4-mapped address).
                Some(known) => {
                    let why = if known.name == name {
                        "already a target".to_string()
                    } else {
                        format!("the same address as {}", known.name)
                    };
                    let note = format!(
                        "{} left out: {why}, tried once",
                        target_label(name, address)
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                None => targets.push(Target {
                    name: name.to_string(),
                    address,
                }),
            }
        }
    }
    (targets, notes)
}

/// How much of `bytes`, arriving in a message's DATA content, reaches a server whose link
/// breaks in the middle of it: the first half, and never a line's leading dot, which might end
/// the data (RFC 5321 4.1.1.4). Where a line starts is not known before the first CR or LF,
/// so a dot at the very start counts too.
fn part_before_data_end(bytes: &[u8]) -> usize {
    let leading_dot = bytes
        .iter()
        .enumerate()
        .position(|(index, &byte)| {
            byte == b'.' && (index == 0 || matches!(bytes[index - 1], b'\r' | b'\n'))
        })
        .unwrap_or(bytes.len());
    leading_dot.min(bytes.len() / 2)
}

/// Where in `bytes`, arriving at a server outside message data, the command starts that a
/// server stalled `at` never answers: the start of its line, or `None` when it is not among
/// them (a stall at the greeting or the final dot is not at a command). Lines after a DATA or
/// BDAT command are message content, not commands, and are not looked at.
fn stalled_command_start(bytes: &[u8], at: StallPoint) -> Option<usize> {
    let verbs: &[&[u8]] = match at {
        StallPoint::Ehlo => &[b"EHLO", b"HELO"],
        StallPoint::Mail => &[b"MAIL"],
        StallPoint::Rcpt => &[b"RCPT"],
        StallPoint::Data => &[b"DATA"],
        StallPoint::Greeting | StallPoint::Dot => return None,
    };
    // A line ends at LF, with its CR or without: a server that normalizes bare line endings
    // ends a command at a bare LF too, so the scan stops where any server here might.
    let mut start = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let verb = line.get(..4);
        let is = |wanted: &[u8]| verb.is_some_and(|verb| verb.eq_ignore_ascii_case(wanted));
        // A verb alone, or followed by a space or the line's end.
        let ends_verb = matches!(line.get(4), None | Some(b' ' | b'\r' | b'\n'));
        if ends_verb && verbs.iter().any(|wanted| is(wanted)) {
            return Some(start);
        }
        // What follows DATA, or a BDAT chunk, is message content.
        if ends_verb && (is(b"DATA") || is(b"BDAT")) {
            return None;
        }
        start += line.len();
    }
    None
}

/// The code the trace gives a POP3 response, which has none of its own (RFC 1939 3): 200
/// for `+OK`; for `-ERR`, 400 when its response code says the failure is temporary and the
/// same command may work later ([IN-USE] and [LOGIN-DELAY], RFC 2449 8.1; [SYS/TEMP],
/// RFC 3206 4), else 500.
fn pop3_reply_code(ok: bool, first_line: &str) -> u16 {
    if ok {
        return 200;
    }
    match pop3::wire::response_code(first_line) {
        Some("IN-USE" | "LOGIN-DELAY" | "SYS/TEMP") => 400,
        _ => 500,
    }
}

/// An attempt that ended with no address left and no failure recorded.
fn no_answer() -> Failure {
    Failure::local(Reply::new(
        451,
        Some(EnhancedStatus::new(4, 4, 1)),
        "No MX host answered",
    ))
}

/// The text of the reply an MX failure stands for: the domain and what failed. When the MX
/// records were found but the address lookups of every host that could have an address
/// failed for now, those hosts are named: it is their DNS, not the mail domain's, that failed
/// (as Postfix says "Name service error for name=mx1.b.test type=A").
fn failure_reply_text(domain: &str, failure: &MxFailure, notes: &[MxNote]) -> String {
    let mut failed_hosts: Vec<&str> = Vec::new();
    // Only a temporary failure can come of failed address lookups; a permanent one with
    // such notes (no host has an address, say) is the domain's.
    if !failure.permanent {
        for note in notes {
            if let MxNote::ExchangeLookupFailed { exchange, .. } = note {
                // Two MX records may name one host.
                if !failed_hosts.contains(&exchange.without_final_dot()) {
                    failed_hosts.push(exchange.without_final_dot());
                }
            }
        }
    }
    match failed_hosts.as_slice() {
        [] => format!("{domain}: {}", failure.text),
        [host] => format!(
            "{domain}: {} looking up the address of {host}",
            failure.text
        ),
        hosts => format!(
            "{domain}: {} looking up the addresses of {}",
            failure.text,
            hosts.join(", ")
        ),
    }
}

fn status_of(reply: &Reply) -> EnhancedStatus {
    reply.enhanced.unwrap_or(EnhancedStatus::new(
        (reply.code / 100).clamp(2, 5) as u8,
        0,
        0,
    ))
}

impl<'a> World<'a> {
    fn new(scenario: ScenarioRef<'a>, seed: u64) -> World<'a> {
        let store: SharedStore = Rc::default();
        let mut hosts = Vec::new();
        let mut host_by_name = BTreeMap::new();
        let mut host_by_address = BTreeMap::new();
        for (index, spec) in scenario.hosts.iter().enumerate() {
            host_by_name.insert(spec.name.to_ascii_lowercase(), index);
            // By canonical address: an IPv4-mapped IPv6 address reaches the IPv4 host.
            host_by_address.insert(spec.address.to_canonical(), index);
            for mailbox in &spec.mailboxes {
                store.borrow_mut().mailboxes.insert(
                    mailbox_key(&mailbox.address),
                    MailboxState {
                        address: mailbox.address.clone(),
                        host: index,
                        password: mailbox.password.clone(),
                        quota_octets: mailbox.quota_octets,
                        used_octets: mailbox.used_octets,
                        messages: Vec::new(),
                        next_uid: 1,
                        locked: false,
                    },
                );
            }
            let local_names = DomainName::parse(&spec.name).into_iter().collect();
            hosts.push(Host {
                local_domains: Rc::new(spec.local_domains.iter().map(|d| domain_key(d)).collect()),
                postmaster_key: mailbox_key(&postmaster_address(spec)).into(),
                // A route only says where outgoing mail goes; it does not make the host
                // accept mail for that domain from anyone.
                relay_domains: Rc::new(spec.relay_domains.iter().map(|d| domain_key(d)).collect()),
                users: Rc::new(
                    spec.submission_users
                        .iter()
                        .map(|u| (u.user.clone(), u.password.clone()))
                        .collect(),
                ),
                greylist: Rc::default(),
                // Each host's query ids start somewhere different, as real resolvers' do.
                resolver: MxResolver::new(local_names, (index as u16).wrapping_mul(4099) ^ 0x1d3)
                    .with_local_addresses(vec![spec.address]),
                mx_cache: MxCache::default(),
                queue: BTreeMap::new(),
                next_queue_id: 1,
                unreachable: BTreeMap::new(),
                reply_faults: spec
                    .faults
                    .iter()
                    .enumerate()
                    .filter_map(|(f, fault)| match &fault.kind {
                        // Checked when the scenario was read; one that was not is left out.
                        FaultKind::Reply { at, reply } => {
                            scripted_reply(reply, *at).ok().map(|r| (f, *at, r))
                        }
                        _ => None,
                    })
                    .collect(),
                name: Name::from(spec.name.as_str()),
                spec: spec.clone(),
            });
        }
        // A delivered message takes about fifty events (two SMTP sessions): reserving room
        // for them up front saves copying the trace over and over as it grows. Not much more
        // than that, since the room left over is given back at the end, and an allocator may
        // copy the whole trace to give back more than half of it. At most a million events
        // (40 MB) ahead, so that a file asking for many messages cannot make the run reserve
        // memory it never uses.
        let expected_events = scenario
            .messages
            .len()
            .saturating_mul(EVENTS_PER_MESSAGE_RESERVED)
            .min(TRACE_EVENTS_RESERVED_MAX);
        let mut world = World {
            scenario: scenario.clone(),
            actions_taken: 0,
            interner: Interner::default(),
            seed,
            now_ms: 0,
            sequence: 0,
            agenda: Agenda::default(),
            rng: SimRng::new(seed),
            events: Vec::with_capacity(expected_events),
            hosts,
            host_by_name,
            host_by_address,
            store,
            conns: Connections::default(),
            smtp_conns_to: FxHashMap::default(),
            pending_lookups: BTreeMap::new(),
            next_conn: 1,
            next_entry: 1,
            next_notice: 1,
            dsn_requests: BTreeMap::new(),
            next_raw_message: 0,
            tracked: Vec::new(),
            fates: FxHashMap::default(),
            problems: Vec::new(),
            messages_submitted: 0,
            run_octets: 0,
            truncated: false,
            cut_at_events: false,
            finishing: false,
        };
        world.record(Event::Started {
            scenario: scenario.name.as_str().into(),
            seed,
        });
        let planned = (scenario.messages.iter())
            .enumerate()
            .map(|(index, message)| (message.at_s, Action::Submit(index)))
            .chain(
                (scenario.fetches.iter())
                    .enumerate()
                    .map(|(index, fetch)| (fetch.at_s, Action::Fetch(index))),
            )
            .chain(
                (scenario.raw_sessions.iter())
                    .enumerate()
                    .map(|(index, raw)| (raw.at_s, Action::RawSession(index))),
            )
            .map(|(at_s, action)| world.scheduled(at_s.saturating_mul(1000), action))
            .collect();
        world.agenda.plan(planned);
        world
    }

    fn record(&mut self, event: Event) {
        // The run's report at the end (outcomes, the check) is not what the bound is for: a
        // run that finished under it is not cut by reporting, and a run that was cut reports
        // too, so that the trace says where each message stood and that the run was cut (one
        // event per recipient, and the check).
        if self.finishing {
            self.events.push(TraceEvent {
                time_ms: self.now_ms,
                event,
            });
            return;
        }
        self.hold(std::mem::size_of::<TraceEvent>() + event.heap_octets());
        if self.truncated {
            return;
        }
        self.cut_if_trace_full();
        if self.truncated {
            return;
        }
        self.events.push(TraceEvent {
            time_ms: self.now_ms,
            event,
        });
    }

    /// Counts memory the run now holds (trace events, messages) against `RUN_OCTETS_MAX`.
    fn hold(&mut self, octets: usize) {
        self.run_octets = self.run_octets.saturating_add(octets);
        if self.run_octets > RUN_OCTETS_MAX {
            self.truncated = true;
        }
    }

    /// Whether the run may take on `octets` more without passing `RUN_OCTETS_MAX`, and an
    /// event more without passing `TRACE_EVENTS_MAX`; when not, it is cut here.
    fn has_room_for(&mut self, octets: usize) -> bool {
        if self.run_octets.saturating_add(octets) > RUN_OCTETS_MAX {
            self.truncated = true;
        }
        // And for the event that reports it, which a trace at its most events would drop.
        self.cut_if_trace_full();
        !self.truncated
    }

    /// Cuts the run when its trace holds `TRACE_EVENTS_MAX` events: no more can be recorded.
    fn cut_if_trace_full(&mut self) {
        if self.events.len() >= TRACE_EVENTS_MAX {
            self.truncated = true;
            self.cut_at_events = true;
        }
    }

    /// Counts a message a connection's client holds to send, until the connection ends.
    fn hold_for(&mut self, conn: ConnId, octets: usize) {
        self.hold(octets);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.held_octets = c.held_octets.saturating_add(octets);
        }
    }

    /// Memory counted by `hold` that the run no longer holds.
    fn release_octets(&mut self, octets: usize) {
        self.run_octets = self.run_octets.saturating_sub(octets);
    }

    fn scheduled(&mut self, time_ms: u64, action: Action) -> Scheduled {
        self.sequence += 1;
        Scheduled {
            time_ms: time_ms.max(self.now_ms),
            sequence: self.sequence,
            action,
        }
    }

    fn schedule_at(&mut self, time_ms: u64, action: Action) {
        let scheduled = self.scheduled(time_ms, action);
        self.agenda.push(scheduled);
    }

    fn schedule_in(&mut self, delay_ms: u64, action: Action) {
        self.schedule_at(self.now_ms.saturating_add(delay_ms), action);
    }

    /// Takes at most `limit` more scheduled actions; whether the run is over: nothing left to
    /// do before its end, or the run cut at its bound of steps or memory.
    fn run_some(&mut self, limit: u64) -> bool {
        let end_ms = self.scenario.run_until_s.saturating_mul(1000);
        let mut taken = 0u64;
        while let Some(Scheduled {
            time_ms, action, ..
        }) = self.agenda.pop()
        {
            // Timers and bytes for a connection that has ended change nothing; skipping them
            // keeps the clock at the last thing that happened.
            let stale = match &action {
                // Nor does anything for a server that hangs: it reads nothing, and its timers
                // stopped with it.
                Action::Arrive(conn, Side::Server, _)
                | Action::PeerClosed(conn, Side::Server)
                | Action::Timer(conn, Side::Server) => {
                    self.conns.get(conn).is_none_or(|c| c.stalled)
                }
                Action::Arrive(conn, ..)
                | Action::PeerClosed(conn, _)
                | Action::Timer(conn, _)
                | Action::ServerAccept(conn)
                | Action::ClientConnected(conn) => !self.conns.contains_key(conn),
                // Nor do a queue run for an entry that is done, or the timeout of a lookup
                // that was answered.
                Action::QueueRun(host, entry) => !self.hosts[*host].queue.contains_key(entry),
                Action::DnsTimedOut(host, entry) => {
                    !self.pending_lookups.contains_key(&(*host, *entry))
                }
                _ => false,
            };
            if stale {
                continue;
            }
            if time_ms > end_ms {
                // Something was still to happen: the run stops at its end, and the report of
                // what is still queued is made then, not at the last thing that happened.
                self.now_ms = self.now_ms.max(end_ms);
                return true;
            }
            if self.actions_taken >= STEPS_MAX || self.truncated {
                return true;
            }
            self.actions_taken += 1;
            debug_assert!(time_ms >= self.now_ms, "time never goes backwards");
            self.now_ms = time_ms;
            self.step(action);
            taken += 1;
            if taken >= limit {
                return false;
            }
        }
        true
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Submit(index) => self.submit(index),
            Action::Fetch(index) => self.fetch(index),
            Action::RawSession(index) => self.raw_session(index),
            Action::ServerAccept(conn) => self.server_accept(conn),
            Action::ClientConnected(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    match &mut c.sessions {
                        Sessions::Smtp { client, .. } => client.handle_connected(self.now_ms),
                        Sessions::Pop3 { client, .. } => client.handle_connected(self.now_ms),
                    }
                    self.record(Event::ConnectionOpened { conn });
                    self.pump(conn);
                }
            }
            Action::ClientRefused(conn, reason) => {
                let failure = format!("connection refused ({reason})");
                self.record(Event::ConnectionRefused { conn, reason });
                self.connection_failed(conn, &failure);
            }
            Action::ClientConnectTimeout(conn) => {
                self.record(Event::ConnectionTimedOut { conn });
                self.connection_failed(conn, "no answer (connection timed out)");
            }
            Action::NobodyAnswered(host, entry_id, conn) => {
                self.record(Event::ConnectionTimedOut { conn });
                let Some(target) = self.hosts[host]
                    .queue
                    .get(&entry_id)
                    .and_then(|e| e.targets.get(e.target_index))
                else {
                    return;
                };
                let reason = "no answer (connection timed out)";
                let reply = Reply::new(
                    451,
                    Some(EnhancedStatus::new(4, 4, 1)),
                    format!("{}: {reason}", target_label(&target.name, target.address)),
                );
                let address = target.address;
                self.mark_unreachable(host, address, reason);
                self.try_next_target(host, entry_id, Failure::local(reply));
            }
            Action::Arrive(conn, side, event) => self.arrive(conn, side, event),
            Action::PeerClosed(conn, side) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if let Some(end) = c.sessions.end(side) {
                        end.handle_peer_closed();
                    }
                    self.pump(conn);
                }
            }
            Action::Timer(conn, side) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if let Some(end) = c.sessions.end(side) {
                        end.handle_timeout(self.now_ms);
                    }
                    match side {
                        Side::Client => c.client_timer_ms = None,
                        Side::Server => c.server_timer_ms = None,
                    }
                    self.pump(conn);
                }
            }
            Action::QueueRun(host, entry) => self.queue_run(host, entry),
            Action::DnsTimedOut(host, entry) => {
                if let Some(lookup) = self.pending_lookups.remove(&(host, entry)) {
                    self.continue_mx_lookup(host, entry, lookup);
                }
            }
        }
    }

    // ----- fates -----

    fn track(&mut self, message: &str, recipient: &str) {
        self.tracked
            .push((message.to_string(), recipient.to_string()));
    }

    /// The host at `address`, if any: an IPv4-mapped IPv6 address reaches the IPv4 host.
    fn host_at(&self, address: IpAddr) -> Option<usize> {
        self.host_by_address.get(&address.to_canonical()).copied()
    }

    /// The same fate for several addresses of one message (spellings of one mailbox).
    fn set_fate_of_each(&mut self, message: &str, recipients: &[&str], fate: Fate) {
        let Some((last, others)) = recipients.split_last() else {
            return;
        };
        for recipient in others {
            self.set_fate(message, recipient, fate.clone());
        }
        self.set_fate(message, last, fate);
    }

    fn set_fate(&mut self, message: &str, recipient: &str, fate: Fate) {
        let key = (message.to_string(), recipient.to_string());
        match self.fates.entry(key) {
            hash_map::Entry::Vacant(entry) => {
                entry.insert(fate);
            }
            hash_map::Entry::Occupied(mut entry) => {
                let previous = entry.get();
                if !matches!(previous, Fate::Queued { .. }) {
                    self.problems.push(format!(
                        "{message} <{recipient}> was {} and then {}",
                        previous.word(),
                        fate.word()
                    ));
                }
                entry.insert(fate);
            }
        }
    }

    // ----- user agents -----

    fn submit(&mut self, index: usize) {
        self.messages_submitted += 1;
        // A copy of the reference (or of the shared pointer): `spec` is read while the world
        // changes.
        let scenario = self.scenario.clone();
        let spec: &MessageSpec = &scenario.messages[index];
        let label = numbered("m", (index + 1) as u64);
        // The header has the addresses as written, display names too; the envelope, and the
        // user agent's name, the addresses alone.
        let from = envelope_address(&spec.from);
        let ua = Name::from([trace::USER_AGENT_PREFIX, &*from].concat());
        // Each once, in the form servers report back, so that every actor names a recipient
        // the same way.
        let forward_paths = distinct_recipients(
            spec.to
                .iter()
                .chain(&spec.cc)
                .chain(&spec.bcc)
                .map(|written| envelope_address(written)),
        );
        let bytes = match &spec.raw {
            // Lines end in CRLF, as the client sends them anyway (RFC 5321 2.3.8), so that the
            // composed size is the one SIZE declares (RFC 1870 3).
            Some(raw) => crate::smtp::dot::normalize_line_endings(raw.as_bytes()),
            None => {
                let attachments = spec
                    .attachments
                    .iter()
                    .map(|a| a.attachment(index))
                    .collect();
                let request = ComposeRequest {
                    from: spec.from.clone(),
                    to: spec.to.clone(),
                    cc: spec.cc.clone(),
                    bcc: spec.bcc.clone(),
                    subject: spec.subject.clone(),
                    body_text: spec.body.clone(),
                    attachments,
                    date_unix_s: self
                        .scenario
                        .start_unix_s
                        .saturating_add((self.now_ms / 1000) as i64),
                    utc_offset_min: 0,
                    message_id_token: numbered(&[label.as_str(), "."].concat(), self.seed),
                    hostname: domain_of(&from),
                    eight_bit_body: spec.eight_bit_body,
                };
                match compose(&request) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        for recipient in &forward_paths {
                            self.track(&label, recipient);
                        }
                        let reason = format!("the user agent could not compose it: {error}");
                        self.not_submitted(&ua, &label, forward_paths, reason);
                        return;
                    }
                }
            }
        };
        for recipient in &forward_paths {
            self.track(&label, recipient);
        }
        self.record(Event::MessageComposed(Box::new(trace::MessageComposed {
            message: label.clone(),
            ua: ua.clone(),
            reverse_path: from.to_string(),
            forward_paths: forward_paths.clone(),
            octets: bytes.len(),
            raw: spec.raw.is_some(),
        })));
        // Validation guarantees the host exists; an unvalidated scenario gets a refusal.
        let Some(&server) = self.host_by_name.get(&spec.submit_to.to_ascii_lowercase()) else {
            for recipient in &forward_paths {
                self.set_fate(
                    &label,
                    recipient,
                    Fate::RefusedAtSubmission {
                        status: format!("no host is named {}", spec.submit_to),
                    },
                );
            }
            return;
        };
        // A user agent with a session open to its server sends the next message on it, as
        // mail programs do when several messages leave the outbox together.
        let envelope = Envelope {
            dsn: spec.dsn.parameters(),
            reverse_path: from.to_string(),
            forward_paths: forward_paths.clone(),
        };
        let scenario = self.scenario.clone();
        let same_session = |c: &Conn| match &c.purpose {
            Purpose::Submission { spec: first, .. } => {
                let first = &scenario.messages[*first];
                c.server == server
                    && c.port == spec.port
                    && envelope_address(&first.from) == from
                    && first.auth == spec.auth
                    && first.pipelining == spec.pipelining
            }
            _ => false,
        };
        // The user agent holds the message until its session ends.
        let octets = bytes.len();
        if let Some(conn) = self.join_session((server, spec.port), same_session, &envelope, &bytes)
        {
            if let Some(Purpose::Submission { messages, .. }) =
                self.conns.get_mut(&conn).map(|c| &mut c.purpose)
            {
                messages.push(SubmittedMessage {
                    label,
                    forward_paths,
                });
            }
            self.hold_for(conn, octets);
            self.pump(conn);
            return;
        }
        // User agents live in 198.51.100.0/24 and, for larger runs, the benchmarking range
        // 198.19.0.0/16; readers of mailboxes in 198.18.0.0/16: no two clash.
        let client_address = if index < 250 {
            [198, 51, 100, index as u8 + 1]
        } else {
            [198, 19, (index / 250 % 256) as u8, (index % 250) as u8 + 1]
        };
        let client_address = client_address_for(client_address, self.hosts[server].spec.address);
        // The user agent greets as a client of the sender's domain; a sender at an address
        // literal has no domain to name, so it gives its own address (RFC 5321 4.1.1.1), and
        // so does one whose domain is no domain (bob@-x.test): the server then judges the
        // address where it is given, in MAIL FROM, not the greeting.
        let from_domain = domain_of(&from);
        let client_name = format!("client.{from_domain}");
        let helo_name = match crate::smtp::address::Domain::parse(&client_name) {
            Ok(crate::smtp::address::Domain::Name(_)) => client_name,
            _ => address_literal(client_address),
        };
        let mut config = ClientConfig::new(helo_name);
        config.credentials = spec
            .auth
            .as_ref()
            .map(|a| (a.user.clone(), a.password.clone()));
        config.prefer_pipelining = spec.pipelining;
        // A mail program sends everything in its outbox on the one connection: the limit on
        // transactions is a sending server's, which spreads its queue over connections.
        config.transactions_max = usize::MAX;
        let client = match ClientSession::new(config, envelope, bytes) {
            Ok(client) => client,
            Err(error) => {
                let reason = format!("the user agent refused to send it: {error}");
                self.not_submitted(&ua, &label, forward_paths, reason);
                return;
            }
        };
        let conn = self.open_connection(
            ua,
            client_address,
            server,
            spec.port,
            Sessions::Smtp {
                client: Box::new(SmtpClient::Engine(Box::new(client))),
                server: None,
            },
            Purpose::Submission {
                spec: index,
                messages: vec![SubmittedMessage {
                    label,
                    forward_paths,
                }],
            },
        );
        self.hold_for(conn, octets);
    }

    /// A message its user agent would not submit, by its own finding: the step that says
    /// why, and its recipients' fate, `reason` being their status.
    fn not_submitted(&mut self, ua: &Name, label: &str, recipients: Vec<String>, reason: String) {
        self.record(Event::SubmissionFailed(Box::new(trace::SubmissionFailed {
            ua: Rc::clone(ua),
            message: label.to_string(),
            recipients: recipients.clone(),
            reason: reason.clone(),
        })));
        for recipient in &recipients {
            self.set_fate(
                label,
                recipient,
                Fate::RefusedAtSubmission {
                    status: reason.clone(),
                },
            );
        }
    }

    /// Adds a message to an open SMTP session that `wanted` picks and that still takes
    /// messages (RFC 5321 3.3: one session, many transactions); returns the connection.
    /// Only what the client knows counts: a server's close or a broken link reaches it one
    /// latency later, and a message given to the session before then fails with it (a 421,
    /// or a lost connection): a sending server tries it again like any other temporary
    /// failure, and a user agent tells its user it was not sent (refused at submission).
    /// Hands a message to the oldest open SMTP session to `server`'s `port` that `wanted`
    /// and whose client takes it; that connection.
    fn join_session(
        &mut self,
        (server, port): (usize, u16),
        wanted: impl Fn(&Conn) -> bool,
        envelope: &Envelope,
        message: &[u8],
    ) -> Option<ConnId> {
        let now = self.now_ms;
        for &conn in self.smtp_conns_to.get(&(server, port))? {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.client_closed || !wanted(c) {
                continue;
            }
            let Sessions::Smtp { client, .. } = &mut c.sessions else {
                continue;
            };
            let SmtpClient::Engine(engine) = client.as_mut() else {
                continue;
            };
            if engine.add_message(envelope.clone(), message, now).is_ok() {
                return Some(conn);
            }
        }
        None
    }

    fn fetch(&mut self, index: usize) {
        let spec: &FetchSpec = &self.scenario.fetches[index];
        let Some(&host) = self.host_by_name.get(&spec.host.to_ascii_lowercase()) else {
            return;
        };
        let password = spec.password.clone().unwrap_or_else(|| {
            self.store
                .borrow()
                .mailboxes
                .get(&mailbox_key(&spec.mailbox))
                .and_then(|m| m.password.clone())
                .unwrap_or_default()
        });
        let user_agent = Name::from([trace::USER_AGENT_PREFIX, &spec.mailbox].concat());
        let mut config = Pop3ClientConfig::new(spec.mailbox.clone(), password);
        config.delete_after_retrieve = spec.delete;
        let client = match Pop3Client::new(config) {
            Ok(client) => client,
            Err(error) => {
                // The user agent's own setup failed before any connection: no server was
                // involved, so this is the user agent's event, not a delivery refusal.
                self.record(Event::FetchNotStarted(Box::new(trace::FetchNotStarted {
                    client: user_agent,
                    mailbox: spec.mailbox.clone(),
                    reason: format!("the POP3 client could not start: {error}"),
                })));
                return;
            }
        };
        self.open_connection(
            user_agent,
            client_address_for(
                [198, 18, (index / 250) as u8, (index % 250) as u8 + 1],
                self.hosts[host].spec.address,
            ),
            host,
            110,
            Sessions::Pop3 {
                client: Box::new(ClientEnd::Engine(Box::new(client))),
                server: None,
            },
            Purpose::Fetch {
                mailbox: spec.mailbox.clone(),
            },
        );
    }

    fn raw_session(&mut self, index: usize) {
        let spec = &self.scenario.raw_sessions[index];
        let Some(&server) = self.host_by_name.get(&spec.server.to_ascii_lowercase()) else {
            return;
        };
        let client = RawClient {
            pending: Some(spec.bytes.clone().into_bytes()),
            output: None,
            finished: false,
        };
        // Port 110 reaches the host's POP3 server, any other its SMTP server.
        let sessions = if spec.port == 110 {
            Sessions::Pop3 {
                client: Box::new(ClientEnd::Raw(client)),
                server: None,
            }
        } else {
            Sessions::Smtp {
                client: Box::new(ClientEnd::Raw(client)),
                server: None,
            }
        };
        self.open_connection(
            Name::from(spec.client.as_str()),
            spec.address,
            server,
            spec.port,
            sessions,
            Purpose::Raw {
                label: format!("r{}", index + 1),
            },
        );
    }

    // ----- connections -----

    fn open_connection(
        &mut self,
        client_name: Name,
        client_address: IpAddr,
        server: usize,
        port: u16,
        sessions: Sessions,
        purpose: Purpose,
    ) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let host = &self.hosts[server];
        // A slow host slows every link it is on, as client or as server.
        let client_extra_ms = self
            .host_at(client_address)
            .map(|index| self.hosts[index].extra_latency_ms(self.now_ms))
            .unwrap_or(0);
        let latency_ms = self
            .scenario
            .latency_ms
            .saturating_add(host.extra_latency_ms(self.now_ms))
            .saturating_add(client_extra_ms);
        let protocol = match sessions {
            Sessions::Smtp { .. } => Protocol::Smtp,
            Sessions::Pop3 { .. } => Protocol::Pop3,
        };
        let down = host.fault(self.now_ms, |k| *k == FaultKind::Down);
        let timeout_ms = self.scenario.retry.connect_timeout_s.saturating_mul(1000);
        // A link so slow that the handshake's round trip outlasts the client's patience is, to
        // the client, a host that does not answer.
        let silent = host.fault(self.now_ms, |k| *k == FaultKind::NoAnswer)
            || latency_ms.saturating_mul(2) >= timeout_ms;
        let attempted = Event::ConnectionAttempted(Box::new(trace::ConnectionAttempted {
            conn,
            client: client_name.clone(),
            server: Rc::clone(&host.name),
            address: host.spec.address.to_string(),
            port,
            protocol,
        }));
        self.record(attempted);
        if protocol == Protocol::Smtp {
            self.smtp_conns_to
                .entry((server, port))
                .or_default()
                .push(conn);
        }
        self.conns.insert(
            conn,
            Conn {
                client_name,
                client_address,
                server,
                port,
                latency_ms,
                sessions,
                purpose,
                client_closed: false,
                server_closed: false,
                dropped: false,
                stall_at: None,
                stalled: false,
                client_timer_ms: None,
                server_timer_ms: None,
                server_in_data: false,
                pop3_replies_unsent: 0,
                waiting_deliveries: VecDeque::new(),
                held_octets: 0,
                server_idle_timeout: false,
                settled_early: Vec::new(),
                dsn_withheld: None,
            },
        );
        if silent {
            self.schedule_in(timeout_ms, Action::ClientConnectTimeout(conn));
        } else if down {
            self.schedule_in(
                latency_ms.saturating_mul(2),
                // A refusal comes from a host that is up with nothing listening (its mail
                // server stopped); a host that is off does not answer at all (a timeout).
                Action::ClientRefused(conn, format!("no server listens on port {port}")),
            );
        } else {
            self.schedule_in(latency_ms, Action::ServerAccept(conn));
            self.schedule_in(latency_ms.saturating_mul(2), Action::ClientConnected(conn));
        }
        conn
    }

    fn server_accept(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let host = &self.hosts[c.server];
        // The client as the server sees it: an IPv4-mapped IPv6 address is the IPv4 client
        // (RFC 4291 2.5.5.2), to greylisting and in Received: alike.
        let peer = PeerInfo::new(
            c.client_address.to_canonical().to_string(),
            Some(40000 + (conn % 20000) as u16),
        );
        let mut stalls_at_greeting = false;
        match &mut c.sessions {
            Sessions::Smtp { server, .. } => {
                let busy = host.fault(self.now_ms, |k| *k == FaultKind::Busy);
                let refusing = host.fault(self.now_ms, |k| *k == FaultKind::Refuse);
                // A server that turns the client away at its greeting answers at once.
                if !busy && !refusing {
                    c.stall_at = host.stall_point(self.now_ms);
                }
                stalls_at_greeting = c.stall_at == Some(StallPoint::Greeting);
                let submission = c.port == 587 && !host.users.is_empty();
                let mut config = ServerConfig::new(host.spec.name.clone());
                config.message_size_max_octets = host.spec.max_size_octets;
                config.recipients_max = host.spec.max_recipients;
                config.extensions = host.spec.extensions;
                config.auth_enabled = submission;
                config.bare_line_ending = match host.spec.bare_line_ending {
                    BareLineEndingSpec::Reject => BareLineEnding::Reject,
                    BareLineEndingSpec::Normalize => BareLineEnding::Normalize,
                };
                // The trace has every line as it crossed the link.
                config.command_events = false;
                let policy = SimPolicy {
                    host: c.server,
                    local_domains: Rc::clone(&host.local_domains),
                    relay_domains: Rc::clone(&host.relay_domains),
                    users: Rc::clone(&host.users),
                    submission,
                    reject_sender_login_mismatch: host.spec.reject_sender_login_mismatch,
                    greylist_delay_ms: host.spec.greylist_s.map(|s| s.saturating_mul(1000)),
                    greylist: Rc::clone(&host.greylist),
                    store: Rc::clone(&self.store),
                    busy,
                    refusing,
                    scripted_replies: host.scripted_replies(self.now_ms),
                    hostname: Rc::clone(&host.name),
                    address: host.spec.address,
                    postmaster_key: Rc::clone(&host.postmaster_key),
                };
                *server = Some(Box::new(ServerSession::new(
                    config,
                    policy,
                    peer,
                    self.now_ms,
                )));
            }
            Sessions::Pop3 { server, .. } => {
                let store = SimMaildrop {
                    host: c.server,
                    store: Rc::clone(&self.store),
                    locked: None,
                    opened_with: 0,
                };
                *server = Some(Box::new(Pop3Server::new(
                    Pop3ServerConfig::new(host.spec.name.clone()),
                    store,
                    self.now_ms,
                )));
            }
        }
        if stalls_at_greeting {
            self.stall(conn, false);
        }
        self.pump(conn);
    }

    /// The server of `conn` hangs where its stall fault says: from now on it reads nothing,
    /// writes nothing and times nothing out, and its client waits for a reply that never
    /// comes (RFC 5321 4.5.3.2).
    /// `after_chunks`: a stall at the message's end that came after its last BDAT chunk.
    fn stall(&mut self, conn: ConnId, after_chunks: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(at) = c.stall_at.filter(|_| !c.stalled) else {
            return;
        };
        c.stalled = true;
        self.record(Event::ServerStalled {
            conn,
            at,
            after_chunks,
        });
    }

    /// Records bytes sent on a connection and has them arrive at the other side after the
    /// link's latency.
    fn transmit(&mut self, conn: ConnId, direction: Direction, bytes: Vec<u8>, latency_ms: u64) {
        let event = self.events.len();
        self.record(Event::Transmitted {
            conn,
            direction,
            bytes: WireBytes::from_vec(bytes),
        });
        // A full trace ends the run, so bytes that could not be recorded never arrive.
        if self.events.len() > event {
            let side = match direction {
                Direction::ClientToServer => Side::Server,
                Direction::ServerToClient => Side::Client,
            };
            self.schedule_in(latency_ms, Action::Arrive(conn, side, event));
        }
    }

    fn arrive(&mut self, conn: ConnId, side: Side, event: usize) {
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.dropped {
            return;
        }
        let bytes = match self.events.get(event).map(|e| &e.event) {
            Some(Event::Transmitted { bytes, .. }) => bytes.as_bytes(),
            _ => {
                debug_assert!(false, "an arrival names its Transmitted event");
                return;
            }
        };
        // A host that breaks connections during DATA does so in the middle of the message:
        // part of what is on its way reaches the server, never the end of the data. A BDAT
        // chunk comes in the same write as its command, which the server takes before it is
        // in the data: that write is the message's too.
        let chunk_start = match &c.sessions {
            Sessions::Smtp {
                server: Some(s), ..
            } if side == Side::Server
                && !c.server_in_data
                && matches!(
                    s.state(),
                    crate::smtp::server::ServerStateKind::ExpectRcptOrData
                        | crate::smtp::server::ServerStateKind::ExpectBdat
                ) =>
            {
                // Where the chunk starts; an empty one (`BDAT 0 LAST`) has no middle to break
                // in.
                crate::smtp::command::bdat_with_chunk(bytes)
                    .filter(|(chunk, _)| !chunk.is_empty())
                    .map(|(chunk, _)| bytes.len() - chunk.len())
            }
            _ => None,
        };
        if side == Side::Server
            && (c.server_in_data || chunk_start.is_some())
            && self.hosts[c.server].fault(now, |k| *k == FaultKind::DropInData)
        {
            c.dropped = true;
            c.server_closed = true;
            let mut reason = String::from(
                "the link broke as the data began to arrive: the server got none of it, so it \
                 has no message",
            );
            if let Sessions::Smtp {
                server: Some(s), ..
            } = &mut c.sessions
            {
                // A chunk written with its command arrives in part: the command and the
                // chunk's first half. Bytes that arrive while the server reads a chunk begun
                // earlier do not: its end is counted, and what follows it may be a command.
                // DATA's content arrives in part (none of it when it starts with a dot).
                if let Some(start) = chunk_start {
                    // The command and the first half of its chunk: never the chunk's end.
                    let chunk_octets = bytes.len() - start;
                    let reached = &bytes[..start + chunk_octets / 2];
                    s.handle_input(reached, now);
                    // Chunks a pipelining client wrote behind it were on their way too.
                    let (behind, behind_octets) = self.events[event + 1..]
                        .iter()
                        .filter_map(|later| match &later.event {
                            Event::Transmitted {
                                conn: on,
                                direction: Direction::ClientToServer,
                                bytes,
                            } if *on == conn => Some(bytes.as_bytes().len()),
                            _ => None,
                        })
                        .fold((0, 0), |(writes, octets), len| (writes + 1, octets + len));
                    let behind = match behind {
                        0 => String::new(),
                        1 => format!(
                            "; the write sent behind it ({behind_octets} octets) never arrives"
                        ),
                        writes => format!(
                            "; the {writes} writes sent behind it without waiting (pipelined, \
                             {behind_octets} octets) never arrive"
                        ),
                    };
                    reason = format!(
                        "the link broke in the middle of a BDAT chunk: {} of the {} octets on \
                         their way reached the server (the command and {} of the chunk's {} \
                         octets), not the chunk's end, so it has no message and keeps none of \
                         it{behind}",
                        reached.len(),
                        bytes.len(),
                        chunk_octets / 2,
                        chunk_octets
                    );
                } else {
                    let reached = &bytes[..part_before_data_end(bytes)];
                    if s.state() == crate::smtp::server::ServerStateKind::ReceivingData
                        && !reached.is_empty()
                    {
                        s.handle_input(reached, now);
                        reason = format!(
                            "the link broke in the middle of the message: {} of the {} octets \
                             on their way reached the server, not the final dot, so it has no \
                             message and keeps none of them",
                            reached.len(),
                            bytes.len()
                        );
                    }
                }
                s.handle_peer_closed();
            }
            let latency = c.latency_ms;
            self.record(Event::ConnectionDropped { conn, reason });
            self.schedule_in(latency, Action::PeerClosed(conn, Side::Client));
            self.pump(conn);
            return;
        }
        // A server that hangs at a command reads what comes before it, and no more.
        let stalls_at = match (c.stall_at, side) {
            (Some(at), Side::Server) if !c.server_in_data => stalled_command_start(bytes, at),
            _ => None,
        };
        let bytes = &bytes[..stalls_at.unwrap_or(bytes.len())];
        match (&mut c.sessions, side) {
            (Sessions::Smtp { client, .. }, Side::Client) => client.handle_input(bytes, now),
            (
                Sessions::Smtp {
                    server: Some(s), ..
                },
                Side::Server,
            ) => s.handle_input(bytes, now),
            (Sessions::Pop3 { client, .. }, Side::Client) => client.handle_input(bytes, now),
            (
                Sessions::Pop3 {
                    server: Some(s), ..
                },
                Side::Server,
            ) => s.handle_input(bytes, now),
            _ => {}
        }
        self.pump(conn);
        if stalls_at.is_some() {
            self.stall(conn, false);
            // A client that gave up before the command arrived has closed already: the
            // connection is over now.
            self.after_pump(conn);
        }
    }

    /// Moves everything the two sessions of a connection produced: events into the trace,
    /// bytes onto the link, closes to the other side, timers into the agenda.
    fn pump(&mut self, conn: ConnId) {
        loop {
            let mut progressed = false;
            progressed |= self.pump_server(conn);
            progressed |= self.pump_client(conn);
            if !progressed {
                break;
            }
        }
        self.after_pump(conn);
    }

    fn pump_server(&mut self, conn: ConnId) -> bool {
        let mut progressed = false;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return progressed;
            };
            if c.stalled {
                return progressed;
            }
            let latency = c.latency_ms;
            enum Out {
                Event(ServerEvent),
                Pop3(Pop3ServerEvent),
                Bytes(Vec<u8>),
            }
            let next = match &mut c.sessions {
                Sessions::Smtp {
                    server: Some(s), ..
                } => s
                    .poll_event()
                    .map(Out::Event)
                    .or_else(|| s.poll_output().map(Out::Bytes)),
                Sessions::Pop3 {
                    server: Some(s), ..
                } => s.poll_event().map(Out::Pop3).or_else(|| {
                    let bytes = s.poll_output()?;
                    c.pop3_replies_unsent = c.pop3_replies_unsent.saturating_sub(1);
                    Some(Out::Bytes(bytes))
                }),
                _ => None,
            };
            let Some(next) = next else {
                // Everything the server wrote is on the link: its MDA delivers what it took.
                if !c.waiting_deliveries.is_empty() {
                    self.deliver_waiting(conn);
                }
                return progressed;
            };
            progressed = true;
            match next {
                Out::Bytes(bytes) => {
                    if !c.dropped {
                        self.transmit(conn, Direction::ServerToClient, bytes, latency);
                    }
                }
                Out::Event(event) => self.server_event(conn, event),
                Out::Pop3(event) => self.pop3_server_event(conn, event),
            }
        }
    }

    fn server_event(&mut self, conn: ConnId, event: ServerEvent) {
        match event {
            ServerEvent::ReplySent { reply, explanation } => {
                let event = Event::ReplyExplained {
                    conn,
                    code: reply.code,
                    enhanced: reply.enhanced,
                    note: self.interner.reply_note(explanation),
                };
                self.record(event)
            }
            ServerEvent::StateChanged { from, to } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.server_in_data = matches!(
                        to,
                        crate::smtp::server::ServerStateKind::ReceivingData
                            | crate::smtp::server::ServerStateKind::ReceivingBdat
                    );
                }
                self.record(Event::ServerState {
                    conn,
                    from: StateName::SmtpServer(from),
                    to: StateName::SmtpServer(to),
                });
            }
            ServerEvent::MessageReceived { message } => {
                // The replies written before the message ended (a client that sent commands and
                // message in one go) leave before the message is taken.
                self.send_pending_server_output(conn, usize::MAX);
                // Those replies include the 250 for an earlier message in the same input,
                // whose delivery was waiting for it.
                self.deliver_waiting(conn);
                // A server that hangs at the final dot never takes the message: without its
                // 250 it is not responsible for it (RFC 5321 6.1), and its client keeps it.
                let stalls_at_dot = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| c.stall_at == Some(StallPoint::Dot));
                if stalls_at_dot {
                    let after_chunks = message.envelope.chunked;
                    drop(message);
                    self.stall(conn, after_chunks);
                    return;
                }
                let (outcome, local) = self.accept_message(conn, &message);
                let local = local.filter(|local| !local.recipients.is_empty());
                let Some(c) = self.conns.get_mut(&conn) else {
                    // A connection being pumped is there; were it not, a message that was
                    // taken would still be delivered, never lost.
                    if let Some(local) = local {
                        self.deliver_to_mailboxes(local);
                    }
                    return;
                };
                // The server owns the message from its 250 on (RFC 5321 6.1), and its MDA
                // delivers after: once the reply is out, the mailboxes get it (or the MDA
                // refuses it, and the server bounces it).
                if let Some(local) = local {
                    c.waiting_deliveries.push_back(local);
                }
                if let Sessions::Smtp {
                    server: Some(s), ..
                } = &mut c.sessions
                {
                    // Cannot fail: a MessageReceived event always leaves a message awaiting
                    // storage.
                    let _ = s.message_stored(outcome, self.now_ms);
                }
            }
            ServerEvent::Closed { .. } => {}
            ServerEvent::CommandReceived { .. } | ServerEvent::Authenticated { .. } => {}
        }
    }

    /// Puts up to `replies` of what the server has written on the link now (all of it for
    /// SMTP, whose output is one buffer), in order.
    fn send_pending_server_output(&mut self, conn: ConnId, replies: usize) {
        for _ in 0..replies {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let bytes = match &mut c.sessions {
                Sessions::Smtp {
                    server: Some(s), ..
                } => s.poll_output(),
                Sessions::Pop3 {
                    server: Some(s), ..
                } => s.poll_output(),
                _ => None,
            };
            let Some(bytes) = bytes else {
                return;
            };
            c.pop3_replies_unsent = c.pop3_replies_unsent.saturating_sub(1);
            let latency = c.latency_ms;
            if !c.dropped {
                self.transmit(conn, Direction::ServerToClient, bytes, latency);
            }
        }
    }

    /// The MDA delivers, oldest first, the messages whose server reply has gone out.
    fn deliver_waiting(&mut self, conn: ConnId) {
        while let Some(local) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.waiting_deliveries.pop_front())
        {
            self.deliver_to_mailboxes(local);
        }
    }

    fn pop3_server_event(&mut self, conn: ConnId, event: Pop3ServerEvent) {
        match event {
            Pop3ServerEvent::ReplySent {
                ok,
                first_line,
                explanation,
                rfc,
            } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.pop3_replies_unsent += 1;
                }
                let meaning = self
                    .interner
                    .intern(&pop3::wire::status_meaning(ok, &first_line));
                let event = Event::ReplyExplained {
                    conn,
                    code: pop3_reply_code(ok, &first_line),
                    enhanced: None,
                    note: self.interner.note(meaning, &explanation, &rfc),
                };
                self.record(event)
            }
            Pop3ServerEvent::StateChanged { from, to } => {
                // Replies already written leave before a state change: those to earlier
                // commands of the same input (a client that sent them all at once), so that
                // the trace reads command by command, and QUIT's own before the session's
                // end (`Update -> Closed`).
                let unsent = self.conns.get(&conn).map_or(0, |c| c.pop3_replies_unsent);
                self.send_pending_server_output(conn, unsent);
                self.record(Event::ServerState {
                    conn,
                    from: StateName::Pop3Server(from),
                    to: StateName::Pop3Server(to),
                })
            }
            Pop3ServerEvent::MaildropUpdated { user, deleted_uids } => {
                // Replies to the commands before QUIT (a client that sent them all at once)
                // leave before the maildrop changes; QUIT's own reply comes after.
                let unsent = self.conns.get(&conn).map_or(0, |c| c.pop3_replies_unsent);
                self.send_pending_server_output(conn, unsent);
                let host_name = self
                    .conns
                    .get(&conn)
                    .map(|c| Rc::clone(&self.hosts[c.server].name))
                    .unwrap_or_default();
                let mut store = self.store.borrow_mut();
                // The reader may spell the mailbox its own way (case, U-label or A-label):
                // the trace names it as the MDA did when it stored the messages.
                let mut mailbox_name = user;
                if let Some(mailbox) = store.mailboxes.get_mut(&mailbox_key(&mailbox_name)) {
                    mailbox.messages.retain(|m| {
                        let gone = deleted_uids.contains(&m.uid);
                        if gone {
                            mailbox.used_octets =
                                mailbox.used_octets.saturating_sub(m.bytes.len() as u64);
                        }
                        !gone
                    });
                    mailbox_name.clone_from(&mailbox.address);
                }
                drop(store);
                // A deleted message frees no memory of the run: its delivery's event keeps it.
                self.record(Event::MailboxUpdated(Box::new(trace::MailboxUpdated {
                    host: host_name,
                    mailbox: mailbox_name,
                    deleted: deleted_uids,
                })));
            }
            // After the update (if any), the maildrop is free for the next session.
            Pop3ServerEvent::Closed { reason, .. } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.server_idle_timeout = reason == pop3::server::CloseReason::IdleTimeout;
                    if let Sessions::Pop3 {
                        server: Some(s), ..
                    } = &mut c.sessions
                    {
                        s.store_mut().release();
                    }
                }
            }
            _ => {}
        }
    }

    fn pump_client(&mut self, conn: ConnId) -> bool {
        let mut progressed = false;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return progressed;
            };
            let latency = c.latency_ms;
            enum Out {
                Smtp(ClientEvent),
                Pop3(Pop3ClientEvent),
                Bytes(Vec<u8>),
            }
            let next = match &mut c.sessions {
                Sessions::Smtp { client, .. } => client
                    .poll_event()
                    .map(Out::Smtp)
                    .or_else(|| client.poll_output().map(Out::Bytes)),
                Sessions::Pop3 { client, .. } => client
                    .poll_event()
                    .map(Out::Pop3)
                    .or_else(|| client.poll_output().map(Out::Bytes)),
            };
            let Some(next) = next else {
                return progressed;
            };
            progressed = true;
            match next {
                Out::Bytes(bytes) => {
                    let withheld = c.dsn_withheld.take();
                    // A server's close reaches the client only after the link's latency: what
                    // the client writes meanwhile still goes on the wire (and is not read).
                    if !c.dropped {
                        self.transmit(conn, Direction::ClientToServer, bytes, latency);
                        if let Some(index) = withheld {
                            self.record_dsn_withheld(conn, index);
                        }
                    }
                }
                Out::Smtp(ClientEvent::DsnWithheld { index }) => c.dsn_withheld = Some(index),
                Out::Smtp(ClientEvent::StateChanged { from, to }) => {
                    self.record(Event::ClientState {
                        conn,
                        from: StateName::SmtpClient(from),
                        to: StateName::SmtpClient(to),
                    })
                }
                Out::Pop3(Pop3ClientEvent::StateChanged { from, to }) => {
                    self.record(Event::ClientState {
                        conn,
                        from: StateName::Pop3Client(from),
                        to: StateName::Pop3Client(to),
                    })
                }
                Out::Smtp(ClientEvent::MessageAccepted {
                    forward_paths,
                    reply,
                    more_transactions: true,
                    index,
                }) => self.settled_early(conn, index, forward_paths, &reply),
                Out::Smtp(ClientEvent::MessageFinished { index }) => {
                    self.message_finished(conn, index)
                }
                Out::Pop3(Pop3ClientEvent::MessageRetrieved { uid, bytes, .. }) => {
                    let mailbox = fetched_mailbox(&c.purpose);
                    self.record(Event::MessageRetrieved(Box::new(trace::MessageRetrieved {
                        conn,
                        mailbox,
                        uid,
                        octets: bytes.len(),
                    })));
                }
                Out::Pop3(Pop3ClientEvent::MessagesLeft { count, reason }) => {
                    let mailbox = fetched_mailbox(&c.purpose);
                    self.record(Event::MessagesLeft(Box::new(trace::MessagesLeft {
                        conn,
                        mailbox,
                        count,
                        reason,
                    })));
                }
                Out::Smtp(_) | Out::Pop3(_) => {}
            }
        }
    }

    /// Closes, timers and the end of a connection.
    fn after_pump(&mut self, conn: ConnId) {
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let latency = c.latency_ms;
        let (client_done, server_done, client_deadline, server_deadline) = match &c.sessions {
            Sessions::Smtp { client, server } => (
                client.is_finished(),
                server.as_ref().is_some_and(|s| s.is_closed()),
                client.poll_timeout(),
                server.as_ref().and_then(|s| s.poll_timeout()),
            ),
            Sessions::Pop3 { client, server } => (
                client.is_finished(),
                server.as_ref().is_some_and(|s| s.is_closed()),
                client.poll_timeout(),
                server.as_ref().and_then(|s| s.poll_timeout()),
            ),
        };
        let client_closes = client_done && !c.client_closed;
        let server_closes = server_done && !c.server_closed;
        c.client_closed |= client_closes;
        c.server_closed |= server_closes;
        let client_timer = if c.client_closed {
            None
        } else {
            needs_timer(&mut c.client_timer_ms, client_deadline)
        };
        let server_timer = if c.server_closed || c.stalled {
            None
        } else {
            needs_timer(&mut c.server_timer_ms, server_deadline)
        };
        let finished =
            c.client_closed && (c.server_closed || c.dropped || c.stalled) && client_done;
        let client_name = client_closes.then(|| Rc::clone(&c.client_name));
        let server = c.server;
        let idle_timeout = c.server_idle_timeout;
        if let Some(by) = client_name {
            self.record(Event::ConnectionClosed {
                conn,
                by,
                idle_timeout: false,
            });
        }
        if server_closes {
            let by = Rc::clone(&self.hosts[server].name);
            self.record(Event::ConnectionClosed {
                conn,
                by,
                idle_timeout,
            });
        }
        if client_closes {
            self.schedule_in(latency, Action::PeerClosed(conn, Side::Server));
        }
        if server_closes {
            self.schedule_in(latency, Action::PeerClosed(conn, Side::Client));
        }
        if let Some(deadline) = client_timer {
            let delay = deadline.saturating_sub(now);
            self.schedule_in(delay, Action::Timer(conn, Side::Client));
        }
        if let Some(deadline) = server_timer {
            let delay = deadline.saturating_sub(now);
            self.schedule_in(delay, Action::Timer(conn, Side::Server));
        }
        if finished {
            // Nothing is left waiting here (the server's pump delivers it once its output is
            // out), but a message a server took must never be lost with its connection.
            self.deliver_waiting(conn);
            if let Some(c) = self.remove_conn(conn) {
                self.release_octets(c.held_octets);
            }
        }
    }

    /// Takes a connection that has ended out of the open ones.
    fn remove_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        let key = (c.server, c.port);
        if let Some(open) = self.smtp_conns_to.get_mut(&key) {
            open.retain(|&id| id != conn);
            if open.is_empty() {
                self.smtp_conns_to.remove(&key);
            }
        }
        Some(c)
    }

    fn connection_failed(&mut self, conn: ConnId, reason: &str) {
        let Some(c) = self.remove_conn(conn) else {
            return;
        };
        self.release_octets(c.held_octets);
        match c.purpose {
            Purpose::Submission { messages, .. } => {
                for message in messages {
                    for recipient in &message.forward_paths {
                        self.set_fate(
                            &message.label,
                            recipient,
                            Fate::RefusedAtSubmission {
                                status: format!(
                                    "4.4.1 the submission server cannot be reached: {reason}"
                                ),
                            },
                        );
                    }
                }
            }
            // No server was reached, so none is named in a report (RFC 3464 2.3.5).
            Purpose::Relay { host, entries } => {
                let address = self.hosts[c.server].spec.address;
                self.mark_unreachable(host, address, reason);
                for entry in entries {
                    // Named as the sending host knows it, by the name DNS (or a route) gave and
                    // the address, as Postfix writes "connect to NAME[ADDRESS]:25": nothing
                    // answered to tell it the host's own name.
                    let label = self.hosts[host]
                        .queue
                        .get(&entry)
                        .and_then(|e| e.targets.get(e.target_index))
                        .map_or_else(
                            || target_label(&self.hosts[c.server].spec.name, address),
                            |target| target_label(&target.name, target.address),
                        );
                    let reply = Reply::new(
                        451,
                        Some(EnhancedStatus::new(4, 4, 1)),
                        format!("{label}: {reason}"),
                    );
                    self.try_next_target(host, entry, Failure::local(reply));
                }
            }
            Purpose::Fetch { .. } | Purpose::Raw { .. } => {}
        }
    }

    /// Recipients a relay's server took in a mail transaction that leaves others of the
    /// message for a later one are done with, whatever comes of the others: the trace says so
    /// now, as a sending MTA marks them done in its queue (Postfix does, per transaction),
    /// not when the message is done.
    /// `index` is the message's place in the session, as `message_finished` has it.
    fn settled_early(
        &mut self,
        conn: ConnId,
        index: usize,
        forward_paths: Vec<String>,
        reply: &Reply,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Purpose::Relay { host, entries } = &c.purpose else {
            return;
        };
        let Some(&entry) = entries.get(index) else {
            debug_assert!(
                false,
                "message {index} of a relay session has its queue entry"
            );
            return;
        };
        let host_name = Rc::clone(&self.hosts[*host].name);
        (c.settled_early).extend(forward_paths.iter().map(|path| (index, path.clone())));
        let reply = reply_text(reply);
        for recipient in forward_paths {
            self.record(Event::RecipientResult(Box::new(trace::RecipientResult {
                host: Rc::clone(&host_name),
                entry,
                recipient,
                result: "accepted".into(),
                reply: reply.clone(),
                own_finding: false,
            })));
        }
    }

    /// Says that message `index` of `conn`'s session goes to its server without the
    /// delivery reports its sender asked for (RFC 3461 5.2.2).
    fn record_dsn_withheld(&mut self, conn: ConnId, index: usize) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let message = match &c.purpose {
            Purpose::Submission { messages, .. } => messages.get(index).map(|m| m.label.clone()),
            Purpose::Relay { host, entries } => entries
                .get(index)
                .and_then(|entry| self.hosts[*host].queue.get(entry))
                .map(|entry| entry.message.clone()),
            Purpose::Fetch { .. } | Purpose::Raw { .. } => None,
        };
        let Some(message) = message else {
            return;
        };
        self.record(Event::DsnWithheld(Box::new(trace::DsnWithheld {
            client: c.client_name.clone(),
            conn,
            message,
            server: Rc::clone(&self.hosts[c.server].name),
        })));
    }

    /// One message of an SMTP session has every recipient's answer.
    fn message_finished(&mut self, conn: ConnId, index: usize) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let Sessions::Smtp { client, .. } = &c.sessions else {
            return;
        };
        let SmtpClient::Engine(engine) = client.as_ref() else {
            return;
        };
        let Some(outcome) = engine.outcomes().get(index) else {
            return;
        };
        match &c.purpose {
            Purpose::Submission { messages, .. } => {
                let Some(message) = messages.get(index).map(|m| m.label.clone()) else {
                    return;
                };
                // Only the refused recipients need anything more: the accepted ones are now
                // the submission server's to deliver.
                let refused: Vec<(String, String)> = outcome
                    .recipients
                    .iter()
                    .filter_map(|recipient| {
                        let status = match (&recipient.status, recipient.reply_origin) {
                            (RecipientStatus::Accepted(_), _) => return None,
                            (
                                RecipientStatus::TemporaryFailure(reply)
                                | RecipientStatus::PermanentFailure(reply),
                                ReplyOrigin::Server,
                            ) => reply_text(reply),
                            // The user agent's own finding has no reply code: no server said it.
                            (RecipientStatus::PermanentFailure(reply), ReplyOrigin::Client) => {
                                let mut text = "the user agent refused to send it: ".to_string();
                                reply.push_text(&mut text);
                                text
                            }
                            (RecipientStatus::TemporaryFailure(reply), ReplyOrigin::Client) => {
                                let mut text = String::new();
                                if let Some(enhanced) = reply.enhanced {
                                    enhanced.push_to(&mut text);
                                    text.push(' ');
                                }
                                text.push_str("the submission failed: ");
                                reply.push_text(&mut text);
                                text
                            }
                        };
                        Some((recipient.forward_path.clone(), status))
                    })
                    .collect();
                // What the user agent found itself and would not send crossed no wire: the
                // trace says it, once for the recipients it holds for. A session that failed
                // (a lost connection) has its own step already.
                let would_not_send = |recipient: &&RecipientOutcome| {
                    recipient.reply_origin == ReplyOrigin::Client
                        && matches!(recipient.status, RecipientStatus::PermanentFailure(_))
                };
                let own_finding = outcome.recipients.iter().find(would_not_send);
                if let Some(first) = own_finding {
                    let reason = refused
                        .iter()
                        .find(|(recipient, _)| *recipient == first.forward_path)
                        .map(|(_, status)| status.clone())
                        .unwrap_or_default();
                    let recipients = outcome
                        .recipients
                        .iter()
                        .filter(would_not_send)
                        .map(|recipient| recipient.forward_path.clone())
                        .collect();
                    let ua = Rc::clone(&c.client_name);
                    self.record(Event::SubmissionFailed(Box::new(trace::SubmissionFailed {
                        ua,
                        message: message.clone(),
                        recipients,
                        reason,
                    })));
                }
                for (recipient, status) in refused {
                    self.set_fate(&message, &recipient, Fate::RefusedAtSubmission { status });
                }
            }
            Purpose::Relay { host, entries } => {
                let (host, Some(&entry)) = (*host, entries.get(index)) else {
                    return;
                };
                // A message that joined a working session (its EHLO answered) opened for
                // another, and that the session ended before reaching (no MAIL was sent for
                // it, and the client did not refuse it), was not tried at all: its attempt
                // goes on at the same address, on a connection of its own, as Postfix opens
                // a new connection when a cached one is gone. A session that failed before
                // EHLO failed for its every message.
                let never_reached = index > 0
                    && outcome.mail_transactions == 0
                    && outcome.extensions.is_some()
                    && engine.is_finished()
                    && outcome.recipients.iter().all(|r| {
                        r.reply_origin == ReplyOrigin::Client
                            && matches!(r.status, RecipientStatus::TemporaryFailure(_))
                    });
                if never_reached {
                    self.connect_to_target(host, entry);
                    return;
                }
                let outcome = outcome.clone();
                let remote = self.hosts[c.server].spec.name.clone();
                let settled_early = (self.conns.get_mut(&conn))
                    .map(|c| c.take_settled_early(index))
                    .unwrap_or_default();
                self.relay_finished(host, entry, &outcome, remote, &settled_early);
            }
            Purpose::Fetch { .. } | Purpose::Raw { .. } => {}
        }
    }

    // ----- receiving: Received, MDA, queue -----

    /// Takes a message a server received: records it, queues its remote recipients, and
    /// returns the reply's outcome and what its MDA is to deliver once the reply is out.
    fn accept_message(
        &mut self,
        conn: ConnId,
        received: &ReceivedMessage,
    ) -> (StorageOutcome, Option<LocalDelivery>) {
        let Some(c) = self.conns.get(&conn) else {
            let outcome = StorageOutcome::Failed {
                reason: "connection gone".into(),
            };
            return (outcome, None);
        };
        let host_index = c.server;
        // The client sends its messages one after another: the one the server just took is
        // the one the client is sending now.
        let sending = match &c.sessions {
            Sessions::Smtp { client, .. } => match client.as_ref() {
                SmtpClient::Engine(engine) => engine.outcomes().len(),
                SmtpClient::Raw(_) => 0,
            },
            Sessions::Pop3 { .. } => 0,
        };
        let message = match &c.purpose {
            Purpose::Submission { messages, .. } => messages
                .get(sending)
                .map(|m| m.label.clone())
                .unwrap_or_default(),
            Purpose::Relay { host, entries } => {
                let message = entries
                    .get(sending)
                    .and_then(|entry| self.hosts[*host].queue.get(entry))
                    .map(|e| e.message.clone());
                // An entry stays queued while a session delivers it (it is in flight).
                debug_assert!(
                    message.is_some(),
                    "a relayed message belongs to a queue entry"
                );
                message.unwrap_or_default()
            }
            Purpose::Fetch { .. } => String::new(),
            Purpose::Raw { label } => {
                // A scripted client may get several messages accepted in one session.
                self.next_raw_message += 1;
                format!("{label}.{}", self.next_raw_message)
            }
        };
        let raw_client = matches!(c.purpose, Purpose::Raw { .. });
        let user_agent = matches!(c.purpose, Purpose::Submission { .. });
        // As the server decided: port 587 of a host with submission users (RFC 6409).
        let submission = c.port == 587 && !self.hosts[host_index].users.is_empty();
        let envelope = &received.envelope;
        let host = &mut self.hosts[host_index];
        let mut queue_id = String::with_capacity(8);
        push_hex(&mut queue_id, (host_index + 10) as u64, 1);
        push_hex(&mut queue_id, u64::from(host.next_queue_id), 5);
        host.next_queue_id += 1;
        let host_name = Rc::clone(&host.name);
        let forward_paths: Vec<String> = envelope
            .forward_paths
            .iter()
            .map(|p| match p {
                // RFC 5321 4.5.1: <Postmaster> is the postmaster of this host.
                ForwardPath::Postmaster { .. } => postmaster_address(&host.spec),
                ForwardPath::Mailbox(mailbox) => mailbox.text(),
            })
            .collect();
        let with = WithProtocol::for_session(
            envelope.protocol != crate::smtp::server::Protocol::Smtp,
            false,
            envelope.authenticated_as.is_some(),
            envelope.smtputf8,
        );
        let header = received_header(&ReceivedFields {
            helo_name: &envelope.helo_name,
            peer_name: None,
            peer_address: envelope.peer.ip.parse().unwrap_or(c.client_address),
            by_host: &host_name,
            with,
            id: Some(&queue_id),
            for_path: match forward_paths.as_slice() {
                [only] => Some(only),
                _ => None,
            },
            utf8_header: has_utf8_header_fields(&received.data),
            date_unix_s: self
                .scenario
                .start_unix_s
                .saturating_add((self.now_ms / 1000) as i64),
            utc_offset_min: 0,
        });
        let mut data = Vec::with_capacity(header.len() + received.data.len());
        data.extend_from_slice(header.as_bytes());
        data.extend_from_slice(&received.data);
        let fields = separate_body(&mut data, header.len());
        if submission {
            let date_unix_s = self
                .scenario
                .start_unix_s
                .saturating_add((self.now_ms / 1000) as i64);
            let message_id = [&*queue_id, ".", &message, "@", &host_name].concat();
            let from = header.len();
            let (fields_end, separated) = fields;
            let fields_end = remove_header_fields(&mut data, from, fields_end, PRIVATE_FIELDS);
            let origin = Origin {
                date_unix_s,
                message_id: &message_id,
                sender: &envelope.reverse_path,
                host_name: &host_name,
            };
            add_missing_origin_fields(&mut data, from, (fields_end, separated), origin);
        }
        let data = Rc::new(data);
        let asked_dsn = envelope.dsn_return.is_some()
            || envelope.envelope_id.is_some()
            || envelope
                .recipient_dsn
                .iter()
                .any(|r| *r != RecipientDsn::default());
        if asked_dsn {
            // One message may reach a host in several transactions (recipients past a
            // server's limit, two domains on one MX): each adds its own recipients.
            let asked = self
                .dsn_requests
                .entry((host_index, message.clone()))
                .or_default();
            asked.ret = asked.ret.or(envelope.dsn_return);
            if asked.envelope_id.is_none() {
                asked.envelope_id = envelope.envelope_id.clone();
            }
            asked.recipients.extend(
                forward_paths
                    .iter()
                    .cloned()
                    .zip(envelope.recipient_dsn.iter().cloned()),
            );
        }
        let reverse_path = match &envelope.reverse_path {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(mailbox) => mailbox.text(),
        };
        if raw_client {
            for recipient in &forward_paths {
                self.track(&message, recipient);
            }
        }
        if user_agent {
            // A user agent's <Postmaster> is this host's postmaster from here on (RFC 5321
            // 4.5.1): the recipient it sent is followed under that address, which its fate
            // will name.
            for (path, address) in envelope.forward_paths.iter().zip(&forward_paths) {
                if let ForwardPath::Postmaster { spelling } = path {
                    if let Some(tracked) = (self.tracked.iter_mut().rev())
                        .find(|(tracked, recipient)| *tracked == message && recipient == spelling)
                    {
                        tracked.1.clone_from(address);
                    }
                }
            }
        }
        self.record(Event::MessageAccepted(Box::new(trace::MessageAccepted {
            host: host_name,
            conn,
            message: message.clone(),
            reverse_path: reverse_path.clone(),
            forward_paths: forward_paths.clone(),
        })));
        let local = self.queue_remote_recipients(
            host_index,
            &message,
            &reverse_path,
            &forward_paths,
            &data,
        );
        let outcome = StorageOutcome::Stored {
            queue_id: Some(queue_id),
        };
        (outcome, Some(local))
    }

    /// A host now owns a message: local recipients go to the MDA, the others into the queue,
    /// one entry per destination domain.
    fn take_message(
        &mut self,
        host: usize,
        message: &str,
        reverse_path: &str,
        recipients: &[String],
        data: Rc<Vec<u8>>,
    ) {
        let local = self.queue_remote_recipients(host, message, reverse_path, recipients, &data);
        self.deliver_to_mailboxes(local);
    }

    /// Puts a message's recipients in other domains into the queue and returns what the MDA
    /// is to deliver, so that a server can reply before its MDA runs.
    fn queue_remote_recipients(
        &mut self,
        host: usize,
        message: &str,
        reverse_path: &str,
        recipients: &[String],
        data: &Rc<Vec<u8>>,
    ) -> LocalDelivery {
        let mut remote: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut local = LocalDelivery {
            host,
            message: message.to_string(),
            reverse_path: reverse_path.to_string(),
            recipients: Vec::new(),
            data: Rc::clone(data),
        };
        let mut seen = BTreeSet::new();
        for recipient in recipients {
            // The same address twice in one envelope is one recipient: one copy, one fate.
            if !seen.insert(recipient.as_str()) {
                continue;
            }
            let domain = domain_of(recipient);
            if self.hosts[host].local_domains.contains(&domain)
                || self.is_own_postmaster(host, recipient)
            {
                local.recipients.push(recipient.clone());
            } else {
                remote.entry(domain).or_default().push(recipient.clone());
            }
        }
        // A client session takes at most FORWARD_PATHS_MAX recipients: a larger envelope
        // becomes several queue entries, as Postfix splits one (`default_destination_
        // recipient_limit`), so every accepted recipient is tried.
        let remote = remote.into_iter().flat_map(|(domain, mut recipients)| {
            let mut entries = Vec::with_capacity(1);
            while recipients.len() > crate::smtp::client::FORWARD_PATHS_MAX {
                let rest = recipients.split_off(crate::smtp::client::FORWARD_PATHS_MAX);
                entries.push((domain.clone(), recipients));
                recipients = rest;
            }
            entries.push((domain, recipients));
            entries
        });
        for (domain, recipients) in remote {
            let entry = self.next_entry;
            self.next_entry += 1;
            let host_name = Rc::clone(&self.hosts[host].name);
            for recipient in &recipients {
                self.set_fate(
                    message,
                    recipient,
                    Fate::Queued {
                        host: host_name.to_string(),
                    },
                );
            }
            self.record(Event::Queued(Box::new(trace::Queued {
                host: host_name,
                entry,
                message: message.to_string(),
                domain: domain.clone(),
                recipients: recipients.clone(),
            })));
            self.hosts[host].queue.insert(
                entry,
                Entry {
                    message: message.to_string(),
                    reverse_path: reverse_path.to_string(),
                    domain,
                    recipients,
                    data: Rc::clone(data),
                    queued_at_ms: self.now_ms,
                    attempts: 0,
                    targets: Vec::new(),
                    target_index: 0,
                    mx_sessions: 0,
                    attempt_so_far: AttemptSoFar::NoFailure,
                    in_flight: false,
                    delay_notice_sent: false,
                    last_failure: None,
                    recipient_failures: Vec::new(),
                    last_attempt_ms: None,
                },
            );
            self.schedule_in(0, Action::QueueRun(host, entry));
        }
        local
    }

    /// The address of the mailbox a local recipient's mail goes into: its own, but for the
    /// postmaster of this host by its name or address literal without a mailbox of that name
    /// here, which is the host's one postmaster, as `<Postmaster>` is (RFC 5321 4.5.1, 4.1.3).
    fn local_mailbox<'r>(&self, host: usize, recipient: &'r str) -> Cow<'r, str> {
        if !self.is_own_postmaster(host, recipient) {
            return Cow::Borrowed(recipient);
        }
        let postmaster_key = &*self.hosts[host].postmaster_key;
        let key = mailbox_key(recipient);
        let store = self.store.borrow();
        let chosen = delivery_mailbox(
            &store,
            host,
            &self.hosts[host].local_domains,
            postmaster_key,
            &key,
            true,
        );
        if chosen == postmaster_key && key != postmaster_key {
            Cow::Owned(postmaster_address(&self.hosts[host].spec))
        } else {
            Cow::Borrowed(recipient)
        }
    }

    /// Whether `recipient` is `postmaster@` this host's own name or address literal (in any
    /// spelling its domain key folds, as the server's RCPT check does).
    fn is_own_postmaster(&self, host: usize, recipient: &str) -> bool {
        // The local part first: the domain's key is made only for a postmaster.
        let Some((local_part, _)) = recipient.rsplit_once('@') else {
            return false;
        };
        if !local_part.eq_ignore_ascii_case("postmaster") {
            return false;
        }
        let spec = &self.hosts[host].spec;
        names_host(&domain_of(recipient), &spec.name, spec.address)
    }

    /// The MDA's part of taking a message: each local mailbox gets one copy.
    fn deliver_to_mailboxes(&mut self, local: LocalDelivery) {
        let LocalDelivery {
            host,
            message,
            reverse_path,
            recipients,
            data,
        } = local;
        // A single recipient needs no grouping (the common case, at scale).
        if let [recipient] = recipients.as_slice() {
            let mailbox_address = self.local_mailbox(host, recipient);
            let refused = self.deliver_locally(
                host,
                &message,
                &reverse_path,
                &[recipient],
                &mailbox_address,
                &data,
            );
            self.bounce_refused(host, &message, &reverse_path, &data, refused);
            self.report_delivered(host, &message, &reverse_path, &data, &recipients);
            return;
        }
        // Only the final host may fold a local part's case (RFC 5321 2.4); here `BOB@` and
        // `bob@` are one mailbox, which gets one copy (or one refusal, which names both), and
        // both addresses share its fate. Grouped by mailbox key, in the order of first
        // appearance.
        let mut groups: Vec<(Cow<'_, str>, Vec<&str>)> = Vec::new();
        let mut group_by_key: BTreeMap<String, usize> = BTreeMap::new();
        for recipient in &recipients {
            let mailbox_address = self.local_mailbox(host, recipient);
            match group_by_key.entry(mailbox_key(&mailbox_address)) {
                std::collections::btree_map::Entry::Occupied(group) => {
                    groups[*group.get()].1.push(recipient);
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(groups.len());
                    groups.push((mailbox_address, vec![recipient.as_str()]));
                }
            }
        }
        // The MDA's refusals of one message make one notice (RFC 3464 2: a report may cover
        // several recipients), as the refusals at RCPT of one session do.
        let mut refused = Vec::new();
        for (mailbox_address, addresses) in &groups {
            refused.extend(self.deliver_locally(
                host,
                &message,
                &reverse_path,
                addresses,
                mailbox_address,
                &data,
            ));
        }
        self.bounce_refused(host, &message, &reverse_path, &data, refused);
        self.report_delivered(host, &message, &reverse_path, &data, &recipients);
    }

    /// The notice for the recipients of a message the MDA stored whose sender asked to hear
    /// of success (RFC 3461 4.1, RFC 3464 2.3.3 Action: delivered).
    fn report_delivered(
        &mut self,
        host: usize,
        message: &str,
        reverse_path: &str,
        data: &Rc<Vec<u8>>,
        recipients: &[String],
    ) {
        if self.dsn_asked(host, message).is_none() {
            return;
        }
        let delivered: Vec<(String, Failure)> = recipients
            .iter()
            .filter(|recipient| {
                matches!(
                    self.fates
                        .get(&(message.to_string(), recipient.to_string())),
                    Some(Fate::Delivered { .. })
                )
            })
            .map(|recipient| {
                let reply = Reply::new(
                    250,
                    Some(EnhancedStatus::new(2, 0, 0)),
                    "delivered to the mailbox",
                );
                (recipient.clone(), Failure::local(reply))
            })
            .collect();
        let original = self.arriving(message, reverse_path, data);
        self.report_success(host, &original, delivered, DsnAction::Delivered);
    }

    /// A message the MDA takes as it arrives, as a notice about it names it: it arrived now,
    /// and the MDA's delivery, just now, was the attempt.
    fn arriving(&self, message: &str, reverse_path: &str, data: &Rc<Vec<u8>>) -> Original {
        Original {
            message: message.to_string(),
            reverse_path: reverse_path.to_string(),
            data: Rc::clone(data),
            arrived_ms: self.now_ms,
            last_attempt_ms: Some(self.now_ms),
        }
    }

    /// The notice for what the MDA refused of a message as it arrived, if anything.
    fn bounce_refused(
        &mut self,
        host: usize,
        message: &str,
        reverse_path: &str,
        data: &Rc<Vec<u8>>,
        refused: Vec<(String, Failure)>,
    ) {
        if refused.is_empty() {
            return;
        }
        let original = self.arriving(message, reverse_path, data);
        self.bounce(host, &original, refused);
    }

    /// The MDA: one copy of a message for one mailbox, reached by `recipients` (one address,
    /// or several spellings of it). Final delivery adds Return-Path (RFC 5321 4.4) and
    /// Delivered-To, and refuses a message that would take the mailbox over its quota: the
    /// refused addresses are returned, for the notice.
    fn deliver_locally(
        &mut self,
        host: usize,
        message: &str,
        reverse_path: &str,
        recipients: &[&str],
        mailbox_address: &str,
        data: &Rc<Vec<u8>>,
    ) -> Vec<(String, Failure)> {
        // A run cut for holding too much stops storing copies; the rest is still the host's,
        // as it would be after a crash (RFC 5321 6.1: accepted mail is not lost). With room
        // for the copy and for the event that reports it.
        if !self.has_room_for(data.len().saturating_add(DELIVERY_EVENT_OCTETS_MAX)) {
            let host = self.hosts[host].spec.name.clone();
            self.set_fate_of_each(message, recipients, Fate::Queued { host });
            return Vec::new();
        }
        let host_name = Rc::clone(&self.hosts[host].name);
        let key = mailbox_key(mailbox_address);
        let mut store = self.store.borrow_mut();
        // Every host has a postmaster (RFC 5321 4.5.1), configured or not: one that is not
        // gets a mailbox at its first delivery, named by its key (its spelling in no envelope).
        if key.starts_with("postmaster@") && !store.mailboxes.contains_key(&key) {
            store.mailboxes.insert(
                key.clone(),
                MailboxState {
                    address: key.clone(),
                    host,
                    password: None,
                    quota_octets: None,
                    used_octets: 0,
                    messages: Vec::new(),
                    next_uid: 1,
                    locked: false,
                },
            );
        }
        // Delivered-To names the mailbox as it is configured, however the envelope spelled it
        // (RFC 9228: the address of the mailbox the message is delivered into), written as an
        // address: a mailbox configured as `al ice@b.test` is `"al ice"@b.test` (RFC 5322
        // 3.4.1), or a reader would take another address, or none.
        let delivered_to = match store.mailboxes.get(&key) {
            Some(mailbox) => configured_address_as_written(&mailbox.address),
            None => with_ascii_domain(mailbox_address),
        };
        let mut bytes = Vec::with_capacity(data.len() + 128);
        for part in ["Return-Path: <", reverse_path, ">\r\n"] {
            bytes.extend_from_slice(part.as_bytes());
        }
        // RFC 5322 3.6.7: a trace block is a Return-Path followed by Received fields, so
        // Delivered-To goes under this host's own Received (Postfix and Dovecot write it
        // above, which parses only by the obsolete syntax of RFC 5322 4.5).
        let own_received = leading_field_len(data, b"Received");
        debug_assert!(
            own_received > 0,
            "data handed to the MDA starts with a Received field"
        );
        bytes.extend_from_slice(&data[..own_received]);
        for part in ["Delivered-To: ", &delivered_to, "\r\n"] {
            bytes.extend_from_slice(part.as_bytes());
        }
        // A Return-Path that came with the message is no envelope's (Postfix removes it too).
        push_without_return_path(&mut bytes, &data[own_received..]);
        // Stored as lines, each ending in CRLF, as a mailbox file keeps it: a chunk that ended
        // without one (BDAT, RFC 3030) or a bare line ending taken by a lenient server gets
        // it here, so that the stored size is the size POP3 reports (RFC 1939 5) and quotas
        // count the same octets.
        if let Cow::Owned(canonical) = crate::smtp::dot::normalized(&bytes) {
            bytes = canonical;
        }
        // Every host that serves a domain takes its postmaster's mail (RFC 5321 4.5.1): one
        // mailbox, configured on one of them or made by the first delivery, gets it from all,
        // as sites alias postmaster to one administrator. Any other mailbox is on one host.
        let postmaster_key = &*self.hosts[host].postmaster_key;
        let local_domains = &self.hosts[host].local_domains;
        let Some(mailbox) = store
            .mailboxes
            .get_mut(&key)
            .filter(|m| may_deliver_into(m.host, &key, host, local_domains, postmaster_key))
        else {
            drop(store);
            self.record(Event::DeliveryRefused(Box::new(trace::DeliveryRefused {
                host: host_name,
                mailbox: mailbox_address.to_string(),
                reason: "no such mailbox".into(),
            })));
            let reply = Reply::new(550, Some(EnhancedStatus::new(5, 1, 1)), "No such mailbox");
            return refused_each(recipients, &reply);
        };
        let size = bytes.len() as u64;
        if mailbox
            .quota_octets
            .is_some_and(|quota| mailbox.used_octets.saturating_add(size) > quota)
        {
            let reason = format!(
                "{OVER_QUOTA}: {} + {size} > {} octets",
                mailbox.used_octets,
                mailbox.quota_octets.unwrap_or_default()
            );
            drop(store);
            self.record(Event::DeliveryRefused(Box::new(trace::DeliveryRefused {
                host: host_name,
                mailbox: mailbox_address.to_string(),
                reason,
            })));
            let reply = Reply::new(
                552,
                Some(EnhancedStatus::new(5, 2, 2)),
                "Mailbox full: quota exceeded",
            );
            return refused_each(recipients, &reply);
        }
        let uid = numbered(&[message, "."].concat(), u64::from(mailbox.next_uid));
        // The host that keeps the mailbox, where its reader fetches it: another host serving
        // the domain, for a shared postmaster mailbox.
        let keeper = mailbox.host;
        mailbox.next_uid += 1;
        mailbox.used_octets = mailbox.used_octets.saturating_add(size);
        let address = mailbox.address.clone();
        let bytes = Rc::new(bytes);
        mailbox.messages.push(StoredMail {
            uid: uid.clone(),
            bytes: Rc::clone(&bytes),
        });
        drop(store);
        self.record(Event::Delivered(Box::new(trace::Delivered {
            host: host_name.clone(),
            mailbox: address.clone(),
            message: message.to_string(),
            uid,
            octets: size as usize,
            stored: trace::StoredBytes::shared(&bytes),
        })));
        // After the event: the copy is stored, so the trace must say so. Counted once: the
        // mailbox and the event share it, and the event keeps it after a reader deletes it.
        self.hold(size as usize);
        let keeper = self.hosts[keeper].spec.name.clone();
        let fate = Fate::Delivered {
            host: keeper,
            mailbox: address,
        };
        self.set_fate_of_each(message, recipients, fate);
        Vec::new()
    }

    // ----- sending: MX, connections, retries, bounces -----

    /// Records where mail for `domain` goes and how that was found out.
    fn record_mx_resolved(
        &mut self,
        host_name: &Name,
        domain: &str,
        targets: &[Target],
        how: HowResolved,
    ) {
        let HowResolved {
            result,
            from_cache,
            notes,
            failure,
        } = how;
        self.record(Event::MxResolved(Box::new(trace::MxResolved {
            host: Rc::clone(host_name),
            domain: domain.to_string(),
            result,
            targets: targets
                .iter()
                .map(|target| {
                    let mut label = String::with_capacity(target.name.len() + 48);
                    label.push_str(&target.name);
                    label.push_str(" [");
                    match target.address {
                        IpAddr::V4(v4) => push_ipv4(&mut label, v4),
                        IpAddr::V6(v6) => {
                            // Writing to a String cannot fail.
                            let _ = write!(label, "{v6}");
                        }
                    }
                    label.push(']');
                    label
                })
                .collect(),
            from_cache,
            notes,
            failure,
        })));
    }

    fn queue_run(&mut self, host: usize, entry_id: EntryId) {
        let now = self.now_ms;
        let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
            return;
        };
        if entry.in_flight {
            return;
        }
        entry.attempts += 1;
        entry.in_flight = true;
        let attempt = entry.attempts;
        let domain = entry.domain.clone();
        let host_name = Rc::clone(&self.hosts[host].name);
        self.record(Event::AttemptStarted {
            host: host_name.clone(),
            entry: entry_id,
            attempt,
        });
        // A route overrides DNS: the mail goes to that host directly.
        let route = self.hosts[host]
            .spec
            .routes
            .iter()
            .find(|r| domain_key(&r.domain) == domain)
            .and_then(|r| self.host_by_name.get(&r.host.to_ascii_lowercase()).copied());
        let targets = if let Some(index) = route {
            let target = Target {
                name: self.hosts[index].spec.name.clone(),
                address: self.hosts[index].spec.address,
            };
            let targets = vec![target];
            self.record_mx_resolved(
                &host_name,
                &domain,
                &targets,
                HowResolved::without_dns(format!("configured route, {}", trace::NO_DNS_LOOKUP)),
            );
            targets
        } else if let Some(address) = literal_address(&domain) {
            // RFC 5321 4.1.3: an address literal names the host by its address, so there is
            // nothing to look up (5.1 applies to domain names).
            let targets = vec![Target {
                name: domain.clone(),
                address,
            }];
            self.record_mx_resolved(
                &host_name,
                &domain,
                &targets,
                HowResolved::without_dns(format!(
                    "address literal, {} (RFC 5321 4.1.3)",
                    trace::NO_DNS_LOOKUP
                )),
            );
            targets
        } else if let Some(cached) = {
            let rng = &mut self.rng;
            let mut draw = || rng.next_u64();
            self.hosts[host].mx_cache.lookup(&domain, now, &mut draw)
        } {
            // Asked before and still within the records' TTL: no DNS traffic this time. The
            // notes of the lookup come again, so that a student who starts at this attempt
            // sees why the hosts are these.
            let (targets, duplicates) = targets_of(&cached.outcome);
            let notes = note_lines(&cached.notes, duplicates);
            let kind = match cached.outcome {
                MxOutcome::ImplicitMx(_) => "the domain itself is the implicit MX",
                _ => "MX records, by preference",
            };
            let result = format!(
                "{kind}, from this host's cache ({} s of the TTL left)",
                cached.remaining_ms.div_ceil(1000)
            );
            let how = HowResolved {
                result,
                from_cache: true,
                notes,
                failure: None,
            };
            self.record_mx_resolved(&host_name, &domain, &targets, how);
            targets
        } else {
            let rng = &mut self.rng;
            let mut draw = || rng.next_u64();
            let resolution =
                self.hosts[host]
                    .resolver
                    .resolve_mx(&self.scenario.dns, &domain, now, &mut draw);
            self.hosts[host].mx_cache.store(&resolution, now);
            let lookup = MxLookup {
                resolution,
                next_exchange: 0,
                timed_out: false,
            };
            self.continue_mx_lookup(host, entry_id, lookup);
            return;
        };
        self.mx_targets_found(host, entry_id, targets, AttemptSoFar::NoFailure);
    }

    /// Starts going through `targets`, with what the attempt met before the first of them:
    /// nothing, or an MX host left out for now (its address lookup failed, or the draw among
    /// equal preferences left it out).
    fn mx_targets_found(
        &mut self,
        host: usize,
        entry_id: EntryId,
        targets: Vec<Target>,
        attempt_so_far: AttemptSoFar,
    ) {
        if let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) {
            entry.targets = targets;
            entry.target_index = 0;
            entry.mx_sessions = 0;
            entry.attempt_so_far = attempt_so_far;
        }
        self.connect_to_target(host, entry_id);
    }

    /// Records a resolution's DNS exchanges as they happen: a question that gets no answer
    /// holds the lookup for the resolver's timeout before the next one is asked.
    fn continue_mx_lookup(&mut self, host: usize, entry_id: EntryId, mut lookup: MxLookup) {
        let host_name = Rc::clone(&self.hosts[host].name);
        while let Some(exchange) = lookup.resolution.exchanges.get(lookup.next_exchange) {
            let timed_out = exchange.answer.outcome == DnsOutcome::TimedOut;
            if !lookup.timed_out {
                self.record(Event::DnsQuery(Box::new(trace::DnsQuery {
                    host: host_name.clone(),
                    id: exchange.message_id,
                    question: exchange.question.to_string(),
                    wire: exchange.query_wire.clone(),
                })));
                if timed_out {
                    lookup.timed_out = true;
                    self.pending_lookups.insert((host, entry_id), lookup);
                    self.schedule_in(RESOLVER_TIMEOUT_MS, Action::DnsTimedOut(host, entry_id));
                    return;
                }
            }
            lookup.timed_out = false;
            self.record(Event::DnsResponse(Box::new(trace::DnsResponse {
                host: host_name.clone(),
                id: exchange.message_id,
                outcome: exchange.answer.outcome,
                records: exchange
                    .answer
                    .answers
                    .iter()
                    .map(|r| r.to_zone_line())
                    .collect(),
                authority: exchange
                    .answer
                    .authority
                    .iter()
                    .map(|r| r.to_zone_line())
                    .collect(),
                wire: exchange.response_wire.clone(),
            })));
            lookup.next_exchange += 1;
        }
        let resolution = lookup.resolution;
        let domain = resolution.domain.clone();
        let (targets, duplicates) = targets_of(&resolution.outcome);
        let result = match &resolution.outcome {
            MxOutcome::Targets(_) => "MX records, by preference".to_string(),
            MxOutcome::ImplicitMx(_) => {
                "no MX records: the domain itself is the implicit MX".to_string()
            }
            other => match other.failure() {
                // A temporary failure says whether the host tries again: it does unless the
                // entry has been queued for the give-up time.
                Some(failure) if failure.permanent || self.past_give_up(host, entry_id) => {
                    format!("{} ({})", failure.text, failure.status)
                }
                Some(failure) => format!(
                    "{}; {} ({})",
                    failure.text,
                    trace::WILL_RETRY,
                    failure.status
                ),
                None => format!("{other:?}"),
            },
        };
        let notes = note_lines(&resolution.notes, duplicates);
        let failure = resolution.outcome.failure();
        let how = HowResolved {
            result,
            from_cache: false,
            notes,
            failure: failure.as_ref().map(|failure| failure.status),
        };
        self.record_mx_resolved(&host_name, &domain, &targets, how);
        if let Some(failure) = failure {
            let reply = Reply::new(
                failure.reply_code(),
                Some(failure.status),
                failure_reply_text(&domain, &failure, &resolution.notes),
            );
            if let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) {
                entry.in_flight = false;
            }
            if failure.permanent {
                self.fail_entry(host, entry_id, &Failure::local(reply));
            } else {
                let now_ms = self.now_ms;
                if let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) {
                    entry.failed_all(Failure::local(reply), now_ms);
                }
                self.defer_entry(host, entry_id);
            }
            return;
        }
        // An MX host (or some of its addresses) left out for now, because a lookup failed or
        // because the draw among equal preferences put it beyond the hosts looked up, may be
        // the one that takes the mail: refusals by the others then make the message wait, not
        // bounce (RFC 5321 5.1: each relevant address is tried, and retried).
        let some_left_out_for_now = resolution.left_out_for_now();
        let attempt_so_far = match some_left_out_for_now {
            true => AttemptSoFar::SomethingTemporary,
            false => AttemptSoFar::NoFailure,
        };
        self.mx_targets_found(host, entry_id, targets, attempt_so_far);
    }

    fn connect_to_target(&mut self, host: usize, entry_id: EntryId) {
        let Some((queued_at_ms, attempts)) = self.hosts[host]
            .queue
            .get(&entry_id)
            .map(|e| (e.queued_at_ms, e.attempts))
        else {
            return;
        };
        // No connection after the time a delay notice gives as the end of all attempts
        // (RFC 3464 2.3.9): a later attempt that started before it but went through addresses
        // that do not answer (or waited for DNS) ends there, and the entry gives up. The first
        // attempt, which comes before any notice, always goes through its addresses (RFC 5321
        // 5.1), but for those this host could not reach a short while ago (below).
        let too_late = attempts > 1 && self.now_ms > self.last_connection_ms(queued_at_ms);
        // An address this host could not connect to a short while ago is not tried again yet
        // (RFC 5321 4.5.4.1), whichever message it was for: the attempt goes on to the next
        // one, as Postfix says, "delivery temporarily suspended". An entry's own retry always
        // comes after its own mark ends, as both wait at least the first retry interval. A
        // loop, not a call per address, however many are skipped.
        let target = loop {
            let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
                return;
            };
            let target = entry.targets.get(entry.target_index).filter(|_| !too_late);
            let Some(target) = target.cloned() else {
                if entry.last_failure.is_none() {
                    entry.failed_without_trying(no_answer());
                }
                entry.in_flight = false;
                // Only when every target was tried: one the attempt came too late for might
                // have taken the message.
                let refusal = (!too_late && entry.attempt_so_far == AttemptSoFar::OnlyRefusals)
                    .then(|| entry.last_failure.clone())
                    .flatten();
                match refusal {
                    // Every server this attempt reached refused service for good: the
                    // message bounces now, with the last one's reply and status.
                    Some(refusal) => {
                        let refusal = Failure {
                            counted_temporary: false,
                            ..refusal
                        };
                        self.fail_entry(host, entry_id, &refusal);
                    }
                    None => self.defer_entry(host, entry_id),
                }
                return;
            };
            let Some(mark) = self.unreachable_mark(host, target.address) else {
                break target;
            };
            self.record(Event::TargetSkipped(Box::new(trace::TargetSkipped {
                host: Rc::clone(&self.hosts[host].name),
                entry: entry_id,
                target: Name::from(target.name.as_str()),
                address: target.address.to_string(),
                failed_at_ms: mark.failed_at_ms,
                until_ms: mark.until_ms,
                reason: mark.reason.clone(),
            })));
            let reply = Reply::new(
                451,
                Some(EnhancedStatus::new(4, 4, 1)),
                format!(
                    "{}: delivery temporarily suspended: {}",
                    target_label(&target.name, target.address),
                    mark.reason
                ),
            );
            // As after a failed connection (`try_next_target`), with none made.
            if let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) {
                entry.failed_without_trying(Failure {
                    suspended: true,
                    ..Failure::local(reply)
                });
                entry.target_index += 1;
            }
        };
        let Some(server) = self.host_at(target.address) else {
            // Nothing lives at that address, so nothing ever answers: the attempt times out
            // as one to a silent host does.
            let conn = self.next_conn;
            self.next_conn += 1;
            self.record(Event::ConnectionAttempted(Box::new(
                trace::ConnectionAttempted {
                    conn,
                    client: Rc::clone(&self.hosts[host].name),
                    server: Name::from(target.name.as_str()),
                    address: target.address.to_string(),
                    port: 25,
                    protocol: Protocol::Smtp,
                },
            )));
            let timeout_ms = self.scenario.retry.connect_timeout_s.saturating_mul(1000);
            self.schedule_in(timeout_ms, Action::NobodyAnswered(host, entry_id, conn));
            return;
        };
        let Some(entry) = self.hosts[host].queue.get(&entry_id) else {
            return;
        };
        // RFC 3461 5.2: what the sender asked of DSN goes on with the message, as it came.
        let dsn = match self.dsn_asked(host, &entry.message) {
            Some(asked) => DsnParameters {
                ret: asked.ret,
                envid: asked.envelope_id.clone(),
                recipients: entry
                    .recipients
                    .iter()
                    .map(|r| asked.recipient(r))
                    .collect(),
                ..DsnParameters::default()
            },
            None => DsnParameters::default(),
        };
        let envelope = Envelope {
            dsn,
            reverse_path: entry.reverse_path.clone(),
            forward_paths: entry.recipients.clone(),
        };
        let data = Rc::clone(&entry.data);
        // The session makes its own copy to send: a run that already holds too much sends
        // no more (the entry stays queued).
        if !self.has_room_for(data.len()) {
            return;
        }
        // A session this host already has open to that server carries the message too
        // (as Postfix reuses connections), instead of a new connection.
        let same_session = |c: &Conn| {
            matches!(c.purpose, Purpose::Relay { host: h, .. } if h == host)
                && c.server == server
                && c.port == 25
        };
        if let Some(conn) = self.join_session((server, 25), same_session, &envelope, &data) {
            if let Some(Purpose::Relay { entries, .. }) =
                self.conns.get_mut(&conn).map(|c| &mut c.purpose)
            {
                entries.push(entry_id);
            }
            self.record(Event::SessionJoined(Box::new(trace::SessionJoined {
                host: Rc::clone(&self.hosts[host].name),
                entry: entry_id,
                conn,
                server: Rc::clone(&self.hosts[server].name),
            })));
            self.hold_for(conn, data.len());
            self.pump(conn);
            return;
        }
        let mut config = ClientConfig::new(self.hosts[host].spec.name.clone());
        config.prefer_pipelining = self.hosts[host].spec.client_pipelining;
        // Validated to at most MESSAGE_MAX_OCTETS, which fits a usize on every target.
        config.bdat_chunk_octets = self.hosts[host]
            .spec
            .client_chunk_octets
            .and_then(|octets| usize::try_from(octets).ok());
        let cache_s = self.hosts[host].spec.connection_cache_s;
        config.keep_open_ms = (cache_s > 0).then(|| cache_s.saturating_mul(1000));
        let client = match ClientSession::new(config, envelope, data.as_ref().clone()) {
            Ok(client) => client,
            Err(error) => {
                let reply = Reply::new(
                    554,
                    Some(EnhancedStatus::new(5, 6, 0)),
                    format!("cannot send this message: {error}"),
                );
                if let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) {
                    entry.in_flight = false;
                }
                self.fail_entry(host, entry_id, &Failure::local(reply));
                return;
            }
        };
        let client_name = Rc::clone(&self.hosts[host].name);
        let client_address = self.hosts[host].spec.address;
        let conn = self.open_connection(
            client_name,
            client_address,
            server,
            25,
            Sessions::Smtp {
                client: Box::new(SmtpClient::Engine(Box::new(client))),
                server: None,
            },
            Purpose::Relay {
                host,
                entries: vec![entry_id],
            },
        );
        self.hold_for(conn, data.len());
    }

    /// Remembers that `host` could not connect to `address`, so that no message of its queue
    /// tries it again before the first retry interval has passed (RFC 5321 4.5.4.1).
    fn mark_unreachable(&mut self, host: usize, address: IpAddr, reason: &str) {
        // A connection opened while the address was not yet marked (before the first one
        // failed) that fails too leaves the mark as it is: moving it on would hold back the
        // retry of the entry whose failure set it.
        if self.unreachable_mark(host, address).is_some() {
            return;
        }
        let wait_ms = self.scenario.retry.first_retry_s.saturating_mul(1000);
        let mark = Unreachable {
            failed_at_ms: self.now_ms,
            until_ms: self.now_ms.saturating_add(wait_ms),
            reason: reason.to_string(),
        };
        // Keyed as DNS gives addresses (an IPv4-mapped address as plain IPv4), whichever way
        // the host's own address is written.
        self.hosts[host]
            .unreachable
            .insert(address.to_canonical(), mark);
    }

    /// The mark on an address `host` could not connect to lately, while it lasts.
    fn unreachable_mark(&self, host: usize, address: IpAddr) -> Option<Unreachable> {
        self.hosts[host]
            .unreachable
            .get(&address.to_canonical())
            .filter(|mark| self.now_ms < mark.until_ms)
            .cloned()
    }

    /// A failure of the whole session or connection (every recipient's): the next address.
    fn try_next_target(&mut self, host: usize, entry_id: EntryId, failure: Failure) {
        let now_ms = self.now_ms;
        let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
            return;
        };
        entry.failed_all(failure, now_ms);
        entry.target_index += 1;
        self.connect_to_target(host, entry_id);
    }

    /// `settled_early`: recipients whose result the trace has told already (see
    /// [`World::settled_early`]).
    fn relay_finished(
        &mut self,
        host: usize,
        entry_id: EntryId,
        outcome: &SessionOutcome,
        remote: String,
        settled_early: &[String],
    ) {
        let host_name = Rc::clone(&self.hosts[host].name);
        // A session that never got as far as MAIL failed as a connection: try the next MX.
        // Unless this client refused the message itself once it read the server's EHLO
        // reply (over its SIZE, 8-bit or UTF-8 it does not take): that is the message's
        // permanent failure, bounced at once (RFC 1870 6.1, RFC 6152 3), as Postfix does
        // for SIZE and SMTPUTF8 (it converts 8-bit data instead).
        let refused_by_client = outcome.recipients.iter().any(|r| {
            r.reply_origin == ReplyOrigin::Client
                && matches!(r.status, RecipientStatus::PermanentFailure(_))
        });
        // Recipients this client's session had no transactions left for were not tried: unless
        // the server deferred others (then they are all handled as deferred: the next MX, or
        // the next attempt), they go on at once in another session to the same address, as
        // Postfix opens another connection.
        let only_left_for_another_session = outcome
            .recipients
            .iter()
            .any(RecipientOutcome::left_for_another_session)
            && outcome.recipients.iter().all(|r| {
                r.left_for_another_session()
                    || !matches!(r.status, RecipientStatus::TemporaryFailure(_))
            });
        let connection_failed = outcome.mail_transactions == 0
            && !refused_by_client
            && !only_left_for_another_session
            && outcome.recipients.iter().all(|r| !r.status.is_accepted());
        if connection_failed {
            let mut failure = outcome
                .recipients
                .first()
                .map(|recipient| Failure::of_recipient(recipient, &remote))
                .unwrap_or_else(|| {
                    Failure::local(Reply::new(
                        451,
                        Some(EnhancedStatus::new(4, 4, 2)),
                        "session failed",
                    ))
                });
            // A 5yz greeting (or reply to EHLO and HELO) rules out this host only, as Postfix
            // does by default (smtp_skip_5xx_greeting): the next MX may take the mail. When
            // none is left, the message bounces if every target refused service that way (RFC 5321
            // 4.2.1: a 5yz request is not repeated) and no MX host was left out for now (see
            // `mx_targets_found`), and otherwise waits for the next
            // attempt, the refusal then counted as temporary: a better MX may only have
            // failed for now. Postfix always waits (it makes the code 400).
            failure.counted_temporary = failure.reply.is_permanent();
            self.try_next_target(host, entry_id, failure);
            return;
        }
        let mut failed = Vec::new();
        let mut deferred = Vec::new();
        // Accepted by a server that does not offer DSN, which will report nothing more: a
        // sender who asked to hear of success hears now that the message was relayed (RFC
        // 3461 4.1, RFC 3464 2.3.3 Action: relayed). A server that offers DSN was handed the
        // request, and reports itself.
        let reports_relay =
            !self.dsn_requests.is_empty() && !outcome.extensions.as_ref().is_some_and(|e| e.dsn);
        let mut relayed = Vec::new();
        // A message may have a thousand recipients.
        let settled: rustc_hash::FxHashSet<&str> =
            settled_early.iter().map(String::as_str).collect();
        for recipient in &outcome.recipients {
            let (result, reply) = match &recipient.status {
                RecipientStatus::Accepted(reply) => {
                    if reports_relay {
                        relayed.push((
                            recipient.forward_path.clone(),
                            Failure::of_recipient(recipient, &remote),
                        ));
                    }
                    ("accepted", reply)
                }
                RecipientStatus::TemporaryFailure(reply) => {
                    deferred.push((
                        recipient.forward_path.clone(),
                        Failure::of_recipient(recipient, &remote),
                    ));
                    (trace::TEMPORARY_FAILURE, reply)
                }
                RecipientStatus::PermanentFailure(reply) => {
                    failed.push((
                        recipient.forward_path.clone(),
                        Failure::of_recipient(recipient, &remote),
                    ));
                    (trace::PERMANENT_FAILURE, reply)
                }
            };
            if settled.contains(recipient.forward_path.as_str()) {
                continue;
            }
            self.record(Event::RecipientResult(Box::new(trace::RecipientResult {
                host: host_name.clone(),
                entry: entry_id,
                recipient: recipient.forward_path.clone(),
                result: result.into(),
                reply: reply_text(reply),
                own_finding: recipient.reply_origin == ReplyOrigin::Client,
            })));
        }
        if !relayed.is_empty() {
            if let Some(mut original) = self.hosts[host].queue.get(&entry_id).map(Entry::original) {
                // RFC 3464 2.3.7: the last attempt, successful or not, is the one just made.
                original.last_attempt_ms = Some(self.now_ms);
                self.report_success(host, &original, relayed, DsnAction::Relayed);
            }
        }
        let now_ms = self.now_ms;
        let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
            return;
        };
        entry.in_flight = false;
        // Only the recipients to try again stay queued.
        entry
            .recipients
            .retain(|r| deferred.iter().any(|(deferred, _)| deferred == r));
        if only_left_for_another_session {
            // Their finding is the entry's last failure, should the new session come too late
            // to be opened and the entry give up.
            entry.failed_each(deferred, now_ms);
            if !failed.is_empty() {
                let original = entry.original();
                self.bounce(host, &original, failed);
            }
            self.connect_to_target(host, entry_id);
            return;
        }
        let any_deferred = !deferred.is_empty();
        entry.failed_each(deferred, now_ms);
        entry.mx_sessions = entry.mx_sessions.saturating_add(1);
        // RFC 5321 5.1: the client tries each address in order "until a delivery attempt
        // succeeds". As Postfix does, recipients a server deferred after MAIL (or that a lost
        // connection left undelivered) go on to the next MX at once, for at most
        // MX_SESSIONS_PER_ATTEMPT such sessions per attempt (its smtp_mx_session_limit).
        let next_mx = entry.target_index + 1 < entry.targets.len()
            && entry.mx_sessions < MX_SESSIONS_PER_ATTEMPT;
        if any_deferred && next_mx {
            entry.target_index += 1;
        }
        if !failed.is_empty() {
            let original = entry.original();
            self.bounce(host, &original, failed);
        }
        match (any_deferred, next_mx) {
            (true, true) => self.connect_to_target(host, entry_id),
            (true, false) => self.defer_entry(host, entry_id),
            (false, _) => self.dequeue(host, entry_id),
        }
    }

    /// The last time an entry queued at `queued_at_ms` may open a connection, the time a delay
    /// notice gives as `Will-Retry-Until` (RFC 3464 2.3.9): the last attempt starts at the
    /// give-up time, or at most one shortest wait after the one before it. In whole seconds,
    /// as the notice's date says it.
    fn last_connection_ms(&self, queued_at_ms: u64) -> u64 {
        let retry = &self.scenario.retry;
        let after_queueing_ms = retry
            .give_up_s
            .saturating_add(retry.first_retry_s)
            .saturating_mul(1000);
        queued_at_ms.saturating_add(after_queueing_ms) / 1000 * 1000
    }

    fn dequeue(&mut self, host: usize, entry_id: EntryId) {
        if self.hosts[host].queue.remove(&entry_id).is_some() {
            let host_name = Rc::clone(&self.hosts[host].name);
            self.record(Event::Dequeued {
                host: host_name,
                entry: entry_id,
            });
        }
    }

    /// Whether a temporary failure now ends the entry's time in the queue: it has been there
    /// for the give-up time (RFC 5321 4.5.4.1).
    fn past_give_up(&self, host: usize, entry_id: EntryId) -> bool {
        self.hosts[host].queue.get(&entry_id).is_some_and(|entry| {
            self.now_ms.saturating_sub(entry.queued_at_ms)
                >= self.scenario.retry.give_up_s.saturating_mul(1000)
        })
    }

    /// Temporary failure of the recipients still queued (their failures recorded in the
    /// entry): retry later, or give up and bounce once the message is too old (RFC 5321
    /// 4.5.4.1).
    fn defer_entry(&mut self, host: usize, entry_id: EntryId) {
        let retry = self.scenario.retry.clone();
        let now = self.now_ms;
        let host_name = Rc::clone(&self.hosts[host].name);
        let gives_up = self.past_give_up(host, entry_id);
        let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
            return;
        };
        let age_ms = now - entry.queued_at_ms;
        if gives_up {
            let recipients = entry.recipients.clone();
            let original = entry.original();
            let failures = entry.failures();
            self.record(Event::GaveUp(Box::new(trace::GaveUp {
                host: host_name,
                entry: entry_id,
                recipients,
            })));
            // This host decides to give up, each recipient with its own last failure.
            let expired = failures
                .into_iter()
                .map(|(recipient, failure)| {
                    let expired = Failure {
                        expired: true,
                        ..failure
                    };
                    (recipient, expired)
                })
                .collect();
            self.dequeue(host, entry_id);
            self.bounce(host, &original, expired);
            return;
        }
        // Waits double from the first retry interval up to the maximum (a wait too long to
        // count saturates, and the maximum then applies).
        let shift = entry.attempts.saturating_sub(1).min(63);
        let wait_s = retry
            .first_retry_s
            .saturating_mul(1u64 << shift)
            .min(retry.max_interval_s.max(retry.first_retry_s));
        // The last attempt happens when the give-up time is reached, not a whole interval
        // later, so the sender hears of the failure about `give_up_s` after queuing; but no
        // wait is shorter than the first, the least RFC 5321 4.5.4.1 allows (30 minutes).
        let give_up_at_ms = entry
            .queued_at_ms
            .saturating_add(retry.give_up_s.saturating_mul(1000));
        let at_ms = now
            .saturating_add(wait_s.saturating_mul(1000))
            .min(give_up_at_ms)
            .max(now.saturating_add(retry.first_retry_s.saturating_mul(1000)));
        let recipients = entry.recipients.clone();
        let notice_due = retry
            .delay_notice_s
            .is_some_and(|s| age_ms >= s.saturating_mul(1000))
            && !entry.delay_notice_sent
            && !entry.reverse_path.is_empty();
        // What a delay notice says, made only when one is sent.
        let notice = notice_due.then(|| {
            entry.delay_notice_sent = true;
            (entry.original(), entry.failures())
        });
        // An attempt that failed for every recipient at once (no address reached, a session
        // over before MAIL) has no recipient result to say why: the retry says it.
        let attempt_failure = entry
            .last_failure
            .as_ref()
            .filter(|_| entry.recipient_failures.is_empty())
            .map(|failure| trace::AttemptFailure {
                reply: reply_text(&failure.reply),
                own_finding: failure.is_own_finding(),
            });
        self.record(Event::RetryScheduled(Box::new(trace::RetryScheduled {
            host: host_name,
            entry: entry_id,
            at_ms,
            recipients,
            last_attempt: at_ms >= give_up_at_ms,
            attempt_failure,
        })));
        self.schedule_at(at_ms, Action::QueueRun(host, entry_id));
        if let Some((original, failures)) = notice {
            let will_retry_until_ms = self.last_connection_ms(original.arrived_ms);
            // RFC 3461 4.1: a sender who gave NOTIFY without DELAY hears of no delay.
            let (failures, _) =
                self.split_by_notice(host, &original.message, failures, NoticeEvent::Delay);
            if !failures.is_empty() {
                self.notify(
                    host,
                    &original,
                    failures,
                    DsnAction::Delayed,
                    Some(will_retry_until_ms),
                );
            }
        }
    }

    /// A permanent failure of every recipient still queued.
    fn fail_entry(&mut self, host: usize, entry_id: EntryId, failure: &Failure) {
        let now_ms = self.now_ms;
        let Some(entry) = self.hosts[host].queue.get_mut(&entry_id) else {
            return;
        };
        entry.last_attempt_ms = Some(now_ms);
        let failed = entry
            .recipients
            .iter()
            .map(|r| (r.clone(), failure.clone()))
            .collect();
        let original = entry.original();
        self.dequeue(host, entry_id);
        self.bounce(host, &original, failed);
    }

    fn bounce(&mut self, host: usize, original: &Original, failed: Vec<(String, Failure)>) {
        let host_name = Rc::clone(&self.hosts[host].name);
        let message = original.message.as_str();
        if original.reverse_path.is_empty() {
            // RFC 5321 4.5.5: a message with a null reverse-path is never bounced.
            for (recipient, failure) in &failed {
                self.set_fate(
                    message,
                    recipient,
                    Fate::Discarded {
                        host: host_name.to_string(),
                        status: reply_text(&failure.final_reply()),
                        own_finding: failure.is_own_finding(),
                    },
                );
            }
            self.record(Event::BounceDiscarded(Box::new(trace::BounceDiscarded {
                host: host_name,
                message: message.to_string(),
                recipients: failed.into_iter().map(|(r, _)| r).collect(),
            })));
            return;
        }
        // RFC 3461 4.1: no failure notice for a recipient whose sender asked for none
        // (NOTIFY=NEVER, or a NOTIFY without FAILURE).
        let (failed, declined) = self.split_by_notice(host, message, failed, NoticeEvent::Failure);
        for ((recipient, failure), notice_declined) in failed
            .iter()
            .map(|f| (f, false))
            .chain(declined.iter().map(|f| (f, true)))
        {
            self.set_fate(
                message,
                recipient,
                Fate::Bounced {
                    host: host_name.to_string(),
                    status: reply_text(&failure.final_reply()),
                    own_finding: failure.is_own_finding(),
                    notice_declined,
                },
            );
        }
        if !declined.is_empty() {
            self.record(Event::NoticeDeclined(Box::new(trace::NoticeDeclined {
                host: Rc::clone(&host_name),
                message: message.to_string(),
                recipients: declined.into_iter().map(|(r, _)| r).collect(),
            })));
        }
        if !failed.is_empty() {
            self.notify(host, original, failed, DsnAction::Failed, None);
        }
    }

    /// What the sender of `message` asked of DSN when `host` took it, if anything: none in
    /// nearly every run, which is told without making a key.
    fn dsn_asked(&self, host: usize, message: &str) -> Option<&MessageDsn> {
        if self.dsn_requests.is_empty() {
            return None;
        }
        self.dsn_requests.get(&(host, message.to_string()))
    }

    /// `recipients` of `message` parted into those whose sender wants a notice of `event`
    /// from `host` (as asked with NOTIFY, RFC 3461 4.1, or as when nothing was asked), and
    /// the others.
    fn split_by_notice(
        &self,
        host: usize,
        message: &str,
        recipients: Vec<(String, Failure)>,
        event: NoticeEvent,
    ) -> (Reports, Reports) {
        match self.dsn_asked(host, message) {
            Some(asked) => recipients
                .into_iter()
                .partition(|(recipient, _)| asked.wants(recipient, event)),
            // Nothing asked: one answer for all of them.
            None if RecipientDsn::default().wants(event) => (recipients, Vec::new()),
            None => (Vec::new(), recipients),
        }
    }

    /// Reports success to the senders who asked for it (RFC 3461 4.1 NOTIFY=SUCCESS): final
    /// delivery of `recipients` (RFC 3464 Action: delivered), or their relay to `remote`, a
    /// server that does not offer DSN and so will report nothing (Action: relayed).
    fn report_success(
        &mut self,
        host: usize,
        original: &Original,
        recipients: Vec<(String, Failure)>,
        action: DsnAction,
    ) {
        if original.reverse_path.is_empty() {
            return;
        }
        let (wanted, _) =
            self.split_by_notice(host, &original.message, recipients, NoticeEvent::Success);
        if !wanted.is_empty() {
            self.notify(host, original, wanted, action, None);
        }
    }

    /// Sends a delivery status notification (RFC 3464) from this host to the original
    /// sender, with the null reverse-path, through the normal paths (MDA or queue).
    fn notify(
        &mut self,
        host: usize,
        original: &Original,
        recipients: Vec<(String, Failure)>,
        action: DsnAction,
        will_retry_until_ms: Option<u64>,
    ) {
        let Original {
            message,
            reverse_path,
            data,
            arrived_ms,
            last_attempt_ms,
        } = original;
        let host_name = Rc::clone(&self.hosts[host].name);
        let number = self.next_notice;
        self.next_notice += 1;
        let label = match action {
            DsnAction::Delayed => format!("d{number}"),
            DsnAction::Delivered | DsnAction::Relayed => format!("s{number}"),
            _ => format!("b{number}"),
        };
        let asked = self.dsn_asked(host, message);
        let orcpt = |recipient: &str| {
            asked
                .and_then(|a| a.recipients.get(recipient))
                .and_then(|r| r.orcpt.as_ref())
        };
        let unix_s = |ms: u64| {
            self.scenario
                .start_unix_s
                .saturating_add((ms / 1000) as i64)
        };
        let now_s = unix_s(self.now_ms);
        let last_attempt_s = last_attempt_ms.map(unix_s);
        let request = DsnRequest {
            reporting_mta: host_name.to_string(),
            postmaster_address: notice_sender(&self.hosts[host].spec),
            envelope_sender: reverse_path.to_string(),
            original_message: data.as_ref().clone(),
            // RFC 3461 4.3: RET=FULL asks for the whole message in a failure notice; a
            // report of success or delay returns the header only.
            return_content: match asked.and_then(|a| a.ret) {
                Some(DsnReturn::Full) if action == DsnAction::Failed => ReturnContent::Full,
                _ => ReturnContent::Headers,
            },
            arrival_date_unix_s: unix_s(*arrived_ms),
            date_unix_s: now_s,
            utc_offset_min: 0,
            message_id_token: format!("{label}.{}", self.seed),
            envelope_id: asked.and_then(|a| a.envelope_id.clone()),
            recipients: recipients
                .iter()
                .map(|(recipient, failure)| RecipientReport {
                    final_recipient: recipient.clone(),
                    // RFC 3464 2.3.1, RFC 3461 6.3: the ORCPT the sender gave, as given.
                    original_recipient: orcpt(recipient).map(|o| o.address.clone()),
                    original_recipient_type: orcpt(recipient).map(|o| o.address_type.clone()),
                    action,
                    status: failure.status(),
                    remote_mta: failure.remote.clone(),
                    diagnostic: Some(failure.diagnostic()),
                    last_attempt_date_unix_s: last_attempt_s,
                    not_tried_since_last_attempt: failure.suspended,
                    will_retry_until_unix_s: will_retry_until_ms.map(unix_s),
                    no_failure_notice: asked
                        .is_some_and(|a| !a.wants(recipient, NoticeEvent::Failure)),
                })
                .collect(),
        };
        let mut bytes =
            local_received_header(&host_name, &label, now_s, request.utc_offset_min).into_bytes();
        bytes.extend_from_slice(&build_dsn(&request));
        self.record(Event::BounceCreated(Box::new(trace::BounceCreated {
            host: host_name,
            about: message.to_string(),
            bounce: label.clone(),
            to: reverse_path.to_string(),
            recipients: recipients.into_iter().map(|(r, _)| r).collect(),
            action: action.as_str().into(),
            bytes: trace::WireBytes::from_bytes(&bytes),
        })));
        self.track(&label, reverse_path);
        self.take_message(
            host,
            &label,
            "",
            &[reverse_path.to_string()],
            Rc::new(bytes),
        );
    }

    // ----- the end -----

    fn finish(mut self) -> RunResult {
        self.finishing = true;
        // A submission cut off by the end of the run: the message is still with the user
        // agent, which would try again.
        let open: Vec<(String, Name, Vec<String>)> = self
            .conns
            .values()
            .flat_map(|c| match &c.purpose {
                Purpose::Submission { messages, .. } => messages
                    .iter()
                    .map(|m| {
                        (
                            m.label.clone(),
                            Rc::clone(&c.client_name),
                            m.forward_paths.clone(),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        for (message, ua, recipients) in open {
            for recipient in recipients {
                if !self
                    .fates
                    .contains_key(&(message.clone(), recipient.clone()))
                {
                    self.set_fate(
                        &message,
                        &recipient,
                        Fate::Queued {
                            host: ua.to_string(),
                        },
                    );
                }
            }
        }
        let mut outcomes = Vec::new();
        let tracked = std::mem::take(&mut self.tracked);
        // Each fate is taken out as its recipient is reported: what is left at the end was
        // never sent, and a key met again is the same address twice in one envelope.
        let mut fates = std::mem::take(&mut self.fates);
        let mut reported = FxHashSet::default();
        for key in tracked {
            if reported.contains(&key) {
                continue;
            }
            match fates.remove(&key) {
                Some(fate) => {
                    let (message, recipient) = &key;
                    self.record(Event::Outcome(Box::new(trace::Outcome {
                        message: message.clone(),
                        recipient: recipient.clone(),
                        fate: fate.clone(),
                    })));
                    outcomes.push((message.clone(), recipient.clone(), fate));
                }
                None => self
                    .problems
                    .push(format!("{} <{}> has no fate: it was lost", key.0, key.1)),
            }
            reported.insert(key);
        }
        let mut never_sent: Vec<_> = fates.keys().collect();
        never_sent.sort();
        for key in never_sent {
            self.problems.push(format!(
                "{} <{}> has a fate but was never sent",
                key.0, key.1
            ));
        }
        // A message whose user agent never got to send it has no recipients to track.
        let unsent = self
            .scenario
            .messages
            .len()
            .saturating_sub(self.messages_submitted);
        if unsent > 0 {
            self.problems.push(format!(
                "{unsent} message(s) were never sent: the run ended first"
            ));
        }
        if self.cut_at_events {
            self.problems.push(format!(
                "the trace reached {TRACE_EVENTS_MAX} events and the run {}",
                trace::RUN_CUT
            ));
        } else if self.truncated {
            self.problems.push(format!(
                "the run held {} MiB of trace and mail and {}",
                RUN_OCTETS_MAX >> 20,
                trace::RUN_CUT
            ));
        }
        let problems = self.problems.clone();
        self.record(Event::ConservationChecked {
            ok: problems.is_empty(),
            problems: problems.clone(),
        });
        let mailboxes = self
            .store
            .borrow()
            .mailboxes
            .values()
            .map(|m| {
                (
                    m.address.clone(),
                    m.messages
                        .iter()
                        .map(|stored| (stored.uid.clone(), Rc::clone(&stored.bytes)))
                        .collect(),
                )
            })
            .collect();
        // The trace is kept for as long as the user looks at it: drop the room reserved for
        // events that did not happen.
        self.events.shrink_to_fit();
        RunResult {
            mailboxes,
            trace: Trace {
                scenario: self.scenario.name.clone(),
                seed: self.seed,
                start_unix_s: self.scenario.start_unix_s,
                events: self.events,
            },
            outcomes,
            conservation_problems: problems,
        }
    }
}

/// The origination fields a submission server adds to a message that lacks them.
struct Origin<'a> {
    date_unix_s: i64,
    message_id: &'a str,
    /// The envelope's sender, the author a message without one gets (as Postfix's cleanup
    /// does); for a null one, the mail system of `host_name`.
    sender: &'a ReversePath,
    host_name: &'a str,
}

/// A submission server completes a message (RFC 6409 8.2, 8.3): a header section without
/// `Date:`, `Message-ID:` or `From:` (RFC 5322 3.6 requires the first and the last, and
/// wants the second) gets them, after its last field. `from` is where the message's own
/// header section starts in `data`. `fields` is what
/// [`crate::smtp::trace::header_fields_end`] says of the message.
fn add_missing_origin_fields(
    data: &mut Vec<u8>,
    from: usize,
    fields: (usize, bool),
    origin: Origin,
) {
    let message = &data[from..];
    let (header_end, separated) = fields;
    let has = |name: &[u8]| count_header_fields(&message[..header_end], name) > 0;
    let mut added = String::new();
    if !has(b"Date") {
        added.push_str("Date: ");
        crate::mail::date::push_rfc5322_date(&mut added, origin.date_unix_s, 0);
        added.push_str("\r\n");
    }
    if !has(b"Message-ID") {
        added.push_str("Message-ID: <");
        added.push_str(origin.message_id);
        added.push_str(">\r\n");
    }
    // A resent message (RFC 5322 3.6.6) has its author already; who resends it is for the
    // Resent- fields, which Postfix's cleanup completes instead and this server leaves alone.
    let resent = [b"Resent-From".as_slice(), b"Resent-Sender", b"Resent-Date"]
        .iter()
        .any(|name| has(name));
    if !has(b"From") && !resent {
        added.push_str("From: ");
        match origin.sender {
            ReversePath::Null => {
                added.push_str("MAILER-DAEMON@");
                added.push_str(origin.host_name);
            }
            ReversePath::Mailbox(mailbox) => added.push_str(&mailbox.text()),
        }
        added.push_str("\r\n");
    }
    if added.is_empty() {
        return;
    }
    // A message with no body and no final CRLF ends its last field here first.
    if header_end == message.len() && header_end > 0 && !message.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(added.as_bytes());
        return;
    }
    // Text that is not a header field right after the fields (or at the very start) is the
    // body: a blank line now separates it from the header section (RFC 5322 2.1).
    if !separated {
        added.push_str("\r\n");
    }
    let at = from + header_end;
    data.splice(at..at, added.bytes());
}

/// A submission server takes out of the header section what must not travel on: `Bcc:` and
/// `Resent-Bcc:` (their recipients are in the envelope only; RFC 5322 3.6.3, 3.6.6) and
/// `Return-Path:` (which only the MDA writes at final delivery; RFC 5321 4.4: an originating
/// system SHOULD NOT send one), as Postfix's cleanup does.
const PRIVATE_FIELDS: &[&[u8]] = &[b"Bcc", b"Resent-Bcc", b"Return-Path"];

/// Whether a session's deadline needs a new timer, given the one already scheduled (which it
/// then replaces). One timer per side is enough: a later deadline is picked up when the
/// earlier timer fires (the engines ignore an early call), so only an earlier one needs a
/// new timer.
fn needs_timer(scheduled_ms: &mut Option<u64>, deadline_ms: Option<u64>) -> Option<u64> {
    let deadline = deadline_ms?;
    if scheduled_ms.is_some_and(|scheduled| scheduled <= deadline) {
        return None;
    }
    *scheduled_ms = Some(deadline);
    Some(deadline)
}

#[cfg(test)]
mod tests {
    use super::{
        notice_sender, numbered, part_before_data_end, pop3_reply_code, push_hex, shown_in_reply,
        stalled_command_start, Connections, Event, Explanation, Interner, Name, ScenarioRef,
        StallPoint, World, RUN_OCTETS_MAX,
    };
    use crate::sim::library;
    use std::borrow::Cow;
    use std::rc::Rc;

    /// A link that breaks in a message's data lets half of it through, and never a dot that
    /// starts a line: what reaches the server can never end the data (RFC 5321 4.1.1.4).
    #[test]
    fn a_link_broken_in_the_data_lets_through_half_and_no_leading_dot() {
        let message = b"Subject: hi\r\n\r\nHello there.\r\n.\r\n";
        assert_eq!(part_before_data_end(message), message.len() / 2);
        // The end of the data within the first half: cut before its dot.
        let short = b"Hi\r\n.\r\nQUIT\r\nNOOP\r\nNOOP\r\n";
        assert_eq!(part_before_data_end(short), 4);
        // A dot-stuffed line is cut at its dot too, as is a dot after a bare LF.
        assert_eq!(part_before_data_end(b"a\r\n..x\r\nyyyyyyyyyyyy"), 3);
        assert_eq!(part_before_data_end(b"ab\n.\n\r\nyyyyyyyyyy"), 3);
        // Where a line starts is not known before the first line break: a dot there counts.
        assert_eq!(part_before_data_end(b".\r\n"), 0);
        assert_eq!(part_before_data_end(b""), 0);
        // A dot inside a line is content.
        assert_eq!(part_before_data_end(b"a.b.c.d.e.f"), 5);
    }

    #[test]
    fn a_stalled_server_reads_up_to_its_command_and_never_into_message_content() {
        let pipelined = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n";
        assert_eq!(stalled_command_start(pipelined, StallPoint::Mail), Some(0));
        assert_eq!(stalled_command_start(pipelined, StallPoint::Rcpt), Some(22));
        assert_eq!(stalled_command_start(pipelined, StallPoint::Data), Some(42));
        // In any case, and HELO for EHLO; a longer word is another command.
        assert_eq!(
            stalled_command_start(b"helo x\r\n", StallPoint::Ehlo),
            Some(0)
        );
        assert_eq!(
            stalled_command_start(b"data\r\n", StallPoint::Data),
            Some(0)
        );
        assert_eq!(stalled_command_start(b"MAILX\r\n", StallPoint::Mail), None);
        // After DATA comes content: a RCPT line there is text, and is not looked at.
        let content = b"MAIL FROM:<a@b.test>\r\nDATA\r\nRCPT TO:<x@y.test>\r\n.\r\n";
        assert_eq!(stalled_command_start(content, StallPoint::Rcpt), None);
        // Nor in a BDAT chunk (RFC 3030 2), whatever its octets look like.
        let chunk = b"MAIL FROM:<a@b.test>\r\nBDAT 12 LAST\r\nDATA is ok\r\n";
        assert_eq!(stalled_command_start(chunk, StallPoint::Data), None);
        // Not at a command.
        assert_eq!(stalled_command_start(pipelined, StallPoint::Greeting), None);
        assert_eq!(stalled_command_start(pipelined, StallPoint::Dot), None);
        assert_eq!(stalled_command_start(b"", StallPoint::Mail), None);
        assert_eq!(stalled_command_start(b"MA", StallPoint::Mail), None);
    }

    /// Reply text is printable ASCII and HT (RFC 5321 4.2 `textstring`), in a line of at most
    /// 512 octets: what a refusal may echo of the client's words.
    #[test]
    fn a_refusal_echoes_only_short_printable_ascii() {
        assert_eq!(shown_in_reply("bob@b.test"), Some("bob@b.test"));
        assert_eq!(shown_in_reply("a\tb"), Some("a\tb"));
        let longest = "a".repeat(200);
        assert_eq!(shown_in_reply(&longest), Some(longest.as_str()));
        for text in [
            "j\u{f6}s\u{e9}",
            "\u{1b}x\u{7f}",
            "a\r\nb",
            &"a".repeat(201),
        ] {
            assert_eq!(shown_in_reply(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_run_that_ended_under_the_memory_bound_is_not_cut_by_its_report() {
        let scenario = library::find("unknown-user").expect("a built-in scenario");
        let mut world = World::new(ScenarioRef::Borrowed(&scenario), scenario.seed);
        assert!(world.run_some(u64::MAX), "the run is over");
        // Just under the bound when the run ends: the outcomes and the check still go in.
        world.run_octets = RUN_OCTETS_MAX - 100;
        let result = world.finish();
        assert!(
            result.conservation_problems.is_empty(),
            "{:?}",
            result.conservation_problems
        );
        let last = result.trace.events.last().map(|e| &e.event);
        assert!(
            matches!(last, Some(Event::ConservationChecked { ok: true, .. })),
            "{last:?}"
        );
    }

    #[test]
    fn notices_come_from_an_ascii_postmaster_address() {
        let host = |local_domains: serde_json::Value| -> crate::sim::scenario::HostSpec {
            serde_json::from_value(serde_json::json!({
                "name": "MX.b.test", "address": "192.0.2.20", "local_domains": local_domains
            }))
            .expect("a host")
        };
        for (local_domains, from) in [
            (serde_json::json!(["B.test", "c.test"]), "postmaster@b.test"),
            (serde_json::json!([]), "postmaster@mx.b.test"),
            // In U-labels, the notice's header would need SMTPUTF8 to be delivered.
            (
                serde_json::json!(["bü.test", "b.test"]),
                "postmaster@mx.b.test",
            ),
        ] {
            assert_eq!(notice_sender(&host(local_domains)), from);
        }
    }

    #[test]
    fn a_pop3_reply_is_classed_by_its_response_code() {
        for (line, code) in [
            ("+OK POP3 server ready", 200),
            ("-ERR no such message", 500),
            ("-ERR [IN-USE] maildrop already locked", 400),
            ("-ERR [SYS/TEMP] maildrop unavailable", 400),
            ("-ERR [SYS/PERM] maildrop cannot be served", 500),
            ("-ERR [UTF8] message 1 has non-ASCII header fields", 500),
            ("-ERR [X-OTHER] odd", 500),
        ] {
            assert_eq!(
                pop3_reply_code(line.starts_with("+OK"), line),
                code,
                "{line}"
            );
        }
    }

    #[test]
    fn names_and_queue_ids_are_written_as_format_writes_them() {
        for number in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            99,
            255,
            256,
            4095,
            65535,
            1 << 20,
            u64::MAX,
        ] {
            assert_eq!(numbered("m", number), format!("m{number}"));
            for width in [0, 1, 5, 20] {
                let mut hex = String::from("q");
                push_hex(&mut hex, number, width);
                assert_eq!(hex, format!("q{number:0width$X}"), "{number} {width}");
            }
        }
    }

    #[test]
    fn equal_explanations_share_one_note_however_their_texts_were_made() {
        let mut interner = Interner::default();
        let meaning: Name = Rc::from("Requested action completed");
        let explain = |why: Cow<'static, str>, rfc: Cow<'static, str>| Explanation {
            meaning: Rc::clone(&meaning),
            why,
            rfc,
        };
        let written = |n: u32| Cow::Owned(format!("{n} recipient(s) accepted"));
        let first = interner.reply_note(explain(written(1), Cow::Borrowed("RFC 5321 4.1.1.4")));
        let again = interner.reply_note(explain(written(1), Cow::Borrowed("RFC 5321 4.1.1.4")));
        let other = interner.reply_note(explain(written(2), Cow::Borrowed("RFC 5321 4.1.1.4")));
        let owned_rfc =
            interner.reply_note(explain(written(1), Cow::Owned("RFC 5321 4.1.1.4".into())));
        let static_why = interner.reply_note(explain(
            Cow::Borrowed("1 recipient(s) accepted"),
            Cow::Borrowed("RFC 5321 4.1.1.4"),
        ));
        assert!(Rc::ptr_eq(&first, &again));
        assert!(Rc::ptr_eq(&first, &owned_rfc));
        assert!(Rc::ptr_eq(&first, &static_why));
        assert!(!Rc::ptr_eq(&first, &other));
        assert_eq!(&*first.why, "1 recipient(s) accepted");
        assert_eq!(&*other.why, "2 recipient(s) accepted");
        assert_eq!(&*first.rfc, "RFC 5321 4.1.1.4");
        assert_eq!(&*first.meaning, "Requested action completed");
        // A meaning with the same text at another address gets the same note.
        let copy = Explanation {
            meaning: Rc::from("Requested action completed"),
            why: written(1),
            rfc: Cow::Borrowed("RFC 5321 4.1.1.4"),
        };
        assert!(Rc::ptr_eq(&first, &interner.reply_note(copy)));
    }

    #[test]
    fn connections_are_found_by_id_whatever_order_they_end_in() {
        let mut conns: Connections<&str> = Connections::default();
        conns.insert(3, "three");
        // Id 4 went to an attempt that never became a connection.
        conns.insert(5, "five");
        conns.insert(6, "six");
        assert_eq!(conns.get(&4), None);
        assert_eq!(conns.get(&5), Some(&"five"));
        assert_eq!(conns.remove(&5), Some("five"));
        assert_eq!(conns.remove(&5), None);
        assert!(conns.contains_key(&3) && conns.contains_key(&6));
        let open: Vec<_> = conns.values().copied().collect();
        assert_eq!(open, ["three", "six"]);
        assert_eq!(conns.remove(&3), Some("three"));
        // The ended slots at the front are gone; the rest are still found.
        assert_eq!(conns.slots.len(), 1);
        assert_eq!(conns.get_mut(&6), Some(&mut "six"));
        assert_eq!(conns.get(&2), None);
        assert_eq!(conns.remove(&6), Some("six"));
        assert!(conns.slots.is_empty());
        conns.insert(9, "nine");
        assert_eq!(conns.values().collect::<Vec<_>>(), [&"nine"]);
        assert_eq!(conns.get(&6), None);
    }
}
