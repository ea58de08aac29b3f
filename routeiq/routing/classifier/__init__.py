"""RouteIQ's zero-config prompt classifier: a torch-free static encoder plus shipped centroids.

Nothing loads at import time: call ``CentroidClassifier.load()`` (it verifies every artifact's
sha256 and raises ``ClassifierUnavailable`` if anything is missing or altered).
"""

from routeiq.routing.classifier.artifacts import DEFAULT_DATA_DIR
from routeiq.routing.classifier.centroid import CentroidClassifier, Classification
from routeiq.routing.classifier.encoder import StaticEncoder
from routeiq.routing.classifier.errors import ClassifierUnavailable
from routeiq.routing.classifier.prototypes import CATEGORIES, TIERS

__all__ = [
    "CATEGORIES",
    "DEFAULT_DATA_DIR",
    "TIERS",
    "CentroidClassifier",
    "Classification",
    "ClassifierUnavailable",
    "StaticEncoder",
]
