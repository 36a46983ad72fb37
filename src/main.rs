use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = perfgate::cli::Cli::parse();
    perfgate::cli::run(cli).into()
}
