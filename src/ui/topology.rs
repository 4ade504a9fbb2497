//! The topology diagram: the hosts an e-mail passes through, left to right, and the protocol
//! spoken on each hop.

use crate::sim::steps::Hop;
use yew::prelude::*;

/// One host in the diagram: its label and the role it plays (the RFC 5598 names).
struct Node {
    label: &'static str,
    role: &'static str,
}

const NODES: [Node; 5] = [
    Node {
        label: "Alice",
        role: "sender UA",
    },
    Node {
        label: "mail.sender",
        role: "MSA + MTA",
    },
    Node {
        label: "mx.receiver",
        role: "MTA",
    },
    Node {
        label: "mailbox",
        role: "MDA",
    },
    Node {
        label: "Bob",
        role: "recipient UA",
    },
];

/// The protocol on the hop from each node to the next.
const HOPS: [&str; 4] = ["SMTP :587", "SMTP :25", "deliver", "POP3 :110"];

const NODE_WIDTH: i32 = 116;
const NODE_HEIGHT: i32 = 52;
const NODE_STEP: i32 = 196;
const ROW_Y: i32 = 90;

#[derive(Properties, PartialEq)]
pub struct TopologyProps {
    /// The leg of the journey the current step belongs to, drawn highlighted.
    #[prop_or_default]
    pub active: Option<Hop>,
}

/// The hop index (0 = UA to MSA, ...) a leg is drawn on; DNS has its own line.
fn hop_index(hop: Hop) -> Option<usize> {
    match hop {
        Hop::Submission => Some(0),
        Hop::Relay => Some(1),
        Hop::LocalDelivery => Some(2),
        Hop::Retrieval => Some(3),
        Hop::DnsLookup => None,
    }
}

#[function_component(Topology)]
pub fn topology(props: &TopologyProps) -> Html {
    let active_hop = props.active.and_then(hop_index);
    let dns_active = props.active == Some(Hop::DnsLookup);
    let link_class = |active: bool| {
        if active {
            "topology-link topology-link-active"
        } else {
            "topology-link"
        }
    };
    let width = NODE_STEP * (NODES.len() as i32 - 1) + NODE_WIDTH + 20;
    let node_x = |index: usize| 10 + NODE_STEP * index as i32;
    let links = HOPS.iter().enumerate().map(|(index, protocol)| {
        let x1 = node_x(index) + NODE_WIDTH;
        let x2 = node_x(index + 1);
        let y = ROW_Y + NODE_HEIGHT / 2;
        html! {
            <g>
                <line class={link_class(active_hop == Some(index))} x1={x1.to_string()} y1={y.to_string()} x2={x2.to_string()} y2={y.to_string()} />
                <text class="topology-protocol" x={((x1 + x2) / 2).to_string()} y={(y - 8).to_string()}>{ *protocol }</text>
            </g>
        }
    });
    let nodes = NODES.iter().enumerate().map(|(index, node)| {
        let x = node_x(index);
        html! {
            <g class="topology-node">
                <rect x={x.to_string()} y={ROW_Y.to_string()} width={NODE_WIDTH.to_string()} height={NODE_HEIGHT.to_string()} rx="8" />
                <text x={(x + NODE_WIDTH / 2).to_string()} y={(ROW_Y + 22).to_string()}>{ node.label }</text>
                <text class="topology-role" x={(x + NODE_WIDTH / 2).to_string()} y={(ROW_Y + 40).to_string()}>{ node.role }</text>
            </g>
        }
    });
    // The DNS server sits above the sending MTA, which asks it for the MX records.
    let dns_x = node_x(1) + NODE_STEP / 2;
    html! {
        // On a phone the diagram keeps a readable size and scrolls sideways within its region.
        <div class="topology-scroll">
        <svg class="topology" viewBox={format!("0 0 {width} 160")} role="img"
            aria-label="Alice's user agent submits to mail.sender, which looks up the MX in DNS and sends over SMTP to mx.receiver; the MDA stores the message in Bob's mailbox, and Bob fetches it with POP3.">
            <line class={link_class(dns_active)} x1={(node_x(1) + NODE_WIDTH / 2).to_string()} y1={ROW_Y.to_string()} x2={(dns_x + 30).to_string()} y2="46" />
            <g class="topology-node">
                <rect x={(dns_x - 10).to_string()} y="10" width="80" height="36" rx="8" />
                <text x={(dns_x + 30).to_string()} y="33">{ "DNS" }</text>
            </g>
            <text class="topology-protocol" x={(dns_x + 110).to_string()} y="33">{ "MX query" }</text>
            { for links }
            { for nodes }
        </svg>
        </div>
    }
}
