"""Rode Draad: the recurring success factors and bottlenecks in Dutch labour-market practice stories.

Stages (one module each): ingest -> nlp -> themes -> factors -> cluster -> draft -> render,
with the editor's review sheet read by review. See docs/architecture.md.
"""
__version__ = "0.1.0"
