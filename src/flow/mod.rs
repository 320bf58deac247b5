//! NM-CFM: the conditional flow-matching meta-model over weight vectors.
