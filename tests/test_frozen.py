"""hectl.frozen.Frozen behaves like typing.NamedTuple: fields, defaults, methods, immutability."""

from __future__ import annotations

import pytest

from hectl.frozen import Frozen


class Point(Frozen):
    """A point."""

    x: int
    y: int = 0
    label: str | None = None

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def origin(self) -> bool:
        return self.x == self.y == 0

    @classmethod
    def at(cls, x: int) -> Point:
        return cls(x, x)


def test_fields_defaults_and_methods() -> None:
    p = Point(3)
    assert (p.x, p.y, p.label) == (3, 0, None)
    assert Point(x=1, y=-2).norm1() == 3 and Point(0).origin and Point.at(4) == Point(4, 4)
    assert Point._fields == ("x", "y", "label") and Point._field_defaults == {"y": 0, "label": None}
    assert p._replace(y=5) == Point(3, 5) and p._asdict() == {"x": 3, "y": 0, "label": None}
    assert repr(p) == "Point(x=3, y=0, label=None)" and Point.__doc__ == "A point."
    assert isinstance(p, Point) and hash(p) == hash(Point(3))


def test_immutable_and_strict() -> None:
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.z = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, "a", "extra")  # type: ignore[call-arg]
