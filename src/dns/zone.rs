//! Zones as a scenario file describes them: an origin and its records (MX, A, AAAA, CNAME, NS,
//! SOA), their checks, and their rendering in standard zone-file syntax (RFC 1035 5.1).
//!
//! This is not a zone-file parser and not a name server: it holds data, says what is wrong with
//! it, and prints it. Lookups live in `world`.
//!
//! Names in a scenario are absolute (the final dot is optional) and `@` means the origin.
//! Unlike a zone file, a name without a final dot is never taken as relative to the origin:
//! in JSON that rule is a trap (`mx.example.net` would silently become
//! `mx.example.net.example.org.`).

use super::name::{DomainName, NameError};
use super::{ANSWER_RECORDS_MAX, RECORDS_PER_ZONE_MAX};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Largest TTL a record may have (RFC 2181 8: the top bit of the 32-bit field must be zero).
pub const TTL_MAX_S: u32 = i32::MAX as u32;

/// TTL used when a scenario leaves it out: one hour, a common default.
pub const DEFAULT_TTL_S: u32 = 3600;

/// A zone: the records under one origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// The zone's apex, e.g. `example.org`.
    pub origin: String,
    #[serde(default)]
    pub records: Vec<Record>,
}

/// One resource record. In a zone, `name` may be `@`; in an answer, every name is canonical
/// (see [`DomainName`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    #[serde(default = "default_ttl_s")]
    pub ttl_s: u32,
    pub data: RecordData,
}

fn default_ttl_s() -> u32 {
    DEFAULT_TTL_S
}

/// The data of a record. In JSON: `{"MX": {"preference": 10, "exchange": "mx1.example.org"}}`,
/// `{"A": "192.0.2.1"}`, `{"AAAA": "2001:db8::1"}`, `{"CNAME": "www.example.org"}`,
/// `{"NS": "ns1.example.org"}`, `{"SOA": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RecordData {
    /// Mail exchanger (RFC 1035 3.3.9); lower preference is tried first (RFC 5321 5.1). An
    /// exchange of `.` with preference 0 is a null MX (RFC 7505).
    #[serde(rename = "MX")]
    Mx { preference: u16, exchange: String },
    #[serde(rename = "A")]
    A(Ipv4Addr),
    #[serde(rename = "AAAA")]
    Aaaa(Ipv6Addr),
    /// An alias: the owner name stands for `target` (RFC 1034 3.6.2).
    #[serde(rename = "CNAME")]
    Cname(String),
    #[serde(rename = "NS")]
    Ns(String),
    /// Start of authority (RFC 1035 3.3.13); `minimum_ttl_s` is the TTL of negative answers
    /// (RFC 2308 4).
    #[serde(rename = "SOA")]
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh_s: u32,
        retry_s: u32,
        expire_s: u32,
        minimum_ttl_s: u32,
    },
}

/// The record types this simulator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    #[serde(rename = "A")]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "NS")]
    Ns,
    #[serde(rename = "SOA")]
    Soa,
}

impl RecordType {
    /// The mnemonic as a zone file writes it.
    pub fn mnemonic(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Ns => "NS",
            RecordType::Soa => "SOA",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

impl RecordData {
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordData::Mx { .. } => RecordType::Mx,
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Ns(_) => RecordType::Ns,
            RecordData::Soa { .. } => RecordType::Soa,
        }
    }

    /// The same data with every name in it made canonical against `origin`, or the first name
    /// that is not valid.
    pub fn canonical(&self, origin: &DomainName) -> Result<RecordData, (NameField, NameError)> {
        let name = |field: NameField, text: &str| {
            resolve_name(text, origin)
                .map(String::from)
                .map_err(|e| (field, e))
        };
        Ok(match self {
            RecordData::Mx {
                preference,
                exchange,
            } => RecordData::Mx {
                preference: *preference,
                exchange: name(NameField::Exchange, exchange)?,
            },
            RecordData::A(address) => RecordData::A(*address),
            RecordData::Aaaa(address) => RecordData::Aaaa(*address),
            RecordData::Cname(target) => RecordData::Cname(name(NameField::CnameTarget, target)?),
            RecordData::Ns(host) => RecordData::Ns(name(NameField::NsHost, host)?),
            RecordData::Soa {
                mname,
                rname,
                serial,
                refresh_s,
                retry_s,
                expire_s,
                minimum_ttl_s,
            } => RecordData::Soa {
                mname: name(NameField::Mname, mname)?,
                rname: name(NameField::Rname, rname)?,
                serial: *serial,
                refresh_s: *refresh_s,
                retry_s: *retry_s,
                expire_s: *expire_s,
                minimum_ttl_s: *minimum_ttl_s,
            },
        })
    }

    /// The RDATA in zone-file text (RFC 1035 5.1), names printed as given.
    pub fn rdata_text(&self) -> String {
        match self {
            RecordData::Mx {
                preference,
                exchange,
            } => format!("{preference} {}", with_final_dot(exchange)),
            RecordData::A(address) => address.to_string(),
            RecordData::Aaaa(address) => address.to_string(),
            RecordData::Cname(target) | RecordData::Ns(target) => with_final_dot(target),
            RecordData::Soa {
                mname,
                rname,
                serial,
                refresh_s,
                retry_s,
                expire_s,
                minimum_ttl_s,
            } => format!(
                "{} {} {serial} {refresh_s} {retry_s} {expire_s} {minimum_ttl_s}",
                with_final_dot(mname),
                with_final_dot(rname)
            ),
        }
    }
}

/// Which name of a record an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameField {
    Origin,
    Owner,
    Exchange,
    CnameTarget,
    NsHost,
    Mname,
    Rname,
}

impl fmt::Display for NameField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameField::Origin => "origin",
            NameField::Owner => "owner name",
            NameField::Exchange => "MX exchange",
            NameField::CnameTarget => "CNAME target",
            NameField::NsHost => "NS host name",
            NameField::Mname => "SOA MNAME",
            NameField::Rname => "SOA RNAME",
        })
    }
}

/// Resolves a name as written in a scenario: `@` is the origin, anything else is absolute.
pub fn resolve_name(text: &str, origin: &DomainName) -> Result<DomainName, NameError> {
    if text == "@" {
        Ok(origin.clone())
    } else {
        DomainName::parse(text)
    }
}

fn with_final_dot(text: &str) -> String {
    if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// Something wrong in a zone: where it is and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneError {
    /// The zone's origin as written.
    pub zone: String,
    /// Index of the record in `Zone::records`, when the error is about one record.
    pub record_index: Option<usize>,
    pub kind: ZoneErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneErrorKind {
    BadName {
        field: NameField,
        text: String,
        error: NameError,
    },
    /// An owner name that is not the origin or below it: a server would not serve it.
    OutsideZone {
        name: String,
        origin: String,
    },
    /// A CNAME next to other data at the same name (RFC 1034 3.6.2, RFC 2181 10.1).
    CnameWithOtherData {
        name: String,
        other: RecordType,
    },
    /// More than one CNAME at a name (RFC 2181 10.1).
    SeveralCnames {
        name: String,
    },
    /// An MX exchange, CNAME target or NS host written as an IP address: these hold names
    /// (RFC 1035 3.3.9, 3.3.1, 3.3.11; RFC 7505 lists an MX naming an address among the
    /// mistakes a null MX avoids).
    AddressWhereNameBelongs {
        field: NameField,
        text: String,
    },
    /// A null MX next to other MX records (RFC 7505 3: a domain with a null MX must not
    /// advertise any other MX).
    NullMxWithOtherMx {
        name: String,
    },
    /// An MX with exchange `.` and a preference other than 0 (RFC 7505 3 defines the null MX
    /// as `MX 0 .`).
    NullMxPreferenceNotZero {
        name: String,
        preference: u16,
    },
    /// A TTL with the top bit set (RFC 2181 8).
    TtlTooLarge {
        ttl_s: u32,
    },
    /// The same record twice: an RRset holds each record once (RFC 2181 5).
    DuplicateRecord {
        name: String,
        first_index: usize,
    },
    /// SOA anywhere but the apex, or more than one (RFC 1035 5.2, RFC 2181 6.1).
    SoaMisplaced {
        name: String,
    },
    TooManyRecords {
        count: usize,
        max: usize,
    },
    /// More records of one type at one name than an answer carries: a server would have to
    /// leave some out, and a client would not know which.
    RrsetTooLarge {
        name: String,
        record_type: RecordType,
        count: usize,
        max: usize,
    },
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone {}", self.zone)?;
        // Numbered as a scenario's paths number them, from 0 (`records[0]` is the first).
        if let Some(index) = self.record_index {
            write!(f, ", records[{index}]")?;
        }
        write!(f, ": ")?;
        match &self.kind {
            ZoneErrorKind::BadName { field, text, error } => {
                write!(f, "{field} \"{text}\" is not a valid name: {error}")
            }
            ZoneErrorKind::OutsideZone { name, origin } => write!(
                f,
                "\"{name}\" is not inside zone {origin}; names are absolute, write the full \
                 name or @ for the origin"
            ),
            ZoneErrorKind::CnameWithOtherData { name, other } => write!(
                f,
                "{name} has a CNAME and also {other} data; a name with a CNAME has no other \
                 data (RFC 1034 3.6.2, RFC 2181 10.1)"
            ),
            ZoneErrorKind::SeveralCnames { name } => write!(
                f,
                "{name} has more than one CNAME; an alias has exactly one target (RFC 2181 10.1)"
            ),
            ZoneErrorKind::AddressWhereNameBelongs { field, text } => {
                write!(f, "{field} \"{text}\" is an IP address; ")?;
                f.write_str(match field {
                    NameField::CnameTarget => {
                        "it must be a domain name, the canonical name the alias stands for \
                         (RFC 1035 3.3.1)"
                    }
                    NameField::NsHost => {
                        "it must be the host name of a name server, which has A/AAAA records \
                         (RFC 1035 3.3.11)"
                    }
                    _ => "it must be a host name that has A/AAAA records (RFC 1035 3.3.9)",
                })
            }
            ZoneErrorKind::NullMxWithOtherMx { name } => write!(
                f,
                "{name} has a null MX (exchange \".\") and other MX records; a null MX must be \
                 the only MX (RFC 7505 3)"
            ),
            ZoneErrorKind::NullMxPreferenceNotZero { name, preference } => write!(
                f,
                "{name} has MX {preference} .; a null MX is written MX 0 . (RFC 7505 3)"
            ),
            ZoneErrorKind::TtlTooLarge { ttl_s } => {
                write!(f, "TTL {ttl_s} s is larger than {TTL_MAX_S} (RFC 2181 8)")
            }
            ZoneErrorKind::DuplicateRecord { name, first_index } => write!(
                f,
                "{name}: the same record as records[{first_index}] (RFC 2181 5)"
            ),
            ZoneErrorKind::SoaMisplaced { name } => write!(
                f,
                "SOA at {name}: a zone has exactly one SOA, at its origin (RFC 1035 5.2)"
            ),
            ZoneErrorKind::TooManyRecords { count, max } => {
                write!(f, "{count} records; at most {max} per zone")
            }
            ZoneErrorKind::RrsetTooLarge {
                name,
                record_type,
                count,
                max,
            } => write!(
                f,
                "{name} has {count} {record_type} records; at most {max} of one type at one \
                 name, the most one answer carries here"
            ),
        }
    }
}

impl std::error::Error for ZoneError {}

impl Zone {
    /// The origin in canonical form, if it is a valid name.
    pub fn origin_name(&self) -> Result<DomainName, NameError> {
        DomainName::parse(&self.origin)
    }

    /// The zone's records with canonical names, leaving out any record with an invalid name or
    /// outside the zone (those are reported by [`Zone::validate`]). Lookups use this, so data
    /// that has not been validated never makes them fail.
    pub fn canonical_records(&self) -> Vec<Record> {
        let Ok(origin) = self.origin_name() else {
            return Vec::new();
        };
        self.records
            .iter()
            .take(RECORDS_PER_ZONE_MAX)
            .filter_map(|record| canonical_record(record, &origin).ok())
            .collect()
    }

    /// Every problem in the zone, in record order; an empty list means the zone is valid.
    pub fn validate(&self) -> Vec<ZoneError> {
        let mut errors = Vec::new();
        let error = |record_index: Option<usize>, kind: ZoneErrorKind| ZoneError {
            zone: self.origin.clone(),
            record_index,
            kind,
        };
        let origin = match self.origin_name() {
            Ok(origin) => origin,
            Err(e) => {
                errors.push(error(
                    None,
                    ZoneErrorKind::BadName {
                        field: NameField::Origin,
                        text: self.origin.clone(),
                        error: e,
                    },
                ));
                return errors;
            }
        };
        if self.records.len() > RECORDS_PER_ZONE_MAX {
            errors.push(error(
                None,
                ZoneErrorKind::TooManyRecords {
                    count: self.records.len(),
                    max: RECORDS_PER_ZONE_MAX,
                },
            ));
        }

        // Records whose names are all valid, by owner, for the checks across records.
        let mut by_owner: BTreeMap<DomainName, Vec<(usize, Record)>> = BTreeMap::new();
        for (index, record) in self.records.iter().enumerate().take(RECORDS_PER_ZONE_MAX) {
            if record.ttl_s > TTL_MAX_S {
                errors.push(error(
                    Some(index),
                    ZoneErrorKind::TtlTooLarge {
                        ttl_s: record.ttl_s,
                    },
                ));
            }
            for (field, text) in names_that_must_not_be_addresses(&record.data) {
                if DomainName::looks_like_ip_address(text) {
                    errors.push(error(
                        Some(index),
                        ZoneErrorKind::AddressWhereNameBelongs {
                            field,
                            text: text.to_owned(),
                        },
                    ));
                }
            }
            match canonical_record(record, &origin) {
                Ok(canonical) => {
                    let owner = DomainName::parse(&canonical.name).unwrap_or_else(|_| {
                        debug_assert!(false, "canonical_record returns parsed names");
                        DomainName::root()
                    });
                    by_owner.entry(owner).or_default().push((index, canonical));
                }
                Err(CanonicalError::BadName(field, text, e)) => errors.push(error(
                    Some(index),
                    ZoneErrorKind::BadName {
                        field,
                        text,
                        error: e,
                    },
                )),
                Err(CanonicalError::OutsideZone(name)) => errors.push(error(
                    Some(index),
                    ZoneErrorKind::OutsideZone {
                        name,
                        origin: origin.to_string(),
                    },
                )),
            }
        }

        let mut soa_count = 0;
        for (owner, records) in &by_owner {
            let name = owner.to_string();
            let cnames: Vec<usize> = records
                .iter()
                .filter(|(_, r)| r.data.record_type() == RecordType::Cname)
                .map(|(i, _)| *i)
                .collect();
            if cnames.len() > 1 {
                errors.push(error(
                    Some(cnames[1]),
                    ZoneErrorKind::SeveralCnames { name: name.clone() },
                ));
            }
            if let Some(&first_cname) = cnames.first() {
                if let Some((index, other)) = records
                    .iter()
                    .find(|(_, r)| r.data.record_type() != RecordType::Cname)
                {
                    errors.push(error(
                        Some(first_cname.max(*index)),
                        ZoneErrorKind::CnameWithOtherData {
                            name: name.clone(),
                            other: other.data.record_type(),
                        },
                    ));
                }
            }
            let mut per_type: BTreeMap<RecordType, Vec<usize>> = BTreeMap::new();
            for (index, record) in records {
                per_type
                    .entry(record.data.record_type())
                    .or_default()
                    .push(*index);
            }
            for (record_type, indices) in per_type {
                if indices.len() > ANSWER_RECORDS_MAX {
                    errors.push(error(
                        Some(indices[ANSWER_RECORDS_MAX]),
                        ZoneErrorKind::RrsetTooLarge {
                            name: name.clone(),
                            record_type,
                            count: indices.len(),
                            max: ANSWER_RECORDS_MAX,
                        },
                    ));
                }
            }
            let mx: Vec<(usize, u16, bool)> = records
                .iter()
                .filter_map(|(i, r)| match &r.data {
                    RecordData::Mx {
                        preference,
                        exchange,
                    } => Some((*i, *preference, exchange == ".")),
                    _ => None,
                })
                .collect();
            for &(index, preference, is_null) in &mx {
                if is_null && mx.len() > 1 {
                    errors.push(error(
                        Some(index),
                        ZoneErrorKind::NullMxWithOtherMx { name: name.clone() },
                    ));
                }
                if is_null && preference != 0 {
                    errors.push(error(
                        Some(index),
                        ZoneErrorKind::NullMxPreferenceNotZero {
                            name: name.clone(),
                            preference,
                        },
                    ));
                }
            }
            for (position, (index, record)) in records.iter().enumerate() {
                if let Some((first_index, _)) = records[..position]
                    .iter()
                    .find(|(_, earlier)| earlier.data == record.data)
                {
                    errors.push(error(
                        Some(*index),
                        ZoneErrorKind::DuplicateRecord {
                            name: name.clone(),
                            first_index: *first_index,
                        },
                    ));
                }
                if record.data.record_type() == RecordType::Soa {
                    // Only SOAs at the origin count towards "one": a stray SOA elsewhere is
                    // itself the error, and does not make the origin's SOA a second one.
                    let at_origin = *owner == origin;
                    if at_origin {
                        soa_count += 1;
                    }
                    if !at_origin || soa_count > 1 {
                        errors.push(error(
                            Some(*index),
                            ZoneErrorKind::SoaMisplaced { name: name.clone() },
                        ));
                    }
                }
            }
        }
        errors.sort_by_key(|e| e.record_index);
        errors
    }

    /// The zone in standard zone-file syntax (RFC 1035 5.1): an `$ORIGIN` line, then one
    /// line per record with absolute names, e.g. `example.org. 3600 IN MX 10 mx1.example.org.`.
    /// Names are printed canonical when valid and as written otherwise, so an invalid zone can
    /// still be shown.
    pub fn to_zone_file(&self) -> String {
        let origin = self.origin_name().ok();
        let mut text = format!(
            "$ORIGIN {}\n",
            origin
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_else(|| with_final_dot(&self.origin))
        );
        for record in &self.records {
            let shown = match &origin {
                Some(origin) => Record {
                    name: resolve_name(&record.name, origin)
                        .map(String::from)
                        .unwrap_or_else(|_| record.name.clone()),
                    ttl_s: record.ttl_s,
                    data: record
                        .data
                        .canonical(origin)
                        .unwrap_or_else(|_| record.data.clone()),
                },
                None => record.clone(),
            };
            text.push_str(&shown.to_zone_line());
            text.push('\n');
        }
        text
    }
}

impl Record {
    /// One zone-file line, `name ttl IN TYPE rdata`, without a line end.
    pub fn to_zone_line(&self) -> String {
        format!(
            "{} {} IN {} {}",
            with_final_dot(&self.name),
            self.ttl_s,
            self.data.record_type(),
            self.data.rdata_text()
        )
    }
}

fn names_that_must_not_be_addresses(data: &RecordData) -> Vec<(NameField, &str)> {
    match data {
        RecordData::Mx { exchange, .. } => vec![(NameField::Exchange, exchange.as_str())],
        RecordData::Cname(target) => vec![(NameField::CnameTarget, target.as_str())],
        RecordData::Ns(host) => vec![(NameField::NsHost, host.as_str())],
        _ => Vec::new(),
    }
}

enum CanonicalError {
    BadName(NameField, String, NameError),
    OutsideZone(String),
}

fn canonical_record(record: &Record, origin: &DomainName) -> Result<Record, CanonicalError> {
    let owner = resolve_name(&record.name, origin)
        .map_err(|e| CanonicalError::BadName(NameField::Owner, record.name.clone(), e))?;
    if !owner.is_at_or_below(origin) {
        return Err(CanonicalError::OutsideZone(owner.to_string()));
    }
    let data = record.data.canonical(origin).map_err(|(field, e)| {
        let text = match (&record.data, field) {
            (RecordData::Mx { exchange, .. }, _) => exchange.clone(),
            (RecordData::Cname(t) | RecordData::Ns(t), _) => t.clone(),
            (RecordData::Soa { mname, .. }, NameField::Mname) => mname.clone(),
            (RecordData::Soa { rname, .. }, _) => rname.clone(),
            _ => String::new(),
        };
        CanonicalError::BadName(field, text, e)
    })?;
    Ok(Record {
        name: owner.into(),
        ttl_s: record.ttl_s,
        data,
    })
}
