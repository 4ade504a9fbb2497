//! DNS messages on the wire (RFC 1035 4): the bytes of a question and of its answer, built and
//! read with `hickory-proto`, so the trace can show real packets.
//!
//! This is not a transport: no UDP, no TCP, no truncation to 512 octets and no EDNS. Message
//! ids are given by the caller, never drawn at random, so the bytes are the same on every run.

use super::name::DomainName;
use super::world::{Answer, Outcome, Question};
use super::zone::{Record, RecordData, RecordType};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{self, rdata, RData};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A message that could not be built or read, with hickory-proto's reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub reason: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DNS wire message: {}", self.reason)
    }
}

impl std::error::Error for WireError {}

fn wire_error(reason: impl fmt::Display) -> WireError {
    WireError {
        reason: reason.to_string(),
    }
}

/// A message read back from bytes, in this module's own types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodedMessage {
    pub message_id: u16,
    pub is_response: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    /// NoError, NxDomain or ServFail; any other RCODE is an error when decoding.
    pub rcode: Outcome,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

fn hickory_name(name: &str) -> Result<rr::Name, WireError> {
    let name = DomainName::parse(name).map_err(wire_error)?;
    if name.is_root() {
        return Ok(rr::Name::root());
    }
    rr::Name::from_ascii(name.as_str()).map_err(wire_error)
}

fn hickory_type(qtype: RecordType) -> rr::RecordType {
    match qtype {
        RecordType::A => rr::RecordType::A,
        RecordType::Aaaa => rr::RecordType::AAAA,
        RecordType::Cname => rr::RecordType::CNAME,
        RecordType::Mx => rr::RecordType::MX,
        RecordType::Ns => rr::RecordType::NS,
        RecordType::Soa => rr::RecordType::SOA,
    }
}

fn our_type(qtype: rr::RecordType) -> Result<RecordType, WireError> {
    Ok(match qtype {
        rr::RecordType::A => RecordType::A,
        rr::RecordType::AAAA => RecordType::Aaaa,
        rr::RecordType::CNAME => RecordType::Cname,
        rr::RecordType::MX => RecordType::Mx,
        rr::RecordType::NS => RecordType::Ns,
        rr::RecordType::SOA => RecordType::Soa,
        other => return Err(wire_error(format!("record type {other} is not simulated"))),
    })
}

/// SOA timers are unsigned 32-bit fields (RFC 1035 3.3.13) that hickory-proto holds as `i32`;
/// the bits are carried over unchanged, so every value survives the round trip.
fn timer(seconds: u32) -> i32 {
    i32::from_be_bytes(seconds.to_be_bytes())
}

fn untimer(seconds: i32) -> u32 {
    u32::from_be_bytes(seconds.to_be_bytes())
}

/// One of our records as a hickory-proto record. Names must be valid.
pub fn to_hickory_record(record: &Record) -> Result<rr::Record, WireError> {
    let data = match &record.data {
        RecordData::Mx {
            preference,
            exchange,
        } => RData::MX(rdata::MX::new(*preference, hickory_name(exchange)?)),
        RecordData::A(address) => RData::A(rdata::A(*address)),
        RecordData::Aaaa(address) => RData::AAAA(rdata::AAAA(*address)),
        RecordData::Cname(target) => RData::CNAME(rdata::CNAME(hickory_name(target)?)),
        RecordData::Ns(host) => RData::NS(rdata::NS(hickory_name(host)?)),
        RecordData::Soa {
            mname,
            rname,
            serial,
            refresh_s,
            retry_s,
            expire_s,
            minimum_ttl_s,
        } => RData::SOA(rdata::SOA::new(
            hickory_name(mname)?,
            hickory_name(rname)?,
            *serial,
            timer(*refresh_s),
            timer(*retry_s),
            timer(*expire_s),
            *minimum_ttl_s,
        )),
    };
    Ok(rr::Record::from_rdata(
        hickory_name(&record.name)?,
        record.ttl_s,
        data,
    ))
}

fn name_text(name: &rr::Name) -> Result<String, WireError> {
    if name.is_root() {
        return Ok(".".to_owned());
    }
    let mut text = name.to_ascii();
    if !text.ends_with('.') {
        text.push('.');
    }
    DomainName::parse(&text)
        .map(String::from)
        .map_err(wire_error)
}

/// A hickory-proto record as one of ours (names canonical).
pub fn from_hickory_record(record: &rr::Record) -> Result<Record, WireError> {
    let data = match record.data() {
        RData::MX(mx) => RecordData::Mx {
            preference: mx.preference(),
            exchange: name_text(mx.exchange())?,
        },
        RData::A(address) => RecordData::A(address.0),
        RData::AAAA(address) => RecordData::Aaaa(address.0),
        RData::CNAME(target) => RecordData::Cname(name_text(&target.0)?),
        RData::NS(host) => RecordData::Ns(name_text(&host.0)?),
        RData::SOA(soa) => RecordData::Soa {
            mname: name_text(soa.mname())?,
            rname: name_text(soa.rname())?,
            serial: soa.serial(),
            refresh_s: untimer(soa.refresh()),
            retry_s: untimer(soa.retry()),
            expire_s: untimer(soa.expire()),
            minimum_ttl_s: soa.minimum(),
        },
        other => {
            return Err(wire_error(format!(
                "record type {} is not simulated",
                other.record_type()
            )))
        }
    };
    Ok(Record {
        name: name_text(record.name())?,
        ttl_s: record.ttl(),
        data,
    })
}

fn query_message(message_id: u16, question: &Question) -> Result<Message, WireError> {
    let mut message = Message::new();
    message
        .set_id(message_id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        // A mail server asks its recursive resolver (RFC 1035 4.1.1 RD).
        .set_recursion_desired(true)
        .add_query(Query::query(
            hickory_name(question.name.as_str())?,
            hickory_type(question.qtype),
        ));
    Ok(message)
}

/// The query a mail server sends for `question`.
pub fn encode_query(message_id: u16, question: &Question) -> Result<Vec<u8>, WireError> {
    query_message(message_id, question)?
        .to_vec()
        .map_err(wire_error)
}

/// The response to `answer`'s question with the same `message_id`, or `None` when the
/// question timed out (no response arrived).
pub fn encode_response(message_id: u16, answer: &Answer) -> Result<Option<Vec<u8>>, WireError> {
    let rcode = match answer.outcome {
        Outcome::NoError => ResponseCode::NoError,
        Outcome::NxDomain => ResponseCode::NXDomain,
        Outcome::ServFail => ResponseCode::ServFail,
        Outcome::TimedOut => return Ok(None),
    };
    let mut message = query_message(message_id, &answer.question)?;
    message
        .set_message_type(MessageType::Response)
        // The simulated world plays the recursive resolver (RFC 1035 4.1.1 RA).
        .set_recursion_available(true)
        .set_response_code(rcode);
    for record in &answer.answers {
        message.add_answer(to_hickory_record(record)?);
    }
    for record in &answer.authority {
        message.add_name_server(to_hickory_record(record)?);
    }
    message.to_vec().map(Some).map_err(wire_error)
}

/// The type asked about in `message`'s first question (RFC 1035 4.1.2), read from the bytes
/// themselves: the page needs no more of a recorded message than that, and hickory-proto's
/// reader would add to its download what these lines do. `None` when there is no question to
/// read, or its type is not one the simulation has.
pub fn question_type(message: &[u8]) -> Option<RecordType> {
    // RFC 1035 4.1.1: a 12-octet header, whose octets 4 and 5 count the questions.
    let questions = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    if questions == 0 {
        return None;
    }
    // QNAME: labels, each its length and then its octets, up to the root's empty label; a
    // pointer (the top two bits set, RFC 1035 4.1.4) ends it too, after its second octet.
    let mut at = 12;
    loop {
        let length = *message.get(at)?;
        match length {
            0 => {
                at += 1;
                break;
            }
            pointer if pointer & 0xc0 == 0xc0 => {
                at += 2;
                break;
            }
            reserved if reserved & 0xc0 != 0 => return None,
            label => at += 1 + usize::from(label),
        }
    }
    // QTYPE values: RFC 1035 3.2.2, RFC 3596 2.1 (AAAA).
    Some(
        match u16::from_be_bytes([*message.get(at)?, *message.get(at + 1)?]) {
            1 => RecordType::A,
            2 => RecordType::Ns,
            5 => RecordType::Cname,
            6 => RecordType::Soa,
            15 => RecordType::Mx,
            28 => RecordType::Aaaa,
            _ => return None,
        },
    )
}

/// Reads a message built by [`encode_query`] or [`encode_response`] (or any message that uses
/// only the simulated record types).
pub fn decode(bytes: &[u8]) -> Result<DecodedMessage, WireError> {
    let message = Message::from_vec(bytes).map_err(wire_error)?;
    let rcode = match message.response_code() {
        ResponseCode::NoError => Outcome::NoError,
        ResponseCode::NXDomain => Outcome::NxDomain,
        ResponseCode::ServFail => Outcome::ServFail,
        other => return Err(wire_error(format!("RCODE {other} is not simulated"))),
    };
    let questions = message
        .queries()
        .iter()
        .map(|q| {
            Ok(Question {
                name: DomainName::parse(&name_text(q.name())?).map_err(wire_error)?,
                qtype: our_type(q.query_type())?,
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    let records = |section: &[rr::Record]| {
        section
            .iter()
            .map(from_hickory_record)
            .collect::<Result<Vec<_>, WireError>>()
    };
    Ok(DecodedMessage {
        message_id: message.id(),
        is_response: message.message_type() == MessageType::Response,
        recursion_desired: message.recursion_desired(),
        recursion_available: message.recursion_available(),
        rcode,
        questions,
        answers: records(message.answers())?,
        authority: records(message.name_servers())?,
    })
}
