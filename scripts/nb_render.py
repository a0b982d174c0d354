#!/usr/bin/python3
"""Render the lessons: scripts/nb_render.py [--size lesson|smoke] [--html-only] [NB.ipynb...] (default: all of notebooks/)

For each notebook: clear its outputs, execute it with KIT_SIZE=<size> (the notebooks read it in their parameter
cell), turn every plotly figure into a static PNG (headless Chromium draws it with the kit's own plotly bundle),
drop the inlined plotly bundle, collapse carriage-return progress lines, record the size, the run time and a hash of
the code cells in the notebook's metadata (`kit_render`), and write it back in place. Then write a static HTML copy
under docs/notebooks/ (nbconvert, images embedded, nothing fetched from the network).

`--html-only` skips execution and only rewrites the HTML copies of already rendered notebooks.
test/notebooks.test.ts checks the recorded hash against the committed code cells, so a notebook edited after its
render fails `npm test` until it is rendered again (npm run nb:render).
"""
import base64
import glob
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTML_DIR = os.path.join(ROOT, "docs", "notebooks")
PLOTLY_JS = os.path.join(ROOT, "node_modules", "plotly.js-dist-min", "plotly.min.js")
FIG_RE = re.compile(r'<div id="([^"]+)" class="kit-plotly" style="width:(\d+)px;height:(\d+)px;"></div>')


def code_hash(nb):
    """sha256 of the code cells' sources joined by NUL; test/notebooks.test.ts computes the same."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return hashlib.sha256("\0".join(sources).encode("utf-8")).hexdigest()


def find_browser():
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    sys.exit("nb_render: no headless Chromium found; install it with: apt-get install chromium-headless-shell")


def figure_png(browser, html, width, height, tmp):
    """Draw one kit figure (div + script) in headless Chromium and return a palette PNG's bytes."""
    page = os.path.join(tmp, "figure.html")
    shot = os.path.join(tmp, "figure.png")
    with open(page, "w", encoding="utf-8") as f:
        f.write('<!DOCTYPE html><html><head><meta charset="utf-8">'
                '<style>.modebar-container{display:none !important}</style></head><body style="margin:0;background:white">'
                f'<script src="file://{PLOTLY_JS}"></script>{html}</body></html>')
    if os.path.exists(shot):
        os.remove(shot)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
           "--force-device-scale-factor=1", "--virtual-time-budget=15000", f"--window-size={width},{height}",
           f"--screenshot={shot}", "file://" + page]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    from PIL import Image
    img = Image.open(shot).convert("RGB")
    buf = io.BytesIO()
    # octree keeps small areas of pure colour (legend swatches, organ overlays) true; median cut spends its palette on
    # the gray image and shifted the label colours away from their legend
    img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def collapse_cr(text):
    """What a terminal shows: for each line, only the part after its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def relative(text):
    """Paths of this checkout written as paths relative to the project root (the kernel's working directory)."""
    return text.replace(ROOT + os.sep, "").replace(ROOT, ".")


def postprocess(nb, browser):
    """Figures to PNG, no plotly bundle, one line per progress line, no absolute paths of this checkout.
    Returns (figures, stderr outputs)."""
    figures = stderr = 0
    with tempfile.TemporaryDirectory() as tmp:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.metadata.pop("execution", None)
            kept = []
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "stream":
                    out["text"] = relative(collapse_cr(out.get("text", "")))
                    if out.get("name") == "stderr":
                        stderr += 1
                    if out["text"].strip() == "":
                        continue
                elif kind in ("display_data", "execute_result") and "text/html" in out.get("data", {}):
                    html = out["data"]["text/html"]
                    html = html if isinstance(html, str) else "".join(html)
                    m = FIG_RE.search(html)
                    if m is None and html.lstrip().startswith("<script") and len(html) > 1_000_000:
                        continue  # the inlined plotly bundle: figures are images now
                    if m is None:
                        out["data"]["text/html"] = relative(html)
                    else:
                        png = figure_png(browser, html, int(m.group(2)), int(m.group(3)), tmp)
                        out["data"] = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": "<figure>"}
                        out["metadata"] = {}
                        figures += 1
                for key in ("text/plain", "text/markdown"):
                    if key in out.get("data", {}):
                        v = out["data"][key]
                        out["data"][key] = relative(v if isinstance(v, str) else "".join(v))
                kept.append(out)
            cell["outputs"] = kept
    return figures, stderr


def write_html(path, nb):
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="classic")
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    # nothing from the network: MathJax and require.js are not needed by these pages
    body = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", body)
    body = re.sub(r'<link[^>]*href="https?://[^"]*"[^>]*>', "", body)
    os.makedirs(HTML_DIR, exist_ok=True)
    out = os.path.join(HTML_DIR, os.path.splitext(os.path.basename(path))[0] + ".html")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(body)
    os.replace(tmp, out)
    return out


def render(path, size, browser):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("kit_render", None)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "tslab-kit")
    client = NotebookClient(nb, timeout=3600, kernel_name=kernel, record_timing=False,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    t0 = time.time()
    try:
        client.execute()
    except Exception:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from run_notebooks import failing_cell  # tslab's real message is in the failing cell's stderr
        bad = failing_cell(nb)
        if bad is not None:
            sys.stderr.write(f"--- failing cell in {path}:\n{bad.source}\n--- its stderr:\n")
            for out in bad.get("outputs", []):
                if out.get("name") == "stderr":
                    sys.stderr.write(out.get("text", ""))
        raise
    seconds = time.time() - t0
    figures, stderr = postprocess(nb, browser)
    cap = os.environ.get("KIT_LESSON_STEPS", "")
    label = f"{size}, steps capped at {cap}" if cap not in ("", "0") else size
    nb.metadata["kit_render"] = {"size": label, "seconds": round(seconds), "code_sha256": code_hash(nb)}
    tmp = path + ".tmp"
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    html = write_html(path, nb)
    kb = os.path.getsize(path) // 1024
    print(f"rendered {path} at size {size} in {seconds:.0f}s: {figures} figures, {kb} KB; {html}"
          + (f"; WARNING: {stderr} stderr outputs" if stderr else ""), flush=True)


def main():
    args = sys.argv[1:]
    size = os.environ.get("KIT_SIZE", "lesson")
    html_only = False
    paths = []
    while args:
        a = args.pop(0)
        if a == "--size":
            size = args.pop(0)
        elif a == "--html-only":
            html_only = True
        else:
            paths.append(a)
    if not paths:
        paths = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
    os.environ["KIT_SIZE"] = size
    os.environ.pop("KIT_SMOKE", None)
    os.environ.setdefault("JUPYTER_PATH", os.path.join(ROOT, "jupyter"))
    failed = 0
    for path in paths:
        if html_only:
            print(write_html(path, nbformat.read(path, as_version=4)))
            continue
        try:
            render(path, size, find_browser())
        except Exception as e:  # a failed cell: the notebook on disk is left as it was
            failed += 1
            sys.stderr.write(f"FAILED {path}: {type(e).__name__}: {str(e)[-3000:]}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
