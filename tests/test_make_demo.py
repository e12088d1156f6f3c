"""The demo recipe of the Makefile names commands and options that exist (no training here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from toonvision import cli

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def demo_commands() -> list[list[str]]:
    """The toonvision command lines of `make demo`, with the Makefile's variables expanded."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    variables = dict(re.findall(r"^(\w+) \?= (.*)$", text, flags=re.MULTILINE))
    variables.update(BIN=".venv/bin", DEMO="demo")
    recipe = text[text.index("\ndemo: "):].split("\n\n")[0]
    commands = []
    for line in recipe.splitlines()[1:]:
        line = re.sub(r"\$\((\w+)\)", lambda match: variables[match.group(1)], line.strip())
        words = shlex.split(line)
        if words and words[0] == ".venv/bin/toonvision":
            commands.append(words[1:])
    return commands


def test_every_demo_command_parses_with_the_cli() -> None:
    commands = demo_commands()
    assert [words[0] for words in commands] == ["synth", "extract", "stats", "split", "compare",
                                                "doctor"]
    parser = cli.build_parser()
    for words in commands:
        parser.parse_args(words)      # exits (SystemExit) on an unknown option or bad value
    compare = parser.parse_args(commands[4])
    assert compare.runs >= 3 and compare.workers == 1
    synth = parser.parse_args(commands[0])
    assert 0 < synth.cog_share < 1
