//! Fuzz targets: every parser that reads a file a user can hand burnlab, or that a crash can
//! leave half-written. Each target takes arbitrary bytes, puts them where the parser looks, and
//! runs it: an `Err` is the right answer to a bad file; a panic, an abort or an allocation sized
//! by a lying header is a finding.
//!
//! Two engines drive them. cargo-fuzz (libFuzzer, coverage-guided; `fuzz/`, nightly) and, on
//! stable, [`run`]: a mutation fuzzer without coverage feedback over each target's valid seed
//! inputs (bit flips, interesting integers and tokens, insertions, deletions, splices). `just fuzz
//! TARGET [SECONDS]` uses the first where `cargo +nightly fuzz` exists, else the second; the
//! tests run every target for a bounded number of cases.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config;
use crate::insight::tb;
use crate::run::record::{self, RunRecord, TaskRecord, W2vRecord};
use crate::tasks::charlm::CharLmExperiment;
use crate::tasks::word2vec::{self, W2vExperiment, native};
use burnlab_data::chars::CharVocab;
use burnlab_data::{Corpus, Vocab, WordVectors, cifar, image_folder};

/// One parser under test.
pub struct Target {
    pub name: &'static str,
    /// Feeds `data` to the parser; files go in `scratch` (an empty folder of its own).
    pub run: fn(&Path, &[u8]),
    /// Valid inputs to start mutating from (made in `scratch`).
    pub seeds: fn(&Path) -> Vec<Vec<u8>>,
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target { name: "cifar_batch", run: cifar_batch, seeds: cifar_batch_seeds },
    Target { name: "cifar_meta", run: cifar_meta, seeds: cifar_meta_seeds },
    Target { name: "image_file", run: image_file, seeds: image_seeds },
    Target { name: "image_folder", run: image_folder_scan, seeds: image_seeds },
    Target { name: "word_vectors", run: word_vectors, seeds: word_vectors_seeds },
    Target { name: "vocab", run: vocab, seeds: vocab_seeds },
    Target { name: "corpus", run: corpus, seeds: corpus_seeds },
    Target { name: "char_vocab", run: char_vocab, seeds: char_vocab_seeds },
    Target { name: "run_record", run: run_record, seeds: run_record_seeds },
    Target { name: "tb_events", run: tb_events, seeds: tb_events_seeds },
    Target { name: "config_toml", run: config_toml, seeds: config_toml_seeds },
    Target { name: "set_values", run: set_values, seeds: set_values_seeds },
    Target { name: "w2v_checkpoint", run: w2v_checkpoint, seeds: w2v_checkpoint_seeds },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Writes `data` to `dir/name` (creating `dir`) and returns the path.
fn put(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, data);
    path
}

/// The bytes of what `write` puts in `dir/name`.
fn written(dir: &Path, name: &str, write: impl FnOnce(&Path)) -> Vec<u8> {
    let path = dir.join(name);
    write(&path);
    std::fs::read(&path).unwrap_or_default()
}

fn cifar_batch(_: &Path, data: &[u8]) {
    let _ = cifar::parse_batch(data, Path::new("data_batch_1.bin"));
}

fn cifar_batch_seeds(_: &Path) -> Vec<Vec<u8>> {
    let record = |label: u8| std::iter::once(label).chain((0..3072).map(|i| (i % 251) as u8));
    vec![record(3).collect(), record(1).chain(record(9)).collect()]
}

fn cifar_meta(dir: &Path, data: &[u8]) {
    put(dir, "batches.meta.txt", data);
    let _ = cifar::read_class_names(dir);
}

fn cifar_meta_seeds(_: &Path) -> Vec<Vec<u8>> {
    vec![cifar::default_class_names().join("\n").into_bytes()]
}

fn image_file(dir: &Path, data: &[u8]) {
    let _ = image_folder::decode_rgb(&put(dir, "x.png", data), 8, 10);
}

fn image_folder_scan(dir: &Path, data: &[u8]) {
    put(dir, "a/0.png", data);
    put(dir, "b/0.jpg", data);
    let _ = image_folder::load(dir, 8, None);
}

fn image_seeds(_: &Path) -> Vec<Vec<u8>> {
    let img = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
    [image::ImageFormat::Png, image::ImageFormat::Jpeg, image::ImageFormat::Bmp]
        .into_iter()
        .filter_map(|f| {
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, f).ok().map(|()| out.into_inner())
        })
        .collect()
}

fn word_vectors(dir: &Path, data: &[u8]) {
    let _ = WordVectors::read(&put(dir, "v.vec", data));
}

fn word_vectors_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let v = WordVectors { words: vec!["a".into(), "bé".into()], dim: 3, vectors: vec![0.5; 6] };
    vec![
        written(dir, "t.vec", |p| drop(v.write_text(p))),
        written(dir, "b.vec", |p| drop(v.write_binary(p))),
    ]
}

fn vocab(dir: &Path, data: &[u8]) {
    let _ = Vocab::read(&put(dir, "vocab.txt", data));
}

fn vocab_seeds(_: &Path) -> Vec<Vec<u8>> {
    vec![b"the 3\non 2\nsat 2\n".to_vec()]
}

fn corpus(dir: &Path, data: &[u8]) {
    let path = put(dir, "corpus.txt", data);
    if let Ok(c) = Corpus::open(&path, data.first().is_some_and(|b| b & 1 == 1)) {
        let _ = Vocab::build(&c, 1, |_| {});
    }
}

fn corpus_seeds(_: &Path) -> Vec<Vec<u8>> {
    vec![b"the cat sat\non the mat\n\nthe end".to_vec(), "élan ÉLAN\tx\r\n".into()]
}

fn char_vocab(dir: &Path, data: &[u8]) {
    let path = put(dir, "vocab.json", data);
    let _ = CharVocab::read(&path);
    let _ = burnlab_data::chars::read_text(&path);
}

fn char_vocab_seeds(dir: &Path) -> Vec<Vec<u8>> {
    vec![written(dir, "v.json", |p| drop(CharVocab::from_text("hello, world\n").write(p)))]
}

fn run_record(dir: &Path, data: &[u8]) {
    for file in std::iter::once(crate::run::META_FILE).chain(record::LEGACY_FILES) {
        let run = dir.join(file.replace('.', "-"));
        put(&run, file, data);
        if let Ok(r) = record::read(&run) {
            let _ = (r.image(&run).is_ok(), r.charlm(&run).is_ok(), r.word2vec(&run).is_ok());
        }
    }
}

fn run_record_seeds(_: &Path) -> Vec<Vec<u8>> {
    let part = W2vRecord { corpus: "c.txt".into(), vocab_size: 10, corpus_words: 99 };
    let r = RunRecord::new(TaskRecord::Word2vec(part), "skip-gram dim 16".into(), "flex".into());
    vec![serde_json::to_vec(&r).unwrap_or_default()]
}

fn tb_events(dir: &Path, data: &[u8]) {
    let path = put(&dir.join("tb"), "events.out.tfevents.1.x", data);
    let _ = tb::read_events(&path);
    let _ = tb::read_scalars(&dir.join("tb"));
}

fn tb_events_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let events = dir.join("seed-tb");
    let Ok(mut w) = tb::EventWriter::create(&events) else { return Vec::new() };
    let _ = w.scalar("epoch/loss", 1, 2.5);
    let _ = w.image("samples", 2, 1, 1, vec![1, 2, 3, 200]);
    let _ = w.flush();
    drop(w);
    tb::event_files(&events).iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn config_toml(dir: &Path, data: &[u8]) {
    let path = put(dir, "config.toml", data);
    let _ = config::load_image(&path, &[]);
    let _ = CharLmExperiment::load(&path, &[]);
    let _ = W2vExperiment::load(&path, &[]);
}

/// The shipped configs (the seeds of both config targets).
const CONFIGS: [&str; 4] = [
    include_str!("../../../configs/mlp-cifar10.toml"),
    include_str!("../../../configs/resnet20-cifar10.toml"),
    include_str!("../../../configs/charlm-shakespeare.toml"),
    include_str!("../../../configs/word2vec-text8.toml"),
];

fn config_toml_seeds(_: &Path) -> Vec<Vec<u8>> {
    CONFIGS.iter().map(|c| c.as_bytes().to_vec()).collect()
}

/// `--set KEY=VALUE` lines over each shipped config.
fn set_values(dir: &Path, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sets: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (i, c) in CONFIGS.iter().enumerate() {
        let path = put(dir, &format!("c{i}.toml"), c.as_bytes());
        let _ = config::load_image(&path, &sets);
        let _ = CharLmExperiment::load(&path, &sets);
        let _ = W2vExperiment::load(&path, &sets);
    }
}

fn set_values_seeds(_: &Path) -> Vec<Vec<u8>> {
    vec![
        b"optim.lr=0.1\nmodel.hidden=[16, 8]\ntrain.epochs=2".to_vec(),
        b"model.dim=0\ncorpus.min_count=1\nmodel.cell=\"gru\"".to_vec(),
        b"data.valid_size=5000\nmodel.activation=tanh\nseed=7".to_vec(),
    ]
}

fn w2v_checkpoint(dir: &Path, data: &[u8]) {
    put(&dir.join(crate::run::CHECKPOINT_DIR), "epoch-1.bin", data);
    let _ = word2vec::load_checkpoint(dir, 4, 3);
}

fn w2v_checkpoint_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let run = dir.join("seed-run");
    let emb = native::init(4, 3, 1.0, 1);
    if word2vec::save_checkpoint(&run, 1, &emb, 2).is_err() {
        return Vec::new();
    }
    vec![
        std::fs::read(run.join(crate::run::CHECKPOINT_DIR).join("epoch-1.bin")).unwrap_or_default(),
    ]
}

/// A cargo-fuzz target file's body (`fuzz/fuzz_targets/NAME.rs`: `burnlab::libfuzzer_target!("NAME");`):
/// libFuzzer feeds its inputs to the target of that name, in a scratch folder of its own.
#[macro_export]
macro_rules! libfuzzer_target {
    ($name:literal) => {
        static TARGET: std::sync::LazyLock<&'static $crate::fuzz::Target> =
            std::sync::LazyLock::new(|| {
                $crate::fuzz::target($name).expect("a burnlab::fuzz target")
            });
        static SCRATCH: std::sync::LazyLock<$crate::fuzz::Scratch> =
            std::sync::LazyLock::new(|| {
                $crate::fuzz::Scratch::new($name).expect("a scratch folder")
            });
        libfuzzer_sys::fuzz_target!(|data: &[u8]| $crate::fuzz::one(&TARGET, &SCRATCH, data));
    };
}

/// A folder of its own under the system's temporary folder, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> std::io::Result<Scratch> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("burnlab-fuzz-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Empties the folder between inputs, so that one input's files cannot mask the next's.
    fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::create_dir_all(&self.0);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Feeds one input to a target in a fresh scratch folder (what the libFuzzer targets call).
pub fn one(target: &Target, scratch: &Scratch, data: &[u8]) {
    scratch.clear();
    (target.run)(scratch.path(), data);
}

/// How long [`run`] goes on.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Cases(u64),
    Time(Duration),
}

/// An input that made a target panic.
#[derive(Debug)]
pub struct Finding {
    pub input: Vec<u8>,
    pub message: String,
}

/// What a run of the stable engine did.
#[derive(Debug)]
pub struct Report {
    pub executions: u64,
    pub seconds: f64,
    pub finding: Option<Finding>,
}

/// Numbers and tokens that parsers mishandle: sizes at type limits, signs, exponents, NaN,
/// separators, quotes and a byte-order mark.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "4294967295",
    "18446744073709551615",
    "99999999999999999999",
    "1e309",
    "NaN",
    "inf",
    "-0",
    " ",
    "\n",
    "\r\n",
    "\t",
    "=",
    "[",
    "]",
    "{",
    "}",
    "\"",
    ",",
    ":",
    ".",
    "\u{feff}",
    "é",
    "\0",
];

/// One to four random edits of `input` (`other` for splices).
fn mutate(rng: &mut SmallRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = v.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        match rng.random_range(0..10) {
            0 if len > 0 => v[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => v[at] = [0, 1, 0x7f, 0x80, 0xff][rng.random_range(0..5)],
            2 if len >= 8 => {
                let at = rng.random_range(0..=len - 8);
                let x: u64 =
                    [u64::MAX, u32::MAX as u64, 1 << 31, 1 << 62, 0][rng.random_range(0..5)];
                v[at..at + 8].copy_from_slice(&x.to_le_bytes());
            }
            3 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            4 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 64));
                v.drain(at..end);
            }
            5 if len > 0 => v.truncate(at),
            6 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 256));
                let piece = v[at..end].to_vec();
                v.splice(end..end, piece);
            }
            7 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let take = rng.random_range(0..=(other.len() - from).min(512));
                v.splice(at..at, other[from..from + take].iter().copied());
            }
            8 => {
                let n = rng.random_range(1..=16);
                v.splice(at..at, (0..n).map(|_| rng.random::<u8>()));
            }
            _ if len > 0 => v[at] = rng.random(),
            _ => v.push(rng.random()),
        }
    }
    v
}

/// The stable engine: mutates the target's seeds (and, now and then, random bytes) until the
/// budget is spent or an input panics. Seeded: the same seed tries the same inputs.
pub fn run(target: &Target, budget: Budget, seed: u64) -> std::io::Result<Report> {
    let scratch = Scratch::new(target.name)?;
    let seeds_dir = Scratch::new(&format!("{}-seeds", target.name))?;
    let mut pool = (target.seeds)(seeds_dir.path());
    pool.push(Vec::new());
    let mut rng = SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut executions = 0u64;
    // The default hook would print every caught panic; a finding is reported once, below.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let finding = loop {
        let done = match budget {
            Budget::Cases(n) => executions >= n,
            Budget::Time(t) => started.elapsed() >= t,
        };
        if done {
            break None;
        }
        let input = if rng.random_range(0..16) == 0 {
            (0..rng.random_range(0..256)).map(|_| rng.random()).collect()
        } else {
            let a = &pool[rng.random_range(0..pool.len())];
            let b = &pool[rng.random_range(0..pool.len())];
            mutate(&mut rng, a, b)
        };
        executions += 1;
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| one(target, &scratch, &input))) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            break Some(Finding { input, message });
        }
        // Drift: keep some mutants as parents, so that edits compound.
        if rng.random_range(0..32) == 0 {
            if pool.len() >= 256 {
                let i = rng.random_range(0..pool.len());
                pool.swap_remove(i);
            }
            pool.push(input);
        }
    };
    std::panic::set_hook(hook);
    Ok(Report { executions, seconds: started.elapsed().as_secs_f64(), finding })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed is a valid input: the parser accepts it (else the fuzzer starts from noise).
    #[test]
    fn seeds_parse() {
        let scratch = Scratch::new("seeds").expect("scratch");
        assert!(!cifar_batch_seeds(scratch.path()).is_empty());
        for s in cifar_batch_seeds(scratch.path()) {
            cifar::parse_batch(&s, Path::new("b.bin")).expect("cifar seed");
        }
        for s in word_vectors_seeds(scratch.path()) {
            let path = put(scratch.path(), "s.vec", &s);
            assert_eq!(WordVectors::read(&path).expect("vectors seed").words.len(), 2);
        }
        for s in tb_events_seeds(scratch.path()) {
            let path = put(scratch.path(), "ev", &s);
            // The file-version event, then the two written.
            assert_eq!(tb::read_events(&path).expect("tb seed").len(), 3);
        }
        for s in w2v_checkpoint_seeds(scratch.path()) {
            let run = scratch.path().join("ck");
            put(&run.join(crate::run::CHECKPOINT_DIR), "epoch-1.bin", &s);
            assert!(word2vec::load_checkpoint(&run, 4, 3).expect("checkpoint seed").is_some());
        }
        for (i, s) in config_toml_seeds(scratch.path()).iter().enumerate() {
            let path = put(scratch.path(), "c.toml", s);
            let ok = [
                config::load_image(&path, &[]).is_ok(),
                CharLmExperiment::load(&path, &[]).is_ok(),
                W2vExperiment::load(&path, &[]).is_ok(),
            ];
            assert_eq!(ok.iter().filter(|&&b| b).count(), 1, "config seed {i}: {ok:?}");
        }
        let r = run_record_seeds(scratch.path());
        let dir = scratch.path().join("rec");
        put(&dir, crate::run::META_FILE, &r[0]);
        assert!(record::read(&dir).expect("record seed").word2vec(&dir).is_ok());
    }

    /// Every target for a bounded number of mutated inputs (`BURNLAB_FUZZ_CASES`, default 300):
    /// none may panic. Long runs: `just fuzz TARGET SECONDS`.
    #[test]
    fn no_target_panics_on_mutated_inputs() {
        let cases =
            std::env::var("BURNLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        for t in TARGETS {
            let report = run(t, Budget::Cases(cases), 1).expect("scratch folder");
            assert_eq!(report.executions, cases);
            if let Some(f) = report.finding {
                panic!(
                    "{}: {} on input {:?}",
                    t.name,
                    f.message,
                    String::from_utf8_lossy(&f.input)
                );
            }
        }
    }

    #[test]
    fn mutations_are_seeded() {
        let mut a = SmallRng::seed_from_u64(3);
        let mut b = SmallRng::seed_from_u64(3);
        let x: Vec<Vec<u8>> = (0..50).map(|_| mutate(&mut a, b"hello world", b"123")).collect();
        let y: Vec<Vec<u8>> = (0..50).map(|_| mutate(&mut b, b"hello world", b"123")).collect();
        assert_eq!(x, y);
        assert!(x.iter().any(|m| m != b"hello world"));
    }
}
