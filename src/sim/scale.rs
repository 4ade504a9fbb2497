//! S10k, the scale scenario for benchmarks: 10,000 messages to 1,000 recipients in 50
//! domains, about 10% of them greylisted once (temporary failures, retried) and 1% to
//! mailboxes that do not exist (permanent failures, bounced). Built in code, not JSON,
//! because it is large and regular.

use super::scenario::{HostSpec, MailboxSpec, MessageSpec, RetryPolicy, Scenario, UserSpec};
use crate::dns::{DnsWorld, Record, RecordData, Zone};
use crate::smtp::server::ServerExtensionSet;
use std::net::{IpAddr, Ipv4Addr};

pub const S10K_MESSAGES: usize = 10_000;
pub const S10K_DOMAINS: usize = 50;
pub const S10K_RECIPIENTS: usize = 1_000;
pub const S10K_SEED: u64 = 10_000;

fn host(name: String, address: Ipv4Addr) -> HostSpec {
    HostSpec {
        name,
        address: IpAddr::V4(address),
        local_domains: Vec::new(),
        mailboxes: Vec::new(),
        relay_domains: Vec::new(),
        routes: Vec::new(),
        submission_users: Vec::new(),
        reject_sender_login_mismatch: false,
        greylist_s: None,
        max_size_octets: 10 * 1024 * 1024,
        max_recipients: 100,
        extensions: ServerExtensionSet::default(),
        bare_line_ending: Default::default(),
        client_pipelining: true,
        client_chunk_octets: None,
        connection_cache_s: 0,
        faults: Vec::new(),
    }
}

fn mx_zone(domain: &str, exchange: &str, address: Ipv4Addr) -> Zone {
    Zone {
        origin: domain.to_string(),
        records: vec![
            Record {
                name: domain.to_string(),
                ttl_s: 3600,
                data: RecordData::Mx {
                    preference: 10,
                    exchange: exchange.to_string(),
                },
            },
            Record {
                name: exchange.to_string(),
                ttl_s: 3600,
                data: RecordData::A(address),
            },
        ],
    }
}

/// The S10k scenario.
pub fn s10k() -> Scenario {
    let mut zones = Vec::new();
    let mut hosts = Vec::new();
    let msa_address = Ipv4Addr::new(10, 0, 0, 1);
    let mut msa = host("mail.sender.test".into(), msa_address);
    msa.local_domains = vec!["sender.test".into()];
    // As Postfix does, the sending MTA keeps a connection 2 s for more mail to that server.
    msa.connection_cache_s = 2;
    msa.mailboxes = vec![MailboxSpec {
        address: "alice@sender.test".into(),
        password: None,
        quota_octets: None,
        used_octets: 0,
    }];
    msa.submission_users = vec![UserSpec {
        user: "alice".into(),
        password: "secret".into(),
    }];
    zones.push(mx_zone("sender.test", "mail.sender.test", msa_address));
    hosts.push(msa);
    let per_domain = S10K_RECIPIENTS / S10K_DOMAINS;
    for d in 0..S10K_DOMAINS {
        let domain = format!("d{d:02}.test");
        let exchange = format!("mx.{domain}");
        let address = Ipv4Addr::new(10, 0, 1, d as u8 + 1);
        zones.push(mx_zone(&domain, &exchange, address));
        let mut mx = host(exchange, address);
        mx.local_domains = vec![domain.clone()];
        mx.mailboxes = (0..per_domain)
            // One recipient in 100 has no mailbox: a permanent failure at RCPT.
            .filter(|u| (d * per_domain + u) % 100 != 99)
            .map(|u| MailboxSpec {
                address: format!("u{u:02}@{domain}"),
                password: None,
                quota_octets: None,
                used_octets: 0,
            })
            .collect();
        // Five domains in fifty greylist: a tenth of the mail fails once, temporarily.
        if d % 10 == 0 {
            mx.greylist_s = Some(60);
        }
        hosts.push(mx);
    }
    let messages = (0..S10K_MESSAGES)
        .map(|n| {
            let recipient = n % S10K_RECIPIENTS;
            let (d, u) = (recipient / per_domain, recipient % per_domain);
            MessageSpec {
                dsn: Default::default(),
                from: "alice@sender.test".into(),
                to: vec![format!("u{u:02}@d{d:02}.test")],
                cc: Vec::new(),
                bcc: Vec::new(),
                subject: format!("Message {n}"),
                body: format!("This is message {n}.\n"),
                attachments: Vec::new(),
                submit_to: "mail.sender.test".into(),
                port: 587,
                auth: Some(UserSpec {
                    user: "alice".into(),
                    password: "secret".into(),
                }),
                // Ten messages a second.
                at_s: (n / 10) as u64,
                raw: None,
                pipelining: true,
                eight_bit_body: false,
            }
        })
        .collect();
    Scenario {
        name: "s10k".into(),
        title: "S10k: 10,000 messages to 1,000 recipients in 50 domains".into(),
        teaching: String::new(),
        seed: S10K_SEED,
        start_unix_s: super::scenario::DEFAULT_START_UNIX_S,
        latency_ms: 20,
        retry: RetryPolicy::default(),
        dns: DnsWorld {
            zones,
            faults: Vec::new(),
        },
        hosts,
        messages,
        fetches: Vec::new(),
        raw_sessions: Vec::new(),
        run_until_s: 7 * 24 * 3600,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s10k_is_a_valid_scenario_of_the_stated_size() {
        let scenario = s10k();
        scenario.validate().expect("S10k validates");
        assert_eq!(scenario.messages.len(), S10K_MESSAGES);
        assert_eq!(scenario.hosts.len(), S10K_DOMAINS + 1);
        let missing: usize = scenario
            .hosts
            .iter()
            .skip(1)
            .map(|h| S10K_RECIPIENTS / S10K_DOMAINS - h.mailboxes.len())
            .sum();
        assert_eq!(missing, S10K_RECIPIENTS / 100);
    }
}
