//! relu(a + b), a residual block's join, as one parallel pass, and its backward as one more:
//! Burn's add and ReLU are two single-threaded passes forward and two backward over the block's
//! output on flex. Memory-bound loops, the same on every ISA.

use crate::par::par_chunks_uninit;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// max(a + b, 0), element by element.
pub fn add_relu(a: &[f32], b: &[f32]) -> Vec<f32> {
    // Without this, the zipped loop below would stop at the shorter slice and leave the rest
    // of the output uninitialised.
    assert_eq!(a.len(), b.len(), "add_relu: lengths differ");
    // SAFETY: every element of each chunk is written (a and b are as long as the output).
    unsafe {
        par_chunks_uninit(
            a.len(),
            CHUNK,
            || (),
            |_, i, y| {
                let (at, n) = (i * CHUNK, y.len());
                for ((o, &x), &z) in y.iter_mut().zip(&a[at..at + n]).zip(&b[at..at + n]) {
                    o.write((x + z).max(0.0));
                }
            },
        )
    }
}

/// The gradient of [`add_relu`] from its output y and dy: dy where y > 0, else 0 (both
/// parents get it).
pub fn add_relu_backward(y: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(y.len(), dy.len(), "add_relu backward: lengths differ");
    // SAFETY: every element of each chunk is written (y and dy are as long as the output).
    unsafe {
        par_chunks_uninit(
            y.len(),
            CHUNK,
            || (),
            |_, i, g| {
                let (at, n) = (i * CHUNK, g.len());
                for ((o, &y), &d) in g.iter_mut().zip(&y[at..at + n]).zip(&dy[at..at + n]) {
                    o.write(if y > 0.0 { d } else { 0.0 });
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_masks() {
        let n = if cfg!(miri) { 1000 } else { CHUNK + 7 };
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
        let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos() * 0.5).collect();
        let y = add_relu(&a, &b);
        assert!(y.iter().zip(a.iter().zip(&b)).all(|(y, (a, b))| *y == (a + b).max(0.0)));
        let dy: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let g = add_relu_backward(&y, &dy);
        assert!(
            g.iter()
                .zip(y.iter().zip(&dy))
                .all(|(g, (y, d))| *g == if *y > 0.0 { *d } else { 0.0 })
        );
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn refuses_operands_of_different_lengths() {
        add_relu(&[1.0, 2.0, 3.0], &[1.0]);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn backward_refuses_operands_of_different_lengths() {
        add_relu_backward(&[1.0, 2.0, 3.0], &[1.0, 2.0]);
    }
}
