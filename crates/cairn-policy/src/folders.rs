//! Local-only patterns made ready to match: `~` expanded to the home folder from the system's
//! user database, and a pattern whose literal leading folder is reached through a symbolic
//! link matched at the folder the link leads to as well.

use crate::glob::Seg;
use std::path::{Path, PathBuf};

/// One `[privacy] local_only` pattern in every form it is matched in.
#[derive(Clone, Debug)]
pub(crate) struct FolderPattern {
    /// The pattern as written (`~` expanded), then its symlink-resolved form when that differs.
    pub forms: Vec<Vec<Seg>>,
    /// The symlink-resolved form, for `describe`, when there is one.
    pub resolved: Option<String>,
}

impl FolderPattern {
    /// `pattern` (already validated) with `~` meaning `home`, or any folder when `home` is
    /// `None`. Reads the file system: the literal leading folders of an absolute pattern are
    /// resolved with [`std::fs::canonicalize`].
    pub(crate) fn new(pattern: &str, home: Option<&Path>) -> FolderPattern {
        let (expanded, anchored) = match pattern.strip_prefix('~') {
            Some(rest) => match home {
                Some(home) => (format!("{}/{rest}", home.to_string_lossy()), true),
                None => (format!("**/{rest}"), false),
            },
            None => (pattern.to_owned(), !(pattern == "**" || pattern.starts_with("**/"))),
        };
        let names = split_names(&expanded);
        let written = segs(&names);
        let mut forms = vec![written.clone()];
        let mut resolved = None;
        if anchored && let Some(real) = resolve_literal_prefix(&names) {
            let real_segs = segs(&real);
            if real_segs != written {
                resolved = Some(display(&real));
                forms.push(real_segs);
            }
        }
        FolderPattern { forms, resolved }
    }
}

/// Segments to match, lower-cased. The root (`/`, or `~` for a home of `/`) is every path.
fn segs(names: &[String]) -> Vec<Seg> {
    if names.is_empty() {
        return vec![Seg::Any];
    }
    names.iter().map(|n| if n == "**" { Seg::Any } else { Seg::Name(n.to_lowercase()) }).collect()
}

fn is_literal(name: &str) -> bool {
    !name.contains(['*', '?'])
}

/// `names` with its longest literal (glob-free) leading path replaced by where it really is:
/// the deepest of its folders that exists is canonicalised and the rest appended, so a folder
/// that does not exist yet under a linked parent is covered too. `None` when nothing resolves.
fn resolve_literal_prefix(names: &[String]) -> Option<Vec<String>> {
    let literal = names.iter().take_while(|n| is_literal(n)).count();
    for k in (1..=literal).rev() {
        let Some(path) = path_of(&names[..k]) else { continue };
        if let Ok(real) = std::fs::canonicalize(&path) {
            let mut out = split_names(&real.to_string_lossy());
            out.extend(names[k..].iter().cloned());
            return Some(out);
        }
    }
    None
}

/// An absolute path from its names (the inverse of [`split_names`] for absolute paths).
fn path_of(names: &[String]) -> Option<PathBuf> {
    if cfg!(windows) {
        match names.split_first() {
            Some((drive, rest)) if drive.ends_with(':') => {
                let mut p = PathBuf::from(format!("{drive}\\"));
                p.extend(rest);
                Some(p)
            }
            // \\server\share\...
            _ if names.len() >= 2 => Some(PathBuf::from(format!(r"\\{}", names.join("\\")))),
            _ => None,
        }
    } else {
        let mut p = PathBuf::from("/");
        p.extend(names);
        Some(p)
    }
}

fn display(names: &[String]) -> String {
    if cfg!(windows) {
        match names.first() {
            Some(first) if first.ends_with(':') => names.join("\\"),
            _ => format!(r"\\{}", names.join("\\")),
        }
    } else {
        format!("/{}", names.join("/"))
    }
}

/// A path's components as written (case kept), `.` and `..` resolved lexically, the Windows
/// verbatim prefix (`\\?\`, `\\?\UNC\`) dropped.
pub(crate) fn split_names(path: &str) -> Vec<String> {
    let seps: &[char] = if cfg!(windows) { &['/', '\\'] } else { &['/'] };
    let mut names: Vec<String> = Vec::new();
    for (i, part) in path.split(seps).filter(|p| !p.is_empty()).enumerate() {
        match part {
            "." => {}
            ".." => {
                names.pop();
            }
            "?" if cfg!(windows) && i == 0 => {}
            p if cfg!(windows) && i == 1 && p.eq_ignore_ascii_case("unc") && names.is_empty() => {}
            p => names.push(p.to_owned()),
        }
    }
    names
}

/// The current user's home folder, for `~/` in local-only patterns, or `None` when it cannot
/// be learnt from a source the user does not control (then `~/X` means `X` in any folder).
///
/// On Unix it is the sixth field of the current user's line in `/etc/passwd`, never `$HOME`:
/// any user can set `$HOME` to a folder that does not hold their files. The user is found by the
/// owner of `/proc/self`; without `/proc` (macOS, most BSDs) or without a line in `/etc/passwd`
/// (users from LDAP, SSSD or macOS Directory Services) the home folder is unknown. On Windows
/// it is `%USERPROFILE%`.
pub(crate) fn home_dir() -> Option<PathBuf> {
    static HOME: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    HOME.get_or_init(system_home).clone()
}

#[cfg(unix)]
fn system_home() -> Option<PathBuf> {
    let uid = current_uid()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_home(&passwd, uid)
}

#[cfg(windows)]
fn system_home() -> Option<PathBuf> {
    std::env::var_os("USERPROFILE").filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(not(any(unix, windows)))]
fn system_home() -> Option<PathBuf> {
    None
}

/// The effective user id: the owner of this process's `/proc` entry.
#[cfg(unix)]
pub(crate) fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The home folder of `uid` in `passwd` (the format of `/etc/passwd`): the first line with that
/// uid, as `getpwuid` does; `None` when there is none or its home is not an absolute path.
pub(crate) fn passwd_home(passwd: &str, uid: u32) -> Option<PathBuf> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[2].trim().parse::<u32>().ok() != Some(uid) {
            return None;
        }
        let home = fields[5];
        home.starts_with('/').then(|| PathBuf::from(home))
    })
}
