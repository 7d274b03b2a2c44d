"""Each job of a sweep as a training or the evaluation of another job's training."""

from __future__ import annotations

from ipe_lightning.results import write_record
from ipe_lightning.sweep.resume import Decision
from ipe_lightning.sweep.steps import plan_steps, plan_summary
from ipe_lightning.sweep.store import RunStore
from tests.runtime.test_lock import hold_in_another_process


def decisions(*names_actions):
    return [Decision(name, action, "why") for name, action in names_actions]


def finished_training(job_dir):
    write_record(job_dir, {"status": "finished", "mode": "train", "metrics": {}})
    (job_dir / "checkpoints").mkdir(parents=True)
    (job_dir / "checkpoints" / "last.ckpt").write_bytes(b"weights")


def test_the_first_job_of_an_identity_trains_and_the_later_ones_evaluate_it(tmp_path):
    identities = {"t1_liif": "a", "t1_ipe": "b", "t4_liif": "a", "t4_ipe": "b", "t4_pe": "c"}
    steps = plan_steps(
        decisions(
            ("t1_liif", "run"),
            ("t1_ipe", "resume"),
            ("t4_liif", "run"),
            ("t4_ipe", "run"),
            ("t4_pe", "skip"),
        ),
        identities,
        tmp_path,
        RunStore(tmp_path / "store"),
    )
    assert [s.step for s in steps] == [
        "train",
        "resume",
        "reuse+evaluate",
        "reuse+evaluate",
        "skip",
    ]
    assert steps[2].source == tmp_path / "t1_liif" and steps[3].source == tmp_path / "t1_ipe"
    assert plan_summary(steps) == "2 to train, 2 to evaluate only, 1 finished"


def test_a_training_of_another_sweep_is_evaluated_if_finished_and_left_alone_if_running(tmp_path):
    store = RunStore(tmp_path / "store")
    done, running = tmp_path / "table1" / "t1_liif", tmp_path / "table1" / "t1_rdn"
    finished_training(done)
    store.register("a", done, {})
    store.register("b", running, {})
    holder = hold_in_another_process(running, "run")
    try:
        steps = plan_steps(
            decisions(("t4_liif", "run"), ("t2_rdn", "run"), ("t4_pe", "run")),
            {"t4_liif": "a", "t2_rdn": "b", "t4_pe": "c"},
            tmp_path / "table4",
            store,
        )
    finally:
        holder.kill()
        holder.wait()
    assert [s.step for s in steps] == ["reuse+evaluate", "held", "train"]
    assert steps[0].source == done
    assert f"pid {holder.pid}" in steps[1].reason
    assert plan_summary(steps) == "1 to train, 1 to evaluate only, 0 finished, 1 run elsewhere"
    # its holder gone and unfinished: the training is this sweep's to do
    again = plan_steps(decisions(("t2_rdn", "run")), {"t2_rdn": "b"}, tmp_path / "table4", store)
    assert again[0].step == "train"
