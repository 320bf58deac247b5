//! `ParamLayout`: where each named parameter tensor lives inside a flat weight vector.
//! Names are PyTorch `state_dict` keys, in `state_dict` order, each tensor row-major.

use serde::{Deserialize, Serialize};

/// One parameter tensor: its PyTorch name, shape and offset in the flat vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamEntry {
    /// `state_dict` key, e.g. `"module_list.0.weight"`.
    pub name: String,
    /// Tensor shape, e.g. `[16, 3, 3, 3]`.
    pub shape: Vec<usize>,
    /// Offset of the first value in the flat vector.
    pub offset: usize,
}

impl ParamEntry {
    /// Number of values in the tensor.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value range of this tensor in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The ordered list of parameter tensors of one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamLayout {
    /// Tensors in flattening order.
    pub entries: Vec<ParamEntry>,
}

impl ParamLayout {
    /// Appends a tensor after the last one and returns its offset.
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>) -> usize {
        let offset = self.dim();
        self.entries.push(ParamEntry {
            name: name.into(),
            shape,
            offset,
        });
        offset
    }

    /// Total number of scalars D.
    pub fn dim(&self) -> usize {
        self.entries.last().map(|e| e.offset + e.len()).unwrap_or(0)
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}
