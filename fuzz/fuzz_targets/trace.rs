//! Parse, then trace packets through every hook and every Service's probes: no panic, shares add up to 1.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kptrace::harness::trace(data);
});
