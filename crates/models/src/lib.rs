//! Burn modules for burnlab: configs and forward passes only, no file or network I/O.
#![forbid(unsafe_code)]

pub mod activation;
pub mod blocks;
pub mod charlm;
pub mod dropout;
pub mod gru_cell;
pub mod lenet5;
pub mod loss;
pub mod lstm_cell;
pub mod mlp;
pub mod recurrent;
pub mod resnet;
pub mod resnet9;
pub mod rnn_cell;
pub mod summary;
pub mod word2vec;

pub use activation::Activation;
pub use blocks::ShortcutKind;
pub use charlm::{CharLm, CharLmConfig};
pub use dropout::Dropout;
pub use lenet5::{LeNet5, LeNet5Config};
pub use loss::{LossKind, hinge_loss};
pub use mlp::{Mlp, MlpConfig, WeightInit};
pub use recurrent::{CellKind, Recurrent, RecurrentConfig, State};
pub use resnet::{CifarResNet, CifarResNetConfig};
pub use resnet9::{ResNet9, ResNet9Config};
pub use summary::{LayerRow, Summary, format_table};
pub use word2vec::{PairBatch, Word2Vec, Word2VecConfig};

/// Tests that draw from the flex device's RNG (shared by the whole process) hold this, so that a
/// test which seeds it and expects a repeatable draw is not interleaved with another's draws.
#[cfg(test)]
pub(crate) fn device_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
