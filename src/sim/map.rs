//! The map of a run, for the topology diagram: every party that takes part (user agents,
//! scripted clients, servers), placed left to right in the order mail reaches them, and every
//! link between them (who connects to whom, with which protocol and port). The map is read
//! from the trace, so it shows this scenario's world, not a typical one; the UI draws it and
//! marks what the current step touches.

use super::trace::{ConnId, Event, Protocol, Trace, NO_DNS_LOOKUP, USER_AGENT_PREFIX};
use crate::smtp::reply::EnhancedStatus;
use std::collections::{BTreeMap, BTreeSet};

/// Which side of the mail a party is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// A user agent or scripted client that sends mail (SMTP), and may read a mailbox on the
    /// servers beside it that it sends to.
    Sender,
    /// A server: MSA, MTA, MDA, POP3 server.
    Server,
    /// A user agent or scripted client that reads a mailbox (POP3) and is drawn right of
    /// every server.
    Reader,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapNode {
    /// The name the trace gives it (`ua:alice@a.test`, `mallory`, `mx.b.test`).
    pub name: String,
    pub side: Side,
    /// What it does in this run, in the RFC 5598 terms (`MSA`, `MTA`, `MDA`, `POP3`, `UA`).
    pub roles: Vec<&'static str>,
    /// Left to right, in the order mail reaches it.
    pub column: usize,
    /// Top to bottom within its column, in the order it first appears.
    pub row: usize,
}

impl MapNode {
    /// The name to show: a user agent by its mailbox, without the `ua:` prefix.
    pub fn label(&self) -> &str {
        self.name
            .strip_prefix(USER_AGENT_PREFIX)
            .unwrap_or(&self.name)
    }
}

/// Connections from one party to another with one protocol and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapLink {
    /// The connecting side (the client).
    pub from: usize,
    /// The side connected to (the server).
    pub to: usize,
    /// `SMTP :25`, `SMTP :587`, `POP3 :110`.
    pub label: String,
}

/// What the current step touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// A connection: the link it belongs to.
    Link(usize),
    /// Something a party does on its own: queueing, delivery by its MDA, a bounce.
    Node(usize),
    /// A party asking DNS.
    Dns(usize),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunMap {
    pub nodes: Vec<MapNode>,
    pub links: Vec<MapLink>,
    /// The parties that asked DNS for MX records, in the order they first did.
    pub resolvers: Vec<usize>,
    conn_links: BTreeMap<ConnId, usize>,
}

/// The parties drawn so far, by name and side: their places in [`RunMap::nodes`].
type NodeIndex = BTreeMap<String, BTreeMap<Side, usize>>;

/// The role of a server no connection ever reached (down, or an address where no host
/// lives), in place of what it would have done.
pub const NOT_REACHED: &str = "not reached";

/// The first look at a run's events, for its map: who is a server, and who sends to and
/// reads from whom. Taken an event at a time, so that a long run's map is made in slices.
#[derive(Debug, Default)]
pub struct MapSurvey {
    /// Every name something connects to, or that acts on its own (queues, delivers).
    servers: BTreeSet<String>,
    /// The servers each party sends mail to (SMTP), and reads a mailbox on (POP3).
    sends_to: BTreeMap<String, BTreeSet<String>>,
    reads_from: BTreeMap<String, BTreeSet<String>>,
}

/// Puts `name` in `names`, writing it only when it is new: a long run names the same few
/// hosts a million times.
fn insert_name(names: &mut BTreeSet<String>, name: &str) {
    if !names.contains(name) {
        names.insert(name.to_string());
    }
}

impl MapSurvey {
    /// Takes `event` into account.
    pub fn survey(&mut self, event: &Event) {
        if let Event::ConnectionAttempted(attempt) = event {
            insert_name(&mut self.servers, &attempt.server);
            // Kept for every party; only a client's are asked for (see `is_client`).
            let servers_of = match attempt.protocol {
                Protocol::Smtp => &mut self.sends_to,
                Protocol::Pop3 => &mut self.reads_from,
            };
            match servers_of.get_mut(&*attempt.client) {
                Some(servers) => insert_name(servers, &attempt.server),
                None => {
                    servers_of.insert(
                        attempt.client.to_string(),
                        BTreeSet::from([attempt.server.to_string()]),
                    );
                }
            }
        } else if let Some(host) = event_host(event) {
            insert_name(&mut self.servers, host);
        }
    }

    /// Whether `name` is a user agent or a scripted client, rather than a server.
    fn is_client(&self, name: &str) -> bool {
        !self.servers.contains(name) || name.starts_with(USER_AGENT_PREFIX)
    }

    /// A client that sends mail and reads a mailbox, only on servers it sends to (a sender
    /// fetching a bounce from her own server), is one party, drawn once where it sends
    /// from: as a reader right of every server, her POP3 link would run back under the
    /// whole diagram, and under herself, the diagram would need a second row. (Unless the
    /// server it reads on stands further right: see [`MapDrawing::finish`].)
    fn reads_where_it_sends(&self, client: &str) -> bool {
        self.reads_from
            .get(client)
            .zip(self.sends_to.get(client))
            .is_some_and(|(read, sent)| read.is_subset(sent))
    }

    /// The survey done: the drawing, which takes every event again.
    pub fn drawing(self) -> MapDrawing {
        MapDrawing {
            survey: self,
            map: RunMap::default(),
            index: NodeIndex::new(),
            link_index: BTreeMap::new(),
            only_read_on: BTreeSet::new(),
            role_when_open: BTreeMap::new(),
            connected_to: BTreeSet::new(),
        }
    }
}

/// The second look at a run's events, for its map, after the [`MapSurvey`]: the parties
/// and links, an event at a time, placed once all are known ([`MapDrawing::finish`]).
#[derive(Debug)]
pub struct MapDrawing {
    survey: MapSurvey,
    map: RunMap,
    index: NodeIndex,
    /// By what makes the label, so that no label is written for a link already known.
    link_index: BTreeMap<(usize, usize, &'static str, u16), usize>,
    only_read_on: BTreeSet<usize>,
    /// A server's role is what it does once a connection to it opens: one that is down, or
    /// an address where no host lives, does nothing.
    role_when_open: BTreeMap<ConnId, (usize, &'static str)>,
    connected_to: BTreeSet<usize>,
}

impl MapDrawing {
    /// Draws what `event` adds.
    pub fn draw(&mut self, event: &Event) {
        match event {
            Event::ConnectionOpened { conn } => {
                if let Some((server, role)) = self.role_when_open.remove(conn) {
                    self.map.add_role(server, role);
                }
            }
            Event::ConnectionAttempted(attempt) => {
                let client_side = if !self.survey.is_client(&attempt.client) {
                    Side::Server
                } else if attempt.protocol == Protocol::Pop3
                    && !self.survey.reads_where_it_sends(&attempt.client)
                {
                    Side::Reader
                } else {
                    Side::Sender
                };
                let from = self
                    .map
                    .node(&mut self.index, &attempt.client, client_side, None);
                let after = self.map.nodes[from].column + 1;
                let known = self
                    .index
                    .get(&*attempt.server)
                    .is_some_and(|sides| sides.contains_key(&Side::Server));
                let to = self
                    .map
                    .node(&mut self.index, &attempt.server, Side::Server, Some(after));
                // A server first reached by a fetch (before any mail) stands where mail
                // first reaches it, not beside the one who fetched.
                if attempt.protocol == Protocol::Pop3 && !known {
                    self.only_read_on.insert(to);
                } else if attempt.protocol == Protocol::Smtp && self.only_read_on.remove(&to) {
                    self.map.nodes[to].column = after;
                }
                let (protocol, server_role) = match attempt.protocol {
                    Protocol::Pop3 => ("POP3", "POP3"),
                    // RFC 6409: the submission agent is what listens on 587; a user
                    // agent on port 25 talks to an MTA.
                    Protocol::Smtp if attempt.port == 587 => ("SMTP", "MSA"),
                    Protocol::Smtp => ("SMTP", "MTA"),
                };
                self.role_when_open.insert(attempt.conn, (to, server_role));
                self.connected_to.insert(to);
                if client_side == Side::Server {
                    self.map.add_role(from, "MTA");
                } else {
                    self.map.add_role(from, "UA");
                }
                let next = self.map.links.len();
                let link = *self
                    .link_index
                    .entry((from, to, protocol, attempt.port))
                    .or_insert(next);
                if link == next {
                    let label = format!("{protocol} :{}", attempt.port);
                    self.map.links.push(MapLink { from, to, label });
                }
                self.map.conn_links.insert(attempt.conn, link);
            }
            Event::MxResolved(resolved) => {
                let node = self
                    .map
                    .node(&mut self.index, &resolved.host, Side::Server, None);
                // A route or an address literal asks DNS nothing: no line to DNS for a
                // host that only ever uses those.
                let asked_dns = !resolved.result.contains(NO_DNS_LOOKUP);
                if asked_dns && !self.map.resolvers.contains(&node) {
                    self.map.resolvers.push(node);
                }
            }
            Event::Delivered(delivered) => {
                let node = self
                    .map
                    .node(&mut self.index, &delivered.host, Side::Server, None);
                self.map.add_role(node, "MDA");
            }
            // A user agent that submitted nothing is drawn all the same: its own finding
            // is where the run goes wrong.
            Event::SubmissionFailed(failed) => {
                let node = self
                    .map
                    .node(&mut self.index, &failed.ua, Side::Sender, None);
                self.map.add_role(node, "UA");
            }
            // The MDA's doing too, though it stored nothing (a mailbox over its quota).
            Event::DeliveryRefused(refused) => {
                let node = self
                    .map
                    .node(&mut self.index, &refused.host, Side::Server, None);
                self.map.add_role(node, "MDA");
            }
            other => {
                if let Some(host) = event_host(other) {
                    self.map.node(&mut self.index, host, Side::Server, None);
                }
            }
        }
    }

    /// The map, every event drawn: its parties placed.
    pub fn finish(self) -> RunMap {
        let MapDrawing {
            mut map,
            mut index,
            connected_to,
            ..
        } = self;
        // Something connected to it, and it never answered.
        for server in connected_to {
            if map.nodes[server].roles.is_empty() {
                map.add_role(server, NOT_REACHED);
            }
        }
        // A client drawn as one party reads beside where it sends; when a server it reads on
        // stands further right (mail reached it first from elsewhere), it reads as a reader of
        // its own, or its POP3 link would run under the diagram beside its SMTP one.
        for client in 0..map.nodes.len() {
            let reads_apart = map.nodes[client].side == Side::Sender
                && map.links.iter().any(|link| {
                    link.from == client
                        && link.label.starts_with("POP3")
                        && map.nodes[link.to].column != map.nodes[client].column + 1
                });
            if !reads_apart {
                continue;
            }
            let name = map.nodes[client].name.clone();
            let reader = map.node(&mut index, &name, Side::Reader, None);
            map.add_role(reader, "UA");
            for link in &mut map.links {
                if link.from == client && link.label.starts_with("POP3") {
                    link.from = reader;
                }
            }
        }
        // Readers stand right of every server, where the mail ends up.
        let readers_column = map
            .nodes
            .iter()
            .filter(|n| n.side != Side::Reader)
            .map(|n| n.column + 1)
            .max()
            .unwrap_or(1);
        for node in &mut map.nodes {
            if node.side == Side::Reader {
                node.column = readers_column;
            }
        }
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        for node in map.nodes.iter_mut().filter(|n| n.side != Side::Reader) {
            let row = rows.entry(node.column).or_default();
            node.row = *row;
            *row += 1;
        }
        // Readers top to bottom as the servers they read on stand, so that their links run
        // side by side rather than across each other; in the order they first appear among
        // those of one server.
        let mut readers: Vec<(usize, usize)> = (0..map.nodes.len())
            .filter(|&node| map.nodes[node].side == Side::Reader)
            .map(|reader| {
                let server_row = map
                    .links
                    .iter()
                    .filter(|link| link.from == reader)
                    .map(|link| map.nodes[link.to].row)
                    .min()
                    .unwrap_or(usize::MAX);
                (server_row, reader)
            })
            .collect();
        readers.sort_unstable();
        for (row, (_, reader)) in readers.into_iter().enumerate() {
            map.nodes[reader].row = row;
        }
        map
    }
}

impl RunMap {
    /// The map of everything that happens in `trace`: what [`MapSurvey`] and
    /// [`MapDrawing`] make of it, an event at a time, done at once.
    pub fn of(trace: &Trace) -> RunMap {
        let mut survey = MapSurvey::default();
        for event in &trace.events {
            survey.survey(&event.event);
        }
        let mut drawing = survey.drawing();
        for event in &trace.events {
            drawing.draw(&event.event);
        }
        drawing.finish()
    }

    /// A map drawn by hand (for an illustration): `links` as (from, to, label).
    pub fn from_parts(
        nodes: Vec<MapNode>,
        links: &[(usize, usize, &str)],
        resolvers: Vec<usize>,
    ) -> RunMap {
        RunMap {
            nodes,
            links: links
                .iter()
                .map(|&(from, to, label)| MapLink {
                    from,
                    to,
                    label: label.to_string(),
                })
                .collect(),
            resolvers,
            conn_links: BTreeMap::new(),
        }
    }

    /// The column count (the width of the map).
    pub fn columns(&self) -> usize {
        self.nodes.iter().map(|n| n.column + 1).max().unwrap_or(0)
    }

    /// The most parties in one column (the height of the map).
    pub fn rows(&self) -> usize {
        self.nodes.iter().map(|n| n.row + 1).max().unwrap_or(0)
    }

    /// What `event` touches, if anything on the map.
    pub fn focus(&self, event: &Event) -> Option<Focus> {
        if let Some(conn) = super::steps::event_conn(event) {
            return self.conn_links.get(&conn).map(|&link| Focus::Link(link));
        }
        // A user agent's own finding: at the sender's box (drawn even when it reached no
        // server).
        if let Event::SubmissionFailed(failed) = event {
            return self
                .nodes
                .iter()
                .position(|n| n.side == Side::Sender && n.name == *failed.ua)
                .map(Focus::Node);
        }
        let host = event_host(event)?;
        let node = self
            .nodes
            .iter()
            .position(|n| n.side == Side::Server && n.name == host)?;
        Some(match event {
            // A route, an address literal or a cached answer asks no DNS: the host itself
            // decides.
            Event::MxResolved(resolved)
                if resolved.from_cache || resolved.result.contains(NO_DNS_LOOKUP) =>
            {
                Focus::Node(node)
            }
            // A null MX, or MX records that lead back to this host, are answers, not DNS
            // failures: the domain says it takes no mail (RFC 7505), or names this host as
            // its best (RFC 5321 5.1), and the host gives up on it.
            Event::MxResolved(resolved)
                if resolved.failure.is_some_and(|status| {
                    status == EnhancedStatus::new(5, 1, 10)
                        || status == EnhancedStatus::new(5, 4, 6)
                }) =>
            {
                Focus::Node(node)
            }
            Event::DnsQuery(_) | Event::DnsResponse(_) | Event::MxResolved(_) => Focus::Dns(node),
            _ => Focus::Node(node),
        })
    }

    /// The node for `name` on `side`, added when new: a server first reached from column
    /// `reached_at - 1` stands in column `reached_at`.
    fn node(
        &mut self,
        index: &mut NodeIndex,
        name: &str,
        side: Side,
        reached_at: Option<usize>,
    ) -> usize {
        // Looked up by the name as it is: a lookup per event writes no string.
        if let Some(&found) = index.get(name).and_then(|sides| sides.get(&side)) {
            return found;
        }
        let column = match side {
            Side::Sender => 0,
            // Placed once every server is known.
            Side::Reader => 0,
            Side::Server => reached_at.unwrap_or(1).max(1),
        };
        self.nodes.push(MapNode {
            name: name.to_string(),
            side,
            roles: Vec::new(),
            column,
            row: 0,
        });
        index
            .entry(name.to_string())
            .or_default()
            .insert(side, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Adds `role` to what `node` does, keeping the roles in the order mail passes through
    /// them (user agent, submission, relay, delivery, retrieval) whatever the order they were
    /// first seen in, so that two hosts doing the same things read the same.
    fn add_role(&mut self, node: usize, role: &'static str) {
        const ORDER: [&str; 5] = ["UA", "MSA", "MTA", "MDA", "POP3"];
        let rank = |role: &str| ORDER.iter().position(|known| *known == role);
        let roles = &mut self.nodes[node].roles;
        if !roles.contains(&role) {
            let at = roles
                .iter()
                .position(|placed| rank(placed) > rank(role))
                .unwrap_or(roles.len());
            roles.insert(at, role);
        }
    }
}

/// The server an event happens on, for events that are not about one connection.
fn event_host(event: &Event) -> Option<&str> {
    Some(match event {
        Event::DnsQuery(e) => &e.host,
        Event::DnsResponse(e) => &e.host,
        Event::MxResolved(e) => &e.host,
        Event::MessageAccepted(e) => &e.host,
        Event::Queued(e) => &e.host,
        Event::AttemptStarted { host, .. } | Event::Dequeued { host, .. } => host,
        Event::RecipientResult(e) => &e.host,
        Event::RetryScheduled(e) => &e.host,
        Event::TargetSkipped(e) => &e.host,
        Event::GaveUp(e) => &e.host,
        Event::Delivered(e) => &e.host,
        Event::DeliveryRefused(e) => &e.host,
        Event::BounceCreated(e) => &e.host,
        Event::BounceDiscarded(e) => &e.host,
        Event::NoticeDeclined(e) => &e.host,
        Event::MailboxUpdated(e) => &e.host,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{library, run};

    fn map_of(name: &str) -> (RunMap, Trace) {
        let scenario = library::find(name).expect("a built-in scenario");
        let trace = run(&scenario, scenario.seed).trace;
        (RunMap::of(&trace), trace)
    }

    fn node<'a>(map: &'a RunMap, name: &str, side: Side) -> &'a MapNode {
        map.nodes
            .iter()
            .find(|n| n.name == name && n.side == side)
            .unwrap_or_else(|| panic!("{name} {side:?} in {map:#?}"))
    }

    fn node_index(map: &RunMap, name: &str) -> usize {
        map.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("{name} in {map:#?}"))
    }

    fn link_labels(map: &RunMap) -> Vec<String> {
        map.links
            .iter()
            .map(|l| {
                let from = &map.nodes[l.from];
                let to = &map.nodes[l.to];
                format!("{} -> {} {}", from.label(), to.label(), l.label)
            })
            .collect()
    }

    #[test]
    fn a_delivery_read_over_pop3_goes_left_to_right() {
        let (map, _) = map_of("basic-delivery");
        assert_eq!(
            link_labels(&map),
            [
                "alice@sender.test -> mail.sender.test SMTP :587",
                "mail.sender.test -> mx.receiver.test SMTP :25",
                "bob@receiver.test -> mx.receiver.test POP3 :110",
            ]
        );
        let alice = node(&map, "ua:alice@sender.test", Side::Sender);
        let msa = node(&map, "mail.sender.test", Side::Server);
        let mx = node(&map, "mx.receiver.test", Side::Server);
        let bob = node(&map, "ua:bob@receiver.test", Side::Reader);
        let columns: Vec<usize> = [alice, msa, mx, bob].iter().map(|n| n.column).collect();
        assert_eq!(columns, [0, 1, 2, 3]);
        assert_eq!(msa.roles, ["MSA", "MTA"]);
        assert_eq!(mx.roles, ["MTA", "MDA", "POP3"]);
        assert_eq!(map.resolvers, [1]);
    }

    #[test]
    fn a_null_mx_or_a_loop_is_drawn_on_the_host_that_gives_up_and_no_such_domain_on_dns() {
        let resolution_in = |scenario: &crate::sim::scenario::Scenario| {
            let trace = run(scenario, scenario.seed).trace;
            let map = RunMap::of(&trace);
            let resolved = trace
                .events
                .iter()
                .find(|e| matches!(&e.event, Event::MxResolved(r) if r.failure.is_some()))
                .expect("a failed resolution")
                .event
                .clone();
            let host = map
                .nodes
                .iter()
                .position(|n| n.name == "mail.sender.test" && n.side == Side::Server)
                .expect("the sending host");
            (map.focus(&resolved), host)
        };
        let resolution =
            |name: &str| resolution_in(&library::find(name).expect("a built-in scenario"));
        // DNS answered: the domain takes no mail (RFC 7505), and the host concludes so.
        let (focus, host) = resolution("null-mx");
        assert_eq!(focus, Some(Focus::Node(host)));
        // DNS said there is no such domain.
        let (focus, host) = resolution("unknown-domain");
        assert_eq!(focus, Some(Focus::Dns(host)));
        // DNS answered: the domain's best MX is the sending host itself.
        let mut looping = library::find("basic-delivery").expect("a built-in scenario");
        looping.dns.zones[1].records[0].data = crate::dns::zone::RecordData::Mx {
            preference: 10,
            exchange: "mail.sender.test".into(),
        };
        let (focus, host) = resolution_in(&looping);
        assert_eq!(focus, Some(Focus::Node(host)));
    }

    #[test]
    fn roles_read_in_the_order_mail_passes_through_them() {
        // A host that first delivers a message to one of its own users and then relays one
        // met MDA before MTA; drawn, it reads MSA · MTA · MDA all the same.
        let order = ["UA", "MSA", "MTA", "MDA", "POP3"];
        let mut hosts_checked = 0;
        for scenario in library::builtin().into_iter().flatten() {
            let map = RunMap::of(&run(&scenario, scenario.seed).trace);
            for node in map.nodes.iter().filter(|n| n.roles.len() > 1) {
                let ranks: Vec<usize> = node
                    .roles
                    .iter()
                    .map(|role| order.iter().position(|r| r == role).expect("a known role"))
                    .collect();
                assert!(
                    ranks.windows(2).all(|pair| pair[0] < pair[1]),
                    "{}: {} in {}",
                    scenario.name,
                    node.roles.join(" · "),
                    node.name
                );
                hosts_checked += 1;
            }
        }
        assert!(
            hosts_checked > 10,
            "{hosts_checked} hosts with several roles"
        );
        // Added out of that order, they are put in it.
        let mut map = RunMap::default();
        let mut index = BTreeMap::new();
        let host = map.node(&mut index, "mail.sender.test", Side::Server, None);
        for role in ["MDA", "POP3", "MSA", "MTA", "MDA"] {
            map.add_role(host, role);
        }
        assert_eq!(map.nodes[host].roles, ["MSA", "MTA", "MDA", "POP3"]);
    }

    #[test]
    fn a_user_agent_that_submits_nothing_is_drawn_and_marked_where_it_fails() {
        let mut scenario = library::find("basic-delivery").expect("a built-in scenario");
        scenario.messages[0].to = vec!["bob@@receiver.test".into()];
        let trace = run(&scenario, scenario.seed).trace;
        let map = RunMap::of(&trace);
        let alice = map
            .nodes
            .iter()
            .position(|n| n.name == "ua:alice@sender.test" && n.side == Side::Sender)
            .expect("the sender's user agent is drawn");
        assert_eq!(map.nodes[alice].roles, ["UA"]);
        let failed = trace
            .events
            .iter()
            .find(|e| matches!(e.event, Event::SubmissionFailed(_)))
            .expect("the user agent's finding");
        assert_eq!(map.focus(&failed.event), Some(Focus::Node(alice)));
    }

    #[test]
    fn a_server_no_connection_reached_is_drawn_as_not_reached() {
        // Down for good: it never did what an MTA does.
        let (map, _) = map_of("server-down-for-good");
        let mx = node(&map, "mx.receiver.test", Side::Server);
        assert_eq!(mx.roles, [NOT_REACHED]);
        // Down for a while, then back: what it did once reached.
        let (map, _) = map_of("primary-mx-down");
        let mx1 = node(&map, "mx1.receiver.test", Side::Server);
        assert_eq!(mx1.roles, ["MTA", "MDA"]);
        // An MDA that refused what it was given (over quota) and stored nothing is one too.
        let (map, _) = map_of("over-quota-at-delivery");
        let mx = node(&map, "mx.receiver.test", Side::Server);
        assert!(mx.roles.contains(&"MDA"), "{:?}", mx.roles);
    }

    #[test]
    fn each_step_marks_the_parties_it_involves() {
        // Port 25 from the user agent is its own link, not the 587 one, and every event on a
        // connection marks that connection's link.
        let (map, trace) = map_of("relay-denied");
        assert!(
            link_labels(&map)
                .contains(&"alice@sender.test -> mail.sender.test SMTP :25".to_string()),
            "{:?}",
            link_labels(&map)
        );
        for event in &trace.events {
            if let Event::ConnectionAttempted(attempt) = &event.event {
                let Some(Focus::Link(link)) = map.focus(&event.event) else {
                    panic!("no link for #{}", attempt.conn);
                };
                let link = &map.links[link];
                assert_eq!(map.nodes[link.from].name, *attempt.client);
                assert_eq!(map.nodes[link.to].name, *attempt.server);
                assert!(link.label.ends_with(&format!(":{}", attempt.port)));
            }
        }
        // A message that joins a session already open marks that session's link.
        let (map, trace) = map_of("one-session-many-messages");
        let mut joined = 0;
        for event in &trace.events {
            if let Event::SessionJoined(session) = &event.event {
                let Some(Focus::Link(link)) = map.focus(&event.event) else {
                    panic!("no link for q{} joining #{}", session.entry, session.conn);
                };
                assert_eq!(map.nodes[map.links[link].to].name, *session.server);
                joined += 1;
            }
        }
        assert!(joined > 0, "no message joined a session");
        // A scripted client is a sender of its own, straight to the server it talks to.
        let (map, _) = map_of("smtp-smuggling");
        assert_eq!(link_labels(&map)[0], "mallory -> mx.receiver.test SMTP :25");
        // A bounce is stored by the sending host's MDA, and read by the sender over POP3.
        let (map, trace) = map_of("unknown-user");
        let msa = node_index(&map, "mail.sender.test");
        assert!(map.nodes[msa].roles.contains(&"MDA"));
        assert!(link_labels(&map)
            .contains(&"alice@sender.test -> mail.sender.test POP3 :110".to_string()));
        // Alice reads the bounce from her own server: she is one party, who sends and reads
        // there, not a second one right of the receiving server.
        let alice: Vec<&MapNode> = map
            .nodes
            .iter()
            .filter(|n| n.name == "ua:alice@sender.test")
            .collect();
        assert_eq!(alice.len(), 1, "{map:#?}");
        assert_eq!(
            (alice[0].side, alice[0].column, alice[0].row),
            (Side::Sender, 0, 0)
        );
        assert_eq!((map.columns(), map.rows()), (3, 1), "{map:#?}");
        let stored_bounce = trace
            .events
            .iter()
            .find(|e| matches!(&e.event, Event::Delivered(d) if d.mailbox == "alice@sender.test"))
            .expect("the bounce is stored");
        assert_eq!(map.focus(&stored_bounce.event), Some(Focus::Node(msa)));
    }

    /// A trace of nothing but connections: (client, server, port).
    fn connections(list: &[(&str, &str, u16)]) -> Trace {
        let events = list
            .iter()
            .enumerate()
            .map(
                |(conn, &(client, server, port))| crate::sim::trace::TraceEvent {
                    time_ms: conn as u64,
                    event: Event::ConnectionAttempted(Box::new(
                        crate::sim::trace::ConnectionAttempted {
                            conn: conn as ConnId,
                            client: client.into(),
                            server: server.into(),
                            address: "192.0.2.1".into(),
                            port,
                            protocol: if port == 110 {
                                Protocol::Pop3
                            } else {
                                Protocol::Smtp
                            },
                        },
                    )),
                },
            )
            .collect();
        Trace {
            events,
            ..Trace::default()
        }
    }

    /// The side and column of every party named `name`.
    fn sides_of(map: &RunMap, name: &str) -> Vec<(Side, usize)> {
        map.nodes
            .iter()
            .filter(|n| n.name == name)
            .map(|n| (n.side, n.column))
            .collect()
    }

    #[test]
    fn a_client_is_one_party_only_where_it_reads_on_servers_it_sends_to() {
        // Bob reads before any mail comes, and Carol reads from the MX: readers, right of
        // every server. Alice reads a bounce from her own server: one party with her sending.
        let map = RunMap::of(&connections(&[
            ("ua:bob@b.test", "mx.b.test", 110),
            ("ua:alice@a.test", "mail.a.test", 587),
            ("mail.a.test", "mx.b.test", 25),
            ("ua:carol@b.test", "mx.b.test", 110),
            ("ua:alice@a.test", "mail.a.test", 110),
        ]));
        let place = |name: &str| {
            let found: Vec<(Side, usize, usize)> = map
                .nodes
                .iter()
                .filter(|n| n.name == name)
                .map(|n| (n.side, n.column, n.row))
                .collect();
            found
        };
        assert_eq!(place("ua:alice@a.test"), [(Side::Sender, 0, 0)]);
        assert_eq!(place("ua:bob@b.test"), [(Side::Reader, 3, 0)]);
        assert_eq!(place("ua:carol@b.test"), [(Side::Reader, 3, 1)]);
        // Bob fetches before he sends, and his server is the MX mail reached first from
        // elsewhere: the server stands where that mail reached it, and Bob, whose fetch would
        // otherwise run under the diagram, reads as a reader of his own, right of it.
        let map = RunMap::of(&connections(&[
            ("ua:bob@b.test", "mx.b.test", 110),
            ("ua:alice@a.test", "mail.a.test", 587),
            ("mail.a.test", "mx.b.test", 25),
            ("ua:bob@b.test", "mx.b.test", 587),
        ]));
        let mx = node(&map, "mx.b.test", Side::Server);
        assert_eq!(mx.column, 2, "{map:#?}");
        assert_eq!(
            sides_of(&map, "ua:bob@b.test"),
            [(Side::Sender, 0), (Side::Reader, 3)],
            "{map:#?}"
        );
        // Dave sends through his own server but reads on another: two parties.
        let map = RunMap::of(&connections(&[
            ("ua:dave@a.test", "mail.a.test", 587),
            ("mail.a.test", "mx.b.test", 25),
            ("ua:dave@a.test", "mx.b.test", 110),
        ]));
        assert_eq!(
            sides_of(&map, "ua:dave@a.test"),
            [(Side::Sender, 0), (Side::Reader, 3)]
        );
    }

    #[test]
    fn a_two_hop_path_and_a_second_domain_get_their_own_servers() {
        let (map, _) = map_of("unknown-user-after-relay");
        let mx = node(&map, "mx.receiver.test", Side::Server);
        let store = node(&map, "store.receiver.test", Side::Server);
        assert_eq!(store.column, mx.column + 1);
        let (map, _) = map_of("two-domains");
        let servers: Vec<&str> = map
            .nodes
            .iter()
            .filter(|n| n.side == Side::Server && n.column == 2)
            .map(|n| n.label())
            .collect();
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert!(map.rows() >= 2);
    }

    #[test]
    fn readers_stand_beside_the_servers_they_read_on() {
        // Bob, whose server is drawn second, reads first.
        let mut scenario = library::find("two-domains").expect("a built-in scenario");
        for host in &mut scenario.hosts {
            for mailbox in &mut host.mailboxes {
                mailbox.password = Some("secret".into());
            }
        }
        scenario.fetches = [
            ("bob@receiver.test", "mx.receiver.test", 300),
            ("dave@other.test", "mx.other.test", 400),
        ]
        .into_iter()
        .map(|(mailbox, host, at_s)| crate::sim::scenario::FetchSpec {
            mailbox: mailbox.into(),
            host: host.into(),
            at_s,
            delete: true,
            password: None,
        })
        .collect();
        let map = RunMap::of(&run(&scenario, scenario.seed).trace);
        for (reader, server) in [
            ("ua:dave@other.test", "mx.other.test"),
            ("ua:bob@receiver.test", "mx.receiver.test"),
        ] {
            let reader = node(&map, reader, Side::Reader);
            let server = node(&map, server, Side::Server);
            assert_eq!(reader.row, server.row, "{map:#?}");
            assert_eq!(reader.column, server.column + 1, "{map:#?}");
        }
    }

    #[test]
    fn a_route_asks_no_dns_and_marks_its_host() {
        let (map, trace) = map_of("unknown-user-after-relay");
        let mx = node_index(&map, "mx.receiver.test");
        let routed = trace
            .events
            .iter()
            .find(|e| matches!(&e.event, Event::MxResolved(r) if &*r.host == "mx.receiver.test" && r.domain == "receiver.test"))
            .expect("the route");
        assert_eq!(map.focus(&routed.event), Some(Focus::Node(mx)));
        // It asks DNS for the bounce it sends back; sent to a mailbox that exists, it asks
        // nothing, and has no line to DNS.
        assert!(map.resolvers.contains(&mx));
        let mut scenario = library::find("unknown-user-after-relay").expect("a built-in scenario");
        let bob = scenario
            .hosts
            .iter()
            .flat_map(|h| &h.mailboxes)
            .find(|m| m.address.starts_with("bob@"))
            .expect("bob's mailbox")
            .address
            .clone();
        scenario.messages[0].to = vec![bob];
        let map = RunMap::of(&run(&scenario, scenario.seed).trace);
        let mx = node_index(&map, "mx.receiver.test");
        let msa = node_index(&map, "mail.sender.test");
        assert_eq!(map.resolvers, [msa]);
        assert!(!map.resolvers.contains(&mx));
    }

    #[test]
    fn dns_steps_mark_the_host_that_asks() {
        let (map, trace) = map_of("basic-delivery");
        let query = trace
            .events
            .iter()
            .find(|e| matches!(e.event, Event::DnsQuery(_)))
            .expect("a DNS query");
        let msa = node_index(&map, "mail.sender.test");
        assert_eq!(map.focus(&query.event), Some(Focus::Dns(msa)));
    }
}
