"""Tables out: CSV for tools, LaTeX (booktabs) for papers.

The LaTeX writer is our own rather than ``DataFrame.to_latex`` so that the output does not depend
on jinja2 and always has the same shape: a ``table`` float around a ``tabular`` with ``\\toprule``,
``\\midrule`` and ``\\bottomrule`` (needs ``\\usepackage{booktabs}``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape the characters LaTeX treats as commands or markup."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` without its index (full float precision); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def to_latex(
    frame: pd.DataFrame,
    *,
    caption: str | None = None,
    label: str | None = None,
    digits: int = 3,
    columns: Sequence[str] | None = None,
    headers: dict[str, str] | None = None,
    missing: str = "--",
) -> str:
    """A booktabs table of ``frame``: text columns left-aligned, numbers right-aligned.

    Numbers are rounded to ``digits`` decimals, NaN becomes ``missing``; text is escaped.
    """
    shown = frame if columns is None else frame[list(columns)]
    names = [str(c) for c in shown.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(shown[c]) and shown[c].dtype != bool for c in shown.columns
    ]
    spec = "".join("r" if is_num else "l" for is_num in numeric)
    header_text = [latex_escape((headers or {}).get(n, n)) for n in names]
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(header_text) + r" \\",
        r"\midrule",
    ]
    # Format column by column: one type decision per column instead of one per cell.
    formatted = [_column_cells(shown[c], digits, missing) for c in shown.columns]
    lines.extend(" & ".join(cells) + r" \\" for cells in zip(*formatted, strict=True))
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def effects_for_paper(effects: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Effects with ``estimate [ci_low, ci_high]`` in one column, as papers print them."""
    out = effects.copy()
    formatted = []
    for est, lo, hi in zip(out["estimate"], out["ci_low"], out["ci_high"], strict=True):
        if _is_missing(est):
            formatted.append("aliased")
        elif _is_missing(lo) or _is_missing(hi):
            formatted.append(f"{est:+.{digits}f}")
        else:
            formatted.append(f"{est:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]")
    out["effect"] = formatted
    keep = [c for c in ("benchmark", "term", "effect", "aliased_with") if c in out.columns]
    return out[keep]


def write_table(
    frame: pd.DataFrame,
    directory: Path,
    stem: str,
    *,
    caption: str | None = None,
    latex_frame: pd.DataFrame | None = None,
    digits: int = 3,
) -> list[Path]:
    """Write ``stem.csv`` (all columns) and ``stem.tex`` (``latex_frame`` or the same table)."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = to_csv(frame, directory / f"{stem}.csv")
    tex_path = directory / f"{stem}.tex"
    tex_path.write_text(
        to_latex(
            frame if latex_frame is None else latex_frame,
            caption=caption,
            label=f"tab:{stem}",
            digits=digits,
        ),
        encoding="utf-8",
    )
    return [csv_path, tex_path]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column_cells(column: pd.Series, digits: int, missing: str) -> list[str]:
    if column.dtype == bool:
        return ["yes" if v else "no" for v in column]
    if pd.api.types.is_integer_dtype(column):
        return [str(int(v)) for v in column]
    if pd.api.types.is_float_dtype(column):
        return [
            f"{v:.{digits}f}"
            if math.isfinite(v)
            else (missing if math.isnan(v) else _cell(v, 0, ""))
            for v in column.to_numpy(dtype=float)
        ]
    return [_cell(v, digits, missing) for v in column]


def _cell(value: Any, digits: int, missing: str) -> str:
    if _is_missing(value) or value is pd.NA:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return r"$\infty$" if value > 0 else r"$-\infty$"
        return f"{value:.{digits}f}"
    return latex_escape(str(value))
