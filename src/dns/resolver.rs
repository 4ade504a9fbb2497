//! MX resolution for mail (RFC 5321 5.1, RFC 7505): from a recipient's domain to an ordered
//! list of hosts and their addresses, or to the reason there is none, with every DNS exchange
//! recorded as question, answer and wire bytes.
//!
//! This is not a general stub resolver and it has no cache. It is sans-I/O and deterministic:
//! the time and a random source are passed in, message ids come from a counter the caller
//! owns, and the same world, domain, time and random stream always give the same resolution.

use super::name::{DomainName, NameError};
use super::wire;
use super::world::{Answer, DnsWorld, LookupProblem, Outcome, Question};
use super::zone::{RecordData, RecordType};
use super::MX_EXCHANGES_MAX;
use crate::smtp::reply::EnhancedStatus;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The random numbers the resolver needs to order MX hosts of equal preference
/// (RFC 5321 5.1: "randomize them to spread the load"). The simulation passes its own seeded
/// PRNG; the resolver never draws randomness of its own.
///
/// Any `FnMut() -> u64` closure is a `RandomSource`, so `&mut || prng.next_u64()` works.
pub trait RandomSource {
    /// The next 64 uniformly distributed bits.
    fn next_u64(&mut self) -> u64;
}

impl<F: FnMut() -> u64> RandomSource for F {
    fn next_u64(&mut self) -> u64 {
        self()
    }
}

/// A number in `0..bound` from one draw, by multiply-high (Lemire): no loop, so the number of
/// draws is always known, and the bias for the small bounds used here is below 2^-58.
fn index_below<R: RandomSource + ?Sized>(rng: &mut R, bound: usize) -> usize {
    debug_assert!(bound > 0, "callers pass the length of a non-empty group");
    let bound = bound.max(1) as u128;
    ((u128::from(rng.next_u64()) * bound) >> 64) as usize
}

/// The addresses an A or AAAA answer gives (the CNAMEs followed to them are not addresses).
fn addresses_answered(answer: &Answer, qtype: RecordType) -> impl Iterator<Item = IpAddr> + '_ {
    answer.answers.iter().filter_map(move |r| match r.data {
        RecordData::A(a) if qtype == RecordType::A => Some(IpAddr::V4(a)),
        RecordData::Aaaa(a) if qtype == RecordType::Aaaa => Some(IpAddr::V6(a)),
        _ => None,
    })
}

/// Shuffles each run of equal preference in a list already sorted by preference, with
/// Fisher-Yates from the back: a run of `k` hosts takes exactly `k - 1` draws, runs are
/// shuffled in preference order, and a list without ties takes no draws at all.
pub fn shuffle_equal_preferences<R: RandomSource + ?Sized>(targets: &mut [MxTarget], rng: &mut R) {
    let mut start = 0;
    while start < targets.len() {
        let preference = targets[start].preference;
        let end = start
            + targets[start..]
                .iter()
                .take_while(|t| t.preference == preference)
                .count();
        let run = &mut targets[start..end];
        for i in (1..run.len()).rev() {
            let j = index_below(rng, i + 1);
            run.swap(i, j);
        }
        start = end;
    }
}

/// One host to try, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxTarget {
    pub exchange: DomainName,
    pub preference: u16,
    /// The host's addresses: A records first, then AAAA, each in answer order.
    pub addresses: Vec<IpAddr>,
}

/// What a mail server does with the recipient's domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MxOutcome {
    /// MX records: hosts with at least one address, lower preference first, equal preferences
    /// in random order (RFC 5321 5.1).
    Targets(Vec<MxTarget>),
    /// No MX records: the domain itself, preference 0, because it has addresses
    /// (RFC 5321 5.1 "implicit MX").
    ImplicitMx(MxTarget),
    /// A single `MX 0 .`: the domain accepts no mail; do not connect (RFC 7505 4.1).
    NullMx,
    /// The domain does not exist: permanent.
    NxDomain,
    /// The domain exists but names no host with an address: MX hosts all without addresses,
    /// or no MX and no address of its own (RFC 5321 5.1: "MUST be reported as an error").
    NoAddresses,
    /// This host is the most preferred MX (or the implicit MX), so after dropping its own
    /// level nothing is left: sending would loop (RFC 5321 5.1).
    LoopsBackToMe { local_name: DomainName },
    /// SERVFAIL or no answer for the domain, or for every usable MX host: queue and retry.
    TemporaryFailure { reason: Outcome },
    /// The domain is not a valid name.
    InvalidDomain { error: NameError },
}

/// How a resolution that yields no host ends the delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxFailure {
    /// True: bounce now. False: keep queued and retry (RFC 5321 4.5.4.1).
    pub permanent: bool,
    pub status: EnhancedStatus,
    pub text: &'static str,
}

impl MxFailure {
    /// The reply code that reports it: 556 for a domain that takes no mail (RFC 7504 3,
    /// RFC 7505 4.1), else 550 for a permanent failure and 451 for a temporary one.
    pub fn reply_code(&self) -> u16 {
        match (self.permanent, self.status) {
            (true, status) if status == EnhancedStatus::new(5, 1, 10) => 556,
            (true, _) => 550,
            (false, _) => 451,
        }
    }
}

/// The texts of [`MxFailure`], one per kind of failure: the trace's MX results begin with
/// them, and the step notes tell the kinds apart by them.
pub mod failure_text {
    pub const NULL_MX: &str = "Recipient address has null MX";
    pub const NOT_FOUND: &str = "Host or domain name not found";
    pub const NO_ADDRESSES: &str = "Unable to route: no mail host with an address";
    pub const LOOPS_BACK: &str = "Mail for this domain loops back to myself";
    pub const TEMPORARY: &str = "Temporary DNS failure";
}

impl MxOutcome {
    /// The hosts to try, in order; empty for every failure.
    pub fn targets(&self) -> &[MxTarget] {
        match self {
            MxOutcome::Targets(targets) => targets,
            MxOutcome::ImplicitMx(target) => std::slice::from_ref(target),
            _ => &[],
        }
    }

    /// The failure to report, or `None` when there are hosts to try. Statuses are from
    /// RFC 3463 and RFC 7505.
    pub fn failure(&self) -> Option<MxFailure> {
        let (permanent, status, text) = match self {
            MxOutcome::Targets(_) | MxOutcome::ImplicitMx(_) => return None,
            MxOutcome::NullMx => (true, EnhancedStatus::new(5, 1, 10), failure_text::NULL_MX),
            MxOutcome::NxDomain | MxOutcome::InvalidDomain { .. } => {
                (true, EnhancedStatus::new(5, 1, 2), failure_text::NOT_FOUND)
            }
            MxOutcome::NoAddresses => (
                true,
                EnhancedStatus::new(5, 4, 4),
                failure_text::NO_ADDRESSES,
            ),
            MxOutcome::LoopsBackToMe { .. } => {
                (true, EnhancedStatus::new(5, 4, 6), failure_text::LOOPS_BACK)
            }
            MxOutcome::TemporaryFailure { .. } => {
                (false, EnhancedStatus::new(4, 4, 3), failure_text::TEMPORARY)
            }
        };
        Some(MxFailure {
            permanent,
            status,
            text,
        })
    }
}

/// The words of [`MxNote::DroppedOwnLevel`]'s text that say what the host does, by which a
/// step's note knows the remark.
pub const OWN_LEVEL_DROPPED: &str = "it drops that level and every less preferred one";

/// A remark about a step of the resolution, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MxNote {
    /// The mail domain is an alias; its canonical name is used (RFC 5321 5.1).
    MailDomainIsAlias {
        alias: DomainName,
        canonical: DomainName,
    },
    /// An MX exchange is an alias: followed, though RFC 2181 10.3 says it must not be.
    ExchangeIsAlias {
        exchange: DomainName,
        canonical: DomainName,
    },
    /// An MX host with no address (NXDOMAIN or no A/AAAA): skipped.
    ExchangeWithoutAddress {
        exchange: DomainName,
        preference: u16,
    },
    /// An MX host whose address lookups failed temporarily: skipped this time. `also` is
    /// the other lookup, when it failed too.
    ExchangeLookupFailed {
        exchange: DomainName,
        preference: u16,
        qtype: RecordType,
        outcome: Outcome,
        also: Option<(RecordType, Outcome)>,
    },
    /// An answer was SERVFAIL because the zone's CNAME data is broken (a loop, or a chain
    /// longer than resolvers follow): a failure that looks temporary but lasts until the data
    /// is fixed.
    BrokenAliasData {
        name: DomainName,
        problem: LookupProblem,
    },
    /// One address lookup of a host failed temporarily but the other gave addresses.
    AddressLookupPartlyFailed {
        exchange: DomainName,
        qtype: RecordType,
        outcome: Outcome,
    },
    /// A `.` exchange next to other MX records: not a null MX, and not a host (RFC 7505 3).
    NullMxAmongOtherMx { preference: u16 },
    /// A lone `MX n .` with `n` not 0, still taken as a null MX (RFC 7505 3).
    NullMxPreferenceNotZero { preference: u16 },
    /// This host found itself in the list and dropped its level and all less preferred ones
    /// (RFC 5321 5.1).
    DroppedOwnLevel {
        local_name: DomainName,
        preference: u16,
        dropped: Vec<DomainName>,
    },
    /// More MX records than are looked up: those after the first `used` in preference order
    /// (equal preferences shuffled) were left out. `drawn` when the cut fell among hosts of
    /// one preference, so that which are left out depends on the draw, and this host did not
    /// then drop that level (found there by address).
    TooManyExchanges {
        used: usize,
        ignored: usize,
        drawn: bool,
        /// Whether the hosts left out at the preference the cut fell in were asked for their
        /// addresses, to see whether one is this host (RFC 5321 5.1).
        own_address_checked: bool,
    },
}

impl fmt::Display for MxNote {
    /// Names as the trace writes hosts, without the final dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MxNote::MailDomainIsAlias { alias, canonical } => {
                let (alias, canonical) = (alias.without_final_dot(), canonical.without_final_dot());
                write!(
                    f,
                    "{alias} is an alias of {canonical}; using {canonical} (RFC 5321 5.1)"
                )
            }
            MxNote::ExchangeIsAlias {
                exchange,
                canonical,
            } => write!(
                f,
                "MX host {} is an alias of {}; followed, but an MX must name a host, not an \
                 alias (RFC 2181 10.3)",
                exchange.without_final_dot(),
                canonical.without_final_dot()
            ),
            MxNote::ExchangeWithoutAddress {
                exchange,
                preference,
            } => write!(
                f,
                "MX {preference} {} has no A or AAAA record; skipped",
                exchange.without_final_dot()
            ),
            MxNote::ExchangeLookupFailed {
                exchange,
                preference,
                qtype,
                outcome,
                also,
            } => {
                let exchange = exchange.without_final_dot();
                match also {
                    None => write!(f, "MX {preference} {exchange}: {qtype} lookup {outcome}")?,
                    Some((other, other_outcome)) if other_outcome == outcome => write!(
                        f,
                        "MX {preference} {exchange}: {qtype} and {other} lookups {outcome}"
                    )?,
                    Some((other, other_outcome)) => write!(
                        f,
                        "MX {preference} {exchange}: {qtype} lookup {outcome}, {other} lookup \
                         {other_outcome}"
                    )?,
                }
                write!(f, "; skipped for now")
            }
            MxNote::BrokenAliasData { name, problem } => {
                write!(f, "{}: ", name.without_final_dot())?;
                match problem {
                    LookupProblem::CnameLoop { name: back_to } => write!(
                        f,
                        "its CNAME chain comes back to {}, a loop",
                        back_to.without_final_dot()
                    )?,
                    LookupProblem::CnameChainTooLong { length } => write!(
                        f,
                        "its CNAME chain is longer than {length} links, more than resolvers \
                         follow"
                    )?,
                    LookupProblem::Fault { .. } => write!(f, "{problem}")?,
                }
                write!(
                    f,
                    ". The answer is SERVFAIL, a temporary failure (a resolver cannot tell \
                     broken data from a passing fault), so the lookup is made again at later \
                     attempts, and fails until the zone's data is fixed (RFC 1034 3.6.2)"
                )
            }
            MxNote::AddressLookupPartlyFailed {
                exchange,
                qtype,
                outcome,
            } => write!(
                f,
                "{}: {qtype} lookup {outcome}; using the other addresses",
                exchange.without_final_dot()
            ),
            MxNote::NullMxAmongOtherMx { preference } => write!(
                f,
                "MX {preference} . next to other MX records is not a null MX and names no \
                 host; ignored (RFC 7505 3)"
            ),
            MxNote::NullMxPreferenceNotZero { preference } => write!(
                f,
                "MX {preference} .: a null MX should have preference 0; taken as null MX \
                 (RFC 7505 3)"
            ),
            MxNote::DroppedOwnLevel {
                local_name,
                preference,
                dropped,
            } => {
                write!(
                    f,
                    "this host is {} at preference {preference}; {OWN_LEVEL_DROPPED}, so that \
                     it never sends the mail to itself or further from its destination (RFC \
                     5321 5.1). Dropped:",
                    local_name.without_final_dot()
                )?;
                for (index, name) in dropped.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(f, "{separator}{}", name.without_final_dot())?;
                }
                Ok(())
            }
            MxNote::TooManyExchanges {
                used,
                ignored,
                drawn,
                own_address_checked,
            } => {
                write!(
                    f,
                    "{used} MX hosts looked up, the {ignored} after them in this order left out \
                     (at most {used} per delivery"
                )?;
                if *own_address_checked {
                    write!(
                        f,
                        "; those left out at the preference the cut fell in were looked up, until \
                         one had this host's address, only to see whether one is this host, RFC \
                         5321 5.1"
                    )?;
                }
                if *drawn {
                    write!(f, "; equal preferences are drawn again next time")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// One question and its answer, as values and as wire bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsExchange {
    pub message_id: u16,
    pub question: Question,
    pub answer: Answer,
    /// The query message (RFC 1035 4).
    pub query_wire: Vec<u8>,
    /// The response message; `None` when the question timed out.
    pub response_wire: Option<Vec<u8>>,
}

/// The result of resolving one mail domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxResolution {
    /// The domain as asked.
    pub domain: String,
    pub outcome: MxOutcome,
    /// Every DNS question asked, in order.
    pub exchanges: Vec<DnsExchange>,
    pub notes: Vec<MxNote>,
}

impl MxResolution {
    /// Whether a host (or some of its addresses) was left out only for this time: its address
    /// lookup failed for now, or the draw among equal preferences put it beyond the hosts
    /// looked up. The next delivery may reach it, so such a resolution is not cached, and an
    /// attempt that meets only refusals from the others waits rather than bounces. A host at a
    /// level this host dropped has no such note: it is dropped, not left out for now.
    pub fn left_out_for_now(&self) -> bool {
        self.notes.iter().any(|note| {
            matches!(
                note,
                MxNote::ExchangeLookupFailed { .. }
                    | MxNote::AddressLookupPartlyFailed { .. }
                    | MxNote::TooManyExchanges { drawn: true, .. }
            )
        })
    }
}

/// A mail server's resolver: who it is (for RFC 5321 5.1's self check) and its message-id
/// counter. It holds no cache and no world; the world is passed to each call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxResolver {
    /// Names by which this host may appear as an MX exchange.
    pub local_host_names: Vec<DomainName>,
    /// Addresses by which it may appear: an exchange (or an alias of one) that resolves to
    /// one of them is this host too (RFC 5321 5.1: "any of the names or addresses by which it
    /// might be known").
    #[serde(default)]
    pub local_addresses: Vec<IpAddr>,
    /// The id of the next query; incremented (wrapping) for each one.
    pub next_message_id: u16,
}

impl MxResolver {
    pub fn new(local_host_names: Vec<DomainName>, first_message_id: u16) -> MxResolver {
        MxResolver {
            local_host_names,
            local_addresses: Vec::new(),
            next_message_id: first_message_id,
        }
    }

    /// The same resolver, also knowing this host by `addresses`.
    /// The addresses this host is known by, kept in canonical form: an IPv4-mapped IPv6
    /// address is the IPv4 host (RFC 4291 2.5.5.2).
    pub fn with_local_addresses(mut self, addresses: Vec<IpAddr>) -> MxResolver {
        self.local_addresses = addresses.iter().map(IpAddr::to_canonical).collect();
        self
    }

    /// Resolves `domain` (the part after `@`, final dot optional) at `now_ms`.
    ///
    /// Steps (RFC 5321 5.1): ask MX (CNAMEs at the domain are followed). NXDOMAIN is
    /// permanent, SERVFAIL or no answer temporary. A single `MX 0 .` is a null MX (RFC 7505).
    /// MX records: sort by preference, drop this host's level and above if it is listed, put
    /// equal preferences in random order, look up A then AAAA for each host and skip hosts
    /// without addresses; never fall back to the domain's own addresses. No MX records: the
    /// domain's own addresses are the implicit MX at preference 0.
    pub fn resolve_mx<R: RandomSource + ?Sized>(
        &mut self,
        world: &DnsWorld,
        domain: &str,
        now_ms: u64,
        rng: &mut R,
    ) -> MxResolution {
        let mut run = Run {
            resolver: self,
            world,
            now_ms,
            exchanges: Vec::new(),
            notes: Vec::new(),
        };
        let outcome = match DomainName::parse(domain) {
            Ok(name) => run.resolve(&name, rng),
            Err(error) => MxOutcome::InvalidDomain { error },
        };
        MxResolution {
            domain: domain.to_owned(),
            outcome,
            exchanges: run.exchanges,
            notes: run.notes,
        }
    }
}

/// One resolution in progress.
struct Run<'a> {
    resolver: &'a mut MxResolver,
    world: &'a DnsWorld,
    now_ms: u64,
    exchanges: Vec<DnsExchange>,
    notes: Vec<MxNote>,
}

/// The addresses of one host, or why there are none.
#[derive(Clone)]
enum HostAddresses {
    Found(Vec<IpAddr>),
    None,
    /// The first lookup that failed, and the other when it failed too.
    Failed {
        qtype: RecordType,
        outcome: Outcome,
        also: Option<(RecordType, Outcome)>,
    },
}

impl Run<'_> {
    fn ask(&mut self, name: &DomainName, qtype: RecordType) -> Answer {
        let message_id = self.resolver.next_message_id;
        self.resolver.next_message_id = message_id.wrapping_add(1);
        let answer = self.world.query(name, qtype, self.now_ms);
        let query_wire = wire::encode_query(message_id, &answer.question).unwrap_or_else(|e| {
            debug_assert!(false, "checked names always encode: {e}");
            Vec::new()
        });
        let response_wire = wire::encode_response(message_id, &answer).unwrap_or_else(|e| {
            debug_assert!(false, "checked names always encode: {e}");
            Some(Vec::new())
        });
        if let Some(
            problem @ (LookupProblem::CnameLoop { .. } | LookupProblem::CnameChainTooLong { .. }),
        ) = &answer.problem
        {
            let note = MxNote::BrokenAliasData {
                name: name.clone(),
                problem: problem.clone(),
            };
            // The A and AAAA questions for one name meet the same chain: said once.
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        self.exchanges.push(DnsExchange {
            message_id,
            question: answer.question.clone(),
            answer: answer.clone(),
            query_wire,
            response_wire,
        });
        answer
    }

    /// RFC 5321 5.1: drops this host's preference level and all less preferred hosts, with a
    /// note; when nothing is left the mail would loop back to this host.
    fn drop_own_level(
        &mut self,
        hosts: &mut Vec<MxTarget>,
        own_preference: u16,
        local_name: DomainName,
    ) -> Option<MxOutcome> {
        // A host named by two MX records at dropped levels is named once.
        let mut dropped: Vec<DomainName> = Vec::new();
        for target in hosts.iter().filter(|t| t.preference >= own_preference) {
            if !dropped.contains(&target.exchange) {
                dropped.push(target.exchange.clone());
            }
        }
        hosts.retain(|t| t.preference < own_preference);
        self.notes.push(MxNote::DroppedOwnLevel {
            local_name: local_name.clone(),
            preference: own_preference,
            dropped,
        });
        hosts
            .is_empty()
            .then_some(MxOutcome::LoopsBackToMe { local_name })
    }

    /// Before this host drops its own level and every less preferred one, found by address
    /// after the lookups: hosts at those levels that had no address, or whose lookup failed,
    /// are dropped as well, not skipped (RFC 5321 5.1: they "MUST be discarded from
    /// consideration"), so that none of them counts as left out for now. They go into
    /// `targets` for [`Self::drop_own_level`] to name. Nor does a draw among too many hosts
    /// matter any more: every host the cut left out is at this host's level or below (the
    /// cut fell after this host, or among the hosts of its level), and is dropped.
    fn forget_hosts_at_dropped_levels(&mut self, targets: &mut Vec<MxTarget>, own_preference: u16) {
        let mut unreached = Vec::new();
        self.notes.retain_mut(|note| match note {
            MxNote::ExchangeLookupFailed {
                exchange,
                preference,
                ..
            }
            | MxNote::ExchangeWithoutAddress {
                exchange,
                preference,
            } if *preference >= own_preference => {
                unreached.push(MxTarget {
                    exchange: exchange.clone(),
                    preference: *preference,
                    addresses: Vec::new(),
                });
                false
            }
            MxNote::TooManyExchanges { drawn, .. } => {
                *drawn = false;
                true
            }
            _ => true,
        });
        let kept = |name: &DomainName, targets: &[MxTarget]| {
            targets
                .iter()
                .any(|t| t.preference < own_preference && t.exchange == *name)
        };
        self.notes.retain(|note| match note {
            MxNote::AddressLookupPartlyFailed { exchange, .. } => kept(exchange, targets),
            _ => true,
        });
        if !unreached.is_empty() {
            targets.extend(unreached);
            // Stable: by preference, and within one, the hosts with addresses in their drawn
            // order before those without.
            targets.sort_by_key(|t| t.preference);
        }
    }

    fn is_local_address(&self, addresses: &[IpAddr]) -> bool {
        addresses
            .iter()
            // Compared as the local ones are kept: canonical (see `with_local_addresses`).
            .any(|address| {
                self.resolver
                    .local_addresses
                    .contains(&address.to_canonical())
            })
    }

    fn local_name(&self, name: &DomainName) -> Option<DomainName> {
        self.resolver
            .local_host_names
            .iter()
            .find(|local| *local == name)
            .cloned()
    }

    fn resolve<R: RandomSource + ?Sized>(&mut self, domain: &DomainName, rng: &mut R) -> MxOutcome {
        let answer = self.ask(domain, RecordType::Mx);
        match answer.outcome {
            Outcome::NoError => {}
            Outcome::NxDomain => return MxOutcome::NxDomain,
            reason @ (Outcome::ServFail | Outcome::TimedOut) => {
                return MxOutcome::TemporaryFailure { reason }
            }
        }
        let canonical = answer.canonical_name();
        if canonical != *domain {
            self.notes.push(MxNote::MailDomainIsAlias {
                alias: domain.clone(),
                canonical: canonical.clone(),
            });
        }
        let mx: Vec<(u16, DomainName)> = answer
            .records_of_type(RecordType::Mx)
            .filter_map(|r| match &r.data {
                RecordData::Mx {
                    preference,
                    exchange,
                } => DomainName::parse(exchange).ok().map(|e| (*preference, e)),
                _ => None,
            })
            .collect();
        if mx.is_empty() {
            return self.implicit_mx(&canonical);
        }
        if let [(preference, exchange)] = mx.as_slice() {
            if exchange.is_root() {
                if *preference != 0 {
                    self.notes.push(MxNote::NullMxPreferenceNotZero {
                        preference: *preference,
                    });
                }
                return MxOutcome::NullMx;
            }
        }
        self.explicit_mx(mx, rng)
    }

    fn implicit_mx(&mut self, canonical: &DomainName) -> MxOutcome {
        if let Some(local_name) = self.local_name(canonical) {
            return MxOutcome::LoopsBackToMe { local_name };
        }
        match self.addresses(canonical) {
            HostAddresses::Found(addresses) if self.is_local_address(&addresses) => {
                MxOutcome::LoopsBackToMe {
                    local_name: canonical.clone(),
                }
            }
            HostAddresses::Found(addresses) => MxOutcome::ImplicitMx(MxTarget {
                exchange: canonical.clone(),
                preference: 0,
                addresses,
            }),
            HostAddresses::None => MxOutcome::NoAddresses,
            HostAddresses::Failed { outcome, .. } => {
                MxOutcome::TemporaryFailure { reason: outcome }
            }
        }
    }

    fn explicit_mx<R: RandomSource + ?Sized>(
        &mut self,
        mx: Vec<(u16, DomainName)>,
        rng: &mut R,
    ) -> MxOutcome {
        let mut candidates: Vec<MxTarget> = Vec::new();
        for (preference, exchange) in mx {
            if exchange.is_root() {
                self.notes.push(MxNote::NullMxAmongOtherMx { preference });
                continue;
            }
            candidates.push(MxTarget {
                exchange,
                preference,
                addresses: Vec::new(),
            });
        }
        // Stable, so hosts of equal preference keep answer order before the shuffle and the
        // result depends only on the data and the random stream.
        candidates.sort_by_key(|t| t.preference);

        // RFC 5321 5.1: a relay that is itself in the list must only hand the mail to hosts
        // more preferred than itself, or mail would go round in circles.
        let own = candidates
            .iter()
            .find_map(|t| self.local_name(&t.exchange).map(|n| (t.preference, n)));
        if let Some((own_preference, local_name)) = own {
            if let Some(loops) = self.drop_own_level(&mut candidates, own_preference, local_name) {
                return loops;
            }
        }

        shuffle_equal_preferences(&mut candidates, rng);
        // The hosts left out by the cut. Those at the level the cut fell in may include this
        // host, known there only by its address, whose level must then be dropped with the
        // hosts looked up there (RFC 5321 5.1 asks for the whole list to be inspected). A
        // host left out at a less preferred level needs no look: dropping its level would
        // leave the hosts looked up as they are.
        let mut left_out: Vec<MxTarget> = Vec::new();
        let mut cut_level = None;
        if candidates.len() > MX_EXCHANGES_MAX {
            let level = candidates[MX_EXCHANGES_MAX - 1].preference;
            let drawn = candidates[MX_EXCHANGES_MAX].preference == level;
            self.notes.push(MxNote::TooManyExchanges {
                used: MX_EXCHANGES_MAX,
                ignored: candidates.len() - MX_EXCHANGES_MAX,
                drawn,
                own_address_checked: false,
            });
            left_out = candidates.split_off(MX_EXCHANGES_MAX);
            cut_level = drawn.then_some(level);
        }

        let mut targets = Vec::new();
        // The first failed lookup, and the best preferences of hosts whose lookup failed or
        // that have no address: they decide what an empty list means.
        let mut temporary_failure: Option<Outcome> = None;
        let mut best_failed = u16::MAX;
        let mut best_without_address = u16::MAX;
        // A host named by two MX records is looked up once: the second answer would be the
        // first one again, from any resolver's cache.
        let mut looked_up: Vec<(DomainName, HostAddresses)> = Vec::new();
        for mut candidate in candidates {
            let known = looked_up
                .iter()
                .find(|(name, _)| *name == candidate.exchange)
                .map(|(_, addresses)| addresses.clone());
            let addresses = known.unwrap_or_else(|| {
                let addresses = self.addresses(&candidate.exchange);
                looked_up.push((candidate.exchange.clone(), addresses.clone()));
                addresses
            });
            match addresses {
                HostAddresses::Found(addresses) => {
                    candidate.addresses = addresses;
                    targets.push(candidate);
                }
                HostAddresses::None => {
                    best_without_address = best_without_address.min(candidate.preference);
                    self.notes.push(MxNote::ExchangeWithoutAddress {
                        exchange: candidate.exchange,
                        preference: candidate.preference,
                    });
                }
                HostAddresses::Failed {
                    qtype,
                    outcome,
                    also,
                } => {
                    temporary_failure.get_or_insert(outcome);
                    best_failed = best_failed.min(candidate.preference);
                    self.notes.push(MxNote::ExchangeLookupFailed {
                        exchange: candidate.exchange,
                        preference: candidate.preference,
                        qtype,
                        outcome,
                        also,
                    });
                }
            }
        }
        // RFC 5321 5.1 again, by address: an exchange whose name is not this host's may still
        // resolve to it (another name, or an alias of its own name). Only now are the
        // addresses known, so the level is dropped here, as Postfix drops it after its lookups.
        let mut own_by_address = targets
            .iter()
            .filter(|t| self.is_local_address(&t.addresses))
            .min_by_key(|t| t.preference)
            .map(|t| (t.preference, t.exchange.clone()));
        if let (None, Some(level)) = (&own_by_address, cut_level) {
            own_by_address = self.own_among_left_out(&left_out, level, &looked_up);
        }
        if let Some((own_preference, local_name)) = own_by_address {
            // Every host left out by the cut is at this host's level or a less preferred
            // one: dropped, and named with the others.
            targets.append(&mut left_out);
            self.forget_hosts_at_dropped_levels(&mut targets, own_preference);
            if let Some(loops) = self.drop_own_level(&mut targets, own_preference, local_name) {
                // As when this host is found by name: a more preferred host whose lookup
                // failed for now is worth waiting for, and one without an address means no
                // host can take the mail (5.4.4); only with neither does the mail loop back.
                return match temporary_failure {
                    Some(reason) if best_failed < own_preference => {
                        MxOutcome::TemporaryFailure { reason }
                    }
                    _ if best_without_address < own_preference => MxOutcome::NoAddresses,
                    _ => loops,
                };
            }
        }
        if !targets.is_empty() {
            MxOutcome::Targets(targets)
        } else if let Some(reason) = temporary_failure {
            // A host that may have an address once its DNS is back is worth waiting for.
            MxOutcome::TemporaryFailure { reason }
        } else {
            MxOutcome::NoAddresses
        }
    }

    /// This host among the MX hosts `left_out` by the cut at preference `level`, found by
    /// its address: each such host is asked for A, then AAAA if A did not say so, until one
    /// has an address of this host. Asked only for this check, so the answers add no note:
    /// those hosts are not tried anyway. Nothing is asked when this host has no address to
    /// look for; the cut's note says when something was.
    fn own_among_left_out(
        &mut self,
        left_out: &[MxTarget],
        level: u16,
        looked_up: &[(DomainName, HostAddresses)],
    ) -> Option<(u16, DomainName)> {
        if self.resolver.local_addresses.is_empty() {
            return None;
        }
        for note in &mut self.notes {
            if let MxNote::TooManyExchanges {
                own_address_checked,
                ..
            } = note
            {
                *own_address_checked = true;
            }
        }
        let notes_before = self.notes.len();
        let mut asked: Vec<&DomainName> = Vec::new();
        let mut own = None;
        for host in left_out.iter().filter(|t| t.preference == level) {
            let exchange = &host.exchange;
            if asked.contains(&exchange) {
                continue;
            }
            asked.push(exchange);
            let is_own = match looked_up.iter().find(|(name, _)| name == exchange) {
                Some((_, HostAddresses::Found(found))) => self.is_local_address(found),
                Some(_) => false,
                None => [RecordType::A, RecordType::Aaaa].into_iter().any(|qtype| {
                    let answer = self.ask(exchange, qtype);
                    let found: Vec<IpAddr> = addresses_answered(&answer, qtype).collect();
                    self.is_local_address(&found)
                }),
            };
            if is_own {
                own = Some((level, exchange.clone()));
                break;
            }
        }
        self.notes.truncate(notes_before);
        own
    }

    /// A then AAAA for `host`. Both are always asked, so the trace shows both.
    fn addresses(&mut self, host: &DomainName) -> HostAddresses {
        let mut addresses = Vec::new();
        let mut failure: Option<(RecordType, Outcome)> = None;
        let mut second_failure: Option<(RecordType, Outcome)> = None;
        let mut alias_noted = false;
        for qtype in [RecordType::A, RecordType::Aaaa] {
            let answer = self.ask(host, qtype);
            if answer.outcome.is_temporary_failure() {
                if failure.is_none() {
                    failure = Some((qtype, answer.outcome));
                } else {
                    second_failure = Some((qtype, answer.outcome));
                }
                continue;
            }
            let canonical = answer.canonical_name();
            if canonical != *host && !alias_noted {
                alias_noted = true;
                self.notes.push(MxNote::ExchangeIsAlias {
                    exchange: host.clone(),
                    canonical,
                });
            }
            addresses.extend(addresses_answered(&answer, qtype));
        }
        match (addresses.is_empty(), failure) {
            (false, None) => HostAddresses::Found(addresses),
            (false, Some((qtype, outcome))) => {
                self.notes.push(MxNote::AddressLookupPartlyFailed {
                    exchange: host.clone(),
                    qtype,
                    outcome,
                });
                HostAddresses::Found(addresses)
            }
            (true, None) => HostAddresses::None,
            (true, Some((qtype, outcome))) => HostAddresses::Failed {
                qtype,
                outcome,
                also: second_failure,
            },
        }
    }
}

/// Resolves `domain` once with a fresh [`MxResolver`]: a shorthand for tests and one-off
/// lookups. A simulation keeps one `MxResolver` per mail server so message ids keep counting.
pub fn resolve_mx<R: RandomSource + ?Sized>(
    world: &DnsWorld,
    domain: &str,
    now_ms: u64,
    local_host_names: &[DomainName],
    first_message_id: u16,
    rng: &mut R,
) -> MxResolution {
    MxResolver::new(local_host_names.to_vec(), first_message_id)
        .resolve_mx(world, domain, now_ms, rng)
}
