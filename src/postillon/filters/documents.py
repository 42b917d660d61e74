"""Filter and definition documents from files: YAML (JSON is YAML too), with the line of
every node, so that a problem found at `filter.all[2].value` can name its line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from postillon.errors import FieldProblem, InvalidInput


def load_yaml(text: str, *, source: str = "file") -> Any:
    """A YAML document (safe types only), or InvalidInput naming the line."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise InvalidInput.at(f"{source} {line}", str(error.problem or error)) from None
    except yaml.YAMLError as error:
        raise InvalidInput.at(source, str(error)) from None


def node_lines(text: str) -> dict[str, int]:
    """The 1-based line of each node of a YAML document, by path (`filter.all[2].value`)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: str) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value)
                walk(value, f"{path}.{name}" if path else name)
                lines[f"{path}.{name}" if path else name] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    if root is not None:
        walk(root, "")
    return lines


def with_lines(error: InvalidInput, text: str, *, source: str, root: str = "") -> InvalidInput:
    """The same problems, each located as `source line N: path`. `root` is the part of
    the problems' paths that stands for the whole file (`filter` when the file holds
    just a filter)."""
    lines = node_lines(text)
    problems: Sequence[FieldProblem] = [
        FieldProblem(_locate(problem.location, root, lines, source), problem.message)
        for problem in error.problems
    ]
    return InvalidInput.of(problems)


def _locate(path: str, root: str, lines: dict[str, int], source: str) -> str:
    inside = path.removeprefix(root).removeprefix(".") if root else path
    parts = _PART.findall(inside)
    for end in range(len(parts), 0, -1):  # the nearest node that is in the file
        candidate = _join(parts[:end])
        if candidate in lines:
            return f"{source} line {lines[candidate]}: {path}"
    if "" in lines:
        return f"{source} line {lines['']}: {path}"
    return f"{source}: {path}"


_PART = re.compile(r"\[\d+\]|[^.\[\]]+")


def _join(parts: Sequence[str]) -> str:
    joined = ""
    for part in parts:
        joined += part if part.startswith("[") or not joined else f".{part}"
    return joined
