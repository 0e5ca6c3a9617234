//! Which instruction set the kernels run on: detected once at run time, optionally lowered with
//! `BURNLAB_ISA=avx512|avx2|neon|plain` to measure what a smaller CPU would do.
//!
//! The ISA is a token ([`Cpu`]) holding one of the [`crate::simd`] types; those can only be made
//! by run-time detection (or by an `unsafe` constructor), so no safe function can run an
//! instruction the CPU lacks. A kernel is written once against [`crate::simd::Simd`] and run
//! through [`Cpu::run`], which compiles it once per ISA with that ISA's features enabled.

use std::fmt;
use std::sync::OnceLock;

use crate::simd::{Avx2, Avx512, Neon, Plain, Simd};

/// The instruction sets the kernels are written for, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 AVX-512F: 16 lanes, 32 registers.
    Avx512,
    /// x86-64 AVX2 with FMA: 8 lanes, 16 registers.
    Avx2,
    /// aarch64 Advanced SIMD: 4 lanes, 32 registers.
    Neon,
    /// No intrinsics: plain loops on 8-float arrays that the compiler vectorises for the
    /// target's baseline (SSE2 on x86-64).
    Plain,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Plain => "plain",
        }
    }

    /// The instruction set of the `gemm` crate's kernels on this CPU (Burn's matmuls on flex,
    /// burnlab's 1×1 convolutions, the recurrences' big products): its AVX-512 kernels where
    /// this build has them (the `gemm-avx512` feature, on in the `burnlab` binary by default)
    /// and the CPU has AVX-512, else AVX2+FMA, NEON or plain. `gemm` picks its kernels once,
    /// itself, so `BURNLAB_ISA` does not lower it; a build without the feature does.
    pub fn of_gemm() -> Isa {
        let has = Cpu::all().into_iter().map(Cpu::isa).collect::<Vec<_>>();
        Isa::ALL
            .into_iter()
            .filter(|&isa| isa != Isa::Avx512 || cfg!(feature = "gemm-avx512"))
            .find(|isa| has.contains(isa))
            .unwrap_or(Isa::Plain)
    }

    pub fn parse(s: &str) -> Result<Isa, IsaError> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| IsaError::Unknown(s.to_string()))
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsaError {
    #[error(
        "BURNLAB_ISA={0:?} is not an instruction set burnlab knows (avx512, avx2, neon, plain)"
    )]
    Unknown(String),
    #[error(
        "BURNLAB_ISA={wanted} asks for an instruction set this CPU does not have (it has: {have}); the override can only lower the ISA"
    )]
    Unsupported { wanted: Isa, have: String },
}

/// A proof that this CPU runs one ISA: the kernels' dispatch token.
#[derive(Clone, Copy, Debug)]
pub enum Cpu {
    Avx512(Avx512),
    Avx2(Avx2),
    Neon(Neon),
    Plain(Plain),
}

/// A kernel written once for every ISA: `run` is compiled per [`Simd`] type with that ISA's
/// target features, so it must be `#[inline(always)]` and do its work inside (what it calls
/// should be `#[inline(always)]` too, or it runs at the baseline ISA).
pub trait Kernel {
    type Output;
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

impl Cpu {
    /// The token for `isa` if this CPU supports it.
    pub fn new(isa: Isa) -> Option<Cpu> {
        match isa {
            Isa::Avx512 => Avx512::try_new().map(Cpu::Avx512),
            Isa::Avx2 => Avx2::try_new().map(Cpu::Avx2),
            Isa::Neon => Neon::try_new().map(Cpu::Neon),
            Isa::Plain => Some(Cpu::Plain(Plain::new())),
        }
    }

    /// The widest ISA this CPU supports.
    pub fn best() -> Cpu {
        Isa::ALL.into_iter().find_map(Cpu::new).unwrap_or(Cpu::Plain(Plain::new()))
    }

    /// Every ISA this CPU supports, widest first (`plain` always): what the tests run.
    pub fn all() -> Vec<Cpu> {
        Isa::ALL.into_iter().filter_map(Cpu::new).collect()
    }

    /// The best ISA, or the one `BURNLAB_ISA` names (an error if unknown or unsupported).
    pub fn from_env() -> Result<Cpu, IsaError> {
        Cpu::from_setting(std::env::var("BURNLAB_ISA").ok().as_deref())
    }

    /// [`Cpu::from_env`] given the variable's value (unset or empty: the best ISA).
    pub fn from_setting(value: Option<&str>) -> Result<Cpu, IsaError> {
        match value {
            Some(v) if !v.trim().is_empty() => {
                let wanted = Isa::parse(v)?;
                Cpu::new(wanted).ok_or_else(|| IsaError::Unsupported {
                    wanted,
                    have: Cpu::all().iter().map(|c| c.isa().name()).collect::<Vec<_>>().join(", "),
                })
            }
            _ => Ok(Cpu::best()),
        }
    }

    /// The ISA every kernel uses in this process: [`Cpu::from_env`], decided once. Binaries
    /// call [`Cpu::init`] first so that a bad `BURNLAB_ISA` is a clean error; here it panics.
    pub fn current() -> Cpu {
        *CURRENT.get_or_init(|| Cpu::from_env().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Decides [`Cpu::current`] from the environment, reporting a bad `BURNLAB_ISA`.
    pub fn init() -> Result<Cpu, IsaError> {
        let cpu = Cpu::from_env()?;
        Ok(*CURRENT.get_or_init(|| cpu))
    }

    pub fn isa(self) -> Isa {
        match self {
            Cpu::Avx512(_) => Isa::Avx512,
            Cpu::Avx2(_) => Isa::Avx2,
            Cpu::Neon(_) => Isa::Neon,
            Cpu::Plain(_) => Isa::Plain,
        }
    }

    /// Runs `k` compiled for this ISA.
    #[inline]
    pub fn run<K: Kernel>(self, k: K) -> K::Output {
        match self {
            Cpu::Avx512(s) => s.vectorize(k),
            Cpu::Avx2(s) => s.vectorize(k),
            Cpu::Neon(s) => s.vectorize(k),
            Cpu::Plain(s) => k.run(s),
        }
    }
}

static CURRENT: OnceLock<Cpu> = OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    /// gemm's ISA is one this CPU has: AVX-512 exactly where the build has gemm's AVX-512
    /// kernels and the CPU has AVX-512, never lowered by the override.
    #[test]
    fn gemm_runs_an_isa_this_cpu_has() {
        let has: Vec<Isa> = Cpu::all().into_iter().map(Cpu::isa).collect();
        let gemm = Isa::of_gemm();
        assert!(has.contains(&gemm), "{gemm} not in {has:?}");
        let avx512 = cfg!(feature = "gemm-avx512") && has.contains(&Isa::Avx512);
        assert_eq!(gemm == Isa::Avx512, avx512, "{gemm} with {has:?}");
        if !avx512 {
            // The widest of the rest.
            assert_eq!(gemm, has.into_iter().find(|&i| i != Isa::Avx512).unwrap_or(Isa::Plain));
        }
    }

    #[test]
    fn names_parse_back_and_unknown_names_are_errors() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Ok(isa));
            assert_eq!(Isa::parse(&isa.name().to_uppercase()), Ok(isa));
        }
        assert_eq!(Isa::parse("sse9"), Err(IsaError::Unknown("sse9".into())));
    }

    #[test]
    fn the_setting_can_only_lower_the_isa() {
        assert_eq!(Cpu::from_setting(None).map(Cpu::isa), Ok(Cpu::best().isa()));
        assert_eq!(Cpu::from_setting(Some(" ")).map(Cpu::isa), Ok(Cpu::best().isa()));
        assert_eq!(Cpu::from_setting(Some("plain")).map(Cpu::isa), Ok(Isa::Plain));
        assert!(matches!(Cpu::from_setting(Some("avx3")), Err(IsaError::Unknown(_))));
        for isa in Isa::ALL {
            match Cpu::new(isa) {
                Some(_) => assert_eq!(Cpu::from_setting(Some(isa.name())).map(Cpu::isa), Ok(isa)),
                None => {
                    let err =
                        Cpu::from_setting(Some(isa.name())).expect_err("unsupported ISA accepted");
                    assert!(matches!(err, IsaError::Unsupported { wanted, .. } if wanted == isa));
                    assert!(err.to_string().contains("does not have"), "{err}");
                }
            }
        }
    }

    #[test]
    fn plain_is_always_there_and_best_is_the_widest() {
        let all = Cpu::all();
        assert_eq!(all.last().map(|c| c.isa()), Some(Isa::Plain));
        assert_eq!(Cpu::best().isa(), all[0].isa());
        #[cfg(target_arch = "x86_64")]
        {
            assert!(Cpu::new(Isa::Neon).is_none(), "no NEON token on x86-64");
            assert_eq!(
                Cpu::new(Isa::Avx2).is_some(),
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            );
            assert_eq!(
                Cpu::new(Isa::Avx512).is_some(),
                std::arch::is_x86_feature_detected!("avx512f")
            );
        }
        #[cfg(target_arch = "aarch64")]
        assert!(Cpu::new(Isa::Neon).is_some() && Cpu::new(Isa::Avx2).is_none());
    }
}
