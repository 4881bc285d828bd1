//! Finding the files of a registered folder and fingerprinting their content.
//!
//! `scan` walks a folder and says what is there (and what could not be looked at);
//! `hash_file` gives the content identity that makes re-indexing incremental. This crate
//! deliberately does not parse, embed or store anything.

use std::path::{Path, PathBuf};

/// Files bigger than this are reported as skipped rather than read into memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub max_file_bytes: u64,
    /// Hidden files and folders (names starting with '.') are skipped unless this is set.
    pub include_hidden: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { max_file_bytes: DEFAULT_MAX_FILE_BYTES, include_hidden: false }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
}

/// What a scan found. `problems` are entries that exist but could not be looked at
/// (permission denied, vanished mid-scan, too big): they are reported, never silently dropped.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub files: Vec<ScannedFile>,
    pub problems: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The folder itself is gone or unreadable. Callers must not take this for "empty":
    /// an unmounted drive would otherwise wipe its index.
    #[error("folder {path} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Walks `root` (following symlinks that stay inside it, without loops) and lists regular files.
pub fn scan(root: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let unreadable = |reason: String| ScanError::Unreadable { path: root.display().to_string(), reason };
    let meta = std::fs::metadata(root).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unreadable("not a folder".into()));
    }
    std::fs::read_dir(root).map_err(|e| unreadable(e.to_string()))?;
    let canonical_root = std::fs::canonicalize(root).map_err(|e| unreadable(e.to_string()))?;

    let mut report = ScanReport::default();
    // Symlinks that lead out of the folder are reported and not entered, so a link to `/`
    // or to a huge share does not drag the walk through trees the user did not pick.
    let outside = std::cell::RefCell::new(Vec::new());
    let walker = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name().into_iter().filter_entry(|e| {
        if !(opts.include_hidden || e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')) {
            return false;
        }
        if e.path_is_symlink() {
            match std::fs::canonicalize(e.path()) {
                Ok(target) if target.starts_with(&canonical_root) => {}
                Ok(target) => {
                    outside.borrow_mut().push((e.path().to_path_buf(), format!("symlink leads outside the folder (to {})", target.display())));
                    return false;
                }
                Err(err) => {
                    outside.borrow_mut().push((e.path().to_path_buf(), format!("broken symlink: {err}")));
                    return false;
                }
            }
        }
        true
    });
    // The same file reached through a symlink is indexed once, under the first path found.
    let mut seen: std::collections::HashMap<PathBuf, PathBuf> = std::collections::HashMap::new();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
                // walkdir reports symlink loops and dangling links as I/O errors; name them plainly.
                let dangling = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) && !path.exists();
                let reason = if e.loop_ancestor().is_some() {
                    "symlink loop (not followed)".to_owned()
                } else if dangling {
                    "broken symlink (its target does not exist)".to_owned()
                } else {
                    e.to_string()
                };
                report.problems.push((path, reason));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                report.problems.push((entry.path().to_path_buf(), e.to_string()));
                continue;
            }
        };
        if meta.len() > opts.max_file_bytes {
            report.problems.push((
                entry.path().to_path_buf(),
                format!("larger than the {} MB limit ({} MB)", opts.max_file_bytes / 1_000_000, meta.len() / 1_000_000),
            ));
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(entry.path())
            && let Some(first) = seen.get(&real)
        {
            report.problems.push((entry.path().to_path_buf(), format!("same file as {} (linked); indexed once", first.display())));
            continue;
        } else if let Ok(real) = std::fs::canonicalize(entry.path()) {
            seen.insert(real, entry.path().to_path_buf());
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        report.files.push(ScannedFile { path: entry.into_path(), size: meta.len(), mtime_ns });
    }
    report.problems.extend(outside.into_inner());
    Ok(report)
}

/// blake3 of a byte slice, hex.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scan_lists_files_skips_hidden_and_reports_outside_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("docs é");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("a \"quoted\" 😀.txt"), "hello").unwrap();
        std::fs::write(root.join("sub/b.md"), "# b").unwrap();
        std::fs::write(root.join(".git/config"), "x").unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();

        let r = scan(&root, &ScanOptions::default()).unwrap();
        let names: Vec<String> = r.files.iter().map(|f| f.path.strip_prefix(&root).unwrap().display().to_string()).collect();
        assert_eq!(names, vec!["a \"quoted\" 😀.txt", "sub/b.md"]);
        assert!(r.problems.iter().any(|(p, why)| p.ends_with("link-out") && why.contains("outside")), "{:?}", r.problems);
    }

    #[test]
    fn a_dangling_symlink_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.txt"), dir.path().join("link.txt")).unwrap();
        let r = scan(dir.path(), &ScanOptions::default()).unwrap();
        assert!(r.files.is_empty());
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].1.contains("broken symlink"), "{:?}", r.problems);
    }

    #[test]
    fn a_missing_folder_is_an_error_not_an_empty_folder() {
        let err = scan(Path::new("/nonexistent/cairn/folder"), &ScanOptions::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cairn/folder"));
    }
}
