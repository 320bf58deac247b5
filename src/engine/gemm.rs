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

/// Panics (a caller's bug, never input data) when an operand is shorter than its shape needs.
fn check_operands(name: &str, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &[f32]) {
    assert!(a.len() >= m * k, "{name}: a has {} values, needs {}", a.len(), m * k);
    assert!(b.len() >= k * n, "{name}: b has {} values, needs {}", b.len(), k * n);
    assert!(c.len() >= m * n, "{name}: c has {} values, needs {}", c.len(), m * n);
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
    check_operands("sgemm", m, n, k, a, b, c);
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

/// Like [`sgemm`], for the large thin products of one big MLP (batch `m` ≈ 64 against weights of
/// thousands × thousands): own AVX-512 kernels whose work is split over `threads` by output
/// columns, so each value is computed in the same order whatever the thread count. `C = A·B` and
/// `C = Aᵀ·B` pack a 48-column panel of `B` and broadcast 8 rows of `A`; `C = A·Bᵀ` (a forward
/// `x·Wᵀ`) computes `Cᵀ = B·Aᵀ` six rows of `B` at a time straight from memory, so the weights are
/// read once and never packed. Other cases, and machines without AVX-512, go to [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub fn sgemm_wide(
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
    check_operands("sgemm_wide", m, n, k, a, b, c);
    #[cfg(target_arch = "x86_64")]
    {
        if m > 0 && n > 0 && k > 0 && std::arch::is_x86_feature_detected!("avx512f") {
            match (ta, tb) {
                (_, Trans::No) => {
                    wide::nn(m, n, k, a, ta == Trans::Yes, b, c, accumulate, threads.max(1));
                    return;
                }
                (Trans::No, Trans::Yes) => {
                    wide::nt(m, n, k, a, b, c, accumulate, threads.max(1));
                    return;
                }
                _ => {}
            }
        }
    }
    sgemm(m, n, k, a, ta, b, tb, c, accumulate, threads);
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    /// Depth of one packed block of `nt`.
    const KC: usize = 256;
    /// Depth of one packed block of `nn` (a 48-column panel of it stays in L1).
    const NN_KC: usize = 128;
    /// Rows of one packed block of `A` in `nn`.
    const NN_MC: usize = 256;
    /// Rows of `A` per micro-tile of `nn`.
    const MR: usize = 8;
    /// Columns of `B` per packed panel of `nn` (3 vectors).
    const NR: usize = 48;
    /// Rows of `B` (columns of `C`) per micro-tile of `nt`.
    const JR: usize = 6;
    /// Rows of `A` (columns of `Cᵀ`) per pass of `nt` (4 vectors).
    const MC: usize = 64;

    #[derive(Clone, Copy)]
    struct Ptr(*mut f32);
    // SAFETY: threads write disjoint columns of `C` through it (see `split`).
    unsafe impl Send for Ptr {}
    unsafe impl Sync for Ptr {}

    impl Ptr {
        /// The pointer (a method, so closures capture the whole `Send` wrapper).
        fn get(self) -> *mut f32 {
            self.0
        }
    }

    /// Runs `f(lo, hi)` over `parts` contiguous ranges of `0..units`, in parallel when `parts > 1`.
    fn split(units: usize, parts: usize, f: impl Fn(usize, usize) + Sync) {
        let parts = parts.min(units).max(1);
        if parts == 1 {
            f(0, units);
            return;
        }
        use rayon::prelude::*;
        (0..parts)
            .into_par_iter()
            .for_each(|t| f(units * t / parts, units * (t + 1) / parts));
    }

    thread_local! {
        /// Packing buffers of this thread, kept between calls (fresh pages cost page faults).
        static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }

    /// Runs `f` on this thread's two scratch buffers of at least `x` and `y` values (contents
    /// left from earlier calls: callers write before they read).
    fn with_scratch<R>(x: usize, y: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let (u, v) = &mut *s;
            if u.len() < x {
                u.resize(x, 0.0);
            }
            if v.len() < y {
                v.resize(y, 0.0);
            }
            f(&mut u[..x], &mut v[..y])
        })
    }

    fn mask(w: usize) -> __mmask16 {
        if w >= 16 {
            0xffff
        } else {
            ((1u32 << w) - 1) as __mmask16
        }
    }

    /// `C[m,n] = acc·C + op(A)·B`, `B` row-major `[k, n]`, `op(A)` = `A [m,k]` or `Aᵀ` with `A [k,m]`.
    /// Blocked as in BLIS: a `kc × nc` block of `B` packed into 48-column panels (read row by row,
    /// so the weights stream sequentially), an `mc × kc` block of `A` into 8-row panels, an
    /// 8×48 register tile.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nn(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        ta: bool,
        b: &[f32],
        c: &mut [f32],
        acc: bool,
        threads: usize,
    ) {
        let cp = Ptr(c.as_mut_ptr());
        let kcap = NN_KC.min(k);
        // B block of at most ~1 MiB (half an L2).
        let nc_cap = ((1 << 18) / kcap / NR).max(1) * NR;
        let mc_cap = NN_MC.min(m.div_ceil(MR) * MR);
        split(n.div_ceil(NR), threads, |p0, p1| {
            let (c0, c1) = (p0 * NR, (p1 * NR).min(n));
            with_scratch(kcap * nc_cap.min((p1 - p0) * NR), mc_cap * kcap, |bp, ap| {
                for jc in (c0..c1).step_by(nc_cap) {
                    let ncw = nc_cap.min(c1 - jc);
                    let np = ncw.div_ceil(NR);
                    for k0 in (0..k).step_by(kcap) {
                        let kc = kcap.min(k - k0);
                        // B block as [panel][kk][NR], zero columns past ncw.
                        for kk in 0..kc {
                            let src = &b[(k0 + kk) * n + jc..(k0 + kk) * n + jc + ncw];
                            for (q, chunk) in src.chunks(NR).enumerate() {
                                let dst = &mut bp[(q * kc + kk) * NR..(q * kc + kk + 1) * NR];
                                dst[..chunk.len()].copy_from_slice(chunk);
                                dst[chunk.len()..].fill(0.0);
                            }
                        }
                        let load = acc || k0 > 0;
                        for i0 in (0..m).step_by(mc_cap) {
                            let mcw = mc_cap.min(m - i0);
                            let mp = mcw.div_ceil(MR);
                            // A block as [row panel][kk][MR], zero rows past mcw.
                            ap[..mp * kc * MR].fill(0.0);
                            if ta {
                                for kk in 0..kc {
                                    let src = &a[(k0 + kk) * m + i0..(k0 + kk) * m + i0 + mcw];
                                    for (p, chunk) in src.chunks(MR).enumerate() {
                                        ap[(p * kc + kk) * MR..(p * kc + kk) * MR + chunk.len()].copy_from_slice(chunk);
                                    }
                                }
                            } else {
                                for r in 0..mcw {
                                    let (p, rr) = (r / MR, r % MR);
                                    let row = &a[(i0 + r) * k + k0..(i0 + r) * k + k0 + kc];
                                    let dst = &mut ap[p * kc * MR..(p + 1) * kc * MR];
                                    row.iter().enumerate().for_each(|(kk, &v)| dst[kk * MR + rr] = v);
                                }
                            }
                            let tile = |q: usize, p: usize| {
                                let j0 = jc + q * NR;
                                let nw = NR.min(c1 - j0);
                                let i = i0 + p * MR;
                                let mr = MR.min(m - i);
                                // SAFETY: avx512f was detected by the caller; the tile (rows
                                // i..i+mr, columns j0..j0+nw) lies inside `c` and in this
                                // thread's columns.
                                unsafe {
                                    kernel_nn(
                                        kc,
                                        ap.as_ptr().add(p * kc * MR),
                                        bp.as_ptr().add(q * kc * NR),
                                        cp.get().add(i * n + j0),
                                        n,
                                        mr,
                                        nw,
                                        load,
                                    )
                                };
                            };
                            if kc == k {
                                // One pass over the depth (a weight gradient): C is written once,
                                // row panel by row panel, so the stores run along rows.
                                (0..mp).for_each(|p| (0..np).for_each(|q| tile(q, p)));
                            } else {
                                // A 48-column panel of B stays in L1 while the rows of A pass by.
                                (0..np).for_each(|q| (0..mp).for_each(|p| tile(q, p)));
                            }
                        }
                    }
                }
            });
        });
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel_nn(
        kc: usize,
        ap: *const f32,
        bp: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nw: usize,
        load: bool,
    ) {
        let mut t = [[_mm512_setzero_ps(); 3]; MR];
        let masks = [mask(nw), mask(nw.saturating_sub(16)), mask(nw.saturating_sub(32))];
        if load {
            for (r, tr) in t.iter_mut().enumerate().take(mr) {
                for (v, tv) in tr.iter_mut().enumerate() {
                    *tv = _mm512_maskz_loadu_ps(masks[v], c.add(r * ldc + 16 * v));
                }
            }
        }
        for kk in 0..kc {
            let b0 = _mm512_loadu_ps(bp.add(kk * NR));
            let b1 = _mm512_loadu_ps(bp.add(kk * NR + 16));
            let b2 = _mm512_loadu_ps(bp.add(kk * NR + 32));
            for (r, tr) in t.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(kk * MR + r));
                tr[0] = _mm512_fmadd_ps(av, b0, tr[0]);
                tr[1] = _mm512_fmadd_ps(av, b1, tr[1]);
                tr[2] = _mm512_fmadd_ps(av, b2, tr[2]);
            }
        }
        for (r, tr) in t.iter().enumerate().take(mr) {
            for (v, tv) in tr.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + 16 * v), masks[v], *tv);
            }
        }
    }

    /// `C[m,n] = acc·C + A·Bᵀ`, `A [m,k]`, `B [n,k]` row-major, as `Cᵀ = B·Aᵀ`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool, threads: usize) {
        let cp = Ptr(c.as_mut_ptr());
        split(n, threads, |j0, j1| {
            let nj = j1 - j0;
            with_scratch(nj * MC, KC * MC, |ct, at| {
                for m0 in (0..m).step_by(MC) {
                    let mw = MC.min(m - m0);
                    for k0 in (0..k).step_by(KC) {
                        let kc = KC.min(k - k0);
                        // Aᵀ block as [kk][MC], zero columns past mw.
                        if mw < MC {
                            at.fill(0.0);
                        }
                        for i in 0..mw {
                            let row = &a[(m0 + i) * k + k0..(m0 + i) * k + k0 + kc];
                            row.iter().enumerate().for_each(|(kk, &v)| at[kk * MC + i] = v);
                        }
                        for j in (j0..j1).step_by(JR) {
                            let jr = JR.min(j1 - j);
                            // SAFETY: avx512f was detected by the caller; rows j..j+jr of `b` hold
                            // k values each, the tile of `ct` lies inside it.
                            unsafe {
                                kernel_nt(
                                    kc,
                                    b.as_ptr().add(j * k + k0),
                                    k,
                                    jr,
                                    at.as_ptr(),
                                    ct.as_mut_ptr().add((j - j0) * MC),
                                    k0 > 0,
                                )
                            };
                        }
                    }
                    // C[m0+i, j] = acc·C + Cᵀ[j, i].
                    for i in 0..mw {
                        // SAFETY: row m0+i, columns j0..j1 of `c` belong to this thread.
                        let row = unsafe { std::slice::from_raw_parts_mut(cp.get().add((m0 + i) * n + j0), nj) };
                        if acc {
                            row.iter_mut().enumerate().for_each(|(jj, v)| *v += ct[jj * MC + i]);
                        } else {
                            row.iter_mut().enumerate().for_each(|(jj, v)| *v = ct[jj * MC + i]);
                        }
                    }
                }
            });
        });
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_nt(kc: usize, b: *const f32, ldb: usize, jr: usize, at: *const f32, ct: *mut f32, load: bool) {
        let mut t = [[_mm512_setzero_ps(); 4]; JR];
        if load {
            for (r, tr) in t.iter_mut().enumerate().take(jr) {
                for (v, tv) in tr.iter_mut().enumerate() {
                    *tv = _mm512_loadu_ps(ct.add(r * MC + 16 * v));
                }
            }
        }
        // Rows past jr repeat row 0 (valid memory); they are not stored.
        let rows: [*const f32; JR] = std::array::from_fn(|r| b.add(if r < jr { r * ldb } else { 0 }));
        for kk in 0..kc {
            let a0 = _mm512_loadu_ps(at.add(kk * MC));
            let a1 = _mm512_loadu_ps(at.add(kk * MC + 16));
            let a2 = _mm512_loadu_ps(at.add(kk * MC + 32));
            let a3 = _mm512_loadu_ps(at.add(kk * MC + 48));
            for (r, tr) in t.iter_mut().enumerate() {
                let bv = _mm512_set1_ps(*rows[r].add(kk));
                tr[0] = _mm512_fmadd_ps(bv, a0, tr[0]);
                tr[1] = _mm512_fmadd_ps(bv, a1, tr[1]);
                tr[2] = _mm512_fmadd_ps(bv, a2, tr[2]);
                tr[3] = _mm512_fmadd_ps(bv, a3, tr[3]);
            }
        }
        for (r, tr) in t.iter().enumerate().take(jr) {
            for (v, tv) in tr.iter().enumerate() {
                _mm512_storeu_ps(ct.add(r * MC + 16 * v), *tv);
            }
        }
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

    #[test]
    fn wide_matches_naive_with_ragged_edges() {
        // Shapes past one block in every direction: m over a 64-row pass and an 8-row tile, n over
        // 48-column panels and 6-row tiles, k over a 256-deep block.
        for &(m, n, k) in &[(70, 53, 300), (3, 5, 2), (64, 97, 257), (9, 1, 17), (130, 13, 512)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 11) as f32) * 0.25 - 1.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 17 % 13) as f32) * 0.25 - 1.5).collect();
            for (ta, tb) in [
                (Trans::No, Trans::No),
                (Trans::Yes, Trans::No),
                (Trans::No, Trans::Yes),
                (Trans::Yes, Trans::Yes),
            ] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                for threads in [1, 2, 3] {
                    let mut c = vec![0.5; m * n];
                    sgemm_wide(m, n, k, &a, ta, &b, tb, &mut c, false, threads);
                    let mut c2 = vec![0.5; m * n];
                    sgemm_wide(m, n, k, &a, ta, &b, tb, &mut c2, true, threads);
                    for ((x, y), w) in c.iter().zip(&c2).zip(&want) {
                        // Products of quarter-integers: exact in f32 at these sizes.
                        assert_eq!(*x, *w, "{m}x{n}x{k} {ta:?} {tb:?} threads {threads}");
                        assert_eq!(*y, w + 0.5);
                    }
                }
            }
        }
    }
}
