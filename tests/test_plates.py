"""Plates: normalisation, syntax, colour codes, OCR keys — examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianwang.checkpoints import plates
from tianwang.checkpoints.plates import InvalidPlate, PlateKind

SERIAL = sorted(plates.SERIAL)
DIGITS = "0123456789"


@pytest.mark.parametrize(
    ("raw", "plate_no", "kind"),
    [
        ("粤B12345", "粤B12345", PlateKind.ordinary),
        (" 粤b·12345 ", "粤B12345", PlateKind.ordinary),
        ("京Ａ－ＡＢ１２３", "京AAB123", PlateKind.ordinary),  # full-width letters, digits and dash
        ("沪A.1234学", "沪A1234学", PlateKind.ordinary),
        ("粤Z1234港", "粤Z1234港", PlateKind.ordinary),
        ("沪A1234领", "沪A1234领", PlateKind.ordinary),
        ("粤BD12345", "粤BD12345", PlateKind.new_energy),
        ("粤BF1234 5", "粤BF12345", PlateKind.new_energy),
        ("粤BDA1234", "粤BDA1234", PlateKind.new_energy),
        ("粤B12345D", "粤B12345D", PlateKind.new_energy),
        ("使014578", "使014578", PlateKind.embassy),
        ("WJ粤12345", "WJ粤12345", PlateKind.armed_police),
        ("粤O12345", "粤O12345", PlateKind.ordinary),  # O as the authority letter is real (police)
    ],
)
def test_valid_plates(raw: str, plate_no: str, kind: PlateKind) -> None:
    p = plates.parse(raw)
    assert (p.plate_no, p.kind) == (plate_no, kind)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("XB12345", "province"),
        ("粤112345", "authority"),
        ("粤IB2345", "authority"),
        ("粤B1234", "serial"),
        ("粤B123456", "new-energy"),  # six characters but neither D/F rule
        ("粤BA12345", "new-energy"),
        ("粤B1O345", "I and O"),
        ("无牌", "without"),
        ("未识别", "without"),
        ("粤A1234", "serial"),
        ("使01457", "embassy"),
    ],
)
def test_invalid_plates_say_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidPlate) as e:
        plates.parse(raw)
    assert why in e.value.detail
    assert e.value.errors[0]["field"] == "plate_no"


def test_ocr_key_merges_confusable_characters() -> None:
    assert plates.ocr_key("粤B0I234") == plates.ocr_key("粤BOl234".replace("l", "1"))
    assert plates.ocr_key("粤8D1234") == plates.ocr_key("粤B01234")
    assert plates.ocr_key("粤B12345") != plates.ocr_key("粤B12346")


def test_colour_codes() -> None:
    assert plates.colour_code("5") == "5"
    assert plates.colour_code(5) == "5"
    assert plates.colour_code("蓝") == "5"
    assert plates.colour_code("Blue") == "5"
    assert plates.colour_code("09") == "9"
    assert plates.colour_code(None) is None
    with pytest.raises(Exception, match="unknown colour"):
        plates.colour_code("42")


ordinary = st.builds(
    lambda p, a, s: p + a + s,
    st.sampled_from(plates.PROVINCES),
    st.sampled_from(sorted(plates.AUTHORITY)),
    st.text(alphabet=SERIAL, min_size=5, max_size=5),
)
new_energy_small = st.builds(
    lambda p, a, f, s, d: p + a + f + s + d,
    st.sampled_from(plates.PROVINCES),
    st.sampled_from(sorted(plates.AUTHORITY)),
    st.sampled_from("DF"),
    st.sampled_from(SERIAL),
    st.text(alphabet=DIGITS, min_size=4, max_size=4),
)
new_energy_large = st.builds(
    lambda p, a, d, f: p + a + d + f,
    st.sampled_from(plates.PROVINCES),
    st.sampled_from(sorted(plates.AUTHORITY)),
    st.text(alphabet=DIGITS, min_size=5, max_size=5),
    st.sampled_from("DF"),
)
any_plate = st.one_of(ordinary, new_energy_small, new_energy_large)
FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}  # ASCII → full-width forms


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_normalise_is_idempotent_and_never_crashes(text: str) -> None:
    once = plates.normalise(text)
    assert plates.normalise(once) == once
    assert not any(c in once for c in " -·.")
    try:
        p = plates.parse(text)
    except InvalidPlate:
        return
    assert plates.parse(p.plate_no) == p  # a parsed plate parses to itself


@settings(max_examples=300)
@given(any_plate, st.data())
def test_generated_plates_round_trip_through_noise(plate: str, data: st.DataObject) -> None:
    p = plates.parse(plate)
    assert p.plate_no == plate
    # the same plate typed with full-width characters, lower case and separators is the same plate
    noisy = "".join(
        data.draw(st.sampled_from([c, FULL.get(c, c), c.lower()]))
        + data.draw(st.sampled_from(["", " ", "·", "-"]))
        for c in plate
    )
    assert plates.parse(noisy) == p
    assert plates.ocr_key(noisy) == plates.ocr_key(plate)


@given(any_plate)
def test_ocr_key_is_stable_and_digit_only_where_confusable(plate: str) -> None:
    k = plates.ocr_key(plate)
    assert plates.ocr_key(k) == k
    assert not set(k) & set("OQDIB")


@pytest.mark.parametrize(
    ("raw", "plate_no", "kind", "valid"),
    [
        ("无牌", "无牌", PlateKind.none, False),
        ("无车牌", "无牌", PlateKind.none, False),
        ("未识别", "未识别", PlateKind.unread, False),
        ("", "未识别", PlateKind.unread, False),
        (None, "未识别", PlateKind.unread, False),
        ("00000000", "未识别", PlateKind.unread, False),
        ("x" * 41, "未识别", PlateKind.unread, False),
        ("粤A12345临", "粤A12345临", PlateKind.temporary, True),
        ("VA12345", "VA12345", PlateKind.military, True),
        ("民航12345", "民航12345", PlateKind.civil_aviation, True),
        ("MA 1234", "MA1234", PlateKind.hk_macao, True),
        ("WJ粤12345", "WJ粤12345", PlateKind.armed_police, True),
        ("使014578", "使014578", PlateKind.embassy, True),
        ("粤b1234", "粤B1234", PlateKind.other, False),
        ("XB12345", "XB12345", PlateKind.other, False),
    ],
)
def test_read_never_refuses_and_classifies(
    raw: str | None, plate_no: str, kind: PlateKind, valid: bool
) -> None:
    p = plates.read(raw)
    assert (p.plate_no, p.kind, p.valid) == (plate_no, kind, valid)
    assert (p.why is not None) == (not valid)
    # reading the stored text again gives the same plate: markers and kinds are stable
    assert plates.read(p.plate_no).plate_no == p.plate_no


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_read_is_total_and_fits_the_column(text: str) -> None:
    p = plates.read(text)
    assert 1 <= len(p.plate_no) <= plates.MAX_READ
    assert p.valid == plates.is_valid(text)
