//! Adjoint Matching: reward fine-tuning of the flow meta-model.
