//! Taurus `shellexec`: shell commands at the stages of a suite.
//!
//! `prepare` runs before the servers start, `startup` when the load starts, `check` every
//! `check-interval` while it runs (beside the dispatcher, so a slow check never delays it; one
//! round at a time), `shutdown` when it ends (with `TAURUS_EXIT_CODE` and
//! `TAURUS_STOPPING_REASON`), `post-process` after the servers stopped. Every command runs
//! under `/bin/sh -c` in the suite's artifacts directory (or its `cwd`), with
//! `TAURUS_ARTIFACTS_DIR` set, its output in `out`/`err` or `<suite>/shellexec.log`, and
//! under a [guard](super::guard): a command that starts a daemon (`multi-model-server
//! --start`) is finished when the command exits, while the daemon it started is still killed
//! when the suite ends (or perfgate dies) if nothing stopped it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::suite::model::{ShellCommand, ShellExec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Prepare,
    Startup,
    Check,
    Shutdown,
    PostProcess,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Startup => "startup",
            Self::Check => "check",
            Self::Shutdown => "shutdown",
            Self::PostProcess => "post-process",
        }
    }
}

/// A guard still running: a background command, or the daemon a command left behind.
#[derive(Debug)]
struct Running {
    child: tokio::process::Child,
    guarded: bool,
}

/// The shellexec commands of one suite and what they left running.
#[derive(Debug)]
pub struct Shell {
    config: ShellExec,
    dir: PathBuf,
    running: Vec<Running>,
    counter: usize,
    /// Tells status files of this shell from another's running at the same time.
    tag: String,
    /// Set after the load: `TAURUS_EXIT_CODE`, `TAURUS_STOPPING_REASON`.
    pub outcome_env: Vec<(String, String)>,
}

impl Shell {
    pub fn new(config: ShellExec, dir: &Path) -> Self {
        Self {
            config,
            // Absolute: commands (and their guards) run in it.
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
            running: Vec::new(),
            counter: 0,
            tag: "shellexec".to_owned(),
            outcome_env: Vec::new(),
        }
    }

    /// A shell of this one's `check` commands only, to run beside the dispatcher.
    pub fn checks(&self) -> Self {
        let config = ShellExec {
            check: self.config.check.clone(),
            ..ShellExec::default()
        };
        Self {
            config,
            dir: self.dir.clone(),
            running: Vec::new(),
            counter: 0,
            tag: "shellexec-check".to_owned(),
            outcome_env: Vec::new(),
        }
    }

    /// Runs the `check` commands every `every` until `stop` is set; the first failure ends
    /// it. A round still running when `stop` comes is killed: the load it checked is over.
    pub async fn check_until(
        mut self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.stage(Stage::Check).await {
                        break Err(e);
                    }
                }
                () = async { drop(stop.wait_for(|s| *s).await) } => break Ok(()),
            }
        };
        self.finish().await;
        result
    }

    /// Whether a stage has commands.
    pub fn has(&self, stage: Stage) -> bool {
        !self.commands(stage).is_empty()
    }

    fn commands(&self, stage: Stage) -> &[ShellCommand] {
        match stage {
            Stage::Prepare => &self.config.prepare,
            Stage::Startup => &self.config.startup,
            Stage::Check => &self.config.check,
            Stage::Shutdown => &self.config.shutdown,
            Stage::PostProcess => &self.config.post_process,
        }
    }

    /// Runs a stage's commands in order; the first failure (not ignored) is the error.
    pub async fn stage(&mut self, stage: Stage) -> Result<(), String> {
        let commands = self.commands(stage).to_vec();
        for c in &commands {
            if let Err(why) = self.run(c).await
                && !c.ignore_failure
            {
                return Err(format!(
                    "shellexec {} command `{}` {why}",
                    stage.name(),
                    c.command
                ));
            }
        }
        Ok(())
    }

    /// A shell for a server's own `prepare` and `post-process` hooks: they run under the guard
    /// like every command, so what they start in the background goes when the suite ends (or
    /// perfgate dies), and their output goes to the server's log.
    pub fn for_server(label: &str, dir: &Path) -> Self {
        let mut shell = Self::new(ShellExec::default(), dir);
        shell.tag = format!(
            "server-{}",
            label.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        shell
    }

    /// Runs one command (not a stage), waiting for it unless it is `background`.
    pub async fn run_one(&mut self, c: &ShellCommand) -> Result<(), String> {
        self.run(c).await
    }

    async fn run(&mut self, c: &ShellCommand) -> Result<(), String> {
        self.counter += 1;
        let status_file = self
            .dir
            .join(format!(".{}-{}.status", self.tag, self.counter));
        let _ = std::fs::remove_file(&status_file);
        let argv = ["/bin/sh".to_owned(), "-c".to_owned(), c.command.clone()];
        let (mut command, guarded) = super::guarded_command(&argv, true, Some(&status_file));
        let open = |name: Option<&String>| -> std::io::Result<std::fs::File> {
            let path = match name {
                Some(n) => self.dir.join(n),
                None => self.dir.join("shellexec.log"),
            };
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        };
        let out = open(c.out.as_ref()).map_err(|e| format!("cannot open its output: {e}"))?;
        let err = open(c.err.as_ref()).map_err(|e| format!("cannot open its output: {e}"))?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(c.cwd.as_deref().unwrap_or(&self.dir))
            .env("TAURUS_ARTIFACTS_DIR", &self.dir)
            .envs(self.outcome_env.iter().map(|(k, v)| (k, v)))
            .envs(c.env.iter().map(|(k, v)| (k, v)));
        let child = command
            .spawn()
            .map_err(|e| format!("could not start: {e}"))?;
        // Kept in `running` from the start: if this future is dropped midway, the shell's
        // `Drop` still kills the command.
        self.running.push(Running { child, guarded });
        if c.background {
            return Ok(());
        }
        let index = self.running.len() - 1;
        // Finished when the command exits, even if a daemon it started lives on.
        let code = loop {
            if let Ok(text) = std::fs::read_to_string(&status_file) {
                break text.trim().parse::<i32>().unwrap_or(1);
            }
            if let Ok(Some(status)) = self.running[index].child.try_wait() {
                if let Ok(text) = std::fs::read_to_string(&status_file) {
                    break text.trim().parse::<i32>().unwrap_or(1);
                }
                break status.code().unwrap_or(1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let _ = std::fs::remove_file(&status_file);
        // What a command left running (a daemon) stays; the guard of one that is done goes.
        if !matches!(self.running[index].child.try_wait(), Ok(None)) {
            self.running.remove(index);
        }
        if code == 0 {
            Ok(())
        } else {
            Err(format!("exited with status {code}"))
        }
    }

    /// Kills whatever the commands left running (background commands, daemons nothing
    /// stopped), as Taurus does at the end of a suite.
    pub async fn finish(&mut self) {
        for r in &mut self.running {
            super::guard::kill_all(&mut r.child, r.guarded);
            let _ = tokio::time::timeout(Duration::from_secs(5), r.child.wait()).await;
        }
        self.running.clear();
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        for r in &mut self.running {
            super::guard::kill_all(&mut r.child, r.guarded);
        }
    }
}
