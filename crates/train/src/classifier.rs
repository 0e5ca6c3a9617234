//! The training wrapper: an image network plus its loss, as burn-train's Learner wants it.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use burnlab_data::ImageBatch;
use burnlab_models::{CifarResNet, LeNet5, LossKind, Mlp, ResNet9};

/// The image networks burnlab trains.
#[derive(Module, Debug)]
pub enum ImageNet {
    Mlp(Mlp),
    LeNet5(LeNet5),
    ResNet(CifarResNet),
    ResNet9(ResNet9),
}

impl ImageNet {
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            ImageNet::Mlp(m) => m.forward(images),
            ImageNet::LeNet5(m) => m.forward(images),
            ImageNet::ResNet(m) => m.forward(images),
            ImageNet::ResNet9(m) => m.forward(images),
        }
    }

    /// Trainable parameters (Burn's `num_params` also counts BatchNorm running statistics).
    pub fn num_trainable_params(&self) -> usize {
        match self {
            ImageNet::ResNet(m) => m.num_trainable_params(),
            ImageNet::ResNet9(m) => m.num_trainable_params(),
            other => other.num_params(),
        }
    }
}

#[derive(Module, Debug)]
pub struct ImageClassifier {
    pub net: ImageNet,
    #[module(skip)]
    pub loss: LossKind,
    /// Label smoothing of the training loss (validation and test report plain cross-entropy).
    #[module(skip)]
    pub label_smoothing: f64,
}

impl ImageClassifier {
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.forward(images)
    }

    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classify(batch, 0.0)
    }

    fn classify(&self, batch: ImageBatch, smoothing: f64) -> ClassificationOutput {
        let logits = self.logits(batch.images);
        let loss = self.loss.forward_smoothed(logits.clone(), batch.targets.clone(), smoothing);
        ClassificationOutput { loss, output: logits, targets: batch.targets }
    }
}

impl TrainStep for ImageClassifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.classify(batch, self.label_smoothing);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for ImageClassifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
