use clap::Parser;

fn main() -> std::process::ExitCode {
    // perfgate re-runs itself as the guard of each server it starts (see server::guard).
    if let Some(code) = perfgate::server::guard::from_args(std::env::args().skip(1)) {
        return code.into();
    }
    let cli = perfgate::cli::Cli::parse();
    perfgate::cli::run(cli).into()
}
