"""Smoke test of benchmarks/bench_speculative_decoding.py on the tiny saved pipeline (random weights: the figures mean
nothing, the table's shape and bookkeeping do)."""

import pytest

from tests.testing_utils import REPO_ROOT, load_script


def test_prints_a_row_per_batch_size_and_decoding(pipeline_dir, capsys):
    script = load_script(REPO_ROOT / "benchmarks" / "bench_speculative_decoding.py")
    args = script.parse_args(
        ["--pipeline", str(pipeline_dir), "--batch_sizes", "1", "3", "--windows", "1", "4", "--repeats", "1"]
    )
    script.main(args)
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in row] for row in rows[1:]]  # after the header
    speculative = [
        "speculative_jacobi, window 1, 0 branches",  # a window under 3 has no branches: measured once
        "speculative_jacobi, window 4, 0 branches",
        "speculative_jacobi, window 4, 7 branches",
    ]
    assert [(row[0], row[1]) for row in rows] == [
        (batch, decoding) for batch in ("1", "3") for decoding in ("sequential", *speculative)
    ]
    for _, decoding, calls, tokens_per_call, seconds, speedup, call_cost in rows:
        # 16 tokens per image: one call each sequentially (and at window 1), at most 4 tokens per call otherwise.
        if "window 4" not in decoding:
            assert (float(calls), float(tokens_per_call)) == (16, 1)
        else:
            assert 4 <= float(calls) <= 16 and 1 <= float(tokens_per_call) <= 4
        assert float(seconds) > 0 and float(speedup) > 0
        # The speed-up is the calls saved over the cost of a call, both against sequential decoding (to the rounding of
        # the printed figures).
        assert float(speedup) == pytest.approx(16 / float(calls) / float(call_cost), rel=0.03, abs=0.015)
        if decoding == "sequential":
            assert float(call_cost) == 1


def test_guidance_reaches_every_decoding(pipeline_dir, capsys, monkeypatch):
    script = load_script(REPO_ROOT / "benchmarks" / "bench_speculative_decoding.py")
    calls = []
    original_call = script.VimPipeline.__call__

    def recording_call(pipeline, *args, **kwargs):
        calls.append((kwargs.get("decoding", "sequential"), kwargs["guidance_scale"]))
        return original_call(pipeline, *args, **kwargs)

    monkeypatch.setattr(script.VimPipeline, "__call__", recording_call)
    args = script.parse_args(
        ["--pipeline", str(pipeline_dir), "--batch_sizes", "2", "--windows", "4", "--branches", "0"]
        + ["--repeats", "1", "--guidance_scale", "3"]
    )
    script.main(args)
    assert "guidance_scale=3.0" in capsys.readouterr().out
    assert {decoding for decoding, _ in calls} == {"sequential", "speculative_jacobi"}
    assert {scale for _, scale in calls} == {3.0}
