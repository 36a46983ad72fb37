//! Managed server processes: spawn, process group, readiness, logs, stop.
//!
//! [`ManagedServer::spawn`] runs a `server` service under a [`guard`] process in its own
//! process group with its output in `<artifacts>/<label>.log`; the guard kills everything the
//! server started if perfgate dies. [`ManagedServer::wait_ready`] waits until it is ready
//! (TCP, then HTTP status, then a log line, and the pid file or matching process of a daemon).
//! [`ManagedServer::prepare`] runs the `prepare` commands. [`ManagedServer::stop`] runs the
//! stop command or sends the configured signal to the server, waits the grace period, then
//! has the guard SIGKILL every process the server started, and waits until its port is free.
//! Dropping a server kills all of it, so an error path never leaves one behind.

pub mod guard;
pub mod shellexec;

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
    #[error("server `{label}`: `prepare` command `{command}` failed with {status}")]
    Prepare {
        label: String,
        command: String,
        status: String,
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
            Self::ExitedEarly { log_tail, .. }
            | Self::NotReady { log_tail, .. }
            | Self::Prepare { log_tail, .. } => Some(log_tail),
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
            Self::Prepare { .. } => {
                "the command's output is in the server's log; fix the command or what it calls"
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
    /// The guard's pid, when the server runs under one.
    guard: Option<Pid>,
    pub log: PathBuf,
    config: Server,
    /// Runs `prepare` and `post-process` under the guard; dropping it ends what they left.
    hooks: shellexec::Shell,
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
        let argv: Vec<String> = match &server.launch {
            Launch::Argv(argv) => argv.clone(),
            Launch::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        };
        // The guard would only log that it cannot start the program; say it here instead.
        if let Some(program) = argv.first()
            && !findable(program, server.cwd.as_deref(), &server.env)
        {
            return Err(spawn_err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{program}` is not an executable file or a program on PATH"),
            )));
        }
        let daemon = server.pid_file.is_some() || server.process_match.is_some();
        let (mut command, guarded) = guarded_command(&argv, daemon, None);
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
            guard: guarded.then_some(group),
            log,
            config: server.clone(),
            hooks: shellexec::Shell::for_server(&server.label, artifacts),
        })
    }

    /// How monitoring finds this server's processes.
    pub fn target(&self) -> crate::monitor::ServerTarget {
        use crate::monitor::process::Root;
        let root = if let Some(path) = &self.config.pid_file {
            Root::PidFile(path.clone())
        } else if let Some(re) = self
            .config
            .process_match
            .as_deref()
            .and_then(|m| regex::Regex::new(m).ok())
        {
            Root::Match(re)
        } else {
            match self.guard {
                // The command the guard started is the server.
                Some(guard) => Root::Pid(child_of(guard.as_raw()).unwrap_or(0)),
                None => Root::Pid(u32::try_from(self.group.as_raw()).unwrap_or(0)),
            }
        };
        crate::monitor::ServerTarget {
            root,
            reaper: self.guard.and_then(|g| u32::try_from(g.as_raw()).ok()),
            workers: self
                .config
                .workers_match
                .as_deref()
                .and_then(|m| regex::Regex::new(m).ok()),
        }
    }

    /// Runs the `prepare` commands (after readiness, before load), output to the log.
    pub async fn prepare(&mut self) -> Result<(), ServerError> {
        for command in self.config.prepare.clone() {
            if let Err(status) = self.shell(&command).await {
                return Err(ServerError::Prepare {
                    label: self.label.clone(),
                    command: command.clone(),
                    status,
                    log_tail: self.log_tail(),
                });
            }
        }
        Ok(())
    }

    /// Runs the `post-process` commands (after stop); the first failure is returned.
    pub async fn post_process(&mut self) -> Result<(), String> {
        for command in self.config.post_process.clone() {
            self.shell(&command)
                .await
                .map_err(|status| format!("`post-process` command `{command}` {status}"))?;
        }
        Ok(())
    }

    /// Runs `line` with `/bin/sh -c` under the guard, in the server's working directory and
    /// environment, its output appended to the server's log.
    async fn shell(&mut self, line: &str) -> Result<(), String> {
        let log_name = self
            .log
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let command = crate::suite::model::ShellCommand {
            command: line.to_owned(),
            background: false,
            ignore_failure: false,
            out: log_name.clone(),
            err: log_name,
            cwd: Some(
                self.config
                    .cwd
                    .clone()
                    .or_else(|| std::env::current_dir().ok())
                    .unwrap_or_else(|| PathBuf::from(".")),
            ),
            env: self.config.env.clone(),
        };
        self.hooks.run_one(&command).await
    }

    /// Waits until the server is ready (TCP, then HTTP status, then log line), or fails with
    /// its log tail when it exits first or the timeout passes.
    pub async fn wait_ready(&mut self) -> Result<(), ServerError> {
        let ready = self.config.ready.clone();
        let deadline = Instant::now() + ready.timeout;
        let client = probe_client(ready.interval.max(Duration::from_secs(1)));
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
        if let Some(waiting) = unanswered(ready, client).await {
            return Some(waiting);
        }
        if let Some(path) = &self.config.pid_file {
            let pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            match pid {
                Some(pid) if nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok() => {}
                Some(pid) => {
                    return Some(format!("pid {pid} in {} is not running", path.display()));
                }
                None => return Some(format!("no pid in {}", path.display())),
            }
        }
        if let crate::monitor::process::Root::Match(re) = self.target().root
            && crate::monitor::process::find_match(&re, self.guard.map(|g| g.as_raw())).is_none()
        {
            return Some(format!("no process matching `{}`", re.as_str()));
        }
        if let Some(re) = log_re {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if !log.lines().any(|l| re.is_match(l)) {
                return Some(format!("no log line matching `{}`", re.as_str()));
            }
        }
        None
    }

    /// A watchdog for the load: resolves, with what it waited for, once the server's `tcp` /
    /// `http` readiness checks have gone unanswered for `ready.watchdog` (never when there are
    /// none, or the watchdog is off). A server that hangs is as broken as one that exits.
    ///
    /// `answers` counts the responses the load has received: while it grows the server is
    /// alive, however slow its probes are (an overloaded server queues them; that is a
    /// latency problem for the criteria, not a hang).
    pub fn watchdog(
        &self,
        answers: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> impl Future<Output = (String, String)> + Send + 'static {
        let label = self.label.clone();
        let ready = self.config.ready.clone();
        async move {
            let answered_so_far = || answers.load(std::sync::atomic::Ordering::Relaxed);
            let mut seen = answered_so_far();
            if ready.watchdog.is_zero() || (ready.tcp.is_none() && ready.http.is_none()) {
                return std::future::pending().await;
            }
            let every = ready.interval.max(Duration::from_secs(1));
            let client = probe_client(every.min(ready.watchdog));
            let mut answered = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let probe = unanswered(&ready, client.as_ref()).await;
                let now_seen = answered_so_far();
                let responding = now_seen > seen;
                seen = now_seen;
                match probe {
                    None => answered = Instant::now(),
                    Some(_) if responding => answered = Instant::now(),
                    Some(waiting) if answered.elapsed() >= ready.watchdog => {
                        let what = format!(
                            "stopped answering during the load ({waiting} for {}s)",
                            answered.elapsed().as_secs()
                        );
                        return (label, what);
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// The last lines the server wrote.
    pub fn log_tail(&self) -> String {
        tail(&self.log, LOG_TAIL_LINES)
    }

    /// Waits until the server process exits (for the dispatcher).
    pub async fn exited(&mut self) -> Option<ExitStatus> {
        self.child.wait().await.ok()
    }

    /// The stop command, or the configured signal to the server (and to a daemon's own
    /// group); after the grace period, SIGKILL to everything the server started. Then waits
    /// (up to the grace period) until the port it listened on is free.
    pub async fn stop(&mut self) {
        let stop = self.config.stop.clone();
        if let Some(command) = &stop.command {
            let _ = tokio::time::timeout(stop.grace, self.shell(command)).await;
        } else {
            let signal = stop.signal.parse::<Signal>().unwrap_or(Signal::SIGTERM);
            let _ = killpg(self.group, signal);
            if let crate::monitor::process::Root::PidFile(_)
            | crate::monitor::process::Root::Match(_) = self.target().root
                && let Some(pid) = self.daemon_pid()
            {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
        if tokio::time::timeout(stop.grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill_all();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
        // Anything left in the group goes too.
        let _ = killpg(self.group, Signal::SIGKILL);
        let _ = self.child.wait().await;
        if let Some(addr) = self
            .config
            .ready
            .tcp
            .as_deref()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        {
            let deadline = Instant::now() + stop.grace.max(Duration::from_secs(1));
            while std::net::TcpListener::bind(addr).is_err() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The daemon's pid (from the pid file or the matching process), if it runs under us.
    fn daemon_pid(&self) -> Option<Pid> {
        let pid = match self.target().root {
            crate::monitor::process::Root::PidFile(path) => std::fs::read_to_string(path)
                .ok()?
                .trim()
                .parse::<i32>()
                .ok()?,
            crate::monitor::process::Root::Match(re) => i32::try_from(
                crate::monitor::process::find_match(&re, self.guard.map(|g| g.as_raw()))?,
            )
            .ok()?,
            crate::monitor::process::Root::Pid(_) => return None,
        };
        // Only a process the guard adopted or started: never someone else's.
        let guard = self.guard?.as_raw();
        crate::monitor::process::descends_from(pid, guard).then(|| Pid::from_raw(pid))
    }

    /// SIGKILL to every process the server started (through its guard) and to its group.
    /// Kills the server and everything it started, without a grace period.
    pub fn kill_now(&mut self) {
        self.kill_all();
    }

    fn kill_all(&mut self) {
        guard::kill_all(&mut self.child, self.guard.is_some());
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

/// The HTTP client of readiness checks: no proxy, each check bounded by `timeout`.
fn probe_client(timeout: Duration) -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .ok()
}

/// What the `tcp` and `http` readiness checks did not get, or `None` when both answered.
async fn unanswered(
    ready: &crate::suite::model::Ready,
    client: Option<&reqwest::Client>,
) -> Option<String> {
    if let Some(addr) = &ready.tcp {
        let timeout = ready.interval.max(Duration::from_secs(1));
        let connect = tokio::net::TcpStream::connect(addr.as_str());
        if !matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_))) {
            return Some(format!("no TCP connection to {addr}"));
        }
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
    None
}

/// A command that runs `argv` under a [`guard`] in a new process group (directly where there
/// can be no guard). Returns whether it is guarded.
pub fn guarded_command(
    argv: &[String],
    daemon: bool,
    status_file: Option<&Path>,
) -> (tokio::process::Command, bool) {
    let guard = std::env::current_exe().ok().filter(|exe| {
        cfg!(target_os = "linux") && exe.file_stem().is_some_and(|s| s == "perfgate")
    });
    let mut c = match &guard {
        Some(exe) => {
            let mut c = tokio::process::Command::new(exe);
            c.arg("__guard")
                .arg("--parent")
                .arg(std::process::id().to_string());
            if daemon {
                c.arg("--daemon");
            }
            if let Some(file) = status_file {
                c.arg("--status-file").arg(file);
            }
            c.arg("--").args(argv);
            c
        }
        None => {
            let mut c = tokio::process::Command::new(argv.first().map_or("", String::as_str));
            c.args(argv.iter().skip(1));
            c
        }
    };
    c.process_group(0);
    (c, guard.is_some())
}

/// Whether `program` names an executable: a path (relative to `cwd`) or a program on the
/// PATH the server gets.
fn findable(program: &str, cwd: Option<&Path>, env: &[(String, String)]) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = Path::new(program);
        return match cwd {
            Some(dir) if path.is_relative() => executable(&dir.join(path)),
            _ => executable(path),
        };
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
}

/// The first child of `pid`.
fn child_of(pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        // Last resort on error paths and panics: no server outlives perfgate's handle on it.
        if self.group.as_raw() > 0 {
            self.kill_all();
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    // The end of the file only (a log may be huge); bytes that are not UTF-8 are replaced,
    // never a reason to show nothing.
    const WINDOW: u64 = 1024 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let last = &all[all.len().saturating_sub(lines)..];
    // The lines that explain an exit (a traceback, a panic, an error) may lie before the last
    // ones (an access log keeps writing): show the last such block first.
    let start = all.len().saturating_sub(lines);
    let explains = |l: &&str| {
        let lower = l.to_ascii_lowercase();
        [
            "traceback",
            "exception",
            "error",
            "panicked",
            "fatal",
            "killed",
            "out of memory",
        ]
        .iter()
        .any(|w| lower.contains(w))
    };
    match all[..start].iter().rposition(explains) {
        Some(at) if !last.iter().any(explains) => {
            // From the start of its block (the first of the consecutive error-ish lines
            // before it, e.g. a traceback header), at most 20 lines.
            let from = all[..=at]
                .iter()
                .rposition(|l| l.to_ascii_lowercase().contains("traceback"))
                .filter(|t| at - t < 40)
                .unwrap_or(at);
            // The error line and the one after it (`from <= at < start`, so never empty).
            let end = (at + 2).min(start);
            let block: Vec<&str> = all[from..end].iter().take(20).copied().collect();
            format!(
                "{}\n[... {} more lines ...]\n{}",
                block.join("\n"),
                start.saturating_sub(from + block.len()),
                last.join("\n")
            )
        }
        _ => last.join("\n"),
    }
}

#[cfg(test)]
mod tail_tests {
    use super::tail;

    #[test]
    fn the_error_block_comes_first_and_bad_bytes_do_not_blank_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("srv.log");
        let mut text: Vec<u8> = b"starting\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: model weights missing\n".to_vec();
        for i in 0..100 {
            text.extend(format!("GET /ping {i} 200\n").bytes());
        }
        text.extend(b"bad bytes \xff\xfe here\n");
        std::fs::write(&log, &text).expect("written");
        let shown = tail(&log, 10);
        assert!(
            shown.starts_with("Traceback (most recent call last):"),
            "{shown}"
        );
        assert!(
            shown.contains("ValueError: model weights missing"),
            "{shown}"
        );
        assert!(shown.contains("more lines"), "{shown}");
        assert!(
            shown.ends_with("bad bytes \u{fffd}\u{fffd} here"),
            "{shown}"
        );
        // Without an error block, the last lines as they are.
        std::fs::write(&log, "a\nb\nc\n").expect("written");
        assert_eq!(tail(&log, 2), "b\nc");
    }
}
