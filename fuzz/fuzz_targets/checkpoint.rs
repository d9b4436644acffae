#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = paved_fuzzing::target("checkpoint").expect("a target of libs/fuzzing");
    target(data);
});
