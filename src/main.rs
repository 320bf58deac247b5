use clap::Parser;

fn main() {
    let cli = weightflow::cli::Cli::parse();
    if let Err(e) = weightflow::cli::run(cli) {
        if let Some(code) = e.downcast_ref::<weightflow::cli::detector::ExitCode>() {
            std::process::exit(code.0);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
