//! Burn modules for burnlab: configs and forward passes only, no file or network I/O.
//!
//! By family: `image/` (MLP, LeNet-5, the CIFAR ResNets, ResNet-9 and their shared blocks),
//! `rnn/` (the RNN, LSTM and GRU cells, the recurrent stack, the character model), `word2vec.rs`;
//! and what they share: activations, dropout, losses, the layer tables of `summary.rs`.
#![forbid(unsafe_code)]

pub mod activation;
pub mod dropout;
pub mod image;
pub mod loss;
pub mod rnn;
pub mod summary;
pub mod word2vec;

pub use activation::Activation;
pub use dropout::Dropout;
pub use image::blocks::ShortcutKind;
pub use image::imagenet_resnet::{ResNet, ResNetConfig};
pub use image::lenet5::{LeNet5, LeNet5Config};
pub use image::mlp::{Mlp, MlpConfig, WeightInit};
pub use image::resnet::{CifarResNet, CifarResNetConfig};
pub use image::resnet9::{ResNet9, ResNet9Config};
pub use loss::{LossKind, hinge_loss};
pub use rnn::charlm::{CharLm, CharLmConfig};
pub use rnn::recurrent::{CellKind, Recurrent, RecurrentConfig, State};
pub use summary::{LayerRow, Summary, format_table};
pub use word2vec::{PairBatch, Word2Vec, Word2VecConfig};

/// Tests that draw from the flex device's RNG (shared by the whole process) hold this, so that a
/// test which seeds it and expects a repeatable draw is not interleaved with another's draws.
#[cfg(test)]
pub(crate) fn device_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
