"""Relayed child output: escape sequences never reach the terminal as text (`frontend | [?25h`)."""

from __future__ import annotations

from noxlib.core.terminal_text import printable_line


def test_cursor_and_erase_sequences_are_removed():
    assert printable_line("\x1b[?25h") == ""
    assert printable_line("\x1b[2K\x1b[1G ✓ Compiled /api in 120ms") == " ✓ Compiled /api in 120ms"
    assert printable_line("\x1b]0;next-server\x07ready") == "ready"


def test_colours_are_kept_only_when_asked_and_reset_at_the_end_of_the_line():
    coloured = "\x1b[32m✓\x1b[39m Ready in 1.2s\x1b[1m"
    assert printable_line(coloured) == "✓ Ready in 1.2s"
    kept = printable_line(coloured, keep_colours=True)
    assert kept.startswith("\x1b[32m✓\x1b[39m Ready in 1.2s")
    assert kept.endswith("\x1b[0m")
    assert printable_line("\x1b[?25h", keep_colours=True) == ""


def test_a_progress_bar_keeps_what_was_drawn_last_and_no_control_character_survives():
    assert printable_line("compiling 10%\rcompiling 100%") == "compiling 100%"
    assert printable_line("a\x07b\x1bc\x00d\tz") == "abcd\tz"
