//! Standard output for the commands whose output is their result (`run`, `scenarios`,
//! `send`'s transcript).

use std::io::{self, Write};

/// Standard output that keeps its first write error, so that a command whose output was lost
/// (a full disk under `> trace.json`) says so instead of ending as if it had been written. A
/// closed pipe (`| head -1`) is no error: the reader wanted no more.
pub struct CheckedStdout {
    out: io::StdoutLock<'static>,
    error: Option<io::Error>,
}

impl CheckedStdout {
    pub fn lock() -> CheckedStdout {
        CheckedStdout {
            out: io::stdout().lock(),
            error: None,
        }
    }

    fn keep(&mut self, error: io::Error) -> io::Error {
        // An interrupted write is tried again (write_all does), so it loses nothing.
        let lost = !matches!(
            error.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::Interrupted
        );
        if self.error.is_none() && lost {
            self.error = Some(io::Error::new(error.kind(), error.to_string()));
        }
        error
    }

    /// Flushes what is buffered; the first error of the whole output, if there was one.
    pub fn finish(mut self) -> Option<io::Error> {
        if let Err(error) = self.out.flush() {
            self.keep(error);
        }
        self.error
    }
}

impl Write for CheckedStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).map_err(|error| self.keep(error))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf).map_err(|error| self.keep(error))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|error| self.keep(error))
    }
}
