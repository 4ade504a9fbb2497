#![cfg(not(target_arch = "wasm32"))]
//! Property tests over randomly generated mail worlds: a few domains with one or two MX
//! (random, sometimes equal, preferences), hosts with random faults and windows, greylisting,
//! few recipients a transaction, quotas, and messages to random recipients including unknown users and an unknown domain.
//! Whatever the world, the run never panics, conservation holds, every recipient of every
//! message has exactly one fate, time never goes backwards, and a seed reproduces its trace.

mod sim_common;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{json, Value};
use sim_common::{a, mx, scenario, sender_host, sender_zone};
use smtp_lab::sim::trace::{EntryId, TEMPORARY_FAILURE};
use smtp_lab::sim::view::TraceViewer;
use smtp_lab::sim::{run, Event};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
struct FaultGen {
    kind: u8,
    from_s: u64,
    length_s: Option<u64>,
}

#[derive(Clone, Debug)]
struct HostGen {
    preference: u16,
    faults: Vec<FaultGen>,
    greylist_s: Option<u64>,
    /// Recipients it takes in one transaction (452 4.5.3 past them), if not its default.
    max_recipients: Option<usize>,
    /// Whether it offers DSN (RFC 3461).
    dsn: bool,
}

#[derive(Clone, Debug)]
struct DomainGen {
    store: HostGen,
    backup: Option<HostGen>,
    quota: Option<(u64, u64)>,
}

#[derive(Clone, Debug)]
struct MessageGen {
    /// (recipient index into the pool, header field: 0 To, 1 Cc, 2 Bcc)
    recipients: Vec<(usize, u8)>,
    at_s: u64,
    pipelining: bool,
    body_lines: usize,
    /// What the sender asks of DSN: none, or a NOTIFY value with RET=FULL or HDRS.
    dsn: Option<(&'static str, bool)>,
}

#[derive(Clone, Debug)]
struct WorldGen {
    domains: Vec<DomainGen>,
    messages: Vec<MessageGen>,
    fetch: Option<(u64, bool)>,
    retry: (u64, u64, u64),
    delay_notice_s: Option<u64>,
    /// A SERVFAIL window for one of the domains: (domain index, from, length), in seconds.
    servfail: Option<(usize, u64, u64)>,
    run_until_s: u64,
    seed: u64,
}

fn fault() -> impl Strategy<Value = FaultGen> {
    (0u8..15, 0u64..7200, prop::option::of(60u64..30_000)).prop_map(|(kind, from_s, length_s)| {
        FaultGen {
            kind,
            from_s,
            length_s,
        }
    })
}

fn host() -> impl Strategy<Value = HostGen> {
    (
        prop::sample::select(vec![0u16, 10, 10, 20]),
        prop::collection::vec(fault(), 0..3),
        prop::option::weighted(0.25, 30u64..1200),
        prop::option::weighted(0.25, 1usize..3),
        any::<bool>(),
    )
        .prop_map(
            |(preference, faults, greylist_s, max_recipients, dsn)| HostGen {
                preference,
                faults,
                greylist_s,
                max_recipients,
                dsn,
            },
        )
}

fn domain() -> impl Strategy<Value = DomainGen> {
    (
        host(),
        prop::option::of(host()),
        prop::option::weighted(0.3, (500u64..3000, 0u64..2500)),
    )
        .prop_map(|(store, backup, quota)| DomainGen {
            store,
            backup,
            quota,
        })
}

fn world() -> impl Strategy<Value = WorldGen> {
    (
        prop::collection::vec(domain(), 1..=3),
        prop::collection::vec(
            (
                prop::collection::vec((0usize..64, 0u8..3), 1..=4),
                0u64..3600,
                any::<bool>(),
                0usize..4,
                prop::option::of((
                    prop::sample::select(vec![
                        "NEVER",
                        "SUCCESS",
                        "FAILURE",
                        "DELAY",
                        "SUCCESS,FAILURE,DELAY",
                    ]),
                    any::<bool>(),
                )),
            )
                .prop_map(|(recipients, at_s, pipelining, body_lines, dsn)| {
                    MessageGen {
                        recipients,
                        at_s,
                        pipelining,
                        body_lines,
                        dsn,
                    }
                }),
            1..=3,
        ),
        prop::option::of((0u64..20_000, any::<bool>())),
        (300u64..3600, 1800u64..14_400, 3600u64..172_800),
        prop::option::weighted(0.3, 600u64..20_000),
        prop::option::weighted(0.3, (0usize..3, 0u64..3600, 60u64..10_000)),
        3600u64..259_200,
        any::<u64>(),
    )
        .prop_map(
            |(domains, messages, fetch, retry, delay_notice_s, servfail, run_until_s, seed)| {
                WorldGen {
                    domains,
                    messages,
                    fetch,
                    retry,
                    delay_notice_s,
                    servfail,
                    run_until_s,
                    seed,
                }
            },
        )
}

fn faults_json(faults: &[FaultGen]) -> Value {
    faults
        .iter()
        .map(|f| {
            // A server that hangs, at each of the points it may; one that answers a
            // command with a temporary or a permanent refusal, at each of its points.
            let stalls = ["greeting", "ehlo", "mail", "rcpt", "data", "dot"];
            let replies = [
                ("mail", "451 4.3.0 Try again later"),
                ("rcpt", "450 4.2.1 Mailbox busy"),
                ("dot", "452 4.3.1 Insufficient system storage"),
                ("mail", "553 5.7.1 Sender rejected"),
                ("rcpt", "550 5.1.1 No such user"),
                ("dot", "554 5.7.1 Rejected by policy"),
            ];
            let kind = match f.kind as usize % 15 {
                0 => json!({"type": "down"}),
                1 => json!({"type": "no_answer"}),
                2 => json!({"type": "drop_in_data"}),
                stall @ 3..=8 => json!({"type": "stall", "at": stalls[stall - 3]}),
                reply => {
                    let (at, reply) = replies[reply - 9];
                    json!({"type": "reply", "at": at, "reply": reply})
                }
            };
            let mut fault = json!({"kind": kind, "from_s": f.from_s});
            if let Some(length) = f.length_s {
                fault["until_s"] = json!(f.from_s + length);
            }
            fault
        })
        .collect()
}

/// Every address a message may be sent to: two real users and an unknown one per domain, a
/// domain with no DNS at all, and the sender herself.
fn recipient_pool(domains: usize) -> Vec<String> {
    let mut pool = Vec::new();
    for d in 0..domains {
        for user in ["u0", "u1", "nobody"] {
            pool.push(format!("{user}@d{d}.test"));
        }
    }
    pool.push("someone@nx.test".into());
    pool.push("alice@sender.test".into());
    pool
}

fn build(world: &WorldGen) -> Value {
    let mut zones = vec![sender_zone()];
    let mut sender = sender_host();
    sender["extensions"] = json!({"dsn": true});
    // BDAT (RFC 3030) from the sending server and the backups, and CHUNKING offered or not by
    // the stores, by bits of the seed: chunks of 1 to 300 octets.
    let chunk_octets =
        |bit: u32| (world.seed >> bit & 1 == 1).then_some(1 + (world.seed >> 8) % 300);
    let stores_chunk = world.seed >> 2 & 1 == 0;
    sender["client_chunk_octets"] = json!(chunk_octets(0));
    let mut hosts = vec![sender];
    for (d, domain) in world.domains.iter().enumerate() {
        let name = format!("d{d}.test");
        let store_name = format!("mx0.{name}");
        let store_address = format!("192.0.2.{}", 20 + 10 * d);
        let mut records = vec![
            mx(&name, domain.store.preference, &store_name),
            a(&store_name, &store_address),
        ];
        let mailboxes: Vec<Value> = ["u0", "u1"]
            .iter()
            .map(|u| {
                let mut mailbox = json!({"address": format!("{u}@{name}"), "password": "pw"});
                if let Some((quota, used)) = domain.quota {
                    mailbox["quota_octets"] = json!(quota);
                    mailbox["used_octets"] = json!(used);
                }
                mailbox
            })
            .collect();
        let mut store = json!({
            "name": store_name,
            "address": store_address,
            "local_domains": [name],
            "mailboxes": mailboxes,
            "faults": faults_json(&domain.store.faults),
        });
        if let Some(greylist) = domain.store.greylist_s {
            store["greylist_s"] = json!(greylist);
        }
        if let Some(max) = domain.store.max_recipients {
            store["max_recipients"] = json!(max);
        }
        store["extensions"] = json!({"dsn": domain.store.dsn, "chunking": stores_chunk});
        hosts.push(store);
        if let Some(backup) = &domain.backup {
            let backup_name = format!("mx1.{name}");
            let backup_address = format!("192.0.2.{}", 21 + 10 * d);
            records.push(mx(&name, backup.preference, &backup_name));
            records.push(a(&backup_name, &backup_address));
            let mut host = json!({
                "name": backup_name,
                "address": backup_address,
                "relay_domains": [name],
                "faults": faults_json(&backup.faults),
            });
            if let Some(greylist) = backup.greylist_s {
                host["greylist_s"] = json!(greylist);
            }
            if let Some(max) = backup.max_recipients {
                host["max_recipients"] = json!(max);
            }
            host["extensions"] = json!({"dsn": backup.dsn});
            host["client_chunk_octets"] = json!(chunk_octets(1));
            hosts.push(host);
        }
        zones.push(json!({"origin": name, "records": records}));
    }
    let pool = recipient_pool(world.domains.len());
    let messages: Vec<Value> = world
        .messages
        .iter()
        .map(|m| {
            let mut fields: [Vec<String>; 3] = Default::default();
            for (index, field) in &m.recipients {
                fields[*field as usize % 3].push(pool[index % pool.len()].clone());
            }
            let dsn = match m.dsn {
                Some((notify, full)) => {
                    json!({"notify": notify, "ret": if full { "FULL" } else { "HDRS" },
                    "envid": "generated", "orcpt": true})
                }
                None => json!({}),
            };
            json!({
                "dsn": dsn,
                "from": "alice@sender.test",
                "to": fields[0],
                "cc": fields[1],
                "bcc": fields[2],
                "subject": "Test",
                "body": "A line of text.\n".repeat(m.body_lines),
                "submit_to": "mail.sender.test",
                "auth": {"user": "alice", "password": "secret"},
                "at_s": m.at_s,
                "pipelining": m.pipelining,
            })
        })
        .collect();
    let fetches: Vec<Value> = world
        .fetch
        .iter()
        .map(|(at_s, delete)| {
            // Nothing may be set to happen after the run ends.
            json!({"mailbox": "u0@d0.test", "host": "mx0.d0.test",
                   "at_s": at_s.min(&world.run_until_s), "delete": delete})
        })
        .collect();
    let dns_faults: Vec<Value> = world
        .servfail
        .iter()
        .map(|(d, from_s, length_s)| {
            json!({"domain": format!("d{}.test", d % world.domains.len()), "fault": "ServFail",
                   "from_ms": from_s * 1000, "until_ms": (from_s + length_s) * 1000})
        })
        .collect();
    json!({
        "name": "generated",
        "title": "A generated world",
        "seed": world.seed,
        "retry": {
            "first_retry_s": world.retry.0,
            // The longest wait is never shorter than the first.
            "max_interval_s": world.retry.1.max(world.retry.0),
            "give_up_s": world.retry.2,
            "delay_notice_s": world.delay_notice_s,
        },
        "run_until_s": world.run_until_s,
        "dns": {"zones": zones, "faults": dns_faults},
        "hosts": hosts,
        "messages": messages,
        "fetches": fetches,
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x5eed_0f5a_11e5),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_generated_world_keeps_conservation_and_is_reproducible(world in world()) {
        let json = build(&world);
        let scenario = scenario(&json);
        let result = run(&scenario, world.seed);

        prop_assert!(
            result.conservation_problems.is_empty(),
            "conservation: {:?}\n{}",
            result.conservation_problems,
            json
        );

        // Time never goes backwards.
        for pair in result.trace.events.windows(2) {
            prop_assert!(pair[0].time_ms <= pair[1].time_ms, "{:?} then {:?}", pair[0], pair[1]);
        }

        // Every recipient of every message, and of every notice, has exactly one fate.
        let mut fates: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (message, recipient, _) in &result.outcomes {
            *fates.entry((message.clone(), recipient.clone())).or_default() += 1;
        }
        prop_assert!(fates.values().all(|n| *n == 1), "a recipient with two fates: {:?}", result.outcomes);
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        for (index, message) in scenario.messages.iter().enumerate() {
            for recipient in message.to.iter().chain(&message.cc).chain(&message.bcc) {
                expected.insert((format!("m{}", index + 1), recipient.clone()));
            }
        }
        for event in &result.trace.events {
            if let Event::BounceCreated(created) = &event.event {
                expected.insert((created.bounce.clone(), created.to.clone()));
            }
        }
        let got: BTreeSet<(String, String)> = fates.keys().cloned().collect();
        prop_assert_eq!(got, expected);

        // A retry without a failure of its own follows a recipient's temporary failure in
        // the same attempt, which says why; otherwise the retry says it.
        let mut said_why: BTreeMap<(String, EntryId), bool> = BTreeMap::new();
        for event in &result.trace.events {
            match &event.event {
                Event::AttemptStarted { host, entry, .. } => {
                    said_why.insert((host.to_string(), *entry), false);
                }
                Event::RecipientResult(r) if r.result == TEMPORARY_FAILURE => {
                    said_why.insert((r.host.to_string(), r.entry), true);
                }
                Event::RetryScheduled(retry) => {
                    let key = (retry.host.to_string(), retry.entry);
                    prop_assert!(
                        retry.attempt_failure.is_some() || said_why.get(&key) == Some(&true),
                        "a retry that does not say why: {:?}\n{}",
                        retry,
                        json
                    );
                }
                _ => {}
            }
        }

        // A queue entry's recipient is accepted at most once, and only a recipient it holds,
        // however the message was split into transactions.
        let mut queued: BTreeMap<(String, EntryId), Vec<String>> = BTreeMap::new();
        let mut accepted: BTreeSet<(String, EntryId, String)> = BTreeSet::new();
        for event in &result.trace.events {
            match &event.event {
                Event::Queued(q) => {
                    queued.insert((q.host.to_string(), q.entry), q.recipients.clone());
                }
                Event::RecipientResult(r) if r.result == "accepted" => {
                    let key = (r.host.to_string(), r.entry);
                    prop_assert!(
                        queued.get(&key).is_some_and(|held| held.contains(&r.recipient)),
                        "accepted for an entry that does not hold it: {:?}\n{}",
                        r,
                        json
                    );
                    prop_assert!(
                        accepted.insert((key.0, key.1, r.recipient.clone())),
                        "accepted twice: {:?}\n{}",
                        r,
                        json
                    );
                }
                _ => {}
            }
        }

        // Every connection is over once nothing more happens, however it ended (refused,
        // timed out, closed by both ends, broken and then noticed by the client): the view
        // the web app shows at the last step lists none, unless the run's end cut a
        // connection short (its last event within ten minutes of `run_until_s`).
        let last_ms = result.trace.events.last().map_or(0, |e| e.time_ms);
        if last_ms + 600_000 < world.run_until_s * 1000 {
            let viewer = TraceViewer::new(result.trace.clone());
            let end = viewer.view_at(viewer.trace().events.len());
            prop_assert!(
                end.connections.is_empty(),
                "left listed: {:?}\n{}",
                end.connections,
                json
            );
        }

        // The same seed gives the same trace.
        let again = run(&scenario, world.seed);
        prop_assert!(again.trace == result.trace, "two runs with one seed differ");
        prop_assert_eq!(again.outcomes, result.outcomes);
    }
}
