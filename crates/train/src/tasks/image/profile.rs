//! `burnlab profile MODEL`: where a training step goes. Data preparation, forward + loss,
//! backward and the optimiser step are timed apart, with the device synchronised between phases,
//! on synthetic CIFAR-sized images (no dataset needed). Prints key=value lines.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use burnlab_data::{Augment, ImageBatch, ImageLoader, ImageSet, Normalization};
use rand::{Rng, SeedableRng};

use crate::cli::ProfileArgs;
use crate::config;
use crate::optim::build_optimizer;
use crate::run::launch::seeded_init;
use crate::tasks::image::model::{build_model, model_choice};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// `n` random `side` × `side` RGB images in 10 classes (timing needs no real data).
fn random_images(n: usize, side: usize) -> ImageSet {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    ImageSet {
        images: (0..n * 3 * side * side).map(|_| rng.random()).collect(),
        labels: (0..n).map(|_| rng.random_range(0..10)).collect(),
        classes: (0..10).map(|i| format!("c{i}")).collect(),
        channels: 3,
        height: side,
        width: side,
        own_sizes: None,
        lazy: None,
    }
}

/// Milliseconds of each of `steps` runs of `f`, after `warmup` untimed ones.
fn time_ms(steps: usize, warmup: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..warmup + steps)
        .filter_map(|i| {
            let t0 = Instant::now();
            f();
            (i >= warmup).then(|| 1e3 * t0.elapsed().as_secs_f64())
        })
        .collect()
}

pub fn profile_command(args: ProfileArgs) -> Result<()> {
    if args.steps == 0 || args.batch_size == 0 {
        bail!("--steps and --batch-size must be at least 1");
    }
    let (default_config, mut sets) = model_choice(&args.model);
    sets.extend(args.sets.iter().cloned());
    let exp = config::load_image(&PathBuf::from(default_config), &sets)?;
    let device = args.backend.device()?;
    let ad = device.clone().autodiff();
    let host = args.backend.is_host();
    let side = args.image_size.unwrap_or(exp.data.image_size);
    let image = [3usize, side, side];
    let warmup = 2;
    let n = args.batch_size * (args.steps + warmup);

    let set = Arc::new(random_images(n, side));
    let norm = Normalization { mean: vec![0.5; 3], std: vec![0.25; 3] };
    let augment = Augment { random_resized: false, ..exp.data.augment() };
    let loader = ImageLoader::new(set.clone(), args.batch_size, &norm, ad.clone())
        .shuffle(0)
        .augment(augment);

    // Data alone: the loader's worker prepares (augments, standardises) and uploads batches.
    let t = Instant::now();
    let batches: Vec<ImageBatch> =
        loader.iter().collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let data_ms = 1e3 * t.elapsed().as_secs_f64() / batches.len() as f64;

    let model = seeded_init(exp.seed, |d| build_model(&exp, 10, image, host, d));
    let mut model = model.fork(&ad).train();
    let mut optim = build_optimizer(&exp.optim, host);
    let sync = |d: &Device| d.sync().map_err(|e| anyhow::anyhow!("{e:?}"));
    let (mut fwd, mut bwd, mut opt) = (Vec::new(), Vec::new(), Vec::new());
    for (i, batch) in batches.iter().enumerate() {
        let t0 = Instant::now();
        let out = model.forward_classification(batch.clone());
        let _loss: f32 = out.loss.clone().into_scalar();
        let t1 = Instant::now();
        let grads = out.loss.backward();
        sync(&device)?;
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(ModuleLearningRate::from(exp.optim.lr), model, grads);
        sync(&device)?;
        let t3 = Instant::now();
        if i >= warmup {
            fwd.push(1e3 * (t1 - t0).as_secs_f64());
            bwd.push(1e3 * (t2 - t1).as_secs_f64());
            opt.push(1e3 * (t3 - t2).as_secs_f64());
        }
    }
    // Inference: eval mode, batch 256, no autodiff.
    let eval = model.valid();
    let x = batches[0].images.clone().inner();
    let x =
        burn::tensor::Tensor::cat(vec![x.clone(), x], 0).slice([0..256.min(2 * args.batch_size)]);
    let infer = time_ms(args.steps, warmup, || drop(eval.logits(x.clone()).into_data()));
    let (f, b, o) = (median(fwd), median(bwd), median(opt));
    let b_infer = x.dims()[0];
    println!(
        "task=profile_step model={} backend={} isa={} batch={} steps={}",
        args.model,
        args.backend,
        burnlab_kernels::Cpu::current().isa(),
        args.batch_size,
        args.steps
    );
    println!("data_ms_per_batch={data_ms:.2}");
    println!("forward_loss_ms={f:.2}");
    println!("backward_ms={b:.2}");
    println!("optimizer_ms={o:.2}");
    println!("step_ms={:.2}", f + b + o);
    println!("train_img_per_s={:.1}", args.batch_size as f64 * 1e3 / (f + b + o));
    println!("infer_batch={b_infer}");
    println!("infer_ms={:.2}", median(infer.clone()));
    println!("infer_img_per_s={:.1}", b_infer as f64 * 1e3 / median(infer));
    Ok(())
}
