//! The state of the world at any position of a trace (sessions, queues, mailboxes, clock),
//! derived from the trace alone, so that the UI can jump anywhere and step back without
//! running anything again. Stored views (checkpoints) keep a jump cheap: see
//! [`TraceViewer`].

use super::scenario::{MailboxSpec, Scenario};
use super::trace::{self, ConnId, EntryId, Event, Protocol, Trace, TraceEvent};
use crate::smtp::address::mailbox_key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Fewest events between two stored views.
pub const CHECKPOINT_EVERY: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub client: String,
    pub server: String,
    pub port: u16,
    pub protocol: Option<Protocol>,
    pub client_state: String,
    pub server_state: String,
    pub open: bool,
    /// The end that has closed the connection while the other has not yet (it may still be
    /// waiting for a reply, such as the 221 to its QUIT).
    #[serde(default)]
    pub closed_by: Option<String>,
    /// The link broke (`ConnectionDropped`): the server's end knew at once, and the client's
    /// finds out a moment later, when its own end closes.
    #[serde(default)]
    pub broken: bool,
    /// The server hung (`ServerStalled`): it answers nothing more, and the connection is over
    /// when the client closes its end.
    #[serde(default)]
    pub hung: bool,
}

impl ConnectionView {
    /// One line: `#2 mail.sender.test → mx.receiver.test:25: client ExpectDataReply, server
    /// Closed`, then how far it is closed when one end is done and the other is not yet.
    pub fn line(&self, conn: ConnId) -> String {
        // A server's state is known from its first change on.
        let server = if self.server_state.is_empty() {
            String::new()
        } else {
            format!(", server {}", self.server_state)
        };
        let closed = match &self.closed_by {
            _ if self.broken => "; the link broke, and the client's end has not closed yet".into(),
            _ if self.hung => "; the server hangs, answering nothing".into(),
            Some(by) => format!("; closed by {by}, the other end not yet"),
            None => String::new(),
        };
        format!(
            "#{conn} {} → {}:{}: client {}{server}{closed}",
            self.client, self.server, self.port, self.client_state
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntryView {
    pub message: String,
    pub domain: String,
    pub recipients: Vec<String>,
    pub attempts: u32,
    pub next_attempt_ms: Option<u64>,
    /// The next attempt is the last: the entry will have been queued for the give-up time
    /// by then (see `RetryScheduled::last_attempt`).
    #[serde(default)]
    pub next_attempt_is_last: bool,
    /// The reply of the last attempt's last temporary refusal, while the entry waits for the
    /// next: a server's, or the sending host's own finding (a connection refused or not
    /// answered, no address found).
    #[serde(default)]
    pub last_refusal: Option<String>,
    /// The host gave up on the entry (it leaves the queue, and the sender gets a bounce).
    #[serde(default)]
    pub gave_up: bool,
}

impl QueueEntryView {
    /// One line: `mail.sender.test: q1 m1 for bob@receiver.test (attempt 1 failed: 451 ...;
    /// next attempt at 0+00:30:00.340)`: whom it is for, and whether it is being tried or
    /// waits, and until when (after `run_end_ms`, the run ends first).
    pub fn line(&self, host: &str, entry: EntryId, run_end_ms: u64) -> String {
        // Between the last recipient's answer and the entry leaving the queue, nobody is
        // left to deliver to.
        let recipients = if self.recipients.is_empty() {
            "no recipient left".to_string()
        } else {
            self.recipients.join(", ")
        };
        let attempt = match (self.attempts, self.next_attempt_ms) {
            (attempts, _) if self.gave_up => format!("given up after attempt {attempts}"),
            (0, _) => "not tried yet".to_string(),
            // Every recipient has its answer: the entry is about to leave the queue.
            (attempts, None) if self.recipients.is_empty() => format!("attempt {attempts} over"),
            (attempts, None) => format!("attempt {attempts} under way"),
            (attempts, Some(at_ms)) => {
                let refusal = self
                    .last_refusal
                    .as_ref()
                    .map_or(String::new(), |reply| format!(": {reply}"));
                let after_the_run = if at_ms > run_end_ms {
                    ", after this run ends"
                } else {
                    ""
                };
                let next = if self.next_attempt_is_last {
                    "last"
                } else {
                    "next"
                };
                format!(
                    "attempt {attempts} failed{refusal}; {next} attempt at {}{after_the_run}",
                    trace::format_time(at_ms)
                )
            }
        };
        format!(
            "{host}: q{entry} {} for {recipients} ({attempt})",
            self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxItem {
    pub uid: String,
    pub message: String,
    pub octets: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldView {
    /// How many events have been applied (the cursor).
    pub position: usize,
    pub time_ms: u64,
    pub connections: BTreeMap<ConnId, ConnectionView>,
    pub queues: BTreeMap<String, BTreeMap<EntryId, QueueEntryView>>,
    pub mailboxes: BTreeMap<String, Vec<MailboxItem>>,
}

impl WorldView {
    /// The state after one more event.
    pub fn apply(&mut self, event: &TraceEvent) {
        self.position += 1;
        self.time_ms = event.time_ms;
        match &event.event {
            Event::ConnectionAttempted(boxed) => {
                let trace::ConnectionAttempted {
                    conn,
                    client,
                    server,
                    port,
                    protocol,
                    ..
                } = &**boxed;
                self.connections.insert(
                    *conn,
                    ConnectionView {
                        client: client.to_string(),
                        server: server.to_string(),
                        port: *port,
                        protocol: Some(*protocol),
                        client_state: "Connecting".into(),
                        server_state: String::new(),
                        open: false,
                        closed_by: None,
                        broken: false,
                        hung: false,
                    },
                );
            }
            Event::ConnectionOpened { conn } => {
                if let Some(c) = self.connections.get_mut(conn) {
                    c.open = true;
                    // A scripted client (a raw session) has no state machine to say more.
                    if c.client_state == "Connecting" {
                        c.client_state = "Connected".into();
                    }
                }
            }
            // The server's end is up half a round trip before the client's: its greeting can
            // be on the wire before the client sees the connection open.
            Event::Transmitted { conn, .. } => {
                if let Some(c) = self.connections.get_mut(conn) {
                    c.open = true;
                }
            }
            // A connection that is over leaves the view, so that a long run's views (and
            // their checkpoints) hold only what is live. Closed by one end, it is over when
            // the other closes too (or it breaks).
            Event::ConnectionClosed { conn, by, .. } => match self.connections.get_mut(conn) {
                Some(c) if c.closed_by.is_none() && !c.broken && !c.hung => {
                    c.closed_by = Some(by.to_string())
                }
                _ => {
                    self.connections.remove(conn);
                }
            },
            // A broken link is over for the server at once; the client's end closes (and
            // says so) when it finds out, unless it had closed already.
            Event::ConnectionDropped { conn, .. } => match self.connections.get_mut(conn) {
                Some(c) if c.closed_by.as_ref() != Some(&c.client) => c.broken = true,
                _ => {
                    self.connections.remove(conn);
                }
            },
            Event::ConnectionRefused { conn, .. } | Event::ConnectionTimedOut { conn } => {
                self.connections.remove(conn);
            }
            // A client that closed before the server hung has nothing more to wait for.
            Event::ServerStalled { conn, .. } => match self.connections.get_mut(conn) {
                Some(c) if c.closed_by.is_none() => c.hung = true,
                _ => {
                    self.connections.remove(conn);
                }
            },
            Event::ClientState { conn, to, .. } => {
                if let Some(c) = self.connections.get_mut(conn) {
                    c.client_state = to.to_string();
                }
            }
            Event::ServerState { conn, to, .. } => {
                if let Some(c) = self.connections.get_mut(conn) {
                    c.server_state = to.to_string();
                }
            }
            Event::Queued(boxed) => {
                let trace::Queued {
                    host,
                    entry,
                    message,
                    domain,
                    recipients,
                } = &**boxed;
                self.queues.entry(host.to_string()).or_default().insert(
                    *entry,
                    QueueEntryView {
                        message: message.clone(),
                        domain: domain.clone(),
                        recipients: recipients.clone(),
                        attempts: 0,
                        next_attempt_ms: Some(event.time_ms),
                        next_attempt_is_last: false,
                        last_refusal: None,
                        gave_up: false,
                    },
                );
            }
            Event::AttemptStarted {
                host,
                entry,
                attempt,
            } => {
                if let Some(e) = self.entry(host, *entry) {
                    e.attempts = *attempt;
                    e.next_attempt_ms = None;
                    e.last_refusal = None;
                }
            }
            Event::RetryScheduled(boxed) => {
                let trace::RetryScheduled {
                    host,
                    entry,
                    at_ms,
                    recipients,
                    last_attempt,
                    attempt_failure,
                } = &**boxed;
                if let Some(e) = self.entry(host, *entry) {
                    e.next_attempt_ms = Some(*at_ms);
                    e.next_attempt_is_last = *last_attempt;
                    e.recipients = recipients.clone();
                    if let Some(failure) = attempt_failure {
                        e.last_refusal = Some(failure.reply_with_origin());
                    }
                }
            }
            // A recipient with a final answer leaves the entry; those that failed temporarily
            // wait for the next attempt, after the reply that refused them.
            Event::RecipientResult(boxed) => {
                let result = &**boxed;
                if let Some(e) = self.entry(&result.host, result.entry) {
                    if result.result == trace::TEMPORARY_FAILURE {
                        e.last_refusal = Some(result.reply_with_origin());
                    } else {
                        e.recipients.retain(|r| *r != result.recipient);
                    }
                }
            }
            Event::GaveUp(boxed) => {
                if let Some(e) = self.entry(&boxed.host, boxed.entry) {
                    e.gave_up = true;
                    e.next_attempt_ms = None;
                }
            }
            Event::Dequeued { host, entry } => {
                if let Some(queue) = self.queues.get_mut(host.as_ref()) {
                    queue.remove(entry);
                }
            }
            Event::Delivered(boxed) => {
                let trace::Delivered {
                    mailbox,
                    message,
                    uid,
                    octets,
                    ..
                } = &**boxed;
                self.mailboxes
                    .entry(mailbox.clone())
                    .or_default()
                    .push(MailboxItem {
                        uid: uid.clone(),
                        message: message.clone(),
                        octets: *octets,
                    })
            }
            Event::MailboxUpdated(boxed) => {
                let trace::MailboxUpdated {
                    mailbox, deleted, ..
                } = &**boxed;
                if let Some(items) = self
                    .mailboxes
                    .iter_mut()
                    .find(|(name, _)| mailbox_key(name) == mailbox_key(mailbox))
                    .map(|(_, items)| items)
                {
                    items.retain(|item| !deleted.contains(&item.uid));
                }
            }
            _ => {}
        }
    }

    fn entry(&mut self, host: &str, entry: EntryId) -> Option<&mut QueueEntryView> {
        self.queues.get_mut(host)?.get_mut(&entry)
    }

    /// How many things the view holds (connections, queue entries, messages in mailboxes):
    /// what copying it costs, roughly.
    pub fn size(&self) -> usize {
        let entries: usize = self.queues.values().map(BTreeMap::len).sum();
        let messages: usize = self.mailboxes.values().map(Vec::len).sum();
        self.connections.len() + entries + messages
    }
}

/// A mailbox as the details show it at a position of a run: its messages, and, when it has
/// a quota, how much of it is in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxSummary {
    pub address: String,
    pub messages: usize,
    /// The octets the scenario says were in use at the start, plus those of the messages
    /// delivered since and not deleted: what the MDA compares with the quota.
    pub used_octets: u64,
    pub quota_octets: Option<u64>,
    /// The octets in use at the start: mail from before the run, which it does not show.
    pub earlier_octets: u64,
}

impl MailboxSummary {
    /// At its quota: RCPT TO for it gets 452 4.2.2 (RFC 3463 3.3).
    pub fn is_full(&self) -> bool {
        self.quota_octets
            .is_some_and(|quota| self.used_octets >= quota)
    }

    /// One line: `bob@receiver.test: 1 message`, then what mail from before the run takes
    /// (a mailbox can be full though it holds no message of the run), and, for a mailbox
    /// with a quota, how much is in use and whether that is all of it.
    pub fn line(&self) -> String {
        let messages = match self.messages {
            0 => "no messages from this run".to_string(),
            1 => "1 message".to_string(),
            count => format!("{count} messages"),
        };
        let earlier = match self.earlier_octets {
            0 => String::new(),
            // Only counted: a POP3 reader's STAT and LIST show the run's messages alone, and
            // would otherwise call a full mailbox empty without a word.
            octets => format!(
                " and {octets} octets of earlier mail (counted, not simulated: POP3 lists only \
                 this run's messages)"
            ),
        };
        match self.quota_octets {
            None => format!("{}: {messages}{earlier}", self.address),
            Some(quota) => format!(
                "{}: {messages}{earlier}; {} of {quota} octets in use{}",
                self.address,
                self.used_octets,
                if self.is_full() { " (full)" } else { "" }
            ),
        }
    }
}

impl WorldView {
    /// The mailboxes worth showing at this position: those holding messages, and those with
    /// a quota (full ones included, though empty of messages: the scenario fills them with
    /// `used_octets`), in the scenario's order; then any other mailbox that holds messages
    /// (a host's postmaster, which every host has without being configured).
    pub fn mailbox_summaries(&self, scenario: &Scenario) -> Vec<MailboxSummary> {
        // By key, once: a scenario may have thousands of mailboxes, and this runs at each step.
        let by_key: BTreeMap<String, &[MailboxItem]> = self
            .mailboxes
            .iter()
            .map(|(name, items)| (mailbox_key(name), items.as_slice()))
            .collect();
        let held = |address: &str| {
            by_key
                .get(&mailbox_key(address))
                .copied()
                .unwrap_or_default()
        };
        let configured: Vec<&MailboxSpec> = scenario
            .hosts
            .iter()
            .flat_map(|host| &host.mailboxes)
            .collect();
        let configured_keys: std::collections::BTreeSet<String> = configured
            .iter()
            .map(|spec| mailbox_key(&spec.address))
            .collect();
        let mut summaries: Vec<MailboxSummary> = configured
            .iter()
            .filter_map(|spec| {
                let items = held(&spec.address);
                if items.is_empty() && spec.quota_octets.is_none() {
                    return None;
                }
                let delivered: u64 = items.iter().map(|item| item.octets as u64).sum();
                Some(MailboxSummary {
                    address: spec.address.clone(),
                    messages: items.len(),
                    used_octets: spec.used_octets.saturating_add(delivered),
                    quota_octets: spec.quota_octets,
                    earlier_octets: spec.used_octets,
                })
            })
            .collect();
        for (address, items) in &self.mailboxes {
            let known = configured_keys.contains(&mailbox_key(address));
            if !known && !items.is_empty() {
                summaries.push(MailboxSummary {
                    address: address.clone(),
                    messages: items.len(),
                    used_octets: items.iter().map(|item| item.octets as u64).sum(),
                    quota_octets: None,
                    earlier_octets: 0,
                });
            }
        }
        summaries
    }
}

/// Cheap views of a trace at any cursor.
#[derive(Clone, Debug)]
pub struct TraceViewer {
    trace: Trace,
    /// Stored views, each with the number of events applied to it, in order; the first is
    /// the empty world, before any event.
    checkpoints: Vec<WorldView>,
}

/// The stored views of a trace made an event at a time, in order (see [`TraceViewer::new`]), so
/// that a page can draw between slices of a long run.
pub struct StoringViews {
    checkpoints: Vec<WorldView>,
    view: WorldView,
    next_checkpoint: usize,
}

impl Default for StoringViews {
    fn default() -> StoringViews {
        StoringViews {
            checkpoints: vec![WorldView::default()],
            view: WorldView::default(),
            next_checkpoint: CHECKPOINT_EVERY,
        }
    }
}

impl StoringViews {
    /// Takes the trace's next event.
    pub fn store(&mut self, event: &TraceEvent) {
        let view = &mut self.view;
        view.apply(event);
        if view.position == self.next_checkpoint {
            self.checkpoints.push(view.clone());
            self.next_checkpoint = view.position + view.size().max(CHECKPOINT_EVERY);
        }
    }

    /// The viewer of `trace`, every one of whose events was stored.
    pub fn finish(self, trace: Trace) -> TraceViewer {
        TraceViewer {
            trace,
            checkpoints: self.checkpoints,
        }
    }
}

impl TraceViewer {
    /// Stores a view every [`CHECKPOINT_EVERY`] events, or, once the world holds more than
    /// that many things, every as many events as it holds (see [`WorldView::size`]): a
    /// jump copies a stored view anyway, which costs about as much as applying that many
    /// events, and stored views of a world that keeps growing (a run of thousands of
    /// messages, whose mailboxes fill) then take memory in proportion to the trace, not to
    /// its square.
    pub fn new(trace: Trace) -> TraceViewer {
        let mut storing = StoringViews::default();
        for event in &trace.events {
            storing.store(event);
        }
        storing.finish(trace)
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn len(&self) -> usize {
        self.trace.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trace.events.is_empty()
    }

    /// How many things the stored views hold together (see [`WorldView::size`]): at most
    /// the number of events plus the size of the last stored view.
    pub fn stored_size(&self) -> usize {
        self.checkpoints.iter().map(WorldView::size).sum()
    }

    /// The world after the first `cursor` events (clamped to the trace).
    pub fn view_at(&self, cursor: usize) -> WorldView {
        let cursor = cursor.min(self.trace.events.len());
        // The last stored view at or before the cursor (the first is at 0).
        let stored = self
            .checkpoints
            .partition_point(|view| view.position <= cursor)
            .saturating_sub(1);
        let mut view = self.checkpoints[stored].clone();
        for event in &self.trace.events[view.position..cursor] {
            view.apply(event);
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{library, run};

    /// The summaries of built-in scenario `name`'s mailboxes at the end of its run, and just
    /// after its first delivery.
    fn summaries(name: &str) -> (Vec<MailboxSummary>, Option<Vec<MailboxSummary>>) {
        let scenario = library::find(name).expect("a built-in scenario");
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let first_delivery = viewer
            .trace()
            .events
            .iter()
            .position(|event| matches!(event.event, Event::Delivered(_)))
            .map(|index| viewer.view_at(index + 1).mailbox_summaries(&scenario));
        let end = viewer.view_at(viewer.len()).mailbox_summaries(&scenario);
        (end, first_delivery)
    }

    fn find<'a>(summaries: &'a [MailboxSummary], address: &str) -> Option<&'a MailboxSummary> {
        summaries.iter().find(|summary| summary.address == address)
    }

    /// The line of `name`'s first queue entry of the first host that has one, after the first
    /// event `at` picks (and that event), with the time of the run's last event.
    fn entry_line_after(name: &str, at: impl Fn(&Event) -> bool) -> String {
        let scenario = library::find(name).expect("a built-in scenario");
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let index = viewer
            .trace()
            .events
            .iter()
            .position(|event| at(&event.event))
            .expect("the event");
        let run_end_ms = viewer.trace().events.last().map_or(0, |e| e.time_ms);
        let view = viewer.view_at(index + 1);
        let (host, entries) = view
            .queues
            .iter()
            .find(|(_, entries)| !entries.is_empty())
            .expect("an entry");
        let (entry, e) = entries.iter().next().expect("an entry");
        e.line(host, *entry, run_end_ms)
    }

    #[test]
    fn a_queue_entry_says_whether_it_is_tried_or_waits_and_until_when() {
        let line = entry_line_after("greylisting", |e| matches!(e, Event::AttemptStarted { .. }));
        assert!(
            line.ends_with("for bob@receiver.test (attempt 1 under way)"),
            "{line}"
        );
        let scenario = library::find("greylisting").expect("built in");
        let retry_at = run(&scenario, scenario.seed)
            .trace
            .events
            .iter()
            .find_map(|event| match &event.event {
                Event::RetryScheduled(retry) => Some(retry.at_ms),
                _ => None,
            })
            .expect("a retry");
        let line = entry_line_after("greylisting", |e| matches!(e, Event::RetryScheduled(_)));
        assert!(
            line.contains("(attempt 1 failed: 451 4.7.1 ")
                && line.ends_with(&format!(
                    "; next attempt at {})",
                    trace::format_time(retry_at)
                )),
            "{line}"
        );
        // No server answered: the last address's failure, as the sending host found it.
        let line = entry_line_after("all-mx-down-then-back", |e| {
            matches!(e, Event::RetryScheduled(_))
        });
        assert!(
            line.contains(
                "(attempt 1 failed: 451 4.4.1 mx2.receiver.test [192.0.2.22]: no answer \
                 (connection timed out) (this host's own finding); next attempt at "
            ),
            "{line}"
        );
        let line = entry_line_after("dns-servfail-then-success", |e| {
            matches!(e, Event::RetryScheduled(_))
        });
        assert!(
            line.contains("(attempt 1 failed: 451 4.4.3 receiver.test: Temporary DNS failure "),
            "{line}"
        );
        // A failure the sending host found itself is said to be its own finding.
        let line = entry_line_after("connection-lost-in-data", |e| {
            matches!(e, Event::RetryScheduled(_))
        });
        assert!(
            line.contains("(this host's own finding); next attempt at "),
            "{line}"
        );
        let line = entry_line_after("server-down-for-good", |e| matches!(e, Event::GaveUp(_)));
        assert!(line.contains("(given up after attempt "), "{line}");
        // The retry that reaches the give-up time is the last; the ones before are not.
        let line = entry_line_after(
            "server-down-for-good",
            |e| matches!(e, Event::RetryScheduled(retry) if retry.last_attempt),
        );
        assert!(
            line.ends_with("; last attempt at 5+00:00:00.220)"),
            "{line}"
        );
        let line = entry_line_after("server-down-for-good", |e| {
            matches!(e, Event::RetryScheduled(_))
        });
        assert!(line.contains("; next attempt at "), "{line}");
    }

    #[test]
    fn a_connection_one_end_closed_stays_until_the_other_closes() {
        let scenario = library::find("basic-delivery").expect("built in");
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let closes: Vec<(usize, ConnId, String)> = viewer
            .trace()
            .events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| match &event.event {
                Event::ConnectionClosed { conn, by, .. } => Some((index, *conn, by.to_string())),
                _ => None,
            })
            .collect();
        let (first, conn, by) = closes.first().expect("a close").clone();
        let (second, ..) = closes
            .iter()
            .find(|(index, c, _)| *c == conn && *index > first)
            .expect("the other end's close")
            .clone();
        let half_closed = viewer.view_at(first + 1);
        let view = half_closed.connections.get(&conn).expect("still listed");
        assert_eq!(view.closed_by.as_deref(), Some(by.as_str()));
        assert!(!viewer.view_at(second + 1).connections.contains_key(&conn));
    }

    #[test]
    fn a_broken_link_stays_listed_until_the_client_closes_its_end() {
        let scenario = library::find("connection-lost-in-data").expect("built in");
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let events = &viewer.trace().events;
        let (dropped, conn) = events
            .iter()
            .enumerate()
            .find_map(|(index, event)| match &event.event {
                Event::ConnectionDropped { conn, .. } => Some((index, *conn)),
                _ => None,
            })
            .expect("a dropped connection");
        let client_closed = events
            .iter()
            .enumerate()
            .skip(dropped)
            .find_map(|(index, event)| match &event.event {
                Event::ConnectionClosed { conn: c, .. } if *c == conn => Some(index),
                _ => None,
            })
            .expect("the client's end closes");
        assert!(events[client_closed].time_ms > events[dropped].time_ms);
        let view = viewer.view_at(dropped + 1);
        let broken = view.connections.get(&conn).expect("still listed");
        let line = broken.line(conn);
        assert!(
            line.starts_with(&format!(
                "#{conn} mail.sender.test → mx.receiver.test:25: client ExpectDataReply, "
            )) && line.ends_with("; the link broke, and the client's end has not closed yet"),
            "{line}"
        );
        assert!(!viewer
            .view_at(client_closed + 1)
            .connections
            .contains_key(&conn));
    }

    #[test]
    fn a_hung_server_stays_listed_until_its_client_gives_up() {
        let mut scenario = library::find("basic-delivery").expect("built in");
        scenario.hosts[1].faults = vec![crate::sim::scenario::HostFault {
            kind: crate::sim::scenario::FaultKind::Stall {
                at: crate::sim::scenario::StallPoint::Mail,
            },
            from_s: 0,
            until_s: Some(600),
        }];
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let events = &viewer.trace().events;
        let (stalled, conn) = events
            .iter()
            .enumerate()
            .find_map(|(index, event)| match &event.event {
                Event::ServerStalled { conn, .. } => Some((index, *conn)),
                _ => None,
            })
            .expect("a hung server");
        let client_closed = events
            .iter()
            .enumerate()
            .skip(stalled)
            .find_map(|(index, event)| match &event.event {
                Event::ConnectionClosed { conn: c, .. } if *c == conn => Some(index),
                _ => None,
            })
            .expect("the client's end closes");
        let line = viewer.view_at(stalled + 1).connections[&conn].line(conn);
        assert!(
            line.ends_with("; the server hangs, answering nothing"),
            "{line}"
        );
        assert!(!viewer
            .view_at(client_closed + 1)
            .connections
            .contains_key(&conn));
    }

    /// Every connection of every built-in is over by the end of its run, however it ended:
    /// none is left listed.
    #[test]
    fn no_connection_is_left_listed_at_the_end_of_a_run() {
        for scenario in library::builtin() {
            let scenario = scenario.expect("a valid built-in");
            let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
            let end = viewer.view_at(viewer.trace().events.len());
            assert!(
                end.connections.is_empty(),
                "{}: {:?}",
                scenario.name,
                end.connections
            );
        }
    }

    #[test]
    fn a_retry_after_the_end_of_the_run_is_said_to_be() {
        let scenario = library::find("mailbox-full").expect("built in");
        let viewer = TraceViewer::new(run(&scenario, scenario.seed).trace);
        let end = viewer.view_at(viewer.len());
        let run_end_ms = viewer.trace().events.last().map_or(0, |e| e.time_ms);
        let lines: Vec<String> = end
            .queues
            .iter()
            .flat_map(|(host, entries)| entries.iter().map(|(id, e)| e.line(host, *id, run_end_ms)))
            .collect();
        assert!(
            lines
                .iter()
                .any(|line| line.contains("452 4.2.2") && line.ends_with(", after this run ends)")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_full_mailbox_is_shown_full_though_it_holds_no_message() {
        let (end, _) = summaries("mailbox-full");
        let bob = find(&end, "bob@receiver.test").expect("bob's mailbox, which has a quota");
        assert_eq!(bob.messages, 0);
        assert_eq!((bob.used_octets, bob.quota_octets), (2000, Some(2000)));
        assert!(bob.is_full());
        assert_eq!(
            bob.line(),
            "bob@receiver.test: no messages from this run and 2000 octets of earlier mail \
             (counted, not simulated: POP3 lists only this run's messages); 2000 of 2000 octets in use (full)"
        );
        // A mailbox without a quota or a message is not worth a line.
        assert_eq!(find(&end, "alice@sender.test"), None, "{end:?}");
    }

    #[test]
    fn a_mailbox_counts_what_was_in_use_and_what_was_delivered() {
        // The MDA refused the message: bob's use stays as it was; the only delivery is the
        // bounce to alice (who fetches and deletes it later).
        let (_, bounced) = summaries("over-quota-at-delivery");
        let bounced = bounced.expect("the bounce's delivery");
        let bob = find(&bounced, "bob@receiver.test").expect("bob's mailbox");
        assert_eq!((bob.messages, bob.used_octets), (0, 1000), "{bob:?}");
        assert!(!bob.is_full());
        let alice = find(&bounced, "alice@sender.test").expect("the bounce");
        assert_eq!((alice.messages, alice.quota_octets), (1, None), "{alice:?}");
        assert_eq!(alice.line(), "alice@sender.test: 1 message");
        assert_eq!(
            bob.line(),
            "bob@receiver.test: no messages from this run and 1000 octets of earlier mail \
             (counted, not simulated: POP3 lists only this run's messages); 1000 of 4000 octets in use"
        );
        assert!(alice.used_octets > 0);
        // Delivered, then fetched and deleted over POP3: shown while it is there.
        let (end, delivered) = summaries("basic-delivery");
        let delivered = delivered.expect("a delivery");
        let bob = find(&delivered, "bob@receiver.test").expect("bob's mailbox");
        assert_eq!(bob.messages, 1);
        let stored = run(&library::find("basic-delivery").unwrap(), 1)
            .trace
            .events
            .iter()
            .find_map(|event| match &event.event {
                Event::Delivered(delivered) => Some(delivered.octets as u64),
                _ => None,
            });
        assert_eq!(Some(bob.used_octets), stored);
        assert_eq!(find(&end, "bob@receiver.test"), None, "{end:?}");
    }
}
