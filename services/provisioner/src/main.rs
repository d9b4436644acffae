fn main() -> std::process::ExitCode {
    paved_service::main("provisioner", paved_provisioner::DEFAULTS, paved_provisioner::run)
}
