//! MX resolution for mail (RFC 5321 5.1, RFC 7505) against small simulated worlds.

#![cfg(not(target_arch = "wasm32"))]

mod dns_common;

use dns_common::*;
use smtp_lab::dns::{
    resolve_mx, DnsWorld, DomainFault, Fault, MxNote, MxOutcome, MxResolution, MxResolver, Outcome,
    RecordType,
};
use smtp_lab::smtp::reply::EnhancedStatus;
use std::net::IpAddr;

fn resolve(world: &DnsWorld, domain: &str) -> MxResolution {
    resolve_with(world, domain, 0, &[], 1)
}

fn resolve_with(
    world: &DnsWorld,
    domain: &str,
    now_ms: u64,
    local: &[&str],
    seed: u64,
) -> MxResolution {
    let mut prng = SplitMix64(seed);
    let local: Vec<_> = local.iter().map(|n| name(n)).collect();
    resolve_mx(world, domain, now_ms, &local, 100, &mut || prng.next_u64())
}

fn exchanges(resolution: &MxResolution) -> Vec<(String, u16)> {
    resolution
        .outcome
        .targets()
        .iter()
        .map(|t| (t.exchange.to_string(), t.preference))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn example_org() -> DnsWorld {
    world(vec![
        zone(
            "example.org",
            vec![
                mx("@", 20, "mx2.example.org"),
                mx("@", 10, "mx1.example.org"),
                mx("@", 30, "backup.example.net"),
                a("mx1.example.org", "192.0.2.10"),
                aaaa("mx1.example.org", "2001:db8::10"),
                a("mx2.example.org", "192.0.2.20"),
                a("@", "192.0.2.99"),
            ],
        ),
        zone(
            "example.net",
            vec![a("backup.example.net", "198.51.100.30")],
        ),
    ])
}

#[test]
fn mx_hosts_come_in_preference_order_with_their_addresses() {
    let r = resolve(&example_org(), "example.org");
    assert_eq!(
        exchanges(&r),
        [
            ("mx1.example.org.".to_owned(), 10),
            ("mx2.example.org.".to_owned(), 20),
            ("backup.example.net.".to_owned(), 30)
        ]
    );
    let targets = r.outcome.targets();
    assert_eq!(targets[0].addresses, [ip("192.0.2.10"), ip("2001:db8::10")]);
    assert_eq!(targets[1].addresses, [ip("192.0.2.20")]);
    assert_eq!(targets[2].addresses, [ip("198.51.100.30")]);
    assert!(r.outcome.failure().is_none());
    // One MX question, then A and AAAA for each of the three hosts.
    let asked: Vec<_> = r
        .exchanges
        .iter()
        .map(|e| (e.question.name.to_string(), e.question.qtype))
        .collect();
    assert_eq!(asked[0], ("example.org.".to_owned(), RecordType::Mx));
    assert_eq!(asked.len(), 7);
    assert_eq!(
        r.exchanges.iter().map(|e| e.message_id).collect::<Vec<_>>(),
        (100..107).collect::<Vec<u16>>()
    );
}

/// Two MX records naming one host: its addresses are asked for once, and it is a target at
/// each preference (the client tries a host once per attempt).
#[test]
fn a_host_named_by_two_mx_records_is_looked_up_once() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "mx1.example.org"),
            mx("@", 20, "mx1.example.org"),
            mx("@", 20, "mx2.example.org"),
            a("mx1.example.org", "192.0.2.10"),
            a("mx2.example.org", "192.0.2.20"),
        ],
    )]);
    let r = resolve(&world, "example.org");
    let asked: Vec<_> = r
        .exchanges
        .iter()
        .map(|e| (e.question.name.to_string(), e.question.qtype))
        .collect();
    assert_eq!(
        asked,
        [
            ("example.org.".to_owned(), RecordType::Mx),
            ("mx1.example.org.".to_owned(), RecordType::A),
            ("mx1.example.org.".to_owned(), RecordType::Aaaa),
            ("mx2.example.org.".to_owned(), RecordType::A),
            ("mx2.example.org.".to_owned(), RecordType::Aaaa),
        ]
    );
    let mut found = exchanges(&r);
    found[1..].sort();
    assert_eq!(
        found,
        [
            ("mx1.example.org.".to_owned(), 10),
            ("mx1.example.org.".to_owned(), 20),
            ("mx2.example.org.".to_owned(), 20)
        ]
    );
    assert!(r.outcome.targets().iter().all(|t| !t.addresses.is_empty()));
}

#[test]
fn the_domain_is_case_insensitive_and_the_final_dot_optional() {
    let world = example_org();
    let a = resolve(&world, "Example.ORG.");
    let b = resolve(&world, "example.org");
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(a.domain, "Example.ORG.");
}

fn tied_world() -> DnsWorld {
    let hosts = ["a", "b", "c", "d", "e"];
    let mut records = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = format!("{host}.example.org");
        records.push(mx("@", 10, &host));
        records.push(a(&host, &format!("192.0.2.{}", i + 1)));
    }
    records.push(mx("@", 5, "first.example.org"));
    records.push(a("first.example.org", "192.0.2.100"));
    records.push(mx("@", 50, "last.example.org"));
    records.push(a("last.example.org", "192.0.2.200"));
    world(vec![zone("example.org", records)])
}

#[test]
fn equal_preferences_are_shuffled_by_the_seed_only() {
    let world = tied_world();
    let order = |seed| exchanges(&resolve_with(&world, "example.org", 0, &[], seed));
    let first = order(7);
    assert_eq!(first, order(7), "same seed, same order");
    assert_eq!(first[0], ("first.example.org.".to_owned(), 5));
    assert_eq!(first[6], ("last.example.org.".to_owned(), 50));
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let o = order(seed);
        assert_eq!(o[0].1, 5);
        assert!(o[1..6].iter().all(|(_, p)| *p == 10));
        assert_eq!(o[6].1, 50);
        distinct.insert(o);
    }
    assert!(
        distinct.len() > 10,
        "40 seeds gave only {} orders",
        distinct.len()
    );
}

#[test]
fn a_list_without_ties_draws_no_random_numbers() {
    let mut draws = 0;
    let r = resolve_mx(&example_org(), "example.org", 0, &[], 1, &mut || {
        draws += 1;
        0
    });
    assert_eq!(exchanges(&r).len(), 3);
    assert_eq!(draws, 0);
    let mut draws = 0;
    resolve_mx(&tied_world(), "example.org", 0, &[], 1, &mut || {
        draws += 1;
        0
    });
    assert_eq!(draws, 4, "a run of five takes four draws");
}

#[test]
fn no_mx_means_implicit_mx_on_the_domain_itself() {
    let world = world(vec![zone(
        "example.com",
        vec![a("@", "203.0.113.5"), aaaa("@", "2001:db8::5")],
    )]);
    let r = resolve(&world, "example.com");
    let MxOutcome::ImplicitMx(target) = &r.outcome else {
        panic!("expected implicit MX, got {:?}", r.outcome);
    };
    assert_eq!(target.exchange, name("example.com"));
    assert_eq!(target.preference, 0);
    assert_eq!(target.addresses, [ip("203.0.113.5"), ip("2001:db8::5")]);
    assert_eq!(r.outcome.targets().len(), 1);
    assert_eq!(r.exchanges[0].answer.outcome, Outcome::NoError);
    assert!(r.exchanges[0].answer.answers.is_empty(), "NODATA for MX");
}

#[test]
fn no_mx_and_no_address_is_a_permanent_error() {
    let world = world(vec![zone(
        "example.com",
        vec![a("www.example.com", "203.0.113.5")],
    )]);
    let r = resolve(&world, "example.com");
    assert_eq!(r.outcome, MxOutcome::NoAddresses);
    let failure = r.outcome.failure().unwrap();
    assert!(failure.permanent);
    assert_eq!(failure.status, EnhancedStatus::new(5, 4, 4));
}

#[test]
fn null_mx_fails_permanently_with_5_1_10() {
    let world = world(vec![zone(
        "nomail.example",
        vec![mx("@", 0, "."), a("@", "192.0.2.1")],
    )]);
    let r = resolve(&world, "nomail.example");
    assert_eq!(r.outcome, MxOutcome::NullMx);
    let failure = r.outcome.failure().unwrap();
    assert!(failure.permanent);
    assert_eq!(failure.status, EnhancedStatus::new(5, 1, 10));
    assert_eq!(r.exchanges.len(), 1, "no address lookups after a null MX");
}

#[test]
fn nxdomain_is_permanent_5_1_2() {
    let r = resolve(&example_org(), "no-such-domain.example");
    assert_eq!(r.outcome, MxOutcome::NxDomain);
    let failure = r.outcome.failure().unwrap();
    assert!(failure.permanent);
    assert_eq!(failure.status, EnhancedStatus::new(5, 1, 2));
    assert_eq!(failure.text, "Host or domain name not found");
    // Also a name that does not exist inside an existing zone.
    let r = resolve(&example_org(), "nope.example.org");
    assert_eq!(r.outcome, MxOutcome::NxDomain);
}

#[test]
fn servfail_is_temporary_then_success_after_the_fault_ends() {
    let mut world = example_org();
    world.faults.push(DomainFault {
        domain: "example.org".to_owned(),
        fault: Fault::ServFail,
        from_ms: None,
        until_ms: Some(60_000),
    });
    let early = resolve_with(&world, "example.org", 59_999, &[], 1);
    assert_eq!(
        early.outcome,
        MxOutcome::TemporaryFailure {
            reason: Outcome::ServFail
        }
    );
    let failure = early.outcome.failure().unwrap();
    assert!(!failure.permanent);
    assert_eq!(failure.status, EnhancedStatus::new(4, 4, 3));
    assert!(early.exchanges[0].response_wire.is_some());

    let later = resolve_with(&world, "example.org", 60_000, &[], 1);
    assert_eq!(exchanges(&later).len(), 3);
}

#[test]
fn timeout_is_temporary_and_has_no_response_message() {
    let mut world = example_org();
    world.faults.push(DomainFault {
        domain: "example.org".to_owned(),
        fault: Fault::Timeout,
        from_ms: Some(1_000),
        until_ms: None,
    });
    assert_eq!(
        exchanges(&resolve_with(&world, "example.org", 999, &[], 1)).len(),
        3
    );
    let r = resolve_with(&world, "example.org", 1_000, &[], 1);
    assert_eq!(
        r.outcome,
        MxOutcome::TemporaryFailure {
            reason: Outcome::TimedOut
        }
    );
    assert!(r.exchanges[0].response_wire.is_none());
    assert!(!r.exchanges[0].query_wire.is_empty());
}

#[test]
fn never_falls_back_to_the_domains_address_when_mx_exist() {
    // The only MX host has no address; the domain itself has one. RFC 5321 5.1: no fallback.
    let world = world(vec![zone(
        "example.org",
        vec![mx("@", 10, "mx.example.org"), a("@", "192.0.2.1")],
    )]);
    let r = resolve(&world, "example.org");
    assert_eq!(r.outcome, MxOutcome::NoAddresses);
    assert!(r
        .exchanges
        .iter()
        .all(|e| !(e.question.name == name("example.org") && e.question.qtype == RecordType::A)));
}

#[test]
fn an_mx_host_without_address_is_skipped_with_a_note() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "broken.example.org"),
            mx("@", 20, "mx2.example.org"),
            a("mx2.example.org", "192.0.2.20"),
        ],
    )]);
    let r = resolve(&world, "example.org");
    assert_eq!(exchanges(&r), [("mx2.example.org.".to_owned(), 20)]);
    assert!(r.notes.contains(&MxNote::ExchangeWithoutAddress {
        exchange: name("broken.example.org"),
        preference: 10
    }));
    assert!(r.notes[0].to_string().contains("skipped"));
}

#[test]
fn an_mx_host_whose_dns_fails_makes_the_whole_lookup_temporary_when_nothing_else_works() {
    let mut world = world(vec![
        zone("example.org", vec![mx("@", 10, "mx.example.net")]),
        zone("example.net", vec![a("mx.example.net", "192.0.2.7")]),
    ]);
    world.faults.push(servfail_until("example.net", 10));
    let r = resolve_with(&world, "example.org", 0, &[], 1);
    assert_eq!(
        r.outcome,
        MxOutcome::TemporaryFailure {
            reason: Outcome::ServFail
        }
    );
    let r = resolve_with(&world, "example.org", 10, &[], 1);
    assert_eq!(exchanges(&r), [("mx.example.net.".to_owned(), 10)]);
}

/// Both address lookups of an MX host failed: the note names both, not only the first.
#[test]
fn the_note_for_an_mx_host_whose_lookups_failed_names_every_failed_lookup() {
    let mut world = world(vec![
        zone(
            "example.org",
            vec![
                mx("@", 10, "mx.example.net"),
                mx("@", 20, "mx2.example.org"),
            ],
        ),
        zone("example.net", vec![a("mx.example.net", "192.0.2.7")]),
    ]);
    world.faults.push(servfail_until("example.net", 10));
    let r = resolve_with(&world, "example.org", 0, &[], 1);
    let notes: Vec<String> = r.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n == "MX 10 mx.example.net: A and AAAA lookups SERVFAIL; skipped for now"),
        "{notes:?}"
    );
    // Lookups that failed in different ways are named each with its outcome.
    let mixed = MxNote::ExchangeLookupFailed {
        exchange: name("mx.example.net"),
        preference: 10,
        qtype: RecordType::A,
        outcome: Outcome::ServFail,
        also: Some((RecordType::Aaaa, Outcome::TimedOut)),
    };
    let said = mixed.to_string();
    assert!(
        said.starts_with("MX 10 mx.example.net: A lookup SERVFAIL, AAAA lookup ")
            && said.ends_with("; skipped for now")
            && !said.contains("AAAA lookup SERVFAIL"),
        "{said}"
    );
}

#[test]
fn a_cname_at_the_mail_domain_is_followed() {
    let world = world(vec![
        zone("alias.example", vec![cname("@", "real.example.org")]),
        zone(
            "example.org",
            vec![
                mx("real.example.org", 10, "mx.example.org"),
                a("mx.example.org", "192.0.2.10"),
            ],
        ),
    ]);
    let r = resolve(&world, "alias.example");
    assert_eq!(exchanges(&r), [("mx.example.org.".to_owned(), 10)]);
    assert!(r.notes.contains(&MxNote::MailDomainIsAlias {
        alias: name("alias.example"),
        canonical: name("real.example.org"),
    }));
    // The CNAME and the MX come back in one answer.
    let types: Vec<_> = r.exchanges[0]
        .answer
        .answers
        .iter()
        .map(|r| r.data.record_type())
        .collect();
    assert_eq!(types, [RecordType::Cname, RecordType::Mx]);
}

#[test]
fn implicit_mx_through_a_cname_uses_the_canonical_name() {
    let world = world(vec![zone(
        "example.org",
        vec![
            cname("mail.example.org", "host.example.org"),
            a("host.example.org", "192.0.2.8"),
        ],
    )]);
    let r = resolve(&world, "mail.example.org");
    let MxOutcome::ImplicitMx(target) = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(target.exchange, name("host.example.org"));
    assert_eq!(target.addresses, [ip("192.0.2.8")]);
}

#[test]
fn an_mx_host_that_is_an_alias_is_followed_with_a_note() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "mail.example.org"),
            cname("mail.example.org", "host.example.org"),
            a("host.example.org", "192.0.2.8"),
        ],
    )]);
    let r = resolve(&world, "example.org");
    assert_eq!(exchanges(&r), [("mail.example.org.".to_owned(), 10)]);
    assert_eq!(r.outcome.targets()[0].addresses, [ip("192.0.2.8")]);
    assert!(matches!(r.notes[0], MxNote::ExchangeIsAlias { .. }));
    assert!(r.notes[0].to_string().contains("RFC 2181 10.3"));
}

#[test]
fn a_cname_loop_is_a_temporary_failure_and_terminates() {
    let world = world(vec![zone(
        "example.org",
        vec![
            cname("a.example.org", "b.example.org"),
            cname("b.example.org", "c.example.org"),
            cname("c.example.org", "a.example.org"),
        ],
    )]);
    let r = resolve(&world, "a.example.org");
    assert_eq!(
        r.outcome,
        MxOutcome::TemporaryFailure {
            reason: Outcome::ServFail
        }
    );
    assert!(matches!(
        r.exchanges[0].answer.problem,
        Some(smtp_lab::dns::LookupProblem::CnameLoop { .. })
    ));
    assert_eq!(r.exchanges[0].answer.answers.len(), 3);
    // The note says why, once, and that retrying will not help.
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert_eq!(
        r.notes[0].to_string(),
        "a.example.org: its CNAME chain comes back to a.example.org, a loop. The answer is \
         SERVFAIL, a temporary failure (a resolver cannot tell broken data from a passing \
         fault), so the lookup is made again at later attempts, and fails until the zone's \
         data is fixed (RFC 1034 3.6.2)"
    );
}

#[test]
fn an_mx_host_behind_a_too_long_cname_chain_is_skipped_with_a_note_saying_why() {
    let mut records = vec![
        mx("@", 10, "h0.example.org"),
        mx("@", 20, "backup.example.org"),
        a("backup.example.org", "192.0.2.2"),
    ];
    for i in 0..12 {
        records.push(cname(
            &format!("h{i}.example.org"),
            &format!("h{}.example.org", i + 1),
        ));
    }
    records.push(a("h12.example.org", "192.0.2.1"));
    let r = resolve(&world(vec![zone("example.org", records)]), "example.org");
    assert_eq!(exchanges(&r), [("backup.example.org.".to_owned(), 20)]);
    let notes: Vec<String> = r.notes.iter().map(ToString::to_string).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!(
            "h0.example.org: its CNAME chain is longer than {} links, more than resolvers \
             follow. The answer is SERVFAIL",
            smtp_lab::dns::CNAME_CHAIN_MAX
        )),
        "{notes:?}"
    );
    assert!(matches!(r.notes[1], MxNote::ExchangeLookupFailed { .. }));
}

#[test]
fn a_long_cname_chain_is_cut() {
    let mut records = Vec::new();
    for i in 0..20 {
        records.push(cname(
            &format!("h{i}.example.org"),
            &format!("h{}.example.org", i + 1),
        ));
    }
    records.push(a("h20.example.org", "192.0.2.1"));
    let world = world(vec![zone("example.org", records)]);
    let answer = world.query(&name("h0.example.org"), RecordType::A, 0);
    assert_eq!(answer.outcome, Outcome::ServFail);
    assert!(answer.answers.len() <= smtp_lab::dns::CNAME_CHAIN_MAX + 1);
    let short = world.query(&name("h15.example.org"), RecordType::A, 0);
    assert_eq!(short.outcome, Outcome::NoError);
    assert_eq!(short.answers.len(), 6);
}

#[test]
fn a_relay_drops_its_own_level_and_less_preferred_hosts() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "primary.example.org"),
            mx("@", 20, "relay.example.org"),
            mx("@", 20, "other-relay.example.org"),
            mx("@", 30, "tertiary.example.org"),
            a("primary.example.org", "192.0.2.1"),
            a("relay.example.org", "192.0.2.2"),
            a("other-relay.example.org", "192.0.2.3"),
            a("tertiary.example.org", "192.0.2.4"),
        ],
    )]);
    let r = resolve_with(&world, "example.org", 0, &["relay.example.org"], 1);
    assert_eq!(exchanges(&r), [("primary.example.org.".to_owned(), 10)]);
    let MxNote::DroppedOwnLevel {
        preference,
        dropped,
        ..
    } = &r.notes[0]
    else {
        panic!("{:?}", r.notes)
    };
    assert_eq!(*preference, 20);
    assert_eq!(dropped.len(), 3);

    let r = resolve_with(&world, "example.org", 0, &["PRIMARY.example.org."], 1);
    assert_eq!(
        r.outcome,
        MxOutcome::LoopsBackToMe {
            local_name: name("primary.example.org")
        }
    );
    let failure = r.outcome.failure().unwrap();
    assert_eq!(failure.status, EnhancedStatus::new(5, 4, 6));
}

#[test]
fn a_host_named_by_two_dropped_mx_records_is_named_once() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "primary.example.org"),
            mx("@", 20, "relay.example.org"),
            mx("@", 30, "backup.example.org"),
            mx("@", 40, "backup.example.org"),
            a("primary.example.org", "192.0.2.1"),
            a("relay.example.org", "192.0.2.2"),
            a("backup.example.org", "192.0.2.3"),
        ],
    )]);
    let r = resolve_with(&world, "example.org", 0, &["relay.example.org"], 1);
    assert_eq!(exchanges(&r), [("primary.example.org.".to_owned(), 10)]);
    let Some(MxNote::DroppedOwnLevel { dropped, .. }) = r
        .notes
        .iter()
        .find(|note| matches!(note, MxNote::DroppedOwnLevel { .. }))
    else {
        panic!("{:?}", r.notes)
    };
    assert_eq!(
        dropped,
        &[name("relay.example.org"), name("backup.example.org")]
    );
    let text = notes_text(&r);
    assert!(
        text.ends_with("Dropped: relay.example.org, backup.example.org"),
        "{text}"
    );
}

/// `domain` resolved at `now_ms` by relay.example.org, which is also known by 192.0.2.2
/// (RFC 5321 5.1: "any of the names or addresses by which it might be known").
fn resolve_as_relay_at_own_address(world: &DnsWorld, domain: &str, now_ms: u64) -> MxResolution {
    let mut prng = SplitMix64(1);
    MxResolver::new(vec![name("relay.example.org")], 100)
        .with_local_addresses(vec![ip("192.0.2.2")])
        .resolve_mx(world, domain, now_ms, &mut || prng.next_u64())
}

/// Every note of a resolution as the trace writes it, joined by "; ".
fn notes_text(resolution: &MxResolution) -> String {
    resolution
        .notes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_relay_knows_itself_by_its_address_too() {
    // RFC 5321 5.1: "any of the names or addresses by which it might be known". The relay
    // is 192.0.2.2; the list names it as another host and through an alias of another name.
    let relayed = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "primary.example.org"),
            mx("@", 20, "backup.example.org"),
            mx("@", 30, "tertiary.example.org"),
            a("primary.example.org", "192.0.2.1"),
            a("backup.example.org", "192.0.2.2"),
            cname("tertiary.example.org", "relay.example.org"),
            a("relay.example.org", "192.0.2.2"),
        ],
    )]);
    // The relay is also known by 192.0.2.2 (its name is in none of these lists).
    let resolve_at_own_address =
        |world: &DnsWorld, domain: &str| resolve_as_relay_at_own_address(world, domain, 0);
    let r = resolve_at_own_address(&relayed, "example.org");
    assert_eq!(exchanges(&r), [("primary.example.org.".to_owned(), 10)]);
    assert!(
        r.notes.iter().any(|note| matches!(
            note,
            MxNote::DroppedOwnLevel { preference: 20, dropped, .. } if dropped.len() == 2
        )),
        "{:?}",
        r.notes
    );
    // Its own address at the best preference, or as the implicit MX: the mail would loop.
    let implicit = world(vec![zone("example.net", vec![a("@", "192.0.2.2")])]);
    for (world, domain) in [
        (world_with_own_address_first(), "example.org"),
        (implicit, "example.net"),
    ] {
        let r = resolve_at_own_address(&world, domain);
        assert_eq!(
            r.outcome.failure().map(|f| f.status),
            Some(EnhancedStatus::new(5, 4, 6)),
            "{domain}"
        );
    }
}

#[test]
fn a_relay_known_by_address_waits_for_a_better_host_whose_dns_is_down_or_finds_none() {
    // The by-name case gives 4.4.3 (retry) and 5.4.4; found by its address, the relay must
    // give the same, not "loops back to myself" (which bounced mail for good).
    let mut relayed = world(vec![
        zone(
            "example.org",
            vec![
                mx("@", 10, "mx1.example.net"),
                mx("@", 20, "backup.example.org"),
                a("backup.example.org", "192.0.2.2"),
            ],
        ),
        zone("example.net", vec![a("mx1.example.net", "192.0.2.1")]),
    ]);
    relayed.faults.push(servfail_until("example.net", 60_000));
    let resolve_at = |world: &DnsWorld, now_ms: u64| {
        resolve_as_relay_at_own_address(world, "example.org", now_ms)
    };
    assert_eq!(
        resolve_at(&relayed, 0).outcome,
        MxOutcome::TemporaryFailure {
            reason: Outcome::ServFail
        }
    );
    assert_eq!(
        exchanges(&resolve_at(&relayed, 60_000)),
        [("mx1.example.net.".to_owned(), 10)]
    );
    // The better host has no address at all: nobody can take the mail (5.4.4).
    let no_address = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "mx1.example.org"),
            mx("@", 20, "backup.example.org"),
            a("backup.example.org", "192.0.2.2"),
        ],
    )]);
    assert_eq!(resolve_at(&no_address, 0).outcome, MxOutcome::NoAddresses);
}

#[test]
fn hosts_a_relay_drops_by_its_address_are_not_left_out_for_now() {
    // RFC 5321 5.1: once the relay finds itself at preference 20, every host at 20 and
    // above "MUST be discarded from consideration": one whose lookup failed is no host worth
    // waiting for, nor is one a draw among too many hosts left out at those levels.
    let mut relayed = world(vec![
        zone(
            "example.org",
            vec![
                mx("@", 10, "mx1.example.org"),
                mx("@", 20, "backup.example.org"),
                mx("@", 30, "mx3.example.net"),
                mx("@", 30, "nowhere.example.org"),
                a("mx1.example.org", "192.0.2.1"),
                a("backup.example.org", "192.0.2.2"),
            ],
        ),
        zone("example.net", vec![a("mx3.example.net", "192.0.2.3")]),
    ]);
    relayed.faults.push(servfail_until("example.net", 60_000));
    let r = resolve_as_relay_at_own_address(&relayed, "example.org", 0);
    assert_eq!(exchanges(&r), [("mx1.example.org.".to_owned(), 10)]);
    assert!(!r.left_out_for_now(), "{:?}", r.notes);
    let text = notes_text(&r);
    assert!(!text.contains("skipped"), "{text}");
    let Some(MxNote::DroppedOwnLevel { dropped, .. }) = r
        .notes
        .iter()
        .find(|note| matches!(note, MxNote::DroppedOwnLevel { .. }))
    else {
        panic!("no dropped level: {text}")
    };
    let mut dropped: Vec<String> = dropped.iter().map(ToString::to_string).collect();
    dropped.sort();
    assert_eq!(
        dropped,
        [
            "backup.example.org.",
            "mx3.example.net.",
            "nowhere.example.org."
        ]
    );
    // The same hosts cut off by the 16-host limit among equal preferences: nothing drawn
    // matters once their level is dropped.
    let mut records = vec![
        mx("@", 10, "mx1.example.org"),
        mx("@", 20, "backup.example.org"),
        a("mx1.example.org", "192.0.2.1"),
        a("backup.example.org", "192.0.2.2"),
    ];
    for n in 0..20 {
        records.push(mx("@", 30, &format!("mx{n}.example.org")));
        records.push(a(&format!("mx{n}.example.org"), "192.0.2.9"));
    }
    let crowded = world(vec![zone("example.org", records)]);
    let r = resolve_as_relay_at_own_address(&crowded, "example.org", 0);
    assert_eq!(exchanges(&r), [("mx1.example.org.".to_owned(), 10)]);
    assert!(!r.left_out_for_now(), "{:?}", r.notes);
}

fn world_with_own_address_first() -> DnsWorld {
    world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "alias.example.org"),
            mx("@", 20, "other.example.org"),
            a("alias.example.org", "192.0.2.2"),
            a("other.example.org", "192.0.2.9"),
        ],
    )])
}

#[test]
fn the_resolver_counts_message_ids_across_calls() {
    let world = example_org();
    let mut resolver = MxResolver::new(vec![], u16::MAX - 2);
    let mut prng = SplitMix64(3);
    let first = resolver.resolve_mx(&world, "example.org", 0, &mut || prng.next_u64());
    let second = resolver.resolve_mx(&world, "example.org", 0, &mut || prng.next_u64());
    let ids: Vec<u16> = first
        .exchanges
        .iter()
        .chain(&second.exchanges)
        .map(|e| e.message_id)
        .collect();
    assert_eq!(&ids[..4], &[u16::MAX - 2, u16::MAX - 1, u16::MAX, 0]);
    assert_eq!(ids.len(), 14);
    assert_eq!(resolver.next_message_id, 11);
}

#[test]
fn an_invalid_domain_is_refused_without_a_question() {
    let r = resolve(&example_org(), "exa mple.org");
    assert!(matches!(r.outcome, MxOutcome::InvalidDomain { .. }));
    assert!(r.exchanges.is_empty());
    assert!(r.outcome.failure().unwrap().permanent);
}

#[test]
fn a_null_mx_among_other_mx_is_ignored_not_obeyed() {
    // Invalid by RFC 7505 3 (validation says so), but the resolver must still do something.
    let world = DnsWorld::new(vec![zone(
        "example.org",
        vec![
            mx("@", 0, "."),
            mx("@", 10, "mx.example.org"),
            a("mx.example.org", "192.0.2.1"),
        ],
    )]);
    assert!(!world.validate().is_empty());
    let r = resolve(&world, "example.org");
    assert_eq!(exchanges(&r), [("mx.example.org.".to_owned(), 10)]);
    assert!(r
        .notes
        .contains(&MxNote::NullMxAmongOtherMx { preference: 0 }));
}

#[test]
fn a_world_can_be_read_from_a_scenario_file() {
    let json = r#"{
        "zones": [{
            "origin": "example.org",
            "records": [
                {"name": "@", "data": {"MX": {"preference": 10, "exchange": "mx1.example.org"}}},
                {"name": "mx1.example.org", "ttl_s": 300, "data": {"A": "192.0.2.10"}},
                {"name": "mx1.example.org", "data": {"AAAA": "2001:db8::10"}},
                {"name": "www.example.org", "data": {"CNAME": "example.org"}}
            ]
        }],
        "faults": [{"domain": "example.org", "fault": "ServFail", "until_ms": 5000}]
    }"#;
    let world: DnsWorld = serde_json::from_str(json).unwrap();
    assert!(world.validate().is_empty());
    assert_eq!(world.zones[0].records[0].ttl_s, 3600);
    assert!(matches!(
        resolve_with(&world, "example.org", 0, &[], 1).outcome,
        MxOutcome::TemporaryFailure { .. }
    ));
    assert_eq!(
        exchanges(&resolve_with(&world, "example.org", 5000, &[], 1)),
        [("mx1.example.org.".to_owned(), 10)]
    );
    let back: DnsWorld = serde_json::from_str(&serde_json::to_string(&world).unwrap()).unwrap();
    assert_eq!(back, world);
}

#[test]
fn the_same_inputs_give_the_same_resolution_and_bytes() {
    let world = tied_world();
    let a = resolve_with(&world, "example.org", 0, &[], 42);
    let b = resolve_with(&world, "example.org", 0, &[], 42);
    assert_eq!(a, b);
}

#[test]
fn more_mx_hosts_than_are_looked_up_leave_the_rest_out_and_are_not_cached() {
    use smtp_lab::dns::cache::MxCache;
    use smtp_lab::dns::MX_EXCHANGES_MAX;
    let count = MX_EXCHANGES_MAX + 4;
    let records = (0..count)
        .map(|n| mx("@", 10, &format!("mx{n}.example.org")))
        .chain((0..count).map(|n| a(&format!("mx{n}.example.org"), &format!("192.0.2.{}", n + 1))))
        .collect();
    let equal = world(vec![zone("example.org", records)]);
    // Every host is among the first 16 for some seed: the draw is made before the cut.
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let resolution = resolve_with(&equal, "example.org", 0, &[], seed);
        let used = exchanges(&resolution);
        assert_eq!(used.len(), MX_EXCHANGES_MAX);
        seen.extend(used.into_iter().map(|(exchange, _)| exchange));
        assert!(resolution.notes.contains(&MxNote::TooManyExchanges {
            used: MX_EXCHANGES_MAX,
            ignored: 4,
            drawn: true,
            // A sending host without addresses of its own has none to look for.
            own_address_checked: false,
        }));
        let note = resolution.notes.last().map(ToString::to_string);
        assert_eq!(
            note.as_deref(),
            Some(
                "16 MX hosts looked up, the 4 after them in this order left out (at most 16 \
                 per delivery; equal preferences are drawn again next time)"
            )
        );
        // Not kept: the next delivery resolves again and may draw the hosts left out.
        let mut cache = MxCache::default();
        cache.store(&resolution, 0);
        assert!(cache.is_empty());
    }
    assert_eq!(seen.len(), count);

    // A cut between two preferences leaves out the same hosts every time: that resolution
    // is kept, and the note says nothing of a draw.
    let records = (0..count)
        .map(|n| mx("@", n as u16, &format!("mx{n}.example.org")))
        .chain((0..count).map(|n| a(&format!("mx{n}.example.org"), &format!("192.0.2.{}", n + 1))))
        .collect();
    let ordered = world(vec![zone("example.org", records)]);
    let resolution = resolve_with(&ordered, "example.org", 0, &[], 1);
    assert_eq!(
        resolution.notes.last().map(ToString::to_string).as_deref(),
        Some("16 MX hosts looked up, the 4 after them in this order left out (at most 16 per delivery)")
    );
    let mut cache = MxCache::default();
    cache.store(&resolution, 0);
    assert!(!cache.is_empty());
}

#[test]
fn an_mx_host_that_is_an_alias_of_the_root_is_written_as_the_root() {
    let world = world(vec![zone(
        "example.org",
        vec![
            mx("@", 10, "alias.example.org"),
            cname("alias.example.org", "."),
        ],
    )]);
    let resolution = resolve(&world, "example.org");
    let notes: Vec<String> = resolution.notes.iter().map(ToString::to_string).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("MX host alias.example.org is an alias of .;")),
        "{notes:?}"
    );
}

/// RFC 5321 5.1 asks for the whole MX list to be inspected for the relay's own names and
/// addresses: when the 16-host cut falls among hosts of one preference, the relay may be one
/// of those left out, known only by its address. Its level is dropped whatever the draw.
#[test]
fn a_relay_left_out_by_the_cut_still_knows_itself_by_its_address() {
    use smtp_lab::dns::MX_EXCHANGES_MAX;
    let mut records = vec![
        mx("@", 5, "best.example.org"),
        a("best.example.org", "192.0.2.1"),
        // Another name for the relay (192.0.2.2), among the hosts of preference 10.
        mx("@", 10, "other-name.example.org"),
        a("other-name.example.org", "192.0.2.2"),
    ];
    for n in 0..MX_EXCHANGES_MAX + 4 {
        records.push(mx("@", 10, &format!("mx{n}.example.org")));
        records.push(a(
            &format!("mx{n}.example.org"),
            &format!("192.0.2.{}", n + 10),
        ));
    }
    let crowded = world(vec![zone("example.org", records)]);
    let mut left_out = 0;
    for seed in 0..40 {
        let mut prng = SplitMix64(seed);
        let r = MxResolver::new(vec![name("relay.example.org")], 100)
            .with_local_addresses(vec![ip("192.0.2.2")])
            .resolve_mx(&crowded, "example.org", 0, &mut || prng.next_u64());
        let text = notes_text(&r);
        assert_eq!(
            exchanges(&r),
            [("best.example.org.".to_owned(), 5)],
            "seed {seed}: {text}"
        );
        assert!(!r.left_out_for_now(), "{text}");
        // The level is dropped, every host there named, those left out by the cut too.
        let Some(MxNote::DroppedOwnLevel {
            preference,
            dropped,
            ..
        }) = r
            .notes
            .iter()
            .find(|note| matches!(note, MxNote::DroppedOwnLevel { .. }))
        else {
            panic!("no dropped level: {text}")
        };
        assert_eq!(*preference, 10, "{text}");
        assert_eq!(dropped.len(), MX_EXCHANGES_MAX + 5, "{text}");
        // Kept: the draw no longer matters.
        let mut cache = smtp_lab::dns::cache::MxCache::default();
        cache.store(&r, 0);
        assert!(!cache.is_empty(), "{text}");
        if text.contains("were looked up, until one had this host's address") {
            left_out += 1;
        }
    }
    // The relay's other name was left out by some draws (and found among the hosts looked
    // up by the others).
    assert!(left_out > 0 && left_out < 40, "{left_out}");
    // Without the relay among them, every host left out at that level is asked for A and
    // AAAA, and is still only left out for now.
    let mut records = Vec::new();
    for n in 0..MX_EXCHANGES_MAX + 4 {
        records.push(mx("@", 10, &format!("mx{n}.example.org")));
        records.push(a(
            &format!("mx{n}.example.org"),
            &format!("192.0.2.{}", n + 10),
        ));
    }
    let others = world(vec![zone("example.org", records)]);
    let r = resolve_as_relay_at_own_address(&others, "example.org", 0);
    assert_eq!(exchanges(&r).len(), MX_EXCHANGES_MAX);
    assert_eq!(r.exchanges.len(), 1 + 2 * (MX_EXCHANGES_MAX + 4));
    assert!(r.left_out_for_now());
    assert!(notes_text(&r).contains("were looked up, until one had this host's address"));
}
