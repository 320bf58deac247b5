//! Single-precision matrix multiply on row-major slices, over the `gemm` crate.
//!
//! All matrices are dense row-major unless a `Trans` flag says the stored matrix is the
//! transpose of the operand. `C[m,n] = alpha·C + beta·op(A)[m,k]·op(B)[k,n]`.

use gemm::{gemm, Parallelism};

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// The operand is used as stored (row-major `[rows, cols]`).
    No,
    /// The stored row-major matrix is the transpose of the operand.
    Yes,
}

/// `c[m,n] = accumulate·c + op(a)[m,k] · op(b)[k,n]`.
///
/// `a` holds `m×k` values (or `k×m` when `ta == Trans::Yes`), `b` holds `k×n` (or `n×k`).
/// `threads` = 1 runs on the calling thread; more uses the rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    c: &mut [f32],
    accumulate: bool,
    threads: usize,
) {
    assert!(a.len() >= m * k, "sgemm: a has {} values, needs {}", a.len(), m * k);
    assert!(b.len() >= k * n, "sgemm: b has {} values, needs {}", b.len(), k * n);
    assert!(c.len() >= m * n, "sgemm: c has {} values, needs {}", c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Row-major [r, c] = column stride 1, row stride c.
    let (a_cs, a_rs) = match ta {
        Trans::No => (1isize, k as isize),
        Trans::Yes => (m as isize, 1isize),
    };
    let (b_cs, b_rs) = match tb {
        Trans::No => (1isize, n as isize),
        Trans::Yes => (k as isize, 1isize),
    };
    let par = if threads <= 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    };
    // SAFETY: the strides above describe matrices that lie inside the slices, checked by the
    // length assertions; `c` is exclusively borrowed.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], ta: Trans, b: &[f32], tb: Trans) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let av = if ta == Trans::No { a[i * k + p] } else { a[p * m + i] };
                    let bv = if tb == Trans::No { b[p * n + j] } else { b[j * k + p] };
                    s += av * bv;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_naive_for_all_transpositions() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 17 % 13) as f32) - 6.0).collect();
        for ta in [Trans::No, Trans::Yes] {
            for tb in [Trans::No, Trans::Yes] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                sgemm(m, n, k, &a, ta, &b, tb, &mut c, false, 1);
                assert_eq!(c, want);
                let mut c2 = vec![1.0; m * n];
                sgemm(m, n, k, &a, ta, &b, tb, &mut c2, true, 2);
                for (x, y) in c2.iter().zip(&want) {
                    assert_eq!(*x, y + 1.0);
                }
            }
        }
    }
}
