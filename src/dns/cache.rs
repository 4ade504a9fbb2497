//! A mail server's cache of MX resolutions: a domain's hosts, kept for as long as the DNS said
//! they may be (RFC 1035 3.2.1 and 7.4: a record's TTL is how long it may be cached; RFC 2181
//! 8). A server that sends many messages to one domain asks DNS once, not once per message.
//!
//! Only resolutions that found hosts are kept. Failures are not: a temporary failure must be
//! asked again at the next attempt, and a permanent one ends the delivery anyway. The TTL of
//! the resolution is the smallest TTL among the records it used (the MX records and the hosts'
//! addresses), as the whole answer is only as fresh as its oldest part. Hosts of equal
//! preference are shuffled again on every use, as RFC 5321 5.1 asks for each delivery.

use super::name::DomainName;
use super::resolver::{shuffle_equal_preferences, MxNote, MxOutcome, MxResolution, RandomSource};
use super::zone::RecordData;
use std::collections::BTreeMap;

/// Most domains remembered at once; the one that expires soonest makes room for a new one.
pub const MX_CACHE_DOMAINS_MAX: usize = 4096;

/// A resolution taken from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedMx {
    /// The hosts, equal preferences freshly shuffled.
    pub outcome: MxOutcome,
    /// How much longer the cache may keep it.
    pub remaining_ms: u64,
    /// What the resolution found on its way (an alias, this host's own level dropped, a host
    /// without an address): still true of the cached hosts, and the reason they are these.
    pub notes: Vec<MxNote>,
}

#[derive(Clone, Debug)]
struct Entry {
    outcome: MxOutcome,
    notes: Vec<MxNote>,
    expires_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MxCache {
    /// By the domain's canonical (lower-case, absolute) name.
    entries: BTreeMap<DomainName, Entry>,
}

impl MxCache {
    /// The cached hosts for `domain` at `now_ms`, if any are still fresh. Draws from `rng`
    /// only to shuffle equal preferences, exactly as a fresh resolution would.
    pub fn lookup<R: RandomSource + ?Sized>(
        &mut self,
        domain: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> Option<CachedMx> {
        let name = DomainName::parse(domain).ok()?;
        let entry = self.entries.get(&name)?;
        if now_ms >= entry.expires_ms {
            self.entries.remove(&name);
            return None;
        }
        let remaining_ms = entry.expires_ms - now_ms;
        let mut outcome = entry.outcome.clone();
        if let MxOutcome::Targets(targets) = &mut outcome {
            shuffle_equal_preferences(targets, rng);
        }
        Some(CachedMx {
            outcome,
            remaining_ms,
            notes: entry.notes.clone(),
        })
    }

    /// Keeps a fresh resolution that found hosts, for the smallest TTL among its records.
    /// Anything else, and anything with a TTL of 0 (RFC 1035 3.2.1: "should not be cached"),
    /// is not kept.
    pub fn store(&mut self, resolution: &MxResolution, now_ms: u64) {
        if !matches!(
            resolution.outcome,
            MxOutcome::Targets(_) | MxOutcome::ImplicitMx(_)
        ) {
            return;
        }
        // A host left out because its address lookup failed for now must be tried again at
        // the next delivery, not skipped for the whole TTL; so must hosts left out because
        // there were more than are looked up, when the cut fell among equal preferences: the
        // next delivery's draw may pick them. (Hosts at a level this host dropped are not
        // left out for now: see `MxResolution::left_out_for_now`.)
        if resolution.left_out_for_now() {
            return;
        }
        let Ok(name) = DomainName::parse(&resolution.domain) else {
            return;
        };
        // The records used, and for a negative part of the answer (no MX: the implicit MX) the
        // negative TTL, the smaller of the SOA's TTL and its minimum (RFC 2308 5).
        let answers = resolution
            .exchanges
            .iter()
            .flat_map(|exchange| &exchange.answer.answers)
            .map(|record| record.ttl_s);
        let negative = resolution
            .exchanges
            .iter()
            .flat_map(|exchange| &exchange.answer.authority)
            .filter_map(|record| match record.data {
                RecordData::Soa { minimum_ttl_s, .. } => Some(record.ttl_s.min(minimum_ttl_s)),
                _ => None,
            });
        let mut negative = negative.peekable();
        // RFC 2308 5: a negative answer without an SOA is not cached, and an implicit MX
        // rests on one (the domain has no MX records).
        if matches!(resolution.outcome, MxOutcome::ImplicitMx(_)) && negative.peek().is_none() {
            return;
        }
        let ttl_s = answers.chain(negative).min().unwrap_or(0);
        if ttl_s == 0 {
            return;
        }
        if self.entries.len() >= MX_CACHE_DOMAINS_MAX && !self.entries.contains_key(&name) {
            self.evict(now_ms);
        }
        self.entries.insert(
            name,
            Entry {
                outcome: resolution.outcome.clone(),
                notes: resolution.notes.clone(),
                expires_ms: now_ms.saturating_add(u64::from(ttl_s) * 1000),
            },
        );
    }

    /// Drops every expired entry, or else the one that expires soonest.
    fn evict(&mut self, now_ms: u64) {
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.expires_ms > now_ms);
        if self.entries.len() < before {
            return;
        }
        let soonest = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.expires_ms)
            .map(|(name, _)| name.clone());
        if let Some(name) = soonest {
            self.entries.remove(&name);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::resolver::MxResolver;
    use crate::dns::world::{DnsWorld, DomainFault, Fault};
    use crate::dns::zone::{Record, RecordData, Zone};
    use std::net::Ipv4Addr;

    fn record(name: &str, ttl_s: u32, data: RecordData) -> Record {
        Record {
            name: name.into(),
            ttl_s,
            data,
        }
    }

    fn mx(preference: u16, exchange: &str) -> RecordData {
        RecordData::Mx {
            preference,
            exchange: exchange.into(),
        }
    }

    fn world(mx_ttl_s: u32, a_ttl_s: u32) -> DnsWorld {
        DnsWorld::new(vec![Zone {
            origin: "example.test".into(),
            records: vec![
                record("example.test", mx_ttl_s, mx(10, "a.example.test")),
                record("example.test", mx_ttl_s, mx(10, "b.example.test")),
                record("example.test", mx_ttl_s, mx(20, "c.example.test")),
                record(
                    "a.example.test",
                    a_ttl_s,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 1)),
                ),
                record(
                    "b.example.test",
                    a_ttl_s,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 2)),
                ),
                record(
                    "c.example.test",
                    a_ttl_s,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 3)),
                ),
            ],
        }])
    }

    fn counter() -> impl FnMut() -> u64 {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state
        }
    }

    fn exchanges(outcome: &MxOutcome) -> Vec<String> {
        outcome
            .targets()
            .iter()
            .map(|t| t.exchange.without_final_dot().to_string())
            .collect()
    }

    #[test]
    fn a_resolution_is_kept_for_its_smallest_ttl() {
        let world = world(3600, 600);
        let mut rng = counter();
        let resolution = MxResolver::default().resolve_mx(&world, "Example.TEST", 1_000, &mut rng);
        let mut cache = MxCache::default();
        cache.store(&resolution, 1_000);
        let hit = cache.lookup("example.test.", 1_000 + 599_999, &mut rng);
        assert_eq!(hit.map(|h| h.remaining_ms), Some(1));
        assert!(cache
            .lookup("example.test", 1_000 + 600_000, &mut rng)
            .is_none());
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn equal_preferences_are_shuffled_on_every_use_and_order_is_kept() {
        let world = world(3600, 3600);
        let mut rng = counter();
        let resolution = MxResolver::default().resolve_mx(&world, "example.test", 0, &mut rng);
        let mut cache = MxCache::default();
        cache.store(&resolution, 0);
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let hit = cache.lookup("example.test", 10, &mut rng).expect("fresh");
            let order = exchanges(&hit.outcome);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], "c.example.test", "preference 20 stays last");
            firsts.insert(order[0].clone());
        }
        assert_eq!(
            firsts.len(),
            2,
            "both preference-10 hosts come first sometimes"
        );
    }

    #[test]
    fn failures_and_zero_ttls_are_not_kept() {
        let mut rng = counter();
        let mut cache = MxCache::default();
        let zero = MxResolver::default().resolve_mx(&world(0, 3600), "example.test", 0, &mut rng);
        cache.store(&zero, 0);
        let mut failing = world(3600, 3600);
        failing.faults.push(DomainFault {
            domain: "example.test".into(),
            fault: Fault::ServFail,
            from_ms: None,
            until_ms: None,
        });
        let servfail = MxResolver::default().resolve_mx(&failing, "example.test", 0, &mut rng);
        assert!(matches!(
            servfail.outcome,
            MxOutcome::TemporaryFailure { .. }
        ));
        cache.store(&servfail, 0);
        let nxdomain = MxResolver::default().resolve_mx(&failing, "nowhere.test", 0, &mut rng);
        cache.store(&nxdomain, 0);
        assert!(cache.is_empty());
        assert!(cache.lookup("example.test", 0, &mut rng).is_none());
        assert!(cache.lookup("not a domain", 0, &mut rng).is_none());
    }

    #[test]
    fn a_resolution_that_skipped_a_host_for_a_temporary_failure_is_not_kept() {
        let mut world = DnsWorld::new(vec![
            Zone {
                origin: "example.test".into(),
                records: vec![
                    record("example.test", 3600, mx(10, "mx1.provider.test")),
                    record("example.test", 3600, mx(20, "mx2.example.test")),
                    record(
                        "mx2.example.test",
                        3600,
                        RecordData::A(Ipv4Addr::new(192, 0, 2, 2)),
                    ),
                ],
            },
            Zone {
                origin: "provider.test".into(),
                records: vec![record(
                    "mx1.provider.test",
                    3600,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 1)),
                )],
            },
        ]);
        world.faults.push(DomainFault {
            domain: "provider.test".into(),
            fault: Fault::ServFail,
            from_ms: None,
            until_ms: Some(1_000),
        });
        let mut rng = counter();
        let resolution = MxResolver::default().resolve_mx(&world, "example.test", 0, &mut rng);
        assert_eq!(exchanges(&resolution.outcome), ["mx2.example.test"]);
        let mut cache = MxCache::default();
        cache.store(&resolution, 0);
        assert!(cache.lookup("example.test", 60_000, &mut rng).is_none());
    }

    #[test]
    fn an_implicit_mx_is_kept_no_longer_than_the_negative_ttl() {
        let world = DnsWorld::new(vec![Zone {
            origin: "example.test".into(),
            records: vec![
                record(
                    "example.test",
                    3600,
                    RecordData::Soa {
                        mname: "ns.example.test".into(),
                        rname: "hostmaster.example.test".into(),
                        serial: 1,
                        refresh_s: 3600,
                        retry_s: 600,
                        expire_s: 86400,
                        minimum_ttl_s: 300,
                    },
                ),
                record(
                    "example.test",
                    3600,
                    RecordData::A(Ipv4Addr::new(192, 0, 2, 9)),
                ),
            ],
        }]);
        let mut rng = counter();
        let resolution = MxResolver::default().resolve_mx(&world, "example.test", 0, &mut rng);
        assert!(matches!(resolution.outcome, MxOutcome::ImplicitMx(_)));
        let mut cache = MxCache::default();
        cache.store(&resolution, 0);
        assert!(cache.lookup("example.test", 299_999, &mut rng).is_some());
        assert!(cache.lookup("example.test", 300_000, &mut rng).is_none());
    }

    #[test]
    fn an_implicit_mx_without_an_soa_is_not_kept() {
        let world = DnsWorld::new(vec![Zone {
            origin: "example.test".into(),
            records: vec![record(
                "example.test",
                3600,
                RecordData::A(Ipv4Addr::new(192, 0, 2, 9)),
            )],
        }]);
        let mut rng = counter();
        let resolution = MxResolver::default().resolve_mx(&world, "example.test", 0, &mut rng);
        assert!(matches!(resolution.outcome, MxOutcome::ImplicitMx(_)));
        let mut cache = MxCache::default();
        cache.store(&resolution, 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_makes_room_by_expiry() {
        let world = world(3600, 3600);
        let mut rng = counter();
        let mut resolution = MxResolver::default().resolve_mx(&world, "example.test", 0, &mut rng);
        let mut cache = MxCache::default();
        for n in 0..MX_CACHE_DOMAINS_MAX + 10 {
            resolution.domain = format!("d{n}.test");
            cache.store(&resolution, n as u64);
        }
        assert_eq!(cache.len(), MX_CACHE_DOMAINS_MAX);
        assert!(
            cache.lookup("d0.test", 20, &mut rng).is_none(),
            "the oldest went"
        );
        assert!(cache.lookup("d4105.test", 20, &mut rng).is_some());
    }
}
