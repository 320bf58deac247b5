//! Export of one zoo model as a PyTorch state_dict (safetensors, tensor names = the layout's
//! `state_dict` keys) and the Python snippet that builds the matching `nn.Sequential`.

use super::store::{safetensors_bytes, write_atomic, Zoo};
use super::ZooError;
use crate::data::Normalization;
use crate::nets::{Activation, ArchSpec, LayerSpec, Padding};
use std::path::Path;

/// Writes model `model` at epoch `epoch` of `zoo` to `out` (safetensors state_dict) and returns
/// the Python snippet that loads it.
pub fn export_model(zoo: &Zoo, model: usize, epoch: usize, out: &Path) -> Result<String, ZooError> {
    let m = &zoo.manifest;
    let w = zoo.load_model(epoch, model)?;
    let tensors: Vec<(&str, Vec<usize>, &[f32])> = m
        .layout
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.shape.clone(), &w[e.range()]))
        .collect();
    let meta = serde_json::json!({
        "zoo": std::fs::canonicalize(&zoo.dir).unwrap_or_else(|_| zoo.dir.clone()).display().to_string(),
        "model": model, "epoch": epoch,
        "arch": m.arch.name, "test_acc": m.metrics(model, epoch).map(|x| x.test_acc),
        "architecture": m.arch, "normalization": m.normalization, "class_names": m.data.class_names,
    })
    .to_string();
    let bytes = safetensors_bytes(&tensors, &meta).map_err(|r| ZooError::format(out, r))?;
    write_atomic(out, &bytes)?;
    Ok(python_snippet(&m.arch, &m.normalization, out))
}

fn act_py(a: Activation) -> String {
    match a {
        Activation::Relu => "nn.ReLU()".into(),
        Activation::LeakyRelu(s) => format!("nn.LeakyReLU({s})"),
        Activation::Gelu => "nn.GELU()".into(),
        Activation::Tanh => "nn.Tanh()".into(),
        Activation::Sigmoid => "nn.Sigmoid()".into(),
        Activation::Silu => "nn.SiLU()".into(),
    }
}

/// Python that builds `arch` as `nn.Sequential(module_list=nn.Sequential(...))` (so the keys are
/// `module_list.{i}.weight|bias`), loads `weights` and shows the input normalization.
pub fn python_snippet(arch: &ArchSpec, norm: &Normalization, weights: &Path) -> String {
    let layers: Vec<String> = arch
        .layers
        .iter()
        .map(|l| match *l {
            LayerSpec::Conv2d {
                in_ch,
                out_ch,
                kernel,
                padding,
            } => {
                let pad = if padding == Padding::Same { kernel / 2 } else { 0 };
                format!("nn.Conv2d({in_ch}, {out_ch}, {kernel}, padding={pad})")
            }
            LayerSpec::MaxPool2 => "nn.MaxPool2d(2)".into(),
            LayerSpec::Act { act } => act_py(act),
            LayerSpec::Flatten => "nn.Flatten()".into(),
            LayerSpec::Linear { in_f, out_f } => format!("nn.Linear({in_f}, {out_f})"),
            LayerSpec::Dropout { p } => format!("nn.Dropout({p})"),
        })
        .collect();
    let [c, h, w] = arch.input;
    format!(
        r#"# Builds the {name} of a weightflow zoo and loads the exported weights (PyTorch >= 2).
import json
import struct
from collections import OrderedDict
import torch
import torch.nn as nn


def load_file(path):
    """safetensors.torch.load_file for F32 tensors, without needing the safetensors package."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {{}}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a : 8 + n + b]), dtype=torch.float32).reshape(t["shape"])
    return out


model = nn.Sequential(OrderedDict(module_list=nn.Sequential(
    {layers},
)))
model.load_state_dict(load_file({path:?}))
model.eval()
# Input: float [N, {c}, {h}, {w}], pixels scaled to [0, 1] then normalized per channel
# (28x28 grayscale images are zero-padded to 32x32 and repeated to 3 channels):
MEAN = torch.tensor({mean:?}).view(1, 3, 1, 1)
STD = torch.tensor({std:?}).view(1, 3, 1, 1)
# logits = model((x - MEAN) / STD)
"#,
        name = arch.name,
        layers = layers.join(",\n    "),
        path = weights.display().to_string(),
        mean = norm.mean,
        std = norm.std,
    )
}
