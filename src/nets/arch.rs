//! Layer-list architecture specs. A spec fixes the input shape, the layers and so the
//! [`ParamLayout`]; parameter names are `module_list.{i}.weight|bias` with `i` the index of the
//! layer in the list (parameter-free layers count), as in an `nn.Sequential` / `nn.ModuleList`.

use super::{NetError, ParamLayout};
use serde::{Deserialize, Serialize};

/// Elementwise activation functions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Relu,
    /// LeakyReLU with the given negative slope (PyTorch default 0.01).
    LeakyRelu(f32),
    /// Exact (erf) GELU, PyTorch's default.
    Gelu,
    Tanh,
    Sigmoid,
    Silu,
}

impl std::str::FromStr for Activation {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "leaky-relu" | "leakyrelu" | "leaky_relu" => Activation::LeakyRelu(0.01),
            "gelu" => Activation::Gelu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "silu" | "swish" => Activation::Silu,
            other => {
                return Err(NetError::Invalid(format!(
                    "unknown activation '{other}' (relu, leaky-relu, gelu, tanh, sigmoid, silu)"
                )))
            }
        })
    }
}

/// Spatial padding of a convolution (stride is always 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// No padding: output side = input − kernel + 1.
    Valid,
    /// Zero padding (kernel−1)/2 on each side (odd kernels): output side = input side.
    Same,
}

/// One layer of a sequential network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum LayerSpec {
    /// 2-D convolution, square kernel, stride 1; weight `[out, in, k, k]`, bias `[out]`.
    Conv2d {
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        padding: Padding,
    },
    /// 2×2 max-pool, stride 2 (floor).
    MaxPool2,
    /// Elementwise activation.
    Act { act: Activation },
    /// Flatten `[C, H, W]` → `[C·H·W]` (PyTorch order).
    Flatten,
    /// Fully connected; weight `[out, in]`, bias `[out]`.
    Linear { in_f: usize, out_f: usize },
    /// Dropout with drop probability `p` (inverted scaling; identity at evaluation).
    Dropout { p: f32 },
}

/// A sequential architecture: input shape `[C, H, W]` and its layers. The output is logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchSpec {
    /// Short name, e.g. `"cnn3"`.
    pub name: String,
    /// Input shape `[channels, height, width]`.
    pub input: [usize; 3],
    /// The layers in order.
    pub layers: Vec<LayerSpec>,
}

impl ArchSpec {
    /// CNN3 of ModelZoo (DESIGN.md): conv 3→16 k3 → pool → act; conv 16→32 k3 → pool → act;
    /// conv 32→15 k3 → pool → act; flatten 60; linear 60→20 → act; linear 20→classes.
    /// D = 10,853 for 3×32×32 and 10 classes.
    pub fn cnn3(in_ch: usize, classes: usize, act: Activation) -> Self {
        use LayerSpec::*;
        let conv = |i, o| Conv2d {
            in_ch: i,
            out_ch: o,
            kernel: 3,
            padding: Padding::Valid,
        };
        let a = Act { act };
        ArchSpec {
            name: "cnn3".into(),
            input: [in_ch, 32, 32],
            layers: vec![
                conv(in_ch, 16),
                MaxPool2,
                a.clone(),
                conv(16, 32),
                MaxPool2,
                a.clone(),
                conv(32, 15),
                MaxPool2,
                a.clone(),
                Flatten,
                Linear { in_f: 60, out_f: 20 },
                a,
                Linear {
                    in_f: 20,
                    out_f: classes,
                },
            ],
        }
    }

    /// The ModelZoo "small CNN" (Schürholt et al. 2022, MNIST/CIFAR zoos): conv in→8 k5 →
    /// pool → act; conv 8→6 k5 → pool → act; conv 6→4 k2 → act; flatten; linear 36→20 → act;
    /// linear 20→classes (for 32×32 input).
    pub fn small_cnn(in_ch: usize, classes: usize, act: Activation) -> Self {
        use LayerSpec::*;
        let a = Act { act };
        ArchSpec {
            name: "small-cnn".into(),
            input: [in_ch, 32, 32],
            layers: vec![
                Conv2d {
                    in_ch,
                    out_ch: 8,
                    kernel: 5,
                    padding: Padding::Valid,
                },
                MaxPool2,
                a.clone(),
                Conv2d {
                    in_ch: 8,
                    out_ch: 6,
                    kernel: 5,
                    padding: Padding::Valid,
                },
                MaxPool2,
                a.clone(),
                Conv2d {
                    in_ch: 6,
                    out_ch: 4,
                    kernel: 2,
                    padding: Padding::Valid,
                },
                a.clone(),
                Flatten,
                Linear { in_f: 36, out_f: 20 },
                a,
                Linear {
                    in_f: 20,
                    out_f: classes,
                },
            ],
        }
    }

    /// An MLP on flattened `[in_ch, side, side]` input with the given hidden widths.
    pub fn mlp(input: [usize; 3], hidden: &[usize], classes: usize, act: Activation) -> Self {
        use LayerSpec::*;
        let mut layers = vec![Flatten];
        let mut width = input.iter().product();
        for &h in hidden {
            layers.push(Linear { in_f: width, out_f: h });
            layers.push(Act { act });
            width = h;
        }
        layers.push(Linear {
            in_f: width,
            out_f: classes,
        });
        ArchSpec {
            name: "mlp".into(),
            input,
            layers,
        }
    }

    /// Builds a named architecture: `cnn3`, `small-cnn`, or `mlp` (hidden 64).
    pub fn by_name(name: &str, in_ch: usize, classes: usize, act: Activation) -> Result<Self, NetError> {
        match name {
            "cnn3" => Ok(Self::cnn3(in_ch, classes, act)),
            "small-cnn" | "smallcnn" => Ok(Self::small_cnn(in_ch, classes, act)),
            "mlp" => Ok(Self::mlp([in_ch, 32, 32], &[64], classes, act)),
            other => Err(NetError::Invalid(format!(
                "unknown architecture '{other}' (cnn3, small-cnn, mlp)"
            ))),
        }
    }

    /// Shape `[C, H, W]` (or `[F, 1, 1]` after flatten/linear) after each layer; checks that
    /// the layers fit together.
    pub fn shapes(&self) -> Result<Vec<[usize; 3]>, NetError> {
        let mut s = self.input;
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            s = match *l {
                LayerSpec::Conv2d {
                    in_ch,
                    out_ch,
                    kernel,
                    padding,
                } => {
                    if s[0] != in_ch {
                        return Err(NetError::Invalid(format!(
                            "layer {i}: conv expects {in_ch} channels, gets {}",
                            s[0]
                        )));
                    }
                    match padding {
                        Padding::Valid if s[1] < kernel || s[2] < kernel => {
                            return Err(NetError::Invalid(format!(
                                "layer {i}: {}×{} input smaller than kernel {kernel}",
                                s[1], s[2]
                            )))
                        }
                        Padding::Valid => [out_ch, s[1] - kernel + 1, s[2] - kernel + 1],
                        Padding::Same if kernel % 2 == 0 => {
                            return Err(NetError::Invalid(format!(
                                "layer {i}: same padding needs an odd kernel"
                            )))
                        }
                        Padding::Same => [out_ch, s[1], s[2]],
                    }
                }
                LayerSpec::MaxPool2 => [s[0], s[1] / 2, s[2] / 2],
                LayerSpec::Act { .. } | LayerSpec::Dropout { .. } => s,
                LayerSpec::Flatten => [s[0] * s[1] * s[2], 1, 1],
                LayerSpec::Linear { in_f, out_f } => {
                    if s[0] * s[1] * s[2] != in_f || s[1] != 1 {
                        return Err(NetError::Invalid(format!(
                            "layer {i}: linear expects {in_f} flat features, gets {s:?}"
                        )));
                    }
                    [out_f, 1, 1]
                }
            };
            out.push(s);
        }
        Ok(out)
    }

    /// Number of output classes (width of the last layer).
    pub fn num_classes(&self) -> usize {
        self.shapes()
            .ok()
            .and_then(|s| s.last().map(|x| x[0] * x[1] * x[2]))
            .unwrap_or(0)
    }

    /// Input size C·H·W per sample.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// The flat parameter layout (PyTorch state_dict order).
    pub fn layout(&self) -> ParamLayout {
        let mut layout = ParamLayout::default();
        for (i, l) in self.layers.iter().enumerate() {
            match *l {
                LayerSpec::Conv2d {
                    in_ch, out_ch, kernel, ..
                } => {
                    layout.push(format!("module_list.{i}.weight"), vec![out_ch, in_ch, kernel, kernel]);
                    layout.push(format!("module_list.{i}.bias"), vec![out_ch]);
                }
                LayerSpec::Linear { in_f, out_f } => {
                    layout.push(format!("module_list.{i}.weight"), vec![out_f, in_f]);
                    layout.push(format!("module_list.{i}.bias"), vec![out_f]);
                }
                _ => {}
            }
        }
        layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnn3_has_10853_parameters() {
        let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
        let layout = spec.layout();
        assert_eq!(layout.dim(), 10_853);
        let sizes: Vec<usize> = layout.entries.iter().map(|e| e.len()).collect();
        assert_eq!(sizes, vec![432, 16, 4608, 32, 4320, 15, 1200, 20, 200, 10]);
        assert_eq!(spec.shapes().unwrap()[8], [15, 2, 2]);
        assert_eq!(spec.num_classes(), 10);
    }

    #[test]
    fn bad_architecture_is_an_error() {
        let mut spec = ArchSpec::cnn3(3, 10, Activation::Relu);
        spec.input = [1, 32, 32];
        assert!(spec.shapes().is_err());
    }
}
