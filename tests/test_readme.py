"""The README stays true: its commands exist, every command is documented, its curl lines work."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.main import get_command

from cli import app

README = (Path(__file__).parents[1] / "README.md").read_text()
COMMANDS = set(get_command(app).commands)  # type: ignore[attr-defined]


def test_every_heed_command_in_the_readme_exists():
    shown = set(re.findall(r"`heed ([a-z-]+)", README))
    assert shown and shown <= COMMANDS, shown - COMMANDS


def test_every_command_is_in_the_readme():
    missing = {c for c in COMMANDS if f"`heed {c}" not in README}
    assert not missing


def curl_lines() -> list[str]:
    joined = README.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]


@pytest.mark.parametrize("line", curl_lines())
def test_readme_curl_examples_answer_with_json(live_server, line):
    args = shlex.split(line.replace("http://127.0.0.1:8000", live_server.url))
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert "error" not in body, body
