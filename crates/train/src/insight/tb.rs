//! TensorBoard event files: a writer for scalars and PNG images, and a reader that checks every
//! CRC (the report and the tests read runs back through it).
//!
//! Written by hand rather than with a crate: the format is a stable record framing (length,
//! masked CRC-32C of the length, payload, masked CRC-32C of the payload) around three protobuf
//! messages of which we need five fields; the Rust TensorBoard crates pull in a whole protobuf
//! code generator, are unmaintained (`tensorboard-rs`, last release 2021) or write scalars only.
//! The CRC is the `crc32c` crate (hardware-accelerated). Message layout, from TensorFlow's
//! `event.proto` and `summary.proto`:
//!
//! ```text
//! Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//! Summary { repeated Value value = 1; }
//! Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//! Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// The tag TensorBoard reads first: which version of the event format follows.
const FILE_VERSION: &str = "brain.Event:2";
/// How long written events may sit in the buffer before a live TensorBoard sees them.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

// --- protobuf encoding: only the wire types the messages above use -------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One summary value of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f32),
    /// An encoded image (PNG) with its size.
    Image {
        width: u32,
        height: u32,
        png: Vec<u8>,
    },
}

/// A decoded event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    pub values: Vec<(String, Value)>,
}

fn encode_event(
    wall_time: f64,
    step: i64,
    file_version: Option<&str>,
    values: &[(&str, &Value)],
) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        key(&mut out, 2, 0);
        varint(&mut out, step as u64); // int64: two's complement, as protobuf does
    }
    if let Some(v) = file_version {
        bytes_field(&mut out, 3, v.as_bytes());
    }
    if !values.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in values {
            let mut v = Vec::new();
            bytes_field(&mut v, 1, tag.as_bytes());
            match value {
                Value::Scalar(x) => {
                    key(&mut v, 2, 5);
                    v.extend_from_slice(&x.to_le_bytes());
                }
                Value::Image { width, height, png } => {
                    let mut img = Vec::new();
                    for (field, n) in [(1, *height), (2, *width), (3, 3)] {
                        key(&mut img, field, 0);
                        varint(&mut img, n as u64);
                    }
                    bytes_field(&mut img, 4, png);
                    bytes_field(&mut v, 4, &img);
                }
            }
            bytes_field(&mut summary, 1, &v);
        }
        bytes_field(&mut out, 5, &summary);
    }
    out
}

/// Appends events to one new event file in a folder (`events.out.tfevents.<time>.<host>.<pid>`),
/// as TensorFlow's `SummaryWriter` does; a resumed run adds a second file beside the first.
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
    last_flush: Instant,
}

impl EventWriter {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let host = if host.is_empty() { "localhost".to_string() } else { host };
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut k = 0;
        let path = loop {
            let p =
                dir.join(format!("events.out.tfevents.{secs}.{host}.{}.{k}", std::process::id()));
            if !p.exists() {
                break p;
            }
            k += 1;
        };
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = Self { file: BufWriter::new(file), path, last_flush: Instant::now() };
        w.write_record(&encode_event(wall_time(), 0, Some(FILE_VERSION), &[]))?;
        w.flush()?;
        Ok(w)
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc(&len).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&rec).with_context(|| format!("writing {}", self.path.display()))?;
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        self.write_record(&encode_event(
            wall_time(),
            step,
            None,
            &[(tag, &Value::Scalar(value as f32))],
        ))
    }

    /// A PNG image (`tensorboard` shows it under the Images tab).
    pub fn image(
        &mut self,
        tag: &str,
        step: i64,
        width: u32,
        height: u32,
        png: Vec<u8>,
    ) -> Result<()> {
        self.write_record(&encode_event(
            wall_time(),
            step,
            None,
            &[(tag, &Value::Image { width, height, png })],
        ))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

// --- reading ---------------------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next field: (number, wire type, payload for length-delimited, scalar bits otherwise).
    fn field(&mut self) -> Option<(u64, u8, &'a [u8], u64)> {
        let k = self.varint()?;
        let (num, wire) = (k >> 3, (k & 7) as u8);
        Some(match wire {
            0 => (num, wire, &[][..], self.varint()?),
            1 => (num, wire, &[][..], u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                (num, wire, self.take(n)?, 0)
            }
            5 => (num, wire, &[][..], u32::from_le_bytes(self.take(4)?.try_into().ok()?) as u64),
            _ => return None,
        })
    }
}

fn decode_value(buf: &[u8]) -> Option<(String, Value)> {
    let mut r = Reader { buf, pos: 0 };
    let (mut tag, mut value) = (String::new(), None);
    while !r.done() {
        match r.field()? {
            (1, 2, s, _) => tag = String::from_utf8(s.to_vec()).ok()?,
            (2, 5, _, bits) => value = Some(Value::Scalar(f32::from_bits(bits as u32))),
            (4, 2, s, _) => {
                let mut ir = Reader { buf: s, pos: 0 };
                let (mut width, mut height, mut png) = (0, 0, Vec::new());
                while !ir.done() {
                    match ir.field()? {
                        (1, 0, _, n) => height = n as u32,
                        (2, 0, _, n) => width = n as u32,
                        (4, 2, b, _) => png = b.to_vec(),
                        _ => {}
                    }
                }
                value = Some(Value::Image { width, height, png });
            }
            _ => {}
        }
    }
    Some((tag, value?))
}

fn decode_event(buf: &[u8]) -> Option<Event> {
    let mut r = Reader { buf, pos: 0 };
    let mut e = Event { wall_time: 0.0, step: 0, file_version: None, values: Vec::new() };
    while !r.done() {
        match r.field()? {
            (1, 1, _, bits) => e.wall_time = f64::from_bits(bits),
            (2, 0, _, n) => e.step = n as i64,
            (3, 2, s, _) => e.file_version = Some(String::from_utf8(s.to_vec()).ok()?),
            (5, 2, s, _) => {
                let mut sr = Reader { buf: s, pos: 0 };
                while !sr.done() {
                    if let (1, 2, v, _) = sr.field()? {
                        // Values of other kinds (histograms, text) are skipped.
                        if let Some(v) = decode_value(v) {
                            e.values.push(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(e)
}

/// Every event of one file, checking both CRCs of every record. A record cut short at the end
/// (a run killed mid-write) ends the file quietly; anything else wrong is an error.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(header) = data.get(pos..pos + 12) else {
            break;
        };
        let len_bytes = &header[..8];
        if u32::from_le_bytes(header[8..12].try_into()?) != masked_crc(len_bytes) {
            bail!("{}: record at byte {pos}: length CRC mismatch", path.display());
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into()?))?;
        let Some(body) = data.get(pos + 12..(pos + 12).saturating_add(len).saturating_add(4))
        else {
            break;
        };
        let (payload, crc) = body.split_at(len);
        if u32::from_le_bytes(crc.try_into()?) != masked_crc(payload) {
            bail!("{}: record at byte {pos}: data CRC mismatch", path.display());
        }
        let event = decode_event(payload).with_context(|| {
            format!("{}: record at byte {pos}: not an Event message", path.display())
        })?;
        events.push(event);
        pos += 12 + len + 4;
    }
    Ok(events)
}

/// The event files of a folder, oldest first (their names start with the creation time).
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("tfevents"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The scalar series of a folder's event files: tag → (step, value), in step order. Where a
/// resumed run wrote a step again, the later file's value wins.
pub fn read_scalars(dir: &Path) -> Result<std::collections::BTreeMap<String, Vec<(i64, f64)>>> {
    let mut series: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, f64>> =
        Default::default();
    for file in event_files(dir) {
        for e in read_events(&file)? {
            for (tag, v) in e.values {
                if let Value::Scalar(x) = v {
                    series.entry(tag).or_default().insert(e.step, x as f64);
                }
            }
        }
    }
    Ok(series.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect())
}

/// A metric name as a TensorBoard tag: `Learning Rate` → `learning_rate`.
pub fn tag_name(metric: &str) -> String {
    let mut s: String = metric
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    s.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_mask_match_known_values() {
        // The CRC-32C check value, and TensorFlow's masked CRC of an empty string.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b""), 0xa282_ead8);
    }

    #[test]
    fn first_record_is_the_file_version_event_tensorflow_writes() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = EventWriter::create(dir.path()).expect("writer");
        let bytes = std::fs::read(w.path()).expect("read");
        // length 24: wall_time (1 + 8 bytes) + file_version (1 + 1 + 13 bytes).
        assert_eq!(&bytes[..8], &24u64.to_le_bytes());
        assert_eq!(bytes.len(), 8 + 4 + 24 + 4);
        assert_eq!(bytes[12], 0x09, "field 1, 64-bit");
        assert_eq!(&bytes[21..23], &[0x1a, 13], "field 3, length 13");
        assert_eq!(&bytes[23..36], b"brain.Event:2");
        assert!(
            w.path()
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .starts_with("events.out.tfevents.")
        );
    }

    #[test]
    fn scalars_and_images_read_back_exactly() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = EventWriter::create(dir.path()).expect("writer");
        w.scalar("epoch/loss", 1, 2.5).expect("scalar");
        w.scalar("epoch/loss", 2, 1.25).expect("scalar");
        w.scalar("step/learning_rate", 300, 1e-3).expect("scalar");
        w.scalar("step/big", 1 << 40, -0.5).expect("scalar");
        w.image("samples", 2, 3, 2, vec![1, 2, 3, 200]).expect("image");
        w.flush().expect("flush");
        let events = read_events(w.path()).expect("read");
        assert_eq!(events.len(), 6);
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert!(events[0].wall_time > 1.6e9);
        assert_eq!(
            (events[2].step, events[2].values.clone()),
            (2, vec![("epoch/loss".to_string(), Value::Scalar(1.25))])
        );
        assert_eq!(events[3].values[0].1, Value::Scalar(1e-3));
        assert_eq!(events[4].step, 1 << 40);
        assert_eq!(
            events[5].values[0],
            ("samples".to_string(), Value::Image { width: 3, height: 2, png: vec![1, 2, 3, 200] })
        );
        let s = read_scalars(dir.path()).expect("scalars");
        assert_eq!(s["epoch/loss"], vec![(1, 2.5), (2, 1.25)]);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_flipped_bit_is_a_crc_error_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = EventWriter::create(dir.path()).expect("writer");
        w.scalar("a", 1, 1.0).expect("scalar");
        w.flush().expect("flush");
        let path = w.path().to_path_buf();
        drop(w);
        let good = std::fs::read(&path).expect("read");
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 6] ^= 1; // inside the second record's payload
        std::fs::write(&path, &bad).expect("write");
        let err = read_events(&path).expect_err("corrupt");
        assert!(format!("{err:#}").contains("data CRC mismatch"), "{err:#}");
        bad = good.clone();
        bad[40] ^= 1; // the second record's length
        std::fs::write(&path, &bad).expect("write");
        assert!(
            format!("{:#}", read_events(&path).expect_err("corrupt"))
                .contains("length CRC mismatch")
        );
        std::fs::write(&path, &good[..good.len() - 3]).expect("write");
        assert_eq!(read_events(&path).expect("torn tail").len(), 1);
    }

    #[test]
    fn resumed_runs_overwrite_repeated_steps() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = EventWriter::create(dir.path()).expect("writer");
        a.scalar("x", 1, 1.0).expect("s");
        a.scalar("x", 2, 2.0).expect("s");
        drop(a);
        let mut b = EventWriter::create(dir.path()).expect("writer");
        b.scalar("x", 2, 20.0).expect("s");
        b.scalar("x", 3, 30.0).expect("s");
        drop(b);
        assert_eq!(event_files(dir.path()).len(), 2);
        assert_eq!(
            read_scalars(dir.path()).expect("read")["x"],
            vec![(1, 1.0), (2, 20.0), (3, 30.0)]
        );
    }

    #[test]
    fn tag_names() {
        assert_eq!(tag_name("Learning Rate"), "learning_rate");
        assert_eq!(tag_name("Bits per char"), "bits_per_char");
        assert_eq!(tag_name("Loss"), "loss");
    }
}
