//! burnlab's CPU kernels on plain f32 slices, free of Burn: convolutions and their gradients,
//! batch norm, the residual join, the inference linear layer, the recurrences and their
//! backward passes, matrix-vector products for sampling, vectorised sigmoid/tanh, the word2vec
//! Hogwild tables and the allocator settings.
//!
//! This crate holds every line of `unsafe` code in the workspace (the other crates say
//! `#![forbid(unsafe_code)]`). Kernels are written once against [`simd::Simd`] and run on
//! AVX-512, AVX2+FMA, NEON or plain loops through a [`Cpu`] token that only run-time detection
//! makes ([`Cpu::current`], lowered with `BURNLAB_ISA` to measure a smaller CPU).

pub mod batch_norm;
pub mod conv;
#[macro_use]
pub mod direct;
pub mod channels;
pub mod gemv;
pub mod hogwild;
pub mod isa;
mod layout;
pub mod linear;
pub mod malloc;
pub mod matmul;
pub mod packed;
mod par;
pub mod pool;
pub mod process;
pub mod recurrent;
pub mod residual;
pub mod simd;
pub mod vmath;
pub mod winograd;
mod winograd_f4;
pub mod winograd_wgrad;

pub use isa::{Cpu, Isa, IsaError, Kernel};
pub use par::{lane_sum, lane_total};
