//! Image classification (MLP, softmax/SVM, LeNet-5, ResNets) on CIFAR-10 or an image folder:
//! training, the classifier wrapper burn-train drives, eval/predict, and the step profiler.

pub mod classifier;
pub mod data;
pub mod eval;
pub mod model;
pub mod profile;
pub mod train;
