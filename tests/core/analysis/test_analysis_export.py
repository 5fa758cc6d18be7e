"""CSV and LaTeX exports: round trips and compile-shaped LaTeX."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from unisd_core.analysis import effects_for_paper, to_csv, to_latex, write_table
from unisd_core.analysis.export import latex_escape


def _assert_compile_shaped(tex: str, n_columns: int) -> None:
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"unbalanced \\end{{{name}}}"
    assert not stack, f"unclosed environments: {stack}"
    unescaped = re.sub(r"\\[{}]", "", tex)
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    rules = [
        line
        for line in tex.splitlines()
        if line.strip() in (r"\toprule", r"\midrule", r"\bottomrule")
    ]
    assert rules == [r"\toprule", r"\midrule", r"\bottomrule"]
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0]
    for line in body.splitlines():
        if line.endswith(r"\\"):
            assert len(re.findall(r"(?<!\\)&", line)) == n_columns - 1, line


def test_latex_is_compile_shaped_and_escaped() -> None:
    frame = pd.DataFrame(
        {
            "term": ["agreement", "feature_matching:clipping", "50% & $x$ #1 {a} ~^\\"],
            "estimate": [1.23456, np.nan, -0.5],
            "n": [10, 20, 30],
            "pareto": [True, False, True],
        }
    )
    tex = to_latex(frame, caption="Effects on pass@1 (95% CI)", label="tab:effects", digits=2)
    _assert_compile_shaped(tex, 4)
    assert r"\begin{tabular}{lrrl}" in tex
    assert r"feature\_matching:clipping" in tex
    assert "1.23" in tex and "--" in tex and "yes" in tex
    assert r"\caption{Effects on pass@1 (95\% CI)}" in tex
    assert r"50\% \& \$x\$ \#1 \{a\} \textasciitilde{}\textasciicircum{}\textbackslash{}" in tex


def test_latex_escape_leaves_plain_text_alone() -> None:
    assert latex_escape("agreement") == "agreement"
    assert latex_escape("a_b") == r"a\_b"


def test_effects_for_paper_formats_intervals() -> None:
    effects = pd.DataFrame(
        {
            "term": ["a", "b", "a:b"],
            "estimate": [1.5, 0.25, np.nan],
            "ci_low": [1.0, np.nan, np.nan],
            "ci_high": [2.0, np.nan, np.nan],
            "aliased_with": ["", "", "c:d"],
        }
    )
    paper = effects_for_paper(effects)
    assert list(paper["effect"]) == ["+1.50 [+1.00, +2.00]", "+0.25", "aliased"]
    _assert_compile_shaped(to_latex(paper), 3)


def test_write_table_writes_csv_and_tex(tmp_path: Path) -> None:
    frame = pd.DataFrame({"config": ["base", "agree"], "gain": [0.0, 1.25]})
    paths = write_table(frame, tmp_path / "out", "gains", caption="Gains")
    assert [p.name for p in paths] == ["gains.csv", "gains.tex"]
    assert pd.read_csv(paths[0]).equals(frame)
    _assert_compile_shaped(paths[1].read_text(), 2)
    assert to_csv(frame, tmp_path / "x.csv").read_text().startswith("config,gain")
