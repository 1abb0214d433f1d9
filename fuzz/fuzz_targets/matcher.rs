//! libFuzzer entry for `switchyard::fuzzing::matcher` (see fuzz/README.md).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::matcher(data));
