#!/usr/bin/env python3
"""Golden data for Tests/ImageIOTests (ImageIO's PNG/JPEG decoders).

Writes small image files plus, for each, the RGB bytes that Pillow decodes from it
(`np.asarray(Image.open(f).convert("RGB"))`, raw HWC uint8 in `<name>.rgb`) and a manifest.

* JPEG files are written by Pillow (libjpeg-turbo): baseline 4:4:4 / 4:2:2 / 4:2:0, grayscale,
  optimized Huffman tables, progressive, restart markers, odd sizes so that partial MCUs and the
  fancy-upsampling edge cases are exercised.
* PNG files are written by a small independent writer below (Pillow cannot write 16-bit RGB,
  2/4-bit gray or Adam7) with every filter type used in turn; their expected RGB comes from the numpy
  source array through the documented conversion (alpha dropped, 16-bit -> high byte, low-depth gray
  scaled), and Pillow's own decode is compared and recorded in the manifest (`pil_equal`).

Usage: /work/venvs/img/bin/python tools/imageio/make_golden.py Tests/ImageIOTests/Fixtures
(venv: pip install pillow numpy simplejpeg)
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
try:
    import simplejpeg
except ImportError:  # optional: only for the 4:4:0 / 4:1:1 cases
    simplejpeg = None
from PIL import Image


def smooth_image(h, w, seed):
    """Smooth colour gradients + blobs + noise: realistic enough for JPEG, all values hit."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0 + seed) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * (1 - y / max(h - 1, 1))
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    img[h // 3: h // 2, w // 4: w // 2] = [250, 10, 30]  # a hard-edged block
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def strip_dht(data):
    """Removes every DHT segment (0xFFC4) in front of the first SOS."""
    out, p = bytearray(data[:2]), 2
    while True:
        m, n = data[p + 1], (data[p + 2] << 8) | data[p + 3]
        if m == 0xDA:
            return bytes(out + data[p:])
        if m != 0xC4:
            out += data[p:p + 2 + n]
        p += 2 + n


def png_chunk(t, body):
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)


def filter_row(ftype, row, prev, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 0:
            p = 0
        elif ftype == 1:
            p = a
        elif ftype == 2:
            p = b
        elif ftype == 3:
            p = (a + b) // 2
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
        out[i] = (row[i] - p) & 0xFF
    return bytes(out)


def pack_row(samples, depth):
    """samples: 1-D array of ints (all channels of one row, interleaved) -> bytes."""
    if depth == 8:
        return bytes(samples.astype(np.uint8))
    if depth == 16:
        return samples.astype(">u2").tobytes()
    bits = "".join(format(int(s), f"0{depth}b") for s in samples)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def write_png(arr, color_type, depth, interlace, palette=None):
    """arr: [H, W, C] integer samples at `depth`. Filters cycle 0..4 over rows."""
    h, w, ch = arr.shape
    bpp = max(1, ch * depth // 8)
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
              if interlace else [(0, 0, 1, 1)])
    raw = bytearray()
    n = 0
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0].reshape(-1), depth)))
        for row in sub:
            packed = pack_row(row.reshape(-1), depth)
            f = n % 5
            n += 1
            raw += bytes([f]) + filter_row(f, packed, prev, bpp)
            prev = packed
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(palette.astype(np.uint8).reshape(-1)))
    out += png_chunk(b"tEXt", b"Comment\x00ancillary chunk to skip")
    comp = zlib.compress(bytes(raw), 9)
    out += png_chunk(b"IDAT", comp[: len(comp) // 2]) + png_chunk(b"IDAT", comp[len(comp) // 2:])
    out += png_chunk(b"IEND", b"")
    return out


def main(dest):
    os.makedirs(dest, exist_ok=True)
    manifest = {"pillow": PIL.__version__, "cases": []}

    def record(name, data, expected, kind, extra=None):
        with open(os.path.join(dest, name), "wb") as f:
            f.write(data)
        pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        exp = pil if expected is None else expected
        with open(os.path.join(dest, name + ".rgb"), "wb") as f:
            f.write(np.ascontiguousarray(exp, dtype=np.uint8).tobytes())
        entry = {"file": name, "kind": kind, "width": int(exp.shape[1]), "height": int(exp.shape[0]),
                 "pil_equal": bool(np.array_equal(pil, exp))}
        entry.update(extra or {})
        manifest["cases"].append(entry)

    # --- JPEG (expected = Pillow's decode) ---
    for (h, w, seed) in [(29, 37, 1), (64, 48, 2), (17, 3, 3)]:
        src = Image.fromarray(smooth_image(h, w, seed))
        variants = [
            ("444", dict(quality=90, subsampling=0)),
            ("422", dict(quality=85, subsampling=1)),
            ("420", dict(quality=75, subsampling=2)),
            ("420_opt", dict(quality=80, subsampling=2, optimize=True)),
            ("420_prog", dict(quality=80, subsampling=2, progressive=True)),
            ("444_prog", dict(quality=95, subsampling=0, progressive=True)),
            ("422_prog", dict(quality=60, subsampling=1, progressive=True)),
            ("420_rst", dict(quality=70, subsampling=2, restart_marker_blocks=3)),
            ("prog_rst", dict(quality=70, subsampling=2, progressive=True, restart_marker_blocks=2)),
        ]
        for tag, kw in variants:
            buf = io.BytesIO()
            src.save(buf, "JPEG", **kw)
            record(f"j{w}x{h}_{tag}.jpg", buf.getvalue(), None, "jpeg", {"options": {k: v for k, v in kw.items()}})
        # Adobe-marked RGB JPEG (no colour transform), and DHT-less "Motion-JPEG" style copies that rely
        # on the Annex K tables (Pillow's default tables are those, so stripping DHT keeps the file valid).
        buf = io.BytesIO()
        src.save(buf, "JPEG", quality=90, keep_rgb=True)
        record(f"j{w}x{h}_rgb.jpg", buf.getvalue(), None, "jpeg", {"options": {"keep_rgb": True}})
        for tag, sub in [("444", 0), ("420", 2)]:
            buf = io.BytesIO()
            src.save(buf, "JPEG", quality=80, subsampling=sub)
            record(f"j{w}x{h}_{tag}_nodht.jpg", strip_dht(buf.getvalue()), None, "jpeg", {"options": {"subsampling": sub, "dht": "stripped"}})
        # 4:4:0 (h1v2) and 4:1:1 (h4v1) need another encoder: simplejpeg (bundled libjpeg-turbo).
        if simplejpeg is not None:
            for samp in ("440", "411"):
                data = simplejpeg.encode_jpeg(np.ascontiguousarray(np.asarray(src)), quality=85, colorspace="RGB",
                                              colorsubsampling=samp)
                record(f"j{w}x{h}_{samp}.jpg", data, None, "jpeg", {"options": {"encoder": "simplejpeg", "subsampling": samp}})
        for tag, kw in [("gray", dict(quality=85)), ("gray_prog", dict(quality=85, progressive=True))]:
            buf = io.BytesIO()
            src.convert("L").save(buf, "JPEG", **kw)
            record(f"j{w}x{h}_{tag}.jpg", buf.getvalue(), None, "jpeg", {"options": kw})

    # A camera-like frame, larger, 4:2:0 baseline and progressive.
    cam = Image.fromarray(smooth_image(120, 160, 11))
    for tag, kw in [("420", dict(quality=85)), ("420_prog", dict(quality=85, progressive=True))]:
        buf = io.BytesIO()
        cam.save(buf, "JPEG", **kw)
        record(f"j160x120_{tag}.jpg", buf.getvalue(), None, "jpeg", {"options": kw})
    # CMYK: its golden RGB is written by make_cmyk_golden.py (with the YCCK and marker-less cases).
    buf = io.BytesIO()
    Image.fromarray(smooth_image(8, 8, 5)).convert("CMYK").save(buf, "JPEG")
    with open(os.path.join(dest, "j8x8_cmyk.jpg"), "wb") as f:
        f.write(buf.getvalue())

    # --- PNG (expected from the source samples; Pillow's agreement recorded) ---
    h, w = 13, 19
    rng = np.random.default_rng(7)
    for interlace in (False, True):
        tag = "_i" if interlace else ""
        for depth in (1, 2, 4, 8, 16):
            g = rng.integers(0, 1 << depth, (h, w, 1))
            scale = {1: 255, 2: 85, 4: 17, 8: 1}.get(depth)
            exp = (g * scale) if depth < 16 else (g >> 8)
            record(f"p_gray{depth}{tag}.png", write_png(g, 0, depth, interlace), np.repeat(exp, 3, -1), "png")
        for depth in (8, 16):
            rgb = rng.integers(0, 1 << depth, (h, w, 3))
            exp = rgb if depth == 8 else rgb >> 8
            record(f"p_rgb{depth}{tag}.png", write_png(rgb, 2, depth, interlace), exp, "png")
            rgba = rng.integers(0, 1 << depth, (h, w, 4))
            record(f"p_rgba{depth}{tag}.png", write_png(rgba, 6, depth, interlace),
                   rgba[..., :3] if depth == 8 else rgba[..., :3] >> 8, "png")
            la = rng.integers(0, 1 << depth, (h, w, 2))
            ge = la[..., :1] if depth == 8 else la[..., :1] >> 8
            record(f"p_la{depth}{tag}.png", write_png(la, 4, depth, interlace), np.repeat(ge, 3, -1), "png")
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            pal = rng.integers(0, 256, (n, 3))
            idx = rng.integers(0, n, (h, w, 1))
            record(f"p_pal{depth}{tag}.png", write_png(idx, 3, depth, interlace, pal), pal[idx[..., 0]], "png")
    # A Pillow-written RGB PNG (its own zlib/filter choices).
    buf = io.BytesIO()
    Image.fromarray(smooth_image(40, 50, 9)).save(buf, "PNG")
    record("p_pillow_rgb.png", buf.getvalue(), None, "png")

    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest['cases'])} cases; pillow {PIL.__version__}")
    for c in manifest["cases"]:
        if not c["pil_equal"]:
            print("Pillow differs from the documented conversion:", c["file"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ImageIOTests/Fixtures")
