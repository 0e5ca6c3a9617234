use crate::common::*;

#[test]
fn lenet5_trains_evaluates_and_predicts() {
    let f = Fixture::new(30, 10, 2, 0.0);
    let run = f.path("lenet");
    // The fixture's config is an MLP one: `--model` switches the architecture.
    let out = run_ok(f.train_cnn(&run, "lenet5").args(["--lr", "0.02"]));
    assert!(out.contains("lenet5 3x32x32 -> 3: "), "{out}");
    let meta = read_json(&run.join("run.json"));
    assert_eq!(meta["task"], "cnn");
    // 62,006 for 10 classes; 3 classes drop 7 outputs of the last layer (84 weights + 1 bias each).
    assert_eq!(meta["trainable_params"], 62_006 - 7 * 85);
    let acc = read_json(&run.join("metrics.json"))["test"]["accuracy"].as_f64().expect("acc");
    assert!(acc > 0.6, "LeNet-5 on colour classes: {acc}");
    let out = run_ok(burnlab().arg("eval").arg(&run).arg("--data").arg(&f.data));
    assert!(out.contains("test accuracy"), "{out}");
    let img = f.path("g.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([20, 230, 20])).save(&img).expect("save");
    let out = run_ok(burnlab().arg("predict").arg(&run).arg(&img));
    assert!(out.contains("g.png: "), "{out}");
}

#[test]
fn resnet20_trains_and_evaluates_with_batchnorm_in_eval_mode() {
    let f = Fixture::new(20, 6, 1, 0.0);
    let run = f.path("resnet");
    let out = run_ok(f.train_cnn(&run, "resnet20").args(["--batch-size", "8"]));
    assert!(out.contains("resnet20 (shortcut A) -> 3"), "{out}");
    let meta = read_json(&run.join("run.json"));
    // 269,722 for 10 classes; 3 classes drop 7 outputs of the 64-wide head.
    assert_eq!(meta["trainable_params"], 269_722 - 7 * 65);
    let m = read_json(&run.join("metrics.json"));
    // Eval mode uses the running statistics: evaluating again gives the same answer.
    run_ok(burnlab().arg("eval").arg(&run).arg("--data").arg(&f.data));
    assert_eq!(read_json(&run.join("eval.json"))["loss"], m["test"]["loss"]);
}
