//! Compiles the host's own API (`proto/`, internal: not the SDKs' `proto/`
//! at the workspace root) with protox, as `paved-proto` does the public one.

use std::{env, io, path::PathBuf};

fn main() -> io::Result<()> {
    // Read when the script runs, not baked in when it is compiled (see
    // paved-proto's build script).
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?).join("proto");
    let file = root.join("paved/runtime/v1/runtime.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&root]).map_err(|e| io::Error::other(e.to_string()))?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)
}
