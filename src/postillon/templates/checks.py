"""What is checked when a template is saved, so that sending never meets a broken one.

Jinja syntax errors and unknown variables are reported with the field and the line as
written (`body` line 12, even for MJML, which is checked before it is compiled), and MJML
is compiled with its Jinja tags protected, refusing a template whose tags MJML would drop.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from mjml import mjml_to_html  # type: ignore[import-untyped]

from postillon.errors import FieldProblem
from postillon.templates import placeholders
from postillon.templates.sandbox import BoundedSandbox

# Top-level names a template may read; functions are described in templates/functions.py.
TEMPLATE_VARIABLES = frozenset(
    {"contact", "event", "message", "unsubscribe_url", "preferences_url", "range", "loop",
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
class FunctionCall:
    """A call of a template function (`content`, `content_variants`, `voucher`)."""

    function: str
    key: str | None  # None when the first argument is not a written string
    line: int


TEMPLATE_FUNCTIONS = frozenset({"content", "content_variants", "voucher"})


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
    except RecursionError:
        return [FieldProblem(field, "is nested too deeply")], None
    except Exception as error:  # a number literal of thousands of digits …
        return [FieldProblem(field, f"cannot be read: {error}")], None
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
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        problems.append(
            FieldProblem(field, f"line {node.lineno}: templates cannot load other templates")
        )
    for block in tree.find_all(nodes.Block):
        problems.append(FieldProblem(field, f"line {block.lineno}: blocks are not supported"))
    for loop in _loops_too_deep(tree, 0):
        problems.append(
            FieldProblem(field, f"line {loop.lineno}: loops nest at most {MAX_LOOP_DEPTH} deep")
        )
    problems.sort(key=lambda problem: _line_of(problem.message))
    return problems, tree


def function_calls(tree: nodes.Template) -> list[FunctionCall]:
    """The calls of template functions in a tree, with the key each names."""
    found: list[FunctionCall] = []
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in TEMPLATE_FUNCTIONS:
            first = call.args[0] if call.args else None
            key = first.value if isinstance(first, nodes.Const) else None
            found.append(
                FunctionCall(call.node.name, key if isinstance(key, str) else None, call.lineno)
            )
    return found


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


def check_mailbox(value: str, field: str) -> FieldProblem | None:
    """A sender or reply address (`Shop <shop@example.com>` or a bare address) that an SMTP
    server will take: caught at save, not by a refusal at send."""
    if any(c in value for c in "\r\n\0"):
        return FieldProblem(field, "must be one line")
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        return FieldProblem(field, f"{value!r} is not one address like 'Shop <shop@example.com>'")
    address = found[0][1]
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        return FieldProblem(field, f"not a valid email address: {error}")
    return None


def compile_mjml(body: str) -> tuple[str | None, list[FieldProblem]]:
    """HTML for an MJML body with its Jinja tags intact, or the problems."""
    if "<mjml" not in body:
        return None, [FieldProblem("body", "is not MJML: it must be an <mjml> document")]
    protected, tags = placeholders.protect(body)
    try:
        result = mjml_to_html(protected)
    except KeyError as error:  # an element mjml does not know
        return None, [FieldProblem("body", f"not valid MJML: unknown element {error}")]
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
