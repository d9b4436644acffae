fn main() -> std::process::ExitCode {
    paved_service::main_consumer::<paved_secrets_broker::SecretsBroker>()
}
