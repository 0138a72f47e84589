"""The documentation: every public name documented and on a docs page, its example run, the site built.

- `test_public_name_has_a_docstring` / `test_every_public_name_is_on_a_docs_page`: the public
  names are `funclayers.__all__` and the public functions and classes of `funclayers.functional`,
  `funclayers.init`, `funclayers.rnn`, `funclayers.parallel`, `funclayers.utils` (with `parametrize`,
  `parametrizations`, `stateless`) and `funclayers.attention` (with `bias`, `flex_attention`)
  (docs/gen_pages.py, `public_names`).
- `test_docstring_example_runs`: each docstring's `>>>` example runs as a doctest (outputs compared
  where given, with ELLIPSIS and NORMALIZE_WHITESPACE) in the namespace of the module that defines the
  name plus `fl`, `F` (= `functional`), `jax`, `jnp`, `np`, `math` and `rng` = `key` = PRNGKey(0).
  The examples that do not run yet (they use inputs they do not define) are listed in
  NOT_YET_RUNNABLE and xfail strictly: fixing one makes its test XPASS, i.e. fail, until it is
  removed from the list.
- `test_args_lists_each_parameter`: each parameter of a public name has its own `name: meaning`
  entry in the docstring's Args section (only `device, dtype` may share one), saying its default
  where it has one; the site renders each entry as a row of the parameter table.
- `test_examples_show_values_as_output` / `test_example_shows_a_value`: an example shows values as
  doctest output (`>>> y.shape` then `(20, 33, 24)`), never as a trailing comment
  (`>>> y, _ = layer.apply(...)   # (20, 33, 24)`), and shows at least one.
- `test_readme_code_blocks_*`: the README's code blocks stay code blocks on the pages made from it
  (the Getting started page once ran the Install block's lines into one paragraph).
- `test_docs_build`: `mkdocs build --strict` (warnings are errors: a docstring griffe cannot parse,
  a broken link or cross-reference), the notebooks rendered but not executed (tests/test_notebooks.py
  executes them); every parameter has its row on the built pages and the install block is code.
"""

import doctest
import enum
import inspect
import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))

import gen_pages  # noqa: E402

PUBLIC = gen_pages.public_names()
PATHS = [path for path, _ in PUBLIC]

# Examples that use names they do not define (x, params, logits, ...) or whose shown output is
# not the repr the call returns; each is an xfail(strict=True) below. Shrink this list.
NOT_YET_RUNNABLE: set[str] = set()

# Public names whose docstring has no `>>>` example yet.
NO_EXAMPLE_YET: set[str] = set()


_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?|-?inf|nan")


class _Checker(doctest.OutputChecker):
    """doctest's comparison, then, where it fails, the same text with numbers equal to ~1e-5.

    Shown float32 values may differ in the last digit between CPUs (XLA's vectorised exp/tanh),
    and numpy pads array reprs to the widest entry."""

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        want_n, got_n = _NUMBER.findall(want), _NUMBER.findall(got)
        if len(want_n) != len(got_n) or not want_n:
            return False
        if " ".join(_NUMBER.sub("#", want).split()) != " ".join(_NUMBER.sub("#", got).split()):
            return False
        import numpy as np

        return bool(np.allclose([float(v) for v in want_n], [float(v) for v in got_n], rtol=1e-5, atol=1e-6,
                                equal_nan=True))


def _examples(path, obj):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import funclayers as fl
    import funclayers.functional as F

    globs = dict(vars(sys.modules[obj.__module__]))
    globs.update(fl=fl, F=F, functional=F, jax=jax, jnp=jnp, np=np, math=math,
                 rng=jax.random.PRNGKey(0), key=jax.random.PRNGKey(0))
    return [t for t in doctest.DocTestFinder(recurse=False).find(obj, path, globs=globs) if t.examples]


@pytest.mark.parametrize("path", PATHS)
def test_public_name_has_a_docstring(path):
    obj = dict(PUBLIC)[path]
    assert (inspect.getdoc(obj) or "").strip(), f"{path} has no docstring"


def test_every_public_name_is_on_a_docs_page():
    pages = "\n".join(gen_pages.family_pages().values())  # raises naming any name no family claims
    missing = [path for path in PATHS if f"::: {path}\n" not in pages]
    assert not missing, f"not on any docs page: {missing}"


def test_example_lists_are_current():
    """NO_EXAMPLE_YET is exactly the public names without a `>>>` example, and names only real ones."""
    without = {path for path, obj in PUBLIC if ">>>" not in (inspect.getdoc(obj) or "")}
    assert without == NO_EXAMPLE_YET, (f"names that gained an example (remove from NO_EXAMPLE_YET): "
                                       f"{sorted(NO_EXAMPLE_YET - without)}; names without one: "
                                       f"{sorted(without - NO_EXAMPLE_YET)}")
    assert NOT_YET_RUNNABLE <= set(PATHS) - without


# The issue asks every public name's docstring for Args, Shape and an example. Names that take or
# return no arrays have no Shape section; each is listed here with the reason.
NO_ARRAYS = {
    "funclayers.ModuleList": "a container without a forward",
    "funclayers.ModuleDict": "a container without a forward",
    "funclayers.Scope": "the object a composite's forward receives",
    "funclayers.StateDictError": "an exception",
    "funclayers.TorchConversionError": "an exception",
    "funclayers.tune_cpu_allocator": "configures the process's allocator",
    "funclayers.register_torch_converter": "a registry of classes and functions",
    "funclayers.unregister_torch_converter": "a registry of classes and functions",
    "funclayers.torch_to_layer": "returns a Layer without weights",
    "funclayers.init.calculate_gain": "numbers in, a number out",
    "funclayers.parallel.chunk_plan": "integers in, integers out",
    "funclayers.attention.SDPBackend": "an enum of kernels",
    "funclayers.attention.sdpa_kernel": "a context that picks kernels",
    "funclayers.attention.bias.CausalVariant": "an enum",
    "funclayers.attention.flex_attention.FlexKernelOptions": "a dict of kernel options",
}
_ARGS, _SHAPE = re.compile(r"^Args:", re.MULTILINE), re.compile(r"^Shape:", re.MULTILINE)


def _takes_arguments(obj) -> bool:
    try:
        return bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return True


@pytest.mark.parametrize("path", PATHS)
def test_docstring_sections(path):
    """An Args section where the name takes arguments; a Shape section unless listed in NO_ARRAYS."""
    obj = dict(PUBLIC)[path]
    doc = inspect.getdoc(obj) or ""
    if _takes_arguments(obj):
        assert _ARGS.search(doc), f"{path}: its docstring has no 'Args:' section"
    if path in NO_ARRAYS:
        assert not _SHAPE.search(doc), f"{path} has a Shape section now: remove it from NO_ARRAYS"
    else:
        assert _SHAPE.search(doc), f"{path}: its docstring has no 'Shape:' section (or list it in NO_ARRAYS with why)"


# Names whose Args section does not yet give each parameter its own entry; each xfails strictly
# below (fixing one makes it XPASS, i.e. fail, until it is removed from here). Shrink this list.
ARGS_NOT_YET_PER_PARAMETER: set[str] = set()

# `name: meaning` or `name (type): meaning`, at the Args section's own indentation; `*inputs:` and
# `**kwargs:` with their stars or without. One name per entry, but `device, dtype:` together.
_ARG_ENTRY = re.compile(r"(\*{0,2}\w+(?:, \*{0,2}\w+)*)(?: \([^)]*\))?:(?:\s|$)")
_SHARED_ENTRIES = ({"device", "dtype"},)


def _args_entries(doc):
    """{parameter name: its entry's text} of an `Args:` section, for the names it documents one
    per entry (or `device, dtype` together); an entry's text runs on over its indented lines."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "Args:"), None)
    if start is None:
        return {}
    body = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith((" ", "\t")):
            break
        body.append(line)
    indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
    entries, current = {}, []
    for line in body:
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) == indent:
            match = _ARG_ENTRY.match(line.strip())
            names = [name.strip().lstrip("*") for name in match.group(1).split(",")] if match else []
            current = names if len(names) == 1 or set(names) in _SHARED_ENTRIES else []
            for name in current:
                entries[name] = line.strip()[match.end():]
        else:
            for name in current:
                entries[name] += " " + line.strip()
    return entries


def test_args_entries_rule():
    """The rule of test_args_lists_each_parameter, on small sections."""
    doc = "Summary.\n\nArgs:\n  x: input.\n  dim: the axis,\n    Default: 1.\n  *inputs: more.\n" \
          "  device, dtype: ignored.\n  a, b: grouped.\n\nShape:\n  x: (N,)\n"
    assert _args_entries(doc) == {"x": "input.", "dim": "the axis, Default: 1.", "inputs": "more.",
                                  "device": "ignored.", "dtype": "ignored."}
    assert _args_entries("Args: as torch.nn.Conv1d (in_channels, ...).") == {}


def _documented_parameters(obj) -> list:
    """The parameters a name's Args section must list: its signature's, but `self`; none for an Enum
    (its signature is EnumMeta.__call__'s functional API, not what its members mean)."""
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        return []
    try:
        return [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        return []


@pytest.mark.parametrize("path", [
    pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="Args not yet one entry per parameter"))
    if path in ARGS_NOT_YET_PER_PARAMETER else path for path in PATHS])
def test_args_lists_each_parameter(path):
    """The Args section gives each parameter of the signature its own entry, `name: meaning`, and
    `... Default: value.` where it has a default (the word "default" in the entry, however put),
    so `help()` and the site's parameter table (one row per entry) say what each one does. Only
    `device` and `dtype` may share an entry. Entries for names not in the signature (a layer's
    forward arguments, `**kwargs` spelled out) are allowed."""
    obj = dict(PUBLIC)[path]
    params = _documented_parameters(obj)
    entries = _args_entries(inspect.getdoc(obj) or "")
    missing = [p.name for p in params if p.name not in entries]
    assert not missing, (f"{path}: the Args section has no entry of its own for {missing} "
                         f"(one `name: meaning` line per parameter; found entries for {list(entries)})")
    no_default = [p.name for p in params if p.default is not p.empty and "default" not in entries[p.name].lower()]
    assert not no_default, f"{path}: the Args entries of {no_default} do not give their default (`Default: ...`)"


# A trailing comment on an example line that is a value where doctest output belongs: the comment
# is nothing but `-> ...`, a number (`# 0.0`, `# ~0.5`), a tuple with a number in it (`# (20, 33, 24)`,
# `# (2, D)`, `# (4,)`; `# unbatched (C, H, W)` names a layout) or a list of numbers
# (`# [0.125, 2.5]`; `# [log 2, 3 log 2]` is a formula), the last two perhaps after one word
# (`# data (10, 4)`). Explanatory comments (`# log 4`, `# (3 + 3) / 4`, `# eval: the identity`) stay.
_VALUE_COMMENT = re.compile(
    r"#\s*(?:->.*"
    r"|~?-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
    r"|(?:[A-Za-z_]\w*:?\s+)?~?\((?=[^)]*\d)\s*(?:[\w*.-]+\s*,\s*)*[\w*.-]*\s*\)"
    r"|(?:[A-Za-z_]\w*:?\s+)?~?\[[-+\d.,\se\[\]]*\])\s*$")


def _code_and_comment(line):
    """An example line split at its comment's `#` (not one inside a string): (code, comment or '')."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i], line[i:]
    return line, ""


def _value_comments(doc):
    out = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith((">>> ", "... ")):
            _, comment = _code_and_comment(stripped[4:])
            if comment and _VALUE_COMMENT.fullmatch(comment):
                out.append(stripped)
    return out


def test_value_comment_rule():
    """The rule of test_examples_show_values_as_output, on lines it must and must not flag."""
    flagged = [">>> y, _ = conv.apply(params, state, jnp.ones((20, 16, 50)))   # (20, 33, 24)",
               ">>> y.shape  # (1, 8, 9, 9)", ">>> F.l1_loss(jnp.ones(3), jnp.zeros(3))   # 1.0",
               ">>> d, _ = layer.apply({}, {}, x1, x2)   # (4,)", ">>> F.huber_loss(x, y)   # [0.125, 2.5]",
               ">>> w = F.embedding(i, w)   # (2, D)", ">>> y = f(x)  # -> (2, 3)", ">>> t(a)   # ~[0, 0.5]",
               ">>> p.data   # [1 4 6 2 5 3]", ">>> F.pad(x, (2, 1), mode='reflect')   # [[2, 1, 0, 1, 2, 1]]",
               ">>> packed = pack_padded_sequence(x, [5, 3, 2])   # data (10, 4)", ">>> y.shape   # shape: (2, 3)"]
    kept = [">>> loss   # log 4", ">>> y[0, 0, 0]   # sqrt(3)", ">>> F.l1_loss(a, b, weight=w)   # (3 + 3) / 4",
            ">>> y   # eval: the identity", ">>> layer.apply(p, s, x)[0]   # the padding row starts at zero",
            '>>> d["# (1, 2)"]', ">>> F.layer_norm(x, (3,))   # (x - 2) / sqrt(2/3 + 1e-5)",
            ">>> x = jnp.ones(3)   # (N, C, L) = (1, 2, 2)", ">>> x = jnp.ones((1, 3, 4))   # unbatched (C, H, W)",
            "...    reduction='none')   # [log 2, 3 log 2]"]
    assert [line for line in flagged if not _value_comments(line)] == []
    assert [line for line in kept if _value_comments(line)] == []


@pytest.mark.parametrize("path", [path for path, obj in PUBLIC if ">>>" in (inspect.getdoc(obj) or "")])
def test_examples_show_values_as_output(path):
    """An example shows a value as doctest output (`>>> y.shape` then `(20, 33, 24)`), where the
    doctest checks it, never as a trailing comment (`>>> y, _ = layer.apply(...)   # (20, 33, 24)`)."""
    bad = _value_comments(inspect.getdoc(dict(PUBLIC)[path]) or "")
    assert not bad, f"{path}: example lines ending in a value as a comment (show it as output instead): {bad}"


# Examples that show no value, with why (every other example shows at least one, as doctest output).
SHOWS_NO_VALUE = {
    "funclayers.unregister_torch_converter": "returns None; its effect shows only in from_torch of a torch module",
}


@pytest.mark.parametrize("path", [path for path, obj in PUBLIC if ">>>" in (inspect.getdoc(obj) or "")])
def test_example_shows_a_value(path):
    """An example shows what the name gives (`>>> y.shape` then `(20, 33, 24)`), not only runs it:
    at least one of its lines has doctest output, unless listed in SHOWS_NO_VALUE with why."""
    examples = doctest.DocTestParser().get_examples(inspect.getdoc(dict(PUBLIC)[path]) or "")
    shows = any(example.want.strip() for example in examples)
    if path in SHOWS_NO_VALUE:
        assert not shows, f"{path} shows a value now: remove it from SHOWS_NO_VALUE"
    else:
        assert shows, f"{path}: its example shows no value (end it with e.g. `>>> y.shape` and the shape)"


@pytest.mark.parametrize("path", [
    pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="example not yet runnable (NOT_YET_RUNNABLE)"))
    if path in NOT_YET_RUNNABLE else path
    for path, obj in PUBLIC if ">>>" in (inspect.getdoc(obj) or "")])
def test_docstring_example_runs(path):
    import jax

    runner = doctest.DocTestRunner(checker=_Checker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    with jax.enable_x64(False):  # the shown outputs are float32's, whatever another test left set
        for test in _examples(path, dict(PUBLIC)[path]):
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


_PARAM_ROW = re.compile(r'<tr class="doc-section-item">\s*<td>\s*<code>([^<]*)</code>')  # mkdocstrings' table


@pytest.mark.docs
def test_docs_build(tmp_path):
    """The site builds with warnings as errors; every family page and notebook page is there.

    The notebooks are not executed here (FUNCLAYERS_DOCS_EXECUTE=false): tests/test_notebooks.py executes
    each of them, in parallel workers, and executing all seven again in this one test made it the suite's
    long pole. A plain `mkdocs build` (the published site) still executes them (mkdocs.yml)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("mkdocs_jupyter")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", FUNCLAYERS_DOCS_EXECUTE="false")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    for slug, *_ in gen_pages.FAMILIES:
        assert (site / "api" / slug / "index.html").exists(), slug
    # torch's shapes, (*, H_in) -> (*, H_out): Markdown must not read their stars as emphasis
    emphasis = {m for slug, *_ in gen_pages.FAMILIES
                for m in re.findall(r"<em>([^<]*)</em>", (site / "api" / slug / "index.html").read_text())}
    assert emphasis <= {"required"}, f"text set in italics on the API pages (unescaped '*'?): {sorted(emphasis)[:5]}"
    conv = (site / "api" / "convolution" / "index.html").read_text()
    assert 'id="funclayers.Conv2d"' in conv and "torch.nn.Conv2d" in conv
    # every parameter of every public name is a row of its parameter table (name, meaning, default)
    rows_missing = []
    pages = {slug: (site / "api" / slug / "index.html").read_text() for slug, *_ in gen_pages.FAMILIES}
    for path, obj in PUBLIC:
        text = pages[gen_pages.family_of(obj)]
        start = text.index(f'id="{path}"')
        end = re.search(r'<h[23] id="funclayers\.', text[start + 1:])
        section = text[start:start + 1 + end.start()] if end else text[start:]
        rows = {r.lstrip("*") for r in _PARAM_ROW.findall(section)}
        params = [p.name for p in _documented_parameters(obj)]
        rows_missing += [f"{path}({name})" for name in params if name not in rows]
    assert not rows_missing, f"parameters without a row in their name's parameter table: {rows_missing[:10]}"
    # the Getting started page's install lines are a code block, not a paragraph
    index = (site / "index.html").read_text()
    assert re.search(r"<pre[^>]*>(?:(?!</pre>).)*pip install -e \.", index, re.S), "index.html: install block not code"
    for name in gen_pages.NOTEBOOKS:
        assert (site / "notebooks" / name[:-len(".ipynb")] / "index.html").exists(), name
    train = (site / "notebooks" / "02_train_cnn" / "index.html").read_text()
    assert "bit-exact" in train  # the notebook's code is rendered (its outputs: tests/test_notebooks.py)


def _readme_code_blocks(text):
    """The code blocks of a Markdown text, as (kind, first line, body): the fenced ones (```), and
    the indented ones (4 spaces, after a blank line, outside a list item's continuation)."""
    blocks, lines, i, prev_blank, in_list = [], text.splitlines(), 0, True, False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            j = i + 1
            while not lines[j].lstrip().startswith("```"):
                j += 1
            blocks.append(("fenced", lines[i + 1], "\n".join(lines[i + 1:j])))
            i, prev_blank = j + 1, False
            continue
        if line.startswith("    ") and line.strip() and prev_blank and not in_list:
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            blocks.append(("indented", line, "\n".join(lines[i:j]).rstrip()))
            i, prev_blank = j, False
            continue
        if line.strip():
            in_list = bool(re.match(r"\s*(?:[-*+]|\d+\.)\s", line)) or (in_list and line.startswith(" "))
        prev_blank = not line.strip()
        i += 1
    return blocks


def test_readme_code_blocks_stay_code_blocks_on_the_site():
    """Every code block of README.md that a generated page (index.md, interop.md, ...) carries is a
    code block there too: an indented block keeps its blank line before and its first line's 4
    spaces. The Getting started page once ran the Install block's pip lines into one paragraph
    (its section was `.strip()`ped, taking the first line's indent)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    blocks = _readme_code_blocks(readme)
    assert any(kind == "indented" and "pip install" in first for kind, first, _ in blocks)  # the Install block
    pages = gen_pages.text_pages()
    carried = 0
    for path, text in pages.items():
        for kind, first, body in blocks:
            if first.strip() not in text:
                continue
            carried += 1
            if kind == "indented":
                assert ("\n\n" + body in text) or text.startswith(body), (
                    f"{path}: README's indented code block starting {first.strip()!r} is not an indented code "
                    "block on the page (lost its first line's indent or the blank line before it)")
            else:
                assert "```" in text.split(first, 1)[0].rsplit("\n", 2)[-2], (
                    f"{path}: README's fenced code block starting {first.strip()!r} lost its fence")
    assert carried >= 5, "the pages carry (nearly) none of README's code blocks: has the README changed shape?"


def test_readme_code_blocks_render_as_code():
    """The same, rendered as mkdocs renders it: each README code block on a page is a <pre><code>."""
    markdown = pytest.importorskip("markdown")
    import html

    extensions = (["tables", "pymdownx.superfences", "pymdownx.highlight"] if _has_module("pymdownx")  # mkdocs.yml's
                  else ["tables", "fenced_code"])
    code = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
    blocks = _readme_code_blocks(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())
    for path, text in gen_pages.text_pages().items():
        rendered = markdown.markdown(text, extensions=extensions)
        in_code = "\n".join(html.unescape(re.sub(r"<[^>]+>", "", c)) for c in code.findall(rendered))
        for _, first, _ in blocks:
            if first.strip() in text:
                assert first.strip() in in_code, f"{path}: {first.strip()!r} is not rendered as code"


def _has_module(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_contract_page_is_the_contract():
    """docs/contract.md is the project's contract (../shared/CONTRACT.md), kept as a copy because
    the docs build sees only this repository; where the original is present, the two are the same."""
    original = os.path.join(ROOT, "..", "shared", "CONTRACT.md")
    if not os.path.exists(original):
        pytest.skip("../shared/CONTRACT.md is not beside this checkout (CI's clean clone)")
    with open(original) as a, open(os.path.join(ROOT, "docs", "contract.md")) as b:
        assert b.read() == a.read(), "docs/contract.md differs from ../shared/CONTRACT.md: copy it over"
