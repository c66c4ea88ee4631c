//! The `fjord` binary with the built-in example jobs.

fn main() -> std::process::ExitCode {
    fjord_worker::main_with(fjord_examples::registry())
}
