"""`lab run --jobs`: how work is split (pure parts of meshpath.lab.parallel)."""

from __future__ import annotations

import pytest

from meshpath.errors import BadInputError
from meshpath.lab.parallel import COST_HINT, default_jobs, instance_names, longest_first
from meshpath.lab.scenarios import ALL_NAMES


def test_default_jobs_follow_the_cpus_at_least_two_at_most_the_scenarios() -> None:
    assert default_jobs(9, cpus=1) == 2
    assert default_jobs(9, cpus=2) == 2
    assert default_jobs(9, cpus=8) == 8
    assert default_jobs(3, cpus=8) == 3
    assert default_jobs(1, cpus=8) == 1


def test_instance_names_derive_valid_ids_from_the_given_one() -> None:
    assert instance_names(3, "ci", set()) == ["ci", "ci1", "ci2"]
    assert instance_names(2, "abcdefgh", set()) == ["abcdefgh", "abcdefg1"]
    with pytest.raises(BadInputError, match="lab instance"):
        instance_names(2, "../x", set())


def test_random_instance_names_are_distinct_and_avoid_those_taken() -> None:
    names = instance_names(5, None, {"0000"})
    assert len(set(names)) == 5 and "0000" not in names


def test_longest_first_hands_out_the_known_long_scenarios_first_stably() -> None:
    order = longest_first(ALL_NAMES)
    assert sorted(order) == sorted(ALL_NAMES)
    hinted = [n for n in order if n in COST_HINT]
    assert order[: len(hinted)] == hinted
    assert [n for n in order if n not in COST_HINT] == [n for n in ALL_NAMES if n not in COST_HINT]


@pytest.mark.parametrize("jobs", ["0", "17", "-1"])
def test_lab_run_refuses_a_bad_jobs_count_in_one_line(
    jobs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshpath.cli import main

    assert main(["lab", "run", "all", "--jobs", jobs]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--jobs {jobs}" in err and "\n" not in err and "Traceback" not in err
