import json
import subprocess
import sys

from typer.testing import CliRunner

from selfpref.cli import app
from selfpref.data.store import BuildRecord, write_dataset
from tests.conftest import make_rows


def test_inspect_numbers(tmp_path):
    rows = make_rows(4)
    rows[3]["confidence"] = None
    rows[2]["method"], rows[2]["labeler"] = "sso", "principle:tiny"
    write_dataset(rows, tmp_path / "ds", BuildRecord(name="ds", method="sao"))
    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds"), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    chosen = sorted(len(r["chosen"]) for r in rows)  # 20, 25, 30, 35
    assert s["rows"] == 4
    assert s["lengths"]["chosen"] == {"min": chosen[0], "p50": chosen[2], "p90": chosen[3],
                                      "max": chosen[3]}
    assert s["chosen_longer_share"] == 1.0
    assert s["null_counts"]["confidence"] == 1 and s["null_counts"]["prompt"] == 0
    assert s["confidence"]["min"] == 0.2 and s["confidence"]["max"] == 0.6
    assert s["by_method"] == {"sao": 3, "sso": 1}
    assert s["by_labeler"] == {"human": 3, "principle:tiny": 1}
    human = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")])
    assert "4 rows" in human.output and "chosen longer than rejected: 100.0%" in human.output


def test_bad_folder_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "selfpref.cli", "inspect", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "has no selfpref.json" in proc.stderr
    assert "Traceback" not in proc.stderr
