//! Burn modules for burnlab: configs and forward passes only, no file or network I/O.

pub mod activation;
pub mod dropout;
pub mod loss;
pub mod mlp;

pub use activation::Activation;
pub use dropout::Dropout;
pub use loss::{LossKind, hinge_loss};
pub use mlp::{Mlp, MlpConfig, WeightInit};
