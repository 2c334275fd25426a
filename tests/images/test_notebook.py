"""The notebook image: JupyterLab (the driver) on the same Python environment as the executors."""

from __future__ import annotations

from .conftest import PINS, run

IMAGE = "notebook"


def test_jupyterlab_version(image):
    assert (
        run(image, "python", "-c", "import jupyterlab; print(jupyterlab.__version__)").strip()
        == PINS["JUPYTERLAB_VERSION"]
    )


def test_empty_token_does_not_disable_authentication(image):
    script = (
        "import runpy, os;"
        "os.environ['JUPYTER_TOKEN'] = '';"
        "runpy.run_path('/etc/jupyter/jupyter_server_config.py', init_globals={'get_config': lambda: "
        "type('C', (), {'__getattr__': lambda self, name: type('S', (), {})()})()});"
        "print('JUPYTER_TOKEN' in os.environ)"
    )
    assert run(image, "python", "-c", script).strip() == "False"


def test_default_command_is_jupyterlab_in_the_work_volume(image):
    out = run(image, "bash", "-c", "pwd; stat -c %u /home/mlrt/work")
    assert out.split() == ["/home/mlrt/work", "185"]
