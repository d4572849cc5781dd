"""`make docs-check`: run the command blocks of README.md and of the docs pages (in the order of
mkdocs.yml's nav, i.e. reading order), as a new user would, and fail on the first one that exits
non-zero.

Every fenced ```bash and ```python block runs, top to bottom, in one fresh temporary copy of
the checkout (the files git knows, as in a fresh clone, with `.venv` linked to this one), each
block in its own `bash -e` (python blocks: `python -`). A block is skipped when the line above its
fence (blank lines aside) is an HTML comment starting with `docs-check: skip`, e.g.

    <!-- docs-check: skip (needs a GPU) -->

Use it for blocks that need a GPU, the network or a Hub token, or that are `make` targets
themselves (`make test` is CI's job). Every other block must run as written.

Small settings: `selfpref` on the blocks' PATH is a shim that runs the real CLI with
SELFPREF_DOCS_SMALL's caps applied (prompts, tokens, training steps; see SMALL below), so the
embedded model finishes on a CPU. Other commands run unchanged. HF_HUB_OFFLINE=1, as `make` sets.

    python tools/docs_check.py [--page FILE ...] [--list] [--keep] [--timeout S]
                               [--workdir DIR --from N]   (resume in a kept folder at block N)

Filters under small settings can keep no pair (a few short answers), which `selfpref filter`
refuses by design; the shim passes --allow-empty to `filter` so that docs-check checks the
commands, not the luck of four samples. `iterate` examples must give enough prompts themselves.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SKIP = re.compile(r"^\s*<!--\s*docs-check:\s*skip\b(.*?)-->\s*$")
RUN_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}

# flag -> cap applied by the shim when SELFPREF_DOCS_SMALL is set; "add" flags are appended to
# commands that do not give them (command -> flags).
# Two training steps, not one: with 10% warm-up the first step runs at learning rate 0, so a
# one-step model equals its parent (a SELFEE build labelled against it then gets only ties).
SMALL = {"--num-prompts": 8, "--max-new-tokens": 24, "--max-steps": 2, "--max-length": 192,
         "--max-pairs": 8, "--grad-accum": 1, "--max-prompts": 4}
SMALL_ADD = {"build": {"--max-new-tokens": 24},
             "filter": {"--allow-empty": None},
             "train": {"--max-steps": 2, "--max-length": 192, "--grad-accum": 1, "--batch-size": 2},
             "iterate": {"--max-new-tokens": 24, "--max-steps": 2, "--max-length": 192},
             "ask": {"--max-new-tokens": 24},
             # eval's default is the 104 shipped prompts at 256 new tokens: hours on a CPU
             "eval": {"--max-prompts": 4, "--max-new-tokens": 24},
             "steer generate": {"--max-new-tokens": 24}}

SHIM = '''#!{python}
"""selfpref with SELFPREF_DOCS_SMALL's caps (written by tools/docs_check.py)."""
import os, sys
SMALL = {small!r}
SMALL_ADD = {small_add!r}
args = sys.argv[1:]
if os.environ.get("SELFPREF_DOCS_SMALL"):
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        flag, eq, value = a.partition("=")
        if flag in SMALL and (eq or i + 1 < len(args)):
            if not eq:
                i += 1
                value = args[i]
            try:
                number = type(SMALL[flag])(value)
                value = str(min(number, SMALL[flag]))
            except ValueError:
                pass
            out += [flag, value]
        else:
            out.append(a)
        i += 1
    words = [a for a in out if not a.startswith("-")]
    two = words[:1] == ["steer"] or words[:2] == ["eval", "compare"]
    command = " ".join(words[:2]) if two else (words[0] if words else "")
    if "--help" not in out:
        for flag, value in SMALL_ADD.get(command, {{}}).items():
            if flag not in out and not any(a.startswith(flag + "=") for a in out):
                out += [flag] if value is None else [flag, str(value)]
    args = out
os.execv(sys.executable, [sys.executable, "-m", "selfpref.cli", *args])
'''


@dataclass
class Block:
    number: int
    line: int
    lang: str
    text: str
    skip: str | None  # the reason, when skipped
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def nav_pages(mkdocs: Path = ROOT / "mkdocs.yml") -> list[Path]:
    """README.md, then every page of the docs site's nav, in reading order."""
    import yaml

    def walk(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in walk(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in walk(value)]
        return []

    nav = yaml.safe_load(mkdocs.read_text().split("\nhooks:")[0] + "\n" + "nav:" +
                         mkdocs.read_text().split("\nnav:", 1)[1])["nav"]
    return [ROOT / "README.md", *(ROOT / "docs" / p for p in walk(nav))]


def all_blocks(pages: list[Path]) -> list[Block]:
    out: list[Block] = []
    for page in pages:
        for b in blocks(page):
            b.number, b.page = len(out) + 1, str(page.relative_to(ROOT))
            out.append(b)
    return out


def blocks(readme: Path) -> list[Block]:
    """The fenced blocks of a Markdown file that docs-check runs or skips, in order."""
    out, lines = [], readme.read_text().splitlines()
    i, last_comment = 0, None
    while i < len(lines):
        line = lines[i]
        skip = SKIP.match(line)
        if skip:
            last_comment = skip.group(1).strip(" ()") or "marked skip"
        fence = FENCE.match(line)
        if fence:
            lang, start = fence.group(2).lower(), i
            body = []
            i += 1
            while i < len(lines) and not FENCE.match(lines[i]):
                body.append(lines[i])
                i += 1
            if lang in RUN_LANGS:
                out.append(Block(len(out) + 1, start + 1, RUN_LANGS[lang], "\n".join(body) + "\n",
                                 last_comment))
            last_comment = None
        elif line.strip() and not skip:
            last_comment = None
        i += 1
    return out


def fresh_checkout(dest: Path) -> None:
    """The files git tracks (and new ones it does not ignore), as in a fresh clone, plus .venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    venv = ROOT / ".venv"
    if venv.exists():
        (dest / ".venv").symlink_to(venv)


def environment(work: Path, bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    python_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([str(bin_dir), python_bin, env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("SELFPREF_DOCS_SMALL", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PWD"] = str(work)
    return env


def write_shim(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "selfpref"
    shim.write_text(SHIM.format(python=sys.executable, small=SMALL, small_add=SMALL_ADD))
    shim.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, action="append",
                        help="Run only these Markdown files (repeatable); default: README.md and the nav's pages.")
    parser.add_argument("--list", action="store_true", help="Show the blocks and whether each runs.")
    parser.add_argument("--from", dest="start", type=int, default=1,
                        help="Skip the blocks before N (use with --workdir of a kept run).")
    parser.add_argument("--workdir", type=Path, help="Run in this folder (a kept run's) instead of a fresh one.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    parser.add_argument("--timeout", type=float, default=None,
                        help="Seconds a block may run (default: no limit).")
    args = parser.parse_args(argv)

    found = all_blocks([p.resolve() for p in args.page] if args.page else nav_pages())
    if args.list:
        for b in found:
            first = b.text.strip().splitlines()[0] if b.text.strip() else ""
            state = f"skip ({b.skip})" if b.skip else "run"
            print(f"{b.number:3d}  {b.where:42.42s}  {b.lang:6s}  {state:30.30s}  {first[:60]}")
        return 0

    if args.workdir:
        work = args.workdir.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="selfpref-docs-check-"))
        fresh_checkout(work)
    bin_dir = Path(tempfile.mkdtemp(prefix="selfpref-docs-bin-"))
    write_shim(bin_dir)
    env = environment(work, bin_dir)
    print(f"docs-check: {len(found)} blocks in {work} "
          f"(SELFPREF_DOCS_SMALL={env['SELFPREF_DOCS_SMALL']})", flush=True)
    started, ran, skipped = time.perf_counter(), 0, 0
    status = 0
    try:
        for b in found:
            if b.skip or b.number < args.start:
                skipped += 1
                print(f"--- block {b.number} ({b.where}): skipped ({b.skip or 'before --from'})")
                continue
            print(f"--- block {b.number} ({b.where}, {b.lang})", flush=True)
            for line in b.text.strip().splitlines():
                print(f"    {line}")
            command = ["bash", "-e", "-o", "pipefail", "-c", b.text] if b.lang == "bash" \
                else [sys.executable, "-"]
            t0 = time.perf_counter()
            # its own process group, so a timeout stops the commands the block started too
            proc = subprocess.Popen(command, cwd=work, env=env, text=True, start_new_session=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            try:
                stdout, stderr = proc.communicate(b.text if b.lang == "python" else None,
                                                  timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                print(f"FAILED: block {b.number} ({b.where}) ran over {args.timeout:g} s")
                status = 1
                break
            output = (stdout + stderr).rstrip()
            if output:
                print("\n".join("    | " + line for line in output.splitlines()[-40:]))
            print(f"    ({time.perf_counter() - t0:.0f} s, exit {proc.returncode})", flush=True)
            ran += 1
            if proc.returncode != 0:
                print(f"FAILED: block {b.number} ({b.where}) exited {proc.returncode}")
                status = 1
                break
            if b.lang == "python" and not stdout.strip():
                print(f"FAILED: python block {b.number} ({b.where}) printed nothing: as "
                      "a script it shows the reader nothing")
                status = 1
                break
    finally:
        total = time.perf_counter() - started
        print(f"docs-check: {'passed' if status == 0 else 'FAILED'}: {ran} blocks ran, {skipped} "
              f"skipped, {total / 60:.1f} min")
        if not args.keep and not args.workdir and status == 0:
            shutil.rmtree(work, ignore_errors=True)
        elif status:
            print(f"docs-check: the folder is kept for a look: {work}")
        shutil.rmtree(bin_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
