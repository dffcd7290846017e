"""digit-actions: determinism, disjoint sprites, exact time-reversal twins, order-blind cap, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from search.data import DEFAULT_DATA, GENERATED, DataError, DigitActionsConfig, load_data, make_digit_actions, sprite_split
from search.data.digit_actions import CLASSES, LABELS, PAIRS, _pick_digit_sprites, _pick_sprites, _render_forward, _split_pool
from search.data.sprites import REVERSED_MOTIONS, digit_labels, render_pairs

SMALL = DigitActionsConfig(n_train=30, n_val=10, n_test=20, channels=1, frames=6, size=24, seed=3)


def _render_split(labels, pool, rng, config):
    """The clips ``make_digit_actions`` draws for ``labels`` from the sprites in ``pool``."""
    return render_pairs(labels, pool, rng, lambda pair, p, r: _render_forward(pair, _split_pool(p, config), r, config))


def test_same_seed_same_clips_other_seed_other_clips():
    first, second = make_digit_actions(SMALL), make_digit_actions(SMALL)
    for a, b in ((first.train, second.train), (first.val, second.val), (first.test, second.test)):
        assert torch.equal(a.clips, b.clips) and torch.equal(a.labels, b.labels)
    other = make_digit_actions(dataclasses.replace(SMALL, seed=4))
    assert not torch.equal(first.train.clips, other.train.clips)


def test_shapes_dtype_and_balanced_labels():
    splits = make_digit_actions(DigitActionsConfig(n_train=40, n_val=10, n_test=20, channels=3, frames=4, size=16))
    assert splits.train.clips.shape == (40, 3, 4, 16, 16) and splits.train.clips.dtype == torch.uint8
    assert (len(splits.val), len(splits.test)) == (10, 20)
    assert splits.classes == list(CLASSES) and splits.num_classes == 10
    assert splits.train.labels.bincount().tolist() == [4] * 10
    assert [CLASSES[b] for _, b in PAIRS] == list(REVERSED_MOTIONS)
    fewer = make_digit_actions(dataclasses.replace(SMALL, num_classes=4))
    assert fewer.classes == list(CLASSES[:4]) and set(fewer.train.labels.tolist()) == {0, 1, 2, 3}


def test_splits_draw_disjoint_sprites_and_the_target_shows_a_target_digit():
    config = DigitActionsConfig()
    used = []
    for pool in sprite_split(config.seed):
        pools = _split_pool(pool, config)
        ids = _pick_sprites(pools, 500, config.distractors, np.random.default_rng(0))
        assert set(ids.ravel()) <= set(pool)
        assert np.isin(digit_labels()[ids[:, 0]], config.target_digits).all()
        assert not np.isin(digit_labels()[ids[:, 1:]], config.target_digits).any()
        used.append(set(ids.ravel()))
    assert not used[0] & used[1] and not used[0] & used[2] and not used[1] & used[2]


@pytest.mark.parametrize("label", LABELS)
def test_a_clip_of_class_2k_plus_1_is_its_2k_twin_played_backwards(label):
    labels = np.array([0, 2, 4, 6, 8, 0, 2, 4])
    pool = sprite_split(0)[0]
    config = dataclasses.replace(SMALL, label=label)
    forward = _render_split(labels, pool, np.random.default_rng(7), config)
    backward = _render_split(labels + 1, pool, np.random.default_rng(7), config)
    assert torch.equal(backward, forward.flip(2))
    assert not torch.equal(backward, forward)


def test_digit_labels_name_the_target_digit_and_the_direction_of_time():
    config = dataclasses.replace(SMALL, label="digit", target_digits=(3, 7), num_classes=4)
    splits = make_digit_actions(config)
    assert splits.classes == ["3-forward", "3-backward", "7-forward", "7-backward"]
    pools = _split_pool(sprite_split(config.seed)[0], config)
    pair = np.array([0, 1, 1, 0, 1])
    ids = _pick_digit_sprites(pair, pools, config, np.random.default_rng(0))
    assert digit_labels()[ids[:, 0]].tolist() == [3, 7, 7, 3, 7]
    assert not np.isin(digit_labels()[ids[:, 1:]], config.target_digits).any()
    assert torch.equal(make_digit_actions(config).train.clips, splits.train.clips)
    with pytest.raises(DataError, match="even number"):  # two target digits make four classes
        dataclasses.replace(config, num_classes=6)


def test_order_blind_features_cannot_split_a_pair():
    """Twins hold the same multiset of frames, so any order-blind function of the frames ties on every pair."""
    labels = np.array([0, 2, 4, 6, 8])
    pool = sprite_split(0)[0]
    forward = _render_split(labels, pool, np.random.default_rng(1), SMALL).float()
    backward = _render_split(labels + 1, pool, np.random.default_rng(1), SMALL).float()
    assert torch.equal(forward.mean(2), backward.mean(2))  # temporal average
    frames = lambda clips: clips.transpose(1, 2).flatten(2)  # (N, T, C*H*W)
    assert torch.equal(frames(forward).sort(dim=1).values, frames(backward).sort(dim=1).values)


def test_registered_as_a_generated_set():
    assert "digit-actions" in GENERATED and DEFAULT_DATA in GENERATED and "moving-digits" in GENERATED
    splits = load_data("digit-actions", n_train=10, n_val=10, n_test=10, channels=1, frames=4, size=16, seed=0)
    assert splits.clip_shape == (1, 4, 16, 16) and splits.num_classes == 10


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"num_classes": 3}, "even number"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"frames": 1}, "frames must be at least 2"),
        ({"size": 8}, "size must be at least 16"),
        ({"n_val": 0}, "must be at least 1"),
        ({"distractors": -1}, "distractors must be 0 or more"),
        ({"target_digits": tuple(range(10))}, "target_digits"),
        ({"target_digits": (11,)}, "target_digits"),
        ({"contrast": 0.0}, "contrast"),
        ({"amplitude": 2.0}, "amplitude"),
        ({"noise": -0.1}, "noise"),
        ({"label": "colour"}, "label must be one of motion, digit"),
    ],
)
def test_bad_options_are_one_line_errors(option, message):
    with pytest.raises(DataError, match=message) as error:
        DigitActionsConfig(**option)
    assert "\n" not in str(error.value) and str(error.value).startswith("digit-actions:")
