"""UniSD core: configuration, trainer, data, evaluation and analysis.

`unisd_core.config`, `unisd_core.presets` and `unisd_core.analysis` are torch-free. `train` is
imported lazily so that `import unisd_core.config` never pulls in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unisd_core.trainer import train

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from unisd_core.trainer import train

        return train
    raise AttributeError(name)
