"""`tailor experiments`: what the placements file declares, and errors an operator reads."""

from __future__ import annotations

from tests.support.flow import run_tailor, tailor_env


def test_list_shows_the_shipped_draft_experiment(tmp_path):
    result = run_tailor(tailor_env(tmp_path), "experiments", "list")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "homepage_policies" in result.stdout and "draft" in result.stdout
    assert "champion, rules_only, random" in result.stdout


def test_an_unknown_experiment_is_named(tmp_path):
    result = run_tailor(tailor_env(tmp_path), "experiments", "report", "nope")
    assert result.returncode == 1
    assert "no experiment 'nope'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
