//! Fuzz target: `protocols::fuzzing::http1_with_gaps` (a script of pushes and gaps
//! with their causes on both sides) must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocols::fuzzing::http1_with_gaps(data);
});
