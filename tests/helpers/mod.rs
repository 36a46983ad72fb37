//! What the end-to-end tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/helpers/fakeserver.py`, a server that misbehaves on demand (after N requests, not
/// after a time, so it misbehaves during the load however busy the machine is).
#[allow(dead_code, reason = "not every test binary starts the fake server")]
pub fn fakeserver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/fakeserver.py")
}

/// Runs perfgate in `dir` (also its TMPDIR, where MMS pid files go); returns the exit code
/// and stdout followed by stderr.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn perfgate_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .output()
        .expect("perfgate runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
