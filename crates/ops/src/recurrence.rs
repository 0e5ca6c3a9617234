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
//! step-by-step Burn ops: callers (burnlab-models' `Recurrent::fused_on`) check first. The
//! cells in burnlab-models stay the readable definition; its tests check these operations
//! against them, values and gradients. f32 only.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

use burnlab_kernels::Cpu;
use burnlab_kernels::recurrent::{self as cpu, Dims, GruTape, LstmTape};

use crate::{contiguous, f32s, flex, register_grads};

#[backend_extension(Flex, Autodiff)]
pub trait FusedRecurrence: Backend {
    /// LSTM over a sequence: xw [T, B, 4H] (x·W_ih for every step), bias [4H] (b_ih + b_hh),
    /// w_hh [H, 4H], h0 and c0 [B, H] → [2, T, B, H]: every h_t, then every c_t.
    fn lstm_sequence(
        xw: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Vanilla tanh RNN over a sequence: xw [T, B, H] (x·W_ih), bias [H] (b_ih + b_hh),
    /// w_hh [H, H], h0 [B, H] → every h_t, [T, B, H].
    fn rnn_sequence(
        xw: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// GRU over a sequence (PyTorch's form): xw [T, B, 3H] (x·W_ih), b_ih [3H], w_hh [H, 3H],
    /// b_hh [3H], h0 [B, H] → every h_t, [T, B, H].
    fn gru_sequence(
        xw: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// [`FusedRecurrence::lstm_sequence`] on tensors; flex only.
pub fn lstm_sequence(
    xw: Tensor<3>,
    bias: Tensor<1>,
    w_hh: Tensor<2>,
    h0: Tensor<2>,
    c0: Tensor<2>,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::lstm_sequence(
        xw.into_dispatch(),
        bias.into_dispatch(),
        w_hh.into_dispatch(),
        h0.into_dispatch(),
        c0.into_dispatch(),
    ))
}

/// [`FusedRecurrence::rnn_sequence`] on tensors; flex only.
pub fn rnn_sequence(xw: Tensor<3>, bias: Tensor<1>, w_hh: Tensor<2>, h0: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::rnn_sequence(
        xw.into_dispatch(),
        bias.into_dispatch(),
        w_hh.into_dispatch(),
        h0.into_dispatch(),
    ))
}

/// [`FusedRecurrence::gru_sequence`] on tensors; flex only.
pub fn gru_sequence(
    xw: Tensor<3>,
    b_ih: Tensor<1>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    h0: Tensor<2>,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrence>::gru_sequence(
        xw.into_dispatch(),
        b_ih.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        h0.into_dispatch(),
    ))
}

fn lstm_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(
        s.num_dims() == 3 && s[2].is_multiple_of(4),
        "lstm_sequence: xw must be [T, B, 4H], got {s:?}"
    );
    Dims { t: s[0], b: s[1], h: s[2] / 4 }
}

fn rnn_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(s.num_dims() == 3, "rnn_sequence: xw must be [T, B, H], got {s:?}");
    Dims { t: s[0], b: s[1], h: s[2] }
}

fn lstm_forward(
    xw: &FlexTensor,
    bias: &FlexTensor,
    w: &FlexTensor,
    h0: &FlexTensor,
    c0: &FlexTensor,
) -> (FlexTensor, LstmTape, Dims) {
    let d = lstm_dims(xw);
    let (xw, bias, w, h0, c0) =
        (contiguous(xw), contiguous(bias), contiguous(w), contiguous(h0), contiguous(c0));
    let (out, tape) = cpu::lstm_forward(
        Cpu::current(),
        d,
        f32s(&xw),
        f32s(&bias),
        f32s(&w),
        f32s(&h0),
        f32s(&c0),
    );
    (flex(out, &[2, d.t, d.b, d.h]), tape, d)
}

fn rnn_forward(
    xw: &FlexTensor,
    bias: &FlexTensor,
    w: &FlexTensor,
    h0: &FlexTensor,
) -> (FlexTensor, Dims) {
    let d = rnn_dims(xw);
    let (xw, bias, w, h0) = (contiguous(xw), contiguous(bias), contiguous(w), contiguous(h0));
    (
        flex(
            cpu::rnn_forward(Cpu::current(), d, f32s(&xw), f32s(&bias), f32s(&w), f32s(&h0)),
            &[d.t, d.b, d.h],
        ),
        d,
    )
}

fn gru_dims(xw: &FlexTensor) -> Dims {
    let s = xw.layout().shape();
    assert!(
        s.num_dims() == 3 && s[2].is_multiple_of(3),
        "gru_sequence: xw must be [T, B, 3H], got {s:?}"
    );
    Dims { t: s[0], b: s[1], h: s[2] / 3 }
}

fn gru_forward(
    xw: &FlexTensor,
    b_in: &FlexTensor,
    w: &FlexTensor,
    bias: &FlexTensor,
    h0: &FlexTensor,
) -> (FlexTensor, GruTape, Dims) {
    let d = gru_dims(xw);
    let (xw, b_in, w, bias, h0) =
        (contiguous(xw), contiguous(b_in), contiguous(w), contiguous(bias), contiguous(h0));
    let (hs, tape) = cpu::gru_forward(
        Cpu::current(),
        d,
        f32s(&xw),
        f32s(&b_in),
        f32s(&w),
        f32s(&bias),
        f32s(&h0),
    );
    (flex(hs, &[d.t, d.b, d.h]), tape, d)
}

impl FusedRecurrence for Flex {
    fn gru_sequence(
        xw: FlexTensor,
        b_ih: FlexTensor,
        w_hh: FlexTensor,
        b_hh: FlexTensor,
        h0: FlexTensor,
    ) -> FlexTensor {
        gru_forward(&xw, &b_ih, &w_hh, &b_hh, &h0).0
    }

    fn lstm_sequence(
        xw: FlexTensor,
        bias: FlexTensor,
        w_hh: FlexTensor,
        h0: FlexTensor,
        c0: FlexTensor,
    ) -> FlexTensor {
        lstm_forward(&xw, &bias, &w_hh, &h0, &c0).0
    }

    fn rnn_sequence(
        xw: FlexTensor,
        bias: FlexTensor,
        w_hh: FlexTensor,
        h0: FlexTensor,
    ) -> FlexTensor {
        rnn_forward(&xw, &bias, &w_hh, &h0).0
    }
}

#[derive(Debug)]
struct LstmBackward;

impl Backward<Flex, 5> for LstmBackward {
    /// Shapes, the tape, and out, h0, c0, w_hh (all contiguous).
    type State = (Dims, Arc<LstmTape>, [FlexTensor; 4]);

    fn backward(
        self,
        ops: Ops<Self::State, 5>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, tape, [out, h0, c0, w]) = ops.state;
        let g = cpu::lstm_backward(
            Cpu::current(),
            d,
            &tape,
            f32s(&out),
            f32s(&h0),
            f32s(&c0),
            f32s(&w),
            f32s(&grad),
        );
        let parts = [
            (g.xw, vec![d.t, d.b, 4 * d.h]),
            (g.bias, vec![4 * d.h]),
            (g.w, vec![d.h, 4 * d.h]),
            (g.h0, vec![d.b, d.h]),
            (g.c0, vec![d.b, d.h]),
        ];
        register_grads(grads, ops.parents.map(|p| p.map(|n| n.id)), parts.map(Some));
    }
}

#[derive(Debug)]
struct RnnBackward;

impl Backward<Flex, 4> for RnnBackward {
    /// Shapes, and hs, h0, w_hh (contiguous).
    type State = (Dims, [FlexTensor; 3]);

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, [hs, h0, w]) = ops.state;
        let g = cpu::rnn_backward(Cpu::current(), d, f32s(&hs), f32s(&h0), f32s(&w), f32s(&grad));
        let parts = [
            (g.xw, vec![d.t, d.b, d.h]),
            (g.bias, vec![d.h]),
            (g.w, vec![d.h, d.h]),
            (g.h0, vec![d.b, d.h]),
        ];
        register_grads(grads, ops.parents.map(|p| p.map(|n| n.id)), parts.map(Some));
    }
}

#[derive(Debug)]
struct GruBackward;

impl Backward<Flex, 5> for GruBackward {
    /// Shapes, the tape, and hs, h0, w_hh (contiguous).
    type State = (Dims, Arc<GruTape>, [FlexTensor; 3]);

    fn backward(
        self,
        ops: Ops<Self::State, 5>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (d, tape, [hs, h0, w]) = ops.state;
        let g = cpu::gru_backward(
            Cpu::current(),
            d,
            &tape,
            f32s(&hs),
            f32s(&h0),
            f32s(&w),
            f32s(&grad),
        );
        let parts = [
            (g.xw, vec![d.t, d.b, 3 * d.h]),
            (g.b_in, vec![3 * d.h]),
            (g.w, vec![d.h, 3 * d.h]),
            (g.bias, vec![3 * d.h]),
            (g.h0, vec![d.b, d.h]),
        ];
        register_grads(grads, ops.parents.map(|p| p.map(|n| n.id)), parts.map(Some));
    }
}

/// `nodes`: the autodiff nodes of the named tensors, each name then rebound to its flex tensor.
macro_rules! split_nodes {
    ($nodes:ident; $($t:ident),+) => {
        let $nodes = [$($t.node()),+];
        $(let $t = $t.into_primitive();)+
    };
}

impl<C: CheckpointStrategy> FusedRecurrence for Autodiff<Flex, C> {
    fn gru_sequence(
        xw: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        split_nodes!(nodes; xw, b_ih, w_hh, b_hh, h0);
        let (bi, w, b) = (b_ih, w_hh, b_hh);
        match GruBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (hs, tape, d) = gru_forward(&xw, &bi, &w, &b, &h0);
                let state = (d, Arc::new(tape), [hs.clone(), contiguous(&h0), contiguous(&w)]);
                prep.finish(state, hs)
            }
            OpsKind::UnTracked(prep) => prep.finish(gru_forward(&xw, &bi, &w, &b, &h0).0),
        }
    }

    fn lstm_sequence(
        xw: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        split_nodes!(nodes; xw, bias, w_hh, h0, c0);
        let (b, w) = (bias, w_hh);
        match LstmBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, tape, d) = lstm_forward(&xw, &b, &w, &h0, &c0);
                let state = (
                    d,
                    Arc::new(tape),
                    [out.clone(), contiguous(&h0), contiguous(&c0), contiguous(&w)],
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(lstm_forward(&xw, &b, &w, &h0, &c0).0),
        }
    }

    fn rnn_sequence(
        xw: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        split_nodes!(nodes; xw, bias, w_hh, h0);
        let (b, w) = (bias, w_hh);
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
