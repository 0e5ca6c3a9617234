//! Whole-sequence recurrences as single operations with analytic backward passes (BPTT), for
//! the CPU backend (flex).
//!
//! Why: built from Burn ops, a recurrent layer is T small graphs of a dozen ops each; backward
//! walks them one by one, and flex's element-wise ops are scalar and single-threaded, so an
//! LSTM trained at a tenth of PyTorch's speed. Here the input projection of every step is one
//! matmul done by ordinary Burn ops (so its gradients are Burn's), and only the recurrence —
//! the part that must go step by step — is one operation: its forward keeps the gate
//! activations, its backward is one reverse pass over time plus one matmul for the recurrent
//! weight's gradient (`burnlab_kernels::recurrent`).
//!
//! Each operation also takes the input projection's bias (LSTM and RNN: b_ih + b_hh, added
//! once per element inside the time loop, its gradient summed there too), since a [T·B, G·H]
//! broadcast add and its column-sum gradient as Burn ops are two more single-threaded passes
//! over the largest tensor of the layer.
//!
//! How it plugs in: a Burn backend extension (`#[backend_extension]`, Burn 0.22's mechanism for
//! custom ops behind the run-time `Device`) implemented for `Flex` and for `Autodiff<Flex>`,
//! where the backward is registered by hand. Other backends (wgpu, cuda, ndarray) keep the cells'
//! step-by-step Burn ops: callers check [`crate::recurrent::Recurrent::fused_on`] first. The
//! cells in `lstm_cell.rs`, `gru_cell.rs` and `rnn_cell.rs` stay the readable definition; tests
//! check these operations against them, values and gradients. f32 only.

pub mod batch_norm;
pub mod conv;
pub mod linear;
pub mod residual;
pub mod stepper;

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::{DType, Tensor, TensorData};

use burnlab_kernels::Cpu;
use burnlab_kernels::recurrent::{self as cpu, Dims, GruTape, LstmTape};

#[backend_extension(Flex, Autodiff)]
pub trait FusedRecurrence: Backend {
    /// LSTM over a sequence: xw [T, B, 4H] (x·W_ih for every step), bias [4H] (b_ih + b_hh),
    /// w_hh [H, 4H], h0 and c0 [B, H] → [2, T, B, H]: every h_t, then every c_t.
    fn lstm_sequence(xw: FloatTensor<Self>, bias: FloatTensor<Self>, w_hh: FloatTensor<Self>, h0: FloatTensor<Self>, c0: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Vanilla tanh RNN over a sequence: xw [T, B, H] (x·W_ih), bias [H] (b_ih + b_hh),
    /// w_hh [H, H], h0 [B, H] → every h_t, [T, B, H].
    fn rnn_sequence(xw: FloatTensor<Self>, bias: FloatTensor<Self>, w_hh: FloatTensor<Self>, h0: FloatTensor<Self>) -> FloatTensor<Self>;

    /// GRU over a sequence (PyTorch's form): xw [T, B, 3H] (x·W_ih), b_ih [3H], w_hh [H, 3H],
    /// b_hh [3H], h0 [B, H] → every h_t, [T, B, H].
    fn gru_sequence(xw: FloatTensor<Self>, b_ih: FloatTensor<Self>, w_hh: FloatTensor<Self>, b_hh: FloatTensor<Self>, h0: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// [`FusedRecurrence::lstm_sequence`] on tensors; flex only.
pub fn lstm_sequence(xw: Tensor<3>, bias: Tensor<1>, w_hh: Tensor<2>, h0: Tensor<2>, c0: Tensor<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::lstm_sequence(xw.into_dispatch(), bias.into_dispatch(), w_hh.into_dispatch(), h0.into_dispatch(), c0.into_dispatch()))
}

/// [`FusedRecurrence::rnn_sequence`] on tensors; flex only.
pub fn rnn_sequence(xw: Tensor<3>, bias: Tensor<1>, w_hh: Tensor<2>, h0: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::rnn_sequence(xw.into_dispatch(), bias.into_dispatch(), w_hh.into_dispatch(), h0.into_dispatch()))
}

/// [`FusedRecurrence::gru_sequence`] on tensors; flex only.
pub fn gru_sequence(xw: Tensor<3>, b_ih: Tensor<1>, w_hh: Tensor<2>, b_hh: Tensor<1>, h0: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::gru_sequence(xw.into_dispatch(), b_ih.into_dispatch(), w_hh.into_dispatch(), b_hh.into_dispatch(), h0.into_dispatch()))
}

/// Whether the fused operations run on flex: `BURNLAB_FUSED=0` turns them off (Burn's own
/// layers everywhere), to measure the kernels against the layers they replace.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("BURNLAB_FUSED").map_or(true, |v| v.trim() != "0"))
}

/// A contiguous f32 copy-free view where possible.
fn contiguous(t: &FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    assert_eq!(t.dtype(), DType::F32, "fused recurrences are f32 only");
    t
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().unwrap_or_else(|| unreachable!("made contiguous f32 above"))
}

fn flex(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}

fn lstm_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(s.num_dims() == 3 && s[2] % 4 == 0, "lstm_sequence: xw must be [T, B, 4H], got {s:?}");
    Dims { t: s[0], b: s[1], h: s[2] / 4 }
}

fn rnn_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(s.num_dims() == 3, "rnn_sequence: xw must be [T, B, H], got {s:?}");
    Dims { t: s[0], b: s[1], h: s[2] }
}

fn lstm_forward(xw: &FlexTensor, bias: &FlexTensor, w: &FlexTensor, h0: &FlexTensor, c0: &FlexTensor) -> (FlexTensor, LstmTape, Dims) {
    let d = lstm_dims(xw);
    let (xw, bias, w, h0, c0) = (contiguous(xw), contiguous(bias), contiguous(w), contiguous(h0), contiguous(c0));
    let (out, tape) = cpu::lstm_forward(Cpu::current(), d, f32s(&xw), f32s(&bias), f32s(&w), f32s(&h0), f32s(&c0));
    (flex(out, &[2, d.t, d.b, d.h]), tape, d)
}

fn rnn_forward(xw: &FlexTensor, bias: &FlexTensor, w: &FlexTensor, h0: &FlexTensor) -> (FlexTensor, Dims) {
    let d = rnn_dims(xw);
    let (xw, bias, w, h0) = (contiguous(xw), contiguous(bias), contiguous(w), contiguous(h0));
    (flex(cpu::rnn_forward(Cpu::current(), d, f32s(&xw), f32s(&bias), f32s(&w), f32s(&h0)), &[d.t, d.b, d.h]), d)
}

fn gru_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(s.num_dims() == 3 && s[2] % 3 == 0, "gru_sequence: xw must be [T, B, 3H], got {s:?}");
    Dims { t: s[0], b: s[1], h: s[2] / 3 }
}

fn gru_forward(xw: &FlexTensor, b_in: &FlexTensor, w: &FlexTensor, bias: &FlexTensor, h0: &FlexTensor) -> (FlexTensor, GruTape, Dims) {
    let d = gru_dims(xw);
    let (xw, b_in, w, bias, h0) = (contiguous(xw), contiguous(b_in), contiguous(w), contiguous(bias), contiguous(h0));
    let (hs, tape) = cpu::gru_forward(Cpu::current(), d, f32s(&xw), f32s(&b_in), f32s(&w), f32s(&bias), f32s(&h0));
    (flex(hs, &[d.t, d.b, d.h]), tape, d)
}

impl FusedRecurrence for Flex {
    fn gru_sequence(xw: FlexTensor, b_ih: FlexTensor, w_hh: FlexTensor, b_hh: FlexTensor, h0: FlexTensor) -> FlexTensor {
        gru_forward(&xw, &b_ih, &w_hh, &b_hh, &h0).0
    }

    fn lstm_sequence(xw: FlexTensor, bias: FlexTensor, w_hh: FlexTensor, h0: FlexTensor, c0: FlexTensor) -> FlexTensor {
        lstm_forward(&xw, &bias, &w_hh, &h0, &c0).0
    }

    fn rnn_sequence(xw: FlexTensor, bias: FlexTensor, w_hh: FlexTensor, h0: FlexTensor) -> FlexTensor {
        rnn_forward(&xw, &bias, &w_hh, &h0).0
    }
}

#[derive(Debug)]
struct LstmBackward;

impl Backward<Flex, 5> for LstmBackward {
    /// Shapes, the tape, and out, h0, c0, w_hh (all contiguous).
    type State = (Dims, Arc<LstmTape>, [FlexTensor; 4]);

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, tape, [out, h0, c0, w]) = ops.state;
        let g = cpu::lstm_backward(Cpu::current(), d, &tape, f32s(&out), f32s(&h0), f32s(&c0), f32s(&w), f32s(&grad));
        let [n_xw, n_b, n_w, n_h0, n_c0] = ops.parents;
        let shapes: [(Vec<f32>, Vec<usize>); 5] = [(g.xw, vec![d.t, d.b, 4 * d.h]), (g.bias, vec![4 * d.h]), (g.w, vec![d.h, 4 * d.h]), (g.h0, vec![d.b, d.h]), (g.c0, vec![d.b, d.h])];
        for (node, (data, shape)) in [n_xw, n_b, n_w, n_h0, n_c0].into_iter().zip(shapes) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(data, &shape));
            }
        }
    }
}

#[derive(Debug)]
struct RnnBackward;

impl Backward<Flex, 4> for RnnBackward {
    /// Shapes, and hs, h0, w_hh (contiguous).
    type State = (Dims, [FlexTensor; 3]);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, [hs, h0, w]) = ops.state;
        let g = cpu::rnn_backward(Cpu::current(), d, f32s(&hs), f32s(&h0), f32s(&w), f32s(&grad));
        let [n_xw, n_b, n_w, n_h0] = ops.parents;
        let shapes: [(Vec<f32>, Vec<usize>); 4] = [(g.xw, vec![d.t, d.b, d.h]), (g.bias, vec![d.h]), (g.w, vec![d.h, d.h]), (g.h0, vec![d.b, d.h])];
        for (node, (data, shape)) in [n_xw, n_b, n_w, n_h0].into_iter().zip(shapes) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(data, &shape));
            }
        }
    }
}

#[derive(Debug)]
struct GruBackward;

impl Backward<Flex, 5> for GruBackward {
    /// Shapes, the tape, and hs, h0, w_hh (contiguous).
    type State = (Dims, Arc<GruTape>, [FlexTensor; 3]);

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, tape, [hs, h0, w]) = ops.state;
        let g = cpu::gru_backward(Cpu::current(), d, &tape, f32s(&hs), f32s(&h0), f32s(&w), f32s(&grad));
        let [n_xw, n_bi, n_w, n_b, n_h0] = ops.parents;
        let shapes: [(Vec<f32>, Vec<usize>); 5] = [(g.xw, vec![d.t, d.b, 3 * d.h]), (g.b_in, vec![3 * d.h]), (g.w, vec![d.h, 3 * d.h]), (g.bias, vec![3 * d.h]), (g.h0, vec![d.b, d.h])];
        for (node, (data, shape)) in [n_xw, n_bi, n_w, n_b, n_h0].into_iter().zip(shapes) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(data, &shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedRecurrence for Autodiff<Flex, C> {
    fn gru_sequence(xw: FloatTensor<Self>, b_ih: FloatTensor<Self>, w_hh: FloatTensor<Self>, b_hh: FloatTensor<Self>, h0: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [xw.node(), b_ih.node(), w_hh.node(), b_hh.node(), h0.node()];
        let (xw, bi, w, b, h0) = (xw.into_primitive(), b_ih.into_primitive(), w_hh.into_primitive(), b_hh.into_primitive(), h0.into_primitive());
        match GruBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (hs, tape, d) = gru_forward(&xw, &bi, &w, &b, &h0);
                let state = (d, Arc::new(tape), [hs.clone(), contiguous(&h0), contiguous(&w)]);
                prep.finish(state, hs)
            }
            OpsKind::UnTracked(prep) => prep.finish(gru_forward(&xw, &bi, &w, &b, &h0).0),
        }
    }

    fn lstm_sequence(xw: FloatTensor<Self>, bias: FloatTensor<Self>, w_hh: FloatTensor<Self>, h0: FloatTensor<Self>, c0: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [xw.node(), bias.node(), w_hh.node(), h0.node(), c0.node()];
        let (xw, b, w, h0, c0) = (xw.into_primitive(), bias.into_primitive(), w_hh.into_primitive(), h0.into_primitive(), c0.into_primitive());
        match LstmBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, tape, d) = lstm_forward(&xw, &b, &w, &h0, &c0);
                let state = (d, Arc::new(tape), [out.clone(), contiguous(&h0), contiguous(&c0), contiguous(&w)]);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(lstm_forward(&xw, &b, &w, &h0, &c0).0),
        }
    }

    fn rnn_sequence(xw: FloatTensor<Self>, bias: FloatTensor<Self>, w_hh: FloatTensor<Self>, h0: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [xw.node(), bias.node(), w_hh.node(), h0.node()];
        let (xw, b, w, h0) = (xw.into_primitive(), bias.into_primitive(), w_hh.into_primitive(), h0.into_primitive());
        match RnnBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (hs, d) = rnn_forward(&xw, &b, &w, &h0);
                let state = (d, [hs.clone(), contiguous(&h0), contiguous(&w)]);
                prep.finish(state, hs)
            }
            OpsKind::UnTracked(prep) => prep.finish(rnn_forward(&xw, &b, &w, &h0).0),
        }
    }
}

/// Helpers shared by the fused operations' tests.
#[cfg(test)]
pub(crate) mod testing {
    use burn::tensor::Tensor;

    /// A tensor's values.
    pub fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
    }

    /// Every value of `a` within `tol` × max(1, largest |b|) of `b`'s.
    pub fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: fused {x} vs reference {y}");
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use burn::tensor::Device;
    use crate::gru_cell::{GruCell, GruCellConfig};
    use crate::lstm_cell::{LstmCell, LstmCellConfig};
    use crate::rnn_cell::{RnnCell, RnnCellConfig};

    use super::testing::{close, vec};

    fn random<const D: usize>(shape: [usize; D], dev: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Uniform(-1.5, 1.5), dev)
    }

    /// Run `f` with every parameter of the cell, the input and the initial state tracked;
    /// return the loss's gradients in a fixed order.
    /// (The random draws are shared by both paths: tests run in parallel on one device RNG.)
    fn lstm_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        let cell: LstmCell = LstmCellConfig::new(d, h).init(&dev);
        let x = random([t, b, d], &dev).require_grad();
        let h0 = random([b, h], &dev).require_grad();
        let c0 = random([b, h], &dev).require_grad();
        // Random weights on the outputs so every element's gradient differs.
        let wh = random([t, b, h], &dev);
        let wc = random([b, h], &dev);
        [true, false].map(|fused| {
        let (hs, c_last) = if fused {
            let (hs, _, c) = cell.sequence_fused(x.clone(), h0.clone(), c0.clone());
            (hs, c)
        } else {
            let (mut hh, mut cc) = (h0.clone(), c0.clone());
            let mut ys = Vec::new();
            for s in x.clone().chunk(t, 0) {
                let (nh, nc) = cell.step(s.squeeze_dim::<2>(0), hh, cc);
                ys.push(nh.clone());
                (hh, cc) = (nh, nc);
            }
            (Tensor::stack(ys, 0), cc)
        };
        let loss = (hs.clone() * wh.clone()).sum() + (c_last * wc.clone()).sum();
        let grads = loss.backward();
        let g = |p: &Param<Tensor<2>>| vec(p.grad(&grads).expect("weight grad"));
        let gb = |p: &Option<Param<Tensor<1>>>| vec(p.as_ref().expect("bias").grad(&grads).expect("bias grad"));
        let out = vec(hs);
        let grads = vec![
            vec(x.grad(&grads).expect("x grad")),
            vec(h0.grad(&grads).expect("h0 grad")),
            vec(c0.grad(&grads).expect("c0 grad")),
            g(&cell.input.weight),
            gb(&cell.input.bias),
            g(&cell.hidden.weight),
            gb(&cell.hidden.bias),
        ];
        (out, grads)
        })
    }

    const NAMES: [&str; 7] = ["x", "h0", "c0", "W_ih", "b_ih", "W_hh", "b_hh"];

    #[test]
    fn lstm_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        // Hidden sizes that are not a multiple of any SIMD width; batch 1; sequence 1.
        for (t, b, d, h) in [(6, 3, 5, 7), (1, 1, 3, 17), (9, 1, 4, 33), (4, 2, 1, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = lstm_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("lstm T{t} B{b} H{h} outputs"));
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("lstm T{t} B{b} H{h} d{}", NAMES[k]));
            }
        }
    }

    /// A cell with one state (vanilla RNN, GRU): its two `Linear`s, a fused sequence and a step.
    trait OneStateCell {
        fn linears(&self) -> [&burn::nn::Linear; 2];
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3>;
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2>;
    }

    impl OneStateCell for RnnCell {
        fn linears(&self) -> [&burn::nn::Linear; 2] {
            [&self.input, &self.hidden]
        }
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
            self.sequence_fused(x, h)
        }
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
            RnnCell::step(self, x, h)
        }
    }

    impl OneStateCell for GruCell {
        fn linears(&self) -> [&burn::nn::Linear; 2] {
            [&self.input, &self.hidden]
        }
        fn fused(&self, x: Tensor<3>, h: Tensor<2>) -> Tensor<3> {
            self.sequence_fused(x, h)
        }
        fn step(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
            GruCell::step(self, x, h)
        }
    }

    /// Outputs and gradients (x, h0, W_ih, b_ih, W_hh, b_hh) of the fused path, then of the
    /// step-by-step one, on the same random draws.
    fn one_state_case(cell: &impl OneStateCell, t: usize, b: usize, d: usize, h: usize, dev: &Device) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let x = random([t, b, d], dev).require_grad();
        let h0 = random([b, h], dev).require_grad();
        let wh = random([t, b, h], dev);
        [true, false].map(|fused| {
            let hs = if fused {
                cell.fused(x.clone(), h0.clone())
            } else {
                let mut hh = h0.clone();
                let mut ys = Vec::new();
                for s in x.clone().chunk(t, 0) {
                    hh = cell.step(s.squeeze_dim::<2>(0), hh);
                    ys.push(hh.clone());
                }
                Tensor::stack(ys, 0)
            };
            let grads = (hs.clone() * wh.clone()).sum().backward();
            let mut out = vec![vec(x.grad(&grads).expect("x grad")), vec(h0.grad(&grads).expect("h0 grad"))];
            for l in cell.linears() {
                out.push(vec(l.weight.grad(&grads).expect("weight grad")));
                out.push(vec(l.bias.as_ref().expect("bias").grad(&grads).expect("bias grad")));
            }
            (vec(hs), out)
        })
    }

    fn rnn_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        one_state_case(&RnnCellConfig::new(d, h).init(&dev), t, b, d, h, &dev)
    }

    fn gru_case(t: usize, b: usize, d: usize, h: usize) -> [(Vec<f32>, Vec<Vec<f32>>); 2] {
        let dev = Device::flex().autodiff();
        one_state_case(&GruCellConfig::new(d, h).init(&dev), t, b, d, h, &dev)
    }

    #[test]
    fn rnn_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        for (t, b, d, h) in [(7, 3, 5, 9), (1, 1, 2, 19), (12, 2, 3, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = rnn_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("rnn T{t} B{b} H{h} outputs"));
            let names = ["x", "h0", "W_ih", "b_ih", "W_hh", "b_hh"];
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("rnn T{t} B{b} H{h} d{}", names[k]));
            }
        }
    }

    #[test]
    fn gru_matches_the_step_by_step_cell_values_and_gradients() {
        let _rng = crate::device_rng_lock();
        for (t, b, d, h) in [(7, 3, 5, 9), (1, 1, 2, 19), (10, 2, 3, 1)] {
            let [(y_f, g_f), (y_r, g_r)] = gru_case(t, b, d, h);
            close(&y_f, &y_r, 2e-6, &format!("gru T{t} B{b} H{h} outputs"));
            let names = ["x", "h0", "W_ih", "b_ih", "W_hh", "b_hh"];
            for (k, (a, r)) in g_f.iter().zip(&g_r).enumerate() {
                close(a, r, 2e-5, &format!("gru T{t} B{b} H{h} d{}", names[k]));
            }
        }
    }

    #[test]
    fn without_autodiff_the_fused_lstm_gives_the_same_outputs() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex();
        let cell: LstmCell = LstmCellConfig::new(4, 6).init(&dev);
        let x = random([5, 2, 4], &dev);
        let (h0, c0) = (random([2, 6], &dev), random([2, 6], &dev));
        let (hs, h, c) = cell.sequence_fused(x.clone(), h0.clone(), c0.clone());
        let (mut hh, mut cc) = (h0, c0);
        for s in x.chunk(5, 0) {
            (hh, cc) = cell.step(s.squeeze_dim::<2>(0), hh, cc);
        }
        close(&vec(h.clone()), &vec(hh), 2e-6, "final h");
        close(&vec(c), &vec(cc), 2e-6, "final c");
        close(&vec(hs.slice([4..5]).reshape([2, 6])), &vec(h), 0.0, "last output is the final h");
    }

    /// The gradients of the recurrent matrix and of the bias, checked against central finite
    /// differences of the kernel itself (f64-free: a smooth loss and a large enough step).
    #[test]
    fn lstm_kernel_weight_and_bias_gradients_match_finite_differences() {
        let _rng = crate::device_rng_lock();
        let d = Dims { t: 4, b: 2, h: 3 };
        let n = |len: usize, seed: u32| -> Vec<f32> { (0..len).map(|i| (((i as u32 * 2654435761u32) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect() };
        let xw = n(d.t * d.b * 4 * d.h, 1);
        let w = n(d.h * 4 * d.h, 2);
        let h0 = n(d.b * d.h, 3);
        let c0 = n(d.b * d.h, 4);
        let r = n(2 * d.t * d.b * d.h, 5);
        let bias = n(4 * d.h, 6);
        let loss = |w: &[f32], bias: &[f32]| -> f64 { cpu::lstm_forward(Cpu::current(), d, &xw, bias, w, &h0, &c0).0.iter().zip(&r).map(|(a, b)| (*a * *b) as f64).sum() };
        let (out, tape) = cpu::lstm_forward(Cpu::current(), d, &xw, &bias, &w, &h0, &c0);
        let g = cpu::lstm_backward(Cpu::current(), d, &tape, &out, &h0, &c0, &w, &r);
        let eps = 1e-2f32;
        let fd = |k: usize, of_w: bool| {
            let (mut wp, mut wm, mut bp, mut bm) = (w.clone(), w.clone(), bias.clone(), bias.clone());
            if of_w {
                wp[k] += eps;
                wm[k] -= eps;
            } else {
                bp[k] += eps;
                bm[k] -= eps;
            }
            (loss(&wp, &bp) - loss(&wm, &bm)) / (2.0 * eps as f64)
        };
        for k in 0..w.len() {
            let fd = fd(k, true);
            assert!((fd - g.w[k] as f64).abs() < 2e-3, "dW[{k}]: analytic {} vs finite difference {fd}", g.w[k]);
        }
        for k in 0..bias.len() {
            let fd = fd(k, false);
            assert!((fd - g.bias[k] as f64).abs() < 2e-3, "db[{k}]: analytic {} vs finite difference {fd}", g.bias[k]);
        }
    }
}
