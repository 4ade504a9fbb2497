//! The DNS of the simulated mail world: zones with MX, A, AAAA and CNAME records, faults that
//! make lookups fail for a while, and MX resolution for mail (RFC 5321 5.1, RFC 7505) that
//! records every question and answer, down to the wire bytes.
//!
//! This is not a DNS server or a network resolver: nothing here opens a socket, reads a clock
//! or draws randomness. Time, message ids and random numbers come from the caller (the
//! simulation), so the same inputs always give the same answers and the same bytes. It knows
//! nothing of the simulation or the UI.
//!
//! - [`zone`]: the serde types a scenario file uses, their checks, zone-file rendering.
//! - [`world`]: zones plus faults; [`DnsWorld::query`] answers one question.
//! - [`resolver`]: [`MxResolver::resolve_mx`], the mail server's view.
//! - [`cache`]: [`MxCache`], the mail server's memory of resolutions, for their TTL.
//! - [`wire`]: DNS messages as bytes (built and read with hickory-proto).

pub mod cache;
pub mod name;
pub mod resolver;
pub mod wire;
pub mod world;
pub mod zone;

pub use cache::{CachedMx, MxCache};
pub use name::{DomainName, NameError};
pub use resolver::{
    resolve_mx, DnsExchange, MxFailure, MxNote, MxOutcome, MxResolution, MxResolver, MxTarget,
    RandomSource,
};
pub use world::{
    Answer, DnsWorld, DomainFault, Fault, LookupProblem, Outcome, Question, WorldError,
};
pub use zone::{Record, RecordData, RecordType, Zone, ZoneError, ZoneErrorKind};

/// Most zones in one world.
pub const ZONES_MAX: usize = 256;

/// Most records in one zone; more are reported by validation and ignored by lookups.
pub const RECORDS_PER_ZONE_MAX: usize = 1024;

/// Most faults in one world.
pub const FAULTS_MAX: usize = 256;

/// Most CNAME links followed for one question. RFC 1034 3.6.2 asks resolvers to bound chains;
/// real ones stop between 8 and 16.
pub const CNAME_CHAIN_MAX: usize = 8;

/// Most records of one type at one name, and so in one answer: zone validation refuses more.
pub const ANSWER_RECORDS_MAX: usize = 64;

/// Most MX hosts whose addresses are looked up for one delivery: the first this many in
/// preference order, equal preferences shuffled (real MTAs cap what they try too, e.g.
/// Postfix's `smtp_mx_address_limit`, 5 addresses; RFC 5321 5.1 lets a client limit the
/// alternatives it tries).
pub const MX_EXCHANGES_MAX: usize = 16;
