//! The playground's network: a few dense layers on 2-D points, trained full-batch. Written out
//! in plain `f64` loops rather than as a Burn module: a step of a 500-point, 8-unit net is a few
//! microseconds of arithmetic, where a tensor framework's per-operation dispatch would cost more
//! than the work (1,000 epochs must take well under a second), and every line of the forward and
//! backward pass is here to read.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Hidden units' non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
    Linear,
}

impl Activation {
    fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(0.0),
            Activation::Sigmoid => sigmoid(z),
            Activation::Linear => z,
        }
    }

    /// The derivative, from the output `a` = f(z) (and z for ReLU).
    fn slope(self, z: f64, a: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => f64::from(u8::from(z > 0.0)),
            Activation::Sigmoid => a * (1.0 - a),
            Activation::Linear => 1.0,
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// What the last layer computes and which loss trains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// One logit per class, softmax cross-entropy.
    Softmax,
    /// One unit, sigmoid, binary cross-entropy: logistic regression when there is no hidden layer.
    Logistic,
    /// One unit, the perceptron criterion max(0, −y·s) with y = ±1: its gradient step is
    /// Rosenblatt's rule (add y·x for every misclassified point).
    Perceptron,
}

/// One dense layer: `w` is [out][in] row-major.
#[derive(Clone, Debug)]
pub struct Dense {
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    pub inputs: usize,
    pub outputs: usize,
}

#[derive(Clone, Debug)]
pub struct Net {
    pub layers: Vec<Dense>,
    pub activation: Activation,
    pub output: Output,
    pub classes: usize,
}

/// A forward pass's values, kept for the backward pass: per layer its pre-activations and
/// activations (the input first), and the dropout masks of hidden layers.
pub struct Pass {
    z: Vec<Vec<f64>>,
    a: Vec<Vec<f64>>,
    masks: Vec<Option<Vec<f64>>>,
}

impl Net {
    /// A net for `inputs` features: `hidden` widths, then the output layer; weights drawn as
    /// Glorot (He for ReLU) uniform, biases 0.
    pub fn new(
        inputs: usize,
        hidden: &[usize],
        classes: usize,
        activation: Activation,
        output: Output,
        seed: u64,
    ) -> Net {
        let mut rng = StdRng::seed_from_u64(seed);
        let outs = if output == Output::Softmax { classes } else { 1 };
        let mut widths = vec![inputs];
        widths.extend_from_slice(hidden);
        widths.push(outs);
        let layers = widths
            .windows(2)
            .map(|w| {
                let (i, o) = (w[0], w[1]);
                let limit = if activation == Activation::Relu {
                    (6.0 / i as f64).sqrt()
                } else {
                    (6.0 / (i + o) as f64).sqrt()
                };
                Dense {
                    w: (0..i * o).map(|_| rng.random_range(-limit..limit)).collect(),
                    b: vec![0.0; o],
                    inputs: i,
                    outputs: o,
                }
            })
            .collect();
        Net { layers, activation, output, classes }
    }

    /// Sum of squared weights (biases not counted), the L2 penalty's ‖W‖².
    pub fn weight_norm_sq(&self) -> f64 {
        self.layers.iter().flat_map(|l| &l.w).map(|w| w * w).sum()
    }

    /// The forward pass over `n` rows of `x`; `dropout` (with its rng) drops hidden units,
    /// scaling the kept ones by 1/(1 − p).
    pub fn forward(&self, x: &[f64], n: usize, dropout: Option<(f64, &mut StdRng)>) -> Pass {
        let mut pass = Pass { z: Vec::new(), a: vec![x.to_vec()], masks: Vec::new() };
        let mut drop = dropout;
        let last = self.layers.len() - 1;
        for (li, l) in self.layers.iter().enumerate() {
            let input = &pass.a[li];
            let mut z = vec![0.0; n * l.outputs];
            for r in 0..n {
                let row = &input[r * l.inputs..(r + 1) * l.inputs];
                for o in 0..l.outputs {
                    let w = &l.w[o * l.inputs..(o + 1) * l.inputs];
                    z[r * l.outputs + o] =
                        l.b[o] + row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
                }
            }
            let mut a = if li == last {
                z.clone()
            } else {
                z.iter().map(|&v| self.activation.apply(v)).collect()
            };
            let mut mask = None;
            if li != last
                && let Some((p, rng)) = drop.as_mut()
                && *p > 0.0
            {
                let keep = 1.0 / (1.0 - *p);
                let m: Vec<f64> = (0..a.len())
                    .map(|_| if rng.random::<f64>() < *p { 0.0 } else { keep })
                    .collect();
                a.iter_mut().zip(&m).for_each(|(v, k)| *v *= k);
                mask = Some(m);
            }
            pass.z.push(z);
            pass.a.push(a);
            pass.masks.push(mask);
        }
        pass
    }

    /// The logits (scores) of the last forward pass.
    pub fn logits(pass: &Pass) -> &[f64] {
        pass.a.last().map_or(&[], |v| v.as_slice())
    }

    /// Class probabilities per row (sigmoid outputs as [1 − p, p]; the perceptron's score
    /// through a sigmoid, which only shades the picture).
    pub fn probabilities(&self, logits: &[f64], n: usize) -> Vec<f64> {
        let k = self.classes;
        let mut p = vec![0.0; n * k];
        for r in 0..n {
            if self.output == Output::Softmax {
                let row = &logits[r * k..(r + 1) * k];
                let max = row.iter().copied().fold(f64::MIN, f64::max);
                let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..k {
                    p[r * k + c] = e[c] / sum;
                }
            } else {
                let s = sigmoid(logits[r]);
                p[r * k] = 1.0 - s;
                p[r * k + 1] = s;
            }
        }
        p
    }

    /// The predicted class of each row.
    pub fn predict(&self, logits: &[f64], n: usize) -> Vec<u32> {
        (0..n)
            .map(|r| match self.output {
                Output::Softmax => {
                    let row = &logits[r * self.classes..(r + 1) * self.classes];
                    let mut best = 0;
                    for c in 1..row.len() {
                        if row[c] > row[best] {
                            best = c;
                        }
                    }
                    best as u32
                }
                _ => u32::from(logits[r] > 0.0),
            })
            .collect()
    }

    /// Mean data loss over the rows, plus (λ/2)‖W‖².
    pub fn loss(&self, logits: &[f64], labels: &[u32], l2: f64) -> f64 {
        let n = labels.len();
        let data: f64 = (0..n)
            .map(|r| {
                let y = labels[r] as usize;
                match self.output {
                    Output::Softmax => {
                        let row = &logits[r * self.classes..(r + 1) * self.classes];
                        let max = row.iter().copied().fold(f64::MIN, f64::max);
                        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                        lse - row[y]
                    }
                    // −log σ(±s), written stably as softplus(∓s).
                    Output::Logistic => {
                        let s = if y == 1 { -logits[r] } else { logits[r] };
                        s.max(0.0) + (-s.abs()).exp().ln_1p()
                    }
                    Output::Perceptron => {
                        let sign = if y == 1 { 1.0 } else { -1.0 };
                        (-sign * logits[r]).max(0.0)
                    }
                }
            })
            .sum();
        data / n.max(1) as f64 + 0.5 * l2 * self.weight_norm_sq()
    }

    /// Gradients of [`Net::loss`] for the pass: (dW, db) per layer.
    pub fn backward(&self, pass: &Pass, labels: &[u32], l2: f64) -> Vec<(Vec<f64>, Vec<f64>)> {
        let n = labels.len();
        let logits = Self::logits(pass);
        let outs = self.layers.last().map_or(1, |l| l.outputs);
        let mut dz = vec![0.0; n * outs];
        let scale = 1.0 / n.max(1) as f64;
        match self.output {
            Output::Softmax => {
                let p = self.probabilities(logits, n);
                for r in 0..n {
                    for c in 0..outs {
                        let y = f64::from(u8::from(labels[r] as usize == c));
                        dz[r * outs + c] = (p[r * outs + c] - y) * scale;
                    }
                }
            }
            Output::Logistic => {
                for r in 0..n {
                    dz[r] = (sigmoid(logits[r]) - f64::from(labels[r])) * scale;
                }
            }
            Output::Perceptron => {
                for r in 0..n {
                    let sign = if labels[r] == 1 { 1.0 } else { -1.0 };
                    if sign * logits[r] < 0.0 {
                        dz[r] = -sign * scale;
                    }
                }
            }
        }
        let mut grads = vec![(Vec::new(), Vec::new()); self.layers.len()];
        for li in (0..self.layers.len()).rev() {
            let l = &self.layers[li];
            let input = &pass.a[li];
            let mut dw = vec![0.0; l.w.len()];
            let mut db = vec![0.0; l.outputs];
            for r in 0..n {
                let row = &input[r * l.inputs..(r + 1) * l.inputs];
                for o in 0..l.outputs {
                    let g = dz[r * l.outputs + o];
                    db[o] += g;
                    for (d, a) in dw[o * l.inputs..(o + 1) * l.inputs].iter_mut().zip(row) {
                        *d += g * a;
                    }
                }
            }
            for (d, w) in dw.iter_mut().zip(&l.w) {
                *d += l2 * w;
            }
            if li > 0 {
                // Into the previous layer's pre-activations: through W, the mask, the slope.
                let (z, a) = (&pass.z[li - 1], &input);
                let mask = pass.masks[li - 1].as_deref();
                let mut prev = vec![0.0; n * l.inputs];
                for r in 0..n {
                    for i in 0..l.inputs {
                        let mut s = 0.0;
                        for o in 0..l.outputs {
                            s += dz[r * l.outputs + o] * l.w[o * l.inputs + i];
                        }
                        let idx = r * l.inputs + i;
                        let keep = mask.map_or(1.0, |m| m[idx]);
                        // `a` holds the dropped-out activation; the slope needs the unmasked one.
                        let act =
                            if keep > 0.0 { a[idx] / keep } else { self.activation.apply(z[idx]) };
                        prev[idx] = s * keep * self.activation.slope(z[idx], act);
                    }
                }
                dz = prev;
            }
            grads[li] = (dw, db);
        }
        grads
    }
}

/// Adam (Kingma & Ba) over every weight and bias, or plain gradient descent with momentum 0.9.
pub struct Optimizer {
    adam: bool,
    lr: f64,
    step: i32,
    m: Vec<(Vec<f64>, Vec<f64>)>,
    v: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Optimizer {
    pub fn new(net: &Net, adam: bool, lr: f64) -> Optimizer {
        let zeros: Vec<(Vec<f64>, Vec<f64>)> =
            net.layers.iter().map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()])).collect();
        Optimizer { adam, lr, step: 0, m: zeros.clone(), v: zeros }
    }

    pub fn step(&mut self, net: &mut Net, grads: &[(Vec<f64>, Vec<f64>)]) {
        self.step += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let (c1, c2) = (1.0 - b1.powi(self.step), 1.0 - b2.powi(self.step));
        for (li, l) in net.layers.iter_mut().enumerate() {
            let (gw, gb) = &grads[li];
            let pairs = [(&mut l.w, gw, 0usize), (&mut l.b, gb, 1)];
            for (param, g, which) in pairs {
                let m = if which == 0 { &mut self.m[li].0 } else { &mut self.m[li].1 };
                for i in 0..param.len() {
                    if self.adam {
                        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                        let v = if which == 0 { &mut self.v[li].0 } else { &mut self.v[li].1 };
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        param[i] -= self.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                    } else {
                        m[i] = 0.9 * m[i] + g[i];
                        param[i] -= self.lr * m[i];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gradient of every output kind and activation against central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let x = [0.3, -0.7, 1.1, 0.4, -0.2, 0.9, 0.5, 0.5, -1.0, 0.2];
        let n = 5;
        for output in [Output::Softmax, Output::Logistic, Output::Perceptron] {
            for act in [Activation::Tanh, Activation::Relu, Activation::Sigmoid, Activation::Linear]
            {
                let classes = if output == Output::Softmax { 3 } else { 2 };
                let labels: Vec<u32> = (0..n as u32).map(|i| i % classes as u32).collect();
                let hidden: &[usize] = if output == Output::Perceptron { &[] } else { &[4, 3] };
                let mut net = Net::new(2, hidden, classes, act, output, 7);
                // Nudge biases off zero so that no ReLU sits on its kink.
                for (i, l) in net.layers.iter_mut().enumerate() {
                    l.b.iter_mut().enumerate().for_each(|(j, b)| *b = 0.1 * (i + j) as f64 - 0.15);
                }
                let l2 = 0.05;
                let pass = net.forward(&x, n, None);
                let grads = net.backward(&pass, &labels, l2);
                let loss =
                    |net: &Net| net.loss(Net::logits(&net.forward(&x, n, None)), &labels, l2);
                let h = 1e-6;
                for (li, g) in grads.iter().enumerate() {
                    for which in 0..2 {
                        let len = if which == 0 {
                            net.layers[li].w.len()
                        } else {
                            net.layers[li].b.len()
                        };
                        for i in 0..len {
                            let mut plus = net.clone();
                            let mut minus = net.clone();
                            if which == 0 {
                                plus.layers[li].w[i] += h;
                                minus.layers[li].w[i] -= h;
                            } else {
                                plus.layers[li].b[i] += h;
                                minus.layers[li].b[i] -= h;
                            }
                            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h);
                            let analytic = if which == 0 { g.0[i] } else { g.1[i] };
                            assert!(
                                (numeric - analytic).abs() < 1e-6 * (1.0 + numeric.abs()),
                                "{output:?} {act:?} layer {li} {} {i}: numeric {numeric} analytic {analytic}",
                                if which == 0 { "w" } else { "b" }
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn dropout_gradients_follow_the_mask() {
        // With a fixed mask, the gradient is that of the masked network: check one weight.
        let x = [0.3, -0.7, 1.1, 0.4];
        let labels = [0u32, 1];
        let net = Net::new(2, &[6], 2, Activation::Tanh, Output::Softmax, 3);
        let pass = net.forward(&x, 2, Some((0.5, &mut StdRng::seed_from_u64(1))));
        let g = net.backward(&pass, &labels, 0.0);
        let masked_loss = |net: &Net| {
            let p = net.forward(&x, 2, Some((0.5, &mut StdRng::seed_from_u64(1))));
            net.loss(Net::logits(&p), &labels, 0.0)
        };
        let h = 1e-6;
        for i in 0..net.layers[0].w.len() {
            let (mut a, mut b) = (net.clone(), net.clone());
            a.layers[0].w[i] += h;
            b.layers[0].w[i] -= h;
            let numeric = (masked_loss(&a) - masked_loss(&b)) / (2.0 * h);
            assert!((numeric - g[0].0[i]).abs() < 1e-6, "w{i}: {numeric} vs {}", g[0].0[i]);
        }
    }
}
