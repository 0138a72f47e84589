"""A griffe extension for the docs build (mkdocs.yml, mkdocstrings' `extensions`).

- Docstrings set at import time (`BatchNorm1d.__doc__ = _DOC.format(...)`, the padding layers'
  `_document`) are invisible to griffe's static analysis: take them from the imported object.
- The sources head their doctests `Example:` (one example each), which Google style reads as an
  admonition; rename it `Examples:`, the section griffe renders as code (`pycon` blocks).
"""

import importlib
import inspect
import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


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
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
