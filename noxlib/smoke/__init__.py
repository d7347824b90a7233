"""The smoke test and its deployment command line (`python3 -m noxlib.smoke`)."""
