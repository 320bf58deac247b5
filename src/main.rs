use clap::Parser;

fn main() {
    let cli = weightflow::cli::Cli::parse();
    if let Err(e) = weightflow::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
