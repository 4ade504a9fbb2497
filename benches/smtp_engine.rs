//! Criterion benchmarks of the SMTP engine.
fn main() {}
