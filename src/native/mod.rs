//! The native command line: the same engines on real TCP sockets, files and the terminal;
//! and the native programs' allocator. Not built for wasm.

pub mod alloc;
pub mod cli;
pub mod fetch;
pub mod maildir;
pub mod net;
pub mod output;
pub mod run;
pub mod send;
pub mod serve;
pub mod transcript;
