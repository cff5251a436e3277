"""Installed distributions' versions, read without importing ``importlib.metadata``.

``importlib.metadata`` pulls in email, zipfile, csv and importlib.resources: about 3 MB of resident
memory for a version string (issue 24). An installed distribution (wheel or editable install) has a
``{name}-{version}.dist-info`` folder on ``sys.path`` (PEP 376/427): its name is the version. Only
when no such folder is found (an egg, a zip) is ``importlib.metadata`` asked, so the answer stays
what it would say.
"""

from __future__ import annotations

import os
import re
import sys


def _normalized(distribution: str) -> str:
    """The dist-info spelling of a distribution's name (PEP 503 normalization, ``_`` for runs)."""
    return re.sub(r"[-_.]+", "_", distribution).lower()


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    prefix = _normalized(distribution) + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip, a missing folder
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(prefix):
                version = name[len(prefix) : -len(".dist-info")]
                if version and "-" not in version:
                    return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version(distribution)
    except PackageNotFoundError:
        return None
