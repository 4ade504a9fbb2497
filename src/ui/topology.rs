//! The topology diagram: the parties of the loaded run (user agents, scripted clients, mail
//! servers, DNS) from left to right in the order mail reaches them, and who connects to whom
//! with which protocol and port (see [`RunMap`]). The current step's connection, host or DNS
//! question is drawn highlighted. Before a scenario is loaded it shows the usual journey.

use super::app::run_identity;
use crate::sim::map::{Focus, MapLink, MapNode, RunMap, Side};
use crate::sim::steps::Refusal;
use std::rc::Rc;
use yew::prelude::*;

const NODE_WIDTH: i32 = 150;
const NODE_HEIGHT: i32 = 52;
const COLUMN_STEP: i32 = 230;
const ROW_STEP: i32 = 70;
/// Room above the first row for the DNS server.
const TOP: i32 = 62;
const MARGIN: i32 = 10;
/// Where the DNS box's "MX query" label ends, from the box's left edge.
const DNS_LABEL_END: i32 = 190;
/// The DNS server's box.
const DNS_WIDTH: i32 = 80;
const DNS_HEIGHT: i32 = 32;
/// How far left of its column a lower resolver's line rises to DNS: past the arrowheads of
/// the links into the column (12 long), short of the labels over them.
const DNS_ROUTE_GAP: i32 = 16;
/// Where a lower resolver's line leaves the top of its box, from the box's left edge: the
/// links into the box arrive at its side, slanting down from the left, and their arrowheads
/// fill the side's upper half.
const DNS_ROUTE_START: i32 = 12;
/// Room under the last row for each link that passes other columns by.
const DETOUR_STEP: i32 = 14;
/// How far apart two links between the same two parties are drawn, with a label over the
/// upper and under the lower.
const PARALLEL_STEP: i32 = 14;
/// How far apart three or more such links are drawn, each with its label just over its own
/// line.
const PARALLEL_STEP_LABELLED: i32 = 20;
/// How far right of its column a link between two parties of that column goes round.
const SIDE_ROUTE_GAP: i32 = 18;
/// How much further right each next such link of one column goes round.
const SIDE_LEVEL_STEP: i32 = 12;
/// Room kept between the labels of the links round a column and the next column.
const SIDE_LABEL_CLEARANCE: i32 = 8;
/// How far apart the labels of the links round one column are, at least: a line of text.
const SIDE_LABEL_LINE: i32 = 13;
/// The width of a character of a link's label (11 px monospace, about 0.6 em).
const PROTOCOL_CHAR_WIDTH: i32 = 7;
/// Longest name shown whole; longer ones end in "…".
const LABEL_CHARS_MAX: usize = 20;

#[derive(Properties)]
pub struct TopologyProps {
    /// The loaded run's map; none before a scenario is chosen.
    #[prop_or_default]
    pub map: Option<Rc<RunMap>>,
    /// What the current step touches, drawn highlighted.
    #[prop_or_default]
    pub focus: Option<Focus>,
    /// What goes wrong at the step, if anything: the hop it happens on is drawn dashed, in
    /// the colour the details give the refusal, rather than as a working hop.
    #[prop_or_default]
    pub trouble: Option<Refusal>,
    /// Whether `trouble` is a failure the step's event reports (a connection refused, a DNS
    /// answer that is none), rather than a reply that refuses.
    #[prop_or_default]
    pub trouble_reported: bool,
    /// The step is bytes the server sends (a greeting, a reply): the highlighted hop's
    /// arrowhead points back at the client, the way they travel, rather than the way the
    /// connection was opened.
    #[prop_or_default]
    pub reply: bool,
    /// The page is in its one-column layout: a change resizes the diagram's box, and what the
    /// step touches is brought into sight again.
    #[prop_or_default]
    pub one_column: bool,
    /// The diagram is drawn larger ("Larger diagram"): a change resizes it, and what the step
    /// touches is brought into sight again.
    #[prop_or_default]
    pub large: bool,
}

impl PartialEq for TopologyProps {
    fn eq(&self, other: &Self) -> bool {
        run_identity(&self.map) == run_identity(&other.map)
            && self.focus == other.focus
            && self.trouble == other.trouble
            && self.trouble_reported == other.trouble_reported
            && self.reply == other.reply
            && self.one_column == other.one_column
            && self.large == other.large
    }
}

#[function_component(Topology)]
pub fn topology(props: &TopologyProps) -> Html {
    let scroll = use_node_ref();
    // On a phone the diagram scrolls sideways in its region: keep what the step touches in
    // sight.
    {
        let scroll = scroll.clone();
        let shown = (
            props.focus,
            run_identity(&props.map),
            props.one_column,
            props.large,
        );
        use_effect_with(shown, move |_| {
            let bring_into_sight = move || {
                let Some(container) = scroll.cast::<web_sys::Element>() else {
                    return;
                };
                if let Ok(Some(active)) = container.query_selector(".topology-active") {
                    let inside = container.get_bounding_client_rect();
                    let target = active.get_bounding_client_rect();
                    let centre = target.left() + target.width() / 2.0 - inside.left();
                    let left = f64::from(container.scroll_left()) + centre - inside.width() / 2.0;
                    container.set_scroll_left(left.max(0.0) as i32);
                }
            };
            bring_into_sight();
            // Once more after the page's own effects: the larger drawing's size is set on the
            // page's root, after this one's.
            gloo::timers::callback::Timeout::new(0, bring_into_sight).forget();
        });
    }
    // A diagram wider than its box can be scrolled with the keyboard too (WCAG 2.1.1): the
    // box is then a tab stop whose arrow keys scroll it (the page leaves them to it), and
    // says so; a diagram that fits is no tab stop.
    {
        let scroll = scroll.clone();
        let shown = (run_identity(&props.map), props.one_column, props.large);
        use_effect_with(shown, move |_| {
            let mark_scrollable = move || {
                let Some(container) = scroll.cast::<web_sys::Element>() else {
                    return;
                };
                // A box that has the focus keeps its place in the Tab order, even if it fits
                // now: taking it away would drop the focus to the page.
                let focused = gloo::utils::document()
                    .active_element()
                    .is_some_and(|active| container.is_same_node(Some(&active)));
                if focused || container.scroll_width() > container.client_width() + 1 {
                    let _ = container.set_attribute("tabindex", "0");
                    let _ = container.set_attribute("role", "group");
                    let _ = container.set_attribute(
                        "aria-label",
                        "The diagram, wider than its box: the arrow keys scroll it",
                    );
                } else {
                    for name in ["tabindex", "role", "aria-label"] {
                        let _ = container.remove_attribute(name);
                    }
                }
            };
            let check_after_layout = mark_scrollable.clone();
            gloo::timers::callback::Timeout::new(0, check_after_layout).forget();
            let window = gloo::utils::window();
            let listener =
                gloo::events::EventListener::new(&window, "resize", move |_| mark_scrollable());
            move || drop(listener)
        });
    }
    let map = props
        .map
        .clone()
        .unwrap_or_else(|| Rc::new(usual_journey()));
    html! {
        <div class="topology-scroll" ref={scroll}>
            { diagram(&map, props.focus, props.trouble, props.trouble_reported, props.reply) }
        </div>
    }
}

/// The journey most scenarios show, for before one is loaded.
fn usual_journey() -> RunMap {
    let node = |name: &str, side, roles: &[&'static str], column| MapNode {
        name: name.to_string(),
        side,
        roles: roles.to_vec(),
        column,
        row: 0,
    };
    RunMap::from_parts(
        vec![
            node("ua:Alice", Side::Sender, &["UA"], 0),
            node("mail.sender", Side::Server, &["MSA", "MTA"], 1),
            node("mx.receiver", Side::Server, &["MTA", "MDA", "POP3"], 2),
            node("ua:Bob", Side::Reader, &["UA"], 3),
        ],
        &[(0, 1, "SMTP :587"), (1, 2, "SMTP :25"), (3, 2, "POP3 :110")],
        vec![1],
    )
}

/// Where each column of the diagram starts. A column whose links go round its right side
/// leaves more room before the next one, for their lines and labels.
struct Columns {
    x: Vec<i32>,
}

impl Columns {
    fn new(map: &RunMap, side_routes: &SideRoutes) -> Columns {
        let mut x = Vec::new();
        let mut next = MARGIN;
        for column in 0..map.columns().max(1) {
            x.push(next);
            let extra = side_routes
                .labels_end(map, column)
                .map_or(0, |end| (end + SIDE_LABEL_CLEARANCE - COLUMN_STEP).max(0));
            next += COLUMN_STEP + extra;
        }
        Columns { x }
    }

    fn column_x(&self, column: usize) -> i32 {
        self.x
            .get(column)
            .copied()
            .unwrap_or(MARGIN + COLUMN_STEP * column as i32)
    }

    /// Where a party's box starts.
    fn node_x(&self, node: &MapNode) -> i32 {
        self.column_x(node.column)
    }

    /// Where the line of a link round a column runs up or down.
    fn side_x(&self, route: &SideRoute) -> i32 {
        self.column_x(route.column) + side_offset(route.level)
    }

    /// Where the labels of the links round a column start: beyond its outermost line, which
    /// would otherwise run through the labels of the inner ones.
    fn side_label_x(&self, side_routes: &SideRoutes, column: usize) -> i32 {
        self.column_x(column) + side_routes.label_offset(column)
    }
}

/// How far right of its column's left edge a link round it on `level` runs.
fn side_offset(level: i32) -> i32 {
    NODE_WIDTH + SIDE_ROUTE_GAP + SIDE_LEVEL_STEP * level
}

fn node_y(node: &MapNode) -> i32 {
    TOP + ROW_STEP * node.row as i32
}

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS_MAX {
        return label.to_string();
    }
    let mut cut: String = label.chars().take(LABEL_CHARS_MAX - 1).collect();
    cut.push('…');
    cut
}

fn diagram(
    map: &RunMap,
    focus: Option<Focus>,
    trouble: Option<Refusal>,
    trouble_reported: bool,
    reply: bool,
) -> Html {
    let trouble_class = trouble.map(|refusal| match refusal {
        Refusal::Temporary => "topology-trouble-temporary",
        Refusal::Permanent => "topology-trouble-permanent",
    });
    let rows = map.rows().max(1) as i32;
    // A link within one column goes round its right side, with its label beyond.
    let side_routes = SideRoutes::of(map);
    let layout = Columns::new(map, &side_routes);
    let node_x = |node: &MapNode| layout.node_x(node);
    // A link between columns that are not neighbours would cross the parties between them:
    // it goes round under the last row instead, each on its own level.
    let detours: Vec<usize> = map
        .links
        .iter()
        .enumerate()
        .filter(|(_, link)| {
            map.nodes[link.from]
                .column
                .abs_diff(map.nodes[link.to].column)
                > 1
        })
        .map(|(index, _)| index)
        .collect();
    let bottom = TOP + ROW_STEP * (rows - 1) + NODE_HEIGHT;
    // The DNS server sits above the first host that asks it; its box and label must fit.
    let dns = map.resolvers.first().map(|&first| {
        let x = node_x(&map.nodes[first]) + NODE_WIDTH / 2 + 30;
        (x, 8)
    });
    // A resolver below the first row reaches DNS by a line up the left of its column, then
    // across to the nearer side of the DNS box. Lines that reach its right side would cross
    // the label there: it goes to the box's left then, unless lines reach that side too.
    let reaches_dns_from = |right: bool| {
        map.resolvers.iter().any(|&resolver| {
            let node = &map.nodes[resolver];
            let from_right = dns.is_some_and(|(dns_x, _)| node_x(node) - DNS_ROUTE_GAP >= dns_x);
            node.row > 0 && from_right == right
        })
    };
    let label_left = reaches_dns_from(true) && !reaches_dns_from(false);
    let dns_right = dns.map_or(0, |(dns_x, _)| {
        dns_x + if label_left { DNS_WIDTH } else { DNS_LABEL_END }
    });
    let side_label_right = side_routes
        .routes
        .iter()
        .map(|route| {
            let link = &map.links[route.link];
            layout.side_label_x(&side_routes, route.column)
                + PROTOCOL_CHAR_WIDTH * link.label.chars().count() as i32
                + MARGIN / 2
        })
        .max()
        .unwrap_or(0);
    let last_column_x = layout.x.last().copied().unwrap_or(MARGIN);
    let width = (last_column_x + NODE_WIDTH + MARGIN)
        .max(dns_right)
        .max(side_label_right);
    let height = bottom + DETOUR_STEP * (detours.len() as i32 + 1) + MARGIN;
    let dns_links = dns.map(|(dns_x, dns_y)| {
        map.resolvers
            .iter()
            .map(|&resolver| {
                let node = &map.nodes[resolver];
                let active = focus == Some(Focus::Dns(resolver));
                let (x, y) = (node_x(node), node_y(node));
                // From the first row straight up; from a lower one round the left of its
                // column, past the parties above it and clear of the arrows into them.
                let points = if node.row == 0 {
                    format!("{},{y} {},{}", x + NODE_WIDTH / 2, dns_x + DNS_WIDTH / 2, dns_y + DNS_HEIGHT)
                } else {
                    // Within the drawing, for a party of the first column (whose left has no
                    // arrows into it).
                    let side = (x - DNS_ROUTE_GAP).max(MARGIN / 2);
                    let start = x + DNS_ROUTE_START;
                    // Halfway between this row and the one above.
                    let gap = y - (ROW_STEP - NODE_HEIGHT) / 2;
                    let dns_middle = dns_y + DNS_HEIGHT / 2;
                    let dns_edge = if side < dns_x { dns_x } else { dns_x + DNS_WIDTH };
                    format!("{start},{y} {start},{gap} {side},{gap} {side},{dns_middle} {dns_edge},{dns_middle}")
                };
                // A DNS answer that is none (NXDOMAIN, SERVFAIL, no answer) in its colour.
                let trouble = active.then_some(trouble_class).flatten();
                html! {
                    <polyline class={classes!("topology-link", active.then_some("topology-link-active"), active.then_some("topology-active"), trouble)}
                        points={points} />
                }
            })
            .collect::<Html>()
    });
    let links = map.links.iter().enumerate().map(|(index, link)| {
        let (from, to) = (&map.nodes[link.from], &map.nodes[link.to]);
        let active = focus == Some(Focus::Link(index));
        let link_class = classes!(
            "topology-link",
            active.then_some("topology-link-active"),
            active.then_some("topology-active"),
            active.then_some(trouble_class).flatten()
        );
        let marker = match (active, trouble) {
            (false, _) => "url(#topology-arrow)",
            (true, None) => "url(#topology-arrow-active)",
            (true, Some(Refusal::Temporary)) => "url(#topology-arrow-temporary)",
            (true, Some(Refusal::Permanent)) => "url(#topology-arrow-permanent)",
        };
        // Each link starts at its client: a reply's arrowhead is at the start, turned round
        // (the markers are drawn `auto-start-reverse`).
        let (marker_start, marker_end) = if active && reply {
            (Some(marker), None)
        } else {
            (None, Some(marker))
        };
        if let Some(route) = side_routes.routes.iter().find(|route| route.link == index) {
            // Two parties of one column (a backup MX passing mail to the primary): round the
            // right side of the column.
            let (side, y1, y2) = (layout.side_x(route), route.leave_y, route.arrive_y);
            let right = node_x(from) + NODE_WIDTH;
            let points = format!("{right},{y1} {side},{y1} {side},{y2} {right},{y2}");
            let label_x = layout.side_label_x(&side_routes, route.column);
            return html! {
                <g>
                    <polyline class={link_class} points={points} marker-start={marker_start} marker-end={marker_end} />
                    <text class="topology-protocol topology-protocol-side" x={label_x.to_string()} y={route.label_y.to_string()}>
                        { link.label.clone() }
                    </text>
                </g>
            };
        }
        if let Some(level) = detours.iter().position(|&d| d == index) {
            let route_y = bottom + DETOUR_STEP * (level as i32 + 1);
            let x1 = node_x(from) + NODE_WIDTH / 2;
            let x2 = node_x(to) + NODE_WIDTH / 2;
            let points = format!(
                "{x1},{} {x1},{route_y} {x2},{route_y} {x2},{}",
                node_y(from) + NODE_HEIGHT,
                node_y(to) + NODE_HEIGHT
            );
            // The label goes under the party the link leads to, beside the line rising into
            // it, on the side the link comes from: in the middle of a long detour it would sit
            // under another party, as if it were theirs.
            let (label_x, anchor) = if x1 > x2 {
                (x2 + 6, "topology-protocol-side")
            } else {
                (x2 - 6, "topology-protocol-before")
            };
            return html! {
                <g>
                    <polyline class={link_class} points={points} marker-start={marker_start} marker-end={marker_end} />
                    <text class={classes!("topology-protocol", anchor)} x={label_x.to_string()} y={(route_y - 3).to_string()}>
                        { link.label.clone() }
                    </text>
                </g>
            };
        }
        // Two links between the same parties are drawn apart: mail one way and a bounce
        // back, each above or below by its direction; or a user agent's submission and its
        // POP3 fetch from the same server, in the order they came.
        let returning = map
            .links
            .iter()
            .any(|other| other.from == link.to && other.to == link.from);
        let beside: Vec<usize> = (0..map.links.len())
            .filter(|&other| map.links[other].from == link.from && map.links[other].to == link.to)
            .collect();
        let offset = if returning {
            if from.column > to.column {
                7
            } else {
                -7
            }
        } else if beside.len() > 1 {
            let place = beside.iter().position(|&other| other == index).unwrap_or(0) as i32;
            let step = if beside.len() > 2 {
                PARALLEL_STEP_LABELLED
            } else {
                PARALLEL_STEP
            };
            (2 * place - (beside.len() as i32 - 1)) * step / 2
        } else {
            0
        };
        let (x1, x2) = if from.column <= to.column {
            (node_x(from) + NODE_WIDTH, node_x(to))
        } else {
            (node_x(from), node_x(to) + NODE_WIDTH)
        };
        let y1 = node_y(from) + NODE_HEIGHT / 2 + offset;
        let y2 = node_y(to) + NODE_HEIGHT / 2 + offset;
        let towards = (x2 - x1).signum();
        let (label_x, label_y, anchor) = if y1 == y2 {
            // Over the middle of the line, clear of it and, a little towards where the link
            // starts, of the arrowhead at its end, which is large when it is highlighted.
            let label_y = if beside.len() > 2 {
                // Three or more lines apart: each label just over its own line.
                y1 - 4
            } else {
                y1 + if offset > 0 { 22 } else { -13 }
            };
            ((x1 + x2) / 2 - 8 * towards, label_y, None)
        } else if y2 > y1 {
            // A slanting line would run through a label at its middle: the label goes by
            // the end, beside the party the link leads to, under the line.
            let anchor = if towards > 0 {
                "topology-protocol-before"
            } else {
                "topology-protocol-side"
            };
            (x2 - 6 * towards, y2 + 14, Some(anchor))
        } else {
            // A line rising into a higher row: over its end is the label of that row's own
            // link (two senders submitting to one server), so the label goes by the start,
            // under the line as it leaves.
            let anchor = if towards > 0 {
                "topology-protocol-side"
            } else {
                "topology-protocol-before"
            };
            (x1 + 6 * towards, y1 + 14, Some(anchor))
        };
        html! {
            <g>
                <line class={link_class}
                    x1={x1.to_string()} y1={y1.to_string()} x2={x2.to_string()} y2={y2.to_string()}
                    marker-start={marker_start} marker-end={marker_end} />
                <text class={classes!("topology-protocol", anchor)} x={label_x.to_string()} y={label_y.to_string()}>
                    { link.label.clone() }
                </text>
            </g>
        }
    });
    let nodes = map.nodes.iter().enumerate().map(|(index, node)| {
        let (x, y) = (node_x(node), node_y(node));
        let active = focus == Some(Focus::Node(index));
        // What goes wrong at the party itself (a message over the server's SIZE, a mailbox
        // over its quota, a give-up), as a hop is drawn where it goes wrong there.
        let trouble = active.then_some(trouble_class).flatten();
        html! {
            <g class={classes!("topology-node", active.then_some("topology-node-active"), active.then_some("topology-active"), trouble)}>
                <title>{ node.name.clone() }</title>
                <rect x={x.to_string()} y={y.to_string()} width={NODE_WIDTH.to_string()} height={NODE_HEIGHT.to_string()} rx="8" />
                <text x={(x + NODE_WIDTH / 2).to_string()} y={(y + 22).to_string()}>{ short(node.label()) }</text>
                <text class="topology-role" x={(x + NODE_WIDTH / 2).to_string()} y={(y + 40).to_string()}>{ role_text(map, index) }</text>
            </g>
        }
    });
    let description = describe(map, focus, trouble, trouble_reported, reply);
    html! {
        <svg class="topology" viewBox={format!("0 0 {width} {height}")} role="img"
            aria-label={description} style={format!("aspect-ratio: {width} / {height}; --drawing-width: {width}px")}>
            <defs>
                // An arrowhead per kind of link, each with the class that colours it; the
                // highlighted links are thicker, so their heads are drawn smaller.
                { for ARROWHEADS.iter().map(|&(id, size)| html! {
                    <marker id={id} class={id} viewBox="0 0 10 10" refX="10" refY="5"
                        markerWidth={size} markerHeight={size} orient="auto-start-reverse">
                        <path d="M 0 0 L 10 5 L 0 10 z" />
                    </marker>
                }) }
            </defs>
            if let Some((dns_x, dns_y)) = dns {
                <>
                    { dns_links.unwrap_or_default() }
                    <g class={classes!("topology-node", matches!(focus, Some(Focus::Dns(_))).then_some("topology-node-active"))}>
                        <rect x={dns_x.to_string()} y={dns_y.to_string()} width={DNS_WIDTH.to_string()} height={DNS_HEIGHT.to_string()} rx="8" />
                        <text x={(dns_x + DNS_WIDTH / 2).to_string()} y={(dns_y + 21).to_string()}>{ "DNS" }</text>
                    </g>
                    if label_left {
                        <text class="topology-protocol topology-protocol-before" x={(dns_x - 8).to_string()} y={(dns_y + 21).to_string()}>{ "MX query" }</text>
                    } else {
                        <text class="topology-protocol" x={(dns_x + 130).to_string()} y={(dns_y + 21).to_string()}>{ "MX query" }</text>
                    }
                </>
            }
            { for links }
            { for nodes }
        </svg>
    }
}

/// Where the links between two parties of one column go round its right side.
struct SideRoutes {
    routes: Vec<SideRoute>,
}

/// One link round the right side of a column.
struct SideRoute {
    link: usize,
    column: usize,
    /// Its line's place out from the column: 0 nearest.
    level: i32,
    /// Where it leaves the first party's right side, and arrives at the other's.
    leave_y: i32,
    arrive_y: i32,
    /// Where its label's baseline is.
    label_y: i32,
}

impl SideRoutes {
    /// Each link round a column gets its own level, the shortest nearest the column. At each
    /// party, the ends of such links toward a party above it are on the upper half of its
    /// right side, those toward one below on the lower half, the outermost link's end nearest
    /// the middle: so links that nest (a backup passing mail to the hosts above it, two hosts
    /// passing mail each way) neither cross nor run along each other; links whose spans
    /// interleave (row 0 to 2 beside row 1 to 3) may still cross. None ends at the middle,
    /// where a link from the next column (a reader's POP3) arrives.
    fn of(map: &RunMap) -> SideRoutes {
        let span = |link: &MapLink| map.nodes[link.from].row.abs_diff(map.nodes[link.to].row);
        let mut links: Vec<usize> = (0..map.links.len())
            .filter(|&index| {
                let link = &map.links[index];
                map.nodes[link.from].column == map.nodes[link.to].column
            })
            .collect();
        links.sort_by_key(|&index| {
            let link = &map.links[index];
            (map.nodes[link.from].column, span(link), index)
        });
        let column_of = |index: usize| map.nodes[map.links[index].from].column;
        let level_of = |index: usize| {
            links
                .iter()
                .take_while(|&&other| other != index)
                .filter(|&&other| column_of(other) == column_of(index))
                .count() as i32
        };
        // Where link `index` ends on `party`'s right side.
        let end_y = |party: usize, index: usize| {
            let other_end = |link: &MapLink| {
                if link.from == party {
                    link.to
                } else {
                    link.from
                }
            };
            let toward_above =
                |index: usize| map.nodes[other_end(&map.links[index])].row < map.nodes[party].row;
            let mut half: Vec<usize> = links
                .iter()
                .copied()
                .filter(|&other| {
                    let link = &map.links[other];
                    (link.from == party || link.to == party)
                        && toward_above(other) == toward_above(index)
                })
                .collect();
            // The outermost first: its end is nearest the middle.
            half.sort_by_key(|&other| std::cmp::Reverse(level_of(other)));
            let place = half.iter().position(|&other| other == index).unwrap_or(0);
            let away = end_offset(place, half.len());
            let middle = node_y(&map.nodes[party]) + NODE_HEIGHT / 2;
            if toward_above(index) {
                middle - away
            } else {
                middle + away
            }
        };
        let mut routes: Vec<SideRoute> = links
            .iter()
            .map(|&index| {
                let link = &map.links[index];
                let (leave_y, mut arrive_y) = (end_y(link.from, index), end_y(link.to, index));
                // A party's link to itself loops round its side, back a little lower.
                if link.from == link.to {
                    arrive_y += SIDE_LABEL_LINE / 2;
                }
                SideRoute {
                    link: index,
                    column: column_of(index),
                    level: level_of(index),
                    leave_y,
                    arrive_y,
                    label_y: (leave_y + arrive_y) / 2 + 4,
                }
            })
            .collect();
        // Labels of one column, all beyond its outermost line, a line of text apart at least
        // (two links each way between the same parties would put them on one spot).
        let mut order: Vec<usize> = (0..routes.len()).collect();
        order.sort_by_key(|&route| (routes[route].column, routes[route].label_y));
        let mut above: Option<(usize, i32)> = None;
        for route in order {
            let column = routes[route].column;
            if let Some((above_column, above_y)) = above {
                if above_column == column && routes[route].label_y < above_y + SIDE_LABEL_LINE {
                    routes[route].label_y = above_y + SIDE_LABEL_LINE;
                }
            }
            above = Some((column, routes[route].label_y));
        }
        SideRoutes { routes }
    }

    /// How far right of its column's left edge the labels of the links round it start.
    fn label_offset(&self, column: usize) -> i32 {
        let levels = self
            .routes
            .iter()
            .filter(|route| route.column == column)
            .map(|route| route.level + 1)
            .max()
            .unwrap_or(1);
        side_offset(levels - 1) + 4
    }

    /// Where the labels of the links round `column` end, from its left edge, if it has any.
    fn labels_end(&self, map: &RunMap, column: usize) -> Option<i32> {
        self.routes
            .iter()
            .filter(|route| route.column == column)
            .map(|route| {
                self.label_offset(column)
                    + PROTOCOL_CHAR_WIDTH * map.links[route.link].label.chars().count() as i32
            })
            .max()
    }
}

/// How far from the middle of a party's side the end of place `place` (0 nearest) of `ends`
/// links round the column going one way is: off the middle, and, for one or two, off where
/// two links from the next column between the same parties arrive (7 px each side). Past a
/// dozen, ends share a point.
fn end_offset(place: usize, ends: usize) -> i32 {
    let place = place as i32;
    match ends {
        0 | 1 => 12,
        2 => 11 + 7 * place,
        // Spread over the half side, short of its corner.
        ends => 5 + place * (NODE_HEIGHT / 2 - 9) / (ends as i32 - 1),
    }
}

/// The arrowheads' ids (also their classes), with their sizes: `url(#ID)` in a link's
/// `marker-end` names one.
const ARROWHEADS: [(&str, &str); 4] = [
    ("topology-arrow", "6"),
    ("topology-arrow-active", "4"),
    ("topology-arrow-temporary", "4"),
    ("topology-arrow-permanent", "4"),
];

/// What a party does, under its name. A user agent that also reads a mailbox (a sender
/// fetching a bounce) is one party, both sender and reader.
fn role_text(map: &RunMap, node: usize) -> String {
    let reads = map
        .links
        .iter()
        .any(|link| link.from == node && link.label.starts_with("POP3"));
    let node = &map.nodes[node];
    match node.side {
        Side::Sender if node.name.starts_with("ua:") && reads => "sender · reader UA".to_string(),
        Side::Sender if node.name.starts_with("ua:") => "sender UA".to_string(),
        Side::Sender => "scripted client".to_string(),
        Side::Reader if node.name.starts_with("ua:") => "reader UA".to_string(),
        Side::Reader => "scripted client".to_string(),
        Side::Server => node.roles.join(" · "),
    }
}

/// The diagram in words, for screen readers: what the step touches, as it is drawn
/// highlighted (a reply as going back to the client, as its arrowhead points), and whether it
/// fails or is refused there, as it is drawn dashed and coloured (WCAG 1.4.1); then who talks
/// to whom.
fn describe(
    map: &RunMap,
    focus: Option<Focus>,
    trouble: Option<Refusal>,
    trouble_reported: bool,
    reply: bool,
) -> String {
    let link_words = |link: &MapLink| {
        format!(
            "{} connects to {} ({})",
            map.nodes[link.from].label(),
            map.nodes[link.to].label(),
            link.label
        )
    };
    // As the conversation says it: a reply refuses; a connection or a DNS answer fails.
    let fails = |touched: String| match (trouble, trouble_reported) {
        (None, _) => touched,
        (Some(Refusal::Temporary), true) => format!("{touched}, which fails for now"),
        (Some(Refusal::Permanent), true) => format!("{touched}, which fails for good"),
        (Some(Refusal::Temporary), false) => format!("{touched}, where the server refuses for now"),
        (Some(Refusal::Permanent), false) => {
            format!("{touched}, where the server refuses for good")
        }
    };
    let now = match focus {
        Some(Focus::Link(index)) if reply => map.links.get(index).map(|link| {
            fails(format!(
                "{} answers {} ({})",
                map.nodes[link.to].label(),
                map.nodes[link.from].label(),
                link.label
            ))
        }),
        Some(Focus::Link(index)) => map.links.get(index).map(|link| fails(link_words(link))),
        Some(Focus::Dns(party)) => map
            .nodes
            .get(party)
            .map(|node| fails(format!("{} asks DNS", node.label()))),
        Some(Focus::Node(party)) => map.nodes.get(party).map(|node| match trouble {
            None => node.label().to_string(),
            Some(Refusal::Temporary) => format!("{}, where it fails for now", node.label()),
            Some(Refusal::Permanent) => format!("{}, where it fails for good", node.label()),
        }),
        None => None,
    };
    let links: Vec<String> = map.links.iter().map(link_words).collect();
    let who = match links.is_empty() {
        // A user agent that sent nothing: its box alone.
        true => "No one connects to anyone.".to_string(),
        false => format!("Who talks to whom: {}.", links.join("; ")),
    };
    match now {
        Some(now) => format!("At this step: {now}. {who}"),
        None => who,
    }
}
