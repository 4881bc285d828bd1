//! The small glob language of policy patterns: `?` is one character, `*` any run of
//! characters within one name (a host label, a path component), `**` any number of whole
//! names. A model name is a single name, so there `*` also spans `/` and `:`.

/// One name of a pattern: `**`, or a glob over characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Any,
    Name(String),
}

/// Splits `pattern` at `seps` into segments; empty segments are kept so callers can refuse them.
pub(crate) fn segments(pattern: &str, seps: &[char]) -> Vec<Seg> {
    pattern.split(seps).map(|s| if s == "**" { Seg::Any } else { Seg::Name(s.to_owned()) }).collect()
}

/// Whether `name` matches the character glob `pattern` (`*`, `?`, everything else literal).
pub(crate) fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was and how much of `s` it has taken so far: on a mismatch the star
    // takes one more character and matching resumes after it (linear backtracking).
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || (p[i] != '*' && p[i] == s[j])) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Whether the segment pattern matches all of `names` or, with `or_ancestor`, the first `k ≥ 1`
/// of them (a folder that matches covers everything inside it).
pub(crate) fn segments_match(pattern: &[Seg], names: &[&str], or_ancestor: bool) -> bool {
    let (m, n) = (pattern.len(), names.len());
    // done[i][j]: pattern[i..] matches names[j..] (or a prefix of it, ending anywhere past 0).
    let mut done = vec![vec![false; n + 1]; m + 1];
    for (j, cell) in done[m].iter_mut().enumerate() {
        *cell = if or_ancestor { j > 0 } else { j == n };
    }
    for i in (0..m).rev() {
        for j in (0..=n).rev() {
            done[i][j] = match &pattern[i] {
                Seg::Any => done[i + 1][j] || (j < n && done[i][j + 1]),
                Seg::Name(p) => j < n && name_matches(p, names[j]) && done[i + 1][j + 1],
            };
        }
    }
    done[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_stars_and_question_marks() {
        assert!(name_matches("claude-*", "claude-3-5-sonnet"));
        assert!(name_matches("claude-*", "claude-"));
        assert!(!name_matches("claude-*", "claud"));
        assert!(name_matches("llama3*", "llama3.1:8b"));
        assert!(name_matches("*mini*", "gpt-4o-mini-2024"));
        assert!(name_matches("gpt-?o", "gpt-4o"));
        assert!(!name_matches("gpt-?o", "gpt-40o"));
        assert!(name_matches("a*b*c", "axxbyyc"));
        assert!(!name_matches("a*b*c", "axxbyy"));
        assert!(name_matches("*", ""));
        assert!(!name_matches("", "x"));
        assert!(name_matches("ünï*", "ünïcode"));
    }

    #[test]
    fn double_star_spans_any_number_of_names() {
        let p = segments("**/confidential/**", &['/']);
        assert!(segments_match(&p, &["a", "confidential", "b"], false));
        assert!(segments_match(&p, &["confidential"], false));
        assert!(!segments_match(&p, &["a", "confidentials", "b"], false));
        let p = segments("srv/hr", &['/']);
        assert!(segments_match(&p, &["srv", "hr", "x"], true));
        assert!(!segments_match(&p, &["srv", "hr", "x"], false));
        assert!(!segments_match(&p, &["srv"], true));
    }
}
