"""A griffe extension for the docs build (mkdocs.yml, mkdocstrings' `extensions`).

- Docstrings set at import time (`BatchNorm1d.__doc__ = _DOC.format(...)`, the padding layers'
  `_document`) are invisible to griffe's static analysis: take them from the imported object.
- The sources head their doctests `Example:` (one example each), which Google style reads as an
  admonition; rename it `Examples:`, the section griffe renders as code (`pycon` blocks).
- Shapes are written as torch writes them, `(*, H_in)`, `(N, *)`: Markdown would read two such
  stars as emphasis and drop them. Outside code (backticks, the examples) every `*` is escaped,
  but the stars of a `*args` / `**kwargs` entry's name in an Args section.
"""

import importlib
import inspect
import os
import re
import sys

import griffe

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_pages import escape_stars  # noqa: E402

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_EXAMPLES_HEAD = re.compile(r"^\s*Examples?:\s*$")
_STAR_NAME = re.compile(r"^(\s*\*{1,2})(?=\w+:)")


def _escape_stars(line):
    lead = _STAR_NAME.match(line)
    head, rest = (lead.group(1), line[lead.end():]) if lead else ("", line)
    return head + escape_stars(rest)


def _escape_shape_stars(doc):
    lines, fenced = doc.split("\n"), False
    for i, line in enumerate(lines):
        if _EXAMPLES_HEAD.match(line):
            break
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and not line.lstrip().startswith((">>>", "...")):
            lines[i] = _escape_stars(line)
    return "\n".join(lines)


def _runtime_doc(obj):
    try:
        module = importlib.import_module(obj.module.path)
    except ImportError:
        return None
    target = module
    for part in obj.path[len(obj.module.path) + 1:].split("."):
        target = getattr(target, part, None)
    return inspect.getdoc(target) if target is not None and target.__doc__ else None


class ExampleSections(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.is_alias or obj.kind not in (griffe.Kind.FUNCTION, griffe.Kind.CLASS):
            return
        if obj.docstring is None and obj.path.startswith("funclayers."):
            doc = _runtime_doc(obj)
            if doc:
                obj.docstring = griffe.Docstring(doc, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", _escape_shape_stars(obj.docstring.value))
