//! Optimisers and learning-rate schedules from the experiment config, with PyTorch's defaults
//! where Burn's differ (momentum dampening 0, Adam ε 1e-8, Adagrad ε 1e-10). SGD is
//! [`FusedSgd`](crate::optim::sgd::FusedSgd).

pub mod sgd;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdaGradConfig, AdamConfig, AdamWConfig, ModuleOptimizer};

use crate::config::{OptimConfig, OptimKind, ScheduleConfig, ScheduleKind};
use crate::optim::sgd::FusedSgd;

/// `host`: the backend keeps tensors in host memory (flex, ndarray), so SGD can update in place.
pub fn build_optimizer(c: &OptimConfig, host: bool) -> ModuleOptimizer {
    let decay = (c.weight_decay > 0.0).then(|| WeightDecayConfig::new(c.weight_decay as f32));
    match c.name {
        OptimKind::Sgd => FusedSgd {
            momentum: c.momentum as f32,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay as f32,
            host,
        }
        .into(),
        OptimKind::Adagrad => {
            AdaGradConfig::new().with_epsilon(1e-10).with_weight_decay(decay).init()
        }
        OptimKind::Adam => AdamConfig::new().with_epsilon(1e-8).with_weight_decay(decay).init(),
        OptimKind::Adamw => {
            AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(c.weight_decay as f32).init()
        }
    }
}

/// The run's learning-rate schedule, and with `optim.backbone_lr_scale` ≠ 1 a second group
/// (every parameter but `head`'s) on the same schedule at lr × scale: Burn's module scheduler
/// gives each parameter the rate of the last group it matches.
pub fn module_schedule(
    optim: &OptimConfig,
    schedule: &ScheduleConfig,
    steps_per_epoch: usize,
    epochs: usize,
    head: ParamGroup,
) -> ModuleLrScheduler {
    let base = ModuleLrScheduler::new(Schedule::new(schedule, optim.lr, steps_per_epoch, epochs));
    if optim.backbone_lr_scale == 1.0 {
        return base;
    }
    let lr = optim.lr * optim.backbone_lr_scale;
    base.with_group(
        ParamGroup::all().exclude(head),
        Schedule::new(schedule, lr, steps_per_epoch, epochs),
    )
}

/// Per-step learning rate as a closed form of the step index, so that a resumed run (which
/// restores only the step counter) continues the same curve.
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: ScheduleKind,
    base_lr: f64,
    warmup_steps: usize,
    total_steps: usize,
    /// Steps taken so far.
    step: usize,
}

impl Schedule {
    pub fn new(c: &ScheduleConfig, base_lr: f64, steps_per_epoch: usize, epochs: usize) -> Self {
        let total_steps = (steps_per_epoch * epochs).max(1);
        let mut warmup_steps = (c.warmup_epochs * steps_per_epoch as f64).round() as usize;
        if c.name == ScheduleKind::Onecycle && warmup_steps == 0 {
            warmup_steps = (0.3 * total_steps as f64).round() as usize;
        }
        Self {
            kind: c.name,
            base_lr,
            warmup_steps: warmup_steps.min(total_steps - 1),
            total_steps,
            step: 0,
        }
    }

    /// Learning rate of step `s` (0-based).
    pub fn lr_at(&self, s: usize) -> f64 {
        let lr = self.base_lr;
        let w = self.warmup_steps;
        let cosine = |from: f64, to: f64, t: f64| {
            to + 0.5 * (from - to) * (1.0 + (std::f64::consts::PI * t).cos())
        };
        match self.kind {
            ScheduleKind::Onecycle => {
                // PyTorch OneCycleLR defaults: start lr/25, end lr/(25·1e4); linear up, cosine down.
                let start = lr / 25.0;
                let end = start / 1e4;
                if s < w {
                    start + (lr - start) * s as f64 / w as f64
                } else {
                    let t = (s - w) as f64 / (self.total_steps - w).max(1) as f64;
                    cosine(lr, end, t.min(1.0))
                }
            }
            _ if s < w => lr * (s + 1) as f64 / w as f64,
            ScheduleKind::Constant => lr,
            ScheduleKind::Cosine => {
                let t = (s - w) as f64 / (self.total_steps - w) as f64;
                cosine(lr, 0.0, t.min(1.0))
            }
        }
    }
}

impl LrScheduler for Schedule {
    fn step(&mut self) -> f64 {
        let lr = self.lr_at(self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind, warmup: f64) -> Schedule {
        Schedule::new(&ScheduleConfig { name: kind, warmup_epochs: warmup }, 0.1, 10, 4)
    }

    #[test]
    fn cosine_matches_pytorch_peer_formula() {
        let s = sched(ScheduleKind::Cosine, 0.0);
        for step in [0, 7, 20, 39] {
            let want = 0.5 * 0.1 * (1.0 + (std::f64::consts::PI * step as f64 / 40.0).cos());
            assert!((s.lr_at(step) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn warmup_then_constant() {
        let s = sched(ScheduleKind::Constant, 1.0);
        assert!((s.lr_at(0) - 0.01).abs() < 1e-12);
        assert!((s.lr_at(9) - 0.1).abs() < 1e-12);
        assert_eq!(s.lr_at(30), 0.1);
    }

    #[test]
    fn onecycle_peaks_at_lr() {
        let s = sched(ScheduleKind::Onecycle, 0.0);
        assert_eq!(s.warmup_steps, 12);
        assert!((s.lr_at(0) - 0.004).abs() < 1e-12);
        assert!((s.lr_at(12) - 0.1).abs() < 1e-12);
        assert!(s.lr_at(39) < 0.001);
    }

    #[test]
    fn record_round_trip_continues_curve() {
        let mut a = sched(ScheduleKind::Cosine, 0.5);
        for _ in 0..13 {
            a.step();
        }
        let mut b = sched(ScheduleKind::Cosine, 0.5);
        b.load_record(a.to_record());
        assert_eq!(a.step(), b.step());
    }
}
