//! Text corpora for word2vec: streaming whitespace tokenisation and a frequency-sorted
//! vocabulary. A corpus is read twice, never held as a token list: once to count, once (per
//! epoch) to train, so memory is bounded by the vocabulary, not the corpus.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::{DataError, Result};

/// A corpus: one text file, or every regular file of a folder (sorted by name, hidden files
/// skipped). Words are separated by whitespace; each line is a sentence (windows do not cross
/// lines), and sentences longer than [`MAX_SENTENCE`] words are cut, as in word2vec.c.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub files: Vec<PathBuf>,
    pub lowercase: bool,
}

/// word2vec.c's MAX_SENTENCE_LENGTH.
pub const MAX_SENTENCE: usize = 1000;

impl Corpus {
    pub fn open(path: &Path, lowercase: bool) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
        let files = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| DataError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(DataError::format(path, "the corpus folder has no files"));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        Ok(Self { files, lowercase })
    }

    /// Total size in bytes (for progress bars).
    pub fn bytes(&self) -> u64 {
        self.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
    }

    /// Call `f` with each sentence's words, in order. Stops early if `f` returns false.
    /// Invalid UTF-8 or a NUL byte (a binary file) is an error naming the file and offset.
    pub fn for_each_sentence(&self, mut f: impl FnMut(&[&str]) -> bool) -> Result<()> {
        let mut line = Vec::new();
        for path in &self.files {
            let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut offset = 0u64;
            loop {
                line.clear();
                // Long lines (text8 is one 100 MB line) are read in pieces cut at whitespace.
                let n = read_piece(&mut reader, &mut line).map_err(|e| DataError::io(path, e))?;
                if n == 0 {
                    break;
                }
                if let Some(p) = line.iter().position(|&b| b == 0) {
                    return Err(DataError::format(
                        path,
                        format!(
                            "binary data (a NUL byte at offset {}): not a text corpus",
                            offset + p as u64
                        ),
                    ));
                }
                let text = std::str::from_utf8(&line).map_err(|e| {
                    DataError::format(
                        path,
                        format!("invalid UTF-8 at byte offset {}", offset + e.valid_up_to() as u64),
                    )
                })?;
                offset += n as u64;
                let lowered;
                let text = if self.lowercase && text.chars().any(char::is_uppercase) {
                    lowered = text.to_lowercase();
                    &lowered
                } else {
                    text
                };
                let words: Vec<&str> = text.split_whitespace().collect();
                for chunk in words.chunks(MAX_SENTENCE) {
                    if !f(chunk) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Read up to the next newline, or, for very long lines, up to ~1 MB cut after a whitespace
/// byte (never inside a word or a UTF-8 sequence). Returns the bytes read.
fn read_piece(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<usize> {
    const PIECE: usize = 1 << 20;
    let mut total = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&buf[..=i]);
            reader.consume(i + 1);
            return Ok(total + i + 1);
        }
        let len = buf.len();
        if out.len() + len >= PIECE
            && let Some(i) = buf.iter().rposition(|b| b.is_ascii_whitespace())
        {
            out.extend_from_slice(&buf[..=i]);
            reader.consume(i + 1);
            return Ok(total + i + 1);
        }
        out.extend_from_slice(buf);
        reader.consume(len);
        total += len;
    }
}

/// Words with their corpus counts, most frequent first (ties by word, so the order is
/// reproducible), keeping those seen at least `min_count` times.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    pub words: Vec<String>,
    pub counts: Vec<u64>,
    index: HashMap<String, u32>,
}

impl Vocab {
    pub fn from_counts(counts: HashMap<String, u64>, min_count: u64) -> Self {
        let mut entries: Vec<(String, u64)> =
            counts.into_iter().filter(|(_, c)| *c >= min_count.max(1)).collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let index = entries.iter().enumerate().map(|(i, (w, _))| (w.clone(), i as u32)).collect();
        let (words, counts) = entries.into_iter().unzip();
        Self { words, counts, index }
    }

    /// Count every word of `corpus` in one pass and keep those with `min_count` or more.
    pub fn build(corpus: &Corpus, min_count: u64, mut progress: impl FnMut(u64)) -> Result<Self> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut tokens = 0u64;
        corpus.for_each_sentence(|words| {
            for w in words {
                match counts.get_mut(*w) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert((*w).to_string(), 1);
                    }
                }
            }
            tokens += words.len() as u64;
            progress(tokens);
            true
        })?;
        let name = corpus.files.first().cloned().unwrap_or_default();
        if tokens == 0 {
            return Err(DataError::format(name, "the corpus is empty (no words)"));
        }
        let distinct = counts.len();
        let vocab = Self::from_counts(counts, min_count);
        if vocab.is_empty() {
            return Err(DataError::format(
                name,
                format!(
                    "no word occurs min_count = {min_count} times ({tokens} words, {distinct} distinct); lower min_count"
                ),
            ));
        }
        Ok(vocab)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn get(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Occurrences of vocabulary words in the corpus: word2vec.c's `train_words`.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Write `word count` lines (word2vec.c's `-save-vocab` format).
    pub fn write(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        for (w, c) in self.words.iter().zip(&self.counts) {
            writeln!(out, "{w} {c}")?;
        }
        Ok(())
    }

    /// Read a file written by [`write`](Self::write).
    pub fn read(path: &Path) -> Result<Self> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| DataError::io(path, e))?;
        let mut counts = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(w), Some(c), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(DataError::format(
                    path,
                    format!("line {}: expected `word count`", i + 1),
                ));
            };
            let c: u64 = c
                .parse()
                .map_err(|_| DataError::format(path, format!("line {}: bad count `{c}`", i + 1)))?;
            counts.insert(w.to_string(), c);
        }
        Ok(Self::from_counts(counts, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(text: &[u8]) -> (tempfile::TempDir, Corpus) {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.txt");
        std::fs::write(&p, text).expect("write");
        let c = Corpus::open(&p, false).expect("open");
        (dir, c)
    }

    #[test]
    fn counts_sorted_by_frequency_then_word_with_min_count() {
        let (_d, c) = corpus(b"the cat sat on the mat\nthe dog sat\n  on\ta log  \n");
        let v = Vocab::build(&c, 2, |_| {}).expect("vocab");
        assert_eq!(v.words, vec!["the", "on", "sat"]);
        assert_eq!(v.counts, vec![3, 2, 2]);
        assert_eq!(v.get("sat"), Some(2));
        assert_eq!(v.get("cat"), None);
        assert_eq!(v.total(), 7);
        let all = Vocab::build(&c, 1, |_| {}).expect("vocab");
        assert_eq!(all.len(), 8);
        assert_eq!(&all.words[3..], &["a", "cat", "dog", "log", "mat"]);
    }

    #[test]
    fn sentences_follow_lines_and_are_cut_at_1000_words() {
        let mut text = String::from("a b\n\nc\n");
        text.push_str(&"w ".repeat(2500));
        let (_d, c) = corpus(text.as_bytes());
        let mut lens = Vec::new();
        c.for_each_sentence(|s| {
            lens.push(s.len());
            true
        })
        .expect("read");
        assert_eq!(lens, vec![2, 1, 1000, 1000, 500], "blank lines are no sentence");
    }

    #[test]
    fn long_lines_are_read_in_pieces_without_splitting_words() {
        // ~3 MB on one line (text8-style): the words must come back intact.
        let words: Vec<String> = (0..400_000).map(|i| format!("w{}", i % 977)).collect();
        let (_d, c) = corpus(words.join(" ").as_bytes());
        let v = Vocab::build(&c, 1, |_| {}).expect("vocab");
        assert_eq!(v.len(), 977);
        assert_eq!(v.total(), 400_000);
    }

    #[test]
    fn lowercase_option() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.txt");
        std::fs::write(&p, "The the THE Élan élan").expect("write");
        let v = Vocab::build(&Corpus::open(&p, true).expect("open"), 1, |_| {}).expect("vocab");
        assert_eq!(v.words, vec!["the", "élan"]);
        assert_eq!(v.counts, vec![3, 2]);
    }

    #[test]
    fn bad_corpora_are_clear_errors() {
        let (_d, c) = corpus(b"");
        let e = Vocab::build(&c, 1, |_| {}).expect_err("empty").to_string();
        assert!(e.contains("c.txt") && e.contains("empty"), "{e}");
        let (_d, c) = corpus(b" \n\n \t");
        assert!(Vocab::build(&c, 1, |_| {}).expect_err("blank").to_string().contains("empty"));
        let (_d, c) = corpus(b"a b c a");
        let e = Vocab::build(&c, 5, |_| {}).expect_err("min_count").to_string();
        assert!(e.contains("no word occurs min_count = 5 times (4 words, 3 distinct)"), "{e}");
        let (_d, c) = corpus(b"good words \xff\xfe bad");
        let e = Vocab::build(&c, 1, |_| {}).expect_err("utf8").to_string();
        assert!(e.contains("c.txt") && e.contains("invalid UTF-8 at byte offset 11"), "{e}");
        let (_d, c) = corpus(b"\x7fELF\x02\x01\x01\x00\x00\x00");
        let e = Vocab::build(&c, 1, |_| {}).expect_err("binary").to_string();
        assert!(e.contains("binary data") && e.contains("offset 7"), "{e}");
        let e = Corpus::open(Path::new("/nonexistent/corpus.txt"), false)
            .expect_err("missing")
            .to_string();
        assert!(e.contains("/nonexistent/corpus.txt"), "{e}");
    }

    #[test]
    fn folder_corpus_reads_files_in_name_order_and_vocab_round_trips() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("b.txt"), "y y").expect("write");
        std::fs::write(dir.path().join("a.txt"), "x").expect("write");
        std::fs::write(dir.path().join(".hidden"), "zzz").expect("write");
        let c = Corpus::open(dir.path(), false).expect("open");
        let mut seen = Vec::new();
        c.for_each_sentence(|s| {
            seen.extend(s.iter().map(|w| w.to_string()));
            true
        })
        .expect("read");
        assert_eq!(seen, vec!["x", "y", "y"]);
        let v = Vocab::build(&c, 1, |_| {}).expect("vocab");
        let p = dir.path().join("vocab.txt");
        v.write(std::fs::File::create(&p).expect("create")).expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "y 2\nx 1\n");
        assert_eq!(Vocab::read(&p).expect("read"), v);
    }
}
