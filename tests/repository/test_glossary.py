"""One word, one meaning (``docs/glossary.md``), held over what a user reads: the library's
code (docstrings, comments, string literals: help texts, console output and errors are made of
them), the user commands and shipped configs and job scripts, every subcommand's ``--help``,
the docs, README.md, CONTRIBUTING.md and the names of the files.

Each rule is a phrasing the glossary rules out, with what to say instead. ``ALLOWED`` holds the
exceptions, each with its file, the phrase and the reason; an exception that matches nothing
any more fails too, so the list only holds what is still needed. CHANGELOG.md is left out: it
records the names things had.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT


@dataclass(frozen=True)
class Rule:
    """A phrasing the glossary rules out.

    Attributes:
        pattern: case-insensitive regular expression; a space in it matches any run of
            whitespace, so a phrase broken over lines (a docstring, wrapped help) still matches.
        say: what to say instead, for the failure message.
        example: a phrasing the rule catches (``test_every_rule_catches_its_example``).
        fine: a phrasing near it that the rule lets through.
    """

    pattern: str
    say: str
    example: str
    fine: str

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern.replace(" ", r"\s+"), re.IGNORECASE)


HELD_OUT = "the held-out split (calibration is the step that fits the cascade on it)"
RULES: tuple[Rule, ...] = (
    Rule(
        r"\bcalibration (sets?|splits?|data(sets?)?|images|samples)\b",
        HELD_OUT,
        "policies are fitted on the calibration split",
        "calibration fits the cascade on the held-out split",
    ),
    Rule(
        r"held-out \(calibration\)|\(calibration\) (split|set|data)|held-out calibration",
        HELD_OUT,
        "--heldout: held-out (calibration) dataset",
        "--heldout: the held-out split, which calibration fits the cascade on",
    ),
    Rule(
        r"temperature calibration|calibrat\w* (the |its |their |of |each )?(member'?s? )?"
        r"(temperatures?|probabilit|logits)|then calibrate\)|calibrated (model|probabilit|logits)",
        "temperature scaling; fit the temperatures ('calibration' alone is the step that fits "
        "the cascade)",
        "temperature calibration on the held-out split",
        "temperature scaling on the held-out split",
    ),
    Rule(
        r"calibrat\w* (the |a |each |every |its |one )?(polic|window|threshold|band|bounds)"
        r"|polic(y|ies) (is |are |was |were )(not )?calibrated",
        "fit the policy (window, threshold); calibrate the cascade",
        "calibrates the window on the held-out split",
        "calibrates the cascade: fits the window on the held-out split",
    ),
    Rule(
        r"window calibration",
        "calibration (it fits every policy of the cascade, the window among them)",
        "=== window calibration + cascade evaluation ===",
        "=== calibration + cascade evaluation ===",
    ),
    Rule(
        r"window\.json|window_json",
        "fitted_cascade.json / fitted_json (window.json is the legacy name, read with a notice)",
        "the run's window.json",
        "the run's fitted_cascade.json",
    ),
    Rule(
        r"keeping its window|apply a NaN window|its window, exits",
        "the fitted cascade (the window is one policy of it)",
        "module already calibrated, keeping its window",
        "module already calibrated, keeping its fitted cascade",
    ),
    Rule(
        r"pipeline(,|'s)? stages?\b|\b(member|evaluat\w*|training|caching) stages?\b"
        r"|\bstage (configs?|loggers?|functions?)\b|each stage's arguments",
        "step: fit members, cache logits, evaluate ('stage' is a cascade stage)",
        "the pipeline's stages as typed functions",
        "the pipeline's steps as typed functions",
    ),
    Rule(
        r"(?<![\w.-])--stage\b",
        "--step (--stage is the old spelling, still taken with a notice)",
        "run_pipeline.py --stage member --member 1",
        "run_pipeline.py --step member --member 1",
    ),
    Rule(
        r"\bstage 0\b|\bstages? (k )?\(0-based\)|0-based stage",
        "stages are numbered from 1 (stage 1 runs member 1 on every sample)",
        "at stage 0 every sample runs member 1",
        "at stage 1 every sample runs member 1",
    ),
    Rule(
        r"(?<![\w.])floors?\b(?!\s*\()",
        "layer (the code's structure is packages in layers)",
        "imports only from the floors below it",
        "imports only from the layers below it; np.floor(x) rounds down",
    ),
    Rule(
        r"\brooms?\b",
        "package (the code's structure is packages in layers)",
        "each top-level package (a room) has one job",
        "each top-level package has one job",
    ),
)


@dataclass(frozen=True)
class Allowed:
    """An exception: each of ``phrases`` (as matched, whitespace and case aside) may stand in
    ``where`` (a path from the repository's root, or ``window-cascades ... --help``), because
    ``why``."""

    where: str
    phrases: tuple[str, ...]
    why: str


LEGACY_FITTED = "the legacy name of fitted_cascade.json / fitted_json, still read with a notice"
ALLOWED: tuple[Allowed, ...] = (
    Allowed("artifacts/fitted_file.py", ("window.json",), LEGACY_FITTED),
    Allowed("artifacts/run_files.py", ("window.json",), LEGACY_FITTED),
    Allowed("lightning_modules/callbacks/cascade_calibration.py", ("window_json",), LEGACY_FITTED),
    Allowed("window-cascades cascade test --help", ("window_json",), LEGACY_FITTED),
    Allowed("window-cascades cascade predict --help", ("window_json",), LEGACY_FITTED),
    Allowed("docs/getting-started.md", ("window.json",), LEGACY_FITTED),
    Allowed("commands/pipeline_command.py", ("--stage",), "--step's old spelling, still taken"),
    Allowed(
        "docs/glossary.md",
        (
            "calibration set",
            "temperature calibration",
            "window calibration",
            "calibrating the window",
            "calibrate the window",
            "window.json",
            "pipeline stage",
            "--stage",
            "stage 0",
            "0-based stage",
            "room",
            "floor",
        ),
        "the glossary names the words that went, with what to say instead",
    ),
)


# ---------------------------------------------------------------------------------------------
# the texts a user reads


@functools.cache
def _tracked_files() -> tuple[str, ...]:
    """The repository's files (tracked, and new ones not ignored), relative to its root."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: which files are the repository's is unknown")
    return tuple(sorted({name for name in out.splitlines() if (ROOT / name).is_file()}))


def _literal(token: str) -> str:
    """The text of a string token, without its prefix and quotes."""
    body = token.lstrip("rRbBuUfF")
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    return body[len(quote) : len(body) - len(quote)]


def code_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment block and string literal of Python ``source``: adjacent
    literals (implicit concatenation) and comments on consecutive lines are joined, so a phrase
    split between them still reads as one."""
    texts: list[tuple[int, str]] = []
    strings: list[str] = []
    string_line = 0
    comment: list[str] = []
    comment_line = last_comment_line = 0
    in_fstring = 0  # Python 3.12+ splits an f-string into tokens: its fields are not text
    fstring = {getattr(tokenize, n, -1) for n in ("FSTRING_START", "FSTRING_END")}
    between = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, *fstring}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        kind, text, (line, _) = tok.type, tok.string, tok.start
        if kind == tokenize.COMMENT:
            if comment and line == last_comment_line + 1:
                comment.append(text.lstrip("#"))
            else:
                if comment:
                    texts.append((comment_line, " ".join(comment)))
                comment, comment_line = [text.lstrip("#")], line
            last_comment_line = line
            continue
        in_fstring += (kind == getattr(tokenize, "FSTRING_START", -1)) - (
            kind == getattr(tokenize, "FSTRING_END", -1)
        )
        if kind in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)):
            if not strings:
                string_line = line
            strings.append(_literal(text) if kind == tokenize.STRING else text)
        elif kind not in between and not in_fstring and strings:
            texts.append((string_line, "".join(strings)))
            strings = []
    if strings:
        texts.append((string_line, "".join(strings)))
    if comment:
        texts.append((comment_line, " ".join(comment)))
    return sorted(texts)


def _is_code(name: str) -> bool:
    """Python the wheel installs or a user runs: every folder but the tests."""
    return name.endswith(".py") and not name.startswith("tests/")


def _is_prose(name: str) -> bool:
    """Markdown a user reads (not the CHANGELOG, a record of old names), the shipped configs
    and job scripts, the user commands' shell scripts."""
    if name.endswith(".md"):
        return name != "CHANGELOG.md" and not name.startswith("tests/")
    return name.endswith((".yaml", ".sbatch", ".sh")) and not name.startswith(("tests/", "."))


@functools.cache
def repository_texts() -> tuple[tuple[str, int, str], ...]:
    """(file, first line, text) of everything the rules hold over, but the help texts."""
    found = []
    for name in _tracked_files():
        if _is_code(name):
            found += [(name, line, t) for line, t in code_texts((ROOT / name).read_text())]
        elif _is_prose(name):
            found.append((name, 1, (ROOT / name).read_text()))
    return tuple(found)


def help_invocations() -> list[list[str]]:
    """Every ``window-cascades`` subcommand (and the LightningCLIs' own subcommands) + --help."""
    from window_cascades.commands.cli_entry import CASCADE, MEMBER
    from window_cascades.commands.window_cascades import SUBCOMMANDS

    calls = [[]]
    for name in SUBCOMMANDS:
        calls.append([name])
        spec = {"member": MEMBER, "cascade": CASCADE}.get(name)
        calls += [[name, sub] for sub in (spec.subcommands if spec else ())]
    return [[*call, "--help"] for call in calls]


def help_text(argv: list[str]) -> str:
    """What ``window-cascades ARGV`` prints, run in this process (argparse exits after help)."""
    from window_cascades.commands.window_cascades import main

    out = io.StringIO()
    argv_before = list(sys.argv)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                status = main(argv)
            except SystemExit as stop:
                status = stop.code
    finally:
        sys.argv = argv_before
    assert status in (0, None), f"window-cascades {' '.join(argv)} exited {status}:\n{out}"
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# the checker


def violations(where: str, line: int, text: str) -> list[str]:
    """One line per forbidden phrasing in ``text`` (starting at ``line`` of ``where``) that
    ``ALLOWED`` does not excuse: where it stands, the phrase and what to say instead."""
    found = []
    for rule in RULES:
        for match in rule.regex.finditer(text):
            phrase = " ".join(match.group(0).split())
            if _allowed(where, phrase) is not None:
                continue
            at = line + text.count("\n", 0, match.start())
            found.append(f"{where}:{at}: {phrase!r} -> {rule.say}")
    return found


def _allowed(where: str, phrase: str) -> Allowed | None:
    for entry in ALLOWED:
        if entry.where == where and phrase.lower() in (p.lower() for p in entry.phrases):
            return entry
    return None


def name_violations(name: str) -> list[str]:
    """The rules over a file's path, read as words (``commands/stage_loggers.py`` reads
    ``commands stage loggers py``), plus a module named for the pipeline's stages."""
    words = re.sub(r"[/_.-]+", " ", name)
    found = [v.replace(f"{words}:1:", f"{name} (file name):") for v in violations(words, 1, words)]
    if re.search(r"(^|/)(pipeline_)?stages\.py$", name) and name.startswith("commands/"):
        found.append(f"{name} (file name): a module of pipeline steps, not stages")
    return found


STAGE_NAME = re.compile(r"^(stage|.*_stage)$")


def stage_name_violations(name: str, source: str) -> list[str]:
    """``stage`` in code is the 1-based cascade stage: a name ``stage`` (or ``..._stage``) may
    not index a sequence directly (``seq[stage]``: a 0-based position, call it ``k``), nor count
    from 0 (``for stage in range(n)``, ``enumerate(...)`` without ``start=1``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name):
            if STAGE_NAME.match(node.slice.id):
                found.append(f"{name}:{node.lineno}: [{node.slice.id}] indexes from 0")
        if isinstance(node, ast.For | ast.comprehension):
            targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
            staged = [t.id for t in targets if isinstance(t, ast.Name) and STAGE_NAME.match(t.id)]
            call = node.iter if isinstance(node.iter, ast.Call) else None
            func = getattr(call.func, "id", None) if call else None
            from_zero = (
                func == "range"
                and (len(call.args) == 1 or getattr(call.args[0], "value", None) == 0)
                or func == "enumerate"
                and not any(k.arg == "start" for k in call.keywords)
                and len(call.args) < 2
            )
            if staged and from_zero:
                found.append(f"{name}:{node.lineno}: {staged[0]} counts from 0 ({func})")
    return found


# ---------------------------------------------------------------------------------------------
# the checks


def test_the_code_docs_and_configs_say_one_thing_per_word():
    found = []
    for where, line, text in repository_texts():
        found += violations(where, line, text)
    assert not found, "phrasings docs/glossary.md rules out:\n" + "\n".join(found)


def test_every_help_text_says_one_thing_per_word():
    found = []
    for argv in help_invocations():
        where = f"window-cascades {' '.join(argv)}"
        found += violations(where, 1, help_text(argv))
    assert not found, "phrasings docs/glossary.md rules out:\n" + "\n".join(found)


def test_file_names_say_one_thing_per_word():
    found = [v for name in _tracked_files() for v in name_violations(name)]
    assert not found, "\n".join(found)


def test_a_name_stage_in_the_code_is_the_1_based_stage():
    found = []
    for name in _tracked_files():
        if _is_code(name):
            found += stage_name_violations(name, (ROOT / name).read_text())
    assert not found, "\n".join(found)


def test_every_exception_is_still_needed():
    """An entry of ALLOWED that excuses nothing any more is removed (so the list stays short)."""
    texts = {}
    for where, _, text in repository_texts():
        texts.setdefault(where, []).append(text)
    unused = []
    for entry in ALLOWED:
        if entry.where.startswith("window-cascades "):
            candidates = [help_text(entry.where.split()[1:])]
        else:
            candidates = texts.get(entry.where, [])
        for allowed in entry.phrases:
            phrase = re.compile(re.escape(allowed).replace(r"\ ", r"\s+"), re.IGNORECASE)
            matched = any(
                rule.regex.search(m.group(0))
                for text in candidates
                for m in phrase.finditer(text)
                for rule in RULES
            )
            if not matched:
                unused.append(f"{entry.where}: {allowed!r}")
    assert not unused, "exceptions that excuse nothing (remove them):\n" + "\n".join(unused)


# ---------------------------------------------------------------------------------------------
# the checker's own checks: a planted phrasing fails it


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.example[:40])
def test_every_rule_catches_its_example(rule: Rule):
    assert violations("somewhere.md", 1, f"Some text.\n{rule.example}\nMore."), rule.pattern
    assert not [v for r in RULES for v in violations("somewhere.md", 1, rule.fine)], rule.fine


def test_a_phrasing_planted_in_code_is_found_with_its_line(tmp_path: Path):
    source = (
        'def f():\n    """Fit the policies on the calibration\n    split."""\n'
        "    # the members' logits are cached in the member\n    # stage\n"
        '    print("window " f"calibration of {1}")\n'
        "    return 'calibrates' \\\n        ' the temperature'\n"
    )
    found = [v for line, text in code_texts(source) for v in violations("x.py", line, text)]
    assert [v.split(" -> ")[0] for v in found] == [
        "x.py:2: 'calibration split'",
        "x.py:4: 'member stage'",
        "x.py:6: 'window calibration'",
        "x.py:7: 'calibrates the temperature'",
    ]


def test_an_exception_excuses_its_phrase_in_its_file_only():
    assert not violations("artifacts/fitted_file.py", 1, "an earlier run's window.json")
    assert violations("artifacts/report.py", 1, "an earlier run's window.json")
    assert violations("artifacts/fitted_file.py", 1, "the calibration data")


def test_file_names_and_stage_names_are_checked():
    assert name_violations("commands/stages.py")
    assert name_violations("commands/stage_loggers.py")
    assert name_violations("docs/floors.md")
    assert not name_violations("commands/pipeline_steps.py")
    assert not name_violations("cascade/stage_scores.py")
    bad = "def f(bounds, n):\n    for stage in range(n):\n        print(bounds[stage])\n"
    assert len(stage_name_violations("x.py", bad)) == 2
    good = "def f(bounds, n):\n    for stage in range(1, n):\n        print(bounds[stage - 1])\n"
    assert not stage_name_violations("x.py", good)
