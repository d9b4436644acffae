//! Writes the seeds into `<dir>/<target>/seed-<name>` (the corpus
//! directory, `fuzz/corpus`, by default): `cargo xtask fuzz` runs this
//! before each run, so a new seed reaches the fuzzer and the committed
//! corpus at once.

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(|| std::path::PathBuf::from("fuzz/corpus"), std::path::PathBuf::from);
    let seeds = paved_fuzzing::seeds::seeds();
    for (target, name, bytes) in &seeds {
        let at = dir.join(target);
        std::fs::create_dir_all(&at)?;
        std::fs::write(at.join(name), bytes)?;
    }
    println!("{} seeds written under {}", seeds.len(), dir.display());
    Ok(())
}
