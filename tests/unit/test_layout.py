"""The package's layering, as each sub-package's README states it: the IO-free core
imports no framework and nothing above it; each layer imports only those below it."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "gateway"

#: Layers, lowest first: a module may import its own layer and those before it.
LAYERS = ["core", "cluster", "transport", "web"]

#: What the core may not import: frameworks, servers, network clients.
IO = {"flask", "flask_socketio", "flask_login", "flask_sqlalchemy", "flask_wtf", "socketio",
      "engineio", "redis", "eventlet", "gevent", "werkzeug", "sqlalchemy", "prometheus_client",
      "requests", "auth", "socket", "select"}


def imports_of(path: pathlib.Path) -> list[str]:
    """Every module ``path`` imports, resolved to an absolute dotted name."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    names += [f"{module}.{alias.name}" for alias in node.names]
                    continue
                names.append(module)
            else:
                names.append(node.module or "")
    return names


def modules(layer: str) -> list[pathlib.Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_the_core_is_io_free(path: pathlib.Path) -> None:
    bad = [name for name in imports_of(path)
           if name.split(".")[0] in IO
           or (name.startswith("gateway.") and not name.startswith("gateway.core"))]
    assert bad == [], f"{path.name} imports {bad}: the core imports only the core and stdlib"


@pytest.mark.parametrize("layer", LAYERS[1:])
def test_each_layer_imports_only_those_below_it(layer: str) -> None:
    above = {f"gateway.{name}" for name in LAYERS[LAYERS.index(layer) + 1:]}
    for path in modules(layer):
        bad = [name for name in imports_of(path) if any(
            name == up or name.startswith(up + ".") for up in above)]
        assert bad == [], f"{layer}/{path.name} imports {bad}, a layer above it"


def test_the_cluster_and_core_import_no_web_framework() -> None:
    for layer in ("core", "cluster"):
        for path in modules(layer):
            bad = [name for name in imports_of(path)
                   if name.split(".")[0] in {"flask", "flask_socketio", "socketio", "engineio",
                                             "werkzeug", "eventlet", "gevent"}]
            assert bad == [], f"{layer}/{path.name} imports {bad}"


def test_every_sub_package_states_its_rule() -> None:
    for layer in LAYERS:
        readme = PACKAGE / layer / "README.md"
        assert readme.is_file(), f"gateway/{layer} has no README"
        assert "Rule" in readme.read_text()
