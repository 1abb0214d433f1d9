//! libFuzzer entry for `switchyard::fuzzing::framing` (see fuzz/README.md).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::framing(data));
