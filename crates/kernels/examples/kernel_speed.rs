//! Where the convolution kernels run against the machine's limit, per ISA, on one core:
//! GFLOP/s of the forward, input-gradient and weight-gradient kernels on ResNet-20's three
//! stride-1 layer shapes and ResNet-18's four (at 224 px), beside the FMA peak (12 independent
//! multiply-add chains), and the forward kernel turned round (`channels`: output channels as
//! vectors, real pixels only) on the same layers.
//!
//! Then Winograd (forward F(4×4, 3×3), weight gradient F(2×2, 3×3)) against the direct
//! convolution on the same layers, and the inference linear kernel (W packed per call, and
//! packed once as `eval` keeps it) against the `gemm` crate, whose line names the ISA gemm
//! picked (`gemm_isa=`: its AVX-512 kernels only in a build with the `gemm-avx512` feature, as
//! `just bench-kernels` and the `burnlab` binary build it).
//!
//! Last, the recurrences' per-step products (`packed`): one thread's 16 batch rows against the
//! packed recurrent weight of an LSTM, GRU and RNN of 256, forward and backward.
//!
//! `cargo run --release -p burnlab-kernels --example kernel_speed [conv|winograd|linear|packed]`
//! (every ISA this CPU has; one with `BURNLAB_ISA=avx2`, say; a section name runs that section
//! only). Prints `key=value` lines.

use std::hint::black_box;
use std::time::Instant;

use burnlab_kernels::channels::{ChannelWeights, channel_conv};
use burnlab_kernels::conv::ConvDims;
use burnlab_kernels::direct::{Padded, Pixels, SLACK, tap_offsets, wide_conv, wide_weight_grad};
use burnlab_kernels::packed::{PackedB, gemm_packed};
use burnlab_kernels::simd::Simd;
use burnlab_kernels::{Cpu, Isa, Kernel};
use burnlab_kernels::{linear, winograd, winograd_wgrad};

/// Images per Winograd-against-direct round.
const IMAGES: usize = 16;

/// 12 independent chains of multiply-adds on registers: the FMA throughput of one core.
struct Peak(usize);

impl Kernel for Peak {
    type Output = f32;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f32 {
        let (a, b) = (s.splat(0.999_999), s.splat(1e-7));
        let z = s.splat(0.0);
        let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
        let (mut c6, mut c7, mut c8, mut c9, mut c10, mut c11) = (z, z, z, z, z, z);
        for _ in 0..self.0 {
            c0 = s.mul_add(c0, a, b);
            c1 = s.mul_add(c1, a, b);
            c2 = s.mul_add(c2, a, b);
            c3 = s.mul_add(c3, a, b);
            c4 = s.mul_add(c4, a, b);
            c5 = s.mul_add(c5, a, b);
            c6 = s.mul_add(c6, a, b);
            c7 = s.mul_add(c7, a, b);
            c8 = s.mul_add(c8, a, b);
            c9 = s.mul_add(c9, a, b);
            c10 = s.mul_add(c10, a, b);
            c11 = s.mul_add(c11, a, b);
        }
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11].iter().map(|v| s.sum(*v)).sum()
    }
}

fn lanes(cpu: Cpu) -> usize {
    struct L;
    impl Kernel for L {
        type Output = usize;
        #[inline(always)]
        fn run<S: Simd>(self, _s: S) -> usize {
            S::LANES
        }
    }
    cpu.run(L)
}

fn main() {
    // As the binary does: freed blocks stay in the heap (no page faults per call).
    burnlab_kernels::malloc::tune();
    let cpus = match std::env::var("BURNLAB_ISA") {
        Ok(_) => vec![Cpu::from_env().unwrap_or_else(|e| panic!("{e}"))],
        Err(_) => Cpu::all(),
    };
    let section = std::env::args().nth(1);
    let runs = |name: &str| section.as_deref().is_none_or(|s| s == name);
    for cpu in cpus {
        let isa = cpu.isa();
        let iters = 20_000_000;
        let t = Instant::now();
        black_box(cpu.run(Peak(iters)));
        let peak = (2 * 12 * lanes(cpu) * iters) as f64 / t.elapsed().as_secs_f64() / 1e9;
        println!("isa={isa} fma_peak_gflops={peak:.1}");
        // ResNet-20's stride-1 layers, then ResNet-18's at 224 px.
        let layers: &[(usize, usize)] =
            &[(16, 32), (32, 16), (64, 8), (64, 56), (128, 28), (256, 14), (512, 7)];
        for &(c, hw) in layers.iter().filter(|_| runs("conv")) {
            let mut xp = Padded::new(c, hw, hw, 1, 1);
            let x: Vec<f32> = (0..c * hw * hw).map(|i| (i as f32 * 0.37).sin()).collect();
            xp.fill(&x, c, hw, hw, 1, 1);
            let offs = tap_offsets(c, 3, 3, xp.hp, xp.wp);
            let len = hw * xp.wp;
            let wt: Vec<f32> = (0..c * offs.len()).map(|i| (i as f32 * 0.11).cos()).collect();
            let bias = vec![0.0; c];
            let mut out = vec![0.0; c * len];
            let reps = (40_000 * 1024 / (c * hw * hw)).max(1);
            // Useful multiply-adds only (the junk columns of the padded width not counted).
            let flops = (2 * c * offs.len() * hw * hw * reps) as f64;
            let t = Instant::now();
            for _ in 0..reps {
                wide_conv(cpu, &wt, &offs, &xp.data, len, &bias, &mut out);
            }
            let fwd = flops / t.elapsed().as_secs_f64() / 1e9;
            // The same layer with output channels as vectors (`channels`): real pixels only.
            let wtt = ChannelWeights::new(cpu, &wt, c, offs.len());
            let pixels: Vec<usize> =
                (0..hw).flat_map(|y| (0..hw).map(move |x| y * (hw + 1) + x)).collect();
            let t = Instant::now();
            for _ in 0..reps {
                channel_conv(cpu, &wtt, &offs, &xp.data, &pixels, &bias, &mut out, hw * hw, false);
            }
            let chan = flops / t.elapsed().as_secs_f64() / 1e9;
            let mut dyt: Vec<f32> = (0..len * c).map(|i| (i as f32 * 0.23).cos()).collect();
            dyt.extend([0.0; SLACK]);
            let mut dw = vec![0.0; offs.len() * c];
            let px = Pixels::new(hw, hw, xp.wp);
            let t = Instant::now();
            for _ in 0..reps {
                wide_weight_grad(cpu, &offs, &xp.data, px, &dyt, c, &mut dw, true);
            }
            let wg = flops / t.elapsed().as_secs_f64() / 1e9;
            // The input gradient of these layers is the same kernel on the same shapes (a
            // convolution of dy by the flipped weights, channels swapped: Ci = Co here).
            println!(
                "isa={isa} layer=c{c}_{hw}x{hw} conv_gflops={fwd:.1} input_grad_gflops={fwd:.1} weight_grad_gflops={wg:.1} conv_pct_peak={:.0} weight_grad_pct_peak={:.0} channel_conv_gflops={chan:.1} channel_conv_pct_peak={:.0}",
                100.0 * fwd / peak,
                100.0 * wg / peak,
                100.0 * chan / peak
            );
        }
        // Winograd (what `conv` runs on these layers) against the direct kernels, 16 images on
        // one thread (its weight transform is once per call, as in a training batch): Winograd
        // through its public entry points (padding and transforms included), the direct
        // kernels as above per image (the padding copy included, the output's junk-column copy
        // and dy's transpose left out). GFLOP/s count the direct convolution's multiply-adds. Rounds alternate the two (a noisy shared
        // machine slows both alike); medians of 5 rounds, and of the rounds' ratios.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
        for &(c, hw) in layers.iter().filter(|_| runs("winograd")) {
            let d = ConvDims {
                n: IMAGES,
                ci: c,
                h: hw,
                w: hw,
                co: c,
                kh: 3,
                kw: 3,
                stride: [1, 1],
                padding: [1, 1],
            };
            if !winograd::applies(&d) {
                println!("isa={isa} layer=c{c}_{hw}x{hw} winograd=declined");
                continue;
            }
            let x: Vec<f32> = (0..IMAGES * c * hw * hw).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..c * c * 9).map(|i| (i as f32 * 0.11).cos()).collect();
            let b = vec![0.0; c];
            let mut xp = Padded::new(c, hw, hw, 1, 1);
            let offs = tap_offsets(c, 3, 3, xp.hp, xp.wp);
            let len = hw * xp.wp;
            let mut out = vec![0.0; c * len];
            let mut dyt: Vec<f32> = (0..len * c).map(|i| (i as f32 * 0.23).cos()).collect();
            dyt.extend([0.0; SLACK]);
            let mut dw = vec![0.0; offs.len() * c];
            let flops = (2 * IMAGES * c * c * 9 * hw * hw) as f64;
            let gflops = |t: Instant| flops / t.elapsed().as_secs_f64() / 1e9;
            let with_wgrad = winograd_wgrad::takes(&d);
            let mut r: [Vec<f64>; 6] = Default::default();
            for _ in 0..5 {
                let t = Instant::now();
                for img in 0..IMAGES {
                    xp.fill(&x[img * c * hw * hw..(img + 1) * c * hw * hw], c, hw, hw, 1, 1);
                    wide_conv(cpu, &w, &offs, &xp.data, len, &b, &mut out);
                }
                let df = gflops(t);
                let t = Instant::now();
                pool.install(|| black_box(winograd::forward(cpu, &d, &x, &w, &b)));
                let wf = gflops(t);
                r[0].push(df);
                r[1].push(wf);
                r[2].push(wf / df);
                if with_wgrad {
                    let t = Instant::now();
                    for img in 0..IMAGES {
                        xp.fill(&x[img * c * hw * hw..(img + 1) * c * hw * hw], c, hw, hw, 1, 1);
                        let px = Pixels::new(hw, hw, xp.wp);
                        wide_weight_grad(cpu, &offs, &xp.data, px, &dyt, c, &mut dw, true);
                    }
                    let dg = gflops(t);
                    let t = Instant::now();
                    pool.install(|| black_box(winograd_wgrad::weight_grad(cpu, &d, &x, &x)));
                    let wg = gflops(t);
                    r[3].push(dg);
                    r[4].push(wg);
                    r[5].push(wg / dg);
                }
            }
            let [df, wf, sf, dg, wg, sg] = r.map(|mut v| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            });
            let wgrad = if with_wgrad {
                format!(
                    "direct_wgrad_gflops={dg:.1} winograd_wgrad_gflops={wg:.1} winograd_speedup_wgrad={sg:.2}"
                )
            } else {
                "winograd_wgrad=declined".into()
            };
            println!(
                "isa={isa} layer=c{c}_{hw}x{hw} direct_fwd_gflops={df:.1} winograd_fwd_gflops={wf:.1} winograd_speedup_fwd={sf:.2} {wgrad}"
            );
        }
        if runs("packed") {
            packed(cpu, peak);
        }
        if !runs("linear") {
            continue;
        }
        // The MLP's first layer at inference, one thread's share of a 256 batch: 128×3072·3072×512.
        let (m, k, n) = match std::env::var("LIN").ok().as_deref() {
            Some("small") => (128, 128, 512),
            Some("narrow") => (128, 3072, 32),
            _ => (128, 3072, 512),
        };
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let b = vec![0.0; n];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
        let reps = 3;
        let flops = (2 * m * k * n * reps) as f64;
        // GFLOP/s of `reps` calls of the kernel on one thread.
        let gflops_of = |call: &(dyn Fn() -> Vec<f32> + Sync)| {
            let t = Instant::now();
            for _ in 0..reps {
                black_box(pool.install(call));
            }
            flops / t.elapsed().as_secs_f64() / 1e9
        };
        let ours = || gflops_of(&|| linear::forward(cpu, &x, &w, &b, m, k, n));
        // As `eval` runs it: W packed once and kept across batches, only x's rows per call.
        let packed_w = linear::PackedW::new(cpu, &w, k, n);
        let ours_packed = || gflops_of(&|| linear::forward_packed(cpu, &x, &packed_w, &b, m));
        // The `gemm` crate (Burn's flex matmul) on the same product, one thread: the linear layer
        // goes through the kernel only where it wins (burnlab-ops `uses_kernel`). gemm picks its
        // own ISA (BURNLAB_ISA does not reach it), so it runs beside the best ISA only.
        let mut y = vec![0.0f32; m * n];
        let mut theirs = || {
            let t = Instant::now();
            for _ in 0..reps {
                // SAFETY: y is [m, n], x [m, k], w [k, n], all row-major and as long as the
                // strides given say.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        y.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                black_box(&y);
            }
            flops / t.elapsed().as_secs_f64() / 1e9
        };
        // Rounds alternate the two, so that a noisy (shared) machine slows both alike; the
        // medians, and the median of the rounds' ratios, are printed.
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let with_gemm = cpu.isa() == Cpu::best().isa();
        let (mut g_ours, mut g_theirs, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        let mut g_packed = Vec::new();
        for _ in 0..9 {
            let a = ours();
            g_ours.push(a);
            g_packed.push(ours_packed());
            if with_gemm {
                let b = theirs();
                g_theirs.push(b);
                ratio.push(a / b);
            }
        }
        let (g, gp) = (median(g_ours), median(g_packed));
        println!(
            "isa={isa} layer=linear_{m}x{k}x{n} linear_gflops={g:.1} linear_pct_peak={:.0} linear_packed_w_gflops={gp:.1} linear_packed_w_pct_peak={:.0}",
            100.0 * g / peak,
            100.0 * gp / peak
        );
        if with_gemm {
            let gg = median(g_theirs);
            println!(
                "gemm_isa={} layer=linear_{m}x{k}x{n} gemm_gflops={gg:.1} gemm_pct_peak_of_{isa}={:.0} linear_vs_gemm={:.3}",
                Isa::of_gemm(),
                100.0 * gg / peak,
                median(ratio)
            );
        }
        let t = Instant::now();
        for _ in 0..reps {
            black_box(pool.install(|| linear::forward(cpu, &x[..6 * k], &w, &b, 6, k, n)));
        }
        println!(
            "isa={isa} linear_6_rows_ms={:.2} linear_128_rows_ms={:.2}",
            t.elapsed().as_secs_f64() * 1e3 / reps as f64,
            (2 * m * k * n) as f64 / g / 1e6
        );
    }
}

/// The recurrences' per-step products on one thread: 16 batch rows (a 32 batch on 2 threads)
/// times the packed recurrent weight, 128 steps per call as in a sequence of 128.
fn packed(cpu: Cpu, peak: f64) {
    let isa = cpu.isa();
    let h = 256;
    for (name, k, n) in
        [("lstm_fwd", h, 4 * h), ("lstm_bwd", 4 * h, h), ("gru_fwd", h, 3 * h), ("rnn_fwd", h, h)]
    {
        let m = 16;
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let bp = PackedB::new(&b, k, n, n, 1);
        let mut c = vec![0.0f32; m * n];
        let steps = 512;
        let flops = (2 * m * k * n * steps) as f64;
        let mut g = Vec::new();
        for _ in 0..11 {
            let t = Instant::now();
            for _ in 0..steps {
                gemm_packed(cpu, m, &mut c, true, &a, &bp);
                c[0] *= 0.5;
            }
            black_box(&c);
            g.push(flops / t.elapsed().as_secs_f64() / 1e9);
        }
        g.sort_by(f64::total_cmp);
        let g = g[g.len() / 2];
        println!(
            "isa={isa} packed={name}_{m}x{k}x{n} packed_gflops={g:.1} packed_pct_peak={:.0}",
            100.0 * g / peak
        );
    }
}
