//! A message written in the page, sent in the world of the scenario shown: the same DNS,
//! servers, mailboxes and faults, with this one message in place of the scenario's own, and
//! what the student chose to change about its servers. The student changes an address, a
//! subject, an attachment or a server and sees what the servers make of it; nothing here is a
//! shortcut, the written message goes through the same user agent and servers as every other.

use super::scenario::{
    AttachmentSpec, DsnSpec, FaultKind, HostFault, HostSpec, MailboxSpec, MessageSpec, Scenario,
    ScenarioErrors, StallPoint, UserSpec, ATTACHMENTS_TOTAL_MAX_OCTETS, ATTACHMENT_MAX_OCTETS,
    SIMULATED_TIME_MAX_S,
};
use crate::mail::compose::{envelope_address, ATTACHMENTS_MAX_OCTETS};
use crate::smtp::dsn_params::chosen_envelope_id_problem;
use crate::smtp::reply::EnhancedStatus;
use std::collections::{BTreeMap, BTreeSet};

/// What the student wrote, as written: address lists are one line of text each, separated by
/// commas, as in a mail program's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<AttachmentSpec>,
    /// Non-ASCII text in the body goes as it is (8BITMIME) rather than quoted-printable.
    pub eight_bit_body: bool,
    /// The delivery reports the sender asks for (DSN, RFC 3461), sent to a submission server
    /// that offers DSN.
    pub dsn: DsnSpec,
    /// What to change about a server of the world, by host name; a host not named stays as
    /// the world has it.
    pub server_changes: BTreeMap<String, ServerChange>,
}

/// What a student may do to one server of the world before sending: the experiments the
/// library's scenarios show one at a time, on any server. An outage, a hang, busy mailboxes
/// or a spam refusal replaces the host's faults; greylisting keeps a delay the host already
/// has, and a size limit a smaller one; times count from the message's submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerChange {
    DownForTwoHours,
    DownForGood,
    Greylisting,
    MailboxesFull,
    SmallSizeLimit,
    /// Takes few recipients in one transaction: the rest get 452 4.5.3 (RFC 5321 4.5.3.1.10).
    FewRecipients,
    /// The submission server no longer takes the user's password: 535 5.7.8 (RFC 4954 6).
    RefusesPassword,
    /// Hangs at each message's final dot for half an hour: its client waits 10 minutes for a
    /// reply that never comes (RFC 5321 4.5.3.2.6).
    HangsAtFinalDot,
    /// Answers every RCPT with 450 4.2.1 for a quarter of an hour: a temporary failure (RFC
    /// 5321 4.2.1, 4.3.2; RFC 3463 3.3, X.2.1), so its client keeps the message and tries
    /// again (RFC 5321 4.5.4.1).
    MailboxesBusy,
    /// Refuses every message after its data with 554 5.7.1, as a content filter does: a
    /// permanent failure, after which the server keeps nothing and the client does not send
    /// it again (RFC 5321 4.2.5, 6.1; RFC 3463 3.8, X.7.1) but bounces it to the sender.
    RefusesAsSpam,
}

/// The recipients a server that takes few takes in one transaction.
const FEW_RECIPIENTS: usize = 3;

/// Greylisting's delay, as postgrey's default: 5 minutes.
const GREYLIST_S: u64 = 300;
/// The size limit a server is given to refuse a message with an attachment: 1 KiB.
const SMALL_SIZE_OCTETS: u64 = 1024;
/// The quota a full mailbox without one of its own is given: 10 MiB, all in use.
const FULL_QUOTA_OCTETS: u64 = 10 * 1024 * 1024;
/// How long "down for two hours" lasts.
const TWO_HOURS_S: u64 = 2 * 3600;
/// How long "hangs at the final dot" lasts: past a client's 10-minute wait, before its first
/// retry.
const HANGS_S: u64 = 30 * 60;
/// How long "mailboxes busy" lasts: over before a sender's first retry at its default, 30
/// minutes (RFC 5321 4.5.4.1).
const BUSY_S: u64 = 15 * 60;
/// What a server whose mailboxes are busy answers each RCPT.
const BUSY_REPLY: &str = "450 4.2.1 Mailbox busy, try again later";
/// What a server that refuses a message as spam answers its final dot.
const SPAM_REPLY: &str = "554 5.7.1 Message refused: it looks like spam";

impl ServerChange {
    pub const ALL: [ServerChange; 10] = [
        ServerChange::DownForTwoHours,
        ServerChange::DownForGood,
        ServerChange::Greylisting,
        ServerChange::MailboxesFull,
        ServerChange::SmallSizeLimit,
        ServerChange::FewRecipients,
        ServerChange::RefusesPassword,
        ServerChange::HangsAtFinalDot,
        ServerChange::MailboxesBusy,
        ServerChange::RefusesAsSpam,
    ];

    /// Its value in the dialog's list.
    pub fn key(self) -> &'static str {
        match self {
            ServerChange::DownForTwoHours => "down-two-hours",
            ServerChange::DownForGood => "down-for-good",
            ServerChange::Greylisting => "greylisting",
            ServerChange::MailboxesFull => "mailboxes-full",
            ServerChange::SmallSizeLimit => "small-size-limit",
            ServerChange::FewRecipients => "few-recipients",
            ServerChange::RefusesPassword => "refuses-password",
            ServerChange::HangsAtFinalDot => "hangs-at-final-dot",
            ServerChange::MailboxesBusy => "mailboxes-busy",
            ServerChange::RefusesAsSpam => "refuses-as-spam",
        }
    }

    /// The changes that do something to `host`, for a message submitted to `submit_to`. The
    /// user agent never retries, so its server is down for good or not down; it is not
    /// greylisted either, having logged in (or on port 25, by the relay rules' choice), nor
    /// does it send the recipients refused for now in another transaction or the message
    /// refused for now at RCPT later; only a server with mailboxes can have full or busy
    /// ones; the spam refusal is shown where a student meets it, at a server the message is
    /// relayed to, whose client bounces it; and only a submission server its user agent logs
    /// in to (`logs_in`) can refuse a password.
    pub fn offered_for(host: &HostSpec, submit_to: &str, logs_in: bool) -> Vec<ServerChange> {
        let submission = host.name.eq_ignore_ascii_case(submit_to);
        ServerChange::ALL
            .into_iter()
            .filter(|change| match change {
                ServerChange::DownForTwoHours
                | ServerChange::Greylisting
                | ServerChange::FewRecipients
                | ServerChange::RefusesAsSpam => !submission,
                ServerChange::MailboxesFull | ServerChange::MailboxesBusy => {
                    !submission && !host.mailboxes.is_empty()
                }
                ServerChange::DownForGood
                | ServerChange::SmallSizeLimit
                | ServerChange::HangsAtFinalDot => true,
                ServerChange::RefusesPassword => {
                    submission && logs_in && !host.submission_users.is_empty()
                }
            })
            .collect()
    }

    pub fn from_key(key: &str) -> Option<ServerChange> {
        ServerChange::ALL
            .into_iter()
            .find(|change| change.key() == key)
    }

    /// As the dialog's list offers it: short enough to show whole in a phone's list box
    /// (the sentence under the list, [`ServerChange::described`], says the rest).
    pub fn label(self) -> &'static str {
        match self {
            ServerChange::DownForTwoHours => "down for two hours",
            ServerChange::DownForGood => "down for good",
            ServerChange::Greylisting => "greylisting (451 4.7.1)",
            ServerChange::MailboxesFull => "its mailboxes full",
            ServerChange::SmallSizeLimit => "1 KiB at most (SIZE 1024)",
            ServerChange::FewRecipients => "few recipients (452 4.5.3)",
            ServerChange::RefusesPassword => "login refused (535 5.7.8)",
            ServerChange::HangsAtFinalDot => "hangs at the final dot",
            ServerChange::MailboxesBusy => "mailboxes busy (450 4.2.1)",
            ServerChange::RefusesAsSpam => "spam filter (554 5.7.1)",
        }
    }

    /// What the change makes of `host`, as the run's introduction will say it.
    pub fn described(self, host: &HostSpec) -> String {
        let mut changed = host.clone();
        self.apply(&mut changed, 0);
        self.sentence(&changed)
    }

    /// [`ServerChange::described`], and that it changes nothing where `draft`, as written
    /// so far, does not pass `host`'s way: the sentence the introduction will have.
    pub fn described_for(self, host: &HostSpec, draft: &Draft, base: &Scenario) -> String {
        let mut sentence = self.described(host);
        if !draft.passes_by(base, &host.name) {
            sentence.push_str(OFF_THE_WAY);
        }
        sentence
    }

    /// What the change made of `host` (as changed), for the scenario's introduction.
    fn sentence(self, host: &HostSpec) -> String {
        let name = &host.name;
        match self {
            ServerChange::DownForTwoHours => {
                format!("{name} is down for two hours from the message's submission.")
            }
            ServerChange::DownForGood => {
                format!("{name} is down from the message's submission on.")
            }
            ServerChange::Greylisting => {
                let delay_s = host.greylist_s.unwrap_or(GREYLIST_S);
                let delay = match (delay_s / 60, delay_s % 60) {
                    (1, 0) => "a minute".to_string(),
                    (minutes, 0) => format!("{minutes} minutes"),
                    _ => format!("{delay_s} seconds"),
                };
                format!(
                    "{name} greylists: a sender it has not seen gets 451 4.7.1 for {delay} \
                     after its first try."
                )
            }
            ServerChange::MailboxesFull => format!("{name}'s mailboxes are full."),
            ServerChange::SmallSizeLimit => format!(
                "{name} takes messages of at most {0} octets (SIZE {0}).",
                host.max_size_octets
            ),
            ServerChange::FewRecipients => format!(
                "{name} takes at most {} recipients in one transaction: the others get 452 \
                 4.5.3, and the sender sends them in another.",
                host.max_recipients
            ),
            ServerChange::RefusesPassword => format!(
                "{name} no longer takes the user's password: its AUTH gets 535 5.7.8, and the \
                 message is not sent."
            ),
            ServerChange::HangsAtFinalDot => format!(
                "{name} hangs for 30 minutes from the message's submission: it reads each \
                 message to its end (its final dot, or its last BDAT chunk), then answers \
                 nothing, and its client waits 10 minutes for the reply."
            ),
            ServerChange::MailboxesBusy => format!(
                "{name}'s mailboxes are busy for 15 minutes from the message's submission: it \
                 answers each RCPT with \"{}\", a temporary failure, and its client keeps the \
                 message and tries again later.",
                as_sent_by(host, BUSY_REPLY)
            ),
            ServerChange::RefusesAsSpam => format!(
                "{name} refuses as spam, as a content filter does, each message whose data it \
                 reads: it answers the message's end (its final dot, or its last BDAT chunk) \
                 with \"{}\", a permanent failure, and the server that sent it there, which \
                 had taken charge of it, bounces it to the sender (unless the sender asked for \
                 no failure notice).",
                as_sent_by(host, SPAM_REPLY)
            ),
        }
    }

    fn apply(self, host: &mut HostSpec, at_s: u64) {
        match self {
            ServerChange::DownForTwoHours => {
                only_fault(host, FaultKind::Down, at_s, Some(TWO_HOURS_S))
            }
            ServerChange::DownForGood => only_fault(host, FaultKind::Down, at_s, None),
            ServerChange::Greylisting => {
                host.greylist_s = Some(host.greylist_s.unwrap_or(GREYLIST_S));
            }
            ServerChange::HangsAtFinalDot => {
                let stall = FaultKind::Stall {
                    at: StallPoint::Dot,
                };
                only_fault(host, stall, at_s, Some(HANGS_S))
            }
            ServerChange::MailboxesBusy => {
                let busy = FaultKind::Reply {
                    at: StallPoint::Rcpt,
                    reply: BUSY_REPLY.into(),
                };
                only_fault(host, busy, at_s, Some(BUSY_S))
            }
            ServerChange::RefusesAsSpam => {
                let spam = FaultKind::Reply {
                    at: StallPoint::Dot,
                    reply: SPAM_REPLY.into(),
                };
                only_fault(host, spam, at_s, None)
            }
            ServerChange::MailboxesFull => {
                for mailbox in &mut host.mailboxes {
                    let quota = mailbox
                        .quota_octets
                        .unwrap_or(FULL_QUOTA_OCTETS.max(mailbox.used_octets));
                    mailbox.quota_octets = Some(quota);
                    mailbox.used_octets = quota;
                }
            }
            ServerChange::SmallSizeLimit => {
                host.max_size_octets = host.max_size_octets.min(SMALL_SIZE_OCTETS);
            }
            ServerChange::FewRecipients => {
                host.max_recipients = host.max_recipients.min(FEW_RECIPIENTS);
            }
            // The password changed on the server; the user agent still sends the old one.
            ServerChange::RefusesPassword => {
                for user in &mut host.submission_users {
                    let new = match user.password.as_str() {
                        "new-password" => "another-password",
                        _ => "new-password",
                    };
                    user.password = new.into();
                }
            }
        }
    }
}

/// When a change that lasts `lasting_s` from `at_s` ends: at the end of simulated time at the
/// latest, so that a message sent late in it still makes a valid world.
fn ends_after(at_s: u64, lasting_s: u64) -> u64 {
    at_s.saturating_add(lasting_s).min(SIMULATED_TIME_MAX_S)
}

/// Gives `host` the one fault `kind` from `at_s`, for `lasting_s` or for good, in place of the
/// faults it had.
fn only_fault(host: &mut HostSpec, kind: FaultKind, at_s: u64, lasting_s: Option<u64>) {
    host.faults = vec![HostFault {
        kind,
        from_s: at_s,
        until_s: lasting_s.map(|lasting_s| ends_after(at_s, lasting_s)),
    }];
}

/// `reply` as `host` sends it: a server without EHLO sends no enhanced status code (RFC 2034
/// is an extension), so its text follows the code.
fn as_sent_by(host: &HostSpec, reply: &str) -> String {
    if host.extensions.ehlo {
        return reply.to_string();
    }
    // The enhanced code read as the reply reader reads it.
    match reply
        .split_once(' ')
        .and_then(|(code, rest)| Some((code, EnhancedStatus::parse_prefix(rest)?.1)))
    {
        Some((code, text)) => format!("{code} {text}"),
        None => reply.to_string(),
    }
}

/// An attachment the page offers to add, of each kind of media a message can carry: its
/// content is stand-in bytes of the size chosen, as a scenario's `size_octets` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleAttachment {
    pub label: &'static str,
    pub filename: &'static str,
    pub content_type: &'static str,
    pub size_kib: usize,
}

pub const SAMPLE_ATTACHMENTS: [SampleAttachment; 4] = [
    SampleAttachment {
        label: "image",
        filename: "photo.jpg",
        content_type: "image/jpeg",
        size_kib: 200,
    },
    SampleAttachment {
        label: "audio",
        filename: "voice.ogg",
        content_type: "audio/ogg",
        size_kib: 300,
    },
    SampleAttachment {
        label: "video",
        filename: "clip.mp4",
        content_type: "video/mp4",
        size_kib: 2048,
    },
    SampleAttachment {
        label: "document",
        filename: "notes.pdf",
        content_type: "application/pdf",
        size_kib: 100,
    },
];

/// The largest attachment the page adds, in KiB (8 MiB, a scenario's largest).
pub const ATTACHMENT_MAX_KIB: usize = ATTACHMENT_MAX_OCTETS / 1024;
/// The most the attachments of a message may add up to: what its user agent composes
/// (`compose::ATTACHMENTS_MAX_OCTETS`, 32 MiB), within what a scenario may hold.
const MESSAGE_ATTACHMENTS_MAX_OCTETS: usize =
    if ATTACHMENTS_MAX_OCTETS < ATTACHMENTS_TOTAL_MAX_OCTETS {
        ATTACHMENTS_MAX_OCTETS
    } else {
        ATTACHMENTS_TOTAL_MAX_OCTETS
    };
/// The same, in KiB.
pub const MESSAGE_ATTACHMENTS_MAX_KIB: usize = MESSAGE_ATTACHMENTS_MAX_OCTETS / 1024;

/// The field of the dialog a problem is in, by the name its element's id ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    Body,
    Attachments,
    /// The ENVID of the delivery reports asked for.
    Envid,
}

impl Field {
    pub fn id(self) -> &'static str {
        match self {
            Field::From => "compose-from",
            Field::To => "compose-to",
            Field::Cc => "compose-cc",
            Field::Bcc => "compose-bcc",
            Field::Subject => "compose-subject",
            Field::Body => "compose-body",
            Field::Attachments => "compose-sample",
            Field::Envid => "compose-envid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Field::From => "From",
            Field::To => "To",
            Field::Cc => "Cc",
            Field::Bcc => "Bcc",
            Field::Subject => "Subject",
            Field::Body => "Message",
            Field::Attachments => "Attachments",
            Field::Envid => "Envelope id",
        }
    }
}

/// Why a draft cannot be sent, in the student's words, and the field to put right (the first
/// one, when there are several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: Option<Field>,
    pub words: String,
}

impl Problem {
    fn in_field(field: Field, words: String) -> Problem {
        Problem {
            field: Some(field),
            words: format!("{}: {words}", field.label()),
        }
    }
}

impl SampleAttachment {
    /// This attachment at `size_kib` KiB.
    pub fn of_size(&self, size_kib: usize) -> AttachmentSpec {
        AttachmentSpec {
            filename: self.filename.to_string(),
            content_type: Some(self.content_type.to_string()),
            size_octets: Some(size_kib.saturating_mul(1024)),
            text: None,
        }
    }
}

/// What the name of a scenario with a written message ends with.
const WRITTEN_SUFFIX: &str = "-your-message";

/// Whether `scenario` holds a message written in the page (then written again, it keeps its
/// title and teaching text).
pub fn is_written(scenario: &Scenario) -> bool {
    scenario.name.ends_with(WRITTEN_SUFFIX)
}

/// What the title of a scenario with a written message begins with, before the title of the
/// scenario whose world it is in, in quotes.
const WRITTEN_TITLE: &str = "Your message, in “";

/// The title of the scenario whose world `scenario` is: its own, or, for a written message,
/// the one it was written in.
pub fn world_title(scenario: &Scenario) -> &str {
    let written = is_written(scenario)
        .then(|| {
            scenario
                .title
                .strip_prefix(WRITTEN_TITLE)?
                .strip_suffix('”')
        })
        .flatten();
    written.unwrap_or(&scenario.title)
}

impl Draft {
    /// The first message of `scenario` as a draft to change, or an empty one when it sends
    /// none of its own. A message given as its exact bytes is read for its subject and body
    /// (its attachments were never built).
    pub fn of(scenario: &Scenario) -> Draft {
        let Some(message) = scenario.messages.first() else {
            // From the mailbox of the user the message will be submitted as, if there is
            // one, rather than from someone else on that user's credentials.
            let from = scenario
                .hosts
                .iter()
                .find_map(|host| Some((host, host.submission_users.first()?)))
                .and_then(|(host, user)| {
                    let of_user = |mailbox: &&MailboxSpec| {
                        mailbox
                            .address
                            .split_once('@')
                            .is_some_and(|(local, _)| local == user.user)
                    };
                    host.mailboxes
                        .iter()
                        .find(of_user)
                        .or(host.mailboxes.first())
                })
                .map(|mailbox| mailbox.address.clone())
                .unwrap_or_default();
            return Draft {
                from,
                ..Draft::default()
            };
        };
        let written = message.raw.as_deref().map(subject_and_body);
        // Text that came as 8-bit octets in a message given as its bytes goes so again.
        let eight_bit_body =
            message.eight_bit_body || written.as_ref().is_some_and(|(_, body)| !body.is_ascii());
        let (subject, body) = written.unwrap_or((message.subject.clone(), message.body.clone()));
        Draft {
            from: message.from.clone(),
            to: message.to.join(", "),
            cc: message.cc.join(", "),
            bcc: message.bcc.join(", "),
            subject,
            body,
            attachments: match message.raw {
                Some(_) => Vec::new(),
                None => message.attachments.clone(),
            },
            eight_bit_body,
            // The delivery reports that message asked for, asked for again, but for its
            // ENVID: that named that message's transmission, not this one's.
            dsn: DsnSpec {
                envid: None,
                ..message.dsn.clone()
            },
            server_changes: BTreeMap::new(),
        }
    }

    /// Whether the message as written so far can pass `host_name`'s way (the server it is
    /// submitted to, one its readers fetch from, or one mail for its recipients' or its
    /// sender's domains can be sent to); true where that cannot be told without resolving.
    pub fn passes_by(&self, base: &Scenario, host_name: &str) -> bool {
        let Ok(submission) = Submission::of(base) else {
            return true;
        };
        let lists = [&self.to, &self.cc, &self.bcc].map(|list| address_list(list));
        let from = self.from.trim().to_string();
        // A message not yet whole (no sender, where bounces go, or no recipient) is not said
        // to miss a server it will pass once it is written.
        if from.is_empty() || lists.iter().all(Vec::is_empty) {
            return true;
        }
        let addresses = lists.iter().flatten().chain([&from]);
        let Some(reached) = hosts_on_the_way_for(base, &submission.submit_to, addresses) else {
            return true;
        };
        base.hosts
            .iter()
            .position(|host| host.name.eq_ignore_ascii_case(host_name))
            .is_none_or(|index| reached.contains(&index))
    }

    /// `base` with this message in place of its messages and scripted sessions, sent when
    /// and where its first message was (so that its faults, timed from the start, meet it
    /// as they met that one); or what is missing from the draft, or wrong with the scenario
    /// it makes, in words for the student.
    pub fn sent_in(&self, base: &Scenario) -> Result<Scenario, Problem> {
        let from = self.from.trim();
        if from.is_empty() {
            return Err(Problem::in_field(
                Field::From,
                "give the sender's address.".into(),
            ));
        }
        let (to, cc, bcc) = (
            address_list(&self.to),
            address_list(&self.cc),
            address_list(&self.bcc),
        );
        if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            return Err(Problem {
                field: Some(Field::To),
                words: "Give at least one recipient, in To, Cc or Bcc.".into(),
            });
        }
        let octets = self
            .attachments
            .iter()
            .map(AttachmentSpec::octets)
            .fold(0, usize::saturating_add);
        if octets > MESSAGE_ATTACHMENTS_MAX_OCTETS {
            return Err(Problem::in_field(
                Field::Attachments,
                if octets == usize::MAX {
                    // A size too large to count here (a link's number past usize): not said
                    // as the largest number there is.
                    format!(
                        "they add up to far more than the {MESSAGE_ATTACHMENTS_MAX_KIB} KiB a \
                         message may carry here: remove some."
                    )
                } else {
                    format!(
                        "they add up to {} KiB, more than the {MESSAGE_ATTACHMENTS_MAX_KIB} KiB \
                         a message may carry here: remove some.",
                        octets / 1024
                    )
                },
            ));
        }
        if let Some(problem) = self
            .dsn
            .envid
            .as_deref()
            .and_then(chosen_envelope_id_problem)
        {
            return Err(Problem::in_field(Field::Envid, format!("{problem}.")));
        }
        let submission = Submission::of(base)?;
        let message = MessageSpec {
            dsn: self.dsn.clone(),
            from: from.to_string(),
            to,
            cc,
            bcc,
            // A one-line field: a tab pasted into it is a space.
            subject: self.subject.replace('\t', " "),
            body: self.body.clone(),
            attachments: self.attachments.clone(),
            submit_to: submission.submit_to,
            port: submission.port,
            auth: submission.auth,
            at_s: submission.at_s,
            raw: None,
            pipelining: submission.pipelining,
            eight_bit_body: self.eight_bit_body,
        };
        let mut hosts = base.hosts.clone();
        let mut changed = Vec::new();
        let on_the_way = hosts_on_the_way(base, &message);
        for (name, change) in &self.server_changes {
            let Some(index) = hosts.iter().position(|h| h.name.eq_ignore_ascii_case(name)) else {
                return Err(Problem {
                    field: None,
                    words: format!("This world has no server named {}.", quoted_name(name)),
                });
            };
            let host = &mut hosts[index];
            let logs_in = message.auth.is_some();
            if !ServerChange::offered_for(host, &message.submit_to, logs_in).contains(change) {
                return Err(Problem {
                    field: None,
                    words: format!(
                        "{} is not one of the servers that can be changed to “{}”.",
                        host.name,
                        change.label()
                    ),
                });
            }
            change.apply(host, message.at_s);
            let mut sentence = change.sentence(host);
            if on_the_way
                .as_ref()
                .is_some_and(|on_the_way| !on_the_way.contains(&index))
            {
                sentence.push_str(OFF_THE_WAY);
            }
            changed.push(sentence);
        }
        let (name, title, teaching) = if is_written(base) {
            (base.name.clone(), base.title.clone(), base.teaching.clone())
        } else {
            (
                format!("{}{WRITTEN_SUFFIX}", base.name),
                format!("{WRITTEN_TITLE}{}”", base.title),
                format!(
                    "A message you wrote, sent in the world of “{}”: the same DNS, servers, \
                     mailboxes and faults{}. Step through it to see what the servers make of \
                     yours.",
                    base.title,
                    match (base.messages.is_empty(), base.raw_sessions.is_empty()) {
                        (false, true) => ", without that scenario's own message",
                        (false, false) => {
                            ", without that scenario's own message and scripted sessions"
                        }
                        (true, false) => ", without that scenario's scripted sessions",
                        (true, true) => "",
                    }
                ),
            )
        };
        // What was changed this time, after what the world had (a world written in before
        // keeps its changes, and says so).
        let teaching = std::iter::once(teaching)
            .chain(changed)
            .collect::<Vec<_>>()
            .join(" ");
        // Field by field: the base's own messages and scripted sessions, which a file may
        // have by the thousand, are not copied only to be dropped.
        let scenario = Scenario {
            name,
            title,
            teaching,
            seed: base.seed,
            start_unix_s: base.start_unix_s,
            latency_ms: base.latency_ms,
            retry: base.retry.clone(),
            dns: base.dns.clone(),
            hosts,
            messages: vec![message],
            fetches: base.fetches.clone(),
            raw_sessions: Vec::new(),
            run_until_s: base.run_until_s,
        };
        scenario
            .validate()
            .map(|()| scenario)
            .map_err(|errors| in_the_dialogs_words(&errors))
    }
}

/// A scenario's problems, where they are in the message, in the dialog's words.
fn in_the_dialogs_words(errors: &ScenarioErrors) -> Problem {
    let located = |at: &str| -> (Option<Field>, String) {
        // The message as a whole: its recipients, counted together, or its attachments,
        // added up.
        match at {
            "messages[0]" => return (Some(Field::To), "Recipients".into()),
            "messages" => return (Some(Field::Attachments), "Attachments".into()),
            _ => {}
        }
        let field = at.strip_prefix("messages[0].").unwrap_or(at);
        let (name, rest) = field.split_once(['.', '[']).unwrap_or((field, ""));
        let found = match name {
            "from" => Some(Field::From),
            "to" => Some(Field::To),
            "cc" => Some(Field::Cc),
            "bcc" => Some(Field::Bcc),
            "subject" => Some(Field::Subject),
            "body" => Some(Field::Body),
            "attachments" => Some(Field::Attachments),
            _ => None,
        };
        match found {
            Some(Field::Attachments) => {
                let number = rest
                    .split(']')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .map_or(String::new(), |n| format!(" {}", n + 1));
                (found, format!("Attachment{number}"))
            }
            Some(field) => (found, field.label().to_string()),
            None => (None, at.to_string()),
        }
    };
    let mut first = None;
    let lines: Vec<String> = errors
        .0
        .iter()
        .map(|error| {
            let (field, name) = located(&error.at);
            first = first.or(field);
            // Sentences, joined: the scenario's messages have no full stop of their own.
            let problem = error.problem.trim_end();
            let stop = if problem.ends_with(['.', '?', '!']) {
                ""
            } else {
                "."
            };
            format!("{name}: {problem}{stop}")
        })
        .collect();
    Problem {
        field: first,
        words: format!("This message cannot be sent. {}", lines.join(" ")),
    }
}

/// The subject and body of a message given as its exact bytes: its `Subject:` field
/// (unfolded) and what follows the empty line after the header, with LF line ends.
fn subject_and_body(raw: &str) -> (String, String) {
    let raw = raw.replace("\r\n", "\n");
    let (header, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut subject = None::<String>;
    for line in header.split('\n') {
        match &mut subject {
            // A folded line continues the field (RFC 5322 2.2.3).
            Some(text) if line.starts_with([' ', '\t']) => text.push_str(line),
            Some(_) => break,
            None => {
                let (name, value) = line.split_once(':').unwrap_or(("", ""));
                if name.eq_ignore_ascii_case("subject") {
                    subject = Some(value.trim_start().to_string());
                }
            }
        }
    }
    (subject.unwrap_or_default(), body.to_string())
}

/// A domain or host name as names are compared: without a final dot, in lower case.
fn bare_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What `host` does in `base` for a message submitted to `submit_to`, in a few words for the
/// dialog's list of servers: the sender's own server, the MX of some domains, or the keeper
/// of some mailboxes (empty when none of these).
pub fn server_role(base: &Scenario, host: &HostSpec, submit_to: &str) -> String {
    if host.name.eq_ignore_ascii_case(submit_to) {
        return "the sender's server".into();
    }
    let mut mx_of: Vec<String> = Vec::new();
    for record in base.dns.zones.iter().flat_map(|zone| &zone.records) {
        if let crate::dns::RecordData::Mx { exchange, .. } = &record.data {
            let domain = bare_name(&record.name);
            if bare_name(exchange) == bare_name(&host.name) && !mx_of.contains(&domain) {
                mx_of.push(domain);
            }
        }
    }
    let named = |domains: &[String]| match domains.len() {
        0..=3 => domains.join(", "),
        count => format!("{} and {} more", domains[..3].join(", "), count - 3),
    };
    if !mx_of.is_empty() {
        return format!("MX of {}", named(&mx_of));
    }
    if !host.local_domains.is_empty() {
        return format!("mailboxes of {}", named(&host.local_domains));
    }
    String::new()
}

/// Said of a server change where the message does not pass that server's way.
const OFF_THE_WAY: &str = " The message does not pass that way, so this changes nothing.";

/// The hosts of `scenario` (by index) that `message` can reach or be touched by: the one it
/// is submitted to, those that readers fetch from, and every host mail for its recipients'
/// domains and its sender's (where a bounce goes) can be sent to: each MX host of such a
/// domain, or the host at the domain's own address (the implicit MX) or at an address
/// literal, and the host of any route for such a domain. More than the message will reach,
/// never fewer; `None` when that cannot be told from the scenario without resolving as the
/// client does: an internationalised domain, or a CNAME on the way.
fn hosts_on_the_way(scenario: &Scenario, message: &MessageSpec) -> Option<BTreeSet<usize>> {
    let addresses = message.to.iter().chain(&message.cc).chain(&message.bcc);
    hosts_on_the_way_for(
        scenario,
        &message.submit_to,
        addresses.chain([&message.from]),
    )
}

/// [`hosts_on_the_way`] for a message submitted to `submit_to` whose recipients and sender
/// are `addresses`, as written.
fn hosts_on_the_way_for<'a>(
    scenario: &Scenario,
    submit_to: &str,
    addresses: impl Iterator<Item = &'a String>,
) -> Option<BTreeSet<usize>> {
    use crate::dns::RecordData;
    let records = || scenario.dns.zones.iter().flat_map(|zone| &zone.records);
    let host_named = |name: &str| {
        scenario
            .hosts
            .iter()
            .position(|host| bare_name(&host.name) == bare_name(name))
    };
    let hosts_at = |address: std::net::IpAddr| {
        // An IPv4-mapped IPv6 address is the IPv4 address (RFC 4291 2.5.5.2).
        let address = address.to_canonical();
        (0..scenario.hosts.len())
            .filter(move |&index| scenario.hosts[index].address.to_canonical() == address)
    };
    // The hosts at a name's A and AAAA records, and the one so named.
    let hosts_of_name = |name: &str| -> Option<Vec<usize>> {
        let mut found: Vec<usize> = host_named(name).into_iter().collect();
        for record in records().filter(|record| bare_name(&record.name) == bare_name(name)) {
            match record.data {
                RecordData::A(address) => found.extend(hosts_at(address.into())),
                RecordData::Aaaa(address) => found.extend(hosts_at(address.into())),
                RecordData::Cname(_) => return None,
                _ => {}
            }
        }
        Some(found)
    };
    let mut domains: BTreeSet<String> = BTreeSet::new();
    for written in addresses {
        let address = envelope_address(written);
        let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
        if !domain.is_ascii() {
            return None;
        }
        domains.insert(bare_name(domain));
    }
    let mut on_the_way: BTreeSet<usize> = host_named(submit_to).into_iter().collect();
    on_the_way.extend(
        scenario
            .fetches
            .iter()
            .filter_map(|fetch| host_named(&fetch.host)),
    );
    for domain in &domains {
        if domain.starts_with('[') {
            on_the_way.extend(
                super::world::literal_address(domain)
                    .into_iter()
                    .flat_map(hosts_at),
            );
            continue;
        }
        let exchanges: Vec<&str> = records()
            .filter(|record| bare_name(&record.name) == *domain)
            .filter_map(|record| match &record.data {
                RecordData::Mx { exchange, .. } => Some(exchange.as_str()),
                _ => None,
            })
            .collect();
        if exchanges.is_empty() {
            on_the_way.extend(hosts_of_name(domain)?);
        }
        for exchange in exchanges {
            on_the_way.extend(hosts_of_name(exchange)?);
        }
        for host in &scenario.hosts {
            for route in host
                .routes
                .iter()
                .filter(|route| bare_name(&route.domain) == *domain)
            {
                on_the_way.extend(host_named(&route.host));
            }
        }
    }
    Some(on_the_way)
}

/// The server a message written in `base` is submitted to, by name: where its first message
/// went, or the first server that takes submissions.
pub fn submission_host(base: &Scenario) -> Option<String> {
    Submission::of(base)
        .ok()
        .map(|submission| submission.submit_to)
}

/// Whether the server the user agent of `base` submits to offers DSN (RFC 3461), so that the
/// delivery reports a message asks for are sent at all.
pub fn submission_offers_dsn(base: &Scenario) -> bool {
    submission_host(base).is_some_and(|name| {
        base.hosts.iter().any(|host| {
            host.name.eq_ignore_ascii_case(&name) && host.extensions.dsn && host.extensions.ehlo
        })
    })
}

/// The NOTIFY values the page offers (RFC 3461 4.1), as written on the wire, with how the
/// list shows each (short enough for a phone; [`NOTIFY_MEANING`] says what they mean); the
/// first, empty, asks nothing.
pub const NOTIFY_CHOICES: [(&str, &str); 9] = [
    ("", "not given"),
    ("SUCCESS,FAILURE", "SUCCESS,FAILURE"),
    ("SUCCESS,FAILURE,DELAY", "SUCCESS,FAILURE,DELAY"),
    ("SUCCESS", "SUCCESS"),
    ("SUCCESS,DELAY", "SUCCESS,DELAY"),
    ("FAILURE", "FAILURE"),
    ("FAILURE,DELAY", "FAILURE,DELAY"),
    ("DELAY", "DELAY"),
    ("NEVER", "NEVER (no notice at all)"),
];

/// What NOTIFY's words ask for, said under its list.
pub const NOTIFY_MEANING: &str = "SUCCESS asks for a report when the message is delivered, \
     FAILURE for a bounce when it cannot be, DELAY for a notice while it waits; NEVER for no \
     notice at all, not even a bounce. Not given, a server reports failures, and delays if it \
     chooses, never success.";

/// Whether the hosts of `base` send delay notices, said for the page: DELAY asks for what
/// they may never send.
pub fn delay_notices_sent(base: &Scenario) -> String {
    match base.retry.delay_notice_s {
        Some(after_s) => format!(
            "In this world a server sends a delay notice once a message has waited {}.",
            super::notes::spoken_duration(after_s.saturating_mul(1000))
        ),
        None => "In this world the servers send no delay notices (RFC 3461 leaves them to the \
                 server), so DELAY brings none."
            .to_string(),
    }
}

/// A server's name as given (by a link, say), for a sentence: quoted as Rust writes a string,
/// so that a character that would not show is seen, and cut short when long.
fn quoted_name(name: &str) -> String {
    const CHARS_QUOTED: usize = 60;
    let start: String = name.chars().take(CHARS_QUOTED).collect();
    match name.chars().count() > CHARS_QUOTED {
        true => format!("{start:?}..."),
        false => format!("{start:?}"),
    }
}

impl Draft {
    /// This draft with each changed server named as `world` names it (a link may write a
    /// name in another case), so that the dialog finds the change under its server.
    pub fn with_host_names_of(mut self, world: &Scenario) -> Draft {
        self.server_changes = std::mem::take(&mut self.server_changes)
            .into_iter()
            .map(|(name, change)| {
                let named = world
                    .hosts
                    .iter()
                    .find(|host| host.name.eq_ignore_ascii_case(&name))
                    .map_or(name, |host| host.name.clone());
                (named, change)
            })
            .collect();
        self
    }
}

/// Whether the user agent of `base` logs in (AUTH) where it submits.
pub fn submission_logs_in(base: &Scenario) -> bool {
    Submission::of(base).is_ok_and(|submission| submission.auth.is_some())
}

/// Where and how the user agent submits.
struct Submission {
    submit_to: String,
    port: u16,
    auth: Option<UserSpec>,
    at_s: u64,
    pipelining: bool,
}

impl Submission {
    /// As `base`'s first message was submitted, or, without one, to its first server.
    fn of(base: &Scenario) -> Result<Submission, Problem> {
        match base.messages.first() {
            Some(message) => Ok(Submission {
                submit_to: message.submit_to.clone(),
                port: message.port,
                auth: message.auth.clone(),
                at_s: message.at_s,
                pipelining: message.pipelining,
            }),
            None => Submission::to_first_server(base),
        }
    }

    /// For a scenario that sends no message of its own: to the first server that takes
    /// submissions (port 587, as its first user; RFC 6409), else to the first server on port
    /// 25.
    fn to_first_server(base: &Scenario) -> Result<Submission, Problem> {
        let with_users = base
            .hosts
            .iter()
            .find_map(|host| Some((host, host.submission_users.first()?)));
        let (submit_to, port, auth) = match (with_users, base.hosts.first()) {
            (Some((host, user)), _) => (host.name.clone(), 587, Some(user.clone())),
            (None, Some(host)) => (host.name.clone(), 25, None),
            (None, None) => {
                return Err(Problem {
                    field: None,
                    words: "This scenario has no mail server to send to.".into(),
                })
            }
        };
        Ok(Submission {
            submit_to,
            port,
            auth,
            at_s: 0,
            pipelining: true,
        })
    }
}

/// The addresses in a field as typed: separated by commas, semicolons or line breaks, but
/// not those inside a quoted display name or angle brackets (`"Doe, Jane" <jane@x.test>`).
pub fn address_list(field: &str) -> Vec<String> {
    let mut addresses = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut bracketed, mut escaped) = (false, false, false);
    for c in field.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => bracketed = true,
            '>' if !quoted => bracketed = false,
            ',' | ';' | '\n' | '\r' if !quoted && !bracketed => {
                addresses.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    addresses.push(current);
    addresses
        .into_iter()
        .map(|address| address.trim().to_string())
        .filter(|address| !address.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::library;
    use crate::sim::{run, Fate};

    fn builtin(name: &str) -> Scenario {
        library::builtin()
            .into_iter()
            .flatten()
            .find(|scenario| scenario.name == name)
            .expect("a built-in scenario")
    }

    #[test]
    fn addresses_are_split_on_commas_semicolons_and_lines_but_not_inside_names() {
        assert_eq!(
            address_list(" bob@x.test, carol@x.test;dan@y.test\n\n, "),
            ["bob@x.test", "carol@x.test", "dan@y.test"]
        );
        assert_eq!(
            address_list(r#""Doe, Jane" <jane@x.test>, "A \"q, b\"" <a@x.test>, <c,d@x.test>"#),
            [
                r#""Doe, Jane" <jane@x.test>"#,
                r#""A \"q, b\"" <a@x.test>"#,
                "<c,d@x.test>"
            ]
        );
        assert!(address_list(" , ;\n").is_empty());
    }

    #[test]
    fn a_draft_of_a_scenario_is_its_first_message() {
        let scenario = builtin("to-cc-bcc");
        let message = &scenario.messages[0];
        let draft = Draft::of(&scenario);
        assert_eq!(draft.from, message.from);
        assert_eq!(address_list(&draft.to), message.to);
        assert_eq!(address_list(&draft.cc), message.cc);
        assert_eq!(address_list(&draft.bcc), message.bcc);
        assert_eq!(draft.subject, message.subject);
        assert_eq!(draft.body, message.body);
        // Sent again unchanged, it is the same message in the same world.
        let sent = draft.sent_in(&scenario).expect("a valid scenario");
        assert_eq!(sent.messages, scenario.messages);
        assert_eq!(sent.hosts, scenario.hosts);
        assert_eq!(sent.dns, scenario.dns);
        assert_eq!(sent.fetches, scenario.fetches);
        assert_eq!(sent.seed, scenario.seed);
        assert_ne!(sent.name, scenario.name);
        assert!(sent.title.contains(&scenario.title), "{}", sent.title);
    }

    #[test]
    fn an_unknown_user_written_in_is_refused_by_the_receiving_server() {
        let scenario = builtin("basic-delivery");
        let mut draft = Draft::of(&scenario);
        let domain = scenario.messages[0].to[0]
            .rsplit('@')
            .next()
            .expect("a domain")
            .trim_end_matches('>')
            .to_string();
        let stranger = format!("nobody-here@{domain}");
        draft.to = format!("{}, {stranger}", scenario.messages[0].to[0]);
        draft.subject = "Two of us".into();
        let sent = draft.sent_in(&scenario).expect("a valid scenario");
        assert_eq!(sent.messages.len(), 1);
        assert_eq!(sent.messages[0].to.len(), 2);
        assert_eq!(sent.messages[0].subject, "Two of us");
        let result = run(&sent, sent.seed);
        assert!(result.conservation_problems.is_empty());
        let fate_of = |address: &str| {
            result
                .outcomes
                .iter()
                .find(|(_, recipient, _)| recipient.contains(address))
                .map(|(_, _, fate)| fate.clone())
                .expect("an outcome")
        };
        assert!(matches!(
            fate_of(&scenario.messages[0].to[0]),
            Fate::Delivered { .. }
        ));
        assert!(
            !matches!(fate_of(&stranger), Fate::Delivered { .. }),
            "{:?}",
            fate_of(&stranger)
        );
        // Written again, it keeps its title and name, and its world is still the first's.
        let again = Draft::of(&sent).sent_in(&sent).expect("a valid scenario");
        assert_eq!((&again.name, &again.title), (&sent.name, &sent.title));
        assert_eq!(world_title(&again), scenario.title);
        assert_eq!(world_title(&scenario), scenario.title);
    }

    /// Each change to a server is the experiment it names, on the receiving server of the
    /// basic world: the run shows what the library's scenario for it shows, and the
    /// introduction says what was changed.
    #[test]
    fn each_server_change_is_the_experiment_it_names() {
        let scenario = builtin("basic-delivery");
        let bob = "bob@receiver.test";
        for change in ServerChange::ALL {
            assert_eq!(ServerChange::from_key(change.key()), Some(change));
            let mut draft = Draft::of(&scenario);
            // A password is the submission server's to refuse.
            let server = match change {
                ServerChange::RefusesPassword => "mail.sender.test",
                _ => "mx.receiver.test",
            };
            draft.server_changes.insert(server.into(), change);
            if change == ServerChange::SmallSizeLimit {
                draft.attachments = vec![SAMPLE_ATTACHMENTS[3].of_size(2)];
            }
            if change == ServerChange::FewRecipients {
                // Four recipients, one more than the server takes at a time (an address in
                // another case is another recipient to a server).
                draft.to =
                    format!("{bob}, carol@receiver.test, BOB@receiver.test, Carol@receiver.test");
            }
            let sent = draft.sent_in(&scenario).expect("a valid scenario");
            let changed = sent
                .hosts
                .iter()
                .find(|host| host.name == server)
                .expect("the host");
            assert!(
                sent.teaching.ends_with(&change.sentence(changed)),
                "{}",
                sent.teaching
            );
            assert!(sent.teaching.contains(server));
            let result = run(&sent, sent.seed);
            assert!(result.conservation_problems.is_empty());
            let text = result.trace.to_text();
            let (_, _, fate) = result
                .outcomes
                .iter()
                .find(|(_, recipient, _)| recipient == bob)
                .expect("bob's outcome");
            let delivered_at_s = result
                .trace
                .events
                .iter()
                .find(|e| matches!(e.event, crate::sim::Event::Delivered(_)))
                .map(|e| e.time_ms / 1000);
            match change {
                ServerChange::DownForTwoHours => {
                    assert!(text.contains("connection refused"), "{text}");
                    assert!(matches!(fate, Fate::Delivered { .. }), "{fate:?}");
                    assert!(delivered_at_s >= Some(TWO_HOURS_S), "{delivered_at_s:?}");
                }
                ServerChange::DownForGood => match fate {
                    Fate::Bounced { status, .. } => {
                        assert!(status.contains("delivery time expired"), "{status}")
                    }
                    other => panic!("bounced after the retries: {other:?}"),
                },
                ServerChange::Greylisting => {
                    assert!(text.contains("S: 451 4.7.1"), "{text}");
                    assert!(matches!(fate, Fate::Delivered { .. }), "{fate:?}");
                    assert!(delivered_at_s >= Some(GREYLIST_S), "{delivered_at_s:?}");
                }
                ServerChange::MailboxesFull => {
                    assert!(text.contains("S: 452 4.2.2"), "{text}");
                    assert!(matches!(fate, Fate::Bounced { .. }), "{fate:?}");
                }
                // The sending server reads SIZE in the EHLO reply and does not send what
                // would not be taken (RFC 1870 6.1).
                ServerChange::SmallSizeLimit => match fate {
                    Fate::Bounced { status, .. } => {
                        assert!(text.contains("S: 250-SIZE 1024"), "{text}");
                        assert!(status.starts_with("552 5.3.4"), "{status}");
                    }
                    other => panic!("bounced: {other:?}"),
                },
                // The fourth recipient waits for a second transaction (RFC 5321 4.5.3.1.10).
                ServerChange::FewRecipients => {
                    assert!(text.contains("S: 452 4.5.3"), "{text}");
                    assert_eq!(text.matches("C: MAIL FROM:<alice@sender.test>").count(), 3);
                    assert!(
                        result
                            .outcomes
                            .iter()
                            .all(|(_, _, fate)| matches!(fate, Fate::Delivered { .. })),
                        "{:?}",
                        result.outcomes
                    );
                }
                ServerChange::RefusesPassword => match fate {
                    Fate::RefusedAtSubmission { status } => {
                        assert!(text.contains("S: 535 5.7.8"), "{text}");
                        assert!(status.starts_with("535 5.7.8"), "{status}");
                    }
                    other => panic!("refused at submission: {other:?}"),
                },
                // The client waits its 10 minutes for the reply to the final dot (RFC 5321
                // 4.5.3.2.6), then tries again once the server works again: one copy.
                ServerChange::HangsAtFinalDot => {
                    assert!(text.contains("server hangs: the reply to the message's final dot"));
                    assert!(
                        text.contains("451 4.4.2 no reply from the server"),
                        "{text}"
                    );
                    assert!(matches!(fate, Fate::Delivered { .. }), "{fate:?}");
                    assert!(delivered_at_s >= Some(HANGS_S), "{delivered_at_s:?}");
                    assert_eq!(result.mailboxes[bob].len(), 1);
                }
                // A 450 at RCPT defers: its client tries again at its first retry, after the
                // mailboxes are no longer busy, and delivers once (RFC 5321 4.5.4.1).
                ServerChange::MailboxesBusy => {
                    assert_eq!(
                        text.matches(&format!("S: {BUSY_REPLY}")).count(),
                        1,
                        "{text}"
                    );
                    assert!(matches!(fate, Fate::Delivered { .. }), "{fate:?}");
                    assert!(BUSY_S < sent.retry.first_retry_s);
                    assert!(
                        delivered_at_s >= Some(sent.retry.first_retry_s),
                        "{delivered_at_s:?}"
                    );
                    assert_eq!(result.mailboxes[bob].len(), 1);
                }
                // A 554 after the data (DATA's 354 came first) refuses the message for good:
                // no retry, nothing stored for bob, a bounce to the sender quoting the reply.
                ServerChange::RefusesAsSpam => {
                    let lines: Vec<&str> = text.lines().collect();
                    let refused = lines
                        .iter()
                        .position(|line| line.ends_with(&format!("S: {SPAM_REPLY}")))
                        .expect("the refusal");
                    assert!(lines[..refused].iter().any(|line| line.contains("S: 354")));
                    assert_eq!(
                        text.matches(&format!("S: {SPAM_REPLY}")).count(),
                        1,
                        "{text}"
                    );
                    assert!(!text.contains(&format!("MDA stored m1 in {bob}")), "{text}");
                    match fate {
                        Fate::Bounced { host, status, .. } => {
                            assert_eq!(host, "mail.sender.test");
                            assert!(status.starts_with("554 5.7.1"), "{status}");
                        }
                        other => panic!("bounced: {other:?}"),
                    }
                    assert!(result.mailboxes["alice@sender.test"]
                        .iter()
                        .any(|(_, m)| String::from_utf8_lossy(m).contains(SPAM_REPLY)));
                }
            }
        }
        // The user agent's own server hanging: it waits its 10 minutes, and keeping no queue,
        // gives the message up.
        let mut draft = Draft::of(&scenario);
        draft
            .server_changes
            .insert("mail.sender.test".into(), ServerChange::HangsAtFinalDot);
        let sent = draft.sent_in(&scenario).expect("a valid scenario");
        let result = run(&sent, sent.seed);
        assert!(result.conservation_problems.is_empty());
        match result.outcomes.iter().find(|(_, r, _)| r == bob) {
            Some((_, _, Fate::RefusedAtSubmission { status })) => assert!(
                status.starts_with("4.4.2 the submission failed: no reply from the server"),
                "{status}"
            ),
            other => panic!("refused at submission: {other:?}"),
        }
        // Each change is offered where it does something: the user agent never retries and
        // is not greylisted, and a relay has no mailboxes to fill.
        let host = |scenario: &Scenario, name: &str| {
            scenario
                .hosts
                .iter()
                .find(|host| host.name == name)
                .expect("the host")
                .clone()
        };
        assert_eq!(
            submission_host(&scenario).as_deref(),
            Some("mail.sender.test")
        );
        assert_eq!(
            ServerChange::offered_for(
                &host(&scenario, "mail.sender.test"),
                "mail.sender.test",
                true
            ),
            [
                ServerChange::DownForGood,
                ServerChange::SmallSizeLimit,
                ServerChange::RefusesPassword,
                ServerChange::HangsAtFinalDot
            ]
        );
        assert_eq!(
            ServerChange::offered_for(
                &host(&scenario, "mx.receiver.test"),
                "mail.sender.test",
                true
            ),
            ServerChange::ALL
                .into_iter()
                .filter(|change| *change != ServerChange::RefusesPassword)
                .collect::<Vec<_>>()
        );
        let relayed = builtin("unknown-user-after-relay");
        // Each server is said with what it does.
        let submit_to = submission_host(&scenario).expect("a submission server");
        let relayed_roles: Vec<String> = [
            "mail.sender.test",
            "mx.receiver.test",
            "store.receiver.test",
        ]
        .iter()
        .map(|name| server_role(&relayed, &host(&relayed, name), &submit_to))
        .collect();
        assert_eq!(
            relayed_roles,
            [
                "the sender's server",
                "MX of receiver.test",
                "mailboxes of receiver.test"
            ]
        );
        assert!(!ServerChange::offered_for(
            &host(&relayed, "mx.receiver.test"),
            "mail.sender.test",
            true
        )
        .contains(&ServerChange::MailboxesFull));
        // A server named in another case (by a link) is the world's, under its own name; one
        // the world does not have is named in the problem as given, its controls shown.
        let mut draft = Draft::of(&scenario);
        draft
            .server_changes
            .insert("MX.Receiver.TEST".into(), ServerChange::Greylisting);
        let draft = draft.with_host_names_of(&scenario);
        assert_eq!(
            draft.server_changes.keys().collect::<Vec<_>>(),
            ["mx.receiver.test"]
        );
        let mut stranger = Draft::of(&scenario);
        stranger
            .server_changes
            .insert("mx\u{202e}.test\n".into(), ServerChange::Greylisting);
        let problem = stranger.sent_in(&scenario).unwrap_err();
        assert_eq!(
            problem.words,
            "This world has no server named \"mx\\u{202e}.test\\n\"."
        );
        // A password is refused only where the user agent logs in: not in relay-denied, whose
        // user agent submits on port 25 without AUTH.
        let denied = builtin("relay-denied");
        let submit_to = submission_host(&denied).expect("a submission server");
        assert!(!submission_logs_in(&denied));
        assert!(submission_logs_in(&scenario));
        assert!(
            !ServerChange::offered_for(&host(&denied, &submit_to), &submit_to, false)
                .contains(&ServerChange::RefusesPassword)
        );
        let mut draft = Draft::of(&denied);
        draft
            .server_changes
            .insert(submit_to.clone(), ServerChange::RefusesPassword);
        let problem = draft.sent_in(&denied).unwrap_err();
        assert_eq!(
            problem.words,
            format!(
                "{submit_to} is not one of the servers that can be changed to “login refused \
                 (535 5.7.8)”."
            )
        );
        let mut draft = Draft::of(&scenario);
        draft
            .server_changes
            .insert("mail.sender.test".into(), ServerChange::Greylisting);
        assert!(draft.sent_in(&scenario).is_err());
        // An outage replaces the faults the world had: down for good, then down for two
        // hours only, and the mail is delivered after it.
        let down = builtin("server-down-for-good");
        let mut draft = Draft::of(&down);
        draft
            .server_changes
            .insert("mx.receiver.test".into(), ServerChange::DownForTwoHours);
        let sent = draft.sent_in(&down).expect("a valid scenario");
        assert_eq!(host(&sent, "mx.receiver.test").faults.len(), 1);
        let result = run(&sent, sent.seed);
        assert!(
            result
                .outcomes
                .iter()
                .any(|(_, recipient, fate)| recipient == bob
                    && matches!(fate, Fate::Delivered { .. }))
        );
        // A full mailbox is a quota all in use, of a mailbox's size.
        let mut draft = Draft::of(&scenario);
        draft
            .server_changes
            .insert("mx.receiver.test".into(), ServerChange::MailboxesFull);
        let sent = draft.sent_in(&scenario).expect("a valid scenario");
        for mailbox in host(&sent, "mx.receiver.test").mailboxes {
            assert_eq!(mailbox.quota_octets, Some(FULL_QUOTA_OCTETS));
            assert_eq!(mailbox.used_octets, FULL_QUOTA_OCTETS);
        }
        // A server the world does not have is said so.
        let mut draft = Draft::of(&scenario);
        draft
            .server_changes
            .insert("mx.nowhere.test".into(), ServerChange::DownForGood);
        assert!(draft.sent_in(&scenario).is_err());
    }

    #[test]
    fn what_is_missing_or_wrong_is_said() {
        let scenario = builtin("basic-delivery");
        let draft = Draft::of(&scenario);
        let no_sender = Draft {
            from: " ".into(),
            ..draft.clone()
        };
        let problem = no_sender.sent_in(&scenario).unwrap_err();
        assert_eq!(problem.field, Some(Field::From));
        assert!(problem.words.starts_with("From: "), "{}", problem.words);
        let nobody = Draft {
            to: ", ".into(),
            cc: String::new(),
            bcc: String::new(),
            ..draft.clone()
        };
        assert!(nobody
            .sent_in(&scenario)
            .unwrap_err()
            .words
            .contains("at least one recipient"));
        // A display name, as a mail program takes it: written in the header as it is, the
        // address alone in the envelope.
        let named = Draft {
            from: "Alice Liddell <alice@sender.test>".into(),
            cc: r#"bob@receiver.test, "Doe, Jane" <carol@receiver.test>"#.into(),
            ..draft.clone()
        };
        let mut sent = named.sent_in(&scenario).expect("a valid scenario");
        // The mailboxes as delivered, not read.
        sent.fetches.clear();
        assert_eq!(
            sent.messages[0].cc,
            ["bob@receiver.test", r#""Doe, Jane" <carol@receiver.test>"#]
        );
        let result = crate::sim::run(&sent, sent.seed);
        let text = result.trace.to_text();
        assert!(text.contains("C: MAIL FROM:<alice@sender.test>"), "{text}");
        assert!(text.contains("C: RCPT TO:<carol@receiver.test>"), "{text}");
        let stored = String::from_utf8_lossy(&result.mailboxes["carol@receiver.test"][0].1);
        assert!(
            stored.contains("\r\nFrom: Alice Liddell <alice@sender.test>\r\n")
                && stored.contains(r#"Cc: bob@receiver.test, "Doe, Jane" <carol@receiver.test>"#),
            "{stored}"
        );
        let quoted = Draft {
            to: r#""al ice"@receiver.test, <>"#.into(),
            ..draft.clone()
        };
        assert!(quoted.sent_in(&scenario).is_ok());
        // Too many recipients, counted together: said at To.
        let crowd = Draft {
            to: (0..1001)
                .map(|n| format!("u{n}@receiver.test"))
                .collect::<Vec<_>>()
                .join(", "),
            ..draft.clone()
        };
        let problem = crowd.sent_in(&scenario).unwrap_err();
        assert_eq!(problem.field, Some(Field::To));
        assert!(
            problem.words.contains("Recipients: more than 1000"),
            "{}",
            problem.words
        );
        // One attachment over the largest, and attachments over the most in all, each said
        // as the dialog names them.
        let huge = Draft {
            attachments: vec![
                SAMPLE_ATTACHMENTS[0].of_size(1),
                SAMPLE_ATTACHMENTS[2].of_size(ATTACHMENT_MAX_KIB + 1),
            ],
            ..draft.clone()
        };
        let problem = huge.sent_in(&scenario).unwrap_err();
        assert_eq!(problem.field, Some(Field::Attachments));
        assert!(
            problem.words.ends_with(
                "Attachment 2: larger than 8388608 octets (8192 KiB), the most an attachment \
                 may be."
            ),
            "{}",
            problem.words
        );
        // A character that would reorder the address is named by its code point, and each
        // problem is a sentence.
        let reversed = Draft {
            to: "bob@receiver.test\u{202e}, carol@receiver.test\u{2028}".into(),
            ..draft.clone()
        };
        let problem = reversed.sent_in(&scenario).unwrap_err();
        assert_eq!(problem.field, Some(Field::To));
        assert!(
            problem.words.contains(
                "To: \"bob@receiver.testU+202E\" holds U+202E, a bidirectional formatting \
                 character, which would show it in another order than it is written."
            ),
            "{}",
            problem.words
        );
        assert!(!problem.words.contains("\\u{"), "{}", problem.words);
        // No more than its user agent composes: a message the dialog lets go is not then
        // refused by the user agent for its attachments.
        let many = Draft {
            attachments: vec![SAMPLE_ATTACHMENTS[2].of_size(ATTACHMENT_MAX_KIB); 5],
            ..draft.clone()
        };
        let problem = many.sent_in(&scenario).unwrap_err();
        assert!(
            problem
                .words
                .contains("they add up to 40960 KiB, more than the 32768 KiB"),
            "{}",
            problem.words
        );
        // A size past counting (a link's number saturates; usize is 32 bits in the browser)
        // is not said as that number of KiB.
        let uncountable = Draft {
            attachments: vec![AttachmentSpec {
                size_octets: Some(usize::MAX),
                ..SAMPLE_ATTACHMENTS[2].of_size(1)
            }],
            ..draft.clone()
        };
        let problem = uncountable.sent_in(&scenario).unwrap_err();
        assert!(
            problem
                .words
                .contains("they add up to far more than the 32768 KiB"),
            "{}",
            problem.words
        );
        let most = Draft {
            attachments: vec![SAMPLE_ATTACHMENTS[2].of_size(ATTACHMENT_MAX_KIB); 4],
            ..draft.clone()
        };
        let sent = most.sent_in(&scenario).expect("within the limit");
        let result = crate::sim::run(&sent, sent.seed);
        assert!(
            result.outcomes.iter().all(|(_, _, fate)| !matches!(
                fate,
                crate::sim::trace::Fate::RefusedAtSubmission { status }
                    if status.contains("could not compose")
            )),
            "{:?}",
            result.outcomes
        );
        // A tab pasted into the one-line Subject is a space.
        let tabbed = Draft {
            subject: "a\tb".into(),
            ..draft
        };
        let sent = tabbed.sent_in(&scenario).expect("a valid scenario");
        assert_eq!(sent.messages[0].subject, "a b");
    }

    #[test]
    fn a_written_scenario_downloaded_as_a_file_opens_again_as_it_was() {
        for scenario in library::builtin().into_iter().flatten() {
            let mut draft = Draft::of(&scenario);
            if draft.to.is_empty() {
                draft.from = "me@example.test".into();
                draft.to = "you@example.test".into();
            }
            draft.attachments.push(SAMPLE_ATTACHMENTS[1].of_size(3));
            let sent = draft.sent_in(&scenario).expect("a valid scenario");
            let file = serde_json::to_string_pretty(&sent).expect("a scenario serialises");
            let opened = Scenario::from_json(&file).expect("its file is a valid scenario");
            assert_eq!(opened, sent, "{}", scenario.name);
        }
    }

    /// A server without EHLO sends its replies without enhanced status codes, and the
    /// introduction quotes the reply as that server sends it.
    #[test]
    fn a_scripted_refusal_is_quoted_as_the_server_sends_it() {
        let scenario = builtin("old-server-no-ehlo");
        let old = scenario
            .hosts
            .iter()
            .find(|host| !host.extensions.ehlo)
            .expect("a server without EHLO");
        for (change, sent_reply) in [
            (
                ServerChange::MailboxesBusy,
                "450 Mailbox busy, try again later",
            ),
            (
                ServerChange::RefusesAsSpam,
                "554 Message refused: it looks like spam",
            ),
        ] {
            let mut draft = Draft::of(&scenario);
            draft.server_changes.insert(old.name.clone(), change);
            let sent = draft.sent_in(&scenario).expect("a valid scenario");
            assert!(
                sent.teaching.contains(&format!("\"{sent_reply}\"")),
                "{}",
                sent.teaching
            );
            let text = run(&sent, sent.seed).trace.to_text();
            assert!(text.contains(&format!("S: {sent_reply}")), "{text}");
        }
        // A change that would outlast simulated time ends with it.
        assert_eq!(
            ends_after(SIMULATED_TIME_MAX_S - 60, BUSY_S),
            SIMULATED_TIME_MAX_S
        );
        assert_eq!(ends_after(60, BUSY_S), 60 + BUSY_S);
    }

    /// Every change offered on every server of every built-in world makes a valid world
    /// whose run keeps every recipient's message accounted for, and is said in its
    /// introduction.
    #[test]
    fn every_change_offered_in_every_built_in_world_runs_and_conserves() {
        let mut runs = 0;
        for scenario in library::builtin().into_iter().flatten() {
            let Some(submit_to) = submission_host(&scenario) else {
                continue;
            };
            // A world whose own message the dialog cannot send as it stands (a raw session's,
            // without recipients) is not the changes' to test.
            if Draft::of(&scenario).sent_in(&scenario).is_err() {
                continue;
            }
            let logs_in = submission_logs_in(&scenario);
            for host in &scenario.hosts {
                for change in ServerChange::offered_for(host, &submit_to, logs_in) {
                    let mut draft = Draft::of(&scenario);
                    draft.server_changes.insert(host.name.clone(), change);
                    let what = format!("{} on {} in {}", change.key(), host.name, scenario.name);
                    let sent = draft
                        .sent_in(&scenario)
                        .unwrap_or_else(|problem| panic!("{what}: {problem:?}"));
                    if let Err(errors) = sent.validate() {
                        panic!("{what}: {errors}");
                    }
                    // What the dialog says under the list is what the introduction says,
                    // "changes nothing" with it or without it.
                    let said = change.described_for(host, &draft, &scenario);
                    assert_eq!(
                        said.ends_with(OFF_THE_WAY),
                        sent.teaching.contains(OFF_THE_WAY.trim_start()),
                        "{what}: {said}"
                    );
                    assert!(sent.teaching.contains(&said), "{what}: {}", sent.teaching);
                    let result = run(&sent, sent.seed);
                    assert!(
                        result.conservation_problems.is_empty(),
                        "{what}: {:?}",
                        result.conservation_problems
                    );
                    runs += 1;
                }
            }
        }
        assert!(runs > 500, "{runs} runs");
    }

    /// A change to a server the message cannot reach is said to change nothing; one on its
    /// way, through an MX or a route, is not.
    #[test]
    fn a_change_off_the_messages_way_is_said_to_change_nothing() {
        let nothing = "The message does not pass that way, so this changes nothing.";
        let teaching_with = |name: &str, host: &str, to: Option<&str>| {
            let scenario = builtin(name);
            let mut draft = Draft::of(&scenario);
            if let Some(to) = to {
                draft.to = to.into();
            }
            draft
                .server_changes
                .insert(host.into(), ServerChange::DownForGood);
            let teaching = draft.sent_in(&scenario).expect("a valid scenario").teaching;
            // The dialog says it under the server's list as the message is written.
            let server = scenario.hosts.iter().find(|h| h.name == host).unwrap();
            let said = ServerChange::DownForGood.described_for(server, &draft, &scenario);
            assert!(teaching.contains(&said), "{said} in {teaching}");
            assert_eq!(
                said.ends_with(nothing),
                teaching.contains(nothing),
                "{said}"
            );
            teaching
        };
        // Dave's provider, when Alice writes to Bob; and when she writes to Dave, it is his MX.
        let off = teaching_with("two-senders", "mail.other.test", None);
        assert!(off.contains(nothing), "{off}");
        let dave = builtin("two-senders").messages[1].from.clone();
        let on = teaching_with("two-senders", "mail.other.test", Some(&dave));
        assert!(!on.contains(nothing), "{on}");
        // The receiving MX, and an internal store reached by a route.
        for (name, host) in [
            ("basic-delivery", "mx.receiver.test"),
            ("unknown-user-after-relay", "store.receiver.test"),
        ] {
            let teaching = teaching_with(name, host, None);
            assert!(teaching.contains(host), "{name}: {teaching}");
            assert!(!teaching.contains(nothing), "{name}: {teaching}");
        }
        // While no recipient or no sender is written yet, no server is said to be off the
        // way; a host is named in any case.
        let scenario = builtin("two-senders");
        let mut draft = Draft::of(&scenario);
        assert!(!draft.passes_by(&scenario, "mail.other.test"));
        assert!(!draft.passes_by(&scenario, "MAIL.Other.test"));
        assert!(draft.passes_by(&scenario, "mx.receiver.test"));
        let mut no_sender = draft.clone();
        no_sender.from = " ".into();
        assert!(no_sender.passes_by(&scenario, "mail.other.test"));
        draft.to.clear();
        assert!(draft.cc.is_empty() && draft.bcc.is_empty());
        assert!(draft.passes_by(&scenario, "mail.other.test"));
    }

    #[test]
    fn a_message_given_as_bytes_is_read_for_its_subject_and_body() {
        let scenario = builtin("8bit-without-8bitmime");
        let raw = scenario.messages[0].raw.clone().expect("a raw message");
        let draft = Draft::of(&scenario);
        assert!(raw.contains(&format!("Subject: {}", draft.subject)));
        assert!(!draft.subject.is_empty() && draft.subject != scenario.messages[0].subject);
        assert!(draft.body.contains("café"), "{:?}", draft.body);
        assert!(!draft.body.contains('\r'));
        // Its 8-bit text goes as 8-bit text again, and meets the server without 8BITMIME as
        // the scenario's message did (RFC 6152 3: 5.6.3); as quoted-printable, it would not.
        assert!(draft.eight_bit_body);
        let fate_of = |draft: &Draft| {
            let sent = draft.sent_in(&scenario).expect("a valid scenario");
            let result = run(&sent, sent.seed);
            assert!(result.conservation_problems.is_empty());
            result.outcomes[0].2.clone()
        };
        match fate_of(&draft) {
            Fate::Bounced { status, .. } => assert!(status.contains("5.6.3"), "{status}"),
            other => panic!("{other:?}"),
        }
        let quoted_printable = Draft {
            eight_bit_body: false,
            ..draft.clone()
        };
        assert!(matches!(fate_of(&quoted_printable), Fate::Delivered { .. }));
        // A scenario's composed message keeps its choice.
        let mut composed = builtin("basic-delivery");
        composed.messages[0].eight_bit_body = true;
        assert!(Draft::of(&composed).eight_bit_body);
        assert!(!Draft::of(&builtin("basic-delivery")).eight_bit_body);
        assert_eq!(
            subject_and_body("From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\n\r\nHi\r\n"),
            ("one two".to_string(), "Hi\n".to_string())
        );
        assert_eq!(
            subject_and_body("no header at all"),
            (String::new(), String::new())
        );
    }

    #[test]
    fn a_scenario_without_a_message_sends_to_its_first_server() {
        let scenario = builtin("smtp-smuggling");
        assert!(scenario.messages.is_empty());
        // Written from the mailbox of the user it is submitted as.
        let submitting = scenario
            .hosts
            .iter()
            .find(|host| !host.submission_users.is_empty())
            .expect("a submission server");
        assert_eq!(Draft::of(&scenario).from, submitting.mailboxes[0].address);
        let draft = Draft {
            from: "me@example.test".into(),
            to: "you@example.test".into(),
            attachments: vec![SAMPLE_ATTACHMENTS[0].of_size(1)],
            ..Draft::default()
        };
        let sent = draft.sent_in(&scenario).expect("a valid scenario");
        assert!(sent.raw_sessions.is_empty());
        assert!(sent.teaching.contains("scripted sessions"));
        let message = &sent.messages[0];
        assert_eq!(message.submit_to, scenario.hosts[0].name);
        assert_eq!(message.attachments[0].size_octets, Some(1024));
        let result = run(&sent, sent.seed);
        assert!(result.conservation_problems.is_empty());
        // The domain is unknown: the message bounces, and the bounce, to an unknown domain
        // too, is dropped.
        let fates: Vec<(&str, &str)> = result
            .outcomes
            .iter()
            .map(|(id, recipient, _)| (id.as_str(), recipient.as_str()))
            .collect();
        assert_eq!(
            fates,
            [("m1", "you@example.test"), ("b1", "me@example.test")]
        );
    }

    /// The delivery reports the scenario's message asked for are asked again but for its
    /// ENVID; what the student chooses is sent, and an ENVID that cannot be sent is refused
    /// in its field.
    #[test]
    fn a_draft_asks_for_the_delivery_reports_chosen() {
        let scenario = builtin("dsn-on-request");
        assert!(submission_offers_dsn(&scenario));
        assert!(!submission_offers_dsn(&builtin("basic-delivery")));
        let draft = Draft::of(&scenario);
        assert_eq!(
            draft.dsn,
            DsnSpec {
                envid: None,
                ..scenario.messages[0].dsn.clone()
            }
        );
        assert!(scenario.messages[0].dsn.envid.is_some());
        let chosen = Draft {
            to: "nobody@receiver.test".into(),
            dsn: DsnSpec {
                notify: crate::smtp::dsn_params::Notify::parse("NEVER").ok(),
                ret: None,
                envid: Some("mine".into()),
                orcpt: false,
            },
            ..draft.clone()
        };
        let sent = chosen.sent_in(&scenario).expect("a valid scenario");
        assert_eq!(sent.messages[0].dsn, chosen.dsn);
        let result = run(&sent, sent.seed);
        assert!(matches!(
            result.outcomes[0].2,
            Fate::Bounced {
                notice_declined: true,
                ..
            }
        ));
        let refused = Draft {
            dsn: DsnSpec {
                envid: Some("caf\u{e9}".into()),
                ..chosen.dsn.clone()
            },
            ..chosen
        };
        let problem = refused.sent_in(&scenario).expect_err("not printable ASCII");
        assert_eq!(problem.field, Some(Field::Envid));
        assert!(
            problem.words.starts_with("Envelope id: ENVID holds"),
            "{}",
            problem.words
        );
        // DELAY is said to bring nothing where the servers send no delay notices.
        assert!(delay_notices_sent(&scenario).contains("send no delay notices"));
        let notices = delay_notices_sent(&builtin("server-down-for-good"));
        assert!(notices.contains("once a message has waited"), "{notices}");
        // Every NOTIFY the page offers reads as itself.
        for (value, _) in NOTIFY_CHOICES {
            let read = crate::smtp::dsn_params::Notify::parse(value).ok();
            assert_eq!(read.map(|n| n.wire()).unwrap_or_default(), value);
        }
    }
}
