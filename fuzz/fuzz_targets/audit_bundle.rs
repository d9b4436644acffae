#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = paved_fuzzing::target("audit_bundle").expect("a target of libs/fuzzing");
    target(data);
});
