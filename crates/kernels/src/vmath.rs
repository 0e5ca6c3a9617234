//! Element-wise sigmoid and tanh over f32 slices, fast enough to sit beside a recurrent step's
//! matmul: a branch-free exp (Cephes' range reduction and polynomial, ~2 ulp) that the compiler
//! vectorises, compiled per ISA through [`Cpu::run`]. libm's scalar `expf` is ~10× slower here
//! and was the largest cost of a step after the matmuls.
//!
//! NaN stays NaN (a diverging run must reach the NaN-loss stop, not be clamped to a number).

use crate::isa::{Cpu, Kernel};
use crate::simd::Simd;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// e^x for x in [-87.3, 88.3] (clamped outside; NaN in, NaN out), no branches.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Comparisons rather than f32::max/min, which return the other operand for a NaN.
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.3 { 88.3 } else { x };
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let p = p * r * r + r + 1.0;
    // 2^n from the integer sitting in t's low bits: (n + 127) << 23.
    let bits = t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23;
    let y = p * f32::from_bits(bits);
    // A NaN's t bits give a finite power of two: keep the NaN explicitly.
    if x.is_nan() { x } else { y }
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

enum Op<'a> {
    Sigmoid(&'a mut [f32]),
    Tanh(&'a mut [f32]),
    TanhTo(&'a [f32], &'a mut [f32]),
}

impl Kernel for Op<'_> {
    type Output = ();

    /// Plain loops: compiled inside the ISA's features, the compiler vectorises them.
    #[inline(always)]
    fn run<S: Simd>(self, _s: S) {
        match self {
            Op::Sigmoid(x) => x.iter_mut().for_each(|v| *v = sigmoid1(*v)),
            Op::Tanh(x) => x.iter_mut().for_each(|v| *v = tanh1(*v)),
            Op::TanhTo(x, out) => {
                assert_eq!(x.len(), out.len(), "tanh_to: lengths differ");
                out.iter_mut().zip(x).for_each(|(o, v)| *o = tanh1(*v));
            }
        }
    }
}

/// x ← σ(x), in place.
pub fn sigmoid(cpu: Cpu, x: &mut [f32]) {
    cpu.run(Op::Sigmoid(x))
}

/// x ← tanh(x), in place.
pub fn tanh(cpu: Cpu, x: &mut [f32]) {
    cpu.run(Op::Tanh(x))
}

/// out ← tanh(x).
pub fn tanh_to(cpu: Cpu, x: &[f32], out: &mut [f32]) {
    cpu.run(Op::TanhTo(x, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        // A coarser grid under Miri.
        let step = if cfg!(miri) { 97 } else { 1 };
        let mut v: Vec<f32> = (-4000..=4000).step_by(step).map(|i| i as f32 * 0.01).collect();
        v.extend([-200.0, -90.0, -88.0, -1e-6, 0.0, 1e-6, 88.0, 90.0, 200.0, 1e-30, -1e-30]);
        v
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_std() {
        // Against f64's exp (Miri perturbs std's float functions by a few ulp on purpose; in f64
        // that is far below this tolerance).
        for x in grid().into_iter().filter(|x| (-87.0..88.0).contains(x)) {
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}) = {a}, f64 {b}");
        }
    }

    #[test]
    fn sigmoid_and_tanh_match_std_on_a_grid_and_saturate_on_every_isa() {
        let xs = grid();
        for cpu in Cpu::all() {
            // 67 elements: not a multiple of any SIMD width.
            for chunk in xs.chunks(67) {
                let mut s = chunk.to_vec();
                sigmoid(cpu, &mut s);
                let mut t = chunk.to_vec();
                tanh(cpu, &mut t);
                let mut t2 = vec![0.0; chunk.len()];
                tanh_to(cpu, chunk, &mut t2);
                for (k, &x) in chunk.iter().enumerate() {
                    let ws = 1.0 / (1.0 + (-(x as f64)).exp());
                    let wt = (x as f64).tanh();
                    assert!(
                        (s[k] as f64 - ws).abs() < 1e-6,
                        "{:?} σ({x}) = {}, want {ws}",
                        cpu.isa(),
                        s[k]
                    );
                    assert!(
                        (t[k] as f64 - wt).abs() < 1e-6,
                        "{:?} tanh({x}) = {}, want {wt}",
                        cpu.isa(),
                        t[k]
                    );
                    assert_eq!(t[k], t2[k]);
                    assert!(
                        s[k].is_finite()
                            && t[k].is_finite()
                            && (0.0..=1.0).contains(&s[k])
                            && (-1.0..=1.0).contains(&t[k])
                    );
                }
            }
        }
    }

    /// A NaN (a diverging run) stays NaN through every function on every ISA, and infinities
    /// saturate.
    #[test]
    fn nan_stays_nan_and_infinities_saturate() {
        for cpu in Cpu::all() {
            let mut v = vec![
                1.0,
                f32::NAN,
                -2.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                0.5,
                f32::NAN,
                3.0,
                0.0,
                f32::NAN,
            ];
            let mut s = v.clone();
            sigmoid(cpu, &mut s);
            let mut t = vec![0.0; v.len()];
            tanh_to(cpu, &v, &mut t);
            tanh(cpu, &mut v);
            for (i, (a, b)) in s.iter().zip(&t).enumerate() {
                assert_eq!(
                    a.is_nan(),
                    [1, 6, 9].contains(&i),
                    "{:?} sigmoid[{i}] = {a}",
                    cpu.isa()
                );
                assert_eq!(b.is_nan(), [1, 6, 9].contains(&i), "{:?} tanh[{i}] = {b}", cpu.isa());
                // The same value in place and out of place (a NaN's payload bits are not
                // specified by Rust's float semantics, so NaN only has to stay NaN).
                assert!(
                    v[i] == *b || v[i].is_nan() && b.is_nan(),
                    "{:?} tanh[{i}]: {} vs {b}",
                    cpu.isa(),
                    v[i]
                );
            }
            assert!(
                s[3] == 1.0 && s[4] < 1e-30 && t[3] == 1.0 && t[4] == -1.0,
                "{:?}: {s:?} {t:?}",
                cpu.isa()
            );
        }
    }
}
