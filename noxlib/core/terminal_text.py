"""Child output relayed line by line, made safe to print between nox's own lines.

`next dev` hides the cursor while it compiles and shows it again on exit; relayed behind a
`frontend |` prefix that control sequence is printed as text (`frontend | [?25h` after Ctrl+C)
and the cursor codes act on the wrong line. Colours are the one kind of sequence worth keeping,
and only where a terminal draws them; everything else (cursor movement, erasing, titles) is
removed, as are bare carriage returns that would overwrite the prefix.
"""

from __future__ import annotations

import re

# ECMA-48: CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), and the two-byte escapes.
_CSI = r"\x1b\[[0-?]*[ -/]*[@-~]"
_OSC = r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
_OTHER_ESCAPE = r"\x1b[@-Z\\-_]"
_ANY_SEQUENCE = re.compile(f"{_OSC}|{_CSI}|{_OTHER_ESCAPE}")
# Select Graphic Rendition: colours and bold, which a terminal draws and a log can do without.
_SGR = re.compile(r"\x1b\[[0-9;]*m")
# Control characters other than tab; ESC itself is handled with the sequences above.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]")
# An ESC that starts no complete sequence (a line cut mid-sequence) and is not a kept colour.
_LONE_ESCAPE = re.compile(r"\x1b(?!\[[0-9;]*m)")


def printable_line(line: str, *, keep_colours: bool = False) -> str:
    """`line` with every escape sequence removed (colours kept when `keep_colours`) and no stray control."""

    def replace(match: re.Match[str]) -> str:
        sequence = match.group(0)
        return sequence if keep_colours and _SGR.fullmatch(sequence) else ""

    text = _ANY_SEQUENCE.sub(replace, line.rstrip("\r\n"))
    # What a progress bar's carriage return would have drawn last is what a terminal would show.
    text = text.rsplit("\r", 1)[-1]
    text = _LONE_ESCAPE.sub("", _CONTROL.sub("", text))
    if keep_colours and _SGR.search(text):
        text += "\x1b[0m"  # a colour left on must not bleed into nox's next line
    return text
