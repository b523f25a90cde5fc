"""The loss zoo: `get`, `names`, `spec` over every registered loss (hand-written; the modules are generated from nbs/)."""
from .registry import KINDS, LossSpec, Loss, register, get, names, spec, cosine_similarity_matrix, zero_loss, trusted_inputs
from . import classification, classification_alt, classification_set  # noqa: F401  (register the classification losses)
from . import pairs  # noqa: F401  (registers the pair losses)
from . import proxy  # noqa: F401  (registers the proxy losses)
from . import features  # noqa: F401  (registers the feature terms)
