"""Executes the tutorial notebooks end to end; a failing cell fails the test.

The kernel is `python3`: jupyter_client starts it with the interpreter running the tests
(`python` in the kernelspec's argv is replaced by sys.executable), so the notebooks see this
environment's funclayers; `test_kernel_is_this_interpreter` checks it.
"""

import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")


def _run(nb):
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()
    return nb


def _outputs(nb):
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    return "".join(out.get("text", "") for cell in code for out in cell.outputs)


@pytest.mark.notebook
@pytest.mark.parametrize("name", ["01_layers_tour.ipynb", "02_train_cnn.ipynb", "03_sequence_model.ipynb",
                                  "04_transformer.ipynb", "05_data_parallel.ipynb",
                                  "06_port_from_torch.ipynb"])
def test_notebook_runs(name):
    with open(os.path.join(NOTEBOOKS, name)) as fh:
        nb = nbformat.read(fh, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), \
        f"{name} is committed with outputs; rebuild it with notebooks/build_notebooks.py"
    _run(nb)  # raises CellExecutionError naming the failing cell
    text = _outputs(nb)
    if name.startswith("02"):
        assert "bit-exact: True" in text and "bit-exact: False" not in text


@pytest.mark.notebook
def test_kernel_is_this_interpreter():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    assert _outputs(_run(nb)).strip() == sys.executable


def test_notebooks_are_built_from_the_generator():
    """The committed .ipynb files are exactly what notebooks/build_notebooks.py writes."""
    sys.path.insert(0, NOTEBOOKS)
    import build_notebooks

    for filename, cells in (("01_layers_tour.ipynb", build_notebooks.TOUR),
                            ("02_train_cnn.ipynb", build_notebooks.TRAIN)):
        with open(os.path.join(NOTEBOOKS, filename)) as fh:
            committed = nbformat.read(fh, as_version=4)
        assert [c.source for c in committed.cells] == [src for _, src in cells], \
            f"{filename} differs from build_notebooks.py; run python notebooks/build_notebooks.py"
    import build_sequence_notebook  # the recurrent family's tutorial has a builder of its own

    with open(os.path.join(NOTEBOOKS, build_sequence_notebook.FILENAME)) as fh:
        committed = nbformat.read(fh, as_version=4)
    assert [c.source for c in committed.cells] == [src for _, src in build_sequence_notebook.SEQUENCE], \
        "03_sequence_model.ipynb differs; run python notebooks/build_sequence_notebook.py"


def test_transformer_notebook_is_built_from_its_generator():
    """04_transformer.ipynb is exactly what notebooks/build_transformer_notebook.py writes."""
    sys.path.insert(0, NOTEBOOKS)
    import build_transformer_notebook as builder

    with open(os.path.join(NOTEBOOKS, builder.FILENAME)) as fh:
        committed = nbformat.read(fh, as_version=4)
    assert [c.source for c in committed.cells] == [src for _, src in builder.CELLS], \
        f"{builder.FILENAME} differs from its builder; run python notebooks/build_transformer_notebook.py"


def test_parallel_notebook_is_built_from_its_generator():
    """05_data_parallel.ipynb is exactly what notebooks/build_parallel_notebook.py writes."""
    sys.path.insert(0, NOTEBOOKS)
    import build_parallel_notebook

    with open(os.path.join(NOTEBOOKS, build_parallel_notebook.FILENAME)) as fh:
        committed = nbformat.read(fh, as_version=4)
    assert [c.source for c in committed.cells] == [src for _, src in build_parallel_notebook.PARALLEL], \
        "05_data_parallel.ipynb differs from its builder; run python notebooks/build_parallel_notebook.py"


def test_port_notebook_is_built_from_its_generator():
    """06_port_from_torch.ipynb is exactly what notebooks/build_port_notebook.py writes."""
    sys.path.insert(0, NOTEBOOKS)
    import build_port_notebook as builder

    with open(os.path.join(NOTEBOOKS, builder.FILENAME)) as fh:
        committed = nbformat.read(fh, as_version=4)
    assert [c.source for c in committed.cells] == [src for _, src in builder.CELLS], \
        f"{builder.FILENAME} differs from its builder; run python notebooks/build_port_notebook.py"
