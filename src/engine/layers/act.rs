//! Elementwise activations, forward and backward. Backward takes the pre-activation input `x`
//! and the upstream gradient, so only pre-activations need to be kept.
//!
//! GELU is the exact (erf) form of PyTorch: `gelu(x) = x·Φ(x)`, `gelu'(x) = Φ(x) + x·φ(x)`.

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
        Activation::Gelu => 0.5 * x * (1.0 + libm::erff(x * INV_SQRT2)),
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
            let cdf = 0.5 * (1.0 + libm::erff(x * INV_SQRT2));
            cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
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

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `y = act(x)` elementwise.
pub fn forward(act: Activation, x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = apply(act, v); // [len]
    }
}

/// `g ← g · act'(x)` elementwise (in place on the upstream gradient).
pub fn backward(act: Activation, x: &[f32], g: &mut [f32]) {
    for (gi, &v) in g.iter_mut().zip(x) {
        *gi *= derivative(act, v);
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
    fn gelu_matches_known_values() {
        // torch.nn.functional.gelu(torch.tensor([-1., 0.5, 2.])) = [-0.158655, 0.345731, 1.954500]
        let want = [(-1.0f32, -0.158_655_26f32), (0.5, 0.345_731_1), (2.0, 1.954_499_7)];
        for (x, y) in want {
            assert!((apply(Activation::Gelu, x) - y).abs() < 1e-6);
        }
    }
}
