#!/usr/bin/env python3
"""A larger, non-bundled JPEG exactness check: N random JPEGs (sizes 1-89 px, quality 5-99, 4:4:4/4:2:2/4:2:0
via Pillow with random progressive/optimize/grayscale, 4:4:0/4:1:1 via simplejpeg) plus Pillow's decode of
each (`<i>.rgb`, raw HWC uint8). Run the opt-in test on them:

  /work/venvs/img/bin/python tools/imageio/make_random_jpegs.py /tmp/jfuzz 300
  IMAGEIO_RANDOM_JPEG_DIR=/tmp/jfuzz swift test --filter DecoderGoldenTests/testRandomJPEGDirectory
"""
import io
import os
import sys

import numpy as np
import simplejpeg
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import smooth_image  # noqa: E402


def main(dest, n):
    os.makedirs(dest, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        h, w = int(rng.integers(1, 90)), int(rng.integers(1, 90))
        src = smooth_image(h, w, i)
        if rng.integers(0, 3) < 2:
            kw = dict(quality=int(rng.integers(5, 100)), subsampling=int(rng.integers(0, 3)),
                      progressive=bool(rng.integers(0, 2)), optimize=bool(rng.integers(0, 2)))
            im = Image.fromarray(src)
            if rng.integers(0, 6) == 0:
                im = im.convert("L")
            b = io.BytesIO()
            im.save(b, "JPEG", **kw)
            d = b.getvalue()
        else:
            d = simplejpeg.encode_jpeg(np.ascontiguousarray(src), quality=int(rng.integers(5, 100)), colorspace="RGB",
                                       colorsubsampling=["444", "422", "420", "440", "411"][int(rng.integers(0, 5))])
        with open(os.path.join(dest, f"{i}.jpg"), "wb") as f:
            f.write(d)
        np.asarray(Image.open(io.BytesIO(d)).convert("RGB")).tofile(os.path.join(dest, f"{i}.rgb"))
    print(f"{n} files in {dest}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
