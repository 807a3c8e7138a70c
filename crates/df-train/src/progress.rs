//! The progress display: a bar with live loss, accuracy and ETA on a terminal, one line
//! per epoch otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::callbacks::Logs;

/// How much the trainer prints (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// A progress bar when stderr is a terminal, one summary line per epoch otherwise
    /// (logs of CI and batch jobs).
    #[default]
    Auto,
    /// The same as [`Verbosity::Auto`] (kept for configurations that name it).
    EpochLines,
    /// Nothing.
    Quiet,
}

/// (progress bar, one line per epoch) for a verbosity, whether this is the main process,
/// and whether stderr is a terminal.
fn display(verbosity: Verbosity, main_process: bool, tty: bool) -> (bool, bool) {
    match (verbosity, main_process, tty) {
        (_, false, _) | (Verbosity::Quiet, _, _) => (false, false),
        (_, true, true) => (true, false),
        (Verbosity::Auto | Verbosity::EpochLines, true, false) => (false, true),
    }
}

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    pub(crate) fn new(verbosity: Verbosity, main_process: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let (bar, lines) = display(verbosity, main_process, tty);
        let bar = bar.then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:28}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            pb.set_style(style);
            pb
        });
        Self { bar, lines }
    }

    pub(crate) fn start_epoch(&self, epoch: usize, epochs: usize, batches: usize) {
        if let Some(pb) = &self.bar {
            pb.reset();
            pb.set_length(batches as u64);
            pb.set_position(0);
            pb.set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
            pb.set_message("");
        }
    }

    pub(crate) fn batch(&self, loss: f64, accuracy: f64) {
        self.batches(1, loss, accuracy);
    }

    /// `n` batches done, with the running loss and accuracy.
    pub(crate) fn batches(&self, n: usize, loss: f64, accuracy: f64) {
        if let Some(pb) = &self.bar {
            pb.set_message(format!("loss {loss:.4} acc {accuracy:.4}"));
            pb.inc(n as u64);
        }
    }

    pub(crate) fn end_epoch(&self, epoch: usize, epochs: usize, logs: &Logs, seconds: f64) {
        if self.bar.is_none() && !self.lines {
            return;
        }
        let mut line = format!("epoch {}/{} ({seconds:.1}s)", epoch + 1, epochs);
        for (k, v) in logs {
            if k == "learning_rate" {
                line.push_str(&format!(" {k} {v:.3e}"));
            } else {
                line.push_str(&format!(" {k} {v:.4}"));
            }
        }
        match &self.bar {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue: `Verbosity::Auto` printed nothing when stderr is not a terminal, so logs of
    /// CI and batch jobs had no epoch lines.
    #[test]
    fn auto_prints_epoch_lines_when_stderr_is_not_a_terminal() {
        assert_eq!(display(Verbosity::Auto, true, false), (false, true));
        assert_eq!(display(Verbosity::Auto, true, true), (true, false));
        assert_eq!(display(Verbosity::EpochLines, true, false), (false, true));
        assert_eq!(display(Verbosity::Quiet, true, false), (false, false));
        assert_eq!(
            display(Verbosity::Auto, false, false),
            (false, false),
            "other ranks"
        );
    }
}
