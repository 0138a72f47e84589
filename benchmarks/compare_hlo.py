"""Dump (or compare) the compiled HLO of every funclayers benchmark step.

A change that must not touch the speed of the measured steps (a refactor of how the fast kernels
are differentiated) can be checked without timing anything: when the optimised HLO that XLA runs
is the same instruction for instruction, the step time is the same. Run once per version of the
code, each in its own process, then compare:

    PYTHONPATH=<old>/src python -m benchmarks.compare_hlo dump /tmp/hlo_old [--only NAME ...]
    PYTHONPATH=<new>/src python -m benchmarks.compare_hlo dump /tmp/hlo_new [--only NAME ...]
    python -m benchmarks.compare_hlo diff /tmp/hlo_old /tmp/hlo_new

The text is canonicalised first: metadata (source lines, op names) and instruction and computation
names (numbered in order of first appearance) are dropped, so that only the operations, shapes,
layouts and operands are compared.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import pathlib
import re
import sys
import time


def canonical(text: str) -> str:
    # the debug tables (FileNames, FunctionNames, FileLocations, StackFrames) name source lines
    text = re.sub(r"^(FileNames|FunctionNames|FileLocations|StackFrames)\n(\d+ .*\n)*", "", text, flags=re.M)
    text = re.sub(r",?\s*stack_frame_id=\d+", "", text)
    text = re.sub(r",?\s*metadata=\{[^{}]*\}", "", text)
    text = re.sub(r",?\s*frontend_attributes=\{[^{}]*\}", "", text)
    text = re.sub(r"^HloModule [^,\s]+", "HloModule m", text, flags=re.M)
    names: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        name = match.group(1)
        if name not in names:
            names[name] = f"v{len(names)}"
        return "%" + names[name]

    text = re.sub(r"%([\w.\-]+)", rename, text)
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def recanonical(directory: pathlib.Path) -> None:
    """Canonicalise dumps again (after a change to `canonical`)."""
    for path in directory.glob("*.hlo"):
        head, text = path.read_text().split("\n", 1)
        path.write_text(f"{head}\n{canonical(text)}\n")


def dump(out: pathlib.Path, only: list[str] | None) -> None:
    from benchmarks import harness, run

    captured: list = []
    original = harness.jax_step

    def capture(fn, *args):
        captured.append((fn, args))
        return original(fn, *args)

    def capture_carry(fn, carry, *args):  # models.py's training steps thread their state
        captured.append((fn, (*carry, *args)))
        return original_carry(fn, carry, *args)

    from benchmarks.workloads import models

    original_carry = models._carry_step
    models._carry_step = capture_carry
    harness.jax_step = capture
    out.mkdir(parents=True, exist_ok=True)
    for workload in run.all_workloads().values():
        if only and not any(o in workload.name for o in only):
            continue
        setup = workload.builders.get("funclayers")
        if setup is None:
            continue
        captured.clear()
        for module in list(sys.modules.values()):  # workloads import jax_step by name
            if getattr(module, "jax_step", None) is original:
                module.jax_step = capture
        setup()
        fn, args = captured[-1]
        start = time.perf_counter()
        lowered = fn.lower(*args)  # trace and lower
        traced = time.perf_counter()
        text = canonical(lowered.compile().as_text())  # what XLA runs
        compiled = time.perf_counter()
        name = hashlib.sha1(workload.name.encode()).hexdigest()[:10]
        (out / f"{name}.hlo").write_text(f"// {workload.name}\n{text}\n")
        print(f"{workload.name}: {len(text.splitlines())} lines; trace + lower {traced - start:.2f} s, "
              f"compile {compiled - traced:.2f} s")


def diff(old: pathlib.Path, new: pathlib.Path) -> int:
    changed = 0
    for path in sorted(old.glob("*.hlo")):
        other = new / path.name
        a = path.read_text().splitlines()
        if not other.exists():
            print(f"{a[0][3:]}: missing in {new}")
            changed += 1
            continue
        b = other.read_text().splitlines()
        if a == b:
            print(f"{a[0][3:]}: identical ({len(a)} lines)")
        else:
            changed += 1
            delta = [line for line in difflib.unified_diff(a, b, lineterm="", n=0) if line[:1] in "+-"]
            print(f"{a[0][3:]}: DIFFERENT ({len(delta)} changed lines of {len(a)})")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=pathlib.Path)
    d.add_argument("--only", nargs="*")
    c = sub.add_parser("diff")
    c.add_argument("old", type=pathlib.Path)
    c.add_argument("new", type=pathlib.Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.only)
    else:
        sys.exit(1 if diff(args.old, args.new) else 0)


if __name__ == "__main__":
    main()
