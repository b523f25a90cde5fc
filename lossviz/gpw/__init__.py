"""General Pair Weighting: the weight of every pair (dL/dS_ij) and of every sample (dL/dz) (hand-written; modules generated from nbs/)."""
