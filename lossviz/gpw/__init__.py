"""General Pair Weighting: the weight of every pair (dL/dS_ij) and of every sample (dL/dz) (hand-written; modules generated from nbs/)."""
from .logits import logit_weights, comp_sum_weights, weight_curve, curve_logits, WeightCurve, simplex_map, SimplexMap
from .pairs import PairWeights, pair_weights, similarity_weights, synthetic_batch, AnchorSummary, anchor_summary, WDFS, wdfs_stats, ms_weights, softmax_weights, WeightCurves, weight_curves
