//! Test helpers shared by the import and export tests: the fixtures' formula and input.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::export::Data;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/weights").join(name)
}

/// `formula` of scripts/fixtures/make_torch_fixture.py: an integer hash of the index and
/// the name's bytes, scaled by the tensor's role.
pub fn formula(name: &str, shape: &[usize]) -> Data {
    let n: usize = shape.iter().product();
    let h: u64 = name.bytes().map(u64::from).sum();
    let base = |i: usize| {
        ((i as u64 * 2_654_435_761 + h * 40_503) % 4_294_967_296) as f64 / 4_294_967_296.0 - 0.5
    };
    if name.ends_with("num_batches_tracked") {
        return Data::I64(vec![0; n]);
    }
    let v = |f: &dyn Fn(f64) -> f64| (0..n).map(|i| f(base(i)) as f32).collect();
    Data::F32(if name.ends_with("running_var") {
        v(&|b| 1.0 + 0.25 * b)
    } else if name.ends_with("running_mean") || name.ends_with("bias") {
        v(&|b| 0.1 * b)
    } else if shape.len() == 1 {
        v(&|b| 1.0 + 0.1 * b)
    } else {
        let fan_in = (n / shape[0]) as f64;
        v(&|b| b * (24.0 / fan_in).sqrt())
    })
}

pub fn fixed_input(shape: [usize; 4]) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|i| (0.01 * i as f64).sin() as f32).collect();
    Tensor::from_data(TensorData::new(x, shape), &Device::flex())
}
