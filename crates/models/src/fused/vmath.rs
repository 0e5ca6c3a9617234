//! Element-wise sigmoid and tanh over f32 slices, fast enough to sit beside a recurrent step's
//! matmul: a branch-free exp (Cephes' range reduction and polynomial, ~2 ulp) that LLVM
//! vectorises, compiled three times (AVX-512, AVX2+FMA, baseline) and picked at run time, so the
//! default build still runs on any x86-64 CPU. libm's scalar `expf` is ~10× slower here and
//! was the largest cost of a step after the matmuls.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// e^x for x in [-87.3, 88.3] (clamped outside), no branches.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.max(-87.3).min(88.3);
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
    p * f32::from_bits(bits)
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $body:ident, ($($arg:ident : $ty:ty),*)) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) { $body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) { $body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has just been checked to support the enabled features.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

#[inline(always)]
fn sigmoid_body(x: &mut [f32]) {
    for v in x {
        *v = sigmoid1(*v);
    }
}

#[inline(always)]
fn tanh_body(x: &mut [f32]) {
    for v in x {
        *v = tanh1(*v);
    }
}

#[inline(always)]
fn tanh_to_body(x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = tanh1(*v);
    }
}

dispatch!(
    /// x ← σ(x), in place.
    sigmoid, sigmoid_body, (x: &mut [f32]));
dispatch!(
    /// x ← tanh(x), in place.
    tanh, tanh_body, (x: &mut [f32]));
dispatch!(
    /// out ← tanh(x).
    tanh_to, tanh_to_body, (x: &[f32], out: &mut [f32]));

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
        v.extend([-200.0, -90.0, -88.0, -1e-6, 0.0, 1e-6, 88.0, 90.0, 200.0, 1e-30, -1e-30]);
        v
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_std() {
        let _rng = crate::device_rng_lock();
        for x in grid().into_iter().filter(|x| (-87.0..88.0).contains(x)) {
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}) = {a}, std {b}");
        }
    }

    #[test]
    fn sigmoid_and_tanh_match_std_on_a_grid_and_saturate() {
        let _rng = crate::device_rng_lock();
        let xs = grid();
        // 67 elements: not a multiple of any SIMD width.
        for chunk in xs.chunks(67) {
            let mut s = chunk.to_vec();
            sigmoid(&mut s);
            let mut t = chunk.to_vec();
            tanh(&mut t);
            let mut t2 = vec![0.0; chunk.len()];
            tanh_to(chunk, &mut t2);
            for (k, &x) in chunk.iter().enumerate() {
                let ws = 1.0 / (1.0 + (-(x as f64)).exp());
                let wt = (x as f64).tanh();
                assert!((s[k] as f64 - ws).abs() < 1e-6, "σ({x}) = {}, want {ws}", s[k]);
                assert!((t[k] as f64 - wt).abs() < 1e-6, "tanh({x}) = {}, want {wt}", t[k]);
                assert_eq!(t[k], t2[k]);
                assert!(s[k].is_finite() && t[k].is_finite() && (0.0..=1.0).contains(&s[k]) && (-1.0..=1.0).contains(&t[k]));
            }
        }
    }
}
