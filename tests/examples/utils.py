import numpy as np
import PIL.Image


def make_image_folder(root, num_per_class=8, size=(40, 36), classes=("cat", "dog"), corrupt=True, seed=0):
    """`root/<class>/<i>.png` random RGB images of `size` (width, height), plus one unreadable `broken.png`."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(num_per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            PIL.Image.fromarray(pixels).save(root / name / f"{index}.png")
    if corrupt:
        # A PNG signature followed by garbage: listed by the image folder loader, fails when decoded.
        (root / classes[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 4)
    return root
