use crate::common::*;
use burnlab_kernels::Isa;

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
    assert!(
        read_json(&run.join("eval.json")).get("timed_images_per_s").is_none(),
        "no timed passes unless asked"
    );
    // The benchmark's inference timing: extra passes, each reported.
    let out = run_ok(
        burnlab().arg("eval").arg(&run).arg("--data").arg(&f.data).args(["--timed-passes", "3"]),
    );
    assert!(out.contains("timed passes") && out.contains("(median of 3: "), "{out}");
    let timed = read_json(&run.join("eval.json"))["timed_images_per_s"]
        .as_array()
        .expect("timed passes")
        .clone();
    assert_eq!(timed.len(), 3);
    assert!(timed.iter().all(|v| v.as_f64().is_some_and(|v| v > 0.0)), "{timed:?}");
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

#[test]
fn resnet9_with_label_smoothing_and_cutout_trains_evaluates_with_tta_and_predicts() {
    let f = Fixture::new(12, 4, 1, 0.0);
    let run = f.path("resnet9");
    let out = run_ok(f.train_cnn(&run, "resnet9").args([
        "--batch-size",
        "6",
        "--set",
        "model.label_smoothing=0.2",
        "--set",
        "data.cutout=8",
    ]));
    assert!(out.contains("resnet9 -> 3: "), "{out}");
    // 6,573,120 for 10 classes; 3 classes drop 7 columns of the bias-free 512-wide head.
    assert_eq!(read_json(&run.join("run.json"))["trainable_params"], 6_573_120 - 7 * 512);
    let m = read_json(&run.join("metrics.json"));
    assert_eq!(m["test_tta"]["tta"], true);
    assert_eq!(m["test"]["tta"], false);
    let out = run_ok(burnlab().arg("eval").arg(&run).arg("--data").arg(&f.data).arg("--tta"));
    assert!(out.contains("flip TTA"), "{out}");
    assert_eq!(read_json(&run.join("eval.json"))["accuracy"], m["test_tta"]["accuracy"]);
    let csv = std::fs::read_to_string(run.join("confusion.csv")).expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("true\\predicted,"), "{csv}");
    let counted: usize = lines[1..]
        .iter()
        .flat_map(|l| l.split(',').skip(1))
        .map(|n| n.parse::<usize>().expect("count"))
        .sum();
    assert_eq!(counted, 12, "every test image counted once");
    let png = image::open(run.join("confusion.png")).expect("png decodes");
    assert!(png.width() > 200 && png.height() > 200);
    let img = f.path("r.png");
    image::RgbImage::from_pixel(40, 24, image::Rgb([230, 20, 20])).save(&img).expect("save");
    let out = run_ok(burnlab().arg("predict").arg(&run).arg(&img).args(["--top-k", "2"]));
    assert!(out.contains("r.png: ") && out.matches('%').count() == 2, "{out}");
}

#[test]
fn summary_prints_the_layer_table() {
    let out = run_ok(burnlab().args(["summary", "resnet20"]));
    assert!(out.contains("stage3.block3.conv2") && out.contains("81x81"), "{out}");
    assert!(out.trim_end().ends_with("total: 269,722 trainable parameters, output 10"), "{out}");
    let out = run_ok(burnlab().args(["summary", "mlp", "--set", "model.hidden=[100]"]));
    assert!(out.contains("total: 308,310 trainable parameters"), "{out}");
    let e = run_err(burnlab().args(["summary", "vgg16"]));
    assert!(e.contains("invalid value 'vgg16'"), "{e}");
}

/// `BURNLAB_ISA` lowers the kernels' instruction set: a ResNet-20 epoch on the plain loops ends
/// where the widest ISA's does (same data order and seeds; only rounding differs), and a bad or
/// unsupported value is a clear error before anything is written.
#[test]
fn every_isa_trains_resnet20_to_the_same_loss_and_bad_isas_are_refused() {
    let f = Fixture::new(12, 4, 1, 0.0);
    let loss = |isa: &str| {
        let run = f.path(&format!("resnet-{isa}"));
        run_ok(f.train_cnn(&run, "resnet20").args(["--batch-size", "8"]).env("BURNLAB_ISA", isa));
        read_json(&run.join("metrics.json"))["test"]["loss"].as_f64().expect("test loss")
    };
    let (plain, best) = (loss("plain"), loss(""));
    assert!((plain - best).abs() < 1e-3 * (1.0 + best.abs()), "plain {plain} vs best ISA {best}");
    let run = f.path("bad-isa");
    let e = run_err(f.train_cnn(&run, "resnet20").env("BURNLAB_ISA", "sse9"));
    assert!(e.contains("BURNLAB_ISA=\"sse9\"") && e.contains("avx2"), "{e}");
    let foreign = if cfg!(target_arch = "aarch64") { "avx2" } else { "neon" };
    let e = run_err(f.train_cnn(&run, "resnet20").env("BURNLAB_ISA", foreign));
    assert!(e.contains("does not have"), "{e}");
    assert!(!run.exists(), "no run folder for a run that never started");
    let devices = run_ok(burnlab().arg("devices").env("BURNLAB_ISA", "plain"));
    assert!(devices.contains("kernels isa=plain"), "{devices}");
    // gemm (Burn's matmuls) picks its own kernels: the override does not reach it.
    let gemm = Isa::of_gemm().name();
    assert!(devices.contains(&format!("gemm isa={gemm}")), "{devices}");
}

/// `burnlab profile` times each phase of a step on random images: every figure is printed and
/// positive; zero steps is a clear error.
#[test]
fn profile_prints_every_phase() {
    let out = run_ok(burnlab().args(["profile", "lenet5", "--steps", "2", "--batch-size", "8"]));
    for key in ["data_ms_per_batch", "forward_loss_ms", "backward_ms", "optimizer_ms", "infer_ms"] {
        let v: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .parse()
            .expect("a number");
        assert!(v > 0.0, "{key}={v}");
    }
    assert!(out.contains("infer_batch=16"), "{out}");
    let e = run_err(burnlab().args(["profile", "lenet5", "--steps", "0"]));
    assert!(e.contains("--steps and --batch-size must be at least 1"), "{e}");
}
