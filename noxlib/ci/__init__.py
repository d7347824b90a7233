"""`nox -s ci` on top of nox: the session decorator, arguments, venvs, the input cache, the runner."""
