"""Draw the benchmark plots: results JSON (bench/run.py) on stdin, a tar of PNG files on stdout.

Runs in the ml image (`docker run -i mlrt/ml python /bench/plot.py`), whose pinned matplotlib draws them: the
host needs no plotting library.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tarfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, distance down to the min, up to the max): a bar with its range."""
    median = statistics.median(values)
    return median, median - min(values), max(values) - median


def bars(ax, labels: list[str], series: dict[str, list[list[float]]], unit: str) -> None:
    """Horizontal bars, one group a label, one bar a series, the median with a min-max whisker."""
    height = 0.8 / len(series)
    for i, (name, runs) in enumerate(series.items()):
        medians, lows, highs = zip(*(spread(r) for r in runs), strict=True)
        ys = [y + i * height for y in range(len(labels))]
        ax.barh(ys, medians, height, xerr=[lows, highs], label=name, capsize=3)
    ax.set_yticks([y + height * (len(series) - 1) / 2 for y in range(len(labels))], labels)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1:
        ax.legend()


def figure(rows: int = 1):
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.6 * rows))
    return fig, ax


def overhead(results: dict):
    rows = {name: row for name, row in results.items() if row.get("local") and row.get("cluster")}
    fig, ax = figure(2 * len(rows))
    bars(ax, list(rows), {k: [r[k] for r in rows.values()] for k in ("local", "cluster")}, "seconds (median, min-max)")
    ax.set_title("Distributed APIs on trivial work: local vs on the cluster")
    return fig


def pair(title: str, series: str, labelled_runs: dict[str, list[float]]):
    """Two (or a few) bars of one series in seconds, a label each."""
    fig, ax = figure(len(labelled_runs))
    bars(ax, list(labelled_runs), {series: list(labelled_runs.values())}, "seconds")
    ax.set_title(title)
    return fig


def imports(results: dict):
    return pair(
        "import pyspark.ml in a new executor process, by Spark's Python archives",
        "import",
        {"as Spark ships them (sources)": results["shipped"], "in the mlrt image (bytecode)": results["image"]},
    )


def scaling(results: dict):
    setups = results["setups"]
    fig, ax = figure(len(setups))
    bars(ax, list(setups), {"job": [row["seconds"] for row in setups.values()]}, "seconds")
    ax.set_title(f"A {results['core_seconds']} core-second CPU-bound job by workers and cores (one 2-core host)")
    return fig


def shuffle(results: dict):
    title = f"Shuffle of {results['rows']:,} rows between two executors"
    return pair(title, "shuffle", {"encrypted": results["encrypted"], "plain": results["plain"]})


def images(results: dict):
    fig, ax = figure(len(results))
    names = list(results)
    cuda = [results[n]["cuda_bytes"] / 1e9 for n in names]
    other = [results[n]["other_bytes"] / 1e9 for n in names]
    ax.barh(names, other, label="not CUDA")
    ax.barh(names, cuda, left=other, label="CUDA libraries")
    ax.invert_yaxis()
    ax.set_xlabel("GB added over the parent image")
    ax.legend()
    ax.set_title("Image sizes, layer by layer")
    return fig


def startup(results: dict):
    fig, ax = figure(1)
    bars(ax, ["make up"], {"start-up": [results["seconds"]]}, "seconds until JupyterLab, 2 workers and MLflow answer")
    ax.set_title("Compose cluster start-up (images present)")
    return fig


def session(results: dict):
    return pair(
        "A new driver's SparkSession",
        "session",
        {"getOrCreate() returns": results["getOrCreate"], "executors registered": results["executors"]},
    )


PLOTS = {
    "startup": startup,
    "session": session,
    "overhead": overhead,
    "imports": imports,
    "scaling": scaling,
    "shuffle": shuffle,
    "images": images,
}


def main() -> None:
    results = json.load(sys.stdin)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, draw in PLOTS.items():
            if name not in results:
                continue
            fig = draw(results[name])
            fig.tight_layout()
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=100)
            plt.close(fig)
            info = tarfile.TarInfo(f"{name}.png")
            info.size = png.tell()
            png.seek(0)
            tar.addfile(info, png)
    sys.stdout.buffer.write(buffer.getvalue())


if __name__ == "__main__":
    main()
