//! burnlab's training application: the `burnlab` binary (`main.rs`) is a thin CLI over it;
//! being a library too lets the fuzz targets (`fuzz/`) reach its parsers.
//!
//! Where things are: `cli`, `backend`, `config` and `optim` are the plumbing every task shares;
//! `tasks/` holds one folder per task (image, charlm, word2vec); `run/` the run folder, its
//! record and what training writes into it; `insight/` what reads it back (TensorBoard, plots,
//! `report`, `runs`); `compare/` cross-validation and sweeps (runs of `train` side by side);
//! `fuzz` the parser fuzz targets.
#![forbid(unsafe_code)]

pub mod backend;
pub mod cli;
pub mod compare;
pub mod config;
pub mod fuzz;
pub mod insight;
pub mod optim;
pub mod run;
pub mod tasks;
pub mod weights;
