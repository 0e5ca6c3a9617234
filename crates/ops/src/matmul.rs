//! A 2-D matrix product on flex written straight into its output, forward and backward.
//!
//! Why not flex's own matmul: Burn 0.22.1 allocates its output as zeroed bytes and then copies
//! it into an aligned buffer (`FlexTensor::empty` → `Bytes::from_bytes_vec`), two serial passes
//! over the output on the calling thread while the others wait. On the LSTM benchmark those
//! two passes, for the input projections and their gradients, were ~27% of the main thread's
//! samples and ~4% of the wall time. The products themselves are the same `gemm` crate's.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::{Device, Tensor};

use burnlab_kernels::matmul::product;

use crate::{contiguous, f32s, flex, register_grads};

#[backend_extension(Flex, Autodiff)]
pub trait FusedMatmul: Backend {
    /// a [m, k] · b [k, n].
    fn matmul_2d(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `a.matmul(b)` for a [m, k] and b [k, n]: through [`FusedMatmul`] on flex, Burn's matmul
/// elsewhere (and for shapes that do not match, so that Burn reports them).
pub fn matmul(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    if a.device() == Device::flex() && a.dims()[1] == b.dims()[0] && crate::enabled() {
        return Tensor::from_dispatch(<Dispatch as FusedMatmul>::matmul_2d(
            a.into_dispatch(),
            b.into_dispatch(),
        ));
    }
    a.matmul(b)
}

/// The product of contiguous a [m, k] and b [k, n], on gemm's threads.
fn forward(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let (m, k, n) = dims(a, b);
    flex(product(m, n, k, f32s(a), k, 1, f32s(b), n, 1, true), &[m, n])
}

fn dims(a: &FlexTensor, b: &FlexTensor) -> (usize, usize, usize) {
    let (sa, sb) = (a.layout().shape(), b.layout().shape());
    assert!(
        sa.num_dims() == 2 && sb.num_dims() == 2 && sa[1] == sb[0],
        "matmul: [m, k]·[k, n] expected, got {sa:?}·{sb:?}"
    );
    (sa[0], sa[1], sb[1])
}

impl FusedMatmul for Flex {
    fn matmul_2d(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        forward(&contiguous(&a), &contiguous(&b))
    }
}

#[derive(Debug)]
struct MatmulBackward;

impl Backward<Flex, 2> for MatmulBackward {
    /// a and b (contiguous).
    type State = [FlexTensor; 2];

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let [a, b] = ops.state;
        let (m, k, n) = dims(&a, &b);
        let parents = ops.parents.map(|p| p.map(|n| n.id));
        let (a, b, dy) = (f32s(&a), f32s(&b), f32s(&dy));
        // da = dy·bᵀ [m, k]; db = aᵀ·dy [k, n]: the transposes are strides, not copies.
        let da = parents[0].map(|_| (product(m, k, n, dy, n, 1, b, 1, n, true), vec![m, k]));
        let db = parents[1].map(|_| (product(k, n, m, a, 1, k, dy, n, 1, true), vec![k, n]));
        register_grads(grads, parents, [da, db]);
    }
}

impl<C: CheckpointStrategy> FusedMatmul for Autodiff<Flex, C> {
    fn matmul_2d(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [a.node(), b.node()];
        let (a, b) = (contiguous(&a.into_primitive()), contiguous(&b.into_primitive()));
        let y = forward(&a, &b);
        match MatmulBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([a, b], y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::testing::{close, vec};

    /// Values and both gradients against Burn's matmul: odd shapes, one below and one above
    /// gemm's thread threshold, a transposed (non-contiguous) operand, and one side untracked.
    #[test]
    fn matches_burns_matmul() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(11);
        for (m, k, n) in [(1, 1, 1), (3, 7, 5), (33, 1, 17), (300, 200, 190)] {
            let a = Tensor::<2>::random([m, k], Distribution::Default, &dev).require_grad();
            let bt = Tensor::<2>::random([n, k], Distribution::Default, &dev).require_grad();
            let r = Tensor::<2>::random([m, n], Distribution::Default, &dev);
            let ours = matmul(a.clone(), bt.clone().transpose());
            let theirs = a.clone().matmul(bt.clone().transpose());
            let what = format!("{m}×{k}·{k}×{n}");
            close(&vec(ours.clone()), &vec(theirs.clone()), 1e-5, &format!("{what}: values"));
            let (g1, g2) = ((ours * r.clone()).sum().backward(), (theirs * r).sum().backward());
            for (x, name) in [(&a, "da"), (&bt, "db")] {
                let (ours, theirs) = (x.grad(&g1).expect(name), x.grad(&g2).expect(name));
                close(&vec(ours), &vec(theirs), 1e-5, &format!("{what}: {name}"));
            }
        }
        // Only b tracked: a gets no gradient, b the right one.
        let a = Tensor::<2>::random([4, 3], Distribution::Default, &dev);
        let b = Tensor::<2>::random([3, 2], Distribution::Default, &dev).require_grad();
        let g = matmul(a.clone(), b.clone()).sum().backward();
        assert!(a.grad(&g).is_none());
        let want = a.transpose().sum_dim(1).repeat_dim(1, 2);
        close(&vec(b.grad(&g).expect("db")), &vec(want), 1e-6, "db, a untracked");
        // Without autodiff, a known answer.
        let plain = Device::flex();
        let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &plain);
        let b = Tensor::<2>::from_floats([[5.0, 6.0, 7.0], [8.0, 9.0, 10.0]], &plain);
        assert_eq!(vec(matmul(a, b)), vec![21.0, 24.0, 27.0, 47.0, 54.0, 61.0]);
    }
}
