"""Bundle a checkpoint as a pretrained generator: ``python -m mogen.pretrained NAME CKPT RECORD.json``.

A maintainer's tool: writes ``mogen/pretrained/NAME.pt`` (EMA weights and what sampling needs)
and lists it in ``index.json`` with the record (dataset, split, realism numbers).
"""

import json
import sys
from pathlib import Path

from mogen.pretrained import bundle

if len(sys.argv) != 4:
    raise SystemExit("usage: python -m mogen.pretrained NAME CKPT RECORD.json")
print(bundle(sys.argv[2], sys.argv[1], json.loads(Path(sys.argv[3]).read_text())))
