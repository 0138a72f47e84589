"""Generates the site's pages from the sources at build time (a mkdocs hook, see mkdocs.yml).

Nothing generated is committed, so the site cannot go stale:

- one API page per family (`api/<slug>.md`): a table of its layers and functional ops, each with
  its torch counterpart (the first `torch.` name of its docstring's summary) and that summary, then
  every name rendered by mkdocstrings (signature and docstring);
- `index.md` (getting started), `interop.md`, `catalogue.md` and `allocator.md` from README.md's
  sections, and `benchmarks.md` from benchmarks/README.md.

Every public name (`funclayers.__all__`, the public functions of `funclayers.functional`,
`funclayers.init`, `funclayers.rnn`, `funclayers.parallel` and `funclayers.utils` with its
`parametrize`, `parametrizations` and `stateless`) must belong to exactly one family:
a name no family claims fails the build (tests/test_docs.py checks the same without mkdocs).
"""

from __future__ import annotations

import inspect
import os
import re
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (slug, title, the private modules whose public names the page lists, one line of introduction)
FAMILIES = [
    ("containers", "Layers and containers", ["funclayers._layer", "funclayers._module", "funclayers._param_containers"],
     "`Layer` (the init/apply pair every layer is), torch's containers and `Module`, the composite "
     "that reads like a torch `nn.Module`."),
    ("linear", "Linear", ["funclayers._linear"], "torch.nn's linear.py and flatten.py."),
    ("lazy", "Lazy layers", ["funclayers._lazy"],
     "torch.nn's lazy modules: `init(rng, x)` reads the size they leave open from an example input's shape."),
    ("activation", "Activations and softmax",
     ["funclayers._activation", "funclayers._activation_leaky", "funclayers._activation_smooth",
      "funclayers._activation_sigmoid", "funclayers._softmax", "funclayers._activation_inplace"],
     "torch.nn's activation.py (without MultiheadAttention: see Attention and transformer)."),
    ("dropout", "Dropout", ["funclayers._dropout"],
     "Random in training only: `apply(..., rng=key, training=True)`."),
    ("convolution", "Convolution, fold and unfold",
     ["funclayers._conv", "funclayers._conv_transpose", "funclayers._fold"],
     "torch.nn's conv.py and fold.py, with the fast CPU lowerings of benchmarks/README.md."),
    ("padding", "Padding", ["funclayers._padding"], "torch.nn's padding.py; every mode of `F.pad`."),
    ("pooling", "Pooling",
     ["funclayers._pooling", "funclayers._pooling_avg", "funclayers._unpooling", "funclayers._adaptive_pooling",
      "funclayers._fractional_pooling"],
     "torch.nn's pooling.py: max, average, power-average, adaptive, fractional pooling and max unpooling."),
    ("normalization", "Normalization",
     ["funclayers._normalization", "funclayers._batchnorm", "funclayers._instancenorm"],
     "BatchNorm's running statistics come back as the new `state` in training mode."),
    ("loss", "Loss functions",
     ["funclayers._loss_modules", "funclayers._loss_modules_ce", "funclayers._loss", "funclayers._loss_margin",
      "funclayers._loss_ce", "funclayers._loss_ctc"],
     "Losses are layers too: `loss, state = layer.apply(params, state, input, target)`; "
     "`weight` and `pos_weight` are buffers in `state`."),
    ("recurrent", "Recurrent layers and packed sequences",
     ["funclayers._rnn", "funclayers._rnn_cell", "funclayers.rnn"],
     "torch.nn's rnn.py and torch.nn.utils.rnn (`funclayers.rnn`)."),
    ("sparse", "Embeddings", ["funclayers._sparse", "funclayers._sparse_bag", "funclayers._one_hot"],
     "torch.nn's sparse.py, and `F.one_hot`."),
    ("vision", "Vision: pixel shuffle, upsampling, grid sampling",
     ["funclayers._pixelshuffle", "funclayers._upsampling", "funclayers._vision"],
     "torch.nn's pixelshuffle.py, channelshuffle.py and upsampling.py, and torch.nn.functional's "
     "interpolate, affine_grid and grid_sample."),
    ("adaptive", "Adaptive softmax", ["funclayers._adaptive"], "torch.nn's adaptive.py."),
    ("distance", "Distances", ["funclayers._distance"], "torch.nn's distance.py."),
    ("transformer", "Attention and transformer",
     ["funclayers._attention", "funclayers._sdpa", "funclayers._transformer"],
     "torch.nn's transformer.py and MultiheadAttention; long sequences run blockwise."),
    ("attention", "torch.nn.attention: flex attention, SDPA backends, causal biases",
     ["funclayers.attention", "funclayers.attention.bias", "funclayers.attention.flex_attention"],
     "`funclayers.attention`, torch.nn.attention's twin: `flex_attention` with `score_mod` / `mask_mod` "
     "written as JAX functions and block masks whose empty blocks are skipped (it trains on CPU, where "
     "torch's has no backward), `sdpa_kernel` to choose `scaled_dot_product_attention`'s kernel, and "
     "`CausalBias` masks. The tutorial: [attention variants](../notebooks/07_attention_variants.ipynb)."),
    ("parallel", "Data parallelism",
     ["funclayers.parallel._data_parallel", "funclayers.parallel._distributed"],
     "torch.nn.parallel on `jax.shard_map` (one process) and `jax.distributed` (several)."),
    ("utils", "torch.nn.utils (funclayers.utils)",
     ["funclayers.utils.clip_grad", "funclayers.utils.convert_parameters", "funclayers.utils._weight_norm",
      "funclayers.utils._spectral_norm", "funclayers.utils.parametrize", "funclayers.utils.parametrizations",
      "funclayers.utils.fusion", "funclayers.utils.stateless", "funclayers.utils.init",
      "funclayers.utils.memory_format"],
     "torch.nn.utils as pure functions of pytrees (gradient clipping, with an optax transformation; "
     "parameters to one vector and back; BatchNorm fusion; `functional_call`) and as layer wrappers that "
     "keep torch's names (weight and spectral norm, `parametrize`, `parametrizations`). Packed sequences, "
     "torch.nn.utils.rnn, are on the Recurrent page."),
    ("init", "Initialisers (funclayers.init)", ["funclayers.init", "funclayers._init_inplace"],
     "torch.nn.init's initialisers as pure functions of `(key, shape, dtype)`, and torch's in-place names as "
     "`(key, tensor, ...)` returning a new array like the tensor."),
    ("interop", "Interop: state dicts and from_torch",
     ["funclayers._interop", "funclayers.porting._convert", "funclayers.porting._errors"],
     "torch's `state_dict` in and out, and whole torch models converted in one call "
     "(the guide is on the [Porting from torch](../interop.md) page)."),
    ("allocator", "CPU allocator", ["funclayers._kernels._allocator"],
     "See the [CPU memory allocator](../allocator.md) note."),
]


def public_names() -> list[tuple[str, object]]:
    """Every public name of funclayers, as (the path mkdocstrings renders it under, the object)."""
    import funclayers as fl

    out, seen = [], set()

    def add(path, obj):
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append((path, obj))

    for name in fl.__all__:
        obj = getattr(fl, name)
        if not isinstance(obj, types.ModuleType):
            add(f"funclayers.{name}", obj)
    for mod in (fl.functional, fl.init, fl.rnn, fl.parallel, fl.utils, fl.utils.parametrize, fl.utils.parametrizations,
                fl.utils.stateless, fl.attention, fl.attention.bias, fl.attention.flex_attention):
        names = getattr(mod, "__all__", None) or sorted(n for n in vars(mod) if not n.startswith("_"))
        for name in names:
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType) or not getattr(obj, "__module__", "").startswith("funclayers"):
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            add(f"{mod.__name__}.{name}", obj)
    return out


def family_of(obj) -> str | None:
    for slug, _, modules, _ in FAMILIES:
        if obj.__module__ in modules:
            return slug
    return None


def torch_counterpart(obj) -> str:
    summary = (inspect.getdoc(obj) or "").split("\n\n")[0]
    match = re.search(r"torch\.[A-Za-z_][\w.]*\w", summary)
    return f"`{match.group(0)}`" if match else "-"


def escape_stars(text: str) -> str:
    """Every `*` outside backticks escaped: Markdown would read the stars of torch's shapes,
    (*, H_in) -> (*, H_out), as emphasis (also used by griffe_examples.py on docstrings)."""
    parts = text.split("`")  # odd parts are inside backticks
    return "`".join(p if i % 2 else re.sub(r"(?<!\\)\*", r"\\*", p) for i, p in enumerate(parts))


def _summary(obj) -> str:
    first = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ").strip()
    return escape_stars(first.replace("|", "\\|"))


def family_pages() -> dict[str, str]:
    """{slug: markdown} for every family; raises if a public name belongs to no family."""
    groups: dict[str, list[tuple[str, object]]] = {slug: [] for slug, *_ in FAMILIES}
    orphans = []
    for path, obj in public_names():
        slug = family_of(obj)
        if slug is None:
            orphans.append(f"{path} ({obj.__module__})")
        else:
            groups[slug].append((path, obj))
    if orphans:
        raise RuntimeError("public names on no docs page (add their module to FAMILIES in docs/gen_pages.py): "
                           + ", ".join(orphans))
    pages = {}
    for slug, title, _, intro in FAMILIES:
        members = groups[slug]
        layers = [(p, o) for p, o in members if not p.startswith("funclayers.functional.")]
        ops = [(p, o) for p, o in members if p.startswith("funclayers.functional.")]
        lines = [f"# {title}", "", intro, ""]
        for heading, group in (("Layers and classes", layers), ("Functional ops", ops)):
            if not group:
                continue
            lines += [f"## {heading}", "", "| funclayers | torch | summary |", "|---|---|---|"]
            for path, obj in group:
                short = path.replace("funclayers.functional.", "F.").replace("funclayers.", "fl.")
                lines.append(f"| [`{short}`](#{path}) | {torch_counterpart(obj)} | {_summary(obj)} |")
            lines.append("")
            for path, _ in group:
                lines += [f"::: {path}", ""]
        pages[slug] = "\n".join(lines)
    index = ["# funclayers.functional", "",
             "The pure ops every layer is built on, under torch.nn.functional's names (`import funclayers.functional "
             "as F`); each is documented on its family's page.", "",
             "| funclayers | torch | family |", "|---|---|---|"]
    titles = {slug: title for slug, title, *_ in FAMILIES}
    for slug, members in groups.items():
        for path, obj in members:
            if path.startswith("funclayers.functional."):
                index.append(f"| [`F.{path.rsplit('.', 1)[1]}`]({slug}.md#{path}) | {torch_counterpart(obj)} | "
                             f"{titles[slug]} |")
    pages["functional"] = "\n".join(index) + "\n"
    return pages


def _readme_sections(text: str) -> dict[str, str]:
    """README.md split at its `## ` headings: {heading: body}; the text before the first is ''.

    Each body loses its leading and trailing blank lines only: the README writes code blocks
    indented by 4 spaces, and a body that opens with one (Install's pip lines) would turn into a
    paragraph if its first line lost its indent (the site once ran those lines together)."""
    sections, current, body = {}, "", []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced:
            sections[current] = _strip_blank_lines(body)
            current, body = line[3:].strip(), []
        else:
            body.append(line)
    sections[current] = _strip_blank_lines(body)
    return sections


def _strip_blank_lines(lines: list[str]) -> str:
    """The lines joined, without the blank ones at either end, and the leading spaces of the first kept."""
    return "\n".join(lines).strip("\n").rstrip() + "\n"


def _read(*parts) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def text_pages() -> dict[str, str]:
    """{path: markdown} of the pages made from README.md and benchmarks/README.md."""
    readme = _readme_sections(_read("README.md"))
    wanted = ["", "Install", "Ten lines", "Porting from torch", "The contract", "Layers", "Run it"]
    if missing := [h for h in wanted if h not in readme]:
        raise RuntimeError(f"README.md lacks the sections {missing} that docs/gen_pages.py builds pages from")
    intro = readme[""].split("\n", 1)[1].strip("\n").rstrip()  # without the "# funclayers" title
    contract = readme["The contract"]
    alloc_start = contract.index("**CPU memory allocator.**")
    allocator = contract[alloc_start:].split("\n\n")[0]
    pages = {
        "index.md": "\n\n".join([
            "# Getting started", intro, "## Install", readme["Install"], "## Ten lines", readme["Ten lines"],
            "## The contract in short", contract[:alloc_start].strip("\n").rstrip(),
            "The full contract is on [its own page](contract.md); every layer's page is under *API*; "
            "the tutorials are notebooks, rendered with their outputs.", "## Run it", readme["Run it"]]),
        "interop.md": "# Porting from torch\n\n" + readme["Porting from torch"]
                      + "\n\nThe functions: [Interop API](api/interop.md).\n",
        "catalogue.md": "# Layer catalogue\n\n" + readme["Layers"],
        "allocator.md": "# CPU memory allocator\n\n" + allocator
                        + "\n\n::: funclayers.tune_cpu_allocator\n",
        "benchmarks.md": _read("benchmarks", "README.md"),
    }
    return pages


# every tutorial in notebooks/ (docs/notebooks links there), in file-name order
NOTEBOOKS = sorted(name for name in os.listdir(os.path.join(ROOT, "notebooks")) if name.endswith(".ipynb"))


def nav() -> list:
    return [
        {"Getting started": "index.md"},
        {"The contract": "contract.md"},
        {"Porting from torch": "interop.md"},
        {"Layer catalogue": "catalogue.md"},
        {"API": [{"funclayers.functional (index)": "api/functional.md"}]
                + [{title: f"api/{slug}.md"} for slug, title, _, _ in FAMILIES]},
        {"Tutorials": [f"notebooks/{name}" for name in NOTEBOOKS]},
        {"CPU allocator": "allocator.md"},
        {"Benchmarks": "benchmarks.md"},
    ]


# -- mkdocs hook events --

def on_config(config, **kwargs):
    config["nav"] = nav()
    return config


def on_files(files, config, **kwargs):
    import logging

    from mkdocs.structure.files import File

    for path, obj in public_names():  # a warning, so `mkdocs build --strict` fails
        if not (inspect.getdoc(obj) or "").strip():
            logging.getLogger("mkdocs.plugins.gen_pages").warning("%s has no docstring", path)

    pages = dict(text_pages())
    pages.update({f"api/{slug}.md": text for slug, text in family_pages().items()})
    for path, text in pages.items():
        files.append(File.generated(config, path, content=text))
    return files
