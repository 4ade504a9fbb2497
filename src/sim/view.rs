//! The state of the world at any position of a trace (sessions, queues, mailboxes, clock),
//! derived from the trace alone, so that the UI can jump anywhere and step back without
//! running anything again. Checkpoints every [`CHECKPOINT_EVERY`] events keep a jump cheap.

use super::trace::{self, ConnId, EntryId, Event, Protocol, Trace, TraceEvent};
use crate::smtp::address::mailbox_key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Events between two stored views.
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
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntryView {
    pub message: String,
    pub domain: String,
    pub recipients: Vec<String>,
    pub attempts: u32,
    pub next_attempt_ms: Option<u64>,
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
            // their checkpoints) hold only what is live.
            Event::ConnectionRefused { conn, .. }
            | Event::ConnectionTimedOut { conn }
            | Event::ConnectionDropped { conn, .. }
            | Event::ConnectionClosed { conn, .. } => {
                self.connections.remove(conn);
            }
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
                }
            }
            Event::RetryScheduled(boxed) => {
                let trace::RetryScheduled {
                    host,
                    entry,
                    at_ms,
                    recipients,
                } = &**boxed;
                if let Some(e) = self.entry(host, *entry) {
                    e.next_attempt_ms = Some(*at_ms);
                    e.recipients = recipients.clone();
                }
            }
            // A recipient with a final answer leaves the entry; only those that failed
            // temporarily wait for the next attempt.
            Event::RecipientResult(boxed) if boxed.result != trace::TEMPORARY_FAILURE => {
                let trace::RecipientResult {
                    host,
                    entry,
                    recipient,
                    ..
                } = &**boxed;
                if let Some(e) = self.entry(host, *entry) {
                    e.recipients.retain(|r| r != recipient);
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
}

/// Cheap views of a trace at any cursor.
#[derive(Clone, Debug)]
pub struct TraceViewer {
    trace: Trace,
    /// `checkpoints[k]` is the view after `k * CHECKPOINT_EVERY` events.
    checkpoints: Vec<WorldView>,
}

impl TraceViewer {
    pub fn new(trace: Trace) -> TraceViewer {
        let mut checkpoints = vec![WorldView::default()];
        let mut view = WorldView::default();
        for (index, event) in trace.events.iter().enumerate() {
            view.apply(event);
            if (index + 1) % CHECKPOINT_EVERY == 0 {
                checkpoints.push(view.clone());
            }
        }
        TraceViewer { trace, checkpoints }
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

    /// The world after the first `cursor` events (clamped to the trace).
    pub fn view_at(&self, cursor: usize) -> WorldView {
        let cursor = cursor.min(self.trace.events.len());
        let checkpoint = cursor / CHECKPOINT_EVERY;
        let mut view = self.checkpoints[checkpoint].clone();
        for event in &self.trace.events[checkpoint * CHECKPOINT_EVERY..cursor] {
            view.apply(event);
        }
        view
    }
}
