fn main() -> std::process::ExitCode {
    paved_service::main("secrets-broker", paved_secrets_broker::DEFAULTS, paved_secrets_broker::run)
}
