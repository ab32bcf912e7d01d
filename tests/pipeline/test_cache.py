"""Stage cache: a stage runs once per key; a changed config or upstream key reruns it and what depends on it."""

from __future__ import annotations

from tokfilter.pipeline.cache import Stages


def test_stages_cache_and_invalidate(tmp_path):
    calls = []

    def stage(name, value):
        def fn():
            calls.append(name)
            return {"value": value}
        return fn

    def run_all(a_config, b_config):
        st = Stages(tmp_path, ["a", "b"], log=lambda message: None)
        st.run("a", a_config, [], stage("a", a_config))
        return st, st.run("b", b_config, ["a"], stage("b", b_config))

    run_all(1, 2)
    assert calls == ["a", "b"]
    st, result = run_all(1, 2)
    assert calls == ["a", "b"] and result == {"value": 2} and st.cached == ["a", "b"]
    run_all(1, 3)  # only b's config changed
    assert calls == ["a", "b", "b"]
    run_all(5, 3)  # a changed, so b (which reads a) reruns too
    assert calls == ["a", "b", "b", "a", "b"]


def test_killed_stage_reruns(tmp_path):
    st = Stages(tmp_path, ["a"], log=lambda message: None)

    def dies():
        raise KeyboardInterrupt

    try:
        st.run("a", {}, [], dies)
    except KeyboardInterrupt:
        pass
    assert not (tmp_path / ".stages" / "a.json").exists()
    assert Stages(tmp_path, ["a"], log=lambda m: None).run("a", {}, [], lambda: 7) == 7
