"""The version of minidl, in one place: ``minidl.__version__``, the file headers and setup.cfg read it."""

__version__ = "0.1.0"
