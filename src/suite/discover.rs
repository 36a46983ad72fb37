//! Finding suite files: paths, directories (recursive) and globs.
//!
//! [`discover`] returns suites in sorted path order plus the `global_config.yaml` layers it
//! met. Folders whose name starts with `skip` are left out; files under `environments/` and
//! files named `global_config.yaml` are layers, never suites. Both MMS layouts work: flat
//! `tests/*.yaml` and `tests/<name>/<name>.yaml`.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

pub const DEFAULT_PATTERN: &str = "*.{yaml,yml}";
pub const GLOBAL_CONFIG: &str = "global_config.yaml";

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("invalid glob `{pattern}`")]
    BadGlob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("`{0}` does not exist")]
    Missing(String),
    #[error("failed to read directory `{path}`")]
    ReadDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no suite files found in {searched} (pattern `{pattern}`{excluding})")]
    NoSuites {
        searched: String,
        pattern: String,
        excluding: String,
    },
}

/// What discovery found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Suite files in sorted path order.
    pub suites: Vec<PathBuf>,
    /// `global_config.yaml` files, applied before every suite found in the same search.
    pub global_configs: Vec<PathBuf>,
    /// The suites named as files on the command line: suites even when another includes them.
    pub named: Vec<PathBuf>,
}

/// Searches `inputs` (files, directories or globs) for suites matching `pattern`.
pub fn discover(
    inputs: &[String],
    pattern: &str,
    excludes: &[String],
) -> Result<Discovery, DiscoverError> {
    let matcher = glob_set(&[pattern.to_owned()])?;
    let excluded = glob_set(excludes)?;
    let mut found = Discovery::default();
    for input in inputs {
        let path = Path::new(input);
        if path.is_file() || (path.exists() && !path.is_dir()) {
            // An explicit file is a suite whatever its name (a FIFO or device too: loading
            // then says why it cannot be one).
            if !is_excluded(&excluded, path, path) {
                found.suites.push(path.to_owned());
                found.named.push(path.to_owned());
                found.global_configs.extend(nearest_global_config(path));
            }
        } else if path.is_dir() {
            walk(path, path, &matcher, &excluded, &mut found)?;
        } else if input.contains(['*', '?', '[', '{']) {
            let (root, glob) = split_glob(input);
            let glob = glob_set(&[glob])?;
            if root.is_dir() {
                let mut all = Discovery::default();
                walk(
                    &root,
                    &root,
                    &glob_set(&["*".to_owned()])?,
                    &excluded,
                    &mut all,
                )?;
                found.global_configs.extend(all.global_configs);
                found
                    .suites
                    .extend(all.suites.into_iter().filter(|p| glob.is_match(p)));
            }
        } else {
            return Err(DiscoverError::Missing(input.clone()));
        }
    }
    found.suites.sort();
    found.suites.dedup();
    found.global_configs.sort();
    found.global_configs.dedup();
    if found.suites.is_empty() {
        return Err(DiscoverError::NoSuites {
            searched: inputs
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", "),
            pattern: pattern.to_owned(),
            excluding: if excludes.is_empty() {
                String::new()
            } else {
                format!(
                    ", excluding {}",
                    excludes
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        });
    }
    Ok(found)
}

/// The `global_config.yaml` a named file gets, as it would if its folder were searched: beside
/// it, in `common/` beside it (MMS's older flat layout), or the same one folder up (MMS's
/// `tests/<name>/<name>.yaml` layout); the nearest wins.
fn nearest_global_config(file: &Path) -> Option<PathBuf> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let up = dir.join("..");
    [
        dir.to_owned(),
        dir.join("common"),
        up.clone(),
        up.join("common"),
    ]
    .into_iter()
    .map(|d| d.join(GLOBAL_CONFIG))
    .find(|p| p.is_file())
    .filter(|p| !same_file(p, file))
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, DiscoverError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|source| DiscoverError::BadGlob {
            pattern: pattern.clone(),
            source,
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|source| DiscoverError::BadGlob {
        pattern: patterns.join(", "),
        source,
    })
}

/// `suites/**/*.yaml` → (`suites`, the whole glob).
fn split_glob(input: &str) -> (PathBuf, String) {
    let mut root = PathBuf::new();
    for part in Path::new(input).components() {
        let text = part.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        root.push(part);
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    (root, input.to_owned())
}

fn is_excluded(excluded: &GlobSet, root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    excluded.is_match(path)
        || excluded.is_match(relative)
        || path.file_name().is_some_and(|n| excluded.is_match(n))
}

fn walk(
    root: &Path,
    dir: &Path,
    matcher: &GlobSet,
    excluded: &GlobSet,
    found: &mut Discovery,
) -> Result<(), DiscoverError> {
    let read = std::fs::read_dir(dir).map_err(|source| DiscoverError::ReadDir {
        path: dir.display().to_string(),
        source,
    })?;
    let mut entries: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_excluded(excluded, root, &path) {
            continue;
        }
        if path.is_dir() {
            if name.starts_with("skip") || name.starts_with('.') || name == "environments" {
                continue;
            }
            walk(root, &path, matcher, excluded, found)?;
        } else if name == GLOBAL_CONFIG {
            found.global_configs.push(path);
        } else if matcher.is_match(&name) {
            found.suites.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "execution: []\n").unwrap();
        }
        dir
    }

    fn names(d: &Discovery, root: &Path) -> Vec<String> {
        d.suites
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn both_mms_layouts() {
        let dir = tree(&[
            "tests/global_config.yaml",
            "tests/b/b.yaml",
            "tests/b/b.jmx",
            "tests/b/environments/xlarge.yaml",
            "tests/a/a.yaml",
            "tests/skip_broken/c.yaml",
            "flat/common/global_config.yaml",
            "flat/x.yaml",
            "flat/w.yml",
        ]);
        let root = dir.path();
        let d = discover(
            &[root.join("tests").display().to_string()],
            DEFAULT_PATTERN,
            &[],
        )
        .unwrap();
        assert_eq!(names(&d, root), ["tests/a/a.yaml", "tests/b/b.yaml"]);
        assert_eq!(d.global_configs, [root.join("tests/global_config.yaml")]);
        let d = discover(
            &[root.join("flat").display().to_string()],
            DEFAULT_PATTERN,
            &[],
        )
        .unwrap();
        assert_eq!(names(&d, root), ["flat/w.yml", "flat/x.yaml"]);
        assert_eq!(
            d.global_configs,
            [root.join("flat/common/global_config.yaml")]
        );
    }

    #[test]
    fn patterns_excludes_and_globs() {
        let dir = tree(&["s/a.yaml", "s/b.yaml", "s/deep/c.yaml", "s/d.json"]);
        let root = dir.path();
        let s = root.join("s").display().to_string();
        let d = discover(std::slice::from_ref(&s), "*.json", &[]).unwrap();
        assert_eq!(names(&d, root), ["s/d.json"]);
        let d = discover(
            std::slice::from_ref(&s),
            DEFAULT_PATTERN,
            &["b.yaml".into(), "deep/**".into()],
        )
        .unwrap();
        assert_eq!(names(&d, root), ["s/a.yaml"]);
        let d = discover(&[format!("{s}/**/c.yaml")], DEFAULT_PATTERN, &[]).unwrap();
        assert_eq!(names(&d, root), ["s/deep/c.yaml"]);
        let err = discover(&[s], "*.toml", &["x".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("no suite files found in `")
                && err.ends_with("(pattern `*.toml`, excluding `x`)"),
            "{err}"
        );
        assert!(matches!(
            discover(&["nope/".into()], DEFAULT_PATTERN, &[]),
            Err(DiscoverError::Missing(_))
        ));
    }
}
