"""`render`: a pure, deterministic synthetic camera view that follows the pose."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from drone_sim.pose import Pose
from drone_sim.video import render

HOVER = Pose(z=100.0)


def mean_abs_diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def horizon_row(img: NDArray[np.uint8], col: int) -> int:
    """First row from the top of `col` that is not sky (sky is the only blue-dominant colour)."""
    column = img[:, col, :].astype(np.int16)
    not_sky = np.nonzero(column[:, 2] - column[:, 0] < 40)[0]
    assert not_sky.size, "no horizon in this column"
    return int(not_sky[0])


def red_post_columns(img: NDArray[np.uint8]) -> NDArray[np.intp]:
    """Columns holding pixels of the red post (straight ahead of the takeoff heading)."""
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    return np.nonzero(red.any(axis=0))[0]


def test_shape_dtype_and_determinism() -> None:
    pose = Pose(x=12.5, y=-30.0, z=80.0, yaw=17.0, pitch=-3.0, roll=4.0)
    a = render(pose)
    b = render(pose)
    assert a.shape == (720, 960, 3)
    assert a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert render(pose, 320, 240).shape == (240, 320, 3)


def test_level_horizon_is_level_and_centred() -> None:
    img = render(HOVER)
    left, right = horizon_row(img, 150), horizon_row(img, 810)
    assert abs(left - right) <= 2
    assert abs(left - 360) <= 4


def test_horizon_tilts_with_roll() -> None:
    img = render(Pose(z=100.0, roll=20.0))
    left, right = horizon_row(img, 150), horizon_row(img, 810)
    # Right side down: the horizon rises on the right, by ~tan(20 deg) x 660 px = 240 px.
    assert left - right > 180
    mirrored = render(Pose(z=100.0, roll=-20.0))
    assert horizon_row(mirrored, 810) - horizon_row(mirrored, 150) > 180


def test_horizon_moves_down_when_pitching_up() -> None:
    level = horizon_row(render(HOVER), 150)
    assert horizon_row(render(Pose(z=100.0, pitch=10.0)), 150) - level > 60
    assert level - horizon_row(render(Pose(z=100.0, pitch=-10.0)), 150) > 60


def test_yaw_changes_the_picture_and_slides_the_world_left() -> None:
    before = render(HOVER)
    after = render(Pose(z=100.0, yaw=30.0))
    assert mean_abs_diff(before, after) > 5.0
    cols_before, cols_after = red_post_columns(before), red_post_columns(after)
    assert cols_before.size
    assert cols_after.size
    assert 460 < cols_before.mean() < 500  # straight ahead
    assert cols_after.mean() < cols_before.mean() - 200  # turned right: the post is now on the left


def test_flying_forward_makes_the_post_ahead_bigger() -> None:
    near = red_post_columns(render(Pose(x=200.0, z=100.0)))
    far = red_post_columns(render(HOVER))
    assert near.size > 1.5 * far.size


@pytest.mark.parametrize(("low", "high"), [(0.0, 100.0), (100.0, 300.0)])
def test_climbing_changes_the_picture(low: float, high: float) -> None:
    a, b = render(Pose(z=low)), render(Pose(z=high))
    assert mean_abs_diff(a, b) > 2.0
    # The altitude gauge at the right edge fills up.
    gauge_a = (a[:, 945, 0] > 200).sum()
    gauge_b = (b[:, 945, 0] > 200).sum()
    assert gauge_b > gauge_a


def test_rejects_tiny_images() -> None:
    with pytest.raises(ValueError, match="at least 2x2"):
        render(HOVER, 1, 1)
