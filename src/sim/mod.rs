//! The simulated mail world: scenarios, a deterministic event-driven run of user agents,
//! mail servers, DNS, the MDA and POP3 with the real protocol engines, and the trace it
//! records. No wall clock, no sockets: time is simulated and one seeded generator is the only
//! randomness.

pub mod carried;
pub mod draft;
pub mod library;
pub mod link;
pub mod map;
pub mod notes;
pub mod preparing;
pub mod rng;
pub mod run_text;
pub mod scale;
pub mod scenario;
pub mod steps;
pub mod trace;
pub mod view;
pub mod world;

pub use scenario::{Scenario, ScenarioError, ScenarioErrors};
pub use trace::{Event, Fate, Trace, TraceEvent};
pub use world::{run, RunResult};
