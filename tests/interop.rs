//! Interop tests: `smtp-lab serve` and `smtp-lab send` against real SMTP software on loopback
//! ports: swaks, Python's smtplib, aiosmtpd, Postfix's smtp-sink and a private Postfix.
//!
//! The peers are installed by `scripts/ensure-tools.sh test` (run by `make test`). A missing
//! peer fails the test with a message saying how to install it; nothing is skipped.
#![cfg(not(target_arch = "wasm32"))]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SMTP_LAB: &str = env!("CARGO_BIN_EXE_smtp-lab");

/// How long a test waits for a peer to start or a message to arrive.
const WAIT: Duration = Duration::from_secs(30);

fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "interop-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("the target tmp dir is writable");
    dir
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding an ephemeral loopback port works")
        .port()
}

fn require_tool(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run `make test` (scripts/ensure-tools.sh test installs it)"
    );
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when the test ends, however it ends.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `smtp-lab serve` on a free port, with its transcript collected in the background.
struct LabServer {
    _process: Running,
    port: u16,
    /// The POP3 port, when the server was started with `--pop3`.
    pop3_port: Option<u16>,
    maildir: PathBuf,
    transcript: std::sync::Arc<std::sync::Mutex<String>>,
    errors: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LabServer {
    fn start(extra: &[&str]) -> LabServer {
        let maildir = scratch_dir("maildir");
        let mut child = Command::new(SMTP_LAB)
            .args(["serve", "--listen", "127.0.0.1:0", "--maildir"])
            .arg(&maildir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("smtp-lab starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let error_sink = std::sync::Arc::clone(&errors);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut text = error_sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("smtp-lab serve prints where it listens")
            .expect("its output is UTF-8");
        let port: u16 = first
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        // With --pop3, the next line says where POP3 listens.
        let pop3_port = extra.contains(&"--pop3").then(|| {
            let line = lines
                .next()
                .expect("smtp-lab serve prints where POP3 listens")
                .expect("its output is UTF-8");
            line.split("POP3 on 127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("unexpected second line: {line}"))
        });
        let transcript = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&transcript);
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        LabServer {
            _process: Running { child },
            port,
            pop3_port,
            maildir,
            transcript,
            errors,
        }
    }

    /// What the server said on stderr so far.
    fn errors(&self) -> String {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn transcript(&self) -> String {
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the server's log shows `line`, waiting for it: the log is read from the
    /// server's output by another thread, which may lag behind on a busy machine.
    fn transcript_shows(&self, line: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.transcript().contains(line) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages in a mailbox's `new/`, waiting until there are `count` of them.
    fn wait_for_messages(&self, mailbox: &str, count: usize) -> Vec<String> {
        wait_for_maildir(&self.maildir.join(mailbox).join("new"), count)
    }
}

fn wait_for_maildir(new_dir: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut files: Vec<PathBuf> = fs::read_dir(new_dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        if files.len() >= count {
            files.sort();
            return files
                .iter()
                .map(|path| {
                    String::from_utf8_lossy(&fs::read(path).expect("a delivered file is readable"))
                        .into_owned()
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {} messages, expected {count}",
            new_dir.display(),
            files.len()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the peer program runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ----- real clients sending to smtp-lab serve -----

#[test]
fn swaks_delivers_to_serve_without_pipelining() {
    require_tool("swaks");
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let output = run(Command::new("swaks").args([
        "--server",
        &server.address(),
        "--from",
        "alice@example.net",
        "--to",
        "bob@example.org",
        "--helo",
        "client.example.net",
        "--header",
        "Subject: plain swaks",
        "--body",
        "Hello from swaks\n.starts with a dot",
    ]));
    assert!(output.status.success(), "swaks failed:\n{}", text(&output));
    let messages = server.wait_for_messages("bob", 1);
    let message = &messages[0];
    assert!(message.starts_with("Return-Path: <alice@example.net>\r\nReceived: from client.example.net ([127.0.0.1])\r\n"), "{message}");
    assert!(message.contains("with ESMTP id "), "{message}");
    assert!(message.contains("for <bob@example.org>; "), "{message}");
    assert!(message.contains("Subject: plain swaks\r\n"), "{message}");
    // Dot-unstuffed: the line is stored with one dot, as the author wrote it.
    assert!(message.contains("\r\n.starts with a dot\r\n"), "{message}");
    assert!(!message.contains("..starts"), "{message}");
    assert!(
        server.transcript_shows("C: MAIL FROM:<alice@example.net>"),
        "{}",
        server.transcript()
    );
}

#[test]
fn swaks_pipelining_with_attachment_and_refused_recipient() {
    require_tool("swaks");
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--mailbox",
        "carol@example.org",
    ]);
    let dir = scratch_dir("attach");
    let attachment = dir.join("photo.png");
    let png: Vec<u8> = (0u8..=255).cycle().take(3000).collect();
    fs::write(&attachment, &png).unwrap();
    let output = run(Command::new("swaks").args([
        "--pipeline",
        "--server",
        &server.address(),
        "--from",
        "alice@example.net",
        "--to",
        "bob@example.org,nobody@example.org,carol@example.org",
        "--attach-type",
        "image/png",
        "--attach",
        &format!("@{}", attachment.display()),
    ]));
    // swaks reports the refused recipient but goes on with the others.
    let transcript = text(&output);
    assert!(transcript.contains("550 5.1.1"), "{transcript}");
    assert!(transcript.contains("250 2.0.0"), "{transcript}");
    let bob = server.wait_for_messages("bob", 1);
    let carol = server.wait_for_messages("carol", 1);
    assert!(!server.maildir.join("nobody").exists());
    for message in [&bob[0], &carol[0]] {
        assert!(message.contains("Content-Type: image/png"), "{message}");
        // Two recipients: no "for" clause that would reveal the other one (RFC 5321 7.2).
        assert!(!message.contains("\tfor <"), "{message}");
    }
    // The attachment arrives intact: decode its base64 part.
    let part = bob[0]
        .split("Content-Type: image/png")
        .nth(1)
        .expect("the image part is there");
    let body = part.split("\r\n\r\n").nth(1).unwrap();
    let encoded: String = body
        .lines()
        .take_while(|line| !line.starts_with("--"))
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(
        smtp_lab::mail::base64::decode(encoded.trim()).expect("valid base64"),
        png
    );
}

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make test` (scripts/ensure-tools.sh test creates it)",
        venv.display()
    );
    venv
}

/// Runs a Python script with the server's port as its argument; what it printed, once it
/// succeeded.
fn run_python_against(server: &LabServer, script: &str) -> String {
    let output = run(Command::new(python()).args(["-c", script, &server.port.to_string()]));
    let out = text(&output);
    assert!(output.status.success(), "python failed:\n{out}");
    out
}

#[test]
fn python_smtplib_sends_smtputf8_and_8bitmime() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--mailbox",
        "josé@example.org",
    ]);
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port) as smtp:
    smtp.ehlo("python.example.net")
    assert smtp.has_extn("smtputf8") and smtp.has_extn("8bitmime"), smtp.esmtp_features
    # SMTPUTF8: a UTF-8 reverse path and forward path (RFC 6531).
    message = "From: rené@example.net\r\nTo: josé@example.org\r\nSubject: ünïcödé\r\n\r\nGrüße\r\n".encode()
    refused = smtp.sendmail("rené@example.net", ["josé@example.org"], message,
                            mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}, refused
    # 8BITMIME without SMTPUTF8: ASCII addresses, 8-bit body.
    message = "From: a@example.net\r\nTo: bob@example.org\r\nSubject: 8bit\r\n\r\nna\u00efve caf\u00e9\r\n".encode()
    refused = smtp.sendmail("a@example.net", ["bob@example.org"], message, mail_options=["BODY=8BITMIME"])
    assert refused == {}, refused
    # A UTF-8 sender without SMTPUTF8 is refused: 550 5.6.7 (RFC 6531 3.5; 553 for RCPT).
    smtp.rset()
    smtp.send("MAIL FROM:<rené@example.net>\r\n".encode())
    code, text = smtp.getreply()
    print("MAIL-WITHOUT-SMTPUTF8", code, text.decode())
print("python done")
"#;
    let out = run_python_against(&server, script);
    assert!(out.contains("MAIL-WITHOUT-SMTPUTF8 550 5.6.7"), "{out}");
    let jose = server.wait_for_messages("jos%C3%A9", 1);
    assert!(
        jose[0].contains("Return-Path: <rené@example.net>"),
        "{}",
        jose[0]
    );
    assert!(jose[0].contains("with UTF8SMTP"), "{}", jose[0]);
    assert!(jose[0].contains("Grüße"), "{}", jose[0]);
    let bob = server.wait_for_messages("bob", 1);
    assert!(bob[0].contains("naïve café"), "{}", bob[0]);
}

/// An authenticated client may submit, but `serve` stores mail and relays nothing: mail for
/// another domain is refused at RCPT after AUTH too, never taken (a 250 would promise a
/// delivery it cannot make, RFC 5321 6.1) nor filed in a local mailbox of the same name.
#[test]
fn python_smtplib_authenticates_and_serve_still_relays_nothing() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--user",
        "alice:secret",
    ]);
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port) as smtp:
    smtp.ehlo("python.example.net")
    smtp.login("alice", "secret")
    message = b"From: alice@example.org\r\nTo: bob@example.org, carol@far.test\r\nSubject: two\r\n\r\nhi\r\n"
    refused = smtp.sendmail("alice@example.org", ["bob@example.org", "carol@far.test"], message)
    print("REFUSED", sorted(refused.items()))
print("python done")
"#;
    let out = run_python_against(&server, script);
    assert!(
        out.contains("REFUSED [('carol@far.test', (550, b'5.7.1 Relay access denied'))]"),
        "{out}"
    );
    let bob = server.wait_for_messages("bob", 1);
    assert!(bob[0].contains("Subject: two"), "{}", bob[0]);
    assert!(bob[0].contains("with ESMTPA"), "{}", bob[0]);
    // Nothing filed for carol@far.test: copies are written before the 250, so all are there
    // once smtplib has returned.
    assert!(
        !server.maildir.join("carol").exists(),
        "{}",
        server.transcript()
    );
}

#[test]
fn serve_handles_many_concurrent_python_clients() {
    let server = quiet_server();
    let script = r#"
import smtplib, sys, threading
port = int(sys.argv[1])
errors = []
def send(n):
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.sendmail("a@example.net", ["bob@example.org"],
                          f"Subject: {n}\r\n\r\nmessage {n}\r\n".encode())
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
for t in threads: t.start()
for t in threads: t.join()
print("errors", errors)
sys.exit(1 if errors else 0)
"#;
    run_python_against(&server, script);
    let messages = server.wait_for_messages("bob", 40);
    let mut numbers: Vec<u32> = messages
        .iter()
        .filter_map(|m| m.split("\r\n\r\nmessage ").nth(1))
        .filter_map(|rest| rest.trim().parse().ok())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
}

/// A raw client on a socket: what real servers get from broken or hostile peers.
fn raw_exchange(port: u16, input: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("serve accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(input).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// Reads from `stream` until what came holds `needle` `count` times; all of it so far.
fn read_until_seen(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 4096];
    while String::from_utf8_lossy(seen).matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "waited for {needle:?}: {}",
            String::from_utf8_lossy(seen)
        );
        match stream.read(&mut buffer) {
            Ok(0) => panic!(
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(seen)
            ),
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
            Err(error) => panic!("reading: {error}"),
        }
    }
}

/// Stopped (SIGTERM), serve tells an open session 421 and closes it (RFC 5321 3.8), keeps the
/// message it answered 250, drops the one being sent (its client never got a 250), and ends
/// with status 0.
#[test]
fn serve_says_421_to_open_sessions_when_stopped() {
    let mut server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("serve accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let transaction = b"MAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n";
    stream.write_all(b"EHLO stop.example\r\n").unwrap();
    stream.write_all(transaction).unwrap();
    read_until_seen(&mut stream, &mut seen, "354 ", 1);
    stream
        .write_all(b"Subject: taken\r\n\r\nkept\r\n.\r\n")
        .unwrap();
    stream.write_all(transaction).unwrap();
    read_until_seen(&mut stream, &mut seen, "354 ", 2);
    stream.write_all(b"Subject: half\r\n\r\nnot all").unwrap();
    terminate(&server);
    read_until_seen(&mut stream, &mut seen, "421 4.3.2", 1);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let replies = String::from_utf8_lossy(&seen);
    assert!(rest.is_empty(), "nothing after the 421: {replies}");
    assert_eq!(replies.matches("250 2.0.0").count(), 1, "{replies}");
    let exit = server._process.child.wait().expect("serve ends");
    assert_eq!(exit.code(), Some(0), "{}", server.transcript());
    let stored = server.wait_for_messages("bob", 1);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("Subject: taken"), "{}", stored[0]);
}

/// Sends SIGTERM to the server.
fn terminate(server: &LabServer) {
    let status = Command::new("kill")
        .args(["-TERM", &server._process.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A server for bob@example.org that prints no transcript: printing every line would slow
/// a busy session down.
fn quiet_server() -> LabServer {
    LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--quiet",
    ])
}

/// A quiet server (printing every NOOP would slow the session down so that it never gets
/// stuck) and one of its sessions, stuck (see [`stuck_session`]).
fn server_with_a_stuck_session() -> (LabServer, TcpStream) {
    let server = quiet_server();
    let stuck = stuck_session(&server);
    (server, stuck)
}

/// A session whose client sends far more commands than the socket buffers hold and reads no
/// reply: the server's writes block, then its reads stop. Returned once it is stuck.
fn stuck_session(server: &LabServer) -> TcpStream {
    let stuck = TcpStream::connect(("127.0.0.1", server.port)).expect("serve accepts");
    let mut writer = stuck.try_clone().expect("the socket clones");
    // Far more replies than the socket buffers hold, to a client that never reads them: the
    // server's writes block, then its reads stop, then this writer blocks.
    let written = std::sync::Arc::new(AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&written);
    thread::spawn(move || {
        let noops = b"NOOP\r\n".repeat(10_000);
        for _ in 0..400 {
            if writer.write_all(&noops).is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Stuck once the writer has made no progress for two seconds: a busy machine can pause
    // a writer that is not blocked for a moment, not for that long.
    let deadline = Instant::now() + WAIT;
    let mut last = u32::MAX;
    let mut still_checks = 0;
    while still_checks < 4 {
        thread::sleep(Duration::from_millis(500));
        let now = written.load(Ordering::SeqCst);
        if now == last {
            still_checks += 1;
        } else {
            still_checks = 0;
        }
        assert!(Instant::now() < deadline, "the session never got stuck");
        last = now;
    }
    stuck
}

/// While serve stops, a new connection gets 421 instead of a greeting; a session that cannot
/// take its 421 (its client reads nothing, so the server's writes are stuck) keeps the
/// server waiting, and a second signal ends it at once, with 128 + SIGTERM's 15.
#[test]
fn serve_stopping_turns_new_clients_away_and_a_second_signal_ends_it() {
    let (mut server, stuck) = server_with_a_stuck_session();
    let signal = || terminate(&server);
    signal();
    // Until the signal is taken, a new client may still be greeted; then it gets the 421.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut late = TcpStream::connect(("127.0.0.1", server.port))
            .unwrap_or_else(|e| panic!("serve still listens: {e}\n{}", server.transcript()));
        late.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut seen = Vec::new();
        read_until_seen(&mut late, &mut seen, "\r\n", 1);
        let first = String::from_utf8_lossy(&seen).into_owned();
        if first.starts_with("421 4.3.2 ") {
            break;
        }
        assert!(first.starts_with("220 "), "{first}");
        assert!(Instant::now() < deadline, "never turned away: {first}");
        thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    signal();
    let exit = server._process.child.wait().expect("serve ends");
    assert_eq!(exit.code(), Some(128 + 15));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let _ = stuck.shutdown(std::net::Shutdown::Both);
}

/// A session that cannot take its 421 is waited for 10 s, then cut: status 1, stderr says
/// why, and the log (--quiet) closes the session as it closes any other.
#[test]
fn serve_stopping_cuts_a_session_that_takes_no_421_and_says_so() {
    let (mut server, stuck) = server_with_a_stuck_session();
    terminate(&server);
    let exit = server._process.child.wait().expect("serve ends");
    assert_eq!(exit.code(), Some(1));
    // Read by another thread, which may lag behind the exit.
    let deadline = Instant::now() + WAIT;
    while !server
        .errors()
        .contains("1 session(s) still open after 10 s")
    {
        assert!(Instant::now() < deadline, "{}", server.errors());
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.transcript_shows(
            "[1] # closed by the server: it stopped, and the client took no 421 for 10 s"
        ),
        "{}",
        server.transcript()
    );
    let _ = stuck.shutdown(std::net::Shutdown::Both);
}

#[test]
fn serve_refuses_smuggling_and_survives_garbage_and_drops() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    // A smuggling attempt: <LF>.<CR><LF> inside the data, then a second "message".
    let smuggle = b"EHLO evil.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n\
Subject: one\r\n\r\nfirst\n.\r\nMAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: spoofed\r\n\r\nsecond\r\n.\r\nQUIT\r\n";
    let replies = raw_exchange(server.port, smuggle);
    assert!(replies.contains("550 5.5.2"), "{replies}");
    assert!(!replies.contains("2.0.0 OK: queued"), "{replies}");
    // Random bytes: answered, never fatal for the server.
    let garbage: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = raw_exchange(server.port, &garbage);
    // A client that drops in the middle of DATA: nothing is stored.
    let _ = raw_exchange(
        server.port,
        b"EHLO x\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess",
    );
    // The server still works, and only a whole message was ever stored.
    let replies = raw_exchange(
        server.port,
        b"EHLO ok\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: whole\r\n\r\nfine\r\n.\r\nQUIT\r\n",
    );
    assert!(replies.contains("250 2.0.0"), "{replies}");
    let messages = server.wait_for_messages("bob", 1);
    thread::sleep(Duration::from_millis(200));
    let messages_now = server.wait_for_messages("bob", 1);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages_now.len(), 1, "{messages_now:?}");
    assert!(messages[0].contains("Subject: whole"));
    // The transcript says who closed each session, and that the cut message was dropped.
    assert!(
        server.transcript_shows(
            "closed by the client; the message being sent is dropped (never accepted"
        ),
        "{}",
        server.transcript()
    );
    assert!(
        server.transcript_shows("# closed: after QUIT"),
        "{}",
        server.transcript()
    );
}

#[test]
fn serve_delivers_one_copy_per_mailbox_however_often_it_is_named() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--mailbox",
        "alice@example.org",
    ]);
    let replies = raw_exchange(
        server.port,
        b"EHLO dup.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
RCPT TO:<Bob@Example.ORG>\r\nRCPT TO:<\"bob\"@example.org>\r\nRCPT TO:<bob@example.org>\r\n\
RCPT TO:<alice@example.org>\r\nRCPT TO:<POSTMASTER@example.org>\r\nRCPT TO:<postmaster>\r\n\
DATA\r\nReturn-Path: <forged@example.com>\r\nSubject: once\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(replies.matches("250 2.1.5").count(), 7, "{replies}");
    assert!(replies.contains("250 2.0.0 OK"), "{replies}");
    let bob = server.wait_for_messages("bob", 1);
    let alice = server.wait_for_messages("alice", 1);
    let postmaster = server.wait_for_messages("postmaster", 1);
    thread::sleep(Duration::from_millis(200));
    for (name, first) in [("bob", bob), ("alice", alice), ("postmaster", postmaster)] {
        let now = server.wait_for_messages(name, 1);
        assert_eq!(now.len(), 1, "{name}: {now:?}");
        assert_eq!(first.len(), 1);
        // The Return-Path that came with the message is replaced (RFC 5321 4.4).
        assert_eq!(now[0].matches("Return-Path:").count(), 1, "{}", now[0]);
        assert!(
            now[0].starts_with("Return-Path: <a@example.net>"),
            "{}",
            now[0]
        );
        assert!(now[0].contains("Subject: once"));
    }
    assert!(!server.maildir.join("POSTMASTER").exists());
}

/// A message that cannot be stored for one recipient is answered 451 and stored for none: the
/// copy already written for another recipient is taken back, since the client, told to try
/// again, will send it to both (RFC 5321 6.1: a 250 only for a message taken on for all).
#[test]
fn serve_takes_back_every_copy_of_a_message_it_cannot_store_for_all() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "alice@example.org",
        "--mailbox",
        "bob@example.org",
    ]);
    // Where bob's Maildir would be is a file: his copy cannot be stored, even by root.
    std::fs::write(server.maildir.join("bob"), b"not a directory").unwrap();
    let replies = raw_exchange(
        server.port,
        b"EHLO partial.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<alice@example.org>\r\n\
RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: both or neither\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    );
    assert!(replies.contains("451 4.3.0"), "{replies}");
    assert!(!replies.contains("250 2.0.0"), "{replies}");
    assert!(
        server.transcript_shows("cannot store the message for <bob@example.org>"),
        "{}",
        server.transcript()
    );
    // Alice's copy was written first, then taken back.
    let alice_new = server.maildir.join("alice").join("new");
    assert!(
        alice_new.is_dir(),
        "alice's copy was stored before bob's failed"
    );
    assert_eq!(std::fs::read_dir(&alice_new).unwrap().count(), 0);
    assert!(!server.transcript().contains("cannot take back"));
}

/// `Received: ... for` names the recipient of a transaction that had one, and none when it had
/// two, even two spellings of one mailbox (RFC 5321 4.4, 7.2), as the simulation writes it.
#[test]
fn serve_writes_a_for_clause_only_for_a_transaction_with_one_recipient() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let replies = raw_exchange(
        server.port,
        b"EHLO for.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
DATA\r\nSubject: one\r\n\r\nhello\r\n.\r\n\
MAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<Bob@example.org>\r\n\
DATA\r\nSubject: two\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(replies.matches("250 2.0.0").count(), 2, "{replies}");
    let messages = server.wait_for_messages("bob", 2);
    let one = messages
        .iter()
        .find(|m| m.contains("Subject: one"))
        .unwrap();
    let two = messages
        .iter()
        .find(|m| m.contains("Subject: two"))
        .unwrap();
    assert!(one.contains("for <bob@example.org>; "), "{one}");
    assert!(!two.contains("for <"), "{two}");
}

/// A message with no header fields keeps its text as body under the fields the server writes
/// above it (RFC 5322 2.1).
#[test]
fn serve_keeps_the_text_of_a_message_without_fields_as_its_body() {
    let server = LabServer::start(&["--domain", "example.org"]);
    let replies = raw_exchange(
        server.port,
        b"EHLO bare.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
DATA\r\nHello Bob,\r\nsee you.\r\n.\r\nQUIT\r\n",
    );
    assert!(replies.contains("250 2.0.0 OK"), "{replies}");
    let bob = server.wait_for_messages("bob", 1);
    let (header, body) = bob[0].split_once("\r\n\r\n").expect("an empty line");
    assert!(header.contains("Received: "), "{}", bob[0]);
    assert!(!header.contains("Hello"), "{}", bob[0]);
    assert_eq!(body, "Hello Bob,\r\nsee you.\r\n");
}

/// A last BDAT chunk without a final CRLF (RFC 3030 allows one) is stored as a last line.
#[test]
fn serve_ends_a_message_sent_without_a_final_crlf_with_one() {
    let server = LabServer::start(&["--domain", "example.org"]);
    let replies = raw_exchange(
        server.port,
        b"EHLO chunk.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
BDAT 20 LAST\r\nSubject: b7\r\n\r\nhelloQUIT\r\n",
    );
    assert!(replies.contains("250 2.0.0"), "{replies}");
    let bob = server.wait_for_messages("bob", 1);
    assert!(bob[0].ends_with("\r\n\r\nhello\r\n"), "{:?}", bob[0]);
}

/// The postmaster of the server by its own name and by its address literal (RFC 5321
/// 4.5.1, 4.1.3) is taken, as a simulated host takes it; other mailboxes there are not.
#[test]
fn serve_takes_mail_for_its_postmaster_by_its_own_name_and_address() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--hostname",
        "mx.example.org",
    ]);
    let replies = raw_exchange(
        server.port,
        b"EHLO pm.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<Postmaster@MX.example.org>\r\n\
RCPT TO:<postmaster@[127.0.0.1]>\r\nRCPT TO:<bob@mx.example.org>\r\nDATA\r\n\
Subject: pm\r\n\r\nhi\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(replies.matches("250 2.1.5").count(), 2, "{replies}");
    assert!(replies.contains("550 5.7.1"), "{replies}");
    assert!(replies.contains("250 2.0.0"), "{replies}");
    // One copy: both addresses reach the one postmaster mailbox (the 250 after DATA came
    // once every copy was stored).
    let postmaster = server.wait_for_messages("postmaster", 1);
    assert_eq!(postmaster.len(), 1);
    assert!(postmaster[0].contains("Subject: pm"));
}

/// Without --mailbox every local part is a mailbox, and one whatever its case: `Bob@` and
/// `bob@` get one copy, in a Maildir named in lower case. A quoted --mailbox is the mailbox
/// its address means.
#[test]
fn serve_names_maildirs_by_mailbox_not_by_spelling() {
    let open = LabServer::start(&["--domain", "example.org"]);
    let replies = raw_exchange(
        open.port,
        b"EHLO case.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<Bob@example.org>\r\n\
RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: case\r\n\r\nx\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(replies.matches("250 2.0.0").count(), 1, "{replies}");
    assert_eq!(open.wait_for_messages("bob", 1).len(), 1);
    assert!(!open.maildir.join("Bob").exists());
    let quoted = LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "\"Bob\"@example.org",
    ]);
    raw_exchange(
        quoted.port,
        b"EHLO case.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
DATA\r\nSubject: quoted\r\n\r\nx\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(quoted.wait_for_messages("Bob", 1).len(), 1);
}

/// A transcript that cannot be written does not change send's status, which says what became
/// of the message: a script that took it for a failure would send the message again.
#[test]
fn send_keeps_its_status_when_the_transcript_cannot_be_written() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens (Linux)");
    let mut child = Command::new(SMTP_LAB)
        .args([
            "send",
            "--server",
            &server.address(),
            "--from",
            "a@example.net",
            "--to",
            "bob@example.org",
        ])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtp-lab send runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"hi\n")
        .expect("the body is written");
    let output = child.wait_with_output().expect("send ends");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("cannot write the transcript"), "{err}");
    assert!(err.contains("every recipient was accepted"), "{err}");
    assert_eq!(server.wait_for_messages("bob", 1).len(), 1);
}

/// An address named in --to and again in --bcc (or written with quotes it does not need) is
/// one recipient: one RCPT, as the simulator's user agents send it.
#[test]
fn send_names_a_repeated_recipient_once() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let output = lab_send(
        &[
            "--server",
            &server.address(),
            "--from",
            "a@example.net",
            "--to",
            "bob@example.org",
            "--bcc",
            "bob@example.org",
            "--cc",
            "\"bob\"@example.org",
        ],
        "hi\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert_eq!(out.matches("C: RCPT TO:").count(), 1, "{out}");
    assert_eq!(server.wait_for_messages("bob", 1).len(), 1);
}

/// A display name, as mail programs write addresses, is the header's (RFC 5322 3.4): the
/// envelope has the address alone (RFC 5321 4.1.2).
#[test]
fn send_writes_display_names_in_the_header_and_addresses_alone_in_the_envelope() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let output = send_hi(
        &server.address(),
        "Alice Liddell <a@example.net>",
        "\"Builder, Bob\" <bob@example.org>",
        &[],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("C: MAIL FROM:<a@example.net>"), "{out}");
    assert!(out.contains("C: RCPT TO:<bob@example.org>"), "{out}");
    let stored = &server.wait_for_messages("bob", 1)[0];
    assert!(
        stored.contains("\r\nFrom: Alice Liddell <a@example.net>\r\n"),
        "{stored}"
    );
    assert!(
        stored.contains("\r\nTo: \"Builder, Bob\" <bob@example.org>\r\n"),
        "{stored}"
    );
    assert!(
        stored.starts_with("Return-Path: <a@example.net>\r\n"),
        "{stored}"
    );
}

#[test]
fn send_with_8bit_sends_the_body_as_it_is_and_says_so() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let address = server.address();
    let send = |extra: &[&str]| {
        let mut args = vec![
            "--server",
            &address,
            "--from",
            "a@example.net",
            "--to",
            "bob@example.org",
        ];
        args.extend_from_slice(extra);
        let output = lab_send(&args, "Un caf\u{e9}.\n");
        let out = text(&output);
        assert_eq!(output.status.code(), Some(0), "{out}");
        out
    };
    let mail_command = |out: &str| {
        out.lines()
            .find(|line| line.starts_with("C: MAIL FROM:"))
            .unwrap_or_else(|| panic!("no MAIL: {out}"))
            .to_string()
    };
    assert!(mail_command(&send(&["--8bit"])).ends_with(" BODY=8BITMIME"));
    assert!(!mail_command(&send(&[])).contains("BODY="));
    let stored = server.wait_for_messages("bob", 2);
    let eight_bit = "Content-Transfer-Encoding: 8bit\r\n\r\nUn caf\u{e9}.\r\n";
    let quoted = "Content-Transfer-Encoding: quoted-printable\r\n\r\nUn caf=C3=A9.\r\n";
    for expected in [eight_bit, quoted] {
        assert_eq!(
            stored.iter().filter(|m| m.contains(expected)).count(),
            1,
            "{expected}: {stored:?}"
        );
    }
}

/// A client that pipelines commands and takes none of the replies holds its session no
/// longer than the idle timeout, as one that says nothing would: the one place of
/// --max-sessions 1 is free again for the next client.
#[test]
fn serve_cuts_a_client_that_takes_none_of_its_replies() {
    let server = LabServer::start(&[
        "--domain",
        "example.org",
        "--idle-timeout",
        "2",
        "--max-sessions",
        "1",
        "--quiet",
    ]);
    let out = run_python_against(
        &server,
        r#"
import socket, sys, time
port = int(sys.argv[1])
stuck = socket.socket()
stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
stuck.connect(("127.0.0.1", port))
stuck.setblocking(False)
commands = b"NOOP\r\n" * 10000
sent, start = 0, time.time()
while time.time() - start < 1.5:
    try:
        sent += stuck.send(commands)
    except BlockingIOError:
        time.sleep(0.01)
def greeting():
    probe = socket.create_connection(("127.0.0.1", port), timeout=5)
    line = probe.recv(200).decode()
    probe.close()
    return line.split(" ")[0]
print("while stuck:", greeting())
# The server works through what it was sent until its replies fill the connection; the
# reply it cannot send then is given 2 s before the session is cut.
deadline = time.time() + 60
answer = greeting()
while answer != "220" and time.time() < deadline:
    time.sleep(0.5)
    answer = greeting()
print("after the timeout:", answer)
stuck.close()
"#,
    );
    assert!(out.contains("while stuck: 421"), "{out}");
    assert!(out.contains("after the timeout: 220"), "{out}");
    // The refusal is in the log, --quiet as it is.
    assert!(
        server.transcript_shows(
            "# connection from [127.0.0.1] refused with 421: as many sessions are open as \
             --max-sessions allows (1)"
        ),
        "{}",
        server.transcript()
    );
    assert!(
        server.transcript_shows("closed by the server: the client took no reply for 2 s"),
        "{}",
        server.transcript()
    );
}

#[test]
fn serve_gives_each_message_of_a_session_its_own_queue_id() {
    let server = LabServer::start(&["--domain", "example.org", "--mailbox", "bob@example.org"]);
    let one = "MAIL FROM:<a@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: m\r\n\r\nx\r\n.\r\n";
    let replies = raw_exchange(
        server.port,
        format!("EHLO ids.example\r\n{one}{one}{one}QUIT\r\n").as_bytes(),
    );
    let ids: Vec<&str> = replies
        .lines()
        .filter_map(|line| line.strip_prefix("250 2.0.0 OK: queued as "))
        .collect();
    assert_eq!(ids.len(), 3, "{replies}");
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{replies}");
    let messages = server.wait_for_messages("bob", 3);
    for id in ids {
        let holding = messages
            .iter()
            .filter(|m| m.contains(&format!(" id {id}")))
            .count();
        assert_eq!(holding, 1, "{id}: {messages:?}");
    }
}

// ----- real POP3 clients fetching from smtp-lab serve --pop3 -----

/// `serve` with a POP3 service for bob.
fn lab_server_with_pop3() -> LabServer {
    LabServer::start(&[
        "--domain",
        "example.org",
        "--mailbox",
        "bob@example.org",
        "--pop3",
        "127.0.0.1:0",
        "--pop3-user",
        "bob:secret",
    ])
}

/// The messages in a Maildir's `new/`, in the order of their bytes.
fn maildir_contents(dir: &Path) -> Vec<Vec<u8>> {
    let mut contents: Vec<Vec<u8>> = maildir_files(dir)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    contents.sort();
    contents
}

/// swaks delivers `body` to bob@example.org at `server`.
fn swaks_to_bob(server: &LabServer, body: &str) {
    require_tool("swaks");
    let sent = run(Command::new("swaks").args([
        "--server",
        &server.address(),
        "--from",
        "eve@elsewhere.test",
        "--to",
        "bob@example.org",
        "--body",
        body,
    ]));
    assert!(sent.status.success(), "{}", text(&sent));
}

/// The files of a Maildir's `new/`, by name.
fn maildir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir.join("new"))
        .expect("the Maildir exists")
        .map(|entry| {
            let entry = entry.expect("a readable entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).expect("a readable message"))
        })
        .collect();
    files.sort();
    files
}

/// Python's smtplib delivers, and its poplib fetches: the listing, the unique-ids, each
/// message byte for byte (a line that starts with a dot stuffed on both protocols and
/// unstuffed by both clients), TOP, the lock against a second session, a wrong password, and
/// DELE, which removes the file only at QUIT.
#[test]
fn python_poplib_fetches_what_smtplib_delivered() {
    let server = lab_server_with_pop3();
    let pop3_port = server.pop3_port.expect("a POP3 port");
    let script = r#"
import os, poplib, smtplib, sys
smtp_port, pop3_port, maildir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
    smtp.sendmail("alice@example.net", ["bob@example.org"],
                  b"Subject: one\r\n\r\nfirst\r\n.a line that starts with a dot\r\n")
    smtp.sendmail("carol@example.net", ["bob@example.org"], b"Subject: two\r\n\r\nsecond\r\n")
pop = poplib.POP3("127.0.0.1", pop3_port)
assert pop.getwelcome().startswith(b"+OK"), pop.getwelcome()
capabilities = pop.capa()
assert "UIDL" in capabilities and "TOP" in capabilities, capabilities
try:
    pop.user("bob"); pop.pass_("wrong")
    raise SystemExit("a wrong password was taken")
except poplib.error_proto as refused:
    print("WRONG", refused)
pop = poplib.POP3("127.0.0.1", pop3_port)
pop.user("Bob"); pop.pass_("secret")
count, octets = pop.stat()
files = sorted(os.listdir(os.path.join(maildir, "new")))
stored = {name: open(os.path.join(maildir, "new", name), "rb").read() for name in files}
assert count == 2 and octets == sum(len(b) for b in stored.values()), (count, octets)
uids = {int(n): u.decode() for n, u in (line.split() for line in pop.uidl()[1])}
assert sorted(uids.values()) == files, (uids, files)
sizes = {int(n): int(o) for n, o in (line.split() for line in pop.list()[1])}
for number, uid in uids.items():
    lines = pop.retr(number)[1]
    assert b"\r\n".join(lines) + b"\r\n" == stored[uid], (lines, stored[uid])
    assert sizes[number] == len(stored[uid]), (sizes, number)
assert any(line == b".a line that starts with a dot" for line in pop.retr(1)[1])
header = pop.top(2, 0)[1]
assert header[-1] == b"" and b"Subject: two" in header and b"second" not in header, header
other = poplib.POP3("127.0.0.1", pop3_port)
other.user("bob")
try:
    other.pass_("secret")
    raise SystemExit("a second session took the locked maildrop")
except poplib.error_proto as refused:
    print("SECOND", refused)
other.quit()
pop.dele(1)
assert len(os.listdir(os.path.join(maildir, "new"))) == 2, "removed before QUIT"
print("QUIT", pop.quit())
pop = poplib.POP3("127.0.0.1", pop3_port)
pop.user("bob"); pop.pass_("secret")
assert [u.split()[1].decode() for u in pop.uidl()[1]] == [uids[2]], pop.uidl()
pop.quit()
print("poplib done")
"#;
    let bob = server.maildir.join("bob");
    let output = run(Command::new(python())
        .args([
            "-c",
            script,
            &server.port.to_string(),
            &pop3_port.to_string(),
        ])
        .arg(&bob));
    let out = text(&output);
    assert!(output.status.success(), "python failed:\n{out}");
    assert!(out.contains("WRONG b'-ERR [AUTH]"), "{out}");
    assert!(out.contains("SECOND b'-ERR [IN-USE]"), "{out}");
    assert!(out.contains("QUIT b'+OK"), "{out}");
    assert!(out.contains("poplib done"), "{out}");
    let left = maildir_files(&bob);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        String::from_utf8_lossy(&left[0].1).contains("Subject: two"),
        "{left:?}"
    );
    assert!(
        server.transcript_shows("C: PASS ********"),
        "{}",
        server.transcript()
    );
    assert!(
        !server.transcript().contains("secret"),
        "{}",
        server.transcript()
    );
}

/// curl, another real POP3 client: the listing, a message as stored, and a login refused.
#[test]
fn curl_fetches_over_pop3_what_swaks_delivered() {
    require_tool("swaks");
    require_tool("curl");
    let server = lab_server_with_pop3();
    let pop3 = format!(
        "pop3://127.0.0.1:{}/",
        server.pop3_port.expect("a POP3 port")
    );
    swaks_to_bob(&server, "Hello Bob\n.dot\n");
    server.wait_for_messages("bob", 1);
    let files = maildir_files(&server.maildir.join("bob"));
    let listing = run(Command::new("curl").args(["-s", "-u", "bob:secret", &pop3]));
    assert!(listing.status.success(), "{}", text(&listing));
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        format!("1 {}\r\n", files[0].1.len())
    );
    let message = run(Command::new("curl").args(["-s", "-u", "bob:secret", &format!("{pop3}1")]));
    assert!(message.status.success(), "{}", text(&message));
    assert_eq!(message.stdout, files[0].1);
    assert!(String::from_utf8_lossy(&message.stdout).contains("\r\n.dot\r\n"));
    // curl's status 67: "the user name, password, or similar was not accepted".
    let refused = run(Command::new("curl").args(["-s", "-u", "bob:nope", &pop3]));
    assert_eq!(refused.status.code(), Some(67), "{}", text(&refused));
    // A listing is no UPDATE: the message stays.
    assert_eq!(maildir_files(&server.maildir.join("bob")).len(), 1);
}

/// `smtp-lab fetch` with these arguments.
fn lab_fetch(args: &[&str]) -> Output {
    run(Command::new(SMTP_LAB).arg("fetch").args(args))
}

/// `smtp-lab fetch` of bob's mail from `server` into `maildir`, deleting it on the server.
fn lab_fetch_and_delete(server: &str, maildir: &Path) -> Output {
    lab_fetch(&[
        "--server",
        server,
        "--user",
        "bob:secret",
        "--maildir",
        maildir.to_str().expect("a UTF-8 path"),
        "--delete",
    ])
}

/// A POP3 server that breaks off or speaks something else: `fetch` says in words what it was
/// waiting for, and quotes what the server sent escaped once, as its `S:` line shows it.
#[test]
fn fetch_says_what_it_waited_for_and_escapes_a_servers_line_once() {
    let port = scripted_server("+OK ready\r\n", &[]);
    let output = lab_fetch(&["--server", &format!("127.0.0.1:{port}"), "--user", "bob:x"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "smtp-lab fetch: the connection closed while waiting for the reply to CAPA; \
             nothing was deleted without QUIT"
        ),
        "{out}"
    );
    assert!(!out.contains("Expect"), "a state's name: {out}");
    // A refusal's words reach the terminal with their control characters escaped, on stderr
    // too.
    let port = scripted_server(
        "+OK ready\r\n",
        &["-ERR no\r\n", "+OK\r\n", "-ERR [AUTH] \x1b]0;x\x07bad\r\n"],
    );
    let output = lab_fetch(&["--server", &format!("127.0.0.1:{port}"), "--user", "bob:x"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("-ERR [AUTH] \\x1b]0;x\\x07bad"), "{error:?}");
    assert!(!text(&output).contains('\x1b'), "{:?}", text(&output));
    // A control character, a quote and a backslash the server sent before an `n`.
    let port = scripted_server("\x1b[31m\"RED\"\x07 \\n\r\n", &[]);
    let output = lab_fetch(&["--server", &format!("127.0.0.1:{port}"), "--user", "bob:x"]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("S: \\x1b[31m\"RED\"\\x07 \\\\n\n"), "{out}");
    let quoted = r#""\x1b[31m\"RED\"\x07 \\n""#;
    let why = format!("the response {quoted} starts with neither +OK nor -ERR");
    assert!(out.contains(&format!("# not POP3: {why}\n")), "{out}");
    assert!(
        out.contains(&format!(
            "smtp-lab fetch: the server's answer is not POP3: {why}"
        )),
        "{out}"
    );
    assert!(!out.contains(r"\\x1b"), "escaped twice: {out}");
}

/// The two POP3 engines over a real connection: `fetch` stores what `serve --pop3` holds,
/// byte for byte, and its --delete empties the server's Maildir at QUIT.
#[test]
fn fetch_takes_from_serve_pop3_what_swaks_delivered() {
    require_tool("swaks");
    let server = lab_server_with_pop3();
    let pop3 = format!("127.0.0.1:{}", server.pop3_port.expect("a POP3 port"));
    for body in ["Hello Bob\n.dot\n", "Again\n"] {
        swaks_to_bob(&server, body);
    }
    server.wait_for_messages("bob", 2);
    let held = maildir_files(&server.maildir.join("bob"));
    // A message that cannot be stored (bob's Maildir cannot be made: a file has its name)
    // ends the session without QUIT, so the server deletes nothing.
    let blocked = scratch_dir("fetched-blocked");
    fs::write(blocked.join("bob"), b"not a directory").expect("a scratch file");
    let failed = lab_fetch_and_delete(&pop3, &blocked);
    let out = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(out.contains("cannot store message 1"), "{out}");
    assert!(
        !out.contains("C: DELE") && !out.contains("C: QUIT"),
        "{out}"
    );
    assert!(
        server.transcript_shows("nothing is deleted without QUIT"),
        "{}",
        server.transcript()
    );
    assert_eq!(maildir_files(&server.maildir.join("bob")), held);
    let fetched = scratch_dir("fetched");
    let output = lab_fetch_and_delete(&pop3, &fetched);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("C: PASS ********") && !out.contains("secret"),
        "{out}"
    );
    assert!(out.contains("C: DELE 2"), "{out}");
    assert!(
        out.contains("# 2 messages retrieved, 2 stored, 2 deleted on the server"),
        "{out}"
    );
    let mut expected: Vec<Vec<u8>> = held.into_iter().map(|(_, bytes)| bytes).collect();
    expected.sort();
    assert_eq!(maildir_contents(&fetched.join("bob")), expected);
    assert!(maildir_files(&server.maildir.join("bob")).is_empty());
}

// ----- a private Dovecot, as a real POP3 server -----

struct Dovecot {
    dir: PathBuf,
    port: u16,
}

impl Dovecot {
    /// Starts a private Dovecot serving DIR/mail/bob to bob:secret.
    fn start() -> Dovecot {
        require_tool("dovecot");
        let dir = scratch_dir("dovecot");
        let port = free_port();
        let output = run(Command::new(Dovecot::script())
            .arg("start")
            .arg(&dir)
            .arg(port.to_string()));
        assert!(
            output.status.success(),
            "dovecot did not start:\n{}",
            text(&output)
        );
        // Made before the wait, so that its drop stops a Dovecot that never listens.
        let dovecot = Dovecot { dir, port };
        wait_for_port(port);
        dovecot
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dovecot-instance.sh")
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("mail/bob")
    }

    /// Puts a message in bob's Maildir, as a delivery agent would, owned by the user
    /// Dovecot reads it as.
    fn deliver(&self, name: &str, bytes: &[u8]) {
        let path = self.maildir().join("new").join(name);
        fs::write(&path, bytes).expect("the Maildir is writable");
        let owned = run(Command::new("chown").arg("dovecot:dovecot").arg(&path));
        assert!(owned.status.success(), "{}", text(&owned));
    }

    /// The messages left on the server, in new/ and cur/.
    fn left(&self) -> usize {
        ["new", "cur"]
            .iter()
            .map(|sub| {
                fs::read_dir(self.maildir().join(sub))
                    .map(|entries| entries.count())
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(Dovecot::script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// `fetch` against Dovecot: a refused login, a listing that leaves the mail, then a fetch
/// that stores both messages (one with LF line ends, which POP3 sends as CRLF; one with a
/// line that starts with a dot, stuffed on the wire) and deletes them.
#[test]
fn fetch_retrieves_and_deletes_from_dovecot() {
    let dovecot = Dovecot::start();
    dovecot.deliver(
        "1000000001.M1P1.dovecot",
        b"Subject: one\r\n\r\nfirst\r\n.a dot line\r\n",
    );
    dovecot.deliver(
        "1000000002.M1P1.dovecot",
        b"Subject: two\n\nsecond, with LF line ends\n",
    );
    let server = format!("127.0.0.1:{}", dovecot.port);
    let refused = lab_fetch(&["--server", &server, "--user", "bob:wrong"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("login refused: -ERR"),
        "{}",
        text(&refused)
    );
    let kept = lab_fetch(&["--server", &server, "--user", "bob:secret"]);
    let out = text(&kept);
    assert!(kept.status.success(), "{out}");
    // Shown as Dovecot sent it: the line's leading dot doubled (RFC 1939 3).
    assert!(out.contains("S: ..a dot line"), "{out}");
    assert!(!out.contains("C: DELE"), "{out}");
    assert_eq!(dovecot.left(), 2, "{out}");
    let fetched = scratch_dir("fetched-dovecot");
    let taken = lab_fetch_and_delete(&server, &fetched);
    let out = text(&taken);
    assert!(taken.status.success(), "{out}");
    assert!(
        out.contains("# 2 messages retrieved, 2 stored, 2 deleted on the server"),
        "{out}"
    );
    assert_eq!(
        maildir_contents(&fetched.join("bob")),
        [
            b"Subject: one\r\n\r\nfirst\r\n.a dot line\r\n".to_vec(),
            b"Subject: two\r\n\r\nsecond, with LF line ends\r\n".to_vec()
        ]
    );
    assert_eq!(dovecot.left(), 0, "{out}");
}

// ----- smtp-lab send to real servers -----

/// `smtp-lab send` of "hi" from `from` to `to` through `server` (HOST:PORT), with `extra`
/// options.
fn send_hi(server: &str, from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--server", server, "--from", from, "--to", to];
    args.extend_from_slice(extra);
    lab_send(&args, "hi\n")
}

fn lab_send(args: &[&str], body: &str) -> Output {
    let mut child = Command::new(SMTP_LAB)
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtp-lab starts");
    // A usage error may end the process before it reads its standard input.
    let _ = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(body.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn send_delivers_to_aiosmtpd() {
    let port = free_port();
    let dir = scratch_dir("aiosmtpd");
    let log = fs::File::create(dir.join("aiosmtpd.log")).unwrap();
    let _server = Running {
        child: Command::new(python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "envelope_logger.EnvelopeLogger",
                "-l",
                &format!("127.0.0.1:{port}"),
            ])
            .env(
                "PYTHONPATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop"),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("aiosmtpd starts"),
    };
    wait_for_port(port);
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{port}"),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.net",
            "--cc",
            "carol@example.net",
            "--bcc",
            "dave@example.net",
            "--subject",
            "to aiosmtpd",
        ],
        "Hello aiosmtpd\n.dot line\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("<dave@example.net> accepted"), "{out}");
    let deadline = Instant::now() + WAIT;
    let logged = loop {
        let logged = fs::read_to_string(dir.join("aiosmtpd.log")).unwrap_or_default();
        if logged.contains("END MESSAGE") || Instant::now() > deadline {
            break logged;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(logged.contains("Subject: to aiosmtpd"), "{logged}");
    assert!(logged.contains(".dot line"), "{logged}");
    assert!(logged.contains("MAIL FROM: alice@example.org"), "{logged}");
    for recipient in ["bob", "carol", "dave"] {
        assert!(
            logged.contains(&format!("RCPT TO: {recipient}@example.net")),
            "{logged}"
        );
    }
    // Bcc is in the envelope only.
    assert!(!logged.contains("dave@example.net>"), "{logged}");
    assert!(!logged.contains("Bcc:"), "{logged}");
    // aiosmtpd offers no CHUNKING: asked for BDAT, send uses DATA, the dots doubled.
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{port}"),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.net",
            "--bdat",
            "10",
        ],
        "no chunks\n.dot line\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("C: DATA\n"), "{out}");
    assert!(out.contains("C: ..dot line\n"), "{out}");
    assert!(
        out.contains("# the server does not offer CHUNKING (RFC 3030)"),
        "{out}"
    );
    assert!(!out.contains("C: BDAT"), "{out}");
}

fn smtp_sink(extra: &[&str]) -> (Running, u16) {
    require_tool("smtp-sink");
    let port = free_port();
    let child = Command::new("smtp-sink")
        .args(extra)
        .args(["-u", "nobody", "-c", &format!("127.0.0.1:{port}"), "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink starts");
    wait_for_port(port);
    (Running { child }, port)
}

#[test]
fn send_to_smtp_sink_accepts_and_honours_rejections() {
    let (_sink, port) = smtp_sink(&[]);
    let server = format!("127.0.0.1:{port}");
    let base = [
        "--server",
        &server,
        "--from",
        "a@example.org",
        "--to",
        "b@example.net",
    ];
    // smtp-sink ends its EHLO reply with an empty "250 " line.
    let output = lab_send(&base, "hi\n");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("<b@example.net> accepted"));

    let (_hard, port) = smtp_sink(&["-f", "RCPT"]);
    let server = format!("127.0.0.1:{port}");
    let output = send_hi(&server, "a@example.org", "b@example.net", &[]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("<b@example.net> permanent failure: 5"),
        "{out}"
    );
    // No recipient accepted: no DATA.
    assert!(!out.contains("C: DATA"), "{out}");

    let (_soft, port) = smtp_sink(&["-r", "RCPT"]);
    let server = format!("127.0.0.1:{port}");
    let output = send_hi(&server, "a@example.org", "b@example.net", &[]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("<b@example.net> temporary failure: 4"),
        "{out}"
    );
}

#[test]
fn send_reports_connection_refused_and_usage_errors() {
    let port = free_port();
    let output = send_hi(
        &format!("127.0.0.1:{port}"),
        "a@example.org",
        "b@example.net",
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("cannot connect"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let output = lab_send(&["--from", "a@example.org"], "");
    assert_eq!(output.status.code(), Some(2));
    // A malformed --server is a usage error too: one line, exit 2, nothing sent.
    for server in [
        "127.0.0.1",
        "127.0.0.1:99999",
        "127.0.0.1:0",
        ":25",
        "::1:25",
        "[nonsense]:25",
        "127.0.0.1:smtp",
    ] {
        let output = send_hi(server, "a@example.org", "b@example.net", &[]);
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{server}: {err}");
        assert!(err.contains("--server takes HOST:PORT"), "{server}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    // Attachments past the composer's 32 MiB are refused at the first file that passes it,
    // before the files after it are read (the last here does not exist).
    let dir = scratch_dir("attachments-limit");
    let large = dir.join("large.bin");
    fs::write(&large, vec![0u8; 20 * 1024 * 1024]).unwrap();
    let large = large.display().to_string();
    let missing = dir.join("missing.bin").display().to_string();
    let output = send_hi(
        &format!("127.0.0.1:{port}"),
        "a@example.org",
        "b@example.net",
        &["--attach", &large, "--attach", &large, "--attach", &missing],
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("come to 41943040 octets, more than 33554432"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
    // An address that cannot be written is a usage error, before any connection; one the
    // grammar refuses goes to the server, whose 501 is the lesson.
    for to in [
        "bob@@example.net",
        "Bob <bob@example.net> <eve@example.net>",
        "bob@example.net <eve@example.net>",
    ] {
        let output = lab_send(
            &[
                "--server",
                &format!("127.0.0.1:{port}"),
                "--from",
                "a@example.org",
                "--to",
                to,
            ],
            "hi\n",
        );
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{to}: {err}");
        assert!(!err.contains("cannot connect"), "{to}: {err}");
    }
    let server = LabServer::start(&["--domain", "example.org"]);
    let output = send_hi(&server.address(), "a@example.net", "a..b@example.org", &[]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("C: RCPT TO:<a..b@example.org>"), "{out}");
    assert!(out.contains("S: 501 5.1.3"), "{out}");
    // What is asked of DSN (RFC 3461) and cannot be sent is a usage error too; to a server
    // that does not offer DSN, none of it is sent, and the transcript says so.
    for (flag, value, said) in [
        ("--notify", "NEVER,SUCCESS", "NEVER cannot be combined"),
        ("--notify", "ALWAYS", "is not a NOTIFY value"),
        ("--ret", "ALL", "neither FULL nor HDRS"),
        ("--envid", "caf\u{e9}", "ENVID holds"),
        ("--envid", "order ", "begins or ends with a space"),
    ] {
        let output = send_hi(
            &server.address(),
            "a@example.net",
            "b@example.org",
            &[flag, value],
        );
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(said), "{flag} {value}: {err}");
        assert!(output.stdout.is_empty(), "{flag} {value}: nothing sent");
    }
    let output = send_hi(
        &server.address(),
        "a@example.net",
        "b@example.org",
        &["--notify", "success", "--envid", "x1", "--orcpt"],
    );
    let out = text(&output);
    assert!(
        out.contains("# the server does not offer DSN (RFC 3461)"),
        "{out}"
    );
    assert!(out.contains("C: MAIL FROM:<a@example.net>"), "{out}");
    assert!(!out.contains("ENVID=") && !out.contains("NOTIFY="), "{out}");
}

/// Output that cannot be written (a full disk) is an error, said on stderr, never a
/// success with an empty file; a reader that stops early (`| head -1`) is not.
#[test]
fn run_and_scenarios_say_when_their_output_cannot_be_written() {
    for args in [
        &["run", "basic-delivery"][..],
        &["run", "basic-delivery", "--format", "json"],
        &["scenarios"],
    ] {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full opens (Linux)");
        let output = Command::new(SMTP_LAB)
            .args(args)
            .stdout(full)
            .output()
            .expect("smtp-lab runs");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write"), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
    // Far more than a pipe holds (about 200 KB against 64 KB), so that writes fail.
    let mut child = Command::new(SMTP_LAB)
        .args(["run", "server-down-for-good", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtp-lab runs");
    let mut first = [0u8; 1];
    child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_exact(&mut first)
        .expect("some output");
    // The pipe is closed here, with most of the trace unread.
    let output = child.wait_with_output().expect("smtp-lab ends");
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{:?}", output.stderr);
}

/// A scripted server for one connection: sends `greeting`, then answers each command line
/// with the next of `replies`; after them it closes, mid-conversation if the client goes on.
fn scripted_server(greeting: &'static str, replies: &'static [&'static str]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let _ = writer.write_all(greeting.as_bytes());
        for reply in replies {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            let _ = writer.write_all(reply.as_bytes());
        }
        // Give the client time to send what follows, then drop the connection.
        thread::sleep(Duration::from_millis(100));
    });
    port
}

#[test]
fn send_gives_one_line_errors_for_421_and_dropped_connections() {
    // Each with what the transcript says of the recipient: a connection lost is no server's
    // refusal, and once the whole message went out the client cannot know whether the server
    // kept it (RFC 5321 6.1).
    type Case = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static str,
        &'static [&'static str],
    );
    let cases: [Case; 4] = [
        (
            "421 greeting",
            "421 4.3.2 busy\r\n",
            &[],
            "421 4.3.2 busy",
            &[],
        ),
        (
            "closed before the greeting",
            "",
            &[],
            "lost connection",
            &[],
        ),
        (
            "closed before 354",
            "220 s.example\r\n",
            &["250 s.example\r\n", "250 ok\r\n", "250 ok\r\n"],
            "lost connection",
            &[
                "# <b@example.net> not delivered: 451",
                "(this client's own finding)",
            ],
        ),
        (
            "closed after the final dot",
            "220 s.example\r\n",
            &[
                "250 s.example\r\n",
                "250 ok\r\n",
                "250 ok\r\n",
                "354 go\r\n",
            ],
            "not confirmed; <b@example.net> delivered or not, unknown: 451 4.4.2 lost connection",
            &[
                "# <b@example.net> delivered or not, unknown: 451",
                "Result:\n  <b@example.net> delivered or not, unknown: 451",
                "a retry may deliver it twice, RFC 5321 6.1)",
            ],
        ),
    ];
    for (name, greeting, replies, expected, notes) in cases {
        let port = scripted_server(greeting, replies);
        let output = send_hi(
            &format!("127.0.0.1:{port}"),
            "a@example.org",
            "b@example.net",
            &["--no-pipelining"],
        );
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", text(&output));
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        let out = String::from_utf8_lossy(&output.stdout);
        for note in notes {
            assert!(out.contains(note), "{name}: {note}: {out}");
        }
        if !notes.is_empty() {
            assert!(!out.contains("> refused:"), "{name}: {out}");
        }
    }
}

/// With BDAT, only the last chunk completes the message (RFC 3030 2): a connection lost after
/// another chunk leaves the recipient not delivered, one lost after the last leaves its fate
/// unknown, as after DATA's final dot.
#[test]
fn send_with_bdat_knows_which_chunk_a_lost_connection_followed() {
    const CHUNKING: &[&str] = &[
        "250-s.example\r\n250 CHUNKING\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
    ];
    for (chunk, expected) in [
        ("10", "# <b@example.net> not delivered: 451"),
        ("100000", "# <b@example.net> delivered or not, unknown: 451"),
    ] {
        let port = scripted_server("220 s.example\r\n", CHUNKING);
        let output = send_hi(
            &format!("127.0.0.1:{port}"),
            "a@example.org",
            "b@example.net",
            &["--no-pipelining", "--bdat", chunk],
        );
        let out = text(&output);
        assert_eq!(output.status.code(), Some(1), "{out}");
        assert!(out.contains("C: BDAT "), "{out}");
        assert!(out.contains(expected), "--bdat {chunk}: {out}");
    }
}

/// Pipelined chunks (RFC 3030 4.2) are answered in order: a reply to a chunk before the last
/// is not the message's. A connection lost after it, with the last chunk sent, leaves the
/// fate unknown; one lost before the last chunk could go leaves the message not delivered.
#[test]
fn send_with_pipelined_bdat_waits_for_the_last_chunks_reply() {
    // EHLO, then MAIL and RCPT (pipelined), then the first chunk's command line: four
    // replies, and the connection is dropped.
    const PIPELINED_CHUNKING: &[&str] = &[
        "250-s.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
        "250 ok\r\n",
        "250 ok\r\n",
        "250 2.0.0 chunk received\r\n",
    ];
    // Chunks of 64: the whole message goes in the first window of 8, its last chunk too;
    // chunks of 4: the window is full long before the last chunk.
    for (chunk, expected) in [
        ("64", "# <b@example.net> delivered or not, unknown: 451"),
        ("4", "# <b@example.net> not delivered: 451"),
    ] {
        let port = scripted_server("220 s.example\r\n", PIPELINED_CHUNKING);
        let output = send_hi(
            &format!("127.0.0.1:{port}"),
            "a@example.org",
            "b@example.net",
            &["--bdat", chunk],
        );
        let out = text(&output);
        assert_eq!(output.status.code(), Some(1), "{out}");
        assert!(out.contains("S: 250 2.0.0 chunk received"), "{out}");
        assert!(out.contains(expected), "--bdat {chunk}: {out}");
    }
}

/// What `send` prints to a server that sends only `greeting` and closes; it fails.
fn send_to_a_greeting_only(greeting: &'static str) -> String {
    let port = scripted_server(greeting, &[]);
    let output = send_hi(
        &format!("127.0.0.1:{port}"),
        "a@example.org",
        "b@example.net",
        &[],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    out
}

/// The transcript shows each reply line as the server sent it, however irregular, and a
/// server's control characters reach the terminal escaped, in the transcript, the result and
/// the error alike.
#[test]
fn send_shows_the_servers_reply_lines_as_sent_and_escapes_their_controls() {
    let port = scripted_server(
        "220 s.example\r\n",
        &[
            "250 s.example\r\n",
            "250-first\r\n250 2.1.0 second\r\n",
            "550 5.1.1 bad \x1b]0;PWNED\x07 \x1b[31mRED\x1b[0m\r\n",
            "221\r\n",
        ],
    );
    let output = send_hi(
        &format!("127.0.0.1:{port}"),
        "a@example.org",
        "b@example.net",
        &["--no-pipelining"],
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    for line in ["S: 250-first\n", "S: 250 2.1.0 second\n", "S: 221\n"] {
        assert!(out.contains(line), "{line:?}: {out}");
    }
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("  <b@example.net> permanent failure: 550 5.1.1 bad \\x1b]0;PWNED"));
    // A reply the client cannot read is shown as it came, before the client says why.
    let out = send_to_a_greeting_only("220-s.example\r\n221 bye\r\n");
    assert!(
        out.contains("S: 220-s.example\nS: 221 bye\n# unreadable reply"),
        "{out}"
    );
    // An unreadable line is escaped once, as its `S:` line shows it (and a quote in it, so
    // that it cannot seem to end early), in the note, the recipient's line, the result and
    // the error alike: here a control character, a quote and a backslash before an `n`.
    let out = send_to_a_greeting_only("\x1b[31m\"RED\"\x07 \\n\r\n");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("S: \\x1b[31m\"RED\"\\x07 \\\\n\n"), "{out}");
    let quoted = r#"not an SMTP reply line: "\x1b[31m\"RED\"\x07 \\n""#;
    for line in [
        format!("# unreadable reply: {quoted}\n"),
        format!("# <b@example.net> not delivered: 451 4.5.0 unreadable reply from the server: {quoted}"),
        format!("  <b@example.net> temporary failure: 451 4.5.0 unreadable reply from the server: {quoted}"),
    ] {
        assert!(out.contains(&line), "{line:?}: {out}");
    }
    assert!(!out.contains(r"\\x1b"), "escaped twice: {out}");
}

// ----- a private Postfix, as a real client and a real server -----

struct Postfix {
    dir: PathBuf,
    port: u16,
}

impl Postfix {
    /// Starts a private Postfix: it takes mail for postfix.test into Maildirs and relays
    /// relay.test to `relay_port`.
    fn start(relay_port: u16) -> Postfix {
        require_tool("postfix");
        let dir = scratch_dir("postfix");
        let port = free_port();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/postfix-instance.sh");
        let output = run(Command::new(script)
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .arg(relay_port.to_string()));
        assert!(
            output.status.success(),
            "postfix did not start:\n{}",
            text(&output)
        );
        wait_for_port(port);
        Postfix { dir, port }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/postfix-instance.sh");
        let _ = Command::new(script).arg("stop").arg(&self.dir).output();
    }
}

#[test]
fn postfix_relays_into_serve_and_send_delivers_to_postfix() {
    let server = LabServer::start(&["--domain", "relay.test", "--mailbox", "bob@relay.test"]);
    let postfix = Postfix::start(server.port);

    // Postfix as a real SMTP client: it relays a message for relay.test to smtp-lab serve.
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{}", postfix.port),
            "--from",
            "alice@example.org",
            "--to",
            "bob@relay.test",
            "--subject",
            "through postfix",
        ],
        "relayed by Postfix\n",
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output),
        postfix.log()
    );
    let relayed = server.wait_for_messages("bob", 1);
    let message = &relayed[0];
    assert!(
        message.starts_with("Return-Path: <alice@example.org>\r\n"),
        "{message}"
    );
    // Two Received fields: ours on top (from Postfix), then Postfix's own.
    assert!(
        message.contains("Received: from postfix.smtp-lab.test ([127.0.0.1])"),
        "{message}"
    );
    assert!(message.matches("Received: ").count() >= 2, "{message}");
    assert!(message.contains("Subject: through postfix"), "{message}");
    assert!(
        server.transcript_shows("C: EHLO postfix.smtp-lab.test"),
        "{}",
        server.transcript()
    );

    // smtp-lab send to Postfix as the final server: read the message back from its Maildir.
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{}", postfix.port),
            "--from",
            "alice@example.org",
            "--to",
            "carol@postfix.test",
            "--to",
            "nobody@postfix.test",
            "--subject",
            "to postfix",
        ],
        "Hello Carol\n.dot\n",
    );
    let out = text(&output);
    // nobody@postfix.test is unknown to Postfix: refused at RCPT, the rest delivered.
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("<carol@postfix.test> accepted"), "{out}");
    assert!(
        out.contains("<nobody@postfix.test> permanent failure: 550 5.1.1"),
        "{out}"
    );
    let delivered = wait_for_maildir(&postfix.dir.join("mail/carol/new"), 1);
    let message = &delivered[0];
    assert!(message.contains("Subject: to postfix"), "{message}");
    assert!(
        message.contains("\n.dot\n") || message.contains("\r\n.dot\r\n"),
        "{message}"
    );
    assert!(
        message.contains("Return-Path: <alice@example.org>"),
        "{message}"
    );

    // smtp-lab send with BDAT (RFC 3030): Postfix offers CHUNKING, and takes the message in
    // counted chunks, the lines of dots as they are (no dot-stuffing).
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{}", postfix.port),
            "--from",
            "alice@example.org",
            "--to",
            "dave@postfix.test",
            "--subject",
            "in chunks",
            "--bdat",
            "16",
        ],
        "Hello Dave\n.\n..two dots\nend\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", postfix.log());
    assert!(
        out.lines()
            .any(|line| line.starts_with("S: 250") && line.ends_with("CHUNKING")),
        "{out}"
    );
    assert!(out.contains("C: BDAT 16\n"), "{out}");
    assert!(
        out.lines()
            .any(|line| line.starts_with("C: BDAT ") && line.ends_with(" LAST")),
        "{out}"
    );
    assert!(!out.contains("C: DATA"), "{out}");
    assert!(out.contains("<dave@postfix.test> accepted"), "{out}");
    let delivered = wait_for_maildir(&postfix.dir.join("mail/dave/new"), 1);
    let message = delivered[0].replace("\r\n", "\n");
    assert!(message.contains("Subject: in chunks\n"), "{message}");
    assert!(
        message.ends_with("\n\nHello Dave\n.\n..two dots\nend\n"),
        "{message}"
    );
}

/// `send --bdat` to smtp-lab serve, which offers CHUNKING: the chunks, the last with LAST,
/// deliver the message as it was written; to aiosmtpd, which does not, the same command
/// sends DATA (see `send_delivers_to_aiosmtpd`).
#[test]
fn send_with_bdat_delivers_to_serve_in_chunks() {
    let server = LabServer::start(&["--domain", "example.net", "--mailbox", "bob@example.net"]);
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{}", server.port),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.net",
            "--subject",
            "in chunks",
            "--bdat",
            "7",
        ],
        "Hello Bob\n.\n..two dots\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("C: BDAT 7\n"), "{out}");
    assert!(!out.contains("C: DATA"), "{out}");
    // A chunk that stops inside a line shows its last piece marked, and the next chunk its
    // first line as that line's rest, as the simulation does.
    assert!(out.contains("C (no CRLF): "), "{out}");
    assert!(out.contains("C (rest of line): "), "{out}");
    assert!(!out.contains("does not offer CHUNKING"), "{out}");
    // serve offers PIPELINING: the chunks go on without waiting for each reply (RFC 3030
    // 4.2), so some BDAT lines follow one another with no reply between.
    let lines: Vec<&str> = out.lines().collect();
    let next_bdat_before_a_reply = lines.iter().enumerate().any(|(at, line)| {
        line.starts_with("C: BDAT ")
            && lines[at + 1..]
                .iter()
                .find(|later| later.starts_with("C: BDAT ") || later.starts_with("S: "))
                .is_some_and(|later| later.starts_with("C: BDAT "))
    });
    assert!(next_bdat_before_a_reply, "{out}");
    let chunks = out
        .lines()
        .filter(|line| line.starts_with("C: BDAT "))
        .count();
    assert!(chunks > 10, "{out}");
    assert!(
        server.transcript_shows("S: 250 2.0.0 7 octets received"),
        "{}",
        server.transcript()
    );
    let delivered = server.wait_for_messages("bob", 1);
    assert!(
        delivered[0].ends_with("\r\n\r\nHello Bob\r\n.\r\n..two dots\r\n"),
        "{}",
        delivered[0]
    );
}

/// The delivery-status fields of a notice, one `Name: value` per line as written (RFC 3464
/// 2.1), without the line ends.
fn status_fields(notice: &str) -> Vec<String> {
    notice
        .lines()
        .map(|line| line.trim_end_matches('\r').to_string())
        .filter(|line| {
            [
                "Original-Envelope-Id:",
                "Final-Recipient:",
                "Original-Recipient:",
                "Action:",
                "Status:",
            ]
            .iter()
            .any(|name| line.starts_with(name))
        })
        .collect()
}

#[test]
fn send_asks_postfix_for_delivery_status_notifications() {
    let server = LabServer::start(&[
        "--domain",
        "relay.test",
        "--mailbox",
        "bob@relay.test",
        "--mailbox",
        "jürgen@relay.test",
    ]);
    let postfix = Postfix::start(server.port);
    // Dave asks to hear of success, with his own envelope id (sent as xtext, RFC 3461 4.4), the
    // header only (RET=HDRS) and the original recipients (Jürgen's, not ASCII, in RFC 6533's
    // utf-8 type): Postfix delivers to Carol itself and relays Bob's and Jürgen's copies to
    // `serve`, which does not offer DSN.
    let output = lab_send(
        &[
            "--server",
            &format!("127.0.0.1:{}", postfix.port),
            "--from",
            "dave@postfix.test",
            "--to",
            "carol@postfix.test",
            "--to",
            "bob@relay.test",
            "--to",
            "jürgen@relay.test",
            "--subject",
            "receipts please",
            "--notify",
            "success,failure",
            "--ret",
            "hdrs",
            "--envid",
            "order=42 +1",
            "--orcpt",
        ],
        "Hello Carol and Bob\n",
    );
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", postfix.log());
    assert!(
        out.lines().any(
            |line| line.starts_with("C: MAIL FROM:<dave@postfix.test> SIZE=")
                && line.ends_with(" RET=HDRS ENVID=order+3D42+20+2B1")
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "C: RCPT TO:<carol@postfix.test> NOTIFY=SUCCESS,FAILURE \
             ORCPT=rfc822;carol@postfix.test"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "C: RCPT TO:<jürgen@relay.test> NOTIFY=SUCCESS,FAILURE \
             ORCPT=utf-8;j\\x{FC}rgen@relay.test"
        ),
        "{out}"
    );
    assert!(out.contains("# the server offers DSN"), "{out}");
    server.wait_for_messages("bob", 1);
    // A local part that is not ASCII names its Maildir percent-encoded.
    server.wait_for_messages("j%C3%BCrgen", 1);

    // Postfix's notices to Dave: Carol's copy delivered, Bob's relayed to a server that could
    // not be asked for more (RFC 3461 6.2.1 and 6.2.2), each naming its envelope id and
    // original recipient, and returning the header without the body.
    let deadline = Instant::now() + WAIT;
    let notices = loop {
        let notices = wait_for_maildir(&postfix.dir.join("mail/dave/new"), 1);
        let fields: Vec<String> = notices.iter().flat_map(|n| status_fields(n)).collect();
        let reported = fields.iter().filter(|f| f.starts_with("Action:")).count();
        if reported >= 3 || Instant::now() > deadline {
            break notices;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let mut actions = Vec::new();
    for notice in &notices {
        assert!(notice.contains("report-type=delivery-status"), "{notice}");
        // The header only; a message with a UTF-8 address has it as message/global-headers
        // (RFC 6533 4).
        assert!(
            notice.contains("text/rfc822-headers") || notice.contains("message/global-headers"),
            "{notice}"
        );
        assert!(notice.contains("Subject: receipts please"), "{notice}");
        assert!(!notice.contains("Hello Carol and Bob"), "{notice}");
        let fields = status_fields(notice);
        assert!(
            fields.contains(&"Original-Envelope-Id: order=42 +1".to_string()),
            "{fields:?}\n{notice}"
        );
        let mut recipient = None;
        for field in fields {
            if let Some(original) = field.strip_prefix("Original-Recipient:") {
                recipient = Some(original.replace(' ', ""));
            } else if let Some(action) = field.strip_prefix("Action:") {
                let recipient = recipient.take().expect("Original-Recipient before Action");
                actions.push((recipient, action.trim().to_string()));
            }
        }
    }
    actions.sort();
    assert_eq!(
        actions,
        [
            ("rfc822;bob@relay.test".to_string(), "relayed".to_string()),
            (
                "rfc822;carol@postfix.test".to_string(),
                "delivered".to_string()
            ),
            // Postfix read the ORCPT's \x{FC} and, in the message/global-delivery-status a
            // message with SMTPUTF8 gets (RFC 6533 3), writes it as UTF-8.
            ("utf-8;jürgen@relay.test".to_string(), "relayed".to_string()),
        ],
        "{notices:?}"
    );
}
