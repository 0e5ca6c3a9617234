use std::path::Path;

use crate::common::*;

/// Per-step training losses that burn-train logged for `epoch` of the run in `dir`.
fn step_losses(dir: &Path, epoch: usize) -> Vec<f64> {
    let p = dir.join(format!("train/epoch-{epoch}/Loss.log"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter_map(|l| l.split(',').next().and_then(|v| v.trim().parse().ok()))
        .collect()
}

/// The GPU path for real: on CI through Mesa's software Vulkan. The same seed gives the same
/// starting weights and batches on every backend, so the losses of each training step of an MLP,
/// LeNet-5 and a ResNet-8 (BatchNorm, stride 2, option-A shortcuts) must agree with flex. Where no
/// adapter exists the test says so and checks the clear error instead (CI sets
/// BURNLAB_REQUIRE_WGPU=1 so a missing driver fails there).
#[test]
fn wgpu_matches_flex_or_explains_missing_adapter() {
    let devices = run_ok(burnlab().arg("devices"));
    let f = Fixture::new(20, 4, 2, 0.0);
    if devices.contains("wgpu     gpu  no adapter") {
        assert!(
            std::env::var("BURNLAB_REQUIRE_WGPU").is_err(),
            "BURNLAB_REQUIRE_WGPU is set but wgpu has no adapter:\n{devices}"
        );
        eprintln!(
            "SKIPPED wgpu training: no Vulkan/Metal/DX12 adapter here; checking the error message instead"
        );
        let e = run_err(f.train(&f.path("wgpu")).args(["--backend", "wgpu"]));
        assert!(e.contains("no GPU adapter found") && e.contains("--backend flex"), "{e}");
        return;
    }
    for (model, epochs) in [("mlp", 2), ("lenet5", 1), ("resnet8", 1)] {
        let run = |backend: &str| {
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
        };
        let (flex, wgpu) = (run("flex"), run("wgpu"));
        for epoch in 1..=epochs {
            let (a, b) = (step_losses(&flex, epoch), step_losses(&wgpu, epoch));
            assert!(a.len() >= 2 && a.len() == b.len(), "{model} epoch {epoch}: {a:?} vs {b:?}");
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                    "{model} epoch {epoch} step {i}: flex {x} vs wgpu {y}"
                );
            }
        }
    }

    // A character LM: on flex each layer is one fused operation with a hand-written backward,
    // on wgpu the cells run step by step as Burn ops, so equal losses check one against the
    // other (the LSTM only: software Vulkan compiles each cell's many small kernels slowly; the
    // unit tests compare all three cells' fused and step-by-step gradients).
    let text = f.path("text.txt");
    crate::rnn::write_text(&text);
    for cell in ["lstm"] {
        let run = |backend: &str| {
            let dir = f.path(&format!("{cell}-{backend}"));
            // Short windows and few steps: software Vulkan runs the cells one small op at a time.
            let args = [
                "train",
                "rnn",
                "--cell",
                cell,
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
        };
        let (flex, wgpu) = (run("flex"), run("wgpu"));
        for epoch in 1..=1 {
            let (a, b) = (step_losses(&flex, epoch), step_losses(&wgpu, epoch));
            assert!(a.len() >= 2 && a.len() == b.len(), "{cell} epoch {epoch}: {a:?} vs {b:?}");
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                    "{cell} epoch {epoch} step {i}: flex {x} vs wgpu {y}"
                );
            }
        }
    }

    // word2vec's batched path, which is what a GPU runs: the host builds the same batches for
    // both backends, so the losses agree (up to the order of the atomic row updates) and the
    // vectors put words next to their topic.
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
