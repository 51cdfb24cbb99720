//! Parse, lint with every rule, render human/JSON/SARIF and the whole-rule-set graph: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kptrace::harness::lint(data);
});
