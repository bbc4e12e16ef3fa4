"""`python -m cptlib.config <profile> [--make OUT]`: one line for the Makefile (the profile's files, or with --make
its files, notebooks and unfinished outputs), or one error."""
import sys

from cptlib.config.load import ConfigError, _profile_path, profile_files
from cptlib.config.make import _from_root, make_info

if not _profile_path(sys.argv[1]).is_file():  # the Makefile's own rule names a missing profile and the fix
    sys.exit(0)
try:
    if sys.argv[2:3] == ["--make"]:
        print(make_info(sys.argv[1], sys.argv[3]))
    else:
        print(" ".join(_from_root(profile_files(sys.argv[1]))))
except ConfigError as err:
    print(f"error: {err}")
    sys.exit(2)
