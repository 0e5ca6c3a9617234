use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn burnlab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_burnlab"));
    for var in [
        "BURNLAB_DATA",
        "BURNLAB_BACKEND",
        "BURNLAB_CACHE",
        "BURNLAB_CORPUS",
        "BURNLAB_TEXT8_URL",
        "BURNLAB_TEXT8_SHA1",
    ] {
        c.env_remove(var);
    }
    c
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run burnlab");
    assert!(
        out.status.success(),
        "burnlab failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn run_err(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("run burnlab");
    assert!(!out.status.success(), "burnlab should have failed:\n{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "panic instead of an error:\n{err}");
    err
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub const CLASSES: [&str; 3] = ["blue", "green", "red"];

/// An image folder `root/{train,test}/<class>/*.png` of 32x32 images whose colour tells the class,
/// with seeded noise.
pub fn make_image_folder(root: &Path, train_per_class: usize, test_per_class: usize) {
    let mut state = 12345u64;
    let mut noise = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) % 90) as u8
    };
    for (split, n) in [("train", train_per_class), ("test", test_per_class)] {
        for (ci, class) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).expect("mkdir");
            for i in 0..n {
                let img = image::RgbImage::from_fn(32, 32, |_, _| {
                    let mut px = [noise(), noise(), noise()];
                    // channel order r, g, b; classes sorted: blue=0, green=1, red=2
                    let strong = [2usize, 1, 0][ci];
                    px[strong] = 150 + noise();
                    image::Rgb(px)
                });
                img.save(dir.join(format!("{i:04}.png"))).expect("save");
            }
        }
    }
}

/// A tiny MLP config for the image folder above.
pub fn tiny_config(dir: &Path, epochs: usize, dropout: f64) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            r#"name = "tiny"
seed = 3
[model]
hidden = [16]
dropout = {dropout}
[data]
valid_size = 30
crop_padding = 2
hflip = true
[train]
epochs = {epochs}
batch_size = 16
log_every = 2
[optim]
name = "sgd"
lr = 0.05
momentum = 0.9
nesterov = true
weight_decay = 5e-4
[schedule]
name = "cosine"
"#
        ),
    )
    .expect("write config");
    p
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).expect("json")
}

/// A temporary folder with a colour-class image folder and a tiny config.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub cfg: PathBuf,
}

impl Fixture {
    pub fn new(train_per_class: usize, test_per_class: usize, epochs: usize, dropout: f64) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        make_image_folder(&data, train_per_class, test_per_class);
        let cfg = tiny_config(tmp.path(), epochs, dropout);
        Fixture { tmp, data, cfg }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `burnlab train mlp` on this data and config, into the run folder `run`.
    pub fn train(&self, run: &Path) -> Command {
        self.train_task(run, &["mlp"])
    }

    /// `burnlab train cnn --model MODEL` with the fixture's (MLP) config, its hidden layers cleared.
    pub fn train_cnn(&self, run: &Path, model: &str) -> Command {
        let mut c = self.train_task(run, &["cnn", "--model", model]);
        c.args(["--set", "model.hidden=[]"]);
        c
    }

    fn train_task(&self, run: &Path, task: &[&str]) -> Command {
        let mut c = burnlab();
        c.arg("train")
            .args(task)
            .arg("--config")
            .arg(&self.cfg)
            .arg("--data")
            .arg(&self.data)
            .arg("--run-dir")
            .arg(run);
        c
    }
}

/// Starts `cmd`, waits (up to two minutes) until `ready()` — e.g. its first checkpoint is on
/// disk — and kills it there, as `kill -9` would.
pub fn kill_when(cmd: &mut Command, ready: impl Fn() -> bool) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_until(ready);
    child.kill().expect("kill");
    child.wait().expect("wait");
}

/// Whether a Learner checkpoint of `epoch` (model, optimiser and scheduler) is in `dir`.
pub fn learner_checkpoint(dir: &Path, epoch: usize) -> bool {
    ["model", "optim", "scheduler"].iter().all(|k| dir.join(format!("{k}-{epoch}.bpk")).exists())
}

/// Whether `dir` holds a complete checkpoint taken inside `epoch` (`epoch-E-step-K/`).
pub fn within_epoch_checkpoint(dir: &Path, epoch: usize) -> bool {
    let prefix = format!("epoch-{epoch}-step-");
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with(&prefix)
            && ["model", "optim", "scheduler"]
                .iter()
                .all(|k| e.path().join(format!("{k}.bpk")).exists())
    })
}

/// The checkpoints taken inside epochs that are left in `dir`.
pub fn within_epoch_checkpoints(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-step-"))
        .collect()
}

/// Polls `ready` every millisecond, for up to two minutes.
pub fn wait_until(ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
