"""The logic behind noxfile.py, by concern: sessions, smoke, ci, run, services, names, core, env_keys.

noxlib never imports the apps: it hands them environment variables and runs their commands.
"""

import logging as _logging

# nox turns the root logger up to DEBUG; the clients noxlib uses would then narrate every request.
for _name in (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "redis",
    "psycopg",
    "filelock",
    "docker",
):
    _logging.getLogger(_name).setLevel(_logging.WARNING)
