//! relu(a + b), a residual block's join, as one parallel pass on the CPU backend (flex), and
//! its backward as one more: Burn's add and ReLU are two single-threaded passes forward and two
//! backward over the block's output.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use burnlab_kernels::residual as kernels;

use crate::{contiguous, f32s, flex};

#[backend_extension(Flex, Autodiff)]
pub trait FusedResidual: Backend {
    /// max(a + b, 0) for a and b of the same shape.
    fn add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `relu(a + b)`: through [`FusedResidual`] on flex when the shapes match, Burn's ops elsewhere.
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if a.device() == Device::flex() && a.dims() == b.dims() && crate::enabled() {
        return Tensor::from_dispatch(<Dispatch as FusedResidual>::add_relu(
            a.into_dispatch(),
            b.into_dispatch(),
        ));
    }
    relu(a + b)
}

fn forward(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let shape = a.layout().shape().clone();
    assert_eq!(&shape, b.layout().shape(), "add_relu: shapes differ");
    let (a, b) = (contiguous(a), contiguous(b));
    flex(kernels::add_relu(f32s(&a), f32s(&b)), shape.as_slice())
}

impl FusedResidual for Flex {
    fn add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        forward(&a, &b)
    }
}

#[derive(Debug)]
struct AddReluBackward;

impl Backward<Flex, 2> for AddReluBackward {
    /// The output (contiguous): where it is 0 the gradient stops.
    type State = FlexTensor;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let y = ops.state;
        let g = kernels::add_relu_backward(f32s(&y), f32s(&dy));
        let shape = y.layout().shape().as_slice().to_vec();
        let [n_a, n_b] = ops.parents;
        match (n_a, n_b) {
            (Some(a), Some(b)) => {
                // Both parents get the same gradient: one buffer, shared (flex tensors are
                // reference-counted and copied on write), not a serial copy of it.
                let g = flex(g, &shape);
                grads.register::<Flex>(b.id, g.clone());
                grads.register::<Flex>(a.id, g);
            }
            (Some(n), None) | (None, Some(n)) => grads.register::<Flex>(n.id, flex(g, &shape)),
            (None, None) => {}
        }
    }
}

impl<C: CheckpointStrategy> FusedResidual for Autodiff<Flex, C> {
    fn add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [a.node(), b.node()];
        let (a, b) = (a.into_primitive(), b.into_primitive());
        let y = forward(&a, &b);
        match AddReluBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    /// Values and both gradients against Burn's relu(a + b), sizes across the task chunk.
    #[test]
    fn matches_burns_add_then_relu() {
        let _rng = crate::device_rng_lock();
        let dev = Device::flex().autodiff();
        dev.seed(8);
        for shape in [[1, 1, 1, 3], [2, 3, 5, 7], [3, 16, 32, 33]] {
            let a =
                Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &dev).require_grad();
            let b =
                Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &dev).require_grad();
            let r = Tensor::<4>::random(shape, Distribution::Default, &dev);
            let ours = add_relu(a.clone(), b.clone());
            let theirs = relu(a.clone() + b.clone());
            let v = |t: Tensor<4>| -> Vec<f32> { t.into_data().try_to_vec().expect("f32") };
            assert_eq!(v(ours.clone()), v(theirs.clone()), "{shape:?}: values");
            let (g1, g2) = ((ours * r.clone()).sum().backward(), (theirs * r).sum().backward());
            assert_eq!(v(a.grad(&g1).expect("da")), v(a.grad(&g2).expect("da")), "{shape:?}: da");
            assert_eq!(v(b.grad(&g1).expect("db")), v(b.grad(&g2).expect("db")), "{shape:?}: db");
        }
        // Without autodiff too.
        let plain = Device::flex();
        let a = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, -0.25]], &plain);
        let b = Tensor::<2>::from_floats([[-3.0, 1.0], [0.25, 0.5]], &plain);
        let y: Vec<f32> = add_relu(a, b).into_data().try_to_vec().expect("f32");
        assert_eq!(y, vec![0.0, 0.0, 0.75, 0.25]);
    }
}
