#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see `paved`'s main.rs

fn main() -> std::process::ExitCode {
    paved_service::main("provisioner", paved_provisioner::PORT, paved_provisioner::run)
}
