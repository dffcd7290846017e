"""Data sets for search and training: generated digit clips, or a folder of real clips.

``load_data("digit-actions" | "moving-digits" | PATH, ...)`` is the one entry point the search and
train code use::

    "digit-actions" --make_digit_actions--> ClipSplits(train, val, test, classes)
    "digit-order"   --make_digit_order------^
    "moving-digits" --make_moving_digits----^   (easy: for smoke runs)
    PATH/<class>/*.mp4 --load_video_folder--^
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from search.data.clips import ClipSet, ClipSplits, DataError
from search.data.digit_actions import DigitActionsConfig, make_digit_actions
from search.data.digit_order import DigitOrderConfig, make_digit_order
from search.data.moving_digits import CLASSES, PAIRS, MovingDigitsConfig, make_moving_digits, sprite_split
from search.data.names import DEFAULT_DATA, GENERATED
from search.data.video_folder import load_video_folder, read_clip

#: every generated set by name: (its config dataclass, the generator that takes it)
GENERATORS: dict[str, tuple[type, Callable[..., ClipSplits]]] = {
    "digit-actions": (DigitActionsConfig, make_digit_actions),
    "digit-order": (DigitOrderConfig, make_digit_order),
    "moving-digits": (MovingDigitsConfig, make_moving_digits),
}


def load_data(
    data: str,
    *,
    channels: int = 3,
    frames: int = 8,
    size: int = 32,
    seed: int = 0,
    n_train: int = 3000,
    n_val: int = 600,
    n_test: int = 1000,
    num_classes: int = 10,
) -> ClipSplits:
    """A generated set (``GENERATED``, sizes from ``n_*``) or a folder of class sub-folders of clips."""
    if data in GENERATORS:
        config_type, make = GENERATORS[data]
        return make(config_type(n_train=n_train, n_val=n_val, n_test=n_test, num_classes=num_classes, channels=channels,
                                frames=frames, size=size, seed=seed))
    if Path(data).is_dir():
        return load_video_folder(data, frames=frames, size=size, channels=channels, seed=seed)
    raise DataError(f"unknown data '{data}': give one of {', '.join(GENERATED)} or a folder of class sub-folders of .mp4/.avi clips")


__all__ = [
    "CLASSES",
    "DEFAULT_DATA",
    "GENERATED",
    "GENERATORS",
    "PAIRS",
    "ClipSet",
    "ClipSplits",
    "DataError",
    "DigitActionsConfig",
    "DigitOrderConfig",
    "MovingDigitsConfig",
    "load_data",
    "load_video_folder",
    "make_digit_actions",
    "make_digit_order",
    "make_moving_digits",
    "read_clip",
    "sprite_split",
]
