"""README.md for a dataset folder: a YAML header the Hub accepts, then the record in prose."""

from __future__ import annotations

import json
from typing import Any

from selfpref import __version__
from selfpref.data.store import DATA_FILE, BuildRecord
from selfpref.datacards.sections import statistic_rows, top_repeats

PAPERS = {
    "sao": ("SAO", "Aligning Large Language Models via Fully Self-Synthetic Data",
            "persona prompts, two sampled answers, the same model judging the pair in both orders"),
    "sso": ("SSO", "Aligning Large Language Models via Self-Steering Optimization",
            "answers steered by a good and a bad principle of one feature, plus the plain answer y°"),
    "alignez": ("AlignEZ", "Is Free Self-Alignment Possible?",
                "answers conditioned on self-described helpful and harmful characteristics"),
    "selfee": ("SELFEE", "Aligning Large Language Models with Self-generated Preference Data",
               "two samples labelled by the implicit reward of the policy against its reference"),
    "import": ("imported", "—", "preference data selfpref did not make, mapped onto its contract"),
}


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def header(record: BuildRecord, rows: int, license: str | None) -> str:
    import yaml

    data = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILE}]}],
        "license": license or "other",
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "preference", "dpo", "selfpref", record.method],
        "size_categories": [size_category(rows)],
        "pretty_name": record.name,
    }
    return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # a "|" inside a cell (labelers such as logit-reward:a|b) would split the column
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def separability_text(sep: dict[str, Any]) -> str:
    """The card's paragraph on the probe: accuracy, its 95% interval, the sample it came from."""
    low, high = sep["ci95"]
    of = f" of {sep['of']:,}" if sep.get("of") else ""
    reuse = (f" Embeddings: {sep['reused']} of the sample's {2 * sep['pairs']} answers came from "
             f"this folder's or its parent's `separability.npz`; {sep['embedded']} texts were "
             "embedded for this card (the sample's and a few spare pairs', kept in "
             "`separability.npz` so that a filtered child rarely embeds anything)."
             if "reused" in sep else "")
    return (
        f"A logistic regression on {sep.get('embedder', 'all-MiniLM-L6-v2')} embeddings (the first "
        f"{sep.get('max_tokens', 256)} word pieces of each answer) tells chosen from rejected with "
        f"**{sep['accuracy']:.1%}** accuracy, **95% interval {low:.1%} to {high:.1%}** "
        f"({sep['folds']}-fold cross-validation, both answers of a pair in the same fold, on a "
        f"sample of {sep['pairs']:,}{of} pairs: the distinct pairs of smallest sha256). The "
        f"interval is the Wilson interval of the {2 * sep['pairs']:,} held-out predictions: where "
        "the accuracy of the whole dataset is likely to lie given this sample; a small sample "
        "makes it wide. AlignEZ (A.6.2) finds that the further this is above 50%, the more "
        f"likely training on the data improves the model.{reuse}\n")


def render(record: BuildRecord, summary: dict[str, Any], sep: dict[str, Any], plots: list[str],
           license: str | None) -> str:
    short, title, how = PAPERS.get(record.method, (record.method, "—", ""))
    repo = f"ORG/{record.name}"
    version = f"v{record.version}"
    parts = [header(record, summary["rows"], license), f"# {record.name}\n"]
    parts.append(
        f"A preference dataset of {summary['rows']:,} pairs (prompt, chosen, rejected) made by "
        f"[selfpref](https://pypi.org/project/selfpref/) {record.selfpref_version} with the "
        f"**{short}** method ({title}): {how}. Columns follow selfpref's preference-record "
        "contract; method columns are added, never renamed.\n")
    if not license:
        parts.append("License: not given at build time (`other`); set one with `--license`.\n")
    parts.append("## Provenance\n")
    prov: list[list[Any]] = [["dataset version", record.version], ["fingerprint (sha256 of the parquet)", f"`{record.fingerprint}`"],
            ["created", record.created_at], ["selfpref", record.selfpref_version],
            ["seed", record.seed]]
    prov += [[f"model: {k}", f"`{v}`"] for k, v in record.models.items()]
    prov += [["labeler", f"`{k}` ({v} rows)"] for k, v in summary["by_labeler"].items()]
    if record.parent:
        p = record.parent
        prov.append(["parent", f"`{p.get('id')}` version {p.get('version')} (`{p.get('fingerprint')}`)"])
    parts.append(_table(["", ""], prov) + "\n")
    if record.parameters:
        params = [[k, f"`{json.dumps(v, default=str)}`"] for k, v in sorted(record.parameters.items())]
        parts.append("### Parameters\n\n" + _table(["parameter", "value"], params) + "\n")
    if record.funnel:
        rows = [[s["step"], s["input"], s["kept"],
                 ", ".join(f"{k}: {v}" for k, v in s["dropped"].items()) or "—"] for s in record.funnel]
        parts.append("## Funnel\n\nEvery row a step could not use, counted with its reason.\n\n"
                     + _table(["step", "input", "kept", "dropped (reason: rows)"], rows) + "\n")
    parts.append("## Statistics\n")
    lengths = [[c, *(summary["lengths"][c][k] for k in ("min", "p50", "p90", "max"))]
               for c in ("prompt", "chosen", "rejected")]
    parts.append(_table(["characters", "min", "p50", "p90", "max"], lengths) + "\n")
    stats = [["rows", summary["rows"]], ["chosen longer than rejected", _pct(summary["chosen_longer_share"])],
             ["judge consistency (same verdict in both orders)", _pct(summary["judge_consistency"])],
             ["prompt duplicate rate", _pct(summary["prompt_duplicate_rate"])]]
    stats += statistic_rows(record.stats, summary)
    conf = summary["confidence"]
    if conf:
        stats.append(["confidence min / p50 / p90 / max",
                      " / ".join(f"{conf[k]:.3f}" for k in ("min", "p50", "p90", "max"))])
    parts.append(_table(["statistic", "value"], stats) + "\n")
    if repeats := top_repeats(record.stats):
        parts.append(repeats)
    if record.stats.get("judge_bias"):
        from selfpref.judges.bias import bias_markdown

        parts.append("### Judge bias\n\nFrom the judge's own verdicts on these pairs (both "
                     "orders); see the docs page \"Choosing a judge\".\n\n"
                     + bias_markdown(record.stats["judge_bias"]))
    if (usage := record.stats.get("usage")) and (usage.get("prompt_tokens") or usage.get("requests_sent")):
        from selfpref.pipelines.accounting import summary_lines

        parts.append("### What it cost\n\nTokens as the endpoint's `usage` reported them (a local "
                     "model: its tokenizer's count), requests sent and retried.\n\n"
                     + "".join(f"- {line.strip()}\n" for line in summary_lines(usage)) + "\n")
    parts.append("### Label separability\n")
    if "accuracy" in sep:
        parts.append(separability_text(sep))
    else:
        parts.append(f"Not computed: {sep.get('skipped')}.\n")
    if plots:
        parts.append("## Plots\n\n" + "\n".join(f"![{p}]({p})" for p in plots) + "\n")
    parts.append(f"""## Usage

```python
from datasets import load_dataset
ds = load_dataset("{repo}", revision="{version}", split="train")
```

```python
import polars as pl
df = pl.scan_parquet("{record.name}/data/*.parquet").collect()        # a local copy

from huggingface_hub import HfFileSystem                              # on the Hub
fs = HfFileSystem()
with fs.open("datasets/{repo}@{version}/{DATA_FILE}", "rb") as f:
    df = pl.read_parquet(f)
```

```bash
selfpref train simpo --dataset {repo}@{version} --output-dir out/model
```
""")
    if record.command:
        parts.append(f"## Reproduce\n\n```bash\n{record.command}\n```\n")
    parts.append(f"<sub>Card written by selfpref {__version__}.</sub>\n")
    return "\n".join(parts)
