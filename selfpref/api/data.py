"""Dataset functions: ``load``, ``import_data``, ``inspect``, ``card`` and ``push``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_push_target, prepare_output
from selfpref.api.handles import Dataset
from selfpref.data.funnel import funnel_text


def load(ref: str | Path) -> Dataset:
    """A dataset folder, Hub id or ``id@version`` as a :class:`Dataset` (a Hub revision is
    downloaded once into the cache)."""
    from selfpref.data.refs import resolve_folder
    from selfpref.data.store import check_dataset_folder, read_record

    folder = resolve_folder(ref)
    check_dataset_folder(folder)
    return Dataset(path=folder, ref=str(ref), record=read_record(folder))


def refuse_empty(ref: str, rows: int, record: Any, what: str) -> None:
    """One line for a command that needs rows, on a dataset that has none."""
    if rows == 0:
        raise SelfprefError(f"{ref} has 0 rows ({funnel_text(record.funnel)}): nothing to "
                            f"{what}; rebuild it with more prompts or looser filters")


def inspect(ref: str | Path) -> dict[str, Any]:
    """What `selfpref inspect` prints: rows, nulls, lengths, chosen-longer share, confidence."""
    return load(ref).summary()


def import_data(ref: str, output: str | Path, *, split: str | None = None, layout: str = "auto",
                seed: int = 0, name: str | None = None, generator: str = "unknown",
                labeler: str = "human", version: str = "0.1.0", overwrite: bool = False,
                notify: Callable[[str], None] | None = print) -> Dataset:
    """Map preference data selfpref did not make onto the record contract.

    Args:
        ref: a file (parquet/jsonl/json/csv), a folder of them, or a Hub dataset id.
        output: the dataset folder to write.
        split: a Hub dataset's split, or the files of a folder whose names contain it.
        layout: ``auto`` (detected from the columns) or one of trl, hh, sharegpt, openai,
            ultrafeedback_raw, distilabel.
        seed: seed of the rejected answer drawn from rated answers (recorded).
        name: the dataset's name (default: the folder's name).
        generator: the model that wrote the answers (the ``generator`` column).
        labeler: how the labels were made (the ``labeler`` column).
        version: the dataset's version.
        overwrite: replace what is at ``output`` (a dataset, or any file or folder: its
            contents are deleted).
        notify: where the summary lines go (``None``: nowhere).
    """
    from selfpref.data.importer import BINARIZED_LAYOUTS, detect_layout, import_rows, read_source
    from selfpref.data.layouts import LAYOUTS
    from selfpref.data.store import BuildRecord, parse_version, write_dataset

    if layout != "auto" and layout not in LAYOUTS:
        raise SelfprefError(f"--layout {layout!r}: use one of auto, {', '.join(LAYOUTS)}")
    parse_version(version)
    out = prepare_output(output, overwrite)
    source = read_source(ref, split)
    chosen_layout = detect_layout(source) if layout == "auto" else layout
    rows, dropped = import_rows(source, generator=generator, labeler=labeler, layout=chosen_layout,
                                seed=seed)
    binarized = chosen_layout in BINARIZED_LAYOUTS
    parameters = {"source": ref, "split": split, "layout": chosen_layout,
                  **({"seed": seed} if binarized else {})}
    funnel = [{"step": "import", "parameters": parameters, "input": source.height,
               "kept": rows.height, "dropped": dropped}]
    record = BuildRecord(name=name or out.name, method="import", version=version,
                         models={"generator": generator}, parameters=parameters,
                         seed=seed if binarized else None, funnel=funnel,
                         parent={"id": ref, "version": split or "", "fingerprint": ""})
    write_dataset(rows, out, record, overwrite=overwrite)
    if notify:
        notify(f"imported {rows.height} of {source.height} rows ({chosen_layout} layout) into {out}")
        for reason, count in sorted(dropped.items()):
            notify(f"  dropped {count}: {reason}")
    return Dataset(path=out, ref=str(out), record=record)


def card(ref: str | Path, *, license: str | None = None, separability: bool = True) -> Path:
    """Rewrite a local dataset folder's data card (README.md, plots, separability).

    The card is written in a copy and the changed files swapped in, so a crash never leaves half
    a card.

    Args:
        ref: the dataset folder (its README.md and plots are rewritten).
        license: the license for the card's YAML header (unset: ``other``).
        separability: run the separability probe (off: the card says so).

    Returns:
        The card's path.
    """
    import shutil
    import tempfile

    import polars as pl

    from selfpref.data.atomic import replace_file
    from selfpref.data.refs import parse_ref
    from selfpref.data.store import DATA_FILE, read_folder
    from selfpref.datacards import CACHE_FILE, card_writer

    parsed = parse_ref(str(ref))
    if parsed.path is None or not parsed.path.is_dir():
        raise SelfprefError(f"{ref}: `selfpref card` rewrites a local folder; download a Hub "
                            "dataset first or pass its folder")
    folder = parsed.path
    df, record = read_folder(folder)
    refuse_empty(str(ref), df.height, record, "write a card about")
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        card_writer(license, separability=separability)(pl.scan_parquet(work / DATA_FILE), record, work)
        cache = [CACHE_FILE] if (work / CACHE_FILE).is_file() else []
        plots = [f"plots/{p.name}" for p in (work / "plots").glob("*.png")]
        for rel in ["README.md", "selfpref.json", *cache, *plots]:
            (folder / rel).parent.mkdir(exist_ok=True)
            replace_file(work / rel, folder / rel)  # fsynced, then renamed
    return folder / "README.md"


def push(folder: str | Path, repo: str, *, private: bool = False, version: str | None = None) -> str:
    """Upload a dataset folder in one commit and tag it ``v<version>``; returns the commit's URL.
    The token comes from HF_TOKEN or ``huggingface-cli login``.

    Args:
        folder: the dataset folder to upload.
        repo: the Hub dataset repo, ``org/name``.
        private: create the repo private (an existing public repo is refused: a push never
            changes visibility).
        version: the tag to create (default: the folder's version).
    """
    from selfpref.data.hub import push_folder
    from selfpref.data.store import parse_version, read_folder

    check_push_target(repo, "push")
    _, record = read_folder(folder)
    version = version or record.version
    parse_version(version)
    return push_folder(Path(folder), repo, version=version, private=private)
