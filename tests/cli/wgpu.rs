use crate::common::*;

/// The GPU path for real: on CI through Mesa's software Vulkan. Where no adapter exists the
/// test says so and checks the clear error instead (CI sets BURNLAB_REQUIRE_WGPU=1 so a missing
/// driver fails there).
#[test]
fn wgpu_matches_flex_or_explains_missing_adapter() {
    let devices = run_ok(burnlab().arg("devices"));
    let f = Fixture::new(20, 4, 2, 0.0);
    let tmp = &f.tmp;
    let train = |backend: &str| {
        let mut c = f.train(&f.path(backend));
        c.args(["--backend", backend]);
        c
    };
    if devices.contains("wgpu     gpu  no adapter") {
        assert!(std::env::var("BURNLAB_REQUIRE_WGPU").is_err(), "BURNLAB_REQUIRE_WGPU is set but wgpu has no adapter:\n{devices}");
        eprintln!("SKIPPED wgpu training: no Vulkan/Metal/DX12 adapter here; checking the error message instead");
        let e = run_err(&mut train("wgpu"));
        assert!(e.contains("no GPU adapter found") && e.contains("--backend flex"), "{e}");
        return;
    }
    run_ok(&mut train("flex"));
    run_ok(&mut train("wgpu"));
    for epoch in [1, 2] {
        let read = |b: &str| -> Vec<f64> {
            let p = tmp.path().join(b).join(format!("train/epoch-{epoch}/Loss.log"));
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .lines()
                .filter_map(|l| l.split(',').next().and_then(|v| v.trim().parse().ok()))
                .collect()
        };
        let (f, w) = (read("flex"), read("wgpu"));
        assert!(!f.is_empty() && f.len() == w.len(), "epoch {epoch}: {f:?} vs {w:?}");
        for (i, (a, b)) in f.iter().zip(&w).enumerate() {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "epoch {epoch} step {i}: flex {a} vs wgpu {b}");
        }
    }
}
