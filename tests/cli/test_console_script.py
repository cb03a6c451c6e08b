"""The real console script, end to end in subprocesses: the demo's refusal to wipe a folder it did
not make and an operator's round trip from chat to approval to audit (the reference demo itself is
tests/app/test_reference_cli.py's)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(script: CLI, home: Path) -> None:
    (home / "demo").mkdir()
    (home / "demo" / "precious.txt").write_text("keep me")
    r = script("demo")
    assert r.code == 1 and "was not made by agent-kit demo" in r.one_error_line()
    assert (home / "demo" / "precious.txt").exists()


def test_operator_round_trip_through_the_console_script(script: CLI) -> None:
    assert script("chat", "--thread", "s1", "--message", "Hi, I'm Jane Doe, zip 94107").code == 0
    turn = script("chat", "--thread", "s1", "--message", "Refund $80 on order 1001", "--json").json()
    assert turn["status"] == "paused"
    iid = turn["pending"][0]["interrupt_id"]
    bad = script("approve", "s1", "--interrupt", iid, "--as", "mallory")
    assert bad.code == 1 and "unknown approver 'mallory'" in bad.one_error_line()
    unnamed = script("approve", "s1", "--as", "lee")  # no terminal to confirm on: nothing is decided
    assert unnamed.code == 2 and "name the approval you decide" in unnamed.one_error_line()
    ok = script("approve", "s1", "--interrupt", iid, "--as", "lee", "--json")
    assert ok.code == 0 and ok.json()["status"] == "replied"
    assert '"order_id": 1001, "amount": 80.0' in ok.json()["reply"]


def test_output_piped_into_a_closed_reader_ends_without_a_traceback(home: Path) -> None:
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "agent-kit"
    proc = subprocess.Popen([str(exe), "--home", str(home), "pending"], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    assert proc.stdout is not None
    proc.stdout.close()  # like `agent-kit pending | head -0`
    _, stderr = proc.communicate(timeout=60)
    assert b"Traceback" not in stderr
    assert b"AttributeError" not in stderr
