//! The image classifiers, one file each, and the convolution blocks the ResNets share.

pub mod blocks;
pub mod imagenet_resnet;
pub mod lenet5;
pub mod mlp;
pub mod resnet;
pub mod resnet9;
