//! Blocks to chunks that fit the embedder: consecutive blocks under the same heading path and on
//! the same page are packed up to a token target; a block too long for the target is split at
//! sentence, then word, then grapheme (then, as a last resort, char) boundaries, with the last
//! sentence(s) of one piece repeated at the start of the next.
//!
//! Token counts come only from the given `TokenCounter`, never from character estimates. Pieces
//! are counted one by one and summed to plan a chunk, and every assembled chunk is counted for
//! real before it is emitted: a chunk over `max_tokens()` is re-split, so none ever exceeds it.
//! Deliberately not semantic chunking: no embeddings, no topic detection.

use cairn_core::{Anchor, Block, ChunkDraft, Document, TokenCounter};
use std::collections::VecDeque;
use unicode_segmentation::UnicodeSegmentation;

/// How chunks are sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Tokens a chunk aims for (context line and special tokens included). Capped at the
    /// counter's `max_tokens()`.
    pub target_tokens: usize,
    /// Sentences repeated from the end of one piece of a long block at the start of the next.
    pub overlap_sentences: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions { target_tokens: 200, overlap_sentences: 1 }
    }
}

/// The separator between title and headings in a chunk's context line.
pub const CONTEXT_SEPARATOR: &str = " › ";

/// Cuts `doc` into chunks whose `embed_text()` never exceeds `counter.max_tokens()`.
pub fn chunk(doc: &Document, counter: &dyn TokenCounter, opts: &ChunkOptions) -> Vec<ChunkDraft> {
    let blocks: Vec<&Block> = doc.blocks.iter().filter(|b| !b.text.trim().is_empty()).collect();
    let mut chunker = Chunker::new(counter, opts);
    let mut start = 0;
    while start < blocks.len() {
        let first = blocks.get(start).map(|b| &b.anchor);
        let len = blocks
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| first.is_some_and(|a| a.heading == b.anchor.heading && a.page == b.anchor.page))
            .count()
            .max(1);
        let group = blocks.get(start..start + len).unwrap_or_default();
        chunker.group(doc.title.as_deref(), group);
        start += len;
    }
    chunker.out
}

/// How finely a unit was cut from its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Block,
    Sentence,
    Word,
    Grapheme,
    Char,
}

impl Level {
    fn finer(self) -> Option<Level> {
        match self {
            Level::Block => Some(Level::Sentence),
            Level::Sentence => Some(Level::Word),
            Level::Word => Some(Level::Grapheme),
            Level::Grapheme => Some(Level::Char),
            Level::Char => None,
        }
    }
}

/// A byte range of one block's text, with its estimated token cost (specials excluded).
#[derive(Clone, Copy, Debug)]
struct Unit {
    block: usize,
    start: usize,
    end: usize,
    level: Level,
    cost: usize,
}

/// A block of the current group, with the positions of its line breaks when its text holds
/// exactly one line per line of its anchor (then pieces of it get exact line anchors).
struct GroupBlock<'a> {
    block: &'a Block,
    newlines: Option<Vec<usize>>,
}

struct Chunker<'c> {
    counter: &'c dyn TokenCounter,
    max: usize,
    target: usize,
    overlap: usize,
    specials: usize,
    out: Vec<ChunkDraft>,
}

impl<'c> Chunker<'c> {
    fn new(counter: &'c dyn TokenCounter, opts: &ChunkOptions) -> Self {
        let max = counter.max_tokens();
        Chunker {
            counter,
            max,
            target: opts.target_tokens.min(max).max(1),
            overlap: opts.overlap_sentences,
            specials: counter.count(""),
            out: Vec::new(),
        }
    }

    /// Tokens `text` adds to a chunk (its count without the special tokens).
    fn cost(&self, text: &str) -> usize {
        if text.is_empty() { 0 } else { self.counter.count(text).saturating_sub(self.specials) }
    }

    fn group(&mut self, title: Option<&str>, blocks: &[&Block]) {
        let Some(first) = blocks.first() else { return };
        let context = self.context(title, &first.anchor.heading);
        let base = self.specials + if context.is_empty() { 0 } else { self.cost(&context) + self.cost("\n") };
        let budget = self.target.saturating_sub(base);
        let group: Vec<GroupBlock<'_>> =
            blocks.iter().map(|b| GroupBlock { block: b, newlines: exact_newlines(b) }).collect();

        let mut queue = VecDeque::new();
        for (i, b) in group.iter().enumerate() {
            let unit = Unit {
                block: i,
                start: 0,
                end: b.block.text.len(),
                level: Level::Block,
                cost: self.cost(&b.block.text),
            };
            self.split_to_budget(&b.block.text, unit, budget, &mut queue);
        }

        let (sep_line, sep_para, sep_space) = (self.cost("\n"), self.cost("\n\n"), self.cost(" "));
        let join_cost = |a: &Unit, b: &Unit| match joiner(&group, a, b) {
            "\n" => sep_line,
            "\n\n" => sep_para,
            " " => sep_space,
            _ => 0,
        };
        let estimate = |units: &[Unit]| {
            base + units.iter().map(|u| u.cost).sum::<usize>()
                + units
                    .windows(2)
                    .map(|w| match w {
                        [a, b] => join_cost(a, b),
                        _ => 0,
                    })
                    .sum::<usize>()
        };

        let mut overlap: Vec<Unit> = Vec::new();
        while let Some(&first) = queue.front() {
            while !overlap.is_empty() && estimate(&[overlap.as_slice(), &[first]].concat()) > self.target {
                overlap.remove(0);
            }
            let mut new = Vec::new();
            let mut est = estimate(&[overlap.as_slice(), &[first]].concat());
            new.push(first);
            queue.pop_front();
            while let (Some(next), Some(last)) = (queue.front(), new.last()) {
                let add = join_cost(last, next) + next.cost;
                if est + add > self.target {
                    break;
                }
                est += add;
                new.push(*next);
                queue.pop_front();
            }

            let mut emitted = false;
            loop {
                let units: Vec<Unit> = overlap.iter().chain(new.iter()).copied().collect();
                let Some(mut draft) = assemble(&group, &units, &context) else { break };
                let tokens = self.counter.count(&draft.embed_text());
                if tokens <= self.max {
                    draft.tokens = tokens;
                    draft.ordinal = u32::try_from(self.out.len()).unwrap_or(u32::MAX);
                    self.out.push(draft);
                    emitted = true;
                    break;
                }
                // Over the limit although the plan said it fits: give back the last piece, then
                // the overlap, then cut the single remaining piece finer.
                if new.len() > 1 {
                    if let Some(u) = new.pop() {
                        queue.push_front(u);
                    }
                } else if !overlap.is_empty() {
                    overlap.clear();
                } else {
                    if let Some(u) = new.pop()
                        && let Some(b) = group.get(u.block)
                    {
                        let pieces = self.refine(&b.block.text, u);
                        for p in pieces.into_iter().rev() {
                            queue.push_front(p);
                        }
                    }
                    break;
                }
            }

            overlap = if emitted { self.next_overlap(&overlap, &new, queue.front()) } else { Vec::new() };
        }
    }

    /// The last sentences of the chunk just emitted, when the next chunk continues the same block.
    fn next_overlap(&self, overlap: &[Unit], new: &[Unit], next: Option<&Unit>) -> Vec<Unit> {
        let (Some(last), Some(next)) = (new.last(), next) else { return Vec::new() };
        if self.overlap == 0 || last.level != Level::Sentence || next.block != last.block {
            return Vec::new();
        }
        let mut carried: Vec<Unit> = overlap
            .iter()
            .chain(new.iter())
            .rev()
            .take_while(|u| u.level == Level::Sentence && u.block == last.block)
            .take(self.overlap)
            .copied()
            .collect();
        carried.reverse();
        carried
    }

    /// Splits `unit` until every piece fits `budget` (or is a single char), appending to `out`.
    fn split_to_budget(&self, text: &str, unit: Unit, budget: usize, out: &mut VecDeque<Unit>) {
        if unit.cost <= budget || unit.level == Level::Char {
            out.push_back(unit);
            return;
        }
        let pieces = self.refine(text, unit);
        if pieces.is_empty() {
            // Cannot be cut finer (one char): keep it; the real count decides.
            out.push_back(unit);
        }
        for piece in pieces {
            self.split_to_budget(text, piece, budget, out);
        }
    }

    /// `unit` cut one level finer (skipping levels that do not cut it), each piece counted.
    /// Empty only when the unit is a single char, which is then dropped.
    fn refine(&self, text: &str, unit: Unit) -> Vec<Unit> {
        let Some(slice) = text.get(unit.start..unit.end) else { return Vec::new() };
        let mut level = unit.level;
        while let Some(finer) = level.finer() {
            level = finer;
            let bounds = split(slice, level);
            if bounds.len() > 1 {
                return bounds
                    .into_iter()
                    .map(|(s, e)| Unit {
                        block: unit.block,
                        start: unit.start + s,
                        end: unit.start + e,
                        level,
                        cost: self.cost(slice.get(s..e).unwrap_or_default()),
                    })
                    .collect();
            }
        }
        Vec::new()
    }

    /// Title and heading path as one line, shortened to at most a quarter of the token limit
    /// (and half the target): outer parts are dropped first, then the innermost is cut.
    fn context(&self, title: Option<&str>, heading: &[String]) -> String {
        let mut parts: Vec<String> = Vec::new();
        for part in title.into_iter().chain(heading.iter().map(String::as_str)) {
            let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
            if !part.is_empty() && parts.last() != Some(&part) {
                parts.push(part);
            }
        }
        let budget = (self.max / 4).min(self.target / 2);
        loop {
            let line = parts.join(CONTEXT_SEPARATOR);
            if line.is_empty() || self.cost(&line) <= budget {
                return line;
            }
            if parts.len() > 1 {
                parts.remove(0);
                continue;
            }
            return self.truncate(&line, budget);
        }
    }

    /// The longest grapheme prefix of `line` (plus an ellipsis) that costs at most `budget`.
    fn truncate(&self, line: &str, budget: usize) -> String {
        let ends: Vec<usize> = line.grapheme_indices(true).map(|(i, g)| i + g.len()).collect();
        let candidate = |k: usize| -> String {
            match k.checked_sub(1).and_then(|i| ends.get(i)) {
                Some(&end) => format!("{}…", line.get(..end).unwrap_or_default().trim_end()),
                None => String::new(),
            }
        };
        let (mut lo, mut hi) = (0usize, ends.len());
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.cost(&candidate(mid)) <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        candidate(lo)
    }
}

/// Byte ranges of `text` cut at `level` boundaries. Spaces and punctuation stay attached to the
/// word before them so no piece starts with a space or a stray full stop.
fn split(text: &str, level: Level) -> Vec<(usize, usize)> {
    let ranges: Vec<(usize, usize)> = match level {
        Level::Block => vec![(0, text.len())],
        Level::Sentence => text.split_sentence_bound_indices().map(|(i, s)| (i, i + s.len())).collect(),
        Level::Word => {
            let mut out: Vec<(usize, usize)> = Vec::new();
            for (i, w) in text.split_word_bound_indices() {
                match out.last_mut() {
                    Some(last) if !w.chars().any(char::is_alphanumeric) => last.1 = i + w.len(),
                    _ => out.push((i, i + w.len())),
                }
            }
            out
        }
        Level::Grapheme => text.grapheme_indices(true).map(|(i, g)| (i, i + g.len())).collect(),
        Level::Char => text.char_indices().map(|(i, c)| (i, i + c.len_utf8())).collect(),
    };
    ranges
}

/// Positions of `\n` in a block whose text has exactly one line per line of its anchor.
fn exact_newlines(block: &Block) -> Option<Vec<usize>> {
    let (start, end) = (block.anchor.line_start?, block.anchor.line_end?);
    let newlines: Vec<usize> = block.text.match_indices('\n').map(|(i, _)| i).collect();
    (usize::try_from(end.checked_sub(start)?).ok()? == newlines.len()).then_some(newlines)
}

/// What goes between two consecutive units: nothing inside a block, a line break between
/// blocks on adjacent lines, a blank line between other blocks.
fn joiner(group: &[GroupBlock<'_>], a: &Unit, b: &Unit) -> &'static str {
    if a.block == b.block {
        return if a.end == b.start { "" } else { " " };
    }
    let (Some(x), Some(y)) = (group.get(a.block), group.get(b.block)) else { return "\n\n" };
    match (x.block.anchor.line_end, y.block.anchor.line_start) {
        (Some(end), Some(start)) if end.checked_add(1) == Some(start) => "\n",
        _ => "\n\n",
    }
}

/// The anchor of one unit: its block's, narrowed to the unit's lines when they are known.
fn unit_anchor(group: &[GroupBlock<'_>], u: &Unit) -> Anchor {
    let Some(b) = group.get(u.block) else { return Anchor::default() };
    let mut anchor = b.block.anchor.clone();
    if let (Some(newlines), Some(first)) = (&b.newlines, b.block.anchor.line_start) {
        let text = b.block.text.get(u.start..u.end).unwrap_or_default();
        let last_byte = u.start + text.trim_end().len().max(1) - 1;
        let line = |offset: usize| {
            first.saturating_add(u32::try_from(newlines.partition_point(|&n| n < offset)).unwrap_or(u32::MAX))
        };
        // A unit starting on a line break begins on the next line.
        let start = line(u.start + text.len() - text.trim_start_matches('\n').len());
        anchor.line_start = Some(start);
        anchor.line_end = Some(line(last_byte).max(start));
    }
    anchor
}

/// The chunk made of `units` (text trimmed at both ends), or `None` if it holds no text.
fn assemble(group: &[GroupBlock<'_>], units: &[Unit], context: &str) -> Option<ChunkDraft> {
    let mut text = String::new();
    let mut anchor: Option<Anchor> = None;
    let mut prev: Option<&Unit> = None;
    for u in units {
        let Some(b) = group.get(u.block) else { continue };
        if let Some(p) = prev {
            text.push_str(joiner(group, p, u));
        }
        text.push_str(b.block.text.get(u.start..u.end).unwrap_or_default());
        let a = unit_anchor(group, u);
        anchor = Some(match anchor {
            Some(prev) => prev.merge(&a),
            None => a,
        });
        prev = Some(u);
    }
    // Indentation is kept when the chunk starts where its block does (code, indented text).
    let starts_block = units.first().is_some_and(|u| u.start == 0);
    let trimmed = if starts_block { text.trim_start_matches(['\n', '\r']) } else { text.trim_start() };
    let trimmed = trimmed.trim_end();
    if trimmed.trim().is_empty() {
        return None;
    }
    Some(ChunkDraft {
        ordinal: 0,
        text: trimmed.to_owned(),
        context: context.to_owned(),
        anchor: anchor.unwrap_or_default(),
        tokens: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::WhitespaceCounter;

    /// One token per char plus two specials: makes every grapheme cut visible.
    struct CharCounter {
        max: usize,
    }

    impl TokenCounter for CharCounter {
        fn count(&self, text: &str) -> usize {
            text.chars().count() + 2
        }
        fn max_tokens(&self) -> usize {
            self.max
        }
    }

    /// Counts more for longer texts than for their parts, so planned sums under-estimate and
    /// the final real count has to catch it.
    struct GreedyCounter {
        max: usize,
    }

    impl TokenCounter for GreedyCounter {
        fn count(&self, text: &str) -> usize {
            let words = text.split_whitespace().count();
            words + words * words / 40 + 2
        }
        fn max_tokens(&self) -> usize {
            self.max
        }
    }

    fn block(text: &str, heading: &[&str]) -> Block {
        Block {
            text: text.to_owned(),
            anchor: Anchor { heading: heading.iter().map(|s| s.to_string()).collect(), ..Default::default() },
        }
    }

    fn doc(title: Option<&str>, blocks: Vec<Block>) -> Document {
        Document { title: title.map(str::to_owned), blocks, warnings: Vec::new() }
    }

    /// Checks the invariants every chunking must keep and returns the chunks.
    fn check(d: &Document, counter: &dyn TokenCounter, opts: &ChunkOptions) -> Vec<ChunkDraft> {
        let chunks = chunk(d, counter, opts);
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.ordinal as usize, i);
            assert_eq!(c.tokens, counter.count(&c.embed_text()), "chunk {i}");
            assert!(c.tokens <= counter.max_tokens(), "chunk {i} has {} tokens > {}", c.tokens, counter.max_tokens());
            assert!(!c.context.contains('\n'));
            assert!(!c.text.trim().is_empty());
        }
        chunks
    }

    fn words_doc(n: usize, sentence_len: usize) -> (Document, Vec<String>) {
        let words: Vec<String> = (0..n).map(|i| format!("W{i}")).collect();
        let mut text = String::new();
        for (i, w) in words.iter().enumerate() {
            text.push_str(w);
            text.push_str(if (i + 1) % sentence_len == 0 { ". " } else { " " });
        }
        (doc(None, vec![block(text.trim_end(), &[])]), words)
    }

    fn all_words(chunks: &[ChunkDraft]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| c.text.split_whitespace().map(|w| w.trim_end_matches('.').to_owned()))
            .filter(|w| !w.is_empty())
            .collect()
    }

    #[test]
    fn no_chunk_over_max_and_no_word_lost() {
        let (d, words) = words_doc(20_000, 12);
        let counter = WhitespaceCounter { max: 64 };
        let chunks = check(&d, &counter, &ChunkOptions::default());
        let mut seen = all_words(&chunks);
        seen.sort();
        seen.dedup();
        let mut want = words.clone();
        want.sort();
        assert!(seen == want, "{} distinct words seen, {} written", seen.len(), want.len());
        // Chunks are well filled, not crumbs.
        assert!(chunks.len() < 20_000 / 40, "{} chunks", chunks.len());

        let exact = check(&d, &counter, &ChunkOptions { overlap_sentences: 0, ..Default::default() });
        assert!(all_words(&exact) == words, "without overlap the chunks are the text, in order");
    }

    #[test]
    fn a_sentence_without_punctuation_longer_than_max_splits_by_words() {
        let (d, words) = words_doc(5_000, 100_000);
        let chunks = check(&d, &WhitespaceCounter { max: 32 }, &ChunkOptions::default());
        assert!(all_words(&chunks) == words);
    }

    #[test]
    fn long_runs_without_whitespace_split_by_grapheme_without_loss() {
        let run: String = (0..10_000).map(|i| if i % 3 == 0 { '😀' } else { 'é' }).collect();
        let cjk: String = "漢字かな交じり文".chars().cycle().take(10_000).collect();
        let zalgo = format!("a{}", "\u{301}".repeat(500));
        for text in [run, cjk, "x".repeat(10_000), zalgo] {
            let d = doc(Some("Title"), vec![block(&text, &["Heading"])]);
            let chunks = check(&d, &CharCounter { max: 50 }, &ChunkOptions::default());
            assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<String>(), text);
        }
    }

    #[test]
    fn an_under_estimating_tokenizer_is_caught_by_the_real_count() {
        let (d, words) = words_doc(3_000, 1_000);
        let chunks = check(&d, &GreedyCounter { max: 60 }, &ChunkOptions { target_tokens: 60, overlap_sentences: 0 });
        assert!(all_words(&chunks) == words);
    }

    #[test]
    fn impossible_limits_do_not_panic_or_loop() {
        let d = doc(Some("T"), vec![block("some text here. And more.", &["H"])]);
        for max in [0, 1, 2, 3] {
            check(&d, &WhitespaceCounter { max }, &ChunkOptions::default());
            check(&d, &CharCounter { max }, &ChunkOptions { target_tokens: 0, overlap_sentences: 5 });
        }
        assert!(chunk(&doc(None, vec![]), &WhitespaceCounter { max: 10 }, &ChunkOptions::default()).is_empty());
    }

    #[test]
    fn heading_path_is_the_context_and_groups_do_not_mix() {
        let d = doc(
            Some("Guide"),
            vec![
                block("Intro.", &["Guide"]),
                block("Run cargo build.", &["Guide", "Install"]),
                block("Then cargo test.", &["Guide", "Install"]),
                block("Use it.", &["Guide", "Usage"]),
            ],
        );
        let chunks = check(&d, &WhitespaceCounter { max: 64 }, &ChunkOptions::default());
        let got: Vec<(&str, &str)> = chunks.iter().map(|c| (c.context.as_str(), c.text.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Guide", "Intro."),
                ("Guide › Install", "Run cargo build.\n\nThen cargo test."),
                ("Guide › Usage", "Use it."),
            ]
        );
        assert_eq!(chunks[1].anchor.heading, ["Guide", "Install"]);
    }

    #[test]
    fn long_context_is_cut_to_a_quarter_of_max() {
        let long = vec!["word"; 100].join(" ");
        let counter = WhitespaceCounter { max: 64 };
        let chunks = check(&doc(None, vec![block("body text", &[&long])]), &counter, &ChunkOptions::default());
        assert!(counter.count(&chunks[0].context) - 2 <= 16, "{}", chunks[0].context);
        assert!(chunks[0].context.starts_with("word word") && chunks[0].context.ends_with('…'));
        // Outer parts go first: the innermost heading is the most specific.
        let d = doc(Some(&long), vec![block("body text", &[&long, "Inner"])]);
        assert_eq!(check(&d, &counter, &ChunkOptions::default())[0].context, "Inner");
        assert_eq!(check(&d, &CharCounter { max: 64 }, &ChunkOptions::default())[0].context, "Inner");
    }

    #[test]
    fn overlap_repeats_the_last_sentence_within_a_block_only() {
        let a = "One two three. Four five six. Seven eight nine. Ten eleven twelve. Thirteen fourteen.";
        let b = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota.";
        let d = doc(None, vec![block(a, &[]), block(b, &["H"])]);
        let chunks = check(&d, &WhitespaceCounter { max: 10 }, &ChunkOptions::default());
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "Seven eight nine. Ten eleven twelve. Thirteen fourteen.",
                "Alpha beta gamma. Delta epsilon zeta.",
                "Delta epsilon zeta. Eta theta iota.",
            ]
        );
    }

    #[test]
    fn pages_split_chunks_and_anchor_where_they_start() {
        let page = |text: &str, p: u32| Block {
            text: text.to_owned(),
            anchor: Anchor { page: Some(p), ..Default::default() },
        };
        let d = doc(None, vec![page("alpha page one", 1), page("more on one", 1), page("beta page two", 2)]);
        let chunks = check(&d, &WhitespaceCounter { max: 64 }, &ChunkOptions::default());
        let got: Vec<(&str, Option<u32>)> = chunks.iter().map(|c| (c.text.as_str(), c.anchor.page)).collect();
        assert_eq!(got, [("alpha page one\n\nmore on one", Some(1)), ("beta page two", Some(2))]);
    }

    #[test]
    fn pieces_of_a_long_text_block_get_their_own_lines() {
        let lines: Vec<String> = (1..=30).map(|i| format!("line {i} has words.")).collect();
        let b = Block {
            text: lines.join("\n"),
            anchor: Anchor { line_start: Some(11), line_end: Some(40), ..Default::default() },
        };
        let chunks = check(
            &doc(None, vec![b]),
            &WhitespaceCounter { max: 14 },
            &ChunkOptions { target_tokens: 14, overlap_sentences: 0 },
        );
        assert!(chunks.len() > 1);
        for c in &chunks {
            let first: u32 = c.text.split_whitespace().nth(1).unwrap().parse().unwrap();
            let last: u32 = c.text.lines().last().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
            assert_eq!((c.anchor.line_start, c.anchor.line_end), (Some(first + 10), Some(last + 10)), "{:?}", c.text);
        }
        // Adjacent-line blocks join with a single line break.
        let a =
            Block { text: "a".into(), anchor: Anchor { line_start: Some(1), line_end: Some(1), ..Default::default() } };
        let b =
            Block { text: "b".into(), anchor: Anchor { line_start: Some(2), line_end: Some(2), ..Default::default() } };
        let chunks = check(&doc(None, vec![a, b]), &WhitespaceCounter { max: 64 }, &ChunkOptions::default());
        assert_eq!((chunks[0].text.as_str(), chunks[0].anchor.label()), ("a\nb", "lines 1-2".to_owned()));
    }
}
