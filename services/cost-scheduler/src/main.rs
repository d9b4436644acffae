fn main() -> std::process::ExitCode {
    paved_service::main("cost-scheduler", paved_cost_scheduler::DEFAULTS, paved_cost_scheduler::run)
}
