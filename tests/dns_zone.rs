//! Zones: name checks, validation errors (what and where), zone-file rendering, and the
//! authoritative answers of the world (NXDOMAIN, NODATA, SOA in negative answers).

#![cfg(not(target_arch = "wasm32"))]

mod dns_common;

use dns_common::*;
use smtp_lab::dns::zone::NameField;
use smtp_lab::dns::{
    DnsWorld, DomainName, NameError, Outcome, Record, RecordData, RecordType, WorldError, Zone,
    ZoneErrorKind,
};

#[test]
fn names_are_checked_and_made_canonical() {
    assert_eq!(name("Mx1.Example.ORG").as_str(), "mx1.example.org.");
    assert_eq!(name("mx1.example.org.").as_str(), "mx1.example.org.");
    assert_eq!(
        name("mx1.example.org").without_final_dot(),
        "mx1.example.org"
    );
    assert!(name(".").is_root());
    assert_eq!(name("_dmarc.example.org").label_count(), 3);
    assert!(name("a.example.org").is_at_or_below(&name("example.org")));
    assert!(!name("badexample.org").is_at_or_below(&name("example.org")));
    assert!(name("example.org").is_at_or_below(&name(".")));

    let long_label = "a".repeat(64);
    let cases: Vec<(String, NameError)> = vec![
        ("".into(), NameError::Empty),
        (
            "a..b".into(),
            NameError::EmptyLabel {
                name: "a..b".into(),
            },
        ),
        (".a".into(), NameError::EmptyLabel { name: ".a".into() }),
        (
            format!("{long_label}.org"),
            NameError::LabelTooLong {
                label: long_label.clone(),
                length_octets: 64,
            },
        ),
        (
            "a b.org".into(),
            NameError::BadCharacter {
                label: "a b".into(),
                character: ' ',
            },
        ),
        (
            "bücher.de".into(),
            NameError::BadCharacter {
                label: "bücher".into(),
                character: 'ü',
            },
        ),
        (
            "-a.org".into(),
            NameError::HyphenAtLabelEdge { label: "-a".into() },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(DomainName::parse(&text), Err(expected), "{text:?}");
    }
    // 63 is fine; 253 characters (255 octets on the wire) is fine, 254 is not.
    assert!(DomainName::parse(&format!("{}.org", "a".repeat(63))).is_ok());
    let label = "a".repeat(63);
    let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(longest.len(), 253);
    assert!(DomainName::parse(&longest).is_ok());
    assert!(DomainName::parse(&format!("{longest}.")).is_ok());
    assert_eq!(
        DomainName::parse(&format!("{longest}b")),
        Err(NameError::NameTooLong { length_octets: 256 })
    );
    let message = DomainName::parse("bücher.de").unwrap_err().to_string();
    assert!(message.contains("xn--"), "{message}");
}

#[test]
fn a_zone_renders_in_zone_file_syntax() {
    let mut records = vec![
        mx("@", 10, "mx1.example.org"),
        mx("@", 20, "mx2.example.net."),
        a("MX1.example.org", "192.0.2.10"),
        aaaa("mx1.example.org", "2001:db8::10"),
        cname("www.example.org", "@"),
        record("@", RecordData::Ns("ns1.example.org".into())),
        record(
            "@",
            RecordData::Soa {
                mname: "ns1.example.org".into(),
                rname: "hostmaster.example.org".into(),
                serial: 2026112801,
                refresh_s: 7200,
                retry_s: 3600,
                expire_s: 1209600,
                minimum_ttl_s: 300,
            },
        ),
    ];
    records[2].ttl_s = 300;
    let zone = zone("Example.org", records);
    assert_eq!(
        zone.to_zone_file(),
        "$ORIGIN example.org.\n\
         example.org. 3600 IN MX 10 mx1.example.org.\n\
         example.org. 3600 IN MX 20 mx2.example.net.\n\
         mx1.example.org. 300 IN A 192.0.2.10\n\
         mx1.example.org. 3600 IN AAAA 2001:db8::10\n\
         www.example.org. 3600 IN CNAME example.org.\n\
         example.org. 3600 IN NS ns1.example.org.\n\
         example.org. 3600 IN SOA ns1.example.org. hostmaster.example.org. 2026112801 7200 \
         3600 1209600 300\n"
    );
    assert!(zone.validate().is_empty());
}

#[test]
fn a_null_mx_renders_as_mx_0_dot() {
    let zone = zone("nomail.example", vec![mx("@", 0, ".")]);
    assert_eq!(
        zone.to_zone_file(),
        "$ORIGIN nomail.example.\nnomail.example. 3600 IN MX 0 .\n"
    );
    assert!(zone.validate().is_empty());
}

#[test]
fn an_invalid_zone_still_renders() {
    let zone = zone("example.org", vec![mx("@", 10, "bad..name")]);
    assert_eq!(
        zone.to_zone_file(),
        "$ORIGIN example.org.\nexample.org. 3600 IN MX 10 bad..name.\n"
    );
}

fn kinds(zone: &Zone) -> Vec<(Option<usize>, ZoneErrorKind)> {
    zone.validate()
        .into_iter()
        .map(|e| (e.record_index, e.kind))
        .collect()
}

#[test]
fn a_cname_cannot_share_its_name_with_other_data() {
    let z = zone(
        "example.org",
        vec![
            a("www.example.org", "192.0.2.1"),
            cname("www.example.org", "example.org"),
        ],
    );
    assert_eq!(
        kinds(&z),
        [(
            Some(1),
            ZoneErrorKind::CnameWithOtherData {
                name: "www.example.org.".into(),
                other: RecordType::A
            }
        )]
    );
    let message = z.validate()[0].to_string();
    assert_eq!(
        message,
        "zone example.org, records[1]: www.example.org. has a CNAME and also A data; a name \
         with a CNAME has no other data (RFC 1034 3.6.2, RFC 2181 10.1)"
    );
    // Also at the apex, where it most often happens: a CNAME next to MX.
    let z = zone(
        "example.org",
        vec![cname("@", "other.example"), mx("@", 10, "mx.example.org")],
    );
    assert!(matches!(
        kinds(&z)[0].1,
        ZoneErrorKind::CnameWithOtherData {
            other: RecordType::Mx,
            ..
        }
    ));
    let z = zone(
        "example.org",
        vec![
            cname("w.example.org", "a.example"),
            cname("w.example.org", "b.example"),
        ],
    );
    assert!(matches!(
        kinds(&z)[0],
        (Some(1), ZoneErrorKind::SeveralCnames { .. })
    ));
}

#[test]
fn an_mx_exchange_that_is_an_ip_address_is_refused() {
    for exchange in ["192.0.2.1", "[192.0.2.1]", "2001:db8::1"] {
        let z = zone("example.org", vec![mx("@", 10, exchange)]);
        let errors = kinds(&z);
        assert_eq!(
            errors[0],
            (
                Some(0),
                ZoneErrorKind::AddressWhereNameBelongs {
                    field: NameField::Exchange,
                    text: exchange.into()
                }
            ),
            "{exchange}"
        );
        assert!(z.validate()[0].to_string().contains("is an IP address"));
    }
}

/// Each kind of record is refused with its own rule: a CNAME's target is a name (any name,
/// even another alias), an NS record's a name server's host name.
#[test]
fn a_cname_or_ns_target_that_is_an_ip_address_is_refused_with_its_own_rule() {
    let ns = Record {
        name: "@".into(),
        ttl_s: 3600,
        data: RecordData::Ns("192.0.2.1".into()),
    };
    for (record, field, rule) in [
        (
            cname("x.example.org", "192.0.2.1"),
            NameField::CnameTarget,
            "CNAME target \"192.0.2.1\" is an IP address; it must be a domain name, the \
             canonical name the alias stands for (RFC 1035 3.3.1)",
        ),
        (
            ns,
            NameField::NsHost,
            "NS host name \"192.0.2.1\" is an IP address; it must be the host name of a name \
             server, which has A/AAAA records (RFC 1035 3.3.11)",
        ),
    ] {
        let z = zone("example.org", vec![record]);
        assert_eq!(
            kinds(&z)[0],
            (
                Some(0),
                ZoneErrorKind::AddressWhereNameBelongs {
                    field,
                    text: "192.0.2.1".into()
                }
            )
        );
        assert_eq!(
            z.validate()[0].to_string(),
            format!("zone example.org, records[0]: {rule}")
        );
    }
}

#[test]
fn bad_names_say_which_field_and_which_record() {
    let long = "x".repeat(64);
    let z = zone(
        "example.org",
        vec![
            a("ok.example.org", "192.0.2.1"),
            mx("@", 10, &format!("{long}.example.org")),
        ],
    );
    let errors = z.validate();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].record_index, Some(1));
    assert!(matches!(
        &errors[0].kind,
        ZoneErrorKind::BadName {
            field: NameField::Exchange,
            error: NameError::LabelTooLong {
                length_octets: 64,
                ..
            },
            ..
        }
    ));
    let text = errors[0].to_string();
    assert!(
        text.starts_with("zone example.org, records[1]: MX exchange"),
        "{text}"
    );
    assert!(text.contains("at most 63 (RFC 1035 2.3.4)"), "{text}");

    let z = zone("exa_mple..org", vec![]);
    assert!(matches!(
        kinds(&z)[0],
        (
            None,
            ZoneErrorKind::BadName {
                field: NameField::Origin,
                ..
            }
        )
    ));
}

#[test]
fn names_outside_the_zone_are_refused_with_a_hint() {
    let z = zone("example.org", vec![a("mx1", "192.0.2.1")]);
    let errors = z.validate();
    assert!(matches!(errors[0].kind, ZoneErrorKind::OutsideZone { .. }));
    assert!(errors[0].to_string().contains("names are absolute"));
}

#[test]
fn other_rules_are_checked() {
    let mut big_ttl = a("a.example.org", "192.0.2.1");
    big_ttl.ttl_s = u32::MAX;
    let z = zone(
        "example.org",
        vec![
            mx("@", 0, "."),
            mx("@", 10, "mx.example.org"),
            mx("x.example.org", 5, "."),
            big_ttl,
            a("b.example.org", "192.0.2.2"),
            a("b.example.org", "192.0.2.2"),
            soa("b.example.org"),
        ],
    );
    let errors = kinds(&z);
    assert!(errors.contains(&(
        Some(0),
        ZoneErrorKind::NullMxWithOtherMx {
            name: "example.org.".into()
        }
    )));
    assert!(errors.contains(&(
        Some(2),
        ZoneErrorKind::NullMxPreferenceNotZero {
            name: "x.example.org.".into(),
            preference: 5
        }
    )));
    assert!(errors.contains(&(Some(3), ZoneErrorKind::TtlTooLarge { ttl_s: u32::MAX })));
    assert!(errors.contains(&(
        Some(5),
        ZoneErrorKind::DuplicateRecord {
            name: "b.example.org.".into(),
            first_index: 4
        }
    )));
    assert!(errors.contains(&(
        Some(6),
        ZoneErrorKind::SoaMisplaced {
            name: "b.example.org.".into()
        }
    )));
    // Sorted by record.
    let indexes: Vec<_> = errors.iter().map(|(i, _)| *i).collect();
    let mut sorted = indexes.clone();
    sorted.sort();
    assert_eq!(indexes, sorted);
}

#[test]
fn world_validation_finds_duplicate_zones_and_bad_faults() {
    let mut world = DnsWorld::new(vec![
        zone("example.org", vec![]),
        zone("EXAMPLE.org.", vec![]),
    ]);
    world.faults.push(smtp_lab::dns::DomainFault {
        domain: "bad domain".into(),
        fault: smtp_lab::dns::Fault::ServFail,
        from_ms: None,
        until_ms: None,
    });
    let errors = world.validate();
    assert!(matches!(errors[0], WorldError::DuplicateZone { .. }));
    assert!(matches!(
        errors[1],
        WorldError::BadFaultDomain { index: 0, .. }
    ));
}

#[test]
fn the_world_answers_like_an_authoritative_server() {
    let soa = record(
        "@",
        RecordData::Soa {
            mname: "ns1.example.org".into(),
            rname: "hostmaster.example.org".into(),
            serial: 1,
            refresh_s: 7200,
            retry_s: 3600,
            expire_s: 1209600,
            minimum_ttl_s: 300,
        },
    );
    let world = world(vec![
        zone(
            "example.org",
            vec![
                soa,
                mx("@", 10, "mx.example.org"),
                a("mx.example.org", "192.0.2.1"),
                a("deep.under.example.org", "192.0.2.2"),
                a("child.example.org", "192.0.2.99"),
            ],
        ),
        zone("child.example.org", vec![a("@", "192.0.2.3")]),
    ]);
    let answer = world.query(&name("mx.example.org"), RecordType::A, 0);
    assert_eq!(answer.outcome, Outcome::NoError);
    assert_eq!(answer.answers, [a("mx.example.org.", "192.0.2.1")]);
    assert!(answer.authority.is_empty());

    // NODATA: the name exists, the type does not. The SOA comes back (RFC 2308).
    let answer = world.query(&name("mx.example.org"), RecordType::Aaaa, 0);
    assert_eq!(answer.outcome, Outcome::NoError);
    assert!(answer.answers.is_empty());
    assert_eq!(answer.authority[0].data.record_type(), RecordType::Soa);

    // NXDOMAIN, with SOA. Its TTL says how long the denial may be cached: the smaller of
    // the SOA's TTL and its MINIMUM field (RFC 2308 3).
    let answer = world.query(&name("nope.example.org"), RecordType::A, 0);
    assert_eq!(answer.outcome, Outcome::NxDomain);
    assert_eq!(answer.authority.len(), 1);
    assert_eq!(answer.authority[0].ttl_s, 300);

    // An empty non-terminal exists (RFC 8020).
    let answer = world.query(&name("under.example.org"), RecordType::A, 0);
    assert_eq!(answer.outcome, Outcome::NoError);

    // The child zone answers for its own names.
    let answer = world.query(&name("child.example.org"), RecordType::A, 0);
    assert_eq!(answer.answers, [a("child.example.org.", "192.0.2.3")]);

    // No zone at all.
    let answer = world.query(&name("example.com"), RecordType::Mx, 0);
    assert_eq!(answer.outcome, Outcome::NxDomain);
}

#[test]
fn a_zone_origin_exists_even_with_nothing_at_it() {
    // RFC 1034 4.2.1: the origin is the zone's top node. Here it holds no record and has no
    // names below it: its MX question is NODATA, as for any name that exists, not NXDOMAIN
    // (which would bounce mail for the domain as nonexistent); a name under it that is not
    // there is still NXDOMAIN.
    let world = world(vec![zone("empty.example", vec![])]);
    let answer = world.query(&name("empty.example"), RecordType::Mx, 0);
    assert_eq!(answer.outcome, Outcome::NoError);
    assert!(answer.answers.is_empty());
    let answer = world.query(&name("www.empty.example"), RecordType::A, 0);
    assert_eq!(answer.outcome, Outcome::NxDomain);
}

#[test]
fn faults_cover_the_domain_and_everything_below_it_for_their_time() {
    let mut world = world(vec![zone(
        "example.org",
        vec![a("mx.example.org", "192.0.2.1")],
    )]);
    world.faults.push(smtp_lab::dns::DomainFault {
        domain: "example.org".into(),
        fault: smtp_lab::dns::Fault::ServFail,
        from_ms: Some(100),
        until_ms: Some(200),
    });
    let at = |t| {
        world
            .query(&name("mx.example.org"), RecordType::A, t)
            .outcome
    };
    assert_eq!(at(99), Outcome::NoError);
    assert_eq!(at(100), Outcome::ServFail);
    assert_eq!(at(199), Outcome::ServFail);
    assert_eq!(at(200), Outcome::NoError);
}

#[test]
fn an_rrset_goes_out_with_one_ttl() {
    // RFC 2181 5.2: "In no case may a server send an RRSet with TTLs not all equal". Records
    // written with different TTLs are answered with the smallest.
    let mut slow = a("mx.example.org", "192.0.2.1");
    slow.ttl_s = 3600;
    let mut quick = a("mx.example.org", "192.0.2.2");
    quick.ttl_s = 5;
    let world = world(vec![zone("example.org", vec![slow, quick])]);
    let answer = world.query(&name("mx.example.org"), RecordType::A, 0);
    assert_eq!(answer.answers.len(), 2);
    assert!(answer.answers.iter().all(|r| r.ttl_s == 5), "{answer:?}");
}

#[test]
fn a_stray_soa_is_reported_and_the_origins_own_is_not() {
    // "a.example.org." sorts before "example.org.": it must not make the origin's SOA the
    // second one.
    let z = zone("example.org", vec![soa("@"), soa("a.example.org")]);
    let errors = kinds(&z);
    assert_eq!(
        errors,
        [(
            Some(1),
            ZoneErrorKind::SoaMisplaced {
                name: "a.example.org.".into()
            }
        )]
    );
    let two = zone(
        "example.org",
        vec![soa("@"), {
            let mut again = soa("@");
            again.ttl_s = 60;
            again
        }],
    );
    assert!(kinds(&two).contains(&(
        Some(1),
        ZoneErrorKind::SoaMisplaced {
            name: "example.org.".into()
        }
    )));
}

#[test]
fn more_records_of_one_type_at_a_name_than_an_answer_carries_are_refused() {
    let many = |count: usize| -> Vec<_> {
        (0..count)
            .map(|n| mx("@", n as u16, &format!("mx{n}.example.org")))
            .chain((0..count).map(|n| a("mx0.example.org", &format!("192.0.2.{}", n + 1))))
            .collect()
    };
    assert!(zone("example.org", many(smtp_lab::dns::ANSWER_RECORDS_MAX))
        .validate()
        .is_empty());
    let z = zone("example.org", many(smtp_lab::dns::ANSWER_RECORDS_MAX + 1));
    let errors = z.validate();
    assert_eq!(errors.len(), 2, "{errors:?}");
    // The first record over the limit is named, for each of the two RRsets.
    assert_eq!(
        errors[0].record_index,
        Some(smtp_lab::dns::ANSWER_RECORDS_MAX)
    );
    assert_eq!(
        errors[0].to_string(),
        "zone example.org, records[64]: example.org. has 65 MX records; at most 64 of one type \
         at one name, the most one answer carries here"
    );
    assert!(
        errors[1]
            .to_string()
            .contains("mx0.example.org. has 65 A records"),
        "{}",
        errors[1]
    );
    // The A records follow the 65 MX records: the 65th of them is record 65 + 64.
    assert_eq!(errors[1].record_index, Some(65 + 64));
}

#[test]
fn a_world_draws_among_mx_hosts_only_where_one_name_shares_a_preference() {
    let zone = |records: Vec<Record>| DnsWorld::new(vec![zone("example.org", records)]);
    // '@' and the name written out are one owner: its two preference-10 hosts are drawn.
    assert!(zone(vec![mx("@", 10, "mx1"), mx("example.org.", 10, "mx2")]).draws_among_equal_mx());
    // Different preferences, or equal ones at different names, leave nothing to draw.
    assert!(!zone(vec![mx("@", 10, "mx1"), mx("@", 20, "mx2")]).draws_among_equal_mx());
    assert!(!zone(vec![mx("@", 10, "mx1"), mx("sub", 10, "mx2")]).draws_among_equal_mx());
    assert!(!zone(vec![a("@", "192.0.2.1")]).draws_among_equal_mx());
    assert!(!DnsWorld::new(Vec::new()).draws_among_equal_mx());
}
