//! Your own images: folders in the layouts people have (`train/` + `val/`, or class folders with
//! no split at all), trained, evaluated and reported on by name.

use std::path::Path;

use crate::common::*;

/// Moves `data/test` to `data/<name>`: torchvision's tutorial layout is `train/` + `val/`.
fn rename_test(data: &Path, name: &str) {
    std::fs::rename(data.join("test"), data.join(name)).expect("rename");
}

#[test]
fn a_train_and_val_folder_trains_and_the_metrics_say_val() {
    let f = Fixture::new(20, 5, 1, 0.0);
    rename_test(&f.data, "val");
    let run = f.path("run");
    let out = run_ok(&mut f.train(&run));
    assert!(out.contains("val accuracy"), "{out}");
    assert!(!out.contains("test accuracy"), "{out}");
    let metrics = read_json(&run.join("metrics.json"));
    assert_eq!(metrics["test_split"], "val");
    assert_eq!(metrics["valid"]["images"], 15, "the val folder is the validation split");
    let out = run_ok(burnlab().arg("eval").arg(&run));
    assert!(out.contains("on 15 val images") && out.contains("val accuracy"), "{out}");
}

#[test]
fn a_folder_without_splits_is_split_by_the_seed() {
    let f = Fixture::new(20, 5, 1, 0.0);
    // Class folders straight in the data folder: move train/<class> up, drop test/.
    for class in ["blue", "green", "red"] {
        std::fs::rename(f.data.join("train").join(class), f.data.join(class)).expect("move");
    }
    std::fs::remove_dir_all(f.data.join("train")).expect("rm");
    std::fs::remove_dir_all(f.data.join("test")).expect("rm");
    let run = f.path("run");
    let out = run_ok(&mut f.train(&run));
    assert!(out.contains("test accuracy"), "{out}");
    let metrics = read_json(&run.join("metrics.json"));
    // 20 per class: 2 held out for validation and 2 for test, per class.
    assert_eq!(metrics["valid"]["images"], 6);
    assert_eq!(metrics["test"]["images"], 6);
    // eval finds the same 6 test images again from the run's seed.
    let out = run_ok(burnlab().arg("eval").arg(&run));
    assert!(out.contains("on 6 test images"), "{out}");
    let a = metrics["test"]["confusion"].clone();
    let b = read_json(&run.join("eval.json"))["confusion"].clone();
    assert_eq!(a, b);
}

/// ResNet-18 in torchvision's layout trains, evaluates and is summarised at any size.
#[test]
fn resnet18_trains_on_a_folder_and_is_summarised() {
    let f = Fixture::new(8, 2, 1, 0.0);
    rename_test(&f.data, "val");
    let run = f.path("run");
    let mut c = burnlab();
    c.args(["train", "cnn", "--model", "resnet18", "--epochs", "1", "--batch-size", "8"])
        .arg("--data")
        .arg(&f.data)
        .arg("--run-dir")
        .arg(&run);
    let out = run_ok(&mut c);
    assert!(out.contains("resnet18 (torchvision layout) 3x32x32 -> 3"), "{out}");
    assert!(out.contains("val accuracy"), "{out}");
    let out =
        run_ok(burnlab().args(["summary", "resnet34", "--classes", "2", "--image-size", "224"]));
    assert!(out.contains("total: 21,285,698 trainable parameters, output 2"), "{out}");
    let e = run_err(burnlab().args(["summary", "resnet18", "--set", "model.depth=50"]));
    assert!(e.contains("model.depth must be 18 or 34"), "{e}");
}
