"""digit-order: determinism, disjoint sprites, flash timing, exact time-reversal twins, order-blind cap, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from search.data import DEFAULT_DATA, GENERATED, GENERATORS, DataError, DigitOrderConfig, load_data, make_digit_order, sprite_split
from search.data.digit_order import CLASSES, DIGIT_PAIRS, _render_forward, flash_frames

SMALL = DigitOrderConfig(n_train=30, n_val=10, n_test=20, channels=1, frames=8, size=24, seed=3, noise=0.0)


def test_same_seed_same_clips_other_seed_other_clips():
    first, second = make_digit_order(SMALL), make_digit_order(SMALL)
    assert torch.equal(first.train.clips, second.train.clips) and torch.equal(first.test.labels, second.test.labels)
    assert not torch.equal(first.train.clips, make_digit_order(dataclasses.replace(SMALL, seed=4)).train.clips)


def test_shapes_classes_and_registration():
    splits = load_data("digit-order", n_train=20, n_val=10, n_test=10, channels=3, frames=6, size=16, seed=0)
    assert DEFAULT_DATA == "digit-order" and "digit-order" in GENERATED and set(GENERATORS) == set(GENERATED)
    assert splits.train.clips.shape == (20, 3, 6, 16, 16) and splits.train.clips.dtype == torch.uint8
    assert splits.classes == list(CLASSES) and CLASSES[:2] == ("0-then-5", "5-then-0")
    assert splits.train.labels.bincount().tolist() == [2] * 10


def test_flash_and_gap_follow_the_clip_length_unless_given():
    lengths = [(c.flash_length, c.gap_length) for c in (DigitOrderConfig(frames=f) for f in (2, 4, 8, 16))]
    assert lengths == [(1, 0), (1, 0), (2, 1), (4, 2)]
    given = DigitOrderConfig(frames=8, flash=1, gap=3)
    assert (given.flash_length, given.gap_length) == (1, 3)
    assert make_digit_order(dataclasses.replace(SMALL, frames=2, n_train=10)).train.clips.shape[2] == 2


def test_flashes_are_in_order_apart_and_inside_the_clip():
    config = DigitOrderConfig(frames=10, flash=2, gap=2)
    t1, t2 = flash_frames(5000, np.random.default_rng(0), config)
    assert (t2 >= t1 + 4).all() and t1.min() == 0 and (t2 + 2 <= config.frames).all() and t2.max() == config.frames - 2


def test_only_the_pair_digits_flash_once_each_and_distractors_stay():
    """With no noise: pixels of the first digit show only in its flash frames, the second's only later."""
    config = dataclasses.replace(SMALL, distractors=0, jitter=0.0)
    pool = sprite_split(0)[0]
    clips = _render_forward(np.array([0, 1, 2, 3, 4]), pool, np.random.default_rng(5), config).float()
    lit = clips.sum(dim=(1, 3, 4)) > 0  # (N, T): frames with anything drawn
    assert (lit.sum(1) == 2 * config.flash_length).all()  # two flashes of `flash` frames, nothing else
    kept = _render_forward(np.array([0, 1]), pool, np.random.default_rng(5), dataclasses.replace(SMALL, jitter=0.0)).float()
    assert (kept.sum(dim=(1, 3, 4)) > 0).all()  # a distractor is visible in every frame


def test_splits_draw_disjoint_sprites():
    pools = [set(pool.tolist()) for pool in sprite_split(SMALL.seed)]
    assert not pools[0] & pools[1] and not pools[0] & pools[2] and not pools[1] & pools[2]
    assert {a for a, _ in DIGIT_PAIRS}.isdisjoint({b for _, b in DIGIT_PAIRS})


def test_a_clip_of_class_2k_plus_1_is_its_twin_played_backwards_and_order_blind_features_tie():
    config = dataclasses.replace(SMALL, noise=0.06, n_train=40)
    splits = make_digit_order(config)
    rng = np.random.default_rng([config.seed, 0, 2])
    labels = np.arange(40) % 10
    rng.shuffle(labels)
    forward = _render_forward(labels // 2, sprite_split(config.seed)[0], rng, config)
    odd = labels % 2 == 1
    assert torch.equal(splits.train.clips[torch.from_numpy(odd)], forward[torch.from_numpy(odd)].flip(2))
    assert torch.equal(splits.train.clips[torch.from_numpy(~odd)], forward[torch.from_numpy(~odd)])
    frames = lambda clips: clips.transpose(1, 2).flatten(2).float()  # noqa: E731  (N, T, C*H*W)
    assert torch.equal(frames(forward).sort(dim=1).values, frames(forward.flip(2)).sort(dim=1).values)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"num_classes": 5}, "even number"),
        ({"flash": 0}, "flash"),
        ({"flash": 4, "gap": 1}, "2 \\* flash \\+ gap <= frames"),
        ({"distractors": -1}, "distractors"),
        ({"contrast": 1.5}, "contrast"),
        ({"scale": 0.0}, "scale"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_bad_options_are_one_line_errors(option, message):
    with pytest.raises(DataError, match=message) as error:
        DigitOrderConfig(**option)
    assert "\n" not in str(error.value) and str(error.value).startswith("digit-order:")
