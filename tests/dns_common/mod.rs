//! Helpers shared by the DNS tests: a seeded PRNG standing in for the simulation's, and
//! short ways to build worlds.

#![allow(dead_code)]

use smtp_lab::dns::{DnsWorld, DomainFault, DomainName, Fault, Record, RecordData, Zone};

/// SplitMix64: tiny, seeded, and the same on every platform.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub fn name(text: &str) -> DomainName {
    DomainName::parse(text).expect("test names are valid")
}

pub fn record(name: &str, data: RecordData) -> Record {
    Record {
        name: name.to_owned(),
        ttl_s: 3600,
        data,
    }
}

pub fn mx(name: &str, preference: u16, exchange: &str) -> Record {
    record(
        name,
        RecordData::Mx {
            preference,
            exchange: exchange.to_owned(),
        },
    )
}

pub fn a(name: &str, address: &str) -> Record {
    record(name, RecordData::A(address.parse().expect("test address")))
}

pub fn aaaa(name: &str, address: &str) -> Record {
    record(
        name,
        RecordData::Aaaa(address.parse().expect("test address")),
    )
}

pub fn cname(name: &str, target: &str) -> Record {
    record(name, RecordData::Cname(target.to_owned()))
}

/// An SOA with every timer at 1 s, at `name`.
pub fn soa(name: &str) -> Record {
    record(
        name,
        RecordData::Soa {
            mname: "ns.example.org".into(),
            rname: "h.example.org".into(),
            serial: 1,
            refresh_s: 1,
            retry_s: 1,
            expire_s: 1,
            minimum_ttl_s: 1,
        },
    )
}

/// Every answer for `domain` (and the names below it) is SERVFAIL until `until_ms`.
pub fn servfail_until(domain: &str, until_ms: u64) -> DomainFault {
    DomainFault {
        domain: domain.to_owned(),
        fault: Fault::ServFail,
        from_ms: None,
        until_ms: Some(until_ms),
    }
}

pub fn zone(origin: &str, records: Vec<Record>) -> Zone {
    Zone {
        origin: origin.to_owned(),
        records,
    }
}

pub fn world(zones: Vec<Zone>) -> DnsWorld {
    let world = DnsWorld::new(zones);
    let errors = world.validate();
    assert!(errors.is_empty(), "test world is valid: {errors:?}");
    world
}
