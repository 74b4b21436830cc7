#!/usr/bin/python3
"""A small, self-contained SVG line chart for bench/soak.py (no matplotlib on
the bench machines): a grid of panels sharing one time axis, each with one
or more series, its own y axis (from 0, or from the data when asked), tick
labels and a legend. Standard library only.

  import soak_svg
  soak_svg.write("docs/soak.svg", t_seconds, [
      {"title": "RSS (MB)", "series": [("rss", [..])]},
      {"title": "p99 (ms)", "series": [("p50", [..]), ("p99", [..])]},
  ], caption="...")

A value of None leaves a hole in its line.
"""
import html
import math

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def nice_step(span, ticks=5):
    """a round step (1, 2, 2.5, 5 times a power of ten) giving about ticks ticks"""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return "%.0fk" % (v / 1000)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return ("%.1f" % v).rstrip("0").rstrip(".")
    return ("%.2f" % v).rstrip("0").rstrip(".")


def panel(out, x0, y0, w, h, ts, spec, tmax):
    """one panel; its plot area is x0..x0+w, y0..y0+h (SVG coordinates)"""
    vals = [v for _, ys in spec["series"] for v in ys if v is not None]
    lo = 0.0 if spec.get("from_zero", True) else (min(vals) if vals else 0.0)
    hi = max(vals) if vals else 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step
    if hi <= lo:
        hi = lo + step

    def px(t):
        return x0 + (t / tmax) * w if tmax else x0

    def py(v):
        return y0 + h - (v - lo) / (hi - lo) * h

    out.append('<text x="%.1f" y="%.1f" class="title">%s</text>'
               % (x0, y0 - 8, html.escape(spec["title"])))
    out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="frame"/>'
               % (x0, y0, w, h))
    v = lo
    while v <= hi + step / 2:
        y = py(v)
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>'
                   % (x0, y, x0 + w, y))
        out.append('<text x="%.1f" y="%.1f" class="ylab">%s</text>' % (x0 - 4, y + 3, fmt(v)))
        v += step
    # time axis in minutes
    tstep = nice_step(tmax / 60.0, 6) * 60 if tmax else 60
    t = 0.0
    while t <= tmax + 1e-9:
        x = px(t)
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>'
                   % (x, y0, x, y0 + h))
        out.append('<text x="%.1f" y="%.1f" class="xlab">%s</text>'
                   % (x, y0 + h + 12, fmt(t / 60.0)))
        t += tstep
    out.append('<text x="%.1f" y="%.1f" class="xlab">minutes</text>' % (x0 + w / 2, y0 + h + 25))
    for i, (name, ys) in enumerate(spec["series"]):
        colour = COLOURS[i % len(COLOURS)]
        paths, cur = [], []
        for tt, yy in zip(ts, ys):
            if yy is None:
                if cur:
                    paths.append(cur)
                cur = []
                continue
            cur.append("%.1f,%.1f" % (px(tt), py(yy)))
        if cur:
            paths.append(cur)
        for p in paths:
            if len(p) == 1:
                x, y = p[0].split(",")
                out.append('<circle cx="%s" cy="%s" r="1.5" fill="%s"/>' % (x, y, colour))
            else:
                out.append('<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"/>'
                           % (colour, " ".join(p)))
        if len(spec["series"]) > 1:
            lx = x0 + w - 100
            ly = y0 + 14 + 12 * i
            if i == 0:
                out.append('<rect x="%.1f" y="%.1f" width="96" height="%d" fill="white" '
                           'fill-opacity="0.85" stroke="#bbb" stroke-width="0.5"/>'
                           % (lx - 4, y0 + 4, 12 * len(spec["series"]) + 4))
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>'
                       % (lx, ly - 3, lx + 14, ly - 3, colour))
            out.append('<text x="%.1f" y="%.1f" class="leg">%s</text>'
                       % (lx + 18, ly, html.escape(name)))


def render(ts, panels, caption="", cols=2, pw=360, ph=170):
    rows = (len(panels) + cols - 1) // cols
    ml, mr, mt, mb = 50, 30, 40, 42
    width = cols * (ml + pw + mr)
    top = 28 if caption else 0
    height = top + rows * (mt + ph + mb)
    tmax = max(ts) if ts else 0
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif">' % (width, height, width, height),
           '<style>.title{font-size:13px;font-weight:bold}.ylab{font-size:10px;text-anchor:end}'
           '.xlab{font-size:10px;text-anchor:middle}.leg{font-size:10px}'
           '.frame{fill:none;stroke:#444;stroke-width:1}.grid{stroke:#ddd;stroke-width:0.7}'
           '.cap{font-size:12px}</style>',
           '<rect width="100%" height="100%" fill="white"/>']
    if caption:
        out.append('<text x="10" y="18" class="cap">%s</text>' % html.escape(caption))
    for i, spec in enumerate(panels):
        r, c = divmod(i, cols)
        panel(out, c * (ml + pw + mr) + ml, top + r * (mt + ph + mb) + mt, pw, ph, ts, spec, tmax)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path, ts, panels, caption=""):
    with open(path, "w") as f:
        f.write(render(ts, panels, caption))


if __name__ == "__main__":
    import sys
    xs = [i * 10.0 for i in range(100)]
    write(sys.argv[1] if len(sys.argv) > 1 else "/tmp/soak_svg_demo.svg", xs, [
        {"title": "sine", "series": [("a", [math.sin(x / 100) + 1 for x in xs])]},
        {"title": "two", "series": [("p50", [x / 10 for x in xs]),
                                    ("p99", [x / 5 if x < 500 or x > 600 else None for x in xs])]},
    ], caption="demo")
