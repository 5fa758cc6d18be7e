"""ToolAlpaca: pick the API call(s) (action + JSON arguments) that serve a user's request.

Two record formats are read:
- SDFT/HF format (`Ahren09/ToolAlpaca`, `sdft_eval_data_*.json[l]`): one record per request with
  a ready ReAct `prompt`, `instruction`, `golden_answer` (and `golden_response` in train).
- Original ToolAlpaca format (`eval_real.json`, `eval_simulated.json`): one record per API with
  its docs, `Instructions` and `Golden_Answers`; the ReAct prompt is built here.

Offline there is no training split (see ../shared/data/README.md). Split `train` then falls
back to the *real-API* evaluation set (`eval_real.json`, 11 APIs), which shares no API with the
simulated-API test set (`sdft_eval_data_97.jsonl`): tool use is trained on a held-out evaluation
set, and every such Example says so in `metadata["train_source"]`. Split `bfcl` is the other
offline training pool: single-turn function-calling items of the Berkeley Function Calling
Leaderboard converted to the same prompt and gold encoding (`unisd_core.data.bfcl`); select it
with `data.train_split: bfcl`.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from unisd_core.data import bfcl
from unisd_core.data.hf import hf_rows
from unisd_core.data.io import Record, field, read_records
from unisd_core.data.schema import DataError, Example

NAME = "toolalpaca"
HF_ID = "Ahren09/ToolAlpaca"
SPLITS = ("train", "test", "real", "simulated", "bfcl")
# Files per split in order of preference; the SDFT/HF format comes first.
FILES = {
    "train": ("train.jsonl", "train_data.json", "eval_real.json"),
    "test": (
        "test.jsonl",
        "sdft_eval_data_97.jsonl",
        "sdft_eval_data_68.json",
        "eval_simulated.json",
    ),
    "real": ("eval_real.json",),
    "simulated": ("eval_simulated.json",),
}
HELD_OUT_NOTE = (
    "eval_real.json (real-API evaluation set, held out from the simulated-API test set): the "
    "ToolAlpaca training split is not available offline"
)

BFCL_NOTE = (
    "BFCL v4 single-turn function-calling items (bfcl-eval, Apache-2.0) in ToolAlpaca's format: "
    "the ToolAlpaca training split is not available offline"
)

PROMPT_HEAD = "Answer the user's request by calling the tools described below.\nTools:\n"
PROMPT_FORMAT = (
    "Reply in this format, one step at a time:\n"
    "Thought: what you need to do next\n"
    "Action: the tool to call, exactly one of the tool names above\n"
    "Action Input: the tool's arguments as a JSON object, with values taken from the request\n"
)


def normalise_calls(raw: Any, origin: str, name: str) -> list[dict[str, str]]:
    """Gold calls as [{"Action": str, "Action_Input": str-of-JSON}] (the upstream encoding)."""
    if not isinstance(raw, list):
        raise DataError(f"{origin}: field {name!r} should be a list of calls")
    calls = []
    for step, call in enumerate(raw):
        if not isinstance(call, dict) or "Action" not in call:
            raise DataError(f"{origin}: field {name!r}[{step}] has no 'Action'")
        args = call.get("Action_Input", "{}")
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append({"Action": str(call["Action"]), "Action_Input": args})
    return calls


def _item_id(api: str, instruction: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", api.lower()).strip("-") or "api"
    return f"{NAME}-{slug}-{zlib.crc32(instruction.encode('utf-8')):08x}"


def _example(
    *,
    api: str,
    instruction: str,
    prompt: str,
    calls: list[dict[str, str]],
    response: str,
    split: str,
    origin_format: str,
    extra: dict[str, Any],
) -> Example:
    return Example(
        id=_item_id(api, instruction),
        benchmark=NAME,
        task="tooluse",
        question=prompt,
        answer=json.dumps(calls, ensure_ascii=False),
        explanation=response,
        metadata={
            "split": split,
            "api": api,
            "instruction": instruction,
            "format": origin_format,
            **extra,
        },
    )


def from_sdft_record(record: Record, *, origin: str, split: str) -> Example:
    calls = normalise_calls(record.get("golden_answer"), origin, "golden_answer")
    response = record.get("golden_response") or []
    if isinstance(response, list):
        response = "\n".join(str(line) for line in response)
    return _example(
        api=field(record, "name", origin),
        instruction=field(record, "instruction", origin),
        prompt=field(record, "prompt", origin),
        calls=calls,
        response=str(response),
        split=split,
        origin_format="sdft",
        extra={},
    )


def build_prompt(api: str, description: str, documentation: str, instruction: str) -> str:
    return (
        f"{PROMPT_HEAD}Name: {api}\nDescription: {description}\nDocumentation:\n"
        f"{documentation.strip()}\n\n{PROMPT_FORMAT}\nBegin!\nQuestion: {instruction}"
    )


def from_api_record(
    record: Record, *, origin: str, split: str, extra: dict[str, Any]
) -> list[Example]:
    """One Example per instruction of an original-format API record."""
    api = field(record, "Name", origin)
    instructions = field(record, "Instructions", origin, list)
    answers = field(record, "Golden_Answers", origin, list)
    if len(answers) != len(instructions):
        raise DataError(
            f"{origin}: 'Golden_Answers' has {len(answers)} entries for "
            f"{len(instructions)} 'Instructions'"
        )
    docs = record.get("NLDocumentation") or ""
    if not isinstance(docs, str):
        docs = json.dumps(docs, ensure_ascii=False)
    description = str(record.get("Description") or "")
    return [
        _example(
            api=api,
            instruction=str(instruction),
            prompt=build_prompt(api, description, docs, str(instruction)),
            calls=normalise_calls(answer, f"{origin} Golden_Answers[{i}]", "Golden_Answers"),
            response="",
            split=split,
            origin_format="toolalpaca",
            extra=extra,
        )
        for i, (instruction, answer) in enumerate(zip(instructions, answers, strict=True))
    ]


def from_bfcl_item(item: bfcl.BfclItem) -> Example:
    """A BFCL item in ToolAlpaca's shape: every offered tool documented, gold calls as upstream."""
    example = _example(
        api=f"bfcl-{item.category}",
        instruction=item.request,
        prompt=build_prompt(
            ", ".join(item.tools), "functions you may call", item.documentation, item.request
        ),
        calls=item.calls,
        response="",
        split="bfcl",
        origin_format="bfcl",
        extra={"bfcl_id": item.item_id, "train_source": BFCL_NOTE},
    )
    # BFCL ids are unique where request texts are not (live categories repeat some requests).
    return example.model_copy(update={"id": f"{NAME}-bfcl-{item.item_id}"})


def load_bfcl(toolalpaca_dir: Path) -> list[Example]:
    return [from_bfcl_item(item) for item in bfcl.read_items(bfcl.find_data_dir(toolalpaca_dir))]


def _from_records(
    records: Iterable[tuple[str, Record]], split: str, extra: dict[str, Any]
) -> list[Example]:
    out: list[Example] = []
    for origin, record in records:
        if "Instructions" in record:
            out.extend(from_api_record(record, origin=origin, split=split, extra=extra))
        else:
            out.append(from_sdft_record(record, origin=origin, split=split))
    return out


def _check(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"{NAME} has no split {split!r}; choose one of {list(SPLITS)}")


def load_local(directory: Path, split: str, *, seed: int) -> list[Example]:
    _check(split)
    if split == "bfcl":
        return load_bfcl(directory)
    for name in FILES[split]:
        for path in (directory / name, directory / f"{name}.gz"):
            if path.is_file():
                held_out = split == "train" and name == "eval_real.json"
                extra = {"train_source": HELD_OUT_NOTE} if held_out else {}
                return _from_records(read_records(path), split, extra)
    raise DataError(f"data file not found: {' or '.join(FILES[split])} in {directory}")


def load_hf(split: str, *, seed: int) -> list[Example]:
    _check(split)
    if split == "bfcl":  # BFCL's own files, from the installed package (no second download)
        installed = bfcl.installed_data_dir()
        if installed is None:
            raise DataError(f"split 'bfcl' needs the BFCL data: {bfcl.INSTALL_HINT}")
        return [from_bfcl_item(item) for item in bfcl.read_items(installed)]
    if split not in ("train", "test"):
        raise DataError(f"{HF_ID} has only 'train' and 'test' splits")
    return [from_sdft_record(r, origin=o, split=split) for o, r in hf_rows(HF_ID, None, split)]
