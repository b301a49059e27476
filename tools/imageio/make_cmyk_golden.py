#!/usr/bin/env python3
"""Golden data for the CMYK / YCCK JPEG tests in Tests/ImageIOTests (issue 13).

Writes, next to the other decoder fixtures, small 4-component JPEGs and the RGB bytes Pillow decodes
from each (`np.asarray(Image.open(f).convert("RGB"))`, raw HWC uint8 in `<name>.rgb`):
  c37x29_cmyk.jpg        Pillow's own CMYK JPEG (libjpeg writes an Adobe APP14 marker, transform 0)
  c37x29_ycck.jpg        the same bytes with the Adobe transform flag set to 2: libjpeg then reads the
                         first three components as YCbCr (YCCK) — Pillow's decode is still the truth
  c37x29_cmyk_noadobe.jpg  the APP14 segment removed (CMYK without a marker)
  j8x8_cmyk.jpg.rgb      the golden of make_golden.py's 8x8 CMYK file

Usage: python tools/imageio/make_cmyk_golden.py Tests/ImageIOTests/Fixtures   (pip install pillow numpy)
"""
import io
import os
import sys

import numpy as np
from PIL import Image


def smooth_image(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0 + seed) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * (1 - y / max(h - 1, 1))
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    img[h // 3: h // 2, w // 4: w // 2] = [250, 10, 30]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def segments(data):
    """(marker, start, end) of each marker segment before SOS."""
    p, out = 2, []
    while p < len(data):
        m = data[p + 1]
        n = (data[p + 2] << 8) | data[p + 3]
        out.append((m, p, p + 2 + n))
        if m == 0xDA:
            break
        p += 2 + n
    return out


def main(out_dir):
    rgb = Image.fromarray(smooth_image(29, 37, 5))
    buf = io.BytesIO()
    rgb.convert("CMYK").save(buf, "JPEG", quality=92)
    cmyk = buf.getvalue()
    adobe = [s for s in segments(cmyk) if s[0] == 0xEE]
    assert adobe, "Pillow/libjpeg wrote no Adobe marker"
    _, a0, a1 = adobe[0]
    assert cmyk[a0 + 4:a0 + 9] == b"Adobe"
    ycck = bytearray(cmyk)
    ycck[a0 + 4 + 11] = 2
    noadobe = cmyk[:a0] + cmyk[a1:]
    for name, data in [("c37x29_cmyk.jpg", cmyk), ("c37x29_ycck.jpg", bytes(ycck)), ("c37x29_cmyk_noadobe.jpg", noadobe)]:
        img = Image.open(io.BytesIO(data))
        assert img.mode == "CMYK", img.mode
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        with open(os.path.join(out_dir, name + ".rgb"), "wb") as f:
            f.write(np.asarray(img.convert("RGB")).tobytes())
        print(name, len(data), "bytes")
    # make_golden.py's j8x8_cmyk.jpg (written before CMYK was supported) gets its golden here too.
    old = os.path.join(out_dir, "j8x8_cmyk.jpg")
    if os.path.exists(old):
        with open(old + ".rgb", "wb") as f:
            f.write(np.asarray(Image.open(old).convert("RGB")).tobytes())


if __name__ == "__main__":
    main(sys.argv[1])
