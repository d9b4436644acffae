#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = paved_fuzzing::target("score").expect("a target of libs/fuzzing");
    target(data);
});
