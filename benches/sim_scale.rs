//! S10k: the simulation at scale (10,000 messages, 1,000 recipients, 50 domains, 10%
//! temporary and 1% permanent failures, fixed seed). Prints the native run time, the trace's
//! size, the peak heap memory of the run and how often it called the allocator, measured by a
//! counting allocator. Figures only.

use smtp_lab::sim::scale::s10k;
use smtp_lab::sim::{run, Fate, RunResult};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

/// The native binary's allocator (mimalloc), counting, while `MEASURING`, the bytes in use,
/// their peak and the calls that allocate or reallocate.
struct Counting;

/// Bytes allocated less bytes freed since the measured run began. Signed: the run may free
/// memory that was allocated before it.
static IN_USE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Off for the timed runs, which then use the allocator exactly as the native binary does:
/// an atomic add per call (and the peak's compare-and-swap loop) would add its own cost to
/// every allocation the times include.
static MEASURING: AtomicBool = AtomicBool::new(false);

fn measuring() -> bool {
    MEASURING.load(Ordering::Relaxed)
}

fn count_allocation(octets: usize) {
    let now = IN_USE.fetch_add(octets as isize, Ordering::Relaxed) + octets as isize;
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn count_free(octets: usize) {
    IN_USE.fetch_sub(octets as isize, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the native allocator.
        let pointer = unsafe { smtp_lab::native::alloc::Mimalloc.alloc(layout) };
        if !pointer.is_null() && measuring() {
            count_allocation(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the native allocator.
        let pointer = unsafe { smtp_lab::native::alloc::Mimalloc.alloc_zeroed(layout) };
        if !pointer.is_null() && measuring() {
            count_allocation(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the native allocator.
        unsafe { smtp_lab::native::alloc::Mimalloc.dealloc(pointer, layout) };
        if measuring() {
            count_free(layout.size());
        }
    }
    // Forwarded too, so that a growing vector is resized in place when it can be, as it is
    // without this allocator, rather than copied every time.
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the native allocator.
        let moved = unsafe { smtp_lab::native::alloc::Mimalloc.realloc(pointer, layout, new_size) };
        if !moved.is_null() && measuring() {
            count_free(layout.size());
            count_allocation(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let scenario = s10k();
    let mut times_ms = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let result = run(&scenario, scenario.seed);
        times_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(result);
    }
    // Memory: one more run, measured from a clean start; the result (the trace) is kept.
    MEASURING.store(true, Ordering::Relaxed);
    let result = run(&scenario, scenario.seed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    let kept = IN_USE.load(Ordering::Relaxed);
    assert!(
        result.conservation_problems.is_empty(),
        "{:?}",
        result.conservation_problems
    );
    let count = |word: &str| {
        result
            .outcomes
            .iter()
            .filter(|(_, _, f)| f.word() == word)
            .count()
    };
    let json_bytes = serde_json::to_vec(&result.trace)
        .expect("a trace serialises")
        .len();
    // The first run also pays for the memory the process takes from the system, as a single
    // `smtp-lab run` does.
    let first_ms = times_ms[0];
    times_ms.sort_by(f64::total_cmp);
    println!(
        "summary: S10k native run: {:.0} ms (best of 3; {:.0} ms median; first run {:.0} ms)",
        times_ms[0], times_ms[1], first_ms
    );
    // What the trace alone holds: the run's result without the mailboxes and the outcome
    // list (each message stored stays, in its delivery's event).
    let outcome_counts = (
        count("delivered"),
        count("bounced"),
        count("still queued"),
        result
            .outcomes
            .iter()
            .filter(|(_, _, f)| {
                !matches!(
                    f,
                    Fate::Delivered { .. } | Fate::Bounced { .. } | Fate::Queued { .. }
                )
            })
            .count(),
    );
    let RunResult {
        trace,
        outcomes,
        mailboxes,
        ..
    } = result;
    drop((outcomes, mailboxes));
    let trace_bytes = IN_USE.load(Ordering::Relaxed);
    println!(
        "summary: S10k trace: {} events, {:.1} MB in memory ({:.1} MB with the mailboxes and \
         outcomes; {:.1} MB as JSON); peak heap during the run: {:.1} MB",
        trace.events.len(),
        trace_bytes as f64 / 1e6,
        kept as f64 / 1e6,
        json_bytes as f64 / 1e6,
        peak as f64 / 1e6
    );
    let (delivered, bounced, queued, other) = outcome_counts;
    println!(
        "summary: S10k outcome: {delivered} delivered, {bounced} bounced, {queued} still queued, \
         {other} other"
    );
    println!(
        "summary: S10k heap allocations and reallocations: {allocations} in one run ({:.1} per \
         event)",
        allocations as f64 / trace.events.len() as f64
    );
}
