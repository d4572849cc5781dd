"""Which prompts each iteration of `selfpref iterate` answers, and what was set aside on the way.

Iterations see disjoint prompts. SSO §3.1 splits its prompt set 1:1:1 over its three iterations
(the default: equal parts, ``--num-prompts`` caps each). SELFEE §5.1 divides its prompts "into
subsets of 8K, 20K, and 30K samples ... for the iteration stages 1, 2, and 3"
(``--prompts-per-iteration 8000,20000,30000``), and SELFEE §4.1 asks X_i ∩ X_j = ∅ for all
j = 0, ..., i-1, where X_0 is the seed set's prompts (its footnote 2): with ``--seed-data``
every prompt of the seed set is taken out before the split. Each of these steps is counted in the loop's
prompt funnel (``iterate.json``'s ``prompt_funnel`` and every iteration's build stats), in the
shape of a dataset's funnel: step, input, kept, dropped by reason.
"""

from __future__ import annotations

import random
from typing import Any

from selfpref import SelfprefError

SEED_STEP = "exclude_seed_prompts"  # SELFEE §4.1: X_i ∩ X_0 = ∅


def _distinct(prompts: list[Any]) -> tuple[list[str], dict[str, Any]]:
    texts = [p.strip() for p in prompts if isinstance(p, str) and p.strip()]
    unique = list(dict.fromkeys(texts))
    dropped = {k: v for k, v in (("empty", len(prompts) - len(texts)),
                                 ("duplicate", len(texts) - len(unique))) if v}
    return unique, {"step": "distinct_prompts", "input": len(prompts), "kept": len(unique),
                    "dropped": dropped}


def prompt_plan(prompts: list[Any], parts: int, *, seed: int, per_part: int | None = None,
                sizes: list[int] | None = None, minimum: int = 1,
                exclude: list[Any] | None = None) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Disjoint prompt sets, one per iteration, and the funnel that led to them.

    The distinct prompts (stripped; empty and repeated ones counted), less those in ``exclude``
    (the seed set's), are shuffled once with ``seed`` and cut in order: into ``sizes`` when
    given (SELFEE §5.1), else into equal parts of at most ``per_part`` (SSO §3.1).
    """
    unique, first = _distinct(prompts)
    funnel = [first]
    if exclude is not None:
        seen = {p.strip() for p in exclude if isinstance(p, str)}
        rest = [p for p in unique if p not in seen]
        funnel.append({"step": SEED_STEP, "input": len(unique), "kept": len(rest),
                       "dropped": {"in_seed_set": len(unique) - len(rest)} if len(rest) < len(unique) else {}})
        unique = rest
    random.Random(seed).shuffle(unique)
    where = (f" ({funnel[1]['dropped']['in_seed_set']} of them are --seed-data prompts, which "
             "iterations never reuse: SELFEE §4.1, X_i ∩ X_0 = ∅)" if exclude is not None
             and funnel[1]["dropped"] else "")
    need = max(minimum, 1)
    if sizes is not None:
        small = [s for s in sizes if s < need]
        if small:
            raise SelfprefError(f"--prompts-per-iteration {','.join(map(str, sizes))}: each iteration "
                                f"needs {need} or more prompts (its filters need {need} to keep any pair)")
        if sum(sizes) > len(unique):
            raise SelfprefError(f"--prompts-per-iteration {','.join(map(str, sizes))} needs "
                                f"{sum(sizes)} distinct prompts, --prompts has {len(unique)} to split"
                                f"{where}: give more prompts or smaller sets")
        cuts = list(sizes)
    else:
        size = len(unique) // parts
        if per_part:
            size = min(size, per_part)
        if size == 0 or size < minimum:
            cap = f" (--num-prompts {per_part} caps each)" if per_part and per_part < need else ""
            raise SelfprefError(f"--prompts has {len(unique)} distinct prompts for {parts} iterations"
                                f"{where}, {size} per iteration{cap}: each iteration needs its own "
                                f"{need} or more (its filters need {need} to keep any pair), so give "
                                f"at least {need * parts} prompts or fewer --iterations")
        cuts = [size] * parts
    splits, start = [], 0
    for n in cuts:
        splits.append(unique[start : start + n])
        start += n
    funnel.append({"step": "split_per_iteration", "input": len(unique), "kept": start,
                   "dropped": {"unused": len(unique) - start} if start < len(unique) else {},
                   "per_iteration": cuts})
    return splits, funnel


def split_prompts(prompts: list[Any], parts: int, per_part: int | None, seed: int,
                  minimum: int = 1) -> list[list[str]]:
    """Disjoint prompt sets, one per iteration: shuffled once, cut into equal parts (SSO §3.1)."""
    return prompt_plan(prompts, parts, seed=seed, per_part=per_part, minimum=minimum)[0]


def funnel_summary(funnel: list[dict[str, Any]]) -> str:
    """The prompt funnel in the words of every other funnel (``data.funnel.funnel_text``)."""
    from selfpref.data.funnel import funnel_text

    return funnel_text(funnel)
