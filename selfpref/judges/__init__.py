"""Pairwise judges: reading and producing verdicts on two answers to one prompt."""
