use std::path::{Path, PathBuf};

use crate::common::*;

// The GPU path for real: on CI through Mesa's software Vulkan. The same seed gives the same
// starting weights and batches on every backend, so each training step's loss must agree with
// flex. One test per model, so that the test harness runs them side by side (software Vulkan
// compiles each kernel on one core; serially the five took ~280 s of a 2-core CI run).

/// Per-step training losses that burn-train logged for `epoch` of the run in `dir`.
fn step_losses(dir: &Path, epoch: usize) -> Vec<f64> {
    let p = dir.join(format!("train/epoch-{epoch}/Loss.log"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter_map(|l| l.split(',').next().and_then(|v| v.trim().parse().ok()))
        .collect()
}

/// A fixture when wgpu has an adapter. Where none exists the clear error is checked instead and
/// `None` comes back; CI sets BURNLAB_REQUIRE_WGPU=1, so there a missing driver fails the test.
fn wgpu_fixture() -> Option<Fixture> {
    let devices = run_ok(burnlab().arg("devices"));
    let f = Fixture::new(20, 4, 2, 0.0);
    if !devices.contains("wgpu     gpu  no adapter") {
        return Some(f);
    }
    assert!(
        std::env::var("BURNLAB_REQUIRE_WGPU").is_err(),
        "BURNLAB_REQUIRE_WGPU is set but wgpu has no adapter:\n{devices}"
    );
    eprintln!(
        "SKIPPED wgpu training: no Vulkan/Metal/DX12 adapter here; checked the error message instead"
    );
    let e = run_err(f.train(&f.path("wgpu")).args(["--backend", "wgpu"]));
    assert!(e.contains("no GPU adapter found") && e.contains("--backend flex"), "{e}");
    None
}

/// Trains with `cmd(backend)` on flex and on wgpu and compares the per-step losses of each epoch.
fn same_losses(name: &str, epochs: usize, cmd: impl Fn(&str) -> PathBuf) {
    let (flex, wgpu) = (cmd("flex"), cmd("wgpu"));
    for epoch in 1..=epochs {
        let (a, b) = (step_losses(&flex, epoch), step_losses(&wgpu, epoch));
        assert!(a.len() >= 2 && a.len() == b.len(), "{name} epoch {epoch}: {a:?} vs {b:?}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                "{name} epoch {epoch} step {i}: flex {x} vs wgpu {y}"
            );
        }
    }
}

/// An image model trained for `epochs` on flex and on wgpu, step losses compared.
fn image_model_matches_flex(model: &str, epochs: usize) {
    let Some(f) = wgpu_fixture() else { return };
    same_losses(model, epochs, |backend| {
        let dir = f.path(&format!("{model}-{backend}"));
        let mut c = match model {
            "mlp" => f.train(&dir),
            // The smallest CIFAR ResNet (one block per stage) keeps software Vulkan quick.
            "resnet8" => {
                let mut c = f.train_cnn(&dir, "resnet20");
                c.args(["--set", "model.depth=8"]);
                c
            }
            _ => f.train_cnn(&dir, model),
        };
        run_ok(c.args(["--backend", backend, "--epochs", &epochs.to_string()]));
        dir
    });
}

#[test]
fn wgpu_mlp_matches_flex() {
    image_model_matches_flex("mlp", 2);
}

#[test]
fn wgpu_lenet5_matches_flex() {
    image_model_matches_flex("lenet5", 1);
}

/// BatchNorm, stride 2 and option-A shortcuts.
#[test]
fn wgpu_resnet8_matches_flex() {
    image_model_matches_flex("resnet8", 1);
}

/// A character LM: on flex each layer is one fused operation with a hand-written backward, on
/// wgpu the cells run step by step as Burn ops, so equal losses check one against the other (the
/// LSTM only: software Vulkan compiles each cell's many small kernels slowly; the unit tests
/// compare all three cells' fused and step-by-step gradients).
#[test]
fn wgpu_lstm_matches_flex() {
    let Some(f) = wgpu_fixture() else { return };
    let text = f.path("text.txt");
    crate::rnn::write_text(&text);
    same_losses("lstm", 1, |backend| {
        let dir = f.path(&format!("lstm-{backend}"));
        // Short windows and few steps: software Vulkan runs the cells one small op at a time.
        let args = [
            "train",
            "rnn",
            "--cell",
            "lstm",
            "--layers",
            "2",
            "--hidden",
            "24",
            "--epochs",
            "1",
            "--steps",
            "6",
            "--batch-size",
            "4",
            "--seq-len",
            "12",
            "--set",
            "model.embed=8",
            "--backend",
            backend,
        ];
        run_ok(burnlab().args(args).arg("--corpus").arg(&text).arg("--run-dir").arg(&dir));
        dir
    });
}

/// word2vec's batched path, which is what a GPU runs: the host builds the same batches for both
/// backends, so the losses agree (up to the order of the atomic row updates) and the vectors put
/// words next to their topic.
#[test]
fn wgpu_word2vec_matches_flex() {
    let Some(f) = wgpu_fixture() else { return };
    let corpus = f.path("corpus.txt");
    crate::word2vec::write_corpus(&corpus);
    let w2v = |backend: &str| {
        let dir = f.path(&format!("w2v-{backend}"));
        let batched = ["--epochs", "1", "--set", "train.path=batched", "--set", "train.batch=512"];
        run_ok(crate::word2vec::train(&corpus, &dir, &batched).args(["--backend", backend]));
        dir
    };
    let (flex, wgpu) = (w2v("flex"), w2v("wgpu"));
    let loss = |d: &Path| read_json(&d.join("metrics.json"))["final_loss"].as_f64().expect("loss");
    let (a, b) = (loss(&flex), loss(&wgpu));
    assert!(a < 3.5 && (a - b).abs() <= 0.01 * a, "word2vec loss: flex {a} vs wgpu {b}");
    let out = run_ok(burnlab().arg("similar").arg(&wgpu).args(["fruit2", "-k", "3"]));
    assert!(out.lines().all(|l| l.starts_with("fruit")), "{out}");
}
