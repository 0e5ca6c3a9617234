//! Matrix products through the `gemm` crate (Burn's own CPU matmul uses it too), on slices
//! given by their strides so that transposes cost nothing.

/// dst[m×n] (row-major, contiguous) = (dst if `acc`) + lhs[m×k]·rhs[k×n], the operands given
/// by their row and column strides so that transposes cost nothing. `threads`: let gemm split
/// the work across rayon's pool (for big products only).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    acc: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    assert!(dst.len() >= m * n, "matmul: destination too short");
    // SAFETY: dst holds m·n values (asserted) and, a unique borrow, aliases neither operand;
    // m, n, k > 0.
    unsafe {
        gemm_into(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            acc,
            lhs,
            lhs_rs,
            lhs_cs,
            rhs,
            rhs_rs,
            rhs_cs,
            threads,
            "matmul",
        )
    }
}

/// dst[m×n] (row-major) = (dst if `acc`) + lhs·rhs through gemm, after checking that every
/// strided element of lhs and rhs lies inside its slice (`what` names the caller in the panic).
///
/// # Safety
/// `dst` is valid for m·n writes (and reads, with `acc`) and aliases neither slice; m, n, k > 0.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    acc: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: bool,
    what: &str,
) {
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs, "{what}: lhs too short");
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs, "{what}: rhs too short");
    // SAFETY: the operands' elements are inside their slices (asserted above); dst as the
    // caller guarantees. Without `acc` gemm does not read dst (`read_dst` false).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            acc,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(threads, m, n, k),
        );
    }
}

/// gemm's threads where asked for and the product is big enough: burn-flex's threshold, below
/// ~192³ multiply-adds threads cost more than they give.
fn parallelism(threads: bool, m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if threads && m * n * k >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// lhs[m×k]·rhs[k×n] as a new row-major Vec, written once by gemm: no zero-fill first, which
/// for an LSTM's input projection (16 MB) was a serial pass on one thread while the others
/// waited. Strides and `threads` as for [`matmul`].
#[allow(clippy::too_many_arguments)]
pub fn product(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: bool,
) -> Vec<f32> {
    let len = m.checked_mul(n).expect("product: m·n overflows");
    if len == 0 || k == 0 {
        return vec![0.0; len];
    }
    let mut dst = Vec::<f32>::with_capacity(len);
    // SAFETY: dst has capacity for m·n values and aliases neither operand; m, n, k > 0. gemm,
    // told not to read dst, writes every one of the m·n values before `set_len`.
    unsafe {
        gemm_into(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            false,
            lhs,
            lhs_rs,
            lhs_cs,
            rhs,
            rhs_rs,
            rhs_cs,
            threads,
            "product",
        );
        dst.set_len(len);
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ars: usize,
        acs: usize,
        b: &[f32],
        brs: usize,
        bcs: usize,
    ) -> Vec<f32> {
        (0..m * n)
            .map(|i| (0..k).map(|p| a[i / n * ars + p * acs] * b[p * brs + i % n * bcs]).sum())
            .collect()
    }

    /// Every element written (the fresh Vec's memory is never read: NaN-free results), against
    /// the plain sums: operands plain and transposed, sizes below and above gemm's thread
    /// threshold, k = 0 and empty results.
    #[test]
    fn product_matches_the_plain_sums() {
        for (m, n, k) in
            [(1, 1, 1), (3, 5, 7), (17, 1, 9), (1, 33, 2), (70, 65, 300), (200, 210, 190)]
        {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            for ((ars, acs), (brs, bcs)) in [((k, 1), (n, 1)), ((1, m), (1, k))] {
                for threads in [false, true] {
                    let got = product(m, n, k, &a, ars, acs, &b, brs, bcs, threads);
                    let want = naive(m, n, k, &a, ars, acs, &b, brs, bcs);
                    assert_eq!(got.len(), m * n);
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                            "{m}×{k}·{k}×{n} strides ({ars},{acs}) ({brs},{bcs}) at {i}: {x} vs {y}"
                        );
                    }
                }
            }
        }
        assert_eq!(product(2, 3, 0, &[], 0, 1, &[], 3, 1, false), vec![0.0; 6]);
        assert!(product(0, 3, 4, &[], 4, 1, &[0.0; 12], 3, 1, false).is_empty());
    }

    #[test]
    #[should_panic(expected = "product: rhs too short")]
    fn product_checks_its_operands() {
        product(2, 2, 2, &[1.0; 4], 2, 1, &[1.0; 3], 2, 1, false);
    }
}
