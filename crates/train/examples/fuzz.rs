//! The stable fuzzing engine over burnlab's parsers (`burnlab::fuzz`), for machines without a
//! nightly toolchain and cargo-fuzz: `cargo run --release -p burnlab --example fuzz -- TARGET
//! [SECONDS] [SEED]` (`all` runs every target for SECONDS each). Prints key=value lines; a
//! panicking input is saved under `fuzz/artifacts/TARGET/` and the exit status is 1.

use std::time::Duration;

use burnlab::fuzz::{Budget, TARGETS, run, target};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    let Some(name) = args.first() else {
        eprintln!("usage: fuzz TARGET|all [SECONDS] [SEED]; targets: {}", names.join(" "));
        return std::process::ExitCode::FAILURE;
    };
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let targets: Vec<_> = match name.as_str() {
        "all" => TARGETS.iter().collect(),
        n => match target(n) {
            Some(t) => vec![t],
            None => {
                eprintln!("no fuzz target `{n}`; targets: {}", names.join(" "));
                return std::process::ExitCode::FAILURE;
            }
        },
    };
    let mut failed = false;
    for t in targets {
        let report = match run(t, Budget::Time(Duration::from_secs(seconds)), seed) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: cannot make a scratch folder: {e}", t.name);
                return std::process::ExitCode::FAILURE;
            }
        };
        println!(
            "target={} executions={} seconds={:.0} execs_per_s={:.0} findings={}",
            t.name,
            report.executions,
            report.seconds,
            report.executions as f64 / report.seconds.max(1e-9),
            u8::from(report.finding.is_some())
        );
        if let Some(f) = report.finding {
            let dir = std::path::Path::new("fuzz/artifacts").join(t.name);
            let path = dir.join(format!("crash-{}-{seed}", report.executions));
            let saved =
                std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &f.input));
            eprintln!("{}: panicked: {}", t.name, f.message);
            match saved {
                Ok(()) => eprintln!("input saved to {}", path.display()),
                Err(e) => eprintln!("input ({e} saving it): {:?}", f.input),
            }
            failed = true;
        }
    }
    if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
}
