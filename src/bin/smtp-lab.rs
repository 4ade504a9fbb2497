//! The native `smtp-lab` command (serve, send, ...). A thin shell over `smtp_lab::native`.

/// The simulation allocates many small, short-lived buffers; mimalloc serves them faster than
/// the system allocator (S10k about a sixth faster).
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: smtp_lab::native::alloc::Mimalloc = smtp_lab::native::alloc::Mimalloc;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    smtp_lab::native::cli::main()
}

// The command line needs sockets and files; on wasm this binary is an empty shell so that
// `cargo build --target wasm32-unknown-unknown` builds every target.
#[cfg(target_arch = "wasm32")]
fn main() {}
