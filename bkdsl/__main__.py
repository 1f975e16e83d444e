import sys

from bkdsl.cli import main

sys.exit(main())
