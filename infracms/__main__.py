"""Allow `python -m infracms`."""

from infracms.cli import main

main()
