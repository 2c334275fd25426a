"""Imported at every Python start in the images (mlrt-cluster-libraries.pth): the container's cluster libraries
(MLRT_LIBRARIES, installed at start by `python -m mlrt.libraries cluster`, which names their site-packages in
/tmp/mlrt-cluster-libraries) on sys.path, after the image's own packages. Processes the entrypoint started and
`docker exec`/`kubectl exec` sessions alike. Nothing when the container has none. Kept tiny: every Python start
pays for it."""

import os
import site

try:
    with open("/tmp/mlrt-cluster-libraries") as _pointer:
        _site = _pointer.read().strip()
except OSError:
    _site = ""
if _site and os.path.isdir(_site):
    site.addsitedir(_site)
