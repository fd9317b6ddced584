"""The drone's sans-IO core: what the Tello protocol *is*, with no I/O and no clock of its own.

Bytes and the current time go in; commands to send, replies matched to their tickets, and
events come out. Everything that waits, reads a socket or a clock lives outside this package
(``servers.drone.link``). ``tests/core/test_import_boundary.py`` keeps it that way.
"""
