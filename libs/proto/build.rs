//! Compiles `proto/` with protox (pure Rust, so no system `protoc` is needed) and
//! writes the file descriptor set that the reflection service serves.

use prost::Message;
use std::{env, fs, io, path::PathBuf};

fn main() -> io::Result<()> {
    // Read when the script runs, not baked in when it is compiled: cargo
    // reuses a compiled build script across checkouts that share a target
    // directory (CI's fresh clones do), and a baked-in path may be gone.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?;
    let root = PathBuf::from(manifest_dir).join("../../proto");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());

    let fds = protox::compile(&files, [&root]).map_err(|e| io::Error::other(e.to_string()))?;
    let out = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);
    fs::write(out.join("paved_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)
}

fn collect(dir: &PathBuf, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    Ok(())
}
