"""Ray's usage-stats opt-out, made whole (docs/security.md, "Outbound calls").

With RAY_USAGE_STATS_ENABLED=0 (every mlrt image sets it) Ray 2.x still, in its dashboard's usage module, probes
the cloud metadata services (169.254.169.254, metadata.google.internal) and sends a "usage stats disabled" report
to usage-stats.ray.io. Where the variable is 0, this makes both do nothing: the cloud is "unknown" and no report is
sent. Loaded in every Python process of the ml images (mlrt-ray-usage.pth), it imports nothing until Ray's usage
module is imported; RAY_USAGE_STATS_ENABLED=1 leaves Ray as it is."""

from __future__ import annotations

import os

USAGE_LIB = "ray._common.usage.usage_lib"


def quiet(usage_lib) -> None:
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    usage_lib.get_cloud_from_metadata_requests = lambda: "unknown"
    usage_lib.UsageReportClient.report_usage_data = lambda self, url, data: None


def install() -> None:
    if os.environ.get("RAY_USAGE_STATS_ENABLED") == "0":
        from mlrt.after_import import after_import

        after_import(USAGE_LIB, quiet)
