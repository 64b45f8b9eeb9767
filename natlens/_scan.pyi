# The exact JSON Lines reader compiled from _scan.c (see that file and hatch_build.py).

TextColumn = tuple[bytes, bytes, bytes, int]  # Arrow string views, data, validity, null count
CounterColumn = tuple[bytes, bytes, int]  # int64 values, Arrow validity bitmap, null count
# rows, torn_at, torn_line, texts (time, resource id, 3 IPs), int64 microseconds, odd times,
# odd IPs per column, counters, newlines: see scan.__doc__ in _scan.c
Scanned = tuple[
    int,
    int,
    int,
    tuple[TextColumn, ...],
    bytes,
    int,
    tuple[int, int, int],
    tuple[CounterColumn, ...],
    int,
]

def scan(
    data: bytes | bytearray | memoryview,
    keys: tuple[str, ...],
    known: tuple[str, ...],
    category: str,
    gateway: str | None,
    nested: bool,
    /,
) -> Scanned | None: ...
