//! The file descriptors a run needs: one per virtual user (or request in flight) plus what
//! perfgate itself keeps open. The soft limit is raised to the hard one at start; a run that
//! still cannot fit is refused before anything starts, instead of turning samples into
//! "Too many open files" failures that look like the server's.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::suite::model::Suite;

/// Descriptors beside the users': server logs, monitoring, reports, the runtime, the guards.
pub const RESERVED: u64 = 128;

/// The most connections a suite keeps open at once: the users (or in-flight cap) of its
/// executions, added when they run side by side, the largest when sequential.
pub fn connections(suite: &Suite) -> u64 {
    let each = suite.executions.iter().map(|e| u64::from(e.concurrency));
    if suite.settings.sequential {
        each.max().unwrap_or(0)
    } else {
        each.sum()
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and checks that `connections` fit.
/// Returns the limit now in force.
pub fn ensure(connections: u64) -> Result<u64, String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    let limit = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        }
    } else {
        soft
    };
    let need = connections.saturating_add(RESERVED);
    if need > limit {
        return Err(format!(
            "the suites need up to {connections} connections at once (plus {RESERVED} for perfgate), but this process may open only {limit} files (`ulimit -n`, hard limit {hard})\n  hint: raise the hard limit (`ulimit -Hn {need}` as root, or `LimitNOFILE=` / `--ulimit nofile=` for services and containers), or lower `concurrency`"
        ));
    }
    Ok(limit)
}
