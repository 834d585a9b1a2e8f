/// mimalloc rather than the system allocator: a request allocates and frees a
/// few hundred small blocks across threads, which glibc's malloc spends about a
/// tenth of the process's CPU on (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    anno::cli::main()
}
