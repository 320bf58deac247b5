//! Elementwise activations, forward and backward. Backward takes the pre-activation input `x`
//! and the upstream gradient, so only pre-activations need to be kept.
//!
//! GELU is the exact (erf) form of PyTorch: `gelu(x) = x·Φ(x)`, `gelu'(x) = Φ(x) + x·φ(x)`, with
//! erf from Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7) and a branch-free `exp`, so the loops
//! vectorize.

use crate::nets::Activation;

const INV_SQRT2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// The activation of one value.
#[inline]
pub fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                s * x
            }
        }
        Activation::Gelu => x * gelu_cdf_pdf(x).0,
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Silu => x * sigmoid(x),
    }
}

/// The derivative of the activation at `x`.
#[inline]
pub fn derivative(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s
            }
        }
        Activation::Gelu => {
            let (cdf, pdf) = gelu_cdf_pdf(x);
            cdf + x * pdf
        }
        Activation::Tanh => {
            let t = x.tanh();
            1.0 - t * t
        }
        Activation::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        Activation::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
    }
}

/// `(Φ(x), φ(x))` of the standard normal: Φ(x) = ½(1 + erf(x/√2)) with A&S 7.1.26
/// `erf(z) = 1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·e^{−z²}`, `t = 1/(1 + p·|z|)`.
#[inline(always)]
pub fn gelu_cdf_pdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_72, 1.421_413_8, -1.453_152_1, 1.061_405_4];
    let z = x.abs() * INV_SQRT2;
    let t = 1.0 / (1.0 + P * z);
    let e = fast_exp(-z * z); // e^{-x²/2}
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf_abs = 1.0 - poly * e;
    let erf = if x < 0.0 { -erf_abs } else { erf_abs };
    (0.5 * (1.0 + erf), INV_SQRT_2PI * e)
}

/// e^x for x ≤ 0 down to −87 (relative error ~2e-7): x = n·ln2 + r, e^r by a degree-6
/// Taylor polynomial on |r| ≤ ln2/2, 2^n through the exponent bits. Branch-free and free of
/// float→int conversions, so loops over it vectorize.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // t = x·log2(e) + 1.5·2²³ rounds to an integer n held in t's low mantissa bits
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits()); // n as a two's-complement integer
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(ni.wrapping_add(127) << 23)
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Runs `$body` compiled for AVX-512 or AVX2 when the CPU has it (the same IEEE operations, no
/// FMA contraction, so results are identical to the baseline path), else for the baseline
/// target.
macro_rules! with_avx2 {
    ($name:ident, ($($arg:ident: $ty:ty),*), $body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn wide($($arg: $ty),*) {
                $body
            }
            #[target_feature(enable = "avx2")]
            unsafe fn $name($($arg: $ty),*) {
                $body
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                unsafe { wide($($arg),*) };
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                unsafe { $name($($arg),*) };
                return;
            }
        }
        $body
    }};
}

/// `y = act(x)` elementwise.
pub fn forward(act: Activation, x: &[f32], y: &mut [f32]) {
    with_avx2!(forward_avx2, (act: Activation, x: &[f32], y: &mut [f32]), forward_body(act, x, y))
}

/// `g ← g · act'(x)` elementwise (in place on the upstream gradient).
pub fn backward(act: Activation, x: &[f32], g: &mut [f32]) {
    with_avx2!(backward_avx2, (act: Activation, x: &[f32], g: &mut [f32]), backward_body(act, x, g))
}

#[inline(always)]
fn forward_body(act: Activation, x: &[f32], y: &mut [f32]) {
    // one monomorphic loop per activation so each vectorizes
    match act {
        Activation::Gelu => y.iter_mut().zip(x).for_each(|(o, &v)| *o = v * gelu_cdf_pdf(v).0), // [len]
        Activation::Relu => y.iter_mut().zip(x).for_each(|(o, &v)| *o = v.max(0.0)),            // [len]
        _ => y.iter_mut().zip(x).for_each(|(o, &v)| *o = apply(act, v)),                        // [len]
    }
}

#[inline(always)]
fn backward_body(act: Activation, x: &[f32], g: &mut [f32]) {
    match act {
        Activation::Gelu => g.iter_mut().zip(x).for_each(|(gi, &v)| {
            let (cdf, pdf) = gelu_cdf_pdf(v);
            *gi *= cdf + v * pdf
        }),
        _ => g.iter_mut().zip(x).for_each(|(gi, &v)| *gi *= derivative(act, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Silu,
    ];

    #[test]
    fn derivatives_match_central_differences() {
        for act in ALL {
            for i in 0..41 {
                let x = -3.05 + 0.15 * i as f64;
                let h = 1e-3f64;
                let f = |v: f64| apply(act, v as f32) as f64;
                let num = (f(x + h) - f(x - h)) / (2.0 * h);
                let ana = derivative(act, x as f32) as f64;
                assert!((num - ana).abs() < 2e-3, "{act:?} at {x}: {num} vs {ana}");
            }
        }
    }

    #[test]
    fn fast_exp_and_gelu_cdf_are_accurate() {
        for i in 0..2000 {
            let x = -20.0 + 0.01 * i as f32;
            let e = fast_exp(x) as f64;
            let want = (x as f64).exp();
            assert!((e - want).abs() <= 5e-7 * want, "exp({x}) = {e}, want {want}");
            let (cdf, _) = gelu_cdf_pdf(x / 2.0);
            let want = 0.5 * (1.0 + libm::erf(x as f64 / 2.0 / std::f64::consts::SQRT_2));
            assert!((cdf as f64 - want).abs() < 3e-7, "Φ({}) = {cdf}, want {want}", x / 2.0);
        }
    }

    #[test]
    fn gelu_matches_known_values() {
        // torch.nn.functional.gelu(torch.tensor([-1., 0.5, 2.])) = [-0.158655, 0.345731, 1.954500]
        let want = [(-1.0f32, -0.158_655_26f32), (0.5, 0.345_731_1), (2.0, 1.954_499_7)];
        for (x, y) in want {
            assert!((apply(Activation::Gelu, x) - y).abs() < 1e-6);
        }
    }
}
