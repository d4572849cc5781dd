"""`selfpref card` and `selfpref push`: the data card and the Hub (registered by selfpref.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selfpref import SelfprefError
from selfpref.cli import app, console


@app.command()
def card(
    ref: str = typer.Argument(..., help="Dataset folder (its README.md and plots are rewritten)."),
    license: Optional[str] = typer.Option(None, help="License for the YAML header (unset: 'other')."),
) -> None:
    """Regenerate a dataset folder's data card (README.md, plots, separability)."""
    import shutil
    import tempfile

    from selfpref.datacards import card_writer
    from selfpref.store import DATA_FILE, read_record

    folder = Path(ref)
    if not folder.is_dir():
        raise SelfprefError(f"{ref}: `selfpref card` rewrites a local folder; download a Hub "
                            "dataset first or pass its folder")
    record = read_record(folder)
    import polars as pl

    # Write into a copy and swap the changed files in, so a crash never leaves half a card.
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        card_writer(license)(pl.scan_parquet(work / DATA_FILE), record, work)
        for rel in ["README.md", "selfpref.json", *[f"plots/{p.name}" for p in (work / "plots").glob("*.png")]]:
            (folder / rel).parent.mkdir(exist_ok=True)
            (work / rel).replace(folder / rel)
    console.print(f"wrote {folder}/README.md")


@app.command()
def push(
    folder: Path = typer.Argument(..., help="Dataset folder to upload."),
    repo: str = typer.Argument(..., help="Hub dataset repo, org/name."),
    private: bool = typer.Option(False, help="Create the repo private."),
    dataset_version: Optional[str] = typer.Option(None, "--version", help="Tag to create (default: the folder's version)."),
) -> None:
    """Upload a dataset folder in one commit and tag it with its version (token: HF_TOKEN or login)."""
    from selfpref.hub import push_folder
    from selfpref.store import read_record

    record = read_record(folder)
    url = push_folder(folder, repo, version=dataset_version or record.version, private=private)
    console.print(f"pushed {folder} to {repo}@v{dataset_version or record.version}: {url}")
