fn main() -> std::process::ExitCode {
    anno::cli::main()
}
