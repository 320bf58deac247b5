//! The fixed choices of the command line as `clap::ValueEnum`s, so that `--help` lists them
//! (`[possible values: ...]`), shells can complete them and a wrong value is a usage error
//! (exit code 2); each converts into the library type it selects. Variants carry `//` comments,
//! not doc comments, so that `--help` prints the values inline.

use crate::flow::align::AlignMode;
use crate::flow::cfm::Coupling;
use crate::flow::source::{Source, StandardizeMode};
use crate::flow::Solver;
use crate::nets::init::InitScheme;
use crate::nets::Activation;
use crate::shift::{GNoise, Method, PLabels};
use crate::tune::adjoint::Scope;
use clap::ValueEnum;

/// The name clap shows for `v` (its `--help` spelling).
pub fn name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A shift detector (`detect --method`, `experiment shift --methods`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Detectron,
    #[value(alias = "metadetectron")]
    MetaDetectron,
    // Meta-Detectron with 0 fine-tuning iterations: the ablation showing what the fine-tuning adds.
    #[value(alias = "metadetectron-untuned")]
    MetaDetectronUntuned,
    Bbsd,
    Mmd,
    // f's error rate on Q against the true labels: a yardstick of harm, not a detector.
    #[value(alias = "oracle-error")]
    Oracle,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Detectron => Method::Detectron,
            MethodArg::MetaDetectron => Method::MetaDetectron,
            MethodArg::MetaDetectronUntuned => Method::MetaDetectronUntuned,
            MethodArg::Bbsd => Method::Bbsd,
            MethodArg::Mmd => Method::Mmd,
            MethodArg::Oracle => Method::Oracle,
        }
    }
}

/// Detectron's headline statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Statistic {
    Entropy,
    Disagreement,
}

/// What MMD compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MmdFeatures {
    // f's softmax outputs: harmful shifts.
    Softmax,
    // The images themselves: any input shift.
    Pixels,
}

/// The labels of P in Meta-Detectron's ℓ_cdc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PLabelsArg {
    // f's predictions on P.
    Predicted,
    // P's true labels (the paper's Eq. 3).
    True,
}

impl From<PLabelsArg> for PLabels {
    fn from(p: PLabelsArg) -> PLabels {
        match p {
            PLabelsArg::Predicted => PLabels::Predicted,
            PLabelsArg::True => PLabels::True,
        }
    }
}

/// The source noise Meta-Detectron generates g from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GNoiseArg {
    // f's own noise: g = f before fine-tuning.
    Model,
    // Fresh noise derived from the model seed.
    Fresh,
}

impl From<GNoiseArg> for GNoise {
    fn from(g: GNoiseArg) -> GNoise {
        match g {
            GNoiseArg::Model => GNoise::Model,
            GNoiseArg::Fresh => GNoise::Fresh,
        }
    }
}

/// The parameters a fine-tuning moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    All,
    Output,
    OutputBias,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::All => Scope::All,
            ScopeArg::Output => Scope::Output,
            ScopeArg::OutputBias => Scope::OutputBias,
        }
    }
}

/// A network architecture of a zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    Cnn3,
    #[value(alias = "smallcnn")]
    SmallCnn,
    Mlp,
}

/// An activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Gelu,
    Relu,
    Tanh,
    // LeakyReLU with slope 0.01.
    LeakyRelu,
    Sigmoid,
    #[value(alias = "swish")]
    Silu,
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Activation {
        match a {
            ActivationArg::Gelu => Activation::Gelu,
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::LeakyRelu => Activation::LeakyRelu(0.01),
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Silu => Activation::Silu,
        }
    }
}

/// A weight initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    KaimingUniform,
    KaimingNormal,
    TorchDefault,
}

impl From<InitArg> for InitScheme {
    fn from(i: InitArg) -> InitScheme {
        match i {
            InitArg::KaimingUniform => InitScheme::KaimingUniform,
            InitArg::KaimingNormal => InitScheme::KaimingNormal,
            InitArg::TorchDefault => InitScheme::TorchDefault,
        }
    }
}

/// How flow matching pairs sources with targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CouplingArg {
    // I-CFM.
    #[value(alias = "icfm")]
    Independent,
    // OT-CFM: exact minibatch assignment.
    #[value(alias = "ot")]
    Exact,
    // Entropic OT (regularization 0.05 of the mean cost, 100 iterations).
    Sinkhorn,
}

impl From<CouplingArg> for Coupling {
    fn from(c: CouplingArg) -> Coupling {
        match c {
            CouplingArg::Independent => Coupling::Independent,
            CouplingArg::Exact => Coupling::Exact,
            CouplingArg::Sinkhorn => Coupling::Sinkhorn { reg: 0.05, iters: 100 },
        }
    }
}

/// The flow's source distribution p0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    KaimingNormal,
    KaimingUniform,
    TorchDefault,
    // N(0, I) in standardized coordinates.
    #[value(alias = "normal")]
    Gaussian,
}

impl From<SourceArg> for Source {
    fn from(s: SourceArg) -> Source {
        match s {
            SourceArg::KaimingNormal => Source::Init(InitScheme::KaimingNormal),
            SourceArg::KaimingUniform => Source::Init(InitScheme::KaimingUniform),
            SourceArg::TorchDefault => Source::Init(InitScheme::TorchDefault),
            SourceArg::Gaussian => Source::Gaussian,
        }
    }
}

/// The standardization of weight vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StandardizeArg {
    Coordinate,
    Layer,
    None,
}

impl From<StandardizeArg> for StandardizeMode {
    fn from(s: StandardizeArg) -> StandardizeMode {
        match s {
            StandardizeArg::Coordinate => StandardizeMode::Coordinate,
            StandardizeArg::Layer => StandardizeMode::Layer,
            StandardizeArg::None => StandardizeMode::None,
        }
    }
}

/// Permutation alignment of a zoo's checkpoints before meta-model training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlignArg {
    // The checkpoints as trained.
    None,
    // Git Re-Basin weight matching of every checkpoint to its zoo's first.
    WeightMatching,
}

impl From<AlignArg> for AlignMode {
    fn from(a: AlignArg) -> AlignMode {
        match a {
            AlignArg::None => AlignMode::None,
            AlignArg::WeightMatching => AlignMode::WeightMatching,
        }
    }
}

/// An ODE solver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SolverArg {
    Euler,
    Midpoint,
    Rk4,
    // Adaptive Dormand–Prince 5(4), rtol 1e-3, atol 1e-4.
    #[value(alias = "adaptive")]
    Dopri5,
}

impl From<SolverArg> for Solver {
    fn from(s: SolverArg) -> Solver {
        match s {
            SolverArg::Euler => Solver::Euler,
            SolverArg::Midpoint => Solver::Midpoint,
            SolverArg::Rk4 => Solver::Rk4,
            SolverArg::Dopri5 => Solver::Dopri5 { rtol: 1e-3, atol: 1e-4 },
        }
    }
}

/// The reward of `tune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RewardArg {
    // −cross-entropy on --data.
    Ce,
    // −cross-entropy after the best rescaling of each classifier's logits.
    CeCalibrated,
}

/// Which iterate of a fine-tuning is the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Keep {
    Best,
    Last,
}

/// How the before/after classifiers of `tune` are generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sampler {
    // The memoryless SDE on the fine-tuning grid.
    Sde,
    // The meta-model's own ODE solver and steps.
    Ode,
}

/// A fine-tuning baseline of `tune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BaselineArg {
    // Adam on the generated classifiers' own weights.
    Sgd,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every choice converts to the library value the library's own parser gives for its name.
    #[test]
    fn choices_match_the_library_parsers() {
        for m in MethodArg::value_variants() {
            assert_eq!(Method::from(*m), name(m).parse::<Method>().unwrap());
        }
        for s in ScopeArg::value_variants() {
            assert_eq!(Scope::from(*s), name(s).parse::<Scope>().unwrap());
        }
        for a in ActivationArg::value_variants() {
            assert_eq!(Activation::from(*a), name(a).parse::<Activation>().unwrap());
        }
        for i in InitArg::value_variants() {
            assert_eq!(InitScheme::from(*i), name(i).parse::<InitScheme>().unwrap());
        }
        for c in CouplingArg::value_variants() {
            assert_eq!(Coupling::from(*c), name(c).parse::<Coupling>().unwrap());
        }
        for s in SourceArg::value_variants() {
            assert_eq!(Source::from(*s), name(s).parse::<Source>().unwrap());
        }
        for s in SolverArg::value_variants() {
            assert_eq!(Solver::from(*s), name(s).parse::<Solver>().unwrap());
        }
        for s in StandardizeArg::value_variants() {
            let parsed: StandardizeMode = serde_json::from_value(serde_json::Value::String(name(s))).unwrap();
            assert_eq!(StandardizeMode::from(*s), parsed);
        }
        for a in AlignArg::value_variants() {
            let parsed: AlignMode = serde_json::from_value(serde_json::Value::String(name(a))).unwrap();
            assert_eq!(AlignMode::from(*a), parsed);
        }
        for a in ArchArg::value_variants() {
            let act = Activation::Gelu;
            assert!(crate::nets::ArchSpec::by_name(&name(a), 3, 10, act).is_ok());
        }
        assert_eq!(name(&RewardArg::CeCalibrated), "ce-calibrated");
    }
}
