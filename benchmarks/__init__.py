"""The experiments: scripts that measure mm_instdisc (``python
benchmarks/<name>.py`` from a checkout) and the library they share,
:mod:`benchmarks.lib`. They import the installed package; nothing in
``mm_instdisc/`` or ``tools/`` imports them, and the wheel does not carry
them (tests/test_layering.py checks both).
"""
