# JupyterHub's configuration in the mlrt hub image: everything comes from the chart's settings file (mlrt_hub).
from mlrt_hub import configure, load_settings

configure(c, load_settings())  # noqa: F821 (JupyterHub's config object)
