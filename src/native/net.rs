//! Reading from a socket for a sans-I/O session: wait no longer than the session's next
//! deadline, and say what happened in the session's terms.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

/// How long to wait when a session has no deadline of its own.
const WAIT_WITHOUT_DEADLINE_MS: u64 = 60_000;

/// What one read brought.
pub enum Readout {
    /// This many bytes are at the start of the buffer.
    Bytes(usize),
    /// The peer closed the connection, or it broke.
    Closed,
    /// Nothing came before the deadline: time for the session's `handle_timeout`.
    TimedOut,
    /// A signal interrupted the read; just try again.
    Interrupted,
}

/// Reads once, waiting until `deadline_ms` at the latest (both in the session's clock, where
/// it is now `now_ms`).
pub fn read_until(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    deadline_ms: Option<u64>,
    now_ms: u64,
) -> Readout {
    let wait_ms = deadline_ms
        .map(|deadline| deadline.saturating_sub(now_ms).max(1))
        .unwrap_or(WAIT_WITHOUT_DEADLINE_MS);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(wait_ms)));
    match stream.read(buffer) {
        Ok(0) => Readout::Closed,
        Ok(read) => Readout::Bytes(read),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Readout::TimedOut
        }
        Err(error) if error.kind() == io::ErrorKind::Interrupted => Readout::Interrupted,
        Err(_) => Readout::Closed,
    }
}
