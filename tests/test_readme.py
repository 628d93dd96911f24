"""The README stays true.

- Every ```python block that starts with an import is executed as a script.
- Every printed block is what its command prints. A printed block is a fenced block whose
  first line is ``$ COMMAND`` (the rest of the block is COMMAND's output), or a fenced block
  right after a ``<!-- output of: COMMAND -->`` comment (all of it is). COMMAND runs in bash
  in the repository's root, with this Python first on PATH, and its stdout is compared after
  normalising what differs between runs and machines: the repository's path, timings
  (``0.8 s``, ``12 ms``) and gradcheck's version.

When the output changes on purpose (the report's layout, the engine's counts), rewrite the
printed blocks in place and review the diff:

    python tests/test_readme.py --update
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
          if b.startswith("import")]
#: the README's quick-start script with one wrong element, whose report the README shows
WRONG_GRADIENT_SCRIPT = ROOT / "examples" / "quickstart_wrong_gradient.py"
WRONG_GRADIENT_LINE = 'self.grads["W"][1, 0] += 0.4'

_FENCE = re.compile(r"^```[^\n]*\n(?P<body>.*?)^```[ \t]*$", flags=re.S | re.M)
_OUTPUT_OF = re.compile(r"<!-- output of: (?P<command>.+?) -->\s*\Z")
#: what differs between runs and machines, and nothing else
_VARYING = [
    (re.compile(re.escape(str(ROOT))), "<repo>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:s|ms|us|µs)\b"), "<time>"),
    (re.compile(r"\bgradcheck \d+\.\d+\S*"), "gradcheck <version>"),
]


@dataclass(frozen=True)
class PrintedBlock:
    """A block of the README that shows what ``command`` prints; ``start:end`` is the span
    of the output in the README's text (after the ``$`` line, if the block has one)."""

    command: str
    output: str
    start: int
    end: int


def printed_blocks(text: str) -> list[PrintedBlock]:
    """The printed blocks of a README's text, in order.

    >>> text = ("<!-- output of: echo hi -->\\n```\\nhi\\n```\\n"
    ...         "```\\n$ echo a\\na\\n```\\n```\\nno\\n```\\n")
    >>> [(block.command, block.output) for block in printed_blocks(text)]
    [('echo hi', 'hi\\n'), ('echo a', 'a\\n')]
    """
    blocks = []
    for fence in _FENCE.finditer(text):
        body, start = fence.group("body"), fence.start("body")
        marker = _OUTPUT_OF.search(text, 0, fence.start())
        if marker is not None:
            blocks.append(PrintedBlock(marker.group("command"), body, start, fence.end("body")))
        elif body.startswith("$ "):
            first, _, output = body.partition("\n")
            blocks.append(PrintedBlock(first[2:].strip(), output, start + len(first) + 1,
                                       fence.end("body")))
    return blocks


def run(command: str) -> str:
    """What ``command`` prints on stdout, run as the README's reader would (bash, in the
    repository's root), with this Python's scripts first on PATH."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")])}
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    if not result.stdout and result.stderr:
        raise RuntimeError(f"{command!r} printed nothing on stdout; stderr:\n{result.stderr}")
    return result.stdout


def normalise(text: str) -> str:
    """The text without what varies between runs and machines, and without trailing blanks.

    >>> normalise("took 0.8 s in " + str(ROOT) + "/x  \\n\\n")
    'took <time> in <repo>/x'
    """
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def updated(text: str, output_of: Callable[[str], str]) -> str:
    """The README's text with every printed block replaced by what its command prints now.

    >>> updated("x\\n```\\n$ echo new\\nold\\n```\\ny\\n", lambda command: "new\\n")
    'x\\n```\\n$ echo new\\nnew\\n```\\ny\\n'
    """
    for block in reversed(printed_blocks(text)):
        output = output_of(block.command)
        text = text[:block.start] + output.rstrip("\n") + "\n" + text[block.end:]
    return text


# --------------------------------------------------------------------------- runnable examples


def test_readme_has_runnable_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(source: str) -> None:
    exec(compile(source, str(README), "exec"), {"__name__": "readme_example"})


# --------------------------------------------------------------------------- printed blocks

PRINTED = printed_blocks(README.read_text())


def test_the_reports_and_figures_the_readme_prints_are_all_checked() -> None:
    """The two report blocks and the flow figures are among the printed blocks (a block
    that lost its ``$`` line or its marker would silently stop being checked)."""
    commands = [block.command for block in PRINTED]
    assert f"python {WRONG_GRADIENT_SCRIPT.relative_to(ROOT)}" in commands
    assert "python -m gradcheck check gradcheck.examples.layers:BuggyDense" in commands
    assert any(command.startswith("python -m gradcheck flow ") for command in commands)
    for block in PRINTED:
        assert block.output.strip(), f"the printed block of {block.command!r} is empty"


@pytest.mark.parametrize("block", PRINTED, ids=[block.command for block in PRINTED])
def test_a_printed_block_is_what_its_command_prints(block: PrintedBlock) -> None:
    shown, printed = normalise(block.output), normalise(run(block.command))
    if shown != printed:
        diff = "\n".join(difflib.unified_diff(shown.splitlines(), printed.splitlines(),
                                              "README.md", block.command, lineterm=""))
        pytest.fail(f"README.md shows another output of {block.command!r} than it prints:\n"
                    f"{diff}\n\nIf the change is meant, rewrite the README's printed blocks "
                    "with: python tests/test_readme.py --update", pytrace=False)


def test_the_wrong_gradient_script_is_the_quick_start_with_one_line_added() -> None:
    """The script whose report the README prints is the README's first example, line for
    line, plus the one line the README tells the reader to add (and a header comment)."""
    quick_start = BLOCKS[0].splitlines()
    script = [line for line in WRONG_GRADIENT_SCRIPT.read_text().splitlines()
              if not line.startswith("#")]
    diff = list(difflib.ndiff(quick_start, script))
    removed = [line for line in diff if line.startswith("- ")]
    added = [line[2:].strip() for line in diff if line.startswith("+ ")]
    assert removed == []
    assert [line.split("#")[0].strip() for line in added] == [WRONG_GRADIENT_LINE]
    assert f"add `{WRONG_GRADIENT_LINE}` to backward" in README.read_text()


def test_update_rewrites_the_printed_blocks_and_nothing_else() -> None:
    text = ("intro\n```python\nprint(1)\n```\n<!-- output of: python a.py -->\n```\nold a\n```\n"
            "between\n```\n$ python b.py\nold b\nmore\n```\nend\n")
    new = updated(text, lambda command: f"new {command}\n")
    assert new == ("intro\n```python\nprint(1)\n```\n<!-- output of: python a.py -->\n```\n"
                   "new python a.py\n```\nbetween\n```\n$ python b.py\nnew python b.py\n```\n"
                   "end\n")
    assert updated(new, lambda command: f"new {command}\n") == new


def main(argv: list[str] | None = None) -> int:
    """``python tests/test_readme.py --update``: rewrite README.md's printed blocks."""
    parser = argparse.ArgumentParser(description="Check or rewrite README.md's printed blocks.")
    parser.add_argument("--update", action="store_true",
                        help="rewrite every printed block with what its command prints now")
    args = parser.parse_args(argv)
    text = README.read_text()
    blocks = printed_blocks(text)
    if not args.update:
        stale = [b.command for b in blocks if normalise(b.output) != normalise(run(b.command))]
        print("\n".join(f"stale: {command}" for command in stale) or
              f"all {len(blocks)} printed blocks are up to date")
        return 1 if stale else 0
    new = updated(text, run)
    README.write_text(new)
    changed = sum(normalise(a.output) != normalise(b.output)
                  for a, b in zip(blocks, printed_blocks(new), strict=True))
    print(f"README.md: {changed} of {len(blocks)} printed blocks rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
