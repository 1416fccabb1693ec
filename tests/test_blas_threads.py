"""Tasks are built, like chains are run, with one BLAS thread (engine.unit): the same bits on
any machine, and no thread contention in per-replicate preprocessing (a per-replicate PCA of
digits ran 100x slower with two BLAS threads on a busy machine; issue 13)."""

from threadpoolctl import threadpool_info, threadpool_limits

from modelcollapse.config import Study
from modelcollapse.engine import unit


def test_tasks_are_built_with_one_blas_thread(monkeypatch):
    seen = []
    entry_type = type(Study.model_validate({"name": "t", "task": "gaussian"}).tasks[0])
    build = entry_type.build

    def spy(self, streams):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return build(self, streams)

    monkeypatch.setattr(entry_type, "build", spy)
    study = Study.model_validate({"name": "t", "task": "gaussian", "n_seeds": 2,
                                  "n_iterations": 2})
    with threadpool_limits(limits=2, user_api="blas"):  # around it: more than one thread
        unit.build_task(study, 0)
    assert seen == [{1}]
