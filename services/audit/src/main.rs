fn main() -> std::process::ExitCode {
    paved_service::main("audit", paved_audit::DEFAULTS, paved_audit::run)
}
