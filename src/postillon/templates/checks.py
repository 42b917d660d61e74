"""What is checked when a template is saved, so that sending never meets a broken one.

Jinja syntax errors and unknown variables are reported with the field and the line as
written (`body` line 12, even for MJML, which is checked before it is compiled), and MJML
is compiled with its Jinja tags protected, refusing a template whose tags MJML would drop.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from mjml import mjml_to_html  # type: ignore[import-untyped]

from postillon.errors import FieldProblem
from postillon.templates import placeholders
from postillon.templates.sandbox import BoundedSandbox

# Top-level names a template may read; functions are described in templates/functions.py.
TEMPLATE_VARIABLES = frozenset(
    {"contact", "event", "message", "unsubscribe_url", "preferences_url", "range",
     "content", "content_variants", "voucher"}
)  # fmt: skip
CONTACT_FIELDS = frozenset(
    {"id", "email", "first_name", "last_name", "phone", "locale", "timezone", "score",
     "lifecycle_stage", "tags", "consent", "created_at", "attributes", "traits"}
)  # fmt: skip
MESSAGE_FIELDS = frozenset({"id", "sent_at"})
# Loops nested deeper than this are refused: each level multiplies the work of a render.
MAX_LOOP_DEPTH = 3


@dataclass(frozen=True)
class Calls:
    """The constant first arguments of the template functions, per function name."""

    by_function: dict[str, set[str]]


def check_jinja(
    environment: BoundedSandbox,
    source: str,
    field: str,
    *,
    variables: Collection[str] = TEMPLATE_VARIABLES,
) -> tuple[list[FieldProblem], nodes.Template | None]:
    """Problems of one Jinja source (syntax, unknown variables and fields, loops too
    deep), each naming `field` and the line; and its tree when it parses."""
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as error:
        return [FieldProblem(field, f"line {error.lineno}: {error.message}")], None
    known = set(variables) | set(environment.globals) | _assigned_names(tree)
    problems: list[FieldProblem] = []
    assigned = _assigned_names(tree)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in known:
            problems.append(
                FieldProblem(field, f"line {name.lineno}: unknown variable '{name.name}'")
            )
    for read in tree.find_all(nodes.Getattr):
        owner = read.node
        if isinstance(owner, nodes.Name) and owner.name in {"contact", "message"}:
            fields = CONTACT_FIELDS if owner.name == "contact" else MESSAGE_FIELDS
            if read.attr not in fields and owner.name not in assigned:
                problems.append(
                    FieldProblem(
                        field, f"line {read.lineno}: unknown field '{owner.name}.{read.attr}'"
                    )
                )
    for loop in _loops_too_deep(tree, 0):
        problems.append(
            FieldProblem(field, f"line {loop.lineno}: loops nest at most {MAX_LOOP_DEPTH} deep")
        )
    problems.sort(key=lambda problem: _line_of(problem.message))
    return problems, tree


def function_calls(trees: Collection[nodes.Template | None]) -> Calls:
    """Which content blocks and voucher pools the templates name (constant names only)."""
    found: dict[str, set[str]] = {}
    for tree in trees:
        if tree is None:
            continue
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.args:
                first = call.args[0]
                if isinstance(first, nodes.Const) and isinstance(first.value, str):
                    found.setdefault(call.node.name, set()).add(first.value)
    return Calls(found)


def _assigned_names(tree: nodes.Template) -> set[str]:
    # Names a template sets itself ({% set %}, loop targets, macro parameters …); scoping
    # is not followed, which only makes the check more lenient.
    return {node.name for node in tree.find_all(nodes.Name) if node.ctx in {"store", "param"}} | {
        node.name for node in tree.find_all(nodes.Macro)
    }


def _loops_too_deep(node: nodes.Node, depth: int) -> Iterator[nodes.For]:
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.For):
            if depth + 1 > MAX_LOOP_DEPTH:
                yield child
                continue
            yield from _loops_too_deep(child, depth + 1)
        else:
            yield from _loops_too_deep(child, depth)


def _line_of(message: str) -> int:
    number = message.removeprefix("line ").partition(":")[0]
    return int(number) if number.isdigit() else 0


def compile_mjml(body: str) -> tuple[str | None, list[FieldProblem]]:
    """HTML for an MJML body with its Jinja tags intact, or the problems."""
    protected, tags = placeholders.protect(body)
    try:
        result = mjml_to_html(protected)
    except Exception as error:  # mjml raises bare ValueErrors and parser errors
        return None, [FieldProblem("body", f"not valid MJML: {error}")]
    problems = [FieldProblem("body", f"MJML: {message}") for message in result.errors or []]
    lost = set(range(len(tags))) - placeholders.surviving(result.html)
    for index in sorted(lost):
        line = body.count("\n", 0, _position_of(body, tags, index)) + 1
        problems.append(
            FieldProblem(
                "body",
                f"line {line}: MJML drops {tags[index]!r} here; put it inside <mj-raw> "
                "or inside the text of an element",
            )
        )
    if problems:
        return None, problems
    return placeholders.restore(result.html, tags), []


def _position_of(body: str, tags: list[str], index: int) -> int:
    position = -1
    for tag in tags[: index + 1]:
        position = body.find(tag, position + 1)
    return max(position, 0)
