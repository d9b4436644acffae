#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see `paved`'s main.rs

fn main() -> std::process::ExitCode {
    paved_service::main_consumer::<paved_cost_scheduler::CostScheduler>()
}
