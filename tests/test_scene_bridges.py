"""Bridge scenes: the images two classes draw with the same code, which bound any model's accuracy."""

import numpy as np
import pytest

from edgelab.data.scenes import CLASS_NAMES, bridge_bounds, bridge_scenes, generate_scenes, image_rng, render_scene
from edgelab.errors import ConfigError


def test_a_bridge_image_is_the_same_picture_under_either_label():
    # The same random stream drawn as buildings or as street gives the same picture exactly when it
    # is a "city" bridge: the property that makes bridge images a coin toss for any classifier.
    per_class = 40
    kinds = bridge_scenes(np.arange(per_class * 6), seed=3)
    buildings = kinds[CLASS_NAMES.index("buildings") :: 6]
    assert 0 < (buildings == "city").sum() < per_class
    for k, kind in enumerate(buildings):
        a = render_scene("buildings", image_rng(3, "buildings", k), 24)
        b = render_scene("street", image_rng(3, "buildings", k), 24)
        assert np.array_equal(a, b) == (kind == "city"), (k, kind)


def test_bridge_shares_follow_the_generator_within_five_standard_errors():
    n = 1500
    kinds = bridge_scenes(np.arange(n * 6), seed=0).reshape(n, 6)
    expected = {
        "buildings": {"city": 0.12},
        "forest": {},
        "glacier": {"snowfield": 0.11, "icy_water": 0.07},
        "mountain": {"snowfield": 0.11},
        "sea": {"icy_water": 0.07},
        "street": {"city": 0.12},
    }
    for c, name in enumerate(CLASS_NAMES):
        for bridge in ("city", "snowfield", "icy_water"):
            p = expected[name].get(bridge, 0.0)
            share = float((kinds[:, c] == bridge).mean())
            assert abs(share - p) <= 5 * (p * (1 - p) / n) ** 0.5, (name, bridge, share)


def test_bridge_scenes_match_the_generated_labels_and_reject_bad_input():
    _, labels = generate_scenes(2, image_size=8, seed=1, progress=False)
    kinds = bridge_scenes(np.arange(len(labels)), seed=1)
    assert all(kind == "" for kind, label in zip(kinds, labels) if CLASS_NAMES[label] == "forest")
    with pytest.raises(ConfigError, match="indices >= 0"):
        bridge_scenes([-1])


def test_bridge_bounds_for_hand_picked_splits():
    idx = np.arange(600)
    kinds, labels = bridge_scenes(idx, seed=0), idx % 6
    b = CLASS_NAMES.index("buildings")
    city_b = idx[(kinds == "city") & (labels == b)][:2]
    city_s = idx[(kinds == "city") & (labels == CLASS_NAMES.index("street"))][:1]
    own = idx[(kinds == "") & (labels == CLASS_NAMES.index("forest"))][:3]
    # One bridge image of each class: a classifier naming buildings with probability q gets both
    # right with probability q (1 - q) <= 1/4, and expects at most one of the two right.
    split = np.concatenate([city_b[:1], city_s, own])
    bounds = bridge_bounds(split, split % 6)
    assert (bounds.images, bounds.bridge_images) == (5, 2)
    assert bounds.max_perfect_probability == 0.25 and bounds.max_expected_accuracy == 4 / 5
    # Two of one class and one of the other: max q^2 (1 - q) = 4/27 at q = 2/3.
    split = np.concatenate([city_b, city_s])
    assert bridge_bounds(split, split % 6).max_perfect_probability == pytest.approx(4 / 27, rel=1e-12)
    # Bridge images of one class only: always naming that class gets them all right.
    assert bridge_bounds(city_b, city_b % 6).max_perfect_probability == 1.0
    with pytest.raises(ConfigError, match="one label per index"):
        bridge_bounds(split, [0])
