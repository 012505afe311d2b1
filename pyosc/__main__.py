import sys

from pyosc.cli import main

sys.exit(main())
