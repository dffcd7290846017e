"""A folder of real clips: one sub-folder per class holding ``.mp4`` / ``.avi`` files.

::

    root/<class>/<clip>.mp4 --PyAV decode--> T frames sampled uniformly --resize--> uint8 (C, T, H, W)

Classes are the sub-folder names in sorted order. Splits are stratified per class and fixed by the
seed. A file that cannot be decoded (broken, empty, not a video) is skipped with a warning that
names it; a folder without any readable clip is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search.data.clips import ClipSet, ClipSplits, DataError

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi")


def read_clip(path: str | Path, *, frames: int, size: int, channels: int = 3) -> torch.Tensor:
    """Decode ``path`` into uint8 ``(channels, frames, size, size)``; frames sampled uniformly.

    Raises ``DataError`` when the file cannot be decoded or holds no frames.
    """
    import av

    try:
        with av.open(str(path)) as container:
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise DataError(f"cannot decode video '{path}': {exc}") from exc
    if not decoded:
        raise DataError(f"video '{path}' holds no frames")
    picks = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    video = torch.from_numpy(np.stack([decoded[i] for i in picks])).permute(3, 0, 1, 2).float()  # (3, T, H, W)
    video = F.interpolate(video.permute(1, 0, 2, 3), size=(size, size), mode="bilinear", align_corners=False)
    video = video.permute(1, 0, 2, 3)
    if channels == 1:
        video = video.mean(dim=0, keepdim=True)
    return video.round().clamp(0, 255).to(torch.uint8)


def load_video_folder(
    root: str | Path,
    *,
    frames: int = 8,
    size: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ClipSplits:
    """Read every clip under ``root/<class>/`` and split it per class into train, val and test."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder '{root}' does not exist; give 'moving-digits' or a folder of class sub-folders")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"data folder '{root}' needs at least two class sub-folders of .mp4/.avi clips, found {len(classes)}")
    clips: list[torch.Tensor] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for path in sorted(p for p in (root / name).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
            try:
                clips.append(read_clip(path, frames=frames, size=size, channels=channels))
            except DataError as exc:
                warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
                continue
            labels.append(label)
    if not clips:
        raise DataError(f"data folder '{root}' holds no readable .mp4/.avi clip")
    all_clips = ClipSet(clips=torch.stack(clips), labels=torch.tensor(labels, dtype=torch.int64))
    parts = _stratified_split(np.asarray(labels), val_fraction, test_fraction, seed)
    train, val, test = (all_clips.subset(torch.from_numpy(index)) for index in parts)
    return ClipSplits(train=train, val=val, test=test, classes=classes)


def _stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Per class: shuffle, then cut off test and val shares (at least one clip each where the class has 3+)."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"val and test fractions must be in [0, 1) and sum below 1, got {val_fraction} and {test_fraction}")
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(index))) or int(len(index) >= 3 and test_fraction > 0)
        n_val = int(round(val_fraction * len(index))) or int(len(index) >= 3 and val_fraction > 0)
        test.append(index[:n_test])
        val.append(index[n_test : n_test + n_val])
        train.append(index[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))


__all__ = ["VIDEO_SUFFIXES", "load_video_folder", "read_clip"]
