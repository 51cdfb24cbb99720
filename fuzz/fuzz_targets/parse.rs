//! Every parser (the first byte picks save, script, listing or detection): no panic, errors render, print → parse is stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kptrace::harness::parse(data);
});
