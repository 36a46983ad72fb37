//! Managed server processes: spawn, process group, readiness, logs, stop.
//!
//! [`ManagedServer::spawn`] runs a `server` service in its own process group with its output
//! in `<artifacts>/<label>.log`; [`ManagedServer::wait_ready`] waits until it is ready (TCP,
//! then HTTP status, then a log line). [`ManagedServer::stop`] sends the configured signal to the whole group, waits
//! the grace period, then SIGKILLs the group. Dropping a server kills its group, so an
//! error path never leaves one behind.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::suite::model::{Launch, Server};

/// Lines of log shown with a server failure.
pub const LOG_TAIL_LINES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to start server `{label}`: {source}")]
    Spawn {
        label: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server `{label}` exited with {status} before it was ready")]
    ExitedEarly {
        label: String,
        status: ExitStatus,
        log_tail: String,
    },
    #[error("server `{label}` was not ready after {}s ({waiting})", timeout.as_secs_f64())]
    NotReady {
        label: String,
        timeout: Duration,
        waiting: String,
        log_tail: String,
    },
}

impl ServerError {
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            Self::ExitedEarly { log_tail, .. } | Self::NotReady { log_tail, .. } => Some(log_tail),
            Self::Spawn { .. } => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => {
                "check that the first word of `command` is a program on PATH or a path to an executable"
            }
            Self::ExitedEarly { .. } => {
                "the server must stay in the foreground until stopped; fix what its log says, or check `command`"
            }
            Self::NotReady { .. } => {
                "if the server is only slow to start, raise `ready.timeout`; otherwise fix what its log says, or check `ready` against the address it listens on"
            }
        }
    }
}

/// A running server under test.
#[derive(Debug)]
pub struct ManagedServer {
    pub label: String,
    child: tokio::process::Child,
    group: Pid,
    pub log: PathBuf,
    config: Server,
}

impl ManagedServer {
    /// Starts `server` without waiting for it to be ready.
    pub fn spawn(server: &Server, artifacts: &Path) -> Result<Self, ServerError> {
        let label = server.label.clone();
        let spawn_err = |source| ServerError::Spawn {
            label: label.clone(),
            source,
        };
        std::fs::create_dir_all(artifacts).map_err(spawn_err)?;
        let log = artifacts.join(format!("{label}.log"));
        let out = std::fs::File::create(&log).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let mut command = match &server.launch {
            Launch::Argv(argv) => {
                let mut c = tokio::process::Command::new(argv.first().map_or("", String::as_str));
                c.args(argv.iter().skip(1));
                c
            }
            Launch::Shell(line) => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(line);
                c
            }
        };
        if let Some(cwd) = &server.cwd {
            command.current_dir(cwd);
        }
        command.envs(server.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command.spawn().map_err(spawn_err)?;
        let group = Pid::from_raw(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .unwrap_or(0),
        );
        Ok(Self {
            label,
            child,
            group,
            log,
            config: server.clone(),
        })
    }

    /// Waits until the server is ready (TCP, then HTTP status, then log line), or fails with
    /// its log tail when it exits first or the timeout passes.
    pub async fn wait_ready(&mut self) -> Result<(), ServerError> {
        let ready = self.config.ready.clone();
        let deadline = Instant::now() + ready.timeout;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(ready.interval.max(Duration::from_secs(1)))
            .build()
            .ok();
        let log_re = ready.log.as_deref().and_then(|l| regex::Regex::new(l).ok());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ServerError::ExitedEarly {
                    label: self.label.clone(),
                    status,
                    log_tail: self.log_tail(),
                });
            }
            let waiting = self
                .not_ready_yet(&ready, client.as_ref(), log_re.as_ref())
                .await;
            let Some(waiting) = waiting else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(ServerError::NotReady {
                    label: self.label.clone(),
                    timeout: ready.timeout,
                    waiting,
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(ready.interval).await;
        }
    }

    /// What readiness is still waiting for, or `None` when ready.
    async fn not_ready_yet(
        &self,
        ready: &crate::suite::model::Ready,
        client: Option<&reqwest::Client>,
        log_re: Option<&regex::Regex>,
    ) -> Option<String> {
        if let Some(addr) = &ready.tcp
            && tokio::net::TcpStream::connect(addr.as_str()).await.is_err()
        {
            return Some(format!("no TCP connection to {addr}"));
        }
        if let (Some(url), Some(client)) = (&ready.http, client) {
            match client.get(url).send().await {
                Ok(r) if r.status().as_u16() == ready.status => {}
                Ok(r) => {
                    return Some(format!(
                        "{url} answered {}, not {}",
                        r.status().as_u16(),
                        ready.status
                    ));
                }
                Err(_) => return Some(format!("no HTTP answer from {url}")),
            }
        }
        if let Some(re) = log_re {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if !log.lines().any(|l| re.is_match(l)) {
                return Some(format!("no log line matching `{}`", re.as_str()));
            }
        }
        None
    }

    /// The last lines the server wrote.
    pub fn log_tail(&self) -> String {
        tail(&self.log, LOG_TAIL_LINES)
    }

    /// Waits until the server process exits (for the dispatcher).
    pub async fn exited(&mut self) -> Option<ExitStatus> {
        self.child.wait().await.ok()
    }

    /// Signal → grace → SIGKILL to the whole process group, or the stop command.
    pub async fn stop(&mut self) {
        let stop = self.config.stop.clone();
        if let Some(command) = &stop.command {
            let _ = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .status()
                .await;
        } else {
            let signal = stop.signal.parse::<Signal>().unwrap_or(Signal::SIGTERM);
            let _ = killpg(self.group, signal);
        }
        if tokio::time::timeout(stop.grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(self.group, Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        // Workers may outlive the leader; the group goes entirely.
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        // Last resort on error paths and panics: no server outlives perfgate's handle on it.
        if self.group.as_raw() > 0 {
            let _ = killpg(self.group, Signal::SIGKILL);
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
