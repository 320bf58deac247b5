use clap::Parser;

fn main() {
    // Output into a closed pipe (`weightflow data download --list | head -1`) ends the process
    // quietly, as for other command-line tools, instead of a panic in `println!`.
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = weightflow::cli::Cli::parse();
    if let Err(e) = weightflow::cli::run(cli) {
        if let Some(code) = e.downcast_ref::<weightflow::cli::detector::ExitCode>() {
            std::process::exit(code.0);
        }
        eprintln!("error: {e:#}");
        let usage = e.downcast_ref::<weightflow::cli::UsageError>().is_some();
        std::process::exit(if usage { 2 } else { 1 });
    }
}
