//! Shift detection: statistics, Detectron, Meta-Detectron, classic baselines, experiments.
