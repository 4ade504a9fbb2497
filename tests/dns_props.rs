//! Property tests over random worlds, valid or not: nothing panics, MX targets always come in
//! preference order with addresses, the same inputs give the same resolution, and every
//! recorded message parses back to what was recorded.

#![cfg(not(target_arch = "wasm32"))]

mod dns_common;

use dns_common::SplitMix64;
use proptest::prelude::*;
use smtp_lab::dns::wire::decode;
use smtp_lab::dns::{
    resolve_mx, DnsWorld, DomainFault, DomainName, Fault, MxOutcome, Record, RecordData,
    RecordType, Zone,
};

/// A small pool, so that random records collide, alias each other and form loops.
const NAMES: &[&str] = &[
    "@",
    "example.org",
    "mx1.example.org",
    "mx2.example.org",
    "MX3.Example.Org.",
    "a.example.org",
    "example.net",
    "mx.example.net",
    "deep.a.example.org",
    ".",
    "org",
];

/// Names no valid zone holds, mixed in now and then.
const BAD_NAMES: &[&str] = &["bad..name", "192.0.2.1", "-bad.example.org", "x y", ""];

const ORIGINS: &[&str] = &["example.org", "example.net", "org", "a.example.org"];

fn a_name() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(NAMES).prop_map(str::to_owned),
        1 => prop::sample::select(BAD_NAMES).prop_map(str::to_owned),
    ]
}

fn record_data() -> impl Strategy<Value = RecordData> {
    prop_oneof![
        6 => (0u16..4, a_name()).prop_map(|(p, e)| RecordData::Mx {
            preference: p * 10,
            exchange: e
        }),
        6 => any::<u32>().prop_map(|v| RecordData::A(v.into())),
        1 => any::<u128>().prop_map(|v| RecordData::Aaaa(v.into())),
        2 => a_name().prop_map(RecordData::Cname),
        1 => a_name().prop_map(RecordData::Ns),
        1 => (a_name(), a_name(), any::<u32>()).prop_map(|(m, r, n)| RecordData::Soa {
            mname: m,
            rname: r,
            serial: n,
            refresh_s: n,
            retry_s: n / 2,
            expire_s: n,
            minimum_ttl_s: n % 1000,
        }),
    ]
}

fn a_record() -> impl Strategy<Value = Record> {
    (
        a_name(),
        prop_oneof![Just(3600u32), any::<u32>()],
        record_data(),
    )
        .prop_map(|(name, ttl_s, data)| Record { name, ttl_s, data })
}

fn a_zone() -> impl Strategy<Value = Zone> {
    (
        prop_oneof![
            8 => prop::sample::select(ORIGINS).prop_map(str::to_owned),
            1 => prop::sample::select(BAD_NAMES).prop_map(str::to_owned),
        ],
        prop::collection::vec(a_record(), 0..20),
    )
        .prop_map(|(origin, records)| Zone { origin, records })
}

fn a_fault() -> impl Strategy<Value = DomainFault> {
    (
        a_name(),
        prop_oneof![Just(Fault::ServFail), Just(Fault::Timeout)],
        prop::option::of(0u64..100),
        prop::option::of(0u64..100),
    )
        .prop_map(|(domain, fault, from_ms, until_ms)| DomainFault {
            domain,
            fault,
            from_ms,
            until_ms,
        })
}

fn a_world() -> impl Strategy<Value = DnsWorld> {
    (
        prop::collection::vec(a_zone(), 0..5),
        prop::collection::vec(a_fault(), 0..2),
    )
        .prop_map(|(zones, faults)| DnsWorld { zones, faults })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resolution_never_panics_and_targets_are_in_preference_order(
        world in a_world(),
        domain in prop_oneof![
            3 => Just("example.org".to_owned()),
            1 => Just("example.net".to_owned()),
            2 => a_name(),
        ],
        local in prop::option::of(a_name()),
        now_ms in 0u64..120,
        seed in any::<u64>(),
    ) {
        let _ = world.validate();
        for zone in &world.zones {
            let _ = zone.to_zone_file();
        }
        let local: Vec<DomainName> =
            local.iter().filter_map(|n| DomainName::parse(n).ok()).collect();
        let mut prng = SplitMix64(seed);
        let resolution = resolve_mx(&world, &domain, now_ms, &local, 0, &mut || prng.next_u64());

        let targets = resolution.outcome.targets();
        prop_assert!(targets.windows(2).all(|w| w[0].preference <= w[1].preference));
        prop_assert!(targets.iter().all(|t| !t.addresses.is_empty()));
        prop_assert!(targets.iter().all(|t| !t.exchange.is_root()));
        prop_assert!(targets.iter().all(|t| !local.contains(&t.exchange)));
        prop_assert_eq!(resolution.outcome.failure().is_none(), !targets.is_empty());
        if let MxOutcome::ImplicitMx(target) = &resolution.outcome {
            prop_assert_eq!(target.preference, 0);
        }
        prop_assert!(resolution.exchanges.len() <= 1 + 2 * smtp_lab::dns::MX_EXCHANGES_MAX);
        // The first question is always the MX question for the domain, when it is a name.
        if let Some(first) = resolution.exchanges.first() {
            prop_assert_eq!(first.question.qtype, RecordType::Mx);
        }

        let mut prng = SplitMix64(seed);
        let again = resolve_mx(&world, &domain, now_ms, &local, 0, &mut || prng.next_u64());
        prop_assert_eq!(&again, &resolution);

        for exchange in &resolution.exchanges {
            let query = decode(&exchange.query_wire).expect("queries parse");
            prop_assert_eq!(&query.questions, &vec![exchange.question.clone()]);
            match &exchange.response_wire {
                None => prop_assert_eq!(exchange.answer.outcome, smtp_lab::dns::Outcome::TimedOut),
                Some(bytes) => {
                    let response = decode(bytes).expect("responses parse");
                    prop_assert_eq!(response.message_id, exchange.message_id);
                    prop_assert_eq!(response.rcode, exchange.answer.outcome);
                    prop_assert_eq!(&response.answers, &exchange.answer.answers);
                    prop_assert_eq!(&response.authority, &exchange.answer.authority);
                }
            }
        }
    }

    #[test]
    fn valid_worlds_serialise_and_read_back(world in a_world()) {
        let json = serde_json::to_string(&world).expect("serialises");
        let back: DnsWorld = serde_json::from_str(&json).expect("reads back");
        prop_assert_eq!(back, world);
    }

    #[test]
    fn queries_never_panic_and_answer_the_type_asked(
        world in a_world(),
        name in a_name(),
        qtype in prop::sample::select(vec![
            RecordType::A, RecordType::Aaaa, RecordType::Cname,
            RecordType::Mx, RecordType::Ns, RecordType::Soa,
        ]),
        now_ms in 0u64..120,
    ) {
        let Ok(name) = DomainName::parse(&name) else { return Ok(()); };
        let answer = world.query(&name, qtype, now_ms);
        // The answer is CNAMEs, then only records of the type asked.
        let first_other = answer
            .answers
            .iter()
            .position(|r| r.data.record_type() != RecordType::Cname)
            .unwrap_or(answer.answers.len());
        prop_assert!(answer.answers[first_other..]
            .iter()
            .all(|r| r.data.record_type() == qtype));
        prop_assert!(answer.answers.len() <= smtp_lab::dns::CNAME_CHAIN_MAX + 1
            + smtp_lab::dns::ANSWER_RECORDS_MAX);
    }

    /// Worlds built to resolve: one domain, up to twelve MX hosts with random preferences,
    /// some with addresses, some failing, some being this host.
    #[test]
    fn mx_lists_are_sorted_pruned_and_complete(
        mx in prop::collection::vec((0u16..5, 0usize..8), 1..12),
        with_address in prop::collection::vec(any::<bool>(), 8),
        failing_host in prop::option::of(0usize..8),
        local_host in prop::option::of(0usize..8),
        seed in any::<u64>(),
    ) {
        let host = |i: usize| format!("h{i}.example.org");
        let mut records: Vec<Record> = mx
            .iter()
            .map(|(preference, i)| Record {
                name: "@".into(),
                ttl_s: 60,
                data: RecordData::Mx { preference: preference * 10, exchange: host(*i) },
            })
            .collect();
        records.dedup();
        for (i, has) in with_address.iter().enumerate() {
            if *has {
                records.push(Record {
                    name: host(i),
                    ttl_s: 60,
                    data: RecordData::A(std::net::Ipv4Addr::new(192, 0, 2, i as u8)),
                });
            }
        }
        let faults = failing_host
            .map(|i| DomainFault { domain: host(i), fault: Fault::ServFail, from_ms: None, until_ms: None })
            .into_iter()
            .collect();
        let world = DnsWorld {
            zones: vec![Zone { origin: "example.org".into(), records }],
            faults,
        };
        let local: Vec<DomainName> =
            local_host.map(|i| DomainName::parse(&host(i)).unwrap()).into_iter().collect();
        let mut prng = SplitMix64(seed);
        let resolution =
            resolve_mx(&world, "example.org", 0, &local, 0, &mut || prng.next_u64());
        let targets = resolution.outcome.targets();
        prop_assert!(targets.windows(2).all(|w| w[0].preference <= w[1].preference));

        // Expected: the MX hosts above this host's level, that have an address and no fault.
        let own_level = mx
            .iter()
            .filter(|(_, i)| Some(*i) == local_host)
            .map(|(p, _)| p * 10)
            .min();
        let mut expected: Vec<(u16, String)> = mx
            .iter()
            .map(|(p, i)| (p * 10, *i))
            .filter(|(p, _)| own_level.is_none_or(|own| *p < own))
            .filter(|(_, i)| with_address[*i] && Some(*i) != failing_host)
            .map(|(p, i)| (p, format!("{}.", host(i))))
            .collect();
        expected.sort();
        expected.dedup();
        let mut got: Vec<(u16, String)> =
            targets.iter().map(|t| (t.preference, t.exchange.to_string())).collect();
        got.sort();
        prop_assert_eq!(got, expected.clone());
        if expected.is_empty() {
            prop_assert!(resolution.outcome.failure().is_some());
        }
    }
}
