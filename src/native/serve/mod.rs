//! `smtp-lab serve`: the engine's server session on a real TCP port, one thread per session,
//! storing each accepted message in a Maildir before it answers 250; with `--pop3`, the POP3
//! engine's server session on another port, serving those Maildirs.

mod pop3;

use super::maildir::MaildirStore;
use super::net::{read_until, Readout};
use super::transcript::{print_bytes_line, print_line, print_reply};
use crate::smtp::address::{domain_key, ForwardPath, Mailbox};
use crate::smtp::data_in::BareLineEnding;
use crate::smtp::policy::{PeerInfo, StaticPolicy};
use crate::smtp::server::{
    CloseReason, Envelope, Protocol, ReceivedMessage, ServerConfig, ServerEvent, ServerSession,
    ServerStateKind, StorageOutcome,
};
use crate::smtp::trace::{
    push_without_return_path, received_header, return_path_header, separate_body, ReceivedFields,
    WithProtocol,
};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub domains: Vec<String>,
    pub mailboxes: Vec<String>,
    pub maildir: PathBuf,
    pub max_size: usize,
    pub max_recipients: usize,
    pub normalize_bare_line_endings: bool,
    pub hostname: String,
    pub max_sessions: usize,
    pub idle_timeout_s: u64,
    pub users: Vec<(String, String)>,
    pub quiet: bool,
    /// Where to serve the Maildirs over POP3, if anywhere.
    pub pop3_listen: Option<SocketAddr>,
    /// POP3 logins: a mailbox's local part and its password.
    pub pop3_users: Vec<(String, String)>,
}

/// Everything the session threads share.
struct Shared {
    config: ServerConfig,
    policy: Arc<Mutex<StaticPolicy>>,
    store: MaildirStore,
    /// Configured mailboxes by lower-cased local part, so that `Bob@` and `bob@` land in the
    /// same Maildir (the policy matches local parts without regard to case).
    mailbox_names: Vec<String>,
    sessions_open: AtomicUsize,
    sessions_started: AtomicU64,
    /// The numbers of the sessions under way, so that a stop that has to cut some can say
    /// which in the log.
    sessions_under_way: Mutex<std::collections::BTreeMap<u64, Service>>,
    /// Messages received so far, stored or not: the sequence number in each queue id.
    messages_received: AtomicU64,
    max_sessions: usize,
    quiet: bool,
    /// When the server started: sessions measure their time from here.
    started: Instant,
    /// Set at Ctrl-C or SIGTERM: each session says 421 and closes at its next turn.
    shutting_down: AtomicBool,
    /// The POP3 service's logins and locks, when it runs.
    pop3: pop3::Logins,
}

/// How often a session waiting for input looks whether the server is shutting down.
const SHUTDOWN_CHECK_MS: u64 = 200;

/// How long the server waits for its sessions to say 421 and close before it stops anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// SIGINT (Ctrl-C) or SIGTERM: every open session answers 421 and closes (RFC 5321 3.8 lets
/// a server close only after QUIT, a timeout or a 421); a message being stored is stored and
/// answered first. Then the process ends: with 0 when every session closed so, with 1 when
/// some were still open after SHUTDOWN_WAIT. A second signal ends it at once, with 128 + the
/// signal's number (130 for Ctrl-C). Returns at once, so that the signal thread is free for
/// that second signal; neither it nor the waiting thread writes to stdout or stderr, which a
/// stuck reader may hold.
fn stop(shared: &Arc<Shared>, signal: i32) {
    if shared.shutting_down.swap(true, Ordering::SeqCst) {
        std::process::exit(128 + signal);
    }
    let pop3_too = if shared.pop3.is_empty() {
        ""
    } else {
        " (POP3 sessions are closed, deleting nothing)"
    };
    // Said from a thread of its own, which may wait on stderr for as long as it likes.
    let _ = thread::Builder::new().spawn(move || {
        let _ = writeln!(
            io::stderr(),
            "smtp-lab serve: stopping; open sessions are told 421{pop3_too}"
        );
    });
    let shared = Arc::clone(shared);
    let waiting = thread::Builder::new()
        .name("smtp-stop".into())
        .spawn(move || {
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            while shared.sessions_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let still_open = shared.sessions_open.load(Ordering::SeqCst);
            if still_open > 0 {
                // The log says of each session cut that it closed, as of any other session.
                let cut: Vec<(u64, Service)> = under_way(&shared)
                    .iter()
                    .map(|(tag, service)| (*tag, *service))
                    .collect();
                let pop3_cut = cut.iter().any(|(_, service)| *service == Service::Pop3);
                write_within_a_moment(move || {
                    let mut out = io::stdout().lock();
                    for (tag, service) in cut {
                        let what = match service {
                            Service::Smtp => "took no 421",
                            Service::Pop3 => "took nothing more (nothing is deleted without QUIT)",
                        };
                        print_line(
                            &mut out,
                            Some(tag),
                            "#",
                            &format!(
                                "closed by the server: it stopped, and the client {what} for {} s",
                                SHUTDOWN_WAIT.as_secs()
                            ),
                        );
                    }
                    let _ = out.flush();
                });
                write_within_a_moment(move || {
                    let took = if pop3_cut {
                        "took nothing more: no 421, or on POP3 no response"
                    } else {
                        "did not take the 421"
                    };
                    let _ = writeln!(
                        io::stderr(),
                        "smtp-lab serve: {still_open} session(s) still open after {} s (their \
                         clients {took}) are cut; a message they were sending was never accepted",
                        SHUTDOWN_WAIT.as_secs()
                    );
                });
            }
            std::process::exit(i32::from(still_open > 0));
        });
    if waiting.is_err() {
        std::process::exit(1);
    }
}

/// Runs `write` (to stdout or stderr, which a stuck reader may hold) in a thread of its own
/// and waits for it a moment at most, so that a stop is never held by its own output.
fn write_within_a_moment(write: impl FnOnce() + Send + 'static) {
    let (written, writing) = std::sync::mpsc::channel();
    let _ = thread::Builder::new().spawn(move || {
        write();
        let _ = written.send(());
    });
    let _ = writing.recv_timeout(Duration::from_secs(1));
}

/// Counts a session as open for as long as it lives, however its thread ends.
struct OpenSession(Arc<Shared>);

/// Lists a session's number among those under way for as long as its thread serves it.
struct UnderWay<'a>(&'a Shared, u64);

impl<'a> UnderWay<'a> {
    fn new(shared: &'a Shared, tag: u64, service: Service) -> UnderWay<'a> {
        under_way(shared).insert(tag, service);
        UnderWay(shared, tag)
    }
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        under_way(self.0).remove(&self.1);
    }
}

/// The list of sessions under way; a thread that panicked while holding it left it whole
/// (an insert or a remove), so it is read all the same.
fn under_way(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Service>> {
    shared
        .sessions_under_way
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.sessions_open.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn run(options: ServeOptions) -> ExitCode {
    if let Some(problem) = options_problem(&options) {
        eprintln!("smtp-lab serve: {problem}");
        return ExitCode::from(2);
    }
    let shared = Arc::new(build_shared(&options));
    if let Err(error) = shared.store.check_writable() {
        eprintln!(
            "smtp-lab serve: cannot store mail in {}: {error}",
            options.maildir.display()
        );
        return ExitCode::from(1);
    }
    let Some((listener, address)) = listen(options.listen) else {
        return ExitCode::from(1);
    };
    // Both ports are taken before either is served: a POP3 port in use stops the server
    // before it takes any mail.
    let pop3_listener = match options.pop3_listen {
        Some(pop3_listen) => match listen(pop3_listen) {
            Some(bound) => Some(bound),
            None => return ExitCode::from(1),
        },
        None => None,
    };
    // Without the handler (it could not be set up) the signals keep their default: the
    // process ends at once, its sessions cut without a reply.
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            let on_signal = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name("smtp-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        stop(&on_signal, signal);
                    }
                });
            // The handlers stay installed without their thread: the signals would be
            // ignored, and only SIGKILL could stop the server.
            if let Err(error) = spawned {
                eprintln!("smtp-lab serve: cannot start the signal thread: {error}");
                return ExitCode::from(1);
            }
        }
        Err(error) => eprintln!("smtp-lab serve: cannot catch Ctrl-C and SIGTERM: {error}"),
    }
    // A log: a full or closed stdout does not stop the server.
    let _ = writeln!(
        io::stdout(),
        "smtp-lab serve: listening on {address} for {} (Maildirs under {})",
        options.domains.join(", "),
        shared.store.root().display()
    );
    let _ = io::stdout().flush();
    if let Some((pop3_listener, pop3_address)) = pop3_listener {
        let _ = writeln!(
            io::stdout(),
            "smtp-lab serve: POP3 on {pop3_address} for {} (RFC 1939)",
            shared.pop3.names().join(", ")
        );
        let _ = io::stdout().flush();
        let on_pop3 = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("pop3-accept".into())
            .spawn(move || accept(&on_pop3, pop3_listener, Service::Pop3));
        if let Err(error) = spawned {
            eprintln!("smtp-lab serve: cannot start the POP3 listener: {error}");
            return ExitCode::from(1);
        }
    }
    accept(&shared, listener, Service::Smtp);
    ExitCode::SUCCESS
}

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Smtp,
    Pop3,
}

impl Service {
    /// What a connection gets instead of a greeting when it is not served: SMTP's 421 (RFC
    /// 5321 3.8, 4.2.3, naming the server as its other replies to close do), or POP3's
    /// negative greeting with RFC 3206's [SYS/TEMP], as Dovecot sends one.
    fn refusal(self, hostname: &str, why: Refusal) -> String {
        match (self, why) {
            (Service::Smtp, Refusal::ShuttingDown) => shutting_down_reply(hostname),
            (Service::Smtp, Refusal::TooManySessions) => {
                format!("421 4.3.2 {hostname} Too many sessions, try again later\r\n")
            }
            (Service::Pop3, Refusal::ShuttingDown) => {
                "-ERR [SYS/TEMP] server shutting down\r\n".to_string()
            }
            (Service::Pop3, Refusal::TooManySessions) => {
                "-ERR [SYS/TEMP] too many sessions, try again later\r\n".to_string()
            }
        }
    }

    /// How the log names what a refused connection was told.
    fn refusal_name(self) -> &'static str {
        match self {
            Service::Smtp => "421",
            Service::Pop3 => "-ERR",
        }
    }

    fn serve(self, shared: &Shared, stream: TcpStream) {
        match self {
            Service::Smtp => serve_session(shared, stream),
            Service::Pop3 => pop3::serve_session(shared, stream),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Refusal {
    ShuttingDown,
    TooManySessions,
}

/// Takes connections until the process ends, each in a session thread of its own; SMTP and
/// POP3 sessions count together against --max-sessions.
fn accept(shared: &Arc<Shared>, listener: TcpListener, service: Service) {
    for connection in listener.incoming() {
        let stream = match connection {
            Ok(stream) => stream,
            // A connection that failed before we took it (reset, out of descriptors): go on.
            Err(error) => {
                eprintln!("smtp-lab serve: accept failed: {error}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Counted before the flag is read: the waiting thread then sees this connection, or
        // this loop sees the flag; and the count holds until the refusal is written.
        let over = shared.sessions_open.fetch_add(1, Ordering::SeqCst) >= shared.max_sessions;
        let open = OpenSession(Arc::clone(shared));
        if shared.shutting_down.load(Ordering::SeqCst) {
            refuse(
                stream,
                &service.refusal(&shared.config.hostname, Refusal::ShuttingDown),
            );
            continue;
        }
        if over {
            // As a session's log names its client: `[127.0.0.1]`.
            let from = peer_of(&stream).map_or_else(
                || "an address no longer known".to_string(),
                |peer| peer.address_literal(),
            );
            refuse(
                stream,
                &service.refusal(&shared.config.hostname, Refusal::TooManySessions),
            );
            // Said once the connection no longer counts: a stuck reader of the log holds
            // this loop, but not a stop waiting for the sessions to close.
            drop(open);
            // With --quiet too, as a session's opening is: a client's 421 shows in the log.
            print_line(
                &mut io::stdout().lock(),
                None,
                "#",
                &format!(
                    "connection from {from} refused with {}: as many sessions are open \
                     as --max-sessions allows ({})",
                    service.refusal_name(),
                    shared.max_sessions
                ),
            );
            continue;
        }
        let spawned = thread::Builder::new()
            .name(format!("{service:?}-session").to_lowercase())
            .spawn(move || service.serve(&open.0, stream));
        // A thread that did not start dropped its OpenSession, and with it the count.
        if let Err(error) = spawned {
            eprintln!("smtp-lab serve: cannot start a session thread: {error}");
        }
    }
}

/// A listener on `address`, and the address it got (the port the system chose for port 0);
/// `None`, said on stderr, when the address cannot be had.
fn listen(address: SocketAddr) -> Option<(TcpListener, String)> {
    match TcpListener::bind(address) {
        Ok(listener) => {
            let bound = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| address.to_string());
            Some((listener, bound))
        }
        Err(error) => {
            eprintln!("smtp-lab serve: cannot listen on {address}: {error}");
            None
        }
    }
}

/// What is wrong with the options, if anything: a server that could never take mail, or
/// whose name would break its greeting line, is refused before it listens.
fn options_problem(options: &ServeOptions) -> Option<String> {
    use crate::sim::scenario::mail_domain_problem;
    // A mailbox is an address as RCPT TO could name it (RFC 5321 4.1.2), without a route:
    // `@example.org` or `a@b@example.org` could never receive mail.
    let is_mailbox = |text: &str| {
        crate::smtp::address::parse_forward_path(&format!("<{text}>")).is_ok_and(|parsed| {
            parsed.rest.is_empty()
                && !parsed.source_route
                && matches!(parsed.path, ForwardPath::Mailbox(_))
        })
    };
    if let Some(mailbox) = options.mailboxes.iter().find(|m| !is_mailbox(m)) {
        return Some(format!(
            "--mailbox takes local-part@domain, not {mailbox:?}"
        ));
    }
    if let Some((domain, problem)) = options
        .domains
        .iter()
        .find_map(|d| mail_domain_problem(d).map(|problem| (d, problem)))
    {
        return Some(format!("--domain {domain:?} {problem}"));
    }
    // A mailbox in a domain the server was not given would quietly make that domain local.
    let served: Vec<String> = options.domains.iter().map(|d| domain_key(d)).collect();
    if let Some(mailbox) = options.mailboxes.iter().find(|m| {
        m.rsplit_once('@')
            .is_some_and(|(_, domain)| !served.contains(&domain_key(domain)))
    }) {
        return Some(format!(
            "--mailbox {mailbox:?} is not in a domain given with --domain"
        ));
    }
    // The name goes into the greeting, EHLO reply and Received: lines (RFC 5321 4.1.3,
    // 4.4): a host name or an address literal.
    if mail_domain_problem(&options.hostname).is_some() || !options.hostname.is_ascii() {
        return Some(format!(
            "--hostname takes a host name or an address literal, not {:?}",
            options.hostname
        ));
    }
    if options.max_recipients == 0 {
        return Some(
            "--max-recipients must be at least 1 (RFC 5321 4.5.3.1.8 asks for 100)".into(),
        );
    }
    if options.max_sessions == 0 {
        return Some("--max-sessions must be at least 1".into());
    }
    if options.idle_timeout_s == 0 {
        return Some(
            "--idle-timeout must be at least 1 second (RFC 5321 4.5.3.2.7 asks for 5 minutes)"
                .into(),
        );
    }
    pop3_options_problem(options, is_mailbox)
}

/// What is wrong with the POP3 options, if anything: a service no one could log in to, a
/// login for no mailbox, or logins without the service.
fn pop3_options_problem(
    options: &ServeOptions,
    is_mailbox: impl Fn(&str) -> bool,
) -> Option<String> {
    match (options.pop3_listen, options.pop3_users.is_empty()) {
        (Some(_), true) => {
            return Some("--pop3 needs a --pop3-user MAILBOX:PASSWORD: no one could log in".into())
        }
        (None, false) => {
            return Some("--pop3-user is for the POP3 service: give --pop3 ADDRESS:PORT".into())
        }
        _ => {}
    }
    let domain = options
        .domains
        .first()
        .map_or("example.org", String::as_str);
    let configured = mailbox_local_parts(&options.mailboxes);
    let mut seen = std::collections::BTreeSet::new();
    for (user, _) in &options.pop3_users {
        // USER takes the name as one argument (RFC 1939 7), which a space would split.
        if user.contains(char::is_whitespace) || !is_mailbox(&format!("{user}@{domain}")) {
            return Some(format!(
                "--pop3-user takes a mailbox's local part (its Maildir's name), not {user:?}"
            ));
        }
        let key = user.to_lowercase();
        let configured_here = configured.iter().any(|name| name.to_lowercase() == key);
        if !configured.is_empty() && key != "postmaster" && !configured_here {
            return Some(format!(
                "--pop3-user {user:?} names no mailbox given with --mailbox"
            ));
        }
        if !seen.insert(key) {
            return Some(format!("--pop3-user {user:?} is given twice"));
        }
    }
    None
}

fn build_shared(options: &ServeOptions) -> Shared {
    let mut config = ServerConfig::new(options.hostname.clone());
    config.message_size_max_octets = options.max_size as u64;
    config.recipients_max = options.max_recipients;
    config.idle_timeout_ms = options.idle_timeout_s.saturating_mul(1000);
    config.bare_line_ending = if options.normalize_bare_line_endings {
        BareLineEnding::Normalize
    } else {
        BareLineEnding::Reject
    };
    config.auth_enabled = !options.users.is_empty();

    // It stores mail and sends none on: other domains are refused, after AUTH too.
    let mut policy = StaticPolicy::new().local_delivery_only(true);
    for domain in &options.domains {
        policy = policy.local_domain(domain);
    }
    if !options.mailboxes.is_empty() {
        for mailbox in &options.mailboxes {
            policy = policy.mailbox(mailbox);
        }
        // RFC 5321 4.5.1: postmaster@domain must be accepted for every domain served.
        for domain in &options.domains {
            policy = policy.mailbox(&format!("postmaster@{domain}"));
        }
    }
    // RFC 5321 4.5.1: its postmaster by its own name and address too, as the simulation's
    // hosts take it.
    policy = policy.own_name(&options.hostname);
    if !options.listen.ip().is_unspecified() {
        policy = policy.own_name(&crate::smtp::trace::address_literal(options.listen.ip()));
    }
    for (user, password) in &options.users {
        policy = policy.user(user, password);
    }
    policy = policy.auth_required(!options.users.is_empty());

    let mailbox_names = mailbox_local_parts(&options.mailboxes);
    let pop3 = pop3::Logins::new(
        options
            .pop3_users
            .iter()
            .map(|(user, password)| {
                (
                    user.clone(),
                    password.clone(),
                    maildir_name(&mailbox_names, user),
                )
            })
            .collect(),
    );
    Shared {
        config,
        policy: Arc::new(Mutex::new(policy)),
        store: MaildirStore::new(&options.maildir, &options.hostname),
        mailbox_names,
        sessions_open: AtomicUsize::new(0),
        sessions_started: AtomicU64::new(0),
        sessions_under_way: Mutex::default(),
        messages_received: AtomicU64::new(0),
        max_sessions: options.max_sessions.max(1),
        quiet: options.quiet,
        started: Instant::now(),
        shutting_down: AtomicBool::new(false),
        pop3,
    }
}

/// The client at the other end of `stream`, if the system still knows its address.
fn peer_of(stream: &TcpStream) -> Option<PeerInfo> {
    let address = stream.peer_addr().ok()?;
    Some(PeerInfo::new(
        address.ip().to_string(),
        Some(address.port()),
    ))
}

/// A connection the server will not serve (too many sessions, or it is stopping): its 421
/// (RFC 5321 3.8), then the close, without a session.
fn refuse(mut stream: TcpStream, reply: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(reply.as_bytes());
}

/// What a connection made while the server is stopping gets instead of a greeting.
fn shutting_down_reply(hostname: &str) -> String {
    format!("421 4.3.2 {hostname} Service shutting down, closing transmission channel\r\n")
}

fn serve_session(shared: &Shared, mut stream: TcpStream) {
    let tag = shared.sessions_started.fetch_add(1, Ordering::SeqCst) + 1;
    let _under_way = UnderWay::new(shared, tag, Service::Smtp);
    let peer = peer_of(&stream).unwrap_or_else(|| PeerInfo::new("0.0.0.0", None));
    let now_ms = || shared.started.elapsed().as_millis() as u64;
    let _ = stream.set_nodelay(true);
    // A client that does not take the replies holds the session as one that says nothing
    // would: the idle timeout bounds both, as Postfix's smtpd_timeout does. Without it, a
    // client pipelining commands and never reading would keep its place in --max-sessions.
    let stalled_after = Duration::from_millis(shared.config.idle_timeout_ms.max(1));
    say(
        shared,
        tag,
        "#",
        &format!("connection from {}", peer.address_literal()),
    );
    let mut session = ServerSession::new(
        shared.config.clone(),
        Arc::clone(&shared.policy),
        peer,
        now_ms(),
    );
    let mut buffer = vec![0u8; 16 * 1024];
    let mut cut = None;
    loop {
        // Events first: a received message must be stored before its reply can exist.
        while let Some(event) = session.poll_event() {
            print_event(shared, tag, &event, cut);
            if let ServerEvent::MessageReceived { message } = &event {
                let outcome = store_message(shared, tag, message);
                // Cannot fail: a MessageReceived event always leaves a message awaiting storage.
                let _ = session.message_stored(outcome, now_ms());
            }
        }
        let mut write_failed = false;
        while let Some(bytes) = session.poll_output() {
            if let Err(error) = write_within(&mut stream, &bytes, stalled_after) {
                let stalled = matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                );
                let how = if stalled {
                    CutHow::Stalled(stalled_after.as_secs())
                } else {
                    CutHow::WriteFailed
                };
                cut = Some(Cut::new(how, session.state()));
                write_failed = true;
                break;
            }
        }
        if write_failed {
            session.handle_peer_closed();
            continue;
        }
        if session.is_closed() {
            break;
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            session.shut_down(now_ms());
            // Closed now (it waits only for a message's storage, which the events above
            // always complete).
            debug_assert!(session.is_closed());
            if session.is_closed() {
                continue;
            }
        }
        match read_or_look_up(&mut stream, &mut buffer, session.poll_timeout(), now_ms()) {
            Readout::Bytes(read) => session.handle_input(&buffer[..read], now_ms()),
            Readout::Closed => {
                cut = Some(Cut::new(CutHow::ByClient, session.state()));
                session.handle_peer_closed()
            }
            Readout::TimedOut => session.handle_timeout(now_ms()),
            Readout::Interrupted => {}
        }
    }
    while let Some(event) = session.poll_event() {
        print_event(shared, tag, &event, cut);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Reads once, waiting until the session's `deadline` at the latest, and never longer than
/// SHUTDOWN_CHECK_MS, so that a shutdown is noticed; the session's own deadline passes only
/// when its handle_timeout finds it so.
fn read_or_look_up(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    deadline: Option<u64>,
    now_ms: u64,
) -> Readout {
    let wake_at = deadline
        .unwrap_or(u64::MAX)
        .min(now_ms.saturating_add(SHUTDOWN_CHECK_MS));
    read_until(stream, buffer, Some(wake_at), now_ms)
}

/// Writes all of `bytes` within `limit`: a client that takes them an octet at a time gains no
/// time by it. `TimedOut` when the limit passes first.
fn write_within(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> io::Result<()> {
    // An idle timeout past what the clock can count (`--idle-timeout` of a few hundred
    // million years) is none.
    let Some(deadline) = Instant::now().checked_add(limit) else {
        stream.set_write_timeout(None)?;
        return stream.write_all(bytes);
    };
    let mut sent = 0;
    while sent < bytes.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => sent += written,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn say(shared: &Shared, tag: u64, prefix: &str, text: &str) {
    if shared.quiet && prefix != "#" {
        return;
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    print_line(&mut out, Some(tag), prefix, text);
}

/// How a connection ended when the session did not end it: the engine only learns that the
/// peer is gone, and the transcript says who cut it and what was lost.
#[derive(Clone, Copy, Debug)]
struct Cut {
    how: CutHow,
    /// In the middle of a message, which is dropped: only the reply after its data would
    /// have taken responsibility for it (RFC 5321 6.1).
    message_dropped: bool,
}

#[derive(Clone, Copy, Debug)]
enum CutHow {
    /// The client closed the connection.
    ByClient,
    /// The client took no reply for this many seconds, so the server closed the connection.
    Stalled(u64),
    /// Writing a reply failed (the connection was reset).
    WriteFailed,
}

impl Cut {
    fn new(how: CutHow, state: ServerStateKind) -> Cut {
        let message_dropped = matches!(
            state,
            ServerStateKind::ReceivingData
                | ServerStateKind::ReceivingBdat
                | ServerStateKind::ExpectBdat
        );
        Cut {
            how,
            message_dropped,
        }
    }

    fn text(self) -> String {
        let how = match self.how {
            CutHow::ByClient => "closed by the client".to_string(),
            CutHow::Stalled(seconds) => {
                format!("closed by the server: the client took no reply for {seconds} s")
            }
            CutHow::WriteFailed => "closed: a reply could not be sent".to_string(),
        };
        if self.message_dropped {
            format!(
                "{how}; the message being sent is dropped (never accepted, so the client \
                 still has it)"
            )
        } else {
            how
        }
    }
}

/// The transcript's last line of a session: who closed it and why.
fn closed_text(reason: CloseReason, cut: Option<Cut>) -> String {
    let why = match (reason, cut) {
        (CloseReason::PeerClosed, Some(cut)) => return cut.text(),
        (CloseReason::Quit, _) => "after QUIT",
        (CloseReason::Timeout, _) => "the client was idle too long (421 sent)",
        (CloseReason::TooManyErrors, _) => "too many errors (421 sent)",
        (CloseReason::TooManyAuthFailures, _) => "too many failed AUTH attempts (421 sent)",
        (CloseReason::PeerClosed, None) => "by the client",
        (CloseReason::InputOverflow, _) => "more input than the server holds (421 sent)",
        (CloseReason::ServiceUnavailable, _) => "refused at the greeting",
        (CloseReason::BareLineEnding, _) => {
            "the client ends its lines with a bare CR or LF (421 sent)"
        }
        (CloseReason::ShuttingDown, _) => "the server is shutting down (421 sent)",
        (CloseReason::ChunkTooLarge, _) => "a BDAT chunk too large to read (421 sent)",
    };
    format!("closed: {why}")
}

fn print_event(shared: &Shared, tag: u64, event: &ServerEvent, cut: Option<Cut>) {
    if shared.quiet {
        if let ServerEvent::Closed { reason } = event {
            say(shared, tag, "#", &closed_text(*reason, cut));
        }
        return;
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match event {
        ServerEvent::CommandReceived { line } => print_bytes_line(&mut out, Some(tag), "C:", line),
        ServerEvent::ReplySent { reply, explanation } => {
            print_reply(&mut out, Some(tag), reply);
            if !reply.is_success() {
                print_line(&mut out, Some(tag), "#", &explanation.why);
            }
        }
        ServerEvent::MessageReceived { message } => print_line(
            &mut out,
            Some(tag),
            "#",
            &format!(
                "message of {} octets from {} for {}",
                message.data.len(),
                message.envelope.reverse_path,
                message
                    .envelope
                    .forward_paths
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ServerEvent::Closed { reason } => {
            print_line(&mut out, Some(tag), "#", &closed_text(*reason, cut))
        }
        _ => {}
    }
}

/// The Maildir a forward path is delivered to.
fn mailbox_for(shared: &Shared, forward_path: &ForwardPath) -> String {
    match forward_path {
        ForwardPath::Postmaster { .. } => "postmaster".to_string(),
        ForwardPath::Mailbox(mailbox) => maildir_name(&shared.mailbox_names, &mailbox.local_part),
    }
}

/// The local parts of the `--mailbox` addresses, as the addresses mean them: `"Bob"@example.org`
/// is the mailbox Bob.
fn mailbox_local_parts(mailboxes: &[String]) -> Vec<String> {
    mailboxes
        .iter()
        .filter_map(|m| {
            Mailbox::parse(m)
                .map(|mailbox| mailbox.local_part)
                .ok()
                .or_else(|| m.rsplit_once('@').map(|(local, _)| local.to_string()))
        })
        .collect()
}

/// The Maildir of a local part, given the configured mailboxes' local parts. The policy
/// matches local parts without regard to case, so `Bob@` and `bob@` are one mailbox: a
/// configured one by its spelling, any other (without --mailbox, every local part is one) in
/// lower case. RFC 5321 4.5.1: "Postmaster" is case-insensitive, so <POSTMASTER@example.org>
/// and <postmaster@example.org> share one Maildir.
fn maildir_name(mailbox_names: &[String], local_part: &str) -> String {
    if local_part.eq_ignore_ascii_case("postmaster") {
        return "postmaster".to_string();
    }
    mailbox_names
        .iter()
        .find(|name| name.to_lowercase() == local_part.to_lowercase())
        .cloned()
        .unwrap_or_else(|| local_part.to_lowercase())
}

/// The Maildirs a message goes to, each once, with the first forward path that named it.
/// A client may name one mailbox several times (`<bob@example.org>`, `<Bob@example.org>`,
/// `<"bob"@example.org>`, a source route): the mailbox still gets one copy, as with Postfix's
/// duplicate elimination; RFC 5321 3.3 makes each RCPT name a recipient, not a copy.
fn deliveries<'a>(shared: &Shared, envelope: &'a Envelope) -> Vec<(String, &'a ForwardPath)> {
    let mut targets: Vec<(String, &ForwardPath)> = Vec::new();
    for forward_path in &envelope.forward_paths {
        let name = mailbox_for(shared, forward_path);
        if !targets.iter().any(|(seen, _)| *seen == name) {
            targets.push((name, forward_path));
        }
    }
    targets
}

/// Writes one copy per recipient, each with its own `Return-Path:` and `Received:` (RFC 5321
/// 4.4). On any failure the copies already written are removed and the client is told 451,
/// so that its retry does not deliver twice.
fn store_message(shared: &Shared, tag: u64, message: &ReceivedMessage) -> StorageOutcome {
    let envelope = &message.envelope;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // One id per message, never per session: a session may carry many messages in the same
    // second, and the id in `Received:` and in the 250 reply must tell them apart.
    let sequence = shared.messages_received.fetch_add(1, Ordering::Relaxed) + 1;
    let queue_id = format!("{:X}{sequence:06X}", now.as_secs());
    let peer_address: IpAddr = envelope
        .peer
        .ip
        .parse()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let authenticated = envelope.authenticated_as.is_some();
    let with = WithProtocol::for_session(
        envelope.protocol != Protocol::Smtp,
        false,
        authenticated,
        envelope.smtputf8,
    );
    let reverse_path = envelope
        .reverse_path
        .mailbox()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let utf8_header = crate::smtp::trace::has_utf8_header_fields(&message.data);
    let targets = deliveries(shared, envelope);
    // As in the simulation: `for` only when the transaction had one recipient, however many
    // mailboxes its recipients name (RFC 5321 7.2: no clause that shows one recipient another).
    let single_recipient = envelope.forward_paths.len() == 1;
    let mut written = Vec::new();
    for (mailbox, forward_path) in targets {
        let for_path = single_recipient.then(|| {
            forward_path
                .mailbox()
                .map(|m| m.to_string())
                .unwrap_or_else(|| "postmaster".to_string())
        });
        let received = received_header(&ReceivedFields {
            helo_name: &envelope.helo_name,
            peer_name: None,
            peer_address,
            by_host: &shared.config.hostname,
            with,
            id: Some(&queue_id),
            for_path: for_path.as_deref(),
            utf8_header,
            date_unix_s: now.as_secs() as i64,
            utc_offset_min: 0,
        });
        let mut content = Vec::with_capacity(message.data.len() + 512);
        content.extend_from_slice(return_path_header(&reverse_path).as_bytes());
        content.extend_from_slice(received.as_bytes());
        // Only this delivery's Return-Path stays.
        let message_start = content.len();
        push_without_return_path(&mut content, &message.data);
        // Stored as lines, each ending in CRLF, as the simulation's MDA stores them: a last
        // BDAT chunk without a final CRLF (RFC 3030 allows one) gets it, so the file does not
        // run into whatever a reader joins after it. Then the header section is read by
        // those lines.
        if let std::borrow::Cow::Owned(lines) = crate::smtp::dot::normalized(&content) {
            content = lines;
        }
        separate_body(&mut content, message_start);
        match shared.store.deliver(&mailbox, &content) {
            Ok(path) => written.push(path),
            Err(error) => {
                // The client is not answered 250, so it sends the message again: the copies
                // stored for the transaction's other recipients are taken back.
                for path in &written {
                    if let Err(problem) = shared.store.withdraw(path) {
                        say(
                            shared,
                            tag,
                            "#",
                            &format!("cannot take back {}: {problem}", path.display()),
                        );
                    }
                }
                say(
                    shared,
                    tag,
                    "#",
                    &format!("cannot store the message for {forward_path}: {error}"),
                );
                return StorageOutcome::Failed {
                    reason: format!("cannot store the message: {error}"),
                };
            }
        }
    }
    for path in &written {
        say(shared, tag, "#", &format!("stored {}", path.display()));
    }
    StorageOutcome::Stored {
        queue_id: Some(queue_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ServeOptions {
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            domains: vec!["example.org".into()],
            mailboxes: vec!["bob@example.org".into()],
            maildir: PathBuf::from("maildir"),
            max_size: 1000,
            max_recipients: 100,
            normalize_bare_line_endings: false,
            hostname: "mx.example.org".into(),
            max_sessions: 10,
            idle_timeout_s: 300,
            users: Vec::new(),
            quiet: true,
            pop3_listen: None,
            pop3_users: Vec::new(),
        }
    }

    #[test]
    fn options_a_server_could_not_work_with_are_refused() {
        assert_eq!(options_problem(&options()), None);
        let literal = ServeOptions {
            hostname: "[127.0.0.1]".into(),
            ..options()
        };
        assert_eq!(options_problem(&literal), None);
        // A domain is one domain however it is spelt: case, U-labels or A-labels, an address
        // literal's forms.
        for (domain, mailbox) in [
            ("Example.ORG", "bob@example.org"),
            ("bü.test", "bob@xn--b-eha.test"),
            ("xn--b-eha.test", "bob@BÜ.test"),
            ("[IPv6:::1]", "bob@[ipv6:0:0::1]"),
        ] {
            let spelt = ServeOptions {
                domains: vec![domain.into()],
                mailboxes: vec![mailbox.into()],
                ..options()
            };
            assert_eq!(options_problem(&spelt), None, "{domain} {mailbox}");
        }
        let refused = [
            ServeOptions {
                domains: vec![String::new()],
                ..options()
            },
            ServeOptions {
                domains: vec!["a b".into()],
                ..options()
            },
            ServeOptions {
                hostname: "bad host\r\n250 injected".into(),
                ..options()
            },
            ServeOptions {
                max_recipients: 0,
                ..options()
            },
            ServeOptions {
                max_sessions: 0,
                ..options()
            },
            ServeOptions {
                mailboxes: vec!["bob".into()],
                ..options()
            },
            ServeOptions {
                mailboxes: vec!["bob@other.test".into()],
                ..options()
            },
            ServeOptions {
                idle_timeout_s: 0,
                ..options()
            },
        ];
        let flags = [
            "--domain",
            "--domain",
            "--hostname",
            "--max-recipients",
            "--max-sessions",
            "--mailbox",
            "--mailbox",
            "--idle-timeout",
        ];
        for (options, flag) in refused.iter().zip(flags) {
            let problem = options_problem(options).expect("refused");
            assert!(problem.starts_with(flag), "{problem}");
        }
        // A domain refused is told what is wrong in it.
        assert_eq!(
            options_problem(&refused[1]).as_deref(),
            Some(
                "--domain \"a b\" is not a domain as addresses write it: label \"a b\" \
                 contains ' '; a host name has only letters, digits and '-' (RFC 1123 2.1)"
            )
        );
        // A mailbox is an address RCPT TO could name: not an empty local part, a second @,
        // or a route; a quoted local part and a UTF-8 one are addresses.
        for (mailbox, accepted) in [
            ("@example.org", false),
            ("a@b@example.org", false),
            ("@relay.test:bob@example.org", false),
            ("\"a b\"@example.org", true),
            ("jos\u{e9}@example.org", true),
            ("Bob.Smith@Example.ORG", true),
        ] {
            let options = ServeOptions {
                mailboxes: vec![mailbox.into()],
                ..options()
            };
            match options_problem(&options) {
                None => assert!(accepted, "{mailbox} accepted"),
                Some(problem) => assert!(
                    !accepted && problem.starts_with("--mailbox takes"),
                    "{mailbox}: {problem}"
                ),
            }
        }
    }

    #[test]
    fn pop3_options_no_one_could_use_are_refused() {
        let pop3 = |users: &[(&str, &str)]| ServeOptions {
            pop3_listen: Some("127.0.0.1:0".parse().unwrap()),
            pop3_users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            ..options()
        };
        // A configured mailbox in any case, and postmaster, which every server has.
        assert_eq!(
            options_problem(&pop3(&[("Bob", "pw"), ("postmaster", "pw")])),
            None
        );
        // Without --mailbox every local part is a mailbox.
        let open = ServeOptions {
            mailboxes: Vec::new(),
            ..pop3(&[("carol", "pw")])
        };
        assert_eq!(options_problem(&open), None);
        for (options, expected) in [
            (pop3(&[]), "--pop3 needs a --pop3-user"),
            (
                ServeOptions {
                    pop3_listen: None,
                    ..pop3(&[("bob", "pw")])
                },
                "--pop3-user is for the POP3 service",
            ),
            (
                pop3(&[("carol", "pw")]),
                "--pop3-user \"carol\" names no mailbox",
            ),
            (
                pop3(&[("a b", "pw")]),
                "--pop3-user takes a mailbox's local part",
            ),
            (
                pop3(&[("a@b", "pw")]),
                "--pop3-user takes a mailbox's local part",
            ),
            (
                pop3(&[("bob", "pw"), ("BOB", "other")]),
                "--pop3-user \"BOB\" is given twice",
            ),
        ] {
            let problem = options_problem(&options).expect("refused");
            assert!(problem.starts_with(expected), "{problem}");
        }
    }

    #[test]
    fn a_login_reads_the_maildir_its_mailbox_is_delivered_to() {
        let names = vec!["Bob".to_string()];
        assert_eq!(maildir_name(&names, "bob"), "Bob");
        assert_eq!(maildir_name(&names, "BOB"), "Bob");
        assert_eq!(maildir_name(&names, "Carol"), "carol");
        assert_eq!(maildir_name(&names, "PostMaster"), "postmaster");
    }
}
