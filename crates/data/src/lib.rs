//! Datasets for burnlab: downloads (checksum + atomic rename), parsing, image folders,
//! augmentation and batching. No model code.
#![forbid(unsafe_code)]

pub mod augment;
pub mod chars;
pub mod cifar;
pub mod corpus;
pub mod download;
pub mod error;
pub mod folds;
pub mod image_folder;
pub mod image_set;
pub mod loader;
pub mod points;
pub mod sampling;
pub mod source;
pub mod text8;
pub mod vectors;

pub use augment::{Augment, Rect};
pub use corpus::{Corpus, Vocab};
pub use error::DataError;
pub use image_set::{ImageSet, Normalization};
pub use loader::{EpochTiming, ImageBatch, ImageLoader};
pub use source::{DataOptions, ImageData, load_image_data, load_test_data};
pub use vectors::WordVectors;

pub type Result<T, E = DataError> = std::result::Result<T, E>;
