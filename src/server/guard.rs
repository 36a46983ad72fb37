//! The guard: a small perfgate process between perfgate and each server it starts, so that no
//! server process outlives perfgate, whatever happens to perfgate (even SIGKILL).
//!
//! perfgate starts `perfgate __guard --parent <pid> [--daemon] -- <command...>` in a new
//! process group. The guard asks the kernel for a signal when its parent dies
//! (`PR_SET_PDEATHSIG`), becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`: processes that
//! daemonise or lose their parent are adopted by the guard instead of init), and starts the
//! command in its own group. Then it waits:
//! - the command exits (a foreground server): its leftover descendants are killed and the guard
//!   exits with the command's status;
//! - `--daemon`: the guard stays while any descendant lives (the daemon the command started),
//!   and exits when the last one does;
//! - perfgate dies, or asks with SIGUSR2: every descendant is killed with SIGKILL.
//!
//! Termination signals sent to the group (perfgate's graceful stop) reach the server
//! directly; the guard ignores them and waits for the server to go.

use std::collections::HashMap;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getppid};

/// The signal that tells a guard to kill everything it guards (also its parent-death signal).
pub const KILL_ALL: Signal = Signal::SIGUSR2;

/// When the arguments are `__guard --parent PID [--daemon] -- COMMAND...`, runs the guard and
/// returns its exit code.
pub fn from_args(mut args: impl Iterator<Item = String>) -> Option<u8> {
    if args.next().as_deref() != Some("__guard") {
        return None;
    }
    let mut parent = None;
    let mut daemon = false;
    let mut status_file = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--parent" => parent = args.next().and_then(|p| p.parse().ok()),
            "--daemon" => daemon = true,
            "--status-file" => status_file = args.next(),
            "--" => break,
            _ => return Some(125),
        }
    }
    let argv: Vec<String> = args.collect();
    Some(run(parent?, daemon, status_file.as_deref(), &argv))
}

/// Runs the guard; returns its exit code.
///
/// With a status file, the command's exit code is written there as soon as it exits (a
/// shellexec command that started a daemon is finished, though its daemon lives on under the
/// guard).
pub fn run(parent: i32, daemon: bool, status_file: Option<&str>, argv: &[String]) -> u8 {
    let mut waited = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        KILL_ALL,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        waited.add(s);
    }
    let Some((program, args)) = argv.split_first() else {
        return 125;
    };
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // The command must start with no signal blocked (the standard library does not reset
    // the mask), so the guard blocks its signals only once the command runs. A SIGCHLD
    // before that is not lost: the loop below reaps before it waits.
    let child = match std::process::Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            log(&format!("cannot start `{program}`: {e}"));
            return 127;
        }
    };
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None).is_err()
        || nix::sys::prctl::set_pdeathsig(KILL_ALL).is_err()
    {
        return 125;
    }
    if getppid().as_raw() != parent {
        // perfgate died before the guard was set up.
        kill_descendants();
        return 125;
    }
    let child = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let mut status: Option<u8> = None;
    loop {
        // Reap whatever exited: the command, and adopted processes.
        let mut none_left = false;
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    if pid == child {
                        status = Some(u8::try_from(code).unwrap_or(1));
                        write_status(status_file, status);
                    }
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    if pid == child {
                        log(&format!("`{program}` was killed by {signal}"));
                        status = Some(128u8.saturating_add(signal as u8));
                        write_status(status_file, status);
                    }
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => {}
                Err(Errno::ECHILD) => {
                    none_left = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(code) = status {
            if none_left {
                return code;
            }
            if !daemon {
                // A foreground server exited: what it left behind goes with it (then the
                // wait below returns on their SIGCHLD).
                kill_descendants();
            }
        } else if none_left {
            return 1;
        }
        match waited.wait() {
            Ok(s) if s == KILL_ALL => {
                kill_descendants();
                reap_all();
                return 137;
            }
            _ => {}
        }
    }
}

fn write_status(file: Option<&str>, status: Option<u8>) {
    if let (Some(file), Some(code)) = (file, status) {
        // Written whole, then renamed: a reader never sees half of it.
        let tmp = format!("{file}.tmp");
        if std::fs::write(&tmp, format!("{code}\n")).is_ok() {
            let _ = std::fs::rename(tmp, file);
        }
    }
}

fn log(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "perfgate guard: {message}");
}

/// SIGKILLs every descendant of this process (found through `/proc`, since daemons leave the
/// process group).
fn kill_descendants() {
    let me = getpid().as_raw();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat() {
                children.entry(stat.ppid).or_default().push(stat.pid);
            }
        }
    }
    let mut stack = children.get(&me).cloned().unwrap_or_default();
    while let Some(pid) = stack.pop() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
}

fn reap_all() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            _ => {}
        }
    }
}

/// Has the guard `child` kill everything it guards, waits (up to 3 s) until it has, then
/// SIGKILLs its process group for good measure. Blocking: for `Drop` and error paths.
pub fn kill_all(child: &mut tokio::process::Child, guarded: bool) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    if guarded {
        let _ = kill(Pid::from_raw(pid), KILL_ALL);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
}
