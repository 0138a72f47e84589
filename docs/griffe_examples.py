"""A griffe extension for the docs build: the sources head their doctests `Example:` (one
example each), which Google style reads as an admonition; rename it `Examples:`, the section
griffe renders as code, so the examples show as highlighted `pycon` blocks."""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
