//! Progress bars (indicatif) for long work, hidden under `--quiet`: a bar with position, rate and
//! ETA for known lengths, a spinner otherwise. They draw to stderr, so `--json` output stays clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` steps labelled `message`; hidden when `quiet`.
pub fn progress_bar(len: u64, message: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>12} [{bar:32.cyan/blue}] {pos}/{len} {elapsed_precise} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

/// A spinner for work of unknown length; hidden when `quiet`.
pub fn spinner(message: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}") {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_bars_are_hidden_and_count() {
        let b = progress_bar(10, "train", true);
        assert!(b.is_hidden());
        b.inc(3);
        assert_eq!(b.position(), 3);
        assert_eq!(b.length(), Some(10));
        b.finish_and_clear();
        let s = spinner("wait", true);
        assert!(s.is_hidden());
        let v = progress_bar(5, "x", false);
        assert_eq!(v.length(), Some(5));
        v.finish_and_clear();
    }
}
