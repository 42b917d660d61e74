"""Template injection: nothing reaches Python internals, nothing hangs."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.runtime import Runtime
from postillon.templates.rendering import RenderedEmail, RenderFailure
from tests.templates.support import add_contact, queue_messages, save_template

# Each either fails at save or renders without leaking anything Python-internal.
CORPUS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c.__name__ }}{% endfor %}",
    "{{ contact.__class__ }}",
    "{{ contact._sa_instance_state }}",
    "{{ event.__dict__ }}",
    "{{ contact['__class__'] }}",
    "{{ contact | attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(contact) }}",
    "{{ '%s' % contact.__class__ }}",
    "{{ '{0.__class__}' | format(1) }}",
    "{{ 'a'.format_map({}) }}",
    "{{ ''.__class__.__base__.__subclasses__() | map(attribute='__name__') | list }}",
    "{{ config }}{{ request }}{{ url_for }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 9**9**9 }}",
    "{% for a in range(9) %}{% for b in range(9) %}{% for c in range(9) %}"
    "{% for d in range(9) %}x{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    "{{ event.items.append(1) }}{{ event.update({'a': 1}) }}",
    "{% set x = contact.tags.pop() %}",
    "{{ message.__class__.__init__.__globals__ }}",
    # Resource exhaustion: each must fail fast (or be refused at save), never hang.
    "{{ 'x' | center(1000000000) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ 'x'.zfill(10**9) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{:{}}'.format(1, 1000000000) }}",
    "{{ '%1000000000d' % 1 }}",
    "{{ '%*d' % (1000000000, 1) }}",
    "{{ '%1000000000d' | format(1) }}",
    "{{ ('x' * 100000) | replace('', 'y' * 100000) }}",
    "{{ ('x' * 100000).replace('', 'y' * 100000) }}",
    "{{ ('x' * 100000) | list | join('y' * 100000) }}",
    "{{ ('a' * 100000).join('b' * 100000) }}",
    "{{ [1] | batch(1000000000, 0) | list }}",
    "{{ [1] | slice(1000000000, 0) | list }}",
    "{{ ('a\\n' * 50000) | indent(100000) }}",
    "{{ lipsum(1000000) }}",
    "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 100000 %}{% for i in range(10000) %}{{ s }}{% endfor %}",
    "{% macro r(n) %}{{ r(n) }}{% endmacro %}{{ r(1) }}",
]
LEAKS = ("<class", "__", "object at 0x", "uid=", "module", "function", "Subclasses")


@pytest.mark.parametrize("source", CORPUS)
def test_injection_never_reaches_python_internals(
    runtime: Runtime, session: Session, source: str
) -> None:
    try:
        template_id = save_template(session, runtime, format="html", body=source, key="attack")
    except InvalidInput:
        return  # refused at save
    contact = add_contact(session, runtime)
    [message] = queue_messages(session, runtime, template_id, [contact], context={"items": []})
    result = runtime.templates.render_messages(session, [message])[message.id]
    if isinstance(result, RenderFailure):
        assert "Traceback" not in result.reason
        return
    assert isinstance(result, RenderedEmail)
    body = result.html.split("</div>", 1)[-1]  # after the preheader element
    for leak in LEAKS:
        assert leak not in body, (source, body[:300])
