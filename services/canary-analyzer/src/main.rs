fn main() -> std::process::ExitCode {
    paved_service::main("canary-analyzer", paved_canary_analyzer::DEFAULTS, paved_canary_analyzer::run)
}
