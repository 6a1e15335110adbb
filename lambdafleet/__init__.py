"""lambdafleet: an AWS Lambda emulator whose parts run on different hosts."""

from pathlib import Path

__version__ = "0.1.0"

# Installed, the parts are subpackages (lambdafleet.gateway, ...). In a source
# checkout they are the top-level folders gateway/, control_plane/ and
# worker/, beside this package: adding the checkout's root to the package path
# resolves lambdafleet.<part> to those folders, so tests and tools run from
# the tree behave as the installed package does.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "control_plane").is_dir():
    __path__.append(str(_checkout))
