"""Small input files the build tests write: a scripted run and a prompt set."""

from pathlib import Path

import polars as pl
import yaml


def script_file(tmp_path: Path, name: str = "script.yaml", **steps) -> str:
    """A `--backend scripted` script: step name -> texts (see pipelines.llms.load_script)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(steps))
    return str(path)


def prompts_file(tmp_path: Path, prompts: list[str], name: str = "prompts.jsonl") -> str:
    """A prompt set with a `prompt` column."""
    path = tmp_path / name
    pl.DataFrame({"prompt": prompts}).write_ndjson(path)
    return str(path)
