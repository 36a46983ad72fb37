//! Every text a suite was built from, so diagnostics can quote the user's lines.
//!
//! [`SourceMap`] owns the file texts (and virtual sources such as `-o` overrides) behind the
//! [`FileId`]s carried by every [`super::node::Span`]. It must not parse anything.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::node::FileId;

/// The largest suite file perfgate reads (16 MiB): a suite is a page of YAML, and a path to
/// `/dev/zero` or a huge log must not be read forever.
pub const MAX_SUITE_FILE: u64 = 16 * 1024 * 1024;

/// Reads a suite, layer or included file: regular files only (a FIFO or a device would block
/// or never end), at most [`MAX_SUITE_FILE`] bytes.
pub fn read_suite_file(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO or device cannot be a suite)",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SUITE_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SUITE_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "larger than 16 MiB; a suite file is YAML text",
        ));
    }
    Ok(text)
}

#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as shown to the user (relative when the user gave a relative path).
    pub name: String,
    /// The file on disk; `None` for virtual sources such as command-line overrides.
    pub path: Option<PathBuf>,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add_file(&mut self, path: &Path, text: String) -> FileId {
        self.push(SourceFile {
            name: display_path(path),
            path: Some(path.to_owned()),
            text,
        })
    }

    pub fn add_virtual(&mut self, name: impl Into<String>, text: String) -> FileId {
        self.push(SourceFile {
            name: name.into(),
            path: None,
            text,
        })
    }

    fn push(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(u32::try_from(self.files.len() - 1).expect("fewer than 4 billion sources"))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Appends the files of `other` that come after its first `shared` files (which both maps
    /// hold already); returns the id offset to apply to spans into those appended files.
    pub fn absorb(&mut self, other: SourceMap, shared: usize) -> i64 {
        let offset = self.files.len() as i64 - shared as i64;
        self.files.extend(other.files.into_iter().skip(shared));
        offset
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The 1-based line `line` of a source, without its newline.
    pub fn line(&self, id: FileId, line: u32) -> Option<&str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.get(id).text.lines().nth(index)
    }

    /// The directory relative paths in a source are resolved against.
    pub fn base_dir(&self, id: FileId) -> PathBuf {
        self.get(id)
            .path
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    }
}

/// Paths as the user wrote them, with `./` removed, so messages stay short and stable.
pub fn display_path(path: &Path) -> String {
    use std::path::Component;
    // Lexically resolve `a/../b`, so included files read as the user would name them.
    let mut shown = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if shown.file_name().is_some() && !shown.ends_with("..") => {
                shown.pop();
            }
            other => shown.push(other),
        }
    }
    shown.display().to_string()
}
