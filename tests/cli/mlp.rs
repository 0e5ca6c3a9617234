use crate::common::*;

#[test]
fn train_eval_predict_on_flex() {
    let f = Fixture::new(40, 10, 3, 0.0);
    let (tmp, data, run) = (&f.tmp, &f.data, f.path("run"));
    let out = run_ok(f.train(&run).args(["--backend", "flex"]));
    assert!(out.contains("mlp 3072-16-3"), "{out}");
    assert!(out.contains("epoch 3/3  train: "), "plain per-epoch lines off a terminal:\n{out}");
    assert!(out.contains("valid: acc"), "{out}");
    for f in ["config.toml", "run.json", "model.bpk", "metrics.json", "checkpoint"] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let m = read_json(&run.join("metrics.json"));
    let acc = m["test"]["accuracy"].as_f64().expect("acc");
    assert!(acc > 0.9, "colour classes are easy: test accuracy {acc}");
    assert_eq!(m["test"]["images"], 30);
    let meta = read_json(&run.join("run.json"));
    assert_eq!(meta["status"], "finished");
    assert_eq!(meta["normalization"]["mean"].as_array().expect("mean").len(), 3);
    assert_eq!(meta["trainable_params"], 3072 * 16 + 16 + 16 * 3 + 3);

    let out = run_ok(burnlab().arg("eval").arg(&run).arg("--data").arg(data));
    assert!(out.contains("test accuracy"), "{out}");
    assert!(out.contains("  red "), "per-class lines: {out}");
    let e = read_json(&run.join("eval.json"));
    assert_eq!(
        e["accuracy"], m["test"]["accuracy"],
        "eval reproduces the training-time test accuracy"
    );

    // A red image of another size is resized and classified as red.
    let img = tmp.path().join("red.png");
    image::RgbImage::from_pixel(50, 40, image::Rgb([220, 30, 30])).save(&img).expect("save");
    let out = run_ok(burnlab().arg("predict").arg(&run).arg(&img).args(["--top-k", "2"]));
    assert!(out.contains("red.png: red "), "{out}");
    assert_eq!(out.matches('%').count(), 2, "{out}");
}

#[test]
fn linear_svm_trains_with_hinge_loss() {
    let f = Fixture::new(30, 10, 2, 0.0);
    let run = f.path("svm");
    run_ok(f.train(&run).args([
        "--set",
        "model.hidden=[]",
        "--set",
        "model.loss=hinge",
        "--set",
        "optim.name=adagrad",
        "--set",
        "optim.nesterov=false",
        "--lr",
        "0.01",
    ]));
    let meta = read_json(&run.join("run.json"));
    assert_eq!(meta["model"], "mlp 3072-3", "description");
    assert_eq!(meta["trainable_params"], 3072 * 3 + 3);
    let acc = read_json(&run.join("metrics.json"))["test"]["accuracy"].as_f64().expect("acc");
    assert!(acc > 0.6, "linear SVM on colours: {acc}");
}
