//! Fuzz target: `otel_agent::fuzzing::go_binary` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otel_agent::fuzzing::go_binary(data);
});
