//! The progress line of a suite's load.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::metrics::Store;

/// A progress line per suite: a live bar on a terminal (indicatif), a plain line every 10 s
/// otherwise (CI logs).
pub(super) struct Progress {
    enabled: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub(super) fn new(enabled: bool, suite: &str, total: Option<Duration>) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    indicatif::ProgressBar::new(t.as_secs()),
                    "{prefix} [{bar:24}] {pos}/{len}s  {msg}",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{prefix} {spinner} {elapsed}  {msg}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(suite.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { enabled, bar }
    }

    pub(super) fn line(
        &self,
        console: &mut dyn Write,
        suite: &str,
        elapsed: Duration,
        store: &Store,
        criteria: Option<String>,
    ) {
        let secs = elapsed.as_secs();
        if !self.enabled || (self.bar.is_none() && !secs.is_multiple_of(10)) {
            return;
        }
        let last = store.window("", secs.saturating_sub(2), secs.saturating_sub(1));
        let all = store.cumulative("");
        let p99 = all.percentile(99.0).map_or("-".to_owned(), |d| {
            format!("{:.1}ms", d.as_secs_f64() * 1000.0)
        });
        let mut status = format!(
            "{} req/s  p99 {p99}  errors {}  dropped {}",
            last.served(),
            all.fail(),
            all.dropped()
        );
        if let Some(c) = criteria {
            status.push_str("  ");
            status.push_str(&c);
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(secs);
                bar.set_message(status);
            }
            None => {
                let _ = writeln!(console, "{suite}: {secs}s  {status}");
                let _ = console.flush();
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
