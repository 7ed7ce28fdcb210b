"""``pip install .`` gives a working gateway: the package, its static files and templates,
``flask --app wsgi``, and ``gateway.Emitter`` with only ``redis``.

Installed into a fresh virtual environment that sees this one's dependencies (a ``.pth``
file naming this environment's site-packages) with ``--no-deps --no-build-isolation``,
so nothing is downloaded, and run from a folder outside the checkout so nothing is
imported from it.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv

import pytest

from tests.helpers.support import ROOT

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    base = tmp_path_factory.mktemp("installed")
    home = str(base / "venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = os.path.join(home, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True,
                             check=True).stdout.strip()
    with open(os.path.join(purelib, "dependencies.pth"), "w") as pth:
        pth.write("\n".join(site.getsitepackages()) + "\n")
    # A copy of the checkout (what `make vendor` made included): a build writes build/
    # and *.egg-info/ beside the sources, and must not do so in the checkout.
    source = str(base / "source")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "instance", "__pycache__",
        ".pytest_cache", ".mypy_cache", "results"))
    # pip of the running interpreter, installing into the new environment.
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                    "--no-deps", "--no-build-isolation", "--no-warn-script-location", source],
                   check=True, cwd=str(base), timeout=300,
                   env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    return python


def run(python: str, code: str, cwd: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GATEWAY_ENV="development", PYTHONSAFEPATH="1")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_installed_package_serves_its_pages(installed: str, tmp_path) -> None:
    out = run(installed, (
        "import gateway, os\n"
        "from gateway import create_app\n"
        f"app = create_app({{'GATEWAY_DATABASE_URL': 'sqlite:///{tmp_path}/t.db'}})\n"
        "assert 'site-packages' in gateway.__file__, gateway.__file__\n"
        "c = app.test_client()\n"
        "login = c.get('/login')\n"
        "script = c.get('/static/gateway.js')\n"
        "print(login.status_code, b'<form' in login.data, script.status_code,\n"
        "      os.path.isfile(os.path.join(os.path.dirname(gateway.__file__), 'py.typed')))\n"
    ), cwd=str(tmp_path))
    assert out.split() == ["200", "True", "200", "True"]


def test_flask_app_wsgi_works_from_anywhere(installed: str, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GATEWAY_ENV="development", GATEWAY_ASYNC_MODE="threading",
               GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path}/t.db")
    done = subprocess.run([installed, "-m", "flask", "--app", "wsgi", "routes"],
                          capture_output=True,
                          text=True, cwd=str(tmp_path), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "/api/v1/push" in done.stdout and "/login" in done.stdout


def test_the_emitter_imports_without_flask(installed: str, tmp_path) -> None:
    out = run(installed, (
        "import sys\n"
        "from gateway import Emitter\n"
        "print(sorted(m for m in ('flask', 'flask_socketio', 'socketio', 'eventlet')\n"
        "             if m in sys.modules))\n"
    ), cwd=str(tmp_path))
    assert out.strip() == "[]"
