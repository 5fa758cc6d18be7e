"""The paper-table template through the API: plan, queue, table and analysis of evaluations."""

from __future__ import annotations

from sqlalchemy import select

from backend.db.models import Run, Sweep
from backend.db.repositories import add_evaluation
from backend.db.session import session_scope
from tests.backend.conftest import Team

TINY = {
    "model": "builtin:tiny-random",
    "methods": ["base", "sft", "opsd", "ema", "unisd_star"],
    "benchmarks": ["scienceqa", "mbpp"],
    "seeds": 2,
    "max_steps": 2,
    "max_eval_examples": 4,
}


def test_paper_table_template_queues_every_cell(any_team: Team) -> None:
    team = any_team
    body = {"name": "paper", "template": "paper-table", "template_options": TINY}
    preview = team.post("alice", "/sweeps/preview", json=body).json()
    # base is evaluated once per benchmark; the four trained rows run each seed
    assert preview["run_count"] == 2 + 4 * 2 * 2
    assert preview["design"] == "template"

    created = team.post("alice", "/sweeps", json=body)
    assert created.status_code == 201, created.json()
    sweep = created.json()
    assert sweep["template"] == "paper-table" and sweep["design"] == "template"
    assert sweep["template_options"]["methods"] == TINY["methods"]
    assert [f["name"] for f in sweep["factors"]] == ["method", "benchmark"]
    runs = team.get("vera", "/runs", params={"sweep_id": sweep["id"], "limit": 100}).json()
    by_cell = {(r["preset"], r["config"]["data"]["benchmark"], r["seed"]): r for r in runs["items"]}
    assert len(by_cell) == 18
    star = by_cell[("unisd_star", "mbpp", 1)]["config"]
    assert star["data"]["eval_benchmarks"] == ["mbpp", "humaneval"]
    assert star["train"]["max_steps"] == 2 and star["data"]["max_eval_examples"] == 4
    assert star["ema"]["enabled"] and star["agreement"]["enabled"]
    assert by_cell[("sft", "scienceqa", 0)]["config"]["data"]["eval_benchmarks"] == [
        "scienceqa",
        "gpqa",
    ]
    assert ("base", "scienceqa", 1) not in by_cell


def test_template_table_and_analysis_from_evaluations(team: Team) -> None:
    options = {**TINY, "methods": ["base", "sft", "opsd"], "benchmarks": ["scienceqa"]}
    sweep = team.post(
        "alice", "/sweeps", json={"template": "paper-table", "template_options": options}
    ).json()
    empty = team.get("vera", f"/sweeps/{sweep['id']}/analysis").json()
    assert empty["paper_table"] is None and "evaluated" in empty["note"]

    scores = {"base": 0.30, "sft": 0.32, "opsd": 0.40}
    drift = {"base": 1.2, "sft": 2.5, "opsd": 1.4}
    with session_scope(team.url) as session:
        for run in session.scalars(select(Run).where(Run.sweep_id == sweep["id"])):
            method = run.design_point["method"]
            jitter = 0.01 * run.seed
            for bench, shift in (("scienceqa", 0.0), ("gpqa", -0.05)):
                value = scores[method] + shift + (0 if method == "base" else jitter)
                add_evaluation(session, run.id, bench, "score", value, n=100)
                add_evaluation(session, run.id, bench, "retention_ppl", drift[method] + jitter)
    table = team.get("vera", f"/sweeps/{sweep['id']}/table").json()
    assert len(table["rows"]) == 2 * (1 + 2 * 2)
    assert {r["benchmark"] for r in table["rows"]} == {"scienceqa", "gpqa"}

    analysis = team.get("vera", f"/sweeps/{sweep['id']}/analysis").json()
    paper = analysis["paper_table"]
    assert paper["methods"] == ["base", "sft", "opsd"]
    assert paper["columns"] == ["scienceqa", "gpqa", "overall"] and paper["ood"] == ["gpqa"]
    gain = next(g for g in paper["gains"] if g["method"] == "opsd" and g["benchmark"] == "overall")
    assert abs(gain["gain"] - (0.10 + 0.005)) < 1e-9 and gain["interval"] == "paired"
    retention = {r["method"]: r["mean"] for r in paper["retention"]}
    assert retention["sft"] > retention["opsd"] > retention["base"]
    verdicts = [f["verdict"] for f in paper["findings"]]
    assert verdicts[0] == "holds"  # SFT drifts more than OPSD on both seeds, by a constant
    assert analysis["n_runs"] == 5 and analysis["n_missing"] == 0


def test_template_input_errors_name_the_field(team: Team) -> None:
    cases = [
        ({"template": "paper-table", "template_options": {**TINY, "methods": ["nope"]}},
         "template_options.methods"),
        ({"template": "paper-table", "template_options": {**TINY, "budget": "huge"}},
         "template_options.budget"),
        ({"template": "paper-table", "factors": [{"name": "ema"}]}, "factors"),
        ({"template": "other"}, "template"),
        ({"template_options": TINY, "factors": [{"name": "ema"}]}, "template_options"),
        ({"template": "paper-table", "template_options": {**TINY, "seeds": 0}},
         "template_options.seeds"),
    ]  # fmt: skip
    for body, field in cases:
        response = team.post("alice", "/sweeps", json=body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        paths = [f["path"] for f in error["fields"]]
        assert any(p.startswith(field) or field in error["message"] for p in paths), (
            body,
            error,
        )
    with session_scope(team.url) as session:
        assert session.scalar(select(Sweep.id)) is None
