"""RouteIQ's zero-config prompt classifier: a torch-free static encoder plus shipped centroids.

Nothing loads at import time: call ``CentroidClassifier.load()`` (it verifies every artifact's
sha256 and raises ``ClassifierUnavailable`` if anything is missing or altered). An artifact
directory built with ``--encoder sentence-transformers`` loads ``TransformerEncoder`` instead
(optional extra ``routeiq[transformers]``; torch is imported only then).
"""

from routeiq.routing.classifier.artifacts import DEFAULT_DATA_DIR
from routeiq.routing.classifier.centroid import CentroidClassifier, Classification
from routeiq.routing.classifier.encoder import PromptEncoder, StaticEncoder
from routeiq.routing.classifier.errors import ClassifierUnavailable
from routeiq.routing.classifier.prototypes import CATEGORIES, TIERS
from routeiq.routing.classifier.transformer_encoder import TransformerEncoder

__all__ = [
    "CATEGORIES",
    "DEFAULT_DATA_DIR",
    "TIERS",
    "CentroidClassifier",
    "Classification",
    "ClassifierUnavailable",
    "PromptEncoder",
    "StaticEncoder",
    "TransformerEncoder",
]
