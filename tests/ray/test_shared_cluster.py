"""Jobs sharing a Ray cluster share no file on its nodes: two at once keep their own task logs, and a
`ray_logs` folder another user left in the node's temporary folder does not fail them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pipelines.executors import RayExecutor

pytestmark = pytest.mark.slow


def announce(job: str):
    """A Datatrove step that logs which job it belongs to, slowly enough for two jobs to overlap."""

    def step(data, rank, world_size):
        import time

        from datatrove.utils.logging import logger

        logger.info(f"this is job {job}, task {rank}")
        time.sleep(3)
        return data

    return step


def executor(job: str, logs, node_tmp) -> RayExecutor:
    """One task of `job`; its Ray workers see `node_tmp` as the node's temporary folder (TMPDIR)."""
    return RayExecutor([announce(job)], tasks=1, logging_dir=str(logs), mem_per_cpu_gb=0.25,
                       ray_remote_kwargs={"runtime_env": {"env_vars": {"TMPDIR": str(node_tmp)}}})


def test_two_jobs_at_once_keep_their_own_task_logs(ray_local, tmp_path):
    node_tmp = tmp_path / "node-tmp"
    node_tmp.mkdir()
    jobs = {job: executor(job, tmp_path / job, node_tmp) for job in ("a", "b")}
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda e: e.run(), jobs.values()))
    for job, other in (("a", "b"), ("b", "a")):
        log = (tmp_path / job / "logs" / "task_00000.log").read_text()
        assert f"this is job {job}, task 0" in log and f"job {other}" not in log, log
    left = [p.name for p in node_tmp.iterdir() if p.name == "ray_logs" or p.name.startswith("datatrove-")]
    assert not left, f"the tasks left {left} in the node's temporary folder"


def test_ray_logs_left_by_another_user_does_not_fail_the_job(ray_local, tmp_path):
    node_tmp = tmp_path / "node-tmp"
    (node_tmp / "ray_logs").mkdir(parents=True)
    (node_tmp / "ray_logs" / "logs").write_text("")  # stops root too, who may write where others may not
    (node_tmp / "ray_logs").chmod(0o555)
    try:
        executor("c", tmp_path / "c", node_tmp).run()
    finally:
        (node_tmp / "ray_logs").chmod(0o755)
    assert "this is job c, task 0" in (tmp_path / "c" / "logs" / "task_00000.log").read_text()
    assert (tmp_path / "c" / "completions" / "00000").exists()
