//! Weights in and out: `--init-from` a file or a run, `train.freeze`, `export`.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/weights").join(name)
}

/// A tensor of a safetensors file, as raw bytes.
fn tensor_bytes(file: &Path, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(file).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}")).data().to_vec()
}

/// The accuracy and loss of `burnlab eval RUN`.
fn eval(run: &Path) -> (f64, f64) {
    run_ok(burnlab().arg("eval").arg(run));
    let e = read_json(&run.join("eval.json"));
    (e["accuracy"].as_f64().expect("accuracy"), e["loss"].as_f64().expect("loss"))
}

/// train → export → `--init-from` the file (and the run folder) with a learning rate too small
/// to move a weight: the same evaluation.
#[test]
fn an_exported_run_starts_another_with_identical_metrics() {
    let f = Fixture::new(20, 6, 1, 0.0);
    let a = f.path("a");
    run_ok(&mut f.train(&a));
    let out = run_ok(burnlab().arg("export").arg(&a));
    let file = a.join("model.safetensors");
    assert!(out.contains("wrote") && file.is_file(), "{out}");
    // PyTorch's names and layouts: nn.Linear's weight is [out, in].
    let st = std::fs::read(&file).expect("read");
    let st = safetensors::SafeTensors::deserialize(&st).expect("safetensors");
    assert_eq!(st.tensor("hidden.0.weight").expect("hidden.0.weight").shape(), [16, 3072]);
    assert_eq!(st.tensor("output.weight").expect("output.weight").shape(), [3, 16]);
    if cfg!(feature = "onnx") {
        let out = run_ok(burnlab().args(["export", "--format", "onnx"]).arg(&a));
        assert!(out.contains("ONNX opset 18: images [batch, 3, 32, 32]"), "{out}");
        assert!(std::fs::metadata(a.join("model.onnx")).expect("model.onnx").len() > 3072 * 64);
    } else {
        // The default build says how to get the exporter.
        let e = run_err(burnlab().args(["export", "--format", "onnx"]).arg(&a));
        assert!(e.contains("just export-onnx") && !a.join("model.onnx").exists(), "{e}");
    }
    let want = eval(&a);
    for (name, source) in [("b", file.clone()), ("c", a.clone())] {
        let run = f.path(name);
        let out = run_ok(f.train(&run).arg("--init-from").arg(&source).args(["--lr", "1e-30"]));
        assert!(out.contains("4 tensors loaded"), "{out}");
        let got = eval(&run);
        assert_eq!(got.0, want.0, "{name}: accuracy");
        assert!((got.1 - want.1).abs() < 1e-6, "{name}: loss {} vs {}", got.1, want.1);
        let init = &read_json(&run.join("run.json"))["init_from"];
        assert_eq!(init["loaded"], 4);
        assert_eq!(init["format"], if name == "b" { "safetensors" } else { "run" });
        assert_eq!(init["sha256"].as_str().map(str::len), Some(64));
    }
}

/// `train.freeze = "backbone"` from a run with another class count: the head starts fresh and
/// trains, every other tensor (BatchNorm statistics included) stays as loaded.
#[test]
fn a_frozen_backbone_stays_as_loaded_and_the_new_head_trains() {
    let f = Fixture::new(20, 4, 1, 0.0);
    let a = f.path("a");
    run_ok(f.train_cnn(&a, "lenet5").args(["--epochs", "1"]));
    run_ok(burnlab().arg("export").arg(&a));
    // Two classes instead of three.
    std::fs::remove_dir_all(f.data.join("train/red")).expect("rm");
    std::fs::remove_dir_all(f.data.join("test/red")).expect("rm");
    let b = f.path("b");
    let out = run_ok(f.train_cnn(&b, "lenet5").arg("--init-from").arg(&a).args([
        "--set",
        "train.freeze=backbone",
        "--epochs",
        "2",
    ]));
    assert!(out.contains("starting fresh: fc3.bias, fc3.weight"), "{out}");
    assert!(out.contains("170 trainable parameters"), "the head only: {out}");
    run_ok(burnlab().arg("export").arg(&b));
    let (fa, fb) = (a.join("model.safetensors"), b.join("model.safetensors"));
    for name in ["conv1.weight", "conv2.bias", "fc1.weight", "fc2.bias"] {
        assert_eq!(tensor_bytes(&fa, name), tensor_bytes(&fb, name), "{name} moved");
    }
    let head = tensor_bytes(&fb, "fc3.weight");
    assert_eq!(head.len(), 2 * 84 * 4);
    let init = &read_json(&b.join("run.json"))["init_from"];
    assert_eq!(init["fresh"], serde_json::json!(["fc3.bias", "fc3.weight"]));
}

#[test]
fn bad_starting_weights_are_refused_before_a_run_folder_appears() {
    let f = Fixture::new(20, 2, 1, 0.0);
    let run = f.path("run");
    let notes = f.path("notes.pth");
    std::fs::write(&notes, "not weights\n").expect("write");
    let e = run_err(f.train(&run).arg("--init-from").arg(&notes));
    assert!(e.contains("notes.pth") && e.contains("not a weights file"), "{e}");

    let bytes = std::fs::read(fixture("lenet5.pth")).expect("fixture");
    let cut = f.path("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).expect("write");
    let e = run_err(f.train(&run).arg("--init-from").arg(&cut));
    assert!(e.contains("cut.pth") && e.contains("not a readable PyTorch checkpoint"), "{e}");

    // LeNet-5's weights into the MLP: another architecture.
    let e = run_err(f.train(&run).arg("--init-from").arg(fixture("lenet5.pth")));
    assert!(e.contains("hidden.0.bias is not in it") && e.contains("another architecture"), "{e}");

    let w2v = f.path("w2v");
    std::fs::create_dir_all(&w2v).expect("mkdir");
    std::fs::write(
        w2v.join("run.json"),
        r#"{"task": "word2vec", "corpus": "c.txt", "vocab_size": 10, "corpus_words": 100,
            "status": "finished", "epochs_done": 1}"#,
    )
    .expect("write");
    let e = run_err(f.train(&run).arg("--init-from").arg(&w2v));
    assert!(e.contains("a word2vec run has no image network"), "{e}");
    let e = run_err(burnlab().arg("export").arg(&w2v));
    assert!(e.contains("word2vec run") && e.contains("vectors.txt"), "{e}");

    let e = run_err(f.train(&run).arg("--init-from").arg(&notes).arg("--resume"));
    assert!(e.contains("--init-from") && e.contains("--resume"), "{e}");
    assert!(!run.exists(), "no run folder for refused weights");
}
