"""The filter language: one meaning for "who" across segments, rules and journeys.

A filter is a JSON (or YAML) document: `all` / `any` / `not` groups of conditions on
contact fields, attributes, tags, consent, scores, lifecycle stage, segment membership,
computed traits and behaviour (events). `parsing` checks a document and builds the tree
in `model`; `sql` compiles a tree to one SQL condition over `contacts` (SQLite and
PostgreSQL); `evaluate` decides it for one contact from `facts`. Both give the same answer:
`tests/filters/test_agreement.py` proves it on random filters and data.
"""

from postillon.filters.model import Filter, PropertyFilter
from postillon.filters.parsing import parse_filter, parse_property_filter

__all__ = ["Filter", "PropertyFilter", "parse_filter", "parse_property_filter"]
