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
        .args(["--image-size", "64"])
        .arg("--data")
        .arg(&f.data)
        .arg("--run-dir")
        .arg(&run);
    let out = run_ok(&mut c);
    assert!(out.contains("resnet18 (torchvision layout) 3x64x64 -> 3"), "{out}");
    assert!(out.contains("val accuracy"), "{out}");
    let out =
        run_ok(burnlab().args(["summary", "resnet34", "--classes", "2", "--image-size", "224"]));
    assert!(out.contains("total: 21,285,698 trainable parameters, output 2"), "{out}");
    let e = run_err(burnlab().args(["summary", "resnet18", "--set", "model.depth=50"]));
    assert!(e.contains("model.depth must be 18 or 34"), "{e}");
}

/// Photos of mixed sizes and aspect ratios: training takes random resized crops of each (kept
/// at its shorter side `data.resize`), validation and test the centre crop, and `predict` reads
/// any image the way validation does.
#[test]
fn photos_of_any_size_train_with_random_resized_crops() {
    let f = Fixture::new(12, 4, 1, 0.0);
    // Re-save every image at a different size and aspect ratio, some as JPEG.
    let mut k = 0u32;
    for split in ["train", "test"] {
        for class in CLASSES {
            let dir = f.data.join(split).join(class);
            for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
                let img = image::open(entry.path()).expect("png").to_rgb8();
                let (w, h) = (40 + (k * 37) % 200, 30 + (k * 53) % 150);
                k += 1;
                let big =
                    image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
                std::fs::remove_file(entry.path()).expect("rm");
                let name =
                    entry.path().with_extension(if k.is_multiple_of(2) { "jpg" } else { "png" });
                big.save(name).expect("save");
            }
        }
    }
    let run = f.path("run");
    let sets = [
        "--set",
        "data.random_resized_crop=true",
        "--set",
        "data.image_size=24",
        "--set",
        "data.normalize=\"imagenet\"",
        "--set",
        "data.crop_padding=0",
        "--set",
        "data.valid_size=6",
        "--set",
        "data.color_jitter=0.4",
    ];
    let out = run_ok(f.train(&run).args(sets));
    assert!(out.contains("mlp 1728-16-3"), "24 x 24 x 3 inputs: {out}");
    let record = read_json(&run.join("run.json"));
    assert_eq!(record["image_size"], serde_json::json!([3, 24, 24]));
    assert_eq!(
        record["normalization"]["mean"][0].as_f64().map(|m| (m * 1000.0).round()),
        Some(485.0)
    );
    // Past data.cache_mib the training images are decoded on the fly: the same run.
    let lazy = f.path("lazy");
    run_ok(f.train(&lazy).args(sets).args(["--set", "data.cache_mib=0"]));
    let (a, b) = (read_json(&run.join("metrics.json")), read_json(&lazy.join("metrics.json")));
    assert_eq!(a["test"]["loss"], b["test"]["loss"]);
    assert_eq!(a["valid"]["confusion"], b["valid"]["confusion"]);
    // The report's confusion matrix and mistakes grid, at the run's size and class names.
    let report = f.path("report");
    let printed = run_ok(burnlab().arg("report").arg(&run).arg("--out").arg(&report));
    assert!(printed.contains("index.html"), "{printed}");
    let pngs: Vec<String> = std::fs::read_dir(&report)
        .expect("report")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert!(pngs.iter().any(|n| n.contains("confusion")), "{pngs:?}");
    for png in &pngs {
        image::open(report.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
    }
    let photo = f.path("wide.jpg");
    image::RgbImage::from_pixel(300, 120, image::Rgb([20, 20, 230])).save(&photo).expect("save");
    let out = run_ok(burnlab().arg("predict").arg(&run).arg(&photo));
    assert!(out.contains("wide.jpg: "), "{out}");
    let text = f.path("notes.jpg");
    std::fs::write(&text, "not an image").expect("write");
    let e = run_err(burnlab().arg("predict").arg(&run).arg(&text));
    assert!(e.contains("notes.jpg"), "{e}");
}

#[test]
fn bad_image_sizes_are_refused_naming_the_field() {
    let f = Fixture::new(4, 2, 1, 0.0);
    for (set, want) in [
        ("data.image_size=0", "data.image_size must be 1 to 1024 pixels, got 0"),
        ("data.image_size=2048", "data.image_size must be 1 to 1024 pixels, got 2048"),
        ("data.resize=16", "data.resize (16) must be at least data.image_size (32)"),
        ("data.color_jitter=-0.5", "data.color_jitter must be 0 (off) or more, got -0.5"),
        ("data.normalize={ mean = [0.5], std = [0.2] }", "data.normalize needs 3 means"),
    ] {
        let e = run_err(f.train(&f.path("bad")).args(["--set", set]));
        assert!(e.contains(want), "{set}: {e}");
    }
    let e = run_err(f.train_cnn(&f.path("bad"), "lenet5").args(["--image-size", "64"]));
    assert!(e.contains("lenet5 takes 32x32 images"), "{e}");
    assert!(!f.path("bad").exists(), "nothing is written for a refused config");
}

/// `eval --data` on a folder whose classes are not the run's is refused naming the class.
#[test]
fn eval_on_a_folder_with_other_classes_is_refused() {
    let f = Fixture::new(20, 2, 1, 0.0);
    let run = f.path("run");
    run_ok(&mut f.train(&run));
    let other = f.path("other");
    make_image_folder(&other, 2, 2);
    std::fs::rename(other.join("test/red"), other.join("test/purple")).expect("rename");
    let e = run_err(burnlab().arg("eval").arg(&run).arg("--data").arg(&other));
    assert!(e.contains("class folder `purple` is not one of the training classes"), "{e}");
    // A class folder with no images in it is named too.
    std::fs::remove_dir_all(other.join("test/purple")).expect("rm");
    std::fs::create_dir_all(other.join("test/red")).expect("mkdir");
    let e = run_err(burnlab().arg("eval").arg(&run).arg("--data").arg(&other));
    assert!(e.contains("red") && e.contains("class folder has no images"), "{e}");
}
