"""The documentation: every public name documented and on a docs page, its example run, the site built.

- `test_public_name_has_a_docstring` / `test_every_public_name_is_on_a_docs_page`: the public
  names are `funclayers.__all__` and the public functions and classes of `funclayers.functional`,
  `funclayers.init`, `funclayers.rnn` and `funclayers.parallel` (docs/gen_pages.py, `public_names`).
- `test_docstring_example_runs`: each docstring's `>>>` example runs as a doctest (outputs compared
  where given, with ELLIPSIS and NORMALIZE_WHITESPACE) in the namespace of the module that defines the
  name plus `fl`, `F` (= `functional`), `jax`, `jnp`, `np`, `math` and `rng` = `key` = PRNGKey(0).
  The examples that do not run yet (they use inputs they do not define) are listed in
  NOT_YET_RUNNABLE and xfail strictly: fixing one makes its test XPASS, i.e. fail, until it is
  removed from the list.
- `test_docs_build`: `mkdocs build --strict` (warnings are errors: a docstring griffe cannot parse,
  a broken link or cross-reference), executing the tutorial notebooks so that the site shows their
  outputs.
"""

import doctest
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


@pytest.mark.docs
def test_docs_build(tmp_path):
    """The site builds with warnings as errors, the notebooks executed; every family page is there."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("mkdocs_jupyter")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", FUNCLAYERS_DOCS_EXECUTE="true")
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
    for name in gen_pages.NOTEBOOKS:
        assert (site / "notebooks" / name[:-len(".ipynb")] / "index.html").exists(), name
    train = (site / "notebooks" / "02_train_cnn" / "index.html").read_text()
    assert "bit-exact: True" in train  # rendered with its outputs


def test_contract_page_is_the_contract():
    """docs/contract.md is the project's contract (../shared/CONTRACT.md), kept as a copy because
    the docs build sees only this repository; where the original is present, the two are the same."""
    original = os.path.join(ROOT, "..", "shared", "CONTRACT.md")
    if not os.path.exists(original):
        pytest.skip("../shared/CONTRACT.md is not beside this checkout (CI's clean clone)")
    with open(original) as a, open(os.path.join(ROOT, "docs", "contract.md")) as b:
        assert b.read() == a.read(), "docs/contract.md differs from ../shared/CONTRACT.md: copy it over"
