//! The root component: the four regions of the simulator (topology, conversation, details,
//! controls) around one player state.

use super::controls::Controls;
use super::player::{Player, PlayerAction};
use super::topology::Topology;
use yew::prelude::*;

#[function_component(App)]
pub fn app() -> Html {
    // No scenario is loaded yet, so the trace is empty and there is nothing to step through.
    let player = use_reducer(|| Player::new(0));
    let on_action = {
        let player = player.clone();
        Callback::from(move |action: PlayerAction| player.dispatch(action))
    };

    html! {
        <>
            <section class="region region-topology" aria-labelledby="topology-title">
                <h2 id="topology-title" class="region-title">{ "Topology" }</h2>
                <Topology />
            </section>
            <section class="region region-conversation" aria-labelledby="conversation-title">
                <h2 id="conversation-title" class="region-title">{ "Conversation" }</h2>
                <p class="region-empty">
                    { "Every SMTP command and reply will appear here, client lines (C:) and server lines (S:) as they cross the wire." }
                </p>
            </section>
            <section class="region region-details" aria-labelledby="details-title">
                <h2 id="details-title" class="region-title">{ "Details" }</h2>
                <p class="details-text">
                    { "Pick a line of the conversation to see what it means, why it was sent, and the RFC section that defines it." }
                </p>
            </section>
            <section class="region region-controls" aria-label="Playback controls">
                <Controls player={(*player).clone()} {on_action} />
            </section>
        </>
    }
}
