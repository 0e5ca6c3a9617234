//! Word vectors in the formats of word2vec.c, which gensim's
//! `KeyedVectors.load_word2vec_format` reads and writes: a header line `count dim`, then per word
//! either `word v1 … vdim` (text) or `word ` followed by `dim` little-endian f32 and a newline
//! (binary).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::{DataError, Result};

/// Words and their vectors, row-major (`vectors.len() == words.len() * dim`).
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    pub words: Vec<String>,
    pub dim: usize,
    pub vectors: Vec<f32>,
}

impl WordVectors {
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    fn write_with(
        &self,
        path: &Path,
        body: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
    ) -> Result<()> {
        // Written beside the target and renamed: a reader never sees half a file.
        let tmp = path.with_extension("partial");
        let file = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let mut out = BufWriter::new(file);
        (|| {
            writeln!(out, "{} {}", self.words.len(), self.dim)?;
            body(&mut out)?;
            out.flush()
        })()
        .map_err(|e| DataError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
    }

    pub fn write_text(&self, path: &Path) -> Result<()> {
        self.write_with(path, |out| {
            for (i, w) in self.words.iter().enumerate() {
                write!(out, "{w}")?;
                for v in self.vector(i) {
                    write!(out, " {v}")?;
                }
                writeln!(out)?;
            }
            Ok(())
        })
    }

    pub fn write_binary(&self, path: &Path) -> Result<()> {
        self.write_with(path, |out| {
            for (i, w) in self.words.iter().enumerate() {
                write!(out, "{w} ")?;
                for v in self.vector(i) {
                    out.write_all(&v.to_le_bytes())?;
                }
                writeln!(out)?;
            }
            Ok(())
        })
    }

    /// Read either format (told apart by trying text: binary floats are rarely valid UTF-8
    /// numbers).
    pub fn read(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| BufReader::new(f).read_to_end(&mut bytes))
            .map_err(|e| DataError::io(path, e))?;
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| DataError::format(path, "no header line `count dim`"))?;
        let header = std::str::from_utf8(&bytes[..nl])
            .map_err(|_| DataError::format(path, "header is not text"))?;
        let mut it = header.split_whitespace().map(str::parse::<usize>);
        let (Some(Ok(count)), Some(Ok(dim)), None) = (it.next(), it.next(), it.next()) else {
            return Err(DataError::format(
                path,
                format!("header must be `count dim`, got `{header}`"),
            ));
        };
        if dim == 0 {
            return Err(DataError::format(path, "dimension 0 in the header"));
        }
        let body = &bytes[nl + 1..];
        // Every value takes at least two bytes (a digit and a separator as text, four bytes as
        // binary): a header promising more than the file can hold is refused before anything
        // is allocated from it.
        let least = count.checked_mul(dim).and_then(|n| n.checked_mul(2));
        if least.is_none_or(|least| least > body.len()) {
            return Err(DataError::format(
                path,
                format!(
                    "the header promises {count} words of {dim} values, more than the {} bytes \
                     after it can hold",
                    body.len()
                ),
            ));
        }
        match Self::parse_text(body, count, dim) {
            Ok(v) => Ok(v),
            Err(text_err) => Self::parse_binary(body, count, dim).map_err(|bin_err| {
                DataError::format(
                    path,
                    format!("neither text ({text_err}) nor binary ({bin_err}) word2vec vectors"),
                )
            }),
        }
    }

    fn parse_text(body: &[u8], count: usize, dim: usize) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_string())?;
        let mut words = Vec::with_capacity(count);
        let mut vectors = Vec::with_capacity(count * dim);
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let mut parts = line.split_whitespace();
            let word = parts.next().ok_or_else(|| format!("line {}: empty", i + 2))?;
            let before = vectors.len();
            for p in parts {
                vectors.push(
                    p.parse::<f32>()
                        .map_err(|_| format!("line {}: `{p}` is not a number", i + 2))?,
                );
            }
            if vectors.len() - before != dim {
                return Err(format!(
                    "line {}: {} values, expected {dim}",
                    i + 2,
                    vectors.len() - before
                ));
            }
            words.push(word.to_string());
        }
        if words.len() != count {
            return Err(format!("{} words, the header says {count}", words.len()));
        }
        Ok(Self { words, dim, vectors })
    }

    fn parse_binary(body: &[u8], count: usize, dim: usize) -> std::result::Result<Self, String> {
        let mut words = Vec::with_capacity(count);
        let mut vectors = Vec::with_capacity(count * dim);
        let mut reader = body;
        for i in 0..count {
            // Words may be preceded by the previous record's newline (word2vec.c, gensim).
            while reader.first().is_some_and(|&b| b == b'\n') {
                reader = &reader[1..];
            }
            let mut word = Vec::new();
            reader.read_until(b' ', &mut word).map_err(|e| e.to_string())?;
            if word.pop() != Some(b' ') {
                return Err(format!("word {}: truncated", i + 1));
            }
            words.push(String::from_utf8(word).map_err(|_| format!("word {}: not UTF-8", i + 1))?);
            let need = dim * 4;
            if reader.len() < need {
                return Err(format!("word {}: truncated vector", i + 1));
            }
            vectors.extend(
                reader[..need]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            reader = &reader[need..];
        }
        Ok(Self { words, dim, vectors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WordVectors {
        WordVectors {
            words: vec!["king".into(), "queen".into(), "élan".into()],
            dim: 2,
            vectors: vec![0.5, -1.25, 3.0, 0.0, 1e-3, -7.5],
        }
    }

    #[test]
    fn text_and_binary_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let (t, b) = (dir.path().join("v.txt"), dir.path().join("v.bin"));
        sample().write_text(&t).expect("text");
        sample().write_binary(&b).expect("binary");
        assert_eq!(WordVectors::read(&t).expect("read text"), sample());
        assert_eq!(WordVectors::read(&b).expect("read binary"), sample());
        assert_eq!(
            std::fs::read_to_string(&t).expect("text"),
            "3 2\nking 0.5 -1.25\nqueen 3 0\nélan 0.001 -7.5\n"
        );
    }

    #[test]
    fn reads_files_laid_out_as_word2vec_c_writes_them() {
        // word2vec.c -binary 1: "count dim\n", then "word " + raw floats + "\n" per word.
        let mut bytes = b"2 3\n".to_vec();
        for (w, v) in [("a", [1.0f32, 2.0, 3.0]), ("b", [-1.0, 0.5, 0.25])] {
            bytes.extend_from_slice(w.as_bytes());
            bytes.push(b' ');
            v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
            bytes.push(b'\n');
        }
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.bin");
        std::fs::write(&p, &bytes).expect("write");
        let v = WordVectors::read(&p).expect("read");
        assert_eq!(v.words, vec!["a", "b"]);
        assert_eq!(v.vectors, vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.25]);
        // -binary 0 writes "%lf " after each value: trailing spaces.
        std::fs::write(&p, "2 2\na 0.100000 0.200000 \nb -0.300000 0.400000 \n").expect("write");
        assert_eq!(WordVectors::read(&p).expect("read").vectors, vec![0.1, 0.2, -0.3, 0.4]);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("bad.vec");
        for (content, expect) in [
            (&b""[..], "no header"),
            (b"3\nx 1\n", "header must be `count dim`"),
            (b"2 2\na 1 2\n\n\n\n", "1 words, the header says 2"),
            (b"2 2\na 1 2\n", "more than the 6 bytes after it can hold"),
            // A lying header (2^62 words) is refused before anything is allocated from it.
            (b"4611686018427387904 100\na 1\n", "promises 4611686018427387904 words"),
            (b"18446744073709551615 18446744073709551615\n", "more than the 0 bytes"),
            (b"1 2\na 1\n", "1 values, expected 2"),
        ] {
            std::fs::write(&p, content).expect("write");
            let e = WordVectors::read(&p).expect_err("bad").to_string();
            assert!(e.contains("bad.vec") && e.contains(expect), "{e}");
        }
    }
}
