"""The errors reference's cases (``docs/errors.yaml``): run them, check or write their messages.

    python scripts/error_messages.py              # run every case, compare with the catalogue
    python scripts/error_messages.py --update     # write each case's message as printed now
    python scripts/error_messages.py --only ID    # one case

Each case of the catalogue is a command line of ``window-cascades`` with bad input, the files it
needs, and the one ``error:`` line it prints (``printed``). A case runs in-process
(``window_cascades.commands.window_cascades.main``) in an empty temporary folder, its working
folder, where its ``files`` are written first. In the argument list, the files and the printed
line, ``{tmp}`` stands for that folder and ``{root}`` for the repository; the documentation
shows both as paths relative to where the command runs.

A file's value is its text, or one of:

- ``{copy: PATH}``: a copy of the repository's file or folder ``PATH``;
- ``{copy: PATH, bytes: N}``: the first N bytes of the repository's file ``PATH`` (a file cut
  short);
- ``{logits: [N, C], targets: KIND, values: VALUES}``: a safetensors file of N x C float32
  logits (seeded) and targets: ``int`` (default), ``float`` or ``none`` (no ``targets``), with
  ``values: nan`` putting a NaN in the logits.

``tests/repository/test_error_messages.py`` runs every case: a message that changes fails it
until the catalogue (and so the page) quotes the new one. Adding a case is one entry; ``--update``
fills in its ``printed``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "errors.yaml"
FIELDS = ("id", "command", "title", "argv", "files", "printed", "fix")
REQUIRED = ("id", "command", "title", "argv", "printed", "fix")


def load_catalogue(path: Path = CATALOGUE) -> list[dict]:
    """The catalogue's cases, checked: known fields, the required ones, unique ids made of
    lower-case letters, digits and dashes (each is an anchor of the page)."""
    cases = yaml.safe_load(path.read_text())
    if not isinstance(cases, list):
        raise ValueError(f"{path}: expected a list of cases")
    seen = set()
    for k, case in enumerate(cases):
        name = case.get("id", "?") if isinstance(case, dict) else repr(case)
        where = f"{path.name}: case {k + 1} ({name})"
        if not isinstance(case, dict):
            raise ValueError(f"{where}: expected a mapping")
        unknown = sorted(set(case) - set(FIELDS))
        missing = [f for f in REQUIRED if f not in case]
        if unknown or missing:
            raise ValueError(f"{where}: unknown fields {unknown}, missing fields {missing}")
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", case["id"]) or case["id"] in seen:
            raise ValueError(f"{where}: the id must be unique, lower-case words joined by '-'")
        seen.add(case["id"])
    return cases


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{root}", str(ROOT))


def write_files(files: dict, tmp: Path) -> None:
    """Write a case's files under ``tmp``."""
    for name, spec in (files or {}).items():
        path = tmp / _fill(name, tmp)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            path.write_text(_fill(spec, tmp))
        elif "copy" in spec:
            source = ROOT / spec["copy"]
            if source.is_dir():
                shutil.copytree(source, path)
            else:
                data = source.read_bytes()
                path.write_bytes(data[: spec["bytes"]] if "bytes" in spec else data)
        elif "logits" in spec:
            import torch
            from safetensors.torch import save_file

            n, classes = spec["logits"]
            gen = torch.Generator().manual_seed(0)
            logits = torch.randn(n, classes, generator=gen)
            if spec.get("values") == "nan":
                logits[0, 0] = float("nan")
            tensors = {"logits": logits}
            kind = spec.get("targets", "int")
            if kind == "int":
                tensors["targets"] = torch.arange(n) % classes
            elif kind == "float":
                tensors["targets"] = (torch.arange(n) % classes).float()
            save_file(tensors, str(path))
        else:
            raise ValueError(f"{name}: unknown file spec {spec!r}")


def run_case(case: dict, tmp: Path) -> tuple[int, list[str]]:
    """Run one case in ``tmp`` (its working folder); returns the exit status and the lines
    of standard error that start with ``error:`` or name the command's error."""
    from window_cascades.commands.window_cascades import main

    write_files(case.get("files"), tmp)
    argv = [_fill(a, tmp) for a in case["argv"]]
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp)
    env = os.environ.pop("WINDOW_CASCADES_TRACEBACK", None)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(cwd)
        if env is not None:
            os.environ["WINDOW_CASCADES_TRACEBACK"] = env
    lines = [line for line in err.getvalue().splitlines() if "error:" in line]
    return status, lines


def printed_line(case: dict, tmp: Path) -> tuple[int, str | None]:
    """The exit status and the one error line of the case as the catalogue writes it
    (``{tmp}`` and ``{root}`` for the folders), or None when it did not print exactly one."""
    status, lines = run_case(case, tmp)
    if len(lines) != 1:
        return status, None
    return status, lines[0].replace(str(tmp), "{tmp}").replace(str(ROOT), "{root}")


def _update(path: Path, found: dict[str, str]) -> None:
    """Rewrite the ``printed:`` line of each case in ``found``, leaving the rest of the file
    (comments, order, layout) as it is."""
    lines = path.read_text().splitlines(keepends=True)
    current = None
    for k, line in enumerate(lines):
        m = re.match(r"^- id: (\S+)", line)
        if m:
            current = m.group(1)
        elif current in found and re.match(r"^  printed: ", line):
            lines[k] = "  printed: " + yaml.safe_dump(found[current], width=10**6).split("\n")[0]
            lines[k] += "\n"
    path.write_text("".join(lines))


def _shown(text: str) -> str:
    """A case's path as a user in the folder the command runs in writes it."""
    return text.replace("{tmp}/", "").replace("{root}/", "").replace("{tmp}", ".")


def _file_note(name: str, spec) -> str:
    name = _shown(name)
    if isinstance(spec, str):
        return f"`{name}`:\n\n```yaml\n{_shown(spec).rstrip()}\n```"
    if "logits" in spec:
        n, classes = spec["logits"]
        kind = {"int": "integer targets", "float": "float targets", "none": "no targets"}
        what = f"{n} x {classes} logits and {kind[spec.get('targets', 'int')]}"
        return f"`{name}`: {what}" + (", one logit NaN" if spec.get("values") == "nan" else "")
    if "bytes" in spec:
        return f"`{name}`: the first {spec['bytes']} bytes of `{spec['copy']}`"
    return f"`{name}`: a copy of `{spec['copy']}`"


def command_anchor(command: str) -> str:
    """The anchor of a command's section of the errors reference."""
    return re.sub(r"[^a-z0-9]+", "-", command.lower()).strip("-")


def render_page(cases: list[dict]) -> str:
    """The errors reference's sections (Markdown): one per command, one per case with its
    anchor (the case's id), the command line, the line it prints and what to do, paths shown
    relative to the folder the command runs in."""
    import shlex

    by_command: dict[str, list[dict]] = {}
    for case in cases:
        by_command.setdefault(case["command"], []).append(case)
    out = []
    for command, group in by_command.items():
        out += [f"## `{command}` {{#{command_anchor(command)}}}", ""]
        for case in group:
            argv = " ".join(shlex.quote(_shown(a)) for a in case["argv"])
            out += [f"### {case['title']} {{#{case['id']}}}", ""]
            files = case.get("files") or {}
            if files:
                out += ["With " + "; ".join(_file_note(n, s) for n, s in files.items()), ""]
            out += ["```bash", f"window-cascades {argv}", "```", "", "prints", ""]
            out += ["```text", _shown(case["printed"]), "```", ""]
            out += [f"**What to do:** {case['fix']}", ""]
    return "\n".join(out).rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help="write the messages as printed now")
    p.add_argument("--only", action="append", help="the case with this id (repeatable)")
    args = p.parse_args(argv)
    cases = [c for c in load_catalogue() if not args.only or c["id"] in args.only]
    changed, failed = {}, []
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            status, line = printed_line(case, Path(tmp).resolve())
        if status != 2 or line is None:
            failed.append(f"{case['id']}: exit status {status}, error line {line!r}")
        elif line != case["printed"]:
            changed[case["id"]] = line
            print(f"{case['id']}:\n  catalogue: {case['printed']}\n  printed:   {line}")
    if args.update and changed:
        _update(CATALOGUE, changed)
        print(f"{len(changed)} messages written into {CATALOGUE.relative_to(ROOT)}")
    for problem in failed:
        print(f"error: {problem}", file=sys.stderr)
    ok = not failed and (args.update or not changed)
    print(f"{len(cases)} cases, {len(changed)} changed, {len(failed)} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
