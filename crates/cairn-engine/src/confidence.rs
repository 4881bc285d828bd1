//! How much an answer can be trusted, from two kinds of evidence:
//!
//! - **retrieval**, before any model runs: how close the best passage is to the question
//!   (cosine), whether the vector and full-text retrievers agree on the best document, and how
//!   many of the question's content words the best passages contain. A logistic model fitted
//!   on SciFact's *train* claims turns these into the probability that the passages hold the
//!   answer (see `RETRIEVAL_MODEL` and ARCHITECTURE.md, "Confidence and review"). Below
//!   `[answer] min_confidence` Cairn abstains without calling a model.
//! - **support**, after generation: each statement of the answer must cite a source it was
//!   given, every number in it must appear in those sources exactly, and most of its content
//!   words must be found there. The share of checkable statements that pass is the support.
//!
//! An answer that declines ("The sources do not say.") is an abstention by the model, not an
//! unsupported answer: its support is `None` and it is never sent for review on that account.
//!
//! Pure functions over text and hits: no I/O, no clock, no model.

use cairn_core::Hit;
use serde::{Deserialize, Serialize};

/// The answer prompt's fixed reply when the sources lack the answer (lower case).
pub(crate) const DECLINE: &str = "the sources do not say";

/// The text of an answer given instead of one the evidence cannot carry.
pub const ABSTAIN_TEXT: &str = "Not enough evidence in your files to answer this.";

/// A statement counts as supported when at least this share of its content words is found in
/// the sources it cites (and every number it states is there exactly). Chosen, not fitted:
/// there is no labelled set of generated answers to fit it on (see ARCHITECTURE.md).
pub const SUPPORTED_SHARE: f32 = 0.5;

/// How many of the best passages the question's words are looked for in, one at a time.
const COVERAGE_DEPTH: usize = 3;

/// Words that frame a question rather than name its subject, on top of `cairn_rank::terms`'
/// stop words ("what was the revenue" is about revenue). Compared after its stemming.
const FRAME_WORDS: &[&str] = &[
    "when", "where", "who", "whom", "whose", "why", "will", "would", "should", "could", "there", "these", "those",
    "about", "tell", "know", "pleas", "explain", "true", "fals", "claim", "yes", "no",
];

/// What retrieval says about a question, before any model runs. Kept with the answer so a
/// reviewer (and the calibration script) can see why the confidence is what it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrievalSignals {
    /// Best cosine similarity between the question and a passage given.
    pub top_cosine: f32,
    /// Best cosine minus the best cosine of another document: how clearly one document leads.
    pub cosine_margin: f32,
    /// True when the vector and the full-text retriever rank the same document first.
    pub agree: bool,
    /// Best share of the question's content words (numbers exactly) found in one of the top
    /// passages.
    pub coverage: f32,
    /// Share of them found anywhere in the passages given.
    pub coverage_all: f32,
    /// Content words (and numbers) of the question.
    pub terms: usize,
}

/// How far an answer can be trusted (0..1), and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    /// The final score: `retrieval × support` (support 1 when there is nothing to check).
    pub score: f32,
    /// The probability, from retrieval alone, that the passages hold the answer.
    pub retrieval: f32,
    /// Share of the answer's checkable statements supported by the sources they cite; `None`
    /// before generation, for a declined answer, and when no statement can be checked.
    pub support: Option<f32>,
    /// In words: what raised or lowered the score.
    pub reasons: Vec<String>,
    pub signals: RetrievalSignals,
}

/// The retrieval model: `P(evidence) = σ(bias + Σ weight × signal)`, signals as in
/// `RetrievalSignals` (`agree` as 0/1). Fitted by `scripts/calibrate_confidence.py` on the
/// retrieval signals of SciFact's train claims (`claims_train.jsonl`); never on the dev claims
/// the figures in BENCHMARKS.md are measured on.
pub(crate) struct RetrievalModel {
    pub bias: f32,
    pub top_cosine: f32,
    pub cosine_margin: f32,
    pub agree: f32,
    pub coverage: f32,
    pub coverage_all: f32,
}

/// Fitted 2026-12-04 on 809 train claims (505 with evidence), MiniLM int8, 6 sources: 5-fold
/// cross-validated log loss 0.495 (a constant model: 0.662; `coverage_all` did not help and is
/// left out); AUC 0.83 on train, 0.80 on the 300 held-out dev claims.
pub(crate) const RETRIEVAL_MODEL: RetrievalModel = RetrievalModel {
    bias: -5.1693,
    top_cosine: 4.3117,
    cosine_margin: 3.9148,
    agree: 0.2610,
    coverage: 5.2067,
    coverage_all: 0.0,
};

impl RetrievalModel {
    fn probability(&self, s: &RetrievalSignals) -> f32 {
        let z = self.bias
            + self.top_cosine * s.top_cosine
            + self.cosine_margin * s.cosine_margin
            + self.agree * f32::from(u8::from(s.agree))
            + self.coverage * s.coverage
            + self.coverage_all * s.coverage_all;
        1.0 / (1.0 + (-z).exp())
    }
}

/// Numbers in `text` as written, thousands separators removed ("1,200" = "1200"; "4.2" stays
/// "4.2"; "4.20" is not "4.2": numbers are compared exactly).
pub(crate) fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut n = String::new();
        while i < chars.len() {
            let c = chars[i];
            let inner = (c == '.' || c == ',') && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() || c == '.' && inner {
                n.push(c);
            } else if !(c == ',' && inner) {
                break;
            }
            i += 1;
        }
        // "2019a" or "3rd" is a label, not a quantity; keep only numbers that end a word.
        if chars.get(i).is_none_or(|c| !c.is_alphabetic() || matches!(c, 'k' | 'm' | 'x')) && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Content words of `text`: `cairn_rank::terms` (lower case, stop words out, light stemming)
/// without framing words and without digits, which `numbers` compares exactly instead.
pub(crate) fn content_words(text: &str) -> Vec<String> {
    cairn_rank::terms(text)
        .into_iter()
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit()) && !FRAME_WORDS.contains(&t.as_str()))
        .collect()
}

/// Words and numbers of one text, for looking things up in it.
struct Vocabulary {
    words: std::collections::HashSet<String>,
    numbers: std::collections::HashSet<String>,
}

impl Vocabulary {
    fn of(text: &str) -> Vocabulary {
        Vocabulary {
            words: cairn_rank::terms(text).into_iter().collect(),
            numbers: numbers(text).into_iter().collect(),
        }
    }
}

/// Share of `words` and `nums` found in `v` (1 when there is nothing to find).
fn covered(words: &[String], nums: &[String], v: &Vocabulary) -> f32 {
    let total = words.len() + nums.len();
    if total == 0 {
        return 1.0;
    }
    let found =
        words.iter().filter(|w| v.words.contains(*w)).count() + nums.iter().filter(|n| v.numbers.contains(*n)).count();
    found as f32 / total as f32
}

fn passage_text(h: &Hit) -> String {
    format!("{}\n{}", h.context, h.text)
}

fn document(h: &Hit) -> &str {
    &h.path
}

/// The retrieval signals of `question` over `hits` (in ranked order, as given to the model).
pub fn retrieval_signals(question: &str, hits: &[Hit]) -> RetrievalSignals {
    let words = content_words(question);
    let nums = numbers(question);
    let best =
        hits.iter().filter_map(|h| h.vector_score.map(|s| (s, document(h)))).fold(None, |acc, (s, d)| match acc {
            Some((b, _)) if b >= s => acc,
            _ => Some((s, d)),
        });
    let top_cosine = best.map(|(s, _)| s).unwrap_or(0.0);
    let runner_up = best
        .and_then(|(_, leader)| {
            hits.iter()
                .filter(|h| document(h) != leader)
                .filter_map(|h| h.vector_score)
                .fold(None, |m: Option<f32>, s| Some(m.map_or(s, |m| m.max(s))))
        })
        .unwrap_or(0.0);
    let first_by = |rank: fn(&Hit) -> Option<u32>| hits.iter().filter(|h| rank(h) == Some(1)).map(document).next();
    let agree = match (first_by(|h| h.vector_rank), first_by(|h| h.text_rank)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    let coverage = hits
        .iter()
        .take(COVERAGE_DEPTH)
        .map(|h| covered(&words, &nums, &Vocabulary::of(&passage_text(h))))
        .fold(0.0, f32::max);
    let all: String = hits.iter().map(passage_text).collect::<Vec<_>>().join("\n");
    let coverage_all = if hits.is_empty() { 0.0 } else { covered(&words, &nums, &Vocabulary::of(&all)) };
    RetrievalSignals {
        top_cosine,
        cosine_margin: (top_cosine - runner_up).max(0.0),
        agree,
        coverage,
        coverage_all,
        terms: words.len() + nums.len(),
    }
}

/// Confidence from retrieval alone: the fitted probability and the reasons behind it.
pub fn from_retrieval(question: &str, hits: &[Hit]) -> Confidence {
    let signals = retrieval_signals(question, hits);
    let retrieval = if hits.is_empty() { 0.0 } else { RETRIEVAL_MODEL.probability(&signals) };
    let mut reasons = vec![format!(
        "best passage similarity {:.2}; {:.0}% of the question's words in one of the top passages; {}",
        signals.top_cosine,
        signals.coverage * 100.0,
        if signals.agree {
            "both retrievers rank the same document first"
        } else {
            "the two retrievers disagree on the best document"
        }
    )];
    if hits.is_empty() {
        reasons = vec!["nothing in the index matches the question".into()];
    }
    Confidence { score: retrieval, retrieval, support: None, reasons, signals }
}

/// True when the answer declines: it says the sources do not hold the answer, and makes no
/// other checkable statement.
pub fn is_decline(text: &str) -> bool {
    let statements = statements(text);
    !statements.is_empty()
        && statements.iter().any(|s| s.to_lowercase().contains(DECLINE))
        && statements.iter().all(|s| s.to_lowercase().contains(DECLINE) || !checkable(s))
}

/// Splits an answer into statements: at a sentence end (". ", "? ", "! " or a line break),
/// with citation markers written after the full stop ("Sales rose. [1]") kept with the
/// sentence before them. Decimal points ("4.2") do not end a sentence.
pub(crate) fn statements(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            push_statement(&mut out, &mut cur);
            i += 1;
            continue;
        }
        cur.push(c);
        // "2." or "2)" opening a list item is its number, not a sentence.
        let enumerator = is_enumerator(cur.trim_start_matches([' ', '-', '*', '•']));
        let ends = matches!(c, '.' | '?' | '!') && chars.get(i + 1).is_none_or(|n| n.is_whitespace()) && !enumerator;
        if ends {
            // Markers right after the stop belong to this sentence.
            let mut j = i + 1;
            loop {
                let mut k = j;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                if chars.get(k) != Some(&'[') {
                    break;
                }
                let Some(close) = chars[k..].iter().position(|&c| c == ']') else { break };
                let inner: String = chars[k + 1..k + close].iter().collect();
                if inner.split(',').any(|p| p.trim().parse::<u32>().is_err()) {
                    break;
                }
                cur.extend(&chars[j..k + close + 1]);
                j = k + close + 1;
            }
            i = j;
            push_statement(&mut out, &mut cur);
            continue;
        }
        i += 1;
    }
    push_statement(&mut out, &mut cur);
    out
}

/// "3." or "3)": a list item's number.
fn is_enumerator(s: &str) -> bool {
    let Some(body) = s.strip_suffix(['.', ')']) else { return false };
    !body.is_empty() && body.len() <= 3 && body.chars().all(|c| c.is_ascii_digit())
}

/// Adds the statement in `cur` without its bullet or list number (which is not a quantity).
fn push_statement(out: &mut Vec<String>, cur: &mut String) {
    let mut s = cur.trim().trim_start_matches(['-', '*', '•']).trim();
    if let Some((first, rest)) = s.split_once(char::is_whitespace)
        && is_enumerator(first)
    {
        s = rest.trim();
    }
    if !s.is_empty() && !is_enumerator(s) {
        out.push(s.to_owned());
    }
    cur.clear();
}

/// `[n]` numbers cited in `statement` and its text without the markers.
fn citations(statement: &str) -> (Vec<u32>, String) {
    let mut cited = Vec::new();
    let mut text = String::new();
    let mut rest = statement;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            text.push_str(&rest[open..]);
            rest = "";
            break;
        };
        match after[..close].split(',').map(|p| p.trim().parse::<u32>()).collect::<Result<Vec<u32>, _>>() {
            Ok(ns) => cited.extend(ns),
            Err(_) => text.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    text.push_str(rest);
    (cited, text)
}

/// A statement says something checkable when it has at least two content words or a number,
/// and is not a lead-in to a list ("Two reasons:").
fn checkable(statement: &str) -> bool {
    let (_, text) = citations(statement);
    if text.trim_end().ends_with(':') {
        return false;
    }
    !numbers(&text).is_empty() || content_words(&text).len() >= 2
}

/// Why one statement is or is not supported, `None` when it is.
fn statement_problem(statement: &str, sources: &[&str]) -> Option<String> {
    let (cited, text) = citations(statement);
    let valid: Vec<u32> = cited.into_iter().filter(|n| *n >= 1 && (*n as usize) <= sources.len()).collect();
    if valid.is_empty() {
        return Some("cites no source".into());
    }
    let cited_text: String = valid.iter().map(|n| sources[*n as usize - 1]).collect::<Vec<_>>().join("\n");
    let v = Vocabulary::of(&cited_text);
    let markers: Vec<String> = valid.iter().map(|n| format!("[{n}]")).collect();
    let missing: Vec<String> = numbers(&text).into_iter().filter(|n| !v.numbers.contains(n)).collect();
    if !missing.is_empty() {
        return Some(format!("states {} which {} does not contain", missing.join(", "), markers.join("")));
    }
    let words = content_words(&text);
    let share = covered(&words, &[], &v);
    if share < SUPPORTED_SHARE {
        let found = (share * words.len() as f32).round() as usize;
        return Some(format!("only {found} of its {} words are in {}", words.len(), markers.join("")));
    }
    None
}

fn quote(s: &str) -> String {
    let short: String = s.chars().take(60).collect();
    if short.len() < s.len() { format!("\"{short}…\"") } else { format!("\"{short}\"") }
}

/// Adds the support of a generated `answer` to a retrieval confidence. `sources[n - 1]` is the
/// full text of the source the model was given as `[n]`.
pub fn with_support(mut c: Confidence, answer: &str, sources: &[&str]) -> Confidence {
    if is_decline(answer) {
        c.support = None;
        c.score = c.retrieval;
        c.reasons.push("the model said the sources do not hold the answer".into());
        return c;
    }
    let checked: Vec<(String, Option<String>)> = statements(answer)
        .into_iter()
        .filter(|s| checkable(s) && !s.to_lowercase().contains(DECLINE))
        .map(|s| {
            let problem = statement_problem(&s, sources);
            (s, problem)
        })
        .collect();
    if checked.is_empty() {
        c.support = None;
        c.score = c.retrieval;
        c.reasons.push("the answer states nothing that can be checked against its sources".into());
        return c;
    }
    let supported = checked.iter().filter(|(_, p)| p.is_none()).count();
    let support = supported as f32 / checked.len() as f32;
    c.support = Some(support);
    c.score = c.retrieval * support;
    c.reasons.push(format!("{supported} of {} statements supported by the sources they cite", checked.len()));
    for (i, (s, problem)) in checked.iter().enumerate() {
        if let Some(p) = problem {
            c.reasons.push(format!("statement {} {}: {p}", i + 1, quote(s)));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, text: &str, v: Option<(u32, f32)>, t: Option<u32>) -> Hit {
        Hit {
            chunk_id: format!("{path}#0"),
            path: path.into(),
            ordinal: 0,
            text: text.into(),
            anchor: Default::default(),
            score: 0.0,
            vector_rank: v.map(|(r, _)| r),
            vector_score: v.map(|(_, s)| s),
            text_rank: t,
            text_score: t.map(|r| 10.0 / r as f32),
            context: String::new(),
            features: Vec::new(),
        }
    }

    const HERON: &str = "The Heron division's quarterly revenue was 4.2 million dollars, up 8 percent.";

    #[test]
    fn numbers_are_compared_exactly_and_separators_do_not_matter() {
        assert_eq!(numbers("Revenue was 4.2 million, 1,200 staff, in 2019. Item 3rd."), ["4.2", "1200", "2019"]);
        assert_eq!(numbers("Version 4.20 and 4.2."), ["4.20", "4.2"]);
        assert!(numbers("COVID-19a and v2").is_empty());
    }

    #[test]
    fn a_sentence_with_a_number_not_in_its_source_is_unsupported() {
        let sources = [HERON];
        let good = with_support(
            Confidence { retrieval: 0.8, ..Default::default() },
            "Revenue was 4.2 million dollars [1].",
            &sources,
        );
        assert_eq!(good.support, Some(1.0));
        assert!((good.score - 0.8).abs() < 1e-6);
        let bad = with_support(
            Confidence { retrieval: 0.8, ..Default::default() },
            "Revenue was 9.9 million dollars [1].",
            &sources,
        );
        assert_eq!(bad.support, Some(0.0));
        assert_eq!(bad.score, 0.0);
        assert!(bad.reasons.iter().any(|r| r.contains("9.9") && r.contains("[1]")), "{:?}", bad.reasons);
    }

    #[test]
    fn uncited_or_off_source_statements_lower_the_support_by_their_share() {
        let sources = [HERON, "The ferry to the island leaves at seven every morning."];
        let text = "The Heron division's quarterly revenue was 4.2 million dollars [1]. \
                    The ferry leaves every morning. Tides flood the harbour cellars each winter [2].";
        let c = with_support(Confidence { retrieval: 0.9, ..Default::default() }, text, &sources);
        assert_eq!(c.support, Some(1.0 / 3.0), "{:?}", c.reasons);
        assert!(c.reasons.iter().any(|r| r.starts_with("statement 2") && r.contains("cites no source")));
        assert!(c.reasons.iter().any(|r| r.starts_with("statement 3") && r.contains("words are in [2]")));
        // A citation to a source that was never given supports nothing.
        let c =
            with_support(Confidence { retrieval: 0.9, ..Default::default() }, "Revenue was 4.2 million [7].", &sources);
        assert_eq!(c.support, Some(0.0));
    }

    #[test]
    fn a_declining_answer_is_an_abstention_not_low_support() {
        let c = with_support(Confidence { retrieval: 0.7, ..Default::default() }, "The sources do not say.", &[HERON]);
        assert_eq!((c.support, c.score), (None, 0.7));
        assert!(is_decline("The sources do not say."));
        // Answering part and declining the rest is an answer, and its statements are checked.
        let partial = "Revenue was 4.2 million dollars [1]. The sources do not say the rest.";
        assert!(!is_decline(partial));
        assert_eq!(
            with_support(Confidence { retrieval: 0.7, ..Default::default() }, partial, &[HERON]).support,
            Some(1.0)
        );
    }

    #[test]
    fn statements_split_at_sentence_ends_not_decimals_and_keep_trailing_markers() {
        assert_eq!(
            statements("Revenue was 4.2 million. [1] Margins fell [2].\n- Costs rose? Yes!"),
            ["Revenue was 4.2 million. [1]", "Margins fell [2].", "Costs rose?", "Yes!"]
        );
        // A numbered list: the item numbers are neither statements nor quantities to check.
        assert_eq!(
            statements("Two reasons:\n1. Revenue was 4.2 million [1].\n2) Margins fell [2]. 3. Costs rose."),
            ["Two reasons:", "Revenue was 4.2 million [1].", "Margins fell [2].", "Costs rose."]
        );
        let c = with_support(
            Confidence { retrieval: 0.8, ..Default::default() },
            "Two figures:\n1. Revenue was 4.2 million [1].\n2. It was up 8 percent [1].",
            &[HERON],
        );
        assert_eq!(c.support, Some(1.0), "the lead-in and the item numbers are not claims: {:?}", c.reasons);
    }

    #[test]
    fn retrieval_confidence_rises_with_a_close_agreed_well_covered_passage() {
        let q = "What was the Heron division's quarterly revenue?";
        let strong =
            [hit("/heron.md", HERON, Some((1, 0.72)), Some(1)), hit("/ferry.md", "ferry", Some((2, 0.2)), None)];
        let weak = [
            hit("/ferry.md", "The ferry to the island leaves at seven.", Some((1, 0.18)), None),
            hit("/tides.md", "Spring tides reach four metres.", Some((2, 0.15)), Some(1)),
        ];
        let s = retrieval_signals(q, &strong);
        assert!(s.agree && s.coverage == 1.0 && (s.cosine_margin - 0.52).abs() < 1e-6, "{s:?}");
        let w = retrieval_signals(q, &weak);
        assert!(!w.agree && w.coverage == 0.0, "{w:?}");
        assert!(from_retrieval(q, &strong).retrieval > from_retrieval(q, &weak).retrieval);
        assert_eq!(from_retrieval(q, &[]).retrieval, 0.0);
    }
}
