import pytest

from fasterdb.sizes import MAX_SIZE, SizeError, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16MB", 16 * 1024**2),
        ("16mb", 16 * 1024**2),
        ("16MiB", 16 * 1024**2),
        ("16kB", 16 * 1024),
        ("16KB", 16 * 1024),
        ("16kib", 16 * 1024),
        ("1048576", 1048576),
        ("0", 0),
        ("1GB", 1024**3),
        ("2 TB", 2 * 1024**4),
        ("1.5MB", 1572864),
        ("8B", 8),
        (4096, 4096),
    ],
)
def test_accepts_numbers_and_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["16XB", "-1", "", "  ", "abc", "16 M B", "1e3", "0.5B", "16MBB", "MB", "nan"])
def test_rejects_garbage_instead_of_reading_no_limit(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)


def test_rejects_negative_int_and_bool_and_huge() -> None:
    with pytest.raises(SizeError):
        parse_size(-5)
    with pytest.raises(SizeError):
        parse_size(True)
    with pytest.raises(SizeError):
        parse_size(str(MAX_SIZE + 1))


def test_format_size() -> None:
    assert format_size(None) == "-"
    assert format_size(512) == "512 B"
    assert format_size(16 * 1024**2) == "16.0 MB"
