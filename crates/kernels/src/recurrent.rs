//! The recurrences of the LSTM, GRU and vanilla RNN over a whole sequence, forward and
//! backward, on f32 slices: one pass over time with a [B, H]·[H, G·H] matmul per step (against
//! the weight packed once, [`super::packed`]) and fused element-wise work, then the recurrent
//! weight's gradient as one big matmul. Layouts are time-major and contiguous: xw [T, B, G·H]
//! (the input projection, computed outside by one matmul for all steps), its bias [G·H] (added
//! here, so that no [T·B, G·H] broadcast add and no column sum for its gradient runs as a
//! separate single-threaded tensor op), w [H, G·H], states [B, H].
//!
//! Threads: the batch is split into one block of rows per thread and each block runs the whole
//! time loop on its own, since batch rows never interact. That costs one fork-join per call
//! instead of one per step (a per-step parallel matmul spent ~15% of an LSTM step in thread
//! hand-offs), and each thread's matmuls stay single-threaded.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use crate::isa::Cpu;
use crate::matmul::{matmul, product};
use crate::packed::{PackedB, gemm_packed};
use crate::vmath;

/// A buffer shared by the batch blocks' threads, each writing only its own rows.
struct Rows<'a> {
    ptr: *mut f32,
    len: usize,
    _buf: PhantomData<&'a mut [f32]>,
}

// SAFETY: `Rows` hands out only the rows of one batch block to the thread running that block
// (see `get`), so no element is reached from two threads.
unsafe impl Send for Rows<'_> {}
// SAFETY: as for Send: the threads share only the pointer, never an element.
unsafe impl Sync for Rows<'_> {}

impl<'a> Rows<'a> {
    fn new(buf: &'a mut [f32]) -> Self {
        Self { ptr: buf.as_mut_ptr(), len: buf.len(), _buf: PhantomData }
    }

    /// Over a buffer not yet written: take ranges through [`Self::zeroed`] or
    /// [`Self::copied`] first.
    fn fresh(buf: &'a mut [MaybeUninit<f32>]) -> Self {
        Self { ptr: buf.as_mut_ptr().cast(), len: buf.len(), _buf: PhantomData }
    }

    /// [`Self::get`] after writing zeros there.
    ///
    /// SAFETY: as for `get`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn zeroed(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "rows out of range");
        // SAFETY: the range is inside the buffer (asserted above); disjoint from other threads' ranges (the caller's contract).
        unsafe {
            std::ptr::write_bytes(self.ptr.add(start), 0, len);
            std::slice::from_raw_parts_mut(self.ptr.add(start), len)
        }
    }

    /// [`Self::get`] after copying `src` there.
    ///
    /// SAFETY: as for `get`, and `src` is not inside this buffer.
    #[allow(clippy::mut_from_ref)]
    unsafe fn copied(&self, start: usize, src: &[f32]) -> &mut [f32] {
        assert!(start + src.len() <= self.len, "rows out of range");
        // SAFETY: the range is inside the buffer (asserted above); disjoint from other threads' ranges (the caller's contract).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(start), src.len());
            std::slice::from_raw_parts_mut(self.ptr.add(start), src.len())
        }
    }

    /// Elements `start..start + len`.
    ///
    /// SAFETY: callers take only ranges that belong to their batch block, so ranges obtained
    /// from different threads never overlap, and one thread does not hold two overlapping
    /// ranges at once.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "rows out of range");
        // SAFETY: the range is inside the buffer (asserted above); disjoint from other threads' ranges (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// A buffer that the time loop fills row by row: allocated without the serial zero-fill or copy
/// of `vec![0.0; n]` / `to_vec` (measured 3–4 ms per LSTM layer and call at the benchmark's
/// size, on one thread while the others wait); each thread initialises its own rows, in cache,
/// right before writing them ([`Rows::zeroed`], [`Rows::copied`]).
fn fresh(len: usize) -> Box<[MaybeUninit<f32>]> {
    Box::new_uninit_slice(len)
}

/// The buffer of [`fresh`], once the time loop has written every row.
///
/// SAFETY: every element was initialised (through [`Rows::zeroed`] or [`Rows::copied`]).
unsafe fn filled(buf: Box<[MaybeUninit<f32>]>) -> Vec<f32> {
    // SAFETY: the caller initialised every element.
    unsafe { buf.assume_init() }.into_vec()
}

/// acc += row, element by element (a bias gradient's running column sum).
fn add_row(acc: &mut [f32], row: &[f32]) {
    for (a, v) in acc.iter_mut().zip(row) {
        *a += v;
    }
}

/// Sum of the threads' partial bias gradients. The partials are collected in block order and
/// added on one thread, so the sum does not depend on how rayon split the work (a resumed run
/// must repeat the uninterrupted one exactly).
fn sum_rows(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    add_row(&mut a, &b);
    a
}

/// One block of batch rows per thread (at most `b` blocks).
fn blocks(b: usize) -> Vec<Range<usize>> {
    let n = rayon::current_num_threads().clamp(1, b.max(1));
    (0..n).map(|i| i * b / n..(i + 1) * b / n).filter(|r| !r.is_empty()).collect()
}

/// Shapes of one recurrence call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub t: usize,
    pub b: usize,
    pub h: usize,
}

/// What the LSTM backward pass needs from its forward pass.
#[derive(Clone, Debug)]
pub struct LstmTape {
    /// [T, B, 4H]: σ(i), σ(f), tanh(g), σ(o).
    pub gates: Vec<f32>,
    /// [T, B, H]: tanh(c_t).
    pub tanh_c: Vec<f32>,
}

/// LSTM forward (gate order i, f, g, o as PyTorch): returns out [2, T, B, H] (every h_t, then
/// every c_t) and the tape for backward.
pub fn lstm_forward(
    cpu: Cpu,
    d: Dims,
    xw: &[f32],
    bias: &[f32],
    w: &[f32],
    h0: &[f32],
    c0: &[f32],
) -> (Vec<f32>, LstmTape) {
    let Dims { t: tn, b: bn, h } = d;
    let (bh, g4) = (bn * h, 4 * h);
    assert_eq!(xw.len(), tn * bn * g4, "lstm: xw");
    assert_eq!(bias.len(), g4, "lstm: bias");
    assert_eq!(w.len(), h * g4, "lstm: w_hh");
    assert_eq!((h0.len(), c0.len()), (bh, bh), "lstm: state");
    let (mut gates, mut tanh_c, mut out) = (fresh(xw.len()), fresh(tn * bh), fresh(2 * tn * bh));
    let (hs, cs) = out.split_at_mut(tn * bh);
    let (gates_r, tanh_r, hs_r, cs_r) =
        (Rows::fresh(&mut gates), Rows::fresh(&mut tanh_c), Rows::fresh(hs), Rows::fresh(cs));
    let wp = PackedB::new(w, h, g4, g4, 1);
    blocks(bn).into_par_iter().for_each(|rows| {
        let nb = rows.len();
        for t in 0..tn {
            let at = |width: usize| (t * bn + rows.start) * width;
            // SAFETY: (all `get`s) rows of this block only; the previous step's rows are read
            // through a fresh shared borrow after this thread wrote them.
            let (h_prev, c_prev): (&[f32], &[f32]) = if t == 0 {
                (&h0[rows.start * h..rows.end * h], &c0[rows.start * h..rows.end * h])
            } else {
                let prev = ((t - 1) * bn + rows.start) * h;
                // SAFETY: rows of this thread's batch block only (see `Rows::get`).
                unsafe { (&*hs_r.get(prev, nb * h), &*cs_r.get(prev, nb * h)) }
            };
            // SAFETY: rows of this thread's batch block only (see `Rows::get`).
            let gt = unsafe { gates_r.copied(at(g4), &xw[at(g4)..at(g4) + nb * g4]) };
            for row in gt.chunks_exact_mut(g4) {
                add_row(row, bias);
            }
            gemm_packed(cpu, nb, gt, true, h_prev, &wp);
            // SAFETY: rows of this thread's batch block only (see `Rows::get`).
            let (c_t, tc_t, h_t) = unsafe {
                (
                    cs_r.zeroed(at(h), nb * h),
                    tanh_r.zeroed(at(h), nb * h),
                    hs_r.zeroed(at(h), nb * h),
                )
            };
            for b in 0..nb {
                let row = &mut gt[b * g4..(b + 1) * g4];
                let (ifg, o) = row.split_at_mut(3 * h);
                let (if_, g) = ifg.split_at_mut(2 * h);
                vmath::sigmoid(cpu, if_);
                vmath::tanh(cpu, g);
                vmath::sigmoid(cpu, o);
                let (i, f) = if_.split_at(h);
                let c = &mut c_t[b * h..(b + 1) * h];
                let cp = &c_prev[b * h..(b + 1) * h];
                for j in 0..h {
                    c[j] = f[j] * cp[j] + i[j] * g[j];
                }
                let tc = &mut tc_t[b * h..(b + 1) * h];
                vmath::tanh_to(cpu, c, tc);
                let hrow = &mut h_t[b * h..(b + 1) * h];
                for j in 0..h {
                    hrow[j] = o[j] * tc[j];
                }
            }
        }
    });
    // SAFETY: the blocks cover every batch row and each wrote its rows of every step.
    let (out, gates, tanh_c) = unsafe { (filled(out), filled(gates), filled(tanh_c)) };
    (out, LstmTape { gates, tanh_c })
}

/// Gradients of one recurrence call: input projection, recurrent weight, initial state(s).
#[derive(Clone, Debug)]
pub struct Grads {
    pub xw: Vec<f32>,
    pub bias: Vec<f32>,
    pub w: Vec<f32>,
    pub h0: Vec<f32>,
    pub c0: Vec<f32>,
}

/// LSTM backward: `grad` is d(loss)/d(out), [2, T, B, H] like `out`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    cpu: Cpu,
    d: Dims,
    tape: &LstmTape,
    out: &[f32],
    h0: &[f32],
    c0: &[f32],
    w: &[f32],
    grad: &[f32],
) -> Grads {
    let Dims { t: tn, b: bn, h } = d;
    let (bh, g4) = (bn * h, 4 * h);
    assert_eq!(grad.len(), 2 * tn * bh, "lstm backward: grad");
    let (hs, cs) = out.split_at(tn * bh);
    let (dhs, dcs) = grad.split_at(tn * bh);
    let mut da = fresh(tn * bn * g4);
    let mut dh0 = vec![0.0; bh];
    let mut dc0 = vec![0.0; bh];
    let (da_r, dh0_r, dc0_r) = (Rows::fresh(&mut da), Rows::new(&mut dh0), Rows::new(&mut dc0));
    let wt = PackedB::new(w, g4, h, 1, g4);
    let db = blocks(bn)
        .into_par_iter()
        .map(|rows| {
            let nb = rows.len();
            let mut db = vec![0.0; g4];
            // SAFETY: (all `get`s) rows of this block only.
            let (dh_next, dc_next) =
                unsafe { (dh0_r.get(rows.start * h, nb * h), dc0_r.get(rows.start * h, nb * h)) };
            for t in (0..tn).rev() {
                // SAFETY: rows of this thread's batch block only (see `Rows::get`).
                let da_t = unsafe { da_r.zeroed((t * bn + rows.start) * g4, nb * g4) };
                for bi in 0..nb {
                    let b = rows.start + bi;
                    let r = t * bh + b * h;
                    let gates = &tape.gates[(t * bn + b) * g4..(t * bn + b + 1) * g4];
                    let (i, rest) = gates.split_at(h);
                    let (f, rest) = rest.split_at(h);
                    let (g, o) = rest.split_at(h);
                    let tc = &tape.tanh_c[r..r + h];
                    let cp = if t == 0 { &c0[b * h..(b + 1) * h] } else { &cs[r - bh..r - bh + h] };
                    let (dhr, dcr) = (&dhs[r..r + h], &dcs[r..r + h]);
                    let dhn = &dh_next[bi * h..(bi + 1) * h];
                    let dcn = &mut dc_next[bi * h..(bi + 1) * h];
                    let row = &mut da_t[bi * g4..(bi + 1) * g4];
                    let (dai, rest) = row.split_at_mut(h);
                    let (daf, rest) = rest.split_at_mut(h);
                    let (dag, dao) = rest.split_at_mut(h);
                    for j in 0..h {
                        let dh = dhr[j] + dhn[j];
                        let dc = dcr[j] + dcn[j] + dh * o[j] * (1.0 - tc[j] * tc[j]);
                        dao[j] = dh * tc[j] * o[j] * (1.0 - o[j]);
                        dai[j] = dc * g[j] * i[j] * (1.0 - i[j]);
                        dag[j] = dc * i[j] * (1.0 - g[j] * g[j]);
                        daf[j] = dc * cp[j] * f[j] * (1.0 - f[j]);
                        dcn[j] = dc * f[j];
                    }
                    add_row(&mut db, row);
                }
                // dh_{t-1} = da_t · W_hhᵀ
                gemm_packed(cpu, nb, dh_next, false, da_t, &wt);
            }
            db
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(sum_rows)
        .unwrap_or_else(|| vec![0.0; g4]);
    // SAFETY: every block wrote its rows of every step.
    let da = unsafe { filled(da) };
    let dw = weight_grad(d, g4, hs, h0, &da);
    Grads { xw: da, bias: db, w: dw, h0: dh0, c0: dc0 }
}

/// dW_hh = Σ_t h_{t-1}ᵀ·da_t = [h0; h_0 … h_{T-2}]ᵀ · da as two matmuls (no copy of the states).
fn weight_grad(d: Dims, g: usize, hs: &[f32], h0: &[f32], da: &[f32]) -> Vec<f32> {
    let Dims { t: tn, b: bn, h } = d;
    let mut dw = product(h, g, bn, h0, 1, h, &da[..bn * g], g, 1, true);
    if tn > 1 {
        matmul(
            h,
            g,
            (tn - 1) * bn,
            &mut dw,
            true,
            &hs[..(tn - 1) * bn * h],
            1,
            h,
            &da[bn * g..],
            g,
            1,
            true,
        );
    }
    dw
}

/// Vanilla tanh RNN forward: h_t = tanh(xw_t + h_{t-1}·W). Returns every h_t, [T, B, H] (it is
/// also the tape).
pub fn rnn_forward(cpu: Cpu, d: Dims, xw: &[f32], bias: &[f32], w: &[f32], h0: &[f32]) -> Vec<f32> {
    let Dims { t: tn, b: bn, h } = d;
    let bh = bn * h;
    assert_eq!(xw.len(), tn * bh, "rnn: xw");
    assert_eq!(bias.len(), h, "rnn: bias");
    assert_eq!(w.len(), h * h, "rnn: w_hh");
    assert_eq!(h0.len(), bh, "rnn: state");
    let mut hs = fresh(tn * bh);
    let hs_r = Rows::fresh(&mut hs);
    let wp = PackedB::new(w, h, h, h, 1);
    blocks(bn).into_par_iter().for_each(|rows| {
        let nb = rows.len();
        for t in 0..tn {
            let h_prev: &[f32] = if t == 0 {
                &h0[rows.start * h..rows.end * h]
            } else {
                // SAFETY: rows of this block only (see `Rows::get`).
                unsafe { &*hs_r.get(((t - 1) * bn + rows.start) * h, nb * h) }
            };
            let at = (t * bn + rows.start) * h;
            // SAFETY: rows of this thread's batch block only (see `Rows::get`).
            let cur = unsafe { hs_r.copied(at, &xw[at..at + nb * h]) };
            for row in cur.chunks_exact_mut(h) {
                add_row(row, bias);
            }
            gemm_packed(cpu, nb, cur, true, h_prev, &wp);
            vmath::tanh(cpu, cur);
        }
    });
    // SAFETY: every block wrote its rows of every step.
    unsafe { filled(hs) }
}

/// Vanilla RNN backward from d(loss)/d(hs), [T, B, H].
pub fn rnn_backward(cpu: Cpu, d: Dims, hs: &[f32], h0: &[f32], w: &[f32], grad: &[f32]) -> Grads {
    let Dims { t: tn, b: bn, h } = d;
    let bh = bn * h;
    assert_eq!(grad.len(), tn * bh, "rnn backward: grad");
    let mut da = fresh(tn * bh);
    let mut dh0 = vec![0.0; bh];
    let (da_r, dh0_r) = (Rows::fresh(&mut da), Rows::new(&mut dh0));
    let wt = PackedB::new(w, h, h, 1, h);
    let db = blocks(bn)
        .into_par_iter()
        .map(|rows| {
            let nb = rows.len();
            let mut db = vec![0.0; h];
            // SAFETY: (all `get`s) rows of this block only.
            let dh_next = unsafe { dh0_r.get(rows.start * h, nb * h) };
            for t in (0..tn).rev() {
                let r = (t * bn + rows.start) * h;
                // SAFETY: rows of this thread's batch block only (see `Rows::get`).
                let dat = unsafe { da_r.zeroed(r, nb * h) };
                for k in 0..nb * h {
                    let y = hs[r + k];
                    dat[k] = (grad[r + k] + dh_next[k]) * (1.0 - y * y);
                }
                for row in dat.chunks_exact(h) {
                    add_row(&mut db, row);
                }
                gemm_packed(cpu, nb, dh_next, false, dat, &wt);
            }
            db
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(sum_rows)
        .unwrap_or_else(|| vec![0.0; h]);
    // SAFETY: every block wrote its rows of every step.
    let da = unsafe { filled(da) };
    let dw = weight_grad(d, h, hs, h0, &da);
    Grads { xw: da, bias: db, w: dw, h0: dh0, c0: Vec::new() }
}

/// What the GRU backward pass needs: per step r, z, n and W_hn·h + b_hn, [T, B, 4H].
#[derive(Clone, Debug)]
pub struct GruTape {
    pub rzn_hn: Vec<f32>,
}

/// GRU forward in PyTorch's form (gate order r, z, n; reset applied after the hidden matmul):
/// x = xw + b_in, hw = h_{t-1}·W + b; r = σ(x_r + hw_r), z = σ(x_z + hw_z),
/// n = tanh(x_n + r·hw_n), h_t = n + z·(h_{t-1} − n). Returns every h_t, [T, B, H], and the
/// tape.
pub fn gru_forward(
    cpu: Cpu,
    d: Dims,
    xw: &[f32],
    b_in: &[f32],
    w: &[f32],
    bias: &[f32],
    h0: &[f32],
) -> (Vec<f32>, GruTape) {
    let Dims { t: tn, b: bn, h } = d;
    let (bh, g3) = (bn * h, 3 * h);
    assert_eq!(xw.len(), tn * bn * g3, "gru: xw");
    assert_eq!(w.len(), h * g3, "gru: w_hh");
    assert_eq!(bias.len(), g3, "gru: b_hh");
    assert_eq!(b_in.len(), g3, "gru: b_ih");
    assert_eq!(h0.len(), bh, "gru: state");
    let (mut hs, mut tape) = (fresh(tn * bh), fresh(tn * bn * 4 * h));
    let (hs_r, tape_r) = (Rows::fresh(&mut hs), Rows::fresh(&mut tape));
    let wp = PackedB::new(w, h, g3, g3, 1);
    blocks(bn).into_par_iter().for_each(|rows| {
        let nb = rows.len();
        let mut hw = vec![0.0; nb * g3];
        for t in 0..tn {
            let h_prev: &[f32] = if t == 0 {
                &h0[rows.start * h..rows.end * h]
            } else {
                // SAFETY: rows of this block only (see `Rows::get`).
                unsafe { &*hs_r.get(((t - 1) * bn + rows.start) * h, nb * h) }
            };
            gemm_packed(cpu, nb, &mut hw, false, h_prev, &wp);
            // SAFETY: rows of this thread's batch block only (see `Rows::get`).
            let cur = unsafe { hs_r.zeroed((t * bn + rows.start) * h, nb * h) };
            // SAFETY: rows of this thread's batch block only (see `Rows::get`).
            let tape_t = unsafe { tape_r.zeroed((t * bn + rows.start) * 4 * h, nb * 4 * h) };
            for bi in 0..nb {
                let x = &xw[(t * bn + rows.start + bi) * g3..(t * bn + rows.start + bi + 1) * g3];
                let hwr = &hw[bi * g3..(bi + 1) * g3];
                let row = &mut tape_t[bi * 4 * h..(bi + 1) * 4 * h];
                let (rz, rest) = row.split_at_mut(2 * h);
                let (n, hn) = rest.split_at_mut(h);
                for j in 0..2 * h {
                    rz[j] = x[j] + b_in[j] + hwr[j] + bias[j];
                }
                vmath::sigmoid(cpu, rz);
                let (r, z) = rz.split_at(h);
                for j in 0..h {
                    hn[j] = hwr[2 * h + j] + bias[2 * h + j];
                    n[j] = x[2 * h + j] + b_in[2 * h + j] + r[j] * hn[j];
                }
                vmath::tanh(cpu, n);
                let hp = &h_prev[bi * h..(bi + 1) * h];
                let out = &mut cur[bi * h..(bi + 1) * h];
                for j in 0..h {
                    out[j] = n[j] + z[j] * (hp[j] - n[j]);
                }
            }
        }
    });
    // SAFETY: every block wrote its rows of every step.
    let (hs, tape) = unsafe { (filled(hs), filled(tape)) };
    (hs, GruTape { rzn_hn: tape })
}

/// GRU gradients: input projection, recurrent weight and bias, initial state.
#[derive(Clone, Debug)]
pub struct GruGrads {
    pub xw: Vec<f32>,
    /// b_ih's gradient (the input projection's bias).
    pub b_in: Vec<f32>,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub h0: Vec<f32>,
}

/// GRU backward from d(loss)/d(hs), [T, B, H].
pub fn gru_backward(
    cpu: Cpu,
    d: Dims,
    tape: &GruTape,
    hs: &[f32],
    h0: &[f32],
    w: &[f32],
    grad: &[f32],
) -> GruGrads {
    let Dims { t: tn, b: bn, h } = d;
    let (bh, g3) = (bn * h, 3 * h);
    assert_eq!(grad.len(), tn * bh, "gru backward: grad");
    let (mut dxw, mut dhw) = (fresh(tn * bn * g3), fresh(tn * bn * g3));
    let mut dh0 = vec![0.0; bh];
    let (dxw_r, dhw_r, dh0_r) = (Rows::fresh(&mut dxw), Rows::fresh(&mut dhw), Rows::new(&mut dh0));
    let wt = PackedB::new(w, g3, h, 1, g3);
    let (db_in, db) = blocks(bn)
        .into_par_iter()
        .map(|rows| {
            let nb = rows.len();
            let (mut db_in, mut db) = (vec![0.0; g3], vec![0.0; g3]);
            // SAFETY: (all `get`s) rows of this block only.
            let dh_next = unsafe { dh0_r.get(rows.start * h, nb * h) };
            for t in (0..tn).rev() {
                // SAFETY: rows of this thread's batch block only (see `Rows::get`).
                let (dx_t, dw_t) = unsafe {
                    (
                        dxw_r.zeroed((t * bn + rows.start) * g3, nb * g3),
                        dhw_r.zeroed((t * bn + rows.start) * g3, nb * g3),
                    )
                };
                for bi in 0..nb {
                    let b = rows.start + bi;
                    let k = t * bn + b;
                    let row = &tape.rzn_hn[k * 4 * h..(k + 1) * 4 * h];
                    let (r, rest) = row.split_at(h);
                    let (z, rest) = rest.split_at(h);
                    let (n, hn) = rest.split_at(h);
                    let hp = if t == 0 {
                        &h0[b * h..(b + 1) * h]
                    } else {
                        &hs[(t - 1) * bh + b * h..(t - 1) * bh + (b + 1) * h]
                    };
                    let dhr = &grad[t * bh + b * h..t * bh + (b + 1) * h];
                    let dhn_ = &mut dh_next[bi * h..(bi + 1) * h];
                    let (dx, dw) =
                        (&mut dx_t[bi * g3..(bi + 1) * g3], &mut dw_t[bi * g3..(bi + 1) * g3]);
                    for j in 0..h {
                        let dh = dhr[j] + dhn_[j];
                        let dz = dh * (hp[j] - n[j]);
                        let da_n = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                        let da_r = da_n * hn[j] * r[j] * (1.0 - r[j]);
                        let da_z = dz * z[j] * (1.0 - z[j]);
                        dx[j] = da_r;
                        dx[h + j] = da_z;
                        dx[2 * h + j] = da_n;
                        dw[j] = da_r;
                        dw[h + j] = da_z;
                        dw[2 * h + j] = da_n * r[j];
                        // The direct path h_{t-1} → h_t; the matmul below adds the one through hw.
                        dhn_[j] = dh * z[j];
                    }
                    add_row(&mut db_in, dx);
                    add_row(&mut db, dw);
                }
                // dh_{t-1} += dhw_t · W_hhᵀ
                gemm_packed(cpu, nb, dh_next, true, dw_t, &wt);
            }
            (db_in, db)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(|a, b| (sum_rows(a.0, b.0), sum_rows(a.1, b.1)))
        .unwrap_or_else(|| (vec![0.0; g3], vec![0.0; g3]));
    // SAFETY: every block wrote its rows of every step.
    let (dxw, dhw) = unsafe { (filled(dxw), filled(dhw)) };
    let dw = weight_grad(d, g3, hs, h0, &dhw);
    GruGrads { xw: dxw, b_in: db_in, w: dw, bias: db, h0: dh0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time of one LSTM layer's recurrence at the benchmark's shape (T 128, B 32, H 256), forward
    /// and backward, as GFLOP/s of the per-step products:
    /// `cargo test --release -p burnlab-models lstm_recurrence_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn lstm_recurrence_speed() {
        let d = Dims { t: 128, b: 32, h: 256 };
        let xw: Vec<f32> = (0..d.t * d.b * 4 * d.h).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..d.h * 4 * d.h).map(|i| (i as f32 * 0.11).cos() * 0.05).collect();
        let s0 = vec![0.0; d.b * d.h];
        let reps = 10;
        let (mut fwd, mut bwd, mut wg) = (0.0, 0.0, 0.0);
        for _ in 0..reps {
            let t = std::time::Instant::now();
            let (out, tape) =
                lstm_forward(Cpu::current(), d, &xw, &vec![0.1; 4 * d.h], &w, &s0, &s0);
            fwd += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let g = lstm_backward(Cpu::current(), d, &tape, &out, &s0, &s0, &w, &out);
            bwd += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let dw = weight_grad(d, 4 * d.h, &out[..d.t * d.b * d.h], &s0, &g.xw);
            wg += t.elapsed().as_secs_f64();
            assert!(dw[0].is_finite());
        }
        let flops = (2 * d.t * d.b * d.h * 4 * d.h * reps) as f64;
        println!(
            "fwd_ms={:.2} fwd_gflops={:.1} bwd_ms={:.2} (incl. dW) weight_grad_ms={:.2} weight_grad_gflops={:.1}",
            fwd * 1e3 / reps as f64,
            flops / fwd / 1e9,
            bwd * 1e3 / reps as f64,
            wg * 1e3 / reps as f64,
            flops / wg / 1e9
        );
    }

    /// The gradients of the recurrent matrix and of the bias, checked against central finite
    /// differences of the kernel itself (f64-free: a smooth loss and a large enough step).
    #[test]
    fn lstm_kernel_weight_and_bias_gradients_match_finite_differences() {
        let d = Dims { t: 4, b: 2, h: 3 };
        let n = |len: usize, seed: u32| -> Vec<f32> {
            (0..len)
                .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        let xw = n(d.t * d.b * 4 * d.h, 1);
        let w = n(d.h * 4 * d.h, 2);
        let h0 = n(d.b * d.h, 3);
        let c0 = n(d.b * d.h, 4);
        let r = n(2 * d.t * d.b * d.h, 5);
        let bias = n(4 * d.h, 6);
        // Every ISA this CPU has (the per-step products and sigmoid/tanh are per ISA).
        for cpu in Cpu::all() {
            let loss = |w: &[f32], bias: &[f32]| -> f64 {
                lstm_forward(cpu, d, &xw, bias, w, &h0, &c0)
                    .0
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| (*a * *b) as f64)
                    .sum()
            };
            let (out, tape) = lstm_forward(cpu, d, &xw, &bias, &w, &h0, &c0);
            let g = lstm_backward(cpu, d, &tape, &out, &h0, &c0, &w, &r);
            let eps = 1e-2f32;
            let fd = |k: usize, of_w: bool| {
                let (mut wp, mut wm, mut bp, mut bm) =
                    (w.clone(), w.clone(), bias.clone(), bias.clone());
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
                assert!(
                    (fd - g.w[k] as f64).abs() < 2e-3,
                    "{:?} dW[{k}]: analytic {} vs finite difference {fd}",
                    cpu.isa(),
                    g.w[k]
                );
            }
            for k in 0..bias.len() {
                let fd = fd(k, false);
                assert!(
                    (fd - g.bias[k] as f64).abs() < 2e-3,
                    "{:?} db[{k}]: analytic {} vs finite difference {fd}",
                    cpu.isa(),
                    g.bias[k]
                );
            }
        }
    }
}
