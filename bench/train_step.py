"""Seconds per step and peak memory of IPO, SimPO and SSO on the same batch, embedded model.

Each method runs in its own process (peak RSS is per process). Goals: SSO <= 3.0x the IPO step
time (it scores three pairs instead of one) and <= 1.5x its memory.

    python bench/train_step.py [steps] [batch_size]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _peak import peak_rss_mb  # bench/ is on sys.path when a bench runs


def make_dataset(folder: Path, n: int) -> None:
    from selfpref.data.schema import make_row
    from selfpref.data.store import BuildRecord, write_dataset

    answer = "Here is a helpful answer with a few concrete steps and a short example. " * 4
    rows = [make_row(f"How do I get better at skill number {i}?", answer + f"({i})",
                     "I don't know. " * 6 + f"({i})", method="sso", generator="bench",
                     labeler="principle:bench", feature="Helpfulness",
                     principle_chosen="Be helpful and give actionable steps.",
                     principle_rejected="Be vague and unhelpful.",
                     original="Practice regularly. " * 6 + f"({i})") for i in range(n)]
    write_dataset(rows, folder, BuildRecord(name="bench", method="sso"))


def child(method: str, data: str, steps: int, batch: int) -> None:
    from selfpref.trainers.run import train

    with tempfile.TemporaryDirectory() as out:
        summary = train(method, data, out, max_steps=steps, per_device_train_batch_size=batch,
                        max_length=256, learning_rate=1e-6, seed=0)
    print(json.dumps({"method": method, "seconds_per_step": summary["seconds"] / steps,
                      "peak_rss_mb": peak_rss_mb()}))



def main(steps: int = 3, batch: int = 4) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_dataset(data, steps * batch)
        results = {}
        for method in ("ipo", "simpo", "sso"):
            proc = subprocess.run([sys.executable, __file__, "--child", method, str(data), str(steps),
                                   str(batch)], capture_output=True, text=True)
            if proc.returncode:
                print(f"{method}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = results[method]
            print(f"{method:6s} {r['seconds_per_step']:.2f} s/step  peak RSS {r['peak_rss_mb']:,.0f} MB")
        if "ipo" in results and "sso" in results:
            i, s = results["ipo"], results["sso"]
            print(f"SSO / IPO: time {s['seconds_per_step'] / i['seconds_per_step']:.2f}x (goal <= 3.0), "
                  f"memory {s['peak_rss_mb'] / i['peak_rss_mb']:.2f}x (goal <= 1.5)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main(*[int(a) for a in sys.argv[1:]])
