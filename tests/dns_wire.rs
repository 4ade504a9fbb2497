//! DNS wire messages: what the resolver records parses back with hickory-proto to the same
//! question, RCODE and records, and known bytes for a small query.

#![cfg(not(target_arch = "wasm32"))]

mod dns_common;

use dns_common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType as HickoryType};
use smtp_lab::dns::wire::{
    decode, encode_query, from_hickory_record, question_type, to_hickory_record,
};
use smtp_lab::dns::{resolve_mx, DomainFault, Fault, Outcome, Question, RecordData, RecordType};

fn sample_world() -> smtp_lab::dns::DnsWorld {
    world(vec![
        zone(
            "example.org",
            vec![
                record(
                    "@",
                    RecordData::Soa {
                        mname: "ns1.example.org".into(),
                        rname: "hostmaster.example.org".into(),
                        serial: 7,
                        refresh_s: 7200,
                        retry_s: 3600,
                        expire_s: 1209600,
                        minimum_ttl_s: 300,
                    },
                ),
                mx("@", 10, "mx1.example.org"),
                mx("@", 20, "mail.example.org"),
                cname("mail.example.org", "mx2.example.org"),
                a("mx1.example.org", "192.0.2.10"),
                aaaa("mx1.example.org", "2001:db8::10"),
                a("mx2.example.org", "192.0.2.20"),
            ],
        ),
        zone("alias.example", vec![cname("@", "example.org")]),
        zone("nomail.example", vec![mx("@", 0, ".")]),
    ])
}

#[test]
fn every_recorded_exchange_parses_back_to_the_same_records() {
    let mut world = sample_world();
    world.faults.push(DomainFault {
        domain: "down.example".into(),
        fault: Fault::ServFail,
        from_ms: None,
        until_ms: None,
    });
    let mut checked = 0;
    for domain in [
        "example.org",
        "alias.example",
        "nomail.example",
        "missing.example.org",
        "down.example",
    ] {
        let resolution = resolve_mx(&world, domain, 0, &[], 500, &mut || 0);
        for exchange in &resolution.exchanges {
            let query = decode(&exchange.query_wire).expect("query parses");
            assert_eq!(query.message_id, exchange.message_id);
            assert!(!query.is_response);
            assert!(query.recursion_desired);
            assert_eq!(query.questions, std::slice::from_ref(&exchange.question));
            assert!(query.answers.is_empty());

            let bytes = exchange.response_wire.as_ref().expect("no timeouts here");
            // The page's own reader of the question's type agrees with hickory-proto.
            assert_eq!(
                question_type(&exchange.query_wire),
                Some(exchange.question.qtype)
            );
            assert_eq!(question_type(bytes), Some(exchange.question.qtype));
            let response = decode(bytes).expect("response parses");
            assert_eq!(response.message_id, exchange.message_id);
            assert!(response.is_response);
            assert!(response.recursion_available);
            assert_eq!(response.rcode, exchange.answer.outcome);
            assert_eq!(response.questions, std::slice::from_ref(&exchange.question));
            assert_eq!(response.answers, exchange.answer.answers);
            assert_eq!(response.authority, exchange.answer.authority);

            // And straight through hickory-proto's own types.
            let message = Message::from_vec(bytes).expect("hickory parses it");
            assert_eq!(message.message_type(), MessageType::Response);
            assert_eq!(message.answers().len(), exchange.answer.answers.len());
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} exchanges checked");
}

#[test]
fn an_mx_answer_holds_a_real_mx_record() {
    let resolution = resolve_mx(&sample_world(), "example.org", 0, &[], 1, &mut || 0);
    let bytes = resolution.exchanges[0].response_wire.as_ref().unwrap();
    let message = Message::from_vec(bytes).unwrap();
    assert_eq!(message.response_code(), ResponseCode::NoError);
    assert_eq!(message.queries()[0].query_type(), HickoryType::MX);
    let mut mx: Vec<(u16, String)> = message
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::MX(mx) => Some((mx.preference(), mx.exchange().to_ascii())),
            _ => None,
        })
        .collect();
    mx.sort();
    assert_eq!(
        mx,
        [
            (10, "mx1.example.org.".to_owned()),
            (20, "mail.example.org.".to_owned())
        ]
    );
}

#[test]
fn null_mx_and_nxdomain_on_the_wire() {
    let world = sample_world();
    let r = resolve_mx(&world, "nomail.example", 0, &[], 1, &mut || 0);
    let message = Message::from_vec(r.exchanges[0].response_wire.as_ref().unwrap()).unwrap();
    let RData::MX(mx) = message.answers()[0].data() else {
        panic!("MX expected")
    };
    assert_eq!(mx.preference(), 0);
    assert!(mx.exchange().is_root());

    let r = resolve_mx(&world, "missing.example.org", 0, &[], 1, &mut || 0);
    let message = Message::from_vec(r.exchanges[0].response_wire.as_ref().unwrap()).unwrap();
    assert_eq!(message.response_code(), ResponseCode::NXDomain);
    assert_eq!(message.name_servers()[0].record_type(), HickoryType::SOA);
}

#[test]
fn a_query_has_known_bytes() {
    let question = Question {
        name: name("example.org"),
        qtype: RecordType::Mx,
    };
    let bytes = encode_query(0x1234, &question).unwrap();
    let expected: Vec<u8> = [
        &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..], // id, RD, QDCOUNT 1
        b"\x07example\x03org\x00",
        &[0, 15, 0, 1], // QTYPE MX, QCLASS IN
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn records_convert_to_hickory_and_back() {
    for record in [
        mx("example.org.", 10, "mx1.example.org."),
        mx("example.org.", 0, "."),
        a("a.example.org.", "192.0.2.1"),
        aaaa("a.example.org.", "2001:db8::1"),
        cname("w.example.org.", "a.example.org."),
        record("example.org.", RecordData::Ns("ns.example.org.".into())),
    ] {
        let hickory = to_hickory_record(&record).unwrap();
        assert_eq!(from_hickory_record(&hickory).unwrap(), record);
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bytes in [&b""[..], b"\x12", &[0xff; 40][..]] {
        assert!(decode(bytes).is_err());
    }
    // A truncated real message.
    let r = resolve_mx(&sample_world(), "example.org", 0, &[], 1, &mut || 0);
    let bytes = r.exchanges[0].response_wire.clone().unwrap();
    for cut in 0..bytes.len() {
        let _ = decode(&bytes[..cut]);
        let _ = question_type(&bytes[..cut]);
    }
    for bytes in [&b""[..], b"\x12", &[0xff; 40][..], &[0; 12][..]] {
        assert_eq!(question_type(bytes), None, "{bytes:?}");
    }
    assert_eq!(
        decode(&bytes).unwrap().rcode,
        Outcome::NoError,
        "the whole message still parses"
    );
}
