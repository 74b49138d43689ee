"""The size of an image file from its header, before anything is decoded.

OpenCV has no header-only API and its own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, 2**30 pixels,
read once when ``cv2`` is imported) lets a few kilobytes of a crafted file allocate gigabytes.
:func:`header_size` reads width and height from the first bytes of JPEG, PNG, BMP, GIF, WebP,
PNM (PBM/PGM/PPM/PAM), TIFF and JPEG 2000 files, so a caller can refuse a decompression bomb
before decoding it.
"""

from __future__ import annotations

import re
import struct

__all__ = ["header_size"]

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """``(width, height)`` an image file declares, or ``None`` for an unknown or unreadable
    header.

    Parameters
    ----------
    data
        The start of the file (the whole file is fine; JPEG headers may sit after large
        EXIF blocks, so pass at least the first 256 kB for JPEG).

    Returns
    -------
    tuple of int or None
        Width and height in pixels of the (first) image, as its header states them.
    """
    data = bytes(data)
    try:
        for reader in (_jpeg, _png, _gif, _bmp, _webp, _tiff, _jp2, _pnm):
            size = reader(data)
            if size is not None:
                return size
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            pos += 1  # garbage between segments: resynchronise on the next 0xFF
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def _png(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


def _bmp(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"BM") or len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _webp(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L":
        b0, b1, b2, b3 = data[21:25]
        width = 1 + (b0 | (b1 & 0x3F) << 8)
        height = 1 + (b1 >> 6 | b2 << 2 | (b3 & 0x0F) << 10)
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            value = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8 : 10 if kind == 3
                                                                            else 12])[0]
            found[tag] = value
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _jp2(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\xff\x4f\xff\x51"):  # raw codestream: SIZ segment
        xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[8:24])
        return xsiz - xosiz, ysiz - yosiz
    if not data.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return None
    at = data.find(b"ihdr")
    if at < 0:
        return None
    height, width = struct.unpack(">II", data[at + 4 : at + 12])
    return width, height


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*([0-9]+)")


def _pnm(data: bytes) -> tuple[int, int] | None:
    if len(data) < 3 or data[0:1] != b"P" or data[1:2] not in b"1234567":
        return None
    if data[1:2] == b"7":  # PAM: WIDTH and HEIGHT lines
        head = data[:4096]
        w = re.search(rb"\nWIDTH\s+([0-9]+)", head)
        h = re.search(rb"\nHEIGHT\s+([0-9]+)", head)
        return (int(w.group(1)), int(h.group(1))) if w and h else None
    pos = 2
    values = []
    for _ in range(2):
        m = _PNM_TOKEN.match(data, pos)
        if m is None:
            return None
        values.append(int(m.group(1)))
        pos = m.end()
    return values[0], values[1]
