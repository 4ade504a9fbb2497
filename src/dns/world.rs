//! The simulated DNS: a set of zones and per-domain faults, answering one question at a time
//! as a recursive resolver would answer a mail server (CNAMEs chased, RFC 1034 4.3.2).
//!
//! This is not a name server on the wire and has no cache, no delegation walk and no clock:
//! the time of each question is passed in, and the same world, question and time always give
//! the same answer. Building the wire form of an answer is `wire`'s job.

use super::name::DomainName;
use super::zone::{Record, RecordData, RecordType, Zone, ZoneError};
use super::{ANSWER_RECORDS_MAX, CNAME_CHAIN_MAX, FAULTS_MAX, ZONES_MAX};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The whole DNS of a scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsWorld {
    #[serde(default)]
    pub zones: Vec<Zone>,
    #[serde(default)]
    pub faults: Vec<DomainFault>,
}

/// A fault that makes every question about `domain`, or any name below it, fail while it is
/// active: `from_ms <= now_ms < until_ms` (either end open when absent). Faults apply to whole
/// subtrees because a real outage is usually a broken zone or unreachable name servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainFault {
    pub domain: String,
    pub fault: Fault,
    #[serde(default)]
    pub from_ms: Option<u64>,
    #[serde(default)]
    pub until_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The resolver answers SERVFAIL (RFC 1035 4.1.1 RCODE 2): a temporary failure.
    ServFail,
    /// No answer arrives at all; to the mail server it is a temporary failure like SERVFAIL.
    Timeout,
}

impl DomainFault {
    pub fn is_active_at(&self, now_ms: u64) -> bool {
        self.from_ms.is_none_or(|from| from <= now_ms)
            && self.until_ms.is_none_or(|until| now_ms < until)
    }
}

/// A question: a name and a type (class IN implied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub name: DomainName,
    pub qtype: RecordType,
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN {}", self.name, self.qtype)
    }
}

/// How a question ended. The first three are RCODEs (RFC 1035 4.1.1); `TimedOut` means no
/// response came back, so there is no response message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The name exists. With no answer records of the type asked, this is NODATA (RFC 2308 2.2).
    NoError,
    /// The name does not exist (RFC 1035 4.1.1 RCODE 3; RFC 2308 2.1).
    NxDomain,
    ServFail,
    TimedOut,
}

impl Outcome {
    pub fn is_temporary_failure(self) -> bool {
        matches!(self, Outcome::ServFail | Outcome::TimedOut)
    }

    /// The outcome as a trace writes it: the RCODE's name (RFC 1035 4.1.1), or that no
    /// answer came.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::NoError => "NOERROR",
            Outcome::NxDomain => "NXDOMAIN",
            Outcome::ServFail => "SERVFAIL",
            Outcome::TimedOut => "timed out",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an answer is a failure: a fault set by the scenario, or broken CNAME data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupProblem {
    /// An active fault on `domain` (the name asked or one it is below).
    Fault { domain: DomainName, fault: Fault },
    /// A CNAME chain comes back to `name`.
    CnameLoop { name: DomainName },
    /// A CNAME chain longer than [`CNAME_CHAIN_MAX`].
    CnameChainTooLong { length: usize },
}

impl fmt::Display for LookupProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupProblem::Fault { domain, fault } => {
                write!(f, "fault {fault:?} set on {domain}")
            }
            LookupProblem::CnameLoop { name } => {
                write!(f, "CNAME loop: the chain comes back to {name}")
            }
            LookupProblem::CnameChainTooLong { length } => write!(
                f,
                "CNAME chain longer than {length} links; resolvers give up (RFC 1034 3.6.2)"
            ),
        }
    }
}

/// The answer to one question. Records carry canonical names (see [`DomainName`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub question: Question,
    pub outcome: Outcome,
    /// The answer section: any CNAMEs followed, in order, then the records of the type asked
    /// at the end of the chain (RFC 1034 4.3.2 step 3a).
    pub answers: Vec<Record>,
    /// The authority section: the zone's SOA on a negative answer, when the zone has one
    /// (RFC 2308 3).
    pub authority: Vec<Record>,
    /// Set when the outcome is a failure, to say why.
    pub problem: Option<LookupProblem>,
}

impl Answer {
    /// The records of the asked type at the end of any CNAME chain.
    pub fn records_of_type(&self, qtype: RecordType) -> impl Iterator<Item = &Record> {
        self.answers
            .iter()
            .filter(move |r| r.data.record_type() == qtype)
    }

    /// The name the answer is about after CNAMEs (RFC 1034 3.6.2 "canonical name").
    pub fn canonical_name(&self) -> DomainName {
        self.answers
            .iter()
            .filter_map(|r| match &r.data {
                RecordData::Cname(target) => DomainName::parse(target).ok(),
                _ => None,
            })
            .next_back()
            .unwrap_or_else(|| self.question.name.clone())
    }
}

/// Something wrong in a world: in a zone, or world-wide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorldError {
    Zone(ZoneError),
    DuplicateZone {
        origin: String,
    },
    BadFaultDomain {
        index: usize,
        domain: String,
        error: super::name::NameError,
    },
    FaultEndsBeforeItStarts {
        index: usize,
    },
    TooManyZones {
        count: usize,
        max: usize,
    },
    TooManyFaults {
        count: usize,
        max: usize,
    },
}

impl fmt::Display for WorldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldError::Zone(e) => e.fmt(f),
            WorldError::DuplicateZone { origin } => {
                write!(f, "zone {origin} is defined more than once")
            }
            WorldError::BadFaultDomain {
                index,
                domain,
                error,
            } => write!(
                f,
                "faults[{index}]: domain \"{domain}\" is not valid: {error}"
            ),
            WorldError::FaultEndsBeforeItStarts { index } => {
                write!(
                    f,
                    "faults[{index}].until_ms: ends before it starts (from_ms)"
                )
            }
            WorldError::TooManyZones { count, max } => {
                write!(f, "{count} zones; at most {max}")
            }
            WorldError::TooManyFaults { count, max } => {
                write!(f, "{count} faults; at most {max}")
            }
        }
    }
}

impl std::error::Error for WorldError {}

impl DnsWorld {
    pub fn new(zones: Vec<Zone>) -> DnsWorld {
        DnsWorld {
            zones,
            faults: Vec::new(),
        }
    }

    /// Every problem in the world; empty means valid. Lookups work on invalid worlds too (they
    /// skip what they cannot read), so a scenario editor can show both.
    pub fn validate(&self) -> Vec<WorldError> {
        let mut errors = Vec::new();
        if self.zones.len() > ZONES_MAX {
            errors.push(WorldError::TooManyZones {
                count: self.zones.len(),
                max: ZONES_MAX,
            });
        }
        if self.faults.len() > FAULTS_MAX {
            errors.push(WorldError::TooManyFaults {
                count: self.faults.len(),
                max: FAULTS_MAX,
            });
        }
        let mut origins_seen: Vec<DomainName> = Vec::new();
        for zone in self.zones.iter().take(ZONES_MAX) {
            errors.extend(zone.validate().into_iter().map(WorldError::Zone));
            if let Ok(origin) = zone.origin_name() {
                if origins_seen.contains(&origin) {
                    errors.push(WorldError::DuplicateZone {
                        origin: zone.origin.clone(),
                    });
                } else {
                    origins_seen.push(origin);
                }
            }
        }
        for (index, fault) in self.faults.iter().enumerate().take(FAULTS_MAX) {
            if let Err(error) = DomainName::parse(&fault.domain) {
                errors.push(WorldError::BadFaultDomain {
                    index,
                    domain: fault.domain.clone(),
                    error,
                });
            }
            if let (Some(from), Some(until)) = (fault.from_ms, fault.until_ms) {
                if until < from {
                    errors.push(WorldError::FaultEndsBeforeItStarts { index });
                }
            }
        }
        errors
    }

    /// Whether some name has two or more MX records of one preference: hosts a sender tries in
    /// an order it draws at random (RFC 5321 5.1), so that a run's seed decides which is
    /// tried first.
    pub fn draws_among_equal_mx(&self) -> bool {
        self.zones.iter().any(|zone| {
            let mut seen: Vec<(String, u16)> = Vec::new();
            zone.canonical_records().into_iter().any(|record| {
                let RecordData::Mx { preference, .. } = record.data else {
                    return false;
                };
                let key = (record.name, preference);
                let repeated = seen.contains(&key);
                seen.push(key);
                repeated
            })
        })
    }

    /// The fault active at `now_ms` for `name`, if any; the first in list order wins.
    pub fn active_fault(&self, name: &DomainName, now_ms: u64) -> Option<(DomainName, Fault)> {
        self.faults
            .iter()
            .take(FAULTS_MAX)
            .filter(|f| f.is_active_at(now_ms))
            .filter_map(|f| DomainName::parse(&f.domain).ok().map(|d| (d, f.fault)))
            .find(|(domain, _)| name.is_at_or_below(domain))
    }

    /// The zone that holds `name`: the one with the longest origin at or above it (the first
    /// in list order among equals), with its canonical records. Choosing the longest origin is
    /// what a delegation does: a child zone's names are answered by the child, not the parent.
    fn zone_for(&self, name: &DomainName) -> Option<(DomainName, Vec<Record>)> {
        let mut best: Option<(DomainName, &Zone)> = None;
        for zone in self.zones.iter().take(ZONES_MAX) {
            let Ok(origin) = zone.origin_name() else {
                continue;
            };
            if !name.is_at_or_below(&origin) {
                continue;
            }
            let longer = best
                .as_ref()
                .is_none_or(|(b, _)| origin.label_count() > b.label_count());
            if longer {
                best = Some((origin, zone));
            }
        }
        best.map(|(origin, zone)| (origin, zone.canonical_records()))
    }

    /// Answers `qtype` for `qname` at `now_ms`, chasing CNAMEs across zones (at most
    /// [`CNAME_CHAIN_MAX`] links; a loop is SERVFAIL, as resolvers answer it).
    pub fn query(&self, qname: &DomainName, qtype: RecordType, now_ms: u64) -> Answer {
        let mut answer = Answer {
            question: Question {
                name: qname.clone(),
                qtype,
            },
            outcome: Outcome::NoError,
            answers: Vec::new(),
            authority: Vec::new(),
            problem: None,
        };
        let mut current = qname.clone();
        let mut chain: Vec<DomainName> = vec![current.clone()];
        loop {
            if let Some((domain, fault)) = self.active_fault(&current, now_ms) {
                answer.outcome = match fault {
                    Fault::ServFail => Outcome::ServFail,
                    Fault::Timeout => Outcome::TimedOut,
                };
                if fault == Fault::Timeout {
                    // No response at all: nothing of what was found reaches the asker.
                    answer.answers.clear();
                }
                answer.problem = Some(LookupProblem::Fault { domain, fault });
                return answer;
            }
            let Some((origin, records)) = self.zone_for(&current) else {
                // No zone anywhere holds the name: the parent (ultimately the root) denies it.
                answer.outcome = Outcome::NxDomain;
                return answer;
            };
            let at_name: Vec<&Record> = records
                .iter()
                .filter(|r| DomainName::parse(&r.name).is_ok_and(|n| n == current))
                .collect();
            // RFC 2308 3: the SOA of a negative answer carries how long the answer may be
            // cached, the smaller of its own TTL and its MINIMUM field.
            let soa = || {
                records
                    .iter()
                    .filter(|r| r.data.record_type() == RecordType::Soa)
                    .filter(|r| DomainName::parse(&r.name).is_ok_and(|n| n == origin))
                    .take(1)
                    .map(|r| {
                        let mut soa = r.clone();
                        if let RecordData::Soa { minimum_ttl_s, .. } = soa.data {
                            soa.ttl_s = soa.ttl_s.min(minimum_ttl_s);
                        }
                        soa
                    })
                    .collect::<Vec<_>>()
            };
            if at_name.is_empty() {
                // A name with nothing at it but names below it exists (an empty non-terminal,
                // RFC 8020 2): NODATA, not NXDOMAIN. So does a zone's origin, whatever the zone
                // holds (RFC 1034 4.2.1: the top node of a zone).
                let has_descendants = records.iter().any(|r| {
                    DomainName::parse(&r.name)
                        .is_ok_and(|n| n != current && n.is_at_or_below(&current))
                });
                answer.outcome = if has_descendants || current == origin {
                    Outcome::NoError
                } else {
                    Outcome::NxDomain
                };
                answer.authority = soa();
                return answer;
            }
            let cname = at_name.iter().find_map(|r| match &r.data {
                RecordData::Cname(target) => Some((r, target)),
                _ => None,
            });
            if let (Some((cname_record, target)), false) = (cname, qtype == RecordType::Cname) {
                answer.answers.push((*cname_record).clone());
                let Ok(target) = DomainName::parse(target) else {
                    answer.outcome = Outcome::ServFail;
                    return answer;
                };
                if chain.contains(&target) {
                    answer.outcome = Outcome::ServFail;
                    answer.problem = Some(LookupProblem::CnameLoop { name: target });
                    return answer;
                }
                if chain.len() > CNAME_CHAIN_MAX {
                    answer.outcome = Outcome::ServFail;
                    answer.problem = Some(LookupProblem::CnameChainTooLong {
                        length: CNAME_CHAIN_MAX,
                    });
                    return answer;
                }
                chain.push(target.clone());
                current = target;
                continue;
            }
            // An RRset holds each record once (RFC 2181 5): a duplicate in the data (which
            // validation reports) is answered once.
            let mut rrset: Vec<Record> = Vec::new();
            for record in at_name.iter().filter(|r| r.data.record_type() == qtype) {
                if rrset.len() == ANSWER_RECORDS_MAX {
                    break;
                }
                if !rrset.iter().any(|r| r.data == record.data) {
                    rrset.push((*record).clone());
                }
            }
            // RFC 2181 5.2: "In no case may a server send an RRSet with TTLs not all equal";
            // records written with different TTLs go out with the smallest, as clients would
            // treat them.
            if let Some(ttl_s) = rrset.iter().map(|r| r.ttl_s).min() {
                for record in &mut rrset {
                    record.ttl_s = ttl_s;
                }
            }
            answer.answers.extend(rrset);
            if answer.records_of_type(qtype).next().is_none() {
                answer.authority = soa();
            }
            return answer;
        }
    }
}
