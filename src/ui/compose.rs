//! The dialog where a student writes a message of their own, in the world of the scenario
//! shown (see [`Draft`]): the fields of a mail program, filled in with the scenario's own
//! message to change, and the mailboxes that world has, to write to them or deliberately not.

use super::app::run_identity;
use crate::sim::draft::{
    delay_notices_sent, server_role, submission_host, submission_logs_in, submission_offers_dsn,
    world_title, Draft, ServerChange, ATTACHMENT_MAX_KIB, NOTIFY_CHOICES, NOTIFY_MEANING,
    SAMPLE_ATTACHMENTS,
};
use crate::sim::scenario::AttachmentSpec;
use crate::sim::Scenario;
use crate::smtp::dsn_params::{DsnReturn, Notify};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties)]
pub struct ComposeProps {
    /// The world to write in; the dialog is open while there is one.
    pub base: Option<Rc<Scenario>>,
    /// The draft to open with when the world is not the one written in last: by default,
    /// the world's own message. Not compared.
    pub draft: Option<Draft>,
    /// The scenario the message makes, once it is sent, and the draft it was made of. Not
    /// compared.
    pub on_send: Callback<(Scenario, Draft)>,
    /// The dialog was closed without sending. Not compared.
    pub on_close: Callback<()>,
}

impl PartialEq for ComposeProps {
    fn eq(&self, other: &Self) -> bool {
        match (&self.base, &other.base) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// How many mailboxes the dialog names before it says how many more there are.
const MAILBOXES_NAMED: usize = 12;

/// The mailboxes of `scenario`'s servers, for the dialog's hint.
fn mailboxes_hint(scenario: &Scenario) -> String {
    let addresses: Vec<&str> = scenario
        .hosts
        .iter()
        .flat_map(|host| &host.mailboxes)
        .map(|mailbox| mailbox.address.as_str())
        .collect();
    match addresses.len() {
        0 => "This world has no mailboxes.".into(),
        count if count > MAILBOXES_NAMED => format!(
            "Mailboxes in this world: {}, and {} more.",
            addresses[..MAILBOXES_NAMED].join(", "),
            count - MAILBOXES_NAMED
        ),
        _ => format!("Mailboxes in this world: {}.", addresses.join(", ")),
    }
}

/// How many attachments there are, in words.
fn attachment_count(count: usize) -> String {
    match count {
        0 => "no attachments".into(),
        1 => "1 attachment".into(),
        count => format!("{count} attachments"),
    }
}

/// An attachment as listed in the dialog: its name, type and size.
fn attachment_line(attachment: &AttachmentSpec) -> String {
    let media = attachment
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    let octets = attachment.octets();
    let size = if octets >= 1024 {
        format!("{} KiB", octets / 1024)
    } else {
        format!("{octets} octets")
    };
    format!("{} ({media}, {size})", attachment.filename)
}

/// Why the draft cannot be sent or the attachment added: the words, and the id of the field
/// to put right, which is marked as invalid and given the focus.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    field: Option<&'static str>,
    words: String,
}

/// The id of the size field, where Enter adds the attachment.
const SIZE_ID: &str = "compose-size";

/// Puts the focus on the element of `id`, when there is one.
fn focus_by_id(id: &str) {
    let element = gloo::utils::document()
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(element) = element {
        let _ = element.focus();
    }
}

#[function_component(Compose)]
pub fn compose(props: &ComposeProps) -> Html {
    let dialog = use_node_ref();
    // Changed in place by each input, then drawn: two inputs before the next drawing (a paste
    // into one field, a click on another) each change the draft as it is, not as it was drawn.
    let draft = use_mut_ref(Draft::default);
    let redraw = use_force_update();
    let problem = use_state(|| None::<Shown>);
    // What adding or removing an attachment did, said to a screen reader: the focus stays
    // where it was, so nothing else would tell (WCAG 4.1.3).
    let attachments_said = use_state(String::new);
    let sample = use_state(|| 0usize);
    let size_kib = use_state(|| SAMPLE_ATTACHMENTS[0].size_kib.to_string());
    // The element to give the focus to once drawn: a field with a problem, or what comes
    // after an attachment removed.
    let focus_next: Rc<RefCell<Option<String>>> = use_mut_ref(|| None);
    {
        let focus_next = Rc::clone(&focus_next);
        use_effect(move || {
            if let Some(id) = focus_next.borrow_mut().take() {
                focus_by_id(&id);
            }
        });
    }
    // The world the draft was written in, and whether the draft was a written message's
    // (given) rather than the world's own: opened on it again (after Escape, say), the dialog
    // keeps what was written.
    let drafted_in = use_mut_ref(|| None::<(Rc<Scenario>, bool)>);
    // Opened with the world's own message to change, whenever a world is given; closed when
    // it is taken away.
    {
        let dialog = dialog.clone();
        let draft = Rc::clone(&draft);
        let redraw = redraw.clone();
        let problem = problem.clone();
        let attachments_said = attachments_said.clone();
        let base = props.base.clone();
        let given = props.draft.clone();
        let drafted_in = Rc::clone(&drafted_in);
        // By identity, not by contents: the dialog redraws at every key pressed in it, and a
        // world from a large file is large to compare.
        use_effect_with(run_identity(&props.base), move |_| {
            if let Some(element) = dialog.cast::<web_sys::HtmlDialogElement>() {
                match &base {
                    Some(base) => {
                        // A written message is written again in its own world, the same one
                        // each time: by identity, so that another message, written in an
                        // equal world (one a link sent), brings its own draft. Otherwise by
                        // contents: a world is copied for each opening.
                        // A written message's draft is not kept for its world's scenario.
                        let same_world = match (drafted_in.borrow().as_ref(), &given) {
                            (Some((drafted, _)), Some(_)) => Rc::ptr_eq(drafted, base),
                            (Some((drafted, false)), None) => drafted == base,
                            (Some((_, true)), None) | (None, _) => false,
                        };
                        if !same_world {
                            let was_given = given.is_some();
                            *draft.borrow_mut() = given.unwrap_or_else(|| Draft::of(base));
                            *drafted_in.borrow_mut() = Some((Rc::clone(base), was_given));
                            redraw.force_update();
                        }
                        problem.set(None);
                        attachments_said.set(String::new());
                        if !element.open() {
                            let _ = element.show_modal();
                        }
                    }
                    None if element.open() => element.close(),
                    None => {}
                }
            }
        });
    }
    let Some(base) = props.base.clone() else {
        return html! { <dialog ref={dialog} class="compose" aria-labelledby="compose-title" /> };
    };

    // A change to the draft, then drawn.
    let change = {
        let draft = Rc::clone(&draft);
        move |change: &dyn Fn(&mut Draft)| {
            change(&mut draft.borrow_mut());
            redraw.force_update();
        }
    };
    // A problem shown, and its field given the focus once drawn.
    let show = {
        let problem = problem.clone();
        let focus_next = Rc::clone(&focus_next);
        move |field: Option<&'static str>, words: String| {
            *focus_next.borrow_mut() = field.map(str::to_string);
            problem.set(Some(Shown { field, words }));
        }
    };
    // A field's input written into the draft; a problem the field was marked for is put
    // away, the field being put right.
    let field = |id: &'static str, set: fn(&mut Draft, String)| {
        let change = change.clone();
        let problem = problem.clone();
        Callback::from(move |event: InputEvent| {
            if problem.as_ref().is_some_and(|p| p.field == Some(id)) {
                problem.set(None);
            }
            let value = match event.target_dyn_into::<web_sys::HtmlTextAreaElement>() {
                Some(area) => area.value(),
                None => event
                    .target_unchecked_into::<web_sys::HtmlInputElement>()
                    .value(),
            };
            change(&|draft| set(draft, value.clone()));
        })
    };
    let onsubmit = {
        let draft = Rc::clone(&draft);
        let drafted_in = Rc::clone(&drafted_in);
        let show = show.clone();
        let on_send = props.on_send.clone();
        let base = Rc::clone(&base);
        let dialog = dialog.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let sent = draft.borrow().sent_in(&base);
            match sent {
                Ok(scenario) => {
                    // Closed first, so that the focus it gives back to what opened it can be
                    // moved on once the message is shown.
                    if let Some(element) = dialog.cast::<web_sys::HtmlDialogElement>() {
                        element.close();
                    }
                    // Sent, the draft goes with its run (opened on that run, the dialog has
                    // it again); opened on the scenario, the dialog has the scenario's own
                    // message again.
                    *drafted_in.borrow_mut() = None;
                    on_send.emit((scenario, draft.borrow().clone()))
                }
                Err(problem) => show(problem.field.map(|f| f.id()), problem.words),
            }
        })
    };
    let on_cancel = {
        let dialog = dialog.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(element) = dialog.cast::<web_sys::HtmlDialogElement>() {
                element.close();
            }
        })
    };
    // Closed by Esc or Cancel: the app forgets the world it was opened on.
    let onclose = props.on_close.reform(|_: Event| ());
    let on_sample = {
        let sample = sample.clone();
        let size_kib = size_kib.clone();
        Callback::from(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            if let Ok(index) = select.value().parse::<usize>() {
                if let Some(chosen) = SAMPLE_ATTACHMENTS.get(index) {
                    sample.set(index);
                    size_kib.set(chosen.size_kib.to_string());
                }
            }
        })
    };
    let on_size = {
        let size_kib = size_kib.clone();
        let problem = problem.clone();
        Callback::from(move |event: InputEvent| {
            if problem.as_ref().is_some_and(|p| p.field == Some(SIZE_ID)) {
                problem.set(None);
            }
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            size_kib.set(input.value());
        })
    };
    let add = {
        let change = change.clone();
        let draft = Rc::clone(&draft);
        let attachments_said = attachments_said.clone();
        let problem = problem.clone();
        let show = show.clone();
        let sample = sample.clone();
        let size_kib = size_kib.clone();
        Rc::new(move || {
            let size = size_kib
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|size| (1..=ATTACHMENT_MAX_KIB).contains(size));
            let Some(size) = size else {
                show(
                    Some(SIZE_ID),
                    format!("Size: give a whole number of KiB, from 1 to {ATTACHMENT_MAX_KIB}."),
                );
                return;
            };
            let added = SAMPLE_ATTACHMENTS[*sample].of_size(size);
            change(&|draft| draft.attachments.push(added.clone()));
            let count = draft.borrow().attachments.len();
            attachments_said.set(format!(
                "Attached {}; {}.",
                attachment_line(&added),
                attachment_count(count)
            ));
            problem.set(None);
        })
    };
    let on_add = {
        let add = Rc::clone(&add);
        Callback::from(move |_: MouseEvent| add())
    };
    // Enter in a one-line field does not send the message, as it would in a form: a mail
    // program sends only with its Send button. In the size field it adds the attachment.
    let onkeydown = Callback::from(move |event: KeyboardEvent| {
        if event.key() != "Enter" {
            return;
        }
        let Some(input) = event.target_dyn_into::<web_sys::HtmlInputElement>() else {
            return;
        };
        event.prevent_default();
        if input.id() == SIZE_ID {
            add();
        }
    });
    let attachments = draft.borrow().attachments.len();
    let remove = |index: usize| {
        let change = change.clone();
        let draft = Rc::clone(&draft);
        let attachments_said = attachments_said.clone();
        let focus_next = Rc::clone(&focus_next);
        Callback::from(move |_: MouseEvent| {
            // The focus goes on to the Remove button that takes this one's place, or the one
            // before, or to the list of attachments to add.
            *focus_next.borrow_mut() = Some(match attachments.saturating_sub(1) {
                0 => "compose-sample".to_string(),
                left => format!("compose-remove-{}", index.min(left - 1)),
            });
            let removed = draft.borrow().attachments.get(index).map(attachment_line);
            change(&|draft| {
                if index < draft.attachments.len() {
                    draft.attachments.remove(index);
                }
            });
            if let Some(removed) = removed {
                let count = draft.borrow().attachments.len();
                attachments_said.set(format!("Removed {removed}; {}.", attachment_count(count)));
            }
        })
    };
    // A server's change chosen, or taken back ("as this world has it").
    let on_server = |host: String| {
        let change = change.clone();
        Callback::from(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            let chosen = ServerChange::from_key(&select.value());
            change(&|draft| match chosen {
                Some(chosen) => {
                    draft.server_changes.insert(host.clone(), chosen);
                }
                None => {
                    draft.server_changes.remove(&host);
                }
            });
        })
    };
    let on_eight_bit = {
        let change = change.clone();
        Callback::from(move |event: Event| {
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            let checked = input.checked();
            change(&|draft| draft.eight_bit_body = checked);
        })
    };
    // Delivery reports (DSN): NOTIFY and RET chosen from lists, ORCPT ticked.
    let on_notify = {
        let change = change.clone();
        Callback::from(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            let chosen = Notify::parse(&select.value()).ok();
            change(&|draft| draft.dsn.notify = chosen);
        })
    };
    let on_ret = {
        let change = change.clone();
        Callback::from(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            let chosen = DsnReturn::parse(&select.value());
            change(&|draft| draft.dsn.ret = chosen);
        })
    };
    let on_orcpt = {
        let change = change.clone();
        Callback::from(move |event: Event| {
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            let checked = input.checked();
            change(&|draft| draft.dsn.orcpt = checked);
        })
    };
    let offers_dsn = submission_offers_dsn(&base);
    // The user agent's own server, where fewer changes do anything.
    let submit_to = submission_host(&base).unwrap_or_default();
    let logs_in = submission_logs_in(&base);
    let draft = draft.borrow().clone();
    let invalid = |id: &str| problem.as_ref().is_some_and(|p| p.field == Some(id));
    let text_field =
        |id: &'static str, label: &'static str, value: &str, set: fn(&mut Draft, String)| {
            let wrong = invalid(id);
            html! {
                <div class="compose-field">
                    <label for={id}>{ label }</label>
                    <input type="text" id={id} value={value.to_string()} oninput={field(id, set)}
                        autocomplete="off" spellcheck="false"
                        aria-invalid={wrong.then_some("true")}
                        aria-required={(id == "compose-from").then_some("true")}
                        aria-describedby={wrong.then_some("compose-problem")} />
                </div>
            }
        };
    html! {
        <dialog ref={dialog} class="compose" aria-labelledby="compose-title" {onclose}>
            <form {onsubmit} {onkeydown} novalidate=true>
                // The fields scroll above the buttons, which stay in sight.
                <div class="compose-fields">
                    // The dialog opens with the focus on its title, so that what follows (which
                    // world, which mailboxes) is read first, and a phone's keyboard does not
                    // cover it at once (WAI-ARIA APG, dialog pattern); Tab goes on to From.
                    <h2 id="compose-title" tabindex="-1" autofocus=true>{ "Write a message" }</h2>
                    <p class="compose-hint">
                        { format!("It is sent in the world of “{}”: the same DNS, servers, mailboxes and faults. ", world_title(&base)) }
                        { mailboxes_hint(&base) }
                        { " A message needs a sender (From) and a recipient at least, in To, Cc or Bcc." }
                        { " Separate addresses with commas or semicolons: bob@example.test, Carol Jones <carol@example.test> (\"Jones, Carol\" in quotes). A name goes only in the header the recipients read, and Bcc addresses only in the envelope (MAIL FROM and RCPT TO, which say where the message goes), which has the addresses alone." }
                    </p>
                    { text_field("compose-from", "From", &draft.from, |d, v| d.from = v) }
                    { text_field("compose-to", "To", &draft.to, |d, v| d.to = v) }
                    { text_field("compose-cc", "Cc", &draft.cc, |d, v| d.cc = v) }
                    { text_field("compose-bcc", "Bcc", &draft.bcc, |d, v| d.bcc = v) }
                    { text_field("compose-subject", "Subject", &draft.subject, |d, v| d.subject = v) }
                    <div class="compose-field">
                        <label for="compose-body">{ "Message" }</label>
                        <textarea id="compose-body" rows="5" value={draft.body.clone()}
                            oninput={field("compose-body", |d, v| d.body = v)}
                            aria-invalid={invalid("compose-body").then_some("true")}
                            aria-describedby={invalid("compose-body").then_some("compose-problem")} />
                    </div>
                    <div class="compose-check">
                        <input type="checkbox" id="compose-8bit" checked={draft.eight_bit_body}
                            onchange={on_eight_bit} aria-describedby="compose-8bit-hint" />
                        <label for="compose-8bit">{ "Send letters beyond ASCII (é, ü, я) as 8-bit text (8BITMIME)" }</label>
                        <p class="compose-hint" id="compose-8bit-hint">{ "Unticked, they go as quoted-printable (é as =C3=A9), which any server takes. 8-bit text passes only servers that offer 8BITMIME, on every hop." }</p>
                    </div>
                    if offers_dsn {
                        <fieldset class="compose-dsn">
                            <legend>{ "Delivery reports (DSN)" }</legend>
                            <p class="compose-hint">{ format!("{submit_to} offers DSN (RFC 3461): the user agent asks it for these reports, and each server passes the request on to the next one that offers DSN; where the next does not, a sender who asked for SUCCESS gets a report that the message was relayed.") }</p>
                            <div class="compose-field">
                                <label for="compose-notify">{ "Notices wanted (NOTIFY)" }</label>
                                <select id="compose-notify" onchange={on_notify}
                                    aria-describedby="compose-notify-hint">
                                    { for NOTIFY_CHOICES.iter().map(|(value, label)| html! {
                                        <option value={*value}
                                            selected={draft.dsn.notify.map(Notify::wire).unwrap_or_default() == *value}>
                                            { *label }
                                        </option>
                                    }) }
                                </select>
                            </div>
                            <p class="compose-hint" id="compose-notify-hint">
                                { NOTIFY_MEANING }{ " " }{ delay_notices_sent(&base) }
                            </p>
                            <div class="compose-field">
                                <label for="compose-ret">{ "A failure notice returns (RET)" }</label>
                                <select id="compose-ret" onchange={on_ret}>
                                    <option value="" selected={draft.dsn.ret.is_none()}>{ "not given: the header only" }</option>
                                    <option value="HDRS" selected={draft.dsn.ret == Some(DsnReturn::Headers)}>{ "HDRS: the header only" }</option>
                                    <option value="FULL" selected={draft.dsn.ret == Some(DsnReturn::Full)}>{ "FULL: the whole message" }</option>
                                </select>
                            </div>
                            { text_field("compose-envid", "Envelope id (ENVID)", draft.dsn.envid.as_deref().unwrap_or_default(), |d, v| d.dsn.envid = (!v.is_empty()).then_some(v)) }
                            <div class="compose-check">
                                <input type="checkbox" id="compose-orcpt" checked={draft.dsn.orcpt}
                                    onchange={on_orcpt} />
                                <label for="compose-orcpt">{ "Send each recipient's address as written (ORCPT), which notices quote" }</label>
                            </div>
                        </fieldset>
                    }
                    <fieldset class="compose-attachments">
                        <legend>{ "Attachments" }</legend>
                        if draft.attachments.is_empty() {
                            <p class="compose-hint">{ "None." }</p>
                        } else {
                            <ul>
                                { for draft.attachments.iter().enumerate().map(|(index, attachment)| {
                                    let line = attachment_line(attachment);
                                    html! {
                                        <li key={format!("{index}-{line}")}>
                                            <span>{ line.clone() }</span>
                                            <button type="button" id={format!("compose-remove-{index}")}
                                                onclick={remove(index)}
                                                aria-label={format!("Remove {line}")}>{ "Remove" }</button>
                                        </li>
                                    }
                                }) }
                            </ul>
                        }
                        <div class="compose-add">
                            <label for="compose-sample">{ "Kind" }</label>
                            <select id="compose-sample" onchange={on_sample}
                                aria-invalid={invalid("compose-sample").then_some("true")}
                                aria-describedby={invalid("compose-sample").then_some("compose-problem")}>
                                { for SAMPLE_ATTACHMENTS.iter().enumerate().map(|(index, s)| html! {
                                    <option value={index.to_string()} selected={index == *sample}>
                                        { format!("{} ({})", s.label, s.filename) }
                                    </option>
                                }) }
                            </select>
                            <label for={SIZE_ID}>{ "Size (KiB)" }</label>
                            <input type="number" id={SIZE_ID} min="1" max={ATTACHMENT_MAX_KIB.to_string()}
                                inputmode="numeric" value={(*size_kib).clone()} oninput={on_size}
                                aria-invalid={invalid(SIZE_ID).then_some("true")}
                                aria-describedby={invalid(SIZE_ID).then_some("compose-problem")} />
                            <button type="button" onclick={on_add}>{ "Add attachment" }</button>
                        </div>
                        <p class="compose-hint">{ "1 KiB is 1024 bytes; an attachment of any kind travels as text (base64), about a third larger." }</p>
                        <p class="visually-hidden" role="status" id="compose-attachments-said">{ (*attachments_said).clone() }</p>
                    </fieldset>
                    <fieldset class="compose-servers">
                        <legend>{ "Servers" }</legend>
                        <p class="compose-hint">{ "Try what can go wrong on the way: a change here is made from the moment the message is sent." }</p>
                        { for base.hosts.iter().enumerate().map(|(index, host)| {
                            let offered = ServerChange::offered_for(host, &submit_to, logs_in);
                            let role = server_role(&base, host, &submit_to);
                            let id = format!("compose-server-{index}");
                            let chosen = draft.server_changes.get(&host.name).copied();
                            html! {
                                <div class="compose-field" key={host.name.clone()}>
                                    <label for={id.clone()}>
                                        { host.name.clone() }
                                        if !role.is_empty() {
                                            <span class="compose-role">{ format!(" ({role})") }</span>
                                        }
                                    </label>
                                    <select id={id.clone()} onchange={on_server(host.name.clone())}
                                        aria-describedby={chosen.is_some().then(|| format!("{id}-said"))}>
                                        <option value="" selected={chosen.is_none()}>{ "as this world has it" }</option>
                                        { for offered.into_iter().map(|change| html! {
                                            <option value={change.key()} selected={chosen == Some(change)}>
                                                { change.label() }
                                            </option>
                                        }) }
                                    </select>
                                    // The list's words are short, for a phone's list box: the
                                    // change chosen is said whole under it.
                                    if let Some(change) = chosen {
                                        <p class="compose-hint" id={format!("{id}-said")}>{ change.described_for(host, &draft, &base) }</p>
                                    }
                                </div>
                            }
                        }) }
                    </fieldset>
                </div>
                <div class="compose-footer">
                    // A box the keyboard can scroll, when the problems are many.
                    if let Some(shown) = &*problem {
                        <div class="compose-problem" tabindex="0" role="group"
                            aria-label="Why the message is not sent">
                            <p id="compose-problem" role="alert">{ shown.words.clone() }</p>
                        </div>
                    }
                    <div class="compose-buttons">
                        <button type="submit" class="primary">{ "Send" }</button>
                        <button type="button" onclick={on_cancel}>{ "Cancel" }</button>
                    </div>
                </div>
            </form>
        </dialog>
    }
}
