#!/usr/bin/python3
"""Execute notebooks headlessly: scripts/run_notebooks.py OUT_DIR NB.ipynb...

tslab reports errors with an empty name and value; the real message is in the failing cell's stderr stream,
so this prints that cell and its stderr. Ends with 'N passed, N failed' and exits 1 on any failure.
Set KIT_SMOKE=1 (npm run nb:test does) so notebooks pick their smallest settings. Each notebook runs from a copy with
its outputs cleared (the committed notebooks carry the outputs of `npm run nb:render`), written to OUT_DIR.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def failing_cell(nb):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return cell
    for cell in nb.cells:  # tslab reports the real message (or a TS diagnostic) only on stderr
        if cell.cell_type == "code" and any(o.get("name") == "stderr" for o in cell.get("outputs", [])):
            return cell
    return None


def main():
    out_dir, paths = sys.argv[1], sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    failed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:  # run from a clean copy: no rendered outputs, no render record
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nb.metadata.pop("kit_render", None)
        kernel = nb.metadata.get("kernelspec", {}).get("name", "tslab-kit")
        client = NotebookClient(nb, timeout=900, kernel_name=kernel,
                                resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        t0 = time.time()
        try:
            client.execute()
            status = "ok"
        except CellExecutionError as e:
            failed += 1
            status = "FAILED"
            bad = failing_cell(nb)
            if bad is not None:
                sys.stderr.write(f"--- failing cell in {path}:\n{bad.source}\n--- its stderr:\n")
                for out in bad.outputs:
                    if out.get("name") == "stderr":
                        sys.stderr.write(out.get("text", ""))
                    if out.get("output_type") == "error":
                        sys.stderr.write("\n".join(out.get("traceback", [])) + "\n")
            else:
                sys.stderr.write(f"--- {path}: {e}\n")
        except Exception as e:  # kernel died, timeout, ...
            failed += 1
            status = "FAILED"
            sys.stderr.write(f"--- {path}: {type(e).__name__}: {e}\n")
        nbformat.write(nb, os.path.join(out_dir, os.path.basename(path)))
        print(f"{status} {path} {time.time() - t0:.1f}s", flush=True)
    print(f"notebooks: {len(paths) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
