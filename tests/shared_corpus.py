"""Where the tests find the shared corpus: next to the checkout, never at a fixed path.

``<checkout>/../shared/corpus`` -- /work/shared/corpus for the main checkout, the
worktrees' ``shared`` link for theirs.  Tests that need a file skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SETKEY_CORPUS = SHARED_CORPUS / "setkey"
