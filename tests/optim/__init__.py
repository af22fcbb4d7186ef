"""Tests of minidl.optim: one module per library module."""
