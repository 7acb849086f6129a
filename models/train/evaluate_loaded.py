"""Score the pipeline as Rode Draad loads it (`pipeline.nlp.load`: the trained model plus the
lemma repair from spaCy's Dutch lemma tables and the block boundaries) next to the trained model
alone, on the dev split (where the lemma repair was chosen) and on the held-out test files.

    python models/train/evaluate_loaded.py --ud-dir ../shared/ud-dutch      # (make model-eval)

Writes models/evaluation-as-loaded.json. The dev/test corpora are prepared exactly as train.py
prepares them (same seed and dev fraction), in --work-dir, outside the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

METRICS = {"upos": "pos_acc", "lemma": "lemma_acc", "las": "dep_las", "uas": "dep_uas", "sents_f": "sents_f",
           "xpos": "tag_acc", "morph": "morph_acc"}


def main() -> int:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from pipeline.nlp import load
    from pipeline.settings import Settings
    from train import prepare_corpus

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ud-dir", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/rd-model"))
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "evaluation-as-loaded.json")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="a folder with nl_rode_draad/ and lemma-tables/ (default: the repository's models/)")
    args = ap.parse_args()
    corpus = args.work_dir / "corpus"
    if not (corpus / "test.spacy").exists() or not (corpus / "dev.spacy").exists():
        prepare_corpus(args.ud_dir, corpus, seed=0, dev_frac=0.1)
    settings = Settings() if args.models_dir is None else Settings().replace(models_dir=args.models_dir)
    pipelines = {"model alone": spacy.load(settings.bundled_model_dir),
                 "as loaded": load(settings, with_entities=False)}
    out = {"pipeline_as_loaded": pipelines["as loaded"].pipe_names, "scores": {}}
    for split in ("dev", "test"):
        for name, nlp in pipelines.items():
            gold = list(DocBin().from_disk(corpus / f"{split}.spacy").get_docs(nlp.vocab))
            scores = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in gold])
            out["scores"].setdefault(split, {})[name] = {k: round(100 * scores[v], 2) for k, v in METRICS.items()}
            print(split, name, out["scores"][split][name], flush=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
