"""lambdafleet: an AWS Lambda emulator whose parts run on different hosts."""

__version__ = "0.1.0"
