"""The tree keeps its shape: imports point down the layers (README, "How it works").

    cli  ->  service  ->  search, indexer (jobs and writes)  ->  heed

An AST walk over every module (imports inside functions and under TYPE_CHECKING count too)
finds each import of a heed package and checks it against the allowed arrows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("heed", "indexer", "search", "service", "cli")

# importer package -> the packages (or exact modules) it may import besides itself
ALLOWED: dict[str, tuple[str, ...]] = {
    "heed": (),
    "indexer": ("heed",),
    "search": ("heed",),
    "service": ("heed", "search", "indexer.jobs", "indexer.build"),
    "cli": ("heed", "indexer", "search", "service"),
}
# entry points may start the command; nothing imports them
ENTRY_POINTS = {"heed/__main__.py": ("cli",)}
# a vector index library is imported by its backend module only
BACKEND_LIBRARIES = {"faiss": "heed/store/faiss_index.py", "pymilvus": "heed/store/milvus_index.py"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _allowed(target: str, allowed: tuple[str, ...]) -> bool:
    return any(target == a or target.startswith(a + ".") for a in allowed)


def violations(root: Path) -> list[str]:
    """Every import under ``root`` that breaks the layering, as ``file:line: a -> b``."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            allowed = (package, *ALLOWED[package], *ENTRY_POINTS.get(rel, ()))
            for line, module in imports_of(path):
                top = module.split(".")[0]
                if top in BACKEND_LIBRARIES and rel != BACKEND_LIBRARIES[top]:
                    found.append(f"{rel}:{line}: {package} -> {module} (only the backend module)")
                elif top in PACKAGES and not _allowed(module, allowed):
                    found.append(f"{rel}:{line}: {package} -> {module}")
    return found


def test_imports_point_down_the_layers():
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("file", "source", "reported"),
    [
        ("heed/store/reader.py", "from search.searcher import Searcher\n", "heed -> search"),
        ("indexer/build.py", "def f():\n    import service.app\n", "indexer -> service.app"),
        ("search/modes.py", "from indexer.build import build_index\n", "search -> indexer"),
        ("service/routes/x.py", "from indexer.sources import Fields\n", "service -> indexer."),
        ("service/app.py", "from cli import app\n", "service -> cli"),
        ("search/searcher.py", "import faiss\n", "search -> faiss (only the backend module)"),
        (
            "heed/store/milvus_reader.py",
            "from pymilvus import MilvusClient\n",
            "heed -> pymilvus (only the backend module)",
        ),
    ],
)
def test_an_upward_import_is_reported(tmp_path, file, source, reported):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text(source)
    (found,) = violations(tmp_path)
    assert found.startswith(f"{file}:") and reported in found
