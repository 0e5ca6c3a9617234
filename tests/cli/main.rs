//! End-to-end tests of the `burnlab` binary on small datasets the tests make themselves.
//! One test binary with modules, so the heavy Burn build links once.

mod chaos;
mod cnn;
mod common;
mod compare;
mod disk;
mod errors;
mod folders;
mod legacy;
mod mlp;
mod report;
mod resume;
mod rnn;
mod signals;
mod weights;
mod wgpu;
mod word2vec;
