"""The PNG of `./run bench compare`: Mpps per system, one panel per path,
one bar per frame size, on a log scale (Scapy and a pipe differ by 10^4).

matplotlib (Agg) draws it; it is installed into the virtual environment when
missing, unless installing is not allowed.  Without it a plain raster with
a built-in 3x5 font is written instead, so that a PNG always comes out.
"""
from __future__ import annotations

import math
import struct
import zlib

from nmcompat_bench._env import _ensure_pip

COLORS = ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28))
PATH_TITLES = {"shm": "shared memory (two processes)", "veth": "veth pair (private netns)"}


def _panels(report: dict):
    """[(path, [label...], {size: [mpps or None...]})] in the report's order."""
    out = []
    for path in ("shm", "veth"):
        rows = [r for r in report["rows"] if r["path"] == path]
        labels = list(dict.fromkeys(r["label"] for r in rows))
        sizes = list(dict.fromkeys(r["size"] for r in rows))
        values = {s: [None] * len(labels) for s in sizes}
        for r in rows:
            values[r["size"]][labels.index(r["label"])] = r["mpps"]
        if labels:
            out.append((path, labels, values))
    return out


def _decades(panels) -> tuple:
    """The log axis: whole decades around every value."""
    values = [v for _, _, vs in panels for vals in vs.values() for v in vals if v] or [1.0]
    return math.floor(math.log10(min(values) / 2)), math.ceil(math.log10(max(values) * 3))


def _title(report: dict) -> str:
    m = report["machine"]
    return f"./run bench compare: Linux {m['kernel']}, {m['nproc']} CPUs, {m['cpu']}"


def plot(report: dict, filename: str, install: bool = True) -> str:
    """Write the PNG; returns what drew it."""
    why = _ensure_pip("matplotlib", "matplotlib", install)
    if not why:
        try:
            _plot_matplotlib(report, filename)
            return "matplotlib"
        except ImportError as exc:
            why = str(exc)
    _plot_raster(report, filename)
    return f"built-in raster ({why})"


def _plot_matplotlib(report: dict, filename: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = _panels(report)
    lo, hi = _decades(panels)
    heights = [len(labels) + 1 for _, labels, _ in panels] or [1]
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(10, 1.2 + 0.55 * sum(heights)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (path, labels, values) in zip(axes[:, 0], panels):
        width = 0.8 / max(len(values), 1)
        for k, (size, mpps) in enumerate(values.items()):
            ys = [i + (k - (len(values) - 1) / 2) * width for i in range(len(labels))]
            bars = [v if v else 0 for v in mpps]
            ax.barh(ys, bars, height=width, color=[c / 255 for c in COLORS[k % len(COLORS)]],
                    label=f"{size} B")
            for y, v in zip(ys, mpps):
                ax.text(v if v else 10.0 ** lo, y, f" {v:.3g}" if v else " unavailable",
                        va="center", fontsize=7)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(10.0 ** lo, 10.0 ** hi)
        ax.set_xlabel("Mpps received (log scale)")
        ax.set_title(PATH_TITLES[path], fontsize=10)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(_title(report), fontsize=9)
    fig.tight_layout()
    fig.savefig(filename, dpi=110)
    plt.close(fig)


# -- without matplotlib: a raster and a tiny font ------------------------------------

_GLYPHS = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011",
    "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111",
    "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010",
    "P": "110101110100100", "Q": "010101101110011", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111", "0": "111101101101111",
    "1": "010110010010111", "2": "110001010100111", "3": "110001010001110",
    "4": "101101111001001", "5": "111100110001110", "6": "011100111101111",
    "7": "111001010010010", "8": "111101111101111", "9": "111101111001110",
    ".": "000000000000010", "-": "000000111000000", "_": "000000000000111",
    "/": "001001010100100", "(": "010100100100010", ")": "010001001001010",
    ":": "000010000010000", ",": "000000000010100", "'": "010010000000000",
    "+": "000010111010000", "%": "101001010100101", "=": "000111000111000",
    " ": "000000000000000",
}


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.px = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x0, y0, x1, y1, color) -> None:
        x0, x1 = max(0, int(x0)), min(self.w, int(x1))
        for y in range(max(0, int(y0)), min(self.h, int(y1))):
            row = y * self.w * 3
            self.px[row + x0 * 3:row + x1 * 3] = bytes(color) * max(0, x1 - x0)

    def text(self, x, y, s, scale=2, color=(0, 0, 0)) -> int:
        for ch in s.upper():
            bits = _GLYPHS.get(ch, _GLYPHS[" "])
            for k, bit in enumerate(bits):
                if bit == "1":
                    cx, cy = x + (k % 3) * scale, y + (k // 3) * scale
                    self.rect(cx, cy, cx + scale, cy + scale, color)
            x += 4 * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(tag, data):
            return (struct.pack(">I", len(data)) + tag + data +
                    struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2,
                                                                 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _plot_raster(report: dict, filename: str) -> None:
    panels = _panels(report)
    bar, left, right = 9, 300, 1000
    height = 60 + sum(40 + len(labels) * (bar * max(len(v), 1) + 8) for _, labels, v in panels)
    c = _Canvas(right + 120, height)
    c.text(10, 10, _title(report)[:130])
    sizes = list(dict.fromkeys(s for _, _, values in panels for s in values))
    x = 10
    for k, size in enumerate(sizes):
        c.rect(x, 30, x + 12, 40, COLORS[k % len(COLORS)])
        x = c.text(x + 16, 30, f"{size} B") + 16
    c.text(x + 10, 30, "MPPS RECEIVED, LOG SCALE")
    lo, hi = _decades(panels)

    def xpos(v):
        return left + (right - left) * (math.log10(max(v, 10 ** lo)) - lo) / (hi - lo)
    y = 60
    for path, labels, values in panels:
        c.text(10, y, PATH_TITLES[path])
        y += 20
        step = bar * max(len(values), 1) + 8
        for d in range(lo, hi + 1):
            c.rect(xpos(10 ** d), y - 4, xpos(10 ** d) + 1, y + len(labels) * step, (200, 200, 200))
            c.text(xpos(10 ** d) - 8, y + len(labels) * step + 2, f"{10.0 ** d:g}", scale=1)
        for i, label in enumerate(labels):
            c.text(10, y + i * step + 2, label[:36])
            for k, (size, vals) in enumerate(values.items()):
                v, by = vals[i], y + i * step + k * bar
                if v:
                    c.rect(left, by, xpos(v), by + bar - 1, COLORS[k % len(COLORS)])
                    c.text(xpos(v) + 4, by + 1, f"{v:.3g}", scale=1)
                else:
                    c.text(left + 4, by + 1, "unavailable", scale=1)
        y += len(labels) * step + 20
    with open(filename, "wb") as f:
        f.write(c.png())
