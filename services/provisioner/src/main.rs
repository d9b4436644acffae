fn main() -> std::process::ExitCode {
    paved_service::main("provisioner", paved_provisioner::PORT, paved_provisioner::run)
}
