//! burn-train's single-device training loop (`SingleDeviceTrainingStrategy`, which it follows
//! event for event) with what burn-train 0.22 has no hook for: checkpoints inside an epoch, every
//! `train.checkpoint_minutes` and after the step a signal stopped, and starting inside an epoch
//! from one. The loaders serve the rest of that epoch (`resume_at`) and seed dropout per
//! (epoch, batch), so a resumed run ends where the uninterrupted one does.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use burn::train::metric::store::EventStoreClient;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent, LearnerModel,
    LearningResult, SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader,
    TrainingComponents, TrainingItem, ValidLoader,
};

use super::checkpoint::{ResumePoint, remove_within_epoch, save_within_epoch};

pub struct Checkpointed {
    pub run: PathBuf,
    pub device: Device,
    /// Time between checkpoints inside an epoch; `None`: at epoch ends only.
    pub every: Option<Duration>,
    /// Where training starts when burn-train did not load an epoch-end checkpoint.
    pub start: ResumePoint,
    /// Set by a signal: write a checkpoint after the current step (training then stops).
    pub save_and_stop: Arc<AtomicBool>,
    /// The last epoch this launch trained and validated (0: none).
    pub epochs_done: Arc<AtomicUsize>,
}

/// What one epoch's steps share.
struct Epoch<'a, M: LearnerModel> {
    processor: &'a mut SupervisedTrainingEventProcessor<M>,
    interrupter: &'a Interrupter,
    store: &'a EventStoreClient,
    last_save: &'a mut Instant,
}

impl<M: LearnerModel> SupervisedLearningStrategy<M> for Checkpointed {
    fn train(
        &self,
        learner: Learner<M>,
        train: TrainLoader<M>,
        valid: ValidLoader<M>,
        mut components: TrainingComponents<M>,
    ) -> LearningResult<M> {
        let start = match components.checkpoint {
            Some(e) => ResumePoint { epoch: e + 1, step: 0 },
            None => self.start,
        };
        let interrupter = components.interrupter.clone();
        interrupter.fail_on_error(components.event_processor.process_train(LearnerEvent::Start {
            total_epochs: components.num_epochs,
            starting_epoch: start.epoch,
            label: components.label.clone(),
        }));
        components.checkpoint = Some(start.epochs_done());
        let (model, mut processor) = self.fit(components, learner, train, valid, start.epoch);
        interrupter.fail_on_error(processor.process_train(LearnerEvent::End(None)));
        let model = model.valid();
        interrupter.fail_on_error(processor.flush());
        LearningResult {
            model,
            renderer: processor.renderer(),
            interrupted: interrupter.interruption(),
            error: interrupter.error(),
        }
    }

    fn fit(
        &self,
        components: TrainingComponents<M>,
        mut learner: Learner<M>,
        train: TrainLoader<M>,
        valid: ValidLoader<M>,
        starting_epoch: usize,
    ) -> (M, SupervisedTrainingEventProcessor<M>) {
        learner.fork(&self.device);
        let TrainingComponents {
            num_epochs,
            interrupter,
            event_store,
            event_processor: mut processor,
            mut checkpointer,
            ..
        } = components;
        let (interrupter, event_store) = (&interrupter, &*event_store);
        let mut last_save = Instant::now();
        for epoch in starting_epoch..=num_epochs {
            let skip = if epoch == self.start.epoch { self.start.step } else { 0 };
            let fail = |r| interrupter.fail_on_error(r);
            fail(processor.process_train(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: train.num_items(),
            }));
            let mut steps = Epoch {
                processor: &mut processor,
                interrupter,
                store: event_store,
                last_save: &mut last_save,
            };
            let done = self.train_epoch(&mut learner, &train, epoch, skip, &mut steps);
            let at = ResumePoint { epoch, step: done };
            fail(processor.process_train(LearnerEvent::EndSplit(epoch)));
            if interrupter.should_stop() {
                self.save_if_signalled(&learner, at, interrupter, event_store);
                break;
            }
            fail(processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: valid.num_items(),
            }));
            validate(&learner, &valid, &mut processor, interrupter);
            fail(processor.process_valid(LearnerEvent::EndSplit(epoch)));
            fail(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            // The checkpointing strategy reads the epoch's metrics from the store.
            fail(processor.flush());
            if interrupter.should_stop() {
                // Stopped while validating: the resume validates again.
                self.save_if_signalled(&learner, at, interrupter, event_store);
                break;
            }
            if let Some(checkpointer) = &mut checkpointer {
                checkpointer.checkpoint(&learner, epoch, event_store);
            }
            self.epochs_done.store(epoch, Ordering::SeqCst);
            // Those inside earlier epochs are superseded by the previous epoch's checkpoint,
            // whole by now (this epoch's is still being written: its own stay until the next).
            remove_within_epoch(&self.run, |p| p.epoch < epoch);
            last_save = Instant::now();
        }
        // Dropping the checkpointer waits for its last files.
        drop(checkpointer);
        (learner.model(), processor)
    }
}

impl Checkpointed {
    /// A signal stops training with a checkpoint (an error or a diverged loss, without).
    fn save_if_signalled<M: LearnerModel>(
        &self,
        learner: &Learner<M>,
        at: ResumePoint,
        interrupter: &Interrupter,
        store: &EventStoreClient,
    ) {
        if self.save_and_stop.load(Ordering::SeqCst) && interrupter.error().is_none() && at.step > 0
        {
            save_within_epoch(&self.run, at, learner, interrupter, store);
        }
    }

    /// The steps of `epoch` after its first `skip` (the loader serves only those), with a
    /// checkpoint every `self.every`; returns the steps of it done.
    fn train_epoch<M: LearnerModel>(
        &self,
        learner: &mut Learner<M>,
        train: &TrainLoader<M>,
        epoch: usize,
        skip: usize,
        e: &mut Epoch<M>,
    ) -> usize {
        let mut iterator = train.iter();
        let mut step = skip;
        while let Some(item) = iterator.next() {
            let item = match item {
                Ok(item) => item,
                Err(err) => {
                    e.interrupter.fail(err);
                    break;
                }
            };
            step += 1;
            let progress = iterator.progress();
            let out = learner.train_step(item);
            learner.lr_step();
            learner.optimizer_step(out.grads);
            let item = TrainingItem::new(
                out.item,
                progress.clone(),
                Some(step),
                Some(learner.lr_current()),
            );
            e.interrupter
                .fail_on_error(e.processor.process_train(LearnerEvent::ProcessedItem(item)));

            if e.interrupter.should_stop() {
                break;
            }
            // The last step's state is saved at the epoch's end.
            let last = progress.items_processed >= progress.items_total;
            if self.every.is_some_and(|d| e.last_save.elapsed() >= d) && !last {
                save_within_epoch(
                    &self.run,
                    ResumePoint { epoch, step },
                    learner,
                    e.interrupter,
                    e.store,
                );
                *e.last_save = Instant::now();
            }
        }
        step
    }
}

fn validate<M: LearnerModel>(
    learner: &Learner<M>,
    valid: &ValidLoader<M>,
    processor: &mut SupervisedTrainingEventProcessor<M>,
    interrupter: &Interrupter,
) {
    let model = learner.model().valid();
    let mut iterator = valid.iter();
    let mut iteration = 0;
    while let Some(item) = iterator.next() {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                interrupter.fail(err);
                break;
            }
        };
        let progress = iterator.progress();
        iteration += 1;
        let item = InferenceStep::step(&model, item);
        let item = TrainingItem::new(item, progress, Some(iteration), None);
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
        if interrupter.should_stop() {
            break;
        }
    }
}
