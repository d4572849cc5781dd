"""Evaluation: judge a model's answers against a baseline's and summarize the verdicts.

`stats` turns per-prompt judgments (P(A better) averaged over both presentation orders, answer
lengths, judge consistency) into win/lose/tie rates, AlignEZ's Net Win% and Relative
Improvement%, a length-controlled win rate in AlpacaEval 2's spirit, and bootstrap intervals;
`report` writes those figures as a README with plots. Both are pure: no model, no I/O beyond the
report folder.
"""
