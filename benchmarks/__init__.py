"""Benchmarks of minidl (``make bench`` / ``python -m benchmarks``), see docs/performance.md.

Modules: ``sine`` (training throughput on the article's task), ``forward_backward`` (one
batch through RNN/LSTM/GRU), ``memory`` (TBPTT peak memory on a long stream), ``scaling``
(time against sequence length, hidden size, batch size), ``naive`` (the per-sample numpy
reference), ``common`` (timing, rows, targets, the optional PyTorch), ``report`` (table, PNG).
Nothing here is imported by minidl; PyTorch is optional.
"""
