//! Finding the files of a registered folder and fingerprinting their content.
//!
//! `scan` walks a folder and says what is there (and what could not be looked at);
//! `hash_file` gives the content identity that makes re-indexing incremental. This crate
//! deliberately does not parse, embed or store anything.

use std::path::{Path, PathBuf};

/// Files bigger than this are reported as skipped rather than read into memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Names of per-folder ignore files, read in every directory of a folder (gitignore syntax).
pub const IGNORE_FILES: &[&str] = &[".gitignore", ".cairnignore"];

/// Always ignored: editors' backup, swap and lock files, half-finished downloads, OS litter.
/// An atomic save's temporary file is never indexed; only the file it is renamed to.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "*~",
    "*.swp",
    "*.swo",
    "*.swx",
    "*.tmp",
    "*.temp",
    "*.bak",
    "*.part",
    "*.crdownload",
    "*.partial",
    ".#*",
    "#*#",
    "~$*",
    ".~lock.*#",
    "Thumbs.db",
    "desktop.ini",
    ".DS_Store",
    "node_modules/",
    "__pycache__/",
];

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub max_file_bytes: u64,
    /// Hidden files and folders (names starting with '.') are skipped unless this is set.
    pub include_hidden: bool,
    /// The user's own exclude patterns (gitignore syntax, relative to each folder).
    pub excludes: Vec<String>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { max_file_bytes: DEFAULT_MAX_FILE_BYTES, include_hidden: false, excludes: Vec::new() }
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
/// `ignored` counts entries left out on purpose (hidden, ignore rules).
#[derive(Debug, Default)]
pub struct ScanReport {
    pub files: Vec<ScannedFile>,
    pub problems: Vec<(PathBuf, String)>,
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The folder itself is gone or unreadable. Callers must not take this for "empty":
    /// an unmounted drive would otherwise wipe its index.
    #[error("folder {path} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("bad exclude pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
}

/// Walks `root` (following symlinks that stay inside it, without loops) and lists regular files.
pub fn scan(root: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    scan_within(root, root, opts)
}

/// Like `scan`, but only the part of `root` at `start` (a file or folder inside it). A `start`
/// that does not exist is an empty report (it was deleted); `root` itself must be readable.
pub fn scan_within(root: &Path, start: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let unreadable = |reason: String| ScanError::Unreadable { path: root.display().to_string(), reason };
    let meta = std::fs::metadata(root).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unreadable("not a folder".into()));
    }
    std::fs::read_dir(root).map_err(|e| unreadable(e.to_string()))?;
    let canonical_root = std::fs::canonicalize(root).map_err(|e| unreadable(e.to_string()))?;
    let rules = Rules::new(root, opts)?;

    let mut report = ScanReport::default();
    if start != root {
        if std::fs::symlink_metadata(start).is_err() {
            return Ok(report);
        }
        // Everything between the folder and `start` must be visible for `start` to be.
        let mut p = start.to_path_buf();
        loop {
            if p == root {
                break;
            }
            if rules.ignored(&p, p.is_dir(), opts) {
                report.ignored += 1;
                return Ok(report);
            }
            if !p.pop() {
                break;
            }
        }
    }

    // Symlinks that lead out of the folder are reported and not entered, so a link to `/`
    // or to a huge share does not drag the walk through trees the user did not pick.
    let outside = std::cell::RefCell::new(Vec::new());
    let ignored = std::cell::Cell::new(0usize);
    let walker = walkdir::WalkDir::new(start).follow_links(true).sort_by_file_name().into_iter().filter_entry(|e| {
        if e.depth() > 0 && rules.ignored(e.path(), e.file_type().is_dir(), opts) {
            ignored.set(ignored.get() + 1);
            return false;
        }
        if e.path_is_symlink() {
            match std::fs::canonicalize(e.path()) {
                Ok(target) if target.starts_with(&canonical_root) => {}
                Ok(target) => {
                    outside.borrow_mut().push((
                        e.path().to_path_buf(),
                        format!("symlink leads outside the folder (to {})", target.display()),
                    ));
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
                let dangling =
                    std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) && !path.exists();
                let reason = if e.loop_ancestor().is_some() {
                    "symlink loop (not followed)".to_owned()
                } else if dangling {
                    "broken symlink (its target does not exist)".to_owned()
                } else if path.exists() || std::fs::symlink_metadata(&path).is_ok() {
                    e.io_error().map(|io| io.to_string()).unwrap_or_else(|| e.to_string())
                } else {
                    // Deleted between listing and looking: not a problem, just gone.
                    continue;
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
            report
                .problems
                .push((entry.path().to_path_buf(), format!("same file as {} (linked); indexed once", first.display())));
            continue;
        } else if let Ok(real) = std::fs::canonicalize(entry.path()) {
            seen.insert(real, entry.path().to_path_buf());
        }
        report.files.push(ScannedFile { path: entry.into_path(), size: meta.len(), mtime_ns: mtime_ns(&meta) });
    }
    report.problems.extend(outside.into_inner());
    report.ignored += ignored.get();
    Ok(report)
}

/// Modification time in nanoseconds since the epoch (0 when the platform cannot say).
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The ignore rules of one folder: built-in excludes, the user's excludes, and the
/// `.gitignore` / `.cairnignore` files of each directory (read once per scan).
struct Rules {
    global: ignore::gitignore::Gitignore,
    per_dir: std::cell::RefCell<std::collections::HashMap<PathBuf, Option<ignore::gitignore::Gitignore>>>,
}

impl Rules {
    fn new(root: &Path, opts: &ScanOptions) -> Result<Rules, ScanError> {
        let mut b = ignore::gitignore::GitignoreBuilder::new(root);
        for p in DEFAULT_EXCLUDES {
            b.add_line(None, p)
                .map_err(|e| ScanError::BadPattern { pattern: (*p).to_owned(), reason: e.to_string() })?;
        }
        for p in &opts.excludes {
            b.add_line(None, p).map_err(|e| ScanError::BadPattern { pattern: p.clone(), reason: e.to_string() })?;
        }
        let global = b.build().map_err(|e| ScanError::BadPattern { pattern: String::new(), reason: e.to_string() })?;
        Ok(Rules { global, per_dir: Default::default() })
    }

    fn dir_rules(&self, dir: &Path) -> Option<ignore::gitignore::Gitignore> {
        if let Some(r) = self.per_dir.borrow().get(dir) {
            return r.clone();
        }
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        let mut any = false;
        for name in IGNORE_FILES {
            let f = dir.join(name);
            if f.is_file() {
                // A malformed line is skipped by the builder; the rest of the file still applies.
                let _ = b.add(&f);
                any = true;
            }
        }
        let built = if any { b.build().ok() } else { None };
        self.per_dir.borrow_mut().insert(dir.to_path_buf(), built.clone());
        built
    }

    /// Whether `path` (inside the folder) is left out: hidden, excluded, or ignored by the
    /// ignore file of any directory above it (the nearest one wins, `!pattern` re-includes).
    fn ignored(&self, path: &Path, is_dir: bool, opts: &ScanOptions) -> bool {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if !opts.include_hidden && name.starts_with('.') && !IGNORE_FILES.contains(&name.as_ref()) {
            return true;
        }
        if IGNORE_FILES.contains(&name.as_ref()) {
            return true;
        }
        let mut dir = path.parent();
        while let Some(d) = dir {
            if let Some(r) = self.dir_rules(d) {
                match r.matched(path, is_dir) {
                    ignore::Match::Ignore(_) => return true,
                    ignore::Match::Whitelist(_) => return false,
                    ignore::Match::None => {}
                }
            }
            if d == self.global.path() {
                break;
            }
            dir = d.parent();
        }
        self.global.matched(path, is_dir).is_ignore()
    }
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
        let names: Vec<String> =
            r.files.iter().map(|f| f.path.strip_prefix(&root).unwrap().display().to_string()).collect();
        assert_eq!(names, vec!["a \"quoted\" 😀.txt", "sub/b.md"]);
        assert!(
            r.problems.iter().any(|(p, why)| p.ends_with("link-out") && why.contains("outside")),
            "{:?}",
            r.problems
        );
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
    fn ignore_files_user_excludes_and_editor_litter_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("build/out")).unwrap();
        std::fs::create_dir_all(root.join("notes/drafts")).unwrap();
        std::fs::write(root.join(".gitignore"), "build/\n*.log\n").unwrap();
        std::fs::write(root.join("notes/.cairnignore"), "drafts/\n!keep.log\n").unwrap();
        for f in [
            "a.md",
            "a.md~",
            ".a.md.swp",
            "x.tmp",
            "build/out/gen.txt",
            "run.log",
            "notes/keep.log",
            "notes/drafts/d.md",
            "notes/n.md",
            "private/p.md",
            "~$report.docx",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        let opts = ScanOptions { excludes: vec!["private/".into()], ..ScanOptions::default() };
        let r = scan(root, &opts).unwrap();
        let names: Vec<String> =
            r.files.iter().map(|f| f.path.strip_prefix(root).unwrap().display().to_string()).collect();
        assert_eq!(names, vec!["a.md", "notes/keep.log", "notes/n.md"]);
        assert!(r.ignored >= 8, "{}", r.ignored);
        // A subtree scan applies the same rules, including those of the folders above it.
        let sub = scan_within(root, &root.join("notes"), &opts).unwrap();
        let names: Vec<String> =
            sub.files.iter().map(|f| f.path.strip_prefix(root).unwrap().display().to_string()).collect();
        assert_eq!(names, vec!["notes/keep.log", "notes/n.md"]);
        assert!(scan_within(root, &root.join("build/out/gen.txt"), &opts).unwrap().files.is_empty());
        assert!(scan_within(root, &root.join("a.md~"), &opts).unwrap().files.is_empty());
        assert_eq!(scan_within(root, &root.join("a.md"), &opts).unwrap().files.len(), 1);
        assert!(scan_within(root, &root.join("gone.md"), &opts).unwrap().files.is_empty());
        let bad = ScanOptions { excludes: vec!["[z-a].md".into()], ..ScanOptions::default() };
        assert!(matches!(scan(root, &bad), Err(ScanError::BadPattern { .. })));
    }

    #[test]
    fn a_missing_folder_is_an_error_not_an_empty_folder() {
        let err = scan(Path::new("/nonexistent/cairn/folder"), &ScanOptions::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cairn/folder"));
    }
}
