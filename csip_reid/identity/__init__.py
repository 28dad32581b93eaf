"""People across videos and cameras: identities built from a gallery's tracklets, and labels.

* :func:`build_identities` clusters every tracklet (constraint-aware, sparse k-NN graph from the
  gallery's FAISS index, label-free threshold) and stores the identities in the gallery;
* :func:`list_identities`, :func:`identity_of` read them;
* :func:`label` / :func:`labels` record a person's ``same`` / ``not`` / ``name`` labels, which
  every later build keeps.

The tables are described in ``docs/gallery-format.md``.
"""

from csip_reid.identity.build import build_identities, cluster_table
from csip_reid.identity.data import CameraRules, TrackletTable
from csip_reid.identity.labels import LabelError, label, labels
from csip_reid.identity.store import identity_of, list_identities

__all__ = ["CameraRules", "LabelError", "TrackletTable", "build_identities", "cluster_table", "identity_of",
           "label", "labels", "list_identities"]
