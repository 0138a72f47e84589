"""Executes the tutorial notebooks end to end; a failing cell fails the test.

The kernel is `python3`: jupyter_client starts it with the interpreter running the tests
(`python` in the kernelspec's argv is replaced by sys.executable), so the notebooks see this
environment's funclayers; `test_kernel_is_this_interpreter` checks it.
"""

import importlib
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
                                  "06_port_from_torch.ipynb", "07_attention_variants.ipynb"])
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


@pytest.mark.parametrize("builder, filename, cells", [
    ("build_notebooks", "01_layers_tour.ipynb", "TOUR"),
    ("build_notebooks", "02_train_cnn.ipynb", "TRAIN"),
    ("build_sequence_notebook", "03_sequence_model.ipynb", "SEQUENCE"),
    ("build_transformer_notebook", "04_transformer.ipynb", "CELLS"),
    ("build_parallel_notebook", "05_data_parallel.ipynb", "PARALLEL"),
    ("build_port_notebook", "06_port_from_torch.ipynb", "CELLS"),
    ("build_attention_notebook", "07_attention_variants.ipynb", "CELLS"),
])
def test_notebook_is_built_from_its_generator(builder, filename, cells):
    """Each committed .ipynb is exactly what its builder in notebooks/ writes."""
    sys.path.insert(0, NOTEBOOKS)
    module = importlib.import_module(builder)
    with open(os.path.join(NOTEBOOKS, filename)) as fh:
        committed = nbformat.read(fh, as_version=4)
    assert [c.source for c in committed.cells] == [src for _, src in getattr(module, cells)], \
        f"{filename} differs from its builder; run python notebooks/{builder}.py"
