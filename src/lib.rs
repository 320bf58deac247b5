//! weightflow: generative flow models over neural-network weights, and covariate-shift detection
//! with them (Saragih, Cao, Balaji: "Generative Flow Models in Weight Space for Detecting
//! Covariate Shifts").
//!
//! Data flows one way through the modules:
//! `data → nets/engine → zoo → flow → tune → shift → report`; `cli` only wires them to commands.

pub mod cli;
pub mod data;
pub mod engine;
pub mod flow;
pub mod fsio;
pub mod limits;
pub mod nets;
pub mod report;
pub mod shard;
pub mod shift;
pub mod tune;
pub mod zoo;
