//! Every input the fuzzers kept (`fuzz/corpus/<target>/`) and every crash
//! they found (`fuzz/regressions/<target>/`), run through the targets on
//! the stable toolchain: the corpus is the fuzzers' memory, and this test
//! keeps all of it passing. The seeds themselves are checked to get past
//! each parser's first check, or the fuzzer would start at the door.

use paved_fuzzing::{TARGETS, seeds::seeds};
use std::{panic, path::Path};

fn fuzz_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_passes() {
    let mut failed = Vec::new();
    let mut total = 0;
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is empty or missing: run `cargo xtask fuzz {name}` and commit what it keeps");
        for path in corpus.iter().chain(&inputs(&fuzz_dir().join("regressions").join(name))) {
            let Ok(data) = std::fs::read(path) else { panic!("read {}", path.display()) };
            total += 1;
            if panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "{} of {total} inputs fail: {failed:#?}", failed.len());
    eprintln!("{total} inputs replayed through {} targets", TARGETS.len());
}

#[test]
fn every_seed_passes_and_every_target_has_seeds() {
    let all = seeds();
    for (name, target) in TARGETS {
        let mine: Vec<_> = all.iter().filter(|(t, _, _)| t == name).collect();
        assert!(!mine.is_empty(), "no seed for {name}");
        for (_, file, data) in mine {
            assert!(panic::catch_unwind(|| target(data)).is_ok(), "seed {name}/{file} fails its own target");
        }
    }
}

fn seed(target: &str, file: &str) -> Vec<u8> {
    match seeds().into_iter().find(|(t, f, _)| *t == target && f == file) {
        Some((_, _, data)) => data,
        None => panic!("no seed {target}/{file}"),
    }
}

#[test]
fn the_seeds_get_past_the_first_check() {
    for (target, file) in [("spec", "seed-hello"), ("spec", "seed-full"), ("spec", "seed-audit"), ("score", "seed-hello-score")] {
        let text = String::from_utf8(seed(target, file)).expect("utf-8");
        paved_spec::parse(&text, "paved.yaml").unwrap_or_else(|e| panic!("{target}/{file}: {e}"));
    }
    for file in ["seed-hello-prod", "seed-score-qa", "seed-schedule"] {
        let text = String::from_utf8(seed("overlay", file)).expect("utf-8");
        let (base, overlay) = text.split_once('\0').expect("two parts");
        paved_spec::render(base, "paved.yaml", Some((overlay, "paved.prod.yaml"))).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let token = String::from_utf8(seed("token", "seed-valid")).expect("utf-8");
    let issuer = paved_token::Issuer::from_seed(&[9; 32]);
    let mut keys = paved_token::KeySet::default();
    keys.insert(&issuer.kid, issuer.public());
    keys.verify(&token, &["paved.secrets_broker"], 1_800_000_000, |_| false).expect("the token seed verifies");
    let key = paved_fuzzing::seeds::verifier_key();
    paved_audit::log::verify::checkpoint(&seed("checkpoint", "seed-checkpoint"), &key).expect("the checkpoint seed verifies");
    let bundle = serde_json::from_slice(&seed("audit_bundle", "seed-bundle")).expect("a bundle");
    let entries = paved_audit::log::bundle::verify(&bundle, &key).expect("the bundle seed verifies");
    assert_eq!(entries.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 2, 4]);
    let fields = String::from_utf8(seed("attestation", "seed-sbom")).expect("utf-8");
    let f: Vec<&str> = fields.split('\0').collect();
    paved_attest::verify(f[4], f[0], f[1], f[2].as_bytes(), f[3]).expect("the attestation seed verifies");
}

/// The targets are named in three places: `TARGETS`, a file per target in
/// `fuzz/fuzz_targets/`, and a `[[bin]]` per target in `fuzz/Cargo.toml`.
#[test]
fn every_target_is_a_fuzz_binary() {
    let mut files: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".rs").map(str::to_string))
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(files, names, "fuzz/fuzz_targets/ and TARGETS differ");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &names {
        assert!(
            manifest.contains(&format!("name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"")),
            "no [[bin]] {name} in fuzz/Cargo.toml"
        );
        let body = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).expect("target");
        assert!(body.contains(&format!("target(\"{name}\")")), "fuzz_targets/{name}.rs runs another target");
    }
}
