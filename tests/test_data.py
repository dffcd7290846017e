"""Data sets: moving digits (determinism, disjoint sprites, time-reversal pairs) and the clip folder reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from search.data import (
    CLASSES,
    PAIRS,
    DataError,
    MovingDigitsConfig,
    load_data,
    load_video_folder,
    make_moving_digits,
    sprite_split,
)

SMALL = MovingDigitsConfig(n_train=40, n_val=20, n_test=20, channels=1, frames=6, size=24, seed=3)


def test_same_seed_same_clips_other_seed_other_clips():
    first, second = make_moving_digits(SMALL), make_moving_digits(SMALL)
    assert torch.equal(first.train.clips, second.train.clips)
    assert torch.equal(first.test.labels, second.test.labels)
    other = make_moving_digits(MovingDigitsConfig(**{**SMALL.__dict__, "seed": 4}))
    assert not torch.equal(first.train.clips, other.train.clips)


def test_shape_dtype_and_classes_are_configurable():
    splits = make_moving_digits(MovingDigitsConfig(n_train=10, n_val=5, n_test=7, channels=3, frames=4, size=16))
    assert splits.train.clips.shape == (10, 3, 4, 16, 16)
    assert splits.train.clips.dtype == torch.uint8
    assert (len(splits.val), len(splits.test)) == (5, 7)
    assert splits.classes == list(CLASSES) and splits.num_classes == 10
    batch, labels = next(splits.train.batches(4))
    assert batch.dtype == torch.float32 and 0.0 <= batch.min() and batch.max() <= 1.0 and labels.shape == (4,)


def test_splits_use_disjoint_sprites():
    train, val, test = sprite_split(seed=0)
    assert len(set(train) | set(val) | set(test)) == len(train) + len(val) + len(test) == 1797
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)


def test_motions_do_what_their_names_say():
    from search.data.moving_digits import _trajectories

    config = MovingDigitsConfig(frames=6, size=24, jitter=0.0)
    forward = _trajectories(np.array([0, 1, 2, 3, 4]), np.random.default_rng(0), config)
    assert all(values.shape == (5, 6) for values in forward.values())
    assert np.all(np.diff(forward["cx"][0]) > 0) and np.all(np.diff(forward["cy"][0]) == 0)  # move-right
    assert np.all(np.diff(forward["cy"][1]) > 0)  # move-down
    assert np.all(np.diff(forward["angle"][2]) > 0)  # turn
    assert np.all(np.diff(forward["scale"][3]) > 0)  # zoom-in
    assert forward["alpha"][4, 0] == 0.0 and forward["alpha"][4, -1] == 1.0  # appear
    assert [CLASSES[b] for _, b in PAIRS] == ["move-left", "move-up", "turn-ccw", "zoom-out", "vanish"]


def test_order_blind_features_cannot_split_a_pair():
    """The multiset of frames of a clip and of its time reversal is identical."""
    config = MovingDigitsConfig(n_train=20, n_val=2, n_test=2, channels=1, frames=5, size=20, noise=0.0, jitter=0.0)
    from search.data.moving_digits import _draw, _trajectories

    params = _trajectories(np.arange(5), np.random.default_rng(2), config)
    reversed_params = {name: np.ascontiguousarray(value[:, ::-1]) for name, value in params.items()}
    sprites = torch.rand(5, 8, 8)
    forward, backward = _draw(sprites, params, 20), _draw(sprites, reversed_params, 20)
    assert torch.allclose(forward.flip(1), backward, atol=1e-6)
    assert torch.allclose(forward.mean(1), backward.mean(1), atol=1e-6)  # temporal average is blind to order


def test_unknown_data_and_bad_options_are_clear_errors(tmp_path: Path):
    with pytest.raises(DataError, match="moving-digits"):
        load_data("no-such-set")
    with pytest.raises(DataError, match="channels"):
        MovingDigitsConfig(channels=2)
    with pytest.raises(DataError, match="two class"):
        load_video_folder(tmp_path)


def _write_video(path: Path, frames: int, colour: int) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for t in range(frames):
            image = np.full((32, 32, 3), colour, dtype=np.uint8)
            image[:, t * 3 : t * 3 + 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_folder_reads_clips_and_skips_broken_files(tmp_path: Path):
    for label, name in enumerate(("left", "right")):
        (tmp_path / name).mkdir()
        for index in range(5):
            _write_video(tmp_path / name / f"clip{index}.mp4", frames=6, colour=40 * label)
    (tmp_path / "left" / "broken.mp4").write_bytes(b"this is not a video")
    (tmp_path / "right" / "notes.txt").write_text("ignored: not a video suffix")
    with pytest.warns(UserWarning, match="broken.mp4"):
        splits = load_video_folder(tmp_path, frames=4, size=16, channels=3, seed=0)
    assert splits.classes == ["left", "right"]
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == 10 and splits.train.clip_shape == (3, 4, 16, 16)
    assert set(splits.test.labels.tolist()) == {0, 1} and set(splits.val.labels.tolist()) == {0, 1}


def test_fewer_classes_keep_whole_pairs():
    splits = make_moving_digits(MovingDigitsConfig(n_train=12, n_val=4, n_test=4, num_classes=4, channels=1, size=16))
    assert splits.classes == list(CLASSES[:4]) and set(splits.train.labels.tolist()) == {0, 1, 2, 3}
    with pytest.raises(DataError, match="even"):
        MovingDigitsConfig(num_classes=3)
