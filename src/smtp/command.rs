//! SMTP commands (RFC 5321 4.1.1, with AUTH from RFC 4954 and BDAT from RFC 3030): parsing a
//! command line a client sent, and the wire form of a command.
//!
//! This module only knows the grammar. Whether a command is allowed now, and which reply it
//! earns, is the server session's business; a syntax error here carries the 500/501 reply the
//! grammar calls for, with the reason.

use super::address::{
    parse_forward_path, parse_reverse_path, AddressError, Domain, ForwardPath, ReversePath,
};
use super::reply::{EnhancedStatus, Reply};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The command verbs this engine recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verb {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    Auth,
    Starttls,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ehlo => "EHLO",
            Verb::Helo => "HELO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::Auth => "AUTH",
            Verb::Starttls => "STARTTLS",
        }
    }

    /// Recognises a verb without regard to case (RFC 5321 2.4).
    pub fn parse(word: &str) -> Option<Verb> {
        const ALL: [Verb; 14] = [
            Verb::Ehlo,
            Verb::Helo,
            Verb::Mail,
            Verb::Rcpt,
            Verb::Data,
            Verb::Bdat,
            Verb::Rset,
            Verb::Noop,
            Verb::Quit,
            Verb::Vrfy,
            Verb::Expn,
            Verb::Help,
            Verb::Auth,
            Verb::Starttls,
        ];
        ALL.into_iter()
            .find(|verb| verb.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ESMTP parameter of MAIL or RCPT (RFC 5321 4.1.2 `esmtp-param`): a keyword, and an
/// optional value after "=". Keywords are case-insensitive; the spelling sent is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsmtpParam {
    pub keyword: String,
    pub value: Option<String>,
}

impl EsmtpParam {
    pub fn is(&self, keyword: &str) -> bool {
        self.keyword.eq_ignore_ascii_case(keyword)
    }
}

impl fmt::Display for EsmtpParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None => f.write_str(&self.keyword),
            Some(value) => write!(f, "{}={}", self.keyword, value),
        }
    }
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// EHLO with the client's domain or address literal, as sent.
    Ehlo {
        domain: String,
    },
    Helo {
        domain: String,
    },
    /// `source_route`: the path had one before its mailbox, which was skipped (RFC 5321
    /// 3.6.1, appendix C).
    Mail {
        reverse_path: ReversePath,
        params: Vec<EsmtpParam>,
        source_route: bool,
    },
    Rcpt {
        forward_path: ForwardPath,
        params: Vec<EsmtpParam>,
        source_route: bool,
    },
    Data,
    /// RFC 3030 2: `BDAT chunk-size [LAST]`.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    /// RFC 5321 4.1.1.9: NOOP may carry a string, which is ignored.
    Noop {
        text: Option<String>,
    },
    Quit,
    Vrfy {
        query: String,
    },
    Expn {
        query: String,
    },
    Help {
        topic: Option<String>,
    },
    /// RFC 4954 4: `AUTH mechanism [initial-response]`.
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
    Starttls,
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::Ehlo { .. } => Verb::Ehlo,
            Command::Helo { .. } => Verb::Helo,
            Command::Mail { .. } => Verb::Mail,
            Command::Rcpt { .. } => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Rset => Verb::Rset,
            Command::Noop { .. } => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::Vrfy { .. } => Verb::Vrfy,
            Command::Expn { .. } => Verb::Expn,
            Command::Help { .. } => Verb::Help,
            Command::Auth { .. } => Verb::Auth,
            Command::Starttls => Verb::Starttls,
        }
    }
}

impl fmt::Display for Command {
    /// The wire form without the CRLF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = |f: &mut fmt::Formatter<'_>, params: &[EsmtpParam]| {
            params.iter().try_for_each(|p| write!(f, " {p}"))
        };
        match self {
            Command::Ehlo { domain } => write!(f, "EHLO {domain}"),
            Command::Helo { domain } => write!(f, "HELO {domain}"),
            Command::Mail {
                reverse_path,
                params: p,
                ..
            } => {
                write!(f, "MAIL FROM:{reverse_path}")?;
                params(f, p)
            }
            Command::Rcpt {
                forward_path,
                params: p,
                ..
            } => {
                write!(f, "RCPT TO:{forward_path}")?;
                params(f, p)
            }
            Command::Data => f.write_str("DATA"),
            Command::Bdat { size, last } => {
                write!(f, "BDAT {size}{}", if *last { " LAST" } else { "" })
            }
            Command::Rset => f.write_str("RSET"),
            Command::Noop { text: None } => f.write_str("NOOP"),
            Command::Noop { text: Some(text) } => write!(f, "NOOP {text}"),
            Command::Quit => f.write_str("QUIT"),
            Command::Vrfy { query } => write!(f, "VRFY {query}"),
            Command::Expn { query } => write!(f, "EXPN {query}"),
            Command::Help { topic: None } => f.write_str("HELP"),
            Command::Help { topic: Some(topic) } => write!(f, "HELP {topic}"),
            Command::Auth {
                mechanism,
                initial_response,
            } => match initial_response {
                None => write!(f, "AUTH {mechanism}"),
                Some(response) => write!(f, "AUTH {mechanism} {response}"),
            },
            Command::Starttls => f.write_str("STARTTLS"),
        }
    }
}

/// A command line that breaks the grammar, with the reply it earns and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// The verb, when it was recognised.
    pub verb: Option<Verb>,
    pub code: u16,
    pub enhanced: EnhancedStatus,
    pub text: String,
    pub why: String,
    pub rfc: &'static str,
}

impl CommandError {
    fn unrecognized(word: &str) -> Self {
        CommandError {
            verb: None,
            code: 500,
            enhanced: SYNTAX,
            text: "Command unrecognized".into(),
            why: format!(
                "\"{}\" is not a command this server knows",
                truncate_for_display(word, 40)
            ),
            rfc: "RFC 5321 4.2.4",
        }
    }

    fn syntax(
        verb: Verb,
        enhanced: EnhancedStatus,
        text: impl Into<String>,
        why: impl Into<String>,
        rfc: &'static str,
    ) -> Self {
        CommandError {
            verb: Some(verb),
            code: 501,
            enhanced,
            text: text.into(),
            why: why.into(),
            rfc,
        }
    }

    /// The reply. Replies to HELO and EHLO carry no enhanced status code (RFC 2034 3).
    pub fn reply(&self) -> Reply {
        let enhanced = match self.verb {
            Some(Verb::Ehlo | Verb::Helo) => None,
            _ => Some(self.enhanced),
        };
        Reply::new(self.code, enhanced, self.text.clone())
    }
}

const SYNTAX: EnhancedStatus = EnhancedStatus::new(5, 5, 2);
const BAD_ARGS: EnhancedStatus = EnhancedStatus::new(5, 5, 4);
const BAD_SENDER: EnhancedStatus = EnhancedStatus::new(5, 1, 7);
const BAD_RECIPIENT: EnhancedStatus = EnhancedStatus::new(5, 1, 3);

/// Longest ESMTP parameter list we parse on one MAIL or RCPT; a longer one cannot fit a
/// 512-octet line anyway.
const PARAMS_MAX: usize = 32;

fn truncate_for_display(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max_chars).collect();
        short.push_str("...");
        short
    }
}

/// Parses one command line, given without its CRLF.
///
/// Trailing spaces and tabs are ignored (RFC 5321 4.1.1: receivers SHOULD tolerate trailing
/// white space). The verb is matched without regard to case (RFC 5321 2.4).
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let line = &line[..end];
    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let word = String::from_utf8_lossy(&line[..verb_end]);
    let Some(verb) = Verb::parse(&word) else {
        return Err(tab_after_verb(&word).unwrap_or_else(|| CommandError::unrecognized(&word)));
    };
    // RFC 5321 4.1.1: one SP between the verb and its arguments.
    let args = line.get(verb_end + 1..).unwrap_or(&[]);
    let args = match std::str::from_utf8(args) {
        Ok(args) => args,
        Err(_) => {
            return Err(CommandError::syntax(
                verb,
                SYNTAX,
                "Invalid UTF-8 in command arguments",
                "the arguments are not valid UTF-8; SMTP commands are ASCII, or UTF-8 with \
                 SMTPUTF8",
                "RFC 6531 3.3",
            ))
        }
    };
    if let Some(bad) = args.bytes().find(|b| b.is_ascii_control() && *b != b'\t') {
        return Err(CommandError::syntax(
            verb,
            SYNTAX,
            "Control character in command",
            format!("the arguments contain the control octet 0x{bad:02X}"),
            "RFC 5321 4.1.2",
        ));
    }
    let has_args = verb_end < line.len();
    // NOOP's and HELP's argument is any text; every other argument starts right after the SP.
    if !matches!(verb, Verb::Noop | Verb::Help) {
        if args.starts_with('\t') {
            return Err(separator_error(verb, Separator::Tab));
        }
        if args.starts_with(' ') {
            return Err(separator_error(verb, Separator::Spaces));
        }
    }
    match verb {
        Verb::Ehlo | Verb::Helo => parse_hello(verb, args),
        Verb::Mail => parse_mail(args),
        Verb::Rcpt => parse_rcpt(args),
        Verb::Data | Verb::Rset | Verb::Quit | Verb::Starttls => {
            if has_args {
                return Err(CommandError::syntax(
                    verb,
                    BAD_ARGS,
                    format!("Syntax: {verb} takes no arguments"),
                    format!("{verb} was sent with an argument, and its grammar has none"),
                    "RFC 5321 4.1.1",
                ));
            }
            Ok(match verb {
                Verb::Data => Command::Data,
                Verb::Rset => Command::Rset,
                Verb::Quit => Command::Quit,
                _ => Command::Starttls,
            })
        }
        Verb::Noop => Ok(Command::Noop {
            text: has_args.then(|| args.to_string()),
        }),
        Verb::Help => Ok(Command::Help {
            topic: has_args.then(|| args.to_string()),
        }),
        Verb::Vrfy | Verb::Expn => {
            if args.trim().is_empty() {
                return Err(CommandError::syntax(
                    verb,
                    BAD_ARGS,
                    format!("Syntax: {verb} <string>"),
                    format!("{verb} needs a user name or mailbox to look up"),
                    "RFC 5321 4.1.1.6",
                ));
            }
            let query = args.to_string();
            Ok(if verb == Verb::Vrfy {
                Command::Vrfy { query }
            } else {
                Command::Expn { query }
            })
        }
        Verb::Bdat => parse_bdat(args),
        Verb::Auth => parse_auth(args),
    }
}

fn parse_hello(verb: Verb, args: &str) -> Result<Command, CommandError> {
    let usage = format!("Syntax: {verb} hostname");
    if args.is_empty() {
        return Err(CommandError::syntax(
            verb,
            BAD_ARGS,
            usage,
            format!("{verb} needs the client's domain name or address literal"),
            "RFC 5321 4.1.1.1",
        ));
    }
    if let Err(error) = Domain::parse(args) {
        // The reply names the rule broken, as MAIL's and RCPT's do.
        let problem = match error {
            AddressError::DomainTooLong { .. } => "name too long",
            AddressError::LabelTooLong { .. } => "label too long",
            AddressError::UnregisteredLiteral(_) => "unknown address literal tag",
            _ if args.starts_with('[') => "bad address literal",
            _ if args.ends_with('.') => "no final dot",
            _ => "not a domain name",
        };
        return Err(CommandError::syntax(
            verb,
            BAD_ARGS,
            format!("{usage} ({problem})"),
            format!(
                "\"{}\" is not a domain name or address literal ({error}); Postfix accepts \
                 any word here by default, this server follows the RFC grammar",
                truncate_for_display(args, 60)
            ),
            "RFC 5321 4.1.1.1",
        ));
    }
    let domain = args.to_string();
    Ok(if verb == Verb::Ehlo {
        Command::Ehlo { domain }
    } else {
        Command::Helo { domain }
    })
}

/// Strips `prefix` (e.g. "FROM:") without regard to case, then any spaces: RFC 5321 4.1.1.2
/// allows none, but many clients send `MAIL FROM: <a@b>` and every common server takes it.
fn strip_keyword<'a>(args: &'a str, prefix: &str) -> Option<&'a str> {
    let head = args.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    Some(args[prefix.len()..].trim_start_matches(' '))
}

/// A known verb followed by a TAB (`EHLO<TAB>client.example`): a syntax error of that
/// command, said as such, rather than an unknown command.
fn tab_after_verb(word: &str) -> Option<CommandError> {
    let (head, _) = word.split_once('\t')?;
    Verb::parse(head).map(|verb| separator_error(verb, Separator::Tab))
}

/// What separates a verb from its arguments, when it is not the one SP of the grammar.
enum Separator {
    /// A TAB, alone or after the space.
    Tab,
    /// More than one space.
    Spaces,
}

/// A verb followed by a TAB or several spaces (RFC 5321 4.1.1: one SP), said as such rather
/// than as arguments the command does not take.
fn separator_error(verb: Verb, separator: Separator) -> CommandError {
    let what = match separator {
        Separator::Tab => "a TAB follows",
        Separator::Spaces => "more than one space follows",
    };
    CommandError::syntax(
        verb,
        SYNTAX,
        "Syntax: one space between the command and its arguments",
        format!(
            "{what} {verb}: the grammar separates a command from its arguments with one space \
             (SP), never a TAB or several. Postfix takes any white space there; this server \
             keeps to the grammar"
        ),
        "RFC 5321 4.1.1, 4.1.2",
    )
}

/// A TAB where the path should start (`MAIL FROM:<TAB><a@b.example>`): spaces there are
/// tolerated, as by most servers, but a TAB is not, and is said to be the trouble.
fn tab_before_path(verb: Verb, rest: &str) -> Result<(), CommandError> {
    if !rest.starts_with('\t') {
        return Ok(());
    }
    Err(CommandError::syntax(
        verb,
        SYNTAX,
        "Syntax: no TAB before the address",
        format!(
            "a TAB comes before the path: the grammar has the path right after the colon \
             ({verb} {}<address>); this server also takes spaces there, as most do, but not a \
             TAB",
            if verb == Verb::Mail { "FROM:" } else { "TO:" }
        ),
        "RFC 5321 4.1.1.2, 4.1.1.3",
    ))
}

fn address_error(verb: Verb, error: &AddressError) -> CommandError {
    let enhanced = if verb == Verb::Mail {
        BAD_SENDER
    } else {
        BAD_RECIPIENT
    };
    let (text, why, rfc) = match error {
        AddressError::MissingAngleBrackets => (
            "Syntax: angle brackets required around the address".to_string(),
            "the path must be written <local-part@domain>; aiosmtpd, Postfix and Exim all \
             accept a bare address here, but the RFC grammar requires the brackets"
                .to_string(),
            "RFC 5321 4.1.2",
        ),
        AddressError::NullPathNotAllowed => (
            "Syntax: null path <> not allowed in RCPT TO".to_string(),
            "<> is only a reverse-path (MAIL FROM:<>), it cannot be a recipient".to_string(),
            "RFC 5321 4.1.1.3",
        ),
        AddressError::LocalPartTooLong { .. }
        | AddressError::DomainTooLong { .. }
        | AddressError::LabelTooLong { .. }
        | AddressError::PathTooLong { .. } => (
            // RFC 5321 4.5.3.1.9 gives "501 Path too long" for the whole path; the reply
            // names the part that is too long.
            match error {
                AddressError::LocalPartTooLong { .. } => "Local part too long",
                AddressError::DomainTooLong { .. } => "Domain too long",
                AddressError::LabelTooLong { .. } => "Domain label too long",
                _ => "Path too long",
            }
            .to_string(),
            format!("{error}: over the RFC's size limit"),
            "RFC 5321 4.5.3.1",
        ),
        AddressError::Syntax(_) => (
            "Bad address syntax".to_string(),
            format!(
                "{error}: RFC 5321 4.1.2's syntax does not allow it; some servers are \
                 laxer and may take such an address as it is"
            ),
            "RFC 5321 4.1.2",
        ),
        AddressError::UnregisteredLiteral(_) => (
            "Bad address syntax".to_string(),
            format!(
                "{error}: a literal is [IPv4 address] or [IPv6:IPv6 address]; any other tag \
                 must be registered with IANA, and none is"
            ),
            "RFC 5321 4.1.3",
        ),
    };
    CommandError::syntax(verb, enhanced, text, why, rfc)
}

fn parse_mail(args: &str) -> Result<Command, CommandError> {
    let Some(rest) = strip_keyword(args, "FROM:") else {
        return Err(CommandError::syntax(
            Verb::Mail,
            BAD_ARGS,
            "Syntax: MAIL FROM:<address>",
            "MAIL must be followed by FROM: and a reverse-path",
            "RFC 5321 4.1.1.2",
        ));
    };
    tab_before_path(Verb::Mail, rest)?;
    let parsed = parse_reverse_path(rest).map_err(|e| address_error(Verb::Mail, &e))?;
    let params = parse_params(Verb::Mail, parsed.rest)?;
    Ok(Command::Mail {
        reverse_path: parsed.path,
        params,
        source_route: parsed.source_route,
    })
}

fn parse_rcpt(args: &str) -> Result<Command, CommandError> {
    let Some(rest) = strip_keyword(args, "TO:") else {
        return Err(CommandError::syntax(
            Verb::Rcpt,
            BAD_ARGS,
            "Syntax: RCPT TO:<address>",
            "RCPT must be followed by TO: and a forward-path",
            "RFC 5321 4.1.1.3",
        ));
    };
    tab_before_path(Verb::Rcpt, rest)?;
    let parsed = parse_forward_path(rest).map_err(|e| address_error(Verb::Rcpt, &e))?;
    let params = parse_params(Verb::Rcpt, parsed.rest)?;
    Ok(Command::Rcpt {
        forward_path: parsed.path,
        params,
        source_route: parsed.source_route,
    })
}

/// `[SP Mail-parameters]`: `esmtp-keyword ["=" esmtp-value]` separated by single spaces.
fn parse_params(verb: Verb, rest: &str) -> Result<Vec<EsmtpParam>, CommandError> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |why: String| {
        CommandError::syntax(
            verb,
            BAD_ARGS,
            "Syntax error in parameters",
            why,
            "RFC 5321 4.1.2",
        )
    };
    let Some(rest) = rest.strip_prefix(' ') else {
        return Err(bad(
            "the path must be followed by a space or the end of the line".into(),
        ));
    };
    let mut params = Vec::new();
    for word in rest.split(' ').filter(|w| !w.is_empty()) {
        if params.len() >= PARAMS_MAX {
            return Err(bad(format!("more than {PARAMS_MAX} parameters")));
        }
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !keyword_ok {
            return Err(bad(format!(
                "\"{}\" is not a parameter keyword",
                truncate_for_display(keyword, 40)
            )));
        }
        // esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 allowed by RFC 6531 3.3.
        if let Some(value) = value {
            if value.is_empty() || value.bytes().any(|b| b == b'=' || b < 33 || b == 127) {
                return Err(bad(format!("bad value for parameter {keyword}")));
            }
        }
        params.push(EsmtpParam {
            keyword: keyword.to_string(),
            value: value.map(str::to_string),
        });
    }
    Ok(params)
}

fn parse_bdat(args: &str) -> Result<Command, CommandError> {
    let usage = "Syntax: BDAT chunk-size [LAST]";
    let mut words = args.split(' ');
    let size = words.next().unwrap_or("");
    let last = words.next();
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::syntax(
            Verb::Bdat,
            BAD_ARGS,
            usage,
            "BDAT takes a decimal octet count and optionally LAST",
            "RFC 3030 2",
        ));
    }
    let Ok(size) = size.parse::<u64>() else {
        return Err(CommandError::syntax(
            Verb::Bdat,
            BAD_ARGS,
            usage,
            "the chunk size does not fit in 64 bits",
            "RFC 3030 2",
        ));
    };
    if words.next().is_some() {
        return Err(CommandError::syntax(
            Verb::Bdat,
            BAD_ARGS,
            usage,
            "BDAT takes the chunk size and optionally LAST, nothing more",
            "RFC 3030 2",
        ));
    }
    let last = match last {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => {
            return Err(CommandError::syntax(
                Verb::Bdat,
                BAD_ARGS,
                usage,
                "the only word allowed after the chunk size is LAST",
                "RFC 3030 2",
            ))
        }
    };
    Ok(Command::Bdat { size, last })
}

/// The chunk a client's write carries when the write is a BDAT command line and exactly the
/// octets it announces (RFC 3030 2), as a client writes a chunk with its command, and whether
/// it is the last; `None` for any other write.
pub fn bdat_with_chunk(write: &[u8]) -> Option<(&[u8], bool)> {
    // Most writes are other commands or message data: told apart before any parsing, as the
    // text trace asks this of every client write.
    if !write.get(..5)?.eq_ignore_ascii_case(b"BDAT ") {
        return None;
    }
    let line_end = memchr::memchr(b'\n', write)?;
    let command = write[..line_end].strip_suffix(b"\r")?;
    let chunk = &write[line_end + 1..];
    match parse_command(command) {
        Ok(Command::Bdat { size, last }) if size == chunk.len() as u64 => Some((chunk, last)),
        _ => None,
    }
}

/// The chunk size of a BDAT line whose first argument is one (`BDAT` SP 1*DIGIT, RFC 3030
/// 2), whatever else is wrong with the line. The client sends that many octets after the
/// line whatever the answer, so a server that refuses the line must still read them. None
/// when the line is not BDAT or the size is missing, not decimal or over 64 bits: then
/// nobody can tell how many octets follow.
pub fn bdat_chunk_size(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(bdat_size_word(line)?)
        .ok()?
        .parse()
        .ok()
}

/// Whether `line` is BDAT with a chunk size of digits too large for 64 bits (RFC 3030 2 sets
/// no limit on the digits): a chunk no server could count to the end of, to skip it.
pub fn bdat_chunk_size_overflows(line: &[u8]) -> bool {
    bdat_size_word(line).is_some() && bdat_chunk_size(line).is_none()
}

/// The digits of a BDAT line's chunk size: the word after the verb, words being split at any
/// run of spaces and tabs. More lenient than `parse_command`, which wants one SP, it reads a
/// size wherever a lenient peer (Postfix splits at any white space) would: `BDAT  75` too.
/// Octets one side reads as a chunk and the other as commands are how a message is smuggled
/// in.
fn bdat_size_word(line: &[u8]) -> Option<&[u8]> {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let (verb, rest) = line.split_at_checked(4)?;
    if !verb.eq_ignore_ascii_case(b"BDAT") || !rest.first().is_some_and(is_blank) {
        return None;
    }
    let rest = &rest[rest.iter().position(|b| !is_blank(b))?..];
    let size = &rest[..rest.iter().position(is_blank).unwrap_or(rest.len())];
    size.iter().all(u8::is_ascii_digit).then_some(size)
}

fn parse_auth(args: &str) -> Result<Command, CommandError> {
    let mut words = args.split(' ');
    let mechanism = words.next().unwrap_or("");
    let initial_response = words.next();
    if mechanism.is_empty() || words.next().is_some() {
        return Err(CommandError::syntax(
            Verb::Auth,
            BAD_ARGS,
            "Syntax: AUTH mechanism [initial-response]",
            "AUTH takes a SASL mechanism name and optionally an initial response",
            "RFC 4954 4",
        ));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_string(),
        initial_response: initial_response.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse_command(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn err(line: &str) -> (u16, String) {
        let e = parse_command(line.as_bytes()).expect_err(line);
        (e.code, e.enhanced.to_string())
    }

    #[test]
    fn commands_known_answers() {
        let cases: &[(&str, &str)] = &[
            ("ehlo client.example", "EHLO client.example"),
            ("HELO [192.0.2.1]", "HELO [192.0.2.1]"),
            ("mail from:<a@b.example>", "MAIL FROM:<a@b.example>"),
            ("MAIL FROM: <a@b.example>", "MAIL FROM:<a@b.example>"),
            (
                "MAIL FROM:<> SIZE=100 body=8BITMIME",
                "MAIL FROM:<> SIZE=100 body=8BITMIME",
            ),
            ("RCPT TO:<Postmaster>", "RCPT TO:<Postmaster>"),
            ("rcpt to:<b@c.example>  ", "RCPT TO:<b@c.example>"),
            ("DATA", "DATA"),
            ("data  ", "DATA"),
            ("BDAT 100 last", "BDAT 100 LAST"),
            ("BDAT 0", "BDAT 0"),
            ("NOOP hello there", "NOOP hello there"),
            ("HELP", "HELP"),
            ("VRFY alice", "VRFY alice"),
            (
                "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            ),
            ("auth login", "AUTH login"),
            ("QuIt", "QUIT"),
        ];
        for (line, wire) in cases {
            assert_eq!(ok(line).to_string(), *wire, "{line:?}");
        }
    }

    #[test]
    fn errors_known_answers() {
        let cases: &[(&str, u16, &str)] = &[
            ("FOO", 500, "5.5.2"),
            ("", 500, "5.5.2"),
            ("MAILFROM:<a@b>", 500, "5.5.2"),
            ("HELO", 501, "5.5.4"),
            ("EHLO bad_name", 501, "5.5.4"),
            ("MAIL FROM:a@b.example", 501, "5.1.7"),
            ("MAIL TO:<a@b.example>", 501, "5.5.4"),
            ("RCPT TO:<>", 501, "5.1.3"),
            ("RCPT TO:<a b@c>", 501, "5.1.3"),
            ("DATA x", 501, "5.5.4"),
            ("RSET x", 501, "5.5.4"),
            ("QUIT now", 501, "5.5.4"),
            ("MAIL FROM:<a@b.example>SIZE=1", 501, "5.5.4"),
            ("MAIL FROM:<a@b.example> =1", 501, "5.5.4"),
            ("MAIL FROM:<a@b.example> SIZE=", 501, "5.5.4"),
            ("BDAT", 501, "5.5.4"),
            ("BDAT x", 501, "5.5.4"),
            ("BDAT 1 FIRST", 501, "5.5.4"),
            ("BDAT 99999999999999999999999", 501, "5.5.4"),
            ("BDAT 1 LAST LAST", 501, "5.5.4"),
            ("VRFY", 501, "5.5.4"),
            ("AUTH", 501, "5.5.4"),
            ("NOOP \u{1}", 501, "5.5.2"),
        ];
        for (line, code, enhanced) in cases {
            assert_eq!(err(line), (*code, enhanced.to_string()), "{line:?}");
        }
        assert_eq!(
            parse_command(b"MAIL FROM:<\xff@b>").unwrap_err().enhanced,
            SYNTAX
        );
    }

    #[test]
    fn a_tab_is_said_to_be_the_trouble_where_the_grammar_wants_a_space() {
        // After a known verb: that command's syntax error, not an unknown command.
        for line in ["EHLO\tclient.example", "EHLO \tclient.example"] {
            let error = parse_command(line.as_bytes()).unwrap_err();
            assert_eq!(
                (error.verb, error.code),
                (Some(Verb::Ehlo), 501),
                "{line:?}"
            );
            assert!(error.why.contains("a TAB follows EHLO"), "{}", error.why);
        }
        let error = parse_command(b"MAIL \tFROM:<a@b.example>").unwrap_err();
        assert!(error.why.contains("a TAB follows MAIL"), "{}", error.why);
        // NOOP's argument is any string.
        assert!(parse_command(b"NOOP \tanything").is_ok());
        // Not after an unknown word.
        let error = parse_command(b"FOO\tbar").unwrap_err();
        assert_eq!((error.verb, error.code), (None, 500));
        // Before a path, where spaces are taken: not "angle brackets required".
        for line in ["MAIL FROM:\t<a@b.example>", "RCPT TO: \t<a@b.example>"] {
            let error = parse_command(line.as_bytes()).unwrap_err();
            assert_eq!(
                (error.code, error.text.as_str()),
                (501, "Syntax: no TAB before the address"),
                "{line}"
            );
        }
        assert!(parse_command(b"MAIL FROM:  <a@b.example>").is_ok());
    }

    #[test]
    fn bdat_chunk_size_is_read_from_lines_that_break_the_grammar() {
        for (line, size) in [
            (&b"BDAT 12 FIRST"[..], Some(12)),
            (b"bdat 0 LAST LAST", Some(0)),
            (b"BDAT 5 LAST\x01", Some(5)),
            (b"BDAT 5 \xff", Some(5)),
            (b"BDAT 7\t", Some(7)),
            (b"BDAT 100 LAST", Some(100)),
            (b"BDAT", None),
            (b"BDAT ", None),
            (b"BDAT  5", Some(5)),
            (b"BDAT\t5", Some(5)),
            (b"BDAT \t 5 LAST", Some(5)),
            (b"BDAT ten", None),
            (b"BDAT 5x", None),
            (b"BDAT -5", None),
            (b"BDAT 5\tLAST", Some(5)),
            (b"BDAT 5\t LAST", Some(5)),
            (b"BDAT\t", None),
            (b"BDAT5", None),
            (b"BDAT 99999999999999999999999", None),
            (b"BDATX 5", None),
            (b"DATA 5", None),
        ] {
            assert_eq!(bdat_chunk_size(line), size, "{line:?}");
        }
    }

    #[test]
    fn params_keep_spelling() {
        let Command::Mail { params, .. } = ok("MAIL FROM:<a@b.example> size=10 SMTPUTF8") else {
            panic!("not MAIL");
        };
        assert_eq!(params.len(), 2);
        assert!(params[0].is("SIZE"));
        assert_eq!(params[0].keyword, "size");
        assert_eq!(params[0].value.as_deref(), Some("10"));
        assert_eq!(params[1].value, None);
    }

    #[test]
    fn hello_replies_carry_no_enhanced_code() {
        let error = parse_command(b"EHLO").unwrap_err();
        assert_eq!(error.reply().to_wire(), b"501 Syntax: EHLO hostname\r\n");
    }
}
