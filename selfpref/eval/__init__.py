"""Evaluation: judge a model's answers against a baseline's and summarize the verdicts.

`run` answers held-out prompts with A and B (answer files, models, or A with an AlignEZ edit),
judges every pair in both orders through `selfpref.judges`, and writes an eval folder; `compare`
turns two eval folders against the same base into AlignEZ's Relative Improvement%. `stats` turns
per-prompt judgments into win/lose/tie rates, Net Win%, a length-controlled win rate in AlpacaEval
2's spirit, and bootstrap intervals; `report` writes those figures as a README with plots.
`stats` and `report` are pure: no model, no I/O beyond the report folder.
"""
