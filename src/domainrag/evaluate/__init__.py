"""Evaluation: retrieval metrics with trec_eval's definitions, and BEIR dataset loaders.

``domainrag.evaluate.metrics`` scores rankings of document ids against graded relevance
judgements (qrels); ``domainrag.evaluate.beir_qrels`` reads BEIR folders' qrels and queries.
"""
