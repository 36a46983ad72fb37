//! What the end-to-end tests share.

use std::path::Path;
use std::process::Command;

/// Runs perfgate in `dir` (also its TMPDIR, where MMS pid files go); returns the exit code
/// and stdout followed by stderr.
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
