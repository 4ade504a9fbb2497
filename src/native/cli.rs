//! Argument parsing and dispatch for the `smtp-lab` command.

use super::{fetch, run, send, serve};
use crate::smtp::client::{DsnParameters, DsnReturn, Notify};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// SMTP Lab: the engines the simulator animates, on real TCP ports.
#[derive(Debug, Parser)]
#[command(name = "smtp-lab", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an SMTP server for its local domains that stores mail in Maildirs and relays nothing
    /// (with --pop3, it serves those Maildirs over POP3 too).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Compose a message and deliver it to an SMTP server, showing the whole conversation.
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// Log in to a POP3 server and retrieve every message, showing the whole conversation.
    #[command(after_help = FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// List the built-in scenarios, or print one's JSON file to start a scenario of your own.
    #[command(after_help = SCENARIOS_EXAMPLES)]
    Scenarios(ScenariosArgs),
    /// Simulate a scenario (built-in name or JSON file) and print its trace and outcome.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
}

const SCENARIOS_EXAMPLES: &str = "\
Examples:
  smtp-lab scenarios
  smtp-lab scenarios greylisting > my-world.json
  smtp-lab run my-world.json";

#[derive(Debug, Args)]
pub struct ScenariosArgs {
    /// A built-in scenario whose JSON file to print, exactly as it is built in.
    pub name: Option<String>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  smtp-lab run basic-delivery
  smtp-lab run greylisting --seed 7 --format json > trace.json
  smtp-lab run unknown-user --whole
  smtp-lab run my-world.json

The text trace has one line per event: simulated time (days+hh:mm:ss.mmm), the
actor, then what happened. The outcome says what became of every recipient.
Exit status: 0 when the run's conservation check holds, 1 when it does not or
the output could not be written, 2 for a bad scenario or usage error.";

/// A seed written as the scenario format writes one: decimal digits only (no sign), so that
/// `-1` is refused as a value rather than taken for an option, and `+5` is not 5.
fn parse_seed(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a seed is written in decimal digits only, 0 to 18446744073709551615".into());
    }
    text.parse()
        .map_err(|_| "larger than 18446744073709551615, the largest seed".into())
}

/// `--listen`: an IP address and a port; a host name would need a DNS lookup to mean one
/// address, and could mean several.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let why = match text.rsplit_once(':') {
        None => "no port",
        Some((host, _)) if host.contains(':') && !host.starts_with('[') => {
            "put an IPv6 address in brackets: [::1]:2525"
        }
        Some((host, port))
            if host.parse::<std::net::IpAddr>().is_ok()
                || host.starts_with('[') && host.ends_with(']') =>
        {
            if port.parse::<u16>().is_err() {
                "the port is a number from 0 to 65535"
            } else {
                "bad IPv6 address"
            }
        }
        Some(_) => "an IP address, not a host name: 127.0.0.1:2525 or [::1]:2525",
    };
    Err(format!("IP:PORT expected ({why})"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A built-in scenario name (see `smtp-lab scenarios`) or a JSON scenario file.
    // A path, so that a file whose name is not UTF-8 runs too.
    pub scenario: std::ffi::OsString,
    /// The seed for the simulation's random choices (MX order among equal preferences) and
    /// the tokens drawn from it (Message-IDs, MIME boundaries): 0 to 18446744073709551615;
    /// the scenario's own seed when absent.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// With the text format: every line of each transmission (a whole message, a bounce's
    /// report), where the trace shows the first 12 lines of a long one and how many more
    /// there were. The JSON format always has every byte, and refuses it.
    #[arg(long)]
    pub whole: bool,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  smtp-lab serve --listen 127.0.0.1:2525 --domain example.org \\
      --mailbox alice@example.org --mailbox bob@example.org --maildir ./mail
  swaks --server 127.0.0.1:2525 --from eve@elsewhere.test --to bob@example.org

Each accepted message is written, with Return-Path: and Received: added, to
DIR/<local-part>/new/ (Maildir), and only then acknowledged with 250.
Mail for other domains is refused (550 5.7.1 relay denied), also after AUTH: it relays nothing.

Fetching it over POP3 (RFC 1939), from the same Maildirs:
  smtp-lab serve --domain example.org --mailbox bob@example.org --maildir ./mail \\
      --pop3 127.0.0.1:1100 --pop3-user bob:secret
  curl -u bob:secret pop3://127.0.0.1:1100/1";

const FETCH_EXAMPLES: &str = "\
Examples:
  smtp-lab fetch --server 127.0.0.1:1100 --user bob:secret
  smtp-lab fetch --server 127.0.0.1:1100 --user bob:secret --maildir ./fetched --delete

Each message is retrieved with RETR and shown; with --maildir it is stored in
DIR/<user>/new/ (Maildir) before anything more is said to the server, and with --delete
it is then marked with DELE, so that QUIT removes it from the server (RFC 1939 6).
It waits 30 seconds for a connection to each address of the server, and 10 minutes for
each whole response, counted from its command (the least a server's idle timer may be,
RFC 1939 3); a session that times out before its QUIT deletes nothing.
Exit status: 0 when every message was retrieved (and stored and deleted, if asked), 1
when the login was refused, a message could not be had or stored, or the session failed,
2 for usage errors.";

const SEND_EXAMPLES: &str = "\
Examples:
  echo 'Hello Bob' | smtp-lab send --server 127.0.0.1:2525 \\
      --from alice@example.org --to bob@example.org --subject 'Hi'
  smtp-lab send --server 127.0.0.1:2525 --from alice@example.org \\
      --to bob@example.org --cc carol@example.org --body-file note.txt --attach photo.png

Exit status: 0 when every recipient was accepted, 1 when any was refused or the
session failed, 2 for usage errors.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BareLineEndingArg {
    /// Refuse a message with a bare CR or LF (550 5.5.2); Postfix's smtpd_forbid_bare_newline
    /// = reject does this for a bare LF only.
    Reject,
    /// Store a bare CR or LF in a message as CRLF; a bare LF also ends a command line (as
    /// `nc` without -C sends), and a bare CR in one is refused. The data still ends only at
    /// CRLF.CRLF (RFC 5321 4.1.1.4; a bare LF before or after the dot would let a message
    /// be smuggled in), so `nc` needs -C for the final dot.
    Normalize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:2525", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The local domain this server receives mail for (repeatable).
    #[arg(long = "domain", required = true)]
    pub domains: Vec<String>,
    /// A mailbox that exists, as local-part@domain (repeatable). postmaster always exists.
    #[arg(long = "mailbox")]
    pub mailboxes: Vec<String>,
    /// Where the Maildirs are written: DIR/<local-part>/{tmp,new,cur}.
    #[arg(long, default_value = "maildir")]
    pub maildir: PathBuf,
    /// Largest message accepted, in octets (advertised with SIZE). 0 advertises SIZE 0, no
    /// fixed limit (RFC 1870); a message is then still held in memory, up to 64 MiB.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10 * 1024 * 1024)]
    pub max_size: usize,
    /// Most recipients in one mail transaction; more get 452 4.5.3.
    #[arg(long, allow_negative_numbers = true, default_value_t = 100)]
    pub max_recipients: usize,
    /// What to do with a bare CR or LF in a message or a command line.
    #[arg(long, value_enum, default_value_t = BareLineEndingArg::Reject)]
    pub bare_lf: BareLineEndingArg,
    /// The name this server gives itself in its greeting and Received: headers.
    #[arg(long, default_value = "smtp-lab.localhost")]
    pub hostname: String,
    /// Most sessions at once, SMTP and POP3 together; further connections get 421 (on POP3,
    /// -ERR) and are closed.
    #[arg(long, allow_negative_numbers = true, default_value_t = 256)]
    pub max_sessions: usize,
    /// Seconds a session may stay silent before the server closes it (421 4.4.2), or leave
    /// the server's replies untaken before it is cut.
    #[arg(long, allow_negative_numbers = true, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Offer AUTH PLAIN/LOGIN and require it before MAIL, as on a submission port (the server
    /// still relays nothing): USER:PASSWORD (repeatable).
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// Print only a line when a session opens and closes and one per copy stored or not
    /// stored, instead of whole transcripts.
    #[arg(long)]
    pub quiet: bool,
    /// Also serve the Maildirs over POP3 (RFC 1939) on this address and port, to the logins
    /// given with --pop3-user.
    #[arg(long, value_name = "ADDRESS:PORT", value_parser = parse_listen)]
    pub pop3: Option<SocketAddr>,
    /// A POP3 login: a mailbox's local part (the Maildir it reads) and its password,
    /// MAILBOX:PASSWORD (repeatable).
    #[arg(long = "pop3-user", value_name = "MAILBOX:PASSWORD")]
    pub pop3_users: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The POP3 server, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The login, USER:PASSWORD (sent with USER and PASS, RFC 1939 7).
    #[arg(long)]
    pub user: String,
    /// Store each message in DIR/<user>/new/ (Maildir).
    #[arg(long)]
    pub maildir: Option<PathBuf>,
    /// Delete each message on the server once it is stored (needs --maildir).
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The SMTP server, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The sender: the From: header, and the envelope's MAIL FROM (the address alone, without
    /// a display name such as "Alice <alice@example.org>" has).
    #[arg(long)]
    pub from: String,
    /// A recipient in To: and the envelope (repeatable).
    #[arg(long = "to", required = true)]
    pub to: Vec<String>,
    /// A recipient in Cc: and the envelope (repeatable).
    #[arg(long = "cc")]
    pub cc: Vec<String>,
    /// A recipient in the envelope only (repeatable).
    #[arg(long = "bcc")]
    pub bcc: Vec<String>,
    #[arg(long, default_value = "")]
    pub subject: String,
    /// The body text; without it the body is read from standard input.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// A file to attach (repeatable); its media type comes from its extension.
    #[arg(long = "attach")]
    pub attach: Vec<PathBuf>,
    /// The name sent with EHLO/HELO.
    #[arg(long, default_value = "smtp-lab.localhost")]
    pub helo: String,
    /// Authenticate with AUTH PLAIN as USER:PASSWORD (submission).
    #[arg(long)]
    pub auth: Option<String>,
    /// Wait for each reply even when the server offers PIPELINING.
    #[arg(long)]
    pub no_pipelining: bool,
    /// Send the message with BDAT (RFC 3030) in chunks of at most OCTETS octets, to a server
    /// that offers CHUNKING (DATA to one that does not).
    #[arg(long, allow_negative_numbers = true, value_name = "OCTETS", value_parser = clap::value_parser!(u32).range(1..=67_108_864))]
    pub bdat: Option<u32>,
    /// Send non-ASCII body text as it is, as 8bit data with BODY=8BITMIME (RFC 6152), rather
    /// than as quoted-printable (a body with a line over 998 octets or a control character
    /// but tab still goes as quoted-printable); a server that does not offer 8BITMIME is not
    /// sent it.
    #[arg(long = "8bit")]
    pub eight_bit_body: bool,
    /// Ask for delivery status notifications (DSN, RFC 3461 4.1) about each recipient: NEVER,
    /// or any of SUCCESS, FAILURE and DELAY separated by commas. Sent only to a server that
    /// offers DSN.
    #[arg(long, value_name = "WHEN", value_parser = Notify::parse)]
    pub notify: Option<Notify>,
    /// What a failure notice returns (RFC 3461 4.3): FULL (the whole message) or HDRS (its
    /// header).
    #[arg(long, value_name = "FULL|HDRS", value_parser = DsnReturn::read)]
    pub ret: Option<DsnReturn>,
    /// An identifier for this message that each notice quotes back (RFC 3461 4.4):
    /// printable ASCII, not beginning or ending with a space, at most 100 characters as sent
    /// (xtext).
    #[arg(long, value_name = "ID")]
    pub envid: Option<String>,
    /// Send each recipient's address as ORCPT=rfc822;ADDRESS (RFC 3461 4.2; one that is not
    /// ASCII as ORCPT=utf-8;ADDRESS with \x{HEX}, RFC 6533 3), which each notice quotes as
    /// Original-Recipient.
    #[arg(long)]
    pub orcpt: bool,
}

/// `serve`'s NAME:PASSWORD pairs given with `flag`, or `None` once one that is not such a
/// pair has been said on stderr.
fn credentials(flag: &str, name: &str, texts: &[String]) -> Option<Vec<(String, String)>> {
    texts
        .iter()
        .map(|text| {
            let pair = split_credentials(text);
            if pair.is_none() {
                eprintln!(
                    "smtp-lab serve: {flag} takes {name}:PASSWORD, neither empty, not {text:?}"
                );
            }
            pair
        })
        .collect()
}

/// Splits `USER:PASSWORD`; neither may be empty (RFC 4616 2: `authcid = 1*SAFE`,
/// `passwd = 1*SAFE`).
fn split_credentials(text: &str) -> Option<(String, String)> {
    let (user, password) = text.split_once(':')?;
    (!user.is_empty() && !password.is_empty()).then(|| (user.to_string(), password.to_string()))
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let Some(users) = credentials("--user", "USER", &args.users) else {
                return ExitCode::from(2);
            };
            let Some(pop3_users) = credentials("--pop3-user", "MAILBOX", &args.pop3_users) else {
                return ExitCode::from(2);
            };
            serve::run(serve::ServeOptions {
                listen: args.listen,
                domains: args.domains,
                mailboxes: args.mailboxes,
                maildir: args.maildir,
                max_size: args.max_size,
                max_recipients: args.max_recipients,
                normalize_bare_line_endings: args.bare_lf == BareLineEndingArg::Normalize,
                hostname: args.hostname,
                max_sessions: args.max_sessions,
                idle_timeout_s: args.idle_timeout,
                users,
                quiet: args.quiet,
                pop3_listen: args.pop3,
                pop3_users,
            })
        }
        Command::Fetch(args) => {
            let Some((user, password)) = split_credentials(&args.user) else {
                eprintln!("smtp-lab fetch: --user takes USER:PASSWORD, neither empty");
                return ExitCode::from(2);
            };
            fetch::run(fetch::FetchOptions {
                server: args.server,
                user,
                password,
                maildir: args.maildir,
                delete: args.delete,
            })
        }
        Command::Scenarios(args) => match args.name {
            None => run::list(),
            Some(name) => run::show(&name),
        },
        Command::Run(args) if args.whole && args.format == FormatArg::Json => {
            eprintln!(
                "smtp-lab run: --whole is for the text format; the JSON format always has \
                 every byte"
            );
            ExitCode::from(2)
        }
        Command::Run(args) => run::run_scenario(
            &args.scenario,
            args.seed,
            match args.format {
                FormatArg::Text => run::Format::Text {
                    whole_transmissions: args.whole,
                },
                FormatArg::Json => run::Format::Json,
            },
        ),
        Command::Send(args) => {
            let auth = match args.auth.as_deref().map(split_credentials) {
                None => None,
                Some(Some(pair)) => Some(pair),
                Some(None) => {
                    eprintln!("smtp-lab send: --auth takes USER:PASSWORD, neither empty");
                    return ExitCode::from(2);
                }
            };
            // The ENVID is this sender's own: one a notice could not give back is refused here,
            // where the client, which also passes on what others chose, takes it.
            if let Some(problem) = args
                .envid
                .as_deref()
                .and_then(crate::smtp::dsn_params::chosen_envelope_id_problem)
            {
                eprintln!("smtp-lab send: {problem}");
                return ExitCode::from(2);
            }
            send::run(send::SendOptions {
                server: args.server,
                from: args.from,
                to: args.to,
                cc: args.cc,
                bcc: args.bcc,
                subject: args.subject,
                body_file: args.body_file,
                attach: args.attach,
                helo: args.helo,
                auth,
                no_pipelining: args.no_pipelining,
                bdat_chunk_octets: args.bdat.map(|octets| octets as usize),
                eight_bit_body: args.eight_bit_body,
                dsn: DsnParameters {
                    notify: args.notify,
                    ret: args.ret,
                    envid: args.envid,
                    orcpt: args.orcpt,
                    recipients: Vec::new(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_a_user_and_a_password() {
        assert_eq!(
            split_credentials("alice:se:cret"),
            Some(("alice".into(), "se:cret".into()))
        );
        for refused in ["alice", "alice:", ":secret", ":"] {
            assert_eq!(split_credentials(refused), None, "{refused}");
        }
    }

    #[test]
    fn listen_takes_an_ip_address_and_a_port_and_says_what_is_wrong() {
        for good in ["127.0.0.1:2525", "[::1]:25", "0.0.0.0:0"] {
            assert_eq!(parse_listen(good), good.parse().map_err(|_| String::new()));
        }
        for (bad, why) in [
            ("localhost:2525", "not a host name"),
            ("::1:2525", "in brackets"),
            ("127.0.0.1", "no port"),
            ("127.0.0.1:65536", "the port is a number"),
            ("[::1]:x", "the port is a number"),
            ("[::zz]:25", "bad IPv6 address"),
            ("", "no port"),
        ] {
            let error = parse_listen(bad).expect_err(bad);
            assert!(
                error.starts_with("IP:PORT expected") && error.contains(why),
                "{bad}: {error}"
            );
        }
    }
}
